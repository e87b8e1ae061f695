#!/usr/bin/env bash
# Runs on the GPU host (device tool) from the repo root, with .devcarry/ carried (see issue6_run.sh; the
# store's libpq and its libldap/liblber/libsasl2 are carried in .devcarry/lib too).
#   tools/device/issue6_soak.sh tests      the GPU tests (engine, kernels)
#   tools/device/issue6_soak.sh soak [S]   synthesize r1-distill-qwen-1.5b, then tests/integration/serve_soak.sh
#                                          on cuda for S seconds (default 420) at 64 mixed clients + bench -c 192 (greedy)
#   tools/device/issue6_soak.sh fp8        gpu_bench on the 7B and the 1.5B, bf16 then --fp8 (batch 1, TTFT, 64, 256)
#   tools/device/issue6_soak.sh deepseek   gpu_bench on deepseek-v3-reduced: FP8 weights kept vs dequantized to bf16
#   tools/device/issue6_soak.sh sampling   gpu_bench on the 1.5B: batch 256 greedy, then sampled decoding (T 0.8,
#                                          top_p 0.95, 5 logprobs) with the device sampler vs the host sampler
#   tools/device/issue6_soak.sh small      gpu_bench batch 1 (256 tokens), 2 and 8 on the 1.5B and the 7B, bf16 and
#                                          --fp8: as built, without the GEMVs' weight prefetch, and without prefetch
#                                          and norm/residual fusions; then a per-kernel profile of the 1.5B's batch 1
#   tools/device/issue6_soak.sh attention  the GPU tests, then gpu_bench batch 1, 2 and 8 (1.5B and 7B, bf16 and --fp8)
#                                          with clustered decode attention and without (HEARTH_CUDA_NO_ATTENTION_CLUSTER);
#                                          then Nsight Compute's duration of every kernel of the 1.5B's batch-1 steps
set -uo pipefail
# The binaries and the tokenizer may travel packed (the carried tree is limited to 64 MiB):
# .devcarry/packed.tar.xz holds bin/ and npm/.
if [[ -f .devcarry/packed.tar.xz && ! -d .devcarry/bin ]]; then tar xJf .devcarry/packed.tar.xz -C .devcarry; fi
export LD_LIBRARY_PATH=$PWD/.devcarry/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
if [[ ! -e /work/main ]]; then mkdir -p /work && ln -s "$PWD" /work/main; fi
B=$PWD/.devcarry/bin
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
if ldd "$B/hearth" | grep "not found"; then echo "hearth: missing shared libraries"; exit 1; fi
M=/tmp/hearth-models/r1-distill-qwen-1.5b
M7=/tmp/hearth-models/r1-distill-qwen-7b
synth() {  # PRESET DIR: a random-weight model of the preset's shapes, unless already there
  [[ -f $2/config.json ]] && return 0
  "$B/hearth" model synth --preset "$1" --out "$2" --tokenizer-dir "$PWD/.devcarry/npm/node_modules" --force >/dev/null
}
synth_1_5b() { synth r1-distill-qwen-1.5b "$M"; }
synth_7b() { synth r1-distill-qwen-7b "$M7"; }
case "${1:-}" in
  tests)
    rc=0
    for t in engine_gpu_test kernels_gpu_test; do
      "$B/$t" >"/tmp/$t.log" 2>&1
      st=$?
      grep -v "^\[ RUN\|^\[       OK\|cuda: " "/tmp/$t.log"
      echo "$t: exit status $st"
      [[ $st -eq 0 ]] || rc=1
    done
    exit $rc
    ;;
  soak)
    synth_1_5b || exit 1
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader -l 30 &
    SMI=$!
    HEARTH_BIN=$B/hearth SOAK_SECONDS=${2:-420} SOAK_DEVICE=cuda SOAK_MODEL=$M SOAK_THREADS=64 SOAK_BENCH_C=192 \
      SOAK_BENCH_TEMPERATURE=0 tests/integration/serve_soak.sh
    rc=$?
    kill $SMI
    exit $rc
    ;;
  sampling)
    synth_1_5b || exit 1
    "$B/gpu_bench" --model "$M" --label r1-1.5b --decode-tokens 64 --ttft-prompt 0 --batches 256 \
      --sampled-batch 256 --compare-host-sampler
    ;;
  fp8)
    synth_1_5b || exit 1
    synth_7b || exit 1
    for m in "$M7" "$M"; do
      for q in "" --fp8; do
        "$B/gpu_bench" --model "$m" --label "$(basename "$m")${q:+ fp8}" --decode-tokens 128 --batches 64 256 \
          --sampled-batch 0 $q 2>&1 | grep '^{' | grep -v '"load"'
      done
    done
    ;;
  small)
    synth_1_5b || exit 1
    synth_7b || exit 1
    for m in "$M" "$M7"; do
      for q in "" --fp8; do
        for env in "" HEARTH_CUDA_NO_GEMV_PREFETCH=1 "HEARTH_CUDA_NO_GEMV_PREFETCH=1 HEARTH_CUDA_NO_GEMV_FUSION=1"; do
          env $env "$B/gpu_bench" --model "$m" --label "$(basename "$m")${q:+ fp8}${env:+ $env}" \
            --decode-tokens 256 --ttft-prompt 0 --batches 2 8 --sampled-batch 0 $q 2>&1 | grep '^{' | grep -v '"load"'
        done
      done
    done
    HEARTH_CUDA_PROFILE=1 "$B/gpu_bench" --model "$M" --label profile --decode-tokens 64 --ttft-prompt 0 \
      --batches 1 --sampled-batch 0 2>&1 | grep -v '^{' | tail -40
    ;;
  attention)
    "$0" tests || exit 1
    synth_1_5b || exit 1
    synth_7b || exit 1
    for m in "$M" "$M7"; do
      for q in "" --fp8; do
        for env in "" HEARTH_CUDA_NO_ATTENTION_CLUSTER=1; do
          env $env "$B/gpu_bench" --model "$m" --label "$(basename "$m")${q:+ fp8}${env:+ $env}" \
            --decode-tokens 256 --ttft-prompt 0 --batches 2 8 --sampled-batch 0 $q 2>&1 | grep '^{' | grep -v '"load"'
        done
      done
    done
    # Kernel durations at batch 1 (graphs off so each launch is its own kernel; caches left alone, clocks
    # left alone): the sum per step against the step's wall time gives what launches and gaps cost.
    NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
    if [[ -n $NCU ]]; then
      HEARTH_CUDA_PROFILE=1 timeout 240 "$NCU" --clock-control none --cache-control none \
        --metrics gpu__time_duration.sum --print-kernel-base function --csv "$B/gpu_bench" --model "$M" \
        --label ncu --decode-tokens 8 --ttft-prompt 0 --batches 1 --batch-in 16 --batch-out 4 --sampled-batch 0 >/tmp/ncu.csv 2>&1
      echo "ncu exit status $?"
      python3 tools/device/ncu_summary.py /tmp/ncu.csv
    else
      echo "ncu not found"
    fi
    ;;
  deepseek)
    M3=/tmp/hearth-models/deepseek-v3-reduced
    synth deepseek-v3-reduced "$M3" || exit 1
    for env in "" HEARTH_CUDA_DEQUANT_FP8=1; do
      env $env "$B/gpu_bench" --model "$M3" --label "v3-reduced${env:+ dequantized}" --decode-tokens 64 \
        --batches 64 256 --sampled-batch 0 2>&1 | grep '^{\|error\|warn'
    done
    ;;
  *) echo "usage: $0 tests|soak [SECONDS]|sampling|fp8|small|attention|deepseek"; exit 2 ;;
esac
