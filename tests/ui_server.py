"""Start the real Gradio app in this process on a free loopback port (models load once per process)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import ui  # noqa: F401 - sets the offline environment defaults before gradio is imported

if TYPE_CHECKING:
    import gradio as gr

    from rag_qa.config import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(index: Path, indexes_root: Path, settings: Settings | None = None) -> Iterator[gr.Blocks]:
    """Serve the app over ``index`` on a free port and yield it (``.local_url``); closed afterwards.

    No host is passed, exactly as ``python -m ui`` does: the default binding (127.0.0.1) applies.
    """
    from rag_qa.config import Settings
    from ui.app import build_app, launch

    settings = (settings or Settings()).model_copy(update={"port": free_port()})
    demo = build_app(index, settings, indexes_root=indexes_root)
    launch(demo, settings, block=False)
    try:
        yield demo
    finally:
        demo.close()
