/*
 * reader.c - a backup's data path: readers read and chunk files and hash the
 * chunks, packers compress and seal them into the shared data pack, and
 * uploaders store full packs and register their blobs (see archiver.c's
 * DESIGN).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/*
 * Compress a new chunk with @p cx (the caller's own codec), then seal it into
 * the one data pack shared by every thread, under packmu: sealing is AES-GCM
 * at several GB/s, compression ~20x slower, so the lock is held for a small
 * fraction of the time. One pack in the making instead of one per thread
 * keeps the backup's memory at about two packs. @p raw: stored as it is,
 * without trying zstd.
 */
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
		arch_fail(a, rc);
	if (cairn_packw_size(a->datapack) >= a->r->pack_size ||
	    cairn_packw_count(a->datapack) >= CAIRN_PACK_MAX_BLOBS) {
		full = a->datapack;
		a->datapack = NULL;
	}
	pthread_mutex_unlock(&a->packmu);
	if (full)
		arch_push_pack(a, full, cx);
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
	int known = arch_claim_locked(a, id);
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
 * Chunk one data region [off, end) of fd. @return bytes read: fewer if the
 * file shrank (*err = 1) or a read failed (*err = -errno).
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
		off = data + (uint64_t)got;
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

void *arch_reader_main(void *arg)
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
void *arch_packer_main(void *arg)
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
		arch_fail(a, rc);
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
		arch_release_locked(a, e[i].id);
	a->sum.blobs_added += n;
	if (++a->pending_packs >= INDEX_EVERY) {
		seg = a->pending;
		memset(&a->pending, 0, sizeof(a->pending));
		a->pending_packs = 0;
	}
	pthread_mutex_unlock(&a->mu);
	if (seg.n && (rc = repo_index_write(a->r, cx, &seg, NULL)) < 0)
		arch_fail(a, rc);
	cairn_idxseg_free(&seg);
}

void *arch_uploader_main(void *arg)
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
