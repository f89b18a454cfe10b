/*
 * argon2id.c - Argon2id v1.3 (RFC 9106): BLAKE2b, H', the memory fill with a
 * portable and an AVX2 block function, one thread per lane.
 *
 * The structure follows the RFC (and the reference implementation's
 * fill_segment / index_alpha, whose outputs the tests compare with). Memory is
 * one anonymous mapping of m' blocks of 1 KiB, lane l owning blocks
 * [l * q, (l + 1) * q). Within a slice the lanes are independent, so each
 * lane's thread fills its segment and waits at a barrier; the caller's thread
 * does lane 0. Without threads (pthread_create failed) the caller fills the
 * lanes of each slice one after another, which gives the same result.
 * Secrets are wiped with explicit_bzero, glibc's memset: OPENSSL_cleanse
 * (cairn_wipe) made wiping the 64 MiB ~2 ms slower.
 */
#include "engine/argon2id.h"

#include "common/common.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_AVX2_PATH 1
#endif

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

#define SYNC_POINTS 4
#define QWORDS 128 /* 64-bit words in a 1 KiB block */
#define ADDRESSES_IN_BLOCK 128
#define ARGON2_VERSION 0x13
#define ARGON2_TYPE_ID 2

typedef struct block {
	uint64_t v[QWORDS];
} __attribute__((aligned(64))) block;

/* --- BLAKE2b (RFC 7693), unkeyed, digest of 1 .. 64 bytes ---------------- */

static const uint64_t b2_iv[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL};

static const uint8_t b2_sigma[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
};

typedef struct b2b {
	uint64_t h[8];
	uint64_t t; /* bytes compressed; inputs here stay far below 2^64 */
	uint8_t buf[128];
	size_t n;
	size_t outlen;
} b2b;

static inline uint64_t rotr64(uint64_t x, unsigned n)
{
	return (x >> n) | (x << (64 - n));
}

#define B2G(a, b, c, d, x, y)                                                                      \
	do {                                                                                       \
		a = a + b + (x);                                                                   \
		d = rotr64(d ^ a, 32);                                                             \
		c = c + d;                                                                         \
		b = rotr64(b ^ c, 24);                                                             \
		a = a + b + (y);                                                                   \
		d = rotr64(d ^ a, 16);                                                             \
		c = c + d;                                                                         \
		b = rotr64(b ^ c, 63);                                                             \
	} while (0)

static void b2b_compress(b2b *s, const uint8_t *blk, int last)
{
	uint64_t m[16], v[16];
	for (int i = 0; i < 16; i++)
		m[i] = cairn_get_le64(blk + 8 * i);
	for (int i = 0; i < 8; i++) {
		v[i] = s->h[i];
		v[i + 8] = b2_iv[i];
	}
	v[12] ^= s->t;
	if (last)
		v[14] = ~v[14];
	for (int r = 0; r < 12; r++) {
		const uint8_t *z = b2_sigma[r];
		B2G(v[0], v[4], v[8], v[12], m[z[0]], m[z[1]]);
		B2G(v[1], v[5], v[9], v[13], m[z[2]], m[z[3]]);
		B2G(v[2], v[6], v[10], v[14], m[z[4]], m[z[5]]);
		B2G(v[3], v[7], v[11], v[15], m[z[6]], m[z[7]]);
		B2G(v[0], v[5], v[10], v[15], m[z[8]], m[z[9]]);
		B2G(v[1], v[6], v[11], v[12], m[z[10]], m[z[11]]);
		B2G(v[2], v[7], v[8], v[13], m[z[12]], m[z[13]]);
		B2G(v[3], v[4], v[9], v[14], m[z[14]], m[z[15]]);
	}
	for (int i = 0; i < 8; i++)
		s->h[i] ^= v[i] ^ v[i + 8];
}

