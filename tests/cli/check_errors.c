/*
 * check_errors.c - the cairn command line under bad input and damaged or
 * unusable repositories. Every case asserts the exit code, that stderr names
 * what is wrong (in one line where there is one cause), that nothing crashed
 * (exit status below 128, no sanitizer report), and that nothing stored
 * before the fault is lost: the earlier snapshot still restores byte for
 * byte once the fault is gone, or the snapshots the fault does not touch do.
 *
 * The tests drive the real binary (CAIRN_BIN) with a cheap KDF and
 * --no-cache, so no cached copy hides damage. The read-only, full-disk and
 * one-file-system cases mount small tmpfs file systems (the suite runs as root, which
 * bypasses permission bits); where mounting is not permitted they print a
 * note and pass. Checks are recorded (EXPECT) and asserted at the end of a
 * test, after its mounts are gone; what a killed run left behind (mounts,
 * directories named after its runner's pid) is swept when the suite starts.
 */
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/engine.h"
#include "targets/target.h"
#include "tests/support/check_main.h"
#include "tests/support/testutil.h"

#ifndef CAIRN_BIN
#error "CAIRN_BIN (the path of the cairn binary) must be defined by the build"
#endif
#ifdef TREECMP_BIN
#define TREE_CMP "'" TREECMP_BIN "'"
#else
#define TREE_CMP "diff -r"
#endif

#define MIB (1024 * 1024)
#define TAG "clierr"
#define KDF "--kdf-memory 1024 --kdf-time 1"
#define G "-r repo --no-cache" /* global options for the repository of most tests */

static pid_t runner; /* the suite runner's pid: names our directories, for the sweep */
static char *W;      /* this test's directory (the commands run in it) */
static char *out_s, *err_s;
static int rt_counter;

/* --- files ----------------------------------------------------------------------------- */

/* A path below W (or @p rel itself if absolute), in a static rotating buffer. */
static const char *at(const char *rel)
{
	static char bufs[4][PATH_MAX];
	static int k;
	char *b = bufs[k++ & 3];
	int n = snprintf(b, PATH_MAX, "%s%s%s", rel[0] == '/' ? "" : W, rel[0] == '/' ? "" : "/",
			 rel);
	ck_assert_msg(n > 0 && n < PATH_MAX, "path too long: %s", rel);
	return b;
}

static void mkfile(const char *rel, size_t len, uint64_t seed)
{
	tu_write_random(at(rel), len, seed);
}



static int nlines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* Number of regular files below @p rel (temp files included). */
static int count_files(const char *rel)
{
	char cmd[PATH_MAX + 64];
	snprintf(cmd, sizeof(cmd), "find '%s' -type f 2>/dev/null | wc -l", at(rel));
	FILE *p = popen(cmd, "r");
	int n = -1;
	if (p) {
		if (fscanf(p, "%d", &n) != 1)
			n = -1;
		pclose(p);
	}
	return n;
}

/* Flip one byte of @p rel at @p off. */
static void flip_byte(const char *rel, off_t off)
{
	int fd = open(at(rel), O_RDWR);
	ck_assert_msg(fd >= 0, "open %s", at(rel));
	uint8_t b;
	ck_assert(pread(fd, &b, 1, off) == 1);
	b ^= 0x5a;
	ck_assert(pwrite(fd, &b, 1, off) == 1);
	close(fd);
}

static off_t file_size(const char *rel)
{
	struct stat st;
	return stat(at(rel), &st) == 0 ? st.st_size : -1;
}

/* --- running cairn ----------------------------------------------------------------------- */

/*
 * Run "[env] cairn ARGS" in W, keeping stdout and stderr in out_s and err_s.
 * Returns the exit status (128+N when killed by signal N). A crash or a
 * sanitizer report is recorded as a failure whatever the caller expects.
 */
