/*
 * check_incident.c - incidents with a fake clock: open on the first firing
 * alert, repeat interval, escalation while unacknowledged, acknowledgement,
 * auto-resolve, silences (suppress notices, still recorded), timeline and
 * the Markdown review, persistence across a reopen of the store.
 */
#include "tests/sched/sched_test.h"
#include "tests/support/check_main.h"

static char *dir;
static cairn_store *s;
static cairn_config cfg; /* defaults: escalate 1 h, repeat 4 h */

static void setup(void)
{
	dir = tu_mkdtemp("incident");
	s = st_open(dir);
	memset(&cfg, 0, sizeof(cfg));
	cfg.defaults.escalate_after_s = 3600;
	cfg.defaults.repeat_interval_s = 4 * 3600;
}

static void teardown(void)
{
	cairn_store_close(s);
	tu_rmrf(dir);
	free(dir);
}

static cairn_alert alert(const char *client, int firing)
{
	cairn_alert a;
	memset(&a, 0, sizeof(a));
	snprintf(a.alertname, sizeof(a.alertname), "BackupFailed");
	snprintf(a.client, sizeof(a.client), "%s", client);
	snprintf(a.job, sizeof(a.job), "%s/backup", client);
	snprintf(a.key, sizeof(a.key), "BackupFailed/%s/backup", client);
	a.impact = a.urgency = 2;
	a.priority = 3;
	a.firing = firing;
	snprintf(a.summary, sizeof(a.summary), "%s/backup failed", client);
	return a;
}

/* Process one alert; returns the number of notices, the first in *nt. */
static size_t step(const cairn_alert *a, int64_t now, cairn_notice *nt)
{
	cairn_notice *v;
	size_t n;
	ck_assert_msg(cairn_incident_process(s, &cfg, a, 1, now, &v, &n) == 0, "%s",
		      cairn_error_last());
	if (n && nt)
		*nt = v[0];
	free(v);
	return n;
}

START_TEST(inc_lifecycle)
{
	int64_t t = 1000000;
	cairn_alert a = alert("host01", 1);
	cairn_notice nt;
	ck_assert_uint_eq(step(&a, t, &nt), 1);
	ck_assert_int_eq(nt.kind, CAIRN_NOTICE_OPENED);
	ck_assert_int_eq(nt.incident.state, CAIRN_INC_OPEN);
	int64_t id = nt.incident.id;
	ck_assert_ptr_nonnull(strstr(nt.incident.labels, "\"client\":\"host01\""));
	ck_assert_ptr_nonnull(strstr(nt.incident.labels, "\"priority\":\"P3\""));
	/* still firing: nothing new for a while */
	ck_assert_uint_eq(step(&a, t + 600, NULL), 0);
	/* unacknowledged after 1 h: escalation 1, after 2 h: 2 */
	ck_assert_uint_eq(step(&a, t + 3600, &nt), 1);
	ck_assert_int_eq(nt.kind, CAIRN_NOTICE_ESCALATED);
	ck_assert_int_eq(nt.incident.escalation, 1);
	ck_assert_int_eq(nt.incident.id, id);
	ck_assert_uint_eq(step(&a, t + 5000, NULL), 0);
	ck_assert_uint_eq(step(&a, t + 7200, &nt), 1);
	ck_assert_int_eq(nt.incident.escalation, 2);
	/* acknowledged: no escalation, no repeats */
	ck_assert_int_eq(cairn_incident_ack(s, id, "alice", t + 7300), 0);
	ck_assert_int_eq(cairn_incident_ack(s, id, "alice", t + 7300), -EALREADY);
	ck_assert_uint_eq(step(&a, t + 20 * 3600, NULL), 0);
	/* the condition clears: auto-resolve */
	a.firing = 0;
	ck_assert_uint_eq(step(&a, t + 21 * 3600, &nt), 1);
	ck_assert_int_eq(nt.kind, CAIRN_NOTICE_RESOLVED);
	ck_assert_int_eq(nt.incident.state, CAIRN_INC_RESOLVED);
	ck_assert_int_eq(nt.incident.resolved, t + 21 * 3600);
	ck_assert_uint_eq(step(&a, t + 22 * 3600, NULL), 0);
	/* it survives a reopen, with its timeline */
	cairn_store_close(s);
	s = st_open(dir);
	cairn_incident inc;
	ck_assert_int_eq(cairn_store_incident_get(s, id, &inc), 0);
	ck_assert_int_eq(inc.state, CAIRN_INC_RESOLVED);
	ck_assert_str_eq(inc.acked_by, "alice");
	cairn_timeline_entry *tl;
	size_t n;
	ck_assert_int_eq(cairn_store_timeline(s, id, &tl, &n), 0);
	ck_assert_uint_eq(n, 5); /* opened, escalated x2, acknowledged, resolved */
	ck_assert_ptr_nonnull(strstr(tl[0].text, "opened (P3)"));
	ck_assert_ptr_nonnull(strstr(tl[3].text, "acknowledged by alice"));
	ck_assert_ptr_nonnull(strstr(tl[4].text, "resolved"));
	free(tl);
	char *md;
	ck_assert_int_eq(cairn_incident_review(s, id, &md), 0);
	ck_assert_ptr_nonnull(strstr(md, "# Incident"));
	ck_assert_ptr_nonnull(strstr(md, "## Timeline"));
	ck_assert_ptr_nonnull(strstr(md, "alice"));
	free(md);
	/* firing again later: a new incident */
	a.firing = 1;
	ck_assert_uint_eq(step(&a, t + 30 * 3600, &nt), 1);
	ck_assert_int_eq(nt.kind, CAIRN_NOTICE_OPENED);
	ck_assert_int_ne(nt.incident.id, id);
}
END_TEST

