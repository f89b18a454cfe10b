/*
 * plan.c - what cairnd should start now: scheduled slots, catch-up of slots
 * missed while it was down, retries with backoff, verification after a
 * successful rerun (see sched.h); and the jobs a configuration defines.
 *
 * DESIGN: the plan is recomputed from the store on every tick, so it needs
 * no state of its own and is right after a restart: a slot is "done" once a
 * row claims it (any status), and the slots to consider for a job are those
 * after the latest slot it has a row for (or after the job was first
 * registered, so a new job does not "catch up" its whole past). A job with a
 * running run gets no action (one run per job at a time); the slots it
 * passes meanwhile are handled when it ends, by the same rules.
 *   - slot within grace of now: scheduled;
 *   - older (missed): catch_up none -> recorded 'missed'; once -> the latest
 *     missed slot runs (reason catchup) and older ones are recorded 'missed',
 *     or all are recorded if an on-time slot is due too; all -> the oldest
 *     unclaimed slot runs now, the next one on the following tick.
 *   - the latest run failed/killed/interrupted with attempts left: a retry
 *     of the same slot (attempt + 1) once ended + backoff has passed, unless
 *     a newer slot is due (it supersedes the retry);
 *   - the latest successful backup was a retry (attempt > 1) and its slot
 *     has no verification run yet: a verification job "<job>:verify".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched/sched_int.h"

#define MAX_SLOTS 100           /* slots examined per job and tick */
#define RECENT_RUNS 50

void cairn_policy_default(cairn_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->catch_up = CAIRN_CATCHUP_ONCE;
	p->retry_max_attempts = 3;
	p->retry_backoff_s[0] = 60;
	p->retry_backoff_s[1] = 300;
	p->retry_backoff_s[2] = 1500;
	p->nretry_backoff = 3;
	p->verify_kind = CAIRN_JOB_CHECK;
}

void cairn_policy_from_config(const cairn_config *cfg, cairn_policy *p)
{
	cairn_policy_default(p);
	if (!cfg)
		return;
	p->catch_up = cfg->daemon.catch_up;
	if (cfg->defaults.retry_max_attempts)
		p->retry_max_attempts = cfg->defaults.retry_max_attempts;
	if (cfg->defaults.nretry_backoff) {
		p->nretry_backoff = cfg->defaults.nretry_backoff;
		memcpy(p->retry_backoff_s, cfg->defaults.retry_backoff_s, sizeof(p->retry_backoff_s));
	}
	p->verify_kind = cfg->defaults.verify_kind;
}

/* Delay before attempt @p next_attempt (2 = first retry); the last value repeats. */
int64_t cairn_policy_backoff(const cairn_policy *p, int next_attempt)
{
	if (!p->nretry_backoff)
		return 60;
	unsigned i = next_attempt >= 2 ? (unsigned)(next_attempt - 2) : 0;
	if (i >= p->nretry_backoff)
		i = p->nretry_backoff - 1;
	return p->retry_backoff_s[i];
}

static int is_failure(cairn_run_status st)
{
	return st == CAIRN_RUN_FAILED || st == CAIRN_RUN_KILLED || st == CAIRN_RUN_INTERRUPTED;
}

typedef struct acts {
	cairn_action *v;
	size_t n, cap;
} acts;

static void push(acts *a, size_t job, cairn_job_kind kind, cairn_run_reason reason, int64_t slot,
		 int attempt, int64_t parent)
{
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 8;
		a->v = cairn_xrealloc(a->v, a->cap * sizeof(*a->v));
	}
	cairn_action *x = &a->v[a->n++];
	x->job = job;
	x->kind = kind;
	x->reason = reason;
	x->scheduled_for = slot;
	x->attempt = attempt;
	x->parent_id = parent;
}

static void wake_at(int64_t *w, int64_t t)
{
	if (*w == 0 || t < *w)
		*w = t;
}

