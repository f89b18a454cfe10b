/*
 * check.c - structural and data verification of a repository.
 *
 * Structure: snapshots -> trees -> file chunks -> index -> packs on the
 * target. Data (--read-data): every pack is read whole, its trailer
 * checksums are verified (the same keyless check scrub uses), its encrypted
 * header is compared with the index, and every blob is authenticated and
 * its content hashed back to its id.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/repo_int.h"

typedef struct ck {
	cairn_repo *r;
	const cairn_check_opts *o;
	cairn_check_result *res;
	void (*report)(void *, const char *);
	void *payload;
	cairn_codec *cx;
	/* visited trees: sorted array rebuilt rarely; a simple open hash */
	uint8_t (*seen)[32];
	uint8_t *used;
	size_t nseen, cap;
} ck;

static void err(ck *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void err(ck *c, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->res->errors++;
	if (c->report)
		c->report(c->payload, msg);
}

static int seen_add(ck *c, const uint8_t id[32])
{
	if ((c->nseen + 1) * 2 > c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 1024;
		uint8_t(*nv)[32] = cairn_xmalloc(ncap * 32);
		uint8_t *nu = cairn_xcalloc(ncap, 1);
		for (size_t i = 0; i < c->cap; i++) {
			if (!c->used[i])
				continue;
			size_t j = cairn_get_le64(c->seen[i]) & (ncap - 1);
			while (nu[j])
				j = (j + 1) & (ncap - 1);
			nu[j] = 1;
			memcpy(nv[j], c->seen[i], 32);
		}
		free(c->seen);
		free(c->used);
		c->seen = nv;
		c->used = nu;
		c->cap = ncap;
	}
	size_t j = cairn_get_le64(id) & (c->cap - 1);
	while (c->used[j]) {
		if (!memcmp(c->seen[j], id, 32))
			return 0;
		j = (j + 1) & (c->cap - 1);
	}
	c->used[j] = 1;
	memcpy(c->seen[j], id, 32);
	c->nseen++;
	return 1;
}

static void check_tree(ck *c, const uint8_t id[32], const char *path, const char *snap)
{
	if (!seen_add(c, id))
		return;
	cairn_tree t;
	c->res->trees++;
	if (repo_tree_load(c->r, c->cx, id, &t) < 0) {
		err(c, "snapshot %.8s: %s: tree unreadable: %s", snap, path, cairn_error_last());
		return;
	}
	for (size_t i = 0; i < t.n; i++) {
		const cairn_node *n = &t.nodes[i];
		size_t l = strlen(path) + strlen(n->name) + 2;
		char *p = cairn_xmalloc(l);
		snprintf(p, l, "%s%s%s", path, strcmp(path, "/") ? "/" : "", n->name);
		if (n->type == CAIRN_NODE_FILE) {
			c->res->files++;
			uint64_t sum = 0;
			uint8_t dg[32];
			for (size_t k = 0; k < n->n_extents; k++) {
				sum += n->extents[k].len;
				if (!n->extents[k].hole &&
				    !cairn_index_lookup(c->r->idx, n->extents[k].id, NULL)) {
					char h[65];
					cairn_hex(h, n->extents[k].id, 32);
					err(c, "snapshot %.8s: %s: chunk %.16s is missing (in no index)",
					    snap, p, h);
				}
			}
			file_digest(&c->r->keys, n->extents, n->n_extents, n->size, dg);
			if (sum != n->size || !(n->flags & CAIRN_NODE_F_DIGEST) ||
			    memcmp(dg, n->digest, 32))
				err(c, "snapshot %.8s: %s: content list does not match its digest",
				    snap, p);
		} else if (n->type == CAIRN_NODE_DIR) {
			check_tree(c, n->subtree, p, snap);
		}
		free(p);
	}
	cairn_tree_free(&t);
}

typedef struct listing {
	size_t n;
	char **names;
	uint64_t *sizes;
} listing;

static int collect(void *payload, const char *name, uint64_t size)
{
	listing *l = payload;
	l->names = cairn_xrealloc(l->names, (l->n + 1) * sizeof(char *));
	l->sizes = cairn_xrealloc(l->sizes, (l->n + 1) * sizeof(uint64_t));
	l->names[l->n] = cairn_xstrdup(name);
	l->sizes[l->n++] = size;
	return 0;
}

static void listing_free(listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->names[i]);
	free(l->names);
	free(l->sizes);
}

