"""Checks run before a file is parsed: size limit, binary content, zip bombs (.docx, .pptx, .xlsx,
.epub are zip archives) and image bombs (pictures whose pixels would not fit in memory)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from ingest.errors import LoadError

_MB = 1024 * 1024
#: bytes that never appear in text files (C0 controls except \t \n \f \r and ESC)
_BINARY_BYTES = bytes(b for b in range(32) if b not in (9, 10, 12, 13, 27))


def check_size(path: Path, max_mb: float) -> int:
    """The file's size in bytes; :class:`LoadError` when it is over ``max_mb``."""
    size = path.stat().st_size
    if size > max_mb * _MB:
        raise LoadError(f"file is {size / _MB:.1f} MB, over the {max_mb:g} MB limit (RAGQA_MAX_FILE_MB)")
    return size


def looks_binary(data: bytes, sample: int = 8192) -> bool:
    """True when the first ``sample`` bytes hold a NUL or more than 10% control bytes."""
    head = data[:sample]
    if not head:
        return False
    if b"\x00" in head:
        return True
    controls = sum(head.count(bytes([b])) for b in _BINARY_BYTES)
    return controls / len(head) > 0.10


def check_zip_archive(path: Path, max_total_mb: float, max_ratio: float, kind: str = ".docx") -> None:
    """Refuse a ``kind`` file (.docx, .pptx, .xlsx, .epub) that is not a zip, or whose members would
    inflate suspiciously (zip bomb).

    Sizes come from the zip's central directory, before anything is decompressed; the total limit
    is ``RAGQA_MAX_DOCX_UNCOMPRESSED_MB`` for every one of these formats.
    """
    if not zipfile.is_zipfile(path):
        raise LoadError(f"not a valid {kind} (not a zip archive)")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise LoadError(f"not a valid {kind} ({exc})") from exc
    total = sum(i.file_size for i in infos)
    if total > max_total_mb * _MB:
        raise LoadError(f"refused as a zip bomb: {total / _MB:.0f} MB uncompressed, over the "
                        f"{max_total_mb:g} MB limit (RAGQA_MAX_DOCX_UNCOMPRESSED_MB)")
    for info in infos:
        if info.file_size > _MB and info.file_size > max_ratio * max(info.compress_size, 1):
            ratio = info.file_size / max(info.compress_size, 1)
            raise LoadError(f"refused as a zip bomb: member {info.filename} expands {ratio:.0f}x "
                            f"(limit {max_ratio:g}x, RAGQA_MAX_ZIP_RATIO)")


def check_image_pixels(width: int, height: int, max_megapixels: float, what: str = "image") -> None:
    """Refuse a picture of more than ``max_megapixels`` before its pixels are decoded (image bomb).

    A PNG or TIFF header can claim 100,000 x 100,000 pixels in a few hundred bytes; decoding it
    would need 10 GB.  The size comes from the header, so nothing is allocated for it.
    """
    pixels = int(width) * int(height)
    if pixels > max_megapixels * 1_000_000:
        raise LoadError(f"refused as an image bomb: {what} of {width:,} x {height:,} pixels "
                        f"({pixels / 1_000_000:,.0f} megapixels), over the {max_megapixels:g} megapixel limit "
                        "(RAGQA_OCR_MAX_MEGAPIXELS)")
