#!/usr/bin/env bash
# What the gateway adds: hearth bench at a fixed arrival rate against mock_upstream directly, then through
# `hearth gateway` (SQLite store, a real API key, quotas, metering and auditing on), same session, same
# load. Prints each run's TTFT and end-to-end percentiles and the differences (the added latency).
#   bench/gateway/run.sh [RATE=1000] [SECONDS=20] [TOKENS=16] [ITL_MS=10]
#   GATEWAY_ARGS="--io-threads 1 ..." adds flags to the gateway (thread layouts, --shared-quotas on, ...);
#   TENANT_ARGS="--rpm 1000000 ..." gives the bench tenant limits; STORE=postgresql://... uses that store
#   (HEARTH_AUDIT_KEY set) instead of a fresh SQLite file.
set -euo pipefail
cd "$(dirname "$0")/../.."
RATE=${1:-1000}
SECS=${2:-20}
TOKENS=${3:-16}
ITL=${4:-10}
B=build
T=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT
"$B/bench/mock_upstream" --port-file "$T/up" --tokens "$TOKENS" --itl-ms "$ITL" &
for _ in $(seq 50); do [ -s "$T/up" ] && break; sleep 0.1; done
UP=$(cat "$T/up")
S=${STORE:-"sqlite:$T/gw.db"}
# shellcheck disable=SC2086  # TENANT_ARGS is a list of flags
"$B/hearth" admin --store "$S" tenant create "bench$$" ${TENANT_ARGS:-} >/dev/null
KEY=$("$B/hearth" admin --store "$S" key create --tenant "bench$$" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
# shellcheck disable=SC2086  # GATEWAY_ARGS is a list of flags
"$B/hearth" gateway --upstream "http://127.0.0.1:$UP" --store "$S" --port 0 --port-file "$T/gw" ${GATEWAY_ARGS:-} \
  2>"$T/gw.log" &
for _ in $(seq 50); do [ -s "$T/gw" ] && break; sleep 0.1; done
GW=$(cat "$T/gw")
run() {  # NAME URL [args]
  local name=$1 url=$2
  shift 2
  "$B/hearth" bench --url "$url" --model mock --rate "$RATE" --duration "$SECS" --warmup 200 --input-len 64 \
    --output-len "$TOKENS" --threads 2 --json "$T/$name.json" -q "$@" >/dev/null
}
echo "== direct: hearth bench --rate $RATE --duration $SECS against mock_upstream ($TOKENS tokens, ${ITL} ms apart)"
run direct "http://127.0.0.1:$UP"
echo "== through hearth gateway (same load, API key)"
run gateway "http://127.0.0.1:$GW" --api-key "$KEY"
python3 - "$T/direct.json" "$T/gateway.json" <<'PY'
import json, sys
def load(p):
    j = json.load(open(p))
    return j["runs"][0] if "runs" in j else (j[0] if isinstance(j, list) else j)
d, g = load(sys.argv[1]), load(sys.argv[2])
print(f"{'':10}{'requests':>9}{'failed':>7}{'req/s':>8}{'TTFT p50':>10}{'TTFT p99':>10}{'E2E p50':>10}{'E2E p99':>10}  (ms)")
for name, r in (("direct", d), ("gateway", g)):
    print(f"{name:10}{r['completed']:>9}{r['failed']:>7}{r['requests_per_s']:>8.0f}"
          f"{r['ttft']['p50']*1e3:>10.2f}{r['ttft']['p99']*1e3:>10.2f}{r['e2e']['p50']*1e3:>10.2f}{r['e2e']['p99']*1e3:>10.2f}")
print(f"{'added':10}{'':>9}{'':>7}{'':>8}{(g['ttft']['p50']-d['ttft']['p50'])*1e3:>10.2f}{(g['ttft']['p99']-d['ttft']['p99'])*1e3:>10.2f}"
      f"{(g['e2e']['p50']-d['e2e']['p50'])*1e3:>10.2f}{(g['e2e']['p99']-d['e2e']['p99'])*1e3:>10.2f}")
PY
curl -s "http://127.0.0.1:$GW/metrics" | grep -E "^hearth_gateway_(overhead_seconds_(sum|count)|records_written|blocking_handoffs)" || true
