/*
 * rados.c - a target over a RADOS pool through librados: object "a/b/c" is
 * the RADOS object named "a/b/c" in the target's pool and namespace.
 *
 * DESIGN
 *   - One cluster handle and one I/O context per target. The context is bound
 *     to the repository's namespace at open and never changed afterwards, so
 *     repositories sharing a pool stay apart, and every op may run from many
 *     threads at once (librados handles and I/O contexts are thread-safe).
 *   - put is one rados_write_full, issued asynchronously and waited for.
 *     RADOS applies it atomically (a reader sees the old or the new object,
 *     whole) and completes it once every replica has committed it: the
 *     target's durability contract. Objects over RADOS_MAX_OBJECT (64 MiB)
 *     are refused with -EFBIG before anything is sent: the OSDs refuse writes
 *     over osd_max_write_size (90 MiB by default); cairn's packs are 16 MiB.
 *   - At most max_inflight librados ops run at once (a counting semaphore),
 *     so the engine's threads keep the cluster busy without flooding it. No
 *     slot is held while a list callback runs (it may call the target).
 *   - Every op is bounded: client_mount_timeout, rados_osd_op_timeout and
 *     rados_mon_op_timeout are all set to timeout_s. librados's defaults let
 *     an op on a dead OSD block forever and a connect without a monitor
 *     block 300 s. A timed-out op fails with -ETIMEDOUT, which is retryable.
 *   - pool_full_try is set, so a write to a full pool or cluster fails with
 *     -ENOSPC / -EDQUOT instead of waiting (until the timeout) for space.
 *   - get stats the object, then reads size + 1 bytes in one read op, which
 *     RADOS serves atomically: a shorter answer is the whole object; a full
 *     one means the object was replaced by a larger one meanwhile, and the
 *     read is repeated with a buffer twice as large.
 *   - list enumerates the namespace (rados_nobjects_list: unordered, and a
 *     scan of the whole pool, filtered by the OSDs), keeps the names under
 *     the prefix that are valid object names (so foreign objects such as the
 *     test cluster's probe are skipped), sorts them bytewise like the local
 *     target, and fetches sizes with batches of asynchronous stats. Objects
 *     removed between enumeration and stat are skipped.
 *   - librados is not linked in: the first open loads librados.so.2 (or the
 *     file in $CAIRN_RADOS_LIB) once per process, and every call goes through
 *     the table `lib` of typed pointers (common/dl.h), so runs that never open a
 *     rados target do not pay for libceph-common. If it cannot be loaded,
 *     every open fails with -EOPNOTSUPP: "cannot load librados.so.2: <why>;
 *     install librados2".
 *
 * Without librados's header at build time (CAIRN_HAVE_RADOS undefined) only a
 * stub is compiled, which refuses with -EOPNOTSUPP, so that callers and tests
 * still link.
 */
#include "targets/target.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if CAIRN_HAVE_RADOS

#include <limits.h>
#include <pthread.h>
#include <rados/librados.h>
#include <semaphore.h>
#include <stddef.h>

#include "common/dl.h"

#define MIB ((size_t)1 << 20)
/* Largest object put() accepts (the OSDs' default write limit is 90 MiB). */
#define RADOS_MAX_OBJECT (64 * MIB)
/* Largest single read op: get_range() splits longer ranges. */
#define RADOS_MAX_READ (64 * MIB)
/* Largest object get() reads (RADOS's own object size limit is 128 MiB). */
#define RADOS_MAX_GET ((size_t)1 << 30)
/* Asynchronous stats in flight per batch while listing. */
#define LIST_STAT_BATCH 64

#define DEFAULT_TIMEOUT_S 30
#define DEFAULT_INFLIGHT 8
#define DEFAULT_CLIENT "client.admin"

/* librados, loaded on first use (common/dl.h) ------------------------------ */

/* The soname (CAIRN_RADOS_LIB overrides it) and the package that holds it. */
#define RADOS_SONAME "librados.so.2"
#define RADOS_PACKAGE "librados2"

