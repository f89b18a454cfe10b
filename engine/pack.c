/*
 * pack.c - building, parsing and keyless verification of packs.
 * See pack_int.h for the layout and docs/FORMAT.md for the byte-level spec.
 */
#include "engine/engine.h"
#include "engine/pack_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <xxhash.h>

static const char pack_magic[8] = {'C', 'R', 'N', 'P', 'A', 'C', 'K', '1'};
static const char hdr_aad[] = "cairn/pack-header/v1";
#define HDR_COUNTER UINT64_MAX

/* Running checksums of a pack's bytes (below). */
typedef struct seghash seghash;

struct cairn_packw {
	uint8_t id[32];
	uint8_t key[32];
	uint8_t type;
	cairn_buf bytes; /* the pack; in file mode the blobs not yet written out */
	cairn_pack_entry *e;
	size_t n, cap;
	int finished;
	int failed; /* file mode: -errno of a failed write; the pack is unusable */
	/* file mode: the pack goes to fd as it grows, hashed on the way */
	int fd;
	uint64_t off;           /* bytes in the pack so far, written or staged in bytes */
	seghash *sums;          /* of everything written */
};

/* --- running checksums: the trailer's XXH3-128s of a pack fed in order ----------------- */

struct seghash {
	XXH3_state_t *whole, *seg;
	uint32_t seg_size;
	uint64_t fill;  /* bytes in the current segment */
	cairn_buf segs; /* 16 bytes per completed segment */
};

static void sh_digest(XXH3_state_t *st, uint8_t out[16])
{
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(st));
	memcpy(out, c.digest, 16);
}

static seghash *sh_new(uint32_t seg_size)
{
	seghash *h = cairn_xcalloc(1, sizeof(*h));
	h->whole = XXH3_createState();
	h->seg = XXH3_createState();
	if (!h->whole || !h->seg)
		abort();
	XXH3_128bits_reset(h->whole);
	XXH3_128bits_reset(h->seg);
	h->seg_size = seg_size;
	return h;
}

static void sh_free(seghash *h)
{
	if (!h)
		return;
	XXH3_freeState(h->whole);
	XXH3_freeState(h->seg);
	cairn_buf_free(&h->segs);
	free(h);
}

/* The next @p n bytes; each segment they complete appends its checksum to h->segs. */
static void sh_feed(seghash *h, const uint8_t *p, size_t n)
{
	XXH3_128bits_update(h->whole, p, n);
	for (size_t q = 0; q < n;) {
		size_t room = h->seg_size - h->fill;
		size_t k = n - q < room ? n - q : room;
		XXH3_128bits_update(h->seg, p + q, k);
		h->fill += k;
		q += k;
		if (h->fill == h->seg_size) {
			cairn_buf_reserve(&h->segs, 16);
			sh_digest(h->seg, h->segs.data + h->segs.len);
			h->segs.len += 16;
			XXH3_128bits_reset(h->seg);
			h->fill = 0;
		}
	}
}

/* After the last byte: close a partial last segment; @p whole receives the whole's checksum. */
static void sh_finish(seghash *h, uint8_t whole[16])
{
	if (h->fill) {
		cairn_buf_reserve(&h->segs, 16);
		sh_digest(h->seg, h->segs.data + h->segs.len);
		h->segs.len += 16;
		h->fill = 0;
	}
	sh_digest(h->whole, whole);
}

/* The error of a failed pack write, with its message (set again at each later use). */
static int pw_error(int e)
{
	return cairn_error_set(-e, "writing a pack: %s",
			       e == ENOSPC ? "no space left on device" : strerror(e));
}

/*
 * Write all of @p p to the pack file. A failure is final: the pack is
 * incomplete, so every later add or finish gets the same error.
 */
static int pw_write(cairn_packw *pw, const uint8_t *p, size_t len)
{
	for (size_t q = 0; q < len;) {
		ssize_t w = write(pw->fd, p + q, len - q);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			pw->failed = w < 0 ? -errno : -EIO;
			return pw_error(-pw->failed);
		}
		q += (size_t)w;
	}
	return 0;
}

