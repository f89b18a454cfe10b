/*
 * check_fdcache.c - the table of open descriptors: a hit returns the same
 * descriptor, misses open the file (missing files and directories are
 * errors, and so are FIFOs, without waiting for a writer), the least
 * recently used unused slot is reused, a full table of busy slots (or a key
 * too long for it) hands out a descriptor outside the table, and a drop
 * while in use keeps the descriptor valid until its user is done while the
 * next get opens the file anew.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fdcache.h"
#include "tests/support/check_main.h"
#include "tests/support/testutil.h"

static char *g_dir;

static void setup(void)
{
	g_dir = tu_mkdtemp("fdcache");
}

static void teardown(void)
{
	tu_rmrf(g_dir);
	free(g_dir);
}

static const char *file(char *buf, int i, const char *content)
{
	snprintf(buf, 512, "%s/f%d", g_dir, i);
	if (content) {
		FILE *f = fopen(buf, "w");
		ck_assert_ptr_nonnull(f);
		fputs(content, f);
		fclose(f);
	}
	return buf;
}

static void expect_content(int fd, const char *want)
{
	char got[64] = {0};
	ck_assert_int_eq(pread(fd, got, sizeof(got) - 1, 0), (ssize_t)strlen(want));
	ck_assert_str_eq(got, want);
}

START_TEST(hits_misses_and_errors)
{
	cairn_fdcache *c = cairn_fdcache_new();
	char p[512], key[32];
	int s1, s2;
	uint64_t size;
	file(p, 1, "one");
	int fd = cairn_fdcache_get(c, "f1", p, &s1, &size);
	ck_assert_int_ge(fd, 0);
	ck_assert_uint_eq(size, 3);
	ck_assert_int_eq(cairn_fdcache_get(c, "f1", p, &s2, &size), fd); /* a hit */
	ck_assert_int_eq(s1, s2);
	cairn_fdcache_put(c, s1, fd);
	cairn_fdcache_put(c, s2, fd);
	expect_content(fd, "one"); /* still open: cached */
	ck_assert_int_eq(cairn_fdcache_get(c, "nope", file(p, 99, NULL), &s1, &size), -ENOENT);
	ck_assert_int_eq(cairn_fdcache_get(c, "dir", g_dir, &s1, &size), -ENOENT);
	char fifo[600];
	snprintf(fifo, sizeof(fifo), "%s/fifo", g_dir);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	ck_assert_int_eq(cairn_fdcache_get(c, "fifo", fifo, &s1, &size), -ENOENT);
	char fdp[600]; /* a path through a file */
	snprintf(fdp, sizeof(fdp), "%s/x", file(p, 1, NULL));
	ck_assert_int_eq(cairn_fdcache_pread(c, "thru", fdp, fdp, 1, 0, &size), -ENOENT);
	/* a key too long for the table: a descriptor of its own, closed by the put */
	char longkey[200];
	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = 0;
	int lfd = cairn_fdcache_get(c, longkey, file(p, 1, NULL), &s1, &size);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(s1, -1);
	cairn_fdcache_put(c, s1, lfd);
	ck_assert_int_eq(fcntl(lfd, F_GETFD), -1);

	/* every slot busy: a descriptor outside the table (slot -1), closed by the put */
	int slots[16], fds[16], n = 0;
	for (int i = 0; i < 16; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		fds[n] = cairn_fdcache_get(c, key, file(p, 100 + i, "x"), &slots[n], &size);
		ck_assert_int_ge(fds[n], 0);
		ck_assert_int_ge(slots[n++], 0);
	}
	int own = cairn_fdcache_get(c, "k16", file(p, 116, "y"), &s1, &size);
	ck_assert_int_ge(own, 0);
	ck_assert_int_eq(s1, -1);
	cairn_fdcache_put(c, s1, own);
	ck_assert_int_eq(fcntl(own, F_GETFD), -1);
	/* pread still reads it, through a descriptor of its own */
	char buf[8] = {0};
	ck_assert_int_eq(cairn_fdcache_pread(c, "k16", p, buf, sizeof(buf), 0, &size), 1);
	ck_assert_str_eq(buf, "y");
	ck_assert_uint_eq(size, 1);
	for (int i = 0; i < n; i++)
		cairn_fdcache_put(c, slots[i], fds[i]);
	/* now the least recently used (k0) makes room */
	fd = cairn_fdcache_get(c, "k16", p, &s1, &size);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_ge(s1, 0);
	cairn_fdcache_put(c, s1, fd);
	/* through the table: a read past the end is short, a missing file an error */
	memset(buf, 0, sizeof(buf));
	ck_assert_int_eq(cairn_fdcache_pread(c, "f1", file(p, 1, NULL), buf, sizeof(buf), 1, &size), 2);
	ck_assert_str_eq(buf, "ne");
	ck_assert_int_eq(cairn_fdcache_pread(c, "nope", file(p, 99, NULL), buf, 1, 0, &size), -ENOENT);
	cairn_fdcache_free(c);
}
END_TEST

START_TEST(drop_while_in_use)
{
	cairn_fdcache *c = cairn_fdcache_new();
	char p[512], tmp[600];
	int s1, s2;
	uint64_t size;
	file(p, 1, "old");
	int fd = cairn_fdcache_get(c, "f1", p, &s1, &size);
	ck_assert_int_ge(fd, 0);
	/* replaced under its name, then dropped while the first user still reads */
	snprintf(tmp, sizeof(tmp), "%s/new", g_dir);
	FILE *f = fopen(tmp, "w");
	fputs("newer", f);
	fclose(f);
	ck_assert_int_eq(rename(tmp, p), 0);
	cairn_fdcache_drop(c, "f1");
	expect_content(fd, "old"); /* the user's descriptor stays valid */
	int fd2 = cairn_fdcache_get(c, "f1", p, &s2, &size);
	ck_assert_int_ge(fd2, 0);
	ck_assert_int_ne(fd2, fd);
	ck_assert_uint_eq(size, 5);
	expect_content(fd2, "newer");
	cairn_fdcache_put(c, s1, fd); /* the last user of the dropped one closes it */
	ck_assert_int_eq(fcntl(fd, F_GETFD), -1);
	cairn_fdcache_put(c, s2, fd2);
	expect_content(fd2, "newer");
	cairn_fdcache_free(c);
	ck_assert_int_eq(fcntl(fd2, F_GETFD), -1);
}
END_TEST

static Suite *common_fdcache_suite(void)
{
	Suite *s = suite_create("fdcache");
	TCase *tc = tcase_create("fdcache");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, hits_misses_and_errors);
	tcase_add_test(tc, drop_while_in_use);
	suite_add_tcase(s, tc);
	return s;
}

CAIRN_CHECK_MAIN(common_fdcache_suite)
