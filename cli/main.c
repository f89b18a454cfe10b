/*
 * main.c - `cairn`, the command line: global options, dispatch, and the
 * helpers every subcommand uses (passphrase, opening, output).
 *
 * Global options may stand anywhere before "--":
 *   -r, --repo ADDR          repository address (or $CAIRN_REPOSITORY), or with --config
 *                            the name of a repository of the configuration file
 *   --config FILE            YAML configuration (repositories with several targets)
 *   --password-file FILE     passphrase file (else $CAIRN_PASSWORD, $CAIRN_PASSWORD_FILE, prompt)
 *   --json                   machine-readable output
 *   -q, --quiet              no progress, no informational output
 *   --cache-dir DIR, --no-cache
 *   --threads N              worker threads (default: number of CPUs)
 *   --compression N          zstd level for this run (0 = off)
 */
#include <malloc.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "sched/sched.h"

static const char usage_text[] =
    "usage: cairn [-r REPO | --config FILE -r NAME] [--password-file FILE] [--json] [-q] COMMAND\n"
    "\n"
    "commands:\n"
    "  init                    create a repository\n"
    "  backup PATH...          back up files and directories into a new snapshot\n"
    "  snapshots               list snapshots\n"
    "  ls SNAPSHOT [PATH]      list the files of a snapshot\n"
    "  restore SNAPSHOT --target DIR   restore a snapshot (or --include paths of it)\n"
    "  cat WHAT [ID]           print config, index, snapshot, tree or key objects (debugging)\n"
    "  forget [--keep-*]       remove snapshots by a retention policy (--prune to prune after)\n"
    "  prune                   delete data no snapshot needs, repack partly used packs\n"
    "  check [--read-data]     verify the repository's structure (and every blob)\n"
    "  key list|add|remove|passwd   manage passphrases\n"
    "  stats                   sizes, deduplication, chunk counts\n"
    "  repair                  bring every target of a replica set level (no key needed)\n"
    "  scrub [--target T]      check every pack copy's checksums (no key needed)\n"
    "  drill [status|--due]    restore drills: restore and verify (a sample of) a snapshot\n"
    "  version                 print the version\n"
    "\n"
    "talking to cairnd (--config FILE: its daemon.listen and daemon.api_token_file):\n"
    "  status | jobs           the daemon and its jobs\n"
    "  runs [--job CLIENT/JOB] recent runs\n"
    "  incidents [--all]       unresolved (or all) incidents\n"
    "  incident review ID      post-incident review, Markdown (--output FILE)\n"
    "  ack ID | resolve ID     acknowledge or resolve an incident\n"
    "  run CLIENT/JOB          run a job now\n"
    "\n"
    "SNAPSHOT is an id prefix or 'latest' (filtered by --client/--tag/--path/--host).\n"
    "REPO: /path, local:/path, rados:POOL[/NS], s3:http://HOST:PORT/BUCKET[/PREFIX].\n"
    "Exit codes: 0 ok, 1 error, 2 usage, 3 partial,\n"
    "10 no repository, 11 locked, 12 wrong passphrase.\n";

