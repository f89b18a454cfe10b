/*
 * check_target_s3.c - the S3 target (targets/s3.c) against a real radosgw and
 * against a fake HTTP server inside this program.
 *
 * Offline cases (always run): libs3 missing at run time, address parsing
 * and naming, missing credentials, the 5 GiB single-PUT limit, a closed port
 * (fails fast), and a fake server that answers 503, 500 with an S3 error
 * body, a body cut short, or nothing at all (the deadline).
 *
 * Online cases need CAIRN_TEST_S3_ENDPOINT (http://HOST:PORT),
 * AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, as written to DIR/env by
 * scripts/ceph-start.sh DIR. Without them they print "SKIP: no test S3
 * server" and pass, unless CAIRN_REQUIRE_ONLINE=1. Each run uses a bucket of
 * its own (made by the first put, which also tests bucket creation) and each
 * case a prefix of its own. With CAIRN_TEST_RGW_PID set, one case stops
 * radosgw with SIGSTOP for about 7 s (and always resumes it with SIGCONT) to
 * check that a hung server gives -ETIMEDOUT instead of a hang: other clients
 * of that radosgw stall meanwhile (SIGTERM would cost the shared cluster).
 *
 * It prints the time of a 16 MiB PUT and GET (best of 3).
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "targets/target.h"
#include "tests/support/testutil.h"

#define MIB (1024 * 1024)

static const char *endpoint; /* CAIRN_TEST_S3_ENDPOINT, or NULL: offline only */
static char bucket[64];      /* this run's bucket */
static cairn_target *tg;     /* online cases: bucket/<unique prefix> */
static char prefix[64];

static double secs_since(uint64_t t0)
{
	return (double)(cairn_now_ns() - t0) / 1e9;
}

/* Open this run's bucket under @p pfx with the given knobs (secret NULL: env). */
static cairn_target *open_tg(const char *pfx, unsigned timeout_s, int retries, const char *secret)
{
	cairn_s3_opts o = {NULL, secret, timeout_s, retries};
	cairn_target *t = NULL;
	int rc = cairn_target_s3_open(&t, endpoint, bucket, pfx, &o);
	ck_assert_msg(rc == 0, "open: %d %s", rc, cairn_error_last());
	return t;
}

static void setup(void)
{
	snprintf(prefix, sizeof(prefix), "case-%llx", (unsigned long long)cairn_now_ns());
	tg = open_tg(prefix, 0, 0, NULL);
}

static void teardown(void)
{
	cairn_target_close(tg);
	tg = NULL;
}

static int put_seeded(cairn_target *t, const char *name, size_t len, uint64_t seed)
{
	uint8_t *p = malloc(len ? len : 1);
	tu_fill_random(p, len, seed);
	int rc = cairn_target_put(t, name, p, len);
	free(p);
	return rc;
}

static int holds_seeded(cairn_target *t, const char *name, size_t len, uint64_t seed)
{
	cairn_buf b = CAIRN_BUF_INIT;
	uint8_t *p = malloc(len ? len : 1);
	tu_fill_random(p, len, seed);
	int rc = cairn_target_get(t, name, &b);
	int ok = rc == 0 && b.len == len && (len == 0 || !memcmp(b.data, p, len));
	if (!ok)
		fprintf(stderr, "holds_seeded %s: rc %d len %zu (want %zu): %s\n", name, rc, b.len,
			len, cairn_error_last());
	free(p);
	cairn_buf_free(&b);
	return ok;
}

/* Online cases -------------------------------------------------------- */

