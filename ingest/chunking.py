"""Token-aware chunking with exact character offsets into the document's extracted text.

LangChain's ``RecursiveCharacterTextSplitter`` sized by the embedding model's own tokenizer
does the splitting.  It strips whitespace and overlaps chunks, so its ``add_start_index`` is
not trusted: each chunk is located by searching forward from the previous chunk's start, and
``document.text[start:end] == chunk.text`` is checked for every chunk.  PDF pages are split
separately (as are slides, spreadsheet rows and e-book chapters), so a chunk never spans two.

:class:`Chunker` is what the parser worker runs: the splitter on the embedding model's Rust
tokenizer, loaded straight from the model's ``tokenizer.json`` (``tokenizers`` alone: no
transformers, no torch in the worker), and each chunk tokenised once more, with the special
tokens, into the ids the encoder takes (:meth:`rag_qa.embeddings.SentenceTransformerEmbeddings.embed_token_ids`),
so the process that embeds does not tokenise at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ingest.loaders import LoadedDocument
from rag_qa.env import set_offline_defaults
from rag_qa.models import resolve_model
from rag_qa.store.base import ChunkRow

if TYPE_CHECKING:
    from langchain_text_splitters import TextSplitter
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerBase

    AnyTokenizer = PreTrainedTokenizerBase | Tokenizer

SEPARATORS = ["\n\n", "\n", ". ", " ", ""]
#: a piece this many characters per chunk token is surely over the chunk size (see token_counter)
HUGE_PIECE_CHARS_PER_TOKEN = 64


@lru_cache(maxsize=4)
def load_tokenizer(model: str) -> PreTrainedTokenizerBase:
    """The embedding model's tokenizer (from disk; loaded once per process)."""
    set_offline_defaults()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model(model, kind="embedding model").path)


def load_core_tokenizer(model: str) -> Tokenizer:
    """The embedding model's Rust tokenizer, truncation and padding off: its ``tokenizer.json`` read by
    ``tokenizers`` (milliseconds, nothing else imported), else the core of :func:`load_tokenizer`'s.

    It is the very tokenizer transformers builds from that file (``tests/test_chunking.py`` checks the
    counts and ids match), so chunks and the encoder's ids are the same either way.
    """
    set_offline_defaults()
    from tokenizers import Tokenizer

    file = Path(resolve_model(model, kind="embedding model").path) / "tokenizer.json"
    if file.is_file():
        core = Tokenizer.from_file(str(file))
        core.no_truncation()
        core.no_padding()
        return core
    fallback = _rust_core(load_tokenizer(model))
    if fallback is None:  # pragma: no cover - every embedding model we ship has a fast tokenizer
        raise ValueError(f"embedding model {model} has no fast (Rust) tokenizer")
    return fallback


def token_counter(tokenizer: AnyTokenizer, chunk_tokens: int) -> Callable[[str], int]:
    """Token length for the splitter, bounded in time and memory on hostile text.

    The splitter asks for the length of every piece it considers: single characters of a
    line with no spaces, the same words again and again, and whole over-long segments.
    Short pieces are memoised; a piece longer than :data:`HUGE_PIECE_CHARS_PER_TOKEN` times
    the chunk size is only ever asked about to decide whether to split it further, so its
    character count stands in (it is over the chunk size either way) instead of tokenizing
    megabytes at once.
    """
    huge = max(chunk_tokens, 1) * HUGE_PIECE_CHARS_PER_TOKEN
    tokens = _fast_length(tokenizer)

    @lru_cache(maxsize=65536)
    def short(text: str) -> int:
        return tokens(text)

    def count(text: str) -> int:
        if len(text) > huge:
            return len(text)
        return short(text) if len(text) <= 64 else tokens(text)

    return count


def _fast_length(tokenizer: AnyTokenizer) -> Callable[[str], int]:
    """``len(tokenizer.tokenize(text))``, computed by the fast tokenizer's Rust core directly.

    Token counting is most of chunking's time; skipping transformers' Python around the Rust call
    (``tokenize`` goes through ``_encode_plus`` and a one-text batch) saves about 15% of chunking's
    CPU on SQuAD articles (2.5 s -> 2.1 s for 2,074 chunks, the same ids), and transformers'
    "sequence length is longer than the specified maximum" warning for pieces the splitter only
    measures.  The counts are the same (``tests/test_chunking.py``); the core is a private copy with
    truncation and padding off, so nothing else using ``tokenizer`` can change them.  A tokenizer
    without a Rust core falls back to ``tokenize``; a ``tokenizers.Tokenizer`` (:func:`load_core_tokenizer`)
    is such a core already.
    """
    core = _rust_core(tokenizer)
    if core is None:
        return lambda text: len(tokenizer.tokenize(text))
    return lambda text: len(core.encode(text, add_special_tokens=False).ids)


