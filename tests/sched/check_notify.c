/*
 * check_notify.c - notifiers against real receivers on 127.0.0.1: an HTTP
 * sink and an SMTP sink (small servers in threads of this test), the Debian
 * prometheus-alertmanager (started here on a loopback port, its v2 API
 * queried to see the alert arrive and then resolve), and an external
 * command. Also: failures land in the incident timeline, routing.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <curl/curl.h>

#include "tests/sched/sched_test.h"
#include "tests/support/check_main.h"
#include "tests/support/sink.h"

static cairn_notice mknotice(cairn_notice_kind k, const char *client)
{
	cairn_notice nt;
	memset(&nt, 0, sizeof(nt));
	nt.kind = k;
	cairn_alert *a = &nt.alert;
	snprintf(a->alertname, sizeof(a->alertname), "BackupFailed");
	snprintf(a->client, sizeof(a->client), "%s", client);
	snprintf(a->job, sizeof(a->job), "%s/backup", client);
	snprintf(a->target, sizeof(a->target), "repo-%s", client);
	snprintf(a->site, sizeof(a->site), "dc1");
	snprintf(a->key, sizeof(a->key), "BackupFailed/%s/backup", client);
	snprintf(a->summary, sizeof(a->summary), "%s/backup failed: \"disk\" on\nfire", client);
	a->priority = 2;
	a->firing = k != CAIRN_NOTICE_RESOLVED;
	nt.incident.id = 7;
	snprintf(nt.incident.key, sizeof(nt.incident.key), "%s", a->key);
	nt.incident.priority = 2;
	nt.incident.opened = time(NULL) - 60;
	nt.incident.state = k == CAIRN_NOTICE_RESOLVED ? CAIRN_INC_RESOLVED : CAIRN_INC_OPEN;
	if (k == CAIRN_NOTICE_RESOLVED)
		nt.incident.resolved = time(NULL);
	return nt;
}

START_TEST(notify_webhook)
{
	tu_sink *sk = tu_sink_start(0);
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", sk->port);
	cairn_cfg_notifier nf = {0};
	nf.name = "hook";
	nf.kind = CAIRN_NOTIFIER_WEBHOOK;
	nf.url = url;
	nf.timeout_s = 5;
	cairn_notice nt = mknotice(CAIRN_NOTICE_OPENED, "host01");
	ck_assert_msg(cairn_notify_send(&nf, &nt, 1000) == 0, "%s", cairn_error_last());
	ck_assert_int_eq(sk->count, 1);
	ck_assert_ptr_nonnull(strstr(sk->last, "POST /hook HTTP/1.1"));
	ck_assert_ptr_nonnull(strcasestr(sk->last, "Content-Type: application/json"));
	ck_assert_ptr_nonnull(strstr(sk->last, "\"event\":\"opened\""));
	ck_assert_ptr_nonnull(strstr(sk->last, "\"client\":\"host01\""));
	ck_assert_ptr_nonnull(strstr(sk->last, "\\\"disk\\\" on\\nfire")); /* escaped */
	ck_assert_ptr_nonnull(strstr(sk->last, "\"priority\":\"P2\""));
	/* an error status is a failure */
	sk->status = 500;
	ck_assert_int_eq(cairn_notify_send(&nf, &nt, 1000), -EIO);
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "HTTP 500"));
	tu_sink_stop(sk);
	/* nobody listening: a failure, quickly */
	ck_assert_int_eq(cairn_notify_send(&nf, &nt, 1000), -EIO);
}
END_TEST

