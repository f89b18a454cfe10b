/*
 * archiver.c - backup: walk, read, chunk, deduplicate, compress, encrypt,
 * pack, upload; then index segments, then the snapshot.
 *
 * DESIGN
 * Stages, each on its own threads, joined by bounded queues (memory stays
 * bounded whatever the input):
 *
 *   walkers --files--> readers --chunks--> packers --packs--> uploaders
 *
 * - A walker lists a directory in full (names, lstat, xattrs) into a pending
 *   directory (pdir), reuses the content of files unchanged since the parent
 *   snapshot (same inode, size, mtime, ctime) without opening them, queues
 *   the others and puts the subdirectories on the walkers' shared stack
 *   (nearly depth-first). Directories are opened by fd relative to their
 *   parent's, so paths of any length work.
 * - A reader reads one file with large reads (skipping holes with
 *   SEEK_DATA/SEEK_HOLE), chunks it (FastCDC), computes chunk ids and queues
 *   the chunks that neither the index nor the in-flight set knows.
 * - A packer compresses and encrypts chunks into a pack of its own; a full
 *   pack goes to the uploaders, which store it, then register its blobs in
 *   the index and in the pending index segment (written every 64 packs).
 * - A directory is finished when its last child is: its tree blob is
 *   encoded and stored, and its parent is told. The root's tree id ends the walk.
 * The walk is in walker.c; the types both files share in archiver_int.h.
 * The snapshot is written only after every pack and index segment is stored,
 * so a crash at any moment leaves only unreferenced packs, which the next
 * backup adopts (repo_index_adopt_orphans) and reuses.
 */
#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "chunker/chunker.h"
#include "engine/archiver_int.h"

#define INDEX_EVERY 64        /* packs per index segment */
#define READ_SIZE (1u << 20) /* large sequential reads, small enough to keep RSS low */

/*
 * Chunk-size policy: image-like files (VM disks, databases) change by small
 * scattered writes; with ~1 MiB chunks 1 % of scattered 4 KiB writes touches
 * ~90 % of the chunks, with 48 KiB chunks well under 10 % (measured: 8.8 % of a
 * 256 MiB image stored again, against 46 % with 1 MiB chunks). Files of at
 * least LARGE_FILE bytes are therefore chunked with 16 KiB / 48 KiB / 192 KiB
 * (if the repository's own chunks are larger). The index grows by 44 bytes per
 * 48 KiB of such files (~0.09 %), and small files keep the large chunks that
 * make packs and the index cheap.
 */
#define LARGE_FILE (128ull << 20)
#define FINE_MIN (16u << 10)
#define FINE_AVG (48u << 10)
#define FINE_MAX (192u << 10)

/* --- errors and warnings ----------------------------------------------------------- */

static void fail(arch *a, int rc)
{
	int expected = 0;
	if (atomic_compare_exchange_strong(&a->err, &expected, rc))
		snprintf(a->errmsg, sizeof(a->errmsg), "%s", cairn_error_last());
}

void arch_warnf(arch *a, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&a->mu);
	a->sum.errors++;
	if (a->warn)
		a->warn(a->warn_payload, msg);
	else
		fprintf(stderr, "cairn: %s\n", msg);
	pthread_mutex_unlock(&a->mu);
}

/* Printable path: non-printable bytes as \xNN. */
void arch_printable(char *out, size_t cap, const char *dir, const char *name)
{
	size_t o = 0;
	const char *parts[3] = {dir, dir && *dir && strcmp(dir, "/") ? "/" : "", name};
	for (int p = 0; p < 3; p++) {
		for (const unsigned char *s = (const unsigned char *)parts[p]; s && *s; s++) {
			if (o + 5 >= cap)
				break;
			if (*s < 0x20 || *s >= 0x7f)
				o += (size_t)snprintf(out + o, cap - o, "\\x%02x", *s);
			else
				out[o++] = (char)*s;
		}
	}
	out[o] = 0;
}

/* --- in-flight set ------------------------------------------------------------------- */

/* Under a->mu: 1 if the id is already stored or on its way, else records it and returns 0. */
static int claim_locked(arch *a, const uint8_t id[32])
{
	size_t b = cairn_get_le32(id) % INFLIGHT_BUCKETS;
	for (inflight *f = a->inf[b]; f; f = f->next)
		if (!memcmp(f->id, id, 32))
			return 1;
	if (cairn_index_lookup(a->r->idx, id, NULL))
		return 1;
	inflight *f = cairn_xmalloc(sizeof(*f));
	memcpy(f->id, id, 32);
	f->next = a->inf[b];
	a->inf[b] = f;
	return 0;
}

