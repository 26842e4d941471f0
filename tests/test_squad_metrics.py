"""The official SQuAD normalisation and metrics, pinned on hand-computed cases."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag_qa.squad_metrics import (
    best_null_threshold,
    exact_match,
    f1,
    normalize_answer,
    rouge_l,
    squad_scores,
)


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("The Denver Broncos", "denver broncos"),
        ("  an apple, a pear!  ", "apple pear"),
        ("Theatre of the Absurd", "theatre of absurd"),  # "the" inside words stays
        ("U.S.A.", "usa"),
        ("¡Olé!", "¡olé"),  # only ASCII punctuation is stripped, as in the official script
        ("", ""),
    ],
)
def test_normalize_answer(raw, normal):
    assert normalize_answer(raw) == normal


def test_exact_match_ignores_case_articles_and_punctuation():
    assert exact_match("the Broncos.", "Broncos") == 1.0
    assert exact_match("Denver Broncos", "Broncos") == 0.0


def test_f1_hand_computed():
    # pred tokens: denver broncos won ; gold: broncos won title -> overlap 2, P=2/3, R=2/3
    assert f1("Denver Broncos won", "the Broncos won the title") == pytest.approx(2 / 3)
    # repeated tokens count by multiplicity: pred "a b b", gold "b" -> normalised "b b" vs "b"
    assert f1("b b", "b") == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert f1("Paris", "London") == 0.0
    assert f1("", "") == 1.0  # v2.0: no answer predicted for an unanswerable question
    assert f1("Paris", "") == 0.0


def test_squad_scores_max_over_gold_answers_and_missing_predictions():
    refs = {"q1": ["Denver Broncos", "Broncos"], "q2": ["1856"], "q3": ["Nikola Tesla"]}
    preds = {"q1": "the Broncos", "q2": "in 1856"}  # q3 missing -> counts as ""
    out = squad_scores(preds, refs)
    assert out["n"] == 3
    assert out["exact_match"] == pytest.approx(100 / 3)
    # q1: 1.0 ; q2: pred "in 1856" vs "1856" -> P=1/2 R=1 F1=2/3 ; q3: 0
    assert out["f1"] == pytest.approx(100 * (1 + 2 / 3) / 3)
    assert "HasAns_exact" not in out


def test_squad_v2_splits_and_best_threshold():
    refs = {"a": ["Paris"], "b": [], "c": []}
    preds = {"a": "Paris", "b": "", "c": "Rome"}
    out = squad_scores(preds, refs)
    assert out["HasAns_exact"] == 100.0 and out["HasAns_total"] == 1
    assert out["NoAns_exact"] == 50.0 and out["NoAns_total"] == 2
    # answering everything: a right, b and c wrong -> 1/3; abstaining on b and c (margins 2, -1) -> 3/3
    forced = {"a": "Paris", "b": "Lyon", "c": "Rome"}
    best, thresh = best_null_threshold(forced, {"a": -5.0, "b": 2.0, "c": -1.0}, refs)
    assert best == pytest.approx(100.0)
    assert -5.0 < thresh < -1.0  # "no answer when margin > threshold" abstains on b and c, answers a


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0]), st.booleans(), st.booleans()),
                min_size=1, max_size=12))
def test_the_reported_threshold_gives_the_reported_score(rows: list[tuple[float, bool, bool]]) -> None:
    """Applying the threshold as documented scores exactly the best it reports, ties included."""
    refs = {f"q{i}": (["Paris"] if answerable else []) for i, (_, answerable, _) in enumerate(rows)}
    forced = {f"q{i}": ("Paris" if right else "Rome") for i, (_, _, right) in enumerate(rows)}
    margins = {f"q{i}": margin for i, (margin, _, _) in enumerate(rows)}
    best, thresh = best_null_threshold(forced, margins, refs)
    applied = {q: "" if margins[q] > thresh else forced[q] for q in refs}
    assert squad_scores(applied, refs)["f1"] == pytest.approx(best)


def test_rouge_l_hand_computed():
    # LCS("cat sat on mat", "cat on mat") = 3 -> P=3/4 R=1 F=6/7
    assert rouge_l("the cat sat on the mat", "cat on mat") == pytest.approx(6 / 7)
    assert rouge_l("x", "y") == 0.0


@given(st.text(max_size=40), st.text(max_size=40))
def test_metrics_are_bounded_and_symmetric_em(a, b):
    assert 0.0 <= f1(a, b) <= 1.0
    assert exact_match(a, b) == exact_match(b, a)
    assert f1(a, a) == 1.0


ANSWERS = st.lists(st.sampled_from(["the", "a", "Denver", "Broncos", "denver", "1856", "U.S.", "Olé", "!", ",",
                                    "an", "Carolina", "Panthers"]), max_size=8).map(" ".join)


@given(ANSWERS, ANSWERS)
def test_f1_is_symmetric_and_consistent_with_exact_match(a, b):
    assert f1(a, b) == pytest.approx(f1(b, a))
    if exact_match(a, b):
        assert f1(a, b) == 1.0  # the same normalised answer is a perfect overlap
    if f1(a, b) == 1.0 and normalize_answer(a) and normalize_answer(b):
        assert sorted(normalize_answer(a).split()) == sorted(normalize_answer(b).split())


@given(st.text(max_size=40))
def test_normalisation_is_idempotent_and_case_blind(text):
    once = normalize_answer(text)
    assert normalize_answer(once) == once
    assert normalize_answer(text.upper()) == normalize_answer(text.lower()) or not text.isascii()


@given(ANSWERS, st.lists(ANSWERS, min_size=1, max_size=4))
def test_scores_take_the_best_gold_answer(prediction, truths):
    scores = squad_scores({"q": prediction}, {"q": truths})
    assert scores["exact_match"] == pytest.approx(100 * max(exact_match(prediction, t) for t in truths))
    assert scores["f1"] == pytest.approx(100 * max(f1(prediction, t) for t in truths))
