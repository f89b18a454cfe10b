/*
 * replica.c - the replica set: one target made of several, far apart.
 *
 * DESIGN
 * Writes go to every member in parallel (one thread per extra member) and
 * count once `min_copies` members confirm; every member that failed, or was
 * skipped because it is cooling down after a failure, gets a line in the
 * repair journal, and `cairn repair` later copies what it missed from a good
 * member. A member that fails with a connection or timeout error is skipped
 * for `cooldown_s`, so a dead site costs one timeout, not one per object.
 *
 * Reads go to the members in preference order (the configuration lists the
 * nearest first), healthy ones before cooling-down ones, and fail over on any
 * error. A member that lacks an object another member has is journaled.
 * Corruption is found by the caller (only it can authenticate data): it reads
 * a given copy with get_range_copy and reports a bad one with report_bad,
 * which journals the copy for repair. The copy numbers of one such walk (copy
 * 0, 1, 2 ... by one thread) keep the preference order taken at copy 0, even
 * if a member fails meanwhile and starts its cool-down, so no copy is skipped
 * and report_bad and cairn_target_copy_name() name the member that served it.
 *
 * Listings are the union over the healthy members, so objects a lagging
 * member missed are still seen.
 *
 * Journal lines: "<unix time> <missing|bad|del> <member name> <object name>\n",
 * appended with O_APPEND (each line one write, so concurrent writers do not
 * interleave).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "targets/target.h"

typedef struct member {
	cairn_target *t;
	_Atomic int64_t down_until; /* ns (monotonic); 0 = healthy */
} member;

typedef struct replica {
	cairn_target parent;
	member *m;
	size_t n;
	unsigned min_copies;
	int64_t cooldown_ns;
	int journal_fd;
	pthread_mutex_t jmu;
} replica;

static replica *R(cairn_target *t)
{
	return (replica *)t;
}

static int64_t now_ns(void)
{
	return (int64_t)cairn_now_ns();
}

static int is_outage(int rc)
{
	return cairn_err_retryable(rc) || rc == -EIO || rc == -ENETDOWN || rc == -EHOSTDOWN;
}

static void note_result(replica *r, size_t i, int rc)
{
	if (rc >= 0 || rc == -ENOENT)
		atomic_store(&r->m[i].down_until, 0);
	else if (is_outage(rc))
		atomic_store(&r->m[i].down_until, now_ns() + r->cooldown_ns);
}

static int healthy(replica *r, size_t i)
{
	int64_t d = atomic_load(&r->m[i].down_until);
	return d == 0 || d < now_ns();
}

static void journal(replica *r, const char *what, size_t i, const char *name)
{
	if (r->journal_fd < 0)
		return;
	char line[1400];
	int n = snprintf(line, sizeof(line), "%lld %s %s %s\n", (long long)time(NULL), what,
			 r->m[i].t->name, name);
	if (n > 0 && (size_t)n < sizeof(line)) {
		pthread_mutex_lock(&r->jmu);
		ssize_t w = write(r->journal_fd, line, (size_t)n);
		(void)w;
		pthread_mutex_unlock(&r->jmu);
	}
}

/* Preference order: healthy members first, each group in configured order. */
static size_t order(replica *r, size_t *idx)
{
	size_t k = 0;
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < r->n; i++)
			if (healthy(r, i) == !pass)
				idx[k++] = i;
	return k;
}

/* --- put ------------------------------------------------------------------------ */

typedef struct putjob {
	replica *r;
	size_t i;
	const char *name;
	const void *data;
	size_t len;
	int rc;
	char msg[CAIRN_ERRMSG_MAX];
	pthread_t th;
	int started;
} putjob;

static void *put_one(void *arg)
{
	putjob *j = arg;
	cairn_error_clear();
	j->rc = cairn_target_put(j->r->m[j->i].t, j->name, j->data, j->len);
	if (j->rc < 0)
		snprintf(j->msg, sizeof(j->msg), "%s", cairn_error_last());
	note_result(j->r, j->i, j->rc);
	return NULL;
}

