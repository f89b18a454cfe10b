/*
 * daemon.c - cairnd's loop: ticks that plan and start jobs, reap them and
 * record their runs, evaluate monitors, keep incidents and send notices;
 * start-up recovery; manual triggers; clean shutdown (see sched.h).
 *
 * DESIGN: one thread. poll() waits on a self-pipe (stop requests, API
 * triggers), the HTTP server's epoll fd and every job's stdout and stderr,
 * for at most until the next whole second; then a tick runs. The plan is
 * computed when something changed (a run ended, a trigger came), when its
 * next_wake is reached, and at least every 30 s; monitors run when something
 * changed and at least every 5 s. max_concurrent_jobs is enforced here
 * (the plan does not know what runs): actions beyond it stay unclaimed and
 * are planned again once a job ends.
 * Crash safety comes from the store: a run is claimed (row 'running') before
 * its process starts and UNIQUE(job, slot, attempt) refuses a second claim;
 * at start-up rows whose process is gone become 'interrupted' and the plan
 * retries them. A pid is only believed alive if its process started no later
 * than its run (pids are reused); a job still alive from a dead daemon
 * (it ignored the SIGTERM of PR_SET_PDEATHSIG) is adopted and watched.
 * Notifications are sent synchronously inside the tick (each bounded by its
 * notifier's timeout): the HTTP API waits meanwhile.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sched/daemon_int.h"

#define PLAN_EVERY_S 30
#define MONITOR_EVERY_S 5
#define STOP_GRACE_S 10
#define RECOVER_WAIT_MS 3000
#define PID_SLACK_S 30          /* a job's process starts this soon after its row */

void cairn_daemon__log(cairn_daemon *d, const char *fmt, ...)
{
	char when[32], msg[2048];
	va_list ap;
	(void)d;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cairn_rfc3339((int64_t)time(NULL), when, sizeof(when));
	fprintf(stderr, "%s cairnd[%d]: %s\n", when, (int)getpid(), msg);
	fflush(stderr);
}

/* mkdir -p, mode 0750 for what it creates. */
static int mkdirs(const char *path)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s", path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, 0750) < 0 && errno != EEXIST)
			return cairn_error_set(-errno, "mkdir %s: %s", p, strerror(errno));
		*s = '/';
	}
	if (mkdir(p, 0750) < 0 && errno != EEXIST)
		return cairn_error_set(-errno, "mkdir %s: %s", p, strerror(errno));
	return 0;
}

/* The `cairn` next to the running program, if there is one (malloc'd), else "cairn". */
static char *default_cairn_bin(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 16);
	if (n > 0) {
		self[n] = 0;
		char *slash = strrchr(self, '/');
		if (slash) {
			strcpy(slash + 1, "cairn");
			if (access(self, X_OK) == 0)
				return cairn_xstrdup(self);
		}
	}
	return cairn_xstrdup("cairn");
}

static char *read_token(const char *path)
{
	FILE *f = fopen(path, "r");
	char buf[512];
	if (!f)
		return NULL;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	buf[strcspn(buf, "\r\n")] = 0;
	return buf[0] ? cairn_xstrdup(buf) : NULL;
}

/* When process @p pid started (wall seconds), or -1 if it is gone or a zombie. */
static int64_t proc_started(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
		return -1;
	unsigned long long start = 0;
	/* after ") S ": fields 4..21, then starttime (field 22) */
	if (sscanf(p + 4, "%*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d "
			  "%*d %llu", &start) != 1)
		return 0;
	long long btime = 0;
	f = fopen("/proc/stat", "r");
	while (f && fgets(buf, sizeof(buf), f))
		if (sscanf(buf, "btime %lld", &btime) == 1)
			break;
	if (f)
		fclose(f);
	long hz = sysconf(_SC_CLK_TCK);
	return btime + (int64_t)(start / (unsigned long long)(hz > 0 ? hz : 100));
}

