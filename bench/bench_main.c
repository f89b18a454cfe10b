/*
 * bench_main.c - cairn-bench: micro benchmarks that print one JSON object.
 *
 *   cairn-bench chunker [--size BYTES | FILE] [--min N --avg N --max N]
 *   cairn-bench codec   [--size BYTES | FILE] [--level N]
 *
 * Input is a file read into memory, or generated data (random bytes for the
 * chunker; a mix of text-like and random data for the codec). Each figure
 * is the best of several runs on one thread (the chunker also reports the
 * best by thread CPU time, steadier on a busy machine). Never part of the
 * test pass.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "chunker/chunker.h"
#include "common/common.h"
#include "engine/crypto_int.h"
#include "engine/engine.h"

static void usage(void)
{
	fprintf(stderr, "usage: cairn-bench chunker|codec [--size BYTES | FILE] [--min N --avg N "
			"--max N] [--level N]\n");
	exit(2);
}

static uint64_t parse_size(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s)
		usage();
	switch (*end) {
	case 'k': case 'K': v <<= 10; break;
	case 'm': case 'M': v <<= 20; break;
	case 'g': case 'G': v <<= 30; break;
	case 0: break;
	default: usage();
	}
	return v;
}

static void fill_random(uint8_t *b, size_t len, uint64_t s)
{
	s = s * 0x9E3779B97F4A7C15ull + 1;
	for (size_t i = 0; i < len; i += 8) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		memcpy(b + i, &s, len - i < 8 ? len - i : 8);
	}
}

/* Text-like data: words from a small vocabulary, compressible about 3-4x. */
static void fill_text(uint8_t *b, size_t len, uint64_t s)
{
	static const char *w[] = {"the ", "backup ", "of ", "data ", "is ", "restored ", "every ",
				  "night ", "and ", "verified\n", "0x7f3a ", "ERROR ", "INFO "};
	size_t i = 0;
	while (i < len) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		const char *x = w[s % 13];
		size_t n = strlen(x);
		if (n > len - i)
			n = len - i;
		memcpy(b + i, x, n);
		i += n;
		if ((s >> 20) % 7 == 0 && i + 4 < len) {
			memcpy(b + i, &s, 4); /* some entropy */
			i += 4;
		}
	}
}

static uint8_t *load(const char *file, uint64_t size, int mixed, size_t *len)
{
	uint8_t *b;
	if (file) {
		FILE *f = fopen(file, "rb");
		struct stat st;
		if (!f || fstat(fileno(f), &st) < 0) {
			perror(file);
			exit(1);
		}
		*len = (size_t)st.st_size;
		b = cairn_xmalloc(*len);
		if (fread(b, 1, *len, f) != *len) {
			perror(file);
			exit(1);
		}
		fclose(f);
		return b;
	}
	*len = (size_t)size;
	b = cairn_xmalloc(*len);
	if (!mixed) {
		fill_random(b, *len, 1);
		return b;
	}
	/* alternate 4 MiB of text and 4 MiB of random */
	for (size_t off = 0; off < *len; off += 8 << 20) {
		size_t n = *len - off < (8u << 20) ? *len - off : (8u << 20);
		size_t t = n < (4u << 20) ? n : (4u << 20);
		fill_text(b + off, t, off + 1);
		fill_random(b + off + t, n - t, off + 2);
	}
	return b;
}

static double secs(uint64_t t0)
{
	return (double)(cairn_now_ns() - t0) / 1e9;
}

/* CPU time of this thread: unlike the wall clock, not inflated when the run is preempted. */
static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int bench_chunker(const char *file, uint64_t size, size_t mn, size_t av, size_t mx)
{
	size_t len;
	uint8_t *b = load(file, size, 0, &len);
	uint64_t gear[256];
	cairn_chunker ck;
	cairn_chunker_gear_test(gear, 42);
	if (cairn_chunker_init(&ck, gear, mn, av, mx) < 0) {
		fprintf(stderr, "cairn-bench: bad chunk sizes %zu/%zu/%zu\n", mn, av, mx);
		return 2;
	}
	double best = 1e9, best_cpu = 1e9;
	size_t chunks = 0, cmin = SIZE_MAX, cmax = 0;
	for (int rep = 0; rep < 5; rep++) {
		cairn_chunker_reset(&ck);
		size_t off = 0, n = 0, lo = SIZE_MAX, hi = 0, start = 0;
		uint64_t c0 = thread_cpu_ns(), t0 = cairn_now_ns();
		while (off < len) {
			size_t k = cairn_chunker_scan(&ck, b + off, len - off);
			if (k == CAIRN_CHUNKER_NEED)
				break;
			off += k;
			size_t sz = off - start;
			start = off;
			lo = sz < lo ? sz : lo;
			hi = sz > hi ? sz : hi;
			n++;
		}
		double t = secs(t0), tc = (double)(thread_cpu_ns() - c0) / 1e9;
		if (start < len) {
			size_t sz = len - start;
			lo = sz < lo ? sz : lo;
			hi = sz > hi ? sz : hi;
			n++;
		}
		if (t < best)
			best = t;
		if (tc < best_cpu)
			best_cpu = tc;
		chunks = n;
		cmin = lo;
		cmax = hi;
	}
	printf("{\"bench\":\"chunker\",\"bytes\":%zu,\"min_size\":%zu,\"avg_size\":%zu,"
	       "\"max_size\":%zu,\"mb_per_s\":%.0f,\"cpu_mb_per_s\":%.0f,\"chunks\":%zu,"
	       "\"mean\":%.0f,\"min\":%zu,\"max\":%zu}\n",
	       len, mn, av, mx, (double)len / best / 1e6, (double)len / best_cpu / 1e6, chunks, (double)len / (double)chunks,
	       cmin, cmax);
	free(b);
	return 0;
}

