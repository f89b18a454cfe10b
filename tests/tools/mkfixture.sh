#!/bin/bash
# mkfixture.sh - build the "hard" fixture tree that backup/restore round trips
# are checked on (compare with treecmp):
#
#   mkfixture.sh DIR [--big]
#
# DIR must be missing or empty. It gets: empty files and directories; a
# sparse file (64 MiB, or 3 GiB with --big) with data at the start, in the
# middle, at an unaligned offset and ending unaligned at EOF, plus an
# all-hole file; pseudo-random files of 0, 1, 4095, 1 MiB+7 and 20 MiB bytes
# (deterministic: the AES-256-CTR keystream of a key derived from the file's
# name via openssl, else /dev/urandom); three hard links to one inode across
# directories and a hard-linked symlink; relative, absolute, dangling and odd
# symlinks; a fifo and (as root) device nodes c 1 3 and b 7 200; xattrs with
# binary and empty values; modes 0000, 0600, 04755, 02755 and 01777, 0555,
# 0700 directories; (as root) owner 1234:5678 on files, a symlink and a
# directory; nanosecond, pre-1970 and far-future mtimes; names with spaces,
# a newline, a tab, non-UTF-8 bytes, 255 bytes; 40 nested directories; a
# directory of 500 small files. All times are set last, so directory mtimes
# stick. Needs only bash, coreutils, attr (setfattr) and util-linux.
set -eu

usage() {
	echo "usage: mkfixture.sh DIR [--big]" >&2
	exit 2
}

dir=""
big=0
for arg in "$@"; do
	case "$arg" in
	--big) big=1 ;;
	-*) usage ;;
	*)
		[ -z "$dir" ] || usage
		dir=$arg
		;;
	esac
done
[ -n "$dir" ] || usage
mkdir -p -- "$dir"
if [ -n "$(ls -A -- "$dir")" ]; then
	echo "mkfixture.sh: $dir is not empty" >&2
	exit 2
fi
cd -- "$dir"
export TZ=UTC LC_ALL=C
root=0
[ "$(id -u)" = 0 ] && root=1

# rand SEED BYTES: BYTES pseudo-random bytes on stdout, the same for the same SEED.
if command -v openssl >/dev/null 2>&1; then
	rand() {
		local key iv=00000000000000000000000000000000
		key=$(printf '%s' "$1" | sha256sum | cut -c1-64)
		head -c "$2" /dev/zero | openssl enc -aes-256-ctr -nosalt -K "$key" -iv "$iv"
	}
else
	echo "mkfixture.sh: openssl not found, random files will not be deterministic" >&2
	rand() {
		head -c "$2" /dev/urandom
	}
fi

# put FILE SEED OFFSET BYTES: write BYTES random bytes at OFFSET, keeping the rest.
put() {
	rand "$2" "$4" | dd of="$1" bs="$4" count=1 seek="$3" oflag=seek_bytes conv=notrunc \
		iflag=fullblock status=none
}

# hex SEED BYTES: random bytes as 0x... for setfattr
hex() {
	printf '0x'
	rand "$1" "$2" | od -An -tx1 -v | tr -d ' \n'
}

# --- empty things -----------------------------------------------------------
: >empty_file
mkdir empty_dir

# --- content ------------------------------------------------------------------
mkdir data
for size in 0 1 4095 1048583 20971520; do
	rand "r$size" "$size" >"data/r$size"
done
printf 'hello, world\n' >data/text
printf 'no newline at end' >data/nonl

# --- sparse files -------------------------------------------------------------
mkdir sparse
if [ "$big" = 1 ]; then
	name=sparse/big_3g
	size=$((3 * 1024 * 1024 * 1024 + 12345))
	mid=$((1024 * 1024 * 1024))
else
	name=sparse/small_64m
	size=$((64 * 1024 * 1024 + 12345))
	mid=$((32 * 1024 * 1024))
fi
truncate -s "$size" "$name"
put "$name" s0 0 1048576               # data at the start
put "$name" s1 "$mid" 1048576          # in the middle, aligned
put "$name" s2 $((mid * 2 - 7777)) 100 # unaligned, inside one block
put "$name" s3 $((size - 5000)) 5000   # ending at an unaligned EOF
truncate -s $((10 * 1024 * 1024)) sparse/all_hole
truncate -s 5000 sparse/hole_then_data
put sparse/hole_then_data s4 4096 904

# --- hard links ---------------------------------------------------------------
mkdir -p links/sub
rand h1 70000 >links/h1
ln links/h1 links/h2
ln links/h1 links/sub/h3
ln -s ../data/text links/sym1
ln -P links/sym1 links/sym2 # a hard link to the symlink itself
: >links/empty1
ln links/empty1 data/empty2

