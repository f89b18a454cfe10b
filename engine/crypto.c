/*
 * crypto.c - key sets, key files, chunk ids, subkeys and the blob codec.
 *
 * OpenSSL 3 provides the CSPRNG, HMAC-SHA256 and AES-256-GCM; argon2id.c the
 * passphrase KDF; zstd the compression; xxHash the keyless checksums. HKDF is
 * written out with two HMACs (RFC 5869, one output block), which is exactly
 * HKDF-SHA256 with L = 32.
 */
#include "engine/crypto_int.h"

#include "engine/argon2id.h"
#include "engine/blake3.h"
#include "engine/engine.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <xxhash.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_initStaticCCtx, ZSTD_estimateCCtxSize */
#include <zstd.h>

static EVP_MAC *hmac_alg;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

/*
 * Each thread keeps one HMAC context keyed with the last 32-byte key it used
 * (in practice the chunk-id key): re-initializing it with the same key only
 * resets the inner state, where a fresh context costs a digest fetch and two
 * key-pad compressions per call (measured: 1 KiB ids 1.5-2.1 -> 0.9-1.2 us).
 */
typedef struct hmac_tl {
	EVP_MAC_CTX *c;
	uint8_t key[CAIRN_KEY_LEN];
	int keyed;
} hmac_tl;
static pthread_key_t hmac_tls;

static void hmac_tl_free(void *p)
{
	hmac_tl *t = p;
	EVP_MAC_CTX_free(t->c);
	OPENSSL_cleanse(t, sizeof(*t));
	free(t);
}

static void hmac_init(void)
{
	pthread_key_create(&hmac_tls, hmac_tl_free);
	hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (!hmac_alg) {
		fprintf(stderr, "cairn: OpenSSL has no HMAC\n");
		abort();
	}
}

void cairn_random(void *out, size_t len)
{
	if (RAND_bytes(out, (int)len) != 1) {
		fprintf(stderr, "cairn: the CSPRNG failed\n");
		abort();
	}
}

void cairn_wipe(void *p, size_t len)
{
	OPENSSL_cleanse(p, len);
}

void cairn_keyset_generate(cairn_keyset *out, const uint8_t repo_id[CAIRN_KEY_LEN])
{
	cairn_random(out->enc, sizeof(out->enc));
	cairn_random(out->id, sizeof(out->id));
	cairn_random(out->seed, sizeof(out->seed));
	memcpy(out->repo, repo_id, CAIRN_KEY_LEN);
	out->id_fn = CAIRN_CHUNK_ID_HMAC_SHA256; /* until a config says otherwise */
}

void cairn_hmac(const uint8_t key[CAIRN_KEY_LEN], const void *const *parts, const size_t *lens,
		size_t n, uint8_t out[32])
{
	cairn_hmac_key(key, CAIRN_KEY_LEN, parts, lens, n, out);
}

static void hmac_fail(void)
{
	fprintf(stderr, "cairn: HMAC-SHA256 failed\n");
	abort();
}

void cairn_hmac_key(const void *key, size_t key_len, const void *const *parts, const size_t *lens,
		    size_t n, uint8_t out[32])
{
	pthread_once(&hmac_once, hmac_init);
	OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
			  OSSL_PARAM_construct_end()};
	size_t outl = 0;
	int ok;
	hmac_tl *t = key_len == CAIRN_KEY_LEN ? pthread_getspecific(hmac_tls) : NULL;
	if (key_len == CAIRN_KEY_LEN && !t) {
		t = calloc(1, sizeof(*t));
		if (!t || !(t->c = EVP_MAC_CTX_new(hmac_alg)))
			hmac_fail();
		pthread_setspecific(hmac_tls, t);
	}
	EVP_MAC_CTX *c;
	if (t) {
		c = t->c;
		if (t->keyed && !memcmp(t->key, key, CAIRN_KEY_LEN)) {
			ok = EVP_MAC_init(c, NULL, 0, NULL) == 1; /* same key: reset only */
		} else {
			ok = EVP_MAC_init(c, key, key_len, p) == 1;
			memcpy(t->key, key, CAIRN_KEY_LEN);
			t->keyed = ok;
		}
	} else {
		c = EVP_MAC_CTX_new(hmac_alg);
		ok = c && EVP_MAC_init(c, key, key_len, p) == 1;
	}
	for (size_t i = 0; ok && i < n; i++)
		ok = EVP_MAC_update(c, parts[i], lens[i]) == 1;
	ok = ok && EVP_MAC_final(c, out, &outl, 32) == 1 && outl == 32;
	if (!t)
		EVP_MAC_CTX_free(c);
	if (!ok)
		hmac_fail();
}

