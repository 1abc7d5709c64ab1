"""The paper's training recipe, the same on every worker:

    loss      = BCE (or focal) over every valid (span of up to max_width words) x (prompt type) pair, summed
    optimizer = AdamW, encoder lr 1e-5 and the rest 5e-5, weight decay 0.01 except biases and LayerNorms
    schedule  = linear warm-up over the first 10% of steps, then cosine decay to 0; gradients clipped at 1.0
    precision = bf16 autocast where bf16 products are native (recent GPUs, CPUs with AVX512-BF16 or AMX);
                weights, gradients and optimizer state in fp32
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from transformers import get_cosine_schedule_with_warmup

from .batches import TrainingBatch
from .settings import TrainSettings


def span_loss(logits: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor, reduction: str = "sum",
              alpha: float = -1.0, gamma: float = 0.0) -> torch.Tensor:
    """Binary cross-entropy of every valid span x type pair, optionally focal:

        loss = BCE(logit, y) * (1 - p_t)^gamma * (alpha if y else 1 - alpha),  p_t = p if y else 1 - p

    summed over the valid pairs (``reduction="sum"``, as the reference trainer does, so its learning rates
    mean the same here) or divided by the number of valid spans (``"mean"``, as the reference does too).
    """
    logits = logits.float()
    loss = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    if gamma > 0:
        p = torch.sigmoid(logits)
        p_true = p * labels + (1 - p) * (1 - labels)
        loss = loss * (1 - p_true) ** gamma
    if alpha >= 0:
        loss = loss * (alpha * labels + (1 - alpha) * (1 - labels))
    total = (loss * valid).sum()
    if reduction == "mean":
        return total / valid.any(dim=-1).sum().clamp(min=1)
    return total


def parameter_groups(model: torch.nn.Module, lr_encoder: float, lr_other: float, weight_decay: float) -> list[dict]:
    """AdamW groups: encoder vs the rest (their own learning rates), each with weight decay except on biases
    and LayerNorm weights (as the reference trainer does)."""
    no_decay = {id(p) for m in model.modules() if isinstance(m, torch.nn.LayerNorm) for p in m.parameters()}
    groups: dict[tuple[bool, bool], list] = {(e, d): [] for e in (True, False) for d in (True, False)}
    for name, param in model.named_parameters():
        if param.requires_grad:
            decays = "bias" not in name and id(param) not in no_decay
            groups[(name.startswith("encoder."), decays)].append(param)
    return [
        {"params": params, "lr": lr_encoder if encoder else lr_other, "weight_decay": weight_decay if decays else 0.0,
         "name": ("encoder" if encoder else "other") + ("" if decays else "_no_decay")}
        for (encoder, decays), params in groups.items()
        if params
    ]


def group_lr(optimizer: torch.optim.Optimizer, name: str) -> float:
    """The current learning rate of the parameter group called ``name`` ("encoder", "other")."""
    return next(g["lr"] for g in optimizer.param_groups if g["name"] == name)


def warmup_cosine(optimizer: torch.optim.Optimizer, steps: int, warmup_ratio: float):
    """Linear warm-up over ``warmup_ratio`` of the steps, then cosine decay to 0."""
    return get_cosine_schedule_with_warmup(optimizer, math.ceil(steps * warmup_ratio), steps)


def optimizer_and_schedule(model: torch.nn.Module, settings: TrainSettings, state: dict[str, Any]):
    """AdamW over ``model``'s parameter groups and its warm-up/cosine schedule, restored from the trainer
    ``state`` of a checkpoint when it holds them."""
    groups = parameter_groups(model, settings.lr_encoder, settings.lr_other, settings.weight_decay)
    optimizer = torch.optim.AdamW(groups, fused=True)  # one kernel for all tensors: ~7x faster than foreach on CPU
    scheduler = warmup_cosine(optimizer, settings.steps, settings.warmup_ratio)
    if "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    return optimizer, scheduler


def train_step(model: torch.nn.Module, batches: Sequence[TrainingBatch], optimizer: torch.optim.Optimizer,
               scheduler, settings: TrainSettings, autocast) -> torch.Tensor:
    """One optimizer step over ``batches`` (more than one: gradient accumulation), returning the step's loss
    on the device, unsynchronized. The micro-batches' losses add up to the loss of one batch holding them all
    (with ``loss_reduction="mean"`` all are divided by the valid spans of all), so accumulating k batches of n
    takes the step a batch of k x n would. Under DDP gradients are exchanged only after the last one."""
    if settings.loss_reduction == "mean":
        spans = torch.stack([b.valid.any(dim=-1).sum() for b in batches]).sum().clamp(min=1)
    total = torch.zeros((), device=batches[0].labels.device)
    optimizer.zero_grad(set_to_none=True)
    for k, batch in enumerate(batches):
        last = k == len(batches) - 1
        sync = contextlib.nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync()
        with sync:
            with autocast:
                logits = model(**batch.inputs.model_inputs())
            loss = span_loss(logits, batch.labels, batch.valid, "sum", settings.focal_alpha, settings.focal_gamma)
            if settings.loss_reduction == "mean":
                loss = loss / spans
            loss.backward()
        total += loss.detach()
    torch.nn.utils.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
    optimizer.step()
    scheduler.step()
    return total
