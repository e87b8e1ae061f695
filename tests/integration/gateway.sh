#!/usr/bin/env bash
# hearth gateway in front of a real hearth serve, with a SQLite store made by hearth admin: API keys (401
# with an OpenAI error object for missing, malformed, unknown and revoked keys), OIDC bearer JWTs (RS256 from
# a provider key made with openssl: valid, expired, wrong key, audience, issuer, unknown tenant), the official openai SDK's
# checks run through the gateway, streamed responses passed through (the usage chunk the gateway adds for
# metering is not shown to clients that did not ask), rpm limits (429 + Retry-After + x-ratelimit-*), a burst
# of concurrent requests against a small token budget never overspends it, usage records per request (also
# for a client hanging up mid-stream), every auth decision in the audit log (chain intact), the key never in
# a log or the database, and /metrics.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
hearth_it_init

check "model synth --preset tiny" "$HEARTH" model synth --preset tiny --out "$IT_TMP/tiny"
start_server upstream --model "$IT_TMP/tiny" --served-model-name tiny --max-num-seqs 64
UP=$PORT
UP_PID=$SERVER_PID

DB=$IT_TMP/gw.db
S="sqlite:$DB"
adm() { "$HEARTH" admin --store "$S" "$@"; }
adm tenant create acme >/dev/null && adm tenant create slow --rpm 2 >/dev/null &&
  adm tenant create small --budget-tokens 3000 >/dev/null && adm tenant create narrow --models other,else >/dev/null
KEY=$(adm key create --tenant acme --json | json_eval /dev/stdin "d['key']")
SLOW=$(adm key create --tenant slow --json | json_eval /dev/stdin "d['key']")
SMALL=$(adm key create --tenant small --json | json_eval /dev/stdin "d['key']")
NARROW=$(adm key create --tenant narrow --json | json_eval /dev/stdin "d['key']")
[ -n "$KEY" ] && [ -n "$SLOW" ] && [ -n "$SMALL" ] && pass "tenants and keys made with hearth admin" || fail "admin setup"
# Budgets over time and money: a daily token budget, a monthly money budget against the price book (per
# million tokens: input 1,000, output 10,000, so a token in costs 0.001 and a token out 0.01).
adm tenant create daily --budget-tokens-daily 300 >/dev/null && adm tenant create payg --budget-money-monthly 0.50 >/dev/null
check "price set (the price book)" "$HEARTH" admin --store "$S" price set tiny --input 1000 --output 10000 --currency EUR
CHECK="a second currency is refused" expect_error 2 "one currency per store" "$HEARTH" admin --store "$S" price set other --input 1 --output 1 --currency USD
DAILY=$(adm key create --tenant daily --json | json_eval /dev/stdin "d['key']")
PAYG=$(adm key create --tenant payg --json | json_eval /dev/stdin "d['key']")

# An OIDC identity provider's key (RS256, made with openssl) and its JWKS; jwt CLAIMS [KEY [KID]] prints a
# token; jwt_tool.py jwks PEM[:KID]... prints a key set.
JWT_TOOL=$(cd "$(dirname "$0")" && pwd)/jwt_tool.py
openssl genrsa -out "$IT_TMP/idp.pem" 2048 2>/dev/null
openssl genrsa -out "$IT_TMP/other.pem" 2048 2>/dev/null
python3 "$JWT_TOOL" jwks "$IT_TMP/idp.pem" >"$IT_TMP/jwks.json"
ISS=https://idp.example/realms/bank
jwt() { python3 "$JWT_TOOL" token "$1" "${2:-$IT_TMP/idp.pem}" "${3:-idp1}"; }
NOW=$(date +%s)

# The gateway, in the background on a free port (API keys, and OIDC tokens from that provider).
"$HEARTH" gateway --upstream "http://127.0.0.1:$UP" --store "$S" --port 0 --port-file "$IT_TMP/gw.port" \
  --key-cache-ms 300 --permissions-ttl-ms 300 --oidc-jwks "$IT_TMP/jwks.json" --oidc-issuer "$ISS" --oidc-audience hearth \
  --audit-requests metadata \
  >"$IT_TMP/gw.log" 2>&1 &
