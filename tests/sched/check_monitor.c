/*
 * check_monitor.c - monitors over a recorded history with a fake clock:
 * failed run and its priority, late/missed run (slot + grace), running too
 * long, duration anomaly (median + k * MAD, minimum history), error rate,
 * drill overdue, target unhealthy (scrub/health history), target low on
 * space (a small tmpfs mounted by the test when run as root) and a replica
 * set lagging (repair journal files written with chosen timestamps).
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "tests/sched/sched_test.h"
#include "tests/support/check_main.h"

static char *dir;
static cairn_store *s;
static cairn_job job;
static cairn_monitor_opts mo;

static void setup(void)
{
	dir = tu_mkdtemp("monitor");
	s = st_open(dir);
	st_job(&job, "host01", "backup", CAIRN_JOB_BACKUP, "0 1 * * *", NULL);
	cairn_monitor_opts_default(&mo);
}

static void teardown(void)
{
	cairn_cron_free(job.cron);
	cairn_store_close(s);
	tu_rmrf(dir);
	free(dir);
}

static const cairn_alert *eval(int64_t now, const char *name, cairn_alert **v)
{
	size_t n;
	ck_assert_int_eq(cairn_monitor_eval(s, &job, 1, &mo, now, v, &n), 0);
	const cairn_alert *a = st_find(*v, n, name);
	ck_assert_msg(a != NULL, "no %s alert", name);
	return a;
}

static int64_t day(int d)
{
	return st_utc(2026, 5, d, 1, 0);
}

START_TEST(mon_priority_matrix)
{
	ck_assert_int_eq(cairn_priority(1, 1), 1);
	ck_assert_int_eq(cairn_priority(1, 2), 2);
	ck_assert_int_eq(cairn_priority(2, 2), 3);
	ck_assert_int_eq(cairn_priority(2, 3), 4);
	ck_assert_int_eq(cairn_priority(3, 3), 4);
}
END_TEST

START_TEST(mon_failed)
{
	cairn_alert *v;
	cairn_store_job_register(s, job.id, job.client, job.kind, day(1) - 7200, NULL);
	st_run(s, &job, day(1), 1, CAIRN_RUN_OK, 600);
	st_run(s, &job, day(2), 1, CAIRN_RUN_FAILED, 60);
	const cairn_alert *a = eval(day(2) + 600, "BackupFailed", &v);
	ck_assert(a->firing);
	ck_assert_int_eq(a->impact, 2);   /* a good backup yesterday */
	ck_assert_int_eq(a->urgency, 2);  /* retries left */
	ck_assert_int_eq(a->priority, 3);
	ck_assert_str_eq(a->key, "BackupFailed/host01/backup");
	ck_assert_str_eq(a->client, "host01");
	ck_assert_ptr_nonnull(strstr(a->summary, "disk on fire"));
	free(v);
	/* retries exhausted three days later, no good backup for two periods: P1 */
	st_run(s, &job, day(4), 1, CAIRN_RUN_FAILED, 60);
	st_run(s, &job, day(4), 2, CAIRN_RUN_FAILED, 60);
	st_run(s, &job, day(4), 3, CAIRN_RUN_FAILED, 60);
	a = eval(day(4) + 3600, "BackupFailed", &v);
	ck_assert(a->firing);
	ck_assert_int_eq(a->priority, 1);
	free(v);
	/* a good run clears it */
	st_run(s, &job, day(5), 1, CAIRN_RUN_OK, 600);
	a = eval(day(5) + 3600, "BackupFailed", &v);
	ck_assert(!a->firing);
	free(v);
}
END_TEST

