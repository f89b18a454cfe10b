/*
 * check_target_local.c - the local-directory target and the checked
 * wrappers: round trips, ranges, listing, deletion, name validation, atomic
 * replacement, concurrent writers, refusals (read-only, permissions, full
 * disk) and address parsing.
 *
 * The refusal tests mount small tmpfs file systems (the suites run as root,
 * which bypasses permission bits); where mounting is not permitted they print
 * a note and pass. Between mount and umount they assert nothing, so a failure
 * never leaves a mount behind.
 */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "targets/target.h"
#include "tests/support/testutil.h"

#define MIB (1024 * 1024)

static char *dir;
static cairn_target *tg;

static void setup(void)
{
	dir = tu_mkdtemp("targets");
	ck_assert_int_eq(cairn_target_local_open(&tg, dir), 0);
}

static void teardown(void)
{
	cairn_target_close(tg);
	tg = NULL;
	tu_rmrf(dir);
	free(dir);
	dir = NULL;
}

/* Put @p len seeded bytes as @p name; returns the put's result. */
static int put_seeded(cairn_target *t, const char *name, size_t len, uint64_t seed)
{
	uint8_t *p = malloc(len ? len : 1);
	tu_fill_random(p, len, seed);
	int rc = cairn_target_put(t, name, p, len);
	free(p);
	return rc;
}

/* 1 if object @p name holds exactly @p len bytes seeded by @p seed. */
static int holds_seeded(cairn_target *t, const char *name, size_t len, uint64_t seed)
{
	cairn_buf b = CAIRN_BUF_INIT;
	uint8_t *p = malloc(len ? len : 1);
	tu_fill_random(p, len, seed);
	int ok = cairn_target_get(t, name, &b) == 0 && b.len == len && !memcmp(b.data, p, len);
	free(p);
	cairn_buf_free(&b);
	return ok;
}

static int ntmp;

static int count_tmp_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	const char *base = path + ftw->base;
	if (flag == FTW_F && base[0] == '.' && strstr(base, ".tmp."))
		ntmp++;
	return 0;
}

/* Number of put() temp files anywhere under @p root. */
static int count_tmp(const char *root)
{
	ntmp = 0;
	nftw(root, count_tmp_cb, 16, FTW_PHYS);
	return ntmp;
}

START_TEST(test_roundtrip)
{
	static const size_t sizes[] = {0, 1, 4096, 5 * MIB};
	char name[64];
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		snprintf(name, sizeof(name), "data/%02zx/obj-%zu", i, sizes[i]);
		ck_assert_int_eq(put_seeded(tg, name, sizes[i], i + 1), 0);
		ck_assert(holds_seeded(tg, name, sizes[i], i + 1));
		uint64_t size = 12345;
		ck_assert_int_eq(cairn_target_stat(tg, name, &size), 0);
		ck_assert_uint_eq(size, sizes[i]);
	}
	ck_assert_int_eq(count_tmp(dir), 0);

	/* objects are files under the root, readable by the owner only */
	char path[4200];
	struct stat st;
	snprintf(path, sizeof(path), "%s/data/01/obj-1", dir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
}
END_TEST

/* An object built in an unnamed file and linked into place (how backups store packs). */
START_TEST(test_tmpfile_link)
{
	const size_t len = 3 * MIB + 17;
	uint8_t *data = malloc(len);
	tu_fill_random(data, len, 42);
	int fd = cairn_target_tmpfile(tg);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	ck_assert_int_eq(count_tmp(dir), 0); /* nothing visible while it is built */
	uint64_t before = tg->stats.puts;
	ck_assert_int_eq(cairn_target_link_tmpfile(tg, "data/ab/linked", fd, len), 0);
	ck_assert_uint_eq(tg->stats.puts, before + 1);
	close(fd);
	cairn_buf out = CAIRN_BUF_INIT;
	ck_assert_int_eq(cairn_target_get(tg, "data/ab/linked", &out), 0);
	ck_assert_uint_eq(out.len, len);
	ck_assert_mem_eq(out.data, data, len);
	cairn_buf_free(&out);
	char path[4200];
	struct stat st;
	snprintf(path, sizeof(path), "%s/data/ab/linked", dir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);

	/* an abandoned file leaves nothing behind; an existing object is kept */
	fd = cairn_target_tmpfile(tg);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "other", 5), 5);
	ck_assert_int_eq(cairn_target_link_tmpfile(tg, "data/ab/linked", fd, 5), 0);
	close(fd);
	fd = cairn_target_tmpfile(tg);
	ck_assert_int_eq(write(fd, "gone", 4), 4);
	close(fd);
	ck_assert_int_eq(cairn_target_stat(tg, "data/ab/linked", &before), 0);
	ck_assert_uint_eq(before, len);
	/* reserved names are refused as with put */
	fd = cairn_target_tmpfile(tg);
	ck_assert_int_eq(cairn_target_link_tmpfile(tg, "data/ab/.x.tmp.y", fd, 0), -EINVAL);
	close(fd);
	free(data);
}
END_TEST

