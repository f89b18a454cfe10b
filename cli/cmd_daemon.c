/*
 * cmd_daemon.c - the commands that talk to a running cairnd through its
 * HTTP API (sched/http.c): status, jobs, runs, incidents, incident review,
 * ack, resolve, run. The address (daemon.listen) and the bearer token
 * (daemon.api_token_file) come from the configuration file (--config).
 * With --json the API's JSON is printed as is.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* no type-checking macros: the functions are called through the table below */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>
#include <jansson.h>
#include <stddef.h>

#include "cli/cli.h"
#include "common/common.h"
#include "common/dl.h"
#include "sched/sched.h"

/*
 * libcurl, loaded when one of these commands runs (common/dl.h): linked, it
 * and what it drags in (GnuTLS, Kerberos, LDAP, ssh...) cost every cairn
 * command ~5 MiB of memory and ~2.7 ms of start-up, backups included.
 */
#define CURL_SONAME "libcurl.so.4"
#define CURL_FUNCS(X)                                                                              \
	X(curl_global_init)                                                                        \
	X(curl_global_cleanup)                                                                     \
	X(curl_easy_init)                                                                          \
	X(curl_easy_setopt)                                                                        \
	X(curl_easy_perform)                                                                       \
	X(curl_easy_getinfo)                                                                       \
	X(curl_easy_cleanup)                                                                       \
	X(curl_easy_strerror)                                                                      \
	X(curl_easy_escape)                                                                        \
	X(curl_free)                                                                               \
	X(curl_slist_append)                                                                       \
	X(curl_slist_free_all)

static struct curl_lib {
#define X(f) __typeof__(f) *f;
	CURL_FUNCS(X)
#undef X
} lib;

static const cairn_dl_sym lib_syms[] = {
#define X(f) {#f, offsetof(struct curl_lib, f)},
    CURL_FUNCS(X)
#undef X
};

typedef struct api {
	char base[300];         /* http://HOST:PORT */
	char auth[600];         /* Authorization: Bearer ... */
} api;

/* Address and token of the daemon of --config. */
static int api_setup(cli *c, api *a)
{
	int rc;
	if (!c->config) {
		cli_error("this command talks to cairnd: give its configuration with "
			  "--config FILE");
		return EXIT_USAGE;
	}
	if (!c->cfg) {
		cairn_config *cfg;
		if ((rc = cairn_config_load(&cfg, c->config)) < 0)
			return cli_fail("configuration", rc);
		c->cfg = cfg;
	}
	const cairn_cfg_daemon *d = &((cairn_config *)c->cfg)->daemon;
	const char *listen = d->listen ? d->listen : "127.0.0.1:8790";
	const char *port = strrchr(listen, ':');
	char host[256];
	snprintf(host, sizeof(host), "%.*s", (int)(port - listen), listen);
	/* a wildcard listen address is reached on loopback */
	if (!strcmp(host, "0.0.0.0") || !*host)
		snprintf(host, sizeof(host), "127.0.0.1");
	else if (!strcmp(host, "[::]"))
		snprintf(host, sizeof(host), "[::1]");
	snprintf(a->base, sizeof(a->base), "http://%s%s", host, port);
	if (!d->api_token_file) {
		cli_error("%s has no daemon.api_token_file: cairnd's API is disabled", c->config);
		return EXIT_USAGE;
	}
	FILE *f = fopen(d->api_token_file, "r");
	char tok[512] = "";
	if (!f || !fgets(tok, sizeof(tok), f)) {
		cli_error("cannot read the API token %s: %s", d->api_token_file,
			  f ? "empty" : strerror(errno));
		if (f)
			fclose(f);
		return EXIT_USAGE;
	}
	fclose(f);
	tok[strcspn(tok, "\r\n")] = 0;
	snprintf(a->auth, sizeof(a->auth), "Authorization: Bearer %s", tok);
	memset(tok, 0, sizeof(tok));
	return 0;
}

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
	cairn_buf_append(ud, p, size * n);
	return size * n;
}

/*
 * One request: @p method on base + @p path. *body gets the answer
 * (malloc'd, NUL-terminated). Returns 0 on a 2xx answer, else an exit code
 * after printing one line (the API's "error" text when it gave one).
 */
