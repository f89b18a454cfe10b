/*
 * walker.c - the walk of a backup's sources: walkers list and lstat()
 * directories, compare them with the parent snapshot's trees, reuse what is
 * unchanged and queue the rest for the readers (see archiver.c's DESIGN).
 */
#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/archiver_int.h"

static trie *trie_find(const trie *t, const char *name)
{
	for (size_t i = 0; t && i < t->n; i++)
		if (!strcmp(t->kids[i]->name, name))
			return t->kids[i];
	return NULL;
}

static int excluded(arch *a, const char *dir, const char *name)
{
	if (!a->o->nexcludes)
		return 0;
	char full[8192];
	snprintf(full, sizeof(full), "%s%s%s", dir, strcmp(dir, "/") ? "/" : "", name);
	for (size_t i = 0; i < a->o->nexcludes; i++) {
		const char *p = a->o->excludes[i];
		if (!fnmatch(p, name, 0) || !fnmatch(p, full, 0) || !fnmatch(p, full, FNM_LEADING_DIR))
			return 1;
	}
	return 0;
}

static int same_file(const cairn_node *n, const cairn_node *p)
{
	return p && p->type == CAIRN_NODE_FILE && (p->flags & CAIRN_NODE_F_DIGEST) &&
	       !(p->flags & CAIRN_NODE_F_CHANGED) && p->ino == n->ino && p->size == n->size &&
	       p->mtime_ns == n->mtime_ns && p->ctime_ns == n->ctime_ns;
}

static int extents_present(arch *a, const cairn_node *p)
{
	for (size_t i = 0; i < p->n_extents; i++)
		if (!p->extents[i].hole && !cairn_index_lookup(a->r->idx, p->extents[i].id, NULL))
			return 0;
	return 1;
}

char *arch_join_path(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = cairn_xmalloc(n);
	snprintf(p, n, "%s%s%s", dir, strcmp(dir, "/") ? "/" : "", name);
	return p;
}

int arch_cmp_str(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* List the names of directory d (all, or only those of the trie). */
static char **list_names(arch *a, pdir *d, const trie *only, size_t *count)
{
	char **v = NULL;
	size_t n = 0, cap = 0;
	if (only) {
		v = cairn_xcalloc(only->n ? only->n : 1, sizeof(char *));
		for (size_t i = 0; i < only->n; i++)
			v[n++] = cairn_xstrdup(only->kids[i]->name);
		*count = n;
		return v;
	}
	int fd2 = dup(d->fd);
	DIR *dir = fd2 >= 0 ? fdopendir(fd2) : NULL;
	if (!dir) {
		if (fd2 >= 0)
			close(fd2);
		char where[1024];
		arch_printable(where, sizeof(where), d->path, "");
		arch_warnf(a, "%s: cannot list: %s", where, strerror(errno));
		*count = 0;
		return NULL;
	}
	struct dirent *e;
	errno = 0;
	while ((e = readdir(dir))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (excluded(a, d->path, e->d_name))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			v = cairn_xrealloc(v, cap * sizeof(char *));
		}
		v[n++] = cairn_xstrdup(e->d_name);
	}
	closedir(dir);
	if (n)
		qsort(v, n, sizeof(char *), arch_cmp_str);
	*count = n;
	return v;
}

static int64_t ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

static int node_type_of(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG: return CAIRN_NODE_FILE;
	case S_IFDIR: return CAIRN_NODE_DIR;
	case S_IFLNK: return CAIRN_NODE_SYMLINK;
	case S_IFIFO: return CAIRN_NODE_FIFO;
	case S_IFCHR: return CAIRN_NODE_CHR;
	case S_IFBLK: return CAIRN_NODE_BLK;
	case S_IFSOCK: return CAIRN_NODE_SOCK;
	default: return 0;
	}
}

/* Can the parent snapshot's node stand in for a fresh capture of @p st? */
static int reusable(const cairn_node *p, const struct stat *st)
{
	return p && p->type == node_type_of(st->st_mode) && p->ino == (uint64_t)st->st_ino &&
	       p->ctime_ns == ts_ns(&st->st_ctim) && p->mtime_ns == ts_ns(&st->st_mtim) &&
	       (p->type != CAIRN_NODE_FILE || p->size == (uint64_t)st->st_size) &&
	       !(p->flags & CAIRN_NODE_F_CHANGED) && p->uid == st->st_uid && p->gid == st->st_gid &&
	       p->mode == (st->st_mode & 07777);
}

