/*
 * restorer.c - restore a snapshot (or chosen paths of it) into a directory,
 * or verify it without writing anything (drills).
 *
 * DESIGN
 * The walker (caller's thread) goes through the trees depth-first by
 * directory fds (paths of any length work), creates directories, symlinks,
 * fifos, devices and hardlinks at once, creates each regular file at its
 * final size (so holes stay holes) and queues its content. Workers fetch
 * the chunks (each authenticated and checked against its id), write them
 * with pwrite at their offsets (large files are split across workers and
 * written out of order), then set the file's owner, mode, xattrs and times
 * through its fd. The whole-file digest over the extent list is checked
 * before any byte is written, so with every chunk id verified the restored
 * file provably equals what the backup read. Directory metadata is applied
 * after the directory's entries exist (post-order), so its mtime sticks.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "engine/queue_int.h"
#include "engine/repo_int.h"

#define SPLIT_EXTENTS 16 /* extents per job of a large file */

typedef struct rfile {
	int fd;                 /* -1 in verify-only mode */
	cairn_node node;        /* copy (owns its extents) */
	char *where;            /* printable path for messages */
	atomic_int refs;        /* jobs not finished */
	atomic_int failed;
} rfile;

typedef struct rjob {
	rfile *f;
	size_t first, count;    /* extent range */
	uint64_t offset;        /* file offset of extent `first` */
} rjob;

typedef struct hlink {
	struct hlink *next;
	uint64_t dev, ino;
	char *rel;              /* path relative to the restore root */
} hlink;

typedef struct rst {
	cairn_repo *r;
	const cairn_restore_opts *o;
	cairn_restore_result *res;
	cairn_queue jobs;
	pthread_mutex_t mu;
	void (*warn)(void *, const char *);
	void *warn_payload;
	int rootfd;
	hlink *links;
	char **inc;
	size_t ninc;
	uint64_t t0;
	atomic_uint_fast64_t bytes, first_byte;
	cairn_codec *cx;
	int is_root;
	int sampling;
} rst;

static void rwarn(rst *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rwarn(rst *s, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&s->mu);
	s->res->errors++;
	if (s->warn)
		s->warn(s->warn_payload, msg);
	else
		fprintf(stderr, "cairn: %s\n", msg);
	pthread_mutex_unlock(&s->mu);
}

static char *printable_join(const char *dir, const char *name)
{
	size_t cap = strlen(dir) + 4 * strlen(name) + 4;
	char *out = cairn_xmalloc(cap);
	size_t o = (size_t)snprintf(out, cap, "%s%s", dir, strcmp(dir, "/") ? "/" : "");
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if (*p < 0x20 || *p >= 0x7f)
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", *p);
		else
			out[o++] = (char)*p;
	}
	out[o] = 0;
	return out;
}

static char *raw_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = cairn_xmalloc(n);
	snprintf(p, n, "%s%s%s", dir, *dir && strcmp(dir, "/") ? "/" : "", name);
	return p;
}

/* Apply owner, mode, xattrs and times through an open file. */
static int apply_fd(rst *s, int fd, const cairn_node *n, const char *where)
{
	if (s->is_root && !s->o->no_owner && fchown(fd, n->uid, n->gid) < 0)
		rwarn(s, "%s: chown: %s", where, strerror(errno));
	if (fchmod(fd, n->mode & 07777) < 0)
		rwarn(s, "%s: chmod: %s", where, strerror(errno));
	for (size_t i = 0; i < n->n_xattrs; i++)
		if (fsetxattr(fd, n->xattrs[i].name, n->xattrs[i].value, n->xattrs[i].len, 0) < 0)
			rwarn(s, "%s: xattr %s: %s", where, n->xattrs[i].name, strerror(errno));
	struct timespec ts[2] = {
	    {(time_t)(n->atime_ns / 1000000000), (long)(n->atime_ns % 1000000000)},
	    {(time_t)(n->mtime_ns / 1000000000), (long)(n->mtime_ns % 1000000000)}};
	for (int i = 0; i < 2; i++)
		if (ts[i].tv_nsec < 0) {
			ts[i].tv_nsec += 1000000000;
			ts[i].tv_sec--;
		}
	if (futimens(fd, ts) < 0)
		rwarn(s, "%s: times: %s", where, strerror(errno));
	return 0;
}

