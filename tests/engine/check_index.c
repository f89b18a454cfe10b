/*
 * check_index.c - the in-memory index (a million random ids: add, look up,
 * duplicates keep the first location, compaction loses nothing, the pack
 * table, and the measured memory per blob against the 48-byte budget) and
 * index segments (encode/decode round trip, strict rejection of truncated
 * or malformed segments).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/index_int.h"
#include "tests/support/check_main.h"
#include "tests/support/testutil.h"

#define MANY 1000000u
#define PER_PACK 4000u /* blobs per pack in the bulk test (16 MiB packs of 4 KiB chunks) */

/* The location the bulk test gives blob @p i. */
static void loc_of(uint32_t i, uint32_t pack0, cairn_blob_loc *l)
{
	l->pack = pack0 + i / PER_PACK;
	l->offset = (i % PER_PACK) * 4096u + (i & 7);
	l->clen = 29 + (i * 2654435761u) % 70000u;
	l->type = (i % 11 == 0) ? CAIRN_BLOB_TREE : CAIRN_BLOB_DATA;
}

/* (Check records every passing assertion, too slow for millions: test first.) */
static void expect_loc(cairn_index *idx, const uint8_t *id, const cairn_blob_loc *want)
{
	cairn_blob_loc got;
	memset(&got, 0xff, sizeof(got));
	int found = cairn_index_lookup(idx, id, &got);
	if (found != 1 || got.pack != want->pack || got.offset != want->offset ||
	    got.clen != want->clen || got.type != want->type)
		ck_abort_msg("lookup: found %d, pack %u offset %u clen %u type %u; want pack %u "
			     "offset %u clen %u type %u",
			     found, got.pack, got.offset, got.clen, got.type, want->pack, want->offset,
			     want->clen, want->type);
}

