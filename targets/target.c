/*
 * target.c - the checked cairn_target_* wrappers every caller goes through,
 * object-name validation, and cairn_target_open(), which turns a repository
 * address into a target by dispatching on its scheme.
 *
 * The wrappers validate arguments before a backend sees them, keep the
 * per-target counters (atomically: targets are shared between threads) and
 * guarantee that a failure leaves a message naming the target and the object.
 * A backend's own message, if it set one, is kept untouched.
 */
#include "targets/target.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NAME_MAX_LEN 1024

/* Increment a counter of t->stats; relaxed: the counters order nothing. */
#define STAT_ADD(t, field, n) __atomic_fetch_add(&(t)->stats.field, (uint64_t)(n), __ATOMIC_RELAXED)

/* True for a byte allowed in a name segment: [A-Za-z0-9._-]. */
static int name_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

/*
 * Validate the first @p n bytes of @p s as an object name: 1..1024 bytes,
 * segments of name_char_ok() bytes joined by single '/', no empty, "." or ".."
 * segment (hence no leading or trailing '/'). Returns 1 if valid.
 */
static int name_ok_n(const char *s, size_t n)
{
	if (n == 0 || n > NAME_MAX_LEN)
		return 0;
	size_t seg = 0; /* start of the current segment */
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '/') {
			if (!name_char_ok(s[i]))
				return 0;
			continue;
		}
		size_t len = i - seg;
		if (len == 0)
			return 0;
		if (s[seg] == '.' && (len == 1 || (len == 2 && s[seg + 1] == '.')))
			return 0;
		seg = i + 1;
	}
	return 1;
}

int cairn_target_name_ok(const char *name)
{
	if (!name)
		return 0;
	size_t n = strnlen(name, NAME_MAX_LEN + 1);
	return n <= NAME_MAX_LEN && name_ok_n(name, n);
}

/* A list prefix is "" or a valid name followed by '/'. Returns 1 if valid. */
static int prefix_ok(const char *prefix)
{
	if (!prefix)
		return 0;
	size_t n = strnlen(prefix, NAME_MAX_LEN + 2);
	if (n == 0)
		return 1;
	return n <= NAME_MAX_LEN + 1 && prefix[n - 1] == '/' && name_ok_n(prefix, n - 1);
}

/* The name as printed in a message: NULL and "" are made visible. */
static const char *shown(const char *name)
{
	return !name ? "(null)" : *name ? name : "''";
}

/*
 * Common entry checks: a target, a valid name (for ops on one object) and the
 * op present. Clears the thread's message so that finish() can tell whether
 * the backend set one. Returns 0 or a negative code with its message.
 */
static int enter(cairn_target *t, const char *op, const char *name, int has_op)
{
	if (!t)
		return cairn_error_set(-EINVAL, "target %s%s%s: no target", op, name ? " " : "",
				       name ? name : "");
	if (name && !cairn_target_name_ok(name))
		return cairn_error_set(-EINVAL, "%s: %s: invalid object name '%.200s'", t->name, op,
				       name);
	if (!has_op)
		return cairn_error_set(-EOPNOTSUPP, "%s: %s%s%s: not supported by %s targets",
				       t->name, op, name ? " " : "", name ? name : "",
				       t->kind ? t->kind : "these");
	return 0;
}

/*
 * Account for the outcome @p rc of @p op on @p obj: a failure is counted in
 * stats.errors unless it is -ENOENT (a missing object is an answer, not a
 * fault of the store) or -EINVAL (a request the backend refused, e.g. a name
 * it reserves), and gets a message naming target and object unless the
 * backend set one since @p seq (cairn_error_seq() before the call). Nothing is
 * cleared on success, so a cleanup call (deleting a lock after a failure)
 * never wipes the message of the failure the caller is about to report.
 * Returns @p rc.
 */
static int finish(cairn_target *t, int rc, const char *op, const char *obj, unsigned seq)
{
	if (rc >= 0)
		return rc;
	if (rc != -ENOENT && rc != -EINVAL)
		STAT_ADD(t, errors, 1);
	if (cairn_error_seq() == seq)
		cairn_error_set(rc, "%s: %s %s: %s", t->name, op, shown(obj), strerror(-rc));
	return rc;
}

int cairn_target_put(cairn_target *t, const char *name, const void *data, size_t len)
{
	int rc = enter(t, "put", name ? name : "", t && t->put);
	if (rc < 0)
		return rc;
	if (!data && len)
		return cairn_error_set(-EINVAL, "%s: put %s: no data", t->name, name);
	unsigned seq = cairn_error_seq();
	rc = t->put(t, name, data, len);
	if (rc >= 0) {
		STAT_ADD(t, puts, 1);
		STAT_ADD(t, bytes_written, len);
	}
	return finish(t, rc, "put", name, seq);
}

