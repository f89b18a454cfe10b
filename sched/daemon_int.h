/*
 * daemon_int.h - what the files of cairnd's loop share (not public API):
 * daemon.c (loop, ticks, recovery, triggers), jobrun.c (command lines,
 * child processes, their results), http.c (HTTP API), metrics.c.
 */
#ifndef CAIRN_DAEMON_INT_H
#define CAIRN_DAEMON_INT_H

#include <signal.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "sched/sched_int.h"

#define CAIRN_CHILD_OUT_MAX (256 * 1024) /* stdout kept per job (the tail beyond it) */
#define CAIRN_CHILD_ERR_MAX 4096         /* stderr tail kept per job */

/* One job process: started by this daemon, or adopted from a dead one (pid only). */
typedef struct cairn_child {
	int64_t run_id;
	pid_t pid;
	size_t job;             /* index into d->jobs */
	cairn_run run;          /* the row as claimed */
	int out_fd, err_fd;     /* -1 once at EOF (or adopted) */
	cairn_buf out;          /* stdout: the --json summary */
	char err[CAIRN_CHILD_ERR_MAX]; /* stderr tail, NUL-terminated */
	uint64_t t0_ns;         /* monotonic start */
	int killed;             /* SIGTERM sent by cairnd (shutdown) */
	int adopted;            /* not our child: watched with kill(pid, 0) */
	int exited;             /* reaped; waiting for the pipes to drain */
	int status;             /* wait status once exited */
	struct rusage ru;
} cairn_child;

struct MHD_Daemon;

struct cairn_daemon {
	cairn_config *cfg;
	char *config_path;      /* absolute: jobs run with --config of it */
	char *cairn_bin;        /* what non-command jobs execute */
	cairn_store *store;
	cairn_job *jobs;
	size_t njobs;
	cairn_policy pol;
	cairn_monitor_opts mon;
	cairn_child *kids;      /* running jobs */
	size_t nkids, capkids;
	size_t *manual;         /* queued triggers (job indices), oldest first */
	size_t nmanual, capmanual;
	struct MHD_Daemon *http;
	int http_fd;            /* MHD's epoll fd, -1 without HTTP */
	char *token;            /* API bearer token; NULL = API refuses everything */
	int wake[2];            /* self-pipe: stop requests, SIGCHLD */
	volatile sig_atomic_t stop;
	int64_t started;        /* wall clock, seconds */
	int64_t next_plan;      /* when the plan must run again (0 = at once) */
	int64_t next_wake;      /* the plan's own next wake-up */
	int64_t next_monitor;
	uint64_t ticks;
};

/** One log line on stderr: "TIME cairnd: message". */
void cairn_daemon__log(cairn_daemon *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/**
 * The argv of job @p j run as @p kind (a verification may differ from the
 * job's own kind), NULL-terminated; free with cairn_daemon__argv_free().
 * @return 0, -EINVAL (a command job without command).
 */
int cairn_daemon__argv(const cairn_daemon *d, const cairn_job *j, cairn_job_kind kind,
		       char ***out);
void cairn_daemon__argv_free(char **argv);
/** Start @p argv as child @p c (pipes, process group, PDEATHSIG). @return 0, -errno. */
int cairn_daemon__spawn(cairn_child *c, char *const *argv);
/** Read what is available on @p fd (stdout or stderr of @p c); 0 at EOF. */
int cairn_daemon__child_read(cairn_child *c, int fd);
/** Fill r->status, exit_code, bytes, files, cpu_ms, peak_rss_kb, error from @p c. */
void cairn_daemon__child_result(const cairn_child *c, cairn_run *r);

/** "scheduled", "catchup", "retry", "verify", "manual". */
const char *cairn_daemon__reason_name(cairn_run_reason r);
/** Queue a manual run of job @p job_id. @return 0, -ENOENT (no such job), -EBUSY (running). */
int cairn_daemon__trigger(cairn_daemon *d, const char *job_id);

/** Start the HTTP server on daemon.listen. @return 0, -EADDRINUSE, -EINVAL, -EIO. */
int cairn_http__start(cairn_daemon *d);
/** Serve what is ready (call when http_fd is readable or its timeout expired). */
void cairn_http__run(cairn_daemon *d);
/** Milliseconds until MHD needs cairn_http__run() anyway (-1 = none). */
int cairn_http__timeout_ms(cairn_daemon *d);
void cairn_http__stop(cairn_daemon *d);

#endif
