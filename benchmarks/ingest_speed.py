"""Ingest speed: our first ingest vs a plain LangChain pipeline and vs the embedding floor.

    .venv/bin/python benchmarks/ingest_speed.py [--corpus examples/docs] [--output benchmarks/results/ingest_speed.json]
    .venv/bin/python benchmarks/ingest_speed.py --smoke   # tiny corpus, results to a temp file (for the tests)
    .venv/bin/python benchmarks/ingest_speed.py --floor [--articles 8,40] [--repeat 3] [--before DIR] [--profile]
    .venv/bin/python benchmarks/ingest_speed.py --sweep 1,2,4 [--articles 40] [--with-docs]

Default: same corpus, same embedding model (all-MiniLM-L6-v2 from the local package), same chunk
sizes (200 tokens of that model's tokenizer, 40 overlap), in one process, one after the other.  The
plain pipeline is LangChain's loaders + ``RecursiveCharacterTextSplitter`` +
``HuggingFaceEmbeddings`` + ``FAISS.from_documents`` and keeps its index in memory only (saving it
would mean pickling); ours also writes FAISS + SQLite + BM25 to disk.  Each timing includes
loading the tokenizer and the model; libraries are imported and the model files read once
beforehand so that neither side pays for imports or a cold disk cache.  The **embedding floor** is
measured in the same run: a bare sentence-transformers ``encode`` (batch 64, normalised) of
exactly the chunk texts our ingest produced, with the model already loaded; ``first_ingest_vs_floor``
is floor seconds / ingest seconds (1.0 = ingest costs nothing beyond embedding).

``--floor``: the embedding floor measured **the way a user sees it** (issue 26), for each folder of
the first ``--articles`` SQuAD v1.1 dev articles (``8,40``: one folder of 8, one of 40), written
one .txt per article, paragraphs joined by blank lines.  Each run is:

1. ``python -m ingest DIR --index IDX --json`` in a fresh process, cold: its own reported
   ``seconds`` (imports of torch, transformers and sentence-transformers, the parser workers, the
   model load and the write all inside), the process's wall time and CPU time;
2. the floor, in another fresh process with the same torch threads: the model loaded and warmed
   up on a few texts (imports and load outside the timing), then one bare
   ``SentenceTransformer.encode(texts, batch_size=32)`` of exactly the chunk texts the ingest wrote;
3. ``ratio`` = floor seconds / ingest seconds (1.0 = ingest costs nothing beyond embedding), and
   ``wall_ratio`` the same against the process's wall time;
4. **the old way** (``old_way``, issue 17's figure): in one fresh process with torch,
   transformers and sentence-transformers imported beforehand, ``ingest_paths`` in-process, then a
   normalised ``encode`` at batch 64 in the same process.  It leaves the imports out of the ingest,
   which is most of what separates the two figures (README, "Ingest speed").

``--repeat`` runs of each, medians reported, and ``os.getloadavg()`` with every timing (numbers
taken while other jobs hold the cores are not the figure: run it on quiet cores).  ``--before DIR``
runs the same on another checkout too (``git archive REV | tar -x -C DIR``) for a before/after
ratio; ``--profile`` adds the old-way child's busy seconds per stage in the ingest process (model
load, parser worker start, parse and chunk in the worker, embedding, BM25, SQLite, the whole
write), measured by wrapping those functions (stages that overlap add up to more than the wall time).
``--sweep``: throughput (chunks/s) of a cold ingest of a larger folder for each number of parse
processes.  Both write ``benchmarks/results/ingest_floor.json`` (``--output`` to change).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag_qa.env import set_offline_defaults

set_offline_defaults()
warnings.filterwarnings("ignore")

REPO = Path(__file__).resolve().parents[1]
SQUAD = REPO.parent / "shared" / "data" / "squad" / "dev-v1.1-public.json"
SHARED_DOCS = REPO.parent / "shared" / "data" / "docs"
FLOOR_TARGET = 0.90  # issues 17 and 26: a cold ingest at >= 90% of the embedding floor
FLOOR_BATCH = 32  # the floor's encode batch (issue 26's measurement)

PLAIN_SUFFIXES = {".txt", ".md", ".html", ".htm", ".pdf"}
SMOKE_FILES = {"oxygen.html"}


def corpus_files(corpus: Path) -> list[Path]:
    return sorted(p for p in corpus.rglob("*") if p.is_file() and p.suffix.lower() in PLAIN_SUFFIXES
                  and p.name != "SOURCES.md")


def plain_langchain(files: list[Path], model_path: str, chunk_tokens: int, overlap: int) -> dict:
    """The textbook LangChain pipeline, in memory."""
    from langchain_community.document_loaders import BSHTMLLoader, PyPDFLoader, TextLoader
    from langchain_community.embeddings import HuggingFaceEmbeddings
    from langchain_community.vectorstores import FAISS
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from transformers import AutoTokenizer

    started, cpu = time.perf_counter(), time.process_time()
    docs = []
    for path in files:
        suffix = path.suffix.lower()
        if suffix == ".pdf":
            loader = PyPDFLoader(str(path))
        elif suffix in (".html", ".htm"):
            loader = BSHTMLLoader(str(path), open_encoding="utf-8")
        else:
            loader = TextLoader(str(path), encoding="utf-8")
        docs.extend(loader.load())
    splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
        AutoTokenizer.from_pretrained(model_path), chunk_size=chunk_tokens, chunk_overlap=overlap)
    chunks = splitter.split_documents(docs)
    embeddings = HuggingFaceEmbeddings(model_name=model_path, encode_kwargs={"normalize_embeddings": True})
    store = FAISS.from_documents(chunks, embeddings)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert store.index.ntotal == len(chunks)
    return {"seconds": seconds, "cpu_seconds": cpu, "documents": len(files), "chunks": len(chunks)}


def ours(corpus_dir: Path, index: Path, settings: Any = None) -> dict:
    from ingest.pipeline import ingest_paths
    from rag_qa.config import Settings

    cpu = time.process_time()
    report = ingest_paths([corpus_dir], index, settings=settings or Settings())
    cpu = time.process_time() - cpu
    if report.failed:
        raise SystemExit(f"ingest failed on: {report.failed}")
    return {"seconds": report.seconds, "cpu_seconds": cpu, "documents": report.documents,
            "chunks": report.chunks, "embedded_chunks": report.embedded_chunks,
            "timings": {k: round(v, 3) for k, v in getattr(report, "timings", {}).items()}}


def chunk_texts(index: Path, settings: Any = None) -> list[str]:
    """The text of every chunk in the index (what the floor encodes)."""
    from rag_qa.config import Settings
    from rag_qa.store import open_store

    with open_store(index, settings or Settings()) as store:
        return [p.text for p in store.get_passages(store.all_chunk_ids())]


def floor(texts: list[str], model_path: str, batch_size: int = 64) -> dict:
    """The embedding floor: one bare sentence-transformers encode of ``texts`` (the model loaded
    beforehand, outside the timing)."""
    from rag_qa.embeddings import load_sentence_transformer

    model = load_sentence_transformer(model_path)
    tokens = sum(len(ids) for ids in model.tokenizer(texts, truncation=True, max_length=model.max_seq_length)
                 ["input_ids"])
    started, cpu = time.perf_counter(), time.process_time()
    model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                 show_progress_bar=False)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "cpu_seconds": time.process_time() - cpu, "chunks": len(texts), "tokens": tokens,
            "tokens_per_second": tokens / max(seconds, 1e-9)}


def warm_up(model_path: str) -> None:
    """Import both pipelines' libraries and read the model files once, outside any timing."""
    import langchain_community.document_loaders  # noqa: F401
    import langchain_community.embeddings  # noqa: F401
    import langchain_community.vectorstores  # noqa: F401
    import sentence_transformers  # noqa: F401
    import transformers  # noqa: F401

    import ingest.pipeline  # noqa: F401

    for path in Path(model_path).rglob("*"):
        if path.is_file():
            path.read_bytes()


