"""The whole side-by-side benchmark (``make bench``): rag-qa vs Haystack 2.x vs plain LangChain.

    .venv/bin/python benchmarks/run_all.py [--data SQUAD.json] [--articles 6] [--questions 200]
    .venv/bin/python benchmarks/run_all.py --smoke --out /tmp/r/run_all.json --readme /tmp/r/README.md

In one run, same machine, same reader weights (``--reader-dir``, default the shipped reader):

1. a slice of ``--data`` (``baselines/make_inputs.py``: the first ``--articles`` articles, one
   document each, and ``--questions`` seeded questions) -- the corpus and questions for 2-4;
2. **ingest**: ``benchmarks/ingest_speed.py`` (ours vs plain LangChain, then an unchanged re-ingest) on
   the slice's articles as .txt files (``--smoke``: its own tiny corpus), and **OCR**:
   ``benchmarks/ocr_speed.py`` (pages per second of a scanned PDF read as ingest reads it;
   ``--smoke``: one page), also written to ``benchmarks/results/ocr_speed.json`` unless smoke;
3. **open-domain EM/F1**: ours (hybrid, top-5, extractive reader) on an index of those same .txt
   files, Haystack (BM25, stock ExtractiveReader) and LangChain (FAISS + per-chunk QA pipeline) in
   their own venvs; every system's predictions scored by ``squad_scores``;
4. **ask latency**: ``benchmarks/ask.py`` on the same index and questions (ours, the naive pipeline
   loop, the hardware floor); the baselines' warm per-question latencies come from step 3;
5. **retrieval** recall@1/5/20 + MRR for dense/bm25/hybrid over every question of ``--data``
   (``--retrieval-limit`` to cap) on the whole file's articles;
6. **follow-ups**: ``benchmarks/followup.py`` (F1 of follow-up questions with the conversation,
   without it and written out; the condense step's latency), also written to
   ``benchmarks/results/followup.json`` unless smoke.

Writes ``benchmarks/results/run_all.json`` (``--out``; ``ask.json`` and the charts go beside it) and
rewrites the README between ``<!-- results:start -->`` and ``<!-- results:end -->`` (``--readme``).
A missing baseline venv is built with ``benchmarks/setup_baselines.sh``; with ``--smoke`` it is
reported as skipped instead.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag_qa.config import MODES
from rag_qa.env import set_offline_defaults

set_offline_defaults()
warnings.filterwarnings("ignore")

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

DEFAULT_DATA = REPO.parent / "shared" / "data" / "squad" / "dev-v1.1-public.json"
SMOKE_DATA = REPO / "tests" / "data" / "squad" / "dev-mini.json"
VENVS = {"haystack": HERE / ".venv-haystack" / "bin" / "python",
         "langchain": HERE / ".venv-langchain" / "bin" / "python"}
RUNNERS = {"haystack": (HERE / "baselines" / "haystack_run.py", ["--retriever", "bm25"]),
           "langchain": (HERE / "baselines" / "langchain_run.py", [])}
KS = (1, 5, 20)
START, END = "<!-- results:start -->", "<!-- results:end -->"
ASK_RESULTS = "ask.json"  # benchmarks/ask.py's results, written beside this run's


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], what: str) -> subprocess.CompletedProcess:
    """Run a child process from the repo root; a failure stops the benchmark with its stderr tail."""
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"error: {what} failed (exit {proc.returncode}):\n{(proc.stderr or proc.stdout)[-3000:]}")
    return proc


# ---------------------------------------------------------------------------- stages
def make_slice(data: Path, articles: int, questions: int, work: Path) -> tuple[list[dict], list[dict], Path]:
    """corpus.json + questions.json (+ the slice in SQuAD format) via make_inputs.py; the articles as .txt."""
    inputs = work / "inputs"
    run([sys.executable, str(HERE / "baselines" / "make_inputs.py"), "--squad", str(data), "--articles",
         str(articles), "--questions", str(questions), "--out-dir", str(inputs), "--squad-out",
         str(inputs / "squad.json")], "make_inputs.py")
    corpus = json.loads((inputs / "corpus.json").read_text(encoding="utf-8"))
    txt = work / "corpus"
    txt.mkdir()
    for doc in corpus:  # the same text the baselines index, one file per article
        (txt / (re.sub(r"[^\w.-]+", "_", doc["id"]) + ".txt")).write_text(doc["text"], encoding="utf-8")
    return corpus, json.loads((inputs / "questions.json").read_text(encoding="utf-8")), txt


def ensure_venvs(smoke: bool) -> dict[str, str]:
    """Build missing baseline venvs (not in smoke mode); returns {baseline: why skipped}."""
    missing = [name for name, py in VENVS.items() if not py.exists()]
    if missing and not smoke:
        log(f"building baseline venvs ({', '.join(missing)}): benchmarks/setup_baselines.sh")
        subprocess.run(["bash", str(HERE / "setup_baselines.sh"), *(missing if len(missing) == 1 else [])],
                       cwd=REPO, check=True)
        still = [name for name, py in VENVS.items() if not py.exists()]
        if still:
            raise SystemExit(f"error: baseline venvs still missing after setup_baselines.sh: {still}")
        return {}
    return {name: f"{VENVS[name].parent.parent.name} not built (smoke mode)" for name in missing}


def ingest_bench(txt: Path, smoke: bool, work: Path) -> dict:
    out = work / "ingest.json"
    cmd = [sys.executable, str(HERE / "ingest_speed.py"), "--output", str(out)]
    cmd += ["--smoke"] if smoke else ["--corpus", str(txt)]
    printed = run(cmd, "benchmarks/ingest_speed.py").stdout
    # its own summary lines (ours vs LangChain, vs the embedding floor) go into the details as printed
    return json.loads(out.read_text(encoding="utf-8")) | {"printed": printed.splitlines()}


def ocr_bench(smoke: bool, out_dir: Path, work: Path) -> dict:
    """benchmarks/ocr_speed.py: scanned pages per second through ingest's OCR path."""
    out = (work if smoke else out_dir) / "ocr_speed.json"
    run([sys.executable, str(HERE / "ocr_speed.py"), "--output", str(out), *(["--smoke"] if smoke else [])],
        "benchmarks/ocr_speed.py")
    return json.loads(out.read_text(encoding="utf-8"))


