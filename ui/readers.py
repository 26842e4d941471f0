"""The reader names the dropdown offers, taken from the reader registry."""

from __future__ import annotations

from rag_qa.readers.registry import list_readers


def reader_choices(default: str) -> list[str]:
    """Concrete registered reader names (templates like ``extractive:<model-or-path>`` are typed in), default first."""
    names = [default]
    for row in list_readers():
        name = row["name"]
        if row.get("kind") == "generative":
            name = "generative"  # the registry's offline default LLM; other generative:<spec> names are typed in
        if "<" not in name:
            names.append(name)
    return list(dict.fromkeys(names))
