"""Crashes and concurrency (issue #9): ``kill -9`` at random moments of ``python -m ingest`` never
costs the previous version a chunk, leftovers are cleaned up with a message, and a second ingest
on the same index fails clearly on the lock instead of corrupting it."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO

from rag_qa.store.faiss.layout import TMP_PREFIX, current_version, versions_dir
from rag_qa.store.faiss.reader import FaissStore

EXAMPLES = REPO / "examples" / "docs"
#: three files of three types, about 70 chunks: long enough to kill inside each phase, short enough
#: that the two runs that embed them all (killed while writing, and the last one) stay cheap
CRASH_DOCS = ("Black_Death.html", "Southern_California.pdf", "code-of-conduct.md")
CLEANUP_MESSAGES = ("left by an interrupted ingest", "never switched in")


class Ingest:
    """``python -m ingest`` in the background, with the time each phase line appeared on stderr."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "ingest", *args], cwd=REPO,
                                     env=dict(os.environ, HF_HUB_OFFLINE="1", **(env or {})),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.started = time.monotonic()
        self.lines: list[str] = []
        self.seen: dict[str, threading.Event] = {p: threading.Event() for p in ("reading", "embedding", "writing")}
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            phase = line.split(" ", 1)[0]
            if phase in self.seen:
                self.seen[phase].set()

    def wait(self, timeout: float = 240) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)

    def kill(self) -> bool:
        """SIGKILL it; False when it had already finished."""
        if self.proc.poll() is not None:
            return False
        self.proc.send_signal(signal.SIGKILL)
        self.wait(30)
        return self.proc.returncode == -signal.SIGKILL


def _leftovers(index: Path) -> list[str]:
    """What a killed writer left: temp version folders, or versions newer than CURRENT."""
    root, live = versions_dir(index), current_version(index)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir()
                  if p.name.startswith(TMP_PREFIX) or (p.name.isdigit() and live and int(p.name) > int(live)))


def _state(index: Path) -> tuple[int, set[str], set[str]]:
    """(version, chunk ids, document names) of the live version; opening it is itself the check."""
    with FaissStore.open(index) as store:
        return store.version, set(store.all_chunk_ids()), {Path(d.source).name for d in store.documents()}


def _parser_workers_of(pid: int) -> list[int]:
    """Pids of ``ingest.worker`` processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"ingest.worker" in cmdline and f"\nPPid:\t{pid}\n" in status:
            found.append(int(entry.name))
    return found


def _gone(pid: int, timeout: float = 10) -> bool:
    """True once ``pid`` has exited (a zombie counts: it runs nothing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/status").read_text().split("State:\t", 1)[1][:1]
        except (OSError, IndexError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc to find the parser worker")
def test_kill_9_at_random_moments_never_loses_the_previous_version(index_copy: Path, tmp_path: Path) -> None:
    def fresh_folder(i: int) -> Path:
        # new paths each round: a run that finished before its kill leaves the next one work to do
        folder = tmp_path / f"more{i}"
        folder.mkdir()
        for name in CRASH_DOCS:
            shutil.copy2(EXAMPLES / name, folder / name)
        return folder

    rng = random.Random(20260509)
    # (phase to wait for, then a random delay): before the model loads, while parsing, while
    # embedding, while writing the new version; "start" counts from the process start
    plan = [("start", rng.uniform(0.3, 2.5)), ("reading", rng.uniform(0.0, 0.4)),
            ("embedding", rng.uniform(0.2, 3.0)), ("writing", rng.uniform(0.0, 0.1))]
    version, ids, docs = _state(index_copy)
    original_ids = set(ids)
    killed_in: list[str] = []
    for i, (phase, delay) in enumerate(plan):
        leftovers = _leftovers(index_copy)
        folder = fresh_folder(i)
        run = Ingest(str(folder), "--index", str(index_copy))
        if phase != "start":
            assert run.seen[phase].wait(timeout=180), f"never reached {phase}: {run.stderr}"
        time.sleep(max(0.0, delay - (time.monotonic() - run.started)) if phase == "start" else delay)
        workers = _parser_workers_of(run.proc.pid)
        if run.kill():
            killed_in.append(phase)
            assert all(_gone(w) for w in workers), "the parser worker outlived the killed ingest"
        else:
            assert run.proc.returncode == 0, run.stderr
        if leftovers:  # this run started on a dead writer's mess: it said it removed it, or was killed first
            said = any(m in run.stderr for m in CLEANUP_MESSAGES)
            assert said or run.proc.returncode == -signal.SIGKILL, (leftovers, run.stderr)
        new_version, new_ids, new_docs = _state(index_copy)  # opens: never a half-written version
        assert ids <= new_ids, f"killed in {phase}: chunks of the previous version lost"
        if new_version == version:
            assert (new_ids, new_docs) == (ids, docs)
        else:  # the kill came after the switch: the new version is complete
            assert new_version > version and set(CRASH_DOCS) <= new_docs
        version, ids, docs = new_version, new_ids, new_docs
    assert len(killed_in) >= 2, f"too few kills landed (a run finished first): {killed_in}"

    leftovers = _leftovers(index_copy)
    final = Ingest(str(folder), "--index", str(index_copy))
    assert final.wait() == 0, final.stderr
    for name in leftovers:
        assert any(name in line and any(m in line for m in CLEANUP_MESSAGES) for line in final.lines), final.stderr
    assert _leftovers(index_copy) == []
    _, final_ids, final_docs = _state(index_copy)
    assert original_ids <= final_ids and set(CRASH_DOCS) <= final_docs


def test_two_ingests_on_one_index_the_second_fails_clearly_on_the_lock(index_copy: Path, tmp_path: Path) -> None:
    folder = tmp_path / "more"
    folder.mkdir()
    shutil.copy2(EXAMPLES / "code-of-conduct.md", folder / "code-of-conduct.md")
    _, ids_before, _ = _state(index_copy)
    first = Ingest(str(folder), "--index", str(index_copy))
    try:
        assert first.seen["reading"].wait(timeout=180), first.stderr  # it holds the write lock now
        first.proc.send_signal(signal.SIGSTOP)  # and keeps holding it, however fast this machine is
        started = time.monotonic()
        second = Ingest(str(folder), "--index", str(index_copy), env={"RAGQA_LOCK_TIMEOUT_S": "1.5"})
        code = second.wait(timeout=120)
        waited = time.monotonic() - started
    finally:
        first.proc.send_signal(signal.SIGCONT)
    assert code == 1, second.stderr
    assert waited >= 1.5
    errors = [line for line in second.lines if line.startswith("ingest: error:")]
    assert len(errors) == 1 and "is locked by another writer (waited 1.5s)" in errors[0], second.stderr
    assert "Traceback" not in second.stderr
    assert first.wait() == 0, first.stderr  # the first one carries on and finishes
    _, ids_after, docs_after = _state(index_copy)
    assert ids_before < ids_after and "code-of-conduct.md" in docs_after
