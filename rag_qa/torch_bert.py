"""BERT's encoder forward pass in plain torch, for the plain sentence-transformers models a bulk ingest embeds
with (MiniLM is one).

A cold ``python -m ingest`` waits for the model before it embeds its first chunk.  transformers' ``BertModel``
costs about 3.5 s of one core to import (its modeling code pulls in ``torch.distributed.tensor``, hub kernels
and weight-conversion tables) and its ``AutoTokenizer`` 1.3 s more; this module needs torch and safetensors,
which load in milliseconds once torch is imported.  It is ``BertModel``'s eval-mode arithmetic, layer for
layer, on the same fp32 weights: ``tests/test_torch_bert.py`` pins its hidden states to transformers' within
1e-5.  Any other architecture, activation, position scheme or weight layout is left to transformers
(:func:`load_torch_bert` returns None).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

#: config.json fields (and the values) a model must have for this forward pass to be BertModel's
_REQUIRED = {"model_type": "bert", "hidden_act": "gelu"}
_DEFAULTS = {"position_embedding_type": "absolute", "is_decoder": False, "add_cross_attention": False,
             "chunk_size_feed_forward": 0}


@dataclass(frozen=True)
class BertShape:
    """The sizes the forward pass needs, read from ``config.json``."""

    hidden_size: int
    layers: int
    heads: int
    layer_norm_eps: float
    pad_token_id: int


def bert_shape(path: str | Path) -> BertShape | None:
    """The model folder's :class:`BertShape` when it is a plain BERT encoder with one fp32 ``model.safetensors``
    (None for anything else: transformers runs those)."""
    root = Path(path)
    try:
        config = json.loads((root / "config.json").read_text(encoding="utf-8"))
        if any(config.get(k) != v for k, v in _REQUIRED.items()):
            return None
        if any(config.get(k, v) != v for k, v in _DEFAULTS.items()):
            return None
        if not (root / "model.safetensors").is_file():
            return None
        return BertShape(int(config["hidden_size"]), int(config["num_hidden_layers"]),
                         int(config["num_attention_heads"]), float(config.get("layer_norm_eps", 1e-12)),
                         int(config.get("pad_token_id") or 0))
    except (OSError, ValueError, KeyError, TypeError):
        return None


class TorchBert:
    """``BertModel(...)(input_ids, attention_mask).last_hidden_state`` in eval mode (no dropout), token type 0."""

    def __init__(self, shape: BertShape, weights: dict[str, torch.Tensor]) -> None:
        self.shape = shape
        self.w = weights

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Hidden states ``(B, T, H)`` of a padded batch: ``input_ids`` and ``attention_mask`` are ``(B, T)``."""
        import torch
        import torch.nn.functional as F  # noqa: N812 - torch's own spelling

        w, s = self.w, self.shape
        B, T = input_ids.shape  # noqa: N806 - tensor dimensions
        H, nh = s.hidden_size, s.heads  # noqa: N806
        # embeddings: word + absolute position + token type 0, then LayerNorm       (B, T, H)
        x = (F.embedding(input_ids, w["embeddings.word_embeddings.weight"])
             + w["embeddings.position_embeddings.weight"][:T]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = F.layer_norm(x, (H,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], s.layer_norm_eps)
        # padding keys get the dtype's most negative number added to their scores  (B, 1, 1, T)
        bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for n in range(s.layers):
            p = f"encoder.layer.{n}."
            # queries, keys, values: (B, T, H) -> (B, nh, T, H / nh)
            q, k, v = (F.linear(x, w[p + f"attention.self.{name}.weight"], w[p + f"attention.self.{name}.bias"])
                       .view(B, T, nh, H // nh).transpose(1, 2) for name in ("query", "key", "value"))
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
            a = a.transpose(1, 2).reshape(B, T, H)
            a = F.linear(a, w[p + "attention.output.dense.weight"], w[p + "attention.output.dense.bias"])
            x = F.layer_norm(a + x, (H,), w[p + "attention.output.LayerNorm.weight"],
                             w[p + "attention.output.LayerNorm.bias"], s.layer_norm_eps)
            h = F.gelu(F.linear(x, w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"]))  # (B, T, 4H)
            h = F.linear(h, w[p + "output.dense.weight"], w[p + "output.dense.bias"])
            x = F.layer_norm(h + x, (H,), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"],
                             s.layer_norm_eps)
        return x


def load_torch_bert(path: str | Path) -> TorchBert | None:
    """The model at ``path`` as a :class:`TorchBert` (None when :func:`bert_shape` says it is not one, or its
    weights are not the fp32 tensors of a BertModel, with or without a ``bert.`` prefix)."""
    shape = bert_shape(path)
    if shape is None:
        return None
    import torch
    from safetensors.torch import load_file

    loaded = load_file(Path(path) / "model.safetensors")
    weights: dict[str, Any] = {k.removeprefix("bert."): v for k, v in loaded.items()}
    needed = ["embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
              "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias"]
    for n in range(shape.layers):
        needed += [f"encoder.layer.{n}.{name}.{kind}" for kind in ("weight", "bias") for name in (
            "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
            "attention.output.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm")]
    if any(k not in weights or weights[k].dtype != torch.float32 for k in needed):
        return None
    return TorchBert(shape, {k: weights[k] for k in needed})


__all__ = ["BertShape", "TorchBert", "bert_shape", "load_torch_bert"]
