/*
 * reindex.c - rebuild the index from the packs (`cairn repair --index`).
 *
 * The way back from a lost or damaged pack on a single target: after the
 * rebuild the index names only blobs that really authenticate, so backups
 * store the lost chunks again (an unchanged file whose chunks are not all
 * indexed is read again, see the archiver) instead of deduplicating against
 * data that is gone. Order: the new segments first, then the old ones are
 * deleted, so a crash leaves at worst duplicate index entries.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/repo_int.h"

/* Read one pack and append its good blobs to @p seg. */
static void reindex_pack(cairn_repo *r, cairn_codec *cx, const char *name, cairn_idxseg *seg,
			 cairn_reindex_result *res, void (*report)(void *, const char *),
			 void *payload)
{
	uint8_t id[32], key[32];
	cairn_buf b = CAIRN_BUF_INIT, plain = CAIRN_BUF_INIT;
	cairn_pack_entry *e = NULL;
	size_t n = 0, kept = 0;
	uint32_t tl;
	cairn_pack_trailer tr;
	if (cairn_pack_name_parse(name, id) < 0)
		return;
	res->packs++;
	if (cairn_target_get(r->rt, name, &b) < 0 || b.len < CAIRN_PACK_FOOTER ||
	    cairn_pack_footer(b.data + b.len - CAIRN_PACK_FOOTER, b.len, &tl) < 0 ||
	    cairn_pack_trailer_parse(&tr, b.data + b.len - tl, tl, b.len) < 0) {
		res->packs_bad++;
		cairn_say(report, payload, "%s: unreadable, dropped from the index: %s", name,
		    cairn_error_last());
		cairn_buf_free(&b);
		return;
	}
	int rc = cairn_pack_header_decode(cx, &r->keys, id, b.data + tr.hdr_off, tr.hdr_len,
					  tr.hdr_off, &e, &n);
	cairn_pack_trailer_free(&tr);
	if (rc < 0) {
		res->packs_bad++;
		cairn_say(report, payload, "%s: header unreadable, dropped from the index: %s", name,
		    cairn_error_last());
		cairn_buf_free(&b);
		return;
	}
	cairn_pack_key(key, &r->keys, id);
	cairn_pack_entry *good = cairn_xcalloc(n ? n : 1, sizeof(*good));
	for (size_t i = 0; i < n; i++) {
		if (cairn_pack_blob_decode(cx, &r->keys, key, &e[i], b.data + e[i].offset, &plain) ==
		    0) {
			good[kept++] = e[i];
		} else {
			char hex[65];
			cairn_hex(hex, e[i].id, 32);
			res->blobs_dropped++;
			cairn_say(report, payload, "%s: blob %.16s at offset %u is damaged, dropped", name,
			    hex, e[i].offset);
		}
	}
	cairn_wipe(key, sizeof(key));
	res->blobs_kept += kept;
	if (kept) {
		uint8_t type = good[0].type;
		cairn_idxseg_add(seg, id, type, b.len, good, kept);
	}
	free(good);
	free(e);
	cairn_buf_free(&b);
	cairn_buf_free(&plain);
}

int cairn_repair_index(cairn_repo *r, cairn_reindex_result *res,
		       void (*report)(void *payload, const char *msg), void *payload)
{
	cairn_listing packs = {0}, old = {0};
	cairn_idxseg seg = {0};
	int rc;
	memset(res, 0, sizeof(*res));
	if ((rc = repo_lock(r, 1, "repair index")) < 0)
		return rc;
	cairn_codec *cx = cairn_codec_new(0);
	if ((rc = cairn_target_list_all(r->rt, "index/", &old)) < 0 ||
	    (rc = cairn_target_list_all(r->rt, "data/", &packs)) < 0)
		goto out;
	for (size_t i = 0; i < packs.n && rc == 0; i++) {
		reindex_pack(r, cx, packs.names[i], &seg, res, report, payload);
		if (seg.n >= 1000)
			rc = repo_index_write(r, cx, &seg, NULL);
	}
	if (rc == 0)
		rc = repo_index_write(r, cx, &seg, NULL);
	if (rc < 0)
		goto out; /* the old segments stay: nothing is lost */
	for (size_t i = 0; i < old.n; i++) {
		if (cairn_target_del(r->t, old.names[i]) == 0)
			res->segments_replaced++;
	}
	/* the in-memory index now follows the new segments */
	cairn_index_free(r->idx);
	r->idx = cairn_index_new();
	rc = repo_index_load(r);
out:
	cairn_idxseg_free(&seg);
	cairn_listing_free(&packs);
	cairn_listing_free(&old);
	cairn_codec_free(cx);
	repo_unlock(r);
	return rc;
}
