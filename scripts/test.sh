#!/bin/sh
# The README's test command: install what is needed, build, run every test.
#   1. release build (-Werror), all Check suites and integration tests under ctest;
#   2. ASan+UBSan build, the same suites;
#   3. libFuzzer smoke run of every decoder fuzz target (clang).
# Steps 1 and 2 run online: a single-host Ceph cluster (mon, OSD, radosgw) is
# started in ${CAIRN_CEPH_DIR:-/var/tmp/cairn-ceph} (scripts/ceph-start.sh) for
# the rados and s3 suites, which then must not skip (CAIRN_REQUIRE_ONLINE=1),
# and stopped afterwards, on failure too. --no-ceph runs them offline (they skip).
# usage: scripts/test.sh [--no-asan] [--no-fuzz] [--no-ceph]
set -eu
cd "$(dirname "$0")/.."
ASAN=1
FUZZ=1
CEPH=1
for a in "$@"; do
	case "$a" in
	--no-asan) ASAN=0 ;;
	--no-fuzz) FUZZ=0 ;;
	--no-ceph) CEPH=0 ;;
	*) echo "test.sh: unknown option '$a'" >&2; exit 2 ;;
	esac
done
JOBS=$(nproc 2>/dev/null || echo 2)

scripts/install-deps.sh

echo "== release build and tests"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$JOBS"

if [ "$CEPH" = 1 ]; then
	echo "== test cluster (Ceph mon, OSD, radosgw)"
	CEPH_DIR=${CAIRN_CEPH_DIR:-/var/tmp/cairn-ceph}
	# stop it whatever happens; keep its logs if something failed
	stop_cluster() {
		rc=$?
		trap - EXIT
		scripts/ceph-stop.sh "$CEPH_DIR" || true
		[ "$rc" = 0 ] || echo "test.sh: test cluster logs in $CEPH_DIR/log" >&2
		exit "$rc"
	}
	trap stop_cluster EXIT
	trap 'exit 130' INT TERM HUP
	scripts/ceph-start.sh "$CEPH_DIR"
	# shellcheck disable=SC1091
	. "$CEPH_DIR/env"
	export CAIRN_REQUIRE_ONLINE=1
fi
ctest --test-dir build --output-on-failure -j"$JOBS"

if [ "$ASAN" = 1 ]; then
	echo "== ASan+UBSan build and tests"
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCAIRN_SANITIZE=ON -DBUILD_BENCH=OFF >/dev/null
	cmake --build build-asan -j"$JOBS"
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --test-dir build-asan --output-on-failure -j"$JOBS"
fi

if [ "$CEPH" = 1 ]; then
	trap - EXIT INT TERM HUP
	scripts/ceph-stop.sh "$CEPH_DIR" --wipe
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
		if ! "$f" -max_total_time="${CAIRN_FUZZ_SECONDS:-20}" -rss_limit_mb=2048 \
			"build-fuzz/corpus/$name" tests/fuzz/seeds/"${name#fuzz_}" \
			>"build-fuzz/$name.log" 2>&1; then
			tail -n 40 "build-fuzz/$name.log"
			echo "test.sh: $name failed (log: build-fuzz/$name.log)" >&2
			exit 1
		fi
		tail -n 1 "build-fuzz/$name.log"
	done
fi
echo "== all tests passed"