START_TEST(index_million)
{
	uint8_t *ids = malloc((size_t)MANY * 32), *absent = malloc(10000 * 32);
	tu_fill_random(ids, (size_t)MANY * 32, 42);
	tu_fill_random(absent, 10000 * 32, 43);
	cairn_index *idx = cairn_index_new();
	ck_assert_uint_eq(cairn_index_count(idx), 0);
	ck_assert_int_eq(cairn_index_lookup(idx, ids, NULL), 0);

	/* packs first, as loading segments does */
	uint32_t npacks = (MANY + PER_PACK - 1) / PER_PACK, pack0 = 0;
	for (uint32_t p = 0; p < npacks; p++) {
		uint8_t pid[32];
		tu_fill_random(pid, sizeof(pid), 1000000 + p);
		uint32_t no = cairn_index_pack(idx, pid, CAIRN_BLOB_DATA, 16u << 20);
		if (p == 0)
			pack0 = no;
		ck_assert_uint_eq(no, pack0 + p);
	}
	ck_assert_uint_eq(cairn_index_npacks(idx), npacks);

	cairn_blob_loc l;
	for (uint32_t i = 0; i < MANY; i++) {
		loc_of(i, pack0, &l);
		if (cairn_index_add(idx, ids + (size_t)i * 32, l.type, l.pack, l.offset, l.clen) != 1)
			ck_abort_msg("blob %u not added", i);
		/* look some up while the delta is still growing */
		if (i % 4099 == 0) {
			uint32_t j = i / 2;
			loc_of(j, pack0, &l);
			expect_loc(idx, ids + (size_t)j * 32, &l);
		}
	}
	ck_assert_uint_eq(cairn_index_count(idx), MANY);
	for (uint32_t i = 0; i < MANY; i++) {
		loc_of(i, pack0, &l);
		expect_loc(idx, ids + (size_t)i * 32, &l);
	}
	for (uint32_t i = 0; i < 10000; i++)
		if (cairn_index_lookup(idx, absent + (size_t)i * 32, &l))
			ck_abort_msg("absent id %u found", i);

	/* duplicates keep the first location */
	for (uint32_t i = 0; i < MANY; i += 97)
		if (cairn_index_add(idx, ids + (size_t)i * 32, CAIRN_BLOB_TREE, 7, 1, 2) != 0)
			ck_abort_msg("duplicate %u added", i);
	ck_assert_uint_eq(cairn_index_count(idx), MANY);

	/* compaction: everything is still there, unchanged */
	cairn_index_compact(idx);
	cairn_index_compact(idx); /* nothing to merge: a no-op */
	ck_assert_uint_eq(cairn_index_count(idx), MANY);
	for (uint32_t i = 0; i < MANY; i++) {
		loc_of(i, pack0, &l);
		expect_loc(idx, ids + (size_t)i * 32, &l);
	}
	for (uint32_t i = 0; i < 10000; i++)
		if (cairn_index_lookup(idx, absent + (size_t)i * 32, NULL))
			ck_abort_msg("absent id %u found after compaction", i);

	/* the memory budget: at most 48 bytes per blob, packs included */
	size_t mem = cairn_index_memory(idx), n = cairn_index_count(idx);
	double per_blob = (double)mem / (double)n;
	printf("check_index: %zu blobs in %zu packs: %zu bytes, %.2f bytes per blob\n", n,
	       cairn_index_npacks(idx), mem, per_blob);
	fflush(stdout);
	ck_assert_uint_le(mem, 48 * n);

	/* after compaction new blobs still go in, duplicates of compacted ones still don't */
	for (uint32_t i = 0; i < 10000; i++) {
		ck_assert_int_eq(cairn_index_add(idx, absent + (size_t)i * 32, CAIRN_BLOB_DATA, pack0, i,
						 100),
				 1);
		ck_assert_int_eq(cairn_index_add(idx, ids + (size_t)i * 32, CAIRN_BLOB_DATA, 1, 2, 3), 0);
	}
	ck_assert_uint_eq(cairn_index_count(idx), MANY + 10000);
	for (uint32_t i = 0; i < 10000; i++) {
		cairn_blob_loc want = {pack0, i, 100, CAIRN_BLOB_DATA};
		expect_loc(idx, absent + (size_t)i * 32, &want);
		loc_of(i, pack0, &l);
		expect_loc(idx, ids + (size_t)i * 32, &l);
	}
	cairn_index_compact(idx);
	ck_assert_uint_le(cairn_index_memory(idx), 48 * cairn_index_count(idx));
	expect_loc(idx, absent + 9999 * 32, &(cairn_blob_loc){pack0, 9999, 100, CAIRN_BLOB_DATA});

	cairn_index_free(idx);
	free(ids);
	free(absent);
}
END_TEST

/* Compaction at every stage: interleaved adds, compactions and lookups. */
START_TEST(index_compaction)
{
	enum { N = 200000 };
	uint8_t *ids = malloc((size_t)N * 32);
	tu_fill_random(ids, (size_t)N * 32, 7);
	cairn_index *idx = cairn_index_new();
	cairn_blob_loc l;
	uint32_t done = 0;
	const uint32_t steps[] = {1, 10, 1000, 5000, 30000, 70000, 100000, N};
	for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		for (; done < steps[s]; done++) {
			loc_of(done, 0, &l);
			if (cairn_index_add(idx, ids + (size_t)done * 32, l.type, l.pack, l.offset,
					    l.clen) != 1)
				ck_abort_msg("blob %u not added", done);
		}
		if (s % 2)
			cairn_index_compact(idx);
		ck_assert_uint_eq(cairn_index_count(idx), done);
		for (uint32_t i = 0; i < done; i += 1 + done / 5000) {
			loc_of(i, 0, &l);
			expect_loc(idx, ids + (size_t)i * 32, &l);
		}
		ck_assert_int_eq(cairn_index_lookup(idx, ids + (size_t)(N - 1) * 32, NULL),
				 done == N);
	}
	cairn_index_compact(idx);
	for (uint32_t i = 0; i < N; i++) {
		loc_of(i, 0, &l);
		expect_loc(idx, ids + (size_t)i * 32, &l);
	}
	cairn_index_free(idx);
	free(ids);
}
END_TEST

