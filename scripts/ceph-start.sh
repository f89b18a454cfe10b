#!/bin/sh
# ceph-start.sh - a single-host Ceph test cluster (mon, one memstore OSD,
# radosgw) under DIR, for the rados and s3 target tests.
#
# DESIGN (measured facts: docs in /work/shared/notes/ceph-and-s3.md)
#   - Everything lives in DIR: ceph.conf, one keyring with every identity
#     (client.admin included, `keyring = DIR/keyring` in [global], so any
#     client given CEPH_CONF=DIR/ceph.conf authenticates), daemon data, logs,
#     admin sockets, and pids/<daemon>.pid (mon, osd, rgw) for ceph-stop.sh.
#   - Ports, from P = $CEPH_PORT_BASE (default 16789), all below 32768 (the
#     ephemeral range starts there): mon P (msgr2) and P+1 (v1), radosgw P+2,
#     OSD ports from P+10..P+39. Everything binds to 127.0.0.1. Two clusters
#     need two DIRs and two port bases at least 40 apart.
#   - One memstore OSD (everything in RAM; `osd fast shutdown = false` so a
#     clean stop saves it), no mgr (not needed for I/O; see the notes), cephx.
#   - Ready means usable: pool `cairn` exists and a real write to it works;
#     radosgw answers, user `cairn` has the fixed keys below, and a warm-up
#     bucket and PUT have created radosgw's lazily made pools.
#   - Idempotent: if DIR holds a cluster whose recorded daemons are alive and
#     which passes a probe write (RADOS and S3), it is reused as is. Otherwise
#     whatever of it still runs is killed (ceph-stop.sh --kill), DIR is wiped and a
#     new cluster is made. DIR is wiped only if it is empty or carries our
#     marker file DIR/.cairn-ceph. Concurrent callers on one DIR serialise on
#     DIR.lock.
#   - On failure, the daemons started so far are killed again and the tail
#     of the failing daemon's log is printed.
#
# Output: DIR/env, lines of `export NAME=value` to source:
#   CEPH_CONF, CAIRN_TEST_RADOS_POOL, CAIRN_TEST_S3_ENDPOINT, AWS_ACCESS_KEY_ID,
#   AWS_SECRET_ACCESS_KEY, CAIRN_TEST_MON_PID, CAIRN_TEST_OSD_PID,
#   CAIRN_TEST_RGW_PID, CAIRN_TEST_CEPH_DIR, CAIRN_TEST_S3_WARMUP_BUCKET.
#
# usage: scripts/ceph-start.sh DIR        (then: . DIR/env)
set -eu

