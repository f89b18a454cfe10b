/*
 * check_roundtrip.c - end-to-end tests of the `cairn` command line: backup and
 * restore fidelity on the hard fixture (tests/tools/mkfixture.sh, compared
 * with treecmp), unchanged and incremental backups, partial restores and ls,
 * retention (the engine's policy function on synthetic snapshots, then
 * forget --prune), prune with repacking, concurrent backups and prune, and
 * key management. The tests run the real binary (CAIRN_BIN) on repositories
 * with a cheap KDF; each has a directory of its own under one temporary base
 * that the (unchecked, so also after a failure) teardown removes.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine.h"
#include "tests/support/testutil.h"

#define CAP 4096
#define MiB (1024ull * 1024)
#define PASS "correct horse"

/* Helpers ----------------------------------------------------------------- */

static char *g_base; /* every test's directory lives here */

/* snprintf into a CAP-sized buffer (paths and command lines; none comes close). */
__attribute__((format(printf, 2, 3))) static char *pf(char *buf, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, CAP, fmt, ap);
	va_end(ap);
	ck_assert_msg(n >= 0 && n < CAP, "too long: %.100s...", buf);
	return buf;
}

static void base_setup(void)
{
	g_base = tu_mkdtemp("cli-roundtrip");
}

static void base_teardown(void)
{
	tu_rmrf(g_base);
	free(g_base);
	g_base = NULL;
}

/* One test's directory: repo/, cache/ and log (stderr of every command) in it. */
typedef struct tenv {
	char dir[CAP];
} tenv;

static void show_log(const tenv *e)
{
	tu_sh("echo '--- last lines of %s/log:' >&2; tail -n 15 '%s/log' >&2", e->dir, e->dir);
}

__attribute__((format(printf, 3, 0))) static void cmdline(char *cmd, const tenv *e,
							  const char *fmt, va_list ap)
{
	char args[CAP];
	vsnprintf(args, sizeof(args), fmt, ap);
	pf(cmd, "'%s' -r '%s/repo' --cache-dir '%s/cache' %s", CAIRN_BIN, e->dir, e->dir, args);
}

/* Run cairn with these arguments (output to the log); returns its exit code. */
__attribute__((format(printf, 2, 3))) static int cairn(const tenv *e, const char *fmt, ...)
{
	char cmd[CAP];
	va_list ap;
	va_start(ap, fmt);
	cmdline(cmd, e, fmt, ap);
	va_end(ap);
	return tu_sh("%s >>'%s/log' 2>&1 </dev/null", cmd, e->dir);
}

/* Run cairn and capture its stdout in *out (malloc'd); returns its exit code. */
__attribute__((format(printf, 3, 4))) static int cairn_out(const tenv *e, char **out,
							    const char *fmt, ...)
{
	char cmd[CAP], full[CAP];
	va_list ap;
	va_start(ap, fmt);
	cmdline(cmd, e, fmt, ap);
	va_end(ap);
	pf(full, "%s 2>>'%s/log' </dev/null", cmd, e->dir);
	FILE *p = popen(full, "r");
	ck_assert_ptr_nonnull(p);
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	size_t n;
	while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
		len += n;
		if (cap - len < 2)
			buf = realloc(buf, cap *= 2);
	}
	buf[len] = 0;
	int st = pclose(p);
	*out = buf;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define run_ok(e, ...)                                                                             \
	do {                                                                                       \
		int rc_ = cairn((e), __VA_ARGS__);                                                 \
		if (rc_ != 0)                                                                      \
			show_log(e);                                                               \
		ck_assert_msg(rc_ == 0, "cairn " __VA_ARGS__);                                     \
	} while (0)

#define out_ok(e, out, ...)                                                                        \
	do {                                                                                       \
		int rc_ = cairn_out((e), (out), __VA_ARGS__);                                      \
		if (rc_ != 0)                                                                      \
			show_log(e);                                                               \
		ck_assert_msg(rc_ == 0, "cairn " __VA_ARGS__);                                     \
	} while (0)


/* The unsigned number after "key": in a JSON text (the first occurrence). */
static uint64_t json_u64(const char *js, const char *key)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *p = strstr(js, pat);
	ck_assert_msg(p != NULL, "no %s in: %.300s", pat, js);
	p += strlen(pat);
	ck_assert_msg(*p >= '0' && *p <= '9', "%s is not a number in: %.300s", pat, js);
	return strtoull(p, NULL, 10);
}

/* The "id"s of `snapshots --json`, oldest first; returns how many (at most max). */
static size_t snapshot_ids(const tenv *e, char ids[][65], size_t max)
{
	char *js;
	size_t n = 0;
	out_ok(e, &js, "--json snapshots");
	for (const char *p = js; (p = strstr(p, "{\"id\":\"")) != NULL && n < max; n++) {
		p += 7;
		ck_assert_msg(strspn(p, "0123456789abcdef") == 64, "bad id in %.300s", js);
		memcpy(ids[n], p, 64);
		ids[n][64] = 0;
	}
	free(js);
	return n;
}

static void tenv_init(tenv *e, const char *name, const char *init_args)
{
	pf(e->dir, "%s/%s", g_base, name);
	ck_assert_int_eq(mkdir(e->dir, 0700), 0);
	setenv("CAIRN_PASSWORD", PASS, 1);
	unsetenv("CAIRN_PASSWORD_FILE");
	unsetenv("CAIRN_REPOSITORY");
	unsetenv("CAIRN_NEW_PASSWORD");
	unsetenv("CAIRN_NEW_PASSWORD_FILE");
	run_ok(e, "-q init --kdf-memory 1024 --kdf-time 1 %s", init_args);
}

static void tenv_done(tenv *e)
{
	tu_rmrf(e->dir);
}

/* dir/rel as a path. */
static const char *at_(char *buf, const tenv *e, const char *rel)
{
	pf(buf, "%s/%s", e->dir, rel);
	return buf;
}

static void fixture(const tenv *e, const char *rel, int big)
{
	char p[CAP];
	int rc = tu_sh("'%s' '%s' %s >>'%s/log' 2>&1", MKFIXTURE, at_(p, e, rel),
		       big ? "--big" : "", e->dir);
	if (rc)
		show_log(e);
	ck_assert_msg(rc == 0, "mkfixture.sh %s failed", rel);
}

/* treecmp a b must report identical trees. */
static void same_tree(const tenv *e, const char *a, const char *b)
{
	int rc = tu_sh("'%s' '%s' '%s' >'%s/treecmp.out' 2>&1", TREECMP_BIN, a, b, e->dir);
	if (rc)
		tu_sh("head -n 20 '%s/treecmp.out' >&2", e->dir);
	ck_assert_msg(rc == 0, "treecmp %s %s: exit %d", a, b, rc);
}

