"""The generative training run's settings: one dataclass that is also the source of its command-line flags.

Standard library only, so ``python -m rag_qa train --help`` stays instant: each field's metadata
holds its flag's help (and, where they differ from the field, its spelling and choices), and
:func:`rag_qa.cli.config_flags.add_config_flags` turns the fields into ``argparse`` options.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from rag_qa.sentences import MAX_PASSAGE_WORDS


def _flag(help: str, default: Any = MISSING, **extra: Any) -> Any:
    """A dataclass field whose ``help`` becomes its command-line flag's help (``rag_qa train generative``)."""
    meta = {"help": help, **extra}
    return field(metadata=meta) if default is MISSING else field(default=default, metadata=meta)


@dataclass
class GenConfig:
    """Everything a generative training run depends on; saved verbatim into metrics.json and the card."""

    train: str = _flag("SQuAD .json/.json.gz training data")
    eval: str = _flag("SQuAD dev data (evaluation prompts are built from it)")
    output: str = _flag("directory for the adapter, card, metrics and curve")
    base: str = _flag("base causal LM: smollm2, gemma3, a local GGUF/model dir or a hub id", "smollm2")
    target_style: str = _flag("reply format: terse ('answer [n]') or quote ('\"sentence\" [n] -> answer [n]')",
                              "terse", choices=("terse", "quote"))
    learning_rate: float = _flag("peak learning rate (linear decay to 0)", 2e-4, flag="--lr")
    epochs: float = _flag("passes over the training items", 1.0)
    max_steps: int = _flag("stop after this many optimizer steps (-1: epochs decide)", -1)
    batch_size: int = _flag("prompts per step", 8)
    grad_accum: int = _flag("gradient accumulation steps", 1)
    warmup_ratio: float = _flag("warm-up as a share of the steps", 0.03, flag="--warmup")
    weight_decay: float = _flag("AdamW weight decay", 0.0)
    lora_r: int = _flag("LoRA rank", 16)
    lora_alpha: int = _flag("LoRA alpha (scale = alpha / r)", 32)
    lora_dropout: float = _flag("dropout on the LoRA path", 0.05)
    lora_targets: str = _flag("comma-separated module names that get LoRA",
                              "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj")
    distractors: int = _flag("same-article BM25 distractor passages per prompt, at most (1 to this many)", 2)
    distractor_pool: int = _flag("draw distractors from the top N candidates", 3)
    refusal_rate: float = _flag("share of prompts whose gold passage is removed (target: the refusal)", 0.1)
    max_passage_words: int = _flag("passages cut to whole sentences of at most this many words", MAX_PASSAGE_WORDS)
    max_train_examples: int | None = _flag("random subset of the training questions", None)
    seed: int = _flag("seed for data order, distractors and LoRA init", 42)
    eval_steps: int = _flag("evaluate (teacher-forced loss on dev prompts) every N steps", 100)
    eval_loss_examples: int = _flag("dev prompts in that loss", 100)
    final_eval_examples: int = _flag("dev questions answered by generation at the end (0: skip); each is also "
                                     "asked once with its gold passage removed", 200)
    save_steps: int = _flag("checkpoint every N steps", 100)
    save_total_limit: int = _flag("checkpoints kept", 2)
    logging_steps: int = _flag("log the training loss every N steps", 10)
    resume: bool = _flag("continue from the last checkpoint in OUTPUT (same data order and schedule)", False)
    stop_after_steps: int | None = _flag("end this run after N steps with a checkpoint (continue with --resume)",
                                         None)
    stop_after_minutes: float | None = _flag("end this run after N minutes with a checkpoint", None)
    threads: int | None = _flag("torch threads (default: all usable cores while the machine is otherwise idle, "
                                "one while other work runs)", None)
    feature_cache: str | None = _flag("directory for tokenised prompts ('none': off)", None)
    precision: str = _flag("training arithmetic", "auto", choices=("auto", "bf16", "fp32"))


def config_defaults() -> dict[str, Any]:
    """GenConfig's default values by field (the card lists what a run changed)."""
    return {f.name: f.default for f in fields(GenConfig) if f.default is not MISSING}