static int run(const char *env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run(const char *env, const char *fmt, ...)
{
	char args[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	int code = tu_sh("cd '%s' && %s '%s' %s >.out 2>.err </dev/null", W, env ? env : "",
			 CAIRN_BIN, args);
	free(out_s);
	free(err_s);
	out_s = tu_slurp(at(".out"));
	err_s = tu_slurp(at(".err"));
	EXPECT(code >= 0 && code < 128, "cairn %s: died (status %d); stderr:\n%s", args, code,
	       err_s);
	EXPECT(!strstr(err_s, "Sanitizer") && !strstr(err_s, "runtime error"),
	       "cairn %s: sanitizer report:\n%s", args, err_s);
	return code;
}

/* Expect exit code @p want and a stderr of exactly one line holding @p needle. */
#define EXPECT_ONE_LINE(code, want, needle, what)                                                  \
	do {                                                                                       \
		int c_ = (code);                                                                   \
		EXPECT(c_ == (want), "%s: exit %d, want %d; stderr:\n%s", what, c_, want, err_s);  \
		EXPECT(strcasestr(err_s, needle) != NULL, "%s: stderr lacks '%s':\n%s", what,      \
		       needle, err_s);                                                             \
		EXPECT(nlines(err_s) == 1, "%s: stderr is not one line:\n%s", what, err_s);        \
	} while (0)

/* The snapshot id of the last `backup --json`. */
static void last_snapshot(char id[65])
{
	const char *p = strstr(out_s, "\"snapshot_id\":\"");
	id[0] = 0;
	if (p)
		snprintf(id, 65, "%.64s", p + strlen("\"snapshot_id\":\""));
	EXPECT(strlen(id) == 64, "no snapshot id in: %s", out_s);
}

/* Back up @p paths with global options @p g; expect success; the new id in @p id. */
static void backup_ok(int line, const char *g, const char *paths, char id[65])
{
	int code = run(NULL, "%s --json backup %s", g, paths);
	if (code != 0)
		tu_expect_fail(line, "backup", "backup %s: exit %d; stderr:\n%s", paths, code, err_s);
	last_snapshot(id);
}

static int snapshot_count(const char *g)
{
	int code = run(NULL, "%s --json snapshots", g);
	EXPECT(code == 0, "snapshots: exit %d: %s", code, err_s);
	int n = 0;
	for (const char *p = out_s; (p = strstr(p, "\"short_id\"")); p++)
		n++;
	return n;
}

/*
 * Restore snapshot @p snap with global options @p g and compare the restored
 * copy of @p src (relative to W) with @p src itself.
 */
static void expect_restores(int line, const char *g, const char *snap, const char *src)
{
	char tgt[32];
	snprintf(tgt, sizeof(tgt), "rt%d", ++rt_counter);
	int code = run(NULL, "%s restore %s --target %s", g, snap, tgt);
	if (code != 0) {
		tu_expect_fail(line, "restore", "restore %.12s: exit %d; stderr:\n%s", snap, code,
			    err_s);
		return;
	}
	if (tu_sh("cd '%s' && " TREE_CMP " '%s' '%s%s/%s' >.cmp 2>&1", W, src, tgt, W, src)) {
		char *c = tu_slurp(at(".cmp"));
		tu_expect_fail(line, "restored copy", "%s from %.12s differs:\n%.2000s", src, snap, c);
		free(c);
	}
	tu_rmrf(at(tgt));
}
#define EXPECT_RESTORES(g, snap, src) expect_restores(__LINE__, g, snap, src)

/* --- mounts and the sweep ------------------------------------------------------------------ */

static int mount_tmpfs(const char *rel, const char *size)
{
	tu_sh("mkdir -p '%s'", at(rel));
	if (tu_sh("mount -t tmpfs -o size=%s,mode=0755 tmpfs '%s' 2>/dev/null", size, at(rel))) {
		printf("note: cannot mount a tmpfs at %s (not permitted?): test skipped\n",
		       at(rel));
		return -1;
	}
	return 0;
}

static void umount_tmpfs(const char *rel)
{
	tu_sh("umount '%s' 2>/dev/null || umount -l '%s' 2>/dev/null", at(rel), at(rel));
}

/* The runner pid in a path under our prefix, or 0. */
static pid_t owner_of(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);
	if (strncmp(path, prefix, n) != 0)
		return 0;
	return (pid_t)strtol(path + n, NULL, 10);
}

/*
 * Unmount and remove what runs of this suite left behind: with @p own, this
 * run's; else those of runners that no longer exist.
 */
static void sweep(int own)
{
	const char *tmp = getenv("TMPDIR");
	char prefix[PATH_MAX], line[4096], mp[4096];
	snprintf(prefix, sizeof(prefix), "%s/cairn-" TAG "-", tmp && *tmp ? tmp : "/tmp");
	char *mounts[64];
	int nm = 0;
	FILE *f = fopen("/proc/self/mounts", "r");
	while (f && fgets(line, sizeof(line), f) && nm < 64) {
		if (sscanf(line, "%*s %4095s", mp) != 1)
			continue;
		pid_t p = owner_of(mp, prefix);
		if (p > 0 && (own ? p == runner : kill(p, 0) < 0 && errno == ESRCH))
			mounts[nm++] = strdup(mp);
	}
	if (f)
		fclose(f);
	while (nm-- > 0) { /* the newest mount first */
		tu_sh("umount '%s' 2>/dev/null || umount -l '%s' 2>/dev/null", mounts[nm],
		      mounts[nm]);
		free(mounts[nm]);
	}
	glob_t g;
	char pat[PATH_MAX + 2];
	snprintf(pat, sizeof(pat), "%s*", prefix);
	if (glob(pat, 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc; i++) {
			pid_t p = owner_of(g.gl_pathv[i], prefix);
			if (p > 0 && (own ? p == runner : kill(p, 0) < 0 && errno == ESRCH))
				tu_rmrf(g.gl_pathv[i]);
		}
		globfree(&g);
	}
}

static void suite_setup(void)
{
	runner = getpid();
	sweep(0);
}

static void suite_teardown(void)
{
	sweep(1);
}

static void setup(void)
{
	char tag[64];
	snprintf(tag, sizeof(tag), TAG "-%d", (int)runner);
	W = tu_mkdtemp(tag);
	setenv("CAIRN_PASSWORD", "correct horse", 1);
	unsetenv("CAIRN_PASSWORD_FILE");
	unsetenv("CAIRN_REPOSITORY");
	/* nothing escapes W, even without --no-cache */
	setenv("XDG_CACHE_HOME", at("xdg-cache"), 1);
	tu_expect_reset();
}

static void teardown(void)
{
	umount_tmpfs("mnt");
	tu_rmrf(W);
	free(W);
	W = NULL;
	free(out_s);
	free(err_s);
	out_s = err_s = NULL;
}

/* --- the cases ------------------------------------------------------------------------------- */

/* A repository "repo" with one snapshot of "src" (two files); its id in @p id. */
static void repo_with_snapshot(char id[65])
{
	mkfile("src/a", 3 * MIB + 17, 1);
	mkfile("src/sub/b", 1000, 2);
	int code = run(NULL, "-r repo init " KDF);
	EXPECT(code == 0, "init: exit %d: %s", code, err_s);
	backup_ok(__LINE__, G, "src", id);
	tu_expect_done();
}

START_TEST(test_wrong_passphrase)
{
	char id[65];
	repo_with_snapshot(id);
	static const char *const cmds[] = {
	    "snapshots", "check",    "ls latest", "backup src", "prune", "forget --keep-last 1",
	    "stats",     "key list", "restore latest --target rt-bad"};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		int code = run("CAIRN_PASSWORD=wrong", G " %s", cmds[i]);
		EXPECT_ONE_LINE(code, 12, "wrong passphrase", cmds[i]);
	}
	EXPECT(access(at("rt-bad"), F_OK) != 0, "restore created its target before opening");
	/* the same through a password file */
	FILE *f = fopen(at("pw"), "w");
	fputs("not it\n", f);
	fclose(f);
	EXPECT_ONE_LINE(run("CAIRN_PASSWORD=", G " --password-file pw snapshots"), 12,
			"wrong passphrase", "--password-file");
	EXPECT_ONE_LINE(run(NULL, G " --password-file no-such-file snapshots"), 2, "no-such-file",
			"missing password file");
	/* nothing changed: one snapshot, no lock left, and it restores */
	EXPECT(snapshot_count(G) == 1, "snapshots changed");
	EXPECT(count_files("repo/locks") == 0, "a lock was left behind");
	EXPECT_RESTORES(G, id, "src");
	tu_expect_done();
}
END_TEST

