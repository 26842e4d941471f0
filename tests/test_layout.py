"""The import graph, read statically (``ast``, nothing imported): no cycles between files or between
the top-level packages, and imports point one way (docs/design.md): ``ui`` -> ``ingest`` -> ``rag_qa``.

Imports inside functions count (they run); those under ``if TYPE_CHECKING:`` count too.
``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else to ``pkg``.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from conftest import REPO

PACKAGES = ("ingest", "rag_qa", "ui")


@cache
def modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _owner(name: str) -> str | None:
    """The module of ours that ``name`` (a module or a name inside one) lives in."""
    while name and name not in modules():
        name = name.rpartition(".")[0]
    return name or None


@cache
def graph() -> dict[str, frozenset[str]]:
    edges = {}
    for name, path in modules().items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in modules() else base for a in node.names)
        edges[name] = frozenset(o for o in map(_owner, found) if o and o != name)
    return edges


def _cycles(edges: dict[str, frozenset[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def _top(name: str) -> str:
    return name.split(".")[0]


def _in(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def test_the_graph_sees_every_module() -> None:
    assert {"ingest.pipeline", "rag_qa.service", "rag_qa.store.base", "ui.app"} <= graph().keys()
    assert "rag_qa.store.base" in graph()["ingest.pipeline"]


def test_no_import_cycles_between_files() -> None:
    assert _cycles(graph()) == []


def test_no_import_cycles_between_top_level_packages() -> None:
    edges: dict[str, set[str]] = {}
    for a, targets in graph().items():
        edges.setdefault(_top(a), set()).update(_top(b) for b in targets if _top(b) != _top(a))
    assert _cycles({k: frozenset(v) for k, v in edges.items()}) == []
    assert edges["rag_qa"] == set(), "rag_qa imports nothing of ingest or ui"
    assert edges["ingest"] == {"rag_qa"}


#: what generative training shares with serving, so both build the same prompts and score the same way; none of
#: it imports the app's stack (test_the_trainers_load_without_the_app_stack)
READING_CORE = ("rag_qa.types", "rag_qa.readers.base", "rag_qa.readers.prompting", "rag_qa.readers.llm_backends",
                "rag_qa.readers.grounding", "rag_qa.readers.generative", "rag_qa.eval.generative_eval")


def test_imports_point_down_the_layers() -> None:
    leaves = ("rag_qa.squad_metrics", "rag_qa.qa_data", "rag_qa.env", "rag_qa.hardware", "rag_qa.sentences")
    wrong = []
    for a, targets in graph().items():
        for b in targets:
            if _in(b, "rag_qa.cli") and not _in(a, "rag_qa.cli", "rag_qa.__main__"):
                wrong.append((a, b))  # the commands are the top of rag_qa: nothing below uses them
            if _in(a, "rag_qa.train") and not _in(b, "rag_qa.train", "rag_qa.spans", "rag_qa.models", *leaves,
                                                  *READING_CORE):
                wrong.append((a, b))  # training runs on a machine without the app's stack
            if (_in(a, "rag_qa.store.faiss") and _in(b, "rag_qa.store.pg")) or (
                    _in(a, "rag_qa.store.pg") and _in(b, "rag_qa.store.faiss")):
                wrong.append((a, b))  # backends share only rag_qa.store.base
            if _in(a, *leaves):
                wrong.append((a, b))  # leaf modules import nothing of ours
    assert wrong == []


def test_the_train_command_loads_without_the_app_stack() -> None:
    """`rag_qa train`'s parser is importable where LangChain, FAISS and Gradio are not installed."""
    import subprocess
    import sys

    code = ("import argparse, sys; from rag_qa.cli import train; "
            "train.add_parser(argparse.ArgumentParser().add_subparsers()); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'langchain_core', 'langchain_community', 'faiss', 'gradio', 'bm25s', 'torch', 'transformers'}))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_the_trainers_load_without_the_app_stack() -> None:
    """Both trainers, and the serving code generative training shares, import where LangChain, FAISS and
    Gradio are not installed (the GPU machine has only torch, transformers, peft, accelerate, safetensors)."""
    import subprocess
    import sys

    code = ("import sys; import rag_qa.train.trainer, rag_qa.train.gen_trainer; "
            "from rag_qa.train.gen_trainer import final_evaluation; "
            "import rag_qa.readers.generative, rag_qa.eval.generative_eval; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'langchain_core', 'langchain_community', 'faiss', 'gradio', 'pydantic_settings'}))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
