/*
 * check_affected.c - map the damage check found (missing, corrupt or
 * unreadable packs, blobs that fail) back to what it costs: the snapshots
 * and the files and directories in them that can no longer be restored
 * completely. Trees whose whole subtree is clean are remembered, so each is
 * walked once however many snapshots share it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/check_int.h"

/* --- id sets ------------------------------------------------------------------------------ */

int ck_idset_add(ck_idset *s, const uint8_t id[32])
{
	if ((s->n + 1) * 2 > s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 1024;
		uint8_t(*nv)[32] = cairn_xmalloc(ncap * 32);
		uint8_t *nu = cairn_xcalloc(ncap, 1);
		for (size_t i = 0; i < s->cap; i++) {
			if (!s->used[i])
				continue;
			size_t j = cairn_get_le64(s->ids[i]) & (ncap - 1);
			while (nu[j])
				j = (j + 1) & (ncap - 1);
			nu[j] = 1;
			memcpy(nv[j], s->ids[i], 32);
		}
		free(s->ids);
		free(s->used);
		s->ids = nv;
		s->used = nu;
		s->cap = ncap;
	}
	size_t j = cairn_get_le64(id) & (s->cap - 1);
	while (s->used[j]) {
		if (!memcmp(s->ids[j], id, 32))
			return 0;
		j = (j + 1) & (s->cap - 1);
	}
	s->used[j] = 1;
	memcpy(s->ids[j], id, 32);
	s->n++;
	return 1;
}

int ck_idset_has(const ck_idset *s, const uint8_t id[32])
{
	if (!s->cap)
		return 0;
	size_t j = cairn_get_le64(id) & (s->cap - 1);
	while (s->used[j]) {
		if (!memcmp(s->ids[j], id, 32))
			return 1;
		j = (j + 1) & (s->cap - 1);
	}
	return 0;
}

void ck_idset_free(ck_idset *s)
{
	free(s->ids);
	free(s->used);
	memset(s, 0, sizeof(*s));
}

/* --- the walk ----------------------------------------------------------------------------- */

typedef struct af {
	cairn_repo *r;
	cairn_codec *cx;
	const ck_damage *d;
	ck_idset clean; /* trees with nothing affected below them */
	size_t limit, lines;
	uint64_t total;
	cairn_check_report_fn report;
	void *payload;
} af;

static void line(af *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(af *a, const char *fmt, ...)
{
	a->total++;
	if (a->lines >= a->limit || !a->report)
		return;
	a->lines++;
	char msg[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	a->report(a->payload, CAIRN_CHECK_AFFECTED, msg);
}

/* Why blob @p id cannot be read: writes "chunk 1234.. in data/.." into @p why; 0 if it is fine. */
static int damaged(af *a, const uint8_t id[32], const char *what, char *why, size_t cap)
{
	cairn_blob_loc loc;
	char h[65], pn[CAIRN_PACK_NAME_MAX];
	cairn_hex(h, id, 32);
	if (!cairn_index_lookup(a->r->idx, id, &loc)) {
		snprintf(why, cap, "%s %.16s, in no index", what, h);
		return 1;
	}
	if (!ck_idset_has(&a->d->blobs, id) && !(loc.pack < a->d->npacks && a->d->packs[loc.pack]))
		return 0;
	uint8_t pid[32];
	cairn_index_pack_info(a->r->idx, loc.pack, pid, NULL, NULL);
	cairn_pack_name(pn, pid);
	snprintf(why, cap, "%s %.16s in %s", what, h, pn);
	return 1;
}

static uint64_t walk(af *a, const uint8_t id[32], const char *path, const char *snap)
{
	char why[256];
	if (ck_idset_has(&a->clean, id))
		return 0;
	if (damaged(a, id, "tree", why, sizeof(why))) {
		line(a, "snapshot %.8s: %s (%s: everything below it)", snap, path, why);
		return 1;
	}
	cairn_tree t;
	if (repo_tree_load(a->r, a->cx, id, &t) < 0) {
		char h[65];
		cairn_hex(h, id, 32);
		line(a, "snapshot %.8s: %s (tree %.16s unreadable: everything below it)", snap, path,
		     h);
		return 1;
	}
	uint64_t n = 0;
	for (size_t i = 0; i < t.n; i++) {
		const cairn_node *nd = &t.nodes[i];
		if (nd->type != CAIRN_NODE_FILE && nd->type != CAIRN_NODE_DIR)
			continue;
		size_t l = strlen(path) + strlen(nd->name) + 2;
		char *p = cairn_xmalloc(l);
		snprintf(p, l, "%s%s%s", path, strcmp(path, "/") ? "/" : "", nd->name);
		if (nd->type == CAIRN_NODE_DIR) {
			n += walk(a, nd->subtree, p, snap);
		} else {
			size_t bad = 0;
			for (size_t k = 0; k < nd->n_extents; k++) {
				char w[256];
				if (nd->extents[k].hole ||
				    !damaged(a, nd->extents[k].id, "chunk", w, sizeof(w)))
					continue;
				if (!bad++)
					memcpy(why, w, sizeof(why));
			}
			if (bad) {
				n++;
				if (bad > 1)
					line(a, "snapshot %.8s: %s (%s, and %zu more damaged chunks)",
					     snap, p, why, bad - 1);
				else
					line(a, "snapshot %.8s: %s (%s)", snap, p, why);
			}
		}
		free(p);
	}
	cairn_tree_free(&t);
	if (!n)
		ck_idset_add(&a->clean, id);
	return n;
}

uint64_t ck_affected(cairn_repo *r, cairn_codec *cx, const ck_damage *d, const ck_snap *snaps,
		     size_t nsnaps, size_t limit, cairn_check_report_fn report, void *payload)
{
	af a = {.r = r, .cx = cx, .d = d, .limit = limit, .report = report, .payload = payload};
	size_t nsnap_hit = 0;
	for (size_t i = 0; i < nsnaps; i++)
		if (walk(&a, snaps[i].tree, "/", snaps[i].hex))
			nsnap_hit++;
	if (a.total > a.lines && report) {
		char msg[256];
		snprintf(msg, sizeof(msg), "%llu more affected entries not listed",
			 (unsigned long long)(a.total - a.lines));
		report(payload, CAIRN_CHECK_AFFECTED, msg);
	}
	if (a.total && report) {
		char msg[256];
		snprintf(msg, sizeof(msg), "%llu entries in %zu of %zu snapshots are affected",
			 (unsigned long long)a.total, nsnap_hit, nsnaps);
		report(payload, CAIRN_CHECK_AFFECTED, msg);
	}
	ck_idset_free(&a.clean);
	return a.total;
}
