#!/usr/bin/env bash
# The prepared GPU check of issue 18, for a bare one-GPU machine without network (see benchmarks/gpu/README.md):
#   bash benchmarks/gpu/run.sh             # on the GPU machine, from anywhere; about 6-8 minutes
#   bash benchmarks/gpu/run.sh --dry-run   # the same stages on the CPU with tiny settings (or XLMR_GPU_DRY_RUN=1)
# Stages, each under its own `timeout` and all within XLMR_GPU_BUDGET_S (default 460 s) in total; a failed stage is
# recorded and the next one runs:
#   facts          machine facts: nvidia-smi, torch / CUDA / transformers / accelerate versions, the GPU
#   install        missing packages from benchmarks/gpu/wheels/ (pip --no-index --no-deps --target), the project
#                  importable (editable install, or src on PYTHONPATH)
#   pytest         python -m pytest -m gpu tests/gpu (JUnit XML kept)
#   gemm           the bf16 GEMM rate of this GPU (8192^3, CUDA events): the MFU denominator
#   bench_model    benchmarks/bench_model.py --device cuda at 32x512, bf16 (ours vs transformers' model)
#   bench_pretrain benchmarks/bench_pretrain.py --device cuda, base shape, seq 512, bf16 (ours vs run_mlm's path)
#   maxbatch       the largest micro-batch at seq 512 with and without activation checkpointing (~60 s)
#   bench_pretrain_compile   the same as bench_pretrain with torch_compile, only if time is left
#   collect        one JSON: $OUT/gpu_results.json when $OUT is set, else benchmarks/gpu/results.json
# Environment: PYTHON (default python3), XLMR_GPU_BUDGET_S, XLMR_GPU_WORK (default /tmp/xlmr_gpu_check),
# XLMR_GPU_TRANSFORMERS (auto | carried | image), XLMR_GPU_SKIP (stage names to skip, space-separated),
# XLMR_GPU_WHEELS (default benchmarks/gpu/wheels).
set -u
cd "$(dirname "$0")/../.." || exit 1
root="$(pwd)"

dry=0
[ "${XLMR_GPU_DRY_RUN:-0}" = "1" ] && dry=1
for arg in "$@"; do
    case "$arg" in
        --dry-run) dry=1 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg (allowed: --dry-run)" >&2; exit 2 ;;
    esac
done

PY="${PYTHON:-python3}"
budget="${XLMR_GPU_BUDGET_S:-460}"
work="${XLMR_GPU_WORK:-/tmp/xlmr_gpu_check}"
if [ -n "${OUT:-}" ]; then result="$OUT/gpu_results.json"; logs_out="$OUT/gpu_logs.tar.gz"
else result="$root/benchmarks/gpu/results.json"; logs_out="$root/benchmarks/gpu/logs.tar.gz"; fi
rm -rf "$work" && mkdir -p "$work/logs" "$work/site" || exit 1
stages="$work/stages.jsonl"
: > "$stages"
began=$(date +%s)
reserve=25  # seconds kept for collect

export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
export HF_HUB_DISABLE_TELEMETRY=1 TORCH_EXTENSIONS_DIR="$work/torch_extensions" HF_HOME="$work/hf_home"
export XLMR_GPU_WORK="$work"
dry_flag=()
if [ "$dry" = "1" ]; then
    export CUDA_VISIBLE_DEVICES=""  # everything on the CPU, also on a machine with a GPU
    dry_flag=(--dry-run)
fi

record() {  # stage status seconds rc [note]
    printf '{"stage": "%s", "status": "%s", "seconds": %s, "rc": %s, "log": "logs/%s.log", "note": "%s"}\n' \
        "$1" "$2" "$3" "$4" "$1" "${5:-}" >> "$stages"
}

# stage NAME LIMIT_S COMMAND...: run COMMAND under `timeout`, capped by what is left of the budget
stage() {
    local name="$1" limit="$2"
    shift 2
    local now left
    now=$(date +%s)
    left=$(( budget - (now - began) - reserve ))
    case " ${XLMR_GPU_SKIP:-} " in *" $name "*)
        echo "=== $name: skipped (XLMR_GPU_SKIP)"; record "$name" skipped 0 null XLMR_GPU_SKIP; return 0 ;; esac
    if [ "$left" -lt 10 ]; then
        echo "=== $name: skipped (time budget of ${budget}s spent)"; record "$name" skipped 0 null budget; return 0
    fi
    [ "$limit" -gt "$left" ] && limit="$left"
    echo "=== $name (timeout ${limit}s): $*"
    local t0 t1 rc status
    t0=$(date +%s.%N)
    timeout -k 10 "$limit" "$@" > "$work/logs/$name.log" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    case "$rc" in 0) status=ok ;; 124|137) status=timeout ;; *) status=failed ;; esac
    tail -n "${XLMR_GPU_TAIL:-12}" "$work/logs/$name.log" | sed 's/^/    /'
    local seconds
    seconds=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')
    echo "=== $name: $status (rc $rc, ${seconds}s)"
    local note=""
    [ "$status" = timeout ] && note="killed after ${limit}s"
    record "$name" "$status" "$seconds" "$rc" "$note"
    return 0
}

