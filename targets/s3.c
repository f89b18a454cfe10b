/*
 * s3.c - a target over an S3 bucket (radosgw, MinIO, AWS), through libs3 2.0:
 * object "a/b" is the key "<prefix>/a/b" of the bucket.
 *
 * DESIGN
 *   - Addresses: s3:http://HOST:PORT/BUCKET[/PREFIX] (or https). Requests use
 *     path-style URIs (http://HOST:PORT/BUCKET/KEY), so any host name or IP
 *     address works and no DNS name per bucket is needed. Object names are
 *     [A-Za-z0-9._-/] only and go into keys unescaped. libs3 2.0 signs with
 *     signature version 2 only (HMAC-SHA1), which radosgw and MinIO accept
 *     but newer AWS regions do not.
 *   - With https, libs3 2.0 does NOT verify the server's certificate
 *     (CURLOPT_SSL_VERIFYPEER is hard-wired to 0): the link is encrypted
 *     but the server is not authenticated. The secret key itself never
 *     travels (v2 signatures), and cairn encrypts what it stores.
 *   - put() is one PUT of the whole object, with a Content-MD5 the server
 *     checks. libs3 2.0 has no multipart upload, so an object is at most
 *     5 GiB (the S3 single-PUT limit): larger ones fail with -EFBIG. A PUT
 *     is atomic on S3 (readers see the old object, or the whole new one) and
 *     radosgw answers only once the data is on its RADOS pool.
 *   - The bucket is made by the first put() that finds it missing
 *     (NoSuchBucket): it creates it and repeats the put once. A missing bucket
 *     reads as an empty one (get/stat: -ENOENT, list: nothing).
 *   - del() is HEAD then DELETE: S3 DELETE reports success for a missing key,
 *     but the target contract (and `cairn key remove`) wants -ENOENT.
 *   - Bounded time: libs3 2.0 has no timeout setting, so every request runs
 *     in its own S3RequestContext, driven here with select() against a
 *     deadline: an attempt fails with -ETIMEDOUT once opts.timeout_s seconds
 *     pass without a byte moving (a large PUT at any useful speed is never
 *     cut; a request without a body gets timeout_s in total). libs3 itself
 *     also aborts any transfer that moves less than 1 KB/s for 15 s
 *     (ConnectionFailed), so a stall is detected after min(timeout_s, 15) s.
 *   - Retries: a failed attempt whose status is transient (5xx, SlowDown,
 *     connection lost, short read, ...) is repeated after 0.2 s, 0.4 s,
 *     0.8 s ... (capped at 5 s, +-25 % jitter), up to opts.retries times.
 *     Every op is safe to repeat: PUT of immutable content, GET, HEAD, LIST
 *     pages, and DELETE are idempotent. A refused connection or a failed name
 *     lookup is retried at most twice (a closed port fails in ~0.6 s), and a
 *     stall (timeout) is not retried: the server is hung, and repeating would
 *     multiply the wait; -ETIMEDOUT is retryable for the caller.
 *   - Errors: libs3 statuses map to errno in one table (status_map[]); every
 *     message names the target, the request, the object, the status name
 *     (S3_get_status_name()) and the server's own message if it sent one.
 *   - Threads: S3_initialize() runs once per process (pthread_once) and is
 *     never undone. Each call makes its own request context, so any number
 *     of threads may use one target. Issuing a request (building headers,
 *     not I/O) is serialised by a process-wide mutex because libs3 formats
 *     the Date header with gmtime(), which is not thread-safe. libs3 keeps
 *     no connection open between requests (it resets each curl handle), so
 *     every request opens a new TCP connection.
 *   - Integrity: a GET must deliver exactly its Content-Length (libs3 2.0
 *     reports a truncated body as success), else the attempt is retried; a
 *     ranged GET that ends early because the object does, fails -ERANGE.
 *   - libs3 is not linked in: the first open loads libs3.so.2 (or the file
 *     in $CAIRN_S3_LIB) once per process, and every call goes through the
 *     table `lib` of typed pointers (common/dl.h), so runs that never open an
 *     s3 target do not pay for libs3, libcurl-gnutls and libxml2. If it
 *     cannot be loaded, every open fails with -EOPNOTSUPP: "cannot load
 *     libs3.so.2: <why>; install libs3-2".
 *   - Built without libs3.h (CAIRN_HAVE_S3 unset), both openers fail with
 *     -EOPNOTSUPP.
 */
#include "targets/target.h"

#ifdef CAIRN_HAVE_S3

#include <openssl/evp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <libs3.h>
#pragma GCC diagnostic pop

#include "common/dl.h"

#define DEFAULT_TIMEOUT_S 30
#define DEFAULT_RETRIES 4
/* Retries of a refused connection or failed name lookup. */
#define FAST_RETRIES 2
#define BACKOFF_FIRST_MS 200
#define BACKOFF_MAX_MS 5000
/* Largest object one PUT may carry (S3's limit; libs3 2.0 has no multipart). */
#define PUT_MAX ((uint64_t)5 << 30)
/* Keys per LIST page (the S3 maximum). */
#define LIST_PAGE 1000
/* libs3's own stall limit (CURLOPT_LOW_SPEED_TIME), in seconds. */
#define LIBS3_STALL_S 15

struct s3_target {
	cairn_target base; /* first: a cairn_target * is a struct s3_target * */
	S3BucketContext bc; /* points into the strings below */
	char *host;         /* "host[:port]" */
	char *bucket;
	char *prefix;       /* "" or "some/prefix/" (ends in '/') */
	char *access_key;
	char *secret_key;
	uint64_t timeout_ns; /* no-progress limit of one attempt */
	int retries;         /* retries after a failed attempt */
	pthread_mutex_t mk_lock; /* serialises bucket creation */
	unsigned mk_gen;        /* bumped by every bucket creation (under mk_lock) */
};

