/*
 * cmd_drill.c - `cairn drill`: restore drills, their status, and the due ones.
 *
 *   cairn drill [--snapshot S|latest|random] [--target T] [--sample 10%] [--seed N]
 *               [--sandbox DIR] [--compare-live] [--keep-sandbox]
 *   cairn drill status [--interval 30d]
 *   cairn drill --due [--interval 30d]      (with --config: every repository)
 *
 * Targets rotate: without --target the drill reads from the copy whose last
 * drill is the oldest, so every target of every client gets drilled.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "sched/sched.h"
#include "verify/verify.h"

typedef struct last {
	int64_t pass_ns[64]; /* last passing drill per member */
	int64_t any_ns[64];  /* last drill per member */
	int verdict[64];
	size_t n;
	cairn_target *t;
} last;

static int collect_report(void *payload, const char *name, const char *json)
{
	last *l = payload;
	cairn_drill_report rep;
	(void)name;
	if (cairn_drill_report_parse(json, &rep) < 0)
		return 0;
	for (size_t i = 0; i < l->n; i++) {
		cairn_target *m = cairn_target_member(l->t, i);
		if (strcmp(m->name, rep.target))
			continue;
		if (rep.time_ns > l->any_ns[i]) {
			l->any_ns[i] = rep.time_ns;
			l->verdict[i] = rep.passed;
		}
		if (rep.passed && rep.time_ns > l->pass_ns[i])
			l->pass_ns[i] = rep.time_ns;
	}
	return 0;
}

static int load_last(cairn_repo *r, last *l)
{
	memset(l, 0, sizeof(*l));
	l->t = cairn_repo_target(r);
	l->n = cairn_target_members(l->t);
	if (l->n > 64)
		l->n = 64;
	return cairn_reports_list(r, collect_report, l);
}

static void print_report(cli *c, const cairn_drill_report *rep)
{
	if (c->json) {
		cairn_buf b = CAIRN_BUF_INIT;
		cairn_drill_report_json(rep, &b);
		fwrite(b.data, 1, b.len, stdout);
		putchar('\n');
		cairn_buf_free(&b);
		return;
	}
	if (c->quiet)
		return;
	char st[64], dt[64], sz[32], tot[32];
	fmt_time(st, sizeof(st), rep->snapshot_time_ns, 0);
	fmt_time(dt, sizeof(dt), rep->time_ns, 0);
	fmt_size(sz, sizeof(sz), rep->bytes);
	fmt_size(tot, sizeof(tot), rep->bytes_total);
	printf("restore drill %s\n"
	       "  client      %s\n"
	       "  snapshot    %.8s (%s)\n"
	       "  target      %s%s%s%s\n"
	       "  sample      %.0f%% (seed %llu): %llu of %llu files, %s of %s\n"
	       "  checked     every chunk id and file digest; metadata of %llu entries; %llu "
	       "files against the live source\n"
	       "  time        %.2f s, %.1f MB/s, first byte after %.3f s\n"
	       "  errors      %llu%s%s\n",
	       rep->passed ? "PASSED" : "FAILED", rep->client, rep->snapshot, st, rep->target,
	       rep->site[0] ? " (site " : "", rep->site, rep->site[0] ? ")" : "",
	       rep->sample * 100, (unsigned long long)rep->seed, (unsigned long long)rep->files,
	       (unsigned long long)rep->files_total, sz, tot,
	       (unsigned long long)rep->meta_checked, (unsigned long long)rep->live_compared,
	       rep->seconds, rep->mb_per_s, rep->first_byte_s, (unsigned long long)rep->errors,
	       rep->first_error[0] ? ": " : "", rep->first_error);
	(void)dt;
}

typedef struct dopts {
	const char *snapshot, *target, *sandbox;
	double sample;
	uint64_t seed;
	int compare_live, keep_sandbox, due, status;
	int64_t interval_ns;
} dopts;