START_TEST(test_missing_repository)
{
	mkfile("src/a", 1000, 3);
	static const char *const cmds[] = {"snapshots", "check", "backup src", "prune",
					   "restore latest --target rt"};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		EXPECT_ONE_LINE(run(NULL, "-r nowhere --no-cache %s", cmds[i]), 10, "no repository",
				cmds[i]);
		EXPECT(access(at("nowhere"), F_OK) != 0, "%s created the repository directory",
		       cmds[i]);
	}
	tu_sh("mkdir '%s'", at("empty"));
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		EXPECT_ONE_LINE(run(NULL, "-r empty --no-cache %s", cmds[i]), 10, "no repository",
				cmds[i]);
		EXPECT(tu_sh("[ -z \"$(ls -A '%s')\" ]", at("empty")) == 0,
		       "%s wrote into an empty directory", cmds[i]);
	}
	EXPECT_ONE_LINE(run("CAIRN_REPOSITORY=empty", "--no-cache snapshots"), 10, "no repository",
			"$CAIRN_REPOSITORY");
	EXPECT(access(at("rt"), F_OK) != 0, "restore created its target");
	tu_expect_done();
}
END_TEST

START_TEST(test_init_twice)
{
	char id[65];
	repo_with_snapshot(id);
	const char *sum = "cd repo && find . -type f | sort | xargs sha256sum";
	tu_sh("cd '%s' && (%s) >sum1", W, sum);
	EXPECT_ONE_LINE(run(NULL, "-r repo init " KDF), 1, "already exists", "init again");
	EXPECT_ONE_LINE(run("CAIRN_PASSWORD=another", "-r repo init"), 1, "already exists",
			"init again, another passphrase");
	tu_sh("cd '%s' && (%s) >sum2", W, sum);
	EXPECT(tu_sh("cd '%s' && cmp -s sum1 sum2", W) == 0, "init touched the repository");
	/* the second passphrase was not added as a key */
	EXPECT(run("CAIRN_PASSWORD=another", G " snapshots") == 12, "the new passphrase opens it");
	EXPECT_RESTORES(G, id, "src");
	tu_expect_done();
}
END_TEST

START_TEST(test_corrupt_pack)
{
	char id1[65], id2[65];
	mkfile("src1/a", 3 * MIB, 11);
	mkfile("src1/b", MIB + 5, 12);
	mkfile("src2/c", 4 * MIB, 21);
	mkfile("src2/d", 200000, 22);
	EXPECT(run(NULL, "-r repo init " KDF) == 0, "init: %s", err_s);
	backup_ok(__LINE__, G, "src1", id1);
	tu_sh("cd '%s' && find repo/data -type f | sort >packs1", W);
	backup_ok(__LINE__, G, "src2", id2);
	tu_sh("cd '%s' && find repo/data -type f | sort >packs2", W);
	/* the largest pack the second backup wrote holds data of src2 only */
	tu_sh("cd '%s' && comm -13 packs1 packs2 | xargs ls -S | head -n 1 >victim", W);
	char *victim = tu_slurp(at("victim"));
	victim[strcspn(victim, "\n")] = 0;
	tu_expect_done();
	ck_assert_msg(!strncmp(victim, "repo/data/", 10), "no new pack: '%s'", victim);
	const char *pack = victim + strlen("repo/");
	flip_byte(victim, file_size(victim) / 2);

	int code = run(NULL, G " restore %s --target rt-bad", id2);
	EXPECT(code == 1, "restore of the damaged snapshot: exit %d", code);
	EXPECT(strstr(err_s, pack) && strstr(err_s, "/src2/"),
	       "restore does not name the pack %s and the file:\n%s", pack, err_s);
	code = run(NULL, G " restore %s --verify-only", id2);
	EXPECT(code == 1 && strstr(err_s, pack), "verify-only: exit %d:\n%s", code, err_s);
	code = run(NULL, G " check --read-data");
	EXPECT(code == 1 && strstr(err_s, pack), "check --read-data: exit %d:\n%s", code, err_s);
	/* the structure is intact: only reading the data shows the damage */
	code = run(NULL, G " check");
	EXPECT(code == 0, "check: exit %d:\n%s", code, err_s);
	/* the other snapshot does not use that pack */
	EXPECT_RESTORES(G, id1, "src1");
	tu_expect_done();
	free(victim);
}
END_TEST

