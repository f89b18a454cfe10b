/*
 * store.c - cairnd's durable state in SQLite: jobs, runs, incidents and
 * their timeline, silences (see sched.h).
 *
 * DESIGN (crash safety, "no job twice"): the database runs in WAL mode with
 * synchronous=FULL, so a committed transaction survives kill -9 and power
 * loss. A run is claimed by inserting its row (status 'running') in its own
 * transaction BEFORE the job's process starts; UNIQUE(job, scheduled_for,
 * attempt) makes a second claim of the same slot fail with -EEXIST, also in
 * a daemon restarted after kill -9. At start-up cairn_store_recover() turns
 * 'running' rows whose process is gone into 'interrupted' (the plan retries
 * them like failed runs, as attempt + 1 of the same slot). An incident is
 * unique per key while unresolved (a partial UNIQUE index).
 *
 * Status and kind are stored as their names so the database reads well with
 * the sqlite3 shell. Schema version in PRAGMA user_version (now 1).
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "common/common.h"
#include "sched/sched_int.h"

#define SCHEMA_VERSION 1

struct cairn_store {
	sqlite3 *db;
	char *path;
	int depth;              /* nesting of cairn_store_begin */
};

static const char *const kind_names[] = {"backup", "drill",  "scrub", "repair",
					 "prune",  "health", "check", "command"};
static const char *const status_names[] = {"running", "ok",     "failed",     "partial",
					   "killed",  "missed", "interrupted"};
static const char *const reason_names[] = {"scheduled", "catchup", "retry", "verify", "manual"};
static const char *const state_names[] = {"open", "acknowledged", "resolved"};

const char *cairn_job_kind_name(cairn_job_kind k)
{
	return (unsigned)k < CAIRN_JOB_KIND_COUNT ? kind_names[k] : NULL;
}

int cairn_job_kind_parse(const char *s, cairn_job_kind *out)
{
	for (int i = 0; s && i < CAIRN_JOB_KIND_COUNT; i++)
		if (!strcmp(s, kind_names[i])) {
			*out = (cairn_job_kind)i;
			return 0;
		}
	return cairn_error_set(-EINVAL, "job kind '%s' is unknown", s ? s : "");
}

const char *cairn_run_status_name(cairn_run_status st)
{
	return (unsigned)st < CAIRN_RUN_STATUS_COUNT ? status_names[st] : "?";
}

const char *cairn_incident_state_name(cairn_incident_state st)
{
	return (unsigned)st <= CAIRN_INC_RESOLVED ? state_names[st] : "?";
}

