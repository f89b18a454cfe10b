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
