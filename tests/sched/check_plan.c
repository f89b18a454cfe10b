/*
 * check_plan.c - the plan with a fake clock: on-time slots, catch-up
 * policies after downtime, retries with backoff, verification after a
 * successful rerun, one claim per slot across a simulated restart.
 */
#include "tests/sched/sched_test.h"
#include "tests/support/check_main.h"

static char *dir;
static cairn_store *s;
static cairn_job job;
static cairn_policy pol;

static void setup(void)
{
	dir = tu_mkdtemp("plan");
	s = st_open(dir);
	st_job(&job, "host01", "backup", CAIRN_JOB_BACKUP, "0 2 * * *", "Europe/Berlin");
	cairn_policy_default(&pol);
}

static void teardown(void)
{
	cairn_cron_free(job.cron);
	cairn_store_close(s);
	tu_rmrf(dir);
	free(dir);
}

static size_t plan(int64_t now, cairn_action **a, int64_t *wake)
{
	size_t n;
	ck_assert_msg(cairn_plan_compute(s, &job, 1, &pol, now, a, &n, wake) == 0, "%s",
		      cairn_error_last());
	return n;
}

/* Claim and finish action @p a at @p now with status @p st. */
static int64_t run_action(const cairn_action *a, int64_t now, cairn_run_status st)
{
	cairn_run r;
	cairn_action_to_run(&job, a, now, &r);
	int64_t id;
	ck_assert_int_eq(cairn_store_run_begin(s, &r, &id), 0);
	r.status = st;
	r.ended = now + 60;
	r.duration_ms = 60000;
	ck_assert_int_eq(cairn_store_run_finish(s, id, &r), 0);
	return id;
}

START_TEST(plan_on_time)
{
	int64_t t0 = st_utc(2026, 6, 1, 12, 0), wake;
	cairn_action *a;
	ck_assert_uint_eq(plan(t0, &a, &wake), 0); /* registers the job: no past slots */
	free(a);
	int64_t slot = st_utc(2026, 6, 2, 0, 0); /* 02:00 CEST */
	ck_assert_int_eq(wake, slot);
	ck_assert_uint_eq(plan(slot - 1, &a, &wake), 0);
	free(a);
	ck_assert_uint_eq(plan(slot + 30, &a, &wake), 1);
	ck_assert_int_eq(a[0].reason, CAIRN_REASON_SCHEDULED);
	ck_assert_int_eq(a[0].scheduled_for, slot);
	ck_assert_int_eq(a[0].attempt, 1);
	/* claim it, then "restart": the same slot is not offered again */
	cairn_run r;
	cairn_action_to_run(&job, &a[0], slot + 30, &r);
	int64_t id;
	ck_assert_int_eq(cairn_store_run_begin(s, &r, &id), 0);
	free(a);
	cairn_store_close(s);
	s = st_open(dir);
	size_t n;
	ck_assert_int_eq(cairn_store_recover(s, slot + 40, NULL, NULL, &n), 0);
	ck_assert_uint_eq(n, 1); /* pid 0: never started, interrupted */
	ck_assert_int_eq(cairn_store_run_begin(s, &r, &id), -EEXIST);
	/* the interrupted run is retried after the first backoff (60 s) */
	ck_assert_uint_eq(plan(slot + 50, &a, &wake), 0);
	ck_assert_int_eq(wake, slot + 40 + 60);
	free(a);
	ck_assert_uint_eq(plan(slot + 100, &a, &wake), 1);
	ck_assert_int_eq(a[0].reason, CAIRN_REASON_RETRY);
	ck_assert_int_eq(a[0].attempt, 2);
	ck_assert_int_eq(a[0].scheduled_for, slot);
	free(a);
}
END_TEST

