#!/usr/bin/env bash
# TLS on the listener (hearth serve and hearth gateway share it): a certificate made with openssl; curl and
# openssl s_client check that TLS 1.3 is negotiated, that TLS 1.2 is refused by default and accepted with
# --tls-min-version 1.2, that keep-alive reuses the TLS connection, that streams pass, that plain HTTP on
# the TLS port is refused without hurting the server, and that bad certificate files are clear errors; the
# official openai SDK runs its checks over HTTPS; --tls-client-ca requires client certificates (mTLS); the
# gateway serves HTTPS and reaches plain, https (verified) and mTLS upstreams.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
hearth_it_init

check "model synth --preset tiny" "$HEARTH" model synth --preset tiny --out "$IT_TMP/tiny"
CERT=$IT_TMP/cert.pem
KEY=$IT_TMP/key.pem
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$KEY" -out "$CERT" \
  -days 2 -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$IT_TMP/other.key" \
  -out "$IT_TMP/other.pem" -days 2 -subj /CN=other 2>/dev/null
[ -s "$CERT" ] && [ -s "$KEY" ] && pass "a self-signed certificate for 127.0.0.1" || fail "openssl req"

# Bad files: clear errors, exit 2, before anything listens.
CHECK="--tls-cert without --tls-key: exit 2" expect_exit 2 "$HEARTH" serve --model "$IT_TMP/tiny" --port 0 \
  --tls-cert "$CERT"
expect_stderr_contains "does not belong to the certificate" "$HEARTH" serve --model "$IT_TMP/tiny" --port 0 \
  --tls-cert "$CERT" --tls-key "$IT_TMP/other.key"
expect_stderr_contains "not a readable PEM certificate" "$HEARTH" serve --model "$IT_TMP/tiny" --port 0 \
  --tls-cert "$IT_TMP/tiny/config.json" --tls-key "$KEY"

