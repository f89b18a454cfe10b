/*
 * check_pack.c - packs: building with cairn_packw_* (empty, small, large and
 * 8 MiB blobs), the keyless trailer and its verification (a flipped byte in
 * any segment is found and located), the encrypted header (round trip,
 * padding that hides the blob count), blob decoding with the id check,
 * wrong keys, and pack object names.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "engine/engine.h"
#include "engine/pack_int.h"
#include "tests/support/check_main.h"
#include "tests/support/testutil.h"

#define BIG (8u << 20)

static cairn_keyset keys;

static void setup(void)
{
	uint8_t repo[CAIRN_KEY_LEN];
	tu_fill_random(repo, sizeof(repo), 1);
	cairn_keyset_generate(&keys, repo);
}

/* The blobs of the main test pack. */
typedef struct blob {
	uint8_t *data;
	size_t len;
	uint8_t type;
	uint8_t id[32];
} blob;

#define NBLOBS 6

static void make_blobs(blob *b)
{
	static const size_t lens[NBLOBS] = {0, 5, 100000, 300000, BIG, 777};
	for (int i = 0; i < NBLOBS; i++) {
		b[i].len = lens[i];
		b[i].data = malloc(lens[i] ? lens[i] : 1);
		if (i == 2 || i == 5)
			tu_fill_text(b[i].data, lens[i], (uint64_t)i); /* compressible */
		else
			tu_fill_random(b[i].data, lens[i], (uint64_t)i + 10);
		b[i].type = i == 5 ? CAIRN_BLOB_TREE : CAIRN_BLOB_DATA;
		cairn_chunk_id(&keys, b[i].data, b[i].len, b[i].id);
	}
}

static void free_blobs(blob *b)
{
	for (int i = 0; i < NBLOBS; i++)
		free(b[i].data);
}

/* A finished pack of @p b; @p hdr_off receives the blobs' total size. */
static cairn_packw *build(cairn_codec *cx, const blob *b, size_t n, uint64_t *hdr_off)
{
	cairn_packw *pw = cairn_packw_new(&keys, CAIRN_BLOB_DATA);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(cairn_packw_add(pw, cx, b[i].id, b[i].type, b[i].data, b[i].len), 0);
	ck_assert_uint_eq(cairn_packw_count(pw), n);
	*hdr_off = cairn_packw_size(pw);
	ck_assert_int_eq(cairn_packw_finish(pw, cx), 0);
	return pw;
}

static void parse(const cairn_buf *p, cairn_pack_trailer *t)
{
	uint32_t tl;
	ck_assert_uint_ge(p->len, CAIRN_PACK_FOOTER);
	ck_assert_int_eq(cairn_pack_footer(p->data + p->len - CAIRN_PACK_FOOTER, p->len, &tl), 0);
	ck_assert_uint_le(tl, p->len);
	ck_assert_int_eq(cairn_pack_trailer_parse(t, p->data + p->len - tl, tl, p->len), 0);
	ck_assert_uint_eq(t->trailer_len, tl);
}

