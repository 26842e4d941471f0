"""Distillation targets: a teacher's start/end logits carried onto the student's tokens by characters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import AutoModelForQuestionAnswering, AutoTokenizer, PreTrainedTokenizerFast

from rag_qa.models import resolve_model
from rag_qa.spans import encode_windows, model_inputs
from rag_qa.train.distill import MASKED, align_logits, teacher_targets

CONTEXT = ("The Eiffel Tower was completed in 1889 by Gustave Eiffel's company. It is 330 metres tall "
           "and stands on the Champ de Mars in Paris, France.")
QUESTION = "When was the Eiffel Tower completed?"


@pytest.fixture(scope="module")
def student_tok():
    return AutoTokenizer.from_pretrained(resolve_model("reader", kind="reader").path)


@pytest.fixture(scope="module")
def bpe_tok() -> PreTrainedTokenizerFast:
    """A different vocabulary: a small byte-level BPE trained here (splits words unlike WordPiece)."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "</s>", "<unk>", "<pad>"])
    tok.train_from_iterator([CONTEXT, QUESTION] * 5, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, cls_token="<s>", sep_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>")


def test_alignment_by_hand() -> None:
    # student: [CLS] q q [SEP] "Eif" "fel" "Tower" ; teacher: <s> q </s> "Eiffel" " Tower"
    student = [None, None, None, None, (0, 3), (3, 6), (7, 12)]
    teacher = [None, None, None, (0, 6), (6, 12)]
    t_start = np.array([5.0, 0, 0, 2.0, 3.0])
    t_end = np.array([-5.0, 0, 0, 4.0, 1.0])
    start, end = align_logits(student, 0, teacher, t_start, t_end, teacher_cls=0)
    assert start.tolist() == [5.0, MASKED, MASKED, MASKED, 2.0, 2.0, 3.0]  # "fel" starts inside "Eiffel"
    assert end.tolist() == [-5.0, MASKED, MASKED, MASKED, 4.0, 4.0, 1.0]


def test_an_answer_peak_lands_on_the_same_characters_across_vocabularies(student_tok, bpe_tok) -> None:
    window = encode_windows(student_tok, [QUESTION], [CONTEXT], 128, 32)[0]
    enc = bpe_tok(QUESTION, CONTEXT, return_offsets_mapping=True)
    seq = enc.sequence_ids()
    t_offsets = [tuple(o) if seq[i] == 1 else None for i, o in enumerate(enc["offset_mapping"])]
    answer_start = CONTEXT.index("1889")
    answer_end = answer_start + 4
    # a teacher sure of "1889": its start peak on the token holding '1', end peak on the one holding '9'
    t_start = np.array([10.0 if o and o[0] <= answer_start < o[1] else 0.0 for o in t_offsets])
    t_end = np.array([10.0 if o and o[0] < answer_end <= o[1] else 0.0 for o in t_offsets])
    assert t_start.max() == t_end.max() == 10.0
    start, end = align_logits(window.offsets, window.cls_index, t_offsets, t_start, t_end, 0)
    s, e = int(start.argmax()), int(end.argmax())
    assert CONTEXT[window.offsets[s][0]: window.offsets[e][1]] == "1889"
    # question and separator tokens carry no mass
    masked = [i for i, o in enumerate(window.offsets) if o is None and i != window.cls_index]
    assert masked and all(start[i] == MASKED and end[i] == MASKED for i in masked)


@pytest.mark.slow
def test_a_teacher_sharing_the_vocabulary_reproduces_its_own_logits(student_tok) -> None:
    """Aligned targets from the shipped reader as teacher equal that reader's logits on the window."""
    path = Path(resolve_model("reader", kind="reader").path)
    model = AutoModelForQuestionAnswering.from_pretrained(path, dtype=torch.float32, use_safetensors=True).eval()
    long_context = " ".join([CONTEXT] * 12)  # several windows, some starting mid-sentence
    windows = encode_windows(student_tok, [QUESTION], [long_context], 128, 48)
    assert len(windows) > 2
    targets = teacher_targets(model, student_tok, [QUESTION], [long_context], windows, batch_size=8, progress=False)
    for window, (start, _) in zip(windows, targets, strict=True):
        with torch.no_grad():
            inputs = {k: torch.tensor([v]) for k, v in model_inputs(window).items()}
            own = model(**inputs).start_logits[0].numpy()
        context = [i for i, o in enumerate(window.offsets) if o is not None]
        assert int(np.argmax(start[context])) == int(np.argmax(own[context]))
        assert np.corrcoef(start[context], own[context])[0, 1] > 0.95
