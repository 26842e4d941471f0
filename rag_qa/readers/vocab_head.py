"""An output layer over the tokens a grounded reply can use: the prompt's own, for every token after the first.

Our tuned reader copies its answer from a passage and cites it (``Paul Baran [2]``) or says the refusal.
Gemma 3's output layer is 262k x 640: for each generated token it reads more weights than the 18 layers
below it together (about 670 MB of fp32 against 400 MB), yet only the few hundred token ids of the prompt
(the passages, the question, the refusal in the system prompt) and their space-toggled forms, the citation
and the end-of-turn tokens, can continue a copied phrase.  :class:`PromptVocabHead` computes logits for
those ids alone and leaves every other id at ``-inf``, so greedy decoding picks among them at a fraction
of the cost.  The first token of each reply still gets the full layer: it is where the reader chooses
between an answer and the refusal (and where :mod:`rag_qa.readers.refusal`'s threshold reads the full
distribution).  The tuned reader's default (``RAGQA_LLM_VOCAB=full`` turns it off): on dev questions with
and without their gold passage its replies were the full layer's (README, "Readers"), and a test compares
the two, token for token, on held-out questions.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import torch


class PromptVocabHead(torch.nn.Module):
    """Wraps a causal LM's ``lm_head``; restricted only inside :meth:`restricted_to` on the calling thread."""

    def __init__(self, full: torch.nn.Module, weight: torch.Tensor) -> None:
        super().__init__()
        self.full = full
        self.weight = weight  # (V, H) float: the head's own weight, or the input embeddings it is tied to
        bias = getattr(full, "bias", None)
        self.bias = bias() if callable(bias) else bias  # a quantised Linear's bias is a method
        self._state = threading.local()  # generate() runs on the streaming thread; each reply has its own ids

    @contextlib.contextmanager
    def restricted_to(self, ids: Sequence[int]) -> Iterator[None]:
        """Logits for ``ids`` alone, on this thread, from the second call on (the first: the full layer)."""
        index = torch.tensor(sorted(set(ids)), dtype=torch.long)
        self._state.index, self._state.rows, self._state.calls = index, self.weight[index], 0  # rows: (K, H)
        try:
            yield
        finally:
            self._state.index = None

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """``(B, T, H)`` hidden states -> ``(B, T, V)`` logits."""
        index = getattr(self._state, "index", None)
        if index is None or self._state.calls == 0:
            if index is not None:
                self._state.calls += 1
            return self.full(hidden)
        logits = hidden @ self._state.rows.T  # (B, T, K)
        if self.bias is not None:
            logits = logits + self.bias[index]
        out = hidden.new_full((*hidden.shape[:-1], self.weight.shape[0]), float("-inf"))
        out[..., index] = logits.to(out.dtype)
        return out


def install(model: Any) -> PromptVocabHead | None:
    """Put a :class:`PromptVocabHead` around ``model``'s output layer (once); None when it has none, or when
    the layer's float weight cannot be had (an untied quantised head)."""
    head = model.get_output_embeddings()
    if head is None or isinstance(head, PromptVocabHead):
        return head
    weight = head.weight if isinstance(getattr(head, "weight", None), torch.Tensor) else None
    if weight is None and getattr(model.config, "tie_word_embeddings", False):
        weight = model.get_input_embeddings().weight  # int8-head: the float rows it was quantised from
    if weight is None:
        return None
    wrapped = PromptVocabHead(head, weight.detach())
    model.set_output_embeddings(wrapped)
    return wrapped


def reply_vocabulary(tokenizer: Any, prompt_ids: Sequence[int], fixed: Sequence[int] = ()) -> list[int]:
    """The ids a grounded reply to ``prompt_ids`` may use: the prompt's own, each with its word-start marker
    toggled (a copied phrase's first word starts the reply without the space it had in the passage), and
    ``fixed`` (:func:`fixed_reply_ids`: the refusal, the citations, the end of the turn)."""
    ids = set(prompt_ids)
    unknown = tokenizer.unk_token_id
    for token in tokenizer.convert_ids_to_tokens(sorted(ids)):
        if not token:
            continue
        for marker in ("▁", "Ġ"):  # SentencePiece's and byte-level BPE's word starts
            other = tokenizer.convert_tokens_to_ids(token[1:] if token.startswith(marker) else marker + token)
            if other is not None and other != unknown:
                ids.add(other)
    ids.update(fixed)
    return sorted(ids)


def fixed_reply_ids(replies: Sequence[Sequence[int]], end_ids: Sequence[int]) -> list[int]:
    """What every reply may use whatever the prompt: the tokens of ``replies`` and ``end_ids``."""
    return sorted({*end_ids, *(t for reply in replies for t in reply)})


__all__ = ["PromptVocabHead", "fixed_reply_ids", "install", "reply_vocabulary"]
