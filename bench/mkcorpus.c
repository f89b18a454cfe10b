/*
 * mkcorpus.c - deterministic corpus helpers for bench/compare.sh.
 *
 * Not part of the CMake build: compare.sh compiles it with `cc -O2` into the
 * benchmark work directory. Every random choice comes from a seeded
 * xorshift generator, so the same input tree and seed give the same output.
 *
 *   mkcorpus select BUDGET
 *       stdin: NUL-separated paths (sorted by the caller). Writes to stdout
 *       (NUL-separated) the paths taken in list order: each regular file
 *       that still fits in BUDGET bytes (others are passed over) and every
 *       symlink on the way; stops once less than 64 KiB of the budget is
 *       left. Prints the bytes taken to stderr as one number.
 *
 *   mkcorpus image OUT SIZE
 *       stdin: NUL-separated paths. Orders them by a 64-bit FNV-1a hash of
 *       the path (a fixed shuffle, so the image mixes text, binaries and
 *       compressed files like a used disk), then concatenates the regular
 *       files' bytes, each padded with zeros to a 4 KiB boundary like file
 *       system blocks, until exactly SIZE bytes (the list repeats if short).
 *
 *   mkcorpus mutate IN OUT SEED [PERMILLE INSERTS INSERT_LEN]
 *       OUT = IN with PERMILLE/1000 (default 10 = 1%) of its 4 KiB blocks
 *       (aligned, distinct, chosen by SEED) overwritten with random bytes,
 *       plus INSERTS (default 5) insertions of INSERT_LEN (default 100)
 *       random bytes at random offsets, which shift everything after them.
 *
 *   mkcorpus edit DIR SEED GEN
 *       Edits the tree DIR in place, like a user between two backups. Of the
 *       regular files (sorted by path): 1% deleted, 2% modified in place (a
 *       run of 64..4096 random bytes overwritten), 2% get a text line
 *       inserted at a random offset (rewritten through a temporary file and
 *       rename, as editors do), 1% get 1..20 text lines appended. Then 1% new
 *       files are added to existing directories: half fresh text of
 *       1..64 KiB, half copies of an existing file behind a 64-byte header.
 *       GEN (2, 3, ...) makes each generation's choices differ.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLK 4096u

static void die(const char *what, const char *arg)
{
	fprintf(stderr, "mkcorpus: %s%s%s: %s\n", what, arg ? " " : "", arg ? arg : "",
		errno ? strerror(errno) : "error");
	exit(1);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		die("out of memory", NULL);
	return p;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		die("out of memory", NULL);
	return p;
}

/* ---- random numbers (xorshift64*, seeded through splitmix64) ---- */

static uint64_t rng_state;

static void rng_seed(uint64_t s)
{
	uint64_t z = s + 0x9E3779B97F4A7C15ull;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	rng_state = (z ^ (z >> 31)) | 1;
}

static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [0, n), n > 0 (bias is negligible for our ranges). */
static uint64_t rng_below(uint64_t n)
{
	return rng() % n;
}

static void rng_fill(uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = rng();
		memcpy(b + i, &v, n - i < 8 ? n - i : 8);
	}
}

static const char *const words[] = {
	"backup", "restore", "snapshot", "chunk", "index", "pack", "the", "a", "of", "and",
	"file", "tree", "repository", "data", "version", "change", "line", "value", "config",
	"error", "return", "static", "int", "void", "if", "else", "for", "while", "struct",
	"option", "default", "user", "system", "path", "name", "size", "time", "key", "hash",
	"buffer", "update", "notes", "todo", "fixed", "added", "removed", "build", "test",
};

/* Appends n bytes of word-salad text lines (each ends with '\n' unless cut). */
static void gen_text(char *out, size_t n)
{
	size_t i = 0, col = 0;
	while (i < n) {
		const char *w = words[rng_below(sizeof(words) / sizeof(words[0]))];
		size_t wl = strlen(w);
		for (size_t k = 0; k < wl && i < n; k++)
			out[i++] = w[k];
		col += wl + 1;
		if (i < n)
			out[i++] = col > 60 ? '\n' : ' ';
		if (col > 60)
			col = 0;
	}
	if (n)
		out[n - 1] = '\n';
}

/* ---- I/O helpers ---- */

static void write_all(int fd, const void *buf, size_t n, const char *name)
{
	const uint8_t *p = buf;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			die("write", name);
		}
		p += w;
		n -= (size_t)w;
	}
}

static size_t read_full(int fd, void *buf, size_t n)
{
	uint8_t *p = buf;
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, p + got, n - got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return got;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return got;
}

