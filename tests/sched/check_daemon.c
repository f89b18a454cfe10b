/*
 * check_daemon.c - the real cairnd end to end, on 127.0.0.1: its HTTP side
 * (/healthz, /metrics through `promtool check metrics`, the API's bearer
 * token), a backup to a repository whose target is gone that fails, opens a
 * P2 incident and notifies a real Alertmanager, a webhook sink and an SMTP
 * sink (small servers in threads here), then succeeds on retry once the
 * target is back, is verified, and resolves everywhere; and kill -9 of the
 * daemon while a job runs: no run lost, no slot run twice; and the real cron
 * path: a '* * * * *' backup runs on its own, once for its slot.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "tests/sched/sched_test.h"
#include "tests/support/check_main.h"
#include "tests/support/sink.h"

#define AM_BIN "/usr/bin/prometheus-alertmanager"
#define PROMTOOL "/usr/bin/promtool"
#define TOKEN "t0ken-for-tests"

typedef struct env {
	char *dir;
	int port;
	char base[64];
	char cfg[600];
	pid_t pid;
} env;

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {0};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	socklen_t al = sizeof(a);
	getsockname(fd, (struct sockaddr *)&a, &al);
	close(fd);
	return ntohs(a.sin_port);
}

/* A repository REPO at DIR/repo with source DIR/src, and the config's common part. */
static void env_init(env *e, const char *tag, const char *extra)
{
	memset(e, 0, sizeof(*e));
	e->dir = tu_mkdtemp(tag);
	e->port = free_port();
	snprintf(e->base, sizeof(e->base), "http://127.0.0.1:%d", e->port);
	snprintf(e->cfg, sizeof(e->cfg), "%s/cairnd.yaml", e->dir);
	ck_assert_int_eq(tu_sh("cd '%s' && mkdir src && echo hello > src/a && echo skip > src/b.tmp"
			       " && echo pw > pass && echo %s > token && %s -q -r %s/repo "
			       "--password-file pass init", e->dir, TOKEN, CAIRN_BIN, e->dir), 0);
	FILE *f = fopen(e->cfg, "w");
	fprintf(f, "repositories:\n  r1:\n    password_file: %s/pass\n    targets:\n"
		   "      - {url: %s/repo, site: dc1}\n"
		   "daemon:\n  state_dir: %s/state\n  listen: 127.0.0.1:%d\n"
		   "  api_token_file: %s/token\n  max_concurrent_jobs: 2\n"
		   "defaults:\n  retry: {max_attempts: 4, backoff: [2s]}\n  escalate_after: off\n"
		   "  repeat_interval: off\n"
		   "clients:\n  host01:\n    repository: r1\n    sources: [%s/src]\n"
		   "    excludes: ['*.tmp']\n    schedule: '0 0 1 1 *'\n"
		   "    drill: {schedule: '0 0 1 1 *'}\n%s",
		e->dir, e->dir, e->dir, e->port, e->dir, e->dir, extra ? extra : "");
	fclose(f);
}

static void daemon_start(env *e)
{
	char log[600];
	snprintf(log, sizeof(log), "%s/cairnd.log", e->dir);
	e->pid = fork();
	if (e->pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		dup2(fd, 2);
		execl(CAIRND_BIN, CAIRND_BIN, "--config", e->cfg, "--foreground", (char *)NULL);
		_exit(127);
	}
	char url[128];
	snprintf(url, sizeof(url), "%s/healthz", e->base);
	for (int i = 0; i < 100; i++) {
		char *body;
		long code = tu_http("GET", url, NULL, &body);
		int ok = code == 200 && !strcmp(body, "ok\n");
		free(body);
		if (ok)
			return;
		ck_assert_msg(waitpid(e->pid, NULL, WNOHANG) == 0, "cairnd died; see %s", log);
		usleep(50000);
	}
	ck_abort_msg("cairnd did not answer /healthz; see %s", log);
}

/* SIGTERM (clean) or SIGKILL; returns the exit status. */
static int daemon_stop(env *e, int sig)
{
	int st = -1;
	kill(e->pid, sig);
	waitpid(e->pid, &st, 0);
	e->pid = 0;
	return st;
}

