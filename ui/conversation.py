"""The chat's history as the plain conversation the service reads.

The chatbot holds what the page shows: the user's question (escaped) and, for answers, rendered
HTML with source cards.  A follow-up needs the plain text, so every answer message carries its
answer in one attribute of its own (``data-answer``, written by :func:`ui.render.answer_message`);
this module reads that back, never the cards.  Messages from an API client may be plain text and
are taken as they are.  Hints, errors and a half-streamed answer carry no answer.

Nothing is kept on the server: the conversation is the history each request brings, so two
users (or two tabs) never share one, and "Clear chat" (an empty history) starts a new one.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from rag_qa.condense import MAX_TURNS, clean_history
from ui.render import answer_text


def _text(content: Any) -> str:
    """The text of a chatbot message: a string, or Gradio's list of ``{"type": "text", "text"}`` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "".join(part.get("text", "") for part in content if isinstance(part, Mapping)
                       and part.get("type", "text") == "text")
    if isinstance(content, Mapping):
        return str(content.get("text", ""))
    return ""


def plain_history(history: Sequence[Mapping[str, Any]] | None, max_turns: int = MAX_TURNS) -> list[dict[str, str]]:
    """The last ``max_turns`` exchanges of the chatbot's ``history`` as ``{"role", "content"}`` plain text."""
    messages: list[dict[str, str]] = []
    for message in history or []:
        if not isinstance(message, Mapping):
            continue
        role, text = message.get("role"), _text(message.get("content")).strip()
        if role == "user":
            messages.append({"role": "user", "content": html.unescape(text)})
        elif role == "assistant":
            if text.startswith("<"):  # one of ours: its answer attribute, or nothing for hints and errors
                answer = answer_text(text)
                if answer is None:
                    continue
                text = answer
            messages.append({"role": "assistant", "content": text})
    return clean_history(messages, max_turns)
