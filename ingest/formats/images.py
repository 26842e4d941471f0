"""Pictures of text (.png, .jpg/.jpeg, .tif/.tiff) read with OCR; every frame of a TIFF is a page.

Pillow reads the picture's size from its header first, and a picture over
``RAGQA_OCR_MAX_MEGAPIXELS`` is refused as an image bomb before any pixel is decoded.  Camera
photos are turned upright by their EXIF orientation.  The text of every page is marked as OCR,
so citations say where it came from.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from ingest.document import LoadedDocument
from ingest.errors import LoadError, one_line
from ingest.formats.ocr import OcrPool, PageProgress, page_image_bytes
from ingest.safety import check_image_pixels
from rag_qa.config import Settings

#: the resolution Tesseract is told when a picture does not say (a phone photo or screenshot)
DEFAULT_DPI = 300


def _dpi(info: dict) -> int:
    dpi = info.get("dpi")
    try:
        value = int(round(float(dpi[0]))) if dpi else 0
    except (TypeError, ValueError, IndexError):
        value = 0
    return value if 70 <= value <= 1200 else DEFAULT_DPI


def load_image(path: Path, source: str, type_: str, settings: Settings,
               progress: PageProgress | None = None) -> LoadedDocument:
    """The OCR text of a picture (one part per TIFF frame, numbered from 1 when there are several)."""
    if not settings.ocr:
        raise LoadError("a picture needs OCR, which is switched off (RAGQA_OCR=false)")
    from PIL import Image, ImageOps, ImageSequence

    Image.MAX_IMAGE_PIXELS = int(settings.ocr_max_megapixels * 1_000_000)  # Pillow's own bomb check agrees
    texts: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                frames = getattr(image, "n_frames", 1)
                if frames > settings.ocr_max_pages:
                    raise LoadError(f"picture has {frames:,} frames, over the {settings.ocr_max_pages:,} page "
                                    "OCR limit (RAGQA_OCR_MAX_PAGES)")
                with OcrPool(settings, frames, progress) as pool:
                    for number, frame in enumerate(ImageSequence.Iterator(image)):
                        check_image_pixels(*frame.size, settings.ocr_max_megapixels, "picture")
                        upright = ImageOps.exif_transpose(frame)
                        pool.add(number, page_image_bytes(upright), _dpi(frame.info))
                    results = pool.results()
                texts = [results[i] for i in range(frames)]
    except LoadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise LoadError(f"refused as an image bomb ({one_line(exc)}; RAGQA_OCR_MAX_MEGAPIXELS)") from exc
    except MemoryError:
        raise
    except Exception as exc:  # Pillow raises many types on damaged pictures (truncated, bad headers)
        raise LoadError(f"corrupt or unreadable picture ({one_line(exc)})") from exc
    numbered = len(texts) > 1
    pieces = [(text, i if numbered else None, None, True) for i, text in enumerate(texts, 1) if text.strip()]
    if not pieces:
        raise LoadError("no text found (OCR read nothing in the picture)")
    return LoadedDocument.from_parts(source, type_, pieces)
