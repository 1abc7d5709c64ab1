"""A simulated accelerator for the feed benchmark: ``GLiNER.forward`` replaced by a stand-in that waits as a GPU
would and costs the CPU next to nothing. Everything around it (collation, candidate selection, decoding, the
whole extraction job) stays the production code.

The stand-in holds the caller's model lock for (sub-tokens in the padded batch) / rate seconds in ``time.sleep``,
which releases the GIL as a wait on a CUDA stream does, and returns span logits of the model's shape,
(rows, words, max_width, labels), that put one candidate (width 1) on every ``EVERY``-th word of each text,
whatever window it falls in, so overlapping windows agree and in-process ``GLiNER.predict`` finds the same.

Ray runs the model in its worker processes, so the swap must happen there: ``setup_hook(rate)`` is a
``worker_process_setup_hook`` for ``ray.init``'s runtime_env (pickled by value: workers need not import this file).
"""

from __future__ import annotations

import functools
import sys
import time

EVERY = 20  # one candidate per this many words
HIT, MISS = 4.0, -12.0  # logits: sigmoid 0.98 and 6e-6


def install(words_per_second: float | None) -> None:
    """Replace ``GLiNER.forward`` in this process (None: no wait, for in-process predict's reference run)."""
    from gliner_ray.predict.base import GLiNER

    GLiNER.forward = functools.partialmethod(simulated_forward, words_per_second)


def setup_hook(words_per_second: float):
    """A ``worker_process_setup_hook`` installing the stand-in at the rate given, in every Ray worker."""
    from ray import cloudpickle  # Ray's own copy pickles the hook

    cloudpickle.register_pickle_by_value(sys.modules[__name__])

    def install_simulated_accelerator() -> None:
        install(words_per_second)

    return install_simulated_accelerator


def simulated_forward(model, words_per_second: float | None, batch, rows):
    """Span logits as the model returns them, after a wait of the batch's padded sub-tokens / rate."""
    import torch

    if words_per_second:
        time.sleep(batch.input_ids.numel() / words_per_second)
    num_rows, num_words = batch.word_index.shape
    num_types, max_width = batch.type_index.shape[1], model.config.max_width
    logits = torch.full((num_rows, num_words, max_width, num_types), MISS)
    first_word = torch.tensor([row.window.start for row in rows]).unsqueeze(1)
    word = first_word + torch.arange(num_words)  # each position's word in its text
    rows_, positions = torch.nonzero(word % EVERY == EVERY // 2, as_tuple=True)
    types = (word[rows_, positions] // EVERY) % batch.type_counts[rows_]
    # Scores that differ from word to word, so that decoding has an order to keep.
    logits[rows_, positions, 0, types] = HIT + (word[rows_, positions] % 7).float() / 8
    return logits