/* Read one pack whole and verify everything in it. */
static void read_pack(ck *c, const char *name, const uint8_t id[32])
{
	cairn_buf b = CAIRN_BUF_INIT, plain = CAIRN_BUF_INIT;
	int64_t bad;
	int rc = cairn_target_get(c->r->rt, name, &b);
	if (rc < 0) {
		err(c, "%s: unreadable: %s", name, cairn_error_last());
		goto done;
	}
	c->res->packs_read++;
	c->res->bytes_read += b.len;
	if (cairn_pack_verify(b.data, b.len, &bad) < 0) {
		err(c, "%s: %s", name, cairn_error_last());
		goto done;
	}
	uint32_t tl;
	cairn_pack_trailer tr;
	cairn_pack_entry *e = NULL;
	size_t n = 0;
	if (cairn_pack_footer(b.data + b.len - CAIRN_PACK_FOOTER, b.len, &tl) < 0 ||
	    cairn_pack_trailer_parse(&tr, b.data + b.len - tl, tl, b.len) < 0) {
		err(c, "%s: %s", name, cairn_error_last());
		goto done;
	}
	rc = cairn_pack_header_decode(c->cx, &c->r->keys, id, b.data + tr.hdr_off, tr.hdr_len,
				      tr.hdr_off, &e, &n);
	cairn_pack_trailer_free(&tr);
	if (rc < 0) {
		err(c, "%s: %s", name, cairn_error_last());
		goto done;
	}
	uint8_t key[32];
	cairn_pack_key(key, &c->r->keys, id);
	uint32_t no;
	int indexed = cairn_index_pack_find(c->r->idx, id, &no);
	for (size_t k = 0; k < n; k++) {
		if (cairn_pack_blob_decode(c->cx, &c->r->keys, key, &e[k], b.data + e[k].offset,
					   &plain) < 0) {
			char h[65];
			cairn_hex(h, e[k].id, 32);
			err(c, "%s: blob %.16s at offset %u: %s", name, h, e[k].offset,
			    cairn_error_last());
			continue;
		}
		c->res->blobs_read++;
		cairn_blob_loc loc;
		if (indexed && cairn_index_lookup(c->r->idx, e[k].id, &loc) && loc.pack == no &&
		    (loc.offset != e[k].offset || loc.clen != e[k].clen))
			err(c, "%s: blob at offset %u disagrees with the index", name, e[k].offset);
	}
	cairn_wipe(key, sizeof(key));
	free(e);
done:
	cairn_buf_free(&b);
	cairn_buf_free(&plain);
}

