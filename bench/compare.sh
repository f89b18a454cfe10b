#!/usr/bin/env bash
# compare.sh - cairn against restic and borg on the same data, in one run.
#
# Builds the corpora under the work directory when they are missing, runs
# every selected tool through every selected phase (each phase timed with
# /usr/bin/time: wall, user+sys CPU, peak RSS), then prints a Markdown table
# and writes results.jsonl and results.md into the work directory.
# See bench/README.md for the phases, the corpora and the caveats.
#
# usage: bench/compare.sh [--quick] [--tools cairn,restic,borg] [--phases LIST]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
ALL_PHASES="init first unchanged v2 v3 restore check image-v1 image-v2"
ALL_TOOLS="cairn restic borg"

usage() {
	cat <<EOF
usage: bench/compare.sh [--quick] [--tools LIST] [--phases LIST]

  --quick          small corpora (usr 200 MiB, image 256 MiB) for a smoke run
  --tools LIST     comma-separated subset of: cairn,restic,borg (default: all)
  --phases LIST    comma-separated phases or groups (default: all):
                     init first unchanged v2 v3 restore check image-v1 image-v2
                     groups: usr (first,unchanged) versions (v2,v3)
                             image (image-v1,image-v2) all
                   phases that a selected phase needs are added.

environment:
  BENCH_DIR        work directory (default /var/tmp/cairn-bench)
  BENCH_USR_MB     size of the usr corpus in MiB (default 2048, --quick 200)
  BENCH_IMAGE_MB   size of the image in MiB (default 2048, --quick 256)
  BENCH_USR_TREES  "DIR:PCT ..." the usr corpus draws from
                   (default "/usr/bin:20 /usr/share:40 /usr/lib:40")
  BENCH_IMAGE_TREES  directories the image's bytes come from
                   (default "/usr/bin /usr/lib /usr/share")
  BENCH_SEED       seed of the edits and the image mutation (default 1)
  BENCH_CAIRN      cairn binary (default: $ROOT/build/bin/cairn, then PATH)
  BENCH_BORG_COMPRESSION    borg --compression (default zstd,3)
  BENCH_RESTIC_COMPRESSION  restic --compression (default auto)
  BENCH_CACHE      warm (default: before each phase, after emptying the page
                   cache when root, read the inputs, the tool's cache
                   directories and repository metadata and start the tool
                   once) or
                   cold (drop the page cache before each phase; needs root)
  BENCH_VERIFY     1 (default): compare the restored tree with the source
  BENCH_KEEP       1 (default): keep the repositories until the next run;
                   0: delete each tool's repositories after its phases
  BENCH_TIMEOUT    seconds after which a phase is killed and marked TIMEOUT
                   (default 3600, --quick 600)
  BENCH_PASSWORD   passphrase of all repositories (default cairn-bench-passphrase)
  BENCH_FS         fresh (default as root): each tool runs on a new ext4 file
                   system (a sparse image on a loop device) holding its data
                   copy, repositories and restores; host: on BENCH_DIR's own
                   file system. On an aged file system, creating files soon
                   after many were deleted costs ext4 a scan of the recently
                   freed inodes: a restore of the usr corpus took 3.3 s on a
                   new file system and 6-16 s of mostly system time on this
                   machine's root after earlier runs, for every tool.
  BENCH_FS_GB      size of each fresh file system in GiB (default 24, sparse)
EOF
}

die() { echo "compare.sh: $*" >&2; exit 1; }
say() { printf '%s\n' "$*"; }

# ---- options --------------------------------------------------------------
TOOLS_ARG=cairn,restic,borg
PHASES_ARG=all
QUICK=0
while [ $# -gt 0 ]; do
	case "$1" in
	--tools) [ $# -ge 2 ] || die "--tools needs a value"; TOOLS_ARG=$2; shift 2 ;;
	--tools=*) TOOLS_ARG=${1#*=}; shift ;;
	--phases) [ $# -ge 2 ] || die "--phases needs a value"; PHASES_ARG=$2; shift 2 ;;
	--phases=*) PHASES_ARG=${1#*=}; shift ;;
	--quick) QUICK=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "compare.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
	esac
done

BENCH_DIR=${BENCH_DIR:-/var/tmp/cairn-bench}
if [ "$QUICK" = 1 ]; then
	USR_MB=${BENCH_USR_MB:-200}
	IMAGE_MB=${BENCH_IMAGE_MB:-256}
else
	USR_MB=${BENCH_USR_MB:-2048}
	IMAGE_MB=${BENCH_IMAGE_MB:-2048}
