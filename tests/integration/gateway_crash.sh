#!/usr/bin/env bash
# kill -9 of the gateway while it meters a stream of requests loses no acknowledged usage record: 32 clients
# send 10,000 short completions through `hearth gateway` (to mock_upstream, a near-free upstream), each
# noting the x-request-id of every response it received in full; the gateway is killed with SIGKILL
# part-way; every noted request id must be in the usage table (the gateway finishes a response only after
# its record's batch is committed), and the audit chain must still verify.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
hearth_it_init

start_mock_upstream --tokens 2 --itl-ms 0
DB=$IT_TMP/gw.db
S="sqlite:$DB"
"$HEARTH" admin --store "$S" tenant create acme >/dev/null
KEY=$("$HEARTH" admin --store "$S" key create --tenant acme --json | json_eval /dev/stdin "d['key']")
"$HEARTH" gateway --upstream "http://127.0.0.1:$(cat "$IT_TMP/up")" --store "$S" --port 0 \
  --port-file "$IT_TMP/gw" >"$IT_TMP/gw.log" 2>&1 &
GW_PID=$!
SERVER_PIDS+=("$GW_PID")
for _ in $(seq 50); do [ -s "$IT_TMP/gw" ] && break; sleep 0.1; done
[ -s "$IT_TMP/gw" ] && pass "gateway up" || { fail "gateway start" "$(tail -5 "$IT_TMP/gw.log")"; finish; }

cat >"$IT_TMP/client.py" <<'PY'
import http.client, json, sys, threading
port, key, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
body = json.dumps({"model": "mock", "prompt": "x", "max_tokens": 2, "stream": True})
acked, lock, next_i = [], threading.Lock(), [0]
def worker():
    c = None
    while True:
        with lock:
            if next_i[0] >= 10000: return
            next_i[0] += 1
        try:
            if c is None: c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("POST", "/v1/completions", body, {"Authorization": "Bearer " + key, "Content-Type": "application/json"})
            r = c.getresponse()
            data = r.read()  # the whole chunked body: complete only when the terminating chunk arrived
            if r.status == 200 and data.rstrip().endswith(b"data: [DONE]"):
                with lock: acked.append(r.getheader("x-request-id"))
        except Exception:
            c = None
            return  # the gateway is gone
ts = [threading.Thread(target=worker) for _ in range(32)]
for t in ts: t.start()
for t in ts: t.join()
open(out, "w").write("\n".join(acked) + "\n")
print(len(acked))
PY
python3 "$IT_TMP/client.py" "$(cat "$IT_TMP/gw")" "$KEY" "$IT_TMP/acked.txt" >"$IT_TMP/client.out" 2>&1 &
CLIENT=$!
# Kill once a few thousand requests have been metered.
for _ in $(seq 300); do
  n=$(sqlite3 "$DB" "SELECT COUNT(*) FROM usage" 2>/dev/null || echo 0)
  [ "${n:-0}" -ge 2000 ] && break
  sleep 0.1
done
kill -KILL "$GW_PID"
wait "$GW_PID" 2>/dev/null
wait "$CLIENT"
ACKED=$(grep -c . "$IT_TMP/acked.txt")
STORED=$(sqlite3 "$DB" "SELECT COUNT(*) FROM usage")
if [ "$ACKED" -gt 1000 ] && [ "$ACKED" -lt 10000 ]; then
  pass "killed mid-run: $ACKED of 10,000 requests acknowledged, $STORED usage records stored"
else
  fail "the kill landed mid-run" "acknowledged $ACKED"
fi
sqlite3 "$DB" "SELECT request_id FROM usage" | sort >"$IT_TMP/stored.txt"
sort "$IT_TMP/acked.txt" | grep . >"$IT_TMP/acked.sorted"
missing=$(comm -23 "$IT_TMP/acked.sorted" "$IT_TMP/stored.txt" | wc -l)
if [ "$missing" = 0 ]; then pass "every acknowledged request has its usage record"; else
  fail "acknowledged requests without a usage record" "$missing missing, e.g. $(comm -23 "$IT_TMP/acked.sorted" "$IT_TMP/stored.txt" | head -3)"; fi
CHECK="audit chain intact after the kill" expect_json_stdout "d['intact']" "$HEARTH" audit verify --store "$S" --json
kill "$MOCK_PID"
wait "$MOCK_PID" 2>/dev/null
finish
