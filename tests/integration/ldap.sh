#!/usr/bin/env bash
# hearth gateway with LDAP users, against a real OpenLDAP slapd started here: HTTP Basic sign-in by
# search-then-bind through a service account, groups mapped to tenants (first match wins), a user in no
# mapped group, wrong and empty passwords, an unknown user, a filter-injection attempt, lockout after
# repeated refusals, 503 when the directory is down (cached sign-ins keep working), every decision audited
# with an intact chain, passwords in no log and not in the database, and bad configurations refused at start.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
hearth_it_init

SUFFIX="dc=bank,dc=example"
start_slapd "$SUFFIX" rootsecret || { fail "slapd" "not installed"; finish; }
pw() { slappasswd -s "$1"; }
cat >"$IT_TMP/dir.ldif" <<EOF
dn: $SUFFIX
objectClass: dcObject
objectClass: organization
o: Bank
dc: bank

dn: ou=people,$SUFFIX
objectClass: organizationalUnit
ou: people

dn: ou=groups,$SUFFIX
objectClass: organizationalUnit
ou: groups

dn: cn=reader,$SUFFIX
objectClass: inetOrgPerson
cn: reader
sn: service
userPassword: $(pw readerpw)

dn: uid=alice,ou=people,$SUFFIX
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: A
userPassword: $(pw alice-Secret-1)

dn: uid=bob,ou=people,$SUFFIX
objectClass: inetOrgPerson
uid: bob
cn: Bob
sn: B
userPassword: $(pw bob-Secret-2)

dn: uid=carol,ou=people,$SUFFIX
objectClass: inetOrgPerson
uid: carol
cn: Carol
sn: C
userPassword: $(pw carol-Secret-3)

dn: uid=dave,ou=people,$SUFFIX
objectClass: inetOrgPerson
uid: dave
cn: Dave
sn: D
userPassword: $(pw dave-Secret-4)

dn: cn=analysts,ou=groups,$SUFFIX
objectClass: groupOfNames
cn: analysts
member: uid=alice,ou=people,$SUFFIX
member: uid=dave,ou=people,$SUFFIX

dn: cn=auditors,ou=groups,$SUFFIX
objectClass: groupOfNames
cn: auditors
member: uid=carol,ou=people,$SUFFIX

dn: cn=visitors,ou=groups,$SUFFIX
objectClass: groupOfNames
cn: visitors
member: uid=bob,ou=people,$SUFFIX

dn: cn=secops,ou=groups,$SUFFIX
objectClass: groupOfNames
cn: secops
member: uid=carol,ou=people,$SUFFIX
EOF
check "directory loaded with ldapadd" ldapadd -x -H "$LDAP_URL" -D "$LDAP_ROOT_DN" -w rootsecret -f "$IT_TMP/dir.ldif"

start_mock_upstream --tokens 2 --itl-ms 0
S="sqlite:$IT_TMP/gw.db"
"$HEARTH" admin --store "$S" tenant create acme >/dev/null && "$HEARTH" admin --store "$S" tenant create audit >/dev/null

LDAP_ARGS=(--ldap-url "$LDAP_URL" --ldap-bind-dn "cn=reader,$SUFFIX" --ldap-user-base "ou=people,$SUFFIX"
  --ldap-group-base "ou=groups,$SUFFIX" --ldap-group-tenant "cn=analysts,ou=groups,$SUFFIX=acme"
  --ldap-group-tenant "CN=Auditors, OU=groups, $SUFFIX=audit" --ldap-max-failures 3 --ldap-lockout-s 60)

# Configurations that cannot work are refused before the gateway listens.
CHECK="--ldap-bind-dn without HEARTH_LDAP_BIND_PASSWORD: exit 2" expect_error 2 HEARTH_LDAP_BIND_PASSWORD \
  "$HEARTH" gateway --upstream "http://127.0.0.1:1" --store "$S" --port 0 "${LDAP_ARGS[@]}"
CHECK="--ldap-url without a group mapping: exit 2" expect_error 2 "--ldap-group-tenant" \
  "$HEARTH" gateway --upstream "http://127.0.0.1:1" --store "$S" --port 0 --ldap-url "$LDAP_URL" \
  --ldap-user-base "ou=people,$SUFFIX"