static int name_index(const char *s, const char *const *names, int n)
{
	for (int i = 0; s && i < n; i++)
		if (!strcmp(s, names[i]))
			return i;
	return 0;
}

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS jobs(id TEXT PRIMARY KEY, client TEXT NOT NULL,"
	" kind TEXT NOT NULL, first_seen INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS runs(id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" job TEXT NOT NULL, client TEXT NOT NULL, kind TEXT NOT NULL, reason TEXT NOT NULL,"
	" scheduled_for INTEGER NOT NULL, attempt INTEGER NOT NULL DEFAULT 1,"
	" parent_id INTEGER NOT NULL DEFAULT 0, started INTEGER NOT NULL DEFAULT 0,"
	" ended INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL CHECK(status IN ('running','ok',"
	"'failed','partial','killed','missed','interrupted')), exit_code INTEGER NOT NULL DEFAULT -1,"
	" pid INTEGER NOT NULL DEFAULT 0, duration_ms INTEGER NOT NULL DEFAULT 0,"
	" bytes INTEGER NOT NULL DEFAULT 0, files INTEGER NOT NULL DEFAULT 0,"
	" cpu_ms INTEGER NOT NULL DEFAULT 0, peak_rss_kb INTEGER NOT NULL DEFAULT 0,"
	" error TEXT NOT NULL DEFAULT '', UNIQUE(job, scheduled_for, attempt));"
	"CREATE INDEX IF NOT EXISTS runs_job ON runs(job, id);"
	"CREATE INDEX IF NOT EXISTS runs_status ON runs(status);"
	"CREATE TABLE IF NOT EXISTS incidents(id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" key TEXT NOT NULL, alertname TEXT NOT NULL, labels TEXT NOT NULL, summary TEXT NOT NULL,"
	" priority INTEGER NOT NULL, state TEXT NOT NULL CHECK(state IN ('open','acknowledged',"
	"'resolved')), opened INTEGER NOT NULL, acked INTEGER NOT NULL DEFAULT 0,"
	" resolved INTEGER NOT NULL DEFAULT 0, last_seen INTEGER NOT NULL DEFAULT 0,"
	" last_notified INTEGER NOT NULL DEFAULT 0, escalation INTEGER NOT NULL DEFAULT 0,"
	" notified INTEGER NOT NULL DEFAULT 0, acked_by TEXT NOT NULL DEFAULT '');"
	"CREATE UNIQUE INDEX IF NOT EXISTS incidents_current ON incidents(key)"
	" WHERE state != 'resolved';"
	"CREATE TABLE IF NOT EXISTS timeline(id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" incident_id INTEGER NOT NULL REFERENCES incidents(id), t INTEGER NOT NULL,"
	" text TEXT NOT NULL);"
	"CREATE INDEX IF NOT EXISTS timeline_incident ON timeline(incident_id, id);"
	"CREATE TABLE IF NOT EXISTS silences(id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" matchers TEXT NOT NULL, starts INTEGER NOT NULL, ends INTEGER NOT NULL,"
	" created_by TEXT NOT NULL, comment TEXT NOT NULL);";

static int dberr(cairn_store *s, int rc, const char *what)
{
	int code = rc == SQLITE_CONSTRAINT ? -EEXIST : rc == SQLITE_BUSY ? -EAGAIN : -EIO;
	return cairn_error_set(code, "store %s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

static int exec(cairn_store *s, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		int code = cairn_error_set(-EIO, "store %s: %s", s->path, msg ? msg : "error");
		sqlite3_free(msg);
		return code;
	}
	return 0;
}

static int prep(cairn_store *s, sqlite3_stmt **st, const char *sql)
{
	int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
	return rc == SQLITE_OK ? 0 : dberr(s, rc, "prepare");
}

/* Step a write statement to completion and finalize it. */
static int step_done(cairn_store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	int ret = rc == SQLITE_DONE ? 0 : dberr(s, rc, what);
	sqlite3_finalize(st);
	return ret;
}

int cairn_store_begin(cairn_store *s)
{
	if (s->depth++ > 0)
		return 0;
	int rc = exec(s, "BEGIN IMMEDIATE");
	if (rc < 0)
		s->depth = 0;
	return rc;
}

int cairn_store_commit(cairn_store *s)
{
	if (s->depth == 0 || --s->depth > 0)
		return 0;
	int rc = exec(s, "COMMIT");
	if (rc < 0)
		exec(s, "ROLLBACK");
	return rc;
}

void cairn_store_rollback(cairn_store *s)
{
	if (s->depth == 0)
		return;
	s->depth = 0;
	exec(s, "ROLLBACK");
}

/*
 * Open (creating if needed) the store at @p path. Sets WAL, synchronous=FULL,
 * busy_timeout 5 s, foreign keys; creates or checks the schema. Returns 0,
 * -EIO, or -EPROTO for a database of a newer schema.
 */
int cairn_store_open(cairn_store **out, const char *path)
{
	*out = NULL;
	cairn_store *s = cairn_xcalloc(1, sizeof(*s));
	s->path = cairn_xstrdup(path);
	int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK) {
		rc = cairn_error_set(-EIO, "store %s: %s", path,
				     s->db ? sqlite3_errmsg(s->db) : "cannot open");
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 5000);
	if ((rc = exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
			  " PRAGMA foreign_keys=ON;")) < 0)
		goto fail;
	sqlite3_stmt *st;
	if ((rc = prep(s, &st, "PRAGMA user_version")) < 0)
		goto fail;
	int ver = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	if (ver > SCHEMA_VERSION) {
		rc = cairn_error_set(-EPROTO, "store %s: schema version %d is newer than %d", path,
				     ver, SCHEMA_VERSION);
		goto fail;
	}
	if ((rc = cairn_store_begin(s)) < 0 || (rc = exec(s, schema)) < 0 ||
	    (rc = exec(s, "PRAGMA user_version=1")) < 0 || (rc = cairn_store_commit(s)) < 0) {
		cairn_store_rollback(s);
		goto fail;
	}
	*out = s;
	return 0;
fail:
	cairn_store_close(s);
	return rc;
}