void cairn_chunk_id(const cairn_keyset *keys, const void *data, size_t len,
		    uint8_t out[CAIRN_KEY_LEN])
{
	if (keys->id_fn == CAIRN_CHUNK_ID_BLAKE3) {
		cairn_blake3_keyed(keys->id, data, len, out);
		return;
	}
	const void *parts[1] = {data};
	size_t lens[1] = {len};
	cairn_hmac(keys->id, parts, lens, 1, out);
}

void cairn_hkdf(uint8_t out[32], const void *ikm, size_t ikm_len, const void *salt,
		size_t salt_len, const void *info, size_t info_len)
{
	/* HKDF-Extract: PRK = HMAC(salt, IKM); HKDF-Expand, one block: T(1) = HMAC(PRK, info || 1).
	 * An empty salt means HashLen zero bytes, which HMAC treats like an empty key. */
	uint8_t prk[32], one = 1, zeros[32] = {0};
	if (!salt_len) {
		salt = zeros;
		salt_len = sizeof(zeros);
	}
	const void *p1[1] = {ikm};
	size_t l1[1] = {ikm_len};
	cairn_hmac_key(salt, salt_len, p1, l1, 1, prk);
	const void *p2[2] = {info_len ? info : &one, &one};
	size_t l2[2] = {info_len, 1};
	cairn_hmac_key(prk, sizeof(prk), p2, l2, 2, out);
	cairn_wipe(prk, sizeof(prk));
}

void cairn_subkey(uint8_t out[CAIRN_KEY_LEN], const uint8_t master[CAIRN_KEY_LEN],
		  const void *salt, size_t salt_len, const char *info)
{
	cairn_hkdf(out, master, CAIRN_KEY_LEN, salt, salt_len, info, strlen(info));
}

void cairn_keyset_gear(const cairn_keyset *keys, uint64_t gear[256])
{
	static const char label[] = "cairn/gear/v1";
	for (int blk = 0; blk < 64; blk++) {
		uint8_t ctr = (uint8_t)blk, out[32];
		const void *parts[2] = {label, &ctr};
		size_t lens[2] = {sizeof(label) - 1, 1};
		cairn_hmac(keys->seed, parts, lens, 2, out);
		for (int j = 0; j < 4; j++)
			gear[blk * 4 + j] = cairn_get_le64(out + 8 * j);
	}
}

void cairn_xxh128(const void *data, size_t len, uint8_t out[16])
{
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, XXH3_128bits(data, len));
	memcpy(out, c.digest, 16);
}

/* --- AES-256-GCM ------------------------------------------------------- */

struct cairn_codec {
	int level;
	ZSTD_CCtx *zc;
	void *zc_space; /* the compression context's fixed workspace, or NULL */
	ZSTD_DCtx *zd;
	EVP_CIPHER_CTX *enc, *dec;
	cairn_buf scratch;
	struct {
		uint8_t tag[64], key[CAIRN_KEY_LEN];
		int used;
	} kc[CAIRN_CODEC_KEYS]; /* derived keys (cairn_codec_key_slot), wiped with the codec */
	unsigned kc_next;
};