START_TEST(pack_roundtrip)
{
	blob b[NBLOBS];
	make_blobs(b);
	cairn_codec *cx = cairn_codec_new(3);
	uint64_t hdr_off;
	cairn_packw *pw = build(cx, b, NBLOBS, &hdr_off);
	ck_assert_uint_eq(cairn_packw_type(pw), CAIRN_BLOB_DATA);

	/* entries tile the blob area; incompressible blobs are stored raw */
	const cairn_pack_entry *we = cairn_packw_entries(pw);
	uint64_t off = 0;
	for (int i = 0; i < NBLOBS; i++) {
		ck_assert_uint_eq(we[i].offset, off);
		ck_assert_uint_eq(we[i].rawlen, b[i].len);
		ck_assert_uint_eq(we[i].type, b[i].type);
		ck_assert_mem_eq(we[i].id, b[i].id, 32);
		off += we[i].clen;
	}
	ck_assert_uint_eq(off, hdr_off);
	ck_assert_uint_eq(we[0].clen, CAIRN_BLOB_OVERHEAD);
	ck_assert_uint_eq(we[4].clen, BIG + CAIRN_BLOB_OVERHEAD);
	ck_assert_uint_lt(we[2].clen, b[2].len / 2);

	/* trailer */
	const cairn_buf *p = cairn_packw_bytes(pw);
	cairn_pack_trailer t;
	parse(p, &t);
	ck_assert_uint_eq(t.seg_size, CAIRN_PACK_SEGMENT);
	ck_assert_uint_eq(t.hdr_off, hdr_off);
	ck_assert_uint_eq(t.hdr_len % CAIRN_PACK_HDR_PAD, 0);
	ck_assert_uint_eq(t.data_len, t.hdr_off + t.hdr_len);
	ck_assert_uint_eq(t.data_len + t.trailer_len, p->len);
	ck_assert_uint_eq(t.nseg, (t.data_len + CAIRN_PACK_SEGMENT - 1) / CAIRN_PACK_SEGMENT);
	ck_assert_uint_ge(t.nseg, 9);
	ck_assert_uint_eq(t.trailer_len, 44 + 16 * t.nseg + CAIRN_PACK_FOOTER);

	/* keyless verification */
	int64_t bad = 7;
	ck_assert_int_eq(cairn_pack_verify(p->data, p->len, &bad), 0);
	ck_assert_int_eq(bad, -1);

	/* header */
	cairn_pack_entry *e;
	size_t n;
	ck_assert_int_eq(cairn_pack_header_decode(cx, &keys, cairn_packw_id(pw), p->data + t.hdr_off,
						  t.hdr_len, t.hdr_off, &e, &n),
			 0);
	ck_assert_uint_eq(n, NBLOBS);
	for (int i = 0; i < NBLOBS; i++) {
		ck_assert_mem_eq(e[i].id, we[i].id, 32);
		ck_assert_uint_eq(e[i].type, we[i].type);
		ck_assert_uint_eq(e[i].offset, we[i].offset);
		ck_assert_uint_eq(e[i].clen, we[i].clen);
		ck_assert_uint_eq(e[i].rawlen, we[i].rawlen);
	}
	/* the header only opens at its own offset's worth of blobs */
	cairn_pack_entry *e2;
	size_t n2;
	ck_assert_int_eq(cairn_pack_header_decode(cx, &keys, cairn_packw_id(pw), p->data + t.hdr_off,
						  t.hdr_len, t.hdr_off - 1, &e2, &n2),
			 -EBADMSG);
	ck_assert_ptr_null(e2);

	/* blobs, with their id checked */
	uint8_t key[32];
	cairn_pack_key(key, &keys, cairn_packw_id(pw));
	cairn_buf out = CAIRN_BUF_INIT;
	for (int i = 0; i < NBLOBS; i++) {
		ck_assert_int_eq(cairn_pack_blob_decode(cx, &keys, key, &e[i], p->data + e[i].offset,
							&out),
				 0);
		ck_assert_uint_eq(out.len, b[i].len);
		if (b[i].len)
			ck_assert_mem_eq(out.data, b[i].data, b[i].len);
	}
	/* an entry naming another id, or another length, fails */
	cairn_pack_entry x = e[3];
	x.id[0] ^= 1;
	ck_assert_int_eq(cairn_pack_blob_decode(cx, &keys, key, &x, p->data + x.offset, &out),
			 -EBADMSG);
	ck_assert_uint_eq(out.len, 0);
	x = e[3];
	x.rawlen--;
	ck_assert_int_lt(cairn_pack_blob_decode(cx, &keys, key, &x, p->data + x.offset, &out), 0);
	ck_assert_uint_eq(out.len, 0);
	x.rawlen += 2; /* decodes, then disagrees: nothing handed out either */
	ck_assert_int_eq(cairn_pack_blob_decode(cx, &keys, key, &x, p->data + x.offset, &out),
			 -EBADMSG);
	ck_assert_uint_eq(out.len, 0);
	/* the type is authenticated (it is the AAD) */
	x = e[3];
	x.type = CAIRN_BLOB_TREE;
	ck_assert_int_eq(cairn_pack_blob_decode(cx, &keys, key, &x, p->data + x.offset, &out),
			 -EBADMSG);
	/* a blob is bound to its place: the bytes of another blob do not pass as this one */
	ck_assert_int_eq(cairn_pack_blob_decode(cx, &keys, key, &e[1], p->data + e[5].offset, &out),
			 -EBADMSG);

	/* no more blobs after finish; finishing twice changes nothing */
	size_t len = p->len;
	ck_assert_int_eq(cairn_packw_add(pw, cx, b[1].id, CAIRN_BLOB_DATA, "x", 1), -ERANGE);
	ck_assert_int_eq(cairn_packw_finish(pw, cx), 0);
	ck_assert_uint_eq(cairn_packw_bytes(pw)->len, len);

	cairn_buf_free(&out);
	free(e);
	cairn_pack_trailer_free(&t);
	cairn_packw_free(pw);
	cairn_codec_free(cx);
	free_blobs(b);
}
END_TEST

