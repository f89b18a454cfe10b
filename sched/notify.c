/*
 * notify.c - notifiers: webhook (JSON POST), Prometheus Alertmanager (v2
 * alerts API), e-mail over SMTP, external command; routing of notices and
 * recording of every delivery in the incident's timeline (see sched.h).
 *
 * DESIGN: each send is synchronous and bounded by the notifier's timeout
 * (libcurl CURLOPT_TIMEOUT; for commands a deadline after which the child
 * is SIGKILLed), so a dead receiver costs at most that long and never
 * crashes the daemon (SIGPIPE is blocked while writing to a command).
 * cairnd should call cairn_notify_deliver from a worker thread if many
 * slow receivers must not delay its loop; each thread then needs its own
 * store handle.
 *
 * Alertmanager: identity is the label set (alertname, client, job, target,
 * site; the priority goes in the annotations so a priority change does not
 * fork the alert). Firing: startsAt = incident opened, endsAt = now + ttl
 * (Alertmanager resolves it by itself if cairnd dies; REPEAT notices
 * refresh it, so keep ttl above the repeat interval). Resolved: the same
 * labels with endsAt = the resolve time.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "sched/sched_int.h"

static const char *const event_names[] = {"opened", "repeat", "escalated", "resolved"};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* First line of @p path into @p buf; 0 or -errno. */
static int read_secret(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return cairn_error_set(-errno, "%s: %s", path, strerror(errno));
	if (!fgets(buf, (int)len, f))
		buf[0] = 0;
	fclose(f);
	buf[strcspn(buf, "\r\n")] = 0;
	return 0;
}

char *cairn_notice_json(const cairn_notice *nt, int64_t now)
{
	const cairn_incident *i = &nt->incident;
	const cairn_alert *a = &nt->alert;
	char t[4][32];
	cairn_rfc3339(now, t[0], sizeof(t[0]));
	cairn_rfc3339(i->opened, t[1], sizeof(t[1]));
	cairn_rfc3339(i->acked, t[2], sizeof(t[2]));
	cairn_rfc3339(i->resolved, t[3], sizeof(t[3]));
	char labels[1024];
	cairn_alert_labels_json(a, labels, sizeof(labels));
	cairn_buf b = CAIRN_BUF_INIT;
	cairn_buf__printf(&b, "{\"version\":\"1\",\"event\":\"%s\",\"timestamp\":\"%s\","
			  "\"incident\":{\"id\":%lld,\"key\":", event_names[nt->kind], t[0],
			  (long long)i->id);
	cairn_json__str(&b, i->key);
	cairn_buf__printf(&b, ",\"state\":\"%s\",\"priority\":\"P%d\",\"opened\":\"%s\","
			  "\"acknowledged\":%s%s%s,\"resolved\":%s%s%s,\"escalation\":%d},"
			  "\"alert\":{\"name\":", cairn_incident_state_name(i->state), i->priority,
			  t[1], i->acked ? "\"" : "", i->acked ? t[2] : "null", i->acked ? "\"" : "",
			  i->resolved ? "\"" : "", i->resolved ? t[3] : "null",
			  i->resolved ? "\"" : "", i->escalation);
	cairn_json__str(&b, a->alertname);
	cairn_buf__printf(&b, ",\"status\":\"%s\",\"labels\":%s,\"summary\":",
			  a->firing ? "firing" : "resolved", labels);
	cairn_json__str(&b, a->summary);
	cairn_buf__printf(&b, ",\"run_id\":%lld}}", (long long)a->run_id);
	char *s = cairn_xstrdup(cairn_buf__cstr(&b));
	cairn_buf_free(&b);
	return s;
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

/* POST @p body as JSON to @p url; 2xx is success. */
static int http_post(const cairn_cfg_notifier *nf, const char *url, const char *body)
{
	pthread_once(&curl_once, curl_init);
	CURL *h = curl_easy_init();
	if (!h)
		return cairn_error_set(-ENOMEM, "notifier %s: curl init failed", nf->name);
	struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
	char auth[600];
	if (nf->token_file) {
		char tok[512];
		int rc = read_secret(nf->token_file, tok, sizeof(tok));
		if (rc < 0) {
			curl_slist_free_all(hdr);
			curl_easy_cleanup(h);
			return cairn_error_wrap(rc, "notifier %s: token", nf->name);
		}
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tok);
		hdr = curl_slist_append(hdr, auth);
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "cairnd/0.1");
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)nf->timeout_s);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)nf->timeout_s);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	CURLcode cc = curl_easy_perform(h);
	long code = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	if (cc != CURLE_OK)
		return cairn_error_set(cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EIO,
				       "notifier %s: %s: %s", nf->name, url, curl_easy_strerror(cc));
	if (code < 200 || code > 299)
		return cairn_error_set(-EIO, "notifier %s: %s answered HTTP %ld", nf->name, url,
				       code);
	return 0;
}