static struct s3_target *st_of(cairn_target *t)
{
	return (struct s3_target *)t;
}

/* libs3, loaded on first use (common/dl.h) --------------------------------- */

/* The soname (CAIRN_S3_LIB overrides it) and the package that holds it. */
#define S3_SONAME "libs3.so.2"
#define S3_PACKAGE "libs3-2"

/* Every libs3 function this file calls. */
#define S3_FUNCS(X)                                                                                \
	X(S3_initialize)                                                                           \
	X(S3_get_status_name)                                                                      \
	X(S3_validate_bucket_name)                                                                 \
	X(S3_create_request_context)                                                               \
	X(S3_runonce_request_context)                                                              \
	X(S3_get_request_context_fdsets)                                                           \
	X(S3_get_request_context_timeout)                                                          \
	X(S3_destroy_request_context)                                                              \
	X(S3_put_object)                                                                           \
	X(S3_get_object)                                                                           \
	X(S3_head_object)                                                                          \
	X(S3_delete_object)                                                                        \
	X(S3_list_bucket)                                                                          \
	X(S3_create_bucket)

/* The functions, typed by libs3.h; filled once by load_libs3(). */
static struct s3_lib {
#define X(f) __typeof__(f) *f;
	S3_FUNCS(X)
#undef X
} lib;

static const cairn_dl_sym lib_syms[] = {
#define X(f) {#f, offsetof(struct s3_lib, f)},
    S3_FUNCS(X)
#undef X
};

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static int lib_rc;        /* 0 or -EOPNOTSUPP */
static char lib_err[512]; /* why loading failed */

static void load_libs3(void)
{
	lib_rc = cairn_dl_load("CAIRN_S3_LIB", S3_SONAME, &lib, sizeof(lib), lib_syms,
			       sizeof(lib_syms) / sizeof(lib_syms[0]), lib_err, sizeof(lib_err));
}

/* Process-wide libs3 state --------------------------------------------- */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static S3Status init_status;
/* Held while a request is issued: libs3 uses gmtime() for the Date header. */
static pthread_mutex_t issue_lock = PTHREAD_MUTEX_INITIALIZER;

static void init_libs3(void)
{
	init_status = lib.S3_initialize("cairn", S3_INIT_ALL, NULL);
}

/* Status -> errno, the one table ----------------------------------------- */

enum retry_class {
	R_NO,    /* permanent: report at once */
	R_YES,   /* transient: retry up to opts.retries times */
	R_FAST,  /* nobody listens: retry at most FAST_RETRIES times */
	R_STALL, /* ConnectionFailed: a stall is not retried, a lost connection is */
};

static const struct status_map {
	S3Status status;
	int err; /* positive errno */
	enum retry_class retry;
	const char *words; /* for messages, before the status name */
} status_map[] = {
	{S3StatusErrorNoSuchKey, ENOENT, R_NO, "no such object"},
	{S3StatusHttpErrorNotFound, ENOENT, R_NO, "no such object"}, /* 404 to a HEAD */
	{S3StatusErrorNoSuchBucket, ENOENT, R_NO, "no such bucket"},
	{S3StatusErrorAccessDenied, EACCES, R_NO, "access denied"},
	{S3StatusHttpErrorForbidden, EACCES, R_NO, "access denied"}, /* 403 to a HEAD */
	{S3StatusErrorSignatureDoesNotMatch, EACCES, R_NO, "access denied (wrong secret key?)"},
	{S3StatusErrorInvalidAccessKeyId, EACCES, R_NO, "access denied (unknown access key)"},
	{S3StatusErrorAccountProblem, EACCES, R_NO, "access denied"},
	{S3StatusErrorCredentialsNotSupported, EACCES, R_NO, "access denied"},
	{S3StatusErrorExpiredToken, EACCES, R_NO, "access denied"},
	{S3StatusErrorInvalidToken, EACCES, R_NO, "access denied"},
	{S3StatusErrorInvalidSecurity, EACCES, R_NO, "access denied"},
	{S3StatusErrorMissingSecurityHeader, EACCES, R_NO, "access denied"},
	{S3StatusErrorNotSignedUp, EACCES, R_NO, "access denied"},
	{S3StatusErrorRequestTimeTooSkewed, EACCES, R_NO, "access denied (clock skew)"},
	{S3StatusErrorTooManyBuckets, EDQUOT, R_NO, "bucket quota exceeded"},
	{S3StatusErrorInvalidRange, ERANGE, R_NO, "range beyond the end of the object"},
	{S3StatusErrorEntityTooLarge, EFBIG, R_NO, "object too large"},
	{S3StatusErrorMaxMessageLengthExceeded, EFBIG, R_NO, "object too large"},
	{S3StatusErrorBucketAlreadyExists, EEXIST, R_NO, "bucket exists"},
	{S3StatusErrorBucketAlreadyOwnedByYou, EEXIST, R_NO, "bucket exists"},
	{S3StatusErrorBucketNotEmpty, ENOTEMPTY, R_NO, "bucket not empty"},
	{S3StatusErrorMethodNotAllowed, EOPNOTSUPP, R_NO, "not supported by the server"},
	{S3StatusErrorNotImplemented, EOPNOTSUPP, R_NO, "not supported by the server"},
	{S3StatusErrorInvalidBucketName, EINVAL, R_NO, "invalid bucket name"},
	{S3StatusInvalidBucketNameTooLong, EINVAL, R_NO, "invalid bucket name"},
	{S3StatusInvalidBucketNameFirstCharacter, EINVAL, R_NO, "invalid bucket name"},
	{S3StatusInvalidBucketNameCharacter, EINVAL, R_NO, "invalid bucket name"},
	{S3StatusInvalidBucketNameCharacterSequence, EINVAL, R_NO, "invalid bucket name"},
	{S3StatusInvalidBucketNameTooShort, EINVAL, R_NO, "invalid bucket name"},
	{S3StatusInvalidBucketNameDotQuadNotation, EINVAL, R_NO, "invalid bucket name"},
	{S3StatusErrorInvalidArgument, EINVAL, R_NO, "request refused"},
	{S3StatusErrorInvalidURI, EINVAL, R_NO, "request refused"},
	{S3StatusHttpErrorBadRequest, EINVAL, R_NO, "request refused"},
	{S3StatusKeyTooLong, ENAMETOOLONG, R_NO, "key too long"},
	{S3StatusErrorKeyTooLong, ENAMETOOLONG, R_NO, "key too long"},
	{S3StatusUriTooLong, ENAMETOOLONG, R_NO, "key too long"},
	{S3StatusOutOfMemory, ENOMEM, R_NO, "out of memory"},
	{S3StatusServerFailedVerification, EPROTO, R_NO, "TLS verification failed"},
	/* transient: the server or the link had a bad moment */
	{S3StatusErrorInternalError, EIO, R_YES, "server error"},        /* HTTP 500 */
	{S3StatusErrorSlowDown, EIO, R_YES, "server busy"},              /* HTTP 503 */
	{S3StatusErrorOperationAborted, EIO, R_YES, "server error"},
	{S3StatusHttpErrorUnknown, EIO, R_YES, "server error"},          /* 502, 504 ... */
	{S3StatusHttpErrorConflict, EIO, R_YES, "conflict"},
	{S3StatusErrorBadDigest, EIO, R_YES, "data damaged in transit"}, /* Content-MD5 */
	{S3StatusErrorIncompleteBody, EIO, R_YES, "data cut short in transit"},
	{S3StatusXmlParseFailure, EIO, R_YES, "malformed response"},
	{S3StatusInternalError, EIO, R_YES, "connection error"}, /* libs3: reset, EPIPE ... */
	{S3StatusErrorRequestTimeout, ETIMEDOUT, R_YES, "server timed out reading the request"},
	{S3StatusFailedToConnect, ECONNREFUSED, R_FAST, "connection refused"},
	{S3StatusNameLookupError, EHOSTUNREACH, R_FAST, "host name lookup failed"},
	{S3StatusConnectionFailed, ETIMEDOUT, R_STALL, "connection failed"},
	{S3StatusInterrupted, ETIMEDOUT, R_NO, "timed out"}, /* our deadline aborted it */
};

