"""Refusal by score: the reply's first token decides between answering and refusing.

A generative reader trained to say :data:`~rag_qa.readers.prompting.REFUSAL` when no passage holds the
answer starts that reply with one token (" I").  Greedy decoding refuses only when that token is the most
likely first token, a boundary that moved between training runs (refusals 82% and 70% with the gold
paragraph removed, false refusals 9% and 1%).  :class:`RefusalThreshold` makes it a setting instead:
refuse when the first token's probability reaches ``threshold`` (``RAGQA_LLM_REFUSAL_THRESHOLD``, picked on
dev questions by ``benchmarks/refusal_threshold.py``), else answer with that token ruled out.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from transformers import LogitsProcessor


class RefusalThreshold(LogitsProcessor):
    """At the first generated token only: rows whose refusal-token probability is ``>= threshold`` may
    only start the refusal; the others may not start it.  Later tokens are left alone, so a refusal is
    finished (and an answer written) by the model as usual.  ``threshold > 1`` never refuses, which is
    how the threshold is fitted: every prompt's answer and its refusal probability from one pass.

    ``token_id``: the refusal's first token as the model is trained to write it
    (``encode_reply(tokenizer, REFUSAL)[0]``).  ``probabilities`` holds each row's refusal probability
    once the first token is chosen.
    """

    def __init__(self, token_id: int, threshold: float) -> None:
        self.token_id, self.threshold = token_id, threshold
        self.probabilities: list[float] | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.probabilities is not None:  # past the reply's first token
            return scores
        # scores: (batch, vocab) logits of the reply's first token
        p = torch.softmax(scores.float(), dim=-1)[:, self.token_id]  # (batch,)
        self.probabilities = p.tolist()
        refuse = p >= self.threshold  # (batch,)
        out = scores.clone()
        out[refuse] = -math.inf  # a refusing row keeps only the refusal's first token ...
        out[refuse, self.token_id] = scores[refuse, self.token_id]
        out[~refuse, self.token_id] = -math.inf  # ... an answering row may not start it
        return out


def recorded(backend: Any) -> list[RefusalThreshold]:
    """Make ``backend`` (a :class:`~rag_qa.readers.llm_backends.TransformersChat`) keep every rule it makes,
    one per reply, in the list returned: each rule's ``probabilities`` are that reply's refusal probability
    (how the benchmark and the tests read p)."""
    rules: list[RefusalThreshold] = []
    made_by = backend.refusal_rule
    backend.refusal_rule = lambda: rules.extend(made_by()) or rules[-1:]
    return rules