void cli_error(const char *fmt, ...)
{
	va_list ap;
	fputs("cairn: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_exit_code(int rc)
{
	switch (-rc) {
	case 0:
		return EXIT_OK;
	case EKEYREJECTED:
		return EXIT_WRONG_PASS;
	case EBUSY:
		return EXIT_LOCKED;
	case EINVAL:
		return EXIT_USAGE;
	default:
		return EXIT_FAIL;
	}
}

int cli_fail(const char *what, int rc)
{
	const char *m = cairn_error_last();
	if (m && *m)
		cli_error("%s: %s", what, m);
	else
		cli_error("%s: %s", what, strerror(-rc));
	return cli_exit_code(rc);
}

int cli_bad_option(const char *cmd, int ch, char **argv)
{
	/* getopt_long is quiet (opterr = 0), so this one line is all the user sees; a long
	 * option is named as typed, a short one by optopt (it may sit in a cluster) */
	const char *word = optind > 1 ? argv[optind - 1] : "";
	int len = (int)strcspn(word, "=");
	int lng = !strncmp(word, "--", 2);
	if (ch == ':' && lng)
		cli_error("%s: option '%s' needs a value (see 'cairn %s --help')", cmd, word, cmd);
	else if (ch == ':')
		cli_error("%s: option '-%c' needs a value (see 'cairn %s --help')", cmd, optopt, cmd);
	else if (lng && word[len] == '=' && optopt)
		cli_error("%s: option '%.*s' takes no value (see 'cairn %s --help')", cmd, len, word,
			  cmd);
	else if (lng)
		cli_error("%s: unknown option '%.*s' (see 'cairn %s --help')", cmd, len, word, cmd);
	else
		cli_error("%s: unknown option '-%c' (see 'cairn %s --help')", cmd, optopt, cmd);
	return EXIT_USAGE;
}

void cli_warn(void *payload, const char *msg)
{
	cli *c = payload;
	if (c) {
		c->warnings++;
		if (c->progress)
			fputs("\r\033[K", stderr);
	}
	fprintf(stderr, "warning: %s\n", msg);
}

void cli_progress(void *payload, const char *line)
{
	(void)payload;
	fprintf(stderr, "\r\033[K%s", line);
	fflush(stderr);
}

void cli_progress_done(cli *c)
{
	if (c->progress)
		fputs("\r\033[K", stderr);
}

static char *read_secret_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	char buf[4096];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	buf[strcspn(buf, "\r\n")] = 0; /* the first line */
	return cairn_xstrdup(buf);
}

int cli_password(cli *c, const char *env, const char *file_opt, char **out)
{
	char envfile[64];
	*out = NULL;
	if (file_opt) {
		*out = read_secret_file(file_opt);
		if (!*out) {
			cli_error("cannot read password file %s: %s", file_opt, strerror(errno));
			return EXIT_USAGE;
		}
		return 0;
	}
	const char *p = getenv(env);
	if (p) {
		*out = cairn_xstrdup(p);
		return 0;
	}
	snprintf(envfile, sizeof(envfile), "%s_FILE", env);
	if ((p = getenv(envfile)) && *p) {
		*out = read_secret_file(p);
		if (!*out) {
			cli_error("cannot read %s=%s: %s", envfile, p, strerror(errno));
			return EXIT_USAGE;
		}
		return 0;
	}
	if (!strcmp(env, "CAIRN_PASSWORD") && c->cfg_repo &&
	    ((const cairn_cfg_repo *)c->cfg_repo)->password_file) {
		const char *pf = ((const cairn_cfg_repo *)c->cfg_repo)->password_file;
		*out = read_secret_file(pf);
		if (!*out) {
			cli_error("cannot read password file %s (from %s): %s", pf, c->config,
				  strerror(errno));
			return EXIT_USAGE;
		}
		return 0;
	}
	if (isatty(0)) {
		struct termios old, nt;
		char buf[1024];
		fprintf(stderr, "enter passphrase for repository: ");
		tcgetattr(0, &old);
		nt = old;
		nt.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(0, TCSANOW, &nt);
		char *got = fgets(buf, sizeof(buf), stdin);
		tcsetattr(0, TCSANOW, &old);
		fputc('\n', stderr);
		if (got) {
			buf[strcspn(buf, "\r\n")] = 0;
			*out = cairn_xstrdup(buf);
			return 0;
		}
	}
	cli_error("no passphrase: set %s or use --password-file", env);
	return EXIT_USAGE;
}

int cli_target(cli *c, cairn_target **out)
{
	if (!c->repo)
		c->repo = getenv("CAIRN_REPOSITORY");
	if (!c->repo || !*c->repo) {
		cli_error("no repository given: use -r REPO or set CAIRN_REPOSITORY");
		return EXIT_USAGE;
	}
	int rc;
	if (c->config) {
		cairn_config *cfg = c->cfg;
		if (!cfg) {
			if ((rc = cairn_config_load(&cfg, c->config)) < 0)
				return cli_fail("configuration", rc);
			c->cfg = cfg;
		}
		const cairn_cfg_repo *r = cairn_config_repo(cfg, c->repo);
		if (!r) {
			cli_error("repository '%s' is not in %s", c->repo, c->config);
			return EXIT_USAGE;
		}
		c->cfg_repo = r;
		if (!c->cache_dir && r->cache_dir)
			c->cache_dir = r->cache_dir;
		if ((rc = cairn_config_open_target(r, out)) < 0)
			return cli_fail("repository", rc);
		return 0;
	}
	rc = cairn_target_open(out, c->repo);
	if (rc < 0)
		return cli_fail("repository", rc);
	return 0;
}

int cli_open(cli *c, cairn_repo **out, int no_lock)
{
	cairn_target *t;
	char *pass;
	int rc = cli_target(c, &t);
	if (rc)
		return rc;
	if ((rc = cli_password(c, "CAIRN_PASSWORD", c->password_file, &pass))) {
		cairn_target_close(t);
		return rc;
	}
	cairn_open_opts o = CAIRN_OPEN_OPTS_INIT;
	o.cache_dir = c->no_cache ? "" : c->cache_dir;
	o.threads = c->threads;
	o.zstd_level = c->compression;
	o.no_lock = no_lock;
	o.read_member = c->read_member;
	rc = cairn_repo_open(out, t, pass, &o);
	memset(pass, 0, strlen(pass));
	free(pass);
	if (rc < 0) {
		cairn_target_close(t);
		int code = cli_fail("open", rc);
		return rc == -ENOENT ? EXIT_NO_REPO : code;
	}
	cairn_repo_set_warn(*out, cli_warn, c);
	return 0;
}

/* --- output helpers --------------------------------------------------------------- */

void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\t': fputs("\\t", f); break;
		case '\r': fputs("\\r", f); break;
		default:
			if (*p < 0x20 || *p >= 0x80)
				fprintf(f, "\\u%04x", *p); /* bytes, not code points: names need not be UTF-8 */
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

void fmt_time(char *out, size_t cap, int64_t ns, int rfc3339)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;
	if (rfc3339) {
		gmtime_r(&t, &tm);
		size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(out + n, cap - n, ".%09lldZ", (long long)(ns % 1000000000));
	} else {
		localtime_r(&t, &tm);
		strftime(out, cap, "%Y-%m-%d %H:%M:%S", &tm);
	}
}