/*
 * Ranges of an object. Packs (data/...) are read through the target's table
 * of open descriptors, other objects with an open of their own: both give
 * the same answers, and a pack replaced or deleted through the target is
 * not read from a stale descriptor.
 */
START_TEST(test_get_range)
{
	static const char *prefix[] = {"packs", "data/ab"};
	char name[64], other[64];
	uint8_t obj[1000], got[200];
	tu_fill_random(obj, sizeof(obj), 7);
	for (int k = 0; k < 2; k++) {
		snprintf(name, sizeof(name), "%s/p1", prefix[k]);
		ck_assert_int_eq(cairn_target_put(tg, name, obj, sizeof(obj)), 0);

		ck_assert_int_eq(cairn_target_get_range(tg, name, 100, 200, got), 0);
		ck_assert_mem_eq(got, obj + 100, 200);
		ck_assert_int_eq(cairn_target_get_range(tg, name, 0, 1, got), 0);
		ck_assert_uint_eq(got[0], obj[0]);
		ck_assert_int_eq(cairn_target_get_range(tg, name, 900, 100, got), 0); /* at end */
		ck_assert_mem_eq(got, obj + 900, 100);
		ck_assert_int_eq(cairn_target_get_range(tg, name, 1000, 0, got), 0);

		ck_assert_int_eq(cairn_target_get_range(tg, name, 950, 100, got), -ERANGE);
		ck_assert_ptr_nonnull(strstr(cairn_error_last(), name));
		ck_assert_ptr_nonnull(strstr(cairn_error_last(), "1000-byte"));
		ck_assert_int_eq(cairn_target_get_range(tg, name, 1001, 0, got), -ERANGE);
		ck_assert_int_eq(cairn_target_get_range(tg, name, UINT64_MAX, 2, got), -ERANGE);
		ck_assert_int_eq(cairn_target_get_range(tg, name, (uint64_t)1 << 62, 2, got),
				 -ERANGE);
		snprintf(other, sizeof(other), "%s/nope", prefix[k]);
		ck_assert_int_eq(cairn_target_get_range(tg, other, 0, 1, got), -ENOENT);
		ck_assert_ptr_nonnull(strstr(cairn_error_last(), "no such object"));
		snprintf(other, sizeof(other), "%s/p1/x", prefix[k]); /* a path through a file */
		ck_assert_int_eq(cairn_target_get_range(tg, other, 0, 1, got), -ENOENT);
		ck_assert_int_eq(cairn_target_get_range(tg, prefix[k], 0, 1, got), -ENOENT); /* a dir */
		/* a FIFO is no object, and reading it does not wait for a writer */
		char fifo[4096];
		snprintf(fifo, sizeof(fifo), "%s/%s/fifo", dir, prefix[k]);
		ck_assert_int_eq(mkfifo(fifo, 0600), 0);
		snprintf(other, sizeof(other), "%s/fifo", prefix[k]);
		ck_assert_int_eq(cairn_target_get_range(tg, other, 0, 1, got), -ENOENT);
		unlink(fifo);

		/* replaced through the target: the new bytes, not a stale descriptor's */
		uint8_t obj2[500];
		tu_fill_random(obj2, sizeof(obj2), 8);
		ck_assert_int_eq(cairn_target_put(tg, name, obj2, sizeof(obj2)), 0);
		ck_assert_int_eq(cairn_target_get_range(tg, name, 400, 100, got), 0);
		ck_assert_mem_eq(got, obj2 + 400, 100);
		ck_assert_int_eq(cairn_target_get_range(tg, name, 900, 100, got), -ERANGE);
		/* deleted through the target: gone */
		ck_assert_int_eq(cairn_target_del(tg, name), 0);
		ck_assert_int_eq(cairn_target_get_range(tg, name, 0, 1, got), -ENOENT);
	}
}
END_TEST

