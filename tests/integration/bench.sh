#!/usr/bin/env bash
# hearth bench end to end against hearth serve (the tiny model): the minimal form from the issue
# writes JSON with the documented fields and exact token counts (ignore_eos); chat endpoint, open
# loop, a sweep with an HTML report, a dataset, SLO goodput; errors (no server, bad flags) exit non-zero
# with a message.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
hearth_it_init

expect_exit 0 "$HEARTH" bench --help
CHECK="model synth --preset tiny" expect_exit 0 "$HEARTH" model synth --preset tiny --out "$IT_TMP/tiny"

start_server bench --model "$IT_TMP/tiny" --served-model-name bench-tiny --max-num-seqs 16
URL=http://127.0.0.1:$PORT

CHECK="minimal form: 16 requests complete, none fail, 16 x 16 output tokens, model from /v1/models" \
  expect_exit 0 "$HEARTH" bench --url "$URL" --concurrency 4 --requests 16 --input-len 32 --output-len 16 \
  --json "$IT_TMP/out.json"
check "the table reports the run" grep -q "Successful requests:" "$IT_OUT"
check "the JSON has completed/failed, ttft/itl/e2e with mean/p50/p90/p99, throughputs" python3 - "$IT_TMP/out.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["completed"] == 16 and d["failed"] == 0, d
assert d["total_output_tokens"] == 256, d["total_output_tokens"]
assert d["model"] == "bench-tiny"
for k in ("ttft", "itl", "e2e", "tpot"):
    for s in ("mean", "p50", "p90", "p99"):
        assert isinstance(d[k][s], (int, float)) and d[k][s] >= 0, (k, s)
assert 0 < d["ttft"]["p50"] <= d["e2e"]["p50"]
assert d["output_tokens_per_s"] > 0 and d["requests_per_s"] > 0
assert d["total_input_tokens"] >= 16 * 16, d["total_input_tokens"]  # ~32 words each; usage reports the real count
PY

CHECK="exact input lengths with --tokenizer (token-id prompts)" expect_exit 0 "$HEARTH" bench --url "$URL" \
  --requests 4 --input-len 40 --output-len 4 --tokenizer "$IT_TMP/tiny" --json "$IT_TMP/tok.json" -q
check "usage reports 4 x 40 prompt tokens" python3 -c "
import json; d = json.load(open('$IT_TMP/tok.json')); assert d['total_input_tokens'] == 160, d['total_input_tokens']"

CHECK="chat endpoint, open loop at 20 req/s" expect_exit 0 "$HEARTH" bench --url "$URL/v1" --endpoint chat \
  --rate 20 --requests 8 --output-len 8 --input-len 16 --json "$IT_TMP/chat.json" -q
check "open loop: 8 completed, 64 tokens" python3 -c "
import json; d = json.load(open('$IT_TMP/chat.json')); assert d['completed'] == 8 and d['total_output_tokens'] == 64, d"

CHECK="sweep over concurrency 1,4 with an HTML report and SLO goodput" expect_exit 0 "$HEARTH" bench --url "$URL" \
  --concurrency 1,4 --requests 8 --input-len 16 --output-len 8 --slo-ttft-ms 60000 --json "$IT_TMP/sweep.json" \
  --html "$IT_TMP/sweep.html" -q
check "the sweep table is printed" grep -q "concurrency 4" "$IT_OUT"
check "sweep JSON has two runs with goodput = throughput under a loose SLO" python3 -c "
import json; d = json.load(open('$IT_TMP/sweep.json'))
assert d['sweep'] == 'concurrency' and [r['concurrency'] for r in d['runs']] == [1, 4], d
for r in d['runs']: assert r['good_requests'] == r['completed'] == 8, r"
check "the HTML report has charts and a table" grep -q "<svg" "$IT_TMP/sweep.html"

printf '%s\n' '{"prompt": "Tell me about lighthouses", "output_len": 3}' \
  '{"conversations": [{"from": "human", "value": "hello"}, {"from": "gpt", "value": "hi"}]}' >"$IT_TMP/data.jsonl"
CHECK="a JSONL dataset" expect_exit 0 "$HEARTH" bench --url "$URL" --dataset "$IT_TMP/data.jsonl" --requests 4 \
  --output-len 5 --json "$IT_TMP/data.json" -q
check "dataset output lengths: 2 x 3 + 2 x 5" python3 -c "
import json; d = json.load(open('$IT_TMP/data.json')); assert d['total_output_tokens'] == 16, d['total_output_tokens']"

CHECK="failures are counted by class (unknown model: 4xx), exit 1" expect_error 1 "http_4xx" "$HEARTH" bench \
  --url "$URL" --model no-such-model --requests 3 --output-len 2 -q
CHECK="no server: a clear error" expect_error 1 "connect" "$HEARTH" bench --url http://127.0.0.1:1 --model m \
  --requests 2 -q
CHECK="no bound: exit 2" expect_error 2 "--requests" "$HEARTH" bench --url "$URL" -q
CHECK="https is refused with advice" expect_error 1 "https" "$HEARTH" bench --url https://x --requests 1 -q

stop_server bench
finish