# ---------------------------------------------------------------------------- --floor and --sweep

#: (stage, module, attribute path) wrapped by --profile; a missing one is skipped, so entries for the code
#: before issue 26 (chunking and tokenizer loading in the ingest process) and after it (chunking in the
#: parser worker, embedding from token ids) can both stand here
PROFILED = [
    ("discover", "ingest.pipeline", "discover"),
    ("sha256", "ingest.pipeline", "_sha256"),
    ("sha256", "ingest.plan", "sha256"),
    ("tokenizer load", "ingest.pipeline", "load_tokenizer"),
    ("parser worker start", "ingest.worker", "ParserWorker._start"),
    ("parse (in the worker, incl. its start)", "ingest.worker", "ParserWorker.load"),
    ("parse + chunk + tokenise (in the worker, incl. its start)", "ingest.worker", "ParserWorker.read"),
    ("chunk", "ingest.pipeline", "chunk_document"),
    ("model load", "rag_qa.embeddings", "load_sentence_transformer"),
    ("model load", "rag_qa.embeddings", "load_plain_encoder"),
    ("embed", "rag_qa.embeddings", "SentenceTransformerEmbeddings.embed_array"),
    ("embed", "rag_qa.embeddings", "SentenceTransformerEmbeddings.embed_token_ids"),
    ("write: BM25 build", "rag_qa.store.faiss.writer", "build_bm25"),
    ("write: SQLite docstore", "rag_qa.store.faiss.docstore", "write_docstore"),
    # the writer class is FaissIndexWriter; checkouts from before the rename call it IndexWriter
    ("write: whole commit (FAISS + SQLite + BM25 + fsync)", "rag_qa.store.faiss.writer",
     "FaissIndexWriter.commit_changes|IndexWriter.commit_changes"),
]


