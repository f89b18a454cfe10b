/*
 * treecmp.c - compare two directory trees exhaustively (a test tool; no
 * cairn code, so it checks cairn independently).
 *
 *   treecmp [--atime] [--no-atime] [--ignore-ctime] A B
 *
 * Walks A and B in lockstep (both roots included) and reports, one line
 * each, "path: what differs (A=.., B=..)" for: entries present on one side
 * only; type; mode bits (07777); uid/gid; mtime in ns (every type, symlinks
 * and directories included); size (files, symlinks); symlink targets; rdev
 * (devices); file content byte for byte; xattrs of every namespace listed by
 * llistxattr (names and values); hard-link structure (two entries share an
 * inode in A exactly when they do in B); and the sparse layout of regular
 * files: the SEEK_DATA/SEEK_HOLE data map rounded out to the larger block
 * size of the two file systems (at least 4 KiB) must be equal. Holes are
 * skipped when comparing content, so a 3 GiB sparse file is quick.
 *
 * atime is compared only with --atime (and never for symlinks, whose
 * readlink updates it); ctime is never compared, since no restore can set
 * it. --no-atime and --ignore-ctime are accepted and are the default.
 * Files and directories are opened with O_NOATIME where permitted, so
 * running treecmp does not change the atimes it might compare next time.
 *
 * Exit status: 0 identical, 1 different, 2 usage or I/O error (the
 * comparison may then be incomplete).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define BUF_SIZE (4u << 20)
#define SHOW_VALUE_MAX 48 /* bytes of an xattr value shown in a report */
#define SHOW_EXTENTS_MAX 6

static int opt_atime;
static unsigned long n_diffs;
static int io_failed;
static uint8_t *buf_a, *buf_b;

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "treecmp: out of memory\n");
		exit(2);
	}
	return p;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		fprintf(stderr, "treecmp: out of memory\n");
		exit(2);
	}
	return p;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	return memcpy(xmalloc(n), s, n);
}

/* Output -------------------------------------------------------------------- */

/* Print @p len bytes to @p f with backslash, control and non-ASCII bytes as \xHH. */
static void put_escaped(FILE *f, const void *data, size_t len)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < len; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
			fputc(p[i], f);
		else
			fprintf(f, "\\x%02x", p[i]);
	}
}

/*
 * Report a difference at @p path: "path: <what> (A=<a>, B=<b>)", or without
 * the parenthesis when @p a is NULL. The path and @p what are printed
 * escaped; @p a and @p b too unless @p raw says they are escaped already.
 */
static void report(const char *path, const char *what, const char *a, const char *b, int raw)
{
	n_diffs++;
	put_escaped(stdout, path, strlen(path));
	fputs(": ", stdout);
	put_escaped(stdout, what, strlen(what));
	if (a) {
		fputs(" (A=", stdout);
		if (raw)
			fputs(a, stdout);
		else
			put_escaped(stdout, a, strlen(a));
		fputs(", B=", stdout);
		if (raw)
			fputs(b, stdout);
		else
			put_escaped(stdout, b, strlen(b));
		fputc(')', stdout);
	}
	fputc('\n', stdout);
}

static void diff(const char *path, const char *what, const char *a, const char *b)
{
	report(path, what, a, b, 0);
}

/* diff() of two numbers, shown in octal (@p base 'o'), decimal ('d') or hex ('x'). */
static void diff_num(const char *path, const char *what, char base, uintmax_t a, uintmax_t b)
{
	char sa[32], sb[32];
	if (base == 'o') {
		snprintf(sa, sizeof(sa), "%04jo", a);
		snprintf(sb, sizeof(sb), "%04jo", b);
	} else if (base == 'x') {
		snprintf(sa, sizeof(sa), "0x%02jx", a);
		snprintf(sb, sizeof(sb), "0x%02jx", b);
	} else {
		snprintf(sa, sizeof(sa), "%ju", a);
		snprintf(sb, sizeof(sb), "%ju", b);
	}
	diff(path, what, sa, sb);
}

