/*
 * chunker.c - FastCDC with normalized chunking, two bytes per step.
 *
 * DESIGN
 * The mean chunk size of normalized chunking depends on where the mask
 * switches. With the cut probability r1 = 2^-(b+2) per byte before the
 * normal point N and r2 = 2^-(b-2) after it (b = log2(avg) rounded), and no
 * cut before min, the expected size is
 *     min + (1 - y) / r1 + y / r2,      y = exp(-r1 * (N - min)),
 * (the max cap changes little when max >= 4 avg). Solving for y gives the
 * normal point that makes the mean equal avg; when min is already so close
 * to avg that y > 1, N = min.
 *
 * The two-byte step computes
 *     t  = (h << 2) + gear_ls[b0]     == h1 << 1 where h1 = (h << 1) + gear[b0]
 *     t & (mask << 1) == 0            <=> h1 & mask == 0 (mask bit 63 is clear)
 *     h2 = t + gear[b1]               == (h1 << 1) + gear[b1]
 * so it is the one-byte loop unrolled, and boundaries never depend on how
 * the caller splits its buffers.
 */
#include "chunker/chunker.h"

#include <errno.h>
#include <math.h>
#include <string.h>

/* A mask of k bits placed at bits 62 .. 63-k (high bits see the longest window). */
static uint64_t top_mask(unsigned k)
{
	if (k > 62)
		k = 62;
	return ((1ull << k) - 1) << (63 - k);
}

static unsigned log2_round(size_t v)
{
	unsigned b = 0;
	while (((size_t)1 << (b + 1)) <= v)
		b++;
	/* round to nearest power of two */
	if (v - ((size_t)1 << b) > ((size_t)1 << b) / 2)
		b++;
	return b;
}

int cairn_chunker_init(cairn_chunker *c, const uint64_t gear[256], size_t min, size_t avg,
		       size_t max)
{
	if (!c || !gear || min < CAIRN_CHUNKER_MIN_SIZE || avg < 256 || min > avg || avg > max ||
	    max > CAIRN_CHUNKER_MAX_SIZE)
		return -EINVAL;
	memset(c, 0, sizeof(*c));
	for (int i = 0; i < 256; i++) {
		c->gear[i] = gear[i];
		c->gear_ls[i] = gear[i] << 1;
	}
	unsigned b = log2_round(avg);
	c->mask_s = top_mask(b + 2);
	c->mask_l = top_mask(b > 2 ? b - 2 : 1);
	double r1 = ldexp(1.0, -(int)(b + 2)), r2 = ldexp(1.0, -(int)(b > 2 ? b - 2 : 1));
	double y = (1.0 / r1 + (double)min - (double)avg) / (1.0 / r1 - 1.0 / r2);
	size_t norm = min;
	if (y > 0 && y < 1)
		norm = min + (size_t)(-log(y) / r1);
	if (norm > max)
		norm = max;
	c->min = min;
	c->avg = avg;
	c->norm = norm;
	c->max = max;
	return 0;
}

void cairn_chunker_reset(cairn_chunker *c)
{
	c->pos = 0;
	c->hash = 0;
}

/* Scan p[i..end) under one mask; returns the index just after a cut or end. */
#define SCAN_REGION(MASK)                                                                          \
	do {                                                                                       \
		const uint64_t m = (MASK), mls = (MASK) << 1;                                      \
		while (i + 2 <= end) {                                                             \
			h = (h << 2) + gls[p[i]];                                                  \
			if (!(h & mls)) {                                                          \
				i += 1;                                                            \
				goto cut;                                                          \
			}                                                                          \
			h += g[p[i + 1]];                                                          \
			i += 2;                                                                    \
			if (!(h & m))                                                              \
				goto cut;                                                          \
		}                                                                                  \
		if (i < end) {                                                                     \
			h = (h << 1) + g[p[i]];                                                    \
			i++;                                                                       \
			if (!(h & m))                                                              \
				goto cut;                                                          \
		}                                                                                  \
	} while (0)

size_t cairn_chunker_scan(cairn_chunker *c, const uint8_t *p, size_t len)
{
	const uint64_t *g = c->gear, *gls = c->gear_ls;
	size_t pos = c->pos, i = 0, end;
	uint64_t h = c->hash;

	if (pos < c->min) {
		size_t skip = c->min - pos;
		if (skip > len || (skip == len && c->min < c->max)) {
			c->pos = pos + len;
			return CAIRN_CHUNKER_NEED;
		}
		i = skip;
		pos = c->min;
		h = 0;
		if (pos == c->max)
			goto cut;
	}
	size_t base = pos - i; /* pos of p[0] */
	if (pos < c->norm) {
		end = c->norm - base;
		if (end > len)
			end = len;
		SCAN_REGION(c->mask_s);
		pos = base + i;
		if (pos == c->max)
			goto cut;
	}
	if (i < len) {
		end = c->max - base;
		if (end > len)
			end = len;
		SCAN_REGION(c->mask_l);
		pos = base + i;
		if (pos == c->max)
			goto cut;
	}
	c->pos = pos;
	c->hash = h;
	return CAIRN_CHUNKER_NEED;
cut:
	c->pos = 0;
	c->hash = 0;
	return i;
}

void cairn_chunker_gear_test(uint64_t gear[256], uint64_t seed)
{
	uint64_t s = seed;
	for (int i = 0; i < 256; i++) {
		/* splitmix64 */
		uint64_t z = (s += 0x9E3779B97F4A7C15ull);
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
		z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
		gear[i] = z ^ (z >> 31);
	}
}
