/*
 * check_snapshot.c - the snapshot encoding: round trips with unicode and odd
 * strings, many paths and tags, extreme numbers; the object name (idhex)
 * survives decoding; truncated, extended and malformed encodings are
 * rejected without leaking; extensions are skipped.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/repo_int.h"
#include "tests/support/check_main.h"
#include "tests/support/testutil.h"

static const char idhex[65] = "f00dfacef00dfacef00dfacef00dfacef00dfacef00dfacef00dfacef00dface";

static int str_eq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

static void assert_snap_eq(const cairn_snapshot *a, const cairn_snapshot *b)
{
	ck_assert_int_eq(a->time_ns, b->time_ns);
	ck_assert_mem_eq(a->tree, b->tree, 32);
	ck_assert_int_eq(a->has_parent, b->has_parent);
	if (a->has_parent)
		ck_assert_mem_eq(a->parent, b->parent, 32);
	ck_assert_str_eq(a->client ? a->client : "", b->client);
	ck_assert_str_eq(a->hostname ? a->hostname : "", b->hostname);
	ck_assert_str_eq(a->username ? a->username : "", b->username);
	ck_assert_str_eq(a->program ? a->program : "", b->program);
	ck_assert_uint_eq(a->npaths, b->npaths);
	for (size_t i = 0; i < a->npaths; i++)
		ck_assert(str_eq(a->paths[i], b->paths[i]));
	ck_assert_uint_eq(a->ntags, b->ntags);
	for (size_t i = 0; i < a->ntags; i++)
		ck_assert(str_eq(a->tags[i], b->tags[i]));
	const cairn_backup_summary *x = &a->summary, *y = &b->summary;
	ck_assert_uint_eq(x->files_new, y->files_new);
	ck_assert_uint_eq(x->files_changed, y->files_changed);
	ck_assert_uint_eq(x->files_unchanged, y->files_unchanged);
	ck_assert_uint_eq(x->dirs, y->dirs);
	ck_assert_uint_eq(x->others, y->others);
	ck_assert_uint_eq(x->bytes_read, y->bytes_read);
	ck_assert_uint_eq(x->bytes_total, y->bytes_total);
	ck_assert_uint_eq(x->bytes_added, y->bytes_added);
	ck_assert_uint_eq(x->blobs_added, y->blobs_added);
	ck_assert_uint_eq(x->errors, y->errors);
	ck_assert_int_eq(x->duration_ns, y->duration_ns);
}

static char *paths[] = {
	"/home/alice",
	"/srv/d\xc3\xa9p\xc3\xb4t/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e/\xf0\x9f\x93\xa6", /* UTF-8 */
	"/tmp/with space/and\nnewline\tand tab",
	"/odd/\xff\xfe not UTF-8 \x80",
	"relative/../path",
	"/",
	"",
};
static char *tags[] = {"daily", "\xd0\xb5\xd0\xb6\xd0\xb5\xd0\xb4\xd0\xbd\xd0\xb5\xd0\xb2\xd0\xbd\xd0\xbe",
		       "a,b;c=d \"quoted\"", "\x01\x7f"};

/* A snapshot with a bit of everything; its strings point into static storage. */
static void sample(cairn_snapshot *s)
{
	memset(s, 0, sizeof(*s));
	memcpy(s->idhex, idhex, sizeof(idhex));
	s->time_ns = -1234567890123456789; /* before 1970 */
	tu_fill_random(s->tree, 32, 1);
	s->has_parent = 1;
	tu_fill_random(s->parent, 32, 2);
	s->client = "acme \xe2\x80\x94 Stra\xc3\x9f" "e";
	s->hostname = "h\xc3\xb4te-1.example";
	s->username = "r\xc3\xb6\xc3\xb6t";
	s->npaths = sizeof(paths) / sizeof(paths[0]);
	s->paths = paths;
	s->ntags = sizeof(tags) / sizeof(tags[0]);
	s->tags = tags;
	s->summary.files_new = 1;
	s->summary.files_changed = 2;
	s->summary.files_unchanged = 3;
	s->summary.dirs = 127;
	s->summary.others = 128;
	s->summary.bytes_read = 1ull << 40;
	s->summary.bytes_total = UINT64_MAX;
	s->summary.bytes_added = 0;
	s->summary.blobs_added = 16384;
	s->summary.errors = 9;
	s->summary.duration_ns = INT64_MIN;
	s->program = "cairn 0.1.0 (\xe2\x9c\x93)";
}

/* Decode into a snapshot whose idhex is set, the way listing does. */
static int decode(cairn_snapshot *d, const void *data, size_t len)
{
	memset(d, 0x77, sizeof(*d));
	memcpy(d->idhex, idhex, sizeof(idhex));
	return snapshot_decode(d, data, len);
}

