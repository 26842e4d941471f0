"""Tiny real CPU training runs: weights, card, curve and metrics are written, the output is a
working reader, training resumes from a checkpoint, LoRA merges back into a plain model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import rag_qa_in_process

from rag_qa.qa_data import load_examples

REPO = Path(__file__).resolve().parents[1]
SQUAD = REPO / "tests" / "data" / "squad"
pytestmark = pytest.mark.slow


def train(out: Path, *extra: str) -> dict:
    """``python -m rag_qa train ... --json`` in this process (a child would spend ~7 s importing torch and
    transformers first); its stdout is the JSON summary."""
    done = rag_qa_in_process("train", "--train", str(SQUAD / "train-mini.json"), "--eval", str(SQUAD / "dev-mini.json"),
                             "--output", str(out), "--max-length", "192", "--doc-stride", "64", "--batch-size", "4",
                             "--eval-batch-size", "16", "--max-eval-examples", "12", "--logging-steps", "1", "--json",
                             *extra)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory) -> tuple[Path, dict, dict]:
    out = tmp_path_factory.mktemp("train") / "reader"
    first = train(out, "--max-steps", "4", "--eval-steps", "2", "--save-steps", "2")
    second = train(out, "--max-steps", "6", "--eval-steps", "3", "--save-steps", "3", "--resume")
    return out, first, second


def test_run_writes_weights_card_curve_and_metrics(resumed_run):
    out, first, _ = resumed_run
    assert first["global_steps"] == 4
    assert 0.0 <= first["eval_f1"] <= 100.0
    assert list(out.glob("*.safetensors")), "weights are saved as safetensors"
    assert not list(out.glob("*.bin")) and not list(out.rglob("*.pkl"))
    card = (out / "README.md").read_text()
    assert "dev F1" in card and "python -m rag_qa train" in card and "training_curve.png" in card
    assert (out / "training_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["max_length"] == 192 and metrics["train_examples"] == 24


def test_resume_continues_from_the_last_checkpoint(resumed_run):
    out, _, second = resumed_run
    assert second["global_steps"] == 6
    history = json.loads((out / "metrics.json").read_text())["log_history"]
    loss_steps = [h["step"] for h in history if "loss" in h]
    # the resumed run carries the first run's log (steps 1-4) and adds only steps 5-6
    assert loss_steps == [1, 2, 3, 4, 5, 6]


def test_trained_directory_works_as_reader(resumed_run, rag_qa_here):
    out, _, _ = resumed_run
    done = rag_qa_here("eval", "reader", "--data", str(SQUAD / "dev-mini.json"), "--reader", str(out), "--limit", "5",
                       "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["n"] == 5 and result["reader"] == f"extractive:{out}"


def test_lora_merges_into_a_plain_model(tmp_path):
    out = tmp_path / "lora"
    result = train(out, "--max-steps", "2", "--eval-steps", "2", "--save-steps", "2", "--lora")
    assert result["global_steps"] == 2
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["BertForQuestionAnswering"]
    assert not (out / "adapter_config.json").exists()  # merged: loads without peft
    from transformers import AutoModelForQuestionAnswering

    model = AutoModelForQuestionAnswering.from_pretrained(out)
    assert not any("lora" in name for name, _ in model.named_parameters())


def test_distillation_from_a_teacher_changes_the_loss_and_is_recorded(resumed_run, tmp_path):
    out = tmp_path / "student"
    result = train(out, "--max-steps", "2", "--eval-steps", "2", "--save-steps", "2", "--teacher", "reader",
                   "--distill-alpha", "0.9")
    assert result["global_steps"] == 2
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["teacher"] == "reader"
    assert "--teacher reader" in (out / "README.md").read_text()
    plain = [h["loss"] for h in json.loads((resumed_run[0] / "metrics.json").read_text())["log_history"] if "loss" in h]
    distilled = [h["loss"] for h in metrics["log_history"] if "loss" in h]
    # same data, seed and first batch: only the teacher's soft term can make step 1's loss differ
    assert all(math.isfinite(x) for x in distilled) and distilled[0] != pytest.approx(plain[0], rel=1e-3)


def test_custom_rows_with_answers_missing_from_the_context_are_skipped(tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        json.dumps({"question": "Who?", "context": "Ada Lovelace wrote the first program.", "answer": "Ada Lovelace"})
        + "\n"
        + json.dumps({"question": "Where?", "context": "In London.", "answer": "Paris"})
        + "\n"
    )
    examples, skipped = load_examples(rows)
    assert len(examples) == 1 and examples[0].answers == [{"text": "Ada Lovelace", "answer_start": 0}]
    assert len(skipped) == 1 and "not found" in skipped[0].reason and skipped[0].where.endswith(":2")