GW_PID=$!
SERVER_PIDS+=("$GW_PID")
for _ in $(seq 100); do [ -s "$IT_TMP/gw.port" ] && break; sleep 0.1; done
GW=$(cat "$IT_TMP/gw.port" 2>/dev/null)
if [ -n "$GW" ]; then pass "gateway is listening (port $GW)"; else fail "gateway start" "$(tail -5 "$IT_TMP/gw.log")"; finish; fi
URL=http://127.0.0.1:$GW

CHECK="/health" expect_exit 0 curl -sf "$URL/health"
CHAT='{"model":"tiny","messages":[{"role":"user","content":"hello there"}],"max_tokens":8}'
post() {  # KEY BODY [PATH]: prints the status line + headers + body (curl -i)
  curl -s -i -X POST "$URL${3:-/v1/chat/completions}" -H 'Content-Type: application/json' \
    ${1:+-H "Authorization: Bearer $1"} -d "$2"
}
check_401() {  # LABEL KEY
  post "$2" "$CHAT" >"$IT_TMP/r.txt"
  if head -1 "$IT_TMP/r.txt" | grep -q " 401" && grep -q '"code":"invalid_api_key"' "$IT_TMP/r.txt" &&
    grep -qi '^www-authenticate: Bearer' "$IT_TMP/r.txt"; then
    pass "$1: 401, OpenAI error object, WWW-Authenticate"
  else
    fail "$1: 401" "$(head -c 400 "$IT_TMP/r.txt")"
  fi
}
# Model allow-lists: a tenant limited to other models gets OpenAI's 404 model_not_found (which does not say
# whether the model exists), sees only its models in /v1/models, and is let in once the list names the model.
post "$NARROW" "$CHAT" >"$IT_TMP/r.txt"
if head -1 "$IT_TMP/r.txt" | grep -q " 404" && grep -q '"code":"model_not_found"' "$IT_TMP/r.txt" &&
  grep -q 'does not exist or you do not have access to it' "$IT_TMP/r.txt"; then
  pass "model outside the tenant's allow-list: 404 model_not_found"
else
  fail "allow-list denial" "$(head -c 400 "$IT_TMP/r.txt")"
fi
models_seen() { curl -s "$URL/v1/models" -H "Authorization: Bearer $1" | json_eval /dev/stdin "','.join(m['id'] for m in d['data'])"; }
[ "$(models_seen "$NARROW")" = "" ] && [ "$(models_seen "$KEY")" = "tiny" ] &&
  pass "/v1/models lists only the tenant's models" || fail "/v1/models filter" "narrow: $(models_seen "$NARROW"), acme: $(models_seen "$KEY")"
adm tenant update narrow --models other,tiny >/dev/null
sleep 0.5
post "$NARROW" "$CHAT" >"$IT_TMP/r.txt"
head -1 "$IT_TMP/r.txt" | grep -q " 200" && [ "$(models_seen "$NARROW")" = "tiny" ] &&
  pass "hearth admin tenant update --models takes effect within --permissions-ttl-ms" ||
  fail "allow-list update" "$(head -c 300 "$IT_TMP/r.txt")"
[ "$(sqlite3 "$DB" "SELECT COUNT(*) FROM audit_log WHERE action = 'authz.deny' AND detail LIKE '%tenant=narrow model=tiny%'")" = 1 ] &&
  [ "$(sqlite3 "$DB" "SELECT COUNT(*) FROM audit_log WHERE action = 'tenant.update' AND detail LIKE '%models=other,tiny%'")" = 1 ] &&
  pass "authz.deny and tenant.update are in the audit log" || fail "authz audit"
check_401 "no key" ""
check_401 "malformed key" "sk-not-ours"
check_401 "unknown hearth key" "hk_AAAAAAAA_$(printf 'B%.0s' $(seq 43))"

post "$KEY" "$CHAT" >"$IT_TMP/r.txt"
if head -1 "$IT_TMP/r.txt" | grep -q " 200" && grep -q '"usage"' "$IT_TMP/r.txt" && grep -qi '^x-request-id: gw-' "$IT_TMP/r.txt"; then
  pass "valid key: 200 from the upstream, usage, x-request-id"
else
  fail "valid key: 200" "$(head -c 600 "$IT_TMP/r.txt")"
fi

# Projects and users: a key of project "fraud" issued to alice@acme; its usage records name both.
check "project create" "$HEARTH" admin --store "$S" project create fraud --tenant acme
CHECK="a key for a project the tenant does not have: refused" expect_error 1 "no project" \
  "$HEARTH" admin --store "$S" key create --tenant acme --project nope
