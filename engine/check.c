/*
 * check.c - structural and data verification of a repository.
 *
 * Structure: snapshots -> trees -> file chunks -> index -> packs on the
 * target. Data (--read-data): every pack is read in order, a window at a
 * time, through its trailer's checksums (the same keyless check scrub
 * uses); its encrypted header is compared with the index, and every blob is
 * authenticated and its content hashed back to its id.
 *
 * Damage (a missing, truncated or unreadable pack, a blob that fails) is
 * remembered and finally mapped back to the snapshots and paths that need
 * it (check_affected.c), so the operator learns what was lost, not only
 * which object broke.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/check_int.h"

typedef struct ck {
	cairn_repo *r;
	const cairn_check_opts *o;
	cairn_check_result *res;
	cairn_check_report_fn report;
	void *payload;
	cairn_codec *cx;
	ck_idset seen;   /* visited trees */
	ck_damage dmg;   /* what is damaged, for the affected walk */
	pthread_mutex_t mu; /* reports, counters and damage while packs are read in parallel */
} ck;

static void vreport(ck *c, int level, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
static void vreport(ck *c, int level, const char *fmt, va_list ap)
{
	char msg[2048];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	pthread_mutex_lock(&c->mu);
	if (level == CAIRN_CHECK_ERROR)
		c->res->errors++;
	else
		c->res->warnings++;
	if (c->report)
		c->report(c->payload, level, msg);
	pthread_mutex_unlock(&c->mu);
}

static void err(ck *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void err(ck *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(c, CAIRN_CHECK_ERROR, fmt, ap);
	va_end(ap);
}

static void warn(ck *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(ck *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(c, CAIRN_CHECK_WARNING, fmt, ap);
	va_end(ap);
}

/* Remember damage: a whole pack (by index number), or one blob of pack @p no. */
static void bad_pack(ck *c, const uint8_t id[32])
{
	uint32_t no;
	pthread_mutex_lock(&c->mu);
	c->dmg.any = 1;
	if (cairn_index_pack_find(c->r->idx, id, &no) && no < c->dmg.npacks)
		c->dmg.packs[no] = 1;
	pthread_mutex_unlock(&c->mu);
}

static void bad_blob(ck *c, const uint8_t id[32])
{
	pthread_mutex_lock(&c->mu);
	c->dmg.any = 1;
	ck_idset_add(&c->dmg.blobs, id);
	pthread_mutex_unlock(&c->mu);
}

static void check_tree(ck *c, const uint8_t id[32], const char *path, const char *snap)
{
	if (!ck_idset_add(&c->seen, id))
		return;
	cairn_tree t;
	c->res->trees++;
	if (repo_tree_load(c->r, c->cx, id, &t) < 0) {
		char h[65];
		cairn_hex(h, id, 32);
		err(c, "snapshot %.8s: %s: tree %.16s unreadable: %s", snap, path, h,
		    cairn_error_last());
		c->dmg.any = 1;
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
					c->dmg.any = 1;
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

/*
 * A pack is read in windows (CAIRN_PACK_WINDOW, 2 MiB, each ending on a
 * segment boundary), so a reader holds a window (and a blob that runs past
 * it), not the pack: two readers of whole 16 MiB packs were most of check's
 * memory (peak 66 MiB for /usr; 44-45 MiB with windows of 1 or 2 MiB, 50
 * with 4, all as fast). On a remote target each window is one ranged GET.
 */

/* Per reader: the window of pack bytes, the pack's header, a blob's plaintext. */
typedef struct rd_bufs {
	cairn_buf win, hdr, plain, tail;
} rd_bufs;

static void rd_bufs_free(rd_bufs *b)
{
	cairn_buf_free(&b->win);
	cairn_buf_free(&b->hdr);
	cairn_buf_free(&b->plain);
	cairn_buf_free(&b->tail);
}

/* Authenticate one blob of the window and hash it back to its id; 1 if good. */
static int read_blob(ck *c, cairn_codec *cx, const char *name, const uint8_t key[32],
		     const cairn_pack_entry *e, const uint8_t *enc, int indexed, uint32_t no,
		     cairn_buf *plain)
{
	const char *on = c->r->rt->name;
	if (cairn_pack_blob_decode(cx, &c->r->keys, key, e, enc, plain) < 0) {
		char h[65];
		cairn_hex(h, e->id, 32);
		err(c, "%s on %s: blob %.16s at offset %u: %s", name, on, h, e->offset,
		    cairn_error_last());
		bad_blob(c, e->id);
		return 0;
	}
	cairn_blob_loc loc;
	if (indexed && cairn_index_lookup(c->r->idx, e->id, &loc) && loc.pack == no &&
	    (loc.offset != e->offset || loc.clen != e->clen))
		err(c, "%s on %s: blob at offset %u disagrees with the index", name, on, e->offset);
	return 1;
}

/*
 * Read one pack of @p size bytes and verify everything in it: its trailer,
 * then its header, then its bytes in order through the trailer's checksums
 * (the keyless check scrub makes) while every blob is authenticated.
 */
static void read_pack(ck *c, cairn_codec *cx, rd_bufs *b, const char *name, const uint8_t id[32],
		      uint64_t size)
{
	cairn_target *t = c->r->rt;
	const char *on = t->name;
	cairn_pack_trailer tr = {0};
	cairn_pack_entry *e = NULL;
	cairn_pack_sum *sum = NULL;
	size_t n = 0, k = 0;
	uint64_t nblobs = 0, off = 0, base = 0;
	int64_t bad;
	int told = 0; /* a checksum mismatch was reported */

	/* footer, trailer and (usually) header: the pack's end, one read */
	uint64_t tail_off;
	int rc = cairn_pack_read_end(t, name, size, &b->tail, &tail_off, &tr);
	if (rc == -EBADMSG)
		goto damaged;
	if (rc < 0)
		goto unreadable;
	pthread_mutex_lock(&c->mu);
	c->res->packs_read++;
	c->res->bytes_read += size;
	pthread_mutex_unlock(&c->mu);

	/* the header; without it the bytes are still checked against the trailer */
	b->hdr.len = 0;
	cairn_buf_reserve(&b->hdr, tr.hdr_len);
	if (tr.hdr_off >= tail_off)
		memcpy(b->hdr.data, b->tail.data + (tr.hdr_off - tail_off), tr.hdr_len);
	else if (cairn_target_get_range(t, name, tr.hdr_off, tr.hdr_len, b->hdr.data) < 0)
		goto unreadable;
	b->hdr.len = tr.hdr_len;
	int located = cairn_pack_header_decode(cx, &c->r->keys, id, b->hdr.data, b->hdr.len,
					       tr.hdr_off, &e, &n) == 0;
	char hdr_error[CAIRN_ERRMSG_MAX];
	snprintf(hdr_error, sizeof(hdr_error), "%s", located ? "" : cairn_error_last());
	uint8_t key[32];
	cairn_pack_key(key, &c->r->keys, id);
	uint32_t no;
	int indexed = cairn_index_pack_find(c->r->idx, id, &no);

	/* the blobs, a window at a time */
	sum = cairn_pack_sum_new(&tr);
	b->win.len = 0;
	while (off < tr.hdr_off) {
		uint64_t end = off + (b->win.len < CAIRN_PACK_WINDOW ? CAIRN_PACK_WINDOW - b->win.len : 0);
		if (k < n && end < (uint64_t)e[k].offset + e[k].clen)
			end = (uint64_t)e[k].offset + e[k].clen; /* the next blob whole */
		if (tr.seg_size <= CAIRN_PACK_WINDOW) /* not for a forged 1 GiB segment size */
			end = (end + tr.seg_size - 1) / tr.seg_size * tr.seg_size;
		if (end > tr.hdr_off || end <= off)
			end = tr.hdr_off;
		size_t want = (size_t)(end - off);
		cairn_buf_reserve(&b->win, want);
		if (cairn_target_get_range(t, name, off, want, b->win.data + b->win.len) < 0)
			goto unreadable_at;
		if (cairn_pack_sum_feed(sum, b->win.data + b->win.len, want) < 0) {
			err(c, "%s on %s: %s", name, on, cairn_error_last());
			told = 1;
		}
		b->win.len += want;
		off = end;
		for (; k < n && (uint64_t)e[k].offset + e[k].clen <= off; k++)
			nblobs += (uint64_t)read_blob(c, cx, name, key, &e[k],
						      b->win.data + (e[k].offset - base), indexed,
						      no, &b->plain);
		uint64_t keep = k < n ? e[k].offset : off;
		memmove(b->win.data, b->win.data + (keep - base), (size_t)(off - keep));
		b->win.len = (size_t)(off - keep);
		base = keep;
	}
	cairn_wipe(key, sizeof(key));
	cairn_pack_sum_feed(sum, b->hdr.data, b->hdr.len);
	if (cairn_pack_sum_final(sum, &bad) < 0 && !told)
		err(c, "%s on %s: %s", name, on, cairn_error_last());
	if (!located) {
		err(c, "%s on %s: %s (none of its blobs can be located)", name, on, hdr_error);
		bad_pack(c, id);
	}
	goto done;

unreadable_at:
	cairn_wipe(key, sizeof(key));
	err(c, "%s on %s: unreadable at byte %llu: %s", name, on, (unsigned long long)off,
	    cairn_error_last());
	goto bad_pack;
unreadable:
	err(c, "%s on %s: unreadable: %s", name, on, cairn_error_last());
	goto bad_pack;
damaged:
	err(c, "%s on %s: %s", name, on, cairn_error_last());
bad_pack:
	bad_pack(c, id);
done:
	pthread_mutex_lock(&c->mu);
	c->res->blobs_read += nblobs;
	pthread_mutex_unlock(&c->mu);
	cairn_pack_sum_free(sum);
	cairn_pack_trailer_free(&tr);
	free(e);
}

/*
 * --read-data: packs are read and verified by r->threads workers in parallel
 * (reading, authenticating, decompressing and hashing a pack back to its
 * ids is CPU work); reports and counters go through c->mu.
 */
typedef struct rd_work {
	ck *c;
	const cairn_listing *pl;
	size_t *sel, nsel;  /* indexes into pl of the packs to read */
	atomic_size_t next; /* next entry of sel to take */
	atomic_size_t done;
} rd_work;

static void *read_worker(void *arg)
{
	rd_work *w = arg;
	ck *c = w->c;
	cairn_codec *cx = cairn_codec_new(0);
	rd_bufs b = {CAIRN_BUF_INIT, CAIRN_BUF_INIT, CAIRN_BUF_INIT, CAIRN_BUF_INIT};
	size_t k;
	while ((k = atomic_fetch_add(&w->next, 1)) < w->nsel) {
		const char *name = w->pl->names[w->sel[k]];
		uint8_t id[32];
		cairn_pack_name_parse(name, id);
		read_pack(c, cx, &b, name, id, w->pl->sizes[w->sel[k]]);
		size_t d = atomic_fetch_add(&w->done, 1) + 1;
		if (c->o->progress) {
			char line[128];
			snprintf(line, sizeof(line), "reading pack %zu of %zu", d, w->nsel);
			pthread_mutex_lock(&c->mu);
			c->o->progress(c->o->progress_payload, line);
			pthread_mutex_unlock(&c->mu);
		}
	}
	rd_bufs_free(&b);
	cairn_codec_free(cx);
	return NULL;
}

int cairn_check(cairn_repo *r, const cairn_check_opts *o, cairn_check_result *res,
		cairn_check_report_fn report, void *payload)
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
	pthread_mutex_init(&c.mu, NULL);
	size_t np = cairn_index_npacks(r->idx);
	c.dmg.npacks = np;
	c.dmg.packs = cairn_xcalloc(np ? np : 1, 1);
	if (r->index_errors)
		err(&c, "%llu index segment(s) could not be loaded (see the warnings above; "
		    "'cairn prune' replaces corrupt ones)",
		    (unsigned long long)r->index_errors);

	/* snapshots and trees */
	cairn_listing sl = {0};
	int rc = cairn_target_list_all(r->rt, "snapshots/", &sl);
	if (rc < 0) {
		err(&c, "cannot list snapshots: %s", cairn_error_last());
	}
	cairn_buf pt = CAIRN_BUF_INIT;
	ck_snap *snaps = cairn_xcalloc(sl.n ? sl.n : 1, sizeof(ck_snap));
	size_t nsnaps = 0;
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
		snprintf(snaps[nsnaps].hex, sizeof(snaps[nsnaps].hex), "%s", s.idhex);
		memcpy(snaps[nsnaps++].tree, s.tree, 32);
		cairn_snapshot_free(&s);
	}
	cairn_buf_free(&pt);
	cairn_listing_free(&sl);

	/* packs: the index's packs must exist with their sizes */
	cairn_listing pl = {0};
	if (cairn_target_list_all(r->rt, "data/", &pl) < 0)
		err(&c, "cannot list packs: %s", cairn_error_last());
	uint8_t *found = cairn_xcalloc(np ? np : 1, 1);
	for (size_t i = 0; i < pl.n; i++) {
		uint8_t id[32];
		uint32_t no;
		if (cairn_pack_name_parse(pl.names[i], id) < 0) {
			warn(&c, "%s on %s: not a pack name (ignored)", pl.names[i], r->rt->name);
			continue;
		}
		if (!cairn_index_pack_find(r->idx, id, &no)) {
			warn(&c, "%s on %s: pack not in any index (left by an interrupted backup; "
				 "the next backup adopts it)", pl.names[i], r->rt->name);
			continue;
		}
		found[no] = 1;
		uint64_t size;
		cairn_index_pack_info(r->idx, no, NULL, NULL, &size);
		if (size != pl.sizes[i]) {
			err(&c, "%s on %s: size %llu, index says %llu (truncated or damaged)",
			    pl.names[i], r->rt->name, (unsigned long long)pl.sizes[i],
			    (unsigned long long)size);
			bad_pack(&c, id);
		}
		res->packs++;
	}
	for (size_t no = 0; no < np; no++) {
		if (found[no])
			continue;
		uint8_t id[32];
		char name[CAIRN_PACK_NAME_MAX];
		cairn_index_pack_info(r->idx, (uint32_t)no, id, NULL, NULL);
		cairn_pack_name(name, id);
		err(&c, "%s: pack named by the index is missing on %s", name, r->rt->name);
		c.dmg.any = 1;
		c.dmg.packs[no] = 1;
	}

	/* data */
	if (o->read_data) {
		rd_work w = {.c = &c, .pl = &pl};
		uint64_t s = o->seed ? o->seed : 0x9E3779B97F4A7C15ull;
		w.sel = cairn_xcalloc(pl.n ? pl.n : 1, sizeof(size_t));
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
			w.sel[w.nsel++] = i;
		}
		unsigned nth = r->threads < 1 ? 1 : r->threads;
		if (nth > w.nsel)
			nth = w.nsel ? (unsigned)w.nsel : 1;
		pthread_t *th = cairn_xcalloc(nth, sizeof(pthread_t));
		unsigned started = 0;
		for (unsigned t = 1; t < nth; t++)
			if (pthread_create(&th[t], NULL, read_worker, &w) == 0)
				started++;
			else
				break;
		read_worker(&w); /* this thread reads too */
		for (unsigned t = 1; t <= started; t++)
			pthread_join(th[t], NULL);
		free(th);
		free(w.sel);
	}
	/* what the damage costs: the snapshots and paths that need it */
	if (c.dmg.any)
		res->affected = ck_affected(r, c.cx, &c.dmg, snaps, nsnaps, 50, report, payload);
	free(snaps);
	free(found);
	cairn_listing_free(&pl);
	ck_idset_free(&c.seen);
	ck_idset_free(&c.dmg.blobs);
	free(c.dmg.packs);
	cairn_codec_free(c.cx);
	pthread_mutex_destroy(&c.mu);
	if (res->errors)
		return cairn_error_set(-EBADMSG, "check found %llu error(s)",
				       (unsigned long long)res->errors);
	return 0;
}
