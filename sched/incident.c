/*
 * incident.c - alerts grouped into incidents: open -> acknowledged ->
 * resolved, with a timeline, escalation, repeats, silences, routes, and a
 * post-incident review (see sched.h and docs/SCHEDULER.md).
 *
 * DESIGN: cairn_incident_process is a pure state machine over the store
 * and `now`, one transaction per call, so an incident and its timeline
 * survive kill -9 together. It produces notices; delivering them is
 * notify.c's job (which records each delivery in the timeline). Rules:
 *   - firing alert, no unresolved incident of its key: open one (notice
 *     OPENED unless silenced);
 *   - firing, open (unacknowledged) incident: after escalate_after *
 *     (level + 1) since it opened, the escalation level rises (notice
 *     ESCALATED, up to level 3); else every repeat_interval since the last
 *     notice, a REPEAT; acknowledged incidents neither escalate nor repeat;
 *   - a silenced incident whose silence ended while it still fires gets
 *     its OPENED notice then;
 *   - clear alert, unresolved incident: resolved (auto-resolve). A RESOLVED
 *     notice goes out if an earlier notice did, even under a silence, so a
 *     receiver never keeps a stale firing alert.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sched/sched_int.h"

#define MAX_ESCALATION 3

/* ---- small shared helpers ---- */

void cairn_buf__printf(cairn_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (len <= 0)
		return;
	cairn_buf_reserve(b, (size_t)len + 1);
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)len + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)len;
}

char *cairn_buf__cstr(cairn_buf *b)
{
	cairn_buf_reserve(b, 1);
	b->data[b->len] = 0;
	return (char *)b->data;
}

void cairn_json__str(cairn_buf *b, const char *s)
{
	cairn_buf_put_u8(b, '"');
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		if (*p == '"' || *p == '\\') {
			cairn_buf_put_u8(b, '\\');
			cairn_buf_put_u8(b, *p);
		} else if (*p == '\n') {
			cairn_buf_append(b, "\\n", 2);
		} else if (*p < 0x20) {
			cairn_buf__printf(b, "\\u%04x", *p);
		} else {
			cairn_buf_put_u8(b, *p);
		}
	}
	cairn_buf_put_u8(b, '"');
}

void cairn_rfc3339(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "1970-01-01T00:00:00Z");
}

void cairn_alert_labels_json(const cairn_alert *a, char *buf, size_t len)
{
	cairn_buf b = CAIRN_BUF_INIT;
	const char *names[] = {"alertname", "client", "job", "target", "site"};
	const char *vals[] = {a->alertname, a->client, a->job, a->target, a->site};
	cairn_buf_put_u8(&b, '{');
	for (size_t i = 0; i < 5; i++) {
		if (!vals[i][0])
			continue;
		cairn_json__str(&b, names[i]);
		cairn_buf_put_u8(&b, ':');
		cairn_json__str(&b, vals[i]);
		cairn_buf_put_u8(&b, ',');
	}
	cairn_buf__printf(&b, "\"priority\":\"P%d\"}", a->priority);
	snprintf(buf, len, "%s", cairn_buf__cstr(&b));
	cairn_buf_free(&b);
}

/* ---- routes ---- */

const cairn_cfg_route *cairn_route__next(const cairn_config *cfg, const cairn_alert *a,
					 size_t *pos)
{
	for (; cfg && *pos < cfg->nroutes; (*pos)++) {
		const cairn_cfg_route *r = &cfg->routes[*pos];
		if (r->client && fnmatch(r->client, a->client, 0) != 0)
			continue;
		if (r->max_priority && a->priority > r->max_priority)
			continue;
		(*pos)++;
		return r;
	}
	return NULL;
}

