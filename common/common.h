/*
 * common.h - what every cairn module shares: error reporting, little-endian
 * helpers, hex encoding and monotonic time.
 *
 * Errors (STYLE.md §6-7): every fallible function returns an int, >= 0 on
 * success and a negative errno-style code on failure. The human-readable
 * context of the most recent failure lives in a thread-local buffer, set by
 * cairn_error_set() (which returns the code, so failure sites are one
 * statement) and read by cairn_error_last().
 *
 * Codes with a cairn meaning:
 *   -ENOENT    object or file not found
 *   -EEXIST    already exists
 *   -EBADMSG   corrupt data: digest mismatch, authentication failure, bad record
 *   -EKEYREJECTED  wrong passphrase (no key file opens with it)
 *   -EAGAIN / -ETIMEDOUT  retryable
 *   -EOPNOTSUPP  operation not supported by a backend
 *   -ERANGE    size out of range
 */
#ifndef CAIRN_COMMON_H
#define CAIRN_COMMON_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define CAIRN_ERRMSG_MAX 512

/** Record a message for code @p code (negative) and return @p code. */
int cairn_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/**
 * Prefix the current message with more context ("while doing X: <old>").
 * Returns @p code unchanged.
 */
int cairn_error_wrap(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Format a message and hand it to @p report (nothing if @p report is NULL). */
void cairn_say(void (*report)(void *payload, const char *msg), void *payload, const char *fmt,
	       ...) __attribute__((format(printf, 3, 4)));

/** Message of the last failure on this thread; never NULL ("" if none). */
const char *cairn_error_last(void);

/** Clear this thread's message. */
void cairn_error_clear(void);

/**
 * A counter this thread's cairn_error_set()/cairn_error_wrap() calls advance:
 * compare it before and after a call to know whether the call set a message,
 * without clearing (and so losing) the message of an earlier failure.
 */
unsigned cairn_error_seq(void);

/** True for codes worth retrying (timeouts, EAGAIN, connection faults). */
int cairn_err_retryable(int code);

/* Little-endian helpers: every on-disk integer of cairn is little-endian. */
static inline void cairn_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static inline void cairn_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline void cairn_put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t cairn_get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t cairn_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t cairn_get_le64(const uint8_t *p)
{
	return (uint64_t)cairn_get_le32(p) | (uint64_t)cairn_get_le32(p + 4) << 32;
}

/** Write 2*len lowercase hex digits and a NUL into @p out. */
void cairn_hex(char *out, const void *data, size_t len);

/** Parse exactly 2*len hex digits; returns 0 or -EINVAL. */
int cairn_unhex(void *out, size_t len, const char *hex);

/** Monotonic clock in nanoseconds. */
uint64_t cairn_now_ns(void);

/** Wall clock in nanoseconds since the epoch. */
int64_t cairn_wall_ns(void);

/** Allocation that aborts with a message on failure (for small bookkeeping). */
void *cairn_xmalloc(size_t n);
void *cairn_xcalloc(size_t n, size_t size);
void *cairn_xrealloc(void *p, size_t n);
char *cairn_xstrdup(const char *s);

/**
 * Read @p len bytes at @p off of @p fd, across short reads and EINTR.
 * @return the bytes read (fewer only at the end of the file), or -errno.
 */
long long cairn_pread_all(int fd, void *buf, size_t len, uint64_t off);

/**
 * Open @p path read-only if it is a regular file; *size is its size.
 * @return the descriptor, -ENOENT if it is missing or anything but a regular
 * file (a directory, a FIFO, a path through a file), or another -errno.
 */
int cairn_open_regular(const char *path, uint64_t *size);

/** A growable byte buffer. */
typedef struct cairn_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
} cairn_buf;

#define CAIRN_BUF_INIT {NULL, 0, 0}
void cairn_buf_reserve(cairn_buf *b, size_t extra);
void cairn_buf_append(cairn_buf *b, const void *data, size_t len);
void cairn_buf_put_u8(cairn_buf *b, uint8_t v);
void cairn_buf_put_le32(cairn_buf *b, uint32_t v);
void cairn_buf_put_le64(cairn_buf *b, uint64_t v);
/** Unsigned LEB128 varint. */
void cairn_buf_put_uvar(cairn_buf *b, uint64_t v);
/** Length-prefixed (uvar) bytes. */
void cairn_buf_put_bytes(cairn_buf *b, const void *data, size_t len);
void cairn_buf_free(cairn_buf *b);

/**
 * A bounds-checked reader over a byte range. Every get returns 0 or -EBADMSG
 * when the input ends early or a varint is malformed; errors are sticky.
 */
typedef struct cairn_rd {
	const uint8_t *p;
	const uint8_t *end;
	int err;
} cairn_rd;

static inline cairn_rd cairn_rd_init(const void *data, size_t len)
{
	/* an empty buffer may have no storage: no arithmetic on NULL (undefined behaviour) */
	const uint8_t *p = data ? (const uint8_t *)data : (const uint8_t *)"";
	cairn_rd r = {p, data ? p + len : p, 0};
	return r;
}
int cairn_rd_u8(cairn_rd *r, uint8_t *v);
int cairn_rd_le32(cairn_rd *r, uint32_t *v);
int cairn_rd_le64(cairn_rd *r, uint64_t *v);
int cairn_rd_uvar(cairn_rd *r, uint64_t *v);
int cairn_rd_raw(cairn_rd *r, void *out, size_t len);
/** Borrow @p len bytes (pointer into the input). */
int cairn_rd_ref(cairn_rd *r, const uint8_t **out, size_t len);
/** Borrow a uvar-length-prefixed byte string of at most @p max bytes. */
int cairn_rd_bytes(cairn_rd *r, const uint8_t **out, size_t *len, size_t max);
static inline size_t cairn_rd_left(const cairn_rd *r)
{
	return (size_t)(r->end - r->p);
}

#endif
