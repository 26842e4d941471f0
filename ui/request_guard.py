"""Files a request names must be files uploaded to this app, checked before Gradio touches them.

An API caller names files as ``{"path": ..., "meta": {"_type": "gradio.FileData"}}``.  Before any
handler runs, Gradio refuses a path outside its upload folder, but the caller only gets ``{"error":
null}`` and nothing is written down; and a path that is an ``http(s)://`` URL it downloads from the
internet into its cache, which an app that promises not to phone home must not do on a user's
say-so.  :class:`GuardedBlocks` looks at every file an event's inputs name first: anything but a
file in Gradio's upload folder (:func:`ui.uploads.gradio_upload_folder`) is refused with a message
the caller sees (a ``gr.Error``), one line in the audit trail (``on_refused``), and nothing is read,
copied or fetched.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
from gradio_client.utils import is_file_obj_with_meta

from ui.uploads import gradio_upload_folder

#: called with (user, endpoint, the paths refused, the event's raw inputs, the message) to audit a refusal
OnRefused = Callable[[str | None, str, list[str], list[Any], str], None]
NOT_UPLOADED = ("{what} not uploaded to this app, so it cannot be used: upload the file first "
                "(the page does; gradio_client.handle_file does for the API) and send the path the upload returned.")


def named_files(data: Any) -> Iterator[str]:
    """The ``path`` of every Gradio file object in ``data`` (nested lists and dicts), as Gradio finds them."""
    if is_file_obj_with_meta(data):
        yield data["path"]
    elif isinstance(data, dict):
        for value in data.values():
            yield from named_files(value)
    elif isinstance(data, list | tuple):
        for value in data:
            yield from named_files(value)


def is_upload(path: str, folder: Path | None = None) -> bool:
    """True for a file inside Gradio's upload folder (never a URL, a folder or anything outside it)."""
    folder = folder or gradio_upload_folder()
    try:
        resolved = Path(path).resolve()
    except (OSError, ValueError):  # a NUL byte, a loop of links
        return False
    return resolved != folder and resolved.is_relative_to(folder)


class GuardedBlocks(gr.Blocks):
    """``gr.Blocks`` that refuses, with a message and an audit line, any event naming a file not uploaded here."""

    def __init__(self, *args: Any, on_refused: OnRefused | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_refused = on_refused

    async def process_api(self, block_fn: Any, inputs: list[Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        folder = gradio_upload_folder()
        foreign = [path for path in named_files(inputs) if not is_upload(path, folder)]
        if foreign:
            fn = self.fns[block_fn] if isinstance(block_fn, int) else block_fn
            request = kwargs.get("request", args[1] if len(args) > 1 else None)
            user = getattr(request, "username", None) if not isinstance(request, list) else None
            what = (f"The file {html.escape(repr(foreign[0][:200]))} was" if len(foreign) == 1
                    else f"{len(foreign)} of the files named were")
            message = NOT_UPLOADED.format(what=what)
            if self.on_refused is not None:
                self.on_refused(user, str(getattr(fn, "api_name", None) or getattr(fn, "name", "?")), foreign,
                                inputs, message)
            raise gr.Error(message, print_exception=False)
        return await super().process_api(block_fn, inputs, *args, **kwargs)
