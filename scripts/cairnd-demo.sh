#!/bin/sh
# Run docs/examples/cairnd.yaml out of the box on local repositories, without
# touching /etc, /srv or /var: everything lives under one temp directory.
#
#   1. create DIR (default /tmp/cairnd-demo, emptied first) with sample
#      sources, two local repositories (cairn init; password files mode 0600)
#      and an API token file (mode 0600);
#   2. copy the example config with its absolute paths (/etc, /srv, /var)
#      rewritten to DIR by sed (and the listen port, if CAIRND_DEMO_PORT is set);
#   3. start `cairnd --config DIR/cairnd.yaml --foreground` in the background,
#      trigger one backup per client (`cairn --config ... run CLIENT/backup`),
#      poll `cairn ... runs --json` until both have finished (at most 60 s);
#   4. print `cairn status` and `cairn runs`, then stop exactly that cairnd
#      (its PID) and wait for it.
# The example's webhook (127.0.0.1:9000) is not listening here: failed
# notifications only show up in the log (DIR/cairnd.log).
#
# usage: scripts/cairnd-demo.sh [DIR]
#   CAIRN_BIN_DIR     where cairn and cairnd are (default: build/bin of this tree)
#   CAIRND_DEMO_PORT  listen port instead of the example's 8790
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CAIRN_BIN_DIR:-$ROOT/build/bin}
D=${1:-/tmp/cairnd-demo}
EXAMPLE=$ROOT/docs/examples/cairnd.yaml
CAIRN=$BIN/cairn
CAIRND=$BIN/cairnd
for b in "$CAIRN" "$CAIRND"; do
	if [ ! -x "$b" ]; then
		echo "cairnd-demo: $b not found; build first (cmake -S . -B build && cmake --build build)" >&2
		exit 1
	fi
done
case $D in
/*) ;;
*) D=$(pwd)/$D ;;
esac
case $D in
*'#'* | *' '*) echo "cairnd-demo: DIR must not contain '#' or spaces" >&2; exit 1 ;;
esac

rm -rf "$D"
mkdir -p "$D/etc/cairn" "$D/srv/cairn" "$D/var/lib/cairn" "$D/var/www/cache" \
	"$D/var/backups/postgres"
CFG=$D/cairnd.yaml
PID=

stop() {
	if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
		kill -TERM "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	PID=
}
trap 'stop' EXIT
trap 'stop; exit 130' INT TERM

echo "== sample sources under $D"
printf 'hostname demo\n' > "$D/etc/hostname"
printf 'demo config %s\n' 1 2 3 > "$D/etc/demo.conf"
printf '<h1>cairn demo</h1>\n' > "$D/var/www/index.html"
printf 'cache\n' > "$D/var/www/cache/skip.me"
printf 'scratch\n' > "$D/var/www/draft.tmp"
printf 'CREATE TABLE t (id int);\n' > "$D/var/backups/postgres/dump.sql"

echo "== config $CFG (example with paths under $D)"
# absolute /etc, /srv, /var paths of values and lists -> under $D
sed -E "s#(: |\\[|, |\")/(etc|srv|var)\\b#\\1$D/\\2#g" "$EXAMPLE" > "$CFG"
if [ -n "${CAIRND_DEMO_PORT:-}" ]; then
	sed -i -E "s#^(  listen: 127\\.0\\.0\\.1:)[0-9]+#\\1$CAIRND_DEMO_PORT#" "$CFG"
fi
if grep -nE '(: |\[|, |")/(etc|srv|var)\b' "$CFG" | grep -vF "$D/"; then
	echo "cairnd-demo: paths above were not rewritten" >&2
	exit 1
fi

echo "== repositories, passwords, API token"
(
	umask 077
	head -c 18 /dev/urandom | base64 > "$D/etc/cairn/web01.pass"
	head -c 18 /dev/urandom | base64 > "$D/etc/cairn/db01.pass"
	head -c 24 /dev/urandom | base64 > "$D/etc/cairn/api.token"
)
chmod 0600 "$D/etc/cairn/web01.pass" "$D/etc/cairn/db01.pass" "$D/etc/cairn/api.token"
for r in web01 db01; do
	"$CAIRN" --config "$CFG" -r "$r" -q init
done

echo "== cairnd --config $CFG --foreground (log: $D/cairnd.log)"
"$CAIRND" --config "$CFG" --foreground > "$D/cairnd.log" 2>&1 &
PID=$!
echo "cairnd pid $PID"
i=0
until "$CAIRN" --config "$CFG" status > /dev/null 2>&1; do
	i=$((i + 1))
	if ! kill -0 "$PID" 2>/dev/null || [ $i -ge 100 ]; then
		echo "cairnd-demo: cairnd did not come up:" >&2
		cat "$D/cairnd.log" >&2
		exit 1
	fi
	sleep 0.1
done

for c in web01 db01; do
	"$CAIRN" --config "$CFG" run "$c/backup"
done

echo "== waiting for the backups (at most 60 s)"
# each client's backup has a finished run (not running)
finished() {
	"$CAIRN" --config "$CFG" runs --json > "$D/runs.json" 2>/dev/null || return 1
	for c in web01 db01; do
		grep -o "\"job\": *\"$c/backup\"[^}]*\"status\": *\"[a-z]*\"" "$D/runs.json" |
			grep -qv '"running"' || return 1
	done
}
deadline=$(($(date +%s) + 60))
until finished; do
	if [ "$(date +%s)" -ge "$deadline" ]; then
		echo "cairnd-demo: backups did not finish within 60 s" >&2
		cat "$D/cairnd.log" >&2
		exit 1
	fi
	sleep 1
done

echo "== cairn status"
"$CAIRN" --config "$CFG" status
echo "== cairn runs"
"$CAIRN" --config "$CFG" runs
echo "== stopping cairnd (pid $PID)"
stop
echo "done; everything is under $D"