/* Is the process of run @p r (still) the job's? A reused pid started after the run. */
static int run_alive(const cairn_run *r)
{
	if (r->pid <= 0)
		return 0;
	int64_t t = proc_started((pid_t)r->pid);
	return t >= 0 && t <= r->started + PID_SLACK_S;
}

typedef struct run_list {
	const cairn_run *v;
	size_t n;
} run_list;

static int decided_alive(int64_t pid, void *ud)
{
	const run_list *l = ud;
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].pid == pid)
			return run_alive(&l->v[i]);
	return 0;
}

static cairn_child *add_kid(cairn_daemon *d)
{
	if (d->nkids == d->capkids) {
		d->capkids = d->capkids ? d->capkids * 2 : 8;
		d->kids = cairn_xrealloc(d->kids, d->capkids * sizeof(*d->kids));
	}
	cairn_child *c = &d->kids[d->nkids++];
	memset(c, 0, sizeof(*c));
	c->out_fd = c->err_fd = -1;
	return c;
}

static void del_kid(cairn_daemon *d, size_t i)
{
	cairn_buf_free(&d->kids[i].out);
	d->kids[i] = d->kids[--d->nkids];
}

/*
 * Start-up recovery: give jobs of a dead daemon a moment to die of their
 * PDEATHSIG, mark the dead ones 'interrupted', adopt the survivors.
 */
static int recover(cairn_daemon *d, int64_t now)
{
	cairn_run_query q = CAIRN_RUN_QUERY_INIT;
	q.status = CAIRN_RUN_RUNNING;
	q.limit = 10000;
	cairn_run *v;
	size_t n, nrec = 0;
	int rc = cairn_store_runs(d->store, &q, &v, &n);
	if (rc < 0)
		return rc;
	for (int waited = 0; waited < RECOVER_WAIT_MS; waited += 100) {
		size_t alive = 0;
		for (size_t i = 0; i < n; i++)
			alive += run_alive(&v[i]);
		if (!alive)
			break;
		usleep(100000);
	}
	run_list l = {v, n};
	rc = cairn_store_recover(d->store, now, decided_alive, &l, &nrec);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (!run_alive(&v[i])) {
			cairn_daemon__log(d, "recovered run %lld of %s: interrupted (pid %lld "
					  "gone)", (long long)v[i].id, v[i].job,
					  (long long)v[i].pid);
			continue;
		}
		cairn_child *c = add_kid(d);
		c->run = v[i];
		c->run_id = v[i].id;
		c->pid = (pid_t)v[i].pid;
		c->adopted = 1;
		c->job = SIZE_MAX;
		cairn_daemon__log(d, "adopted run %lld of %s: pid %lld still running",
				  (long long)v[i].id, v[i].job, (long long)v[i].pid);
	}
	free(v);
	return rc;
}