/* The unsigned number after "key": in @p js (0 if absent). */
static unsigned long long json_num(const char *js, const char *key)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *p = strstr(js, pat);
	return p ? strtoull(p + strlen(pat), NULL, 10) : 0;
}

/*
 * check --read-data reads a pack a window at a time: blobs larger than the
 * window and blobs that straddle windows are all read, and damage in two
 * segments of one pack is named once, by its first segment, before the blobs
 * it spoiled and the file that needs them.
 */
START_TEST(test_check_streams_packs)
{
	mkfile("src/big", 20 * MIB, 31);
	for (int i = 0; i < 40; i++) {
		char rel[32];
		snprintf(rel, sizeof(rel), "src/small%02d", i);
		mkfile(rel, 5000 + (size_t)i * 997, 40 + (uint64_t)i);
	}
	/* a pack of 2,500 blobs: its header is larger than the first read of a pack's end */
	for (int i = 0; i < 2500; i++) {
		char rel[32];
		snprintf(rel, sizeof(rel), "src/tiny/%04d", i);
		mkfile(rel, 100 + (size_t)i % 50, 1000 + (uint64_t)i);
	}
	EXPECT(run(NULL, "-r repo init " KDF " --chunk-min 1M --chunk-avg 3M --chunk-max 6M") == 0,
	       "init: %s", err_s);
	char id[65];
	backup_ok(__LINE__, G, "src", id);
	EXPECT(run(NULL, G " --json check --read-data") == 0, "check: %s", err_s);
	unsigned long long read = json_num(out_s, "blobs_read");
	EXPECT(run(NULL, G " --json stats") == 0, "stats: %s", err_s);
	EXPECT(read > 2540 && read == json_num(out_s, "blobs"), "blobs read %llu of %llu", read,
	       json_num(out_s, "blobs"));
	tu_expect_done();

	tu_sh("cd '%s' && find repo/data -type f | xargs ls -S | head -n 1 >victim", W);
	char *victim = tu_slurp(at("victim"));
	victim[strcspn(victim, "\n")] = 0;
	ck_assert_msg(file_size(victim) > 12 * MIB, "largest pack %s: %lld bytes", victim,
		      (long long)file_size(victim));
	const char *pack = victim + strlen("repo/");
	flip_byte(victim, 2 * MIB + 5);
	flip_byte(victim, 9 * MIB + 77);
	int code = run(NULL, G " check --read-data");
	EXPECT(code == 1, "check --read-data: exit %d:\n%s", code, err_s);
	const char *seg = strstr(err_s, "segment 2 (bytes 2097152-3145727) checksum mismatch");
	const char *blob = strstr(err_s, ": blob ");
	EXPECT(seg && strstr(err_s, pack), "no segment 2 for %s:\n%s", pack, err_s);
	EXPECT(seg && !strstr(strchr(seg, '\n'), "checksum mismatch"), "mismatch told twice:\n%s",
	       err_s);
	EXPECT(blob && seg && seg < blob, "blob before segment:\n%s", err_s);
	EXPECT(strstr(err_s, "/src/big"), "the damaged file is not named:\n%s", err_s);
	/* the other blobs were still read: the small files restore */
	code = run(NULL, G " restore %s --target rt --include '%s/src/small07'", id, W);
	EXPECT(code == 0, "restore of an intact file: exit %d:\n%s", code, err_s);
	EXPECT(tu_sh("cmp -s '%s/src/small07' '%s/rt%s/src/small07'", W, W, W) == 0,
	       "small07 differs");
	tu_expect_done();
	free(victim);
}
END_TEST

/* The findings of a check, one per line. */
static void collect_finding(void *payload, int level, const char *msg)
{
	(void)level;
	cairn_buf_append(payload, msg, strlen(msg));
	cairn_buf_append(payload, "\n", 1);
}

/*
 * A target that dies in the middle of check --read-data: whichever read
 * fails (the structure's, a pack's end, a window in the middle of a pack),
 * check reports it as an error naming what could not be read, goes on, and
 * fails; it never passes and never crashes. Over the runs, a read in the
 * middle of a pack is among them.
 */
START_TEST(test_check_dead_target)
{
	mkfile("src/big", 6 * MIB, 51);
	mkfile("src/small", 3000, 52);
	EXPECT(run(NULL, "-r repo init " KDF " --chunk-min 1M --chunk-avg 2M --chunk-max 4M") == 0,
	       "init: %s", err_s);
	char id[65];
	backup_ok(__LINE__, G, "src", id);
	tu_expect_done();
	cairn_target *inner, *t;
	char addr[4200];
	snprintf(addr, sizeof(addr), "local:%s", at("repo"));
	ck_assert_int_eq(cairn_target_open(&inner, addr), 0);
	ck_assert_int_eq(cairn_target_fault_wrap(&t, inner, NULL), 0);
	cairn_open_opts oo = CAIRN_OPEN_OPTS_INIT;
	oo.cache_dir = "";
	oo.threads = 1; /* one reader: the reads come in one order */
	oo.no_lock = 1;
	cairn_repo *r;
	ck_assert_int_eq(cairn_repo_open(&r, t, "correct horse", &oo), 0);
	cairn_check_opts co = CAIRN_CHECK_OPTS_INIT;
	co.read_data = 1;
	cairn_check_result res;
	int mid = 0, n;
	for (n = 0;; n++) {
		cairn_fault_opts fo = {.fail_errno = EIO, .fail_after = n, .fail_once = 1,
				       .ops_mask = CAIRN_FAULT_OP_GET};
		cairn_target_fault_set(t, &fo);
		cairn_buf msgs = CAIRN_BUF_INIT;
		int rc = cairn_check(r, &co, &res, collect_finding, &msgs);
		cairn_buf_put_u8(&msgs, 0);
		const char *m = (const char *)msgs.data;
		if (res.errors == 0) { /* read n was past the last: all read, all good */
			ck_assert_int_eq(rc, 0);
			cairn_buf_free(&msgs);
			break;
		}
		ck_assert_msg(rc == -EBADMSG && strstr(m, "unreadable"), "read %d: rc %d: %s", n, rc,
			      m);
		mid += strstr(m, "unreadable at byte") != NULL;
		cairn_buf_free(&msgs);
		ck_assert_int_lt(n, 200);
	}
	ck_assert_msg(mid > 0, "no failure in the middle of a pack in %d runs", n);
	cairn_repo_close(r);
}
END_TEST