/* A pack written to a file as it grows: same layout as in memory, valid trailer and blobs. */
START_TEST(file_pack_matches_memory)
{
	blob b[NBLOBS];
	make_blobs(b);
	cairn_codec *cx = cairn_codec_new(3);
	uint64_t hdr_off;
	cairn_packw *mem = build(cx, b, NBLOBS, &hdr_off);
	FILE *f = tmpfile();
	ck_assert_ptr_nonnull(f);
	cairn_packw *pw = cairn_packw_new_file(&keys, CAIRN_BLOB_DATA, dup(fileno(f)));
	ck_assert_int_ge(cairn_packw_fd(pw), 0);
	ck_assert_int_eq(cairn_packw_fd(mem), -1);
	for (int i = 0; i < NBLOBS; i++)
		ck_assert_int_eq(cairn_packw_add(pw, cx, b[i].id, b[i].type, b[i].data, b[i].len), 0);
	ck_assert_uint_eq(cairn_packw_size(pw), hdr_off);
	ck_assert_int_eq(cairn_packw_finish(pw, cx), 0);
	ck_assert_uint_eq(cairn_packw_total(pw), cairn_packw_bytes(mem)->len);

	/* read the file back: the same entries, a verifiable trailer, decodable blobs */
	cairn_buf p = CAIRN_BUF_INIT;
	cairn_buf_reserve(&p, cairn_packw_total(pw));
	ck_assert_int_eq(fseek(f, 0, SEEK_SET), 0);
	p.len = fread(p.data, 1, cairn_packw_total(pw), f);
	ck_assert_uint_eq(p.len, cairn_packw_total(pw));
	int64_t bad = 7;
	ck_assert_int_eq(cairn_pack_verify(p.data, p.len, &bad), 0);
	ck_assert_int_eq(bad, -1);
	cairn_pack_trailer t;
	parse(&p, &t);
	ck_assert_uint_eq(t.hdr_off, hdr_off);
	ck_assert_uint_ge(t.nseg, 9);
	cairn_pack_entry *e;
	size_t n;
	ck_assert_int_eq(cairn_pack_header_decode(cx, &keys, cairn_packw_id(pw), p.data + t.hdr_off,
						  t.hdr_len, t.hdr_off, &e, &n),
			 0);
	ck_assert_uint_eq(n, NBLOBS);
	const cairn_pack_entry *me = cairn_packw_entries(mem);
	uint8_t key[32];
	cairn_pack_key(key, &keys, cairn_packw_id(pw));
	cairn_buf out = CAIRN_BUF_INIT;
	for (int i = 0; i < NBLOBS; i++) {
		ck_assert_uint_eq(e[i].offset, me[i].offset);
		ck_assert_uint_eq(e[i].clen, me[i].clen);
		ck_assert_int_eq(cairn_pack_blob_decode(cx, &keys, key, &e[i], p.data + e[i].offset,
							&out),
				 0);
		ck_assert_uint_eq(out.len, b[i].len);
		if (b[i].len)
			ck_assert_mem_eq(out.data, b[i].data, b[i].len);
	}
	cairn_buf_free(&out);
	free(e);
	cairn_pack_trailer_free(&t);
	cairn_buf_free(&p);
	cairn_packw_free(pw);
	cairn_packw_free(mem);
	fclose(f);

	/* a full disk is an error with a message, not a short pack: blobs are
	 * written in batches, so it shows at the latest when the pack is finished */
	int full = open("/dev/full", O_WRONLY | O_CLOEXEC);
	ck_assert_int_ge(full, 0);
	pw = cairn_packw_new_file(&keys, CAIRN_BLOB_DATA, full);
	int rc = cairn_packw_add(pw, cx, b[3].id, b[3].type, b[3].data, b[3].len);
	if (rc == 0)
		rc = cairn_packw_finish(pw, cx);
	ck_assert_int_eq(rc, -ENOSPC);
	/* and stays failed: nothing more goes into a pack whose file lost data */
	ck_assert_int_eq(cairn_packw_add(pw, cx, b[1].id, b[1].type, b[1].data, b[1].len), -ENOSPC);
	ck_assert_int_eq(cairn_packw_finish(pw, cx), -ENOSPC);
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "no space left"));
	cairn_packw_free(pw);
	cairn_codec_free(cx);
	free_blobs(b);
}
END_TEST

/*
 * A pack file whose trailer cannot be written (the file-size limit falls
 * inside it, after every blob and the header went out) fails, and stays
 * failed: finishing again once there is room does not seal a second header
 * and trailer onto the torn file.
 */
START_TEST(trailer_write_fails)
{
	blob b[NBLOBS];
	make_blobs(b);
	cairn_codec *cx = cairn_codec_new(3);
	FILE *f = tmpfile();
	cairn_packw *pw = cairn_packw_new_file(&keys, CAIRN_BLOB_DATA, fileno(f));
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(cairn_packw_add(pw, cx, b[i].id, b[i].type, b[i].data, b[i].len), 0);
	ck_assert_int_eq(cairn_packw_finish(pw, cx), 0);
	long whole = (long)lseek(fileno(f), 0, SEEK_END);
	cairn_packw_free(pw);
	fclose(f);
	ck_assert_int_gt(whole, 64);

	signal(SIGXFSZ, SIG_IGN);
	struct rlimit old, lim;
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = (rlim_t)whole - 8; /* inside the trailer's last bytes */
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	f = tmpfile();
	pw = cairn_packw_new_file(&keys, CAIRN_BLOB_DATA, fileno(f));
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(cairn_packw_add(pw, cx, b[i].id, b[i].type, b[i].data, b[i].len), 0);
	ck_assert_int_eq(cairn_packw_finish(pw, cx), -EFBIG);
	/* room again (the disk freed up): a retry must not complete the torn pack */
	setrlimit(RLIMIT_FSIZE, &old);
	ck_assert_int_eq(cairn_packw_finish(pw, cx), -EFBIG);
	ck_assert_int_eq(cairn_packw_add(pw, cx, b[5].id, b[5].type, b[5].data, b[5].len), -EFBIG);
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "writing a pack"));
	ck_assert_int_le(lseek(fileno(f), 0, SEEK_END), whole - 8);
	cairn_packw_free(pw);
	fclose(f);
	cairn_codec_free(cx);
	free_blobs(b);
}
END_TEST