static int rep_put(cairn_target *t, const char *name, const void *data, size_t len)
{
	replica *r = R(t);
	putjob *j = cairn_xcalloc(r->n, sizeof(*j));
	size_t ok = 0, skipped = 0;
	int first_err = 0;
	for (size_t i = 0; i < r->n; i++) {
		j[i] = (putjob){.r = r, .i = i, .name = name, .data = data, .len = len};
		if (!healthy(r, i)) {
			j[i].rc = -EHOSTDOWN;
			snprintf(j[i].msg, sizeof(j[i].msg), "%s: skipped (cooling down after a failure)",
				 r->m[i].t->name);
			skipped++;
			continue;
		}
		if (pthread_create(&j[i].th, NULL, put_one, &j[i]) == 0)
			j[i].started = 1;
		else
			put_one(&j[i]);
	}
	for (size_t i = 0; i < r->n; i++)
		if (j[i].started)
			pthread_join(j[i].th, NULL);
	char msg[CAIRN_ERRMSG_MAX] = "";
	size_t mo = 0;
	for (size_t i = 0; i < r->n; i++) {
		if (j[i].rc >= 0) {
			ok++;
			continue;
		}
		if (!first_err)
			first_err = j[i].rc;
		journal(r, "missing", i, name);
		if (mo < sizeof(msg) - 1)
			mo += (size_t)snprintf(msg + mo, sizeof(msg) - mo, "%s%s", mo ? "; " : "",
					       j[i].msg);
	}
	free(j);
	(void)skipped;
	if (ok >= r->min_copies)
		return 0;
	return cairn_error_set(first_err ? first_err : -EIO,
			       "%s: put %s: only %zu of %zu copies written, %u required: %s", t->name,
			       name, ok, r->n, r->min_copies, msg);
}

/* --- reads ------------------------------------------------------------------------ */

/*
 * The preference order a reader walks copy by copy (cairn_target_get_range_copy
 * with copy 0, 1, 2 ...): taken when the thread asks for copy 0 and kept for its
 * later copies and report_bad. Recomputing it per call would let a member whose
 * failure sends it into its cool-down meanwhile reorder the members under the
 * reader, which would then skip one copy, read another twice, or journal the
 * wrong member as bad.
 */
static _Thread_local struct {
	const replica *r;
	size_t k;
	size_t idx[64];
} walk;

/* The member serving copy @p copy for this thread (see walk), or -1. */
static long copy_member(replica *r, unsigned copy, int fresh)
{
	if (fresh || walk.r != r || walk.k != r->n) {
		walk.k = order(r, walk.idx);
		walk.r = r;
	}
	return copy < walk.k ? (long)walk.idx[copy] : -1;
}

static int rep_get_range_copy(cairn_target *t, unsigned copy, const char *name, uint64_t off,
			      size_t len, void *out)
{
	replica *r = R(t);
	long i = copy_member(r, copy, copy == 0);
	if (i < 0)
		return cairn_error_set(-ENOENT, "%s: no copy %u of %s", t->name, copy, name);
	int rc = cairn_target_get_range(r->m[i].t, name, off, len, out);
	note_result(r, (size_t)i, rc);
	return rc;
}

static unsigned rep_ncopies(cairn_target *t)
{
	return (unsigned)R(t)->n;
}

static void rep_report_bad(cairn_target *t, unsigned copy, const char *name)
{
	replica *r = R(t);
	long i = copy_member(r, copy, 0);
	if (i >= 0)
		journal(r, "bad", (size_t)i, name);
}

