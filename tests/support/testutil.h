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
/** A shell command's stdout as a number (the test fails if there is none). */
uint64_t tu_sh_u64(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/** Write @p len bytes of @p data to @p path (replacing it); the test fails if it cannot. */
void tu_write_bytes(const char *path, const void *data, size_t len);

/** Write @p size seeded pseudo-random bytes to @p path (parents created), 1 MiB per seed step. */
void tu_write_random(const char *path, size_t size, uint64_t seed);
/** The whole file, NUL-terminated, malloc'd ("" if unreadable). */
char *tu_slurp(const char *path);

/*
 * Recording checks: EXPECT notes a failed condition with an explanation and
 * goes on, so one run of a long scenario reports every broken promise;
 * tu_expect_done() then fails the test if anything was noted.
 */
void tu_expect_fail(int line, const char *cond, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define EXPECT(cond, ...)                                                                          \
	do {                                                                                       \
		if (!(cond))                                                                       \
			tu_expect_fail(__LINE__, #cond, __VA_ARGS__);                              \
	} while (0)
void tu_expect_done(void);
/** Forget what was noted (a test's fresh start). */
void tu_expect_reset(void);

#endif