/* Restore snapshot @p spec into <dir>/<into> and compare its copy of @p src with @p ref. */
static void restore_same(const tenv *e, const char *spec, const char *into, const char *src,
			 const char *ref)
{
	char t[CAP], got[CAP];
	at_(t, e, into);
	run_ok(e, "-q restore %s --target '%s'", spec, t);
	pf(got, "%s%s", t, src); /* restored under TARGET/<absolute path> */
	same_tree(e, ref, got);
}


/* Regular files below @p dir (each name of a hard-linked inode counts). */
static uint64_t count_files(const char *dir)
{
	return tu_sh_u64("find '%s' -type f -printf x | wc -c", dir);
}

/* 1. Round trip of the hard fixture (3 GiB sparse file) ------------------- */

START_TEST(test_fidelity)
{
	tenv e;
	char src[CAP], *js;
	tenv_init(&e, "fidelity", "");
	fixture(&e, "src", 1);
	at_(src, &e, "src");
	out_ok(&e, &js, "--json backup '%s'", src);
	ck_assert_uint_eq(json_u64(js, "errors"), 0);
	ck_assert_uint_eq(json_u64(js, "files_new"), count_files(src));
	ck_assert_uint_ge(json_u64(js, "bytes_total"), 3ull << 30);
	/* holes are skipped, not read as zeros: only the data regions are read */
	ck_assert_uint_lt(json_u64(js, "bytes_read"), 64 * MiB);
	free(js);
	restore_same(&e, "latest", "restored", src, src);
	run_ok(&e, "-q check --read-data");
	run_ok(&e, "-q restore latest --verify-only");
	tenv_done(&e);
}
END_TEST

/* 2. A second backup of unchanged data reads nothing and adds ~nothing ------ */

START_TEST(test_unchanged)
{
	tenv e;
	char src[CAP], repo[CAP], *js;
	tenv_init(&e, "unchanged", "");
	fixture(&e, "src", 0);
	at_(src, &e, "src");
	at_(repo, &e, "repo");
	uint64_t nfiles = count_files(src);
	out_ok(&e, &js, "--json backup '%s'", src);
	ck_assert_uint_eq(json_u64(js, "files_new"), nfiles);
	free(js);
	uint64_t before = tu_sh_u64("du -sb '%s' | cut -f1", repo);

	out_ok(&e, &js, "--json backup '%s'", src);
	ck_assert_uint_eq(json_u64(js, "files_unchanged"), nfiles);
	ck_assert_uint_eq(json_u64(js, "files_new"), 0);
	ck_assert_uint_eq(json_u64(js, "files_changed"), 0);
	ck_assert_uint_eq(json_u64(js, "errors"), 0);
	/* no file content read: every file matched the parent snapshot by its metadata */
	ck_assert_uint_eq(json_u64(js, "bytes_read"), 0);
	free(js);
	uint64_t after = tu_sh_u64("du -sb '%s' | cut -f1", repo);
	ck_assert_uint_ge(after, before);
	ck_assert_msg((after - before) * 100 < before, "repository grew from %llu to %llu bytes",
		      (unsigned long long)before, (unsigned long long)after);
	char ids[4][65];
	ck_assert_uint_eq(snapshot_ids(&e, ids, 4), 2);
	restore_same(&e, ids[1], "restored", src, src);
	tenv_done(&e);
}
END_TEST

/* 2b. The walk on many threads: same trees as on one, every directory once -- */

/*
 * The tree id of directory @p path (absolute) in the newest snapshot: from the
 * root tree down, one `cat tree` per component. (Not the root's own id: the
 * directories above the test's, /tmp among them, change under parallel tests.)
 */
static void latest_tree(const tenv *e, const char *path, char tree[65])
{
	char *js;
	out_ok(e, &js, "--json snapshots");
	const char *p = NULL;
	for (const char *q = js; (q = strstr(q, "\"tree\":\"")) != NULL; q++)
		p = q + 8;
	ck_assert_msg(p && strspn(p, "0123456789abcdef") == 64, "no tree in %.300s", js);
	memcpy(tree, p, 64);
	tree[64] = 0;
	free(js);
	for (const char *c = path + 1; *c;) {
		size_t len = strcspn(c, "/");
		char want[CAP], *text;
		pf(want, "%.*s type=", (int)len, c);
		out_ok(e, &text, "cat tree %s", tree);
		const char *line = text;
		while (line && strncmp(line, want, strlen(want)))
			line = (line = strchr(line, '\n')) ? line + 1 : NULL;
		ck_assert_msg(line != NULL, "no %.*s in tree %s", (int)len, c, tree);
		const char *sub = strstr(line, "subtree=");
		ck_assert_msg(sub && strspn(sub + 8, "0123456789abcdef") == 64, "no subtree: %.200s",
			      line);
		memcpy(tree, sub + 8, 64);
		free(text);
		c += len;
		c += *c == '/';
	}
}

START_TEST(test_parallel_walk)
{
	tenv e;
	char src[CAP], *js, t1[65], t8[65], tf[65];
	tenv_init(&e, "pwalk", "");
	at_(src, &e, "src");
	/* 4 x 5 x 6 directories with files at every level, a 60-deep chain, empty dirs */
	ck_assert_int_eq(tu_sh("set -e; cd '%s/..' && mkdir src && cd src;"
			       "for a in 1 2 3 4; do for b in 1 2 3 4 5; do for c in 1 2 3 4 5 6; do"
			       "  mkdir -p d$a/e$b/f$c; echo $a$b$c > d$a/e$b/f$c/x;"
			       "  echo $b > d$a/e$b/y; done; done; echo $a > d$a/z; done;"
			       "d=.; for i in $(seq 60); do d=$d/deep$i; done; mkdir -p $d;"
			       "echo bottom > $d/file; mkdir empty1 empty2;"
			       /* symlinks with an atime older than their ctime: reading
				* them (the first backup does) moves it */
			       "for a in 1 2 3 4; do ln -s ../z d$a/e1/link; done;"
			       "touch -h -a -d 2020-01-01 d*/e1/link",
			       src),
			 0);
	/* the directories below src and those on the way from / to it (src included) */
	uint64_t ndirs = tu_sh_u64("find '%s' -mindepth 1 -type d | wc -l", src), ancestors = 0;
	for (const char *c = src; *c; c++)
		ancestors += *c == '/';
	ndirs += ancestors;
	uint64_t nfiles = count_files(src);
	out_ok(&e, &js, "--threads 1 --json backup '%s'", src);
	ck_assert_uint_eq(json_u64(js, "files_new"), nfiles);
	free(js);
	latest_tree(&e, src, t1);

	/* unchanged, on eight walkers: every file reused, every directory counted once */
	out_ok(&e, &js, "--threads 8 --json backup '%s'", src);
	ck_assert_uint_eq(json_u64(js, "files_unchanged"), nfiles);
	ck_assert_uint_eq(json_u64(js, "dirs"), ndirs);
	ck_assert_uint_eq(json_u64(js, "errors"), 0);
	/* no tree below src is new: at most those of the directories above it,
	 * which other tests and this one's cache change */
	ck_assert_uint_le(json_u64(js, "blobs_added"), ancestors);
	free(js);
	latest_tree(&e, src, t8);
	ck_assert_str_eq(t8, t1);

	/* everything read again, without the parent, still on eight: the same trees */
	out_ok(&e, &js, "--threads 8 --json backup --force '%s'", src);
	ck_assert_uint_eq(json_u64(js, "files_unchanged"), 0);
	ck_assert_uint_eq(json_u64(js, "dirs"), ndirs);
	free(js);
	latest_tree(&e, src, tf);
	ck_assert_str_eq(tf, t1);

	/* changes deep down and in many directories are all found */
	ck_assert_int_eq(tu_sh("cd '%s' && for a in 1 2 3 4; do echo changed >> d$a/e3/f5/x; done;"
			       "echo more >> $(find . -name file)",
			       src),
			 0);
	out_ok(&e, &js, "--threads 8 --json backup '%s'", src);
	ck_assert_uint_eq(json_u64(js, "files_changed"), 5);
	ck_assert_uint_eq(json_u64(js, "files_unchanged"), nfiles - 5);
	free(js);
	restore_same(&e, "latest", "restored", src, src);
	tenv_done(&e);
}
END_TEST