static const struct status_map *map_status(S3Status s)
{
	static const struct status_map other = {S3StatusErrorUnknown, EIO, R_NO, "S3 error"};
	for (size_t i = 0; i < sizeof(status_map) / sizeof(status_map[0]); i++)
		if (status_map[i].status == s)
			return &status_map[i];
	return &other;
}

/* One request and what its callbacks report ------------------------------ */

enum op { OP_PUT, OP_GET, OP_RANGE, OP_HEAD, OP_DEL, OP_LIST, OP_MKBUCKET };

static const char *const op_verb[] = {"PUT", "GET", "GET", "HEAD", "DELETE", "LIST",
				      "create bucket"};

struct entry {
	char *name;
	uint64_t size;
};

struct req {
	struct s3_target *st;
	enum op op;
	const char *key;

	/* outcome of one attempt */
	int done;             /* the complete callback ran */
	S3Status status;
	char detail[256];     /* the server's error message, if any */
	int cb_err;           /* negative code of a callback that aborted the request */
	char cb_msg[128];     /* and its words */
	int timed_out;        /* our deadline aborted it */
	S3Status run_err;     /* the request context failed */
	uint64_t progress_ns; /* last time bytes moved */
	int have_len;         /* the response carried properties */
	uint64_t content_len;
	uint64_t got;         /* body bytes received (GET) */

	/* OP_PUT */
	const uint8_t *src;
	size_t src_len, src_off;
	const char *md5; /* base64, or NULL */

	/* OP_GET */
	cairn_buf *buf;

	/* OP_RANGE */
	uint64_t off;
	uint8_t *dst;
	size_t dst_len;

	/* OP_LIST: one page */
	const char *list_prefix;
	const char *marker;
	struct entry *ents;
	size_t nents, cap;
	int truncated;
	char next_marker[S3_MAX_KEY_SIZE + 1];
};

/* Forget what the previous attempt left. */
static void req_reset(struct req *rq)
{
	rq->done = 0;
	rq->status = S3StatusOK;
	rq->detail[0] = 0;
	rq->cb_err = 0;
	rq->cb_msg[0] = 0;
	rq->timed_out = 0;
	rq->run_err = S3StatusOK;
	rq->have_len = 0;
	rq->content_len = 0;
	rq->got = 0;
	rq->src_off = 0;
	if (rq->buf)
		rq->buf->len = 0;
	for (size_t i = 0; i < rq->nents; i++)
		free(rq->ents[i].name);
	rq->nents = 0;
	rq->truncated = 0;
	rq->next_marker[0] = 0;
}

static void req_free(struct req *rq)
{
	for (size_t i = 0; i < rq->nents; i++)
		free(rq->ents[i].name);
	free(rq->ents);
	rq->ents = NULL;
	rq->nents = rq->cap = 0;
}