static void env_done(env *e)
{
	if (e->pid)
		daemon_stop(e, SIGTERM);
	tu_rmrf(e->dir);
	free(e->dir);
}

static json_t *api_get(env *e, const char *path)
{
	char url[512], *body;
	snprintf(url, sizeof(url), "%s%s", e->base, path);
	long code = tu_http("GET", url, TOKEN, &body);
	ck_assert_msg(code == 200, "GET %s: %ld %s", path, code, body);
	json_t *j = json_loads(body, 0, NULL);
	ck_assert_msg(j != NULL, "GET %s: not JSON: %s", path, body);
	free(body);
	return j;
}

static long api_post(env *e, const char *path)
{
	char url[512];
	snprintf(url, sizeof(url), "%s%s", e->base, path);
	return tu_http("POST", url, TOKEN, NULL);
}

/* The run of @p job with @p attempt in the newest 50, or NULL (borrowed from @p runs). */
static json_t *find_run(json_t *runs, const char *job, int attempt)
{
	size_t i;
	json_t *r;
	json_array_foreach(runs, i, r)
		if (!strcmp(json_string_value(json_object_get(r, "job")), job) &&
		    json_integer_value(json_object_get(r, "attempt")) == attempt)
			return r;
	return NULL;
}

static const char *jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

/* Wait (up to @p secs) for run (job, attempt) to reach @p status; returns its JSON (owned). */
static json_t *wait_run(env *e, const char *job, int attempt, const char *status, int secs)
{
	for (int i = 0; i < secs * 10; i++) {
		json_t *runs = api_get(e, "/api/v1/runs?limit=50");
		json_t *r = find_run(runs, job, attempt);
		if (r && !strcmp(jstr(r, "status"), status)) {
			json_incref(r);
			json_decref(runs);
			return r;
		}
		json_decref(runs);
		usleep(100000);
	}
	ck_abort_msg("run %s attempt %d never became %s", job, attempt, status);
	return NULL;
}

/* ---- (a) HTTP: healthz, token, metrics ---- */

