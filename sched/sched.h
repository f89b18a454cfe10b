/*
 * sched.h - the scheduler and alerting core's public header: the
 * configuration file (YAML) shared by `cairn --config` and cairnd, cron
 * schedules in IANA time zones, the run/incident store (SQLite), the
 * scheduling plan (due slots, catch-up, retries, verification), monitors,
 * incidents and notifiers.
 *
 * The configuration is strict: an unknown key, a wrong type or a missing
 * required field is an error naming the file and the path of the field
 * ("repositories.acme.targets[1].url: missing"), so a typo never silently
 * changes where backups go. Reference: docs/CONFIG.md, docs/SCHEDULER.md.
 *
 * DESIGN (how cairnd's loop uses this header, one tick):
 *   1. cairn_plan_compute(store, jobs, now)     -> actions due now (scheduled,
 *      catch-up, retry, verify) and the next wake-up time;
 *   2. for each action: cairn_store_run_begin() BEFORE the job starts (the
 *      UNIQUE(job, scheduled_for, attempt) row makes a slot run at most once,
 *      also across kill -9), start the process, cairn_store_run_set_pid(),
 *      and cairn_store_run_finish() when it ends;
 *   3. cairn_monitor_eval(store, jobs, now)     -> alerts (firing or clear);
 *   4. cairn_incident_process(store, cfg, alerts, now) -> notices;
 *   5. cairn_notify_deliver(store, cfg, notice, now) for each notice.
 * At start-up: cairn_store_recover() marks runs left 'running' by a dead
 * daemon 'interrupted' (then retried by the plan like failed runs).
 * All logic takes `now` (seconds since the epoch) from the caller: nothing
 * here reads the clock, so tests drive it with a fake clock.
 * Times are int64 seconds since the epoch (UTC) unless a name ends in _ms.
 */
#ifndef CAIRN_SCHED_H
#define CAIRN_SCHED_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "targets/target.h"

typedef struct cairn_cfg_target {
	char *url;              /* /path, local:/path, rados:POOL[/NS], s3:http://HOST:PORT/BUCKET[/PREFIX] */
	char *site;             /* site / region label */
	char *ceph_conf;        /* rados: cluster configuration (default $CEPH_CONF, /etc/ceph/ceph.conf) */
	char *credentials_file; /* s3: file with AWS_ACCESS_KEY_ID=... and AWS_SECRET_ACCESS_KEY=... */
	unsigned timeout_s;     /* rados/s3 operation timeout; 0 = default (30 s) */
} cairn_cfg_target;

typedef struct cairn_cfg_repo {
	char *name;
	char *password_file;    /* readable by root only */
	char *journal;          /* repair journal of the replica set */
	char *cache_dir;
	unsigned min_copies;    /* 0 = all targets */
	/* restore drill policy */
	int64_t drill_interval_ns; /* a passing drill of every target at least this often
				    * (default 30 days, never more than 365 days) */
	double drill_sample;    /* share of files per drill (default 1 = everything) */
	char *drill_sandbox;    /* restore under this directory (default: verify without writing) */
	int drill_compare_live; /* compare unchanged files with the live source */
	size_t ntargets;
	cairn_cfg_target *targets;
} cairn_cfg_repo;

/* ---- cairnd sections (docs/SCHEDULER.md); all times in seconds ---- */

typedef enum cairn_job_kind {
	CAIRN_JOB_BACKUP = 0,
	CAIRN_JOB_DRILL,
	CAIRN_JOB_SCRUB,
	CAIRN_JOB_REPAIR,
	CAIRN_JOB_PRUNE,
	CAIRN_JOB_HEALTH,       /* target health check */
	CAIRN_JOB_CHECK,        /* cairn check (the verification after a rerun) */
	CAIRN_JOB_COMMAND,      /* an external command */
	CAIRN_JOB_KIND_COUNT
} cairn_job_kind;

typedef enum cairn_catch_up {
	CAIRN_CATCHUP_NONE = 0, /* slots missed while down are recorded 'missed' */
	CAIRN_CATCHUP_ONCE,     /* run the latest missed slot once (default) */
	CAIRN_CATCHUP_ALL,      /* run every missed slot (at most 100 per job) */
} cairn_catch_up;

