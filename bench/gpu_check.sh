#!/usr/bin/env bash
# The GPU check: on a machine with torch+CUDA and no network, run
#   1. the GPU-marked tests (bf16 training, GradCache in bf16, resume, GPU evaluation = CPU),
#   2. bench/train_throughput.py against sentence-transformers (ratio, MFU against the card's bf16 peak),
#   3. bench/eval_throughput.py against sentence-transformers,
#   4. a 2x2 study (mono/hybrid x 2 sizes) end to end through a worker and the CSV export.
# Each part prints its one-line result first, then its output. Exit status: the number of failed parts.
#
#   bench/gpu_check.sh                      # on the GPU machine (model embedded:e5-small)
#   bench/gpu_check.sh --device cpu --tiny  # a dry run of the script itself on a CPU (tiny model and sizes)
set -u
cd "$(dirname "$0")/.."
DEVICE=cuda
TINY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --tiny) TINY=1; shift ;;
    -h|--help) sed -n 2,11p "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown option $1; use --device cpu|cuda and --tiny" >&2; exit 2 ;;
  esac
done
PYTHON="${PYTHON:-python}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1
export HYBRIDSCALE_GPU_TEST_DEVICE="$DEVICE"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
if [ "$TINY" = 1 ]; then
  MODEL="tiny:"; TRAIN_ARGS=(--steps 2 --batch-size 8 --max-length 32); EVAL_ARGS=(--synthetic --passages 200 --queries 20)
  SIZES="[8, 16]"; BATCH=4; STEPS=2
else
  MODEL="embedded:e5-small"; TRAIN_ARGS=(--steps 20 --batch-size 100 --max-length 128); EVAL_ARGS=(--miracl-synthetic)
  SIZES="[100, 300]"; BATCH=32; STEPS=50
fi
FAILED=0

part() {  # part NAME SUMMARY-COMMAND -- COMMAND...: run COMMAND, then print one line and its output
  local name="$1" summary="$2"; shift 3
  local log="$WORK/$name.log" start=$SECONDS
  if "$@" >"$log" 2>&1; then
    echo "[$name] PASS in $((SECONDS - start)) s: $(eval "$summary" 2>/dev/null)"
  else
    echo "[$name] FAIL in $((SECONDS - start)) s: $(tail -n 1 "$log")"; FAILED=$((FAILED + 1))
  fi
  sed 's/^/    /' "$log"
}

part gpu-tests "tail -n 1 $WORK/gpu-tests.log" -- \
  "$PYTHON" -m pytest -q -p no:cacheprovider -m gpu tests/gpu
part train-throughput "grep -E '^ *ratio |% of peak\)' $WORK/train-throughput.log | tr -s ' ' | paste -sd ';' | cut -c1-300" -- \
  "$PYTHON" bench/train_throughput.py --model "$MODEL" --device "$DEVICE" "${TRAIN_ARGS[@]}"
part eval-throughput "tail -n 2 $WORK/eval-throughput.log | tr -s ' ' | paste -sd ';' | cut -c1-300" -- \
  "$PYTHON" bench/eval_throughput.py --model "$MODEL" --device "$DEVICE" "${EVAL_ARGS[@]}"

cat >"$WORK/study.json" <<JSON
{"name": "gpu check 2x2", "strategies": ["mono", "hybrid"], "train_sizes": $SIZES, "include_baseline": false,
 "template": {"model": "$MODEL", "train_languages": ["en", "de"], "batch_size": $BATCH, "budget": "steps",
              "steps": $STEPS, "max_length": 64,
              "evaluations": [{"dataset": "flores", "languages": ["en", "sw", "yo"], "split": "test", "max_queries": 32}]}}
JSON
study() {
  "$PYTHON" -m hybridscale --db "$WORK/check.db" submit "$WORK/study.json" &&
  "$PYTHON" -m hybridscale --db "$WORK/check.db" worker --exit-when-empty --device "$DEVICE" &&
  "$PYTHON" -m hybridscale --db "$WORK/check.db" export --csv "$WORK/check.csv" &&
  "$PYTHON" - "$WORK/check.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="", encoding="utf-8")))
runs = {r["run_id"] for r in rows}
assert len(runs) == 4, f"{len(runs)} runs in the CSV, expected 4"
print(f"{len(runs)} runs done, {len(rows)} metric rows")
PY
}
part study-2x2 "tail -n 1 $WORK/study-2x2.log" -- study

echo "gpu_check: $((4 - FAILED)) of 4 parts passed on $DEVICE$([ "$TINY" = 1 ] && echo ' (tiny)')"
exit "$FAILED"