START_TEST(snapshot_roundtrip)
{
	cairn_snapshot s, d;
	cairn_buf b = CAIRN_BUF_INIT, b2 = CAIRN_BUF_INIT;
	sample(&s);
	snapshot_encode(&s, &b);
	ck_assert_int_eq(decode(&d, b.data, b.len), 0);
	ck_assert_str_eq(d.idhex, idhex);
	assert_snap_eq(&s, &d);
	snapshot_encode(&d, &b2);
	ck_assert_uint_eq(b2.len, b.len);
	ck_assert_mem_eq(b2.data, b.data, b.len);
	cairn_snapshot_free(&d);
	ck_assert_ptr_null(d.client);
	cairn_snapshot_free(NULL);

	/* no parent, no paths, no tags, NULL strings (read back as "") */
	cairn_snapshot m;
	memset(&m, 0, sizeof(m));
	m.time_ns = INT64_MAX;
	b.len = 0;
	snapshot_encode(&m, &b);
	ck_assert_int_eq(decode(&d, b.data, b.len), 0);
	assert_snap_eq(&m, &d);
	ck_assert_str_eq(d.client, "");
	ck_assert_uint_eq(d.npaths, 0);
	ck_assert_uint_eq(d.ntags, 0);
	ck_assert_int_eq(d.has_parent, 0);
	cairn_snapshot_free(&d);

	/* many paths and tags, the longest strings accepted */
	enum { NP = 3000 };
	char **many = malloc(NP * sizeof(char *));
	for (size_t i = 0; i < NP; i++) {
		many[i] = malloc(32);
		snprintf(many[i], 32, "/data/%zu/\xc3\xa9", i);
	}
	char *longest = malloc(65537);
	memset(longest, 'x', 65536);
	longest[65536] = 0;
	m.paths = many;
	m.npaths = NP;
	m.tags = many + 10;
	m.ntags = 100;
	m.client = longest;
	b.len = 0;
	snapshot_encode(&m, &b);
	ck_assert_int_eq(decode(&d, b.data, b.len), 0);
	assert_snap_eq(&m, &d);
	cairn_snapshot_free(&d);
	/* one byte longer is refused */
	char *too_long = malloc(65538);
	memset(too_long, 'y', 65537);
	too_long[65537] = 0;
	m.client = too_long;
	b.len = 0;
	snapshot_encode(&m, &b);
	ck_assert_int_eq(decode(&d, b.data, b.len), -EBADMSG);
	ck_assert_str_eq(d.idhex, idhex);
	ck_assert_ptr_null(d.paths);
	free(too_long);
	free(longest);
	for (size_t i = 0; i < NP; i++)
		free(many[i]);
	free(many);
	cairn_buf_free(&b);
	cairn_buf_free(&b2);
}
END_TEST

START_TEST(snapshot_truncations)
{
	cairn_snapshot s, d;
	cairn_buf b = CAIRN_BUF_INIT;
	sample(&s);
	snapshot_encode(&s, &b);
	for (size_t n = 0; n < b.len; n++) {
		ck_assert_int_eq(decode(&d, b.data, n), -EBADMSG);
		/* a failed decode leaves nothing allocated and keeps the name */
		ck_assert_str_eq(d.idhex, idhex);
		ck_assert_ptr_null(d.client);
		ck_assert_ptr_null(d.hostname);
		ck_assert_ptr_null(d.username);
		ck_assert_ptr_null(d.program);
		ck_assert_ptr_null(d.paths);
		ck_assert_ptr_null(d.tags);
		ck_assert_uint_eq(d.npaths + d.ntags, 0);
	}
	/* a trailing byte */
	cairn_buf_put_u8(&b, 0);
	ck_assert_int_eq(decode(&d, b.data, b.len), -EBADMSG);
	ck_assert_str_eq(d.idhex, idhex);
	cairn_buf_free(&b);
}
END_TEST

/* An encoding by hand: version, time, tree, parent flag, then @p rest. */
static void head(cairn_buf *b, uint8_t version, uint8_t has_parent)
{
	uint8_t tree[32] = {9};
	b->len = 0;
	cairn_buf_put_u8(b, version);
	cairn_buf_put_le64(b, 42);
	cairn_buf_append(b, tree, 32);
	cairn_buf_put_u8(b, has_parent);
	if (has_parent == 1)
		cairn_buf_append(b, tree, 32);
}

/* client, hostname, username, paths, tags, counters, program, then @p next extensions. */
static void tail(cairn_buf *b, uint64_t ncounters, uint64_t next)
{
	cairn_buf_put_bytes(b, "c", 1);
	cairn_buf_put_bytes(b, "h", 1);
	cairn_buf_put_bytes(b, "u", 1);
	cairn_buf_put_uvar(b, 1);
	cairn_buf_put_bytes(b, "/p", 2);
	cairn_buf_put_uvar(b, 0);
	cairn_buf_put_uvar(b, ncounters);
	for (uint64_t i = 0; i < ncounters; i++)
		cairn_buf_put_uvar(b, i + 1);
	cairn_buf_put_bytes(b, "prog", 4);
	cairn_buf_put_uvar(b, next);
	for (uint64_t i = 0; i < next; i++) {
		cairn_buf_put_uvar(b, 100 + i);
		cairn_buf_put_bytes(b, "payload", 7);
	}
}