/* Reads a NUL-separated list from stdin. */
static char **read_list(size_t *count)
{
	size_t cap = 1 << 16, len = 0;
	char *all = xmalloc(cap);
	for (;;) {
		if (len == cap)
			all = xrealloc(all, cap *= 2);
		ssize_t r = read(0, all + len, cap - len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die("read", "stdin");
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len && all[len - 1] != 0) {
		if (len == cap)
			all = xrealloc(all, cap + 1);
		all[len++] = 0;
	}
	size_t n = 0, ncap = 1024;
	char **v = xmalloc(ncap * sizeof(*v));
	for (size_t i = 0; i < len; i += strlen(all + i) + 1) {
		if (!all[i])
			continue;
		if (n == ncap)
			v = xrealloc(v, (ncap *= 2) * sizeof(*v));
		v[n++] = all + i;
	}
	*count = n;
	return v;
}

/* ---- select ---- */

static int cmd_select(uint64_t budget)
{
	size_t n;
	char **v = read_list(&n);
	uint64_t used = 0;
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		if (lstat(v[i], &st) != 0)
			continue;
		if (S_ISREG(st.st_mode)) {
			if (access(v[i], R_OK) != 0)
				continue;
			if (used + (uint64_t)st.st_size > budget)
				continue;
			used += (uint64_t)st.st_size;
		} else if (!S_ISLNK(st.st_mode)) {
			continue;
		}
		fwrite(v[i], 1, strlen(v[i]) + 1, stdout);
		if (budget - used < 64 * 1024)
			break;
	}
	if (fflush(stdout) != 0)
		die("write", "stdout");
	fprintf(stderr, "%" PRIu64 "\n", used);
	return 0;
}

/* ---- image ---- */

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return h;
}

struct hpath {
	uint64_t h;
	const char *p;
};

static int hpath_cmp(const void *a, const void *b)
{
	const struct hpath *x = a, *y = b;
	if (x->h != y->h)
		return x->h < y->h ? -1 : 1;
	return strcmp(x->p, y->p);
}

