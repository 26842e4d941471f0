"""The extractive training run's settings, and what both trainers' config dataclasses share.

A config dataclass is the one source of its command-line flags and of the "reproduce" line in a
model card: each field's metadata holds its flag's help (and, where they differ from the field,
the flag's spelling and choices).  :func:`option` declares such a field,
:func:`rag_qa.cli.config_flags.add_config_flags` turns the fields into ``argparse`` options, and
:func:`command_line` writes the flags a run used.

Standard library only, so ``python -m rag_qa train --help`` stays instant and the GPU machine
(:mod:`rag_qa.train.gpu`) needs nothing beyond the training stack.
"""

from __future__ import annotations

from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any


def option(help: str, default: Any = MISSING, *, flag: str | None = "", choices: tuple[str, ...] | None = None,
           reproduce: bool = True, negative_is_none: bool = False, default_factory: Any = MISSING) -> Any:
    """A config field documented by ``help``.

    ``flag``: the option's spelling ("" = ``--field-name``; ``None`` = a setting with no flag, set
    from Python only).  ``reproduce=False``: a flag about this run alone (resuming, its time
    budget, caches, threads) that a model card's command leaves out.  ``negative_is_none``: on
    the command line a negative number stands for ``None`` (which a flag cannot spell).
    """
    meta: dict[str, Any] = {"help": help, "reproduce": reproduce}
    if flag != "":
        meta["flag"] = flag
    if choices is not None:
        meta["choices"] = choices
    if negative_is_none:
        meta["negative_is_none"] = True
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=meta)
    return field(metadata=meta) if default is MISSING else field(default=default, metadata=meta)


def flag_of(f: Field) -> str | None:
    """The command-line spelling of config field ``f``; ``None`` when it has no flag."""
    if "help" not in f.metadata:
        return None
    return f.metadata.get("flag", "--" + f.name.replace("_", "-"))


def defaults(config: type) -> dict[str, Any]:
    """The dataclass ``config``'s default values by field (a model card lists what a run changed)."""
    return {f.name: f.default for f in fields(config) if f.default is not MISSING}


#: what a reproduce command names first, in this order, whatever their values
LEADING = ("train", "eval", "base", "output")


def command_line(prefix: str, config: type, values: dict[str, Any], base_values: dict[str, Any]) -> str:
    """``prefix`` plus the flags that give ``values`` (a config as ``asdict`` writes it): the
    :data:`LEADING` ones, then every other flag whose value differs from ``base_values``."""
    by_name = {f.name: f for f in fields(config)}
    cmd = prefix + "".join(f" {flag_of(by_name[k])} {values[k]}" for k in LEADING)
    for key, value in values.items():
        f = by_name.get(key)
        flag = flag_of(f) if f is not None else None
        if (flag is None or key in LEADING or not f.metadata.get("reproduce", True) or key not in base_values
                or value == base_values[key]):
            continue
        if isinstance(value, bool):
            cmd += f" {flag}" if value else ""
        else:
            cmd += f" {flag} {-1 if value is None and f.metadata.get('negative_is_none') else value}"
    return cmd


