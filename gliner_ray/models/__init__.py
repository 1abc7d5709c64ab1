"""The networks of the checkpoint families gliner-ray runs: pure torch, one short file a family.

``span.py`` (uni-encoder span head and type FFN), ``token.py`` (token-level scorer), ``biencoder.py`` (a labels
encoder beside the text encoder), ``relex.py`` (entity pairs and relation types). All share the encoder wrapper
(``model.WordEncoder``) and keep the reference library's parameter layout (``checkpoint.py``). Which network a
checkpoint needs, and the predictor that runs it, is read from its config in ``predict/families.py``.
"""