typedef struct cairn_cfg_job {
	char *name;             /* unique within the client ("backup", "drill", or as given) */
	cairn_job_kind kind;
	char *schedule;         /* cron expression (validated) */
	char *timezone;         /* IANA zone, NULL = the client's */
	char **command;         /* CAIRN_JOB_COMMAND: argv, NULL-terminated */
	int64_t grace_s;        /* late after slot + grace; 0 = defaults.grace */
	int64_t max_runtime_s;  /* "running too long" after this; 0 = defaults.max_runtime */
} cairn_cfg_job;

typedef struct cairn_cfg_client {
	char *name;
	char *repository;       /* a key of `repositories` (checked) */
	char **sources;         /* NULL-terminated absolute paths */
	size_t nsources;
	char **excludes;        /* NULL-terminated patterns */
	size_t nexcludes;
	char *schedule;         /* backup cron expression (required) */
	char *timezone;         /* IANA zone; default defaults.timezone */
	unsigned keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly;
	char *drill_schedule;   /* drill cron expression; default defaults.drill_schedule */
	int64_t drill_overdue_s;/* DrillOverdue after this long without a passing drill;
				 * default: the repository's drill interval */
	char *site;             /* label (default: the repository's first target's site) */
	size_t njobs;           /* backup + drill + the client's extra `jobs` */
	cairn_cfg_job *jobs;
} cairn_cfg_client;

typedef enum cairn_notifier_kind {
	CAIRN_NOTIFIER_WEBHOOK = 0,
	CAIRN_NOTIFIER_ALERTMANAGER,
	CAIRN_NOTIFIER_EMAIL,
	CAIRN_NOTIFIER_COMMAND,
} cairn_notifier_kind;

typedef struct cairn_cfg_notifier {
	char *name;
	cairn_notifier_kind kind;
	char *url;              /* webhook URL; alertmanager base URL (http://host:9093);
				 * email smtp://host:port[/ehlo-name] or smtps:// */
	unsigned timeout_s;     /* whole request / command; default 10 */
	char *from;             /* email: envelope and From: address */
	char **to;              /* email: NULL-terminated recipients */
	size_t nto;
	char *username;         /* email: optional SMTP AUTH user */
	char *password_file;    /* email: its password (first line) */
	char **command;         /* command: argv, NULL-terminated */
	char *token_file;       /* webhook: optional bearer token (first line) */
	int64_t ttl_s;          /* alertmanager: endsAt of a firing alert = now + ttl (4h) */
} cairn_cfg_notifier;

typedef struct cairn_cfg_route {
	char *client;           /* fnmatch pattern; NULL = any client */
	int max_priority;       /* matches alerts of priority P1..Pmax_priority (default 4) */
	char **notifiers;       /* NULL-terminated names (checked against `notifiers`) */
	size_t nnotifiers;
	char **escalate_to;     /* extra notifiers of escalation notices */
	size_t nescalate_to;
	int64_t escalate_after_s;   /* unacknowledged this long -> next escalation level */
	int64_t repeat_interval_s;  /* re-notify an unresolved, unacknowledged incident */
	int cont;               /* keep matching later routes ("continue: true") */
} cairn_cfg_route;

typedef struct cairn_cfg_daemon {
	char *state_dir;        /* default /var/lib/cairn */
	char *database;         /* default STATE_DIR/cairnd.db */
	char *listen;           /* default 127.0.0.1:8790 */
	char *api_token_file;   /* NULL = API without writes */
	unsigned max_concurrent_jobs; /* default 2 */
	cairn_catch_up catch_up;
	char *cairn_binary;     /* the `cairn` the jobs run; default "cairn" on PATH */
} cairn_cfg_daemon;

