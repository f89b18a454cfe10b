/*
 * cmd_maint.c - cat, forget, prune, check, key, stats.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "sched/sched.h"
#include "verify/verify.h"

static int finish(cairn_repo *r, const char *what, int rc)
{
	int code = rc < 0 ? cli_fail(what, rc) : EXIT_OK;
	cairn_repo_close(r);
	return code;
}

/* --- cat -------------------------------------------------------------------------------- */

int cmd_cat(cli *c, int argc, char **argv)
{
	if (argc < 2 || argc > 3 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs("usage: cairn -r REPO cat config | index ID | snapshot ID | tree ID | "
		      "key ID\n", argc < 2 || argc > 3 ? stderr : stdout);
		return argc < 2 || argc > 3 ? EXIT_USAGE : EXIT_OK;
	}
	char what[200];
	const char *kind = argv[1];
	if (!strcmp(kind, "config") && argc == 2)
		snprintf(what, sizeof(what), "config");
	else if (argc == 3 && !strcmp(kind, "index"))
		snprintf(what, sizeof(what), "index/%.128s", argv[2]);
	else if (argc == 3 && !strcmp(kind, "snapshot"))
		snprintf(what, sizeof(what), "snapshots/%.128s", argv[2]);
	else if (argc == 3 && !strcmp(kind, "tree"))
		snprintf(what, sizeof(what), "tree/%.128s", argv[2]);
	else if (argc == 3 && !strcmp(kind, "key"))
		snprintf(what, sizeof(what), "keys/%.128s", argv[2]);
	else
		return cli_bad_usage("cat", "expected config, index ID, snapshot ID, tree ID or key ID");
	cairn_repo *r;
	int rc;
	if ((rc = cli_open(c, &r, 1)))
		return rc;
	/* a snapshot may be given by prefix or 'latest' */
	if (!strcmp(kind, "snapshot") || !strcmp(kind, "tree")) {
		cairn_snapshot s;
		if (strlen(argv[2]) != 64 && cairn_snapshot_find(r, argv[2], NULL, &s) == 0) {
			if (!strcmp(kind, "snapshot"))
				snprintf(what, sizeof(what), "snapshots/%s", s.idhex);
			else {
				char h[65];
				cairn_hex(h, s.tree, 32);
				snprintf(what, sizeof(what), "tree/%s", h);
			}
			cairn_snapshot_free(&s);
		}
	}
	cairn_buf out = CAIRN_BUF_INIT;
	rc = cairn_cat(r, what, &out);
	if (rc == 0)
		fwrite(out.data, 1, out.len, stdout);
	cairn_buf_free(&out);
	return finish(r, "cat", rc);
}

/* --- forget ------------------------------------------------------------------------------ */

