/*
 * fuzz_blob.c - cairn_blob_decode under a fixed key (fuzz_common.h).
 *
 * The first input byte picks the mode:
 *   bit 7 clear: the rest is an encoded blob (nonce | ciphertext | tag),
 *     decoded as is: mostly authentication failures, which must be clean;
 *     it is also unsealed as a sealed object (cairn_unseal, kind 1, the
 *     fixed key set) as index segments and snapshots are;
 *   bit 7 set: the rest is the body of a blob whose codec byte is the low 7
 *     bits (0 raw, 1 zstd, else unknown); it is encrypted properly (nonce
 *     counter 0), so the decompression behind the authentication gets fuzzed.
 * Decoded plaintext never exceeds the limit; raw blobs decode to their
 * body; whatever is decoded from zstd matches libzstd's own one-shot result.
 * The rest of the input also makes a round trip through cairn_blob_encode.
 */
#include <zstd.h>

#include "tests/fuzz/fuzz_common.h"

#define MAX_PLAIN (1u << 20)

static uint8_t key[CAIRN_KEY_LEN];
static cairn_keyset keys;
static cairn_codec *cx, *cz;

static void round_trip(const uint8_t *in, size_t len)
{
	uint8_t *enc = malloc(cairn_blob_bound(len));
	long n = cairn_blob_encode(cz, key, len, FUZZ_BLOB_AAD, 1, in, len, enc);
	FUZZ_ASSERT(n >= (long)CAIRN_BLOB_OVERHEAD && (size_t)n <= cairn_blob_bound(len));
	cairn_buf out = CAIRN_BUF_INIT;
	FUZZ_ASSERT(cairn_blob_decode(cx, key, FUZZ_BLOB_AAD, 1, enc, (size_t)n, len, &out) == 0);
	FUZZ_ASSERT(out.len == len && (!len || memcmp(out.data, in, len) == 0));
	/* another AAD does not authenticate */
	FUZZ_ASSERT(cairn_blob_decode(cx, key, "\x02", 1, enc, (size_t)n, len, &out) == -EBADMSG);
	FUZZ_ASSERT(out.len == 0);
	cairn_buf_free(&out);
	free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!cx) {
		fuzz_blob_key(key);
		fuzz_keys(&keys);
		cx = cairn_codec_new(0);
		cz = cairn_codec_new(3);
	}
	if (size < 1)
		return 0;
	cairn_buf out = CAIRN_BUF_INIT;
	const uint8_t *body = data + 1;
	size_t blen = size - 1;
	if (!(data[0] & 0x80)) {
		int r = cairn_blob_decode(cx, key, FUZZ_BLOB_AAD, 1, body, blen, MAX_PLAIN, &out);
		FUZZ_ASSERT(r == 0 || r == -EBADMSG || r == -ERANGE);
		FUZZ_ASSERT(r == 0 || out.len == 0);
		FUZZ_ASSERT(out.len <= MAX_PLAIN);
		out.len = 0; /* unseal clears it only once the header checks pass */
		r = cairn_unseal(cx, &keys, 1, body, blen, MAX_PLAIN, &out);
		FUZZ_ASSERT(r == 0 || r == -EBADMSG || r == -ERANGE);
		FUZZ_ASSERT(r == 0 || out.len == 0);
		FUZZ_ASSERT(out.len <= MAX_PLAIN);
		cairn_buf_free(&out);
		round_trip(body, blen);
		return 0;
	}

	/* plaintext mode: nonce | E(codec | body) | tag */
	uint8_t codec = data[0] & 0x7f;
	uint8_t nonce[CAIRN_NONCE_LEN];
	memset(nonce, 0, sizeof(nonce));
	uint8_t *pt = malloc(blen + 1), *enc = malloc(blen + CAIRN_BLOB_OVERHEAD);
	pt[0] = codec;
	if (blen)
		memcpy(pt + 1, body, blen);
	memcpy(enc, nonce, CAIRN_NONCE_LEN);
	FUZZ_ASSERT(cairn_gcm_encrypt(key, nonce, FUZZ_BLOB_AAD, 1, pt, blen + 1,
				      enc + CAIRN_NONCE_LEN,
				      enc + CAIRN_NONCE_LEN + blen + 1) == 0);
	int r = cairn_blob_decode(cx, key, FUZZ_BLOB_AAD, 1, enc, blen + CAIRN_BLOB_OVERHEAD,
				  MAX_PLAIN, &out);
	if (codec == CAIRN_CODEC_RAW) {
		FUZZ_ASSERT(blen <= MAX_PLAIN ? r == 0 : r == -ERANGE);
		FUZZ_ASSERT(r < 0 || (out.len == blen && (!blen || !memcmp(out.data, body, blen))));
	} else if (codec == CAIRN_CODEC_ZSTD) {
		FUZZ_ASSERT(r == 0 || r == -EBADMSG || r == -ERANGE);
		if (r == 0) {
			FUZZ_ASSERT(out.len <= MAX_PLAIN);
			/* libzstd's one-shot decompression agrees */
			uint8_t *ref = malloc(out.len ? out.len : 1);
			size_t d = ZSTD_decompress(ref, out.len, body, blen);
			FUZZ_ASSERT(!ZSTD_isError(d) && d == out.len);
			FUZZ_ASSERT(!d || memcmp(ref, out.data, d) == 0);
			free(ref);
		} else {
			FUZZ_ASSERT(out.len == 0);
		}
	} else {
		FUZZ_ASSERT(r == -EBADMSG && out.len == 0);
	}
	cairn_buf_free(&out);
	free(pt);
	free(enc);
	return 0;
}