fi
USR_TREES=${BENCH_USR_TREES:-"/usr/bin:20 /usr/share:40 /usr/lib:40"}
IMAGE_TREES=${BENCH_IMAGE_TREES:-"/usr/bin /usr/lib /usr/share"}
SEED=${BENCH_SEED:-1}
BORG_COMPRESSION=${BENCH_BORG_COMPRESSION:-zstd,3}
RESTIC_COMPRESSION=${BENCH_RESTIC_COMPRESSION:-auto}
CACHE_MODE=${BENCH_CACHE:-warm}
VERIFY=${BENCH_VERIFY:-1}
KEEP=${BENCH_KEEP:-1}
if [ "$QUICK" = 1 ]; then TIMEOUT=${BENCH_TIMEOUT:-600}; else TIMEOUT=${BENCH_TIMEOUT:-3600}; fi
PASSWORD=${BENCH_PASSWORD:-cairn-bench-passphrase}
case "$USR_MB$IMAGE_MB$SEED$TIMEOUT" in *[!0-9]*) die "BENCH_USR_MB, BENCH_IMAGE_MB, BENCH_SEED and BENCH_TIMEOUT must be integers" ;; esac
if [ "$(id -u)" -eq 0 ] && command -v mkfs.ext4 >/dev/null && command -v losetup >/dev/null; then
	FS_MODE=${BENCH_FS:-fresh}
else
	FS_MODE=${BENCH_FS:-host}
fi
FS_GB=${BENCH_FS_GB:-24}
case "$FS_MODE" in
host) ;;
fresh) [ "$(id -u)" -eq 0 ] || die "BENCH_FS=fresh needs root (losetup, mount)" ;;
*) die "BENCH_FS must be fresh or host" ;;
esac
case "$FS_GB" in '' | *[!0-9]*) die "BENCH_FS_GB must be an integer" ;; esac
case "$CACHE_MODE" in
warm) ;;
cold) [ "$(id -u)" -eq 0 ] || die "BENCH_CACHE=cold needs root (writes /proc/sys/vm/drop_caches)" ;;
*) die "BENCH_CACHE must be warm or cold" ;;
esac

# ---- phases ---------------------------------------------------------------
SEL=" "
for p in ${PHASES_ARG//,/ }; do
	case "$p" in
	all) SEL="$SEL$ALL_PHASES " ;;
	usr) SEL="${SEL}first unchanged " ;;
	versions) SEL="${SEL}v2 v3 " ;;
	image) SEL="${SEL}image-v1 image-v2 " ;;
	*)
		case " $ALL_PHASES " in *" $p "*) SEL="$SEL$p " ;; *) die "unknown phase '$p' (see --help)" ;; esac
		;;
	esac
done
want() { case "$SEL" in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
need() { want "$1" || SEL="$SEL$1 "; }
for _ in 1 2 3; do
	for p in unchanged v2 restore check; do want "$p" && need first; done
	want v3 && need v2
	want first && need init
	want image-v2 && need image-v1
done
PHASES=""
for p in $ALL_PHASES; do want "$p" && PHASES="$PHASES $p"; done
PHASES=${PHASES# }
[ -n "$PHASES" ] || die "no phase selected"
USR_NEEDED=0
IMAGE_NEEDED=0
want first && USR_NEEDED=1
want image-v1 && IMAGE_NEEDED=1

# ---- tools ----------------------------------------------------------------
[ -x /usr/bin/time ] || die "/usr/bin/time is missing: apt-get install -y time (or scripts/install-deps.sh --bench)"
CAIRN_BIN=""
if [ -n "${BENCH_CAIRN:-}" ]; then
	CAIRN_BIN=$BENCH_CAIRN
elif [ -x "$ROOT/build/bin/cairn" ]; then
	CAIRN_BIN=$ROOT/build/bin/cairn
elif command -v cairn >/dev/null 2>&1; then
	CAIRN_BIN=$(command -v cairn)
fi

TOOLS=""
for t in ${TOOLS_ARG//,/ }; do
	case " $ALL_TOOLS " in *" $t "*) ;; *) die "unknown tool '$t' (cairn, restic, borg)" ;; esac
	case "$t" in
	cairn)
		if [ -z "$CAIRN_BIN" ] || [ ! -x "$CAIRN_BIN" ]; then
			say "SKIP cairn: no cairn binary (looked at ${BENCH_CAIRN:-$ROOT/build/bin/cairn} and PATH)."
			say "     Build it: cmake -S $ROOT -B $ROOT/build && cmake --build $ROOT/build -j2"
			continue
		fi ;;
	restic)
		command -v restic >/dev/null 2>&1 || {
			say "SKIP restic: not installed (apt-get install -y restic, or scripts/install-deps.sh --bench)"
			continue
		} ;;
	borg)
		command -v borg >/dev/null 2>&1 || {
			say "SKIP borg: not installed (apt-get install -y borgbackup, or scripts/install-deps.sh --bench)"
			continue
		} ;;
	esac
	case " $TOOLS " in *" $t "*) ;; *) TOOLS="$TOOLS $t" ;; esac