@lru_cache(maxsize=4)
def _rust_core(tokenizer: AnyTokenizer) -> Any:
    """A private copy of ``tokenizer``'s Rust tokenizer with truncation and padding off (None: it has none)."""
    from tokenizers import Tokenizer

    backend = tokenizer if isinstance(tokenizer, Tokenizer) else getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None

    core = Tokenizer.from_str(backend.to_str())
    core.no_truncation()
    core.no_padding()
    return core


def make_splitter(tokenizer: AnyTokenizer, chunk_tokens: int, overlap: int) -> TextSplitter:
    """A recursive splitter whose sizes are counted in ``tokenizer`` tokens."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    return RecursiveCharacterTextSplitter(
        length_function=token_counter(tokenizer, chunk_tokens), chunk_size=chunk_tokens,
        chunk_overlap=min(overlap, max(chunk_tokens - 1, 0)),
        separators=SEPARATORS, keep_separator="end", strip_whitespace=True,
    )


def chunk_id(source: str, text: str, start: int) -> str:
    """Stable id: the same text at the same place in the same file always gets the same id."""
    digest = hashlib.sha256(f"{source}\x00{start}\x00{text}".encode()).hexdigest()
    return digest[:32]


@dataclass(frozen=True)
class CharSpan:
    """Where a piece sits in a text: ``text[start:end] == piece`` (not the reader's :class:`rag_qa.spans.Span`)."""

    start: int
    end: int


def locate(text: str, pieces: list[str]) -> list[CharSpan]:
    """Offsets of ``pieces`` (in order, possibly overlapping) in ``text``.

    Each piece starts after the previous piece's start and ends after its end (a chunk always
    adds text beyond the one before; without that rule "the" following "the the Normans" was
    placed inside it).  In text that repeats itself exactly the place is ambiguous and may come
    out earlier than the splitter's, but ``text[start:end]`` is always the piece.  If the
    splitter ever yields a piece that is not a substring, ``ValueError`` says so (a bug, not input).
    """
    spans: list[CharSpan] = []
    position, previous_end = 0, 0
    for piece in pieces:
        start = text.find(piece, max(position, previous_end - len(piece) + 1))
        if start < 0:
            start = text.find(piece, position)
        if start < 0:
            start = text.find(piece)
        if start < 0:
            raise ValueError(f"chunk not found in document text: {piece[:60]!r}")
        spans.append(CharSpan(start, start + len(piece)))
        position, previous_end = start + 1, start + len(piece)
    return spans


def chunk_document(document: LoadedDocument, splitter: TextSplitter) -> list[ChunkRow]:
    """Split ``document`` into :class:`ChunkRow` s with offsets into ``document.text``.

    Each numbered part (page, slide, row, chapter) is split on its own, and its chunks carry its
    number, unit, section (sheet or chapter name) and OCR flag.
    """
    rows: list[ChunkRow] = []
    for part, segment in document.segments():
        if not segment.strip():
            continue
        unit = document.unit if part.page is not None else None
        pieces = [p for p in splitter.split_text(segment) if p]
        for span, piece in zip(locate(segment, pieces), pieces, strict=True):
            start, end = part.start + span.start, part.start + span.end
            if document.text[start:end] != piece:  # pragma: no cover - guarded by the property test
                raise ValueError(f"offset bookkeeping broke for {document.source} at {start}")
            rows.append(ChunkRow(id=chunk_id(document.source, piece, start), source=document.source,
                                 page=part.page, start=start, end=end, text=piece, unit=unit,
                                 section=part.section, ocr=part.ocr))
    return rows


def encoder_ids(core: Tokenizer, texts: list[str]) -> list[np.ndarray]:
    """Each text's token ids as the encoder takes them (special tokens added, no truncation), as int32."""
    return [np.asarray(e.ids, dtype="int32") for e in core.encode_batch(texts, add_special_tokens=True)]


class Chunker:
    """Chunks documents and tokenises each chunk once for the encoder (what the parser worker runs)."""

    def __init__(self, model: str, chunk_tokens: int, overlap: int) -> None:
        self.core = load_core_tokenizer(model)
        self.splitter = make_splitter(self.core, chunk_tokens, overlap)

    def chunk(self, document: LoadedDocument) -> tuple[list[ChunkRow], list[np.ndarray]]:
        """``document``'s chunks (:func:`chunk_document`) and their encoder token ids."""
        rows = chunk_document(document, self.splitter)
        return rows, encoder_ids(self.core, [row.text for row in rows])
