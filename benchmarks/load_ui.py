"""Concurrent users against the running web app: N gradio_client users x M questions, then a soak.

    .venv/bin/python benchmarks/load_ui.py                       # 8 users x 20 questions, 3 rounds
    .venv/bin/python benchmarks/load_ui.py --users 2 --questions 3 --rounds 1 --out /tmp/x.json   # smoke
    .venv/bin/python benchmarks/load_ui.py --signed-in --greedy 4      # team mode (issue 15), see below

The app (``python -m ui``) runs in its own process over an index of ``examples/docs``, exactly as
a user starts it; each simulated user is a separate ``gradio_client.Client`` in its own thread
asking SQuAD dev questions about those documents (seeded sample, each user in a rotated order)
through the ``/ask`` API, back to back.  Every round is the full N x M load; the server's resident
memory is sampled throughout (``/proc/PID/status``), so a leak shows as RSS growing round after
round.  An error is any exception or a reply without the answer details.

Writes ``benchmarks/results/load_ui.json`` (``--out``): per-round p50/p95 latency, throughput,
errors, server RSS after each round and its peak.

``--signed-in`` runs the app with a users file: each simulated user signs in with its own account
(``gradio_client.Client(url, auth=...)``) and may read only its own index, built from its own copy
of the documents, so a reply citing a document outside the asking user's index is cross-talk. It
reports each user's p50 and the fairness ratio (slowest user's p50 / fastest user's p50). ``--greedy
K`` adds one more account that fires K requests at once, back to back: the per-user cap
(``RAGQA_USER_CONCURRENCY``) refuses its excess at once, and the others' latency shows whether it
starved them. Results go to ``benchmarks/results/load_ui_signed_in.json`` by default.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from baselines.common import latency_stats

from rag_qa.env import child_env

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

DOCS = REPO / "examples" / "docs"
DEFAULT_DATA = REPO.parent / "shared" / "data" / "squad" / "dev-v1.1-public.json"
FALLBACK_QUESTIONS = [  # when the SQuAD file is not there: questions the sample documents answer
    "Which NFL team represented the AFC at Super Bowl 50?", "In what country is Normandy located?",
    "Who developed packet switching?", "What is the atomic number of oxygen?",
    "What is the largest city in Poland?", "Where was Nikola Tesla born?",
]


def sample_questions(data: Path, n: int, seed: int = 0) -> list[str]:
    """``n`` SQuAD dev questions about the articles in examples/docs (seeded), or built-in ones."""
    if not data.is_file():
        return [FALLBACK_QUESTIONS[i % len(FALLBACK_QUESTIONS)] for i in range(n)]
    titles = {p.stem for p in DOCS.iterdir()}
    pool = [qa["question"] for article in json.loads(data.read_text(encoding="utf-8"))["data"]
            if article["title"] in titles for para in article["paragraphs"] for qa in para["qas"]]
    return random.Random(seed).sample(pool, min(n, len(pool)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` in MB (0 once it has gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Sampler(threading.Thread):
    """Samples a process's RSS every ``every`` seconds until stopped; keeps the peak."""

    def __init__(self, pid: int, every: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid, self.every, self.peak = pid, every, 0.0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            self._halt.wait(self.every)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def start_app(index: Path, port: int, log: Path, cwd: Path = REPO, **env: str) -> subprocess.Popen:
    """``python -m ui`` over ``index`` on 127.0.0.1:``port`` (``env``: extra variables), waited for until it answers.

    The app offers ``index`` and the folders in ``cwd/indexes`` (its catalogue's root).
    """
    proc = subprocess.Popen([sys.executable, "-m", "ui", "--index", str(index), "--port", str(port)],
                            cwd=cwd, env=child_env(**env), stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5):
                return proc
        except OSError:
            time.sleep(1)
    proc.kill()
    raise RuntimeError("the app did not come up within 300 s")


BUSY = "requests running"  # the per-user cap's refusal (ui.limits.UserSlots)


def user(url: str, index: Path, questions: list[str], results: list[dict],
         auth: tuple[str, str] | None = None) -> None:
    """One simulated user: its own client (signed in with ``auth``), questions back to back, each timed.

    Each result names the user and the sources the answer cited (to spot cross-talk); a refusal by
    the per-user cap is recorded as ``refused``, not as an error.
    """
    from gradio_client import Client

    try:
        # sign-in hashes the password (argon2): on a busy machine it takes longer than httpx's 5 s default
        client = Client(url, verbose=False, auth=auth, httpx_kwargs={"timeout": 300})
    except Exception as exc:  # noqa: BLE001 - a user who cannot connect or sign in fails every question
        results.extend({"ms": 0.0, "error": f"{type(exc).__name__}: {exc}", "question": q, "answer": None,
                        "user": auth[0] if auth else None, "sources": [], "refused": False} for q in questions)
        return
    for question in questions:
        started = time.perf_counter()
        answer, sources, refused = None, [], False
        try:
            _, details, _ = client.predict(question, [], "extractive", "hybrid", 5, str(index), api_name="/ask")
            ok = isinstance(details, dict) and "answer" in details
            refused = isinstance(details, dict) and BUSY in str(details.get("error", ""))
            answer = details["answer"] if ok else None
            sources = [c["source"] for c in details.get("citations", [])] if ok else []
            error = None if ok or refused else f"no answer details: {str(details)[:200]}"
        except Exception as exc:  # noqa: BLE001 - every failure counts, whatever it is
            error = f"{type(exc).__name__}: {exc}"
        results.append({"ms": 1000 * (time.perf_counter() - started), "error": error, "question": question,
                        "answer": answer, "user": auth[0] if auth else None, "sources": sources,
                        "refused": refused})


def _run_together(threads: list[threading.Thread]) -> float:
    """Start every user thread at once and wait for all; the wall time in seconds."""
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


def run_round(url: str, index: Path, questions: list[str], users: int, results: list[dict] | None = None) -> dict:
    """All users at once, each asking every question (rotated so they do not move in lockstep).

    Every reply is appended to ``results`` (question, answer, ms, error) when one is given.
    """
    results = [] if results is None else results
    threads = [threading.Thread(target=user, args=(url, index, questions[i:] + questions[:i], results))
               for i in range(users)]
    wall = _run_together(threads)
    stats = latency_stats([r["ms"] for r in results if r["error"] is None])
    errors = [r["error"] for r in results if r["error"]]
    return {
        "requests": len(results), "errors": len(errors), "first_errors": errors[:3],
        "p50_ms": stats.get("p50_ms"), "p95_ms": stats.get("p95_ms"),
        "throughput_qps": round(len(results) / wall, 2), "wall_s": round(wall, 1),
    }


def make_accounts(folder: Path, users: int, source: Path = DOCS) -> tuple[Path, list[tuple[str, str, Path]]]:
    """A users file in ``folder`` with ``users`` accounts, each a reader of its own index only.

    Each index (``folder/indexes/NAME``) is built from the account's own copy of ``source``
    (examples/docs), so its sources (file paths) are its own.  Returns the users file and (name,
    password, index) per account.
    """
    from ingest.pipeline import ingest_paths
    from ui.permissions import Role
    from ui.users_file import User, hash_password, save_users

    accounts, entries = [], {}
    for i in range(1, users + 1):
        name, password = f"user{i}", secrets.token_urlsafe(12)
        docs, index = folder / "docs" / name, folder / "indexes" / name
        shutil.copytree(source, docs)
        ingest_paths([docs], index)
        accounts.append((name, password, index))
        entries[name] = User(name, hash_password(password), {name: Role.READER})
    users_file = folder / "users.json"
    save_users(users_file, entries)
    return users_file, accounts


def run_signed_in_round(url: str, accounts: list[tuple[str, str, Path]], questions: list[str],
                        greedy: tuple[str, str, Path, int] | None = None, results: list[dict] | None = None) -> dict:
    """Every account asks every question (rotated), signed in as itself, against its own index.

    ``greedy`` = (name, password, index, K): one more account running K such users at once.
    Cross-talk is a reply citing a document that is not in the asking user's own index.
    """
    from rag_qa.config import Settings
    from rag_qa.store import open_store

    results = [] if results is None else results
    threads = [threading.Thread(target=user, args=(url, index, questions[i:] + questions[:i], results),
                                kwargs={"auth": (name, password)})
               for i, (name, password, index) in enumerate(accounts)]
    if greedy is not None:
        name, password, index, k = greedy
        threads += [threading.Thread(target=user, args=(url, index, questions, results),
                                     kwargs={"auth": (name, password)}) for _ in range(k)]
    wall = _run_together(threads)
    own = {name: index for name, _, index in accounts} | ({greedy[0]: greedy[2]} if greedy is not None else {})
    allowed = {name: {d.source for d in open_store(index, Settings()).documents()} for name, index in own.items()}
    crosstalk = [r for r in results if any(s not in allowed[r["user"]] for s in r["sources"])]
    fair_names = [name for name, _, _ in accounts]
    per_user = {name: latency_stats([r["ms"] for r in results if r["user"] == name and r["error"] is None
                                     and not r["refused"]]).get("p50_ms") for name in fair_names}
    p50s = [v for v in per_user.values() if v]
    errors = [r["error"] for r in results if r["error"]]
    normal = [r["ms"] for r in results if r["user"] in fair_names and r["error"] is None and not r["refused"]]
    stats = latency_stats(normal)
    greedy_results = [r for r in results if greedy is not None and r["user"] == greedy[0]]
    return {
        "requests": len(results), "errors": len(errors), "first_errors": errors[:3],
        "crosstalk": len(crosstalk), "refused_normal_users": sum(r["refused"] for r in results
                                                                 if r["user"] in fair_names),
        "p50_ms": stats.get("p50_ms"), "p95_ms": stats.get("p95_ms"), "per_user_p50_ms": per_user,
        "fairness_max_over_min_p50": round(max(p50s) / min(p50s), 2) if p50s else None,
        "greedy": None if greedy is None else {
            "user": greedy[0], "parallel": greedy[3], "requests": len(greedy_results),
            "refused": sum(r["refused"] for r in greedy_results),
            "answered": sum(r["error"] is None and not r["refused"] for r in greedy_results)},
        "throughput_qps": round(len(results) / wall, 2), "wall_s": round(wall, 1),
    }


def signed_in(args: argparse.Namespace, questions: list[str]) -> dict:
    """The ``--signed-in`` benchmark: its own app with a users file, one account and index per user."""
    with tempfile.TemporaryDirectory(prefix="rag-qa-load-team-") as tmp:
        folder = Path(tmp)
        users_file, accounts = make_accounts(folder, args.users + (1 if args.greedy else 0), args.docs)
        greedy = (*accounts.pop(), args.greedy) if args.greedy else None
        port = free_port()
        # run in `folder`, so that every account's index (folder/indexes/NAME) is on offer, not only the first;
        # the settings file stays the one a run from the repository reads
        proc = start_app(accounts[0][2], port, folder / "app.log", cwd=folder, RAGQA_USERS_FILE=str(users_file),
                         RAGQA_SIGNIN_LOG=str(folder / "sign-ins.jsonl"),
                         RAGQA_CONFIG=os.environ.get("RAGQA_CONFIG", str(REPO / "rag-qa.toml")))
        try:
            url = f"http://127.0.0.1:{port}/"
            run_signed_in_round(url, accounts[:1], questions[:1])  # warm-up: models load on the first question
            rounds = []
            for number in range(1, args.rounds + 1):
                result = run_signed_in_round(url, accounts, questions, greedy)
                rounds.append(result)
                print(f"round {number}: {json.dumps(result)}", file=sys.stderr)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return {
        "mode": "signed-in", "users": args.users, "questions_per_user": len(questions), "greedy_parallel": args.greedy,
        "rounds": rounds, "requests": sum(r["requests"] for r in rounds), "errors": sum(r["errors"] for r in rounds),
        "crosstalk": sum(r["crosstalk"] for r in rounds),
        "fairness_max_over_min_p50": max(r["fairness_max_over_min_p50"] or 0 for r in rounds),
        "cpu_count": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="repeat the full load (soak)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--docs", type=Path, default=DOCS,
                        help="with --signed-in: the documents each account's index is built from (default "
                             "examples/docs)")
    parser.add_argument("--out", type=Path, default=None,
                        help="results file (default benchmarks/results/load_ui.json, or load_ui_signed_in.json)")
    parser.add_argument("--signed-in", action="store_true",
                        help="sign-in on: each user its own account and index (cross-talk and fairness)")
    parser.add_argument("--greedy", type=int, default=0, metavar="K",
                        help="with --signed-in: one more user firing K requests at once")
    args = parser.parse_args(argv)

    from ingest.pipeline import ingest_paths

    questions = sample_questions(args.data, args.questions)
    if args.signed_in:
        summary = signed_in(args, questions)
        out = args.out or HERE / "results" / "load_ui_signed_in.json"
        out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        print(json.dumps(summary))
        return 0 if summary["errors"] == 0 and summary["crosstalk"] == 0 else 1
    args.out = args.out or HERE / "results" / "load_ui.json"
    with tempfile.TemporaryDirectory(prefix="rag-qa-load-") as tmp:
        index = Path(tmp) / "index"
        ingest_paths([DOCS], index)
        port = free_port()
        proc = start_app(index, port, Path(tmp) / "app.log")
        sampler = Sampler(proc.pid)
        sampler.start()
        try:
            url = f"http://127.0.0.1:{port}/"
            rss_idle = rss_mb(proc.pid)
            run_round(url, index, questions[:1], 1)  # warm-up: models load on the first question
            rss_warm = rss_mb(proc.pid)
            rounds = []
            for number in range(1, args.rounds + 1):
                result = run_round(url, index, questions, args.users)
                result["rss_after_mb"] = round(rss_mb(proc.pid), 1)
                rounds.append(result)
                print(f"round {number}: {json.dumps(result)}", file=sys.stderr)
        finally:
            proc.terminate()  # first: whatever else fails, the app must not outlive the benchmark
            proc.wait(timeout=30)
            sampler.stop()
    summary = {
        "users": args.users, "questions_per_user": len(questions), "rounds": rounds,
        "requests": sum(r["requests"] for r in rounds), "errors": sum(r["errors"] for r in rounds),
        "p50_ms": rounds[0]["p50_ms"], "p95_ms": rounds[0]["p95_ms"],
        "server_rss_idle_mb": round(rss_idle, 1), "server_rss_warm_mb": round(rss_warm, 1),
        "server_rss_peak_mb": round(sampler.peak, 1),
        "rss_growth_first_to_last_round_mb": round(rounds[-1]["rss_after_mb"] - rounds[0]["rss_after_mb"], 1),
        "cpu_count": os.cpu_count(),
    }
    args.out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(summary))
    return 0 if summary["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
