/*
 * argon2id.h - Argon2id (RFC 9106, version 0x13), the passphrase KDF.
 *
 * cairn carries its own implementation because Debian's libargon2 is the
 * portable build: its block function is the reference C one, and unlocking a
 * key at the then default cost (t = 3, 64 MiB, 2 lanes) took 75 ms of every
 * command's wall time. This one runs the block function with AVX2 where the
 * CPU has it, keeps one thread per lane for the whole derivation (libargon2
 * starts and joins a thread per lane for each of the 4 x t slices), and is
 * checked bit for bit against libargon2 by the tests.
 */
#ifndef CAIRN_ARGON2ID_H
#define CAIRN_ARGON2ID_H

#include <stddef.h>
#include <stdint.h>

/*
 * Derive outlen bytes (4 .. 1024) from pwd and salt (at least 8 bytes) with
 * t_cost passes over m_kib KiB of memory (at least 8 per lane) in lanes lanes
 * (1 .. 16), one thread each. The memory is wiped before it is unmapped.
 * Returns 0, or a negative errno with the cairn error set (-EINVAL for
 * parameters out of range, -ENOMEM when the memory cannot be had).
 */
int cairn_argon2id(uint32_t t_cost, uint32_t m_kib, uint32_t lanes, const void *pwd, size_t pwdlen,
                   const void *salt, size_t saltlen, void *out, size_t outlen);

/* Tests: 1 forces the portable block function even where AVX2 exists. */
void cairn_argon2id_force_portable(int on);

/* Tests: BLAKE2b with an outlen-byte digest (1 .. 64), unkeyed. */
void cairn_blake2b(void *out, size_t outlen, const void *in, size_t inlen);

#endif
