/*
 * http.c - cairnd's HTTP server (libmicrohttpd, driven by the daemon's own
 * poll loop through MHD's epoll fd): /healthz, /metrics and the JSON API.
 *
 *   GET  /healthz                      no auth; "ok"
 *   GET  /metrics                      no auth; Prometheus text (metrics.c)
 *   GET  /api/v1/status                daemon, running jobs
 *   GET  /api/v1/clients               clients with their latest good backup/drill
 *   GET  /api/v1/jobs                  jobs, next slot, latest run
 *   GET  /api/v1/runs?job=&client=&status=&limit=&before=
 *   GET  /api/v1/incidents?state=open|acknowledged|resolved|unresolved|all&limit=
 *   GET  /api/v1/incidents/ID          the incident and its timeline
 *   GET  /api/v1/incidents/ID/review   the post-incident review (Markdown)
 *   POST /api/v1/incidents/ID/ack?by=NAME, /api/v1/incidents/ID/resolve?by=NAME
 *   POST /api/v1/jobs/JOB/run          run now (JOB = client/name, '/' may be %2F)
 *
 * DESIGN: the API needs `Authorization: Bearer TOKEN` (daemon.api_token_file,
 * compared in constant time); without a configured token it answers 401 to
 * everything. Handlers run inside the daemon's single thread, so they use
 * the daemon's store handle directly and a trigger is just a queue entry the
 * next tick (started at once) picks up. Request bodies are ignored.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "engine/engine.h"
#include "sched/daemon_int.h"

static int first_call_marker;

static enum MHD_Result send_buf(struct MHD_Connection *con, unsigned code, char *body,
				const char *type)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body,
								 MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	if (code == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"cairnd\"");
	enum MHD_Result ret = MHD_queue_response(con, code, r);
	MHD_destroy_response(r);
	return ret;
}

/* Send @p j (reference taken) as JSON. */
static enum MHD_Result send_json(struct MHD_Connection *con, unsigned code, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return send_buf(con, code, s ? s : cairn_xstrdup("null"), "application/json");
}

static enum MHD_Result send_error(struct MHD_Connection *con, unsigned code, const char *msg)
{
	return send_json(con, code, json_pack("{s:s}", "error", msg));
}