START_TEST(wrong_key)
{
	blob b[NBLOBS];
	make_blobs(b);
	cairn_codec *cx = cairn_codec_new(3);
	uint64_t hdr_off;
	cairn_packw *pw = build(cx, b, 4, &hdr_off);
	const cairn_buf *p = cairn_packw_bytes(pw);
	cairn_pack_trailer t;
	parse(p, &t);

	cairn_keyset other;
	uint8_t repo[32], key[32], okey[32];
	memcpy(repo, keys.repo, 32);
	cairn_keyset_generate(&other, repo);
	cairn_pack_entry *e = (cairn_pack_entry *)&e;
	size_t n = 9;
	/* another key set, or another pack id, cannot open the header */
	ck_assert_int_eq(cairn_pack_header_decode(cx, &other, cairn_packw_id(pw),
						  p->data + t.hdr_off, t.hdr_len, t.hdr_off, &e, &n),
			 -EBADMSG);
	ck_assert_ptr_null(e);
	ck_assert_uint_eq(n, 0);
	uint8_t id[32];
	memcpy(id, cairn_packw_id(pw), 32);
	id[31] ^= 0x80;
	ck_assert_int_eq(cairn_pack_header_decode(cx, &keys, id, p->data + t.hdr_off, t.hdr_len,
						  t.hdr_off, &e, &n),
			 -EBADMSG);
	/* a flipped header byte fails authentication */
	uint8_t *h = malloc(t.hdr_len);
	memcpy(h, p->data + t.hdr_off, t.hdr_len);
	h[t.hdr_len / 2] ^= 4;
	ck_assert_int_eq(cairn_pack_header_decode(cx, &keys, cairn_packw_id(pw), h, t.hdr_len,
						  t.hdr_off, &e, &n),
			 -EBADMSG);
	free(h);

	ck_assert_int_eq(cairn_pack_header_decode(cx, &keys, cairn_packw_id(pw), p->data + t.hdr_off,
						  t.hdr_len, t.hdr_off, &e, &n),
			 0);
	cairn_pack_key(key, &keys, cairn_packw_id(pw));
	cairn_pack_key(okey, &other, cairn_packw_id(pw));
	ck_assert_mem_ne(key, okey, 32);
	cairn_buf out = CAIRN_BUF_INIT;
	/* the wrong encryption key fails authentication */
	ck_assert_int_eq(cairn_pack_blob_decode(cx, &keys, okey, &e[2], p->data + e[2].offset, &out),
			 -EBADMSG);
	/* the right encryption key with the wrong id key fails the id check */
	memcpy(other.enc, keys.enc, 32);
	ck_assert_int_eq(cairn_pack_blob_decode(cx, &other, key, &e[2], p->data + e[2].offset, &out),
			 -EBADMSG);
	ck_assert_uint_eq(out.len, 0);
	ck_assert_int_eq(cairn_pack_blob_decode(cx, &keys, key, &e[2], p->data + e[2].offset, &out),
			 0);

	cairn_buf_free(&out);
	free(e);
	cairn_pack_trailer_free(&t);
	cairn_packw_free(pw);
	cairn_codec_free(cx);
	free_blobs(b);
}
END_TEST

/* The main test pack, finished, with a private copy of its bytes to damage. */
typedef struct built {
	blob b[NBLOBS];
	cairn_codec *cx;
	cairn_packw *pw;
	uint8_t *p; /* copy of the pack's len bytes */
	size_t len;
	cairn_pack_trailer t;
} built;

static void built_make(built *m)
{
	uint64_t hdr_off;
	make_blobs(m->b);
	m->cx = cairn_codec_new(3);
	m->pw = build(m->cx, m->b, NBLOBS, &hdr_off);
	const cairn_buf *pb = cairn_packw_bytes(m->pw);
	m->len = pb->len;
	m->p = malloc(m->len);
	memcpy(m->p, pb->data, m->len);
	parse(pb, &m->t);
}

static void built_free(built *m)
{
	free(m->p);
	cairn_pack_trailer_free(&m->t);
	cairn_packw_free(m->pw);
	cairn_codec_free(m->cx);
	free_blobs(m->b);
}

