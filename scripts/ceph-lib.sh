# shellcheck shell=sh
# ceph-lib.sh - helpers shared by scripts/ceph-start.sh and scripts/ceph-stop.sh
# (sourced, not run). POSIX sh. See docs in ceph-start.sh.

# Milliseconds of the monotonic-enough wall clock.
ceph_now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# "1.234" seconds since $1 (a ceph_now_ms value).
ceph_since() {
	_ms=$(($(ceph_now_ms) - $1))
	printf '%d.%03d' $((_ms / 1000)) $((_ms % 1000))
}

# True if PID $1 exists and is not a zombie (kill -0 succeeds on zombies; PID 1
# reaps orphans late on this VM, so look at the state in /proc/PID/stat).
ceph_pid_alive() {
	[ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 1
	# the state is the first field after the ")" closing the command name
	_st=$(sed -n 's/^.*) \([A-Za-z]\) .*$/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$_st" ] && [ "$_st" != Z ] && [ "$_st" != X ]
}

# True if PID $1 is alive and is one of our daemons: its command line names
# our ceph.conf $2 (guards against a recycled PID).
ceph_pid_ours() {
	ceph_pid_alive "$1" || return 1
	tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "-c $2 "
}

# PID recorded for daemon $2 under DIR $1, or "" if none.
ceph_pid_of() {
	if [ -r "$1/pids/$2.pid" ]; then
		tr -dc 0-9 <"$1/pids/$2.pid"
	fi
}
