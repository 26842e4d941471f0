"""Training callbacks both trainers share: a time/step budget that ends a run with a checkpoint, and
the wall clock summed over resumed runs (for the model card)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from transformers import TrainerCallback


class Budget(TrainerCallback):
    """Ends this run early -- checkpoint saved -- after ``steps`` steps or ``minutes`` of training,
    so a long CPU job fits the time a machine is lent and the next run resumes where it stopped."""

    def __init__(self, steps: int | None, minutes: float | None) -> None:
        self.steps, self.minutes = steps, minutes
        self.first: int | None = None
        self.t0 = time.time()
        self.stopped = False

    def on_step_end(self, args, state, control, **kw):
        self.first = state.global_step - 1 if self.first is None else self.first
        done = state.global_step - self.first
        spent = (self.steps and done >= self.steps) or (self.minutes and time.time() - self.t0 >= 60 * self.minutes)
        if spent and state.global_step < state.max_steps:
            control.should_save = control.should_training_stop = True
            self.stopped = True
        return control


class WallClock(TrainerCallback):
    """Wall time summed over every run that trained this output (resumes included): each
    checkpoint stores the total so far, and a resumed run starts from its checkpoint's total."""

    def __init__(self, before: float = 0.0) -> None:
        self.before, self.t0 = before, time.time()

    def total(self) -> float:
        return self.before + time.time() - self.t0

    def on_save(self, args, state, control, **kw):
        ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if ckpt.is_dir():
            (ckpt / "wallclock.json").write_text(json.dumps({"seconds": round(self.total(), 1),
                                                             "step": state.global_step}))

    @staticmethod
    def resumed(checkpoints: Path) -> float:
        last = max(checkpoints.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]), default=None)
        try:
            return float(json.loads((last / "wallclock.json").read_text())["seconds"]) if last else 0.0
        except (OSError, ValueError, KeyError):
            return 0.0
