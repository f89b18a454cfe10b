/*
 * jobrun.c - cairnd's jobs as processes: the command line of each job kind
 * (sources, excludes and retention turned into `cairn` arguments), starting
 * it, collecting its output, and turning its exit into a run record.
 *
 * DESIGN: a job is `cairn --config FILE -r REPO --json COMMAND ...` (or the
 * argv of a command job). It runs in its own process group with stdin
 * /dev/null and PR_SET_PDEATHSIG = SIGTERM, so a cairnd killed with -9 takes
 * its jobs down instead of leaving orphans that the next cairnd could not
 * reap; the next cairnd then finds their rows 'running' with a dead pid and
 * recovery marks them 'interrupted' (retried by the plan). stdout (the
 * --json summary) and the tail of stderr (the error line) are read through
 * non-blocking pipes by the loop; bytes and files come from the summary,
 * CPU time and peak RSS from wait4().
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "sched/daemon_int.h"

typedef struct argv_b {
	char **v;
	size_t n, cap;
} argv_b;

static void arg(argv_b *a, const char *s)
{
	if (a->n + 2 > a->cap) {
		a->cap = a->cap ? a->cap * 2 : 16;
		a->v = cairn_xrealloc(a->v, a->cap * sizeof(char *));
	}
	a->v[a->n++] = cairn_xstrdup(s);
	a->v[a->n] = NULL;
}

static void arg_keep(argv_b *a, const char *opt, unsigned n)
{
	char num[16];
	if (!n)
		return;
	snprintf(num, sizeof(num), "%u", n);
	arg(a, opt);
	arg(a, num);
}

void cairn_daemon__argv_free(char **argv)
{
	for (size_t i = 0; argv && argv[i]; i++)
		free(argv[i]);
	free(argv);
}

/*
 * See daemon_int.h. Kinds map to cairn commands: backup -> backup --client
 * NAME [--exclude P]... SOURCES; drill, scrub, repair, check -> the command
 * of that name; health -> check (structure of every target); prune -> forget
 * --client NAME --keep-* --prune (plain prune without retention rules).
 */
int cairn_daemon__argv(const cairn_daemon *d, const cairn_job *j, cairn_job_kind kind,
		       char ***out)
{
	argv_b a = {NULL, 0, 0};
	const cairn_cfg_client *cl = j->client_cfg;
	*out = NULL;
	if (kind == CAIRN_JOB_COMMAND) {
		if (!j->cfg || !j->cfg->command || !j->cfg->command[0])
			return cairn_error_set(-EINVAL, "job %s: no command", j->id);
		for (size_t i = 0; j->cfg->command[i]; i++)
			arg(&a, j->cfg->command[i]);
		*out = a.v;
		return 0;
	}
	arg(&a, d->cairn_bin);
	arg(&a, "--config");
	arg(&a, d->config_path);
	arg(&a, "-r");
	arg(&a, j->repository);
	arg(&a, "--json");
	switch (kind) {
	case CAIRN_JOB_BACKUP:
		arg(&a, "backup");
		arg(&a, "--client");
		arg(&a, j->client);
		for (size_t i = 0; cl && i < cl->nexcludes; i++) {
			arg(&a, "--exclude");
			arg(&a, cl->excludes[i]);
		}
		arg(&a, "--");
		for (size_t i = 0; cl && i < cl->nsources; i++)
			arg(&a, cl->sources[i]);
		break;
	case CAIRN_JOB_PRUNE:
		if (cl && (cl->keep_last || cl->keep_hourly || cl->keep_daily || cl->keep_weekly ||
			   cl->keep_monthly || cl->keep_yearly)) {
			arg(&a, "forget");
			arg(&a, "--client");
			arg(&a, j->client);
			arg_keep(&a, "--keep-last", cl->keep_last);
			arg_keep(&a, "--keep-hourly", cl->keep_hourly);
			arg_keep(&a, "--keep-daily", cl->keep_daily);
			arg_keep(&a, "--keep-weekly", cl->keep_weekly);
			arg_keep(&a, "--keep-monthly", cl->keep_monthly);
			arg_keep(&a, "--keep-yearly", cl->keep_yearly);
			arg(&a, "--prune");
		} else {
			arg(&a, "prune");
		}
		break;
	case CAIRN_JOB_HEALTH:
		arg(&a, "check");
		break;
	default:
		arg(&a, cairn_job_kind_name(kind));
		break;
	}
	*out = a.v;
	return 0;
}

static int set_cloexec_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return -errno;
	return 0;
}

/* In the child: never returns. Only async-signal-safe calls before exec. */
static void child_exec(char *const *argv, int out_w, int err_w, pid_t parent)
{
	sigset_t none;
	int null = open("/dev/null", O_RDONLY);
	if (null < 0 || dup2(null, 0) < 0 || dup2(out_w, 1) < 0 || dup2(err_w, 2) < 0)
		_exit(126);
	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent) /* cairnd died before prctl took effect */
		_exit(126);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	execvp(argv[0], argv);
	dprintf(2, "cairnd: cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* See daemon_int.h. On success c->pid, out_fd, err_fd and t0_ns are set. */
int cairn_daemon__spawn(cairn_child *c, char *const *argv)
{
	int po[2], pe[2];
	if (pipe(po) < 0)
		return cairn_error_set(-errno, "pipe: %s", strerror(errno));
	if (pipe(pe) < 0) {
		int e = errno;
		close(po[0]);
		close(po[1]);
		return cairn_error_set(-e, "pipe: %s", strerror(e));
	}
	pid_t parent = getpid();
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(po[0]);
		close(po[1]);
		close(pe[0]);
		close(pe[1]);
		return cairn_error_set(-e, "fork: %s", strerror(e));
	}
	if (pid == 0)
		child_exec(argv, po[1], pe[1], parent);
	setpgid(pid, pid); /* also here: no race with a kill(-pid) right after */
	close(po[1]);
	close(pe[1]);
	set_cloexec_nonblock(po[0]);
	set_cloexec_nonblock(pe[0]);
	c->pid = pid;
	c->out_fd = po[0];
	c->err_fd = pe[0];
	c->t0_ns = cairn_now_ns();
	return 0;
}

