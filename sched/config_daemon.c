/*
 * config_daemon.c - cairnd's sections of the configuration file: clients,
 * daemon, notifiers, routes, defaults (reference: docs/SCHEDULER.md), and
 * their expansion into schedulable jobs.
 *
 * Same strictness as config.c: unknown keys, wrong types, bad cron
 * expressions or zones, unknown repositories or notifiers are errors
 * naming the field ("clients.host01.schedule: cron '0 25 * * *': bad hour
 * field '25'"). Durations are written 90s, 30m, 12h, 7d (stored in
 * seconds); "0" or "off" disables where the key allows it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched/config_int.h"

/* Field paths in messages may be cut short; that is harmless. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#define FOR_PAIRS(n, p, it) for (void *it = NULL; ((p) = fy_node_mapping_iterate((n), &it));)

static int bad(cairn_cfg_ctx *c, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int bad(cairn_cfg_ctx *c, const char *path, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!c->rc)
		c->rc = cairn_error_set(-EINVAL, "%s: %s: %s", c->file, path, msg);
	return c->rc;
}

static int is_map(cairn_cfg_ctx *c, struct fy_node *n, const char *path, const char *what)
{
	if (n && fy_node_get_type(n) == FYNT_MAPPING)
		return 1;
	bad(c, path, "expected a mapping (%s)", what);
	return 0;
}

static char *sdup(cairn_cfg_ctx *c, struct fy_node *n, const char *path)
{
	const char *s = cairn_cfg__scalar(c, n, path);
	return s ? cairn_xstrdup(s) : NULL;
}

/* A duration in seconds; "0"/"off" allowed when @p zero_ok. */
static int64_t dur(cairn_cfg_ctx *c, struct fy_node *n, const char *path, int zero_ok)
{
	const char *s = cairn_cfg__scalar(c, n, path);
	int64_t ns;
	if (!s)
		return 0;
	if (zero_ok && (!strcmp(s, "0") || !strcmp(s, "off")))
		return 0;
	if (cairn_parse_duration(s, &ns) < 0 || ns < 1000000000) {
		bad(c, path, "'%s' is not a duration like 90s, 30m, 12h or 7d%s", s,
		    zero_ok ? " (or off)" : "");
		return 0;
	}
	return ns / 1000000000;
}

static double num(cairn_cfg_ctx *c, struct fy_node *n, const char *path, double lo, double hi)
{
	const char *s = cairn_cfg__scalar(c, n, path);
	char *end;
	if (!s)
		return 0;
	double v = strtod(s, &end);
	if (!*s || *end || v != v || v < lo || v > hi) {
		bad(c, path, "'%s' is not a number from %g to %g", s, lo, hi);
		return 0;
	}
	return v;
}

/* A list of strings (a single scalar counts as a one-element list). */
static char **strlist(cairn_cfg_ctx *c, struct fy_node *n, const char *path, size_t *count)
{
	*count = 0;
	if (n && fy_node_get_type(n) == FYNT_SCALAR) {
		char **v = cairn_xcalloc(2, sizeof(char *));
		v[0] = sdup(c, n, path);
		*count = v[0] ? 1 : 0;
		return v;
	}
	if (!n || fy_node_get_type(n) != FYNT_SEQUENCE) {
		bad(c, path, "expected a list");
		return NULL;
	}
	size_t cnt = (size_t)fy_node_sequence_item_count(n);
	char **v = cairn_xcalloc(cnt + 1, sizeof(char *));
	void *it = NULL;
	struct fy_node *e;
	char sub[600];
	while ((e = fy_node_sequence_iterate(n, &it)) && !c->rc) {
		snprintf(sub, sizeof(sub), "%s[%zu]", path, *count);
		if ((v[*count] = sdup(c, e, sub)))
			(*count)++;
	}
	return v;
}

