/*
 * check_chunker.c - properties of the FastCDC chunker: determinism, split
 * invariance, boundary stability under insertion, size limits, mean size,
 * dependence on the seed; and the same cut points as a byte-at-a-time
 * reference implementation.
 */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "chunker/chunker.h"
#include "tests/support/check_main.h"
#include "tests/support/testutil.h"

typedef struct cuts {
	size_t n, cap;
	size_t *end; /* end offsets of chunks */
} cuts;

static void cuts_add(cuts *c, size_t e)
{
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		c->end = realloc(c->end, c->cap * sizeof(size_t));
	}
	c->end[c->n++] = e;
}

/* Chunk buf, feeding pieces of sizes chosen by `step` (0 = all at once). */
static cuts chunk_all(uint64_t seed, size_t min, size_t avg, size_t max, const uint8_t *buf,
		      size_t len, size_t step, uint64_t split_seed)
{
	uint64_t gear[256];
	cairn_chunker ck;
	cuts c = {0, 0, NULL};
	cairn_chunker_gear_test(gear, seed);
	ck_assert_int_eq(cairn_chunker_init(&ck, gear, min, avg, max), 0);
	size_t off = 0;
	uint64_t s = split_seed | 1;
	while (off < len) {
		size_t n = len - off;
		if (step) {
			s ^= s << 13;
			s ^= s >> 7;
			s ^= s << 17;
			size_t want = 1 + (size_t)(s % step);
			if (want < n)
				n = want;
		}
		/* each piece in a buffer of its own, so reading outside it shows */
		uint8_t *piece = malloc(n);
		memcpy(piece, buf + off, n);
		const uint8_t *p = piece;
		size_t left = n;
		while (left) {
			size_t k = cairn_chunker_scan(&ck, p, left);
			if (k == CAIRN_CHUNKER_NEED)
				break;
			ck_assert(k >= 1 && k <= left);
			p += k;
			left -= k;
			cuts_add(&c, off + (size_t)(p - piece));
		}
		free(piece);
		off += n;
	}
	if (cairn_chunker_pending(&ck))
		cuts_add(&c, len);
	return c;
}

static uint8_t *random_buf(size_t len, uint64_t seed)
{
	uint8_t *b = malloc(len);
	tu_fill_random(b, len, seed);
	return b;
}

#define MiB (1024u * 1024u)
#define KiB 1024u

/*
 * The reference: FastCDC with normalized chunking, one byte at a time, as
 * the header describes it. Byte number n (1-based) of a chunk is hashed only
 * if n > min, the hash starting from 0; the chunk ends after it if the hash
 * has none of the mask's bits (mask_s while n <= norm, mask_l after), or if
 * n == max. Sizes, normal point, masks and gear come from the initialised
 * chunker, whose scan is what is checked here.
 */
static cuts ref_chunk(const cairn_chunker *ck, const uint8_t *buf, size_t len)
{
	cuts c = {0, 0, NULL};
	size_t n = 0;
	uint64_t h = 0;
	for (size_t i = 0; i < len; i++) {
		n++;
		int cut = n == ck->max;
		if (n > ck->min) {
			h = (h << 1) + ck->gear[buf[i]];
			uint64_t mask = n <= ck->norm ? ck->mask_s : ck->mask_l;
			if ((h & mask) == 0)
				cut = 1;
		}
		if (cut) {
			cuts_add(&c, i + 1);
			n = 0;
			h = 0;
		}
	}
	if (n)
		cuts_add(&c, len);
	return c;
}

/* The scan, fed pieces of 1..step bytes (0 = all at once), against the reference. */
static void check_against_ref(const char *what, uint64_t seed, size_t min, size_t avg, size_t max,
			      const uint8_t *buf, size_t len, size_t step, uint64_t split_seed)
{
	uint64_t gear[256];
	cairn_chunker ck;
	cairn_chunker_gear_test(gear, seed);
	ck_assert_int_eq(cairn_chunker_init(&ck, gear, min, avg, max), 0);
	cuts r = ref_chunk(&ck, buf, len);
	cuts c = chunk_all(seed, min, avg, max, buf, len, step, split_seed);
	size_t k = 0;
	while (k < r.n && k < c.n && r.end[k] == c.end[k])
		k++;
	ck_assert_msg(k == r.n && k == c.n,
		      "%s (%zu bytes, %zu/%zu/%zu, pieces <= %zu): cut %zu is at %zu, reference "
		      "%zu (%zu vs %zu cuts)",
		      what, len, min, avg, max, step, k, k < c.n ? c.end[k] : (size_t)0,
		      k < r.n ? r.end[k] : (size_t)0, c.n, r.n);
	free(r.end);
	free(c.end);
}

