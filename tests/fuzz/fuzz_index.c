/*
 * fuzz_index.c - cairn_idxseg_decode on arbitrary bytes.
 *
 * What decodes must satisfy the segment's invariants (known types, blobs
 * inside their pack), re-encode into at most as many bytes (the reader
 * accepts non-minimal varints, the writer never emits them), decode again to
 * an equal segment, and encode again to the very same bytes.
 */
#include "engine/index_int.h"
#include "tests/fuzz/fuzz_common.h"

static int entry_eq(const cairn_pack_entry *a, const cairn_pack_entry *b)
{
	return memcmp(a->id, b->id, 32) == 0 && a->type == b->type && a->offset == b->offset &&
	       a->clen == b->clen && a->rawlen == b->rawlen;
}

static void check_valid(const cairn_idxseg *s)
{
	for (size_t i = 0; i < s->n; i++) {
		const cairn_idx_pack *p = &s->packs[i];
		FUZZ_ASSERT(p->type == CAIRN_BLOB_DATA || p->type == CAIRN_BLOB_TREE);
		FUZZ_ASSERT(p->n <= CAIRN_PACK_MAX_BLOBS);
		for (size_t j = 0; j < p->n; j++) {
			const cairn_pack_entry *e = &p->e[j];
			FUZZ_ASSERT(e->type == CAIRN_BLOB_DATA || e->type == CAIRN_BLOB_TREE);
			FUZZ_ASSERT((uint64_t)e->offset + e->clen <= p->size);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cairn_idxseg s, s2;
	if (cairn_idxseg_decode(&s, data, size) < 0) {
		FUZZ_ASSERT(s.n == 0 && s.packs == NULL);
		return 0;
	}
	check_valid(&s);
	cairn_buf enc = CAIRN_BUF_INIT, enc2 = CAIRN_BUF_INIT;
	cairn_idxseg_encode(&s, &enc);
	FUZZ_ASSERT(enc.len <= size);
	FUZZ_ASSERT(cairn_idxseg_decode(&s2, enc.data, enc.len) == 0);
	FUZZ_ASSERT(s2.n == s.n);
	for (size_t i = 0; i < s.n; i++) {
		const cairn_idx_pack *a = &s.packs[i], *b = &s2.packs[i];
		FUZZ_ASSERT(memcmp(a->id, b->id, 32) == 0 && a->type == b->type &&
			    a->size == b->size && a->n == b->n);
		for (size_t j = 0; j < a->n; j++)
			FUZZ_ASSERT(entry_eq(&a->e[j], &b->e[j]));
	}
	cairn_idxseg_encode(&s2, &enc2);
	FUZZ_ASSERT(enc2.len == enc.len && memcmp(enc.data, enc2.data, enc.len) == 0);

	/* the in-memory index takes whatever a segment holds */
	cairn_index *idx = cairn_index_new();
	cairn_index_add_segment(idx, &s);
	for (size_t i = 0; i < s.n; i++)
		for (size_t j = 0; j < s.packs[i].n; j++)
			FUZZ_ASSERT(cairn_index_lookup(idx, s.packs[i].e[j].id, NULL) == 1);
	cairn_index_free(idx);

	cairn_buf_free(&enc);
	cairn_buf_free(&enc2);
	cairn_idxseg_free(&s);
	cairn_idxseg_free(&s2);
	return 0;
}
