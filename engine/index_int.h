/*
 * index_int.h - where each blob lives (engine-internal).
 *
 * Two halves:
 *  - index segments, the encrypted objects index/<hex> that list packs and
 *    their blobs (written after the packs they name are durable);
 *  - the in-memory index: chunk id -> (pack, offset, encoded length, type),
 *    44 bytes per blob in a sorted array, plus a small hashed delta for the
 *    blobs added since the last merge. Thread-safe (internal rwlock).
 */
#ifndef CAIRN_INDEX_INT_H
#define CAIRN_INDEX_INT_H

#include <stddef.h>
#include <stdint.h>

#include "common/common.h"
#include "engine/pack_int.h"

/* --- index segments (on storage) ----------------------------------------- */

typedef struct cairn_idx_pack {
	uint8_t id[32];
	uint8_t type;      /* CAIRN_BLOB_DATA or CAIRN_BLOB_TREE: what the pack holds */
	uint64_t size;     /* size of the pack object */
	size_t n;
	cairn_pack_entry *e; /* owned */
} cairn_idx_pack;

typedef struct cairn_idxseg {
	size_t n, cap;
	cairn_idx_pack *packs; /* owned */
} cairn_idxseg;

/** Append a pack (copies entries). */
void cairn_idxseg_add(cairn_idxseg *s, const uint8_t id[32], uint8_t type, uint64_t size,
		      const cairn_pack_entry *e, size_t n);
void cairn_idxseg_free(cairn_idxseg *s);
void cairn_idxseg_encode(const cairn_idxseg *s, cairn_buf *out);
/** Strict decoder (fuzzed). @return 0 or -EBADMSG with a message. */
int cairn_idxseg_decode(cairn_idxseg *out, const void *data, size_t len);

/* --- in-memory index ------------------------------------------------------ */

typedef struct cairn_index cairn_index;

typedef struct cairn_blob_loc {
	uint32_t pack;   /* pack number (see cairn_index_pack_id) */
	uint32_t offset;
	uint32_t clen;
	uint8_t type;
} cairn_blob_loc;

cairn_index *cairn_index_new(void);
void cairn_index_free(cairn_index *idx);

/** Number of a pack, adding it if new. */
uint32_t cairn_index_pack(cairn_index *idx, const uint8_t id[32], uint8_t type, uint64_t size);
/** @return 1 and its number if known, else 0. */
int cairn_index_pack_find(cairn_index *idx, const uint8_t id[32], uint32_t *no);
/** Copy out a pack's id, type and size. */
void cairn_index_pack_info(cairn_index *idx, uint32_t no, uint8_t id[32], uint8_t *type,
			   uint64_t *size);
size_t cairn_index_npacks(cairn_index *idx);

/** Add a blob; @return 1 if added, 0 if the id was already known (kept as is). */
int cairn_index_add(cairn_index *idx, const uint8_t id[32], uint8_t type, uint32_t pack,
		    uint32_t offset, uint32_t clen);
/** Add every blob of a segment. */
void cairn_index_add_segment(cairn_index *idx, const cairn_idxseg *s);
/** @return 1 and the location if known, else 0. */
int cairn_index_lookup(cairn_index *idx, const uint8_t id[32], cairn_blob_loc *out);
size_t cairn_index_count(cairn_index *idx);
/** Bytes allocated for blob entries and packs (for the <= 48 bytes/blob budget). */
size_t cairn_index_memory(cairn_index *idx);
/** Merge the delta into the sorted array now (done automatically as it grows). */
void cairn_index_compact(cairn_index *idx);

#endif