static void b2b_init(b2b *s, size_t outlen)
{
	memcpy(s->h, b2_iv, sizeof(s->h));
	s->h[0] ^= 0x01010000ULL ^ outlen;
	s->t = 0;
	s->n = 0;
	s->outlen = outlen;
}

static void b2b_update(b2b *s, const void *in, size_t len)
{
	const uint8_t *p = in;
	while (len) {
		if (s->n == sizeof(s->buf)) { /* full, and more follows: not the last */
			s->t += sizeof(s->buf);
			b2b_compress(s, s->buf, 0);
			s->n = 0;
		}
		size_t k = sizeof(s->buf) - s->n;
		if (k > len)
			k = len;
		memcpy(s->buf + s->n, p, k);
		s->n += k;
		p += k;
		len -= k;
	}
}

static void b2b_update32(b2b *s, uint32_t v)
{
	uint8_t b[4];
	cairn_put_le32(b, v);
	b2b_update(s, b, 4);
}

static void b2b_final(b2b *s, void *out)
{
	uint8_t full[64];
	s->t += s->n;
	memset(s->buf + s->n, 0, sizeof(s->buf) - s->n);
	b2b_compress(s, s->buf, 1);
	for (int i = 0; i < 8; i++)
		cairn_put_le64(full + 8 * i, s->h[i]);
	memcpy(out, full, s->outlen);
	explicit_bzero(full, sizeof(full));
	explicit_bzero(s, sizeof(*s));
}

void cairn_blake2b(void *out, size_t outlen, const void *in, size_t inlen)
{
	b2b s;
	b2b_init(&s, outlen);
	b2b_update(&s, in, inlen);
	b2b_final(&s, out);
}

/* H'^T (RFC 9106 3.3): the variable-length hash, T = outlen. */
static void hprime(uint8_t *out, size_t outlen, const void *in, size_t inlen)
{
	b2b s;
	b2b_init(&s, outlen <= 64 ? outlen : 64);
	b2b_update32(&s, (uint32_t)outlen);
	b2b_update(&s, in, inlen);
	if (outlen <= 64) {
		b2b_final(&s, out);
		return;
	}
	uint8_t v[64];
	b2b_final(&s, v);
	memcpy(out, v, 32);
	out += 32;
	size_t left = outlen - 32;
	while (left > 64) {
		cairn_blake2b(v, 64, v, 64);
		memcpy(out, v, 32);
		out += 32;
		left -= 32;
	}
	cairn_blake2b(out, left, v, 64);
	explicit_bzero(v, sizeof(v));
}

/* --- the block function G on 1 KiB blocks -------------------------------- */

/* next = P(ref ^ prev) ^ (ref ^ prev) [^ next when with_xor, passes > 0] */
typedef void fill_fn(const block *prev, const block *ref, block *next, int with_xor);

static inline uint64_t blamka(uint64_t x, uint64_t y)
{
	return x + y + 2 * (uint64_t)(uint32_t)x * (uint32_t)y;
}

#define GB(a, b, c, d)                                                                             \
	do {                                                                                       \
		a = blamka(a, b);                                                                  \
		d = rotr64(d ^ a, 32);                                                             \
		c = blamka(c, d);                                                                  \
		b = rotr64(b ^ c, 24);                                                             \
		a = blamka(a, b);                                                                  \
		d = rotr64(d ^ a, 16);                                                             \
		c = blamka(c, d);                                                                  \
		b = rotr64(b ^ c, 63);                                                             \
	} while (0)

/* The BLAKE2b round without message on 16 words given by index. */
static inline void round_idx(uint64_t *v, const int *i)
{
	GB(v[i[0]], v[i[4]], v[i[8]], v[i[12]]);
	GB(v[i[1]], v[i[5]], v[i[9]], v[i[13]]);
	GB(v[i[2]], v[i[6]], v[i[10]], v[i[14]]);
	GB(v[i[3]], v[i[7]], v[i[11]], v[i[15]]);
	GB(v[i[0]], v[i[5]], v[i[10]], v[i[15]]);
	GB(v[i[1]], v[i[6]], v[i[11]], v[i[12]]);
	GB(v[i[2]], v[i[7]], v[i[8]], v[i[13]]);
	GB(v[i[3]], v[i[4]], v[i[9]], v[i[14]]);
}