START_TEST(test_truncated_index)
{
	char id[65], id2[65];
	repo_with_snapshot(id);
	tu_sh("cd '%s' && ls repo/index >segs", W);
	char *seg = tu_slurp(at("segs"));
	ck_assert_msg(nlines(seg) == 1, "expected one index segment: %s", seg);
	seg[strcspn(seg, "\n")] = 0;
	char segname[128], segpath[160];
	snprintf(segname, sizeof(segname), "index/%s", seg);
	snprintf(segpath, sizeof(segpath), "repo/%s", segname);
	ck_assert(truncate(at(segpath), file_size(segpath) / 2) == 0);

	/* commands still run, with a warning naming the segment */
	int code = run(NULL, G " snapshots");
	EXPECT(code == 0 && strstr(err_s, segname) && strstr(err_s, "unusable"),
	       "snapshots: exit %d:\n%s", code, err_s);
	code = run(NULL, G " stats");
	EXPECT(code == 0 && strstr(err_s, segname), "stats: exit %d:\n%s", code, err_s);
	code = run(NULL, G " check");
	EXPECT(code == 1 && strstr(err_s, segname), "check: exit %d:\n%s", code, err_s);
	/* without the index the blobs cannot be found yet: no crash, nothing more asserted */
	run(NULL, G " restore %s --target rt-early", id);
	/* a backup re-indexes the packs from their headers (orphan adoption) */
	backup_ok(__LINE__, G, "src", id2);
	EXPECT(strstr(err_s, "re-indexed"), "backup did not re-index:\n%s", err_s);
	EXPECT_RESTORES(G, id, "src");
	/* the broken segment is still there, so check still reports it */
	code = run(NULL, G " check");
	EXPECT(code == 1 && strstr(err_s, segname), "check after backup: exit %d:\n%s", code,
	       err_s);
	/* prune replaces it: every pack is indexed again, so it carries nothing */
	code = run(NULL, G " prune");
	EXPECT(code == 0, "prune: exit %d:\n%s", code, err_s);
	EXPECT(access(at(segpath), F_OK) != 0, "prune left the broken segment");
	code = run(NULL, G " check --read-data");
	EXPECT(code == 0 && !strstr(err_s, "unusable"), "check after prune: exit %d:\n%s", code,
	       err_s);
	EXPECT_RESTORES(G, id, "src");
	EXPECT_RESTORES(G, id2, "src");
	tu_expect_done();
	free(seg);
}
END_TEST

/*
 * The index is damaged and so is a pack it named (its header unreadable, so
 * it cannot be re-indexed): prune must not drop the segment and must delete
 * nothing while a snapshot needs blobs no readable index or pack has. A
 * backup stores those chunks again; then prune goes ahead.
 */
START_TEST(test_truncated_index_damaged_pack)
{
	char id[65], id2[65];
	repo_with_snapshot(id);
	tu_sh("cd '%s' && ls repo/index >segs && find repo/data -type f | xargs ls -S | head -n 1 "
	      ">victim",
	      W);
	char *seg = tu_slurp(at("segs")), *victim = tu_slurp(at("victim"));
	seg[strcspn(seg, "\n")] = 0;
	victim[strcspn(victim, "\n")] = 0;
	char segpath[160];
	snprintf(segpath, sizeof(segpath), "repo/index/%s", seg);
	ck_assert(truncate(at(segpath), file_size(segpath) / 2) == 0);
	ck_assert(truncate(at(victim), file_size(victim) - 7) == 0);
	tu_sh("cd '%s' && find repo -type f | sort >before", W);

	int code = run(NULL, G " prune");
	EXPECT(code == 1 && strstr(err_s, "nothing deleted"), "prune: exit %d:\n%s", code, err_s);
	EXPECT(strstr(err_s, victim + strlen("repo/")), "prune does not name the pack:\n%s",
	       err_s);
	/* what prune adopted is an index segment more; nothing is gone */
	EXPECT(tu_sh("cd '%s' && find repo -type f | sort >after && [ -z \"$(comm -23 before "
		     "after)\" ]",
		     W) == 0,
	       "prune deleted something");
	/* the chunks of that pack are in no index, so the backup stores them again */
	backup_ok(__LINE__, G, "src", id2);
	code = run(NULL, G " prune");
	EXPECT(code == 0, "prune after the backup: exit %d:\n%s", code, err_s);
	EXPECT(access(at(segpath), F_OK) != 0, "prune left the broken segment");
	/* the damaged pack is in no index now: a warning for check, data check still sees it */
	code = run(NULL, G " check");
	EXPECT(code == 0, "check: exit %d:\n%s", code, err_s);
	EXPECT_RESTORES(G, id, "src");
	EXPECT_RESTORES(G, id2, "src");
	tu_expect_done();
	free(seg);
	free(victim);
}
END_TEST