START_TEST(pack_table)
{
	enum { NP = 10000 };
	cairn_index *idx = cairn_index_new();
	uint8_t id[32], got[32];
	uint32_t no;
	uint8_t type;
	uint64_t size;
	ck_assert_uint_eq(cairn_index_npacks(idx), 0);
	tu_fill_random(id, 32, 5);
	ck_assert_int_eq(cairn_index_pack_find(idx, id, &no), 0);
	for (uint32_t p = 0; p < NP; p++) {
		tu_fill_random(id, 32, 5 + p);
		uint8_t t = p % 3 ? CAIRN_BLOB_DATA : CAIRN_BLOB_TREE;
		ck_assert_uint_eq(cairn_index_pack(idx, id, t, 1000ull * p + (1ull << 33)), p);
	}
	ck_assert_uint_eq(cairn_index_npacks(idx), NP);
	for (uint32_t p = 0; p < NP; p++) {
		tu_fill_random(id, 32, 5 + p);
		/* adding again returns the same number and changes nothing */
		ck_assert_uint_eq(cairn_index_pack(idx, id, CAIRN_BLOB_DATA, 1), p);
		ck_assert_int_eq(cairn_index_pack_find(idx, id, &no), 1);
		ck_assert_uint_eq(no, p);
		cairn_index_pack_info(idx, p, got, &type, &size);
		ck_assert_mem_eq(got, id, 32);
		ck_assert_uint_eq(type, p % 3 ? CAIRN_BLOB_DATA : CAIRN_BLOB_TREE);
		ck_assert_uint_eq(size, 1000ull * p + (1ull << 33));
	}
	cairn_index_pack_info(idx, 3, NULL, NULL, &size);
	ck_assert_uint_eq(size, 3000 + (1ull << 33));
	ck_assert_uint_eq(cairn_index_npacks(idx), NP);
	tu_fill_random(id, 32, 5 + NP);
	ck_assert_int_eq(cairn_index_pack_find(idx, id, &no), 0);
	cairn_index_free(idx);
	cairn_index_free(NULL);
}
END_TEST

/* --- segments ------------------------------------------------------------------------ */

static void sample_segment(cairn_idxseg *s)
{
	memset(s, 0, sizeof(*s));
	cairn_pack_entry e[50];
	uint8_t id[32];
	for (int p = 0; p < 4; p++) {
		size_t n = p == 2 ? 0 : (size_t)(p + 1) * 12;
		uint32_t off = 0;
		for (size_t i = 0; i < n; i++) {
			tu_fill_random(e[i].id, 32, (uint64_t)p * 1000 + i);
			e[i].type = p == 1 ? CAIRN_BLOB_TREE : CAIRN_BLOB_DATA;
			e[i].offset = off;
			e[i].clen = 29 + (uint32_t)(i * 1000);
			e[i].rawlen = i == 3 ? UINT32_MAX : (uint32_t)(i * 1500);
			off += e[i].clen;
		}
		tu_fill_random(id, 32, 77 + (uint64_t)p);
		uint64_t size = p == 3 ? (uint64_t)UINT32_MAX + 4096 : (uint64_t)off + 4096 + 100;
		cairn_idxseg_add(s, id, p == 1 ? CAIRN_BLOB_TREE : CAIRN_BLOB_DATA, size, e, n);
	}
	/* an entry at the very end of the 32-bit range */
	cairn_pack_entry last = e[0];
	tu_fill_random(last.id, 32, 98);
	last.offset = UINT32_MAX - 100;
	last.clen = 100;
	tu_fill_random(id, 32, 99);
	cairn_idxseg_add(s, id, CAIRN_BLOB_DATA, (uint64_t)UINT32_MAX, &last, 1);
}