/* Close the handle; everything committed is durable already. */
void cairn_store_close(cairn_store *s)
{
	if (!s)
		return;
	if (s->depth)
		cairn_store_rollback(s);
	sqlite3_close(s->db);
	free(s->path);
	free(s);
}

/* The SQLite handle, for read-only aggregate queries elsewhere in sched/ (metrics.c). */
sqlite3 *cairn_store__db(cairn_store *s)
{
	return s->db;
}

/* ---- jobs ---- */

int cairn_store_job_register(cairn_store *s, const char *job, const char *client,
			     cairn_job_kind kind, int64_t now, int64_t *first_seen_s)
{
	sqlite3_stmt *st;
	int rc;
	if ((rc = prep(s, &st, "INSERT OR IGNORE INTO jobs(id, client, kind, first_seen)"
			       " VALUES(?,?,?,?)")) < 0)
		return rc;
	sqlite3_bind_text(st, 1, job, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, client, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, cairn_job_kind_name(kind), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now);
	if ((rc = step_done(s, st, "register job")) < 0)
		return rc;
	if (!first_seen_s)
		return 0;
	if ((rc = prep(s, &st, "SELECT first_seen FROM jobs WHERE id=?")) < 0)
		return rc;
	sqlite3_bind_text(st, 1, job, -1, SQLITE_TRANSIENT);
	*first_seen_s = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : now;
	sqlite3_finalize(st);
	return 0;
}

/* ---- runs ---- */

#define RUN_COLS                                                                                   \
	"id, job, client, kind, reason, scheduled_for, attempt, parent_id, started, ended, status,"  \
	" exit_code, pid, duration_ms, bytes, files, cpu_ms, peak_rss_kb, error"

static void copy_text(char *dst, size_t len, sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	snprintf(dst, len, "%s", t ? (const char *)t : "");
}

static void read_run(sqlite3_stmt *st, cairn_run *r)
{
	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(st, 0);
	copy_text(r->job, sizeof(r->job), st, 1);
	copy_text(r->client, sizeof(r->client), st, 2);
	r->kind = (cairn_job_kind)name_index((const char *)sqlite3_column_text(st, 3), kind_names,
					     CAIRN_JOB_KIND_COUNT);
	r->reason = (cairn_run_reason)name_index((const char *)sqlite3_column_text(st, 4),
						 reason_names, 5);
	r->scheduled_for = sqlite3_column_int64(st, 5);
	r->attempt = sqlite3_column_int(st, 6);
	r->parent_id = sqlite3_column_int64(st, 7);
	r->started = sqlite3_column_int64(st, 8);
	r->ended = sqlite3_column_int64(st, 9);
	r->status = (cairn_run_status)name_index((const char *)sqlite3_column_text(st, 10),
						 status_names, CAIRN_RUN_STATUS_COUNT);
	r->exit_code = sqlite3_column_int(st, 11);
	r->pid = sqlite3_column_int64(st, 12);
	r->duration_ms = sqlite3_column_int64(st, 13);
	r->bytes = sqlite3_column_int64(st, 14);
	r->files = sqlite3_column_int64(st, 15);
	r->cpu_ms = sqlite3_column_int64(st, 16);
	r->peak_rss_kb = sqlite3_column_int64(st, 17);
	copy_text(r->error, sizeof(r->error), st, 18);
}

