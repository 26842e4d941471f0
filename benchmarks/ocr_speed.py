"""OCR speed: pages per second of ingest's scanned-PDF path (pdfium rendering + Tesseract, pages in parallel).

    .venv/bin/python benchmarks/ocr_speed.py [--pdf FILE] [--pages 4] [--output benchmarks/results/ocr_speed.json]
    .venv/bin/python benchmarks/ocr_speed.py --smoke --output /tmp/ocr.json   # one page (for the tests)

The first ``--pages`` pages of a real text PDF (default: the shared corpus' ``Packet_switching.pdf``)
are rasterised at 200 DPI into a PDF that holds only their pictures, the way a scanner writes one;
then :func:`ingest.formats.pdf.load_pdf` reads it as ingest does (each page rendered at
``RAGQA_OCR_DPI``, Tesseract on up to one page per core).  Reported: seconds per page, pages per
second, the worker count, and word accuracy against the original PDF's text layer (the share of
its words that the OCR text has, in order; a cheap stand-in for the character error rate that
``tests/test_formats_pipeline.py`` checks on one sentence).  Also the CPU seconds a page costs
(Tesseract's and the rendering's, from ``getrusage``): on a machine whose cores other work
shares, wall-clock time says more about that work than about OCR, and CPU time does not.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rag_qa.env import set_offline_defaults

set_offline_defaults()

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PDF = REPO.parent / "shared" / "data" / "docs" / "wikipedia-squad" / "Packet_switching.pdf"
SMOKE_PDF = REPO / "tests" / "data" / "docs" / "packet_switching_2p.pdf"
SCAN_DPI = 200


def scanned_copy(pdf: Path, pages: int, out: Path) -> list[str]:
    """Write the first ``pages`` pages of ``pdf`` as an image-only PDF; return their text-layer texts."""
    import pypdfium2 as pdfium
    from pypdf import PdfReader

    texts = [page.extract_text() or "" for page in PdfReader(pdf).pages[:pages]]
    document = pdfium.PdfDocument(pdf)
    try:
        images = [document[i].render(scale=SCAN_DPI / 72, grayscale=True).to_pil() for i in range(len(texts))]
    finally:
        document.close()
    images[0].save(out, "PDF", resolution=SCAN_DPI, save_all=True, append_images=images[1:])
    return texts


def word_accuracy(reference: str, hypothesis: str) -> float:
    """Share of the reference's words found, in order, in the hypothesis."""
    ref, hyp = reference.split(), hypothesis.split()
    matcher = difflib.SequenceMatcher(None, ref, hyp, autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks()) / max(len(ref), 1)


def _cpu_seconds() -> float:
    """User + system CPU time of this process and of its finished children (the Tesseract runs)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def tesseract_version() -> str:
    out = subprocess.run(["tesseract", "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else "unknown"


def measure(pdf: Path, pages: int) -> dict:
    from ingest.formats.ocr import worker_count
    from ingest.formats.pdf import load_pdf
    from rag_qa.config import Settings

    settings = Settings()
    with tempfile.TemporaryDirectory() as tmp:
        scan = Path(tmp) / "scan.pdf"
        texts = scanned_copy(pdf, pages, scan)
        started, cpu = time.perf_counter(), _cpu_seconds()
        document = load_pdf(scan, str(scan), settings)
        seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    ocred = [text for part, text in document.segments() if part.ocr]
    if len(ocred) != len(texts):
        raise SystemExit(f"error: only {len(ocred)} of {len(texts)} pages were OCRed")
    accuracy = word_accuracy(" ".join(texts), " ".join(ocred))
    return {
        "pdf": pdf.name, "pages": len(texts), "scan_dpi": SCAN_DPI, "ocr_dpi": settings.ocr_dpi,
        "lang": settings.ocr_lang, "workers": worker_count(settings), "seconds": round(seconds, 2),
        "seconds_per_page": round(seconds / len(texts), 2), "pages_per_second": round(len(texts) / seconds, 3),
        "cpu_seconds_per_page": round(cpu / len(texts), 2),
        "word_accuracy": round(accuracy, 4), "tesseract": tesseract_version(),
        "machine": {"cpu": platform.processor() or platform.machine(), "cpus": len(os.sched_getaffinity(0)),
                    "load_average_1m": round(os.getloadavg()[0], 2)},  # other work on the cores slows OCR
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pdf", type=Path, default=None,
                    help="a text PDF to scan and read back (default: the shared Packet_switching.pdf)")
    ap.add_argument("--pages", type=int, default=4, help="pages to OCR (default 4)")
    ap.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "ocr_speed.json")
    ap.add_argument("--smoke", action="store_true", help="one page of the test fixture")
    args = ap.parse_args(argv)
    pdf = args.pdf or (SMOKE_PDF if args.smoke or not DEFAULT_PDF.exists() else DEFAULT_PDF)
    result = measure(pdf, 1 if args.smoke else args.pages)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