static void fill_portable(const block *prev, const block *ref, block *next, int with_xor)
{
	block r, t;
	for (int i = 0; i < QWORDS; i++) {
		r.v[i] = ref->v[i] ^ prev->v[i];
		t.v[i] = with_xor ? r.v[i] ^ next->v[i] : r.v[i];
	}
	int idx[16];
	for (int row = 0; row < 8; row++) { /* rows: words 16 row .. 16 row + 15 */
		for (int k = 0; k < 16; k++)
			idx[k] = 16 * row + k;
		round_idx(r.v, idx);
	}
	for (int col = 0; col < 8; col++) { /* columns: pairs 2 col, 2 col + 1 of each row */
		for (int k = 0; k < 8; k++) {
			idx[2 * k] = 2 * col + 16 * k;
			idx[2 * k + 1] = 2 * col + 16 * k + 1;
		}
		round_idx(r.v, idx);
	}
	for (int i = 0; i < QWORDS; i++)
		next->v[i] = t.v[i] ^ r.v[i];
}

#ifdef HAVE_AVX2_PATH
/*
 * AVX2: a block is 32 registers of 4 words, s[k] = words 4k .. 4k + 3. Row
 * round i is the BLAKE2b round on s[4i .. 4i + 3] as its rows a, b, c, d.
 * Column round c takes words 2c, 2c + 1 of each of the 8 rows, i.e. one half
 * of s[j], s[j + 4], ..., s[j + 28] (j = c / 2, half c % 2): two column rounds
 * are regrouped with 128-bit permutes into two sets of a, b, c, d, run as
 * two rounds side by side, and put back.
 *
 * An AVX-512VL build of it (native 64-bit rotates, 32 registers) measured
 * no faster (48-52 ms for the default cost either way): the chain of
 * dependent multiplies and adds within G bounds it, not the rotations.
 */
#define AVX2 __attribute__((target("avx2")))

AVX2 static inline __m256i bla4(__m256i x, __m256i y)
{
	__m256i z = _mm256_mul_epu32(x, y);
	return _mm256_add_epi64(_mm256_add_epi64(x, y), _mm256_add_epi64(z, z));
}

AVX2 static inline __m256i ror32(__m256i x)
{
	return _mm256_shuffle_epi32(x, _MM_SHUFFLE(2, 3, 0, 1));
}

AVX2 static inline __m256i ror24(__m256i x)
{
	const __m256i m = _mm256_setr_epi8(3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10, 3,
	                                   4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10);
	return _mm256_shuffle_epi8(x, m);
}

AVX2 static inline __m256i ror16(__m256i x)
{
	const __m256i m = _mm256_setr_epi8(2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9, 2,
	                                   3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9);
	return _mm256_shuffle_epi8(x, m);
}

AVX2 static inline __m256i ror63(__m256i x)
{
	return _mm256_xor_si256(_mm256_srli_epi64(x, 63), _mm256_add_epi64(x, x));
}

/* G on four columns at once, for two independent sets (more work in flight) */
#define G4x2(a0, b0, c0, d0, a1, b1, c1, d1)                                                       \
	do {                                                                                       \
		a0 = bla4(a0, b0);                                                                 \
		a1 = bla4(a1, b1);                                                                 \
		d0 = ror32(_mm256_xor_si256(d0, a0));                                              \
		d1 = ror32(_mm256_xor_si256(d1, a1));                                              \
		c0 = bla4(c0, d0);                                                                 \
		c1 = bla4(c1, d1);                                                                 \
		b0 = ror24(_mm256_xor_si256(b0, c0));                                              \
		b1 = ror24(_mm256_xor_si256(b1, c1));                                              \
		a0 = bla4(a0, b0);                                                                 \
		a1 = bla4(a1, b1);                                                                 \
		d0 = ror16(_mm256_xor_si256(d0, a0));                                              \
		d1 = ror16(_mm256_xor_si256(d1, a1));                                              \
		c0 = bla4(c0, d0);                                                                 \
		c1 = bla4(c1, d1);                                                                 \
		b0 = ror63(_mm256_xor_si256(b0, c0));                                              \
		b1 = ror63(_mm256_xor_si256(b1, c1));                                              \
	} while (0)