static int request(const api *a, const char *method, const char *path, char **body)
{
	char url[1200];
	cairn_buf b = CAIRN_BUF_INIT;
	long code = 0;
	snprintf(url, sizeof(url), "%s%s", a->base, path);
	CURL *h = lib.curl_easy_init();
	struct curl_slist *hdr = lib.curl_slist_append(NULL, a->auth);
	lib.curl_easy_setopt(h, CURLOPT_URL, url);
	lib.curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	lib.curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
	lib.curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	lib.curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
	lib.curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
	lib.curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	if (!strcmp(method, "POST"))
		lib.curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
	CURLcode cc = lib.curl_easy_perform(h);
	if (cc == CURLE_OK)
		lib.curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	lib.curl_slist_free_all(hdr);
	lib.curl_easy_cleanup(h);
	cairn_buf_put_u8(&b, 0);
	*body = (char *)b.data;
	if (cc != CURLE_OK) {
		cli_error("cannot reach cairnd at %s: %s", a->base, lib.curl_easy_strerror(cc));
		return EXIT_FAIL;
	}
	if (code >= 200 && code < 300)
		return 0;
	json_t *j = json_loads(*body, 0, NULL);
	const char *msg = json_string_value(json_object_get(j, "error"));
	cli_error("cairnd: %s (HTTP %ld)", msg ? msg : "request failed", code);
	json_decref(j);
	return code == 400 ? EXIT_USAGE : EXIT_FAIL;
}

/* GET @p path as JSON into *out; with --json print it and set *out NULL. */
static int get_json(cli *c, const api *a, const char *path, json_t **out)
{
	char *body;
	*out = NULL;
	int rc = request(a, "GET", path, &body);
	if (rc == 0 && c->json) {
		printf("%s\n", body);
	} else if (rc == 0 && !(*out = json_loads(body, 0, NULL))) {
		cli_error("cairnd sent something that is not JSON");
		rc = EXIT_FAIL;
	}
	free(body);
	return rc;
}

static int64_t geti(json_t *o, const char *k)
{
	return (int64_t)json_integer_value(json_object_get(o, k));
}

static const char *gets_(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

static void when(char *out, size_t cap, int64_t t)
{
	if (t <= 0)
		snprintf(out, cap, "-");
	else
		fmt_time(out, cap, t * 1000000000, 0);
}

static int status(cli *c, const api *a)
{
	json_t *j;
	int rc = get_json(c, a, "/api/v1/status", &j);
	if (rc || !j)
		return rc;
	char t[32];
	int64_t now = geti(j, "now"), up = now - geti(j, "started");
	when(t, sizeof(t), geti(j, "started"));
	printf("cairnd %s, pid %lld, running since %s (%lldh%02lldm)\n", gets_(j, "version"),
	       (long long)geti(j, "pid"), t, (long long)(up / 3600), (long long)(up / 60 % 60));
	json_t *run = json_object_get(j, "running");
	printf("clients %lld, jobs %lld; running %zu of at most %lld, %lld queued; "
	       "unresolved incidents %lld\n", (long long)geti(j, "clients"),
	       (long long)geti(j, "jobs"), json_array_size(run),
	       (long long)geti(j, "max_concurrent_jobs"), (long long)geti(j, "queued"),
	       (long long)geti(j, "open_incidents"));
	size_t i;
	json_t *r;
	json_array_foreach(run, i, r)
		printf("  run %lld %s (%s, %s, attempt %lld) for %llds, pid %lld\n",
		       (long long)geti(r, "id"), gets_(r, "job"), gets_(r, "kind"),
		       gets_(r, "reason"), (long long)geti(r, "attempt"),
		       (long long)(now - geti(r, "started")), (long long)geti(r, "pid"));
	json_decref(j);
	return 0;
}

static int jobs(cli *c, const api *a)
{
	json_t *j;
	int rc = get_json(c, a, "/api/v1/jobs", &j);
	if (rc || !j)
		return rc;
	printf("%-28s %-8s %-16s %-19s  %-19s  %s\n", "JOB", "KIND", "SCHEDULE", "NEXT",
	       "LAST RUN", "STATUS");
	size_t i;
	json_t *o;
	json_array_foreach(j, i, o) {
		char nx[32], last[32];
		json_t *lr = json_object_get(o, "last_run");
		when(nx, sizeof(nx), geti(o, "next_run"));
		when(last, sizeof(last), json_is_object(lr) ? geti(lr, "started") : 0);
		printf("%-28s %-8s %-16s %-19s  %-19s  %s\n", gets_(o, "id"), gets_(o, "kind"),
		       gets_(o, "schedule"), nx, last,
		       json_is_true(json_object_get(o, "running")) ? "running"
		       : json_is_object(lr) ? gets_(lr, "status") : "-");
	}
	json_decref(j);
	return 0;
}

static int runs(cli *c, const api *a, int argc, char **argv)
{
	static const struct option lo[] = {{"job", 1, 0, 'j'}, {"client", 1, 0, 'c'},
					   {"limit", 1, 0, 'n'}, {"help", 0, 0, 'h'},
					   {0, 0, 0, 0}};
	const char *job = NULL, *client = NULL, *limit = "20";
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, ":j:c:n:h", lo, NULL)) != -1) {
		switch (ch) {
		case 'j': job = optarg; break;
		case 'c': client = optarg; break;
		case 'n': limit = optarg; break;
		case 'h':
			puts("usage: cairn --config FILE runs [--job CLIENT/NAME] [--client C] "
			     "[--limit N] [--json]");
			return EXIT_OK;
		default: return cli_bad_option("runs", ch, argv);
		}
	}
	CURL *h = lib.curl_easy_init();
	char path[1024];
	char *ej = job ? lib.curl_easy_escape(h, job, 0) : NULL;
	char *ec = client ? lib.curl_easy_escape(h, client, 0) : NULL;
	char *el = lib.curl_easy_escape(h, limit, 0);
	snprintf(path, sizeof(path), "/api/v1/runs?limit=%s%s%s%s%s", el, ej ? "&job=" : "",
		 ej ? ej : "", ec ? "&client=" : "", ec ? ec : "");
	lib.curl_free(ej);
	lib.curl_free(ec);
	lib.curl_free(el);
	lib.curl_easy_cleanup(h);
	json_t *j;
	int rc = get_json(c, a, path, &j);
	if (rc || !j)
		return rc;
	printf("%-6s %-28s %-7s %-9s %-3s %-19s %9s %-11s %10s %7s  %s\n", "ID", "JOB", "KIND",
	       "REASON", "TRY", "STARTED", "DURATION", "STATUS", "BYTES", "FILES", "ERROR");
	size_t i;
	json_t *o;
	json_array_foreach(j, i, o) {
		char st[32], sz[32];
		when(st, sizeof(st), geti(o, "started"));
		fmt_size(sz, sizeof(sz), (uint64_t)geti(o, "bytes"));
		printf("%-6lld %-28s %-7s %-9s %-3lld %-19s %8.1fs %-11s %10s %7lld  %s\n",
		       (long long)geti(o, "id"), gets_(o, "job"), gets_(o, "kind"),
		       gets_(o, "reason"), (long long)geti(o, "attempt"), st,
		       (double)geti(o, "duration_ms") / 1000, gets_(o, "status"), sz,
		       (long long)geti(o, "files"), gets_(o, "error"));
	}
	json_decref(j);
	return 0;
}