done
TOOLS=${TOOLS# }
[ -n "$TOOLS" ] || die "no tool to run"

tool_version() {
	case "$1" in
	cairn)
		local v
		v=$("$CAIRN_BIN" version 2>/dev/null | head -n1) || v=""
		[ -n "$v" ] || v="cairn"
		if git -C "$ROOT" rev-parse --short HEAD >/dev/null 2>&1; then
			v="$v (git $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo '+dirty'))"
		fi
		[ -z "$CAIRN_ID" ] || v="$v [$CAIRN_ID]"
		echo "$v" ;;
	restic) restic version 2>/dev/null | head -n1 ;;
	borg) borg --version 2>/dev/null | head -n1 ;;
	esac
}

# ---- work directory -------------------------------------------------------
mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
CORPUS=$BENCH_DIR/corpus
RUN=$BENCH_DIR/run
LOGS=$BENCH_DIR/logs
TOOLBIN=$BENCH_DIR/tools
mkdir -p "$CORPUS" "$TOOLBIN"

# Fresh file systems (BENCH_FS=fresh): one sparse ext4 image per tool, on a
# loop device with direct I/O (no second copy in the page cache), mounted at
# $RUN/<tool>.fs. unmount_all undoes every mount of an earlier run too. A
# tool still running in one (an interrupted run) is killed first: otherwise
# the mount stays busy, the loop device keeps the deleted image, and each
# interrupted run leaks its ~12 GB until the tool exits.
unmount_all() {
	local m dev
	for m in $(findmnt -rn -o TARGET 2>/dev/null | grep "^$RUN/" | sort -r); do
		dev=$(findmnt -rn -o SOURCE --target "$m" 2>/dev/null || true)
		if ! umount "$m" 2>/dev/null; then
			command -v fuser >/dev/null && fuser -km "$m" >/dev/null 2>&1 && sleep 1
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
		fi
		case "$dev" in /dev/loop*) losetup -d "$dev" 2>/dev/null || true ;; esac
	done
}
fresh_fs() { # TOOL -> prints the mount point
	local img=$BENCH_DIR/fs-$1.img mnt=$RUN/$1.fs dev
	rm -f "$img"
	truncate -s "${FS_GB}G" "$img"
	mkfs.ext4 -q -F -E lazy_itable_init=1,lazy_journal_init=1 "$img" >/dev/null
	dev=$(losetup -f --show --direct-io=on "$img" 2>/dev/null || losetup -f --show "$img")
	mkdir -p "$mnt"
	mount "$dev" "$mnt"
	echo "$mnt"
}
unmount_all
rm -rf "$RUN" "$LOGS" "$BENCH_DIR"/fs-*.img
mkdir -p "$RUN" "$LOGS"
# repositories are kept (mounted) for inspection until the next run unless BENCH_KEEP=0
[ "$FS_MODE" = fresh ] && [ "$KEEP" != 1 ] && trap unmount_all EXIT
RESULTS=$BENCH_DIR/results.jsonl
TSV=$LOGS/results.tsv
: >"$RESULTS"
: >"$TSV"
RUN_ID=$(date -u +%Y%m%dT%H%M%SZ)

# Run a private copy of cairn, so a rebuild during the run cannot mix binaries.
CAIRN_ORIG=""
CAIRN_ID=""
case " $TOOLS " in
*" cairn "*)
	CAIRN_ORIG=$CAIRN_BIN
	cp "$CAIRN_BIN" "$TOOLBIN/cairn.tmp"
	mv "$TOOLBIN/cairn.tmp" "$TOOLBIN/cairn"
	CAIRN_BIN=$TOOLBIN/cairn
	CAIRN_ID="$CAIRN_ORIG, built $(date -u -r "$CAIRN_ORIG" +%Y-%m-%dT%H:%M:%SZ), sha256 $(sha256sum "$CAIRN_BIN" | cut -c1-12)"
	;;
esac

MKCORPUS=$TOOLBIN/mkcorpus
if [ ! -x "$MKCORPUS" ] || [ "$HERE/mkcorpus.c" -nt "$MKCORPUS" ]; then
	command -v cc >/dev/null 2>&1 || die "cc is missing (apt-get install -y build-essential)"
	cc -O2 -o "$MKCORPUS.tmp" "$HERE/mkcorpus.c" || die "cannot compile $HERE/mkcorpus.c"
	mv "$MKCORPUS.tmp" "$MKCORPUS"
fi

