/*
 * check_store.c - the SQLite store: runs claimed before they start, one
 * claim per slot, durability across a kill -9 of the writer (a forked child
 * that claims a run and SIGKILLs itself), recovery to 'interrupted',
 * incidents unique per key while unresolved, timeline, silences.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/common.h"
#include "sched/sched.h"
#include "tests/support/check_main.h"
#include "tests/support/testutil.h"

static char *dir;
static char dbpath[512];

static void setup(void)
{
	dir = tu_mkdtemp("store");
	snprintf(dbpath, sizeof(dbpath), "%s/cairnd.db", dir);
}

static void teardown(void)
{
	tu_rmrf(dir);
	free(dir);
}

static cairn_run mkrun(const char *job, int64_t slot, int attempt)
{
	cairn_run r;
	memset(&r, 0, sizeof(r));
	snprintf(r.job, sizeof(r.job), "%s", job);
	snprintf(r.client, sizeof(r.client), "host01");
	r.kind = CAIRN_JOB_BACKUP;
	r.scheduled_for = slot;
	r.attempt = attempt;
	r.started = slot + 5;
	return r;
}

START_TEST(store_runs)
{
	cairn_store *s;
	ck_assert_msg(cairn_store_open(&s, dbpath) == 0, "%s", cairn_error_last());
	int64_t first;
	ck_assert_int_eq(cairn_store_job_register(s, "host01/backup", "host01", CAIRN_JOB_BACKUP,
						  1000, &first), 0);
	ck_assert_int_eq(cairn_store_job_register(s, "host01/backup", "host01", CAIRN_JOB_BACKUP,
						  2000, &first), 0);
	ck_assert_int_eq(first, 1000);
	cairn_run r = mkrun("host01/backup", 3600, 1);
	int64_t id, id2;
	ck_assert_int_eq(cairn_store_run_begin(s, &r, &id), 0);
	ck_assert_int_eq(cairn_store_run_begin(s, &r, &id2), -EEXIST);
	r.attempt = 2;
	ck_assert_int_eq(cairn_store_run_begin(s, &r, &id2), 0);
	ck_assert_int_eq(cairn_store_run_missed(s, "host01/backup", "host01", CAIRN_JOB_BACKUP,
						3600, 9000), -EEXIST);
	ck_assert_int_eq(cairn_store_run_missed(s, "host01/backup", "host01", CAIRN_JOB_BACKUP,
						7200, 9000), 0);
	cairn_run f;
	memset(&f, 0, sizeof(f));
	f.status = CAIRN_RUN_OK;
	f.ended = 3700;
	f.exit_code = 0;
	f.duration_ms = 95000;
	f.bytes = 1 << 20;
	f.files = 42;
	f.cpu_ms = 1234;
	f.peak_rss_kb = 50000;
	ck_assert_int_eq(cairn_store_run_finish(s, id, &f), 0);
	ck_assert_int_eq(cairn_store_run_finish(s, id, &f), -ENOENT);
	cairn_run g;
	ck_assert_int_eq(cairn_store_run_get(s, id, &g), 0);
	ck_assert_int_eq(g.status, CAIRN_RUN_OK);
	ck_assert_int_eq(g.duration_ms, 95000);
	ck_assert_int_eq(g.files, 42);
	ck_assert_int_eq(g.peak_rss_kb, 50000);
	ck_assert_str_eq(g.client, "host01");
	ck_assert_int_eq(cairn_store_run_get(s, 999, &g), -ENOENT);
	cairn_run_query q = CAIRN_RUN_QUERY_INIT;
	q.job = "host01/backup";
	cairn_run *v;
	size_t n;
	ck_assert_int_eq(cairn_store_runs(s, &q, &v, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_int_eq(v[0].status, CAIRN_RUN_MISSED);
	ck_assert_int_eq(v[1].status, CAIRN_RUN_RUNNING);
	ck_assert_int_eq(v[1].attempt, 2);
	free(v);
	q.status = CAIRN_RUN_OK;
	ck_assert_int_eq(cairn_store_runs(s, &q, &v, &n), 0);
	ck_assert_uint_eq(n, 1);
	free(v);
	cairn_store_close(s);
}
END_TEST

/* The child claims a slot, records its pid, and dies by SIGKILL mid-job. */
START_TEST(store_kill9)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		cairn_store *s;
		if (cairn_store_open(&s, dbpath) < 0)
			_exit(2);
		cairn_run r = mkrun("host01/backup", 86400, 1);
		int64_t id;
		if (cairn_store_run_begin(s, &r, &id) < 0 ||
		    cairn_store_run_set_pid(s, id, getpid()) < 0)
			_exit(3);
		raise(SIGKILL);
		_exit(4);
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	cairn_store *s;
	ck_assert_int_eq(cairn_store_open(&s, dbpath), 0);
	size_t n;
	ck_assert_int_eq(cairn_store_recover(s, 90000, NULL, NULL, &n), 0);
	ck_assert_uint_eq(n, 1);
	cairn_run_query q = CAIRN_RUN_QUERY_INIT;
	cairn_run *v;
	size_t cnt;
	ck_assert_int_eq(cairn_store_runs(s, &q, &v, &cnt), 0);
	ck_assert_uint_eq(cnt, 1);
	ck_assert_int_eq(v[0].status, CAIRN_RUN_INTERRUPTED);
	ck_assert_int_eq(v[0].ended, 90000);
	ck_assert_int_eq(v[0].pid, pid);
	free(v);
	/* the slot is taken: the restarted daemon cannot run it a second time */
	cairn_run r = mkrun("host01/backup", 86400, 1);
	int64_t id;
	ck_assert_int_eq(cairn_store_run_begin(s, &r, &id), -EEXIST);
	/* a live process keeps its run 'running' */
	r = mkrun("host01/backup", 2 * 86400, 1);
	ck_assert_int_eq(cairn_store_run_begin(s, &r, &id), 0);
	ck_assert_int_eq(cairn_store_run_set_pid(s, id, getpid()), 0);
	ck_assert_int_eq(cairn_store_recover(s, 90000, NULL, NULL, &n), 0);
	ck_assert_uint_eq(n, 0);
	cairn_store_close(s);
}
END_TEST