START_TEST(test_roundtrip)
{
	static const size_t sizes[] = {0, 1, 4096, 16 * MIB};
	char name[64];
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		snprintf(name, sizeof(name), "data/%02zx/obj-%zu", i, sizes[i]);
		ck_assert_msg(put_seeded(tg, name, sizes[i], i + 1) == 0, "%s", cairn_error_last());
		ck_assert(holds_seeded(tg, name, sizes[i], i + 1));
		uint64_t size = 12345;
		ck_assert_int_eq(cairn_target_stat(tg, name, &size), 0);
		ck_assert_uint_eq(size, sizes[i]);
	}
	/* 16 MiB PUT and GET timed alone (best of 3) */
	uint8_t *big = malloc(16 * MIB);
	tu_fill_random(big, 16 * MIB, 42);
	double best_put = 1e9, best_get = 1e9;
	for (int r = 0; r < 3; r++) {
		uint64_t t0 = cairn_now_ns();
		ck_assert_int_eq(cairn_target_put(tg, "data/big", big, 16 * MIB), 0);
		double el = secs_since(t0);
		best_put = el < best_put ? el : best_put;
		cairn_buf b = CAIRN_BUF_INIT;
		t0 = cairn_now_ns();
		ck_assert_int_eq(cairn_target_get(tg, "data/big", &b), 0);
		el = secs_since(t0);
		best_get = el < best_get ? el : best_get;
		ck_assert_uint_eq(b.len, 16 * MIB);
		ck_assert_mem_eq(b.data, big, 16 * MIB);
		cairn_buf_free(&b);
	}
	printf("s3 16 MiB (best of 3): PUT %.3f s = %.0f MiB/s, GET %.3f s = %.0f MiB/s\n",
	       best_put, 16 / best_put, best_get, 16 / best_get);
	fflush(stdout);
	free(big);
	ck_assert_int_eq(cairn_target_del(tg, "data/big"), 0);

	/* a put replaces */
	ck_assert_int_eq(put_seeded(tg, "data/00/obj-0", 3, 99), 0);
	ck_assert(holds_seeded(tg, "data/00/obj-0", 3, 99));
	ck_assert_uint_eq(tg->stats.puts, 8);
	ck_assert_uint_eq(tg->stats.errors, 0);
}
END_TEST

START_TEST(test_get_range)
{
	uint8_t obj[100000], got[6000];
	tu_fill_random(obj, sizeof(obj), 7);
	ck_assert_int_eq(cairn_target_put(tg, "packs/p1", obj, sizeof(obj)), 0);

	ck_assert_int_eq(cairn_target_get_range(tg, "packs/p1", 1000, 5000, got), 0);
	ck_assert_mem_eq(got, obj + 1000, 5000);
	ck_assert_int_eq(cairn_target_get_range(tg, "packs/p1", 0, 1, got), 0);
	ck_assert_uint_eq(got[0], obj[0]);
	ck_assert_int_eq(cairn_target_get_range(tg, "packs/p1", 99999, 1, got), 0);
	ck_assert_uint_eq(got[0], obj[99999]);
	ck_assert_int_eq(cairn_target_get_range(tg, "packs/p1", 98000, 2000, got), 0); /* at end */
	ck_assert_mem_eq(got, obj + 98000, 2000);
	ck_assert_int_eq(cairn_target_get_range(tg, "packs/p1", 100000, 0, got), 0);
	ck_assert_int_eq(cairn_target_get_range(tg, "packs/p1", 5, 0, got), 0);

	/* past the end: partly (206 with fewer bytes) and wholly (416) */
	ck_assert_int_eq(cairn_target_get_range(tg, "packs/p1", 99990, 20, got), -ERANGE);
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "packs/p1"));
	ck_assert_int_eq(cairn_target_get_range(tg, "packs/p1", 100000, 1, got), -ERANGE);
	ck_assert_int_eq(cairn_target_get_range(tg, "packs/p1", 200000, 10, got), -ERANGE);
	ck_assert_int_eq(cairn_target_get_range(tg, "packs/p1", 100001, 0, got), -ERANGE);
	ck_assert_int_eq(cairn_target_get_range(tg, "packs/nope", 0, 1, got), -ENOENT);
	ck_assert_int_eq(cairn_target_get_range(tg, "packs/nope", 0, 0, got), -ENOENT);
	ck_assert_uint_eq(tg->stats.errors, 4); /* the -ERANGEs; -ENOENT is an answer */
}
END_TEST

START_TEST(test_missing)
{
	cairn_buf b = CAIRN_BUF_INIT;
	uint64_t size;
	ck_assert_int_eq(cairn_target_get(tg, "index/0042", &b), -ENOENT);
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), tg->name));
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "GET index/0042"));
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "ErrorNoSuchKey"));
	ck_assert_uint_eq(b.len, 0);
	ck_assert_int_eq(cairn_target_stat(tg, "index/0042", &size), -ENOENT);
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "index/0042"));
	ck_assert_int_eq(cairn_target_del(tg, "index/0042"), -ENOENT);
	ck_assert_uint_eq(tg->stats.errors, 0);
	cairn_buf_free(&b);
}
END_TEST

/* Counts names; checks they come sorted and with size == last digit % 7. */
struct counter {
	int n, bad, stop_after;
	char last[1100];
};

