"""Tune the hybrid retriever's fusion on SQuAD dev: retrieve once per mode, then grid-search
weighted reciprocal-rank fusion offline and report recall@1/5/20 and MRR per setting.

    python benchmarks/tune_hybrid.py --data ../shared/data/squad/dev-v1.1-public.json [--limit N]

Writes benchmarks/results/tune_hybrid.json.  A plain RRF (equal weights, c=60) loses R@1 to BM25
alone on SQuAD; this finds weights/depth/c that beat the best single retriever at every k.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

from tqdm.auto import tqdm

from rag_qa.config import Settings
from rag_qa.eval.corpus import corpus_index, corpus_questions
from rag_qa.eval.retrieval_eval import is_hit
from rag_qa.service import QAService

HERE = Path(__file__).resolve().parent


def scores_for(ranked_hits: list[list[bool]], ks=(1, 5, 20)) -> dict:
    n = max(len(ranked_hits), 1)
    out = {}
    for k in ks:
        out[f"recall@{k}"] = round(sum(any(h[:k]) for h in ranked_hits) / n, 4)
    out["mrr"] = round(sum(1 / (h.index(True) + 1) if True in h else 0 for h in ranked_hits) / n, 4)
    return out


def fuse(lists: dict[str, list[str]], weights: dict[str, float], depth: int, c: float, k: int) -> list[str]:
    fused: dict[str, float] = {}
    for name, ids in lists.items():
        for rank, cid in enumerate(ids[:depth]):
            fused[cid] = fused.get(cid, 0.0) + weights[name] / (c + rank + 1)
    return sorted(fused, key=lambda cid: -fused[cid])[:k]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(HERE.parents[1] / "shared" / "data" / "squad" / "dev-v1.1-public.json"))
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", default=str(HERE / "results" / "tune_hybrid.json"))
    args = ap.parse_args()

    settings = Settings()
    _, index = corpus_index(args.data, settings.embedding_model)
    questions = corpus_questions(args.data, args.limit)
    service = QAService(index, settings)
    store, embed = service.store, service.embeddings
    depth = 50
    t0 = time.perf_counter()
    runs: list[dict[str, list[str]]] = []
    passages: dict[str, object] = {}
    vectors = embed.embed_array([q.question for q in questions])
    for q, vec in tqdm(list(zip(questions, vectors, strict=True)), desc="retrieving", unit="q"):
        dense = store.search_dense(vec, depth)
        bm25 = store.search_bm25(q.question, depth)
        for p in dense + bm25:
            passages[p.chunk_id] = p
        runs.append({"dense": [p.chunk_id for p in dense], "bm25": [p.chunk_id for p in bm25]})
    retrieve_s = time.perf_counter() - t0

    def hits(ids: list[str], q) -> list[bool]:
        return [is_hit(passages[cid], q) for cid in ids]

    results = {
        "dense": scores_for([hits(r["dense"][:20], q) for r, q in zip(runs, questions, strict=True)]),
        "bm25": scores_for([hits(r["bm25"][:20], q) for r, q in zip(runs, questions, strict=True)]),
    }
    grid = []
    for w_bm25, d, c in itertools.product([0.5, 0.7, 1.0, 1.3, 1.6, 2.0], [10, 20, 30, 50], [1, 5, 10, 30, 60]):
        weights = {"bm25": w_bm25, "dense": 1.0}
        ranked = [hits(fuse(r, weights, d, c, 20), q) for r, q in zip(runs, questions, strict=True)]
        grid.append({"weight_bm25": w_bm25, "weight_dense": 1.0, "depth": d, "rrf_c": c, **scores_for(ranked)})
    best_single = {k: max(results["dense"][k], results["bm25"][k]) for k in ("recall@1", "recall@5", "recall@20")}
    winners = [g for g in grid if all(g[k] > best_single[k] for k in best_single)]
    pick = max(winners or grid, key=lambda g: (g["recall@1"] + g["recall@5"] + g["recall@20"], g["mrr"]))
    plain = next(g for g in grid if g["weight_bm25"] == 1.0 and g["rrf_c"] == 60 and g["depth"] == 20)
    out = {
        "data": str(args.data), "questions": len(questions), "chunks": store.chunk_count,
        "retrieve_seconds": round(retrieve_s, 1), "single": results, "plain_rrf": plain,
        "best": pick, "beats_best_single_at_every_k": bool(winners), "grid": grid,
    }
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(json.dumps({k: out[k] for k in ("questions", "chunks", "single", "plain_rrf", "best",
                                          "beats_best_single_at_every_k")}, indent=1))


if __name__ == "__main__":
    main()