def install_profile() -> dict[str, float]:
    """Wrap the :data:`PROFILED` functions with timers; returns the dict they add their seconds to."""
    import importlib

    busy: dict[str, float] = {}
    active = threading.local()  # stages running in this thread: a nested call of the same stage is not counted twice

    def timed(stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            stages = active.__dict__.setdefault("stages", set())
            if stage in stages:
                return fn(*args, **kwargs)
            stages.add(stage)
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                stages.discard(stage)
                busy[stage] = busy.get(stage, 0.0) + time.perf_counter() - started
        return wrapper

    for stage, module_name, attributes in PROFILED:
        try:
            module: Any = importlib.import_module(module_name)
        except ImportError:  # a module of the code after (or before) a change
            continue
        for attribute in attributes.split("|"):  # the first spelling this checkout has
            *path, name = attribute.split(".")
            owner: Any = module
            for part in path:
                owner = getattr(owner, part, None)
            if owner is not None and hasattr(owner, name):
                setattr(owner, name, timed(stage, getattr(owner, name)))
                break
    return busy


def squad_corpus(into: Path, articles: int, with_docs: bool = False, data: Path = SQUAD) -> Path:
    """The first ``articles`` SQuAD dev articles as .txt files (plus the shared sample documents)."""
    from rag_qa.eval.corpus import read_corpus

    into.mkdir(parents=True, exist_ok=True)
    texts, _ = read_corpus(data)
    for name in list(texts)[:articles]:
        (into / name).write_text(texts[name], encoding="utf-8")
    if with_docs:
        for path in sorted(SHARED_DOCS.rglob("*")):
            if path.is_file() and path.name != "SOURCES.md":
                shutil.copy(path, into / f"{path.parent.name}-{path.name}")
        for path in corpus_files(REPO / "examples" / "docs"):
            shutil.copy(path, into / f"examples-{path.name}")
    return into


def child(args: argparse.Namespace) -> int:
    """One measurement in this fresh process: a cold ingest of ``--corpus`` (+ the floor); JSON on stdout."""
    import torch

    from rag_qa.config import Settings
    from rag_qa.models import resolve_model

    settings = Settings(store=args.store, pg_dsn=args.dsn, parse_processes=args.processes)
    model_path = resolve_model(settings.embedding_model).path
    warm_up_ours(model_path)
    busy = install_profile() if args.profile else {}
    result = ours(args.corpus, args.index, settings)
    result["children_cpu_seconds"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
    if busy:
        result["busy_seconds"] = {k: round(v, 3) for k, v in busy.items()}
    if not args.no_floor:
        result["floor"] = floor(chunk_texts(args.index, settings), model_path)
        result["ratio"] = result["floor"]["seconds"] / result["seconds"]
    result["chunks_per_second"] = result["chunks"] / result["seconds"]
    result["torch_threads"] = torch.get_num_threads()
    print(json.dumps(result))
    return 0


def warm_up_ours(model_path: str) -> None:
    """Import what an ingest imports and read the model files (the model itself is not loaded)."""
    import sentence_transformers  # noqa: F401
    import transformers  # noqa: F401

    import ingest.pipeline  # noqa: F401

    for path in Path(model_path).rglob("*"):
        if path.is_file():
            path.read_bytes()


def run_child(corpus: Path, index: Path, *, code: Path | None = None, processes: int = 0, profile: bool = False,
              no_floor: bool = False, store: str = "faiss", dsn: str | None = None) -> dict:
    """:func:`child` in a fresh interpreter (``code``: that checkout's ``ingest``/``rag_qa`` instead)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--corpus", str(corpus), "--index", str(index),
           "--processes", str(processes), "--store", store]
    cmd += ["--profile"] * profile + ["--no-floor"] * no_floor + (["--dsn", dsn] if dsn else [])
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    if code is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(code), str(REPO / "benchmarks")])
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        raise SystemExit(f"measurement failed: {result.stderr[-3000:]}")
    shutil.rmtree(index, ignore_errors=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def load_average() -> float:
    """The 1-minute load average now (every timing is recorded with one)."""
    return round(os.getloadavg()[0], 2)


def user_ingest(corpus: Path, index: Path, code: Path | None = None) -> dict:
    """``python -m ingest CORPUS --index INDEX --json`` in a fresh process, cold: its reported seconds, the
    process's wall time and CPU time (its parser workers included), the load average before and after."""
    cmd = [sys.executable, "-m", "ingest", str(corpus), "--index", str(index), "--json"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(code or REPO))  # that checkout's code, not the install
    before, load = resource.getrusage(resource.RUSAGE_CHILDREN), load_average()
    started = time.perf_counter()
    result = subprocess.run(cmd, cwd=code or REPO, env=env, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"python -m ingest failed: {result.stderr[-3000:]}")
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    return {"seconds": summary["seconds"], "process_wall_s": round(wall, 3),
            "cpu_seconds": round(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, 3),
            "documents": summary["documents"], "chunks": summary["chunks"], "load_average": [load, load_average()]}


def floor_child(args: argparse.Namespace) -> int:
    """The floor, in this fresh process: the model loaded and warmed up, then one bare ``encode`` of the chunk
    texts of ``--index`` at ``FLOOR_BATCH``, timed (JSON on stdout)."""
    import torch

    from rag_qa.config import Settings
    from rag_qa.embeddings import load_sentence_transformer
    from rag_qa.models import resolve_model

    settings = Settings()
    texts = chunk_texts(args.index, settings)
    started = time.perf_counter()
    model = load_sentence_transformer(resolve_model(settings.embedding_model).path)
    load_s = time.perf_counter() - started
    model.encode(texts[:FLOOR_BATCH], batch_size=FLOOR_BATCH, show_progress_bar=False)  # warm
    tokens = sum(len(ids) for ids in model.tokenizer(texts, truncation=True, max_length=model.max_seq_length)
                 ["input_ids"])
    load = load_average()
    started, cpu = time.perf_counter(), time.process_time()
    model.encode(texts, batch_size=FLOOR_BATCH, show_progress_bar=False)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "cpu_seconds": time.process_time() - cpu, "chunks": len(texts),
                      "tokens": tokens, "batch_size": FLOOR_BATCH, "torch_threads": torch.get_num_threads(),
                      "model_load_s": round(load_s, 3), "load_average": [load, load_average()]}))
    return 0