/* Drill member @p member of the current repository (-1: rotate). 0 ok, else an exit code. */
static int drill_one(cli *c, const dopts *d, int member, int *failed)
{
	cairn_repo *r;
	int rc;
	if ((rc = cli_open(c, &r, 1)))
		return rc;
	cairn_target *t = cairn_repo_target(r);
	size_t n = cairn_target_members(t);
	last l;
	if (member < 0) {
		load_last(r, &l);
		member = 0;
		for (size_t i = 1; i < l.n; i++)
			if (l.any_ns[i] < l.any_ns[member])
				member = (int)i;
	}
	if ((size_t)member >= n) {
		cairn_repo_close(r);
		cli_error("drill: no target %d", member);
		return EXIT_USAGE;
	}
	cairn_target *m = cairn_target_member(t, (size_t)member);
	cairn_repo *rm = r;
	if (n > 1) {
		/* a repository instance that reads only from that member, without the cache */
		cairn_repo_close(r);
		c->read_member = member;
		rc = cli_open(c, &rm, 1);
		c->read_member = -1;
		if (rc)
			return rc;
		t = cairn_repo_target(rm);
		m = cairn_target_member(t, (size_t)member);
	}
	const cairn_cfg_repo *cr = c->cfg_repo;
	cairn_drill_opts o = CAIRN_DRILL_OPTS_INIT;
	o.snapshot = d->snapshot ? d->snapshot : "latest";
	o.sample = d->sample > 0 ? d->sample : cr ? cr->drill_sample : 1;
	o.seed = d->seed;
	o.sandbox = d->sandbox ? d->sandbox : cr ? cr->drill_sandbox : NULL;
	o.compare_live = d->compare_live || (cr && cr->drill_compare_live);
	o.keep_sandbox = d->keep_sandbox;
	cairn_drill_report rep;
	rc = cairn_drill(rm, &o, &rep, c->json ? NULL : cli_warn, c);
	if (rc < 0) {
		int code = cli_fail("drill", rc);
		cairn_repo_close(rm);
		return code;
	}
	snprintf(rep.target, sizeof(rep.target), "%s", m->name);
	snprintf(rep.site, sizeof(rep.site), "%s", m->site ? m->site : "");
	cairn_buf b = CAIRN_BUF_INIT;
	cairn_drill_report_json(&rep, &b);
	if (cairn_report_save(rm, (const char *)b.data, b.len, NULL) < 0)
		cli_error("drill: the report could not be stored: %s", cairn_error_last());
	cairn_buf_free(&b);
	print_report(c, &rep);
	if (!rep.passed)
		*failed = 1;
	cairn_repo_close(rm);
	return 0;
}

static int status_or_due(cli *c, const dopts *d, int *failed)
{
	cairn_repo *r;
	int rc;
	if ((rc = cli_open(c, &r, 1)))
		return rc;
	last l;
	load_last(r, &l);
	const cairn_cfg_repo *cr = c->cfg_repo;
	int64_t interval = d->interval_ns ? d->interval_ns
			   : cr ? cr->drill_interval_ns : CAIRN_DRILL_DEFAULT_NS;
	if (interval > CAIRN_DRILL_FLOOR_NS)
		interval = CAIRN_DRILL_FLOOR_NS;
	int64_t now = cairn_wall_ns();
	int due[64] = {0};
	for (size_t i = 0; i < l.n; i++) {
		cairn_target *m = cairn_target_member(l.t, i);
		int64_t next = l.pass_ns[i] ? l.pass_ns[i] + interval : now;
		due[i] = next <= now;
		if (d->status) {
			char lp[64] = "never", nx[64];
			if (l.pass_ns[i])
				fmt_time(lp, sizeof(lp), l.pass_ns[i], 0);
			fmt_time(nx, sizeof(nx), next, 0);
			if (c->json) {
				printf("{\"repository\":");
				json_str(stdout, c->repo);
				printf(",\"target\":");
				json_str(stdout, m->name);
				printf(",\"site\":");
				json_str(stdout, m->site ? m->site : "");
				printf(",\"last_pass_ns\":%lld,\"next_due_ns\":%lld,\"overdue\":%s,"
				       "\"last_verdict\":\"%s\"}\n",
				       (long long)l.pass_ns[i], (long long)next,
				       due[i] ? "true" : "false",
				       !l.any_ns[i] ? "none" : l.verdict[i] ? "pass" : "fail");
			} else {
				printf("%-12s %-40s %-8s last pass %-19s  next due %-19s%s\n", c->repo,
				       m->name, m->site ? m->site : "-", lp, nx,
				       due[i] ? (l.pass_ns[i] ? "  OVERDUE" : "  NEVER DRILLED") : "");
			}
			if (due[i])
				*failed = 1;
		}
	}
	cairn_repo_close(r);
	if (d->due) {
		for (size_t i = 0; i < l.n; i++)
			if (due[i] && (rc = drill_one(c, d, (int)i, failed)))
				return rc;
	}
	return 0;
}