cairn_codec *cairn_codec_new(int level)
{
	cairn_codec *cx = cairn_xcalloc(1, sizeof(*cx));
	cx->level = level;
	/*
	 * A compressing codec gets a workspace of fixed size, large enough for
	 * any input at its level (1.3 MB at level 3, touched only as far as an
	 * input needs). A growing context, fed files of 2 KiB then 60 KiB then
	 * 1 MiB chunks, freed and reallocated its tables again and again: a
	 * third of a first backup's page faults.
	 */
	size_t ws = level > 0 ? ZSTD_estimateCCtxSize(level) : 0;
	if (ws && ws <= (16u << 20)) { /* levels up to 9; above, the bound for inputs of any
					* size (81 MB at 19, 649 MB at 22) is too much to reserve */
		cx->zc_space = cairn_xmalloc(ws);
		cx->zc = ZSTD_initStaticCCtx(cx->zc_space, ws);
		if (!cx->zc) {
			free(cx->zc_space);
			cx->zc_space = NULL;
		}
	}
	if (!cx->zc)
		cx->zc = ZSTD_createCCtx();
	cx->zd = ZSTD_createDCtx();
	cx->enc = EVP_CIPHER_CTX_new();
	cx->dec = EVP_CIPHER_CTX_new();
	if (!cx->zc || !cx->zd || !cx->enc || !cx->dec ||
	    EVP_EncryptInit_ex(cx->enc, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_DecryptInit_ex(cx->dec, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1) {
		fprintf(stderr, "cairn: cannot create codec contexts\n");
		abort();
	}
	if (level > 0) {
		/*
		 * Every parameter is set here: a static context starts with them all
		 * zero (libzstd 1.5.4 does not reset a context it places in a given
		 * workspace), so frames lost their content size, which the format
		 * requires. Level 3, the default, uses smaller match tables with
		 * shorter minimum matches: on the benchmark's /usr corpus in 1 MiB
		 * pieces 7 % less compression time for 0.3 % more output, on its
		 * image in 48 KiB pieces 1 % less output (docs/BENCHMARKS.md, the
		 * zstd study).
		 */
		size_t e = ZSTD_CCtx_reset(cx->zc, ZSTD_reset_parameters);
		e = ZSTD_isError(e) ? e : ZSTD_CCtx_setParameter(cx->zc, ZSTD_c_compressionLevel, level);
		e = ZSTD_isError(e) ? e : ZSTD_CCtx_setParameter(cx->zc, ZSTD_c_contentSizeFlag, 1);
		e = ZSTD_isError(e) ? e : ZSTD_CCtx_setParameter(cx->zc, ZSTD_c_checksumFlag, 0);
		if (level == 3) {
			e = ZSTD_isError(e) ? e : ZSTD_CCtx_setParameter(cx->zc, ZSTD_c_hashLog, 16);
			e = ZSTD_isError(e) ? e : ZSTD_CCtx_setParameter(cx->zc, ZSTD_c_chainLog, 13);
			e = ZSTD_isError(e) ? e : ZSTD_CCtx_setParameter(cx->zc, ZSTD_c_minMatch, 4);
		}
		if (ZSTD_isError(e)) {
			fprintf(stderr, "cairn: zstd: %s\n", ZSTD_getErrorName(e));
			abort();
		}
	}
	return cx;
}

void cairn_codec_free(cairn_codec *cx)
{
	if (!cx)
		return;
	if (cx->zc_space)
		free(cx->zc_space); /* a static context is not freed by itself */
	else
		ZSTD_freeCCtx(cx->zc);
	ZSTD_freeDCtx(cx->zd);
	EVP_CIPHER_CTX_free(cx->enc);
	EVP_CIPHER_CTX_free(cx->dec);
	cairn_buf_free(&cx->scratch);
	cairn_wipe(cx, sizeof(*cx));
	free(cx);
}

uint8_t *cairn_codec_key_slot(cairn_codec *cx, const uint8_t tag[64], int *hit)
{
	for (unsigned i = 0; i < CAIRN_CODEC_KEYS; i++)
		if (cx->kc[i].used && !memcmp(cx->kc[i].tag, tag, 64)) {
			*hit = 1;
			return cx->kc[i].key;
		}
	unsigned i = cx->kc_next++ % CAIRN_CODEC_KEYS;
	memcpy(cx->kc[i].tag, tag, 64);
	cx->kc[i].used = 1;
	*hit = 0;
	return cx->kc[i].key;
}

static void make_nonce(uint8_t nonce[CAIRN_NONCE_LEN], uint64_t counter)
{
	memset(nonce, 0, CAIRN_NONCE_LEN);
	cairn_put_le64(nonce, counter);
}

/* Encrypt codec byte + body under key/nonce into out (ciphertext then tag). */
static int gcm_seal(EVP_CIPHER_CTX *c, const uint8_t *key, const uint8_t *nonce, const void *aad,
		    size_t aad_len, uint8_t codec, const void *body, size_t len, uint8_t *out)
{
	int n = 0, ok;
	ok = EVP_EncryptInit_ex(c, NULL, NULL, key, nonce) == 1;
	ok = ok && (!aad_len || EVP_EncryptUpdate(c, NULL, &n, aad, (int)aad_len) == 1);
	ok = ok && EVP_EncryptUpdate(c, out, &n, &codec, 1) == 1 && n == 1;
	ok = ok && (!len || EVP_EncryptUpdate(c, out + 1, &n, body, (int)len) == 1);
	ok = ok && EVP_EncryptFinal_ex(c, out + 1 + len, &n) == 1;
	ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, CAIRN_TAG_LEN, out + 1 + len) == 1;
	return ok ? 0 : cairn_error_set(-EIO, "AES-256-GCM encryption failed");
}

int cairn_gcm_encrypt(const uint8_t key[CAIRN_KEY_LEN], const uint8_t nonce[CAIRN_NONCE_LEN],
		      const void *aad, size_t aad_len, const void *in, size_t len, uint8_t *out,
		      uint8_t tag[CAIRN_TAG_LEN])
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0;
	int ok = c && EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce) == 1;
	ok = ok && (!aad_len || EVP_EncryptUpdate(c, NULL, &n, aad, (int)aad_len) == 1);
	ok = ok && (!len || EVP_EncryptUpdate(c, out, &n, in, (int)len) == 1);
	ok = ok && EVP_EncryptFinal_ex(c, out + len, &n) == 1;
	ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, CAIRN_TAG_LEN, tag) == 1;
	EVP_CIPHER_CTX_free(c);
	return ok ? 0 : -EIO;
}

