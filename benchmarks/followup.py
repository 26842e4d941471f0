"""Follow-up questions in a chat (issue 23): F1 with the conversation, without it, and written out.

    .venv/bin/python benchmarks/followup.py [--data dev-v1.1-public.json] [--limit 0] [--out FILE]
    .venv/bin/python benchmarks/followup.py --smoke        # 12 follow-ups, results to a temp file

Over the open-domain index of every article of ``--data`` (:func:`rag_qa.eval.corpus.corpus_index`,
hybrid retrieval, top-5, the extractive reader), for each conversation of
``benchmarks/data/followups.json`` (``make_followups.py``):

1. turn 1 is asked as it is; **its own answer** (not the gold one) becomes the assistant's turn;
2. turn 2 is asked **with the conversation** by each condense candidate -- ``rewrite`` (the reader
   and the retriever get the resolved question), ``expand`` (the question as typed, the retriever
   also gets the previous turn's key terms), ``both`` (resolved question; retriever gets the key
   terms too: the default) -- **without it** (the follow-up alone), and **written out** (the
   original SQuAD question);
3. ``both`` again with the gold answer as the assistant's turn (a perfect first answer).

Also: the condense step's latency (the LCEL branch at the head of the chain, per follow-up) and
how the rewrite treats self-contained questions: the ``make bench`` open-domain slice (first 6
articles, 200 seeded questions), each asked after the question before it -- how many come out
changed, and EM/F1 asked that way vs alone (``make bench`` itself passes no history, so its
open-domain EM cannot move).  Writes ``benchmarks/results/followup.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from baselines.common import latency_stats
from baselines.make_inputs import build as make_slice
from baselines.make_inputs import load_squad

from rag_qa.env import set_offline_defaults

set_offline_defaults()

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "squad" / "dev-v1.1-public.json"
SMOKE_DATA = REPO / "tests" / "data" / "squad" / "dev-mini.json"
FOLLOWUPS = HERE / "data" / "followups.json"
CANDIDATES = {"rewrite": (True, False), "expand": (False, True), "both": (True, True)}
BATCH = 16


def ensure_index(data: Path) -> Path:
    """The cached corpus index of ``data``, built (if needed) in a child process."""
    code = ("import sys; from rag_qa.eval.corpus import corpus_index; "
            "print(corpus_index(sys.argv[1], progress=False)[1])")
    out = subprocess.run([sys.executable, "-c", code, str(data)], check=True, capture_output=True, text=True, cwd=REPO)
    return Path(out.stdout.strip().splitlines()[-1])


def ask_all(chain, inputs: list) -> list:
    """Answers for ``inputs`` (questions or {input, chat_history}) in batches."""
    out = []
    for i in range(0, len(inputs), BATCH):
        out.extend(chain.batch(inputs[i : i + BATCH]))
    return out


def scores(answers: list, gold: list[list[str]]) -> dict[str, float]:
    from rag_qa.squad_metrics import squad_scores

    preds = {str(i): a.answer for i, a in enumerate(answers)}
    s = squad_scores(preds, {str(i): g for i, g in enumerate(gold)})
    return {"em": round(s["exact_match"], 1), "f1": round(s["f1"], 1)}


def history(item: dict, answer: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": item["history"][0]["content"]}, {"role": "assistant", "content": answer}]


def followups(service, items: list[dict]) -> dict:
    """F1 of every way of asking turn 2, overall and per kind and scope."""
    from rag_qa.chain import build_chain, condense_question

    retriever, reader = service.retriever("hybrid", 5), service.reader("extractive")
    reader.warm_up()
    plain = build_chain(retriever, reader)
    first = ask_all(plain, [i["history"][0]["content"] for i in items])
    live = [history(i, a.answer) for i, a in zip(items, first, strict=True)]
    gold = [i["answers"] for i in items]
    runs: dict[str, list] = {
        "without": ask_all(plain, [i["question"] for i in items]),
        "written_out": ask_all(plain, [i["written_out"] for i in items]),
    }
    for name, (rewrite, expand) in CANDIDATES.items():
        chain = build_chain(retriever, reader, condense_question(rewrite, expand))
        runs[name] = ask_all(chain, [{"input": i["question"], "chat_history": h} for i, h in zip(items, live,
                                                                                               strict=True)])
    runs["both_gold_history"] = ask_all(build_chain(retriever, reader), [
        {"input": i["question"], "chat_history": i["history"]} for i in items])
    out: dict = {"all": {name: scores(answers, gold) for name, answers in runs.items()}}
    groups: dict[str, list[int]] = {}
    for n, item in enumerate(items):
        groups.setdefault(f"kind={item['kind']}", []).append(n)
        groups.setdefault(f"scope={item['scope']}", []).append(n)
    for group, idx in sorted(groups.items()):
        out[group] = {"n": len(idx), **{name: scores([runs[name][i] for i in idx], [gold[i] for i in idx])["f1"]
                                         for name in runs}}
    out["first_turn"] = scores(first, [[a] for a in (i["history"][1]["content"] for i in items)])
    out["examples"] = [{"history": live[n], "question": items[n]["question"],
                        "searched_for": runs["both"][n].searched_for, "answer": runs["both"][n].answer,
                        "gold": gold[n]} for n in range(min(5, len(items)))]
    # the rewrite candidate searches for the resolved question itself: how often it is the original
    out["rewrites_equal_written_out"] = sum(_same(a.searched_for or "", i["written_out"])
                                            for a, i in zip(runs["rewrite"], items, strict=True))
    return out


def _same(a: str, b: str) -> bool:
    def norm(s: str) -> str:
        return " ".join(s.lower().replace("the ", "").rstrip("?. ").split())

    return norm(a) == norm(b)


def condense_latency(items: list[dict], repeats: int = 5) -> dict:
    """Milliseconds the condense step adds per follow-up: the chain's head runnable, and the rules alone."""
    from rag_qa.chain import condense_question
    from rag_qa.condense import condense

    step = condense_question()
    inputs = [{"input": i["question"], "chat_history": i["history"]} for i in items]
    step.invoke(inputs[0])  # warm
    runnable_ms, rules_ms = [], []
    for _ in range(repeats):
        for x in inputs:
            t0 = time.perf_counter()
            step.invoke(x)
            runnable_ms.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            condense(x["input"], x["chat_history"])
            rules_ms.append((time.perf_counter() - t0) * 1000)
    return {"runnable": latency_stats(runnable_ms, 3), "rules_only": latency_stats(rules_ms, 3)}