PKEY=$(adm key create --tenant acme --project fraud --owner alice@acme --json | json_eval /dev/stdin "d['key']")
post "$PKEY" "$CHAT" >"$IT_TMP/r.txt"
head -1 "$IT_TMP/r.txt" | grep -q " 200" && pass "a project key: 200" || fail "project key" "$(head -c 400 "$IT_TMP/r.txt")"

# OIDC bearer tokens: the tenant comes from the "tenant" claim.
claims() { printf '{"iss": "%s", "aud": "%s", "sub": "alice", "tenant": "%s", "exp": %s}' "${2:-$ISS}" "${3:-hearth}" "$1" "${4:-$((NOW + 600))}"; }
post "$(jwt "$(claims acme)")" "$CHAT" >"$IT_TMP/r.txt"
if head -1 "$IT_TMP/r.txt" | grep -q " 200"; then pass "OIDC: a valid RS256 token for tenant acme: 200"; else
  fail "OIDC: valid token" "$(head -c 500 "$IT_TMP/r.txt")"; fi
oidc_401() {  # LABEL TOKEN TEXT
  post "$2" "$CHAT" >"$IT_TMP/r.txt"
  if head -1 "$IT_TMP/r.txt" | grep -q " 401" && grep -q "$3" "$IT_TMP/r.txt"; then pass "OIDC: $1: 401 ($3)"; else
    fail "OIDC: $1: 401" "$(head -c 500 "$IT_TMP/r.txt")"; fi
}
oidc_401 "expired" "$(jwt "$(claims acme "$ISS" hearth $((NOW - 3600)))")" "expired"
oidc_401 "signed by another key" "$(jwt "$(claims acme)" "$IT_TMP/other.pem")" "does not verify"
oidc_401 "another audience" "$(jwt "$(claims acme "$ISS" someone-else)")" "audience"
oidc_401 "another issuer" "$(jwt "$(claims acme https://evil.example)")" "issuer"
oidc_401 "a tenant that does not exist" "$(jwt "$(claims nobody)")" "does not exist"

# OIDC discovery and key rotation: a provider on http://127.0.0.1 (its /.well-known/openid-configuration
# names its jwks_uri); a second gateway finds the keys through it, picks up a new key as soon as a token
# names it, and drops a retired key at the next refresh (--oidc-jwks-refresh-s 1; tokens already verified
# stay trusted for --key-cache-ms).
IDP_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ISS2=http://127.0.0.1:$IDP_PORT
mkdir -p "$IT_TMP/idp/.well-known"
printf '{"issuer": "%s", "jwks_uri": "%s/keys"}' "$ISS2" "$ISS2" >"$IT_TMP/idp/.well-known/openid-configuration"
cp "$IT_TMP/jwks.json" "$IT_TMP/idp/keys"
python3 -m http.server "$IDP_PORT" --bind 127.0.0.1 --directory "$IT_TMP/idp" >/dev/null 2>&1 &
SERVER_PIDS+=("$!")
for _ in $(seq 50); do curl -sf "$ISS2/keys" >/dev/null && break; sleep 0.1; done
# This gateway takes its options from a YAML file (--config); the command line's --key-cache-ms wins over the
# file's (the retired-key check below depends on it).
cat >"$IT_TMP/gw2.yaml" <<EOF
upstream: http://127.0.0.1:$UP
store: $S
port: 0
port_file: $IT_TMP/gw2.port
key-cache-ms: 600000
oidc:
  discover: true
  issuer: $ISS2
  audience: hearth
  jwks-refresh-s: 1
EOF
CHECK="--config: an unknown key is refused, named" expect_error 2 "'oidc-audiense' is not an option" \
  "$HEARTH" gateway --config <(sed 's/audience:/audiense:/' "$IT_TMP/gw2.yaml")
CHECK="--config: a value is checked as on the command line" expect_error 2 "'oidc-jwks-refresh-s'" \
  "$HEARTH" gateway --config <(sed 's/jwks-refresh-s: 1/jwks-refresh-s: -3/' "$IT_TMP/gw2.yaml")
"$HEARTH" gateway --config "$IT_TMP/gw2.yaml" --key-cache-ms 300 >"$IT_TMP/gw2.log" 2>&1 &
GW2_PID=$!
SERVER_PIDS+=("$GW2_PID")
for _ in $(seq 100); do [ -s "$IT_TMP/gw2.port" ] && break; sleep 0.1; done
GW2=http://127.0.0.1:$(cat "$IT_TMP/gw2.port" 2>/dev/null)
post2() { curl -s -o /dev/null -w '%{http_code}' -X POST "$GW2/v1/chat/completions" -H 'Content-Type: application/json' \
  -H "Authorization: Bearer $1" -d "$CHAT"; }
[ "$(post2 "$(jwt "$(claims acme "$ISS2")")")" = 200 ] &&
  pass "OIDC discovery (gateway configured by --config YAML): keys found through the issuer's openid-configuration" ||
  fail "OIDC discovery" "$(tail -5 "$IT_TMP/gw2.log")"
openssl genrsa -out "$IT_TMP/rot.pem" 2048 2>/dev/null
python3 "$JWT_TOOL" jwks "$IT_TMP/idp.pem:idp1" "$IT_TMP/rot.pem:idp2" >"$IT_TMP/idp/keys"
sleep 1.1
[ "$(post2 "$(jwt "$(claims acme "$ISS2")" "$IT_TMP/rot.pem" idp2)")" = 200 ] &&
  pass "OIDC key rotation: a token signed with the provider's new key is accepted without a restart" ||
  fail "OIDC rotation: new key" "$(tail -5 "$IT_TMP/gw2.log")"
python3 "$JWT_TOOL" jwks "$IT_TMP/rot.pem:idp2" >"$IT_TMP/idp/keys"
sleep 2.5
[ "$(post2 "$(jwt "$(claims acme "$ISS2")")")" = 401 ] &&
  pass "OIDC key rotation: the retired key stops verifying after the refresh" ||
  fail "OIDC rotation: retired key" "$(tail -5 "$IT_TMP/gw2.log")"
kill -TERM "$GW2_PID" 2>/dev/null; wait "$GW2_PID" 2>/dev/null

# Streams: the gateway asks the upstream for usage; a client that did not ask does not see that chunk.
curl -sN "$URL/v1/chat/completions" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  -d '{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":6,"stream":true}' >"$IT_TMP/s1.txt"
if tail -2 "$IT_TMP/s1.txt" | grep -q '^data: \[DONE\]' && ! grep -q '"usage":{' "$IT_TMP/s1.txt" &&
  [ "$(grep -c '^data: {' "$IT_TMP/s1.txt")" -ge 2 ]; then
  pass "stream without include_usage: chunks, [DONE], no usage chunk"
else
  fail "stream without include_usage" "$(head -c 600 "$IT_TMP/s1.txt")"
fi
curl -sN "$URL/v1/chat/completions" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  -d '{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":6,"stream":true,"stream_options":{"include_usage":true}}' >"$IT_TMP/s2.txt"
if [ "$(grep -c '"usage":{' "$IT_TMP/s2.txt")" = 1 ]; then pass "stream with include_usage: one usage chunk"; else
  fail "stream with include_usage" "$(head -c 600 "$IT_TMP/s2.txt")"; fi

# The official SDK's suite, through the gateway (its /metrics checks read the upstream's).
SDK=$ROOT/.cache/npm/node_modules/openai/index.mjs
if command -v node >/dev/null && [ -f "$SDK" ]; then
  HEARTH_URL=$URL HEARTH_METRICS_URL=http://127.0.0.1:$UP HEARTH_MODEL=tiny HEARTH_API_KEY=$KEY OPENAI_SDK=$SDK \
    timeout -k 5 120 node "$ROOT/tests/integration/serve_openai_sdk.mjs" >"$IT_TMP/node.out" 2>&1
  if grep -qx "all passed" "$IT_TMP/node.out"; then
    pass "openai SDK through the gateway: $(grep -c '^ok - ' "$IT_TMP/node.out") checks passed"
  else
    fail "openai SDK through the gateway" "$(grep -A3 '^FAIL' "$IT_TMP/node.out" | head -20)"
  fi
else
  fail "node and the openai SDK are installed (scripts/fetch_tokenizers.sh)"
fi

# rpm 2: the third request in a row is refused with Retry-After and the limit headers.
post "$SLOW" "$CHAT" >/dev/null
post "$SLOW" "$CHAT" >/dev/null
post "$SLOW" "$CHAT" >"$IT_TMP/r.txt"
if head -1 "$IT_TMP/r.txt" | grep -q " 429" && grep -qi '^retry-after: [1-9]' "$IT_TMP/r.txt" &&
  grep -qi '^x-ratelimit-limit-requests: 2' "$IT_TMP/r.txt" && grep -q '"code":"rate_limit_exceeded"' "$IT_TMP/r.txt"; then
  pass "rpm 2: third request 429, Retry-After, x-ratelimit-limit-requests"
else
  fail "rpm 2: third request 429" "$(head -c 600 "$IT_TMP/r.txt")"
fi

# Budget 3,000 tokens, 200 concurrent requests (max_tokens 40): never overspent.
cat >"$IT_TMP/burst.py" <<'PY'
import concurrent.futures, json, sys, urllib.request, urllib.error
url, key = sys.argv[1], sys.argv[2]
body = json.dumps({"model": "tiny", "prompt": "the river runs", "max_tokens": 40, "ignore_eos": True}).encode()
def one(_):
    req = urllib.request.Request(url + "/v1/completions", data=body, headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.load(r)["usage"]["total_tokens"]
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)["error"]["code"]
with concurrent.futures.ThreadPoolExecutor(200) as ex:
    res = list(ex.map(one, range(200)))
ok = [t for s, t in res if s == 200]
refused = [t for s, t in res if s == 429]
print(json.dumps({"ok": len(ok), "used": sum(ok), "refused": len(refused), "codes": sorted(set(map(str, refused))), "other": [r for r in res if r[0] not in (200, 429)][:3]}))
PY
CHECK="200 concurrent requests against a 3,000-token budget" expect_json_stdout \
  "d['ok'] > 0 and d['refused'] > 0 and d['used'] <= 3000 and d['codes'] == ['insufficient_quota'] and not d['other']" \
  python3 "$IT_TMP/burst.py" "$URL" "$SMALL"
echo "     $(cat "$IT_OUT")"

# Daily token budget: admitted while the worst case fits; then 429 with Retry-After until the next UTC day.
budget_call() {  # KEY MODEL MAX_TOKENS -> status line + headers + body in $IT_TMP/b.txt
  post "$1" "{\"model\":\"$2\",\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}],\"max_tokens\":$3}" \
    >"$IT_TMP/b.txt"
}
budget_call "$DAILY" tiny 8
head -1 "$IT_TMP/b.txt" | grep -q " 200" && pass "daily token budget: a request within it is admitted" ||
  fail "daily budget: first request" "$(head -c 300 "$IT_TMP/b.txt")"
budget_call "$DAILY" tiny 400
ra=$(grep -i '^retry-after:' "$IT_TMP/b.txt" | tr -dc '0-9')
if head -1 "$IT_TMP/b.txt" | grep -q " 429" && grep -q '"code":"insufficient_quota"' "$IT_TMP/b.txt" &&
  grep -q 'daily token budget of 300 tokens' "$IT_TMP/b.txt" && grep -q 'resets at .* 00:00 UTC' "$IT_TMP/b.txt" &&
  [ -n "$ra" ] && [ "$ra" -gt 0 ] && [ "$ra" -le 86400 ]; then
  pass "daily token budget: over it, 429 insufficient_quota with Retry-After $ra s (the next UTC day)"
else
  fail "daily budget: 429" "$(head -c 600 "$IT_TMP/b.txt")"
fi
# Monthly money budget 0.50: ~0.16 worst case admitted, then a request whose worst case (~1.08) does not fit.
budget_call "$PAYG" tiny 8
head -1 "$IT_TMP/b.txt" | grep -q " 200" && pass "money budget: a request within it is admitted" ||
  fail "money budget: first request" "$(head -c 300 "$IT_TMP/b.txt")"
budget_call "$PAYG" tiny 100
if head -1 "$IT_TMP/b.txt" | grep -q " 429" && grep -q 'monthly budget of 0.50 EUR' "$IT_TMP/b.txt" &&
  grep -qi '^retry-after:' "$IT_TMP/b.txt"; then
  pass "money budget: a request that could overspend it gets 429 (message in the book's currency)"
else
  fail "money budget: 429" "$(head -c 600 "$IT_TMP/b.txt")"
fi
budget_call "$PAYG" unpriced 8
head -1 "$IT_TMP/b.txt" | grep -q " 403" && grep -q '"code":"model_not_priced"' "$IT_TMP/b.txt" &&
  pass "money budget + a model without a price: 403 model_not_priced" ||
  fail "unpriced model" "$(head -c 400 "$IT_TMP/b.txt")"
# The usage API: a tenant's own totals and budgets, with its own credential.
CHECK="GET /v1/usage: the tenant's totals and money budget this month" expect_json_stdout \
  "d['object'] == 'usage' and d['tenant'] == 'payg' and d['requests'] == 1 and float(d['cost']) > 0 and d['currency'] == 'EUR' and d['budgets'][0]['budget'] == 'money_month' and d['budgets'][0]['limit'] == '0.50' and d['budgets'][0]['used'] == d['cost'] and d['budgets'][0]['resets_at'].endswith('-01T00:00:00Z')" \
  curl -sf "$URL/v1/usage" -H "Authorization: Bearer $PAYG"
CHECK="GET /v1/usage: a daily token budget with what is used of it" expect_json_stdout \
  "d['tenant'] == 'daily' and d['budgets'][0]['budget'] == 'tokens_day' and d['budgets'][0]['limit'] == 300 and 0 < d['budgets'][0]['used'] <= 300" \
  curl -sf "$URL/v1/usage?start=2026-01-01" -H "Authorization: Bearer $DAILY"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/v1/usage")" = 401 ] &&
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/v1/usage?start=yesterday" -H "Authorization: Bearer $PAYG")" = 400 ] &&
  pass "GET /v1/usage: 401 without a credential, 400 for a malformed start" || fail "usage API errors"
