#!/usr/bin/env bash
# The gateway's admin REST API (/admin/v1) with curl: administrators made by the CLI (password policy), sign-in
# sessions, MLPS separation of duties (system / security / audit: each refused the others' work, refusals
# audited), lockout after repeated failed sign-ins and unlock by the security administrator, the idle
# timeout, logout, the audit administrator reading a verified log, and no password in the log or database.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
hearth_it_init

start_mock_upstream --tokens 2 --itl-ms 0
DB=$IT_TMP/gw.db
S="sqlite:$DB"
mk() { env HEARTH_ADMIN_PASSWORD="$3" "$HEARTH" admin --store "$S" admin create "$1" --role "$2"; }
CHECK="admin create: a short password is refused" expect_error 2 "at least 12 characters" \
  env HEARTH_ADMIN_PASSWORD='Short1!' "$HEARTH" admin --store "$S" admin create weak --role system
CHECK="admin create: a password of one character class is refused" expect_error 2 "three of" \
  env HEARTH_ADMIN_PASSWORD='alllowercaseletters' "$HEARTH" admin --store "$S" admin create weak --role system
CHECK="admin create: a password containing the name is refused" expect_error 2 "name" \
  env HEARTH_ADMIN_PASSWORD='Sys-Password-2026' "$HEARTH" admin --store "$S" admin create sys --role system
mk sys system 'Tenants&Keys-2026' >/dev/null && mk sec security 'Accounts#Only-2026' >/dev/null &&
  mk aud audit 'ReadTheLog!-2026' >/dev/null && pass "admin create: system, security and audit administrators" ||
  fail "admin create"

# An OIDC identity provider (RS256 key made with openssl): its users with the role "hearth-auditors" sign in as
# audit administrators, "hearth-operators" as system administrators.
JWT_TOOL=$(cd "$(dirname "$0")" && pwd)/jwt_tool.py
openssl genrsa -out "$IT_TMP/idp.pem" 2048 2>/dev/null
python3 "$JWT_TOOL" jwks "$IT_TMP/idp.pem" >"$IT_TMP/jwks.json"
ISS=https://idp.example/realms/bank
idp_token() {  # SUBJECT ROLES_JSON [AUDIENCE] -> an ID token
  python3 "$JWT_TOOL" token "{\"iss\":\"$ISS\",\"aud\":\"${3:-hearth}\",\"sub\":\"$1\",\"exp\":$(($(date +%s) + 300)),\"realm_access\":{\"roles\":$2}}" "$IT_TMP/idp.pem"
}
CHECK="admin create: names with ':' are kept for identity-provider accounts" expect_error 2 "reserved" \
  env HEARTH_ADMIN_PASSWORD='Tenants&Keys-2026' "$HEARTH" admin --store "$S" admin create oidc:x --role system
"$HEARTH" gateway --upstream "http://127.0.0.1:$(cat "$IT_TMP/up")" --store "$S" --port 0 --port-file "$IT_TMP/gw" \
  --admin-max-failures 3 --admin-lockout-s 600 --admin-idle-timeout-s 2 \
  --oidc-jwks "$IT_TMP/jwks.json" --oidc-issuer "$ISS" --oidc-audience hearth --oidc-roles-claim realm_access.roles \
  --oidc-admin-role hearth-auditors=audit --oidc-admin-role hearth-operators=system >"$IT_TMP/gw.log" 2>&1 &
