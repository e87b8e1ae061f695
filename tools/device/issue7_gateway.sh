#!/usr/bin/env bash
# Runs on the GPU host (device tool) from the repo root, with .devcarry/ carried (see issue6_run.sh):
# hearth serve --device cuda on the synthesized r1-distill-qwen-1.5b, then hearth bench -c 256 (128 in /
# 256 out) directly and through hearth gateway (SQLite store, an API key, every filter on), same session.
set -uo pipefail
export LD_LIBRARY_PATH=$PWD/.devcarry/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
B=$PWD/.devcarry/bin
T=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null' EXIT
M=/tmp/hearth-models/r1-distill-qwen-1.5b
[[ -f $M/config.json ]] || "$B/hearth" model synth --preset r1-distill-qwen-1.5b --out "$M" \
  --tokenizer-dir "$PWD/.devcarry/npm/node_modules" --force >/dev/null || exit 1
"$B/hearth" serve --device cuda --model "$M" --served-model-name m --port 0 --port-file "$T/up" \
  --max-num-seqs 256 2>"$T/serve.log" &
for _ in $(seq 600); do [[ -s $T/up ]] && break; sleep 0.1; done
S=sqlite:$T/gw.db
"$B/hearth" admin --store "$S" tenant create bench >/dev/null
KEY=$("$B/hearth" admin --store "$S" key create --tenant bench --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
"$B/hearth" gateway --upstream "http://127.0.0.1:$(cat "$T/up")" --store "$S" --port 0 --port-file "$T/gw" \
  --io-threads 4 2>"$T/gw.log" &
for _ in $(seq 100); do [[ -s $T/gw ]] && break; sleep 0.1; done
for run in direct gateway direct gateway; do
  if [[ $run == direct ]]; then url=http://127.0.0.1:$(cat "$T/up"); extra=(); else url=http://127.0.0.1:$(cat "$T/gw"); extra=(--api-key "$KEY"); fi
  "$B/hearth" bench --url "$url" --model m -c 256 --input-len 128 --output-len 256 -n 768 --warmup 256 \
    --json "$T/$run.json" -q "${extra[@]}" >/dev/null
  python3 - "$run" "$T/$run.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[2])); r = j["runs"][0] if "runs" in j else j
print(f"{sys.argv[1]:8} completed {r['completed']} failed {r['failed']} output {r['output_tokens_per_s']:.0f} tok/s "
      f"TTFT p50 {r['ttft']['p50']*1e3:.1f} p99 {r['ttft']['p99']*1e3:.1f} ms  TPOT p50 {r['tpot']['p50']*1e3:.2f} ms  "
      f"E2E p99 {r['e2e']['p99']*1e3:.0f} ms")
PY
done
ps -o pid,pcpu,rss,comm -C hearth
tail -3 "$T/gw.log"