int cmd_forget(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {
	    {"keep-last", 1, 0, 'l'},   {"keep-hourly", 1, 0, 'H'}, {"keep-daily", 1, 0, 'd'},
	    {"keep-weekly", 1, 0, 'w'}, {"keep-monthly", 1, 0, 'm'}, {"keep-yearly", 1, 0, 'y'},
	    {"keep-within", 1, 0, 'W'}, {"keep-tag", 1, 0, 'k'},    {"client", 1, 0, 'C'},
	    {"dry-run", 0, 0, 'n'},     {"prune", 0, 0, 'p'},       {"help", 0, 0, 'h'},
	    {0, 0, 0, 0}};
	cairn_retention pol = {0};
	const char **keep_tags = calloc((size_t)argc, sizeof(char *));
	const char *client = NULL;
	int dry = 0, prune = 0, policy = 0, ch, rc;
	optind = 1;
	while ((ch = getopt_long(argc, argv, ":nh", lo, NULL)) != -1) {
		int *slot = NULL;
		switch (ch) {
		case 'l': slot = &pol.keep_last; break;
		case 'H': slot = &pol.keep_hourly; break;
		case 'd': slot = &pol.keep_daily; break;
		case 'w': slot = &pol.keep_weekly; break;
		case 'm': slot = &pol.keep_monthly; break;
		case 'y': slot = &pol.keep_yearly; break;
		case 'W':
			if (cairn_parse_duration(optarg, &pol.keep_within_ns) < 0) {
				free(keep_tags);
				return cli_bad_usage("forget", "--keep-within takes a duration like 30d, "
							   "12h, 1y6M");
			}
			policy = 1;
			continue;
		case 'k': keep_tags[pol.nkeep_tags++] = optarg; policy = 1; continue;
		case 'C': client = optarg; continue;
		case 'n': dry = 1; continue;
		case 'p': prune = 1; continue;
		case 'h':
			puts("usage: cairn -r REPO forget [--keep-last N] [--keep-hourly N] "
			     "[--keep-daily N] [--keep-weekly N] [--keep-monthly N] [--keep-yearly N] "
			     "[--keep-within DURATION] [--keep-tag TAG] [--client NAME] [--dry-run] "
			     "[--prune] [SNAPSHOT...]");
			free(keep_tags);
			return EXIT_OK;
		default:
			free(keep_tags);
			return cli_bad_option("forget", ch, argv);
		}
		char *end;
		long v = strtol(optarg, &end, 10);
		if (*end || v < 0 || v > 1000000) {
			free(keep_tags);
			return cli_bad_usage("forget", "keep counts must be whole numbers");
		}
		*slot = (int)v;
		policy = 1;
	}
	pol.keep_tags = keep_tags;
	int explicit_ids = optind < argc;
	if (!policy && !explicit_ids) {
		free(keep_tags);
		return cli_bad_usage("forget", "no policy and no snapshots given; refusing to remove "
					   "everything");
	}
	cairn_repo *r;
	if ((rc = cli_open(c, &r, 0))) {
		free(keep_tags);
		return rc;
	}
	cairn_snapshot *v;
	size_t n;
	if ((rc = cairn_snapshots_list(r, &v, &n)) < 0) {
		free(keep_tags);
		return finish(r, "forget", rc);
	}
	int *keep = calloc(n ? n : 1, sizeof(int));
	if (policy)
		cairn_retention_apply(&pol, v, n, cairn_wall_ns(), keep);
	else
		for (size_t i = 0; i < n; i++)
			keep[i] = 1;
	for (int a = optind; a < argc; a++) {
		int hits = 0;
		for (size_t i = 0; i < n; i++)
			if (!strncmp(v[i].idhex, argv[a], strlen(argv[a]))) {
				keep[i] = 0;
				hits++;
			}
		if (hits != 1) {
			cli_error("forget: '%s' matches %d snapshots (need exactly one)", argv[a],
				  hits);
			cairn_snapshots_free(v, n);
			free(keep);
			free(keep_tags);
			cairn_repo_close(r);
			return EXIT_USAGE;
		}
	}
	size_t removed = 0, kept = 0;
	int failed = 0;
	if (c->json)
		printf("{\"keep\":[");
	for (int pass = 0; pass < 2; pass++) {
		int first = 1;
		if (c->json && pass == 1)
			printf("],\"remove\":[");
		for (size_t i = 0; i < n; i++) {
			if (client && strcmp(v[i].client, client))
				continue;
			if ((pass == 0) != (keep[i] != 0))
				continue;
			char t[64];
			fmt_time(t, sizeof(t), v[i].time_ns, 0);
			if (c->json)
				printf("%s\"%s\"", first ? "" : ",", v[i].idhex);
			else if (!c->quiet)
				printf("%s %.8s  %s  %s\n", pass ? (dry ? "would remove" : "remove")
								 : "keep  ",
				       v[i].idhex, t, v[i].client);
			first = 0;
			if (pass == 0) {
				kept++;
				continue;
			}
			removed++;
			if (!dry && cairn_snapshot_delete(r, v[i].idhex) < 0) {
				cli_error("forget: %s", cairn_error_last());
				failed = 1;
			}
		}
	}
	if (c->json)
		printf("]}\n");
	else if (!c->quiet)
		printf("%zu snapshot(s) kept, %zu %s\n", kept, removed,
		       dry ? "would be removed" : "removed");
	cairn_snapshots_free(v, n);
	free(keep);
	free(keep_tags);
	if (prune && !dry && !failed) {
		cairn_prune_opts po = CAIRN_PRUNE_OPTS_INIT;
		cairn_prune_result pr;
		rc = cairn_prune(r, &po, &pr);
		if (rc == 0 && !c->quiet && !c->json)
			printf("prune: %llu pack(s) deleted, %llu repacked\n",
			       (unsigned long long)pr.packs_deleted,
			       (unsigned long long)pr.packs_repacked);
		return finish(r, "prune", rc);
	}
	cairn_repo_close(r);
	return failed ? EXIT_FAIL : EXIT_OK;
}

