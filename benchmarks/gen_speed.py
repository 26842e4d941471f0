"""How fast the offline generative reader answers: prefill and decode apart, per arithmetic and trimming.

    .venv/bin/python benchmarks/gen_speed.py [--limit 30] [--adapter models/gemma3-squad-lora] \
        [--precisions fp32,bf16,int8,int8-head] [--words 0,80] [--vocab full,prompt] [--prefix-cache off,on]
        [--decode-weights fp32,fp16,bf16] [--json]

For each weight arithmetic (fp32; bf16; int8 = dynamic quantisation of the linear layers; int8-head = of
the output layer alone) the model is loaded with the adapter merged, then for ``--limit`` dev questions
(gold + 2 distractors, as in ``benchmarks/generative.py``) it measures, under ``torch.inference_mode``:

- **prefill**: one forward pass over the prompt that fills the KV cache (ms, and prompt tokens/s);
- **decode**: greedy steps reusing the cache until the answer ends (ms per generated token);
- **answer**: the reader's own end-to-end ``read`` (p50 / p95 seconds) and its F1, so a faster
  setting that answers worse shows it.

Each row is also compared with the first row of its arithmetic and passage cap (``same_answers_as``: how
many replies are that row's, word for word), so list the plain setting first:

- ``--vocab prompt`` scores only the prompt's tokens after each reply's first (``RAGQA_LLM_VOCAB``,
  :mod:`rag_qa.readers.vocab_head`);
- ``--prefix-cache on`` prefills the system prompt once and copies its KV cache into each reply
  (:mod:`rag_qa.readers.prefix_cache`; always on when serving).  The prefill column is a whole prompt's
  forward pass either way: the cache's gain shows in the answer's time;
- ``--decode-weights fp16`` has generated tokens read fp16 copies of the linear layers
  (``RAGQA_LLM_DECODE_WEIGHTS``, :mod:`rag_qa.readers.decode_weights`).

``--words`` caps each passage to that many words of its most question-like sentences (0: whole
passages; ``RAGQA_LLM_PASSAGE_WORDS``).  Targets (issue 22): >= 25 generated tokens/s and p50 <= 1.5 s
for a short answer from 3 passages, on 2 cores.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time
from pathlib import Path

from rag_qa.env import set_offline_defaults

set_offline_defaults()

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "squad" / "dev-v1.1-public.json"
DEFAULT_ADAPTER = REPO / "models" / "gemma3-squad-lora"


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round((len(ordered) - 1) * q / 100))] if ordered else 0.0


def _cache(out):
    """A forward pass's KV cache: ``cache`` in newer transformers 5.x, ``past_key_values`` before."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