/* 3. Incremental: modify, add, delete; both snapshots restore as they were ---- */

START_TEST(test_incremental)
{
	tenv e;
	char src[CAP], orig[CAP], p[CAP], *js;
	tenv_init(&e, "incremental", "");
	fixture(&e, "src", 0);
	at_(src, &e, "src");
	at_(orig, &e, "orig");
	ck_assert_int_eq(tu_sh("cp -a --sparse=always '%s' '%s'", src, orig), 0);
	same_tree(&e, src, orig); /* the saved copy is exact, or the test means nothing */
	uint64_t nfiles = count_files(src);
	run_ok(&e, "-q backup '%s'", src);

	/* change 4 KiB in the middle of a 20 MiB file, append to another, add one, delete one */
	at_(p, &e, "src/data/r20971520");
	int fd = open(p, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	uint8_t blk[4096];
	tu_fill_random(blk, sizeof(blk), 42);
	ck_assert_int_eq(pwrite(fd, blk, sizeof(blk), 10 * MiB + 123), (ssize_t)sizeof(blk));
	close(fd);
	ck_assert_int_eq(tu_sh("printf 'appended\\n' >>'%s/src/data/text'", e.dir), 0);
	tu_write_random(at_(p, &e, "src/data/added"), 3 * MiB + 5, 7);
	ck_assert_int_eq(unlink(at_(p, &e, "src/many/f123")), 0);

	out_ok(&e, &js, "--json backup '%s'", src);
	ck_assert_uint_eq(json_u64(js, "files_new"), 1);
	ck_assert_uint_eq(json_u64(js, "files_changed"), 2);
	ck_assert_uint_eq(json_u64(js, "files_unchanged"), nfiles - 3);
	ck_assert_uint_eq(json_u64(js, "errors"), 0);
	/* only the changed and new files are read; the unchanged chunks are not stored again */
	ck_assert_uint_le(json_u64(js, "bytes_read"), 24 * MiB);
	ck_assert_uint_lt(json_u64(js, "bytes_added"), 14 * MiB);
	free(js);

	char ids[4][65], first[9];
	ck_assert_uint_eq(snapshot_ids(&e, ids, 4), 2);
	restore_same(&e, "latest", "latest", src, src);
	snprintf(first, sizeof(first), "%.8s", ids[0]);
	restore_same(&e, first, "first", src, orig);
	run_ok(&e, "-q check --read-data");
	tenv_done(&e);
}
END_TEST

/* 4. Partial restore (--include) and ls ------------------------------------- */

/* 1 if @p line is one of the lines of @p text. */
static int has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == 0))
			return 1;
	return 0;
}

static size_t count_lines(const char *text)
{
	size_t n = 0;
	for (; *text; text++)
		n += *text == '\n';
	return n;
}

START_TEST(test_partial_and_ls)
{
	tenv e;
	char src[CAP], p[CAP], q[CAP], rst[CAP], *out;
	tenv_init(&e, "partial", "");
	fixture(&e, "src", 0);
	at_(src, &e, "src");
	at_(rst, &e, "restored");
	run_ok(&e, "-q backup '%s'", src);

	/* a subdirectory (with odd names) and a single file; trailing slash and a relative form */
	run_ok(&e, "-q restore latest --target '%s' --include '%s/names/' --include '%s/data/text'",
	       rst, src, src + 1);
	pf(p, "%s/names", src);
	pf(q, "%s%s/names", rst, src);
	same_tree(&e, p, q);
	ck_assert_int_eq(tu_sh("cmp -s '%s/data/text' '%s%s/data/text'", src, rst, src), 0);
	/* the file keeps its metadata */
	ck_assert_int_eq(tu_sh("[ \"$(stat -c '%%a %%u %%g %%Y %%s' '%s/data/text')\" = "
			       "\"$(stat -c '%%a %%u %%g %%Y %%s' '%s%s/data/text')\" ]",
			       src, rst, src),
			 0);
	/* and nothing else is there: src, names/..., data, data/text */
	pf(q, "%s%s", rst, src);
	ck_assert_uint_eq(tu_sh_u64("find '%s' -printf x | wc -c", q),
			  tu_sh_u64("find '%s/names' -printf x | wc -c", src) + 3);

	/* ls of one directory: its entries, non-printable bytes and '\' escaped as \xNN */
	out_ok(&e, &out, "ls latest '%s/names'", src);
	const char *expect[] = {"", "/with spaces", "/new\\x0aline", "/tab\\x09here", "/a\\x5cb",
				"/dir\\x0awith newline", "/dir\\x0awith newline/inner", "/%s%n",
				"/ünïcödé", "/*?[glob]", "/trailing space "};
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		pf(p, "%s/names%s", src, expect[i]);
		ck_assert_msg(has_line(out, p), "ls lacks '%s'", p);
	}
	ck_assert_uint_eq(count_lines(out), tu_sh_u64("find '%s/names' -printf x | wc -c", src));
	ck_assert_ptr_null(strchr(out, '\t'));
	free(out);

	/* ls of the whole snapshot: every entry once, plus the directories above src */
	out_ok(&e, &out, "ls latest");
	uint64_t above = 0; /* "/a/b/src" has two: /a and /a/b */
	for (const char *s = src + 1; *s; s++)
		above += *s == '/';
	ck_assert_uint_eq(count_lines(out), tu_sh_u64("find '%s' -printf x | wc -c", src) + above);
	pf(p, "%s/deep/d01/d02", src);
	ck_assert(has_line(out, p));
	free(out);

	/* ls -l shows types, modes and symlink targets */
	out_ok(&e, &out, "ls -l latest '%s/symlinks/relative'", src);
	ck_assert_uint_eq(count_lines(out), 1);
	ck_assert_msg(out[0] == 'l' && strstr(out, "/symlinks/relative -> ../data/r4095\n"),
		      "ls -l: %s", out);
	free(out);
	out_ok(&e, &out, "ls -l latest '%s/modes/m04755'", src);
	ck_assert_msg(!strncmp(out, "-4755 ", 6), "ls -l: %s", out);
	free(out);
	tenv_done(&e);
}
END_TEST

