/*
 * maint.c - listing (ls), debugging output (cat), statistics and prune.
 *
 * DESIGN (prune)
 * Prune runs under the exclusive lock, so no backup references blobs while
 * it decides what is garbage (backups hold shared locks for their whole
 * run; see lock.c). It marks every blob reachable from every snapshot; if
 * any tree cannot be read it stops without deleting anything. Corrupt index
 * segments are replaced along with the others (after orphan adoption nothing
 * depends on them); unreadable ones stop it. Packs with no used blob are
 * deleted; packs whose unused share exceeds the threshold are repacked (their
 * used blobs are read, authenticated and written to new packs). The order
 * keeps every state crash-safe: new packs, then a complete new index, then
 * the old index segments are deleted, then the old packs.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/repo_int.h"

/* --- id set ------------------------------------------------------------------------ */

typedef struct idset {
	uint8_t (*v)[32];
	uint8_t *used;
	size_t n, cap; /* cap: power of two */
} idset;

static void idset_grow(idset *s);

static int idset_add(idset *s, const uint8_t id[32])
{
	if ((s->n + 1) * 2 > s->cap)
		idset_grow(s);
	size_t i = cairn_get_le64(id) & (s->cap - 1);
	while (s->used[i]) {
		if (!memcmp(s->v[i], id, 32))
			return 0;
		i = (i + 1) & (s->cap - 1);
	}
	s->used[i] = 1;
	memcpy(s->v[i], id, 32);
	s->n++;
	return 1;
}

static int idset_has(const idset *s, const uint8_t id[32])
{
	if (!s->cap)
		return 0;
	size_t i = cairn_get_le64(id) & (s->cap - 1);
	while (s->used[i]) {
		if (!memcmp(s->v[i], id, 32))
			return 1;
		i = (i + 1) & (s->cap - 1);
	}
	return 0;
}

static void idset_grow(idset *s)
{
	idset t = {0};
	t.cap = s->cap ? s->cap * 2 : 1024;
	t.v = cairn_xmalloc(t.cap * 32);
	t.used = cairn_xcalloc(t.cap, 1);
	for (size_t i = 0; i < s->cap; i++)
		if (s->used[i])
			idset_add(&t, s->v[i]);
	free(s->v);
	free(s->used);
	*s = t;
}

static void idset_free(idset *s)
{
	free(s->v);
	free(s->used);
	memset(s, 0, sizeof(*s));
}

/* --- walking snapshots ---------------------------------------------------------------- */

typedef struct walker {
	cairn_repo *r;
	cairn_codec *cx;
	idset trees;   /* trees visited */
	idset blobs;   /* every blob used (trees and chunks) */
	uint64_t raw;  /* logical bytes */
	int err;
} walker;

static int mark_tree(walker *w, const uint8_t id[32], const char *path)
{
	if (!idset_add(&w->trees, id))
		return 0;
	idset_add(&w->blobs, id);
	cairn_tree t;
	int rc = repo_tree_load(w->r, w->cx, id, &t);
	if (rc < 0)
		return cairn_error_wrap(rc, "%s", path);
	for (size_t i = 0; i < t.n && rc == 0; i++) {
		const cairn_node *n = &t.nodes[i];
		if (n->type == CAIRN_NODE_FILE) {
			for (size_t k = 0; k < n->n_extents; k++)
				if (!n->extents[k].hole)
					idset_add(&w->blobs, n->extents[k].id);
		} else if (n->type == CAIRN_NODE_DIR) {
			size_t l = strlen(path) + strlen(n->name) + 2;
			char *sub = cairn_xmalloc(l);
			snprintf(sub, l, "%s%s%s", path, strcmp(path, "/") ? "/" : "", n->name);
			rc = mark_tree(w, n->subtree, sub);
			free(sub);
		}
	}
	cairn_tree_free(&t);
	return rc;
}

/* --- ls -------------------------------------------------------------------------------- */

