"""Team use without a running app: the users file and its command, roles, sign-in limits, the
per-user cap, the audit log and its command, and the refusal to start beyond loopback without a
users file (issue 15).  The running app with sign-in is in ``test_ui_signin.py``."""

from __future__ import annotations

import json
import os
import stat
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO

from rag_qa.config import Settings
from rag_qa.env import child_env
from ui import audit
from ui.limits import TooManyRequests, UserSlots, question_too_long
from ui.network import is_loopback
from ui.permissions import Action, Role, allowed, role_on
from ui.signin_limits import SignInLimiter
from ui.users_file import User, UsersFileError, UsersStore, hash_password, load_users, parse_roles, save_users

PASSWORD = "correct horse battery"


# `python -m ui users` writes its audit lines to the server's log: by default, not into the checkout's indexes/
SCRATCH_LOG = Path(tempfile.mkdtemp(prefix="rag-qa-test-")) / "server-log.jsonl"


def ui_command(*args: str, stdin: str | None = None, env: dict[str, str] | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m ui ARGS`` as a child process (this checkout's code), stdin given or empty."""
    return subprocess.run([sys.executable, "-m", "ui", *args], cwd=REPO, input=stdin or "", capture_output=True,
                          text=True, timeout=timeout,
                          env=child_env(**{"RAGQA_SIGNIN_LOG": str(SCRATCH_LOG), **(env or {})}))


# -- the users file and `python -m ui users` ----------------------------------------------------
def test_users_command_stores_only_salted_argon2id_hashes_with_mode_0600(tmp_path: Path) -> None:
    users_file = tmp_path / "conf" / "users.json"
    for name, role in (("alice", "*=admin"), ("bob", "team=reader")):
        done = ui_command("users", "--file", str(users_file), "add", name, "--role", role, stdin=PASSWORD + "\n")
        assert done.returncode == 0, done.stderr
    text = users_file.read_text()
    assert PASSWORD not in text
    users = load_users(users_file)
    hashes = [users["alice"].password_hash, users["bob"].password_hash]
    assert all(h.startswith("$argon2id$") for h in hashes) and hashes[0] != hashes[1]  # same password, own salt
    assert stat.S_IMODE(users_file.stat().st_mode) == 0o600
    assert users["bob"].roles == {"team": Role.READER} and users["alice"].roles == {"*": Role.ADMIN}
    assert UsersStore(users_file).load().verify("bob", PASSWORD)
    assert not UsersStore(users_file).load().verify("bob", PASSWORD + "x")
    assert [p.name for p in users_file.parent.iterdir() if p.name.endswith(".tmp")] == []  # no temp file left

    listed = ui_command("users", "--file", str(users_file), "--json", "list")
    assert json.loads(listed.stdout)["users"] == [{"name": "alice", "roles": {"*": "admin"}},
                                                  {"name": "bob", "roles": {"team": "reader"}}]
    assert "argon2" not in listed.stdout


def test_users_options_work_after_the_subcommand_too(tmp_path: Path) -> None:
    """`users list --json` (as the README writes it) and `users add NAME --file F` are the same commands as
    `users --json list` and `users --file F add NAME`; an option after the subcommand wins."""
    users_file = tmp_path / "users.json"
    added = ui_command("users", "add", "hana", "--file", str(users_file), "--role", "team=editor", "--json",
                       stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["user"] == {"name": "hana", "roles": {"team": "editor"}}
    listed = ui_command("users", "--file", str(tmp_path / "elsewhere.json"), "list", "--file", str(users_file),
                        "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["users"] == [{"name": "hana", "roles": {"team": "editor"}}]
    before = ui_command("users", "--json", "--file", str(users_file), "list")
    assert json.loads(before.stdout) == json.loads(listed.stdout)


def test_users_command_never_takes_a_password_from_argv_and_fails_in_one_line(tmp_path: Path) -> None:
    users_file = tmp_path / "users.json"
    cases = [
        (["add", "carol", PASSWORD], "", "unrecognized arguments"),  # a password on the command line is refused
        (["add", "carol"], "", "no password on stdin"),  # no stdin, not a terminal
        (["add", "carol"], "short\n", "at least 8 characters"),
        (["add", "carol", "--role", "team=owner"], PASSWORD + "\n", "unknown role 'owner'"),
        (["add", "../carol"], PASSWORD + "\n", "user name"),
        (["passwd", "nobody"], PASSWORD + "\n", "no user 'nobody'"),
    ]
    for args, stdin, expected in cases:
        done = ui_command("users", "--file", str(users_file), *args, stdin=stdin)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and expected in done.stderr, (args, done.stderr)
        assert len(lines) == 1 or lines[0].startswith("usage:"), (args, done.stderr)
    assert not users_file.exists()  # none of them wrote anything
    done = ui_command("users", "add", "carol", stdin=PASSWORD + "\n", env={"RAGQA_USERS_FILE": ""})
    assert done.returncode == 2 and "RAGQA_USERS_FILE" in done.stderr


def test_users_grant_revoke_passwd_remove(tmp_path: Path) -> None:
    users_file = tmp_path / "users.json"
    run = [sys.executable, "-m", "ui", "users", "--file", str(users_file)]
    assert ui_command(*run[3:], "add", "dana", stdin=PASSWORD + "\n").returncode == 0
    assert ui_command(*run[3:], "grant", "dana", "hr=editor", "*=reader").returncode == 0
    assert load_users(users_file)["dana"].roles == {"hr": Role.EDITOR, "*": Role.READER}
    old_hash = load_users(users_file)["dana"].password_hash
    assert ui_command(*run[3:], "passwd", "dana", stdin="another password\n").returncode == 0
    store = UsersStore(users_file).load()
    assert store.get("dana").password_hash != old_hash and store.verify("dana", "another password")
    assert ui_command(*run[3:], "revoke", "dana", "hr").returncode == 0
    assert load_users(users_file)["dana"].roles == {"*": Role.READER}
    assert ui_command(*run[3:], "revoke", "dana", "hr").returncode == 2
    assert ui_command(*run[3:], "remove", "dana").returncode == 0
    assert load_users(users_file) == {} and store.get("dana") is None  # the store notices the edit


def test_an_unknown_name_costs_the_same_hash_work_as_a_wrong_password(tmp_path: Path) -> None:
    """No user enumeration by timing: unknown names are checked against a dummy hash of the same kind."""
    users_file = tmp_path / "users.json"
    save_users(users_file, {"gina": User("gina", hash_password(PASSWORD), {})})
    store = UsersStore(users_file).load()
    store.verify("nobody", "warm-up")  # the dummy hash is made once, on first use
    known, unknown = [], []
    for _ in range(5):  # interleaved, so both see the same load
        for name, times in (("gina", known), ("nobody", unknown)):
            started = time.perf_counter()
            assert store.verify(name, "wrong password") is False
            times.append(time.perf_counter() - started)
    a, b = statistics.median(known), statistics.median(unknown)
    assert 0.5 < a / b < 2.0, (a, b)  # a skipped hash would be orders of magnitude faster


def test_a_failed_write_leaves_the_old_users_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    users_file = tmp_path / "users.json"
    save_users(users_file, {"erin": User("erin", hash_password(PASSWORD), {"*": Role.READER})})
    before = users_file.read_bytes()

    def crash(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        save_users(users_file, {})
    assert users_file.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["users.json"]  # the temp file is gone too


def test_a_broken_users_file_is_one_clear_error(tmp_path: Path) -> None:
    users_file = tmp_path / "users.json"
    users_file.write_text('{"format": "rag-qa users 1", "users": {"eve": {"password": "hunter2", "roles": {}}}}')
    with pytest.raises(UsersFileError, match="not an argon2 hash"):
        load_users(users_file)
    done = ui_command("--port", "9", env={"RAGQA_USERS_FILE": str(users_file)}, timeout=60)
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0 and "not an argon2 hash" in done.stderr


# -- roles ------------------------------------------------------------------------------------
def test_roles_nest_and_the_index_entry_beats_the_wildcard() -> None:
    roles = parse_roles(["*=reader", "team=editor", "hr=admin"])
    assert role_on(roles, "team") is Role.EDITOR and role_on(roles, "other") is Role.READER
    assert allowed(roles, Action.ASK, "other") and not allowed(roles, Action.UPLOAD, "other")
    assert allowed(roles, Action.REMOVE, "team") and not allowed(roles, Action.CREATE, "team")
    assert allowed(roles, Action.CREATE, "hr")
    narrowed = parse_roles({"*": "admin", "hr": "reader"})
    assert not allowed(narrowed, Action.UPLOAD, "hr") and allowed(narrowed, Action.UPLOAD, "x")
    assert not allowed({}, Action.LIST, "anything")
    with pytest.raises(ValueError, match="INDEX=ROLE"):
        parse_roles(["team"])
    with pytest.raises(ValueError, match="index name"):
        parse_roles(["../etc=reader"])


# -- limits -----------------------------------------------------------------------------------
def test_failures_lock_a_name_and_an_address_for_the_lockout_then_release() -> None:
    now = [1000.0]
    limiter = SignInLimiter(max_per_user=3, max_per_address=5, window_s=900, lockout_s=300, clock=lambda: now[0])
    assert [limiter.failed("alice", "10.0.0.1") for _ in range(3)] == [False, False, True]
    assert limiter.locked_for("alice", "10.0.0.9") == pytest.approx(300)  # the name, from anywhere
    assert limiter.locked_for("ALICE ", "10.0.0.9") > 0  # names are compared as Gradio strips them, any case
    assert limiter.locked_for("bob", "10.0.0.2") == 0
    now[0] += 301
    assert limiter.locked_for("alice", "10.0.0.9") == 0
    for name in ("u1", "u2"):  # the address already has 3 failures: 2 more from new names lock it
        limiter.failed(name, "10.0.0.1")
    assert limiter.locked_for("anyone", "10.0.0.1") > 0 and limiter.locked_for("anyone", "10.0.0.3") == 0


def test_failures_outside_the_window_are_forgotten_and_success_clears_a_name() -> None:
    now = [0.0]
    limiter = SignInLimiter(max_per_user=3, max_per_address=100, window_s=60, lockout_s=300, clock=lambda: now[0])
    limiter.failed("carol", "a")
    limiter.failed("carol", "a")
    now[0] += 61
    assert limiter.failed("carol", "a") is False  # the first two have expired
    limiter.failed("carol", "a")
    limiter.succeeded("carol")
    assert limiter.failed("carol", "a") is False and limiter.locked_for("carol", "a") == 0


def test_the_per_user_cap_refuses_the_extra_request_and_frees_its_slot() -> None:
    slots = UserSlots(2)
    with slots.slot("alice"), slots.slot("alice"):
        with pytest.raises(TooManyRequests, match="2 requests running"), slots.slot("alice"):
            pass
        with slots.slot("bob"):  # another user is not affected
            assert slots.running("bob") == 1
        with slots.slot(None), slots.slot(None), slots.slot(None):  # no sign-in: no per-user cap
            pass
    assert slots.running("alice") == 0
    with pytest.raises(RuntimeError), slots.slot("alice"):
        raise RuntimeError("handler failed")
    assert slots.running("alice") == 0  # a failing request gives its slot back


def test_the_per_user_cap_holds_under_threads() -> None:
    slots, seen, refused, lock = UserSlots(2), [], [], threading.Lock()

    def work() -> None:
        try:
            with slots.slot("alice"):
                with lock:
                    seen.append(slots.running("alice"))
                time.sleep(0.05)
        except TooManyRequests:
            refused.append(1)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(seen) <= 2 and len(seen) + len(refused) == 8 and refused


def test_question_length_limit_message() -> None:
    assert question_too_long("x" * 10, 10) is None
    assert question_too_long("x" * 11, 10, "query") == ("That query has 11 characters; the limit is 10. "
                                                        "Shorten it and try again.")


# -- audit ------------------------------------------------------------------------------------
def test_audit_lines_append_and_the_command_prints_them_with_sign_ins(tmp_path: Path) -> None:
    index, signins = tmp_path / "indexes" / "team", tmp_path / "sign-ins.jsonl"
    index.mkdir(parents=True)
    audit.append(audit.index_log(index), audit.event("alice", "upload", "ok", files=["a.pdf", "b.txt"]))
    time.sleep(0.01)
    # a name typed at the sign-in form, forging a line of its own (and a terminal escape) in the printout
    forged = "mallory\n2026-05-01 09:00:00  ada  sign-in  ok  address: 10.0.0.1\x1b[2K"
    audit.append(signins, audit.event(forged, "sign-in", "failed", address="10.0.0.7"))
    time.sleep(0.01)
    audit.append(audit.index_log(index), audit.event("bob", "remove", "refused", files=["a.pdf"],
                                                     detail="You are a reader"))
    first = audit.index_log(index).read_text().splitlines()
    assert len(first) == 2 and json.loads(first[0])["files"] == ["a.pdf", "b.txt"]
    assert stat.S_IMODE(audit.index_log(index).stat().st_mode) == 0o600

    done = ui_command("audit", "--index", str(index), "--signin-log", str(signins))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 3
    assert "alice" in lines[0] and "upload" in lines[0] and "a.pdf, b.txt" in lines[0]
    assert "mallory" in lines[1] and "sign-in" in lines[1] and "failed" in lines[1] and "10.0.0.7" in lines[1]
    assert "mallory?2026-05-01" in lines[1] and "\x1b" not in done.stdout
    assert "refused" in lines[2] and "You are a reader" in lines[2]
    as_json = json.loads(ui_command("audit", "--index", str(index), "--signin-log", str(signins), "--json",
                                    "--no-sign-ins").stdout)
    assert [e["action"] for e in as_json["events"]] == ["upload", "remove"]
    missing = ui_command("audit", "--index", str(tmp_path / "nope"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1


# -- starting beyond loopback -----------------------------------------------------------------
def test_loopback_addresses() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.5", "example.org", ""]))


GUARD = textwrap.dedent("""
    import runpy, socket, sys
    attempts = []
    real_connect = socket.socket.connect

    def guarded(self, address):  # any connection off this machine is recorded and blocked
        host = address[0] if isinstance(address, tuple) else str(address)
        if not (host.startswith("127.") or host in ("::1", "localhost")):
            attempts.append(host)
            raise OSError("blocked by the test: no traffic may leave this machine")
        return real_connect(self, address)

    real_getaddrinfo = socket.getaddrinfo

    def lookup(host, *args, **kwargs):  # so is any name lookup for another host
        if host not in (None, "127.0.0.1", "localhost", "::1"):
            attempts.append(f"dns:{host}")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = guarded
    socket.getaddrinfo = lookup
    sys.argv = ["ui", *sys.argv[1:]]
    try:
        runpy.run_module("ui", run_name="__main__")
    except SystemExit as exc:
        code = exc.code
    print(f"GUARD attempts={attempts} gradio={'gradio' in sys.modules}", file=sys.stderr)
    sys.exit(code)
""")


@pytest.mark.parametrize("flags", [["--host", "0.0.0.0"], ["--share"], ["--host", "192.0.2.10", "--share"]])
def test_refuses_to_start_beyond_loopback_without_a_users_file(flags: list[str], tmp_path: Path) -> None:
    """One line, exit 2, in seconds, before Gradio is imported: nothing bound, no share link asked for."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", GUARD, *flags, "--index", str(tmp_path / "i")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120,
                          env=child_env(RAGQA_USERS_FILE="", RAGQA_CONFIG=str(tmp_path / "none.toml"),
                                        HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9"))
    elapsed = time.monotonic() - started
    error, guard = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert error.startswith("error: refusing to start:") and "RAGQA_USERS_FILE" in error
    assert ("--share" in error) == ("--share" in flags)
    assert guard == "GUARD attempts=[] gradio=False"  # refused before gradio loaded or anything connected
    assert elapsed < 60 and not (tmp_path / "i").exists()


def test_header_sign_on_refuses_anything_but_loopback(tmp_path: Path) -> None:
    users_file = tmp_path / "users.json"
    save_users(users_file, {"ann": User("ann", hash_password(PASSWORD), {"*": Role.READER})})
    env = {"RAGQA_USERS_FILE": str(users_file), "RAGQA_TRUSTED_USER_HEADER": "X-Forwarded-User"}
    for flags in (["--host", "0.0.0.0"], ["--share"]):
        done = ui_command(*flags, env=env, timeout=60)
        assert done.returncode == 2 and "RAGQA_TRUSTED_USER_HEADER" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    no_file = ui_command(env={**env, "RAGQA_USERS_FILE": ""}, timeout=60)
    assert no_file.returncode == 2 and "needs a users file" in no_file.stderr


def test_settings_defaults_keep_sign_in_off_and_questions_out_of_the_log(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("RAGQA_USERS_FILE", "RAGQA_TRUSTED_USER_HEADER", "RAGQA_AUDIT_QUESTIONS", "RAGQA_HOST"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("RAGQA_CONFIG", "/nonexistent/rag-qa.toml")
    s = Settings()
    assert s.users_file is None and s.trusted_user_header is None and s.audit_questions is False
    assert s.host == "127.0.0.1" and s.max_question_chars > 0 and s.user_concurrency >= 1


def test_a_burst_of_parallel_guesses_gets_no_more_tries_than_the_limit(tmp_path: Path) -> None:
    """Guesses sent all at once queue for the hash check; those behind the limit are refused unchecked."""
    import asyncio

    from fastapi import HTTPException

    from ui.auth import PasswordSignIn

    users_file, log = tmp_path / "users.json", tmp_path / "sign-ins.jsonl"
    save_users(users_file, {"frank": User("frank", hash_password(PASSWORD), {"*": Role.READER})})
    limiter = SignInLimiter(max_per_user=3, max_per_address=100, window_s=900, lockout_s=300)
    sign_in = PasswordSignIn(UsersStore(users_file).load(), limiter, log, failure_delay_s=0.0)

    async def burst() -> list[object]:
        return await asyncio.gather(*(sign_in.check("frank", f"guess-{i}") for i in range(8)), return_exceptions=True)

    outcomes = asyncio.run(burst())
    assert outcomes.count(False) == 3
    assert all(isinstance(o, HTTPException) and o.status_code == 429 for o in outcomes if o is not False)
    logged = [json.loads(line)["outcome"] for line in log.read_text().splitlines()]
    # the 5 refused during the lockout (issue 21) are one line: at most one a second per address
    assert [o for o in logged if o != "refused"] == ["failed"] * 3 + ["locked"] and logged.count("refused") == 1


# -- issue 21: sessions, the readers on offer, request fields ------------------------------------
def test_sessions_end_on_password_change_removal_idle_time_and_age(tmp_path: Path) -> None:
    from ui.sessions import Sessions

    users_file, log = tmp_path / "users.json", tmp_path / "server.jsonl"
    save_users(users_file, {n: User(n, hash_password(PASSWORD), {"*": Role.READER}) for n in ("ann", "ben")})
    store = UsersStore(users_file).load()
    now = [0.0]
    sessions = Sessions(store, idle_s=60, max_s=300, log_path=log, clock=lambda: now[0])
    tokens: dict[str, str] = {}  # Gradio's token -> user dict

    def sign_in(token: str, name: str) -> None:
        sessions.verified(name, store.get(name).password_hash)  # what PasswordSignIn.check reports
        tokens[token] = name  # what Gradio's /login does
        sessions.started(token, name, tokens)  # what the gate does with the answer's cookie

    sign_in("idle", "ann")
    for _ in range(3):  # each request restarts the idle clock
        now[0] += 59
        assert sessions.user("idle", tokens) == "ann"
    sign_in("passive", "ann")
    now[0] += 50
    assert sessions.user("passive", tokens, touch=False) == "ann"  # the page's heartbeat is not activity
    now[0] += 11
    assert sessions.user("idle", tokens) is None and "idle" not in tokens  # 61 s without a request
    assert sessions.user("passive", tokens) is None and "passive" not in tokens

    sign_in("old", "ann")
    for _ in range(6):
        now[0] += 50
        assert sessions.user("old", tokens) == "ann"
    now[0] += 1
    assert sessions.user("old", tokens) is None  # 301 s after sign-in, however busy

    sign_in("ann-1", "ann")
    sign_in("ben-1", "ben")
    save_users(users_file, {"ann": User("ann", hash_password("a new password"), {"*": Role.READER}),
                            "ben": store.get("ben")})
    assert sessions.user("ann-1", tokens) is None and sessions.user("ben-1", tokens) == "ben"
    save_users(users_file, {"ann": store.get("ann")})
    assert sessions.user("ben-1", tokens) is None  # removed
    tokens["forged"] = "ann"  # a token no sign-in here made
    assert sessions.user("forged", tokens) is None and "forged" not in tokens

    sessions.verified("ann", store.get("ann").password_hash)  # checked against the password of that moment...
    save_users(users_file, {"ann": User("ann", hash_password("yet another one"), {"*": Role.READER})})
    tokens["late"] = "ann"
    sessions.started("late", "ann", tokens)  # ...which changed before the token was made: no session
    assert "late" not in tokens and sessions.user("late", tokens) is None

    ended = [(e["user"], e["detail"]) for e in audit.read(log)]
    assert ended == [("ann", "no request for 1 minute"), ("ann", "no request for 1 minute"),
                     ("ann", "signed in more than 5 minutes ago"), ("ann", "the password changed"),
                     ("ben", "the user was removed")]
    assert all(e["action"] == "session-end" and e["outcome"] == "ended" for e in audit.read(log))


def test_the_app_offers_the_builtin_readers_unless_the_operator_says_otherwise(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from rag_qa.readers.registry import BUILTIN_READERS
    from ui.readers import OfferedReaders, ReaderNotOffered

    monkeypatch.setenv("RAGQA_CONFIG", "/nonexistent/rag-qa.toml")
    builtin = OfferedReaders(Settings(reader="extractive"))
    assert builtin.names() == list(BUILTIN_READERS) == ["extractive", "generative", "generative:smollm2"]
    assert builtin.spec("generative") == "generative" and builtin.spec("") == builtin.spec(None) == "extractive"
    for typed in ("extractive:/etc", "extractive:minilm", "generative:openai:m@http://127.0.0.1:9/v1",
                  "generative:ollama:llama3", " extractive", "Extractive", "x" * 10_000, 5, ["extractive"]):
        with pytest.raises(ReaderNotOffered, match="^unknown reader .*: pick one of extractive, generative") as err:
            builtin.spec(typed)
        assert len(str(err.value)) < 200  # one short line, however long the input

    monkeypatch.setenv("RAGQA_UI_READERS", '["extractive"]')
    monkeypatch.setenv("RAGQA_UI_READER_SPECS", '{"team-llm": "generative:openai:llama3@http://10.0.0.5:8000/v1"}')
    named = OfferedReaders(Settings(reader="generative:openai:x@http://elsewhere"))
    assert named.names() == ["extractive", "team-llm"] and named.default == "extractive"
    assert named.spec("team-llm") == "generative:openai:llama3@http://10.0.0.5:8000/v1"
    assert named.hides_spec("team-llm") and not named.hides_spec("extractive")
    with pytest.raises(ReaderNotOffered):
        named.spec("generative")  # narrowed away by the operator
    with pytest.raises(ReaderNotOffered):
        named.spec("generative:openai:llama3@http://10.0.0.5:8000/v1")  # the spec itself is not a name to pick

    monkeypatch.delenv("RAGQA_UI_READERS")
    monkeypatch.delenv("RAGQA_UI_READER_SPECS")  # pydantic-settings would merge it into the dicts below
    with pytest.raises(ValidationError, match="without ':'"):
        Settings(ui_reader_specs={"openai:x": "generative:openai:x@http://h/v1"})
    for settings, problem in ((Settings(ui_reader_specs={"extractive": "generative:x"}), "already a reader"),
                              (Settings(ui_readers=["bogus"], ui_reader_specs={}), "not a reader spec"),
                              (Settings(ui_readers=[], ui_reader_specs={}), "at least one reader")):
        with pytest.raises(ValueError, match=problem):
            OfferedReaders(settings)
    done = ui_command("--port", "9", env={"RAGQA_UI_READERS": '["bogus"]', "RAGQA_USERS_FILE": ""}, timeout=120)
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0 and "not a reader spec" in done.stderr


def test_request_fields_are_checked_on_the_server() -> None:
    from ui.validation import RequestRefused, check_mode, check_top_k

    assert check_mode("bm25") == "bm25" and check_mode("") is None and check_top_k(20) == 20 and check_top_k(3.0) == 3
    assert check_top_k(None) is None
    for mode in ("BM25", "sparse", 3, ["bm25"]):
        with pytest.raises(RequestRefused, match="unknown retrieval mode"):
            check_mode(mode)
    for k in (0, 21, 2.5, float("nan"), float("inf"), -1, True, "5", 10**9):
        with pytest.raises(RequestRefused, match="from 1 to 20"):
            check_top_k(k)


def test_settings_defaults_for_sessions_and_readers(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("RAGQA_SESSION_IDLE_S", "RAGQA_SESSION_MAX_S", "RAGQA_UI_READERS", "RAGQA_UI_READER_SPECS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("RAGQA_CONFIG", "/nonexistent/rag-qa.toml")
    s = Settings()
    assert (s.session_idle_s, s.session_max_s) == (3600.0, 43200.0)
    assert s.ui_readers is None and s.ui_reader_specs == {}


def test_account_changes_are_audited_with_who_ran_them_and_never_a_password(tmp_path: Path) -> None:
    users_file, log = tmp_path / "users.json", tmp_path / "server.jsonl"
    env = {"RAGQA_SIGNIN_LOG": str(log)}
    for args, stdin in ((["add", "kim", "--role", "hr=reader"], PASSWORD + "\n"), (["passwd", "kim"], "short\n"),
                        (["passwd", "kim"], "kim's new password\n"), (["grant", "kim", "*=editor"], ""),
                        (["revoke", "kim", "hr"], ""), (["list"], ""), (["remove", "kim"], "")):
        ui_command("users", "--file", str(users_file), *args, stdin=stdin, env=env)
    events = list(audit.read(log))
    assert [(e["action"], e["outcome"], e["account"], e.get("roles")) for e in events] == [
        ("user-add", "ok", "kim", ["hr=reader"]), ("user-passwd", "failed", "kim", None),
        ("user-passwd", "ok", "kim", ["hr=reader"]), ("user-grant", "ok", "kim", ["*=editor", "hr=reader"]),
        ("user-revoke", "ok", "kim", ["*=editor"]), ("user-remove", "ok", "kim", None)]
    assert events[1]["detail"] == "the password must have at least 8 characters"
    assert len({e["user"] for e in events}) == 1 and events[0]["user"]  # the OS account that ran them
    assert all(e["users_file"] == str(users_file) for e in events)
    text = log.read_text()
    assert PASSWORD not in text and "new password" not in text and "argon2" not in text
    shown = ui_command("audit", "--sign-ins", "--signin-log", str(log)).stdout.splitlines()
    assert len(shown) == 6 and "user-grant" in shown[3] and "account: kim" in shown[3] and "*=editor" in shown[3]