/* Try each member in preference order; journal members that lack the object. */
#define FAILOVER(CALL)                                                                            \
	do {                                                                                      \
		replica *r = R(t);                                                                \
		size_t idx[64], k = order(r, idx);                                                \
		int rc = -ENOENT;                                                                 \
		char first[CAIRN_ERRMSG_MAX] = "";                                                \
		size_t missing[64], nmiss = 0;                                                    \
		for (size_t q = 0; q < k; q++) {                                                  \
			size_t i = idx[q];                                                        \
			cairn_target *m = r->m[i].t;                                              \
			cairn_error_clear();                                                      \
			rc = (CALL);                                                              \
			note_result(r, i, rc);                                                    \
			if (rc >= 0) {                                                            \
				for (size_t x = 0; x < nmiss; x++)                                \
					journal(r, "missing", missing[x], name);                  \
				return rc;                                                        \
			}                                                                         \
			if (rc == -ENOENT)                                                        \
				missing[nmiss++] = i;                                             \
			if (!first[0])                                                            \
				snprintf(first, sizeof(first), "%s", cairn_error_last());         \
		}                                                                                 \
		if (nmiss == k)                                                                   \
			return cairn_error_set(-ENOENT, "%s: %s: no such object on any member",  \
					       t->name, name);                                    \
		return cairn_error_set(rc, "%s: %s: no member could serve it (%s)", t->name,     \
				       name, first);                                              \
	} while (0)

static int rep_get(cairn_target *t, const char *name, cairn_buf *out)
{
	FAILOVER((out->len = 0, cairn_target_get(m, name, out)));
}

static int rep_get_range(cairn_target *t, const char *name, uint64_t off, size_t len, void *out)
{
	FAILOVER(cairn_target_get_range(m, name, off, len, out));
}

static int rep_stat(cairn_target *t, const char *name, uint64_t *size)
{
	FAILOVER(cairn_target_stat(m, name, size));
}

/* --- list, del ------------------------------------------------------------------- */

typedef struct entry {
	char *name;
	uint64_t size;
} entry;

typedef struct entries {
	entry *v;
	size_t n, cap;
} entries;

