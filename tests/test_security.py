"""Security review (issue #9): no unpickling anywhere, models from safetensors only, a pickled-only
model folder refused without being opened, and a web app that listens on 127.0.0.1 and keeps
uploads small, of known types and inside the index's upload folder."""

from __future__ import annotations

import ast
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import DOCS, REPO

from rag_qa.config import Settings
from rag_qa.models import ModelNotFoundError, resolve_model

SCANNED = ("rag_qa", "ingest", "ui", "benchmarks", "tests")
UNSAFE_MODULES = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "marshal", "jsonpickle"}


# -- the scanner --------------------------------------------------------------------------------
def _dotted(node: ast.AST) -> str:
    """``a.b.c`` for a Name/Attribute chain (``?.c`` when the chain starts at a call), else ``""``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value) or '?'}.{node.attr}"
    return ""


def _is_true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def unsafe_deserialisation(source: str) -> list[str]:
    """What in ``source`` could unpickle or evaluate data: one ``line: what`` entry per finding."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"{node.lineno}: import {n}" for n in names if n.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.keyword) and node.arg == "allow_dangerous_deserialization":
            found.append(f"{node.value.lineno}: allow_dangerous_deserialization")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            head, _, last = name.rpartition(".")
            kw = {k.arg: k.value for k in node.keywords}
            unpickles = head.split(".")[0] in UNSAFE_MODULES and last in ("load", "loads", "Unpickler")
            if unpickles or name in ("eval", "exec", "builtins.eval", "builtins.exec"):
                found.append(f"{node.lineno}: {name}()")
            elif name.endswith("torch.load") and not _is_true(kw.get("weights_only")):
                found.append(f"{node.lineno}: torch.load() without weights_only=True")
            elif name in ("np.load", "numpy.load") and _is_true(kw.get("allow_pickle")):
                found.append(f"{node.lineno}: {name}(allow_pickle=True)")
            elif name in ("yaml.unsafe_load", "yaml.full_load", "yaml.load_all") or (
                    name == "yaml.load" and _dotted(kw.get("Loader", ast.Name("?"))).split(".")[-1]
                    not in ("SafeLoader", "CSafeLoader")):
                found.append(f"{node.lineno}: {name}() without SafeLoader")
            elif last in ("read_pickle", "load_local"):  # pandas pickles; LangChain's FAISS.load_local too
                found.append(f"{node.lineno}: {name}()")
    return found


@pytest.mark.parametrize("snippet", [
    "import pickle", "from pickle import loads", "import joblib\njoblib.load('m.pkl')", "import dill",
    "pickle.load(fh)", "torch.load('w.bin')", "torch.load('w.bin', weights_only=False)",
    "np.load('a.npy', allow_pickle=True)", "yaml.load(text)", "yaml.load(text, Loader=yaml.Loader)",
    "yaml.unsafe_load(text)", "eval(user_text)", "exec(code)", "pd.read_pickle('df.pkl')",
    "FAISS.load_local('idx', emb, allow_dangerous_deserialization=True)", "f(allow_dangerous_deserialization=True)",
])
def test_the_scanner_catches_each_unsafe_pattern(snippet: str) -> None:
    assert unsafe_deserialisation(snippet), snippet


@pytest.mark.parametrize("snippet", [
    "torch.load('w.pt', weights_only=True)", "np.load('a.npy')", "np.load('a.npy', allow_pickle=False)",
    "yaml.load(text, Loader=yaml.SafeLoader)", "yaml.safe_load(text)", "model.eval()", "json.loads(s)",
    "bm25s.BM25.load(d, allow_pickle=False)", "safetensors.torch.load_file(p)",
])
def test_the_scanner_lets_safe_code_through(snippet: str) -> None:
    assert unsafe_deserialisation(snippet) == []


def _python_files() -> Iterator[Path]:
    """The project's own Python files: not the hidden virtualenvs `make bench` puts in benchmarks/."""
    for top in SCANNED:
        yield from sorted(p for p in (REPO / top).rglob("*.py")
                          if not any(part.startswith(".") for part in p.relative_to(REPO).parts))


def test_no_unpickling_or_eval_anywhere_in_the_code() -> None:
    files = list(_python_files())
    assert len(files) > 50  # the scan really walked the repo
    findings = {str(p.relative_to(REPO)): f for p in files if (f := unsafe_deserialisation(p.read_text("utf-8")))}
    assert findings == {}