/* Abort the request from a callback with code @p err and words @p msg. */
static S3Status cb_abort(struct req *rq, int err, const char *msg)
{
	rq->cb_err = err;
	snprintf(rq->cb_msg, sizeof(rq->cb_msg), "%s", msg);
	return S3StatusAbortedByCallback;
}

static S3Status props_cb(const S3ResponseProperties *p, void *data)
{
	struct req *rq = data;
	rq->progress_ns = cairn_now_ns();
	rq->have_len = 1;
	rq->content_len = p->contentLength;
	if (rq->op == OP_GET) {
		if (p->contentLength > PUT_MAX) /* no put() makes one; do not trust the header */
			return cb_abort(rq, -EFBIG, "Content-Length over 5 GiB");
		cairn_buf_reserve(rq->buf, (size_t)p->contentLength);
	} else if (rq->op == OP_RANGE && p->contentLength > rq->dst_len) {
		return cb_abort(rq, -EIO, "server sent more than the range asked for");
	}
	return S3StatusOK;
}

static void complete_cb(S3Status status, const S3ErrorDetails *ed, void *data)
{
	struct req *rq = data;
	rq->done = 1;
	rq->status = status;
	if (ed && (ed->message || ed->furtherDetails))
		snprintf(rq->detail, sizeof(rq->detail), "%s%s%s", ed->message ? ed->message : "",
			 ed->message && ed->furtherDetails ? "; " : "",
			 ed->furtherDetails ? ed->furtherDetails : "");
}

static int put_data_cb(int size, char *buf, void *data)
{
	struct req *rq = data;
	size_t n = rq->src_len - rq->src_off;
	if (size < 0)
		return -1;
	if (n > (size_t)size)
		n = (size_t)size;
	if (n)
		memcpy(buf, rq->src + rq->src_off, n);
	rq->src_off += n;
	rq->progress_ns = cairn_now_ns();
	return (int)n;
}

static S3Status get_data_cb(int size, const char *buf, void *data)
{
	struct req *rq = data;
	if (size < 0)
		return cb_abort(rq, -EIO, "negative chunk");
	rq->progress_ns = cairn_now_ns();
	if (rq->op == OP_RANGE) {
		if ((uint64_t)size > rq->dst_len - rq->got)
			return cb_abort(rq, -EIO, "server sent more than the range asked for");
		memcpy(rq->dst + rq->got, buf, (size_t)size);
	} else {
		if (rq->content_len && rq->got + (uint64_t)size > rq->content_len)
			return cb_abort(rq, -EIO, "server sent more than its Content-Length");
		cairn_buf_append(rq->buf, buf, (size_t)size);
	}
	rq->got += (uint64_t)size;
	return S3StatusOK;
}

static S3Status list_cb(int truncated, const char *next_marker, int n,
			const S3ListBucketContent *c, int nprefixes, const char **prefixes,
			void *data)
{
	struct req *rq = data;
	rq->progress_ns = cairn_now_ns();
	rq->truncated = truncated;
	if (next_marker)
		snprintf(rq->next_marker, sizeof(rq->next_marker), "%s", next_marker);
	for (int i = 0; i < n; i++) {
		if (!c[i].key)
			continue;
		if (rq->nents == rq->cap) {
			rq->cap = rq->cap ? 2 * rq->cap : LIST_PAGE;
			rq->ents = cairn_xrealloc(rq->ents, rq->cap * sizeof(*rq->ents));
		}
		rq->ents[rq->nents].name = cairn_xstrdup(c[i].key);
		rq->ents[rq->nents].size = c[i].size;
		rq->nents++;
	}
	return S3StatusOK;
}

/* Hand request @p rq to libs3 inside @p ctx (no I/O happens yet). */
static void issue(struct req *rq, S3RequestContext *ctx)
{
	struct s3_target *st = rq->st;
	S3ResponseHandler rh = {props_cb, complete_cb};

	pthread_mutex_lock(&issue_lock);
	switch (rq->op) {
	case OP_PUT: {
		S3PutProperties pp = {0};
		pp.md5 = rq->md5;
		pp.expires = -1;
		pp.cannedAcl = S3CannedAclPrivate;
		S3PutObjectHandler h = {rh, put_data_cb};
		lib.S3_put_object(&st->bc, rq->key, rq->src_len, &pp, ctx, &h, rq);
		break;
	}
	case OP_GET:
	case OP_RANGE: {
		S3GetObjectHandler h = {rh, get_data_cb};
		uint64_t off = rq->op == OP_RANGE ? rq->off : 0;
		uint64_t len = rq->op == OP_RANGE ? rq->dst_len : 0;
		lib.S3_get_object(&st->bc, rq->key, NULL, off, len, ctx, &h, rq);
		break;
	}
	case OP_HEAD:
		lib.S3_head_object(&st->bc, rq->key, ctx, &rh, rq);
		break;
	case OP_DEL:
		lib.S3_delete_object(&st->bc, rq->key, ctx, &rh, rq);
		break;
	case OP_LIST: {
		S3ListBucketHandler h = {rh, list_cb};
		lib.S3_list_bucket(&st->bc, rq->list_prefix, rq->marker[0] ? rq->marker : NULL,
				   NULL, LIST_PAGE, ctx, &h, rq);
		break;
	}
	case OP_MKBUCKET:
		lib.S3_create_bucket(st->bc.protocol, st->access_key, st->secret_key, st->host,
				     st->bucket, S3CannedAclPrivate, NULL, ctx, &rh, rq);
		break;
	}
	pthread_mutex_unlock(&issue_lock);
}

/*
 * Run one attempt of @p rq in a request context of its own, until it
 * completes or timeout_ns pass without progress (then the context is
 * destroyed, which aborts the request: rq->timed_out). On return rq->done is
 * set and rq->status holds libs3's verdict.
 */