START_TEST(test_missing_messages)
{
	cairn_buf b = CAIRN_BUF_INIT;
	uint64_t size;
	ck_assert_int_eq(cairn_target_get(tg, "index/0042", &b), -ENOENT);
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), tg->name));
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "index/0042"));
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "no such object"));
	ck_assert_uint_eq(b.len, 0);
	ck_assert_int_eq(cairn_target_stat(tg, "index/0042", &size), -ENOENT);
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "index/0042"));
	/* a path through a file is a missing object too */
	ck_assert_int_eq(cairn_target_put(tg, "config", "x", 1), 0);
	ck_assert_int_eq(cairn_target_stat(tg, "config/sub", &size), -ENOENT);
	ck_assert_int_eq(cairn_target_get(tg, "config/sub", &b), -ENOENT);
	/* get wants an empty buffer */
	cairn_buf_append(&b, "z", 1);
	ck_assert_int_eq(cairn_target_get(tg, "config", &b), -EINVAL);
	cairn_buf_free(&b);
}
END_TEST

/* Collects "name=size\n" lines; stops with -42 after `stop_after` names if set. */
struct collect {
	cairn_buf out;
	int n, stop_after;
};

static int collect_cb(void *payload, const char *name, uint64_t size)
{
	struct collect *c = payload;
	char line[1200];
	int n = snprintf(line, sizeof(line), "%s=%llu\n", name, (unsigned long long)size);
	cairn_buf_append(&c->out, line, (size_t)n);
	if (++c->n == c->stop_after)
		return -42;
	return 0;
}

/* List @p prefix into a NUL-terminated string (malloc'd) or NULL on failure. */
static char *list_str(cairn_target *t, const char *prefix)
{
	struct collect c = {CAIRN_BUF_INIT, 0, 0};
	int rc = cairn_target_list(t, prefix, collect_cb, &c);
	cairn_buf_put_u8(&c.out, 0);
	if (rc < 0) {
		cairn_buf_free(&c.out);
		return NULL;
	}
	return (char *)c.out.data;
}

START_TEST(test_list)
{
	static const char *names[] = {"data/ab/abcd", "data/ab/abce", "data/cd/cdef", "data/ab.x",
				      "index/0001",   "config",       "keys/k-1"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		ck_assert_int_eq(put_seeded(tg, names[i], i, i), 0);
	/* strays a list must skip: temp files, invalid names, symlinks, fifos */
	ck_assert_int_eq(tu_sh("cd '%s' && echo junk > data/ab/.abcd.tmp.0123456789abcdef && "
			       "echo junk > '.config.tmp.1' && echo junk > 'data/bad name' && "
			       "ln -s config data/link && mkfifo data/fifo && "
			       "mkdir -p empty/deeper",
			       dir),
			 0);

	char *s = list_str(tg, "");
	ck_assert_str_eq(s, "config=5\n"
			    "data/ab.x=3\n"
			    "data/ab/abcd=0\n"
			    "data/ab/abce=1\n"
			    "data/cd/cdef=2\n"
			    "index/0001=4\n"
			    "keys/k-1=6\n");
	free(s);
	s = list_str(tg, "data/");
	ck_assert_str_eq(s, "data/ab.x=3\ndata/ab/abcd=0\ndata/ab/abce=1\ndata/cd/cdef=2\n");
	free(s);
	s = list_str(tg, "data/ab/");
	ck_assert_str_eq(s, "data/ab/abcd=0\ndata/ab/abce=1\n");
	free(s);
	s = list_str(tg, "nope/");
	ck_assert_str_eq(s, ""); /* a missing prefix is an empty listing */
	free(s);
	s = list_str(tg, "config/"); /* a file, not a directory */
	ck_assert_str_eq(s, "");
	free(s);
	s = list_str(tg, "empty/");
	ck_assert_str_eq(s, "");
	free(s);

	/* a negative callback return stops the listing and is returned as is */
	struct collect c = {CAIRN_BUF_INIT, 0, 2};
	ck_assert_int_eq(cairn_target_list(tg, "", collect_cb, &c), -42);
	ck_assert_int_eq(c.n, 2);
	cairn_buf_free(&c.out);
	ck_assert_uint_eq(tg->stats.errors, 0);

	/* prefixes are "" or end in '/' */
	c = (struct collect){CAIRN_BUF_INIT, 0, 0};
	ck_assert_int_eq(cairn_target_list(tg, "data", collect_cb, &c), -EINVAL);
	ck_assert_int_eq(cairn_target_list(tg, "/", collect_cb, &c), -EINVAL);
	ck_assert_int_eq(cairn_target_list(tg, "../", collect_cb, &c), -EINVAL);
	ck_assert_int_eq(cairn_target_list(tg, "data//", collect_cb, &c), -EINVAL);
	ck_assert_int_eq(cairn_target_list(tg, NULL, collect_cb, &c), -EINVAL);
	ck_assert_int_eq(cairn_target_list(tg, "", NULL, &c), -EINVAL);
	ck_assert_int_eq(c.n, 0);
}
END_TEST

START_TEST(test_list_missing_root)
{
	cairn_target *t;
	char path[4200];
	snprintf(path, sizeof(path), "%s/not/yet", dir);
	ck_assert_int_eq(cairn_target_local_open(&t, path), 0);
	char *s = list_str(t, "");
	ck_assert_str_eq(s, "");
	free(s);
	ck_assert_int_eq(access(path, F_OK), -1); /* open and list create nothing */
	ck_assert_int_eq(cairn_target_put(t, "a/b", "hi", 2), 0);
	s = list_str(t, "");
	ck_assert_str_eq(s, "a/b=2\n");
	free(s);
	cairn_target_close(t);
}
END_TEST

START_TEST(test_del)
{
	ck_assert_int_eq(cairn_target_put(tg, "locks/l1", "x", 1), 0);
	ck_assert_int_eq(cairn_target_del(tg, "locks/l1"), 0);
	uint64_t size;
	ck_assert_int_eq(cairn_target_stat(tg, "locks/l1", &size), -ENOENT);
	ck_assert_int_eq(cairn_target_del(tg, "locks/l1"), -ENOENT);
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "locks/l1"));
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), tg->name));
	ck_assert_int_eq(cairn_target_del(tg, "locks"), -ENOENT); /* a directory */
	ck_assert_int_eq(cairn_target_del(tg, "never/was"), -ENOENT);
	ck_assert_uint_eq(tg->stats.dels, 1);
	ck_assert_uint_eq(tg->stats.errors, 0); /* -ENOENT is an answer, not an error */
}
END_TEST