#define NSIZES 6
static const size_t ref_sizes[NSIZES][3] = {
	{CAIRN_CHUNKER_DEFAULT_MIN, CAIRN_CHUNKER_DEFAULT_AVG, CAIRN_CHUNKER_DEFAULT_MAX},
	{16 * KiB, 48 * KiB, 192 * KiB}, /* the archiver's sizes for large files */
	{16 * KiB, 64 * KiB, 256 * KiB},
	{64, 256, 1024},
	{4096, 4096, 4096},
	{1000, 3000, 9000},
};

/* Every size set, whole and in pieces of random sizes up to a few bounds. */
static void check_all_sizes(const char *what, const uint8_t *b, size_t len, uint64_t seed)
{
	static const size_t steps[] = {0, 3 * MiB, 100000, 5000, 300};
	for (size_t s = 0; s < NSIZES; s++) {
		/* the small sets see a shorter prefix: the reference is slow */
		size_t l = s < 3 ? len : (len < 4 * MiB ? len : 4 * MiB);
		for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
			size_t ll = steps[k] && steps[k] < 1000 && l > 4 * MiB ? 4 * MiB : l;
			check_against_ref(what, seed + s, ref_sizes[s][0], ref_sizes[s][1],
					  ref_sizes[s][2], b, ll, steps[k], seed * 31 + k);
		}
	}
}

START_TEST(same_as_reference_random)
{
	size_t len = 48 * MiB;
	uint8_t *b = random_buf(len, 21);
	check_all_sizes("random", b, len, 1);
	/* low-entropy data: zeros, a short repeated pattern, text */
	memset(b, 0, 8 * MiB);
	for (size_t i = 8 * MiB; i < 12 * MiB; i++)
		b[i] = (uint8_t)(i % 7);
	tu_fill_text(b + 12 * MiB, 12 * MiB, 22);
	check_all_sizes("mixed", b, 32 * MiB, 2);
	free(b);
}
END_TEST

/* A few real files: regular files of 256 KiB - 32 MiB under /usr/lib, in name order. */
static char *files[4096];
static size_t nfiles;

static int collect(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type == FTW_F && S_ISREG(st->st_mode) && st->st_size >= 256 * 1024 &&
	    st->st_size <= 32 * 1024 * 1024 && nfiles < sizeof(files) / sizeof(files[0]))
		files[nfiles++] = strdup(path);
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	if (!f)
		return NULL;
	if (fstat(fileno(f), &st) < 0) {
		fclose(f);
		return NULL;
	}
	uint8_t *b = malloc((size_t)st.st_size + 1);
	*len = fread(b, 1, (size_t)st.st_size, f);
	fclose(f);
	return b;
}

START_TEST(same_as_reference_files)
{
	nftw("/usr/lib", collect, 16, FTW_PHYS);
	qsort(files, nfiles, sizeof(files[0]), by_name);
	size_t tested = 0, bytes = 0;
	/* eight files spread over the sorted list, then their concatenation */
	size_t cap = 0, cat = 0;
	uint8_t *all = NULL;
	for (size_t k = 0; k < 8 && k < nfiles; k++) {
		const char *path = files[k * nfiles / 8];
		size_t len;
		uint8_t *b = read_file(path, &len);
		if (!b)
			continue;
		check_all_sizes(path, b, len, 100 + k);
		if (cat + len > cap) {
			cap = (cat + len) * 2;
			all = realloc(all, cap);
		}
		memcpy(all + cat, b, len);
		cat += len;
		free(b);
		tested++;
		bytes += len;
	}
	if (cat)
		check_all_sizes("the files end to end", all, cat, 200);
	free(all);
	for (size_t k = 0; k < nfiles; k++)
		free(files[k]);
	fprintf(stderr, "same_as_reference_files: %zu files, %zu bytes from /usr/lib\n", tested,
		bytes);
	if (!tested) {
		/* no /usr/lib here: this test program itself is a real file too */
		size_t len;
		uint8_t *b = read_file("/proc/self/exe", &len);
		ck_assert_ptr_nonnull(b);
		check_all_sizes("/proc/self/exe", b, len, 300);
		free(b);
	}
}
END_TEST

