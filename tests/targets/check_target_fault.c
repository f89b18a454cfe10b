/*
 * check_target_fault.c - the fault-injecting wrapper target: pass-through,
 * fail_after / fail_once numbering, ops_mask, delays, corrupted reads, run-time
 * reconfiguration, concurrent counting and its messages.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "targets/target.h"
#include "tests/support/testutil.h"

static char *dir;
static cairn_target *inner; /* owned by ft */
static cairn_target *ft;
static char expect_name[4200];

static void setup(void)
{
	dir = tu_mkdtemp("fault");
	ck_assert_int_eq(cairn_target_local_open(&inner, dir), 0);
	inner->site = cairn_xstrdup("site-a");
	ck_assert_int_eq(cairn_target_fault_wrap(&ft, inner, NULL), 0);
	snprintf(expect_name, sizeof(expect_name), "fault(local:%s)", dir);
}

static void teardown(void)
{
	cairn_target_close(ft);
	ft = inner = NULL;
	tu_rmrf(dir);
	free(dir);
	dir = NULL;
}

static int nop_cb(void *payload, const char *name, uint64_t size)
{
	(*(int *)payload)++;
	return 0;
}

START_TEST(test_passthrough)
{
	ck_assert_str_eq(ft->kind, "fault");
	ck_assert_str_eq(ft->name, expect_name);
	ck_assert_str_eq(ft->site, "site-a");
	ck_assert_uint_eq(ft->version, CAIRN_TARGET_VERSION);

	uint8_t data[3000], r[10];
	tu_fill_random(data, sizeof(data), 1);
	ck_assert_int_eq(cairn_target_put(ft, "data/a", data, sizeof(data)), 0);
	cairn_buf b = CAIRN_BUF_INIT;
	ck_assert_int_eq(cairn_target_get(ft, "data/a", &b), 0);
	ck_assert_uint_eq(b.len, sizeof(data));
	ck_assert_mem_eq(b.data, data, sizeof(data));
	ck_assert_int_eq(cairn_target_get_range(ft, "data/a", 1500, 10, r), 0);
	ck_assert_mem_eq(r, data + 1500, 10);
	uint64_t size;
	ck_assert_int_eq(cairn_target_stat(ft, "data/a", &size), 0);
	ck_assert_uint_eq(size, sizeof(data));
	int n = 0;
	ck_assert_int_eq(cairn_target_list(ft, "", nop_cb, &n), 0);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(cairn_target_del(ft, "data/a"), 0);

	/* inner failures pass through with the inner target's message */
	b.len = 0;
	ck_assert_int_eq(cairn_target_get(ft, "data/a", &b), -ENOENT);
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "data/a"));
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "no such object"));
	cairn_buf_free(&b);

	/* both layers keep their own counters */
	ck_assert_uint_eq(ft->stats.puts, 1);
	ck_assert_uint_eq(inner->stats.puts, 1);
	ck_assert_uint_eq(ft->stats.gets, 2);
	ck_assert_uint_eq(inner->stats.bytes_read, sizeof(data) + 10);
	ck_assert_uint_eq(ft->stats.lists, 1);
	ck_assert_uint_eq(ft->stats.dels, 1);
}
END_TEST

START_TEST(test_zeroed_opts_pass)
{
	cairn_fault_opts o;
	memset(&o, 0, sizeof(o)); /* fail_errno 0: no failures despite fail_after 0 */
	cairn_target_fault_set(ft, &o);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(cairn_target_put(ft, "x", "abc", 3), 0);
}
END_TEST