/* See sched.h. */
int cairn_daemon_open(cairn_daemon **out, const char *config_path, const cairn_daemon_opts *o)
{
	cairn_daemon_opts def = CAIRN_DAEMON_OPTS_INIT;
	char abs[PATH_MAX];
	int rc;
	*out = NULL;
	if (!o)
		o = &def;
	if (o->version != CAIRN_DAEMON_OPTS_VERSION)
		return cairn_error_set(-EINVAL, "cairn_daemon_opts version %u unknown", o->version);
	if (!config_path)
		return cairn_error_set(-EINVAL, "no configuration file");
	if (!realpath(config_path, abs))
		return cairn_error_set(-errno, "%s: %s", config_path, strerror(errno));
	cairn_daemon *d = cairn_xcalloc(1, sizeof(*d));
	d->wake[0] = d->wake[1] = d->http_fd = -1;
	d->config_path = cairn_xstrdup(abs);
	if ((rc = cairn_config_load(&d->cfg, abs)) < 0)
		goto fail;
	const cairn_cfg_daemon *dm = &d->cfg->daemon;
	d->cairn_bin = o->cairn_binary ? cairn_xstrdup(o->cairn_binary)
		       : dm->cairn_binary ? cairn_xstrdup(dm->cairn_binary) : default_cairn_bin();
	errno = 0;
	if (dm->api_token_file && !(d->token = read_token(dm->api_token_file))) {
		rc = cairn_error_set(-EINVAL, "daemon.api_token_file %s: %s", dm->api_token_file,
				     errno ? strerror(errno) : "empty");
		goto fail;
	}
	char dbdir[PATH_MAX];
	snprintf(dbdir, sizeof(dbdir), "%s", dm->database);
	char *slash = strrchr(dbdir, '/');
	if (slash && slash != dbdir)
		*slash = 0;
	if ((rc = mkdirs(dm->state_dir)) < 0 ||
	    (slash && slash != dbdir && (rc = mkdirs(dbdir)) < 0))
		goto fail;
	if ((rc = cairn_store_open(&d->store, dm->database)) < 0 ||
	    (rc = cairn_jobs_from_config(d->cfg, &d->jobs, &d->njobs)) < 0)
		goto fail;
	cairn_policy_from_config(d->cfg, &d->pol);
	cairn_monitor_opts_from_config(d->cfg, &d->mon);
	if (pipe2(d->wake, O_NONBLOCK | O_CLOEXEC) < 0) {
		rc = cairn_error_set(-errno, "pipe: %s", strerror(errno));
		goto fail;
	}
	d->started = (int64_t)time(NULL);
	if ((rc = recover(d, d->started)) < 0)
		goto fail;
	if (!o->no_http && (rc = cairn_http__start(d)) < 0)
		goto fail;
	cairn_daemon__log(d, "started: %zu clients, %zu jobs, store %s, jobs run %s, api %s",
			  d->cfg->nclients, d->njobs, dm->database, d->cairn_bin,
			  d->token ? "with token" : "disabled (no api_token_file)");
	*out = d;
	return 0;
fail:
	cairn_daemon_close(d);
	return rc;
}

void cairn_daemon_close(cairn_daemon *d)
{
	if (!d)
		return;
	cairn_http__stop(d);
	for (size_t i = 0; i < d->nkids; i++) {
		if (d->kids[i].out_fd >= 0)
			close(d->kids[i].out_fd);
		if (d->kids[i].err_fd >= 0)
			close(d->kids[i].err_fd);
		cairn_buf_free(&d->kids[i].out);
	}
	free(d->kids);
	free(d->manual);
	if (d->wake[0] >= 0) {
		close(d->wake[0]);
		close(d->wake[1]);
	}
	cairn_jobs_free(d->jobs, d->njobs);
	cairn_store_close(d->store);
	cairn_config_free(d->cfg);
	if (d->token)
		memset(d->token, 0, strlen(d->token));
	free(d->token);
	free(d->cairn_bin);
	free(d->config_path);
	free(d);
}

void cairn_daemon_stop(cairn_daemon *d)
{
	int saved = errno;
	d->stop = 1;
	if (write(d->wake[1], "s", 1) < 0) {
		/* the pipe is full: the loop wakes anyway */
	}
	errno = saved;
}

static int job_running(const cairn_daemon *d, const char *job_id)
{
	for (size_t i = 0; i < d->nkids; i++)
		if (!strcmp(d->kids[i].run.job, job_id))
			return 1;
	return 0;
}

/* See daemon_int.h. */
int cairn_daemon__trigger(cairn_daemon *d, const char *job_id)
{
	size_t ji = SIZE_MAX;
	for (size_t i = 0; i < d->njobs && ji == SIZE_MAX; i++)
		if (!strcmp(d->jobs[i].id, job_id))
			ji = i;
	if (ji == SIZE_MAX)
		return cairn_error_set(-ENOENT, "no job '%s'", job_id);
	if (job_running(d, job_id))
		return cairn_error_set(-EBUSY, "job %s is running", job_id);
	for (size_t i = 0; i < d->nmanual; i++)
		if (d->manual[i] == ji)
			return 0; /* queued already */
	if (d->nmanual == d->capmanual) {
		d->capmanual = d->capmanual ? d->capmanual * 2 : 8;
		d->manual = cairn_xrealloc(d->manual, d->capmanual * sizeof(*d->manual));
	}
	d->manual[d->nmanual++] = ji;
	d->next_plan = 0;
	cairn_daemon__log(d, "run of %s requested", job_id);
	return 0;
}