START_TEST(verify_locates_damage)
{
	built m;
	built_make(&m);
	uint8_t *p = m.p;
	size_t len = m.len;
	cairn_pack_trailer t = m.t;
	int64_t bad;

	/* one flipped byte in each segment: the first, middle and last byte of it */
	for (uint32_t s = 0; s < t.nseg; s++) {
		uint64_t start = (uint64_t)s * t.seg_size;
		uint64_t end = start + t.seg_size < t.data_len ? start + t.seg_size : t.data_len;
		uint64_t where[3] = {start, start + (end - start) / 2, end - 1};
		for (int k = 0; k < 3; k++) {
			p[where[k]] ^= 0x20;
			bad = -7;
			ck_assert_int_eq(cairn_pack_verify(p, len, &bad), -EBADMSG);
			ck_assert_int_eq(bad, s);
			ck_assert_ptr_nonnull(strstr(cairn_error_last(), "segment"));
			p[where[k]] ^= 0x20;
		}
	}
	ck_assert_int_eq(cairn_pack_verify(p, len, &bad), 0);

	/* damage in the trailer or the footer: detected, no segment to blame */
	size_t tr = len - t.trailer_len;
	const size_t places[] = {tr, tr + 20, tr + 30, tr + 44, tr + 44 + 16 * (t.nseg - 1),
				 len - CAIRN_PACK_FOOTER, len - CAIRN_PACK_FOOTER + 4,
				 len - CAIRN_PACK_FOOTER + 10, len - 1};
	for (size_t k = 0; k < sizeof(places) / sizeof(places[0]); k++) {
		p[places[k]] ^= 1;
		bad = -7;
		ck_assert_int_eq(cairn_pack_verify(p, len, &bad), -EBADMSG);
		ck_assert_int_eq(bad, -1);
		p[places[k]] ^= 1;
	}
	/* truncated or extended packs */
	ck_assert_int_eq(cairn_pack_verify(p, len - 1, &bad), -EBADMSG);
	ck_assert_int_eq(cairn_pack_verify(p + 1, len - 1, &bad), -EBADMSG);
	ck_assert_int_eq(cairn_pack_verify(p, 10, &bad), -EBADMSG);
	ck_assert_int_eq(cairn_pack_verify(p, 0, &bad), -EBADMSG);
	uint8_t *q = malloc(len + 1);
	memcpy(q + 1, p, len);
	ck_assert_int_eq(cairn_pack_verify(q, len + 1, &bad), -EBADMSG);
	free(q);

	/* the trailer parser wants exactly the trailer of a pack of that size */
	cairn_pack_trailer t2;
	ck_assert_int_eq(cairn_pack_trailer_parse(&t2, p + tr, t.trailer_len, len + 1), -EBADMSG);
	ck_assert_int_eq(cairn_pack_trailer_parse(&t2, p + tr + 1, t.trailer_len - 1, len),
			 -EBADMSG);
	ck_assert_int_eq(cairn_pack_trailer_parse(&t2, p + tr - 1, t.trailer_len + 1, len),
			 -EBADMSG);
	ck_assert_ptr_null(t2.segs);
	ck_assert_int_eq(cairn_pack_verify(p, len, &bad), 0);
	built_free(&m);
}
END_TEST

/* Feed @p len bytes of @p p to @p s in pieces of random sizes (1 byte .. 3 segments). */
static int feed_pieces(cairn_pack_sum *s, const uint8_t *p, size_t len, uint64_t seed, int *fails)
{
	int rc = 0;
	*fails = 0;
	for (size_t q = 0; q < len;) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		size_t k = (size_t)(seed >> 33) % (3 * CAIRN_PACK_SEGMENT) + 1;
		if (seed & (1ull << 20))
			k %= 4097; /* small pieces too, across segment boundaries */
		k = k ? k : 1;
		if (k > len - q)
			k = len - q;
		int r = cairn_pack_sum_feed(s, p + q, k);
		if (r < 0) {
			rc = r;
			(*fails)++;
		}
		q += k;
	}
	return rc;
}

