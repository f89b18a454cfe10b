/*
 * repo.c - creating and opening repositories, keys, objects, blobs, the
 * index, and the local cache.
 *
 * DESIGN
 * Objects are immutable and never renamed, so the local cache (index
 * segments and tree packs, stored encrypted exactly as on the target) is
 * valid by name alone; a cached copy that fails authentication is dropped
 * and fetched again. A corrupt or unreadable index segment does not stop
 * the repository from opening: it is reported, and the packs it named are
 * re-indexed from their own headers by the next backup (orphan adoption).
 */
#include "engine/repo_int.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chunker/chunker.h"
#include "engine/config_int.h"

void repo_warn(cairn_repo *r, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&r->mu);
	if (r->warn)
		r->warn(r->warn_payload, msg);
	else
		fprintf(stderr, "cairn: warning: %s\n", msg);
	pthread_mutex_unlock(&r->mu);
}

void cairn_repo_set_warn(cairn_repo *r, void (*warn)(void *, const char *), void *payload)
{
	r->warn = warn;
	r->warn_payload = payload;
}

const char *cairn_repo_id(const cairn_repo *r)
{
	return r->idhex;
}

cairn_target *cairn_repo_target(cairn_repo *r)
{
	return r->t;
}

/* --- config ------------------------------------------------------------------ */

/* Decode the config into r, but for the chunk id function: *id_fn, for the key set. */
static int config_load(cairn_repo *r, const cairn_buf *b, int *id_fn)
{
	cairn_config c;
	int rc = cairn_config_decode(&c, b->data, b->len);
	if (rc < 0)
		return cairn_error_wrap(rc, "%s", r->t->name);
	*id_fn = c.id_fn;
	r->format = c.format;
	cairn_hex(r->idhex, c.repo_id, 32);
	r->chunk_min = c.chunk_min;
	r->chunk_avg = c.chunk_avg;
	r->chunk_max = c.chunk_max;
	r->pack_size = c.pack_size;
	r->zstd_level = c.zstd_level;
	return 0;
}

static int write_key(cairn_target *t, const cairn_keyset *ks, const char *pass,
		     const cairn_kdf_params *kdf, char idhex[17], char *name, size_t name_cap)
{
	char label[300], host[256] = "", id[8];
	const char *user = getenv("USER");
	gethostname(host, sizeof(host) - 1);
	snprintf(label, sizeof(label), "%s@%s", user ? user : "root", host);
	cairn_buf f = CAIRN_BUF_INIT;
	int rc = cairn_keyfile_create(&f, ks, pass, kdf, label, cairn_wall_ns());
	if (rc < 0)
		return rc;
	cairn_random(id, sizeof(id));
	cairn_hex(idhex, id, sizeof(id));
	snprintf(name, name_cap, "keys/%s", idhex);
	rc = cairn_target_put(t, name, f.data, f.len);
	cairn_buf_free(&f);
	return rc;
}

