#!/usr/bin/env bash
# The hearth command line as a whole: version reporting, help for every subcommand (discovered from
# the help output itself, so new commands are covered without editing this file), and usage errors.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
hearth_it_init

# --- version --------------------------------------------------------------------------------------
CHECK="--version exits 0" expect_exit 0 "$HEARTH" --version
cp "$IT_OUT" "$IT_TMP/version.txt"
check "--version says whether CUDA support is compiled in (CUDA support: yes|no)" \
  grep -qE '^CUDA support: (yes|no)' "$IT_TMP/version.txt"
check "--version names the program and a version number" grep -qE '^hearth [0-9]+\.[0-9]+\.[0-9]+' "$IT_TMP/version.txt"

CHECK="version --json prints cuda.compiled (bool) and version (string)" expect_json_stdout \
  'isinstance(d["cuda"]["compiled"], bool) and isinstance(d["version"], str) and isinstance(d["cuda"]["devices"], list)' \
  "$HEARTH" version --json
cp "$IT_OUT" "$IT_TMP/version.json"
text_cuda=$(sed -nE 's/^CUDA support: (yes|no).*/\1/p' "$IT_TMP/version.txt")
json_cuda=$(json_eval "$IT_TMP/version.json" '"yes" if d["cuda"]["compiled"] else "no"' 2>/dev/null)
text_version=$(sed -nE 's/^hearth ([^ ]+).*/\1/p' "$IT_TMP/version.txt")
json_version=$(json_eval "$IT_TMP/version.json" 'd["version"]' 2>/dev/null)
if [ -n "$text_cuda" ] && [ "$text_cuda" = "$json_cuda" ] && [ "$text_version" = "$json_version" ]; then
  pass "--version and version --json agree (version $json_version, CUDA compiled: $json_cuda)"
else
  fail "--version and version --json agree" "text: $text_version cuda=$text_cuda" "json: $json_version cuda=$json_cuda"
fi
CHECK="version (plain) exits 0" expect_exit 0 "$HEARTH" version
# Device lines may differ between calls only if a GPU came or went; the first two lines may not.
head -2 "$IT_OUT" >"$IT_TMP/version_cmd_head.txt"
head -2 "$IT_TMP/version.txt" >"$IT_TMP/version_flag_head.txt"
check "version (plain) prints the same header as --version" \
  cmp "$IT_TMP/version_cmd_head.txt" "$IT_TMP/version_flag_head.txt"

# --- help: every subcommand, recursively ------------------------------------------------------------
# Prints the subcommand names listed in a CLI11 help text (the "Subcommands:" section).
list_subcommands() {
  awk '/^Subcommands:/ { on = 1; next } on && /^[^ ]/ { on = 0 } on && /^  [a-z0-9][a-z0-9_-]*( |$)/ { print $1 }' "$1"
}

CHECK="hearth --help exits 0" expect_exit 0 "$HEARTH" --help
cp "$IT_OUT" "$IT_TMP/help.txt"
top=$(list_subcommands "$IT_TMP/help.txt")
for want in version tokenize model; do
  check "hearth --help lists '$want'" grep -qE "^  $want( |$)" "$IT_TMP/help.txt"
done
CHECK="hearth with no arguments prints the help and exits 0" expect_exit 0 "$HEARTH"
check "hearth with no arguments lists the subcommands" grep -q '^Subcommands:' "$IT_OUT"

# Breadth-first over "hearth A B ... --help"; a command path is a space-separated list.
queue=()
for c in $top; do queue+=("$c"); done
all_names=" "
n_help=0
while [ "${#queue[@]}" -gt 0 ]; do
  path=${queue[0]}
  queue=("${queue[@]:1}")
  all_names+="${path##* } "
  # shellcheck disable=SC2086  # the path is split into words on purpose
  CHECK="hearth $path --help exits 0 and prints a usage line" expect_exit 0 "$HEARTH" $path --help
  n_help=$((n_help + 1))
  if ! grep -q "Usage: .*$path" "$IT_OUT"; then fail "hearth $path --help shows 'Usage: ... $path'" "$(_it_details)"; fi
  # shellcheck disable=SC2086
  CHECK="hearth $path -h exits 0" expect_exit 0 "$HEARTH" $path -h
  for sub in $(list_subcommands "$IT_OUT"); do queue+=("$path $sub"); done
done
if [ "$n_help" -ge 3 ]; then pass "help was checked for $n_help subcommands:$all_names"; else fail "at least 3 subcommands found in --help (got $n_help)"; fi

# Every subcommand registered in the sources (add_subcommand("name" ...)) must be reachable from the
# help output: a command that is compiled but never registered, or hidden by mistake, fails here.
if [ -d "$ROOT/apps/hearth" ]; then
  missing=""
  for name in $(grep -Pzo 'add_subcommand\(\s*"[a-z0-9_-]+"' "$ROOT"/apps/hearth/*.cpp | tr '\0' '\n' |
    sed -nE 's/.*"([a-z0-9_-]+)".*/\1/p' | sort -u); do
    case "$all_names" in *" $name "*) ;; *) missing+=" $name" ;; esac
  done
  if [ -z "$missing" ]; then
    pass "every add_subcommand(\"...\") in apps/hearth appears in some --help"
  else
    fail "every add_subcommand(\"...\") in apps/hearth appears in some --help" "not listed:$missing"
  fi
fi

# --- usage errors -----------------------------------------------------------------------------------
# The convention is 2 for usage errors (CLI11's own codes are 100-115); here only "non-zero, not a
# signal, with a message" is required.
expect_error 2 "not-a-command" "$HEARTH" not-a-command
expect_error 2 "--no-such-flag" "$HEARTH" --no-such-flag
expect_error 2 "--no-such-flag" "$HEARTH" tokenize --model "$IT_TMP" --no-such-flag
expect_error 2 "--no-such-flag" "$HEARTH" version --no-such-flag
expect_error 2 "--model" "$HEARTH" tokenize
CHECK="hearth model (no subcommand) is a usage error" expect_error 2 "subcommand" "$HEARTH" model
expect_error 2 "--log-level" "$HEARTH" --log-level loud version
CHECK="--log-level error still runs the command" expect_exit 0 "$HEARTH" --log-level error version

finish