static int count_cb(void *payload, const char *name, uint64_t size)
{
	struct counter *c = payload;
	if (strcmp(c->last, name) >= 0)
		c->bad++;
	snprintf(c->last, sizeof(c->last), "%s", name);
	const char *d = strrchr(name, '-');
	if (d && size != (uint64_t)(atoi(d + 1) % 7))
		c->bad++;
	if (++c->n == c->stop_after)
		return -42;
	return 0;
}

START_TEST(test_missing_bucket)
{
	/* a bucket of its own: reads find nothing, the first put makes it */
	char b2[80];
	snprintf(b2, sizeof(b2), "%.40s-mk", bucket);
	cairn_s3_opts o = {0};
	cairn_target *t;
	ck_assert_int_eq(cairn_target_s3_open(&t, endpoint, b2, NULL, &o), 0);
	cairn_buf b = CAIRN_BUF_INIT;
	uint64_t size;
	ck_assert_int_eq(cairn_target_get(t, "config", &b), -ENOENT);
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "NoSuchBucket"));
	ck_assert_int_eq(cairn_target_stat(t, "config", &size), -ENOENT);
	struct counter c = {0};
	ck_assert_int_eq(cairn_target_list(t, "", count_cb, &c), 0);
	ck_assert_int_eq(c.n, 0);
	ck_assert_int_eq(put_seeded(t, "config", 10, 3), 0);
	ck_assert(holds_seeded(t, "config", 10, 3));
	ck_assert_int_eq(cairn_target_del(t, "config"), 0);
	cairn_target_close(t);
	cairn_buf_free(&b);
}
END_TEST

#define NMANY 1100
#define NTHREADS 8

struct many_arg {
	cairn_target *t;
	int first, step, fails;
};

static void *put_many(void *arg)
{
	struct many_arg *a = arg;
	char name[64];
	for (int i = a->first; i < NMANY; i += a->step) {
		snprintf(name, sizeof(name), "many/%02x/obj-%05d", i % 3, i);
		if (put_seeded(a->t, name, (size_t)(i % 7), (uint64_t)i) < 0)
			a->fails++;
	}
	return NULL;
}

