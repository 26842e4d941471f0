"""Plain text and Markdown: bytes to text in the right encoding (.txt, .md, .markdown; CSV uses it too).

UTF-8 (with or without a BOM), UTF-16/32 with a BOM, UTF-8 with a few damaged bytes, then
charset-normalizer's best guess for legacy 8-bit encodings; binary content is refused.
"""

from __future__ import annotations

from pathlib import Path

from ingest.errors import LoadError
from ingest.safety import looks_binary

#: byte-order marks of the encodings whose text is full of NUL bytes (UTF-32 before UTF-16: it starts alike)
_BOMS = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
         (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def wide_bom(data: bytes) -> str | None:
    """``utf-16``/``utf-32`` when ``data`` starts with that byte-order mark, else ``None``."""
    return next((codec for bom, codec in _BOMS if data.startswith(bom)), None)


def _mostly_utf8(data: bytes) -> str | None:
    """UTF-8 with its few broken bytes replaced (U+FFFD), when valid multi-byte characters are at
    least as many as the broken sequences.

    In a legacy 8-bit file (latin-1, cp1252) every accented letter is a broken sequence and
    valid multi-byte ones almost never occur, so it falls through to encoding detection; a
    UTF-8 file with a damaged byte or two keeps its accents instead of turning into mojibake.
    """
    text = data.decode("utf-8-sig", errors="replace")
    broken = text.count("\ufffd") - data.count("\ufffd".encode())
    valid = sum(1 for ch in text if ch > "\x7f" and ch != "\ufffd")
    return text if valid >= broken else None


def decode(data: bytes) -> str:
    """UTF-8 (BOM allowed), UTF-16/32 with a BOM, mostly-UTF-8, then charset-normalizer's best guess.

    charset-normalizer ranks cp1250 above cp1252 when both read the bytes equally well, which
    turns French "è" into "č"; on such a tie the far more common cp1252 wins.
    """
    wide = wide_bom(data)
    if wide is not None:
        try:
            return data.decode(wide).removeprefix("\ufeff")
        except UnicodeDecodeError as exc:
            raise LoadError(f"broken {wide.upper()} text ({exc.reason} at byte {exc.start})") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    text = _mostly_utf8(data)
    if text is not None:
        return text
    from charset_normalizer import from_bytes

    results = from_bytes(data)
    best = results.best()
    if best is None:
        raise LoadError("cannot detect the text encoding (not UTF-8, UTF-16 or a known 8-bit encoding)")
    for match in results:
        if (match.encoding == "cp1252" and match.chaos <= best.chaos and match.coherence >= best.coherence):
            best = match
            break
    return str(best)


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def load_text(path: Path) -> str:
    """A .txt/.md file's text (see the module docstring for the encodings read)."""
    return decode_text(path.read_bytes())


def decode_text(data: bytes, what: str = "a text file") -> str:
    """``data`` as text with ``\\n`` newlines, or :class:`LoadError` when it is binary (``what`` names the format)."""
    if wide_bom(data) is None and looks_binary(data):
        raise LoadError(f"binary content, not {what}")
    text = normalise_newlines(decode(data))
    if looks_binary(text[:8192].encode("utf-8", errors="replace")):
        raise LoadError(f"binary content, not {what}")
    return text
