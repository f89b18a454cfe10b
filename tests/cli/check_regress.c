/*
 * check_regress.c - regression tests for bugs found outside the unit suites.
 *
 * parent_trees_under_load: the archiver's walker loaded the parent snapshot's
 * trees with the same codec the finishing threads used to encode new trees,
 * so a backup with a parent over many directories stored trees whose zstd
 * frames were garbage (authenticated, but undecodable): check --read-data and
 * restore failed. Found by bench/compare.sh (first -> unchanged -> v2).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/engine.h"

#include "tests/support/check_main.h"
#include "tests/support/testutil.h"

static void write_file(const char *path, size_t size, uint64_t seed)
{
	char *b = malloc(size + 1);
	tu_fill_text(b, size, seed);
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(b, 1, size, f), size);
	fclose(f);
	free(b);
}

START_TEST(parent_trees_under_load)
{
	char *base = tu_mkdtemp("regress");
	char src[4096], repo[4096], p[4200], cmd[16384];
	snprintf(src, sizeof(src), "%s/src", base);
	snprintf(repo, sizeof(repo), "%s/repo", base);
	mkdir(src, 0755);
	/* many directories, so trees are finished on reader threads while the walker
	 * still loads the parent's trees */
	for (int d = 0; d < 1500; d++) {
		snprintf(p, sizeof(p), "%s/d%04d", src, d);
		mkdir(p, 0755);
		for (int f = 0; f < 3; f++) {
			snprintf(p, sizeof(p), "%s/d%04d/f%d", src, d, f);
			write_file(p, 3000 + (size_t)(d * 7 + f) % 5000, (uint64_t)(d * 3 + f));
		}
	}
	setenv("CAIRN_PASSWORD", "regress", 1);
	const char *B = CAIRN_BIN;
	snprintf(cmd, sizeof(cmd), "%s -q -r '%s' init --kdf-memory 1024 --kdf-time 1", B, repo);
	ck_assert_int_eq(tu_sh("%s", cmd), 0);
	for (int round = 0; round < 3; round++) {
		ck_assert_int_eq(tu_sh("%s -q --no-cache -r '%s' backup '%s'", B, repo, src), 0);
		/* change one file in every tenth directory: most trees come from the parent */
		for (int d = round; d < 1500; d += 10) {
			snprintf(p, sizeof(p), "%s/d%04d/f%d", src, d, round % 3);
			write_file(p, 4000, (uint64_t)(round * 100000 + d));
		}
	}
	ck_assert_int_eq(tu_sh("%s -q --no-cache -r '%s' backup '%s'", B, repo, src), 0);
	ck_assert_int_eq(tu_sh("%s -q --no-cache -r '%s' check --read-data", B, repo), 0);
	ck_assert_int_eq(
	    tu_sh("%s -q --no-cache -r '%s' restore latest --target '%s/out'", B, repo, base), 0);
	ck_assert_int_eq(tu_sh("diff -r '%s' '%s/out%s' >/dev/null", src, base, src), 0);
	tu_rmrf(base);
	free(base);
}
END_TEST

/*
 * A damaged pack on a single target used to be unrecoverable: the index kept
 * naming the damaged chunk, so later backups deduplicated against it. After
 * `repair --index` the chunk is in no index, the next backup stores it again,
 * and every snapshot restores.
 */
START_TEST(damaged_pack_recovers_after_reindex)
{
	char *base = tu_mkdtemp("reindex");
	const char *B = CAIRN_BIN;
	setenv("CAIRN_PASSWORD", "regress", 1);
	char f[4200];
	snprintf(f, sizeof(f), "%s/src", base);
	mkdir(f, 0755);
	snprintf(f, sizeof(f), "%s/src/big", base);
	char *buf = malloc(24u << 20);
	tu_fill_random(buf, 24u << 20, 77);
	FILE *fp = fopen(f, "wb");
	ck_assert_ptr_nonnull(fp);
	ck_assert_uint_eq(fwrite(buf, 1, 24u << 20, fp), 24u << 20);
	fclose(fp);
	free(buf);
	ck_assert_int_eq(tu_sh("%s -q -r '%s/repo' init --kdf-memory 1024 --kdf-time 1", B, base), 0);
	ck_assert_int_eq(tu_sh("%s -q --no-cache -r '%s/repo' backup '%s/src'", B, base, base), 0);
	/* overwrite four bytes in the middle of the largest pack (never all equal to them) */
	ck_assert_int_eq(tu_sh("p=$(ls -S '%s'/repo/data/*/* | head -1); "
			       "printf '\\377\\000\\377\\000' | dd of=\"$p\" bs=1 seek=3000000 conv=notrunc "
			       "status=none",
			       base),
			 0);
	ck_assert_int_ne(tu_sh("%s -q --no-cache -r '%s/repo' check --read-data 2>/dev/null", B,
			       base),
			 0);
	ck_assert_int_eq(tu_sh("%s -q --no-cache -r '%s/repo' repair --index", B, base), 0);
	/* the file is unchanged, but its lost chunk is in no index: it is read again */
	ck_assert_int_eq(tu_sh("%s -q --no-cache -r '%s/repo' backup '%s/src'", B, base, base), 0);
	ck_assert_int_eq(tu_sh("%s -q --no-cache -r '%s/repo' check", B, base), 0);
	ck_assert_int_eq(tu_sh("%s -q --no-cache -r '%s/repo' restore latest --target '%s/out'", B,
			       base, base),
			 0);
	ck_assert_int_eq(tu_sh("cmp '%s/src/big' '%s/out%s/src/big'", base, base, base), 0);
	tu_rmrf(base);
	free(base);
}
END_TEST