int cairn_repo_init(cairn_target *t, const char *pass, const cairn_init_opts *o)
{
	cairn_init_opts def = CAIRN_INIT_OPTS_INIT;
	uint64_t sz;
	int rc;
	if (!o)
		o = &def;
	if (!t || !pass)
		return cairn_error_set(-EINVAL, "init: missing target or passphrase");
	if (!*pass)
		return cairn_error_set(-EINVAL, "init: empty passphrase refused");
	rc = cairn_target_stat(t, "config", &sz);
	if (rc == 0)
		return cairn_error_set(-EEXIST, "%s: a repository already exists there", t->name);
	if (rc != -ENOENT)
		return rc;
	uint32_t mn = o->chunk_min ? o->chunk_min : CAIRN_CHUNKER_DEFAULT_MIN;
	uint32_t av = o->chunk_avg ? o->chunk_avg : CAIRN_CHUNKER_DEFAULT_AVG;
	uint32_t mx = o->chunk_max ? o->chunk_max : CAIRN_CHUNKER_DEFAULT_MAX;
	uint32_t pack = o->pack_size ? o->pack_size : (16u << 20);
	int level = o->zstd_level < 0 ? 3 : o->zstd_level;
	uint64_t gear[256] = {0};
	cairn_chunker ck;
	if (cairn_chunker_init(&ck, gear, mn, av, mx) < 0)
		return cairn_error_set(-EINVAL, "init: invalid chunk sizes %u/%u/%u (need 64 <= min "
						"<= avg <= max <= 1 GiB)", mn, av, mx);
	if (pack < (1u << 20) || pack > (1u << 30) || pack < mx + (1u << 16))
		return cairn_error_set(-EINVAL, "init: pack size %u out of range (1 MiB..1 GiB, above "
						"the largest chunk)", pack);
	if (level > 19)
		return cairn_error_set(-EINVAL, "init: zstd level %d out of range (0..19)", level);
	int id_fn = o->chunk_id ? o->chunk_id : CAIRN_CHUNK_ID_BLAKE3;
	if (!cairn_chunk_id_known(id_fn))
		return cairn_error_set(-EINVAL, "init: unknown chunk id function %d", id_fn);
	cairn_kdf_params kdf = CAIRN_KDF_DEFAULT;
	if (o->kdf_t)
		kdf.t_cost = o->kdf_t;
	if (o->kdf_m_kib)
		kdf.m_kib = o->kdf_m_kib;
	if (o->kdf_lanes)
		kdf.lanes = o->kdf_lanes;

	cairn_config c = {.format = id_fn == CAIRN_CHUNK_ID_HMAC_SHA256 ? 1 : 2,
			  .id_fn = id_fn,
			  .chunk_min = mn,
			  .chunk_avg = av,
			  .chunk_max = mx,
			  .pack_size = pack,
			  .zstd_level = level,
			  .created_s = (uint64_t)(cairn_wall_ns() / 1000000000)};
	uint8_t cfg[CAIRN_CONFIG_MAX];
	cairn_keyset ks;
	char kid[17], kname[64];
	cairn_random(c.repo_id, sizeof(c.repo_id));
	cairn_keyset_generate(&ks, c.repo_id);
	/* the key first: a config without a key would be an unusable repository */
	rc = write_key(t, &ks, pass, &kdf, kid, kname, sizeof(kname));
	cairn_wipe(&ks, sizeof(ks));
	if (rc < 0)
		return rc;
	/* format 1 when it suffices: every earlier cairn reads the repository */
	return cairn_target_put(t, "config", cfg, cairn_config_encode(cfg, &c));
}

/* --- cache ------------------------------------------------------------------- */

static char *cache_path(cairn_repo *r, const char *name)
{
	size_t n = strlen(r->cache) + strlen(name) + 2;
	char *p = cairn_xmalloc(n);
	snprintf(p, n, "%s/%s", r->cache, name);
	return p;
}

static int cache_get(cairn_repo *r, const char *name, cairn_buf *out)
{
	if (!r->cache)
		return -ENOENT;
	char *p = cache_path(r, name);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	free(p);
	if (fd < 0)
		return -ENOENT;
	struct stat st;
	int rc = -EIO;
	if (fstat(fd, &st) == 0) {
		out->len = 0;
		cairn_buf_reserve(out, (size_t)st.st_size);
		ssize_t n = pread(fd, out->data, (size_t)st.st_size, 0);
		if (n == st.st_size) {
			out->len = (size_t)n;
			rc = 0;
		}
	}
	close(fd);
	return rc;
}