static int incidents(cli *c, const api *a, int argc, char **argv)
{
	static const struct option lo[] = {{"all", 0, 0, 'a'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
	int ch, all = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, ":ah", lo, NULL)) != -1) {
		switch (ch) {
		case 'a': all = 1; break;
		case 'h':
			puts("usage: cairn --config FILE incidents [--all] [--json]\n"
			     "  unresolved incidents; --all: also resolved ones");
			return EXIT_OK;
		default: return cli_bad_option("incidents", ch, argv);
		}
	}
	json_t *j;
	int rc = get_json(c, a, all ? "/api/v1/incidents?state=all" : "/api/v1/incidents", &j);
	if (rc || !j)
		return rc;
	printf("%-5s %-3s %-12s %-19s %-36s %s\n", "ID", "P", "STATE", "OPENED", "KEY", "SUMMARY");
	size_t i;
	json_t *o;
	json_array_foreach(j, i, o) {
		char op[32];
		when(op, sizeof(op), geti(o, "opened"));
		printf("%-5lld P%-2lld %-12s %-19s %-36s %s\n", (long long)geti(o, "id"),
		       (long long)geti(o, "priority"), gets_(o, "state"), op, gets_(o, "key"),
		       gets_(o, "summary"));
	}
	if (!i)
		printf("(no %sincidents)\n", all ? "" : "unresolved ");
	json_decref(j);
	return 0;
}

static int incident_id(const char *cmd, const char *s, long long *id)
{
	char *end;
	*id = s ? strtoll(s, &end, 10) : 0;
	if (!s || *end || *id <= 0)
		return cli_bad_usage(cmd, "give the incident's number");
	return 0;
}

/* ack ID / resolve ID: POST, then one line. */
static int change(cli *c, const api *a, const char *cmd, int argc, char **argv)
{
	long long id;
	int rc;
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: cairn --config FILE %s ID\n", cmd);
		return EXIT_OK;
	}
	if (argc != 2)
		return cli_bad_usage(cmd, "give one incident number");
	if ((rc = incident_id(cmd, argv[1], &id)))
		return rc;
	const char *user = getenv("USER");
	char path[256], *body;
	snprintf(path, sizeof(path), "/api/v1/incidents/%lld/%s?by=%s", id, cmd,
		 user && *user && strspn(user, "abcdefghijklmnopqrstuvwxyz0123456789._-") ==
		 strlen(user) ? user : "cli");
	if ((rc = request(a, "POST", path, &body)) == 0) {
		if (c->json)
			printf("%s\n", body);
		else if (!c->quiet)
			printf("incident %lld %s\n", id, !strcmp(cmd, "ack") ? "acknowledged"
									  : "resolved");
	}
	free(body);
	return rc;
}