static void run_once(struct req *rq)
{
	S3RequestContext *ctx = NULL;
	S3Status s = lib.S3_create_request_context(&ctx);
	if (s != S3StatusOK) {
		rq->done = 1;
		rq->status = s;
		return;
	}
	rq->progress_ns = cairn_now_ns();
	issue(rq, ctx);
	uint64_t limit = rq->st->timeout_ns;
	while (!rq->done) {
		int remaining = 0;
		s = lib.S3_runonce_request_context(ctx, &remaining);
		if (s != S3StatusOK) {
			rq->run_err = s;
			break;
		}
		if (rq->done || !remaining)
			break;
		uint64_t idle = cairn_now_ns() - rq->progress_ns;
		if (idle >= limit) {
			rq->timed_out = 1;
			break;
		}
		fd_set rd, wr, ex;
		FD_ZERO(&rd);
		FD_ZERO(&wr);
		FD_ZERO(&ex);
		int maxfd = -1;
		if (lib.S3_get_request_context_fdsets(ctx, &rd, &wr, &ex, &maxfd) != S3StatusOK)
			maxfd = -1;
		int64_t wait_ms = lib.S3_get_request_context_timeout(ctx);
		int64_t left_ms = (int64_t)((limit - idle) / 1000000) + 1;
		if (wait_ms < 0 || wait_ms > left_ms)
			wait_ms = left_ms;
		if (maxfd < 0 && wait_ms > 10)
			wait_ms = 10; /* curl has no socket to wait on yet: poll */
		struct timeval tv = {(time_t)(wait_ms / 1000),
				     (suseconds_t)(wait_ms % 1000) * 1000};
		select(maxfd + 1, &rd, &wr, &ex, &tv); /* EINTR: just go round */
	}
	/* aborts a request still in flight: its complete callback gets Interrupted */
	lib.S3_destroy_request_context(ctx);
	if (!rq->done) { /* cannot happen with libs3 2.0; be safe */
		rq->done = 1;
		rq->status = S3StatusInterrupted;
	}
	if (rq->run_err != S3StatusOK)
		rq->status = rq->run_err;
}

/*
 * Judge a completed attempt: 0, or a negative code with *retry set to the
 * retry class and @p what (@p n bytes) describing the failure.
 */
static int judge(struct req *rq, enum retry_class *retry, char *what, size_t n)
{
	*retry = R_NO;
	if (rq->timed_out) {
		snprintf(what, n, "no response progress for %llu s (server hung?)",
			 (unsigned long long)(rq->st->timeout_ns / 1000000000));
		return -ETIMEDOUT;
	}
	if (rq->cb_err) {
		snprintf(what, n, "%s", rq->cb_msg);
		*retry = rq->cb_err == -EIO ? R_YES : R_NO;
		return rq->cb_err;
	}
	if (rq->status != S3StatusOK) {
		const struct status_map *m = map_status(rq->status);
		*retry = m->retry;
		if (m->retry == R_STALL) {
			uint64_t idle = cairn_now_ns() - rq->progress_ns;
			int stalled = idle >= (uint64_t)(LIBS3_STALL_S - 1) * 1000000000u;
			*retry = stalled ? R_NO : R_YES;
			snprintf(what, n, "%s (%s)",
				 stalled ? "no progress for 15 s, server hung?" : "connection lost",
				 lib.S3_get_status_name(rq->status));
			return stalled ? -ETIMEDOUT : -ECONNRESET;
		}
		snprintf(what, n, "%s (%s%s%s)", m->words, lib.S3_get_status_name(rq->status),
			 rq->detail[0] ? ": " : "", rq->detail);
		return -m->err;
	}
	/* libs3 2.0 reports a body cut short (CURLE_PARTIAL_FILE) as success */
	if ((rq->op == OP_GET || rq->op == OP_RANGE) && rq->have_len &&
	    rq->got != rq->content_len && (rq->content_len || rq->op == OP_RANGE)) {
		snprintf(what, n, "short body: %llu of %llu bytes", (unsigned long long)rq->got,
			 (unsigned long long)rq->content_len);
		*retry = R_YES;
		return -EIO;
	}
	if (rq->op == OP_RANGE && rq->got < rq->dst_len) {
		snprintf(what, n, "object ends %llu bytes into the range of %zu bytes at %llu",
			 (unsigned long long)rq->got, rq->dst_len, (unsigned long long)rq->off);
		return -ERANGE;
	}
	if ((rq->op == OP_HEAD) && !rq->have_len) {
		snprintf(what, n, "response without properties");
		*retry = R_YES;
		return -EIO;
	}
	return 0;
}

/* Sleep before retry number @p attempt (0-based): 0.2 s doubling, capped, jittered. */
static void backoff(unsigned attempt)
{
	uint64_t ms = BACKOFF_FIRST_MS;
	for (unsigned i = 0; i < attempt && ms < BACKOFF_MAX_MS; i++)
		ms *= 2;
	if (ms > BACKOFF_MAX_MS)
		ms = BACKOFF_MAX_MS;
	uint64_t r = cairn_now_ns();
	r ^= r >> 17;
	r *= 0x9e3779b97f4a7c15ull;
	ms = ms * 3 / 4 + (r >> 33) % (ms / 2 + 1); /* 75 % .. 125 % */
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) < 0)
		;
}

/*
 * Run @p rq (initialised but for its outcome) with retries. @p name is the
 * object (or prefix) for messages. Returns 0 or a negative code with a
 * message; rq->status tells the last status.
 */