static int insert_run(cairn_store *s, const cairn_run *r, cairn_run_status status, int64_t *id)
{
	sqlite3_stmt *st;
	int rc;
	if (!r->job[0] || r->attempt < 1 || (unsigned)r->kind >= CAIRN_JOB_KIND_COUNT)
		return cairn_error_set(-EINVAL, "store: run without job, kind or attempt");
	if ((rc = prep(s, &st, "INSERT INTO runs(job, client, kind, reason, scheduled_for, attempt,"
			       " parent_id, started, ended, status, error) VALUES(?,?,?,?,?,?,?,?,?,?,?)")) < 0)
		return rc;
	sqlite3_bind_text(st, 1, r->job, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, r->client, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, kind_names[r->kind], -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, reason_names[(unsigned)r->reason < 5 ? r->reason : 0], -1,
			  SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, r->scheduled_for);
	sqlite3_bind_int(st, 6, r->attempt);
	sqlite3_bind_int64(st, 7, r->parent_id);
	sqlite3_bind_int64(st, 8, r->started);
	sqlite3_bind_int64(st, 9, status == CAIRN_RUN_RUNNING ? 0 : r->ended);
	sqlite3_bind_text(st, 10, status_names[status], -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 11, r->error, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_CONSTRAINT)
		return cairn_error_set(-EEXIST, "store: %s slot %lld attempt %d is already taken",
				       r->job, (long long)r->scheduled_for, r->attempt);
	if (rc != SQLITE_DONE)
		return dberr(s, rc, "insert run");
	if (id)
		*id = sqlite3_last_insert_rowid(s->db);
	return 0;
}

/*
 * Claim the slot (r->job, r->scheduled_for, r->attempt) as a 'running' run.
 * Durable on return. -EEXIST: the slot was claimed before (never start it).
 */
int cairn_store_run_begin(cairn_store *s, const cairn_run *r, int64_t *id)
{
	return insert_run(s, r, CAIRN_RUN_RUNNING, id);
}

int cairn_store_run_missed(cairn_store *s, const char *job, const char *client,
			   cairn_job_kind kind, int64_t slot, int64_t now)
{
	cairn_run r;
	memset(&r, 0, sizeof(r));
	snprintf(r.job, sizeof(r.job), "%s", job);
	snprintf(r.client, sizeof(r.client), "%s", client);
	r.kind = kind;
	r.reason = CAIRN_REASON_SCHEDULED;
	r.scheduled_for = slot;
	r.attempt = 1;
	r.ended = now;
	snprintf(r.error, sizeof(r.error), "slot missed (cairnd was not running)");
	return insert_run(s, &r, CAIRN_RUN_MISSED, NULL);
}

int cairn_store_run_set_pid(cairn_store *s, int64_t id, int64_t pid)
{
	sqlite3_stmt *st;
	int rc;
	if ((rc = prep(s, &st, "UPDATE runs SET pid=? WHERE id=?")) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, pid);
	sqlite3_bind_int64(st, 2, id);
	return step_done(s, st, "set pid");
}

