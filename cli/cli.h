/*
 * cli.h - what the `cairn` subcommands share: global options, opening the
 * repository, output helpers (JSON, progress line) and exit codes.
 */
#ifndef CAIRN_CLI_H
#define CAIRN_CLI_H

#include <stdio.h>

#include "engine/engine.h"

/* Exit codes (documented in docs/CLI.md). */
#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define EXIT_PARTIAL 3       /* some files could not be read / restored */
#define EXIT_NO_REPO 10      /* no repository at that address */
#define EXIT_LOCKED 11       /* repository locked by another operation */
#define EXIT_WRONG_PASS 12   /* wrong passphrase */

typedef struct cli {
	const char *repo;
	const char *config;       /* --config FILE: -r names a repository in it */
	void *cfg;                /* the loaded configuration (cairn_config *) */
	const void *cfg_repo;     /* the repository entry (const cairn_cfg_repo *) */
	const char *password_file;
	const char *cache_dir;
	int no_cache;
	int json;
	int quiet;
	unsigned threads;
	int compression;      /* -1: repository default */
	int progress;         /* stderr is a terminal and not quiet/json */
	unsigned warnings;
	int read_member;      /* >= 0: open the repository reading only that member (drills) */
} cli;

/** Print "cairn: <msg>" on stderr, one line. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/** Exit code for an engine error code. */
int cli_exit_code(int rc);
/** Report an engine failure (cairn_error_last) and return its exit code. */
int cli_fail(const char *what, int rc);
/**
 * Report the option getopt_long stopped at (@p ch ':' for a missing value, '?' for an
 * unknown option; optstrings start with ':' and opterr is 0). Returns EXIT_USAGE.
 */
int cli_bad_option(const char *cmd, int ch, char **argv);

/** The passphrase (CAIRN_PASSWORD, --password-file, CAIRN_PASSWORD_FILE, or a prompt). */
int cli_password(cli *c, const char *env, const char *file_opt, char **out);
/** Open the target named by -r. */
int cli_target(cli *c, cairn_target **out);
/** Open the repository (-r and the passphrase). Returns an exit code on failure (> 0). */
int cli_open(cli *c, cairn_repo **out, int no_lock);

void cli_warn(void *payload, const char *msg);
void cli_progress(void *payload, const char *line);
void cli_progress_done(cli *c);

/** Print a JSON string literal (with quotes), escaping as needed. */
void json_str(FILE *f, const char *s);
/** Format a time (ns) as "YYYY-MM-DD HH:MM:SS" local or RFC 3339 for JSON. */
void fmt_time(char *out, size_t cap, int64_t ns, int rfc3339);
/** Human size, e.g. "1.5 GiB". */
void fmt_size(char *out, size_t cap, uint64_t bytes);
/** Parse sizes like 512K, 16M, 1G. @return 0 or -1. */
int parse_size(const char *s, uint64_t *out);
/** A usage error of @p cmd: one line naming it and its --help. @return EXIT_USAGE. */
int cli_bad_usage(const char *cmd, const char *msg);
/**
 * The value @p s of --kdf-memory (@p memory: KiB as a plain number; with a
 * unit such as 64M or 65536K, bytes in whole KiB) or --kdf-time (a plain
 * number of passes) into @p out. @return 0, or EXIT_USAGE after saying why.
 */
int cli_kdf_arg(const char *cmd, int memory, const char *s, uint32_t *out);
/** Unless -q: a warning on stderr if a key's Argon2id cost is below OWASP's least. */
void warn_weak_kdf(const cli *c, uint32_t t, uint32_t m_kib);

/* subcommands: argc/argv start at the subcommand name */
int cmd_init(cli *c, int argc, char **argv);
int cmd_backup(cli *c, int argc, char **argv);
int cmd_snapshots(cli *c, int argc, char **argv);
int cmd_ls(cli *c, int argc, char **argv);
int cmd_restore(cli *c, int argc, char **argv);
int cmd_cat(cli *c, int argc, char **argv);
int cmd_forget(cli *c, int argc, char **argv);
int cmd_prune(cli *c, int argc, char **argv);
int cmd_check(cli *c, int argc, char **argv);
int cmd_key(cli *c, int argc, char **argv);
int cmd_stats(cli *c, int argc, char **argv);
int cmd_repair(cli *c, int argc, char **argv);
int cmd_scrub(cli *c, int argc, char **argv);
int cmd_drill(cli *c, int argc, char **argv);
/* status, jobs, runs, incidents, incident, ack, resolve, run: cairnd's API (cmd_daemon.c) */
int cmd_daemon(cli *c, int argc, char **argv);

#endif