START_TEST(mon_late)
{
	cairn_alert *v;
	int64_t t0 = day(1) - 7200;
	cairn_store_job_register(s, job.id, job.client, job.kind, t0, NULL);
	/* before the job existed nothing is late */
	const cairn_alert *a = eval(t0 + 60, "RunLate", &v);
	ck_assert(!a->firing);
	free(v);
	/* slot 01:00, grace 1 h: not late at 01:59, late at 02:01 */
	a = eval(day(1) + 3540, "RunLate", &v);
	ck_assert(!a->firing);
	free(v);
	a = eval(day(1) + 3660, "RunLate", &v);
	ck_assert(a->firing);
	ck_assert_ptr_nonnull(strstr(a->summary, "2026-05-01T01:00:00Z"));
	free(v);
	/* a missed row still counts as late; a (catch-up) run of the slot clears it */
	cairn_store_run_missed(s, job.id, job.client, job.kind, day(1), day(1) + 3700);
	a = eval(day(1) + 3700, "RunLate", &v);
	ck_assert(a->firing);
	free(v);
	cairn_run r;
	memset(&r, 0, sizeof(r));
	snprintf(r.job, sizeof(r.job), "%s", job.id);
	r.kind = job.kind;
	r.scheduled_for = day(1);
	r.attempt = 2;
	r.started = day(1) + 3800;
	int64_t id;
	ck_assert_int_eq(cairn_store_run_begin(s, &r, &id), 0);
	a = eval(day(1) + 3800, "RunLate", &v);
	ck_assert(!a->firing);
	free(v);
	/* ... and running too long after max_runtime (6 h) */
	a = eval(day(1) + 3800 + 6 * 3600 + 1, "RunningTooLong", &v);
	ck_assert(a->firing);
	ck_assert_int_eq(a->run_id, id);
	free(v);
	a = eval(day(1) + 3800 + 6 * 3600 - 1, "RunningTooLong", &v);
	ck_assert(!a->firing);
	free(v);
}
END_TEST

START_TEST(mon_anomaly)
{
	cairn_alert *v;
	int64_t dur[] = {600, 620, 590, 610, 605, 2000 /* outlier in history */, 615};
	/* fewer than 5 history runs: never anomalous */
	for (int i = 0; i < 4; i++)
		st_run(s, &job, day(i + 1), 1, CAIRN_RUN_OK, dur[i]);
	st_run(s, &job, day(5), 1, CAIRN_RUN_OK, 5000);
	const cairn_alert *a = eval(day(6), "DurationAnomaly", &v);
	ck_assert(!a->firing);
	free(v);
	for (int i = 4; i < 7; i++)
		st_run(s, &job, day(i + 2), 1, CAIRN_RUN_OK, dur[i]);
	/* history median ~610 s, MAD ~10 s: 5*MAD < 60 s floor < median/4 (152 s) */
	st_run(s, &job, day(10), 1, CAIRN_RUN_OK, 700); /* within 610 + 152 */
	a = eval(day(10) + 800, "DurationAnomaly", &v);
	ck_assert_msg(!a->firing, "%s", a->summary);
	free(v);
	st_run(s, &job, day(11), 1, CAIRN_RUN_OK, 900);
	a = eval(day(11) + 1000, "DurationAnomaly", &v);
	ck_assert(a->firing);
	ck_assert_int_eq(a->priority, 4);
	ck_assert_ptr_nonnull(strstr(a->summary, "took 900s"));
	free(v);
	/* a run still going past the threshold is flagged before it ends */
	int64_t id = st_run(s, &job, day(12), 1, CAIRN_RUN_RUNNING, 0);
	a = eval(day(12) + 500, "DurationAnomaly", &v);
	ck_assert(!a->firing);
	free(v);
	a = eval(day(12) + 1000, "DurationAnomaly", &v);
	ck_assert(a->firing);
	ck_assert_int_eq(a->run_id, id);
	free(v);
	int64_t m[] = {5, 1, 3, 100, 4};
	double med, mad;
	cairn_median_mad(m, 5, &med, &mad);
	ck_assert(med == 4 && mad == 1);
}
END_TEST

START_TEST(mon_error_rate)
{
	cairn_alert *v;
	st_run(s, &job, day(1), 1, CAIRN_RUN_OK, 60);
	st_run(s, &job, day(2), 1, CAIRN_RUN_FAILED, 60);
	st_run(s, &job, day(3), 1, CAIRN_RUN_OK, 60);
	const cairn_alert *a = eval(day(3) + 100, "ErrorRate", &v);
	ck_assert(!a->firing); /* 3 runs < min 4 */
	free(v);
	st_run(s, &job, day(4), 1, CAIRN_RUN_INTERRUPTED, 60);
	a = eval(day(4) + 100, "ErrorRate", &v);
	ck_assert(a->firing); /* 2 of 4 */
	free(v);
	/* outside the 7-day window the failures no longer count */
	st_run(s, &job, day(12), 1, CAIRN_RUN_OK, 60);
	a = eval(day(12) + 100, "ErrorRate", &v);
	ck_assert(!a->firing);
	free(v);
}
END_TEST

