"""What the machine's arithmetic does natively: one answer for every reader and trainer.

bf16 pays off only where the hardware computes in it (Ampere+ GPUs; CPUs with AVX512-BF16 or
AMX); elsewhere PyTorch emulates it and fp32 is faster.  A leaf module: standard library only
until a caller asks about CUDA.
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """Does this CPU compute in bf16 natively (AVX512-BF16 or AMX)?"""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = fh.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def native_bf16(device: str = "cpu") -> bool:
    """Does ``device`` ("cpu" or "cuda") run bf16 natively?"""
    if device == "cuda":
        import torch

        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return cpu_has_bf16()


def pick_precision(requested: str) -> str:
    """The training arithmetic for ``requested`` ("auto", "bf16", "fp16" or "fp32"): "auto" is bf16
    where the hardware does it natively (Ampere+ GPUs, AVX512-BF16/AMX CPUs), else fp16 on a GPU
    and fp32 on a CPU."""
    if requested != "auto":
        return requested
    import torch

    if torch.cuda.is_available():
        return "bf16" if native_bf16("cuda") else "fp16"
    return "bf16" if native_bf16("cpu") else "fp32"