static void file_release(rst *s, rfile *f)
{
	if (atomic_fetch_sub(&f->refs, 1) != 1)
		return;
	if (f->fd >= 0) {
		if (!atomic_load(&f->failed))
			apply_fd(s, f->fd, &f->node, f->where);
		if (close(f->fd) < 0)
			rwarn(s, "%s: close: %s", f->where, strerror(errno));
	}
	pthread_mutex_lock(&s->mu);
	s->res->files++;
	pthread_mutex_unlock(&s->mu);
	cairn_node_free(&f->node);
	free(f->where);
	free(f);
}

static void *worker_main(void *arg)
{
	rst *s = arg;
	cairn_codec *cx = cairn_codec_new(0);
	cairn_buf b = CAIRN_BUF_INIT;
	rjob *j;
	while ((j = cairn_queue_pop(&s->jobs))) {
		rfile *f = j->f;
		uint64_t off = j->offset;
		for (size_t i = j->first; i < j->first + j->count && !atomic_load(&f->failed); i++) {
			const cairn_extent *e = &f->node.extents[i];
			if (e->hole) {
				off += e->len;
				continue;
			}
			int rc = repo_blob_read(s->r, cx, e->id, (size_t)e->len, &b);
			if (rc < 0) {
				atomic_store(&f->failed, 1);
				rwarn(s, "%s: %s", f->where, cairn_error_last());
				break;
			}
			uint64_t zero = 0;
			atomic_compare_exchange_strong(&s->first_byte, &zero, cairn_now_ns() - s->t0);
			if (f->fd >= 0) {
				size_t done = 0;
				while (done < b.len) {
					ssize_t n = pwrite(f->fd, b.data + done, b.len - done,
							   (off_t)(off + done));
					if (n < 0 && errno == EINTR)
						continue;
					if (n <= 0) {
						atomic_store(&f->failed, 1);
						rwarn(s, "%s: write: %s", f->where,
						      strerror(n < 0 ? errno : ENOSPC));
						break;
					}
					done += (size_t)n;
				}
			}
			atomic_fetch_add(&s->bytes, b.len);
			off += e->len;
		}
		file_release(s, f);
		free(j);
	}
	cairn_buf_free(&b);
	cairn_codec_free(cx);
	return NULL;
}

/* Include filter: 2 = restore all below, 1 = ancestor of an include, 0 = skip. */
static int inc_match(rst *s, const char *path)
{
	if (!s->ninc)
		return 2;
	size_t pl = strlen(path);
	int anc = 0;
	for (size_t i = 0; i < s->ninc; i++) {
		const char *in = s->inc[i];
		size_t il = strlen(in);
		if (il == 1 && in[0] == '/')
			return 2;
		if (pl >= il && !strncmp(path, in, il) && (path[il] == 0 || path[il] == '/'))
			return 2;
		if (il > pl && !strncmp(in, path, pl) && (in[pl] == '/' || pl == 1))
			anc = 1;
	}
	return anc;
}

/* A second name of an inode already restored becomes a hard link: 1 if so. */
static int try_link(rst *s, int dirfd, const cairn_node *n, const char *where)
{
	if (n->nlink < 2 || s->rootfd < 0)
		return 0;
	for (hlink *h = s->links; h; h = h->next) {
		if (h->dev != n->dev || h->ino != n->ino)
			continue;
		unlinkat(dirfd, n->name, 0);
		if (linkat(s->rootfd, h->rel, dirfd, n->name, 0) < 0)
			rwarn(s, "%s: hardlink: %s", where, strerror(errno));
		pthread_mutex_lock(&s->mu);
		if (n->type == CAIRN_NODE_FILE)
			s->res->files++;
		else
			s->res->others++;
		pthread_mutex_unlock(&s->mu);
		return 1;
	}
	return 0;
}

