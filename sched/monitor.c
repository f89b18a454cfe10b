/*
 * monitor.c - monitors over the run history: failed run, late or missed
 * run, running too long, abnormal duration, error rate, drill overdue,
 * target unhealthy, target low on space (see sched.h and docs/SCHEDULER.md).
 *
 * DESIGN: pure functions of the store's rows and `now` (no clock reads), so
 * tests replay any history with a fake clock. Every applicable monitor
 * reports an alert per job on every evaluation, firing or clear; the
 * incident layer opens on firing and auto-resolves on clear. Keys are
 * "<alertname>/<job id>", one incident per condition and job.
 *
 * Priority = impact x urgency (1 high .. 3 low each): P = impact + urgency
 * - 1 clamped to 1..4. Impact 1 = data at risk (a backup failing or late
 * with no good backup within two periods; a target unhealthy); 2 = a
 * backup failing with a recent good one, a drill failing or overdue;
 * 3 = the rest. Urgency 1 = retries exhausted; 2 = still retrying, late,
 * running too long; 3 = statistics (duration anomaly).
 *
 * Targets: TargetUnhealthy fires while the latest finished run of a scrub or
 * health job failed (impact 1; urgency 1 once its retries are exhausted,
 * else 2: P1 / P2) and clears when a later run succeeds. TargetLowSpace
 * (evaluated once per client, on its backup job) fires for each local
 * directory target (url "/..." or "local:/...") of the client's repository
 * whose statvfs free space (f_bavail) is below low_space_percent of its size:
 * impact 2 (backups still succeed, the next ones may not), urgency 1 (space
 * does not come back by itself, retries do not help): P2. It clears when
 * space is back above the threshold. TargetLagging (also once per client, on
 * its backup job) fires when the repository has a repair `journal` (replica
 * set) that is non-empty and whose oldest line ("<unix time> <what> <member>
 * <object>", see targets/replica.c) is older than `now - lag_grace_s`: some
 * member has been missing copies for longer than the grace, so the data has
 * fewer copies than the policy asks. Impact 2 (copies below policy, still one
 * good copy), urgency 2 (`cairn repair` fixes it): P3. The summary names the
 * members in the journal (third field). It clears when the journal is empty
 * or missing (`cairn repair` truncates it) or unreadable. statvfs and reading
 * the journal are the only system calls here; there is no clock read.
 *
 * Duration anomaly: over the last `anomaly_window` successful runs before
 * the latest one (at least `anomaly_min_history`), median m and MAD (median
 * absolute deviation, unscaled); the latest successful run (or a run still
 * going) is anomalous above m + max(k * MAD, floor_ms, m / 4). The floor
 * and the m / 4 term keep very regular jobs (MAD ~ 0) from alerting on
 * noise; MAD ignores a few outliers in the history itself.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "sched/sched_int.h"

#define HISTORY 200

void cairn_monitor_opts_default(cairn_monitor_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->anomaly_min_history = 5;
	o->anomaly_window = 20;
	o->anomaly_k = 5;
	o->anomaly_floor_ms = 60000;
	o->error_window_s = 7 * 86400;
	o->error_rate = 0.5;
	o->error_min_runs = 4;
	o->retry_max_attempts = 3;
	o->low_space_percent = 10;
	o->lag_grace_s = 3600;
	o->cfg = NULL;
}

void cairn_monitor_opts_from_config(const cairn_config *cfg, cairn_monitor_opts *o)
{
	cairn_monitor_opts_default(o);
	if (!cfg)
		return;
	const cairn_cfg_defaults *d = &cfg->defaults;
	if (d->anomaly_min_history)
		o->anomaly_min_history = d->anomaly_min_history;
	if (d->anomaly_window)
		o->anomaly_window = d->anomaly_window;
	if (d->anomaly_k > 0)
		o->anomaly_k = d->anomaly_k;
	if (d->anomaly_floor_ms)
		o->anomaly_floor_ms = d->anomaly_floor_ms;
	if (d->error_window_s)
		o->error_window_s = d->error_window_s;
	if (d->error_rate > 0)
		o->error_rate = d->error_rate;
	if (d->error_min_runs)
		o->error_min_runs = d->error_min_runs;
	if (d->retry_max_attempts)
		o->retry_max_attempts = d->retry_max_attempts;
	if (d->timezone) /* the cairnd defaults were set: 0 means off */
		o->low_space_percent = d->low_space_percent;
	if (d->lag_grace_s > 0)
		o->lag_grace_s = d->lag_grace_s;
	o->cfg = cfg;
}