json_str() { # a JSON string literal
	local s=${1//\\/\\\\}
	s=${s//\"/\\\"}
	s=${s//$'\t'/ }
	s=${s//$'\n'/ }
	printf '"%s"' "$s"
}
data_bytes() { # apparent size of the regular files under $1
	find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%d\n", s }'
}
file_count() { find "$1" -type f | wc -l; }
repo_bytes() { if [ -e "$1" ]; then du -sb "$1" | cut -f1; else echo 0; fi; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

# ---- corpora --------------------------------------------------------------
USR_DIR=$CORPUS/usr-${USR_MB}M
IMG1=$CORPUS/image-${IMAGE_MB}M-v1.img
IMG2=$CORPUS/image-${IMAGE_MB}M-v2.img

# The stamps hold what a corpus was built from; a different recipe rebuilds it.
CORPUS_FORMAT=1
USR_STAMP="format $CORPUS_FORMAT; trees $USR_TREES"
IMAGE_STAMP="format $CORPUS_FORMAT; trees $IMAGE_TREES; seed $SEED"

build_usr() {
	[ "$(cat "$USR_DIR.complete" 2>/dev/null)" = "$USR_STAMP" ] && return 0
	say "== building corpus usr: ${USR_MB} MiB of /usr files -> $USR_DIR"
	rm -rf "$USR_DIR" "$USR_DIR.list" "$USR_DIR.complete"
	mkdir -p "$USR_DIR"
	local total=$((USR_MB * 1048576)) carry=0 spec tree pct budget used
	for spec in $USR_TREES; do
		tree=${spec%:*}
		pct=${spec##*:}
		[ -d "$tree" ] || { say "   ($tree missing, its share goes to the next tree)"; carry=$((carry + total * pct / 100)); continue; }
		budget=$((total * pct / 100 + carry))
		find "$tree" -xdev \( -type f -o -type l \) -print0 2>/dev/null | LC_ALL=C sort -z |
			"$MKCORPUS" select "$budget" >>"$USR_DIR.list" 2>"$USR_DIR.used"
		used=$(cat "$USR_DIR.used")
		say "   $tree: $(mib "$used") MiB"
		carry=$((budget - used))
	done
	rm -f "$USR_DIR.used"
	# cp -a of the chosen files (tar keeps modes, times, owners, symlinks, hard links)
	sed -z 's|^/||' "$USR_DIR.list" |
		tar -C / --null --no-recursion -T - -cf - | tar -C "$USR_DIR" -xpf -
	sync
	echo "$USR_STAMP" >"$USR_DIR.complete"
}

build_image() {
	[ "$(cat "$IMG2.complete" 2>/dev/null)" = "$IMAGE_STAMP" ] && return 0
	say "== building corpus image: ${IMAGE_MB} MiB from the bytes of $IMAGE_TREES -> $IMG1"
	rm -f "$IMG1" "$IMG2" "$IMG2.complete"
	# shellcheck disable=SC2086
	find $IMAGE_TREES -xdev -type f -print0 2>/dev/null | LC_ALL=C sort -z |
		"$MKCORPUS" image "$IMG1" $((IMAGE_MB * 1048576))
	say "== image v2: 1% of the 4 KiB blocks overwritten, 5 insertions of 100 B (seed $SEED)"
	"$MKCORPUS" mutate "$IMG1" "$IMG2" "$SEED" 10 5 100
	sync
	echo "$IMAGE_STAMP" >"$IMG2.complete"
}

[ "$USR_NEEDED" = 1 ] && build_usr
[ "$IMAGE_NEEDED" = 1 ] && build_image

# ---- space check ------------------------------------------------------------
need_mb=0
[ "$USR_NEEDED" = 1 ] && need_mb=$((need_mb + USR_MB * 4))  # source copy, restore, repo, slack
[ "$IMAGE_NEEDED" = 1 ] && need_mb=$((need_mb + IMAGE_MB * 3))
avail_mb=$(df -Pm "$BENCH_DIR" | awk 'NR == 2 { print $4 }')
if [ "$KEEP" = 1 ]; then
	ntools=$(echo "$TOOLS" | wc -w)
	need_mb=$((need_mb + ntools * (USR_MB + IMAGE_MB * 2)))
fi
[ "$avail_mb" -ge "$need_mb" ] ||
	say "WARNING: $avail_mb MiB free under $BENCH_DIR, about $need_mb MiB may be needed (BENCH_KEEP=0 saves space)"

# ---- measurement ------------------------------------------------------------
warm() { # sync, then read the given trees so every tool starts from a warm cache
	sync
	if [ "$CACHE_MODE" = cold ]; then
		echo 3 >/proc/sys/vm/drop_caches
		return 0
	fi
	# As root, empty the page cache first: every phase then starts with the
	# same free memory and only its inputs and the tool's own cache directory
	# cached, instead of whatever the earlier phases and tools left (new pages
	# for a restore's 2 GiB came from reclaiming them, several seconds of
	# system time in some runs).
	[ "$(id -u)" -eq 0 ] && echo 1 >/proc/sys/vm/drop_caches 2>/dev/null || true
	# the tool's own cache directories ($T of run_tool) are part of every phase's input
	find "$@" "$T/cache" "$T/borg" -type f -print0 2>/dev/null | xargs -0 -r cat >/dev/null 2>&1 || true
	# So are the program and its libraries (started once, as the OS loads them)
	# and the repositories' metadata: everything but the packs under data/.
	# restic keeps its index in its cache directory, which was read above;
	# cairn and borg read theirs from the repository, and with only the cache
	# directories warm they paid disk reads that restic did not.
	case "$TOOL" in
	cairn) "$CAIRN_BIN" version ;;
	restic) restic version ;;
	borg) borg --version ;;
	esac >/dev/null 2>&1 || true
	local r
	for r in "${repo:-}" "${irepo:-}"; do # run_tool's locals
		[ -n "$r" ] && [ -d "$r" ] || continue
		find "$r" -path "$r/data" -prune -o -type f -print0 2>/dev/null |
			xargs -0 -r cat >/dev/null 2>&1 || true
	done
}

# record TOOL PHASE RC WALL USER SYS RSS_KIB REPO_BYTES INPUT_BYTES NOTE [GROWTH_BYTES GROWTH_PCT]
record() {
	local tool=$1 phase=$2 rc=$3 wall=$4 user=$5 sys=$6 rss=$7 repo=$8 input=$9 note=${10}
	local gb=${11:-} gp=${12:-} cpu mbs extra=""
	cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
	mbs=$(awk -v b="$input" -v w="$wall" 'BEGIN { if (w > 0) printf "%.1f", b / 1e6 / w; else print 0 }')
	[ -n "$gb" ] && extra=",\"growth_bytes\":$gb,\"growth_pct\":$gp"
	printf '{"type":"result","run":"%s","tool":"%s","version":%s,"phase":"%s","exit":%s,"wall_s":%s,"user_s":%s,"sys_s":%s,"cpu_s":%s,"max_rss_kib":%s,"repo_bytes":%s,"input_bytes":%s,"mb_per_s":%s%s,"cache":"%s","load1_before":%s,"note":%s}\n' \
		"$RUN_ID" "$tool" "$(json_str "$(tool_version "$tool")")" "$phase" "$rc" "$wall" "$user" "$sys" \
		"$cpu" "$rss" "$repo" "$input" "$mbs" "$extra" "$CACHE_MODE" "${M_LOAD:-0}" "$(json_str "$note")" >>"$RESULTS"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$phase" "$tool" "$rc" "$wall" "$cpu" "$rss" \
		"$repo" "$input" "$mbs" "$note" >>"$TSV"
	if [ "$rc" = 0 ]; then
		printf '   %-7s %-10s %8.2f s wall %8.2f s CPU %7.1f MiB RSS  repo %8.1f MiB  %8.1f MB/s %s\n' \
			"$tool" "$phase" "$wall" "$cpu" "$(mib $((rss * 1024)))" "$(mib "$repo")" "$mbs" "$note"
	else
		printf '   %-7s %-10s FAILED (exit %s) %s; see %s\n' "$tool" "$phase" "$rc" "$note" "$LOGS/$tool-$phase.log"
	fi
}

# measure PHASE INPUT_BYTES REPO CMD... : time CMD; sets M_RC M_WALL M_USER M_SYS M_RSS M_REPO
measure() {
	local phase=$1 input=$2 repo=$3
	shift 3
	local tf=$LOGS/$TOOL-$phase.time log=$LOGS/$TOOL-$phase.log
	M_RC=0
	M_LOAD=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0)
	{ printf '$'; printf ' %q' "$@"; printf '\n'; } >"$log"
	/usr/bin/time -f '%e %U %S %M' -o "$tf" timeout -k 10 "$TIMEOUT" "$@" >>"$log" 2>&1 || M_RC=$?
	local line
	line=$(tail -n1 "$tf" 2>/dev/null || true)
	# shellcheck disable=SC2086
	set -- $line
	if [ $# -eq 4 ]; then
		M_WALL=$1 M_USER=$2 M_SYS=$3 M_RSS=$4
	else
		M_WALL=0 M_USER=0 M_SYS=0 M_RSS=0
		[ "$M_RC" != 0 ] || M_RC=125
	fi
	M_REPO=$(repo_bytes "$repo")
	M_INPUT=$input
}

# The three tools behind one interface: t_init REPO, t_backup REPO NAME PATH,
# t_restore REPO NAME DIR, t_check REPO. NAME names borg's archive.
t_init() {
	case "$TOOL" in
	cairn) measure "$1" 0 "$2" "$CAIRN_BIN" -r "$2" init ;;
	restic) measure "$1" 0 "$2" restic -r "$2" init ;;
	borg) measure "$1" 0 "$2" borg init -e repokey "$2" ;;
	esac
}
t_backup() { # PHASE REPO NAME PATH INPUT
	case "$TOOL" in
	cairn) measure "$1" "$5" "$2" "$CAIRN_BIN" -r "$2" backup "$4" ;;
	restic) measure "$1" "$5" "$2" restic -r "$2" backup --compression "$RESTIC_COMPRESSION" "$4" ;;
	borg) measure "$1" "$5" "$2" borg create --compression "$BORG_COMPRESSION" "$2::$3" "$4" ;;
	esac
}
t_restore() { # PHASE REPO NAME DIR INPUT
	case "$TOOL" in
	cairn) measure "$1" "$5" "$2" "$CAIRN_BIN" -r "$2" restore latest --target "$4" ;;
	restic) measure "$1" "$5" "$2" restic -r "$2" restore latest --target "$4" ;;
	borg) measure "$1" "$5" "$2" env -C "$4" borg extract "$2::$3" ;;
	esac
}
t_check() { # PHASE REPO
	local input
	input=$(repo_bytes "$2")
	case "$TOOL" in
	cairn) measure "$1" "$input" "$2" "$CAIRN_BIN" -r "$2" check --read-data ;;
	restic) measure "$1" "$input" "$2" restic -r "$2" check --read-data ;;
	borg) measure "$1" "$input" "$2" borg check --verify-data "$2" ;;
	esac
}