# -- models: safetensors only -------------------------------------------------------------------
_NOT_WEIGHTS = ("Tokenizer", "Config", "Processor", "FeatureExtractor", "ImageProcessor")


def weight_loads(source: str) -> list[tuple[int, bool]]:
    """(line, safe) for each call in ``source`` that loads model weights.

    Safe means ``from_pretrained(..., use_safetensors=True)`` (or ``gguf_file=``, a GGUF is no
    pickle) and ``SentenceTransformer/CrossEncoder(..., model_kwargs={"use_safetensors": True})``.
    """
    loads = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        kw = {k.arg: k.value for k in node.keywords}
        if name.endswith(".from_pretrained") and not any(t in name for t in _NOT_WEIGHTS):
            loads.append((node.lineno, _is_true(kw.get("use_safetensors")) or "gguf_file" in kw))
        elif name.split(".")[-1] in ("SentenceTransformer", "CrossEncoder", "SparseEncoder"):
            options = kw.get("model_kwargs")
            safe = isinstance(options, ast.Dict) and any(
                isinstance(k, ast.Constant) and k.value == "use_safetensors" and _is_true(v)
                for k, v in zip(options.keys, options.values, strict=True))
            loads.append((node.lineno, safe))
    return loads


def test_every_model_load_in_the_product_asks_for_safetensors() -> None:
    files = sorted((REPO / "rag_qa").rglob("*.py"))
    loads = {str(p.relative_to(REPO)): found for p in files if (found := weight_loads(p.read_text("utf-8")))}
    # the places that load weights (if one moves, this list says where to look)
    assert {"rag_qa/embeddings.py", "rag_qa/readers/extractive.py", "rag_qa/readers/llm_backends.py",
            "rag_qa/train/trainer.py"} <= set(loads)
    unsafe = {path: [line for line, safe in found if not safe] for path, found in loads.items()}
    assert {path: lines for path, lines in unsafe.items() if lines} == {}


def test_sentence_transformers_passes_model_kwargs_to_from_pretrained() -> None:
    """``model_kwargs={"use_safetensors": True}`` only helps if sentence-transformers forwards it."""
    import inspect

    from sentence_transformers.base.modules import transformer

    source = inspect.getsource(transformer.Transformer)
    assert "from_pretrained(model_name_or_path, config=config, **model_kwargs)" in source