# ------------------------------------------------------------------------------------------------------- stages
stage facts 60 "$PY" benchmarks/gpu/gpu_check.py facts --out "$work/facts.json"

stage install 120 "$PY" benchmarks/gpu/gpu_check.py install --wheels "${XLMR_GPU_WHEELS:-benchmarks/gpu/wheels}" \
    --site "$work/site" \
    --env "$work/env.sh"
# shellcheck disable=SC1091
[ -f "$work/env.sh" ] && . "$work/env.sh"
[ -f "$work/env.sh" ] || export PYTHONPATH="$work/site:$root/src${PYTHONPATH:+:$PYTHONPATH}"
echo "PYTHONPATH=$PYTHONPATH"

stage pytest 180 "$PY" -m pytest -m gpu tests/gpu -q -p no:cacheprovider --junitxml "$work/junit.xml" \
    -o junit_family=xunit2

stage gemm 45 "$PY" benchmarks/gpu/gpu_check.py gemm --out "$work/gemm.json" "${dry_flag[@]}"
peak=$("$PY" -c "import json; print(json.load(open('$work/gemm.json'))['bf16_flops'])" 2>/dev/null || true)
peak_flag=()
[ -n "$peak" ] && peak_flag=(--peak-flops "$peak")

tiny='{"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 128, "vocab_size": 1000}'
if [ "$dry" = "1" ]; then
    stage bench_model 150 "$PY" benchmarks/bench_model.py --device cpu --model-overrides "$tiny" --shapes 2x64 \
        --steps 2 --warmup 1 --infer-docs 4 --infer-max-len 64 --infer-repeats 2 --wait-idle 0 --no-rss-check \
        --json "$work/bench_model.json"
    stage bench_pretrain 180 "$PY" benchmarks/bench_pretrain.py --device cpu --shapes debug --steps 4 --warmup 1 \
        --micro-batch 4 --wait-idle 0 --workdir "$work/bench_pretrain" "${peak_flag[@]}" \
        --json "$work/bench_pretrain.json"
else
    stage bench_model 120 "$PY" benchmarks/bench_model.py --device cuda --shapes 32x512 --steps 10 --warmup 3 \
        --infer-docs 64 --infer-batch 16 --infer-repeats 5 --wait-idle 0 --no-rss-check \
        --json "$work/bench_model.json"
    stage bench_pretrain 180 "$PY" benchmarks/bench_pretrain.py --device cuda --shapes base --micro-batch 32 \
        --steps 40 --warmup 10 --logging-steps 5 --num-workers 2 --wait-idle 0 --workdir "$work/bench_pretrain" \
        "${peak_flag[@]}" --json "$work/bench_pretrain.json"
fi

stage maxbatch 100 env PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True "$PY" benchmarks/gpu/gpu_check.py maxbatch \
    --out "$work/maxbatch.json" --budget-s 60 "${dry_flag[@]}"

if [ "$dry" = "0" ] && [ $(( budget - ($(date +%s) - began) - reserve )) -ge 120 ]; then
    stage bench_pretrain_compile 150 "$PY" benchmarks/bench_pretrain.py --device cuda --shapes base --micro-batch 32 \
        --steps 40 --warmup 15 --logging-steps 5 --num-workers 2 --torch-compile --wait-idle 0 \
        --workdir "$work/bench_pretrain" "${peak_flag[@]}" --json "$work/bench_pretrain_compile.json"
else
    why="$([ "$dry" = "1" ] && echo "dry run: GPU only" || echo "under 120 s left")"
    echo "=== bench_pretrain_compile: skipped ($why)"
    record bench_pretrain_compile skipped 0 null "$why"
fi

# ------------------------------------------------------------------------------------------------------ collect
mkdir -p "$(dirname "$result")"
timeout -k 5 "$reserve" "$PY" benchmarks/gpu/gpu_check.py collect --work "$work" --out "$result" "${dry_flag[@]}" \
    || echo "collect failed: the stage outputs are in $work"
tar -czf "$logs_out" -C "$work" logs stages.jsonl $(cd "$work" && ls ./*.json ./*.xml 2>/dev/null) 2>/dev/null \
    && echo "logs: $logs_out"
echo "total $(( $(date +%s) - began ))s (budget ${budget}s)"
