/*
 * fault.c - a target that wraps another and injects faults, for tests: a
 * delay before ops, failures after N ops (every op, or just one), and reads
 * corrupted by one flipped byte. See cairn_fault_opts in target.h.
 *
 * Op numbering: the ops that match ops_mask (all ops if it is 0) are numbered
 * 0, 1, 2 ... from the last cairn_target_fault_set() (or the wrap). With
 * fail_after = N, op N and every later one fail; with fail_once too, only op N
 * fails. fail_errno = 0 disables failure injection (so a zeroed
 * cairn_fault_opts passes everything); fail_after = -1 does too.
 *
 * Options and the op counter sit behind a mutex: they may be changed while
 * other threads run ops. The inner target is called through the checked
 * wrappers, so it keeps its own stats and messages.
 */
#include "targets/target.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct fault_target {
	cairn_target base; /* first: a cairn_target * is a struct fault_target * */
	cairn_target *inner;
	pthread_mutex_t mu; /* guards opts and nops */
	cairn_fault_opts opts;
	uint64_t nops; /* ops that matched ops_mask since the last set */
};

/* The fault decisions for one op, taken under the mutex. */
struct verdict {
	int err;     /* > 0: fail with -err instead of running the op */
	int corrupt; /* flip a byte of the read result */
	unsigned delay_ms;
};

static struct fault_target *ft_of(cairn_target *t)
{
	return (struct fault_target *)t;
}

static const cairn_fault_opts pass_all = {0, -1, 0, 0, 0, 0};

/*
 * Number op @p op (a CAIRN_FAULT_OP_* bit) if the options apply to it, decide
 * its faults, and sleep the delay. Returns the verdict.
 */
static struct verdict decide(struct fault_target *ft, unsigned op)
{
	struct verdict v = {0, 0, 0};
	pthread_mutex_lock(&ft->mu);
	const cairn_fault_opts *o = &ft->opts;
	if (!o->ops_mask || (o->ops_mask & op)) {
		uint64_t n = ft->nops++;
		if (o->fail_errno > 0 && o->fail_after >= 0) {
			uint64_t after = (uint64_t)o->fail_after;
			if (o->fail_once ? n == after : n >= after)
				v.err = o->fail_errno;
		}
		v.corrupt = o->corrupt_reads;
		v.delay_ms = o->delay_ms;
	}
	pthread_mutex_unlock(&ft->mu);
	if (v.delay_ms) {
		struct timespec ts = {(time_t)(v.delay_ms / 1000),
				      (long)(v.delay_ms % 1000) * 1000000L};
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	return v;
}

/* Fail op @p op on @p name with the injected errno. Returns -err. */
static int injected(cairn_target *t, int err, const char *op, const char *name)
{
	return cairn_error_set(-err, "fault injected: %s %s on %s", op, *name ? name : "''",
			       t->name);
}

/* Flip one byte in the middle of a read result. */
static void corrupt(uint8_t *p, size_t len)
{
	if (len)
		p[len / 2] ^= 0x01;
}

static int fault_put(cairn_target *t, const char *name, const void *data, size_t len)
{
	struct verdict v = decide(ft_of(t), CAIRN_FAULT_OP_PUT);
	if (v.err)
		return injected(t, v.err, "put", name);
	return cairn_target_put(ft_of(t)->inner, name, data, len);
}

static int fault_get(cairn_target *t, const char *name, cairn_buf *out)
{
	struct verdict v = decide(ft_of(t), CAIRN_FAULT_OP_GET);
	if (v.err)
		return injected(t, v.err, "get", name);
	int rc = cairn_target_get(ft_of(t)->inner, name, out);
	if (rc >= 0 && v.corrupt)
		corrupt(out->data, out->len);
	return rc;
}

static int fault_get_range(cairn_target *t, const char *name, uint64_t off, size_t len, void *out)
{
	struct verdict v = decide(ft_of(t), CAIRN_FAULT_OP_GET);
	if (v.err)
		return injected(t, v.err, "get_range", name);
	int rc = cairn_target_get_range(ft_of(t)->inner, name, off, len, out);
	if (rc >= 0 && v.corrupt)
		corrupt(out, len);
	return rc;
}

static int fault_stat(cairn_target *t, const char *name, uint64_t *size)
{
	struct verdict v = decide(ft_of(t), CAIRN_FAULT_OP_STAT);
	if (v.err)
		return injected(t, v.err, "stat", name);
	return cairn_target_stat(ft_of(t)->inner, name, size);
}

static int fault_list(cairn_target *t, const char *prefix, cairn_target_list_cb cb, void *payload)
{
	struct verdict v = decide(ft_of(t), CAIRN_FAULT_OP_LIST);
	if (v.err)
		return injected(t, v.err, "list", prefix);
	return cairn_target_list(ft_of(t)->inner, prefix, cb, payload);
}

static int fault_del(cairn_target *t, const char *name)
{
	struct verdict v = decide(ft_of(t), CAIRN_FAULT_OP_DEL);
	if (v.err)
		return injected(t, v.err, "del", name);
	return cairn_target_del(ft_of(t)->inner, name);
}

static void fault_close(cairn_target *t)
{
	struct fault_target *ft = ft_of(t);
	cairn_target_close(ft->inner);
	pthread_mutex_destroy(&ft->mu);
	free(t->name);
	free(t->site);
	free(ft);
}

/*
 * Wrap @p inner (owned from now on, also on failure) in a fault target with
 * options @p opts (NULL: pass everything). The wrapper offers exactly the ops
 * the inner target offers.
 */
int cairn_target_fault_wrap(cairn_target **out, cairn_target *inner, const cairn_fault_opts *opts)
{
	if (!out || !inner) {
		cairn_target_close(inner);
		return cairn_error_set(-EINVAL, "fault target: no inner target");
	}
	struct fault_target *ft = cairn_xcalloc(1, sizeof(*ft));
	int rc = pthread_mutex_init(&ft->mu, NULL);
	if (rc) {
		free(ft);
		cairn_target_close(inner);
		return cairn_error_set(-rc, "fault target: mutex: %s", strerror(rc));
	}
	ft->inner = inner;
	ft->opts = opts ? *opts : pass_all;
	const char *iname = inner->name ? inner->name : "?";
	size_t n = strlen(iname) + sizeof("fault()");
	ft->base.name = cairn_xmalloc(n);
	snprintf(ft->base.name, n, "fault(%s)", iname);
	ft->base.site = inner->site ? cairn_xstrdup(inner->site) : NULL;
	ft->base.version = CAIRN_TARGET_VERSION;
	ft->base.kind = "fault";
	ft->base.put = inner->put ? fault_put : NULL;
	ft->base.get = inner->get ? fault_get : NULL;
	ft->base.get_range = inner->get_range ? fault_get_range : NULL;
	ft->base.stat = inner->stat ? fault_stat : NULL;
	ft->base.list = inner->list ? fault_list : NULL;
	ft->base.del = inner->del ? fault_del : NULL;
	ft->base.close = fault_close;
	*out = &ft->base;
	return 0;
}

/*
 * Replace the options of fault target @p t with @p opts (NULL: pass
 * everything) and restart op numbering at 0. Ignored if @p t is not a fault
 * target.
 */
void cairn_target_fault_set(cairn_target *t, const cairn_fault_opts *opts)
{
	if (!t || t->close != fault_close)
		return;
	struct fault_target *ft = ft_of(t);
	pthread_mutex_lock(&ft->mu);
	ft->opts = opts ? *opts : pass_all;
	ft->nops = 0;
	pthread_mutex_unlock(&ft->mu);
}
