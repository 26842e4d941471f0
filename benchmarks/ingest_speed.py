"""Ingest speed: our first ingest vs a plain LangChain pipeline, and our unchanged re-ingest.

    .venv/bin/python benchmarks/ingest_speed.py [--corpus examples/docs] [--output benchmarks/results/ingest_speed.json]
    .venv/bin/python benchmarks/ingest_speed.py --smoke   # tiny corpus, results to a temp file (for the tests)

Same corpus, same embedding model (all-MiniLM-L6-v2 from the local package), same chunk sizes
(200 tokens of that model's tokenizer, 40 overlap), in one process, one after the other.  The
plain pipeline is LangChain's loaders + ``RecursiveCharacterTextSplitter`` +
``HuggingFaceEmbeddings`` + ``FAISS.from_documents`` and keeps its index in memory only (saving it
would mean pickling); ours also writes FAISS + SQLite + BM25 to disk.  Each timing includes
loading the tokenizer and the model; libraries are imported and the model files read once
beforehand so that neither side pays for imports or a cold disk cache.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

from rag_qa.env import set_offline_defaults

set_offline_defaults()
warnings.filterwarnings("ignore")

REPO = Path(__file__).resolve().parents[1]

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


def ours(corpus_dir: Path, index: Path) -> dict:
    from ingest.pipeline import ingest_paths
    from rag_qa.config import Settings

    cpu = time.process_time()
    report = ingest_paths([corpus_dir], index, settings=Settings())
    cpu = time.process_time() - cpu
    if report.failed:
        raise SystemExit(f"ingest failed on: {report.failed}")
    return {"seconds": report.seconds, "cpu_seconds": cpu, "documents": report.documents,
            "chunks": report.chunks, "embedded_chunks": report.embedded_chunks}


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=REPO / "examples" / "docs")
    parser.add_argument("--output", type=Path, default=None,
                        help="results JSON (default: benchmarks/results/ingest_speed.json; a temp file with --smoke)")
    parser.add_argument("--smoke", action="store_true", help="tiny corpus from tests/data, no targets enforced")
    args = parser.parse_args(argv)

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
    if "warning" in results:
        print(f"warning: {results['warning']}")
    print(f"results: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