/* Does the verification job of @p job have a run for @p slot? */
static int verified(cairn_store *s, const cairn_job *job, int64_t slot, int *yes)
{
	char vid[CAIRN_NAME_MAX + 16];
	snprintf(vid, sizeof(vid), "%s%s", job->id, CAIRN_VERIFY_SUFFIX);
	cairn_run *v;
	size_t n;
	int rc = cairn_store__recent(s, vid, RECENT_RUNS, &v, &n);
	if (rc < 0)
		return rc;
	*yes = 0;
	for (size_t i = 0; i < n; i++)
		*yes |= v[i].scheduled_for == slot;
	free(v);
	return 0;
}

/* The actions of job @p j (index @p ji). */
static int plan_job(cairn_store *s, const cairn_job *jobs, size_t ji, const cairn_policy *p,
		    int64_t now, acts *a, int64_t *wake)
{
	const cairn_job *j = &jobs[ji];
	int64_t first_seen;
	int rc = cairn_store_job_register(s, j->id, j->client, j->kind, now, &first_seen);
	cairn_run *v = NULL;
	size_t n = 0;
	if (rc < 0 || (rc = cairn_store__recent(s, j->id, RECENT_RUNS, &v, &n)) < 0)
		return rc;
	int64_t last_slot = first_seen - 1;
	int running = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i].scheduled_for > last_slot)
			last_slot = v[i].scheduled_for;
		running |= v[i].status == CAIRN_RUN_RUNNING;
	}
	int64_t next;
	if (cairn_cron_next(j->cron, now, &next) == 0)
		wake_at(wake, next);
	if (running)
		goto done;

	/* unclaimed slots after last_slot, up to now (the latest MAX_SLOTS of them) */
	int64_t slots[MAX_SLOTS];
	size_t ns = 0, dropped = 0;
	int64_t t = last_slot;
	while (cairn_cron_next(j->cron, t, &t) == 0 && t <= now) {
		if (ns == MAX_SLOTS) {
			memmove(slots, slots + 1, (MAX_SLOTS - 1) * sizeof(slots[0]));
			ns--;
			dropped++;
		}
		slots[ns++] = t;
	}
	size_t nmissed = 0;
	while (nmissed < ns && now - slots[nmissed] > j->grace_s)
		nmissed++;
	int on_time = ns > nmissed;
	int started_slot = 0;
	if (nmissed) {
		size_t record = nmissed; /* how many old slots become 'missed' rows */
		if (p->catch_up == CAIRN_CATCHUP_ALL) {
			record = 0;
			push(a, ji, j->kind, CAIRN_REASON_CATCHUP, slots[0], 1, 0);
			started_slot = 1;
		} else if (p->catch_up == CAIRN_CATCHUP_ONCE && !on_time) {
			record = nmissed - 1;
			push(a, ji, j->kind, CAIRN_REASON_CATCHUP, slots[nmissed - 1], 1, 0);
			started_slot = 1;
		}
		for (size_t i = 0; i < record; i++) {
			rc = cairn_store_run_missed(s, j->id, j->client, j->kind, slots[i], now);
			if (rc < 0 && rc != -EEXIST)
				goto done;
		}
		rc = 0;
	}
	(void)dropped;
	if (on_time && !started_slot) {
		push(a, ji, j->kind, CAIRN_REASON_SCHEDULED, slots[ns - 1], 1, 0);
		started_slot = 1;
	}
	if (started_slot || !n)
		goto done;

	/* retry the latest run if it failed (v[0] is the newest row) */
	const cairn_run *last = &v[0];
	if (is_failure(last->status) && (unsigned)last->attempt < p->retry_max_attempts) {
		int64_t due = last->ended + cairn_policy_backoff(p, last->attempt + 1);
		if (due <= now)
			push(a, ji, j->kind, CAIRN_REASON_RETRY, last->scheduled_for,
			     last->attempt + 1, last->id);
		else
			wake_at(wake, due);
		goto done;
	}
	/* verify a backup that succeeded only on a retry */
	if (j->kind == CAIRN_JOB_BACKUP && last->status == CAIRN_RUN_OK && last->attempt > 1) {
		int yes;
		if ((rc = verified(s, j, last->scheduled_for, &yes)) < 0)
			goto done;
		if (!yes)
			push(a, ji, p->verify_kind, CAIRN_REASON_VERIFY, last->scheduled_for, 1,
			     last->id);
	}
