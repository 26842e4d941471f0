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
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from conftest import DOCS, docs_image, load_benchmark
from test_team_accounts import ui_command
from ui_server import Listener, app_process

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
    "pat": ("pat-password", ["alpha=reader"]),  # changes password
    "greedy": ("greedy-password", ["alpha=reader"]),  # fires more requests than the per-user cap
    "rolf": ("rolf-password", ["alpha=editor"]),  # loses the editor role while his page is open
    "lucy": ("lucy-password", ["alpha=reader"]),  # locked out, then tries her right password
}
MAX_FAILURES, MAX_PER_ADDRESS, DELAY_S, MAX_QUESTION = 3, 4, 0.3, 300
LLM_WORD_DELAY_S = 0.15  # the operator's (test) model server streams this slowly: a long-running request
API_KEY = "sk-test-canary-the-server-must-never-send-to-a-user-chosen-address"
OFFERED = "extractive, generative, generative:smollm2, team-llm"  # the Reader list of this app
# gradio_client waits 5 s for a sign-in by default; argon2 on a busy 2-core machine can take longer
SLOW_OK = {"timeout": 300}


@dataclass
class Team:
    url: str
    root: Path  # the indexes folder
    users_file: Path
    signin_log: Path
    client: Callable[[str], Any]  # a signed-in gradio_client.Client per user name (cached)
    forget: Callable[[str], None]  # drop a cached client whose sessions a test ended (the next one signs in anew)
    llm: str  # base URL of the model server behind the operator's reader "team-llm"
    gradio_tmp: Path  # Gradio's upload folder (GRADIO_TEMP_DIR)

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
    llm = subprocess.Popen([sys.executable, str(Path(__file__).with_name("openai_server.py")), "--delay",
                            str(LLM_WORD_DELAY_S)], stdout=subprocess.PIPE, text=True)
    line = llm.stdout.readline() if llm.stdout else ""
    assert line.startswith("PORT "), f"the model server did not start: {line!r}"
    llm_url = f"http://127.0.0.1:{int(line.split()[1])}/v1"
    env = {
        "RAGQA_USERS_FILE": str(users_file), "RAGQA_SIGNIN_LOG": str(base / "sign-ins.jsonl"),
        "RAGQA_SIGNIN_MAX_FAILURES": str(MAX_FAILURES), "RAGQA_SIGNIN_MAX_FAILURES_PER_ADDRESS": str(MAX_PER_ADDRESS),
        "RAGQA_SIGNIN_FAILURE_DELAY_S": str(DELAY_S), "RAGQA_MAX_QUESTION_CHARS": str(MAX_QUESTION),
        "RAGQA_AUDIT_QUESTIONS": "true", "RAGQA_CONFIG": str(base / "none.toml"),
        # the operator offers one model server by name, and the server holds an API key for such servers
        "RAGQA_UI_READER_SPECS": json.dumps({"team-llm": f"generative:openai:echo@{llm_url}"}),
        "OPENAI_API_KEY": API_KEY, "GRADIO_TEMP_DIR": str(base / "gradio-tmp"),
    }
    clients: dict[str, Any] = {}
    try:
        with app_process(root / "alpha", base, env) as url:
            def client(name: str) -> Any:
                if name not in clients:
                    clients[name] = gradio_client.Client(url, auth=(name, ACCOUNTS[name][0]), verbose=False,
                                                         httpx_kwargs=SLOW_OK)
                return clients[name]

            yield Team(url, root, users_file, base / "sign-ins.jsonl", client, lambda name: clients.pop(name, None),
                       llm_url, base / "gradio-tmp")
    finally:
        llm.terminate()
        llm.wait(timeout=30)


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


def cookie_of(client: Any) -> dict[str, str]:
    """The session cookie a signed-in gradio_client holds, for plain HTTP calls as the same user."""
    return dict(client.cookies)


def upload_to_gradio(team: Team, cookies: dict[str, str], name: str, data: bytes) -> str:
    """Upload one file the way the page and gradio_client do; the path Gradio keeps it under."""
    r = httpx.post(team.url + "gradio_api/upload", files=[("files", (name, data, "text/markdown"))], cookies=cookies,
                   timeout=120)
    r.raise_for_status()
    (path,) = r.json()
    return path


def file_data(path: str) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}, "orig_name": Path(path).name}