/* Record a run that could not start (its row shows why). */
static void failed_start(cairn_daemon *d, int64_t id, cairn_run *r, int64_t now, const char *why)
{
	r->status = CAIRN_RUN_FAILED;
	r->ended = now;
	r->exit_code = -1;
	snprintf(r->error, sizeof(r->error), "could not start: %s", why);
	if (cairn_store_run_finish(d->store, id, r) < 0)
		cairn_daemon__log(d, "run %lld: %s", (long long)id, cairn_error_last());
	cairn_daemon__log(d, "run %lld of %s failed to start: %s", (long long)id, r->job, why);
}

const char *cairn_daemon__reason_name(cairn_run_reason r)
{
	static const char *const names[] = {"scheduled", "catchup", "retry", "verify", "manual"};
	return (unsigned)r < 5 ? names[r] : "?";
}

/* Claim the slot of @p r (job @p ji) and start its process. */
static void start_run(cairn_daemon *d, size_t ji, cairn_run *r, int64_t now)
{
	int64_t id;
	char **argv = NULL;
	int rc = cairn_store_run_begin(d->store, r, &id);
	if (rc == -EEXIST) {
		cairn_daemon__log(d, "%s: slot %lld attempt %d is already claimed; not started",
				  r->job, (long long)r->scheduled_for, r->attempt);
		return;
	}
	if (rc < 0) {
		cairn_daemon__log(d, "%s: cannot record the run: %s", r->job, cairn_error_last());
		return;
	}
	if ((rc = cairn_daemon__argv(d, &d->jobs[ji], r->kind, &argv)) < 0) {
		failed_start(d, id, r, now, cairn_error_last());
		return;
	}
	cairn_child *c = add_kid(d);
	c->run = *r;
	c->run.id = id;
	c->run_id = id;
	c->job = ji;
	if ((rc = cairn_daemon__spawn(c, argv)) < 0) {
		d->nkids--;
		failed_start(d, id, r, now, cairn_error_last());
		cairn_daemon__argv_free(argv);
		return;
	}
	c->run.pid = c->pid;
	if (cairn_store_run_set_pid(d->store, id, c->pid) < 0)
		cairn_daemon__log(d, "run %lld: recording pid: %s", (long long)id,
				  cairn_error_last());
	cairn_daemon__log(d, "run %lld of %s started: %s %s, attempt %d, pid %d", (long long)id,
			  r->job, cairn_job_kind_name(r->kind),
			  cairn_daemon__reason_name(r->reason), r->attempt, (int)c->pid);
	cairn_daemon__argv_free(argv);
}

static size_t limit(const cairn_daemon *d)
{
	return d->cfg->daemon.max_concurrent_jobs ? d->cfg->daemon.max_concurrent_jobs : 2;
}

static void plan(cairn_daemon *d, int64_t now)
{
	cairn_action *acts = NULL;
	size_t n = 0, deferred = 0;
	int64_t wake = 0;
	cairn_run r;
	/* manual runs first: someone is waiting for them */
	while (d->nmanual && d->nkids < limit(d)) {
		size_t ji = d->manual[0];
		memmove(d->manual, d->manual + 1, --d->nmanual * sizeof(*d->manual));
		if (job_running(d, d->jobs[ji].id))
			continue;
		cairn_action a = {ji, d->jobs[ji].kind, CAIRN_REASON_MANUAL, now, 1, 0};
		cairn_action_to_run(d->jobs, &a, now, &r);
		start_run(d, ji, &r, now);
	}
	deferred += d->nmanual;
	if (cairn_plan_compute(d->store, d->jobs, d->njobs, &d->pol, now, &acts, &n, &wake) < 0) {
		cairn_daemon__log(d, "plan: %s", cairn_error_last());
		d->next_plan = now + 5;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		cairn_action_to_run(d->jobs, &acts[i], now, &r);
		if (job_running(d, r.job))
			continue;
		if (d->nkids >= limit(d)) {
			deferred++;
			continue;
		}
		start_run(d, acts[i].job, &r, now);
	}
	free(acts);
	d->next_wake = wake;
	d->next_plan = deferred ? now + 1 : now + PLAN_EVERY_S;
}