@dataclass
class TrainConfig:
    """Everything an extractive training run depends on; saved verbatim into metrics.json and the card.

    The fields are ``rag_qa train extractive``'s flags (:func:`option`); their order is the order
    of ``config`` in metrics.json and of the flags in the card's reproduce command.
    """

    train: str = option("SQuAD .json/.json.gz, or .jsonl/.csv rows of question,context,answer")
    eval: str = option("dev data in the same formats")
    output: str = option("directory for the model, card, metrics and curve")
    base: str = option("base encoder: alias, local dir or hub id", "minilm")
    max_length: int = option("tokens per window (question + passage)", 384)
    doc_stride: int = option("tokens two windows of a long passage share", 128)
    learning_rate: float = option("peak learning rate (linear decay to 0)", 1e-4, flag="--lr")
    epochs: float = option("passes over the training questions", 2.0)
    batch_size: int = option("windows per step (a batch holds whole question groups)", 32)
    eval_batch_size: int = option("windows per forward pass when evaluating", 64)
    grad_accum: int = option("gradient accumulation steps", 1)
    warmup_ratio: float = option("warm-up as a share of steps", 0.1, flag="--warmup")
    weight_decay: float = option("AdamW weight decay", 0.01)
    eval_steps: int = option("evaluate on the dev data every N steps", 500)
    save_steps: int = option("checkpoint every N steps", 500)
    save_total_limit: int = option("checkpoints kept", 2)
    logging_steps: int = option("log the training loss every N steps", 25)
    seed: int = option("seed for data order, subsets, distractors and a new span head", 42)
    max_steps: int = option("stop after this many steps (short runs; -1: epochs decide)", -1)
    max_train_examples: int | None = option("random subset of the training data", None)
    max_eval_examples: int | None = option("random subset of the dev data", None)
    negative_keep: float = option("share of answer-less windows of answerable questions to keep", 1.0)
    resume: bool = option("continue from the last checkpoint in OUTPUT", False, reproduce=False)
    lora: bool = option("parameter-efficient fine-tuning with PEFT LoRA", False)
    lora_r: int = option("LoRA rank", 16)
    lora_alpha: int = option("LoRA alpha (scale = alpha / r)", 32, flag=None)
    teacher: str | None = option("distil from this fine-tuned reader (any tokenizer: logits are aligned by "
                                 "character offsets)", None)
    distill_alpha: float = option("weight of the teacher's soft loss; 1 - alpha on the hard labels", 0.5)
    distill_temperature: float = option("temperature that softens the student's and teacher's distributions", 2.0)
    max_answer_length: int = option("longest answer span in tokens when evaluating", 30, flag=None)
    save_dtype: str = option("dtype of the saved weights", "float16", choices=("float16", "bfloat16", "float32"))
    precision: str = option("training arithmetic (auto: bf16 where the hardware does it natively, else fp16 on "
                            "a GPU, fp32 on a CPU)", "auto", choices=("auto", "bf16", "fp16", "fp32"))
    distractors: int = option("per question, add this many same-article paragraphs BM25 ranks high that do not "
                              "hold the answer, labelled 'no answer' (teaches reading several retrieved "
                              "passages)", 0)
    distractor_pool: int = option("draw distractors from the top N candidates", 3)
    shared_norm: float = option("weight of a shared-normalisation loss: one softmax over a question's passages, "
                                "on the span margins the reader ranks by (0: off)", 0.0)
    augment: str | None = option("data augmentation arms added to the training questions, each with its ratio "
                                 "(new examples per question): 'context=0.5,long=0.3' of context (sentences "
                                 "shuffled or dropped around the answer's), long (2-3 paragraphs of the article "
                                 "joined), typed (questions typed the way people do), tables (questions over "
                                 "spreadsheet rows, from --augment-tables); see rag_qa/train/augment.py", None)
    augment_ratio: float = option("ratio of an arm named in --augment without one", 0.5)
    augment_tables: str | None = option("table questions for the tables arm, made by `python -m "
                                        "ingest.table_questions --out FILE`", None)
    attention_dropout: float | None = option(
        "attention dropout while training (0 lets PyTorch use fused attention, 2.7x faster per step on CPU); "
        "-1 keeps the checkpoint's value", 0.0, negative_is_none=True)
    threads: int | None = option("torch threads (default: all usable cores while the machine is otherwise idle, "
                                  "else 1: two processes each running 2 threads on 2 cores run 3-7x slower)", None,
                                  reproduce=False)
    feature_cache: str | None = option("directory for tokenised features reused across runs ('none' to turn off; "
                                       "default: the cache folder)", None, reproduce=False)
    distractor_file: str | None = option("precomputed distractor choices (from `python -m rag_qa.train.gpu pack`) "
                                         "instead of BM25", None)
    stop_after_steps: int | None = option("end this run after N steps with a checkpoint (continue with --resume)",
                                          None, reproduce=False)
    stop_after_minutes: float | None = option("end this run after N minutes of training with a checkpoint "
                                              "(continue with --resume)", None, reproduce=False)
    optim: str = option("Trainer's optimizer name; fused = one kernel for the whole update", "adamw_torch_fused",
                        flag=None)
    length_grouping: bool = option("batches of similar length: dynamic padding then pads little", True, flag=None)
    compile: bool = option("torch.compile (no gain measured on CPU once fused attention runs)", False, flag=None)
    extra: dict = option("free-form notes saved with the config", flag=None, default_factory=dict)


def config_defaults() -> dict[str, Any]:
    """TrainConfig's default values by field (the model card lists what a run changed)."""
    return defaults(TrainConfig)
