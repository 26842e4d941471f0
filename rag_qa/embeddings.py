"""Sentence-transformers embeddings behind LangChain's ``Embeddings`` interface.

Vectors are L2-normalised so that FAISS inner product is cosine similarity.  The model is
resolved offline through :func:`rag_qa.models.resolve_model`, loaded lazily on first use and
shared by every instance in the process (loading MiniLM costs seconds; embedding a query, ms).

:meth:`SentenceTransformerEmbeddings.embed_token_ids` embeds chunks the caller has already
tokenised (ingest tokenises each chunk once, where it chunks it): the ids go through the model's
own modules (transformer, pooling, normalisation) without being tokenised again, and the result
is the same vector ``encode`` gives the text (within float rounding; ``tests/test_ingest_identity.py``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.embeddings import Embeddings

from rag_qa.config import Settings, get_settings
from rag_qa.env import set_offline_defaults
from rag_qa.models import resolve_model

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

_MODELS: dict[str, SentenceTransformer] = {}
_LOCK = threading.Lock()
#: model path -> (its own preprocessing gives the ids callers hand in, it adds token_type_ids)
_IDS_AGREE: dict[str, tuple[bool, bool]] = {}
#: the features a text-only sentence-transformers model's preprocessing makes (ids are enough to rebuild them)
_TEXT_FEATURES = {"input_ids", "attention_mask", "token_type_ids", "modality"}
log = logging.getLogger(__name__)


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


def loaded_model_paths() -> list[str]:
    """Paths of the models loaded so far in this process (lets tests check laziness)."""
    return list(_MODELS)


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

    def embed_token_ids(self, ids: Sequence[Any], texts: Sequence[str]) -> np.ndarray:
        """:meth:`embed_array` of ``texts``, from each text's token ids (the model tokenizer's, special
        tokens included) instead of tokenising the texts again.

        The ids are checked once per model against the model's own preprocessing of a few of the
        texts; a model that builds its features otherwise (a prompt, other inputs) or ids longer
        than its ``max_seq_length`` (which it would truncate) take :meth:`embed_array`'s path.
        Batches of ``batch_size`` by length, longest first, as ``encode`` forms them.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype="float32")
        model = self.model
        if any(len(x) > model.max_seq_length for x in ids) or not self._ids_agree(model, ids, texts):
            return self.embed_array(list(texts))
        import torch

        pad = model.tokenizer.pad_token_id or 0
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        out = np.zeros((len(ids), self.dimension), dtype="float32")
        with torch.inference_mode():
            for first in range(0, len(order), self.batch_size):
                batch = order[first:first + self.batch_size]
                width = len(ids[batch[0]])
                input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, i in enumerate(batch):
                    input_ids[row, :len(ids[i])] = torch.as_tensor(np.asarray(ids[i], dtype="int64"))
                    mask[row, :len(ids[i])] = 1
                features: dict[str, Any] = {"input_ids": input_ids, "attention_mask": mask, "modality": "text"}
                if _IDS_AGREE[self._spec.path][1]:
                    features["token_type_ids"] = torch.zeros_like(input_ids)
                vectors = model(features)["sentence_embedding"]
                vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
                out[batch] = vectors.float().cpu().numpy()
        return out

    def _ids_agree(self, model: SentenceTransformer, ids: Sequence[Any], texts: Sequence[str]) -> bool:
        """Does ``model``'s own preprocessing turn (a few of) ``texts`` into ``ids`` and nothing else?"""
        path = self._spec.path
        if path not in _IDS_AGREE:
            sample = list(range(min(8, len(texts))))
            features = model.preprocess([texts[i] for i in sample])
            types = features.get("token_type_ids")
            agree = (set(features) <= _TEXT_FEATURES and features.get("modality", "text") == "text"
                     and getattr(model, "default_prompt_name", None) is None
                     and getattr(model, "truncate_dim", None) is None
                     and (types is None or not bool(types.any())))
            if agree:
                mask = features["attention_mask"].bool()
                agree = all(features["input_ids"][row][mask[row]].tolist() == [int(x) for x in ids[i]]
                            for row, i in enumerate(sample))
            if not agree:
                log.info("embedding model %s builds its inputs otherwise; embedding chunk texts", self.model_name)
            _IDS_AGREE[path] = (agree, types is not None)
        return _IDS_AGREE[path][0]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_array([text])[0].tolist()
