#!/usr/bin/env bash
# Create the baseline virtualenvs for the side-by-side benchmark (make bench calls this).
#
#   benchmarks/setup_baselines.sh [haystack|langchain|all] [--force]
#
#   benchmarks/.venv-haystack   <- benchmarks/envs/haystack/requirements.txt   (haystack-ai 2.x)
#   benchmarks/.venv-langchain  <- benchmarks/envs/langchain/requirements.txt  (transformers 4.x)
#
# Idempotent: a venv whose .requirements.sha256 stamp matches its requirements file is left
# alone; a missing, half-built or out-of-date one is rebuilt from scratch.  torch==2.13.0 goes
# in first, on its own, so pip takes the local CPU build instead of the multi-GB CUDA one.
# Neither venv touches the project's own .venv.  PYTHON overrides the interpreter (3.11+).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
which="all"
force=0
for arg in "$@"; do
    case "$arg" in
        haystack | langchain | all) which="$arg" ;;
        --force) force=1 ;;
        -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "setup_baselines.sh: unknown argument '$arg' (use haystack, langchain, all, --force)" >&2; exit 2 ;;
    esac
done

python="${PYTHON:-}"
if [[ -z "$python" ]]; then
    for cand in python3.11 python3; do
        if command -v "$cand" >/dev/null 2>&1; then python="$cand"; break; fi
    done
fi
if [[ -z "$python" ]] || ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "setup_baselines.sh: need Python 3.11+ (set PYTHON=/path/to/python3.11)" >&2
    exit 2
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1

# import check per venv: the APIs the runners use must be there
check_haystack='
import warnings; warnings.simplefilter("ignore")
from haystack.components.readers import ExtractiveReader
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever
from haystack.components.embedders import SentenceTransformersDocumentEmbedder
import accelerate, sentence_transformers
'
check_langchain='
from transformers.pipelines import SUPPORTED_TASKS
assert "question-answering" in SUPPORTED_TASKS, "this transformers has no question-answering pipeline"
from langchain_text_splitters import RecursiveCharacterTextSplitter
from langchain_community.vectorstores import FAISS
from langchain_huggingface import HuggingFaceEmbeddings
import faiss, sentence_transformers
'

setup_one() {
    local name="$1" check="$2"
    local venv="$here/.venv-$name" req="$here/envs/$name/requirements.txt"
    local want
    want="$(sha256sum "$req" | cut -d' ' -f1)"
    if [[ $force -eq 0 && -f "$venv/.requirements.sha256" && "$(cat "$venv/.requirements.sha256")" == "$want" ]]; then
        echo "setup_baselines: $venv is up to date, skipping" >&2
        return 0
    fi
    echo "setup_baselines: building $venv from $req" >&2
    local t0=$SECONDS
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -q torch==2.13.0
    "$venv/bin/pip" install -q -r "$req"
    HF_HUB_OFFLINE=1 HAYSTACK_TELEMETRY_ENABLED=False "$venv/bin/python" -c "$check"
    echo "$want" >"$venv/.requirements.sha256"
    echo "setup_baselines: $venv ready in $((SECONDS - t0))s ($(du -sh "$venv" | cut -f1))" >&2
}

case "$which" in
    haystack) setup_one haystack "$check_haystack" ;;
    langchain) setup_one langchain "$check_langchain" ;;
    all)
        # in parallel: the installs mostly wait on pip, not on the CPU
        setup_one haystack "$check_haystack" &
        hs=$!
        setup_one langchain "$check_langchain" &
        lc=$!
        rc=0
        wait "$hs" || rc=1
        wait "$lc" || rc=1
        if [[ $rc -ne 0 ]]; then echo "setup_baselines: a baseline venv failed to build (see above)" >&2; fi
        exit "$rc"
        ;;
esac
