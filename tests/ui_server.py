"""Start the real Gradio app in this process on a free loopback port (models load once per process)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import ui  # noqa: F401 - sets the offline environment defaults before gradio is imported


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(index: Path, indexes_root: Path) -> Iterator[str]:
    """Serve the app over ``index`` on 127.0.0.1 and yield its URL; closed afterwards."""
    from rag_qa.config import Settings
    from ui.app import build_app, launch

    settings = Settings()
    demo = build_app(index, settings, indexes_root=indexes_root)
    launch(demo, settings, host="127.0.0.1", port=free_port(), block=False)
    try:
        yield demo.local_url
    finally:
        demo.close()
