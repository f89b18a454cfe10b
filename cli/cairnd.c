/*
 * cairnd.c - the scheduler daemon's main: arguments, signals, detaching.
 * Everything else is sched/ (cairn_daemon_*; docs/SCHEDULER.md).
 *
 *   cairnd --config FILE [--foreground]
 *
 * Without --foreground cairnd detaches (new session, stdin and stdout on
 * /dev/null, stderr kept for the log) once it is listening, so a failing
 * start still exits non-zero with its message. SIGTERM and SIGINT stop it
 * cleanly: running jobs are terminated and recorded 'killed' (the plan
 * retries them after the next start).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "engine/engine.h"
#include "sched/sched.h"

static cairn_daemon *the_daemon;

static void on_signal(int sig)
{
	(void)sig;
	if (the_daemon)
		cairn_daemon_stop(the_daemon);
}

static const char usage[] =
    "usage: cairnd --config FILE [--foreground]\n"
    "  --config FILE   the YAML configuration (clients, daemon, notifiers, routes, defaults)\n"
    "  --foreground    do not detach (log on stderr)\n"
    "  --version\n";

/* Fork; the parent waits for the child's "ready" byte (or its death) and exits. */
static int detach(int *ready_fd)
{
	int p[2];
	if (pipe(p) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		char c;
		close(p[1]);
		ssize_t n = read(p[0], &c, 1);
		_exit(n == 1 ? 0 : 1);
	}
	close(p[0]);
	setsid();
	*ready_fd = p[1];
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {{"config", 1, 0, 'c'}, {"foreground", 0, 0, 'f'},
					   {"version", 0, 0, 'V'},  {"help", 0, 0, 'h'},
					   {0, 0, 0, 0}};
	const char *config = NULL;
	int foreground = 0, ch, ready = -1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":c:fh", lo, NULL)) != -1) {
		switch (ch) {
		case 'c': config = optarg; break;
		case 'f': foreground = 1; break;
		case 'V': printf("cairnd %s\n", CAIRN_VERSION_STRING); return 0;
		case 'h': fputs(usage, stdout); return 0;
		default:
			fprintf(stderr, "cairnd: bad option '%s'\n%s", argv[optind - 1], usage);
			return 2;
		}
	}
	if (!config || optind < argc) {
		fprintf(stderr, "cairnd: %s\n%s", config ? "unexpected arguments" : "--config FILE "
			"is required", usage);
		return 2;
	}
	if (!foreground && detach(&ready) < 0) {
		fprintf(stderr, "cairnd: cannot detach: %s\n", strerror(errno));
		return 1;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);

	cairn_daemon *d;
	cairn_daemon_opts o = CAIRN_DAEMON_OPTS_INIT;
	int rc = cairn_daemon_open(&d, config, &o);
	if (rc < 0) {
		fprintf(stderr, "cairnd: %s\n", cairn_error_last());
		return rc == -EINVAL || rc == -ENOENT ? 2 : 1;
	}
	the_daemon = d;
	if (ready >= 0) {
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			close(null);
		}
		if (write(ready, "r", 1) != 1) {
			/* the parent is gone: nobody to tell */
		}
		close(ready);
	}
	rc = cairn_daemon_run(d);
	the_daemon = NULL;
	cairn_daemon_close(d);
	return rc < 0 ? 1 : 0;
}
