"""What runs on the Ray workers of ``python -m ingest --ray``: parse, chunk and embed.

The driver (:mod:`ingest.ray_pipeline`) builds the Ray Data pipeline from these:

- :func:`read_file` (Ray tasks, one file at a time): parses and chunks with the same
  :class:`~ingest.worker.ParserWorker` as on one machine, so every file keeps its time limit and
  memory cap and a bad one is one line (the worker process is kept for the next file that Ray
  worker reads), and chunk ids, offsets and token ids are the single-machine ones;
- :func:`explode` (fused into the same task by Ray Data): one row per chunk, then one ``file``
  row that says what happened to the file and how many chunks each of its documents has;
- :class:`EmbedChunks` (``map_batches`` on an actor pool): loads the embedding model once per
  actor and adds an ``embedding`` column (zeros on ``file`` rows), embedding from the chunks'
  token ids (``ids``, dropped from its output) as on one machine.

Rows carry only strings and numbers (``kind``, ``text``, ``info`` as JSON, ``ids``, ``embedding``): no
pickled objects travel between our code and the driver beyond what Ray itself moves.
Nothing here imports Ray: the module is as plain as the rest of ``ingest``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ingest.parse_pool import read_one
from ingest.worker import ParserWorker, pack_ids, unpack_ids
from rag_qa.config import Settings

if TYPE_CHECKING:
    from rag_qa.embeddings import SentenceTransformerEmbeddings

CHUNK, FILE = "chunk", "file"

_PARSERS: dict[str, ParserWorker] = {}  # settings JSON -> this process's parser worker


def settings_from(data: dict[str, Any]) -> Settings:
    """The driver's settings, as sent to the workers (JSON-ready dict)."""
    return Settings(**data)


def _parser(settings: Settings) -> ParserWorker:
    key = settings.model_dump_json()
    parser = _PARSERS.get(key)
    if parser is None:
        parser = _PARSERS[key] = ParserWorker(settings)
    return parser


def read_file(row: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Read and chunk one file (``row``: position, path, sha); its outcome as JSON strings (``info``: the
    file and its documents, ``chunks``: their chunks), decoded again only on the driver."""
    config = settings_from(settings)
    outcome = read_one(_parser(config), int(row["position"]), Path(str(row["path"])), str(row["sha"]))
    documents, chunks = [], []
    for doc in outcome.documents:
        documents.append({"source": doc.source, "type": doc.type, "pages": doc.pages, "n_chunks": len(doc.rows),
                          "notes": doc.notes, "failed": [list(f) for f in doc.failed], "skipped": doc.skipped})
        ids = doc.token_ids or [None] * len(doc.rows)
        chunks.extend({"file": str(outcome.path), "id": r.id, "source": r.source, "page": r.page, "start": r.start,
                       "end": r.end, "text": r.text, "unit": r.unit, "section": r.section, "ocr": r.ocr,
                       "ids": None if x is None else pack_ids(x)} for r, x in zip(doc.rows, ids, strict=True))
    info = {"position": outcome.position, "path": str(outcome.path), "sha": outcome.sha, "mtime": outcome.mtime,
            "size": outcome.size, "error": outcome.error, "remember": outcome.remember, "documents": documents,
            "chunks": len(chunks), "parse_s": outcome.parse_s, "chunk_s": outcome.chunk_s}
    return {"info": json.dumps(info, ensure_ascii=False), "chunks": json.dumps(chunks, ensure_ascii=False)}


def explode(row: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per chunk (``text`` to embed, ``info`` its place), then the file's own row."""
    out = []
    for chunk in json.loads(row["chunks"]):
        text, ids = chunk.pop("text"), chunk.pop("ids")
        out.append({"kind": CHUNK, "text": text, "info": json.dumps(chunk, ensure_ascii=False), "ids": ids or ""})
    out.append({"kind": FILE, "text": "", "info": row["info"], "ids": ""})
    return out


class EmbedChunks:
    """An actor's embedder: the model is loaded once, in ``__init__``; each call embeds a batch's chunks."""

    def __init__(self, settings: dict[str, Any], threads: int) -> None:
        import torch

        from rag_qa.embeddings import SentenceTransformerEmbeddings

        torch.set_num_threads(max(1, threads))
        self.embeddings: SentenceTransformerEmbeddings = SentenceTransformerEmbeddings(settings=settings_from(settings))
        self.embeddings.load_for_token_ids()
        self.dimension = self.embeddings.dimension

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        kinds = batch["kind"]
        chunks = [i for i, kind in enumerate(kinds) if kind == CHUNK]
        vectors = np.zeros((len(kinds), self.dimension), dtype="float32")
        if chunks:  # sorted by length into batches of embed_batch_size
            texts = [str(batch["text"][i]) for i in chunks]
            ids = [str(batch["ids"][i]) for i in chunks]
            if all(ids):
                vectors[chunks] = self.embeddings.embed_token_ids([unpack_ids(x) for x in ids], texts)
            else:
                vectors[chunks] = self.embeddings.embed_array(texts)
        return {"kind": kinds, "text": batch["text"], "info": batch["info"], "embedding": vectors}
