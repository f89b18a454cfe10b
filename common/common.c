/*
 * common.c - error context, hex, clocks, allocation and byte buffers.
 */
#include "common/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static _Thread_local char errmsg[CAIRN_ERRMSG_MAX];
static _Thread_local unsigned errseq;

int cairn_error_set(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	va_end(ap);
	errseq++;
	return code;
}

int cairn_error_wrap(int code, const char *fmt, ...)
{
	char prefix[CAIRN_ERRMSG_MAX], tmp[2 * CAIRN_ERRMSG_MAX + 8];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	snprintf(tmp, sizeof(tmp), "%s: %s", prefix,
		 errmsg[0] ? errmsg : strerror(code < 0 ? -code : code));
	memcpy(errmsg, tmp, CAIRN_ERRMSG_MAX - 1);
	errmsg[CAIRN_ERRMSG_MAX - 1] = 0;
	errseq++;
	return code;
}

const char *cairn_error_last(void)
{
	return errmsg;
}

unsigned cairn_error_seq(void)
{
	return errseq;
}

void cairn_say(void (*report)(void *payload, const char *msg), void *payload, const char *fmt,
	       ...)
{
	if (!report)
		return;
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	report(payload, msg);
}

void cairn_error_clear(void)
{
	errmsg[0] = 0;
}

int cairn_err_retryable(int code)
{
	switch (-code) {
	case EAGAIN:
	case ETIMEDOUT:
	case ECONNRESET:
	case ECONNREFUSED:
	case ECONNABORTED:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EPIPE:
	case EBUSY:
		return 1;
	default:
		return 0;
	}
}

void cairn_hex(char *out, const void *data, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *p = data;
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * len] = 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int cairn_unhex(void *out, size_t len, const char *hex)
{
	uint8_t *o = out;
	for (size_t i = 0; i < len; i++) {
		int hi = hexval(hex[2 * i]), lo = hi < 0 ? -1 : hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		o[i] = (uint8_t)(hi << 4 | lo);
	}
	return hex[2 * len] == 0 ? 0 : -EINVAL;
}

uint64_t cairn_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t cairn_wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void oom(size_t n)
{
	fprintf(stderr, "cairn: out of memory allocating %zu bytes\n", n);
	abort();
}

void *cairn_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom(n);
	return p;
}

void *cairn_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		oom(n * size);
	return p;
}

void *cairn_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom(n);
	return q;
}

char *cairn_xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = cairn_xmalloc(n);
	memcpy(p, s, n);
	return p;
}

void cairn_buf_reserve(cairn_buf *b, size_t extra)
{
	if (b->len + extra <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra)
		cap *= 2;
	b->data = cairn_xrealloc(b->data, cap);
	b->cap = cap;
}

void cairn_buf_append(cairn_buf *b, const void *data, size_t len)
{
	if (!len)
		return;
	cairn_buf_reserve(b, len);
	memcpy(b->data + b->len, data, len);
	b->len += len;
}

void cairn_buf_put_u8(cairn_buf *b, uint8_t v)
{
	cairn_buf_append(b, &v, 1);
}

void cairn_buf_put_le32(cairn_buf *b, uint32_t v)
{
	uint8_t t[4];
	cairn_put_le32(t, v);
	cairn_buf_append(b, t, 4);
}

void cairn_buf_put_le64(cairn_buf *b, uint64_t v)
{
	uint8_t t[8];
	cairn_put_le64(t, v);
	cairn_buf_append(b, t, 8);
}

void cairn_buf_put_uvar(cairn_buf *b, uint64_t v)
{
	uint8_t t[10];
	size_t n = 0;
	do {
		t[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			t[n] |= 0x80;
		n++;
	} while (v);
	cairn_buf_append(b, t, n);
}

void cairn_buf_put_bytes(cairn_buf *b, const void *data, size_t len)
{
	cairn_buf_put_uvar(b, len);
	cairn_buf_append(b, data, len);
}

void cairn_buf_free(cairn_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

static int rd_fail(cairn_rd *r)
{
	r->err = -EBADMSG;
	r->p = r->end;
	return -EBADMSG;
}

int cairn_rd_raw(cairn_rd *r, void *out, size_t len)
{
	if (r->err || cairn_rd_left(r) < len)
		return rd_fail(r);
	memcpy(out, r->p, len);
	r->p += len;
	return 0;
}

int cairn_rd_ref(cairn_rd *r, const uint8_t **out, size_t len)
{
	if (r->err || cairn_rd_left(r) < len)
		return rd_fail(r);
	*out = r->p;
	r->p += len;
	return 0;
}

int cairn_rd_u8(cairn_rd *r, uint8_t *v)
{
	return cairn_rd_raw(r, v, 1);
}

int cairn_rd_le32(cairn_rd *r, uint32_t *v)
{
	uint8_t t[4];
	if (cairn_rd_raw(r, t, 4) < 0)
		return -EBADMSG;
	*v = cairn_get_le32(t);
	return 0;
}

int cairn_rd_le64(cairn_rd *r, uint64_t *v)
{
	uint8_t t[8];
	if (cairn_rd_raw(r, t, 8) < 0)
		return -EBADMSG;
	*v = cairn_get_le64(t);
	return 0;
}

int cairn_rd_uvar(cairn_rd *r, uint64_t *v)
{
	uint64_t x = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		uint8_t b;
		if (cairn_rd_u8(r, &b) < 0)
			return -EBADMSG;
		if (shift == 63 && (b & 0x7e))
			return rd_fail(r);
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return rd_fail(r);
}

int cairn_rd_bytes(cairn_rd *r, const uint8_t **out, size_t *len, size_t max)
{
	uint64_t n;
	if (cairn_rd_uvar(r, &n) < 0)
		return -EBADMSG;
	if (n > max || n > cairn_rd_left(r))
		return rd_fail(r);
	*len = (size_t)n;
	return cairn_rd_ref(r, out, (size_t)n);
}

long long cairn_pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	size_t got = 0;
	while (got < len) {
		size_t want = len - got;
		ssize_t n = pread(fd, p + got, want < (1u << 30) ? want : (1u << 30), (off_t)(off + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (long long)got;
}

int cairn_open_regular(const char *path, uint64_t *size)
{
	/* O_NONBLOCK: opening a FIFO must not wait for a writer; no effect on files */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return errno == ENOTDIR ? -ENOENT : -errno; /* a path through a file */
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return -ENOENT;
	}
	*size = (uint64_t)st.st_size;
	return fd;
}