done:
	free(v);
	return rc;
}

/* See sched.h. Writes only 'missed' rows and job registrations. */
int cairn_plan_compute(cairn_store *s, const cairn_job *jobs, size_t njobs, const cairn_policy *p,
		       int64_t now, cairn_action **out, size_t *n, int64_t *next_wake_s)
{
	acts a = {NULL, 0, 0};
	int64_t wake = 0;
	int rc = 0;
	*out = NULL;
	*n = 0;
	if ((rc = cairn_store_begin(s)) < 0)
		return rc;
	for (size_t i = 0; i < njobs && rc == 0; i++)
		rc = plan_job(s, jobs, i, p, now, &a, &wake);
	if (rc < 0) {
		cairn_store_rollback(s);
		free(a.v);
		return rc;
	}
	if ((rc = cairn_store_commit(s)) < 0) {
		free(a.v);
		return rc;
	}
	*out = a.v;
	*n = a.n;
	if (next_wake_s)
		*next_wake_s = wake;
	return 0;
}

void cairn_action_to_run(const cairn_job *jobs, const cairn_action *a, int64_t now, cairn_run *r)
{
	const cairn_job *j = &jobs[a->job];
	memset(r, 0, sizeof(*r));
	snprintf(r->job, sizeof(r->job), "%.*s%s", CAIRN_NAME_MAX - 16, j->id,
		 a->reason == CAIRN_REASON_VERIFY ? CAIRN_VERIFY_SUFFIX : "");
	snprintf(r->client, sizeof(r->client), "%s", j->client);
	r->kind = a->kind;
	r->reason = a->reason;
	r->scheduled_for = a->scheduled_for;
	r->attempt = a->attempt;
	r->parent_id = a->parent_id;
	r->started = now;
	r->exit_code = -1;
}

/* Expand every client into jobs: backup, drill, then its extra jobs. */
int cairn_jobs_from_config(const cairn_config *cfg, cairn_job **out, size_t *n)
{
	size_t total = 0, k = 0;
	*out = NULL;
	*n = 0;
	for (size_t i = 0; i < cfg->nclients; i++)
		total += cfg->clients[i].njobs;
	cairn_job *v = cairn_xcalloc(total ? total : 1, sizeof(*v));
	for (size_t i = 0; i < cfg->nclients; i++) {
		const cairn_cfg_client *cl = &cfg->clients[i];
		for (size_t m = 0; m < cl->njobs; m++, k++) {
			const cairn_cfg_job *cj = &cl->jobs[m];
			cairn_job *j = &v[k];
			snprintf(j->id, sizeof(j->id), "%s/%s", cl->name, cj->name);
			snprintf(j->client, sizeof(j->client), "%s", cl->name);
			snprintf(j->repository, sizeof(j->repository), "%s", cl->repository);
			snprintf(j->site, sizeof(j->site), "%s", cl->site ? cl->site : "");
			j->kind = cj->kind;
			j->grace_s = cj->grace_s;
			j->max_runtime_s = cj->max_runtime_s;
			j->overdue_s = cj->kind == CAIRN_JOB_DRILL ? cl->drill_overdue_s : 0;
			j->cfg = cj;
			j->client_cfg = cl;
			int rc = cairn_cron_parse(&j->cron, cj->schedule,
						  cj->timezone ? cj->timezone : cl->timezone);
			int64_t a, b;
			const int64_t ref = 1767225600; /* 2026-01-01: a fixed reference */
			if (rc == 0 && cairn_cron_next(j->cron, ref, &a) == 0 &&
			    cairn_cron_next(j->cron, a, &b) == 0)
				j->period_s = b - a;
			if (rc < 0) {
				cairn_jobs_free(v, k);
				return cairn_error_wrap(rc, "job %s", j->id);
			}
		}
	}
	*out = v;
	*n = total;
	return 0;
}

void cairn_jobs_free(cairn_job *jobs, size_t n)
{
	for (size_t i = 0; jobs && i < n; i++)
		cairn_cron_free(jobs[i].cron);
	free(jobs);
}