START_TEST(deterministic)
{
	size_t len = 32 * MiB;
	uint8_t *b = random_buf(len, 1);
	cuts a = chunk_all(7, 16 * KiB, 64 * KiB, 256 * KiB, b, len, 0, 0);
	cuts c = chunk_all(7, 16 * KiB, 64 * KiB, 256 * KiB, b, len, 0, 0);
	ck_assert_uint_eq(a.n, c.n);
	ck_assert(memcmp(a.end, c.end, a.n * sizeof(size_t)) == 0);
	free(a.end);
	free(c.end);
	free(b);
}
END_TEST

START_TEST(split_invariant)
{
	size_t len = 24 * MiB;
	uint8_t *b = random_buf(len, 2);
	size_t sizes[][3] = {{16 * KiB, 64 * KiB, 256 * KiB},
			     {CAIRN_CHUNKER_DEFAULT_MIN, CAIRN_CHUNKER_DEFAULT_AVG,
			      CAIRN_CHUNKER_DEFAULT_MAX},
			     {64, 256, 1024},
			     {4096, 4096, 4096}};
	size_t steps[] = {1 * MiB, 65537, 4099, 7};
	for (size_t s = 0; s < 4; s++) {
		size_t l = s == 2 || s == 3 ? 2 * MiB : len;
		cuts ref = chunk_all(3, sizes[s][0], sizes[s][1], sizes[s][2], b, l, 0, 0);
		for (size_t k = 0; k < 4; k++) {
			if (steps[k] < 100 && l > 2 * MiB)
				continue;
			cuts c = chunk_all(3, sizes[s][0], sizes[s][1], sizes[s][2], b, l, steps[k],
					   k + 11);
			ck_assert_uint_eq(ref.n, c.n);
			ck_assert(memcmp(ref.end, c.end, c.n * sizeof(size_t)) == 0);
			free(c.end);
		}
		free(ref.end);
	}
	free(b);
}
END_TEST

/* Fraction of chunks of `b` (insertion of k bytes at `at`) that equal chunks of `a`. */
static double kept_fraction(size_t min, size_t avg, size_t max)
{
	size_t len = 64 * MiB, at = 1000, k = 7;
	uint8_t *a = random_buf(len, 4);
	uint8_t *b = malloc(len + k);
	memcpy(b, a, at);
	memcpy(b + at, "INSERT!", k);
	memcpy(b + at + k, a + at, len - at);
	cuts ca = chunk_all(5, min, avg, max, a, len, 0, 0);
	cuts cb = chunk_all(5, min, avg, max, b, len + k, 0, 0);
	/* a chunk of b is kept if both its ends, shifted back by k, are cuts of a */
	size_t kept = 0, j = 0;
	for (size_t i = 0; i < cb.n; i++) {
		size_t start = i ? cb.end[i - 1] : 0, end = cb.end[i];
		if (start < at + k)
			continue;
		size_t s = start - k, e = end - k;
		while (j < ca.n && ca.end[j] < s)
			j++;
		if (j < ca.n && ca.end[j] == s && j + 1 < ca.n && ca.end[j + 1] == e)
			kept++;
	}
	double f = (double)kept / (double)cb.n;
	free(ca.end);
	free(cb.end);
	free(a);
	free(b);
	return f;
}

START_TEST(insertion_keeps_chunks)
{
	ck_assert_double_ge(kept_fraction(CAIRN_CHUNKER_DEFAULT_MIN, CAIRN_CHUNKER_DEFAULT_AVG,
					  CAIRN_CHUNKER_DEFAULT_MAX),
			    0.95);
	ck_assert_double_ge(kept_fraction(16 * KiB, 64 * KiB, 256 * KiB), 0.95);
}
END_TEST

static void check_sizes(size_t min, size_t avg, size_t max, size_t len)
{
	uint8_t *b = random_buf(len, 6);
	cuts c = chunk_all(9, min, avg, max, b, len, 0, 0);
	size_t prev = 0, sum = 0;
	for (size_t i = 0; i < c.n; i++) {
		size_t sz = c.end[i] - prev;
		if (i + 1 < c.n)
			ck_assert_uint_ge(sz, min);
		ck_assert_uint_le(sz, max);
		sum += sz;
		prev = c.end[i];
	}
	ck_assert_uint_eq(sum, len);
	double mean = (double)len / (double)c.n;
	ck_assert_msg(mean >= 0.75 * (double)avg && mean <= 1.25 * (double)avg,
		      "mean %.0f for avg %zu", mean, avg);
	free(c.end);
	free(b);
}

