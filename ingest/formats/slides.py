"""Slide decks (.pptx) via python-pptx: one part per slide, numbered like the deck.

A slide's text is its title, then the text of its other shapes in reading order (top to bottom,
then left to right; grouped shapes opened up; tables as ``Header: value`` rows), then its
speaker notes after ``Notes:``.  The citation carries the slide number the way a PDF citation
carries the page.  The archive is checked for zip bombs before python-pptx opens it; python-pptx
parses its XML without resolving entities.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingest.document import LoadedDocument
from ingest.errors import LoadError, one_line
from ingest.formats.tables import table_lines
from ingest.safety import check_zip_archive
from rag_qa.config import Settings


def _shapes(shapes: Any) -> Iterator[Any]:
    """Every shape, group members in place of their group, in reading order (top, then left)."""
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    def position(shape: Any) -> tuple[int, int]:
        return (shape.top or 0, shape.left or 0)

    for shape in sorted(shapes, key=position):
        if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            yield from _shapes(shape.shapes)
        else:
            yield shape


def _shape_text(shape: Any) -> str:
    if getattr(shape, "has_table", False) and shape.has_table:
        rows = [[cell.text for cell in row.cells] for row in shape.table.rows]
        return "\n".join(table_lines(rows))
    if getattr(shape, "has_text_frame", False) and shape.has_text_frame:
        return "\n".join(p.text.strip() for p in shape.text_frame.paragraphs if p.text.strip())
    return ""


def slide_text(slide: Any) -> str:
    """Title, body text in reading order, then ``Notes: ...``."""
    title = slide.shapes.title
    blocks = [title.text_frame.text.strip()] if title is not None and title.has_text_frame else []
    title_id = title.shape_id if title is not None else None
    blocks += [_shape_text(s) for s in _shapes(slide.shapes) if s.shape_id != title_id]
    if slide.has_notes_slide:
        frame = slide.notes_slide.notes_text_frame
        notes = frame.text.strip() if frame is not None else ""
        if notes:
            blocks.append(f"Notes: {notes}")
    # python-pptx gives a line break inside a paragraph (<a:br>) as a vertical tab, which tokenizers delete as
    # a control character ("Line one\vLine two" read as "oneLine"): a newline it is
    return "\n\n".join(b for b in blocks if b).replace("\v", "\n")


def load_pptx(path: Path, source: str, settings: Settings) -> LoadedDocument:
    """One part per slide that has text; ``page`` is the slide's number in the deck."""
    check_zip_archive(path, settings.max_docx_uncompressed_mb, settings.max_zip_ratio, ".pptx")
    from pptx import Presentation

    try:
        deck = Presentation(str(path))
        pieces = [(text, number, None, False) for number, slide in enumerate(deck.slides, 1)
                  if (text := slide_text(slide))]
    except MemoryError:
        raise
    except Exception as exc:  # python-pptx/lxml raise many types on damaged files
        raise LoadError(f"corrupt or unreadable .pptx ({one_line(exc)})") from exc
    return LoadedDocument.from_parts(source, "pptx", pieces, unit="slide")
