/*
 * metrics.c - cairnd's /metrics: the Prometheus text exposition format
 * (0.0.4) computed from the store with a few aggregate queries.
 *
 * Names follow Prometheus conventions (base units: seconds, bytes; counters
 * end in _total) so `promtool check metrics` is clean; each family has
 * HELP and TYPE once and its samples together. Per-job gauges exist once a
 * job has a finished run; the list is in docs/SCHEDULER.md.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "engine/engine.h"
#include "sched/sched_int.h"

/* A label value, escaped as the format wants (\\, \", \n). */
static void label(cairn_buf *b, const char *name, const char *v)
{
	cairn_buf__printf(b, "%s=\"", name);
	for (const char *p = v ? v : ""; *p; p++) {
		if (*p == '\\' || *p == '"')
			cairn_buf__printf(b, "\\%c", *p);
		else if (*p == '\n')
			cairn_buf__printf(b, "\\n");
		else
			cairn_buf_put_u8(b, (uint8_t)*p);
	}
	cairn_buf_put_u8(b, '"');
}

static void family(cairn_buf *b, const char *name, const char *type, const char *help)
{
	cairn_buf__printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static const char *col(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? (const char *)t : "";
}

static int query(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK)
		return cairn_error_set(-EIO, "metrics: %s", sqlite3_errmsg(db));
	return 0;
}

typedef struct last_run {
	char job[CAIRN_NAME_MAX], client[CAIRN_NAME_MAX], kind[16];
	int ok;
	int64_t ended, duration_ms, bytes, files, cpu_ms, rss_kb;
} last_run;

/* The latest finished run of every job (oldest job name first). */
static int last_runs(sqlite3 *db, last_run **out, size_t *n)
{
	sqlite3_stmt *st;
	size_t cap = 0;
	int rc;
	*out = NULL;
	*n = 0;
	if ((rc = query(db, "SELECT r.job, r.client, r.kind, r.status, r.ended, r.duration_ms,"
			    " r.bytes, r.files, r.cpu_ms, r.peak_rss_kb FROM runs r JOIN"
			    " (SELECT max(id) AS id FROM runs WHERE status NOT IN"
			    " ('running','missed') GROUP BY job) l ON r.id = l.id ORDER BY r.job",
			&st)) < 0)
		return rc;
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			*out = cairn_xrealloc(*out, cap * sizeof(**out));
		}
		last_run *l = &(*out)[(*n)++];
		snprintf(l->job, sizeof(l->job), "%s", col(st, 0));
		snprintf(l->client, sizeof(l->client), "%s", col(st, 1));
		snprintf(l->kind, sizeof(l->kind), "%s", col(st, 2));
		l->ok = !strcmp(col(st, 3), "ok");
		l->ended = sqlite3_column_int64(st, 4);
		l->duration_ms = sqlite3_column_int64(st, 5);
		l->bytes = sqlite3_column_int64(st, 6);
		l->files = sqlite3_column_int64(st, 7);
		l->cpu_ms = sqlite3_column_int64(st, 8);
		l->rss_kb = sqlite3_column_int64(st, 9);
	}
	sqlite3_finalize(st);
	return 0;
}

static void job_labels(cairn_buf *b, const char *job, const char *client, const char *kind)
{
	cairn_buf_put_u8(b, '{');
	label(b, "job", job);
	cairn_buf_put_u8(b, ',');
	label(b, "client", client);
	cairn_buf_put_u8(b, ',');
	label(b, "kind", kind);
	cairn_buf_put_u8(b, '}');
}

enum { F_END, F_DUR, F_OK, F_BYTES, F_FILES, F_CPU, F_RSS, F_COUNT };