def followup_bench(data: Path, smoke: bool, out_dir: Path, work: Path) -> dict:
    """benchmarks/followup.py: follow-up questions with and without the conversation (issue 23)."""
    out = (work if smoke else out_dir) / "followup.json"
    # smoke: 2 of followup.py's own 12 smoke conversations, each asked 7 ways (the smoke run checks the schema;
    # its follow-ups are about dev articles the test fixture does not hold, so their F1 is 0 whatever the count)
    run([sys.executable, str(HERE / "followup.py"), "--data", str(data), "--out", str(out),
         *(["--smoke", "--limit", "2"] if smoke else [])], "benchmarks/followup.py")
    return json.loads(out.read_text(encoding="utf-8"))


def retrieval(data: Path, limit: int | None, quiet: bool) -> dict[str, dict]:
    from rag_qa.eval.retrieval_eval import evaluate_retrieval

    out = {}
    for mode in MODES:
        r = evaluate_retrieval(data, mode, KS, limit, progress=not quiet)
        out[mode] = {**{f"recall@{k}": r["recall@k"][str(k)] for k in KS}, "mrr": r["mrr"],
                     "n": r["n"], "seconds": r["seconds"]}
        log(f"retrieval {mode}: {out[mode]}")
    return out


def build_index(txt: Path, work: Path) -> Path:
    from ingest.pipeline import ingest_paths
    from rag_qa.config import Settings

    index = work / "index"
    report = ingest_paths([txt], index, settings=Settings())
    if report.failed:
        raise SystemExit(f"error: ingest failed on {report.failed}")
    return index


def ours_open(index: Path, questions: list[dict], reader: str, batch: int = 16) -> dict[str, str]:
    """Our predictions through QAService.ask_batch (hybrid, top-5: the defaults)."""
    from rag_qa.config import Settings
    from rag_qa.service import QAService

    service = QAService(index, Settings())
    preds: dict[str, str] = {}
    for i in range(0, len(questions), batch):
        part = questions[i : i + batch]
        for q, a in zip(part, service.ask_batch([q["question"] for q in part], reader=reader), strict=True):
            preds[q["id"]] = a.answer
    return preds


