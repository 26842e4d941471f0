"""Incremental ingest: unchanged files cost no embedding, changed ones are re-embedded, gone ones removed.

Tests taking ``backend_settings`` run against both stores (FAISS folders and pgvector).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import BAD, DOCS

import ingest.local_executor as local_executor
from ingest.errors import IngestUsageError
from ingest.pipeline import ingest_paths, remove_sources
from rag_qa.config import Settings
from rag_qa.models import resolve_model
from rag_qa.store import EmbeddingMismatchError, open_store


def _no_embedding(settings: Settings):
    raise AssertionError("the embedding model was asked for although nothing needed embedding")


def _chunk_ids_by_source(index: Path, settings: Settings) -> dict[str, set[str]]:
    with open_store(index, settings) as store:
        out: dict[str, set[str]] = {}
        for p in store.get_passages(store.all_chunk_ids()):
            out.setdefault(Path(p.source).name, set()).add(p.chunk_id)
        return out


def test_add_unchanged_update_remove(folder: Path, fresh_index: Path, backend_settings: Settings,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    index, settings = fresh_index, backend_settings
    first = ingest_paths([folder], index, settings=settings)
    assert (len(first.added), first.failed, first.documents) == (3, [], 3)
    assert first.embedded_chunks == first.chunks > 0
    ids_before = _chunk_ids_by_source(index, settings)

    # unchanged: no embedding (the model is not even asked for), no new version
    with monkeypatch.context() as m:
        m.setattr(local_executor, "make_embeddings", _no_embedding)
        again = ingest_paths([folder], index, settings=settings)
    assert (len(again.unchanged), len(again.added), again.version) == (3, 0, first.version)
    assert again.chunks == first.chunks

    # one file changes: only its chunks are embedded; the others keep their ids
    md = folder / "code-of-conduct.md"
    md.write_text(md.read_text(encoding="utf-8") + "\n\nThe quokka clause: every maintainer feeds the quokka.\n",
                  encoding="utf-8")
    changed = ingest_paths([folder], index, settings=settings)
    assert ([Path(s).name for s in changed.updated], len(changed.unchanged)) == (["code-of-conduct.md"], 2)
    ids_after = _chunk_ids_by_source(index, settings)
    assert ids_after["normans_latin1.txt"] == ids_before["normans_latin1.txt"]
    assert changed.embedded_chunks == len(ids_after["code-of-conduct.md"])
    with open_store(index, settings) as store:
        assert store.version == first.version + 1
        assert store.search_bm25("quokka", 1)[0].source == str(md.resolve())

    # a file disappears from the folder: it leaves the index, without embedding anything
    (folder / "oxygen.html").unlink()
    with monkeypatch.context() as m:
        m.setattr(local_executor, "make_embeddings", _no_embedding)
        gone = ingest_paths([folder], index, settings=settings)
        assert [Path(s).name for s in gone.removed] == ["oxygen.html"]
        assert gone.documents == 2
        # explicit --remove
        removed = remove_sources([folder / "normans_latin1.txt"], index, settings=settings)
    assert [Path(s).name for s in removed.removed] == ["normans_latin1.txt"]
    with open_store(index, settings) as store:
        assert [Path(d.source).name for d in store.documents()] == ["code-of-conduct.md"]
        assert store.chunk_count == len(ids_after["code-of-conduct.md"])


def test_only_files_under_the_given_paths_are_removed(folder: Path, tmp_path: Path, fresh_index: Path,
                                                       backend_settings: Settings) -> None:
    index, settings = fresh_index, backend_settings
    other = tmp_path / "other"
    other.mkdir()
    shutil.move(folder / "oxygen.html", other / "oxygen.html")
    ingest_paths([folder, other], index, settings=settings)
    report = ingest_paths([folder], index, settings=settings)  # `other` not given: its file stays
    assert report.removed == [] and report.documents == 3
    single = ingest_paths([other / "oxygen.html"], index, settings=settings)  # a file, not a folder
    assert single.removed == [] and len(single.unchanged) == 1


def test_a_folder_that_cannot_be_listed_keeps_its_documents(folder: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """An unreadable sub-folder (permissions, a share that went away) is reported, not read as empty: the
    documents under it stay in the index.  The OS error is injected: tests may run as root, who lists all."""
    import os

    index, settings = tmp_path / "index", Settings(store="faiss")
    private = folder / "private"
    private.mkdir()
    shutil.move(folder / "oxygen.html", private / "oxygen.html")
    assert ingest_paths([folder], index, settings=settings).documents == 3
    listing = os.scandir

    def refuse_private(path: str | os.PathLike = ".") -> Any:
        if Path(path) == private.resolve():
            raise PermissionError(13, "Permission denied", str(path))
        return listing(path)

    monkeypatch.setattr(os, "scandir", refuse_private)
    report = ingest_paths([folder], index, settings=settings)
    assert report.removed == [] and report.documents == 3 and len(report.unchanged) == 2
    assert report.failed == [{"path": str(private.resolve()), "error": "cannot list the folder: Permission denied"}]
    monkeypatch.undo()
    (private / "oxygen.html").unlink()  # listed again, and really gone: now it goes
    assert [Path(s).name for s in ingest_paths([folder], index, settings=settings).removed] == ["oxygen.html"]


def test_rebuild_starts_fresh(folder: Path, fresh_index: Path, backend_settings: Settings) -> None:
    index, settings = fresh_index, backend_settings
    first = ingest_paths([folder], index, settings=settings)
    report = ingest_paths([folder / "oxygen.html"], index, rebuild=True, settings=settings)
    assert len(report.added) == 1 and report.documents == 1 and report.version == first.version + 1
    with open_store(index, settings) as store:
        assert [Path(d.source).name for d in store.documents()] == ["oxygen.html"]


def test_a_rebuild_repairs_an_index_whose_live_version_cannot_be_read(folder: Path, tmp_path: Path) -> None:
    """An unreadable manifest says "rebuild it with --rebuild"; the rebuild then failed on the same manifest."""
    import json

    from rag_qa.store import IndexCorruptError

    index, settings = tmp_path / "index", Settings(store="faiss")
    ingest_paths([folder], index, settings=settings)
    manifest = next((index / "versions").glob("*/manifest.json"))
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "format_version": 99}))
    with pytest.raises(IndexCorruptError, match="rebuild it with"):
        ingest_paths([folder], index, settings=settings)
    notes: list[str] = []
    report = ingest_paths([folder], index, rebuild=True, settings=settings, log=notes.append)
    assert len(report.added) == 3 and any("cannot be read; --rebuild writes" in n for n in notes)
    with open_store(index, settings) as store:
        assert len(store.documents()) == 3


def test_a_rebuild_that_reads_nothing_leaves_the_index_as_it_was(folder: Path, tmp_path: Path, fresh_index: Path,
                                                                  backend_settings: Settings) -> None:
    index, settings = fresh_index, backend_settings
    first = ingest_paths([folder], index, settings=settings)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("corrupt.pdf", "not_a_zip.docx"):
        shutil.copy(BAD / name, broken / name)
    with pytest.raises(IngestUsageError, match=r"--rebuild read none of its files \(2 failed, e\.g\. .*corrupt"):
        ingest_paths([broken], index, rebuild=True, settings=settings)
    with open_store(index, settings) as store:
        assert len(store.documents()) == first.documents == 3
    again = ingest_paths([folder], index, settings=settings)  # the live version is the first run's
    assert len(again.unchanged) == 3 and again.version == first.version


def test_bad_files_are_reported_while_good_ones_go_in(folder: Path, fresh_index: Path,
                                                      backend_settings: Settings) -> None:
    for bad in BAD.iterdir():
        shutil.copy(bad, folder / bad.name)
    report = ingest_paths([folder], fresh_index, settings=backend_settings)
    assert len(report.added) == 3 and report.exit_code == 3
    reasons = {Path(f["path"]).name: f["error"] for f in report.failed}
    assert set(reasons) == {p.name for p in BAD.iterdir()}
    assert all(reason and "\n" not in reason for reason in reasons.values())
    with open_store(fresh_index, backend_settings) as store:
        assert len(store.documents()) == 3


def test_extending_with_another_model_is_refused(folder: Path, built_store: tuple[Path, Settings],
                                                 tmp_path: Path) -> None:
    index, settings = built_store
    if settings.store == "faiss":  # a private copy; the pgvector one is left alone by a refused ingest
        shutil.copytree(index, tmp_path / "index")
        index = tmp_path / "index"
    other = settings.model_copy(update={"embedding_model": resolve_model("minilm").path})  # another model id
    with pytest.raises(EmbeddingMismatchError, match="built with embedding model 'minilm'.*--rebuild"):
        ingest_paths([folder], index, settings=other)
    with open_store(index, settings) as store:
        assert len(store.documents()) == 5


def test_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(IngestUsageError, match="path does not exist"):
        ingest_paths([tmp_path / "missing"], tmp_path / "index")
    with pytest.raises(IngestUsageError, match="nothing to do"):
        ingest_paths([], tmp_path / "index")
    assert not (tmp_path / "index").exists()


def _no_parsing(*args, **kwargs):
    raise AssertionError("a parser worker or the tokenizer was started although no file needed reading")


def test_an_unchanged_unreadable_file_is_reported_without_being_parsed_again(
        folder: Path, fresh_index: Path, backend_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    index, settings = fresh_index, backend_settings
    for name in ("corrupt.pdf", "empty.pdf", "empty.html"):  # the two empty files share a sha256
        shutil.copy(BAD / name, folder / name)
    first = ingest_paths([folder], index, settings=settings)
    assert sorted(Path(f["path"]).name for f in first.failed) == ["corrupt.pdf", "empty.html", "empty.pdf"]

    # nothing changed: no worker, no tokenizer, no embedding model; the same one-line errors
    with monkeypatch.context() as m:
        m.setattr(local_executor, "ParserWorker", _no_parsing)
        m.setattr(local_executor, "make_embeddings", _no_embedding)
        again = ingest_paths([folder], index, settings=settings)
    assert sorted(again.failed, key=str) == sorted(first.failed, key=str)
    assert (len(again.unchanged), again.version, again.exit_code) == (3, first.version, 3)

    # the file changes: it is read again (now it is good); other parse limits read every file again
    shutil.copy(DOCS / "packet_switching_2p.pdf", folder / "corrupt.pdf")
    fixed = ingest_paths([folder], index, settings=settings)
    assert [Path(s).name for s in fixed.added] == ["corrupt.pdf"] and len(fixed.failed) == 2
    with monkeypatch.context() as m:
        m.setattr(local_executor, "ParserWorker", _no_parsing)
        with pytest.raises(AssertionError, match="parser worker"):
            ingest_paths([folder], index, settings=settings.model_copy(update={"max_file_mb": 49.0}))
    rebuilt = ingest_paths([folder], index, rebuild=True, settings=settings)
    assert len(rebuilt.failed) == 2 and len(rebuilt.added) == 4


def test_a_file_that_failed_for_want_of_tesseract_is_read_once_it_is_installed(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A picture that needs OCR fails while Tesseract is missing, in one line saying what to install; that is
    not the file's fault, so it is not remembered: after the install the next ingest reads it (a remembered
    failure was reported again, unparsed, until the file changed or --rebuild)."""
    import os

    from formats import make_png

    docs = tmp_path / "docs"
    docs.mkdir()
    make_png(docs / "scan.png")
    index, settings = tmp_path / "index", Settings(store="faiss")
    no_tesseract = tmp_path / "bin"
    no_tesseract.mkdir()
    monkeypatch.setenv("PATH", str(no_tesseract))  # the parser worker is started by absolute path
    first = ingest_paths([docs], index, settings=settings)
    (failed,) = first.failed
    assert failed["error"].startswith("needs OCR, and Tesseract is not installed (apt-get install tesseract-ocr")
    monkeypatch.setenv("PATH", os.environ["PATH"].replace(str(no_tesseract), "/usr/local/bin:/usr/bin:/bin"))
    again = ingest_paths([docs], index, settings=settings)
    assert again.failed == [] and [Path(s).name for s in again.added] == ["scan.png"]
