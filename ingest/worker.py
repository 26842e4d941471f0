"""Parse files in a separate process, with a time limit and a memory cap.

pypdf, lxml and python-docx run on untrusted bytes, and a crafted file can make a parser loop
for hours or allocate gigabytes.  :class:`ParserWorker` runs
:func:`ingest.loaders.load_document` in a spawned child process whose address space is capped
(``RAGQA_PARSE_MEMORY_MB``) and stops it when one file takes longer than
``RAGQA_PARSE_TIMEOUT_S``: that file gets a one-line :class:`~ingest.errors.LoadError`, and the
next file gets a fresh worker.  Requests and results travel as JSON bytes, never pickled.

:meth:`ParserWorker.read` also chunks what it parsed, in the worker (:class:`~ingest.chunking.Chunker`:
the splitter and each chunk's encoder token ids), so that reading, chunking and tokenising all run
beside the process that embeds, on their own core and under the same limits, rather than taking
turns with the embedder for that process's interpreter lock.  Chunks travel as offsets into their
document's text, token ids as base64 ``int32``.

A long scan is OCRed page by page: the worker reports each finished page (``{"progress": [done,
total]}``) before its final reply, which feeds the progress bar and restarts the clock, so the
time limit bounds each page's OCR (and every other stretch without progress) rather than the
whole document; ``RAGQA_OCR_MAX_PAGES`` bounds the number of pages.  After parsing, and after
chunking each document, the worker says it is alive (``{"alive": true}``), so the limit bounds
parsing and each document's chunking separately.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ingest.document import LoadedDocument
from ingest.errors import LoadError, ToolMissing, WorkerStartError, unexpected_error
from ingest.outcome import ReadDocument
from rag_qa.config import Settings
from rag_qa.env import child_env
from rag_qa.store.base import ChunkRow

if TYPE_CHECKING:
    from ingest.chunking import Chunker

START_TIMEOUT_S = 60.0  # a fresh interpreter importing the parsers; not counted against a file's limit
_READY = b"ready"
_ALIVE = b'{"alive": true}'


def _limit_memory(megabytes: int) -> None:
    """Cap this process's address space (where the OS has the call; a no-op elsewhere)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return
    wanted = int(megabytes) * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))


def _die_with_parent() -> None:
    """On Linux, have the kernel kill this worker when the ingest that started it dies (kill -9)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _error(message: str, remember: bool = True) -> bytes:
    """A failure reply; ``remember``: False when it is not the file's fault (:class:`ToolMissing`)."""
    return json.dumps({"error": message, "remember": remember}).encode("utf-8")


def family(document: LoadedDocument) -> list[LoadedDocument]:
    """``document`` and its attachments, theirs too, in order."""
    out = [document]
    for attachment in document.attachments:
        out.extend(family(attachment))
    return out


_CHUNKERS: dict[tuple[str, int, int], Chunker] = {}  # this worker's chunker (built on the first read)


def _chunker(settings: Settings) -> Chunker:
    from ingest.chunking import Chunker

    key = (settings.embedding_model, settings.chunk_tokens, settings.chunk_overlap)
    if key not in _CHUNKERS:
        _CHUNKERS[key] = Chunker(*key)
    return _CHUNKERS[key]


def pack_ids(ids: np.ndarray) -> str:
    """Token ids as a JSON-ready string (base64 of little-endian int32: a quarter of a JSON list's size)."""
    return base64.b64encode(np.asarray(ids, dtype="<i4").tobytes()).decode("ascii")


def unpack_ids(text: str) -> np.ndarray:
    """:func:`pack_ids` undone."""
    return np.frombuffer(base64.b64decode(text), dtype="<i4")


def _chunked(document: LoadedDocument, settings: Settings, send: Callable[[bytes], None] | None,
             parse_s: float) -> dict[str, Any]:
    """The reply to a ``read``: every document of ``document``'s family with its chunks and their token ids."""
    started = time.perf_counter()
    chunker = _chunker(settings)
    documents = []
    for member in family(document):
        if send is not None:  # the time limit restarts: it bounds each document's chunking on its own
            send(_ALIVE)
        rows, ids = chunker.chunk(member)
        documents.append({
            "source": member.source, "type": member.type, "pages": member.pages, "notes": member.notes,
            "failed": [list(f) for f in member.failed], "skipped": member.skipped, "text": member.text,
            "chunks": [[r.id, r.page, r.start, r.end, r.unit, r.section, r.ocr] for r in rows],
            "ids": [pack_ids(x) for x in ids]})
    return {"documents": documents, "parse_s": parse_s, "chunk_s": time.perf_counter() - started}


