/*
 * crypto_int.h - keys and the blob codec (engine-internal).
 *
 * Key set: three independent 32-byte secrets from OpenSSL's CSPRNG (the
 * encryption key, the id key and the chunker seed), wrapped in key files
 * under Argon2id of a passphrase. Several key files may wrap one key set.
 *
 * Blob codec: plaintext -> [zstd, kept only when it shrinks] -> AES-256-GCM
 * under a subkey (HKDF-SHA256 of the encryption key and a salt: the pack id
 * for blobs in packs, a random salt for standalone objects) with a counter
 * nonce that the caller never reuses under one subkey. Decoding authenticates
 * before it returns anything. Byte layouts: docs/FORMAT.md.
 */
#ifndef CAIRN_CRYPTO_INT_H
#define CAIRN_CRYPTO_INT_H

#include <stddef.h>
#include <stdint.h>

#include "common/common.h"
#include "engine/engine.h" /* CAIRN_KDF_DEFAULT_* */

#define CAIRN_KEY_LEN 32
#define CAIRN_NONCE_LEN 12
#define CAIRN_TAG_LEN 16
/* A blob is nonce || ciphertext(codec byte + body) || tag. */
#define CAIRN_BLOB_OVERHEAD (CAIRN_NONCE_LEN + 1 + CAIRN_TAG_LEN)

/* Codec byte, the first plaintext byte of every blob. */
#define CAIRN_CODEC_RAW 0
#define CAIRN_CODEC_ZSTD 1

typedef struct cairn_keyset {
	uint8_t enc[CAIRN_KEY_LEN];  /* AES-256-GCM master key (subkeys via HKDF) */
	uint8_t id[CAIRN_KEY_LEN];   /* key of chunk ids (id_fn) and file digests (HMAC-SHA256) */
	uint8_t seed[CAIRN_KEY_LEN]; /* chunker gear table seed */
	uint8_t repo[CAIRN_KEY_LEN]; /* repository id this key set belongs to */
	int id_fn; /* CAIRN_CHUNK_ID_HMAC_SHA256 or _BLAKE3: from the config, not in key files */
} cairn_keyset;

/** Argon2id parameters stored in each key file. */
typedef struct cairn_kdf_params {
	uint32_t t_cost;   /* iterations */
	uint32_t m_kib;    /* memory in KiB */
	uint32_t lanes;    /* parallelism */
} cairn_kdf_params;

/*
 * Defaults: 32 MiB, 8 passes, 2 lanes (45-50 ms here, as 64 MiB x 3 passes
 * took). Half the memory of RFC 9106's 64 MiB choice for a third more
 * passes: the memory every guess needs is restic's (scrypt, 32 MiB), and an
 * appliance running several jobs at once holds 32 MiB per job while it
 * unlocks. docs/FORMAT.md, "Key files", says what an attacker pays.
 */
#define CAIRN_KDF_DEFAULT {CAIRN_KDF_DEFAULT_T, CAIRN_KDF_DEFAULT_M_KIB, CAIRN_KDF_DEFAULT_LANES}
/* Bounds accepted when reading a key file (a hostile file cannot make us allocate 1 TiB). */
#define CAIRN_KDF_MAX_M_KIB (4u * 1024 * 1024)
#define CAIRN_KDF_MAX_T 64

/** Fill @p out with @p len bytes from the CSPRNG; aborts if the CSPRNG fails. */
void cairn_random(void *out, size_t len);

/** New random key set for repository @p repo_id. */
void cairn_keyset_generate(cairn_keyset *out, const uint8_t repo_id[CAIRN_KEY_LEN]);

/** Zero a key set (or any secret) in a way the compiler keeps. */
void cairn_wipe(void *p, size_t len);

/**
 * Wrap @p keys under @p pass into a key file (appended to @p out).
 * @p label is a free text (user@host) stored in clear.
 */
int cairn_keyfile_create(cairn_buf *out, const cairn_keyset *keys, const char *pass,
			 const cairn_kdf_params *kdf, const char *label, int64_t created_ns);

/**
 * Unwrap a key file with @p pass.
 * @return 0; -EKEYREJECTED if the passphrase does not open it; -EBADMSG if the
 *         file is malformed or its parameters are out of bounds.
 */
int cairn_keyfile_open(cairn_keyset *out, const void *file, size_t len, const char *pass);

/** Read a key file's clear fields (label, creation time, KDF parameters). */
int cairn_keyfile_info(const void *file, size_t len, char *label, size_t label_cap,
		       int64_t *created_ns, cairn_kdf_params *kdf);

/** Chunk id: BLAKE3 keyed_hash(id key, data), or HMAC-SHA256(id key, data) (keys->id_fn). */
void cairn_chunk_id(const cairn_keyset *keys, const void *data, size_t len,
		    uint8_t out[CAIRN_KEY_LEN]);

/** HMAC-SHA256 over several pieces (for digests). */
void cairn_hmac(const uint8_t key[CAIRN_KEY_LEN], const void *const *parts, const size_t *lens,
		size_t n, uint8_t out[32]);