int cmd_drill(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {
	    {"snapshot", 1, 0, 's'}, {"target", 1, 0, 't'},      {"sample", 1, 0, 'p'},
	    {"seed", 1, 0, 'S'},     {"sandbox", 1, 0, 'b'},     {"compare-live", 0, 0, 'L'},
	    {"keep-sandbox", 0, 0, 'K'}, {"due", 0, 0, 'D'},     {"interval", 1, 0, 'I'},
	    {"help", 0, 0, 'h'},     {0, 0, 0, 0}};
	dopts d = {0};
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (ch) {
		case 's': d.snapshot = optarg; break;
		case 't': d.target = optarg; break;
		case 'p': {
			char *end;
			double v = strtod(optarg, &end);
			if (*end == '%')
				v /= 100, end++;
			if (*end || v <= 0 || v > 1) {
				cli_error("drill: --sample takes a share like 10%% or 0.1");
				return EXIT_USAGE;
			}
			d.sample = v;
			break;
		}
		case 'S': d.seed = strtoull(optarg, NULL, 10); break;
		case 'b': d.sandbox = optarg; break;
		case 'L': d.compare_live = 1; break;
		case 'K': d.keep_sandbox = 1; break;
		case 'D': d.due = 1; break;
		case 'I':
			if (cairn_parse_duration(optarg, &d.interval_ns) < 0 || d.interval_ns <= 0) {
				cli_error("drill: --interval takes a duration like 30d");
				return EXIT_USAGE;
			}
			break;
		case 'h':
			puts("usage: cairn drill [--snapshot ID|latest|random] [--target NAME|SITE|N] "
			     "[--sample 10%] [--seed N]\n"
			     "                   [--sandbox DIR] [--compare-live] [--keep-sandbox]\n"
			     "       cairn drill status [--interval 30d]\n"
			     "       cairn drill --due [--interval 30d]   (with --config: every "
			     "repository)");
			return EXIT_OK;
		default:
			fprintf(stderr, "cairn: drill: bad arguments (see 'cairn drill --help')\n");
			return EXIT_USAGE;
		}
	}
	if (optind < argc && !strcmp(argv[optind], "status")) {
		d.status = 1;
		optind++;
	}
	if (optind != argc) {
		cli_error("drill: unexpected argument '%s'", argv[optind]);
		return EXIT_USAGE;
	}
	int failed = 0, rc = 0;
	if ((d.status || d.due) && c->config && !c->repo) {
		/* every repository of the configuration */
		cairn_config *cfg;
		if ((rc = cairn_config_load(&cfg, c->config)) < 0)
			return cli_fail("configuration", rc);
		c->cfg = cfg;
		for (size_t i = 0; i < cfg->nrepos && !rc; i++) {
			c->repo = cfg->repos[i].name;
			rc = status_or_due(c, &d, &failed);
		}
		c->repo = NULL;
	} else if (d.status || d.due) {
		rc = status_or_due(c, &d, &failed);
	} else {
		int member = -1;
		if (d.target) {
			cairn_target *t;
			if ((rc = cli_target(c, &t)))
				return rc;
			size_t n = cairn_target_members(t);
			char *end;
			unsigned long k = strtoul(d.target, &end, 10);
			if (!*end && k < n)
				member = (int)k;
			for (size_t i = 0; i < n && member < 0; i++) {
				cairn_target *m = cairn_target_member(t, i);
				if (!strcmp(m->name, d.target) || (m->site && !strcmp(m->site, d.target)))
					member = (int)i;
			}
			cairn_target_close(t);
			if (member < 0) {
				cli_error("drill: no target '%s'", d.target);
				return EXIT_USAGE;
			}
		}
		rc = drill_one(c, &d, member, &failed);
	}
	if (rc)
		return rc;
	return failed ? EXIT_FAIL : EXIT_OK;
}
