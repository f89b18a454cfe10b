#!/usr/bin/env bash
# bench_targets.sh - backup and restore throughput of the `cairn` command line
# to each target kind (local directory, RADOS, S3 through radosgw) and to the
# replica set of the three (min_copies 2), on the same data in one run.
#
# Each case gets a fresh repository (its own directory, RADOS namespace or S3
# bucket), then: init (cheap KDF), backup of the corpus, restore of it into an
# empty directory, and (BENCH_VERIFY=1) a byte comparison of the restored tree
# with the corpus. Both are run with --no-cache, so the restore reads every
# byte from the target. Throughput is corpus bytes / wall seconds, in MB/s
# (10^6 bytes). One JSON line per case goes to stdout (and results.jsonl),
# then a Markdown table (and results.md), in the work directory.
#
# The corpus is random data (incompressible, so what is timed is chunking,
# hashing, encryption and the target, not zstd), BENCH_MB MiB in files of
# 100 MiB, made once and reused. It is read from the page cache (warm).
#
# Needs a Ceph cluster with radosgw: scripts/ceph-start.sh DIR, then
# `. DIR/env` (CEPH_CONF, CAIRN_TEST_RADOS_POOL, CAIRN_TEST_S3_ENDPOINT,
# AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY). Objects written to the cluster
# are removed afterwards (rados rm, s3cmd, radosgw-admin gc process), best
# effort. On the test cluster's memstore OSD (8 GiB) everything lives in RAM:
# a run stores about 4 x BENCH_MB there at its peak, and a full OSD blocks
# every write and delete.
#
# usage: bench/bench_targets.sh [--cases local,rados,s3,replica]
# environment:
#   BENCH_DIR     work directory (default /var/tmp/cairn-bench-targets)
#   BENCH_MB      corpus size in MiB (default 500)
#   BENCH_CAIRN   cairn binary (default: build/bin/cairn, then PATH); copied into
#                 the work directory first, so a rebuild cannot interfere
#   BENCH_VERIFY  1 (default): compare the restored tree with the corpus
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CASES="local,rados,s3,replica"