static void mkdirs(char *path)
{
	for (char *s = strchr(path + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = 0;
		mkdir(path, 0700);
		*s = '/';
	}
}

static void cache_put(cairn_repo *r, const char *name, const void *data, size_t len)
{
	if (!r->cache)
		return;
	char *p = cache_path(r, name);
	size_t tl = strlen(p) + 32;
	char *tmp = cairn_xmalloc(tl);
	snprintf(tmp, tl, "%s.tmp.%d", p, (int)gettid());
	mkdirs(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		ssize_t n = write(fd, data, len);
		close(fd);
		if (n == (ssize_t)len && rename(tmp, p) == 0) {
			tmp[0] = 0;
			cairn_fdcache_drop(r->cache_fds, name); /* a descriptor would see the old file */
		}
		if (tmp[0])
			unlink(tmp);
	}
	free(tmp);
	free(p);
}

static void cache_drop(cairn_repo *r, const char *name)
{
	if (!r->cache)
		return;
	cairn_fdcache_drop(r->cache_fds, name);
	char *p = cache_path(r, name);
	unlink(p);
	free(p);
}

static char *default_cache_root(void)
{
	const char *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
	char buf[4096];
	if (x && *x)
		snprintf(buf, sizeof(buf), "%s/cairn", x);
	else if (h && *h)
		snprintf(buf, sizeof(buf), "%s/.cache/cairn", h);
	else
		return NULL;
	return cairn_xstrdup(buf);
}

/* --- objects ------------------------------------------------------------------ */

int repo_save_object(cairn_repo *r, cairn_codec *cx, const char *dir, uint8_t kind,
		     const void *data, size_t len, char name[80])
{
	uint8_t id[32];
	char hex[65];
	cairn_buf b = CAIRN_BUF_INIT;
	int rc = cairn_seal(cx, &r->keys, kind, data, len, &b);
	if (rc < 0)
		return rc;
	cairn_random(id, sizeof(id));
	cairn_hex(hex, id, sizeof(id));
	snprintf(name, 80, "%s/%s", dir, hex);
	rc = cairn_target_put(r->t, name, b.data, b.len);
	cairn_buf_free(&b);
	return rc;
}

int repo_load_object(cairn_repo *r, cairn_codec *cx, const char *name, uint8_t kind,
		     size_t max, int cacheable, cairn_buf *out)
{
	cairn_buf raw = CAIRN_BUF_INIT;
	int rc, cached = 0;
	if (cacheable && cache_get(r, name, &raw) == 0)
		cached = 1;
	else if ((rc = cairn_target_get(r->rt, name, &raw)) < 0)
		goto done;
	rc = cairn_unseal(cx, &r->keys, kind, raw.data, raw.len, max, out);
	if (rc < 0 && cached) {
		/* a damaged cache entry: drop it and use the target's copy */
		cache_drop(r, name);
		raw.len = 0;
		if ((rc = cairn_target_get(r->rt, name, &raw)) < 0)
			goto done;
		cached = 0;
		rc = cairn_unseal(cx, &r->keys, kind, raw.data, raw.len, max, out);
	}
	if (rc < 0) {
		cairn_error_wrap(rc, "%s on %s", name, r->t->name);
		goto done;
	}
	if (cacheable && !cached)
		cache_put(r, name, raw.data, raw.len);
done:
	cairn_buf_free(&raw);
	return rc;
}

/* --- open ------------------------------------------------------------------------ */


static int open_keys(cairn_repo *r, const char *pass)
{
	cairn_listing keys = {0};
	int rc = cairn_target_list_all(r->rt, "keys/", &keys);
	if (rc < 0)
		return rc;
	if (!keys.n) {
		cairn_listing_free(&keys);
		return cairn_error_set(-EBADMSG, "%s: repository has no key files", r->t->name);
	}
	rc = -EKEYREJECTED;
	for (size_t i = 0; i < keys.n && rc == -EKEYREJECTED; i++) {
		cairn_buf f = CAIRN_BUF_INIT;
		int kr = cairn_target_get(r->rt, keys.names[i], &f);
		if (kr == 0)
			kr = cairn_keyfile_open(&r->keys, f.data, f.len, pass);
		cairn_buf_free(&f);
		if (kr == 0) {
			snprintf(r->key_name, sizeof(r->key_name), "%s", keys.names[i]);
			rc = 0;
		} else if (kr != -EKEYREJECTED) {
			repo_warn(r, "%s: %s", keys.names[i], cairn_error_last());
		}
	}
	size_t nk = keys.n;
	cairn_listing_free(&keys);
	if (rc == -EKEYREJECTED)
		return cairn_error_set(-EKEYREJECTED,
				       "wrong passphrase: none of the %zu key(s) of %s opens with it",
				       nk, r->t->name);
	return rc;
}

int repo_index_load(cairn_repo *r)
{
	cairn_listing l = {0};
	int rc = cairn_target_list_all(r->rt, "index/", &l);
	if (rc < 0)
		return rc;
	cairn_codec *cx = cairn_codec_new(0);
	cairn_buf pt = CAIRN_BUF_INIT;
	r->index_errors = 0;
	for (size_t i = 0; i < l.n; i++) {
		cairn_idxseg seg;
		rc = repo_load_object(r, cx, l.names[i], CAIRN_OBJ_INDEX, 1u << 30, 1, &pt);
		if (rc == 0)
			rc = cairn_idxseg_decode(&seg, pt.data, pt.len);
		/* not kept for the next segment: the index grows while this one is added */
		cairn_buf_free(&pt);
		if (rc < 0) {
			if (rc == -ENOENT) /* deleted by a concurrent prune */
				continue;
			r->index_errors++;
			repo_warn(r, "index segment %s is unusable (%s); its packs will be re-indexed "
				     "by the next backup or prune, and prune removes it",
				  l.names[i], cairn_error_last());
			continue;
		}
		cairn_index_add_segment(r->idx, &seg);
		cairn_idxseg_free(&seg);
	}
	cairn_index_compact(r->idx);
	cairn_buf_free(&pt);
	cairn_codec_free(cx);
	cairn_listing_free(&l);
	return 0;
}

int cairn_repo_open(cairn_repo **out, cairn_target *t, const char *pass,
		    const cairn_open_opts *o)
{
	cairn_open_opts def = CAIRN_OPEN_OPTS_INIT;
	cairn_buf cfg = CAIRN_BUF_INIT;
	int rc;
	*out = NULL;
	if (!o)
		o = &def;
	if (!t || !pass)
		return cairn_error_set(-EINVAL, "open: missing target or passphrase");
	cairn_repo *r = cairn_xcalloc(1, sizeof(*r));
	r->t = t;
	r->rt = t;
	if (o->read_member >= 0) {
		/* a drill of one copy: every read goes to that member, no cache in between */
		r->rt = cairn_target_member(t, (size_t)o->read_member);
		if (!r->rt) {
			free(r);
			return cairn_error_set(-EINVAL, "%s has no target number %d", t->name,
					       o->read_member);
		}
	}
	pthread_mutex_init(&r->mu, NULL);
	r->cache_fds = cairn_fdcache_new();
	pthread_cond_init(&r->lock_cond, NULL);
	r->no_lock = o->no_lock;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	r->threads = o->threads ? o->threads : (unsigned)(ncpu > 0 ? ncpu : 2);
	rc = cairn_target_get(r->rt, "config", &cfg);
	if (rc == -ENOENT) {
		rc = cairn_error_set(-ENOENT, "%s: no repository there (no config object; run "
					      "'cairn init' first)", t->name);
		goto fail;
	}
	int id_fn = 0;
	if (rc < 0 || (rc = config_load(r, &cfg, &id_fn)) < 0 || (rc = open_keys(r, pass)) < 0)
		goto fail;
	char kid[65];
	cairn_hex(kid, r->keys.repo, 32);
	if (strcmp(kid, r->idhex) != 0) {
		rc = cairn_error_set(-EBADMSG, "%s: key %s belongs to another repository", t->name,
				     r->key_name);
		goto fail;
	}
	r->keys.id_fn = id_fn; /* key files do not hold it */
	if (o->zstd_level >= 0)
		r->zstd_level = o->zstd_level;
	cairn_keyset_gear(&r->keys, r->gear);
	if (o->read_member < 0 && (!o->cache_dir || *o->cache_dir)) {
		char *root = o->cache_dir ? cairn_xstrdup(o->cache_dir) : default_cache_root();
		if (root) {
			size_t n = strlen(root) + 80;
			r->cache = cairn_xmalloc(n);
			snprintf(r->cache, n, "%s/%s", root, r->idhex);
			free(root);
		}
	}
	r->idx = cairn_index_new();
	if ((rc = repo_index_load(r)) < 0)
		goto fail;
	cairn_buf_free(&cfg);
	*out = r;
	return 0;
fail:
	cairn_buf_free(&cfg);
	r->t = NULL; /* the caller keeps the target on failure */
	cairn_repo_close(r);
	return rc;
}

void cairn_repo_close(cairn_repo *r)
{
	if (!r)
		return;
	repo_unlock(r);
	cairn_wipe(&r->keys, sizeof(r->keys));
	cairn_index_free(r->idx);
	cairn_fdcache_free(r->cache_fds);
	free(r->cache);
	if (r->t)
		cairn_target_close(r->t);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->lock_cond);
	free(r);
}

