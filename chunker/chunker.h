/*
 * chunker.h - content-defined chunking (FastCDC with normalized chunking).
 *
 * Pure computation: no I/O, no allocation, no other cairn module. The caller
 * embeds a cairn_chunker, initialises it with a 256-entry gear table (derived
 * by the engine from the repository's secret chunker seed, so boundaries leak
 * nothing across repositories) and sizes, then feeds buffers of any size.
 *
 * Algorithm (FastCDC, Xia et al. 2016/2020):
 *  - gear rolling hash h = (h << 1) + gear[byte]; its top bits depend on the
 *    last ~64 bytes, so the cut masks use bits 62 down to (63 - k);
 *  - the first `min` bytes of a chunk are skipped (never hashed);
 *  - normalized chunking, level 2: up to the normal point a mask with
 *    log2(avg)+2 bits (cuts are rare), afterwards one with log2(avg)-2 bits
 *    (cuts are likely); the normal point is placed so the expected mean
 *    chunk size equals `avg` (see chunker.c);
 *  - a chunk ends at `max` if no boundary was found;
 *  - the scan hashes three sub-ranges side by side (see chunker.c); the
 *    cuts are exactly those of the one-byte loop, so results never depend
 *    on how the input is split into buffers.
 */
#ifndef CAIRN_CHUNKER_H
#define CAIRN_CHUNKER_H

#include <stddef.h>
#include <stdint.h>

/** Returned by cairn_chunker_scan() when the buffer holds no boundary. */
#define CAIRN_CHUNKER_NEED ((size_t)-1)

/* Limits on the sizes: 64 B <= min <= avg <= max <= 1 GiB, avg >= 256. */
#define CAIRN_CHUNKER_MIN_SIZE 64u
#define CAIRN_CHUNKER_MAX_SIZE (1u << 30)

/* Defaults (DESIGN.md §3): 512 KiB / 1 MiB / 8 MiB. */
#define CAIRN_CHUNKER_DEFAULT_MIN (512u * 1024)
#define CAIRN_CHUNKER_DEFAULT_AVG (1024u * 1024)
#define CAIRN_CHUNKER_DEFAULT_MAX (8u * 1024 * 1024)

/** Chunker state. Fields are private; the struct is public so callers can embed it. */
typedef struct cairn_chunker {
	uint64_t gear[256];    /* gear table */
	uint64_t gear_ls[256]; /* gear[i] << 1, for the two-byte step */
	uint64_t mask_s;       /* before the normal point (more bits) */
	uint64_t mask_l;       /* after the normal point (fewer bits) */
	size_t min, norm, max, avg;
	size_t lane_s, lane_l; /* lane sizes of the scan before/after norm */
	size_t pos;            /* bytes of the current chunk seen so far */
	uint64_t hash;         /* rolling hash (0 until pos reaches min) */
} cairn_chunker;

/**
 * Initialise @p c with gear table @p gear and sizes.
 * @return 0, or -EINVAL if the sizes are out of range or not ordered
 *         (min <= avg <= max, see the limits above).
 */
int cairn_chunker_init(cairn_chunker *c, const uint64_t gear[256], size_t min, size_t avg,
		       size_t max);

/**
 * Scan @p len bytes that continue the stream.
 * @return the number of bytes of @p data that complete the current chunk
 *         (1..len): the chunk is everything fed since the last boundary plus
 *         data[0..ret). The state is then reset for the next chunk; call
 *         again with the rest. CAIRN_CHUNKER_NEED if no boundary lies in
 *         @p data (all of it belongs to the current chunk).
 */
size_t cairn_chunker_scan(cairn_chunker *c, const uint8_t *data, size_t len);

/** Bytes of the current, unfinished chunk (the last chunk at end of stream). */
static inline size_t cairn_chunker_pending(const cairn_chunker *c)
{
	return c->pos;
}

/** Forget the current chunk (start of a new stream). */
void cairn_chunker_reset(cairn_chunker *c);

/**
 * A deterministic non-secret gear table from a 64-bit value, for tests and
 * benchmarks only. Repositories derive theirs from their secret seed.
 */
void cairn_chunker_gear_test(uint64_t gear[256], uint64_t seed);

#endif