/* Record how run @p id ended. Only a 'running' run can be finished (-ENOENT otherwise). */
int cairn_store_run_finish(cairn_store *s, int64_t id, const cairn_run *r)
{
	sqlite3_stmt *st;
	int rc;
	if (r->status == CAIRN_RUN_RUNNING || (unsigned)r->status >= CAIRN_RUN_STATUS_COUNT)
		return cairn_error_set(-EINVAL, "store: finishing run %lld as running",
				       (long long)id);
	if ((rc = prep(s, &st, "UPDATE runs SET status=?, ended=?, exit_code=?, duration_ms=?,"
			       " bytes=?, files=?, cpu_ms=?, peak_rss_kb=?, error=?"
			       " WHERE id=? AND status='running'")) < 0)
		return rc;
	sqlite3_bind_text(st, 1, status_names[r->status], -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, r->ended);
	sqlite3_bind_int(st, 3, r->exit_code);
	sqlite3_bind_int64(st, 4, r->duration_ms);
	sqlite3_bind_int64(st, 5, r->bytes);
	sqlite3_bind_int64(st, 6, r->files);
	sqlite3_bind_int64(st, 7, r->cpu_ms);
	sqlite3_bind_int64(st, 8, r->peak_rss_kb);
	sqlite3_bind_text(st, 9, r->error, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 10, id);
	if ((rc = step_done(s, st, "finish run")) < 0)
		return rc;
	if (sqlite3_changes(s->db) != 1)
		return cairn_error_set(-ENOENT, "store: no running run %lld", (long long)id);
	return 0;
}

int cairn_store_run_get(cairn_store *s, int64_t id, cairn_run *out)
{
	sqlite3_stmt *st;
	int rc;
	if ((rc = prep(s, &st, "SELECT " RUN_COLS " FROM runs WHERE id=?")) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		read_run(st, out);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? cairn_error_set(-ENOENT, "store: no run %lld", (long long)id)
				 : dberr(s, rc, "get run");
}

int cairn_store_runs(cairn_store *s, const cairn_run_query *q, cairn_run **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	sqlite3_stmt *st;
	int rc;
	if ((rc = prep(s, &st, "SELECT " RUN_COLS " FROM runs WHERE (?1 IS NULL OR job=?1)"
			       " AND (?2 IS NULL OR client=?2) AND (?3 IS NULL OR status=?3)"
			       " AND (?4=0 OR scheduled_for>=?4 OR started>=?4)"
			       " AND (?5=0 OR id<?5) ORDER BY id DESC LIMIT ?6")) < 0)
		return rc;
	if (q->job)
		sqlite3_bind_text(st, 1, q->job, -1, SQLITE_TRANSIENT);
	if (q->client)
		sqlite3_bind_text(st, 2, q->client, -1, SQLITE_TRANSIENT);
	if (q->status >= 0 && q->status < CAIRN_RUN_STATUS_COUNT)
		sqlite3_bind_text(st, 3, status_names[q->status], -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, q->since);
	sqlite3_bind_int64(st, 5, q->before_id);
	size_t limit = q->limit ? q->limit : 100;
	sqlite3_bind_int64(st, 6, (sqlite3_int64)limit);
	cairn_run *v = NULL;
	size_t cnt = 0, cap = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			v = cairn_xrealloc(v, cap * sizeof(*v));
		}
		read_run(st, &v[cnt++]);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(v);
		return dberr(s, rc, "query runs");
	}
	*out = v;
	*n = cnt;
	return 0;
}

int cairn_store__recent(cairn_store *s, const char *job, size_t limit, cairn_run **out, size_t *n)
{
	cairn_run_query q = CAIRN_RUN_QUERY_INIT;
	q.job = job;
	q.limit = limit;
	return cairn_store_runs(s, &q, out, n);
}