int cairn_target_tmpfile(cairn_target *t)
{
	if (!t || !t->tmpfile)
		return -EOPNOTSUPP;
	return t->tmpfile(t);
}

int cairn_target_link_tmpfile(cairn_target *t, const char *name, int fd, uint64_t len)
{
	int rc = enter(t, "put", name ? name : "", t && t->link_tmpfile);
	if (rc < 0)
		return rc;
	unsigned seq = cairn_error_seq();
	rc = t->link_tmpfile(t, name, fd, len);
	if (rc >= 0) {
		STAT_ADD(t, puts, 1);
		STAT_ADD(t, bytes_written, len);
	}
	return finish(t, rc, "put", name, seq);
}

int cairn_target_get(cairn_target *t, const char *name, cairn_buf *out)
{
	int rc = enter(t, "get", name ? name : "", t && t->get);
	if (rc < 0)
		return rc;
	if (!out || out->len != 0)
		return cairn_error_set(-EINVAL, "%s: get %s: output buffer %s", t->name, name,
				       out ? "not empty" : "missing");
	unsigned seq = cairn_error_seq();
	rc = t->get(t, name, out);
	if (rc >= 0) {
		STAT_ADD(t, gets, 1);
		STAT_ADD(t, bytes_read, out->len);
	} else {
		out->len = 0; /* no partial objects */
	}
	return finish(t, rc, "get", name, seq);
}

int cairn_target_get_range(cairn_target *t, const char *name, uint64_t off, size_t len, void *out)
{
	int rc = enter(t, "get_range", name ? name : "", t && t->get_range);
	if (rc < 0)
		return rc;
	if (!out && len)
		return cairn_error_set(-EINVAL, "%s: get_range %s: no output buffer", t->name,
				       name);
	if (off > UINT64_MAX - len)
		return cairn_error_set(-ERANGE, "%s: get_range %s: range %llu+%zu overflows",
				       t->name, name, (unsigned long long)off, len);
	unsigned seq = cairn_error_seq();
	rc = t->get_range(t, name, off, len, out);
	if (rc >= 0) {
		STAT_ADD(t, gets, 1);
		STAT_ADD(t, bytes_read, len);
	}
	return finish(t, rc, "get_range", name, seq);
}

int cairn_target_stat(cairn_target *t, const char *name, uint64_t *size)
{
	int rc = enter(t, "stat", name ? name : "", t && t->stat);
	if (rc < 0)
		return rc;
	if (!size)
		return cairn_error_set(-EINVAL, "%s: stat %s: no size pointer", t->name, name);
	unsigned seq = cairn_error_seq();
	return finish(t, t->stat(t, name, size), "stat", name, seq);
}

/* Wraps the caller's list callback to tell its stop codes from store failures. */
struct list_ctx {
	cairn_target_list_cb cb;
	void *payload;
	int stopped; /* the callback returned a negative code */
};

static int list_tramp(void *payload, const char *name, uint64_t size)
{
	struct list_ctx *c = payload;
	int rc = c->cb(c->payload, name, size);
	if (rc < 0)
		c->stopped = 1;
	return rc;
}

int cairn_target_list(cairn_target *t, const char *prefix, cairn_target_list_cb cb, void *payload)
{
	int rc = enter(t, "list", NULL, t && t->list);
	if (rc < 0)
		return rc;
	if (!prefix_ok(prefix))
		return cairn_error_set(-EINVAL,
				       "%s: list: invalid prefix '%.200s' (must be \"\" or end "
				       "in '/')",
				       t->name, shown(prefix));
	if (!cb)
		return cairn_error_set(-EINVAL, "%s: list %s: no callback", t->name, shown(prefix));
	struct list_ctx c = {cb, payload, 0};
	unsigned seq = cairn_error_seq();
	rc = t->list(t, prefix, list_tramp, &c);
	if (rc >= 0)
		STAT_ADD(t, lists, 1);
	if (rc < 0 && c.stopped)
		return rc; /* the callback's code and message, not a store failure */
	return finish(t, rc, "list", prefix, seq);
}

int cairn_target_del(cairn_target *t, const char *name)
{
	int rc = enter(t, "del", name ? name : "", t && t->del);
	if (rc < 0)
		return rc;
	unsigned seq = cairn_error_seq();
	rc = t->del(t, name);
	if (rc >= 0)
		STAT_ADD(t, dels, 1);
	return finish(t, rc, "del", name, seq);
}