static void am_pair(cairn_buf *b, const char *k, const char *v, int *first)
{
	if (!v || !*v)
		return;
	if (!*first)
		cairn_buf_put_u8(b, ',');
	*first = 0;
	cairn_json__str(b, k);
	cairn_buf_put_u8(b, ':');
	cairn_json__str(b, v);
}

static int send_alertmanager(const cairn_cfg_notifier *nf, const cairn_notice *nt, int64_t now)
{
	const cairn_alert *a = &nt->alert;
	const cairn_incident *i = &nt->incident;
	char starts[32], ends[32], prio[8], id[32];
	cairn_rfc3339(i->opened, starts, sizeof(starts));
	int64_t end = nt->kind == CAIRN_NOTICE_RESOLVED ? (i->resolved ? i->resolved : now)
						       : now + nf->ttl_s;
	if (end <= i->opened)
		end = i->opened + 1;
	cairn_rfc3339(end, ends, sizeof(ends));
	snprintf(prio, sizeof(prio), "P%d", i->priority);
	snprintf(id, sizeof(id), "%lld", (long long)i->id);
	cairn_buf b = CAIRN_BUF_INIT;
	int first = 1;
	cairn_buf__printf(&b, "[{\"labels\":{");
	am_pair(&b, "alertname", a->alertname, &first);
	am_pair(&b, "client", a->client, &first);
	am_pair(&b, "job", a->job, &first);
	am_pair(&b, "target", a->target, &first);
	am_pair(&b, "site", a->site, &first);
	cairn_buf__printf(&b, "},\"annotations\":{");
	first = 1;
	am_pair(&b, "summary", a->summary, &first);
	am_pair(&b, "priority", prio, &first);
	am_pair(&b, "incident", id, &first);
	am_pair(&b, "event", event_names[nt->kind], &first);
	cairn_buf__printf(&b, "},\"startsAt\":\"%s\",\"endsAt\":\"%s\",\"generatorURL\":"
			  "\"http://cairnd/incidents/%lld\"}]", starts, ends, (long long)i->id);
	char url[1024];
	size_t ul = strlen(nf->url);
	snprintf(url, sizeof(url), "%.*s/api/v2/alerts", (int)(ul && nf->url[ul - 1] == '/' ? ul - 1
											 : ul), nf->url);
	int rc = http_post(nf, url, cairn_buf__cstr(&b));
	cairn_buf_free(&b);
	return rc;
}

/* ---- e-mail ---- */

typedef struct upload {
	const char *p;
	size_t left;
} upload;

static size_t read_cb(char *buf, size_t size, size_t n, void *ud)
{
	upload *u = ud;
	size_t len = size * n < u->left ? size * n : u->left;
	memcpy(buf, u->p, len);
	u->p += len;
	u->left -= len;
	return len;
}

/* Copy @p s without CR/LF (no header injection). */
static void header_safe(char *dst, size_t len, const char *s)
{
	size_t k = 0;
	for (; *s && k + 1 < len; s++)
		dst[k++] = (*s == '\r' || *s == '\n') ? ' ' : *s;
	dst[k] = 0;
}

