/*
 * check_monitor.c - monitors over a recorded history with a fake clock:
 * failed run and its priority, late/missed run (slot + grace), running too
 * long, duration anomaly (median + k * MAD, minimum history), error rate,
 * drill overdue.
 */
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
	suite_add_tcase(su, tc);
	return su;
}

CAIRN_CHECK_MAIN(sched_monitor_suite)