SERVER_PIDS+=("$!")
for _ in $(seq 50); do [ -s "$IT_TMP/gw" ] && break; sleep 0.1; done
[ -s "$IT_TMP/gw" ] && pass "gateway up" || { fail "gateway start" "$(tail -5 "$IT_TMP/gw.log")"; finish; }
A=http://127.0.0.1:$(cat "$IT_TMP/gw")/admin/v1
call() {  # METHOD PATH TOKEN [BODY] -> body in $IT_TMP/r.json; prints the status
  curl -s -o "$IT_TMP/r.json" -w '%{http_code}' -X "$1" "$A$2" ${3:+-H "Authorization: Bearer $3"} \
    -H 'Content-Type: application/json' ${4:+-d "$4"}
}
login() {  # NAME PASSWORD -> token (empty when refused)
  [ "$(call POST /login "" "{\"name\":\"$1\",\"password\":\"$2\"}")" = 200 ] &&
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$IT_TMP/r.json"
}
expect_status() {  # LABEL WANT METHOD PATH TOKEN [BODY]
  local got
  got=$(call "$3" "$4" "$5" "${6:-}")
  [ "$got" = "$2" ] && pass "$1" || fail "$1" "status $got, wanted $2: $(head -c 300 "$IT_TMP/r.json")"
}

SYS=$(login sys 'Tenants&Keys-2026')
SEC=$(login sec 'Accounts#Only-2026')
AUD=$(login aud 'ReadTheLog!-2026')
[ -n "$SYS" ] && [ -n "$SEC" ] && [ -n "$AUD" ] && pass "sign-in: three sessions" || fail "sign-in" "$(cat "$IT_TMP/r.json")"
expect_status "no session: 401" 401 GET /tenants ""
expect_status "system: creates a tenant" 201 POST /tenants "$SYS" '{"name":"bank","rpm":60,"tpm":100000}'
expect_status "system: lists tenants" 200 GET /tenants "$SYS"
grep -q '"name":"bank"' "$IT_TMP/r.json" && grep -q '"rpm":60' "$IT_TMP/r.json" && pass "the tenant is listed with its limits" ||
  fail "tenant list" "$(cat "$IT_TMP/r.json")"
expect_status "system: creates an API key for the tenant" 201 POST /tenants/bank/keys "$SYS" '{"expires_days": 30}'
KEY=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["key"])' "$IT_TMP/r.json")
PREFIX=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["prefix"])' "$IT_TMP/r.json")
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$(cat "$IT_TMP/gw")/v1/completions" \
  -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d '{"model":"mock","prompt":"x","max_tokens":2}')" = 200 ] &&
  pass "the key works for the tenant's requests" || fail "key from the admin API"
expect_status "system: a key for a tenant that does not exist: 404" 404 POST /tenants/nobody/keys "$SYS"
expect_status "system: lists keys" 200 GET /keys "$SYS"
grep -q "\"prefix\":\"$PREFIX\"" "$IT_TMP/r.json" && ! grep -q "${KEY:12}" "$IT_TMP/r.json" &&
  pass "keys listed by prefix, never the secret" || fail "key list" "$(cat "$IT_TMP/r.json")"
expect_status "audit: reads usage records" 200 GET "/usage?tenant=bank&limit=10" "$AUD"
grep -q '"tenant":"bank"' "$IT_TMP/r.json" && pass "usage over the admin API: the request is there" ||
  fail "usage read" "$(cat "$IT_TMP/r.json")"
expect_status "security: may not read usage (403)" 403 GET /usage "$SEC"
expect_status "audit: may not create keys (403)" 403 POST /tenants/bank/keys "$AUD"
expect_status "system: creates a project in the tenant" 201 POST /tenants/bank/projects "$SYS" '{"name":"risk"}'
expect_status "system: a key of the project, issued to a user" 201 POST /tenants/bank/keys "$SYS" \
  '{"project":"risk","owner":"bob@bank"}'
grep -q '"project":"risk"' "$IT_TMP/r.json" && grep -q '"owner":"bob@bank"' "$IT_TMP/r.json" &&
  pass "the key names its project and owner" || fail "project key" "$(cat "$IT_TMP/r.json")"
expect_status "system: a key of a project the tenant lacks: 404" 404 POST /tenants/bank/keys "$SYS" '{"project":"nope"}'
expect_status "audit: lists projects" 200 GET "/projects?tenant=bank" "$AUD"
grep -q '"name":"risk"' "$IT_TMP/r.json" && pass "projects listed" || fail "project list" "$(cat "$IT_TMP/r.json")"
expect_status "audit: may not create projects (403)" 403 POST /tenants/bank/projects "$AUD" '{"name":"x"}'
expect_status "system: a project with an active key cannot be deleted" 400 DELETE /tenants/bank/projects/risk "$SYS"
expect_status "system: revokes the key" 200 DELETE "/keys/$PREFIX" "$SYS"
expect_status "system: sets a model's price" 200 PUT /prices/mock "$SYS" '{"input":"0.27","output":1.1,"currency":"EUR"}'
expect_status "system: sets a licence tier" 200 PUT /tiers/gold "$SYS" '{"base_fee":"500","per_call":"0.002","included_calls":1000}'
expect_status "audit: reads the price book" 200 GET /prices "$AUD"
grep -q '"model":"mock"' "$IT_TMP/r.json" && grep -q '"output":"1.10"' "$IT_TMP/r.json" && grep -q '"currency":"EUR"' "$IT_TMP/r.json" &&
  pass "the price is stored as given" || fail "price read" "$(cat "$IT_TMP/r.json")"