START_TEST(test_deleted_snapshot)
{
	char id1[65], id2[65];
	mkfile("src1/a", 2 * MIB, 31);
	mkfile("src2/b", 2 * MIB, 32);
	EXPECT(run(NULL, "-r repo init " KDF) == 0, "init: %s", err_s);
	backup_ok(__LINE__, G, "src1", id1);
	backup_ok(__LINE__, G, "src2", id2);
	tu_expect_done();
	char snap[128];
	snprintf(snap, sizeof(snap), "repo/snapshots/%s", id1);
	ck_assert(unlink(at(snap)) == 0);

	EXPECT_ONE_LINE(run(NULL, G " restore %s --target rt-gone", id1), 1, "no snapshot",
			"restore by full id");
	EXPECT(strstr(err_s, id1), "the message does not name the snapshot: %s", err_s);
	EXPECT_ONE_LINE(run(NULL, G " restore %.8s --target rt-gone", id1), 1, "no snapshot",
			"restore by prefix");
	EXPECT_ONE_LINE(run(NULL, G " ls %.8s", id1), 1, "no snapshot", "ls");
	EXPECT(access(at("rt-gone"), F_OK) != 0, "restore created its target");
	/* the other snapshot is fine, and so is the repository */
	EXPECT(snapshot_count(G) == 1, "snapshot count");
	EXPECT_RESTORES(G, id2, "src2");
	EXPECT_RESTORES(G, "latest", "src2");
	int code = run(NULL, G " check");
	EXPECT(code == 0, "check: exit %d:\n%s", code, err_s);
	code = run(NULL, G " prune");
	EXPECT(code == 0, "prune: exit %d:\n%s", code, err_s);
	code = run(NULL, G " check --read-data");
	EXPECT(code == 0, "check --read-data after prune: exit %d:\n%s", code, err_s);
	EXPECT_RESTORES(G, id2, "src2");
	tu_expect_done();
}
END_TEST

START_TEST(test_readonly_repository)
{
	char id[65];
	const char *g = "-r mnt/repo --no-cache";
	mkfile("src/a", 2 * MIB + 3, 41);
	mkfile("src/b", 5000, 42);
	if (mount_tmpfs("mnt", "16m") < 0)
		return;
	/* nothing asserted until umount */
	EXPECT(run(NULL, "-r mnt/repo init " KDF) == 0, "init: %s", err_s);
	backup_ok(__LINE__, g, "src", id);
	EXPECT(tu_sh("mount -o remount,ro '%s'", at("mnt")) == 0, "remount read-only failed");
	EXPECT_ONE_LINE(run(NULL, "%s backup src", g), 1, "read-only", "backup");
	EXPECT_ONE_LINE(run(NULL, "%s prune", g), 1, "read-only", "prune");
	EXPECT_ONE_LINE(run(NULL, "-r mnt/repo2 init " KDF), 1, "read-only", "init");
	/* reading needs no lock, so it works */
	char short_id[9];
	snprintf(short_id, sizeof(short_id), "%.8s", id);
	int code = run(NULL, "%s snapshots", g);
	EXPECT(code == 0 && strstr(out_s, short_id), "snapshots: exit %d:\n%s%s", code, out_s,
	       err_s);
	code = run(NULL, "%s check --read-data", g);
	EXPECT(code == 0, "check: exit %d:\n%s", code, err_s);
	EXPECT_RESTORES(g, id, "src");
	umount_tmpfs("mnt");
	tu_expect_done();
}
END_TEST

START_TEST(test_full_disk)
{
	char id[65];
	const char *g = "-r mnt/repo --no-cache";
	mkfile("small/a", 4096, 51);
	mkfile("big/f", 20 * MIB, 52);
	mkfile("more/b", 100000, 53);
	if (mount_tmpfs("mnt", "8m") < 0)
		return;
	/* nothing asserted until umount */
	EXPECT(run(NULL, "-r mnt/repo init " KDF) == 0, "init: %s", err_s);
	backup_ok(__LINE__, g, "small", id);
	int packs = count_files("mnt/repo/data");
	int code = run(NULL, "%s backup big", g);
	EXPECT_ONE_LINE(code, 1, "no space left", "backup of 20 MiB into 8 MiB");
	EXPECT(strstr(err_s, "no snapshot written"), "the message does not say so:\n%s", err_s);
	EXPECT(snapshot_count(g) == 1, "a snapshot was written");
	EXPECT(count_files("mnt/repo/locks") == 0, "the failed backup left its lock");
	EXPECT(tu_sh("[ -z \"$(find '%s' -name '.*.tmp.*')\" ]", at("mnt/repo")) == 0,
	       "temp files left behind");
	EXPECT_RESTORES(g, id, "small");
	code = run(NULL, "%s check", g);
	EXPECT(code == 0, "check: exit %d:\n%s", code, err_s);
	/* prune reclaims the packs of the failed backup; backups work again */
	code = run(NULL, "%s prune", g);
	EXPECT(code == 0, "prune: exit %d:\n%s", code, err_s);
	EXPECT(count_files("mnt/repo/data") == packs, "prune kept %d packs, want %d",
	       count_files("mnt/repo/data"), packs);
	char id2[65];
	backup_ok(__LINE__, g, "more", id2);
	code = run(NULL, "%s check --read-data", g);
	EXPECT(code == 0, "check --read-data: exit %d:\n%s", code, err_s);
	EXPECT_RESTORES(g, id2, "more");
	EXPECT_RESTORES(g, id, "small");
	umount_tmpfs("mnt");
	tu_expect_done();
}
END_TEST