/* incident review ID [--output FILE] */
static int review(cli *c, const api *a, int argc, char **argv)
{
	static const struct option lo[] = {{"output", 1, 0, 'o'}, {"help", 0, 0, 'h'},
					   {0, 0, 0, 0}};
	const char *output = NULL;
	int ch, rc;
	long long id;
	(void)c;
	optind = 1;
	while ((ch = getopt_long(argc, argv, ":o:h", lo, NULL)) != -1) {
		switch (ch) {
		case 'o': output = optarg; break;
		case 'h':
			puts("usage: cairn --config FILE incident review ID [--output FILE]\n"
			     "  the post-incident review (Markdown) from the incident's timeline");
			return EXIT_OK;
		default: return cli_bad_option("incident review", ch, argv);
		}
	}
	if (optind + 1 != argc)
		return cli_bad_usage("incident", "review takes one incident number");
	if ((rc = incident_id("incident", argv[optind], &id)))
		return rc;
	char path[128], *body;
	snprintf(path, sizeof(path), "/api/v1/incidents/%lld/review", id);
	if ((rc = request(a, "GET", path, &body))) {
		free(body);
		return rc;
	}
	FILE *f = output ? fopen(output, "w") : stdout;
	if (!f) {
		cli_error("incident review: cannot write %s: %s", output, strerror(errno));
		free(body);
		return EXIT_FAIL;
	}
	fputs(body, f);
	free(body);
	if (output && fclose(f) != 0) {
		cli_error("incident review: writing %s: %s", output, strerror(errno));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static int trigger(cli *c, const api *a, int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		puts("usage: cairn --config FILE run CLIENT/JOB\n"
		     "  run a job now (it starts as soon as max_concurrent_jobs allows)");
		return EXIT_OK;
	}
	if (argc != 2 || !strchr(argv[1], '/'))
		return cli_bad_usage("run", "give one job as CLIENT/NAME (see 'cairn jobs')");
	CURL *h = lib.curl_easy_init();
	char *ej = lib.curl_easy_escape(h, argv[1], 0);
	char path[512], *body;
	snprintf(path, sizeof(path), "/api/v1/jobs/%s/run", ej);
	lib.curl_free(ej);
	lib.curl_easy_cleanup(h);
	int rc = request(a, "POST", path, &body);
	if (rc == 0 && c->json)
		printf("%s\n", body);
	else if (rc == 0 && !c->quiet)
		printf("%s: queued\n", argv[1]);
	free(body);
	return rc;
}

/* See cli.h: status, jobs, runs, incidents, incident review, ack, resolve, run. */
int cmd_daemon(cli *c, int argc, char **argv)
{
	api a;
	const char *cmd = argv[0];
	int rc;
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) &&
	    (!strcmp(cmd, "status") || !strcmp(cmd, "jobs"))) {
		printf("usage: cairn --config FILE %s [--json]\n", cmd);
		return EXIT_OK;
	}
	if (!strcmp(cmd, "incident") && (argc < 2 || strcmp(argv[1], "review")))
		return cli_bad_usage("incident", "the subcommand is 'review ID'");
	if ((rc = api_setup(c, &a)))
		return rc;
	char why[512];
	if (cairn_dl_load("CAIRN_CURL_LIB", CURL_SONAME, &lib, sizeof(lib), lib_syms,
			  sizeof(lib_syms) / sizeof(lib_syms[0]), why, sizeof(why)) < 0) {
		cli_error("%s: %s (Debian package libcurl4)", cmd, why);
		return EXIT_FAIL;
	}
	lib.curl_global_init(CURL_GLOBAL_DEFAULT);
	if (!strcmp(cmd, "status") || !strcmp(cmd, "jobs"))
		rc = argc > 1 ? cli_bad_usage(cmd, "takes no arguments")
		     : cmd[0] == 's' ? status(c, &a) : jobs(c, &a);
	else if (!strcmp(cmd, "runs"))
		rc = runs(c, &a, argc, argv);
	else if (!strcmp(cmd, "incidents"))
		rc = incidents(c, &a, argc, argv);
	else if (!strcmp(cmd, "incident"))
		rc = review(c, &a, argc - 1, argv + 1);
	else if (!strcmp(cmd, "ack") || !strcmp(cmd, "resolve"))
		rc = change(c, &a, cmd, argc, argv);
	else
		rc = trigger(c, &a, argc, argv);
	lib.curl_global_cleanup();
	return rc;
}
