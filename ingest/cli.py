"""`python -m ingest PATH... [--index DIR] [--rebuild] [--remove PATH...] [--ray ADDRESS] [--json]`.

``--ray ADDRESS`` (or ``RAGQA_RAY_ADDRESS``; ``local`` starts a cluster in this process) runs the
same ingest on a Ray cluster into the PostgreSQL store (:mod:`ingest.ray_pipeline`); Ray is
imported only then.

Files of types that are not read, found in the folders given, are listed in one line
(``skipped: 2 files of unsupported types: .exe, .zip``) and in the JSON's ``skipped``.

Exit codes: 0 every file went in; 3 some files failed (the rest was indexed); 2 usage error
(bad path, wrong embedding model); 1 anything else.  Errors are one line, never a traceback
(set ``RAGQA_DEBUG=1`` to see one).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ingest.errors import IngestUsageError
from ingest.loaders import SUPPORTED_SUFFIXES
from rag_qa.env import set_offline_defaults
from rag_qa.terminal import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE, OneLineParser, emit_json, fail, one_line

#: every line ingest writes for people starts with this
PREFIX = "ingest: "


class _IngestParser(OneLineParser):
    error_prefix = PREFIX


def build_parser() -> argparse.ArgumentParser:
    p = _IngestParser(prog="python -m ingest", description=f"Index documents ({' '.join(SUPPORTED_SUFFIXES)}) "
                       "for question answering; folders are read recursively.")
    p.add_argument("paths", nargs="*", metavar="PATH", help="files or folders to ingest")
    p.add_argument("--index", type=Path, default=None, help="index directory (default: indexes/default, "
                   "or RAGQA_INDEX)")
    p.add_argument("--rebuild", action="store_true", help="start a fresh index from PATH... only")
    p.add_argument("--remove", nargs="+", metavar="PATH", default=[],
                   help="remove these files (or everything under these folders) from the index")
    p.add_argument("--ray", metavar="ADDRESS", default=None,
                   help="run on a Ray cluster (local, auto, host:port or ray://host:10001; default RAGQA_RAY_ADDRESS) "
                   "into the PostgreSQL store; needs pip install -e '.[cluster]'")
    p.add_argument("--ray-workers", type=int, default=None, metavar="N",
                   help="embedding actors on the cluster (default RAGQA_RAY_WORKERS, 0 = as many as fit)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
    return p


class Progress:
    """tqdm bars on stderr, one per phase and several at once, plus a plain line when a phase first
    starts (for logs and for tests that wait for a phase).

    Files are read while the chunks already made are embedded, so "reading" (files) and "embedding"
    (chunks embedded of those made so far) move together; OCR (``ocr <file>``) gets a bar of its
    own, one step per page, so a long scan shows its pages moving while the file count waits.
    "writing" closes the others.
    """

    POSITIONS = {"reading": 0, "embedding": 1, "ocr": 2}

    def __init__(self) -> None:
        self._bars: dict[str, Any] = {}
        self._seen: set[str] = set()
        self._pages_of = ""

    def __call__(self, done: int, total: int, desc: str) -> None:
        phase, _, detail = desc.partition(" ")
        if phase == "ocr":
            self._ocr(done, total, detail)
            return
        if phase not in self.POSITIONS:  # writing and the like: the other phases are over
            self.close()
        if phase not in self._seen:
            self._seen.add(phase)
            what = {"reading": f"reading {total} files", "embedding": "embedding chunks as files are read"}
            print(what.get(phase, desc), file=sys.stderr, flush=True)
        bar = self._bar(phase, total)
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)
        if detail:
            bar.set_postfix_str(one_line(detail), refresh=False)

    def _bar(self, phase: str, total: int, unit: str = "") -> Any:
        from tqdm import tqdm

        bar = self._bars.get(phase)
        if bar is None:
            bar = self._bars[phase] = tqdm(total=total, desc=phase, unit=unit, file=sys.stderr, disable=None,
                                           leave=False, position=self.POSITIONS.get(phase, 0))
        return bar

    def _ocr(self, done: int, total: int, name: str) -> None:
        bar = self._bars.get("ocr")
        if bar is None or self._pages_of != name or bar.total != total:
            self._close("ocr")
            print(f"OCR of {one_line(name)}: {total} page{'s' if total != 1 else ''}", file=sys.stderr, flush=True)
            bar = self._bar("ocr", total, unit="page")
            self._pages_of = name
        bar.update(done - bar.n)
        if done >= total:
            self._close("ocr")

    def _close(self, phase: str) -> None:
        bar = self._bars.pop(phase, None)
        if bar is not None:
            bar.close()

    def close(self) -> None:
        for phase in list(self._bars):
            self._close(phase)


def _fail(code: int, message: str) -> int:
    return fail(message, code, PREFIX)


def run(args: argparse.Namespace) -> int:
    from ingest.pipeline import ingest_paths
    from rag_qa.config import SettingsError, get_settings
    from rag_qa.models import ModelNotFoundError
    from rag_qa.store.base import EmbeddingMismatchError, IndexStoreError

    progress = Progress()
    log = lambda m: print(f"{PREFIX}{one_line(m)}", file=sys.stderr)  # noqa: E731
    settings = None
    try:
        settings = get_settings()
        address = args.ray if args.ray is not None else settings.ray_address
        if address:
            from ingest.ray_pipeline import ClusterError, ingest_paths_ray, require_cluster_store

            require_cluster_store(settings)  # before Ray starts: one line
            if args.ray_workers is not None:
                settings = settings.model_copy(update={"ray_workers": args.ray_workers})
            try:
                report = ingest_paths_ray(args.paths, args.index, address=address, rebuild=args.rebuild,
                                          remove=args.remove, settings=settings, progress=progress, log=log)
            except ClusterError as exc:
                return _fail(EXIT_ERROR, str(exc))
            except KeyboardInterrupt:
                return _fail(EXIT_INTERRUPTED, "interrupted; the documents written so far are in the index, run "
                             "again to finish (unchanged files are skipped)")
        else:
            report = ingest_paths(args.paths, args.index, rebuild=args.rebuild, remove=args.remove,
                                  progress=progress, log=log)
    except (IngestUsageError, EmbeddingMismatchError, SettingsError) as exc:
        return _fail(EXIT_USAGE, str(exc))
    except (IndexStoreError, ModelNotFoundError) as exc:
        return _fail(EXIT_ERROR, str(exc))
    except KeyboardInterrupt:
        return _fail(EXIT_INTERRUPTED, "interrupted; the previous index version is still live")
    except Exception as exc:
        if settings is not None and settings.debug:  # RAGQA_DEBUG
            raise
        return _fail(EXIT_ERROR, f"{type(exc).__name__}: {exc} (set RAGQA_DEBUG=1 for the traceback)")
    finally:
        progress.close()
    for failure in report.failed:
        print(f"failed: {one_line(failure['path'])}: {one_line(failure['error'])}", file=sys.stderr)
    skipped = report.skipped_line()
    if skipped is not None:
        print(one_line(skipped), file=sys.stderr)
    print(one_line(report.summary_line()), file=sys.stderr)
    if args.json:
        emit_json(report.to_dict())
    return report.exit_code


def main(argv: list[str] | None = None) -> int:
    set_offline_defaults()
    args = build_parser().parse_args(argv)
    if not args.paths and not args.remove:
        build_parser().error("give at least one PATH to ingest, or --remove PATH")
    return run(args)