START_TEST(daemon_http)
{
	env e;
	env_init(&e, "cairnd-http", NULL);
	daemon_start(&e);
	char url[256], *body;
	/* the API refuses requests without (or with a wrong) token */
	static const char *const paths[] = {"/api/v1/status", "/api/v1/clients", "/api/v1/jobs",
					    "/api/v1/runs", "/api/v1/incidents"};
	for (size_t i = 0; i < 5; i++) {
		snprintf(url, sizeof(url), "%s%s", e.base, paths[i]);
		ck_assert_int_eq(tu_http("GET", url, NULL, NULL), 401);
		ck_assert_int_eq(tu_http("GET", url, "wrong", NULL), 401);
		ck_assert_int_eq(tu_http("GET", url, TOKEN "x", NULL), 401);
		ck_assert_int_eq(tu_http("GET", url, TOKEN, NULL), 200);
	}
	snprintf(url, sizeof(url), "%s/api/v1/jobs/host01%%2Fbackup/run", e.base);
	ck_assert_int_eq(tu_http("POST", url, NULL, NULL), 401);
	snprintf(url, sizeof(url), "%s/api/v1/incidents/1/ack", e.base);
	ck_assert_int_eq(tu_http("POST", url, NULL, NULL), 401);
	json_t *runs = api_get(&e, "/api/v1/runs");
	ck_assert_uint_eq(json_array_size(runs), 0); /* the refused trigger started nothing */
	json_decref(runs);
	ck_assert_int_eq(api_post(&e, "/api/v1/jobs/nobody/backup/run"), 404);
	ck_assert_int_eq(api_post(&e, "/api/v1/incidents/99/ack"), 404);
	/* a backup, so that the per-job families have samples */
	ck_assert_int_eq(api_post(&e, "/api/v1/jobs/host01%2Fbackup/run"), 202);
	json_t *r = wait_run(&e, "host01/backup", 1, "ok", 30);
	ck_assert_int_eq(json_integer_value(json_object_get(r, "files")), 1); /* b.tmp excluded */
	ck_assert_int_eq(json_integer_value(json_object_get(r, "bytes")), 6);
	ck_assert_int_gt(json_integer_value(json_object_get(r, "cpu_ms")), 0);
	ck_assert_int_gt(json_integer_value(json_object_get(r, "peak_rss_kb")), 1000);
	json_decref(r);
	/* /metrics: no auth, clean for promtool */
	snprintf(url, sizeof(url), "%s/metrics", e.base);
	ck_assert_int_eq(tu_http("GET", url, NULL, &body), 200);
	ck_assert_ptr_nonnull(strstr(body, "\ncairn_runs_total{job=\"host01/backup\",client="
					   "\"host01\",kind=\"backup\",status=\"ok\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(body, "\ncairn_job_last_run_duration_seconds{job=\"host01/"
					   "backup\""));
	ck_assert_ptr_nonnull(strstr(body, "\ncairn_client_last_backup_success_timestamp_seconds"
					   "{client=\"host01\"} "));
	ck_assert_ptr_nonnull(strstr(body, "\ncairn_incidents{state=\"open\",priority=\"P1\"} "
					   "0\n"));
	char mf[600];
	snprintf(mf, sizeof(mf), "%s/metrics.txt", e.dir);
	FILE *f = fopen(mf, "w");
	fputs(body, f);
	fclose(f);
	free(body);
	ck_assert_msg(access(PROMTOOL, X_OK) == 0, "%s missing: run scripts/install-deps.sh",
		      PROMTOOL);
	ck_assert_msg(tu_sh("%s check metrics < '%s' 2> '%s.lint'", PROMTOOL, mf, mf) == 0,
		      "promtool check metrics failed; see %s.lint", mf);
	/* the CLI reads address and token from the configuration */
	ck_assert_int_eq(tu_sh("%s --config '%s' status > '%s/st' && grep -q 'clients 1, jobs 2' "
			       "'%s/st'", CAIRN_BIN, e.cfg, e.dir, e.dir), 0);
	ck_assert_int_eq(tu_sh("%s --config '%s' runs --job host01/backup | grep -q "
			       "'host01/backup.*manual.*ok'", CAIRN_BIN, e.cfg), 0);
	ck_assert_int_eq(tu_sh("%s --config '%s' jobs | grep -q '^host01/drill'", CAIRN_BIN, e.cfg),
			 0);
	/* cairn loads libcurl only for these commands: without it they fail with one line
	 * naming the library and the package, and nothing else needs it */
	ck_assert_int_eq(tu_sh("CAIRN_CURL_LIB=/nonexistent/libcurl.so.4 %s --config '%s' status "
			       "2> '%s/nocurl'; test $? = 1 && test $(wc -l < '%s/nocurl') = 1 && "
			       "grep -q 'status: cannot load /nonexistent/libcurl.so.4 "
			       "(\\$CAIRN_CURL_LIB): .*libcurl4' '%s/nocurl'",
			       CAIRN_BIN, e.cfg, e.dir, e.dir, e.dir), 0);
	ck_assert_int_eq(tu_sh("readelf -d %s | grep NEEDED | grep -q libcurl", CAIRN_BIN), 1);
	/* SIGTERM: a clean exit */
	int st = daemon_stop(&e, SIGTERM);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_int_ne(tu_sh("%s --config '%s' status 2>/dev/null", CAIRN_BIN, e.cfg), 0);
	env_done(&e);
}
END_TEST

/* ---- (b) a failing backup: incident, notifications, retry, verification, resolution ---- */

static pid_t am_start(const char *dir, int port, int hook_port)
{
	char cfgp[700], arg[5][800], url[128];
	ck_assert_msg(access(AM_BIN, X_OK) == 0, "%s missing: run scripts/install-deps.sh", AM_BIN);
	snprintf(cfgp, sizeof(cfgp), "%s/am.yml", dir);
	FILE *f = fopen(cfgp, "w");
	fprintf(f, "route:\n  receiver: hook\n  group_by: [alertname, client]\n  group_wait: 0s\n"
		   "  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n- name: hook\n"
		   "  webhook_configs: [{url: 'http://127.0.0.1:%d/am', send_resolved: true}]\n",
		hook_port);
	fclose(f);
	snprintf(arg[0], sizeof(arg[0]), "--config.file=%s", cfgp);
	snprintf(arg[1], sizeof(arg[1]), "--storage.path=%s/am-data", dir);
	snprintf(arg[2], sizeof(arg[2]), "--web.listen-address=127.0.0.1:%d", port);
	snprintf(arg[3], sizeof(arg[3]), "--web.external-url=http://127.0.0.1:%d", port);
	snprintf(arg[4], sizeof(arg[4]), "--cluster.listen-address=");
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 2);
		execl(AM_BIN, AM_BIN, arg[0], arg[1], arg[2], arg[3], arg[4], "--log.level=warn",
		      (char *)NULL);
		_exit(127);
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/-/ready", port);
	for (int i = 0; i < 100; i++) {
		usleep(50000);
		if (tu_http("GET", url, NULL, NULL) == 200 && waitpid(pid, NULL, WNOHANG) == 0)
			return pid;
	}
	ck_abort_msg("alertmanager did not start on port %d", port);
	return -1;
}