CHECK="usage export carries each request's cost at the book's price" expect_json_stdout \
  "len(d) == 1 and 0 < float(d[0]['cost']) <= 0.5 and abs(float(d[0]['cost']) - (d[0]['prompt_tokens'] * 0.001 + d[0]['completion_tokens'] * 0.01)) < 1e-6" \
  "$HEARTH" admin --store "$S" usage export --tenant payg --format json

# A client hanging up mid-stream: the upstream request is cancelled, the usage still recorded.
python3 - "$GW" "$KEY" <<'PY'
import http.client, json, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
c.request("POST", "/v1/completions", json.dumps({"model": "tiny", "prompt": "abort me", "max_tokens": 2000, "ignore_eos": True, "stream": True}),
          {"Authorization": "Bearer " + sys.argv[2], "Content-Type": "application/json"})
r = c.getresponse()
for _ in range(5): r.readline()
c.sock.close()
PY
sleep 1
CHECK="client hung up: recorded as client_disconnected with the tokens streamed" expect_exit 0 \
  sqlite3 "$DB" "SELECT 1/(COUNT(*) = 1) FROM usage WHERE outcome = 'client_disconnected' AND completion_tokens > 0 AND completion_tokens < 2000"
running=$(curl -s "http://127.0.0.1:$UP/metrics" | awk '/^hearth:num_requests_running/ {print $2}')
if [ "${running%.*}" = 0 ]; then pass "the upstream stopped generating for it"; else fail "upstream still running $running"; fi

