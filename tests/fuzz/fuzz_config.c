/*
 * fuzz_config.c - cairn_config_decode on arbitrary bytes: it accepts or
 * refuses with -EBADMSG and a message; what it accepts is in range and
 * encodes back to exactly the same bytes (the config has one encoding).
 */
#include "tests/fuzz/fuzz_common.h"

#include <errno.h>

#include "common/common.h"
#include "engine/config_int.h"
#include "engine/engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cairn_config c;
	int r = cairn_config_decode(&c, data, size);
	if (r < 0) {
		FUZZ_ASSERT(r == -EBADMSG);
		FUZZ_ASSERT(cairn_error_last()[0] != 0);
		return 0;
	}
	FUZZ_ASSERT(r == 0);
	FUZZ_ASSERT(c.format == 1 || c.format == 2);
	FUZZ_ASSERT(c.id_fn == CAIRN_CHUNK_ID_HMAC_SHA256 || c.id_fn == CAIRN_CHUNK_ID_BLAKE3);
	FUZZ_ASSERT(c.format == 2 || c.id_fn == CAIRN_CHUNK_ID_HMAC_SHA256);
	FUZZ_ASSERT(c.chunk_min <= c.chunk_avg && c.chunk_avg <= c.chunk_max);
	FUZZ_ASSERT(c.pack_size >= (1u << 20) && c.pack_size <= (1u << 30));
	FUZZ_ASSERT(c.zstd_level >= 0 && c.zstd_level <= 22);
	uint8_t out[CAIRN_CONFIG_MAX];
	size_t n = cairn_config_encode(out, &c);
	FUZZ_ASSERT(n == size && memcmp(out, data, size) == 0);
	return 0;
}
