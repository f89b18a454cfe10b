/*
 * fuzz_common.h - what the libFuzzer targets share: the entry point's
 * prototype (the build warns about functions without one), fatal UBSan
 * reports, a fixed key set
 * and pack id (the seed generator mkseeds.c uses the same ones, so its
 * encrypted seeds authenticate), and an assertion that stays on in every
 * build type and reports where it failed.
 */
#ifndef CAIRN_FUZZ_COMMON_H
#define CAIRN_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/crypto_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The build compiles UBSan checks as recoverable: make the first report fatal, so the fuzzer
 * stops and saves the input instead of printing the report once and going on.
 * (Each target includes this header once, in its only file.)
 */
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void)
{
	return "halt_on_error=1:print_stacktrace=1";
}

#define FUZZ_ASSERT(cond)                                                                          \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* The passphrase of the fixed key files (fuzz_keyfile, seeds). */
#define FUZZ_PASS "fuzz passphrase"
/* Object AAD of the blobs fuzz_blob decodes (a data blob's type byte). */
#define FUZZ_BLOB_AAD "\x01"

/* A fixed, obviously-not-secret key set: every byte of each key is a function of its place. */
static inline void fuzz_keys(cairn_keyset *k)
{
	for (int i = 0; i < CAIRN_KEY_LEN; i++) {
		k->enc[i] = (uint8_t)(0x10 + i);
		k->id[i] = (uint8_t)(0x40 + i);
		k->seed[i] = (uint8_t)(0x70 + i);
		k->repo[i] = (uint8_t)(0xa0 + i);
	}
}

/* The pack id whose subkey encrypts the headers fuzz_pack_header reads. */
static inline void fuzz_pack_id(uint8_t id[32])
{
	for (int i = 0; i < 32; i++)
		id[i] = (uint8_t)(0xc0 ^ (i * 7));
}

/* The fixed blob key of fuzz_blob. */
static inline void fuzz_blob_key(uint8_t key[CAIRN_KEY_LEN])
{
	for (int i = 0; i < CAIRN_KEY_LEN; i++)
		key[i] = (uint8_t)(0xe0 ^ i);
}

#endif
