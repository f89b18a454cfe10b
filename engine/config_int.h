/*
 * config_int.h - the repository config object (docs/FORMAT.md §2), encoded
 * and decoded without a repository, so the decoder can be fuzzed.
 */
#ifndef CAIRN_CONFIG_INT_H
#define CAIRN_CONFIG_INT_H

#include <stddef.h>
#include <stdint.h>

#define CAIRN_CONFIG_V1_LEN 63 /* format 1: chunk ids by HMAC-SHA256 */
#define CAIRN_CONFIG_MAX 64    /* format 2: byte 63 names the chunk id function */

typedef struct cairn_config {
	int format;            /* 1 (HMAC-SHA256 ids) or 2 */
	int id_fn;             /* CAIRN_CHUNK_ID_* */
	uint8_t repo_id[32];
	uint32_t chunk_min, chunk_avg, chunk_max, pack_size;
	int zstd_level;        /* 0 .. 22 */
	uint64_t created_s;    /* seconds since the epoch, low 40 bits */
} cairn_config;

/* Encode @p c (a valid config) into @p out; returns the length (63 or 64). */
size_t cairn_config_encode(uint8_t out[CAIRN_CONFIG_MAX], const cairn_config *c);

/*
 * Decode and validate @p len bytes. Returns 0, or -EBADMSG with a message
 * saying what is wrong (the caller adds where the config came from).
 */
int cairn_config_decode(cairn_config *out, const void *data, size_t len);

#endif