typedef struct cairn_cfg_defaults {
	char *timezone;         /* default "UTC" */
	char *drill_schedule;   /* default "0 4 1 * *" (monthly) */
	int64_t grace_s;        /* default 3600 */
	int64_t max_runtime_s;  /* default 12 h */
	unsigned retry_max_attempts;    /* total attempts of a slot; default 3 */
	int64_t retry_backoff_s[8];     /* delay before attempt 2, 3...; default 60, 300, 1500 */
	unsigned nretry_backoff;
	cairn_job_kind verify_kind;     /* after a successful rerun: CHECK (default) or DRILL */
	int64_t escalate_after_s;       /* default 1 h */
	int64_t repeat_interval_s;      /* default 4 h */
	unsigned anomaly_min_history;   /* default 5 */
	unsigned anomaly_window;        /* last N successful runs; default 20 */
	double anomaly_k;               /* default 5 */
	int64_t anomaly_floor_ms;       /* default 60000 */
	int64_t error_window_s;         /* default 7 d */
	double error_rate;              /* default 0.5 */
	unsigned error_min_runs;        /* default 4 */
	double low_space_percent;       /* TargetLowSpace below this share of free space on a
					 * local target; default 10, 0 = off */
	int64_t lag_grace_s;            /* TargetLagging once the oldest repair journal line
					 * is older than this; default 1 h */
} cairn_cfg_defaults;

typedef struct cairn_config {
	char *path;
	size_t nrepos;
	cairn_cfg_repo *repos;
	/* cairnd (zero/defaults when the file has no such section) */
	size_t nclients;
	cairn_cfg_client *clients;
	cairn_cfg_daemon daemon;
	size_t nnotifiers;
	cairn_cfg_notifier *notifiers;
	size_t nroutes;
	cairn_cfg_route *routes;
	cairn_cfg_defaults defaults;
} cairn_config;

/** Load and validate a configuration file. @return 0, -ENOENT, -EINVAL (message says where). */
int cairn_config_load(cairn_config **out, const char *path);
void cairn_config_free(cairn_config *c);
#define CAIRN_DRILL_DEFAULT_NS (30ll * 86400 * 1000000000)
#define CAIRN_DRILL_FLOOR_NS (365ll * 86400 * 1000000000)

/** Parse a duration such as 30d, 12h, 90m, 1y, 2w (0 or -1). */
int cairn_parse_duration(const char *s, int64_t *out_ns);

/** The repository named @p name, or NULL. */
const cairn_cfg_repo *cairn_config_repo(const cairn_config *c, const char *name);
/**
 * Open the repository's target: the single target, or a replica set of all
 * of them (in the order given: nearest first) with its min_copies and journal.
 */
int cairn_config_open_target(const cairn_cfg_repo *r, cairn_target **out);

/** The client named @p name, or NULL. */
const cairn_cfg_client *cairn_config_client(const cairn_config *c, const char *name);
/** The notifier named @p name, or NULL. */
const cairn_cfg_notifier *cairn_config_notifier(const cairn_config *c, const char *name);
/** "backup", "drill", ... ; NULL for an invalid kind. */
const char *cairn_job_kind_name(cairn_job_kind k);
/** Parse a kind name; -EINVAL if unknown. */
int cairn_job_kind_parse(const char *s, cairn_job_kind *out);

/* ========================================================================
 * Cron schedules (cron.c)
 *
 * Five fields (minute hour day-of-month month day-of-week) with lists,
 * ranges, steps, month and weekday names (jan..dec, sun..sat, 7 = sunday),
 * or @yearly @annually @monthly @weekly @daily @midnight @hourly. When both
 * day fields are restricted a day matches either (Vixie cron).
 * Evaluated in an IANA zone, wall-clock semantics:
 *  - a wall time skipped by a spring-forward change (02:30 on the last
 *    Sunday of March in Europe/Berlin) fires once, at the first valid
 *    instant after the gap (03:00 local), like cronie for fixed-time jobs;
 *    several skipped times collapse into that one firing;
 *  - a wall time that occurs twice (fall back) fires once, at its FIRST
 *    occurrence (so an hourly job skips the repeated hour).
 * Thread safety: zone arithmetic switches TZ under one process-wide mutex
 * (setenv/tzset/localtime_r); other threads of the process must not call
 * localtime()/mktime() concurrently expecting their own TZ. cairnd's loop
 * is single-threaded and uses UTC elsewhere.
 * ====================================================================== */