CHECK="--ldap-url with another scheme: exit 2" expect_error 2 "ldap://" \
  "$HEARTH" gateway --upstream "http://127.0.0.1:1" --store "$S" --port 0 --ldap-url "http://x" \
  --ldap-user-base "ou=people,$SUFFIX" --ldap-group-tenant "cn=a,dc=b=acme"

HEARTH_LDAP_BIND_PASSWORD=readerpw "$HEARTH" gateway --upstream "http://127.0.0.1:$(cat "$IT_TMP/up")" --store "$S" \
  --port 0 --port-file "$IT_TMP/gw" --key-cache-ms 400 --audit-requests prompts "${LDAP_ARGS[@]}" \
  --ldap-admin-group "cn=analysts,ou=groups,$SUFFIX=system" --ldap-admin-group "cn=auditors,ou=groups,$SUFFIX=audit" \
  --ldap-admin-group "cn=secops,ou=groups,$SUFFIX=security" \
  >"$IT_TMP/gw.log" 2>&1 &
SERVER_PIDS+=("$!")
for _ in $(seq 50); do [ -s "$IT_TMP/gw" ] && break; sleep 0.1; done
[ -s "$IT_TMP/gw" ] && pass "gateway with LDAP up" || { fail "gateway start" "$(tail -5 "$IT_TMP/gw.log")"; finish; }
URL=http://127.0.0.1:$(cat "$IT_TMP/gw")
BODY='{"model":"mock","prompt":"x","max_tokens":2}'
call() {  # USER:PASSWORD (or "raw:HEADER VALUE") -> response in $IT_TMP/r.txt; prints the status code
  local auth=(-u "$1")
  [ "${1#raw:}" != "$1" ] && auth=(-H "Authorization: ${1#raw:}")
  curl -s -i -X POST "$URL/v1/completions" -H 'Content-Type: application/json' "${auth[@]}" -d "$BODY" \
    >"$IT_TMP/r.txt"
  head -1 "$IT_TMP/r.txt" | awk '{print $2}'
}
expect_call() {  # LABEL USER:PASSWORD STATUS [TEXT in the response]
  local got
  got=$(call "$2")
  if [ "$got" = "$3" ] && { [ -z "${4:-}" ] || grep -q -- "$4" "$IT_TMP/r.txt"; }; then
    pass "$1"
  else
    fail "$1" "status $got, wanted $3${4:+ with '$4'}: $(head -c 600 "$IT_TMP/r.txt")"
  fi
}

expect_call "alice (analysts -> acme) signs in with her password: 200" "alice:alice-Secret-1" 200 '"choices"'
expect_call "carol (auditors, mapped with a differently spelled DN) -> tenant audit: 200" "carol:carol-Secret-3" 200
expect_call "wrong password: 401 with a Basic challenge" "alice:wrong" 401 'WWW-Authenticate: Basic'
expect_call "unknown user: 401, the same message as a wrong password" "mallory:alice-Secret-1" 401 \
  'user name or password was refused'
expect_call "empty password (an LDAP anonymous bind) is refused: 401" "carol:" 401
expect_call "filter injection 'al*' matches nobody: 401" "al*:alice-Secret-1" 401
expect_call "bob is in no mapped group: 401" "bob:bob-Secret-2" 401 'no group that maps'
expect_call "Basic credentials without a ':' : 401" "raw:Basic $(printf alice | base64)" 401
expect_call "Basic credentials that are not base64: 401" "raw:Basic !!!" 401
for i in 1 2 3; do call "dave:bad-$i" >/dev/null; done
expect_call "dave after 3 refused passwords is locked out, even with the right one: 401" "dave:dave-Secret-4" 401 \
  'locked for another'

# Directory users as administrators (--ldap-admin-group): sign-in with the directory password, the role from the
# group, the account ldap:USER provisioned; two mapped roles (carol: auditors and secops) or none (bob): refused.
admin_login() {  # USER PASSWORD -> status; response in $IT_TMP/a.json
  curl -s -o "$IT_TMP/a.json" -w '%{http_code}' -X POST "$URL/admin/v1/login" -H 'Content-Type: application/json' \
    -d "{\"name\":\"$1\",\"password\":\"$2\"}"
}
if [ "$(admin_login alice alice-Secret-1)" = 200 ] && grep -q '"name":"ldap:alice"' "$IT_TMP/a.json" &&
  grep -q '"role":"system"' "$IT_TMP/a.json"; then
  pass "LDAP administrator: alice (analysts) signs in to the admin API as system administrator ldap:alice"