def baseline(name: str, inputs: Path, reader_dir: Path, emb_dir: str, top_k: int, threads: int, work: Path) -> dict:
    script, extra = RUNNERS[name]
    out = work / f"{name}.json"
    run([str(VENVS[name]), str(script), "--corpus", str(inputs / "corpus.json"), "--questions",
         str(inputs / "questions.json"), "--reader-dir", str(reader_dir), "--embedding-dir", emb_dir,
         "--top-k", str(top_k), "--threads", str(threads), "--quiet", "--out", str(out), *extra], name)
    return json.loads(out.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------- report
def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def fmt(x: Any, digits: int = 1) -> str:
    if x is None:
        return "skipped"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def targets(r: dict) -> dict[str, bool | None]:
    """The issues' targets, each True/False (None when a side was skipped)."""
    ret, od, ak, ing = r["retrieval"], r["open_domain"], r["ask"], r["ingest"]
    best = {k: max(ret["dense"][k], ret["bm25"][k]) for k in ("recall@1", "recall@5", "recall@20")}
    d = r["details"]

    def ge(a: float | None, b: float | None) -> bool | None:
        return None if a is None or b is None else a >= b

    return {
        "hybrid beats the best single retriever at every k": all(ret["hybrid"][k] > v for k, v in best.items()),
        "hybrid R@5 >= 0.95": ret["hybrid"]["recall@5"] >= 0.95,
        "open-domain EM >= Haystack's": ge(od["ours_em"], od["haystack_em"]),
        "open-domain EM >= LangChain's": ge(od["ours_em"], od["langchain_em"]),
        "ask p50 <= Haystack's": ge(ak["haystack_p50_ms"], ak["ours_p50_ms"]),
        "ask p50 <= 0.5x Haystack's (aim)": ge(ak["haystack_p50_ms"] and 0.5 * ak["haystack_p50_ms"],
                                                ak["ours_p50_ms"]),
        "read p50 <= 0.5x the naive pipeline loop": ge(0.5 * d["ask"]["naive_loop_p50_ms"]
                                                        if d["ask"]["naive_loop_p50_ms"] else None,
                                                        d["ask"]["ours_read_p50_ms"]),
        "ask p50 <= 1.3x the hardware floor": d["ask"]["ours_ask_p50_over_floor"] <= 1.3,
        "first ingest within 1.1x of plain LangChain": ge(1.1 * ing["langchain_s"], ing["ours_s"]),
        "follow-up F1 with the conversation >= 0.85x written out": ge(r["followup"]["both"],
                                                                        0.85 * r["followup"]["written_out"]),
        "condense step p50 <= 20 ms": r["followup"]["condense_p50_ms"] <= 20,
    }


def charts(r: dict, folder: Path) -> dict[str, Path]:
    """chart_latency.png and chart_quality.png (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ak, d = r["ask"], r["details"]["ask"]
    rows = [("rag-qa ask", ak["ours_p50_ms"], ak["ours_p95_ms"]),
            ("rag-qa read only", d["ours_read_p50_ms"], d["ours_read_p95_ms"]),
            ("hardware floor (read)", d["floor_p50_ms"], None),
            ("naive HF pipeline loop (read only)", d["naive_loop_p50_ms"], d["naive_loop_p95_ms"]),
            ("Haystack 2.x BM25 ask", ak["haystack_p50_ms"], d["haystack_p95_ms"]),
            ("plain LangChain ask", ak["langchain_p50_ms"], d["langchain_p95_ms"])]
    rows = [row for row in rows if row[1] is not None]
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(rows) + 1.4))
    y = range(len(rows))
    colors = ["#2b6cb0" if n.startswith("rag-qa") else "#a0aec0" if "floor" in n else "#dd6b20" for n, *_ in rows]
    ax.barh(list(y), [p50 for _, p50, _ in rows], color=colors)
    for i, (_, p50, p95) in enumerate(rows):
        if p95 is not None:
            ax.plot([p95], [i], marker="|", color="black", markersize=14)
        ax.text(p50, i, f" {p50:.0f}", va="center", fontsize=8)
    ax.set_yticks(list(y), [n for n, *_ in rows])
    ax.invert_yaxis()
    ax.set_xlabel("ms per question, warm (bar: p50, tick: p95)")
    ax.set_title(f"Latency, top-{r['details']['config']['top_k']}, {ak['questions']} questions, "
                 f"{r['machine']['cpus']} CPU cores")
    fig.tight_layout()
    paths = {"latency": folder / "chart_latency.png", "quality": folder / "chart_quality.png"}
    fig.savefig(paths["latency"], dpi=110)
    plt.close(fig)

    od, ret = r["open_domain"], r["retrieval"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    systems = [("rag-qa", "ours"), ("Haystack", "haystack"), ("LangChain", "langchain")]
    systems = [(label, key) for label, key in systems if od[f"{key}_em"] is not None]
    width = 0.38
    for j, metric in enumerate(("em", "f1")):
        xs = [i + (j - 0.5) * width for i in range(len(systems))]
        vals = [od[f"{key}_{metric}"] for _, key in systems]
        left.bar(xs, vals, width, label=metric.upper())
        for x, v in zip(xs, vals, strict=True):
            left.text(x, v, f"{v:.1f}", ha="center", va="bottom", fontsize=8)
    left.set_xticks(range(len(systems)), [label for label, _ in systems])
    left.set_ylim(0, 100)
    left.set_title(f"Open-domain SQuAD v1.1 ({r['details']['open_domain']['questions']} questions)")
    left.legend()
    metrics = [f"recall@{k}" for k in KS] + ["mrr"]
    width = 0.26
    for j, mode in enumerate(MODES):
        xs = [i + (j - 1) * width for i in range(len(metrics))]
        right.bar(xs, [ret[mode][m] for m in metrics], width, label=mode)
    right.set_xticks(range(len(metrics)), ["R@1", "R@5", "R@20", "MRR"])
    right.set_ylim(0, 1)
    right.set_title(f"Retrieval ({r['details']['retrieval']['questions']} questions)")
    right.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(paths["quality"], dpi=110)
    plt.close(fig)
    return paths


def readme_block(r: dict, chart_paths: dict[str, Path], readme: Path, out: Path) -> str:
    """The markdown between the README's results markers."""
    ak, od, ing, ret, d = r["ask"], r["open_domain"], r["ingest"], r["retrieval"], r["details"]
    cfg, m = d["config"], r["machine"]
    rel = {k: os.path.relpath(p, readme.parent) for k, p in chart_paths.items()}
    lines = [
        f"Measured {r['date']} by `make bench` on {m['cpu']} ({m['cpus']} CPU cores, {m['torch_threads']} torch "
        f"threads{', **smoke run**' if r['smoke'] else ''}). Reader weights `{cfg['reader_weights']}` for all three "
        f"systems (ours ran them in {cfg['reader_precision']}, the baselines in float32). Open-domain and latency: "
        f"{d['open_domain']['questions']} questions over the first {cfg['articles']} articles of "
        f"`{cfg['data_name']}`, one document per article, each system chunking for itself; top-{cfg['top_k']}.",
        "",
    ]
    if "warning" in r:
        lines += [f"**Warning:** {r['warning']}", ""]
    lines += [
        "| | rag-qa | Haystack 2.x (BM25) | plain LangChain |",
        "|---|---|---|---|",
        f"| open-domain EM / F1 | {fmt(od['ours_em'])} / {fmt(od['ours_f1'])} | {fmt(od['haystack_em'])} / "
        f"{fmt(od['haystack_f1'])} | {fmt(od['langchain_em'])} / {fmt(od['langchain_f1'])} |",
        f"| ask p50 / p95, ms | {fmt(ak['ours_p50_ms'], 0)} / {fmt(ak['ours_p95_ms'], 0)} | "
        f"{fmt(ak['haystack_p50_ms'], 0)} / {fmt(d['ask']['haystack_p95_ms'], 0)} | "
        f"{fmt(ak['langchain_p50_ms'], 0)} / {fmt(d['ask']['langchain_p95_ms'], 0)} |",
        f"| ask p50 vs rag-qa | 1.00x | {fmt(d['ask']['haystack_over_ours'], 2)}x | "
        f"{fmt(d['ask']['langchain_over_ours'], 2)}x |",
        f"| peak RSS while asking, MB | {fmt(r['memory']['ask_peak_rss_mb'], 0)} | "
        f"{fmt(d['memory']['haystack_peak_rss_mb'], 0)} | {fmt(d['memory']['langchain_peak_rss_mb'], 0)} |",
        "",
        f"**Reader** ({ak['questions']} questions, the passages our retriever returned): rag-qa reads them in "
        f"{fmt(d['ask']['ours_read_p50_ms'], 0)} ms p50, the classic HF question-answering pipeline called once "
        f"per passage (transformers 4.x, fp32) in {fmt(d['ask']['naive_loop_p50_ms'], 0)} ms "
        f"({fmt(d['ask']['ours_read_over_naive'], 2)}x). Hardware floor (tokens fed x encoder FLOPs / measured "
        f"{cfg['reader_precision']} matmul rate of {fmt(d['ask']['floor_rate_gflops'])} GFLOP/s): "
        f"{fmt(d['ask']['floor_p50_ms'], 0)} ms p50; ask p50 is {fmt(d['ask']['ours_ask_p50_over_floor'], 2)}x "
        f"the floor.",
        "",
        f"**Ingest** ({len(d['ingest'].get('files', []))} files, {ing['chunks']} chunks): "
        f"rag-qa {fmt(ing['ours_s'], 1)} s (FAISS + SQLite + BM25 on disk), "
        f"plain LangChain {fmt(ing['langchain_s'], 1)} s (FAISS in memory), unchanged re-ingest "
        f"{fmt(ing['reingest_unchanged_s'], 3)} s.",
        "",
        f"**OCR** ({r['ocr']['pages']} scanned page{'s' if r['ocr']['pages'] != 1 else ''} read as ingest reads "
        f"them, {r['ocr']['ocr_dpi']} DPI, {r['ocr']['tesseract']}, {r['ocr']['workers']} pages at once): "
        f"{fmt(r['ocr']['seconds_per_page'], 1)} s per page ({fmt(r['ocr']['pages_per_second'], 2)} pages/s; "
        f"{fmt(r['ocr']['cpu_seconds_per_page'], 1)} CPU seconds a page), "
        f"{fmt(100 * r['ocr']['word_accuracy'], 1)}% of the words right.",
        "",
        f"**Follow-ups** ({r['followup']['conversations']} two-turn conversations from "
        "`benchmarks/data/followups.json`, "
        f"open-domain over all articles of `{cfg['data_name']}`): F1 {fmt(r['followup']['both'])} with the "
        f"conversation, {fmt(r['followup']['without'])} without it, {fmt(r['followup']['written_out'])} for the "
        f"written-out questions; the condense step adds {fmt(r['followup']['condense_p50_ms'], 2)} ms p50.",
        "",
        f"**Retrieval** ({d['retrieval']['questions']} questions over all articles of `{cfg['data_name']}`):",
        "",
        "| mode | R@1 | R@5 | R@20 | MRR |",
        "|---|---|---|---|---|",
        *[f"| {mode} | {ret[mode]['recall@1']:.3f} | {ret[mode]['recall@5']:.3f} | {ret[mode]['recall@20']:.3f} | "
          f"{ret[mode]['mrr']:.3f} |" for mode in MODES],
        "",
        "Targets (from the issues):",
        "",
        *[f"- {'met' if ok else 'not measured' if ok is None else '**missed**'}: {name}"
          for name, ok in r["targets"].items()],
        "",
        f"![latency]({rel['latency']})",
        f"![quality]({rel['quality']})",
        "",
        f"Raw numbers: `{os.path.relpath(out, readme.parent)}`, "
        f"`{os.path.relpath(out.parent / ASK_RESULTS, readme.parent)}`, "
        f"`{os.path.relpath(out.parent / 'followup.json', readme.parent)}`.",
    ]
    return "\n".join(lines)


def rewrite_readme(readme: Path, block: str) -> None:
    """Replace what lies between the markers (appending a Results section with them if absent)."""
    text = readme.read_text(encoding="utf-8") if readme.exists() else ""
    if START in text and END in text and text.index(START) < text.index(END):
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        text = f"{head}{START}\n{block}\n{END}{tail}"
    else:
        text = f"{text.rstrip()}\n\n## Results\n\n{START}\n{block}\n{END}\n"
    readme.write_text(text, encoding="utf-8")


# ---------------------------------------------------------------------------- main
@dataclass
class Plan:
    """What one run measures, from the command line and its defaults."""

    data: Path
    articles: int
    questions: int
    out: Path
    readme: Path | None
    reader_dir: Path
    embedding_dir: str
    reader: str
    custom_reader: bool
    top_k: int
    smoke: bool
    quiet: bool
    retrieval_limit: int | None
    threads: int


@dataclass
class Stages:
    """Runs the measuring steps one after another, noting each one's seconds and the load average."""

    seconds: dict[str, float] = field(default_factory=dict)
    loads: dict[str, float] = field(default_factory=dict)

    def run(self, name: str, message: str, step: Callable[..., Any], *args: Any) -> Any:
        self.loads[name] = round(os.getloadavg()[0], 2)  # other jobs on the machine show up here
        log(message)
        started = time.perf_counter()
        result = step(*args)
        self.seconds[name] = time.perf_counter() - started
        return result


@dataclass
class Measured:
    """The raw outputs of the steps, before they are summarised."""

    corpus: list[dict]
    questions: list[dict]
    ingest: dict
    ours_scores: dict
    asked: dict
    baselines: dict[str, dict | None]
    retrieval: dict[str, dict]
    ocr: dict
    followup: dict


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=None,
                    help=f"SQuAD v1.1-format file (default ../{DEFAULT_DATA.relative_to(REPO.parent)}; "
                         "with --smoke the test fixture)")
    ap.add_argument("--articles", type=int, default=None, help="articles in the open-domain slice (default 6)")
    ap.add_argument("--questions", type=int, default=None, help="questions in the slice (default 200)")
    ap.add_argument("--retrieval-limit", type=int, default=None, help="only the first N questions for retrieval")
    ap.add_argument("--reader-dir", type=Path, default=None, help="reader weights (default: the shipped reader)")
    ap.add_argument("--top-k", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None,
                    help=f"results JSON; charts and {ASK_RESULTS} go beside it "
                         "(default benchmarks/results/run_all.json)")
    ap.add_argument("--readme", type=Path, default=None,
                    help="README whose results section is rewritten (default README.md; with --smoke: none)")
    ap.add_argument("--smoke", action="store_true",
                    help="a few questions on the test fixture; missing baseline venvs are reported as skipped")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    return ap.parse_args(argv)