void cairn_target_close(cairn_target *t)
{
	if (t && t->close)
		t->close(t);
}

/* Scheme dispatch ------------------------------------------------------- */

/* "local:/path" (or a bare "/path"): @p rest is the path after the scheme. */
static int open_local(cairn_target **out, const char *rest, const char *address,
		      const cairn_target_open_opts *o)
{
	(void)o;
	if (rest[0] != '/')
		return cairn_error_set(-EINVAL,
				       "malformed repository address '%s' (local path must be "
				       "absolute: local:/path)",
				       address);
	return cairn_target_local_open(out, rest);
}

/*
 * "rados:POOL[/NAMESPACE]": the namespace is everything after the first '/'
 * ("" if none). The Ceph config is o->ceph_conf, else $CEPH_CONF, else
 * /etc/ceph/ceph.conf.
 */
static int open_rados(cairn_target **out, const char *rest, const char *address,
		      const cairn_target_open_opts *o)
{
	const char *slash = strchr(rest, '/');
	size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
	char pool[256];
	if (n == 0 || n >= sizeof(pool))
		return cairn_error_set(-EINVAL,
				       "malformed repository address '%s' (expected "
				       "rados:POOL[/NAMESPACE])",
				       address);
	memcpy(pool, rest, n);
	pool[n] = 0;
	const char *conf = o && o->ceph_conf && *o->ceph_conf ? o->ceph_conf : getenv("CEPH_CONF");
	if (!conf || !*conf)
		conf = "/etc/ceph/ceph.conf";
	cairn_rados_opts ro = {0, 0, NULL};
	ro.timeout_s = o ? o->timeout_s : 0;
	return cairn_target_rados_open(out, pool, slash ? slash + 1 : "", conf, &ro);
}

/* "s3:http://HOST:PORT/BUCKET[/PREFIX]" (or https): see s3.c. */
static int open_s3(cairn_target **out, const char *rest, const char *address,
		   const cairn_target_open_opts *o)
{
	(void)address;
	cairn_s3_opts so = {NULL, NULL, 0, 0};
	if (o) {
		so.access_key = o->access_key;
		so.secret_key = o->secret_key;
		so.timeout_s = o->timeout_s;
	}
	return cairn_target_s3_open_url(out, rest, &so);
}

/*
 * "fault:OPTS:ADDRESS" (a test facility, see target.h): OPTS is a comma list
 * of delay=MS, fail_after=N and corrupt; ADDRESS is opened with the same
 * settings and wrapped by cairn_target_fault_wrap().
 */
static int open_fault(cairn_target **out, const char *rest, const char *address,
		      const cairn_target_open_opts *o)
{
	const char *colon = strchr(rest, ':');
	if (!colon || colon == rest || !colon[1])
		return cairn_error_set(-EINVAL,
				       "malformed test address '%s' (expected "
				       "fault:delay=MS[,fail_after=N][,corrupt]:ADDRESS)",
				       address);
	cairn_fault_opts fo = {0, -1, 0, 0, 0, 0};
	char opts[256];
	size_t n = (size_t)(colon - rest);
	if (n >= sizeof(opts))
		return cairn_error_set(-EINVAL, "malformed test address '%s' (options too long)",
				       address);
	memcpy(opts, rest, n);
	opts[n] = 0;
	char *save = NULL;
	for (char *tok = strtok_r(opts, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "corrupt")) {
			fo.corrupt_reads = 1;
			continue;
		}
		int delay = !strncmp(tok, "delay=", 6);
		const char *num = delay ? tok + 6 : !strncmp(tok, "fail_after=", 11) ? tok + 11 : NULL;
		char *end = NULL;
		errno = 0;
		unsigned long long v = num ? strtoull(num, &end, 10) : 0;
		if (!num || !*num || *end || errno || *num == '-' || v > 3600000)
			return cairn_error_set(-EINVAL,
					       "malformed test address '%s' ('%s': options are "
					       "delay=MS, fail_after=N, corrupt)",
					       address, tok);
		if (delay) {
			fo.delay_ms = (unsigned)v;
		} else {
			fo.fail_errno = EIO;
			fo.fail_after = (int64_t)v;
		}
	}
	cairn_target *inner;
	int rc = cairn_target_open_with(&inner, colon + 1, o);
	if (rc < 0)
		return rc;
	return cairn_target_fault_wrap(out, inner, &fo);
}

