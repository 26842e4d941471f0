"""Teacher soft targets for distillation, aligned to the student's tokens through character offsets.

The teacher (e.g. MPNet, its own BPE vocabulary) and the student (MiniLM, BERT WordPiece) split
text differently, so their start/end logits cannot be compared token by token.  Both know
where each token sits in the context, though: the teacher reads the same question and the same
context slice as each student window, and every student context token takes the teacher's
start logit of the teacher token holding its first character and the end logit of the one
holding its last.  CLS takes the teacher's CLS ("no answer here"); question, separator and
padding tokens get :data:`MASKED` and carry no probability mass.  The targets are computed once,
before training, and travel with the features (``teacher_start`` / ``teacher_end``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from rag_qa.spans import Window

#: logit for tokens outside the distillation support (question, separators, padding)
MASKED = -1e4


def window_slice(window: Window) -> tuple[int, int]:
    """The context characters a window covers: (first token's start, last token's end)."""
    spans = [o for o in window.offsets if o is not None]
    return (spans[0][0], spans[-1][1]) if spans else (0, 0)


def align_logits(
    student_offsets: Sequence[tuple[int, int] | None],
    student_cls: int,
    teacher_offsets: Sequence[tuple[int, int] | None],
    teacher_start: np.ndarray,
    teacher_end: np.ndarray,
    teacher_cls: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Teacher start/end logits (teacher tokens) -> one logit per student token.

    ``*_offsets`` are context character spans (None for non-context tokens), in the same
    coordinates for both.  Returns two float32 arrays of ``len(student_offsets)``.
    """
    n = len(student_offsets)
    start, end = np.full(n, MASKED, np.float32), np.full(n, MASKED, np.float32)
    start[student_cls], end[student_cls] = teacher_start[teacher_cls], teacher_end[teacher_cls]
    spans = [(i, o) for i, o in enumerate(teacher_offsets) if o is not None and o[1] > o[0]]
    if not spans:
        return start, end
    bounds = np.array([o for _, o in spans])  # (k, 2) teacher token [start, end) in characters
    index = np.array([i for i, _ in spans])
    tokens = np.array([t for t, o in enumerate(student_offsets) if o is not None and o[1] > o[0]], dtype=int)
    if not len(tokens):
        return start, end
    first = np.array([student_offsets[t][0] for t in tokens])  # (m,) first character of each student token
    last = np.array([student_offsets[t][1] - 1 for t in tokens])  # (m,) its last character
    # (m, k): does teacher token k hold that character?  One comparison per pair, no Python loop
    # (this runs for every training window: ~90k of them for SQuAD)
    hold_first = (bounds[None, :, 0] <= first[:, None]) & (first[:, None] < bounds[None, :, 1])
    hold_last = (bounds[None, :, 0] <= last[:, None]) & (last[:, None] < bounds[None, :, 1])
    k = len(bounds)
    # the first teacher token holding the first character, else the nearest one starting after it;
    # the last one holding the last character, else the first one ending after it
    i = np.where(hold_first.any(1), hold_first.argmax(1), np.searchsorted(bounds[:, 0], first).clip(0, k - 1))
    j = np.where(hold_last.any(1), k - 1 - hold_last[:, ::-1].argmax(1),
                 np.searchsorted(bounds[:, 1], last + 1).clip(0, k - 1))
    start[tokens], end[tokens] = teacher_start[index[i]], teacher_end[index[j]]
    return start, end


@torch.no_grad()
def teacher_targets(
    teacher: torch.nn.Module,
    teacher_tokenizer,
    questions: Sequence[str],
    contexts: Sequence[str],
    windows: Sequence[Window],
    batch_size: int = 64,
    max_length: int = 512,
    progress: bool = True,
    bf16: bool = False,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(start, end) teacher logits aligned to each student window (``windows[i].example`` indexes
    ``questions``/``contexts``).  The teacher reads the question and exactly the window's slice."""
    device = next(teacher.parameters()).device
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for i in tqdm(range(0, len(windows), batch_size), desc="teacher targets", unit="batch", disable=not progress):
        batch = windows[i : i + batch_size]
        slices = [window_slice(w) for w in batch]
        encoded = teacher_tokenizer(
            [questions[w.example].lstrip() for w in batch],
            [contexts[w.example][a:b] for w, (a, b) in zip(batch, slices, strict=True)],
            truncation="only_second", max_length=max_length, padding=True,
            return_offsets_mapping=True, return_tensors="pt",
        )
        offsets = encoded["offset_mapping"].tolist()
        enc = {k: v.to(device) for k, v in encoded.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = teacher(**enc)
        starts, ends = logits.start_logits.float().cpu().numpy(), logits.end_logits.float().cpu().numpy()
        for row, (w, (a, _)) in enumerate(zip(batch, slices, strict=True)):
            seq_ids = encoded.sequence_ids(row)  # 0 question, 1 context, None special/padding
            t_offsets = [(s + a, e + a) if seq_ids[t] == 1 else None for t, (s, e) in enumerate(offsets[row])]
            cls = _cls_index(teacher_tokenizer, encoded["input_ids"][row])
            out.append(align_logits(w.offsets, w.cls_index, t_offsets, starts[row], ends[row], cls))
    return out


def _cls_index(tokenizer, input_ids: torch.Tensor) -> int:
    hits = (input_ids == tokenizer.cls_token_id).nonzero() if tokenizer.cls_token_id is not None else []
    return int(hits[0]) if len(hits) else 0
