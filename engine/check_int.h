/*
 * check_int.h - what check.c and check_affected.c share (engine-internal):
 * a set of 32-byte ids, and the mapping of damaged packs and blobs back to
 * the snapshots and paths that need them.
 */
#ifndef CAIRN_CHECK_INT_H
#define CAIRN_CHECK_INT_H

#include "engine/repo_int.h"

/** An open-addressing set of 32-byte ids (zero-initialise; free with ck_idset_free). */
typedef struct ck_idset {
	uint8_t (*ids)[32];
	uint8_t *used;
	size_t n, cap;
} ck_idset;

/** @return 1 if @p id was added, 0 if it was already there. */
int ck_idset_add(ck_idset *s, const uint8_t id[32]);
int ck_idset_has(const ck_idset *s, const uint8_t id[32]);
void ck_idset_free(ck_idset *s);

/** What check found damaged: blobs, and whole packs (by index number). */
typedef struct ck_damage {
	ck_idset blobs;     /* blobs that failed (authentication, id, length) */
	uint8_t *packs;     /* [npacks]: 1 = the whole pack is missing or unreadable */
	size_t npacks;
	int any;
} ck_damage;

typedef struct ck_snap {
	char hex[65];
	uint8_t tree[32];
} ck_snap;

/**
 * Walk the trees of @p snaps and report, through @p report with severity
 * CAIRN_CHECK_AFFECTED, each file and directory that needs a damaged blob:
 * "snapshot 1a2b3c4d: /path (chunk ... in data/..)". At most @p limit lines,
 * then one line with the count of the rest. @return the number of affected entries.
 */
uint64_t ck_affected(cairn_repo *r, cairn_codec *cx, const ck_damage *d, const ck_snap *snaps,
		     size_t nsnaps, size_t limit, cairn_check_report_fn report, void *payload);

#endif