/* Wait until @p cond (evaluated by the macro) holds, 100 ms steps, up to @p secs. */
#define WAIT_FOR(cond, secs, ...)                                                                  \
	do {                                                                                       \
		int ok_ = 0;                                                                       \
		for (int i_ = 0; i_ < (secs) * 10 && !(ok_ = (cond)); i_++)                        \
			usleep(100000);                                                            \
		ck_assert_msg(ok_, __VA_ARGS__);                                                   \
	} while (0)

static int am_lists(int am_port, const char *alertname)
{
	char url[256], *body;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v2/alerts?filter=client%%3D%%22host01"
		 "%%22", am_port);
	int yes = tu_http("GET", url, NULL, &body) == 200 && strstr(body, alertname) &&
		  strstr(body, "\"state\":\"active\"");
	free(body);
	return yes;
}

static json_t *backup_incident(env *e)
{
	json_t *v = api_get(e, "/api/v1/incidents?state=all"), *o;
	size_t i;
	json_array_foreach(v, i, o)
		if (!strcmp(jstr(o, "alertname"), "BackupFailed")) {
			json_incref(o);
			json_decref(v);
			return o;
		}
	json_decref(v);
	return NULL;
}

static int incident_state_is(env *e, const char *state)
{
	json_t *o = backup_incident(e);
	int yes = o && !strcmp(jstr(o, "state"), state);
	json_decref(o);
	return yes;
}

