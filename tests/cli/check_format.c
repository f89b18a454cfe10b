/*
 * check_format.c - the repository config and the chunk id function it names.
 *
 * New repositories get a format-2 config naming BLAKE3 keyed_hash as the chunk
 * id function; `init --chunk-id hmac-sha256` writes the format-1 config of
 * earlier cairn versions. Both back up, check and restore byte for byte, and
 * their index holds exactly the ids the named function gives (recomputed here
 * with the repository's id key). A config that is damaged or names what this
 * cairn does not know is refused with a message saying so, and the repository
 * is whole again once the config is put back. A bad --chunk-id is a usage
 * error that creates nothing.
 */
#include <check.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/blake3.h"
#include "engine/config_int.h"
#include "engine/engine.h"
#include "engine/index_int.h"
#include "engine/repo_int.h"

#include "tests/support/check_main.h"
#include "tests/support/testrepo.h"
#include "tests/support/testutil.h"

#define PASS "format-test"

static size_t read_bytes(const char *path, uint8_t *p, size_t cap)
{
	FILE *f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	size_t n = fread(p, 1, cap, f);
	fclose(f);
	return n;
}

/* src/ with files across the chunk-id tree shapes: empty, one block, one
 * chunk of the hash, several, a 100,000-byte file (one content chunk) and 3 MiB. */
static void make_source(const char *base, char *one_chunk, size_t cap)
{
	static const size_t sizes[] = {0, 1, 1023, 1024, 1025, 5000, 20000};
	char p[4200];
	snprintf(p, sizeof(p), "%s/src", base);
	mkdir(p, 0755);
	char *buf = malloc(3u << 20);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		tu_fill_text(buf, sizes[i], i + 1);
		snprintf(p, sizeof(p), "%s/src/f%zu", base, sizes[i]);
		tu_write_bytes(p, buf, sizes[i]);
	}
	tu_fill_text(buf, 100000, 99);
	snprintf(one_chunk, cap, "%s/src/one", base);
	tu_write_bytes(one_chunk, buf, 100000);
	snprintf(p, sizeof(p), "%s/src/big", base);
	tu_write_random(p, 3u << 20, 5);
	free(buf);
}

static int cairn(const char *base, const char *args)
{
	return tu_sh("'%s' -q --no-cache -r '%s/repo' %s >>'%s/log' 2>&1 </dev/null", CAIRN_BIN,
		     base, args, base);
}

/* Loop 0: the default (BLAKE3, format 2); 1: --chunk-id hmac-sha256 (format 1). */
START_TEST(roundtrip_and_ids)
{
	int hmac = _i == 1;
	char *base = tu_mkdtemp("format");
	char one[4200], cfgpath[4200], args[200];
	uint8_t cfg[128];
	setenv("CAIRN_PASSWORD", PASS, 1);
	make_source(base, one, sizeof(one));
	snprintf(args, sizeof(args), "init --kdf-memory 1024 --kdf-time 1 %s",
		 hmac ? "--chunk-id hmac-sha256" : "");
	ck_assert_int_eq(cairn(base, args), 0);
	snprintf(cfgpath, sizeof(cfgpath), "%s/repo/config", base);
	size_t n = read_bytes(cfgpath, cfg, sizeof(cfg));
	ck_assert_uint_eq(n, hmac ? 63 : 64);
	ck_assert_uint_eq(cfg[8], hmac ? 1 : 2);
	if (!hmac)
		ck_assert_uint_eq(cfg[63], CAIRN_CHUNK_ID_BLAKE3);
	ck_assert_int_eq(tu_sh("'%s' -r '%s/repo' cat config | grep -qx 'chunk id %s'", CAIRN_BIN,
			       base, hmac ? "hmac-sha256" : "blake3"), 0);

	snprintf(args, sizeof(args), "backup '%s/src'", base);
	ck_assert_int_eq(cairn(base, args), 0);
	ck_assert_int_eq(cairn(base, "check --read-data"), 0);
	snprintf(args, sizeof(args), "restore latest --target '%s/out'", base);
	ck_assert_int_eq(cairn(base, args), 0);
	ck_assert_int_eq(tu_sh("diff -r '%s/src' '%s/out%s/src'", base, base, base), 0);

	/* the index holds the named function's id of the one-chunk file, not the other's */
	char rdir[4200];
	snprintf(rdir, sizeof(rdir), "%s/repo", base);
	cairn_repo *r = tu_open_local_repo(rdir, PASS);
	char *data = tu_slurp(one);
	uint8_t b3[32], hm[32];
	unsigned int hl = 0;
	cairn_blake3_keyed(r->keys.id, data, 100000, b3);
	ck_assert_ptr_nonnull(HMAC(EVP_sha256(), r->keys.id, 32, (uint8_t *)data, 100000, hm, &hl));
	cairn_blob_loc loc;
	ck_assert_int_eq(cairn_index_lookup(r->idx, hmac ? hm : b3, &loc), 1);
	ck_assert_int_eq(cairn_index_lookup(r->idx, hmac ? b3 : hm, &loc), 0);
	free(data);
	cairn_repo_close(r);
	tu_rmrf(base);
	free(base);
}
END_TEST