/*
 * File mode writes sealed blobs in batches of about this much: one write per
 * blob was one system call per small file of a backup (60,000 for 2 GiB of
 * /usr), each under the lock of the shared data pack.
 */
#define FILE_BATCH (1u << 20)

/* File mode: write out what is staged in pw->bytes. */
static int pw_flush(cairn_packw *pw)
{
	int rc = pw_write(pw, pw->bytes.data, pw->bytes.len);
	pw->bytes.len = 0;
	return rc;
}

/*
 * The @p n bytes just sealed at the end of pw->bytes become part of the pack:
 * kept in memory, or (file mode) hashed into the trailer's checksums and
 * staged for the next batch written out.
 */
static int pw_commit(cairn_packw *pw, size_t n)
{
	const uint8_t *p = pw->bytes.data + pw->bytes.len;
	pw->bytes.len += n;
	if (pw->fd < 0)
		return 0;
	pw->off += n;
	sh_feed(pw->sums, p, n);
	return pw->bytes.len >= FILE_BATCH ? pw_flush(pw) : 0;
}

void cairn_pack_key(uint8_t out[32], const cairn_keyset *keys, const uint8_t pack_id[32])
{
	cairn_subkey(out, keys->enc, pack_id, 32, "cairn/pack/v1");
}

/*
 * Reading a blob derives its pack's key (HKDF: two HMAC-SHA256 under keys
 * of their own, which also throw out the thread's cached HMAC context), and
 * blobs are read a pack at a time, so nearly every derivation repeats a
 * recent one: an unchanged backup of 5,200 directories spent 6 % of its CPU
 * there. The codec keeps the last few, matched on the master key and pack.
 */
void cairn_pack_key_cx(cairn_codec *cx, uint8_t out[32], const cairn_keyset *keys,
		       const uint8_t pack_id[32])
{
	uint8_t tag[64];
	int hit;
	memcpy(tag, keys->enc, 32);
	memcpy(tag + 32, pack_id, 32);
	uint8_t *k = cairn_codec_key_slot(cx, tag, &hit);
	cairn_wipe(tag, sizeof(tag));
	if (!hit)
		cairn_pack_key(k, keys, pack_id);
	memcpy(out, k, 32);
}

void cairn_pack_name(char *out, const uint8_t pack_id[32])
{
	char hex[65];
	cairn_hex(hex, pack_id, 32);
	snprintf(out, CAIRN_PACK_NAME_MAX, "data/%.2s/%s", hex, hex);
}

int cairn_pack_name_parse(const char *name, uint8_t pack_id[32])
{
	if (strncmp(name, "data/", 5) != 0 || strlen(name) != 5 + 3 + 64 || name[7] != '/' ||
	    strncmp(name + 5, name + 8, 2) != 0)
		return -EINVAL;
	return cairn_unhex(pack_id, 32, name + 8);
}

cairn_packw *cairn_packw_new(const cairn_keyset *keys, uint8_t type)
{
	cairn_packw *pw = cairn_xcalloc(1, sizeof(*pw));
	cairn_random(pw->id, 32);
	cairn_pack_key(pw->key, keys, pw->id);
	pw->type = type;
	pw->fd = -1;
	return pw;
}

cairn_packw *cairn_packw_new_file(const cairn_keyset *keys, uint8_t type, int fd)
{
	cairn_packw *pw = cairn_packw_new(keys, type);
	pw->fd = fd;
	pw->sums = sh_new(CAIRN_PACK_SEGMENT);
	return pw;
}

int cairn_packw_fd(const cairn_packw *pw)
{
	return pw->fd;
}

uint64_t cairn_packw_total(const cairn_packw *pw)
{
	return pw->fd >= 0 ? pw->off : pw->bytes.len;
}

void cairn_packw_free(cairn_packw *pw)
{
	if (!pw)
		return;
	cairn_wipe(pw->key, sizeof(pw->key));
	cairn_buf_free(&pw->bytes);
	sh_free(pw->sums);
	if (pw->fd >= 0)
		close(pw->fd);
	free(pw->e);
	free(pw);
}

const uint8_t *cairn_packw_id(const cairn_packw *pw)
{
	return pw->id;
}

