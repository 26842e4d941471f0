"""Settings with defaults, overridable by ``RAGQA_*`` environment variables or a config file.

The config file is ``rag-qa.toml`` in the working directory, or the path in ``RAGQA_CONFIG``.
Precedence: command-line flag > environment > config file > default.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args

from pydantic import field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

RetrievalMode = Literal["dense", "bm25", "hybrid"]
#: the retrieval modes, for command-line choices, the UI and the retriever factory
MODES: tuple[str, ...] = get_args(RetrievalMode)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAGQA_", extra="ignore")

    # where things live
    index: Path = Path("indexes/default")
    # ingestion
    embedding_model: str = "minilm"
    chunk_tokens: int = 200  # chunk size in embedding-model tokens (MiniLM was trained on <=256)
    chunk_overlap: int = 40
    max_file_mb: float = 50.0
    embed_batch_size: int = 32  # chunks per forward pass; 32 beat 64 on 2 cores (less padding, same speed per token)
    max_docx_uncompressed_mb: float = 200.0  # zip-bomb guard: total uncompressed size of a .docx/.pptx/.xlsx/.epub
    max_zip_ratio: float = 200.0  # zip-bomb guard: a member of such a zip compressed more than this is refused
    max_text_chars: int = 10_000_000  # extracted text longer than this is refused: bounds chunking/embedding
    parse_timeout_s: float = 120.0  # a file whose parser runs longer is skipped (parsing runs in a worker)
    parse_memory_mb: int = 2048  # address-space cap of that worker: a parser bomb fails alone
    parse_processes: int = 0  # parser workers reading files at once while the embedder runs; 0 = half the cores, 1-4
    # ingest on a Ray cluster (python -m ingest --ray ADDRESS; pip install -e ".[cluster]"; see ingest.ray_pipeline)
    ray_address: str | None = None  # "local" starts a cluster in-process; "auto" or "ray://host:10001" joins one
    ray_workers: int = 0  # embedding actors (each holds the model once); 0 = as many as the cluster's CPUs allow
    ray_worker_cpus: float = 1.0  # CPUs each embedding actor reserves (and torch threads it runs, at least 1)
    ray_parse_cpus: float = 0.25  # CPUs each parse/chunk task reserves (parsing is a small share of the work)
    ray_commit_chunks: int = 1024  # chunks per PostgreSQL transaction in a Ray ingest (whole documents each)
    # OCR of scanned PDF pages and pictures (Tesseract; see ingest.formats.ocr)
    ocr: bool = True  # false: scanned pages and pictures are not read
    ocr_lang: str = "eng"  # Tesseract languages, e.g. "deu" or "eng+fra" (each needs tesseract-ocr-LANG)
    ocr_dpi: int = 300  # resolution scanned PDF pages are rendered at for Tesseract
    ocr_workers: int = 0  # pages OCRed at once; 0 = one per core
    ocr_max_pages: int = 500  # pages OCRed per file at most (a long scan is read up to here, with a note)
    ocr_max_megapixels: float = 100.0  # a bigger picture is refused as an image bomb; PDF pages render smaller
    max_attachments: int = 100  # attachments read per e-mail (the rest are listed in a note)
    lock_timeout_s: float = 60.0  # a second writer waits this long for the index lock, then fails
    keep_versions: int = 2  # index versions kept on disk (the current one and the one before)
    # where indexes live: "faiss" (a versioned folder per index) or "pgvector" (a schema per index on
    # the PostgreSQL server at pg_dsn, e.g. postgresql://user:pass@host:5432/db; see rag_qa.store.pg)
    store: Literal["faiss", "pgvector"] = "faiss"
    pg_dsn: str | None = None
    pg_ef_search: int = 100  # HNSW candidate list per dense query (pgvector): higher = better recall, slower
    # retrieval
    mode: RetrievalMode = "hybrid"
    top_k: int = 5
    # reading
    reader: str = "extractive"
    max_answer_length: int = 30  # tokens
    # answer confidence below this -> "no answer"; 0.3 drops 8% of SQuAD dev answers, 88% of them
    # wrong, and loses 1.5% of right ones (benchmarks/results/calibration_pairs.json)
    no_answer_threshold: float = 0.3
    # extractive reader arithmetic: auto = bf16 where the CPU/GPU does it natively, else fp32;
    # int8 = dynamic quantisation of the linear layers (CPU only)
    reader_precision: Literal["auto", "fp32", "bf16", "int8"] = "auto"
    # generative reader (see rag_qa.readers.generative)
    llm_model: str = "smollm2"  # what plain `--reader generative` runs
    llm_backend: Literal["auto", "llama.cpp", "transformers"] = "auto"  # auto: llama.cpp if installed
    llm_base_url: str | None = None  # default server for `openai:<model>` / `ollama:<model>`
    llm_api_key: str | None = None  # OpenAI-compatible servers; falls back to OPENAI_API_KEY
    llm_context_tokens: int = 2048  # prompt + answer budget; passages beyond it are dropped
    max_new_tokens: int = 64
    temperature: float = 0.0  # 0 = greedy (deterministic)
    # UI
    host: str = "127.0.0.1"
    port: int = 7860
    max_upload_mb: float = 50.0
    root_path: str = ""  # public path prefix behind a reverse proxy, e.g. "/rag" (Gradio's root_path)
    max_question_chars: int = 2000  # longer questions and search queries are refused with a message
    user_concurrency: int = 2  # requests one signed-in user may have running at once; more are refused
    # team use (ui.auth): accounts and per-index roles; with it, every page and API call needs sign-in
    users_file: Path | None = None
    signin_log: Path = Path("indexes/sign-ins.jsonl")  # server-wide audit of sign-ins (they have no index)
    audit_questions: bool = False  # also write questions and searches to the index's audit log
    signin_max_failures: int = 5  # failed sign-ins per user name within the window before a lockout
    signin_max_failures_per_address: int = 20  # the same, per client address
    signin_window_s: float = 900.0
    signin_lockout_s: float = 300.0
    signin_failure_delay_s: float = 1.0  # every failed sign-in is answered only after this pause
    # single sign-on from an authenticating proxy on this machine (e.g. "X-Forwarded-User" from
    # oauth2-proxy); off unless set; then the app only binds to loopback and passwords are not used
    trusted_user_header: str | None = None

    @field_validator("users_file", "trusted_user_header", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """``RAGQA_USERS_FILE=`` (empty) means no users file, not the current directory."""
        return None if isinstance(value, str) and not value.strip() else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=os.environ.get("RAGQA_CONFIG", "rag-qa.toml"))
        return (init_settings, env_settings, toml)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