/* GCM decryption in steps: begin (key, nonce, AAD), more ciphertext, end (the tag). */
static int gcm_begin(EVP_CIPHER_CTX *c, const uint8_t *key, const uint8_t *nonce, const void *aad,
		     size_t aad_len)
{
	int n = 0;
	return EVP_DecryptInit_ex(c, NULL, NULL, key, nonce) == 1 &&
	       (!aad_len || EVP_DecryptUpdate(c, NULL, &n, aad, (int)aad_len) == 1);
}

static int gcm_more(EVP_CIPHER_CTX *c, const uint8_t *ct, size_t len, uint8_t *out)
{
	int n = 0;
	return !len || EVP_DecryptUpdate(c, out, &n, ct, (int)len) == 1;
}

static int gcm_end(EVP_CIPHER_CTX *c, const uint8_t *tag)
{
	uint8_t none[16];
	int n = 0;
	return EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, CAIRN_TAG_LEN, (void *)tag) == 1 &&
	       EVP_DecryptFinal_ex(c, none, &n) == 1;
}

/* Decrypt ct (len bytes, then tag) into out; 0 or -EBADMSG if not authentic. */
static int gcm_open(EVP_CIPHER_CTX *c, const uint8_t *key, const uint8_t *nonce, const void *aad,
		    size_t aad_len, const uint8_t *ct, size_t len, uint8_t *out)
{
	int ok = gcm_begin(c, key, nonce, aad, aad_len) && gcm_more(c, ct, len, out) &&
		 gcm_end(c, ct + len);
	return ok ? 0 : -EBADMSG;
}