int cairn_priority(int impact, int urgency)
{
	int p = impact + urgency - 1;
	return p < 1 ? 1 : p > 4 ? 4 : p;
}


/* Format an alert's summary; a long one is cut to the field's size on purpose. */
static void set_summary(cairn_alert *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_summary(cairn_alert *a, const char *fmt, ...)
{
	char tmp[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	size_t len = strlen(tmp) < sizeof(a->summary) - 1 ? strlen(tmp) : sizeof(a->summary) - 1;
	memcpy(a->summary, tmp, len);
	a->summary[len] = 0;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static double median_sorted(const int64_t *v, size_t n)
{
	return n % 2 ? (double)v[n / 2] : ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2;
}

/* Median and MAD of v[0..n) (n >= 1); reorders v. */
void cairn_median_mad(int64_t *v, size_t n, double *median, double *mad)
{
	qsort(v, n, sizeof(*v), cmp_i64);
	double m = median_sorted(v, n);
	for (size_t i = 0; i < n; i++)
		v[i] = (int64_t)llround(fabs((double)v[i] - m));
	qsort(v, n, sizeof(*v), cmp_i64);
	*median = m;
	*mad = median_sorted(v, n);
}

typedef struct alerts {
	cairn_alert *v;
	size_t n, cap;
} alerts;

/* Append an alert for job @p j; returns it for the caller to fill summary. */
static cairn_alert *emit(alerts *al, const cairn_job *j, const char *name, int firing, int impact,
			 int urgency)
{
	if (al->n == al->cap) {
		al->cap = al->cap ? al->cap * 2 : 16;
		al->v = cairn_xrealloc(al->v, al->cap * sizeof(*al->v));
	}
	cairn_alert *a = &al->v[al->n++];
	memset(a, 0, sizeof(*a));
	snprintf(a->key, sizeof(a->key), "%s/%s", name, j->id);
	snprintf(a->alertname, sizeof(a->alertname), "%s", name);
	snprintf(a->client, sizeof(a->client), "%s", j->client);
	snprintf(a->job, sizeof(a->job), "%s", j->id);
	snprintf(a->target, sizeof(a->target), "%s", j->repository);
	snprintf(a->site, sizeof(a->site), "%s", j->site);
	a->firing = firing;
	a->impact = impact;
	a->urgency = urgency;
	a->priority = cairn_priority(impact, urgency);
	return a;
}

static int is_failure(cairn_run_status st)
{
	return st == CAIRN_RUN_FAILED || st == CAIRN_RUN_KILLED || st == CAIRN_RUN_INTERRUPTED;
}

/* Latest successful run's end time, 0 if none in @p v. */
static int64_t last_ok(const cairn_run *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].status == CAIRN_RUN_OK)
			return v[i].ended;
	return 0;
}

static const char *fail_name(cairn_job_kind k)
{
	switch (k) {
	case CAIRN_JOB_BACKUP: return "BackupFailed";
	case CAIRN_JOB_DRILL: return "DrillFailed";
	case CAIRN_JOB_HEALTH:
	case CAIRN_JOB_SCRUB: return "TargetUnhealthy";
	default: return "RunFailed";
	}
}

static void mon_failed(alerts *al, const cairn_job *j, const cairn_run *v, size_t n,
		       const cairn_monitor_opts *o, int64_t now)
{
	const cairn_run *last = NULL;
	for (size_t i = 0; i < n && !last; i++)
		if (v[i].status != CAIRN_RUN_RUNNING && v[i].status != CAIRN_RUN_MISSED)
			last = &v[i];
	int firing = last && is_failure(last->status);
	int64_t ok = last_ok(v, n), period = j->period_s > 0 ? j->period_s : 86400;
	int impact = 3;
	if (j->kind == CAIRN_JOB_BACKUP)
		impact = !ok || now - ok > 2 * period ? 1 : 2;
	else if (j->kind == CAIRN_JOB_HEALTH || j->kind == CAIRN_JOB_SCRUB)
		impact = 1;
	else if (j->kind == CAIRN_JOB_DRILL)
		impact = 2;
	int urgency = last && (unsigned)last->attempt >= o->retry_max_attempts ? 1 : 2;
	cairn_alert *a = emit(al, j, fail_name(j->kind), firing, impact, urgency);
	const cairn_cfg_repo *repo = o->cfg ? cairn_config_repo(o->cfg, j->repository) : NULL;
	int target_job = j->kind == CAIRN_JOB_HEALTH || j->kind == CAIRN_JOB_SCRUB;
	/* the target, when known: the repository's only target (else the repository) */
	if (target_job && repo && repo->ntargets == 1 && repo->targets[0].url)
		snprintf(a->target, sizeof(a->target), "%s", repo->targets[0].url);
	if (!firing)
		return;
	a->run_id = last->id;
	if (target_job) {
		set_summary(a, "target %.120s of %s: %s %s (attempt %d, exit %d): %.250s", a->target,
			    j->client, cairn_job_kind_name(j->kind),
			    cairn_run_status_name(last->status), last->attempt, last->exit_code,
			    last->error);
		return;
	}
	snprintf(a->summary, sizeof(a->summary), "%s %s (attempt %d, exit %d): %.300s%s",
		 j->id, cairn_run_status_name(last->status), last->attempt, last->exit_code,
		 last->error, impact == 1 && j->kind == CAIRN_JOB_BACKUP
				      ? "; no good backup within two periods" : "");
}

/* The directory of a local target url ("/path" or "local:/path"), else NULL. */
static const char *local_dir(const char *url)
{
	if (!url)
		return NULL;
	if (url[0] == '/')
		return url;
	if (!strncmp(url, "local:", 6) && url[6] == '/')
		return url + 6;
	return NULL;
}

/* TargetLowSpace for each local target of the client's repository (see the top). */
static void mon_low_space(alerts *al, const cairn_job *j, const cairn_monitor_opts *o)
{
	if (j->kind != CAIRN_JOB_BACKUP || !o->cfg || o->low_space_percent <= 0)
		return;
	const cairn_cfg_repo *repo = cairn_config_repo(o->cfg, j->repository);
	for (size_t t = 0; repo && t < repo->ntargets; t++) {
		const char *path = local_dir(repo->targets[t].url);
		if (!path)
			continue;
		struct statvfs sv;
		double pct = 100, total = 0;
		int known = statvfs(path, &sv) == 0 && sv.f_blocks > 0;
		if (known) {
			total = (double)sv.f_blocks * (double)sv.f_frsize;
			pct = 100.0 * (double)sv.f_bavail / (double)sv.f_blocks;
		}
		int firing = known && pct < o->low_space_percent;
		cairn_alert *a = emit(al, j, "TargetLowSpace", firing, 2, 1);
		snprintf(a->key, sizeof(a->key), "TargetLowSpace/%.100s/%.130s", j->client, path);
		snprintf(a->job, sizeof(a->job), "%s", "");
		snprintf(a->target, sizeof(a->target), "%s", repo->targets[t].url);
		if (repo->targets[t].site)
			snprintf(a->site, sizeof(a->site), "%s", repo->targets[t].site);
		if (firing)
			snprintf(a->summary, sizeof(a->summary),
				 "target %.200s of %s: %.1f%% free of %.1f GiB (threshold %g%%)",
				 repo->targets[t].url, j->client, pct, total / 1073741824.0,
				 o->low_space_percent);
	}
}

#define LAG_MEMBERS 8          /* members named in a TargetLagging summary */
#define LAG_SCAN_LINES 100000  /* journal lines read per evaluation (oldest first) */

/*
 * Scan the repair journal @p path: the oldest time (0 = empty, missing or
 * unreadable), the number of lines and up to LAG_MEMBERS distinct members.
 */
static int64_t journal_scan(const char *path, size_t *nlines, char members[][CAIRN_NAME_MAX],
			    size_t *nmembers)
{
	*nlines = 0;
	*nmembers = 0;
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	char *line = NULL;
	size_t cap = 0;
	int64_t oldest = 0;
	while (*nlines < LAG_SCAN_LINES && getline(&line, &cap, f) > 0) {
		char *end;
		errno = 0;
		long long t = strtoll(line, &end, 10);
		if (errno || end == line || t <= 0 || (*end != ' ' && *end != '\t'))
			continue; /* not a journal line (a torn or foreign one) */
		(*nlines)++;
		if (!oldest || t < oldest)
			oldest = t;
		/* third field: the member */
		char *what = end + strspn(end, " \t");
		char *sp = what + strcspn(what, " \t\n");
		char *member = sp + strspn(sp, " \t");
		size_t ml = strcspn(member, " \t\n");
		if (!ml)
			continue;
		if (ml >= CAIRN_NAME_MAX)
			ml = CAIRN_NAME_MAX - 1;
		size_t k = 0;
		while (k < *nmembers && (strncmp(members[k], member, ml) || members[k][ml]))
			k++;
		if (k == *nmembers && k < LAG_MEMBERS) {
			memcpy(members[k], member, ml);
			members[k][ml] = 0;
			(*nmembers)++;
		}
	}
	free(line);
	fclose(f);
	return oldest;
}

/* TargetLagging for the client's replica set (see the top). */
static void mon_lagging(alerts *al, const cairn_job *j, const cairn_monitor_opts *o, int64_t now)
{
	if (j->kind != CAIRN_JOB_BACKUP || !o->cfg)
		return;
	const cairn_cfg_repo *repo = cairn_config_repo(o->cfg, j->repository);
	if (!repo || !repo->journal)
		return;
	char members[LAG_MEMBERS][CAIRN_NAME_MAX];
	size_t nlines, nm;
	int64_t oldest = journal_scan(repo->journal, &nlines, members, &nm);
	int64_t grace = o->lag_grace_s > 0 ? o->lag_grace_s : 3600;
	int firing = oldest > 0 && oldest < now - grace;
	cairn_alert *a = emit(al, j, "TargetLagging", firing, 2, 2);
	snprintf(a->key, sizeof(a->key), "TargetLagging/%.100s/%.100s", j->client, repo->name);
	snprintf(a->job, sizeof(a->job), "%s", "");
	snprintf(a->target, sizeof(a->target), "%s", repo->name);
	if (!firing)
		return;
	char names[256] = "", when[32];
	size_t off = 0;
	for (size_t i = 0; i < nm && off < sizeof(names); i++) {
		int w = snprintf(names + off, sizeof(names) - off, "%s%s", i ? ", " : "",
				 members[i]);
		off += w > 0 ? (size_t)w : 0;
	}
	cairn_rfc3339(oldest, when, sizeof(when));
	set_summary(a,
		    "replica set %.100s of %.100s: member(s) %s lagging: %zu%s repair journal "
		    "entries, oldest %s (%llds ago, grace %llds); run cairn repair",
		    repo->name, j->client, names[0] ? names : "?", nlines,
		    nlines >= LAG_SCAN_LINES ? "+" : "", when, (long long)(now - oldest),
		    (long long)grace);
}

static void mon_late(alerts *al, cairn_store *s, const cairn_job *j, const cairn_run *v, size_t n,
		     int64_t now)
{
	int64_t first_seen = now, slot;
	if (cairn_store_job_register(s, j->id, j->client, j->kind, now, &first_seen) < 0)
		first_seen = now;
	int firing = 0;
	if (cairn_cron_prev(j->cron, now - j->grace_s, &slot) == 0 && slot >= first_seen) {
		firing = 1;
		for (size_t i = 0; i < n && firing; i++)
			if (v[i].status != CAIRN_RUN_MISSED &&
			    (v[i].scheduled_for >= slot || v[i].started >= slot))
				firing = 0;
	}
	int64_t ok = last_ok(v, n), period = j->period_s > 0 ? j->period_s : 86400;
	int impact = j->kind == CAIRN_JOB_BACKUP ? (!ok || now - ok > 2 * period ? 1 : 2) : 3;
	cairn_alert *a = emit(al, j, "RunLate", firing, impact, 2);
	if (firing) {
		char when[32];
		cairn_rfc3339(slot, when, sizeof(when));
		snprintf(a->summary, sizeof(a->summary), "%s: no run for the slot of %s (grace %llds)",
			 j->id, when, (long long)j->grace_s);
	}
}

static void mon_too_long(alerts *al, const cairn_job *j, const cairn_run *v, size_t n,
			 int64_t now)
{
	const cairn_run *r = NULL;
	for (size_t i = 0; i < n && !r; i++)
		if (v[i].status == CAIRN_RUN_RUNNING)
			r = &v[i];
	int firing = r && j->max_runtime_s > 0 && now - r->started > j->max_runtime_s;
	cairn_alert *a = emit(al, j, "RunningTooLong", firing, 2, 2);
	if (firing) {
		a->run_id = r->id;
		snprintf(a->summary, sizeof(a->summary), "%s running for %llds (limit %llds)",
			 j->id, (long long)(now - r->started), (long long)j->max_runtime_s);
	}
}

static void mon_anomaly(alerts *al, const cairn_job *j, const cairn_run *v, size_t n,
			const cairn_monitor_opts *o, int64_t now)
{
	const cairn_run *subject = NULL, *running = NULL;
	int64_t hist[256];
	size_t nh = 0, window = o->anomaly_window < 256 ? o->anomaly_window : 256;
	for (size_t i = 0; i < n; i++) {
		if (v[i].status == CAIRN_RUN_RUNNING && !subject && !running) {
			running = &v[i];
		} else if (v[i].status == CAIRN_RUN_OK) {
			if (!subject && !running)
				subject = &v[i];
			else if (nh < window)
				hist[nh++] = v[i].duration_ms;
		}
	}
	int firing = 0;
	double med = 0, mad = 0, thr = 0;
	int64_t d = running ? (now - running->started) * 1000 : subject ? subject->duration_ms : 0;
	if (nh >= o->anomaly_min_history && (subject || running)) {
		cairn_median_mad(hist, nh, &med, &mad);
		double margin = o->anomaly_k * mad;
		if (margin < (double)o->anomaly_floor_ms)
			margin = (double)o->anomaly_floor_ms;
		if (margin < med / 4)
			margin = med / 4;
		thr = med + margin;
		firing = (double)d > thr;
	}
	/* while a run is going and not (yet) abnormal, keep the previous verdict out of it */
	cairn_alert *a = emit(al, j, "DurationAnomaly", firing, 3, running ? 2 : 3);
	if (firing) {
		a->run_id = running ? running->id : subject->id;
		snprintf(a->summary, sizeof(a->summary),
			 "%s %s %.0fs, usual %.0fs (median of %zu runs, MAD %.0fs, threshold %.0fs)",
			 j->id, running ? "running for" : "took", (double)d / 1000, med / 1000, nh,
			 mad / 1000, thr / 1000);
	}
}

static void mon_error_rate(alerts *al, const cairn_job *j, const cairn_run *v, size_t n,
			   const cairn_monitor_opts *o, int64_t now)
{
	size_t total = 0, bad = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i].status == CAIRN_RUN_RUNNING || v[i].status == CAIRN_RUN_MISSED)
			continue;
		if (v[i].started < now - o->error_window_s)
			continue;
		total++;
		bad += is_failure(v[i].status);
	}
	int firing = total >= o->error_min_runs && (double)bad / (double)total >= o->error_rate;
	cairn_alert *a = emit(al, j, "ErrorRate", firing, 2, 2);
	if (firing)
		snprintf(a->summary, sizeof(a->summary), "%s: %zu of %zu runs failed in the last %llds",
			 j->id, bad, total, (long long)o->error_window_s);
}

