"""Regenerate the committed test fixtures from the shared real corpus (run once, then commit).

    .venv/bin/python tests/data/make_fixtures.py [SHARED_DOCS_DIR]

``docs/`` holds small good files of every supported type (text from SQuAD's Wikipedia
articles and github/opensource.guide, CC BY-SA 4.0 / CC BY 4.0, see docs/SOURCES.md);
``bad/`` holds files ingestion must refuse, each for a different reason.
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[2] / "shared" / "data" / "docs"


def paragraphs(path: Path) -> list[str]:
    return [p for p in path.read_text(encoding="utf-8").split("\n\n") if p.strip()]


def latin1_txt(out: Path) -> None:
    """A few Normans paragraphs (with é, è, á...) saved as ISO-8859-1, not UTF-8."""
    paras = [p for p in paragraphs(SHARED / "wikipedia-squad/Normans.txt") if all(ord(c) < 256 for c in p)]
    with_accents = [p for p in paras if "é" in p][:2]
    text = "\n\n".join(paras[:3] + with_accents) + "\n"
    out.write_bytes(text.encode("latin-1"))


def markdown(out: Path) -> None:
    text = (SHARED / "markdown/code-of-conduct.md").read_text(encoding="utf-8")
    out.write_text(text[: text.index("\n\n", 3000)] + "\n", encoding="utf-8")


def html(out: Path) -> None:
    """Oxygen paragraphs inside page furniture (script, style, nav) that must not be indexed."""
    source = (SHARED / "wikipedia-squad/Oxygen.html").read_text(encoding="utf-8")
    body = source[source.index("<h1>"): source.index("</p>", source.index("<p>")) + 4]
    second = source.index("<p>", source.index("</p>"))
    body += "\n" + source[second: source.index("</p>", second) + 4]
    out.write_text(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Oxygen</title>\n"
        "<style>body { font-family: serif; } .hidden-style-marker { color: red; }</style>\n"
        "<script>var scriptMarker = 'SCRIPT_MARKER_SHOULD_NOT_BE_INDEXED';</script>\n</head>\n<body>\n"
        "<nav><a href=\"/\">NAV_MARKER_HOME</a> | <a href=\"/about\">About</a></nav>\n<article>\n"
        f"{body}\n</article>\n<script>document.write('SCRIPT_MARKER_TWO');</script>\n</body></html>\n",
        encoding="utf-8",
    )


def two_page_pdf(out: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    reader = PdfReader(SHARED / "wikipedia-squad/Packet_switching.pdf")
    writer = PdfWriter()
    for page in reader.pages[:2]:
        writer.add_page(page)
    with out.open("wb") as fh:
        writer.write(fh)


def docx_file(out: Path) -> None:
    import docx

    text = paragraphs(SHARED / "wikipedia-squad/Super_Bowl_50.txt")[1:4]
    document = docx.Document()
    document.add_heading("Super Bowl 50", level=1)
    for para in text:
        document.add_paragraph(para)
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Team", "Score"
    table.cell(1, 0).text, table.cell(1, 1).text = "Denver Broncos", "24"
    document.save(str(out))


def corrupt_pdf(out: Path) -> None:
    out.write_bytes(b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n" + bytes(range(256)) * 4)


def encrypted_pdf(out: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.add_page(PdfReader(SHARED / "pdf/crazyones-pdfa.pdf").pages[0])
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    with out.open("wb") as fh:
        writer.write(fh)


def not_a_zip_docx(out: Path) -> None:
    out.write_text("This is plain text saved with a .docx name; it is not a zip archive.\n", encoding="utf-8")


def zip_bomb_docx(out: Path) -> None:
    """A .docx-shaped zip whose document.xml would inflate from a few KB to 8 MB of zeros."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("[Content_Types].xml", "<?xml version=\"1.0\"?><Types/>")
        zf.writestr("word/document.xml", b"\x00" * (8 * 1024 * 1024))
    out.write_bytes(buf.getvalue())


def binary_txt(out: Path) -> None:
    out.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8)


def main() -> None:
    docs, bad = HERE / "docs", HERE / "bad"
    docs.mkdir(exist_ok=True)
    bad.mkdir(exist_ok=True)
    latin1_txt(docs / "normans_latin1.txt")
    markdown(docs / "code-of-conduct.md")
    html(docs / "oxygen.html")
    two_page_pdf(docs / "packet_switching_2p.pdf")
    docx_file(docs / "super_bowl.docx")
    corrupt_pdf(bad / "corrupt.pdf")
    encrypted_pdf(bad / "encrypted.pdf")
    not_a_zip_docx(bad / "not_a_zip.docx")
    zip_bomb_docx(bad / "bomb.docx")
    binary_txt(bad / "binary.txt")
    for path in sorted(docs.iterdir()) + sorted(bad.iterdir()):
        print(f"{path.relative_to(HERE)}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
