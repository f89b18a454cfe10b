/*
 * repair.c - keyless repair of a replica set.
 *
 * DESIGN
 * Repair never needs a client key, so the appliance can keep every copy of
 * every client level. It lists every member, forms the union of the object
 * names (locks are ephemeral: never copied; only a deletion a member missed
 * is finished), and for each object decides which copies are good:
 *  - packs carry XXH3-128 checksums in their plaintext trailer, so a copy is
 *    good when its checksums hold; a copy is read and checked when it is
 *    suspect (journaled as bad, or its size differs from the others) or with
 *    verify_all, and always before it serves as the source of a copy;
 *  - other objects (config, keys, index segments, snapshots) are small and
 *    authenticated only under the key: when the copies disagree in size,
 *    the majority wins if there is one, else the object is reported as a
 *    conflict and left alone.
 * Deletions a member missed (journal lines "del") are finished, and such an
 * object is never copied back to the others: a forgotten snapshot must not
 * come back to life.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "verify/verify.h"

#define MAXM 64

typedef struct obj {
	char *name;
	int64_t size[MAXM]; /* -1: absent on that member */
	uint8_t bad[MAXM];  /* journaled as bad */
	uint8_t del[MAXM];  /* journaled deletion */
} obj;

typedef struct rep {
	cairn_target *t;
	size_t n;
	const cairn_repair_opts *o;
	cairn_repair_result *res;
	void (*report)(void *, const char *);
	void *payload;
	obj *v;
	size_t nv, cap;
	size_t cur_member;
	uint8_t listed[MAXM];
} rep;

static void say(rep *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(rep *r, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (r->report)
		r->report(r->payload, msg);
}

static obj *find(rep *r, const char *name, int create)
{
	/* linear probing would be faster; repositories hold thousands of objects, and
	 * the listing is sorted per member, so keep a sorted array and bsearch */
	size_t lo = 0, hi = r->nv;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(r->v[mid].name, name);
		if (!c)
			return &r->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!create)
		return NULL;
	if (r->nv == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 1024;
		r->v = cairn_xrealloc(r->v, r->cap * sizeof(obj));
	}
	memmove(&r->v[lo + 1], &r->v[lo], (r->nv - lo) * sizeof(obj));
	r->nv++;
	obj *o = &r->v[lo];
	memset(o, 0, sizeof(*o));
	o->name = cairn_xstrdup(name);
	for (size_t i = 0; i < MAXM; i++)
		o->size[i] = -1;
	return o;
}

static int collect(void *payload, const char *name, uint64_t size)
{
	rep *r = payload;
	find(r, name, 1)->size[r->cur_member] = (int64_t)size;
	return 0;
}

/* Locks are ephemeral: never copied, but a lock whose deletion a member missed is removed
 * there (else a backup's lock stays behind on a member that was down when it ended, and
 * looks alive on other hosts for half an hour). */
static int is_lock(const obj *o)
{
	return !strncmp(o->name, "locks/", 6);
}

static void read_journal(rep *r)
{
	if (!r->o->journal)
		return;
	FILE *f = fopen(r->o->journal, "r");
	if (!f)
		return;
	char line[2048];
	while (fgets(line, sizeof(line), f)) {
		char what[16], member[1024], name[1024];
		long long ts;
		if (sscanf(line, "%lld %15s %1023s %1023s", &ts, what, member, name) != 4)
			continue;
		for (size_t i = 0; i < r->n; i++) {
			if (strcmp(cairn_target_member(r->t, i)->name, member))
				continue;
			obj *o = find(r, name, !strcmp(what, "del"));
			if (!o)
				continue;
			if (!strcmp(what, "bad"))
				o->bad[i] = 1;
			else if (!strcmp(what, "del"))
				o->del[i] = 1;
		}
	}
	fclose(f);
}

/* Read copy i of a pack and check it; 1 good, 0 bad (reported). */
static int pack_good(rep *r, obj *o, size_t i, cairn_buf *b)
{
	cairn_target *m = cairn_target_member(r->t, i);
	b->len = 0;
	if (cairn_target_get(m, o->name, b) < 0) {
		say(r, "%s on %s: unreadable: %s", o->name, m->name, cairn_error_last());
		return 0;
	}
	int64_t seg;
	if (cairn_pack_check(b->data, b->len, &seg) < 0) {
		say(r, "%s on %s: corrupt: %s", o->name, m->name, cairn_error_last());
		return 0;
	}
	return 1;
}