START_TEST(test_list_paging)
{
	pthread_t th[NTHREADS];
	struct many_arg a[NTHREADS];
	uint64_t t0 = cairn_now_ns();
	for (int i = 0; i < NTHREADS; i++) {
		a[i] = (struct many_arg){tg, i, NTHREADS, 0};
		ck_assert_int_eq(pthread_create(&th[i], NULL, put_many, &a[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(a[i].fails, 0);
	}
	printf("s3: %d small puts from %d threads in %.2f s\n", NMANY, NTHREADS, secs_since(t0));
	fflush(stdout);
	ck_assert_int_eq(put_seeded(tg, "manyx", 1, 1), 0);     /* not under many/ */
	ck_assert_int_eq(put_seeded(tg, "other/a-0", 0, 1), 0); /* nor this */

	struct counter c = {0};
	t0 = cairn_now_ns();
	ck_assert_int_eq(cairn_target_list(tg, "many/", count_cb, &c), 0);
	printf("s3: listed %d objects in %.2f s\n", c.n, secs_since(t0));
	fflush(stdout);
	ck_assert_int_eq(c.n, NMANY);
	ck_assert_int_eq(c.bad, 0);

	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(cairn_target_list(tg, "many/01/", count_cb, &c), 0);
	ck_assert_int_eq(c.n, (NMANY + 1) / 3); /* i % 3 == 1 */
	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(cairn_target_list(tg, "", count_cb, &c), 0);
	ck_assert_int_eq(c.n, NMANY + 2);
	ck_assert_int_eq(c.bad, 0);
	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(cairn_target_list(tg, "nothing/", count_cb, &c), 0);
	ck_assert_int_eq(c.n, 0);

	/* a callback stops the listing, also on a later page */
	memset(&c, 0, sizeof(c));
	c.stop_after = 1050;
	ck_assert_int_eq(cairn_target_list(tg, "many/", count_cb, &c), -42);
	ck_assert_int_eq(c.n, 1050);

	/* another prefix of the same bucket sees none of it */
	cairn_target *t2 = open_tg("elsewhere", 0, 0, NULL);
	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(cairn_target_list(t2, "", count_cb, &c), 0);
	ck_assert_int_eq(c.n, 0);
	cairn_target_close(t2);
}
END_TEST

START_TEST(test_del)
{
	ck_assert_int_eq(put_seeded(tg, "locks/l1", 10, 1), 0);
	ck_assert_int_eq(put_seeded(tg, "locks/l2", 10, 2), 0);
	ck_assert_int_eq(cairn_target_del(tg, "locks/l1"), 0);
	uint64_t size;
	ck_assert_int_eq(cairn_target_stat(tg, "locks/l1", &size), -ENOENT);
	ck_assert_int_eq(cairn_target_del(tg, "locks/l1"), -ENOENT);
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "locks/l1"));
	struct counter c = {0};
	ck_assert_int_eq(cairn_target_list(tg, "locks/", count_cb, &c), 0);
	ck_assert_int_eq(c.n, 1);
	ck_assert_str_eq(c.last, "locks/l2");
	ck_assert_uint_eq(tg->stats.dels, 1);
}
END_TEST

START_TEST(test_wrong_secret)
{
	ck_assert_int_eq(put_seeded(tg, "keys/k1", 10, 1), 0);
	cairn_target *bad = open_tg(prefix, 0, 0, "not-the-secret");
	cairn_buf b = CAIRN_BUF_INIT;
	uint64_t size;
	uint64_t t0 = cairn_now_ns();
	ck_assert_int_eq(put_seeded(bad, "keys/k2", 10, 1), -EACCES);
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "SignatureDoesNotMatch"));
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "PUT keys/k2"));
	ck_assert_int_eq(cairn_target_get(bad, "keys/k1", &b), -EACCES);
	ck_assert_int_eq(cairn_target_stat(bad, "keys/k1", &size), -EACCES);
	struct counter c = {0};
	ck_assert_int_eq(cairn_target_list(bad, "", count_cb, &c), -EACCES);
	ck_assert_int_eq(cairn_target_del(bad, "keys/k1"), -EACCES);
	ck_assert_msg(secs_since(t0) < 2, "refusals are not retried");
	cairn_target_close(bad);

	/* an unknown access key */
	cairn_s3_opts o = {"NOSUCHACCESSKEY", "x", 0, 0};
	ck_assert_int_eq(cairn_target_s3_open(&bad, endpoint, bucket, prefix, &o), 0);
	ck_assert_int_eq(cairn_target_get(bad, "keys/k1", &b), -EACCES);
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "InvalidAccessKeyId"));
	cairn_target_close(bad);
	ck_assert(holds_seeded(tg, "keys/k1", 10, 1));
	cairn_buf_free(&b);
}
END_TEST

struct conc_arg {
	cairn_target *t;
	int id, fails;
};

static void *conc_put(void *arg)
{
	struct conc_arg *a = arg;
	char name[64];
	for (int i = 0; i < 12; i++) {
		snprintf(name, sizeof(name), "conc/t%d/o%02d", a->id, i);
		size_t len = (size_t)((a->id * 12 + i) * 40961 % (768 * 1024));
		if (put_seeded(a->t, name, len, (uint64_t)(a->id * 100 + i)) < 0) {
			fprintf(stderr, "conc put: %s\n", cairn_error_last());
			a->fails++;
		}
	}
	for (int i = 0; i < 12; i++) {
		snprintf(name, sizeof(name), "conc/t%d/o%02d",
			 (a->id + 1) % NTHREADS, i); /* a neighbour's, as it lands */
		uint64_t size;
		int rc = cairn_target_stat(a->t, name, &size);
		if (rc < 0 && rc != -ENOENT)
			a->fails++;
	}
	return NULL;
}

