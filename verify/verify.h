/*
 * verify.h - verification without and with keys: repair (keyless) for now;
 * scrub and restore drills build on it.
 */
#ifndef CAIRN_VERIFY_H
#define CAIRN_VERIFY_H

#include <stdint.h>

#include "engine/engine.h"
#include "targets/target.h"

typedef struct cairn_repair_opts {
	unsigned version;      /* 1 */
	int dry_run;           /* report what would be copied or deleted */
	int verify_all;        /* read and check every pack copy (else: suspect ones only) */
	const char *journal;   /* the replica set's repair journal (read, then truncated) */
} cairn_repair_opts;
#define CAIRN_REPAIR_OPTS_INIT {1, 0, 0, NULL}

typedef struct cairn_repair_result {
	uint64_t objects;      /* distinct objects seen */
	uint64_t missing;      /* copies missing on some member */
	uint64_t corrupt;      /* copies found corrupt */
	uint64_t stale;        /* copies a member kept after a deletion it missed */
	uint64_t copied, deleted, failed, conflicts;
} cairn_repair_result;

/**
 * Bring every member of a replica set level, without any key: copy what a
 * member lacks from a good copy on another member (packs are checked with
 * their keyless checksums before they are copied), replace corrupt pack
 * copies, finish deletions a member missed (from the journal). Each action
 * and problem goes to @p report naming the object and the member.
 * @return 0 if everything is level; -EIO if something could not be repaired;
 *         -EINVAL if @p t is not a replica set.
 */
int cairn_repair(cairn_target *t, const cairn_repair_opts *o, cairn_repair_result *res,
		 void (*report)(void *payload, const char *msg), void *payload);

#endif

/* --- scrub ----------------------------------------------------------------------------- */

typedef struct cairn_scrub_result {
	uint64_t packs, bytes;      /* packs read from the scrubbed member */
	uint64_t corrupt;           /* packs whose checksums fail */
	uint64_t missing;           /* objects other members have and this one lacks */
	uint64_t orphaned;          /* objects only this member has */
	uint64_t mismatched;        /* objects whose size differs from the other copies */
	double seconds;
} cairn_scrub_result;

/**
 * Keyless scrub of member @p member of @p t (any target: then member 0 is the
 * target itself): read every pack, verify its XXH3-128 segment and whole-pack
 * checksums, and compare the member's listing with the other members'.
 * Problems go to @p report naming object and member, and (for replica sets)
 * to the journal @p journal as "bad"/"missing" lines that `repair` acts on.
 * @return 0 if clean, -EBADMSG if anything is wrong.
 */
int cairn_scrub(cairn_target *t, size_t member, const char *journal, cairn_scrub_result *res,
		void (*report)(void *payload, const char *msg), void *payload);

/* --- restore drills ------------------------------------------------------------------------ */

typedef struct cairn_drill_opts {
	unsigned version;        /* 1 */
	const char *snapshot;    /* id prefix, "latest" (default) or "random" (seeded) */
	const char *client;      /* only snapshots of this client */
	double sample;           /* share of files to restore (0 or 1 = everything) */
	uint64_t seed;           /* sample and "random" choice; 0 = derived from the time */
	const char *sandbox;     /* restore below this directory (removed afterwards); NULL = verify
				  * in memory without writing */
	int compare_live;        /* with a sandbox: compare restored files that are unchanged since
				  * the snapshot with the live source */
	int keep_sandbox;        /* leave the restored files for inspection */
} cairn_drill_opts;
#define CAIRN_DRILL_OPTS_INIT {1, "latest", NULL, 0, 0, NULL, 0, 0}

typedef struct cairn_drill_report {
	char repository[65];     /* repository id */
	char client[256];
	char snapshot[65];
	char target[512], site[128];
	int64_t time_ns;         /* when the drill ran */
	int64_t snapshot_time_ns;
	double sample;
	uint64_t seed;
	uint64_t files, bytes;   /* restored and verified */
	uint64_t files_total, bytes_total;
	uint64_t meta_checked, live_compared;
	double seconds, mb_per_s, first_byte_s;
	uint64_t errors;
	char first_error[512];
	int passed;
} cairn_drill_report;

/**
 * Run a restore drill on @p r (open it with read_member to drill one copy):
 * restore the chosen snapshot, or a seeded sample of it, authenticating every
 * blob and checking every chunk id and whole-file digest; with a sandbox also
 * the metadata of what was restored and (compare_live) the content of files
 * unchanged since the snapshot against the live source.
 * @return 0 (the drill ran; see rep->passed), or a negative errno if it could
 *         not run at all (no snapshot...).
 */
int cairn_drill(cairn_repo *r, const cairn_drill_opts *o, cairn_drill_report *rep,
		void (*warn)(void *payload, const char *msg), void *payload);

/** The report as one JSON object (appended to @p out). */
void cairn_drill_report_json(const cairn_drill_report *rep, cairn_buf *out);
/** Parse the fields of a stored report needed for status (client, target, site, time, passed). */
int cairn_drill_report_parse(const char *json, cairn_drill_report *rep);
