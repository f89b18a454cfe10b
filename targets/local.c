/*
 * local.c - a target over a local directory: object "a/b/c" is the file
 * <root>/a/b/c.
 *
 * put() writes a temp file ".<basename>.tmp.<16 hex>" next to the final name,
 * fsyncs it, renames it into place and fsyncs the directory, so an object is
 * either wholly visible or absent, and durable once put() returns. Parent
 * directories are created on demand (mkdir -p, safe against concurrent
 * creators), each new one made durable by an fsync of its parent. Names whose
 * last segment starts with '.' and contains ".tmp." are reserved for those
 * temp files: put() refuses them and list() skips them.
 *
 * Objects are created 0600 and directories 0700 (before umask): a repository
 * is readable by its owner only.
 *
 * The target holds no mutable state but the wrapper's counters, so every op
 * may run from many threads at once. All descriptors are O_CLOEXEC.
 */
#include "targets/target.h"
#include "common/fdcache.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* Longest accepted root: leaves room for a 1024-byte name and a temp suffix. */
#define ROOT_MAX (PATH_MAX - 1100)
/* Bytes of the basename kept in a temp file name (keeps it under NAME_MAX). */
#define TMP_BASE_MAX 200
/* Largest single read()/write(): Linux transfers at most ~2 GiB per call. */
#define IO_MAX ((size_t)1 << 30)

struct local_target {
	cairn_target base; /* first: a cairn_target * is a struct local_target * */
	char *root;        /* directory holding the objects, no trailing '/' (but "/") */
	cairn_fdcache *packs; /* open packs: a restore reads one chunk at a time */
};

/*
 * Packs (data/...) are written once under a name of their own, and a
 * restore or check reads them a blob at a time: their descriptors stay open
 * in a small table (an open, fstat and close per blob were ~10 % of a
 * restore). Replacing or deleting one through this target drops it.
 */
static int cacheable(const char *name)
{
	return !strncmp(name, "data/", 5);
}

static struct local_target *lt_of(cairn_target *t)
{
	return (struct local_target *)t;
}

/* Text for an errno in messages; the refusals a user must act on get plain words. */
static const char *describe(int err)
{
	switch (err) {
	case ENOSPC:
		return "no space left on device";
	case EDQUOT:
		return "disk quota exceeded";
	case EACCES:
		return "permission denied";
	case EPERM:
		return "operation not permitted";
	case EROFS:
		return "read-only file system";
	case EIO:
		return "input/output error";
	case ENOENT:
		return "no such object";
	default:
		return strerror(err);
	}
}

/*
 * Record failure @p err (positive errno) of @p verb ("writing", "reading" ...)
 * on object @p name, with an optional @p step detail. Returns -err.
 */
static int fail(cairn_target *t, int err, const char *verb, const char *name, const char *step)
{
	if (err <= 0)
		err = EIO;
	return cairn_error_set(-err, "%s: %s %s: %s%s%s", t->name, verb, name, step ? step : "",
			       step ? ": " : "", describe(err));
}

/* Join root and @p name into @p buf (PATH_MAX bytes). Returns 0 or -ENAMETOOLONG. */
static int obj_path(struct local_target *lt, const char *name, char *buf)
{
	const char *sep = strcmp(lt->root, "/") ? "/" : "";
	int n = snprintf(buf, PATH_MAX, "%s%s%s", lt->root, sep, name);
	return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

/* True if @p base (a final path segment) is a temp file name of put(). */
static int is_tmp_name(const char *base)
{
	return base[0] == '.' && strstr(base, ".tmp.") != NULL;
}

/* Open directory @p path and fsync it. EINVAL (no directory fsync there) is fine. */
static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = 0;
	if (fsync(fd) < 0 && errno != EINVAL)
		rc = -errno;
	close(fd);
	return rc;
}

/*
 * mkdir -p @p dir (a mutable path buffer, restored on return). Whenever a
 * directory is made (or found made by a concurrent creator), its parent is
 * fsynced so the new entry is durable. Returns 0 or -errno.
 */