/* 5. Retention: the policy function, then forget --keep-last --prune ---------- */

typedef struct snapdef {
	const char *client;
	const char *when; /* "YYYY-MM-DD HH:MM:SS", UTC */
	const char *tags; /* comma-separated, or NULL */
} snapdef;

static int64_t utc_ns(const char *when)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *end = strptime(when, "%Y-%m-%d %H:%M:%S", &tm);
	ck_assert_msg(end && !*end, "bad time '%s'", when);
	return (int64_t)timegm(&tm) * 1000000000;
}

/* Apply @p pol at @p now to the snapshots @p d (sorted by time); @p want is "0110..." */
static void expect_kept(const cairn_retention *pol, const snapdef *d, size_t n, const char *now,
			const char *want)
{
	cairn_snapshot *s = calloc(n, sizeof(*s));
	int *keep = malloc(n * sizeof(int));
	char got[64];
	ck_assert_uint_lt(n, sizeof(got));
	for (size_t i = 0; i < n; i++) {
		s[i].client = strdup(d[i].client);
		s[i].time_ns = utc_ns(d[i].when);
		snprintf(s[i].idhex, sizeof(s[i].idhex), "%064zu", i);
		s[i].tags = calloc(8, sizeof(char *));
		if (d[i].tags) {
			char *all = strdup(d[i].tags), *save = NULL;
			for (char *t = strtok_r(all, ",", &save); t && s[i].ntags < 8;
			     t = strtok_r(NULL, ",", &save))
				s[i].tags[s[i].ntags++] = strdup(t);
			free(all);
		}
		keep[i] = -1; /* every slot must be written */
	}
	cairn_retention_apply(pol, s, n, utc_ns(now), keep);
	for (size_t i = 0; i < n; i++)
		got[i] = keep[i] == 1 ? '1' : keep[i] == 0 ? '0' : '?';
	got[n] = 0;
	ck_assert_str_eq(got, want);
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < s[i].ntags; k++)
			free(s[i].tags[k]);
		free(s[i].tags);
		free(s[i].client);
	}
	free(s);
	free(keep);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

START_TEST(test_retention_policy)
{
	const char *now = "2024-06-15 12:00:00";
	setenv("TZ", "UTC", 1);
	tzset();

	/* keep-last, per client */
	static const snapdef last[] = {
	    {"alpha", "2024-06-01 00:00:00", NULL}, {"beta", "2024-06-01 01:00:00", NULL},
	    {"alpha", "2024-06-01 02:00:00", NULL}, {"alpha", "2024-06-01 03:00:00", NULL},
	    {"beta", "2024-06-01 04:00:00", NULL},  {"alpha", "2024-06-01 05:00:00", NULL}};
	cairn_retention pol = {.keep_last = 2};
	expect_kept(&pol, last, N(last), now, "010111");
	pol = (cairn_retention){.keep_last = 1};
	expect_kept(&pol, last, N(last), now, "000011");
	pol = (cairn_retention){.keep_last = 10};
	expect_kept(&pol, last, N(last), now, "111111");
	pol = (cairn_retention){0}; /* no rule keeps nothing */
	expect_kept(&pol, last, N(last), now, "000000");
	expect_kept(&pol, last, 0, now, "");

	/* keep-hourly: the newest of each of the 2 latest hours with a snapshot */
	static const snapdef hourly[] = {
	    {"a", "2024-06-01 10:05:00", NULL}, {"a", "2024-06-01 10:55:00", NULL},
	    {"a", "2024-06-01 11:00:00", NULL}, {"a", "2024-06-01 11:30:00", NULL},
	    {"a", "2024-06-01 13:00:00", NULL}};
	pol = (cairn_retention){.keep_hourly = 2};
	expect_kept(&pol, hourly, N(hourly), now, "00011");
	pol = (cairn_retention){.keep_hourly = 3};
	expect_kept(&pol, hourly, N(hourly), now, "01011");

	/* keep-daily: days without snapshots do not count */
	static const snapdef daily[] = {
	    {"a", "2024-03-01 09:00:00", NULL}, {"a", "2024-03-01 18:00:00", NULL},
	    {"a", "2024-03-02 10:00:00", NULL}, {"a", "2024-03-03 08:00:00", NULL},
	    {"a", "2024-03-03 23:59:59", NULL}, {"a", "2024-03-05 12:00:00", NULL}};
	pol = (cairn_retention){.keep_daily = 3};
	expect_kept(&pol, daily, N(daily), now, "001011");
	pol = (cairn_retention){.keep_daily = 4};
	expect_kept(&pol, daily, N(daily), now, "011011");
	pol = (cairn_retention){.keep_daily = 100};
	expect_kept(&pol, daily, N(daily), now, "011011");

	/* keep-weekly: ISO weeks from Monday, across a year boundary (2024-01-01 is a Monday) */
	static const snapdef weekly[] = {
	    {"a", "2023-12-31 12:00:00", NULL}, /* Sunday, 2023-W52 */
	    {"a", "2024-01-01 00:00:00", NULL}, /* Monday, 2024-W01 */
	    {"a", "2024-01-07 23:00:00", NULL}, /* Sunday, 2024-W01 */
	    {"a", "2024-01-08 00:00:00", NULL}, /* Monday, 2024-W02 */
	    {"a", "2024-01-10 12:00:00", NULL}, /* Wednesday, W02 */
	    {"a", "2024-01-22 08:00:00", NULL}}; /* Monday, W04 */
	pol = (cairn_retention){.keep_weekly = 3};
	expect_kept(&pol, weekly, N(weekly), now, "001011");
	pol = (cairn_retention){.keep_weekly = 4};
	expect_kept(&pol, weekly, N(weekly), now, "101011");

	/* keep-monthly */
	static const snapdef monthly[] = {
	    {"a", "2023-11-15 00:00:00", NULL}, {"a", "2023-12-01 00:00:00", NULL},
	    {"a", "2023-12-31 23:59:59", NULL}, {"a", "2024-01-01 00:00:00", NULL},
	    {"a", "2024-02-01 00:00:00", NULL}, {"a", "2024-02-29 12:00:00", NULL}};
	pol = (cairn_retention){.keep_monthly = 3};
	expect_kept(&pol, monthly, N(monthly), now, "001101");

	/* keep-yearly: 2020 and 2023 have no snapshot and do not count */
	static const snapdef yearly[] = {
	    {"a", "2019-06-01 00:00:00", NULL}, {"a", "2021-01-01 00:00:00", NULL},
	    {"a", "2021-12-31 00:00:00", NULL}, {"a", "2022-07-01 00:00:00", NULL},
	    {"a", "2024-01-01 00:00:00", NULL}};
	pol = (cairn_retention){.keep_yearly = 3};
	expect_kept(&pol, yearly, N(yearly), now, "00111");

	/* keep-within 3d of 2024-06-15 12:00 */
	static const snapdef within[] = {
	    {"a", "2024-06-01 00:00:00", NULL}, {"a", "2024-06-12 11:59:59", NULL},
	    {"a", "2024-06-12 12:00:01", NULL}, {"a", "2024-06-15 11:00:00", NULL}};
	pol = (cairn_retention){.keep_within_ns = 3 * 86400 * 1000000000ll};
	expect_kept(&pol, within, N(within), now, "0011");

	/* keep-tag, alone and with keep-last */
	static const snapdef tagged[] = {
	    {"a", "2024-06-01 00:00:00", "daily"}, {"a", "2024-06-02 00:00:00", "x,keep"},
	    {"a", "2024-06-03 00:00:00", NULL},    {"a", "2024-06-04 00:00:00", "other,monthly"},
	    {"a", "2024-06-05 00:00:00", NULL},    {"a", "2024-06-06 00:00:00", "keeper"}};
	static const char *const keep_tags[] = {"keep", "monthly"};
	pol = (cairn_retention){.keep_tags = keep_tags, .nkeep_tags = 2};
	expect_kept(&pol, tagged, N(tagged), now, "010100");
	pol = (cairn_retention){.keep_tags = keep_tags, .nkeep_tags = 1, .keep_last = 1};
	expect_kept(&pol, tagged, N(tagged), now, "010001");

	/* rules combined, each client on its own */
	static const snapdef both[] = {
	    {"alpha", "2024-03-01 10:00:00", NULL}, {"beta", "2024-03-01 11:00:00", NULL},
	    {"alpha", "2024-03-02 09:00:00", NULL}, {"alpha", "2024-03-02 15:00:00", NULL},
	    {"alpha", "2024-03-03 08:00:00", NULL}, {"beta", "2024-03-03 09:00:00", NULL},
	    {"beta", "2024-03-03 10:00:00", NULL}};
	pol = (cairn_retention){.keep_last = 1, .keep_daily = 2};
	expect_kept(&pol, both, N(both), now, "0101101");
	pol = (cairn_retention){.keep_daily = 1, .keep_monthly = 1, .keep_yearly = 5};
	expect_kept(&pol, both, N(both), now, "0000101");

	/* buckets are local time: in UTC+9 16:00 UTC is already the next day */
	static const snapdef tz[] = {{"a", "2024-03-01 10:00:00", NULL},
				     {"a", "2024-03-01 16:00:00", NULL}};
	pol = (cairn_retention){.keep_daily = 2};
	expect_kept(&pol, tz, N(tz), now, "01");
	setenv("TZ", "JST-9", 1);
	tzset();
	expect_kept(&pol, tz, N(tz), now, "11");
	setenv("TZ", "UTC", 1);
	tzset();
}
END_TEST

