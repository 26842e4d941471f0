"""Plain LangChain baseline: RecursiveCharacterTextSplitter + FAISS + HuggingFaceEmbeddings + HF QA pipeline.

Run with the LangChain venv (benchmarks/setup_baselines.sh makes it; transformers 4.x, because
transformers 5 removed ``pipeline("question-answering")``):

    benchmarks/.venv-langchain/bin/python benchmarks/baselines/langchain_run.py \
        --corpus corpus.json --questions questions.json --reader-dir models/minilm-squad \
        --embedding-dir MINILM_DIR --top-k 5 --out langchain.json

The textbook recipe: split with ``RecursiveCharacterTextSplitter(chunk_size=1000,
chunk_overlap=200)`` (characters; about rag-qa's 200/40 MiniLM tokens on SQuAD text), index with
``FAISS.from_documents`` (flat L2 index) and ``HuggingFaceEmbeddings`` on the local MiniLM, retrieve
the top-k chunks with ``as_retriever``, run ``pipeline("question-answering")`` on each retrieved
chunk separately and keep the answer with the highest score.  The pipeline's scores are
normalised within each chunk, so "best score wins" compares per-chunk probabilities -- that is
the classic recipe, not something tuned here.  ``--max-answer-len`` defaults to 30 tokens, the
same as rag-qa's reader (the pipeline's own default is 15).  Only dense retrieval (``--retriever
embedding``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

common.offline_env()


def run(argv: list[str] | None = None) -> int:
    ap = common.base_parser(__doc__.split("\n\n")[0], ("embedding",))
    ap.add_argument("--chunk-size", type=int, default=1000, help="characters per chunk")
    ap.add_argument("--chunk-overlap", type=int, default=200, help="characters of overlap")
    ap.add_argument("--max-answer-len", type=int, default=30, help="the QA pipeline's max_answer_len (tokens)")
    args = ap.parse_args(argv)
    corpus, questions = common.load_inputs(args)
    if not 0 <= args.chunk_overlap < args.chunk_size:
        raise common.InputError("need 0 <= --chunk-overlap < --chunk-size")
    threads = common.set_threads(args.threads)

    import torch
    from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from transformers import pipeline

    # ---- indexing
    t0 = time.perf_counter()
    embeddings = HuggingFaceEmbeddings(model_name=str(args.embedding_dir), model_kwargs={"device": "cpu"})
    load_embedder_s = time.perf_counter() - t0
    docs = [Document(page_content=d["text"], metadata={"title": d.get("title", ""), "doc_id": d["id"]}) for d in corpus]
    t0 = time.perf_counter()
    splitter = RecursiveCharacterTextSplitter(chunk_size=args.chunk_size, chunk_overlap=args.chunk_overlap)
    chunks = splitter.split_documents(docs)
    vectorstore = FAISS.from_documents(chunks, embeddings)
    index_seconds = time.perf_counter() - t0
    print(f"indexed {len(docs)} documents as {len(chunks)} chunks in {index_seconds:.2f}s", file=sys.stderr)

    # ---- querying
    retriever = vectorstore.as_retriever(search_kwargs={"k": args.top_k})
    t0 = time.perf_counter()
    qa = pipeline(
        "question-answering",
        model=str(args.reader_dir),
        tokenizer=str(args.reader_dir),
        device=-1,
        dtype=torch.float32,  # transformers 4.57 renamed torch_dtype
    )
    load_reader_s = time.perf_counter() - t0

    def answer(question: str) -> str:
        best_text, best_score = "", float("-inf")
        for doc in retriever.invoke(question):
            out = qa(question=question, context=doc.page_content, max_answer_len=args.max_answer_len)
            if out["score"] > best_score:
                best_text, best_score = out["answer"], out["score"]
        return best_text

    result = common.Result(system="langchain", index_seconds=index_seconds)
    common.time_questions(questions, answer, result, quiet=args.quiet)
    result.extra = {
        "chunks": len(chunks),
        "documents": len(docs),
        "load_seconds": {"embedder": round(load_embedder_s, 3), "reader": round(load_reader_s, 3)},
        "threads": threads,
        "config": {
            "retriever": "embedding",
            "top_k": args.top_k,
            "chunk_size_chars": args.chunk_size,
            "chunk_overlap_chars": args.chunk_overlap,
            "reader": str(args.reader_dir),
            "embedding": str(args.embedding_dir),
            "reader_dtype": "float32",
            "max_answer_len": args.max_answer_len,
            "max_seq_len": min(qa.tokenizer.model_max_length, 384),  # the pipeline default
            "doc_stride": min(min(qa.tokenizer.model_max_length, 384) // 2, 128),
            "faiss_index": type(vectorstore.index).__name__,
        },
        "versions": common.versions(
            "langchain-core",
            "langchain-community",
            "langchain-huggingface",
            "langchain-text-splitters",
            "transformers",
            "sentence-transformers",
            "faiss-cpu",
            "torch",
            "tokenizers",
        ),
    }
    common.write_result(args.out, result)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(common.main_guard(run))
