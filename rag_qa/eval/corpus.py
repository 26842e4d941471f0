"""A SQuAD file as a document corpus: one text file per article, indexed by the real ingest path.

Each article becomes ``<title>.txt`` (paragraphs joined by blank lines) so chunking is
exercised; every question keeps the character span of its gold answers inside that file,
which is how retrieval hits are judged.  Built indexes are cached by content hash.

Indexing is a dependency passed in (:data:`IndexBuilder`): ``ingest`` sits above ``rag_qa`` and
is never imported from here.  The default, :func:`ingest_command`, runs ``python -m ingest`` as
a child process; callers that already import ``ingest`` (benchmarks, tests) may pass
``ingest.pipeline.ingest_paths`` wrapped in the same signature.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag_qa.env import child_env
from rag_qa.models import cache_dir
from rag_qa.qa_data import load_examples

SEPARATOR = "\n\n"

#: ``(corpus folder, index dir, embedding model) -> the ingest summary``: builds a fresh index of the folder
IndexBuilder = Callable[[Path, Path, str], dict[str, Any]]


class CorpusIndexError(RuntimeError):
    """Indexing the evaluation corpus failed (one line: ingest's own error)."""


@dataclass
class CorpusQuestion:
    id: str
    question: str
    answers: list[str]
    source: str  # file name of the article
    spans: list[tuple[int, int]]  # gold answer spans in the article's text
    paragraph: tuple[int, int]  # the gold paragraph's span in the article's text


def _file_name(title: str) -> str:
    return (re.sub(r"[^\w.-]+", "_", title).strip("._") or "article") + ".txt"


def read_corpus(data: str | Path, limit: int | None = None) -> tuple[dict[str, str], list[CorpusQuestion]]:
    """The articles of ``data`` as {file name: text} and its (first ``limit``) answerable questions."""
    examples, _ = load_examples(data)
    texts: dict[str, list[str]] = {}
    offsets: dict[tuple[str, str], int] = {}  # (file, context) -> offset of the paragraph
    for ex in examples:
        name = _file_name(ex.title or "article")
        paras = texts.setdefault(name, [])
        if (name, ex.context) not in offsets:
            offsets[(name, ex.context)] = sum(len(p) + len(SEPARATOR) for p in paras)
            paras.append(ex.context)
    questions = []
    for ex in examples[:limit] if limit else examples:
        if not ex.answers:
            continue
        name = _file_name(ex.title or "article")
        base = offsets[(name, ex.context)]
        spans = [(base + a["answer_start"], base + a["answer_start"] + len(a["text"])) for a in ex.answers]
        questions.append(CorpusQuestion(ex.id, ex.question, [a["text"] for a in ex.answers], name, spans,
                                        (base, base + len(ex.context))))
    return {name: SEPARATOR.join(paras) for name, paras in texts.items()}, questions


def corpus_questions(data: str | Path, limit: int | None = None) -> list[CorpusQuestion]:
    """Just the questions (with their gold spans in the article files), writing nothing."""
    return read_corpus(data, limit)[1]


def build_corpus(data: str | Path, folder: Path, limit: int | None = None) -> list[CorpusQuestion]:
    """Write the articles of ``data`` under ``folder``; return its (first ``limit``) questions."""
    texts, questions = read_corpus(data, limit)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (folder / name).write_text(text, encoding="utf-8")
    return questions


def ingest_command(folder: Path, index: Path, embedding_model: str) -> dict[str, Any]:
    """Index ``folder`` into a fresh ``index`` with ``python -m ingest --rebuild`` (the default builder)."""
    proc = subprocess.run(
        [sys.executable, "-m", "ingest", str(folder), "--index", str(index), "--rebuild", "--json"],
        capture_output=True, text=True, env=child_env(RAGQA_EMBEDDING_MODEL=embedding_model),
    )
    if proc.returncode not in (0, 3):  # 3: some files failed, the rest is indexed
        last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        raise CorpusIndexError(f"indexing the evaluation corpus {folder} failed: {last}")
    return json.loads(proc.stdout)


def corpus_index(data: str | Path, embedding_model: str = "minilm", progress: bool = True,
                 build: IndexBuilder = ingest_command) -> tuple[Path, Path]:
    """(corpus folder, index dir) for ``data``, building both once per content hash, embedding model and
    chunking (the index is built with this process's chunk settings, which change every chunk)."""
    from rag_qa.config import Settings, get_settings

    digest = hashlib.sha256(Path(data).read_bytes()).hexdigest()[:16]
    settings, fields = get_settings(), Settings.model_fields
    chunking = (settings.chunk_tokens, settings.chunk_overlap)
    default = (fields["chunk_tokens"].default, fields["chunk_overlap"].default)
    # the default chunking keeps the name indexes built before had
    root = cache_dir() / "eval" / (f"{digest}-{embedding_model}" + ("" if chunking == default else
                                                                      "-chunks{}-{}".format(*chunking)))
    folder, index = root / "corpus", root / "index"
    done = root / "done.json"
    if not done.exists():
        build_corpus(data, folder)
        done.write_text(json.dumps(build(folder, index, embedding_model)))
    return folder, index
