/*
 * testutil.h - small helpers shared by the Check suites: temp directories,
 * seeded data, running shell commands.
 */
#ifndef CAIRN_TESTUTIL_H
#define CAIRN_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/** Create a fresh directory under $TMPDIR (or /tmp); returns a malloc'd path. */
char *tu_mkdtemp(const char *tag);
/** rm -rf @p path (and free nothing). */
void tu_rmrf(const char *path);
/** Deterministic pseudo-random bytes (xorshift) from @p seed. */
void tu_fill_random(void *buf, size_t len, uint64_t seed);
/** Text-like compressible bytes from @p seed. */
void tu_fill_text(void *buf, size_t len, uint64_t seed);
/** Run a shell command (printf-style); returns its exit status (or -1). */
int tu_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
