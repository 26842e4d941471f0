"""Checks on the fields of a request that are not about who may do what: reader, mode, top-k.

The page only offers valid values, but the HTTP API takes whatever a caller sends, so the handlers
check every field again on the server and refuse a bad one in one line (:class:`RequestRefused`)
before any work is done; the refusal goes to the audit trail like a refused permission.
"""

from __future__ import annotations

import math

from rag_qa.config import MODES

MIN_TOP_K, MAX_TOP_K = 1, 20  # the Passages slider's range
_SHOWN_CHARS = 80


class RequestRefused(ValueError):
    """A request field with a value the app does not take; the message says which values it does."""


def printable(value: object) -> str:
    """``value`` as text with anything unprintable (line breaks, terminal escapes) as ``?``: what someone typed
    never starts a line of its own in a message or a printout."""
    return "".join(ch if ch.isprintable() else "?" for ch in str(value))


def shown_value(value: object) -> str:
    """``value`` for a refusal message: quoted, and cut short, so a huge or odd input stays one short line."""
    text = printable(value if isinstance(value, str) else repr(value))
    return repr(text[:_SHOWN_CHARS] + ("…" if len(text) > _SHOWN_CHARS else ""))


def check_mode(mode: object) -> str | None:
    """``mode`` if it is a retrieval mode (``None`` for empty: the settings' mode), else :class:`RequestRefused`."""
    if mode is None or mode == "":
        return None
    if not isinstance(mode, str) or mode not in MODES:
        raise RequestRefused(f"unknown retrieval mode {shown_value(mode)}: pick one of {', '.join(MODES)}")
    return mode


def check_top_k(top_k: object) -> int | None:
    """``top_k`` as a whole number from :data:`MIN_TOP_K` to :data:`MAX_TOP_K` (``None``: the settings'
    top-k), else :class:`RequestRefused`."""
    if top_k is None:
        return None
    ok = (isinstance(top_k, int | float) and not isinstance(top_k, bool) and math.isfinite(top_k)
          and float(top_k).is_integer() and MIN_TOP_K <= top_k <= MAX_TOP_K)
    if not ok:
        raise RequestRefused(f"top-k (passages) must be a whole number from {MIN_TOP_K} to {MAX_TOP_K}, "
                             f"not {shown_value(top_k)}")
    return int(top_k)
