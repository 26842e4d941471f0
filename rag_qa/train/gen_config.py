"""The generative training run's settings: one dataclass that is also the source of its command-line flags.

Standard library only, so ``python -m rag_qa train --help`` stays instant: each field is an
:func:`rag_qa.train.config.option` whose metadata holds its flag's help (and, where they differ
from the field, its spelling and choices), and :func:`rag_qa.cli.config_flags.add_config_flags`
turns the fields into ``argparse`` options.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rag_qa.sentences import MAX_PASSAGE_WORDS
from rag_qa.train.config import defaults, option


@dataclass
class GenConfig:
    """Everything a generative training run depends on; saved verbatim into metrics.json and the card."""

    train: str = option("SQuAD .json/.json.gz training data")
    eval: str = option("SQuAD dev data (evaluation prompts are built from it)")
    output: str = option("directory for the adapter, card, metrics and curve")
    base: str = option("base causal LM: smollm2, gemma3, a local GGUF/model dir or a hub id", "smollm2")
    target_style: str = option("reply format: terse ('answer [n]') or quote ('\"sentence\" [n]', then "
                               "'Answer: answer [n]')",
                               "terse", choices=("terse", "quote"))
    learning_rate: float = option("peak learning rate (linear decay to 0)", 2e-4, flag="--lr")
    epochs: float = option("passes over the training items", 1.0)
    max_steps: int = option("stop after this many optimizer steps (-1: epochs decide)", -1)
    batch_size: int = option("prompts per step", 8)
    grad_accum: int = option("gradient accumulation steps", 1)
    warmup_ratio: float = option("warm-up as a share of the steps", 0.03, flag="--warmup")
    weight_decay: float = option("AdamW weight decay", 0.0)
    lora_r: int = option("LoRA rank", 16)
    lora_alpha: int = option("LoRA alpha (scale = alpha / r)", 32)
    lora_dropout: float = option("dropout on the LoRA path", 0.05)
    lora_targets: str = option("comma-separated module names that get LoRA",
                               "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj")
    distractors: int = option("same-article BM25 distractor passages per prompt, at most (1 to this many)", 2)
    distractor_pool: int = option("draw distractors from the top N candidates", 3)
    refusal_rate: float = option("share of prompts whose gold passage is removed (target: the refusal)", 0.1)
    max_passage_words: int = option("passages cut to whole sentences of at most this many words", MAX_PASSAGE_WORDS)
    max_train_examples: int | None = option("random subset of the training questions", None)
    questions_per_prompt: int = option("questions of one paragraph asked against one prompt's passages in a "
                                       "training row: the passages are computed once, each question sees only "
                                       "them and itself (about 3x the questions per CPU hour at 4)", 1)
    seed: int = option("seed for data order, distractors and LoRA init", 42)
    init_adapter: str | None = option("start from the LoRA adapter in this folder (same base, rank and target "
                                      "modules) instead of fresh matrices; give it another --seed so that this run "
                                      "draws other prompts", None)
    eval_steps: int = option("evaluate (teacher-forced loss on dev prompts) every N steps", 100)
    eval_loss_examples: int = option("dev prompts in that loss", 100)
    final_eval_examples: int = option("dev questions answered by generation at the end (0: skip); each is also "
                                      "asked once with its gold passage removed", 200)
    save_steps: int = option("checkpoint every N steps", 100)
    save_total_limit: int = option("checkpoints kept", 2)
    logging_steps: int = option("log the training loss every N steps", 10)
    resume: bool = option("continue from the last checkpoint in OUTPUT (same data order and schedule)", False,
                          reproduce=False)
    stop_after_steps: int | None = option("end this run after N steps with a checkpoint (continue with --resume)",
                                          None, reproduce=False)
    stop_after_minutes: float | None = option("end this run after N minutes with a checkpoint", None,
                                              reproduce=False)
    threads: int | None = option("torch threads (default: all usable cores while the machine is otherwise idle, "
                                 "one while other work runs)", None, reproduce=False)
    feature_cache: str | None = option("directory for tokenised prompts ('none': off)", None, reproduce=False)
    precision: str = option("training arithmetic", "auto", choices=("auto", "bf16", "fp32"))


def config_defaults() -> dict[str, Any]:
    """GenConfig's default values by field (the card lists what a run changed)."""
    return defaults(GenConfig)