START_TEST(test_concurrent)
{
	pthread_t th[NTHREADS];
	struct conc_arg a[NTHREADS];
	uint64_t t0 = cairn_now_ns();
	for (int i = 0; i < NTHREADS; i++) {
		a[i] = (struct conc_arg){tg, i, 0};
		ck_assert_int_eq(pthread_create(&th[i], NULL, conc_put, &a[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(a[i].fails, 0);
	}
	printf("s3: %d threads x 12 puts (up to 768 KiB) in %.2f s\n", NTHREADS, secs_since(t0));
	char name[64];
	for (int id = 0; id < NTHREADS; id++)
		for (int i = 0; i < 12; i++) {
			snprintf(name, sizeof(name), "conc/t%d/o%02d", id, i);
			size_t len = (size_t)((id * 12 + i) * 40961 % (768 * 1024));
			ck_assert(holds_seeded(tg, name, len, (uint64_t)(id * 100 + i)));
		}
	ck_assert_uint_eq(tg->stats.puts, NTHREADS * 12);
}
END_TEST

START_TEST(test_open_address_online)
{
	char addr[300];
	snprintf(addr, sizeof(addr), "s3:%s/%s/%s/", endpoint, bucket, prefix);
	cairn_target *t;
	ck_assert_int_eq(cairn_target_open(&t, addr), 0);
	ck_assert_str_eq(t->kind, "s3");
	ck_assert_str_eq(t->name, tg->name);
	ck_assert_int_eq(put_seeded(t, "config", 77, 5), 0);
	ck_assert(holds_seeded(tg, "config", 77, 5)); /* same objects */
	cairn_target_close(t);
}
END_TEST

/* radosgw hung (SIGSTOP): a request gives up after timeout_s, then all is well again. */
START_TEST(test_hung_server)
{
	const char *p = getenv("CAIRN_TEST_RGW_PID");
	pid_t pid = p ? (pid_t)atoi(p) : 0;
	if (pid <= 0) {
		printf("s3: CAIRN_TEST_RGW_PID unset: hung-server case skipped\n");
		return;
	}
	ck_assert_int_eq(put_seeded(tg, "hung/a", 1000, 1), 0);
	cairn_target *t3 = open_tg(prefix, 3, 0, NULL);
	cairn_buf b = CAIRN_BUF_INIT;
	uint8_t *big = malloc(4 * MIB);
	tu_fill_random(big, 4 * MIB, 3);

	if (kill(pid, SIGSTOP) < 0) {
		printf("s3: cannot stop radosgw (pid %d): %s: case skipped\n", (int)pid,
		       strerror(errno));
		free(big);
		cairn_target_close(t3);
		return;
	}
	/* nothing may fail between SIGSTOP and SIGCONT */
	uint64_t t0 = cairn_now_ns();
	int rc_get = cairn_target_get(t3, "hung/a", &b);
	double el_get = secs_since(t0);
	char msg_get[CAIRN_ERRMSG_MAX];
	snprintf(msg_get, sizeof(msg_get), "%s", cairn_error_last());
	t0 = cairn_now_ns();
	int rc_put = cairn_target_put(t3, "hung/b", big, 4 * MIB);
	double el_put = secs_since(t0);
	kill(pid, SIGCONT);

	printf("s3 hung server: get %d after %.2f s (%s); put %d after %.2f s\n", rc_get, el_get,
	       msg_get, rc_put, el_put);
	ck_assert_int_eq(rc_get, -ETIMEDOUT);
	ck_assert(el_get >= 2.5 && el_get < 7);
	ck_assert_ptr_nonnull(strstr(msg_get, "hung/a"));
	ck_assert_int_eq(rc_put, -ETIMEDOUT);
	ck_assert(el_put >= 2.5 && el_put < 7);

	/* radosgw resumes; the target works again (the default timeout is 30 s) */
	cairn_buf_free(&b);
	ck_assert(holds_seeded(tg, "hung/a", 1000, 1));
	ck_assert_int_eq(cairn_target_put(t3, "hung/b", big, 4 * MIB), 0);
	free(big);
	cairn_target_close(t3);
}
END_TEST

/* Offline cases ------------------------------------------------------- */

/* A TCP port on 127.0.0.1 where nothing listens (bound, then closed). */
static int closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static cairn_target *open_fake(int port, unsigned timeout_s, int retries)
{
	char ep[64];
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", port);
	cairn_s3_opts o = {"AKFAKE", "SKFAKE", timeout_s, retries};
	cairn_target *t = NULL;
	ck_assert_int_eq(cairn_target_s3_open(&t, ep, "fake-bucket", "pfx", &o), 0);
	return t;
}

START_TEST(test_open_address)
{
	setenv("AWS_ACCESS_KEY_ID", "AK", 0);
	setenv("AWS_SECRET_ACCESS_KEY", "SK", 0);
	static const struct {
		const char *addr, *name;
	} good[] = {
		{"s3:http://127.0.0.1:9/bucket-x/a/b", "s3:http://127.0.0.1:9/bucket-x/a/b"},
		{"s3:http://127.0.0.1:9/bucket-x/a/b/", "s3:http://127.0.0.1:9/bucket-x/a/b"},
		{"s3:http://127.0.0.1:9/bucket-x", "s3:http://127.0.0.1:9/bucket-x"},
		{"s3:http://127.0.0.1:9/bucket-x/", "s3:http://127.0.0.1:9/bucket-x"},
		{"s3:https://s3.example.com/bkt.1", "s3:https://s3.example.com/bkt.1"},
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		cairn_target *t = NULL;
		int rc = cairn_target_open(&t, good[i].addr);
		ck_assert_msg(rc == 0, "%s: %s", good[i].addr, cairn_error_last());
		ck_assert_str_eq(t->kind, "s3");
		ck_assert_str_eq(t->name, good[i].name);
		cairn_target_close(t);
	}
	static const char *bad[] = {
		"s3:",		       "s3:ftp://h/bkt",	"s3:http://h",
		"s3:http://h/",	       "s3:http:///bkt",	"s3:http://h//bkt",
		"s3:http://h/B_!x",    "s3:http://h/ab",	"s3:http://h/bkt/../x",
		"s3:http://h/bkt/a//b", "s3:http://h/bkt/sp ace", "s3:http://us@er:pw@h/bkt",
		"s3:bkt",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cairn_target *t = (cairn_target *)1;
		int rc = cairn_target_open(&t, bad[i]);
		ck_assert_msg(rc == -EINVAL, "%s: %d", bad[i], rc);
		ck_assert_ptr_null(t);
		ck_assert_str_ne(cairn_error_last(), "");
	}
	/* no credentials (the environment is restored: CK_FORK=no runs in one process) */
	char *saved = strdup(getenv("AWS_ACCESS_KEY_ID"));
	unsetenv("AWS_ACCESS_KEY_ID");
	cairn_target *t = NULL;
	int rc = cairn_target_open(&t, "s3:http://127.0.0.1:9/bucket-x");
	char msg[CAIRN_ERRMSG_MAX];
	snprintf(msg, sizeof(msg), "%s", cairn_error_last());
	setenv("AWS_ACCESS_KEY_ID", saved, 1);
	free(saved);
	ck_assert_int_eq(rc, -EINVAL);
	ck_assert_ptr_nonnull(strstr(msg, "AWS_ACCESS_KEY_ID"));
}
END_TEST

START_TEST(test_too_big)
{
	cairn_target *t = open_fake(closed_port(), 0, 0);
	static const char one = 'x';
	/* refused before any byte is read or sent */
	ck_assert_int_eq(cairn_target_put(t, "data/big", &one, ((size_t)5 << 30) + 1), -EFBIG);
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "5 GiB"));
	cairn_target_close(t);
}
END_TEST

START_TEST(test_dead_server)
{
	cairn_target *t = open_fake(closed_port(), 0, 0);
	cairn_buf b = CAIRN_BUF_INIT;
	uint64_t t0 = cairn_now_ns();
	ck_assert_int_eq(cairn_target_get(t, "config", &b), -ECONNREFUSED);
	double el = secs_since(t0);
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "FailedToConnect"));
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "3 attempts"));
	ck_assert_msg(el > 0.3 && el < 3, "%.2f s", el);
	t0 = cairn_now_ns();
	ck_assert_int_eq(cairn_target_put(t, "config", "abc", 3), -ECONNREFUSED);
	ck_assert(cairn_err_retryable(-ECONNREFUSED));
	ck_assert_msg(secs_since(t0) < 3, "%.2f s", secs_since(t0));
	cairn_target_close(t);
	cairn_buf_free(&b);
}
END_TEST

