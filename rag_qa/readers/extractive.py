"""Extractive reader: a span-head transformer reads every retrieved passage and returns exact
document words, a confidence comparable across passages, or "no answer".

Shaped after Haystack's ``ExtractiveReader`` (lazy ``warm_up``, batched forward over all
passages) with HF ``utils_qa.py`` post-processing (n-best over start/end logits, null score,
``max_answer_length``), shared with training through :mod:`rag_qa.spans`.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rag_qa.config import Settings
from rag_qa.hardware import native_bf16
from rag_qa.models import DEFAULT_READER, resolve_model
from rag_qa.readers.base import Reader
from rag_qa.spans import Span, Window, decode_example, encode_windows, model_inputs
from rag_qa.types import Answer, Citation, Passage

#: the ExtractiveConfig fields a user sets (``RAGQA_*``), by the Settings field each comes from: their
#: defaults and descriptions live in :class:`rag_qa.config.Settings` alone, and the registry shares a
#: reader between callers whose settings agree on these
SETTINGS = {"max_answer_length": "max_answer_length", "no_answer_threshold": "no_answer_threshold",
            "precision": "reader_precision"}


def _setting_default(name: str):
    return Settings.model_fields[name].default


@dataclass
class ExtractiveConfig:
    model: str = DEFAULT_READER
    max_length: int = 384
    doc_stride: int = 128
    max_answer_length: int = _setting_default("max_answer_length")  # tokens
    n_best: int = 20
    batch_size: int = 32
    # an answer whose confidence is below this is reported as "no answer": the passages most
    # likely do not hold one
    no_answer_threshold: float = _setting_default("no_answer_threshold")
    # confidence = sigmoid(a * (margin - rank_weight * log(1 + rank)) + b): margin = span score -
    # its window's null score, rank = the passage's place in the retrieved list (0 = first);
    # fitted on SQuAD dev retrieval results by benchmarks/calibrate_reader.py and stored beside
    # the weights (calibration.json); these defaults are used when a model has none
    calibration: tuple[float, float] | None = None
    rank_weight: float | None = None  # None: calibration.json's, else 0 (the reader alone ranks)
    precision: str = _setting_default("reader_precision")  # auto | fp32 | bf16 | int8 (dynamic quantisation, CPU only)
    device: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, **fields: Any) -> ExtractiveConfig:
        """The config with the user's reader settings (:data:`SETTINGS`), plus ``fields``."""
        return cls(**{name: getattr(settings, source) for name, source in SETTINGS.items()}, **fields)


#: sigmoid((margin - 8) / 2): margins of right answers sit around 12-16, of wrong ones below 10
DEFAULT_CALIBRATION = (0.5, -4.0)


def load_calibration(model_dir: str) -> tuple[tuple[float, float], float]:
    """((a, b), rank_weight) from ``calibration.json`` in the model directory, else
    (:data:`DEFAULT_CALIBRATION`, 0): the retriever's rank then plays no part."""
    path = Path(model_dir) / "calibration.json"
    try:
        data = json.loads(path.read_text())
        a, b = float(data["a"]), float(data["b"])
        if not a > 0:  # confidence must grow with the margin (a broken fit would turn it upside down)
            raise ValueError(f"calibration slope {a} is not positive")
        return (a, b), float(data.get("rank_weight", 0.0))
    except (OSError, ValueError, KeyError, TypeError):
        return DEFAULT_CALIBRATION, 0.0