uint8_t cairn_packw_type(const cairn_packw *pw)
{
	return pw->type;
}

size_t cairn_packw_size(const cairn_packw *pw)
{
	return (size_t)cairn_packw_total(pw);
}

size_t cairn_packw_count(const cairn_packw *pw)
{
	return pw->n;
}

const cairn_pack_entry *cairn_packw_entries(const cairn_packw *pw)
{
	return pw->e;
}

const cairn_buf *cairn_packw_bytes(const cairn_packw *pw)
{
	return &pw->bytes;
}

int cairn_packw_add_body(cairn_packw *pw, cairn_codec *cx, const uint8_t id[32], uint8_t type,
			 uint8_t codec, const void *body, size_t blen, size_t rawlen)
{
	uint64_t at = cairn_packw_total(pw);
	if (pw->failed)
		return pw_error(-pw->failed);
	if (pw->finished || pw->n >= CAIRN_PACK_MAX_BLOBS ||
	    at + cairn_blob_bound(blen) > UINT32_MAX || rawlen > UINT32_MAX)
		return cairn_error_set(-ERANGE, "pack is full");
	cairn_buf_reserve(&pw->bytes, cairn_blob_bound(blen));
	long n = cairn_blob_seal(cx, pw->key, pw->n, &type, 1, codec, body, blen,
				 pw->bytes.data + pw->bytes.len);
	if (n < 0)
		return (int)n;
	if (pw->n == pw->cap) {
		pw->cap = pw->cap ? pw->cap * 2 : 32;
		pw->e = cairn_xrealloc(pw->e, pw->cap * sizeof(*pw->e));
	}
	int rc = pw_commit(pw, (size_t)n);
	if (rc < 0)
		return rc;
	cairn_pack_entry *e = &pw->e[pw->n++];
	memcpy(e->id, id, 32);
	e->type = type;
	e->offset = (uint32_t)at;
	e->clen = (uint32_t)n;
	e->rawlen = (uint32_t)rawlen;
	return 0;
}

int cairn_packw_add(cairn_packw *pw, cairn_codec *cx, const uint8_t id[32], uint8_t type,
		    const void *data, size_t len)
{
	const void *body;
	size_t blen;
	uint8_t codec = cairn_blob_compress(cx, data, len, &body, &blen);
	return cairn_packw_add_body(pw, cx, id, type, codec, body, blen, len);
}