/*
 * Incompressible data (media, archives, encrypted files) costs a full zstd
 * pass for nothing. For blobs of CAIRN_PROBE_MIN (256 KiB) and above,
 * compress three 16 KiB samples (start, middle, end) at level 1 first, about
 * 1/20 of the work; only if none
 * of them shrinks by 1/16 is the blob stored raw without trying the rest, so
 * a blob with any compressible part is still compressed.
 */
static int looks_incompressible(cairn_codec *cx, const void *in, size_t len)
{
	const size_t sample = 16 << 10;
	if (len < CAIRN_PROBE_MIN)
		return 0;
	uint8_t tmp[16 << 10];
	const uint8_t *base = in;
	const size_t at[3] = {0, (len - sample) / 2, len - sample};
	for (int i = 0; i < 3; i++) {
		size_t z = ZSTD_compressCCtx(cx->zc, tmp, sizeof(tmp), base + at[i], sample, 1);
		if (!ZSTD_isError(z) && z <= sample - sample / 16)
			return 0;
	}
	return 1;
}

uint8_t cairn_blob_compress(cairn_codec *cx, const void *in, size_t len, const void **body,
			    size_t *blen)
{
	*body = in;
	*blen = len;
	if (cx->level > 0 && len >= 64 && len <= INT32_MAX - 64 &&
	    !looks_incompressible(cx, in, len)) {
		/* keep compression only when it saves at least 1/32 of the size */
		size_t cap = len - len / 32;
		cairn_buf_reserve(&cx->scratch, cap);
		size_t z = ZSTD_compress2(cx->zc, cx->scratch.data, cap, in, len);
		if (!ZSTD_isError(z) && z < cap) {
			*body = cx->scratch.data;
			*blen = z;
			return CAIRN_CODEC_ZSTD;
		}
	}
	return CAIRN_CODEC_RAW;
}

long cairn_blob_seal(cairn_codec *cx, const uint8_t key[CAIRN_KEY_LEN], uint64_t counter,
		     const void *aad, size_t aad_len, uint8_t codec, const void *body, size_t blen,
		     void *out)
{
	uint8_t *o = out;
	if (blen > INT32_MAX - 64)
		return cairn_error_set(-ERANGE, "blob of %zu bytes is too large", blen);
	make_nonce(o, counter);
	int r = gcm_seal(cx->enc, key, o, aad, aad_len, codec, body, blen, o + CAIRN_NONCE_LEN);
	if (r < 0)
		return r;
	return (long)(blen + CAIRN_BLOB_OVERHEAD);
}

long cairn_blob_encode(cairn_codec *cx, const uint8_t key[CAIRN_KEY_LEN], uint64_t counter,
		       const void *aad, size_t aad_len, const void *in, size_t len, void *out)
{
	const void *body;
	size_t blen; /* input too large for a blob stays raw, and the seal refuses it */
	uint8_t codec = cairn_blob_compress(cx, in, len, &body, &blen);
	return cairn_blob_seal(cx, key, counter, aad, aad_len, codec, body, blen, out);
}