static void mon_drill_overdue(alerts *al, cairn_store *s, const cairn_job *j, const cairn_run *v,
			      size_t n, int64_t now)
{
	if (j->kind != CAIRN_JOB_DRILL || j->overdue_s <= 0)
		return;
	int64_t first_seen = now;
	if (cairn_store_job_register(s, j->id, j->client, j->kind, now, &first_seen) < 0)
		first_seen = now;
	int64_t ok = last_ok(v, n);
	int64_t since = ok ? ok : first_seen;
	int firing = now - since > j->overdue_s;
	cairn_alert *a = emit(al, j, "DrillOverdue", firing, 2, 2);
	if (firing)
		snprintf(a->summary, sizeof(a->summary), "%s: no passing drill for %lld days "
			 "(policy: %lld days)", j->id, (long long)((now - since) / 86400),
			 (long long)(j->overdue_s / 86400));
}

/* See sched.h. Reads the store (and registers jobs, idempotently). */
int cairn_monitor_eval(cairn_store *s, const cairn_job *jobs, size_t njobs,
		       const cairn_monitor_opts *o, int64_t now, cairn_alert **out, size_t *n)
{
	cairn_monitor_opts def;
	if (!o) {
		cairn_monitor_opts_default(&def);
		o = &def;
	}
	alerts al = {NULL, 0, 0};
	*out = NULL;
	*n = 0;
	for (size_t i = 0; i < njobs; i++) {
		const cairn_job *j = &jobs[i];
		cairn_run *v;
		size_t nv;
		int rc = cairn_store__recent(s, j->id, HISTORY, &v, &nv);
		if (rc < 0) {
			free(al.v);
			return rc;
		}
		mon_failed(&al, j, v, nv, o, now);
		mon_late(&al, s, j, v, nv, now);
		mon_too_long(&al, j, v, nv, now);
		if (j->kind != CAIRN_JOB_COMMAND)
			mon_anomaly(&al, j, v, nv, o, now);
		mon_error_rate(&al, j, v, nv, o, now);
		mon_drill_overdue(&al, s, j, v, nv, now);
		mon_low_space(&al, j, o);
		mon_lagging(&al, j, o, now);
		free(v);
	}
	*out = al.v;
	*n = al.n;
	return 0;
}
