"""Haystack 2.x baseline: in-memory store, DocumentSplitter, BM25 or embedding retriever, ExtractiveReader.

Run with the Haystack venv (benchmarks/setup_baselines.sh makes it):

    benchmarks/.venv-haystack/bin/python benchmarks/baselines/haystack_run.py \
        --corpus corpus.json --questions questions.json --reader-dir models/minilm-squad \
        --embedding-dir MINILM_DIR --top-k 5 --retriever bm25 --out haystack-bm25.json

Everything is stock Haystack 2.x except two settings chosen for a like-for-like comparison
(both recorded under "config" in the output):

* the reader is loaded in float32 (transformers 5 would otherwise keep a float16 checkpoint in
  float16, which is slow on CPU; rag-qa and the LangChain baseline run float32);
* chunks are ``split_by="word", split_length=150, split_overlap=30`` -- about rag-qa's default
  200/40 MiniLM tokens on SQuAD text.  ``--split-by passage`` instead makes one document per
  SQuAD paragraph (the "\\n\\n"-separated units of corpus.json), which favours retrieval.

``--token-type-ids``: Haystack's ExtractiveReader calls the model with input_ids and
attention_mask only, so a BERT-family reader sees token_type_ids = 0 for the context, unlike
in training.  Stock behaviour is the default; this flag passes segment ids (0 for question,
1 for context) to show what that costs.  ExtractiveReader has no maximum answer length.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

common.offline_env()


class _SegmentIds:
    """Wraps a BERT-style QA model so calls without token_type_ids get them (0 question, 1 context)."""

    def __init__(self, model, sep_token_id: int):
        self._model = model
        self._sep = sep_token_id

    def __getattr__(self, name):
        return getattr(self._model, name)

    def __call__(self, input_ids, attention_mask, **kwargs):
        import torch

        if "token_type_ids" not in kwargs:
            is_sep = (input_ids == self._sep).int()
            first_sep = torch.argmax(is_sep, dim=1, keepdim=True)
            pos = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
            kwargs["token_type_ids"] = ((pos > first_sep) & (attention_mask == 1)).long()
        return self._model(input_ids=input_ids, attention_mask=attention_mask, **kwargs)


def run(argv: list[str] | None = None) -> int:
    ap = common.base_parser(__doc__.split("\n\n")[0], ("bm25", "embedding"))
    ap.add_argument("--split-by", choices=("word", "passage"), default="word")
    ap.add_argument("--split-length", type=int, default=150, help="words per chunk (with --split-by word)")
    ap.add_argument("--split-overlap", type=int, default=30, help="words of overlap (with --split-by word)")
    ap.add_argument("--token-type-ids", action="store_true", help="pass segment ids to the reader (not stock)")
    args = ap.parse_args(argv)
    corpus, questions = common.load_inputs(args)
    threads = common.set_threads(args.threads)

    warnings.filterwarnings("ignore", category=FutureWarning)  # ExtractiveReader's "moving in 3.0" notice
    from haystack import Document, Pipeline
    from haystack.components.embedders import (
        SentenceTransformersDocumentEmbedder,
        SentenceTransformersTextEmbedder,
    )
    from haystack.components.preprocessors import DocumentSplitter
    from haystack.components.readers import ExtractiveReader
    from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever
    from haystack.components.writers import DocumentWriter
    from haystack.document_stores.in_memory import InMemoryDocumentStore
    from haystack.utils import ComponentDevice

    cpu = ComponentDevice.from_str("cpu")
    emb_path = str(args.embedding_dir)
    if args.split_by == "passage":
        splitter = DocumentSplitter(split_by="passage", split_length=1, split_overlap=0)
    else:
        splitter = DocumentSplitter(split_by="word", split_length=args.split_length, split_overlap=args.split_overlap)

    # ---- indexing
    store = InMemoryDocumentStore()
    indexing = Pipeline()
    indexing.add_component("splitter", splitter)
    indexing.add_component("writer", DocumentWriter(document_store=store))
    if args.retriever == "embedding":
        indexing.add_component(
            "embedder", SentenceTransformersDocumentEmbedder(model=emb_path, device=cpu, progress_bar=False)
        )
        indexing.connect("splitter.documents", "embedder.documents")
        indexing.connect("embedder.documents", "writer.documents")
    else:
        indexing.connect("splitter.documents", "writer.documents")
    t0 = time.perf_counter()
    indexing.warm_up()  # loads the embedding model: not part of index_seconds
    load_embedder_s = time.perf_counter() - t0
    docs = [Document(content=d["text"], meta={"title": d.get("title", ""), "doc_id": d["id"]}) for d in corpus]
    t0 = time.perf_counter()
    indexing.run({"splitter": {"documents": docs}})
    index_seconds = time.perf_counter() - t0
    chunks = store.count_documents()
    print(f"indexed {len(docs)} documents as {chunks} chunks in {index_seconds:.2f}s", file=sys.stderr)

    # ---- querying
    reader = ExtractiveReader(
        model=str(args.reader_dir),
        device=cpu,
        no_answer=False,
        top_k=1,
        model_kwargs={"dtype": "float32"},
    )
    query = Pipeline()
    if args.retriever == "embedding":
        query.add_component(
            "text_embedder", SentenceTransformersTextEmbedder(model=emb_path, device=cpu, progress_bar=False)
        )
        query.add_component("retriever", InMemoryEmbeddingRetriever(document_store=store, top_k=args.top_k))
        query.connect("text_embedder.embedding", "retriever.query_embedding")
    else:
        query.add_component("retriever", InMemoryBM25Retriever(document_store=store, top_k=args.top_k))
    query.add_component("reader", reader)
    query.connect("retriever.documents", "reader.documents")
    t0 = time.perf_counter()
    query.warm_up()
    load_reader_s = time.perf_counter() - t0
    if args.token_type_ids:
        reader.model = _SegmentIds(reader.model, reader.tokenizer.sep_token_id)

    def answer(question: str) -> str:
        inputs = {"reader": {"query": question}}
        if args.retriever == "embedding":
            inputs["text_embedder"] = {"text": question}
        else:
            inputs["retriever"] = {"query": question}
        answers = query.run(inputs)["reader"]["answers"]
        return (answers[0].data or "") if answers else ""

    name = f"haystack-{args.retriever}"
    result = common.Result(system=name, index_seconds=index_seconds)
    common.time_questions(questions, answer, result, quiet=args.quiet)
    result.extra = {
        "chunks": chunks,
        "documents": len(docs),
        "load_seconds": {"embedder": round(load_embedder_s, 3), "query_pipeline": round(load_reader_s, 3)},
        "threads": threads,
        "config": {
            "retriever": args.retriever,
            "top_k": args.top_k,
            "split_by": args.split_by,
            "split_length": args.split_length if args.split_by == "word" else 1,
            "split_overlap": args.split_overlap if args.split_by == "word" else 0,
            "reader": str(args.reader_dir),
            "embedding": emb_path,
            "reader_dtype": "float32",
            "token_type_ids": args.token_type_ids,
            "max_seq_length": reader.max_seq_length,
            "stride": reader.stride,
            "no_answer": False,
            "max_answer_length": None,
            "bm25_algorithm": store.bm25_algorithm,
        },
        "versions": common.versions(
            "haystack-ai", "transformers", "sentence-transformers", "torch", "accelerate", "tokenizers"
        ),
    }
    common.write_result(args.out, result)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(common.main_guard(run))