/* Every librados function this file calls. */
#define RADOS_FUNCS(X)                                                                             \
	X(rados_create2)                                                                           \
	X(rados_conf_read_file)                                                                    \
	X(rados_conf_parse_env)                                                                    \
	X(rados_conf_set)                                                                          \
	X(rados_connect)                                                                           \
	X(rados_shutdown)                                                                          \
	X(rados_ioctx_create)                                                                      \
	X(rados_ioctx_destroy)                                                                     \
	X(rados_ioctx_set_namespace)                                                               \
	X(rados_set_pool_full_try)                                                                 \
	X(rados_aio_create_completion2)                                                            \
	X(rados_aio_write_full)                                                                    \
	X(rados_aio_stat)                                                                          \
	X(rados_aio_wait_for_complete)                                                             \
	X(rados_aio_get_return_value)                                                              \
	X(rados_aio_release)                                                                       \
	X(rados_stat)                                                                              \
	X(rados_read)                                                                              \
	X(rados_remove)                                                                            \
	X(rados_nobjects_list_open)                                                                \
	X(rados_nobjects_list_next)                                                                \
	X(rados_nobjects_list_close)

/* The functions, typed by librados.h; filled once by load_librados(). */
static struct rados_lib {
#define X(f) __typeof__(f) *f;
	RADOS_FUNCS(X)
#undef X
} lib;

static const cairn_dl_sym lib_syms[] = {
#define X(f) {#f, offsetof(struct rados_lib, f)},
    RADOS_FUNCS(X)
#undef X
};

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static int lib_rc;        /* 0 or -EOPNOTSUPP */
static char lib_err[512]; /* why loading failed */

static void load_librados(void)
{
	lib_rc = cairn_dl_load("CAIRN_RADOS_LIB", RADOS_SONAME, &lib, sizeof(lib), lib_syms,
			       sizeof(lib_syms) / sizeof(lib_syms[0]), lib_err, sizeof(lib_err));
}

struct rados_target {
	cairn_target base; /* first: a cairn_target * is a struct rados_target * */
	rados_t cluster;
	rados_ioctx_t io;   /* bound to the namespace */
	unsigned timeout_s; /* for messages */
	sem_t slots;        /* max_inflight ops at once */
};

static struct rados_target *rt_of(cairn_target *t)
{
	return (struct rados_target *)t;
}

/* Take an op slot (waits while max_inflight ops run). */
static void slot_get(struct rados_target *rt)
{
	while (sem_wait(&rt->slots) < 0 && errno == EINTR)
		;
}

static void slot_put(struct rados_target *rt)
{
	sem_post(&rt->slots);
}

/*
 * Record failure @p rc (negative, librados's code) of @p verb ("writing",
 * "reading" ...) on object @p name. Codes are normalised to the target
 * interface's: -EPERM becomes -EACCES, -EMSGSIZE becomes -EFBIG. Returns the
 * code.
 */
static int fail(cairn_target *t, int rc, const char *verb, const char *name)
{
	struct rados_target *rt = rt_of(t);
	int err = rc < 0 ? -rc : EIO;
	const char *why;
	switch (err) {
	case ETIMEDOUT:
		return cairn_error_set(-ETIMEDOUT,
				       "%s: %s %s: timed out after %u s (cluster unreachable?)",
				       t->name, verb, name, rt->timeout_s);
	case ENOENT:
		why = "no such object";
		break;
	case EPERM:
	case EACCES:
		err = EACCES;
		why = "permission denied (the client's cephx caps do not allow it)";
		break;
	case ENOSPC:
		why = "the cluster is full";
		break;
	case EDQUOT:
		why = "the pool's quota is exhausted";
		break;
	case EMSGSIZE:
	case EFBIG:
		err = EFBIG;
		why = "object too large for the cluster (osd_max_write_size)";
		break;
	case ESHUTDOWN:
		why = "the cluster blocklisted this client or shut the connection";
		break;
	case ENOTCONN:
	case ECONNREFUSED:
	case ECONNRESET:
		why = "lost the connection to the cluster";
		break;
	default:
		why = strerror(err);
		break;
	}
	return cairn_error_set(-err, "%s: %s %s: %s", t->name, verb, name, why);
}

/* Bytes in place of a NULL buffer for empty objects. */
static const char empty_data[1];

static int rt_put(cairn_target *t, const char *name, const void *data, size_t len)
{
	struct rados_target *rt = rt_of(t);
	if (len > RADOS_MAX_OBJECT)
		return cairn_error_set(-EFBIG,
				       "%s: writing %s: %zu bytes is over the %zu MiB object limit "
				       "of rados targets",
				       t->name, name, len, RADOS_MAX_OBJECT / MIB);
	rados_completion_t c;
	slot_get(rt);
	int rc = lib.rados_aio_create_completion2(NULL, NULL, &c);
	if (rc == 0) {
		rc = lib.rados_aio_write_full(rt->io, name, c, len ? data : empty_data, len);
		if (rc == 0) {
			lib.rados_aio_wait_for_complete(c);
			rc = lib.rados_aio_get_return_value(c);
		}
		lib.rados_aio_release(c);
	}
	slot_put(rt);
	return rc < 0 ? fail(t, rc, "writing", name) : 0;
}