static void monitor(cairn_daemon *d, int64_t now)
{
	cairn_alert *al = NULL;
	cairn_notice *nt = NULL;
	size_t na = 0, nn = 0;
	d->next_monitor = now + MONITOR_EVERY_S;
	if (cairn_monitor_eval(d->store, d->jobs, d->njobs, &d->mon, now, &al, &na) < 0) {
		cairn_daemon__log(d, "monitors: %s", cairn_error_last());
		return;
	}
	if (cairn_incident_process(d->store, d->cfg, al, na, now, &nt, &nn) < 0) {
		cairn_daemon__log(d, "incidents: %s", cairn_error_last());
		free(al);
		return;
	}
	static const char *const what[] = {"opened", "repeat", "escalated", "resolved"};
	for (size_t i = 0; i < nn; i++) {
		const cairn_incident *inc = &nt[i].incident;
		cairn_daemon__log(d, "incident %lld %s (P%d) %s: %s", (long long)inc->id, inc->key,
				  inc->priority, what[nt[i].kind], inc->summary);
		int failed = cairn_notify_deliver(d->store, d->cfg, &nt[i], now);
		if (failed > 0)
			cairn_daemon__log(d, "incident %lld: %d notification(s) failed (see its "
					  "timeline)", (long long)inc->id, failed);
	}
	free(nt);
	free(al);
}

/* Record the end of kid @p i and forget it. */
static void finish_kid(cairn_daemon *d, size_t i, int64_t now)
{
	cairn_child *c = &d->kids[i];
	cairn_run r = c->run;
	r.ended = now;
	if (c->adopted) {
		r.status = CAIRN_RUN_INTERRUPTED;
		r.duration_ms = now > r.started ? (now - r.started) * 1000 : 0;
		snprintf(r.error, sizeof(r.error), "interrupted: cairnd restarted while the job "
			 "ran; its result is unknown (pid %d gone)", (int)c->pid);
	} else {
		r.duration_ms = (int64_t)((cairn_now_ns() - c->t0_ns) / 1000000);
		cairn_daemon__child_result(c, &r);
	}
	if (cairn_store_run_finish(d->store, c->run_id, &r) < 0)
		cairn_daemon__log(d, "run %lld: %s", (long long)c->run_id, cairn_error_last());
	cairn_daemon__log(d, "run %lld of %s %s in %.1f s: %lld files, %lld bytes, cpu %lld ms, "
			  "peak rss %lld KiB%s%s", (long long)c->run_id, r.job,
			  cairn_run_status_name(r.status), (double)r.duration_ms / 1000,
			  (long long)r.files, (long long)r.bytes, (long long)r.cpu_ms,
			  (long long)r.peak_rss_kb, r.error[0] ? "; " : "", r.error);
	del_kid(d, i);
	d->next_plan = 0;
	d->next_monitor = 0;
}

/* Reap what ended (wait4 on each own pid; kill(pid, 0) for adopted ones). */
static void reap(cairn_daemon *d, int64_t now)
{
	for (size_t i = 0; i < d->nkids;) {
		cairn_child *c = &d->kids[i];
		if (c->adopted) {
			if (!run_alive(&c->run)) {
				finish_kid(d, i, now);
				continue;
			}
			i++;
			continue;
		}
		int st;
		pid_t p = wait4(c->pid, &st, WNOHANG, &c->ru);
		if (p == c->pid || (p < 0 && errno == ECHILD)) {
			c->status = p == c->pid ? st : W_EXITCODE(255, 0);
			/* what the job wrote before it ended is in the pipes: read it all (a
			 * background process of a command job may hold them open: no waiting) */
			if (c->out_fd >= 0)
				cairn_daemon__child_read(c, c->out_fd);
			if (c->err_fd >= 0)
				cairn_daemon__child_read(c, c->err_fd);
			if (c->out_fd >= 0)
				close(c->out_fd);
			if (c->err_fd >= 0)
				close(c->err_fd);
			c->out_fd = c->err_fd = -1;
			finish_kid(d, i, now);
			continue;
		}
		i++;
	}
}

