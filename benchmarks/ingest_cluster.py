"""Ingest throughput into PostgreSQL: one process, the single-machine pipeline, Ray with 1 and 2 workers,
the PostgreSQL write rate, and a projection for N machines.

    python benchmarks/ingest_cluster.py [--articles 8] [--before DIR] [--dsn postgresql://...] [--write-chunks 20000]

Every row is a cold ingest of the first ``--articles`` SQuAD v1.1 dev articles (as .txt files) in
a fresh process into a fresh pgvector index on the same server (``--dsn``/``RAGQA_PG_DSN`` or a
throwaway ``pgserver`` one):

- **one process**: the pipeline before issue 17 (``--before DIR``, a checkout of it: parse every
  file, then embed, then write);
- **single-machine pipeline**: this checkout (parser pool overlapped with embedding);
- **Ray, 1 worker / 2 workers**: ``python -m ingest --ray local`` as a library call, on a local
  cluster of this machine's CPUs: one embedding actor with all torch threads, or two with one each.
  ``chunks_per_second`` counts the whole run (cluster start, actors loading the model), which on a
  corpus this small is mostly start-up (``cluster_s``: the pipeline's own seconds).

**PostgreSQL write rate**: the chunks (texts and vectors) of one of those indexes, copied under new
ids and sources up to ``--write-chunks``, written the way the Ray driver writes them
(``replace_documents`` in groups of ``RAGQA_RAY_COMMIT_CHUNKS``, into a live index whose HNSW and
GIN indexes grow row by row).  The projection for N machines is ``min(N x per-machine throughput,
write rate)``, per-machine being the single-machine pipeline's (all cores embedding, which is what a
Ray worker holding a whole machine runs): measured numbers are marked measured, the rest is
arithmetic on them.
Writes ``benchmarks/results/ingest_cluster.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from ingest_speed import machine, run_child, squad_corpus

from rag_qa.store.pg.local import server_or_local  # noqa: E402

HERE = Path(__file__).resolve().parent
MACHINES = (1, 2, 4, 8, 16, 32, 64)


server = server_or_local  # the given DSN, or a throwaway local server


def ray_child(args: argparse.Namespace) -> int:
    """One Ray ingest in this fresh process (JSON on stdout)."""
    from ingest.ray_pipeline import ingest_paths_ray
    from rag_qa.config import Settings

    settings = Settings(store="pgvector", pg_dsn=args.dsn, ray_workers=args.workers,
                        ray_worker_cpus=args.worker_cpus, ray_parse_cpus=args.parse_cpus)
    report = ingest_paths_ray([args.corpus], args.index, address="local", settings=settings)
    if report.failed:
        raise SystemExit(f"failed: {report.failed}")
    cluster_s = report.timings.get("cluster_s", report.seconds)
    print(json.dumps({"seconds": report.seconds, "cluster_s": cluster_s, "chunks": report.chunks,
                      "documents": report.documents, "chunks_per_second": report.chunks / report.seconds,
                      "timings": {k: round(v, 3) for k, v in report.timings.items()}}))
    return 0


def run_ray(corpus: Path, dsn: str, workers: int, cpus: int) -> dict:
    parse = 0.25
    per = (cpus - parse) / workers
    index = Path(tempfile.gettempdir()) / f"bench_ray_{uuid.uuid4().hex[:8]}"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--ray-child", "--corpus", str(corpus), "--index",
           str(index), "--dsn", dsn, "--workers", str(workers), "--worker-cpus", str(per), "--parse-cpus", str(parse)]
    try:
        result = subprocess.run(cmd, env=dict(os.environ, HF_HUB_OFFLINE="1"), capture_output=True, text=True,
                                timeout=3600)
    finally:
        drop(index, dsn)
    if result.returncode != 0:
        raise SystemExit(f"Ray run failed: {result.stderr[-3000:]}")
    out = json.loads(result.stdout.strip().splitlines()[-1])
    out.update(workers=workers, worker_cpus=round(per, 3), torch_threads_per_worker=max(1, round(per)))
    return out


def drop(index: Path, dsn: str) -> None:
    from rag_qa.config import Settings
    from rag_qa.store.pg.reader import drop_index

    drop_index(index, Settings(store="pgvector", pg_dsn=dsn))


def write_rate(dsn: str, source_index: Path, target_chunks: int) -> dict:
    """Chunks/s of the Ray driver's writes: ``replace_documents`` groups into a live, indexed schema."""
    from rag_qa.config import Settings
    from rag_qa.store.base import ChunkRow, DocumentRow
    from rag_qa.store.pg.schema import connect, register_vector_type, schema_name
    from rag_qa.store.pg.writer import PgIndexWriter

    settings = Settings(store="pgvector", pg_dsn=dsn)
    with connect(dsn) as conn:
        register_vector_type(conn, dsn)
        rows = conn.execute(f'SELECT source, page, "start", "end", text, embedding FROM {schema_name(source_index)}'
                            ".chunks").fetchall()
    rng = np.random.default_rng(17)
    group = settings.ray_commit_chunks
    index = Path(tempfile.gettempdir()) / f"bench_write_{uuid.uuid4().hex[:8]}"
    written, groups, copy = 0, 0, 0
    started = time.perf_counter()
    try:
        with PgIndexWriter(index, settings) as writer:
            while written < target_chunks:
                part: list[ChunkRow] = []
                vectors: list[np.ndarray] = []
                docs: dict[str, DocumentRow] = {}
                while len(part) < group:  # whole copies of the documents, about a group's worth
                    for source, page, start, end, text, embedding in rows:
                        name = f"{source}#{copy}"
                        docs.setdefault(name, DocumentRow(name, f"{copy:064d}", 0.0, 0, "txt", None, 0, "now"))
                        part.append(ChunkRow(f"{copy:08d}-{len(part):08d}", name, page, start, end, text))
                        vector = np.asarray(embedding, dtype="float32") + rng.normal(0, 0.05, len(embedding))
                        vectors.append((vector / np.linalg.norm(vector)).astype("float32"))
                    copy += 1
                writer.replace_documents([], part, np.stack(vectors), list(docs.values()), "minilm", len(vectors[0]))
                written += len(part)
                groups += 1
        seconds = time.perf_counter() - started
    finally:
        drop(index, dsn)
    return {"chunks": written, "groups": groups, "group_chunks": group, "seconds": seconds,
            "chunks_per_second": written / seconds}


