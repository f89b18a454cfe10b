/*
 * check_regress.c - regression tests for bugs found outside the unit suites.
 *
 * parent_trees_under_load: the archiver's walker loaded the parent snapshot's
 * trees with the same codec the finishing threads used to encode new trees,
 * so a backup with a parent over many directories stored trees whose zstd
 * frames were garbage (authenticated, but undecodable): check --read-data and
 * restore failed. Found by bench/compare.sh (first -> unchanged -> v2).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "tests/support/check_main.h"
#include "tests/support/testutil.h"

static void write_file(const char *path, size_t size, uint64_t seed)
{
	char *b = malloc(size + 1);
	tu_fill_text(b, size, seed);
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(b, 1, size, f), size);
	fclose(f);
	free(b);
}

START_TEST(parent_trees_under_load)
{
	char *base = tu_mkdtemp("regress");
	char src[4096], repo[4096], p[4200], cmd[16384];
	snprintf(src, sizeof(src), "%s/src", base);
	snprintf(repo, sizeof(repo), "%s/repo", base);
	mkdir(src, 0755);
	/* many directories, so trees are finished on reader threads while the walker
	 * still loads the parent's trees */
	for (int d = 0; d < 1500; d++) {
		snprintf(p, sizeof(p), "%s/d%04d", src, d);
		mkdir(p, 0755);
		for (int f = 0; f < 3; f++) {
			snprintf(p, sizeof(p), "%s/d%04d/f%d", src, d, f);
			write_file(p, 3000 + (size_t)(d * 7 + f) % 5000, (uint64_t)(d * 3 + f));
		}
	}
	setenv("CAIRN_PASSWORD", "regress", 1);
	const char *B = CAIRN_BIN;
	snprintf(cmd, sizeof(cmd), "%s -q -r '%s' init --kdf-memory 1024 --kdf-time 1", B, repo);
	ck_assert_int_eq(tu_sh("%s", cmd), 0);
	for (int round = 0; round < 3; round++) {
		ck_assert_int_eq(tu_sh("%s -q --no-cache -r '%s' backup '%s'", B, repo, src), 0);
		/* change one file in every tenth directory: most trees come from the parent */
		for (int d = round; d < 1500; d += 10) {
			snprintf(p, sizeof(p), "%s/d%04d/f%d", src, d, round % 3);
			write_file(p, 4000, (uint64_t)(round * 100000 + d));
		}
	}
	ck_assert_int_eq(tu_sh("%s -q --no-cache -r '%s' backup '%s'", B, repo, src), 0);
	ck_assert_int_eq(tu_sh("%s -q --no-cache -r '%s' check --read-data", B, repo), 0);
	ck_assert_int_eq(
	    tu_sh("%s -q --no-cache -r '%s' restore latest --target '%s/out'", B, repo, base), 0);
	ck_assert_int_eq(tu_sh("diff -r '%s' '%s/out%s' >/dev/null", src, base, src), 0);
	tu_rmrf(base);
	free(base);
}
END_TEST

static Suite *cli_regress_suite(void)
{
	Suite *s = suite_create("regress");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, parent_trees_under_load);
	suite_add_tcase(s, tc);
	return s;
}

CAIRN_CHECK_MAIN(cli_regress_suite)