# Revocation reaches the gateway within --key-cache-ms.
PREFIX=${KEY:0:11}
adm key revoke "$PREFIX" >/dev/null
sleep 0.5
check_401 "revoked key (after the key cache's 300 ms)" "$KEY"

# Metering, audit, metrics, secrets.
n200=$(sqlite3 "$DB" "SELECT COUNT(*) FROM usage WHERE tenant = 'acme' AND status = 200")
[ "${n200:-0}" -ge 3 ] && pass "usage records for acme's requests ($n200)" || fail "usage records" "$n200"
curl -s "$URL/metrics" >"$IT_TMP/m.txt"
if grep -q 'hearth_gateway_requests_total{tenant="acme",model="tiny",status="200"}' "$IT_TMP/m.txt" &&
  grep -q 'hearth_gateway_auth_failures_total{reason="missing"} 2' "$IT_TMP/m.txt" &&  # /v1/chat + /v1/usage
  grep -q 'hearth_gateway_quota_rejections_total{tenant="small",reason="budget"}' "$IT_TMP/m.txt" &&
  grep -q '^hearth_gateway_overhead_seconds_count' "$IT_TMP/m.txt"; then
  pass "/metrics: requests by tenant/model/status, auth failures, quota rejections, overhead histogram"
else
  fail "/metrics" "$(grep hearth_gateway "$IT_TMP/m.txt" | head -12)"