static void assert_seg_eq(const cairn_idxseg *a, const cairn_idxseg *b)
{
	ck_assert_uint_eq(a->n, b->n);
	for (size_t i = 0; i < a->n; i++) {
		const cairn_idx_pack *x = &a->packs[i], *y = &b->packs[i];
		ck_assert_mem_eq(x->id, y->id, 32);
		ck_assert_uint_eq(x->type, y->type);
		ck_assert_uint_eq(x->size, y->size);
		ck_assert_uint_eq(x->n, y->n);
		for (size_t j = 0; j < x->n; j++) {
			ck_assert_mem_eq(x->e[j].id, y->e[j].id, 32);
			ck_assert_uint_eq(x->e[j].type, y->e[j].type);
			ck_assert_uint_eq(x->e[j].offset, y->e[j].offset);
			ck_assert_uint_eq(x->e[j].clen, y->e[j].clen);
			ck_assert_uint_eq(x->e[j].rawlen, y->e[j].rawlen);
		}
	}
}

START_TEST(segment_roundtrip)
{
	cairn_idxseg s, d;
	cairn_buf b = CAIRN_BUF_INIT, b2 = CAIRN_BUF_INIT;
	sample_segment(&s);
	cairn_idxseg_encode(&s, &b);
	ck_assert_int_eq(cairn_idxseg_decode(&d, b.data, b.len), 0);
	assert_seg_eq(&s, &d);
	cairn_idxseg_encode(&d, &b2);
	ck_assert_uint_eq(b2.len, b.len);
	ck_assert_mem_eq(b2.data, b.data, b.len);
	cairn_idxseg_free(&d);
	ck_assert_uint_eq(d.n, 0);
	ck_assert_ptr_null(d.packs);

	/* an empty segment */
	cairn_idxseg empty = {0};
	cairn_buf eb = CAIRN_BUF_INIT;
	cairn_idxseg_encode(&empty, &eb);
	ck_assert_int_eq(cairn_idxseg_decode(&d, eb.data, eb.len), 0);
	ck_assert_uint_eq(d.n, 0);
	cairn_idxseg_free(&d);
	cairn_buf_free(&eb);

	/* into the in-memory index */
	cairn_index *idx = cairn_index_new();
	cairn_index_add_segment(idx, &s);
	ck_assert_uint_eq(cairn_index_npacks(idx), s.n);
	size_t total = 0;
	for (size_t i = 0; i < s.n; i++) {
		uint32_t no;
		ck_assert_int_eq(cairn_index_pack_find(idx, s.packs[i].id, &no), 1);
		for (size_t j = 0; j < s.packs[i].n; j++) {
			const cairn_pack_entry *e = &s.packs[i].e[j];
			cairn_blob_loc want = {no, e->offset, e->clen, e->type};
			expect_loc(idx, e->id, &want);
			total++;
		}
	}
	ck_assert_uint_eq(cairn_index_count(idx), total);
	cairn_index_add_segment(idx, &s); /* again: nothing new */
	ck_assert_uint_eq(cairn_index_count(idx), total);
	ck_assert_uint_eq(cairn_index_npacks(idx), s.n);
	cairn_index_free(idx);

	cairn_idxseg_free(&s);
	cairn_buf_free(&b);
	cairn_buf_free(&b2);
}
END_TEST

