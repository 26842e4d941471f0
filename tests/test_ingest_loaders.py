"""Loaders on small real files of every type, and the refusals of bad input (one reason each)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import BAD, DOCS

from ingest.discovery import discover
from ingest.errors import IngestUsageError, LoadError
from ingest.loaders import PAGE_SEPARATOR, load_document
from rag_qa.config import Settings


@pytest.fixture
def settings() -> Settings:
    return Settings()


def test_latin1_text_is_decoded_not_mangled(settings: Settings) -> None:
    raw = (DOCS / "normans_latin1.txt").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # the fixture really is not UTF-8
    doc = load_document(DOCS / "normans_latin1.txt", settings)
    assert doc.type == "txt" and doc.parts is None
    assert "é" in doc.text and "\ufffd" not in doc.text
    assert doc.text == raw.decode("latin-1")


def test_markdown_is_read_as_utf8_text(settings: Settings) -> None:
    doc = load_document(DOCS / "code-of-conduct.md", settings)
    assert doc.type == "md"
    assert doc.text == (DOCS / "code-of-conduct.md").read_text(encoding="utf-8")


def test_html_keeps_visible_text_only(settings: Settings) -> None:
    doc = load_document(DOCS / "oxygen.html", settings)
    assert doc.type == "html"
    assert "Oxygen is a chemical element with symbol O and atomic number 8." in doc.text
    for noise in ("SCRIPT_MARKER", "scriptMarker", "hidden-style-marker", "font-family", "NAV_MARKER"):
        assert noise not in doc.text
    assert "\n\n" in doc.text  # paragraphs stay apart


def test_html_keeps_a_page_wrapped_in_a_form_and_sets_table_cells_apart(settings: Settings, tmp_path: Path) -> None:
    """ASP.NET and SharePoint wrap the whole body in one <form>, which was dropped as page furniture ("no text
    found"); table cells ran together ("Denver24")."""
    page = tmp_path / "webform.html"
    page.write_text('<html><body><form id="form1"><h1>Results</h1><p>The Broncos won Super Bowl 50.</p>'
                    "<table><tr><th>Team</th><th>Points</th></tr><tr><td>Denver</td><td>24</td></tr></table>"
                    '<select><option>Pick a team</option></select><textarea>type here</textarea>'
                    "<button>Send</button></form></body></html>", encoding="utf-8")
    text = load_document(page, settings).text
    assert "The Broncos won Super Bowl 50." in text
    assert "Team Points" in text and "Denver 24" in text
    assert not any(control in text for control in ("Pick a team", "type here", "Send"))


def test_pdf_pages_keep_their_numbers_and_offsets(settings: Settings) -> None:
    doc = load_document(DOCS / "packet_switching_2p.pdf", settings)
    assert doc.type == "pdf" and doc.pages == 2
    assert doc.text.startswith("Packet switching")
    segments = doc.segments()
    assert [part.page for part, _ in segments] == [1, 2]
    assert not any(part.ocr for part, _ in segments)  # a real text layer: no OCR
    for part, text in segments:
        assert doc.text[part.start:part.end] == text
    assert PAGE_SEPARATOR.join(text for _, text in segments) == doc.text
    assert "Paul Baran" in segments[0][1]


def test_docx_paragraphs_and_tables(settings: Settings) -> None:
    doc = load_document(DOCS / "super_bowl.docx", settings)
    assert doc.type == "docx"
    assert doc.text.startswith("Super Bowl 50\n\nSuper Bowl 50 was an American football game")
    assert "Team: Denver Broncos, Score: 24" in doc.text  # the table row keeps its headers


def test_docx_merged_cells_keep_the_later_cells_under_their_own_headers(settings: Settings, tmp_path: Path) -> None:
    """A cell merged across two columns must not shift the cells after it onto the wrong headers."""
    import docx

    document = docx.Document()
    table = document.add_table(rows=3, cols=3)
    for r, row in enumerate([("Team", "Points", "Record"), ("Denver Broncos", "24", "12-4"),
                             ("Carolina Panthers", "", "15-1")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    table.cell(2, 0).merge(table.cell(2, 1)).text = "Carolina Panthers"  # spans Team and Points
    path = tmp_path / "merged.docx"
    document.save(str(path))
    lines = load_document(path, settings).text.splitlines()
    assert lines == ["Team: Denver Broncos, Points: 24, Record: 12-4.", "Team: Carolina Panthers, Record: 15-1."]


@pytest.mark.parametrize(("name", "reason"), [
    ("corrupt.pdf", "corrupt or unreadable PDF"),
    ("encrypted.pdf", "password-protected PDF"),
    ("not_a_zip.docx", "not a zip archive"),
    ("bomb.docx", "zip bomb"),
    ("binary.txt", "binary content"),
    ("invalid_utf8.txt", "cannot detect the text encoding"),
    ("truncated.pdf", "corrupt or unreadable PDF"),
    ("script_only.html", "no text found"),
    ("empty.pdf", "corrupt or unreadable PDF (Cannot read an empty file)"),
    ("empty.docx", "not a zip archive"),
    ("empty.html", "no text found"),
])
def test_bad_files_are_refused_with_a_one_line_reason(settings: Settings, name: str, reason: str) -> None:
    with pytest.raises(LoadError) as err:
        load_document(BAD / name, settings)
    assert reason in str(err.value)
    assert "\n" not in str(err.value)


def test_docx_text_in_content_controls_insertions_and_nested_tables_is_read(settings: Settings,
                                                                            tmp_path: Path) -> None:
    """python-docx's Paragraph.text sees plain runs and hyperlinks only: a template's content controls, tracked
    insertions and a table in a cell were lost.  Deleted text stays out; a merged cell reads in every row."""
    import docx
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    document = docx.Document()
    document.add_paragraph("Minutes of the reading group")
    body = document.element.body
    body.insert(len(body) - 1, parse_xml(  # before the section properties, as Word writes a cover page
        f"<w:sdt {nsdecls('w')}><w:sdtContent><w:p><w:r><w:t>Prepared for the committee</w:t></w:r></w:p>"
        "</w:sdtContent></w:sdt>"))
    edited = document.add_paragraph("The group meets in room ")
    edited._p.append(parse_xml(f"<w:ins {nsdecls('w')} w:id='1' w:author='ada'><w:r><w:t>R7</w:t></w:r></w:ins>"))
    edited._p.append(parse_xml(f"<w:del {nsdecls('w')} w:id='2' w:author='ada'><w:r><w:delText>R5</w:delText>"
                               "</w:r></w:del>"))
    edited.add_run(" on Tuesdays.").add_break()
    edited.add_run("Bring the chapter.")
    table = document.add_table(rows=3, cols=2)
    for r, row in enumerate([("Team", "Players"), ("Denver", ""), ("", "")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    table.cell(1, 0).merge(table.cell(2, 0))  # "Denver" spans two rows
    inner = table.cell(1, 1).add_table(rows=1, cols=2)
    inner.cell(0, 0).text, inner.cell(0, 1).text = "Peyton Manning", "quarterback"
    table.cell(2, 1).text = "Von Miller"
    document.save(str(tmp_path / "template.docx"))
    text = load_document(tmp_path / "template.docx", settings).text
    assert "Prepared for the committee" in text
    assert "The group meets in room R7 on Tuesdays.\nBring the chapter." in text and "R5" not in text
    assert "Team: Denver, Players: Peyton Manning | quarterback." in text
    assert "Team: Denver, Players: Von Miller." in text


def test_docx_over_the_uncompressed_limit_is_refused(settings: Settings) -> None:
    tight = settings.model_copy(update={"max_docx_uncompressed_mb": 0.01})
    with pytest.raises(LoadError, match="zip bomb.*uncompressed"):
        load_document(DOCS / "super_bowl.docx", tight)


def test_size_limit(settings: Settings) -> None:
    tight = settings.model_copy(update={"max_file_mb": 0.001})
    with pytest.raises(LoadError, match="over the 0.001 MB limit"):
        load_document(DOCS / "normans_latin1.txt", tight)


def test_unsupported_and_empty_files(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "data.xyz").write_text("a,b\n1,2\n")
    with pytest.raises(LoadError, match="unsupported file type '.xyz'"):
        load_document(tmp_path / "data.xyz", settings)
    (tmp_path / "empty.txt").write_text("  \n\n")
    with pytest.raises(LoadError, match="no text found"):
        load_document(tmp_path / "empty.txt", settings)


def test_discovery_walks_folders_and_refuses_escaping_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.txt").write_text("inside")
    (root / ".hidden.txt").write_text("hidden")
    (root / "notes.xyz").write_text("not supported")
    (root / "sub" / "setup.exe").write_bytes(b"MZ")
    outside = tmp_path / "secret.txt"
    outside.write_text("outside the folder")
    os.symlink(outside, root / "link.txt")
    os.symlink(root / "sub" / "a.txt", root / "inner_link.txt")  # points inside: same file, once
    found = discover([root])
    assert found.files == [(root / "sub" / "a.txt").resolve()]
    assert found.folders == [root.resolve()]
    assert sorted(p.name for p in found.skipped) == ["notes.xyz", "setup.exe"]  # listed, not silently dropped
    assert [(Path(p).name, "outside the ingested folder" in e) for p, e in found.failed] == [("link.txt", True)]


def test_discovery_of_a_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(IngestUsageError, match="path does not exist"):
        discover([tmp_path / "nope"])