static int ls_tree(cairn_repo *r, cairn_codec *cx, const uint8_t id[32], const char *path,
		   const char *prefix, int (*cb)(void *, const cairn_entry *), void *payload)
{
	cairn_tree t;
	int rc = repo_tree_load(r, cx, id, &t);
	if (rc < 0)
		return cairn_error_wrap(rc, "%s", path);
	for (size_t i = 0; i < t.n && rc == 0; i++) {
		const cairn_node *n = &t.nodes[i];
		size_t l = strlen(path) + strlen(n->name) + 2;
		char *p = cairn_xmalloc(l);
		snprintf(p, l, "%s%s%s", path, strcmp(path, "/") ? "/" : "", n->name);
		size_t pl = prefix ? strlen(prefix) : 0;
		int under = !prefix || (!strncmp(p, prefix, pl) && (p[pl] == 0 || p[pl] == '/'));
		int above = prefix && !strncmp(prefix, p, strlen(p)) && prefix[strlen(p)] == '/';
		if (under) {
			cairn_entry e = {p, n->type, n->mode, n->uid, n->gid, n->size, n->mtime_ns,
					 n->link};
			rc = cb(payload, &e);
		}
		if (rc == 0 && n->type == CAIRN_NODE_DIR && (under || above))
			rc = ls_tree(r, cx, n->subtree, p, prefix, cb, payload);
		free(p);
	}
	cairn_tree_free(&t);
	return rc;
}

int cairn_ls(cairn_repo *r, const cairn_snapshot *snap, const char *prefix,
	     int (*cb)(void *payload, const cairn_entry *e), void *payload)
{
	char *pf = NULL;
	if (prefix) {
		size_t l = strlen(prefix);
		pf = cairn_xmalloc(l + 2);
		snprintf(pf, l + 2, "%s%s", prefix[0] == '/' ? "" : "/", prefix);
		l = strlen(pf);
		while (l > 1 && pf[l - 1] == '/')
			pf[--l] = 0;
		if (!strcmp(pf, "/")) {
			free(pf);
			pf = NULL;
		}
	}
	cairn_codec *cx = cairn_codec_new(0);
	int rc = ls_tree(r, cx, snap->tree, "/", pf, cb, payload);
	cairn_codec_free(cx);
	free(pf);
	return rc;
}

/* --- index segments ------------------------------------------------------------------- */

typedef struct segs {
	cairn_listing list; /* the index/ objects; v[i] is list.names[i] decoded */
	cairn_idxseg *v;
	uint8_t *corrupt; /* per segment: skipped as corrupt (left empty in v) */
	size_t ncorrupt;
} segs;

static void segs_free(segs *s)
{
	for (size_t i = 0; i < s->list.n && s->v; i++)
		cairn_idxseg_free(&s->v[i]);
	cairn_listing_free(&s->list);
	free(s->v);
	free(s->corrupt);
	memset(s, 0, sizeof(*s));
}

/*
 * Load every index segment. One that fails to authenticate or decode (-EBADMSG) is
 * skipped and marked when @p skip_corrupt; other failures (a read error may be
 * passing) fail the call, as do corrupt segments without @p skip_corrupt.
 */
static int segs_load(cairn_repo *r, cairn_codec *cx, segs *s, int skip_corrupt)
{
	memset(s, 0, sizeof(*s));
	int rc = cairn_target_list_all(r->rt, "index/", &s->list);
	if (rc < 0)
		return rc;
	s->v = cairn_xcalloc(s->list.n ? s->list.n : 1, sizeof(cairn_idxseg));
	s->corrupt = cairn_xcalloc(s->list.n ? s->list.n : 1, 1);
	cairn_buf pt = CAIRN_BUF_INIT;
	for (size_t i = 0; i < s->list.n && rc == 0; i++) {
		rc = repo_load_object(r, cx, s->list.names[i], CAIRN_OBJ_INDEX, 1u << 30, 1, &pt);
		if (rc == 0)
			rc = cairn_idxseg_decode(&s->v[i], pt.data, pt.len);
		if (rc == -EBADMSG && skip_corrupt) {
			s->corrupt[i] = 1;
			s->ncorrupt++;
			rc = 0;
		} else if (rc < 0) {
			cairn_error_wrap(rc, "%s", s->list.names[i]);
		}
	}
	cairn_buf_free(&pt);
	return rc;
}