int cairn_blob_decode(cairn_codec *cx, const uint8_t key[CAIRN_KEY_LEN], const void *aad,
		      size_t aad_len, const void *in, size_t len, size_t max, cairn_buf *out)
{
	const uint8_t *p = in;
	out->len = 0;
	if (len < CAIRN_BLOB_OVERHEAD || len > INT32_MAX)
		return cairn_error_set(-EBADMSG, "blob of %zu bytes is malformed", len);
	const uint8_t *ct = p + CAIRN_NONCE_LEN; /* codec byte, body, tag */
	size_t blen = len - CAIRN_BLOB_OVERHEAD;
	/*
	 * The codec byte first: a raw body is decrypted straight into @p out (no
	 * second buffer, no copy), a compressed one into the scratch buffer.
	 * Nothing is believed before the tag is checked: a raw body over @p max
	 * goes to the scratch buffer and is refused only once authenticated.
	 */
	uint8_t codec = 0;
	int ok = gcm_begin(cx->dec, key, p, aad, aad_len) && gcm_more(cx->dec, ct, 1, &codec);
	uint8_t *body;
	if (codec == CAIRN_CODEC_RAW && blen <= max) {
		cairn_buf_reserve(out, blen);
		body = out->data;
	} else {
		cairn_buf_reserve(&cx->scratch, blen);
		body = cx->scratch.data;
	}
	ok = ok && gcm_more(cx->dec, ct + 1, blen, body) && gcm_end(cx->dec, ct + 1 + blen);
	if (!ok)
		return cairn_error_set(-EBADMSG, "blob failed authentication (corrupt or wrong key)");
	if (codec == CAIRN_CODEC_RAW) {
		if (blen > max)
			return cairn_error_set(-ERANGE, "blob of %zu bytes exceeds limit %zu", blen, max);
		out->len = blen;
		return 0;
	}
	if (codec != CAIRN_CODEC_ZSTD)
		return cairn_error_set(-EBADMSG, "blob has unknown codec %u", codec);
	unsigned long long sz = ZSTD_getFrameContentSize(body, blen);
	if (sz == ZSTD_CONTENTSIZE_ERROR || sz == ZSTD_CONTENTSIZE_UNKNOWN)
		return cairn_error_set(-EBADMSG, "blob holds a malformed zstd frame");
	if (sz > max)
		return cairn_error_set(-ERANGE, "blob of %llu bytes exceeds limit %zu", sz, max);
	cairn_buf_reserve(out, (size_t)sz);
	size_t d = ZSTD_decompressDCtx(cx->zd, out->data, (size_t)sz, body, blen);
	if (ZSTD_isError(d) || d != sz)
		return cairn_error_set(-EBADMSG, "blob does not decompress: %s",
				       ZSTD_isError(d) ? ZSTD_getErrorName(d) : "short");
	out->len = (size_t)sz;
	return 0;
}

/* --- sealed objects ------------------------------------------------------ */

static const char seal_magic[4] = {'C', 'R', 'N', 'O'};

int cairn_seal(cairn_codec *cx, const cairn_keyset *keys, uint8_t kind, const void *data,
	       size_t len, cairn_buf *out)
{
	uint8_t hdr[CAIRN_SEAL_HDR], sub[CAIRN_KEY_LEN];
	memcpy(hdr, seal_magic, 4);
	hdr[4] = 1;
	hdr[5] = kind;
	cairn_random(hdr + 6, 16);
	cairn_subkey(sub, keys->enc, hdr + 6, 16, "cairn/object/v1");
	cairn_buf_reserve(out, CAIRN_SEAL_HDR + cairn_blob_bound(len));
	cairn_buf_append(out, hdr, sizeof(hdr));
	long n = cairn_blob_encode(cx, sub, 0, hdr, sizeof(hdr), data, len, out->data + out->len);
	cairn_wipe(sub, sizeof(sub));
	if (n < 0)
		return (int)n;
	out->len += (size_t)n;
	return 0;
}

int cairn_unseal(cairn_codec *cx, const cairn_keyset *keys, uint8_t kind, const void *in,
		 size_t len, size_t max, cairn_buf *out)
{
	const uint8_t *p = in;
	uint8_t sub[CAIRN_KEY_LEN];
	if (len < CAIRN_SEAL_HDR + CAIRN_BLOB_OVERHEAD || memcmp(p, seal_magic, 4) != 0)
		return cairn_error_set(-EBADMSG, "not a cairn object (bad magic or too short)");
	if (p[4] != 1)
		return cairn_error_set(-EBADMSG, "object format version %u is not supported", p[4]);
	if (p[5] != kind)
		return cairn_error_set(-EBADMSG, "object is of kind %u, expected %u", p[5], kind);
	cairn_subkey(sub, keys->enc, p + 6, 16, "cairn/object/v1");
	int r = cairn_blob_decode(cx, sub, p, CAIRN_SEAL_HDR, p + CAIRN_SEAL_HDR,
				  len - CAIRN_SEAL_HDR, max, out);
	cairn_wipe(sub, sizeof(sub));
	return r;
}

