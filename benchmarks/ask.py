"""Warm ``ask`` latency vs a naive per-passage HF pipeline loop, and how close we are to the hardware floor.

    .venv/bin/python benchmarks/ask.py [--data SQUAD.json] [--questions 200] [--reader-dir DIR]
    .venv/bin/python benchmarks/ask.py --smoke          # 5 questions, results to a temp file
    .venv/bin/python benchmarks/ask.py --index DIR --questions-file questions.json   # what run_all.py does

Over the articles of ``--data`` as a corpus (the cached index of :func:`rag_qa.eval.corpus.corpus_index`,
built in a child process so it does not count towards our peak RSS), for N questions (a seeded
sample, kept in file order) -- or over an existing ``--index`` with make_inputs.py's ``questions.json``:

* **ask**: ``QAService.ask`` end to end (hybrid retrieval, top-5, our extractive reader), warm --
  one untimed question first -- and timed per question;
* **read**: the same passages again, timing only ``reader.read``;
* **naive loop**: ``benchmarks/baselines/naive_loop.py`` in ``benchmarks/.venv-langchain``
  (transformers 4.x ``pipeline("question-answering")`` once per passage, best score wins, fp32)
  over exactly the passages our retriever returned, same weights, timing only the reading;
* **floor**: the tokens our reader was fed (question + passage windows, unpadded) times the FLOPs
  of the reader's encoder, divided by this machine's measured matmul rate at the precision the
  reader ran (``reader.precision``).  Measured p50 / floor says how much is overhead.

Writes ``benchmarks/results/ask.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from baselines.common import latency_stats, peak_rss_mb  # peak: VmHWM (ru_maxrss would include a parent's)

from rag_qa.config import MODES
from rag_qa.env import set_offline_defaults

set_offline_defaults()
warnings.filterwarnings("ignore")

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

DEFAULT_DATA = REPO.parent / "shared" / "data" / "squad" / "dev-v1.1-public.json"
SMOKE_DATA = REPO / "tests" / "data" / "squad" / "dev-mini.json"
LANGCHAIN_PY = HERE / ".venv-langchain" / "bin" / "python"
NAIVE_LOOP = HERE / "baselines" / "naive_loop.py"


# ---------------------------------------------------------------------------- small helpers
def machine_info() -> dict:
    import torch

    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    return {"cpu": cpu, "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
            "load_average_1m": round(os.getloadavg()[0], 2)}


def ensure_index(data: Path) -> Path:
    """The cached corpus index for ``data``, built (if needed) in a child process."""
    code = ("import sys; from rag_qa.eval.corpus import corpus_index; "
            "print(corpus_index(sys.argv[1], progress=False)[1])")
    out = subprocess.run([sys.executable, "-c", code, str(data)], check=True, capture_output=True, text=True, cwd=REPO)
    return Path(out.stdout.strip().splitlines()[-1])


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answers: list[str]


def load_questions(data: Path | None, questions_file: Path | None) -> list[Question]:
    """Answerable questions of a SQuAD file, or of a baseline ``questions.json`` (``make_inputs.py``)."""
    if questions_file is not None:
        rows = json.loads(questions_file.read_text(encoding="utf-8"))
        return [Question(str(r["id"]), r["question"], list(r["answers"])) for r in rows]
    from rag_qa.eval.corpus import corpus_questions

    assert data is not None
    return [Question(q.id, q.question, q.answers) for q in corpus_questions(data)]


def sample(questions: list[Question], n: int, seed: int = 0) -> list[Question]:
    """``n`` of ``questions`` (all when n is 0 or more than there are), seeded, kept in order."""
    if 0 < n < len(questions):
        keep = set(random.Random(seed).sample(range(len(questions)), n))
        questions = [q for i, q in enumerate(questions) if i in keep]
    return questions


# ---------------------------------------------------------------------------- the hardware floor
def encoder_flops(n: int, layers: int, d: int, ffn: int) -> float:
    """FLOPs of a BERT encoder over one sequence of n tokens: projections, FFN and attention."""
    return layers * (2 * n * (4 * d * d + 2 * d * ffn) + 4 * n * n * d)


def matmul_gflops(dtype_name: str, rows: int = 1920, d: int = 384, ffn: int = 1536, repeats: int = 7) -> float:
    """Best-of-``repeats`` GFLOP/s of one encoder layer's matmuls (Q, K, V, O, FFN up and down)."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    x = torch.randn(rows, d, dtype=dtype)
    h = torch.randn(rows, ffn, dtype=dtype)
    w = torch.randn(d, d, dtype=dtype)
    up = torch.randn(d, ffn, dtype=dtype)
    down = torch.randn(ffn, d, dtype=dtype)
    flops = 4 * 2 * rows * d * d + 2 * rows * d * ffn + 2 * rows * ffn * d

    def layer() -> None:
        for _ in range(4):
            torch.mm(x, w)
        torch.mm(x, up)
        torch.mm(h, down)

    with torch.inference_mode():
        layer()  # warm-up: oneDNN picks its kernels
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(3):
                layer()
            best = min(best, (time.perf_counter() - t0) / 3)
    return flops / best / 1e9