static void freelist(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static void check_cron(cairn_cfg_ctx *c, const char *path, const char *expr, const char *tz)
{
	cairn_cron *cr;
	if (!c->rc && expr && cairn_cron_parse(&cr, expr, tz) < 0)
		bad(c, path, "%s", cairn_error_last());
	else if (!c->rc && expr)
		cairn_cron_free(cr);
}

/* ---- clients ---- */

static void parse_job(cairn_cfg_ctx *c, struct fy_node *n, const char *path, cairn_cfg_job *j)
{
	struct fy_node_pair *p;
	char sub[600];
	if (!is_map(c, n, path, "name, kind, schedule, command, timezone, grace, max_runtime"))
		return;
	FOR_PAIRS(n, p, it) {
		const char *k = cairn_cfg__scalar(c, fy_node_pair_key(p), path);
		struct fy_node *v = fy_node_pair_value(p);
		if (!k || c->rc)
			return;
		snprintf(sub, sizeof(sub), "%s.%s", path, k);
		if (!strcmp(k, "name")) {
			j->name = sdup(c, v, sub);
		} else if (!strcmp(k, "kind")) {
			const char *s = cairn_cfg__scalar(c, v, sub);
			if (s && (cairn_job_kind_parse(s, &j->kind) < 0 ||
				  j->kind == CAIRN_JOB_BACKUP || j->kind == CAIRN_JOB_DRILL))
				bad(c, sub, "'%s': expected scrub, repair, prune, health, check or "
					    "command", s);
		} else if (!strcmp(k, "schedule")) {
			j->schedule = sdup(c, v, sub);
		} else if (!strcmp(k, "timezone")) {
			j->timezone = sdup(c, v, sub);
		} else if (!strcmp(k, "command")) {
			size_t cnt;
			j->command = strlist(c, v, sub, &cnt);
		} else if (!strcmp(k, "grace")) {
			j->grace_s = dur(c, v, sub, 0);
		} else if (!strcmp(k, "max_runtime")) {
			j->max_runtime_s = dur(c, v, sub, 0);
		} else {
			bad(c, sub, "unknown key (expected name, kind, schedule, command, timezone, "
				    "grace, max_runtime)");
		}
	}
	if (c->rc)
		return;
	if (!j->name || !j->schedule || (!j->kind && !j->command))
		bad(c, path, "name, kind and schedule are required");
	else if (!strcmp(j->name, "backup") || !strcmp(j->name, "drill") || strchr(j->name, '/') ||
		 strchr(j->name, ':'))
		bad(c, path, "name '%s' is reserved or contains / or :", j->name);
	else if ((j->kind == CAIRN_JOB_COMMAND) != (j->command != NULL))
		bad(c, path, "command is required for, and only for, kind command");
}

static void parse_retention(cairn_cfg_ctx *c, struct fy_node *n, const char *path,
			    cairn_cfg_client *cl)
{
	struct fy_node_pair *p;
	char sub[600];
	if (!is_map(c, n, path, "keep_last, keep_hourly, keep_daily, ..."))
		return;
	FOR_PAIRS(n, p, it) {
		const char *k = cairn_cfg__scalar(c, fy_node_pair_key(p), path);
		struct fy_node *v = fy_node_pair_value(p);
		if (!k || c->rc)
			return;
		snprintf(sub, sizeof(sub), "%s.%s", path, k);
		unsigned *dst = !strcmp(k, "keep_last")      ? &cl->keep_last
				: !strcmp(k, "keep_hourly")  ? &cl->keep_hourly
				: !strcmp(k, "keep_daily")   ? &cl->keep_daily
				: !strcmp(k, "keep_weekly")  ? &cl->keep_weekly
				: !strcmp(k, "keep_monthly") ? &cl->keep_monthly
				: !strcmp(k, "keep_yearly")  ? &cl->keep_yearly
							     : NULL;
		if (!dst)
			bad(c, sub, "unknown key (expected keep_last, keep_hourly, keep_daily, "
				    "keep_weekly, keep_monthly, keep_yearly)");
		else
			*dst = cairn_cfg__uint(c, v, sub, 100000);
	}
}

static void parse_client(cairn_cfg_ctx *c, struct fy_node *n, const char *path,
			 cairn_cfg_client *cl)
{
	struct fy_node_pair *p;
	char sub[600];
	size_t nextra = 0;
	cairn_cfg_job *extra = NULL;
	if (!is_map(c, n, path, "repository, sources, schedule, ..."))
		return;
	FOR_PAIRS(n, p, it) {
		const char *k = cairn_cfg__scalar(c, fy_node_pair_key(p), path);
		struct fy_node *v = fy_node_pair_value(p);
		if (!k || c->rc)
			break;
		snprintf(sub, sizeof(sub), "%s.%s", path, k);
		if (!strcmp(k, "repository")) {
			cl->repository = sdup(c, v, sub);
		} else if (!strcmp(k, "sources")) {
			cl->sources = strlist(c, v, sub, &cl->nsources);
			for (size_t i = 0; i < cl->nsources && !c->rc; i++)
				if (cl->sources[i][0] != '/')
					bad(c, sub, "'%s' is not an absolute path", cl->sources[i]);
		} else if (!strcmp(k, "excludes")) {
			cl->excludes = strlist(c, v, sub, &cl->nexcludes);
		} else if (!strcmp(k, "schedule")) {
			cl->schedule = sdup(c, v, sub);
		} else if (!strcmp(k, "timezone")) {
			cl->timezone = sdup(c, v, sub);
		} else if (!strcmp(k, "site")) {
			cl->site = sdup(c, v, sub);
		} else if (!strcmp(k, "grace")) {
			cl->jobs = cl->jobs ? cl->jobs : cairn_xcalloc(2, sizeof(cairn_cfg_job));
			cl->jobs[0].grace_s = cl->jobs[1].grace_s = dur(c, v, sub, 0);
		} else if (!strcmp(k, "max_runtime")) {
			cl->jobs = cl->jobs ? cl->jobs : cairn_xcalloc(2, sizeof(cairn_cfg_job));
			cl->jobs[0].max_runtime_s = dur(c, v, sub, 0);
		} else if (!strcmp(k, "retention")) {
			parse_retention(c, v, sub, cl);
		} else if (!strcmp(k, "drill")) {
			struct fy_node_pair *q;
			if (!is_map(c, v, sub, "schedule, overdue"))
				break;
			FOR_PAIRS(v, q, it2) {
				const char *dk = cairn_cfg__scalar(c, fy_node_pair_key(q), sub);
				char dsub[700];
				if (!dk || c->rc)
					break;
				snprintf(dsub, sizeof(dsub), "%s.%s", sub, dk);
				if (!strcmp(dk, "schedule"))
					cl->drill_schedule = sdup(c, fy_node_pair_value(q), dsub);
				else if (!strcmp(dk, "overdue"))
					cl->drill_overdue_s = dur(c, fy_node_pair_value(q), dsub, 0);
				else
					bad(c, dsub, "unknown key (expected schedule, overdue)");
			}
		} else if (!strcmp(k, "jobs")) {
			if (fy_node_get_type(v) != FYNT_SEQUENCE) {
				bad(c, sub, "expected a list of jobs");
				break;
			}
			size_t cnt = (size_t)fy_node_sequence_item_count(v);
			free(extra);
			extra = cairn_xcalloc(cnt + 1, sizeof(*extra));
			void *si = NULL;
			struct fy_node *e;
			while ((e = fy_node_sequence_iterate(v, &si)) && !c->rc) {
				char jp[700];
				snprintf(jp, sizeof(jp), "%s[%zu]", sub, nextra);
				parse_job(c, e, jp, &extra[nextra++]);
			}
		} else {
			bad(c, sub, "unknown key (expected repository, sources, excludes, schedule, "
				    "timezone, site, grace, max_runtime, retention, drill, jobs)");
		}
	}
	/* jobs[0] = backup, jobs[1] = drill, then the extra jobs */
	cairn_cfg_job *all = cairn_xcalloc(2 + nextra, sizeof(*all));
	if (cl->jobs)
		memcpy(all, cl->jobs, 2 * sizeof(*all));
	if (nextra)
		memcpy(all + 2, extra, nextra * sizeof(*all));
	free(cl->jobs);
	free(extra);
	cl->jobs = all;
	cl->njobs = 2 + nextra;
	all[0].name = cairn_xstrdup("backup");
	all[0].kind = CAIRN_JOB_BACKUP;
	all[1].name = cairn_xstrdup("drill");
	all[1].kind = CAIRN_JOB_DRILL;
	if (c->rc)
		return;
	if (!cl->repository || !cl->schedule || !cl->nsources)
		bad(c, path, "repository, sources and schedule are required");
	for (size_t i = 2; i < cl->njobs && !c->rc; i++)
		for (size_t k = 2; k < i; k++)
			if (!strcmp(cl->jobs[i].name, cl->jobs[k].name))
				bad(c, path, "two jobs are named '%s'", cl->jobs[i].name);
}

static void parse_clients(cairn_cfg_ctx *c, cairn_config *cfg, struct fy_node *v)
{
	struct fy_node_pair *p;
	if (!is_map(c, v, "clients", "client names"))
		return;
	size_t cnt = (size_t)fy_node_mapping_item_count(v);
	cfg->clients = cairn_xcalloc(cnt ? cnt : 1, sizeof(cairn_cfg_client));
	FOR_PAIRS(v, p, it) {
		const char *name = cairn_cfg__scalar(c, fy_node_pair_key(p), "clients");
		if (!name || c->rc)
			return;
		char path[300];
		snprintf(path, sizeof(path), "clients.%.200s", name);
		cairn_cfg_client *cl = &cfg->clients[cfg->nclients++];
		cl->name = cairn_xstrdup(name);
		if (!*name || strchr(name, '/') || strchr(name, ':') || strlen(name) > 60)
			bad(c, path, "a client name is 1-60 characters without / or :");
		else
			parse_client(c, fy_node_pair_value(p), path, cl);
	}
}

/* ---- daemon, notifiers, routes, defaults ---- */

static void parse_daemon(cairn_cfg_ctx *c, cairn_config *cfg, struct fy_node *v)
{
	struct fy_node_pair *p;
	char sub[300];
	cairn_cfg_daemon *d = &cfg->daemon;
	if (!is_map(c, v, "daemon", "state_dir, database, listen, ..."))
		return;
	FOR_PAIRS(v, p, it) {
		const char *k = cairn_cfg__scalar(c, fy_node_pair_key(p), "daemon");
		struct fy_node *n = fy_node_pair_value(p);
		if (!k || c->rc)
			return;
		snprintf(sub, sizeof(sub), "daemon.%.100s", k);
		if (!strcmp(k, "state_dir")) {
			d->state_dir = sdup(c, n, sub);
		} else if (!strcmp(k, "database")) {
			d->database = sdup(c, n, sub);
		} else if (!strcmp(k, "listen")) {
			d->listen = sdup(c, n, sub);
			if (d->listen && !strrchr(d->listen, ':'))
				bad(c, sub, "'%s' is not HOST:PORT", d->listen);
		} else if (!strcmp(k, "api_token_file")) {
			d->api_token_file = sdup(c, n, sub);
		} else if (!strcmp(k, "cairn_binary")) {
			d->cairn_binary = sdup(c, n, sub);
		} else if (!strcmp(k, "max_concurrent_jobs")) {
			d->max_concurrent_jobs = cairn_cfg__uint(c, n, sub, 64);
			if (!c->rc && !d->max_concurrent_jobs)
				bad(c, sub, "must be at least 1");
		} else if (!strcmp(k, "catch_up")) {
			const char *s = cairn_cfg__scalar(c, n, sub);
			if (s && !strcmp(s, "none"))
				d->catch_up = CAIRN_CATCHUP_NONE;
			else if (s && !strcmp(s, "once"))
				d->catch_up = CAIRN_CATCHUP_ONCE;
			else if (s && !strcmp(s, "all"))
				d->catch_up = CAIRN_CATCHUP_ALL;
			else if (s)
				bad(c, sub, "'%s': expected none, once or all", s);
		} else {
			bad(c, sub, "unknown key (expected state_dir, database, listen, "
				    "api_token_file, max_concurrent_jobs, catch_up, cairn_binary)");
		}
	}
}

static void parse_notifier(cairn_cfg_ctx *c, struct fy_node *v, const char *path,
			   cairn_cfg_notifier *nf)
{
	struct fy_node_pair *p;
	char sub[400];
	int have_kind = 0;
	if (!is_map(c, v, path, "kind, url, ..."))
		return;
	FOR_PAIRS(v, p, it) {
		const char *k = cairn_cfg__scalar(c, fy_node_pair_key(p), path);
		struct fy_node *n = fy_node_pair_value(p);
		if (!k || c->rc)
			return;
		snprintf(sub, sizeof(sub), "%s.%.100s", path, k);
		if (!strcmp(k, "kind")) {
			const char *s = cairn_cfg__scalar(c, n, sub);
			have_kind = 1;
			if (s && !strcmp(s, "webhook"))
				nf->kind = CAIRN_NOTIFIER_WEBHOOK;
			else if (s && !strcmp(s, "alertmanager"))
				nf->kind = CAIRN_NOTIFIER_ALERTMANAGER;
			else if (s && !strcmp(s, "email"))
				nf->kind = CAIRN_NOTIFIER_EMAIL;
			else if (s && !strcmp(s, "command"))
				nf->kind = CAIRN_NOTIFIER_COMMAND;
			else if (s)
				bad(c, sub, "'%s': expected webhook, alertmanager, email or command",
				    s);
		} else if (!strcmp(k, "url")) {
			nf->url = sdup(c, n, sub);
		} else if (!strcmp(k, "timeout")) {
			nf->timeout_s = (unsigned)dur(c, n, sub, 0);
		} else if (!strcmp(k, "from")) {
			nf->from = sdup(c, n, sub);
		} else if (!strcmp(k, "to")) {
			nf->to = strlist(c, n, sub, &nf->nto);
		} else if (!strcmp(k, "username")) {
			nf->username = sdup(c, n, sub);
		} else if (!strcmp(k, "password_file")) {
			nf->password_file = sdup(c, n, sub);
		} else if (!strcmp(k, "token_file")) {
			nf->token_file = sdup(c, n, sub);
		} else if (!strcmp(k, "command")) {
			size_t cnt;
			nf->command = strlist(c, n, sub, &cnt);
		} else if (!strcmp(k, "ttl")) {
			nf->ttl_s = dur(c, n, sub, 0);
		} else {
			bad(c, sub, "unknown key (expected kind, url, timeout, from, to, username, "
				    "password_file, token_file, command, ttl)");
		}
	}
	if (c->rc)
		return;
	if (!have_kind)
		bad(c, path, "kind: missing");
	else if (nf->kind == CAIRN_NOTIFIER_COMMAND ? !nf->command : !nf->url)
		bad(c, path, "%s: missing", nf->kind == CAIRN_NOTIFIER_COMMAND ? "command" : "url");
	else if (nf->kind == CAIRN_NOTIFIER_EMAIL && (!nf->from || !nf->nto))
		bad(c, path, "email needs from and to");
	else if (nf->kind == CAIRN_NOTIFIER_EMAIL && strncmp(nf->url, "smtp://", 7) &&
		 strncmp(nf->url, "smtps://", 8))
		bad(c, path, "email url must be smtp://HOST:PORT or smtps://");
	else if (nf->kind != CAIRN_NOTIFIER_EMAIL && nf->url && strncmp(nf->url, "http://", 7) &&
		 strncmp(nf->url, "https://", 8))
		bad(c, path, "url must be http:// or https://");
	if (!nf->timeout_s)
		nf->timeout_s = 10;
	if (!nf->ttl_s)
		nf->ttl_s = 4 * 3600;
}

static void parse_route(cairn_cfg_ctx *c, struct fy_node *v, const char *path, cairn_cfg_route *r)
{
	struct fy_node_pair *p;
	char sub[400];
	if (!is_map(c, v, path, "client, priority, notifiers, ..."))
		return;
	FOR_PAIRS(v, p, it) {
		const char *k = cairn_cfg__scalar(c, fy_node_pair_key(p), path);
		struct fy_node *n = fy_node_pair_value(p);
		if (!k || c->rc)
			return;
		snprintf(sub, sizeof(sub), "%s.%.100s", path, k);
		if (!strcmp(k, "client")) {
			r->client = sdup(c, n, sub);
		} else if (!strcmp(k, "priority")) {
			const char *s = cairn_cfg__scalar(c, n, sub);
			if (s && (s[0] == 'P' || s[0] == 'p') && s[1] >= '1' && s[1] <= '4' && !s[2])
				r->max_priority = s[1] - '0';
			else if (s)
				bad(c, sub, "'%s': expected P1, P2, P3 or P4 (matches that and more "
					    "urgent)", s);
		} else if (!strcmp(k, "notifiers")) {
			r->notifiers = strlist(c, n, sub, &r->nnotifiers);
		} else if (!strcmp(k, "escalate_to")) {
			r->escalate_to = strlist(c, n, sub, &r->nescalate_to);
		} else if (!strcmp(k, "escalate_after")) {
			r->escalate_after_s = dur(c, n, sub, 0);
		} else if (!strcmp(k, "repeat_interval")) {
			r->repeat_interval_s = dur(c, n, sub, 0);
		} else if (!strcmp(k, "continue")) {
			const char *s = cairn_cfg__scalar(c, n, sub);
			r->cont = s && (!strcmp(s, "true") || !strcmp(s, "yes"));
		} else {
			bad(c, sub, "unknown key (expected client, priority, notifiers, escalate_to, "
				    "escalate_after, repeat_interval, continue)");
		}
	}
	if (!c->rc && !r->nnotifiers)
		bad(c, path, "notifiers: missing");
}

static void parse_defaults(cairn_cfg_ctx *c, cairn_config *cfg, struct fy_node *v)
{
	struct fy_node_pair *p, *q;
	char sub[300], sub2[400];
	cairn_cfg_defaults *d = &cfg->defaults;
	if (!is_map(c, v, "defaults", "timezone, grace, retry, ..."))
		return;
	FOR_PAIRS(v, p, it) {
		const char *k = cairn_cfg__scalar(c, fy_node_pair_key(p), "defaults");
		struct fy_node *n = fy_node_pair_value(p);
		if (!k || c->rc)
			return;
		snprintf(sub, sizeof(sub), "defaults.%.100s", k);
		if (!strcmp(k, "timezone")) {
			free(d->timezone);
			d->timezone = sdup(c, n, sub);
		} else if (!strcmp(k, "drill_schedule")) {
			free(d->drill_schedule);
			d->drill_schedule = sdup(c, n, sub);
		} else if (!strcmp(k, "grace")) {
			d->grace_s = dur(c, n, sub, 0);
		} else if (!strcmp(k, "max_runtime")) {
			d->max_runtime_s = dur(c, n, sub, 0);
		} else if (!strcmp(k, "escalate_after")) {
			d->escalate_after_s = dur(c, n, sub, 1);
		} else if (!strcmp(k, "repeat_interval")) {
			d->repeat_interval_s = dur(c, n, sub, 1);
		} else if (!strcmp(k, "verify")) {
			const char *s = cairn_cfg__scalar(c, n, sub);
			if (s && !strcmp(s, "check"))
				d->verify_kind = CAIRN_JOB_CHECK;
			else if (s && !strcmp(s, "drill"))
				d->verify_kind = CAIRN_JOB_DRILL;
			else if (s)
				bad(c, sub, "'%s': expected check or drill", s);
		} else if (!strcmp(k, "retry") && is_map(c, n, sub, "max_attempts, backoff")) {
			FOR_PAIRS(n, q, it2) {
				const char *rk = cairn_cfg__scalar(c, fy_node_pair_key(q), sub);
				struct fy_node *rv = fy_node_pair_value(q);
				if (!rk || c->rc)
					return;
				snprintf(sub2, sizeof(sub2), "%s.%s", sub, rk);
				if (!strcmp(rk, "max_attempts")) {
					d->retry_max_attempts = cairn_cfg__uint(c, rv, sub2, 20);
					if (!c->rc && !d->retry_max_attempts)
						bad(c, sub2, "must be at least 1 (1 = no retry)");
				} else if (!strcmp(rk, "backoff")) {
					size_t cnt;
					char **l = strlist(c, rv, sub2, &cnt);
					if (!c->rc && (cnt < 1 || cnt > 8))
						bad(c, sub2, "expected 1 to 8 durations");
					d->nretry_backoff = 0;
					for (size_t i = 0; i < cnt && !c->rc; i++) {
						int64_t ns;
						if (cairn_parse_duration(l[i], &ns) < 0 || ns < 1000000000)
							bad(c, sub2, "'%s' is not a duration", l[i]);
						d->retry_backoff_s[d->nretry_backoff++] = ns / 1000000000;
					}
					freelist(l);
				} else {
					bad(c, sub2, "unknown key (expected max_attempts, backoff)");
				}
			}
		} else if (!strcmp(k, "anomaly") && is_map(c, n, sub, "min_history, window, k, floor")) {
			FOR_PAIRS(n, q, it2) {
				const char *ak = cairn_cfg__scalar(c, fy_node_pair_key(q), sub);
				struct fy_node *av = fy_node_pair_value(q);
				if (!ak || c->rc)
					return;
				snprintf(sub2, sizeof(sub2), "%s.%s", sub, ak);
				if (!strcmp(ak, "min_history"))
					d->anomaly_min_history = cairn_cfg__uint(c, av, sub2, 200);
				else if (!strcmp(ak, "window"))
					d->anomaly_window = cairn_cfg__uint(c, av, sub2, 200);
				else if (!strcmp(ak, "k"))
					d->anomaly_k = num(c, av, sub2, 0.5, 100);
				else if (!strcmp(ak, "floor"))
					d->anomaly_floor_ms = dur(c, av, sub2, 1) * 1000;
				else
					bad(c, sub2, "unknown key (expected min_history, window, k, "
						     "floor)");
			}
			if (!c->rc && d->anomaly_min_history < 3)
				bad(c, sub, "min_history must be at least 3");
		} else if (!strcmp(k, "error_rate") &&
			   is_map(c, n, sub, "window, threshold, min_runs")) {
			FOR_PAIRS(n, q, it2) {
				const char *ek = cairn_cfg__scalar(c, fy_node_pair_key(q), sub);
				struct fy_node *ev = fy_node_pair_value(q);
				if (!ek || c->rc)
					return;
				snprintf(sub2, sizeof(sub2), "%s.%s", sub, ek);
				if (!strcmp(ek, "window"))
					d->error_window_s = dur(c, ev, sub2, 0);
				else if (!strcmp(ek, "threshold"))
					d->error_rate = num(c, ev, sub2, 0.01, 1);
				else if (!strcmp(ek, "min_runs"))
					d->error_min_runs = cairn_cfg__uint(c, ev, sub2, 1000);
				else
					bad(c, sub2, "unknown key (expected window, threshold, "
						     "min_runs)");
			}
		} else if (!strcmp(k, "low_space_percent")) {
			d->low_space_percent = num(c, n, sub, 0, 99);
		} else if (!strcmp(k, "lag_grace")) {
			d->lag_grace_s = dur(c, n, sub, 0);
		} else if (!c->rc) {
			bad(c, sub, "unknown key (expected timezone, drill_schedule, grace, "
				    "max_runtime, retry, verify, escalate_after, repeat_interval, "
				    "anomaly, error_rate, low_space_percent, lag_grace)");
		}
	}
}

/* Set the defaults once, before any cairnd section is parsed. */
static void init_defaults(cairn_config *cfg)
{
	cairn_cfg_defaults *d = &cfg->defaults;
	if (d->timezone)
		return;
	d->timezone = cairn_xstrdup("UTC");
	d->drill_schedule = cairn_xstrdup("0 4 1 * *");
	d->grace_s = 3600;
	d->max_runtime_s = 12 * 3600;
	d->retry_max_attempts = 3;
	d->retry_backoff_s[0] = 60;
	d->retry_backoff_s[1] = 300;
	d->retry_backoff_s[2] = 1500;
	d->nretry_backoff = 3;
	d->verify_kind = CAIRN_JOB_CHECK;
	d->escalate_after_s = 3600;
	d->repeat_interval_s = 4 * 3600;
	d->anomaly_min_history = 5;
	d->anomaly_window = 20;
	d->anomaly_k = 5;
	d->anomaly_floor_ms = 60000;
	d->error_window_s = 7 * 86400;
	d->error_rate = 0.5;
	d->error_min_runs = 4;
	d->low_space_percent = 10;
	d->lag_grace_s = 3600;
	cfg->daemon.catch_up = CAIRN_CATCHUP_ONCE;
}

void cairn_cfg__daemon_section(cairn_cfg_ctx *c, cairn_config *cfg, const char *key,
			       struct fy_node *v)
{
	init_defaults(cfg);
	if (!strcmp(key, "clients")) {
		parse_clients(c, cfg, v);
	} else if (!strcmp(key, "daemon")) {
		parse_daemon(c, cfg, v);
	} else if (!strcmp(key, "defaults")) {
		parse_defaults(c, cfg, v);
	} else if (!strcmp(key, "notifiers")) {
		struct fy_node_pair *p;
		if (!is_map(c, v, "notifiers", "notifier names"))
			return;
		size_t cnt = (size_t)fy_node_mapping_item_count(v);
		cfg->notifiers = cairn_xcalloc(cnt ? cnt : 1, sizeof(cairn_cfg_notifier));
		FOR_PAIRS(v, p, it) {
			const char *name = cairn_cfg__scalar(c, fy_node_pair_key(p), "notifiers");
			if (!name || c->rc)
				return;
			char path[300];
			snprintf(path, sizeof(path), "notifiers.%.200s", name);
			cairn_cfg_notifier *nf = &cfg->notifiers[cfg->nnotifiers++];
			nf->name = cairn_xstrdup(name);
			parse_notifier(c, fy_node_pair_value(p), path, nf);
		}
	} else if (!strcmp(key, "routes")) {
		if (fy_node_get_type(v) != FYNT_SEQUENCE) {
			bad(c, "routes", "expected a list of routes");
			return;
		}
		size_t cnt = (size_t)fy_node_sequence_item_count(v);
		cfg->routes = cairn_xcalloc(cnt ? cnt : 1, sizeof(cairn_cfg_route));
		void *it = NULL;
		struct fy_node *e;
		while ((e = fy_node_sequence_iterate(v, &it)) && !c->rc) {
			char path[64];
			snprintf(path, sizeof(path), "routes[%zu]", cfg->nroutes);
			parse_route(c, e, path, &cfg->routes[cfg->nroutes++]);
		}
	}
}

static void check_notifiers(cairn_cfg_ctx *c, const cairn_config *cfg, const char *path,
			    char **names, size_t n)
{
	for (size_t i = 0; i < n && !c->rc; i++)
		if (!cairn_config_notifier(cfg, names[i]))
			bad(c, path, "notifier '%s' is not defined under notifiers", names[i]);
}

void cairn_cfg__daemon_finish(cairn_cfg_ctx *c, cairn_config *cfg)
{
	init_defaults(cfg);
	cairn_cfg_defaults *d = &cfg->defaults;
	char path[400];
	if (!cairn_tz_valid(d->timezone))
		bad(c, "defaults.timezone", "time zone '%s' is unknown", d->timezone);
	check_cron(c, "defaults.drill_schedule", d->drill_schedule, NULL);
	for (size_t i = 0; i < cfg->nclients && !c->rc; i++) {
		cairn_cfg_client *cl = &cfg->clients[i];
		const cairn_cfg_repo *r = cairn_config_repo(cfg, cl->repository);
		snprintf(path, sizeof(path), "clients.%s", cl->name);
		if (!r) {
			bad(c, path, "repository '%s' is not defined under repositories",
			    cl->repository);
			break;
		}
		if (!cl->timezone)
			cl->timezone = cairn_xstrdup(d->timezone);
		if (!cl->drill_schedule)
			cl->drill_schedule = cairn_xstrdup(d->drill_schedule);
		if (!cl->drill_overdue_s)
			cl->drill_overdue_s = r->drill_interval_ns / 1000000000;
		if (!cl->site && r->ntargets && r->targets[0].site)
			cl->site = cairn_xstrdup(r->targets[0].site);
		free(cl->jobs[0].schedule);
		cl->jobs[0].schedule = cairn_xstrdup(cl->schedule);
		free(cl->jobs[1].schedule);
		cl->jobs[1].schedule = cairn_xstrdup(cl->drill_schedule);
		for (size_t k = 0; k < cl->njobs && !c->rc; k++) {
			cairn_cfg_job *j = &cl->jobs[k];
			snprintf(path, sizeof(path), "clients.%s.%s", cl->name,
				 k == 0 ? "schedule" : k == 1 ? "drill.schedule" : j->name);
			if (j->timezone && !cairn_tz_valid(j->timezone))
				bad(c, path, "time zone '%s' is unknown", j->timezone);
			check_cron(c, path, j->schedule, j->timezone ? j->timezone : cl->timezone);
			if (!j->grace_s)
				j->grace_s = d->grace_s;
			if (!j->max_runtime_s)
				j->max_runtime_s = d->max_runtime_s;
		}
	}
	for (size_t i = 0; i < cfg->nroutes && !c->rc; i++) {
		snprintf(path, sizeof(path), "routes[%zu]", i);
		check_notifiers(c, cfg, path, cfg->routes[i].notifiers, cfg->routes[i].nnotifiers);
		check_notifiers(c, cfg, path, cfg->routes[i].escalate_to,
				cfg->routes[i].nescalate_to);
	}
	cairn_cfg_daemon *dm = &cfg->daemon;
	if (!dm->state_dir)
		dm->state_dir = cairn_xstrdup("/var/lib/cairn");
	if (!dm->database) {
		snprintf(path, sizeof(path), "%s/cairnd.db", dm->state_dir);
		dm->database = cairn_xstrdup(path);
	}
	if (!dm->listen)
		dm->listen = cairn_xstrdup("127.0.0.1:8790");
	if (!dm->max_concurrent_jobs)
		dm->max_concurrent_jobs = 2;
}

void cairn_cfg__daemon_free(cairn_config *cfg)
{
	for (size_t i = 0; i < cfg->nclients; i++) {
		cairn_cfg_client *cl = &cfg->clients[i];
		for (size_t k = 0; k < cl->njobs; k++) {
			free(cl->jobs[k].name);
			free(cl->jobs[k].schedule);
			free(cl->jobs[k].timezone);
			freelist(cl->jobs[k].command);
		}
		free(cl->jobs);
		free(cl->name);
		free(cl->repository);
		freelist(cl->sources);
		freelist(cl->excludes);
		free(cl->schedule);
		free(cl->timezone);
		free(cl->drill_schedule);
		free(cl->site);
	}
	free(cfg->clients);
	for (size_t i = 0; i < cfg->nnotifiers; i++) {
		cairn_cfg_notifier *n = &cfg->notifiers[i];
		free(n->name);
		free(n->url);
		free(n->from);
		freelist(n->to);
		free(n->username);
		free(n->password_file);
		freelist(n->command);
		free(n->token_file);
	}
	free(cfg->notifiers);
	for (size_t i = 0; i < cfg->nroutes; i++) {
		free(cfg->routes[i].client);
		freelist(cfg->routes[i].notifiers);
		freelist(cfg->routes[i].escalate_to);
	}
	free(cfg->routes);
	free(cfg->daemon.state_dir);
	free(cfg->daemon.database);
	free(cfg->daemon.listen);
	free(cfg->daemon.api_token_file);
	free(cfg->daemon.cairn_binary);
	free(cfg->defaults.timezone);
	free(cfg->defaults.drill_schedule);
}

/* ---- lookups and jobs ---- */

const cairn_cfg_client *cairn_config_client(const cairn_config *c, const char *name)
{
	for (size_t i = 0; c && name && i < c->nclients; i++)
		if (!strcmp(c->clients[i].name, name))
			return &c->clients[i];
	return NULL;
}

const cairn_cfg_notifier *cairn_config_notifier(const cairn_config *c, const char *name)
{
	for (size_t i = 0; c && name && i < c->nnotifiers; i++)
		if (!strcmp(c->notifiers[i].name, name))
			return &c->notifiers[i];
	return NULL;
}