int cairn_packw_finish(cairn_packw *pw, cairn_codec *cx)
{
	if (pw->failed)
		return pw_error(-pw->failed);
	if (pw->finished)
		return 0;
	/* header plaintext: version, count, entries; padded to a multiple of 4 KiB */
	cairn_buf h = CAIRN_BUF_INIT;
	cairn_buf_put_u8(&h, 1);
	cairn_buf_put_uvar(&h, pw->n);
	for (size_t i = 0; i < pw->n; i++) {
		cairn_buf_put_u8(&h, pw->e[i].type);
		cairn_buf_append(&h, pw->e[i].id, 32);
		cairn_buf_put_uvar(&h, pw->e[i].offset);
		cairn_buf_put_uvar(&h, pw->e[i].clen);
		cairn_buf_put_uvar(&h, pw->e[i].rawlen);
	}
	size_t padded = (h.len + CAIRN_BLOB_OVERHEAD + CAIRN_PACK_HDR_PAD - 1) / CAIRN_PACK_HDR_PAD *
			CAIRN_PACK_HDR_PAD - CAIRN_BLOB_OVERHEAD;
	cairn_buf_reserve(&h, padded - h.len);
	memset(h.data + h.len, 0, padded - h.len);
	h.len = padded;

	/* seal the header without compression (its length must stay padded) */
	uint64_t hdr_off = cairn_packw_total(pw);
	cairn_buf_reserve(&pw->bytes, cairn_blob_bound(h.len));
	long n = cairn_blob_seal(cx, pw->key, HDR_COUNTER, hdr_aad, sizeof(hdr_aad) - 1,
				 CAIRN_CODEC_RAW, h.data, h.len, pw->bytes.data + pw->bytes.len);
	cairn_buf_free(&h);
	if (n < 0)
		return (int)n;
	int rc = pw_commit(pw, (size_t)n);
	if (rc == 0 && pw->fd >= 0)
		rc = pw_flush(pw);
	if (rc < 0)
		return rc;

	/* trailer body */
	uint64_t data_len = cairn_packw_total(pw);
	uint32_t nseg = (uint32_t)((data_len + CAIRN_PACK_SEGMENT - 1) / CAIRN_PACK_SEGMENT);
	cairn_buf t = CAIRN_BUF_INIT;
	cairn_buf_put_le32(&t, CAIRN_PACK_SEGMENT);
	cairn_buf_put_le32(&t, nseg);
	cairn_buf_put_le64(&t, hdr_off);
	cairn_buf_put_le32(&t, (uint32_t)n);
	cairn_buf_put_le64(&t, data_len);
	uint8_t hash[16];
	if (pw->fd < 0) { /* in memory: summed now, in file mode as it was written */
		pw->sums = sh_new(CAIRN_PACK_SEGMENT);
		sh_feed(pw->sums, pw->bytes.data, data_len);
	}
	sh_finish(pw->sums, hash);
	cairn_buf_append(&t, hash, 16);
	cairn_buf_append(&t, pw->sums->segs.data, pw->sums->segs.len);
	/* footer: body length, version, XXH3-128 of the body, magic */
	uint8_t foot[CAIRN_PACK_FOOTER];
	cairn_put_le32(foot, (uint32_t)t.len);
	cairn_put_le32(foot + 4, 1);
	cairn_xxh128(t.data, t.len, foot + 8);
	memcpy(foot + 24, pack_magic, 8);
	cairn_buf_append(&t, foot, sizeof(foot));
	if (pw->fd >= 0) {
		rc = pw_write(pw, t.data, t.len); /* not part of the checksummed data */
		pw->off += t.len;
		cairn_buf_free(&pw->bytes);
		if (rc < 0) {
			cairn_buf_free(&t);
			return rc;
		}
	} else {
		cairn_buf_append(&pw->bytes, t.data, t.len);
	}
	cairn_buf_free(&t);
	pw->finished = 1;
	return 0;
}

void cairn_pack_trailer_free(cairn_pack_trailer *t)
{
	free(t->segs);
	t->segs = NULL;
}

int cairn_pack_footer(const uint8_t *f, uint64_t pack_size, uint32_t *trailer_len)
{
	if (pack_size < CAIRN_PACK_FOOTER || memcmp(f + 24, pack_magic, 8) != 0)
		return cairn_error_set(-EBADMSG, "pack footer: bad magic (not a cairn pack, or truncated)");
	if (cairn_get_le32(f + 4) != 1)
		return cairn_error_set(-EBADMSG, "pack footer: version %u not supported",
				       cairn_get_le32(f + 4));
	uint64_t body = cairn_get_le32(f);
	if (body + CAIRN_PACK_FOOTER > pack_size || body < 40)
		return cairn_error_set(-EBADMSG, "pack footer: trailer length %llu out of range",
				       (unsigned long long)body);
	*trailer_len = (uint32_t)(body + CAIRN_PACK_FOOTER);
	return 0;
}

