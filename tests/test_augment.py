"""Data augmentation for the reader (issue 24): every arm keeps the answer exactly at its offset in
the new context, typed questions never touch the answer, everything is seeded, and the table
generator writes rows exactly as ingest reads them (a change to either side fails here)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import random
import re
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import table_questions as tq
from rag_qa.config import Settings
from rag_qa.qa_data import DataError, QAExample, load_examples
from rag_qa.train import augment as A
from rag_qa.train.config import TrainConfig

REPO = Path(__file__).resolve().parents[1]
SQUAD = REPO / "tests" / "data" / "squad"
HELDOUT = REPO / "benchmarks" / "data" / "table_questions_heldout.json"
DEV = load_examples(SQUAD / "dev-mini.json")[0]
PARAGRAPHS = A.article_paragraphs(DEV)
SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_answers_at_their_offsets(ex: QAExample) -> None:
    assert ex.answers
    for a in ex.answers:
        start = a["answer_start"]
        assert ex.context[start:start + len(a["text"])] == a["text"], (ex.id, a)


def original_sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in A.sentences(text)]


# ---------------------------------------------------------------------------- context changes
@PROPERTY
@given(seed=SEEDS, mode=st.sampled_from(["shuffle", "drop", "both", None]))
def test_context_changes_keep_every_answer_at_its_offset_and_its_sentence_whole(seed: int, mode: str | None) -> None:
    changed = 0
    for ex in DEV:
        new = A.context_variant(ex, random.Random(seed), mode)
        if new is None:
            continue
        changed += 1
        assert_answers_at_their_offsets(new)
        assert new.question == ex.question and new.context != ex.context
        # the text is the original's sentences (whole), some dropped and/or reordered, the answer's kept
        pieces = original_sentences(ex.context)
        lo = min(a["answer_start"] for a in ex.answers)
        hi = max(a["answer_start"] + len(a["text"]) for a in ex.answers)
        spans = A.sentences(ex.context)
        block = ex.context[min(a for a, b in spans if a < hi and b > lo):max(b for a, b in spans if a < hi and b > lo)]
        assert block in new.context
        kept = [p for p in pieces if p in new.context]
        others = [p for p in kept if p not in block]
        # nothing but those sentences and the answer's block, one space between each two
        assert len(new.context) == sum(map(len, others)) + len(block) + len(others)
        if mode == "shuffle":
            assert sorted(kept) == sorted(pieces)
        if mode == "drop":
            assert len(kept) < len(pieces) and [p for p in pieces if p in kept] == kept
    assert changed >= len(DEV) // 2  # most dev-mini paragraphs have several sentences


def test_abbreviations_and_initials_do_not_end_sentences() -> None:
    text = "The U.S. Army arrived in St. Louis in 1804. Dr. Smith met them. It rained."
    assert original_sentences(text) == ["The U.S. Army arrived in St. Louis in 1804.", "Dr. Smith met them.",
                                        "It rained."]


def test_dropping_spares_the_sentence_that_names_what_the_question_is_about() -> None:
    context = ("The Normans settled in Normandy. Rain fell often. Bread was baked daily. "
               "In 1066 they conquered England.")
    ex = QAExample("x", "When did the Normans who settled in Normandy conquer England?", context,
                   [{"text": "1066", "answer_start": context.index("1066")}])
    for seed in range(30):
        new = A.context_variant(ex, random.Random(seed), "drop", drop_share=1.0)
        assert new is not None and "The Normans settled in Normandy." in new.context
        assert "Rain fell often." not in new.context and "Bread was baked daily." not in new.context
        assert_answers_at_their_offsets(new)


def test_a_single_sentence_paragraph_is_left_alone() -> None:
    ex = QAExample("x", "Who?", "Paul Baran did it.", [{"text": "Paul Baran", "answer_start": 0}])
    assert A.context_variant(ex, random.Random(0)) is None


# ---------------------------------------------------------------------------- longer contexts
@PROPERTY
@given(seed=SEEDS)
def test_longer_contexts_join_neighbouring_paragraphs_in_order_with_the_answer_at_its_offset(seed: int) -> None:
    for ex in DEV:
        paragraphs = PARAGRAPHS[ex.title]
        new = A.longer_context(ex, paragraphs, random.Random(seed), max_words=300)
        if new is None:
            continue
        assert_answers_at_their_offsets(new)
        parts = new.context.split("\n\n")
        assert 2 <= len(parts) <= 3 and ex.context in parts
        first = paragraphs.index(parts[0])
        assert parts == paragraphs[first:first + len(parts)]  # neighbours, in article order
        assert len(new.context.split()) <= 300


def test_no_longer_context_when_no_neighbour_fits() -> None:
    ex = DEV[0]
    assert A.longer_context(ex, PARAGRAPHS[ex.title], random.Random(0), max_words=len(ex.context.split())) is None
    assert A.longer_context(ex, [ex.context], random.Random(0)) is None


# ---------------------------------------------------------------------------- typed questions
def _keys(question: str) -> list[str]:
    return [w.lower() for w in A._WORD.findall(question)]


TYPED_CASES = DEV + [
    QAExample("t1", "Which Denver Broncos linebacker was named MVP of Super Bowl 50?", "Von Miller of the Denver "
              "Broncos was named MVP.", [{"text": "Von Miller of the Denver Broncos", "answer_start": 0}]),
    QAExample("t2", "What kind of memory stores packet header information?", "It uses content-addressable memory "
              "for packet headers.", [{"text": "content-addressable memory", "answer_start": 8}]),
]


@PROPERTY
@given(seed=SEEDS)
def test_typed_questions_never_touch_the_answer_names_or_numbers(seed: int) -> None:
    for ex in TYPED_CASES:
        new = A.typed_question(ex, random.Random(seed), typos=1.0)
        assert new is not None and new.question != ex.question
        assert new.context == ex.context and new.answers == ex.answers  # only the question changes
        assert_answers_at_their_offsets(new)
        answer = A._answer_words(ex)
        typed = set(_keys(new.question))
        for i, token in enumerate(ex.question.split()):
            words = _keys(token)
            named = any(c.isupper() for c in (token[1:] if i == 0 else token)) or any(c.isdigit() for c in token)
            if set(words) & answer or named:  # kept, letter for letter (case aside)
                assert set(words) <= typed, (ex.question, new.question, token)


def test_typed_questions_look_typed() -> None:
    ex = QAExample("x", "What is the atomic number of oxygen?", "Oxygen has atomic number 8.",
                   [{"text": "8", "answer_start": 25}])
    forms = {A.typed_question(ex, random.Random(s)).question for s in range(200)}
    assert "what is the atomic number of oxygen" in forms  # lower case, no question mark
    assert any("?" not in f and "the" not in f.split() for f in forms)  # keyword style
    assert any(not set(f.lower().rstrip("?").split()) <= {"what", "is", "the", "atomic", "number", "of",
                                                          "oxygen"} for f in forms)  # a typo


def test_a_typo_is_small_and_keeps_the_first_letter() -> None:
    for seed in range(300):
        word = random.Random(seed).choice(["conquered", "duchy", "religion", "packet", "memory"])
        slip = A.typo(word, random.Random(seed))
        assert slip != word and slip[0] == word[0] and abs(len(slip) - len(word)) <= 1
    assert A.typo("of", random.Random(0)) == "of"


# ---------------------------------------------------------------------------- the arms together
def test_augmentation_is_seeded_and_a_copy_does_not_depend_on_what_else_was_drawn() -> None:
    arms = {"context": 0.5, "long": 0.5, "typed": 1.0}
    first, added = A.augment_examples(DEV, arms, seed=7, paragraphs=PARAGRAPHS)
    again, _ = A.augment_examples(DEV, arms, seed=7, paragraphs=PARAGRAPHS)
    other, _ = A.augment_examples(DEV, arms, seed=8, paragraphs=PARAGRAPHS)
    assert first == again and first != other
    assert first[:len(DEV)] == DEV  # originals first, untouched
    assert added == {"context": round(0.5 * len(DEV)), "long": round(0.5 * len(DEV)), "typed": len(DEV)}
    assert Counter(A.arm_of(e) for e in first[len(DEV):]) == Counter(added)
    for ex in first[len(DEV):]:
        assert_answers_at_their_offsets(ex)
    # the same example drawn in a smaller set gets the very same copy
    half, _ = A.augment_examples(DEV[:12], arms, seed=7, paragraphs=PARAGRAPHS)
    by_id = {e.id: e for e in first}
    shared = [e for e in half[12:] if e.id in by_id]
    assert shared and all(by_id[e.id] == e for e in shared)


def test_augmentation_is_the_same_in_every_process() -> None:
    """A resumed run on another machine rebuilds the very same examples (no set or hash order anywhere)."""
    import subprocess
    import sys

    code = ("import hashlib, json; from rag_qa.qa_data import load_examples; from rag_qa.train import augment as A; "
            "from ingest import table_questions as tq; "
            "dev = load_examples('tests/data/squad/dev-mini.json')[0]; "
            "out, _ = A.augment_examples(dev, {'context': 1, 'long': 1, 'typed': 1}, 3); "
            "print(hashlib.sha256(json.dumps([[e.id, e.question, e.context, e.answers] for e in out]).encode()"
            "+ json.dumps(tq.generate(tables=3, seed=5)).encode()).hexdigest())")
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        digests.add(done.stdout.strip())
    assert len(digests) == 1


def test_spec_parsing() -> None:
    assert A.parse_spec("context=0.5, long ,typed=0", 0.3) == {"context": 0.5, "long": 0.3}
    assert A.parse_spec(None, 0.3) == {} and A.parse_spec("none", 0.3) == {}
    assert A.canonical_spec({"typed": 0.25, "context": 1.0}) == "context=1,typed=0.25"
    for bad in ("shuffle=0.5", "context=lots", "long=-1"):
        with pytest.raises(DataError):
            A.parse_spec(bad, 0.5)


# ---------------------------------------------------------------------------- tables <-> ingest
@pytest.fixture(scope="module")
def settings_() -> Settings:
    return Settings()


def test_expected_cells_are_what_ingest_shows() -> None:
    from ingest.formats.tables import cell_text

    for value in (3, 3.0, 2.5, 0.1 + 0.2, -12.75, 1e20, True, False, "  two  words ", "71,088", dt.date(2016, 2, 7),
                  dt.datetime(2016, 2, 7), dt.datetime(2016, 2, 7, 19, 30), dt.time(7, 42), None, "12–4"):
        assert tq.expected_cell(value) == cell_text(value), value


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_generated_tables_read_back_through_ingest_row_for_row(kind: str, tmp_path: Path, settings_: Settings) -> None:
    """The generator's own idea of each row equals what ingest's loader and chunker make of the file."""
    from ingest.chunking import chunk_document, load_tokenizer, make_splitter

    splitter = make_splitter(load_tokenizer(settings_.embedding_model), settings_.chunk_tokens,
                             settings_.chunk_overlap)
    rng, pools = random.Random(f"test/{kind}"), tq.Pools("train")
    for n, schema in enumerate(tq.SCHEMAS * 2):
        table = tq.draw_table(rng, pools, f"{schema.name}_{n}", schema, kind)
        path = tq.write_table(table, tmp_path)
        doc = tq.read_back(table, path, settings_)  # raises RowMismatch on any difference
        chunks = [c.text for c in chunk_document(doc, splitter)]
        assert chunks == ([table.title] if table.title else []) + table.expected_rows()
        assert all(re.fullmatch(r"([^,]+: [^\n]+)(, [^,]+: [^\n]+)*\.", row) for row in table.expected_rows())


def test_a_change_to_ingest_row_format_stops_the_generator(tmp_path: Path, settings_: Settings,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from ingest.formats import sheets

    monkeypatch.setattr(sheets, "row_text", lambda headers, cells: "; ".join(
        f"{h}: {tq.expected_cell(c)}" for h, c in zip(headers, cells, strict=False) if tq.expected_cell(c)))
    table = tq.draw_table(random.Random(0), tq.Pools("train"), "t", tq.GAMES, "csv")
    with pytest.raises(tq.RowMismatch, match="ingest read part"):
        tq.read_back(table, tq.write_table(table, tmp_path), settings_)


def test_table_questions_point_at_a_cell_of_the_loader_text(settings_: Settings) -> None:
    data = tq.generate(tables=24, seed=3, block_share=0.5, settings=settings_)
    shapes = Counter()
    for article in data["data"]:
        rows = [p["context"] for p in article["paragraphs"] if p["shape"] == "row"]
        assert "\n".join(rows) in article["document"]  # the loader's parts, in order
        for p in article["paragraphs"]:
            assert p["context"] in article["document"]
            if p["shape"] == "block":
                assert p["context"].count("\n") >= 1 and len(p["context"].split()) <= tq.BLOCK_WORDS + 12
            for q in p["qas"]:
                shapes[p["shape"]] += 1
                (a,) = q["answers"]
                assert p["context"][a["answer_start"]:a["answer_start"] + len(a["text"])] == a["text"]
                # the answer is a whole cell: "Header: <answer>" followed by ", " or the row's full stop
                context, at = p["context"], a["answer_start"]
                end = context.find("\n", at)
                line = context[context.rfind("\n", 0, at) + 1:end if end >= 0 else len(context)]
                cell = f": {a['text']}"
                assert cell + ", " in line or line.endswith(cell + ".")
    assert shapes["row"] > 50 and shapes["block"] > 50
    examples = [e for a in data["data"] for p in a["paragraphs"] for e in p["qas"]]
    assert len({e["id"] for e in examples}) == len(examples) == data["questions"]


def test_held_out_tables_share_no_names_with_training_tables() -> None:
    train, held = tq.Pools("train"), tq.Pools("heldout")
    for field in ("first", "last", "cities", "mascots", "company_a", "brands"):
        assert not set(getattr(train, field)) & set(getattr(held, field)), field
        assert getattr(held, field), field


def test_table_generation_is_seeded(settings_: Settings) -> None:
    one = tq.generate(tables=6, seed=11, settings=settings_)
    assert one == tq.generate(tables=6, seed=11, settings=settings_)
    assert one != tq.generate(tables=6, seed=12, settings=settings_)


def test_the_committed_held_out_set_is_what_the_generator_makes(settings_: Settings) -> None:
    """benchmarks/data/table_questions_heldout.json (the ablation's table score) is regenerated by its
    documented command; a change to the generator or to ingest's rows shows up here."""
    committed = json.loads(HELDOUT.read_text(encoding="utf-8"))
    made = tq.generate(tables=len(committed["data"]), seed=committed["seed"], split="heldout",
                       block_share=committed["block_share"], settings=settings_)
    assert made == committed


def test_the_tables_arm_draws_whole_tables(tmp_path: Path, settings_: Settings) -> None:
    path = tmp_path / "tables.json.gz"
    tq.save(tq.generate(tables=10, seed=1, settings=settings_), path)
    tables = load_examples(path)[0]
    picked = A.table_examples(tables, 40, random.Random(0))
    assert len(picked) == 40
    titles = [e.title for e in picked]
    assert titles == sorted(titles, key=titles.index)  # grouped: each table's questions together
    assert sum(1 for i in range(1, len(titles)) if titles[i] != titles[i - 1]) == len(set(titles)) - 1
    with pytest.raises(DataError, match="augment_tables"):
        A.augment_examples(DEV, {"tables": 0.5}, seed=0)


# ---------------------------------------------------------------------------- the trainer's use
@pytest.fixture(scope="module")
def tables_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tables") / "tables.json.gz"
    tq.save(tq.generate(tables=4, seed=2, settings=Settings()), path)
    return path


def _cfg(tmp_path: Path, **kw) -> TrainConfig:
    return TrainConfig(train=str(SQUAD / "train-mini.json"), eval=str(SQUAD / "dev-mini.json"), output="-",
                       max_length=192, doc_stride=64, distractors=1, feature_cache=str(tmp_path), **kw)


def test_the_trainer_applies_the_arms_and_keeps_the_originals_distractors(tmp_path: Path, tables_file: Path) -> None:
    from rag_qa.train.data import augmented_counts, distractor_pairs, load_data

    plain = _cfg(tmp_path)
    cfg = _cfg(tmp_path, augment="context,long=1,typed=0.5,tables=0.5", augment_ratio=0.5,
               augment_tables=str(tables_file))
    base, _ = load_data(plain)
    train_ex, _ = load_data(cfg)
    assert train_ex[:len(base)] == base
    assert augmented_counts(train_ex) == {"context": 12, "long": 24, "typed": 12, "tables": 12}
    for ex in train_ex:
        assert_answers_at_their_offsets(ex)
    before, after = distractor_pairs(plain, base), distractor_pairs(cfg, train_ex)
    assert after[:len(before)] == before  # the original questions' distractors are unchanged
    for qi, d in after[len(before):]:
        q = train_ex[qi]
        assert A.arm_of(q) is not None and d.title == q.title and d.question == q.question and not d.answers
        arm_contexts = {e.context for e in train_ex if A.arm_of(e) == A.arm_of(q)}
        assert d.context in arm_contexts  # drawn from the same arm's passages
    assert any(A.arm_of(train_ex[qi]) == "tables" for qi, _ in after[len(before):])  # other rows of the table
    with pytest.raises(DataError, match="--augment-tables"):
        load_data(_cfg(tmp_path, augment="tables"))


def test_augmented_features_label_every_answer_and_get_their_own_cache_entry(tmp_path: Path,
                                                                            tables_file: Path) -> None:
    from transformers import AutoTokenizer

    from rag_qa.train.data import load_data, load_train_features

    tokenizer = AutoTokenizer.from_pretrained(REPO / "models" / "minilm-squad")
    plain = _cfg(tmp_path)
    load_train_features(plain, tokenizer, load_data(plain)[0], progress=False)
    cfg = _cfg(tmp_path, augment="context,long,typed,tables", augment_tables=str(tables_file))
    train_ex = load_data(cfg)[0]
    feats = load_train_features(cfg, tokenizer, train_ex, progress=False)
    assert len(list(tmp_path.glob("features-*.npz"))) == 2, "augmentation is part of the cache key"
    assert len(feats) == len(train_ex)  # one group per question
    labelled = {int(feats.example[w]) for w in range(feats.n_windows) if feats.start[w] != feats.cls[w]}
    assert labelled == set(range(len(train_ex))), "every question's answer lands on tokens in some window"
    for w in range(feats.n_windows):  # and those tokens spell the answer
        if feats.start[w] != feats.cls[w]:
            ex = train_ex[int(feats.example[w])]
            a, b = int(feats.win[w]), int(feats.win[w + 1])
            span = ex.context[feats.offsets[a + feats.start[w]][0]:feats.offsets[a + feats.end[w]][1]]
            assert span == ex.answers[0]["text"], (ex.id, span)
            assert b > a
    assert load_train_features(cfg, tokenizer, train_ex, progress=False).n_windows == feats.n_windows
    assert len(list(tmp_path.glob("features-*.npz"))) == 2, "the second call used the cache"


def test_the_flags_and_the_card_name_the_augmentation(tmp_path: Path) -> None:
    import argparse

    from rag_qa.cli.config_flags import add_config_flags, config_from_args
    from rag_qa.train.card import reproduce_command
    from rag_qa.train.config import config_defaults

    parser = argparse.ArgumentParser()
    add_config_flags(parser, TrainConfig)
    cfg = config_from_args(TrainConfig, parser.parse_args(
        ["--train", "t.json", "--eval", "d.json", "--output", "o", "--augment", "context=0.3,tables=0.1",
         "--augment-tables", "tables.json.gz"]))
    assert (cfg.augment, cfg.augment_ratio, cfg.augment_tables) == ("context=0.3,tables=0.1", 0.5, "tables.json.gz")
    command = reproduce_command(dataclasses.asdict(cfg), config_defaults())
    assert "--augment context=0.3,tables=0.1 --augment-tables tables.json.gz" in command
    plain = config_from_args(TrainConfig, parser.parse_args(["--train", "t", "--eval", "d", "--output", "o"]))
    assert "augment" not in reproduce_command(dataclasses.asdict(plain), config_defaults())