class PlanError(Exception):
    """A run that cannot start (no data file, no weights): one line, exit status 2."""


def make_plan(args: argparse.Namespace) -> Plan:
    """The run's inputs, or :class:`PlanError` when the data or the models are missing."""
    import torch

    from rag_qa.models import ModelNotFoundError, resolve_model

    data = (args.data or (SMOKE_DATA if args.smoke else DEFAULT_DATA)).resolve()
    if not data.is_file():
        raise PlanError(f"no data file {data} (pass --data)")
    try:
        reader_dir = Path(resolve_model(str(args.reader_dir.resolve()) if args.reader_dir else "reader",
                                        kind="reader").path)
        embedding_dir = resolve_model("minilm").path
    except ModelNotFoundError as err:
        raise PlanError(f"{err} (pass --reader-dir DIR)") from None
    out = (args.out or (Path(tempfile.mkdtemp(prefix="bench-smoke-")) / "run_all.json" if args.smoke
                        else HERE / "results" / "run_all.json")).resolve()
    return Plan(
        data=data, articles=args.articles if args.articles is not None else (2 if args.smoke else 6),
        questions=args.questions if args.questions is not None else (4 if args.smoke else 200), out=out,
        readme=args.readme or (None if args.smoke else REPO / "README.md"), reader_dir=reader_dir,
        embedding_dir=embedding_dir, reader=f"extractive:{reader_dir}" if args.reader_dir else "extractive",
        custom_reader=args.reader_dir is not None, top_k=args.top_k, smoke=args.smoke, quiet=args.quiet,
        retrieval_limit=args.retrieval_limit, threads=torch.get_num_threads(),
    )


