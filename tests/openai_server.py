"""A minimal OpenAI-compatible chat-completions server, for testing the ``openai:`` reader path.

    python tests/openai_server.py [--delay S]   # prints "PORT <n>" once listening on 127.0.0.1

``POST /v1/chat/completions`` (plain or ``"stream": true`` server-sent events) answers with the
first sentence of passage 1 of the prompt plus `` [1]``, word by word when streaming (``--delay``
seconds before each word: a slow model); under ``/moved/...`` it redirects (307) to the same path without
the prefix.  ``GET /last`` returns the last request body (its Authorization header as ``_authorization``), so
a test can check what the client sent; ``GET /stats`` how many requests came and the most at once.
Standard library only; a real server process speaking the wire protocol, not a mock object.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_PASSAGE_1 = re.compile(r'<passage id="1"[^>]*>\n(.*?)\n</passage>', re.DOTALL)


def reply_for(messages: list[dict]) -> str:
    """First sentence of passage [1] with its citation, or a refusal when there is none."""
    user = next((m["content"] for m in messages if m["role"] == "user"), "")
    match = _PASSAGE_1.search(user)
    if not match:
        return "I cannot find the answer in the passages."
    sentence = re.split(r"(?<=[.!?])\s", match.group(1).strip(), maxsplit=1)[0]
    return f"{sentence.rstrip('.')} [1]"


class Handler(BaseHTTPRequestHandler):
    last: dict = {}
    delay_s = 0.0
    stats = {"requests": 0, "running": 0, "max_concurrent": 0}
    lock = threading.Lock()

    def log_message(self, *args: object) -> None:
        """Quiet: the test reads stdout for the port only."""

    def _json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        with Handler.lock:
            stats = dict(Handler.stats)
        self._json(200, stats if self.path.rstrip("/") == "/stats" else Handler.last)

    def do_POST(self) -> None:
        if self.path.startswith("/moved/"):  # a server that redirects: a client must not re-send the prompt
            self.send_response(307)
            self.send_header("Location", self.path.removeprefix("/moved"))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._json(404, {"error": {"message": f"no route {self.path}"}})
            return
        with Handler.lock:
            Handler.stats["requests"] += 1
            Handler.stats["running"] += 1
            Handler.stats["max_concurrent"] = max(Handler.stats["max_concurrent"], Handler.stats["running"])
        try:
            self._complete()
        finally:
            with Handler.lock:
                Handler.stats["running"] -= 1

    def _complete(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Handler.last = {**body, "_authorization": self.headers.get("Authorization")}
        text = reply_for(body["messages"])
        base = {"id": "chatcmpl-test", "created": int(time.time()), "model": body["model"]}
        if not body.get("stream"):
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
            self._json(200, {**base, "object": "chat.completion", "choices": [choice], "usage": usage})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        words = re.findall(r"\S+\s*", text)
        for i, word in enumerate(words):
            time.sleep(Handler.delay_s)
            delta = {"role": "assistant", "content": word} if i == 0 else {"content": word}
            chunk = {**base, "object": "chat.completion.chunk",
                     "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        end = {**base, "object": "chat.completion.chunk",
               "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
        self.wfile.flush()


def main() -> None:
    if "--delay" in sys.argv:
        Handler.delay_s = float(sys.argv[sys.argv.index("--delay") + 1])
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