/*
 * --one-file-system on several walkers: a mount point below the source is
 * recorded as a directory but not entered; without the option it is.
 */
START_TEST(test_one_file_system)
{
	const char *g = "-r repo --no-cache --threads 4";
	mkfile("ofs/a", 3000, 61);
	mkfile("ofs/sub/b", 3000, 62);
	if (mount_tmpfs("ofs/mnt", "4m") < 0)
		return;
	/* nothing asserted until umount */
	mkfile("ofs/mnt/inner", 3000, 63);
	EXPECT(run(NULL, "-r repo init " KDF) == 0, "init: %s", err_s);
	int code = run(NULL, "%s --json backup --one-file-system ofs", g);
	EXPECT(code == 0 && strstr(out_s, "\"files_new\":2,"), "backup -x: exit %d: %s%s", code,
	       out_s, err_s);
	code = run(NULL, "%s ls latest", g);
	EXPECT(code == 0 && strstr(out_s, "/ofs/mnt\n") && !strstr(out_s, "/ofs/mnt/inner"),
	       "ls after -x: exit %d:\n%s", code, out_s);
	code = run(NULL, "%s --json backup ofs", g);
	EXPECT(code == 0 && strstr(out_s, "\"files_new\":1,"), "backup: exit %d: %s%s", code, out_s,
	       err_s);
	code = run(NULL, "%s ls latest", g);
	EXPECT(code == 0 && strstr(out_s, "/ofs/mnt/inner\n"), "ls: exit %d:\n%s", code, out_s);
	umount_tmpfs("ofs/mnt");
	tu_expect_done();
}
END_TEST

START_TEST(test_bad_arguments)
{
	static const struct {
		const char *args, *needle;
	} cases[] = {
	    {G " frob", "unknown command 'frob'"},
	    {G " snapshots --frob", "--frob"},
	    {G " backup --frob src", "--frob"},
	    {G " backup -Z src", "-Z"},
	    {G " backup src --tag", "--tag"},
	    {G " restore latest --target", "--target"},
	    {G " backup", "no paths"},
	    {G " backup no-such-path", "no-such-path"},
	    {G " backup src no-such-path", "no-such-path"},
	    {G " restore latest", "--target"},
	    {G " restore --target rt", "SNAPSHOT"},
	    {G " --threads abc snapshots", "--threads"},
	    {G " --threads 0 backup src", "--threads"},
	    {G " --threads 99999999999999999999 backup src", "--threads"},
	    {G " --compression 99 backup src", "--compression"},
	    {G " forget", "policy"},
	    {G " forget --keep-last many", "keep"},
	    {G " check --read-data-subset 200%", "--read-data-subset"},
	    {G " prune now", "unexpected argument"},
	    {G " snapshots -r", "-r"},
	    {"-r new init --kdf-memory lots", "size"},
	    {"--no-cache snapshots", "no repository given"},
	};
	char id[65];
	repo_with_snapshot(id);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		EXPECT_ONE_LINE(run(NULL, "%s", cases[i].args), 2, cases[i].needle, cases[i].args);
		EXPECT(!*out_s, "%s: printed on stdout: %s", cases[i].args, out_s);
	}
	EXPECT(access(at("new"), F_OK) != 0 && access(at("rt"), F_OK) != 0,
	       "a refused command created something");
	EXPECT(snapshot_count(G) == 1, "snapshot count changed");
	EXPECT(count_files("repo/locks") == 0, "a lock was left behind");
	EXPECT_RESTORES(G, id, "src");
	tu_expect_done();
}
END_TEST

/*
 * A file that ends before its size: sysfs attributes claim 4096 bytes and
 * hold a line. The backup stores what it read, says the file changed while
 * it was read, exits 3 (partial), and the restore gives the bytes read.
 */
START_TEST(test_short_file)
{
	static const char *const cand[] = {"/sys/kernel/mm/transparent_hugepage/enabled",
					   "/sys/power/state", "/sys/kernel/profiling"};
	const char *f = NULL;
	struct stat st;
	for (size_t i = 0; i < sizeof(cand) / sizeof(cand[0]) && !f; i++)
		if (stat(cand[i], &st) == 0 && st.st_size == 4096 && access(cand[i], R_OK) == 0)
			f = cand[i];
	if (!f) {
		printf("test_short_file: no sysfs attribute to read here; skipped\n");
		return;
	}
	EXPECT(run(NULL, "-r repo init " KDF) == 0, "init: %s", err_s);
	int code = run(NULL, G " --json backup %s", f);
	EXPECT(code == 3, "backup of %s: exit %d, want 3:\n%s", f, code, err_s);
	EXPECT(strstr(err_s, "changed while it was read") &&
		       strstr(err_s, "the snapshot holds what was read"),
	       "messages:\n%s", err_s);
	char id[65];
	last_snapshot(id);
	code = run(NULL, G " restore %s --target rt-short", id);
	EXPECT(code == 0, "restore: exit %d:\n%s", code, err_s);
	EXPECT(tu_sh("cat %s | cmp -s - '%s/rt-short%s'", f, W, f) == 0,
	       "the restored %s is not what reading it gives", f);
	tu_expect_done();
}
END_TEST