typedef struct cairn_cron cairn_cron;

/**
 * Parse @p expr for zone @p tz (NULL or "UTC" = UTC; else a name under
 * /usr/share/zoneinfo). @return 0, -EINVAL (message names the field).
 */
int cairn_cron_parse(cairn_cron **out, const char *expr, const char *tz);
void cairn_cron_free(cairn_cron *c);
/** Next firing strictly after @p after_s. @return 0, -ENOENT (none within 10 years). */
int cairn_cron_next(const cairn_cron *c, int64_t after_s, int64_t *next_s);
/** Latest firing at or before @p at_s. @return 0, -ENOENT. */
int cairn_cron_prev(const cairn_cron *c, int64_t at_s, int64_t *prev_s);
/** True if @p tz names a usable zone. */
int cairn_tz_valid(const char *tz);
/** Local broken-down time of @p t in @p tz (same mutex as above). @return 0, -EINVAL. */
int cairn_tz_localtime(const char *tz, int64_t t, struct tm *out);

/* ========================================================================
 * The store (store.c): SQLite in WAL mode, synchronous=FULL, busy timeout
 * 5 s. Tables: jobs, runs, incidents, timeline, silences, meta (schema
 * version). Every write is one transaction, durable when the call returns.
 * One handle per thread (the handle is not shared between threads).
 * ====================================================================== */
typedef struct cairn_store cairn_store;

typedef enum cairn_run_status {
	CAIRN_RUN_RUNNING = 0,
	CAIRN_RUN_OK,
	CAIRN_RUN_FAILED,
	CAIRN_RUN_PARTIAL,      /* finished with warnings (some files unreadable) */
	CAIRN_RUN_KILLED,       /* killed by cairnd (time limit, shutdown) */
	CAIRN_RUN_MISSED,       /* slot not run (daemon down, catch_up none/once) */
	CAIRN_RUN_INTERRUPTED,  /* cairnd died while it ran (found at recovery) */
	CAIRN_RUN_STATUS_COUNT
} cairn_run_status;

typedef enum cairn_run_reason {
	CAIRN_REASON_SCHEDULED = 0,
	CAIRN_REASON_CATCHUP,
	CAIRN_REASON_RETRY,
	CAIRN_REASON_VERIFY,
	CAIRN_REASON_MANUAL,
} cairn_run_reason;

#define CAIRN_NAME_MAX 128
#define CAIRN_ERRTEXT_MAX 1024

typedef struct cairn_run {
	int64_t id;
	char job[CAIRN_NAME_MAX];       /* job id "client/name" */
	char client[CAIRN_NAME_MAX];
	cairn_job_kind kind;
	cairn_run_reason reason;
	int64_t scheduled_for;  /* the slot (for retries: the original slot) */
	int attempt;            /* 1 = first try of the slot */
	int64_t parent_id;      /* retry: the failed run; verification: the rerun; else 0 */
	int64_t started, ended; /* ended 0 while running */
	cairn_run_status status;
	int exit_code;          /* -1 unknown */
	int64_t pid;
	int64_t duration_ms, bytes, files, cpu_ms, peak_rss_kb;
	char error[CAIRN_ERRTEXT_MAX];
} cairn_run;

/** Open or create the store at @p path (parent directory must exist). @return 0, -EIO. */
int cairn_store_open(cairn_store **out, const char *path);
void cairn_store_close(cairn_store *s);

/** Register a job (idempotent); *first_seen_s receives when it was first seen. */
int cairn_store_job_register(cairn_store *s, const char *job, const char *client,
			     cairn_job_kind kind, int64_t now, int64_t *first_seen_s);

/**
 * Claim a slot and record the run as 'running' BEFORE the job starts
 * (r->job, client, kind, reason, scheduled_for, attempt, parent_id, started).
 * @return 0 with *id set, -EEXIST if (job, scheduled_for, attempt) is
 * already recorded (never start the job then), -EIO.
 */
