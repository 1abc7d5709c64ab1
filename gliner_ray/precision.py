"""Number formats for the model: which ones the hardware computes natively, and the flag that picks one.

``auto`` means bf16 where bf16 matrix products are native (GPUs from Ampere on; CPUs with AVX512-BF16 or AMX,
where they take about half the fp32 time), fp16 on older GPUs, fp32 elsewhere. A format the hardware cannot do
is refused with the alternative named, never emulated slowly.
"""

from __future__ import annotations

from pathlib import Path

import torch

PRECISIONS = ("auto", "bf16", "fp16", "fp32")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def bf16_native(device: torch.device) -> bool:
    """Whether ``device`` multiplies bf16 matrices natively."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type != "cpu":
        return False
    try:
        cpu_flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in cpu_flags or "amx_bf16" in cpu_flags


def uses_bf16(precision: str, device: torch.device) -> bool:
    """Whether to train under bf16 autocast (weights and optimizer stay fp32). "auto" turns it on where bf16
    matrix products are native: GPUs that support it, and CPUs with AVX512-BF16 or AMX, where the encoder's
    forward and backward take about half the fp32 time."""
    if precision != "auto":
        return precision == "bf16"
    return bf16_native(device)


def inference_dtype(precision: str | torch.dtype | None, device: torch.device | str) -> torch.dtype:
    """The dtype to run a model in on ``device`` for ``precision`` (a PRECISIONS name, a torch dtype, or None
    for fp32). Raises ValueError, naming the alternative, for a format the device cannot compute natively."""
    device = torch.device(device)
    if precision is None:
        return torch.float32
    if isinstance(precision, torch.dtype):
        names = {dtype: name for name, dtype in DTYPES.items()}
        if precision not in names:
            raise ValueError(f"dtype {precision} is not a model precision: use one of {', '.join(PRECISIONS)}")
        precision = names[precision]
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        if bf16_native(device):
            return torch.bfloat16
        return torch.float16 if device.type == "cuda" else torch.float32
    if precision == "fp16" and device.type != "cuda":
        alternative = "bf16 (native on this CPU)" if bf16_native(device) else "fp32"
        raise ValueError(f"precision fp16 needs a GPU; {device.type} has no fast fp16: use {alternative}, or auto")
    if precision == "bf16" and not bf16_native(device):
        alternative = "fp16" if device.type == "cuda" else "fp32"
        what = torch.cuda.get_device_name(device) if device.type == "cuda" else "this CPU (no AVX512-BF16 or AMX)"
        raise ValueError(f"precision bf16 is not native on {what}: use {alternative}, or auto")
    return DTYPES[precision]
