"""Command-line flags made from a config dataclass, so each setting is declared once.

A field becomes ``--field-name`` (or its metadata's ``flag``) with its metadata's ``help`` and
``choices`` (:func:`rag_qa.train.config.option` declares such fields); a field without a default
is a required flag, a ``bool`` a switch, and ``X | None`` takes an X.  Fields without ``help`` in
their metadata, or whose ``flag`` is ``None``, get no flag.
"""

from __future__ import annotations

import argparse
import types
import typing
from dataclasses import MISSING, fields
from typing import Any

from rag_qa.train.config import flag_of


def _value_type(hint: Any) -> Any:
    """``int`` for ``int``, ``int | None`` or ``Optional[int]``."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def add_config_flags(parser: argparse.ArgumentParser, config: type) -> None:
    """One option per documented field of the dataclass ``config``; ``dest`` is the field's name."""
    hints = typing.get_type_hints(config)
    for f in fields(config):
        flag = flag_of(f)
        if flag is None:
            continue
        meta = f.metadata
        kind = _value_type(hints[f.name])
        options: dict[str, Any] = {"dest": f.name, "help": meta["help"]}
        if f.default is MISSING:
            options["required"] = True
        else:
            options["default"] = f.default
            if f.default is not None and kind is not bool:
                options["help"] += f" (default: {f.default})"
        if kind is bool:
            parser.add_argument(flag, action="store_true", **options)
        else:
            parser.add_argument(flag, type=kind, choices=meta.get("choices"), **options)


def config_from_args(config: type, args: argparse.Namespace) -> Any:
    """An instance of ``config`` from the parsed options (other attributes of ``args`` are ignored);
    a negative number given for a ``negative_is_none`` field becomes ``None``."""
    values = {}
    for f in fields(config):
        if f.name not in vars(args):
            continue
        value = getattr(args, f.name)
        if f.metadata.get("negative_is_none") and value is not None and value < 0:
            value = None
        values[f.name] = value
    return config(**values)
