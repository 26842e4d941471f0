"""Settings with defaults, overridable by ``RAGQA_*`` environment variables or a config file.

The config file is ``rag-qa.toml`` in the working directory, or the path in ``RAGQA_CONFIG``.
Precedence: command-line flag > environment > config file > default.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

RetrievalMode = Literal["dense", "bm25", "hybrid"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAGQA_", extra="ignore")

    # where things live
    index: Path = Path("indexes/default")
    # ingestion
    embedding_model: str = "minilm"
    chunk_tokens: int = 200  # chunk size in embedding-model tokens (MiniLM was trained on <=256)
    chunk_overlap: int = 40
    max_file_mb: float = 50.0
    embed_batch_size: int = 64
    # retrieval
    mode: RetrievalMode = "hybrid"
    top_k: int = 5
    rerank: bool = False
    # reading
    reader: str = "extractive"
    max_answer_length: int = 30  # tokens
    no_answer_threshold: float = 0.1  # answer confidence below this -> "no answer"
    # UI
    host: str = "127.0.0.1"
    port: int = 7860
    max_upload_mb: float = 50.0

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