/* The streamed verification agrees with the whole-pack one, piece sizes aside. */
START_TEST(sum_streamed)
{
	built m;
	built_make(&m);
	uint8_t *p = m.p;
	cairn_pack_trailer t = m.t;
	int64_t bad;
	int fails;

	/* intact, in 20 ways of cutting it, the trailer's bytes fed too (ignored) */
	for (uint64_t seed = 1; seed <= 20; seed++) {
		cairn_pack_sum *s = cairn_pack_sum_new(&t);
		ck_assert_int_eq(feed_pieces(s, p, m.len, seed, &fails), 0);
		ck_assert_int_eq(cairn_pack_sum_final(s, &bad), 0);
		ck_assert_int_eq(bad, -1);
		cairn_pack_sum_free(s);
	}

	/* two damaged segments: the feed that completes the first says so, once; final names
	 * the first and counts the other */
	ck_assert_uint_ge(t.nseg, 6);
	p[2 * (size_t)t.seg_size + 5] ^= 4;
	p[5 * (size_t)t.seg_size] ^= 4;
	for (uint64_t seed = 1; seed <= 5; seed++) {
		cairn_pack_sum *s = cairn_pack_sum_new(&t);
		ck_assert_int_eq(feed_pieces(s, p, t.data_len, seed, &fails), -EBADMSG);
		ck_assert_int_eq(fails, 1);
		ck_assert_int_eq(cairn_pack_sum_final(s, &bad), -EBADMSG);
		ck_assert_int_eq(bad, 2);
		ck_assert_msg(strstr(cairn_error_last(), "segment 2 (bytes 2097152-3145727) checksum "
							 "mismatch, and 1 more") != NULL,
			      "%s", cairn_error_last());
		cairn_pack_sum_free(s);
	}
	ck_assert_int_eq(cairn_pack_verify(p, m.len, &bad), -EBADMSG);
	ck_assert_int_eq(bad, 2);
	p[2 * (size_t)t.seg_size + 5] ^= 4;
	p[5 * (size_t)t.seg_size] ^= 4;

	/* bytes missing: not a pass */
	cairn_pack_sum *s = cairn_pack_sum_new(&t);
	ck_assert_int_eq(cairn_pack_sum_feed(s, p, t.data_len - 1), 0);
	ck_assert_int_eq(cairn_pack_sum_final(s, &bad), -EBADMSG);
	ck_assert_int_eq(bad, -1);
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "checksummed bytes read"));
	cairn_pack_sum_free(s);

	/* only the whole-pack checksum differs */
	t.whole[3] ^= 1;
	s = cairn_pack_sum_new(&t);
	ck_assert_int_eq(cairn_pack_sum_feed(s, p, t.data_len), 0);
	ck_assert_int_eq(cairn_pack_sum_final(s, &bad), -EBADMSG);
	ck_assert_int_eq(bad, -1);
	ck_assert_str_eq(cairn_error_last(), "whole-pack checksum mismatch");
	cairn_pack_sum_free(s);
	built_free(&m);
}
END_TEST

/* cairn_pack_check_object of @p p as it is on @p t; also checks it agrees with verify. */
static int check_stored(cairn_target *t, const uint8_t *p, size_t len, cairn_buf *buf,
			int64_t *bad)
{
	int64_t vbad;
	ck_assert_int_eq(cairn_target_put(t, "data/00/obj", p, len), 0);
	int rc = cairn_pack_check_object(t, "data/00/obj", len, buf, bad);
	int vr = cairn_pack_verify(p, len, &vbad);
	ck_assert_int_eq(rc, vr);
	ck_assert_int_eq(*bad, vbad);
	return rc;
}

/*
 * The streamed keyless check of a stored pack (what scrub runs) reads it in
 * windows and the tail once, and finds what the whole-pack check finds:
 * damage in the windows, in the header the tail read holds, in the trailer.
 */