def token_counts(reader, questions: Sequence[str], passages: Sequence[Sequence[str]]) -> list[dict]:
    """Per question: windows, tokens fed (unpadded) and as padded in the reader's batches."""
    from transformers import AutoTokenizer

    from rag_qa.spans import encode_windows

    tok = AutoTokenizer.from_pretrained(reader.spec.path)
    cfg = reader.config
    out = []
    for q, texts in zip(questions, passages, strict=True):
        wins = encode_windows(tok, [q] * len(texts), list(texts), cfg.max_length, cfg.doc_stride) if texts else []
        lengths = sorted(len(w.input_ids) for w in wins)
        padded = sum(max(lengths[b : b + cfg.batch_size]) * len(lengths[b : b + cfg.batch_size])
                     for b in range(0, len(lengths), cfg.batch_size))
        out.append({"windows": len(lengths), "lengths": lengths, "tokens": sum(lengths), "padded_tokens": padded})
    return out


def floor_report(reader, counts: list[dict], read_ms: list[float], ask_ms: list[float], smoke: bool = False) -> dict:
    """FLOPs per question, matmul rates, floor = FLOPs / rate at the reader's precision, and measured / floor.

    ``smoke`` times a tenth of the rows, once: bf16 matmuls without native bf16 run at ~1 GFLOP/s on 2 cores,
    so the full best-of-7 costs a smoke run about 90 CPU seconds for a number it only checks is there."""
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(reader.spec.path)
    layers, d, ffn = cfg.num_hidden_layers, cfg.hidden_size, cfg.intermediate_size
    size = {"rows": 192, "repeats": 1} if smoke else {}
    rates = {p: round(matmul_gflops(p, d=d, ffn=ffn, **size), 1) for p in ("fp32", "bf16")}
    precision = getattr(reader, "precision", "fp32")
    rate = rates.get(precision, rates["fp32"])  # int8 has no measured rate here: fp32's (a looser floor)
    flops = [sum(encoder_flops(n, layers, d, ffn) for n in c["lengths"]) for c in counts]
    floor_ms = [1000 * f / (rate * 1e9) for f in flops]
    floor_p50 = statistics.median(floor_ms)
    fp32_floor_p50 = statistics.median(1000 * f / (rates["fp32"] * 1e9) for f in flops)
    return {
        "model": {"layers": layers, "hidden": d, "ffn": ffn},
        "formula": "per layer per sequence of n tokens: 2*n*(4*d*d + 2*d*ffn) + 4*n*n*d",
        "matmul_gflops": rates,
        "precision": precision,
        "rate_used_gflops": rate,
        "windows_per_question_mean": round(statistics.fmean(c["windows"] for c in counts), 2),
        "tokens_per_question_p50": statistics.median(c["tokens"] for c in counts),
        "tokens_per_question_mean": round(statistics.fmean(c["tokens"] for c in counts), 1),
        "padded_tokens_per_question_mean": round(statistics.fmean(c["padded_tokens"] for c in counts), 1),
        "gflop_per_question_p50": round(statistics.median(flops) / 1e9, 3),
        "floor_p50_ms": round(floor_p50, 1),
        "floor_p50_ms_fp32": round(fp32_floor_p50, 1),
        "read_p50_over_floor": round(statistics.median(read_ms) / floor_p50, 2),
        "ask_p50_over_floor": round(statistics.median(ask_ms) / floor_p50, 2),
    }