static void release_locked(arch *a, const uint8_t id[32])
{
	size_t b = cairn_get_le32(id) % INFLIGHT_BUCKETS;
	for (inflight **p = &a->inf[b]; *p; p = &(*p)->next) {
		if (!memcmp((*p)->id, id, 32)) {
			inflight *f = *p;
			*p = f->next;
			free(f);
			return;
		}
	}
}

/* --- trees ------------------------------------------------------------------------------ */

/* Seal a full pack's header and hand it to the uploaders. */
static void push_pack(arch *a, cairn_packw *pw, cairn_codec *cx)
{
	cairn_codec *own = cx ? NULL : cairn_codec_new(0);
	if (!cx)
		cx = own;
	int rc = cairn_packw_finish(pw, cx);
	if (rc < 0) {
		fail(a, rc);
		cairn_packw_free(pw);
	} else if (cairn_queue_push(&a->packs, pw) < 0) {
		cairn_packw_free(pw);
	}
	cairn_codec_free(own);
}

static void store_tree(arch *a, const uint8_t id[32], const cairn_buf *b)
{
	cairn_packw *full = NULL;
	pthread_mutex_lock(&a->mu);
	if (!claim_locked(a, id)) {
		if (!a->treepack)
			a->treepack = cairn_packw_new(&a->r->keys, CAIRN_BLOB_TREE);
		int rc = cairn_packw_add(a->treepack, a->treecx, id, CAIRN_BLOB_TREE, b->data, b->len);
		if (rc < 0)
			fail(a, rc);
		if (cairn_packw_size(a->treepack) >= a->r->pack_size / 4) {
			full = a->treepack;
			a->treepack = NULL;
		}
	}
	pthread_mutex_unlock(&a->mu);
	if (full)
		push_pack(a, full, NULL); /* treecx is the walker's, under mu: push_pack makes one */
}


/* Encode and store the tree of a finished directory, then tell its parent. */
static void finalize(arch *a, pdir *d)
{
	cairn_tree t = {0};
	uint8_t id[32];
	for (size_t i = 0; i < d->tree.n; i++) {
		if (d->tree.nodes[i].flags & NODE_SKIP) {
			cairn_node_free(&d->tree.nodes[i]);
			continue;
		}
		cairn_tree_add(&t, &d->tree.nodes[i]);
	}
	free(d->tree.nodes);
	d->tree.nodes = NULL;
	cairn_buf b = CAIRN_BUF_INIT;
	int rc = cairn_tree_encode(&t, &b);
	if (rc < 0) {
		fail(a, cairn_error_wrap(rc, "encoding the tree of %s", d->path));
	} else if (!atomic_load(&a->err)) {
		cairn_chunk_id(&a->r->keys, b.data, b.len, id);
		store_tree(a, id, &b);
	}
	cairn_buf_free(&b);
	cairn_tree_free(&t);
	if (d->fd >= 0)
		close(d->fd);
	pdir *parent = d->parent;
	if (parent) {
		memcpy(parent->tree.nodes[d->slot].subtree, id, 32);
		free(d->path);
		free(d);
		arch_child_done(a, parent);
	} else {
		pthread_mutex_lock(&a->mu);
		memcpy(a->root, id, 32);
		a->root_done = 1;
		pthread_mutex_unlock(&a->mu);
		free(d->path);
		free(d);
	}
}

void arch_child_done(arch *a, pdir *d)
{
	pthread_mutex_lock(&a->mu);
	int left = --d->outstanding;
	pthread_mutex_unlock(&a->mu);
	if (!left)
		finalize(a, d);
}

/* --- readers ----------------------------------------------------------------------------- */

typedef struct extents {
	cairn_extent *v;
	size_t n, cap;
} extents;

static void ext_add(extents *e, const uint8_t *id, uint64_t len, int hole)
{
	if (hole && e->n && e->v[e->n - 1].hole) {
		e->v[e->n - 1].len += len;
		return;
	}
	if (e->n == e->cap) {
		e->cap = e->cap ? e->cap * 2 : 8;
		e->v = cairn_xrealloc(e->v, e->cap * sizeof(*e->v));
	}
	cairn_extent *x = &e->v[e->n++];
	memset(x, 0, sizeof(*x));
	if (id)
		memcpy(x->id, id, 32);
	x->len = len;
	x->hole = (uint8_t)hole;
}

/* A chunk buffer of at least @p len bytes: a spare one if one is large enough. */
static cjob *pool_get(arch *a, size_t len)
{
	cjob *c = NULL;
	pthread_mutex_lock(&a->poolmu);
	for (size_t i = a->npool; i-- > 0;) {
		if (a->pool[i]->cap >= len) {
			c = a->pool[i];
			a->pool[i] = a->pool[--a->npool];
			break;
		}
	}
	if (!c && a->npool) /* grow the largest spare rather than add another */
		c = a->pool[--a->npool];
	pthread_mutex_unlock(&a->poolmu);
	if (c && c->cap >= len)
		return c;
	/* powers of two: a spare then fits most later chunks, and only the
	 * bytes a chunk uses are ever touched */
	size_t cap = 64u << 10;
	while (cap < len)
		cap *= 2;
	free(c);
	c = cairn_xmalloc(sizeof(*c) + cap);
	c->cap = cap;
	return c;
}

