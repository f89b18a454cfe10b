/*
 * snapshot.c - snapshot objects: encoding, listing, lookup, retention, and
 * the whole-file digest.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "engine/repo_int.h"

void file_digest(const cairn_keyset *keys, const cairn_extent *e, size_t n, uint64_t size,
		 uint8_t out[32])
{
	static const char label[] = "cairn/file/v1";
	cairn_buf b = CAIRN_BUF_INIT;
	cairn_buf_append(&b, label, sizeof(label) - 1);
	cairn_buf_put_le64(&b, size);
	for (size_t i = 0; i < n; i++) {
		cairn_buf_put_u8(&b, e[i].hole);
		cairn_buf_put_le64(&b, e[i].len);
		if (!e[i].hole)
			cairn_buf_append(&b, e[i].id, 32);
	}
	const void *parts[1] = {b.data};
	size_t lens[1] = {b.len};
	cairn_hmac(keys->id, parts, lens, 1, out);
	cairn_buf_free(&b);
}

void cairn_snapshot_free(cairn_snapshot *s)
{
	if (!s)
		return;
	free(s->client);
	free(s->hostname);
	free(s->username);
	for (size_t i = 0; i < s->npaths; i++)
		free(s->paths[i]);
	free(s->paths);
	for (size_t i = 0; i < s->ntags; i++)
		free(s->tags[i]);
	free(s->tags);
	free(s->program);
	memset(s, 0, sizeof(*s));
}

void cairn_snapshots_free(cairn_snapshot *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cairn_snapshot_free(&s[i]);
	free(s);
}

static void put_str(cairn_buf *b, const char *s)
{
	cairn_buf_put_bytes(b, s ? s : "", s ? strlen(s) : 0);
}

void snapshot_encode(const cairn_snapshot *s, cairn_buf *b)
{
	const cairn_backup_summary *m = &s->summary;
	cairn_buf_put_u8(b, 1);
	cairn_buf_put_le64(b, (uint64_t)s->time_ns);
	cairn_buf_append(b, s->tree, 32);
	cairn_buf_put_u8(b, (uint8_t)(s->has_parent ? 1 : 0));
	if (s->has_parent)
		cairn_buf_append(b, s->parent, 32);
	put_str(b, s->client);
	put_str(b, s->hostname);
	put_str(b, s->username);
	cairn_buf_put_uvar(b, s->npaths);
	for (size_t i = 0; i < s->npaths; i++)
		put_str(b, s->paths[i]);
	cairn_buf_put_uvar(b, s->ntags);
	for (size_t i = 0; i < s->ntags; i++)
		put_str(b, s->tags[i]);
	uint64_t v[] = {m->files_new, m->files_changed, m->files_unchanged, m->dirs, m->others,
			m->bytes_read, m->bytes_total, m->bytes_added, m->blobs_added, m->errors,
			(uint64_t)m->duration_ns};
	cairn_buf_put_uvar(b, sizeof(v) / sizeof(v[0]));
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		cairn_buf_put_uvar(b, v[i]);
	put_str(b, s->program);
	cairn_buf_put_uvar(b, 0); /* extensions: (tag, bytes) pairs a reader may skip */
}

static int get_str(cairn_rd *r, char **out)
{
	const uint8_t *p;
	size_t n;
	if (cairn_rd_bytes(r, &p, &n, 65536) < 0 || memchr(p, 0, n))
		return -EBADMSG;
	*out = cairn_xmalloc(n + 1);
	memcpy(*out, p, n);
	(*out)[n] = 0;
	return 0;
}