static int pid_alive(int64_t pid, void *ud)
{
	(void)ud;
	if (pid <= 0)
		return 0;
	return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/*
 * Mark 'running' runs whose process is gone as 'interrupted'. Safe to call
 * periodically (cairnd's own live children are skipped by @p alive).
 */
int cairn_store_recover(cairn_store *s, int64_t now, int (*alive)(int64_t pid, void *ud),
			void *ud, size_t *n)
{
	cairn_run_query q = CAIRN_RUN_QUERY_INIT;
	q.status = CAIRN_RUN_RUNNING;
	q.limit = 100000;
	cairn_run *v;
	size_t cnt;
	int rc;
	if (n)
		*n = 0;
	if (!alive)
		alive = pid_alive;
	if ((rc = cairn_store_runs(s, &q, &v, &cnt)) < 0)
		return rc;
	if ((rc = cairn_store_begin(s)) < 0)
		goto done;
	for (size_t i = 0; i < cnt; i++) {
		if (alive(v[i].pid, ud))
			continue;
		cairn_run r = v[i];
		r.status = CAIRN_RUN_INTERRUPTED;
		r.ended = now;
		r.duration_ms = r.started && now > r.started ? (now - r.started) * 1000 : 0;
		snprintf(r.error, sizeof(r.error), "interrupted: cairnd stopped while the job ran "
						   "(pid %lld gone)", (long long)r.pid);
		if ((rc = cairn_store_run_finish(s, r.id, &r)) < 0) {
			cairn_store_rollback(s);
			goto done;
		}
		if (n)
			(*n)++;
	}
	rc = cairn_store_commit(s);
done:
	free(v);
	return rc;
}

/* ---- incidents ---- */

#define INC_COLS                                                                                   \
	"id, key, alertname, labels, summary, priority, state, opened, acked, resolved,"            \
	" last_seen, last_notified, escalation, notified, acked_by"

static void read_incident(sqlite3_stmt *st, cairn_incident *i)
{
	memset(i, 0, sizeof(*i));
	i->id = sqlite3_column_int64(st, 0);
	copy_text(i->key, sizeof(i->key), st, 1);
	copy_text(i->alertname, sizeof(i->alertname), st, 2);
	copy_text(i->labels, sizeof(i->labels), st, 3);
	copy_text(i->summary, sizeof(i->summary), st, 4);
	i->priority = sqlite3_column_int(st, 5);
	i->state = (cairn_incident_state)name_index((const char *)sqlite3_column_text(st, 6),
						    state_names, 3);
	i->opened = sqlite3_column_int64(st, 7);
	i->acked = sqlite3_column_int64(st, 8);
	i->resolved = sqlite3_column_int64(st, 9);
	i->last_seen = sqlite3_column_int64(st, 10);
	i->last_notified = sqlite3_column_int64(st, 11);
	i->escalation = sqlite3_column_int(st, 12);
	i->notified = sqlite3_column_int(st, 13);
	copy_text(i->acked_by, sizeof(i->acked_by), st, 14);
}

static int get_incident(cairn_store *s, const char *sql, const char *key, int64_t id,
			cairn_incident *out)
{
	sqlite3_stmt *st;
	int rc;
	if ((rc = prep(s, &st, sql)) < 0)
		return rc;
	if (key)
		sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		read_incident(st, out);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE)
		return cairn_error_set(-ENOENT, "store: no incident %s", key ? key : "with that id");
	return dberr(s, rc, "get incident");
}

int cairn_store_incident_current(cairn_store *s, const char *key, cairn_incident *out)
{
	return get_incident(s, "SELECT " INC_COLS " FROM incidents WHERE key=? AND"
			       " state!='resolved'", key, 0, out);
}

int cairn_store_incident_get(cairn_store *s, int64_t id, cairn_incident *out)
{
	return get_incident(s, "SELECT " INC_COLS " FROM incidents WHERE id=?", NULL, id, out);
}

/* Bind the mutable columns of @p i to parameters 1..14. */
static void bind_incident(sqlite3_stmt *st, const cairn_incident *i)
{
	sqlite3_bind_text(st, 1, i->key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, i->alertname, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, i->labels, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 4, i->summary, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 5, i->priority);
	sqlite3_bind_text(st, 6, cairn_incident_state_name(i->state), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, i->opened);
	sqlite3_bind_int64(st, 8, i->acked);
	sqlite3_bind_int64(st, 9, i->resolved);
	sqlite3_bind_int64(st, 10, i->last_seen);
	sqlite3_bind_int64(st, 11, i->last_notified);
	sqlite3_bind_int(st, 12, i->escalation);
	sqlite3_bind_int(st, 13, i->notified);
	sqlite3_bind_text(st, 14, i->acked_by, -1, SQLITE_TRANSIENT);
}

