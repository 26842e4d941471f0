"""A SQuAD file as a document corpus: one text file per article, indexed by the real ingest path.

Each article becomes ``<title>.txt`` (paragraphs joined by blank lines) so chunking is
exercised; every question keeps the character span of its gold answers inside that file,
which is how retrieval hits are judged.  Built indexes are cached by content hash.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from rag_qa.models import CACHE_DIR
from rag_qa.train.data import load_examples

SEPARATOR = "\n\n"


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


def corpus_index(data: str | Path, embedding_model: str = "minilm", progress: bool = True) -> tuple[Path, Path]:
    """(corpus folder, index dir) for ``data``, building both once per content hash."""
    from ingest.pipeline import ingest_paths
    from rag_qa.config import Settings

    digest = hashlib.sha256(Path(data).read_bytes()).hexdigest()[:16]
    root = CACHE_DIR / "eval" / f"{digest}-{embedding_model}"
    folder, index = root / "corpus", root / "index"
    done = root / "done.json"
    if not done.exists():
        build_corpus(data, folder)
        report = ingest_paths([folder], index, settings=Settings(embedding_model=embedding_model), rebuild=True)
        done.write_text(json.dumps(report.to_dict()))
    return folder, index