/* Size of object @p name into *size (one slot). Returns 0 or librados's code. */
static int stat_raw(struct rados_target *rt, const char *name, uint64_t *size)
{
	time_t mtime;
	slot_get(rt);
	int rc = lib.rados_stat(rt->io, name, size, &mtime);
	slot_put(rt);
	return rc;
}

static int rt_get(cairn_target *t, const char *name, cairn_buf *out)
{
	struct rados_target *rt = rt_of(t);
	uint64_t size;
	int rc = stat_raw(rt, name, &size);
	if (rc < 0)
		return fail(t, rc, "reading", name);
	/* one byte more than the size, to see whether the object grew meanwhile */
	size_t cap = size < RADOS_MAX_GET ? (size_t)size + 1 : RADOS_MAX_GET;
	for (;;) {
		cairn_buf_reserve(out, cap);
		slot_get(rt);
		rc = lib.rados_read(rt->io, name, (char *)out->data, cap, 0);
		slot_put(rt);
		if (rc < 0)
			return fail(t, rc, "reading", name);
		if ((size_t)rc < cap) {
			out->len = (size_t)rc;
			return 0;
		}
		/*
		 * Replaced by a larger object since the stat. Doubling (rather
		 * than stat again) ends even while writers keep swapping
		 * versions of different sizes.
		 */
		if (cap >= RADOS_MAX_GET)
			return cairn_error_set(-EFBIG,
					       "%s: reading %s: the object is too large to read "
					       "whole (over %zu MiB)",
					       t->name, name, RADOS_MAX_GET / MIB);
		cap = cap < RADOS_MAX_GET / 2 ? 2 * cap : RADOS_MAX_GET;
	}
}

static int rt_get_range(cairn_target *t, const char *name, uint64_t off, size_t len, void *out)
{
	struct rados_target *rt = rt_of(t);
	uint8_t *p = out;
	size_t got = 0;
	int rc = 0;
	while (got < len) {
		size_t want = len - got < RADOS_MAX_READ ? len - got : RADOS_MAX_READ;
		slot_get(rt);
		rc = lib.rados_read(rt->io, name, (char *)p + got, want, off + got);
		slot_put(rt);
		if (rc < 0)
			return fail(t, rc, "reading", name);
		got += (size_t)rc;
		if ((size_t)rc < want)
			break;
	}
	if (got == len && len > 0)
		return 0;
	/* short, or an empty range: its object must exist and reach @p off */
	uint64_t size;
	rc = stat_raw(rt, name, &size);
	if (rc < 0)
		return fail(t, rc, "reading", name);
	if (got < len || off > size)
		return cairn_error_set(-ERANGE,
				       "%s: reading %s: range %llu+%zu is past the end of the "
				       "%llu-byte object",
				       t->name, name, (unsigned long long)off, len,
				       (unsigned long long)size);
	return 0;
}