START_TEST(test_fail_after)
{
	cairn_fault_opts o = {.fail_errno = EIO, .fail_after = 3};
	cairn_target_fault_set(ft, &o);
	char name[32], want[4400];
	for (int i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "obj%d", i);
		int rc = cairn_target_put(ft, name, "abc", 3);
		if (i < 3) {
			ck_assert_int_eq(rc, 0);
			continue;
		}
		ck_assert_int_eq(rc, -EIO);
		snprintf(want, sizeof(want), "fault injected: put %s on %s", name, expect_name);
		ck_assert_str_eq(cairn_error_last(), want);
	}
	ck_assert_uint_eq(inner->stats.puts, 3);
	ck_assert_uint_eq(ft->stats.puts, 3);
	ck_assert_uint_eq(ft->stats.errors, 3);
	uint64_t size;
	ck_assert_int_eq(cairn_target_stat(ft, "obj3", &size), -EIO); /* every later op fails */

	/* set() restarts numbering: fail_after 0 fails the very first op */
	o = (cairn_fault_opts){.fail_errno = ETIMEDOUT, .fail_after = 0};
	cairn_target_fault_set(ft, &o);
	int rc = cairn_target_stat(ft, "obj0", &size);
	ck_assert_int_eq(rc, -ETIMEDOUT);
	ck_assert(cairn_err_retryable(rc));
	int n = 0;
	ck_assert_int_eq(cairn_target_list(ft, "", nop_cb, &n), -ETIMEDOUT);
	snprintf(want, sizeof(want), "fault injected: list '' on %s", expect_name);
	ck_assert_str_eq(cairn_error_last(), want);
	ck_assert_int_eq(cairn_target_del(ft, "obj0"), -ETIMEDOUT);
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "fault injected: del obj0"));

	/* fail_after -1 never fails; NULL options pass everything */
	o.fail_after = -1;
	cairn_target_fault_set(ft, &o);
	ck_assert_int_eq(cairn_target_stat(ft, "obj0", &size), 0);
	o.fail_after = 0;
	cairn_target_fault_set(ft, &o);
	ck_assert_int_eq(cairn_target_stat(ft, "obj0", &size), -ETIMEDOUT);
	cairn_target_fault_set(ft, NULL);
	ck_assert_int_eq(cairn_target_stat(ft, "obj0", &size), 0);
	ck_assert_int_eq(n, 0);
}
END_TEST

START_TEST(test_fail_once)
{
	cairn_fault_opts o = {.fail_errno = ENOSPC, .fail_after = 2, .fail_once = 1};
	cairn_target_fault_set(ft, &o);
	int rcs[6];
	for (int i = 0; i < 6; i++)
		rcs[i] = cairn_target_put(ft, "obj", "abc", 3);
	for (int i = 0; i < 6; i++)
		ck_assert_int_eq(rcs[i], i == 2 ? -ENOSPC : 0);
	ck_assert_uint_eq(inner->stats.puts, 5);
	ck_assert_uint_eq(ft->stats.errors, 1);
}
END_TEST

START_TEST(test_ops_mask)
{
	ck_assert_int_eq(cairn_target_put(ft, "obj", "abcdef", 6), 0);
	/* only gets (get and get_range) are faulted and numbered */
	cairn_fault_opts o = {.fail_errno = EIO, .fail_after = 1, .ops_mask = CAIRN_FAULT_OP_GET};
	cairn_target_fault_set(ft, &o);
	uint64_t size;
	uint8_t r[2];
	int n = 0;
	cairn_buf b = CAIRN_BUF_INIT;
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(cairn_target_put(ft, "obj", "abcdef", 6), 0);
		ck_assert_int_eq(cairn_target_stat(ft, "obj", &size), 0);
		ck_assert_int_eq(cairn_target_list(ft, "", nop_cb, &n), 0);
	}
	ck_assert_int_eq(cairn_target_get_range(ft, "obj", 0, 2, r), 0); /* get op 0 */
	ck_assert_int_eq(cairn_target_get(ft, "obj", &b), -EIO);         /* get op 1 */
	char want[4400];
	snprintf(want, sizeof(want), "fault injected: get obj on %s", expect_name);
	ck_assert_str_eq(cairn_error_last(), want);
	ck_assert_int_eq(cairn_target_get_range(ft, "obj", 0, 2, r), -EIO);
	snprintf(want, sizeof(want), "fault injected: get_range obj on %s", expect_name);
	ck_assert_str_eq(cairn_error_last(), want);
	ck_assert_int_eq(cairn_target_del(ft, "obj"), 0);

	/* several bits: puts and dels */
	o.ops_mask = CAIRN_FAULT_OP_PUT | CAIRN_FAULT_OP_DEL;
	o.fail_after = 0;
	cairn_target_fault_set(ft, &o);
	ck_assert_int_eq(cairn_target_put(ft, "obj", "x", 1), -EIO);
	ck_assert_int_eq(cairn_target_del(ft, "obj"), -EIO);
	ck_assert_int_eq(cairn_target_stat(ft, "obj", &size), -ENOENT); /* passes to inner */
	cairn_buf_free(&b);
}
END_TEST

/* Number of differing bytes of @p a and @p b; *at gets the last position. */
static size_t ndiff(const uint8_t *a, const uint8_t *b, size_t len, size_t *at)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		if (a[i] != b[i]) {
			n++;
			*at = i;
		}
	return n;
}