/* <base>/src with @p n subdirectories d000..., each with a small file f if @p files. */
static void make_dirs(const char *base, int n, int files)
{
	char p[4200];
	snprintf(p, sizeof(p), "%s/src", base);
	mkdir(p, 0755);
	for (int d = 0; d < n; d++) {
		snprintf(p, sizeof(p), "%s/src/d%03d", base, d);
		mkdir(p, 0755);
		if (files) {
			snprintf(p, sizeof(p), "%s/src/d%03d/f", base, d);
			write_file(p, 1000 + (size_t)d, (uint64_t)d);
		}
	}
}

/*
 * A damaged cached tree pack: every tree read from it fails authentication,
 * the entry is dropped (its open descriptor too, even while another walker
 * reads through it) and the trees come from the repository.
 */
START_TEST(damaged_cache_is_replaced)
{
	char *base = tu_mkdtemp("cache");
	const char *B = CAIRN_BIN;
	setenv("CAIRN_PASSWORD", "regress", 1);
	make_dirs(base, 300, 1);
	ck_assert_int_eq(tu_sh("%s -q -r '%s/repo' init --kdf-memory 1024 --kdf-time 1", B, base), 0);
#define CR "%s -q --cache-dir '%s/cache' --threads 4 -r '%s/repo'"
	ck_assert_int_eq(tu_sh(CR " backup '%s/src'", B, base, base, base), 0);
	/* damage the middle of every cached pack (tree packs: the cache holds no data) */
	ck_assert_int_eq(tu_sh("n=0; for f in $(find '%s/cache' -path '*/data/*' -type f); do "
			       "s=$(stat -c %%s \"$f\"); printf '\\377\\000\\377\\000' | "
			       "dd of=\"$f\" bs=1 seek=$((s / 2)) conv=notrunc status=none; "
			       "md5sum \"$f\" | cut -d' ' -f1 >>'%s/damaged'; "
			       "n=$((n + 1)); done; test $n -gt 0",
			       base, base),
			 0);
	ck_assert_int_eq(tu_sh(CR " backup '%s/src' 2>'%s/err'", B, base, base, base, base), 0);
	/* no damaged copy is left in the cache */
	ck_assert_int_ne(tu_sh("find '%s/cache' -type f | xargs md5sum | grep -q -F -f '%s/damaged'",
			       base, base),
			 0);
	ck_assert_int_eq(tu_sh(CR " restore latest --target '%s/out'", B, base, base, base), 0);
	ck_assert_int_eq(tu_sh("diff -r '%s/src' '%s/out%s/src'", base, base, base), 0);
	ck_assert_int_eq(tu_sh(CR " check", B, base, base), 0);
#undef CR
	tu_rmrf(base);
	free(base);
}
END_TEST

/*
 * A truncated cached tree pack, read by one long-lived process: the first
 * tree read refills the cache, and the rest must read the new file. The
 * table of open cache descriptors kept the truncated one, so every later
 * tree fetched and verified the whole pack again (seen as the cached file
 * being replaced once per tree).
 */
typedef struct ls_watch {
	const char *file;
	ino_t ino;
	int changes, entries;
} ls_watch;

static int ls_cb(void *payload, const cairn_entry *e)
{
	(void)e;
	ls_watch *w = payload;
	struct stat st;
	if (stat(w->file, &st) == 0 && st.st_ino != w->ino) {
		w->ino = st.st_ino;
		w->changes++;
	}
	w->entries++;
	return 0;
}