static int rt_stat(cairn_target *t, const char *name, uint64_t *size)
{
	int rc = stat_raw(rt_of(t), name, size);
	return rc < 0 ? fail(t, rc, "stat of", name) : 0;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Names of the namespace's objects under @p prefix that are valid object
 * names, sorted bytewise, into *names (malloc'd array of malloc'd strings)
 * and *n. Returns 0 or a negative code with a message.
 */
static int list_names(cairn_target *t, const char *prefix, char ***names, size_t *n)
{
	struct rados_target *rt = rt_of(t);
	size_t plen = strlen(prefix), cap = 0;
	char **v = NULL;
	rados_list_ctx_t ctx;
	*n = 0;
	slot_get(rt);
	int rc = lib.rados_nobjects_list_open(rt->io, &ctx);
	if (rc == 0) {
		const char *entry;
		while ((rc = lib.rados_nobjects_list_next(ctx, &entry, NULL, NULL)) == 0) {
			if (strncmp(entry, prefix, plen) || !cairn_target_name_ok(entry))
				continue;
			if (*n == cap) {
				cap = cap ? 2 * cap : 256;
				v = cairn_xrealloc(v, cap * sizeof(*v));
			}
			v[(*n)++] = cairn_xstrdup(entry);
		}
		if (rc == -ENOENT)
			rc = 0; /* the end of the listing */
		lib.rados_nobjects_list_close(ctx);
	}
	slot_put(rt);
	if (rc < 0) {
		for (size_t i = 0; i < *n; i++)
			free(v[i]);
		free(v);
		*n = 0;
		return fail(t, rc, "listing", *prefix ? prefix : "''");
	}
	if (*n > 1)
		qsort(v, *n, sizeof(*v), str_cmp);
	*names = v;
	return 0;
}

/*
 * Stat names[0..m) with asynchronous stats, all in flight at once (one
 * slot): sizes into @p sizes, each stat's result into @p ret.
 */
static void stat_batch(struct rados_target *rt, char **names, size_t m, uint64_t *sizes, int *ret)
{
	rados_completion_t c[LIST_STAT_BATCH];
	time_t mtime[LIST_STAT_BATCH];
	slot_get(rt);
	for (size_t j = 0; j < m; j++) {
		ret[j] = lib.rados_aio_create_completion2(NULL, NULL, &c[j]);
		if (ret[j] < 0) {
			c[j] = NULL;
			continue;
		}
		ret[j] = lib.rados_aio_stat(rt->io, names[j], c[j], &sizes[j], &mtime[j]);
		if (ret[j] < 0) {
			lib.rados_aio_release(c[j]);
			c[j] = NULL;
		}
	}
	for (size_t j = 0; j < m; j++) {
		if (!c[j])
			continue;
		lib.rados_aio_wait_for_complete(c[j]);
		ret[j] = lib.rados_aio_get_return_value(c[j]);
		lib.rados_aio_release(c[j]);
	}
	slot_put(rt);
}

static int rt_list(cairn_target *t, const char *prefix, cairn_target_list_cb cb, void *payload)
{
	struct rados_target *rt = rt_of(t);
	char **names = NULL;
	size_t n = 0;
	int rc = list_names(t, prefix, &names, &n);
	if (rc < 0)
		return rc;
	uint64_t sizes[LIST_STAT_BATCH];
	int ret[LIST_STAT_BATCH];
	for (size_t i = 0; i < n && rc == 0; i += LIST_STAT_BATCH) {
		size_t m = n - i < LIST_STAT_BATCH ? n - i : LIST_STAT_BATCH;
		stat_batch(rt, names + i, m, sizes, ret);
		for (size_t j = 0; j < m && rc == 0; j++) {
			if (ret[j] == -ENOENT)
				continue; /* removed since the enumeration */
			if (ret[j] < 0)
				rc = fail(t, ret[j], "listing", names[i + j]);
			else
				rc = cb(payload, names[i + j], sizes[j]);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

static int rt_del(cairn_target *t, const char *name)
{
	struct rados_target *rt = rt_of(t);
	slot_get(rt);
	int rc = lib.rados_remove(rt->io, name);
	slot_put(rt);
	return rc < 0 ? fail(t, rc, "deleting", name) : 0;
}

static void rt_close(cairn_target *t)
{
	struct rados_target *rt = rt_of(t);
	if (rt->io)
		lib.rados_ioctx_destroy(rt->io);
	if (rt->cluster)
		lib.rados_shutdown(rt->cluster);
	sem_destroy(&rt->slots);
	free(t->name);
	free(t->site);
	free(rt);
}

/*
 * Connect @p rt's cluster handle (created, not connected) as @p client with
 * config @p conf_path and the timeouts. Returns 0 or a negative code with a
 * message.
 */
static int connect_cluster(struct rados_target *rt, const char *client, const char *conf_path)
{
	const char *tn = rt->base.name;
	int rc = lib.rados_conf_read_file(rt->cluster, conf_path);
	if (rc < 0)
		return cairn_error_set(rc, "%s: cannot read Ceph config %s: %s", tn, conf_path,
				       strerror(-rc));
	lib.rados_conf_parse_env(rt->cluster, NULL); /* $CEPH_ARGS, as the ceph tools do */
	char v[16];
	snprintf(v, sizeof(v), "%u", rt->timeout_s);
	static const char *const keys[] = {"client_mount_timeout", "rados_osd_op_timeout",
					   "rados_mon_op_timeout"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		rc = lib.rados_conf_set(rt->cluster, keys[i], v);
		if (rc < 0)
			return cairn_error_set(rc, "%s: cannot set %s=%s: %s", tn, keys[i], v,
					       strerror(-rc));
	}
	rc = lib.rados_connect(rt->cluster);
	switch (rc) {
	case 0:
		return 0;
	case -ETIMEDOUT:
		return cairn_error_set(rc,
				       "%s: connecting to the monitors of %s timed out after %u s "
				       "(cluster unreachable?)",
				       tn, conf_path, rt->timeout_s);
	case -ENOENT:
		return cairn_error_set(rc,
				       "%s: connecting as %s: no keyring holds its key (set "
				       "'keyring' in %s)",
				       tn, client, conf_path);
	case -EPERM:
	case -EACCES:
		return cairn_error_set(-EACCES,
				       "%s: connecting as %s: authentication refused (wrong key or "
				       "unknown client?)",
				       tn, client);
	default:
		return cairn_error_set(rc, "%s: connecting with %s: %s", tn, conf_path,
				       strerror(-rc));
	}
}

int cairn_target_rados_open(cairn_target **out, const char *pool, const char *ns,
			    const char *conf_path, const cairn_rados_opts *opts)
{
	if (!out)
		return cairn_error_set(-EINVAL, "rados target: no output pointer");
	*out = NULL;
	if (!pool || !*pool)
		return cairn_error_set(-EINVAL, "rados target: no pool name");
	if (!ns)
		ns = "";
	const char *client = opts && opts->client_name && *opts->client_name ? opts->client_name
									 : DEFAULT_CLIENT;
	unsigned inflight = opts && opts->max_inflight ? opts->max_inflight : DEFAULT_INFLIGHT;
	if (inflight > SEM_VALUE_MAX)
		inflight = SEM_VALUE_MAX;

	struct rados_target *rt = cairn_xcalloc(1, sizeof(*rt));
	size_t nlen = strlen(pool) + strlen(ns) + sizeof("rados:/");
	rt->base.name = cairn_xmalloc(nlen);
	snprintf(rt->base.name, nlen, "rados:%s%s%s", pool, *ns ? "/" : "", ns);
	rt->base.version = CAIRN_TARGET_VERSION;
	rt->base.kind = "rados";
	rt->timeout_s = opts && opts->timeout_s ? opts->timeout_s : DEFAULT_TIMEOUT_S;
	if (sem_init(&rt->slots, 0, inflight) < 0) {
		int err = errno;
		free(rt->base.name);
		free(rt);
		return cairn_error_set(-err, "rados:%s: semaphore: %s", pool, strerror(err));
	}

	int rc;
	if (!conf_path || !*conf_path) {
		rc = cairn_error_set(-EINVAL, "%s: no Ceph config file given", rt->base.name);
		goto fail;
	}
	pthread_once(&lib_once, load_librados);
	if (lib_rc < 0) {
		rc = cairn_error_set(lib_rc, "%s: %s; install %s", rt->base.name, lib_err,
				     RADOS_PACKAGE);
		goto fail;
	}
	rc = lib.rados_create2(&rt->cluster, "ceph", client, 0);
	if (rc < 0) {
		rt->cluster = NULL;
		cairn_error_set(rc, "%s: cannot create a cluster handle for '%s': %s",
				rt->base.name, client, strerror(-rc));
		goto fail;
	}
	rc = connect_cluster(rt, client, conf_path);
	if (rc < 0)
		goto fail;
	rc = lib.rados_ioctx_create(rt->cluster, pool, &rt->io);
	if (rc < 0) {
		rt->io = NULL;
		if (rc == -ENOENT)
			cairn_error_set(rc, "%s: no such pool '%s'", rt->base.name, pool);
		else
			fail(&rt->base, rc, "opening pool", pool);
		goto fail;
	}
	lib.rados_ioctx_set_namespace(rt->io, ns);
	lib.rados_set_pool_full_try(rt->io);

	rt->base.put = rt_put;
	rt->base.get = rt_get;
	rt->base.get_range = rt_get_range;
	rt->base.stat = rt_stat;
	rt->base.list = rt_list;
	rt->base.del = rt_del;
	rt->base.close = rt_close;
	*out = &rt->base;
	return 0;
fail:
	rt_close(&rt->base);
	return rc;
}

#else /* !CAIRN_HAVE_RADOS */

int cairn_target_rados_open(cairn_target **out, const char *pool, const char *ns,
			    const char *conf_path, const cairn_rados_opts *opts)
{
	if (out)
		*out = NULL;
	return cairn_error_set(-EOPNOTSUPP,
			       "rados:%s%s%s: this cairn was built without librados (install "
			       "librados-dev and rebuild)",
			       pool ? pool : "", ns && *ns ? "/" : "", ns ? ns : "");
}

#endif
