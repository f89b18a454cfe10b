#!/bin/sh
# ceph-stop.sh - stop the single-host test cluster that scripts/ceph-start.sh
# made under DIR.
#
# Stops exactly the PIDs recorded in DIR/pids/*.pid, and only while their
# command line still names DIR/ceph.conf (a recycled PID is left alone), in
# the order that avoids hangs: radosgw first and wait for it (radosgw stopped
# together with its OSD can hang on SIGTERM), then the mgr (if any) and the
# OSD, then the mon. Each gets SIGTERM, then SIGKILL after
# $CEPH_STOP_TIMEOUT seconds (default 10). A zombie counts as stopped (PID 1
# reaps orphans late here; kill -0 succeeds on zombies, so the state is read
# from /proc/PID/stat).
#
# With --kill, SIGKILL is sent at once (for a cluster about to be wiped:
# radosgw whose OSD is dead ignores SIGTERM). A daemon stopped by SIGSTOP
# (tests do that) gets SIGCONT first, so that it can act on SIGTERM and the
# daemons waiting on it (radosgw on the OSD) can finish.
#
# The memstore OSD runs with `osd fast shutdown = false`, so a clean stop
# saves its objects into DIR; ceph-start.sh nevertheless makes a fresh cluster
# (it only reuses a running one). With --wipe, DIR is removed afterwards.
#
# Idempotent: nothing recorded or nothing running is success.
#
# usage: scripts/ceph-stop.sh DIR [--wipe] [--kill]
set -eu

usage() {
	echo "usage: $0 DIR [--wipe] [--kill]" >&2
	exit 2
}
[ $# -ge 1 ] || usage
DIR=$1
WIPE=0
SIG=TERM
shift
for a in "$@"; do
	case "$a" in
	--wipe) WIPE=1 ;;
	--kill) SIG=KILL ;;
	*) usage ;;
	esac
done
case "$DIR" in
/*) ;;
*) DIR="$(pwd)/$DIR" ;;
esac
DIR=${DIR%/}
CONF="$DIR/ceph.conf"
TIMEOUT=${CEPH_STOP_TIMEOUT:-10}
# shellcheck source=scripts/ceph-lib.sh
. "$(dirname "$0")/ceph-lib.sh"

T0=$(ceph_now_ms)

# Send SIG (TERM, or KILL with --kill) to every named daemon of ours, wait up
# to TIMEOUT s for all of them, SIGKILL the rest and wait for those too.
# Removes their pid files.
stop_group() {
	pids=""
	for d in "$@"; do
		pid=$(ceph_pid_of "$DIR" "$d")
		if [ -n "$pid" ] && ceph_pid_ours "$pid" "$CONF"; then
			kill -"$SIG" "$pid" 2>/dev/null || true
			kill -CONT "$pid" 2>/dev/null || true
			pids="$pids $d:$pid"
		fi
	done
	t=$(ceph_now_ms)
	deadline=$((t + TIMEOUT * 1000))
	killed=0
	for dp in $pids; do
		d=${dp%%:*}
		pid=${dp#*:}
		while ceph_pid_alive "$pid"; do
			if [ "$(ceph_now_ms)" -ge "$deadline" ]; then
				if [ "$killed" = 0 ]; then
					echo "ceph-stop: $d (pid $pid) ignored SIG$SIG for ${TIMEOUT}s: SIGKILL" >&2
					kill -KILL "$pid" 2>/dev/null || true
					# give SIGKILL its own (short) deadline
					deadline=$(($(ceph_now_ms) + 5000))
					killed=1
					continue
				fi
				echo "ceph-stop: $d (pid $pid) survived SIGKILL" >&2
				return 1
			fi
			sleep 0.05
		done
		killed=0
		echo "ceph-stop: $d (pid $pid) stopped after $(ceph_since "$t") s"
	done
	for d in "$@"; do
		rm -f "$DIR/pids/$d.pid"
	done
}

if [ -d "$DIR/pids" ]; then
	# a daemon left stopped (SIGSTOP) would hang the others' shutdown: resume all first
	for d in rgw mgr osd mon; do
		pid=$(ceph_pid_of "$DIR" "$d")
		if [ -n "$pid" ] && ceph_pid_ours "$pid" "$CONF"; then
			kill -CONT "$pid" 2>/dev/null || true
		fi
	done
	stop_group rgw
	stop_group mgr osd
	stop_group mon
fi
if [ "$WIPE" = 1 ] && [ -e "$DIR" ]; then
	if [ -e "$DIR/.cairn-ceph" ]; then
		rm -rf "$DIR"
	else
		echo "ceph-stop: $DIR is not a cairn test cluster directory, not wiping" >&2
		exit 1
	fi
fi
echo "ceph-stop: $DIR stopped in $(ceph_since "$T0") s"