static void repair_obj(rep *r, obj *o)
{
	int is_pack = cairn_is_pack_name(o->name);
	int deleted = 0;
	size_t have = 0;
	for (size_t i = 0; i < r->n; i++) {
		deleted |= o->del[i];
		have += o->size[i] >= 0;
	}
	if (is_lock(o) && !deleted)
		return;
	r->res->objects++;
	/* a deletion some member missed: finish it everywhere, never copy back */
	if (deleted) {
		for (size_t i = 0; i < r->n; i++) {
			if (o->size[i] < 0 || !r->listed[i])
				continue;
			cairn_target *m = cairn_target_member(r->t, i);
			r->res->stale++;
			say(r, "%s on %s: deleted elsewhere, %s", o->name, m->name,
			    r->o->dry_run ? "would delete" : "deleting");
			if (r->o->dry_run)
				continue;
			if (cairn_target_del(m, o->name) < 0 && cairn_error_last()[0]) {
				r->res->failed++;
				say(r, "%s on %s: %s", o->name, m->name, cairn_error_last());
			} else {
				r->res->deleted++;
			}
		}
		return;
	}
	/* the expected size: the most common one */
	int64_t best = -1;
	size_t best_n = 0;
	for (size_t i = 0; i < r->n; i++) {
		size_t k = 0;
		if (o->size[i] < 0)
			continue;
		for (size_t j = 0; j < r->n; j++)
			k += o->size[j] == o->size[i];
		if (k > best_n) {
			best_n = k;
			best = o->size[i];
		}
	}
	uint8_t needs[MAXM] = {0}, good[MAXM] = {0};
	cairn_buf b = CAIRN_BUF_INIT, src = CAIRN_BUF_INIT;
	for (size_t i = 0; i < r->n; i++) {
		if (!r->listed[i])
			continue;
		if (o->size[i] < 0) {
			needs[i] = 1;
			r->res->missing++;
			continue;
		}
		int suspect = o->bad[i] || o->size[i] != best;
		if (is_pack && (suspect || r->o->verify_all)) {
			if (pack_good(r, o, i, &b)) {
				good[i] = 1;
			} else {
				needs[i] = 1;
				r->res->corrupt++;
			}
		} else if (!is_pack && o->size[i] != best) {
			if (best_n * 2 > have) {
				needs[i] = 1;
				r->res->corrupt++;
			} else {
				r->res->conflicts++;
				say(r, "%s: copies disagree and no majority; not repaired", o->name);
				cairn_buf_free(&b);
				return;
			}
		} else {
			good[i] = 2; /* presumed good, not read yet */
		}
	}
	for (size_t i = 0; i < r->n; i++) {
		if (!needs[i])
			continue;
		cairn_target *m = cairn_target_member(r->t, i);
		say(r, "%s on %s: %s, %s", o->name, m->name, o->size[i] < 0 ? "missing" : "bad copy",
		    r->o->dry_run ? "would copy" : "copying");
		if (r->o->dry_run)
			continue;
		int done = 0;
		for (size_t j = 0; j < r->n && !done; j++) {
			if (!good[j] || needs[j])
				continue;
			cairn_target *s = cairn_target_member(r->t, j);
			src.len = 0;
			if (is_pack) {
				if (!pack_good(r, o, j, &src)) {
					good[j] = 0;
					continue;
				}
			} else if (cairn_target_get(s, o->name, &src) < 0 ||
				   (int64_t)src.len != best) {
				continue;
			}
			if (cairn_target_put(m, o->name, src.data, src.len) == 0) {
				done = 1;
				r->res->copied++;
			} else {
				say(r, "%s on %s: %s", o->name, m->name, cairn_error_last());
				break;
			}
		}
		if (!done) {
			r->res->failed++;
			say(r, "%s on %s: no good copy could be written", o->name, m->name);
		}
	}
	cairn_buf_free(&b);
	cairn_buf_free(&src);
}

int cairn_repair(cairn_target *t, const cairn_repair_opts *o, cairn_repair_result *res,
		 void (*report)(void *payload, const char *msg), void *payload)
{
	cairn_repair_opts def = CAIRN_REPAIR_OPTS_INIT;
	rep r = {0};
	if (!o)
		o = &def;
	memset(res, 0, sizeof(*res));
	r.t = t;
	r.n = cairn_target_members(t);
	r.o = o;
	r.res = res;
	r.report = report;
	r.payload = payload;
	if (r.n < 2 || r.n > MAXM)
		return cairn_error_set(-EINVAL, "repair needs a replica set of 2 to %d targets "
						"(a repository with several targets in the configuration)",
				       MAXM);
	for (size_t i = 0; i < r.n; i++) {
		cairn_target *m = cairn_target_member(t, i);
		r.cur_member = i;
		if (cairn_target_list(m, "", collect, &r) < 0) {
			say(&r, "%s: cannot list, left out of this repair: %s", m->name,
			    cairn_error_last());
			res->failed++;
			continue;
		}
		r.listed[i] = 1;
	}
	read_journal(&r);
	for (size_t k = 0; k < r.nv; k++)
		repair_obj(&r, &r.v[k]);
	for (size_t k = 0; k < r.nv; k++)
		free(r.v[k].name);
	free(r.v);
	int all_listed = 1;
	for (size_t i = 0; i < r.n; i++)
		all_listed &= r.listed[i];
	if (!o->dry_run && !res->failed && !res->conflicts && all_listed && o->journal)
		if (truncate(o->journal, 0) < 0 && errno != ENOENT)
			say(&r, "journal %s: %s", o->journal, strerror(errno));
	if (res->failed || res->conflicts)
		return cairn_error_set(-EIO, "repair left %llu problem(s)",
				       (unsigned long long)(res->failed + res->conflicts));
	return 0;
}