START_TEST(test_corrupt_reads)
{
	uint8_t data[1001], r[100];
	tu_fill_random(data, sizeof(data), 3);
	cairn_fault_opts o = {.corrupt_reads = 1, .fail_after = -1};
	cairn_target_fault_set(ft, &o);
	ck_assert_int_eq(cairn_target_put(ft, "obj", data, sizeof(data)), 0);

	cairn_buf b = CAIRN_BUF_INIT;
	size_t at = 0;
	ck_assert_int_eq(cairn_target_get(ft, "obj", &b), 0);
	ck_assert_uint_eq(b.len, sizeof(data));
	ck_assert_uint_eq(ndiff(b.data, data, sizeof(data), &at), 1);
	ck_assert_uint_eq(at, 500);
	ck_assert_uint_eq(b.data[at] ^ data[at], 0x01);

	ck_assert_int_eq(cairn_target_get_range(ft, "obj", 200, 100, r), 0);
	ck_assert_uint_eq(ndiff(r, data + 200, 100, &at), 1);
	ck_assert_uint_eq(at, 50);

	/* the store itself is intact: puts are not corrupted */
	b.len = 0;
	ck_assert_int_eq(cairn_target_get(inner, "obj", &b), 0);
	ck_assert_mem_eq(b.data, data, sizeof(data));

	/* empty results have nothing to flip */
	ck_assert_int_eq(cairn_target_put(ft, "empty", "", 0), 0);
	b.len = 0;
	ck_assert_int_eq(cairn_target_get(ft, "empty", &b), 0);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_int_eq(cairn_target_get_range(ft, "obj", 5, 0, r), 0);

	/* corruption obeys ops_mask */
	o.ops_mask = CAIRN_FAULT_OP_PUT;
	cairn_target_fault_set(ft, &o);
	b.len = 0;
	ck_assert_int_eq(cairn_target_get(ft, "obj", &b), 0);
	ck_assert_mem_eq(b.data, data, sizeof(data));
	cairn_buf_free(&b);
}
END_TEST

START_TEST(test_delay)
{
	cairn_fault_opts o = {.delay_ms = 60, .fail_after = -1};
	cairn_target_fault_set(ft, &o);
	uint64_t t0 = cairn_now_ns();
	ck_assert_int_eq(cairn_target_put(ft, "obj", "abc", 3), 0);
	uint64_t t1 = cairn_now_ns();
	ck_assert_uint_ge(t1 - t0, 60000000u);

	/* delays obey ops_mask; injected failures are delayed too */
	o.ops_mask = CAIRN_FAULT_OP_STAT;
	o.delay_ms = 1000;
	cairn_target_fault_set(ft, &o);
	t0 = cairn_now_ns();
	ck_assert_int_eq(cairn_target_put(ft, "obj", "abc", 3), 0);
	t1 = cairn_now_ns();
	ck_assert_uint_lt(t1 - t0, 500000000u);

	o = (cairn_fault_opts){.delay_ms = 30, .fail_after = 0, .fail_errno = EIO};
	cairn_target_fault_set(ft, &o);
	t0 = cairn_now_ns();
	ck_assert_int_eq(cairn_target_put(ft, "obj", "abc", 3), -EIO);
	t1 = cairn_now_ns();
	ck_assert_uint_ge(t1 - t0, 30000000u);
}
END_TEST

#define NTHREADS 8
#define NOPS 50

struct worker {
	pthread_t th;
	int id, ok, failed, other;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char name[32];
	for (int i = 0; i < NOPS; i++) {
		snprintf(name, sizeof(name), "w%d/o%d", w->id, i);
		int rc = cairn_target_put(ft, name, name, strlen(name));
		if (rc == 0)
			w->ok++;
		else if (rc == -EIO && strstr(cairn_error_last(), "fault injected: put w"))
			w->failed++; /* the message is this thread's own */
		else
			w->other++;
	}
	return NULL;
}

START_TEST(test_concurrent_count)
{
	cairn_fault_opts o = {.fail_errno = EIO, .fail_after = 100};
	cairn_target_fault_set(ft, &o);
	struct worker w[NTHREADS];
	for (int i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){.id = i};
		ck_assert_int_eq(pthread_create(&w[i].th, NULL, worker_main, &w[i]), 0);
	}
	int ok = 0, failed = 0;
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(w[i].th, NULL);
		ck_assert_int_eq(w[i].other, 0);
		ok += w[i].ok;
		failed += w[i].failed;
	}
	ck_assert_int_eq(ok, 100); /* exactly fail_after ops passed */
	ck_assert_int_eq(failed, NTHREADS * NOPS - 100);
	ck_assert_uint_eq(inner->stats.puts, 100);
	ck_assert_uint_eq(ft->stats.errors, NTHREADS * NOPS - 100);
}
END_TEST

