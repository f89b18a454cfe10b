#include "tests/support/testutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