static int mkdir_p(char *dir)
{
	int tries = 0;
	while (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		if (errno != ENOENT || ++tries > 3)
			return -errno;
		char *slash = strrchr(dir, '/');
		if (!slash || slash == dir)
			return -ENOENT; /* nothing above to create */
		*slash = 0;
		int rc = mkdir_p(dir);
		*slash = '/';
		if (rc < 0)
			return rc;
	}
	char *slash = strrchr(dir, '/');
	if (!slash)
		return fsync_dir(".");
	if (slash == dir)
		return fsync_dir("/");
	*slash = 0;
	int rc = fsync_dir(dir);
	*slash = '/';
	return rc;
}

/* Write all of @p data to @p fd, across short writes and EINTR. Returns 0 or -errno. */
static int write_all(int fd, const uint8_t *data, size_t len)
{
	while (len) {
		ssize_t n = write(fd, data, len < IO_MAX ? len : IO_MAX);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* 64 random bits for temp names; getrandom(), else a mix of clock, pid and a counter. */
static uint64_t tmp_random(void)
{
	static uint64_t counter;
	uint64_t v;
	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == (ssize_t)sizeof(v))
		return v;
	v = cairn_now_ns() ^ ((uint64_t)getpid() << 32) ^
	    __atomic_add_fetch(&counter, 0x9E3779B97F4A7C15ull, __ATOMIC_RELAXED);
	return v * 0xBF58476D1CE4E5B9ull;
}

/*
 * Store @p data as object @p name: temp file, write, fsync, rename, fsync of
 * the directory. An existing object is replaced atomically. The temp file is
 * removed on every failure. Returns 0 or a negative code with a message.
 */
static int local_put(cairn_target *t, const char *name, const void *data, size_t len)
{
	struct local_target *lt = lt_of(t);
	char path[PATH_MAX], tmp[PATH_MAX];
	if (obj_path(lt, name, path) < 0)
		return fail(t, ENAMETOOLONG, "writing", name, NULL);
	char *slash = strrchr(path, '/'); /* root is non-empty: there is one */
	const char *base = slash + 1;
	if (is_tmp_name(base))
		return cairn_error_set(-EINVAL,
				       "%s: writing %s: names like '.x.tmp.y' are reserved for "
				       "temporary files",
				       t->name, name);
	int n = snprintf(tmp, sizeof(tmp), "%.*s/.%.*s.tmp.%016llx", (int)(slash - path), path,
			 TMP_BASE_MAX, base, (unsigned long long)tmp_random());
	if (n < 0 || n >= (int)sizeof(tmp))
		return fail(t, ENAMETOOLONG, "writing", name, NULL);

	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 && errno == ENOENT) {
		*slash = 0;
		int rc = mkdir_p(path);
		if (rc < 0) {
			cairn_error_set(rc, "%s: writing %s: creating directory %s: %s", t->name,
					name, path, describe(-rc));
			*slash = '/';
			return rc;
		}
		*slash = '/';
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	}
	if (fd < 0)
		return fail(t, errno, "writing", name, "creating temp file");

	const char *step = NULL; /* what failed, beyond "writing <name>" */
	int rc = write_all(fd, data, len);
	if (rc == 0) {
		step = "syncing";
		rc = fsync(fd) < 0 ? -errno : 0;
	}
	if (close(fd) < 0 && rc == 0) {
		step = "closing";
		rc = -errno;
	}
	if (rc == 0) {
		step = "renaming into place";
		rc = rename(tmp, path) < 0 ? -errno : 0;
		if (rc == 0 && cacheable(name))
			cairn_fdcache_drop(lt->packs, name); /* a descriptor would see the old file */
	}
	if (rc < 0) {
		unlink(tmp);
		return fail(t, -rc, "writing", name, step);
	}
	*slash = 0;
	rc = fsync_dir(slash == path ? "/" : path);
	*slash = '/';
	if (rc < 0)
		return fail(t, -rc, "writing", name, "syncing directory");
	return 0;
}