/* --- blobs -------------------------------------------------------------------------- */

/*
 * Read a byte range of a cached pack; -ENOENT if it is not cached. Cached tree
 * packs are read a tree at a time, thousands of times per backup, so the
 * last few used stay open (common/fdcache.h).
 */
static int cache_read_range(cairn_repo *r, const char *name, uint64_t off, size_t len,
			    uint8_t *out)
{
	if (!r->cache)
		return -ENOENT;
	char *p = cache_path(r, name);
	uint64_t size;
	long long n = cairn_fdcache_pread(r->cache_fds, name, p, out, len, off, &size);
	free(p);
	if (n >= 0 && n != (long long)len) /* short (truncated): the refill will be a new file */
		cairn_fdcache_drop(r->cache_fds, name);
	return n == (long long)len ? 0 : -ENOENT;
}

/* Put a whole tree pack into the cache (after checking it) so later trees come from disk. */
static void cache_fill_pack(cairn_repo *r, const char *name)
{
	cairn_buf whole = CAIRN_BUF_INIT;
	int64_t bad;
	if (cairn_target_get(r->rt, name, &whole) == 0 &&
	    cairn_pack_verify(whole.data, whole.len, &bad) == 0)
		cache_put(r, name, whole.data, whole.len);
	cairn_buf_free(&whole);
}