/* b -> (b1 b2 b3 b0), c -> (c2 c3 c0 c1), d -> (d3 d0 d1 d2): diagonals become columns */
#define DIAG(b, c, d)                                                                              \
	do {                                                                                       \
		b = _mm256_permute4x64_epi64(b, _MM_SHUFFLE(0, 3, 2, 1));                          \
		c = _mm256_permute4x64_epi64(c, _MM_SHUFFLE(1, 0, 3, 2));                          \
		d = _mm256_permute4x64_epi64(d, _MM_SHUFFLE(2, 1, 0, 3));                          \
	} while (0)
#define UNDIAG(b, c, d)                                                                            \
	do {                                                                                       \
		b = _mm256_permute4x64_epi64(b, _MM_SHUFFLE(2, 1, 0, 3));                          \
		c = _mm256_permute4x64_epi64(c, _MM_SHUFFLE(1, 0, 3, 2));                          \
		d = _mm256_permute4x64_epi64(d, _MM_SHUFFLE(0, 3, 2, 1));                          \
	} while (0)

#define ROUND4x2(a0, b0, c0, d0, a1, b1, c1, d1)                                                   \
	do {                                                                                       \
		G4x2(a0, b0, c0, d0, a1, b1, c1, d1);                                              \
		DIAG(b0, c0, d0);                                                                  \
		DIAG(b1, c1, d1);                                                                  \
		G4x2(a0, b0, c0, d0, a1, b1, c1, d1);                                              \
		UNDIAG(b0, c0, d0);                                                                \
		UNDIAG(b1, c1, d1);                                                                \
	} while (0)

#define PERM2(x, y, k) _mm256_permute2x128_si256(x, y, k)

AVX2 static void fill_avx2(const block *prev, const block *ref, block *next, int with_xor)
{
	__m256i s[32], t[32];
	const __m256i *p = (const __m256i *)prev->v, *q = (const __m256i *)ref->v;
	__m256i *n = (__m256i *)next->v;
	for (int i = 0; i < 32; i++) {
		s[i] = _mm256_xor_si256(_mm256_load_si256(p + i), _mm256_load_si256(q + i));
		t[i] = with_xor ? _mm256_xor_si256(s[i], _mm256_load_si256(n + i)) : s[i];
	}
	for (int i = 0; i < 8; i += 2)
		ROUND4x2(s[4 * i], s[4 * i + 1], s[4 * i + 2], s[4 * i + 3], s[4 * i + 4],
		         s[4 * i + 5], s[4 * i + 6], s[4 * i + 7]);
	for (int j = 0; j < 4; j++) {
		__m256i a0 = PERM2(s[j], s[j + 4], 0x20);
		__m256i a1 = PERM2(s[j], s[j + 4], 0x31);
		__m256i b0 = PERM2(s[j + 8], s[j + 12], 0x20);
		__m256i b1 = PERM2(s[j + 8], s[j + 12], 0x31);
		__m256i c0 = PERM2(s[j + 16], s[j + 20], 0x20);
		__m256i c1 = PERM2(s[j + 16], s[j + 20], 0x31);
		__m256i d0 = PERM2(s[j + 24], s[j + 28], 0x20);
		__m256i d1 = PERM2(s[j + 24], s[j + 28], 0x31);
		ROUND4x2(a0, b0, c0, d0, a1, b1, c1, d1);
		s[j] = PERM2(a0, a1, 0x20);
		s[j + 4] = PERM2(a0, a1, 0x31);
		s[j + 8] = PERM2(b0, b1, 0x20);
		s[j + 12] = PERM2(b0, b1, 0x31);
		s[j + 16] = PERM2(c0, c1, 0x20);
		s[j + 20] = PERM2(c0, c1, 0x31);
		s[j + 24] = PERM2(d0, d1, 0x20);
		s[j + 28] = PERM2(d0, d1, 0x31);
	}
	for (int i = 0; i < 32; i++)
		_mm256_store_si256(n + i, _mm256_xor_si256(s[i], t[i]));
}

