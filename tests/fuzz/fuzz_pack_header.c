/*
 * fuzz_pack_header.c - cairn_pack_header_decode under a fixed key set and
 * pack id (fuzz_common.h).
 *
 * Input: mode u8 | hdr_off le64 | payload.
 *   mode bit 0 clear: the payload is the encrypted header, decoded as is
 *     (mostly authentication failures, which must be clean);
 *   mode bit 0 set: the payload is the header *plaintext*; it is encrypted
 *     the way cairn_packw_finish does it (raw codec, nonce counter 2^64-1,
 *     AAD "cairn/pack-header/v1", pack subkey) so that the parser behind
 *     the authentication gets fuzzed.
 * Whatever decodes must describe blobs of known types that tile
 * [0, hdr_off) exactly, each at least a blob's overhead long.
 */
#include "engine/pack_int.h"
#include "tests/fuzz/fuzz_common.h"

static const char hdr_aad[] = "cairn/pack-header/v1";

static void check_entries(const cairn_pack_entry *e, size_t n, uint64_t hdr_off)
{
	uint64_t expect = 0;
	FUZZ_ASSERT(n <= CAIRN_PACK_MAX_BLOBS);
	for (size_t i = 0; i < n; i++) {
		FUZZ_ASSERT(e[i].type == CAIRN_BLOB_DATA || e[i].type == CAIRN_BLOB_TREE);
		FUZZ_ASSERT(e[i].offset == expect);
		FUZZ_ASSERT(e[i].clen >= CAIRN_BLOB_OVERHEAD);
		expect += e[i].clen;
		FUZZ_ASSERT(expect <= hdr_off);
	}
	FUZZ_ASSERT(expect == hdr_off);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static cairn_codec *cx;
	static cairn_keyset keys;
	static uint8_t pack_id[32], key[32];
	if (!cx) {
		cx = cairn_codec_new(0);
		fuzz_keys(&keys);
		fuzz_pack_id(pack_id);
		cairn_pack_key(key, &keys, pack_id);
	}
	if (size < 9)
		return 0;
	uint8_t mode = data[0];
	uint64_t hdr_off = cairn_get_le64(data + 1);
	const uint8_t *payload = data + 9;
	size_t plen = size - 9;

	uint8_t *enc = NULL;
	if (mode & 1) {
		enc = malloc(cairn_blob_bound(plen));
		long n = cairn_blob_encode(cx, key, UINT64_MAX, hdr_aad, sizeof(hdr_aad) - 1,
					   payload, plen, enc);
		FUZZ_ASSERT(n == (long)cairn_blob_bound(plen));
		payload = enc;
		plen = (size_t)n;
	}
	cairn_pack_entry *e = (cairn_pack_entry *)&e; /* must be reset by the decoder */
	size_t n = 12345;
	int r = cairn_pack_header_decode(cx, &keys, pack_id, payload, plen, hdr_off, &e, &n);
	if (r < 0) {
		FUZZ_ASSERT(r == -EBADMSG || r == -ERANGE);
		FUZZ_ASSERT(e == NULL && n == 0);
	} else {
		FUZZ_ASSERT(r == 0);
		check_entries(e, n, hdr_off);
		free(e);
	}
	free(enc);
	return 0;
}
