"""Training callbacks both trainers share: a time/step budget that ends a run with a checkpoint, the
wall clock summed over resumed runs (for the model card), and a thread count that yields to other
work on a shared machine."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch
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


def fair_threads(cores: int, mine: int | None = None) -> int:
    """``cores`` when nothing else loads the machine, else 1 (``mine``: threads this process runs now)."""
    others = os.getloadavg()[0] - (torch.get_num_threads() if mine is None else mine)
    return cores if others < 0.5 else 1


class ShareCores(TrainerCallback):
    """Trains on every core while the machine is otherwise idle, on one while other work runs.

    With other processes on the cores, torch's parallel regions wait at every barrier for a thread
    the scheduler has put aside: on 2 shared cores one fwd+bwd of SmolLM2 took 6 s with one thread and
    14-41 s with two.  So before each step the thread count follows the load the other processes put
    on the machine (the 1-minute load average less this run's own threads).
    """

    def __init__(self, cores: int, every: int = 10) -> None:
        self.cores, self.every = cores, every
        self.threads = torch.get_num_threads()

    def on_step_begin(self, args, state, control, **kw):
        if self.cores > 1 and state.global_step % self.every == 0:
            wanted = fair_threads(self.cores, self.threads)
            if wanted != self.threads:
                torch.set_num_threads(wanted)
                self.threads = wanted
        return control