START_TEST(check_object_streams)
{
	built m;
	built_make(&m);
	char *dir = tu_mkdtemp("packobj");
	cairn_target *t;
	ck_assert_int_eq(cairn_target_local_open(&t, dir), 0);
	cairn_buf buf = CAIRN_BUF_INIT;
	int64_t bad;
	ck_assert_uint_gt(m.len, CAIRN_PACK_WINDOW + CAIRN_PACK_TAIL);
	ck_assert_int_eq(check_stored(t, m.p, m.len, &buf, &bad), 0);
	ck_assert_uint_lt(buf.cap, (size_t)CAIRN_PACK_WINDOW * 2); /* a window, not the pack */

	const size_t at[] = {0, CAIRN_PACK_WINDOW - 1, CAIRN_PACK_WINDOW, m.t.hdr_off - 1,
			     m.t.hdr_off + 5, m.t.data_len - 1, m.t.data_len + 3, m.len - 1};
	for (size_t k = 0; k < sizeof(at) / sizeof(at[0]); k++) {
		m.p[at[k]] ^= 0x40;
		ck_assert_int_eq(check_stored(t, m.p, m.len, &buf, &bad), -EBADMSG);
		if (at[k] < m.t.data_len)
			ck_assert_int_eq(bad, (int64_t)(at[k] / m.t.seg_size));
		m.p[at[k]] ^= 0x40;
	}
	/* a trailer has no key: one re-made with a 1 GiB segment size (checksums right) is
	 * valid, and is still read in windows, not in one piece */
	static const char magic[8] = {'C', 'R', 'N', 'P', 'A', 'C', 'K', '1'};
	size_t body = 44 + 16, flen = m.t.data_len + body + CAIRN_PACK_FOOTER;
	uint8_t *f = malloc(flen);
	memcpy(f, m.p, m.t.data_len);
	uint8_t *tb = f + m.t.data_len;
	cairn_put_le32(tb, 1u << 30);
	cairn_put_le32(tb + 4, 1);
	cairn_put_le64(tb + 8, m.t.hdr_off);
	cairn_put_le32(tb + 16, m.t.hdr_len);
	cairn_put_le64(tb + 20, m.t.data_len);
	cairn_xxh128(f, m.t.data_len, tb + 28);
	cairn_xxh128(f, m.t.data_len, tb + 44);
	cairn_put_le32(tb + body, (uint32_t)body);
	cairn_put_le32(tb + body + 4, 1);
	cairn_xxh128(tb, body, tb + body + 8);
	memcpy(tb + body + 24, magic, 8);
	cairn_buf_free(&buf);
	ck_assert_int_eq(check_stored(t, f, flen, &buf, &bad), 0);
	ck_assert_uint_lt(buf.cap, (size_t)CAIRN_PACK_WINDOW * 2);
	f[m.t.data_len / 2] ^= 1;
	ck_assert_int_eq(check_stored(t, f, flen, &buf, &bad), -EBADMSG);
	ck_assert_int_eq(bad, 0);
	free(f);

	/* a target dying at any read: unreadable (the read named when it was a window), never
	 * damaged and never intact */
	cairn_target *ft;
	ck_assert_int_eq(cairn_target_open(&ft, dir), 0);
	ck_assert_int_eq(cairn_target_fault_wrap(&ft, ft, NULL), 0);
	ck_assert_int_eq(cairn_target_put(ft, "data/00/obj", m.p, m.len), 0);
	int windows = 0;
	for (int64_t n = 0; n < 8; n++) {
		cairn_fault_opts fo = {.fail_errno = EIO, .fail_after = n, .fail_once = 1,
				       .ops_mask = CAIRN_FAULT_OP_GET};
		cairn_target_fault_set(ft, &fo);
		int rc = cairn_pack_check_object(ft, "data/00/obj", m.len, &buf, &bad);
		if (rc == 0)
			break; /* read n was past the last */
		ck_assert_int_eq(rc, -EIO);
		windows += strstr(cairn_error_last(), "reading bytes") != NULL;
	}
	ck_assert_int_ge(windows, 4); /* 8.4 MiB in 2 MiB windows */
	cairn_target_close(ft);

	/* shorter than it is said to be: unreadable, not damaged; tiny: damaged */
	ck_assert_int_eq(cairn_target_put(t, "data/00/obj", m.p, m.len - 10), 0);
	int rc = cairn_pack_check_object(t, "data/00/obj", m.len, &buf, &bad);
	ck_assert_msg(rc < 0 && rc != -EBADMSG, "rc %d: %s", rc, cairn_error_last());
	ck_assert_int_eq(cairn_target_put(t, "data/00/obj", m.p, 20), 0);
	ck_assert_int_eq(cairn_pack_check_object(t, "data/00/obj", 20, &buf, &bad), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "truncated"));

	cairn_buf_free(&buf);
	cairn_target_close(t);
	tu_rmrf(dir);
	free(dir);
	built_free(&m);
}
END_TEST

/* Header length of a finished pack of @p n small blobs. */
static uint32_t header_len(cairn_codec *cx, size_t n)
{
	cairn_packw *pw = cairn_packw_new(&keys, CAIRN_BLOB_TREE);
	for (size_t i = 0; i < n; i++) {
		uint8_t data[40], id[32];
		tu_fill_random(data, sizeof(data), i);
		cairn_chunk_id(&keys, data, sizeof(data), id);
		ck_assert_int_eq(cairn_packw_add(pw, cx, id, CAIRN_BLOB_TREE, data, sizeof(data)), 0);
	}
	ck_assert_int_eq(cairn_packw_finish(pw, cx), 0);
	const cairn_buf *p = cairn_packw_bytes(pw);
	cairn_pack_trailer t;
	int64_t bad;
	parse(p, &t);
	ck_assert_int_eq(cairn_pack_verify(p->data, p->len, &bad), 0);
	cairn_pack_entry *e;
	size_t got;
	ck_assert_int_eq(cairn_pack_header_decode(cx, &keys, cairn_packw_id(pw), p->data + t.hdr_off,
						  t.hdr_len, t.hdr_off, &e, &got),
			 0);
	ck_assert_uint_eq(got, n);
	free(e);
	uint32_t len = t.hdr_len;
	cairn_pack_trailer_free(&t);
	cairn_packw_free(pw);
	return len;
}

START_TEST(header_padding)
{
	cairn_codec *cx = cairn_codec_new(3);
	uint32_t h0 = header_len(cx, 0), h1 = header_len(cx, 1), h60 = header_len(cx, 60);
	uint32_t h200 = header_len(cx, 200);
	ck_assert_uint_eq(h0 % CAIRN_PACK_HDR_PAD, 0);
	ck_assert_uint_eq(h1 % CAIRN_PACK_HDR_PAD, 0);
	ck_assert_uint_eq(h200 % CAIRN_PACK_HDR_PAD, 0);
	ck_assert_uint_eq(h1, CAIRN_PACK_HDR_PAD);
	ck_assert_uint_eq(h0, h1);
	ck_assert_uint_eq(h60, h1); /* the count of blobs does not show */
	ck_assert_uint_gt(h200, h1);
	cairn_codec_free(cx);
}
END_TEST

