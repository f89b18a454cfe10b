/*
 * fuzz_pack_trailer.c - the keyless side of packs: cairn_pack_footer,
 * cairn_pack_trailer_parse and cairn_pack_verify on the input taken as a
 * whole pack.
 *
 * Each input is tried twice: as it is (the checksums are real, so mutations
 * mostly stop at the footer or the trailer checksum), and as a copy whose
 * footer magic and version, trailer checksum, segment checksums and
 * whole-pack checksum are recomputed, so the consistency checks of the
 * trailer fields and the segment walk of verify get fuzzed too, and the
 * same walk streamed through cairn_pack_sum in pieces. Whatever
 * parses must describe the pack it came from: a header inside the data, the
 * data and the trailer adding up to the pack, as many segments as cover the
 * data; whatever verifies must match recomputed checksums.
 */
#include "engine/pack_int.h"
#include "tests/fuzz/fuzz_common.h"

static const char magic[8] = {'C', 'R', 'N', 'P', 'A', 'C', 'K', '1'};

static void check(const uint8_t *p, size_t len)
{
	uint32_t tl;
	cairn_pack_trailer t;
	int64_t bad = -2;
	uint8_t h[16];
	int vr = cairn_pack_verify(p, len, &bad);
	FUZZ_ASSERT(vr == 0 || vr == -EBADMSG);

	/* a pack cannot be all trailer: its header takes at least CAIRN_BLOB_OVERHEAD bytes */
	FUZZ_ASSERT(cairn_pack_trailer_parse(&t, p, len, len) < 0);
	FUZZ_ASSERT(t.segs == NULL);

	if (len < CAIRN_PACK_FOOTER || cairn_pack_footer(p + len - CAIRN_PACK_FOOTER, len, &tl) < 0) {
		FUZZ_ASSERT(vr < 0 && bad == -1);
		return;
	}
	FUZZ_ASSERT(tl >= CAIRN_PACK_FOOTER + 40 && tl <= len);
	if (cairn_pack_trailer_parse(&t, p + len - tl, tl, len) < 0) {
		FUZZ_ASSERT(t.segs == NULL);
		FUZZ_ASSERT(vr < 0 && bad == -1);
		return;
	}
	FUZZ_ASSERT(t.trailer_len == tl);
	FUZZ_ASSERT(t.data_len + tl == len);
	FUZZ_ASSERT(t.seg_size >= 4096);
	FUZZ_ASSERT(t.hdr_len >= CAIRN_BLOB_OVERHEAD);
	FUZZ_ASSERT(t.hdr_len <= t.data_len);
	FUZZ_ASSERT(t.hdr_off == t.data_len - t.hdr_len);
	FUZZ_ASSERT((uint64_t)t.nseg * t.seg_size >= t.data_len);
	FUZZ_ASSERT(t.nseg == 0 || (uint64_t)(t.nseg - 1) * t.seg_size < t.data_len);

	/* recompute what verify compares */
	int64_t first_bad = -1;
	for (uint32_t s = 0; s < t.nseg && first_bad < 0; s++) {
		uint64_t off = (uint64_t)s * t.seg_size;
		uint64_t n = t.data_len - off < t.seg_size ? t.data_len - off : t.seg_size;
		cairn_xxh128(p + off, n, h);
		if (memcmp(h, t.segs + 16 * s, 16) != 0)
			first_bad = s;
	}
	cairn_xxh128(p, t.data_len, h);
	int whole_ok = memcmp(h, t.whole, 16) == 0;
	FUZZ_ASSERT(bad == first_bad);
	FUZZ_ASSERT((vr == 0) == (first_bad < 0 && whole_ok));

	/* streamed in pieces of a size the input picks (the trailer fed too, and ignored):
	 * the same verdict and the same first bad segment */
	cairn_pack_sum *sm = cairn_pack_sum_new(&t);
	size_t step = 1 + (size_t)p[0] * 97 + (size_t)p[len - 1];
	int told = 0;
	for (size_t q = 0; q < len; q += step)
		told += cairn_pack_sum_feed(sm, p + q, step < len - q ? step : len - q) < 0;
	int64_t sbad = -2;
	int sr = cairn_pack_sum_final(sm, &sbad);
	FUZZ_ASSERT(sr == vr && sbad == bad);
	/* a bad segment is told once, by the feed that completes it; a partial last one only
	 * completes in final */
	int full = first_bad >= 0 && (uint64_t)(first_bad + 1) * t.seg_size <= t.data_len;
	FUZZ_ASSERT(told == full);
	cairn_pack_sum_free(sm);
	cairn_pack_trailer_free(&t);
}

/* Make the checksums of @p p (a copy of the input) right, where its fields allow. */
static void fixup(uint8_t *p, size_t len)
{
	if (len < CAIRN_PACK_FOOTER)
		return;
	uint8_t *foot = p + len - CAIRN_PACK_FOOTER;
	memcpy(foot + 24, magic, 8);
	cairn_put_le32(foot + 4, 1);
	uint64_t body = cairn_get_le32(foot);
	if (body < 44 || body > len - CAIRN_PACK_FOOTER)
		return;
	uint8_t *tr = foot - body;
	uint64_t seg = cairn_get_le32(tr), nseg = cairn_get_le32(tr + 4);
	uint64_t data_len = cairn_get_le64(tr + 20);
	if (body == 44 + nseg * 16 && seg >= 4096 && data_len <= (uint64_t)(tr - p)) {
		for (uint64_t s = 0; s < nseg; s++) {
			uint64_t off = s * seg;
			if (off >= data_len)
				break;
			uint64_t n = data_len - off < seg ? data_len - off : seg;
			cairn_xxh128(p + off, n, tr + 44 + 16 * s);
		}
		cairn_xxh128(p, data_len, tr + 28);
	}
	cairn_xxh128(tr, body, foot + 8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check(data, size);
	uint8_t *copy = malloc(size ? size : 1);
	if (size)
		memcpy(copy, data, size);
	fixup(copy, size);
	check(copy, size);
	free(copy);
	return 0;
}