static void tick(cairn_daemon *d, int64_t now)
{
	d->ticks++;
	reap(d, now);
	if (!d->stop && (now >= d->next_plan || (d->next_wake && now >= d->next_wake)))
		plan(d, now);
	if (!d->stop && now >= d->next_monitor)
		monitor(d, now);
}

/* One poll() round: at most until the next whole second (or @p max_ms). */
static void wait_events(cairn_daemon *d, int max_ms)
{
	struct pollfd pf[2 + 2 * 64 + 1];
	size_t np = 0;
	pf[np++] = (struct pollfd){d->wake[0], POLLIN, 0};
	if (d->http_fd >= 0)
		pf[np++] = (struct pollfd){d->http_fd, POLLIN, 0};
	size_t first_kid = np;
	for (size_t i = 0; i < d->nkids && np + 2 <= sizeof(pf) / sizeof(pf[0]); i++) {
		pf[np++] = (struct pollfd){d->kids[i].out_fd, POLLIN, 0};
		pf[np++] = (struct pollfd){d->kids[i].err_fd, POLLIN, 0};
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int ms = 1000 - (int)(ts.tv_nsec / 1000000);
	if (max_ms >= 0 && max_ms < ms)
		ms = max_ms;
	int ht = d->http_fd >= 0 ? cairn_http__timeout_ms(d) : -1;
	if (ht >= 0 && ht < ms)
		ms = ht;
	int n = poll(pf, (nfds_t)np, ms);
	if (n < 0)
		return;
	if (pf[0].revents) {
		char buf[64];
		while (read(d->wake[0], buf, sizeof(buf)) > 0) {
		}
	}
	for (size_t k = first_kid, i = 0; k < np; k += 2, i++) {
		cairn_child *c = &d->kids[i];
		if (pf[k].revents && c->out_fd >= 0)
			cairn_daemon__child_read(c, c->out_fd);
		if (pf[k + 1].revents && c->err_fd >= 0)
			cairn_daemon__child_read(c, c->err_fd);
	}
	if (d->http_fd >= 0)
		cairn_http__run(d);
}

/* Shutdown: SIGTERM to every job's process group, SIGKILL after STOP_GRACE_S. */
static void stop_jobs(cairn_daemon *d)
{
	size_t own = 0;
	for (size_t i = 0; i < d->nkids; i++) {
		if (d->kids[i].adopted)
			continue;
		d->kids[i].killed = 1;
		kill(-d->kids[i].pid, SIGTERM);
		own++;
	}
	if (own)
		cairn_daemon__log(d, "stopping %zu running job(s)", own);
	uint64_t t0 = cairn_now_ns();
	int hard = 0;
	for (;;) {
		reap(d, (int64_t)time(NULL));
		size_t left = 0;
		for (size_t i = 0; i < d->nkids; i++)
			left += !d->kids[i].adopted;
		if (!left)
			break;
		if (!hard && cairn_now_ns() - t0 > STOP_GRACE_S * 1000000000ull) {
			for (size_t i = 0; i < d->nkids; i++)
				if (!d->kids[i].adopted)
					kill(-d->kids[i].pid, SIGKILL);
			hard = 1;
		}
		wait_events(d, 100);
	}
}

/* See sched.h. */
int cairn_daemon_run(cairn_daemon *d)
{
	signal(SIGPIPE, SIG_IGN);
	while (!d->stop) {
		tick(d, (int64_t)time(NULL));
		if (d->stop)
			break;
		wait_events(d, d->next_plan == 0 || d->next_monitor == 0 ? 0 : -1);
	}
	cairn_daemon__log(d, "stopping");
	stop_jobs(d);
	cairn_daemon__log(d, "stopped");
	return 0;
}
