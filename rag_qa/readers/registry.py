"""Reader registry: names -> reader instances, created once per name and settings, and shared.

``extractive`` (our fine-tuned default), ``extractive:<model-or-path>``, ``generative`` (the
offline default LLM) and ``generative:<name>``.  Switching readers never touches the index.
A reader is built from the settings it is asked with (a :class:`~rag_qa.service.QAService`
passes its own), and shared only with callers whose settings agree on what that reader uses
(:func:`reader_settings`), so a service with another no-answer threshold gets its own reader.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from rag_qa.models import DEFAULT_READER, ModelNotFoundError, resolve_model
from rag_qa.readers.base import Reader

if TYPE_CHECKING:
    from rag_qa.config import Settings


class UnknownReaderError(ValueError):
    pass


#: the readers that load offline from what rag-qa ships or installs (no URL, no folder of the user's):
#: what the web app offers its users unless the operator says otherwise (``RAGQA_UI_READERS``).
#: A new built-in reader is one more name here.
BUILTIN_READERS: tuple[str, ...] = (
    "extractive",  # models/minilm-squad, this repository
    "generative",  # the settings' llm_model: by default Gemma 3 270M + our adapter models/gemma3-squad-lora
    "generative:smollm2",  # SmolLM2-135M-Instruct as released (untuned), whatever llm_model says
)


_instances: dict[tuple, Reader] = {}
_lock = threading.Lock()


def _extractive(arg: str | None, s: Settings) -> Reader:
    from rag_qa.readers.extractive import ExtractiveConfig, ExtractiveReader

    cfg = ExtractiveConfig.from_settings(s, model=arg or DEFAULT_READER)
    return ExtractiveReader(cfg, name="extractive" if arg is None else f"extractive:{arg}")


def _generative(arg: str | None, s: Settings) -> Reader:
    from rag_qa.readers.generative import make_generative_reader

    reader = make_generative_reader(arg, s)
    reader.name = "generative" if arg is None else f"generative:{arg}"
    return reader


FACTORIES: dict[str, Callable[[str | None, Settings], Reader]] = {
    "extractive": _extractive,
    "generative": _generative,
}
#: the settings a generative reader is built from (:func:`rag_qa.readers.generative.make_generative_reader`)
GENERATIVE_SETTINGS = ("llm_model", "llm_backend", "llm_base_url", "llm_api_key", "llm_context_tokens",
                       "max_new_tokens", "temperature", "llm_precision", "llm_passage_words", "llm_focus",
                       "llm_vocab", "llm_refusal_threshold", "llm_decode_weights")


def reader_settings(kind: str) -> tuple[str, ...]:
    """The settings a reader of ``kind`` is built from: readers are shared between callers that agree on them."""
    if kind == "extractive":
        from rag_qa.readers.extractive import SETTINGS

        return tuple(SETTINGS.values())
    return GENERATIVE_SETTINGS


def get_reader(name: str, settings: Settings | None = None) -> Reader:
    """The shared reader for ``name`` built from ``settings`` (default: the global settings).

    Created on first use for each name and value of :func:`reader_settings`; weights load lazily.
    """
    if settings is None:
        from rag_qa.config import get_settings

        settings = get_settings()
    name = name.strip()
    kind, _, arg = name.partition(":")
    if kind not in FACTORIES:
        raise UnknownReaderError(
            f"unknown reader '{name}'; choose one of: {', '.join(available())} (see `rag_qa readers`)"
        )
    key = (name, *(getattr(settings, field) for field in reader_settings(kind)))
    with _lock:
        if key in _instances:
            return _instances[key]
        try:
            reader = FACTORIES[kind](arg or None, settings)
        except ImportError as err:
            raise UnknownReaderError(f"reader '{name}' needs an optional dependency: {err}") from None
        _instances[key] = reader
        return reader


def available() -> list[str]:
    return ["extractive", "extractive:<model-or-path>", "generative", "generative:<name>"]


def list_readers(settings: Settings | None = None) -> list[dict]:
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
        if settings is None:
            from rag_qa.config import get_settings

            settings = get_settings()
        default_llm = settings.llm_model
        rows.append({"name": "generative", "kind": "generative", "default": False,
                     "weights": GENERATIVE_READERS.get(default_llm, default_llm)})
    for spec, source in GENERATIVE_READERS.items():
        rows.append({"name": f"generative:{spec}", "kind": "generative", "default": False, "weights": source})
    return rows
