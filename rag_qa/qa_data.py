"""Loading QA training/evaluation data: SQuAD JSON (v1.1/v2.0, optionally gzipped), JSONL, CSV.

A leaf module (standard library only): training, evaluation and the benchmarks read examples with it.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class QAExample:
    """One question over one context. ``answers`` empty means unanswerable (SQuAD v2.0)."""

    id: str
    question: str
    context: str
    answers: list[dict] = field(default_factory=list)  # [{"text": str, "answer_start": int}]
    title: str = ""

    @property
    def is_impossible(self) -> bool:
        return not self.answers


@dataclass
class Skipped:
    """A row that could not be used, with a one-line reason."""

    where: str
    reason: str


class DataError(ValueError):
    """The file cannot be read as QA data at all (raised with a one-line message)."""


def load_examples(path: str | Path) -> tuple[list[QAExample], list[Skipped]]:
    """Read SQuAD JSON (.json, .json.gz) or custom rows (.jsonl, .csv) into examples."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    name = path.name.lower()
    if name.endswith((".json", ".json.gz")):
        return _load_squad(path), []
    if name.endswith(".jsonl"):
        with path.open(encoding="utf-8") as fh:
            rows = []
            for n, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        rows.append((f"{path.name}:{n}", json.loads(line)))
                    except json.JSONDecodeError as err:
                        raise DataError(f"{path}:{n}: not valid JSON ({err.msg})") from None
        return _rows_to_examples(rows)
    if name.endswith(".csv"):
        with path.open(encoding="utf-8", newline="") as fh:
            rows = [(f"{path.name}:{n}", row) for n, row in enumerate(csv.DictReader(fh), 2)]
        return _rows_to_examples(rows)
    raise DataError(f"{path}: unsupported format (use SQuAD .json/.json.gz, .jsonl or .csv)")


def _load_squad(path: Path) -> list[QAExample]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            data = json.load(fh)
        articles = data["data"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise DataError(f"{path}: not a SQuAD-format JSON file ({type(err).__name__})") from None
    examples = []
    for article in articles:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                answers = [] if qa.get("is_impossible") else list(qa.get("answers", []))
                examples.append(
                    QAExample(
                        id=str(qa["id"]),
                        question=qa["question"],
                        context=para["context"],
                        answers=answers,
                        title=article.get("title", ""),
                    )
                )
    return examples


def _rows_to_examples(rows) -> tuple[list[QAExample], list[Skipped]]:
    examples, skipped = [], []
    for where, row in rows:
        question = (row.get("question") or "").strip()
        context = row.get("context") or ""
        answer = row.get("answer") or ""
        if not question or not context:
            skipped.append(Skipped(where, "missing question or context"))
            continue
        if not answer:  # an explicit empty answer marks an unanswerable question
            answers = []
        else:
            start = row.get("answer_start")
            start = int(start) if start not in (None, "") else context.find(answer)
            if start < 0 or context[start : start + len(answer)] != answer:
                skipped.append(Skipped(where, "answer text not found in the context"))
                continue
            answers = [{"text": answer, "answer_start": start}]
        qid = str(row.get("id") or hashlib.sha1(f"{question}\0{context}".encode()).hexdigest()[:16])
        examples.append(QAExample(qid, question, context, answers))
    return examples, skipped
