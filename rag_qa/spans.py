"""Span QA features and decoding, shared by training, evaluation and the extractive reader.

Encoding follows the standard SQuAD recipe (question + context, truncating the context
only, ``max_length``/``doc_stride`` sliding windows, offset mappings). Decoding follows
HF ``utils_qa.py``: plain numpy over the n-best start/end logits of every window, with a
null (CLS) score and ``max_answer_length``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    """One tokenised (question, context-window) pair.

    ``offsets[t]`` is the (start, end) character span of token t in the context, or None
    for question/special tokens, so decoding can never return question text.
    """

    example: int  # index of the (question, context) pair this window came from
    input_ids: list[int]
    attention_mask: list[int]
    token_type_ids: list[int] | None
    offsets: list[tuple[int, int] | None]
    cls_index: int


def model_inputs(window: Window) -> dict:
    """The model's keyword inputs for one window (unpadded lists)."""
    item = {"input_ids": window.input_ids, "attention_mask": window.attention_mask}
    if window.token_type_ids is not None:
        item["token_type_ids"] = window.token_type_ids
    return item


def fit_questions(tokenizer, questions: Sequence[str], max_length: int, doc_stride: int) -> list[str]:
    """``questions`` left-stripped, each cut to its first ``(max_length - doc_stride - 3) // 2`` tokens.

    A window holds the whole question, so a question of more than ``max_length - doc_stride - 3`` tokens
    leaves less context than the stride and the tokenizer refuses the batch (a Rust panic, which is not
    an ``Exception``); half that room keeps every window at least ~half context.  SQuAD's longest
    questions (~60 tokens) are far below the cut at 384/128 (126 tokens), so they are never touched."""
    limit = max(1, (max_length - doc_stride - 3) // 2)
    fitted = []
    for question in questions:
        question = question.lstrip()
        # a token covers at least one UTF-8 byte, so only a longer question can be over the limit
        if len(question.encode()) > limit:
            offsets = tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
            if len(offsets) > limit:
                question = question[: offsets[limit - 1][1]]
        fitted.append(question)
    return fitted


def encode_windows(
    tokenizer,
    questions: Sequence[str],
    contexts: Sequence[str],
    max_length: int = 384,
    doc_stride: int = 128,
) -> list[Window]:
    """Tokenise pairs into overlapping windows; long contexts give several windows each."""
    questions = fit_questions(tokenizer, questions, max_length, doc_stride)
    enc = tokenizer(
        list(questions),
        list(contexts),
        truncation="only_second",
        max_length=max_length,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=False,
    )
    windows = []
    for i, input_ids in enumerate(enc["input_ids"]):
        seq_ids = enc.sequence_ids(i)
        offsets = [
            tuple(off) if seq_ids[t] == 1 else None for t, off in enumerate(enc["offset_mapping"][i])
        ]
        cls = input_ids.index(tokenizer.cls_token_id) if tokenizer.cls_token_id in input_ids else 0
        windows.append(
            Window(
                example=enc["overflow_to_sample_mapping"][i],
                input_ids=input_ids,
                attention_mask=enc["attention_mask"][i],
                token_type_ids=enc["token_type_ids"][i] if "token_type_ids" in enc else None,
                offsets=offsets,
                cls_index=cls,
            )
        )
    return windows


def label_window(window: Window, answer_start: int | None, answer_text: str | None) -> tuple[int, int]:
    """Token (start, end) of the answer inside this window, or (cls, cls) if it is not fully inside."""
    if answer_start is None or not answer_text:
        return window.cls_index, window.cls_index
    start_char, end_char = answer_start, answer_start + len(answer_text)
    ctx = [t for t, off in enumerate(window.offsets) if off is not None]
    if not ctx:
        return window.cls_index, window.cls_index
    first, last = ctx[0], ctx[-1]
    if window.offsets[first][0] > start_char or window.offsets[last][1] < end_char:
        return window.cls_index, window.cls_index
    # walk in from both ends to the tokens covering the answer characters
    ts = first
    while ts <= last and window.offsets[ts][1] <= start_char:
        ts += 1
    te = last
    while te >= first and window.offsets[te][0] >= end_char:
        te -= 1
    if ts > te:  # answer falls inside whitespace between tokens; treat as absent
        return window.cls_index, window.cls_index
    return ts, te


@dataclass(frozen=True)
class Span:
    """A candidate answer: character offsets into the context and its scores."""

    start: int
    end: int
    logit: float  # start_logit + end_logit, the raw span score
    prob: float  # p_start * p_end within its window (comparable across windows/passages)
    null_logit: float  # CLS start + end logit of the same window
    null_prob: float
    window: int

    @property
    def margin(self) -> float:
        """Span score minus its window's null score: how strongly the model prefers this span over
        "not in this window".  Unlike ``logit`` or ``prob`` it ranks spans of different windows and
        passages consistently (the null option absorbs each input's logit offset)."""
        return self.logit - self.null_logit


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def decode_window(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    window: Window,
    window_index: int = 0,
    n_best: int = 20,
    max_answer_length: int = 30,
) -> list[Span]:
    """n-best spans of one window.  start/end_logits: (seq_len,) float arrays (padding allowed)."""
    seq_len = len(window.input_ids)
    start_logits = np.asarray(start_logits[:seq_len], dtype=np.float64)
    end_logits = np.asarray(end_logits[:seq_len], dtype=np.float64)
    # probabilities over the real tokens of this window (CLS included = "not in this window")
    p_start, p_end = _softmax(start_logits), _softmax(end_logits)
    cls = window.cls_index
    null_logit = float(start_logits[cls] + end_logits[cls])
    null_prob = float(p_start[cls] * p_end[cls])
    ctx = np.array([o is not None for o in window.offsets])
    masked_start = np.where(ctx, start_logits, -np.inf)
    masked_end = np.where(ctx, end_logits, -np.inf)
    k = min(n_best, int(ctx.sum()))
    if k == 0:
        return []
    starts = np.argsort(-masked_start)[:k]
    ends = np.argsort(-masked_end)[:k]
    spans = []
    for s in starts:
        for e in ends:
            if e < s or e - s + 1 > max_answer_length:
                continue
            spans.append(
                Span(
                    start=window.offsets[s][0],
                    end=window.offsets[e][1],
                    logit=float(start_logits[s] + end_logits[e]),
                    prob=float(p_start[s] * p_end[e]),
                    null_logit=null_logit,
                    null_prob=null_prob,
                    window=window_index,
                )
            )
    spans.sort(key=lambda sp: -sp.logit)
    return spans[:n_best]


def decode_example(
    start_logits: Sequence[np.ndarray],
    end_logits: Sequence[np.ndarray],
    windows: Sequence[Window],
    n_best: int = 20,
    max_answer_length: int = 30,
) -> tuple[list[Span], float]:
    """n-best spans over all windows of one example, and the minimum null logit (utils_qa style)."""
    spans: list[Span] = []
    min_null = float("inf")
    for w, (s, e, win) in enumerate(zip(start_logits, end_logits, windows, strict=True)):
        cand = decode_window(s, e, win, w, n_best=n_best, max_answer_length=max_answer_length)
        spans.extend(cand)
        cls = win.cls_index
        min_null = min(min_null, float(s[cls] + e[cls]))
    # identical character spans from overlapping windows: keep the best-scored copy
    best: dict[tuple[int, int], Span] = {}
    for sp in spans:
        if (sp.start, sp.end) not in best or sp.margin > best[(sp.start, sp.end)].margin:
            best[(sp.start, sp.end)] = sp
    ranked = sorted(best.values(), key=lambda sp: -sp.margin)[:n_best]
    return ranked, min_null