#endif

static int force_portable;

void cairn_argon2id_force_portable(int on)
{
	force_portable = on;
}

static fill_fn *pick_fill(void)
{
#ifdef HAVE_AVX2_PATH
	__builtin_cpu_init();
	if (!force_portable && __builtin_cpu_supports("avx2"))
		return fill_avx2;
#endif
	return fill_portable;
}

/* --- the memory fill ------------------------------------------------------ */

typedef struct a2ctx {
	block *mem;
	uint32_t blocks; /* m' */
	uint32_t lanes;
	uint32_t lane_len; /* q */
	uint32_t seg_len;  /* q / 4 */
	uint32_t passes;
	fill_fn *fill;
	uint32_t nthreads; /* thread k fills lanes k, k + nthreads, ... */
	pthread_barrier_t bar;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int gate; /* 0 wait, 1 go, -1 give up (the caller does all lanes) */
} a2ctx;

static void next_addresses(const a2ctx *c, block *addr, block *input, const block *zero)
{
	input->v[6]++;
	c->fill(zero, input, addr, 0);
	c->fill(zero, addr, addr, 0);
}

/* The reference implementation's index_alpha (RFC 9106 3.4.1.2). */
static uint32_t index_alpha(const a2ctx *c, uint32_t pass, uint32_t slice, uint32_t index,
                            uint32_t rnd, int same_lane)
{
	uint32_t area;
	if (pass == 0) {
		if (slice == 0)
			area = index - 1;
		else if (same_lane)
			area = slice * c->seg_len + index - 1;
		else
			area = slice * c->seg_len - (index == 0 ? 1 : 0);
	} else {
		if (same_lane)
			area = c->lane_len - c->seg_len + index - 1;
		else
			area = c->lane_len - c->seg_len - (index == 0 ? 1 : 0);
	}
	uint64_t rel = rnd;
	rel = rel * rel >> 32;
	rel = area - 1 - ((uint64_t)area * rel >> 32);
	uint32_t start = 0;
	if (pass != 0)
		start = slice == SYNC_POINTS - 1 ? 0 : (slice + 1) * c->seg_len;
	return (uint32_t)(((uint64_t)start + rel) % c->lane_len);
}

static void fill_segment(const a2ctx *c, uint32_t pass, uint32_t lane, uint32_t slice)
{
	block addr, input, zero;
	int indep = pass == 0 && slice < SYNC_POINTS / 2; /* Argon2id: Argon2i for half a pass */
	if (indep) {
		memset(&zero, 0, sizeof(zero));
		memset(&input, 0, sizeof(input));
		input.v[0] = pass;
		input.v[1] = lane;
		input.v[2] = slice;
		input.v[3] = c->blocks;
		input.v[4] = c->passes;
		input.v[5] = ARGON2_TYPE_ID;
	}
	uint32_t start = 0;
	if (pass == 0 && slice == 0) {
		start = 2; /* blocks 0 and 1 come from H0 */
		if (indep)
			next_addresses(c, &addr, &input, &zero);
	}
	uint32_t cur = lane * c->lane_len + slice * c->seg_len + start;
	uint32_t prev = cur % c->lane_len == 0 ? cur + c->lane_len - 1 : cur - 1;
	for (uint32_t i = start; i < c->seg_len; i++, cur++, prev++) {
		if (cur % c->lane_len == 1)
			prev = cur - 1;
		uint64_t rnd;
		if (indep) {
			if (i % ADDRESSES_IN_BLOCK == 0)
				next_addresses(c, &addr, &input, &zero);
			rnd = addr.v[i % ADDRESSES_IN_BLOCK];
		} else {
			rnd = c->mem[prev].v[0];
		}
		uint32_t ref_lane = (uint32_t)((rnd >> 32) % c->lanes);
		if (pass == 0 && slice == 0)
			ref_lane = lane;
		uint32_t ref = index_alpha(c, pass, slice, i, (uint32_t)rnd, ref_lane == lane);
		c->fill(c->mem + prev, c->mem + (size_t)c->lane_len * ref_lane + ref, c->mem + cur,
		        pass != 0);
	}
}