def measure(reader, items) -> dict:
    """Prefill ms, decode ms/token, end-to-end latency and F1 over ``items``."""
    import torch

    from rag_qa.readers.llm_backends import encode_prompt
    from rag_qa.readers.prefix_cache import cache_kwarg
    from rag_qa.squad_metrics import squad_scores

    chat = reader.backend
    model, tok = chat._model, chat._tokenizer
    kwarg = cache_kwarg(model)
    prefill, per_token, prompt_tokens, latencies, preds, refs = [], [], [], [], {}, {}
    for item in items:
        prompt = reader.prompt(item.question, item.as_passages())
        ids = torch.tensor([encode_prompt(tok, prompt.messages())])
        with torch.inference_mode(), chat.restricted(ids[0].tolist()):  # --vocab prompt: as stream() restricts
            t0 = time.perf_counter()
            out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
            t1 = time.perf_counter()
            past, nxt, steps = _cache(out), out.logits[:, -1].argmax(-1, keepdim=True), 0
            while steps < 24 and int(nxt) != tok.eos_token_id:
                out = model(input_ids=nxt, use_cache=True, **{kwarg: past})
                past, nxt, steps = _cache(out), out.logits[:, -1].argmax(-1, keepdim=True), steps + 1
            t2 = time.perf_counter()
        prefill.append(1000 * (t1 - t0))
        prompt_tokens.append(ids.shape[1])
        if steps:
            per_token.append(1000 * (t2 - t1) / steps)
        t0 = time.perf_counter()
        answer = reader.read(item.question, item.as_passages())
        latencies.append(time.perf_counter() - t0)
        preds[item.id], refs[item.id] = answer.answer, list(item.answers)
    decode_ms = statistics.median(per_token) if per_token else 0.0
    return {"prompt_tokens_mean": statistics.mean(prompt_tokens), "prefill_ms_p50": statistics.median(prefill),
            "prefill_tokens_per_s": sum(prompt_tokens) / (sum(prefill) / 1000),
            "decode_ms_per_token_p50": decode_ms, "decode_tokens_per_s": 1000 / decode_ms if decode_ms else None,
            "answer_p50_s": _p(latencies, 50), "answer_p95_s": _p(latencies, 95),
            "f1": squad_scores(preds, refs)["f1"], "answers": preds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--adapter", type=Path, default=DEFAULT_ADAPTER)
    parser.add_argument("--precisions", default="fp32,bf16,int8,int8-head")
    parser.add_argument("--words", default="0,80", help="passage word caps to compare (0: whole passages)")
    parser.add_argument("--vocab", default="full", help="output vocabularies to compare: full, prompt")
    parser.add_argument("--prefix-cache", default="on", help="system prompt prefilled once: on, off, or both")
    parser.add_argument("--decode-weights", default="fp16", help="weights decode steps read: fp32, fp16, bf16")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "gen_speed.json")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from rag_qa.config import Settings
    from rag_qa.readers.generative import make_generative_reader
    from rag_qa.train.gen_data import dev_eval_items

    items, _ = dev_eval_items(str(args.data), args.limit)
    results: dict = {"n": len(items), "threads": torch.get_num_threads(), "load": os.getloadavg()[0], "runs": []}
    first: dict[tuple[str, int], dict] = {}  # per arithmetic and passage cap, its first row: the reference
    for precision, words, vocab, prefix, decode in itertools.product(
            args.precisions.split(","), (int(w) for w in args.words.split(",")), args.vocab.split(","),
            args.prefix_cache.split(","), args.decode_weights.split(",")):
        settings = Settings(llm_precision=precision, llm_passage_words=words, llm_vocab=vocab,
                            llm_decode_weights=decode)
        reader = make_generative_reader(str(args.adapter), settings)
        reader.backend.prefix_cache = prefix == "on"
        reader.warm_up()
        row = {"precision": precision, "passage_words": words, "vocab": vocab, "prefix_cache": prefix,
               "decode_weights": decode, **measure(reader, items)}
        reference = first.setdefault((precision, words), row)
        if reference is not row:
            row["same_answers_as"] = {"vocab": reference["vocab"], "prefix_cache": reference["prefix_cache"],
                                      "decode_weights": reference["decode_weights"],
                                      "answers": sum(row["answers"][k] == a for k, a in reference["answers"].items())}
        results["runs"].append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "answers"}), file=sys.stderr)
    results["load_after"] = os.getloadavg()[0]
    args.out.write_text(json.dumps(results, indent=2) + "\n")

    def same(r: dict) -> str:
        ref = r.get("same_answers_as")
        return "" if ref is None else (f", {ref['answers']}/{results['n']} answers as vocab={ref['vocab']} "
                                       f"prefix={ref['prefix_cache']} decode={ref['decode_weights']}")

    print(json.dumps(results) if args.json else "\n".join(
        f"{r['precision']:>9} words={r['passage_words']:>3} vocab={r['vocab']:>6} prefix={r['prefix_cache']:>3} "
        f"decode={r['decode_weights']:>4}: prompt {r['prompt_tokens_mean']:.0f} tok, prefill "
        f"{r['prefill_ms_p50']:.0f} ms, decode {r['decode_tokens_per_s'] or 0:.1f} tok/s, answer p50 "
        f"{r['answer_p50_s']:.2f} s, F1 {r['f1']:.1f}{same(r)}" for r in results["runs"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
