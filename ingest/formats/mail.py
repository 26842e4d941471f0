"""Saved e-mails (.eml) via the standard library's ``email`` package; attachments become documents.

The mail's own document is its From, To, Cc, Date and Subject headers followed by its body: the
plain-text alternative when there is one, else the HTML one through the HTML extractor.  Each
attachment of a supported type is read by its own loader, inside the same parser worker and
under the same limits, and indexed as a document of its own named ``mail.eml/attachment.pdf``
(a forwarded mail attached as ``message/rfc822`` is an ``.eml`` attachment, with attachments of
its own, two levels deep at most).  Attachments of other types are listed as skipped; one that
cannot be read is one failed line while the rest of the mail goes in.  Pictures embedded in the
HTML body (``Content-ID``, inline) are part of the message's layout, not attachments.

Limits for a mail with hundreds of attachments: only the first ``RAGQA_MAX_ATTACHMENTS`` are
read (a note says how many were left), and once the mail and its attachments together pass
``RAGQA_MAX_TEXT_CHARS`` the remaining ones are failed with that reason instead of being parsed.
"""

from __future__ import annotations

import email
import email.policy
import mimetypes
import re
import tempfile
from collections.abc import Callable, Iterator
from email.message import EmailMessage, Message
from pathlib import Path

from ingest.document import LoadedDocument
from ingest.errors import LoadError, one_line, unexpected_error
from ingest.formats.html import html_to_text
from ingest.formats.text import normalise_newlines
from ingest.safety import looks_binary
from rag_qa.config import Settings

HEADERS = ("From", "To", "Cc", "Date", "Subject")
MAX_DEPTH = 2  # a mail attached to a mail attached to a mail: its attachments are not opened
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]+")
#: loads one attachment file under a display ``source`` (``ingest.loaders.load_document``)
LoadFn = Callable[[Path, str, Settings, int], LoadedDocument]


def _attachment_parts(message: Message) -> Iterator[Message]:
    """The mail's attachments in order: not its body, not inline pictures, not inside attached mails."""
    body = message.get_body(preferencelist=("plain", "html")) if isinstance(message, EmailMessage) else None
    stack = [message]
    while stack:
        part = stack.pop(0)
        content_type = part.get_content_type()
        if part is not message and content_type == "message/rfc822":
            yield part
        elif part.is_multipart():
            stack[0:0] = list(part.get_payload())  # type: ignore[arg-type]
        elif part is not body and part is not message:
            disposition = part.get_content_disposition()
            if disposition == "attachment" or (part.get_filename() and disposition != "inline"):
                yield part
            elif disposition is None and not part.get("Content-ID") and content_type not in ("text/plain",
                                                                                             "text/html"):
                yield part  # an unnamed file part that is not the body's alternative or a layout picture


def _name(part: Message, number: int, taken: set[str]) -> str:
    """A safe, unique file name for an attachment (its own name where it has one)."""
    raw = part.get_filename() or ""
    name = _UNSAFE_NAME.sub("_", raw).strip(" .")
    if len(name) > 120:  # shortened before its extension, which says how it is read
        suffix = Path(name).suffix if len(Path(name).suffix) <= 10 else ""
        name = name[: 120 - len(suffix)].rstrip(" .") + suffix
    if not name:
        content_type = part.get_content_type()
        extension = ".eml" if content_type == "message/rfc822" else mimetypes.guess_extension(content_type) or ""
        name = f"attachment-{number}{extension}"
    stem, suffix = Path(name).stem, Path(name).suffix
    candidate, n = name, 2
    while candidate.lower() in taken:
        candidate, n = f"{stem} ({n}){suffix}", n + 1
    taken.add(candidate.lower())
    return candidate


def _payload(part: Message) -> bytes:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload(0)
        return inner.as_bytes(policy=email.policy.default) if isinstance(inner, Message) else b""
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _body_text(message: Message) -> str:
    if not isinstance(message, EmailMessage):
        return ""
    body = message.get_body(preferencelist=("plain", "html"))
    if body is None:
        return ""
    content = body.get_content()
    if isinstance(content, bytes):
        content = content.decode("utf-8", "replace")
    if body.get_content_type() == "text/html":
        return html_to_text(content, "an HTML mail body")
    return normalise_newlines(content).strip()  # a mail's lines end in CRLF on the wire, and get_content keeps it


def mail_text(message: Message) -> str:
    """``From: ...`` header lines, a blank line, then the body text."""
    lines = []
    for header in HEADERS:
        value = message.get(header)
        if value is not None and str(value).strip():
            lines.append(f"{header}: {' '.join(str(value).split())}")
    body = _body_text(message)
    return "\n".join(lines) + ("\n\n" + body if body else "")


def load_eml(path: Path, source: str, settings: Settings, load: LoadFn, supported: tuple[str, ...],
             depth: int = 0) -> LoadedDocument:
    """The mail as a document, its readable attachments as documents of their own (see the module docstring)."""
    data = path.read_bytes()
    if looks_binary(data):
        raise LoadError("binary content, not an e-mail")
    try:
        message = email.message_from_bytes(data, policy=email.policy.default)
        text = mail_text(message)
    except LoadError:
        raise
    except Exception as exc:  # the email package is lenient; what it cannot take is one line
        raise LoadError(f"malformed e-mail ({one_line(exc)})") from exc
    if not any(message.get(h) for h in HEADERS):
        raise LoadError("not an e-mail (no From, To, Date or Subject header)")
    document = LoadedDocument(source, "eml", text)
    if depth >= MAX_DEPTH:
        return document
    parts = list(_attachment_parts(message))
    if len(parts) > settings.max_attachments:
        document.notes.append(f"{len(parts)} attachments; only the first {settings.max_attachments} were read "
                              "(RAGQA_MAX_ATTACHMENTS)")
        parts = parts[:settings.max_attachments]
    used, taken = len(text), set()
    with tempfile.TemporaryDirectory(prefix="rag-qa-mail-") as scratch:
        for number, part in enumerate(parts, 1):
            name = _name(part, number, taken)
            child = f"{source}/{name}"
            if Path(name).suffix.lower() not in supported:
                document.skipped.append(child)
                continue
            if used > settings.max_text_chars:
                document.failed.append((child, f"not read: the mail's text passed the {settings.max_text_chars:,}"
                                               "-character limit (RAGQA_MAX_TEXT_CHARS)"))
                continue
            file = Path(scratch) / f"{number}{Path(name).suffix.lower()}"
            try:
                file.write_bytes(_payload(part))
                attachment = load(file, child, settings, depth + 1)
            except LoadError as exc:
                document.failed.append((child, str(exc)))
                continue
            except (MemoryError, RecursionError):
                raise
            except Exception as exc:  # one odd attachment must not lose the mail
                document.failed.append((child, unexpected_error(exc)))
                continue
            finally:
                file.unlink(missing_ok=True)
            used += len(attachment.text) + sum(len(a.text) for a in attachment.attachments)
            document.attachments.append(attachment)
    return document