def call(team: Team, cookies: dict[str, str], api_name: str, data: list) -> tuple[str, Any]:
    """Call an endpoint with Gradio's two-step HTTP API (as curl would); the last event's name and data."""
    started = httpx.post(team.url + f"gradio_api/call/{api_name}", json={"data": data}, cookies=cookies, timeout=120)
    started.raise_for_status()
    with httpx.stream("GET", team.url + f"gradio_api/call/{api_name}/{started.json()['event_id']}", cookies=cookies,
                      timeout=300) as response:
        text = "".join(response.iter_text())
    event, payload = text.strip().split("\n\n")[-1].split("\n", 1)
    return event.removeprefix("event: "), json.loads(payload.removeprefix("data: "))


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


# -- issue 21: readers from the operator's list, sessions, the audit gaps, each role's page -----------
def test_a_typed_reader_spec_is_refused_before_the_server_calls_or_opens_anything(team: Team) -> None:
    """A reader spec typed into the API (an address with the server's API key, a folder) is refused in one line,
    the same line whether the folder exists or not, recorded, and nothing is called: the listener stays silent."""
    rita, alpha = team.client("rita"), team.index("alpha")
    listener = Listener()
    try:
        address = f"http://127.0.0.1:{listener.port}"
        specs = [f"generative:openai:m@{address}/v1", f"generative:ollama:m@{address}", "extractive:/etc",
                 "extractive:/no/such/folder", f"extractive:{DOCS}", "generative:smollm2@x"]
        replies = [rita.predict(QUESTION, [], spec, "hybrid", 3, alpha, api_name="/ask") for spec in specs]
        time.sleep(1.0)  # anything the server started would have connected by now
        assert listener.received == [], listener.received  # (today's code POSTs there with the API key)
    finally:
        listener.close()
    for spec, (history, details, _) in zip(specs, replies, strict=True):
        assert details == {"error": f"unknown reader {spec!r}: pick one of {OFFERED}"}, details
        assert "rag-error" in history[-1]["content"][0]["text"]
    refused = [e for e in team.log("alpha")
               if e["user"] == "rita" and e["action"] == "ask" and e["outcome"] == "refused"]
    assert [e["reader"] for e in refused][-len(specs):] == specs
    assert all(e["detail"].startswith("unknown reader") for e in refused[-len(specs):])


def test_the_operators_named_reader_answers_under_its_name_and_its_address_stays_on_the_server(team: Team) -> None:
    rita, alpha = team.client("rita"), team.index("alpha")
    config = httpx.get(team.url + "config", cookies=cookie_of(rita), timeout=60).text
    llm_port = team.llm.rsplit(":", 1)[1].split("/")[0]
    assert '"team-llm"' in config and llm_port not in config and "generative:openai" not in config
    reader_dd = next(c for c in json.loads(config)["components"] if c.get("props", {}).get("elem_id") == "reader")
    assert reader_dd["props"]["allow_custom_value"] is False  # the page offers no typing of a reader
    history, details, _ = rita.predict(QUESTION, [], "team-llm", "hybrid", 3, alpha, api_name="/ask")
    assert details["reader"] == "team-llm" and "Norman" in details["answer"] and details["citations"], details
    assert llm_port not in json.dumps(history) + json.dumps(details)
    with urllib.request.urlopen(team.llm.removesuffix("/v1") + "/last", timeout=30) as reply:
        assert json.load(reply)["model"] == "echo"  # the operator's model, at the operator's address


def test_a_greedy_user_gets_no_more_than_the_per_user_cap_while_others_are_served(team: Team) -> None:
    """RAGQA_USER_CONCURRENCY (2) against the real app: one user fires 5 slow requests at once; 2 run, the others
    are refused at once (they never hold a worker), the model server never sees more than 2 of them, and
    another user asking at the same time is answered, never refused."""
    alpha, n = team.index("alpha"), 5
    greedy = [gradio_client.Client(team.url, auth=("greedy", ACCOUNTS["greedy"][0]), verbose=False,
                                   httpx_kwargs=SLOW_OK) for _ in range(n)]
    rita = team.client("rita")
    start, results, lock = threading.Barrier(n + 1), [], threading.Lock()

    def ask_as(client: Any, who: str, reader: str) -> None:
        start.wait()
        began = time.perf_counter()
        _, details, _ = client.predict(QUESTION, [], reader, "hybrid", 3, alpha, api_name="/ask")
        with lock:
            results.append((who, details, time.perf_counter() - began))

    threads = [threading.Thread(target=ask_as, args=(c, "greedy", "team-llm")) for c in greedy]
    threads.append(threading.Thread(target=ask_as, args=(rita, "rita", "extractive")))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    mine = [(d, s) for who, d, s in results if who == "greedy"]
    answered = [s for d, s in mine if "answer" in d]
    refused = [s for d, s in mine if d.get("error") == "You already have 2 requests running; wait for one to "
                                                         "finish, then try again."]
    assert len(mine) == n and len(answered) + len(refused) == n, mine
    assert 1 <= len(answered) <= 2 and len(refused) >= n - 2, mine  # all 5 arrive within the first answer
    assert max(refused) < min(answered), (refused, answered)  # refused at once, not after waiting
    with urllib.request.urlopen(team.llm.removesuffix("/v1") + "/stats", timeout=30) as reply:
        assert json.load(reply)["max_concurrent"] <= 2
    (other,) = [d for who, d, _ in results if who == "rita"]
    assert "France" in other["answer"], other


