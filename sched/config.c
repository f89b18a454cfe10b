/*
 * config.c - the YAML configuration file (libfyaml), see sched.h and
 * docs/CONFIG.md.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libfyaml.h>

#include "sched/config_int.h"
#include "sched/sched.h"

typedef cairn_cfg_ctx ctx;

static int bad(ctx *c, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(ctx *c, const char *path, const char *fmt, ...)
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

static const char *scalar(ctx *c, struct fy_node *n, const char *path)
{
	if (!n || fy_node_get_type(n) != FYNT_SCALAR) {
		bad(c, path, "expected a value");
		return NULL;
	}
	const char *s = fy_node_get_scalar0(n);
	if (!s)
		bad(c, path, "unreadable value");
	return s;
}

static char *dup_scalar(ctx *c, struct fy_node *n, const char *path)
{
	const char *s = scalar(c, n, path);
	return s ? cairn_xstrdup(s) : NULL;
}

static unsigned get_uint(ctx *c, struct fy_node *n, const char *path, unsigned max)
{
	const char *s = scalar(c, n, path);
	if (!s)
		return 0;
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (!*s || *end || v > max) {
		bad(c, path, "'%s' is not a whole number from 0 to %u", s, max);
		return 0;
	}
	return (unsigned)v;
}

const char *cairn_cfg__scalar(cairn_cfg_ctx *c, struct fy_node *n, const char *path)
{
	return scalar(c, n, path);
}

unsigned cairn_cfg__uint(cairn_cfg_ctx *c, struct fy_node *n, const char *path, unsigned max)
{
	return get_uint(c, n, path, max);
}

int cairn_parse_duration(const char *s, int64_t *out)
{
	int64_t total = 0;
	if (!s || !*s)
		return -1;
	while (*s) {
		char *end;
		errno = 0;
		long long v = strtoll(s, &end, 10);
		if (end == s || errno || v < 0)
			return -1;
		int64_t unit;
		switch (*end) {
		case 's': unit = 1; break;
		case 'm': unit = 60; break;
		case 'h': unit = 3600; break;
		case 'd': unit = 86400; break;
		case 'w': unit = 7 * 86400; break;
		case 'M': unit = 30 * 86400; break;
		case 'y': unit = 365 * 86400; break;
		default: return -1;
		}
		if (v > INT64_MAX / 1000000000 / unit)
			return -1;
		total += (int64_t)v * unit * 1000000000;
		s = end + 1;
	}
	*out = total;
	return 0;
}

static void parse_drill(ctx *c, struct fy_node *n, const char *path, cairn_cfg_repo *r)
{
	if (fy_node_get_type(n) != FYNT_MAPPING) {
		bad(c, path, "expected a mapping (interval, sample, sandbox, compare_live)");
		return;
	}
	void *it = NULL;
	struct fy_node_pair *p;
	char sub[2048];
	while ((p = fy_node_mapping_iterate(n, &it)) && !c->rc) {
		const char *k = scalar(c, fy_node_pair_key(p), path);
		struct fy_node *v = fy_node_pair_value(p);
		if (!k)
			return;
		snprintf(sub, sizeof(sub), "%s.%s", path, k);
		const char *val = scalar(c, v, sub);
		if (!val)
			return;
		if (!strcmp(k, "interval")) {
			if (cairn_parse_duration(val, &r->drill_interval_ns) < 0 ||
			    r->drill_interval_ns <= 0)
				bad(c, sub, "'%s' is not a duration like 30d or 12h", val);
			else if (r->drill_interval_ns > CAIRN_DRILL_FLOOR_NS)
				bad(c, sub, "%s exceeds the hard floor of one drill a year", val);
		} else if (!strcmp(k, "sample")) {
			char *end;
			double v2 = strtod(val, &end);
			if (*end == '%')
				v2 /= 100, end++;
			if (*end || v2 <= 0 || v2 > 1)
				bad(c, sub, "'%s' is not a share like 10%% or 0.1", val);
			r->drill_sample = v2;
		} else if (!strcmp(k, "sandbox")) {
			r->drill_sandbox = cairn_xstrdup(val);
		} else if (!strcmp(k, "compare_live")) {
			r->drill_compare_live = !strcmp(val, "true") || !strcmp(val, "yes");
		} else {
			bad(c, sub, "unknown key (expected interval, sample, sandbox, compare_live)");
		}
	}
}

static void parse_target(ctx *c, struct fy_node *n, const char *path, cairn_cfg_target *t)
{
	char sub[2048];
	if (fy_node_get_type(n) != FYNT_MAPPING) {
		bad(c, path, "a target is a mapping with at least 'url'");
		return;
	}
	void *it = NULL;
	struct fy_node_pair *p;
	
	while ((p = fy_node_mapping_iterate(n, &it)) && !c->rc) {
		const char *k = scalar(c, fy_node_pair_key(p), path);
		struct fy_node *v = fy_node_pair_value(p);
		if (!k)
			return;
		snprintf(sub, sizeof(sub), "%s.%s", path, k);
		if (!strcmp(k, "url"))
			t->url = dup_scalar(c, v, sub);
		else if (!strcmp(k, "site"))
			t->site = dup_scalar(c, v, sub);
		else if (!strcmp(k, "ceph_conf"))
			t->ceph_conf = dup_scalar(c, v, sub);
		else if (!strcmp(k, "credentials_file"))
			t->credentials_file = dup_scalar(c, v, sub);
		else if (!strcmp(k, "timeout"))
			t->timeout_s = get_uint(c, v, sub, 3600);
		else
			bad(c, sub, "unknown key (expected url, site, ceph_conf, credentials_file, "
				    "timeout)");
	}
	if (!c->rc && !t->url)
		bad(c, path, "url: missing");
}

static void parse_repo(ctx *c, struct fy_node *n, const char *path, cairn_cfg_repo *r)
{
	if (fy_node_get_type(n) != FYNT_MAPPING) {
		bad(c, path, "a repository is a mapping with 'targets'");
		return;
	}
	void *it = NULL;
	struct fy_node_pair *p;
	char sub[1024];
	while ((p = fy_node_mapping_iterate(n, &it)) && !c->rc) {
		const char *k = scalar(c, fy_node_pair_key(p), path);
		struct fy_node *v = fy_node_pair_value(p);
		if (!k)
			return;
		snprintf(sub, sizeof(sub), "%s.%s", path, k);
		if (!strcmp(k, "password_file"))
			r->password_file = dup_scalar(c, v, sub);
		else if (!strcmp(k, "journal"))
			r->journal = dup_scalar(c, v, sub);
		else if (!strcmp(k, "cache_dir"))
			r->cache_dir = dup_scalar(c, v, sub);
		else if (!strcmp(k, "min_copies"))
			r->min_copies = get_uint(c, v, sub, 64);
		else if (!strcmp(k, "drill"))
			parse_drill(c, v, sub, r);
		else if (!strcmp(k, "targets")) {
			if (fy_node_get_type(v) != FYNT_SEQUENCE) {
				bad(c, sub, "expected a list of targets");
				return;
			}
			size_t cnt = (size_t)fy_node_sequence_item_count(v);
			if (!cnt || cnt > 64) {
				bad(c, sub, "needs 1 to 64 targets");
				return;
			}
			r->targets = cairn_xcalloc(cnt, sizeof(cairn_cfg_target));
			void *si = NULL;
			struct fy_node *tn;
			while ((tn = fy_node_sequence_iterate(v, &si)) && !c->rc) {
				char tp[1100];
				snprintf(tp, sizeof(tp), "%s[%zu]", sub, r->ntargets);
				parse_target(c, tn, tp, &r->targets[r->ntargets++]);
			}
		} else
			bad(c, sub, "unknown key (expected targets, min_copies, password_file, journal, "
				    "cache_dir, drill)");
	}
	if (c->rc)
		return;
	if (!r->ntargets)
		bad(c, path, "targets: missing");
	else if (r->min_copies > r->ntargets)
		bad(c, path, "min_copies %u exceeds the %zu targets", r->min_copies, r->ntargets);
}

int cairn_config_load(cairn_config **out, const char *path)
{
	*out = NULL;
	FILE *f = fopen(path, "r");
	if (!f)
		return cairn_error_set(-errno, "configuration %s: %s", path, strerror(errno));
	fclose(f);
	struct fy_parse_cfg pcfg = {0};
	pcfg.flags = FYPCF_QUIET;
	struct fy_document *doc = fy_document_build_from_file(&pcfg, path);
	if (!doc)
		return cairn_error_set(-EINVAL, "configuration %s: not valid YAML", path);
	ctx c = {path, 0};
	cairn_config *cfg = cairn_xcalloc(1, sizeof(*cfg));
	cfg->path = cairn_xstrdup(path);
	struct fy_node *root = fy_document_root(doc);
	if (!root || fy_node_get_type(root) != FYNT_MAPPING) {
		bad(&c, "(top)", "expected a mapping with 'repositories'");
	} else {
		void *it = NULL;
		struct fy_node_pair *p;
		while ((p = fy_node_mapping_iterate(root, &it)) && !c.rc) {
			const char *k = scalar(&c, fy_node_pair_key(p), "(top)");
			struct fy_node *v = fy_node_pair_value(p);
			if (!k)
				break;
			if (!strcmp(k, "repositories")) {
				if (fy_node_get_type(v) != FYNT_MAPPING) {
					bad(&c, k, "expected a mapping of repository names");
					break;
				}
				size_t cnt = (size_t)fy_node_mapping_item_count(v);
				cfg->repos = cairn_xcalloc(cnt ? cnt : 1, sizeof(cairn_cfg_repo));
				void *ri = NULL;
				struct fy_node_pair *rp;
				while ((rp = fy_node_mapping_iterate(v, &ri)) && !c.rc) {
					const char *name = scalar(&c, fy_node_pair_key(rp), k);
					if (!name)
						break;
					char rpath[300];
					snprintf(rpath, sizeof(rpath), "repositories.%s", name);
					cairn_cfg_repo *r = &cfg->repos[cfg->nrepos++];
					r->name = cairn_xstrdup(name);
					r->drill_interval_ns = CAIRN_DRILL_DEFAULT_NS;
					r->drill_sample = 1;
					parse_repo(&c, fy_node_pair_value(rp), rpath, r);
				}
			} else if (!strcmp(k, "clients") || !strcmp(k, "daemon") ||
				   !strcmp(k, "notifiers") || !strcmp(k, "routes") ||
				   !strcmp(k, "defaults")) {
				cairn_cfg__daemon_section(&c, cfg, k, v); /* config_daemon.c */
			} else {
				bad(&c, k, "unknown section");
			}
		}
	}
	if (!c.rc)
		cairn_cfg__daemon_finish(&c, cfg);
	fy_document_destroy(doc);
	if (c.rc) {
		cairn_config_free(cfg);
		return c.rc;
	}
	*out = cfg;
	return 0;
}

