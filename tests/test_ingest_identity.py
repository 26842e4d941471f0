"""An ingest's chunks and vectors are what they were before chunking moved into the parser worker and
embedding started from token ids (issue 26): the same chunk ids, texts, offsets and metadata as the
in-process splitter on transformers' tokenizer, and the vectors ``encode`` gives the chunk texts
(within 1e-5).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from conftest import DOCS
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.chunking import chunk_document, encoder_ids, load_core_tokenizer, load_tokenizer, make_splitter
from ingest.loaders import load_document
from ingest.worker import family
from rag_qa.config import Settings
from rag_qa.embeddings import PlainShape, plain_shape
from rag_qa.models import resolve_model
from rag_qa.store.faiss.layout import FAISS_FILE
from rag_qa.store.faiss.reader import FaissStore


def _reference_rows(config: Settings) -> list[tuple]:
    """Every chunk of the test documents as the pipeline made them before: parsed, then chunked in this
    process with the splitter on transformers' tokenizer, files in name order."""
    splitter = make_splitter(load_tokenizer(config.embedding_model), config.chunk_tokens, config.chunk_overlap)
    rows = []
    for path in sorted(DOCS.iterdir()):
        for doc in family(load_document(path.resolve(), config)):
            rows.extend((r.id, r.source, r.page, r.start, r.end, r.text, r.unit, r.section, r.ocr)
                        for r in chunk_document(doc, splitter))
    return rows


def _vectors(store: FaissStore) -> np.ndarray:
    """The stored vectors in faiss id order (chunk ``i`` has faiss id ``i``)."""
    import faiss

    index = faiss.read_index(str(store.version_dir / FAISS_FILE))
    assert faiss.vector_to_array(index.id_map).tolist() == list(range(index.ntotal))
    return faiss.downcast_index(index.index).reconstruct_n(0, index.ntotal)


def test_chunks_and_vectors_are_the_ones_before(built_index: Path, embeddings) -> None:
    config = Settings()
    expected = _reference_rows(config)
    with FaissStore.open(built_index) as store:
        ids = store.all_chunk_ids()
        passages = store.get_passages(ids)
        got = [(p.chunk_id, p.source, p.page, p.start, p.end, p.text, p.unit, p.section, p.ocr) for p in passages]
        assert got == expected and len(got) > 20
        stored = _vectors(store)
    reference = embeddings.embed_array([row[5] for row in expected])  # sentence-transformers' encode of the texts
    assert float(np.max(np.abs(stored - reference))) < 1e-5


def test_embedding_from_token_ids_is_encode(embeddings) -> None:
    texts = [p.read_text(encoding="latin-1")[:n] for p, n in zip(sorted(DOCS.glob("*.[tm][xd]*")), (900, 400),
                                                                   strict=False)]
    texts += ["short", "a somewhat longer sentence about the Normans in Normandy"]
    core = load_core_tokenizer("minilm")
    by_ids = embeddings.embed_token_ids(encoder_ids(core, texts), texts)
    assert float(np.max(np.abs(by_ids - embeddings.embed_array(texts)))) < 1e-5
    # ids the model would truncate: its own path (the same vectors, from the texts)
    long = ["word " * 400]
    assert np.allclose(embeddings.embed_token_ids(encoder_ids(core, long), long), embeddings.embed_array(long),
                       atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300))
def test_the_workers_tokenizer_is_transformers_own(text: str) -> None:
    """``tokenizer.json`` read by ``tokenizers`` alone counts and ids exactly as transformers' tokenizer does."""
    core, tokenizer = load_core_tokenizer("minilm"), load_tokenizer("minilm")
    assert len(core.encode(text, add_special_tokens=False).ids) == len(tokenizer.tokenize(text))
    assert encoder_ids(core, [text])[0].tolist() == tokenizer(text)["input_ids"]


def test_only_the_plain_layout_runs_without_sentence_transformers(tmp_path: Path) -> None:
    """A model folder is run by transformers alone only when sentence-transformers would do no more than
    transformer -> mean/CLS pooling -> normalise; anything else keeps the sentence-transformers path."""
    source = Path(resolve_model("minilm").path)

    def folder(name: str, **changes: dict) -> Path:
        target = tmp_path / name
        for file in ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json",
                     "1_Pooling/config.json"):
            data = json.loads((source / file).read_text(encoding="utf-8"))
            data = changes.get(file, lambda d: d)(data)
            (target / file).parent.mkdir(parents=True, exist_ok=True)
            (target / file).write_text(json.dumps(data), encoding="utf-8")
        return target

    assert plain_shape(str(source)) == PlainShape("mean", True, 256)
    assert plain_shape(str(folder("plain"))) == PlainShape("mean", True, 256)
    dense = {"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"}
    refused = {
        "dense": {"modules.json": lambda d: [*d, dense]},
        "prompts": {"config_sentence_transformers.json": lambda d: {**d, "prompts": {"query": "query: "},
                                                                     "default_prompt_name": "query"}},
        "lowercase": {"sentence_bert_config.json": lambda d: {**d, "do_lower_case": True}},
        "max": {"1_Pooling/config.json": lambda d: {**d, "pooling_mode_mean_tokens": False,
                                                     "pooling_mode_max_tokens": True}},
    }
    for name, changes in refused.items():
        assert plain_shape(str(folder(name, **changes))) is None, name
    assert plain_shape(str(tmp_path / "missing")) is None