START_TEST(test_retention_cli)
{
	tenv e;
	char src[CAP], p[CAP], ids[5][65], left[8][65], *js;
	tenv_init(&e, "forget", "");
	at_(src, &e, "src");
	ck_assert_int_eq(mkdir(src, 0755), 0);
	tu_write_random(at_(p, &e, "src/shared"), 3 * MiB, 1);
	for (int i = 0; i < 5; i++) {
		/* data unique to each snapshot, and a small changing file */
		tu_write_random(at_(p, &e, "src/unique"), 2 * MiB + (size_t)i, 100 + (uint64_t)i);
		ck_assert_int_eq(tu_sh("echo %d >'%s/counter'", i, src), 0);
		out_ok(&e, &js, "--json backup '%s'", src);
		const char *id = strstr(js, "\"snapshot_id\":\"");
		ck_assert_ptr_nonnull(id);
		snprintf(ids[i], sizeof(ids[i]), "%.64s", id + 15);
		free(js);
		ck_assert_int_eq(tu_sh("cp -a '%s' '%s/copy%d'", src, e.dir, i), 0);
	}
	ck_assert_uint_eq(snapshot_ids(&e, left, 8), 5);
	out_ok(&e, &js, "--json stats");
	uint64_t packs0 = json_u64(js, "packs"), stored0 = json_u64(js, "stored_bytes");
	free(js);

	run_ok(&e, "-q forget --keep-last 2 --prune");
	ck_assert_uint_eq(snapshot_ids(&e, left, 8), 2);
	ck_assert_str_eq(left[0], ids[3]);
	ck_assert_str_eq(left[1], ids[4]);
	for (int i = 3; i < 5; i++) {
		char spec[16], into[16], ref[CAP];
		snprintf(spec, sizeof(spec), "%.10s", ids[i]);
		snprintf(into, sizeof(into), "restored%d", i);
		pf(ref, "%s/copy%d", e.dir, i);
		restore_same(&e, spec, into, src, ref);
	}
	run_ok(&e, "-q check --read-data");
	out_ok(&e, &js, "--json stats");
	uint64_t packs1 = json_u64(js, "packs"), stored1 = json_u64(js, "stored_bytes");
	ck_assert_uint_eq(json_u64(js, "snapshots"), 2);
	free(js);
	ck_assert_uint_lt(packs1, packs0);
	/* most of the three forgotten snapshots' unique 2 MiB (random, so incompressible) is
	 * gone: a pack with at most 20% unused is kept as it is, so up to ~1.5 MiB may stay */
	ck_assert_msg(stored1 + 4 * MiB <= stored0, "stored %llu -> %llu bytes",
		      (unsigned long long)stored0, (unsigned long long)stored1);
	tenv_done(&e);
}
END_TEST

/* 6. Prune repacks packs that hold used and unused blobs ----------------------- */