static void last_run_families(cairn_buf *b, const last_run *v, size_t n)
{
	static const struct {
		const char *name, *help;
	} fam[F_COUNT] = {
	    {"cairn_job_last_run_timestamp_seconds", "End of the job's latest finished run."},
	    {"cairn_job_last_run_duration_seconds", "Duration of the job's latest finished run."},
	    {"cairn_job_last_run_success", "1 if the job's latest finished run succeeded, else 0."},
	    {"cairn_job_last_run_bytes", "Bytes of the job's latest finished run (backup: "
					 "source size; drill, check, scrub: bytes verified)."},
	    {"cairn_job_last_run_files", "Files of the job's latest finished run."},
	    {"cairn_job_last_run_cpu_seconds", "CPU time (user + system) of the job's latest "
					       "finished run."},
	    {"cairn_job_last_run_peak_rss_bytes", "Peak resident memory of the job's latest "
						  "finished run."},
	};
	for (int f = 0; f < F_COUNT; f++) {
		family(b, fam[f].name, "gauge", fam[f].help);
		for (size_t i = 0; i < n; i++) {
			const last_run *l = &v[i];
			cairn_buf__printf(b, "%s", fam[f].name);
			job_labels(b, l->job, l->client, l->kind);
			switch (f) {
			case F_END: cairn_buf__printf(b, " %lld\n", (long long)l->ended); break;
			case F_DUR:
				cairn_buf__printf(b, " %.3f\n", (double)l->duration_ms / 1000);
				break;
			case F_OK: cairn_buf__printf(b, " %d\n", l->ok); break;
			case F_BYTES: cairn_buf__printf(b, " %lld\n", (long long)l->bytes); break;
			case F_FILES: cairn_buf__printf(b, " %lld\n", (long long)l->files); break;
			case F_CPU:
				cairn_buf__printf(b, " %.3f\n", (double)l->cpu_ms / 1000);
				break;
			default:
				cairn_buf__printf(b, " %lld\n", (long long)l->rss_kb * 1024);
				break;
			}
		}
	}
}

/* Families straight from one query: label columns then one numeric value column. */
static int simple_family(cairn_buf *b, sqlite3 *db, const char *name, const char *type,
			 const char *help, const char *sql, const char *const *labels,
			 int nlabels)
{
	sqlite3_stmt *st;
	int rc = query(db, sql, &st);
	if (rc < 0)
		return rc;
	family(b, name, type, help);
	while (sqlite3_step(st) == SQLITE_ROW) {
		cairn_buf__printf(b, "%s{", name);
		for (int i = 0; i < nlabels; i++) {
			if (i)
				cairn_buf_put_u8(b, ',');
			label(b, labels[i], col(st, i));
		}
		cairn_buf__printf(b, "} %lld\n", (long long)sqlite3_column_int64(st, nlabels));
	}
	sqlite3_finalize(st);
	return 0;
}

static int incidents(cairn_buf *b, sqlite3 *db)
{
	int64_t cnt[2][5] = {{0}};
	sqlite3_stmt *st;
	int rc = query(db, "SELECT state, priority, count(*) FROM incidents WHERE state != "
			   "'resolved' GROUP BY state, priority", &st);
	if (rc < 0)
		return rc;
	while (sqlite3_step(st) == SQLITE_ROW) {
		int acked = strcmp(col(st, 0), "open") != 0, p = sqlite3_column_int(st, 1);
		if (p >= 1 && p <= 4)
			cnt[acked][p] += sqlite3_column_int64(st, 2);
	}
	sqlite3_finalize(st);
	family(b, "cairn_incidents", "gauge", "Unresolved incidents by state and priority.");
	for (int s = 0; s < 2; s++)
		for (int p = 1; p <= 4; p++)
			cairn_buf__printf(b, "cairn_incidents{state=\"%s\",priority=\"P%d\"} "
					  "%lld\n", s ? "acknowledged" : "open", p,
					  (long long)cnt[s][p]);
	return 0;
}