# --- symlinks -----------------------------------------------------------------
mkdir symlinks
ln -s ../data/r4095 symlinks/relative
ln -s /nonexistent/absolute/target symlinks/absolute_dangling
ln -s /etc symlinks/absolute_dir
ln -s does/not/exist symlinks/dangling
ln -s ../data symlinks/to_dir
ln -s . symlinks/self_dir
ln -s loop_b symlinks/loop_a
ln -s loop_a symlinks/loop_b
ln -s $'target with\nnewline and \xff' symlinks/odd_target
ln -s "$(printf 'x/%.0s' $(seq 1 1000))end" symlinks/long_target

# --- special files ------------------------------------------------------------
mkdir special
mkfifo special/fifo
if [ "$root" = 1 ]; then
	mknod special/chr c 1 3
	mknod special/blk b 7 200
fi

# --- xattrs -------------------------------------------------------------------
mkdir xattrs
printf 'xattr carrier\n' >xattrs/file
setfattr -n user.comment -v "a plain comment" xattrs/file
setfattr -n user.bin -v 0x00ff0010fe00 xattrs/file
setfattr -n user.empty xattrs/file
setfattr -n user.big -v "$(hex xattr.big 3000)" xattrs/file
setfattr -n user.a -v 1 xattrs/file
setfattr -n user.b -v 0x0000 xattrs/file
mkdir xattrs/dir
setfattr -n user.on_dir -v "directory xattr" xattrs/dir
: >xattrs/empty_with_xattr
setfattr -n user.x -v y xattrs/empty_with_xattr
setfattr -n user.shared -v "on a hard-linked inode" links/h1
if [ "$root" = 1 ]; then
	setfattr -n trusted.cairn -v 0x01020304 xattrs/file
	ln -s file xattrs/link_with_xattr
	setfattr -h -n trusted.on_link -v "symlink xattr" xattrs/link_with_xattr
fi

# --- owners (before modes: chown clears setuid/setgid) ------------------------
mkdir owners
printf 'owned\n' >owners/file
printf 'setuid\n' >owners/suid
printf 'setgid\n' >owners/sgid
mkdir owners/dir
ln -s file owners/link
if [ "$root" = 1 ]; then
	chown 1234:5678 owners/file owners/suid owners/dir
	chown 0:5678 owners/sgid
	chown -h 1234:5678 owners/link
	chown 5678:1234 links/h1
fi
chmod 04755 owners/suid
chmod 02755 owners/sgid

# --- modes --------------------------------------------------------------------
mkdir modes
for m in 0000 0600 0644 0755 04755 02755 06711 01755 0444; do
	printf 'mode %s\n' "$m" >"modes/m$m"
	chmod "$m" "modes/m$m"
done
mkdir modes/d1777 modes/d0700 modes/d0555 modes/d2775
printf 'inside a read-only directory\n' >modes/d0555/file
chmod 01777 modes/d1777
chmod 0700 modes/d0700
chmod 02775 modes/d2775

# --- names --------------------------------------------------------------------
mkdir names
long=$(printf 'N%.0s' $(seq 1 254))
for n in "with spaces" $'new\nline' $'tab\there' $'\xff\xfe' $'\xc3\x28bad utf8' "ünïcödé" \
	"-dash" " leading space" "trailing space " ".hidden" "..." "a\\b" '*?[glob]' "${long}E" \
	"'quote\"" "%s%n" "UPPER" "upper"; do
	printf '%s\n' "$n" >"names/$n"
done
mkdir $'names/dir\nwith newline'
: >$'names/dir\nwith newline/inner'

# --- nesting ------------------------------------------------------------------
path=deep
for i in $(seq -w 1 40); do
	path="$path/d$i"
done
mkdir -p "$path"
printf 'at the bottom\n' >"$path/leaf"

# --- many files ---------------------------------------------------------------
mkdir many
for i in $(seq 0 499); do
	printf -v f 'many/f%03d' "$i"
	printf 'small file %d\n' "$i" >"$f"
done

# --- read-only directory: its mode last, once its content is there ------------
chmod 0555 modes/d0555

# --- times, last: touching an entry changes no directory's mtime --------------
shopt -s dotglob nullglob
paths=(.)
collect() {
	local e
	for e in "$1"/*; do
		paths+=("$e")
		if [ -d "$e" ] && [ ! -L "$e" ]; then
			collect "$e"
		fi
	done
}
collect .
touch -h -c -d '2021-03-04 05:06:07.123456789' -- "${paths[@]}"

mkdir times
: >times/pre1970
: >times/future
: >times/epoch
: >times/second_only
ln -s pre1970 times/link
mkdir times/dir
touch -h -d '1960-01-01 00:00:00.5' times/pre1970
touch -h -d '2100-01-01 00:00:00.999999999' times/future
touch -h -d '@0' times/epoch
touch -h -d '2020-02-29 12:00:00' times/second_only
touch -h -d '2001-02-03 04:05:06.000000007' times/link
touch -h -d '1999-12-31 23:59:59.999999999' times/dir
touch -h -d '2022-06-01 00:00:00.000000001' times
touch -h -d '2021-03-04 05:06:07.123456789' .