START_TEST(notify_email)
{
	tu_sink *sk = tu_sink_start(1);
	char url[128];
	snprintf(url, sizeof(url), "smtp://127.0.0.1:%d/cairn.test", sk->port);
	char *to[] = {"ops@example.org", "oncall@example.org", NULL};
	cairn_cfg_notifier nf = {0};
	nf.name = "mail";
	nf.kind = CAIRN_NOTIFIER_EMAIL;
	nf.url = url;
	nf.from = "cairn@example.org";
	nf.to = to;
	nf.nto = 2;
	nf.timeout_s = 5;
	cairn_notice nt = mknotice(CAIRN_NOTICE_ESCALATED, "host01");
	ck_assert_msg(cairn_notify_send(&nf, &nt, 1780000000) == 0, "%s", cairn_error_last());
	for (int i = 0; i < 200 && !sk->count; i++) /* the sink records after QUIT */
		usleep(10000);
	pthread_mutex_lock(&sk->mu);
	ck_assert_int_eq(sk->count, 1);
	pthread_mutex_unlock(&sk->mu);
	ck_assert_ptr_nonnull(strstr(sk->last, "EHLO cairn.test"));
	ck_assert_ptr_nonnull(strstr(sk->last, "MAIL FROM:<cairn@example.org>"));
	ck_assert_ptr_nonnull(strstr(sk->last, "RCPT TO:<ops@example.org>"));
	ck_assert_ptr_nonnull(strstr(sk->last, "RCPT TO:<oncall@example.org>"));
	ck_assert_ptr_nonnull(strstr(sk->last, "Date: Thu, 28 May 2026 20:26:40 +0000\r\n"));
	ck_assert_ptr_nonnull(strstr(sk->last, "Subject: [cairn P2] escalated: host01/backup failed:"
					     " \"disk\" on fire\r\n"));
	ck_assert_ptr_nonnull(strstr(sk->last, "Message-ID: <cairn-7-escalated-1780000000@cairnd>"));
	ck_assert_ptr_nonnull(strstr(sk->last, "\r\n\r\nIncident 7"));
	tu_sink_stop(sk);
}
END_TEST

