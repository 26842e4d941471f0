#!/usr/bin/env bash
# Recipe ablation (issue 13): same budget (300 steps of ~32 windows) from the shipped weights.
set -u
cd "$(dirname "$0")/.."  # the repository root; arms go to runs/ablation/ (ignored)
PY=.venv/bin/python
mkdir -p runs/ablation
COMMON="--train ../shared/data/squad/train-v1.1.json.gz --eval ../shared/data/squad/dev-v1.1-public.json --base models/minilm-squad --lr 5e-5 --warmup 0.05 --batch-size 32 --max-steps 300 --eval-steps 300 --save-steps 300 --max-eval-examples 200 --logging-steps 25"
arm() { name=$1; shift; [ -f runs/ablation/$name/metrics.json ] || $PY -m rag_qa train $COMMON --output runs/ablation/$name "$@" > runs/ablation/$name.log 2>&1; }
arm A
arm B --distractors 1
arm C --distractors 1 --shared-norm 1.0
$PY benchmarks/reader_ablation.py models/minilm-squad runs/ablation/A runs/ablation/B runs/ablation/C --top-k 5,8,10 --out benchmarks/results/reader_ablation.json