/*
 * Known schemes. To add one, append {"scheme", opener}: the opener gets the
 * text after "scheme:", the whole address (for messages) and the settings,
 * and returns 0 with *out set or a negative code with a message.
 */
static const struct scheme {
	const char *name;
	int (*open)(cairn_target **out, const char *rest, const char *address,
		    const cairn_target_open_opts *o);
} schemes[] = {
	{"local", open_local},
	{"rados", open_rados},
	{"s3", open_s3},
	{"fault", open_fault},
};

int cairn_target_open_with(cairn_target **out, const char *address,
			   const cairn_target_open_opts *o)
{
	if (!out || !address)
		return cairn_error_set(-EINVAL, "no repository address");
	*out = NULL;
	if (address[0] == '/')
		return open_local(out, address, address, o);
	const char *colon = strchr(address, ':');
	const char *slash = strchr(address, '/');
	if (colon && (!slash || colon < slash)) {
		size_t n = (size_t)(colon - address);
		for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
			if (strlen(schemes[i].name) == n && !memcmp(address, schemes[i].name, n))
				return schemes[i].open(out, colon + 1, address, o);
	} else if (*address) {
		/* a relative directory, as restic users type it: made absolute now */
		char cwd[4096], abs[8192];
		if (!getcwd(cwd, sizeof(cwd)))
			return cairn_error_set(-errno, "cannot resolve '%s': %s", address,
					       strerror(errno));
		snprintf(abs, sizeof(abs), "%s/%s", cwd, address);
		return open_local(out, abs, address, o);
	}
	return cairn_error_set(-EINVAL,
			       "unknown repository address '%s' (expected /path or local:/path)",
			       address);
}

int cairn_target_open(cairn_target **out, const char *address)
{
	return cairn_target_open_with(out, address, NULL);
}

/* Replica-aware helpers that also work on plain targets ---------------------- */

unsigned cairn_target_ncopies(cairn_target *t)
{
	return t && t->ncopies ? t->ncopies(t) : 1;
}

int cairn_target_get_range_copy(cairn_target *t, unsigned copy, const char *name, uint64_t off,
				size_t len, void *out)
{
	if (t && t->get_range_copy) {
		unsigned seq = cairn_error_seq();
		int rc = t->get_range_copy(t, copy, name, off, len, out);
		if (rc >= 0) {
			STAT_ADD(t, gets, 1);
			STAT_ADD(t, bytes_read, len);
		}
		return finish(t, rc, "get_range", name, seq);
	}
	if (copy != 0)
		return cairn_error_set(-ENOENT, "%s: no copy %u", t ? t->name : "?", copy);
	return cairn_target_get_range(t, name, off, len, out);
}

void cairn_target_report_bad(cairn_target *t, unsigned copy, const char *name)
{
	if (t && t->report_bad)
		t->report_bad(t, copy, name);
}


/* Listings collected whole ------------------------------------------------- */

static int listing_add(void *payload, const char *name, uint64_t size)
{
	cairn_listing *l = payload;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->names = cairn_xrealloc(l->names, l->cap * sizeof(char *));
		l->sizes = cairn_xrealloc(l->sizes, l->cap * sizeof(uint64_t));
	}
	l->names[l->n] = cairn_xstrdup(name);
	l->sizes[l->n++] = size;
	return 0;
}

static int listing_sorted(const cairn_listing *l)
{
	for (size_t i = 1; i < l->n; i++)
		if (strcmp(l->names[i - 1], l->names[i]) > 0)
			return 0;
	return 1;
}

/* Insertion into sorted order (backends already list sorted; this is the fallback). */
static void listing_sort(cairn_listing *l)
{
	for (size_t i = 1; i < l->n; i++) {
		char *nm = l->names[i];
		uint64_t sz = l->sizes[i];
		size_t j = i;
		for (; j > 0 && strcmp(l->names[j - 1], nm) > 0; j--) {
			l->names[j] = l->names[j - 1];
			l->sizes[j] = l->sizes[j - 1];
		}
		l->names[j] = nm;
		l->sizes[j] = sz;
	}
}

int cairn_target_list_all(cairn_target *t, const char *prefix, cairn_listing *out)
{
	int rc = cairn_target_list(t, prefix, listing_add, out);
	if (rc == 0 && !listing_sorted(out))
		listing_sort(out);
	return rc;
}

long cairn_listing_find(const cairn_listing *l, const char *name)
{
	size_t lo = 0, hi = l->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(l->names[mid], name);
		if (!c)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

void cairn_listing_free(cairn_listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->names[i]);
	free(l->names);
	free(l->sizes);
	memset(l, 0, sizeof(*l));
}