START_TEST(sizes_default)
{
	check_sizes(CAIRN_CHUNKER_DEFAULT_MIN, CAIRN_CHUNKER_DEFAULT_AVG, CAIRN_CHUNKER_DEFAULT_MAX,
		    256 * MiB);
}
END_TEST

START_TEST(sizes_small)
{
	check_sizes(16 * KiB, 64 * KiB, 256 * KiB, 64 * MiB);
	check_sizes(2 * KiB, 8 * KiB, 64 * KiB, 16 * MiB);
}
END_TEST

START_TEST(max_on_zeros)
{
	size_t len = 20 * MiB;
	uint8_t *b = calloc(1, len);
	cuts c = chunk_all(1, 64 * KiB, 256 * KiB, 1 * MiB, b, len, 0, 0);
	size_t prev = 0;
	for (size_t i = 0; i < c.n; i++) {
		ck_assert_uint_le(c.end[i] - prev, 1 * MiB);
		prev = c.end[i];
	}
	free(c.end);
	free(b);
}
END_TEST

START_TEST(seed_changes_boundaries)
{
	size_t len = 16 * MiB;
	uint8_t *b = random_buf(len, 8);
	cuts a = chunk_all(1, 16 * KiB, 64 * KiB, 256 * KiB, b, len, 0, 0);
	cuts c = chunk_all(2, 16 * KiB, 64 * KiB, 256 * KiB, b, len, 0, 0);
	size_t same = 0, j = 0;
	for (size_t i = 0; i + 1 < a.n; i++) {
		while (j < c.n && c.end[j] < a.end[i])
			j++;
		if (j < c.n && c.end[j] == a.end[i])
			same++;
	}
	ck_assert_msg(same * 10 < a.n, "%zu of %zu boundaries shared", same, a.n);
	free(a.end);
	free(c.end);
	free(b);
}
END_TEST

START_TEST(bad_params)
{
	uint64_t gear[256];
	cairn_chunker ck;
	cairn_chunker_gear_test(gear, 1);
	ck_assert_int_eq(cairn_chunker_init(&ck, gear, 0, 1024, 4096), -EINVAL);
	ck_assert_int_eq(cairn_chunker_init(&ck, gear, 4096, 1024, 8192), -EINVAL);
	ck_assert_int_eq(cairn_chunker_init(&ck, gear, 1024, 4096, 2048), -EINVAL);
	ck_assert_int_eq(cairn_chunker_init(&ck, gear, 1024, 4096, (size_t)2 << 30), -EINVAL);
	ck_assert_int_eq(cairn_chunker_init(&ck, NULL, 1024, 4096, 8192), -EINVAL);
	ck_assert_int_eq(cairn_chunker_init(&ck, gear, 1024, 4096, 8192), 0);
}
END_TEST

START_TEST(empty_and_tiny)
{
	uint8_t b[10] = {1, 2, 3};
	cuts c = chunk_all(1, 64, 256, 1024, b, 0, 0, 0);
	ck_assert_uint_eq(c.n, 0);
	c = chunk_all(1, 64, 256, 1024, b, 10, 0, 0);
	ck_assert_uint_eq(c.n, 1);
	ck_assert_uint_eq(c.end[0], 10);
	free(c.end);
}
END_TEST

static Suite *chunker_suite(void)
{
	Suite *s = suite_create("chunker");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, deterministic);
	tcase_add_test(tc, split_invariant);
	tcase_add_test(tc, insertion_keeps_chunks);
	tcase_add_test(tc, seed_changes_boundaries);
	suite_add_tcase(s, tc);
	TCase *ref = tcase_create("reference");
	tcase_set_timeout(ref, 600);
	tcase_add_test(ref, same_as_reference_random);
	tcase_add_test(ref, same_as_reference_files);
	suite_add_tcase(s, ref);
	TCase *lim = tcase_create("limits");
	tcase_set_timeout(lim, 300);
	tcase_add_test(lim, sizes_default);
	tcase_add_test(lim, sizes_small);
	tcase_add_test(lim, max_on_zeros);
	tcase_add_test(lim, bad_params);
	tcase_add_test(lim, empty_and_tiny);
	suite_add_tcase(s, lim);
	return s;
}

CAIRN_CHECK_MAIN(chunker_suite)