def projection(per_machine: float, cap: float) -> dict[str, Any]:
    """``min(N x per_machine, cap)`` for N machines (arithmetic on two measured numbers)."""
    return {
        "per_machine_chunks_per_second": per_machine, "write_rate_cap": cap,
        "note": "measured: per_machine (this machine's single-machine pipeline, all its cores embedding: what one "
                "Ray worker holding a whole machine runs) and the PostgreSQL write rate; projected: "
                "min(N x per_machine, write rate) for N such machines",
        "machines": [{"machines": n, "chunks_per_second": min(n * per_machine, cap),
                      "capped_by_postgres": n * per_machine > cap,
                      "hours_per_million_chunks": 1e6 / min(n * per_machine, cap) / 3600} for n in MACHINES],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--articles", type=int, default=8)
    ap.add_argument("--before", type=Path, default=None, help="a checkout of the pipeline before issue 17")
    ap.add_argument("--dsn", default=os.environ.get("RAGQA_PG_DSN"))
    ap.add_argument("--write-chunks", type=int, default=20_000)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "ingest_cluster.json")
    ap.add_argument("--ray-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--index", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--worker-cpus", type=float, default=1.0, help=argparse.SUPPRESS)
    ap.add_argument("--parse-cpus", type=float, default=0.25, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.ray_child:
        return ray_child(args)

    cpus = os.cpu_count() or 1
    results: dict[str, Any] = {"corpus": f"first {args.articles} SQuAD v1.1 dev articles as .txt", "rows": {}}
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp, server(args.dsn) as dsn:
        corpus = squad_corpus(Path(tmp) / "corpus", args.articles)
        rows = results["rows"]

        def pg_child(name: str, code: Path | None) -> None:
            index = Path(tmp) / f"bench_{name}_{uuid.uuid4().hex[:8]}"
            try:
                r = run_child(corpus, index, code=code, no_floor=True, store="pgvector", dsn=dsn)
                if name == "single_machine_pipeline":
                    results["write_rate"] = write_rate(dsn, index, args.write_chunks)
            finally:
                drop(index, dsn)
            rows[name] = {k: r[k] for k in ("seconds", "chunks", "documents", "chunks_per_second", "timings")}
            print(f"{name}: {r['chunks']} chunks in {r['seconds']:.1f}s = {r['chunks_per_second']:.1f} chunks/s")

        if args.before:
            pg_child("one_process_before", args.before)
        pg_child("single_machine_pipeline", None)
        print(f"PostgreSQL write rate: {results['write_rate']['chunks_per_second']:.0f} chunks/s")
        for workers in (1, 2):
            r = run_ray(corpus, dsn, workers, cpus)
            rows[f"ray_{workers}_worker{'s' if workers > 1 else ''}"] = r
            print(f"Ray, {workers} worker(s): {r['chunks']} chunks in {r['seconds']:.1f}s = "
                  f"{r['chunks_per_second']:.1f} chunks/s ({r['cluster_s']:.1f}s after the cluster started)")

    results["projection"] = projection(rows["single_machine_pipeline"]["chunks_per_second"],
                                       results["write_rate"]["chunks_per_second"])
    results["machine"] = machine()
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
