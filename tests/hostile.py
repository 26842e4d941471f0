"""Hostile files too big or too odd to commit, made at test time (the small ones are in data/bad/).

Each maker writes into a folder the test owns (``tmp_path``); nothing here touches the repo.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
BAD, ENCODINGS = DATA / "bad", DATA / "encodings"

#: a valid text for the odd file names: Normans sentences (CC BY-SA 4.0, as in data/docs)
ODD_NAME_TEXT = ("The Normans were the people who in the 10th and 11th centuries gave their name to "
                 "Normandy, a region in France. They were descended from Norse raiders and pirates.\n")
#: file names that are legal on POSIX but trip up naive code: a newline, unicode, a leading dash
ODD_NAMES = ("new\nline.txt", "résumé 東京.txt", "-rf --remove.md")


def deep_html(path: Path, depth: int = 100_000) -> Path:
    """``depth`` nested ``<div>`` s around one sentence: recursion-limit and quadratic-time bait."""
    path.write_text("<html><body>" + "<div>" * depth + "DEEP_TEXT_MARKER at the bottom."
                    + "</div>" * depth + "</body></html>", encoding="utf-8")
    return path


def long_line_txt(path: Path, megabytes: int = 30) -> Path:
    """One ``megabytes`` MB line of words with no newline, written in pieces (never all in memory)."""
    piece = ("lorem ipsum dolor sit amet " * 40).encode()
    with path.open("wb") as fh:
        for _ in range(megabytes * 1024 * 1024 // len(piece) + 1):
            fh.write(piece)
    return path


def many_paragraphs_html(path: Path, paragraphs: int) -> Path:
    """A page of ``paragraphs`` tiny paragraphs: small on disk, large as a parse tree."""
    path.write_text("<html><body>" + "<p>x</p>" * paragraphs + "</body></html>", encoding="utf-8")
    return path


def odd_named_files(folder: Path) -> list[Path]:
    """Valid text files under :data:`ODD_NAMES` in ``folder``."""
    paths = [folder / name for name in ODD_NAMES]
    for path in paths:
        path.write_text(ODD_NAME_TEXT, encoding="utf-8")
    return paths


def hostile_folder(root: Path) -> tuple[Path, dict[str, str], list[str]]:
    """A folder of everything hostile, plus the valid files among it.

    Returns (folder, {bad file name: words its error must contain}, [names that must be indexed]).
    An ``outside/`` folder beside it is what the symlinks point at.
    """
    folder, outside = root / "hostile", root / "outside"
    folder.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("SECRET_OUTSIDE_MARKER must never be indexed\n", encoding="utf-8")
    (outside / "notes").mkdir()
    (outside / "notes" / "more.txt").write_text("SECRET_OUTSIDE_MARKER in a folder\n", encoding="utf-8")
    for source in sorted(BAD.iterdir()) + sorted(ENCODINGS.iterdir()):
        shutil.copy2(source, folder / source.name)
    deep_html(folder / "deep.html")
    long_line_txt(folder / "long_line.txt")
    odd_named_files(folder)
    shutil.copy2(BAD / "corrupt.pdf", folder / "bad\nname.pdf")  # a bad file whose name has a newline
    os.symlink(outside / "secret.txt", folder / "escape.txt")
    os.symlink(outside / "notes", folder / "escape_dir")
    reasons = {
        "binary.txt": "binary content", "bomb.docx": "zip bomb", "corrupt.pdf": "corrupt or unreadable PDF",
        "encrypted.pdf": "password-protected", "not_a_zip.docx": "not a zip archive",
        "invalid_utf8.txt": "cannot detect the text encoding", "truncated.pdf": "corrupt or unreadable PDF",
        "script_only.html": "no text found", "empty.pdf": "empty file", "empty.docx": "not a zip archive",
        "empty.html": "no text found", "long_line.txt": "over the 10,000,000 limit",
        "bad\nname.pdf": "corrupt or unreadable PDF", "escape.txt": "outside the ingested folder",
        "escape_dir": "outside the ingested folder",
    }
    good = [p.name for p in ENCODINGS.iterdir()] + ["deep.html", *ODD_NAMES]
    return folder, reasons, good
