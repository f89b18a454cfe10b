/*
 * blake3.c - BLAKE3 keyed hash of a buffer held whole in memory.
 *
 * The input is cut into 1 KiB chunks; each chunk is hashed on its own into a
 * chaining value (CV) with its index as the counter, and the CVs are merged
 * pairwise into a binary tree whose root, compressed with the ROOT flag, is
 * the hash. The tree is left-balanced: merging level by level, pairing
 * neighbours and carrying an odd last node up unchanged, builds exactly that
 * tree. A buffer of one chunk or less is the root chunk itself.
 *
 * Full chunks go to a "hash many" function 8 or 16 at a time (16 blocks each, the
 * counter rising by one per input), and so do the parent nodes of each level
 * (one 64-byte block each: the two child CVs, which lie next to each other in
 * the CV array). A last partial chunk is compressed one block at a time.
 */
#include "engine/blake3.h"

#include <string.h>

#include "common/common.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_X8 1
#endif

#define BLOCK_LEN 64
#define CHUNK_LEN 1024

enum { CHUNK_START = 1, CHUNK_END = 2, PARENT = 4, ROOT = 8, KEYED_HASH = 16 };

static const uint32_t IV[8] = {0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
			       0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19};

/* Message word order of each of the 7 rounds (the permutation applied r times). */
static const uint8_t SCHEDULE[7][16] = {
	{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
	{2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8},
	{3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1},
	{10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6},
	{12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4},
	{9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7},
	{11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13},
};

/* The 7 rounds of the compression function over state v with G (scalar or vector): columns,
 * then diagonals, each mixing two message words picked by the round's schedule. */
#define ROUNDS(G)                                                                                 \
	for (int r = 0; r < 7; r++) {                                                             \
		const uint8_t *s = SCHEDULE[r];                                                   \
		G(0, 4, 8, 12, s[0], s[1]);                                                       \
		G(1, 5, 9, 13, s[2], s[3]);                                                       \
		G(2, 6, 10, 14, s[4], s[5]);                                                      \
		G(3, 7, 11, 15, s[6], s[7]);                                                      \
		G(0, 5, 10, 15, s[8], s[9]);                                                      \
		G(1, 6, 11, 12, s[10], s[11]);                                                    \
		G(2, 7, 8, 13, s[12], s[13]);                                                     \
		G(3, 4, 9, 14, s[14], s[15]);                                                     \
	}

/* --- portable --------------------------------------------------------------- */

static inline uint32_t rotr(uint32_t x, int n)
{
	return (x >> n) | (x << (32 - n));
}

#define G(a, b, c, d, x, y)                         \
	do {                                        \
		v[a] = v[a] + v[b] + m[x];          \
		v[d] = rotr(v[d] ^ v[a], 16);       \
		v[c] = v[c] + v[d];                 \
		v[b] = rotr(v[b] ^ v[c], 12);       \
		v[a] = v[a] + v[b] + m[y];          \
		v[d] = rotr(v[d] ^ v[a], 8);        \
		v[c] = v[c] + v[d];                 \
		v[b] = rotr(v[b] ^ v[c], 7);        \
	} while (0)

/* cv = the first half of the compression function's output. */
static void compress(uint32_t cv[8], const uint8_t block[BLOCK_LEN], uint32_t block_len,
		     uint64_t counter, uint32_t flags)
{
	uint32_t m[16], v[16];
	for (int i = 0; i < 16; i++)
		m[i] = cairn_get_le32(block + 4 * i);
	for (int i = 0; i < 8; i++)
		v[i] = cv[i];
	for (int i = 0; i < 4; i++)
		v[8 + i] = IV[i];
	v[12] = (uint32_t)counter;
	v[13] = (uint32_t)(counter >> 32);
	v[14] = block_len;
	v[15] = flags;
	ROUNDS(G);
	for (int i = 0; i < 8; i++)
		cv[i] = v[i] ^ v[8 + i];
}

static void store_cv(uint8_t out[32], const uint32_t cv[8])
{
	for (int i = 0; i < 8; i++)
		cairn_put_le32(out + 4 * i, cv[i]);
}

/*
 * Hash n inputs of `blocks` whole blocks each into n CVs at out (32 bytes
 * apart). Input i uses counter + i (inc) or counter; every block has flags,
 * the first also flags_start, the last also flags_end. The SIMD versions read
 * all their inputs' current block before they write anything, so out may
 * overlap inputs already consumed (the tree merge relies on it).
 */
typedef void hash_fn(const uint8_t *const *in, size_t blocks, const uint32_t key[8],
		     uint64_t counter, int inc, uint8_t flags, uint8_t flags_start,
		     uint8_t flags_end, uint8_t *out);

static void hash_one(const uint8_t *in, size_t blocks, const uint32_t key[8], uint64_t counter,
		     uint8_t flags, uint8_t flags_start, uint8_t flags_end, uint8_t out[32])
{
	uint32_t cv[8];
	memcpy(cv, key, sizeof(cv));
	for (size_t b = 0; b < blocks; b++) {
		uint32_t f = flags | (b == 0 ? flags_start : 0) | (b + 1 == blocks ? flags_end : 0);
		compress(cv, in + b * BLOCK_LEN, BLOCK_LEN, counter, f);
	}
	store_cv(out, cv);
}

/* --- eight at a time ---------------------------------------------------------- */

#ifdef HAVE_X8
#define X8_CAT_(a, b) a##b
#define X8_CAT(a, b) X8_CAT_(a, b)

#define X8_TARGET __attribute__((target("avx2")))
#define X8_NAME hash8_avx2
#define X8_ROR12(x) _mm256_or_si256(_mm256_srli_epi32(x, 12), _mm256_slli_epi32(x, 20))
#define X8_ROR7(x) _mm256_or_si256(_mm256_srli_epi32(x, 7), _mm256_slli_epi32(x, 25))
#include "engine/blake3_x8.inc"
#undef X8_TARGET
#undef X8_NAME
#undef X8_ROR12
#undef X8_ROR7

/* The same with AVX-512VL's one-instruction rotation (32 registers too). */
#define X8_TARGET __attribute__((target("avx2,avx512f,avx512vl")))
#define X8_NAME hash8_avx512
#define X8_ROR12(x) _mm256_ror_epi32(x, 12)
#define X8_ROR7(x) _mm256_ror_epi32(x, 7)
#include "engine/blake3_x8.inc"

/* --- sixteen at a time (AVX-512F) ------------------------------------------- */

#define X16 __attribute__((target("avx512f")))

/*
 * r[i] = block i (16 words) -> r[k] = word k of the 16 blocks. Two rounds of
 * unpacks leave u[4g + w] holding, in its 128-bit lane l, word 4l + w of rows
 * 4g .. 4g + 3; two rounds of 128-bit lane shuffles gather the lanes.
 */
X16 static inline void transpose16(__m512i r[16])
{
	__m512i t[16], u[16];
	for (int g = 0; g < 4; g++) {
		__m512i *q = r + 4 * g;
		t[4 * g + 0] = _mm512_unpacklo_epi32(q[0], q[1]);
		t[4 * g + 1] = _mm512_unpackhi_epi32(q[0], q[1]);
		t[4 * g + 2] = _mm512_unpacklo_epi32(q[2], q[3]);
		t[4 * g + 3] = _mm512_unpackhi_epi32(q[2], q[3]);
		u[4 * g + 0] = _mm512_unpacklo_epi64(t[4 * g + 0], t[4 * g + 2]);
		u[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g + 0], t[4 * g + 2]);
		u[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
		u[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
	}
	for (int w = 0; w < 4; w++) {
		__m512i x = _mm512_shuffle_i32x4(u[w], u[4 + w], 0x44);      /* lanes 0, 1 */
		__m512i y = _mm512_shuffle_i32x4(u[8 + w], u[12 + w], 0x44);
		__m512i x2 = _mm512_shuffle_i32x4(u[w], u[4 + w], 0xEE);     /* lanes 2, 3 */
		__m512i y2 = _mm512_shuffle_i32x4(u[8 + w], u[12 + w], 0xEE);
		r[w] = _mm512_shuffle_i32x4(x, y, 0x88);
		r[4 + w] = _mm512_shuffle_i32x4(x, y, 0xDD);
		r[8 + w] = _mm512_shuffle_i32x4(x2, y2, 0x88);
		r[12 + w] = _mm512_shuffle_i32x4(x2, y2, 0xDD);
	}
}

#define X16_G(a, b, c, d, x, y)                                                         \
	do {                                                                            \
		v[a] = _mm512_add_epi32(_mm512_add_epi32(v[a], v[b]), m[x]);            \
		v[d] = _mm512_ror_epi32(_mm512_xor_si512(v[d], v[a]), 16);              \
		v[c] = _mm512_add_epi32(v[c], v[d]);                                    \
		v[b] = _mm512_ror_epi32(_mm512_xor_si512(v[b], v[c]), 12);              \
		v[a] = _mm512_add_epi32(_mm512_add_epi32(v[a], v[b]), m[y]);            \
		v[d] = _mm512_ror_epi32(_mm512_xor_si512(v[d], v[a]), 8);               \
		v[c] = _mm512_add_epi32(v[c], v[d]);                                    \
		v[b] = _mm512_ror_epi32(_mm512_xor_si512(v[b], v[c]), 7);               \
	} while (0)

/* hash_many for exactly sixteen inputs. */
X16 static void hash16_avx512(const uint8_t *const *in, size_t blocks, const uint32_t key[8],
			      uint64_t counter, int inc, uint8_t flags, uint8_t flags_start,
			      uint8_t flags_end, uint8_t *out)
{
	uint32_t lo[16], hi[16];
	for (int i = 0; i < 16; i++) {
		uint64_t c = counter + (inc ? (uint64_t)i : 0);
		lo[i] = (uint32_t)c;
		hi[i] = (uint32_t)(c >> 32);
	}
	const __m512i ctr_lo = _mm512_loadu_si512(lo), ctr_hi = _mm512_loadu_si512(hi);
	__m512i h[8];
	for (int k = 0; k < 8; k++)
		h[k] = _mm512_set1_epi32((int)key[k]);
	for (size_t b = 0; b < blocks; b++) {
		uint8_t f = flags | (b == 0 ? flags_start : 0) | (b + 1 == blocks ? flags_end : 0);
		__m512i m[16], v[16];
		for (int i = 0; i < 16; i++)
			m[i] = _mm512_loadu_si512(in[i] + b * BLOCK_LEN);
		transpose16(m);
		for (int k = 0; k < 8; k++) {
			v[k] = h[k];
			v[8 + k] = _mm512_set1_epi32(k < 4 ? (int)IV[k] : 0);
		}
		v[12] = ctr_lo;
		v[13] = ctr_hi;
		v[14] = _mm512_set1_epi32(BLOCK_LEN);
		v[15] = _mm512_set1_epi32(f);
		ROUNDS(X16_G);
		for (int k = 0; k < 8; k++)
			h[k] = _mm512_xor_si512(v[k], v[8 + k]);
	}
	uint32_t w[8][16];
	for (int k = 0; k < 8; k++)
		_mm512_storeu_si512(w[k], h[k]);
	for (int i = 0; i < 16; i++)
		for (int k = 0; k < 8; k++)
			memcpy(out + 32 * i + 4 * k, &w[k][i], 4);
}
#endif

/* One implementation set: x8 NULL means portable only, x16 NULL eight at most. */
typedef struct impl {
	hash_fn *x8, *x16;
} impl;

static const impl portable = {NULL, NULL};
#ifdef HAVE_X8
static const impl avx2 = {hash8_avx2, NULL};
static const impl avx512vl8 = {hash8_avx512, NULL};
static const impl avx512 = {hash8_avx512, hash16_avx512};
#endif
static const impl *current; /* NULL until first use; read and set atomically */

/* What this CPU runs: 0 portable code only, 1 AVX2, 2 AVX-512F with VL. */
static int cpu_level(void)
{
#ifdef HAVE_X8
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512f"))
		return 2;
	if (__builtin_cpu_supports("avx2"))
		return 1;
#endif
	return 0;
}

/* cairn_blake3_force's choices 1..4 and the CPU level each needs. */
static const struct {
	const impl *im;
	int level;
} choices[] = {
	{&portable, 0},
#ifdef HAVE_X8
	{&avx2, 1},
	{&avx512vl8, 2},
	{&avx512, 2},
#endif
};

static const impl *best(void)
{
	int level = cpu_level();
	const impl *im = &portable;
	for (size_t i = 0; i < sizeof(choices) / sizeof(choices[0]); i++)
		if (choices[i].level <= level)
			im = choices[i].im; /* the last the CPU runs: 16-way, else AVX2 */
	return im;
}

int cairn_blake3_force(int which)
{
	const impl *want = NULL;
	if (which == 0)
		want = best();
	else if (which >= 1 && (size_t)which <= sizeof(choices) / sizeof(choices[0]) &&
		 choices[which - 1].level <= cpu_level())
		want = choices[which - 1].im;
	if (!want)
		return -1;
	__atomic_store_n(&current, want, __ATOMIC_RELEASE);
	return 0;
}

static void hash_many(const uint8_t *const *in, size_t n, size_t blocks, const uint32_t key[8],
		      uint64_t counter, int inc, uint8_t flags, uint8_t flags_start,
		      uint8_t flags_end, uint8_t *out)
{
	const impl *im = __atomic_load_n(&current, __ATOMIC_ACQUIRE);
	if (!im) { /* threads racing here all store the same pointer */
		im = best();
		__atomic_store_n(&current, im, __ATOMIC_RELEASE);
	}
	hash_fn *h8 = im->x8, *h16 = im->x16;
	size_t i = 0;
	if (h16)
		for (; i + 16 <= n; i += 16)
			h16(in + i, blocks, key, counter + (inc ? i : 0), inc, flags, flags_start,
			    flags_end, out + 32 * i);
	if (h8) {
		for (; i + 8 <= n; i += 8)
			h8(in + i, blocks, key, counter + (inc ? i : 0), inc, flags, flags_start,
			   flags_end, out + 32 * i);
		/* two to seven left: one pass with the last input repeated in the spare
		 * lanes costs less than compressing them one by one */
		if (n - i >= 2) {
			const uint8_t *pad[8];
			uint8_t cv[8 * 32];
			for (size_t j = 0; j < 8; j++)
				pad[j] = in[i + j < n ? i + j : n - 1];
			h8(pad, blocks, key, counter + (inc ? i : 0), inc, flags, flags_start, flags_end,
			   cv);
			memcpy(out + 32 * i, cv, 32 * (n - i));
			return;
		}
	}
	for (; i < n; i++)
		hash_one(in[i], blocks, key, counter + (inc ? i : 0), flags, flags_start, flags_end,
			 out + 32 * i);
}

/* --- the tree ---------------------------------------------------------------- */

/*
 * The CV of one chunk of len (0 .. 1024) bytes with the given counter,
 * compressed a block at a time, the last one zero-padded; root adds ROOT to
 * its last block (a buffer of one chunk is its own root).
 */
static void chunk_cv(const uint32_t key[8], const uint8_t *c, size_t len, uint64_t counter,
		     uint32_t root, uint32_t cv[8])
{
	uint8_t last[BLOCK_LEN] = {0};
	size_t blocks = len ? (len - 1) / BLOCK_LEN : 0; /* all but the last block */
	memcpy(cv, key, 8 * sizeof(uint32_t));
	for (size_t b = 0; b < blocks; b++)
		compress(cv, c + b * BLOCK_LEN, BLOCK_LEN, counter,
			 KEYED_HASH | (b == 0 ? CHUNK_START : 0));
	if (len)
		memcpy(last, c + blocks * BLOCK_LEN, len - blocks * BLOCK_LEN);
	compress(cv, last, (uint32_t)(len - blocks * BLOCK_LEN), counter,
		 KEYED_HASH | CHUNK_END | root | (blocks == 0 ? CHUNK_START : 0));
}

/* CVs kept on the stack up to this many chunks (256 KiB of input), else on the heap. */
#define STACK_CHUNKS 256
#define BATCH 64

void cairn_blake3_keyed(const uint8_t key[32], const void *data, size_t len, uint8_t out[32])
{
	const uint8_t *p = data;
	uint32_t k[8], cv[8];
	for (int i = 0; i < 8; i++)
		k[i] = cairn_get_le32(key + 4 * i);

	if (len <= CHUNK_LEN) { /* the root is this one chunk */
		chunk_cv(k, p, len, 0, ROOT, cv);
		store_cv(out, cv);
		return;
	}

	size_t full = len / CHUNK_LEN, n = full + (len % CHUNK_LEN != 0); /* no overflow near SIZE_MAX */
	uint8_t stack[STACK_CHUNKS * 32];
	uint8_t *cvs = n <= STACK_CHUNKS ? stack : cairn_xmalloc(n * 32);
	const uint8_t *in[BATCH];
	for (size_t i = 0; i < full; i += BATCH) {
		size_t m = full - i < BATCH ? full - i : BATCH;
		for (size_t j = 0; j < m; j++)
			in[j] = p + (i + j) * CHUNK_LEN;
		hash_many(in, m, CHUNK_LEN / BLOCK_LEN, k, i, 1, KEYED_HASH, CHUNK_START, CHUNK_END,
			  cvs + 32 * i);
	}
	if (full < n) { /* the last chunk is partial */
		chunk_cv(k, p + full * CHUNK_LEN, len - full * CHUNK_LEN, full, 0, cv);
		store_cv(cvs + 32 * full, cv);
	}
	/* merge level by level down to the two children of the root; parent i of a
	 * level is written over CV i, which every batch has read before it writes */
	while (n > 2) {
		size_t pairs = n / 2;
		for (size_t i = 0; i < pairs; i += BATCH) {
			size_t m = pairs - i < BATCH ? pairs - i : BATCH;
			for (size_t j = 0; j < m; j++)
				in[j] = cvs + 64 * (i + j);
			hash_many(in, m, 1, k, 0, 0, KEYED_HASH | PARENT, 0, 0, cvs + 32 * i);
		}
		if (n & 1)
			memmove(cvs + 32 * pairs, cvs + 32 * (n - 1), 32);
		n = pairs + (n & 1);
	}
	memcpy(cv, k, sizeof(cv));
	compress(cv, cvs, BLOCK_LEN, 0, KEYED_HASH | PARENT | ROOT);
	store_cv(out, cv);
	if (cvs != stack)
		free(cvs);
}
