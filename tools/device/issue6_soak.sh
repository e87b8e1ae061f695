#!/usr/bin/env bash
# Runs on the GPU host (device tool) from the repo root, with .devcarry/ carried (see issue6_run.sh; the
# store's libpq and its libldap/liblber/libsasl2 are carried in .devcarry/lib too).
#   tools/device/issue6_soak.sh tests      the GPU tests (engine, kernels)
#   tools/device/issue6_soak.sh soak [S]   synthesize r1-distill-qwen-1.5b, then tests/integration/serve_soak.sh
#                                          on cuda for S seconds (default 420) at 64 mixed clients + bench -c 192 (greedy)
set -uo pipefail
export LD_LIBRARY_PATH=$PWD/.devcarry/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
if [[ ! -e /work/main ]]; then mkdir -p /work && ln -s "$PWD" /work/main; fi
B=$PWD/.devcarry/bin
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
if ldd "$B/hearth" | grep "not found"; then echo "hearth: missing shared libraries"; exit 1; fi
case "${1:-}" in
  tests)
    for t in engine_gpu_test kernels_gpu_test; do
      "$B/$t" --gtest_brief=1 2>&1 | tail -25
    done
    ;;
  soak)
    M=/tmp/hearth-models/r1-distill-qwen-1.5b
    if [[ ! -f $M/config.json ]]; then
      time "$B/hearth" model synth --preset r1-distill-qwen-1.5b --out "$M" \
        --tokenizer-dir "$PWD/.devcarry/npm/node_modules" --force >/dev/null || exit 1
    fi
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader -l 30 &
    SMI=$!
    HEARTH_BIN=$B/hearth SOAK_SECONDS=${2:-420} SOAK_DEVICE=cuda SOAK_MODEL=$M SOAK_THREADS=64 SOAK_BENCH_C=192 \
      SOAK_BENCH_TEMPERATURE=0 tests/integration/serve_soak.sh
    rc=$?
    kill $SMI
    exit $rc
    ;;
  *) echo "usage: $0 tests|soak [SECONDS]"; exit 2 ;;
esac