/*
 * Pack keys for reads come from a small cache in the codec: whatever was
 * derived before, for this or another key set, the key is HKDF(enc key, pack
 * id) - also when two key sets ask for the same pack id in turn (two key sets
 * may share a repository id), and after the cache has cycled through more
 * packs than it holds.
 */
START_TEST(pack_key_cache)
{
	cairn_keyset other;
	uint8_t repo[32], ids[7][32], want[2][7][32], got[32];
	memcpy(repo, keys.repo, 32);
	cairn_keyset_generate(&other, repo);
	const cairn_keyset *sets[2] = {&keys, &other};
	cairn_codec *cx = cairn_codec_new(0);
	for (int i = 0; i < 7; i++) {
		tu_fill_random(ids[i], 32, 100 + i);
		for (int k = 0; k < 2; k++)
			cairn_subkey(want[k][i], sets[k]->enc, ids[i], 32, "cairn/pack/v1");
		ck_assert_mem_ne(want[0][i], want[1][i], 32);
	}
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < 7; i++)
			for (int k = 0; k < 2; k++) {
				int j = round == 1 ? i % 2 : i; /* round 1 hits the cache */
				cairn_pack_key_cx(cx, got, sets[k], ids[j]);
				ck_assert_mem_eq(got, want[k][j], 32);
				cairn_pack_key(got, sets[k], ids[j]);
				ck_assert_mem_eq(got, want[k][j], 32);
			}
	cairn_codec_free(cx);
}
END_TEST

START_TEST(pack_names)
{
	uint8_t id[32], back[32];
	char name[CAIRN_PACK_NAME_MAX], hex[65], bad[CAIRN_PACK_NAME_MAX + 8];
	tu_fill_random(id, sizeof(id), 99);
	cairn_pack_name(name, id);
	cairn_hex(hex, id, 32);
	ck_assert_uint_eq(strlen(name), 5 + 3 + 64);
	ck_assert_int_eq(strncmp(name, "data/", 5), 0);
	ck_assert_int_eq(strncmp(name + 5, hex, 2), 0);
	ck_assert_int_eq(name[7], '/');
	ck_assert_str_eq(name + 8, hex);
	ck_assert_int_eq(cairn_pack_name_parse(name, back), 0);
	ck_assert_mem_eq(back, id, 32);

	/* a fresh pack writer has a random id */
	cairn_packw *a = cairn_packw_new(&keys, CAIRN_BLOB_DATA), *b = cairn_packw_new(&keys, 1);
	ck_assert_mem_ne(cairn_packw_id(a), cairn_packw_id(b), 32);
	cairn_packw_free(a);
	cairn_packw_free(b);

	ck_assert_int_eq(cairn_pack_name_parse("", back), -EINVAL);
	ck_assert_int_eq(cairn_pack_name_parse("data/", back), -EINVAL);
	snprintf(bad, sizeof(bad), "index/%s", name + 5);
	ck_assert_int_eq(cairn_pack_name_parse(bad, back), -EINVAL);
	snprintf(bad, sizeof(bad), "%s0", name); /* too long */
	ck_assert_int_eq(cairn_pack_name_parse(bad, back), -EINVAL);
	snprintf(bad, sizeof(bad), "%.*s", (int)strlen(name) - 1, name); /* too short */
	ck_assert_int_eq(cairn_pack_name_parse(bad, back), -EINVAL);
	snprintf(bad, sizeof(bad), "%s", name);
	bad[5] = bad[5] == 'a' ? 'b' : 'a'; /* directory does not match the id */
	ck_assert_int_eq(cairn_pack_name_parse(bad, back), -EINVAL);
	snprintf(bad, sizeof(bad), "%s", name);
	bad[7] = '_';
	ck_assert_int_eq(cairn_pack_name_parse(bad, back), -EINVAL);
	snprintf(bad, sizeof(bad), "%s", name);
	bad[40] = 'g'; /* not hex */
	ck_assert_int_eq(cairn_pack_name_parse(bad, back), -EINVAL);
	snprintf(bad, sizeof(bad), "data/zz/zz%s", hex + 2);
	ck_assert_int_eq(cairn_pack_name_parse(bad, back), -EINVAL);
}
END_TEST

static Suite *engine_pack_suite(void)
{
	Suite *s = suite_create("pack");
	TCase *tc = tcase_create("packs");
	tcase_add_unchecked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, pack_roundtrip);
	tcase_add_test(tc, file_pack_matches_memory);
	tcase_add_test(tc, trailer_write_fails);
	tcase_add_test(tc, wrong_key);
	tcase_add_test(tc, verify_locates_damage);
	tcase_add_test(tc, sum_streamed);
	tcase_add_test(tc, check_object_streams);
	tcase_add_test(tc, header_padding);
	tcase_add_test(tc, pack_names);
	tcase_add_test(tc, pack_key_cache);
	suite_add_tcase(s, tc);
	return s;
}

CAIRN_CHECK_MAIN(engine_pack_suite)