/* Read a byte range of a pack from one copy. */
static int pack_read(cairn_repo *r, unsigned copy, const uint8_t pack_id[32], uint64_t off,
		     size_t len, uint8_t *out)
{
	char name[CAIRN_PACK_NAME_MAX];
	cairn_pack_name(name, pack_id);
	return cairn_target_get_range_copy(r->rt, copy, name, off, len, out);
}

/* Decode an encoded blob and check it against its id and expected length. */
static int blob_decode(cairn_repo *r, cairn_codec *cx, const uint8_t pack_id[32],
		       const cairn_blob_loc *loc, const uint8_t id[32], size_t rawlen,
		       const uint8_t *enc, cairn_buf *out)
{
	uint8_t key[32], type = loc->type;
	size_t max = rawlen ? rawlen : (loc->type == CAIRN_BLOB_TREE ? CAIRN_TREE_MAX : r->chunk_max);
	cairn_pack_key_cx(cx, key, &r->keys, pack_id);
	int rc = cairn_blob_decode(cx, key, &type, 1, enc, loc->clen, max, out);
	cairn_wipe(key, sizeof(key));
	if (rc == 0) {
		uint8_t got[32];
		cairn_chunk_id(&r->keys, out->data, out->len, got);
		if (memcmp(got, id, 32) != 0 || (rawlen && out->len != rawlen))
			rc = cairn_error_set(-EBADMSG, "content does not match its id");
	}
	if (rc < 0)
		out->len = 0;
	return rc;
}