def open_domain_ours(plan: Plan, txt: Path, work: Path, questions: list[dict], gold: dict) -> tuple[Path, dict]:
    """Our index of the slice's articles and our open-domain scores over it."""
    from rag_qa.squad_metrics import squad_scores

    index = build_index(txt, work)
    return index, squad_scores(ours_open(index, questions, plan.reader), gold)


def ask_latency(plan: Plan, index: Path, work: Path, skipped: dict[str, str]) -> dict:
    """benchmarks/ask.py over our index and the slice's questions; its results go beside ours."""
    ask_out = plan.out.parent / ASK_RESULTS
    cmd = [sys.executable, str(HERE / "ask.py"), "--index", str(index), "--questions-file",
           str(work / "inputs" / "questions.json"), "--questions", "0", "--top-k", str(plan.top_k),
           "--out", str(ask_out)]
    cmd += ["--reader-dir", str(plan.reader_dir)] if plan.custom_reader else []
    cmd += ["--smoke"] if plan.smoke else []
    if "langchain" in skipped:
        cmd += ["--no-naive"]
    run(cmd, "benchmarks/ask.py")
    return json.loads(ask_out.read_text(encoding="utf-8"))


def run_baseline(plan: Plan, name: str, work: Path, gold: dict) -> dict:
    """One baseline runner in its venv, its predictions scored like ours."""
    from rag_qa.squad_metrics import squad_scores

    result = baseline(name, work / "inputs", plan.reader_dir, plan.embedding_dir, plan.top_k, plan.threads, work)
    result["scores"] = squad_scores(result["predictions"], gold)
    return result