void cairn_route_policy(const cairn_config *cfg, const cairn_alert *a, int64_t *escalate_after_s,
			int64_t *repeat_interval_s)
{
	/* cairn_config_load fills the defaults; 0 there means "off" */
	*escalate_after_s = cfg ? cfg->defaults.escalate_after_s : 3600;
	*repeat_interval_s = cfg ? cfg->defaults.repeat_interval_s : 4 * 3600;
	size_t pos = 0;
	const cairn_cfg_route *r = cairn_route__next(cfg, a, &pos);
	if (r && r->escalate_after_s)
		*escalate_after_s = r->escalate_after_s;
	if (r && r->repeat_interval_s)
		*repeat_interval_s = r->repeat_interval_s;
}

/* ---- silences ---- */

static const char *label_of(const cairn_alert *a, const char *name, size_t nl, char *tmp)
{
	if (nl == 6 && !strncmp(name, "client", 6))
		return a->client;
	if (nl == 3 && !strncmp(name, "job", 3))
		return a->job;
	if (nl == 6 && !strncmp(name, "target", 6))
		return a->target;
	if (nl == 4 && !strncmp(name, "site", 4))
		return a->site;
	if (nl == 9 && !strncmp(name, "alertname", 9))
		return a->alertname;
	if (nl == 8 && !strncmp(name, "priority", 8)) {
		snprintf(tmp, 8, "P%d", a->priority);
		return tmp;
	}
	return NULL;
}

int cairn_silence_matches(const cairn_silence *sil, const cairn_alert *a)
{
	const char *p = sil->matchers;
	char tmp[8];
	if (!*p)
		return 0;
	while (*p) {
		const char *eq = strchr(p, '=');
		if (!eq)
			return 0;
		const char *end = strchr(eq, ',');
		size_t vl = end ? (size_t)(end - eq - 1) : strlen(eq + 1);
		const char *v = label_of(a, p, (size_t)(eq - p), tmp);
		if (!v || strlen(v) != vl || strncmp(v, eq + 1, vl))
			return 0;
		p = end ? end + 1 : eq + 1 + vl;
	}
	return 1;
}

static const cairn_silence *silenced(const cairn_silence *sv, size_t ns, const cairn_alert *a)
{
	for (size_t i = 0; i < ns; i++)
		if (cairn_silence_matches(&sv[i], a))
			return &sv[i];
	return NULL;
}

/* ---- the state machine ---- */

typedef struct notices {
	cairn_notice *v;
	size_t n, cap;
} notices;

static void notice(notices *nl, cairn_notice_kind k, const cairn_incident *i, const cairn_alert *a)
{
	if (nl->n == nl->cap) {
		nl->cap = nl->cap ? nl->cap * 2 : 8;
		nl->v = cairn_xrealloc(nl->v, nl->cap * sizeof(*nl->v));
	}
	cairn_notice *x = &nl->v[nl->n++];
	x->kind = k;
	x->incident = *i;
	x->alert = *a;
}

static int suppressed(cairn_store *s, const cairn_incident *i, const cairn_silence *sil,
		      const char *what, int64_t now)
{
	return cairn_store_timeline_add(s, i->id, now, "%s notice suppressed by silence #%lld "
				       "(%s, by %s)", what, (long long)sil->id, sil->comment,
				       sil->created_by);
}

