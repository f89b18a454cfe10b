/*
 * node.c - file-system nodes and trees: what a node owns, sorted trees of
 * nodes, and the bridge to the file system: capturing an entry's metadata
 * (lstat, xattrs, symlink target, owner names) and recreating it on restore
 * (make the entry, then apply owner, xattrs, mode and times).
 *
 * Everything works relative to a directory fd and an entry name, never on
 * whole paths, so trees of any depth work and a rename of a parent directory
 * cannot redirect us. The xattr calls have no *at() form (before Linux 6.13),
 * so they go through "/proc/self/fd/<dirfd>/<name>" with the l*xattr calls,
 * which do not follow the final symlink.
 */
#include "engine/node_int.h"

#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define LINK_MAX_LEN 4095 /* PATH_MAX - 1: the longest symlink target Linux stores */
#define PROC_PATH_MAX (32 + CAIRN_NAME_MAX)
#define NAME_CACHE_SIZE 64
#define OWNER_NAME_MAX 255 /* longer user/group names are not recorded */

/* Names ---------------------------------------------------------------- */

int cairn_name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);
	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

int cairn_name_valid(const char *name, size_t len)
{
	if (!name || len == 0 || len > CAIRN_NAME_MAX)
		return 0;
	if (memchr(name, '/', len) || memchr(name, 0, len))
		return 0;
	if (name[0] == '.' && (len == 1 || (len == 2 && name[1] == '.')))
		return 0;
	return 1;
}

/*
 * Render @p name for an error message into @p buf: printable ASCII as is,
 * everything else as \xHH, cut short (with "...") if it does not fit.
 */
static const char *esc(char *buf, size_t size, const char *name)
{
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if (o + 8 >= size) {
			memcpy(buf + o, "...", 4);
			return buf;
		}
		if (*p >= 0x20 && *p < 0x7f && *p != '\\')
			buf[o++] = (char)*p;
		else
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", *p);
	}
	buf[o] = 0;
	return buf;
}

#define ESC_MAX (4 * CAIRN_NAME_MAX + 8)

/* Nodes and trees ------------------------------------------------------ */

void cairn_node_free(cairn_node *n)
{
	if (!n)
		return;
	free(n->name);
	free(n->user);
	free(n->group);
	free(n->link);
	for (size_t i = 0; i < n->n_xattrs; i++) {
		free(n->xattrs[i].name);
		free(n->xattrs[i].value);
	}
	free(n->xattrs);
	free(n->extents);
	memset(n, 0, sizeof(*n));
}

static char *dup_or_null(const char *s)
{
	return s ? cairn_xstrdup(s) : NULL;
}

void cairn_node_copy(cairn_node *dst, const cairn_node *src)
{
	*dst = *src;
	dst->name = dup_or_null(src->name);
	dst->user = dup_or_null(src->user);
	dst->group = dup_or_null(src->group);
	dst->link = dup_or_null(src->link);
	dst->xattrs = NULL;
	dst->extents = NULL;
	if (src->n_xattrs) {
		dst->xattrs = cairn_xcalloc(src->n_xattrs, sizeof(*dst->xattrs));
		for (size_t i = 0; i < src->n_xattrs; i++) {
			const cairn_xattr *x = &src->xattrs[i];
			dst->xattrs[i].name = dup_or_null(x->name);
			dst->xattrs[i].len = x->len;
			dst->xattrs[i].value = cairn_xmalloc(x->len);
			if (x->len)
				memcpy(dst->xattrs[i].value, x->value, x->len);
		}
	}
	if (src->n_extents) {
		dst->extents = cairn_xcalloc(src->n_extents, sizeof(*dst->extents));
		memcpy(dst->extents, src->extents, src->n_extents * sizeof(*dst->extents));
	}
}

void cairn_tree_add(cairn_tree *t, cairn_node *n)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 16;
		t->nodes = cairn_xrealloc(t->nodes, t->cap * sizeof(*t->nodes));
	}
	t->nodes[t->n++] = *n;
	memset(n, 0, sizeof(*n));
}

