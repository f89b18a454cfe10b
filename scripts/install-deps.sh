#!/bin/sh
# Install every Debian package cairn needs to build, test and benchmark.
# Idempotent: packages already present are skipped and `apt-get update` runs
# at most once, only when something is missing.
#
# The Ceph packages run the single-host test cluster of scripts/ceph-start.sh
# (mon, OSD, radosgw; no mgr: the tests do not need one) and provide librados
# and libs3 for the rados and s3 targets.
#
# usage: scripts/install-deps.sh [--bench]
#   --bench   also install the peers the benchmark compares with (restic, borg)
set -eu

PKGS="build-essential cmake pkg-config clang libclang-rt-14-dev b3sum
libssl-dev libzstd-dev libxxhash-dev libargon2-dev libfyaml-dev
check libsubunit-dev attr acl e2fsprogs openssl strace
ceph-mon ceph-osd radosgw ceph-common librados-dev libs3-dev s3cmd uuid-runtime curl"
BENCH_PKGS="restic borgbackup time psmisc"
# scheduler (sched/, tests/sched): SQLite store, libcurl notifiers, cairnd's HTTP server and
# JSON, Alertmanager and promtool (package prometheus) for the tests
SCHED_PKGS="libsqlite3-dev libcurl4-openssl-dev libmicrohttpd-dev libjansson-dev
prometheus-alertmanager prometheus"
PKGS="$PKGS $SCHED_PKGS"

want="$PKGS"
for a in "$@"; do
	case "$a" in
	--bench) want="$want $BENCH_PKGS" ;;
	*) echo "install-deps: unknown option '$a'" >&2; exit 2 ;;
	esac
done

missing=""
for p in $want; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	echo "install-deps: all packages present"
	exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
