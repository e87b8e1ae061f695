# shellcheck shell=bash
# Shared helpers for the end-to-end CLI tests (tests/integration/cli_*.sh). Source it, then:
#
#   hearth_it_init                       # temp dir $IT_TMP (removed on exit), $HEARTH, $ROOT
#   expect_exit 0 "$HEARTH" --help       # one check: the command exits with that code
#   expect_stderr_contains "no such file" "$HEARTH" tokenize --model /nope </dev/null
#   expect_error 1 "byte offset 2" "$HEARTH" tokenize --model DIR <bad.txt   # both at once
#   expect_json_stdout 'd["cuda"]["compiled"] in (True, False)' "$HEARTH" version --json
#   expect_json_field_equals ids want.json "$HEARTH" tokenize --model DIR <in.txt
#   check "ids match the reference" cmp a.json b.json                    # passes when it exits 0
#   finish                               # prints "N passed, N failed", exits 1 on any failure
#
# Every helper runs one external command (no shell functions) under a timeout, with stdin inherited
# (redirect the helper call: `expect_exit 1 cmd <in.txt`), and keeps its output in $IT_OUT / $IT_ERR
# and its exit status in $IT_RC for further checks. A status >= 128 (killed by a signal: a crash, an
# abort, a sanitizer trap) or 124 (hung past HEARTH_IT_TIMEOUT seconds, default 60) always fails,
# whatever was expected. The line printed for a check is $CHECK when set
# (`CHECK="rejects bad UTF-8" expect_exit 1 ...`), else what is checked and the command, with $IT_TMP
# and $ROOT shortened.
# Only python3 (stdlib) is needed for the JSON checks.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
IT_PASSED=0
IT_FAILED=0
IT_RC=0

hearth_it_init() {
  HEARTH=${HEARTH_BIN:-$ROOT/build/hearth}
  if [ ! -x "$HEARTH" ]; then
    echo "FAIL - hearth binary not found or not executable: $HEARTH (build it, or set HEARTH_BIN)"
    echo "0 passed, 1 failed"
    exit 1
  fi
  IT_TMP=$(mktemp -d "${TMPDIR:-/tmp}/hearth-it.XXXXXX")
  trap _it_cleanup EXIT
  trap 'exit 130' INT TERM
  IT_OUT=$IT_TMP/.last.out
  IT_ERR=$IT_TMP/.last.err
}

