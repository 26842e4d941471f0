"""Issue 16 loaders on real files: slides, workbooks, CSV/TSV, e-books, mails, PDF tables, pictures
(OCR); the one-line refusals of corrupt files; and the hostile ones (zip bombs, an image bomb, a
huge sheet, a mail with hundreds of attachments).  Answering questions about them through an
index is tests/test_formats_pipeline.py."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import BAD, DOCS
from formats import (
    FORMATS,
    huge_csv,
    huge_xlsx,
    mail_with_attachments,
    make_csv,
    make_eml,
    make_epub,
    make_photo_of_text,
    make_png,
    make_pptx,
    make_tiff,
    make_xlsx,
    png_bytes,
    zip_bomb,
)

from ingest.errors import LoadError
from ingest.formats.pdf import text_layer_is_junk
from ingest.loaders import SUPPORTED_SUFFIXES, load_document
from ingest.worker import ParserWorker
from rag_qa.config import Settings


@pytest.fixture
def settings() -> Settings:
    return Settings()


def _one_line_error(path: Path, settings: Settings) -> str:
    with pytest.raises(LoadError) as err:
        load_document(path, settings)
    message = str(err.value)
    assert "\n" not in message and len(message) < 400
    return message


# -- what each format reads, and where each part is ---------------------------------------------
def test_pptx_slides_in_reading_order_with_notes_and_tables(settings: Settings, tmp_path: Path) -> None:
    doc = load_document(make_pptx(tmp_path / "deck.pptx"), settings)
    assert doc.type == "pptx" and doc.unit == "slide" and [p.page for p in doc.parts] == [1, 2, 3]
    slides = [text for _, text in doc.segments()]
    assert slides[0].startswith("Oxygen\n\nOxygen is a chemical element with symbol O")
    assert slides[1].startswith("Oxygen in living organisms\n\nProteins, nucleic acids")
    assert "\n\nNotes: Many major classes of organic molecules" in slides[1]  # speaker notes, after the body
    assert slides[2] == "Light elements\n\nElement: Hydrogen, Symbol: H.\nElement: Helium, Symbol: He."


def test_a_line_break_inside_a_slide_paragraph_keeps_the_words_apart(settings: Settings, tmp_path: Path) -> None:
    """python-pptx reads <a:br> as a vertical tab, a control character the tokenizer deletes: the two words
    around it were embedded and read as one ("oneLine")."""
    from pptx import Presentation

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Schedule\vspring term"
    slide.placeholders[1].text_frame.text = "Meets in room R7\von Tuesdays"  # written as <a:br/>
    deck.save(str(tmp_path / "breaks.pptx"))
    text = load_document(tmp_path / "breaks.pptx", settings).text
    assert "\v" not in text and "Schedule\nspring term" in text and "room R7\non Tuesdays" in text


def test_xlsx_rows_keep_headers_sheet_names_and_row_numbers(settings: Settings, tmp_path: Path) -> None:
    doc = load_document(make_xlsx(tmp_path / "elements.xlsx"), settings)
    assert doc.type == "xlsx" and doc.unit == "row"
    rows = {(p.section, p.page): text for p, text in doc.segments()}
    assert rows[("About", 1)] == "Chemical elements, with the year each was discovered"
    assert rows[("Elements", 7)] == "Element: Sodium, Symbol: Na, Atomic number: 11, Discovered: 1807."
    assert rows[("Elements", 4)] == "Element: Carbon, Symbol: C, Atomic number: 6."  # empty cells are left out
    assert ("Elements", 1) not in rows  # the header row is in every row instead
    assert "=C3" not in doc.text  # values, never formulas


@pytest.mark.parametrize(("delimiter", "suffix"), [(";", ".csv"), (",", ".csv"), ("\t", ".tsv"), ("|", ".csv")])
def test_delimited_files_are_sniffed(settings: Settings, tmp_path: Path, delimiter: str, suffix: str) -> None:
    doc = load_document(make_csv(tmp_path / f"rivers{suffix}", delimiter), settings)
    assert doc.type == suffix[1:] and doc.unit == "row"
    assert [(p.page, text) for p, text in doc.segments()] == [
        (2, "City: Warsaw, Country: Poland, River: Vistula."), (3, "City: Rouen, Country: France, River: Seine."),
        (4, "City: London, Country: United Kingdom, River: Thames.")]


def test_epub_chapters_follow_the_spine(settings: Settings, tmp_path: Path) -> None:
    doc = load_document(make_epub(tmp_path / "normans.epub"), settings)
    assert doc.type == "epub" and doc.unit == "chapter"
    assert [(p.page, p.section) for p in doc.parts] == [(1, "Origins"), (2, "The Norman dynasty")]
    assert "gave their name to Normandy, a region in France" in doc.segments()[0][1]
    assert "Contents" not in doc.text  # the navigation document is not in the spine


def test_eml_headers_body_and_attachments(settings: Settings, tmp_path: Path) -> None:
    mail = make_eml(tmp_path / "mail.eml", tmp_path)
    doc = load_document(mail, settings)
    assert doc.type == "eml" and doc.text.startswith(
        "From: Ada Lovelace <ada@example.org>\nTo: Reading group <group@example.org>\n"
        "Date: Fri, 08 Mar 2024 09:30:00 +0000\nSubject: Notes on packet switching\n\nHello all,")
    assert doc.text.count("packet switching is attached") == 1  # the plain body, not the HTML one as well
    (pdf,) = doc.attachments
    assert pdf.source == f"{mail}/packet_switching.pdf" and pdf.type == "pdf" and pdf.pages == 1
    assert "Paul Baran" in pdf.text
    assert doc.skipped == [f"{mail}/setup.exe"]  # not read, but listed; the inline logo is not an attachment
    ((source, error),) = doc.failed
    assert source == f"{mail}/broken.pdf" and error.startswith("corrupt or unreadable PDF")


def test_a_mail_with_crlf_line_ends_reads_as_plain_lines(settings: Settings, tmp_path: Path) -> None:
    raw = b"From: a@example.org\r\nSubject: hi\r\nContent-Type: text/plain\r\n\r\nPara one.\r\n\r\nPara two.\r\n"
    (tmp_path / "crlf.eml").write_bytes(raw)
    text = load_document(tmp_path / "crlf.eml", settings).text
    assert text == "From: a@example.org\nSubject: hi\n\nPara one.\n\nPara two."


def test_a_long_attachment_name_keeps_its_extension(settings: Settings, tmp_path: Path) -> None:
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"], message["Subject"] = "a@example.org", "minutes"
    message.set_content("Minutes attached.")
    long_name = "Minutes of the quarterly meeting of the reading group " * 3 + "final.txt"  # 170 characters
    message.add_attachment("The group meets in room R7.\n", filename=long_name)
    (tmp_path / "minutes.eml").write_bytes(message.as_bytes())
    doc = load_document(tmp_path / "minutes.eml", settings)
    (attachment,) = doc.attachments  # read, not skipped as a file of no known type
    assert attachment.source.endswith(".txt") and "room R7" in attachment.text and not doc.skipped


def test_pdf_tables_are_kept_row_by_row_with_headers(settings: Settings) -> None:
    doc = load_document(FORMATS / "super_bowl_table.pdf", settings)
    assert doc.text.splitlines() == [
        "Super Bowl 50",
        "Super Bowl 50 was an American football game to determine the champion of the National",
        "Football League (NFL) for the 2015 season.",
        "Team: Denver Broncos, Conference: AFC, Record: 12–4, Head coach: Gary Kubiak, Points: 24.",
        "Team: Carolina Panthers, Conference: NFC, Record: 15–1, Head coach: Ron Rivera, Points: 10.",
        "The Broncos took an early lead in Super Bowl 50 and never trailed.",
    ]


def test_a_pdf_without_tables_keeps_its_text_layer(settings: Settings) -> None:
    from pypdf import PdfReader

    doc = load_document(DOCS / "packet_switching_2p.pdf", settings)
    first = " ".join(PdfReader(DOCS / "packet_switching_2p.pdf").pages[0].extract_text().split())
    assert " ".join(doc.segments()[0][1].split()) == first and not doc.notes


def test_junk_text_layers_are_told_from_real_ones() -> None:
    assert not text_layer_is_junk("Packet switching is a method of grouping data into packets.")
    assert not text_layer_is_junk("東京は日本の首都です。人口は約一千四百万人です。東京都の区部は二十三区です。")
    assert not text_layer_is_junk("3")  # a page number: too little to judge (its images decide)
    assert text_layer_is_junk("\ue000\ue001\ue002 \ue003\ue004\ue005\ue006 \ue007\ue008\ue009\ue00a\ue00b " * 3)
    assert text_layer_is_junk("\x01\x02\x03\x04 \x05\x06\x07\x08 \x0e\x0f\x10\x11\x12 \x13\x14\x15\x16 " * 2)


# -- pictures: OCR, pages, upright, on white ----------------------------------------------------
def test_pictures_are_read_with_ocr(settings: Settings, tmp_path: Path) -> None:
    pages: list[tuple[int, int]] = []
    png = load_document(make_png(tmp_path / "strip.png"), settings)
    assert png.type == "png" and [(p.page, p.ocr) for p in png.parts] == [(None, True)]
    assert "Paul Baran developed the" in png.text  # transparent margins did not turn the page black
    tiff = load_document(make_tiff(tmp_path / "fax.tif"), settings, progress=lambda d, t: pages.append((d, t)))
    assert tiff.type == "tiff" and [(p.page, p.ocr) for p in tiff.parts] == [(1, True), (2, True)]
    assert "content-addressable memory" in tiff.segments()[0][1]
    assert "which is different for different packets" in tiff.segments()[1][1]
    assert pages == [(1, 2), (2, 2)]  # one progress step per page
    photo = load_document(make_photo_of_text(tmp_path / "photo.jpg"), settings)  # stored turned on its side
    assert "Denver linebacker Von Miller was named Super Bowl MVP" in photo.text  # EXIF orientation applied


def test_ocr_can_be_switched_off_and_a_missing_language_is_one_line(settings: Settings, tmp_path: Path) -> None:
    picture = tmp_path / "dot.png"
    picture.write_bytes(png_bytes(20, 20))
    assert "switched off" in _one_line_error(picture, settings.model_copy(update={"ocr": False}))
    message = _one_line_error(picture, settings.model_copy(update={"ocr_lang": "zzz"}))
    assert "no language data for zzz" in message and "tesseract-ocr-zzz" in message
    assert "no text found" in _one_line_error(picture, settings)  # a blank picture


# -- corrupt files: one line each ----------------------------------------------------------------
def test_corrupt_files_of_each_new_type_are_one_line(settings: Settings, tmp_path: Path) -> None:
    docx = (DOCS / "super_bowl.docx").read_bytes()
    cases = {
        "text.pptx": (b"plain text, not a zip", "not a valid .pptx (not a zip archive)"),
        "word.pptx": (docx, "corrupt or unreadable .pptx"),  # a zip, but a Word document
        "text.xlsx": (b"plain text, not a zip", "not a valid .xlsx (not a zip archive)"),
        "word.xlsx": (docx, "corrupt or unreadable .xlsx"),
        "text.epub": (b"plain text, not a zip", "not a valid .epub (not a zip archive)"),
        "word.epub": (docx, "corrupt .epub (the container file META-INF/container.xml is missing)"),
        "binary.eml": ((BAD / "binary.txt").read_bytes(), "binary content, not an e-mail"),
        "notes.eml": (b"just a line of text\n", "not an e-mail (no From, To, Date or Subject header)"),
        "binary.csv": ((BAD / "binary.txt").read_bytes(), "binary content, not a CSV file"),
        "truncated.png": (png_bytes(600, 400)[:300], "corrupt or unreadable picture"),
        "text.jpg": (b"not a JPEG at all", "corrupt or unreadable picture"),
    }
    for name, (data, reason) in cases.items():
        (tmp_path / name).write_bytes(data)
        message = _one_line_error(tmp_path / name, settings)
        assert reason in message, (name, message)


# -- hostile files -------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "member"), [("deck.pptx", "ppt/slides/slide1.xml"),
                                              ("book.xlsx", "xl/worksheets/sheet1.xml"),
                                              ("novel.epub", "OEBPS/chapter1.xhtml"),
                                              ("lines.pptx", "ppt/slides/slide\n1.xml")])  # a name that breaks lines
def test_zip_bombs_are_refused_before_inflating(settings: Settings, tmp_path: Path, name: str, member: str) -> None:
    bomb = zip_bomb(tmp_path / name, member)
    assert bomb.stat().st_size < 50_000
    assert "refused as a zip bomb: member" in _one_line_error(bomb, settings)


def test_an_image_bomb_is_refused_from_its_header(settings: Settings, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bytes(60_000, 60_000, rows=2))  # 3.6 gigapixels claimed in a few hundred bytes
    assert bomb.stat().st_size < 2_000
    started = time.monotonic()
    message = _one_line_error(bomb, settings)
    assert time.monotonic() - started < 5
    assert message.startswith("refused as an image bomb") and "RAGQA_OCR_MAX_MEGAPIXELS" in message


def test_a_huge_csv_stops_at_the_text_limit_in_the_worker(settings: Settings, tmp_path: Path) -> None:
    """15 MB of rows with the real 10-million-character limit: refused in one line, within the worker's limits."""
    big = huge_csv(tmp_path / "orders.csv", 400_000)
    assert big.stat().st_size > 10 * 1024 * 1024
    started = time.monotonic()
    with ParserWorker(settings) as parser, pytest.raises(LoadError) as err:
        parser.load(big)
    assert time.monotonic() - started < 90
    assert "passes the 10,000,000-character text limit at row" in str(err.value)
    assert "RAGQA_MAX_TEXT_CHARS" in str(err.value) and "\n" not in str(err.value)


