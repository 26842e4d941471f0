"""Chat-model backends for the generative reader: one small interface, three engines.

* :class:`LlamaCppChat` -- a local GGUF through llama-cpp-python (fast; optional extra ``llm``).
* :class:`TransformersChat` -- a local GGUF (dequantised) or Hugging Face model through
  transformers; needs no compiler, so it is the fallback and what the tests use.
* :class:`LangChainChat` -- any LangChain chat model (OpenAI-compatible servers, Ollama, ...).

Every backend streams text pieces as they are generated; ``temperature == 0`` is greedy.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

Messages = Sequence[dict[str, str]]


class ChatBackend(Protocol):
    """What the generative reader needs from a chat model."""

    def load(self) -> None:
        """Load weights / open the client (idempotent)."""

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in the model's context (an estimate for remote models)."""

    def stream(self, messages: Messages, max_new_tokens: int, temperature: float) -> Iterator[str]:
        """Text pieces of the assistant's reply, as they are generated."""

    def describe(self) -> dict[str, Any]:
        """Engine and where the weights come from."""


class TransformersChat:
    """A causal LM run by transformers; ``gguf_file`` loads (and dequantises) a GGUF file."""

    def __init__(self, model: str, gguf_file: str | None = None, source: str = "") -> None:
        self.model_name, self.gguf_file, self.source = model, gguf_file, source
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            from transformers import AutoModelForCausalLM, AutoTokenizer

            kwargs = {"gguf_file": self.gguf_file} if self.gguf_file else {}
            self._tokenizer = AutoTokenizer.from_pretrained(self.model_name, **kwargs)
            if self.gguf_file:  # weights from a GGUF file or safetensors, never from a pickle
                model = AutoModelForCausalLM.from_pretrained(self.model_name, gguf_file=self.gguf_file)
            else:
                model = AutoModelForCausalLM.from_pretrained(self.model_name, use_safetensors=True)
            self._model = model.eval()

    @property
    def tokenizer(self) -> Any:
        """The loaded tokenizer (loads the model on first use)."""
        self.load()
        return self._tokenizer

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _inputs(self, messages: Messages) -> Any:
        tok = self._tokenizer
        if tok.chat_template:
            return tok.apply_chat_template(
                list(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
        # a base model with no chat template: plain text turns, answer after "Answer:"
        text = "\n\n".join(m["content"] for m in messages) + "\n\nAnswer:"
        return tok(text, return_tensors="pt")

    def stream(self, messages: Messages, max_new_tokens: int, temperature: float) -> Iterator[str]:
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        self.load()
        stop = threading.Event()

        class _StopWhenAsked(StoppingCriteria):
            """Ends generation early when the consumer stops reading the stream."""

            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
                return stop.is_set()

        streamer = TextIteratorStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True)
        greedy = temperature <= 0
        sampling = {"do_sample": False} if greedy else {"do_sample": True, "temperature": temperature}
        kwargs = dict(
            **self._inputs(messages),
            streamer=streamer,
            max_new_tokens=max_new_tokens,
            stopping_criteria=StoppingCriteriaList([_StopWhenAsked()]),
            pad_token_id=self._tokenizer.pad_token_id or self._tokenizer.eos_token_id,
            **sampling,
        )
        errors: list[BaseException] = []

        def generate() -> None:
            try:
                self._model.generate(**kwargs)
            except BaseException as err:  # surfaced in the consumer's thread below
                errors.append(err)
                streamer.end()

        thread = threading.Thread(target=generate, name="generative-reader", daemon=True)
        thread.start()
        try:
            for piece in streamer:
                if piece:
                    yield piece
        finally:
            stop.set()
            thread.join()
        if errors:
            raise errors[0]

    def describe(self) -> dict[str, Any]:
        return {"engine": "transformers", "model": self.model_name, "gguf_file": self.gguf_file,
                "weights": self.source or self.model_name}


class LlamaCppChat:
    """A GGUF model run by llama-cpp-python (the optional ``llm`` extra)."""

    def __init__(self, gguf_path: str, context_tokens: int, source: str = "") -> None:
        self.gguf_path, self.context_tokens, self.source = gguf_path, context_tokens, source
        self._llm: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._llm is None:
                from llama_cpp import Llama

                self._llm = Llama(model_path=self.gguf_path, n_ctx=self.context_tokens, verbose=False)

    def count_tokens(self, text: str) -> int:
        self.load()
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def stream(self, messages: Messages, max_new_tokens: int, temperature: float) -> Iterator[str]:
        self.load()
        chunks = self._llm.create_chat_completion(
            messages=list(messages), max_tokens=max_new_tokens, temperature=temperature,
            repeat_penalty=1.0, stream=True,
        )
        for chunk in chunks:
            piece = chunk["choices"][0]["delta"].get("content")
            if piece:
                yield piece

    def describe(self) -> dict[str, Any]:
        return {"engine": "llama.cpp", "model": self.gguf_path, "weights": self.source or self.gguf_path}


class LangChainChat:
    """Any LangChain chat model; generation limits are set when the model is built."""

    #: characters per token, to budget passages without a tokenizer (English averages ~4)
    CHARS_PER_TOKEN = 3.5

    def __init__(self, chat_model: Any, label: str, source: str) -> None:
        self.chat_model, self.label, self.source = chat_model, label, source

    def load(self) -> None:
        """Nothing to load: the server holds the weights."""

    def count_tokens(self, text: str) -> int:
        return int(len(text) / self.CHARS_PER_TOKEN) + 1

    def stream(self, messages: Messages, max_new_tokens: int, temperature: float) -> Iterator[str]:
        from langchain_core.messages import HumanMessage, SystemMessage

        kinds = {"system": SystemMessage, "user": HumanMessage}
        lc_messages = [kinds[m["role"]](content=m["content"]) for m in messages]
        for chunk in self.chat_model.stream(lc_messages):
            piece = chunk.content if isinstance(chunk.content, str) else chunk.text
            if piece:
                yield piece

    def describe(self) -> dict[str, Any]:
        return {"engine": "langchain", "model": self.label, "weights": self.source}