# ---------------------------------------------------------------------------- runs
def run_ours(index: Path, questions: list[Question], reader_name: str, mode: str, top_k: int) -> dict:
    """Warm ask latency, then read-only latency over the same passages; the passages are kept for the naive loop."""
    from rag_qa.config import Settings
    from rag_qa.service import QAService

    service = QAService(index, Settings())
    reader = service.reader(reader_name)
    reader.warm_up()
    service.ask(questions[0].question, reader=reader_name, mode=mode, top_k=top_k)  # warm: not timed
    ask_ms, predictions = [], {}
    for q in questions:
        t0 = time.perf_counter()
        answer = service.ask(q.question, reader=reader_name, mode=mode, top_k=top_k)
        ask_ms.append((time.perf_counter() - t0) * 1000)
        predictions[q.id] = answer.answer
    read_ms, passages = [], []
    for q in questions:
        found = service.search(q.question, mode=mode, top_k=top_k)
        t0 = time.perf_counter()
        reader.read(q.question, found)
        read_ms.append((time.perf_counter() - t0) * 1000)
        passages.append([p.text for p in found])
    return {"reader": reader, "ask_ms": ask_ms, "read_ms": read_ms, "passages": passages,
            "predictions": predictions, "peak_rss_mb": peak_rss_mb()}