/* Report an I/O error on side @p side ('A' or 'B') at @p path; the exit status becomes 2. */
static void io_error(const char *path, char side, const char *what, int e)
{
	io_failed = 1;
	fputs("treecmp: ", stderr);
	put_escaped(stderr, path, strlen(path));
	fprintf(stderr, ": %s in %c: %s\n", what, side, strerror(e));
}

/* Hard links ------------------------------------------------------------------ */

/* An open-addressing map from (dev, ino) to the first path seen with that inode. */
struct inode_ent {
	dev_t dev;
	ino_t ino;
	char *path; /* NULL: free slot */
};

struct inode_map {
	size_t n, cap;
	struct inode_ent *ent;
};

static struct inode_map links_a, links_b;

static size_t inode_hash(dev_t dev, ino_t ino)
{
	uint64_t h = (uint64_t)ino * 0x9E3779B97F4A7C15ull ^ (uint64_t)dev * 0xC2B2AE3D27D4EB4Full;
	return (size_t)(h ^ (h >> 29));
}

/* Return the first path recorded for (dev, ino), recording @p path if there is none. */
static const char *inode_first(struct inode_map *m, dev_t dev, ino_t ino, const char *path)
{
	if (2 * (m->n + 1) > m->cap) {
		struct inode_map g = {0, m->cap ? 2 * m->cap : 256, NULL};
		g.ent = calloc(g.cap, sizeof(*g.ent));
		if (!g.ent) {
			fprintf(stderr, "treecmp: out of memory\n");
			exit(2);
		}
		for (size_t i = 0; i < m->cap; i++) {
			if (!m->ent[i].path)
				continue;
			size_t j = inode_hash(m->ent[i].dev, m->ent[i].ino) & (g.cap - 1);
			while (g.ent[j].path)
				j = (j + 1) & (g.cap - 1);
			g.ent[j] = m->ent[i];
		}
		g.n = m->n;
		free(m->ent);
		*m = g;
	}
	size_t j = inode_hash(dev, ino) & (m->cap - 1);
	for (; m->ent[j].path; j = (j + 1) & (m->cap - 1))
		if (m->ent[j].dev == dev && m->ent[j].ino == ino)
			return m->ent[j].path;
	m->ent[j].dev = dev;
	m->ent[j].ino = ino;
	m->ent[j].path = xstrdup(path);
	m->n++;
	return m->ent[j].path;
}

/* Entries and their metadata ------------------------------------------------- */

/* One side of an entry: its parent directory fd and name there. */
struct side {
	int dirfd;
	const char *name;
	char label; /* 'A' or 'B' */
	struct stat st;
};

static const char *type_name(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG:
		return "file";
	case S_IFDIR:
		return "directory";
	case S_IFLNK:
		return "symlink";
	case S_IFIFO:
		return "fifo";
	case S_IFCHR:
		return "char device";
	case S_IFBLK:
		return "block device";
	case S_IFSOCK:
		return "socket";
	default:
		return "unknown";
	}
}

/* The path by which the l*xattr calls reach @p s (they have no *at form). */
static void xattr_path(char *out, size_t size, const struct side *s)
{
	if (s->dirfd == AT_FDCWD)
		snprintf(out, size, "%s", s->name);
	else
		snprintf(out, size, "/proc/self/fd/%d/%s", s->dirfd, s->name);
}