int snapshot_decode(cairn_snapshot *s, const void *data, size_t len)
{
	cairn_rd r = cairn_rd_init(data, len);
	uint8_t ver, hp;
	uint64_t t, n, nv;
	char idhex[65];
	memcpy(idhex, s->idhex, sizeof(idhex));
	memset(s, 0, sizeof(*s));
	memcpy(s->idhex, idhex, sizeof(idhex));
	if (cairn_rd_u8(&r, &ver) < 0 || ver != 1)
		goto bad;
	if (cairn_rd_le64(&r, &t) < 0 || cairn_rd_raw(&r, s->tree, 32) < 0 ||
	    cairn_rd_u8(&r, &hp) < 0 || hp > 1)
		goto bad;
	s->time_ns = (int64_t)t;
	s->has_parent = hp;
	if (hp && cairn_rd_raw(&r, s->parent, 32) < 0)
		goto bad;
	if (get_str(&r, &s->client) < 0 || get_str(&r, &s->hostname) < 0 ||
	    get_str(&r, &s->username) < 0 || cairn_rd_uvar(&r, &n) < 0 || n > cairn_rd_left(&r))
		goto bad;
	s->paths = cairn_xcalloc(n ? n : 1, sizeof(char *));
	for (; s->npaths < n; s->npaths++)
		if (get_str(&r, &s->paths[s->npaths]) < 0)
			goto bad;
	if (cairn_rd_uvar(&r, &n) < 0 || n > cairn_rd_left(&r))
		goto bad;
	s->tags = cairn_xcalloc(n ? n : 1, sizeof(char *));
	for (; s->ntags < n; s->ntags++)
		if (get_str(&r, &s->tags[s->ntags]) < 0)
			goto bad;
	if (cairn_rd_uvar(&r, &nv) < 0 || nv > 64)
		goto bad;
	uint64_t v[64] = {0};
	for (uint64_t i = 0; i < nv; i++)
		if (cairn_rd_uvar(&r, &v[i]) < 0)
			goto bad;
	cairn_backup_summary *m = &s->summary;
	m->files_new = v[0];
	m->files_changed = v[1];
	m->files_unchanged = v[2];
	m->dirs = v[3];
	m->others = v[4];
	m->bytes_read = v[5];
	m->bytes_total = v[6];
	m->bytes_added = v[7];
	m->blobs_added = v[8];
	m->errors = v[9];
	m->duration_ns = (int64_t)v[10];
	if (get_str(&r, &s->program) < 0 || cairn_rd_uvar(&r, &n) < 0)
		goto bad;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t tag;
		const uint8_t *p;
		size_t l;
		if (cairn_rd_uvar(&r, &tag) < 0 || cairn_rd_bytes(&r, &p, &l, 1 << 20) < 0)
			goto bad;
	}
	if (cairn_rd_left(&r))
		goto bad;
	return 0;
bad:
	cairn_snapshot_free(s);
	memcpy(s->idhex, idhex, sizeof(idhex));
	return cairn_error_set(-EBADMSG, "snapshot is malformed");
}

int snapshot_save(cairn_repo *r, cairn_codec *cx, cairn_snapshot *s)
{
	cairn_buf b = CAIRN_BUF_INIT;
	char name[80];
	snapshot_encode(s, &b);
	int rc = repo_save_object(r, cx, "snapshots", CAIRN_OBJ_SNAPSHOT, b.data, b.len, name);
	cairn_buf_free(&b);
	if (rc == 0) {
		memcpy(s->idhex, name + strlen("snapshots/"), 64);
		s->idhex[64] = 0;
	}
	return rc;
}


static int cmp_time(const void *a, const void *b)
{
	const cairn_snapshot *x = a, *y = b;
	if (x->time_ns != y->time_ns)
		return x->time_ns < y->time_ns ? -1 : 1;
	return strcmp(x->idhex, y->idhex);
}