START_TEST(bad_config_refused)
{
	char *base = tu_mkdtemp("format");
	char one[4200], cfgpath[4200], args[200];
	uint8_t cfg[64], bad[65];
	setenv("CAIRN_PASSWORD", PASS, 1);
	make_source(base, one, sizeof(one));
	ck_assert_int_eq(cairn(base, "init --kdf-memory 1024 --kdf-time 1"), 0);
	snprintf(args, sizeof(args), "backup '%s/src'", base);
	ck_assert_int_eq(cairn(base, args), 0);
	snprintf(cfgpath, sizeof(cfgpath), "%s/repo/config", base);
	ck_assert_uint_eq(read_bytes(cfgpath, cfg, sizeof(cfg)), 64);

	static const struct {
		int at, value; /* byte to change (-1: none) */
		size_t len;    /* bytes written */
		const char *says;
	} cases[] = {
		{63, 9, 64, "names chunk id function 9, which this cairn does not know"},
		{63, 0, 64, "names chunk id function 0"},
		{-1, 0, 63, "config of format 2 has 63 bytes"},
		{8, 1, 64, "config of format 1 has 64 bytes"},
		{8, 3, 64, "repository format 3 is not supported"},
		{0, 'X', 64, "is not a cairn repository config"},
		{-1, 0, 10, "is not a cairn repository config"},
		{-1, 0, 65, "config of format 2 has 65 bytes"},
		{57, 23, 64, "config holds invalid parameters"}, /* zstd level 23 */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(bad, 0, sizeof(bad));
		memcpy(bad, cfg, 64);
		if (cases[i].at >= 0)
			bad[cases[i].at] = (uint8_t)cases[i].value;
		tu_write_bytes(cfgpath, bad, cases[i].len);
		ck_assert_int_eq(tu_sh("'%s' -q --no-cache -r '%s/repo' snapshots >'%s/out.txt' 2>&1",
				       CAIRN_BIN, base, base) == 0, 0);
		snprintf(args, sizeof(args), "%s/out.txt", base);
		char *out = tu_slurp(args);
		ck_assert_msg(strstr(out, cases[i].says), "case %zu: expected '%s', got: %s", i,
			      cases[i].says, out);
		free(out);
	}
	/* nothing was lost: the config put back, everything reads again */
	tu_write_bytes(cfgpath, cfg, 64);
	ck_assert_int_eq(cairn(base, "check --read-data"), 0);
	snprintf(args, sizeof(args), "restore latest --target '%s/out'", base);
	ck_assert_int_eq(cairn(base, args), 0);
	ck_assert_int_eq(tu_sh("diff -r '%s/src' '%s/out%s/src'", base, base, base), 0);
	tu_rmrf(base);
	free(base);
}
END_TEST

/*
 * A format-1 config laid out byte by byte as docs/FORMAT.md §2 has it (what
 * every cairn before format 2 wrote) decodes to its fields, as HMAC-SHA256
 * ids, and encodes back to the same 63 bytes.
 */
START_TEST(format1_bytes_from_the_spec)
{
	uint8_t b[CAIRN_CONFIG_MAX], again[CAIRN_CONFIG_MAX];
	memcpy(b, "CAIRNCFG", 8);
	b[8] = 1;
	for (int i = 0; i < 32; i++)
		b[9 + i] = (uint8_t)(0xa0 + i);
	cairn_put_le32(b + 41, 512u << 10);
	cairn_put_le32(b + 45, 1u << 20);
	cairn_put_le32(b + 49, 8u << 20);
	cairn_put_le32(b + 53, 16u << 20);
	b[57] = 3;
	const uint64_t created = 1795000000; /* 2026 */
	for (int i = 0; i < 5; i++)
		b[58 + i] = (uint8_t)(created >> (8 * i));
	cairn_config c;
	ck_assert_int_eq(cairn_config_decode(&c, b, CAIRN_CONFIG_V1_LEN), 0);
	ck_assert_int_eq(c.format, 1);
	ck_assert_int_eq(c.id_fn, CAIRN_CHUNK_ID_HMAC_SHA256);
	ck_assert_mem_eq(c.repo_id, b + 9, 32);
	ck_assert_uint_eq(c.chunk_min, 512u << 10);
	ck_assert_uint_eq(c.chunk_avg, 1u << 20);
	ck_assert_uint_eq(c.chunk_max, 8u << 20);
	ck_assert_uint_eq(c.pack_size, 16u << 20);
	ck_assert_int_eq(c.zstd_level, 3);
	ck_assert_uint_eq(c.created_s, created);
	ck_assert_uint_eq(cairn_config_encode(again, &c), CAIRN_CONFIG_V1_LEN);
	ck_assert_mem_eq(again, b, CAIRN_CONFIG_V1_LEN);
}
END_TEST

START_TEST(bad_chunk_id_option)
{
	char *base = tu_mkdtemp("format");
	setenv("CAIRN_PASSWORD", PASS, 1);
	ck_assert_int_eq(tu_sh("'%s' -r '%s/repo' init --chunk-id md5 >'%s/out.txt' 2>&1",
			       CAIRN_BIN, base, base), 2);
	char p[4200];
	snprintf(p, sizeof(p), "%s/out.txt", base);
	char *out = tu_slurp(p);
	ck_assert_msg(strstr(out, "--chunk-id takes blake3 or hmac-sha256"), "got: %s", out);
	free(out);
	snprintf(p, sizeof(p), "%s/repo/config", base);
	ck_assert_int_ne(access(p, F_OK), 0);
	tu_rmrf(base);
	free(base);
}
END_TEST

static Suite *cli_format_suite(void)
{
	Suite *s = suite_create("format");
	TCase *tc = tcase_create("format");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, roundtrip_and_ids, 0, 2);
	tcase_add_test(tc, bad_config_refused);
	tcase_add_test(tc, bad_chunk_id_option);
	tcase_add_test(tc, format1_bytes_from_the_spec);
	suite_add_tcase(s, tc);
	return s;
}

CAIRN_CHECK_MAIN(cli_format_suite)