static int perform(struct req *rq, const char *name)
{
	struct s3_target *st = rq->st;
	for (unsigned attempt = 0;; attempt++) {
		req_reset(rq);
		run_once(rq);
		enum retry_class retry;
		char what[400];
		int rc = judge(rq, &retry, what, sizeof(what));
		if (rc == 0)
			return 0;
		unsigned limit = 0;
		if (retry == R_YES)
			limit = (unsigned)st->retries;
		else if (retry == R_FAST)
			limit = st->retries < FAST_RETRIES ? (unsigned)st->retries : FAST_RETRIES;
		if (attempt >= limit) {
			char tries[48] = "";
			if (attempt)
				snprintf(tries, sizeof(tries), ", after %u attempts", attempt + 1);
			return cairn_error_set(rc, "%s: %s %s: %s%s", st->base.name,
					       op_verb[rq->op], *name ? name : "''", what, tries);
		}
		backoff(attempt);
	}
}

/* Helpers ------------------------------------------------------------- */

/* The key of object @p name: prefix + name into @p key (S3_MAX_KEY_SIZE + 1 bytes). */
static int make_key(struct s3_target *st, const char *verb, const char *name, char *key)
{
	int n = snprintf(key, S3_MAX_KEY_SIZE + 1, "%s%s", st->prefix, name);
	if (n < 0 || n > S3_MAX_KEY_SIZE)
		return cairn_error_set(-ENAMETOOLONG, "%s: %s %s: key longer than %d bytes",
				       st->base.name, verb, name, S3_MAX_KEY_SIZE);
	return 0;
}

static void req_init(struct req *rq, struct s3_target *st, enum op op, const char *key)
{
	memset(rq, 0, sizeof(*rq));
	rq->st = st;
	rq->op = op;
	rq->key = key;
}

/* base64 MD5 of @p data into @p out (25 bytes); "" if MD5 is unavailable (FIPS). */
static void md5_base64(const void *data, size_t len, char *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	out[0] = 0;
	if (EVP_Digest(data, len, md, &mdlen, EVP_md5(), NULL) == 1 && mdlen == 16)
		EVP_EncodeBlock((unsigned char *)out, md, 16);
}

/* Create the bucket unless another thread did since generation @p gen. */
static int make_bucket(struct s3_target *st, unsigned gen)
{
	int rc = 0;
	pthread_mutex_lock(&st->mk_lock);
	if (st->mk_gen == gen) {
		struct req rq;
		req_init(&rq, st, OP_MKBUCKET, NULL);
		rc = perform(&rq, st->bucket);
		if (rc == -EEXIST) /* made meanwhile (by us, or another client) */
			rc = 0;
		if (rc == 0)
			st->mk_gen++;
		req_free(&rq);
	}
	pthread_mutex_unlock(&st->mk_lock);
	return rc;
}

static unsigned mk_gen_of(struct s3_target *st)
{
	pthread_mutex_lock(&st->mk_lock);
	unsigned gen = st->mk_gen;
	pthread_mutex_unlock(&st->mk_lock);
	return gen;
}

/* Ops ----------------------------------------------------------------- */

static int s3_put(cairn_target *t, const char *name, const void *data, size_t len)
{
	struct s3_target *st = st_of(t);
	char key[S3_MAX_KEY_SIZE + 1];
	int rc = make_key(st, "PUT", name, key);
	if (rc < 0)
		return rc;
	if ((uint64_t)len > PUT_MAX)
		return cairn_error_set(-EFBIG,
				       "%s: PUT %s: %zu bytes is more than one S3 PUT carries "
				       "(5 GiB; libs3 2.0 has no multipart upload)",
				       t->name, name, len);
	char md5[32];
	md5_base64(data ? data : "", len, md5);
	struct req rq;
	req_init(&rq, st, OP_PUT, key);
	rq.src = data;
	rq.src_len = len;
	rq.md5 = md5[0] ? md5 : NULL;
	unsigned gen = mk_gen_of(st);
	rc = perform(&rq, name);
	if (rc == -ENOENT && rq.status == S3StatusErrorNoSuchBucket) {
		rc = make_bucket(st, gen);
		if (rc == 0)
			rc = perform(&rq, name);
	}
	req_free(&rq);
	return rc;
}

static int s3_get(cairn_target *t, const char *name, cairn_buf *out)
{
	struct s3_target *st = st_of(t);
	char key[S3_MAX_KEY_SIZE + 1];
	int rc = make_key(st, "GET", name, key);
	if (rc < 0)
		return rc;
	struct req rq;
	req_init(&rq, st, OP_GET, key);
	rq.buf = out;
	rc = perform(&rq, name);
	req_free(&rq);
	return rc;
}

static int s3_head(struct s3_target *st, const char *name, const char *key, uint64_t *size)
{
	struct req rq;
	req_init(&rq, st, OP_HEAD, key);
	int rc = perform(&rq, name);
	if (rc == 0)
		*size = rq.content_len;
	req_free(&rq);
	return rc;
}

static int s3_stat(cairn_target *t, const char *name, uint64_t *size)
{
	struct s3_target *st = st_of(t);
	char key[S3_MAX_KEY_SIZE + 1];
	int rc = make_key(st, "HEAD", name, key);
	if (rc < 0)
		return rc;
	return s3_head(st, name, key, size);
}

static int s3_get_range(cairn_target *t, const char *name, uint64_t off, size_t len, void *out)
{
	struct s3_target *st = st_of(t);
	char key[S3_MAX_KEY_SIZE + 1];
	int rc = make_key(st, "GET", name, key);
	if (rc < 0)
		return rc;
	if (len == 0) { /* S3 has no empty range: check that off lies within the object */
		uint64_t size = 0;
		if ((rc = s3_head(st, name, key, &size)) < 0)
			return rc;
		if (off > size)
			return cairn_error_set(-ERANGE,
					       "%s: GET %s: offset %llu beyond the end (%llu)",
					       t->name, name, (unsigned long long)off,
					       (unsigned long long)size);
		return 0;
	}
	struct req rq;
	req_init(&rq, st, OP_RANGE, key);
	rq.off = off;
	rq.dst = out;
	rq.dst_len = len;
	rc = perform(&rq, name);
	req_free(&rq);
	return rc;
}

