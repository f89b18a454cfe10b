/*
 * config.c - the repository config: magic, version, repository id, chunker
 * and pack sizes, zstd level, creation time and, from format 2 on, the chunk
 * id function (docs/FORMAT.md §2).
 */
#include "engine/config_int.h"

#include <errno.h>
#include <string.h>

#include "chunker/chunker.h"
#include "common/common.h"
#include "engine/engine.h"

static const char magic[8] = {'C', 'A', 'I', 'R', 'N', 'C', 'F', 'G'};

size_t cairn_config_encode(uint8_t out[CAIRN_CONFIG_MAX], const cairn_config *c)
{
	memcpy(out, magic, 8);
	out[8] = (uint8_t)c->format;
	memcpy(out + 9, c->repo_id, 32);
	cairn_put_le32(out + 41, c->chunk_min);
	cairn_put_le32(out + 45, c->chunk_avg);
	cairn_put_le32(out + 49, c->chunk_max);
	cairn_put_le32(out + 53, c->pack_size);
	out[57] = (uint8_t)c->zstd_level;
	for (int i = 0; i < 5; i++)
		out[58 + i] = (uint8_t)(c->created_s >> (8 * i));
	if (c->format == 1)
		return CAIRN_CONFIG_V1_LEN;
	out[63] = (uint8_t)c->id_fn;
	return CAIRN_CONFIG_MAX;
}

int cairn_config_decode(cairn_config *out, const void *data, size_t len)
{
	const uint8_t *p = data;
	memset(out, 0, sizeof(*out));
	if (len < CAIRN_CONFIG_V1_LEN || memcmp(p, magic, 8) != 0)
		return cairn_error_set(-EBADMSG, "config is not a cairn repository config");
	if (p[8] != 1 && p[8] != 2)
		return cairn_error_set(-EBADMSG, "repository format %u is not supported", p[8]);
	if (len != (p[8] == 1 ? CAIRN_CONFIG_V1_LEN : CAIRN_CONFIG_MAX))
		return cairn_error_set(-EBADMSG, "config of format %u has %zu bytes", p[8], len);
	out->format = p[8];
	out->id_fn = p[8] == 1 ? CAIRN_CHUNK_ID_HMAC_SHA256 : p[63];
	if (!cairn_chunk_id_known(out->id_fn))
		return cairn_error_set(-EBADMSG, "config names chunk id function %d, which this cairn "
						  "does not know", out->id_fn);
	memcpy(out->repo_id, p + 9, 32);
	out->chunk_min = cairn_get_le32(p + 41);
	out->chunk_avg = cairn_get_le32(p + 45);
	out->chunk_max = cairn_get_le32(p + 49);
	out->pack_size = cairn_get_le32(p + 53);
	out->zstd_level = p[57];
	for (int i = 0; i < 5; i++)
		out->created_s |= (uint64_t)p[58 + i] << (8 * i);
	uint64_t gear[256] = {0};
	cairn_chunker ck;
	if (cairn_chunker_init(&ck, gear, out->chunk_min, out->chunk_avg, out->chunk_max) < 0 ||
	    out->pack_size < (1u << 20) || out->pack_size > (1u << 30) || out->zstd_level > 22)
		return cairn_error_set(-EBADMSG, "config holds invalid parameters (chunks %u/%u/%u, "
						  "packs %u, zstd level %d)", out->chunk_min,
				       out->chunk_avg, out->chunk_max, out->pack_size,
				       out->zstd_level);
	return 0;
}