START_TEST(store_incidents)
{
	cairn_store *s;
	ck_assert_int_eq(cairn_store_open(&s, dbpath), 0);
	cairn_incident i;
	memset(&i, 0, sizeof(i));
	snprintf(i.key, sizeof(i.key), "BackupFailed/host01/backup");
	snprintf(i.alertname, sizeof(i.alertname), "BackupFailed");
	snprintf(i.labels, sizeof(i.labels), "{\"client\":\"host01\"}");
	i.priority = 2;
	i.opened = 100;
	ck_assert_int_eq(cairn_store_incident_insert(s, &i), 0);
	ck_assert_int_gt(i.id, 0);
	cairn_incident j = i;
	ck_assert_int_eq(cairn_store_incident_insert(s, &j), -EEXIST);
	ck_assert_int_eq(cairn_store_timeline_add(s, i.id, 100, "opened: %s", "x"), 0);
	ck_assert_int_eq(cairn_store_timeline_add(s, i.id, 160, "resolved"), 0);
	i.state = CAIRN_INC_RESOLVED;
	i.resolved = 160;
	ck_assert_int_eq(cairn_store_incident_update(s, &i), 0);
	ck_assert_int_eq(cairn_store_incident_current(s, i.key, &j), -ENOENT);
	/* a new incident of the same key may open once the old one is resolved */
	j = i;
	j.state = CAIRN_INC_OPEN;
	j.resolved = 0;
	ck_assert_int_eq(cairn_store_incident_insert(s, &j), 0);
	ck_assert_int_ne(j.id, i.id);
	cairn_incident cur;
	ck_assert_int_eq(cairn_store_incident_current(s, i.key, &cur), 0);
	ck_assert_int_eq(cur.id, j.id);
	cairn_incident *v;
	size_t n;
	ck_assert_int_eq(cairn_store_incidents(s, -2, 0, &v, &n), 0);
	ck_assert_uint_eq(n, 1);
	free(v);
	ck_assert_int_eq(cairn_store_incidents(s, CAIRN_INC_RESOLVED, 0, &v, &n), 0);
	ck_assert_uint_eq(n, 1);
	free(v);
	cairn_timeline_entry *tl;
	ck_assert_int_eq(cairn_store_timeline(s, i.id, &tl, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(tl[0].text, "opened: x");
	free(tl);
	cairn_store_close(s);
}
END_TEST

START_TEST(store_silences)
{
	cairn_store *s;
	ck_assert_int_eq(cairn_store_open(&s, dbpath), 0);
	cairn_silence sil;
	memset(&sil, 0, sizeof(sil));
	static const char *bad[] = {"", "client", "=x", "client=", "foo=bar", "client=a,",
				    "client=a,,job=b"};
	sil.starts = 100;
	sil.ends = 200;
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		snprintf(sil.matchers, sizeof(sil.matchers), "%s", bad[k]);
		ck_assert_msg(cairn_store_silence_add(s, &sil) == -EINVAL, "accepted %s", bad[k]);
	}
	snprintf(sil.matchers, sizeof(sil.matchers), "client=host02,alertname=RunLate");
	ck_assert_int_eq(cairn_store_silence_add(s, &sil), 0);
	cairn_silence *v;
	size_t n;
	ck_assert_int_eq(cairn_store_silences(s, 150, &v, &n), 0);
	ck_assert_uint_eq(n, 1);
	free(v);
	ck_assert_int_eq(cairn_store_silences(s, 200, &v, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(v);
	ck_assert_int_eq(cairn_store_silence_expire(s, sil.id, 120), 0);
	ck_assert_int_eq(cairn_store_silences(s, 150, &v, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(v);
	ck_assert_int_eq(cairn_store_silence_expire(s, sil.id, 130), -ENOENT);
	cairn_store_close(s);
}
END_TEST

static Suite *sched_store_suite(void)
{
	Suite *s = suite_create("sched_store");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, store_runs);
	tcase_add_test(tc, store_kill9);
	tcase_add_test(tc, store_incidents);
	tcase_add_test(tc, store_silences);
	suite_add_tcase(s, tc);
	return s;
}

CAIRN_CHECK_MAIN(sched_store_suite)