def self_contained(service, data: Path, articles: int, n: int) -> dict:
    """The make-bench slice's questions, each asked after the one before it vs alone."""
    from rag_qa.chain import build_chain
    from rag_qa.condense import PRONOUN, condense

    _, questions, _ = make_slice(load_squad(data), articles, n)
    pairs = list(zip([None, *questions[:-1]], questions, strict=True))
    turns = [[] if prev is None else [{"role": "user", "content": prev["question"]},
                                      {"role": "assistant", "content": prev["answers"][0]}] for prev, _ in pairs]
    changed = [(q["question"], condense(q["question"], h).question) for (_, q), h in zip(pairs, turns, strict=True)]
    rewritten = [(a, b) for a, b in changed if a != b]
    no_pronoun = [a for a, _ in changed if not PRONOUN.search(a)]
    chain = build_chain(service.retriever("hybrid", 5), service.reader("extractive"))
    gold = [q["answers"] for q in questions]
    alone = ask_all(chain, [q["question"] for q in questions])
    after = ask_all(chain, [{"input": q["question"], "chat_history": h} for q, h in zip(questions, turns, strict=True)])
    return {"questions": len(questions), "rewritten": len(rewritten),
            "without_a_pronoun": len(no_pronoun),
            "without_a_pronoun_unchanged": sum(1 for a, b in changed if a == b and not PRONOUN.search(a)),
            "rewritten_examples": [{"question": a, "rewritten": b} for a, b in rewritten[:20]],
            "alone": scores(alone, gold), "after_previous_question": scores(after, gold)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=None,
                    help=f"SQuAD file whose articles are the corpus (default {DEFAULT_DATA})")
    ap.add_argument("--followups", type=Path, default=FOLLOWUPS)
    ap.add_argument("--limit", type=int, default=None, help="follow-ups asked (default all 198; 12 with --smoke)")
    ap.add_argument("--slice-articles", type=int, default=6, help="make-bench slice for the self-contained check")
    ap.add_argument("--slice-questions", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="results JSON (default benchmarks/results/followup.json)")
    ap.add_argument("--smoke", action="store_true", help="a few follow-ups, the test fixture's slice")
    args = ap.parse_args(argv)

    from rag_qa.config import Settings
    from rag_qa.service import QAService

    data = args.data or DEFAULT_DATA
    if not data.is_file():
        print(f"error: no data file {data} (pass --data)", file=sys.stderr)
        return 2
    items = json.loads(args.followups.read_text(encoding="utf-8"))["items"]
    limit = args.limit if args.limit is not None else (12 if args.smoke else 0)
    if 0 < limit < len(items):
        keep = set(random.Random(args.seed).sample(range(len(items)), limit))
        items = [it for n, it in enumerate(items) if n in keep]
    out = args.out or (Path(tempfile.gettempdir()) / "results_followup_smoke.json" if args.smoke
                       else HERE / "results" / "followup.json")
    started = time.perf_counter()
    service = QAService(ensure_index(data), Settings())
    result = {
        "data": data.name, "followups": len(items), "mode": "hybrid", "top_k": 5, "reader": "extractive",
        "scores": followups(service, items),
        "condense_ms": condense_latency(items),
        "self_contained": self_contained(service, SMOKE_DATA if args.smoke else data,
                                         2 if args.smoke else args.slice_articles,
                                         10 if args.smoke else args.slice_questions),
    }
    s = result["scores"]["all"]
    result["targets"] = {
        "with the conversation >= 0.85x written out (F1)": s["both"]["f1"] >= 0.85 * s["written_out"]["f1"],
        "condense p50 <= 20 ms": result["condense_ms"]["runnable"]["p50_ms"] <= 20,
        "make-bench questions without a pronoun unchanged": result["self_contained"]["without_a_pronoun"]
        == result["self_contained"]["without_a_pronoun_unchanged"],
    }
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["smoke"] = args.smoke
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("followups", "condense_ms", "targets")} |
                     {"f1": {k: v["f1"] for k, v in s.items()}}, indent=1))
    print(f"results: {out} ({result['seconds']:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
