#!/usr/bin/env bash
# Everything that needs a GPU, in one run of at most ~10 minutes on one modern GPU.
#
#   bash benchmarks/gpu_check.sh                      # on the GPU machine -> results/gpu_check/
#   bash benchmarks/gpu_check.sh /tmp/gpu             # another output folder (or OUT=/tmp/gpu)
#   bash benchmarks/gpu_check.sh --wikipedia DIR      # the published Wikipedia files elsewhere (default:
#                                                     # ../shared/data/wikipedia, else shared/data/wikipedia)
#   bash benchmarks/gpu_check.sh --dry                # every size shrunk, on the CPU: ~45 s of CPU time
#   bash benchmarks/gpu_check.sh --steps wiki_nrch,eval_nus   # only these steps (e.g. a rerun)
#
# Steps, each a separate process under `timeout` (its own limit, capped by what is left of
# the total budget, GPU_CHECK_BUDGET seconds, default 570):
#   versions        nvidia-smi, torch, CUDA and cuDNN versions, the devices torch sees
#   cuda_tests      the suite's CUDA tests (tests/test_cuda.py, marked cuda): device placement, GPU evaluation
#                   against the CPU to 1e-9, GPU slots with the real device count
#   epoch_<method>  benchmarks/bench_epoch.py for baseline, NRCH, SCBCH, DCGMH at MIRFlickr
#                   scale (10,000 generated pairs, 4,096-d image, 1,386-d text, 24 classes,
#                   64 bits, published widths), 2 epochs after each method's warm-up:
#                   seconds per epoch (the second) and peak CUDA memory
#   wiki_nrch       benchmarks/run_cell.py: one published NRCH cell of config/wikipedia.yaml
#   wiki_scbch      the same for SCBCH (nrch noise 0.5, 64 bits, seed 0, sound): mAP@all
#   eval_nus        benchmarks/bench_evaluate.py at NUS-WIDE scale (2,100 x 193,734): mAP@all,
#                   mAP@k and P@N on the GPU against the CPU path (numba), to 1e-9
#
# Output folder: gpu_check.md and gpu_check.csv (one row per step, appended as each step ends:
# status, seconds, limit, result), steps/<step>.json (each step's numbers), logs/<step>.log,
# work/ (the Wikipedia cells' dataset, noise and run folders). Without --dry, a machine where
# torch sees no CUDA device stops after `versions`. Exit status: 0 when every step passed,
# else 1 with the failing steps named (their rows say why: FAIL, TIMEOUT, or skipped when
# `versions` failed or the budget was spent).
# PYTHON picks the interpreter (default: .venv/bin/python of this checkout, else python3).
set -uo pipefail
{  # the whole script is read before it runs: editing this file mid-run cannot break a run

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DRY=0
OUT_DIR="${OUT:-}"
WIKI="${WIKIPEDIA:-}"
BUDGET="${GPU_CHECK_BUDGET:-570}"
ONLY=""
usage() { sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --dry) DRY=1 ;;
        --wikipedia) WIKI="${2:?--wikipedia needs a folder}"; shift ;;
        --steps) ONLY="${2:?--steps needs a comma-separated list}"; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) echo "gpu_check: unknown option $1" >&2; usage >&2; exit 2 ;;
        *) OUT_DIR="$1" ;;
    esac
    shift
done
OUT_DIR="${OUT_DIR:-$ROOT/results/gpu_check}"
mkdir -p "$OUT_DIR" && OUT_DIR="$(cd "$OUT_DIR" && pwd)"
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's library, whatever is installed
export PYTHONUNBUFFERED=1
cd "$ROOT" || exit 2