/*
 * An unnamed file (O_TMPFILE) in the root, for an object written piece by
 * piece: nothing of it survives a crash, and link_tmpfile gives it its name
 * without copying. -EOPNOTSUPP where the file system has no O_TMPFILE.
 */
static int local_tmpfile(cairn_target *t)
{
	struct local_target *lt = lt_of(t);
	int fd = open(lt->root, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)
		return -EOPNOTSUPP;
	return fail(t, errno, "creating", "a temporary file", NULL);
}

/* fsync @p fd, link it into place as @p name, fsync the directory. */
static int local_link_tmpfile(cairn_target *t, const char *name, int fd, uint64_t len)
{
	struct local_target *lt = lt_of(t);
	char path[PATH_MAX], proc[64];
	(void)len;
	if (obj_path(lt, name, path) < 0)
		return fail(t, ENAMETOOLONG, "writing", name, NULL);
	char *slash = strrchr(path, '/');
	if (is_tmp_name(slash + 1))
		return cairn_error_set(-EINVAL, "%s: writing %s: names like '.x.tmp.y' are reserved "
						"for temporary files", t->name, name);
	if (fsync(fd) < 0)
		return fail(t, errno, "writing", name, "syncing");
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	int rc = linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) < 0 ? -errno : 0;
	if (rc == -ENOENT) {
		*slash = 0;
		rc = mkdir_p(path);
		*slash = '/';
		if (rc == 0)
			rc = linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) < 0 ? -errno : 0;
	}
	if (rc == -EEXIST) /* objects are immutable: one of this name is already stored */
		return 0;
	if (rc < 0)
		return fail(t, -rc, "writing", name, "linking into place");
	*slash = 0;
	rc = fsync_dir(slash == path ? "/" : path);
	*slash = '/';
	if (rc < 0)
		return fail(t, -rc, "writing", name, "syncing directory");
	return 0;
}

/* Open object @p name for reading; a directory is not an object (-ENOENT). */
static int open_obj(cairn_target *t, const char *name, const char *verb, uint64_t *size)
{
	char path[PATH_MAX];
	if (obj_path(lt_of(t), name, path) < 0)
		return fail(t, ENAMETOOLONG, verb, name, NULL);
	int fd = cairn_open_regular(path, size);
	return fd < 0 ? fail(t, -fd, verb, name, NULL) : fd;
}

/* Read the whole object into @p out (empty on entry). */
static int local_get(cairn_target *t, const char *name, cairn_buf *out)
{
	uint64_t size;
	int fd = open_obj(t, name, "reading", &size);
	if (fd < 0)
		return fd;
	/* One byte more than the size, so EOF is seen without growing the buffer. */
	cairn_buf_reserve(out, (size_t)size + 1);
	for (;;) {
		if (out->len == out->cap)
			cairn_buf_reserve(out, 65536); /* the file grew: not ours, but cope */
		size_t want = out->cap - out->len;
		ssize_t n = read(fd, out->data + out->len, want < IO_MAX ? want : IO_MAX);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int err = errno;
			close(fd);
			return fail(t, err, "reading", name, NULL);
		}
		if (n == 0)
			break;
		out->len += (size_t)n;
	}
	close(fd);
	return 0;
}

/* Read exactly @p len bytes at @p off; -ERANGE if the object ends before. */
static int local_get_range(cairn_target *t, const char *name, uint64_t off, size_t len, void *out)
{
	if (off > (uint64_t)INT64_MAX - len)
		return cairn_error_set(-ERANGE, "%s: reading %s: range %llu+%zu is out of range",
				       t->name, name, (unsigned long long)off, len);
	uint64_t size;
	long long got;
	if (cacheable(name)) {
		char path[PATH_MAX];
		if (obj_path(lt_of(t), name, path) < 0)
			return fail(t, ENAMETOOLONG, "reading", name, NULL);
		got = cairn_fdcache_pread(lt_of(t)->packs, name, path, out, len, off, &size);
	} else {
		int fd = open_obj(t, name, "reading", &size);
		if (fd < 0)
			return fd;
		got = cairn_pread_all(fd, out, len, off);
		close(fd);
	}
	if (got < 0)
		return fail(t, (int)-got, "reading", name, NULL);
	if ((size_t)got < len || off > size)
		return cairn_error_set(-ERANGE,
				       "%s: reading %s: range %llu+%zu is past the end of the "
				       "%llu-byte object",
				       t->name, name, (unsigned long long)off, len,
				       (unsigned long long)size);
	return 0;
}