int cairn_check(cairn_repo *r, const cairn_check_opts *o, cairn_check_result *res,
		void (*report)(void *payload, const char *msg), void *payload)
{
	cairn_check_opts def = CAIRN_CHECK_OPTS_INIT;
	ck c = {0};
	if (!o)
		o = &def;
	memset(res, 0, sizeof(*res));
	c.r = r;
	c.o = o;
	c.res = res;
	c.report = report;
	c.payload = payload;
	c.cx = cairn_codec_new(0);
	if (r->index_errors)
		err(&c, "%llu index segment(s) could not be loaded (see the warnings above; "
		    "'cairn prune' replaces corrupt ones)",
		    (unsigned long long)r->index_errors);

	/* snapshots and trees */
	listing sl = {0};
	int rc = cairn_target_list(r->rt, "snapshots/", collect, &sl);
	if (rc < 0) {
		err(&c, "cannot list snapshots: %s", cairn_error_last());
	}
	cairn_buf pt = CAIRN_BUF_INIT;
	for (size_t i = 0; i < sl.n; i++) {
		cairn_snapshot s = {0};
		const char *hex = sl.names[i] + strlen("snapshots/");
		snprintf(s.idhex, sizeof(s.idhex), "%.64s", hex);
		if (repo_load_object(r, c.cx, sl.names[i], CAIRN_OBJ_SNAPSHOT, 16u << 20, 0, &pt) < 0 ||
		    snapshot_decode(&s, pt.data, pt.len) < 0) {
			err(&c, "%s: unreadable: %s", sl.names[i], cairn_error_last());
			continue;
		}
		res->snapshots++;
		if (o->progress) {
			char line[128];
			snprintf(line, sizeof(line), "checking snapshot %zu of %zu", i + 1, sl.n);
			o->progress(o->progress_payload, line);
		}
		check_tree(&c, s.tree, "/", hex);
		cairn_snapshot_free(&s);
	}
	cairn_buf_free(&pt);
	listing_free(&sl);

	/* packs: the index's packs must exist with their sizes */
	listing pl = {0};
	if (cairn_target_list(r->rt, "data/", collect, &pl) < 0)
		err(&c, "cannot list packs: %s", cairn_error_last());
	size_t np = cairn_index_npacks(r->idx);
	uint8_t *found = cairn_xcalloc(np ? np : 1, 1);
	for (size_t i = 0; i < pl.n; i++) {
		uint8_t id[32];
		uint32_t no;
		if (cairn_pack_name_parse(pl.names[i], id) < 0) {
			c.res->warnings++;
			if (report) {
				char m[256];
				snprintf(m, sizeof(m), "%s: not a pack name (ignored)", pl.names[i]);
				report(payload, m);
			}
			continue;
		}
		if (!cairn_index_pack_find(r->idx, id, &no)) {
			c.res->warnings++;
			if (report) {
				char m[256];
				snprintf(m, sizeof(m), "%s: pack not in any index (left by an "
						       "interrupted backup; the next backup adopts it)",
					 pl.names[i]);
				report(payload, m);
			}
			continue;
		}
		found[no] = 1;
		uint64_t size;
		cairn_index_pack_info(r->idx, no, NULL, NULL, &size);
		if (size != pl.sizes[i])
			err(&c, "%s: size %llu, index says %llu", pl.names[i],
			    (unsigned long long)pl.sizes[i], (unsigned long long)size);
		res->packs++;
	}
	for (size_t no = 0; no < np; no++) {
		if (found[no])
			continue;
		uint8_t id[32];
		char name[CAIRN_PACK_NAME_MAX];
		cairn_index_pack_info(r->idx, (uint32_t)no, id, NULL, NULL);
		cairn_pack_name(name, id);
		err(&c, "%s: pack named by the index is missing on %s", name, r->t->name);
	}

	/* data */
	if (o->read_data) {
		uint64_t s = o->seed ? o->seed : 0x9E3779B97F4A7C15ull;
		for (size_t i = 0; i < pl.n; i++) {
			uint8_t id[32];
			if (cairn_pack_name_parse(pl.names[i], id) < 0)
				continue;
			if (o->subset > 0 && o->subset < 1) {
				/* a deterministic per-pack draw from the seed and the pack id */
				uint64_t h = cairn_get_le64(id) ^ s;
				h ^= h >> 33;
				h *= 0xff51afd7ed558ccdull;
				h ^= h >> 33;
				if ((double)(h >> 11) / 9007199254740992.0 >= o->subset)
					continue;
			}
			if (o->progress) {
				char line[128];
				snprintf(line, sizeof(line), "reading pack %zu of %zu", i + 1, pl.n);
				o->progress(o->progress_payload, line);
			}
			read_pack(&c, pl.names[i], id);
		}
	}
	free(found);
	listing_free(&pl);
	free(c.seen);
	free(c.used);
	cairn_codec_free(c.cx);
	if (res->errors)
		return cairn_error_set(-EBADMSG, "check found %llu error(s)",
				       (unsigned long long)res->errors);
	return 0;
}