while [ $# -gt 0 ]; do
	case "$1" in
	--cases) CASES=${2:?--cases needs a value}; shift 2 ;;
	--cases=*) CASES=${1#--cases=}; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench_targets.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done

W=${BENCH_DIR:-/var/tmp/cairn-bench-targets}
MB=${BENCH_MB:-500}
VERIFY=${BENCH_VERIFY:-1}
: "${CEPH_CONF:?no test cluster: run scripts/ceph-start.sh DIR and source DIR/env}"
: "${CAIRN_TEST_S3_ENDPOINT:?no S3 endpoint: source DIR/env of scripts/ceph-start.sh}"
: "${AWS_ACCESS_KEY_ID:?}" "${AWS_SECRET_ACCESS_KEY:?}"
POOL=${CAIRN_TEST_RADOS_POOL:-cairn}
S3=$CAIRN_TEST_S3_ENDPOINT

src_bin=${BENCH_CAIRN:-}
if [ -z "$src_bin" ]; then
	if [ -x "$ROOT/build/bin/cairn" ]; then src_bin=$ROOT/build/bin/cairn
	else src_bin=$(command -v cairn || true); fi
fi
[ -n "$src_bin" ] && [ -x "$src_bin" ] || { echo "bench_targets.sh: no cairn binary (set BENCH_CAIRN)" >&2; exit 1; }
mkdir -p "$W/tools" "$W/corpus"
cp "$src_bin" "$W/tools/cairn"
CAIRN=$W/tools/cairn
VERSION="$("$CAIRN" version | cut -d' ' -f2) $(sha256sum "$CAIRN" | cut -c1-12)"

# the corpus: MB MiB of random bytes in files of up to 100 MiB, made once
if [ "$(cat "$W/corpus/.size" 2>/dev/null || true)" != "$MB" ]; then
	rm -rf "$W/corpus" && mkdir -p "$W/corpus"
	left=$MB i=0
	while [ "$left" -gt 0 ]; do
		n=$((left < 100 ? left : 100))
		head -c "$((n * 1048576))" /dev/urandom >"$W/corpus/r$i"
		left=$((left - n)) i=$((i + 1))
	done
	echo "$MB" >"$W/corpus/.size"
fi
BYTES=$(du -sb --exclude=.size "$W/corpus" | cut -f1)
cat "$W/corpus"/r* >/dev/null # warm

export CAIRN_PASSWORD=cairn-bench-passphrase
RUN=$(date +%s)-$$
S3CFG=$W/s3cfg
HOSTPORT=${S3#http://}
printf '[default]\naccess_key = %s\nsecret_key = %s\nhost_base = %s\nhost_bucket = %s\nuse_https = False\n' \
	"$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" "$HOSTPORT" "$HOSTPORT" >"$S3CFG"

now() { date +%s.%N; }
# mbs BYTES SECONDS
mbs() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", (s > 0 ? b / s / 1e6 : 0) }'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

wipe_rados() { rados -c "$CEPH_CONF" -p "$POOL" -N "$1" ls 2>/dev/null |
	xargs -r -n 64 rados -c "$CEPH_CONF" -p "$POOL" -N "$1" rm 2>/dev/null || true; }
wipe_s3() { command -v s3cmd >/dev/null || return 0
	s3cmd -q -c "$S3CFG" del --recursive --force "s3://$1" >/dev/null 2>&1 || true
	s3cmd -q -c "$S3CFG" rb "s3://$1" >/dev/null 2>&1 || true; }

RESULTS=$W/results.jsonl
: >"$RESULTS"
ROWS=()

# run_case NAME REPO-ARGS...: init, backup, restore, verify; one JSON line
run_case() {
	local name=$1; shift
	local dir=$W/$name log=$W/$name.log
	rm -rf "$dir" && mkdir -p "$dir"
	"$CAIRN" "$@" -q init --kdf-memory 1024 --kdf-time 1 >"$log" 2>&1
	local t0 t1 t2 ok=true
	t0=$(now)
	"$CAIRN" "$@" --no-cache -q backup "$W/corpus" >>"$log" 2>&1 || ok=false
	t1=$(now)
	"$CAIRN" "$@" --no-cache -q restore latest --target "$dir/restored" >>"$log" 2>&1 || ok=false
	t2=$(now)
	if [ "$VERIFY" = 1 ] && $ok; then
		diff -rq "$W/corpus" "$dir/restored$W/corpus" >>"$log" 2>&1 || ok=false
	fi
	local bs rs bm rm_
	bs=$(secs "$t0" "$t1") rs=$(secs "$t1" "$t2")
	bm=$(mbs "$BYTES" "$bs") rm_=$(mbs "$BYTES" "$rs")
	local line
	line=$(printf '{"case":"%s","bytes":%s,"backup_s":%s,"backup_mb_s":%s,"restore_s":%s,"restore_mb_s":%s,"ok":%s,"cairn":"%s"}' \
		"$name" "$BYTES" "$bs" "$bm" "$rs" "$rm_" "$ok" "$VERSION")
	echo "$line" | tee -a "$RESULTS"
	ROWS+=("| $name | $bs | $bm | $rs | $rm_ | $ok |")
	$ok || { echo "bench_targets.sh: $name failed, see $log" >&2; tail -n 5 "$log" >&2; }
	rm -rf "$dir/restored"
}

IFS=, read -r -a want <<<"$CASES"
for c in "${want[@]}"; do
	case "$c" in
	local) run_case local -r "$W/local/repo" ;;
	rados)
		run_case rados -r "rados:$POOL/bench-$RUN"
		wipe_rados "bench-$RUN" ;;
	s3)
		run_case s3 -r "s3:$S3/bench-$RUN"
		wipe_s3 "bench-$RUN" ;;
	replica)
		cfg=$W/replica.yaml
		cat >"$cfg" <<EOF
repositories:
  bench:
    min_copies: 2
    journal: "$W/replica.journal"
    targets:
      - url: "$W/replica/local"
      - url: "rados:$POOL/bench-rep-$RUN"
      - url: "s3:$S3/bench-rep-$RUN"
EOF
		rm -rf "$W/replica" "$W/replica.journal"
		run_case replica --config "$cfg" -r bench
		[ -s "$W/replica.journal" ] && echo "bench_targets.sh: replica journal not empty" >&2
		wipe_rados "bench-rep-$RUN"
		wipe_s3 "bench-rep-$RUN"
		rm -rf "$W/replica" ;;
	*) echo "bench_targets.sh: unknown case '$c'" >&2; exit 2 ;;
	esac
done
rm -rf "$W/local"
# objects deleted through S3 keep their space until radosgw's garbage collection runs
radosgw-admin -c "$CEPH_CONF" gc process --include-all >/dev/null 2>&1 || true

{
	echo
	echo "cairn $VERSION, $((BYTES / 1048576)) MiB of random data, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
	echo
	echo "| target | backup s | backup MB/s | restore s | restore MB/s | ok |"
	echo "|---|---:|---:|---:|---:|---|"
	printf '%s\n' "${ROWS[@]}"
} | tee "$W/results.md"