START_TEST(truncated_cache_refilled_once)
{
	char *base = tu_mkdtemp("cachetrunc");
	const char *B = CAIRN_BIN;
	char p[4200], cache[4200], file[4200];
	setenv("CAIRN_PASSWORD", "regress", 1);
	make_dirs(base, 200, 0);
	snprintf(cache, sizeof(cache), "%s/cache", base);
	ck_assert_int_eq(tu_sh("%s -q -r '%s/repo' init --kdf-memory 1024 --kdf-time 1", B, base), 0);
	ck_assert_int_eq(tu_sh("%s -q --cache-dir '%s' -r '%s/repo' backup '%s/src'", B, cache,
			       base, base),
			 0);
	/* one cached tree pack; truncate it */
	char cmd[9000];
	snprintf(cmd, sizeof(cmd), "find '%s' -path '*/data/*' -type f", cache);
	FILE *f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(file, sizeof(file), f));
	file[strcspn(file, "\n")] = 0;
	pclose(f);
	ck_assert_int_eq(truncate(file, 0), 0);

	cairn_target *t;
	cairn_repo *r;
	cairn_open_opts oo = CAIRN_OPEN_OPTS_INIT;
	oo.cache_dir = cache;
	snprintf(p, sizeof(p), "%s/repo", base);
	ck_assert_int_eq(cairn_target_open(&t, p), 0);
	ck_assert_int_eq(cairn_repo_open(&r, t, "regress", &oo), 0);
	cairn_snapshot snap;
	ck_assert_int_eq(cairn_snapshot_find(r, "latest", NULL, &snap), 0);
	struct stat st;
	ck_assert_int_eq(stat(file, &st), 0);
	ls_watch w = {file, st.st_ino, 0, 0};
	ck_assert_int_eq(cairn_ls(r, &snap, NULL, ls_cb, &w), 0);
	ck_assert_int_ge(w.entries, 200);
	ck_assert_int_eq(w.changes, 1);
	ck_assert_int_eq(stat(file, &st), 0);
	ck_assert_int_gt(st.st_size, 0);
	cairn_snapshot_free(&snap);
	cairn_repo_close(r);
	tu_rmrf(base);
	free(base);
}
END_TEST

/*
 * Every path is opened from "/": a backup that cannot open it fails with a
 * message and writes no snapshot (it used to walk from descriptor -1). A
 * child process makes it so: chroot into a directory of mode 0311 (search,
 * no read), then drop root, so traversal works and open("/") does not.
 */
START_TEST(unopenable_root_fails_backup)
{
	if (geteuid() != 0) {
		printf("unopenable_root_fails_backup: needs root (chroot); skipped\n");
		return;
	}
	char *base = tu_mkdtemp("noroot");
	const char *B = CAIRN_BIN;
	setenv("CAIRN_PASSWORD", "regress", 1);
	make_dirs(base, 3, 1);
	ck_assert_int_eq(tu_sh("%s -q -r '%s/repo' init --kdf-memory 1024 --kdf-time 1", B, base), 0);
	ck_assert_int_eq(tu_sh("chown -R 65534:65534 '%s/repo' '%s/src' && chmod 0311 '%s'", base,
			       base, base),
			 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) { /* 10: set-up failed; 11: backup succeeded; 12: wrong error; 0: ok */
		if (chroot(base) < 0 || chdir("/") < 0 || setgid(65534) < 0 || setuid(65534) < 0)
			_exit(10);
		cairn_target *t;
		cairn_repo *r;
		cairn_open_opts oo = CAIRN_OPEN_OPTS_INIT;
		oo.cache_dir = "";
		if (cairn_target_open(&t, "/repo") < 0 || cairn_repo_open(&r, t, "regress", &oo) < 0)
			_exit(10);
		const char *paths[] = {"/src"};
		cairn_backup_opts o = CAIRN_BACKUP_OPTS_INIT;
		o.paths = paths;
		o.npaths = 1;
		cairn_snapshot snap;
		int rc = cairn_backup(r, &o, &snap, NULL, NULL);
		if (rc == 0)
			_exit(11);
		int ok = rc == -EACCES && strstr(cairn_error_last(), "cannot open /") &&
			 strstr(cairn_error_last(), "no snapshot written") &&
			 cairn_snapshot_find(r, "latest", NULL, &snap) == -ENOENT;
		cairn_repo_close(r);
		_exit(ok ? 0 : 12);
	}
	int st = 0;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	chmod(base, 0700);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: status %d", st);
	tu_rmrf(base);
	free(base);
}
END_TEST

static Suite *cli_regress_suite(void)
{
	Suite *s = suite_create("regress");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, parent_trees_under_load);
	tcase_add_test(tc, damaged_pack_recovers_after_reindex);
	tcase_add_test(tc, damaged_cache_is_replaced);
	tcase_add_test(tc, truncated_cache_refilled_once);
	tcase_add_test(tc, unopenable_root_fails_backup);
	suite_add_tcase(s, tc);
	return s;
}

CAIRN_CHECK_MAIN(cli_regress_suite)