def run_naive(questions: list[Question], passages: list[list[str]], reader_dir: Path, threads: int, work: Path) -> dict:
    """The naive HF pipeline loop in the LangChain venv over the given passages."""
    items = [{"id": q.id, "question": q.question, "passages": ps} for q, ps in zip(questions, passages, strict=True)]
    src, out = work / "naive_in.json", work / "naive_out.json"
    src.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    cmd = [str(LANGCHAIN_PY), str(NAIVE_LOOP), "--passages", str(src), "--reader-dir", str(reader_dir),
           "--out", str(out), "--threads", str(threads), "--quiet"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"naive loop failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return json.loads(out.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=None,
                    help=f"SQuAD-format file whose articles are the corpus (default {DEFAULT_DATA}; "
                         "with --smoke the test fixture)")
    ap.add_argument("--index", type=Path, default=None,
                    help="an existing index to ask instead of --data's corpus (needs --questions-file)")
    ap.add_argument("--questions-file", type=Path, default=None,
                    help='questions as make_inputs.py writes them: [{"id", "question", "answers"}]')
    ap.add_argument("--questions", type=int, default=None, help="questions timed (default 200; 5 with --smoke)")
    ap.add_argument("--reader-dir", type=Path, default=None,
                    help="reader weights (read as extractive:<dir>); default: the shipped reader")
    ap.add_argument("--mode", choices=MODES, default="hybrid")
    ap.add_argument("--top-k", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0, help="seed for sampling the questions")
    ap.add_argument("--no-naive", action="store_true", help="skip the naive pipeline loop")
    ap.add_argument("--out", type=Path, default=None,
                    help="results JSON (default benchmarks/results/ask.json; a temp file with --smoke)")
    ap.add_argument("--smoke", action="store_true", help="5 questions on the test fixture; missing venv = skipped")
    args = ap.parse_args(argv)

    import torch

    from rag_qa.models import resolve_model
    from rag_qa.squad_metrics import squad_scores

    data = args.data or (SMOKE_DATA if args.smoke else DEFAULT_DATA)
    n = args.questions if args.questions is not None else (5 if args.smoke else 200)
    out = args.out or (Path(tempfile.gettempdir()) / "results_ask_smoke.json" if args.smoke
                       else HERE / "results" / "ask.json")
    if (args.index is None) != (args.questions_file is None):
        print("error: --index and --questions-file go together", file=sys.stderr)
        return 2
    if args.index is None and not data.is_file():
        print(f"error: no data file {data}", file=sys.stderr)
        return 2
    reader_name = f"extractive:{args.reader_dir.resolve()}" if args.reader_dir else "extractive"
    reader_dir = Path(resolve_model(str(args.reader_dir.resolve()) if args.reader_dir else "reader",
                                    kind="reader").path)
    naive_skip = None
    if args.no_naive:
        naive_skip = "--no-naive"
    elif not LANGCHAIN_PY.exists():
        if not args.smoke:
            print(f"error: {LANGCHAIN_PY} is missing; run benchmarks/setup_baselines.sh langchain "
                  "(or pass --no-naive)", file=sys.stderr)
            return 2
        naive_skip = f"{LANGCHAIN_PY} not built (benchmarks/setup_baselines.sh)"

    started = time.perf_counter()
    index = args.index or ensure_index(data)
    questions = sample(load_questions(None if args.index else data, args.questions_file), n, args.seed)
    ours = run_ours(index, questions, reader_name, args.mode, args.top_k)
    reader = ours["reader"]
    counts = token_counts(reader, [q.question for q in questions], ours["passages"])
    floor = floor_report(reader, counts, ours["read_ms"], ours["ask_ms"], smoke=args.smoke)
    gold = {q.id: q.answers for q in questions}
    ask, read = latency_stats(ours["ask_ms"]), latency_stats(ours["read_ms"])
    results: dict = {
        "data": str(args.questions_file or data),
        "index": str(index),
        "questions": len(questions),
        "mode": args.mode,
        "top_k": args.top_k,
        "reader": {"name": reader_name, "weights": str(reader_dir), "precision": getattr(reader, "precision", None),
                   "max_length": reader.config.max_length, "doc_stride": reader.config.doc_stride},
        "ours": {"ask": ask, "read": read, "peak_rss_mb": ours["peak_rss_mb"],
                 **{k: round(v, 2) for k, v in squad_scores(ours["predictions"], gold).items() if k != "n"}},
        "floor": floor,
    }
    if naive_skip:
        results["naive_loop"] = {"skipped": naive_skip}
    else:
        with tempfile.TemporaryDirectory() as tmp:
            naive = run_naive(questions, ours["passages"], reader_dir, torch.get_num_threads(), Path(tmp))
        lat = list(naive["latency_ms"].values())
        scores = squad_scores(naive["predictions"], gold)
        results["naive_loop"] = {
            "read": latency_stats(lat), "peak_rss_mb": naive["peak_rss_mb"],
            "exact_match": round(scores["exact_match"], 2), "f1": round(scores["f1"], 2),
            "config": naive.get("config"), "versions": naive.get("versions"),
        }
        results["ratios"] = {
            "ours_read_p50_over_naive_p50": round(read["p50_ms"] / statistics.median(lat), 3),
            "ours_ask_p50_over_naive_p50": round(ask["p50_ms"] / statistics.median(lat), 3),
        }
    results["machine"] = machine_info()
    load, cpus = results["machine"]["load_average_1m"], os.cpu_count() or 1
    if load > cpus + 1:  # this benchmark itself keeps about every core busy
        results["warning"] = f"machine was busy (load {load:.1f} on {cpus} CPUs): latencies are inflated"
    results["smoke"] = args.smoke
    results["seconds"] = round(time.perf_counter() - started, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")

    print(f"{len(questions)} questions, {args.mode} top-{args.top_k}, reader {reader_name} ({floor['precision']})")
    print(f"ours ask  p50 {ask['p50_ms']:8.1f} ms  p95 {ask['p95_ms']:8.1f} ms  peak RSS {ours['peak_rss_mb']} MB")
    print(f"ours read p50 {read['p50_ms']:8.1f} ms  p95 {read['p95_ms']:8.1f} ms")
    if "ratios" in results:
        nv = results["naive_loop"]["read"]
        print(f"naive loop p50 {nv['p50_ms']:7.1f} ms  p95 {nv['p95_ms']:8.1f} ms  "
              f"(ours read / naive = {results['ratios']['ours_read_p50_over_naive_p50']:.2f}x)")
    else:
        print(f"naive loop skipped: {results['naive_loop']['skipped']}")
    print(f"floor p50 {floor['floor_p50_ms']:.1f} ms ({floor['tokens_per_question_p50']} tokens at "
          f"{floor['rate_used_gflops']} GFLOP/s, {floor['precision']}); ask p50 / floor = "
          f"{floor['ask_p50_over_floor']:.2f}x, read p50 / floor = {floor['read_p50_over_floor']:.2f}x")
    if "warning" in results:
        print(f"warning: {results['warning']}")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