/* --- prune ---------------------------------------------------------------------------------- */

int cmd_prune(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {{"dry-run", 0, 0, 'n'},
					   {"repack-threshold", 1, 0, 't'},
					   {"help", 0, 0, 'h'},
					   {0, 0, 0, 0}};
	cairn_prune_opts o = CAIRN_PRUNE_OPTS_INIT;
	int ch, rc;
	optind = 1;
	while ((ch = getopt_long(argc, argv, ":nh", lo, NULL)) != -1) {
		switch (ch) {
		case 'n': o.dry_run = 1; break;
		case 't': {
			char *end;
			double v = strtod(optarg, &end);
			if (*end == '%')
				end++;
			if (*end || v < 0 || v > 100)
				return cli_bad_usage("prune", "--repack-threshold takes a percentage 0..100");
			o.repack_threshold = v / 100.0;
			break;
		}
		case 'h':
			puts("usage: cairn -r REPO prune [--dry-run] [--repack-threshold PERCENT]");
			return EXIT_OK;
		default:
			return cli_bad_option("prune", ch, argv);
		}
	}
	if (optind != argc)
		return cli_bad_usage("prune", "unexpected argument");
	cairn_repo *r;
	if ((rc = cli_open(c, &r, 0)))
		return rc;
	if (c->progress) {
		o.progress = cli_progress;
		o.progress_payload = c;
	}
	cairn_prune_result res;
	rc = cairn_prune(r, &o, &res);
	cli_progress_done(c);
	if (rc == 0) {
		char fr[32], tot[32];
		fmt_size(fr, sizeof(fr), res.bytes_freed);
		fmt_size(tot, sizeof(tot), res.bytes_total);
		if (c->json)
			printf("{\"packs_total\":%llu,\"packs_deleted\":%llu,\"packs_repacked\":%llu,"
			       "\"blobs_total\":%llu,\"blobs_unused\":%llu,\"bytes_freed\":%llu,"
			       "\"dry_run\":%s}\n",
			       (unsigned long long)res.packs_total,
			       (unsigned long long)res.packs_deleted,
			       (unsigned long long)res.packs_repacked,
			       (unsigned long long)res.blobs_total,
			       (unsigned long long)res.blobs_unused,
			       (unsigned long long)res.bytes_freed, o.dry_run ? "true" : "false");
		else if (!c->quiet)
			printf("%s%llu of %llu packs deleted, %llu repacked; %llu of %llu blobs "
			       "unused; %s of %s freed\n",
			       o.dry_run ? "dry run: " : "", (unsigned long long)res.packs_deleted,
			       (unsigned long long)res.packs_total,
			       (unsigned long long)res.packs_repacked,
			       (unsigned long long)res.blobs_unused,
			       (unsigned long long)res.blobs_total, fr, tot);
	}
	return finish(r, "prune", rc);
}

/* --- check ----------------------------------------------------------------------------------- */

static void check_report(void *payload, int severity, const char *msg)
{
	cli *c = payload;
	if (c->progress)
		fputs("\r\033[K", stderr);
	fprintf(stderr, "%s: %s\n",
		severity == CAIRN_CHECK_WARNING ? "warning"
		: severity == CAIRN_CHECK_AFFECTED ? "affected"
						   : "error",
		msg);
}