/* A copy of the parent's node, refreshed from @p st, without content or subtree. */
static void reuse_node(cairn_node *n, const cairn_node *p, const struct stat *st)
{
	cairn_node_copy(n, p);
	free(n->extents);
	n->extents = NULL;
	n->n_extents = 0;
	n->flags &= ~(uint32_t)(CAIRN_NODE_F_DIGEST | CAIRN_NODE_F_CHANGED);
	memset(n->digest, 0, sizeof(n->digest));
	memset(n->subtree, 0, sizeof(n->subtree));
	n->dev = (uint64_t)st->st_dev;
	n->nlink = (uint32_t)st->st_nlink;
	n->atime_ns = ts_ns(&st->st_atim);
	n->rdev = (uint64_t)st->st_rdev;
}

/*
 * The walk runs on several threads (the repository's thread count; the
 * caller's is one of them): each takes a directory from a shared stack,
 * lists and lstat()s it, compares it with the parent snapshot's tree, queues
 * its changed files for the readers and pushes its subdirectories back on the
 * stack. The stack is last-in first-out, so the walk stays close to depth
 * first and few directories are open at once. An unchanged backup is mostly
 * lstat() and reading the parent's trees, so this spreads it over the cores.
 */

void arch_walk_push(arch *a, wjob *first, wjob *last)
{
	pthread_mutex_lock(&a->wmu);
	last->next = a->wstack;
	a->wstack = first;
	pthread_cond_broadcast(&a->wcond);
	pthread_mutex_unlock(&a->wmu);
}

