#!/usr/bin/env bash
# Base-model ablation for the generative reader (issue 22): each candidate gets the same budget
# (100 steps of 4 prompts from the same 8,000 training prompts) and is scored by generation on the
# same 200 dev questions (gold + 2 distractors) and the same 200 with the gold passage removed.
# Arms go to runs/gen-ablation/ (ignored); a finished arm (metrics.json) is not run again.
set -u
cd "$(dirname "$0")/.."
PY=.venv/bin/python
mkdir -p runs/gen-ablation
COMMON="--train ../shared/data/squad/train-v1.1.json.gz --eval ../shared/data/squad/dev-v1.1-public.json --max-train-examples 8000 --max-steps 100 --batch-size 4 --eval-steps 25 --save-steps 25 --final-eval-examples 200"
arm() { name=$1; shift; [ -f runs/gen-ablation/$name/metrics.json ] || $PY -m rag_qa train generative $COMMON --output runs/gen-ablation/$name "$@" > runs/gen-ablation/$name.log 2>&1; }
arm smollm2 --base smollm2
arm gemma3 --base gemma3
$PY benchmarks/gen_ablation.py runs/gen-ablation/smollm2 runs/gen-ablation/gemma3 --out benchmarks/results/gen_ablation.json