START_TEST(test_names)
{
	static const char *good[] = {"a", "data/ab/abcdef", "A-Z_0.9", ".hidden", "a/...", "x..y"};
	static const char *bad[] = {"",   "../x", "/abs",   "a//b", "a b", "a/", ".",
				    "..", "a/.",  "a/../b", "a\\b", "a:b", "é",  "a\nb"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(cairn_target_name_ok(good[i]), "should be valid: '%s'", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(!cairn_target_name_ok(bad[i]), "should be invalid: '%s'", bad[i]);
		ck_assert_int_eq(cairn_target_put(tg, bad[i], "x", 1), -EINVAL);
		ck_assert_ptr_nonnull(strstr(cairn_error_last(), "invalid object name"));
	}
	ck_assert(!cairn_target_name_ok(NULL));
	ck_assert_int_eq(cairn_target_put(tg, NULL, "x", 1), -EINVAL);
	cairn_buf b = CAIRN_BUF_INIT;
	uint64_t size;
	ck_assert_int_eq(cairn_target_get(tg, "../etc/passwd", &b), -EINVAL);
	ck_assert_int_eq(cairn_target_stat(tg, "/etc/passwd", &size), -EINVAL);
	ck_assert_int_eq(cairn_target_del(tg, "a//b"), -EINVAL);

	char longname[1100];
	memset(longname, 'n', sizeof(longname));
	for (size_t i = 200; i < sizeof(longname); i += 201)
		longname[i] = '/';
	longname[1024] = 0;
	ck_assert(cairn_target_name_ok(longname));
	ck_assert_int_eq(cairn_target_put(tg, longname, "x", 1), 0);
	ck_assert_int_eq(count_tmp(dir), 0);
	longname[1024] = 'n';
	longname[1025] = 0;
	ck_assert(!cairn_target_name_ok(longname));

	/* a 255-byte segment: the temp name must still fit NAME_MAX */
	memset(longname, 's', 255);
	longname[255] = 0;
	ck_assert_int_eq(cairn_target_put(tg, longname, "x", 1), 0);
	ck_assert_int_eq(count_tmp(dir), 0);

	/* temp-file names are reserved */
	ck_assert_int_eq(cairn_target_put(tg, "data/.x.tmp.1", "x", 1), -EINVAL);
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "reserved"));
	ck_assert_uint_eq(tg->stats.puts, 2);
	ck_assert_uint_eq(tg->stats.errors, 0);
}
END_TEST