expect_status "security: may not change prices (403)" 403 PUT /prices/mock "$SEC" '{"input":"0"}'
expect_status "system: a bad amount is refused (400)" 400 PUT /prices/mock "$SYS" '{"input":"cheap"}'
expect_status "system: deletes a tier" 200 DELETE /tiers/gold "$SYS"
expect_status "system: deleting it again: 404" 404 DELETE /tiers/gold "$SYS"
expect_status "system: may not read the audit log (403)" 403 GET /audit "$SYS"
expect_status "system: may not manage administrators (403)" 403 GET /admins "$SYS"
expect_status "security: may not create tenants (403)" 403 POST /tenants "$SEC" '{"name":"x"}'
expect_status "audit: may not create tenants (403)" 403 POST /tenants "$AUD" '{"name":"x"}'
expect_status "security: a weak password for a new administrator is refused (400)" 400 POST /admins "$SEC" \
  '{"name":"ops2","role":"system","password":"password"}'
expect_status "security: creates an administrator" 201 POST /admins "$SEC" \
  '{"name":"ops2","role":"system","password":"Second-Operator-77"}'
[ -n "$(login ops2 'Second-Operator-77')" ] && pass "the new administrator signs in" || fail "ops2 sign-in"

# Lockout: three wrong passwords lock the account, even against the right one; the security admin unlocks.
for _ in 1 2 3; do call POST /login "" '{"name":"aud","password":"wrong-Password-1"}' >/dev/null; done
expect_status "lockout: after 3 failures the right password is refused too" 401 POST /login "" \
  '{"name":"aud","password":"ReadTheLog!-2026"}'
grep -q '"code":"locked"' "$IT_TMP/r.json" && pass "lockout: the refusal says locked" || fail "locked code" "$(cat "$IT_TMP/r.json")"
expect_status "security: unlocks the account" 200 POST /admins/aud/unlock "$SEC"
AUD=$(login aud 'ReadTheLog!-2026')
[ -n "$AUD" ] && pass "unlocked: sign-in works again" || fail "sign-in after unlock"
expect_status "audit: reads the log, verified" 200 GET /audit "$AUD"
python3 - "$IT_TMP/r.json" <<'PY' && pass "audit log over the API: intact; sign-ins, refusals, separation denials and admin actions recorded" || fail "audit content" "$(head -c 600 "$IT_TMP/r.json")"
import json, sys
d = json.load(open(sys.argv[1]))
acts = {(r["actor"], r["action"]) for r in d["data"]}
need = {("admin:sys", "admin.login"), ("admin:sys", "tenant.create"), ("admin:sys", "admin.deny"),
        ("admin:aud", "admin.login.deny"), ("admin:sec", "admin.create"), ("admin:sec", "admin.unlock"),
        ("cli:" + __import__("os").environ.get("USER", "unknown"), "admin.create")}
assert d["intact"], d
missing = need - acts
assert not missing, missing
PY

# Bills (system, audit) and the audit log in pages.
MONTH=$(date -u +%Y-%m)
expect_status "system: this month's bills" 200 GET "/bills?month=$MONTH" "$SYS"
grep -q '"tenant":"bank"' "$IT_TMP/r.json" && grep -q '"tier":"gold"\|"total"' "$IT_TMP/r.json" &&
  pass "bills: one per tenant with the total" || fail "bills" "$(head -c 400 "$IT_TMP/r.json")"
expect_status "bills: a malformed month is 400" 400 GET "/bills?month=2026-13" "$SYS"
expect_status "security: may not read bills (403)" 403 GET "/bills?month=$MONTH" "$SEC"
expect_status "audit: the first page of two records" 200 GET "/audit?limit=2" "$AUD"
NEXT=$(json_eval "$IT_TMP/r.json" "d['next_after'] if len(d['data']) == 2 and d['has_more'] and d['intact'] else -1")
expect_status "audit: the next page" 200 GET "/audit?after=$NEXT&limit=2" "$AUD"
if [ "$NEXT" -gt 0 ] && json_eval "$IT_TMP/r.json" "d['data'][0]['seq']" | grep -qx "$((NEXT + 1))" &&
  ! grep -q '"intact"' "$IT_TMP/r.json"; then
  pass "audit pages: the next page starts after next_after (verification on the first page only)"
