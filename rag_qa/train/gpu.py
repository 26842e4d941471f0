"""Train the shipped reader on a lent GPU machine that has no network and little room.

The machine's own Python has torch, transformers, peft, accelerate and safetensors, and nothing
else of ours (no LangChain, FAISS, Gradio, bm25s, matplotlib): this module and what it imports
need none of those.  At most 64 MiB of working tree travels there and at most 8 files of
16 MiB come back, so the run is three steps:

    # here: the training data and the BM25 distractor choices, into an ignored folder (12 MB)
    python -m rag_qa.train.gpu pack gpu_data
    # there (device tool, carry gpu_data): continue from models/minilm-squad, 8 files into $OUT
    python -m rag_qa.train.gpu run --data gpu_data --out "$OUT" --minutes 9
    # here: the returned files become models/minilm-squad (card and curve written here)
    python -m rag_qa.train.gpu unpack RETURNED_DIR --into models/minilm-squad

The second epoch's recipe (issue 24: data augmentation, shared normalisation, a lower rate) travels
the same way: ``pack --augment SPEC --augment-tables FILE`` adds the table questions (2 MB) and the
augmented questions' own distractors (chosen here, as a CPU run chooses them: the machine has no
bm25s), and ``run --augment SPEC`` must name the same arms (README, "On a lent GPU machine").

``run --max-steps 2`` is the CPU dry run the test suite does.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import random
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SQUAD = REPO.parent / "shared" / "data" / "squad"
#: what comes back besides the weights (the device returns 8 files of 16 MiB at most)
RETURNED = ("config.json", "tokenizer.json", "tokenizer_config.json", "metrics.json")
MAX_FILES, MAX_FILE_BYTES = 8, 16 * 2**20
#: the shard size of the shipped model's weight files (models/minilm-squad): `unpack` rewrites the same files
MAX_SHARD = "15MB"
#: the table questions for the ``tables`` augmentation arm, under this name in the packed folder
TABLES = "tables.json.gz"
PACKED = "pack.json"  # what pack chose: the run must match it
#: weight files that travel back: MiniLM's fp16 word embeddings alone are 23 MB, one tensor that
#: Hugging Face sharding cannot split, so tensors are cut into row blocks and packed by size
PART_BYTES = 12 * 10**6


def pack(out: Path, train: Path, dev: Path, dev_questions: int, distractors: int, pool: int, seed: int,
         augment_tables: Path | None = None, augment: str | None = None) -> dict:
    """Copy the training file, a dev slice, the table questions of the ``tables`` augmentation arm (if
    given) and the distractor choices into ``out``: those of every training question, the augmented ones
    included, chosen by :func:`~rag_qa.train.data.distractor_pairs` as a CPU run with ``--distractors``
    chooses them."""
    from rag_qa.train.data import augment_arms, distractor_pairs, load_data
    from rag_qa.train.distractors import save_distractors

    out.mkdir(parents=True, exist_ok=True)
    _copy_gzipped(train, out / "train.json.gz")
    if augment_tables is not None:
        _copy_gzipped(augment_tables, out / TABLES)
    data = json.loads(dev.read_text(encoding="utf-8"))
    # a seeded slice of whole dev questions, kept in SQuAD form (the full dev file is scored back here)
    keep = {q["id"] for a in data["data"] for p in a["paragraphs"] for q in p["qas"]}
    keep = set(random.Random(seed).sample(sorted(keep), min(dev_questions, len(keep))))
    for article in data["data"]:
        for para in article["paragraphs"]:
            para["qas"] = [q for q in para["qas"] if q["id"] in keep]
        article["paragraphs"] = [p for p in article["paragraphs"] if p["qas"]]
    data["data"] = [a for a in data["data"] if a["paragraphs"]]
    (out / "dev.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    cfg = _config(out, out / "-", augment, distractors=distractors, distractor_pool=pool, seed=seed)
    if "tables" in augment_arms(cfg) and augment_tables is None:
        raise SystemExit("--augment tables=... needs --augment-tables FILE (python -m ingest.table_questions)")
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries the one JSON line
        train_ex, _ = load_data(cfg)  # the augmented examples the run will make from the same files and seed
    pairs = distractor_pairs(cfg, train_ex)
    save_distractors(out / "distractors.json.gz", train_ex, pairs)
    (out / PACKED).write_text(json.dumps({"augment": augment, "distractors": distractors, "distractor_pool": pool,
                                          "seed": seed}))
    sizes = {p.name: p.stat().st_size for p in out.iterdir()}
    return {"folder": str(out), "bytes": sum(sizes.values()), "files": sizes, "distractors": len(pairs)}


def _config(data: Path, model: Path, augment: str | None, **settings):
    """The training config of a packed folder (pack chooses the distractors with it, run trains with it)."""
    from rag_qa.train.config import TrainConfig

    tables = data / TABLES
    return TrainConfig(train=str(data / "train.json.gz"), eval=str(data / "dev.json"), output=str(model),
                       augment=augment, augment_tables=str(tables) if tables.is_file() else None, **settings)


def _copy_gzipped(src: Path, dst: Path) -> None:
    if src.name.endswith(".gz"):
        shutil.copyfile(src, dst)
    else:
        with open(src, "rb") as fin, gzip.open(dst, "wb") as fout:
            shutil.copyfileobj(fin, fout)


def run(data: Path, out: Path, base: Path, max_steps: int, epochs: float, batch_size: int, lr: float,
        minutes: float | None, shared_norm: float, work: Path | None = None, augment: str | None = None,
        warmup: float = 0.05) -> dict:
    """Continue training ``base`` on ``data`` (from :func:`pack`); only the returnable files go to ``out``
    (checkpoints and features stay in ``work``, a temporary folder removed afterwards unless given)."""
    from rag_qa.train.data import augment_arms
    from rag_qa.train.outputs import export
    from rag_qa.train.trainer import train

    with contextlib.ExitStack() as stack:  # a working folder of our own goes when done (or refused)
        packed = json.loads((data / PACKED).read_text()) if (data / PACKED).is_file() else {}
        if packed.get("augment") != augment:  # before the model and data load, in one line
            raise SystemExit(f"{data} was packed for --augment {packed.get('augment')}, not {augment}: run with "
                             f"the same arms, or pack again with --augment {augment}")
        if work is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rag-qa-gpu-")))
        cfg = _config(
            data, work / "model", augment, base=str(base), learning_rate=lr, epochs=epochs, max_steps=max_steps,
            batch_size=batch_size, eval_batch_size=256, warmup_ratio=warmup,
            eval_steps=max(1, max_steps // 2) if max_steps > 0 else 1000,
            save_steps=max(1, max_steps // 2) if max_steps > 0 else 1000, logging_steps=max(1, min(50, max_steps)),
            distractor_file=str(data / "distractors.json.gz"), shared_norm=shared_norm,
            feature_cache=str(work / "features"), stop_after_minutes=minutes, save_dtype="float16",
            # as packed: the card says how the distractors were chosen, the augmentation draws the same examples
            **{k: packed[k] for k in ("distractors", "distractor_pool", "seed") if k in packed},
        )
        if "tables" in augment_arms(cfg) and not (data / TABLES).is_file():
            raise SystemExit(f"{data}: no {TABLES} for the tables arm (pack it with --augment-tables FILE)")
        summary = train(cfg, progress=True)
        model_dir = Path(cfg.output)
        if summary.get("stopped"):  # out of time: the last checkpoint is the result (decay not finished)
            export(model_dir / "checkpoints", model_dir, summary)
        out.mkdir(parents=True, exist_ok=True)
        for name in RETURNED:
            shutil.copyfile(model_dir / name, out / name)
        pack_weights(model_dir, out)
        return _check_returned(out)


def pack_weights(model_dir: Path, out: Path, part_bytes: int = PART_BYTES) -> list[Path]:
    """The model's safetensors as ``weights-NN.safetensors`` files of at most ~``part_bytes``: a
    tensor bigger than that is cut into row blocks named ``<name>@<i>of<n>`` (joined by unpack)."""
    from safetensors.torch import load_file, save_file

    tensors: dict = {}
    for shard in sorted(model_dir.glob("model*.safetensors")):
        tensors.update(load_file(shard))
    pieces: list[tuple[str, object]] = []
    for name, t in tensors.items():
        size = t.numel() * t.element_size()
        n = -(-size // part_bytes) if t.dim() and size > part_bytes else 1
        if n == 1:
            pieces.append((name, t))
        else:
            pieces.extend((f"{name}@{i}of{n}", block.contiguous()) for i, block in enumerate(t.chunk(n, dim=0)))
    # first fit, largest first: as few files as the sizes allow, however the weights were sharded
    files: list[dict] = []
    used: list[int] = []
    for name, t in sorted(pieces, key=lambda p: p[1].numel() * p[1].element_size(), reverse=True):
        size = t.numel() * t.element_size()
        i = next((i for i, u in enumerate(used) if u + size <= part_bytes), len(files))
        if i == len(files):
            files.append({})
            used.append(0)
        files[i][name] = t
        used[i] += size
    paths = []
    for i, group in enumerate(files, 1):
        path = out / f"weights-{i:02d}.safetensors"
        save_file(group, str(path), metadata={"format": "pt"})
        paths.append(path)
    return paths


def unpack_weights(returned: Path) -> dict:
    """The state dict :func:`pack_weights` cut up, whole again."""
    import torch
    from safetensors.torch import load_file

    pieces: dict = {}
    for path in sorted(returned.glob("weights-*.safetensors")):
        pieces.update(load_file(path))
    state, blocks = {}, {}
    for name, t in pieces.items():
        if "@" in name:
            base, _, part = name.rpartition("@")
            i, n = (int(x) for x in part.split("of"))
            blocks.setdefault(base, [None] * n)[i] = t
        else:
            state[name] = t
    for name, parts in blocks.items():
        state[name] = torch.cat(parts, dim=0)
    return state


def _check_returned(out: Path) -> dict:
    files = sorted(p for p in out.iterdir() if p.is_file())
    if len(files) > MAX_FILES or any(p.stat().st_size > MAX_FILE_BYTES for p in files):
        raise SystemExit(f"{out}: {len(files)} files, largest {max(p.stat().st_size for p in files):,} bytes: "
                         f"the device returns at most {MAX_FILES} files of {MAX_FILE_BYTES:,} bytes")
    return {"files": [p.name for p in files], "bytes": sum(p.stat().st_size for p in files)}


def unpack(returned: Path, into: Path) -> dict:
    """The files a GPU run returned -> a complete model directory (card and curve written here)."""
    from transformers import AutoConfig, AutoModelForQuestionAnswering, AutoTokenizer

    from rag_qa.train.card import write_card
    from rag_qa.train.config import config_defaults
    from rag_qa.train.outputs import plot_curve, save_model

    summary = json.loads((returned / "metrics.json").read_text())
    into.mkdir(parents=True, exist_ok=True)
    config = AutoConfig.from_pretrained(returned)
    model = AutoModelForQuestionAnswering.from_config(config)
    missing, unexpected = model.load_state_dict(unpack_weights(returned), strict=False)
    # tied weights (the MLM head's decoder) may be absent; anything else missing is a broken transfer
    if unexpected or [m for m in missing if not m.endswith("decoder.weight")]:
        raise SystemExit(f"{returned}: weights do not fit the config (missing {missing}, unexpected {unexpected})")
    save_model(model, AutoTokenizer.from_pretrained(returned), into, "float16", max_shard_size=MAX_SHARD)
    summary["config"]["output"] = str(into)
    (into / "metrics.json").write_text(json.dumps(summary, indent=2))
    plot_curve(summary["log_history"], into / "training_curve.png")
    write_card(into, summary, config_defaults())
    return {"model": str(into), "eval_f1": summary.get("eval_f1"), "eval_exact_match": summary.get("eval_exact_match")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rag_qa.train.gpu", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="training data + distractor choices into a folder that can travel")
    p.add_argument("out", type=Path)
    p.add_argument("--train", type=Path, default=SQUAD / "train-v1.1.json.gz")
    p.add_argument("--dev", type=Path, default=SQUAD / "dev-v1.1-public.json")
    p.add_argument("--dev-questions", type=int, default=2000)
    p.add_argument("--distractors", type=int, default=1)
    p.add_argument("--distractor-pool", type=int, default=3)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--augment", default=None,
                   help="the augmentation arms `run --augment` will use, e.g. tables=0.3,long=0.3,typed=0.2 "
                        "(their distractors are chosen here)")
    p.add_argument("--augment-tables", type=Path, default=None,
                   help="table questions for `run --augment tables=...` (python -m ingest.table_questions)")
    r = sub.add_parser("run", help="train on the GPU machine (works on CPU too: the dry run)")
    r.add_argument("--data", type=Path, required=True, help="a folder made by `pack`")
    r.add_argument("--out", type=Path, required=True, help="where the returnable files go ($OUT)")
    r.add_argument("--base", type=Path, default=REPO / "models" / "minilm-squad")
    r.add_argument("--max-steps", type=int, default=-1)
    r.add_argument("--epochs", type=float, default=2.0)
    r.add_argument("--batch-size", type=int, default=64)
    r.add_argument("--lr", type=float, default=5e-5)
    r.add_argument("--shared-norm", type=float, default=0.0)
    r.add_argument("--warmup", type=float, default=0.05, help="warm-up as a share of steps")
    r.add_argument("--augment", default=None, help="augmentation arms, e.g. tables=0.3,long=0.3,typed=0.2")
    r.add_argument("--minutes", type=float, default=None, help="stop (and return the last checkpoint) after this")
    u = sub.add_parser("unpack", help="returned files -> a model directory with card and curve")
    u.add_argument("returned", type=Path)
    u.add_argument("--into", type=Path, default=REPO / "models" / "minilm-squad")
    args = ap.parse_args(argv)
    if args.command == "pack":
        result = pack(args.out, args.train, args.dev, args.dev_questions, args.distractors, args.distractor_pool,
                      args.seed, args.augment_tables, args.augment)
    elif args.command == "run":
        result = run(args.data, args.out, args.base, args.max_steps, args.epochs, args.batch_size, args.lr,
                     args.minutes, args.shared_norm, augment=args.augment, warmup=args.warmup)
    else:
        result = unpack(args.returned, args.into)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