@pytest.fixture
def pickled_model(tmp_path: Path) -> tuple[Path, Path]:
    """A model folder whose only weights are a ``pytorch_model.bin`` that runs a command when unpickled."""
    folder = tmp_path / "pickled-reader"
    folder.mkdir()
    shutil.copy2(Path(resolve_model("reader", kind="reader").path) / "config.json", folder / "config.json")
    marker = tmp_path / "UNPICKLED"
    # protocol-0 pickle of os.system("touch MARKER"): unpickling it is running it
    (folder / "pytorch_model.bin").write_bytes(b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")
    return folder, marker


def test_a_reader_with_only_pytorch_model_bin_is_refused_not_unpickled(pickled_model: tuple[Path, Path]) -> None:
    from rag_qa.readers.registry import get_reader

    folder, marker = pickled_model
    with pytest.raises(ModelNotFoundError) as err:
        get_reader(f"extractive:{folder}")
    message = str(err.value)
    assert "\n" not in message and "pytorch_model.bin" in message and "safetensors only" in message
    assert not marker.exists()


def test_loaders_below_the_check_refuse_pickles_too(pickled_model: tuple[Path, Path]) -> None:
    """Even past resolve_model, the load calls themselves never fall back to the pickle."""
    from transformers import AutoModelForQuestionAnswering

    from rag_qa.embeddings import load_sentence_transformer

    folder, marker = pickled_model
    with pytest.raises(OSError, match="safetensors"):
        AutoModelForQuestionAnswering.from_pretrained(str(folder), use_safetensors=True)
    with pytest.raises((OSError, ValueError)):
        load_sentence_transformer(str(folder))
    assert not marker.exists()


def test_ingest_with_a_pickled_embedding_model_fails_in_one_line(pickled_model: tuple[Path, Path],
                                                                 tmp_path: Path) -> None:
    folder, marker = pickled_model
    env = dict(os.environ, HF_HUB_OFFLINE="1", RAGQA_EMBEDDING_MODEL=str(folder))
    result = subprocess.run([sys.executable, "-m", "ingest", str(DOCS), "--index", str(tmp_path / "index")],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode in (1, 2), result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ingest: error:") and "pickled weights" in lines[0]
    assert not marker.exists()


# -- the web app --------------------------------------------------------------------------------
def test_the_app_binds_to_loopback_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    from ui.cli import build_parser

    monkeypatch.delenv("RAGQA_HOST", raising=False)
    monkeypatch.setenv("RAGQA_CONFIG", "/nonexistent/rag-qa.toml")
    assert Settings().host == "127.0.0.1"
    args = build_parser().parse_args([])
    assert args.host is None and args.share is False  # so launch() falls back to settings.host


def _outside_address() -> str | None:
    """A non-loopback address of this machine, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.254.254.254", 1))  # no packet is sent: this only picks the outgoing interface
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


@pytest.fixture(scope="module")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Any]]:
    """The real app, launched the way ``python -m ui`` does (no host given), 50 KB upload limit."""
    from ui_server import running_app  # imports ui first: offline defaults before gradio loads

    root = tmp_path_factory.mktemp("ui-security") / "indexes"
    with running_app(root / "main", root, Settings(max_upload_mb=0.05)) as demo:
        yield demo.local_url, root / "main", demo


@pytest.mark.slow
def test_the_running_app_listens_on_127_0_0_1_only(live_app: tuple[str, Path, Any]) -> None:
    url, _, demo = live_app
    assert demo.server_name == "127.0.0.1" and url.startswith("http://127.0.0.1:")
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    socket.create_connection(("127.0.0.1", port), timeout=5).close()
    outside = _outside_address()
    if outside is None:
        pytest.skip("this machine has no non-loopback address to try")
    with pytest.raises(OSError):
        socket.create_connection((outside, port), timeout=5).close()


def _upload(url: str, name: str, data: bytes) -> Any:
    import httpx

    return httpx.post(url + "gradio_api/upload", files=[("files", (name, data, "text/plain"))], timeout=60)


def _call_upload(url: str, paths: list[str], index: Path) -> str:
    """Call the app's ``upload`` endpoint over HTTP with server-side ``paths``; the event stream's text."""
    import httpx

    files = [{"path": p, "meta": {"_type": "gradio.FileData"}} for p in paths]
    started = httpx.post(url + "gradio_api/call/upload", json={"data": [files, str(index)]}, timeout=60)
    started.raise_for_status()
    with httpx.stream("GET", url + f"gradio_api/call/upload/{started.json()['event_id']}", timeout=180) as resp:
        return "".join(resp.iter_text())


@pytest.mark.slow
def test_an_oversized_upload_is_refused_by_the_server(live_app: tuple[str, Path, Any]) -> None:
    url, index, _ = live_app
    response = _upload(url, "big.txt", b"words " * 20_000)  # 120 KB against a 50 KB limit
    assert response.status_code == 413 and "maximum allowed size" in response.text
    assert not (index / "uploads" / "big.txt").exists()


@pytest.mark.slow
def test_a_traversal_name_lands_inside_the_upload_folder(live_app: tuple[str, Path, Any], tmp_path: Path) -> None:
    url, index, _ = live_app
    text = (DOCS / "normans_latin1.txt").read_bytes()[:2000]
    response = _upload(url, "../../../evil name\n.txt", text)
    assert response.status_code == 200
    (server_path,) = response.json()
    stream = _call_upload(url, [server_path], index)
    assert "Added" in stream, stream
    stored = list((index / "uploads").iterdir())
    assert [p.name for p in stored] == [stored[0].name] and stored[0].suffix == ".txt"
    assert "\n" not in stored[0].name and ".." not in stored[0].name and stored[0].read_bytes() == text
    assert not (index.parent / "evil name\n.txt").exists() and not (index.parents[1] / "evil name\n.txt").exists()


@pytest.mark.slow
def test_a_server_file_never_uploaded_cannot_be_pulled_in(live_app: tuple[str, Path, Any], tmp_path: Path) -> None:
    url, index, _ = live_app
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET_SERVER_FILE_MARKER: the API must not read files it was not sent.\n")
    before = sorted(p.name for p in (index / "uploads").iterdir()) if (index / "uploads").exists() else []
    stream = _call_upload(url, [str(secret)], index)
    assert "error" in stream
    after = sorted(p.name for p in (index / "uploads").iterdir()) if (index / "uploads").exists() else []
    assert after == before and "secret.txt" not in after


def test_hostile_upload_names_are_sanitised_and_stay_in_the_uploads_folder(tmp_path: Path) -> None:
    from ui.uploads import MAX_NAME_CHARS, save_uploads

    incoming = tmp_path / "incoming"
    incoming.mkdir()
    names = ["a\nb.txt", ".hidden.md", "résumé 東京.txt", "-rf --all.md", "x" * 240 + ".txt", "tab\tname.html",
             "CON.pdf"]
    for name in names:
        content = b"%PDF-1.4\n" if name.endswith(".pdf") else f"content of {name!r}\n".encode()
        (incoming / name).write_bytes(content)
    index = tmp_path / "index"
    saved = save_uploads([incoming / n for n in names], index, max_mb=1)
    folder = (index / "uploads").resolve()
    assert len(saved.saved) == len(names) and not saved.failed
    for path in saved.saved:
        assert path.parent == folder and path.exists()
        assert path.name.isprintable() and not path.name.startswith((".", "-")) and len(path.name) <= MAX_NAME_CHARS
    by_content = {p.read_bytes(): p.name for p in saved.saved}
    assert by_content[b"content of 'r\\xe9sum\\xe9 \\u6771\\u4eac.txt'\n".decode("unicode_escape").encode()] \
        == "résumé 東京.txt"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file() and p.parent not in (incoming, folder)) == []


def test_disallowed_types_and_oversized_uploads_are_refused_with_a_message(tmp_path: Path) -> None:
    from ui.uploads import save_uploads

    files = {"tool.exe": b"MZ", "page.svg": b"<svg/>", "notes": b"no extension", "report.pdf.exe": b"MZ",
             "..txt": b"only dots before the extension", "big.md": b"# big\n" + b"x" * 2 * 1024 * 1024}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    saved = save_uploads([tmp_path / n for n in files], tmp_path / "index", max_mb=1)
    assert saved.saved == [] and not (tmp_path / "index" / "uploads").exists()
    reasons = {f["path"]: f["error"] for f in saved.failed}
    assert set(reasons) == set(files)
    for name in ("tool.exe", "page.svg", "notes", "report.pdf.exe", "..txt"):
        assert "is not supported (allowed: .txt" in reasons[name], reasons[name]
    assert "over the 1 MB upload limit" in reasons["big.md"]
    assert all("\n" not in r for r in reasons.values())


def test_the_json_of_a_failed_ingest_keeps_odd_names_intact(tmp_path: Path) -> None:
    """Machine-readable output escapes names (JSON) instead of dropping or mangling them."""
    bad = tmp_path / "a\nb.pdf"
    bad.write_bytes(b"%PDF-1.4 broken")
    result = subprocess.run([sys.executable, "-m", "ingest", str(bad), "--index", str(tmp_path / "i"), "--json"],
                            cwd=REPO, env=dict(os.environ, HF_HUB_OFFLINE="1"), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 3, result.stderr
    assert [f["path"] for f in json.loads(result.stdout)["failed"]] == [str(bad)]
    assert f"failed: {tmp_path}/a\\nb.pdf: corrupt or unreadable PDF" in result.stderr


@pytest.mark.slow
def test_an_upload_naming_a_url_or_a_server_file_gets_a_clear_error_and_nothing_is_fetched(
        live_app: tuple[str, Path, Any], tmp_path: Path) -> None:
    """Issue 21: Gradio answered such an upload {"error": null}, and downloads an http(s) path into its cache;
    the app refuses both before Gradio touches them, saying why, and fetches and stores nothing."""
    from ui_server import Listener

    url, index, _ = live_app
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET_SERVER_FILE_MARKER\n")
    before = sorted(p.name for p in (index / "uploads").iterdir()) if (index / "uploads").exists() else []
    listener = Listener()
    try:
        for named in (f"http://127.0.0.1:{listener.port}/notes.md", str(secret), "https://example.org/notes.md"):
            stream = _call_upload(url, [named], index)
            event, data = stream.strip().split("\n\n")[-1].split("\n", 1)
            assert event == "event: error" and "was not uploaded to this app" in data, stream
        time.sleep(0.5)
        assert listener.received == []
    finally:
        listener.close()
    after = sorted(p.name for p in (index / "uploads").iterdir()) if (index / "uploads").exists() else []
    assert after == before
