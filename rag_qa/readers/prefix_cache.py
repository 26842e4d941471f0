"""The KV cache of a prompt's fixed head, computed once and copied into every reply that starts with it.

Every prompt of the generative reader opens the same way: the chat template's opening and the system
prompt (the instructions, the refusal sentence), 51 of the ~590 tokens of Gemma 3's prompt with three
passages.  Prefill is most of an answer's time on a CPU, and it runs at the matmul floor, so the only way
to make it cheaper is to feed fewer tokens: :class:`PrefixCache` runs the head through the model once per
system prompt and hands ``generate()`` a copy of that cache, which then feeds only the rest of the prompt
(transformers' prompt re-use).  The head's keys and values are the same tensors either way (up to float
rounding in a differently blocked matmul), so replies do not change; ``tests/test_generative_tuned.py``
compares them, token for token, on held-out questions.
"""

from __future__ import annotations

import copy
import inspect
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

#: user turns that share no first character: the head is what their prompts have in common
_PROBES = ("a", "Z", "<", "1", " ")
#: shorter heads are not worth a copy per reply
MIN_HEAD_TOKENS = 16
#: system prompts remembered (one per prompt style in use; each head's cache is ~2 MB for Gemma 3 270M)
MAX_HEADS = 8


def cache_kwarg(model: Any) -> str:
    """The name ``model``'s forward and ``generate()`` take a KV cache under: ``cache`` in newer transformers 5.x
    (``past_key_values`` is deprecated there, and removed in 5.40), ``past_key_values`` before."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


class PrefixCache:
    """Per system prompt, the head's token ids and their KV cache (made on first use, under a lock)."""

    def __init__(self, model: Any, encode: Callable[[Sequence[dict[str, str]]], list[int]]) -> None:
        self.model, self.encode = model, encode
        self.kwarg = cache_kwarg(model)
        params = inspect.signature(model.forward).parameters
        self._last_logit_only = {"logits_to_keep": 1} if "logits_to_keep" in params else {}
        self._heads: OrderedDict[str, tuple[list[int], Any] | None] = OrderedDict()
        self._lock = threading.Lock()

    def for_prompt(self, messages: Sequence[dict[str, str]], ids: Sequence[int]) -> dict[str, Any]:
        """``{kwarg: a copy of the head's cache}`` to pass to ``generate()`` when ``ids`` (the whole prompt)
        starts with its system prompt's head and goes on past it; else ``{}`` (generate() prefills it all)."""
        system = [m for m in messages if m.get("role") == "system"]
        if not system:
            return {}
        head = self._head(system)
        if head is None:
            return {}
        head_ids, cache = head
        if len(ids) <= len(head_ids) or list(ids[: len(head_ids)]) != head_ids:
            return {}  # tokenised differently at the seam: prefill it all
        return {self.kwarg: copy.deepcopy(cache)}  # generate() appends to it: each reply its own copy

    def _head(self, system: list[dict[str, str]]) -> tuple[list[int], Any] | None:
        key = "\x00".join(m["content"] for m in system)
        with self._lock:
            if key in self._heads:
                self._heads.move_to_end(key)
                return self._heads[key]
            encodings = [self.encode([*system, {"role": "user", "content": probe}]) for probe in _PROBES]
            ids = list(os.path.commonprefix(encodings))
            head = (ids, self._prefill(ids)) if len(ids) >= MIN_HEAD_TOKENS else None
            self._heads[key] = head
            if len(self._heads) > MAX_HEADS:
                self._heads.popitem(last=False)
            return head

    def _prefill(self, ids: list[int]) -> Any:
        """The model's KV cache after ``ids`` (its own cache type: Gemma 3's sliding-window layers stay so)."""
        import torch
        from transformers import DynamicCache

        cache = DynamicCache(config=self.model.config)
        tensor = torch.tensor([ids])  # (1, T)
        with torch.inference_mode():
            self.model(input_ids=tensor, attention_mask=torch.ones_like(tensor), use_cache=True,
                       **self._last_logit_only, **{self.kwarg: cache})
        return cache


__all__ = ["MAX_HEADS", "MIN_HEAD_TOKENS", "PrefixCache", "cache_kwarg"]
