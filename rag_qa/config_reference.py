"""docs/configuration.md, written from :class:`rag_qa.config.Settings`: one row per setting with
its ``RAGQA_*`` variable, its default and its field's description.

    python -m rag_qa.config_reference            # rewrite docs/configuration.md (or: make docs)
    python -m rag_qa.config_reference --check    # exit 1 when the file is out of date

The table is the fields themselves, so a new field appears after a regenerate; tests/test_docs.py
fails while the committed file differs from what this writes.
"""

from __future__ import annotations

import argparse
import sys
import typing
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo

from rag_qa.config import Settings

PATH = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
PREFIX = Settings.model_config["env_prefix"]

#: headings of the table's parts, by the first field of each part (fields keep their order in Settings)
SECTIONS = {
    "index": "Where things live",
    "embedding_model": "Ingestion",
    "ray_address": "Ingestion on a Ray cluster",
    "ocr": "OCR",
    "max_attachments": "Ingestion limits and index versions",
    "store": "Index store",
    "mode": "Retrieval",
    "reader": "Reading",
    "llm_model": "Generative reader",
    "host": "Web app",
    "users_file": "Team use: accounts, sign-in and audit",
}

HEADER = f"""# Configuration

Every setting is a `{PREFIX}<NAME>` environment variable, or `name = value` in the config file
(`rag-qa.toml` in the working directory, or the file in `{PREFIX}CONFIG`). Precedence: a command-line
flag, then the environment, then the config file, then the default below.

```bash
{PREFIX}READER=generative {PREFIX}TOP_K=8 python -m rag_qa ask "Who designed packet switching?"
```

```toml
# rag-qa.toml
reader = "generative"
top_k = 8
```

<!-- Generated from rag_qa/config.py (Settings) by `python -m rag_qa.config_reference` (make docs);
     do not edit by hand: tests/test_docs.py fails while this file is out of date. -->
"""


def _default(info: FieldInfo) -> str:
    """The default as one would write it in the environment; ``unset`` for None."""
    value = info.default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if value == "":
        return '`""`'
    return f"`{value}`"


def _choices(annotation: Any) -> tuple[str, ...]:
    """The allowed values of a ``Literal`` setting (also inside an alias such as RetrievalMode)."""
    if typing.get_origin(annotation) is typing.Literal:
        return tuple(str(a) for a in typing.get_args(annotation))
    return ()


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render() -> str:
    """The whole Markdown file."""
    lines = [HEADER.rstrip("\n")]
    for name, info in Settings.model_fields.items():
        if name in SECTIONS:
            lines += ["", f"## {SECTIONS[name]}", "", "| variable | default | what it does |", "|---|---|---|"]
        what = info.description or "(no description yet: give the field one in rag_qa/config.py)"
        choices = _choices(info.annotation)
        if choices:
            what += " One of: " + ", ".join(f"`{c}`" for c in choices) + "."
        lines.append(f"| `{PREFIX}{name.upper()}` | {_default(info)} | {_cell(what)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag_qa.config_reference", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check: exit 1 when the file is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = PATH.read_text(encoding="utf-8") if PATH.is_file() else ""
        if current != text:
            print(f"{PATH} is out of date: run `python -m rag_qa.config_reference`", file=sys.stderr)
            return 1
        return 0
    PATH.parent.mkdir(parents=True, exist_ok=True)
    PATH.write_text(text, encoding="utf-8")
    print(f"wrote {PATH} ({len(Settings.model_fields)} settings)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