static void pool_put(arch *a, cjob *c)
{
	pthread_mutex_lock(&a->poolmu);
	if (a->npool < POOL_MAX && c->cap <= POOL_KEEP) {
		a->pool[a->npool++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&a->poolmu);
	free(c);
}

/*
 * Where the target offers unnamed files (a local directory) a data pack is
 * written straight into one as it fills, and linked into place when full: no
 * 16 MiB buffer per pack, and nothing left behind by a crash.
 */
static cairn_packw *new_data_pack(arch *a)
{
	int fd = cairn_target_tmpfile(a->r->t);
	if (fd >= 0)
		return cairn_packw_new_file(&a->r->keys, CAIRN_BLOB_DATA, fd);
	return cairn_packw_new(&a->r->keys, CAIRN_BLOB_DATA);
}

/*
 * Compress a new chunk with @p cx (the caller's own codec), then seal it into
 * the one data pack shared by every thread, under packmu: sealing is AES-GCM
 * at several GB/s, compression ~20x slower, so the lock is held for a small
 * fraction of the time. One pack in the making instead of one per thread
 * keeps the backup's memory at about two packs.
 */
/*
 * Does a file start like a compressed format? Files below CAIRN_PROBE_MIN
 * that do are stored without trying zstd, which would spend ~1.5 ms per MB
 * to save ~1.5 % of them (/usr: 29,000 such files, 118 MB, 0.18 CPU s).
 * Larger files are not judged by their first bytes: a disk image or an
 * archive of stored members may begin with any of these; their chunks above
 * CAIRN_PROBE_MIN are sampled by the codec, the smaller ones compressed.
 */
static int compressed_format(const uint8_t *p, size_t n)
{
	static const struct {
		uint8_t len, at;
		const char *magic;
	} m[] = {
		{2, 0, "\x1f\x8b"},                 /* gzip */
		{6, 0, "\xfd" "7zXZ\0"},             /* xz */
		{4, 0, "\x28\xb5\x2f\xfd"},         /* zstd */
		{4, 0, "\x04\x22\x4d\x18"},         /* lz4 frame */
		{3, 0, "BZh"},                       /* bzip2 */
		{6, 0, "7z\xbc\xaf\x27\x1c"},        /* 7-Zip */
		{4, 0, "PK\x03\x04"},                /* zip, jar, docx, apk */
		{8, 0, "\x89PNG\r\n\x1a\n"},        /* PNG */
		{3, 0, "\xff\xd8\xff"},              /* JPEG */
		{4, 0, "GIF8"},                      /* GIF */
		{4, 8, "WEBP"},                      /* WebP (RIFF....WEBP) */
		{4, 0, "wOF2"},                      /* WOFF2 */
	};
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		if (n >= (size_t)m[i].at + m[i].len && !memcmp(p + m[i].at, m[i].magic, m[i].len))
			return 1;
	return 0;
}

static void pack_blob(arch *a, cairn_codec *cx, const uint8_t id[32], const void *data, size_t len,
		      int raw)
{
	const void *body = data;
	size_t blen = len;
	uint8_t codec = raw ? CAIRN_CODEC_RAW : cairn_blob_compress(cx, data, len, &body, &blen);
	cairn_packw *full = NULL;
	pthread_mutex_lock(&a->packmu);
	if (!a->datapack)
		a->datapack = new_data_pack(a);
	int rc = cairn_packw_add_body(a->datapack, cx, id, CAIRN_BLOB_DATA, codec, body, blen, len);
	if (rc < 0)
		fail(a, rc);
	if (cairn_packw_size(a->datapack) >= a->r->pack_size ||
	    cairn_packw_count(a->datapack) >= CAIRN_PACK_MAX_BLOBS) {
		full = a->datapack;
		a->datapack = NULL;
	}
	pthread_mutex_unlock(&a->packmu);
	if (full)
		push_pack(a, full, cx);
}

/* A reader thread's own state. */
typedef struct rdr {
	cairn_chunker coarse, fine;
	uint8_t *buf;
	size_t bufcap, touched; /* touched: how far the buffer has been written */
	cairn_codec *cx;        /* compresses the content of small files itself */
	int small;              /* the file being read is at most INLINE_MAX bytes */
	int raw;                /* the file starts like a compressed format */
	int judge;              /* the file is small enough to be judged by its start */
} rdr;

/*
 * Files up to INLINE_MAX (most files of a system tree) are compressed and
 * packed by the reader itself: for them the hand-off to a packer (a copy, two
 * thread wake-ups) cost about as much as compressing them. The chunks of
 * larger files, even small ones, go to the packers, so that one large file
 * still keeps every core busy.
 */
#define INLINE_MAX (64u << 10)

static void emit_chunk(arch *a, rdr *rd, extents *ex, const uint8_t *data, size_t len)
{
	uint8_t id[32];
	cairn_chunk_id(&a->r->keys, data, len, id);
	ext_add(ex, id, len, 0);
	pthread_mutex_lock(&a->mu);
	int known = claim_locked(a, id);
	pthread_mutex_unlock(&a->mu);
	if (known)
		return;
	if (rd->small) {
		pack_blob(a, rd->cx, id, data, len, rd->raw);
		return;
	}
	cjob *c = pool_get(a, len);
	memcpy(c->id, id, 32);
	c->raw = rd->raw;
	c->len = len;
	memcpy(c->data, data, len);
	if (cairn_queue_push_w(&a->chunks, c, len) < 0)
		pool_put(a, c);
}

/*
 * Chunk one data region [off, end) of fd. @return bytes read, or -1 if the file
 * ended early (it shrank); errors go to *err.
 */
static int64_t read_region(arch *a, rdr *rd, int fd, uint64_t off, uint64_t end,
			   cairn_chunker *ck, extents *ex, int *err)
{
	uint8_t *buf = rd->buf;
	size_t bufcap = rd->bufcap, *touched = &rd->touched;
	size_t start = 0, fill = 0, scan = 0;
	uint64_t pos = off, got = 0;
	cairn_chunker_reset(ck);
	while (pos < end || start < fill) {
		/*
		 * Move the unfinished chunk to the front rather than read into pages
		 * never touched before: the buffer can hold the largest chunk, but
		 * memory grows only as far as the chunks seen need.
		 */
		if (pos < end && start > 0 && fill + READ_SIZE > *touched) {
			memmove(buf, buf + start, fill - start);
			fill -= start;
			scan -= start;
			start = 0;
		}
		if (pos < end && fill < bufcap) {
			size_t want = bufcap - fill;
			if (want > end - pos)
				want = (size_t)(end - pos);
			if (want > READ_SIZE)
				want = READ_SIZE;
			if (fill + want > *touched)
				*touched = fill + want;
			ssize_t n = pread(fd, buf + fill, want, (off_t)pos);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				*err = -errno;
				return (int64_t)got;
			}
			if (n == 0) {
				end = pos; /* shrank */
				*err = 1;
			}
			if (pos == 0 && rd->judge)
				rd->raw = compressed_format(buf + fill, (size_t)n);
			fill += (size_t)n;
			pos += (uint64_t)n;
			got += (uint64_t)n;
			atomic_fetch_add(&a->bytes_read, (uint64_t)n);
		}
		while (scan < fill) {
			size_t k = cairn_chunker_scan(ck, buf + scan, fill - scan);
			if (k == CAIRN_CHUNKER_NEED) {
				scan = fill;
				break;
			}
			scan += k;
			emit_chunk(a, rd, ex, buf + start, scan - start);
			start = scan;
		}
		if (pos >= end && start < fill) {
			emit_chunk(a, rd, ex, buf + start, fill - start);
			start = scan = fill;
		}
		if (atomic_load(&a->err))
			break;
	}
	return (int64_t)got;
}

