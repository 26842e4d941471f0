"""The order a training run reads its data in, shared by both trainers.

:class:`QuestionGroupSampler` gives a length-grouped order that a resumed run replays exactly;
:class:`GroupedTrainer` is a ``Trainer`` that trains in that order and evaluates in dataset order.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Sampler, SequentialSampler
from transformers import Trainer
from transformers.trainer_pt_utils import get_length_grouped_indices


class QuestionGroupSampler(Sampler):
    """Length-grouped order over question groups, the same for a given (seed, epoch) on any
    machine: a resumed run walks the very batches the uninterrupted one would have (Trainer skips
    the ones already done), whatever happened to the global RNG in between."""

    def __init__(self, lengths: list[int], batch_size: int, seed: int) -> None:
        self.lengths, self.batch_size, self.seed, self.epoch = lengths, batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:  # called by Trainer/accelerate at every epoch
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(get_length_grouped_indices(self.lengths, self.batch_size, generator=generator))


class GroupedTrainer(Trainer):
    """``Trainer`` that trains in :class:`QuestionGroupSampler` order when given ``group_lengths``
    (one length per training item) and evaluates in dataset order."""

    # Both readers' compute_loss return a mean over their own batch, so Trainer must divide by the gradient
    # accumulation steps.  Left to decide (None), it does not when a batch has ``labels`` and the model takes
    # **kwargs, as the generative reader's does: its gradients came out grad_accum times too large.
    loss_is_scaled_for_ga = False

    def __init__(self, *args: Any, group_lengths: list[int] | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.group_lengths = group_lengths

    def _get_train_sampler(self, train_dataset=None):
        if self.group_lengths is None:
            return super()._get_train_sampler(train_dataset)
        batch = self.args.train_batch_size * self.args.gradient_accumulation_steps
        return QuestionGroupSampler(self.group_lengths, batch, self.args.seed)

    def _get_eval_sampler(self, eval_dataset):
        # Evaluation keeps dataset order: predictions are matched back to their items by index
        # (with group_by_length, Trainer would otherwise sort the eval set by length too).
        return SequentialSampler(eval_dataset)
