#include "tests/support/testutil.h"

#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

char *tu_mkdtemp(const char *tag)
{
	const char *tmp = getenv("TMPDIR");
	char *p = malloc(4096);
	snprintf(p, 4096, "%s/cairn-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", tag);
	if (!mkdtemp(p)) {
		perror("mkdtemp");
		abort();
	}
	return p;
}

void tu_rmrf(const char *path)
{
	if (path && *path && strcmp(path, "/") != 0)
		tu_sh("rm -rf '%s'", path);
}

static uint64_t xs(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

void tu_fill_random(void *buf, size_t len, uint64_t seed)
{
	uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
	uint8_t *p = buf;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t v = xs(&s);
		memcpy(p + i, &v, 8);
	}
	for (; i < len; i++)
		p[i] = (uint8_t)xs(&s);
}

void tu_fill_text(void *buf, size_t len, uint64_t seed)
{
	static const char *words[] = {"backup ", "restore ", "chunk ", "pack ", "index ",
				      "snapshot ", "tree ", "cairn ", "drill ", "\n"};
	uint64_t s = seed * 0x9E3779B97F4A7C15ull + 7;
	uint8_t *p = buf;
	size_t i = 0;
	while (i < len) {
		const char *w = words[xs(&s) % 10];
		size_t n = strlen(w);
		if (n > len - i)
			n = len - i;
		memcpy(p + i, w, n);
		i += n;
	}
}

int tu_sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int st = system(cmd);
	if (st == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

uint64_t tu_sh_u64(const char *fmt, ...)
{
	char cmd[16384], buf[64] = "";
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	FILE *p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	char *got = fgets(buf, sizeof(buf), p);
	pclose(p);
	ck_assert_msg(got && buf[0] >= '0' && buf[0] <= '9', "no number from: %s", cmd);
	return strtoull(buf, NULL, 10);
}

void tu_write_random(const char *path, size_t size, uint64_t seed)
{
	const size_t blk = 1u << 20;
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s", path);
	for (char *q = strchr(dir + 1, '/'); q; q = strchr(q + 1, '/')) {
		*q = 0;
		mkdir(dir, 0755); /* parents; existing ones are fine */
		*q = '/';
	}
	FILE *f = fopen(path, "wb");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	uint8_t *buf = malloc(blk);
	for (size_t off = 0; off < size; off += blk) {
		size_t n = size - off < blk ? size - off : blk;
		tu_fill_random(buf, n, seed * 1000003 + off / blk);
		ck_assert_uint_eq(fwrite(buf, 1, n, f), n);
	}
	free(buf);
	ck_assert_int_eq(fclose(f), 0);
}

void tu_write_bytes(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

char *tu_slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	size_t n = 0, cap = 4096;
	char *s = malloc(cap);
	if (f) {
		size_t got;
		while ((got = fread(s + n, 1, cap - n - 1, f)) > 0) {
			n += got;
			if (cap - n < 2)
				s = realloc(s, cap *= 2);
		}
		fclose(f);
	}
	s[n] = 0;
	return s;
}

static char failures[16384];
static size_t flen;
static int nfail;

void tu_expect_fail(int line, const char *cond, const char *fmt, ...)
{
	va_list ap;
	nfail++;
	if (flen + 64 >= sizeof(failures))
		return;
	flen += (size_t)snprintf(failures + flen, sizeof(failures) - flen, "\nline %d: %s: ", line,
				 cond);
	va_start(ap, fmt);
	int n = vsnprintf(failures + flen, sizeof(failures) - flen, fmt, ap);
	va_end(ap);
	flen += n < 0 ? 0 : (size_t)n;
	if (flen >= sizeof(failures))
		flen = sizeof(failures) - 1;
}

void tu_expect_done(void)
{
	if (nfail)
		fprintf(stderr, "%d failed check(s):%s\n", nfail, failures);
	/* Check limits its messages to a few KiB: the whole list is on stderr */
	ck_assert_msg(nfail == 0, "%d failed check(s):%.2500s", nfail, failures);
}

void tu_expect_reset(void)
{
	failures[0] = 0;
	flen = 0;
	nfail = 0;
}