void cairn_config_free(cairn_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nrepos; i++) {
		cairn_cfg_repo *r = &c->repos[i];
		for (size_t k = 0; k < r->ntargets; k++) {
			free(r->targets[k].url);
			free(r->targets[k].site);
			free(r->targets[k].ceph_conf);
			free(r->targets[k].credentials_file);
		}
		free(r->targets);
		free(r->name);
		free(r->password_file);
		free(r->journal);
		free(r->cache_dir);
		free(r->drill_sandbox);
	}
	free(c->repos);
	cairn_cfg__daemon_free(c);
	free(c->path);
	free(c);
}

const cairn_cfg_repo *cairn_config_repo(const cairn_config *c, const char *name)
{
	for (size_t i = 0; c && name && i < c->nrepos; i++)
		if (!strcmp(c->repos[i].name, name))
			return &c->repos[i];
	return NULL;
}

/*
 * Read an S3 credentials file: lines AWS_ACCESS_KEY_ID=... and
 * AWS_SECRET_ACCESS_KEY=... (optionally with "export "; '#' starts a comment).
 * Sets *ak and *sk (malloc'd). Returns 0 or a negative code with a message.
 */
static int read_credentials(const char *path, char **ak, char **sk)
{
	*ak = *sk = NULL;
	FILE *f = fopen(path, "r");
	if (!f)
		return cairn_error_set(-errno, "credentials file %s: %s", path, strerror(errno));
	char line[1024];
	while (fgets(line, sizeof(line), f)) {
		char *p = line + strspn(line, " \t");
		if (!strncmp(p, "export ", 7))
			p += 7;
		p[strcspn(p, "\r\n")] = 0;
		char *eq = strchr(p, '=');
		if (*p == '#' || !eq)
			continue;
		*eq = 0;
		char **slot = !strcmp(p, "AWS_ACCESS_KEY_ID")	  ? ak
			      : !strcmp(p, "AWS_SECRET_ACCESS_KEY") ? sk
								    : NULL;
		if (slot) {
			free(*slot);
			*slot = cairn_xstrdup(eq + 1);
		}
	}
	fclose(f);
	if (*ak && **ak && *sk && **sk)
		return 0;
	free(*ak);
	free(*sk);
	*ak = *sk = NULL;
	return cairn_error_set(-EINVAL, "credentials file %s: needs AWS_ACCESS_KEY_ID=... and "
					"AWS_SECRET_ACCESS_KEY=... lines", path);
}

