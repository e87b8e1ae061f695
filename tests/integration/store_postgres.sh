#!/usr/bin/env bash
# The PostgreSQL store against a real server started here (initdb + pg_ctl in a temp dir): the store's
# unit tests on that server (every StoreTest on both backends), then hearth admin and hearth audit verify
# with --store postgresql://..., and a record modified and one deleted with psql are named by `verify`.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
hearth_it_init

if ! start_postgres; then
  fail "start PostgreSQL"
  finish
fi
STORE_TEST=${HEARTH_STORE_TEST:-$(dirname "$HEARTH")/tests/store_test}
export HEARTH_AUDIT_KEY=6b1f0c2d9e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c
if [ -x "$STORE_TEST" ]; then
  check "store_test on PostgreSQL" env HEARTH_TEST_PG_URL="$PG_URL" "$STORE_TEST" --gtest_filter='*postgres*:StoreUrl.*'
  if grep -q "SKIPPED" "$IT_OUT" || ! grep -q "PASSED" "$IT_OUT"; then
    fail "no PostgreSQL test skipped" "$(grep -E 'SKIPPED|PASSED' "$IT_OUT" | head -5)"
  else
    pass "no PostgreSQL test skipped ($(grep -o '[0-9]* tests\? from [0-9]* test suites\? ran' "$IT_OUT"))"
  fi
else
  fail "store_test binary at $STORE_TEST"
fi

S=$PG_URL
CHECK="tenant create" expect_json_stdout "d['name'] == 'acme' and d['rpm'] == 60" \
  "$HEARTH" admin --store "$S" tenant create acme --rpm 60 --tpm 100000 --json
CHECK="duplicate tenant refused" expect_error 2 "already exists" "$HEARTH" admin --store "$S" tenant create acme
CHECK="key create" expect_json_stdout "d['key'].startswith(d['prefix'] + '_')" \
  "$HEARTH" admin --store "$S" key create --tenant acme --json
PREFIX=$(json_eval "$IT_OUT" "d['prefix']")
CHECK="key revoke" expect_exit 0 "$HEARTH" admin --store "$S" key revoke "$PREFIX"
CHECK="key list" expect_json_stdout "len(d) == 1 and d[0]['state'] == 'revoked'" \
  "$HEARTH" admin --store "$S" key list --json
CHECK="audit verify: intact" expect_json_stdout "d['intact'] and d['records'] == 3" \
  "$HEARTH" audit verify --store "$S" --json
CHECK="wrong audit key: every record fails" expect_error 1 "record 1 was modified" \
  env HEARTH_AUDIT_KEY=00112233445566778899aabbccddeeff "$HEARTH" audit verify --store "$S"
CHECK="no audit key: the error says what to set" expect_error nonzero "HEARTH_AUDIT_KEY" \
  env -u HEARTH_AUDIT_KEY "$HEARTH" admin --store "$S" tenant list
PSQL=("$PG_BIN/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U hearth -d hearth -v ON_ERROR_STOP=1)
check "tamper: modify record 2 with psql" "${PSQL[@]}" -c "UPDATE audit_log SET detail = 'x' WHERE seq = 2"
CHECK="audit verify names record 2" expect_error 1 "record 2 was modified" "$HEARTH" audit verify --store "$S"
check "tamper: also delete record 3" "${PSQL[@]}" -c "DELETE FROM audit_log WHERE seq = 3"
CHECK="audit verify still names the first bad record" expect_error 1 "record 2" "$HEARTH" audit verify --store "$S"
CHECK="unreachable server: a clear error without the password" expect_error 1 "cannot connect to the PostgreSQL store" \
  "$HEARTH" admin --store "postgresql://hearth:pw123@127.0.0.1:1/hearth?connect_timeout=2" tenant list
if grep -q pw123 "$IT_ERR"; then fail "the password is not printed"; else pass "the password is not printed"; fi
finish