START_TEST(mon_drill_overdue)
{
	cairn_job d;
	st_job(&d, "host01", "drill", CAIRN_JOB_DRILL, "0 4 1 * *", NULL);
	d.overdue_s = 30 * 86400;
	cairn_store_job_register(s, d.id, d.client, d.kind, day(1), NULL);
	cairn_alert *v;
	size_t n;
	ck_assert_int_eq(cairn_monitor_eval(s, &d, 1, &mo, day(20), &v, &n), 0);
	ck_assert(!st_find(v, n, "DrillOverdue")->firing);
	free(v);
	ck_assert_int_eq(cairn_monitor_eval(s, &d, 1, &mo, day(1) + 31 * 86400, &v, &n), 0);
	ck_assert(st_find(v, n, "DrillOverdue")->firing);
	free(v);
	st_run(s, &d, day(1) + 31 * 86400, 1, CAIRN_RUN_OK, 60);
	ck_assert_int_eq(cairn_monitor_eval(s, &d, 1, &mo, day(1) + 32 * 86400, &v, &n), 0);
	ck_assert(!st_find(v, n, "DrillOverdue")->firing);
	free(v);
	cairn_cron_free(d.cron);
}
END_TEST

START_TEST(mon_target_unhealthy)
{
	static const cairn_job_kind kinds[] = {CAIRN_JOB_SCRUB, CAIRN_JOB_HEALTH};
	for (size_t k = 0; k < 2; k++) {
		cairn_job t;
		st_job(&t, "host01", cairn_job_kind_name(kinds[k]), kinds[k], "0 3 * * *", NULL);
		cairn_alert *v;
		size_t n;
		st_run(s, &t, day(1), 1, CAIRN_RUN_OK, 60);
		ck_assert_int_eq(cairn_monitor_eval(s, &t, 1, &mo, day(1) + 600, &v, &n), 0);
		ck_assert(!st_find(v, n, "TargetUnhealthy")->firing);
		ck_assert_ptr_null(st_find(v, n, "RunFailed"));
		free(v);
		/* the latest run failed (retries left): P2, labelled client and target */
		int64_t id = st_run(s, &t, day(2), 1, CAIRN_RUN_FAILED, 60);
		ck_assert_int_eq(cairn_monitor_eval(s, &t, 1, &mo, day(2) + 600, &v, &n), 0);
		const cairn_alert *a = st_find(v, n, "TargetUnhealthy");
		ck_assert(a->firing);
		ck_assert_int_eq(a->impact, 1);
		ck_assert_int_eq(a->priority, 2);
		ck_assert_int_eq(a->run_id, id);
		ck_assert_str_eq(a->client, "host01");
		ck_assert_str_eq(a->target, "repo-host01");
		ck_assert_ptr_nonnull(strstr(a->summary, "disk on fire"));
		free(v);
		/* retries exhausted: P1 */
		st_run(s, &t, day(2), 2, CAIRN_RUN_FAILED, 60);
		st_run(s, &t, day(2), 3, CAIRN_RUN_KILLED, 60);
		ck_assert_int_eq(cairn_monitor_eval(s, &t, 1, &mo, day(2) + 7200, &v, &n), 0);
		ck_assert_int_eq(st_find(v, n, "TargetUnhealthy")->priority, 1);
		free(v);
		/* a later successful run resolves it */
		st_run(s, &t, day(3), 1, CAIRN_RUN_OK, 60);
		ck_assert_int_eq(cairn_monitor_eval(s, &t, 1, &mo, day(3) + 600, &v, &n), 0);
		ck_assert(!st_find(v, n, "TargetUnhealthy")->firing);
		free(v);
		cairn_cron_free(t.cron);
	}
}
END_TEST