static int on_firing(cairn_store *s, const cairn_config *cfg, const cairn_alert *a,
		     const cairn_silence *sil, int64_t now, notices *nl)
{
	cairn_incident i;
	int rc = cairn_store_incident_current(s, a->key, &i);
	if (rc == -ENOENT) {
		memset(&i, 0, sizeof(i));
		snprintf(i.key, sizeof(i.key), "%s", a->key);
		snprintf(i.alertname, sizeof(i.alertname), "%s", a->alertname);
		cairn_alert_labels_json(a, i.labels, sizeof(i.labels));
		snprintf(i.summary, sizeof(i.summary), "%s", a->summary);
		i.priority = a->priority;
		i.state = CAIRN_INC_OPEN;
		i.opened = i.last_seen = now;
		if (!sil)
			i.last_notified = now, i.notified = 1;
		if ((rc = cairn_store_incident_insert(s, &i)) < 0 ||
		    (rc = cairn_store_timeline_add(s, i.id, now, "opened (P%d): %s", i.priority,
						   a->summary)) < 0)
			return rc;
		if (sil)
			return suppressed(s, &i, sil, "opened", now);
		notice(nl, CAIRN_NOTICE_OPENED, &i, a);
		return 0;
	}
	if (rc < 0)
		return rc;
	i.last_seen = now;
	if (a->priority != i.priority) {
		if ((rc = cairn_store_timeline_add(s, i.id, now, "priority P%d -> P%d: %s",
						   i.priority, a->priority, a->summary)) < 0)
			return rc;
		i.priority = a->priority;
		cairn_alert_labels_json(a, i.labels, sizeof(i.labels));
	}
	snprintf(i.summary, sizeof(i.summary), "%s", a->summary);
	int64_t esc, rep;
	cairn_route_policy(cfg, a, &esc, &rep);
	if (i.state == CAIRN_INC_OPEN && !i.notified && !sil) {
		/* silenced when it opened; the silence is over */
		i.notified = 1;
		i.last_notified = now;
		if ((rc = cairn_store_timeline_add(s, i.id, now, "silence over, notifying")) < 0)
			return rc;
		notice(nl, CAIRN_NOTICE_OPENED, &i, a);
	} else if (i.state == CAIRN_INC_OPEN && esc > 0 && i.escalation < MAX_ESCALATION &&
		   now - i.opened >= esc * (i.escalation + 1)) {
		i.escalation++;
		if ((rc = cairn_store_timeline_add(s, i.id, now, "escalated to level %d "
						   "(unacknowledged for %llds)", i.escalation,
						   (long long)(now - i.opened))) < 0)
			return rc;
		if (sil) {
			if ((rc = suppressed(s, &i, sil, "escalation", now)) < 0)
				return rc;
		} else {
			i.last_notified = now;
			i.notified = 1;
			notice(nl, CAIRN_NOTICE_ESCALATED, &i, a);
		}
	} else if (i.state == CAIRN_INC_OPEN && rep > 0 && i.notified && !sil &&
		   now - i.last_notified >= rep) {
		i.last_notified = now;
		notice(nl, CAIRN_NOTICE_REPEAT, &i, a);
	}
	return cairn_store_incident_update(s, &i);
}

static int on_clear(cairn_store *s, const cairn_alert *a, int64_t now, notices *nl)
{
	cairn_incident i;
	int rc = cairn_store_incident_current(s, a->key, &i);
	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	i.state = CAIRN_INC_RESOLVED;
	i.resolved = now;
	if ((rc = cairn_store_incident_update(s, &i)) < 0 ||
	    (rc = cairn_store_timeline_add(s, i.id, now, "resolved: the condition cleared")) < 0)
		return rc;
	if (i.notified) {
		cairn_alert c = *a;
		snprintf(c.summary, sizeof(c.summary), "resolved: %.480s", i.summary);
		c.priority = i.priority;
		notice(nl, CAIRN_NOTICE_RESOLVED, &i, &c);
	}
	return 0;
}

/* See sched.h. One transaction: all or nothing. */
int cairn_incident_process(cairn_store *s, const cairn_config *cfg, const cairn_alert *alerts,
			   size_t n, int64_t now, cairn_notice **out, size_t *nout)
{
	notices nl = {NULL, 0, 0};
	cairn_silence *sv = NULL;
	size_t ns = 0;
	*out = NULL;
	*nout = 0;
	int rc = cairn_store_silences(s, now, &sv, &ns);
	if (rc < 0)
		return rc;
	if ((rc = cairn_store_begin(s)) < 0)
		goto done;
	for (size_t k = 0; k < n && rc == 0; k++) {
		if (alerts[k].firing)
			rc = on_firing(s, cfg, &alerts[k], silenced(sv, ns, &alerts[k]), now, &nl);
		else
			rc = on_clear(s, &alerts[k], now, &nl);
	}
	if (rc < 0) {
		cairn_store_rollback(s);
		goto done;
	}
	rc = cairn_store_commit(s);
done:
	free(sv);
	if (rc < 0) {
		free(nl.v);
		return rc;
	}
	*out = nl.v;
	*nout = nl.n;
	return 0;
}

