"""The ingest core both engines share (plan -> execute -> commit): the report comes from the commit step,
so the single-machine commit and the Ray one record the same outcomes the same way (file notes included),
and an executor is just something that yields one outcome per file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import DOCS

from ingest.commit import OneCommit, PieceCommit
from ingest.failures import FailureMemory
from ingest.outcome import FileOutcome, ReadDocument
from ingest.pipeline import ingest_paths
from ingest.plan import Plan
from ingest.report import IngestReport
from rag_qa.config import Settings
from rag_qa.store import open_store
from rag_qa.store.base import ChunkRow, Committed, DocumentRow, IndexInfo


class FakeWriter:
    """Records what a commit writes (both the one-commit and the in-pieces calls)."""

    path = Path("/index")

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.failures: dict[str, Any] | None = None

    def commit_changes(self, kept: Any, chunks: Any, vectors: np.ndarray, documents: Any, model: str, dimension: int,
                       chunking: Any = None) -> Committed:
        self.calls.append(("commit", (list(kept), [c.id for c in chunks], vectors.shape,
                                      [d.source for d in documents])))
        return Committed(2, len(documents) + len(kept), len(chunks))

    def replace_documents(self, removed: Any, chunks: Any, vectors: np.ndarray, documents: Any, model: str,
                          dimension: int, chunking: Any = None, *, staging: bool = False) -> Committed:
        self.calls.append(("replace", (sorted(removed), [c.id for c in chunks], vectors.shape,
                                       [d.source for d in documents])))
        return Committed(2, len(documents), len(chunks))

    def publish_staging(self) -> Committed:  # pragma: no cover - no rebuild here
        raise AssertionError

    def drop_staging(self) -> None:  # pragma: no cover - no rebuild here
        raise AssertionError

    def write_failures(self, data: dict[str, Any]) -> None:
        self.failures = data


def _row(source: str, start: int) -> ChunkRow:
    return ChunkRow(id=f"{source}@{start}", source=source, page=None, start=start, end=start + 4, text="text")


def _outcomes() -> list[FileOutcome]:
    mail = ReadDocument("/d/mail.eml", "eml", None, [_row("/d/mail.eml", 0)], notes=["1 attachment over the limit"],
                        failed=[("/d/mail.eml/x.pdf", "corrupt")], skipped=["/d/mail.eml/y.exe"])
    attachment = ReadDocument("/d/mail.eml/a.txt", "txt", None, [_row("/d/mail.eml/a.txt", 0)])
    scan = ReadDocument("/d/scan.pdf", "pdf", 2, [_row("/d/scan.pdf", 0), _row("/d/scan.pdf", 9)],
                        notes=["2 pages read with OCR"])
    vectors = np.eye(4, dtype="float32")
    return [  # in the order an executor might finish them, not the plan's
        FileOutcome(2, Path("/d/scan.pdf"), "s2", documents=[scan], vectors=vectors[:2]),
        FileOutcome(1, Path("/d/bad.pdf"), "s1", error="corrupt or unreadable PDF", remember=True),
        FileOutcome(0, Path("/d/mail.eml"), "s0", documents=[mail, attachment], vectors=vectors[2:]),
    ]


def _plan(settings: Settings) -> Plan:
    known = {"/d/mail.eml": DocumentRow("/d/mail.eml", "old", 0.0, 1, "eml", None, 1, "then"),
             "/d/mail.eml/gone.txt": DocumentRow("/d/mail.eml/gone.txt", "old", 0.0, 1, "txt", None, 1, "then"),
             "/d/kept.txt": DocumentRow("/d/kept.txt", "k", 0.0, 1, "txt", None, 1, "then")}

    class Previous:
        info = IndexInfo("minilm", 4, 1, 3)
        documents = known

        def close(self) -> None:
            pass

    return Plan(Path("/index"), "minilm", False, Previous(), known, FailureMemory(settings, {}),
                todo=[(Path("/d/mail.eml"), "s0"), (Path("/d/bad.pdf"), "s1"), (Path("/d/scan.pdf"), "s2")])


@pytest.mark.parametrize("kind", [OneCommit, PieceCommit])
def test_both_commits_record_the_same_report(kind: type) -> None:
    settings = Settings()
    writer, report, notes = FakeWriter(), IngestReport(index="/index"), []
    commit = kind(writer, _plan(settings), settings, report, lambda *a: None, notes.append)
    for outcome in _outcomes():
        commit.add(outcome)
    commit.finish()
    assert report.updated == ["/d/mail.eml"] and report.added == ["/d/mail.eml/a.txt", "/d/scan.pdf"]
    assert report.failed == [{"path": "/d/mail.eml/x.pdf", "error": "corrupt"},  # the plan's order
                             {"path": "/d/bad.pdf", "error": "corrupt or unreadable PDF"}]
    assert report.file_notes == [{"path": "/d/mail.eml", "note": "1 attachment over the limit"},
                                 {"path": "/d/scan.pdf", "note": "2 pages read with OCR"}]
    assert notes == ["/d/mail.eml: 1 attachment over the limit", "/d/scan.pdf: 2 pages read with OCR"]
    assert report.skipped == ["/d/mail.eml/y.exe"] and report.removed == ["/d/mail.eml/gone.txt"]
    assert report.embedded_chunks == 4
    assert writer.failures is not None and writer.failures["files"] == {
        "/d/bad.pdf": {"sha256": "s1", "error": "corrupt or unreadable PDF"}}
    ids = ["/d/mail.eml@0", "/d/mail.eml/a.txt@0", "/d/scan.pdf@0", "/d/scan.pdf@9"]  # the plan's order
    if kind is OneCommit:
        assert writer.calls == [("commit", (["/d/kept.txt"], ids, (4, 4),
                                            ["/d/mail.eml", "/d/mail.eml/a.txt", "/d/scan.pdf"]))]
    else:  # the mail's old version and its attachment gone from it go with the group that replaces it
        assert writer.calls == [("replace", (["/d/mail.eml", "/d/mail.eml/gone.txt"], ids, (4, 4),
                                             ["/d/mail.eml", "/d/mail.eml/a.txt", "/d/scan.pdf"]))]


class ReversedExecutor:
    """An executor that reads with the local one but hands the outcomes over last file first."""

    pieces = False

    def run(self, todo: list[tuple[Path, str]], settings: Settings, report: IngestReport, progress: Any,
            note: Any) -> Any:
        from ingest.local_executor import LocalExecutor

        yield from reversed(list(LocalExecutor().run(todo, settings, report, progress, note)))


def test_the_index_does_not_depend_on_the_order_outcomes_arrive_in(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("normans_latin1.txt", "code-of-conduct.md"):
        (folder / name).write_bytes((DOCS / name).read_bytes())
    one = ingest_paths([folder], tmp_path / "one", settings=Settings())
    two = ingest_paths([folder], tmp_path / "two", settings=Settings(), executor=ReversedExecutor())
    assert (two.added, two.chunks) == (one.added, one.chunks)
    with open_store(tmp_path / "one", Settings()) as a, open_store(tmp_path / "two", Settings()) as b:
        assert a.all_chunk_ids() == b.all_chunk_ids()