# The label of the current check.
_it_label() {
  if [ -n "${CHECK:-}" ]; then
    printf '%s' "$CHECK"
    return
  fi
  local s="$*"
  s=${s//"$IT_TMP"/\$TMP}
  s=${s//"$HEARTH"/hearth}
  s=${s//"$ROOT"\//}
  printf '%s' "$s"
}

pass() {
  IT_PASSED=$((IT_PASSED + 1))
  echo "ok   $((IT_PASSED + IT_FAILED)) - $1"
}

# fail LABEL [DETAIL...]: DETAIL lines are printed indented under the failed check.
fail() {
  IT_FAILED=$((IT_FAILED + 1))
  echo "FAIL $((IT_PASSED + IT_FAILED)) - $1"
  shift
  local line
  for line in "$@"; do
    printf '%s\n' "$line" | head -c 2000 | sed 's/^/       /'
  done
}

# Runs "$@" and records $IT_RC, $IT_OUT, $IT_ERR. The output lands in $IT_OUT / $IT_ERR only when the
# command is done, so a check may read the previous command's output (`check ... grep x "$IT_OUT"`).
_it_run() {
  IT_RC=0
  timeout -k 5 "${HEARTH_IT_TIMEOUT:-60}" "$@" >"$IT_TMP/.run.out" 2>"$IT_TMP/.run.err" || IT_RC=$?
  mv -f "$IT_TMP/.run.out" "$IT_OUT"
  mv -f "$IT_TMP/.run.err" "$IT_ERR"
}

# Details shown under a failed check.
_it_details() {
  echo "exit status: $IT_RC"
  [ -s "$IT_ERR" ] && echo "stderr: $(head -c 1500 "$IT_ERR")"
  [ -s "$IT_OUT" ] && echo "stdout: $(head -c 500 "$IT_OUT")"
  return 0
}

# True when the last command crashed or hung.
_it_abnormal() {
  [ "$IT_RC" -ge 128 ] || [ "$IT_RC" -eq 124 ]
}

# expect_exit CODE CMD...: CMD exits with CODE ("nonzero" accepts any code 1..127 except 124).
expect_exit() {
  local want=$1
  shift
  local label
  label=${CHECK:-"exit $want: $(_it_label "$@")"}
  _it_run "$@"
  if _it_abnormal; then
    fail "$label" "crashed or hung" "$(_it_details)"
  elif [ "$want" = nonzero ] && [ "$IT_RC" -ne 0 ]; then
    pass "$label"
  elif [ "$want" = "$IT_RC" ]; then
    pass "$label"
  else
    fail "$label" "$(_it_details)"
  fi
}

# expect_stderr_contains TEXT CMD...: CMD's stderr contains TEXT (a fixed string) and CMD did not
# crash; its exit status is not checked here.
expect_stderr_contains() {
  local text=$1
  shift
  local label
  label=${CHECK:-"stderr has '$text': $(_it_label "$@")"}
  _it_run "$@"
  if _it_abnormal; then
    fail "$label" "crashed or hung" "$(_it_details)"
  elif grep -qF -- "$text" "$IT_ERR"; then
    pass "$label"
  else
    fail "$label" "$(_it_details)"
  fi
}

# expect_error CODE TEXT CMD...: CMD exits with CODE ("nonzero" for any 1..127) and its stderr
# contains TEXT; stdout must stay empty (no half-written result).
expect_error() {
  local want=$1 text=$2
  shift 2
  local label
  label=${CHECK:-"exit $want, stderr has '$text': $(_it_label "$@")"}
  _it_run "$@"
  if _it_abnormal; then
    fail "$label" "crashed or hung" "$(_it_details)"
  elif { [ "$want" = nonzero ] && [ "$IT_RC" -eq 0 ]; } || { [ "$want" != nonzero ] && [ "$want" != "$IT_RC" ]; }; then
    fail "$label" "wrong exit status" "$(_it_details)"
  elif ! grep -qF -- "$text" "$IT_ERR"; then
    fail "$label" "message missing" "$(_it_details)"
  elif [ -s "$IT_OUT" ]; then
    fail "$label" "stdout not empty on failure" "$(_it_details)"
  else
    pass "$label"
  fi
}

# json_eval FILE EXPR: prints the Python expression EXPR evaluated with d = the JSON in FILE.
json_eval() {
  python3 -c 'import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
r = eval(sys.argv[2])
print(json.dumps(r, ensure_ascii=False) if not isinstance(r, str) else r)' "$1" "$2"
}

# expect_json FILE EXPR [LABEL]: FILE is JSON and the Python expression EXPR (d = parsed JSON) is true.
expect_json() {
  local file=$1 expr=$2 label=${3:-${CHECK:-json: $2}}
  local err
  if err=$(python3 -c 'import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
sys.exit(0 if eval(sys.argv[2]) else 1)' "$file" "$expr" 2>&1); then
    pass "$label"
  else
    [ -n "$err" ] && err=$(printf '%s\n' "$err" | tail -1)
    fail "$label" "${err:-expression is false}" "json: $(head -c 800 "$file")"
  fi
}

# expect_json_stdout EXPR CMD...: CMD exits 0 and prints JSON for which EXPR (d = parsed) is true.
expect_json_stdout() {
  local expr=$1
  shift
  local label
  label=${CHECK:-"$(_it_label "$@") -> $expr"}
  _it_run "$@"
  if [ "$IT_RC" -ne 0 ]; then
    fail "$label" "$(_it_details)"
    return
  fi
  CHECK="$label" expect_json "$IT_OUT" "$expr"
}

# expect_json_field_equals FIELD WANT_FILE CMD...: CMD exits 0 and prints JSON whose FIELD equals
# FIELD of the JSON in WANT_FILE; a difference is reported with its first differing position.
expect_json_field_equals() {
  local field=$1 want=$2
  shift 2
  local label err
  label=${CHECK:-"$(_it_label "$@"): .$field = $(basename "$want")"}
  _it_run "$@"
  if _it_abnormal || [ "$IT_RC" -ne 0 ]; then
    fail "$label" "$(_it_details)"
    return
  fi
  if err=$(python3 -c 'import json, sys
field = sys.argv[3]
try:
    got = json.load(open(sys.argv[1], encoding="utf-8"))[field]
except (ValueError, KeyError, TypeError) as e:
    head = open(sys.argv[1], errors="replace").read(300)
    print(f"stdout is not JSON with a {field!r} field: {e!r}: {head!r}")
    sys.exit(1)
want = json.load(open(sys.argv[2], encoding="utf-8"))[field]
if got == want:
    sys.exit(0)
if isinstance(got, (list, str)) and isinstance(want, (list, str)):
    i = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]), min(len(got), len(want)))
    print(f"first difference at [{i}] (lengths {len(got)} vs {len(want)})")
    print("got:  " + json.dumps(got[max(0, i - 3):i + 5], ensure_ascii=False))
    print("want: " + json.dumps(want[max(0, i - 3):i + 5], ensure_ascii=False))
else:
    print("got:  " + json.dumps(got, ensure_ascii=False)[:300])
    print("want: " + json.dumps(want, ensure_ascii=False)[:300])
sys.exit(1)' "$IT_OUT" "$want" "$field" 2>&1); then
    pass "$label"
  else
    fail "$label" "$err"
  fi
}

# check LABEL CMD...: passes when CMD exits 0 (for comparisons done by other tools).
check() {
  local label=$1
  shift
  _it_run "$@"
  if [ "$IT_RC" -eq 0 ]; then
    pass "$label"
  else
    fail "$label" "$(_it_details)"
  fi
}

# finish: the summary line; the script's exit status is 1 on any failure or when nothing was checked.
finish() {
  echo "$IT_PASSED passed, $IT_FAILED failed"
  if [ "$IT_FAILED" -ne 0 ] || [ "$IT_PASSED" -eq 0 ]; then exit 1; fi
  exit 0
}

# scripts/test.sh runs every tests/integration/*.sh, this file included: run directly, it does nothing.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  echo "lib.sh: helpers sourced by the cli_*.sh scripts; nothing to run"
  exit 0
fi

# --- hearth serve in the background -------------------------------------------------------------
# start_server NAME ARGS...: starts `hearth serve ARGS` on a free port (its log in $IT_TMP/NAME.log);
# sets SERVER_PID and PORT, records the pid for the EXIT trap (killed there), and passes a check; fails
# the script when the port file does not appear in 30 s.
# stop_server NAME: SIGTERM to SERVER_PID; a check that it exits 0.
SERVER_PIDS=()
start_server() {
  local name=$1
  shift
  rm -f "$IT_TMP/$name.port"
  "$HEARTH" serve --port 0 --port-file "$IT_TMP/$name.port" "$@" >"$IT_TMP/$name.log" 2>&1 &
  SERVER_PID=$!
  SERVER_PIDS+=("$SERVER_PID")
  local i
  for ((i = 0; i < 300; i++)); do
    if [ -s "$IT_TMP/$name.port" ]; then
      PORT=$(cat "$IT_TMP/$name.port")
      pass "$name: serve is listening (port $PORT)"
      return 0
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  fail "$name: serve did not start" "$(tail -20 "$IT_TMP/$name.log")"
  finish
}
stop_server() {
  kill -TERM "$SERVER_PID"
  local rc=0
  wait "$SERVER_PID" || rc=$?
  if [ "$rc" = 0 ]; then pass "$1: serve exits 0 on SIGTERM"; else fail "$1: serve exits 0 on SIGTERM" "status $rc"; fi
}

# --- bench/mock_upstream ---------------------------------------------------------------------------
# start_mock_upstream ARGS...: the near-free OpenAI-shaped upstream (bench/mock_upstream, or
# $HEARTH_MOCK_UPSTREAM) with ARGS on a free port written to $IT_TMP/up; sets MOCK_PORT and MOCK_PID; stopped
# by the EXIT trap. Ends the script (a failure) when the binary is missing.
start_mock_upstream() {
  local mock=${HEARTH_MOCK_UPSTREAM:-$(dirname "$HEARTH")/bench/mock_upstream}
  if [ ! -x "$mock" ]; then
    fail "mock_upstream at $mock (cmake --build build --target mock_upstream)"
    finish
  fi
  rm -f "$IT_TMP/up"
  "$mock" --port-file "$IT_TMP/up" "$@" &
  MOCK_PID=$!
  SERVER_PIDS+=("$MOCK_PID")
  local i
  for ((i = 0; i < 50; i++)); do [ -s "$IT_TMP/up" ] && break; sleep 0.1; done
  MOCK_PORT=$(cat "$IT_TMP/up")
}

# --- a real PostgreSQL server in $IT_TMP ----------------------------------------------------------
# start_postgres: initdb + pg_ctl from Debian's postgresql package into $IT_TMP/pg (run as the postgres
# user when the script runs as root: the server refuses root), on a free port, trust auth for the local
# user "hearth", database "hearth". Sets PG_URL, PG_PORT, PG_BIN; stopped by the EXIT trap. Returns 1
# (after printing why) when PostgreSQL is not installed.
PG_DIR=""
PG_AS=()
start_postgres() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    echo "PostgreSQL is not installed (scripts/setup.sh installs the postgresql package)"
    return 1
  fi
  PG_DIR=$IT_TMP/pg
  mkdir -p "$PG_DIR"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$IT_TMP" "$PG_DIR"
    chmod 755 "$IT_TMP"
    PG_AS=(runuser -u postgres --)
  fi
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "${PG_AS[@]}" "$bin/initdb" -D "$PG_DIR/data" -A trust -U hearth --no-sync >"$IT_TMP/pg-initdb.log" 2>&1 ||
    { cat "$IT_TMP/pg-initdb.log"; return 1; }
  "${PG_AS[@]}" "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 \
    -o "-p $port -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=on" start >/dev/null ||
    { cat "$PG_DIR/server.log"; return 1; }
  PG_BIN=$bin
  "${PG_AS[@]}" "$bin/createdb" -h 127.0.0.1 -p "$port" -U hearth hearth || return 1
  PG_PORT=$port
  PG_URL="postgresql://hearth@127.0.0.1:$port/hearth"
  pass "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') started on port $port"
}

# --- a real OpenLDAP server in $IT_TMP ------------------------------------------------------------
# start_slapd SUFFIX ROOTPW: Debian's slapd with a generated slapd.conf (mdb; core, cosine and inetorgperson
# schemas; passwords readable by no one, usable for binds; bound users may read the rest, anonymous users
# nothing) on a free port. Sets LDAP_URL, LDAP_ROOT_DN; stopped by the EXIT trap. Returns 1 (after printing
# why) when slapd is not installed.
SLAPD_PID_FILE=""
start_slapd() {
  local suffix=$1 rootpw=$2 dir=$IT_TMP/slapd port i
  if [ ! -x /usr/sbin/slapd ] || ! command -v ldapadd >/dev/null; then
    echo "OpenLDAP is not installed (scripts/setup.sh installs the slapd and ldap-utils packages)"
    return 1
  fi
  mkdir -p "$dir/db"
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  cat >"$dir/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile $dir/slapd.pid
database mdb
maxsize 10485760
suffix "$suffix"
rootdn "cn=admin,$suffix"
rootpw $rootpw
directory $dir/db
access to attrs=userPassword by anonymous auth by * none
access to * by users read by * none
EOF
  SLAPD_PID_FILE=$dir/slapd.pid
  /usr/sbin/slapd -f "$dir/slapd.conf" -h "ldap://127.0.0.1:$port/" >"$dir/log" 2>&1 ||
    { cat "$dir/log"; return 1; }
  for i in $(seq 50); do
    ldapsearch -x -H "ldap://127.0.0.1:$port" -D "cn=admin,$suffix" -w "$rootpw" -b "" -s base >/dev/null 2>&1 &&
      break
    sleep 0.1
  done
  LDAP_URL=ldap://127.0.0.1:$port
  LDAP_ROOT_DN="cn=admin,$suffix"
  pass "slapd $(/usr/sbin/slapd -VV 2>&1 | grep -o 'slapd [0-9.]*' | head -1) started on port $port"
}

# shellcheck disable=SC2317  # run by the EXIT trap
_it_cleanup() {
  local p
  for p in "${SERVER_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  for p in "${SERVER_PIDS[@]}"; do wait "$p" 2>/dev/null; done  # reaped quietly (no "Killed" notices)
  if [ -n "$SLAPD_PID_FILE" ] && [ -f "$SLAPD_PID_FILE" ]; then kill -KILL "$(cat "$SLAPD_PID_FILE")" 2>/dev/null; fi
  if [ -n "$PG_DIR" ] && [ -f "$PG_DIR/data/postmaster.pid" ]; then
    "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1
  fi
  rm -rf "$IT_TMP"
}