static int s3_list(cairn_target *t, const char *prefix, cairn_target_list_cb cb, void *payload)
{
	struct s3_target *st = st_of(t);
	char full[S3_MAX_KEY_SIZE + 1];
	if (snprintf(full, sizeof(full), "%s%s", st->prefix, prefix) > S3_MAX_KEY_SIZE)
		return cairn_error_set(-ENAMETOOLONG, "%s: LIST %s: prefix too long", t->name,
				       prefix);
	size_t plen = strlen(st->prefix);
	char marker[S3_MAX_KEY_SIZE + 1] = "";
	struct req rq;
	req_init(&rq, st, OP_LIST, NULL);
	rq.list_prefix = full;
	rq.marker = marker;
	int rc;
	for (;;) {
		rc = perform(&rq, prefix);
		if (rc < 0) {
			if (rq.status == S3StatusErrorNoSuchBucket) {
				cairn_error_clear();
				rc = 0; /* no bucket yet: nothing stored */
			}
			break;
		}
		for (size_t i = 0; i < rq.nents && rc >= 0; i++) {
			const char *k = rq.ents[i].name;
			if (strncmp(k, full, strlen(full)) || !cairn_target_name_ok(k + plen))
				continue; /* not ours, or not an object name */
			rc = cb(payload, k + plen, rq.ents[i].size);
		}
		if (rc < 0 || !rq.truncated)
			break;
		/* radosgw sends NextMarker; S3 only with a delimiter: then the last key */
		const char *next = rq.next_marker[0] ? rq.next_marker
				 : rq.nents ? rq.ents[rq.nents - 1].name
					    : NULL;
		if (!next || strcmp(next, marker) <= 0) {
			rc = cairn_error_set(-EIO, "%s: LIST %s: truncated page without a marker "
					     "past '%s'", t->name, *prefix ? prefix : "''", marker);
			break;
		}
		snprintf(marker, sizeof(marker), "%s", next);
	}
	req_free(&rq);
	return rc < 0 ? rc : 0;
}

static int s3_del(cairn_target *t, const char *name)
{
	struct s3_target *st = st_of(t);
	char key[S3_MAX_KEY_SIZE + 1];
	int rc = make_key(st, "DELETE", name, key);
	if (rc < 0)
		return rc;
	uint64_t size;
	if ((rc = s3_head(st, name, key, &size)) < 0)
		return rc; /* -ENOENT for a missing object, as the contract wants */
	struct req rq;
	req_init(&rq, st, OP_DEL, key);
	rc = perform(&rq, name);
	req_free(&rq);
	return rc;
}

static void s3_close(cairn_target *t)
{
	struct s3_target *st = st_of(t);
	pthread_mutex_destroy(&st->mk_lock);
	free(st->host);
	free(st->bucket);
	free(st->prefix);
	free(st->access_key);
	if (st->secret_key) {
		explicit_bzero(st->secret_key, strlen(st->secret_key));
		free(st->secret_key);
	}
	free(st->base.name);
	free(st->base.site);
	free(st);
}

/* Opening ------------------------------------------------------------- */

/* A host[:port] of [A-Za-z0-9.-] (or a [v6] literal) and digits. Returns 1 if plausible. */
static int host_ok(const char *h, size_t n)
{
	if (n == 0 || n >= S3_MAX_HOSTNAME_SIZE)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = h[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == ':' || c == '[' || c == ']'))
			return 0;
	}
	return 1;
}