/* An RFC 5322 message with CRLF line ends. */
static char *mail_message(const cairn_cfg_notifier *nf, const cairn_notice *nt, int64_t now)
{
	const cairn_incident *i = &nt->incident;
	char date[64], subj[600], t[32];
	time_t tt = (time_t)now;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	header_safe(subj, sizeof(subj), nt->alert.summary);
	cairn_buf b = CAIRN_BUF_INIT;
	cairn_buf__printf(&b, "Date: %s\r\nFrom: cairnd <%s>\r\nTo: ", date, nf->from);
	for (size_t k = 0; k < nf->nto; k++)
		cairn_buf__printf(&b, "%s<%s>", k ? ", " : "", nf->to[k]);
	cairn_buf__printf(&b, "\r\nSubject: [cairn P%d] %s: %s\r\nMessage-ID: <cairn-%lld-%s-%lld@"
			  "cairnd>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8"
			  "\r\nContent-Transfer-Encoding: 8bit\r\nAuto-Submitted: auto-generated\r\n"
			  "\r\n", i->priority, event_names[nt->kind], subj, (long long)i->id,
			  event_names[nt->kind], (long long)now);
	cairn_rfc3339(i->opened, t, sizeof(t));
	cairn_buf__printf(&b, "Incident %lld (%s), priority P%d, state %s, opened %s.\r\n\r\n%s\r\n"
			  "\r\nkey: %s\r\nclient: %s\r\njob: %s\r\ntarget: %s\r\nsite: %s\r\n"
			  "escalation level: %d\r\n", (long long)i->id, event_names[nt->kind],
			  i->priority, cairn_incident_state_name(i->state), t, subj, i->key,
			  nt->alert.client, nt->alert.job, nt->alert.target, nt->alert.site,
			  i->escalation);
	char *s = cairn_xstrdup(cairn_buf__cstr(&b));
	cairn_buf_free(&b);
	return s;
}

static int send_email(const cairn_cfg_notifier *nf, const cairn_notice *nt, int64_t now)
{
	pthread_once(&curl_once, curl_init);
	char *msg = mail_message(nf, nt, now);
	upload u = {msg, strlen(msg)};
	CURL *h = curl_easy_init();
	struct curl_slist *rcpt = NULL;
	char from[300], pass[512];
	int rc = 0;
	if (!h) {
		free(msg);
		return cairn_error_set(-ENOMEM, "notifier %s: curl init failed", nf->name);
	}
	for (size_t k = 0; k < nf->nto; k++) {
		char r[300];
		snprintf(r, sizeof(r), "<%s>", nf->to[k]);
		rcpt = curl_slist_append(rcpt, r);
	}
	snprintf(from, sizeof(from), "<%s>", nf->from);
	curl_easy_setopt(h, CURLOPT_URL, nf->url);
	curl_easy_setopt(h, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
	curl_easy_setopt(h, CURLOPT_READDATA, &u);
	curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)nf->timeout_s);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)nf->timeout_s);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	if (nf->username) {
		curl_easy_setopt(h, CURLOPT_USERNAME, nf->username);
		if (nf->password_file && (rc = read_secret(nf->password_file, pass, sizeof(pass))) < 0)
			goto done;
		if (nf->password_file)
			curl_easy_setopt(h, CURLOPT_PASSWORD, pass);
		curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
	}
	CURLcode cc = curl_easy_perform(h);
	if (cc != CURLE_OK)
		rc = cairn_error_set(cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EIO,
				     "notifier %s: %s: %s", nf->name, nf->url, curl_easy_strerror(cc));
done:
	curl_slist_free_all(rcpt);
	curl_easy_cleanup(h);
	free(msg);
	return rc;
}

/* ---- external command ---- */