static void read_file(arch *a, rdr *rd, fjob *j)
{
	pdir *d = j->dir;
	cairn_node *n = &d->tree.nodes[j->slot];
	char where[1024];
	struct stat st, st2;
	extents ex = {0};
	int err = 0;
	int fd = openat(d->fd, n->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = openat(d->fd, n->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		int e = errno;
		arch_printable(where, sizeof(where), d->path, n->name);
		arch_warnf(a, "%s: cannot read: %s (skipped)", where, strerror(e));
		n->flags |= NODE_SKIP;
		if (fd >= 0)
			close(fd);
		return;
	}
	uint64_t size = (uint64_t)st.st_size;
	int sparse = (uint64_t)st.st_blocks * 512 < size;
	cairn_chunker *ck = size >= LARGE_FILE ? &rd->fine : &rd->coarse;
	rd->small = size <= INLINE_MAX;
	rd->raw = 0;
	rd->judge = size < CAIRN_PROBE_MIN; /* the file's size: a sparse file's first region may be small */
	uint64_t off = 0;
	while (off < size && !err && !atomic_load(&a->err)) {
		uint64_t data = off, hole = size;
		if (sparse) {
			off_t ds = lseek(fd, (off_t)off, SEEK_DATA);
			if (ds < 0) {
				data = size; /* only a hole remains */
			} else {
				data = (uint64_t)ds;
				off_t hs = lseek(fd, ds, SEEK_HOLE);
				hole = hs < 0 ? size : (uint64_t)hs;
			}
			if (data > size)
				data = size;
			if (hole > size)
				hole = size;
			if (data > off)
				ext_add(&ex, NULL, data - off, 1);
			if (data >= size)
				break;
		}
		uint64_t want = hole - data;
		int64_t got = read_region(a, rd, fd, data, hole, ck, &ex, &err);
		off = data + (uint64_t)(got > 0 ? got : 0);
		if ((uint64_t)got < want)
			break;
	}
	uint64_t stored = 0;
	for (size_t i = 0; i < ex.n; i++)
		stored += ex.v[i].len;
	arch_printable(where, sizeof(where), d->path, n->name);
	if (err < 0) {
		arch_warnf(a, "%s: read error: %s (stored %llu of %llu bytes)", where, strerror(-err),
		      (unsigned long long)stored, (unsigned long long)size);
		n->flags |= CAIRN_NODE_F_CHANGED;
	} else if (fstat(fd, &st2) == 0 &&
		   (st2.st_size != st.st_size || st2.st_mtim.tv_sec != st.st_mtim.tv_sec ||
		    st2.st_mtim.tv_nsec != st.st_mtim.tv_nsec || st2.st_ctim.tv_nsec != st.st_ctim.tv_nsec ||
		    st2.st_ctim.tv_sec != st.st_ctim.tv_sec || err > 0 || st.st_ino != (ino_t)n->ino)) {
		arch_warnf(a, "%s: changed while it was read (stored as read)", where);
		n->flags |= CAIRN_NODE_F_CHANGED;
	}
	close(fd);
	n->size = stored;
	n->extents = ex.v;
	n->n_extents = ex.n;
	file_digest(&a->r->keys, ex.v, ex.n, stored, n->digest);
	n->flags |= CAIRN_NODE_F_DIGEST;
	pthread_mutex_lock(&a->mu);
	if (j->had_parent)
		a->sum.files_changed++;
	else
		a->sum.files_new++;
	pthread_mutex_unlock(&a->mu);
	atomic_fetch_add(&a->files_done, 1);
}

static void *reader_main(void *arg)
{
	arch *a = arg;
	rdr rd;
	cairn_chunker_init(&rd.coarse, a->r->gear, a->r->chunk_min, a->r->chunk_avg,
			   a->r->chunk_max);
	if (a->r->chunk_avg > FINE_AVG)
		cairn_chunker_init(&rd.fine, a->r->gear, FINE_MIN, FINE_AVG, FINE_MAX);
	else
		rd.fine = rd.coarse;
	rd.bufcap = a->r->chunk_max + 2 * READ_SIZE;
	rd.touched = 4 * READ_SIZE < rd.bufcap ? 4 * READ_SIZE : rd.bufcap;
	rd.buf = cairn_xmalloc(rd.bufcap);
	rd.cx = cairn_codec_new(a->r->zstd_level);
	fjob *j;
	while ((j = cairn_queue_pop(&a->files))) {
		if (!atomic_load(&a->err))
			read_file(a, &rd, j);
		pdir *d = j->dir;
		free(j);
		arch_child_done(a, d);
	}
	cairn_codec_free(rd.cx);
	free(rd.buf);
	return NULL;
}

/* --- packers and uploaders ------------------------------------------------------------- */

/* Packers compress and pack the chunks the readers queue. */
static void *packer_main(void *arg)
{
	arch *a = arg;
	cairn_codec *cx = cairn_codec_new(a->r->zstd_level);
	cjob *c;
	while ((c = cairn_queue_pop(&a->chunks))) {
		if (!atomic_load(&a->err))
			pack_blob(a, cx, c->id, c->data, c->len, c->raw);
		pool_put(a, c);
	}
	cairn_codec_free(cx);
	return NULL;
}

/* Store a finished pack, register its blobs, write an index segment every INDEX_EVERY packs. */
static void store_pack(arch *a, cairn_packw *pw, cairn_codec *cx)
{
	int rc = repo_pack_store(a->r, pw, NULL);
	if (rc < 0) {
		fail(a, rc);
		return;
	}
	cairn_idxseg seg = {0};
	const cairn_pack_entry *e = cairn_packw_entries(pw);
	size_t n = cairn_packw_count(pw);
	uint64_t size = cairn_packw_total(pw);
	atomic_fetch_add(&a->bytes_added, size);
	pthread_mutex_lock(&a->mu);
	cairn_idxseg_add(&a->pending, cairn_packw_id(pw), cairn_packw_type(pw), size, e, n);
	for (size_t i = 0; i < n; i++)
		release_locked(a, e[i].id);
	a->sum.blobs_added += n;
	if (++a->pending_packs >= INDEX_EVERY) {
		seg = a->pending;
		memset(&a->pending, 0, sizeof(a->pending));
		a->pending_packs = 0;
	}
	pthread_mutex_unlock(&a->mu);
	if (seg.n && (rc = repo_index_write(a->r, cx, &seg, NULL)) < 0)
		fail(a, rc);
	cairn_idxseg_free(&seg);
}

static void *uploader_main(void *arg)
{
	arch *a = arg;
	cairn_codec *cx = cairn_codec_new(0);
	cairn_packw *pw;
	while ((pw = cairn_queue_pop(&a->packs))) {
		if (!atomic_load(&a->err))
			store_pack(a, pw, cx);
		cairn_packw_free(pw);
	}
	cairn_codec_free(cx);
	return NULL;
}

/* --- driver ---------------------------------------------------------------------------- */

/* Make an absolute, normalized path (no symlink resolution). */
static char *abs_path(const char *p)
{
	char cwd[4096], *buf;
	if (p[0] == '/') {
		buf = cairn_xstrdup(p);
	} else {
		if (!getcwd(cwd, sizeof(cwd)))
			return NULL;
		buf = arch_join_path(cwd, p);
	}
	/* normalize: split on '/', drop "." and "", resolve ".." */
	char **parts = cairn_xcalloc(strlen(buf) + 1, sizeof(char *));
	size_t n = 0;
	for (char *s = strtok(buf, "/"); s; s = strtok(NULL, "/")) {
		if (!strcmp(s, "."))
			continue;
		if (!strcmp(s, "..")) {
			if (n)
				n--;
			continue;
		}
		parts[n++] = s;
	}
	size_t len = 2;
	for (size_t i = 0; i < n; i++)
		len += strlen(parts[i]) + 1;
	char *out = cairn_xmalloc(len);
	out[0] = '/';
	out[1] = 0;
	for (size_t i = 0; i < n; i++) {
		if (i)
			strcat(out, "/");
		strcat(out, parts[i]);
	}
	free(parts);
	free(buf);
	return out;
}

static int find_parent(arch *a, char **paths, size_t np, cairn_snapshot *out)
{
	const cairn_backup_opts *o = a->o;
	if (o->parent)
		return cairn_snapshot_find(a->r, o->parent, NULL, out);
	cairn_snapshot *v;
	size_t n;
	int rc = cairn_snapshots_list(a->r, &v, &n);
	if (rc < 0)
		return rc;
	rc = -ENOENT;
	for (size_t i = n; i-- > 0 && rc == -ENOENT;) {
		if (strcmp(v[i].client, o->client ? o->client : "") || v[i].npaths != np)
			continue;
		size_t k = 0;
		while (k < np && !strcmp(v[i].paths[k], paths[k]))
			k++;
		if (k == np) {
			*out = v[i];
			memset(&v[i], 0, sizeof(v[i]));
			rc = 0;
		}
	}
	cairn_snapshots_free(v, n);
	return rc;
}

static void *progress_main(void *arg)
{
	arch *a = arg;
	while (!atomic_load(&a->err)) {
		for (int i = 0; i < 10; i++) {
			usleep(50000);
			pthread_mutex_lock(&a->mu);
			int done = a->root_done == 2;
			pthread_mutex_unlock(&a->mu);
			if (done)
				return NULL;
		}
		char line[256];
		double s = (double)(cairn_now_ns() - a->t0) / 1e9;
		uint64_t rd = atomic_load(&a->bytes_read), ad = atomic_load(&a->bytes_added);
		snprintf(line, sizeof(line),
			 "[%d:%02d] %llu files, %.1f MiB read (%.0f MiB/s), %.1f MiB added",
			 (int)s / 60, (int)s % 60, (unsigned long long)atomic_load(&a->files_done),
			 (double)rd / 1048576.0, s > 0 ? (double)rd / 1048576.0 / s : 0.0,
			 (double)ad / 1048576.0);
		a->o->progress(a->o->progress_payload, line);
	}
	return NULL;
}

int cairn_backup(cairn_repo *r, const cairn_backup_opts *o, cairn_snapshot *out,
		 void (*warn)(void *payload, const char *msg), void *warn_payload)
{
	arch *a = cairn_xcalloc(1, sizeof(*a));
	cairn_snapshot parent = {0};
	cairn_tree proot = {0};
	int have_parent = 0, rc;
	char **paths = NULL;
	trie *root = NULL;
	memset(out, 0, sizeof(*out));
	if (!o || !o->npaths) {
		free(a);
		return cairn_error_set(-EINVAL, "backup: no paths given");
	}
	a->r = r;
	a->o = o;
	a->warn = warn;
	a->warn_payload = warn_payload;
	a->t0 = cairn_now_ns();
	pthread_mutex_init(&a->mu, NULL);
	pthread_mutex_init(&a->packmu, NULL);
	pthread_mutex_init(&a->poolmu, NULL);
	pthread_mutex_init(&a->wmu, NULL);
	pthread_cond_init(&a->wcond, NULL);

	/* the paths: absolute, existing, sorted, without duplicates */
	paths = cairn_xcalloc(o->npaths, sizeof(char *));
	size_t np = 0;
	for (size_t i = 0; i < o->npaths; i++) {
		struct stat st;
		char *p = abs_path(o->paths[i]);
		if (!p || lstat(p, &st) < 0) {
			rc = cairn_error_set(-errno ? -errno : -ENOENT, "backup: %s: %s", o->paths[i],
					     strerror(errno ? errno : ENOENT));
			free(p);
			goto out_early;
		}
		paths[np++] = p;
	}
	qsort(paths, np, sizeof(char *), arch_cmp_str);
	root = cairn_xcalloc(1, sizeof(*root));
	root->name = cairn_xstrdup("/");
	for (size_t i = 0; i < np; i++) {
		trie *t = root;
		if (!strcmp(paths[i], "/")) {
			root->target = 1;
			continue;
		}
		for (const char *s = paths[i] + 1; *s;) {
			const char *e = strchr(s, '/');
			size_t len = e ? (size_t)(e - s) : strlen(s);
			t = arch_trie_child(t, s, len);
			s += len;
			if (*s == '/')
				s++;
		}
		t->target = 1;
	}

	if ((rc = repo_lock(r, 0, "backup")) < 0)
		goto out_early;
	a->treecx = cairn_codec_new(r->zstd_level);
	long adopted = repo_index_adopt_orphans(r, a->treecx);
	if (adopted < 0) {
		/* the index may name packs a prune deleted: deduplicating against it is unsafe */
		rc = cairn_error_wrap((int)adopted, "backup: cannot bring the index up to date");
		repo_unlock(r);
		goto out_early;
	}
	if (adopted > 0)
		repo_warn(r, "re-indexed %ld pack(s) left by an interrupted backup", adopted);
	if (find_parent(a, paths, np, &parent) == 0 &&
	    repo_tree_load(r, a->treecx, parent.tree, &proot) == 0)
		have_parent = 1;

	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	unsigned nread = r->threads < 2 ? 2 : r->threads;
	unsigned npack = r->threads;
	/*
	 * Packs are 16 MiB: keep few in memory. Remote targets get two uploaders,
	 * so one round trip's latency overlaps the next. A target that links
	 * unnamed files into place (a local directory) has its packs written out
	 * as they fill, so a full pack in the queue costs no memory; one uploader
	 * then does the fsync and the link, which can take tens of ms when the
	 * disk is busy, while the packers go on compressing.
	 */
	unsigned nup = r->t->tmpfile ? 1 : 2;
	cairn_queue_init(&a->files, 256);
	/*
	 * Chunks wait for the packers by bytes, not by count: 8 MiB is ~8 chunks
	 * of /usr (1 MiB average) but ~170 of an image's 48 KiB ones, where a
	 * queue of four ran dry whenever a packer was scheduled out.
	 */
	cairn_queue_init(&a->chunks, 256);
	cairn_queue_set_weight_limit(&a->chunks, 8u << 20);
	cairn_queue_init(&a->packs, r->t->tmpfile ? 4 : 1);
	pthread_t *th = cairn_xcalloc(nread + npack + nup + 1, sizeof(pthread_t));
	for (unsigned i = 0; i < nread; i++)
		pthread_create(&th[i], NULL, reader_main, a);
	for (unsigned i = 0; i < npack; i++)
		pthread_create(&th[nread + i], NULL, packer_main, a);
	for (unsigned i = 0; i < nup; i++)
		pthread_create(&th[nread + npack + i], NULL, uploader_main, a);
	int have_progress = 0;
	if (o->progress &&
	    pthread_create(&th[nread + npack + nup], NULL, progress_main, a) == 0)
		have_progress = 1;

	/* walk from "/" */
	pdir *top = cairn_xcalloc(1, sizeof(*top));
	top->fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (top->fd < 0) /* every path is opened from here: nothing can be backed up */
		fail(a, cairn_error_set(-errno, "backup: cannot open /: %s", strerror(errno)));
	top->path = cairn_xstrdup("/");
	struct stat rst;
	if (lstat(paths[0], &rst) == 0)
		a->root_dev = rst.st_dev;
	wjob *w = cairn_xcalloc(1, sizeof(*w));
	w->dir = top;
	w->ptree = have_parent ? &proot : NULL;
	w->only = root->target ? NULL : root;
	arch_walk_push(a, w, w);
	unsigned nwalk = r->threads < 1 ? 1 : r->threads;
	pthread_t *wth = cairn_xcalloc(nwalk, sizeof(pthread_t));
	unsigned started = 0;
	while (started + 1 < nwalk && pthread_create(&wth[started], NULL, arch_walker_main, a) == 0)
		started++;
	arch_walker_main(a);
	for (unsigned i = 0; i < started; i++)
		pthread_join(wth[i], NULL);
	free(wth);

	cairn_queue_close(&a->files);
	for (unsigned i = 0; i < nread; i++)
		pthread_join(th[i], NULL);
	/* every directory is finished now: flush the last tree pack */
	pthread_mutex_lock(&a->mu);
	cairn_packw *tp = a->treepack;
	a->treepack = NULL;
	pthread_mutex_unlock(&a->mu);
	if (tp && !atomic_load(&a->err))
		push_pack(a, tp, a->treecx);
	else
		cairn_packw_free(tp);
	cairn_queue_close(&a->chunks);
	for (unsigned i = 0; i < npack; i++)
		pthread_join(th[nread + i], NULL);
	if (a->datapack && cairn_packw_count(a->datapack) && !atomic_load(&a->err))
		push_pack(a, a->datapack, a->treecx);
	else
		cairn_packw_free(a->datapack);
	a->datapack = NULL;
	cairn_queue_close(&a->packs);
	for (unsigned i = 0; i < nup; i++)
		pthread_join(th[nread + npack + i], NULL);
	pthread_mutex_lock(&a->mu);
	int root_done = a->root_done;
	a->root_done = 2;
	pthread_mutex_unlock(&a->mu);
	if (have_progress)
		pthread_join(th[nread + npack + nup], NULL);
	free(th);

	rc = atomic_load(&a->err);
	if (!rc && a->pending.n)
		rc = repo_index_write(r, a->treecx, &a->pending, NULL);
	if (!rc && !root_done)
		rc = cairn_error_set(-EIO, "backup: internal error: the root tree was not finished");
	if (rc) {
		if (atomic_load(&a->err))
			cairn_error_set(rc, "%s", a->errmsg);
		cairn_error_wrap(rc, "backup failed, no snapshot written");
		goto out;
	}

	/* the snapshot */
	char host[256] = "";
	gethostname(host, sizeof(host) - 1);
	const char *user = getenv("USER");
	out->time_ns = cairn_wall_ns();
	memcpy(out->tree, a->root, 32);
	if (have_parent) {
		out->has_parent = 1;
		cairn_unhex(out->parent, 32, parent.idhex);
	}
	out->client = cairn_xstrdup(o->client ? o->client : "");
	out->hostname = cairn_xstrdup(host);
	out->username = cairn_xstrdup(user ? user : "root");
	out->npaths = np;
	out->paths = paths;
	paths = NULL;
	out->ntags = o->ntags;
	out->tags = cairn_xcalloc(o->ntags ? o->ntags : 1, sizeof(char *));
	for (size_t i = 0; i < o->ntags; i++)
		out->tags[i] = cairn_xstrdup(o->tags[i]);
	out->program = cairn_xstrdup("cairn " CAIRN_VERSION_STRING);
	out->summary = a->sum;
	out->summary.bytes_read = atomic_load(&a->bytes_read);
	out->summary.bytes_added = atomic_load(&a->bytes_added);
	out->summary.duration_ns = (int64_t)(cairn_now_ns() - a->t0);
	rc = snapshot_save(r, a->treecx, out);
	if (rc < 0) {
		cairn_error_wrap(rc, "backup: writing the snapshot");
		cairn_snapshot_free(out);
	}
out:
	cairn_queue_destroy(&a->files);
	cairn_queue_destroy(&a->chunks);
	cairn_queue_destroy(&a->packs);
	cairn_idxseg_free(&a->pending);
	for (size_t b = 0; b < INFLIGHT_BUCKETS; b++)
		while (a->inf[b]) {
			inflight *f = a->inf[b];
			a->inf[b] = f->next;
			free(f);
		}
	repo_unlock(r);
out_early:
	cairn_codec_free(a->treecx);
	cairn_tree_free(&proot);
	cairn_snapshot_free(&parent);
	arch_trie_free(root);
	if (paths)
		for (size_t i = 0; i < o->npaths; i++)
			free(paths[i]);
	free(paths);
	pthread_mutex_destroy(&a->mu);
	pthread_mutex_destroy(&a->packmu);
	pthread_mutex_destroy(&a->poolmu);
	pthread_mutex_destroy(&a->wmu);
	pthread_cond_destroy(&a->wcond);
	for (size_t i = 0; i < a->npool; i++)
		free(a->pool[i]);
	free(a);
	return rc;
}