fi
kill -TERM "$GW_PID"
wait "$GW_PID"
rc=$?
[ "$rc" = 0 ] && pass "gateway exits 0 on SIGTERM" || fail "gateway exit status $rc" "$(grep -E '^(==|SUMMARY|Direct|Indirect|    #[0-9] )' "$IT_TMP/gw.log" | head -40)"
CHECK="audit: chain intact, auth decisions recorded" expect_json_stdout "d['intact'] and d['records'] > 20" \
  "$HEARTH" audit verify --store "$S" --json
allow=$(sqlite3 "$DB" "SELECT COUNT(*) FROM audit_log WHERE action = 'auth.allow'")
deny=$(sqlite3 "$DB" "SELECT COUNT(*) FROM audit_log WHERE action = 'auth.deny'")
[ "$allow" -gt 0 ] && [ "$deny" -ge 9 ] && pass "auth.allow ($allow) and auth.deny ($deny) in the audit log" || fail "audit actions" "$allow / $deny"
# --audit-requests metadata: one record per forwarded request, without the prompt.
meta=$(sqlite3 "$DB" "SELECT COUNT(*) FROM audit_log WHERE action = 'request' AND detail LIKE 'tenant=acme model=tiny status=200 outcome=ok prompt_tokens=%request=gw-%'")
prompt=$(sqlite3 "$DB" "SELECT COUNT(*) FROM audit_log WHERE detail LIKE '%hello there%'")
[ "$meta" -gt 0 ] && [ "$prompt" = 0 ] && pass "audit: request metadata recorded ($meta records), prompt text never" ||
  fail "audit request metadata" "$meta records, $prompt with the prompt"