else
  fail "LDAP admin sign-in" "$(cat "$IT_TMP/a.json")"
fi
TOK=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("token",""))' "$IT_TMP/a.json")
st=$(curl -s -o /dev/null -w '%{http_code}' "$URL/admin/v1/tenants" -H "Authorization: Bearer $TOK")
st2=$(curl -s -o /dev/null -w '%{http_code}' "$URL/admin/v1/admins" -H "Authorization: Bearer $TOK")
[ "$st" = 200 ] && [ "$st2" = 403 ] && pass "ldap:alice (system) lists tenants, may not manage administrators" ||
  fail "LDAP admin roles" "tenants $st admins $st2"
[ "$(admin_login carol carol-Secret-3)" = 401 ] &&
  pass "LDAP administrator: two mapped roles (auditors + secops) are refused" || fail "carol two roles" "$(cat "$IT_TMP/a.json")"
[ "$(admin_login bob bob-Secret-2)" = 401 ] && pass "LDAP administrator: no mapped group, no sign-in" ||
  fail "bob admin" "$(cat "$IT_TMP/a.json")"
[ "$(admin_login alice wrong-password)" = 401 ] && pass "LDAP administrator: a wrong password is refused" ||
  fail "alice wrong admin password" "$(cat "$IT_TMP/a.json")"

# The directory goes away: a cached sign-in still works for --key-cache-ms, a new one gets 503.
call "alice:alice-Secret-1" >/dev/null
kill -KILL "$(cat "$SLAPD_PID_FILE")"
expect_call "directory down: alice's cached sign-in still works" "alice:alice-Secret-1" 200
sleep 0.5
expect_call "directory down, cache expired: 503 with Retry-After" "alice:alice-Secret-1" 503 'Retry-After'

# Usage under the mapped tenants; every decision audited; the chain intact; no password anywhere.
cnt=$(sqlite3 "$IT_TMP/gw.db" "select tenant || ':' || count(*) from usage group by tenant order by tenant" | tr '\n' ' ')
[ "$cnt" = "acme:3 audit:1 " ] && pass "usage metered under the groups' tenants ($cnt)" || fail "usage by tenant" "$cnt"
audit=$(sqlite3 "$IT_TMP/gw.db" "select actor || ' ' || action || ' ' || detail from audit_log")
if grep -q "ldap:alice auth.allow tenant=acme dn=uid=alice,ou=people,$SUFFIX" <<<"$audit" &&
  grep -q "ldap:alice auth.deny ldap_denied .*wrong password" <<<"$audit" &&
  grep -q "ldap:mallory auth.deny ldap_denied .*no such user" <<<"$audit" &&
  grep -q "ldap:bob auth.deny no_tenant" <<<"$audit" && grep -q "ldap:dave auth.deny locked" <<<"$audit" &&
  grep -q "ldap:alice auth.error" <<<"$audit" &&
  grep -qF 'ldap:carol request tenant=audit model=mock status=200 outcome=ok' <<<"$audit" &&
  grep -qF 'body={"model":"mock","prompt":"x","max_tokens":2' <<<"$audit" &&
  grep -q "admin:ldap:alice admin.provision role=system via ldap" <<<"$audit" &&
  grep -q "admin:ldap:carol admin.login.deny .*two administrator roles" <<<"$audit"; then
  pass "allow, deny (with the LDAP reason), lockout, directory errors, (--audit-requests prompts) requests with their bodies and administrator sign-ins are in the audit log"
else
  fail "audit records" "$audit"
fi
kill -TERM "${SERVER_PIDS[-1]}" 2>/dev/null
wait "${SERVER_PIDS[-1]}" 2>/dev/null
CHECK="audit verify: the chain is intact" expect_exit 0 "$HEARTH" audit verify --store "$S"
if grep -rq -e "alice-Secret-1" -e "readerpw" -e "dave-Secret-4" "$IT_TMP/gw.log" "$IT_TMP/gw.db"* 2>/dev/null; then
  fail "passwords appear in the gateway log or database"
else
  pass "no password in the gateway's log or database"
fi
finish
