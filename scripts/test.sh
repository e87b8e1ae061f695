#!/usr/bin/env bash
# hearth test suite: formatting, the Release build's unit tests, integration scripts, the same unit
# tests under ASan+UBSan, and a short libFuzzer run of every parser. Exits non-zero on any failure.
#   FUZZ_SECONDS=N   seconds per fuzz target (default 20; 0 skips fuzzing)
#   SKIP_SANITIZE=1  skip the ASan/UBSan build (local iteration only; CI runs everything)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=$(nproc)
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
GEN=()
command -v ninja >/dev/null 2>&1 && GEN=(-G Ninja)
failures=()
stage() { printf '\n==== %s ====\n' "$*"; }
t0=$(date +%s)

stage "tokenizer packages"
./scripts/fetch_tokenizers.sh

stage "format check (clang-format)"
mapfile -t srcs < <(git ls-files -co --exclude-standard -- 'src/*.h' 'src/*.cpp' 'src/*.cu' 'src/*.cuh' 'apps/*.h' \
  'apps/*.cpp' 'tests/*.h' 'tests/*.cpp' 'fuzz/*.cpp' 'bench/*.cpp' | while read -r f; do [ -f "$f" ] && echo "$f"; done)
if clang-format --dry-run --Werror "${srcs[@]}" 2>/tmp/hearth-format.log; then
  echo "formatting ok (${#srcs[@]} files)"
else
  head -40 /tmp/hearth-format.log
  echo "formatting differs: run  clang-format -i <files>"
  failures+=("format")
fi

stage "Release build (build/)"
if [ ! -f build/CMakeCache.txt ]; then
  cmake -S . -B build "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release
fi
cmake --build build -j"$JOBS"

stage "unit tests (Release)"
if ! (cd build && ctest --output-on-failure -j"$JOBS" --timeout 600); then failures+=("ctest-release"); fi

stage "integration tests"
for t in tests/integration/*.sh; do
  [ -f "$t" ] || continue
  [ "$(basename "$t")" = lib.sh ] && continue
  echo "--- $t"
  if ! HEARTH_BIN="$ROOT/build/hearth" bash "$t"; then failures+=("$t"); fi
done

if [ "${SKIP_SANITIZE:-0}" != 1 ]; then
  stage "ASan+UBSan build (build-asan/) and unit tests"
  if [ ! -f build-asan/CMakeCache.txt ]; then
    cmake -S . -B build-asan "${GEN[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHEARTH_SANITIZE=ON \
      -DHEARTH_CUDA=OFF -DHEARTH_BENCH=OFF
  fi
  cmake --build build-asan -j"$JOBS"
  if ! (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j"$JOBS" --timeout 900); then
    failures+=("ctest-asan")
  fi
  stage "hearth serve under ASan+UBSan (integration scripts against build-asan/hearth)"
  for t in tests/integration/serve_api.sh tests/integration/serve_openai_sdk.sh tests/integration/gateway.sh; do
    echo "--- $t"
    if ! HEARTH_BIN="$ROOT/build-asan/hearth" ASAN_OPTIONS=detect_leaks=1 \
         UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 bash "$t"; then
      failures+=("$t (asan)")
    fi
  done
fi

if [ "$FUZZ_SECONDS" != 0 ]; then
  stage "libFuzzer targets (build-fuzz/), ${FUZZ_SECONDS}s each"
  if [ ! -f build-fuzz/CMakeCache.txt ]; then
    CC=clang CXX=clang++ cmake -S . -B build-fuzz "${GEN[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DHEARTH_FUZZ=ON -DHEARTH_CUDA=OFF -DHEARTH_TESTS=OFF -DHEARTH_BENCH=OFF
  fi
  fuzz_targets=()
  for src in fuzz/fuzz_*.cpp; do fuzz_targets+=(--target "$(basename "$src" .cpp)"); done
  cmake --build build-fuzz -j"$JOBS" "${fuzz_targets[@]}"
  for f in build-fuzz/fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    name=$(basename "$f")
    corpus=fuzz/corpus/${name#fuzz_}
    work=$(mktemp -d)
    echo "--- $name (seeds: $corpus)"
    # The committed seeds (incl. past crash inputs) first run as regression tests, then fuzzing.
    if ! ASAN_OPTIONS=detect_leaks=1 "$f" -max_total_time="$FUZZ_SECONDS" -max_len=65536 -rss_limit_mb=2048 \
         -timeout=10 -print_final_stats=0 "$work" "$corpus" >"$work.log" 2>&1; then
      tail -40 "$work.log"
      failures+=("$name")
    else
      grep -E "^#[0-9]+.*DONE|Done [0-9]+ runs" "$work.log" | tail -1 || true
    fi
    rm -rf "$work"
  done
fi

stage "summary"
echo "elapsed: $(( $(date +%s) - t0 ))s"
if [ "${#failures[@]}" -gt 0 ]; then
  echo "FAILED: ${failures[*]}"
  exit 1
fi
echo "all stages passed"