int cairn_pack_trailer_parse(cairn_pack_trailer *out, const uint8_t *tr, size_t len,
			     uint64_t pack_size)
{
	memset(out, 0, sizeof(*out));
	uint32_t tl;
	int r;
	if (len < CAIRN_PACK_FOOTER)
		return cairn_error_set(-EBADMSG, "pack trailer too short");
	if ((r = cairn_pack_footer(tr + len - CAIRN_PACK_FOOTER, pack_size, &tl)) < 0)
		return r;
	if (tl != len)
		return cairn_error_set(-EBADMSG, "pack trailer length mismatch");
	size_t body = len - CAIRN_PACK_FOOTER;
	uint8_t h[16];
	cairn_xxh128(tr, body, h);
	if (memcmp(h, tr + body + 8, 16) != 0)
		return cairn_error_set(-EBADMSG, "pack trailer checksum mismatch");
	out->seg_size = cairn_get_le32(tr);
	out->nseg = cairn_get_le32(tr + 4);
	out->hdr_off = cairn_get_le64(tr + 8);
	out->hdr_len = cairn_get_le32(tr + 16);
	out->data_len = cairn_get_le64(tr + 20);
	memcpy(out->whole, tr + 28, 16);
	out->trailer_len = tl;
	if (out->seg_size < 4096 || out->seg_size > (1u << 30) ||
	    out->data_len + tl != pack_size || out->hdr_len > out->data_len ||
	    out->hdr_off != out->data_len - out->hdr_len || out->hdr_len < CAIRN_BLOB_OVERHEAD ||
	    (uint64_t)out->nseg != (out->data_len + out->seg_size - 1) / out->seg_size ||
	    body != 44 + (size_t)out->nseg * 16)
		return cairn_error_set(-EBADMSG, "pack trailer fields are inconsistent");
	out->segs = cairn_xmalloc((size_t)out->nseg * 16 + 1);
	memcpy(out->segs, tr + 44, (size_t)out->nseg * 16);
	return 0;
}

struct cairn_pack_sum {
	seghash *h;
	const cairn_pack_trailer *tr;
	uint64_t fed;
	uint32_t compared, nbad, first_bad;
};

cairn_pack_sum *cairn_pack_sum_new(const cairn_pack_trailer *tr)
{
	cairn_pack_sum *s = cairn_xcalloc(1, sizeof(*s));
	s->h = sh_new(tr->seg_size);
	s->tr = tr;
	return s;
}

void cairn_pack_sum_free(cairn_pack_sum *s)
{
	if (!s)
		return;
	sh_free(s->h);
	free(s);
}

static int seg_error(const cairn_pack_sum *s)
{
	uint64_t off = (uint64_t)s->first_bad * s->tr->seg_size;
	uint64_t end = off + s->tr->seg_size < s->tr->data_len ? off + s->tr->seg_size
							       : s->tr->data_len;
	if (s->nbad > 1)
		return cairn_error_set(-EBADMSG,
				       "segment %u (bytes %llu-%llu) checksum mismatch, and %u more "
				       "of the pack's %u segments",
				       s->first_bad, (unsigned long long)off,
				       (unsigned long long)(end - 1), s->nbad - 1, s->tr->nseg);
	return cairn_error_set(-EBADMSG, "segment %u (bytes %llu-%llu) checksum mismatch",
			       s->first_bad, (unsigned long long)off, (unsigned long long)(end - 1));
}

/* Compare the segments completed since the last call; 1 if the first bad one is among them. */
static int sum_compare(cairn_pack_sum *s)
{
	int first = 0;
	for (; s->compared < s->h->segs.len / 16 && s->compared < s->tr->nseg; s->compared++) {
		if (memcmp(s->h->segs.data + 16 * (size_t)s->compared,
			   s->tr->segs + 16 * (size_t)s->compared, 16) == 0)
			continue;
		if (s->nbad++ == 0) {
			s->first_bad = s->compared;
			first = 1;
		}
	}
	return first;
}

int cairn_pack_sum_feed(cairn_pack_sum *s, const void *p, size_t n)
{
	if (n > s->tr->data_len - s->fed)
		n = (size_t)(s->tr->data_len - s->fed); /* the trailer and footer are not summed */
	sh_feed(s->h, p, n);
	s->fed += n;
	return sum_compare(s) ? seg_error(s) : 0;
}

int cairn_pack_sum_final(cairn_pack_sum *s, int64_t *bad_seg)
{
	uint8_t whole[16];
	*bad_seg = -1;
	if (s->fed != s->tr->data_len)
		return cairn_error_set(-EBADMSG, "pack: %llu of its %llu checksummed bytes read",
				       (unsigned long long)s->fed,
				       (unsigned long long)s->tr->data_len);
	sh_finish(s->h, whole);
	sum_compare(s);
	if (s->nbad) {
		*bad_seg = s->first_bad;
		return seg_error(s);
	}
	if (memcmp(whole, s->tr->whole, 16) != 0)
		return cairn_error_set(-EBADMSG, "whole-pack checksum mismatch");
	return 0;
}