int cairn_snapshots_list(cairn_repo *r, cairn_snapshot **out, size_t *n)
{
	cairn_listing l = {0};
	*out = NULL;
	*n = 0;
	int rc = cairn_target_list_all(r->rt, "snapshots/", &l);
	if (rc < 0)
		return rc;
	cairn_snapshot *v = cairn_xcalloc(l.n ? l.n : 1, sizeof(*v));
	cairn_codec *cx = cairn_codec_new(0);
	cairn_buf pt = CAIRN_BUF_INIT;
	size_t m = 0;
	for (size_t i = 0; i < l.n; i++) {
		if (strlen(l.names[i]) != strlen("snapshots/") + 64)
			continue; /* not a snapshot object name */
		int lr = repo_load_object(r, cx, l.names[i], CAIRN_OBJ_SNAPSHOT, 16u << 20, 0, &pt);
		memcpy(v[m].idhex, l.names[i] + strlen("snapshots/"), 64);
		v[m].idhex[64] = 0;
		if (lr == 0)
			lr = snapshot_decode(&v[m], pt.data, pt.len);
		if (lr == -ENOENT)
			continue; /* removed meanwhile */
		if (lr < 0) {
			repo_warn(r, "%s: unreadable snapshot skipped: %s", l.names[i],
				  cairn_error_last());
			continue;
		}
		m++;
	}
	cairn_listing_free(&l);
	cairn_buf_free(&pt);
	cairn_codec_free(cx);
	qsort(v, m, sizeof(*v), cmp_time);
	*out = v;
	*n = m;
	return 0;
}

static int matches(const cairn_snapshot *s, const cairn_snapshot_filter *f)
{
	if (!f)
		return 1;
	if (f->client && strcmp(f->client, s->client))
		return 0;
	if (f->host && strcmp(f->host, s->hostname))
		return 0;
	if (f->tag) {
		int ok = 0;
		for (size_t i = 0; i < s->ntags; i++)
			ok |= !strcmp(s->tags[i], f->tag);
		if (!ok)
			return 0;
	}
	if (f->path) {
		int ok = 0;
		for (size_t i = 0; i < s->npaths; i++)
			ok |= !strcmp(s->paths[i], f->path);
		if (!ok)
			return 0;
	}
	return 1;
}

static void snapshot_copy(cairn_snapshot *d, const cairn_snapshot *s)
{
	*d = *s;
	d->client = cairn_xstrdup(s->client);
	d->hostname = cairn_xstrdup(s->hostname);
	d->username = cairn_xstrdup(s->username);
	d->program = cairn_xstrdup(s->program);
	d->paths = cairn_xcalloc(s->npaths ? s->npaths : 1, sizeof(char *));
	for (size_t i = 0; i < s->npaths; i++)
		d->paths[i] = cairn_xstrdup(s->paths[i]);
	d->tags = cairn_xcalloc(s->ntags ? s->ntags : 1, sizeof(char *));
	for (size_t i = 0; i < s->ntags; i++)
		d->tags[i] = cairn_xstrdup(s->tags[i]);
}

int cairn_snapshot_find(cairn_repo *r, const char *spec, const cairn_snapshot_filter *f,
			cairn_snapshot *out)
{
	cairn_snapshot *v;
	size_t n;
	memset(out, 0, sizeof(*out));
	if (!spec || !*spec)
		return cairn_error_set(-EINVAL, "no snapshot given");
	int rc = cairn_snapshots_list(r, &v, &n);
	if (rc < 0)
		return rc;
	ssize_t found = -1;
	int latest = !strcmp(spec, "latest");
	if (!latest && strspn(spec, "0123456789abcdef") != strlen(spec)) {
		cairn_snapshots_free(v, n);
		return cairn_error_set(-EINVAL, "'%s' is neither a snapshot id nor 'latest'", spec);
	}
	for (size_t i = 0; i < n; i++) {
		if (!matches(&v[i], f))
			continue;
		if (latest) {
			found = (ssize_t)i; /* sorted oldest first: the last match wins */
		} else if (!strncmp(v[i].idhex, spec, strlen(spec))) {
			if (found >= 0) {
				cairn_snapshots_free(v, n);
				return cairn_error_set(-EINVAL, "snapshot prefix '%s' is ambiguous",
						       spec);
			}
			found = (ssize_t)i;
		}
	}
	if (found < 0) {
		cairn_snapshots_free(v, n);
		return cairn_error_set(-ENOENT, latest ? "no snapshot matches (repository %s%s)"
						       : "no snapshot '%s' in %s",
				       latest ? cairn_repo_id(r) : spec,
				       latest ? "" : r->t->name);
	}
	snapshot_copy(out, &v[found]);
	cairn_snapshots_free(v, n);
	return 0;
}