START_TEST(test_prune_repack)
{
	tenv e;
	char src[CAP], p[CAP], ref[CAP], ids[4][65], *js;
	/* small chunks and packs, so that most packs hold blobs of both kinds of files */
	tenv_init(&e, "repack", "--chunk-min 64K --chunk-avg 128K --chunk-max 256K --pack-size 1M");
	at_(src, &e, "src");
	at_(ref, &e, "ref");
	ck_assert_int_eq(mkdir(src, 0755), 0);
	/* 24 files of random data (a few chunks each); the even ones go away */
	for (int i = 0; i < 24; i++) {
		pf(p, "%s/f%02d", src, i);
		tu_write_random(p, 300000 + (size_t)i * 1000, 500 + (uint64_t)i);
	}
	run_ok(&e, "-q --threads 1 backup '%s'", src);
	for (int i = 0; i < 24; i += 2) {
		pf(p, "%s/f%02d", src, i);
		ck_assert_int_eq(unlink(p), 0);
	}
	run_ok(&e, "-q --threads 1 backup '%s'", src);
	ck_assert_int_eq(tu_sh("cp -a '%s' '%s'", src, ref), 0);
	ck_assert_uint_eq(snapshot_ids(&e, ids, 4), 2);
	run_ok(&e, "-q forget %.12s", ids[0]);
	ck_assert_uint_eq(snapshot_ids(&e, ids, 4), 1);
	out_ok(&e, &js, "--json stats");
	uint64_t stored0 = json_u64(js, "stored_bytes");
	free(js);

	out_ok(&e, &js, "--json prune");
	ck_assert_uint_ge(json_u64(js, "packs_repacked"), 1);
	ck_assert_uint_ge(json_u64(js, "blobs_unused"), 12);
	ck_assert_uint_gt(json_u64(js, "bytes_freed"), 0);
	free(js);
	run_ok(&e, "-q check --read-data");
	restore_same(&e, "latest", "restored", src, ref);
	out_ok(&e, &js, "--json stats");
	uint64_t stored1 = json_u64(js, "stored_bytes");
	free(js);
	/* twelve files of ~300 KB are gone */
	ck_assert_msg(stored1 + 3 * MiB < stored0, "stored %llu -> %llu bytes",
		      (unsigned long long)stored0, (unsigned long long)stored1);

	/* packs under the threshold (20% unused) were left as they are: a second prune has
	 * nothing to do; with threshold 0 it repacks those, and then no unused blob is left */
	out_ok(&e, &js, "--json prune");
	ck_assert_uint_eq(json_u64(js, "packs_deleted"), 0);
	ck_assert_uint_eq(json_u64(js, "packs_repacked"), 0);
	ck_assert_uint_eq(json_u64(js, "bytes_freed"), 0);
	free(js);
	run_ok(&e, "-q prune --repack-threshold 0");
	out_ok(&e, &js, "--json prune --dry-run");
	ck_assert_uint_eq(json_u64(js, "blobs_unused"), 0);
	ck_assert_uint_eq(json_u64(js, "packs_repacked"), 0);
	free(js);
	run_ok(&e, "-q check --read-data");
	restore_same(&e, "latest", "restored2", src, ref);
	tenv_done(&e);
}
END_TEST

/* 7. Concurrency ------------------------------------------------------------ */

START_TEST(test_concurrent_backups)
{
	tenv e;
	char d1[CAP], d2[CAP], p[CAP], ids[4][65];
	tenv_init(&e, "concurrent", "");
	fixture(&e, "d1", 0);
	at_(d1, &e, "d1");
	at_(d2, &e, "d2");
	ck_assert_int_eq(mkdir(d2, 0755), 0);
	/* content both backups store at the same time, and content of its own */
	ck_assert_int_eq(tu_sh("cp -a '%s/data/r20971520' '%s/shared'", d1, d2), 0);
	for (int i = 0; i < 8; i++) {
		pf(p, "%s/own%d", d2, i);
		tu_write_random(p, MiB + (size_t)i, 900 + (uint64_t)i);
	}
	char cmd1[CAP], cmd2[CAP];
	pf(cmd1, "'%s' -r '%s/repo' --cache-dir '%s/c1' -q backup '%s'",
		 CAIRN_BIN, e.dir, e.dir, d1);
	pf(cmd2, "'%s' -r '%s/repo' --cache-dir '%s/c2' -q backup '%s'",
		 CAIRN_BIN, e.dir, e.dir, d2);
	ck_assert_int_eq(tu_sh("(%s; echo $? >'%s/rc1') >>'%s/log' 2>&1 & "
			       "(%s; echo $? >'%s/rc2') >>'%s/log' 2>&1 & wait",
			       cmd1, e.dir, e.dir, cmd2, e.dir, e.dir),
			 0);
	ck_assert_uint_eq(tu_sh_u64("cat '%s/rc1'", e.dir), 0);
	ck_assert_uint_eq(tu_sh_u64("cat '%s/rc2'", e.dir), 0);
	ck_assert_uint_eq(snapshot_ids(&e, ids, 4), 2);
	char spec[CAP];
	pf(spec, "latest --path '%s'", d1);
	restore_same(&e, spec, "r1", d1, d1);
	pf(spec, "latest --path '%s'", d2);
	restore_same(&e, spec, "r2", d2, d2);
	run_ok(&e, "-q check --read-data");
	/* both may have stored the shared chunks; prune keeps one copy of each */
	run_ok(&e, "-q prune");
	run_ok(&e, "-q check --read-data");
	pf(spec, "latest --path '%s'", d1);
	restore_same(&e, spec, "r1b", d1, d1);
	pf(spec, "latest --path '%s'", d2);
	restore_same(&e, spec, "r2b", d2, d2);
	tenv_done(&e);
}
END_TEST

/*
 * Prune attempts while a backup runs must fail with exit code 11 (locked) and
 * delete nothing: the backup's packs are not indexed or referenced yet, so a
 * prune that ran anyway would adopt them as orphans and delete them as unused.
 * Prune starts only once the backup holds its lock (it has stored a pack),
 * so that the backup itself cannot be the one refused.
 */
static const char race_sh[] =
    "B=$1 R=$2 D=$3\n"
    "( \"$B\" -r \"$R\" --cache-dir \"$D/cache\" -q --threads 1 backup \"$D/big\"\n"
    "  echo $? >\"$D/backup.rc\" ) >>\"$D/log\" 2>&1 &\n"
    "until [ -e \"$D/backup.rc\" ] ||\n"
    "      [ -n \"$(find \"$R/data\" -type f 2>/dev/null | head -n 1)\" ]; do\n"
    "	sleep 0.01\n"
    "done\n"
    "while [ ! -e \"$D/backup.rc\" ]; do\n"
    "	\"$B\" -r \"$R\" --cache-dir \"$D/cache\" -q prune >>\"$D/log\" 2>&1\n"
    "	echo $? >>\"$D/prune.codes\"\n"
    "done\n"
    "wait\n";