/* A minimal inner target with only put and close. */
static int bare_put(cairn_target *t, const char *name, const void *data, size_t len)
{
	return 0;
}

static void bare_close(cairn_target *t)
{
	free(t->name);
	free(t);
}

START_TEST(test_wrap_misc)
{
	cairn_target *bare = cairn_xcalloc(1, sizeof(*bare));
	bare->version = CAIRN_TARGET_VERSION;
	bare->kind = "bare";
	bare->name = cairn_xstrdup("bare:x");
	bare->put = bare_put;
	bare->close = bare_close;
	cairn_target *f;
	ck_assert_int_eq(cairn_target_fault_wrap(&f, bare, NULL), 0);
	ck_assert_str_eq(f->name, "fault(bare:x)");
	ck_assert_ptr_null(f->site);
	ck_assert_int_eq(cairn_target_put(f, "a", "x", 1), 0);
	/* the wrapper offers only what the inner target offers */
	uint64_t size;
	ck_assert_int_eq(cairn_target_stat(f, "a", &size), -EOPNOTSUPP);
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "fault(bare:x)"));
	ck_assert_ptr_null(f->get);
	ck_assert_ptr_null(f->list);
	cairn_target_close(f); /* closes bare too (ASan checks the leak) */

	ck_assert_int_eq(cairn_target_fault_wrap(&f, NULL, NULL), -EINVAL);
	/* fault_set on another kind of target is ignored */
	cairn_fault_opts o = {.fail_errno = EIO, .fail_after = 0};
	cairn_target_fault_set(inner, &o);
	cairn_target_fault_set(NULL, &o);
	ck_assert_int_eq(cairn_target_put(inner, "a", "x", 1), 0);

	/* wrap with options */
	cairn_target *l, *g;
	ck_assert_int_eq(cairn_target_local_open(&l, dir), 0);
	ck_assert_int_eq(cairn_target_fault_wrap(&g, l, &o), 0);
	ck_assert_int_eq(cairn_target_put(g, "a", "x", 1), -EIO);
	/* wrapping a wrapper */
	cairn_target *gg;
	ck_assert_int_eq(cairn_target_fault_wrap(&gg, g, NULL), 0);
	char want[4400];
	snprintf(want, sizeof(want), "fault(fault(local:%s))", dir);
	ck_assert_str_eq(gg->name, want);
	ck_assert_int_eq(cairn_target_put(gg, "a", "x", 1), -EIO);
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "fault injected: put a on fault(local:"));
	cairn_target_close(gg);
}
END_TEST

/*
 * A successful call must not wipe the message of an earlier failure: callers
 * clean up (delete a lock) after a failure and then report it. The wrappers
 * used to clear the message on every call.
 */
START_TEST(test_success_keeps_message)
{
	cairn_error_set(-EIO, "the earlier failure");
	ck_assert_int_eq(cairn_target_put(ft, "keep/a", "x", 1), 0);
	ck_assert_int_eq(cairn_target_del(ft, "keep/a"), 0);
	ck_assert_str_eq(cairn_error_last(), "the earlier failure");
	/* a failing call still gets a message naming target and object */
	ck_assert_int_eq(cairn_target_del(ft, "keep/missing"), -ENOENT);
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "keep/missing"));
}
END_TEST

static Suite *targets_fault_suite(void)
{
	Suite *s = suite_create("targets_fault");
	TCase *tc = tcase_create("fault");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_passthrough);
	tcase_add_test(tc, test_success_keeps_message);
	tcase_add_test(tc, test_zeroed_opts_pass);
	tcase_add_test(tc, test_fail_after);
	tcase_add_test(tc, test_fail_once);
	tcase_add_test(tc, test_ops_mask);
	tcase_add_test(tc, test_corrupt_reads);
	tcase_add_test(tc, test_delay);
	tcase_add_test(tc, test_concurrent_count);
	tcase_add_test(tc, test_wrap_misc);
	suite_add_tcase(s, tc);
	return s;
}

#include "tests/support/check_main.h"
CAIRN_CHECK_MAIN(targets_fault_suite)
