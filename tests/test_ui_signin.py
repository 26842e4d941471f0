"""The running app with a users file (issue 15): sign-in, per-index permissions, limits and the audit trail.

One real ``python -m ui`` process for the module, over two copies of the test index (``alpha``
and ``beta``, which lacks the Normans document, so an answer about Normandy cited from ``beta``
would be cross-talk), driven through real ``gradio_client`` clients, plain HTTP and headless Chromium.
Each test that fails a sign-in on purpose sends its own ``X-Forwarded-For`` address (the app trusts
it from a loopback peer, as from a proxy), so the per-address limit of one test does not lock the
others out.
"""

from __future__ import annotations

import html
import json
import shutil
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from conftest import DOCS, docs_image, load_benchmark
from test_team_accounts import ui_command
from ui_server import app_process

from ingest.pipeline import remove_sources
from rag_qa.config import Settings
from ui.permissions import Role
from ui.users_file import User, hash_password, load_users, parse_roles, save_users

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.slow
gradio_client = pytest.importorskip("gradio_client")
httpx = pytest.importorskip("httpx")

QUESTION = "In what country is Normandy located?"
NORMANS = DOCS / "normans_latin1.txt"
ACCOUNTS = {  # name: (password, roles)
    "alice": ("alice-password", ["alpha=editor"]),
    "bob": ("bob-password", ["beta=editor"]),
    "rita": ("rita-password", ["alpha=reader"]),
    "nora": ("nora-password", []),
    "ada": ("ada-password", ["*=admin"]),
    "lockme": ("lockme-password", ["alpha=reader"]),
    "temp": ("temp-password", ["alpha=reader"]),
}
MAX_FAILURES, MAX_PER_ADDRESS, DELAY_S, MAX_QUESTION = 3, 4, 0.3, 300
# gradio_client waits 5 s for a sign-in by default; argon2 on a busy 2-core machine can take longer
SLOW_OK = {"timeout": 300}


@dataclass
class Team:
    url: str
    root: Path  # the indexes folder
    users_file: Path
    signin_log: Path
    client: Callable[[str], Any]  # a signed-in gradio_client.Client per user name (cached)

    def index(self, name: str) -> str:
        return str(self.root / name)

    def log(self, name: str) -> list[dict]:
        path = self.root / name / "audit.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(scope="module")