static int local_stat(cairn_target *t, const char *name, uint64_t *size)
{
	char path[PATH_MAX];
	struct stat st;
	if (obj_path(lt_of(t), name, path) < 0)
		return fail(t, ENAMETOOLONG, "stat of", name, NULL);
	if (stat(path, &st) < 0)
		return fail(t, errno == ENOTDIR ? ENOENT : errno, "stat of", name, NULL);
	if (!S_ISREG(st.st_mode))
		return cairn_error_set(-ENOENT,
				       "%s: stat of %s: no such object (not a regular file)",
				       t->name, name);
	*size = (uint64_t)st.st_size;
	return 0;
}

/* One directory entry gathered by list_dir(). */
struct lent {
	char *name;    /* entry name; directories end in '/' so they sort as their contents */
	uint64_t size; /* files only */
};

static int lent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct lent *)a)->name, ((const struct lent *)b)->name);
}

/* True if @p s is a valid name segment ([A-Za-z0-9._-]+, not "." or ".."). */
static int segment_ok(const char *s)
{
	if (!strcmp(s, ".") || !strcmp(s, ".."))
		return 0;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
			return 0;
	return *s != 0;
}

/*
 * Report every object under directory @p path, whose name relative to the
 * root is @p rel (mutable, PATH_MAX bytes, "" or ending in '/'), in bytewise
 * name order. Entries are gathered and the directory closed before
 * descending, so the depth holds no descriptors. Entries that vanish
 * meanwhile are skipped, as are temp files, non-regular files and names that
 * are not valid object names. Returns 0, the callback's negative code, or a
 * negative code with a message.
 */
static int list_dir(cairn_target *t, char *path, char *rel, cairn_target_list_cb cb, void *payload)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0; /* no such prefix, or removed meanwhile: nothing to list */
		return fail(t, errno, "listing", *rel ? rel : "''", NULL);
	}
	DIR *d = fdopendir(fd);
	if (!d) {
		int err = errno;
		close(fd);
		return fail(t, err, "listing", *rel ? rel : "''", NULL);
	}
	struct lent *ents = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	size_t plen = strlen(path), rlen = strlen(rel);
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			if (errno)
				rc = fail(t, errno, "listing", *rel ? rel : "''", NULL);
			break;
		}
		if (!segment_ok(de->d_name))
			continue;
		size_t nlen = strlen(de->d_name);
		if (rlen + nlen > 1024 || plen + nlen + 2 >= PATH_MAX)
			continue; /* cannot be an object name (or a prefix of one) */
		struct stat st;
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;
			rc = fail(t, errno, "listing", *rel ? rel : "''", de->d_name);
			break;
		}
		if (!S_ISDIR(st.st_mode) && (!S_ISREG(st.st_mode) || is_tmp_name(de->d_name)))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			ents = cairn_xrealloc(ents, cap * sizeof(*ents));
		}
		int isdir = S_ISDIR(st.st_mode);
		ents[n].name = cairn_xmalloc(nlen + 2);
		memcpy(ents[n].name, de->d_name, nlen);
		memcpy(ents[n].name + nlen, isdir ? "/" : "", isdir ? 2 : 1);
		ents[n].size = (uint64_t)st.st_size;
		n++;
	}
	closedir(d);
	if (rc == 0 && n > 1)
		qsort(ents, n, sizeof(*ents), lent_cmp);
	for (size_t i = 0; i < n && rc == 0; i++) {
		size_t nlen = strlen(ents[i].name);
		memcpy(rel + rlen, ents[i].name, nlen + 1);
		if (ents[i].name[nlen - 1] == '/') {
			path[plen] = '/';
			memcpy(path + plen + 1, ents[i].name, nlen - 1);
			path[plen + nlen] = 0;
			rc = list_dir(t, path, rel, cb, payload);
		} else {
			rc = cb(payload, rel, ents[i].size);
		}
		path[plen] = 0;
		rel[rlen] = 0;
	}
	for (size_t i = 0; i < n; i++)
		free(ents[i].name);
	free(ents);
	return rc;
}

