"""The web app's handlers called directly, with a users file but no server: where issue 15's audit trail
meets issue 16's formats.  An upload of a mail reports and records its skipped attachments and what
the file had to say (attachments over the limit); a removal takes one document of the index (a
mail with its attachments), never everything under a folder, and the trail names what went.

The app itself, signed in through ``gradio_client`` and Chromium, is ``test_ui_signin.py``."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from ui_server import team_handlers

from rag_qa.config import Settings
from ui import audit
from ui.handlers import Handlers

pytestmark = pytest.mark.slow  # each test ingests a small mail (the embedding model loads)

EDITOR = SimpleNamespace(username="ed")  # what Handlers reads from gr.Request
MAIL = "notes.eml"


def no_progress(*_: Any, **__: Any) -> None:
    """Stands in for gr.Progress outside a Gradio event."""


@pytest.fixture
def team(tmp_path: Path) -> tuple[Handlers, Path]:
    """Handlers over ``indexes/team``, where ``ed`` is an editor; mails are read for 2 attachments at most."""
    return team_handlers(tmp_path, "ed", "editor", Settings(max_attachments=2))


def write_mail(path: Path) -> Path:
    """A mail with a program (not read) and two notes: with a limit of 2, the second note is left out."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.org", "b@example.org", "Room change"
    message.set_content("The reading group meets in room R7 from now on.")
    message.add_attachment(b"MZ\x90\x00" + bytes(64), maintype="application", subtype="octet-stream",
                           filename="tool.exe")
    for i in (1, 2):
        message.add_attachment(f"Note {i}: bring the chapter on packet switching.\n", filename=f"note-{i}.txt")
    path.write_bytes(message.as_bytes())
    return path


def upload_mail(handlers: Handlers, index: Path, tmp_path: Path) -> str:
    status, rows, _ = handlers.upload([str(write_mail(tmp_path / MAIL))], str(index), EDITOR, no_progress)
    assert sorted(row[0] for row in rows) == [MAIL, f"{MAIL}/note-1.txt"], status
    return status


def test_an_uploaded_mail_reports_and_records_what_was_skipped_and_left_out(team: tuple[Handlers, Path],
                                                                              tmp_path: Path) -> None:
    handlers, index = team
    status = upload_mail(handlers, index, tmp_path)
    assert f"Skipped (type not read): {MAIL}/tool.exe" in status
    assert f'<li class="upload-note">{MAIL}: 3 attachments; only the first 2 were read' in status
    (record,) = list(audit.read(audit.index_log(index)))
    assert (record["user"], record["action"], record["outcome"]) == ("ed", "upload", "ok")
    assert record["files"] == [MAIL, f"{MAIL}/note-1.txt"] and record["skipped"] == [f"{MAIL}/tool.exe"]
    assert f"skipped: {MAIL}/tool.exe" in audit.format_record(record)


def test_remove_takes_one_document_with_its_attachments_never_a_folder(team: tuple[Handlers, Path],
                                                                      tmp_path: Path) -> None:
    handlers, index = team
    upload_mail(handlers, index, tmp_path)
    stored = index / "uploads" / MAIL
    for folder in (index / "uploads", index, Path("/")):  # each holds every document of the index
        status, rows, _ = handlers.remove(str(folder), str(index), EDITOR, no_progress)
        assert "was not in the index" in status and len(rows) == 2, (folder, status)
    assert stored.exists()

    status, rows, _ = handlers.remove(str(stored), str(index), EDITOR, no_progress)
    assert f"Removed {MAIL}, {MAIL}/note-1.txt." in status and rows == [] and not stored.exists()
    events = [(e["action"], e["outcome"], e["files"]) for e in audit.read(audit.index_log(index))]
    assert events[1:] == [("remove", "not-found", ["uploads"]), ("remove", "not-found", ["team"]),
                          ("remove", "not-found", ["/"]), ("remove", "ok", [MAIL, f"{MAIL}/note-1.txt"])]