void fmt_size(char *out, size_t cap, uint64_t b)
{
	const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	double v = (double)b;
	int i = 0;
	while (v >= 1024 && i < 5) {
		v /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(out, cap, "%llu B", (unsigned long long)b);
	else
		snprintf(out, cap, "%.3g %s", v, u[i]);
}

int parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s || errno || *s == '-')
		return -1;
	int shift = 0;
	if (*end) {
		switch (*end) {
		case 'k': case 'K': shift = 10; break;
		case 'm': case 'M': shift = 20; break;
		case 'g': case 'G': shift = 30; break;
		case 't': case 'T': shift = 40; break;
		default: return -1;
		}
		end++;
		if (*end == 'i')
			end++;
		if (*end == 'B' || *end == 'b')
			end++;
		if (*end)
			return -1;
	}
	if (shift && v > (~0ull >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

int cli_bad_usage(const char *cmd, const char *msg)
{
	cli_error("%s: %s (see 'cairn %s --help')", cmd, msg, cmd);
	return EXIT_USAGE;
}

int cli_kdf_arg(const char *cmd, int memory, const char *s, uint32_t *out)
{
	uint64_t v;
	size_t digits = strspn(s, "0123456789");
	int ok = digits > 0 && parse_size(s, &v) == 0 && v > 0;
	if (memory && ok && s[digits]) { /* a unit: bytes, in whole KiB */
		ok = v % 1024 == 0;
		v /= 1024;
	} else if (!memory) {
		ok = ok && !s[digits]; /* passes: a plain number */
	}
	if (!ok || v > UINT32_MAX)
		return cli_bad_usage(cmd, memory ? "--kdf-memory takes KiB (65536) or a size (64M)"
						 : "--kdf-time takes a number of passes");
	*out = (uint32_t)v;
	return 0;
}

void warn_weak_kdf(const cli *c, uint32_t t, uint32_t m_kib)
{
	/* OWASP's least Argon2id cost is 19 MiB x 2 passes (or the same product) */
	if (!c->quiet && (uint64_t)t * m_kib < 2ull * 19 * 1024)
		fprintf(stderr,
			"cairn: warning: Argon2id at %u KiB x %u passes is below OWASP's least "
			"(19 MiB x 2): the passphrase is that much cheaper to guess\n",
			m_kib, t);
}

/* --- dispatch ------------------------------------------------------------------------ */

static int take_value(int *i, int argc, char **argv, const char *name, const char **out)
{
	size_t n = strlen(name);
	if (!strncmp(argv[*i], name, n) && argv[*i][n] == '=') {
		*out = argv[*i] + n + 1;
		return 1;
	}
	if (strcmp(argv[*i], name))
		return 0;
	if (*i + 1 >= argc) {
		cli_error("option %s needs a value", name);
		exit(EXIT_USAGE);
	}
	*out = argv[++*i];
	return 1;
}

int main(int argc, char **argv)
{
	/*
	 * Blocks of 256 KiB and more (packs, chunk buffers, codec scratch) come
	 * from mmap and go back to the system when freed. glibc's default raises
	 * this threshold to 32 MiB after the first large free, after which 16 MiB
	 * packs grown by doubling fragment the per-thread arenas: peak RSS of a
	 * 2 GiB backup 116 MiB with the default, ~90 MiB with this.
	 */
	mallopt(M_MMAP_THRESHOLD, 256 << 10);
	cli c = {0};
	c.compression = -1;
	c.read_member = -1;
	const char *v = NULL;
	char **rest = calloc((size_t)argc + 1, sizeof(char *));
	int n = 0, dashdash = 0;
	for (int i = 1; i < argc; i++) {
		if (dashdash) {
			rest[n++] = argv[i];
			continue;
		}
		if (!strcmp(argv[i], "--")) {
			dashdash = 1;
			rest[n++] = argv[i];
		} else if (take_value(&i, argc, argv, "-r", &c.repo) ||
			   take_value(&i, argc, argv, "--repo", &c.repo) ||
			   take_value(&i, argc, argv, "--password-file", &c.password_file) ||
			   take_value(&i, argc, argv, "--cache-dir", &c.cache_dir) ||
			   take_value(&i, argc, argv, "--config", &c.config)) {
		} else if (take_value(&i, argc, argv, "--threads", &v)) {
			char *end;
			long t = strtol(v, &end, 10);
			if (*end || t < 1 || t > 256) {
				cli_error("--threads: '%s' is not a number from 1 to 256", v);
				free(rest);
				return EXIT_USAGE;
			}
			c.threads = (unsigned)t;
		} else if (take_value(&i, argc, argv, "--compression", &v)) {
			char *end;
			long t = strtol(v, &end, 10);
			if (*end || t < 0 || t > 19) {
				cli_error("--compression: '%s' is not a zstd level from 0 to 19", v);
				free(rest);
				return EXIT_USAGE;
			}
			c.compression = (int)t;
		} else if (!strcmp(argv[i], "--json")) {
			c.json = 1;
		} else if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")) {
			c.quiet = 1;
		} else if (!strcmp(argv[i], "--no-cache")) {
			c.no_cache = 1;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			if (n == 0) {
				fputs(usage_text, stdout);
				free(rest);
				return EXIT_OK;
			}
			rest[n++] = argv[i];
		} else {
			rest[n++] = argv[i];
		}
	}
	if (!n) {
		fputs(usage_text, stderr);
		free(rest);
		return EXIT_USAGE;
	}
	c.progress = !c.quiet && !c.json && isatty(2);
	opterr = 0; /* the subcommands report bad options themselves (cli_bad_option) */
	static const struct {
		const char *name;
		int (*fn)(cli *, int, char **);
	} cmds[] = {{"init", cmd_init},       {"backup", cmd_backup}, {"snapshots", cmd_snapshots},
		    {"ls", cmd_ls},           {"restore", cmd_restore}, {"cat", cmd_cat},
		    {"forget", cmd_forget},   {"prune", cmd_prune},   {"check", cmd_check},
		    {"key", cmd_key},         {"stats", cmd_stats},   {"repair", cmd_repair},
		    {"scrub", cmd_scrub},     {"drill", cmd_drill},   {"status", cmd_daemon},
		    {"jobs", cmd_daemon},     {"runs", cmd_daemon},   {"incidents", cmd_daemon},
		    {"incident", cmd_daemon}, {"ack", cmd_daemon},    {"resolve", cmd_daemon},
		    {"run", cmd_daemon}};
	if (!strcmp(rest[0], "version")) {
		printf("cairn %s\n", CAIRN_VERSION_STRING);
		free(rest);
		return EXIT_OK;
	}
	if (!strcmp(rest[0], "help")) {
		fputs(usage_text, stdout);
		free(rest);
		return EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (!strcmp(rest[0], cmds[i].name)) {
			int rc = cmds[i].fn(&c, n, rest);
			free(rest);
			cairn_config_free(c.cfg);
			return rc;
		}
	}
	cli_error("unknown command '%s' (see 'cairn --help')", rest[0]);
	free(rest);
	return EXIT_USAGE;
}
