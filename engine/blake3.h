/*
 * blake3.h - BLAKE3 in keyed-hash mode, one shot: the chunk id function of
 * repositories made with config version 2 (docs/FORMAT.md §4).
 *
 * cairn carries its own BLAKE3 because Debian 12 has no C library of it (only
 * the b3sum program, which the tests use as the oracle). BLAKE3's 1 KiB
 * chunks are hashed 16 at a time with AVX-512, 8 at a time with AVX2 (or
 * AVX-512VL's rotates); a portable compression function serves the rest
 * and CPUs without AVX2. On inputs of a
 * MiB a chunk id costs 0.18 ns per byte here (16 at a time with AVX-512;
 * 0.32 with AVX2) instead of HMAC-SHA256's 0.5-0.75 with SHA-NI.
 */
#ifndef CAIRN_BLAKE3_H
#define CAIRN_BLAKE3_H

#include <stddef.h>
#include <stdint.h>

/* out = BLAKE3 keyed_hash(key, data), the 32-byte default output length. */
void cairn_blake3_keyed(const uint8_t key[32], const void *data, size_t len, uint8_t out[32]);

/* Tests and benchmarks: 0 = best for this CPU, 1 = portable, 2 = AVX2 x 8, 3 = AVX-512VL x 8,
 * 4 = AVX-512 x 16 and x 8 (what 0 picks where the CPU has AVX-512VL).
 * Returns 0, or -1 if this CPU or build lacks the asked one. */
int cairn_blake3_force(int impl);

#endif