rec() { # PHASE [NOTE [GROWTH_BYTES GROWTH_PCT]]
	if [ "$M_RC" = 124 ] || [ "$M_RC" = 137 ]; then
		set -- "$1" "TIMEOUT: killed after $TIMEOUT s${2:+; $2}" "${3:-}" "${4:-}"
	fi
	record "$TOOL" "$1" "$M_RC" "$M_WALL" "$M_USER" "$M_SYS" "$M_RSS" "$M_REPO" "$M_INPUT" "${2:-}" "${3:-}" "${4:-}"
}

# Finds the restored copy of SRC under DIR and compares names, contents,
# symlink targets, modes, owners, sizes and mtimes of the non-directories.
verify_restore() { # DIR SRC -> prints a note
	local dir=$1 src=$2 got="" c
	for c in "$dir$src" "$dir/$(basename "$src")" "$dir"; do
		if [ -d "$c/usr" ]; then got=$c; break; fi
	done
	[ -n "$got" ] || { echo "restore: restored tree not found"; return 0; }
	if ! diff -r --no-dereference -q "$src" "$got" >"$LOGS/$TOOL-restore.diff" 2>&1; then
		echo "restore DIFFERS ($(wc -l <"$LOGS/$TOOL-restore.diff") lines in $LOGS/$TOOL-restore.diff)"
		return 0
	fi
	(cd "$src" && find . ! -type d -printf '%p %y %m %U %G %s %T@ %l\n' | LC_ALL=C sort) >"$LOGS/$TOOL-restore.meta-src"
	(cd "$got" && find . ! -type d -printf '%p %y %m %U %G %s %T@ %l\n' | LC_ALL=C sort) >"$LOGS/$TOOL-restore.meta-dst"
	if ! cmp -s "$LOGS/$TOOL-restore.meta-src" "$LOGS/$TOOL-restore.meta-dst"; then
		echo "restore verified (contents); metadata differs: diff $LOGS/$TOOL-restore.meta-{src,dst}"
		return 0
	fi
	rm -f "$LOGS/$TOOL-restore.meta-src" "$LOGS/$TOOL-restore.meta-dst" "$LOGS/$TOOL-restore.diff"
	echo "restore verified"
}

