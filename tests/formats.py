"""Files of the formats added by issue 16, made at test time from the committed real texts.

Slides, workbooks, CSV/TSV, e-books and mails are written with the libraries people make them
with (python-pptx, openpyxl, csv, the EPUB 3 zip layout, the standard ``email`` package) from the
SQuAD paragraphs in ``data/docs`` (CC BY-SA 4.0, Wikipedia contributors) and a few public facts
(chemical elements, Super Bowl 50 teams, rivers), as ``data/SOURCES.md`` says.  The scanned PDF
and the pictures are pages of ``data/docs/packet_switching_2p.pdf`` rasterised with pdfium, so
their true text is known.  Hostile makers (zip bombs, a huge sheet, an image bomb, a mail with
hundreds of attachments) write into a folder the test owns; nothing here touches the repository.
"""

from __future__ import annotations

import csv
import io
import struct
import zipfile
import zlib
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
DOCS = DATA / "docs"
FORMATS = DATA / "formats"
PACKET_PDF = DOCS / "packet_switching_2p.pdf"

#: a sentence of page 2 of PACKET_PDF that OCR of its rasterised copy must recover (CER < 5%)
SCAN_SENTENCE = ("Each packet is labeled with a destination address, source address, and port numbers. "
                 "It may also be labeled with the sequence number of the packet.")
ELEMENTS = [  # public facts: name, symbol, atomic number, year of discovery
    ("Element", "Symbol", "Atomic number", "Discovered"),
    ("Hydrogen", "H", 1, 1766), ("Helium", "He", 2, 1895), ("Carbon", "C", 6, None),
    ("Nitrogen", "N", 7, 1772), ("Neon", "Ne", 10, 1898), ("Sodium", "Na", 11, 1807),
]
RIVERS = [("City", "Country", "River"), ("Warsaw", "Poland", "Vistula"), ("Rouen", "France", "Seine"),
          ("London", "United Kingdom", "Thames")]


def paragraphs(name: str) -> list[str]:
    """The paragraphs of a committed text document (the title line first)."""
    from ingest.loaders import load_document
    from rag_qa.config import Settings

    text = load_document(DOCS / name, Settings()).text
    return [p.strip() for p in text.split("\n\n") if p.strip()]


# ---------------------------------------------------------------------------- office files