/** HMAC-SHA256 with a key of any length. */
void cairn_hmac_key(const void *key, size_t key_len, const void *const *parts, const size_t *lens,
		    size_t n, uint8_t out[32]);

/** HKDF-SHA256 (RFC 5869) with a 32-byte output. */
void cairn_hkdf(uint8_t out[32], const void *ikm, size_t ikm_len, const void *salt,
		size_t salt_len, const void *info, size_t info_len);

/** Plain AES-256-GCM encryption (for known-answer tests). */
int cairn_gcm_encrypt(const uint8_t key[CAIRN_KEY_LEN], const uint8_t nonce[CAIRN_NONCE_LEN],
		      const void *aad, size_t aad_len, const void *in, size_t len, uint8_t *out,
		      uint8_t tag[CAIRN_TAG_LEN]);

/** The chunker's gear table derived from the secret seed. */
void cairn_keyset_gear(const cairn_keyset *keys, uint64_t gear[256]);

/** HKDF-SHA256(ikm = master, salt, info) -> 32-byte subkey. */
void cairn_subkey(uint8_t out[CAIRN_KEY_LEN], const uint8_t master[CAIRN_KEY_LEN],
		  const void *salt, size_t salt_len, const char *info);

/** XXH3-128 of @p data, canonical (big-endian) 16 bytes. */
void cairn_xxh128(const void *data, size_t len, uint8_t out[16]);

/** Per-thread codec state: zstd and cipher contexts and scratch space. */
typedef struct cairn_codec cairn_codec;

/** @p level: zstd level (1..19); 0 disables compression. */
cairn_codec *cairn_codec_new(int level);
/** Frees the codec, wiping the keys it cached. */
void cairn_codec_free(cairn_codec *cx);

#define CAIRN_CODEC_KEYS 4
/**
 * The codec's small cache of derived keys (its thread's, like the codec):
 * the 32-byte slot for @p tag, which names the key and its derivation
 * (tags may hold secrets: the cache is wiped with the codec). *hit = 1 if it
 * holds that key; else the slot, now the tag's, must be filled by the caller
 * before the codec is used again.
 */
uint8_t *cairn_codec_key_slot(cairn_codec *cx, const uint8_t tag[64], int *hit);

/** Largest encoded size of a blob of @p len bytes. */
static inline size_t cairn_blob_bound(size_t len)
{
	return len + CAIRN_BLOB_OVERHEAD;
}

/**
 * Encode @p len bytes into @p out (capacity >= cairn_blob_bound(len)) under
 * @p key with nonce counter @p counter; @p aad binds context (the blob type)
 * into the tag. Stores raw when compression does not shrink the data.
 * @return the encoded size (> 0), or a negative errno.
 */
long cairn_blob_encode(cairn_codec *cx, const uint8_t key[CAIRN_KEY_LEN], uint64_t counter,
		       const void *aad, size_t aad_len, const void *in, size_t len, void *out);

/* Blobs this large or larger are sampled at level 1 before zstd runs on them whole. */
#define CAIRN_PROBE_MIN (256u << 10)

/**
 * cairn_blob_encode in two halves, so threads can compress in parallel and
 * seal under a shared pack's key and counter. cairn_blob_compress points
 * *body at the bytes to seal (@p in itself, or @p cx's scratch, valid until
 * the next use of @p cx) and returns the codec byte; cairn_blob_seal writes
 * the blob (capacity cairn_blob_bound(blen)) and returns its size or a
 * negative errno.
 */
uint8_t cairn_blob_compress(cairn_codec *cx, const void *in, size_t len, const void **body,
			    size_t *blen);
long cairn_blob_seal(cairn_codec *cx, const uint8_t key[CAIRN_KEY_LEN], uint64_t counter,
		     const void *aad, size_t aad_len, uint8_t codec, const void *body, size_t blen,
		     void *out);

/**
 * Authenticate and decode a blob into @p out (cleared first). The plaintext
 * may not exceed @p max bytes.
 * @return 0; -EBADMSG on any authentication or format failure (nothing is
 *         returned then); -ERANGE if the plaintext would exceed @p max.
 */
int cairn_blob_decode(cairn_codec *cx, const uint8_t key[CAIRN_KEY_LEN], const void *aad,
		      size_t aad_len, const void *in, size_t len, size_t max, cairn_buf *out);

/*
 * Sealed objects: standalone encrypted objects (index segments, snapshots,
 * locks, drill reports). Layout: "CRNO" | version u8 | kind u8 | salt[16] |
 * blob; subkey = HKDF(enc, salt, "cairn/object/v1"); the 22-byte header is the AAD.
 */
#define CAIRN_SEAL_HDR 22
int cairn_seal(cairn_codec *cx, const cairn_keyset *keys, uint8_t kind, const void *data,
	       size_t len, cairn_buf *out);
/** @return 0; -EBADMSG if corrupt, not of @p kind, or not authentic. */
int cairn_unseal(cairn_codec *cx, const cairn_keyset *keys, uint8_t kind, const void *in,
		 size_t len, size_t max, cairn_buf *out);

#endif