START_TEST(test_changing_file)
{
	char id[65];
	mkfile("grow/big", 200 * MIB, 61);
	mkfile("grow/small", 1000, 62);
	EXPECT(run(NULL, "-r repo init " KDF) == 0, "init: %s", err_s);
	tu_expect_done();
	/* a path that does not exist: nothing is written */
	EXPECT_ONE_LINE(run(NULL, G " backup grow gone"), 2, "gone", "backup of a missing path");
	EXPECT(count_files("repo/snapshots") == 0 && count_files("repo/data") == 0 &&
		   count_files("repo/locks") == 0,
	       "a refused backup wrote to the repository");
	/* a file appended to all along its backup */
	tu_sh("cd '%s' || exit 1; (while :; do head -c 4096 /dev/zero >>grow/big; sleep 0.005; "
	      "done) >/dev/null 2>&1 & echo $! >appender",
	      W);
	char *ap = tu_slurp(at("appender"));
	pid_t app = (pid_t)atoi(ap);
	free(ap);
	ck_assert(app > 0);
	usleep(50000);
	int code = run(NULL, G " --threads 1 --json backup grow");
	kill(app, SIGTERM);
	for (int i = 0; i < 200 && kill(app, 0) == 0; i++)
		usleep(10000);
	usleep(50000); /* the last `head` of the loop */
	EXPECT(code == 3, "backup of a changing file: exit %d, want 3:\n%s", code, err_s);
	EXPECT(strstr(err_s, "grow/big: changed while it was read"), "no warning naming it:\n%s",
	       err_s);
	EXPECT(strstr(out_s, "\"errors\":1"), "summary: %s", out_s);
	last_snapshot(id);
	/* the snapshot holds the file as read: a prefix of what it is now */
	code = run(NULL, G " restore %s --target rt-grow", id);
	EXPECT(code == 0, "restore: exit %d:\n%s", code, err_s);
	char restored[PATH_MAX];
	snprintf(restored, sizeof(restored), "rt-grow%s/grow/big", W);
	off_t n = file_size(restored);
	EXPECT(n >= 200 * MIB && n <= file_size("grow/big"), "restored size %lld",
	       (long long)n);
	EXPECT(tu_sh("cmp -n %lld '%s' '%s'", (long long)n, at(restored), at("grow/big")) == 0,
	       "the restored file is not a prefix of the source");
	code = run(NULL, G " check");
	EXPECT(code == 0, "check: exit %d:\n%s", code, err_s);
	/* the next backup reads it again (it was marked changed) and is complete */
	char id2[65];
	backup_ok(__LINE__, G, "grow", id2);
	EXPECT(!strstr(err_s, "changed"), "warned again:\n%s", err_s);
	EXPECT_RESTORES(G, id2, "grow");
	tu_expect_done();
}
END_TEST

/*
 * librados and libs3 are loaded when a rados: or s3: repository is opened. If
 * they cannot be ($CAIRN_RADOS_LIB / $CAIRN_S3_LIB name missing files), the
 * command fails (exit 1) in one line naming the library and its package, and
 * a local repository works as before with the same environment.
 */
START_TEST(test_client_library_missing)
{
	char id[65];
	repo_with_snapshot(id);
	const char *env = "CAIRN_RADOS_LIB=/nonexistent/librados.so.2 "
			  "CAIRN_S3_LIB=/nonexistent/libs3.so.2 AWS_ACCESS_KEY_ID=ak "
			  "AWS_SECRET_ACCESS_KEY=sk CEPH_CONF=/nonexistent/ceph.conf";
#if CAIRN_HAVE_RADOS
	EXPECT_ONE_LINE(run(env, "-r rados:cairn/ns --no-cache snapshots"), 1,
			"rados:cairn/ns: cannot load /nonexistent/librados.so.2", "rados");
	EXPECT(strstr(err_s, "install librados2") != NULL, "rados: no package named:\n%s", err_s);
#endif
#ifdef CAIRN_HAVE_S3
	EXPECT_ONE_LINE(run(env, "-r s3:http://127.0.0.1:1/bucket-x --no-cache snapshots"), 1,
			"cannot load /nonexistent/libs3.so.2", "s3");
	EXPECT(strstr(err_s, "install libs3-2") != NULL, "s3: no package named:\n%s", err_s);
#endif
	mkfile("src/c", 5000, 4);
	int code = run(env, G " --json backup src");
	EXPECT(code == 0, "local backup without the client libraries: exit %d: %s", code, err_s);
	char id2[65];
	last_snapshot(id2);
	EXPECT_RESTORES(G, id2, "src");
	tu_expect_done();
}
END_TEST

static Suite *cli_errors_suite(void)
{
	Suite *s = suite_create("cli_errors");
	TCase *tc = tcase_create("errors");
	tcase_set_timeout(tc, 300);
	tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_wrong_passphrase);
	tcase_add_test(tc, test_missing_repository);
	tcase_add_test(tc, test_init_twice);
	tcase_add_test(tc, test_corrupt_pack);
	tcase_add_test(tc, test_check_streams_packs);
	tcase_add_test(tc, test_check_dead_target);
	tcase_add_test(tc, test_truncated_index);
	tcase_add_test(tc, test_truncated_index_damaged_pack);
	tcase_add_test(tc, test_deleted_snapshot);
	tcase_add_test(tc, test_readonly_repository);
	tcase_add_test(tc, test_full_disk);
	tcase_add_test(tc, test_one_file_system);
	tcase_add_test(tc, test_bad_arguments);
	tcase_add_test(tc, test_changing_file);
	tcase_add_test(tc, test_short_file);
	tcase_add_test(tc, test_client_library_missing);
	suite_add_tcase(s, tc);
	return s;
}

CAIRN_CHECK_MAIN(cli_errors_suite)