START_TEST(test_replace)
{
	ck_assert_int_eq(put_seeded(tg, "index/i", 3000, 1), 0);
	ck_assert_int_eq(put_seeded(tg, "index/i", 100, 2), 0);
	ck_assert(holds_seeded(tg, "index/i", 100, 2));
	ck_assert_int_eq(put_seeded(tg, "index/i", 0, 3), 0);
	ck_assert(holds_seeded(tg, "index/i", 0, 3));
	ck_assert_int_eq(count_tmp(dir), 0);
}
END_TEST

START_TEST(test_stats)
{
	cairn_buf b = CAIRN_BUF_INIT;
	uint8_t r[10];
	ck_assert_int_eq(put_seeded(tg, "a", 100, 1), 0);
	ck_assert_int_eq(put_seeded(tg, "b/c", 50, 2), 0);
	ck_assert_int_eq(cairn_target_get(tg, "a", &b), 0);
	ck_assert_int_eq(cairn_target_get_range(tg, "b/c", 5, 10, r), 0);
	ck_assert_int_eq(cairn_target_get_range(tg, "b/c", 45, 10, r), -ERANGE);
	char *s = list_str(tg, "");
	free(s);
	ck_assert_int_eq(cairn_target_del(tg, "a"), 0);
	ck_assert_uint_eq(tg->stats.puts, 2);
	ck_assert_uint_eq(tg->stats.bytes_written, 150);
	ck_assert_uint_eq(tg->stats.gets, 2);
	ck_assert_uint_eq(tg->stats.bytes_read, 110);
	ck_assert_uint_eq(tg->stats.lists, 1);
	ck_assert_uint_eq(tg->stats.dels, 1);
	ck_assert_uint_eq(tg->stats.errors, 1);
	cairn_buf_free(&b);
}
END_TEST

/* Concurrency ------------------------------------------------------------ */

#define NTHREADS 8
#define NPER 25

struct worker {
	pthread_t th;
	int id;
	int failures; /* failed ops */
	int torn;     /* reads that saw no complete version */
	int *stop;    /* readers: set (atomically) when to stop */
};

/* Writes NPER objects of its own into directories every thread shares. */
static void *distinct_writer(void *arg)
{
	struct worker *w = arg;
	char name[64];
	for (int i = 0; i < NPER; i++) {
		snprintf(name, sizeof(name), "data/%02x/w%d-%d", i % 5, w->id, i);
		if (put_seeded(tg, name, 1000 + (size_t)i * 37, (uint64_t)(w->id * 1000 + i)))
			w->failures++;
	}
	return NULL;
}

