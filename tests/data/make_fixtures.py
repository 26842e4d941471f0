"""Regenerate the committed test fixtures from the shared real corpus (run once, then commit).

    .venv/bin/python tests/data/make_fixtures.py [--new-only] [SHARED_DOCS_DIR]

``docs/`` holds small good files of every supported type (text from SQuAD's Wikipedia
articles and github/opensource.guide, CC BY-SA 4.0 / CC BY 4.0, see docs/SOURCES.md);
``bad/`` holds files ingestion must refuse, each for a different reason; ``encodings/`` holds
valid text in other encodings (UTF-16, cp1252, Shift-JIS, UTF-8 with two damaged bytes) that must
be read, decoded.  ``--new-only`` writes just the issue #9 additions; ``--formats`` writes the one
committed issue #16 fixture, ``formats/super_bowl_table.pdf`` (needs matplotlib; the other issue #16
files are made at test time by ``tests/formats.py``).  Large or odd hostile files
(deep HTML, a 30 MB line, names with newlines, symlinks) are made at test time by ``tests/hostile.py``.
"""

from __future__ import annotations

import codecs
import io
import random
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
_ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
SHARED = Path(_ARGS[0]) if _ARGS else HERE.parents[2] / "shared" / "data" / "docs"


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


def invalid_utf8_txt(out: Path) -> None:
    """Printable ASCII and high bytes at random: not UTF-8, and no 8-bit encoding reads it as text."""
    rng = random.Random(9)
    out.write_bytes(bytes(rng.choice([rng.randrange(32, 127), rng.randrange(128, 256)]) for _ in range(1500)))


def truncated_pdf(out: Path) -> None:
    """The good two-page PDF cut off 200 bytes into its first content stream (a download cut short)."""
    data = (HERE / "docs" / "packet_switching_2p.pdf").read_bytes()
    out.write_bytes(data[: data.index(b"stream") + 200])


def script_only_html(out: Path) -> None:
    """A page whose only text is script and style: nothing to index."""
    out.write_text(
        "<!DOCTYPE html>\n<html><head><title></title><style>body { color: red; } /* STYLE_ONLY */</style>\n"
        "<script>document.write('SCRIPT_ONLY_TEXT');</script></head>\n"
        "<body><script>var onlyScript = 'SCRIPT_ONLY_TEXT';</script><noscript></noscript></body></html>\n",
        encoding="utf-8",
    )


def normans_text(paras: int = 3) -> str:
    """The first Normans paragraphs that have accents (é, —), as one text."""
    accented = [p for p in paragraphs(SHARED / "wikipedia-squad/Normans.txt") if "é" in p]
    return "\n\n".join(accented[:paras]) + "\n"


def utf16_texts(le: Path, be_html: Path) -> None:
    """Normans paragraphs as UTF-16 LE with a BOM, and the Oxygen page as UTF-16 BE HTML with a BOM."""
    le.write_bytes(codecs.BOM_UTF16_LE + normans_text().encode("utf-16-le"))
    page = (HERE / "docs" / "oxygen.html").read_text(encoding="utf-8").replace('charset="utf-8"', 'charset="utf-16"')
    be_html.write_bytes(codecs.BOM_UTF16_BE + page.encode("utf-16-be"))


def _encodes(text: str, codec: str) -> bool:
    try:
        text.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


def cp1252_md(out: Path) -> None:
    """opensource.guide paragraphs with curly apostrophes (bytes 0x92 in cp1252, not latin-1)."""
    text = (SHARED / "markdown/code-of-conduct.md").read_text(encoding="utf-8")
    paras = [p for p in text.split("\n\n") if "’" in p and _encodes(p, "cp1252")]
    out.write_bytes(("\n\n".join(paras[:4]) + "\n").encode("cp1252"))


#: written for these tests (not from the corpus): a few plain sentences about Tokyo
JAPANESE = (
    "東京は日本の首都であり、世界でも有数の大都市です。\n"
    "東京都の人口はおよそ千四百万人で、周辺の県を含む首都圏には三千万人以上が暮らしています。\n"
    "江戸時代には江戸と呼ばれ、徳川幕府が置かれていました。一八六八年に東京と改められました。\n"
    "電車や地下鉄の路線が網の目のように広がり、毎日多くの人が通勤に利用しています。\n"
)