START_TEST(inc_repeat)
{
	cfg.defaults.escalate_after_s = 0; /* escalation off */
	int64_t t = 5000000;
	cairn_alert a = alert("host01", 1);
	cairn_notice nt;
	ck_assert_uint_eq(step(&a, t, &nt), 1);
	ck_assert_uint_eq(step(&a, t + 4 * 3600 - 1, NULL), 0);
	ck_assert_uint_eq(step(&a, t + 4 * 3600, &nt), 1);
	ck_assert_int_eq(nt.kind, CAIRN_NOTICE_REPEAT);
	ck_assert_uint_eq(step(&a, t + 8 * 3600 - 1, NULL), 0);
	ck_assert_uint_eq(step(&a, t + 8 * 3600, &nt), 1);
	/* a route for host01 repeats hourly */
	cairn_cfg_route r;
	memset(&r, 0, sizeof(r));
	r.client = "host0*";
	r.repeat_interval_s = 3600;
	cfg.routes = &r;
	cfg.nroutes = 1;
	ck_assert_uint_eq(step(&a, t + 9 * 3600, &nt), 1);
	/* higher priority is recorded */
	a.priority = 1;
	ck_assert_uint_eq(step(&a, t + 9 * 3600 + 60, NULL), 0);
	cairn_incident inc;
	ck_assert_int_eq(cairn_store_incident_current(s, a.key, &inc), 0);
	ck_assert_int_eq(inc.priority, 1);
	/* priority 1 above max_priority 0 = any; with max 2 a P3 alert does not match */
	int64_t esc, rep;
	r.max_priority = 2;
	a.priority = 3;
	cairn_route_policy(&cfg, &a, &esc, &rep);
	ck_assert_int_eq(rep, 4 * 3600);
	a.priority = 2;
	cairn_route_policy(&cfg, &a, &esc, &rep);
	ck_assert_int_eq(rep, 3600);
	cfg.routes = NULL;
	cfg.nroutes = 0;
}
END_TEST

START_TEST(inc_silence)
{
	int64_t t = 9000000;
	cairn_silence sil;
	memset(&sil, 0, sizeof(sil));
	snprintf(sil.matchers, sizeof(sil.matchers), "client=host02");
	snprintf(sil.comment, sizeof(sil.comment), "maintenance window");
	snprintf(sil.created_by, sizeof(sil.created_by), "bob");
	sil.starts = t - 60;
	sil.ends = t + 7200;
	ck_assert_int_eq(cairn_store_silence_add(s, &sil), 0);
	cairn_alert a1 = alert("host01", 1), a2 = alert("host02", 1);
	ck_assert(cairn_silence_matches(&sil, &a2));
	ck_assert(!cairn_silence_matches(&sil, &a1));
	cairn_alert both[2] = {a1, a2};
	cairn_notice *v;
	size_t n;
	ck_assert_int_eq(cairn_incident_process(s, &cfg, both, 2, t, &v, &n), 0);
	ck_assert_uint_eq(n, 1); /* host02 silenced */
	ck_assert_str_eq(v[0].alert.client, "host01");
	free(v);
	/* the silenced incident is recorded */
	cairn_incident inc;
	ck_assert_int_eq(cairn_store_incident_current(s, a2.key, &inc), 0);
	ck_assert_int_eq(inc.notified, 0);
	cairn_timeline_entry *tl;
	ck_assert_int_eq(cairn_store_timeline(s, inc.id, &tl, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_ptr_nonnull(strstr(tl[1].text, "suppressed by silence"));
	ck_assert_ptr_nonnull(strstr(tl[1].text, "maintenance window"));
	free(tl);
	/* escalation during the silence: recorded, not sent */
	ck_assert_uint_eq(step(&a2, t + 3600, NULL), 0);
	ck_assert_int_eq(cairn_store_incident_current(s, a2.key, &inc), 0);
	ck_assert_int_eq(inc.escalation, 1);
	/* the silence ends while it still fires: the first notice goes out */
	cairn_notice nt;
	ck_assert_uint_eq(step(&a2, t + 7200, &nt), 1);
	ck_assert_int_eq(nt.kind, CAIRN_NOTICE_OPENED);
	/* a silenced incident that clears without ever notifying sends nothing */
	sil.starts = t + 8000;
	sil.ends = t + 9000;
	snprintf(sil.matchers, sizeof(sil.matchers), "client=host03,alertname=BackupFailed");
	ck_assert_int_eq(cairn_store_silence_add(s, &sil), 0);
	cairn_alert a3 = alert("host03", 1);
	ck_assert_uint_eq(step(&a3, t + 8100, NULL), 0);
	a3.firing = 0;
	ck_assert_uint_eq(step(&a3, t + 8200, NULL), 0);
	ck_assert_int_eq(cairn_store_incident_current(s, a3.key, &inc), -ENOENT);
	/* manual resolve */
	ck_assert_int_eq(cairn_store_incident_current(s, a1.key, &inc), 0);
	ck_assert_int_eq(cairn_incident_resolve(s, inc.id, "carol", t + 9999), 0);
	ck_assert_int_eq(cairn_incident_resolve(s, inc.id, "carol", t + 9999), -EALREADY);
}
END_TEST

static Suite *sched_incident_suite(void)
{
	Suite *su = suite_create("sched_incident");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, inc_lifecycle);
	tcase_add_test(tc, inc_repeat);
	tcase_add_test(tc, inc_silence);
	suite_add_tcase(su, tc);
	return su;
}

CAIRN_CHECK_MAIN(sched_incident_suite)