START_TEST(test_concurrent_distinct)
{
	struct worker w[NTHREADS];
	for (int i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){.id = i};
		ck_assert_int_eq(pthread_create(&w[i].th, NULL, distinct_writer, &w[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(w[i].th, NULL);
		ck_assert_int_eq(w[i].failures, 0);
	}
	char name[64];
	for (int id = 0; id < NTHREADS; id++)
		for (int i = 0; i < NPER; i++) {
			snprintf(name, sizeof(name), "data/%02x/w%d-%d", i % 5, id, i);
			ck_assert_msg(holds_seeded(tg, name, 1000 + (size_t)i * 37,
						   (uint64_t)(id * 1000 + i)),
				      "%s", name);
		}
	ck_assert_uint_eq(tg->stats.puts, NTHREADS * NPER);
	ck_assert_int_eq(count_tmp(dir), 0);
}
END_TEST

#define SAME_LEN (64 * 1024 + 3)

/* Writer w->id rewrites "shared/obj" with its own content, NPER times. */
static void *same_writer(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < NPER; i++)
		if (put_seeded(tg, "shared/obj", SAME_LEN, (uint64_t)w->id + 1))
			w->failures++;
	return NULL;
}

/* Reads "shared/obj" until told to stop: each read must be one whole version. */
static void *same_reader(void *arg)
{
	struct worker *w = arg;
	uint8_t *want = malloc(SAME_LEN);
	while (!__atomic_load_n(w->stop, __ATOMIC_ACQUIRE)) {
		cairn_buf b = CAIRN_BUF_INIT;
		int rc = cairn_target_get(tg, "shared/obj", &b);
		if (rc == 0) {
			int whole = 0;
			for (int id = 0; id < NTHREADS && !whole && b.len == SAME_LEN; id++) {
				tu_fill_random(want, SAME_LEN, (uint64_t)id + 1);
				whole = !memcmp(b.data, want, SAME_LEN);
			}
			w->torn += !whole;
		} else if (rc != -ENOENT) {
			w->failures++;
		}
		cairn_buf_free(&b);
	}
	free(want);
	return NULL;
}

START_TEST(test_concurrent_same)
{
	struct worker w[NTHREADS], r[2];
	int stop = 0;
	for (int i = 0; i < 2; i++) {
		r[i] = (struct worker){.id = i, .stop = &stop};
		ck_assert_int_eq(pthread_create(&r[i].th, NULL, same_reader, &r[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){.id = i};
		ck_assert_int_eq(pthread_create(&w[i].th, NULL, same_writer, &w[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(w[i].th, NULL);
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 2; i++)
		pthread_join(r[i].th, NULL);
	for (int i = 0; i < NTHREADS; i++)
		ck_assert_int_eq(w[i].failures, 0);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(r[i].failures, 0);
		ck_assert_int_eq(r[i].torn, 0);
	}
	int which = -1;
	for (int id = 0; id < NTHREADS; id++)
		if (holds_seeded(tg, "shared/obj", SAME_LEN, (uint64_t)id + 1))
			which = id;
	ck_assert_int_ge(which, 0);
	ck_assert_int_eq(count_tmp(dir), 0);
	char *s = list_str(tg, "");
	ck_assert_str_eq(s, "shared/obj=65539\n");
	free(s);
}
END_TEST

/* Refusals ---------------------------------------------------------------- */

/* Mount a tmpfs of @p size at @p path; 0, or -1 (with a note) if not permitted. */
static int mount_tmpfs(const char *path, const char *size)
{
	if (tu_sh("mount -t tmpfs -o size=%s,mode=0755 tmpfs '%s' 2>/dev/null", size, path)) {
		printf("note: cannot mount tmpfs at %s (not permitted?): test skipped\n", path);
		return -1;
	}
	return 0;
}

static void umount_tmpfs(const char *path)
{
	tu_sh("umount '%s' || umount -l '%s'", path, path);
}

START_TEST(test_readonly)
{
	char mnt[4200];
	snprintf(mnt, sizeof(mnt), "%s/ro", dir);
	ck_assert_int_eq(mkdir(mnt, 0755), 0);
	if (mount_tmpfs(mnt, "1m") < 0)
		return;
	/* nothing asserted until umount */
	cairn_target *t = NULL;
	int rc_open = cairn_target_local_open(&t, mnt);
	int rc_put1 = rc_open ? -1 : put_seeded(t, "data/keep", 1000, 9);
	int rc_remount = tu_sh("mount -o remount,ro '%s'", mnt);
	int rc_put2 = rc_open ? -1 : put_seeded(t, "data/new", 1000, 10);
	char msg[CAIRN_ERRMSG_MAX];
	snprintf(msg, sizeof(msg), "%s", cairn_error_last());
	int rc_put3 = rc_open ? -1 : put_seeded(t, "other/new", 10, 10); /* needs a mkdir */
	int kept = rc_open ? 0 : holds_seeded(t, "data/keep", 1000, 9);
	int rc_del = rc_open ? -1 : cairn_target_del(t, "data/keep");
	int ntmp_left = count_tmp(mnt);
	cairn_target_close(t);
	umount_tmpfs(mnt);

	ck_assert_int_eq(rc_open, 0);
	ck_assert_int_eq(rc_put1, 0);
	ck_assert_int_eq(rc_remount, 0);
	ck_assert_int_eq(rc_put2, -EROFS);
	ck_assert_msg(strstr(msg, "read-only") && strstr(msg, "data/new") && strstr(msg, mnt),
		      "message: %s", msg);
	ck_assert_int_eq(rc_put3, -EROFS);
	ck_assert(kept);
	ck_assert_int_eq(rc_del, -EROFS);
	ck_assert_int_eq(ntmp_left, 0);
}
END_TEST

START_TEST(test_eacces)
{
	/* root bypasses permission bits: try as nobody in a child process */
	ck_assert_int_eq(put_seeded(tg, "data/x", 10, 1), 0);
	ck_assert_int_eq(chmod(dir, 0755), 0);
	char sub[4200];
	snprintf(sub, sizeof(sub), "%s/data", dir);
	ck_assert_int_eq(chmod(sub, 0755), 0);
	fflush(stdout);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(77);
		int rc = put_seeded(tg, "data/y", 10, 2);
		const char *m = cairn_error_last();
		if (rc != -EACCES || !strstr(m, "permission denied") || !strstr(m, "data/y"))
			_exit(1);
		cairn_buf b = CAIRN_BUF_INIT;
		if (cairn_target_get(tg, "data/x", &b) != -EACCES) /* the file is 0600 */
			_exit(2);
		_exit(0);
	}
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	if (WEXITSTATUS(st) == 77) {
		printf("note: cannot switch to uid 65534: EACCES test skipped\n");
		return;
	}
	ck_assert_int_eq(WEXITSTATUS(st), 0);
	ck_assert_int_eq(count_tmp(dir), 0);
}
END_TEST

START_TEST(test_enospc)
{
	char mnt[4200];
	snprintf(mnt, sizeof(mnt), "%s/full", dir);
	ck_assert_int_eq(mkdir(mnt, 0755), 0);
	if (mount_tmpfs(mnt, "256k") < 0)
		return;
	/* nothing asserted until umount */
	cairn_target *t = NULL;
	int rc_open = cairn_target_local_open(&t, mnt);
	int rc_small = rc_open ? -1 : put_seeded(t, "data/small", 10000, 5);
	int rc_big = rc_open ? -1 : put_seeded(t, "data/big", MIB, 6);
	char msg[CAIRN_ERRMSG_MAX];
	snprintf(msg, sizeof(msg), "%s", cairn_error_last());
	int ntmp_left = count_tmp(mnt);
	uint64_t size = 0;
	int rc_stat = rc_open ? -1 : cairn_target_stat(t, "data/big", &size);
	int kept = rc_open ? 0 : holds_seeded(t, "data/small", 10000, 5);
	/* the space of the failed put is free again: a smaller one fits */
	int rc_after = rc_open ? -1 : put_seeded(t, "data/after", 100000, 7);
	uint64_t errors = rc_open ? 0 : t->stats.errors;
	cairn_target_close(t);
	umount_tmpfs(mnt);

	ck_assert_int_eq(rc_open, 0);
	ck_assert_int_eq(rc_small, 0);
	ck_assert_int_eq(rc_big, -ENOSPC);
	ck_assert_msg(strstr(msg, "no space") && strstr(msg, "data/big") && strstr(msg, mnt),
		      "message: %s", msg);
	ck_assert_int_eq(ntmp_left, 0);
	ck_assert_int_eq(rc_stat, -ENOENT);
	ck_assert(kept);
	ck_assert_int_eq(rc_after, 0);
	ck_assert_uint_eq(errors, 1);
}
END_TEST

/* Opening ----------------------------------------------------------------- */

START_TEST(test_open_address)
{
	cairn_target *t = NULL;
	char addr[4200];
	ck_assert_int_eq(cairn_target_open(&t, dir), 0);
	snprintf(addr, sizeof(addr), "local:%s", dir);
	ck_assert_str_eq(t->name, addr);
	ck_assert_str_eq(t->kind, "local");
	ck_assert_uint_eq(t->version, CAIRN_TARGET_VERSION);
	ck_assert_ptr_null(t->site);
	cairn_target_close(t);

	ck_assert_int_eq(cairn_target_open(&t, addr), 0);
	ck_assert_str_eq(t->name, addr);
	ck_assert_int_eq(cairn_target_put(t, "x", "1", 1), 0);
	cairn_target_close(t);

	snprintf(addr, sizeof(addr), "local:%s///", dir); /* trailing slashes dropped */
	ck_assert_int_eq(cairn_target_open(&t, addr), 0);
	ck_assert_str_eq(t->name + 6, dir);
	uint64_t size;
	ck_assert_int_eq(cairn_target_stat(t, "x", &size), 0);
	cairn_target_close(t);

	/* a relative directory is a local target made absolute */
	char cwd[4096], want_rel[4200];
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	ck_assert_int_eq(cairn_target_open(&t, "some/repo"), 0);
	snprintf(want_rel, sizeof(want_rel), "local:%s/some/repo", cwd);
	ck_assert_str_eq(t->name, want_rel);
	cairn_target_close(t);

	static const char *unknown[] = {"s3x://bucket", "", "ftp:/x"};
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		t = (cairn_target *)&t;
		ck_assert_int_eq(cairn_target_open(&t, unknown[i]), -EINVAL);
		ck_assert_ptr_null(t);
		char want[200];
		snprintf(want, sizeof(want),
			 "unknown repository address '%s' (expected /path or local:/path)",
			 unknown[i]);
		ck_assert_str_eq(cairn_error_last(), want);
	}
	ck_assert_int_eq(cairn_target_open(&t, "local:relative/dir"), -EINVAL);
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "absolute"));
	ck_assert_int_eq(cairn_target_open(&t, NULL), -EINVAL);

	/* a root that is a file is refused; one that is missing is fine */
	snprintf(addr, sizeof(addr), "%s/x", dir);
	ck_assert_int_eq(cairn_target_local_open(&t, addr), -ENOTDIR);
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), addr));
	snprintf(addr, sizeof(addr), "%s/missing", dir);
	ck_assert_int_eq(cairn_target_local_open(&t, addr), 0);
	cairn_target_close(t);
	ck_assert_int_eq(access(addr, F_OK), -1);
	cairn_target_close(NULL);
}
END_TEST