/* --- stats ---------------------------------------------------------------------------- */

int cairn_repo_stats(cairn_repo *r, cairn_stats *out)
{
	memset(out, 0, sizeof(*out));
	cairn_codec *cx = cairn_codec_new(0);
	segs s;
	idset packs = {0}, blobs = {0};
	int rc = segs_load(r, cx, &s, 1); /* opening the repository warned about corrupt ones */
	for (size_t i = 0; rc == 0 && i < s.list.n; i++) {
		for (size_t p = 0; p < s.v[i].n; p++) {
			const cairn_idx_pack *pk = &s.v[i].packs[p];
			if (!idset_add(&packs, pk->id))
				continue;
			out->packs++;
			out->stored_bytes += pk->size;
			for (size_t k = 0; k < pk->n; k++) {
				if (!idset_add(&blobs, pk->e[k].id))
					continue;
				out->blobs++;
				if (pk->e[k].type == CAIRN_BLOB_TREE)
					out->tree_blobs++;
				else {
					out->data_blobs++;
					out->unique_bytes += pk->e[k].rawlen;
				}
			}
		}
	}
	cairn_snapshot *v = NULL;
	size_t n = 0;
	if (rc == 0 && (rc = cairn_snapshots_list(r, &v, &n)) == 0) {
		out->snapshots = n;
		for (size_t i = 0; i < n; i++)
			out->raw_bytes += v[i].summary.bytes_total;
		cairn_snapshots_free(v, n);
	}
	out->index_memory = cairn_index_memory(r->idx);
	idset_free(&packs);
	idset_free(&blobs);
	segs_free(&s);
	cairn_codec_free(cx);
	return rc;
}

/* --- cat ------------------------------------------------------------------------------- */

