"""Chunk metadata of issue 16 (what the page number counts, the sheet or chapter, OCR or not) through
both stores, and the format migration: an index written before it (format 1) stays readable, and
the next ingest brings it to format 2 without losing a chunk."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from rag_qa.config import Settings
from rag_qa.store import open_store, open_writer
from rag_qa.store.base import ChunkRow, DocumentRow, canonical_model_name

DIM = 384
ROWS = [
    ChunkRow("c-sheet", "/docs/sales.xlsx", 14, 0, 40, "Region: North; Revenue: 1.2M; Quarter: Q3", "row",
             "Sales", False),
    ChunkRow("c-scan", "/docs/scan.pdf", 2, 0, 44, "Each packet is labeled with a destination.", "page", None, True),
    ChunkRow("c-plain", "/docs/notes.txt", None, 0, 30, "Plain notes without any numbers"),
]


def _vectors(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, DIM)).astype("float32")
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _documents(rows: list[ChunkRow]) -> list[DocumentRow]:
    return [DocumentRow(r.source, f"sha-{r.id}", 0.0, 1, Path(r.source).suffix[1:], r.page, 1, "2026-01-01")
            for r in rows]


def _commit(index: Path, settings: Settings, kept: list[str], rows: list[ChunkRow], seed: int) -> None:
    with open_writer(index, settings) as writer:
        writer.commit_changes(kept, rows, _vectors(len(rows), seed), _documents(rows),
                              canonical_model_name("minilm"), DIM, {})


def _downgrade_to_format_1(index: Path, settings: Settings) -> None:
    """Make the live index look as code before issue 16 wrote it (no unit/section/ocr, format 1)."""
    if settings.store == "faiss":
        from rag_qa.store.faiss.layout import current_version_dir

        version = current_version_dir(index)
        con = sqlite3.connect(version / "docstore.sqlite")
        for column in ("unit", "section", "ocr"):
            con.execute(f"ALTER TABLE chunks DROP COLUMN {column}")
        con.commit()
        con.close()
        manifest = json.loads((version / "manifest.json").read_text())
        (version / "manifest.json").write_text(json.dumps({**manifest, "format_version": 1}))
    else:
        from rag_qa.store.pg.schema import connect, schema_name

        schema = schema_name(index)
        with connect(settings.pg_dsn) as conn:
            conn.execute(f"ALTER TABLE {schema}.chunks DROP COLUMN unit, DROP COLUMN section, DROP COLUMN ocr")
            conn.execute(f"UPDATE {schema}.meta SET format_version = 1")


def test_unit_section_and_ocr_round_trip(fresh_index: Path, backend_settings: Settings) -> None:
    _commit(fresh_index, backend_settings, [], ROWS, seed=1)
    with open_store(fresh_index, backend_settings) as store:
        got = {p.chunk_id: (p.page, p.unit, p.section, p.ocr) for p in store.get_passages([r.id for r in ROWS])}
        assert got == {"c-sheet": (14, "row", "Sales", False), "c-scan": (2, "page", None, True),
                       "c-plain": (None, None, None, False)}
        (hit,) = store.search_bm25("Revenue North", 1)
        assert (hit.chunk_id, hit.location, hit.ocr) == ("c-sheet", "sheet Sales, row 14", False)
        dense = store.search_dense(_vectors(3, 1)[1], 1)[0]
        assert (dense.chunk_id, dense.ocr) == ("c-scan", True)


def test_a_format_1_index_is_read_and_upgraded_by_the_next_ingest(fresh_index: Path,
                                                                  backend_settings: Settings) -> None:
    _commit(fresh_index, backend_settings, [], ROWS[:2], seed=2)
    _downgrade_to_format_1(fresh_index, backend_settings)
    with open_store(fresh_index, backend_settings) as store:  # read as it is: defaults for what it lacks
        old = {p.chunk_id: (p.page, p.unit, p.section, p.ocr, p.text)
               for p in store.get_passages(["c-sheet", "c-scan"])}
        assert old == {"c-sheet": (14, None, None, False, ROWS[0].text),
                       "c-scan": (2, None, None, False, ROWS[1].text)}
        assert [p.chunk_id for p in store.search_bm25("Revenue North", 1)] == ["c-sheet"]
        assert store.get_passages(["c-scan"])[0].location == "page 2"  # no unit: a page, as before

    new = ChunkRow("c-new", "/docs/deck.pptx", 3, 0, 26, "Speaker notes of slide three", "slide", None, False)
    _commit(fresh_index, backend_settings, [r.source for r in ROWS[:2]], [new], seed=3)
    with open_store(fresh_index, backend_settings) as store:
        after = {p.chunk_id: (p.page, p.unit, p.ocr) for p in store.get_passages(["c-sheet", "c-scan", "c-new"])}
        assert after == {"c-sheet": (14, None, False), "c-scan": (2, None, False), "c-new": (3, "slide", False)}
        assert store.chunk_count == 3
    if backend_settings.store == "faiss":
        from rag_qa.store.faiss.layout import FORMAT_VERSION, MANIFEST_FILE, current_version_dir

        manifest = json.loads((current_version_dir(fresh_index) / MANIFEST_FILE).read_text())
        assert manifest["format_version"] == FORMAT_VERSION == 2
    else:
        from rag_qa.store.pg.schema import connect, read_meta, schema_name

        with connect(backend_settings.pg_dsn) as conn:
            assert read_meta(conn, schema_name(fresh_index))["format_version"] == 2


def test_an_unknown_format_is_refused_with_what_to_do(fresh_index: Path) -> None:
    from rag_qa.store.base import IndexCorruptError
    from rag_qa.store.faiss.layout import current_version_dir

    settings = Settings(store="faiss")
    _commit(fresh_index, settings, [], ROWS[:1], seed=4)
    manifest_path = current_version_dir(fresh_index) / "manifest.json"
    manifest_path.write_text(json.dumps({**json.loads(manifest_path.read_text()), "format_version": 99}))
    with pytest.raises(IndexCorruptError, match="has format 99.*--rebuild"):
        open_store(fresh_index, settings)
