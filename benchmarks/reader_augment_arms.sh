#!/usr/bin/env bash
# Augmentation ablation (issue 24): a baseline and one arm per augmentation, each on the same budget
# as issue 13's ablation (300 steps of ~32 windows from the shipped weights) with the shipped recipe
# (1 BM25 distractor, shared normalisation 1.0, 5% warm-up, linear decay to 0, seed 42) at peak rate LR:
# 5e-5, the first epoch's, moved the converged weights off their optimum in 300 steps (both arms scored
# under the shipped weights), so the arms run at 2e-5, each rate in its own folder.
# Every arm adds RATIO new examples per training question (0.5: a third of what an arm reads is
# augmented), so the arms differ only in what the augmentation is.  Then reader_ablation.py scores
# every model on gold F1 (1,000 dev questions), open-domain EM (500) and the held-out table rows.
#
# A long CPU job: start it only when no other training run uses the cores (never two at once).
# Each arm is scored as soon as it is trained, into benchmarks/results/reader_augment_ablation_lr$LR.json
# (committed: commit it after each arm), with each question's EM and F1 for paired comparisons
# (`python benchmarks/reader_ablation.py --report FILE --against runs/augment/lr$LR/base`), and an arm
# whose row is there is skipped: the ablation goes
# on across sessions on other machines, where runs/ (ignored, the arms' weights) is gone.  Within a
# session it also resumes from runs/: an arm with a metrics.json is not trained again (an arm stopped
# before its one checkpoint starts again: the best-model pick needs eval and save steps to agree, and
# more evaluations would let it pick an earlier step).  Each arm reads a seeded 12,000 of
# the 87,599 training questions (300 steps x 32 windows use under 10,000 windows): tokenising all of them
# took 8 minutes per arm on 2 cores, longer than a third of the arm's training.
#   bash benchmarks/reader_augment_arms.sh            # PY=... SQUAD=... RATIO=... LR=... override the defaults
#   COMBINED="context=0.3,tables=0.2" bash benchmarks/reader_augment_arms.sh   # + one arm of the winners
set -u
cd "$(dirname "$0")/.."  # the repository root; arms go to runs/augment/ (ignored)
PY=${PY:-.venv/bin/python}
SQUAD=${SQUAD:-../shared/data/squad}
RATIO=${RATIO:-0.5}
LR=${LR:-2e-5}
ROOT=runs/augment  # what every rate shares (the table questions); each rate's arms in a folder of their own
OUT=$ROOT/lr$LR
mkdir -p "$OUT"
# table questions over rows read back by ingest's loader: enough for RATIO x 87,599 questions
TABLES=$ROOT/tables-train.json.gz
[ -f "$TABLES" ] || $PY -m ingest.table_questions --out "$TABLES" --questions 45000 --seed 1 > "$ROOT/tables.log" 2>&1 \
  || { echo "table questions failed: see $ROOT/tables.log" >&2; exit 1; }
COMMON="--train $SQUAD/train-v1.1.json.gz --eval $SQUAD/dev-v1.1-public.json --base models/minilm-squad --lr $LR --warmup 0.05 --batch-size 32 --max-steps 300 --eval-steps 300 --save-steps 300 --max-eval-examples 200 --logging-steps 25 --distractors 1 --shared-norm 1.0 --max-train-examples 12000 --resume"
SCORES=benchmarks/results/reader_augment_ablation_lr$LR.json
# has MODEL a row in SCORES (0), one without per-question scores (2: scored before they were kept), one without
# the typed split (3: scored before it was added), or none (1)?
scored() { $PY -c 'import json, sys
try: rows = {r["model"]: r for r in json.load(open(sys.argv[1]))["results"]}
except FileNotFoundError: sys.exit(1)
row = rows.get(sys.argv[2])
sys.exit(1 if row is None else 2 if "em_each" not in (row.get("gold") or {}) else 3 if "typed" not in row else 0)' \
  "$SCORES" "$1"; }
# gold F1 on 1,000 dev questions, open-domain EM on 500, the held-out table rows: one row per model in SCORES
score() { $PY benchmarks/reader_ablation.py "$@" --data "$SQUAD/dev-v1.1-public.json" --gold 1000 --open 500 \
  --top-k 5 --out "$SCORES" --merge > "$ROOT/score.log" 2>&1 || { echo "scoring $1 failed: see $ROOT/score.log" >&2
  exit 1; }; }
# a row without per-question scores is scored again where its weights are on this machine (the paired comparisons
# need them), and kept as it is where they are not (nothing is trained again for them); a row without the typed
# split gets that split alone (STATUS 3)
rescore() { [ -f "$1/config.json" ] || return 0; if [ "$2" = 3 ]; then score "$1" --splits typed; else score "$1"; fi; }
# an arm that fails stops the script: scoring the arms that are there would compare a partial set
arm() { name=$1; shift; scored "$OUT/$name"; st=$?; case $st in 0) return ;; 2|3) rescore "$OUT/$name" $st; return ;; esac
  [ -f "$OUT/$name/metrics.json" ] || $PY -m rag_qa train $COMMON --output "$OUT/$name" "$@" \
  > "$OUT/$name.log" 2>&1 || { echo "arm $name failed: see $OUT/$name.log" >&2; exit 1; }
  score "$OUT/$name"; }
scored models/minilm-squad; st=$?; case $st in 1) score models/minilm-squad ;; 2|3) rescore models/minilm-squad $st ;; esac
arm base
arm context --augment "context=$RATIO"
arm long --augment "long=$RATIO"
arm typed --augment "typed=$RATIO"
arm tables --augment "tables=$RATIO" --augment-tables "$TABLES"
[ -z "${COMBINED:-}" ] || arm combined --augment "$COMBINED" --augment-tables "$TABLES"
