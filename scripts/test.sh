#!/bin/sh
# The README's test command: install what is needed, build, run every test.
#   1. release build (-Werror), all Check suites and integration tests under ctest;
#   2. ASan+UBSan build, the same suites;
#   3. libFuzzer smoke run of every decoder fuzz target (clang).
# usage: scripts/test.sh [--no-asan] [--no-fuzz]
set -eu
cd "$(dirname "$0")/.."
ASAN=1
FUZZ=1
for a in "$@"; do
	case "$a" in
	--no-asan) ASAN=0 ;;
	--no-fuzz) FUZZ=0 ;;
	*) echo "test.sh: unknown option '$a'" >&2; exit 2 ;;
	esac
done
JOBS=$(nproc 2>/dev/null || echo 2)

scripts/install-deps.sh

echo "== release build and tests"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$JOBS"
ctest --test-dir build --output-on-failure -j"$JOBS"

if [ "$ASAN" = 1 ]; then
	echo "== ASan+UBSan build and tests"
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCAIRN_SANITIZE=ON -DBUILD_BENCH=OFF >/dev/null
	cmake --build build-asan -j"$JOBS"
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --test-dir build-asan --output-on-failure -j"$JOBS"
fi

if [ "$FUZZ" = 1 ]; then
	echo "== fuzz smoke (libFuzzer)"
	CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DCAIRN_FUZZ=ON -DBUILD_TESTS=OFF \
		-DBUILD_BENCH=OFF >/dev/null
	cmake --build build-fuzz -j"$JOBS"
	for f in build-fuzz/fuzz/fuzz_*; do
		[ -x "$f" ] || continue
		name=$(basename "$f")
		mkdir -p "build-fuzz/corpus/$name"
		echo "-- $name"
		"$f" -max_total_time="${CAIRN_FUZZ_SECONDS:-20}" -rss_limit_mb=2048 \
			"build-fuzz/corpus/$name" tests/fuzz/seeds/"${name#fuzz_}" 2>&1 | tail -n 3
	done
fi
echo "== all tests passed"