int cmd_check(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {{"read-data", 0, 0, 'd'},
					   {"read-data-subset", 1, 0, 's'},
					   {"seed", 1, 0, 'S'},
					   {"help", 0, 0, 'h'},
					   {0, 0, 0, 0}};
	cairn_check_opts o = CAIRN_CHECK_OPTS_INIT;
	int ch, rc;
	optind = 1;
	while ((ch = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		switch (ch) {
		case 'd': o.read_data = 1; break;
		case 's': {
			char *end;
			double v = strtod(optarg, &end);
			if (*end != '%' || end[1] || v <= 0 || v > 100)
				return cli_bad_usage("check", "--read-data-subset takes a percentage like 10%");
			o.read_data = 1;
			o.subset = v / 100.0;
			break;
		}
		case 'S': o.seed = strtoull(optarg, NULL, 10); break;
		case 'h':
			puts("usage: cairn -r REPO check [--read-data | --read-data-subset N%] "
			     "[--seed N]");
			return EXIT_OK;
		default:
			return cli_bad_option("check", ch, argv);
		}
	}
	if (optind != argc)
		return cli_bad_usage("check", "unexpected argument");
	cairn_repo *r;
	if ((rc = cli_open(c, &r, 1)))
		return rc;
	if (c->progress) {
		o.progress = cli_progress;
		o.progress_payload = c;
	}
	cairn_check_result res;
	rc = cairn_check(r, &o, &res, check_report, c);
	cli_progress_done(c);
	if (c->json)
		printf("{\"snapshots\":%llu,\"trees\":%llu,\"files\":%llu,\"packs\":%llu,"
		       "\"packs_read\":%llu,\"blobs_read\":%llu,\"bytes_read\":%llu,\"errors\":%llu,"
		       "\"warnings\":%llu,\"affected\":%llu,\"ok\":%s}\n",
		       (unsigned long long)res.snapshots, (unsigned long long)res.trees,
		       (unsigned long long)res.files, (unsigned long long)res.packs,
		       (unsigned long long)res.packs_read, (unsigned long long)res.blobs_read,
		       (unsigned long long)res.bytes_read, (unsigned long long)res.errors,
		       (unsigned long long)res.warnings, (unsigned long long)res.affected,
		       rc == 0 ? "true" : "false");
	else if (!c->quiet)
		printf("checked %llu snapshots, %llu trees, %llu files, %llu packs%s: %s\n",
		       (unsigned long long)res.snapshots, (unsigned long long)res.trees,
		       (unsigned long long)res.files, (unsigned long long)res.packs,
		       o.read_data ? " (data read)" : "",
		       rc == 0 ? "no errors" : "ERRORS FOUND");
	cairn_repo_close(r);
	if (rc < 0) {
		cli_error("check: %s", "the repository has errors (listed above)");
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

/* --- key ----------------------------------------------------------------------------------- */

int cmd_key(cli *c, int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs("usage: cairn -r REPO key list | add | remove ID | passwd\n"
		      "       add and passwd: [--new-password-file FILE] [--kdf-memory KIB|SIZE] "
		      "[--kdf-time N]\n"
		      "The new passphrase comes from CAIRN_NEW_PASSWORD or --new-password-file.\n"
		      "A new key takes the current key's Argon2id cost unless --kdf-* say otherwise.\n",
		      argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	const char *sub = argv[1], *newfile = NULL, *id = NULL;
	cairn_kdf_cost cost = {0, 0};
	int costed = 0;
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--new-password-file") && i + 1 < argc) {
			newfile = argv[++i];
		} else if ((!strcmp(argv[i], "--kdf-memory") || !strcmp(argv[i], "--kdf-time")) &&
			   i + 1 < argc) {
			int mem = !strcmp(argv[i], "--kdf-memory");
			int rc = cli_kdf_arg("key", mem, argv[i + 1], mem ? &cost.m_kib : &cost.t);
			if (rc)
				return rc;
			costed = 1;
			i++;
		} else if (!id && argv[i][0] != '-')
			id = argv[i];
		else
			return cli_bad_usage("key", "unexpected argument");
	}
	int rc;
	if (strcmp(sub, "list") && strcmp(sub, "add") && strcmp(sub, "remove") &&
	    strcmp(sub, "passwd"))
		return cli_bad_usage("key", "expected list, add, remove or passwd");
	if (!strcmp(sub, "remove") && !id)
		return cli_bad_usage("key", "remove needs a key id");
	if (id && strcmp(sub, "remove"))
		return cli_bad_usage("key", "unexpected argument");
	if (costed && strcmp(sub, "add") && strcmp(sub, "passwd"))
		return cli_bad_usage("key", "--kdf-memory and --kdf-time go with add or passwd");
	cairn_repo *r;
	if ((rc = cli_open(c, &r, 1)))
		return rc;
	if (!strcmp(sub, "list")) {
		cairn_keyinfo *k;
		size_t n;
		if ((rc = cairn_key_list(r, &k, &n)) == 0) {
			if (c->json)
				putchar('[');
			for (size_t i = 0; i < n; i++) {
				char t[64];
				fmt_time(t, sizeof(t), k[i].created_ns, c->json);
				if (c->json) {
					printf("%s{\"id\":\"%s\",\"current\":%s,\"created\":\"%s\","
					       "\"kdf\":{\"algorithm\":\"argon2id\",\"time\":%u,"
					       "\"memory_kib\":%u,\"lanes\":%u},\"label\":",
					       i ? "," : "", k[i].idhex, k[i].current ? "true" : "false",
					       t, k[i].kdf_t, k[i].kdf_m_kib, k[i].kdf_lanes);
					json_str(stdout, k[i].label);
					putchar('}');
				} else {
					printf("%c %s  %s  argon2id m=%u KiB t=%u p=%u  %s\n",
					       k[i].current ? '*' : ' ', k[i].idhex, t,
					       k[i].kdf_m_kib, k[i].kdf_t, k[i].kdf_lanes,
					       k[i].label);
				}
			}
			if (c->json)
				puts("]");
			free(k);
		}
		return finish(r, "key list", rc);
	}
	if (!strcmp(sub, "remove")) {
		rc = cairn_key_remove(r, id);
		if (rc == 0 && !c->quiet)
			printf("removed key %s\n", id);
		return finish(r, "key remove", rc);
	}
	char *np;
	if ((rc = cli_password(c, "CAIRN_NEW_PASSWORD", newfile, &np))) {
		cairn_repo_close(r);
		return rc;
	}
	char kid[17];
	if (!strcmp(sub, "add")) {
		rc = cairn_key_add(r, np, &cost, kid);
		if (rc == 0 && !c->quiet)
			printf("added key %s\n", kid);
	} else {
		rc = cairn_key_passwd(r, np, &cost);
		if (rc == 0 && !c->quiet)
			printf("passphrase changed\n");
	}
	if (rc == 0)
		warn_weak_kdf(c, cost.t, cost.m_kib);
	free(np);
	return finish(r, "key", rc);
}

/* --- stats ----------------------------------------------------------------------------------- */

int cmd_stats(cli *c, int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		puts("usage: cairn -r REPO stats [--json]");
		return EXIT_OK;
	}
	if (argc > 1)
		return cli_bad_usage("stats", "unexpected argument");
	cairn_repo *r;
	int rc;
	if ((rc = cli_open(c, &r, 1)))
		return rc;
	cairn_stats s;
	rc = cairn_repo_stats(r, &s);
	if (rc == 0) {
		double ratio = s.stored_bytes ? (double)s.raw_bytes / (double)s.stored_bytes : 0;
		double per = s.blobs ? (double)s.index_memory / (double)s.blobs : 0;
		if (c->json) {
			printf("{\"snapshots\":%llu,\"packs\":%llu,\"blobs\":%llu,\"data_blobs\":%llu,"
			       "\"tree_blobs\":%llu,\"raw_bytes\":%llu,\"unique_bytes\":%llu,"
			       "\"stored_bytes\":%llu,\"dedup_ratio\":%.3f,\"index_memory\":%zu,"
			       "\"index_bytes_per_blob\":%.1f}\n",
			       (unsigned long long)s.snapshots, (unsigned long long)s.packs,
			       (unsigned long long)s.blobs, (unsigned long long)s.data_blobs,
			       (unsigned long long)s.tree_blobs, (unsigned long long)s.raw_bytes,
			       (unsigned long long)s.unique_bytes, (unsigned long long)s.stored_bytes,
			       ratio, s.index_memory, per);
		} else {
			char raw[32], uniq[32], st[32];
			fmt_size(raw, sizeof(raw), s.raw_bytes);
			fmt_size(uniq, sizeof(uniq), s.unique_bytes);
			fmt_size(st, sizeof(st), s.stored_bytes);
			printf("snapshots:     %llu\n"
			       "raw size:      %s (all snapshots' files)\n"
			       "unique data:   %s in %llu chunks\n"
			       "stored size:   %s in %llu packs (%llu trees)\n"
			       "dedup ratio:   %.2fx (raw / stored)\n"
			       "index memory:  %.1f bytes per blob\n",
			       (unsigned long long)s.snapshots, raw, uniq,
			       (unsigned long long)s.data_blobs, st, (unsigned long long)s.packs,
			       (unsigned long long)s.tree_blobs, ratio, per);
		}
	}
	return finish(r, "stats", rc);
}

/* --- repair ------------------------------------------------------------------------------- */

static void repair_report(void *payload, const char *msg)
{
	(void)payload;
	printf("%s\n", msg);
}

int cmd_repair(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {{"dry-run", 0, 0, 'n'},
					   {"verify", 0, 0, 'V'},
					   {"index", 0, 0, 'X'},
					   {"help", 0, 0, 'h'},
					   {0, 0, 0, 0}};
	cairn_repair_opts o = CAIRN_REPAIR_OPTS_INIT;
	int ch, rc, index = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, ":nh", lo, NULL)) != -1) {
		switch (ch) {
		case 'n': o.dry_run = 1; break;
		case 'V': o.verify_all = 1; break;
		case 'X': index = 1; break;
		case 'h':
			puts("usage: cairn --config FILE -r NAME repair [--dry-run] [--verify]\n"
			     "       cairn -r REPO repair --index   (with the passphrase: rebuild the index\n"
			     "       from the packs, dropping damaged blobs, so backups store them again)\n"
			     "Copies what a target of the replica set lacks from a good copy on another,\n"
			     "replaces corrupt pack copies, finishes missed deletions. Needs no passphrase.\n"
			     "--verify reads and checks every pack copy (slow, like a scrub).");
			return EXIT_OK;
		default:
			return cli_bad_option("repair", ch, argv);
		}
	}
	if (optind != argc)
		return cli_bad_usage("repair", "unexpected argument");
	if (index) {
		/* keyed: rebuild the index from the packs that really authenticate */
		cairn_repo *r;
		if ((rc = cli_open(c, &r, 0)))
			return rc;
		cairn_reindex_result ri;
		rc = cairn_repair_index(r, &ri, c->quiet ? NULL : repair_report, c);
		if (c->json)
			printf("{\"packs\":%llu,\"packs_bad\":%llu,\"blobs_kept\":%llu,"
			       "\"blobs_dropped\":%llu,\"segments_replaced\":%llu}\n",
			       (unsigned long long)ri.packs, (unsigned long long)ri.packs_bad,
			       (unsigned long long)ri.blobs_kept, (unsigned long long)ri.blobs_dropped,
			       (unsigned long long)ri.segments_replaced);
		else if (!c->quiet)
			printf("index rebuilt from %llu packs: %llu blobs kept, %llu dropped, %llu packs "
			       "unreadable; %llu old segments replaced%s\n",
			       (unsigned long long)ri.packs, (unsigned long long)ri.blobs_kept,
			       (unsigned long long)ri.blobs_dropped, (unsigned long long)ri.packs_bad,
			       (unsigned long long)ri.segments_replaced,
			       ri.blobs_dropped || ri.packs_bad
				   ? "\nrun a backup to store the lost chunks again; 'cairn check' "
				     "names the snapshots that still miss them"
				   : "");
		cairn_repo_close(r);
		return rc < 0 ? cli_fail("repair", rc) : EXIT_OK;
	}
	cairn_target *t;
	if ((rc = cli_target(c, &t)))
		return rc;
	if (c->cfg_repo)
		o.journal = ((const cairn_cfg_repo *)c->cfg_repo)->journal;
	cairn_repair_result res;
	rc = cairn_repair(t, &o, &res, c->quiet ? NULL : repair_report, c);
	if (c->json)
		printf("{\"objects\":%llu,\"missing\":%llu,\"corrupt\":%llu,\"stale\":%llu,"
		       "\"copied\":%llu,\"deleted\":%llu,\"failed\":%llu,\"conflicts\":%llu}\n",
		       (unsigned long long)res.objects, (unsigned long long)res.missing,
		       (unsigned long long)res.corrupt, (unsigned long long)res.stale,
		       (unsigned long long)res.copied, (unsigned long long)res.deleted,
		       (unsigned long long)res.failed, (unsigned long long)res.conflicts);
	else if (!c->quiet)
		printf("%llu objects: %llu missing and %llu corrupt copies, %llu copied, %llu "
		       "deleted, %llu failed\n",
		       (unsigned long long)res.objects, (unsigned long long)res.missing,
		       (unsigned long long)res.corrupt, (unsigned long long)res.copied,
		       (unsigned long long)res.deleted, (unsigned long long)res.failed);
	cairn_target_close(t);
	if (rc < 0)
		return cli_fail("repair", rc);
	return EXIT_OK;
}

