"""Decode steps that read half-precision copies of the linear layers' weights; prefill keeps the model's own.

A generated token is one row through every linear layer: a matrix-vector product, bound by how fast the
weights stream from memory, not by arithmetic.  Gemma 3 270M's 126 linear layers hold ~100M fp32 weights
(400 MB per token); their fp16 copies are half that, and the token costs about half as much (on 2 cores, 36 ms
-> 16 ms for the 126 products; ``benchmarks/gen_speed.py --decode-weights``).  Prefill, many rows at once, is
bound by arithmetic instead, and a CPU without native half precision runs it slower, so calls of more than
:data:`MAX_DECODE_ROWS` rows keep the fp32 weights (the copies cost ~200 MB of memory).

fp16 rounds a weight to 11 significant bits (bf16: 8), so replies can differ from fp32's where two tokens are
nearly tied; on held-out dev questions they did not (README, "Readers"; ``tests/test_generative_tuned.py``
compares them token for token).  fp16 overflows above 65504: a call whose output is not finite is done again
in fp32, so a large activation costs time, never a wrong token.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F

#: calls of at most this many rows (tokens x batch) read the half-precision copy: decode steps, not prefill
MAX_DECODE_ROWS = 8
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


class HalfDecodeLinear(torch.nn.Module):
    """Wraps an ``nn.Linear``: few-row calls through a half-precision copy of its weight, the rest through it."""

    def __init__(self, linear: torch.nn.Linear, dtype: torch.dtype) -> None:
        super().__init__()
        self.linear, self.dtype = linear, dtype
        self.register_buffer("half_weight", linear.weight.detach().to(dtype), persistent=False)  # (out, in)
        bias = None if linear.bias is None else linear.bias.detach().to(dtype)
        self.register_buffer("half_bias", bias, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., in)`` -> ``(..., out)`` in ``x``'s dtype."""
        if x.shape[:-1].numel() > MAX_DECODE_ROWS:
            return self.linear(x)
        out = F.linear(x.to(self.dtype), self.half_weight, self.half_bias)
        if not torch.isfinite(out).all():  # beyond fp16's range: this call in the full weights instead
            return self.linear(x)
        return out.to(x.dtype)


def _children(model: Any, keep: Callable[[torch.nn.Module], bool]) -> list[tuple[torch.nn.Module, str, Any]]:
    """``(parent, attribute name, child)`` for every submodule of ``model`` that ``keep`` accepts: what to swap."""
    return [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
            if keep(child)]


def install(model: Any, dtype: str) -> int:
    """Wrap every fp32 ``nn.Linear`` of ``model`` but its output layer (the vocabulary heads handle that one);
    returns how many.  ``dtype``: ``fp16`` or ``bf16``.  Loaded weights only: the copies do not follow training."""
    half = DTYPES[dtype]
    head = model.get_output_embeddings()
    targets = _children(model, lambda child: type(child) is torch.nn.Linear and child is not head
                        and child.weight.dtype == torch.float32)
    for parent, name, child in targets:
        setattr(parent, name, HalfDecodeLinear(child, half))
    return len(targets)


@contextlib.contextmanager
def full_weights(model: Any) -> Iterator[None]:
    """``model`` with its own linear layers back in place for the duration (side-by-side comparisons)."""
    wrapped = _children(model, lambda child: isinstance(child, HalfDecodeLinear))
    for parent, name, child in wrapped:
        setattr(parent, name, child.linear)
    try:
        yield
    finally:
        for parent, name, child in wrapped:
            setattr(parent, name, child)


__all__ = ["DTYPES", "MAX_DECODE_ROWS", "HalfDecodeLinear", "full_weights", "install"]
