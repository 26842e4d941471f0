"""Write the baseline runners' inputs (corpus.json, questions.json) from SQuAD-format data.

    python benchmarks/baselines/make_inputs.py --squad ../shared/data/squad/dev-v1.1-public.json \
        --articles 2 --questions 10 --out-dir /tmp/bench-in

Deterministic: the first ``--articles`` articles in file order (after ``--skip-articles``), and
``--questions`` questions drawn from them with a seeded RNG (``--seed``), written back in file
order.  ``--questions 0`` (the default) keeps every question of those articles.

* ``corpus.json``    ``[{"id", "title", "text"}]`` -- one document per article, its paragraphs
  joined with a blank line, so every system has to chunk for itself.
* ``questions.json`` ``[{"id", "question", "answers": [str, ...], "title"}]``
* ``--squad-out FILE`` also writes the same slice (same articles, only the chosen questions) in
  SQuAD format, so ``python -m rag_qa eval open --data FILE`` runs on exactly the same corpus
  and questions as the baselines.

Standard library only: it runs under any of the benchmark virtualenvs.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
from pathlib import Path

PARAGRAPH_SEP = "\n\n"


def load_squad(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ValueError(f"{path} is not SQuAD format (expected an object with a 'data' list)")
    return data["data"]


def article_id(index: int, title: str) -> str:
    return f"{index:04d}-{title}"


def build(
    articles: list[dict], n_articles: int, n_questions: int, seed: int = 0, skip_articles: int = 0
) -> tuple[list[dict], list[dict], dict]:
    """Return (corpus, questions, squad_slice)."""
    chosen = articles[skip_articles : skip_articles + n_articles] if n_articles > 0 else articles[skip_articles:]
    corpus: list[dict] = []
    pool: list[dict] = []
    for offset, art in enumerate(chosen):
        title = art.get("title", "")
        doc_id = article_id(skip_articles + offset, title)
        corpus.append(
            {
                "id": doc_id,
                "title": title,
                "text": PARAGRAPH_SEP.join(p["context"] for p in art["paragraphs"]),
            }
        )
        for para in art["paragraphs"]:
            for qa in para["qas"]:
                if qa.get("is_impossible"):  # SQuAD v2 unanswerable: nothing to score against
                    continue
                answers = [a["text"] for a in qa.get("answers", [])]
                if answers:
                    pool.append({"id": qa["id"], "question": qa["question"], "answers": answers, "title": title})
    if 0 < n_questions < len(pool):
        keep = set(random.Random(seed).sample(range(len(pool)), n_questions))
        pool = [q for i, q in enumerate(pool) if i in keep]  # back in file order
    wanted = {q["id"] for q in pool}
    squad_slice = {
        "version": "1.1",
        "data": [
            {
                "title": art.get("title", ""),
                "paragraphs": [
                    {"context": p["context"], "qas": [qa for qa in p["qas"] if qa["id"] in wanted]}
                    for p in art["paragraphs"]
                ],
            }
            for art in chosen
        ],
    }
    return corpus, pool, squad_slice


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--squad", required=True, type=Path, help="SQuAD-format JSON (.json or .json.gz)")
    ap.add_argument("--articles", type=int, default=0, help="number of articles (0 = all)")
    ap.add_argument("--skip-articles", type=int, default=0, help="start after this many articles")
    ap.add_argument("--questions", type=int, default=0, help="number of questions (0 = all of those articles)")
    ap.add_argument("--seed", type=int, default=0, help="seed for choosing the questions")
    ap.add_argument("--out-dir", type=Path, default=Path("."), help="where corpus.json and questions.json go")
    ap.add_argument("--squad-out", type=Path, help="also write the slice in SQuAD format here")
    args = ap.parse_args(argv)
    if args.articles < 0 or args.questions < 0 or args.skip_articles < 0:
        print("error: --articles, --skip-articles and --questions must be >= 0", file=sys.stderr)
        return 2
    try:
        articles = load_squad(args.squad)
    except (OSError, ValueError) as exc:
        print(f"error: cannot read {args.squad}: {exc}", file=sys.stderr)
        return 2
    corpus, questions, squad_slice = build(articles, args.articles, args.questions, args.seed, args.skip_articles)
    if not questions:
        print("error: no answerable questions in the chosen articles", file=sys.stderr)
        return 2
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "corpus.json").write_text(json.dumps(corpus, ensure_ascii=False, indent=1), encoding="utf-8")
    (args.out_dir / "questions.json").write_text(json.dumps(questions, ensure_ascii=False, indent=1), encoding="utf-8")
    if args.squad_out:
        args.squad_out.parent.mkdir(parents=True, exist_ok=True)
        args.squad_out.write_text(json.dumps(squad_slice, ensure_ascii=False), encoding="utf-8")
    print(
        f"wrote {len(corpus)} documents and {len(questions)} questions to {args.out_dir}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
