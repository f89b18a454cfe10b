#!/bin/sh
# The README's run command: install what is needed, build, then run the main
# job on the embedded default target (a local directory): init a repository,
# back up a sample directory, back it up again unchanged, restore it, compare
# the restore with the source, run a restore drill, and verify every blob of
# the repository.
#
# usage: scripts/demo.sh [SOURCE_DIR]    (default: /usr/share/doc and /usr/include)
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
CAIRN=$PWD/build/bin/cairn

WORK=${CAIRN_DEMO_DIR:-/tmp/cairn-demo}
rm -rf "$WORK"
mkdir -p "$WORK"
if [ $# -gt 0 ]; then
	SRC=$1
else
	SRC=$WORK/source
	mkdir -p "$SRC"
	cp -a /usr/share/doc /usr/include "$SRC"/ 2>/dev/null || true
fi
REPO=$WORK/repo
export CAIRN_PASSWORD=${CAIRN_PASSWORD:-demo-passphrase}

echo "== init $REPO"
"$CAIRN" -r "$REPO" init
echo "== backup $SRC"
"$CAIRN" -r "$REPO" backup --client demo --tag demo "$SRC"
echo "== second backup (nothing changed: no file is read again)"
"$CAIRN" -r "$REPO" backup --client demo --tag demo "$SRC"
echo "== snapshots"
"$CAIRN" -r "$REPO" snapshots
echo "== restore latest into $WORK/restore"
"$CAIRN" -r "$REPO" restore latest --target "$WORK/restore"
echo "== compare the restore with the source"
if [ -x build/tests/treecmp ]; then
	build/tests/treecmp "$SRC" "$WORK/restore$(cd "$SRC" && pwd)"
else
	diff -r "$SRC" "$WORK/restore$(cd "$SRC" && pwd)"
fi
echo "identical"
echo "== restore drill: restore a 20% sample into a sandbox, check every chunk id, file digest,"
echo "   metadata, and the files unchanged since the snapshot against the live source"
"$CAIRN" -r "$REPO" drill --sample 20% --sandbox "$WORK/drills" --compare-live
"$CAIRN" -r "$REPO" drill status
echo "== check --read-data"
"$CAIRN" -r "$REPO" check --read-data
echo "== stats"
"$CAIRN" -r "$REPO" stats
echo "demo done: repository in $REPO"
