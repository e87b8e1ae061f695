#!/usr/bin/env bash
# hearth admin and hearth audit verify on a SQLite store (issue #7's first piece): tenants with limits,
# API keys shown once and stored hashed, revocation, every action audited; the audit chain verifies, and
# a record modified or deleted with the sqlite3 CLI (an attacker with file access) is named by `verify`.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
hearth_it_init

DB=$IT_TMP/gw.db
S="sqlite:$DB"
expect_exit 0 "$HEARTH" admin --help
expect_exit 0 "$HEARTH" audit verify --help
CHECK="tenant create" expect_json_stdout "d['name'] == 'acme' and d['rpm'] == 60" \
  "$HEARTH" admin --store "$S" tenant create acme --rpm 60 --tpm 100000 --budget-tokens 5000000 --json
CHECK="second tenant" expect_exit 0 "$HEARTH" admin --store "$S" tenant create bank
CHECK="duplicate tenant refused" expect_error 2 "already exists" "$HEARTH" admin --store "$S" tenant create acme
CHECK="negative limit refused" expect_error nonzero "" "$HEARTH" admin --store "$S" tenant create x --rpm -1
CHECK="tenant list" expect_json_stdout "[t['name'] for t in d] == ['acme', 'bank'] and d[0]['tpm'] == 100000" \
  "$HEARTH" admin --store "$S" tenant list --json
CHECK="key create --json prints the key once" expect_json_stdout \
  "d['key'].startswith(d['prefix'] + '_') and d['tenant'] == 'acme' and len(d['key']) == 55" \
  "$HEARTH" admin --store "$S" key create --tenant acme --json
KEY=$(json_eval "$IT_OUT" "d['key']")
PREFIX=$(json_eval "$IT_OUT" "d['prefix']")
CHECK="key for an unknown tenant" expect_error 1 "no tenant 'nobody'" \
  "$HEARTH" admin --store "$S" key create --tenant nobody
CHECK="key list shows the prefix, never the secret" expect_json_stdout \
  "len(d) == 1 and d[0]['prefix'] == '$PREFIX' and d[0]['state'] == 'active' and 'key' not in d[0]" \
  "$HEARTH" admin --store "$S" key list --json
if grep -qaF -- "${KEY#"$PREFIX"_}" "$DB" "$DB-wal" 2>/dev/null; then
  fail "the key's secret is not in the database files" "found in $DB"
else
  pass "the key's secret is not in the database files"
fi
CHECK="key revoke" expect_exit 0 "$HEARTH" admin --store "$S" key revoke "$PREFIX"
CHECK="revoked key listed as revoked" expect_json_stdout "d[0]['state'] == 'revoked'" \
  "$HEARTH" admin --store "$S" key list --tenant acme --json
CHECK="revoking twice: not found" expect_error 1 "no active key" "$HEARTH" admin --store "$S" key revoke "$PREFIX"
CHECK="audit verify: intact, every action recorded" expect_json_stdout "d['intact'] and d['records'] == 4" \
  "$HEARTH" audit verify --store "$S" --json
CHECK="an unknown store scheme is refused clearly" expect_error 2 "must be sqlite:PATH or postgresql://" \
  "$HEARTH" admin --store mysql://localhost/hearth tenant list

# Licence tiers and a monthly bill (no usage yet: the base fee alone).
check "tier set" "$HEARTH" admin --store "$S" tier set gold --base-fee 500 --per-call 0.002 --included-calls 1000
CHECK="tenant update --tier: an unknown tier is refused" expect_error 2 "no licence tier 'silver'" \
  "$HEARTH" admin --store "$S" tenant update acme --tier silver
check "tenant update --tier gold" "$HEARTH" admin --store "$S" tenant update acme --tier gold
CHECK="usage bill: the tier's base fee for a month without usage" expect_json_stdout \
  "d[0]['tenant'] == 'acme' and d[0]['tier'] == 'gold' and d[0]['total'] == '500.00' and d[0]['requests'] == 0" \
  "$HEARTH" admin --store "$S" usage bill --month 2026-11 --tenant acme --json
CHECK="usage bill: --month must be YYYY-MM" expect_error 2 "YYYY-MM" "$HEARTH" admin --store "$S" usage bill --month 2026-13
CHECK="tier delete: refused while a tenant is on it" expect_error 2 "in use" "$HEARTH" admin --store "$S" tier delete gold

# Retention: a store of its own; pruning below 180 days needs an explicit flag; what remains still verifies.
P="sqlite:$IT_TMP/prune.db"
for t in a b c; do "$HEARTH" admin --store "$P" tenant create "$t" >/dev/null; done
CHECK="audit prune: below 180 days is refused without --allow-short-retention" expect_error 2 "below 180 days" \
  "$HEARTH" audit prune --store "$P" --keep-days 30
CHECK="audit prune: the default keeps 180 days (nothing to remove)" expect_json_stdout "d['removed'] == 0" \
  "$HEARTH" audit prune --store "$P" --json
CHECK="audit prune --keep-days 0: every record so far removed" expect_json_stdout "d['removed'] == 3" \
  "$HEARTH" audit prune --store "$P" --keep-days 0 --allow-short-retention --json
"$HEARTH" admin --store "$P" tenant create d >/dev/null
CHECK="audit verify after pruning: intact (the prune record and what follows)" expect_json_stdout \
  "d['intact'] and d['records'] == 2" "$HEARTH" audit verify --store "$P" --json

if command -v sqlite3 >/dev/null; then
  cp "$DB" "$IT_TMP/copy.db" && cp "$DB.audit-key" "$IT_TMP/copy.db.audit-key"
  [ -f "$DB-wal" ] && cp "$DB-wal" "$IT_TMP/copy.db-wal"
  sqlite3 "$DB" "UPDATE audit_log SET detail = 'name=evil' WHERE seq = 2"
  CHECK="audit verify: a modified record is named" expect_error 1 "record 2" "$HEARTH" audit verify --store "$S"
  sqlite3 "$IT_TMP/copy.db" "DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)"
  CHECK="audit verify: a deleted last record is found" expect_error 1 "removed" \
    "$HEARTH" audit verify --store "sqlite:$IT_TMP/copy.db"
  sqlite3 "$IT_TMP/prune.db" "UPDATE audit_anchor SET seq = 1"
  CHECK="audit verify: a forged pruning anchor is found" expect_error 1 "anchor" "$HEARTH" audit verify --store "$P"
  CHECK="audit prune refuses a broken chain (the evidence stays)" expect_error 1 "not pruning" \
    "$HEARTH" audit prune --store "$P" --keep-days 0 --allow-short-retention
else
  fail "sqlite3 CLI present (scripts/setup.sh installs it)" "not found"
fi
finish