[ $# -eq 1 ] || {
	echo "usage: $0 DIR" >&2
	exit 2
}
DIR=$1
case "$DIR" in
/*) ;;
*) DIR="$(pwd)/$DIR" ;;
esac
DIR=${DIR%/}
SCRIPTS=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/ceph-lib.sh
. "$SCRIPTS/ceph-lib.sh"

P=${CEPH_PORT_BASE:-16789}
case "$P" in
'' | *[!0-9]*)
	echo "ceph-start: CEPH_PORT_BASE must be a number" >&2
	exit 2
	;;
esac
if [ "$P" -lt 1024 ] || [ $((P + 39)) -ge 32768 ]; then
	echo "ceph-start: CEPH_PORT_BASE=$P: ports P..P+39 must lie in 1024..32767" >&2
	exit 2
fi
RGW_PORT=$((P + 2))
CONF="$DIR/ceph.conf"
POOL=cairn
AK=CAIRNTESTACCESSKEY01
SK=cairn-test-secret-key-0000000000000000000
WARMUP_BUCKET=cairn-warmup
# timeouts of the setup steps, in seconds
T_MON=30
T_OSD=60
T_RGW=60

T0=$(ceph_now_ms)
mkdir -p "$(dirname "$DIR")"

# Serialise concurrent callers on one DIR. fd 9 is closed for the daemons.
exec 9>"$DIR.lock"
flock 9

# ceph CLI (Python, ~0.4 s a call) with a bounded wait for the mon.
cephcli() {
	ceph -c "$CONF" --connect-timeout "$T_MON" "$@"
}

# A real write to the pool (in a namespace of its own, out of the way of a
# repository in the default one), bounded by timeouts ($1 seconds).
rados_probe() {
	timeout $(($1 + 5)) rados -c "$CONF" -p "$POOL" -N cairn-probe \
		--client_mount_timeout "$1" --rados_osd_op_timeout "$1" \
		--rados_mon_op_timeout "$1" put probe /dev/null </dev/null >/dev/null 2>&1
}

# S3: 200 from an anonymous ListAllMyBuckets.
rgw_probe() {
	_code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' "http://127.0.0.1:$RGW_PORT/" 2>/dev/null) ||
		true
	[ "$_code" = 200 ]
}

# Signed S3 request: s3req METHOD PATH [curl args...]
s3req() {
	_m=$1
	_p=$2
	shift 2
	curl -sS -f -m 20 --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AK:$SK" -X "$_m" \
		-H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
		"http://127.0.0.1:$RGW_PORT$_p" "$@"
}

# Reuse a running cluster if every recorded daemon is alive and it works.
reusable() {
	[ -f "$DIR/env" ] && [ -f "$DIR/.cairn-ceph" ] || return 1
	[ "$(cat "$DIR/port-base" 2>/dev/null)" = "$P" ] || return 1
	for d in mon osd rgw; do
		ceph_pid_ours "$(ceph_pid_of "$DIR" $d)" "$CONF" || return 1
	done
	rados_probe 5 && rgw_probe
}

if reusable; then
	echo "ceph-start: reusing the running cluster in $DIR (checked in $(ceph_since "$T0") s)"
	exit 0
fi

# Anything else in DIR is stale: stop what still runs of it and wipe it.
if [ -e "$DIR" ]; then
	if [ ! -e "$DIR/.cairn-ceph" ] && [ -n "$(ls -A "$DIR" 2>/dev/null)" ]; then
		echo "ceph-start: $DIR exists and is not a cairn test cluster directory" >&2
		exit 1
	fi
	if [ -d "$DIR/pids" ]; then
		echo "ceph-start: stale cluster in $DIR: stopping and wiping it"
		"$SCRIPTS/ceph-stop.sh" "$DIR" --kill 9>&-
	fi
	rm -rf "$DIR"
fi
# Ports taken (another cluster on the same CEPH_PORT_BASE?) fail here, not in a
# confusing way later: the mon would not bind, or the CLI would reach the other.
if command -v ss >/dev/null 2>&1; then
	for port in "$P" $((P + 1)) "$RGW_PORT"; do
		if [ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]; then
			echo "ceph-start: port $port is in use (another cluster? set CEPH_PORT_BASE)" >&2
			exit 1
		fi
	done
fi
mkdir -p "$DIR/pids" "$DIR/log" "$DIR/run" "$DIR/crash" "$DIR/mon.a" "$DIR/osd.0" "$DIR/rgw.a"
: >"$DIR/.cairn-ceph"
echo "$P" >"$DIR/port-base"

STARTED=0
CURRENT=""
on_exit() {
	rc=$?
	if [ "$rc" != 0 ] && [ "$STARTED" = 1 ]; then
		echo "ceph-start: failed${CURRENT:+ while waiting for $CURRENT}; stopping the cluster" >&2
		if [ -n "$CURRENT" ] && [ -f "$DIR/log/$CURRENT.log" ]; then
			echo "---- tail of $DIR/log/$CURRENT.log" >&2
			tail -n 20 "$DIR/log/$CURRENT.log" >&2 || true
			echo "----" >&2
		fi
		"$SCRIPTS/ceph-stop.sh" "$DIR" --kill 9>&- >&2 || true
	fi
	exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM HUP

# Run daemon $1 (pid-file name) as `$2...`, in the foreground of its own
# session with all standard streams redirected (an inherited pipe would make
# a caller of this script hang) and without the lock fd; record its PID.
# setsid execs (the background job is no process group leader), so $! is the
# daemon's PID.
spawn() {
	_name=$1
	shift
	setsid "$@" </dev/null >>"$DIR/log/$_name.out" 2>&1 9>&- &
	echo $! >"$DIR/pids/$_name.pid"
	STARTED=1
}

# Poll `$3...` every 0.1 s until it succeeds; fail after $2 seconds. $1 names
# the daemon awaited (for the failure report), which must stay alive.
wait_for() {
	CURRENT=$1
	_limit=$(($(ceph_now_ms) + $2 * 1000))
	shift 2
	_pid=$(ceph_pid_of "$DIR" "$CURRENT")
	until "$@"; do
		if [ -n "$_pid" ] && ! ceph_pid_alive "$_pid"; then
			echo "ceph-start: $CURRENT (pid $_pid) died" >&2
			return 1
		fi
		if [ "$(ceph_now_ms)" -ge "$_limit" ]; then
			echo "ceph-start: timed out waiting for $CURRENT" >&2
			return 1
		fi
		sleep 0.1
	done
	CURRENT=""
}

FSID=$(uuidgen)
cat >"$CONF" <<EOF
# Single-host cairn test cluster made by scripts/ceph-start.sh; see there.
[global]
fsid = $FSID
mon host = [v2:127.0.0.1:$P,v1:127.0.0.1:$((P + 1))]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind port min = $((P + 10))
ms bind port max = $((P + 39))
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
keyring = $DIR/keyring
# admin sockets go into the run dir: daemons' as \$cluster-\$name.asok, clients'
# with their pid added (the default), so that concurrent clients do not collide
run dir = $DIR/run
pid file = $DIR/run/\$name.pid
log file = $DIR/log/\$name.log
mon cluster log file = $DIR/log/cluster.log
crash dir = $DIR/crash
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
osd crush chooseleaf type = 0
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
paxos propose interval = 0.1
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim = false
mon warn on insecure global id reclaim allowed = false
mon mgr mkfs grace = 31536000
mon data avail warn = 2
mon data avail crit = 1

[mon]
mon data = $DIR/mon.\$id

[mgr]
mgr data = $DIR/mgr.\$id

[osd]
osd data = $DIR/osd.\$id
osd objectstore = memstore
memstore device bytes = 8589934592
osd fast shutdown = false

[client.admin]
# the CLI tools must not wait 300 s for a dead cluster
client mount timeout = 30

[client.rgw.a]
rgw data = $DIR/rgw.a
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
rgw thread pool size = 32
EOF

# One keyring holding every identity; the mon's mkfs imports all of it.
K="$DIR/keyring"
ceph-authtool --create-keyring "$K" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool "$K" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' \
	--cap mgr 'allow *' --cap mds 'allow *' >/dev/null
ceph-authtool "$K" --gen-key -n osd.0 --cap mon 'allow profile osd' \
	--cap mgr 'allow profile osd' --cap osd 'allow *' >/dev/null
ceph-authtool "$K" --gen-key -n mgr.x --cap mon 'allow profile mgr' --cap osd 'allow *' \
	--cap mds 'allow *' >/dev/null
ceph-authtool "$K" --gen-key -n client.rgw.a --cap mon 'allow rw' --cap osd 'allow rwx' \
	--cap mgr 'allow rw' >/dev/null
chmod 600 "$K"

# mon
monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$P,v1:127.0.0.1:$((P + 1))]" \
	"$DIR/monmap" >/dev/null
ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$K" \
	>"$DIR/log/mon-mkfs.out" 2>&1
spawn mon ceph-mon -c "$CONF" -i a -f

# OSD: `osd new` also waits for the mon to answer (within T_MON)
CURRENT=mon
OSD_UUID=$(uuidgen)
OSD_ID=$(cephcli osd new "$OSD_UUID" 0 </dev/null 2>"$DIR/log/osd-new.out")
[ "$OSD_ID" = 0 ] || {
	echo "ceph-start: 'ceph osd new' said '$OSD_ID'" >&2
	exit 1
}
T_MON_UP=$(ceph_since "$T0")
CURRENT=osd
ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$OSD_UUID" >"$DIR/log/osd-mkfs.out" 2>&1
spawn osd ceph-osd -c "$CONF" -i 0 -f

# pool, while the OSD boots; ready once a real write works
CURRENT=mon
cephcli osd pool create "$POOL" 8 8 </dev/null >/dev/null 2>"$DIR/log/pool.out"
cephcli osd pool application enable "$POOL" cairn </dev/null >/dev/null 2>>"$DIR/log/pool.out"
wait_for osd "$T_OSD" rados_probe 10
T_RADOS=$(ceph_since "$T0")

# radosgw, its user (radosgw-admin works before radosgw listens), warm-up
spawn rgw radosgw -c "$CONF" -n client.rgw.a -f
CURRENT=rgw
radosgw-admin -c "$CONF" user create --uid=cairn --display-name=cairn --access-key="$AK" \
	--secret-key="$SK" </dev/null >"$DIR/log/rgw-user.out" 2>&1
wait_for rgw "$T_RGW" rgw_probe
CURRENT=rgw
s3req PUT "/$WARMUP_BUCKET" -o /dev/null
s3req PUT "/$WARMUP_BUCKET/warm-up" --data-binary warm-up -o /dev/null
CURRENT=""
T_RGW_UP=$(ceph_since "$T0")

cat >"$DIR/env.tmp" <<EOF
export CEPH_CONF=$CONF
export CAIRN_TEST_CEPH_DIR=$DIR
export CAIRN_TEST_RADOS_POOL=$POOL
export CAIRN_TEST_S3_ENDPOINT=http://127.0.0.1:$RGW_PORT
export CAIRN_TEST_S3_WARMUP_BUCKET=$WARMUP_BUCKET
export AWS_ACCESS_KEY_ID=$AK
export AWS_SECRET_ACCESS_KEY=$SK
export CAIRN_TEST_MON_PID=$(ceph_pid_of "$DIR" mon)
export CAIRN_TEST_OSD_PID=$(ceph_pid_of "$DIR" osd)
export CAIRN_TEST_RGW_PID=$(ceph_pid_of "$DIR" rgw)
EOF
mv "$DIR/env.tmp" "$DIR/env"
echo "ceph-start: cluster up in $DIR: mon answering at ${T_MON_UP} s, RADOS writable at" \
	"${T_RADOS} s, radosgw on 127.0.0.1:$RGW_PORT ready at ${T_RGW_UP} s"
echo "ceph-start: . $DIR/env"