int cairn_store_incident_insert(cairn_store *s, cairn_incident *i)
{
	sqlite3_stmt *st;
	int rc;
	if ((rc = prep(s, &st, "INSERT INTO incidents(key, alertname, labels, summary, priority,"
			       " state, opened, acked, resolved, last_seen, last_notified, escalation,"
			       " notified, acked_by) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)")) < 0)
		return rc;
	bind_incident(st, i);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_CONSTRAINT)
		return cairn_error_set(-EEXIST, "store: incident %s is already open", i->key);
	if (rc != SQLITE_DONE)
		return dberr(s, rc, "insert incident");
	i->id = sqlite3_last_insert_rowid(s->db);
	return 0;
}

int cairn_store_incident_update(cairn_store *s, const cairn_incident *i)
{
	sqlite3_stmt *st;
	int rc;
	if ((rc = prep(s, &st, "UPDATE incidents SET key=?1, alertname=?2, labels=?3, summary=?4,"
			       " priority=?5, state=?6, opened=?7, acked=?8, resolved=?9, last_seen=?10,"
			       " last_notified=?11, escalation=?12, notified=?13, acked_by=?14"
			       " WHERE id=?15")) < 0)
		return rc;
	bind_incident(st, i);
	sqlite3_bind_int64(st, 15, i->id);
	if ((rc = step_done(s, st, "update incident")) < 0)
		return rc;
	return sqlite3_changes(s->db) == 1
		       ? 0
		       : cairn_error_set(-ENOENT, "store: no incident %lld", (long long)i->id);
}

int cairn_store_incidents(cairn_store *s, int state, size_t limit, cairn_incident **out,
			  size_t *n)
{
	*out = NULL;
	*n = 0;
	sqlite3_stmt *st;
	int rc;
	if ((rc = prep(s, &st, "SELECT " INC_COLS " FROM incidents WHERE (?1=-1) OR"
			       " (?1=-2 AND state!='resolved') OR state=?2 ORDER BY id DESC"
			       " LIMIT ?3")) < 0)
		return rc;
	sqlite3_bind_int(st, 1, state < 0 ? state : 0);
	sqlite3_bind_text(st, 2, state >= 0 ? cairn_incident_state_name(state) : "", -1,
			  SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, limit ? (sqlite3_int64)limit : 100);
	cairn_incident *v = NULL;
	size_t cnt = 0, cap = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			v = cairn_xrealloc(v, cap * sizeof(*v));
		}
		read_incident(st, &v[cnt++]);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(v);
		return dberr(s, rc, "query incidents");
	}
	*out = v;
	*n = cnt;
	return 0;
}

int cairn_store_timeline_add(cairn_store *s, int64_t incident_id, int64_t t, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	sqlite3_stmt *st;
	int rc;
	if ((rc = prep(s, &st, "INSERT INTO timeline(incident_id, t, text) VALUES(?,?,?)")) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, incident_id);
	sqlite3_bind_int64(st, 2, t);
	sqlite3_bind_text(st, 3, text, -1, SQLITE_TRANSIENT);
	return step_done(s, st, "timeline");
}

int cairn_store_timeline(cairn_store *s, int64_t incident_id, cairn_timeline_entry **out,
			 size_t *n)
{
	*out = NULL;
	*n = 0;
	sqlite3_stmt *st;
	int rc;
	if ((rc = prep(s, &st, "SELECT incident_id, t, text FROM timeline WHERE incident_id=?"
			       " ORDER BY id")) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, incident_id);
	cairn_timeline_entry *v = NULL;
	size_t cnt = 0, cap = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			v = cairn_xrealloc(v, cap * sizeof(*v));
		}
		v[cnt].incident_id = sqlite3_column_int64(st, 0);
		v[cnt].t = sqlite3_column_int64(st, 1);
		copy_text(v[cnt].text, sizeof(v[cnt].text), st, 2);
		cnt++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(v);
		return dberr(s, rc, "timeline");
	}
	*out = v;
	*n = cnt;
	return 0;
}