leak=0
for k in "$KEY" "$SLOW" "$SMALL"; do
  secret=${k:12}
  if grep -qaF -- "$secret" "$IT_TMP/gw.log" "$IT_TMP/upstream.log" "$DB" "$DB-wal" 2>/dev/null; then leak=1; fi
done
[ "$leak" = 0 ] && pass "no key secret in the gateway's or upstream's log or the database" || fail "a key secret leaked"
# Usage export: CSV (header + one line per record) and JSON agree with the table; a time window; bad input.
adm usage export --tenant acme >"$IT_TMP/u.csv"
rows=$(($(wc -l <"$IT_TMP/u.csv") - 1))
in_db=$(sqlite3 "$DB" "SELECT COUNT(*) FROM usage WHERE tenant = 'acme'")
tok_db=$(sqlite3 "$DB" "SELECT SUM(prompt_tokens + completion_tokens) FROM usage WHERE tenant = 'acme'")
adm usage export --tenant acme --format json --out "$IT_TMP/u.json"
tok_json=$(json_eval "$IT_TMP/u.json" "sum(r['prompt_tokens'] + r['completion_tokens'] for r in d)")
head -1 "$IT_TMP/u.csv" | grep -q '^time,tenant,key_id,model,prompt_tokens' && [ "$rows" = "$in_db" ] &&
  [ "$tok_json" = "$tok_db" ] && pass "usage export: CSV ($rows records) and JSON ($tok_json tokens) match the table" ||
  fail "usage export" "csv $rows vs $in_db, json $tok_json vs $tok_db"
pu=$(sqlite3 "$DB" "SELECT project || '/' || user_name FROM usage WHERE project != '' OR user_name != '' ORDER BY id" | sort -u | tr '\n' ' ')
grep -q ',cost,project,user$' <(head -1 "$IT_TMP/u.csv") && grep -q ',fraud,alice@acme$' "$IT_TMP/u.csv" &&
  [[ "$pu" == *"fraud/alice@acme"* && "$pu" == *"/oidc:alice"* ]] &&
  pass "usage records name the key's project and owner, and the OIDC user (export has project,user)" ||
  fail "project and user in usage" "$pu / $(head -1 "$IT_TMP/u.csv")"
[ "$(adm usage export --since 2099-01-01 | wc -l)" = 1 ] && pass "usage export --since in the future: header only" ||
  fail "usage export --since"
CHECK="usage export --since garbage: exit 2" expect_exit 2 "$HEARTH" admin --store "$S" usage export --since yesterday
kill -0 "$UP_PID" 2>/dev/null && pass "upstream still up"
finish
