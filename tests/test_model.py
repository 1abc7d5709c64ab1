"""The factored span head against the direct per-span formula of the GLiNER paper and reference checkpoints."""

import pytest
import torch

from gliner_ray.models.span import SpanHead, span_mask


def direct_span_scores(head: SpanHead, words: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
    """span_ij = out_project(ReLU([start(h_i) ; end(h_j)])) for every (i, width), then · each type vector."""
    b, n, d = words.shape
    starts, ends = head.project_start(words), head.project_end(words)
    scores = torch.zeros(b, n, head.max_width, types.shape[1])
    for i in range(n):
        for k in range(head.max_width):
            j = min(i + k, n - 1)  # spans past the end are masked anyway
            span = head.out_project(torch.cat([starts[:, i], ends[:, j]], dim=-1).relu())  # (B, D)
            scores[:, i, k] = torch.einsum("bd,bcd->bc", span, types)
    return scores


@pytest.mark.parametrize("span_mode", ["markerV0", "marker"])
def test_factored_scores_equal_the_direct_formula(span_mode):
    torch.manual_seed(0)
    head = SpanHead(hidden_size=16, max_width=4, dropout=0.4, span_mode=span_mode).eval()
    words, types, counts = torch.randn(2, 7, 16), torch.randn(2, 3, 16), torch.tensor([7, 5])
    factored = head(words, types, counts)
    valid = span_mask(counts, 7, 4)
    direct = direct_span_scores(head, words, types)
    torch.testing.assert_close(factored[valid], direct[valid], rtol=1e-5, atol=1e-5)
    # Padding words never reach a span inside the text, whatever they hold.
    words[1, 5:] = 1e6
    torch.testing.assert_close(head(words, types, counts)[valid], factored[valid])


def test_dropout_drops_the_given_share_and_keeps_the_expectation():
    from gliner_ray.model import Dropout

    torch.manual_seed(0)
    x = torch.ones(200_000)
    dropped = Dropout(0.4).train()(x)
    assert abs((dropped == 0).float().mean().item() - 0.4) < 0.01
    assert abs(dropped.mean().item() - 1.0) < 0.01
    assert torch.equal(Dropout(0.4).eval()(x), x)


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    head = SpanHead(hidden_size=8, max_width=3, dropout=0.1)
    words, types = torch.randn(1, 5, 8, requires_grad=True), torch.randn(1, 2, 8, requires_grad=True)
    head(words, types, torch.tensor([5])).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())
    assert words.grad.abs().sum() > 0 and types.grad.abs().sum() > 0
