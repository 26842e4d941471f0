"""The training recipe of issue 13: distractor passages, grouped and cached features, the
shared-normalisation loss, a resume that replays the uninterrupted schedule, and the GPU script's
CPU dry run in a Python without LangChain, FAISS, Gradio, bm25s or matplotlib."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import rag_qa_in_process
from transformers import AutoTokenizer

from rag_qa.qa_data import QAExample, load_examples
from rag_qa.train.config import TrainConfig
from rag_qa.train.data import load_train_features
from rag_qa.train.distractors import add_distractors, holds_answer, load_distractors, save_distractors
from rag_qa.train.features import TrainFeatures, build_train_features, tokenizer_key
from rag_qa.train.loop import shared_norm_loss

REPO = Path(__file__).resolve().parents[1]
SQUAD = REPO / "tests" / "data" / "squad"
READER = REPO / "models" / "minilm-squad"


@pytest.fixture(scope="module")
def train_mini() -> list[QAExample]:
    return load_examples(SQUAD / "train-mini.json")[0]


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(READER)


# ------------------------------------------------------------------ distractors
def test_holds_answer_sees_the_answer_through_case_punctuation_and_articles() -> None:
    assert holds_answer("They beat the Denver Broncos, 24-10.", ["denver broncos"])
    assert holds_answer("It was won by Denver Broncos.", ["The Denver Broncos"])  # article dropped
    # erring on the safe side: a raw substring is enough to disqualify a paragraph
    assert holds_answer("The Broncoses were not there.", ["Broncos"])
    assert not holds_answer("Nothing about it here.", ["Denver"])


def test_a_distractor_is_another_paragraph_of_the_same_article_without_any_gold_answer(train_mini) -> None:
    pairs = add_distractors(train_mini, per_question=2, pool=3, seed=1)
    assert pairs, "the fixture's articles have several paragraphs"
    for qi, d in pairs:
        q = train_mini[qi]
        assert d.title == q.title and d.question == q.question and d.context != q.context
        assert d.answers == [] and d.id.startswith(q.id + "#d")
        assert not holds_answer(d.context, [a["text"] for a in q.answers])
        # it is a real paragraph of that article
        assert any(e.context == d.context for e in train_mini if e.title == q.title)
    per_question = {}
    for qi, _ in pairs:
        per_question[qi] = per_question.get(qi, 0) + 1
    assert max(per_question.values()) <= 2


def test_a_paragraph_that_holds_the_answer_is_never_picked(train_mini) -> None:
    # give one question an answer that occurs in *every* paragraph of its article: no distractor is left
    q = train_mini[0]
    same = [e for e in train_mini if e.title == q.title]
    common = next(w for w in q.context.split() if all(w in e.context for e in same))
    answer = [{"text": common, "answer_start": q.context.index(common)}]
    rigged = [QAExample(q.id, q.question, q.context, answer, q.title)] + [e for e in train_mini if e is not q]
    assert all(qi != 0 for qi, _ in add_distractors(rigged, per_question=3, pool=10, seed=0))


def test_distractor_windows_are_labelled_no_answer_and_grouped_with_their_question(train_mini, tokenizer) -> None:
    pairs = add_distractors(train_mini, per_question=1, pool=3, seed=0)
    feats = build_train_features(tokenizer, train_mini, pairs, max_length=192, doc_stride=64, progress=False)
    n = len(train_mini)
    assert len(feats) == n and feats.distractors == len(pairs)
    for g in range(len(feats)):
        members = feats.example[feats.group[g] : feats.group[g + 1]]
        owners = {int(i) if i < n else pairs[int(i) - n][0] for i in members}
        assert owners == {g}, "a group holds one question's windows and its distractors' only"
    distractor = feats.example >= n
    assert distractor.any()
    assert (feats.start[distractor] == feats.cls[distractor]).all()
    assert (feats.end[distractor] == feats.cls[distractor]).all()
    # every question still has a window labelled with its answer
    positive = (feats.start != feats.cls) & ~distractor
    assert len({int(feats.example[w]) for w in np.flatnonzero(positive)}) >= n - 1


def test_features_are_the_same_from_a_process_pool_and_negative_keep_drops_only_answerless_windows(
        train_mini, tokenizer) -> None:
    """A large training file is tokenised by forked workers (a lent GPU machine has 16 cores and 15 minutes):
    the features, their order and the seeded negative_keep draws must not depend on how many."""
    pairs = add_distractors(train_mini, per_question=1, pool=3, seed=0)
    kw = {"max_length": 96, "doc_stride": 32, "progress": False, "seed": 5}  # short windows: several a paragraph
    alone = build_train_features(tokenizer, train_mini, pairs, negative_keep=0.5, workers=1, **kw)
    pooled = build_train_features(tokenizer, train_mini, pairs, negative_keep=0.5, workers=2, **kw)
    for name in ("ids", "type_ids", "offsets", "win", "start", "end", "cls", "example", "group"):
        a, b = getattr(alone, name), getattr(pooled, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    every = build_train_features(tokenizer, train_mini, pairs, negative_keep=1.0, workers=1, **kw)
    n = len(train_mini)

    def answerless_own(f):
        return int(((f.start == f.cls) & (f.example < n)).sum())

    assert answerless_own(alone) < answerless_own(every)  # half of them dropped ...
    answered = (every.start != every.cls).sum()
    assert (alone.start != alone.cls).sum() == answered  # ... and no window that holds an answer
    assert (alone.example >= n).sum() == (every.example >= n).sum()  # nor a distractor's


def test_distractor_choices_round_trip_through_the_file_the_gpu_machine_reads(train_mini, tmp_path) -> None:
    pairs = add_distractors(train_mini, per_question=1, pool=3, seed=0)
    save_distractors(tmp_path / "d.json.gz", train_mini, pairs)
    again = load_distractors(tmp_path / "d.json.gz", train_mini)
    assert [(qi, d.context, d.id) for qi, d in again] == [(qi, d.context, d.id) for qi, d in pairs]
    # read back by a shuffled subset (as --max-train-examples makes): the same paragraphs, never its own
    subset = train_mini[::-2]
    chosen = {train_mini[qi].id: d.context for qi, d in pairs}
    read = load_distractors(tmp_path / "d.json.gz", subset)
    assert read and all(d.context == chosen[subset[qi].id] != subset[qi].context for qi, d in read)


# ------------------------------------------------------------------ feature cache
def test_features_are_cached_on_disk_and_rebuilt_when_a_setting_changes(train_mini, tokenizer, tmp_path) -> None:
    cfg = TrainConfig(train=str(SQUAD / "train-mini.json"), eval="-", output="-", max_length=192, doc_stride=64,
                      distractors=1, feature_cache=str(tmp_path))
    tokenizer = AutoTokenizer.from_pretrained(READER)  # fresh: its first use must not change the cache key
    first = load_train_features(cfg, tokenizer, train_mini, progress=False)
    files = list(tmp_path.glob("features-*.npz"))
    assert len(files) == 1
    cached = TrainFeatures.load(files[0])
    for name in ("ids", "win", "start", "end", "group", "offsets"):
        assert np.array_equal(getattr(cached, name), getattr(first, name))
    assert load_train_features(cfg, tokenizer, train_mini, progress=False).n_windows == first.n_windows
    assert len(list(tmp_path.glob("features-*.npz"))) == 1, "the second call used the cache"
    cfg.doc_stride = 32
    load_train_features(cfg, tokenizer, train_mini, progress=False)
    assert len(list(tmp_path.glob("features-*.npz"))) == 2, "a different stride is a different cache entry"


def test_tokenizer_key_sees_past_the_last_calls_truncation_and_padding() -> None:
    tokenizer = AutoTokenizer.from_pretrained(READER)
    windows = dict(max_length=192, stride=64, strategy="only_second", direction="right")
    fresh, fresh_off = tokenizer_key(tokenizer, windows), tokenizer_key(tokenizer)
    tokenizer(["a b c", "d"], truncation=True, max_length=2, padding="max_length")
    assert (tokenizer_key(tokenizer, windows), tokenizer_key(tokenizer)) == (fresh, fresh_off)
    assert fresh != fresh_off != tokenizer_key(tokenizer, windows | {"stride": 32})  # settings that matter do count


def test_the_no_answer_margin_is_that_of_the_chosen_spans_own_window(tokenizer) -> None:
    """SQuAD v2 scoring in training: the reader abstains by a span's margin over its own window's null score,
    so the threshold search must see that margin, not the lowest null of any window (another input's scale)."""
    from rag_qa.spans import encode_windows
    from rag_qa.train.loop import score_predictions

    answerable = QAExample("a", "Who invented it?", "Tesla invented the motor.", [{"text": "Tesla", "answer_start": 0}])
    unanswerable = QAExample("b", "Who won?", " ".join(f"Filler sentence {i} says nothing." for i in range(40)))
    wins = encode_windows(tokenizer, [answerable.question, unanswerable.question],
                          [answerable.context, unanswerable.context], max_length=64, doc_stride=16)
    assert [w.example for w in wins[:3]] == [0, 1, 1]

    def logits(win, null: float, span: float) -> tuple[np.ndarray, np.ndarray]:
        start, end = np.full(len(win.input_ids), -50.0), np.full(len(win.input_ids), -50.0)
        start[win.cls_index] = end[win.cls_index] = null / 2
        first = next(t for t, off in enumerate(win.offsets) if off is not None)  # "Tesla", or the first filler
        start[first] = end[first] = span / 2
        return start, end

    # a: right, margin 20.  b: its best span margin 10 (window 1: null 0, span 10); window 2's null is -20
    chosen = [logits(wins[0], 0, 20), logits(wins[1], 0, 10)] + [logits(w, -20, -15) for w in wins[2:]]
    metrics = score_predictions([answerable, unanswerable], wins, [c[0] for c in chosen], [c[1] for c in chosen])
    # abstaining below margin 15 answers a and abstains on b: all right (with -20 - 10 = -30 as b's margin, a
    # looked less sure than b and no threshold could separate them)
    assert metrics["best_f1"] == pytest.approx(100.0)


# ------------------------------------------------------------------ shared normalisation
def _logits(gold_margin: float, distractor_margin: float) -> tuple[torch.Tensor, ...]:
    """Two windows of one question: window 0 holds the answer at token 2, window 1 is a distractor."""
    start = torch.zeros(2, 5)
    start[0, 2], start[1, 3] = gold_margin, distractor_margin
    context = torch.tensor([[0, 0, 1, 1, 1], [0, 0, 1, 1, 1]], dtype=torch.bool)
    return start, start.clone(), torch.tensor([2, 0]), torch.tensor([2, 0]), context, torch.tensor([0, 0])


def test_shared_norm_loss_is_low_only_when_the_gold_span_beats_every_distractor_token() -> None:
    good = shared_norm_loss(*_logits(gold_margin=8.0, distractor_margin=-4.0))
    bad = shared_norm_loss(*_logits(gold_margin=-4.0, distractor_margin=8.0))
    assert 0 <= good < 0.01 < bad
    # a distractor span scoring high hurts even when the gold window alone would be right
    assert shared_norm_loss(*_logits(8.0, 8.0)) > good


def test_shared_norm_loss_targets_no_answer_when_no_window_holds_it() -> None:
    _, _, _, _, context, group = _logits(0.0, 0.0)
    cls = torch.tensor([0, 0])
    spans_above_null = torch.tensor([[0.0, 0, 5, 5, 5], [0.0, 0, 5, 5, 5]])  # CLS (token 0) below every span
    null_above_spans = torch.tensor([[0.0, 0, -5, -5, -5], [0.0, 0, -5, -5, -5]])
    high = shared_norm_loss(spans_above_null, spans_above_null, cls, cls, context, group)
    low = shared_norm_loss(null_above_spans, null_above_spans, cls, cls, context, group)
    assert low < 0.05 < high


# ------------------------------------------------------------------ resume
def _run(out: Path, *extra: str) -> dict:
    """``python -m rag_qa train ... --json`` in this process (three children would spend ~7 s each on imports);
    the seed, the data order and the RNG state a resume restores are the run's own, not the process's."""
    done = rag_qa_in_process(
        "train", "--train", str(SQUAD / "train-mini.json"), "--eval", str(SQUAD / "dev-mini.json"), "--output",
        str(out), "--max-length", "192", "--doc-stride", "64", "--batch-size", "4", "--max-eval-examples", "6",
        "--logging-steps", "1", "--max-steps", "4", "--eval-steps", "4", "--save-steps", "4", "--distractors", "1",
        "--shared-norm", "0.5", "--feature-cache", str(out.parent / "features"), "--json", *extra)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.mark.slow
def test_a_resumed_run_replays_the_uninterrupted_schedule_batch_for_batch(tmp_path) -> None:
    straight = _run(tmp_path / "straight")
    stopped = _run(tmp_path / "resumed", "--stop-after-steps", "2")
    assert stopped["stopped"] and stopped["global_steps"] == 2 and stopped["max_steps"] == 4
    assert list((tmp_path / "resumed" / "checkpoints").glob("checkpoint-2")), "the stop left a checkpoint"
    resumed = _run(tmp_path / "resumed", "--resume")
    assert straight["global_steps"] == resumed["global_steps"] == 4

    def steps(name):
        history = json.loads((tmp_path / name / "metrics.json").read_text())["log_history"]
        return [(h["step"], h["learning_rate"], h["loss"]) for h in history if "loss" in h]

    a, b = steps("straight"), steps("resumed")
    assert [s for s, _, _ in a] == [s for s, _, _ in b] == [1, 2, 3, 4]
    assert [lr for _, lr, _ in a] == [lr for _, lr, _ in b]
    assert a[-1][1] > 0 and a[1][1] > a[-1][1], "linear decay towards zero after warm-up"
    # same batches, same dropout masks: the losses after the resume are the uninterrupted ones
    assert [loss for _, _, loss in b] == pytest.approx([loss for _, _, loss in a], rel=1e-4)
    assert resumed["eval_f1"] == pytest.approx(straight["eval_f1"])
    card = (tmp_path / "resumed" / "README.md").read_text()
    assert "--distractors 1" in card and "--shared-norm 0.5" in card


# ------------------------------------------------------------------ the GPU script, dry run on CPU
HIDE = ("langchain", "langchain_core", "langchain_community", "langchain_text_splitters", "faiss", "gradio",
        "bm25s", "matplotlib", "sentence_transformers")

RUN_HIDDEN = textwrap.dedent(
    """
    import importlib.machinery, runpy, sys
    HIDE = set(sys.argv[1].split(","))

    class NotInstalled(importlib.machinery.PathFinder):
        @classmethod
        def find_spec(cls, name, path=None, target=None):
            return None if name.split(".")[0] in HIDE else super().find_spec(name, path, target)

    sys.meta_path = [NotInstalled if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
    sys.argv = ["rag_qa.train.gpu", *sys.argv[2:]]
    runpy.run_module("rag_qa.train.gpu", run_name="__main__")
    for name in HIDE:
        assert name not in sys.modules, name
    """
)


def gpu_script(*args: str) -> dict:
    """``python -m rag_qa.train.gpu ARGS`` in this process: its exit code and the JSON line it prints."""
    from rag_qa.train.gpu import main

    out = io.StringIO()
    with redirect_stdout(out):
        assert main(list(args)) == 0
    return json.loads(out.getvalue())


@pytest.mark.slow
def test_gpu_script_dry_run_without_the_app_stack_returns_loadable_sharded_weights(tmp_path) -> None:
    data, returned, model = tmp_path / "gpu_data", tmp_path / "OUT", tmp_path / "model"
    # pack and unpack run here, on this machine, through the script's own command line; only the run needs a
    # Python without the app stack
    # the second epoch's recipe travels too: table questions made here (by ingest, which the GPU machine lacks)
    from ingest import table_questions as tq

    tables = tmp_path / "tables.json"
    tables.write_text(json.dumps(tq.generate(tables=2, seed=3)))
    recipe = "tables=0.5,long=0.5,typed=0.5"
    packed = gpu_script("pack", str(data), "--train", str(SQUAD / "train-mini.json"), "--dev",
                        str(SQUAD / "dev-mini.json"), "--dev-questions", "6", "--augment", recipe,
                        "--augment-tables", str(tables))
    assert sorted(p.name for p in data.iterdir()) == ["dev.json", "distractors.json.gz", "pack.json",
                                                      "tables.json.gz", "train.json.gz"]
    # the augmented questions' distractors are chosen here, as a CPU run chooses them (the machine has no bm25s)
    from rag_qa.train.augment import arm_of
    from rag_qa.train.config import TrainConfig
    from rag_qa.train.data import distractor_pairs, load_data

    here = TrainConfig(train=str(data / "train.json.gz"), eval=str(data / "dev.json"), output="-", augment=recipe,
                       augment_tables=str(data / "tables.json.gz"), distractors=1)
    train_ex, _ = load_data(here)
    chosen = [(train_ex[q].id, d.context) for q, d in distractor_pairs(here, train_ex)]
    here.distractor_file = str(data / "distractors.json.gz")
    assert [(train_ex[q].id, d.context) for q, d in distractor_pairs(here, train_ex)] == chosen  # all of them
    assert {arm_of(train_ex[q]) for q, _ in distractor_pairs(here, train_ex)} >= {None, "tables", "typed"}
    assert packed["distractors"] == len(chosen)

    scratch = tmp_path / "tmp"  # the run's own working folder (checkpoints, ~0.5 GB) must not outlive it
    scratch.mkdir()

    def run_there(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", RUN_HIDDEN, ",".join(HIDE), "run", "--data", str(data),
                               "--out", str(returned), "--max-steps", "2", "--batch-size", "4", *args],
                              capture_output=True, text=True, cwd=REPO, timeout=600,
                              env=os.environ | {"TMPDIR": str(scratch)})

    refused = run_there("--augment", "tables=0.5")  # not what was packed: a one-line refusal before any loading
    assert refused.returncode != 0 and "was packed for --augment " + recipe in refused.stderr.strip().splitlines()[-1]
    (data / "tables.json.gz").rename(tmp_path / "aside.json.gz")
    refused = run_there("--augment", recipe)
    assert refused.returncode != 0 and "--augment-tables" in refused.stderr.strip().splitlines()[-1]
    assert not list(scratch.iterdir())
    (tmp_path / "aside.json.gz").rename(data / "tables.json.gz")
    done = run_there("--augment", recipe, "--warmup", "0.03")
    assert done.returncode == 0, done.stderr[-3000:]
    assert not list(scratch.iterdir()), "the working folder was left behind"
    files = sorted(returned.iterdir())
    assert len(files) <= 8 and all(p.stat().st_size <= 16 * 2**20 for p in files), [p.name for p in files]
    shards = [p for p in files if p.name.startswith("weights-") and p.suffix == ".safetensors"]
    # MiniLM's fp16 word embeddings (23 MB) are one tensor: they must travel cut into row blocks
    assert len(shards) >= 3, [p.name for p in files]
    metrics = json.loads((returned / "metrics.json").read_text())
    assert metrics["global_steps"] == 2 and metrics["train_distractors"] == len(chosen)
    assert metrics["config"]["distractors"] == 1  # the card says how they were chosen
    augmented = metrics["train_augmented"]
    assert set(augmented) == {"tables", "long", "typed"} and all(n > 0 for n in augmented.values()), augmented
    assert metrics["config"]["warmup_ratio"] == 0.03

    gpu_script("unpack", str(returned), "--into", str(model))
    assert (model / "README.md").is_file() and (model / "training_curve.png").read_bytes()[:4] == b"\x89PNG"
    # the reassembled weights are the trained ones, tensor for tensor
    from safetensors.torch import load_file

    from rag_qa.train.gpu import unpack_weights

    sent = unpack_weights(returned)
    saved = {}
    for shard in model.glob("model*.safetensors"):
        saved.update(load_file(shard))
    assert sent.keys() <= saved.keys() and len(sent) > 50
    assert all(torch.equal(sent[k], saved[k]) for k in sent)
    from rag_qa.readers.extractive import ExtractiveConfig, ExtractiveReader
    from rag_qa.types import Passage

    reader = ExtractiveReader(ExtractiveConfig(model=str(model), no_answer_threshold=0.0))
    text = "The Eiffel Tower is in Paris."
    answer = reader.read("Where is the Eiffel Tower?", [Passage(text, "t.txt", None, 0, len(text), 1.0)])
    assert answer.alternatives and answer.alternatives[0]["answer"] in text
    assert reader._model.dtype == torch.float32 and next(iter(reader._model.parameters())).dtype == torch.float32