static void catf(cairn_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void catf(cairn_buf *b, const char *fmt, ...)
{
	char tmp[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	cairn_buf_append(b, tmp, n < 0 ? 0 : (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static void cat_tree(cairn_buf *out, const cairn_tree *t)
{
	for (size_t i = 0; i < t->n; i++) {
		const cairn_node *n = &t->nodes[i];
		char h[65];
		catf(out, "%s type=%u mode=%04o uid=%u gid=%u size=%llu mtime_ns=%lld nlink=%u",
		     n->name, n->type, n->mode, n->uid, n->gid, (unsigned long long)n->size,
		     (long long)n->mtime_ns, n->nlink);
		if (n->type == CAIRN_NODE_DIR) {
			cairn_hex(h, n->subtree, 32);
			catf(out, " subtree=%s", h);
		}
		if (n->link)
			catf(out, " link=%s", n->link);
		for (size_t k = 0; k < n->n_xattrs; k++)
			catf(out, " xattr=%s(%zu bytes)", n->xattrs[k].name, n->xattrs[k].len);
		catf(out, "\n");
		for (size_t k = 0; k < n->n_extents; k++) {
			cairn_hex(h, n->extents[k].id, 32);
			catf(out, "  %s %llu\n", n->extents[k].hole ? "hole" : h,
			     (unsigned long long)n->extents[k].len);
		}
	}
}

int cairn_cat(cairn_repo *r, const char *what, cairn_buf *out)
{
	cairn_codec *cx = cairn_codec_new(0);
	cairn_buf pt = CAIRN_BUF_INIT;
	int rc = 0;
	if (!strcmp(what, "config")) {
		catf(out, "repository %s\nformat %d\nchunk id %s\nchunker min %u avg %u max %u\n"
			  "pack size %u\nzstd level %d\n",
		     r->idhex, r->format,
		     r->keys.id_fn == CAIRN_CHUNK_ID_BLAKE3 ? "blake3" : "hmac-sha256", r->chunk_min,
		     r->chunk_avg, r->chunk_max, r->pack_size, r->zstd_level);
	} else if (!strncmp(what, "index/", 6)) {
		cairn_idxseg s;
		if ((rc = repo_load_object(r, cx, what, CAIRN_OBJ_INDEX, 1u << 30, 0, &pt)) == 0 &&
		    (rc = cairn_idxseg_decode(&s, pt.data, pt.len)) == 0) {
			for (size_t i = 0; i < s.n; i++) {
				char h[65];
				cairn_hex(h, s.packs[i].id, 32);
				catf(out, "pack %s type=%u size=%llu blobs=%zu\n", h, s.packs[i].type,
				     (unsigned long long)s.packs[i].size, s.packs[i].n);
				for (size_t k = 0; k < s.packs[i].n; k++) {
					cairn_hex(h, s.packs[i].e[k].id, 32);
					catf(out, "  %s type=%u offset=%u length=%u raw=%u\n", h,
					     s.packs[i].e[k].type, s.packs[i].e[k].offset,
					     s.packs[i].e[k].clen, s.packs[i].e[k].rawlen);
				}
			}
			cairn_idxseg_free(&s);
		}
	} else if (!strncmp(what, "snapshots/", 10)) {
		cairn_snapshot s = {0};
		if ((rc = repo_load_object(r, cx, what, CAIRN_OBJ_SNAPSHOT, 16u << 20, 0, &pt)) ==
			0 &&
		    (rc = snapshot_decode(&s, pt.data, pt.len)) == 0) {
			char h[65];
			cairn_hex(h, s.tree, 32);
			catf(out, "time_ns %lld\ntree %s\nclient %s\nhost %s\nuser %s\nprogram %s\n",
			     (long long)s.time_ns, h, s.client, s.hostname, s.username, s.program);
			for (size_t i = 0; i < s.npaths; i++)
				catf(out, "path %s\n", s.paths[i]);
			for (size_t i = 0; i < s.ntags; i++)
				catf(out, "tag %s\n", s.tags[i]);
			cairn_snapshot_free(&s);
		}
	} else if (!strncmp(what, "tree/", 5)) {
		uint8_t id[32];
		cairn_tree t;
		if (cairn_unhex(id, 32, what + 5) < 0)
			rc = cairn_error_set(-EINVAL, "cat: tree/ needs a 64-digit tree id");
		else if ((rc = repo_tree_load(r, cx, id, &t)) == 0) {
			cat_tree(out, &t);
			cairn_tree_free(&t);
		}
	} else if (!strncmp(what, "keys/", 5)) {
		cairn_kdf_params k;
		char label[256];
		int64_t created;
		if ((rc = cairn_target_get(r->rt, what, &pt)) == 0 &&
		    (rc = cairn_keyfile_info(pt.data, pt.len, label, sizeof(label), &created, &k)) ==
			0)
			catf(out, "label %s\ncreated_ns %lld\nkdf argon2id t=%u m=%u KiB lanes=%u\n",
			     label, (long long)created, k.t_cost, k.m_kib, k.lanes);
	} else {
		rc = cairn_error_set(-EINVAL, "cat: unknown object '%s' (config, index/ID, "
					      "snapshots/ID, tree/ID, keys/ID)", what);
	}
	cairn_buf_free(&pt);
	cairn_codec_free(cx);
	return rc;
}

/* --- prune ----------------------------------------------------------------------------- */

static void progress(const cairn_prune_opts *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void progress(const cairn_prune_opts *o, const char *fmt, ...)
{
	if (!o->progress)
		return;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	o->progress(o->progress_payload, line);
}

int cairn_prune(cairn_repo *r, const cairn_prune_opts *o, cairn_prune_result *res)
{
	cairn_prune_opts def = CAIRN_PRUNE_OPTS_INIT;
	walker w = {0};
	segs s = {0};
	idset seen = {0};
	cairn_snapshot *snaps = NULL;
	size_t nsnaps = 0;
	cairn_packw *pw[3] = {NULL, NULL, NULL};
	cairn_idxseg fresh = {0};
	char **dead = NULL;
	size_t ndead = 0;
	int rc;
	if (!o)
		o = &def;
	memset(res, 0, sizeof(*res));
	if ((rc = repo_lock(r, 1, "prune")) < 0)
		return rc;
	w.r = r;
	w.cx = cairn_codec_new(r->zstd_level);
	/* a fresh view: packs of crashed backups first, then every index segment */
	if ((rc = (int)repo_index_adopt_orphans(r, w.cx)) < 0)
		goto out;
	/* A corrupt segment carries nothing that is lost: every pack on the target is
	 * indexed by the segments that load (adoption just indexed the packs only it
	 * named), so it is left out and replaced with the rest. A segment that cannot
	 * be read at all may be fine on the next try: then nothing is deleted. */
	if ((rc = segs_load(r, w.cx, &s, 1)) < 0) {
		cairn_error_wrap(rc, "prune: an index segment is unreadable, nothing deleted "
				     "(run 'cairn check')");
		goto out;
	}
	cairn_index_free(r->idx);
	r->idx = cairn_index_new();
	for (size_t i = 0; i < s.list.n; i++)
		cairn_index_add_segment(r->idx, &s.v[i]);
	cairn_index_compact(r->idx);

	/* mark */
	if ((rc = cairn_snapshots_list(r, &snaps, &nsnaps)) < 0)
		goto out;
	for (size_t i = 0; i < nsnaps; i++) {
		progress(o, "marking snapshot %zu of %zu", i + 1, nsnaps);
		if ((rc = mark_tree(&w, snaps[i].tree, "/")) < 0) {
			cairn_error_wrap(rc, "prune: snapshot %.8s cannot be read completely, "
					     "nothing deleted", snaps[i].idhex);
			goto out;
		}
	}

	/* sweep: decide per pack (the first copy of a blob counts, later copies are unused) */
	idset dup = {0};
	for (size_t i = 0; i < s.list.n; i++) {
		for (size_t p = 0; p < s.v[i].n; p++) {
			cairn_idx_pack *pk = &s.v[i].packs[p];
			if (!idset_add(&seen, pk->id))
				continue; /* the same pack listed twice */
			uint64_t used = 0, unused = 0;
			int *keep = cairn_xcalloc(pk->n ? pk->n : 1, sizeof(int));
			for (size_t k = 0; k < pk->n; k++) {
				res->blobs_total++;
				if (idset_has(&w.blobs, pk->e[k].id) && idset_add(&dup, pk->e[k].id)) {
					keep[k] = 1;
					used += pk->e[k].clen;
				} else {
					res->blobs_unused++;
					unused += pk->e[k].clen;
				}
			}
			res->packs_total++;
			res->bytes_total += pk->size;
			char name[CAIRN_PACK_NAME_MAX];
			cairn_pack_name(name, pk->id);
			int drop = used == 0;
			int repack = !drop && (double)unused > o->repack_threshold * (double)(used + unused);
			if (!drop && !repack) {
				cairn_idxseg_add(&fresh, pk->id, pk->type, pk->size, pk->e, pk->n);
				free(keep);
				continue;
			}
			if (repack && !o->dry_run) {
				uint8_t key[32];
				cairn_buf enc = CAIRN_BUF_INIT, plain = CAIRN_BUF_INIT;
				cairn_pack_key(key, &r->keys, pk->id);
				for (size_t k = 0; k < pk->n && rc == 0; k++) {
					if (!keep[k])
						continue;
					const cairn_pack_entry *e = &pk->e[k];
					enc.len = 0;
					cairn_buf_reserve(&enc, e->clen);
					rc = cairn_target_get_range(r->rt, name, e->offset, e->clen,
								    enc.data);
					if (rc == 0)
						rc = cairn_pack_blob_decode(w.cx, &r->keys, key, e,
									    enc.data, &plain);
					if (rc < 0) {
						cairn_error_wrap(rc, "prune: repacking %s", name);
						break;
					}
					cairn_packw **cur = &pw[e->type];
					if (!*cur)
						*cur = cairn_packw_new(&r->keys, e->type);
					rc = cairn_packw_add(*cur, w.cx, e->id, e->type, plain.data,
							     plain.len);
					if (rc == 0 && cairn_packw_size(*cur) >= r->pack_size) {
						if ((rc = cairn_packw_finish(*cur, w.cx)) == 0 &&
						    (rc = repo_pack_store(r, *cur, &fresh)) == 0)
							res->bytes_total += 0;
						cairn_packw_free(*cur);
						*cur = NULL;
					}
				}
				cairn_wipe(key, sizeof(key));
				cairn_buf_free(&enc);
				cairn_buf_free(&plain);
				if (rc < 0) {
					free(keep);
					idset_free(&dup);
					goto out;
				}
			}
			if (repack)
				res->packs_repacked++;
			else
				res->packs_deleted++;
			res->bytes_freed += pk->size;
			dead = cairn_xrealloc(dead, (ndead + 1) * sizeof(char *));
			dead[ndead++] = cairn_xstrdup(name);
			free(keep);
		}
	}
	idset_free(&dup);
	/* every used blob must exist somewhere */
	for (size_t i = 0; i < w.blobs.cap; i++) {
		if (w.blobs.used[i] && !cairn_index_lookup(r->idx, w.blobs.v[i], NULL)) {
			char h[65];
			cairn_hex(h, w.blobs.v[i], 32);
			rc = cairn_error_set(-EBADMSG, "prune: blob %.16s is used but in no pack; "
						       "nothing deleted (run 'cairn check')", h);
			goto out;
		}
	}
	if (o->dry_run)
		goto out;
	for (int t = 1; t < 3; t++) {
		if (pw[t] && rc == 0) {
			if ((rc = cairn_packw_finish(pw[t], w.cx)) == 0)
				rc = repo_pack_store(r, pw[t], &fresh);
		}
		cairn_packw_free(pw[t]);
		pw[t] = NULL;
	}
	if (rc < 0)
		goto out;
	/* the new complete index, then the old segments, then the dead packs */
	progress(o, "writing the new index");
	if (!ndead && s.list.n <= 1 && !s.ncorrupt)
		goto out; /* nothing to change */
	char newest[80] = "";
	for (;;) {
		/* write in segments of at most 1000 packs */
		cairn_idxseg part = {0};
		size_t take = fresh.n < 1000 ? fresh.n : 1000;
		if (!take)
			break;
		part.packs = fresh.packs;
		part.n = part.cap = take;
		cairn_idxseg chunk = {0};
		for (size_t i = 0; i < take; i++)
			cairn_idxseg_add(&chunk, part.packs[i].id, part.packs[i].type,
					 part.packs[i].size, part.packs[i].e, part.packs[i].n);
		if ((rc = repo_index_write(r, w.cx, &chunk, newest)) < 0) {
			cairn_idxseg_free(&chunk);
			goto out;
		}
		for (size_t i = 0; i < take; i++)
			free(fresh.packs[i].e);
		memmove(fresh.packs, fresh.packs + take, (fresh.n - take) * sizeof(cairn_idx_pack));
		fresh.n -= take;
	}
	for (size_t i = 0; i < s.list.n; i++) {
		if ((rc = cairn_target_del(r->t, s.list.names[i])) < 0 && rc != -ENOENT)
			goto out;
		if (s.corrupt[i])
			repo_warn(r, "%s: unusable index segment removed (its packs are indexed "
				     "again)", s.list.names[i]);
	}
	progress(o, "deleting %zu packs", ndead);
	rc = 0;
	for (size_t i = 0; i < ndead; i++) {
		int dr = cairn_target_del(r->t, dead[i]);
		if (dr < 0 && dr != -ENOENT)
			repo_warn(r, "%s: not deleted: %s (prune again later)", dead[i],
				  cairn_error_last());
	}
out:
	for (int t = 0; t < 3; t++)
		cairn_packw_free(pw[t]);
	for (size_t i = 0; i < ndead; i++)
		free(dead[i]);
	free(dead);
	cairn_idxseg_free(&fresh);
	cairn_snapshots_free(snaps, nsnaps);
	idset_free(&seen);
	idset_free(&w.trees);
	idset_free(&w.blobs);
	segs_free(&s);
	cairn_codec_free(w.cx);
	repo_unlock(r);
	return rc;
}