/* Open target @p ct with its settings (ceph_conf, timeout, credentials_file). */
static int open_one(const cairn_cfg_target *ct, cairn_target **out)
{
	cairn_target_open_opts o = {ct->ceph_conf, ct->timeout_s, NULL, NULL};
	char *ak = NULL, *sk = NULL;
	if (ct->credentials_file) {
		int rc = read_credentials(ct->credentials_file, &ak, &sk);
		if (rc < 0)
			return rc;
		o.access_key = ak;
		o.secret_key = sk;
	}
	int rc = cairn_target_open_with(out, ct->url, &o);
	if (sk)
		explicit_bzero(sk, strlen(sk));
	free(ak);
	free(sk);
	return rc;
}

int cairn_config_open_target(const cairn_cfg_repo *r, cairn_target **out)
{
	cairn_target **m = cairn_xcalloc(r->ntargets, sizeof(cairn_target *));
	int rc = 0;
	*out = NULL;
	for (size_t i = 0; i < r->ntargets && rc == 0; i++) {
		const cairn_cfg_target *ct = &r->targets[i];
		/* the target's own settings: without them a dead cluster would take the
		 * default 30 s time-out, or a RADOS target would silently use $CEPH_CONF */
		rc = open_one(ct, &m[i]);
		if (rc < 0) {
			cairn_error_wrap(rc, "repository %s, target %zu", r->name, i);
			break;
		}
		if (ct->site) {
			free(m[i]->site);
			m[i]->site = cairn_xstrdup(ct->site);
		}
	}
	if (rc == 0 && r->ntargets == 1 && !r->journal) {
		*out = m[0];
		free(m);
		return 0;
	}
	if (rc == 0) {
		cairn_replica_opts o = {r->min_copies, r->journal, 0};
		rc = cairn_target_replica_open(out, m, r->ntargets, &o);
	}
	if (rc < 0)
		for (size_t i = 0; i < r->ntargets; i++)
			if (m[i])
				cairn_target_close(m[i]);
	free(m);
	return rc;
}