run_tool() {
	TOOL=$1
	local base=$RUN
	[ "$FS_MODE" = fresh ] && base=$(fresh_fs "$TOOL")
	local T=$base/$TOOL data=$base/data img=$base/img
	local repo=$T/repo irepo=$T/repo-image last="" input note
	rm -rf "$T"
	mkdir -p "$T/cache" "$T/borg"
	export XDG_CACHE_HOME=$T/cache
	export RESTIC_CACHE_DIR=$T/cache/restic
	export BORG_BASE_DIR=$T/borg
	export CAIRN_PASSWORD=$PASSWORD RESTIC_PASSWORD=$PASSWORD BORG_PASSPHRASE=$PASSWORD
	export BORG_DISPLAY_PASSPHRASE=no BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
	say "== $TOOL: $(tool_version "$TOOL")"

	if [ "$USR_NEEDED" = 1 ]; then
		rm -rf "$data"
		cp -a "$USR_DIR" "$data"
		sync
		input=$(data_bytes "$data")
		t_init init "$repo"
		rec init
		local ok=$M_RC
		# a failed backup ends the chain: later phases would measure something else
		if [ "$ok" = 0 ] && want first; then
			warm "$data"
			t_backup first "$repo" first "$data" "$input"
			rec first
			ok=$M_RC
			last=first
		fi
		if [ "$ok" = 0 ] && want unchanged; then
			warm "$data"
			t_backup unchanged "$repo" unchanged "$data" "$input"
			rec unchanged
			ok=$M_RC
			last=unchanged
		fi
		local g
		for g in 2 3; do
			if [ "$ok" = 0 ] && want "v$g"; then
				"$MKCORPUS" edit "$data" "$SEED" "$g" 2>>"$LOGS/$TOOL-edits.log"
				input=$(data_bytes "$data")
				warm "$data"
				t_backup "v$g" "$repo" "v$g" "$data" "$input"
				rec "v$g" "$(tail -n1 "$LOGS/$TOOL-edits.log" | sed 's/^mkcorpus edit: [^ ]* //')"
				ok=$M_RC
				last=v$g
			fi
		done
		[ "$ok" = 0 ] || say "   $TOOL: a backup failed; its remaining usr phases are skipped"
		if [ "$ok" = 0 ] && want restore; then
			rm -rf "$T/restore"
			mkdir -p "$T/restore"
			warm "$repo"
			t_restore restore "$repo" "$last" "$T/restore" "$input"
			note="latest = $last"
			if [ "$M_RC" = 0 ] && [ "$VERIFY" = 1 ]; then
				local rc=$M_RC
				note="$note; $(verify_restore "$T/restore" "$data")"
				M_RC=$rc
			fi
			rec restore "$note"
			rm -rf "$T/restore"
		fi
		if [ "$ok" = 0 ] && want check; then
			warm "$repo"
			t_check check "$repo"
			rec check
		fi
		rm -rf "$data"
	fi

	if [ "$IMAGE_NEEDED" = 1 ]; then
		local isize1 isize2 r1 gb gp
		isize1=$(stat -c %s "$IMG1")
		isize2=$(stat -c %s "$IMG2")
		t_init image-init "$irepo"
		if [ "$M_RC" != 0 ]; then
			rec image-init "init of the image repository failed"
		else
			rm -rf "$img"
			mkdir -p "$img"
			cp "$IMG1" "$img/disk.img"
			warm "$img"
			t_backup image-v1 "$irepo" image-v1 "$img" "$isize1"
			rec image-v1
			r1=$M_REPO
			if [ "$M_RC" = 0 ] && want image-v2; then
				cp "$IMG2" "$img/disk.img.new"
				mv "$img/disk.img.new" "$img/disk.img"
				warm "$img"
				t_backup image-v2 "$irepo" image-v2 "$img" "$isize2"
				gb=$((M_REPO - r1))
				gp=$(awk -v g="$gb" -v s="$isize2" 'BEGIN { printf "%.2f", 100 * g / s }')
				rec image-v2 "repo grew $(mib "$gb") MiB = $gp% of the image" "$gb" "$gp"
			fi
			rm -rf "$img"
		fi
	fi
	if [ "$KEEP" != 1 ]; then
		rm -rf "$T"
	fi
}