/* HTTP status of a negative errno from the store or the daemon. */
static unsigned status_of(int rc)
{
	switch (-rc) {
	case ENOENT: return MHD_HTTP_NOT_FOUND;
	case EALREADY:
	case EBUSY:
	case EEXIST: return MHD_HTTP_CONFLICT;
	case EINVAL: return MHD_HTTP_BAD_REQUEST;
	default: return MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
}

static int authorized(const cairn_daemon *d, struct MHD_Connection *con)
{
	const char *h = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Authorization");
	if (!d->token || !h || strncmp(h, "Bearer ", 7))
		return 0;
	h += 7;
	size_t a = strlen(h), b = strlen(d->token);
	unsigned char diff = a != b;
	for (size_t i = 0; i < b; i++)
		diff |= (unsigned char)(h[i < a ? i : 0] ^ d->token[i]);
	return diff == 0;
}

static json_t *run_json(const cairn_run *r)
{
	return json_pack("{s:I,s:s,s:s,s:s,s:s,s:I,s:i,s:I,s:I,s:I,s:s,s:i,s:I,s:I,s:I,s:I,s:I,"
			 "s:I,s:s}",
			 "id", (json_int_t)r->id, "job", r->job, "client", r->client, "kind",
			 cairn_job_kind_name(r->kind) ? cairn_job_kind_name(r->kind) : "?",
			 "reason", cairn_daemon__reason_name(r->reason),
			 "scheduled_for", (json_int_t)r->scheduled_for, "attempt", r->attempt,
			 "parent_id", (json_int_t)r->parent_id, "started", (json_int_t)r->started,
			 "ended", (json_int_t)r->ended, "status", cairn_run_status_name(r->status),
			 "exit_code", r->exit_code, "pid", (json_int_t)r->pid, "duration_ms",
			 (json_int_t)r->duration_ms, "bytes", (json_int_t)r->bytes, "files",
			 (json_int_t)r->files, "cpu_ms", (json_int_t)r->cpu_ms, "peak_rss_kb",
			 (json_int_t)r->peak_rss_kb, "error", r->error);
}

static json_t *incident_json(const cairn_incident *i)
{
	json_t *labels = json_loads(i->labels, 0, NULL);
	return json_pack("{s:I,s:s,s:s,s:o,s:s,s:i,s:s,s:I,s:I,s:I,s:I,s:i,s:b,s:s}", "id",
			 (json_int_t)i->id, "key", i->key, "alertname", i->alertname, "labels",
			 labels ? labels : json_object(), "summary", i->summary, "priority",
			 i->priority, "state", cairn_incident_state_name(i->state), "opened",
			 (json_int_t)i->opened, "acknowledged", (json_int_t)i->acked, "resolved",
			 (json_int_t)i->resolved, "last_seen", (json_int_t)i->last_seen,
			 "escalation", i->escalation, "notified", i->notified, "acknowledged_by",
			 i->acked_by);
}

/* The latest run of @p job with status @p status (-1 any) as JSON, or null. */
static json_t *latest(cairn_daemon *d, const char *job, int status)
{
	cairn_run_query q = CAIRN_RUN_QUERY_INIT;
	cairn_run *v = NULL;
	size_t n = 0;
	q.job = job;
	q.status = status;
	q.limit = 1;
	if (cairn_store_runs(d->store, &q, &v, &n) < 0 || !n) {
		free(v);
		return json_null();
	}
	json_t *j = run_json(&v[0]);
	free(v);
	return j;
}

static json_t *api_status(cairn_daemon *d, int64_t now)
{
	json_t *running = json_array();
	for (size_t i = 0; i < d->nkids; i++)
		json_array_append_new(running, run_json(&d->kids[i].run));
	cairn_incident *inc;
	size_t ninc = 0;
	if (cairn_store_incidents(d->store, -2, 10000, &inc, &ninc) == 0)
		free(inc);
	return json_pack("{s:s,s:I,s:I,s:I,s:i,s:i,s:i,s:o,s:i,s:I,s:s,s:s}", "version",
			 CAIRN_VERSION_STRING, "pid", (json_int_t)getpid(), "started",
			 (json_int_t)d->started, "now", (json_int_t)now, "clients",
			 (int)d->cfg->nclients, "jobs", (int)d->njobs, "max_concurrent_jobs",
			 (int)d->cfg->daemon.max_concurrent_jobs, "running", running, "queued",
			 (int)d->nmanual, "open_incidents", (json_int_t)ninc, "config",
			 d->config_path, "database", d->cfg->daemon.database);
}

static json_t *api_clients(cairn_daemon *d)
{
	json_t *a = json_array();
	char job[CAIRN_NAME_MAX + 16];
	for (size_t i = 0; i < d->cfg->nclients; i++) {
		const cairn_cfg_client *c = &d->cfg->clients[i];
		json_t *src = json_array();
		for (size_t k = 0; k < c->nsources; k++)
			json_array_append_new(src, json_string(c->sources[k]));
		snprintf(job, sizeof(job), "%s/backup", c->name);
		json_t *b = latest(d, job, CAIRN_RUN_OK);
		snprintf(job, sizeof(job), "%s/drill", c->name);
		json_t *dr = latest(d, job, CAIRN_RUN_OK);
		json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:o,s:s,s:s,s:o,s:o}", "name",
						   c->name, "repository", c->repository, "site",
						   c->site ? c->site : "", "sources", src,
						   "schedule", c->schedule, "timezone",
						   c->timezone ? c->timezone : "UTC",
						   "last_backup_ok", b, "last_drill_ok", dr));
	}
	return a;
}

static json_t *api_jobs(cairn_daemon *d, int64_t now)
{
	json_t *a = json_array();
	for (size_t i = 0; i < d->njobs; i++) {
		const cairn_job *j = &d->jobs[i];
		int64_t next = 0;
		cairn_cron_next(j->cron, now, &next);
		int running = 0;
		for (size_t k = 0; k < d->nkids; k++)
			running |= !strcmp(d->kids[k].run.job, j->id);
		const char *tz = j->cfg && j->cfg->timezone ? j->cfg->timezone : NULL;
		if (!tz)
			tz = j->client_cfg && j->client_cfg->timezone ? j->client_cfg->timezone
								       : "UTC";
		json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:b,s:o}", "id", j->id,
						   "client", j->client, "kind",
						   cairn_job_kind_name(j->kind), "schedule",
						   j->cfg ? j->cfg->schedule : "", "timezone", tz,
						   "next_run", (json_int_t)next, "running", running,
						   "last_run", latest(d, j->id, -1)));
	}
	return a;
}