def shift_jis_txt(out: Path) -> None:
    out.write_bytes(JAPANESE.encode("shift_jis"))


def damaged_utf8_txt(out: Path) -> None:
    """UTF-8 Normans paragraphs with two damaged bytes: read as UTF-8, the damage becomes U+FFFD."""
    accented = [p for p in paragraphs(SHARED / "wikipedia-squad/Normans.txt") if not p.isascii()]
    text = "\n\n".join([p for p in accented if "é" in p][:1] + [p for p in accented if "é" not in p][:4])
    data = bytearray((text + "\n").encode("utf-8"))
    first = data.index("é".encode())
    data[first + 1] = 0x28  # é's continuation byte overwritten
    middle = data.index(b" ", len(data) // 2) + 1
    data[middle:middle] = b"\xff"  # a stray byte between two words (after the next space)
    out.write_bytes(bytes(data))


def new_hostile_fixtures() -> None:
    """The encodings/ folder and the bad files added for issue #9 (run alone to leave the older,
    non-deterministic fixtures such as encrypted.pdf untouched)."""
    encodings, bad = HERE / "encodings", HERE / "bad"
    encodings.mkdir(exist_ok=True)
    utf16_texts(encodings / "normans_utf16le.txt", encodings / "oxygen_utf16be.html")
    cp1252_md(encodings / "code-of-conduct_cp1252.md")
    shift_jis_txt(encodings / "tokyo_shift_jis.txt")
    damaged_utf8_txt(encodings / "normans_damaged_utf8.txt")
    invalid_utf8_txt(bad / "invalid_utf8.txt")
    truncated_pdf(bad / "truncated.pdf")
    script_only_html(bad / "script_only.html")
    for name in ("empty.pdf", "empty.docx", "empty.html"):
        (bad / name).write_bytes(b"")


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
    new_hostile_fixtures()
    for path in sorted(docs.iterdir()) + sorted(bad.iterdir()) + sorted((HERE / "encodings").iterdir()):
        print(f"{path.relative_to(HERE)}: {path.stat().st_size} bytes")


def table_pdf(out: Path) -> None:
    """A one-page PDF with a paragraph and a ruled table of the Super Bowl 50 teams (facts from the SQuAD
    "Super_Bowl_50" article), drawn by matplotlib with real (TrueType) text so that a PDF reader can
    extract it: the kind of table pdfplumber must keep row by row."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["pdf.fonttype"] = 42
    import matplotlib.pyplot as plt

    intro = paragraphs(SHARED / "wikipedia-squad/Super_Bowl_50.txt")[1].split(". ")[0] + "."
    rows = [["Denver Broncos", "AFC", "12–4", "Gary Kubiak", "24"],
            ["Carolina Panthers", "NFC", "15–1", "Ron Rivera", "10"]]
    fig = plt.figure(figsize=(8.27, 11.69))
    fig.text(0.08, 0.93, "Super Bowl 50", fontsize=18, weight="bold")
    words, lines, line = intro.split(), [], ""
    for word in words:
        if len(line) + len(word) > 85:
            lines.append(line)
            line = ""
        line = f"{line} {word}".strip()
    fig.text(0.08, 0.9, "\n".join([*lines, line]), fontsize=10, va="top")
    ax = fig.add_axes((0.08, 0.62, 0.84, 0.12))
    ax.axis("off")
    table = ax.table(cellText=rows, colLabels=["Team", "Conference", "Record", "Head coach", "Points"],
                     loc="center", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(10)
    table.scale(1, 1.6)
    fig.text(0.08, 0.55, "The Broncos took an early lead in Super Bowl 50 and never trailed.", fontsize=10)
    fig.savefig(out, format="pdf")
    plt.close(fig)


if __name__ == "__main__":
    if "--formats" in sys.argv:
        (HERE / "formats").mkdir(exist_ok=True)
        table_pdf(HERE / "formats" / "super_bowl_table.pdf")
    elif "--new-only" in sys.argv:
        new_hostile_fixtures()
    else:
        main()