START_TEST(segment_rejects)
{
	cairn_idxseg s, d;
	cairn_buf b = CAIRN_BUF_INIT;
	sample_segment(&s);
	cairn_idxseg_encode(&s, &b);

	/* every truncation */
	for (size_t n = 0; n < b.len; n++) {
		memset(&d, 0x5a, sizeof(d));
		ck_assert_int_eq(cairn_idxseg_decode(&d, b.data, n), -EBADMSG);
		ck_assert_uint_eq(d.n, 0);
		ck_assert_ptr_null(d.packs);
	}
	/* trailing bytes */
	uint8_t *x = malloc(b.len + 1);
	memcpy(x, b.data, b.len);
	x[b.len] = 0;
	ck_assert_int_eq(cairn_idxseg_decode(&d, x, b.len + 1), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "trailing"));
	/* unknown version */
	x[0] = 2;
	ck_assert_int_eq(cairn_idxseg_decode(&d, x, b.len), -EBADMSG);
	free(x);

	/* hand-made segments: one pack, one entry */
	const struct {
		uint8_t ptype, etype;
		uint64_t size, off, clen, raw;
		int ok;
	} cases[] = {
		{CAIRN_BLOB_DATA, CAIRN_BLOB_DATA, 1000, 0, 1000, 5, 1},
		{CAIRN_BLOB_DATA, CAIRN_BLOB_DATA, 1000, 1, 1000, 5, 0}, /* past the pack */
		{CAIRN_BLOB_DATA, CAIRN_BLOB_DATA, 1000, 999, 1, 5, 1},
		{3, CAIRN_BLOB_DATA, 1000, 0, 10, 5, 0},                 /* pack type */
		{0, CAIRN_BLOB_DATA, 1000, 0, 10, 5, 0},
		{CAIRN_BLOB_DATA, 0, 1000, 0, 10, 5, 0},                 /* blob type */
		{CAIRN_BLOB_DATA, 3, 1000, 0, 10, 5, 0},
		{CAIRN_BLOB_DATA, CAIRN_BLOB_TREE, 1ull << 40, 1ull << 32, 10, 5, 0}, /* 32 bits */
		{CAIRN_BLOB_DATA, CAIRN_BLOB_TREE, 1ull << 40, 0, 1ull << 32, 5, 0},
		{CAIRN_BLOB_DATA, CAIRN_BLOB_TREE, 1ull << 40, 0, 10, 1ull << 32, 0},
		{CAIRN_BLOB_DATA, CAIRN_BLOB_TREE, 1ull << 40, 0, 10, UINT32_MAX, 1},
		{CAIRN_BLOB_DATA, CAIRN_BLOB_TREE, UINT64_MAX, UINT32_MAX, UINT32_MAX, 0, 1},
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		cairn_buf h = CAIRN_BUF_INIT;
		uint8_t id[32] = {1};
		cairn_buf_put_u8(&h, 1);
		cairn_buf_put_uvar(&h, 1);
		cairn_buf_append(&h, id, 32);
		cairn_buf_put_u8(&h, cases[c].ptype);
		cairn_buf_put_uvar(&h, cases[c].size);
		cairn_buf_put_uvar(&h, 1);
		cairn_buf_put_u8(&h, cases[c].etype);
		cairn_buf_append(&h, id, 32);
		cairn_buf_put_uvar(&h, cases[c].off);
		cairn_buf_put_uvar(&h, cases[c].clen);
		cairn_buf_put_uvar(&h, cases[c].raw);
		int r = cairn_idxseg_decode(&d, h.data, h.len);
		ck_assert_msg(cases[c].ok ? r == 0 : r == -EBADMSG, "case %zu: %d (%s)", c, r,
			      cairn_error_last());
		if (r == 0) {
			ck_assert_uint_eq(d.n, 1);
			ck_assert_uint_eq(d.packs[0].size, cases[c].size);
			ck_assert_uint_eq(d.packs[0].e[0].offset, cases[c].off);
			ck_assert_uint_eq(d.packs[0].e[0].clen, cases[c].clen);
			ck_assert_uint_eq(d.packs[0].e[0].rawlen, cases[c].raw);
		}
		cairn_idxseg_free(&d);
		cairn_buf_free(&h);
	}

	/* counts larger than the input could hold are refused before allocating */
	cairn_buf h = CAIRN_BUF_INIT;
	cairn_buf_put_u8(&h, 1);
	cairn_buf_put_uvar(&h, UINT64_MAX);
	ck_assert_int_eq(cairn_idxseg_decode(&d, h.data, h.len), -EBADMSG);
	h.len = 0;
	uint8_t id[32] = {2};
	cairn_buf_put_u8(&h, 1);
	cairn_buf_put_uvar(&h, 1);
	cairn_buf_append(&h, id, 32);
	cairn_buf_put_u8(&h, CAIRN_BLOB_DATA);
	cairn_buf_put_uvar(&h, 100);
	cairn_buf_put_uvar(&h, CAIRN_PACK_MAX_BLOBS + 1ull);
	ck_assert_int_eq(cairn_idxseg_decode(&d, h.data, h.len), -EBADMSG);
	cairn_buf_free(&h);

	/* random corruption never crashes and never leaves anything allocated on failure */
	uint8_t *y = malloc(b.len);
	for (int k = 0; k < 20000; k++) {
		memcpy(y, b.data, b.len);
		uint64_t r;
		tu_fill_random(&r, sizeof(r), (uint64_t)k);
		y[r % b.len] ^= (uint8_t)(1u << ((r >> 32) % 8));
		int rc = cairn_idxseg_decode(&d, y, b.len);
		ck_assert(rc == 0 || rc == -EBADMSG);
		if (rc < 0)
			ck_assert_ptr_null(d.packs);
		cairn_idxseg_free(&d);
	}
	free(y);

	cairn_idxseg_free(&s);
	cairn_buf_free(&b);
}
END_TEST

