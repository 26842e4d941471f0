"""Chat-model backends for the generative reader: one small interface, three engines.

* :class:`LlamaCppChat` -- a local GGUF through llama-cpp-python (fast; optional extra ``llm``).
* :class:`TransformersChat` -- a local GGUF (dequantised) or Hugging Face model through
  transformers; needs no compiler, so it is the fallback and what the tests use.
* :class:`LangChainChat` -- any LangChain chat model (OpenAI-compatible servers, Ollama, ...).

Every backend streams text pieces as they are generated; ``temperature == 0`` is greedy.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rag_qa.readers.prefix_cache import PrefixCache

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


def encode_prompt(tokenizer: Any, messages: Messages) -> list[int]:
    """Token ids of the prompt a model answers after: its chat template with the assistant turn opened,
    or, for a base model without one, the turns as plain text ending in ``Answer:``.  Training
    (:mod:`rag_qa.train.gen_trainer`) builds its inputs with this same function."""
    if tokenizer.chat_template:
        return list(tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=True)
                    ["input_ids"])
    text = "\n\n".join(m["content"] for m in messages) + "\n\nAnswer:"
    return list(tokenizer(text)["input_ids"])


def encode_reply(tokenizer: Any, text: str) -> list[int]:
    """Token ids of a reply as the model should produce it after :func:`encode_prompt`: the text, then
    the token that ends the turn (``<|im_end|>`` in ChatML, ``<eos>`` for a base model)."""
    spaced = text if tokenizer.chat_template else " " + text  # a base model's reply follows "Answer:"
    return list(tokenizer(spaced, add_special_tokens=False)["input_ids"]) + [tokenizer.eos_token_id]


def merge_lora(model: Any, folder: Path) -> Any:
    """``model`` with the LoRA adapter in ``folder`` merged into its weights: the adapter's config, and its
    weights read from ``adapter_model.safetensors`` only (PEFT would fall back to a pickled .bin)."""
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = folder / "adapter_model.safetensors"
    if not weights.is_file():
        from rag_qa.models import ModelNotFoundError

        raise ModelNotFoundError(f"adapter {folder}: no adapter_model.safetensors (pickled adapters are not loaded)")
    wrapped = get_peft_model(model, LoraConfig.from_pretrained(str(folder)))
    set_peft_model_state_dict(wrapped, load_file(weights))
    return wrapped.merge_and_unload()


class TransformersChat:
    """A causal LM, or a seq2seq model such as T5, run by transformers; ``gguf_file`` loads (and
    dequantises) a GGUF file.

    ``adapter``: a LoRA adapter folder (PEFT, safetensors) merged into the weights at load time, so
    generation runs at the base model's speed.  ``precision``: ``fp32``, ``bf16``, ``int8`` (dynamic
    quantisation of the linear layers, CPU), ``int8-head`` (the output layer alone) or ``auto`` (bf16
    where the hardware does it natively).  ``refusal_threshold``: refuse when the refusal's first token
    is at least this likely (:mod:`rag_qa.readers.refusal`; None: whatever greedy decoding ranks first).
    ``vocab``: ``full``, or ``prompt`` for a grounded reader that copies its answers: after the first token
    the output layer scores only the prompt's tokens (:mod:`rag_qa.readers.vocab_head`).
    ``prefix_cache``: prefill the system prompt once and reuse its KV cache in every reply
    (:mod:`rag_qa.readers.prefix_cache`; decoder-only models).  ``decode_weights``: ``fp16`` or ``bf16``
    copies of the linear layers' fp32 weights for the generated tokens (:mod:`rag_qa.readers.decode_weights`);
    ``fp32``: none.
    """

    def __init__(self, model: str, gguf_file: str | None = None, source: str = "", adapter: str | None = None,
                 precision: str = "fp32", refusal_threshold: float | None = None, vocab: str = "full",
                 prefix_cache: bool = True, decode_weights: str = "fp32") -> None:
        self.model_name, self.gguf_file, self.source = model, gguf_file, source
        self.adapter, self.refusal_threshold, self.vocab = adapter, refusal_threshold, vocab
        self.prefix_cache, self.decode_weights = prefix_cache, decode_weights
        self._prefixes: PrefixCache | None = None
        self._vocab_head: Any = None
        self._fixed_reply_ids: list[int] | None = None
        if precision == "auto":
            from rag_qa.hardware import native_bf16

            precision = "bf16" if native_bf16("cpu") else "fp32"
        self.precision = precision
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    @classmethod
    def loaded(cls, model: Any, tokenizer: Any, source: str = "") -> TransformersChat:
        """A backend over a model already in memory (a training run's evaluation).  No prefix cache: the
        weights may still change after it is made."""
        chat = cls(getattr(model, "name_or_path", "in-memory model"), source=source or "in memory",
                   prefix_cache=False)
        chat._model, chat._tokenizer = model.eval(), tokenizer
        return chat

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            # weights from a GGUF file (dequantised once into the cache) or safetensors, never from a pickle
            if self.gguf_file:
                from rag_qa.models import dequantised

                folder = dequantised(Path(self.model_name) / self.gguf_file)
                self._tokenizer = AutoTokenizer.from_pretrained(folder)
                model = AutoModelForCausalLM.from_pretrained(folder, use_safetensors=True, dtype=torch.float32)
            else:
                from transformers import AutoConfig, AutoModelForSeq2SeqLM

                self._tokenizer = AutoTokenizer.from_pretrained(self.model_name)
                # an encoder-decoder (T5, FLAN-T5, BART) reads the prompt and writes the answer: the seq2seq
                # reader of the QA literature; a decoder-only model continues the prompt
                seq2seq = AutoConfig.from_pretrained(self.model_name).is_encoder_decoder
                auto = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
                model = auto.from_pretrained(self.model_name, use_safetensors=True, dtype=torch.float32)
            if self.adapter:
                model = merge_lora(model, Path(self.adapter))
            if self.precision == "bf16":
                model = model.to(torch.bfloat16)
            elif self.precision == "int8":
                model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
            elif self.precision == "int8-head":
                # the output layer alone: Gemma 3's is 262k x 640, most of a generated token's weight reads;
                # int8 activations in the layers inside cost it most of its F1 (benchmarks/gen_speed.py)
                model = torch.ao.quantization.quantize_dynamic(model, {"lm_head"}, dtype=torch.qint8)
            if self.decode_weights != "fp32":  # before the vocabulary head, which keeps the output layer's own
                from rag_qa.readers import decode_weights

                decode_weights.install(model, self.decode_weights)
            if self.vocab == "prompt" and not model.config.is_encoder_decoder:
                from rag_qa.readers.vocab_head import install

                self._vocab_head = install(model)
            self._model = model.eval()
            if self.prefix_cache and not model.config.is_encoder_decoder:
                from rag_qa.readers.prefix_cache import PrefixCache

                self._prefixes = PrefixCache(self._model, lambda messages: encode_prompt(self._tokenizer, messages))

    @property
    def tokenizer(self) -> Any:
        """The loaded tokenizer (loads the model on first use)."""
        self.load()
        return self._tokenizer

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _inputs(self, messages: Messages) -> dict[str, Any]:
        import torch

        ids = torch.tensor([encode_prompt(self._tokenizer, messages)])
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    def stream(self, messages: Messages, max_new_tokens: int, temperature: float) -> Iterator[str]:
        from transformers import LogitsProcessorList, StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        self.load()
        stop = threading.Event()

        class _StopWhenAsked(StoppingCriteria):
            """Ends generation early when the consumer stops reading the stream."""

            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
                return stop.is_set()

        streamer = TextIteratorStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True)
        greedy = temperature <= 0
        sampling = {"do_sample": False} if greedy else {"do_sample": True, "temperature": temperature}
        inputs = self._inputs(messages)
        kwargs = dict(
            **inputs,
            streamer=streamer,
            max_new_tokens=max_new_tokens,
            stopping_criteria=StoppingCriteriaList([_StopWhenAsked()]),
            logits_processor=LogitsProcessorList(self.refusal_rule()),
            pad_token_id=self._tokenizer.pad_token_id or self._tokenizer.eos_token_id,
            **sampling,
        )
        prompt_ids = inputs["input_ids"][0].tolist()
        if self._prefixes is not None:  # the system prompt's keys and values, prefilled once
            kwargs.update(self._prefixes.for_prompt(messages, prompt_ids))
        restricted = self.restricted(prompt_ids)
        errors: list[BaseException] = []

        def generate() -> None:
            import torch

            try:
                # no autograd bookkeeping; the KV cache is on by default
                with torch.inference_mode(), restricted:
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

    def restricted(self, prompt_ids: list[int]) -> contextlib.AbstractContextManager[None]:
        """Where generation for ``prompt_ids`` runs: the output layer restricted to :meth:`reply_vocabulary` after
        the first token when ``vocab`` is ``prompt`` (entered on the thread that generates), else as it is."""
        if self._vocab_head is None:
            return contextlib.nullcontext()
        return self._vocab_head.restricted_to(self.reply_vocabulary(prompt_ids))

    def reply_vocabulary(self, prompt_ids: list[int]) -> list[int]:
        """The ids a reply to ``prompt_ids`` may use after its first token (:mod:`rag_qa.readers.vocab_head`)."""
        from rag_qa.readers.vocab_head import fixed_reply_ids, reply_vocabulary

        if self._fixed_reply_ids is None:  # the same for every reply: made once
            from rag_qa.readers.prompting import REFUSAL

            ends = self._model.generation_config.eos_token_id
            ends = [ends] if isinstance(ends, int) else list(ends or [])
            # the prompt numbers its passages in markup (<passage id="2" ...>): the citation's "[2]" is not in it
            citations = [encode_reply(self._tokenizer, f"{space}[{n}]") for n in range(1, 33) for space in ("", " ")]
            replies = [encode_reply(self._tokenizer, REFUSAL), *citations]
            self._fixed_reply_ids = fixed_reply_ids(replies, [*ends, self._tokenizer.eos_token_id])
        return reply_vocabulary(self._tokenizer, prompt_ids, self._fixed_reply_ids)

    def refusal_rule(self) -> list[Any]:
        """The first-token refusal rule when a threshold is set (a fresh one per reply: it keeps state)."""
        if self.refusal_threshold is None:
            return []
        from rag_qa.readers.prompting import REFUSAL
        from rag_qa.readers.refusal import RefusalThreshold

        return [RefusalThreshold(encode_reply(self._tokenizer, REFUSAL)[0], self.refusal_threshold)]

    def describe(self) -> dict[str, Any]:
        return {"engine": "transformers", "model": self.model_name, "gguf_file": self.gguf_file,
                "adapter": self.adapter, "precision": self.precision, "refusal_threshold": self.refusal_threshold,
                "vocab": self.vocab, "prefix_cache": self.prefix_cache,
                "decode_weights": self.decode_weights,
                "weights": self.source or self.model_name}


class LlamaCppChat:
    """A GGUF model run by llama-cpp-python (the optional ``llm`` extra)."""

    def __init__(self, gguf_path: str, context_tokens: int, source: str = "") -> None:
        self.gguf_path, self.context_tokens, self.source = gguf_path, context_tokens, source
        self._llm: Any = None
        self._lock = threading.Lock()
        self._generating = threading.Lock()

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
        # one generation at a time: a Llama holds one KV state, which it reuses for the next prompt's matching
        # start, and is not thread-safe; two users' questions at once would read each other's passages
        with self._generating:
            chunks = self._llm.create_chat_completion(
                messages=list(messages), max_tokens=max_new_tokens, temperature=temperature,
                repeat_penalty=1.0, stream=True,
            )
            try:
                for chunk in chunks:
                    piece = chunk["choices"][0]["delta"].get("content")
                    if piece:
                        yield piece
            finally:  # a consumer that stops early (the answer line is done) ends the generation here
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()

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