/* Fill @p path with a file of @p bytes (tmpfs: allocated as written). */
static int fill(const char *path, size_t bytes)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -1;
	static char buf[65536];
	memset(buf, 0xa5, sizeof(buf));
	while (bytes) {
		size_t k = bytes < sizeof(buf) ? bytes : sizeof(buf);
		ssize_t w = write(fd, buf, k);
		if (w <= 0) {
			close(fd);
			return -1;
		}
		bytes -= (size_t)w;
	}
	return close(fd);
}

START_TEST(mon_target_low_space)
{
	char mnt[512], cfgpath[512], big[600];
	snprintf(mnt, sizeof(mnt), "%s/mnt", dir);
	ck_assert_int_eq(mkdir(mnt, 0700), 0);
	if (mount("cairn-test", mnt, "tmpfs", 0, "size=4m,mode=0700") != 0) {
		printf("mon_target_low_space: SKIPPED (mount tmpfs: %s; needs root)\n",
		       strerror(errno));
		return;
	}
	snprintf(cfgpath, sizeof(cfgpath), "%s/c.yaml", dir);
	FILE *f = fopen(cfgpath, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "repositories:\n  r:\n    targets:\n      - {url: 'local:%s', site: dc9}\n"
		   "      - {url: 'rados:pool', site: dc2}\n"
		   "clients:\n  c1:\n    repository: r\n    sources: [/etc]\n"
		   "    schedule: '@daily'\n"
		   "    jobs:\n      - {name: scrub, kind: scrub, schedule: '@weekly'}\n", mnt);
	fclose(f);
	cairn_config *cfg;
	ck_assert_msg(cairn_config_load(&cfg, cfgpath) == 0, "%s", cairn_error_last());
	cairn_job *jobs;
	size_t nj;
	ck_assert_int_eq(cairn_jobs_from_config(cfg, &jobs, &nj), 0);
	cairn_monitor_opts o;
	cairn_monitor_opts_from_config(cfg, &o);
	ck_assert(o.low_space_percent == 10);
	cairn_alert *v;
	size_t n, cnt = 0;
	ck_assert_int_eq(cairn_monitor_eval(s, jobs, nj, &o, day(1), &v, &n), 0);
	for (size_t i = 0; i < n; i++)
		cnt += !strcmp(v[i].alertname, "TargetLowSpace");
	ck_assert_uint_eq(cnt, 1); /* one client, one local target */
	const cairn_alert *a = st_find(v, n, "TargetLowSpace");
	ck_assert(!a->firing);
	free(v);
	/* 95 % full */
	struct statvfs sv;
	ck_assert_int_eq(statvfs(mnt, &sv), 0);
	snprintf(big, sizeof(big), "%s/fill", mnt);
	ck_assert_int_eq(fill(big, (size_t)((double)sv.f_blocks * 0.95) * sv.f_frsize), 0);
	ck_assert_int_eq(cairn_monitor_eval(s, jobs, nj, &o, day(1) + 60, &v, &n), 0);
	a = st_find(v, n, "TargetLowSpace");
	ck_assert_msg(a->firing, "not firing");
	ck_assert_int_eq(a->priority, 2);
	ck_assert_str_eq(a->client, "c1");
	ck_assert_str_eq(a->site, "dc9");
	ck_assert_ptr_nonnull(strstr(a->target, mnt));
	ck_assert_ptr_nonnull(strstr(a->key, "TargetLowSpace/c1/"));
	ck_assert_ptr_nonnull(strstr(a->summary, "threshold 10%"));
	free(v);
	/* a threshold below the free share: clear; 0 = off (no alert at all) */
	o.low_space_percent = 3;
	ck_assert_int_eq(cairn_monitor_eval(s, jobs, nj, &o, day(1) + 90, &v, &n), 0);
	ck_assert(!st_find(v, n, "TargetLowSpace")->firing);
	free(v);
	o.low_space_percent = 0;
	ck_assert_int_eq(cairn_monitor_eval(s, jobs, nj, &o, day(1) + 100, &v, &n), 0);
	ck_assert_ptr_null(st_find(v, n, "TargetLowSpace"));
	free(v);
	/* space back: resolves */
	o.low_space_percent = 10;
	ck_assert_int_eq(unlink(big), 0);
	ck_assert_int_eq(cairn_monitor_eval(s, jobs, nj, &o, day(1) + 120, &v, &n), 0);
	ck_assert(!st_find(v, n, "TargetLowSpace")->firing);
	free(v);
	/* a failed scrub of the repository (two targets): labelled with the repository */
	const cairn_job *scrub = NULL;
	for (size_t i = 0; i < nj; i++)
		if (!strcmp(jobs[i].id, "c1/scrub"))
			scrub = &jobs[i];
	ck_assert_ptr_nonnull(scrub);
	st_run(s, scrub, day(1), 1, CAIRN_RUN_FAILED, 60);
	ck_assert_int_eq(cairn_monitor_eval(s, scrub, 1, &o, day(1) + 130, &v, &n), 0);
	a = st_find(v, n, "TargetUnhealthy");
	ck_assert(a->firing);
	ck_assert_str_eq(a->target, "r");
	ck_assert_str_eq(a->client, "c1");
	free(v);
	cairn_jobs_free(jobs, nj);
	cairn_config_free(cfg);
	ck_assert_int_eq(umount(mnt), 0);
}
END_TEST

