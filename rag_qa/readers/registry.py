"""Reader registry: names -> reader instances, created once and shared.

``extractive`` (our fine-tuned default), ``extractive:<model-or-path>``, ``generative`` (the
offline default LLM) and ``generative:<name>``.  Switching readers never touches the index.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from rag_qa.models import DEFAULT_READER, ModelNotFoundError, resolve_model
from rag_qa.readers.base import Reader


class UnknownReaderError(ValueError):
    pass


_instances: dict[str, Reader] = {}
_lock = threading.Lock()


def _extractive(arg: str | None) -> Reader:
    from rag_qa.config import get_settings
    from rag_qa.readers.extractive import ExtractiveConfig, ExtractiveReader

    s = get_settings()
    cfg = ExtractiveConfig(
        model=arg or DEFAULT_READER,
        max_answer_length=s.max_answer_length,
        no_answer_threshold=s.no_answer_threshold,
        precision=s.reader_precision,
    )
    return ExtractiveReader(cfg, name="extractive" if arg is None else f"extractive:{arg}")


def _generative(arg: str | None) -> Reader:
    from rag_qa.readers.generative import make_generative_reader

    reader = make_generative_reader(arg)
    reader.name = "generative" if arg is None else f"generative:{arg}"
    return reader


FACTORIES: dict[str, Callable[[str | None], Reader]] = {
    "extractive": _extractive,
    "generative": _generative,
}


def get_reader(name: str) -> Reader:
    """The shared reader instance for ``name`` (created on first use; weights load lazily)."""
    name = name.strip()
    with _lock:
        if name in _instances:
            return _instances[name]
        kind, _, arg = name.partition(":")
        if kind not in FACTORIES:
            raise UnknownReaderError(
                f"unknown reader '{name}'; choose one of: {', '.join(available())} (see `rag_qa readers`)"
            )
        try:
            reader = FACTORIES[kind](arg or None)
        except ImportError as err:
            raise UnknownReaderError(f"reader '{name}' needs an optional dependency: {err}") from None
        _instances[name] = reader
        return reader


def available() -> list[str]:
    return ["extractive", "extractive:<model-or-path>", "generative", "generative:<name>"]


def list_readers() -> list[dict]:
    """Registered readers and where their weights come from (no weights are loaded)."""
    rows = []
    try:
        spec = resolve_model(DEFAULT_READER, kind="reader")
        rows.append({"name": "extractive", "kind": "extractive", "default": True, "weights": spec.source,
                     "model": spec.path})
    except ModelNotFoundError as err:
        rows.append({"name": "extractive", "kind": "extractive", "default": True, "weights": f"missing: {err}"})
    rows.append({"name": "extractive:<model-or-path>", "kind": "extractive", "default": False,
                 "weights": "any Hugging Face QA model directory, alias or hub id"})
    try:
        from rag_qa.readers.generative import GENERATIVE_READERS
    except ImportError:
        GENERATIVE_READERS = {}
    if GENERATIVE_READERS:
        from rag_qa.config import get_settings

        default_llm = get_settings().llm_model
        rows.append({"name": "generative", "kind": "generative", "default": False,
                     "weights": GENERATIVE_READERS.get(default_llm, default_llm)})
    for spec, source in GENERATIVE_READERS.items():
        rows.append({"name": f"generative:{spec}", "kind": "generative", "default": False, "weights": source})
    return rows