static long arg_long(struct MHD_Connection *con, const char *key, long def, long lo, long hi)
{
	const char *v = MHD_lookup_connection_value(con, MHD_GET_ARGUMENT_KIND, key);
	char *end;
	if (!v || !*v)
		return def;
	long x = strtol(v, &end, 10);
	return *end || x < lo || x > hi ? -1 : x;
}

static enum MHD_Result api_runs(cairn_daemon *d, struct MHD_Connection *con)
{
	cairn_run_query q = CAIRN_RUN_QUERY_INIT;
	q.job = MHD_lookup_connection_value(con, MHD_GET_ARGUMENT_KIND, "job");
	q.client = MHD_lookup_connection_value(con, MHD_GET_ARGUMENT_KIND, "client");
	const char *st = MHD_lookup_connection_value(con, MHD_GET_ARGUMENT_KIND, "status");
	long limit = arg_long(con, "limit", 50, 1, 1000), before = arg_long(con, "before", 0, 0,
									  LONG_MAX);
	if (limit < 0 || before < 0)
		return send_error(con, MHD_HTTP_BAD_REQUEST, "limit is 1..1000, before an id");
	q.limit = (size_t)limit;
	q.before_id = before;
	if (st && *st) {
		for (int i = 0; i < CAIRN_RUN_STATUS_COUNT && q.status < 0; i++)
			if (!strcmp(st, cairn_run_status_name((cairn_run_status)i)))
				q.status = i;
		if (q.status < 0)
			return send_error(con, MHD_HTTP_BAD_REQUEST, "unknown status");
	}
	cairn_run *v;
	size_t n;
	int rc = cairn_store_runs(d->store, &q, &v, &n);
	if (rc < 0)
		return send_error(con, status_of(rc), cairn_error_last());
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, run_json(&v[i]));
	free(v);
	return send_json(con, MHD_HTTP_OK, a);
}

static enum MHD_Result api_incidents(cairn_daemon *d, struct MHD_Connection *con)
{
	const char *st = MHD_lookup_connection_value(con, MHD_GET_ARGUMENT_KIND, "state");
	long limit = arg_long(con, "limit", 100, 1, 10000);
	int state = -2;
	if (!st || !strcmp(st, "unresolved"))
		state = -2;
	else if (!strcmp(st, "all"))
		state = -1;
	else if (!strcmp(st, "open"))
		state = CAIRN_INC_OPEN;
	else if (!strcmp(st, "acknowledged") || !strcmp(st, "acked"))
		state = CAIRN_INC_ACKED;
	else if (!strcmp(st, "resolved"))
		state = CAIRN_INC_RESOLVED;
	else
		return send_error(con, MHD_HTTP_BAD_REQUEST, "state is open, acknowledged, "
							     "resolved, unresolved or all");
	if (limit < 0)
		return send_error(con, MHD_HTTP_BAD_REQUEST, "limit is 1..10000");
	cairn_incident *v;
	size_t n;
	int rc = cairn_store_incidents(d->store, state, (size_t)limit, &v, &n);
	if (rc < 0)
		return send_error(con, status_of(rc), cairn_error_last());
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, incident_json(&v[i]));
	free(v);
	return send_json(con, MHD_HTTP_OK, a);
}

static void copy_label(json_t *labels, const char *key, char *dst, size_t len)
{
	const char *v = json_string_value(json_object_get(labels, key));
	snprintf(dst, len, "%s", v ? v : "");
}

/* After a resolve by hand: tell the receivers that were told about it. */
static void notify_resolved(cairn_daemon *d, int64_t id, int64_t now)
{
	cairn_notice nt;
	memset(&nt, 0, sizeof(nt));
	if (cairn_store_incident_get(d->store, id, &nt.incident) < 0 || !nt.incident.notified)
		return;
	nt.kind = CAIRN_NOTICE_RESOLVED;
	cairn_alert *a = &nt.alert;
	json_t *l = json_loads(nt.incident.labels, 0, NULL);
	copy_label(l, "client", a->client, sizeof(a->client));
	copy_label(l, "job", a->job, sizeof(a->job));
	copy_label(l, "target", a->target, sizeof(a->target));
	copy_label(l, "site", a->site, sizeof(a->site));
	json_decref(l);
	snprintf(a->key, sizeof(a->key), "%s", nt.incident.key);
	snprintf(a->alertname, sizeof(a->alertname), "%s", nt.incident.alertname);
	snprintf(a->summary, sizeof(a->summary), "%s", nt.incident.summary);
	a->priority = nt.incident.priority;
	cairn_notify_deliver(d->store, d->cfg, &nt, now);
}