START_TEST(daemon_incident)
{
	tu_sink *hook = tu_sink_start(0), *mail = tu_sink_start(1), *amhook = tu_sink_start(0);
	char extra[2048], dir[600];
	int am_port = free_port();
	snprintf(extra, sizeof(extra),
		 "notifiers:\n"
		 "  hook: {kind: webhook, url: 'http://127.0.0.1:%d/cairn', timeout: 5s}\n"
		 "  am: {kind: alertmanager, url: 'http://127.0.0.1:%d', timeout: 5s}\n"
		 "  mail: {kind: email, url: 'smtp://127.0.0.1:%d/cairn.test', from: "
		 "cairn@example.org, to: [ops@example.org], timeout: 5s}\n"
		 "routes:\n  - notifiers: [hook, am, mail]\n", hook->port, am_port, mail->port);
	env e;
	env_init(&e, "cairnd-incident", extra);
	/* retries 3 s apart: time to see the first failure before the target returns */
	ck_assert_int_eq(tu_sh("sed -i 's/backoff: \\[2s\\]/backoff: [3s]/' '%s'", e.cfg), 0);
	snprintf(dir, sizeof(dir), "%s", e.dir);
	pid_t am = am_start(dir, am_port, amhook->port);
	/* the target goes away (an unmounted disk) */
	ck_assert_int_eq(tu_sh("mv '%s/repo' '%s/repo.away'", dir, dir), 0);
	daemon_start(&e);
	uint64_t t0 = cairn_now_ns();
	ck_assert_int_eq(api_post(&e, "/api/v1/jobs/host01%2Fbackup/run"), 202);
	json_t *r = wait_run(&e, "host01/backup", 1, "failed", 30);
	ck_assert_msg(strstr(jstr(r, "error"), "no repository"), "%s", jstr(r, "error"));
	json_decref(r);
	/* a P2 incident: no good backup yet (impact 1), retries left (urgency 2) */
	WAIT_FOR(incident_state_is(&e, "open"), 10, "no BackupFailed incident");
	json_t *inc = backup_incident(&e);
	ck_assert_int_eq(json_integer_value(json_object_get(inc, "priority")), 2);
	long long id = json_integer_value(json_object_get(inc, "id"));
	json_decref(inc);
	WAIT_FOR(tu_sink_has(hook, "\"event\":\"opened\""), 10, "webhook: no opened notice");
	ck_assert(tu_sink_has(hook, "\"alertname\":\"BackupFailed\""));
	ck_assert(tu_sink_has(hook, "\"priority\":\"P2\""));
	WAIT_FOR(tu_sink_has(mail, "Subject: [cairn P2] opened:"), 10, "mail: no opened notice");
	ck_assert(tu_sink_has(mail, "RCPT TO:<ops@example.org>"));
	WAIT_FOR(am_lists(am_port, "\"alertname\":\"BackupFailed\""), 10,
		 "alertmanager does not list the alert");
	WAIT_FOR(tu_sink_has(amhook, "\"status\":\"firing\""), 10, "alertmanager did not notify");
	/* acknowledged with the CLI */
	ck_assert_int_eq(tu_sh("%s --config '%s' ack %lld > /dev/null", CAIRN_BIN, e.cfg, id), 0);
	ck_assert(incident_state_is(&e, "acknowledged"));
	ck_assert_int_eq(tu_sh("%s --config '%s' incidents | grep -q 'BackupFailed/host01/backup'",
			       CAIRN_BIN, e.cfg), 0);
	/* the target is back: the retry succeeds, a verification follows */
	ck_assert_int_eq(tu_sh("mv '%s/repo.away' '%s/repo'", dir, dir), 0);
	json_t *ok = NULL;
	for (int i = 0; i < 300 && !ok; i++) {
		json_t *runs = api_get(&e, "/api/v1/runs?job=host01/backup");
		size_t k;
		json_t *x;
		json_array_foreach(runs, k, x)
			if (!ok && !strcmp(jstr(x, "status"), "ok"))
				ok = json_incref(x);
		json_decref(runs);
		if (!ok)
			usleep(100000);
	}
	ck_assert_msg(ok != NULL, "the retry never succeeded");
	ck_assert_int_ge(json_integer_value(json_object_get(ok, "attempt")), 2);
	ck_assert_str_eq(jstr(ok, "reason"), "retry");
	json_t *v = wait_run(&e, "host01/backup:verify", 1, "ok", 30);
	ck_assert_str_eq(jstr(v, "kind"), "check");
	ck_assert_str_eq(jstr(v, "reason"), "verify");
	ck_assert_int_eq(json_integer_value(json_object_get(v, "parent_id")),
			 json_integer_value(json_object_get(ok, "id")));
	json_decref(v);
	json_decref(ok);
	/* the incident resolves itself, and every receiver hears it */
	WAIT_FOR(incident_state_is(&e, "resolved"), 15, "the incident did not resolve");
	WAIT_FOR(tu_sink_has(hook, "\"event\":\"resolved\""), 10, "webhook: no resolved notice");
	WAIT_FOR(tu_sink_has(mail, "resolved:"), 10, "mail: no resolved notice");
	WAIT_FOR(!am_lists(am_port, "BackupFailed"), 10, "alertmanager still lists the alert");
	WAIT_FOR(tu_sink_has(amhook, "\"status\":\"resolved\""), 10, "alertmanager: no resolved");
	double secs = (double)(cairn_now_ns() - t0) / 1e9;
	fprintf(stderr, "daemon_incident: failure to resolution in %.1f s\n", secs);
	/* the review and the metrics */
	ck_assert_int_eq(tu_sh("%s --config '%s' incident review %lld --output '%s/review.md' && "
			       "grep -q BackupFailed '%s/review.md' && grep -q 'acknowledged by' "
			       "'%s/review.md'", CAIRN_BIN, e.cfg, id, dir, dir, dir), 0);
	char url[256], *body;
	snprintf(url, sizeof(url), "%s/metrics", e.base);
	ck_assert_int_eq(tu_http("GET", url, NULL, &body), 200);
	ck_assert_ptr_nonnull(strstr(body, "cairn_runs_total{job=\"host01/backup\",client="
					   "\"host01\",kind=\"backup\",status=\"failed\"} "));
	ck_assert_ptr_nonnull(strstr(body, "cairn_runs_total{job=\"host01/backup:verify\""));
	free(body);
	ck_assert_int_eq(daemon_stop(&e, SIGTERM), 0);
	kill(am, SIGTERM);
	waitpid(am, NULL, 0);
	tu_sink_stop(hook);
	tu_sink_stop(mail);
	tu_sink_stop(amhook);
	env_done(&e);
}
END_TEST