static int node_cmp(const void *a, const void *b)
{
	const char *x = ((const cairn_node *)a)->name, *y = ((const cairn_node *)b)->name;
	return cairn_name_cmp(x, strlen(x), y, strlen(y));
}

void cairn_tree_sort(cairn_tree *t)
{
	if (t->n > 1)
		qsort(t->nodes, t->n, sizeof(*t->nodes), node_cmp);
}

const cairn_node *cairn_tree_find(const cairn_tree *t, const char *name)
{
	size_t len = strlen(name), lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *m = t->nodes[mid].name;
		int c = cairn_name_cmp(name, len, m, strlen(m));
		if (c == 0)
			return &t->nodes[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

void cairn_tree_free(cairn_tree *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		cairn_node_free(&t->nodes[i]);
	free(t->nodes);
	memset(t, 0, sizeof(*t));
}

/* Owner and group names -------------------------------------------------- */

/*
 * A small cache of uid -> user name and gid -> group name lookups (misses
 * included, as name NULL), since NSS lookups can be slow (LDAP) and a tree
 * usually has few owners. Round-robin replacement; guarded by one mutex.
 */
struct name_ent {
	uint32_t id;
	int used;
	char *name;
};

static struct {
	pthread_mutex_t lock;
	struct name_ent ent[2][NAME_CACHE_SIZE]; /* [0] users, [1] groups */
	unsigned next[2];
} name_cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

/*
 * Look up the name of user (@p group 0) or group (@p group 1) @p id with the
 * reentrant NSS calls. Returns a malloc'd name, or NULL if there is none, it
 * is too long to record, or the lookup failed.
 */
static char *lookup_name(int group, uint32_t id)
{
	size_t size = 1024;
	char *buf = NULL, *name = NULL;
	for (;;) {
		buf = cairn_xrealloc(buf, size);
		const char *found = NULL;
		int rc;
		if (group) {
			struct group gr, *res = NULL;
			rc = getgrgid_r((gid_t)id, &gr, buf, size, &res);
			if (rc == 0 && res)
				found = res->gr_name;
		} else {
			struct passwd pw, *res = NULL;
			rc = getpwuid_r((uid_t)id, &pw, buf, size, &res);
			if (rc == 0 && res)
				found = res->pw_name;
		}
		if (rc == ERANGE && size < (1u << 20)) {
			size *= 2;
			continue;
		}
		if (found && *found && strlen(found) <= OWNER_NAME_MAX)
			name = cairn_xstrdup(found);
		break;
	}
	free(buf);
	return name;
}

/* The name of user/group @p id via the cache; a malloc'd copy or NULL. */
static char *owner_name(int group, uint32_t id)
{
	struct name_ent *tab = name_cache.ent[group];
	char *name = NULL;

	pthread_mutex_lock(&name_cache.lock);
	for (int i = 0; i < NAME_CACHE_SIZE; i++) {
		if (tab[i].used && tab[i].id == id) {
			name = dup_or_null(tab[i].name);
			pthread_mutex_unlock(&name_cache.lock);
			return name;
		}
	}
	pthread_mutex_unlock(&name_cache.lock);

	name = lookup_name(group, id);

	pthread_mutex_lock(&name_cache.lock);
	struct name_ent *e = &tab[name_cache.next[group]++ % NAME_CACHE_SIZE];
	free(e->name);
	e->id = id;
	e->used = 1;
	e->name = dup_or_null(name);
	pthread_mutex_unlock(&name_cache.lock);
	return name;
}

/* Capture --------------------------------------------------------------- */

/* The path through which the l*xattr calls reach entry @p name of @p dirfd. */
static int xattr_path(char *buf, int dirfd, const char *name)
{
	int n;
	if (dirfd == AT_FDCWD)
		n = snprintf(buf, PROC_PATH_MAX, "%s", name);
	else
		n = snprintf(buf, PROC_PATH_MAX, "/proc/self/fd/%d/%s", dirfd, name);
	return n < 0 || n >= PROC_PATH_MAX ? -ENAMETOOLONG : 0;
}

/* Error for a failed xattr call on @p name, with a hint when /proc is missing. */
static int xattr_error(int e, const char *what, const char *name)
{
	char en[ESC_MAX];
	const char *hint = "";
	if (e == ENOENT && access("/proc/self/fd", F_OK) < 0)
		hint = " (is /proc mounted?)";
	return cairn_error_set(-e, "%s %s: %s%s", what, esc(en, sizeof(en), name), strerror(e),
	                       hint);
}

static int xattr_cmp(const void *a, const void *b)
{
	return strcmp(((const cairn_xattr *)a)->name, ((const cairn_xattr *)b)->name);
}

/*
 * Read all extended attributes of @p path (not following a final symlink)
 * into out->xattrs, sorted by name. A file system without xattr support
 * yields none. Attributes removed while we read are skipped.
 */
static int capture_xattrs(cairn_node *out, const char *path, const char *name)
{
	char *list = NULL;
	ssize_t n;
	for (;;) {
		n = llistxattr(path, NULL, 0);
		if (n < 0 && (errno == ENOTSUP || errno == ENOSYS))
			return 0;
		if (n < 0)
			return xattr_error(errno, "listing xattrs of", name);
		if (n == 0)
			return 0;
		list = cairn_xrealloc(list, (size_t)n);
		ssize_t m = llistxattr(path, list, (size_t)n);
		if (m >= 0) {
			n = m;
			break;
		}
		if (errno != ERANGE) {
			int e = errno;
			free(list);
			return xattr_error(e, "listing xattrs of", name);
		}
	}

	size_t count = 0;
	for (ssize_t i = 0; i < n; i++)
		count += list[i] == 0;
	out->xattrs = cairn_xcalloc(count ? count : 1, sizeof(*out->xattrs));
	out->n_xattrs = 0;

	for (char *p = list; p < list + n; p += strlen(p) + 1) {
		if (!*p)
			continue;
		uint8_t *val = NULL;
		ssize_t len;
		for (;;) {
			len = lgetxattr(path, p, NULL, 0);
			if (len < 0)
				break;
			val = cairn_xrealloc(val, len ? (size_t)len : 1);
			ssize_t m = lgetxattr(path, p, val, (size_t)len);
			if (m >= 0) {
				len = m;
				break;
			}
			if (errno != ERANGE)
				break;
		}
		if (len < 0) {
			int e = errno;
			free(val);
			if (e == ENODATA)
				continue; /* removed meanwhile */
			free(list);
			return xattr_error(e, "reading xattr of", name);
		}
		cairn_xattr *x = &out->xattrs[out->n_xattrs++];
		x->name = cairn_xstrdup(p);
		x->value = val;
		x->len = (size_t)len;
	}
	free(list);
	qsort(out->xattrs, out->n_xattrs, sizeof(*out->xattrs), xattr_cmp);
	return 0;
}

/* Nanoseconds since the epoch of @p ts, clamped to the int64 range (years 1677..2262). */
static int64_t ts_ns(const struct timespec *ts)
{
	int64_t ns;
	if (__builtin_mul_overflow((int64_t)ts->tv_sec, (int64_t)1000000000, &ns) ||
	    __builtin_add_overflow(ns, (int64_t)ts->tv_nsec, &ns))
		return ts->tv_sec < 0 ? INT64_MIN : INT64_MAX;
	return ns;
}

/* Read the target of symlink @p name into out->link and out->size. */
static int capture_link(cairn_node *out, int dirfd, const char *name)
{
	char en[ESC_MAX];
	char *buf = cairn_xmalloc(LINK_MAX_LEN + 1);
	ssize_t n = readlinkat(dirfd, name, buf, LINK_MAX_LEN + 1);
	if (n < 0) {
		int e = errno;
		free(buf);
		if (e == EINVAL) /* no longer a symlink */
			return cairn_error_set(-EAGAIN, "readlink %s: changed while reading",
			                       esc(en, sizeof(en), name));
		return cairn_error_set(-e, "readlink %s: %s", esc(en, sizeof(en), name),
		                       strerror(e));
	}
	if (n == 0 || n > LINK_MAX_LEN || memchr(buf, 0, (size_t)n)) {
		free(buf);
		return cairn_error_set(n > LINK_MAX_LEN ? -ENAMETOOLONG : -EINVAL,
		                       "readlink %s: unsupported target (%zd bytes)",
		                       esc(en, sizeof(en), name), n);
	}
	buf[n] = 0;
	out->link = buf;
	out->size = (uint64_t)n;
	return 0;
}

int cairn_node_capture(cairn_node *out, int dirfd, const char *name, const struct stat *st)
{
	char en[ESC_MAX], path[PROC_PATH_MAX];
	struct stat sb;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!cairn_name_valid(name, strlen(name)))
		return cairn_error_set(-EINVAL, "capture: invalid entry name '%s'",
		                       esc(en, sizeof(en), name));
	if (!st) {
		if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
			int e = errno;
			return cairn_error_set(-e, "lstat %s: %s", esc(en, sizeof(en), name),
			                       strerror(e));
		}
		st = &sb;
	}
	switch (st->st_mode & S_IFMT) {
	case S_IFREG:
		out->type = CAIRN_NODE_FILE;
		out->size = (uint64_t)st->st_size;
		break;
	case S_IFDIR:
		out->type = CAIRN_NODE_DIR;
		break;
	case S_IFLNK:
		out->type = CAIRN_NODE_SYMLINK;
		break;
	case S_IFIFO:
		out->type = CAIRN_NODE_FIFO;
		break;
	case S_IFCHR:
		out->type = CAIRN_NODE_CHR;
		out->rdev = (uint64_t)st->st_rdev;
		break;
	case S_IFBLK:
		out->type = CAIRN_NODE_BLK;
		out->rdev = (uint64_t)st->st_rdev;
		break;
	case S_IFSOCK:
		out->type = CAIRN_NODE_SOCK;
		break;
	default:
		return cairn_error_set(-EOPNOTSUPP, "%s: unknown file type 0%o",
		                       esc(en, sizeof(en), name), (unsigned)(st->st_mode & S_IFMT));
	}
	out->mode = (uint32_t)(st->st_mode & 07777);
	out->uid = (uint32_t)st->st_uid;
	out->gid = (uint32_t)st->st_gid;
	out->mtime_ns = ts_ns(&st->st_mtim);
	out->ctime_ns = ts_ns(&st->st_ctim);
	out->atime_ns = ts_ns(&st->st_atim);
	out->dev = (uint64_t)st->st_dev;
	out->ino = (uint64_t)st->st_ino;
	out->nlink = st->st_nlink > UINT32_MAX ? UINT32_MAX : (uint32_t)st->st_nlink;
	out->name = cairn_xstrdup(name);

	if (out->type == CAIRN_NODE_SYMLINK && (rc = capture_link(out, dirfd, name)) < 0)
		goto fail;
	if ((rc = xattr_path(path, dirfd, name)) < 0) {
		cairn_error_set(rc, "%s: path too long", esc(en, sizeof(en), name));
		goto fail;
	}
	if ((rc = capture_xattrs(out, path, name)) < 0)
		goto fail;
	out->user = owner_name(0, out->uid);
	out->group = owner_name(1, out->gid);
	return 0;
fail:
	cairn_node_free(out);
	return rc;
}