int cairn_pack_verify(const uint8_t *pack, size_t len, int64_t *bad_seg)
{
	uint32_t tl;
	cairn_pack_trailer t;
	int r;
	*bad_seg = -1;
	if (len < CAIRN_PACK_FOOTER)
		return cairn_error_set(-EBADMSG, "pack of %zu bytes is truncated", len);
	if ((r = cairn_pack_footer(pack + len - CAIRN_PACK_FOOTER, len, &tl)) < 0 ||
	    (r = cairn_pack_trailer_parse(&t, pack + len - tl, tl, len)) < 0)
		return r;
	cairn_pack_sum *s = cairn_pack_sum_new(&t);
	cairn_pack_sum_feed(s, pack, t.data_len);
	r = cairn_pack_sum_final(s, bad_seg);
	cairn_pack_sum_free(s);
	cairn_pack_trailer_free(&t);
	return r;
}

/* A ranged read; its failure is never -EBADMSG, which here means damage found. */
static int read_range(cairn_target *t, const char *name, uint64_t off, size_t len, void *out)
{
	int rc = cairn_target_get_range(t, name, off, len, out);
	return rc == -EBADMSG ? -EIO : rc;
}

int cairn_pack_read_end(cairn_target *t, const char *name, uint64_t size, cairn_buf *tail,
			uint64_t *tail_off, cairn_pack_trailer *tr)
{
	uint32_t tl;
	int rc;
	memset(tr, 0, sizeof(*tr));
	if (size < CAIRN_PACK_FOOTER)
		return cairn_error_set(-EBADMSG, "pack of %llu bytes is truncated",
				       (unsigned long long)size);
	size_t n = size < CAIRN_PACK_TAIL ? (size_t)size : CAIRN_PACK_TAIL;
	tail->len = 0;
	cairn_buf_reserve(tail, n);
	if ((rc = read_range(t, name, size - n, n, tail->data)) < 0)
		return rc;
	if ((rc = cairn_pack_footer(tail->data + n - CAIRN_PACK_FOOTER, size, &tl)) < 0)
		return rc;
	if (tl > n) { /* a trailer of more than ~4,000 segments */
		n = tl;
		cairn_buf_reserve(tail, n);
		if ((rc = read_range(t, name, size - n, n, tail->data)) < 0)
			return rc;
	}
	tail->len = n;
	*tail_off = size - n;
	return cairn_pack_trailer_parse(tr, tail->data + n - tl, tl, size);
}

int cairn_pack_check_object(cairn_target *t, const char *name, uint64_t size, cairn_buf *buf,
			    int64_t *bad_segment)
{
	cairn_pack_trailer tr;
	uint64_t tail_off;
	*bad_segment = -1;
	int rc = cairn_pack_read_end(t, name, size, buf, &tail_off, &tr);
	if (rc < 0)
		return rc;
	/* then [0, data_len) from the start, buf reused as the window (the trailer is parsed;
	 * the up to 64 KiB of it the end's read held are read again, in the same requests) */
	cairn_pack_sum *s = cairn_pack_sum_new(&tr);
	for (uint64_t off = 0; off < tr.data_len && rc == 0;) {
		uint64_t end = off + CAIRN_PACK_WINDOW;
		if (tr.seg_size <= CAIRN_PACK_WINDOW) /* windows end on segment boundaries, but a
						       * trailer has no key: its segment size may be
						       * forged up to 1 GiB */
			end = (end + tr.seg_size - 1) / tr.seg_size * tr.seg_size;
		size_t want = (size_t)((end < tr.data_len ? end : tr.data_len) - off);
		buf->len = 0;
		cairn_buf_reserve(buf, want);
		if ((rc = read_range(t, name, off, want, buf->data)) < 0)
			rc = cairn_error_wrap(rc, "reading bytes %llu-%llu", (unsigned long long)off,
					      (unsigned long long)(off + want - 1));
		else
			cairn_pack_sum_feed(s, buf->data, want);
		off += want;
	}
	if (rc == 0)
		rc = cairn_pack_sum_final(s, bad_segment);
	cairn_pack_sum_free(s);
	cairn_pack_trailer_free(&tr);
	return rc;
}