def test_a_password_change_ends_the_old_sessions_and_a_role_change_applies_at_once(team: Team) -> None:
    alpha = team.index("alpha")
    answer = httpx.post(team.url + "login", data={"username": "pat", "password": ACCOUNTS["pat"][0]},
                        headers={"X-Forwarded-For": "198.51.100.77"}, timeout=120)
    assert answer.status_code == 200
    cookie = dict(answer.cookies)
    pat = gradio_client.Client(team.url, auth=("pat", ACCOUNTS["pat"][0]), verbose=False, httpx_kwargs=SLOW_OK)
    assert httpx.get(team.url + "config", cookies=cookie, timeout=60).status_code == 200

    log_env = {"RAGQA_SIGNIN_LOG": str(team.signin_log)}
    assert ui_command("users", "--file", str(team.users_file), "revoke", "pat", "alpha", env=log_env).returncode == 0
    _, status, table, _ = pat.predict(alpha, api_name="/open_index")  # the same session, its role gone at once
    assert "do not have access to any index yet" in status and table["data"] == []
    assert ui_command("users", "--file", str(team.users_file), "grant", "pat", "alpha=reader",
                      env=log_env).returncode == 0
    assert "Using index" in pat.predict(alpha, api_name="/open_index")[1]

    done = ui_command("users", "--file", str(team.users_file), "passwd", "pat", stdin="pat-new-password\n",
                      env=log_env)
    assert done.returncode == 0, done.stderr
    assert httpx.get(team.url + "config", cookies=cookie, timeout=60).status_code == 401  # the old cookie is dead
    with pytest.raises(Exception):  # noqa: B017 - so is the client's session, whatever a 401 becomes there
        pat.predict(alpha, api_name="/open_index")
    assert sign_in(team, "pat", ACCOUNTS["pat"][0], "198.51.100.78")[0] == 400
    fresh = httpx.post(team.url + "login", data={"username": "pat", "password": "pat-new-password"},
                       headers={"X-Forwarded-For": "198.51.100.79"}, timeout=120)
    assert fresh.status_code == 200
    assert httpx.get(team.url + "config", cookies=dict(fresh.cookies), timeout=60).status_code == 200
    ended = [e for e in signin_events(team) if e["user"] == "pat" and e["action"] == "session-end"]
    assert ended and {e["detail"] for e in ended} == {"the password changed"}


def test_a_refused_upload_or_removal_keeps_the_table_and_gradio_keeps_no_copy_of_an_upload(team: Team) -> None:
    rita, alice, alpha = team.client("rita"), team.client("alice"), team.index("alpha")
    path = upload_to_gradio(team, cookie_of(rita), "rita-notes.md", b"# Notes\nRita's notes on the Normans.\n")
    assert Path(path).is_file() and Path(path).is_relative_to(team.gradio_tmp)
    event, (status, table, _) = call(team, cookie_of(rita), "upload", [[file_data(path)], alpha])
    assert event == "complete" and "You are a reader of index 'alpha'" in shown(status)
    assert "normans_latin1.txt" in [row[0] for row in table["data"]]  # the table she had, not an empty one
    assert not Path(path).exists()  # a refused upload's copy goes at once
    status, table, remove = rita.predict("docs/oxygen.html", alpha, api_name="/remove")
    assert "You are a reader" in shown(status) and "oxygen.html" in [row[0] for row in table["data"]]

    marker = f"issue21-{time.time_ns()}.md"
    path = upload_to_gradio(team, cookie_of(alice), marker, b"# Kept\nThe Normans kept the name.\n")
    event, (status, table, _) = call(team, cookie_of(alice), "upload", [[file_data(path)], alpha])
    assert event == "complete" and f"Added: {marker}" in status
    assert not Path(path).exists() and not [p for p in team.gradio_tmp.rglob("*") if p.name == marker]
    served = httpx.get(team.url + f"gradio_api/file={path}", cookies=cookie_of(alice), timeout=60)
    assert served.status_code in (403, 404)
    rows = {row[0]: row[5] for row in table["data"]}
    assert rows[marker] == f"uploads/{marker}" and rows["normans_latin1.txt"] == "docs/normans_latin1.txt"
    assert not any(source.startswith("/") for source in rows.values())  # no server path on the page
    status, table, _ = alice.predict(f"uploads/{marker}", alpha, api_name="/remove")  # by the name the page shows
    assert f"Removed {marker}" in status and marker not in [row[0] for row in table["data"]]