static int collect(void *payload, const char *name, uint64_t size)
{
	entries *e = payload;
	if (e->n == e->cap) {
		e->cap = e->cap ? e->cap * 2 : 256;
		e->v = cairn_xrealloc(e->v, e->cap * sizeof(entry));
	}
	e->v[e->n].name = cairn_xstrdup(name);
	e->v[e->n++].size = size;
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

static int rep_list(cairn_target *t, const char *prefix, cairn_target_list_cb cb, void *payload)
{
	replica *r = R(t);
	entries e = {0};
	size_t listed = 0;
	int rc = 0, last_err = 0;
	char err[CAIRN_ERRMSG_MAX] = "";
	for (size_t i = 0; i < r->n; i++) {
		if (!healthy(r, i))
			continue;
		cairn_error_clear();
		int lr = cairn_target_list(r->m[i].t, prefix, collect, &e);
		note_result(r, i, lr);
		if (lr < 0) {
			last_err = lr;
			snprintf(err, sizeof(err), "%s", cairn_error_last());
			continue;
		}
		listed++;
	}
	if (!listed) {
		rc = cairn_error_set(last_err ? last_err : -EIO, "%s: list %s: no member answered (%s)",
				     t->name, prefix, err);
	} else {
		if (e.n)
			qsort(e.v, e.n, sizeof(entry), cmp_entry);
		for (size_t i = 0; i < e.n && rc == 0; i++)
			if (i == 0 || strcmp(e.v[i].name, e.v[i - 1].name))
				rc = cb(payload, e.v[i].name, e.v[i].size);
	}
	for (size_t i = 0; i < e.n; i++)
		free(e.v[i].name);
	free(e.v);
	return rc;
}

static int rep_del(cairn_target *t, const char *name)
{
	replica *r = R(t);
	size_t ok = 0, gone = 0;
	int first = 0;
	char msg[CAIRN_ERRMSG_MAX] = "";
	for (size_t i = 0; i < r->n; i++) {
		cairn_error_clear();
		int rc = healthy(r, i) ? cairn_target_del(r->m[i].t, name) : -EHOSTDOWN;
		note_result(r, i, rc);
		if (rc >= 0)
			ok++;
		else if (rc == -ENOENT)
			gone++;
		else {
			journal(r, "del", i, name);
			if (!first) {
				first = rc;
				snprintf(msg, sizeof(msg), "%s", cairn_error_last());
			}
		}
	}
	if (!ok && !first)
		return cairn_error_set(-ENOENT, "%s: del %s: no such object on any member", t->name,
				       name);
	/* a deletion a member missed is finished by repair; the object is gone for readers
	 * only once every member dropped it, which is what repair ensures */
	if (first && !ok && !gone)
		return cairn_error_set(first, "%s: del %s: %s", t->name, name, msg);
	return 0;
}

static void rep_close(cairn_target *t)
{
	replica *r = R(t);
	for (size_t i = 0; i < r->n; i++)
		cairn_target_close(r->m[i].t);
	if (r->journal_fd >= 0)
		close(r->journal_fd);
	pthread_mutex_destroy(&r->jmu);
	free(r->m);
	free(t->name);
	free(t->site);
	free(r);
}

int cairn_target_replica_open(cairn_target **out, cairn_target *const *members, size_t n,
			      const cairn_replica_opts *opts)
{
	cairn_replica_opts def = {0, NULL, 0};
	*out = NULL;
	if (!opts)
		opts = &def;
	if (!members || !n || n > 64)
		return cairn_error_set(-EINVAL, "replica set: needs 1 to 64 members");
	unsigned minc = opts->min_copies ? opts->min_copies : (unsigned)n;
	if (minc > n)
		return cairn_error_set(-EINVAL, "replica set: min_copies %u exceeds its %zu members",
				       minc, n);
	int jfd = -1;
	if (opts->journal) {
		jfd = open(opts->journal, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (jfd < 0)
			return cairn_error_set(-errno, "replica set: repair journal %s: %s",
					       opts->journal, strerror(errno));
	}
	replica *r = cairn_xcalloc(1, sizeof(*r));
	r->m = cairn_xcalloc(n, sizeof(member));
	r->n = n;
	for (size_t i = 0; i < n; i++)
		r->m[i].t = members[i];
	r->min_copies = minc;
	r->cooldown_ns = (int64_t)(opts->cooldown_s ? opts->cooldown_s : 30) * 1000000000;
	r->journal_fd = jfd;
	pthread_mutex_init(&r->jmu, NULL);
	cairn_target *t = &r->parent;
	t->version = CAIRN_TARGET_VERSION;
	t->kind = "replica";
	size_t len = 16;
	for (size_t i = 0; i < n; i++)
		len += strlen(members[i]->name) + 2;
	t->name = cairn_xmalloc(len);
	size_t o = (size_t)snprintf(t->name, len, "replica(");
	for (size_t i = 0; i < n; i++)
		o += (size_t)snprintf(t->name + o, len - o, "%s%s", i ? "," : "", members[i]->name);
	snprintf(t->name + o, len - o, ")");
	t->put = rep_put;
	t->get = rep_get;
	t->get_range = rep_get_range;
	t->stat = rep_stat;
	t->list = rep_list;
	t->del = rep_del;
	t->close = rep_close;
	t->ncopies = rep_ncopies;
	t->get_range_copy = rep_get_range_copy;
	t->report_bad = rep_report_bad;
	*out = t;
	return 0;
}

size_t cairn_target_members(cairn_target *t)
{
	return t && t->kind && !strcmp(t->kind, "replica") ? R(t)->n : 1;
}

cairn_target *cairn_target_member(cairn_target *t, size_t i)
{
	if (t && t->kind && !strcmp(t->kind, "replica"))
		return i < R(t)->n ? R(t)->m[i].t : NULL;
	return i == 0 ? t : NULL;
}

int cairn_target_member_healthy(cairn_target *t, size_t i)
{
	if (t && t->kind && !strcmp(t->kind, "replica"))
		return i < R(t)->n && healthy(R(t), i);
	return 1;
}

const char *cairn_target_copy_name(cairn_target *t, unsigned copy)
{
	if (t && t->kind && !strcmp(t->kind, "replica")) {
		long i = copy_member(R(t), copy, 0);
		return i >= 0 ? R(t)->m[i].t->name : "?";
	}
	return t && copy == 0 && t->name ? t->name : "?";
}