/* --- scrub -------------------------------------------------------------------------------- */

int cmd_scrub(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {{"target", 1, 0, 't'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
	const char *which = NULL;
	int ch, rc;
	optind = 1;
	while ((ch = getopt_long(argc, argv, ":t:h", lo, NULL)) != -1) {
		switch (ch) {
		case 't': which = optarg; break;
		case 'h':
			puts("usage: cairn [--config FILE] -r REPO scrub [--target NAME|SITE|NUMBER]\n"
			     "Reads every pack of one target (default: each in turn) and checks its "
			     "keyless\nchecksums, and compares its objects with the other targets'. "
			     "Needs no passphrase.");
			return EXIT_OK;
		default:
			return cli_bad_option("scrub", ch, argv);
		}
	}
	if (optind != argc)
		return cli_bad_usage("scrub", "unexpected argument");
	cairn_target *t;
	if ((rc = cli_target(c, &t)))
		return rc;
	size_t n = cairn_target_members(t), first = 0, last = n;
	if (which) {
		char *end;
		unsigned long k = strtoul(which, &end, 10);
		size_t found = n;
		if (!*end && *which)
			found = k;
		for (size_t i = 0; i < n && found == n; i++) {
			cairn_target *m = cairn_target_member(t, i);
			if (!strcmp(m->name, which) || (m->site && !strcmp(m->site, which)))
				found = i;
		}
		if (found >= n) {
			cli_error("scrub: no target '%s' in %s", which, t->name);
			cairn_target_close(t);
			return EXIT_USAGE;
		}
		first = found;
		last = found + 1;
	}
	const char *journal = c->cfg_repo ? ((const cairn_cfg_repo *)c->cfg_repo)->journal : NULL;
	int bad = 0;
	if (c->json)
		putchar('[');
	for (size_t i = first; i < last; i++) {
		cairn_scrub_result res;
		cairn_target *m = cairn_target_member(t, i);
		rc = cairn_scrub(t, i, journal, &res, c->quiet || c->json ? NULL : repair_report, c);
		if (rc < 0)
			bad = 1;
		if (c->json) {
			printf("%s{\"target\":", i > first ? "," : "");
			json_str(stdout, m->name);
			printf(",\"site\":");
			json_str(stdout, m->site ? m->site : "");
			printf(",\"packs\":%llu,\"bytes\":%llu,\"corrupt\":%llu,\"missing\":%llu,"
			       "\"orphaned\":%llu,\"mismatched\":%llu,\"seconds\":%.3f,\"ok\":%s}",
			       (unsigned long long)res.packs, (unsigned long long)res.bytes,
			       (unsigned long long)res.corrupt, (unsigned long long)res.missing,
			       (unsigned long long)res.orphaned, (unsigned long long)res.mismatched,
			       res.seconds, rc == 0 ? "true" : "false");
		} else if (!c->quiet) {
			printf("scrubbed %s: %llu packs, %.1f MiB in %.1f s (%.0f MiB/s): %llu corrupt, "
			       "%llu missing, %llu only here\n",
			       m->name, (unsigned long long)res.packs, (double)res.bytes / 1048576.0,
			       res.seconds,
			       res.seconds > 0 ? (double)res.bytes / 1048576.0 / res.seconds : 0.0,
			       (unsigned long long)res.corrupt, (unsigned long long)res.missing,
			       (unsigned long long)res.orphaned);
		}
	}
	if (c->json)
		puts("]");
	cairn_target_close(t);
	if (bad) {
		cli_error("scrub: problems found%s", journal ? " (journaled; run 'cairn repair')" : "");
		return EXIT_FAIL;
	}
	return EXIT_OK;
}