/*
 * Lookups search the compacted array by interpolation on the ids' first 8
 * bytes; ids are uniform in practice, but a skewed set (exponentially spread
 * prefixes, runs sharing all 8 bytes, the extremes) must still be found, and
 * ids between them not.
 */
START_TEST(index_skewed_ids)
{
	enum { N = 60000 };
	uint8_t *ids = calloc(N, 32), probe[32];
	for (uint32_t i = 0; i < N; i++) {
		uint8_t *id = ids + (size_t)i * 32;
		uint64_t k;
		if (i < 64)
			k = i == 63 ? UINT64_MAX : 1ull << i; /* 1, 2, 4, ... 2^62, max */
		else if (i < 40000)
			k = 0x4000000000000000ull + (i / 100); /* runs of 100 equal prefixes */
		else
			k = 0xfffffffffff00000ull + (uint64_t)(i - 40000) * 16;
		for (int b = 0; b < 8; b++)
			id[b] = (uint8_t)(k >> (56 - 8 * b));
		id[8] = (uint8_t)(i >> 16);
		id[9] = (uint8_t)(i >> 8);
		id[10] = (uint8_t)i;
	}
	memset(ids + (size_t)(N - 1) * 32, 0, 32); /* the all-zero id */
	cairn_index *idx = cairn_index_new();
	for (uint32_t i = 0; i < N; i++)
		ck_assert_int_eq(cairn_index_add(idx, ids + (size_t)i * 32, CAIRN_BLOB_DATA, 0, i, 1), 1);
	cairn_index_compact(idx);
	for (uint32_t i = 0; i < N; i++) {
		cairn_blob_loc want = {0, i, 1, CAIRN_BLOB_DATA};
		expect_loc(idx, ids + (size_t)i * 32, &want);
		/* a neighbour that is not there: last byte changed */
		memcpy(probe, ids + (size_t)i * 32, 32);
		probe[31] = 0x5a;
		if (cairn_index_lookup(idx, probe, NULL))
			ck_abort_msg("absent neighbour of %u found", i);
	}
	memset(probe, 0xff, 32);
	ck_assert_int_eq(cairn_index_lookup(idx, probe, NULL), 0);
	cairn_index_free(idx);
	free(ids);
}
END_TEST

static Suite *engine_index_suite(void)
{
	Suite *s = suite_create("index");
	TCase *mem = tcase_create("in-memory");
	tcase_set_timeout(mem, 600);
	tcase_add_test(mem, index_million);
	tcase_add_test(mem, index_compaction);
	tcase_add_test(mem, index_skewed_ids);
	tcase_add_test(mem, pack_table);
	suite_add_tcase(s, mem);
	TCase *seg = tcase_create("segments");
	tcase_set_timeout(seg, 120);
	tcase_add_test(seg, segment_roundtrip);
	tcase_add_test(seg, segment_rejects);
	suite_add_tcase(s, seg);
	return s;
}

CAIRN_CHECK_MAIN(engine_index_suite)
