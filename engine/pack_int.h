/*
 * pack_int.h - packs: many encrypted blobs in one large object (engine-internal).
 *
 * Layout of a pack (docs/FORMAT.md, "Packs"):
 *
 *   blob 0 | blob 1 | ... | header | trailer body | footer
 *   \_________ ciphertext _______/   \______ plaintext _____/
 *
 * Blobs are cairn_blob_encode() outputs under the pack subkey
 * HKDF(enc, pack id, "cairn/pack/v1"), nonce counter = blob number, AAD = the
 * blob type byte. The header lists the blobs (type, id, offset, lengths);
 * it is encrypted (raw, counter 2^64-1, AAD "cairn/pack-header/v1") and
 * padded to a multiple of 4 KiB so its length does not tell the number of
 * blobs. The trailer is plaintext: XXH3-128 checksums of every fixed-size
 * segment of the pack and of the whole pack, so any copy can be scrubbed and
 * the damage located without a key; it never holds blob boundaries.
 */
#ifndef CAIRN_PACK_INT_H
#define CAIRN_PACK_INT_H

#include <stdint.h>

#include "common/common.h"
#include "engine/crypto_int.h"
#include "targets/target.h"

#define CAIRN_PACK_ID_LEN 32
#define CAIRN_PACK_SEGMENT (1u << 20)   /* trailer checksum segment size */
#define CAIRN_PACK_FOOTER 32
#define CAIRN_PACK_MAX_BLOBS 1000000u
#define CAIRN_PACK_HDR_PAD 4096u

/* Blob types (also the AAD of each blob). */
#define CAIRN_BLOB_DATA 1
#define CAIRN_BLOB_TREE 2

typedef struct cairn_pack_entry {
	uint8_t id[32];
	uint8_t type;
	uint32_t offset;  /* in the pack */
	uint32_t clen;    /* encoded length */
	uint32_t rawlen;  /* plaintext length */
} cairn_pack_entry;

/** A pack being built (one thread at a time). */
typedef struct cairn_packw cairn_packw;

cairn_packw *cairn_packw_new(const cairn_keyset *keys, uint8_t type);
/**
 * A pack written to @p fd (taken over, closed by cairn_packw_free) as it
 * grows instead of held in memory; cairn_packw_bytes() is then not available.
 */
cairn_packw *cairn_packw_new_file(const cairn_keyset *keys, uint8_t type, int fd);
/** The pack file's descriptor, or -1 for a pack in memory. */
int cairn_packw_fd(const cairn_packw *pw);
/** Bytes of the pack so far (all of it once finished). */
uint64_t cairn_packw_total(const cairn_packw *pw);
void cairn_packw_free(cairn_packw *pw);
/** The pack's random id (its object name is data/<hex[0:2]>/<hex>). */
const uint8_t *cairn_packw_id(const cairn_packw *pw);
uint8_t cairn_packw_type(const cairn_packw *pw);
/** Bytes of blobs so far. */
size_t cairn_packw_size(const cairn_packw *pw);
size_t cairn_packw_count(const cairn_packw *pw);
/** Entries so far (valid until the next add). */
const cairn_pack_entry *cairn_packw_entries(const cairn_packw *pw);

/** Encode and append one blob. */
int cairn_packw_add(cairn_packw *pw, cairn_codec *cx, const uint8_t id[32], uint8_t type,
		    const void *data, size_t len);
/** Append a blob compressed by cairn_blob_compress (sealed here, under the pack's key). */
int cairn_packw_add_body(cairn_packw *pw, cairn_codec *cx, const uint8_t id[32], uint8_t type,
			 uint8_t codec, const void *body, size_t blen, size_t rawlen);

/**
 * Append the encrypted header (sealed with @p cx, any codec) and the trailer;
 * afterwards the pack's bytes are available through cairn_packw_bytes() and no
 * more blobs may be added.
 */
int cairn_packw_finish(cairn_packw *pw, cairn_codec *cx);
const cairn_buf *cairn_packw_bytes(const cairn_packw *pw);

/** Parsed trailer. */
typedef struct cairn_pack_trailer {
	uint32_t seg_size;
	uint32_t nseg;
	uint64_t hdr_off;
	uint32_t hdr_len;
	uint64_t data_len;    /* bytes covered by the checksums: hdr_off + hdr_len */
	uint8_t whole[16];    /* XXH3-128 of bytes [0, data_len) */
	uint8_t *segs;        /* nseg * 16 bytes (owned) */
	uint32_t trailer_len; /* body + footer */
} cairn_pack_trailer;

void cairn_pack_trailer_free(cairn_pack_trailer *t);