int repo_blob_read(cairn_repo *r, cairn_codec *cx, const uint8_t id[32], size_t rawlen,
		   cairn_buf *out)
{
	cairn_blob_loc loc;
	char hex[65], pname[CAIRN_PACK_NAME_MAX];
	out->len = 0;
	if (!cairn_index_lookup(r->idx, id, &loc)) {
		cairn_hex(hex, id, 32);
		return cairn_error_set(-ENOENT, "blob %.16s is in no index (missing pack or index)",
				       hex);
	}
	uint8_t pack_id[32], ptype;
	cairn_index_pack_info(r->idx, loc.pack, pack_id, &ptype, NULL);
	cairn_pack_name(pname, pack_id);
	uint8_t *enc = cairn_xmalloc(loc.clen);
	unsigned copies = cairn_target_ncopies(r->rt);
	int rc = -EIO;
	char first[CAIRN_ERRMSG_MAX] = "";
	/* every copy in preference order until one authenticates: a corrupt copy is
	 * reported to the replica set (repair journal) and the next one is tried */
	/* tree packs come from the local cache, filled with the whole pack on first use */
	if (ptype == CAIRN_BLOB_TREE && r->cache) {
		int cached = cache_read_range(r, pname, loc.offset, loc.clen, enc) == 0;
		if (!cached) {
			cache_fill_pack(r, pname);
			cached = cache_read_range(r, pname, loc.offset, loc.clen, enc) == 0;
		}
		if (cached) {
			if (blob_decode(r, cx, pack_id, &loc, id, rawlen, enc, out) == 0) {
				free(enc);
				return 0;
			}
			cache_drop(r, pname); /* damaged cache entry: use the target's copies */
		}
	}
	for (unsigned c = 0; c < copies; c++) {
		rc = pack_read(r, c, pack_id, loc.offset, loc.clen, enc);
		if (rc == 0)
			rc = blob_decode(r, cx, pack_id, &loc, id, rawlen, enc, out);
		if (rc == 0) {
			if (c > 0)
				repo_warn(r, "%s: read from the copy on %s instead", pname,
					  cairn_target_copy_name(r->rt, c));
			break;
		}
		if (!first[0])
			snprintf(first, sizeof(first), "%s", cairn_error_last());
		if (copies > 1) {
			/* name the member: "copy 1" means nothing to whoever repairs it */
			repo_warn(r, "%s: the copy on %s is %s: %s", pname,
				  cairn_target_copy_name(r->rt, c),
				  rc == -EBADMSG ? "corrupt (journaled for repair)" : "unreadable",
				  cairn_error_last());
			if (rc == -EBADMSG)
				cairn_target_report_bad(r->rt, c, pname);
		}
	}
	free(enc);
	if (rc < 0) {
		cairn_hex(hex, id, 32);
		out->len = 0;
		cairn_error_set(rc, "%s", first);
		return cairn_error_wrap(rc, "blob %.16s in %s", hex, pname);
	}
	return 0;
}

int repo_tree_load(cairn_repo *r, cairn_codec *cx, const uint8_t id[32], cairn_tree *out)
{
	cairn_buf b = CAIRN_BUF_INIT;
	memset(out, 0, sizeof(*out));
	int rc = repo_blob_read(r, cx, id, 0, &b);
	if (rc == 0) {
		rc = cairn_tree_decode(out, b.data, b.len);
		if (rc < 0) {
			char hex[65];
			cairn_hex(hex, id, 32);
			cairn_error_wrap(rc, "tree %.16s", hex);
		}
	}
	cairn_buf_free(&b);
	return rc;
}

/* --- packs and index segments --------------------------------------------------------- */

int repo_pack_store(cairn_repo *r, cairn_packw *pw, cairn_idxseg *pending)
{
	char name[CAIRN_PACK_NAME_MAX];
	uint64_t len = cairn_packw_total(pw);
	cairn_pack_name(name, cairn_packw_id(pw));
	int rc;
	if (cairn_packw_fd(pw) >= 0) {
		rc = cairn_target_link_tmpfile(r->t, name, cairn_packw_fd(pw), len);
	} else {
		const cairn_buf *b = cairn_packw_bytes(pw);
		rc = cairn_target_put(r->t, name, b->data, b->len);
		if (rc == 0 && cairn_packw_type(pw) == CAIRN_BLOB_TREE)
			cache_put(r, name, b->data, b->len);
	}
	if (rc < 0)
		return rc;
	const cairn_pack_entry *e = cairn_packw_entries(pw);
	size_t n = cairn_packw_count(pw);
	uint32_t no = cairn_index_pack(r->idx, cairn_packw_id(pw), cairn_packw_type(pw), len);
	for (size_t i = 0; i < n; i++)
		cairn_index_add(r->idx, e[i].id, e[i].type, no, e[i].offset, e[i].clen);
	if (pending)
		cairn_idxseg_add(pending, cairn_packw_id(pw), cairn_packw_type(pw), len, e, n);
	return 0;
}