def team(built_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    base = tmp_path_factory.mktemp("team")
    root = base / "indexes"
    for name in ("alpha", "beta"):
        shutil.copytree(built_index, root / name)
    removed = remove_sources([str(NORMANS.resolve())], root / "beta", settings=Settings())
    assert removed.removed, "beta should differ from alpha"
    users_file = base / "users.json"
    save_users(users_file, {n: User(n, hash_password(pw), parse_roles(roles)) for n, (pw, roles) in ACCOUNTS.items()})
    env = {
        "RAGQA_USERS_FILE": str(users_file), "RAGQA_SIGNIN_LOG": str(base / "sign-ins.jsonl"),
        "RAGQA_SIGNIN_MAX_FAILURES": str(MAX_FAILURES), "RAGQA_SIGNIN_MAX_FAILURES_PER_ADDRESS": str(MAX_PER_ADDRESS),
        "RAGQA_SIGNIN_FAILURE_DELAY_S": str(DELAY_S), "RAGQA_MAX_QUESTION_CHARS": str(MAX_QUESTION),
        "RAGQA_AUDIT_QUESTIONS": "true", "RAGQA_CONFIG": str(base / "none.toml"),
    }
    clients: dict[str, Any] = {}
    with app_process(root / "alpha", base, env) as url:
        def client(name: str) -> Any:
            if name not in clients:
                clients[name] = gradio_client.Client(url, auth=(name, ACCOUNTS[name][0]), verbose=False,
                                                     httpx_kwargs=SLOW_OK)
            return clients[name]

        yield Team(url, root, users_file, base / "sign-ins.jsonl", client)


def sign_in(team: Team, name: str, password: str, address: str) -> tuple[int, str, float]:
    """POST the login form as the page does, from ``address``; (status, body, seconds)."""
    started = time.perf_counter()
    r = httpx.post(team.url + "login", data={"username": name, "password": password},
                   headers={"X-Forwarded-For": address}, timeout=120)
    return r.status_code, r.text, time.perf_counter() - started


def shown(html_text: str) -> str:
    """Text as the page shows it (messages are HTML-escaped)."""
    return html.unescape(html_text)


def ask(client: Any, index: str, question: str = QUESTION) -> tuple[list[dict], dict]:
    history, details, _ = client.predict(question, [], "extractive", "hybrid", 3, index, api_name="/ask")
    return history, details


def signin_events(team: Team) -> list[dict]:
    return [json.loads(line) for line in team.signin_log.read_text().splitlines()]


# -- sign-in ----------------------------------------------------------------------------------
def test_nothing_but_the_login_page_is_served_without_signing_in(team: Team) -> None:
    for method, path in [("GET", "config"), ("GET", "gradio_api/info"), ("POST", "gradio_api/call/search"),
                         ("POST", "gradio_api/queue/join"), ("POST", "gradio_api/upload"),
                         ("GET", "gradio_api/heartbeat/abc"), ("GET", "gradio_api/runs"), ("POST", "gradio_api/cancel"),
                         ("GET", "gradio_api/file=/etc/hostname")]:
        r = httpx.request(method, team.url + path, json={} if method == "POST" else None, timeout=60)
        assert r.status_code == 401, (path, r.status_code, r.text[:200])
    page = httpx.get(team.url, timeout=60)
    assert page.status_code == 200 and '"auth_required":true' in page.text.replace(" ", "")
    assert "alpha" not in page.text and "beta" not in page.text  # the login page names no index
    with pytest.raises(Exception, match="credentials|login|Login"):
        gradio_client.Client(team.url, verbose=False)


def test_a_wrong_user_and_a_wrong_password_get_the_same_answer_in_the_same_time(team: Team) -> None:
    wrong_password, unknown_user = [], []
    for i in range(2):  # interleaved, so both see the same load on a busy machine
        wrong_password.append(sign_in(team, "rita", "not-her-password", f"198.51.100.{10 + i}"))
        unknown_user.append(sign_in(team, "no-such-user", "not-her-password", f"198.51.100.{20 + i}"))
    assert {(s, body) for s, body, _ in wrong_password + unknown_user} == {(400, '{"detail":"Incorrect credentials."}')}
    a, b = (statistics.median(t for *_, t in runs) for runs in (wrong_password, unknown_user))
    assert min(a, b) >= DELAY_S  # every failure waits
    # loose here (shared CPUs); test_team_accounts compares the hash work itself more tightly
    assert max(a, b) < 3 * min(a, b), (a, b)
    failed = [e for e in signin_events(team) if e["outcome"] == "failed"]
    assert {"rita", "no-such-user"} <= {e["user"] for e in failed}
    assert all(e["action"] == "sign-in" and e["address"].startswith("198.51.100.") for e in failed)


def test_repeated_failures_lock_the_name_even_against_the_right_password(team: Team) -> None:
    statuses = [sign_in(team, "lockme", "guess", f"192.0.2.{i}")[0] for i in range(1, MAX_FAILURES + 1)]
    assert statuses == [400] * MAX_FAILURES  # from different addresses: the name's own count locks it
    status, locked_body, seconds = sign_in(team, "lockme", ACCOUNTS["lockme"][0], "192.0.2.99")
    assert status == 429 and "Too many failed sign-ins" in locked_body and "try again in 5 minutes" in locked_body
    assert seconds < DELAY_S + 5  # refused without checking the password
    locked = [e for e in signin_events(team) if e["user"] == "lockme" and e["outcome"] == "locked"]
    assert len(locked) == 1
    assert sign_in(team, "never-existed", "guess", "192.0.2.50")[0] == 400  # other names are not affected...
    for i in range(MAX_FAILURES - 1):
        sign_in(team, "never-existed", "guess", f"192.0.2.{60 + i}")
    # ...and a name that does not exist locks exactly like one that does (no enumeration by lockout)
    assert sign_in(team, "never-existed", "guess", "192.0.2.70")[:2] == (429, locked_body)


def test_failures_from_one_address_lock_that_address(team: Team) -> None:
    address = "203.0.113.7"
    for i in range(MAX_PER_ADDRESS):
        assert sign_in(team, f"spray{i}", "guess", address)[0] == 400
    assert sign_in(team, "rita", ACCOUNTS["rita"][0], address)[0] == 429  # even a right password, from there
    assert sign_in(team, "rita", ACCOUNTS["rita"][0], "203.0.113.8")[0] == 200  # but not from elsewhere


def test_a_removed_user_is_signed_out_at_the_next_request(team: Team) -> None:
    client = gradio_client.Client(team.url, auth=("temp", ACCOUNTS["temp"][0]), verbose=False, httpx_kwargs=SLOW_OK)
    assert "search-hit" in client.predict("rollo", "bm25", 2, team.index("alpha"), api_name="/search")
    done = ui_command("users", "--file", str(team.users_file), "remove", "temp")
    assert done.returncode == 0, done.stderr
    with pytest.raises(Exception):  # noqa: B017 - the client raises whatever a 401 becomes
        client.predict("rollo", "bm25", 2, team.index("alpha"), api_name="/search")


# -- permissions ------------------------------------------------------------------------------
def test_a_user_cannot_see_ask_search_upload_to_or_remove_from_another_index(team: Team) -> None:
    alice, beta = team.client("alice"), team.index("beta")
    dropdown, *_ = alice.predict(team.index("alpha"), api_name="/open_index")
    assert [path for _, path in dropdown["choices"]] == [team.index("alpha")]
    dropdown, status, table, _ = alice.predict(beta, api_name="/open_index")
    assert "no index 'beta' that you may use" in shown(status)
    assert dropdown["value"] == team.index("alpha")  # the page goes back to an index she may use...
    assert "normans_latin1.txt" in [row[0] for row in table["data"]]  # ...and lists alpha's documents, not beta's

    history, details = ask(alice, beta)
    assert "no index 'beta'" in details["error"] and "answer" not in details
    assert "no index 'beta'" in shown(alice.predict("oxygen", "bm25", 3, beta, api_name="/search"))

    before = sorted(p.name for p in (team.root / "beta").rglob("*"))
    status, table, _ = alice.predict([gradio_client.handle_file(str(DOCS / "code-of-conduct.md"))], beta,
                                     api_name="/upload")
    assert "no index 'beta'" in shown(status) and table["data"] == []
    source = str((DOCS / "oxygen.html").resolve())
    status, table, _ = alice.predict(source, beta, api_name="/remove")
    assert "no index 'beta'" in shown(status) and table["data"] == []
    after = sorted(p.name for p in (team.root / "beta").rglob("*") if p.name != "audit.jsonl")
    assert after == [n for n in before if n != "audit.jsonl"]  # nothing changed in beta

    _, _, table, _ = team.client("bob").predict(beta, api_name="/open_index")
    assert "oxygen.html" in [row[0] for row in table["data"]]  # still there for its owner
    refused = [e for e in team.log("beta") if e["user"] == "alice"]
    assert {e["action"] for e in refused} == {"ask", "search", "upload", "remove"}
    assert {e["outcome"] for e in refused} == {"refused"} and ["code-of-conduct.md"] in [e["files"] for e in refused]


def test_a_reader_can_ask_and_search_but_not_upload_or_remove(team: Team) -> None:
    rita, alpha = team.client("rita"), team.index("alpha")
    _, details = ask(rita, alpha)
    assert "France" in details["answer"] and details["citations"]
    assert all(c["source"].startswith(str(DOCS.resolve())) for c in details["citations"])
    assert "search-hit" in rita.predict("oxygen", "bm25", 2, alpha, api_name="/search")
    status, table, _ = rita.predict([gradio_client.handle_file(str(DOCS / "code-of-conduct.md"))], alpha,
                                    api_name="/upload")
    assert "You are a reader of index 'alpha'" in shown(status) and "editor role" in status
    assert not (team.root / "alpha" / "uploads").exists()
    status, *_ = rita.predict(str((DOCS / "oxygen.html").resolve()), alpha, api_name="/remove")
    assert "You are a reader of index 'alpha'" in shown(status)
    assert any(e["user"] == "rita" and e["action"] == "ask" and e["question"] == QUESTION
               for e in team.log("alpha"))  # RAGQA_AUDIT_QUESTIONS is on in this app


def test_an_editor_uploads_and_removes_and_the_audit_log_records_both(team: Team) -> None:
    alice, alpha = team.client("alice"), team.index("alpha")
    status, table, _ = alice.predict([gradio_client.handle_file(str(DOCS / "code-of-conduct.md"))], alpha,
                                     api_name="/upload")
    assert "Added: code-of-conduct.md" in status
    stored = str((team.root / "alpha" / "uploads" / "code-of-conduct.md").resolve())
    status, table, _ = alice.predict(stored, alpha, api_name="/remove")
    assert "Removed code-of-conduct.md" in status and not Path(stored).exists()

    done = ui_command("audit", "--index", alpha, "--signin-log", str(team.signin_log), "--json")
    events = json.loads(done.stdout)["events"]
    mine = [(e["user"], e["action"], e["outcome"], e["files"]) for e in events if e["user"] == "alice"]
    assert ("alice", "upload", "ok", ["code-of-conduct.md"]) in mine
    assert ("alice", "remove", "ok", ["code-of-conduct.md"]) in mine
    assert any(e["action"] == "sign-in" for e in events)  # sign-ins are merged in
    readable = ui_command("audit", "--index", alpha, "--signin-log", str(team.signin_log)).stdout
    assert any("alice" in line and "upload" in line and "code-of-conduct.md" in line for line in readable.splitlines())


def test_only_an_admin_creates_indexes_and_others_do_not_see_them(team: Team) -> None:
    _, status, _, _ = team.client("alice").predict("gamma", team.index("alpha"), api_name="/create_index")
    assert "needs the admin role" in status and not (team.root / "gamma").exists()
    dropdown, status, _, _ = team.client("ada").predict("gamma", team.index("alpha"), api_name="/create_index")
    assert "Created index" in status and team.index("gamma") in [p for _, p in dropdown["choices"]]
    assert [(e["user"], e["action"], e["outcome"]) for e in team.log("gamma")] == [("ada", "create-index", "ok")]
    dropdown, *_ = team.client("alice").predict(team.index("alpha"), api_name="/open_index")
    assert team.index("gamma") not in [p for _, p in dropdown["choices"]]


def test_a_user_without_any_role_gets_a_polite_empty_state(team: Team) -> None:
    nora = team.client("nora")
    dropdown, status, table, _ = nora.predict(None, api_name="/open_index")
    assert dropdown["choices"] == [] and "do not have access to any index yet" in status and table["data"] == []
    history, details = ask(nora, "")
    assert "do not have access to any index yet" in details["error"]
    assert "rag-error" in history[-1]["content"][0]["text"]


def test_a_long_question_is_refused_with_a_clear_message(team: Team) -> None:
    rita = team.client("rita")
    _, details = ask(rita, team.index("alpha"), "why " * 100)
    assert details == {"error": f"That question has 400 characters; the limit is {MAX_QUESTION}. "
                                "Shorten it and try again."}
    html = rita.predict("x" * (MAX_QUESTION + 1), "bm25", 2, team.index("alpha"), api_name="/search")
    assert "the limit is 300" in html


def test_the_users_file_holds_no_plaintext_password(team: Team) -> None:
    text = team.users_file.read_text()
    assert not [name for name, (pw, _) in ACCOUNTS.items() if pw in text]
    assert all(u.password_hash.startswith("$argon2id$") for u in load_users(team.users_file).values())
    assert load_users(team.users_file)["alice"].roles == {"alpha": Role.EDITOR}


def test_signed_in_users_under_load_get_their_own_answers(team: Team) -> None:
    """The load benchmark's signed-in round, briefly: two users, each reading only their own index."""
    load_ui = load_benchmark("load_ui")
    accounts = [("alice", ACCOUNTS["alice"][0], team.root / "alpha"), ("bob", ACCOUNTS["bob"][0], team.root / "beta")]
    questions = [QUESTION, "Who was the leader of the Norse raiders who settled Normandy?"]
    replies: list[dict] = []
    summary = load_ui.run_signed_in_round(team.url, accounts, questions, results=replies)
    assert summary["requests"] == 4 and summary["errors"] == 0, summary["first_errors"]
    assert summary["crosstalk"] == 0 and summary["refused_normal_users"] == 0
    normans = str(NORMANS.resolve())
    for reply in replies:
        if reply["user"] == "alice":  # alpha holds the Normans file and answers from it
            assert normans in reply["sources"], reply
        else:  # beta does not: an answer from it would have come from alice's index
            assert normans not in reply["sources"], reply
    assert summary["fairness_max_over_min_p50"] >= 1.0


# -- the browser ------------------------------------------------------------------------------
@pytest.mark.browser
def test_sign_in_in_a_real_browser(team: Team, browser: Browser, tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 1000, "height": 640},
                                  extra_http_headers={"X-Forwarded-For": "198.18.0.1"})
    page = context.new_page()
    page.set_default_timeout(120_000)  # a busy CI machine hashes and renders slowly
    page.goto(team.url)
    page.get_by_label("username").wait_for(timeout=120_000)
    assert "After 3 failed attempts" in page.inner_text("body")
    shot = docs_image("signin.png", tmp_path)  # docs/ only with RAGQA_REFRESH_DOCS=1
    page.screenshot(path=str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def submit(name: str, password: str) -> int:
        """Fill the form, click Login, wait for the server's answer; its status."""
        page.get_by_label("username").fill(name)
        page.get_by_label("password").fill(password)
        with page.expect_response(lambda r: r.url.endswith("/login"), timeout=120_000) as answer:
            page.get_by_role("button", name="Login").click()
        return answer.value.status

    assert submit("alice", "wrong-password") == 400
    page.get_by_text("Incorrect Credentials").wait_for(timeout=120_000)
    assert [submit("browser-lock", "wrong-password") for _ in range(MAX_FAILURES)] == [400] * MAX_FAILURES
    assert submit("browser-lock", "wrong-password") == 429
    page.locator("#signin-limit").get_by_text("Too many failed sign-ins").wait_for(timeout=120_000)

    page.set_extra_http_headers({"X-Forwarded-For": "198.18.0.2"})  # 198.18.0.1 has used up its failures
    with page.expect_navigation(timeout=120_000):  # the page reloads once signed in
        assert submit("alice", ACCOUNTS["alice"][0]) == 200
    page.locator("#account").get_by_text("Signed in as alice").wait_for(timeout=120_000)
    page.wait_for_function("document.querySelector('#index input')?.value === 'indexes/alpha'", timeout=120_000)
    page.locator("#index input").click()
    options = [text.replace("✓", "").strip() for text in page.get_by_role("option").all_inner_texts()]
    assert options == ["indexes/alpha"], options  # beta is not even listed
    page.keyboard.press("Escape")
    page.locator("#question textarea").fill(QUESTION)
    page.locator("#question textarea").press("Enter")
    answer = page.locator("#chat .rag-answer").last
    answer.wait_for(timeout=120_000)
    assert "France" in answer.locator(".answer").inner_text()

    page.goto(team.url + "logout")
    page.get_by_label("username").wait_for(timeout=120_000)
    with page.expect_navigation(timeout=120_000):
        assert submit("nora", ACCOUNTS["nora"][0]) == 200
    page.locator("#account").get_by_text("do not have access to any index yet").wait_for(timeout=120_000)
    context.close()


def test_two_users_chatting_at_once_never_see_each_others_conversation(team: Team) -> None:
    """Issue 23: alice and bob each ask a question and a follow-up with "he" at the same time; each
    follow-up is read against its own chat only (the server keeps no conversation to mix up)."""
    from concurrent.futures import ThreadPoolExecutor

    chats = {"alice": ("alpha", "Who was the Norse leader?", "Rollo"),
             "bob": ("beta", "Who developed the concept of Distributed Adaptive Message Block Switching?", "Baran")}

    def converse(name: str) -> dict:
        index, first, who = chats[name]
        client = team.client(name)
        history, details, _ = client.predict(first, [], "extractive", "hybrid", 3, team.index(index), api_name="/ask")
        assert who in details["answer"], details
        _, follow, _ = client.predict("What did he do?", history, "extractive", "hybrid", 3, team.index(index),
                                      api_name="/ask")
        return follow

    with ThreadPoolExecutor(2) as pool:
        alice, bob = pool.map(converse, ["alice", "bob"])
    assert "Rollo" in alice["searched_for"] and "Baran" not in alice["searched_for"], alice
    assert "Baran" in bob["searched_for"] and "Rollo" not in bob["searched_for"], bob
    # a plain-text history from a script works too, and it is only ever the caller's own
    _, plain, _ = team.client("rita").predict(
        "What did he do?", [{"role": "user", "content": "Who was the Norse leader?"},
                            {"role": "assistant", "content": "Rollo"}], "extractive", "hybrid", 3,
        team.index("alpha"), api_name="/ask")
    assert "Rollo" in plain["searched_for"]