def test_refusals_that_left_no_trace_are_in_the_audit_trail(team: Team) -> None:
    """Section 3: a refused index creation, a sign-in refused during a lockout (right password too), an index
    not on offer, an upload naming a server path (with a clear error, not null), an admin's account changes."""
    alice, alpha = team.client("alice"), team.index("alpha")
    _, status, _, _ = alice.predict("delta", alpha, api_name="/create_index")
    assert "needs the admin role" in status
    for i in range(MAX_FAILURES):
        assert sign_in(team, "lucy", "wrong-password", f"192.0.2.{150 + i}")[0] == 400
    assert sign_in(team, "lucy", ACCOUNTS["lucy"][0], "192.0.2.160")[0] == 429  # the right password, locked out
    assert "no index 'beta'" in shown(alice.predict("rollo", "bm25", 2, f"{alpha}/../beta", api_name="/search"))
    listener = Listener()
    try:
        for named in ("/etc/hostname", f"http://127.0.0.1:{listener.port}/notes.md"):
            event, data = call(team, cookie_of(alice), "upload", [[file_data(named)], alpha])
            assert event == "error" and data["error"], data  # a message, not {"error": null}
            assert "was not uploaded to this app" in data["error"] and "upload the file first" in data["error"]
        time.sleep(0.5)
        assert listener.received == []  # and a URL is not fetched
    finally:
        listener.close()
    log_env = {"RAGQA_SIGNIN_LOG": str(team.signin_log)}
    for args, stdin in ((["add", "audit-temp", "--role", "alpha=reader"], "audit-temp-password\n"),
                        (["grant", "audit-temp", "alpha=editor"], ""), (["revoke", "audit-temp", "alpha"], ""),
                        (["add", "audit-temp"], "another-password\n"), (["remove", "audit-temp"], "")):
        ui_command("users", "--file", str(team.users_file), *args, stdin=stdin, env=log_env)

    done = ui_command("audit", "--index", alpha, "--signin-log", str(team.signin_log), "--json")
    events = json.loads(done.stdout)["events"]
    seen = {(e["user"], e["action"], e["outcome"]) for e in events}
    assert ("alice", "create-index", "refused") in seen
    assert ("lucy", "sign-in", "refused") in seen
    assert any(e["action"] == "search" and e["outcome"] == "refused" and e.get("index") == f"{alpha}/../beta"
               for e in events)
    uploads = [e for e in events if e["user"] == "alice" and e["action"] == "upload" and e["outcome"] == "refused"]
    assert [e["files"] for e in uploads][-2:] == [["/etc/hostname"], [f"http://127.0.0.1:{listener.port}/notes.md"]]
    changes = [(e["action"], e["outcome"], e.get("roles")) for e in events if e.get("account") == "audit-temp"]
    assert changes == [("user-add", "ok", ["alpha=reader"]), ("user-grant", "ok", ["alpha=editor"]),
                       ("user-revoke", "ok", []), ("user-add", "failed", None), ("user-remove", "ok", None)]
    admin = {e["user"] for e in events if e.get("account") == "audit-temp"}
    assert len(admin) == 1 and admin != {None}  # the operating-system account that ran the command
    readable = ui_command("audit", "--sign-ins", "--signin-log", str(team.signin_log)).stdout
    assert any("user-passwd" in line or "user-add" in line for line in readable.splitlines())
    assert "audit-temp-password" not in team.signin_log.read_text()


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
    team.forget("alice")  # Gradio's sign-out ends every session of alice's, her API client's too
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
    # a history a script writes itself works too (in Gradio's message format, the one /ask returns: Gradio 6
    # refuses a bare string as content before any handler runs), and it is only ever the caller's own
    def text(words: str) -> list[dict]:
        return [{"type": "text", "text": words}]

    _, plain, _ = team.client("rita").predict(
        "What did he do?", [{"role": "user", "content": text("Who was the Norse leader?")},
                            {"role": "assistant", "content": text("Rollo")}], "extractive", "hybrid", 3,
        team.index("alpha"), api_name="/ask")
    assert "Rollo" in plain["searched_for"]