static int bench_codec(const char *file, uint64_t size, int level)
{
	size_t len;
	uint8_t *b = load(file, size, 1, &len);
	cairn_keyset ks;
	uint8_t repo[32] = {0}, id[32];
	cairn_keyset_generate(&ks, repo);
	cairn_codec *plain = cairn_codec_new(0), *zc = cairn_codec_new(level);
	const size_t blk = 1 << 20;
	uint8_t *out = cairn_xmalloc(cairn_blob_bound(blk));
	uint64_t gear[256];
	cairn_chunker ck;
	cairn_keyset_gear(&ks, gear);
	cairn_chunker_init(&ck, gear, CAIRN_CHUNKER_DEFAULT_MIN, CAIRN_CHUNKER_DEFAULT_AVG,
			   CAIRN_CHUNKER_DEFAULT_MAX);
	cairn_keyset b3 = ks; /* the default chunk id function of new repositories */
	b3.id_fn = CAIRN_CHUNK_ID_BLAKE3;
	double t_id = 1e9, t_b3 = 1e9, t_enc = 1e9, t_comp = 1e9, t_all = 1e9;
	size_t stored = 0;
	for (int rep = 0; rep < 3; rep++) {
		uint64_t t0 = cairn_now_ns();
		for (size_t off = 0; off < len; off += blk)
			cairn_chunk_id(&ks, b + off, len - off < blk ? len - off : blk, id);
		double t = secs(t0);
		t_id = t < t_id ? t : t_id;

		t0 = cairn_now_ns();
		for (size_t off = 0; off < len; off += blk)
			cairn_chunk_id(&b3, b + off, len - off < blk ? len - off : blk, id);
		t = secs(t0);
		t_b3 = t < t_b3 ? t : t_b3;

		t0 = cairn_now_ns();
		for (size_t off = 0; off < len; off += blk)
			cairn_blob_encode(plain, ks.enc, off, NULL, 0, b + off,
					  len - off < blk ? len - off : blk, out);
		t = secs(t0);
		t_enc = t < t_enc ? t : t_enc;

		t0 = cairn_now_ns();
		for (size_t off = 0; off < len; off += blk)
			cairn_blob_encode(zc, ks.enc, off, NULL, 0, b + off,
					  len - off < blk ? len - off : blk, out);
		t = secs(t0);
		t_comp = t < t_comp ? t : t_comp; /* compression + encryption */

		/* all together: chunk, id, compress, encrypt */
		uint8_t *o2 = cairn_xmalloc(cairn_blob_bound(CAIRN_CHUNKER_DEFAULT_MAX));
		size_t st = 0, off = 0, start = 0;
		cairn_chunker_reset(&ck);
		t0 = cairn_now_ns();
		while (start < len) {
			size_t k = cairn_chunker_scan(&ck, b + off, len - off);
			size_t end = k == CAIRN_CHUNKER_NEED ? len : off + k;
			cairn_chunk_id(&b3, b + start, end - start, id);
			long n = cairn_blob_encode(zc, ks.enc, start, NULL, 0, b + start,
						   end - start, o2);
			st += (size_t)n;
			off = start = end;
		}
		t = secs(t0);
		t_all = t < t_all ? t : t_all;
		stored = st;
		free(o2);
	}
	double mb = (double)len / 1e6;
	printf("{\"bench\":\"codec\",\"bytes\":%zu,\"zstd_level\":%d,\"id_hmac_sha256_mb_per_s\":%.0f,"
	       "\"id_blake3_mb_per_s\":%.0f,\"encrypt_aes256gcm_mb_per_s\":%.0f,\"compress_encrypt_mb_per_s\":%.0f,"
	       "\"compress_mb_per_s\":%.0f,\"all_chunk_id_compress_encrypt_mb_per_s\":%.0f,"
	       "\"stored_ratio\":%.3f}\n",
	       len, level, mb / t_id, mb / t_b3, mb / t_enc, mb / t_comp,
	       mb / (t_comp - t_enc > 0 ? t_comp - t_enc : t_comp), mb / t_all,
	       (double)stored / (double)len);
	cairn_codec_free(plain);
	cairn_codec_free(zc);
	free(out);
	free(b);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	const char *what = argv[1], *file = NULL;
	uint64_t size = 0;
	size_t mn = CAIRN_CHUNKER_DEFAULT_MIN, av = CAIRN_CHUNKER_DEFAULT_AVG,
	       mx = CAIRN_CHUNKER_DEFAULT_MAX;
	int level = 3;
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--size") && i + 1 < argc)
			size = parse_size(argv[++i]);
		else if (!strcmp(argv[i], "--min") && i + 1 < argc)
			mn = parse_size(argv[++i]);
		else if (!strcmp(argv[i], "--avg") && i + 1 < argc)
			av = parse_size(argv[++i]);
		else if (!strcmp(argv[i], "--max") && i + 1 < argc)
			mx = parse_size(argv[++i]);
		else if (!strcmp(argv[i], "--level") && i + 1 < argc)
			level = atoi(argv[++i]);
		else if (argv[i][0] != '-' && !file)
			file = argv[i];
		else
			usage();
	}
	if (!strcmp(what, "chunker"))
		return bench_chunker(file, size ? size : (1u << 30), mn, av, mx);
	if (!strcmp(what, "codec"))
		return bench_codec(file, size ? size : (256u << 20), level);
	usage();
	return 2;
}