else
  fail "audit paging" "next $NEXT: $(head -c 300 "$IT_TMP/r.json")"
fi
expect_status "audit: a limit above 1,000 is 400" 400 GET "/audit?limit=5000" "$AUD"

# Administrators from the OIDC provider: an ID token with a mapped role is exchanged for a session; the account
# (oidc:SUBJECT) is provisioned with the role; two mapped roles, none, or a token for another audience: refused.
id_login() {  # TOKEN -> status; the session token in $IT_TMP/id.tok
  local st
  st=$(call POST /login "" "{\"id_token\":\"$1\"}")
  [ "$st" = 200 ] && python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$IT_TMP/r.json" >"$IT_TMP/id.tok"
  echo "$st"
}
if [ "$(id_login "$(idp_token u-4711 '["hearth-auditors","offline_access"]')")" = 200 ] &&
  grep -q '"name":"oidc:u-4711"' "$IT_TMP/r.json" && grep -q '"role":"audit"' "$IT_TMP/r.json"; then
  pass "OIDC: an ID token with hearth-auditors signs in as audit administrator oidc:u-4711"
else
  fail "OIDC sign-in" "$(cat "$IT_TMP/r.json")"
fi
IDT=$(cat "$IT_TMP/id.tok" 2>/dev/null)
expect_status "OIDC administrator (audit): reads the audit log" 200 GET /audit "$IDT"
expect_status "OIDC administrator (audit): may not create tenants" 403 POST /tenants "$IDT" '{"name":"x"}'
expect_status "OIDC administrator: no local password to change" 400 POST /password "$IDT" '{"old":"a","new":"b"}'
[ "$(id_login "$(idp_token u-1 '["hearth-auditors","hearth-operators"]')")" = 401 ] &&
  pass "OIDC: a token mapping to two administrator roles is refused (separation of duties)" ||
  fail "OIDC two roles" "$(cat "$IT_TMP/r.json")"
[ "$(id_login "$(idp_token u-2 '["offline_access"]')")" = 401 ] &&
  pass "OIDC: a token without an administrator role is refused" || fail "OIDC no role" "$(cat "$IT_TMP/r.json")"
[ "$(id_login "$(idp_token u-4711 '["hearth-auditors"]' other-app)")" = 401 ] &&
  pass "OIDC: a token for another audience is refused" || fail "OIDC audience" "$(cat "$IT_TMP/r.json")"
expect_status "security: sees the provisioned account" 200 GET /admins "$SEC"
grep -q '"oidc:u-4711"' "$IT_TMP/r.json" && pass "the provisioned account is listed" || fail "listed" "$(head -c 400 "$IT_TMP/r.json")"
expect_status "security: disables it" 200 POST /admins/oidc:u-4711/disable "$SEC"
[ "$(id_login "$(idp_token u-4711 '["hearth-auditors"]')")" = 401 ] &&
  pass "OIDC: a disabled provisioned account cannot sign in again" || fail "disabled OIDC account" "$(cat "$IT_TMP/r.json")"

# Logout ends a session; inactivity ends one too (--admin-idle-timeout-s 2).
expect_status "logout" 204 POST /logout "$SEC"
expect_status "after logout the token is refused" 401 GET /admins "$SEC"
sleep 2.5
expect_status "idle timeout: a session unused for longer ends" 401 GET /tenants "$SYS"
grep -q 'inactivity' "$IT_TMP/r.json" && pass "idle timeout: the refusal says why" || fail "idle message" "$(cat "$IT_TMP/r.json")"

if grep -rqaF -e 'Tenants&Keys-2026' -e 'Accounts#Only-2026' -e 'Second-Operator-77' "$IT_TMP/gw.log" "$DB"* 2>/dev/null; then
  fail "a password appears in the gateway's log or database"
else
  pass "no administrator password in the gateway's log or database"
fi
finish
