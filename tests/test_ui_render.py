"""The UI's pure parts: upload name sanitising and limits, and escaped HTML with highlights."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag_qa.types import Answer, Citation, Passage
from ui import render
from ui.indexes import sanitise_index_name
from ui.uploads import check_upload, sanitise_filename, save_uploads


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("report.PDF", "report.pdf"),
        ("line\nbreak.txt", "line_break.txt"),
        ("tab\there.md", "tab_here.md"),
        ("..", "upload"),
        (".bashrc", "bashrc"),
        ("", "upload"),
        ("Überblick – Straße.md", "Überblick_Straße.md"),
        ("日本語のメモ.txt", "日本語のメモ.txt"),
        ("a<b>|c?.html", "a_b_c.html"),
        ("My Report  (v2).docx", "My Report_v2.docx"),
    ],
)
def test_sanitise_filename(name: str, expected: str) -> None:
    assert sanitise_filename(name) == expected


def test_sanitised_names_stay_short_and_keep_extension() -> None:
    name = sanitise_filename("x" * 500 + ".docx")
    assert name.endswith(".docx") and len(name) <= 120
    wide = sanitise_filename("東" * 150 + ".txt")  # 120 characters would be 360 bytes: over any file system's 255
    assert wide.endswith(".txt") and wide.startswith("東") and len(wide.encode()) <= 240


def test_save_uploads_stays_inside_uploads_folder(tmp_path: Path) -> None:
    evil = tmp_path / "in" / "passwd.txt"
    evil.parent.mkdir()
    evil.write_text("root:x:0:0")
    index = tmp_path / "index"
    saved = save_uploads([evil], index, max_mb=1)
    assert saved.saved == [(index / "uploads" / "passwd.txt").resolve()]
    assert not saved.failed


def test_save_uploads_reports_bad_files_and_keeps_good_ones(tmp_path: Path) -> None:
    good, exe, big, empty = (tmp_path / n for n in ("notes.md", "tool.exe", "big.txt", "empty.txt"))
    good.write_text("# notes")
    exe.write_bytes(b"MZ")
    big.write_bytes(b"a" * 3 * 1024 * 1024)
    empty.write_bytes(b"")
    saved = save_uploads([good, exe, big, empty], tmp_path / "index", max_mb=2)
    assert [p.name for p in saved.saved] == ["notes.md"]
    reasons = {f["path"]: f["error"] for f in saved.failed}
    assert "not supported" in reasons["tool.exe"]
    assert "upload limit" in reasons["big.txt"]
    assert "empty" in reasons["empty.txt"]


def test_check_upload_accepts_allowed_types(tmp_path: Path) -> None:
    f = tmp_path / "page.HTM"
    f.write_text("<p>hi</p>")
    assert check_upload(f, f.name, max_mb=1) is None


def test_index_names_are_plain_folder_names() -> None:
    assert sanitise_index_name("../my notes!") == "my-notes"
    assert sanitise_index_name("///") == ""


def test_highlight_span_escapes_and_marks_exact_span() -> None:
    text = "x < y & <b>Rollo</b> led them"
    start = text.index("<b>Rollo</b>")
    out = render.highlight_span(text, start, start + len("<b>Rollo</b>"))
    assert out == "x &lt; y &amp; <mark>&lt;b&gt;Rollo&lt;/b&gt;</mark> led them"


def test_highlight_span_ignores_out_of_range_span() -> None:
    assert "<mark>" not in render.highlight_span("abc", 2, 10)


def test_highlight_terms_whole_words_case_insensitive_and_escaped() -> None:
    out = render.highlight_terms("Normans & normandy: the NORMANS<script>", render.query_terms("Who were the Normans?"))
    assert out == "<mark>Normans</mark> &amp; normandy: the <mark>NORMANS</mark>&lt;script&gt;"


def test_query_terms_drop_stopwords_and_duplicates() -> None:
    assert render.query_terms("What is the capital of France, the capital?") == ["capital", "france"]


def test_passage_newlines_never_make_a_blank_line() -> None:
    # a blank line would end the chat's HTML block and let markdown loose on document text
    html_out = render.passages_html([Passage("one\n\ntwo *three*", "/d/a.txt", 2, 0, 17, 0.5)], "two")
    assert "\n" not in html_out
    assert "<mark>two</mark>" in html_out and "page 2" in html_out


def test_answer_message_marks_span_in_citation_card() -> None:
    passage = "In 911 Rollo <agreed> to a treaty."
    cit = Citation("/docs/normans.txt", 3, 100 + passage.index("Rollo"), 100 + passage.index("Rollo") + 5,
                   passage, passage_start=100)
    out = render.answer_message(Answer("Rollo", 0.87, "extractive", citations=[cit], seconds=0.4))
    assert "<mark>Rollo</mark> &lt;agreed&gt;" in out
    assert "normans.txt · page 3" in out
    assert "reader: extractive" in out and "confidence: 87%" in out
    assert "<details" in out and "\n" not in out


def test_an_answer_across_line_breaks_stays_one_html_block() -> None:
    """A span that crosses a paragraph break put a blank line in ``data-answer``; the chatbot's markdown then
    ended the HTML block there and read the rest, document text included, as markdown (an image from a URL
    the document names would load in every reader's browser)."""
    text = "Rollo\n\n![x](https://evil.example/p.png)\rand\r\nmore"
    passage = f"In 911 {text} agreed."
    cit = Citation("/docs/normans.txt", None, 7, 7 + len(text), passage, passage_start=0)
    out = render.answer_message(Answer(text, 0.8, "extractive", citations=[cit]))
    assert "\n" not in out and "\r" not in out
    assert render.answer_text(out) == text  # a follow-up still reads the answer back exactly


def test_no_answer_is_shown_as_such_not_as_a_guess() -> None:
    out = render.answer_message(Answer("Paris", 0.02, "extractive", no_answer=True))
    assert render.NO_ANSWER in out and "Paris" not in out


def test_upload_report_escapes_file_names_and_reasons() -> None:
    out = render.upload_report_html(["/i/uploads/a.md"], [], [], [{"path": "<img>.pdf", "error": "bad <pdf>"}], 1, 4)
    assert "&lt;img&gt;.pdf" in out and "bad &lt;pdf&gt;" in out and "<img>" not in out
    assert "1 documents, 4 chunks" in out


def test_uploads_take_every_type_ingestion_reads(tmp_path: Path) -> None:
    """One list of suffixes for ingest and the UI: a .markdown upload used to be refused though ingest reads it."""
    from ingest.loaders import SUPPORTED_SUFFIXES

    assert ".markdown" in SUPPORTED_SUFFIXES
    for suffix in SUPPORTED_SUFFIXES:
        upload = tmp_path / f"notes{suffix}"
        upload.write_text("some text")
        assert check_upload(upload, upload.name, 1.0) is None, suffix


def test_cards_say_where_the_text_is_and_when_ocr_read_it() -> None:
    """Issue 16: a sheet and row, a slide, a chapter; a badge on text that came from a scan."""
    sheet = Passage("Region: North; Revenue: 1.2M", "/d/sales.xlsx", 14, 0, 28, unit="row", section="<Q3>")
    scan = Passage("Each packet is labeled", "/d/scan.pdf", 2, 0, 22, unit="page", ocr=True)
    hits = render.passages_html([sheet, scan], "revenue")
    assert "sales.xlsx</span> · sheet &lt;Q3&gt;, row 14</div>" in hits  # the sheet name is escaped
    assert "scan.pdf</span> · page 2 · <span class=\"ocr-badge\"" in hits and "text from OCR" in hits
    answer = Answer("1.2M", 0.9, "extractive", citations=[Citation.of(sheet, 24, 28)])
    message = render.answer_message(answer)
    assert "[1] sales.xlsx · sheet &lt;Q3&gt;, row 14</summary>" in message and "ocr-badge" not in message
    deck = Passage("Speaker notes", "/d/deck.pptx", 3, 0, 13, unit="slide")
    book = Passage("The Normans", "/d/normans.epub", 1, 0, 11, unit="chapter", section="Origins")
    assert (deck.location, book.location) == ("slide 3", "chapter 1 (Origins)")
    assert Passage("old", "/d/old.pdf", 5, 0, 3).location == "page 5"  # indexes from before issue 16


def test_attachments_are_named_with_their_mail_and_skipped_files_are_listed() -> None:
    assert render.display_name("/d/uploads/mail.eml/report.pdf") == "mail.eml/report.pdf"
    assert render.display_name("/d/uploads/report.pdf") == "report.pdf"
    out = render.upload_report_html(["/i/mail.eml"], [], [], [], 2, 5, skipped=["/i/mail.eml/setup.exe"])
    assert "Skipped (type not read): mail.eml/setup.exe" in out


def test_upload_report_shows_what_the_files_had_to_say() -> None:
    """A scan left unread (OCR off) or attachments over the limit are said in the upload report, escaped,
    not only in the server's log."""
    notes = [{"path": "/i/uploads/scan.pdf", "note": "2 scanned page(s) not read: OCR is switched off"},
             {"path": "/i/uploads/mail.eml", "note": "300 attachments; only the first 100 were read <sic>"}]
    out = render.upload_report_html(["/i/uploads/scan.pdf"], [], [], [], 1, 1, notes=notes)
    assert '<li class="upload-note">scan.pdf: 2 scanned page(s) not read: OCR is switched off</li>' in out
    assert "mail.eml: 300 attachments; only the first 100 were read &lt;sic&gt;</li>" in out
