/*
 * sched.h - the scheduler and alerting core's public header. For now: the
 * configuration file (YAML) shared by `cairn --config` and, later, cairnd.
 *
 * The configuration is strict: an unknown key, a wrong type or a missing
 * required field is an error naming the file and the path of the field
 * ("repositories.acme.targets[1].url: missing"), so a typo never silently
 * changes where backups go. Reference: docs/CONFIG.md.
 */
#ifndef CAIRN_SCHED_H
#define CAIRN_SCHED_H

#include <stddef.h>

#include "targets/target.h"

typedef struct cairn_cfg_target {
	char *url;              /* /path, local:/path, rados:POOL[/NS], s3:http://HOST:PORT/BUCKET[/PREFIX] */
	char *site;             /* site / region label */
	char *ceph_conf;        /* rados: cluster configuration (default $CEPH_CONF, /etc/ceph/ceph.conf) */
	char *credentials_file; /* s3: file with AWS_ACCESS_KEY_ID=... and AWS_SECRET_ACCESS_KEY=... */
	unsigned timeout_s;     /* rados/s3 operation timeout; 0 = default (30 s) */
} cairn_cfg_target;

typedef struct cairn_cfg_repo {
	char *name;
	char *password_file;    /* readable by root only */
	char *journal;          /* repair journal of the replica set */
	char *cache_dir;
	unsigned min_copies;    /* 0 = all targets */
	/* restore drill policy */
	int64_t drill_interval_ns; /* a passing drill of every target at least this often
				    * (default 30 days, never more than 365 days) */
	double drill_sample;    /* share of files per drill (default 1 = everything) */
	char *drill_sandbox;    /* restore under this directory (default: verify without writing) */
	int drill_compare_live; /* compare unchanged files with the live source */
	size_t ntargets;
	cairn_cfg_target *targets;
} cairn_cfg_repo;

typedef struct cairn_config {
	char *path;
	size_t nrepos;
	cairn_cfg_repo *repos;
} cairn_config;

/** Load and validate a configuration file. @return 0, -ENOENT, -EINVAL (message says where). */
int cairn_config_load(cairn_config **out, const char *path);
void cairn_config_free(cairn_config *c);
#define CAIRN_DRILL_DEFAULT_NS (30ll * 86400 * 1000000000)
#define CAIRN_DRILL_FLOOR_NS (365ll * 86400 * 1000000000)

/** Parse a duration such as 30d, 12h, 90m, 1y, 2w (0 or -1). */
int cairn_parse_duration(const char *s, int64_t *out_ns);

/** The repository named @p name, or NULL. */
const cairn_cfg_repo *cairn_config_repo(const cairn_config *c, const char *name);
/**
 * Open the repository's target: the single target, or a replica set of all
 * of them (in the order given: nearest first) with its min_copies and journal.
 */
int cairn_config_open_target(const cairn_cfg_repo *r, cairn_target **out);

#endif