def _parse_one(path: str, settings: Settings, send: Callable[[bytes], None] | None = None,
               chunk: bool = False) -> bytes:
    """The reply for one request: the document as JSON (``chunk``: its family chunked), or its one-line error.

    ``send`` carries progress messages (pages OCRed, alive) back while the document is being read.
    """
    from ingest.loaders import load_document

    def progress(done: int, total: int) -> None:
        if send is not None:
            send(json.dumps({"progress": [done, total]}).encode("utf-8"))

    started = time.perf_counter()
    try:
        doc = load_document(Path(path), settings, progress)
    except ToolMissing as exc:
        return _error(str(exc), remember=False)
    except LoadError as exc:
        return _error(str(exc))
    except MemoryError:
        return _error(f"parsing needed more than the {settings.parse_memory_mb} MB memory cap "
                      "(RAGQA_PARSE_MEMORY_MB)")
    except RecursionError:
        return _error("the document is nested too deeply to parse")
    except OSError as exc:
        return _error(f"cannot read: {exc.strerror or exc}")
    except Exception as exc:  # one odd file must not stop the others
        return _error(unexpected_error(exc))
    try:
        reply = _chunked(doc, settings, send, time.perf_counter() - started) if chunk else {"document": doc.to_json()}
        return json.dumps(reply, ensure_ascii=False).encode("utf-8")
    except MemoryError:
        return _error(f"the extracted text does not fit the {settings.parse_memory_mb} MB memory cap "
                      "(RAGQA_PARSE_MEMORY_MB)")
    except Exception as exc:  # pragma: no cover - chunking is total on any text (tests/test_chunking.py)
        return _error(unexpected_error(exc))


def serve(read_fd: int, write_fd: int) -> None:
    """The worker's loop: settings first, then one path in and one JSON reply out, until EOF."""
    from multiprocessing.connection import Connection

    _die_with_parent()
    requests, replies = Connection(read_fd, writable=False), Connection(write_fd, readable=False)
    try:
        settings = Settings(**json.loads(requests.recv_bytes()))
        from ingest.loaders import preload

        preload()  # the format modules load before the memory cap; each parser library on first use
        _limit_memory(settings.parse_memory_mb)
        replies.send_bytes(_READY)
        while True:
            request = json.loads(requests.recv_bytes())
            replies.send_bytes(_parse_one(request["path"], settings, replies.send_bytes, bool(request.get("chunk"))))
    except (EOFError, KeyboardInterrupt, BrokenPipeError):
        return