def run_floor_child(index: Path) -> dict:
    """:func:`floor_child` in a fresh interpreter (the same environment, so the same torch threads)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--floor-child", "--index", str(index)]
    result = subprocess.run(cmd, env=dict(os.environ, HF_HUB_OFFLINE="1"), capture_output=True, text=True,
                            timeout=3600)
    if result.returncode != 0:
        raise SystemExit(f"floor measurement failed: {result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure(corpus: Path, work: Path, name: str, code: Path | None, profile: bool) -> dict:
    """One run the user's way (a cold ``python -m ingest``, then the floor of its chunks) and one the old way."""
    index = work / f"index-{name}"
    try:
        run = user_ingest(corpus, index, code)
        run["floor"] = run_floor_child(index)
    finally:
        shutil.rmtree(index, ignore_errors=True)
    run["ratio"] = run["floor"]["seconds"] / run["seconds"]
    run["wall_ratio"] = run["floor"]["seconds"] / run["process_wall_s"]
    load = load_average()
    old = run_child(corpus, work / f"index-{name}-old", code=code, profile=profile)
    old["load_average"] = [load, load_average()]
    run["old_way"] = old
    run["busy_seconds"], run["timings"] = old.pop("busy_seconds", {}), old.pop("timings", {})
    return run


def machine() -> dict:
    import torch

    return {"python": platform.python_version(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "load_average_1m": os.getloadavg()[0], "platform": platform.platform()}


def summarise(runs: list[dict]) -> dict:
    """Medians (the user's way, its wall-time variant, the old way), the best run (least disturbed by other
    jobs: min ingest vs min floor) and the CPU-time ratio (floor CPU / ingest CPU, parser workers included)."""
    def median(key: Callable[[dict], float]) -> float:
        return statistics.median(key(r) for r in runs)

    best_ingest, best_floor = min(r["seconds"] for r in runs), min(r["floor"]["seconds"] for r in runs)
    cpu = [r["floor"]["cpu_seconds"] / r["cpu_seconds"] for r in runs]
    return {"runs": runs, "ratio_median": median(lambda r: r["ratio"]),
            "wall_ratio_median": median(lambda r: r["wall_ratio"]),
            "old_way_ratio_median": median(lambda r: r["old_way"]["ratio"]),
            "ingest_seconds_median": median(lambda r: r["seconds"]),
            "process_wall_seconds_median": median(lambda r: r["process_wall_s"]),
            "floor_seconds_median": median(lambda r: r["floor"]["seconds"]),
            "ingest_seconds_best": best_ingest, "floor_seconds_best": best_floor,
            "ratio_best": best_floor / best_ingest,
            "cpu_ratios": cpu, "cpu_ratio_median": statistics.median(cpu),
            "load_averages": sorted({x for r in runs for x in (*r["load_average"], *r["floor"]["load_average"])}),
            "chunks": runs[0]["chunks"], "tokens": runs[0]["floor"]["tokens"]}


def floor_main(args: argparse.Namespace) -> dict:
    """Cold ``python -m ingest`` vs the floor (and the old way), ``--repeat`` runs for each folder size, for this
    checkout (and ``--before``)."""
    out: dict[str, Any] = {"target": FLOOR_TARGET, "floor_batch_size": FLOOR_BATCH, "folders": {}}
    work = Path(tempfile.mkdtemp(prefix="bench-floor-"))
    try:
        for articles in args.articles:
            corpus = squad_corpus(work / f"corpus-{articles}", articles, data=args.data)
            folder: dict[str, Any] = {"corpus": f"first {articles} articles of {args.data.name} as .txt",
                                      "files": len(list(corpus.iterdir()))}
            checkouts = ([("before", args.before)] if args.before else []) + [("after", None)]
            for name, code in checkouts:
                runs = [measure(corpus, work, f"{articles}-{name}-{i}", code, args.profile)
                        for i in range(args.repeat)]
                folder[name] = x = summarise(runs)
                each = ", ".join(format(r["ratio"], ".0%") for r in runs)
                print(f"{articles:3} articles, {x['chunks']} chunks, {name:6}: "
                      f"ingest {x['ingest_seconds_median']:.2f}s (process {x['process_wall_seconds_median']:.2f}s), "
                      f"floor {x['floor_seconds_median']:.2f}s: "
                      f"{x['ratio_median']:.0%} of the floor (runs: {each}; process wall "
                      f"{x['wall_ratio_median']:.0%}); the old way {x['old_way_ratio_median']:.0%}; CPU time "
                      f"{x['cpu_ratio_median']:.0%}; load average {min(x['load_averages']):.1f} to "
                      f"{max(x['load_averages']):.1f}", flush=True)
            out["folders"][str(articles)] = folder
        # the single-folder shape earlier results and tests read: the first folder's
        first = out["folders"][str(args.articles[0])]
        out.update({k: v for k, v in first.items() if k in ("corpus", "files", "before", "after")})
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def sweep_main(args: argparse.Namespace) -> dict:
    """Chunks/s of a cold ingest of a larger folder for each number of parse processes."""
    work = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    try:
        corpus = squad_corpus(work / "corpus", args.articles, args.with_docs, args.data)
        rows = []
        for n in [int(x) for x in args.sweep.split(",")]:
            r = run_child(corpus, work / f"index-{n}", processes=n, no_floor=True)
            rows.append({"parse_processes": n, "seconds": r["seconds"], "chunks": r["chunks"],
                         "documents": r["documents"], "chunks_per_second": r["chunks_per_second"],
                         "timings": r.get("timings", {})})
            print(f"{n} parse processes: {r['documents']} documents, {r['chunks']} chunks in {r['seconds']:.1f}s "
                  f"= {r['chunks_per_second']:.1f} chunks/s")
        return {"corpus": f"first {args.articles} articles of {args.data.name} as .txt"
                + (" + shared/data/docs + examples/docs" if args.with_docs else ""),
                "files": len(list(corpus.iterdir())), "rows": rows}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=REPO / "examples" / "docs")
    parser.add_argument("--output", type=Path, default=None,
                        help="results JSON (default: benchmarks/results/ingest_speed.json; a temp file with --smoke)")
    parser.add_argument("--smoke", action="store_true", help="tiny corpus from tests/data, no targets enforced")
    parser.add_argument("--floor", action="store_true", help="cold ingest vs embedding floor, fresh process per run")
    parser.add_argument("--sweep", default=None, metavar="N,N,...", help="throughput per number of parse processes")
    parser.add_argument("--articles", default=None, metavar="N[,N...]",
                        help="SQuAD dev articles per folder (--floor: 8,40, one folder each; --sweep: 40)")
    parser.add_argument("--data", type=Path, default=SQUAD, help="SQuAD-format file the articles come from")
    parser.add_argument("--with-docs", action="store_true", help="--sweep: add shared/data/docs and examples/docs")
    parser.add_argument("--repeat", type=int, default=3, help="--floor: fresh-process runs per checkout")
    parser.add_argument("--before", type=Path, default=None, help="--floor: also measure this checkout")
    parser.add_argument("--profile", action="store_true", help="--floor: busy seconds per stage (the old-way run)")
    # one measurement in a fresh process (what --floor and --sweep run)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--floor-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--index", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--processes", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--store", default="faiss", help=argparse.SUPPRESS)
    parser.add_argument("--dsn", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--no-floor", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    if args.floor_child:
        return floor_child(args)
    if args.floor or args.sweep:
        output = args.output or REPO / "benchmarks" / "results" / "ingest_floor.json"
        results = json.loads(output.read_text(encoding="utf-8")) if output.exists() else {}
        if args.floor:
            args.articles = [int(n) for n in (args.articles or "8,40").split(",")]
            results["floor"] = floor_main(args)
        if args.sweep:
            args.articles = int((args.articles or "40").split(",")[0])
            results["sweep"] = sweep_main(args)
        results["machine"] = machine()
        output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"results: {output}")
        return 0

    import torch

    from rag_qa.config import Settings
    from rag_qa.models import resolve_model

    settings = Settings()
    model_path = resolve_model(settings.embedding_model).path
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        corpus = work / "corpus"
        corpus.mkdir()
        source = REPO / "tests" / "data" / "docs" if args.smoke else args.corpus
        files = corpus_files(source)
        if args.smoke:  # UTF-8 ones: LangChain's TextLoader needs chardet (not installed) to guess others
            files = [p for p in files if p.name in SMOKE_FILES]
        for path in files:  # both pipelines read the very same files
            shutil.copy(path, corpus / path.name)
        files = corpus_files(corpus)
        warm_up(model_path)

        plain = plain_langchain(files, model_path, settings.chunk_tokens, settings.chunk_overlap)
        first = ours(corpus, work / "index")
        bare = floor(chunk_texts(work / "index"), model_path)
        again = ours(corpus, work / "index")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    results = {
        "corpus": str(source.relative_to(REPO) if source.is_relative_to(REPO) else source),
        "files": [p.name for p in files],
        "embedding_model": settings.embedding_model,
        "chunk_tokens": settings.chunk_tokens,
        "chunk_overlap": settings.chunk_overlap,
        "plain_langchain": plain,
        "ours_first_ingest": first,
        "ours_unchanged_reingest": again,
        "embedding_floor": bare,
        "first_ingest_vs_floor": bare["seconds"] / first["seconds"],
        "first_ingest_speed_vs_langchain": plain["seconds"] / first["seconds"],
        "unchanged_reingest_speedup": first["seconds"] / max(again["seconds"], 1e-9),
        # CPU time of this process: far less sensitive than wall time to other jobs on the machine
        "first_ingest_cpu_vs_langchain": plain["cpu_seconds"] / max(first["cpu_seconds"], 1e-9),
        "targets": {"first_ingest_speed_vs_langchain": 1.0, "unchanged_reingest_speedup": 20.0},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "torch_threads":
                    torch.get_num_threads(), "load_average_1m": os.getloadavg()[0], "platform": platform.platform()},
        "smoke": args.smoke,
    }
    load, cpus = os.getloadavg()[0], os.cpu_count() or 1
    if load > cpus:
        results["warning"] = (f"machine was busy (load {load:.1f} on {cpus} CPUs): wall-clock ratios are "
                              "unreliable; compare first_ingest_cpu_vs_langchain, or re-run on a quiet machine")
    output = args.output or (work.parent / "results_ingest_smoke.json" if args.smoke
                             else REPO / "benchmarks" / "results" / "ingest_speed.json")
    output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")

    rows = [("plain LangChain (in memory)", plain), ("ours, first ingest (on disk)", first),
            ("ours, unchanged re-ingest", again)]
    print(f"{'pipeline':32} {'docs':>5} {'chunks':>7} {'seconds':>9} {'cpu s':>9}")
    for name, row in rows:
        print(f"{name:32} {row['documents']:>5} {row['chunks']:>7} {row['seconds']:>9.3f} {row['cpu_seconds']:>9.3f}")
    print(f"first ingest vs plain LangChain: {results['first_ingest_speed_vs_langchain']:.2f}x wall, "
          f"{results['first_ingest_cpu_vs_langchain']:.2f}x CPU (target >= 1.0x)")
    print(f"unchanged re-ingest vs first:    {results['unchanged_reingest_speedup']:.0f}x (target >= 20x)")
    print(f"first ingest vs embedding floor: {results['first_ingest_vs_floor']:.0%} of the floor's speed "
          f"(floor {bare['seconds']:.2f}s for {bare['chunks']} chunks)")
    if "warning" in results:
        print(f"warning: {results['warning']}")
    print(f"results: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