/* down for three days: none records them missed, once runs the latest, all runs each */
START_TEST(plan_catch_up)
{
	int64_t t0 = st_utc(2026, 6, 1, 12, 0), wake;
	cairn_action *a;
	plan(t0, &a, &wake);
	free(a);
	int64_t back = st_utc(2026, 6, 4, 10, 0); /* slots of 2, 3, 4 June were missed */
	pol.catch_up = CAIRN_CATCHUP_ONCE;
	ck_assert_uint_eq(plan(back, &a, &wake), 1);
	ck_assert_int_eq(a[0].reason, CAIRN_REASON_CATCHUP);
	ck_assert_int_eq(a[0].scheduled_for, st_utc(2026, 6, 4, 0, 0));
	run_action(&a[0], back, CAIRN_RUN_OK);
	free(a);
	cairn_run_query q = CAIRN_RUN_QUERY_INIT;
	q.status = CAIRN_RUN_MISSED;
	cairn_run *v;
	size_t n;
	ck_assert_int_eq(cairn_store_runs(s, &q, &v, &n), 0);
	ck_assert_uint_eq(n, 2);
	free(v);
	ck_assert_uint_eq(plan(back + 600, &a, &wake), 0);
	free(a);

	/* none: another outage, everything recorded missed, nothing runs */
	pol.catch_up = CAIRN_CATCHUP_NONE;
	back = st_utc(2026, 6, 6, 10, 0);
	ck_assert_uint_eq(plan(back, &a, &wake), 0);
	free(a);
	ck_assert_int_eq(cairn_store_runs(s, &q, &v, &n), 0);
	ck_assert_uint_eq(n, 4);
	free(v);

	/* all: one slot per tick, oldest first */
	pol.catch_up = CAIRN_CATCHUP_ALL;
	back = st_utc(2026, 6, 8, 10, 0);
	ck_assert_uint_eq(plan(back, &a, &wake), 1);
	ck_assert_int_eq(a[0].scheduled_for, st_utc(2026, 6, 7, 0, 0));
	run_action(&a[0], back, CAIRN_RUN_OK);
	free(a);
	ck_assert_uint_eq(plan(back + 120, &a, &wake), 1);
	ck_assert_int_eq(a[0].scheduled_for, st_utc(2026, 6, 8, 0, 0));
	free(a);

	/* a missed slot and an on-time one with once: only the on-time one runs */
	pol.catch_up = CAIRN_CATCHUP_ONCE;
	cairn_action x = {0, CAIRN_JOB_BACKUP, CAIRN_REASON_CATCHUP, st_utc(2026, 6, 8, 0, 0), 1, 0};
	run_action(&x, back + 120, CAIRN_RUN_OK);
	back = st_utc(2026, 6, 10, 0, 10);
	ck_assert_uint_eq(plan(back, &a, &wake), 1);
	ck_assert_int_eq(a[0].reason, CAIRN_REASON_SCHEDULED);
	ck_assert_int_eq(a[0].scheduled_for, st_utc(2026, 6, 10, 0, 0));
	free(a);
}
END_TEST

START_TEST(plan_retries_and_verify)
{
	int64_t t0 = st_utc(2026, 6, 1, 12, 0), wake;
	cairn_action *a;
	plan(t0, &a, &wake);
	free(a);
	int64_t slot = st_utc(2026, 6, 2, 0, 0), now = slot;
	ck_assert_uint_eq(plan(now, &a, &wake), 1);
	run_action(&a[0], now, CAIRN_RUN_FAILED); /* ends now + 60 */
	free(a);
	/* backoff 60 s, then 300 s: attempts 2 and 3; no fourth */
	int64_t backoff[] = {60, 300};
	for (int k = 0; k < 2; k++) {
		int64_t ended = now + 60;
		ck_assert_uint_eq(plan(ended + backoff[k] - 1, &a, &wake), 0);
		ck_assert_int_eq(wake, ended + backoff[k]);
		free(a);
		now = ended + backoff[k];
		ck_assert_uint_eq(plan(now, &a, &wake), 1);
		ck_assert_int_eq(a[0].reason, CAIRN_REASON_RETRY);
		ck_assert_int_eq(a[0].attempt, k + 2);
		ck_assert_int_gt(a[0].parent_id, 0);
		if (k == 0) {
			run_action(&a[0], now, CAIRN_RUN_FAILED);
			free(a);
			continue;
		}
		/* the third attempt succeeds: a verification follows */
		int64_t ok = run_action(&a[0], now, CAIRN_RUN_OK);
		free(a);
		ck_assert_uint_eq(plan(now + 61, &a, &wake), 1);
		ck_assert_int_eq(a[0].reason, CAIRN_REASON_VERIFY);
		ck_assert_int_eq(a[0].kind, CAIRN_JOB_CHECK);
		ck_assert_int_eq(a[0].parent_id, ok);
		cairn_run r;
		cairn_action_to_run(&job, &a[0], now + 61, &r);
		ck_assert_str_eq(r.job, "host01/backup:verify");
		int64_t id;
		ck_assert_int_eq(cairn_store_run_begin(s, &r, &id), 0);
		free(a);
		ck_assert_uint_eq(plan(now + 62, &a, &wake), 0);
		free(a);
	}
	/* exhausted attempts: a failed third attempt is not retried */
	int64_t slot2 = st_utc(2026, 6, 3, 0, 0);
	st_run(s, &job, slot2, 1, CAIRN_RUN_FAILED, 10);
	st_run(s, &job, slot2, 2, CAIRN_RUN_FAILED, 10);
	st_run(s, &job, slot2, 3, CAIRN_RUN_FAILED, 10);
	ck_assert_uint_eq(plan(slot2 + 3000, &a, &wake), 0);
	free(a);
	ck_assert_int_eq(cairn_policy_backoff(&pol, 2), 60);
	ck_assert_int_eq(cairn_policy_backoff(&pol, 4), 1500);
	ck_assert_int_eq(cairn_policy_backoff(&pol, 9), 1500);
}
END_TEST

static Suite *sched_plan_suite(void)
{
	Suite *su = suite_create("sched_plan");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, plan_on_time);
	tcase_add_test(tc, plan_catch_up);
	tcase_add_test(tc, plan_retries_and_verify);
	suite_add_tcase(su, tc);
	return su;
}

CAIRN_CHECK_MAIN(sched_plan_suite)