typedef struct a2thread {
	a2ctx *c;
	uint32_t first;
} a2thread;

static void run_lanes(a2ctx *c, uint32_t first)
{
	/*
	 * Fault the lane's pages in with one call: the kernel zeroes them here,
	 * on every lane's thread at once, instead of one fault per 4 KiB in the
	 * first pass (MAP_POPULATE did the whole mapping on the caller's thread:
	 * 14 ms of a 50 ms derivation in a new process). Failure is harmless.
	 * A lane starts on a 4 KiB boundary; the call wants a page boundary.
	 */
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	for (uint32_t l = first; l < c->lanes; l += c->nthreads) {
		uintptr_t from = (uintptr_t)(c->mem + (size_t)l * c->lane_len);
		uintptr_t to = (uintptr_t)(c->mem + (size_t)(l + 1) * c->lane_len);
		from -= from % page;
		madvise((void *)from, to - from, MADV_POPULATE_WRITE);
	}
	for (uint32_t pass = 0; pass < c->passes; pass++)
		for (uint32_t slice = 0; slice < SYNC_POINTS; slice++) {
			for (uint32_t l = first; l < c->lanes; l += c->nthreads)
				fill_segment(c, pass, l, slice);
			if (c->nthreads > 1)
				pthread_barrier_wait(&c->bar);
		}
	/* the caller reads every lane's last block after the join; wipe the rest */
	for (uint32_t l = first; l < c->lanes; l += c->nthreads)
		explicit_bzero(c->mem + (size_t)l * c->lane_len,
		               (size_t)(c->lane_len - 1) * sizeof(block));
}

static void *lane_main(void *arg)
{
	a2thread *t = arg;
	a2ctx *c = t->c;
	pthread_mutex_lock(&c->mu);
	while (!c->gate)
		pthread_cond_wait(&c->cv, &c->mu);
	int go = c->gate > 0;
	pthread_mutex_unlock(&c->mu);
	if (go)
		run_lanes(c, t->first);
	return NULL;
}

