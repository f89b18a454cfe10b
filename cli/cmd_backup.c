/*
 * cmd_backup.c - init, backup, snapshots, ls, restore.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"

/* --- init ---------------------------------------------------------------------------- */

int cmd_init(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {{"chunk-min", 1, 0, 1}, {"chunk-avg", 1, 0, 2},
					   {"chunk-max", 1, 0, 3}, {"pack-size", 1, 0, 4},
					   {"kdf-memory", 1, 0, 5}, {"kdf-time", 1, 0, 6},
					   {"chunk-id", 1, 0, 7},   {"help", 0, 0, 'h'},
					   {0, 0, 0, 0}};
	cairn_init_opts o = CAIRN_INIT_OPTS_INIT;
	int ch;
	uint64_t v;
	optind = 1;
	while ((ch = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		if (ch == 'h') {
			puts("usage: cairn -r REPO init [--chunk-min/--chunk-avg/--chunk-max SIZE] "
			     "[--pack-size SIZE] [--kdf-memory KIB|SIZE] [--kdf-time N]\n"
			     "       [--chunk-id blake3|hmac-sha256]\n"
			     "Default chunking 512K/1M/8M; 16K/64K/256K suits VM images and databases.\n"
			     "Chunk ids are BLAKE3 keyed hashes by default; hmac-sha256 makes a repository\n"
			     "every cairn before format 2 can read.");
			return EXIT_OK;
		}
		if (ch == '?' || ch == ':')
			return cli_bad_option("init", ch, argv);
		if (ch == 7) {
			if (!strcmp(optarg, "blake3"))
				o.chunk_id = CAIRN_CHUNK_ID_BLAKE3;
			else if (!strcmp(optarg, "hmac-sha256"))
				o.chunk_id = CAIRN_CHUNK_ID_HMAC_SHA256;
			else
				return cli_bad_usage("init", "--chunk-id takes blake3 or hmac-sha256");
			continue;
		}
		if (ch == 5 || ch == 6) {
			int rc = cli_kdf_arg("init", ch == 5, optarg,
					     ch == 5 ? &o.kdf_m_kib : &o.kdf_t);
			if (rc)
				return rc;
			continue;
		}
		if (parse_size(optarg, &v) < 0 || v > UINT32_MAX)
			return cli_bad_usage("init", "bad size or number");
		switch (ch) {
		case 1: o.chunk_min = (uint32_t)v; break;
		case 2: o.chunk_avg = (uint32_t)v; break;
		case 3: o.chunk_max = (uint32_t)v; break;
		case 4: o.pack_size = (uint32_t)v; break;
		}
	}
	if (optind != argc)
		return cli_bad_usage("init", "unexpected argument");
	if (c->compression >= 0)
		o.zstd_level = c->compression;
	cairn_target *t;
	char *pass;
	int rc = cli_target(c, &t);
	if (rc)
		return rc;
	if ((rc = cli_password(c, "CAIRN_PASSWORD", c->password_file, &pass))) {
		cairn_target_close(t);
		return rc;
	}
	rc = cairn_repo_init(t, pass, &o);
	free(pass);
	if (rc < 0) {
		cairn_target_close(t);
		return cli_fail("init", rc);
	}
	if (c->json)
		printf("{\"repository\":"), json_str(stdout, t->name), printf(",\"created\":true}\n");
	else if (!c->quiet)
		printf("created cairn repository at %s\n", t->name);
	warn_weak_kdf(c, o.kdf_t ? o.kdf_t : CAIRN_KDF_DEFAULT_T,
		      o.kdf_m_kib ? o.kdf_m_kib : CAIRN_KDF_DEFAULT_M_KIB);
	cairn_target_close(t);
	return EXIT_OK;
}

/* --- backup --------------------------------------------------------------------------- */

int cmd_backup(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {
	    {"client", 1, 0, 'c'},   {"tag", 1, 0, 't'},    {"exclude", 1, 0, 'e'},
	    {"one-file-system", 0, 0, 'x'}, {"parent", 1, 0, 'p'}, {"force", 0, 0, 'f'},
	    {"exclude-file", 1, 0, 'E'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
	cairn_backup_opts o = CAIRN_BACKUP_OPTS_INIT;
	const char **tags = calloc((size_t)argc, sizeof(char *));
	const char **ex = calloc((size_t)argc + 1024, sizeof(char *));
	char *exbuf[1024];
	size_t nexbuf = 0;
	cairn_repo *r = NULL;
	cairn_snapshot s;
	int ch, rc = EXIT_OK;
	optind = 1;
	while ((ch = getopt_long(argc, argv, ":c:t:e:xp:fh", lo, NULL)) != -1) {
		switch (ch) {
		case 'c': o.client = optarg; break;
		case 't': tags[o.ntags++] = optarg; break;
		case 'e': ex[o.nexcludes++] = optarg; break;
		case 'x': o.one_file_system = 1; break;
		case 'p': o.parent = optarg; break;
		case 'f': o.force = 1; break;
		case 'E': {
			FILE *f = fopen(optarg, "r");
			char line[4096];
			if (!f) {
				cli_error("backup: cannot read exclude file %s: %s", optarg,
					  strerror(errno));
				rc = EXIT_USAGE;
				goto out;
			}
			while (fgets(line, sizeof(line), f) && nexbuf < 1024) {
				line[strcspn(line, "\r\n")] = 0;
				if (!line[0] || line[0] == '#')
					continue;
				exbuf[nexbuf] = strdup(line);
				ex[o.nexcludes++] = exbuf[nexbuf++];
			}
			fclose(f);
			break;
		}
		case 'h':
			puts("usage: cairn -r REPO backup [--client NAME] [--tag TAG]... [--exclude "
			     "PATTERN]... [--exclude-file FILE] [-x|--one-file-system] [--parent "
			     "SNAPSHOT] [--force] [--json] PATH...");
			goto out;
		default:
			rc = cli_bad_option("backup", ch, argv);
			goto out;
		}
	}
	if (optind >= argc) {
		rc = cli_bad_usage("backup", "no paths to back up");
		goto out;
	}
	/* a path that is not there is a mistake in the command line: refuse it as such
	 * (exit 2) before opening the repository, not as a failed backup */
	for (int i = optind; i < argc; i++) {
		struct stat st;
		if (lstat(argv[i], &st) < 0) {
			cli_error("backup: %s: %s", argv[i], strerror(errno));
			rc = EXIT_USAGE;
			goto out;
		}
	}
	o.paths = (const char *const *)argv + optind;
	o.npaths = (size_t)(argc - optind);
	o.tags = tags;
	o.excludes = ex;
	char host[256] = "";
	gethostname(host, sizeof(host) - 1);
	if (!o.client)
		o.client = host;
	if (c->progress) {
		o.progress = cli_progress;
		o.progress_payload = c;
	}
	if ((rc = cli_open(c, &r, 0)))
		goto out;
	rc = cairn_backup(r, &o, &s, cli_warn, c);
	cli_progress_done(c);
	if (rc < 0) {
		rc = cli_fail("backup", rc);
		goto out;
	}
	const cairn_backup_summary *m = &s.summary;
	double secs = (double)m->duration_ns / 1e9;
	if (c->json) {
		printf("{\"message_type\":\"summary\",\"snapshot_id\":\"%s\",\"client\":", s.idhex);
		json_str(stdout, s.client);
		printf(",\"files_new\":%llu,\"files_changed\":%llu,\"files_unchanged\":%llu,"
		       "\"dirs\":%llu,\"others\":%llu,\"bytes_read\":%llu,\"bytes_total\":%llu,"
		       "\"bytes_added\":%llu,\"blobs_added\":%llu,\"errors\":%llu,"
		       "\"duration_s\":%.3f}\n",
		       (unsigned long long)m->files_new, (unsigned long long)m->files_changed,
		       (unsigned long long)m->files_unchanged, (unsigned long long)m->dirs,
		       (unsigned long long)m->others, (unsigned long long)m->bytes_read,
		       (unsigned long long)m->bytes_total, (unsigned long long)m->bytes_added,
		       (unsigned long long)m->blobs_added, (unsigned long long)m->errors, secs);
	} else if (!c->quiet) {
		char rd[32], tot[32], ad[32];
		fmt_size(rd, sizeof(rd), m->bytes_read);
		fmt_size(tot, sizeof(tot), m->bytes_total);
		fmt_size(ad, sizeof(ad), m->bytes_added);
		printf("files: %llu new, %llu changed, %llu unchanged; %llu dirs\n"
		       "read %s of %s, added %s to the repository in %.1f s\n"
		       "snapshot %.8s saved\n",
		       (unsigned long long)m->files_new, (unsigned long long)m->files_changed,
		       (unsigned long long)m->files_unchanged, (unsigned long long)m->dirs, rd, tot,
		       ad, secs, s.idhex);
	}
	if (m->errors) {
		cli_error("backup: %llu file(s) could not be read completely (named above); the "
			  "snapshot holds what was read of them", (unsigned long long)m->errors);
		rc = EXIT_PARTIAL;
	}
	cairn_snapshot_free(&s);
out:
	cairn_repo_close(r);
	free(tags);
	free(ex);
	for (size_t i = 0; i < nexbuf; i++)
		free(exbuf[i]);
	return rc;
}

/* --- snapshots ------------------------------------------------------------------------- */

static int filter_opt(int ch, cairn_snapshot_filter *f)
{
	switch (ch) {
	case 'C': f->client = optarg; return 1;
	case 'T': f->tag = optarg; return 1;
	case 'P': f->path = optarg; return 1;
	case 'H': f->host = optarg; return 1;
	}
	return 0;
}

#define FILTER_OPTS                                                                         \
	{"client", 1, 0, 'C'}, {"tag", 1, 0, 'T'}, {"path", 1, 0, 'P'}, {"host", 1, 0, 'H'}

static void print_snap_json(const cairn_snapshot *s)
{
	char t[64];
	fmt_time(t, sizeof(t), s->time_ns, 1);
	printf("{\"id\":\"%s\",\"short_id\":\"%.8s\",\"time\":\"%s\",\"client\":", s->idhex,
	       s->idhex, t);
	json_str(stdout, s->client);
	printf(",\"hostname\":");
	json_str(stdout, s->hostname);
	printf(",\"username\":");
	json_str(stdout, s->username);
	printf(",\"paths\":[");
	for (size_t i = 0; i < s->npaths; i++) {
		if (i)
			putchar(',');
		json_str(stdout, s->paths[i]);
	}
	printf("],\"tags\":[");
	for (size_t i = 0; i < s->ntags; i++) {
		if (i)
			putchar(',');
		json_str(stdout, s->tags[i]);
	}
	char tree[65];
	cairn_hex(tree, s->tree, 32);
	printf("],\"tree\":\"%s\",\"bytes_total\":%llu,\"bytes_added\":%llu,\"errors\":%llu}", tree,
	       (unsigned long long)s->summary.bytes_total,
	       (unsigned long long)s->summary.bytes_added, (unsigned long long)s->summary.errors);
}

int cmd_snapshots(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {FILTER_OPTS, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
	cairn_snapshot_filter f = {0};
	int ch, rc;
	optind = 1;
	while ((ch = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		if (ch == 'h') {
			puts("usage: cairn -r REPO snapshots [--client C] [--tag T] [--path P] "
			     "[--host H] [--json]");
			return EXIT_OK;
		}
		if (!filter_opt(ch, &f))
			return cli_bad_option("snapshots", ch, argv);
	}
	if (optind != argc)
		return cli_bad_usage("snapshots", "unexpected argument");
	cairn_repo *r;
	if ((rc = cli_open(c, &r, 1)))
		return rc;
	cairn_snapshot *v;
	size_t n;
	rc = cairn_snapshots_list(r, &v, &n);
	if (rc < 0) {
		int code = cli_fail("snapshots", rc);
		cairn_repo_close(r);
		return code;
	}
	if (c->json)
		putchar('[');
	else if (!c->quiet)
		printf("%-8s  %-19s  %-16s  %-10s  %s\n", "ID", "Time", "Client", "Size", "Paths");
	int first = 1;
	for (size_t i = 0; i < n; i++) {
		const cairn_snapshot *s = &v[i];
		cairn_snapshot_filter g = f;
		int ok = (!g.client || !strcmp(g.client, s->client)) &&
			 (!g.host || !strcmp(g.host, s->hostname));
		if (ok && g.tag) {
			ok = 0;
			for (size_t k = 0; k < s->ntags; k++)
				ok |= !strcmp(s->tags[k], g.tag);
		}
		if (ok && g.path) {
			ok = 0;
			for (size_t k = 0; k < s->npaths; k++)
				ok |= !strcmp(s->paths[k], g.path);
		}
		if (!ok)
			continue;
		if (c->json) {
			if (!first)
				putchar(',');
			print_snap_json(s);
		} else {
			char t[64], sz[32];
			fmt_time(t, sizeof(t), s->time_ns, 0);
			fmt_size(sz, sizeof(sz), s->summary.bytes_total);
			printf("%.8s  %s  %-16s  %-10s  %s", s->idhex, t, s->client, sz,
			       s->npaths ? s->paths[0] : "");
			for (size_t k = 1; k < s->npaths; k++)
				printf(", %s", s->paths[k]);
			for (size_t k = 0; k < s->ntags; k++)
				printf("%s%s", k ? "," : "  [", s->tags[k]);
			printf("%s\n", s->ntags ? "]" : "");
		}
		first = 0;
	}
	if (c->json)
		puts("]");
	cairn_snapshots_free(v, n);
	cairn_repo_close(r);
	return EXIT_OK;
}

/* --- ls --------------------------------------------------------------------------------- */

typedef struct ls_ctx {
	cli *c;
	int first, lng;
} ls_ctx;

static void print_escaped(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f || *p == '\\')
			printf("\\x%02x", *p);
		else
			putchar(*p);
	}
}

static int ls_cb(void *payload, const cairn_entry *e)
{
	ls_ctx *x = payload;
	static const char types[] = "?-dlpcbs";
	if (x->c->json) {
		printf("%s{\"path\":", x->first ? "" : ",\n");
		json_str(stdout, e->path);
		printf(",\"type\":%u,\"mode\":%u,\"uid\":%u,\"gid\":%u,\"size\":%llu,\"mtime_ns\":%lld}",
		       e->type, e->mode, e->uid, e->gid, (unsigned long long)e->size,
		       (long long)e->mtime_ns);
	} else if (x->lng) {
		char t[64];
		fmt_time(t, sizeof(t), e->mtime_ns, 0);
		printf("%c%04o %5u %5u %12llu %s ", types[e->type < 8 ? e->type : 0], e->mode, e->uid,
		       e->gid, (unsigned long long)e->size, t);
		print_escaped(e->path);
		if (e->link) {
			printf(" -> ");
			print_escaped(e->link);
		}
		putchar('\n');
	} else {
		print_escaped(e->path);
		putchar('\n');
	}
	x->first = 0;
	return 0;
}

int cmd_ls(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {FILTER_OPTS, {"long", 0, 0, 'l'}, {"help", 0, 0, 'h'},
					   {0, 0, 0, 0}};
	cairn_snapshot_filter f = {0};
	ls_ctx x = {c, 1, 0};
	int ch, rc;
	optind = 1;
	while ((ch = getopt_long(argc, argv, ":lh", lo, NULL)) != -1) {
		if (ch == 'l')
			x.lng = 1;
		else if (ch == 'h') {
			puts("usage: cairn -r REPO ls [-l] SNAPSHOT [PATH]");
			return EXIT_OK;
		} else if (!filter_opt(ch, &f))
			return cli_bad_option("ls", ch, argv);
	}
	if (optind >= argc || argc - optind > 2)
		return cli_bad_usage("ls", "need SNAPSHOT and at most one PATH");
	cairn_repo *r;
	if ((rc = cli_open(c, &r, 1)))
		return rc;
	cairn_snapshot s;
	rc = cairn_snapshot_find(r, argv[optind], &f, &s);
	if (rc == 0) {
		if (c->json)
			putchar('[');
		rc = cairn_ls(r, &s, optind + 1 < argc ? argv[optind + 1] : NULL, ls_cb, &x);
		if (c->json)
			puts("]");
		cairn_snapshot_free(&s);
	}
	int code = rc < 0 ? cli_fail("ls", rc) : EXIT_OK;
	cairn_repo_close(r);
	return code;
}

/* --- restore ----------------------------------------------------------------------------- */

int cmd_restore(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {FILTER_OPTS,
					   {"target", 1, 0, 't'},
					   {"include", 1, 0, 'i'},
					   {"verify-only", 0, 0, 'V'},
					   {"no-owner", 0, 0, 'O'},
					   {"help", 0, 0, 'h'},
					   {0, 0, 0, 0}};
	cairn_snapshot_filter f = {0};
	cairn_restore_opts o = CAIRN_RESTORE_OPTS_INIT;
	const char **inc = calloc((size_t)argc, sizeof(char *));
	int ch, rc;
	optind = 1;
	while ((ch = getopt_long(argc, argv, ":t:i:h", lo, NULL)) != -1) {
		switch (ch) {
		case 't': o.target = optarg; break;
		case 'i': inc[o.nincludes++] = optarg; break;
		case 'V': o.verify_only = 1; break;
		case 'O': o.no_owner = 1; break;
		case 'h':
			puts("usage: cairn -r REPO restore SNAPSHOT --target DIR [--include PATH]... "
			     "[--verify-only] [--no-owner]");
			free(inc);
			return EXIT_OK;
		default:
			if (!filter_opt(ch, &f)) {
				free(inc);
				return cli_bad_option("restore", ch, argv);
			}
		}
	}
	if (optind + 1 != argc) {
		free(inc);
		return cli_bad_usage("restore", "need exactly one SNAPSHOT");
	}
	if (!o.target && !o.verify_only) {
		free(inc);
		return cli_bad_usage("restore", "--target DIR is required (or --verify-only)");
	}
	o.includes = inc;
	cairn_repo *r;
	if ((rc = cli_open(c, &r, 1))) {
		free(inc);
		return rc;
	}
	cairn_snapshot s;
	cairn_restore_result res;
	rc = cairn_snapshot_find(r, argv[optind], &f, &s);
	if (rc < 0) {
		int code = cli_fail("restore", rc);
		cairn_repo_close(r);
		free(inc);
		return code;
	}
	rc = cairn_restore(r, &s, &o, &res, cli_warn, c);
	double secs = (double)res.duration_ns / 1e9;
	if (c->json) {
		printf("{\"message_type\":\"summary\",\"snapshot_id\":\"%s\",\"files\":%llu,"
		       "\"dirs\":%llu,\"others\":%llu,\"bytes\":%llu,\"errors\":%llu,"
		       "\"duration_s\":%.3f,\"first_byte_s\":%.3f}\n",
		       s.idhex, (unsigned long long)res.files, (unsigned long long)res.dirs,
		       (unsigned long long)res.others, (unsigned long long)res.bytes,
		       (unsigned long long)res.errors, secs, (double)res.first_byte_ns / 1e9);
	} else if (!c->quiet) {
		char b[32];
		fmt_size(b, sizeof(b), res.bytes);
		printf("%s snapshot %.8s: %llu files, %llu dirs, %s in %.1f s (%.0f MiB/s)\n",
		       o.verify_only ? "verified" : "restored", s.idhex, (unsigned long long)res.files,
		       (unsigned long long)res.dirs, b, secs,
		       secs > 0 ? (double)res.bytes / 1048576.0 / secs : 0.0);
	}
	cairn_snapshot_free(&s);
	cairn_repo_close(r);
	free(inc);
	if (rc < 0) {
		cli_error("restore: %llu error(s); see the warnings above",
			  (unsigned long long)res.errors);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}