def test_a_huge_sheet_is_streamed_and_stopped_early(settings: Settings, tmp_path: Path) -> None:
    """Reading stops at the limit: the error names the row where it did, far before the sheet's end."""
    book = huge_xlsx(tmp_path / "orders.xlsx", 30_000)
    tight = settings.model_copy(update={"max_text_chars": 50_000})
    message = _one_line_error(book, tight)
    row = int(message.split("at row ")[1].split(" ")[0].replace(",", ""))
    assert message.startswith("sheet 'Orders' passes the 50,000-character text limit") and 500 < row < 2_000


def test_a_mail_with_hundreds_of_attachments_stays_within_limits(settings: Settings, tmp_path: Path) -> None:
    mail = mail_with_attachments(tmp_path / "notes.eml", 300)
    started = time.monotonic()
    with ParserWorker(settings) as parser:
        doc = parser.load(mail)
    assert time.monotonic() - started < 60
    assert len(doc.attachments) == settings.max_attachments == 100
    assert doc.attachments[-1].source == f"{mail}/note-100.txt"
    assert doc.attachments[41].text == "Note number 42 says the meeting room is R42.\n"
    assert doc.notes == ["300 attachments; only the first 100 were read (RAGQA_MAX_ATTACHMENTS)"]


def test_every_supported_suffix_has_a_loader(settings: Settings, tmp_path: Path) -> None:
    """No suffix in the one list falls through to 'unsupported' (the UI accepts every one of them)."""
    for suffix in SUPPORTED_SUFFIXES:
        empty = tmp_path / f"empty{suffix}"
        empty.write_bytes(b"")
        with pytest.raises(LoadError) as err:
            load_document(empty, settings)
        assert "unsupported file type" not in str(err.value), suffix
