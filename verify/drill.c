/*
 * drill.c - restore drills: prove that a client's data can really be restored.
 *
 * A drill restores a snapshot (all of it, or a seeded sample of its files
 * that always includes the largest file and the deepest one) through the
 * normal restore path, so every blob is authenticated and hashed back to
 * its id and every file's digest is checked. With a sandbox directory the
 * restored files also have their metadata compared with the snapshot's, and
 * optionally their content with the live source where the source has not
 * changed since the snapshot. The report (JSON) is stored in the repository,
 * encrypted, and printed; `drill status` reads the stored reports.
 */
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "verify/verify.h"

typedef struct dctx {
	cairn_drill_report *rep;
	const cairn_drill_opts *o;
	const char *root; /* sandbox root with the restored tree */
	void (*warn)(void *, const char *);
	void *payload;
	int is_root;
} dctx;

static void fail(dctx *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(dctx *d, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	d->rep->errors++;
	if (!d->rep->first_error[0])
	{
		size_t n = strlen(msg) < sizeof(d->rep->first_error) - 1 ? strlen(msg)
									: sizeof(d->rep->first_error) - 1;
		memcpy(d->rep->first_error, msg, n);
		d->rep->first_error[n] = 0;
	}
	if (d->warn)
		d->warn(d->payload, msg);
}

static void drill_warn(void *payload, const char *msg)
{
	dctx *d = payload;
	fail(d, "%s", msg);
}

static int same_content(const char *a, const char *b)
{
	int fa = open(a, O_RDONLY | O_CLOEXEC), fb = open(b, O_RDONLY | O_CLOEXEC);
	int same = fa >= 0 && fb >= 0;
	static _Thread_local char ba[1 << 16], bb[1 << 16];
	while (same) {
		ssize_t na = read(fa, ba, sizeof(ba)), nb = read(fb, bb, sizeof(bb));
		if (na != nb || na < 0 || memcmp(ba, bb, (size_t)na))
			same = 0;
		else if (na == 0)
			break;
	}
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	return same;
}

/* Compare each restored entry with the snapshot's metadata. */
static int meta_cb(void *payload, const cairn_entry *e)
{
	dctx *d = payload;
	size_t l = strlen(d->root) + strlen(e->path) + 2;
	char *p = cairn_xmalloc(l);
	snprintf(p, l, "%s%s", d->root, e->path);
	struct stat st;
	if (lstat(p, &st) < 0) {
		free(p); /* not in the sample */
		return 0;
	}
	static const mode_t types[] = {0, S_IFREG, S_IFDIR, S_IFLNK, S_IFIFO, S_IFCHR, S_IFBLK, S_IFSOCK};
	d->rep->meta_checked++;
	if (e->type < 8 && (st.st_mode & S_IFMT) != types[e->type])
		fail(d, "%s: restored as the wrong type", e->path);
	else if (e->type != 3 && (st.st_mode & 07777) != e->mode)
		fail(d, "%s: mode %04o, snapshot says %04o", e->path, st.st_mode & 07777, e->mode);
	else if (d->is_root && (st.st_uid != e->uid || st.st_gid != e->gid))
		fail(d, "%s: owner %u:%u, snapshot says %u:%u", e->path, st.st_uid, st.st_gid, e->uid,
		     e->gid);
	else if (e->type == 1 && (uint64_t)st.st_size != e->size)
		fail(d, "%s: size %lld, snapshot says %llu", e->path, (long long)st.st_size,
		     (unsigned long long)e->size);
	else if (e->type == 1 && (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec !=
					 e->mtime_ns)
		fail(d, "%s: mtime differs from the snapshot", e->path);
	if (d->o->compare_live && e->type == 1) {
		struct stat live;
		if (lstat(e->path, &live) == 0 && S_ISREG(live.st_mode) &&
		    (uint64_t)live.st_size == e->size &&
		    (int64_t)live.st_mtim.tv_sec * 1000000000 + live.st_mtim.tv_nsec == e->mtime_ns) {
			d->rep->live_compared++;
			if (!same_content(p, e->path))
				fail(d, "%s: differs from the live file although the live file is "
					"unchanged since the snapshot", e->path);
		}
	}
	free(p);
	return 0;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	remove(path);
	return 0;
}

int cairn_drill(cairn_repo *r, const cairn_drill_opts *o, cairn_drill_report *rep,
		void (*warn)(void *payload, const char *msg), void *payload)
{
	cairn_drill_opts def = CAIRN_DRILL_OPTS_INIT;
	cairn_snapshot snap;
	cairn_snapshot_filter f = {0};
	int rc;
	if (!o)
		o = &def;
	memset(rep, 0, sizeof(*rep));
	dctx d = {rep, o, NULL, warn, payload, geteuid() == 0};
	rep->time_ns = cairn_wall_ns();
	rep->seed = o->seed ? o->seed : (uint64_t)rep->time_ns;
	rep->sample = o->sample > 0 && o->sample < 1 ? o->sample : 1;
	f.client = o->client;
	const char *spec = o->snapshot ? o->snapshot : "latest";
	if (!strcmp(spec, "random")) {
		cairn_snapshot *v;
		size_t n, m = 0;
		if ((rc = cairn_snapshots_list(r, &v, &n)) < 0)
			return rc;
		size_t *ok = cairn_xcalloc(n ? n : 1, sizeof(size_t));
		for (size_t i = 0; i < n; i++)
			if (!o->client || !strcmp(v[i].client, o->client))
				ok[m++] = i;
		if (!m) {
			free(ok);
			cairn_snapshots_free(v, n);
			return cairn_error_set(-ENOENT, "drill: no snapshot to drill");
		}
		char id[65];
		snprintf(id, sizeof(id), "%s", v[ok[rep->seed % m]].idhex);
		free(ok);
		cairn_snapshots_free(v, n);
		rc = cairn_snapshot_find(r, id, NULL, &snap);
	} else {
		rc = cairn_snapshot_find(r, spec, &f, &snap);
	}
	if (rc < 0)
		return cairn_error_wrap(rc, "drill");
	snprintf(rep->repository, sizeof(rep->repository), "%s", cairn_repo_id(r));
	snprintf(rep->client, sizeof(rep->client), "%s", snap.client);
	snprintf(rep->snapshot, sizeof(rep->snapshot), "%s", snap.idhex);
	rep->snapshot_time_ns = snap.time_ns;

	char *sandbox = NULL;
	if (o->sandbox) {
		size_t l = strlen(o->sandbox) + 32;
		sandbox = cairn_xmalloc(l);
		mkdir(o->sandbox, 0700);
		snprintf(sandbox, l, "%s/drill-XXXXXX", o->sandbox);
		if (!mkdtemp(sandbox)) {
			rc = cairn_error_set(-errno, "drill: sandbox under %s: %s", o->sandbox,
					     strerror(errno));
			free(sandbox);
			cairn_snapshot_free(&snap);
			return rc;
		}
	}
	cairn_restore_opts ro = CAIRN_RESTORE_OPTS_INIT;
	cairn_restore_result res;
	ro.target = sandbox;
	ro.verify_only = sandbox == NULL;
	ro.sample = rep->sample < 1 ? rep->sample : 0;
	ro.seed = rep->seed;
	rc = cairn_restore(r, &snap, &ro, &res, drill_warn, &d);
	rep->files = res.files;
	rep->bytes = res.bytes;
	rep->files_total = res.files_total;
	rep->bytes_total = res.bytes_total;
	rep->seconds = (double)res.duration_ns / 1e9;
	rep->mb_per_s = rep->seconds > 0 ? (double)res.bytes / 1e6 / rep->seconds : 0;
	rep->first_byte_s = (double)res.first_byte_ns / 1e9;
	if (rc < 0 && !rep->errors)
		fail(&d, "%s", cairn_error_last());
	if (sandbox) {
		d.root = sandbox;
		if (cairn_ls(r, &snap, NULL, meta_cb, &d) < 0)
			fail(&d, "listing the snapshot: %s", cairn_error_last());
		if (!o->keep_sandbox)
			nftw(sandbox, rm_cb, 32, FTW_DEPTH | FTW_PHYS);
	}
	free(sandbox);
	cairn_snapshot_free(&snap);
	rep->passed = rep->errors == 0;
	return 0;
}

void cairn_drill_report_json(const cairn_drill_report *p, cairn_buf *out)
{
	char buf[4096];
	cairn_buf esc = CAIRN_BUF_INIT;
	const char *fields[] = {p->client, p->target, p->site, p->first_error};
	char *e[4];
	for (int i = 0; i < 4; i++) {
		esc.len = 0;
		for (const unsigned char *s = (const unsigned char *)fields[i]; *s; s++) {
			char t[8];
			if (*s == '"' || *s == '\\')
				snprintf(t, sizeof(t), "\\%c", *s);
			else if (*s < 0x20 || *s >= 0x7f)
				snprintf(t, sizeof(t), "\\u%04x", *s);
			else
				snprintf(t, sizeof(t), "%c", *s);
			cairn_buf_append(&esc, t, strlen(t));
		}
		cairn_buf_put_u8(&esc, 0);
		e[i] = cairn_xstrdup((const char *)esc.data);
	}
	cairn_buf_free(&esc);
	int n = snprintf(buf, sizeof(buf),
			 "{\"type\":\"drill\",\"version\":1,\"repository\":\"%s\",\"client\":\"%s\","
			 "\"snapshot\":\"%s\",\"target\":\"%s\",\"site\":\"%s\",\"time_ns\":%lld,"
			 "\"snapshot_time_ns\":%lld,\"sample\":%.4f,\"seed\":%llu,\"files\":%llu,"
			 "\"bytes\":%llu,\"files_total\":%llu,\"bytes_total\":%llu,"
			 "\"fetched_share\":%.4f,\"meta_checked\":%llu,\"live_compared\":%llu,"
			 "\"seconds\":%.3f,\"mb_per_s\":%.1f,\"first_byte_s\":%.3f,\"errors\":%llu,"
			 "\"first_error\":\"%s\",\"verdict\":\"%s\"}",
			 p->repository, e[0], p->snapshot, e[1], e[2], (long long)p->time_ns,
			 (long long)p->snapshot_time_ns, p->sample, (unsigned long long)p->seed,
			 (unsigned long long)p->files, (unsigned long long)p->bytes,
			 (unsigned long long)p->files_total, (unsigned long long)p->bytes_total,
			 p->bytes_total ? (double)p->bytes / (double)p->bytes_total : 1.0,
			 (unsigned long long)p->meta_checked, (unsigned long long)p->live_compared,
			 p->seconds, p->mb_per_s, p->first_byte_s, (unsigned long long)p->errors, e[3],
			 p->passed ? "pass" : "fail");
	for (int i = 0; i < 4; i++)
		free(e[i]);
	if (n > 0)
		cairn_buf_append(out, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* Minimal extraction of "key":"string" and "key":number from our own reports. */
static int jstr(const char *js, const char *key, char *out, size_t cap)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	const char *p = strstr(js, pat);
	if (!p)
		return -1;
	p += strlen(pat);
	size_t o = 0;
	while (*p && *p != '"' && o + 1 < cap) {
		if (*p == '\\' && p[1])
			p++;
		out[o++] = *p++;
	}
	out[o] = 0;
	return 0;
}

static long long jnum(const char *js, const char *key)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *p = strstr(js, pat);
	return p ? atoll(p + strlen(pat)) : 0;
}

int cairn_drill_report_parse(const char *json, cairn_drill_report *rep)
{
	char verdict[16] = "";
	memset(rep, 0, sizeof(*rep));
	if (!strstr(json, "\"type\":\"drill\"") || jstr(json, "verdict", verdict, sizeof(verdict)) < 0)
		return cairn_error_set(-EBADMSG, "not a drill report");
	jstr(json, "repository", rep->repository, sizeof(rep->repository));
	jstr(json, "client", rep->client, sizeof(rep->client));
	jstr(json, "snapshot", rep->snapshot, sizeof(rep->snapshot));
	jstr(json, "target", rep->target, sizeof(rep->target));
	jstr(json, "site", rep->site, sizeof(rep->site));
	jstr(json, "first_error", rep->first_error, sizeof(rep->first_error));
	rep->time_ns = jnum(json, "time_ns");
	rep->files = (uint64_t)jnum(json, "files");
	rep->bytes = (uint64_t)jnum(json, "bytes");
	rep->errors = (uint64_t)jnum(json, "errors");
	rep->passed = !strcmp(verdict, "pass");
	return 0;
}