START_TEST(test_prune_during_backup)
{
	tenv e;
	char big[CAP], p[CAP];
	tenv_init(&e, "prune-race", "");
	at_(big, &e, "big");
	ck_assert_int_eq(mkdir(big, 0755), 0);
	for (int i = 0; i < 6; i++) {
		pf(p, "%s/r%d", big, i);
		tu_write_random(p, 50 * MiB, 300 + (uint64_t)i);
	}
	FILE *f = fopen(at_(p, &e, "race.sh"), "w");
	ck_assert_ptr_nonnull(f);
	fputs(race_sh, f);
	fclose(f);
	int rc = tu_sh("sh '%s/race.sh' '%s' '%s/repo' '%s'", e.dir, CAIRN_BIN, e.dir, e.dir);
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(tu_sh_u64("cat '%s/backup.rc'", e.dir), 0);

	f = fopen(at_(p, &e, "prune.codes"), "r");
	ck_assert_msg(f != NULL, "the backup ended before any prune was tried");
	int code, last = -1, n = 0, locked = 0;
	while (fscanf(f, "%d", &code) == 1) {
		/*
		 * Refused (11) while the backup holds its lock, then only successes:
		 * prunes that began after the backup released its lock, before its
		 * shell recorded the exit code (a loaded machine fits more than one
		 * in that window). A refusal after a success, or any other code,
		 * means the lock did not keep prune out.
		 */
		ck_assert_msg(code == 11 || code == 0, "a prune exited %d", code);
		ck_assert_msg(!(last == 0 && code == 11),
			      "a prune ran while the backup still held its lock");
		locked += code == 11;
		last = code;
		n++;
	}
	fclose(f);
	ck_assert_msg(locked >= 1, "no prune was refused (%d tried)", n);
	/* refused prunes leave no lock behind, and a prune now runs */
	ck_assert_uint_eq(tu_sh_u64("find '%s/repo/locks' -type f | wc -l", e.dir), 0);
	run_ok(&e, "-q prune");
	run_ok(&e, "-q check --read-data");
	restore_same(&e, "latest", "restored", big, big);
	tenv_done(&e);
}
END_TEST

static void count_warning(void *payload, const char *msg)
{
	(void)msg;
	++*(int *)payload;
}

/*
 * A process that keeps the repository open (as a daemon does) backs up after
 * a prune by someone else: its in-memory index, loaded before the prune, still
 * names the packs the prune deleted. Deduplicating against it would make a
 * snapshot whose data is gone.
 */
START_TEST(test_backup_after_foreign_prune)
{
	tenv e;
	char src[CAP], p[CAP], ids[4][65], *js;
	tenv_init(&e, "stale-index", "");
	at_(src, &e, "src");
	ck_assert_int_eq(mkdir(src, 0755), 0);
	tu_write_random(at_(p, &e, "src/data"), 4 * MiB, 77);
	run_ok(&e, "-q backup '%s'", src);
	ck_assert_uint_eq(snapshot_ids(&e, ids, 4), 1);
	run_ok(&e, "-q forget %s", ids[0]);

	cairn_target *t;
	cairn_repo *r;
	cairn_open_opts oo = CAIRN_OPEN_OPTS_INIT;
	oo.cache_dir = "";
	ck_assert_int_eq(cairn_target_open(&t, at_(p, &e, "repo")), 0);
	ck_assert_int_eq(cairn_repo_open(&r, t, PASS, &oo), 0);
	int warnings = 0;
	cairn_repo_set_warn(r, count_warning, &warnings);

	out_ok(&e, &js, "--json prune");
	ck_assert_uint_ge(json_u64(js, "packs_deleted"), 1);
	free(js);

	const char *paths[] = {src};
	cairn_backup_opts bo = CAIRN_BACKUP_OPTS_INIT;
	bo.paths = paths;
	bo.npaths = 1;
	bo.client = "daemon";
	cairn_snapshot s;
	ck_assert_int_eq(cairn_backup(r, &bo, &s, count_warning, &warnings), 0);
	/* the data is stored again */
	ck_assert_uint_ge(s.summary.bytes_added, 4 * MiB);
	cairn_snapshot_free(&s);
	cairn_repo_close(r);
	run_ok(&e, "-q check --read-data");
	restore_same(&e, "latest", "restored", src, src);
	tenv_done(&e);
}
END_TEST

/* 8. Keys -------------------------------------------------------------------- */

/* The ids of `key list --json`; *current: the index of the key this session used. */
static size_t key_ids(const tenv *e, char ids[][17], size_t max, int *current)
{
	char *js;
	size_t n = 0;
	*current = -1;
	out_ok(e, &js, "--json key list");
	for (const char *p = js; (p = strstr(p, "{\"id\":\"")) != NULL && n < max; n++) {
		p += 7;
		ck_assert_msg(strspn(p, "0123456789abcdef") == 16 && p[16] == '"', "key list: %s",
			      js);
		memcpy(ids[n], p, 16);
		ids[n][16] = 0;
		if (!strncmp(p + 17, ",\"current\":true", 15))
			*current = (int)n;
	}
	ck_assert_msg(*current >= 0, "no current key in: %s", js);
	free(js);
	return n;
}

static size_t find_key(char ids[][17], size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(ids[i], id))
			return i;
	return n;
}

START_TEST(test_keys)
{
	tenv e;
	char src[CAP], p[CAP], ids[4][17], first[17], second[17], third[17], *out;
	int cur;
	tenv_init(&e, "keys", "");
	at_(src, &e, "src");
	ck_assert_int_eq(mkdir(src, 0755), 0);
	tu_write_random(at_(p, &e, "src/f"), 100000, 5);
	run_ok(&e, "-q backup '%s'", src);
	ck_assert_uint_eq(key_ids(&e, ids, 4, &cur), 1);
	ck_assert_int_eq(cur, 0);
	memcpy(first, ids[0], 17);

	/* add: both passphrases open the repository, each marks its own key current */
	setenv("CAIRN_NEW_PASSWORD", "second secret", 1);
	out_ok(&e, &out, "key add");
	ck_assert_msg(sscanf(out, "added key %16[0-9a-f]", second) == 1, "key add: %s", out);
	free(out);
	ck_assert_uint_eq(key_ids(&e, ids, 4, &cur), 2);
	ck_assert_str_eq(ids[cur], first);
	ck_assert_uint_lt(find_key(ids, 2, second), 2);
	setenv("CAIRN_PASSWORD", "second secret", 1);
	ck_assert_uint_eq(key_ids(&e, ids, 4, &cur), 2);
	ck_assert_str_eq(ids[cur], second);
	ck_assert_int_eq(cairn(&e, "-q snapshots"), 0);

	/* passwd replaces the key used: the old passphrase fails with 12, the new one works */
	setenv("CAIRN_PASSWORD", PASS, 1);
	setenv("CAIRN_NEW_PASSWORD", "third secret", 1);
	run_ok(&e, "-q key passwd");
	ck_assert_int_eq(cairn(&e, "-q snapshots"), 12);
	setenv("CAIRN_PASSWORD", "third secret", 1);
	ck_assert_uint_eq(key_ids(&e, ids, 4, &cur), 2);
	memcpy(third, ids[cur], 17);
	ck_assert_uint_eq(find_key(ids, 2, first), 2);
	ck_assert_uint_lt(find_key(ids, 2, second), 2);
	ck_assert_str_ne(third, second);
	restore_same(&e, "latest", "restored", src, src);

	/* the key in use cannot be removed (and that is not "locked", exit 11) */
	ck_assert_int_eq(cairn(&e, "-q key remove %s", third), 1);
	ck_assert_uint_eq(key_ids(&e, ids, 4, &cur), 2);
	ck_assert_str_eq(ids[cur], third);
	/* another one can */
	run_ok(&e, "-q key remove %s", second);
	ck_assert_uint_eq(key_ids(&e, ids, 4, &cur), 1);
	ck_assert_str_eq(ids[0], third);
	setenv("CAIRN_PASSWORD", "second secret", 1);
	ck_assert_int_eq(cairn(&e, "-q snapshots"), 12);
	setenv("CAIRN_PASSWORD", "third secret", 1);
	ck_assert_int_eq(cairn(&e, "-q key remove nothex"), 2);
	run_ok(&e, "-q check --read-data");
	tenv_done(&e);
}
END_TEST

