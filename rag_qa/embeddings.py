"""Sentence-transformers embeddings behind LangChain's ``Embeddings`` interface.

Vectors are L2-normalised so that FAISS inner product is cosine similarity.  The model is
resolved offline through :func:`rag_qa.models.resolve_model`, loaded lazily on first use and
shared by every instance in the process (loading MiniLM costs seconds; embedding a query, ms).

:meth:`SentenceTransformerEmbeddings.embed_token_ids` embeds chunks the caller has already
tokenised (ingest tokenises each chunk once, where it chunks it) and is what a bulk ingest runs.
When the model folder is the plain sentence-transformers shape, a transformer followed by mean or
CLS pooling and normalisation (MiniLM is), it runs that transformer without sentence-transformers
(:class:`PlainEncoder`): importing sentence-transformers pulls in scikit-learn, SciPy and pandas,
about 2 s of a cold ingest's start on 2 cores before the first chunk can be embedded; a plain fp32
BERT runs as :class:`~rag_qa.torch_bert.TorchBert`, which spares transformers' modeling code and
tokenizer classes too (4.5 s more).  Any other shape, or ids that the model's own tokenizer would not
produce, go through sentence-transformers.
Either way the vector is the one ``encode`` gives the text, within float rounding
(``tests/test_ingest_identity.py``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.embeddings import Embeddings

from rag_qa.config import Settings, get_settings
from rag_qa.env import set_offline_defaults
from rag_qa.models import resolve_model

if TYPE_CHECKING:
    import torch
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


@dataclass(frozen=True)
class PlainShape:
    """A sentence-transformers model that is only a transformer, one pooling and (optionally) normalisation."""

    pooling: str  # "mean" or "cls"
    normalize: bool
    max_seq_length: int


_POOLING_KEYS = {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean"}


def plain_shape(path: str) -> PlainShape | None:
    """The shape of the model folder at ``path`` when transformers alone can run it as sentence-transformers
    does: ``modules.json`` lists a Transformer (the folder itself), a Pooling of mean or CLS tokens and
    optionally a Normalize; no prompts, no lower-casing, no extra arguments.  None for anything else."""
    root = Path(path)
    try:
        modules = json.loads((root / "modules.json").read_text(encoding="utf-8"))
        kinds = [str(m["type"]).rsplit(".", 1)[-1] for m in modules]
        if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]) or modules[0]["path"]:
            return None
        pooling = json.loads((root / modules[1]["path"] / "config.json").read_text(encoding="utf-8"))
        modes = [name for key, name in _POOLING_KEYS.items() if pooling.get(key)]
        others = [k for k, v in pooling.items() if k.startswith("pooling_mode") and v and k not in _POOLING_KEYS]
        if len(modes) != 1 or others:
            return None
        bert = json.loads((root / "sentence_bert_config.json").read_text(encoding="utf-8"))
        if set(bert) - {"max_seq_length", "do_lower_case"} or bert.get("do_lower_case"):
            return None
        extra = root / "config_sentence_transformers.json"
        st_config = json.loads(extra.read_text(encoding="utf-8")) if extra.is_file() else {}
        if st_config.get("prompts") or st_config.get("default_prompt_name"):
            return None
        return PlainShape(modes[0], len(kinds) == 3, int(bert["max_seq_length"]))
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


class PlainEncoder:
    """A :class:`PlainShape` model run without sentence-transformers: the transformer, then the pooling and
    normalisation sentence-transformers would apply (its ``Pooling`` and ``Normalize`` modules' arithmetic).

    A BERT encoder with fp32 safetensors and a ``tokenizer.json`` (MiniLM) runs as :class:`~rag_qa.torch_bert.
    TorchBert` with the ``tokenizers`` core of that file: neither transformers' modeling code nor its tokenizer
    classes are imported (about 4.5 s of one core at a cold ingest's start).  Anything else runs with
    transformers' ``AutoModel`` and ``AutoTokenizer``."""

    def __init__(self, path: str, shape: PlainShape) -> None:
        set_offline_defaults()
        from rag_qa.torch_bert import load_torch_bert

        self.shape = shape
        bert = load_torch_bert(path) if (Path(path) / "tokenizer.json").is_file() else None
        if bert is not None:
            from tokenizers import Tokenizer

            self.model: Any = bert
            self.dimension, self.pad_token_id = bert.shape.hidden_size, bert.shape.pad_token_id
            self.token_types = False  # TorchBert adds token type 0's embedding itself
            # the core transformers' fast tokenizer is built from (tests/test_chunking.py), special tokens
            # added, truncated as sentence-transformers truncates
            self._core = Tokenizer.from_file(str(Path(path) / "tokenizer.json"))
            self._core.no_padding()
            self._core.enable_truncation(shape.max_seq_length)
            return
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.model = AutoModel.from_pretrained(path, use_safetensors=True).eval()  # never unpickle weights
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self._core = None
        self.pad_token_id = self.tokenizer.pad_token_id or 0
        self.token_types = "token_type_ids" in self.tokenizer.model_input_names
        self.dimension = int(self.model.config.hidden_size)

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Sentence embeddings (normalised if the model normalises) of one padded batch."""
        import torch

        if self._core is not None:
            hidden = self.model(input_ids, attention_mask)
        else:
            inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if self.token_types:
                inputs["token_type_ids"] = torch.zeros_like(input_ids)
            hidden = self.model(**inputs)[0]
        if self.shape.pooling == "cls":
            vectors = hidden[:, 0]
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            vectors = (hidden * mask).sum(dim=1) / torch.clamp(mask.sum(dim=1), min=1e-9)
        if self.shape.normalize:
            vectors = torch.nn.functional.normalize(vectors, p=2, dim=-1)
        return vectors

    def ids_of(self, texts: list[str]) -> list[list[int]]:
        """What sentence-transformers would feed the transformer for ``texts`` (its tokenizer call)."""
        if self._core is not None:
            return [e.ids for e in self._core.encode_batch(texts)]
        return self.tokenizer(texts, truncation="longest_first", max_length=self.shape.max_seq_length)["input_ids"]


_PLAIN: dict[str, PlainEncoder | None] = {}  # model path -> its plain encoder (None: not a plain shape)


def load_plain_encoder(path: str) -> PlainEncoder | None:
    """The process-wide :class:`PlainEncoder` for ``path`` (None when the model is not a :class:`PlainShape`)."""
    with _LOCK:
        if path not in _PLAIN:
            shape = plain_shape(path)
            _PLAIN[path] = PlainEncoder(path, shape) if shape is not None else None
        return _PLAIN[path]


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
        plain = _PLAIN.get(self._spec.path)
        if plain is not None and self._spec.path not in _MODELS:  # loaded already: no second model for this
            return plain.dimension
        model = self.model
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dim = getter()
        if dim is None:  # pragma: no cover - every sentence-transformers model we ship has one
            raise RuntimeError(f"embedding model {self.model_name} does not report its dimension")
        return int(dim)

    def load_for_token_ids(self) -> None:
        """Load what :meth:`embed_token_ids` runs: the plain encoder, else the sentence-transformers model."""
        if load_plain_encoder(self._spec.path) is None:
            self.model  # noqa: B018 - the property loads and caches it

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

        The ids are checked once per model against what the model itself makes of a few of the
        texts; a model that builds its inputs otherwise (a prompt, other inputs), or ids longer than
        its ``max_seq_length`` (which it would truncate), take :meth:`embed_array`'s path.  Batches of
        ``batch_size`` by length, longest first, so a batch pads only to the longest of similar lengths.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype="float32")
        plain = load_plain_encoder(self._spec.path)
        limit = plain.shape.max_seq_length if plain is not None else self.model.max_seq_length
        if any(len(x) > limit for x in ids) or not self._ids_agree(plain, ids, texts):
            return self.embed_array(list(texts))
        import torch

        pad = plain.pad_token_id if plain is not None else (self.model.tokenizer.pad_token_id or 0)
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        out = np.zeros((len(ids), plain.dimension if plain is not None else self.dimension), dtype="float32")
        with torch.inference_mode():
            for first in range(0, len(order), self.batch_size):
                batch = order[first:first + self.batch_size]
                width = len(ids[batch[0]])
                input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, i in enumerate(batch):
                    input_ids[row, :len(ids[i])] = torch.as_tensor(np.asarray(ids[i], dtype="int64"))
                    mask[row, :len(ids[i])] = 1
                if plain is not None:
                    vectors = plain(input_ids, mask)
                else:
                    features: dict[str, Any] = {"input_ids": input_ids, "attention_mask": mask, "modality": "text"}
                    if _IDS_AGREE[self._spec.path][1]:
                        features["token_type_ids"] = torch.zeros_like(input_ids)
                    vectors = self.model(features)["sentence_embedding"]
                vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)  # as embed_array asks encode to
                out[batch] = vectors.float().cpu().numpy()
        return out

    def _ids_agree(self, plain: PlainEncoder | None, ids: Sequence[Any], texts: Sequence[str]) -> bool:
        """Does the model turn (a few of) ``texts`` into ``ids`` and nothing else?  Checked once per model."""
        path = self._spec.path
        if path not in _IDS_AGREE:
            sample = list(range(min(8, len(texts))))
            if plain is not None:
                made = plain.ids_of([texts[i] for i in sample])
                agree, types = all(made[row] == [int(x) for x in ids[i]] for row, i in enumerate(sample)), False
            else:
                agree, types = self._st_ids_agree(ids, texts, sample)
            if not agree:
                log.info("embedding model %s builds its inputs otherwise; embedding chunk texts", self.model_name)
            _IDS_AGREE[path] = (agree, types)
        return _IDS_AGREE[path][0]

    def _st_ids_agree(self, ids: Sequence[Any], texts: Sequence[str], sample: list[int]) -> tuple[bool, bool]:
        """(the sentence-transformers model's preprocessing gives ``ids`` and nothing else, it adds token_type_ids)."""
        model = self.model
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
        return agree, types is not None

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_array([text])[0].tolist()
