#!/usr/bin/env bash
# The official openai npm SDK (scripts/fetch_tokenizers.sh installs it into .cache/npm) against
# `hearth serve` with an API key: serve_openai_sdk.mjs runs the checks, each of its ok/FAIL lines is
# reported here as one check.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
hearth_it_init

SDK=$ROOT/.cache/npm/node_modules/openai/index.mjs
if ! command -v node >/dev/null || [ ! -f "$SDK" ]; then
  fail "node and the openai SDK are installed" "node: $(command -v node || echo missing); $SDK: missing (run scripts/fetch_tokenizers.sh)"
  finish
fi

check "model synth --preset tiny" "$HEARTH" model synth --preset tiny --out "$IT_TMP/tiny"
KEY=sdk-test-key
start_server sdk --model "$IT_TMP/tiny" --served-model-name hearth-sdk --api-key "$KEY"

HEARTH_URL=http://127.0.0.1:$PORT HEARTH_MODEL=hearth-sdk HEARTH_API_KEY=$KEY OPENAI_SDK=$SDK \
  timeout -k 5 120 node "$(dirname "$0")/serve_openai_sdk.mjs" >"$IT_TMP/node.out" 2>&1
node_rc=$?
label=
detail=()
flush() {
  [ -n "$label" ] && fail "sdk: $label" "${detail[@]}"
  label=
  detail=()
}
while IFS= read -r line; do
  case $line in
    "ok - "*) flush; pass "sdk: ${line#ok - }" ;;
    "FAIL - "*) flush; label=${line#FAIL - } ;;
    *) [ -n "$label" ] && detail+=("$line") ;;
  esac
done <"$IT_TMP/node.out"
flush
if [ "$node_rc" -eq 0 ] && grep -qx "all passed" "$IT_TMP/node.out"; then
  pass "serve_openai_sdk.mjs ran to the end"
else
  fail "serve_openai_sdk.mjs ran to the end" "exit status $node_rc" "$(tail -15 "$IT_TMP/node.out")"
fi

stop_server sdk
finish
