/*
 * sched_test.h - fixtures shared by the sched suites: a temp store, a job
 * built from a cron expression, and runs recorded at fake times.
 */
#ifndef CAIRN_SCHED_TEST_H
#define CAIRN_SCHED_TEST_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/common.h"
#include "sched/sched.h"
#include "tests/support/testutil.h"

static inline int64_t st_utc(int y, int mo, int d, int h, int mi)
{
	struct tm tm = {0};
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	return (int64_t)timegm(&tm);
}

static inline void st_job(cairn_job *j, const char *client, const char *name, cairn_job_kind kind,
			  const char *cron, const char *tz)
{
	memset(j, 0, sizeof(*j));
	snprintf(j->id, sizeof(j->id), "%s/%s", client, name);
	snprintf(j->client, sizeof(j->client), "%s", client);
	snprintf(j->repository, sizeof(j->repository), "repo-%s", client);
	snprintf(j->site, sizeof(j->site), "dc1");
	j->kind = kind;
	ck_assert_msg(cairn_cron_parse(&j->cron, cron, tz) == 0, "%s", cairn_error_last());
	j->period_s = 86400;
	j->grace_s = 3600;
	j->max_runtime_s = 6 * 3600;
}

static inline cairn_store *st_open(const char *dir)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/cairnd.db", dir);
	cairn_store *s;
	ck_assert_msg(cairn_store_open(&s, path) == 0, "%s", cairn_error_last());
	return s;
}

/* Record a finished run of @p j for @p slot: started at slot, lasting dur_s. */
static inline int64_t st_run(cairn_store *s, const cairn_job *j, int64_t slot, int attempt,
			     cairn_run_status st, int64_t dur_s)
{
	cairn_run r;
	memset(&r, 0, sizeof(r));
	snprintf(r.job, sizeof(r.job), "%s", j->id);
	snprintf(r.client, sizeof(r.client), "%s", j->client);
	r.kind = j->kind;
	r.scheduled_for = slot;
	r.attempt = attempt;
	r.started = slot;
	int64_t id;
	ck_assert_msg(cairn_store_run_begin(s, &r, &id) == 0, "%s", cairn_error_last());
	if (st == CAIRN_RUN_RUNNING)
		return id;
	r.status = st;
	r.ended = slot + dur_s;
	r.duration_ms = dur_s * 1000;
	r.exit_code = st == CAIRN_RUN_OK ? 0 : 1;
	if (st != CAIRN_RUN_OK)
		snprintf(r.error, sizeof(r.error), "disk on fire");
	ck_assert_int_eq(cairn_store_run_finish(s, id, &r), 0);
	return id;
}

static inline const cairn_alert *st_find(const cairn_alert *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].alertname, name))
			return &v[i];
	return NULL;
}

#endif