struct xattrs {
	size_t n;
	char **names;
	uint8_t **values;
	size_t *lens;
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Read all xattrs of @p s, sorted by name. Returns 0 or -1 (I/O error reported). */
static int read_xattrs(const struct side *s, const char *rel, struct xattrs *x)
{
	char path[8192];
	char *list = NULL;
	ssize_t n;
	memset(x, 0, sizeof(*x));
	xattr_path(path, sizeof(path), s);
	for (;;) {
		n = llistxattr(path, NULL, 0);
		if (n <= 0)
			break;
		list = xrealloc(list, (size_t)n);
		ssize_t m = llistxattr(path, list, (size_t)n);
		if (m >= 0 || errno != ERANGE) {
			n = m;
			break;
		}
	}
	if (n < 0) {
		free(list);
		if (errno == ENOTSUP)
			return 0;
		io_error(rel, s->label, "listing xattrs", errno);
		return -1;
	}
	for (ssize_t i = 0; i < n; i++)
		x->n += list[i] == 0;
	x->names = xmalloc(x->n * sizeof(char *));
	x->values = xmalloc(x->n * sizeof(uint8_t *));
	x->lens = xmalloc(x->n * sizeof(size_t));
	memset(x->values, 0, x->n * sizeof(uint8_t *));
	size_t k = 0;
	for (char *p = list; p < list + n; p += strlen(p) + 1)
		x->names[k++] = xstrdup(p);
	free(list);
	qsort(x->names, x->n, sizeof(char *), cmp_str);
	for (k = 0; k < x->n; k++) {
		ssize_t len = lgetxattr(path, x->names[k], NULL, 0);
		x->lens[k] = 0;
		if (len >= 0) {
			x->values[k] = xmalloc((size_t)len);
			len = lgetxattr(path, x->names[k], x->values[k], (size_t)len);
		}
		if (len < 0) {
			io_error(rel, s->label, "reading xattr", errno);
			return -1;
		}
		x->lens[k] = (size_t)len;
	}
	return 0;
}

static void free_xattrs(struct xattrs *x)
{
	for (size_t k = 0; k < x->n; k++) {
		free(x->names[k]);
		free(x->values[k]);
	}
	free(x->names);
	free(x->values);
	free(x->lens);
}

/* Render an xattr value for a report: escaped, cut after SHOW_VALUE_MAX bytes. */
static void show_value(char *out, size_t size, const uint8_t *v, size_t len)
{
	size_t o = 0;
	snprintf(out, size, "%zu bytes \"", len);
	o = strlen(out);
	for (size_t i = 0; i < len && i < SHOW_VALUE_MAX && o + 8 < size; i++) {
		if (v[i] >= 0x20 && v[i] < 0x7f && v[i] != '\\' && v[i] != '"')
			out[o++] = (char)v[i];
		else
			o += (size_t)snprintf(out + o, size - o, "\\x%02x", v[i]);
	}
	snprintf(out + o, size - o, "%s\"", len > SHOW_VALUE_MAX ? "..." : "");
}

static void compare_xattrs(const struct side *a, const struct side *b, const char *rel)
{
	struct xattrs xa, xb;
	char what[512], va[512], vb[512];
	int ra = read_xattrs(a, rel, &xa), rb = read_xattrs(b, rel, &xb);
	if (ra == 0 && rb == 0) {
		size_t i = 0, j = 0;
		while (i < xa.n || j < xb.n) {
			int c = i == xa.n ? 1 : j == xb.n ? -1 : strcmp(xa.names[i], xb.names[j]);
			if (c < 0) {
				snprintf(what, sizeof(what), "xattr %s only in A", xa.names[i++]);
				diff(rel, what, NULL, NULL);
			} else if (c > 0) {
				snprintf(what, sizeof(what), "xattr %s only in B", xb.names[j++]);
				diff(rel, what, NULL, NULL);
			} else {
				if (xa.lens[i] != xb.lens[j] ||
				    memcmp(xa.values[i], xb.values[j], xa.lens[i]) != 0) {
					snprintf(what, sizeof(what), "xattr %s value", xa.names[i]);
					show_value(va, sizeof(va), xa.values[i], xa.lens[i]);
					show_value(vb, sizeof(vb), xb.values[j], xb.lens[j]);
					report(rel, what, va, vb, 1);
				}
				i++;
				j++;
			}
		}
	}
	free_xattrs(&xa);
	free_xattrs(&xb);
}

/* Sparse files and content ----------------------------------------------------- */

struct ext {
	off_t start, end;
};

struct extents {
	size_t n, cap;
	struct ext *e;
};

static void ext_add(struct extents *x, off_t start, off_t end)
{
	if (x->n && start <= x->e[x->n - 1].end) { /* overlapping or adjacent: merge */
		if (end > x->e[x->n - 1].end)
			x->e[x->n - 1].end = end;
		return;
	}
	if (x->n == x->cap) {
		x->cap = x->cap ? 2 * x->cap : 16;
		x->e = xrealloc(x->e, x->cap * sizeof(*x->e));
	}
	x->e[x->n].start = start;
	x->e[x->n].end = end;
	x->n++;
}

/*
 * The data regions of @p fd (size @p size) by SEEK_DATA/SEEK_HOLE, each
 * rounded out to multiples of @p align (when @p align > 1), merged.
 * Without SEEK_DATA support the whole file is data. Returns 0 or -errno.
 */
static int data_map(int fd, off_t size, off_t align, struct extents *x)
{
	off_t off = 0;
	memset(x, 0, sizeof(*x));
	while (off < size) {
		off_t d = lseek(fd, off, SEEK_DATA);
		if (d < 0 && errno == ENXIO)
			break;
		if (d < 0 && errno != EINVAL)
			goto fail;
		off_t h = d < 0 ? size : lseek(fd, d, SEEK_HOLE);
		if (d < 0)
			d = off;
		if (h < 0)
			goto fail;
		if (h > size)
			h = size;
		if (h <= d) /* the file changed under us */
			break;
		off_t s = d / align * align, e = (h + align - 1) / align * align;
		ext_add(x, s, e);
		off = h;
	}
	return 0;
fail:;
	int e = errno;
	free(x->e);
	memset(x, 0, sizeof(*x));
	return -e;
}

/* Render up to SHOW_EXTENTS_MAX extents as "0-4096 1048576-1052672 ...". */
static void show_extents(char *out, size_t size, const struct extents *x)
{
	size_t o = 0;
	out[0] = 0;
	if (!x->n)
		snprintf(out, size, "no data");
	for (size_t i = 0; i < x->n && i < SHOW_EXTENTS_MAX; i++)
		o += (size_t)snprintf(out + o, size - o, "%s%jd-%jd", i ? " " : "",
		                      (intmax_t)x->e[i].start, (intmax_t)x->e[i].end);
	if (x->n > SHOW_EXTENTS_MAX)
		snprintf(out + o, size - o, " ... (%zu extents)", x->n);
}

/* Read exactly @p len bytes at @p off (short only at end of file). Returns bytes read or -1. */
static ssize_t pread_full(int fd, uint8_t *buf, size_t len, off_t off)
{
	size_t got = 0;
	while (got < len) {
		ssize_t r = pread(fd, buf + got, len - got, off + (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* Open a regular file or directory for reading without touching its atime. */
static int open_noatime(int dirfd, const char *name, int flags)
{
	int fd = openat(dirfd, name, flags | O_NOATIME | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == EPERM) /* O_NOATIME needs ownership or CAP_FOWNER */
		fd = openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC);
	return fd;
}

/*
 * Compare the bytes of files @p fa and @p fb over [0, @p len) where either
 * has data according to @p ma / @p mb (elsewhere both read as zeros).
 */
static void compare_bytes(int fa, int fb, off_t len, const struct extents *ma,
                          const struct extents *mb, const char *rel)
{
	size_t i = 0, j = 0;
	off_t pos = 0;
	while (pos < len && (i < ma->n || j < mb->n)) {
		/* the next data region of either side, from pos on */
		while (i < ma->n && ma->e[i].end <= pos)
			i++;
		while (j < mb->n && mb->e[j].end <= pos)
			j++;
		off_t s = len, e = len;
		if (i < ma->n && ma->e[i].start < s)
			s = ma->e[i].start, e = ma->e[i].end;
		if (j < mb->n && mb->e[j].start < s)
			s = mb->e[j].start, e = mb->e[j].end;
		if (s >= len)
			break;
		if (s < pos)
			s = pos;
		if (e > len)
			e = len;
		for (off_t o = s; o < e;) {
			size_t want = (size_t)(e - o < (off_t)BUF_SIZE ? e - o : (off_t)BUF_SIZE);
			ssize_t ra = pread_full(fa, buf_a, want, o);
			ssize_t rb = pread_full(fb, buf_b, want, o);
			if (ra < 0 || rb < 0) {
				io_error(rel, ra < 0 ? 'A' : 'B', "reading", errno);
				return;
			}
			size_t n = (size_t)(ra < rb ? ra : rb);
			if (memcmp(buf_a, buf_b, n) != 0 || ra != rb) {
				size_t k = 0;
				while (k < n && buf_a[k] == buf_b[k])
					k++;
				char what[64];
				snprintf(what, sizeof(what), "content differs at offset %jd",
				         (intmax_t)(o + (off_t)k));
				if (k < n)
					diff_num(rel, what, 'x', buf_a[k], buf_b[k]);
				else
					diff(rel, what, NULL, NULL);
				return;
			}
			if (n == 0)
				return;
			o += (off_t)n;
		}
		pos = e;
	}
}

static void compare_file(const struct side *a, const struct side *b, const char *rel)
{
	int fa = open_noatime(a->dirfd, a->name, O_RDONLY);
	if (fa < 0) {
		io_error(rel, 'A', "open", errno);
		return;
	}
	int fb = open_noatime(b->dirfd, b->name, O_RDONLY);
	if (fb < 0) {
		io_error(rel, 'B', "open", errno);
		close(fa);
		return;
	}
	off_t align = 4096;
	if (a->st.st_blksize > align)
		align = a->st.st_blksize;
	if (b->st.st_blksize > align)
		align = b->st.st_blksize;

	struct extents ma = {0}, mb = {0}, ra = {0}, rb = {0};
	int rc;
	if ((rc = data_map(fa, a->st.st_size, align, &ma)) < 0 ||
	    (rc = data_map(fa, a->st.st_size, 1, &ra)) < 0)
		io_error(rel, 'A', "SEEK_DATA", -rc);
	else if ((rc = data_map(fb, b->st.st_size, align, &mb)) < 0 ||
	         (rc = data_map(fb, b->st.st_size, 1, &rb)) < 0)
		io_error(rel, 'B', "SEEK_DATA", -rc);
	if (rc < 0)
		goto out;
	/* exact maps for reading; rounded ones for the layout comparison */
	int same = ma.n == mb.n;
	for (size_t i = 0; same && i < ma.n; i++)
		same = ma.e[i].start == mb.e[i].start && ma.e[i].end == mb.e[i].end;
	if (!same) {
		char sa[512], sb[512];
		show_extents(sa, sizeof(sa), &ma);
		show_extents(sb, sizeof(sb), &mb);
		diff(rel, "sparse layout (data regions)", sa, sb);
	}
	off_t len = a->st.st_size < b->st.st_size ? a->st.st_size : b->st.st_size;
	compare_bytes(fa, fb, len, &ra, &rb, rel);
out:
	free(ma.e);
	free(mb.e);
	free(ra.e);
	free(rb.e);
	close(fa);
	close(fb);
}

/* Directories and the walk ------------------------------------------------------ */

/* The names in directory @p fd (taken over), sorted; NULL on error. */
static char **list_dir(int fd, size_t *count)
{
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return NULL;
	}
	size_t n = 0, cap = 64;
	char **names = xmalloc(cap * sizeof(char *));
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap)
			names = xrealloc(names, (cap *= 2) * sizeof(char *));
		names[n++] = xstrdup(de->d_name);
		errno = 0;
	}
	int e = errno;
	closedir(d);
	if (e) {
		for (size_t i = 0; i < n; i++)
			free(names[i]);
		free(names);
		errno = e;
		return NULL;
	}
	qsort(names, n, sizeof(char *), cmp_str);
	*count = n;
	return names;
}

static char *join(const char *rel, const char *name)
{
	if (!strcmp(rel, "."))
		return xstrdup(name);
	size_t a = strlen(rel), b = strlen(name);
	char *p = xmalloc(a + b + 2);
	memcpy(p, rel, a);
	p[a] = '/';
	memcpy(p + a + 1, name, b + 1);
	return p;
}

static void compare_entry(struct side *a, struct side *b, const char *rel);

static void compare_dir(const struct side *a, const struct side *b, const char *rel)
{
	int da = open_noatime(a->dirfd, a->name, O_RDONLY | O_DIRECTORY);
	if (da < 0) {
		io_error(rel, 'A', "open", errno);
		return;
	}
	int db = open_noatime(b->dirfd, b->name, O_RDONLY | O_DIRECTORY);
	if (db < 0) {
		io_error(rel, 'B', "open", errno);
		close(da);
		return;
	}
	size_t na = 0, nb = 0;
	char **la = list_dir(dup(da), &na);
	if (!la)
		io_error(rel, 'A', "listing", errno);
	char **lb = list_dir(dup(db), &nb);
	if (!lb)
		io_error(rel, 'B', "listing", errno);
	if (la && lb) {
		size_t i = 0, j = 0;
		while (i < na || j < nb) {
			int c = i == na ? 1 : j == nb ? -1 : strcmp(la[i], lb[j]);
			if (c < 0) {
				char *p = join(rel, la[i++]);
				diff(p, "only in A", NULL, NULL);
				free(p);
			} else if (c > 0) {
				char *p = join(rel, lb[j++]);
				diff(p, "only in B", NULL, NULL);
				free(p);
			} else {
				char *p = join(rel, la[i]);
				struct side ca = {da, la[i], 'A', {0}}, cb = {db, lb[j], 'B', {0}};
				compare_entry(&ca, &cb, p);
				free(p);
				i++;
				j++;
			}
		}
	}
	for (size_t i = 0; la && i < na; i++)
		free(la[i]);
	for (size_t j = 0; lb && j < nb; j++)
		free(lb[j]);
	free(la);
	free(lb);
	close(da);
	close(db);
}

static void compare_link(const struct side *a, const struct side *b, const char *rel)
{
	char ta[8192], tb[8192];
	ssize_t la = readlinkat(a->dirfd, a->name, ta, sizeof(ta) - 1);
	ssize_t lb = readlinkat(b->dirfd, b->name, tb, sizeof(tb) - 1);
	if (la < 0 || lb < 0) {
		io_error(rel, la < 0 ? 'A' : 'B', "readlink", errno);
		return;
	}
	ta[la] = tb[lb] = 0;
	if (la != lb || memcmp(ta, tb, (size_t)la) != 0)
		diff(rel, "symlink target", ta, tb);
}

static void compare_times(const char *rel, const char *what, const struct timespec *ta,
                          const struct timespec *tb)
{
	if (ta->tv_sec == tb->tv_sec && ta->tv_nsec == tb->tv_nsec)
		return;
	char a[64], b[64];
	snprintf(a, sizeof(a), "%jd.%09ld", (intmax_t)ta->tv_sec, ta->tv_nsec);
	snprintf(b, sizeof(b), "%jd.%09ld", (intmax_t)tb->tv_sec, tb->tv_nsec);
	diff(rel, what, a, b);
}

/* Compare entry @p a with @p b (stat fields filled here), then recurse or compare content. */
static void compare_entry(struct side *a, struct side *b, const char *rel)
{
	if (fstatat(a->dirfd, a->name, &a->st, AT_SYMLINK_NOFOLLOW) < 0) {
		io_error(rel, 'A', "lstat", errno);
		return;
	}
	if (fstatat(b->dirfd, b->name, &b->st, AT_SYMLINK_NOFOLLOW) < 0) {
		io_error(rel, 'B', "lstat", errno);
		return;
	}
	const struct stat *sa = &a->st, *sb = &b->st;
	mode_t type = sa->st_mode & S_IFMT;
	if (type != (sb->st_mode & S_IFMT)) {
		diff(rel, "type", type_name(sa->st_mode), type_name(sb->st_mode));
		return;
	}
	if ((sa->st_mode & 07777) != (sb->st_mode & 07777))
		diff_num(rel, "mode", 'o', sa->st_mode & 07777, sb->st_mode & 07777);
	if (sa->st_uid != sb->st_uid)
		diff_num(rel, "uid", 'd', sa->st_uid, sb->st_uid);
	if (sa->st_gid != sb->st_gid)
		diff_num(rel, "gid", 'd', sa->st_gid, sb->st_gid);
	compare_times(rel, "mtime", &sa->st_mtim, &sb->st_mtim);
	if (opt_atime && type != S_IFLNK)
		compare_times(rel, "atime", &sa->st_atim, &sb->st_atim);
	if ((type == S_IFREG || type == S_IFLNK) && sa->st_size != sb->st_size)
		diff_num(rel, "size", 'd', (uintmax_t)sa->st_size, (uintmax_t)sb->st_size);
	if ((type == S_IFCHR || type == S_IFBLK) && sa->st_rdev != sb->st_rdev) {
		char da[32], db[32];
		snprintf(da, sizeof(da), "%u:%u", major(sa->st_rdev), minor(sa->st_rdev));
		snprintf(db, sizeof(db), "%u:%u", major(sb->st_rdev), minor(sb->st_rdev));
		diff(rel, "device number", da, db);
	}
	compare_xattrs(a, b, rel);

	if (type != S_IFDIR) {
		const char *fa =
		    sa->st_nlink > 1 ? inode_first(&links_a, sa->st_dev, sa->st_ino, rel) : rel;
		const char *fb =
		    sb->st_nlink > 1 ? inode_first(&links_b, sb->st_dev, sb->st_ino, rel) : rel;
		if (strcmp(fa, fb) != 0) {
			char da[8192], db[8192];
			snprintf(da, sizeof(da), "%s%s", strcmp(fa, rel) ? "same inode as " : "",
			         strcmp(fa, rel) ? fa : "not linked to an earlier entry");
			snprintf(db, sizeof(db), "%s%s", strcmp(fb, rel) ? "same inode as " : "",
			         strcmp(fb, rel) ? fb : "not linked to an earlier entry");
			diff(rel, "hard links", da, db);
		}
	}
	if (type == S_IFREG)
		compare_file(a, b, rel);
	else if (type == S_IFLNK)
		compare_link(a, b, rel);
	else if (type == S_IFDIR)
		compare_dir(a, b, rel);
}

static void usage(void)
{
	fprintf(stderr, "usage: treecmp [--atime] [--no-atime] [--ignore-ctime] A B\n"
	                "Compare directory trees A and B; exit 0 if identical, 1 if different,\n"
	                "2 on a usage or I/O error.\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *roots[2];
	int n = 0, options = 1;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (options && arg[0] == '-' && arg[1]) {
			if (!strcmp(arg, "--atime"))
				opt_atime = 1;
			else if (!strcmp(arg, "--no-atime"))
				opt_atime = 0;
			else if (!strcmp(arg, "--ignore-ctime"))
				; /* ctime is never compared */
			else if (!strcmp(arg, "--"))
				options = 0;
			else
				usage();
		} else if (n < 2) {
			roots[n++] = arg;
		} else {
			usage();
		}
	}
	if (n != 2)
		usage();

	buf_a = xmalloc(BUF_SIZE);
	buf_b = xmalloc(BUF_SIZE);
	struct side a = {AT_FDCWD, roots[0], 'A', {0}}, b = {AT_FDCWD, roots[1], 'B', {0}};
	compare_entry(&a, &b, ".");
	fflush(stdout);
	if (io_failed)
		return 2;
	return n_diffs ? 1 : 0;
}