int cairn_snapshot_delete(cairn_repo *r, const char *idhex)
{
	char name[80];
	snprintf(name, sizeof(name), "snapshots/%s", idhex);
	return cairn_target_del(r->t, name);
}

/* --- retention ---------------------------------------------------------------------- */

/* Bucket of a time for each rule (local time, as users read their schedules). */
static long bucket(int64_t ns, int rule)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;
	localtime_r(&t, &tm);
	switch (rule) {
	case 0: /* hourly */
		return (long)(tm.tm_year * 100000L + tm.tm_yday * 100 + tm.tm_hour);
	case 1: /* daily */
		return (long)(tm.tm_year * 1000L + tm.tm_yday);
	case 2: { /* weekly: ISO-like week, Monday start */
		char w[16];
		strftime(w, sizeof(w), "%G%V", &tm);
		return atol(w);
	}
	case 3: /* monthly */
		return (long)(tm.tm_year * 100L + tm.tm_mon);
	default: /* yearly */
		return (long)tm.tm_year;
	}
}

void cairn_retention_apply(const cairn_retention *pol, const cairn_snapshot *s, size_t n,
			   int64_t now_ns, int *keep)
{
	for (size_t i = 0; i < n; i++)
		keep[i] = 0;
	/* groups: by client; walk newest first */
	int *done = cairn_xcalloc(n ? n : 1, sizeof(int));
	for (size_t g = n; g-- > 0;) {
		if (done[g])
			continue;
		const char *client = s[g].client;
		int last = pol->keep_last;
		int counts[5] = {pol->keep_hourly, pol->keep_daily, pol->keep_weekly,
				 pol->keep_monthly, pol->keep_yearly};
		long lastb[5] = {0};
		int have[5] = {0};
		for (size_t i = g + 1; i-- > 0;) {
			if (done[i] || strcmp(s[i].client, client))
				continue;
			done[i] = 1;
			if (last > 0) {
				keep[i] = 1;
				last--;
			}
			for (int rule = 0; rule < 5; rule++) {
				if (counts[rule] <= 0)
					continue;
				long b = bucket(s[i].time_ns, rule);
				if (!have[rule] || b != lastb[rule]) {
					keep[i] = 1;
					counts[rule]--;
					lastb[rule] = b;
					have[rule] = 1;
				}
			}
			if (pol->keep_within_ns > 0 && now_ns - s[i].time_ns <= pol->keep_within_ns)
				keep[i] = 1;
			for (size_t t = 0; t < pol->nkeep_tags; t++)
				for (size_t k = 0; k < s[i].ntags; k++)
					if (!strcmp(s[i].tags[k], pol->keep_tags[t]))
						keep[i] = 1;
		}
	}
	free(done);
}

/* --- drill reports ------------------------------------------------------------------- */

int cairn_report_save(cairn_repo *r, const char *json, size_t len, char name_out[80])
{
	cairn_codec *cx = cairn_codec_new(3);
	char name[80];
	int rc = repo_save_object(r, cx, "reports", CAIRN_OBJ_REPORT, json, len, name);
	cairn_codec_free(cx);
	if (rc == 0 && name_out)
		memcpy(name_out, name, 80);
	return rc;
}

int cairn_reports_list(cairn_repo *r, int (*cb)(void *payload, const char *name, const char *json),
		       void *payload)
{
	cairn_listing l = {0};
	int rc = cairn_target_list_all(r->rt, "reports/", &l);
	cairn_codec *cx = cairn_codec_new(0);
	cairn_buf pt = CAIRN_BUF_INIT;
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		int lr = repo_load_object(r, cx, l.names[i], CAIRN_OBJ_REPORT, 1u << 20, 0, &pt);
		if (lr < 0) {
			repo_warn(r, "%s: unreadable report skipped: %s", l.names[i], cairn_error_last());
			continue;
		}
		cairn_buf_put_u8(&pt, 0);
		rc = cb(payload, l.names[i], (const char *)pt.data);
	}
	cairn_listing_free(&l);
	cairn_buf_free(&pt);
	cairn_codec_free(cx);
	return rc;
}