# ---- run --------------------------------------------------------------------
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
NCPU=$(nproc 2>/dev/null || echo '?')
MEM_MB=$(awk '/^MemTotal/ { printf "%d", $2 / 1024 }' /proc/meminfo 2>/dev/null || echo '?')
say "== cairn-bench compare: run $RUN_ID"
say "   tools: $TOOLS; phases: $PHASES"
say "   machine: ${CPU_MODEL:-unknown CPU}, $NCPU CPUs, $MEM_MB MiB RAM, $(uname -sr)"
if [ "$CACHE_MODE" = warm ]; then
	say "   page cache: WARM - before each phase: sync, page cache emptied (as root), then the inputs, the tool's cache, program and repository metadata read once"
else
	say "   page cache: COLD - sync and drop_caches before each phase"
fi
if [ "$FS_MODE" = fresh ]; then
	FS_DESC="a new ext4 per tool (${FS_GB} GiB sparse image, loop device) for its data copy, repositories and restores"
else
	FS_DESC="$(findmnt -rn -o FSTYPE --target "$BENCH_DIR" 2>/dev/null || echo '?') at $BENCH_DIR (BENCH_FS=host)"
fi
say "   file system: $FS_DESC"
say "   all repositories encrypted; restic: repository format 2, --compression $RESTIC_COMPRESSION;"
say "   borg: init -e repokey, create --compression $BORG_COMPRESSION; cairn: defaults"
say "   per-phase timeout: $TIMEOUT s"

{
	printf '{"type":"meta","run":"%s","host":%s,"cpu":%s,"ncpu":"%s","mem_mib":"%s","kernel":%s,"cache":"%s","usr_mb":%s,"image_mb":%s,"seed":%s,"borg_compression":%s,"restic_compression":%s,"tools":%s,"phases":%s}\n' \
		"$RUN_ID" "$(json_str "$(hostname 2>/dev/null || echo '?')")" "$(json_str "$CPU_MODEL")" "$NCPU" "$MEM_MB" \
		"$(json_str "$(uname -sr)")" "$CACHE_MODE" "$USR_MB" "$IMAGE_MB" "$SEED" "$(json_str "$BORG_COMPRESSION")" \
		"$(json_str "$RESTIC_COMPRESSION")" "$(json_str "$TOOLS")" "$(json_str "$PHASES")"
} >>"$RESULTS"