class ParserWorker:
    """Loads documents in a child process; use as a context manager around one ingest run."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._proc: subprocess.Popen[bytes] | None = None
        self._send: Any = None
        self._recv: Any = None
        self._scratch: Path | None = None  # the worker's TMPDIR (mail attachments), removed with it

    def __enter__(self) -> ParserWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        """Start ``python -m ingest.worker`` (a fresh interpreter: no threads, locks or models copied)."""
        from multiprocessing.connection import Connection

        requests_r, requests_w = os.pipe()
        replies_r, replies_w = os.pipe()
        self._scratch = Path(tempfile.mkdtemp(prefix="rag-qa-parse-"))
        try:
            # its own session: a kill takes the worker's children too (tesseract), and its scratch folder
            # (attachments written out of a mail) is ours to remove, as a killed worker cannot
            self._proc = subprocess.Popen([sys.executable, "-m", "ingest.worker"], stdin=requests_r,
                                          stdout=replies_w, env=child_env(TMPDIR=str(self._scratch)),
                                          start_new_session=True)
        except BaseException:
            shutil.rmtree(self._scratch, ignore_errors=True)
            for fd in (requests_w, replies_r):
                os.close(fd)
            raise
        finally:
            os.close(requests_r)
            os.close(replies_w)
        self._send = Connection(requests_w, readable=False)
        self._recv = Connection(replies_r, writable=False)
        try:
            self._send.send_bytes(self.settings.model_dump_json().encode("utf-8"))
            ready = self._recv.poll(START_TIMEOUT_S) and self._recv.recv_bytes() == _READY
        except (EOFError, OSError):
            ready = False
        if not ready:
            code = self._stop()
            raise WorkerStartError(f"the parser worker did not start (exit code {code})")

    def _stop(self) -> int | None:
        """Kill the worker (if running), close the pipes and return its exit code."""
        proc, self._proc = self._proc, None
        for conn in (self._send, self._recv):
            if conn is not None:
                conn.close()
        self._send = self._recv = None
        scratch, self._scratch = self._scratch, None
        if proc is None:
            return None
        if proc.returncode is None:  # not reaped yet (running, or a zombie): its group id is still its own
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the worker and whatever it started (tesseract)
            except (ProcessLookupError, PermissionError):
                proc.kill()
        code = proc.wait()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        return code

    def load(self, path: Path, progress: Callable[[int, int], None] | None = None) -> LoadedDocument:
        """Load ``path`` like :func:`~ingest.loaders.load_document`, within the time and memory limits.

        ``progress(done, total)`` hears about each OCRed page.
        """
        if os.name == "nt":  # pragma: no cover - fd-based pipes are POSIX; no limits there
            from ingest.loaders import load_document

            return load_document(path, self.settings, progress)
        return LoadedDocument.from_json(self._request(path, False, progress)["document"])

    def read(self, path: Path, progress: Callable[[int, int], None] | None = None) -> tuple[list[ReadDocument],
                                                                                           float, float]:
        """Load ``path`` and chunk its family in the worker: (documents with their rows and token ids,
        parse seconds, chunk seconds), within the same limits as :meth:`load`."""
        if os.name == "nt":  # pragma: no cover - fd-based pipes are POSIX; no limits there
            from ingest.loaders import load_document

            started = time.perf_counter()
            reply = _chunked(load_document(path, self.settings, progress), self.settings, None,
                             time.perf_counter() - started)
        else:
            reply = self._request(path, True, progress)
        documents = []
        for data in reply["documents"]:
            text, source = str(data["text"]), str(data["source"])
            rows = [ChunkRow(id=str(cid), source=source, page=page, start=int(start), end=int(end),
                             text=text[int(start):int(end)], unit=unit, section=section, ocr=bool(ocr))
                    for cid, page, start, end, unit, section, ocr in data["chunks"]]
            documents.append(ReadDocument(source, str(data["type"]), data["pages"], rows,
                                          [str(n) for n in data["notes"]],
                                          [(str(a), str(e)) for a, e in data["failed"]],
                                          [str(k) for k in data["skipped"]],
                                          [unpack_ids(x) for x in data["ids"]]))
        return documents, float(reply["parse_s"]), float(reply["chunk_s"])

    def _request(self, path: Path, chunk: bool, progress: Callable[[int, int], None] | None) -> dict[str, Any]:
        """Send one request and wait for its reply (restarting the clock on each progress message)."""
        if self._proc is None or self._proc.poll() is not None:
            self._stop()
            self._start()
        limit = self.settings.parse_timeout_s
        try:
            self._send.send_bytes(json.dumps({"path": str(path), "chunk": chunk}).encode("utf-8"))
            while True:
                if not self._recv.poll(limit):
                    self._stop()
                    raise LoadError(f"parsing took longer than {limit:g}s and was stopped (RAGQA_PARSE_TIMEOUT_S)")
                reply = json.loads(self._recv.recv_bytes())
                if "alive" in reply:
                    continue
                if "progress" not in reply:
                    break
                if progress is not None:
                    progress(*reply["progress"])
        except (EOFError, OSError):
            code = self._stop()
            raise LoadError(f"the parser crashed on this file (worker exit code {code}); "
                            "it may need more memory than RAGQA_PARSE_MEMORY_MB allows") from None
        if "error" in reply:
            raise (LoadError if reply.get("remember", True) else ToolMissing)(reply["error"])
        return reply

    def close(self) -> None:
        """Let the worker exit (the end of its input ends its loop); kill it if it does not."""
        if self._proc is None:
            return
        self._send.close()
        self._send = None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=5)
        self._stop()


def main() -> None:
    """``python -m ingest.worker``: the protocol on fds duplicated from stdin/stdout, whose
    fd 1 then points at stderr so that a stray print can never corrupt a reply."""
    read_fd, write_fd = os.dup(0), os.dup(1)
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    serve(read_fd, write_fd)


if __name__ == "__main__":
    main()