/* --- key files ------------------------------------------------------------ */

static const char key_magic[8] = {'C', 'A', 'I', 'R', 'N', 'K', 'E', 'Y'};
#define KEY_FIXED 48 /* bytes before the label */
#define KEY_PAYLOAD (1 + 4 * CAIRN_KEY_LEN)

int cairn_keyfile_create(cairn_buf *out, const cairn_keyset *keys, const char *pass,
			 const cairn_kdf_params *kdf, const char *label, int64_t created_ns)
{
	size_t llen = label ? strlen(label) : 0;
	if (llen > 1024)
		llen = 1024;
	if (kdf->m_kib < 8 * kdf->lanes || kdf->m_kib > CAIRN_KDF_MAX_M_KIB || !kdf->t_cost ||
	    kdf->t_cost > CAIRN_KDF_MAX_T || !kdf->lanes || kdf->lanes > 16)
		return cairn_error_set(-EINVAL,
				       "key derivation cost out of range: memory %u KiB (%u..%u), "
				       "passes %u (1..%u), lanes %u (1..16)",
				       kdf->m_kib, 8 * kdf->lanes, CAIRN_KDF_MAX_M_KIB, kdf->t_cost,
				       CAIRN_KDF_MAX_T, kdf->lanes);
	uint8_t hdr[KEY_FIXED];
	memcpy(hdr, key_magic, 8);
	hdr[8] = 1; /* key file version */
	hdr[9] = 1; /* KDF: Argon2id v1.3 */
	cairn_put_le32(hdr + 10, kdf->t_cost);
	cairn_put_le32(hdr + 14, kdf->m_kib);
	cairn_put_le32(hdr + 18, kdf->lanes);
	cairn_random(hdr + 22, 16);
	cairn_put_le64(hdr + 38, (uint64_t)created_ns);
	cairn_put_le16(hdr + 46, (uint16_t)llen);

	uint8_t kek[CAIRN_KEY_LEN], payload[KEY_PAYLOAD], nonce[CAIRN_NONCE_LEN];
	int r = cairn_argon2id(kdf->t_cost, kdf->m_kib, kdf->lanes, pass, strlen(pass), hdr + 22,
			       16, kek, sizeof(kek));
	if (r < 0)
		return r;
	payload[0] = 1;
	memcpy(payload + 1, keys->enc, 32);
	memcpy(payload + 33, keys->id, 32);
	memcpy(payload + 65, keys->seed, 32);
	memcpy(payload + 97, keys->repo, 32);
	cairn_random(nonce, sizeof(nonce));

	size_t start = out->len;
	cairn_buf_append(out, hdr, sizeof(hdr));
	cairn_buf_append(out, label, llen);
	size_t aad_len = out->len - start;
	cairn_buf_append(out, nonce, sizeof(nonce));
	cairn_buf_reserve(out, KEY_PAYLOAD + CAIRN_TAG_LEN);
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0;
	int ok = c && EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, kek, nonce) == 1 &&
		 EVP_EncryptUpdate(c, NULL, &n, out->data + start, (int)aad_len) == 1 &&
		 EVP_EncryptUpdate(c, out->data + out->len, &n, payload, KEY_PAYLOAD) == 1 &&
		 EVP_EncryptFinal_ex(c, out->data + out->len + KEY_PAYLOAD, &n) == 1 &&
		 EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, CAIRN_TAG_LEN,
				     out->data + out->len + KEY_PAYLOAD) == 1;
	EVP_CIPHER_CTX_free(c);
	cairn_wipe(kek, sizeof(kek));
	cairn_wipe(payload, sizeof(payload));
	if (!ok)
		return cairn_error_set(-EIO, "AES-256-GCM failed wrapping the key");
	out->len += KEY_PAYLOAD + CAIRN_TAG_LEN;
	return 0;
}