/* ---- silences ---- */

/* "name=value[,name=value...]" with known label names. */
static int matchers_valid(const char *m)
{
	static const char *const names[] = {"client", "job", "target", "site", "alertname",
					    "priority"};
	if (!m || !*m)
		return 0;
	const char *p = m;
	while (*p) {
		const char *eq = strchr(p, '='), *comma = strchr(p, ',');
		if (!eq || (comma && comma < eq) || eq == p)
			return 0;
		size_t nl = (size_t)(eq - p);
		int known = 0;
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			known |= strlen(names[i]) == nl && !strncmp(p, names[i], nl);
		if (!known || eq[1] == ',' || !eq[1])
			return 0;
		p = comma ? comma + 1 : eq + strlen(eq);
		if (comma && !*p)
			return 0;
	}
	return 1;
}

int cairn_store_silence_add(cairn_store *s, cairn_silence *sil)
{
	if (!matchers_valid(sil->matchers))
		return cairn_error_set(-EINVAL, "silence: matchers '%s' are not name=value[,...] "
						"over client, job, target, site, alertname, priority",
				       sil->matchers);
	if (sil->ends <= sil->starts)
		return cairn_error_set(-EINVAL, "silence: ends before it starts");
	sqlite3_stmt *st;
	int rc;
	if ((rc = prep(s, &st, "INSERT INTO silences(matchers, starts, ends, created_by, comment)"
			       " VALUES(?,?,?,?,?)")) < 0)
		return rc;
	sqlite3_bind_text(st, 1, sil->matchers, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, sil->starts);
	sqlite3_bind_int64(st, 3, sil->ends);
	sqlite3_bind_text(st, 4, sil->created_by, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 5, sil->comment, -1, SQLITE_TRANSIENT);
	if ((rc = step_done(s, st, "add silence")) < 0)
		return rc;
	sil->id = sqlite3_last_insert_rowid(s->db);
	return 0;
}

int cairn_store_silence_expire(cairn_store *s, int64_t id, int64_t now)
{
	sqlite3_stmt *st;
	int rc;
	if ((rc = prep(s, &st, "UPDATE silences SET ends=?2 WHERE id=?1 AND ends>?2")) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now);
	if ((rc = step_done(s, st, "expire silence")) < 0)
		return rc;
	return sqlite3_changes(s->db) == 1
		       ? 0
		       : cairn_error_set(-ENOENT, "no active silence %lld", (long long)id);
}

int cairn_store_silences(cairn_store *s, int64_t now, cairn_silence **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	sqlite3_stmt *st;
	int rc;
	if ((rc = prep(s, &st, "SELECT id, matchers, starts, ends, created_by, comment FROM"
			       " silences WHERE ?1<0 OR (starts<=?1 AND ?1<ends) ORDER BY id")) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, now);
	cairn_silence *v = NULL;
	size_t cnt = 0, cap = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (cnt == cap) {
			cap = cap ? cap * 2 : 8;
			v = cairn_xrealloc(v, cap * sizeof(*v));
		}
		cairn_silence *x = &v[cnt++];
		memset(x, 0, sizeof(*x));
		x->id = sqlite3_column_int64(st, 0);
		copy_text(x->matchers, sizeof(x->matchers), st, 1);
		x->starts = sqlite3_column_int64(st, 2);
		x->ends = sqlite3_column_int64(st, 3);
		copy_text(x->created_by, sizeof(x->created_by), st, 4);
		copy_text(x->comment, sizeof(x->comment), st, 5);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(v);
		return dberr(s, rc, "silences");
	}
	*out = v;
	*n = cnt;
	return 0;
}