@pytest.mark.browser
def test_each_role_sees_its_own_page_in_a_real_browser(team: Team, browser: Browser) -> None:
    """A reader is offered no Upload, Remove or Create index and sees their role; no "Runs" footer link
    after a question; an editor sees paths relative to the index and headers that do not break mid-word, and
    when the role goes while the page is open, an upload is refused and the table stays as it was."""
    alpha = team.index("alpha")

    def signed_in_page(name: str, address: str) -> Any:
        context = browser.new_context(viewport={"width": 1000, "height": 900},
                                      extra_http_headers={"X-Forwarded-For": address})
        page = context.new_page()
        page.set_default_timeout(120_000)
        page.goto(team.url)
        page.get_by_label("username").fill(name)
        page.get_by_label("password").fill(ACCOUNTS[name][0])
        with page.expect_navigation(timeout=120_000):
            page.get_by_role("button", name="Login").click()
        page.wait_for_function("document.querySelector('#index input')?.value === 'indexes/alpha'", timeout=120_000)
        return page

    page = signed_in_page("rita", "198.18.1.1")
    page.locator("#account").get_by_text("reader of indexes/alpha").wait_for()
    page.get_by_role("tab", name="Documents").click()
    page.locator("#documents").get_by_text("normans_latin1.txt").first.wait_for()
    for part in ("#upload", "#remove-button", "#create-index", "#new-index"):
        assert page.locator(part).is_hidden(), part
    page.get_by_role("tab", name="Ask").click()
    page.locator("#question textarea").fill(QUESTION)
    page.locator("#question textarea").press("Enter")
    page.locator("#chat .rag-answer").last.wait_for()
    page.wait_for_timeout(2000)  # the run history would save the run and show its link by now
    assert page.locator("footer").get_by_text("Runs").count() == 0 and page.locator("a.run-history").count() == 0
    assert page.locator("#chat .source-card summary").first.get_attribute("title") == "docs/normans_latin1.txt"
    page.context.close()

    page = signed_in_page("rolf", "198.18.1.2")
    page.locator("#account").get_by_text("editor of indexes/alpha").wait_for()
    page.get_by_role("tab", name="Documents").click()
    table = page.locator("#documents")
    table.get_by_text("normans_latin1.txt").first.wait_for()
    assert "Using index indexes/alpha." in page.locator("#upload-status").inner_text()
    assert page.locator("#upload").is_visible() and page.locator("#remove-button").is_visible()
    assert page.locator("#create-index").is_hidden()  # no admin role anywhere
    assert "docs/normans_latin1.txt" in table.inner_text() and alpha not in page.content()
    lines = page.evaluate("""() => [...document.querySelectorAll('#documents thead th span.header')].map(s => {
        const r = document.createRange(); r.selectNodeContents(s);
        return [s.innerText, r.getClientRects().length]; })""")
    assert [name for name, _ in lines] == ["Name", "Type", "Pages", "Chunks", "Added", "Source"]
    assert all(n == 1 for _, n in lines), lines  # each header on one line: no "Pa/ge/s"

    done = ui_command("users", "--file", str(team.users_file), "grant", "rolf", "alpha=reader",
                      env={"RAGQA_SIGNIN_LOG": str(team.signin_log)})
    assert done.returncode == 0, done.stderr
    rows = table.locator("tbody tr").count()
    page.locator("#upload input[type=file]").set_input_files([str(DOCS / "code-of-conduct.md")])
    page.locator("#upload-status").get_by_text("You are a reader of index 'alpha'").wait_for()
    assert table.locator("tbody tr").count() == rows and "normans_latin1.txt" in table.inner_text()
    page.reload()
    page.locator("#account").get_by_text("reader of indexes/alpha").wait_for()
    assert page.locator("#upload").is_hidden()
    page.context.close()