static int set_state(cairn_store *s, int64_t id, const char *who, int64_t now,
		     cairn_incident_state to)
{
	cairn_incident i;
	int rc = cairn_store_incident_get(s, id, &i);
	if (rc < 0)
		return rc;
	if (i.state == to || i.state == CAIRN_INC_RESOLVED)
		return cairn_error_set(-EALREADY, "incident %lld is already %s", (long long)id,
				       cairn_incident_state_name(i.state));
	i.state = to;
	if (to == CAIRN_INC_ACKED) {
		i.acked = now;
		snprintf(i.acked_by, sizeof(i.acked_by), "%s", who ? who : "");
	} else {
		i.resolved = now;
	}
	if ((rc = cairn_store_begin(s)) < 0)
		return rc;
	if ((rc = cairn_store_incident_update(s, &i)) < 0 ||
	    (rc = cairn_store_timeline_add(s, id, now, "%s by %s",
					   to == CAIRN_INC_ACKED ? "acknowledged" : "resolved",
					   who && *who ? who : "(unknown)")) < 0) {
		cairn_store_rollback(s);
		return rc;
	}
	return cairn_store_commit(s);
}

int cairn_incident_ack(cairn_store *s, int64_t id, const char *who, int64_t now)
{
	return set_state(s, id, who, now, CAIRN_INC_ACKED);
}

int cairn_incident_resolve(cairn_store *s, int64_t id, const char *who, int64_t now)
{
	return set_state(s, id, who, now, CAIRN_INC_RESOLVED);
}

/* A Markdown review: summary table, then the timeline. */
int cairn_incident_review(cairn_store *s, int64_t id, char **out)
{
	cairn_incident i;
	cairn_timeline_entry *tl;
	size_t n;
	int rc;
	*out = NULL;
	if ((rc = cairn_store_incident_get(s, id, &i)) < 0 ||
	    (rc = cairn_store_timeline(s, id, &tl, &n)) < 0)
		return rc;
	char t1[32], t2[32], t3[32];
	cairn_rfc3339(i.opened, t1, sizeof(t1));
	cairn_rfc3339(i.acked, t2, sizeof(t2));
	cairn_rfc3339(i.resolved, t3, sizeof(t3));
	cairn_buf b = CAIRN_BUF_INIT;
	cairn_buf__printf(&b, "# Incident %lld: %s\n\n| | |\n|---|---|\n| key | `%s` |\n"
			  "| priority | P%d |\n| state | %s |\n| labels | `%s` |\n| opened | %s |\n"
			  "| acknowledged | %s%s%s |\n| resolved | %s |\n| escalation level | %d |\n",
			  (long long)i.id, i.summary, i.key, i.priority,
			  cairn_incident_state_name(i.state), i.labels, t1, i.acked ? t2 : "-",
			  i.acked_by[0] ? " by " : "", i.acked_by, i.resolved ? t3 : "-",
			  i.escalation);
	if (i.resolved)
		cairn_buf__printf(&b, "| duration | %llds |\n", (long long)(i.resolved - i.opened));
	cairn_buf__printf(&b, "\n## Timeline\n\n");
	for (size_t k = 0; k < n; k++) {
		cairn_rfc3339(tl[k].t, t1, sizeof(t1));
		cairn_buf__printf(&b, "- %s %s\n", t1, tl[k].text);
	}
	cairn_buf__printf(&b, "\n## Follow-up\n\n- Cause:\n- What helped:\n- Actions:\n");
	free(tl);
	*out = cairn_xstrdup(cairn_buf__cstr(&b));
	cairn_buf_free(&b);
	return 0;
}
