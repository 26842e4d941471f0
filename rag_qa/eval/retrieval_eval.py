"""`rag_qa eval retrieval` and `rag_qa eval open`: the chain's retrieval and answers on a SQuAD corpus.

A retrieved passage is a hit when it contains a gold answer span of the question at the
question's own paragraph (same article file, the span's character range inside the passage),
so recall@k measures what the reader needs: the answer in front of it.
"""

from __future__ import annotations

import time
from pathlib import Path

from tqdm.auto import tqdm

from rag_qa.config import Settings
from rag_qa.eval.corpus import CorpusQuestion, IndexBuilder, corpus_index, corpus_questions, ingest_command
from rag_qa.service import QAService
from rag_qa.squad_metrics import squad_scores
from rag_qa.types import Passage


def is_hit(p: Passage, q: CorpusQuestion) -> bool:
    if Path(p.source).name != q.source:
        return False
    return any(p.start <= s and e <= p.end for s, e in q.spans)


def evaluate_retrieval(data: str | Path, mode: str = "hybrid", ks: tuple[int, ...] = (1, 5, 20),
                       limit: int | None = None, progress: bool = True, settings: Settings | None = None,
                       build: IndexBuilder = ingest_command, **hybrid_options) -> dict:
    """recall@k for each k and MRR (over the top max(k)) of one retrieval mode."""
    settings = settings or Settings()
    _, index = corpus_index(data, settings.embedding_model, progress, build)
    questions = corpus_questions(data, limit)
    service = QAService(index, settings)
    from rag_qa.retrieval import make_retriever

    depth = max(ks)
    retriever = make_retriever(service.store, service.embeddings.embed_query, mode, depth, **hybrid_options)
    t0 = time.perf_counter()
    hits = {k: 0 for k in ks}
    rr = 0.0
    for q in tqdm(questions, desc=f"eval retrieval ({mode})", unit="q", disable=not progress):
        ranked = [Passage.from_document(d) for d in retriever.invoke(q.question)]
        first = next((i for i, p in enumerate(ranked) if is_hit(p, q)), None)
        if first is not None:
            rr += 1.0 / (first + 1)
            for k in ks:
                hits[k] += first < k
    n = max(len(questions), 1)
    return {
        "mode": mode,
        "recall@k": {str(k): round(hits[k] / n, 4) for k in ks},
        "mrr": round(rr / n, 4),
        "n": len(questions),
        "seconds": round(time.perf_counter() - t0, 2),
    }


def evaluate_open(data: str | Path, reader: str | None = None, mode: str | None = None, top_k: int | None = None,
                  limit: int | None = None, batch_size: int = 16, progress: bool = True,
                  settings: Settings | None = None, build: IndexBuilder = ingest_command) -> dict:
    """End to end over the file's articles as a corpus: EM/F1 of the chain's final answers."""
    settings = settings or Settings()
    _, index = corpus_index(data, settings.embedding_model, progress, build)
    questions = corpus_questions(data, limit)
    service = QAService(index, settings)
    preds: dict[str, str] = {}
    hit = 0
    t0 = time.perf_counter()
    bar = tqdm(total=len(questions), desc="eval open", unit="q", disable=not progress)
    for i in range(0, len(questions), batch_size):
        batch = questions[i : i + batch_size]
        answers = service.ask_batch([q.question for q in batch], reader=reader, mode=mode, top_k=top_k)
        for q, a in zip(batch, answers, strict=True):
            preds[q.id] = a.answer
            hit += any(c.source and Path(c.source).name == q.source
                       and any(c.start < e and s < c.end for s, e in q.spans) for c in a.citations)
        bar.update(len(batch))
    bar.close()
    seconds = time.perf_counter() - t0
    out = dict(squad_scores(preds, {q.id: q.answers for q in questions}))
    out["citation_accuracy"] = round(100.0 * hit / max(len(questions), 1), 2)
    out["no_answer"] = sum(1 for v in preds.values() if not v)
    out["seconds"] = round(seconds, 2)
    out["ms_per_question"] = round(1000 * seconds / max(len(questions), 1), 1)
    return out