def make_pptx(path: Path) -> Path:
    """Two slides about oxygen (title, bullet, speaker notes) and a third with a table."""
    from pptx import Presentation
    from pptx.util import Inches

    oxygen = paragraphs("oxygen.html")
    deck = Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[1])
    first.shapes.title.text = "Oxygen"
    first.placeholders[1].text_frame.text = oxygen[1]
    second = deck.slides.add_slide(deck.slide_layouts[1])
    second.shapes.title.text = "Oxygen in living organisms"
    second.placeholders[1].text_frame.text = "Proteins, nucleic acids, carbohydrates and fats contain oxygen."
    second.notes_slide.notes_text_frame.text = oxygen[2]
    third = deck.slides.add_slide(deck.slide_layouts[5])
    third.shapes.title.text = "Light elements"
    table = third.shapes.add_table(3, 2, Inches(1), Inches(2), Inches(6), Inches(2)).table
    for r, row in enumerate([("Element", "Symbol"), ("Hydrogen", "H"), ("Helium", "He")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    deck.save(str(path))
    return path


def make_xlsx(path: Path) -> Path:
    """A title sheet and an "Elements" sheet with a header row, values and one formula cell."""
    from openpyxl import Workbook

    book = Workbook()
    cover = book.active
    cover.title = "About"
    cover["A1"] = "Chemical elements, with the year each was discovered"
    sheet = book.create_sheet("Elements")
    for row in ELEMENTS:
        sheet.append(list(row))
    sheet["F1"] = "Neutrons (formula)"
    sheet["F3"] = "=C3*2"  # openpyxl stores no cached value: a values-only reader sees an empty cell
    book.save(str(path))
    return path


def make_csv(path: Path, delimiter: str = ";") -> Path:
    """Cities and their rivers, semicolon-separated (a European spreadsheet export) by default."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, delimiter=delimiter).writerows(RIVERS)
    return path


# ---------------------------------------------------------------------------- e-book


def make_epub(path: Path) -> Path:
    """An EPUB 3 of two Normans chapters whose manifest lists them in the opposite order to the spine."""
    normans = paragraphs("normans_latin1.txt")
    chapters = {"dynasty.xhtml": ("The Norman dynasty", normans[2]), "origins.xhtml": ("Origins", normans[1])}

    def xhtml(title: str, body: str) -> str:
        return ('<?xml version="1.0" encoding="utf-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><head>'
                f"<title>{title}</title></head><body><h1>{title}</h1><p>{body}</p></body></html>")

    opf = """<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">
 <metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:identifier id="id">normans-test</dc:identifier>
  <dc:title>Normans</dc:title><dc:language>en</dc:language></metadata>
 <manifest>
  <item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>
  <item id="dynasty" href="text/dynasty.xhtml" media-type="application/xhtml+xml"/>
  <item id="origins" href="text/origins.xhtml" media-type="application/xhtml+xml"/>
 </manifest>
 <spine><itemref idref="origins"/><itemref idref="dynasty"/></spine>
</package>"""
    container = ('<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:'
                 'container"><rootfiles><rootfile full-path="OEBPS/content.opf" '
                 'media-type="application/oebps-package+xml"/></rootfiles></container>')
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        zf.writestr("META-INF/container.xml", container)
        zf.writestr("OEBPS/content.opf", opf)
        zf.writestr("OEBPS/nav.xhtml", xhtml("Contents", "Origins; The Norman dynasty"))
        for name, (title, body) in chapters.items():
            zf.writestr(f"OEBPS/text/{name}", xhtml(title, body), compress_type=zipfile.ZIP_DEFLATED)
    return path


# ---------------------------------------------------------------------------- mail


def first_page_pdf(path: Path) -> Path:
    """Page 1 of PACKET_PDF alone (the mail's attachment)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.add_page(PdfReader(PACKET_PDF).pages[0])
    with path.open("wb") as fh:
        writer.write(fh)
    return path


def make_eml(path: Path, scratch: Path) -> Path:
    """A mail with a plain and an HTML body, a PDF, a program (not read), a corrupt PDF and an inline logo."""
    message = EmailMessage()
    message["From"] = "Ada Lovelace <ada@example.org>"
    message["To"] = "Reading group <group@example.org>"
    message["Date"] = format_datetime(datetime(2024, 3, 8, 9, 30, tzinfo=UTC))
    message["Subject"] = "Notes on packet switching"
    body = "Hello all, the chapter on packet switching is attached for Thursday."
    message.set_content(body)
    message.add_alternative(f"<html><body><p>{body}</p><img src='cid:logo'></body></html>", subtype="html")
    logo = png_bytes(8, 8)
    message.get_payload()[1].add_related(logo, "image", "png", cid="<logo>")
    message.add_attachment(first_page_pdf(scratch / "page1.pdf").read_bytes(), maintype="application",
                           subtype="pdf", filename="packet_switching.pdf")
    message.add_attachment(b"MZ\x90\x00" + bytes(64), maintype="application", subtype="octet-stream",
                           filename="setup.exe")
    message.add_attachment(b"%PDF-1.7\n" + bytes(range(256)) * 4, maintype="application", subtype="pdf",
                           filename="broken.pdf")
    path.write_bytes(message.as_bytes())
    return path


def mail_with_attachments(path: Path, count: int) -> Path:
    """A mail with ``count`` small text attachments (``note-1.txt`` ...), each one sentence."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.org", "b@example.org", f"{count} notes"
    message.set_content("Notes attached.")
    for i in range(1, count + 1):
        message.add_attachment(f"Note number {i} says the meeting room is R{i}.\n", filename=f"note-{i}.txt")
    path.write_bytes(message.as_bytes())
    return path


# ---------------------------------------------------------------------------- scans and pictures


def render_page(index: int, dpi: int, crop: tuple[float, float] | None = None):  # noqa: ANN201 - a PIL image
    """Page ``index`` of PACKET_PDF as a greyscale picture; ``crop`` keeps that vertical share (top, bottom)."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(PACKET_PDF)
    try:
        image = pdf[index].render(scale=dpi / 72, grayscale=True).to_pil()
    finally:
        pdf.close()
    if crop is not None:
        image = image.crop((0, int(image.height * crop[0]), image.width, int(image.height * crop[1])))
    return image


def make_scanned_pdf(path: Path, dpi: int = 200) -> Path:
    """Page 2 of PACKET_PDF as a PDF holding only a picture of the page (no text layer), like a scanner's."""
    render_page(1, dpi).save(path, "PDF", resolution=dpi)
    return path


def make_png(path: Path) -> Path:
    """The top fifth of page 1 as a PNG screenshot (transparent margin, to check it is read on white)."""
    from PIL import Image

    page = render_page(0, 200, (0.08, 0.28)).convert("RGBA")
    canvas = Image.new("RGBA", (page.width, page.height + 40), (0, 0, 0, 0))
    canvas.paste(page, (0, 40))
    canvas.save(path, dpi=(200, 200))
    return path


def make_tiff(path: Path) -> Path:
    """Two frames (two strips of page 2), like a multi-page fax."""
    frames = [render_page(1, 200, (0.18, 0.28)), render_page(1, 200, (0.55, 0.65))]
    frames[0].save(path, save_all=True, append_images=frames[1:], dpi=(200, 200), compression="tiff_deflate")
    return path


def make_photo_of_text(path: Path) -> Path:
    """A JPEG 'photo' of two sentences of the ``super_bowl.docx`` paragraphs (SQuAD "Super_Bowl_50"),
    set in Pillow's bundled font, stored rotated with an EXIF tag saying how to turn it upright."""
    from PIL import Image, ImageDraw, ImageFont

    lines = ["The Broncos took an early lead in Super Bowl 50 and never trailed.",
             "Denver linebacker Von Miller was named Super Bowl MVP, recording",
             "five solo tackles, 2½ sacks, and two forced fumbles."]
    font = ImageFont.load_default(size=34)
    image = Image.new("L", (1400, 60 + 50 * len(lines)), 255)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((30, 30 + 50 * i), line, fill=0, font=font)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: turn 90° clockwise to view (the pixels are stored turned left)
    image.rotate(90, expand=True).save(path, "JPEG", quality=92, exif=exif, dpi=(300, 300))
    return path


def png_bytes(width: int, height: int, rows: int | None = None) -> bytes:
    """A greyscale PNG whose header says ``width`` x ``height``; only ``rows`` rows of data (all when None).

    With a huge size and few rows it is an image bomb: a few hundred bytes claiming gigapixels.
    """
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    stream = zlib.compressobj(9)
    raw = b"".join(stream.compress(b"\x00" + b"\xff" * width) for _ in range(height if rows is None else rows))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw + stream.flush())
            + chunk(b"IEND", b""))


# ---------------------------------------------------------------------------- hostile


def zip_bomb(path: Path, member: str) -> Path:
    """A zip shaped like ``path``'s format whose ``member`` inflates from a few KB to 8 MB of zeros."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        zf.writestr(member, b"\x00" * (8 * 1024 * 1024))
    path.write_bytes(buffer.getvalue())
    return path


def huge_csv(path: Path, rows: int) -> Path:
    """A CSV of ``rows`` rows of three columns, written in pieces."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Order", "Customer", "Amount"])
        for start in range(1, rows + 1, 10_000):
            writer.writerows((i, f"customer-{i % 977}", f"{i * 7 % 10_000}.{i % 100:02d}")
                             for i in range(start, min(start + 10_000, rows + 1)))
    return path


def huge_xlsx(path: Path, rows: int) -> Path:
    """A workbook of ``rows`` rows (written in openpyxl's streaming mode)."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Orders")
    sheet.append(["Order", "Customer", "Amount"])
    for i in range(1, rows + 1):
        sheet.append([i, f"customer-{i % 977}", i * 7 % 10_000])
    book.save(str(path))
    return path