int cairn_target_s3_open(cairn_target **out, const char *endpoint_url, const char *bucket,
			 const char *prefix, const cairn_s3_opts *opts)
{
	if (!out)
		return cairn_error_set(-EINVAL, "s3: no output pointer");
	*out = NULL;
	if (!endpoint_url || !bucket)
		return cairn_error_set(-EINVAL, "s3: no endpoint or bucket");
	S3Protocol proto;
	const char *host;
	if (!strncmp(endpoint_url, "http://", 7)) {
		proto = S3ProtocolHTTP;
		host = endpoint_url + 7;
	} else if (!strncmp(endpoint_url, "https://", 8)) {
		proto = S3ProtocolHTTPS;
		host = endpoint_url + 8;
	} else {
		return cairn_error_set(-EINVAL,
				       "s3: endpoint '%s' must start with http:// or https://",
				       endpoint_url);
	}
	size_t hlen = strlen(host);
	while (hlen && host[hlen - 1] == '/')
		hlen--;
	if (!host_ok(host, hlen))
		return cairn_error_set(-EINVAL, "s3: endpoint '%s': bad host[:port]", endpoint_url);
	pthread_once(&lib_once, load_libs3);
	if (lib_rc < 0)
		return cairn_error_set(lib_rc, "s3:%s/%s: %s; install %s", endpoint_url, bucket,
				       lib_err, S3_PACKAGE);
	S3Status bs = lib.S3_validate_bucket_name(bucket, S3UriStylePath);
	if (bs != S3StatusOK)
		return cairn_error_set(-EINVAL, "s3: bucket '%s': %s", bucket,
				       lib.S3_get_status_name(bs));
	size_t plen = prefix ? strlen(prefix) : 0;
	while (plen && prefix[plen - 1] == '/')
		plen--;
	char pfx[S3_MAX_KEY_SIZE + 2];
	if (plen > S3_MAX_KEY_SIZE - 2)
		return cairn_error_set(-EINVAL, "s3: prefix longer than %d bytes", S3_MAX_KEY_SIZE);
	memcpy(pfx, prefix ? prefix : "", plen);
	pfx[plen] = 0;
	if (plen && !cairn_target_name_ok(pfx))
		return cairn_error_set(-EINVAL,
				       "s3: prefix '%s' is not [A-Za-z0-9._-] segments joined "
				       "by '/'",
				       pfx);
	const char *ak = opts && opts->access_key ? opts->access_key : getenv("AWS_ACCESS_KEY_ID");
	const char *sk = opts && opts->secret_key ? opts->secret_key
						  : getenv("AWS_SECRET_ACCESS_KEY");
	if (!ak || !*ak || !sk || !*sk)
		return cairn_error_set(-EINVAL,
				       "s3: no credentials (set AWS_ACCESS_KEY_ID and "
				       "AWS_SECRET_ACCESS_KEY)");

	pthread_once(&init_once, init_libs3);
	if (init_status != S3StatusOK)
		return cairn_error_set(-EIO, "s3: cannot initialise libs3: %s",
				       lib.S3_get_status_name(init_status));

	struct s3_target *st = cairn_xcalloc(1, sizeof(*st));
	st->base.version = CAIRN_TARGET_VERSION;
	st->base.kind = "s3";
	st->host = cairn_xmalloc(hlen + 1);
	memcpy(st->host, host, hlen);
	st->host[hlen] = 0;
	st->bucket = cairn_xstrdup(bucket);
	st->prefix = cairn_xmalloc(plen + 2);
	memcpy(st->prefix, pfx, plen);
	memcpy(st->prefix + plen, plen ? "/" : "", plen ? 2 : 1);
	st->access_key = cairn_xstrdup(ak);
	st->secret_key = cairn_xstrdup(sk);
	unsigned tmo = opts && opts->timeout_s ? opts->timeout_s : DEFAULT_TIMEOUT_S;
	st->timeout_ns = (uint64_t)tmo * 1000000000u;
	st->retries = !opts || opts->retries == 0 ? DEFAULT_RETRIES
		    : opts->retries < 0		  ? 0
						  : opts->retries;
	pthread_mutex_init(&st->mk_lock, NULL);
	st->bc.hostName = st->host;
	st->bc.bucketName = st->bucket;
	st->bc.protocol = proto;
	st->bc.uriStyle = S3UriStylePath;
	st->bc.accessKeyId = st->access_key;
	st->bc.secretAccessKey = st->secret_key;

	size_t nlen = hlen + strlen(bucket) + plen + 32;
	st->base.name = cairn_xmalloc(nlen);
	snprintf(st->base.name, nlen, "s3:%s://%s/%s%s%s",
		 proto == S3ProtocolHTTP ? "http" : "https", st->host, bucket, plen ? "/" : "",
		 pfx);

	st->base.put = s3_put;
	st->base.get = s3_get;
	st->base.get_range = s3_get_range;
	st->base.stat = s3_stat;
	st->base.list = s3_list;
	st->base.del = s3_del;
	st->base.close = s3_close;
	*out = &st->base;
	return 0;
}

int cairn_target_s3_open_url(cairn_target **out, const char *url, const cairn_s3_opts *opts)
{
	if (!out)
		return cairn_error_set(-EINVAL, "s3: no output pointer");
	*out = NULL;
	const char *p = url ? strstr(url, "://") : NULL;
	if (!p)
		return cairn_error_set(-EINVAL,
				       "malformed S3 address '%s' (expected "
				       "s3:http://HOST:PORT/BUCKET[/PREFIX])",
				       url ? url : "");
	const char *hs = p + 3;
	const char *bs = strchr(hs, '/');
	if (!bs || bs == hs || !bs[1] || bs[1] == '/')
		return cairn_error_set(-EINVAL,
				       "malformed S3 address '%s' (expected "
				       "s3:http://HOST:PORT/BUCKET[/PREFIX])",
				       url);
	bs++;
	const char *be = strchr(bs, '/');
	size_t blen = be ? (size_t)(be - bs) : strlen(bs);
	char endpoint[S3_MAX_HOSTNAME_SIZE + 16], bucket[S3_MAX_BUCKET_NAME_SIZE + 1];
	size_t elen = (size_t)(bs - 1 - url);
	if (elen >= sizeof(endpoint) || blen >= sizeof(bucket))
		return cairn_error_set(-EINVAL, "malformed S3 address '%s' (too long)", url);
	memcpy(endpoint, url, elen);
	endpoint[elen] = 0;
	memcpy(bucket, bs, blen);
	bucket[blen] = 0;
	return cairn_target_s3_open(out, endpoint, bucket, be ? be + 1 : "", opts);
}

#else /* !CAIRN_HAVE_S3: built without libs3 */

int cairn_target_s3_open(cairn_target **out, const char *endpoint_url, const char *bucket,
			 const char *prefix, const cairn_s3_opts *opts)
{
	if (out)
		*out = NULL;
	return cairn_error_set(-EOPNOTSUPP,
			       "s3: %s/%s: cairn was built without libs3 (install libs3-dev and "
			       "rebuild)",
			       endpoint_url ? endpoint_url : "", bucket ? bucket : "");
}

int cairn_target_s3_open_url(cairn_target **out, const char *url, const cairn_s3_opts *opts)
{
	if (out)
		*out = NULL;
	return cairn_error_set(-EOPNOTSUPP,
			       "s3:%s: cairn was built without libs3 (install libs3-dev and "
			       "rebuild)",
			       url ? url : "");
}

#endif