static int keyfile_parse(const uint8_t *p, size_t len, size_t *aad_len, cairn_kdf_params *kdf)
{
	if (len < KEY_FIXED || memcmp(p, key_magic, 8) != 0)
		return cairn_error_set(-EBADMSG, "not a cairn key file");
	if (p[8] != 1 || p[9] != 1)
		return cairn_error_set(-EBADMSG, "key file version %u / KDF %u not supported", p[8],
				       p[9]);
	kdf->t_cost = cairn_get_le32(p + 10);
	kdf->m_kib = cairn_get_le32(p + 14);
	kdf->lanes = cairn_get_le32(p + 18);
	if (!kdf->t_cost || kdf->t_cost > CAIRN_KDF_MAX_T || !kdf->lanes || kdf->lanes > 16 ||
	    kdf->m_kib < 8 * kdf->lanes || kdf->m_kib > CAIRN_KDF_MAX_M_KIB)
		return cairn_error_set(-EBADMSG, "key file KDF parameters out of bounds");
	size_t llen = cairn_get_le16(p + 46);
	*aad_len = KEY_FIXED + llen;
	if (len != *aad_len + CAIRN_NONCE_LEN + KEY_PAYLOAD + CAIRN_TAG_LEN)
		return cairn_error_set(-EBADMSG, "key file has the wrong size (%zu bytes)", len);
	return 0;
}

int cairn_keyfile_info(const void *file, size_t len, char *label, size_t label_cap,
		       int64_t *created_ns, cairn_kdf_params *kdf)
{
	const uint8_t *p = file;
	size_t aad_len;
	cairn_kdf_params k;
	int r = keyfile_parse(p, len, &aad_len, &k);
	if (r < 0)
		return r;
	if (kdf)
		*kdf = k;
	if (created_ns)
		*created_ns = (int64_t)cairn_get_le64(p + 38);
	if (label && label_cap) {
		size_t l = aad_len - KEY_FIXED;
		if (l >= label_cap)
			l = label_cap - 1;
		memcpy(label, p + KEY_FIXED, l);
		label[l] = 0;
	}
	return 0;
}

int cairn_keyfile_open(cairn_keyset *out, const void *file, size_t len, const char *pass)
{
	const uint8_t *p = file;
	size_t aad_len;
	cairn_kdf_params kdf;
	int r = keyfile_parse(p, len, &aad_len, &kdf);
	if (r < 0)
		return r;
	uint8_t kek[CAIRN_KEY_LEN], payload[KEY_PAYLOAD + 16];
	r = cairn_argon2id(kdf.t_cost, kdf.m_kib, kdf.lanes, pass, strlen(pass), p + 22, 16, kek,
			   sizeof(kek));
	if (r < 0)
		return r;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int ok = c && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1;
	ok = ok && gcm_open(c, kek, p + aad_len, p, aad_len, p + aad_len + CAIRN_NONCE_LEN,
			    KEY_PAYLOAD, payload) == 0;
	EVP_CIPHER_CTX_free(c);
	cairn_wipe(kek, sizeof(kek));
	if (!ok)
		return cairn_error_set(-EKEYREJECTED, "wrong passphrase");
	if (payload[0] != 1) {
		cairn_wipe(payload, sizeof(payload));
		return cairn_error_set(-EBADMSG, "key payload version %u not supported", payload[0]);
	}
	memcpy(out->enc, payload + 1, 32);
	memcpy(out->id, payload + 33, 32);
	memcpy(out->seed, payload + 65, 32);
	memcpy(out->repo, payload + 97, 32);
	out->id_fn = CAIRN_CHUNK_ID_HMAC_SHA256; /* until a config says otherwise */
	cairn_wipe(payload, sizeof(payload));
	return 0;
}
