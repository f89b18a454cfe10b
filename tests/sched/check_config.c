/*
 * check_config.c - cairnd's configuration sections: the shipped example
 * loads, defaults apply, jobs expand, and mistakes name the field.
 */
#include "tests/sched/sched_test.h"
#include "tests/support/check_main.h"

#ifndef CAIRN_SOURCE_DIR
#define CAIRN_SOURCE_DIR "."
#endif

START_TEST(cfg_example)
{
	cairn_config *cfg;
	const char *path = CAIRN_SOURCE_DIR "/docs/examples/cairnd.yaml";
	ck_assert_msg(cairn_config_load(&cfg, path) == 0, "%s", cairn_error_last());
	ck_assert_uint_eq(cfg->nclients, 2);
	const cairn_cfg_client *c = cairn_config_client(cfg, "db01");
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(c->timezone, "Europe/Berlin");
	ck_assert_int_eq(c->drill_overdue_s, 35 * 86400);
	ck_assert_uint_eq(c->nsources, 2);
	ck_assert_uint_eq(c->keep_last, 3);
	ck_assert_str_eq(c->site, "local");
	ck_assert_int_eq(cfg->daemon.catch_up, CAIRN_CATCHUP_ONCE);
	ck_assert_str_eq(cfg->daemon.database, "/var/lib/cairn/cairnd.db");
	ck_assert_str_eq(cfg->daemon.listen, "127.0.0.1:8790");
	ck_assert_int_eq(cfg->defaults.retry_backoff_s[2], 1500);
	ck_assert(cfg->defaults.low_space_percent == 10);
	ck_assert_int_eq(cfg->defaults.lag_grace_s, 3600);
	ck_assert_ptr_nonnull(cairn_config_notifier(cfg, "ops"));
	cairn_job *jobs;
	size_t n;
	ck_assert_int_eq(cairn_jobs_from_config(cfg, &jobs, &n), 0);
	ck_assert_uint_eq(n, 5);
	ck_assert_str_eq(jobs[0].id, "web01/backup");
	ck_assert_int_eq(jobs[0].period_s, 86400);
	ck_assert_int_eq(jobs[0].grace_s, 3600);
	ck_assert_str_eq(jobs[1].id, "web01/drill");
	ck_assert_int_eq(jobs[1].kind, CAIRN_JOB_DRILL);
	ck_assert_str_eq(jobs[4].id, "db01/prune");
	ck_assert_int_eq(jobs[3].overdue_s, 35 * 86400);
	ck_assert_int_eq(jobs[2].max_runtime_s, 4 * 3600);
	int64_t next;
	ck_assert_int_eq(cairn_cron_next(jobs[0].cron, st_utc(2026, 7, 1, 0, 0), &next), 0);
	ck_assert_int_eq(next, st_utc(2026, 7, 1, 23, 30)); /* 01:30 CEST */
	cairn_policy p;
	cairn_policy_from_config(cfg, &p);
	ck_assert_int_eq(p.retry_max_attempts, 3);
	cairn_jobs_free(jobs, n);
	cairn_config_free(cfg);
}
END_TEST

static int load_text(const char *text)
{
	char *dir = tu_mkdtemp("cfg");
	char path[512];
	snprintf(path, sizeof(path), "%s/c.yaml", dir);
	FILE *f = fopen(path, "w");
	fprintf(f, "repositories:\n  r:\n    targets: [{url: /tmp/x}]\n%s", text);
	fclose(f);
	cairn_config *cfg;
	int rc = cairn_config_load(&cfg, path);
	if (rc == 0)
		cairn_config_free(cfg);
	tu_rmrf(dir);
	free(dir);
	return rc;
}

START_TEST(cfg_errors)
{
	static const struct {
		const char *yaml, *msg;
	} cases[] = {
		{"clients:\n  a:\n    repository: r\n    sources: [/x]\n    schedule: '0 25 * * *'\n",
		 "clients.a.schedule: cron '0 25 * * *': bad hour field"},
		{"clients:\n  a:\n    repository: nope\n    sources: [/x]\n    schedule: '@daily'\n",
		 "repository 'nope' is not defined"},
		{"clients:\n  a:\n    repository: r\n    sources: [x]\n    schedule: '@daily'\n",
		 "not an absolute path"},
		{"clients:\n  a:\n    repository: r\n    sources: [/x]\n    schedule: '@daily'\n"
		 "    timezone: Mars/Base\n", "Mars/Base"},
		{"clients:\n  a:\n    repository: r\n    sources: [/x]\n    shedule: '@daily'\n",
		 "clients.a.shedule: unknown key"},
		{"daemon:\n  catch_up: sometimes\n", "daemon.catch_up: 'sometimes'"},
		{"notifiers:\n  n:\n    kind: pager\n", "notifiers.n.kind"},
		{"notifiers:\n  n:\n    kind: email\n    url: smtp://h:25\n", "email needs from and to"},
		{"routes:\n  - notifiers: [ghost]\n", "notifier 'ghost' is not defined"},
		{"routes:\n  - notifiers: [x]\n    priority: P9\n", "routes[0].priority"},
		{"defaults:\n  retry: {backoff: [1m, soon]}\n", "'soon' is not a duration"},
		{"defaults:\n  grace: 1 hour\n", "defaults.grace"},
		{"defaults:\n  low_space_percent: 120\n", "defaults.low_space_percent: '120'"},
		{"defaults:\n  low_space_percent: nan\n", "defaults.low_space_percent"},
		{"defaults:\n  low_space_percent: 10%\n", "defaults.low_space_percent"},
		{"defaults:\n  low_space_pct: 5\n", "defaults.low_space_pct: unknown key"},
		{"defaults:\n  lag_grace: soon\n", "defaults.lag_grace: 'soon' is not a duration"},
		{"defaults:\n  lag_grace: off\n", "defaults.lag_grace: 'off'"},
		{"defaults:\n  lag_grace: 0\n", "defaults.lag_grace: '0'"},
		{"defaults:\n  lag_grace: -1h\n", "defaults.lag_grace"},
		{"defaults:\n  lag_grace: [1h]\n", "defaults.lag_grace"},
		{"clients:\n  a:\n    repository: r\n    sources: [/x]\n    schedule: '@daily'\n"
		 "    jobs:\n      - {name: s, kind: command, schedule: '@daily'}\n",
		 "command is required"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_msg(load_text(cases[i].yaml) == -EINVAL, "accepted case %zu", i);
		ck_assert_msg(strstr(cairn_error_last(), cases[i].msg), "case %zu: '%s'", i,
			      cairn_error_last());
	}
	ck_assert_int_eq(load_text("defaults:\n  escalate_after: off\n"), 0);
	ck_assert_int_eq(load_text("defaults:\n  low_space_percent: 2.5\n"), 0);
	ck_assert_int_eq(load_text("defaults:\n  lag_grace: 90m\n"), 0);
}
END_TEST

static Suite *sched_config_suite(void)
{
	Suite *su = suite_create("sched_config");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, cfg_example);
	tcase_add_test(tc, cfg_errors);
	suite_add_tcase(su, tc);
	return su;
}

CAIRN_CHECK_MAIN(sched_config_suite)
