"""The plain-torch BERT a bulk ingest embeds with (rag_qa/torch_bert.py): transformers' ``BertModel`` to within
1e-5 on the shipped MiniLM, sentence-transformers' token ids, transformers for anything that is not a plain
fp32 BERT, and none of transformers' modeling code or tokenizer classes imported on the way."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rag_qa.embeddings import PlainEncoder, plain_shape
from rag_qa.models import resolve_model
from rag_qa.torch_bert import TorchBert, bert_shape, load_torch_bert

MINILM = Path(resolve_model("minilm").path)
TEXTS = ["short", "The Normans were the people who in the 10th and 11th centuries gave their name to Normandy.",
         "Oxygen is a chemical element with symbol O and atomic number 8. " * 3, "word " * 400]


@pytest.fixture(scope="module")
def plain() -> PlainEncoder:
    shape = plain_shape(str(MINILM))
    assert shape is not None
    return PlainEncoder(str(MINILM), shape)


def padded(ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, ids))
    input_ids = torch.tensor([x + [0] * (width - len(x)) for x in ids])
    mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids])
    return input_ids, mask


def test_hidden_states_are_transformers_bert_model(plain: PlainEncoder) -> None:
    from transformers import AutoModel

    assert isinstance(plain.model, TorchBert)
    input_ids, mask = padded(plain.ids_of(TEXTS))
    assert input_ids.shape[1] == plain.shape.max_seq_length, "the long text is truncated, the batch padded"
    reference = AutoModel.from_pretrained(str(MINILM), use_safetensors=True).eval()
    with torch.inference_mode():
        ours = plain.model(input_ids, mask)
        theirs = reference(input_ids=input_ids, attention_mask=mask, token_type_ids=torch.zeros_like(input_ids))[0]
    real = mask.bool()  # padded positions are never read (pooling masks them)
    assert float((ours[real] - theirs[real]).abs().max()) < 1e-5


def test_ids_are_sentence_transformers_own(plain: PlainEncoder) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(MINILM))
    expected = tokenizer(TEXTS, truncation="longest_first", max_length=plain.shape.max_seq_length)["input_ids"]
    assert plain.ids_of(TEXTS) == expected
    assert plain.pad_token_id == tokenizer.pad_token_id


def test_anything_but_a_plain_fp32_bert_is_left_to_transformers(tmp_path: Path) -> None:
    def variant(name: str, config_change: dict | None = None, fp16: bool = False) -> Path:
        folder = tmp_path / name
        shutil.copytree(MINILM, folder)
        config = json.loads((folder / "config.json").read_text()) | (config_change or {})
        (folder / "config.json").write_text(json.dumps(config))
        if fp16:
            from safetensors.torch import load_file, save_file

            weights = load_file(folder / "model.safetensors")
            save_file({k: v.half() if v.is_floating_point() else v for k, v in weights.items()},
                      folder / "model.safetensors")
        return folder

    assert bert_shape(MINILM) is not None and load_torch_bert(MINILM) is not None
    for name, change in [("act", {"hidden_act": "gelu_new"}), ("roberta", {"model_type": "roberta"}),
                         ("relative", {"position_embedding_type": "relative_key"}), ("decoder", {"is_decoder": True})]:
        assert bert_shape(variant(name, change)) is None, name
    half = variant("fp16", fp16=True)
    assert bert_shape(half) is not None and load_torch_bert(half) is None
    # transformers runs the fp16 copy, through the same plain pipeline
    shape = plain_shape(str(half))
    assert shape is not None
    other = PlainEncoder(str(half), shape)
    assert not isinstance(other.model, TorchBert)
    input_ids, mask = padded(other.ids_of(TEXTS[:2]))
    with torch.inference_mode():
        assert np.isfinite(other(input_ids, mask).float().numpy()).all()


def test_a_bulk_embed_imports_neither_transformers_models_nor_sentence_transformers() -> None:
    """What a cold ingest loads for MiniLM (the point of this module): torch, safetensors, tokenizers."""
    code = (
        "import sys; from rag_qa.embeddings import SentenceTransformerEmbeddings\n"
        "e = SentenceTransformerEmbeddings('minilm'); e.load_for_token_ids()\n"
        "from ingest.chunking import encoder_ids, load_core_tokenizer\n"
        "texts = ['The Normans gave their name to Normandy.', 'short']\n"
        "v = e.embed_token_ids(encoder_ids(load_core_tokenizer('minilm'), texts), texts)\n"
        "assert v.shape == (2, 384), v.shape\n"
        "print(sorted(m for m in sys.modules if m.startswith(('transformers.modeling', 'transformers.models',"
        " 'transformers.tokenization', 'sentence_transformers'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
