"""Feature building and span decoding shared by training and the extractive reader."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer

from rag_qa.models import resolve_model
from rag_qa.spans import decode_example, decode_window, encode_windows, fit_questions, label_window


@pytest.fixture(scope="module")
def tok():
    return AutoTokenizer.from_pretrained(resolve_model("minilm").path)


CONTEXT = (
    "Nikola Tesla was a Serbian-American inventor. He was born on 10 July 1856 in Smiljan, "
    "in the Austrian Empire. In 1884 he emigrated to the United States."
)


def _logits_for(window, tok_start, tok_end, size=None):
    n = size or len(window.input_ids)
    s, e = np.full(n, -5.0), np.full(n, -5.0)
    s[tok_start], e[tok_end] = 8.0, 8.0
    return s, e


def test_label_maps_answer_to_tokens_and_back(tok):
    answer = "10 July 1856"
    start = CONTEXT.index(answer)
    (w,) = encode_windows(tok, ["When was Tesla born?"], [CONTEXT])
    ts, te = label_window(w, start, answer)
    assert ts != w.cls_index
    assert CONTEXT[w.offsets[ts][0] : w.offsets[te][1]] == answer
    s, e = _logits_for(w, ts, te)
    spans = decode_window(s, e, w)
    assert CONTEXT[spans[0].start : spans[0].end] == answer


def test_answer_outside_window_is_labelled_cls(tok):
    filler = " ".join(f"word{i}" for i in range(300))
    context = filler + " The capital is Canberra."
    windows = encode_windows(tok, ["What is the capital?"], [context], max_length=128, doc_stride=32)
    assert len(windows) > 1
    start = context.index("Canberra")
    labels = [label_window(w, start, "Canberra") for w in windows]
    assert labels[0] == (windows[0].cls_index, windows[0].cls_index)
    inside = [w for w, lab in zip(windows, labels, strict=True) if lab[0] != w.cls_index]
    assert inside, "some later window must contain the answer"


def test_answer_in_a_later_stride_window_is_decoded(tok):
    filler = " ".join(f"word{i}" for i in range(300))
    context = filler + " The capital is Canberra."
    windows = encode_windows(tok, ["What is the capital?"], [context], max_length=128, doc_stride=32)
    start = context.index("Canberra")
    starts, ends = [], []
    for w in windows:
        ts, te = label_window(w, start, "Canberra")
        s, e = _logits_for(w, ts, te)
        if ts == w.cls_index:  # elsewhere the model says "not in this window"
            s[w.cls_index], e[w.cls_index] = 9.0, 9.0
        starts.append(s)
        ends.append(e)
    spans, min_null = decode_example(starts, ends, windows)
    assert context[spans[0].start : spans[0].end] == "Canberra"
    assert spans[0].window > 0
    assert spans[0].prob > 0.5


def test_long_questions_are_cut_to_leave_every_window_its_context(tok):
    long_context = " ".join([CONTEXT] * 20)
    short = "Who was Tesla?"
    for question in ("why " * 400, "\U0001f600 " * 300, "ab" * 700):  # words, symbols, one endless word
        windows = encode_windows(tok, [question, short], [long_context, CONTEXT], max_length=384, doc_stride=128)
        first = [w for w in windows if w.example == 0]
        assert len(first) > 1
        for w in first:
            n_question = w.offsets.index(next(o for o in w.offsets if o is not None)) - 2  # [CLS] q.. [SEP]
            assert 0 < n_question <= (384 - 128 - 3) // 2
            assert sum(o is not None for o in w.offsets) >= 384 - 3 - (384 - 128 - 3) // 2 or w is first[-1]
    # a question that fits is kept as it is (SQuAD's are never touched)
    assert fit_questions(tok, ["  " + short, "What is " * 40], 384, 128) == [short, "What is " * 40]


def test_question_tokens_are_never_an_answer(tok):
    (w,) = encode_windows(tok, ["Who was Tesla?"], [CONTEXT])
    q_tok = next(t for t, off in enumerate(w.offsets) if off is None and t != w.cls_index)
    s, e = _logits_for(w, q_tok, q_tok)  # the model "prefers" a question token
    spans = decode_window(s, e, w)
    assert spans, "context spans are still proposed"
    # the 8 + 8 question-token pair is masked out; only context tokens (-5 each) remain
    assert max(sp.logit for sp in spans) == pytest.approx(-10.0)
    assert all(0 <= sp.start < sp.end <= len(CONTEXT) for sp in spans)


def test_max_answer_length_limits_spans(tok):
    (w,) = encode_windows(tok, ["q?"], [CONTEXT])
    ctx = [t for t, off in enumerate(w.offsets) if off is not None]
    s, e = _logits_for(w, ctx[0], ctx[-1])  # best pair is the whole context
    spans = decode_window(s, e, w, max_answer_length=5)
    for sp in spans:
        n_tokens = sum(1 for off in w.offsets if off is not None and sp.start <= off[0] < sp.end)
        assert n_tokens <= 5


CONTEXT_WORDS = st.sampled_from(["Tesla", "was", "born", "in", "1856", "Smiljan,", "naïve", "Straße", "東京",
                                 "(AC)", "U.S.", "—", "e.g.", "supercalifragilistic", "x"])
CONTEXTS = st.lists(st.tuples(CONTEXT_WORDS, st.sampled_from([" ", "  ", "\n", " \n\t"])), min_size=3,
                    max_size=200).map(lambda parts: "".join(w + s for w, s in parts).strip())


@settings(max_examples=40, deadline=None)
@given(context=CONTEXTS, data=st.data())
def test_span_round_trip_on_any_context_and_window(tok, context, data):
    """Any token-aligned answer in any window of any context maps to tokens and back to the same
    characters, including windows after the first (short max_length forces several)."""
    windows = encode_windows(tok, ["Where was he born?"], [context], max_length=48, doc_stride=16)
    w = data.draw(st.sampled_from(windows))
    ctx = [t for t, off in enumerate(w.offsets) if off is not None]
    i = data.draw(st.integers(0, len(ctx) - 1))
    j = data.draw(st.integers(i, min(i + 8, len(ctx) - 1)))
    start, end = w.offsets[ctx[i]][0], w.offsets[ctx[j]][1]
    ts, te = label_window(w, start, context[start:end])
    assert (ts, te) == (ctx[i], ctx[j])
    best = decode_window(*_logits_for(w, ts, te), w)[0]
    assert (best.start, best.end) == (start, end)
    assert context[best.start:best.end] == context[start:end]