/* The fake server: one thread, one connection at a time. */
enum fake_mode { FAKE_503, FAKE_500, FAKE_SHORT, FAKE_HANG };

struct fake {
	int lfd, port, stop[2];
	enum fake_mode mode;
	int nreq;
	pthread_t th;
};

static void fake_serve(struct fake *f, int c)
{
	char req[8192];
	size_t n = 0;
	while (n < sizeof(req) - 1) { /* the request head (no body: GETs only) */
		struct pollfd p = {c, POLLIN, 0};
		if (poll(&p, 1, 5000) <= 0)
			return;
		ssize_t r = read(c, req + n, sizeof(req) - 1 - n);
		if (r <= 0)
			return;
		n += (size_t)r;
		req[n] = 0;
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	__atomic_fetch_add(&f->nreq, 1, __ATOMIC_SEQ_CST);
	static const char r503[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
				   "Connection: close\r\n\r\n";
	static const char body500[] = "<?xml version=\"1.0\"?><Error><Code>InternalError</Code>"
				      "<Message>fake trouble</Message></Error>";
	static const char rshort[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n"
				     "Connection: close\r\n\r\n"
				     "0123456789012345678901234567890123456789";
	char buf[512];
	switch (f->mode) {
	case FAKE_503:
		(void)!write(c, r503, sizeof(r503) - 1);
		break;
	case FAKE_500:
		snprintf(buf, sizeof(buf),
			 "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
			 sizeof(body500) - 1, body500);
		(void)!write(c, buf, strlen(buf));
		break;
	case FAKE_SHORT:
		(void)!write(c, rshort, sizeof(rshort) - 1);
		break;
	case FAKE_HANG: { /* until the client gives up or the test ends */
		struct pollfd p[2] = {{c, POLLIN, 0}, {f->stop[0], POLLIN, 0}};
		while (poll(p, 2, -1) > 0 && !p[1].revents) {
			if (read(c, buf, sizeof(buf)) <= 0)
				break;
		}
		break;
	}
	}
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	for (;;) {
		struct pollfd p[2] = {{f->lfd, POLLIN, 0}, {f->stop[0], POLLIN, 0}};
		if (poll(p, 2, -1) < 0 || p[1].revents)
			break;
		int c = accept(f->lfd, NULL, NULL);
		if (c < 0)
			continue;
		fake_serve(f, c);
		close(c);
	}
	return NULL;
}

static void fake_start(struct fake *f, enum fake_mode mode)
{
	memset(f, 0, sizeof(*f));
	f->mode = mode;
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(f->lfd, 16), 0);
	ck_assert_int_eq(getsockname(f->lfd, (struct sockaddr *)&a, &al), 0);
	f->port = ntohs(a.sin_port);
	ck_assert_int_eq(pipe(f->stop), 0);
	ck_assert_int_eq(pthread_create(&f->th, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
	(void)!write(f->stop[1], "x", 1);
	pthread_join(f->th, NULL);
	close(f->lfd);
	close(f->stop[0]);
	close(f->stop[1]);
}

START_TEST(test_retry_503)
{
	struct fake f;
	fake_start(&f, FAKE_503);
	cairn_target *t = open_fake(f.port, 0, 2);
	cairn_buf b = CAIRN_BUF_INIT;
	uint64_t t0 = cairn_now_ns();
	ck_assert_int_eq(cairn_target_get(t, "config", &b), -EIO);
	double el = secs_since(t0);
	ck_assert_int_eq(f.nreq, 3); /* first try and 2 retries */
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "ErrorSlowDown"));
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "GET config"));
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "s3:http://127.0.0.1:"));
	ck_assert_msg(el > 0.4 && el < 2, "backoff 0.2 + 0.4 s: %.2f s", el);
	cairn_target_close(t);
	fake_stop(&f);
	cairn_buf_free(&b);
}
END_TEST