/**
 * Length of the trailer from the pack's last CAIRN_PACK_FOOTER bytes.
 * @return 0 or -EBADMSG.
 */
int cairn_pack_footer(const uint8_t *footer, uint64_t pack_size, uint32_t *trailer_len);

/**
 * Parse a trailer (the pack's last trailer_len bytes) of a pack of @p pack_size.
 * @return 0 or -EBADMSG with a message.
 */
int cairn_pack_trailer_parse(cairn_pack_trailer *out, const uint8_t *tr, size_t len,
			     uint64_t pack_size);

/**
 * Keyless verification of a whole pack in memory against its own trailer.
 * @p bad_seg receives the first bad segment (or -1 if only the whole-pack hash or the trailer
 * is wrong). @return 0 if intact, -EBADMSG with a message otherwise.
 */
int cairn_pack_verify(const uint8_t *pack, size_t len, int64_t *bad_seg);

/**
 * Keyless verification of a pack read in order, a piece at a time, against
 * its trailer @p tr (which must outlive it): bytes [0, tr->data_len) are
 * fed, and each segment is compared as soon as it is complete, so a reader
 * holds a window of the pack rather than all of it.
 */
typedef struct cairn_pack_sum cairn_pack_sum;
cairn_pack_sum *cairn_pack_sum_new(const cairn_pack_trailer *tr);
/**
 * The next @p n bytes (bytes past data_len are ignored). @return 0, or
 * -EBADMSG with a message when they completed the pack's first bad segment.
 */
int cairn_pack_sum_feed(cairn_pack_sum *s, const void *p, size_t n);
/**
 * After the last byte: 0 if every segment and the whole pack match, else
 * -EBADMSG naming the first bad segment (in @p bad_seg; -1 if only the whole
 * differs or bytes are missing) and how many more there are.
 */
int cairn_pack_sum_final(cairn_pack_sum *s, int64_t *bad_seg);
void cairn_pack_sum_free(cairn_pack_sum *s);

/*
 * Streamed reads of a pack object, a window at a time: windows of about
 * CAIRN_PACK_WINDOW that end on segment boundaries, after one read of the
 * pack's last CAIRN_PACK_TAIL bytes, which hold the trailer and, but for
 * packs of thousands of blobs, the header (4 KiB for ~20 chunks of 1 MiB).
 */
#define CAIRN_PACK_WINDOW (2u << 20)
#define CAIRN_PACK_TAIL (64u << 10)

/**
 * Read the end of pack object @p name (@p size bytes) on @p t into @p tail
 * (its last min(size, CAIRN_PACK_TAIL) bytes, or the whole trailer if that is
 * longer) and parse the trailer into @p tr; *tail_off is the object offset of
 * tail->data[0]. @return 0; -EBADMSG with a message if the footer or trailer
 * is damaged; another negative errno if the object could not be read.
 */
int cairn_pack_read_end(cairn_target *t, const char *name, uint64_t size, cairn_buf *tail,
			uint64_t *tail_off, cairn_pack_trailer *tr);

/**
 * Decrypt and parse a pack header (bytes [hdr_off, hdr_off+hdr_len)).
 * @p entries is malloc'd. @return 0, -EBADMSG.
 */
int cairn_pack_header_decode(cairn_codec *cx, const cairn_keyset *keys, const uint8_t pack_id[32],
			     const uint8_t *hdr, size_t len, uint64_t hdr_off,
			     cairn_pack_entry **entries, size_t *n);

/** Subkey of a pack. */
void cairn_pack_key(uint8_t out[32], const cairn_keyset *keys, const uint8_t pack_id[32]);
/** The same, through @p cx's cache of derived keys (for reads, a blob at a time). */
void cairn_pack_key_cx(cairn_codec *cx, uint8_t out[32], const cairn_keyset *keys,
		       const uint8_t pack_id[32]);

#define CAIRN_PACK_NAME_MAX 80
/** Object name of a pack: "data/ab/abcd..." (buffer of CAIRN_PACK_NAME_MAX bytes). */
void cairn_pack_name(char *out, const uint8_t pack_id[32]);
/** Parse a pack object name back into its id. @return 0 or -EINVAL. */
int cairn_pack_name_parse(const char *name, uint8_t pack_id[32]);

/**
 * Decode one blob of a pack given its entry and its encoded bytes; checks
 * the chunk id against @p keys. @return 0, -EBADMSG.
 */
int cairn_pack_blob_decode(cairn_codec *cx, const cairn_keyset *keys, const uint8_t pack_key[32],
			   const cairn_pack_entry *e, const uint8_t *enc, cairn_buf *out);

#endif