START_TEST(notify_command)
{
	char *dir = tu_mkdtemp("notify");
	char script[1024];
	snprintf(script, sizeof(script), "cat > %s/in; env | grep ^CAIRN_ | sort > %s/env", dir,
		 dir);
	char *argv[] = {"/bin/sh", "-c", script, NULL};
	cairn_cfg_notifier nf = {0};
	nf.name = "cmd";
	nf.kind = CAIRN_NOTIFIER_COMMAND;
	nf.command = argv;
	nf.timeout_s = 5;
	cairn_notice nt = mknotice(CAIRN_NOTICE_OPENED, "host01");
	ck_assert_msg(cairn_notify_send(&nf, &nt, 1000) == 0, "%s", cairn_error_last());
	ck_assert_int_eq(tu_sh("grep -q '\"event\":\"opened\"' %s/in", dir), 0);
	ck_assert_int_eq(tu_sh("grep -qx 'CAIRN_CLIENT=host01' %s/env", dir), 0);
	ck_assert_int_eq(tu_sh("grep -qx 'CAIRN_PRIORITY=P2' %s/env", dir), 0);
	/* exit status and time-out; a command that ignores stdin does not kill us */
	char *fail[] = {"/bin/sh", "-c", "exit 3", NULL};
	nf.command = fail;
	ck_assert_int_eq(cairn_notify_send(&nf, &nt, 1000), -EIO);
	char *slow[] = {"/bin/sleep", "10", NULL};
	nf.command = slow;
	nf.timeout_s = 1;
	uint64_t t0 = cairn_now_ns();
	ck_assert_int_eq(cairn_notify_send(&nf, &nt, 1000), -ETIMEDOUT);
	ck_assert_uint_lt(cairn_now_ns() - t0, 3000000000ull);
	char *missing[] = {"/nonexistent/notifier", NULL};
	nf.command = missing;
	ck_assert_int_eq(cairn_notify_send(&nf, &nt, 1000), -EIO);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* Routing and timeline: one good webhook, one dead one, escalation-only notifier. */
START_TEST(notify_deliver)
{
	char *dir = tu_mkdtemp("deliver");
	cairn_store *s = st_open(dir);
	tu_sink *sk = tu_sink_start(0);
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", sk->port);
	cairn_cfg_notifier nfs[3] = {{0}, {0}, {0}};
	nfs[0].name = "good";
	nfs[0].url = url;
	nfs[1].name = "dead";
	nfs[1].url = "http://127.0.0.1:1/";
	nfs[2].name = "pager";
	nfs[2].url = url;
	for (int i = 0; i < 3; i++)
		nfs[i].timeout_s = 3;
	char *r0n[] = {"good", "dead", NULL}, *r0e[] = {"pager", NULL}, *r1n[] = {"good", NULL};
	cairn_cfg_route routes[2] = {{0}, {0}};
	routes[0].client = "db*";
	routes[0].notifiers = r0n;
	routes[0].nnotifiers = 2;
	routes[0].escalate_to = r0e;
	routes[0].nescalate_to = 1;
	routes[1].notifiers = r1n;
	routes[1].nnotifiers = 1;
	routes[1].max_priority = 1;
	cairn_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.notifiers = nfs;
	cfg.nnotifiers = 3;
	cfg.routes = routes;
	cfg.nroutes = 2;
	cfg.defaults.escalate_after_s = 3600;
	cfg.defaults.repeat_interval_s = 3600;
	cairn_alert a;
	memset(&a, 0, sizeof(a));
	snprintf(a.key, sizeof(a.key), "BackupFailed/db01/backup");
	snprintf(a.alertname, sizeof(a.alertname), "BackupFailed");
	snprintf(a.client, sizeof(a.client), "db01");
	a.priority = 2;
	a.firing = 1;
	cairn_notice *v;
	size_t n;
	ck_assert_int_eq(cairn_incident_process(s, &cfg, &a, 1, 1000, &v, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(cairn_notify_deliver(s, &cfg, &v[0], 1000), 1); /* "dead" failed */
	ck_assert_int_eq(sk->count, 1);
	int64_t id = v[0].incident.id;
	free(v);
	ck_assert_int_eq(cairn_incident_process(s, &cfg, &a, 1, 1000 + 3600, &v, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(v[0].kind, CAIRN_NOTICE_ESCALATED);
	ck_assert_int_eq(cairn_notify_deliver(s, &cfg, &v[0], 1000 + 3600), 1);
	ck_assert_int_eq(sk->count, 3); /* good + pager */
	free(v);
	cairn_timeline_entry *tl;
	ck_assert_int_eq(cairn_store_timeline(s, id, &tl, &n), 0);
	int sent = 0, failed = 0, pager = 0;
	for (size_t i = 0; i < n; i++) {
		sent += strstr(tl[i].text, "sent via good") != NULL;
		failed += strstr(tl[i].text, "via dead failed") != NULL;
		pager += strstr(tl[i].text, "escalated notice sent via pager") != NULL;
	}
	free(tl);
	ck_assert_int_eq(sent, 2);
	ck_assert_int_eq(failed, 2);
	ck_assert_int_eq(pager, 1);
	/* host01 P2 matches no route (route 1 is P1 only): recorded */
	snprintf(a.key, sizeof(a.key), "BackupFailed/host01/backup");
	snprintf(a.client, sizeof(a.client), "host01");
	ck_assert_int_eq(cairn_incident_process(s, &cfg, &a, 1, 5000, &v, &n), 0);
	ck_assert_int_eq(cairn_notify_deliver(s, &cfg, &v[0], 5000), 0);
	ck_assert_int_eq(cairn_store_timeline(s, v[0].incident.id, &tl, &n), 0);
	ck_assert_ptr_nonnull(strstr(tl[n - 1].text, "no route matches"));
	free(tl);
	free(v);
	tu_sink_stop(sk);
	cairn_store_close(s);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* ---- Alertmanager ---- */

#define AM_BIN "/usr/bin/prometheus-alertmanager"

START_TEST(notify_alertmanager)
{
	ck_assert_msg(access(AM_BIN, X_OK) == 0, "%s missing: run scripts/install-deps.sh", AM_BIN);
	char *dir = tu_mkdtemp("am");
	int port = 19100 + getpid() % 800;
	char cfgp[512], arg[6][600];
	snprintf(cfgp, sizeof(cfgp), "%s/am.yml", dir);
	FILE *f = fopen(cfgp, "w");
	fprintf(f, "route:\n  receiver: none\n  group_wait: 0s\n  group_interval: 1s\n"
		   "  repeat_interval: 1h\nreceivers: [{name: none}]\n");
	fclose(f);
	snprintf(arg[0], sizeof(arg[0]), "--config.file=%s", cfgp);
	snprintf(arg[1], sizeof(arg[1]), "--storage.path=%s/data", dir);
	snprintf(arg[2], sizeof(arg[2]), "--web.listen-address=127.0.0.1:%d", port);
	snprintf(arg[3], sizeof(arg[3]), "--web.external-url=http://127.0.0.1:%d", port);
	snprintf(arg[4], sizeof(arg[4]), "--cluster.listen-address=");
	snprintf(arg[5], sizeof(arg[5]), "--log.level=warn");
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 2);
		execl(AM_BIN, AM_BIN, arg[0], arg[1], arg[2], arg[3], arg[4], arg[5], (char *)NULL);
		_exit(127);
	}
	char url[128], *body;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/-/ready", port);
	int ready = 0;
	for (int i = 0; i < 100 && !ready; i++) {
		usleep(50000);
		ready = tu_http("GET", url, NULL, &body) == 200 && waitpid(pid, NULL, WNOHANG) == 0;
		free(body);
	}
	ck_assert_msg(ready, "alertmanager did not start on port %d", port);
	char base[64];
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
	cairn_cfg_notifier nf = {0};
	nf.name = "am";
	nf.kind = CAIRN_NOTIFIER_ALERTMANAGER;
	nf.url = base;
	nf.timeout_s = 5;
	nf.ttl_s = 3600;
	cairn_notice nt = mknotice(CAIRN_NOTICE_OPENED, "host01");
	int64_t now = time(NULL);
	ck_assert_msg(cairn_notify_send(&nf, &nt, now) == 0, "%s", cairn_error_last());
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v2/alerts?filter=client%%3D%%22host01"
		 "%%22", port);
	ck_assert_int_eq(tu_http("GET", url, NULL, &body), 200);
	ck_assert_msg(strstr(body, "\"alertname\":\"BackupFailed\""), "%s", body);
	ck_assert_ptr_nonnull(strstr(body, "\"job\":\"host01/backup\""));
	ck_assert_ptr_nonnull(strstr(body, "\"state\":\"active\""));
	ck_assert_ptr_nonnull(strstr(body, "\"priority\":\"P2\""));
	free(body);
	/* resolved: same labels, endsAt = now; it leaves the active list */
	nt = mknotice(CAIRN_NOTICE_RESOLVED, "host01");
	ck_assert_msg(cairn_notify_send(&nf, &nt, now + 1) == 0, "%s", cairn_error_last());
	ck_assert_int_eq(tu_http("GET", url, NULL, &body), 200);
	ck_assert_msg(!strstr(body, "BackupFailed"), "still listed: %s", body);
	free(body);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

static Suite *sched_notify_suite(void)
{
	Suite *su = suite_create("sched_notify");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, notify_webhook);
	tcase_add_test(tc, notify_email);
	tcase_add_test(tc, notify_command);
	tcase_add_test(tc, notify_deliver);
	tcase_add_test(tc, notify_alertmanager);
	suite_add_tcase(su, tc);
	return su;
}

CAIRN_CHECK_MAIN(sched_notify_suite)