START_TEST(test_retry_500_body)
{
	struct fake f;
	fake_start(&f, FAKE_500);
	cairn_target *t = open_fake(f.port, 0, -1); /* no retries */
	uint64_t size;
	ck_assert_int_eq(cairn_target_stat(t, "config", &size), -EIO); /* HEAD: no body */
	ck_assert_int_eq(f.nreq, 1);
	cairn_buf b = CAIRN_BUF_INIT;
	ck_assert_int_eq(cairn_target_get(t, "config", &b), -EIO);
	ck_assert_int_eq(f.nreq, 2);
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "ErrorInternalError: fake trouble"));
	cairn_target_close(t);
	fake_stop(&f);
	cairn_buf_free(&b);
}
END_TEST

START_TEST(test_short_body)
{
	struct fake f;
	fake_start(&f, FAKE_SHORT);
	cairn_target *t = open_fake(f.port, 0, 1);
	cairn_buf b = CAIRN_BUF_INIT;
	ck_assert_int_eq(cairn_target_get(t, "config", &b), -EIO);
	ck_assert_int_eq(f.nreq, 2);
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "short body: 40 of 100"));
	ck_assert_uint_eq(b.len, 0);
	uint8_t out[100];
	ck_assert_int_eq(cairn_target_get_range(t, "config", 0, 100, out), -EIO);
	ck_assert_int_eq(f.nreq, 4);
	cairn_target_close(t);
	fake_stop(&f);
	cairn_buf_free(&b);
}
END_TEST

