"""The process environment: offline defaults every entry point sets, and what child processes get.

Offline first: no model hub calls, no telemetry, no Gradio analytics unless the user asked for
them (a value already in the environment wins).  Set them before transformers, tokenizers,
huggingface_hub or gradio are imported; they read them at import time.
"""

from __future__ import annotations

import os
from pathlib import Path

OFFLINE_DEFAULTS = {
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "TOKENIZERS_PARALLELISM": "false",
}

#: the folder holding this checkout's ``rag_qa``, ``ingest`` and ``ui`` packages
CHECKOUT = Path(__file__).resolve().parents[1]


def set_offline_defaults() -> None:
    """:data:`OFFLINE_DEFAULTS` into ``os.environ``, keeping whatever the user set."""
    for key, value in OFFLINE_DEFAULTS.items():
        os.environ.setdefault(key, value)


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a ``python -m ...`` child of this process: this checkout first on its
    path (so the child runs this very code), plus ``extra``."""
    path = os.pathsep.join([str(CHECKOUT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return {**os.environ, "PYTHONPATH": path, **extra}