/* Restore --------------------------------------------------------------- */

int cairn_node_make(int dirfd, const cairn_node *n)
{
	char en[ESC_MAX];
	struct stat st;
	int r;

	if (!n->name || !cairn_name_valid(n->name, strlen(n->name)))
		return cairn_error_set(-EINVAL, "make: invalid entry name");
	switch (n->type) {
	case CAIRN_NODE_DIR:
		r = mkdirat(dirfd, n->name, 0700);
		if (r < 0 && errno == EEXIST) {
			if (fstatat(dirfd, n->name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISDIR(st.st_mode))
				return 0;
			errno = EEXIST;
		}
		break;
	case CAIRN_NODE_SYMLINK:
		if (!n->link || !*n->link)
			return cairn_error_set(-EINVAL, "make %s: symlink without target",
			                       esc(en, sizeof(en), n->name));
		r = symlinkat(n->link, dirfd, n->name);
		break;
	case CAIRN_NODE_FIFO:
		r = mknodat(dirfd, n->name, S_IFIFO | 0600, 0);
		break;
	case CAIRN_NODE_CHR:
		r = mknodat(dirfd, n->name, S_IFCHR | 0600, (dev_t)n->rdev);
		break;
	case CAIRN_NODE_BLK:
		r = mknodat(dirfd, n->name, S_IFBLK | 0600, (dev_t)n->rdev);
		break;
	case CAIRN_NODE_SOCK:
		r = mknodat(dirfd, n->name, S_IFSOCK | 0600, 0);
		break;
	case CAIRN_NODE_FILE:
		return cairn_error_set(-EINVAL,
		                       "make %s: regular files are created by the restorer",
		                       esc(en, sizeof(en), n->name));
	default:
		return cairn_error_set(-EINVAL, "make %s: unknown node type %u",
		                       esc(en, sizeof(en), n->name), n->type);
	}
	if (r < 0) {
		int e = errno;
		return cairn_error_set(-e, "make %s: %s", esc(en, sizeof(en), n->name),
		                       strerror(e));
	}
	return 0;
}

/* Split @p ns nanoseconds since the epoch into a timespec (tv_nsec in 0..999999999). */
static struct timespec ns_ts(int64_t ns)
{
	struct timespec ts;
	int64_t sec = ns / 1000000000, rem = ns % 1000000000;
	if (rem < 0) {
		rem += 1000000000;
		sec -= 1;
	}
	ts.tv_sec = (time_t)sec;
	ts.tv_nsec = (long)rem;
	return ts;
}

int cairn_node_apply(int dirfd, const cairn_node *n, unsigned flags)
{
	char en[ESC_MAX], path[PROC_PATH_MAX];
	const char *name = n->name;
	int e;

	if (!name || !cairn_name_valid(name, strlen(name)))
		return cairn_error_set(-EINVAL, "apply: invalid entry name");
	if ((flags & CAIRN_APPLY_OWNER) && geteuid() == 0 &&
	    fchownat(dirfd, name, (uid_t)n->uid, (gid_t)n->gid, AT_SYMLINK_NOFOLLOW) < 0) {
		e = errno;
		return cairn_error_set(-e, "chown %s to %u:%u: %s", esc(en, sizeof(en), name),
		                       n->uid, n->gid, strerror(e));
	}
	if ((flags & CAIRN_APPLY_XATTRS) && n->n_xattrs) {
		if (xattr_path(path, dirfd, name) < 0)
			return cairn_error_set(-ENAMETOOLONG, "%s: path too long",
			                       esc(en, sizeof(en), name));
		for (size_t i = 0; i < n->n_xattrs; i++) {
			const cairn_xattr *x = &n->xattrs[i];
			if (lsetxattr(path, x->name, x->value, x->len, 0) < 0) {
				e = errno;
				char xn[ESC_MAX];
				return cairn_error_set(-e, "setting xattr %s of %s: %s",
				                       esc(xn, sizeof(xn), x->name),
				                       esc(en, sizeof(en), name), strerror(e));
			}
		}
	}
	if (n->type != CAIRN_NODE_SYMLINK &&
	    fchmodat(dirfd, name, (mode_t)(n->mode & 07777), 0) < 0) {
		e = errno;
		return cairn_error_set(-e, "chmod %s to %04o: %s", esc(en, sizeof(en), name),
		                       n->mode & 07777, strerror(e));
	}
	struct timespec ts[2] = {ns_ts(n->atime_ns), ns_ts(n->mtime_ns)};
	if (utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0) {
		e = errno;
		return cairn_error_set(-e, "setting times of %s: %s", esc(en, sizeof(en), name),
		                       strerror(e));
	}
	return 0;
}