START_TEST(test_deadline)
{
	struct fake f;
	fake_start(&f, FAKE_HANG);
	cairn_target *t = open_fake(f.port, 2, 0);
	cairn_buf b = CAIRN_BUF_INIT;
	uint64_t t0 = cairn_now_ns();
	ck_assert_int_eq(cairn_target_get(t, "config", &b), -ETIMEDOUT);
	double el = secs_since(t0);
	ck_assert_msg(el >= 1.9 && el < 4, "%.2f s", el);
	ck_assert_int_eq(f.nreq, 1); /* a stall is not retried */
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "no response progress for 2 s"));
	ck_assert(cairn_err_retryable(-ETIMEDOUT));
	cairn_target_close(t);
	fake_stop(&f);
	cairn_buf_free(&b);
}
END_TEST

/*
 * libs3 cannot be loaded ($CAIRN_S3_LIB names a missing file): open fails
 * with -EOPNOTSUPP and a message naming the file and the package, and so does
 * a second open (the load is tried once). In a child process: the outcome of
 * the load lasts for the process.
 */
START_TEST(test_lib_missing)
{
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		setenv("CAIRN_S3_LIB", "/nonexistent/libs3.so.2", 1);
		cairn_s3_opts o = {"ak", "sk", 0, 0};
		int bad = 0;
		for (int i = 0; i < 2; i++) {
			cairn_target *t = (cairn_target *)&t;
			int rc = cairn_target_s3_open_url(&t, "http://127.0.0.1:1/bucket-x", &o);
			const char *m = cairn_error_last();
			if (rc != -EOPNOTSUPP || t ||
			    !strstr(m, "cannot load /nonexistent/libs3.so.2") ||
			    !strstr(m, "install libs3-2")) {
				fprintf(stderr, "open %d without libs3: %d %s\n", i, rc, m);
				bad = 1;
			}
		}
		_exit(bad);
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
}
END_TEST

static Suite *targets_s3_suite(int online)
{
	Suite *s = suite_create("targets_s3");
	TCase *off = tcase_create("offline");
	tcase_set_timeout(off, 120);
	tcase_add_test(off, test_lib_missing); /* first: nothing has loaded libs3 yet */
	tcase_add_test(off, test_open_address);
	tcase_add_test(off, test_too_big);
	tcase_add_test(off, test_dead_server);
	tcase_add_test(off, test_retry_503);
	tcase_add_test(off, test_retry_500_body);
	tcase_add_test(off, test_short_body);
	tcase_add_test(off, test_deadline);
	suite_add_tcase(s, off);
	if (online) {
		TCase *tc = tcase_create("radosgw");
		tcase_set_timeout(tc, 300);
		tcase_add_checked_fixture(tc, setup, teardown);
		tcase_add_test(tc, test_roundtrip);
		tcase_add_test(tc, test_get_range);
		tcase_add_test(tc, test_missing);
		tcase_add_test(tc, test_missing_bucket);
		tcase_add_test(tc, test_list_paging);
		tcase_add_test(tc, test_del);
		tcase_add_test(tc, test_wrong_secret);
		tcase_add_test(tc, test_concurrent);
		tcase_add_test(tc, test_open_address_online);
		tcase_add_test(tc, test_hung_server);
		suite_add_tcase(s, tc);
	}
	return s;
}

int main(void)
{
	const char *req = getenv("CAIRN_REQUIRE_ONLINE");
	int require = req && !strcmp(req, "1");
#ifndef CAIRN_HAVE_S3
	printf("SKIP: built without libs3\n");
	return require ? EXIT_FAILURE : EXIT_SUCCESS;
#endif
	endpoint = getenv("CAIRN_TEST_S3_ENDPOINT");
	if (endpoint && !*endpoint)
		endpoint = NULL;
	if (endpoint && (!getenv("AWS_ACCESS_KEY_ID") || !getenv("AWS_SECRET_ACCESS_KEY"))) {
		printf("CAIRN_TEST_S3_ENDPOINT is set but AWS_ACCESS_KEY_ID or "
		       "AWS_SECRET_ACCESS_KEY is not\n");
		return EXIT_FAILURE;
	}
	if (!endpoint) {
		printf("SKIP: no test S3 server (set CAIRN_TEST_S3_ENDPOINT, AWS_ACCESS_KEY_ID, "
		       "AWS_SECRET_ACCESS_KEY; see scripts/ceph-start.sh); offline cases only\n");
		if (require)
			return EXIT_FAILURE;
	}
	snprintf(bucket, sizeof(bucket), "cairn-test-%d-%llx", (int)getpid(),
		 (unsigned long long)(cairn_wall_ns() / 1000000));
	SRunner *sr = srunner_create(targets_s3_suite(endpoint != NULL));
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