class ExtractiveReader(Reader):
    """Batched span extraction over all passages; one model instance serves every question."""

    def __init__(self, config: ExtractiveConfig | None = None, name: str = "extractive", **overrides):
        self.config = config or ExtractiveConfig()
        for key, value in overrides.items():
            setattr(self.config, key, value)
        self.name = name
        self.spec = resolve_model(self.config.model, kind="reader")
        self._model = None
        self._tokenizer = None
        self._lock = threading.Lock()
        self._dtype: torch.dtype | None = None

    # ----------------------------------------------------------------- loading
    def warm_up(self) -> None:
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            from transformers import AutoModelForQuestionAnswering, AutoTokenizer

            tok = AutoTokenizer.from_pretrained(self.spec.path)
            model = AutoModelForQuestionAnswering.from_pretrained(
                self.spec.path, dtype=torch.float32, use_safetensors=True  # never unpickle weights
            )
            device = self.config.device or ("cuda" if torch.cuda.is_available() else "cpu")
            precision = self.config.precision
            if precision == "auto":
                precision = "bf16" if native_bf16(device) else "fp32"
            if precision == "int8" and device == "cpu":
                model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
            self._dtype = torch.bfloat16 if precision == "bf16" else None
            self.device = device
            self.precision = precision
            self._tokenizer = tok
            self._model = model.to(device).eval()
            calibration, rank_weight = load_calibration(self.spec.path)
            if self.config.calibration is None:
                self.config.calibration = calibration
            if self.config.rank_weight is None:
                self.config.rank_weight = rank_weight

    # ----------------------------------------------------------------- reading
    def answer_batch(self, questions: Sequence[str], passages: Sequence[Sequence[Passage]]) -> list[Answer]:
        """All (question, passage) pairs of all questions go through the model in shared batches."""
        return [self._answer(cands) for cands in self.candidates(questions, passages)]

    def candidates(self, questions: Sequence[str],
                   passages: Sequence[Sequence[Passage]]) -> list[list[tuple[Span, Passage, int]]]:
        """Every question's n-best spans of every passage as (span, passage, passage rank), unranked."""
        self.warm_up()
        pairs = [(qi, p, rank) for qi, ps in enumerate(passages) for rank, p in enumerate(ps)]
        windows = (
            encode_windows(
                self._tokenizer,
                [questions[qi] for qi, _, _ in pairs],
                [p.text for _, p, _ in pairs],
                self.config.max_length,
                self.config.doc_stride,
            )
            if pairs
            else []
        )
        start_logits, end_logits = self._forward(windows)
        # group windows by pair, then decode each pair's n-best spans
        by_pair: dict[int, list[int]] = {}
        for i, w in enumerate(windows):
            by_pair.setdefault(w.example, []).append(i)
        spans_by_question: list[list[tuple[Span, Passage, int]]] = [[] for _ in questions]
        for pair_idx, idxs in by_pair.items():
            qi, passage, rank = pairs[pair_idx]
            spans, _ = decode_example(
                [start_logits[i] for i in idxs],
                [end_logits[i] for i in idxs],
                [windows[i] for i in idxs],
                n_best=self.config.n_best,
                max_answer_length=self.config.max_answer_length,
            )
            spans_by_question[qi].extend((s, passage, rank) for s in spans)
        return spans_by_question

    def _forward(self, windows: Sequence[Window]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Start/end logits per window; windows sorted by length so each batch pads little."""
        starts: list[np.ndarray] = [np.empty(0)] * len(windows)
        ends: list[np.ndarray] = [np.empty(0)] * len(windows)
        order = sorted(range(len(windows)), key=lambda i: len(windows[i].input_ids))
        bs = self.config.batch_size
        with torch.inference_mode():
            for b in range(0, len(order), bs):
                idx = order[b : b + bs]
                feats = [model_inputs(windows[i]) for i in idx]
                batch = self._tokenizer.pad(feats, return_tensors="pt").to(self.device)
                with torch.autocast(
                    device_type=self.device.split(":")[0],
                    dtype=self._dtype or torch.float32,
                    enabled=self._dtype is not None,
                ):
                    out = self._model(**batch)
                # (batch, seq_len) each; back to float32 numpy for decoding
                s = out.start_logits.float().cpu().numpy()
                e = out.end_logits.float().cpu().numpy()
                for row, i in enumerate(idx):
                    starts[i], ends[i] = s[row], e[row]
        return starts, ends

    def _answer(self, candidates: list[tuple[Span, Passage, int]]) -> Answer:
        # the margin over each window's own null score ranks spans across passages, nudged by
        # where retrieval put the passage (rank_weight, fitted with the calibration)
        candidates.sort(key=lambda c: -self.score(c[0], c[2]))
        alternatives = [
            {
                "answer": p.text[s.start : s.end],
                "score": round(self.confidence(s, rank), 4),
                "margin": round(s.margin, 3),
                "rank": rank,
                "source": p.source,
                "page": p.page,
                "start": p.start + s.start,
                "end": p.start + s.end,
            }
            for s, p, rank in candidates[:5]
        ]
        if not candidates:
            return Answer("", 0.0, self.name, no_answer=True)
        best, passage, rank = candidates[0]
        confidence = self.confidence(best, rank)
        if confidence < self.config.no_answer_threshold:
            return Answer("", confidence, self.name, no_answer=True, alternatives=alternatives)
        citation = Citation.of(passage, passage.start + best.start, passage.start + best.end)
        return Answer(
            passage.text[best.start : best.end],
            confidence,
            self.name,
            citations=[citation],
            alternatives=alternatives,
        )

    def score(self, span: Span, rank: int = 0) -> float:
        """What candidates are ranked by: the span's margin, less ``rank_weight * log(1 + rank)``."""
        return span.margin - (self.config.rank_weight or 0.0) * math.log1p(rank)

    def confidence(self, span: Span, rank: int = 0) -> float:
        """Calibrated probability that ``span``, read in the passage retrieved at ``rank``, answers
        the question (comparable across passages)."""
        a, b = self.config.calibration or DEFAULT_CALIBRATION
        z = a * self.score(span, rank) + b
        # the logistic function without overflow: math.exp(-z) raises for z below about -709
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))

    def describe(self) -> dict:
        return {"name": self.name, "kind": "extractive", "model": self.spec.name, "weights": self.spec.source}