/* A bare backend: only close, plus a put that fails without a message. */
static int mute_put(cairn_target *t, const char *name, const void *data, size_t len)
{
	return -EIO;
}

static void bare_close(cairn_target *t)
{
}

START_TEST(test_wrapper_contract)
{
	cairn_target bare = {.version = CAIRN_TARGET_VERSION,
			     .kind = "bare",
			     .name = "bare:test",
			     .close = bare_close};
	cairn_buf b = CAIRN_BUF_INIT;
	uint64_t size;
	uint8_t r[4];
	ck_assert_int_eq(cairn_target_put(&bare, "a", "x", 1), -EOPNOTSUPP);
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "bare:test"));
	ck_assert_int_eq(cairn_target_get(&bare, "a", &b), -EOPNOTSUPP);
	ck_assert_int_eq(cairn_target_get_range(&bare, "a", 0, 4, r), -EOPNOTSUPP);
	ck_assert_int_eq(cairn_target_stat(&bare, "a", &size), -EOPNOTSUPP);
	ck_assert_int_eq(cairn_target_list(&bare, "", NULL, NULL), -EOPNOTSUPP);
	ck_assert_int_eq(cairn_target_del(&bare, "a"), -EOPNOTSUPP);
	ck_assert_int_eq(cairn_target_put(NULL, "a", "x", 1), -EINVAL);
	ck_assert_int_eq(cairn_target_put(tg, "a", NULL, 1), -EINVAL);
	ck_assert_int_eq(cairn_target_put(tg, "a", NULL, 0), 0);
	ck_assert_int_eq(cairn_target_get(tg, "a", NULL), -EINVAL);
	ck_assert_int_eq(cairn_target_get_range(tg, "a", 0, 1, NULL), -EINVAL);
	ck_assert_int_eq(cairn_target_stat(tg, "a", NULL), -EINVAL);

	/* a backend failing without a message gets one naming target and object */
	bare.put = mute_put;
	cairn_error_set(-EAGAIN, "stale message");
	ck_assert_int_eq(cairn_target_put(&bare, "data/q", "x", 1), -EIO);
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "bare:test"));
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "data/q"));
	ck_assert_ptr_null(strstr(cairn_error_last(), "stale"));
	ck_assert_uint_eq(bare.stats.errors, 1);
	ck_assert_uint_eq(bare.stats.puts, 0);
}
END_TEST

static Suite *targets_local_suite(void)
{
	Suite *s = suite_create("targets_local");
	TCase *tc = tcase_create("local");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_tmpfile_link);
	tcase_add_test(tc, test_get_range);
	tcase_add_test(tc, test_missing_messages);
	tcase_add_test(tc, test_list);
	tcase_add_test(tc, test_list_missing_root);
	tcase_add_test(tc, test_del);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_replace);
	tcase_add_test(tc, test_stats);
	tcase_add_test(tc, test_concurrent_distinct);
	tcase_add_test(tc, test_concurrent_same);
	tcase_add_test(tc, test_readonly);
	tcase_add_test(tc, test_eacces);
	tcase_add_test(tc, test_enospc);
	tcase_add_test(tc, test_open_address);
	tcase_add_test(tc, test_wrapper_contract);
	suite_add_tcase(s, tc);
	return s;
}

#include "tests/support/check_main.h"
CAIRN_CHECK_MAIN(targets_local_suite)