static void open_gate(a2ctx *c, int how)
{
	pthread_mutex_lock(&c->mu);
	c->gate = how;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/*
 * One thread per lane, the caller being the first. Threads wait at a gate
 * until the count is known: if some could not be created, the ones that were
 * share the lanes (the result does not depend on who fills a lane); if the
 * barrier cannot be had, they leave and the caller fills every lane.
 */
static void fill_memory(a2ctx *c)
{
	pthread_t tid[16];
	a2thread arg[16];
	uint32_t started = 0;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->gate = 0;
	for (uint32_t k = 1; k < c->lanes; k++) {
		arg[k] = (a2thread){c, k};
		if (pthread_create(&tid[k], NULL, lane_main, &arg[k]) != 0)
			break;
		started++;
	}
	c->nthreads = started + 1;
	if (started && pthread_barrier_init(&c->bar, NULL, c->nthreads) != 0) {
		open_gate(c, -1);
		for (uint32_t k = 1; k <= started; k++)
			pthread_join(tid[k], NULL);
		started = 0;
		c->nthreads = 1;
	}
	open_gate(c, 1);
	run_lanes(c, 0);
	for (uint32_t k = 1; k <= started; k++)
		pthread_join(tid[k], NULL);
	if (started)
		pthread_barrier_destroy(&c->bar);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
}

static void block_from_bytes(block *b, const uint8_t *p)
{
	for (int i = 0; i < QWORDS; i++)
		b->v[i] = cairn_get_le64(p + 8 * i);
}

int cairn_argon2id(uint32_t t_cost, uint32_t m_kib, uint32_t lanes, const void *pwd, size_t pwdlen,
                   const void *salt, size_t saltlen, void *out, size_t outlen)
{
	if (!t_cost || !lanes || lanes > 16 || m_kib < 8 * lanes || outlen < 4 || outlen > 1024 ||
	    saltlen < 8 || saltlen > UINT32_MAX || pwdlen > UINT32_MAX)
		return cairn_error_set(-EINVAL,
		                       "Argon2id parameters out of range (t=%u m=%u KiB lanes=%u)",
		                       t_cost, m_kib, lanes);
	a2ctx c;
	memset(&c, 0, sizeof(c));
	c.lanes = lanes;
	c.passes = t_cost;
	c.seg_len = m_kib / (SYNC_POINTS * lanes);
	c.lane_len = c.seg_len * SYNC_POINTS;
	c.blocks = c.lane_len * lanes;
	c.fill = pick_fill();
#if SIZE_MAX < UINT64_MAX /* 32-bit address spaces: 4 GiB would wrap */
	if ((uint64_t)c.blocks * sizeof(block) > SIZE_MAX)
		return cairn_error_set(-ENOMEM, "Argon2id: %u KiB of memory cannot be addressed",
		                       m_kib);
#endif
	size_t bytes = (size_t)c.blocks * sizeof(block);
	void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return cairn_error_set(-ENOMEM, "Argon2id: cannot map %zu KiB of memory: %s",
		                       bytes >> 10, strerror(errno));
	c.mem = mem;

	/* H0 (RFC 9106 3.2), no secret and no associated data */
	uint8_t h0[72], buf[sizeof(block)];
	b2b s;
	b2b_init(&s, 64);
	b2b_update32(&s, lanes);
	b2b_update32(&s, (uint32_t)outlen);
	b2b_update32(&s, m_kib);
	b2b_update32(&s, t_cost);
	b2b_update32(&s, ARGON2_VERSION);
	b2b_update32(&s, ARGON2_TYPE_ID);
	b2b_update32(&s, (uint32_t)pwdlen);
	b2b_update(&s, pwd, pwdlen);
	b2b_update32(&s, (uint32_t)saltlen);
	b2b_update(&s, salt, saltlen);
	b2b_update32(&s, 0);
	b2b_update32(&s, 0);
	b2b_final(&s, h0);
	for (uint32_t l = 0; l < lanes; l++)
		for (uint32_t k = 0; k < 2; k++) {
			cairn_put_le32(h0 + 64, k);
			cairn_put_le32(h0 + 68, l);
			hprime(buf, sizeof(buf), h0, sizeof(h0));
			block_from_bytes(c.mem + (size_t)l * c.lane_len + k, buf);
		}

	fill_memory(&c);

	block *fin = c.mem + c.lane_len - 1;
	for (uint32_t l = 1; l < lanes; l++) {
		block *b = c.mem + (size_t)l * c.lane_len + c.lane_len - 1;
		for (int i = 0; i < QWORDS; i++)
			fin->v[i] ^= b->v[i];
		explicit_bzero(b, sizeof(*b));
	}
	for (int i = 0; i < QWORDS; i++)
		cairn_put_le64(buf + 8 * i, fin->v[i]);
	explicit_bzero(fin, sizeof(*fin));
	hprime(out, outlen, buf, sizeof(buf));
	explicit_bzero(buf, sizeof(buf));
	explicit_bzero(h0, sizeof(h0));
	munmap(mem, bytes);
	return 0;
}