CORPUS_DESC=""
if [ "$USR_NEEDED" = 1 ]; then
	CORPUS_DESC="usr: $(file_count "$USR_DIR") files, $(mib "$(data_bytes "$USR_DIR")") MiB (from $USR_TREES)"
	say "   corpus $CORPUS_DESC"
fi
if [ "$IMAGE_NEEDED" = 1 ]; then
	d="image: $(mib "$(stat -c %s "$IMG1")") MiB from $IMAGE_TREES; v2 = 1% 4 KiB blocks overwritten + 5 x 100 B inserted"
	say "   corpus $d"
	CORPUS_DESC="$CORPUS_DESC${CORPUS_DESC:+; }$d"
fi

START=$(date +%s)
for t in $TOOLS; do
	run_tool "$t"
done
unset XDG_CACHE_HOME RESTIC_CACHE_DIR BORG_BASE_DIR

# ---- report -------------------------------------------------------------------
REPORT=$BENCH_DIR/results.md
{
	echo "# cairn vs restic vs borg ($RUN_ID)"
	echo
	echo "- machine: ${CPU_MODEL:-unknown CPU}, $NCPU CPUs, $MEM_MB MiB RAM, $(uname -sr)"
	for t in $TOOLS; do echo "- $t: $(tool_version "$t")"; done
	echo "- corpus: $CORPUS_DESC"
	if [ "$CACHE_MODE" = warm ]; then
		echo "- page cache: warm (before each phase: sync, page cache emptied as root, then the inputs, the tool's cache, program and repository metadata read once)"
	else
		echo "- page cache: cold (drop_caches before each phase)"
	fi
	echo "- file system: $FS_DESC"
	for t in $TOOLS; do
		case "$t" in
		cairn) echo "- cairn: \`init\`, \`backup\` with its defaults (BLAKE3 chunk ids, zstd 3, FastCDC 512K/1M/8M, Argon2id 32 MiB x 8 passes)" ;;
		restic) echo "- restic: repository format 2, \`backup --compression $RESTIC_COMPRESSION\`" ;;
		borg) echo "- borg: \`init -e repokey\`, \`create --compression $BORG_COMPRESSION\`" ;;
		esac
	done
	echo "- MB/s = input bytes / 10^6 / wall s (backup: data scanned; restore: data restored; check: repository size)"
	echo
	echo "| phase | tool | wall s | CPU s | peak RSS MiB | repo MiB | MB/s | notes |"
	echo "|---|---|---:|---:|---:|---:|---:|---|"
	for p in $PHASES image-init; do
		for t in $TOOLS; do
			awk -F'\t' -v p="$p" -v t="$t" '$1 == p && $2 == t {
				if ($3 != 0) { printf "| %s | %s | FAIL (exit %s) | | | %.1f | | %s |\n", p, t, $3, $7 / 1048576, $10; next }
				printf "| %s | %s | %.2f | %.2f | %.1f | %.1f | %s | %s |\n", p, t, $4, $5, $6 / 1024, $7 / 1048576, ($8 > 0 ? $9 : ""), $10
			}' "$TSV"
		done
	done
	case " $TOOLS " in
	*" cairn "*)
		peers=""
		for t in restic borg; do case " $TOOLS " in *" $t "*) peers="$peers $t" ;; esac; done
		if [ -n "$peers" ]; then
			echo
			echo "Ratios. Time: peer/cairn (speedup of cairn; > 1 means cairn is faster)."
			echo "RSS and repository size: cairn/peer (< 1 means cairn uses less)."
			echo
			hdr="| phase |"
			sep="|---|"
			for t in $peers; do
				hdr="$hdr wall $t/cairn | CPU $t/cairn | RSS cairn/$t | repo cairn/$t |"
				sep="$sep---:|---:|---:|---:|"
			done
			echo "$hdr"
			echo "$sep"
			for p in $PHASES; do
				awk -F'\t' -v p="$p" -v peers="$peers" '
					function r(a, b) { return (b > 0 && a > 0) ? sprintf("%.2f", a / b) : "-" }
					$1 == p { ok[$2] = ($3 == 0); w[$2] = $4; c[$2] = $5; m[$2] = $6; s[$2] = $7; seen[$2] = 1 }
					END {
						if (!seen["cairn"]) exit
						n = split(peers, P, " "); line = "| " p " |"
						for (i = 1; i <= n; i++) {
							q = P[i]
							if (!seen[q] || !ok[q] || !ok["cairn"]) { line = line " - | - | - | - |"; continue }
							line = line " " r(w[q], w["cairn"]) " | " r(c[q], c["cairn"]) " | " \
								r(m["cairn"], m[q]) " | " r(s["cairn"], s[q]) " |"
						}
						print line
					}' "$TSV"
			done
		fi
		;;
	esac
	echo
	echo "Logs: $LOGS; machine-readable: $RESULTS"
} >"$REPORT"

echo
cat "$REPORT"
say ""
say "== done in $(($(date +%s) - START)) s; report: $REPORT"