/* ---- (c) kill -9 mid-run, restart ---- */

static int lines(const char *path)
{
	FILE *f = fopen(path, "r");
	int n = 0, ch;
	while (f && (ch = fgetc(f)) != EOF)
		n += ch == '\n';
	if (f)
		fclose(f);
	return n;
}

static int proc_gone(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	return p && p[2] == 'Z';
}

START_TEST(daemon_kill9)
{
	env e;
	char extra[2048], starts[600], ends[600];
	char *dir = tu_mkdtemp("cairnd-kill9-paths"); /* the job writes here */
	snprintf(starts, sizeof(starts), "%s/starts", dir);
	snprintf(ends, sizeof(ends), "%s/ends", dir);
	snprintf(extra, sizeof(extra),
		 "    jobs:\n      - name: sleeper\n        kind: command\n"
		 "        command: [/bin/sh, -c, 'echo $$ >> %s; sleep 3; echo done >> %s']\n"
		 "        schedule: '0 0 1 1 *'\n", starts, ends);
	env_init(&e, "cairnd-kill9", extra);
	daemon_start(&e);
	ck_assert_int_eq(api_post(&e, "/api/v1/jobs/host01%2Fsleeper/run"), 202);
	WAIT_FOR(lines(starts) == 1, 10, "the job did not start");
	json_t *r1 = wait_run(&e, "host01/sleeper", 1, "running", 5);
	json_decref(r1);
	FILE *f = fopen(starts, "r");
	int job_pid = 0;
	ck_assert_int_eq(fscanf(f, "%d", &job_pid), 1);
	fclose(f);
	/* kill -9 mid-run: the job goes down with the daemon (PDEATHSIG) */
	int st = daemon_stop(&e, SIGKILL);
	ck_assert(WIFSIGNALED(st));
	WAIT_FOR(proc_gone(job_pid), 5, "the job outlived cairnd");
	daemon_start(&e);
	/* the run is kept, as interrupted; the retry is attempt 2 of the same slot */
	json_t *a1 = wait_run(&e, "host01/sleeper", 1, "interrupted", 10);
	json_t *a2 = wait_run(&e, "host01/sleeper", 2, "ok", 20);
	ck_assert_int_eq(json_integer_value(json_object_get(a1, "pid")), job_pid);
	ck_assert_int_eq(json_integer_value(json_object_get(a1, "scheduled_for")),
			 json_integer_value(json_object_get(a2, "scheduled_for")));
	ck_assert_int_eq(json_integer_value(json_object_get(a2, "parent_id")),
			 json_integer_value(json_object_get(a1, "id")));
	json_decref(a1);
	json_decref(a2);
	/* no slot ran twice: two starts (attempts 1 and 2), one finish, two rows */
	ck_assert_int_eq(lines(starts), 2);
	ck_assert_int_eq(lines(ends), 1);
	json_t *runs = api_get(&e, "/api/v1/runs?job=host01/sleeper");
	ck_assert_uint_eq(json_array_size(runs), 2);
	json_decref(runs);
	/* a clean stop terminates a running job and records it 'killed' */
	ck_assert_int_eq(api_post(&e, "/api/v1/jobs/host01%2Fsleeper/run"), 202);
	WAIT_FOR(lines(starts) == 3, 10, "the job did not start again");
	ck_assert_int_eq(api_post(&e, "/api/v1/jobs/host01%2Fsleeper/run"), 409); /* running */
	st = daemon_stop(&e, SIGTERM);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	daemon_start(&e);
	runs = api_get(&e, "/api/v1/runs?job=host01/sleeper&limit=1");
	ck_assert_str_eq(jstr(json_array_get(runs, 0), "status"), "killed");
	ck_assert_str_eq(jstr(json_array_get(runs, 0), "reason"), "manual");
	json_decref(runs);
	ck_assert_int_eq(lines(ends), 1);
	env_done(&e);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* ---- (d) the real cron path: a '* * * * *' slot runs once, as scheduled ---- */

/* The newest scheduled run of @p job that finished ok (owned JSON), or NULL. */
static json_t *scheduled_ok(env *e, const char *job)
{
	json_t *runs = api_get(e, "/api/v1/runs?job=host01/backup&limit=50"), *r, *hit = NULL;
	size_t i;
	json_array_foreach(runs, i, r)
		if (!hit && !strcmp(jstr(r, "job"), job) && !strcmp(jstr(r, "reason"), "scheduled") &&
		    !strcmp(jstr(r, "status"), "ok"))
			hit = r;
	if (hit)
		json_incref(hit);
	json_decref(runs);
	return hit;
}

START_TEST(daemon_cron)
{
	env e;
	env_init(&e, "cairnd-cron", NULL);
	/* the client's backup every minute (UTC); the drill stays yearly */
	ck_assert_int_eq(tu_sh("sed -i \"s/^    schedule: '0 0 1 1 \\*'$/    schedule: '* * * * *'/\" "
			       "'%s' && grep -q \"^    schedule: '\\* \\* \\* \\* \\*'$\" '%s'",
			       e.cfg, e.cfg), 0);
	daemon_start(&e);
	json_t *r = NULL;
	for (int i = 0; i < 750 && !r; i++) {
		r = scheduled_ok(&e, "host01/backup");
		if (!r)
			usleep(100000);
	}
	ck_assert_msg(r != NULL, "no scheduled run of host01/backup finished ok within 75 s; "
				 "see %s/cairnd.log", e.dir);
	json_int_t slot = json_integer_value(json_object_get(r, "scheduled_for"));
	ck_assert_int_gt(slot, 0);
	ck_assert_int_eq(slot % 60, 0); /* a minute boundary */
	ck_assert_int_eq(json_integer_value(json_object_get(r, "attempt")), 1);
	json_decref(r);
	/* exactly one run claims that slot */
	json_t *runs = api_get(&e, "/api/v1/runs?job=host01/backup&limit=50"), *x;
	size_t i, cnt = 0;
	json_array_foreach(runs, i, x)
		cnt += json_integer_value(json_object_get(x, "scheduled_for")) == slot;
	json_decref(runs);
	ck_assert_uint_eq(cnt, 1);
	/* and the CLI sees it too */
	ck_assert_int_eq(tu_sh("%s --config '%s' runs --job host01/backup | grep -q "
			       "'host01/backup.*scheduled.*ok'", CAIRN_BIN, e.cfg), 0);
	env_done(&e);
}
END_TEST

static Suite *sched_daemon_suite(void)
{
	Suite *su = suite_create("sched_daemon");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, daemon_http);
	tcase_add_test(tc, daemon_incident);
	tcase_add_test(tc, daemon_kill9);
	tcase_add_test(tc, daemon_cron);
	suite_add_tcase(su, tc);
	return su;
}

CAIRN_CHECK_MAIN(sched_daemon_suite)