static int local_list(cairn_target *t, const char *prefix, cairn_target_list_cb cb, void *payload)
{
	struct local_target *lt = lt_of(t);
	char path[PATH_MAX], rel[PATH_MAX];
	size_t plen = strlen(prefix);
	if (plen) {
		/* obj_path() of the prefix without its '/' */
		memcpy(rel, prefix, plen - 1);
		rel[plen - 1] = 0;
		if (obj_path(lt, rel, path) < 0)
			return fail(t, ENAMETOOLONG, "listing", prefix, NULL);
	} else if (snprintf(path, sizeof(path), "%s", lt->root) >= (int)sizeof(path)) {
		return fail(t, ENAMETOOLONG, "listing", "''", NULL);
	}
	memcpy(rel, prefix, plen + 1);
	return list_dir(t, path, rel, cb, payload);
}

/* Remove object @p name (-ENOENT if missing) and make the removal durable. */
static int local_del(cairn_target *t, const char *name)
{
	char path[PATH_MAX];
	if (obj_path(lt_of(t), name, path) < 0)
		return fail(t, ENAMETOOLONG, "deleting", name, NULL);
	if (unlink(path) < 0) {
		int err = errno;
		if (err == ENOTDIR || err == EISDIR)
			err = ENOENT; /* a path through a file, or a directory: not an object */
		return fail(t, err, "deleting", name, NULL);
	}
	if (cacheable(name))
		cairn_fdcache_drop(lt_of(t)->packs, name);
	char *slash = strrchr(path, '/');
	*slash = 0;
	int rc = fsync_dir(slash == path ? "/" : path);
	if (rc < 0)
		return fail(t, -rc, "deleting", name, "syncing directory");
	return 0;
}

static void local_close(cairn_target *t)
{
	struct local_target *lt = lt_of(t);
	cairn_fdcache_free(lt->packs);
	free(lt->root);
	free(t->name);
	free(t->site);
	free(lt);
}

/*
 * Open a local target at @p root (absolute or relative; trailing '/' are
 * dropped). Creates nothing: a missing root is made by the first put. A root
 * that exists but is not a directory is refused with -ENOTDIR.
 */
int cairn_target_local_open(cairn_target **out, const char *root)
{
	if (!out || !root || !*root)
		return cairn_error_set(-EINVAL, "local target: empty root path");
	*out = NULL;
	size_t n = strlen(root);
	while (n > 1 && root[n - 1] == '/')
		n--;
	if (n > ROOT_MAX)
		return cairn_error_set(-ENAMETOOLONG, "local:%.100s...: root path too long", root);
	struct stat st;
	if (stat(root, &st) == 0 && !S_ISDIR(st.st_mode))
		return cairn_error_set(-ENOTDIR, "local:%s: not a directory", root);

	struct local_target *lt = cairn_xcalloc(1, sizeof(*lt));
	lt->root = cairn_xmalloc(n + 1);
	memcpy(lt->root, root, n);
	lt->root[n] = 0;
	lt->packs = cairn_fdcache_new();
	lt->base.name = cairn_xmalloc(n + sizeof("local:"));
	memcpy(lt->base.name, "local:", 6);
	memcpy(lt->base.name + 6, lt->root, n + 1);
	lt->base.version = CAIRN_TARGET_VERSION;
	lt->base.kind = "local";
	lt->base.put = local_put;
	lt->base.tmpfile = local_tmpfile;
	lt->base.link_tmpfile = local_link_tmpfile;
	lt->base.get = local_get;
	lt->base.get_range = local_get_range;
	lt->base.stat = local_stat;
	lt->base.list = local_list;
	lt->base.del = local_del;
	lt->base.close = local_close;
	*out = &lt->base;
	return 0;
}
