"""The app behind a reverse proxy under a path prefix, with single sign-on from the proxy (issue 15).

A real ``python -m ui --root-path /rag`` with ``RAGQA_TRUSTED_USER_HEADER=X-Forwarded-User``, behind
a small proxy written here that does what the README's nginx/Caddy configuration does: strip
``/rag``, set ``X-Forwarded-Host``/``-Proto``, stream responses, and (as an authenticating proxy
would) set ``X-Forwarded-User`` itself, replacing any copy the client sent.  No nginx or Caddy is
needed on the test machine.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from ui_server import app_process

from ui.users_file import User, hash_password, parse_roles, save_users

pytestmark = pytest.mark.slow
gradio_client = pytest.importorskip("gradio_client")
httpx = pytest.importorskip("httpx")

PREFIX = "/rag"
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "content-length"}


def start_proxy(upstream_port: int, identity: str | None) -> tuple[ThreadingHTTPServer, str]:
    """A prefix-stripping reverse proxy on a free loopback port that signs everyone in as ``identity``."""

    class Proxy(BaseHTTPRequestHandler):
        def _relay(self) -> None:
            if not self.path.startswith(PREFIX + "/"):
                self.send_error(404)
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in HOP_BY_HOP and k.lower() != "x-forwarded-user"}
            headers.update({"X-Forwarded-Host": self.headers.get("Host", ""), "X-Forwarded-Proto": "http",
                            "X-Forwarded-For": self.client_address[0], "Content-Length": str(len(body))})
            if identity is not None:
                headers["X-Forwarded-User"] = identity
            upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=300)
            upstream.request(self.command, self.path[len(PREFIX):], body=body, headers=headers)
            response = upstream.getresponse()
            self.send_response(response.status)
            for key, value in response.getheaders():
                if key.lower() not in HOP_BY_HOP:
                    self.send_header(key, value)
            self.end_headers()  # HTTP/1.0: the body runs until the connection closes, so it can stream
            while chunk := response.read1(65536):
                self.wfile.write(chunk)
                self.wfile.flush()
            upstream.close()

        do_GET = do_POST = do_HEAD = _relay

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}{PREFIX}/"


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """URLs: the app itself, and proxies signing in as ann (a reader), as mallory (no account), as no one."""
    base = tmp_path_factory.mktemp("proxy")
    (base / "indexes" / "alpha").mkdir(parents=True)
    (base / "indexes" / "beta").mkdir(parents=True)
    users_file = base / "users.json"
    save_users(users_file, {"ann": User("ann", hash_password("ann-password"), parse_roles(["alpha=reader"]))})
    env = {"RAGQA_USERS_FILE": str(users_file), "RAGQA_TRUSTED_USER_HEADER": "X-Forwarded-User",
           "RAGQA_SIGNIN_LOG": str(base / "sign-ins.jsonl"), "RAGQA_CONFIG": str(base / "none.toml")}
    with app_process(base / "indexes" / "alpha", base, env, "--root-path", PREFIX) as url:
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        servers = {name: start_proxy(port, who) for name, who in
                   (("ann", "ann"), ("mallory", "mallory"), ("nobody", None))}
        try:
            yield {"app": url, "base": str(base), **{name: u for name, (_, u) in servers.items()}}
        finally:
            for server, _ in servers.values():
                server.shutdown()


def test_the_proxy_signs_ann_in_and_her_role_applies(proxied: dict[str, str]) -> None:
    client = gradio_client.Client(proxied["ann"], verbose=False)  # no password: the proxy vouches for her
    alpha, beta = str(Path(proxied["base"]) / "indexes" / "alpha"), str(Path(proxied["base"]) / "indexes" / "beta")
    dropdown, status, _, _ = client.predict(None, api_name="/open_index")
    assert [p for _, p in dropdown["choices"]] == [alpha] and "Using index" in status
    assert "No documents indexed yet" in client.predict("rollo", "bm25", 2, alpha, api_name="/search")
    assert "that you may use" in client.predict("rollo", "bm25", 2, beta, api_name="/search")
    status, _, _ = client.predict([], alpha, api_name="/upload")
    assert "editor role" in status


def test_the_page_under_the_prefix_builds_its_links_with_the_prefix(proxied: dict[str, str]) -> None:
    page = httpx.get(proxied["ann"], timeout=60)
    assert page.status_code == 200
    assert proxied["ann"].rstrip("/") in page.text  # Gradio's root: the public URL, prefix included
    assert httpx.get(proxied["ann"] + "config", timeout=60).json()["root"] == proxied["ann"].rstrip("/")


def test_no_header_a_stranger_or_a_forged_header_is_not_let_in(proxied: dict[str, str]) -> None:
    for url in (proxied["nobody"], proxied["mallory"], proxied["app"]):
        assert httpx.get(url + "config", timeout=60).status_code == 401, url
    forged = httpx.get(proxied["nobody"] + "config", headers={"X-Forwarded-User": "ann"}, timeout=60)
    assert forged.status_code == 401  # the proxy drops a client's own copy of the header
    # and in this mode there is no password sign-in to try
    assert httpx.post(proxied["app"] + "login", data={"username": "ann", "password": "ann-password"},
                      timeout=60).status_code != 200