def measure(plan: Plan, skipped: dict[str, str], stages: Stages) -> Measured:
    """Every measuring step, in a scratch folder that is removed afterwards."""
    work = Path(tempfile.mkdtemp(prefix="bench-work-"))
    try:
        corpus, questions, txt = make_slice(plan.data, plan.articles, plan.questions, work)
        gold = {q["id"]: q["answers"] for q in questions}
        log(f"slice: {len(corpus)} articles, {len(questions)} questions")
        ing = stages.run("ingest", "ingest benchmark (ours vs plain LangChain, then unchanged re-ingest)",
                         ingest_bench, txt, plan.smoke, work)
        ocr = stages.run("ocr", "OCR speed: benchmarks/ocr_speed.py (scanned pages through ingest's OCR)",
                         ocr_bench, plan.smoke, plan.out.parent, work)
        index, ours_scores = stages.run("open_domain_ours", "open-domain: ours",
                                        open_domain_ours, plan, txt, work, questions, gold)
        asked = stages.run("ask", "ask latency: benchmarks/ask.py (ours, naive pipeline loop, hardware floor)",
                           ask_latency, plan, index, work, skipped)
        base: dict[str, dict | None] = {}
        for name in RUNNERS:
            if name in skipped:
                log(f"{name}: skipped ({skipped[name]})")
                base[name] = None
                continue
            base[name] = stages.run(name, f"{name} baseline", run_baseline, plan, name, work, gold)
        ret = stages.run("retrieval", "retrieval: dense, bm25, hybrid",
                         retrieval, plan.data, plan.retrieval_limit, plan.quiet)
        follow = stages.run("followup", "follow-ups: benchmarks/followup.py (with, without the conversation)",
                            followup_bench, plan.data, plan.smoke, plan.out.parent, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Measured(corpus, questions, ing, ours_scores, asked, base, ret, ocr, follow)


def headline(m: Measured, load_start: float) -> dict[str, Any]:
    """The numbers the README table and the targets use."""
    ing, ours_ask, ours_scores = m.ingest, m.asked["ours"]["ask"], m.ours_scores
    b = _baseline_value(m)
    return {
        "machine": {**m.asked["machine"], "load_average_1m_at_start": round(load_start, 2),
                    "load_average_1m_at_end": round(os.getloadavg()[0], 2)},
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "ingest": {
            "chunks": ing["ours_first_ingest"]["chunks"],
            "ours_s": round(ing["ours_first_ingest"]["seconds"], 3),
            "langchain_s": round(ing["plain_langchain"]["seconds"], 3),
            "reingest_unchanged_s": round(ing["ours_unchanged_reingest"]["seconds"], 4),
        },
        "ocr": {k: m.ocr[k] for k in ("pages", "seconds_per_page", "pages_per_second", "cpu_seconds_per_page",
                                      "workers", "ocr_dpi", "word_accuracy", "tesseract")},
        "ask": {
            "questions": m.asked["questions"],
            "ours_p50_ms": ours_ask["p50_ms"],
            "ours_p95_ms": ours_ask["p95_ms"],
            "haystack_p50_ms": b("haystack", "p50_ms"),
            "langchain_p50_ms": b("langchain", "p50_ms"),
        },
        "open_domain": {
            "ours_em": round(ours_scores["exact_match"], 2),
            "ours_f1": round(ours_scores["f1"], 2),
            "haystack_em": b("haystack", "exact_match"),
            "haystack_f1": b("haystack", "f1"),
            "langchain_em": b("langchain", "exact_match"),
            "langchain_f1": b("langchain", "f1"),
        },
        "retrieval": {mode: {k: v for k, v in m.retrieval[mode].items() if k not in ("n", "seconds")}
                      for mode in MODES},
        "memory": {"ask_peak_rss_mb": m.asked["ours"]["peak_rss_mb"]},
        "followup": {"conversations": m.followup["followups"],
                     **{k: m.followup["scores"]["all"][k]["f1"] for k in ("both", "without", "written_out")},
                     "condense_p50_ms": m.followup["condense_ms"]["runnable"]["p50_ms"]},
    }


def _baseline_value(m: Measured) -> Callable[[str, str], Any]:
    def value(name: str, key: str) -> Any:
        res = m.baselines[name]
        if res is None:
            return None
        return round(res["scores"][key], 2) if key in ("exact_match", "f1") else res.get(key)

    return value


def details(plan: Plan, m: Measured, stages: Stages, skipped: dict[str, str]) -> dict[str, Any]:
    """Everything behind the headline numbers: configuration, versions, ratios, per-stage timing."""
    b, asked, ing, ret = _baseline_value(m), m.asked, m.ingest, m.retrieval
    ours_ask, floor = asked["ours"]["ask"], asked["floor"]
    naive = asked["naive_loop"].get("read", {})
    return {
        "config": {"data": str(plan.data), "data_name": plan.data.name, "articles": len(m.corpus),
                   "top_k": plan.top_k,
                   "reader_weights": str(plan.reader_dir.relative_to(REPO) if plan.reader_dir.is_relative_to(REPO)
                                         else plan.reader_dir),
                   "reader": plan.reader, "reader_precision": floor["precision"], "threads": plan.threads,
                   "haystack": m.baselines["haystack"] and m.baselines["haystack"].get("config"),
                   "langchain": m.baselines["langchain"] and m.baselines["langchain"].get("config"),
                   "versions": {n: m.baselines[n] and m.baselines[n].get("versions") for n in RUNNERS}},
        "ingest": {k: ing[k] for k in ("corpus", "files", "first_ingest_speed_vs_langchain",
                                       "first_ingest_cpu_vs_langchain", "unchanged_reingest_speedup",
                                       "plain_langchain", "ours_first_ingest", "ours_unchanged_reingest",
                                       "embedding_floor", "first_ingest_vs_floor", "printed")
                   if k in ing},
        "ask": {
            "ours_read_p50_ms": asked["ours"]["read"]["p50_ms"],
            "ours_read_p95_ms": asked["ours"]["read"]["p95_ms"],
            "naive_loop_p50_ms": naive.get("p50_ms"),
            "naive_loop_p95_ms": naive.get("p95_ms"),
            "ours_read_over_naive": ratio(asked["ours"]["read"]["p50_ms"], naive.get("p50_ms")),
            "floor_p50_ms": floor["floor_p50_ms"],
            "floor_rate_gflops": floor["rate_used_gflops"],
            "ours_ask_p50_over_floor": floor["ask_p50_over_floor"],
            "ours_read_p50_over_floor": floor["read_p50_over_floor"],
            "haystack_p95_ms": b("haystack", "p95_ms"),
            "langchain_p95_ms": b("langchain", "p95_ms"),
            "haystack_over_ours": ratio(b("haystack", "p50_ms"), ours_ask["p50_ms"]),
            "langchain_over_ours": ratio(b("langchain", "p50_ms"), ours_ask["p50_ms"]),
            "floor": floor,
        },
        "open_domain": {"questions": len(m.questions),
                        "index_seconds": {"haystack": b("haystack", "index_seconds"),
                                          "langchain": b("langchain", "index_seconds")},
                        "chunks": {"haystack": b("haystack", "chunks"), "langchain": b("langchain", "chunks")}},
        "retrieval": {"questions": ret["hybrid"]["n"], "seconds": {mode: ret[mode]["seconds"] for mode in MODES}},
        "memory": {"haystack_peak_rss_mb": b("haystack", "peak_rss_mb"),
                   "langchain_peak_rss_mb": b("langchain", "peak_rss_mb"),
                   "naive_loop_peak_rss_mb": asked["naive_loop"].get("peak_rss_mb")},
        "skipped": skipped,
        "stage_seconds": {k: round(v, 1) for k, v in stages.seconds.items()},
        "load_1m_at_stage_start": stages.loads,
    }


def summarise(plan: Plan, m: Measured, stages: Stages, skipped: dict[str, str], load_start: float,
              started: float) -> dict[str, Any]:
    """The results JSON: headline numbers, details, targets, and a warning when the machine was busy."""
    results = headline(m, load_start)
    results["details"] = details(plan, m, stages, skipped)
    results["targets"] = targets(results)
    results["smoke"] = plan.smoke
    load = max(load_start, os.getloadavg()[0], *stages.loads.values())
    if load > (os.cpu_count() or 1) + 1:  # the benchmark itself keeps about every core busy
        results["warning"] = (f"the machine was busy (1-minute load up to {load:.1f} on {os.cpu_count()} CPUs): "
                              "latencies and ingest times are inflated; re-run on a quiet machine")
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


def write_outputs(plan: Plan, results: dict[str, Any]) -> dict[str, Path]:
    """The results JSON, the charts beside it and (unless smoke) the README's results section."""
    plan.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    paths = charts(results, plan.out.parent)
    if plan.readme is not None:
        rewrite_readme(plan.readme, readme_block(results, paths, plan.readme, plan.out))
    return paths


def main(argv: list[str] | None = None) -> int:
    try:
        plan = make_plan(parse_args(argv))
    except PlanError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    started, stages = time.perf_counter(), Stages()
    load_start = os.getloadavg()[0]
    skipped = ensure_venvs(plan.smoke)
    plan.out.parent.mkdir(parents=True, exist_ok=True)
    measured = measure(plan, skipped, stages)
    results = summarise(plan, measured, stages, skipped, load_start, started)
    paths = write_outputs(plan, results)
    log(f"done in {results['seconds']:.0f}s: {plan.out}, {paths['latency'].name}, {paths['quality'].name}"
        + (f", {plan.readme}" if plan.readme else ""))
    print(json.dumps({k: results[k] for k in ("ingest", "ask", "open_domain", "retrieval", "memory", "targets")},
                     indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
