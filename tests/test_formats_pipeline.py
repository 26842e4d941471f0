"""Issue 16 end to end: a messy folder (slides, a workbook, a CSV, an e-book, a mail with attachments,
a scanned PDF, a photo of text, a PDF with a table, files of types we do not read) through `python -m ingest`, then
questions answered extractively through QAService and `python -m rag_qa ask --json`, each with the
citation a user needs: slide, sheet and row, chapter, page, and whether OCR read the text.

One folder is ingested once for the module (one page of OCR, a few dozen chunks)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from formats import (
    FORMATS,
    SCAN_SENTENCE,
    mail_with_attachments,
    make_csv,
    make_eml,
    make_epub,
    make_photo_of_text,
    make_pptx,
    make_scanned_pdf,
    make_xlsx,
)

from ingest.pipeline import ingest_paths, remove_sources
from rag_qa.config import Settings
from rag_qa.service import QAService
from rag_qa.store.faiss.reader import FaissStore

pytestmark = pytest.mark.slow
ENV = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
MAIL = "reading-group.eml"


def _run(module: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=REPO,
                          env=ENV, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("formats")
    docs = root / "docs"
    docs.mkdir()
    make_pptx(docs / "oxygen.pptx")
    make_xlsx(docs / "elements.xlsx")
    make_csv(docs / "rivers.csv")
    make_epub(docs / "normans.epub")
    make_eml(docs / MAIL, root)
    make_scanned_pdf(docs / "scan.pdf")
    make_photo_of_text(docs / "photo.jpg")
    shutil.copy2(FORMATS / "super_bowl_table.pdf", docs / "super_bowl_table.pdf")
    (docs / "notes.xyz").write_text("a format nobody reads")
    (docs / "archive.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    return docs


@pytest.fixture(scope="module")
def ingested(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    index = tmp_path_factory.mktemp("formats_index") / "index"
    return index, _run("ingest", str(folder), "--index", str(index), "--json")


@pytest.fixture(scope="module")
def service(ingested: tuple[Path, subprocess.CompletedProcess[str]]) -> QAService:
    return QAService(ingested[0], Settings())


def test_the_folder_goes_in_with_skipped_types_listed_and_one_line_per_bad_file(
        folder: Path, ingested: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    index, run = ingested
    assert run.returncode == 3, run.stderr  # one attachment could not be read; everything else went in
    assert "Traceback" not in run.stderr
    lines = run.stderr.splitlines()
    assert "skipped: 3 files of unsupported types: .exe, .xyz, .zip" in lines
    assert [line for line in lines if line.startswith("failed: ")] == [
        f"failed: {folder}/{MAIL}/broken.pdf: corrupt or unreadable PDF (Stream has ended unexpectedly)"]
    assert f"ingest: {folder}/scan.pdf: read with OCR (eng): page 1" in lines
    summary = json.loads(run.stdout)
    assert sorted(Path(p).name for p in summary["skipped"]) == ["archive.zip", "notes.xyz", "setup.exe"]
    assert f"{folder}/{MAIL}/setup.exe" in summary["skipped"]
    assert summary["added"] == summary["documents"] == 9  # 8 files and the mail's PDF attachment
    with FaissStore.open(index) as store:
        types = {Path(d.source).name: (d.type, d.pages) for d in store.documents()}
    assert types == {"oxygen.pptx": ("pptx", 3), "elements.xlsx": ("xlsx", 7), "rivers.csv": ("csv", 3),
                     "normans.epub": ("epub", 2), MAIL: ("eml", None), "packet_switching.pdf": ("pdf", 1),
                     "scan.pdf": ("pdf", 1), "super_bowl_table.pdf": ("pdf", 1), "photo.jpg": ("jpg", 1)}


QUESTIONS = [
    # question, answer, source (under the folder), page, unit, section, ocr
    ("What absorbs UVB radiation?", "ozone", "oxygen.pptx", 2, "slide", None, False),
    ("In what year was sodium discovered?", "1807", "elements.xlsx", 7, "row", "Elements", False),
    ("Which river flows through Warsaw?", "Vistula", "rivers.csv", 2, "row", None, False),
    ("Normandy is a region in which country?", "France", "normans.epub", 1, "chapter", "Origins", False),
    ("Who developed the concept of Distributed Adaptive Message Block Switching?", "Baran",
     f"{MAIL}/packet_switching.pdf", 1, "page", None, False),
    ("For which day is the chapter on packet switching attached?", "Thursday", MAIL, None, None, None, False),
    ("In what kind of memory is packet header information looked up?", "content-addressable memory",
     "scan.pdf", 1, "page", None, True),
    ("Who was the head coach of the Carolina Panthers?", "Ron Rivera", "super_bowl_table.pdf", 1, "page", None, False),
    ("Who was named Super Bowl MVP?", "Von Miller", "photo.jpg", None, None, None, True),
]


@pytest.mark.parametrize(("question", "answer", "source", "page", "unit", "section", "ocr"), QUESTIONS,
                         ids=[q[2].split(".")[-1] if "/" not in q[2] else "eml-attachment" for q in QUESTIONS])
def test_questions_are_answered_with_the_right_citation(service: QAService, folder: Path, question: str, answer: str,
                                                        source: str, page: int, unit: str, section: str | None,
                                                        ocr: bool) -> None:
    result = service.ask(question)
    assert not result.no_answer and answer in result.answer, (question, result.answer, result.score)
    (citation,) = result.citations
    assert citation.source == str(folder / source)
    assert (citation.page, citation.unit, citation.section, citation.ocr) == (page, unit, section, ocr)
    assert citation.text[citation.start - citation.passage_start:citation.end - citation.passage_start] == \
        result.answer  # the span is exact in the stored (OCR or extracted) text


def test_ocr_recovers_a_known_sentence_of_the_scan(service: QAService, folder: Path) -> None:
    """Character error rate of Tesseract on the rasterised page, against the PDF's own text: under 5%."""
    store = service.store
    text = " ".join(p.text for p in store.get_passages(store.all_chunk_ids()) if p.source == str(folder / "scan.pdf"))
    assert character_error_rate(SCAN_SENTENCE, " ".join(text.split())) < 0.05