/* A config whose repository r is a replica set journaling to @p journal; its jobs. */
static cairn_config *lag_config(const char *journal, const char *defaults, cairn_job **jobs,
				size_t *nj)
{
	char cfgpath[512];
	snprintf(cfgpath, sizeof(cfgpath), "%s/lag.yaml", dir);
	FILE *f = fopen(cfgpath, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "repositories:\n  r:\n    journal: %s\n    min_copies: 1\n    targets:\n"
		   "      - {url: 'rados:pool', site: dc1}\n"
		   "      - {url: 'rados:pool2', site: dc2}\n"
		   "clients:\n  c1:\n    repository: r\n    sources: [/etc]\n"
		   "    schedule: '@daily'\n%s", journal, defaults ? defaults : "");
	fclose(f);
	cairn_config *cfg;
	ck_assert_msg(cairn_config_load(&cfg, cfgpath) == 0, "%s", cairn_error_last());
	ck_assert_int_eq(cairn_jobs_from_config(cfg, jobs, nj), 0);
	return cfg;
}

static void journal_write(const char *path, const char *mode, const char *text)
{
	FILE *f = fopen(path, mode);
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* Evaluate at @p now; the TargetLagging alert (copied), asserting there is exactly one. */
static cairn_alert lag_eval(const cairn_job *jobs, size_t nj, const cairn_monitor_opts *o,
			    int64_t now)
{
	cairn_alert *v, out;
	size_t n, cnt = 0;
	ck_assert_int_eq(cairn_monitor_eval(s, jobs, nj, o, now, &v, &n), 0);
	for (size_t i = 0; i < n; i++)
		cnt += !strcmp(v[i].alertname, "TargetLagging");
	ck_assert_uint_eq(cnt, 1); /* one client, one replica set */
	out = *st_find(v, n, "TargetLagging");
	free(v);
	return out;
}

START_TEST(mon_target_lagging)
{
	char journal[512], line[512];
	snprintf(journal, sizeof(journal), "%s/repair.journal", dir);
	cairn_job *jobs;
	size_t nj;
	cairn_config *cfg = lag_config(journal, NULL, &jobs, &nj);
	cairn_monitor_opts o;
	cairn_monitor_opts_from_config(cfg, &o);
	ck_assert_int_eq(o.lag_grace_s, 3600); /* the default */
	int64_t now = day(3);
	/* no journal yet: reported, clear */
	cairn_alert a = lag_eval(jobs, nj, &o, now);
	ck_assert(!a.firing);
	ck_assert_str_eq(a.key, "TargetLagging/c1/r");
	ck_assert_str_eq(a.client, "c1");
	/* an empty journal: clear */
	journal_write(journal, "w", "");
	ck_assert(!lag_eval(jobs, nj, &o, now).firing);
	/* a line 30 min old: within the grace */
	snprintf(line, sizeof(line), "%lld missing rados:pool2 data/ab/abcdef\n",
		 (long long)(now - 1800));
	journal_write(journal, "w", line);
	ck_assert(!lag_eval(jobs, nj, &o, now).firing);
	/* exactly at the grace: not yet (older than, strictly) */
	ck_assert(!lag_eval(jobs, nj, &o, now + 1800).firing);
	/* past the grace: fires, P3, naming the member */
	a = lag_eval(jobs, nj, &o, now + 1801);
	ck_assert_msg(a.firing, "not firing");
	ck_assert_int_eq(a.impact, 2);
	ck_assert_int_eq(a.urgency, 2);
	ck_assert_int_eq(a.priority, 3);
	ck_assert_str_eq(a.target, "r");
	ck_assert_str_eq(a.job, "");
	ck_assert_msg(strstr(a.summary, "rados:pool2") != NULL, "%s", a.summary);
	ck_assert_msg(strstr(a.summary, "1 repair journal") != NULL, "%s", a.summary);
	/* more lines, newer and for another member (duplicates named once): the oldest counts */
	snprintf(line, sizeof(line), "%lld bad rados:pool data/cd/cdef\n"
				     "%lld missing rados:pool2 data/ef/ef01\nnot a journal line\n",
		 (long long)(now - 10), (long long)(now - 5));
	journal_write(journal, "a", line);
	a = lag_eval(jobs, nj, &o, now + 1801);
	ck_assert(a.firing);
	ck_assert_msg(strstr(a.summary, "rados:pool2, rados:pool ") != NULL, "%s", a.summary);
	ck_assert_msg(strstr(a.summary, "3 repair journal") != NULL, "%s", a.summary);
	/* the oldest line comes first even if a concurrent writer appended out of order */
	snprintf(line, sizeof(line), "%lld missing rados:pool2 x\n%lld missing rados:pool2 y\n",
		 (long long)(now - 100), (long long)(now - 7200));
	journal_write(journal, "w", line);
	ck_assert(lag_eval(jobs, nj, &o, now).firing);
	/* only new entries (a fresh failure after a repair): within the grace */
	snprintf(line, sizeof(line), "%lld missing rados:pool2 z\n", (long long)(now - 60));
	journal_write(journal, "w", line);
	ck_assert(!lag_eval(jobs, nj, &o, now).firing);
	/* repaired: truncated -> resolves; removed -> still clear */
	journal_write(journal, "w", "");
	ck_assert(!lag_eval(jobs, nj, &o, now + 86400).firing);
	ck_assert_int_eq(unlink(journal), 0);
	ck_assert(!lag_eval(jobs, nj, &o, now + 86400).firing);
	cairn_jobs_free(jobs, nj);
	cairn_config_free(cfg);

	/* defaults.lag_grace: 10m */
	cfg = lag_config(journal, "defaults:\n  lag_grace: 10m\n", &jobs, &nj);
	cairn_monitor_opts_from_config(cfg, &o);
	ck_assert_int_eq(o.lag_grace_s, 600);
	snprintf(line, sizeof(line), "%lld missing rados:pool p\n", (long long)(now - 601));
	journal_write(journal, "w", line);
	ck_assert(lag_eval(jobs, nj, &o, now).firing);
	ck_assert(!lag_eval(jobs, nj, &o, now - 2).firing);
	/* a repository without a journal (here: not in the config): no TargetLagging at all */
	cairn_alert *v;
	size_t n;
	ck_assert_int_eq(cairn_monitor_eval(s, &job, 1, &o, now, &v, &n), 0);
	ck_assert_ptr_null(st_find(v, n, "TargetLagging"));
	free(v);
	cairn_jobs_free(jobs, nj);
	cairn_config_free(cfg);
}
END_TEST

static Suite *sched_monitor_suite(void)
{
	Suite *su = suite_create("sched_monitor");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, mon_priority_matrix);
	tcase_add_test(tc, mon_failed);
	tcase_add_test(tc, mon_late);
	tcase_add_test(tc, mon_anomaly);
	tcase_add_test(tc, mon_error_rate);
	tcase_add_test(tc, mon_drill_overdue);
	tcase_add_test(tc, mon_target_unhealthy);
	tcase_add_test(tc, mon_target_low_space);
	tcase_add_test(tc, mon_target_lagging);
	suite_add_tcase(su, tc);
	return su;
}

CAIRN_CHECK_MAIN(sched_monitor_suite)