def upload_as(handlers: Handlers, index: Path, tmp_path: Path, files: dict[str, Path]) -> tuple[str, list]:
    """Upload ``files`` (name it arrives under -> content) as one upload; (status, document rows)."""
    incoming = tmp_path / f"incoming-{len(list(tmp_path.glob('incoming-*')))}"
    incoming.mkdir()
    for name, source in files.items():
        (incoming / name).write_bytes(source.read_bytes())
    status, rows, _ = handlers.upload([str(incoming / n) for n in files], str(index), EDITOR, no_progress)
    return status, sorted(row[0] for row in rows)


def test_a_failed_reupload_keeps_the_indexed_documents_file(team: tuple[Handlers, Path], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A re-upload under a name already stored replaces the stored file only once its ingest succeeds: a
    corrupt one (or an ingest that raises) leaves the file behind the indexed document as it was."""
    handlers, index = team
    data = Path(__file__).parent / "data"
    good, corrupt = data / "docs" / "packet_switching_2p.pdf", data / "bad" / "corrupt.pdf"
    other = data / "formats" / "super_bowl_table.pdf"
    stored, aside = index / "uploads" / "report.pdf", index / "uploads" / ".replaced"
    status, rows = upload_as(handlers, index, tmp_path, {"report.pdf": good})
    assert rows == ["report.pdf"], status
    status, rows = upload_as(handlers, index, tmp_path, {"report.pdf": corrupt})
    assert "report.pdf" in status and rows == ["report.pdf"]
    assert stored.read_bytes() == good.read_bytes() and not any(aside.iterdir())

    import ui.handlers

    def full_disk(*_: Any, **__: Any) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(ui.handlers, "ingest_paths", full_disk)
        status, rows = upload_as(handlers, index, tmp_path, {"report.pdf": other, "new.pdf": other})
    assert "No space left on device" in status and rows == ["report.pdf"]
    assert stored.read_bytes() == good.read_bytes() and sorted(p.name for p in stored.parent.iterdir()) == \
        [".replaced", "report.pdf"]

    status, rows = upload_as(handlers, index, tmp_path, {"report.pdf": other})  # a good new version replaces it
    assert rows == ["report.pdf"] and stored.read_bytes() == other.read_bytes() and not any(aside.iterdir())


def test_files_of_one_upload_that_share_a_name_are_all_kept(team: tuple[Handlers, Path], tmp_path: Path) -> None:
    """``plan.MD`` and ``plan .md`` are stored as ``plan.md`` too: a second file under a name gets ``-2``, a
    byte-for-byte copy of the first is refused in one line instead of being indexed twice."""
    handlers, index = team
    (tmp_path / "a.md").write_text("# Rooms\nThe reading group meets in room R7.\n")
    (tmp_path / "b.md").write_text("# Times\nThe reading group meets on Tuesdays.\n")
    status, rows = upload_as(handlers, index, tmp_path, {"plan.md": tmp_path / "a.md", "plan.MD": tmp_path / "b.md",
                                                          "plan .md": tmp_path / "a.md"})
    assert rows == ["plan-2.md", "plan.md"], status
    assert (index / "uploads" / "plan-2.md").read_text().endswith("Tuesdays.\n")
    assert "the same file as plan.md in this upload" in status


def test_an_index_that_cannot_be_read_leaves_the_page_usable(team: tuple[Handlers, Path], tmp_path: Path) -> None:
    """On page load the first index is opened; when its store cannot be read (CURRENT names a missing version,
    a server is down) the error is shown beside the index list, and the other indexes can still be picked."""
    handlers, index = team
    status, rows = upload_as(handlers, index, tmp_path, {"notes.md": Path(__file__).parent / "data" / "docs" /
                                                                       "code-of-conduct.md"})
    assert rows == ["notes.md"], status
    (index / "CURRENT").write_text("000099\n")  # a version that is not there
    choices, message, table, _ = handlers.open_index(None, EDITOR)
    assert "missing version 000099" in message and table == []
    assert [value for _, value in choices["choices"]] == [str(index)]  # the list is filled: the page is not stuck