static enum MHD_Result api_incident(cairn_daemon *d, struct MHD_Connection *con,
				    const char *method, const char *rest, int64_t now)
{
	char *end;
	long long id = strtoll(rest, &end, 10);
	int rc;
	if (end == rest || id <= 0)
		return send_error(con, MHD_HTTP_NOT_FOUND, "no such incident");
	const char *by = MHD_lookup_connection_value(con, MHD_GET_ARGUMENT_KIND, "by");
	cairn_incident inc;
	int post = !strcmp(method, "POST");
	if (!strcmp(end, "/ack") || !strcmp(end, "/resolve")) {
		if (!post)
			return send_error(con, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST");
		int ack = end[1] == 'a';
		rc = ack ? cairn_incident_ack(d->store, id, by && *by ? by : "api", now)
			 : cairn_incident_resolve(d->store, id, by && *by ? by : "api", now);
		if (rc < 0)
			return send_error(con, status_of(rc), cairn_error_last());
		cairn_daemon__log(d, "incident %lld %s by %s (API)", id,
				  ack ? "acknowledged" : "resolved", by && *by ? by : "api");
		if (!ack)
			notify_resolved(d, id, now);
		if ((rc = cairn_store_incident_get(d->store, id, &inc)) < 0)
			return send_error(con, status_of(rc), cairn_error_last());
		return send_json(con, MHD_HTTP_OK, incident_json(&inc));
	}
	if (post)
		return send_error(con, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET");
	if (!strcmp(end, "/review")) {
		char *md;
		if ((rc = cairn_incident_review(d->store, id, &md)) < 0)
			return send_error(con, status_of(rc), cairn_error_last());
		return send_buf(con, MHD_HTTP_OK, md, "text/markdown; charset=utf-8");
	}
	if (*end)
		return send_error(con, MHD_HTTP_NOT_FOUND, "no such resource");
	cairn_timeline_entry *tl;
	size_t n;
	if ((rc = cairn_store_incident_get(d->store, id, &inc)) < 0 ||
	    (rc = cairn_store_timeline(d->store, id, &tl, &n)) < 0)
		return send_error(con, status_of(rc), cairn_error_last());
	json_t *j = incident_json(&inc), *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_pack("{s:I,s:s}", "t", (json_int_t)tl[i].t, "text",
						   tl[i].text));
	free(tl);
	json_object_set_new(j, "timeline", a);
	return send_json(con, MHD_HTTP_OK, j);
}

static enum MHD_Result api(cairn_daemon *d, struct MHD_Connection *con, const char *url,
			   const char *method)
{
	int64_t now = (int64_t)time(NULL);
	int get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
	if (!get && !post)
		return send_error(con, MHD_HTTP_METHOD_NOT_ALLOWED, "GET or POST");
	if (!strcmp(url, "/status") || !strcmp(url, "/clients") || !strcmp(url, "/jobs") ||
	    !strcmp(url, "/runs") || !strcmp(url, "/incidents")) {
		if (!get)
			return send_error(con, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET");
		if (!strcmp(url, "/status"))
			return send_json(con, MHD_HTTP_OK, api_status(d, now));
		if (!strcmp(url, "/clients"))
			return send_json(con, MHD_HTTP_OK, api_clients(d));
		if (!strcmp(url, "/jobs"))
			return send_json(con, MHD_HTTP_OK, api_jobs(d, now));
		if (!strcmp(url, "/runs"))
			return api_runs(d, con);
		return api_incidents(d, con);
	}
	if (!strncmp(url, "/incidents/", 11))
		return api_incident(d, con, method, url + 11, now);
	size_t len = strlen(url);
	if (!strncmp(url, "/jobs/", 6) && len > 10 && !strcmp(url + len - 4, "/run")) {
		if (!post)
			return send_error(con, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST");
		char job[CAIRN_NAME_MAX];
		snprintf(job, sizeof(job), "%.*s", (int)(len - 10), url + 6);
		int rc = cairn_daemon__trigger(d, job);
		if (rc < 0)
			return send_error(con, status_of(rc), cairn_error_last());
		return send_json(con, MHD_HTTP_ACCEPTED, json_pack("{s:s,s:b}", "job", job,
								   "queued", 1));
	}
	return send_error(con, MHD_HTTP_NOT_FOUND, "no such resource");
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *con, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **req_cls)
{
	cairn_daemon *d = cls;
	(void)version;
	(void)upload_data;
	if (!*req_cls) { /* headers only so far */
		*req_cls = &first_call_marker;
		return MHD_YES;
	}
	if (*upload_data_size) { /* bodies are not used */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (!strcmp(url, "/healthz"))
		return send_buf(con, MHD_HTTP_OK, cairn_xstrdup("ok\n"), "text/plain");
	if (!strcmp(url, "/metrics")) {
		char *text;
		if (strcmp(method, "GET") && strcmp(method, "HEAD"))
			return send_error(con, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET");
		if (cairn_metrics_render(d->store, d->jobs, d->njobs, (int64_t)time(NULL), d->nkids,
					 &text) < 0)
			return send_error(con, MHD_HTTP_INTERNAL_SERVER_ERROR, cairn_error_last());
		return send_buf(con, MHD_HTTP_OK, text, "text/plain; version=0.0.4; charset=utf-8");
	}
	if (!strncmp(url, "/api/v1/", 8) || !strcmp(url, "/api/v1")) {
		if (!authorized(d, con))
			return send_error(con, MHD_HTTP_UNAUTHORIZED,
					  d->token ? "missing or wrong bearer token"
						   : "API disabled: no daemon.api_token_file");
		return api(d, con, url + 7, method);
	}
	return send_error(con, MHD_HTTP_NOT_FOUND, "no such resource");
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = 0;
	cairn_daemon__log(cls, "http: %s", msg);
}

/* A listening socket on daemon.listen ("HOST:PORT", "[V6]:PORT"). */
static int listen_socket(const char *spec, int *out)
{
	char host[256];
	const char *colon = strrchr(spec, ':');
	if (!colon || colon == spec)
		return cairn_error_set(-EINVAL, "daemon.listen '%s' is not HOST:PORT", spec);
	snprintf(host, sizeof(host), "%.*s", (int)(colon - spec), spec);
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = 0;
	}
	struct addrinfo hints, *ai;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	int rc = getaddrinfo(host, colon + 1, &hints, &ai);
	if (rc)
		return cairn_error_set(-EINVAL, "daemon.listen '%s': %s", spec, gai_strerror(rc));
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return cairn_error_set(rc, "listen on %s: %s", spec, strerror(-rc));
	}
	freeaddrinfo(ai);
	*out = fd;
	return 0;
}

/* See daemon_int.h. */
int cairn_http__start(cairn_daemon *d)
{
	int fd, rc;
	if ((rc = listen_socket(d->cfg->daemon.listen, &fd)) < 0)
		return rc;
	d->http = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, handle, d,
				   MHD_OPTION_EXTERNAL_LOGGER, mhd_log, d, MHD_OPTION_LISTEN_SOCKET,
				   fd, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
				   MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_END);
	if (!d->http) {
		close(fd);
		return cairn_error_set(-EIO, "HTTP server on %s did not start",
				       d->cfg->daemon.listen);
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d->http, MHD_DAEMON_INFO_EPOLL_FD);
	d->http_fd = info ? info->epoll_fd : -1;
	if (d->http_fd < 0) {
		cairn_http__stop(d);
		return cairn_error_set(-EIO, "HTTP server: no epoll fd");
	}
	cairn_daemon__log(d, "listening on http://%s", d->cfg->daemon.listen);
	return 0;
}

void cairn_http__run(cairn_daemon *d)
{
	if (d->http)
		MHD_run(d->http);
}

int cairn_http__timeout_ms(cairn_daemon *d)
{
	MHD_UNSIGNED_LONG_LONG t;
	if (!d->http || MHD_get_timeout(d->http, &t) != MHD_YES)
		return -1;
	return t > 1000 ? 1000 : (int)t;
}

void cairn_http__stop(cairn_daemon *d)
{
	if (d->http)
		MHD_stop_daemon(d->http); /* closes the listening socket too */
	d->http = NULL;
	d->http_fd = -1;
}