static void walk_dir(arch *a, pdir *d, const cairn_tree *ptree, const trie *only)
{
	size_t nn = 0;
	char **names = list_names(a, d, only, &nn);
	d->outstanding = 1; /* the walker's token */
	for (size_t i = 0; i < nn; i++) {
		cairn_node node = {0};
		struct stat st;
		if (fstatat(d->fd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
			char where[1024];
			arch_printable(where, sizeof(where), d->path, names[i]);
			if (errno == ENOENT && !only)
				arch_warnf(a, "%s: vanished before it was read", where);
			else
				arch_warnf(a, "%s: %s", where, strerror(errno));
			continue;
		}
		const cairn_node *prev = ptree ? cairn_tree_find(ptree, names[i]) : NULL;
		if (reusable(prev, &st)) {
			/* same inode and ctime: owner, mode, xattrs and link target are what
			 * the parent recorded (any change to them moves ctime), so skip the
			 * xattr and name lookups */
			reuse_node(&node, prev, &st);
		} else {
			int rc = cairn_node_capture(&node, d->fd, names[i], &st);
			if (rc < 0) {
				arch_warnf(a, "%s", cairn_error_last());
				continue;
			}
		}
		/* Listing a directory updates its atime, and so does reading a symlink's
		 * target: storing it would rewrite the trees on the next backup (every
		 * one for directories, once for symlinks); record the mtime instead
		 * (restored as both). */
		if (node.type == CAIRN_NODE_DIR || node.type == CAIRN_NODE_SYMLINK)
			node.atime_ns = node.mtime_ns;
		cairn_tree_add(&d->tree, &node);
	}
	for (size_t i = 0; i < nn; i++)
		free(names[i]);
	free(names);
	cairn_tree_sort(&d->tree);

	/* counted here and added once per directory: the walkers share a->mu */
	uint64_t bytes = 0, unchanged = 0, dirs = 0, others = 0;
	wjob *first = NULL, *last = NULL;
	for (size_t i = 0; i < d->tree.n && !atomic_load(&a->err); i++) {
		cairn_node *n = &d->tree.nodes[i];
		const cairn_node *p = ptree ? cairn_tree_find(ptree, n->name) : NULL;
		const trie *sub = only ? trie_find(only, n->name) : NULL;
		if (sub && sub->target)
			sub = NULL;
		if (n->type == CAIRN_NODE_FILE && !sub) {
			bytes += n->size;
			if (!a->o->force && same_file(n, p) && extents_present(a, p)) {
				n->extents = cairn_xmalloc((p->n_extents ? p->n_extents : 1) *
							   sizeof(cairn_extent));
				if (p->n_extents)
					memcpy(n->extents, p->extents,
					       p->n_extents * sizeof(cairn_extent));
				n->n_extents = p->n_extents;
				memcpy(n->digest, p->digest, 32);
				n->flags |= CAIRN_NODE_F_DIGEST;
				unchanged++;
				continue;
			}
			fjob *j = cairn_xmalloc(sizeof(*j));
			j->dir = d;
			j->slot = i;
			j->had_parent = p && p->type == CAIRN_NODE_FILE;
			pthread_mutex_lock(&a->mu);
			d->outstanding++;
			pthread_mutex_unlock(&a->mu);
			if (cairn_queue_push(&a->files, j) < 0) {
				free(j);
				arch_child_done(a, d);
			}
		} else if (n->type == CAIRN_NODE_DIR) {
			dirs++;
			pdir *c = cairn_xcalloc(1, sizeof(*c));
			c->parent = d;
			c->slot = i;
			c->path = arch_join_path(d->path, n->name);
			c->fd = -1;
			wjob *w = cairn_xcalloc(1, sizeof(*w));
			w->dir = c;
			w->only = sub;
			w->skip = a->o->one_file_system && !sub && (dev_t)n->dev != a->root_dev;
			if (p && p->type == CAIRN_NODE_DIR) {
				memcpy(w->psub, p->subtree, 32);
				w->have_psub = 1;
			}
			/* in listing order, so the first subdirectory is taken first */
			if (last)
				last->next = w;
			else
				first = w;
			last = w;
		} else if (n->type != CAIRN_NODE_FILE) {
			others++;
		}
	}
	pthread_mutex_lock(&a->mu);
	a->sum.bytes_total += bytes;
	a->sum.files_unchanged += unchanged;
	a->sum.dirs += dirs;
	a->sum.others += others;
	d->outstanding += (int)dirs;
	pthread_mutex_unlock(&a->mu);
	atomic_fetch_add(&a->files_done, unchanged);
	if (first)
		arch_walk_push(a, first, last);
	arch_child_done(a, d);
}

/* Enter one directory of the stack: open it, load the parent's tree, walk it. */
static void walk_job(arch *a, cairn_codec *cx, wjob *w)
{
	pdir *c = w->dir;
	if (c->fd < 0 && c->parent && !w->skip && !atomic_load(&a->err)) {
		const char *name = c->parent->tree.nodes[c->slot].name;
		c->fd = openat(c->parent->fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (c->fd < 0) {
			char where[1024];
			arch_printable(where, sizeof(where), c->parent->path, name);
			arch_warnf(a, "%s: cannot open directory: %s", where, strerror(errno));
		}
	}
	if (c->fd < 0 || atomic_load(&a->err)) {
		c->outstanding = 1;
		arch_child_done(a, c); /* recorded as an empty directory */
		return;
	}
	cairn_tree ptsub = {0};
	const cairn_tree *pt = w->ptree;
	if (!pt && w->have_psub && repo_tree_load(a->r, cx, w->psub, &ptsub) == 0)
		pt = &ptsub;
	walk_dir(a, c, pt, w->only);
	cairn_tree_free(&ptsub);
}

void *arch_walker_main(void *arg)
{
	arch *a = arg;
	cairn_codec *cx = cairn_codec_new(0);
	pthread_mutex_lock(&a->wmu);
	for (;;) {
		while (!a->wstack && a->wbusy)
			pthread_cond_wait(&a->wcond, &a->wmu);
		wjob *w = a->wstack;
		if (!w)
			break; /* nothing queued and nobody walking: done */
		a->wstack = w->next;
		a->wbusy++;
		pthread_mutex_unlock(&a->wmu);
		walk_job(a, cx, w);
		free(w);
		pthread_mutex_lock(&a->wmu);
		if (!--a->wbusy && !a->wstack)
			pthread_cond_broadcast(&a->wcond);
	}
	pthread_mutex_unlock(&a->wmu);
	cairn_codec_free(cx);
	return NULL;
}
