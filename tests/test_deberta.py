"""The real GLiNER backbone family end to end: a tiny DeBERTa-v2 encoder whose sentencepiece model is trained
here, through from_backbone, predict, save, the reference library, and back."""

import random

import pytest
import torch

from gliner_ray import GLiNER

TEXTS = ["Alice Smith visited Paris and London with Bob.", "ACME Corp hired John in Berlin, then moved to Paris!"]
LABELS = ["person", "city", "company"]


@pytest.fixture(scope="module")
def tiny_deberta_dir(tmp_path_factory):
    import sentencepiece as spm
    from transformers import DebertaV2Config, DebertaV2Model, DebertaV2Tokenizer

    rng = random.Random(0)
    vocabulary = ("alice bob smith paris london berlin acme corp john mary visited hired moved then with and in to "
                  "the a of river bank city works met google apple").split()
    sentences = [
        " ".join(w.capitalize() if rng.random() < 0.3 else w for w in rng.choices(vocabulary, k=rng.randint(4, 14)))
        + rng.choice([".", "!", ",", "?"])
        for _ in range(2000)
    ]
    path = tmp_path_factory.mktemp("tiny-deberta")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_prefix=str(path / "spm"), vocab_size=80, model_type="unigram",
        pad_id=0, bos_id=1, eos_id=2, unk_id=3, pad_piece="[PAD]", bos_piece="[CLS]", eos_piece="[SEP]",
        unk_piece="[UNK]", user_defined_symbols=["[MASK]"], hard_vocab_limit=False, minloglevel=2,
    )
    tokenizer = DebertaV2Tokenizer.from_pretrained(path)  # converts spm.model
    torch.manual_seed(0)
    config = DebertaV2Config(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=512, relative_attention=True, pos_att_type=["p2c", "c2p"], position_biased_input=False,
        initializer_range=0.5,  # wide random weights: distinct word vectors, no tied scores
    )
    DebertaV2Model(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_deberta_backbone_end_to_end(tiny_deberta_dir, tmp_path, assert_same_entities):
    from gliner import GLiNER as ReferenceGLiNER

    torch.manual_seed(0)
    model = GLiNER.from_backbone(tiny_deberta_dir, hidden_size=32, device="cpu")
    with torch.no_grad():
        model.model.type_ffn[3].weight.mul_(40.0)  # spread the random scores
    predicted = model.predict(TEXTS, LABELS, threshold=0.3, flat_ner=False)
    assert sum(map(len, predicted)) >= 2
    for text, entities in zip(TEXTS, predicted):
        assert all(text[e["start"] : e["end"]] == e["text"] for e in entities)

    words = "Alice visited Paris .".split()
    row = model.prompt_tokenizer.rows(0, words, LABELS, 384, 12)[0]
    prompt = ["<<ENT>>", "person", "<<ENT>>", "city", "<<ENT>>", "company", "<<SEP>>"]
    assert model.prompt_tokenizer.collate([row.prompt], [row.words]).input_ids[0].tolist() == \
        model.tokenizer(prompt + words, is_split_into_words=True)["input_ids"]

    model.save_pretrained(tmp_path / "ckpt")
    again = GLiNER.from_pretrained(tmp_path / "ckpt", device="cpu")
    assert_same_entities(again.predict(TEXTS, LABELS, threshold=0.3, flat_ner=False), predicted)
    reference = ReferenceGLiNER.from_pretrained(str(tmp_path / "ckpt"), map_location="cpu")
    assert_same_entities(reference.inference(TEXTS, LABELS, threshold=0.3, flat_ner=False), predicted)