ALL_STEPS=(versions cuda_tests epoch_baseline epoch_nrch epoch_scbch epoch_dcgmh wiki_nrch wiki_scbch eval_nus)
STEPS=("${ALL_STEPS[@]}")
if [ -n "$ONLY" ]; then
    STEPS=()
    for step in "${ALL_STEPS[@]}"; do [[ ",$ONLY," == *",$step,"* ]] && STEPS+=("$step"); done
    for step in ${ONLY//,/ }; do
        [[ " ${ALL_STEPS[*]} " == *" $step "* ]] || { echo "gpu_check: unknown step '$step' (steps: ${ALL_STEPS[*]})" >&2; exit 2; }
    done
fi
S="$OUT_DIR/steps"
W="$OUT_DIR/work"
rm -rf "$W" && mkdir -p "$W"
"$PYTHON" benchmarks/gpu_check.py start "$OUT_DIR" --mode "$([ "$DRY" = 1 ] && echo dry || echo full)" \
    --steps "${STEPS[@]}" || { echo "gpu_check: cannot write the table in $OUT_DIR" >&2; exit 2; }

# -- the steps' commands: full size, or --dry ------------------------------------------------
q() { printf '%q' "$1"; }  # one shell word, whatever the path holds
PY="$(q "$PYTHON")"
SQ="$(q "$S")"
WQ="$(q "$W")"
# Wikipedia: --wikipedia, else config/wikipedia.yaml's ../shared/data/wikipedia, else a copy inside
# the checkout (shared/data/wikipedia, 1.3 MB: what travels with a working tree to a GPU machine)
if [ -z "$WIKI" ] && [ ! -d "$ROOT/../shared/data/wikipedia" ] && [ -d "$ROOT/shared/data/wikipedia" ]; then
    WIKI="$ROOT/shared/data/wikipedia"
fi
WIKI_ARG=""
[ -n "$WIKI" ] && WIKI_ARG="--data $(q "$WIKI")"
declare -A EPOCH=([baseline]=0 [nrch]=19 [scbch]=5 [dcgmh]=6)  # first epochs after warm-up
if [ "$DRY" = 1 ]; then
    REQUIRE="" ; EPOCH_SIZE="--n 256 --image-dim 64 --text-dim 32 --hidden 32 --threads 1"
    CELL_SIZE="--n-validation 20"
    NRCH_SET='{"epochs": 2, "warmup_epochs": 1, "eval_every": 1, "num_gradual": 2, "image_hidden": [32, 32], "text_hidden": [32]}'
    SCBCH_SET='{"epochs": 2, "warmup_epochs": 1, "image_hidden": [32, 32], "text_hidden": [32]}'
    EVAL_SIZE="--queries 100 --db 2000 --ref-queries 50 --threads 1 --device cpu"
    # generous: on a loaded CPU a dry step takes 5-40 s, nearly all of it Python and torch starting up
    declare -A LIMIT=([versions]=60 [cuda_tests]=120 [epoch]=120 [wiki_nrch]=120 [wiki_scbch]=120 [eval_nus]=120)
else
    REQUIRE="--require-cuda"; EPOCH_SIZE=""; CELL_SIZE=""; NRCH_SET='{}'; SCBCH_SET='{}'
    EVAL_SIZE="--scale nus --ref-queries 200 --threads $(nproc) --device cuda"
    declare -A LIMIT=([versions]=30 [cuda_tests]=90 [epoch]=45 [wiki_nrch]=100 [wiki_scbch]=70 [eval_nus]=80)
fi

declare -A CMD
CMD[versions]="$PY benchmarks/gpu_check.py versions --json $SQ/versions.json $REQUIRE"
CMD[cuda_tests]="$PY -m pytest -q -p no:cacheprovider tests/test_cuda.py \
--junitxml $WQ/cuda_tests.xml; rc=\$?; $PY benchmarks/gpu_check.py junit $WQ/cuda_tests.xml --json $SQ/cuda_tests.json \
$([ "$DRY" = 1 ] || echo --fail-on-skip); j=\$?; exit \$(( rc != 0 && rc != 5 ? rc : j ))"
for m in baseline nrch scbch dcgmh; do
    CMD[epoch_$m]="$PY benchmarks/bench_epoch.py --method $m --epoch ${EPOCH[$m]} --epochs 2 $EPOCH_SIZE \
--json $SQ/epoch_$m.json"
    LIMIT[epoch_$m]=${LIMIT[epoch]}
done
CMD[wiki_nrch]="$PY benchmarks/run_cell.py --method nrch $WIKI_ARG $CELL_SIZE --set $(q "$NRCH_SET") \
--out $WQ/wiki_nrch --json $SQ/wiki_nrch.json"
CMD[wiki_scbch]="$PY benchmarks/run_cell.py --method scbch $WIKI_ARG $CELL_SIZE --set $(q "$SCBCH_SET") \
--out $WQ/wiki_scbch --json $SQ/wiki_scbch.json"
CMD[eval_nus]="$PY benchmarks/bench_evaluate.py --backends numba $EVAL_SIZE --json $SQ/eval_nus.json"

# -- running them ------------------------------------------------------------------------
FAILED=()
NOT_RUN=()
CURRENT=""
row() { "$PYTHON" benchmarks/gpu_check.py row "$OUT_DIR" "$@" || echo "gpu_check: could not write the row of $1" >&2; }
on_signal() {  # killed from outside: the running step is stopped and still gets its row
    [ -n "${CHILD:-}" ] && kill -TERM "$CHILD" 2>/dev/null && wait "$CHILD" 2>/dev/null
    [ -n "$CURRENT" ] && row "$CURRENT" killed "-" "$((SECONDS - T0))" "${LIMIT[$CURRENT]}"
    echo "gpu_check: interrupted during step ${CURRENT:-none}; table in $OUT_DIR/gpu_check.md" >&2
    exit 1
}
trap on_signal INT TERM
ABORT=""
for step in "${STEPS[@]}"; do
    left=$((BUDGET - SECONDS))
    limit=${LIMIT[$step]}
    [ "$left" -lt "$limit" ] && limit=$left
    [ "$limit" -lt 0 ] && limit=0
    if [ -n "$ABORT" ] || [ "$limit" -lt 5 ]; then
        echo "${ABORT:-total budget of $BUDGET s spent}" > "$OUT_DIR/logs/$step.log"
        row "$step" skipped "-" 0 "$limit"
        NOT_RUN+=("$step")
        continue
    fi
    echo "[gpu_check] $step (limit $limit s): ${CMD[$step]}"
    CURRENT=$step
    T0=$SECONDS
    timeout --kill-after=10 "$limit" bash -c "${CMD[$step]}" > "$OUT_DIR/logs/$step.log" 2>&1 &
    CHILD=$!
    wait "$CHILD"
    rc=$?
    CHILD=""
    CURRENT=""
    case $rc in
        0) status=ok ;;
        124|137) status=TIMEOUT; echo "timed out after $limit s" >> "$OUT_DIR/logs/$step.log" ;;
        *) status=FAIL ;;
    esac
    row "$step" "$status" "$rc" "$((SECONDS - T0))" "$limit"
    if [ "$status" != ok ]; then
        FAILED+=("$step")
        [ "$step" = versions ] && [ "$DRY" = 0 ] && ABORT="not run: step versions failed (no CUDA device?)"
    fi
done

echo "[gpu_check] table: $OUT_DIR/gpu_check.md and $OUT_DIR/gpu_check.csv ($SECONDS s)"
if [ $((${#FAILED[@]} + ${#NOT_RUN[@]})) -gt 0 ]; then
    echo "gpu_check: FAILED steps: ${FAILED[*]:-none}; not run: ${NOT_RUN[*]:-none} (see their rows and" \
        "$OUT_DIR/logs/)" >&2
    exit 1
fi
exit 0
}