static void remember_link(rst *s, const char *rel, const cairn_node *n)
{
	if (n->nlink < 2 || s->rootfd < 0)
		return;
	hlink *h = cairn_xcalloc(1, sizeof(*h));
	h->dev = n->dev;
	h->ino = n->ino;
	h->rel = cairn_xstrdup(rel);
	h->next = s->links;
	s->links = h;
}

static void restore_file(rst *s, int dirfd, const char *rel, const cairn_node *n,
			 const char *where)
{
	if (try_link(s, dirfd, n, where))
		return;
	uint8_t dg[32];
	if (!(n->flags & CAIRN_NODE_F_DIGEST)) {
		rwarn(s, "%s: no content digest in the snapshot", where);
		return;
	}
	file_digest(&s->r->keys, n->extents, n->n_extents, n->size, dg);
	uint64_t sum = 0;
	for (size_t i = 0; i < n->n_extents; i++)
		sum += n->extents[i].len;
	if (memcmp(dg, n->digest, 32) != 0 || sum != n->size) {
		rwarn(s, "%s: whole-file digest mismatch: the tree is corrupt", where);
		return;
	}
	rfile *f = cairn_xcalloc(1, sizeof(*f));
	f->fd = -1;
	if (s->rootfd >= 0) {
		f->fd = openat(dirfd, n->name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
			       0600);
		if (f->fd < 0 && errno == ELOOP) {
			unlinkat(dirfd, n->name, 0);
			f->fd = openat(dirfd, n->name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
							       O_CLOEXEC, 0600);
		}
		if (f->fd < 0 || ftruncate(f->fd, (off_t)n->size) < 0) {
			rwarn(s, "%s: cannot create: %s", where, strerror(errno));
			if (f->fd >= 0)
				close(f->fd);
			free(f);
			return;
		}
		remember_link(s, rel, n);
	}
	cairn_node_copy(&f->node, n);
	f->where = cairn_xstrdup(where);
	size_t njobs = n->n_extents ? (n->n_extents + SPLIT_EXTENTS - 1) / SPLIT_EXTENTS : 1;
	atomic_store(&f->refs, (int)njobs);
	uint64_t off = 0;
	for (size_t k = 0; k < njobs; k++) {
		rjob *j = cairn_xcalloc(1, sizeof(*j));
		j->f = f;
		j->first = k * SPLIT_EXTENTS;
		j->count = n->n_extents - j->first < SPLIT_EXTENTS ? n->n_extents - j->first
								     : SPLIT_EXTENTS;
		j->offset = off;
		for (size_t i = j->first; i < j->first + j->count; i++)
			off += n->extents[i].len;
		if (cairn_queue_push(&s->jobs, j) < 0) {
			free(j);
			file_release(s, f);
		}
	}
}

static void restore_tree(rst *s, int dirfd, const char *path, const char *rel,
			 const uint8_t tree_id[32], int all);