START_TEST(snapshot_malformed)
{
	cairn_snapshot d;
	cairn_buf b = CAIRN_BUF_INIT;

	head(&b, 1, 0);
	tail(&b, 11, 0);
	ck_assert_int_eq(decode(&d, b.data, b.len), 0);
	ck_assert_str_eq(d.client, "c");
	ck_assert_str_eq(d.paths[0], "/p");
	ck_assert_uint_eq(d.summary.files_new, 1);
	ck_assert_int_eq(d.summary.duration_ns, 11);
	cairn_snapshot_free(&d);

	/* extensions are skipped */
	head(&b, 1, 1);
	tail(&b, 11, 3);
	ck_assert_int_eq(decode(&d, b.data, b.len), 0);
	ck_assert_str_eq(d.program, "prog");
	ck_assert_int_eq(d.has_parent, 1);
	cairn_snapshot_free(&d);

	/* fewer counters (an older writer) read as zero; more (a newer one) are ignored */
	head(&b, 1, 0);
	tail(&b, 3, 0);
	ck_assert_int_eq(decode(&d, b.data, b.len), 0);
	ck_assert_uint_eq(d.summary.files_unchanged, 3);
	ck_assert_uint_eq(d.summary.dirs, 0);
	cairn_snapshot_free(&d);
	head(&b, 1, 0);
	tail(&b, 64, 0);
	ck_assert_int_eq(decode(&d, b.data, b.len), 0);
	ck_assert_int_eq(d.summary.duration_ns, 11);
	cairn_snapshot_free(&d);
	head(&b, 1, 0);
	tail(&b, 65, 0);
	ck_assert_int_eq(decode(&d, b.data, b.len), -EBADMSG);

	/* unknown version, bad parent flag */
	head(&b, 2, 0);
	tail(&b, 11, 0);
	ck_assert_int_eq(decode(&d, b.data, b.len), -EBADMSG);
	head(&b, 0, 0);
	tail(&b, 11, 0);
	ck_assert_int_eq(decode(&d, b.data, b.len), -EBADMSG);
	head(&b, 1, 2);
	tail(&b, 11, 0);
	ck_assert_int_eq(decode(&d, b.data, b.len), -EBADMSG);

	/* a NUL inside a string */
	head(&b, 1, 0);
	cairn_buf_put_bytes(&b, "a\0b", 3);
	size_t at = b.len;
	tail(&b, 11, 0);
	memmove(b.data + at, b.data + at + 2, b.len - at - 2); /* drop tail's client "c" */
	b.len -= 2;
	ck_assert_int_eq(decode(&d, b.data, b.len), -EBADMSG);
	ck_assert_ptr_null(d.client);

	/* a path count larger than the input */
	head(&b, 1, 0);
	cairn_buf_put_bytes(&b, "c", 1);
	cairn_buf_put_bytes(&b, "h", 1);
	cairn_buf_put_bytes(&b, "u", 1);
	cairn_buf_put_uvar(&b, UINT64_MAX);
	ck_assert_int_eq(decode(&d, b.data, b.len), -EBADMSG);
	ck_assert_ptr_null(d.paths);
	/* a string length beyond the input */
	head(&b, 1, 0);
	cairn_buf_put_uvar(&b, 5);
	cairn_buf_append(&b, "abc", 3);
	ck_assert_int_eq(decode(&d, b.data, b.len), -EBADMSG);

	/* random corruption of a full snapshot never crashes or leaks */
	cairn_snapshot s;
	sample(&s);
	b.len = 0;
	snapshot_encode(&s, &b);
	uint8_t *y = malloc(b.len);
	for (int k = 0; k < 20000; k++) {
		uint64_t r;
		memcpy(y, b.data, b.len);
		tu_fill_random(&r, sizeof(r), (uint64_t)k + 1);
		y[r % b.len] = (uint8_t)(r >> 40);
		int rc = decode(&d, y, b.len);
		ck_assert(rc == 0 || rc == -EBADMSG);
		ck_assert_str_eq(d.idhex, idhex);
		if (rc == 0)
			cairn_snapshot_free(&d);
	}
	free(y);
	cairn_buf_free(&b);
}
END_TEST

static Suite *engine_snapshot_suite(void)
{
	Suite *s = suite_create("snapshot");
	TCase *tc = tcase_create("encoding");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, snapshot_roundtrip);
	tcase_add_test(tc, snapshot_truncations);
	tcase_add_test(tc, snapshot_malformed);
	suite_add_tcase(s, tc);
	return s;
}

CAIRN_CHECK_MAIN(engine_snapshot_suite)