int cairn_pack_header_decode(cairn_codec *cx, const cairn_keyset *keys, const uint8_t pack_id[32],
			     const uint8_t *hdr, size_t len, uint64_t hdr_off,
			     cairn_pack_entry **entries, size_t *n)
{
	uint8_t key[32];
	cairn_buf pt = CAIRN_BUF_INIT;
	*entries = NULL;
	*n = 0;
	cairn_pack_key_cx(cx, key, keys, pack_id);
	int r = cairn_blob_decode(cx, key, hdr_aad, sizeof(hdr_aad) - 1, hdr, len, 64u << 20, &pt);
	cairn_wipe(key, sizeof(key));
	if (r < 0) {
		cairn_buf_free(&pt);
		return cairn_error_wrap(r, "pack header");
	}
	cairn_rd rd = cairn_rd_init(pt.data, pt.len);
	uint8_t ver;
	uint64_t count;
	if (cairn_rd_u8(&rd, &ver) < 0 || ver != 1 || cairn_rd_uvar(&rd, &count) < 0 ||
	    count > CAIRN_PACK_MAX_BLOBS || count > cairn_rd_left(&rd) / 36) {
		cairn_buf_free(&pt);
		return cairn_error_set(-EBADMSG, "pack header: bad version or count");
	}
	cairn_pack_entry *e = cairn_xcalloc(count ? count : 1, sizeof(*e));
	uint64_t expect = 0;
	for (uint64_t i = 0; i < count; i++) {
		uint64_t off, clen, rawlen;
		if (cairn_rd_u8(&rd, &e[i].type) < 0 || cairn_rd_raw(&rd, e[i].id, 32) < 0 ||
		    cairn_rd_uvar(&rd, &off) < 0 || cairn_rd_uvar(&rd, &clen) < 0 ||
		    cairn_rd_uvar(&rd, &rawlen) < 0 || off != expect || clen < CAIRN_BLOB_OVERHEAD ||
		    clen > hdr_off - off || off + clen > UINT32_MAX || rawlen > UINT32_MAX ||
		    (e[i].type != CAIRN_BLOB_DATA && e[i].type != CAIRN_BLOB_TREE)) {
			free(e);
			cairn_buf_free(&pt);
			return cairn_error_set(-EBADMSG, "pack header: entry %llu is malformed",
					       (unsigned long long)i);
		}
		e[i].offset = (uint32_t)off;
		e[i].clen = (uint32_t)clen;
		e[i].rawlen = (uint32_t)rawlen;
		expect = off + clen;
	}
	cairn_buf_free(&pt);
	if (expect != hdr_off) {
		free(e);
		return cairn_error_set(-EBADMSG, "pack header: blobs do not cover the pack");
	}
	*entries = e;
	*n = (size_t)count;
	return 0;
}

int cairn_pack_blob_decode(cairn_codec *cx, const cairn_keyset *keys, const uint8_t pack_key[32],
			   const cairn_pack_entry *e, const uint8_t *enc, cairn_buf *out)
{
	uint8_t type = e->type, id[32];
	int r = cairn_blob_decode(cx, pack_key, &type, 1, enc, e->clen, e->rawlen, out);
	if (r < 0)
		return r;
	if (out->len != e->rawlen) {
		size_t got = out->len;
		out->len = 0; /* nothing handed out on failure */
		return cairn_error_set(-EBADMSG, "blob length %zu, index says %u", got, e->rawlen);
	}
	cairn_chunk_id(keys, out->data, out->len, id);
	if (memcmp(id, e->id, 32) != 0) {
		out->len = 0;
		return cairn_error_set(-EBADMSG, "blob content does not match its id");
	}
	return 0;
}

int cairn_pack_check(const void *pack, size_t len, int64_t *bad_segment)
{
	int64_t bad = -1;
	int rc = cairn_pack_verify(pack, len, &bad);
	if (bad_segment)
		*bad_segment = bad;
	return rc;
}

int cairn_is_pack_name(const char *name)
{
	uint8_t id[32];
	return cairn_pack_name_parse(name, id) == 0;
}