/* Sampling: a file is in the sample when a hash of (seed, path) falls below the share. */
static int in_sample(rst *s, const char *path)
{
	if (!s->sampling)
		return 1;
	if (!strcmp(path, s->res->largest) || !strcmp(path, s->res->deepest))
		return 1;
	uint64_t h = 1469598103934665603ull ^ s->o->seed;
	for (const unsigned char *p = (const unsigned char *)path; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return (double)(h >> 11) / 9007199254740992.0 < s->o->sample;
}

/* Pre-pass: totals, the largest file and the deepest file of what would be restored. */
static void survey(rst *s, const uint8_t tree_id[32], const char *path, int all, int depth,
		   uint64_t *largest, int *deepest)
{
	cairn_tree t;
	if (repo_tree_load(s->r, s->cx, tree_id, &t) < 0)
		return; /* reported by the restore pass */
	for (size_t i = 0; i < t.n; i++) {
		const cairn_node *n = &t.nodes[i];
		char *p = raw_join(path, n->name);
		int m = all ? 2 : inc_match(s, p);
		if (m && n->type == CAIRN_NODE_DIR) {
			survey(s, n->subtree, p, m == 2, depth + 1, largest, deepest);
		} else if (m == 2 && n->type == CAIRN_NODE_FILE) {
			s->res->files_total++;
			s->res->bytes_total += n->size;
			if (n->size > *largest || !s->res->largest[0]) {
				*largest = n->size;
				snprintf(s->res->largest, sizeof(s->res->largest), "%s", p);
			}
			if (depth > *deepest) {
				*deepest = depth;
				snprintf(s->res->deepest, sizeof(s->res->deepest), "%s", p);
			}
		}
		free(p);
	}
	cairn_tree_free(&t);
}

static void restore_dir(rst *s, int dirfd, const char *path, const char *rel,
			const cairn_node *n, int all, const char *where)
{
	int fd = -1;
	if (s->rootfd >= 0) {
		if (cairn_node_make(dirfd, n) < 0) {
			rwarn(s, "%s: %s", where, cairn_error_last());
			return;
		}
		fd = openat(dirfd, n->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			rwarn(s, "%s: cannot open: %s", where, strerror(errno));
			return;
		}
	}
	char *cpath = raw_join(path, n->name), *crel = raw_join(rel, n->name);
	restore_tree(s, fd, cpath, crel, n->subtree, all);
	free(cpath);
	free(crel);
	if (fd >= 0) {
		close(fd);
		/* post-order: the directory's own metadata once its entries exist */
		if (cairn_node_apply(dirfd, n, s->is_root && !s->o->no_owner
							  ? CAIRN_APPLY_ALL
							  : CAIRN_APPLY_XATTRS) < 0)
			rwarn(s, "%s: %s", where, cairn_error_last());
	}
	pthread_mutex_lock(&s->mu);
	s->res->dirs++;
	pthread_mutex_unlock(&s->mu);
}

static void restore_tree(rst *s, int dirfd, const char *path, const char *rel,
			 const uint8_t tree_id[32], int all)
{
	cairn_tree t;
	if (repo_tree_load(s->r, s->cx, tree_id, &t) < 0) {
		rwarn(s, "%s: %s", path, cairn_error_last());
		return;
	}
	for (size_t i = 0; i < t.n; i++) {
		const cairn_node *n = &t.nodes[i];
		char *cpath = raw_join(path, n->name);
		int m = all ? 2 : inc_match(s, cpath);
		free(cpath);
		if (!m || (m == 1 && n->type != CAIRN_NODE_DIR))
			continue;
		char *where = printable_join(path, n->name);
		char *crel = raw_join(rel, n->name);
		switch (n->type) {
		case CAIRN_NODE_DIR:
			restore_dir(s, dirfd, path, rel, n, m == 2, where);
			break;
		case CAIRN_NODE_FILE: {
			char *fp = raw_join(path, n->name);
			if (in_sample(s, fp))
				restore_file(s, dirfd, crel, n, where);
			free(fp);
			break;
		}
		default:
			if (try_link(s, dirfd, n, where))
				break;
			if (s->rootfd >= 0) {
				unlinkat(dirfd, n->name, 0);
				remember_link(s, crel, n);
				if (cairn_node_make(dirfd, n) < 0 ||
				    cairn_node_apply(dirfd, n, s->is_root && !s->o->no_owner
								       ? CAIRN_APPLY_ALL
								       : CAIRN_APPLY_XATTRS) < 0)
					rwarn(s, "%s: %s", where, cairn_error_last());
			}
			pthread_mutex_lock(&s->mu);
			s->res->others++;
			pthread_mutex_unlock(&s->mu);
		}
		free(crel);
		free(where);
	}
	cairn_tree_free(&t);
}

int cairn_restore(cairn_repo *r, const cairn_snapshot *snap, const cairn_restore_opts *o,
		  cairn_restore_result *res, void (*warn)(void *payload, const char *msg),
		  void *warn_payload)
{
	rst s = {0};
	memset(res, 0, sizeof(*res));
	if (!o || (!o->target && !o->verify_only))
		return cairn_error_set(-EINVAL, "restore: no target directory given");
	s.r = r;
	s.o = o;
	s.res = res;
	s.warn = warn;
	s.warn_payload = warn_payload;
	s.t0 = cairn_now_ns();
	s.rootfd = -1;
	s.is_root = geteuid() == 0;
	pthread_mutex_init(&s.mu, NULL);
	if (!o->verify_only) {
		char *p = cairn_xstrdup(o->target);
		for (char *c = strchr(p + 1, '/'); c; c = strchr(c + 1, '/')) {
			*c = 0;
			mkdir(p, 0700);
			*c = '/';
		}
		if (mkdir(p, 0700) < 0 && errno != EEXIST) {
			int e = errno;
			free(p);
			pthread_mutex_destroy(&s.mu);
			return cairn_error_set(-e, "restore: cannot create %s: %s", o->target,
					       strerror(e));
		}
		free(p);
		s.rootfd = open(o->target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (s.rootfd < 0) {
			int e = errno;
			pthread_mutex_destroy(&s.mu);
			return cairn_error_set(-e, "restore: cannot open %s: %s", o->target,
					       strerror(e));
		}
	}
	/* includes: absolute, no trailing slash */
	s.inc = cairn_xcalloc(o->nincludes ? o->nincludes : 1, sizeof(char *));
	for (size_t i = 0; i < o->nincludes; i++) {
		const char *in = o->includes[i];
		size_t l = strlen(in);
		char *c = cairn_xmalloc(l + 2);
		snprintf(c, l + 2, "%s%s", in[0] == '/' ? "" : "/", in);
		l = strlen(c);
		while (l > 1 && c[l - 1] == '/')
			c[--l] = 0;
		s.inc[s.ninc++] = c;
	}
	s.cx = cairn_codec_new(0);
	unsigned nw = r->threads < 2 ? 2 : r->threads;
	cairn_queue_init(&s.jobs, 64);
	pthread_t *th = cairn_xcalloc(nw, sizeof(pthread_t));
	for (unsigned i = 0; i < nw; i++)
		pthread_create(&th[i], NULL, worker_main, &s);

	s.sampling = o->sample > 0 && o->sample < 1;
	{
		uint64_t largest = 0;
		int deepest = -1;
		survey(&s, snap->tree, "/", s.ninc == 0, 0, &largest, &deepest);
	}
	restore_tree(&s, s.rootfd, "/", "", snap->tree, s.ninc == 0);

	cairn_queue_close(&s.jobs);
	for (unsigned i = 0; i < nw; i++)
		pthread_join(th[i], NULL);
	free(th);
	cairn_queue_destroy(&s.jobs);
	cairn_codec_free(s.cx);
	if (s.rootfd >= 0)
		close(s.rootfd);
	while (s.links) {
		hlink *h = s.links;
		s.links = h->next;
		free(h->rel);
		free(h);
	}
	for (size_t i = 0; i < s.ninc; i++)
		free(s.inc[i]);
	free(s.inc);
	pthread_mutex_destroy(&s.mu);
	res->bytes = atomic_load(&s.bytes);
	res->first_byte_ns = (int64_t)atomic_load(&s.first_byte);
	res->duration_ns = (int64_t)(cairn_now_ns() - s.t0);
	if (res->errors)
		return cairn_error_set(-EIO, "restore finished with %llu error(s)",
				       (unsigned long long)res->errors);
	return 0;
}
