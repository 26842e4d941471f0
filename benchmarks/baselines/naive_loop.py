"""Naive reading loop: the classic HF question-answering pipeline, once per passage, best score wins.

Run with the LangChain venv (transformers 4.x still has ``pipeline("question-answering")``):

    benchmarks/.venv-langchain/bin/python benchmarks/baselines/naive_loop.py \
        --passages passages.json --reader-dir models/minilm-squad --out naive.json

``passages.json`` is ``[{"id", "question", "passages": [text, ...]}]`` -- the passages rag-qa's
retriever returned for each question (``benchmarks/ask.py`` writes it), so only the reading is
timed: no retrieval, no index.  The pipeline runs float32 with its defaults (max_seq_len 384,
doc_stride 128) except ``max_answer_len`` (30 tokens, as rag-qa's reader).  The first question is
read once untimed (warm-up).  Output: the baselines' common result format (see README.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

common.offline_env()


def load_items(path: Path, limit: int) -> list[dict]:
    """Read and check the passages file; raises InputError with a one-line message."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise common.InputError(f"cannot read {path}: {exc}") from exc
    ok = isinstance(data, list) and all(
        isinstance(x, dict)
        and {"id", "question", "passages"} <= x.keys()
        and isinstance(x["passages"], list)
        and all(isinstance(p, str) for p in x["passages"])
        for x in data
    )
    if not ok:
        raise common.InputError(f"{path} must be a JSON list of {{id, question, passages: [str, ...]}}")
    items = data[:limit] if limit else data
    if not items:
        raise common.InputError("no questions to read")
    return items


def run(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--passages", required=True, type=Path, help='[{"id", "question", "passages": [text, ...]}]')
    ap.add_argument("--reader-dir", required=True, type=Path, help="Hugging Face extractive QA model directory")
    ap.add_argument("--out", required=True, type=Path, help="where the result JSON goes")
    ap.add_argument("--max-answer-len", type=int, default=30, help="the pipeline's max_answer_len (tokens)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N questions (0 = all)")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads(N) (0 = torch's default)")
    ap.add_argument("--quiet", action="store_true", help="no per-question progress on stderr")
    args = ap.parse_args(argv)
    if not (args.reader_dir / "config.json").is_file():
        raise common.InputError(f"--reader-dir {args.reader_dir} is not a model directory (no config.json)")
    items = load_items(args.passages, args.limit)
    threads = common.set_threads(args.threads)

    import torch
    from transformers import pipeline

    qa = pipeline(
        "question-answering",
        model=str(args.reader_dir),
        tokenizer=str(args.reader_dir),
        device=-1,
        dtype=torch.float32,
    )
    passages = {x["question"]: x["passages"] for x in items}

    def answer(question: str) -> str:
        best_text, best_score = "", float("-inf")
        for text in passages[question]:
            out = qa(question=question, context=text, max_answer_len=args.max_answer_len)
            if out["score"] > best_score:
                best_text, best_score = out["answer"], out["score"]
        return best_text

    result = common.Result(system="naive-hf-pipeline")
    common.time_questions(items, answer, result, quiet=args.quiet)
    result.extra = {
        "threads": threads,
        "passages_read": sum(len(x["passages"]) for x in items),
        "config": {
            "reader": str(args.reader_dir),
            "reader_dtype": "float32",
            "max_answer_len": args.max_answer_len,
            "max_seq_len": min(qa.tokenizer.model_max_length, 384),
            "doc_stride": min(min(qa.tokenizer.model_max_length, 384) // 2, 128),
            "calls": "one pipeline call per passage, highest score wins",
        },
        "versions": common.versions("transformers", "torch", "tokenizers"),
    }
    common.write_result(args.out, result)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(common.main_guard(run))
