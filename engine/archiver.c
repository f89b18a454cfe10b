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
 * The walk is in walker.c, the readers, packers and uploaders in reader.c;
 * what the files share is in archiver_int.h.
 * The snapshot is written only after every pack and index segment is stored,
 * so a crash at any moment leaves only unreferenced packs, which the next
 * backup adopts (repo_index_adopt_orphans) and reuses.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "engine/archiver_int.h"

/* --- errors and warnings ----------------------------------------------------------- */

void arch_fail(arch *a, int rc)
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
int arch_claim_locked(arch *a, const uint8_t id[32])
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

void arch_release_locked(arch *a, const uint8_t id[32])
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
void arch_push_pack(arch *a, cairn_packw *pw, cairn_codec *cx)
{
	cairn_codec *own = cx ? NULL : cairn_codec_new(0);
	if (!cx)
		cx = own;
	int rc = cairn_packw_finish(pw, cx);
	if (rc < 0) {
		arch_fail(a, rc);
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
	if (!arch_claim_locked(a, id)) {
		if (!a->treepack)
			a->treepack = cairn_packw_new(&a->r->keys, CAIRN_BLOB_TREE);
		int rc = cairn_packw_add(a->treepack, a->treecx, id, CAIRN_BLOB_TREE, b->data, b->len);
		if (rc < 0)
			arch_fail(a, rc);
		if (cairn_packw_size(a->treepack) >= a->r->pack_size / 4) {
			full = a->treepack;
			a->treepack = NULL;
		}
	}
	pthread_mutex_unlock(&a->mu);
	if (full)
		arch_push_pack(a, full, NULL); /* treecx is the walker's, under mu: push_pack makes one */
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
		arch_fail(a, cairn_error_wrap(rc, "encoding the tree of %s", d->path));
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

/* The child of @p t named name[0, len), made if it is missing. */
static trie *trie_child(trie *t, const char *name, size_t len)
{
	for (size_t i = 0; i < t->n; i++)
		if (strlen(t->kids[i]->name) == len && !memcmp(t->kids[i]->name, name, len))
			return t->kids[i];
	trie *c = cairn_xcalloc(1, sizeof(*c));
	c->name = cairn_xmalloc(len + 1);
	memcpy(c->name, name, len);
	c->name[len] = 0;
	t->kids = cairn_xrealloc(t->kids, (t->n + 1) * sizeof(trie *));
	t->kids[t->n++] = c;
	return c;
}

static void trie_free(trie *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		trie_free(t->kids[i]);
	free(t->kids);
	free(t->name);
	free(t);
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
			t = trie_child(t, s, len);
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
		pthread_create(&th[i], NULL, arch_reader_main, a);
	for (unsigned i = 0; i < npack; i++)
		pthread_create(&th[nread + i], NULL, arch_packer_main, a);
	for (unsigned i = 0; i < nup; i++)
		pthread_create(&th[nread + npack + i], NULL, arch_uploader_main, a);
	int have_progress = 0;
	if (o->progress &&
	    pthread_create(&th[nread + npack + nup], NULL, progress_main, a) == 0)
		have_progress = 1;

	/* walk from "/" */
	pdir *top = cairn_xcalloc(1, sizeof(*top));
	top->fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (top->fd < 0) /* every path is opened from here: nothing can be backed up */
		arch_fail(a, cairn_error_set(-errno, "backup: cannot open /: %s", strerror(errno)));
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
		arch_push_pack(a, tp, a->treecx);
	else
		cairn_packw_free(tp);
	cairn_queue_close(&a->chunks);
	for (unsigned i = 0; i < npack; i++)
		pthread_join(th[nread + i], NULL);
	if (a->datapack && cairn_packw_count(a->datapack) && !atomic_load(&a->err))
		arch_push_pack(a, a->datapack, a->treecx);
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
	trie_free(root);
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
