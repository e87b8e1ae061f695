#!/usr/bin/env bash
# Two `hearth gateway` replicas on one PostgreSQL store (a real server started here) in front of
# mock_upstream (slow enough that a burst's requests are all in flight together): with shared quotas (the
# default on PostgreSQL) 200 concurrent requests spread over both replicas against a token budget worth 10
# requests admit at most 10, and a tenant's 10 requests per minute hold across the replicas too; each
# request's hold is released when its usage record is written. The same burst with --shared-quotas off
# (each replica on its own) admits more than 10: the check can tell the two apart.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
hearth_it_init

start_postgres || { fail "start PostgreSQL"; finish; }
export HEARTH_AUDIT_KEY=5a1f0c2d9e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c
# 40 tokens 25 ms apart: each request takes ~1 s, so a burst's requests overlap.
start_mock_upstream --tokens 40 --itl-ms 25 --threads 2
S=$PG_URL
adm() { "$HEARTH" admin --store "$S" "$@"; }

# A request's worst case is its body's bytes (the prompt estimate) + max_tokens: budgets worth 10 requests.
BODY='{"model": "mock", "prompt": "the river runs", "max_tokens": 40, "stream": true}'
WANT=$((${#BODY} + 40))
adm tenant create shared --budget-tokens $((10 * WANT)) >/dev/null &&
  adm tenant create solo --budget-tokens $((10 * WANT)) >/dev/null &&
  adm tenant create paced --rpm 10 >/dev/null || fail "admin setup"
KEY_SHARED=$(adm key create --tenant shared --json | json_eval /dev/stdin "d['key']")
KEY_SOLO=$(adm key create --tenant solo --json | json_eval /dev/stdin "d['key']")
KEY_PACED=$(adm key create --tenant paced --json | json_eval /dev/stdin "d['key']")

start_gateway() {  # NAME ARGS...: sets GW_PORT
  local name=$1
  shift
  "$HEARTH" gateway --upstream "http://127.0.0.1:$(cat "$IT_TMP/up")" --store "$S" --port 0 \
    --port-file "$IT_TMP/$name.port" "$@" >"$IT_TMP/$name.log" 2>&1 &
  SERVER_PIDS+=($!)
  for _ in $(seq 100); do [ -s "$IT_TMP/$name.port" ] && break; sleep 0.1; done
  if [ -s "$IT_TMP/$name.port" ]; then
    GW_PORT=$(cat "$IT_TMP/$name.port")
  else
    fail "$name: gateway start" "$(tail -5 "$IT_TMP/$name.log")"
    finish
  fi
}
start_gateway a
A=$GW_PORT
start_gateway b
B=$GW_PORT
start_gateway c --shared-quotas off
C=$GW_PORT
start_gateway d --shared-quotas off
D=$GW_PORT
pass "four gateways on one PostgreSQL store: a, b shared quotas; c, d each on its own"

# burst.py KEY PORT PORT: 200 concurrent streamed requests, alternating between the two gateways.
cat >"$IT_TMP/burst.py" <<'PY'
import concurrent.futures, http.client, json, sys, time
key, ports, body = sys.argv[1], [int(p) for p in sys.argv[2:4]], sys.argv[4]
def one(i):
    c = http.client.HTTPConnection("127.0.0.1", ports[i % 2], timeout=60)
    c.request("POST", "/v1/completions", body, {"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    code = ""
    if r.status != 200:
        code = json.loads(data)["error"].get("code") or ""
    return r.status, code
t0 = time.time()
with concurrent.futures.ThreadPoolExecutor(200) as ex:
    res = list(ex.map(one, range(200)))
print(json.dumps({"ok": sum(1 for s, _ in res if s == 200), "refused": sum(1 for s, _ in res if s == 429),
                  "codes": sorted({c for s, c in res if s == 429}), "other": [r for r in res if r[0] not in (200, 429)][:3],
                  "seconds": round(time.time() - t0, 2)}))
PY
CHECK="shared quotas: 200 concurrent requests over two replicas, a budget worth 10: at most 10 admitted" \
  expect_json_stdout "1 <= d['ok'] <= 10 and d['refused'] == 200 - d['ok'] and d['codes'] == ['insufficient_quota'] and not d['other']" \
  python3 "$IT_TMP/burst.py" "$KEY_SHARED" "$A" "$B" "$BODY"
echo "     $(cat "$IT_OUT")"
CHECK="each replica on its own (--shared-quotas off): the same burst admits more than 10" \
  expect_json_stdout "d['ok'] > 10 and not d['other']" \
  python3 "$IT_TMP/burst.py" "$KEY_SOLO" "$C" "$D" "$BODY"
echo "     $(cat "$IT_OUT")"

# Holds are released with the usage records: once the burst is over nothing is held, and every admitted
# request has its record.
psql_q() { "${PG_AS[@]}" "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U hearth -d hearth -tAc "$1"; }
HOLDS=$(psql_q "SELECT COUNT(*) FROM quota_holds WHERE tenant = 'shared'")
RECORDS=$(psql_q "SELECT COUNT(*) FROM usage WHERE tenant = 'shared' AND status = 200")
TOTAL=$(psql_q "SELECT tokens = (SELECT SUM(prompt_tokens + completion_tokens) FROM usage WHERE tenant = 'shared')
  FROM quota_usage WHERE tenant = 'shared' AND period = 'total'")
if [ "$HOLDS" = 0 ] && [ "$RECORDS" -ge 1 ] && [ "$TOTAL" = t ]; then
  pass "after the burst: no hold left, $RECORDS usage records, the shared total equals the usage table"
else
  fail "holds released and totals kept" "holds=$HOLDS records=$RECORDS total_matches=$TOTAL"
fi

# 10 requests per minute across both replicas (the bucket starts full; a few seconds refill < 1 request).
CHECK="shared rpm 10 over two replicas: at most 10 of 200 admitted, 429 rate_limit_exceeded for the rest" \
  expect_json_stdout "1 <= d['ok'] <= 10 and d['codes'] == ['rate_limit_exceeded'] and not d['other'] and d['seconds'] < 6" \
  python3 "$IT_TMP/burst.py" "$KEY_PACED" "$A" "$B" "$BODY"
echo "     $(cat "$IT_OUT")"
if curl -sf "http://127.0.0.1:$A/metrics" | grep -q 'hearth_gateway_quota_rejections_total{tenant="paced",reason="rpm"}'; then
  pass "gateway metrics count the refusals"
else
  fail "gateway metrics count the refusals"
fi
finish
