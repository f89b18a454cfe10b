/*
 * chunker.c - FastCDC with normalized chunking, scanned in three lanes.
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
 * Lanes. h = (h << 1) + gear[byte] forgets a byte after 64 steps, so the
 * hash at any position is the hash of the (up to) 64 bytes before it, the
 * fold starting from 0 at min. One rolling hash is a chain of dependent
 * shift-adds; to keep the core busy, a stretch of bytes under one mask is
 * cut into blocks of three consecutive sub-ranges ("lanes") hashed side by
 * side in one loop. Lane 0 continues the running hash; lanes 1 and 2 start
 * from the hash of the 64 bytes before them (which lie in the stretch, so at
 * or past min), which is exactly the running hash there. On a candidate in
 * any lane the earliest cut in stream order wins: lane 0's first candidate,
 * else lane 1's, else lane 2's; the lanes before the one that hit are
 * finished first (recursively, in lanes again). The cut points are those of
 * the byte-at-a-time loop, whatever the lane sizes and however the caller
 * splits its buffers; check_chunker compares them with such a loop.
 *
 * Lane sizes: long lanes (16 KiB) before the normal point, where cuts are
 * rare; after it the expected distance to a cut is 2^(b-2), and lanes of
 * 1/16 of that waste little past the cut. Lanes of 1-2 KiB were measured
 * slower on random data from memory (three interleaved streams inside one
 * 4 KiB page seem to confuse the prefetcher), so before the normal point
 * the lanes stay long. A stretch shorter than three lanes of 128 bytes is
 * scanned as one lane.
 *
 * The one-lane scan takes two bytes per step:
 *     t  = (h << 2) + gear_ls[b0]     == h1 << 1 where h1 = (h << 1) + gear[b0]
 *     t & (mask << 1) == 0            <=> h1 & mask == 0 (mask bit 63 is clear)
 *     h2 = t + gear[b1]               == (h1 << 1) + gear[b1]
 * so it is the one-byte loop unrolled. (In the lanes the plain one-byte step
 * measured faster: fewer instructions, and the lanes hide its latency.)
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

#define LANES 3
#define LANE_MIN 128         /* bytes; >= 64 for the warm-up, a multiple of 2 */
#define LANE_MAX (16u << 10) /* bytes */

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
	/* lane sizes (see DESIGN): 16 KiB, and 2^(b-6) clamped to 128 B..16 KiB */
	unsigned bl = b > 2 ? b - 2 : 1;
	bl = bl < 4 + 7 ? 7 : bl - 4 > 14 ? 14 : bl - 4;
	c->lane_s = LANE_MAX;
	c->lane_l = (size_t)1 << bl;
	return 0;
}

void cairn_chunker_reset(cairn_chunker *c)
{
	c->pos = 0;
	c->hash = 0;
}

/*
 * One lane: one mask over p[*pi..end), two bytes per step (see DESIGN).
 * @return 1 with *pi just after the cut, or 0 with *pi = end; *ph is the hash
 * after the last byte hashed.
 */
static inline int scan_one(const uint64_t *g, const uint64_t *gls, const uint8_t *p, size_t *pi,
			   size_t end, uint64_t m, uint64_t *ph)
{
	const uint64_t mls = m << 1;
	size_t i = *pi;
	uint64_t h = *ph;
	int cut = 0;
	while (i + 2 <= end) {
		h = (h << 2) + gls[p[i]];
		if (!(h & mls)) {
			i += 1;
			cut = 1;
			goto out;
		}
		h += g[p[i + 1]];
		i += 2;
		if (!(h & m)) {
			cut = 1;
			goto out;
		}
	}
	if (i < end) {
		h = (h << 1) + g[p[i]];
		i++;
		cut = !(h & m);
	}
out:
	*pi = i;
	*ph = h;
	return cut;
}

/* The hash after q[0..64) from 0, as four independent 16-byte folds. */
static inline uint64_t warm64(const uint64_t *g, const uint8_t *q)
{
	uint64_t a = 0, b = 0, c = 0, d = 0;
	for (int j = 0; j < 16; j++) {
		a = (a << 1) + g[q[j]];
		b = (b << 1) + g[q[16 + j]];
		c = (c << 1) + g[q[32 + j]];
		d = (d << 1) + g[q[48 + j]];
	}
	return (a << 48) + (b << 32) + (c << 16) + d;
}

/*
 * Like scan_one, in blocks of LANES lanes of up to `lane` bytes (see DESIGN).
 * The hash before p[*pi] is *ph; every byte of p[*pi..end) is hashed.
 */
static int scan_lanes(const cairn_chunker *c, const uint8_t *p, size_t *pi, size_t end,
		      uint64_t m, uint64_t *ph, size_t lane)
{
	const uint64_t *g = c->gear;
	size_t i = *pi;
	uint64_t h = *ph;
	for (;;) {
		size_t L = lane;
		if (end - i < LANES * L) {
			L = ((end - i) / LANES) & ~(size_t)1;
			if (L < LANE_MIN)
				break;
		}
		/* lane k covers p[i + k L .. i + (k+1) L); hh[k] is its hash */
		const uint8_t *q[LANES];
		uint64_t hh[LANES], hx[LANES][2];
		q[0] = p + i;
		hh[0] = h;
		for (int k = 1; k < LANES; k++) {
			q[k] = q[k - 1] + L;
			hh[k] = warm64(g, q[k] - 64);
		}
		size_t t;
		for (t = 0; t < L; t += 2) {
			for (int u = 0; u < 2; u++)
				for (int k = 0; k < LANES; k++) {
					hh[k] = (hh[k] << 1) + g[q[k][t + u]];
					hx[k][u] = hh[k];
				}
			int k;
			for (k = 0; k < LANES; k++)
				if (!(hx[k][0] & m) || !(hx[k][1] & m))
					break;
			if (k < LANES)
				break;
		}
		if (t < L) {
			/*
			 * A candidate at step t in some lane, none before t in any.
			 * Lane by lane: a candidate at step t is the cut; else the
			 * rest of the lane is scanned. The lane that hit at step t
			 * ends the search at the latest.
			 */
			for (int k = 0; k < LANES; k++) {
				size_t base = i + (size_t)k * L;
				for (int u = 0; u < 2; u++)
					if (!(hx[k][u] & m)) {
						*pi = base + t + (size_t)u + 1;
						return 1;
					}
				size_t j = base + t + 2;
				if (scan_lanes(c, p, &j, base + L, m, &hh[k], lane)) {
					*pi = j;
					return 1;
				}
			}
		}
		h = hh[LANES - 1];
		i += LANES * L;
	}
	*pi = i;
	*ph = h;
	return scan_one(g, c->gear_ls, p, pi, end, m, ph);
}

size_t cairn_chunker_scan(cairn_chunker *c, const uint8_t *p, size_t len)
{
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
		if (scan_lanes(c, p, &i, end, c->mask_s, &h, c->lane_s))
			goto cut;
		pos = base + i;
		if (pos == c->max)
			goto cut;
	}
	if (i < len) {
		end = c->max - base;
		if (end > len)
			end = len;
		if (scan_lanes(c, p, &i, end, c->mask_l, &h, c->lane_l))
			goto cut;
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