/* Keep the last @p max bytes of stdout: the summary line comes at the end. */
static void keep_out(cairn_child *c, const char *p, size_t n)
{
	cairn_buf_append(&c->out, p, n);
	if (c->out.len > CAIRN_CHILD_OUT_MAX) {
		size_t drop = c->out.len - CAIRN_CHILD_OUT_MAX / 2;
		memmove(c->out.data, c->out.data + drop, c->out.len - drop);
		c->out.len -= drop;
	}
}

static void keep_err(cairn_child *c, const char *p, size_t n)
{
	size_t have = strlen(c->err);
	if (n >= sizeof(c->err)) {
		p += n - (sizeof(c->err) - 1);
		n = sizeof(c->err) - 1;
		have = 0;
	} else if (have + n >= sizeof(c->err)) {
		size_t drop = have + n - (sizeof(c->err) - 1);
		memmove(c->err, c->err + drop, have - drop);
		have -= drop;
	}
	memcpy(c->err + have, p, n);
	c->err[have + n] = 0;
}

/* See daemon_int.h. Returns > 0 while data flows, 0 at EOF (fd closed), < 0 on error. */
int cairn_daemon__child_read(cairn_child *c, int fd)
{
	char buf[16384];
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r > 0) {
			if (fd == c->out_fd)
				keep_out(c, buf, (size_t)r);
			else
				keep_err(c, buf, (size_t)r);
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return 1;
		close(fd);
		if (fd == c->out_fd)
			c->out_fd = -1;
		else
			c->err_fd = -1;
		return r == 0 ? 0 : -errno;
	}
}

static int64_t num(json_t *o, const char *key, int *found)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_integer(v))
		return 0;
	*found = 1;
	return (int64_t)json_integer_value(v);
}

/* Add the bytes and files of one JSON summary object to @p r. */
static void add_summary(json_t *o, cairn_job_kind kind, cairn_run *r)
{
	int fb = 0, ff = 0;
	int64_t b = kind == CAIRN_JOB_BACKUP ? num(o, "bytes_total", &fb) : 0;
	if (!fb)
		b = num(o, "bytes", &fb);
	if (!fb)
		b = num(o, "bytes_read", &fb);
	int64_t f = num(o, "files", &ff);
	if (!ff)
		f = num(o, "files_new", &ff) + num(o, "files_changed", &ff) +
		    num(o, "files_unchanged", &ff);
	r->bytes += b;
	r->files += f;
}

/* bytes and files from every JSON object (or array of objects) on stdout. */
static void parse_stdout(const cairn_child *c, cairn_run *r)
{
	const char *p = (const char *)c->out.data, *end = p + c->out.len;
	while (p && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		json_t *j = len ? json_loadb(p, len, JSON_DECODE_ANY, NULL) : NULL;
		if (json_is_object(j)) {
			add_summary(j, r->kind, r);
		} else if (json_is_array(j)) {
			size_t i;
			json_t *e;
			json_array_foreach(j, i, e)
				if (json_is_object(e))
					add_summary(e, r->kind, r);
		}
		json_decref(j);
		p = nl ? nl + 1 : NULL;
	}
}

/* The last non-empty line of stderr (the "cairn: ..." error line), trimmed. */
static void last_line(const char *s, char *out, size_t len)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		n--;
	size_t b = n;
	while (b && s[b - 1] != '\n')
		b--;
	snprintf(out, len, "%.*s", (int)(n - b), s + b);
}

/* See daemon_int.h. Exit 0 = ok, 3 = partial, a signal from cairnd = killed. */
void cairn_daemon__child_result(const cairn_child *c, cairn_run *r)
{
	int st = c->status;
	char line[CAIRN_ERRTEXT_MAX - 64];
	r->bytes = r->files = 0;
	r->cpu_ms = (int64_t)c->ru.ru_utime.tv_sec * 1000 + c->ru.ru_utime.tv_usec / 1000 +
		    (int64_t)c->ru.ru_stime.tv_sec * 1000 + c->ru.ru_stime.tv_usec / 1000;
	r->peak_rss_kb = c->ru.ru_maxrss;
	parse_stdout(c, r);
	last_line(c->err, line, sizeof(line));
	r->error[0] = 0;
	if (WIFEXITED(st)) {
		r->exit_code = WEXITSTATUS(st);
		r->status = r->exit_code == 0 ? CAIRN_RUN_OK
			    : r->exit_code == 3 ? CAIRN_RUN_PARTIAL : CAIRN_RUN_FAILED;
		if (r->exit_code)
			snprintf(r->error, sizeof(r->error), "exit %d: %s", r->exit_code,
				 *line ? line : "(no message)");
	} else {
		int sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
		r->exit_code = 128 + sig;
		r->status = c->killed ? CAIRN_RUN_KILLED : CAIRN_RUN_FAILED;
		snprintf(r->error, sizeof(r->error), "%s by signal %d (%.20s)%s%s",
			 c->killed ? "stopped by cairnd" : "killed", sig, strsignal(sig),
			 *line ? ": " : "", line);
	}
}