static int cmd_image(const char *out, uint64_t size)
{
	size_t n;
	char **v = read_list(&n);
	struct hpath *hp = xmalloc(n * sizeof(*hp));
	for (size_t i = 0; i < n; i++)
		hp[i] = (struct hpath){ fnv1a(v[i]), v[i] };
	qsort(hp, n, sizeof(*hp), hpath_cmp);

	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("create", out);
	size_t bufsz = 1u << 20;
	uint8_t *buf = xmalloc(bufsz);
	uint64_t pos = 0, files = 0, rounds = 0;
	while (pos < size) {
		uint64_t round_start = pos;
		for (size_t i = 0; i < n && pos < size; i++) {
			int in = open(hp[i].p, O_RDONLY | O_NOFOLLOW);
			if (in < 0)
				continue;
			struct stat st;
			if (fstat(in, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
				close(in);
				continue;
			}
			uint64_t fbytes = 0;
			for (;;) {
				size_t want = bufsz;
				if (size - pos < want)
					want = (size_t)(size - pos);
				if (!want)
					break;
				size_t got = read_full(in, buf, want);
				if (!got)
					break;
				write_all(fd, buf, got, out);
				pos += got;
				fbytes += got;
			}
			close(in);
			files++;
			/* zero padding to the next 4 KiB block, as a file system would */
			size_t pad = (size_t)((BLK - fbytes % BLK) % BLK);
			if (size - pos < pad)
				pad = (size_t)(size - pos);
			memset(buf, 0, pad);
			write_all(fd, buf, pad, out);
			pos += pad;
		}
		rounds++;
		if (pos == round_start) {
			errno = 0;
			die("image: no readable input files", NULL);
		}
	}
	if (fsync(fd) != 0 || close(fd) != 0)
		die("close", out);
	fprintf(stderr, "mkcorpus image: %s: %" PRIu64 " bytes from %" PRIu64 " files%s\n", out,
		pos, files, rounds > 1 ? " (input list repeated: /usr too small)" : "");
	return 0;
}

/* ---- mutate ---- */

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int cmd_mutate(const char *inpath, const char *outpath, uint64_t seed, uint64_t permille,
		      uint64_t ninserts, uint64_t inslen)
{
	int in = open(inpath, O_RDONLY);
	if (in < 0)
		die("open", inpath);
	struct stat st;
	if (fstat(in, &st) != 0)
		die("stat", inpath);
	uint64_t size = (uint64_t)st.st_size;
	uint64_t nblocks = size / BLK;
	uint64_t nover = nblocks * permille / 1000;
	if (!size) {
		errno = 0;
		die("mutate: empty input", inpath);
	}

	rng_seed(seed);
	uint8_t *mark = calloc(nblocks ? nblocks : 1, 1);
	if (!mark)
		die("out of memory", NULL);
	for (uint64_t k = 0; k < nover;) {
		uint64_t b = rng_below(nblocks);
		if (!mark[b]) {
			mark[b] = 1;
			k++;
		}
	}
	uint64_t *ins = xmalloc((ninserts ? ninserts : 1) * sizeof(*ins));
	for (uint64_t k = 0; k < ninserts; k++)
		ins[k] = rng_below(size);
	qsort(ins, ninserts, sizeof(*ins), u64_cmp);

	int out = open(outpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (out < 0)
		die("create", outpath);
	uint8_t *buf = xmalloc(BLK), *ibuf = xmalloc(inslen ? inslen : 1);
	uint64_t next_ins = 0;
	for (uint64_t b = 0, pos = 0; pos < size; b++) {
		size_t len = (size_t)(size - pos < BLK ? size - pos : BLK);
		if (read_full(in, buf, len) != len)
			die("read", inpath);
		if (b < nblocks && mark[b])
			rng_fill(buf, len);
		size_t done = 0;
		while (next_ins < ninserts && ins[next_ins] < pos + len) {
			size_t at = (size_t)(ins[next_ins] - pos);
			write_all(out, buf + done, at - done, outpath);
			done = at;
			rng_fill(ibuf, (size_t)inslen);
			write_all(out, ibuf, (size_t)inslen, outpath);
			next_ins++;
		}
		write_all(out, buf + done, len - done, outpath);
		pos += len;
	}
	if (fsync(out) != 0 || close(out) != 0)
		die("close", outpath);
	close(in);
	fprintf(stderr,
		"mkcorpus mutate: %s: %" PRIu64 " of %" PRIu64 " 4 KiB blocks overwritten (%.2f%%), "
		"%" PRIu64 " insertions of %" PRIu64 " B\n",
		outpath, nover, nblocks, nblocks ? 100.0 * (double)nover / (double)nblocks : 0.0,
		ninserts, inslen);
	return 0;
}

/* ---- edit ---- */

static char **files;
static size_t nfiles, capfiles;

static int collect(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type == FTW_F && S_ISREG(st->st_mode)) {
		if (nfiles == capfiles)
			files = xrealloc(files, (capfiles = capfiles ? capfiles * 2 : 4096) *
							 sizeof(*files));
		files[nfiles++] = strdup(path);
	}
	return 0;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Opens for writing, adding u+w for a moment when the mode forbids it. */
static int open_w(const char *p, int flags, mode_t *restore)
{
	int fd = open(p, flags);
	*restore = 0;
	if (fd < 0 && errno == EACCES) {
		struct stat st;
		if (stat(p, &st) == 0 && chmod(p, st.st_mode | S_IWUSR) == 0) {
			*restore = st.st_mode | S_IFREG;
			fd = open(p, flags);
		}
	}
	return fd;
}

static void close_w(int fd, const char *p, mode_t restore)
{
	if (close(fd) != 0)
		die("close", p);
	if (restore)
		(void)chmod(p, restore & 07777);
}

static uint8_t *slurp(const char *p, size_t *len)
{
	int fd = open(p, O_RDONLY);
	if (fd < 0)
		return NULL;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		close(fd);
		return NULL;
	}
	uint8_t *b = xmalloc((size_t)st.st_size);
	*len = read_full(fd, b, (size_t)st.st_size);
	close(fd);
	return b;
}

/* Writes parts to a temporary file beside p, keeps p's mode/owner, renames over p. */
static void replace_file(const char *p, const struct stat *st, const uint8_t *a, size_t alen,
			 const uint8_t *b, size_t blen, const uint8_t *c, size_t clen)
{
	size_t tl = strlen(p) + 32;
	char *tmp = xmalloc(tl);
	snprintf(tmp, tl, "%s.cairn-bench-tmp", p);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		die("create", tmp);
	write_all(fd, a, alen, tmp);
	write_all(fd, b, blen, tmp);
	write_all(fd, c, clen, tmp);
	if (fchmod(fd, st->st_mode & 07777) != 0)
		die("chmod", tmp);
	(void)!fchown(fd, st->st_uid, st->st_gid);
	if (close(fd) != 0)
		die("close", tmp);
	if (rename(tmp, p) != 0)
		die("rename", tmp);
	free(tmp);
}

static int cmd_edit(const char *dir, uint64_t seed, uint64_t gen)
{
	if (nftw(dir, collect, 64, FTW_PHYS) != 0)
		die("walk", dir);
	qsort(files, nfiles, sizeof(*files), str_cmp);
	if (!nfiles) {
		errno = 0;
		die("edit: no files in", dir);
	}
	rng_seed(seed ^ (gen * 0xD1B54A32D192ED03ull));

	uint64_t n_del = 0, n_mod = 0, n_ins = 0, n_app = 0, n_add = 0, bytes_new = 0;
	size_t nadd = nfiles / 100 ? nfiles / 100 : 1;

	/* additions first, so copies read the previous generation's content */
	for (size_t k = 0; k < nadd; k++) {
		const char *near = files[rng_below(nfiles)];
		const char *slash = strrchr(near, '/');
		size_t dl = (size_t)(slash - near);
		int text = (k % 2) == 0;
		size_t pl = dl + 64;
		char *p = xmalloc(pl);
		snprintf(p, pl, "%.*s/cairn-bench-g%" PRIu64 "-%05zu.%s", (int)dl, near, gen, k,
			 text ? "txt" : "bin");
		uint8_t hdr[64];
		uint8_t *body = NULL;
		size_t blen = 0;
		if (text) {
			blen = 1024 + (size_t)rng_below(63 * 1024);
			body = xmalloc(blen);
			gen_text((char *)body, blen);
		} else {
			body = slurp(files[rng_below(nfiles)], &blen);
			if (!body) {
				blen = 0;
				body = xmalloc(1);
			}
			gen_text((char *)hdr, sizeof(hdr));
		}
		int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0)
			die("create", p);
		if (!text)
			write_all(fd, hdr, sizeof(hdr), p);
		write_all(fd, body, blen, p);
		if (close(fd) != 0)
			die("close", p);
		bytes_new += blen + (text ? 0 : sizeof(hdr));
		n_add++;
		free(body);
		free(p);
	}

	for (size_t i = 0; i < nfiles; i++) {
		const char *p = files[i];
		uint64_t u = rng_below(10000);
		struct stat st;
		if (u >= 600 || lstat(p, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		uint64_t size = (uint64_t)st.st_size;
		if (u < 100) { /* delete */
			if (unlink(p) != 0)
				die("unlink", p);
			n_del++;
		} else if (u < 300 && size > 0) { /* modify in place */
			size_t len = 64 + (size_t)rng_below(4033);
			if (len > size)
				len = (size_t)size;
			uint64_t off = rng_below(size - len + 1);
			uint8_t b[4096];
			rng_fill(b, len);
			mode_t rs;
			int fd = open_w(p, O_WRONLY, &rs);
			if (fd < 0)
				die("open", p);
			if (pwrite(fd, b, len, (off_t)off) != (ssize_t)len)
				die("pwrite", p);
			close_w(fd, p, rs);
			bytes_new += len;
			n_mod++;
		} else if (u < 500) { /* insert a text line (also: modify of an empty file) */
			size_t len;
			uint8_t *old = slurp(p, &len);
			if (!old)
				die("read", p);
			size_t at = (size_t)rng_below(len + 1);
			char line[160];
			size_t ll = 20 + (size_t)rng_below(100);
			gen_text(line, ll);
			replace_file(p, &st, old, at, (uint8_t *)line, ll, old + at, len - at);
			free(old);
			bytes_new += ll;
			n_ins++;
		} else { /* append lines */
			size_t ll = 40 * (1 + (size_t)rng_below(20));
			char *t = xmalloc(ll);
			gen_text(t, ll);
			mode_t rs;
			int fd = open_w(p, O_WRONLY | O_APPEND, &rs);
			if (fd < 0)
				die("open", p);
			write_all(fd, t, ll, p);
			close_w(fd, p, rs);
			free(t);
			bytes_new += ll;
			n_app++;
		}
	}
	fprintf(stderr,
		"mkcorpus edit: %s gen %" PRIu64 ": of %zu files %" PRIu64 " deleted, %" PRIu64
		" modified, %" PRIu64 " line-inserted, %" PRIu64 " appended; %" PRIu64
		" added; %.1f MiB new\n",
		dir, gen, nfiles, n_del, n_mod, n_ins, n_app, n_add,
		(double)bytes_new / 1048576.0);
	return 0;
}

/* ---- main ---- */

static uint64_t num(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end) {
		fprintf(stderr, "mkcorpus: bad number '%s'\n", s);
		exit(2);
	}
	return v;
}

static void usage(void)
{
	fprintf(stderr, "usage: mkcorpus select BUDGET < list0\n"
			"       mkcorpus image OUT SIZE < list0\n"
			"       mkcorpus mutate IN OUT SEED [PERMILLE INSERTS INSERT_LEN]\n"
			"       mkcorpus edit DIR SEED GEN\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "select") && argc == 3)
		return cmd_select(num(argv[2]));
	if (!strcmp(argv[1], "image") && argc == 4)
		return cmd_image(argv[2], num(argv[3]));
	if (!strcmp(argv[1], "mutate") && (argc == 5 || argc == 8))
		return cmd_mutate(argv[2], argv[3], num(argv[4]), argc == 8 ? num(argv[5]) : 10,
				  argc == 8 ? num(argv[6]) : 5, argc == 8 ? num(argv[7]) : 100);
	if (!strcmp(argv[1], "edit") && argc == 5)
		return cmd_edit(argv[2], num(argv[3]), num(argv[4]));
	usage();
	return 2;
}