AK=tls-test-key
start_server tls --model "$IT_TMP/tiny" --served-model-name tiny --tls-cert "$CERT" --tls-key "$KEY" --api-key "$AK"
URL=https://127.0.0.1:$PORT
grep -q "listening on https://" "$IT_TMP/tls.log" && pass "serve says https://" || fail "serve banner" "$(tail -3 "$IT_TMP/tls.log")"
c() { curl -s --cacert "$CERT" -H "Authorization: Bearer $AK" "$@"; }
CHECK="/health over TLS, certificate verified" expect_exit 0 curl -sf --cacert "$CERT" "$URL/health"
proto=$(echo | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$CERT" 2>/dev/null | grep -m1 -E "^(New|Protocol)")
echo "$proto" | grep -q "TLSv1.3" && pass "TLS 1.3 negotiated ($proto)" || fail "TLS 1.3" "$proto"
if curl -s --cacert "$CERT" --tlsv1.2 --tls-max 1.2 -o /dev/null "$URL/health"; then
  fail "TLS 1.2 refused by default"
else
  pass "TLS 1.2 refused by default (minimum 1.3)"
fi
# Keep-alive: two requests, one TLS connection (curl reports 1 new connection, then 0).
conns=$(c -o /dev/null -o /dev/null -w '%{num_connects} ' "$URL/health" "$URL/v1/models")
[ "$conns" = "1 0 " ] && pass "keep-alive reuses the TLS connection" || fail "keep-alive over TLS" "num_connects: $conns"
c -N "$URL/v1/chat/completions" -H 'Content-Type: application/json' \
  -d '{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":6,"stream":true}' >"$IT_TMP/s.txt"
grep -q '^data: {' "$IT_TMP/s.txt" && tail -2 "$IT_TMP/s.txt" | grep -q '^data: \[DONE\]' &&
  pass "a streamed chat completion over TLS" || fail "stream over TLS" "$(head -c 300 "$IT_TMP/s.txt")"
# Plain HTTP on the TLS port: refused; the server keeps serving.
if curl -s -m 5 -o /dev/null "http://127.0.0.1:$PORT/health"; then fail "plain HTTP refused"; else pass "plain HTTP on the TLS port is refused"; fi
CHECK="still serving TLS afterwards" expect_exit 0 curl -sf --cacert "$CERT" "$URL/health"

SDK=$ROOT/.cache/npm/node_modules/openai/index.mjs
if command -v node >/dev/null && [ -f "$SDK" ]; then
  HEARTH_URL=$URL HEARTH_MODEL=tiny HEARTH_API_KEY=$AK OPENAI_SDK=$SDK NODE_EXTRA_CA_CERTS=$CERT \
    timeout -k 5 120 node "$(dirname "$0")/serve_openai_sdk.mjs" >"$IT_TMP/node.out" 2>&1
  if grep -qx "all passed" "$IT_TMP/node.out"; then
    pass "openai SDK over HTTPS: $(grep -c '^ok - ' "$IT_TMP/node.out") checks passed"
  else
    fail "openai SDK over HTTPS" "$(grep -v '^ok - ' "$IT_TMP/node.out" | head -15)"
  fi
else
  fail "node and the openai SDK are installed (scripts/setup.sh)"
fi
stop_server tls

# --tls-min-version 1.2: TLS 1.2 accepted (ECDHE + AEAD).
start_server tls12 --model "$IT_TMP/tiny" --served-model-name tiny --tls-cert "$CERT" --tls-key "$KEY" \
  --tls-min-version 1.2
out=$(curl -s --cacert "$CERT" --tlsv1.2 --tls-max 1.2 -w '%{http_code}' -o /dev/null "https://127.0.0.1:$PORT/health")
[ "$out" = 200 ] && pass "--tls-min-version 1.2 accepts TLS 1.2" || fail "TLS 1.2 with --tls-min-version 1.2" "$out"

TLS12=$PORT

# Mutual TLS: a client CA and a client certificate it signed; a serve that requires them.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$IT_TMP/ca.key" \
  -out "$IT_TMP/ca.pem" -days 2 -subj /CN=hearth-test-client-ca 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$IT_TMP/client.key" \
  -out "$IT_TMP/client.csr" -subj /CN=gateway 2>/dev/null
openssl x509 -req -in "$IT_TMP/client.csr" -CA "$IT_TMP/ca.pem" -CAkey "$IT_TMP/ca.key" -CAcreateserial \
  -out "$IT_TMP/client.pem" -days 2 2>/dev/null
start_server mtls --model "$IT_TMP/tiny" --served-model-name tiny --tls-cert "$CERT" --tls-key "$KEY" \
  --tls-client-ca "$IT_TMP/ca.pem"
MTLS=$PORT
if curl -s --cacert "$CERT" -o /dev/null "https://127.0.0.1:$MTLS/health"; then
  fail "--tls-client-ca: a client without a certificate is refused"
else
  pass "--tls-client-ca: a client without a certificate is refused"
fi
code=$(curl -s --cacert "$CERT" --cert "$IT_TMP/client.pem" --key "$IT_TMP/client.key" -o /dev/null \
  -w '%{http_code}' "https://127.0.0.1:$MTLS/health")
[ "$code" = 200 ] && pass "--tls-client-ca: a client with a certificate from that CA gets in" || fail "mTLS client" "$code"

# The gateway: HTTPS to its clients, and to plain, TLS and mTLS upstreams.
start_server plain --model "$IT_TMP/tiny" --served-model-name tiny
PLAIN=$PORT
S="sqlite:$IT_TMP/gw.db"
"$HEARTH" admin --store "$S" tenant create acme >/dev/null
GKEY=$("$HEARTH" admin --store "$S" key create --tenant acme --json | json_eval /dev/stdin "d['key']")
gateway() {  # NAME UPSTREAM [flags...]: starts a TLS gateway, sets GW
  local name=$1 up=$2
  shift 2
  rm -f "$IT_TMP/$name.port"
  "$HEARTH" gateway --upstream "$up" --store "$S" --port 0 --port-file "$IT_TMP/$name.port" \
    --tls-cert "$CERT" --tls-key "$KEY" "$@" >"$IT_TMP/$name.log" 2>&1 &
  SERVER_PIDS+=("$!")
  for _ in $(seq 100); do [ -s "$IT_TMP/$name.port" ] && break; sleep 0.1; done
  GW=$(cat "$IT_TMP/$name.port" 2>/dev/null)
}
via() {  # the status of a chat completion through the gateway on $GW
  curl -s --cacert "$CERT" -o "$IT_TMP/g.txt" -w '%{http_code}' "https://127.0.0.1:$GW/v1/chat/completions" \
    -H "Authorization: Bearer $GKEY" -H 'Content-Type: application/json' \
    -d '{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":4}'
}
gateway gw_plain "http://127.0.0.1:$PLAIN"
code=$(via)
[ "$code" = 200 ] && grep -q '"usage"' "$IT_TMP/g.txt" && pass "gateway over HTTPS in front of a plain upstream: 200" ||
  fail "gateway over TLS" "$code $(head -c 300 "$IT_TMP/g.txt") $(tail -3 "$IT_TMP/gw_plain.log")"
gateway gw_tls "https://127.0.0.1:$TLS12" --upstream-ca "$CERT"
code=$(via)
[ "$code" = 200 ] && pass "gateway to an https upstream (certificate and name verified): 200" ||
  fail "https upstream" "$code $(head -c 300 "$IT_TMP/g.txt")"
gateway gw_untrusted "https://127.0.0.1:$TLS12" --upstream-ca "$IT_TMP/ca.pem"
code=$(via)
[ "$code" = 502 ] && pass "gateway to an https upstream it does not trust: 502" || fail "untrusted upstream" "$code"
gateway gw_mtls "https://127.0.0.1:$MTLS" --upstream-ca "$CERT" --upstream-cert "$IT_TMP/client.pem" \
  --upstream-key "$IT_TMP/client.key"
code=$(via)
[ "$code" = 200 ] && pass "gateway to an mTLS upstream with its client certificate: 200" ||
  fail "mTLS upstream" "$code $(head -c 300 "$IT_TMP/g.txt")"
gateway gw_nocert "https://127.0.0.1:$MTLS" --upstream-ca "$CERT"
code=$(via)
[ "$code" = 502 ] && pass "gateway to an mTLS upstream without a client certificate: 502" || fail "mTLS refused" "$code"
CHECK="--upstream-cert without --upstream-key: exit 2" expect_exit 2 "$HEARTH" gateway --upstream \
  "https://127.0.0.1:$MTLS" --store "$S" --port 0 --upstream-cert "$IT_TMP/client.pem"
finish