int cairn_store_run_begin(cairn_store *s, const cairn_run *r, int64_t *id);
/** Record the missed slot (status 'missed'); -EEXIST if the slot has a row. */
int cairn_store_run_missed(cairn_store *s, const char *job, const char *client,
			   cairn_job_kind kind, int64_t slot, int64_t now);
int cairn_store_run_set_pid(cairn_store *s, int64_t id, int64_t pid);
/**
 * Finish run @p id with r->status, ended, exit_code, duration_ms, bytes, files,
 * cpu_ms, peak_rss_kb, error. @return 0, -ENOENT (no running run @p id), -EIO.
 */
int cairn_store_run_finish(cairn_store *s, int64_t id, const cairn_run *r);
int cairn_store_run_get(cairn_store *s, int64_t id, cairn_run *out);

typedef struct cairn_run_query {
	const char *job;        /* NULL = any */
	const char *client;     /* NULL = any */
	int status;             /* -1 = any, else a cairn_run_status */
	int64_t since;          /* scheduled_for/started >= since; 0 = no bound */
	int64_t before_id;      /* id < before_id; 0 = no bound (paging) */
	size_t limit;           /* 0 = 100 */
} cairn_run_query;
#define CAIRN_RUN_QUERY_INIT {NULL, NULL, -1, 0, 0, 0}
/** Runs matching @p q, newest (highest id) first; free *out with free(). */
int cairn_store_runs(cairn_store *s, const cairn_run_query *q, cairn_run **out, size_t *n);

/**
 * Start-up recovery: every run still 'running' whose pid is not alive
 * (@p alive(pid, ud) == 0; NULL = kill(pid, 0) semantics) becomes
 * 'interrupted' with ended = now. *n = how many. Runs whose process
 * outlived the daemon stay 'running' (the caller watches the pid).
 */
int cairn_store_recover(cairn_store *s, int64_t now, int (*alive)(int64_t pid, void *ud),
			void *ud, size_t *n);

typedef enum cairn_incident_state {
	CAIRN_INC_OPEN = 0,
	CAIRN_INC_ACKED,
	CAIRN_INC_RESOLVED,
} cairn_incident_state;

typedef struct cairn_incident {
	int64_t id;
	char key[256];          /* grouping key, e.g. "BackupFailed/host01/backup" */
	char alertname[64];
	char labels[1024];      /* JSON object of the labels */
	char summary[512];
	int priority;           /* 1..4 */
	cairn_incident_state state;
	int64_t opened, acked, resolved, last_seen, last_notified;
	int escalation;         /* 0 = not escalated */
	int notified;           /* at least one notice was delivered (not silenced) */
	char acked_by[64];
} cairn_incident;

typedef struct cairn_timeline_entry {
	int64_t incident_id;
	int64_t t;
	char text[512];
} cairn_timeline_entry;

/** Current (unresolved) incident of @p key. @return 0, -ENOENT. */
int cairn_store_incident_current(cairn_store *s, const char *key, cairn_incident *out);
int cairn_store_incident_get(cairn_store *s, int64_t id, cairn_incident *out);
/** Insert (i->id set on return); -EEXIST if @p key already has an unresolved incident. */
int cairn_store_incident_insert(cairn_store *s, cairn_incident *i);
int cairn_store_incident_update(cairn_store *s, const cairn_incident *i);
/** Incidents, newest first; @p state -1 = any, -2 = unresolved; free *out with free(). */
int cairn_store_incidents(cairn_store *s, int state, size_t limit, cairn_incident **out,
			  size_t *n);
