"""Sentence-transformers embeddings behind LangChain's ``Embeddings`` interface.

Vectors are L2-normalised so that FAISS inner product is cosine similarity.  The model is
resolved offline through :func:`rag_qa.models.resolve_model`, loaded lazily on first use and
shared by every instance in the process (loading MiniLM costs seconds; embedding a query, ms).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np
from langchain_core.embeddings import Embeddings

from rag_qa.config import Settings, get_settings
from rag_qa.env import set_offline_defaults
from rag_qa.models import resolve_model

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

_MODELS: dict[str, SentenceTransformer] = {}
_LOCK = threading.Lock()


def load_sentence_transformer(path: str) -> SentenceTransformer:
    """The process-wide SentenceTransformer for ``path`` (loaded once, then cached)."""
    with _LOCK:
        model = _MODELS.get(path)
        if model is None:
            set_offline_defaults()
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            model = SentenceTransformer(path, model_kwargs={"use_safetensors": True})  # never unpickle weights
            _MODELS[path] = model
        return model


class SentenceTransformerEmbeddings(Embeddings):
    """LangChain ``Embeddings`` over a local sentence-transformers model, normalised vectors."""

    def __init__(self, model: str | None = None, *, batch_size: int | None = None,
                 settings: Settings | None = None) -> None:
        settings = settings or get_settings()
        self._spec = resolve_model(model or settings.embedding_model, kind="embedding model")
        self.batch_size = batch_size or settings.embed_batch_size

    @property
    def model_name(self) -> str:
        """Canonical name recorded in an index manifest (the alias, e.g. ``minilm``)."""
        return self._spec.name

    @property
    def model_path(self) -> str:
        return self._spec.path

    @property
    def model(self) -> SentenceTransformer:
        return load_sentence_transformer(self._spec.path)

    @property
    def dimension(self) -> int:
        model = self.model
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dim = getter()
        if dim is None:  # pragma: no cover - every sentence-transformers model we ship has one
            raise RuntimeError(f"embedding model {self.model_name} does not report its dimension")
        return int(dim)

    def embed_array(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` as a float32 ``(n, dimension)`` array of unit vectors."""
        if not texts:
            return np.zeros((0, self.dimension), dtype="float32")
        vectors = self.model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype="float32")

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_array([text])[0].tolist()