/* See sched.h. */
int cairn_metrics_render(cairn_store *s, const cairn_job *jobs, size_t njobs, int64_t now,
			 size_t running, char **out)
{
	sqlite3 *db = cairn_store__db(s);
	cairn_buf b = CAIRN_BUF_INIT;
	last_run *lr = NULL;
	size_t nlr = 0;
	int rc;
	static const char *const l_jcks[] = {"job", "client", "kind", "status"};
	static const char *const l_client[] = {"client"};
	*out = NULL;
	family(&b, "cairn_build_info", "gauge", "cairnd's version.");
	cairn_buf__printf(&b, "cairn_build_info{version=\"%s\"} 1\n", CAIRN_VERSION_STRING);
	family(&b, "cairn_jobs_running", "gauge", "Jobs running now.");
	cairn_buf__printf(&b, "cairn_jobs_running %zu\n", running);
	family(&b, "cairn_job_next_run_timestamp_seconds", "gauge",
	       "Next scheduled slot of the job.");
	for (size_t i = 0; i < njobs; i++) {
		int64_t next;
		if (cairn_cron_next(jobs[i].cron, now, &next) < 0)
			continue;
		cairn_buf__printf(&b, "cairn_job_next_run_timestamp_seconds");
		job_labels(&b, jobs[i].id, jobs[i].client, cairn_job_kind_name(jobs[i].kind));
		cairn_buf__printf(&b, " %lld\n", (long long)next);
	}
	if ((rc = simple_family(&b, db, "cairn_runs_total", "counter",
				"Finished (and missed) runs by job and status.",
				"SELECT job, client, kind, status, count(*) FROM runs WHERE"
				" status != 'running' GROUP BY job, client, kind, status"
				" ORDER BY job, status",
				l_jcks, 4)) < 0 ||
	    (rc = simple_family(&b, db, "cairn_job_last_success_timestamp_seconds", "gauge",
				"End of the job's latest successful run.",
				"SELECT job, client, kind, max(ended) FROM runs WHERE status = 'ok'"
				" GROUP BY job ORDER BY job", l_jcks, 3)) < 0 ||
	    (rc = simple_family(&b, db, "cairn_client_last_backup_success_timestamp_seconds",
				"gauge", "End of the client's latest successful backup.",
				"SELECT client, max(ended) FROM runs WHERE status = 'ok' AND kind ="
				" 'backup' GROUP BY client ORDER BY client", l_client, 1)) < 0 ||
	    (rc = simple_family(&b, db, "cairn_client_last_drill_success_timestamp_seconds",
				"gauge", "End of the client's latest passing restore drill.",
				"SELECT client, max(ended) FROM runs WHERE status = 'ok' AND kind ="
				" 'drill' GROUP BY client ORDER BY client", l_client, 1)) < 0)
		goto done;
	/* drill age: now - that, so alert rules need no time() arithmetic */
	char sql[256];
	snprintf(sql, sizeof(sql), "SELECT client, %lld - max(ended) FROM runs WHERE status = 'ok'"
		 " AND kind = 'drill' GROUP BY client ORDER BY client", (long long)now);
	if ((rc = simple_family(&b, db, "cairn_client_drill_age_seconds", "gauge",
				"Seconds since the client's latest passing restore drill.", sql,
				l_client, 1)) < 0 ||
	    (rc = last_runs(db, &lr, &nlr)) < 0)
		goto done;
	last_run_families(&b, lr, nlr);
	family(&b, "cairn_target_healthy", "gauge",
	       "1 if the latest health check of the client's repository succeeded, else 0.");
	for (size_t i = 0; i < njobs; i++) {
		if (jobs[i].kind != CAIRN_JOB_HEALTH)
			continue;
		for (size_t k = 0; k < nlr; k++) {
			if (strcmp(lr[k].job, jobs[i].id))
				continue;
			cairn_buf__printf(&b, "cairn_target_healthy{");
			label(&b, "client", jobs[i].client);
			cairn_buf_put_u8(&b, ',');
			label(&b, "target", jobs[i].repository);
			cairn_buf_put_u8(&b, ',');
			label(&b, "site", jobs[i].site);
			cairn_buf__printf(&b, "} %d\n", lr[k].ok);
		}
	}
	if ((rc = incidents(&b, db)) < 0)
		goto done;
	*out = cairn_xstrdup(cairn_buf__cstr(&b));
done:
	free(lr);
	cairn_buf_free(&b);
	return rc;
}
