/*
 * testrepo.h - open a local repository through the engine from a suite that
 * also drives the cairn binary (the suite links the engine; testutil.c does
 * not, so this lives in a header of its own).
 */
#ifndef CAIRN_TESTREPO_H
#define CAIRN_TESTREPO_H

#include <check.h>
#include <stdio.h>

#include "engine/engine.h"
#include "targets/target.h"

/* The repository in directory @p dir, opened with @p pass and no cache; the test fails if it cannot be. */
static inline cairn_repo *tu_open_local_repo(const char *dir, const char *pass)
{
	cairn_target *t;
	cairn_repo *r;
	char addr[4300];
	snprintf(addr, sizeof(addr), "local:%s", dir);
	ck_assert_int_eq(cairn_target_open(&t, addr), 0);
	cairn_open_opts oo = CAIRN_OPEN_OPTS_INIT;
	oo.cache_dir = "";
	ck_assert_int_eq(cairn_repo_open(&r, t, pass, &oo), 0);
	return r;
}

#endif