int cairn_store_timeline_add(cairn_store *s, int64_t incident_id, int64_t t, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/** The timeline of one incident, oldest first; free *out with free(). */
int cairn_store_timeline(cairn_store *s, int64_t incident_id, cairn_timeline_entry **out,
			 size_t *n);

typedef struct cairn_silence {
	int64_t id;
	char matchers[512];     /* "client=host02,job=host02/backup" (all must equal) */
	int64_t starts, ends;   /* active while starts <= now < ends */
	char created_by[64];
	char comment[256];
} cairn_silence;

/** Add (s->id set). @return 0, -EINVAL (bad matchers or ends <= starts). */
int cairn_store_silence_add(cairn_store *s, cairn_silence *sil);
/** End silence @p id at @p now. @return 0, -ENOENT. */
int cairn_store_silence_expire(cairn_store *s, int64_t id, int64_t now);
/** Silences active at @p now (now < 0: all); free *out with free(). */
int cairn_store_silences(cairn_store *s, int64_t now, cairn_silence **out, size_t *n);

/** Transactions spanning several calls (optional; calls nest into it). */
int cairn_store_begin(cairn_store *s);
int cairn_store_commit(cairn_store *s);
void cairn_store_rollback(cairn_store *s);

const char *cairn_run_status_name(cairn_run_status st);
const char *cairn_incident_state_name(cairn_incident_state st);

/* ========================================================================
 * Jobs and the plan (plan.c): what to start now.
 * ====================================================================== */

/** A schedulable job, derived from the configuration (cairn_jobs_from_config). */
typedef struct cairn_job {
	char id[CAIRN_NAME_MAX];        /* "client/name" */
	char client[CAIRN_NAME_MAX];
	char repository[CAIRN_NAME_MAX];
	char site[64];
	cairn_job_kind kind;
	cairn_cron *cron;               /* owned */
	int64_t period_s;               /* typical gap between slots (for "no recent good run") */
	int64_t grace_s;
	int64_t max_runtime_s;
	int64_t overdue_s;              /* DRILL: DrillOverdue without a pass this long; 0 = off */
	const cairn_cfg_job *cfg;       /* borrowed from the configuration */
	const cairn_cfg_client *client_cfg;
} cairn_job;

/** Expand the clients of @p cfg into jobs; free with cairn_jobs_free(). */
int cairn_jobs_from_config(const cairn_config *cfg, cairn_job **out, size_t *n);
void cairn_jobs_free(cairn_job *jobs, size_t n);

typedef struct cairn_policy {
	cairn_catch_up catch_up;
	unsigned retry_max_attempts;    /* total attempts per slot */
	int64_t retry_backoff_s[8];
	unsigned nretry_backoff;        /* the last value repeats */
	cairn_job_kind verify_kind;
} cairn_policy;
/** The policy of @p cfg (daemon.catch_up and defaults.retry/verify). */
void cairn_policy_from_config(const cairn_config *cfg, cairn_policy *out);
/** Default policy: catch-up once, 3 attempts, backoff 60 s, 300 s, 1500 s, verify by check. */
void cairn_policy_default(cairn_policy *out);
/** Delay before attempt @p next_attempt (>= 2). */
int64_t cairn_policy_backoff(const cairn_policy *p, int next_attempt);

typedef struct cairn_action {
	size_t job;             /* index into the jobs array */
	cairn_job_kind kind;    /* the job's kind, or the verification kind */
	cairn_run_reason reason;
	int64_t scheduled_for;
	int attempt;
	int64_t parent_id;
} cairn_action;

/**
 * What is due at @p now: for each job the slots since its last recorded slot
 * (or since it was first registered), applying @p p->catch_up to slots older
 * than the grace (missed ones are recorded 'missed' by this call), retries of
 * failed/killed/interrupted runs whose backoff elapsed, and a verification
 * (p->verify_kind) after a successful retry of a backup.
 * Fill each action into a cairn_run and call cairn_store_run_begin(): -EEXIST
 * means already taken. *next_wake_s = the earliest future time something
 * becomes due. Free *out with free().
 */
int cairn_plan_compute(cairn_store *s, const cairn_job *jobs, size_t njobs, const cairn_policy *p,
		       int64_t now, cairn_action **out, size_t *n, int64_t *next_wake_s);
/** Fill @p r from @p a for cairn_store_run_begin (started = now). */
void cairn_action_to_run(const cairn_job *jobs, const cairn_action *a, int64_t now, cairn_run *r);

/* ========================================================================
 * Monitors (monitor.c): pure functions of the store and `now`.
 * ====================================================================== */
typedef struct cairn_alert {
	char key[256];          /* "<alertname>/<job id>": grouping key of incidents */
	char alertname[64];     /* BackupFailed, RunFailed, RunLate, RunningTooLong,
				 * DurationAnomaly, ErrorRate, DrillOverdue, TargetUnhealthy,
				 * TargetLowSpace, TargetLagging */
	char client[CAIRN_NAME_MAX], job[CAIRN_NAME_MAX], target[CAIRN_NAME_MAX], site[64];
	int impact;             /* 1 high .. 3 low */
	int urgency;            /* 1 high .. 3 low */
	int priority;           /* 1..4 = cairn_priority(impact, urgency) */
	int firing;             /* 0 = the condition is clear (auto-resolve) */
	char summary[512];
	int64_t run_id;         /* the run concerned, 0 if none */
} cairn_alert;

typedef struct cairn_monitor_opts {
	unsigned anomaly_min_history;
	unsigned anomaly_window;
	double anomaly_k;
	int64_t anomaly_floor_ms;
	int64_t error_window_s;
	double error_rate;
	unsigned error_min_runs;
	unsigned retry_max_attempts;    /* a failed run with attempts left is less urgent */
	double low_space_percent;       /* TargetLowSpace threshold (free %); 0 = off */
	int64_t lag_grace_s;            /* TargetLagging after the oldest repair journal line is
					 * older than this (s); default 3600 */
	const cairn_config *cfg;        /* borrowed: repositories' targets and journals
					 * (TargetLowSpace, TargetLagging, target labels);
					 * NULL = no target monitors */
} cairn_monitor_opts;
void cairn_monitor_opts_default(cairn_monitor_opts *o);
void cairn_monitor_opts_from_config(const cairn_config *cfg, cairn_monitor_opts *o);

/** P1..P4 from impact and urgency (1 high .. 3 low): clamp(impact + urgency - 1, 1, 4). */
int cairn_priority(int impact, int urgency);

/**
 * Evaluate every monitor for every job at @p now. Each monitor reports one
 * alert per job it applies to, firing or not, so incidents auto-resolve.
 * Free *out with free().
 */
int cairn_monitor_eval(cairn_store *s, const cairn_job *jobs, size_t njobs,
		       const cairn_monitor_opts *o, int64_t now, cairn_alert **out, size_t *n);

/**
 * Robust duration statistics: median and MAD of @p v (n >= 1, reordered).
 * The anomaly threshold is median + max(k * MAD, floor_ms, median / 4).
 */
void cairn_median_mad(int64_t *v, size_t n, double *median, double *mad);

/* ========================================================================
 * Incidents (incident.c)
 * ====================================================================== */
typedef enum cairn_notice_kind {
	CAIRN_NOTICE_OPENED = 0,
	CAIRN_NOTICE_REPEAT,
	CAIRN_NOTICE_ESCALATED,
	CAIRN_NOTICE_RESOLVED,
} cairn_notice_kind;

typedef struct cairn_notice {
	cairn_notice_kind kind;
	cairn_incident incident;        /* state after the change */
	cairn_alert alert;              /* the alert that caused it (resolved: firing = 0) */
} cairn_notice;

/**
 * Group @p alerts into incidents at @p now: open one on the first firing
 * alert of a key; escalate an unacknowledged one every route
 * escalate_after; repeat notices every repeat_interval (not when
 * acknowledged); resolve when the alert is clear. Every change goes into the
 * timeline; an active silence matching an alert suppresses its notices (the
 * timeline says so). @p cfg gives routes and defaults (NULL = defaults).
 * Free *out with free().
 */
int cairn_incident_process(cairn_store *s, const cairn_config *cfg, const cairn_alert *alerts,
			   size_t n, int64_t now, cairn_notice **out, size_t *nout);
/** Acknowledge incident @p id (stops escalation and repeats). @return 0, -ENOENT, -EALREADY. */
int cairn_incident_ack(cairn_store *s, int64_t id, const char *who, int64_t now);
/** Resolve by hand. @return 0, -ENOENT, -EALREADY. */
int cairn_incident_resolve(cairn_store *s, int64_t id, const char *who, int64_t now);
/** True if @p sil matches @p a's labels (client, job, target, site, alertname, priority). */
int cairn_silence_matches(const cairn_silence *sil, const cairn_alert *a);
/** A Markdown post-incident review from the incident and its timeline (malloc'd). */
int cairn_incident_review(cairn_store *s, int64_t id, char **out);
/** The labels of @p a as a JSON object into @p buf. */
void cairn_alert_labels_json(const cairn_alert *a, char *buf, size_t len);

/* ========================================================================
 * Notifiers (notify.c): libcurl, each call bounded by the notifier's timeout.
 * ====================================================================== */

/** Send one notice through one notifier. @return 0, -EIO/-ETIMEDOUT (message says why). */
int cairn_notify_send(const cairn_cfg_notifier *nf, const cairn_notice *nt, int64_t now);
/**
 * Route @p nt (routes matching client and priority, first match unless
 * `continue`), send to each notifier (escalation notices also to
 * escalate_to), and record each result in the incident's timeline.
 * @return number of failed deliveries (>= 0); never fails hard.
 */
int cairn_notify_deliver(cairn_store *s, const cairn_config *cfg, const cairn_notice *nt,
			 int64_t now);
/** The route policy for @p a: first matching route, else defaults. */
void cairn_route_policy(const cairn_config *cfg, const cairn_alert *a, int64_t *escalate_after_s,
			int64_t *repeat_interval_s);
/** The JSON body a webhook receives for @p nt (malloc'd). */
char *cairn_notice_json(const cairn_notice *nt, int64_t now);
/** RFC 3339 UTC ("2026-11-26T13:56:38Z") into @p buf (>= 21 bytes). */
void cairn_rfc3339(int64_t t, char *buf, size_t len);

/* ========================================================================
 * The daemon (daemon.c, jobrun.c, http.c, metrics.c): cairnd's loop.
 *
 * One thread: poll() over the children's stdout/stderr pipes, the HTTP
 * server's epoll fd and a self-pipe (signals, triggers), with a tick at
 * least every second that runs the DESIGN steps at the top of this header.
 * Jobs are child processes (the `cairn` binary, or a command job's argv),
 * each in its own process group, stdin /dev/null, killed with SIGTERM if
 * cairnd dies (PR_SET_PDEATHSIG). Reference: docs/SCHEDULER.md.
 * ====================================================================== */
typedef struct cairn_daemon cairn_daemon;

#define CAIRN_DAEMON_OPTS_VERSION 1
typedef struct cairn_daemon_opts {
	unsigned version;       /* CAIRN_DAEMON_OPTS_VERSION */
	const char *cairn_binary; /* NULL: daemon.cairn_binary, else `cairn` next to the
				   * running program, else "cairn" on PATH */
	int no_http;            /* do not listen (tests of the loop alone) */
} cairn_daemon_opts;
#define CAIRN_DAEMON_OPTS_INIT {CAIRN_DAEMON_OPTS_VERSION, NULL, 0}

/**
 * Load @p config_path, open the store (creating daemon.state_dir), recover
 * runs a dead daemon left 'running', and listen on daemon.listen.
 * @return 0, -EINVAL (configuration; message names the field), -EIO (store),
 * -EADDRINUSE / -EACCES (listen address).
 */
int cairn_daemon_open(cairn_daemon **out, const char *config_path, const cairn_daemon_opts *o);
/**
 * Run the loop until cairn_daemon_stop(); then terminate running jobs
 * (SIGTERM, SIGKILL after 10 s), record them 'killed', and return 0.
 */
int cairn_daemon_run(cairn_daemon *d);
/** Ask the loop to stop. Async-signal-safe (a write to the self-pipe). */
void cairn_daemon_stop(cairn_daemon *d);
void cairn_daemon_close(cairn_daemon *d);

/**
 * The Prometheus text exposition (format 0.0.4) of the store's runs and
 * incidents for @p jobs at @p now (malloc'd into *out). Names: docs/SCHEDULER.md.
 */
int cairn_metrics_render(cairn_store *s, const cairn_job *jobs, size_t njobs, int64_t now,
			 size_t running, char **out);

#endif