def test_ask_json_carries_sheet_and_row(ingested: tuple[Path, subprocess.CompletedProcess[str]],
                                       capsys: pytest.CaptureFixture) -> None:
    """`rag_qa ask --json` (in this process: the models are loaded already)."""
    from rag_qa.cli import main

    assert main(["ask", "In what year was sodium discovered?", "--index", str(ingested[0]), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    (citation,) = result["citations"]
    assert result["answer"] == "1807"
    assert {k: citation[k] for k in ("page", "unit", "section", "ocr")} == {
        "page": 7, "unit": "row", "section": "Elements", "ocr": False}


def test_attachments_stay_with_an_unchanged_mail_and_go_with_a_changed_or_removed_one(
        ingested: tuple[Path, subprocess.CompletedProcess[str]], folder: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    shutil.copytree(ingested[0], index)
    attachment = str(folder / MAIL / "packet_switching.pdf")
    mail_folder = tmp_path / "mail"
    mail_folder.mkdir()
    shutil.copy2(folder / MAIL, mail_folder / MAIL)

    again = ingest_paths([folder], index, settings=Settings())  # nothing changed: nothing parsed, nothing lost
    assert not again.added and not again.removed and not again.failed and again.documents == 9

    with FaissStore.open(index) as store:
        assert attachment in {d.source for d in store.documents()}
    removed = remove_sources([folder / MAIL], index, settings=Settings())
    assert sorted(removed.removed) == [str(folder / MAIL), attachment]

    mail_index = tmp_path / "mail_index"
    first = ingest_paths([mail_folder], mail_index, settings=Settings())
    assert sorted(Path(s).name for s in first.added) == ["packet_switching.pdf", MAIL]
    mail_with_attachments(mail_folder / MAIL, 1)  # the mail now holds one note instead of the PDF
    changed = ingest_paths([mail_folder], mail_index, settings=Settings())
    assert [Path(s).name for s in changed.added] == ["note-1.txt"] and changed.documents == 2
    assert [Path(s).name for s in changed.removed] == ["packet_switching.pdf"]
    with FaissStore.open(mail_index) as store:
        assert sorted(Path(d.source).name for d in store.documents()) == ["note-1.txt", MAIL]


def character_error_rate(reference: str, hypothesis: str) -> float:
    """Edit distance between ``reference`` and its best-matching stretch of ``hypothesis``, over len(reference)."""
    previous = [0] * (len(hypothesis) + 1)  # a match may start anywhere in the hypothesis
    for i, r in enumerate(reference, 1):
        current = [i] + [0] * len(hypothesis)
        for j, h in enumerate(hypothesis, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return min(previous) / len(reference)