int repo_index_write(cairn_repo *r, cairn_codec *cx, cairn_idxseg *seg, char name[80])
{
	if (name)
		name[0] = 0;
	if (!seg->n)
		return 0;
	cairn_buf b = CAIRN_BUF_INIT;
	char nm[80];
	cairn_idxseg_encode(seg, &b);
	int rc = repo_save_object(r, cx, "index", CAIRN_OBJ_INDEX, b.data, b.len, nm);
	cairn_buf_free(&b);
	if (rc < 0)
		return rc;
	if (name)
		memcpy(name, nm, 80);
	cairn_idxseg_free(seg);
	return 0;
}

/* Read a pack's trailer and header from the target. */
static int pack_header_fetch(cairn_repo *r, cairn_codec *cx, const char *name, uint64_t size,
			     const uint8_t pack_id[32], cairn_pack_entry **e, size_t *n)
{
	uint8_t foot[CAIRN_PACK_FOOTER];
	uint32_t tl;
	cairn_pack_trailer tr;
	int rc;
	if (size < CAIRN_PACK_FOOTER)
		return cairn_error_set(-EBADMSG, "%s: pack of %llu bytes is truncated", name,
				       (unsigned long long)size);
	if ((rc = cairn_target_get_range(r->rt, name, size - CAIRN_PACK_FOOTER, CAIRN_PACK_FOOTER,
					 foot)) < 0 ||
	    (rc = cairn_pack_footer(foot, size, &tl)) < 0)
		return rc;
	uint8_t *buf = cairn_xmalloc(tl);
	rc = cairn_target_get_range(r->rt, name, size - tl, tl, buf);
	if (rc == 0)
		rc = cairn_pack_trailer_parse(&tr, buf, tl, size);
	free(buf);
	if (rc < 0)
		return rc;
	buf = cairn_xmalloc(tr.hdr_len);
	rc = cairn_target_get_range(r->rt, name, tr.hdr_off, tr.hdr_len, buf);
	if (rc == 0)
		rc = cairn_pack_header_decode(cx, &r->keys, pack_id, buf, tr.hdr_len, tr.hdr_off, e,
					      n);
	free(buf);
	cairn_pack_trailer_free(&tr);
	return rc;
}

long repo_index_adopt_orphans(cairn_repo *r, cairn_codec *cx)
{
	cairn_listing l = {0};
	cairn_idxseg seg = {0};
	long adopted = 0;
	int rc = cairn_target_list_all(r->rt, "data/", &l);
	/* An index that names packs the target no longer has was loaded before a prune
	 * deleted them (by a process that kept the repository open, or between opening and
	 * locking): deduplicating against it would reference blobs that are gone. Under
	 * the caller's lock no prune runs, so a reload now is current. */
	size_t present = 0;
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		uint8_t id[32];
		uint32_t no;
		present += cairn_pack_name_parse(l.names[i], id) == 0 &&
			   cairn_index_pack_find(r->idx, id, &no);
	}
	if (rc == 0 && present < cairn_index_npacks(r->idx)) {
		cairn_index_free(r->idx);
		r->idx = cairn_index_new();
		rc = repo_index_load(r);
	}
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		uint8_t id[32];
		uint32_t no;
		if (cairn_pack_name_parse(l.names[i], id) < 0 || cairn_index_pack_find(r->idx, id, &no))
			continue;
		cairn_pack_entry *e;
		size_t n;
		int pr = pack_header_fetch(r, cx, l.names[i], l.sizes[i], id, &e, &n);
		if (pr < 0) {
			repo_warn(r, "%s: not indexed and unreadable, ignored: %s", l.names[i],
				  cairn_error_last());
			continue;
		}
		uint8_t type = n && e[0].type == CAIRN_BLOB_TREE ? CAIRN_BLOB_TREE : CAIRN_BLOB_DATA;
		cairn_idxseg_add(&seg, id, type, l.sizes[i], e, n);
		uint32_t pno = cairn_index_pack(r->idx, id, type, l.sizes[i]);
		for (size_t j = 0; j < n; j++)
			cairn_index_add(r->idx, e[j].id, e[j].type, pno, e[j].offset, e[j].clen);
		free(e);
		adopted++;
	}
	if (rc == 0 && seg.n)
		rc = repo_index_write(r, cx, &seg, NULL);
	cairn_idxseg_free(&seg);
	cairn_listing_free(&l);
	return rc < 0 ? rc : adopted;
}

