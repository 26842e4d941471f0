"""Settings with defaults, overridable by ``RAGQA_*`` environment variables or a config file.

The config file is ``rag-qa.toml`` in the working directory, or the path in ``RAGQA_CONFIG``.
Precedence: command-line flag > environment > config file > default.  Every ``RAGQA_*`` variable
is a field of :class:`Settings`; the reference table (docs/configuration.md) is generated from
the fields' descriptions by :mod:`rag_qa.config_reference`.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

RetrievalMode = Literal["dense", "bm25", "hybrid"]
#: the retrieval modes, for command-line choices, the UI and the retriever factory
MODES: tuple[str, ...] = get_args(RetrievalMode)
_READER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class Settings(BaseSettings):
    """Every setting of the app: ``RAGQA_<NAME>`` in the environment, ``name`` in the config file.

    Each field's ``description`` is its entry in docs/configuration.md, which
    ``python -m rag_qa.config_reference`` writes from this class.
    """

    model_config = SettingsConfigDict(env_prefix="RAGQA_", extra="ignore")

    # where things live
    index: Path = Field(Path("indexes/default"), description="The index the commands and the app use when none "
                        "is named (`--index`).")
    config: Path = Field(Path("rag-qa.toml"), description="The config file the other settings are read from "
                         "(below the environment, above the defaults). Read from the environment only.")
    models_dir: Path | None = Field(None, description="Folder searched for a model named by its folder name "
                                    "(`extractive:minilm-squad`, a LoRA adapter `generative:<name>`); unset: "
                                    "`models/` in this checkout.")
    cache_dir: Path | None = Field(None, description="Cache of tokenised training features, evaluation indexes "
                                   "and models assembled from split packages; unset: `~/.cache/rag-qa`.")
    # ingestion
    embedding_model: str = Field("minilm", description="Embedding model for new indexes: alias (`minilm`, "
                                 "`mpnet`), local folder or hub id. An index answers only queries embedded by "
                                 "the model it was built with.")
    chunk_tokens: int = Field(200, description="Chunk size in embedding-model tokens (MiniLM was trained on at "
                              "most 256).")
    chunk_overlap: int = Field(40, description="Tokens two neighbouring chunks of a document share.")
    max_file_mb: float = Field(50.0, description="A larger file is refused before it is parsed.")
    embed_batch_size: int = Field(32, description="Chunks embedded per forward pass (32 beat 64 on 2 cores: less "
                                  "padding, the same speed per token).")
    max_docx_uncompressed_mb: float = Field(200.0, description="Zip-bomb guard: total uncompressed size of a "
                                            ".docx/.pptx/.xlsx/.epub.")
    max_zip_ratio: float = Field(200.0, description="Zip-bomb guard: a member of such a zip compressed more than "
                                 "this is refused.")
    max_text_chars: int = Field(10_000_000, description="Extracted text longer than this is refused: bounds "
                                "chunking and embedding.")
    parse_timeout_s: float = Field(120.0, description="A file whose parser runs longer is skipped (parsing runs "
                                   "in a worker process; with OCR, the limit is per page).")
    parse_memory_mb: int = Field(2048, description="Address-space cap of the parser worker: a parser bomb fails "
                                 "alone.")
    parse_processes: int = Field(0, description="Parser workers reading files at once while the embedder runs; "
                                 "0: half the cores, 1 to 4.")
    debug: bool = Field(False, description="`python -m ingest` shows the traceback of an unexpected error instead "
                        "of one line.")
    # ingest on a Ray cluster (python -m ingest --ray ADDRESS; pip install -e ".[cluster]"; see ingest.ray_pipeline)
    ray_address: str | None = Field(None, description="Ingest on a Ray cluster (`--ray`): `local` starts one "
                                    "in-process; `auto` or `ray://host:10001` joins one. Needs the pgvector "
                                    "store.")
    ray_workers: int = Field(0, description="Embedding actors on the cluster (each holds the model once); 0: as "
                             "many as the cluster's CPUs allow.")
    ray_worker_cpus: float = Field(1.0, description="CPUs each embedding actor reserves (and torch threads it "
                                   "runs, at least 1).")
    ray_parse_cpus: float = Field(0.25, description="CPUs each parse/chunk task reserves (parsing is a small "
                                  "share of the work).")
    ray_commit_chunks: int = Field(1024, description="Chunks per PostgreSQL transaction in a Ray ingest (whole "
                                   "documents each).")
    # OCR of scanned PDF pages and pictures (Tesseract; see ingest.formats.ocr)
    ocr: bool = Field(True, description="Read scanned PDF pages and pictures with Tesseract; false: they are "
                      "not read.")
    ocr_lang: str = Field("eng", description="Tesseract languages, e.g. `deu` or `eng+fra` (each needs "
                          "`tesseract-ocr-LANG`).")
    ocr_dpi: int = Field(300, description="Resolution scanned PDF pages are rendered at for Tesseract.")
    ocr_workers: int = Field(0, description="Pages OCRed at once; 0: one per core.")
    ocr_max_pages: int = Field(500, description="Pages OCRed per file at most (a longer scan is read up to here, "
                               "with a note).")
    ocr_max_megapixels: float = Field(100.0, description="A bigger picture is refused as an image bomb; PDF pages "
                                      "are rendered smaller instead.")
    max_attachments: int = Field(100, description="Attachments read per e-mail (the rest are listed in a note).")
    lock_timeout_s: float = Field(60.0, description="A second writer waits this long for the index lock, then "
                                  "fails.")
    keep_versions: int = Field(2, description="Index versions kept on disk (the current one and the one before).")
    # where indexes live (see rag_qa.store)
    store: Literal["faiss", "pgvector"] = Field("faiss", description="Where indexes live: `faiss` (a versioned "
                                                "folder per index) or `pgvector` (a schema per index on the "
                                                "PostgreSQL server at `pg_dsn`).")
    pg_dsn: str | None = Field(None, description="PostgreSQL server of the pgvector store, e.g. "
                               "`postgresql://user:pass@host:5432/db`.")
    pg_ef_search: int = Field(100, description="HNSW candidate list per dense query (pgvector): higher is better "
                              "recall, slower.")
    # retrieval
    mode: RetrievalMode = Field("hybrid", description="Retrieval: dense vectors, BM25 keywords, or both fused.")
    top_k: int = Field(5, ge=1, description="Passages retrieved and read per question.")
    # reading
    reader: str = Field("extractive", description="Reader that answers: `extractive`, `extractive:<model>`, "
                        "`generative`, `generative:<name>` (`python -m rag_qa readers`).")
    max_answer_length: int = Field(30, description="Extractive reader: longest answer in tokens.")
    no_answer_threshold: float = Field(0.3, description="Extractive reader: an answer less confident than this is "
                                       "reported as no answer. 0.3 drops 8% of SQuAD dev answers, 88% of them "
                                       "wrong, and loses 1.5% of right ones "
                                       "(benchmarks/results/calibration_pairs.json).")
    reader_precision: Literal["auto", "fp32", "bf16", "int8"] = Field(
        "auto", description="Extractive reader arithmetic: `auto` is bf16 where the CPU/GPU does it natively, "
        "else fp32; `int8` is dynamic quantisation of the linear layers (CPU only).")
    # generative reader (see rag_qa.readers.generative)
    llm_model: str = Field("gemma3-squad-lora", description="What plain `--reader generative` runs: a name of "
                           "`python -m rag_qa readers` (default: Gemma 3 270M with our LoRA adapter, "
                           "models/gemma3-squad-lora).")
    llm_backend: Literal["auto", "llama.cpp", "transformers"] = Field(
        "auto", description="How a local GGUF model runs; `auto`: llama.cpp if installed, else transformers.")
    llm_base_url: str | None = Field(None, description="Default server for `openai:<model>` and "
                                     "`ollama:<model>`.")
    llm_api_key: str | None = Field(None, description="API key for OpenAI-compatible servers; unset: "
                                    "`OPENAI_API_KEY`.")
    llm_context_tokens: int = Field(2048, description="Prompt + answer budget of the generative reader; passages "
                                    "beyond it are dropped.")
    max_new_tokens: int = Field(64, description="Longest generated answer in tokens.")
    llm_precision: Literal["auto", "fp32", "bf16", "int8", "int8-head"] = Field(
        "auto", description="Arithmetic of an LLM run by transformers: `auto` is bf16 where the CPU/GPU does it "
        "natively, else fp32; `int8` is dynamic quantisation of the linear layers (CPU; fast, but it costs "
        "Gemma 3 most of its F1); `int8-head` quantises the output layer alone (CPU; about 1.6x the decode "
        "speed, F1 kept); benchmarks/gen_speed.py measures each.")
    llm_refusal_threshold: float | None = Field(
        None, ge=0.0, description="A LoRA-tuned generative reader (ours) refuses when the first token of its "
        "refusal is at least this likely, and answers otherwise; unset: whichever greedy decoding ranks first. "
        "Lower refuses more; benchmarks/refusal_threshold.py measures the trade-off on dev questions.")
    llm_vocab: Literal["full", "prompt"] = Field(
        "prompt", description="Output vocabulary of a LoRA-tuned generative reader (ours), run by transformers: "
        "`prompt`: after a reply's first token only the prompt's own tokens (and the citations', the refusal's and "
        "the end-of-turn ones) are scored, which skips most of Gemma 3's 262k-row output layer per generated token "
        "(2.1x the decode speed, the same answers: rag_qa/readers/vocab_head.py); `full`: every token.")
    llm_decode_weights: Literal["fp32", "fp16", "bf16"] = Field(
        "fp16", description="Weights a LoRA-tuned generative reader (ours), run by transformers in fp32, reads for "
        "each generated token: `fp16` or `bf16` copies of its linear layers (decoding is bound by reading them: "
        "about 1.8x the decode speed, the same answers on held-out questions; prefill keeps fp32; ~200 MB more "
        "memory for Gemma 3 270M: rag_qa/readers/decode_weights.py); `fp32`: no copies.")
    llm_passage_words: int = Field(0, description="Each passage the LLM reads is cut to this many words of whole "
                                   "sentences around the one most like the question (0: whole passages); fewer "
                                   "prompt tokens, a faster answer.")
    llm_focus: Literal["question", "reader"] = Field(
        "question", description="What picks the sentences `llm_passage_words` keeps: `question`, the sentence "
        "sharing the most words with the question; `reader`, the sentence holding the extractive reader's best "
        "span in that passage (it reads the passages first, ~0.1 s).")
    temperature: float = Field(0.0, description="Sampling temperature of the generative reader; 0 is greedy "
                               "(deterministic).")
    # UI
    host: str = Field("127.0.0.1", description="Address the web app binds (beyond loopback only with a users "
                      "file).")
    port: int = Field(7860, description="Port of the web app.")
    max_upload_mb: float = Field(50.0, description="Largest file the web app accepts as an upload.")
    root_path: str = Field("", description="Public path prefix behind a reverse proxy, e.g. `/rag` (Gradio's "
                           "root_path).")
    ui_readers: list[str] | None = Field(None, description="The readers a web-app or HTTP-API user may pick (the "
                                         "CLI, the operator's own tool, takes any reader spec). Unset: the built-in "
                                         "readers that load offline (`rag_qa.readers.registry.BUILTIN_READERS`); a "
                                         "list narrows that, e.g. `[\"extractive\"]`; an entry may be a full spec the "
                                         "operator trusts (`extractive:/srv/m`).")
    ui_reader_specs: dict[str, str] = Field({}, description="More readers offered under a name, the spec (URL, "
                                            "model folder) staying on the server: `{\"team-llm\": "
                                            "\"generative:openai:llama3@http://10.0.0.5:8000/v1\"}`; users see and "
                                            "send only `team-llm`.")
    max_question_chars: int = Field(2000, description="Longer questions and search queries are refused with a "
                                    "message.")
    user_concurrency: int = Field(2, description="Requests one signed-in user may have running at once; more are "
                                  "refused.")
    # team use (ui.auth): accounts and per-index roles; with it, every page and API call needs sign-in
    users_file: Path | None = Field(None, description="Accounts and per-index roles (`python -m ui users`); set, "
                                    "every page and API call needs sign-in.")
    signin_log: Path = Field(Path("indexes/sign-ins.jsonl"), description="The server-wide audit log: sign-ins, "
                             "account changes (`python -m ui users`), sessions ended, and refusals that name no "
                             "index on offer; each index keeps its own log beside it.")
    audit_questions: bool = Field(False, description="Also write questions and searches to the index's audit "
                                  "log.")
    signin_max_failures: int = Field(5, description="Failed sign-ins per user name within the window before a "
                                     "lockout.")
    signin_max_failures_per_address: int = Field(20, description="Failed sign-ins per client address within the "
                                                 "window before a lockout.")
    signin_window_s: float = Field(900.0, description="The window the failed sign-ins are counted in.")
    signin_lockout_s: float = Field(300.0, description="How long sign-in pauses for a locked-out name or "
                                    "address.")
    signin_failure_delay_s: float = Field(1.0, description="Every failed sign-in is answered only after this "
                                          "pause.")
    session_idle_s: float = Field(3600.0, description="A signed-in session ends after this long without a "
                                  "request (and at once when its user's password changes or the user is removed).")
    session_max_s: float = Field(43200.0, description="A signed-in session ends this long after sign-in at the "
                                 "latest.")
    trusted_user_header: str | None = Field(None, description="Single sign-on from an authenticating proxy on "
                                            "this machine, e.g. `X-Forwarded-User` from oauth2-proxy: believed "
                                            "only from a loopback peer; then the app binds loopback only and "
                                            "passwords are not used.")

    @field_validator("users_file", "trusted_user_header", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """``RAGQA_USERS_FILE=`` (empty) means no users file, not the current directory."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("ui_reader_specs")
    @classmethod
    def _reader_names(cls, value: dict[str, str]) -> dict[str, str]:
        """A name users pick is a short word, never a spec (no ':'), so the two cannot be mistaken."""
        for name, spec in value.items():
            if not _READER_NAME.match(name):
                raise ValueError(f"reader name {name!r} in RAGQA_UI_READER_SPECS must be letters, digits, '.', "
                                 "'_' and '-' (at most 64), without ':'")
            if not spec.strip():
                raise ValueError(f"reader {name!r} in RAGQA_UI_READER_SPECS needs a spec, e.g. "
                                 "generative:openai:MODEL@URL")
        return value

    @field_validator("session_idle_s", "session_max_s")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("a session lifetime must be more than 0 seconds")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # the config file is named before any source is read: by the environment alone
        default = settings_cls.model_fields["config"].default
        toml = TomlConfigSettingsSource(settings_cls, toml_file=os.environ.get("RAGQA_CONFIG", default))
        return (init_settings, env_settings, toml)


class SettingsError(ValueError):
    """A setting (environment variable or config file) that does not validate; the message is one line."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings from the environment and the config file; a bad value is a :class:`SettingsError`
    naming the setting, not a pydantic traceback."""
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as err:
        config = os.environ.get("RAGQA_CONFIG", Settings.model_fields["config"].default)
        problems = [
            f"{'.'.join(map(str, e['loc']))} (RAGQA_{str(e['loc'][0]).upper()} or {config}): "
            f"{e['msg'][0].lower()}{e['msg'][1:]}, not {e.get('input')!r}"
            for e in err.errors()
        ]
        raise SettingsError("invalid setting " + "; ".join(problems)) from None
