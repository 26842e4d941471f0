"""Compare reader weights on the two numbers the training recipe is chosen by.

* **gold F1/EM**: a seeded sample of SQuAD dev questions, each read with its own (gold) paragraph;
* **open EM/F1**: a seeded sample of dev questions asked end to end over the dev articles as a
  corpus (hybrid retrieval, the passages retrieved once and shared by every model), the reader's
  best span taken whatever its confidence -- so the number measures how well the reader picks the
  right span *across* passages, not where a calibration happens to put the no-answer cut.

* **typed F1/EM**: the same gold questions asked the way people type them (lower case, no question
  mark, a typo, keyword style: ``rag_qa.train.augment.typed_question`` with a seed of its own), so each
  model's drop from ``gold`` is its cost of sloppy typing, and the ``typed`` augmentation arm is measured
  on what it is for.  The rewrites come from the generator that arm trains on (other draws of it): a real
  typed-query log would be the stricter test, and none ships.

* **table rows** (issue 24): held-out questions over generated tables
  (``benchmarks/data/table_questions_heldout.json``, made by ``python -m ingest.table_questions``
  from name pools no training table uses), read the two ways tables reach the reader:
  ``rows``, every row of the question's table as its own passage (a spreadsheet or CSV: one part,
  so one chunk, per row), and ``page``, the whole table as one passage of ``Header: value.`` lines
  (a table on a PDF or DOCX page).  Either way the reader must pick the right row.

Each model is read at every ``--top-k`` (5 by default; 8 and 10 tell whether reading more
passages pays for its time).  Every score keeps each question's EM and F1, so two models are compared
question by question (``--report``): arms of one ablation differ by about as much as one model's score
moves between two samples, and only the paired difference, with its bootstrap interval, tells them apart.

    python benchmarks/reader_ablation.py models/minilm-squad runs/ablation/A runs/ablation/B \
        [--gold 1000] [--open 500] [--top-k 5,8,10] [--tables FILE|none] [--out benchmarks/results/reader_ablation.json]
        [--splits gold,typed,open,tables]   # only these splits (e.g. one added later to scored rows)
        [--merge]   # add these models' rows to --out or update their splits there, keep the others'
    python benchmarks/reader_ablation.py --report benchmarks/results/reader_augment_ablation_lr2e-5.json \
        --against runs/augment/lr2e-5/base   # markdown: each model's scores and paired differences
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from rag_qa.env import set_offline_defaults

set_offline_defaults()

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "squad" / "dev-v1.1-public.json"
DEFAULT_TABLES = REPO / "benchmarks" / "data" / "table_questions_heldout.json"


def retrieved(data: str, n: int, depth: int, seed: int) -> list[tuple]:
    """(question, answers, [Passage...]) for ``n`` seeded dev questions, hybrid top-``depth``."""
    from rag_qa.config import Settings
    from rag_qa.eval.corpus import corpus_index, corpus_questions
    from rag_qa.retrieval import passages as to_passages
    from rag_qa.service import QAService

    settings = Settings()
    _, index = corpus_index(data, settings.embedding_model)
    questions = corpus_questions(data)
    questions = random.Random(seed).sample(questions, min(n, len(questions)))
    retriever = QAService(index, settings).retriever("hybrid", depth)
    docs = retriever.batch([q.question for q in questions])
    return [(q.question, q.answers, to_passages(d)) for q, d in zip(questions, docs, strict=True)]


def table_items(path: str | Path) -> dict[str, list[tuple]]:
    """(question, answers, passages) per way of reading a table (``rows``, ``page``) for every
    question of the table-question file ``path``."""
    from rag_qa.types import Passage

    data = json.loads(Path(path).read_text(encoding="utf-8"))
    out: dict[str, list[tuple]] = {"rows": [], "page": []}
    for table in data["data"]:
        rows = [p for p in table["paragraphs"] if p["shape"] == "row"]
        doc = table["document"]
        as_rows, at = [], 0
        for p in rows:
            at = doc.index(p["context"], at)
            as_rows.append(Passage(p["context"], table["source"], p["row"], at, at + len(p["context"]), 1.0,
                                   f"{table['title']}#{p['row']}", "row"))
        page = [Passage(doc, table["source"], 1, 0, len(doc), 1.0, table["title"])]
        for p in table["paragraphs"]:
            for q in p["qas"]:
                truths = [a["text"] for a in q["answers"]]
                out["rows"].append((q["question"], truths, as_rows))
                out["page"].append((q["question"], truths, page))
    return out


def gold_items(examples: list) -> list[tuple]:
    """(question, answers, [its own paragraph as the one Passage]) for each of ``examples``."""
    from rag_qa.types import Passage

    return [(e.question, [a["text"] for a in e.answers],
             [Passage(e.context, e.title, None, 0, len(e.context), 1.0, e.id)]) for e in examples]


def typed_items(examples: list, seed: int) -> list[tuple]:
    """:func:`gold_items` for ``examples`` with each question typed the way people type
    (:func:`~rag_qa.train.augment.typed_question`, seeded), in the same order as the ``gold`` split: a
    question the draw leaves unchanged (rare) is asked as written."""
    from rag_qa.train.augment import typed_question

    rng = random.Random(f"typed:{seed}")  # its own stream: the gold sample's draws stay as they were
    return gold_items([typed_question(e, rng) or e for e in examples])


def score(reader, items: list[tuple], k: int | None) -> dict:
    """EM/F1 of the reader's best span (no abstention) over ``items``, reading the top ``k`` passages."""
    from rag_qa.squad_metrics import exact_match, f1, max_over_truths, squad_scores

    preds, refs = {}, {}
    t0 = time.perf_counter()
    for i in range(0, len(items), 16):
        batch = items[i : i + 16]
        answers = reader.read_batch([q for q, _, _ in batch], [ps[:k] if k else ps for _, _, ps in batch])
        for j, (a, (_, truths, _)) in enumerate(zip(answers, batch, strict=True)):
            key = str(i + j)
            preds[key] = a.answer or (a.alternatives[0]["answer"] if a.alternatives else "")
            refs[key] = truths
    seconds = time.perf_counter() - t0
    out = {k_: round(v, 2) for k_, v in squad_scores(preds, refs).items()}
    out["ms_per_question"] = round(1000 * seconds / max(len(items), 1), 1)
    # each question's scores, in the items' order (the same seeded questions for every model): paired comparisons
    out["em_each"] = "".join(str(int(max_over_truths(exact_match, preds[q], refs[q]))) for q in refs)
    out["f1_each"] = [round(max_over_truths(f1, preds[q], refs[q]), 3) for q in refs]
    return out


