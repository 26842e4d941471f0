"""Optical character recognition with Tesseract: page images in, text out, several pages at once.

Scanned PDF pages and picture files (.png, .jpg, .tiff) go through here.  Each page image is
sent to the ``tesseract`` command (Debian's ``tesseract-ocr``, the ``make`` targets install it)
on its standard input as an uncompressed greyscale PNM, and its text comes back on standard
output: no temporary files, and a page that makes Tesseract hang or crash is that page's
one-line error.  :class:`OcrPool` keeps up to one Tesseract process per core busy (each limited
to one OpenMP thread, so they do not fight over the cores) while the caller renders the next
pages, and reports each finished page to a progress callback: the parser worker forwards it to
the progress bar, and it proves the worker is still making headway on a long scan.

Settings: ``RAGQA_OCR`` (on by default), ``RAGQA_OCR_LANG`` (Tesseract language codes, e.g.
``eng``, ``deu``, ``eng+fra``; each needs its ``tesseract-ocr-LANG`` package),
``RAGQA_OCR_DPI`` (resolution scanned PDF pages are rendered at), ``RAGQA_OCR_WORKERS`` (0:
one per core), ``RAGQA_OCR_MAX_PAGES`` and ``RAGQA_OCR_MAX_MEGAPIXELS``.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from typing import TYPE_CHECKING

from ingest.errors import LoadError, ToolMissing
from rag_qa.config import Settings

if TYPE_CHECKING:
    from PIL.Image import Image

PageProgress = Callable[[int, int], None]
_LANG = re.compile(r"^[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)*$")
INSTALL_HINT = "apt-get install tesseract-ocr tesseract-ocr-eng"


def worker_count(settings: Settings) -> int:
    """Pages OCRed at once: ``RAGQA_OCR_WORKERS``, or one per core this process may use."""
    if settings.ocr_workers > 0:
        return settings.ocr_workers
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@lru_cache(maxsize=1)
def _installed_languages(binary: str) -> frozenset[str]:
    out = subprocess.run([binary, "--list-langs"], capture_output=True, text=True, timeout=60, check=False)
    return frozenset(line.strip() for line in out.stdout.splitlines()[1:] if line.strip())


def tesseract_command(settings: Settings) -> list[str]:
    """The Tesseract command line for ``settings``, or a one-line :class:`LoadError` saying what to install."""
    binary = shutil.which("tesseract")
    if binary is None:
        raise ToolMissing(f"needs OCR, and Tesseract is not installed ({INSTALL_HINT}; or set RAGQA_OCR=false)")
    lang = settings.ocr_lang.strip()
    if not _LANG.match(lang):
        raise LoadError(f"RAGQA_OCR_LANG={lang!r} is not a Tesseract language list such as eng or eng+deu")
    missing = [code for code in lang.split("+") if code not in _installed_languages(binary)]
    if missing:
        packages = " ".join(f"tesseract-ocr-{code.lower().replace('_', '-')}" for code in missing)
        raise ToolMissing(f"Tesseract has no language data for {'+'.join(missing)} (install {packages}, "
                        "or change RAGQA_OCR_LANG)")
    return [binary, "stdin", "stdout", "-l", lang, "--psm", "3"]


def page_image_bytes(image: Image) -> bytes:
    """``image`` as greyscale PNM bytes (transparent areas on white: a transparent PNG is not a black page)."""
    from PIL import Image as PILImage

    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = PILImage.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = PILImage.alpha_composite(background, rgba)
    grey = image.convert("L")
    buffer = io.BytesIO()
    grey.save(buffer, format="PPM")
    return buffer.getvalue()


def clean_ocr_text(text: str) -> str:
    """Tesseract's output without form feeds, trailing spaces and runs of blank lines."""
    lines = [line.rstrip() for line in text.replace("\f", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def run_tesseract(command: list[str], image: bytes, dpi: int, timeout: float) -> str:
    """The text Tesseract reads in one page ``image`` (PNM bytes scanned at ``dpi``)."""
    env = dict(os.environ, OMP_THREAD_LIMIT="1")  # pages run in parallel: one thread each
    try:
        done = subprocess.run([*command, "--dpi", str(int(dpi))], input=image, capture_output=True,
                              timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired:
        raise LoadError(f"OCR of one page took longer than {timeout:g}s and was stopped "
                        "(RAGQA_PARSE_TIMEOUT_S)") from None
    except OSError as exc:
        raise ToolMissing(f"cannot run Tesseract ({exc.strerror or exc})") from exc
    if done.returncode != 0:
        reason = " ".join(done.stderr.decode("utf-8", "replace").split())[-200:] or f"exit code {done.returncode}"
        raise LoadError(f"Tesseract failed on a page ({reason})")
    return clean_ocr_text(done.stdout.decode("utf-8", "replace"))


class OcrPool:
    """OCR page images in parallel, in the order they were added; use as a context manager.

    ``add`` blocks while as many pages as there are workers (and as many again waiting) are in
    flight, so a long scan never holds more than a few rendered pages in memory.
    """

    def __init__(self, settings: Settings, total: int, progress: PageProgress | None = None) -> None:
        self.command = tesseract_command(settings)
        self.settings = settings
        self.total = total
        self.progress = progress or (lambda done, total: None)
        self.workers = worker_count(settings)
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="ocr")
        self._pending: deque[tuple[int, Future[str]]] = deque()
        self._results: dict[int, str] = {}
        self._done = 0

    def __enter__(self) -> OcrPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def add(self, key: int, image: bytes, dpi: int) -> None:
        """Queue one page (PNM bytes from :func:`page_image_bytes`) under ``key``."""
        while len(self._pending) >= 2 * self.workers:
            self._collect_oldest()
        timeout = self.settings.parse_timeout_s
        self._pending.append((key, self._executor.submit(run_tesseract, self.command, image, dpi, timeout)))

    def _collect_oldest(self) -> None:
        key, future = self._pending.popleft()
        self._results[key] = future.result()  # a page's LoadError fails the document
        self._done += 1
        self.progress(self._done, self.total)

    def results(self) -> dict[int, str]:
        """Wait for every queued page; ``{key: text}``."""
        while self._pending:
            self._collect_oldest()
        return self._results