/* The Argon2id cost `key list --json` shows for key @p id. */
static void key_cost(const tenv *e, const char *id, unsigned t, unsigned m_kib)
{
	char *js, pat[64];
	out_ok(e, &js, "--json key list");
	snprintf(pat, sizeof(pat), "{\"id\":\"%s\"", id);
	const char *p = strstr(js, pat);
	ck_assert_msg(p != NULL, "no key %s in: %s", id, js);
	ck_assert_msg(strstr(p, "\"algorithm\":\"argon2id\"") != NULL, "%s", js);
	ck_assert_uint_eq(json_u64(p, "time"), t);
	ck_assert_uint_eq(json_u64(p, "memory_kib"), m_kib);
	ck_assert_uint_eq(json_u64(p, "lanes"), 2);
	free(js);
}

START_TEST(test_key_cost)
{
	tenv e;
	char ids[4][17], first[17], added[17], *out;
	int cur;
	/* a repository made with the defaults: Argon2id 8 passes over 32 MiB in 2 lanes */
	pf(e.dir, "%s/%s", g_base, "keycost");
	ck_assert_int_eq(mkdir(e.dir, 0700), 0);
	setenv("CAIRN_PASSWORD", PASS, 1);
	unsetenv("CAIRN_NEW_PASSWORD");
	run_ok(&e, "-q init");
	ck_assert_uint_eq(key_ids(&e, ids, 4, &cur), 1);
	memcpy(first, ids[0], 17);
	key_cost(&e, first, 8, 32768);
	out_ok(&e, &out, "key list");
	ck_assert_msg(strstr(out, "argon2id m=32768 KiB t=8 p=2") != NULL, "key list: %s", out);
	free(out);
	ck_assert_int_ne(tu_sh("grep -q 'warning: Argon2id' '%s/log'", e.dir), 0);

	/* add: the current key's cost unless told; a told cost is the new key's only */
	setenv("CAIRN_NEW_PASSWORD", "cheap", 1);
	out_ok(&e, &out, "key add --kdf-memory 1024 --kdf-time 2");
	ck_assert_msg(sscanf(out, "added key %16[0-9a-f]", added) == 1, "key add: %s", out);
	free(out);
	key_cost(&e, added, 2, 1024);
	key_cost(&e, first, 8, 32768);
	/* below OWASP's least (19 MiB x 2): said, not refused */
	ck_assert_int_eq(tu_sh("grep -q 'warning: Argon2id at 1024 KiB x 2 passes is below' "
			       "'%s/log'", e.dir), 0);
	/* a size with a unit is bytes, in whole KiB */
	out_ok(&e, &out, "key add --kdf-memory 20M --kdf-time 2");
	char sized[17];
	ck_assert_msg(sscanf(out, "added key %16[0-9a-f]", sized) == 1, "key add: %s", out);
	free(out);
	key_cost(&e, sized, 2, 20480);
	run_ok(&e, "-q key remove %s", sized);
	setenv("CAIRN_PASSWORD", "cheap", 1);
	ck_assert_int_eq(cairn(&e, "-q snapshots"), 0);

	/* passwd from the cheap key, raising only the passes: memory stays the key's 1024 */
	setenv("CAIRN_NEW_PASSWORD", "dearer", 1);
	run_ok(&e, "-q key passwd --kdf-time 4");
	setenv("CAIRN_PASSWORD", "dearer", 1);
	ck_assert_uint_eq(key_ids(&e, ids, 4, &cur), 2);
	ck_assert_uint_eq(find_key(ids, 2, added), 2);
	key_cost(&e, ids[cur], 4, 1024);

	/* bad costs: refused with the range named, no key written; bad command lines: usage */
	ck_assert_int_eq(cairn(&e, "-q key add --kdf-memory 8"), 2);
	ck_assert_int_eq(cairn(&e, "-q key add --kdf-time 65"), 2);
	ck_assert_int_eq(tu_sh("grep -q 'key derivation cost out of range: memory 8 KiB (16..' "
			       "'%s/log'", e.dir), 0);
	ck_assert_int_eq(cairn(&e, "-q key add --kdf-time 0"), 2);
	ck_assert_int_eq(cairn(&e, "-q key add --kdf-memory lots"), 2);
	ck_assert_int_eq(cairn(&e, "-q key add --kdf-memory 1000B"), 2); /* not whole KiB */
	ck_assert_int_eq(cairn(&e, "-q key add --kdf-time 8K"), 2);
	ck_assert_int_eq(cairn(&e, "-q key list --kdf-time 2"), 2);
	ck_assert_int_eq(cairn(&e, "-q key add stray"), 2);
	ck_assert_uint_eq(key_ids(&e, ids, 4, &cur), 2);
	tenv_done(&e);
}
END_TEST

static Suite *cli_roundtrip_suite(void)
{
	Suite *s = suite_create("cli_roundtrip");
	TCase *tc = tcase_create("roundtrip");
	tcase_set_timeout(tc, 300);
	tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
	tcase_add_test(tc, test_fidelity);
	tcase_add_test(tc, test_key_cost);
	tcase_add_test(tc, test_unchanged);
	tcase_add_test(tc, test_parallel_walk);
	tcase_add_test(tc, test_incremental);
	tcase_add_test(tc, test_partial_and_ls);
	tcase_add_test(tc, test_retention_policy);
	tcase_add_test(tc, test_retention_cli);
	tcase_add_test(tc, test_prune_repack);
	tcase_add_test(tc, test_concurrent_backups);
	tcase_add_test(tc, test_prune_during_backup);
	tcase_add_test(tc, test_backup_after_foreign_prune);
	tcase_add_test(tc, test_keys);
	suite_add_tcase(s, tc);
	return s;
}

#include "tests/support/check_main.h"
CAIRN_CHECK_MAIN(cli_roundtrip_suite)