def paired(row: dict, ref: dict, metric: str, resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """``row`` minus ``ref`` in ``metric`` (EM or F1, points) over the same questions, with a 95% bootstrap
    interval of the questions: (difference, low, high)."""
    import numpy as np

    def each(scores: dict) -> np.ndarray:
        return (np.array([int(c) for c in scores["em_each"]], dtype=float) if metric == "exact_match"
                else np.array(scores["f1_each"], dtype=float))

    diff = 100 * (each(row) - each(ref))  # (questions,)
    picks = np.random.default_rng(seed).integers(0, len(diff), size=(resamples, len(diff)))
    means = diff[picks].mean(axis=1)  # (resamples,)
    return float(diff.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


SPLITS = (("gold", "exact_match"), ("gold", "f1"), ("open@5", "exact_match"), ("tables_rows", "exact_match"),
          ("typed", "f1"))
KINDS = ("gold", "typed", "open", "tables")  # what --splits names


def report(path: Path, against: str | None) -> str:
    """Markdown: a row per model, its scores, and where both rows kept per-question scores, the paired
    difference from ``against`` with its 95% interval, e.g. ``+1.2 (-0.3, +2.6)``."""
    data = json.loads(path.read_text())
    rows = {r["model"]: r for r in data["results"]}
    ref = rows.get(against) if against else None
    if against and ref is None:
        raise SystemExit(f"error: no row for {against} in {path}")
    head = [f"{split} {'EM' if metric == 'exact_match' else 'F1'}" for split, metric in SPLITS]
    lines = ["| model | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for name, row in rows.items():
        cells = []
        for split, metric in SPLITS:
            scores, base = row.get(split), (ref or {}).get(split)
            if not scores:
                cells.append("-")
                continue
            cell = f"{scores[metric]:.1f}"
            if base and row is not ref and "em_each" in scores and "em_each" in base:
                d, lo, hi = paired(scores, base, metric)
                cell += f" ({d:+.1f} [{lo:+.1f}, {hi:+.1f}])"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", help="reader model directories")
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--gold", type=int, default=1000, help="questions read with their gold paragraph")
    ap.add_argument("--open", type=int, default=500, help="questions asked end to end")
    ap.add_argument("--top-k", default="5", help="comma-separated passage counts for the open setting")
    ap.add_argument("--tables", default=str(DEFAULT_TABLES),
                    help="held-out table questions (python -m ingest.table_questions); 'none' to skip")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--splits", default=",".join(KINDS),
                    help="which splits to score, comma-separated (with --merge, the others stay as scored)")
    ap.add_argument("--out", default=None, help="JSON file for the results (default: print only)")
    ap.add_argument("--merge", action="store_true",
                    help="keep --out's rows of other models (scored on the same questions) and replace or add "
                         "these models' rows: an ablation scored one arm at a time, across sessions and machines")
    ap.add_argument("--report", type=Path, help="print FILE's rows as a markdown table and score nothing")
    ap.add_argument("--against", help="with --report: the model every other is compared with, question by question")
    args = ap.parse_args()
    if args.report:
        print(report(args.report, args.against))
        return
    if not args.models:
        ap.error("name the reader model directories to score (or --report FILE)")

    from rag_qa.qa_data import load_examples
    from rag_qa.readers.extractive import ExtractiveConfig, ExtractiveReader

    splits = {s.strip() for s in args.splits.split(",") if s.strip()}
    if not splits or splits - set(KINDS):
        ap.error(f"--splits takes some of {', '.join(KINDS)}, not {args.splits!r}")
    ks = [int(k) for k in args.top_k.split(",")]
    examples, _ = load_examples(args.data)
    # the header's sizes are the samples' whatever is scored now: --merge compares them with the file's
    gold_sample = random.Random(args.seed).sample(examples, min(args.gold, len(examples)))
    gold = gold_items(gold_sample)
    typed = typed_items(gold_sample, args.seed) if "typed" in splits else []
    tables = table_items(args.tables) if args.tables.lower() != "none" else {}
    open_items = retrieved(args.data, args.open, max(ks), args.seed) if args.open and "open" in splits else []
    results = []
    for model in args.models:
        # the reader alone ranks (rank_weight 0): a model folder's calibration.json (the shipped one has 0.5,
        # the arms none) would otherwise rank each model's candidates by a different rule
        reader = ExtractiveReader(ExtractiveConfig(model=model, no_answer_threshold=0.0, rank_weight=0.0))
        row: dict = {"model": model}
        if gold and "gold" in splits:
            row["gold"] = score(reader, gold, None)
        if typed:
            row["typed"] = score(reader, typed, None)
        for k in ks if open_items else []:
            row[f"open@{k}"] = score(reader, open_items, k)
        for way, items in tables.items() if "tables" in splits else ():
            row[f"tables_{way}"] = score(reader, items, None)
        results.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        out = Path(args.out)
        header = {"gold_questions": len(gold), "open_questions": args.open and min(args.open, len(examples)),
                  "table_questions": len(tables.get("rows", [])), "tables": _tables_name(args.tables, tables),
                  "seed": args.seed}
        if args.merge:
            results = merged(out, header, results)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({**header, "results": results}, indent=2) + "\n")


def _tables_name(path: str, tables: dict) -> str | None:
    """The table questions' file, relative to the repository when it is in it (the same on every machine)."""
    if not tables:
        return None
    resolved = Path(path).resolve()
    return str(resolved.relative_to(REPO)) if resolved.is_relative_to(REPO) else path


def merged(out: Path, header: dict, rows: list[dict]) -> list[dict]:
    """``out``'s earlier rows, each model's scored splits replaced by ``rows``' (its other splits kept: a
    split added later is scored on its own), then the new models' rows; refuses a file scored on other
    questions (rows are comparable only on the same samples)."""
    if not out.is_file():
        return rows
    earlier = json.loads(out.read_text())
    mismatch = {k: (earlier.get(k), v) for k, v in header.items() if earlier.get(k) != v}
    if mismatch:
        raise SystemExit(f"error: {out} was scored on other questions ({mismatch}); pass another --out")
    new = {row["model"]: row for row in rows}
    kept = [{**row, **new.pop(row["model"], {})} for row in earlier["results"]]
    return kept + list(new.values())


if __name__ == "__main__":
    main()