/* --- keys ------------------------------------------------------------------------------ */

int cairn_key_list(cairn_repo *r, cairn_keyinfo **out, size_t *n)
{
	cairn_listing l = {0};
	*out = NULL;
	*n = 0;
	int rc = cairn_target_list_all(r->rt, "keys/", &l);
	if (rc < 0)
		return rc;
	cairn_keyinfo *k = cairn_xcalloc(l.n ? l.n : 1, sizeof(*k));
	cairn_kdf_params kdf;
	size_t m = 0;
	for (size_t i = 0; i < l.n; i++) {
		cairn_buf f = CAIRN_BUF_INIT;
		if (cairn_target_get(r->rt, l.names[i], &f) == 0 &&
		    cairn_keyfile_info(f.data, f.len, k[m].label, sizeof(k[m].label),
				       &k[m].created_ns, &kdf) == 0) {
			k[m].kdf_t = kdf.t_cost;
			k[m].kdf_m_kib = kdf.m_kib;
			k[m].kdf_lanes = kdf.lanes;
			snprintf(k[m].idhex, sizeof(k[m].idhex), "%s", l.names[i] + 5);
			k[m].current = !strcmp(l.names[i], r->key_name);
			m++;
		}
		cairn_buf_free(&f);
	}
	cairn_listing_free(&l);
	*out = k;
	*n = m;
	return 0;
}

int cairn_key_add(cairn_repo *r, const char *newpass, cairn_kdf_cost *cost, char idhex_out[17])
{
	cairn_kdf_params kdf = CAIRN_KDF_DEFAULT;
	char name[64], kid[17];
	cairn_buf f = CAIRN_BUF_INIT;
	if (!newpass || !*newpass)
		return cairn_error_set(-EINVAL, "key add: empty passphrase refused");
	/* new keys take the current key's KDF cost unless told otherwise */
	if (cairn_target_get(r->rt, r->key_name, &f) == 0)
		cairn_keyfile_info(f.data, f.len, NULL, 0, NULL, &kdf);
	cairn_buf_free(&f);
	if (cost && cost->t)
		kdf.t_cost = cost->t;
	if (cost && cost->m_kib)
		kdf.m_kib = cost->m_kib;
	int rc = write_key(r->t, &r->keys, newpass, &kdf, kid, name, sizeof(name));
	if (rc == 0 && idhex_out)
		memcpy(idhex_out, kid, 17);
	if (rc == 0 && cost) {
		cost->t = kdf.t_cost;
		cost->m_kib = kdf.m_kib;
	}
	return rc;
}

int cairn_key_remove(cairn_repo *r, const char *idhex)
{
	char name[64];
	if (!idhex || strlen(idhex) != 16 || strspn(idhex, "0123456789abcdef") != 16)
		return cairn_error_set(-EINVAL, "key remove: '%s' is not a key id", idhex ? idhex : "");
	snprintf(name, sizeof(name), "keys/%s", idhex);
	/* not -EBUSY: that means "locked by another operation" (exit code 11, retry later) */
	if (!strcmp(name, r->key_name))
		return cairn_error_set(-EPERM, "key %s is the one in use; use another key to remove it",
				       idhex);
	return cairn_target_del(r->t, name);
}

int cairn_key_passwd(cairn_repo *r, const char *newpass, cairn_kdf_cost *cost)
{
	char kid[17], old[64];
	int rc = cairn_key_add(r, newpass, cost, kid);
	if (rc < 0)
		return rc;
	snprintf(old, sizeof(old), "%s", r->key_name);
	snprintf(r->key_name, sizeof(r->key_name), "keys/%s", kid);
	return cairn_target_del(r->t, old);
}