static int send_command(const cairn_cfg_notifier *nf, const cairn_notice *nt, int64_t now)
{
	char *json = cairn_notice_json(nt, now);
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0) {
		free(json);
		return cairn_error_set(-errno, "notifier %s: pipe: %s", nf->name, strerror(errno));
	}
	char env[7][700];
	snprintf(env[0], sizeof(env[0]), "CAIRN_EVENT=%s", event_names[nt->kind]);
	snprintf(env[1], sizeof(env[1]), "CAIRN_INCIDENT=%lld", (long long)nt->incident.id);
	snprintf(env[2], sizeof(env[2]), "CAIRN_PRIORITY=P%d", nt->incident.priority);
	snprintf(env[3], sizeof(env[3]), "CAIRN_KEY=%s", nt->incident.key);
	snprintf(env[4], sizeof(env[4]), "CAIRN_CLIENT=%s", nt->alert.client);
	snprintf(env[5], sizeof(env[5]), "CAIRN_JOB=%s", nt->alert.job);
	snprintf(env[6], sizeof(env[6]), "CAIRN_SUMMARY=%.600s", nt->alert.summary);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fds[0], 0);
		for (int k = 0; k < 7; k++)
			putenv(env[k]);
		execvp(nf->command[0], nf->command);
		_exit(127);
	}
	close(fds[0]);
	if (pid < 0) {
		close(fds[1]);
		free(json);
		return cairn_error_set(-errno, "notifier %s: fork: %s", nf->name, strerror(errno));
	}
	/* write the JSON with SIGPIPE blocked (the command may not read it) */
	sigset_t pipe_set, old;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	fcntl(fds[1], F_SETFL, O_NONBLOCK);
	size_t len = strlen(json), off = 0;
	uint64_t deadline = cairn_now_ns() + (uint64_t)nf->timeout_s * 1000000000ull;
	int status = 0, done = 0;
	while (!done) {
		if (off < len && fds[1] >= 0) {
			ssize_t w = write(fds[1], json + off, len - off);
			if (w > 0)
				off += (size_t)w;
			else if (w < 0 && errno != EAGAIN && errno != EINTR)
				off = len;
			if (off == len) {
				close(fds[1]);
				fds[1] = -1;
			}
		}
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			done = 1;
		else if (cairn_now_ns() > deadline)
			break;
		else
			nanosleep(&(struct timespec){0, 5000000}, NULL);
	}
	if (fds[1] >= 0)
		close(fds[1]);
	struct timespec zero = {0, 0};
	while (sigtimedwait(&pipe_set, NULL, &zero) > 0)
		;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	free(json);
	if (!done) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		return cairn_error_set(-ETIMEDOUT, "notifier %s: %s killed after %us", nf->name,
				       nf->command[0], nf->timeout_s);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return cairn_error_set(-EIO, "notifier %s: %s exited with %d", nf->name,
				       nf->command[0], WIFEXITED(status) ? WEXITSTATUS(status)
									 : 128 + WTERMSIG(status));
	return 0;
}

/* ---- dispatch ---- */

int cairn_notify_send(const cairn_cfg_notifier *nf, const cairn_notice *nt, int64_t now)
{
	switch (nf->kind) {
	case CAIRN_NOTIFIER_WEBHOOK: {
		char *body = cairn_notice_json(nt, now);
		int rc = http_post(nf, nf->url, body);
		free(body);
		return rc;
	}
	case CAIRN_NOTIFIER_ALERTMANAGER:
		return send_alertmanager(nf, nt, now);
	case CAIRN_NOTIFIER_EMAIL:
		return send_email(nf, nt, now);
	case CAIRN_NOTIFIER_COMMAND:
		return send_command(nf, nt, now);
	}
	return cairn_error_set(-EINVAL, "notifier %s: unknown kind", nf->name);
}

static int deliver_one(cairn_store *s, const cairn_config *cfg, const cairn_notice *nt,
		       int64_t now, const char *name, const char **sent, size_t *nsent)
{
	for (size_t k = 0; k < *nsent; k++)
		if (!strcmp(sent[k], name))
			return 0;
	if (*nsent < 64)
		sent[(*nsent)++] = name;
	const cairn_cfg_notifier *nf = cairn_config_notifier(cfg, name);
	if (!nf)
		return 1;
	int rc = cairn_notify_send(nf, nt, now);
	if (rc < 0) {
		cairn_store_timeline_add(s, nt->incident.id, now, "%s notice via %s failed: %s",
					 event_names[nt->kind], name, cairn_error_last());
		return 1;
	}
	cairn_store_timeline_add(s, nt->incident.id, now, "%s notice sent via %s",
				 event_names[nt->kind], name);
	return 0;
}

/* See sched.h. Failures are counted and recorded, never fatal. */
int cairn_notify_deliver(cairn_store *s, const cairn_config *cfg, const cairn_notice *nt,
			 int64_t now)
{
	const char *sent[64];
	size_t nsent = 0, pos = 0;
	int failed = 0, matched = 0;
	const cairn_cfg_route *r;
	cairn_alert a = nt->alert;
	a.priority = nt->incident.priority;
	while ((r = cairn_route__next(cfg, &a, &pos))) {
		matched = 1;
		for (size_t k = 0; k < r->nnotifiers; k++)
			failed += deliver_one(s, cfg, nt, now, r->notifiers[k], sent, &nsent);
		if (nt->kind == CAIRN_NOTICE_ESCALATED)
			for (size_t k = 0; k < r->nescalate_to; k++)
				failed += deliver_one(s, cfg, nt, now, r->escalate_to[k], sent,
						      &nsent);
		if (!r->cont)
			break;
	}
	if (!matched)
		cairn_store_timeline_add(s, nt->incident.id, now, "%s notice: no route matches",
					 event_names[nt->kind]);
	return failed;
}
