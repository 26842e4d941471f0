"""`rag_qa eval reader`: a reader on SQuAD-format data, each question given its gold paragraph."""

from __future__ import annotations

import time
from pathlib import Path

from tqdm.auto import tqdm

from rag_qa.config import Settings
from rag_qa.qa_data import load_examples
from rag_qa.readers.base import Reader
from rag_qa.readers.registry import get_reader
from rag_qa.squad_metrics import best_null_threshold, max_over_truths, rouge_l, squad_scores
from rag_qa.types import Passage


def reader_name(name_or_path: str | None) -> str:
    """A model directory given as ``--reader`` means the extractive reader with those weights."""
    if not name_or_path:
        return "extractive"
    if ":" not in name_or_path and Path(name_or_path).is_dir():
        return f"extractive:{name_or_path}"
    return name_or_path


def evaluate_reader(data: str | Path, reader: str | Reader | None = None, limit: int | None = None,
                    batch_size: int = 16, progress: bool = True, settings: Settings | None = None) -> dict:
    """EM/F1 (+ROUGE-L; + HasAns/NoAns and the best no-answer threshold on SQuAD v2.0).

    ``reader`` is a registry name (``extractive``, ``generative``, ``generative:<spec>``), a model
    directory, or an already-built :class:`Reader`; a named reader is built from ``settings``
    (default: the global settings).
    """
    examples, _ = load_examples(data)
    if limit:
        examples = examples[:limit]
    r = reader if isinstance(reader, Reader) else get_reader(reader_name(reader), settings)
    r.warm_up()
    v2 = any(e.is_impossible for e in examples)
    preds, forced, margins, refs = {}, {}, {}, {}
    t0 = time.perf_counter()
    bar = tqdm(total=len(examples), desc="eval reader", unit="q", disable=not progress)
    for i in range(0, len(examples), batch_size):
        batch = examples[i : i + batch_size]
        passages = [[Passage(e.context, e.title or "context", None, 0, len(e.context), 1.0, e.id)] for e in batch]
        answers = r.read_batch([e.question for e in batch], passages)
        for e, a in zip(batch, answers, strict=True):
            refs[e.id] = [x["text"] for x in e.answers]
            preds[e.id] = "" if a.no_answer else a.answer
            # the best span even when the reader abstained: SQuAD v1.1 always has an answer
            forced[e.id] = a.answer or (a.alternatives[0].get("answer", "") if a.alternatives else "")
            margins[e.id] = -a.score
        bar.update(len(batch))
    bar.close()
    seconds = time.perf_counter() - t0
    out = dict(squad_scores(preds if v2 else forced, refs))
    out["rouge_l"] = 100.0 * sum(
        max_over_truths(rouge_l, (preds if v2 else forced)[q], t) for q, t in refs.items()
    ) / max(len(refs), 1)
    if v2:
        best, thresh = best_null_threshold(forced, margins, refs)
        out["best_f1"], out["best_no_answer_threshold"] = best, -thresh
    else:
        abstained = sum(1 for q in refs if preds[q] == "" and forced[q] != "")
        out["abstained"] = abstained  # answerable questions the reader would have called "no answer"
    out["reader"] = r.name
    out["seconds"] = round(seconds, 2)
    out["ms_per_question"] = round(1000 * seconds / max(len(refs), 1), 1)
    return out
