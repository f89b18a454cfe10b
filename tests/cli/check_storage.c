/*
 * check_storage.c - how the archiver stores what it reads.
 *
 * compressed_formats_stored_raw: chunks under 256 KiB of files that start
 * like a compressed format (gzip, PNG, zip...) are stored without trying
 * zstd; the same bytes without the magic are compressed; a file of 1 MiB
 * with the magic but compressible content is still compressed (the codec's
 * sampling decides there). Every file restores byte for byte.
 *
 * large_file_judged_by_chunks: a file of 256 KiB or more is never judged by
 * its first bytes. A 4 MiB compressible file that starts with gzip's magic,
 * cut into chunks under 256 KiB (as disk images are), is compressed: the
 * benchmark's image began with such bytes and was stored raw, 1.2 GB more.
 * Nor is a sparse one whose first data region is small: 4 KiB starting with
 * gzip's magic, a hole, then 8 MiB of text at 64 MiB was stored raw when the
 * region's end, not the file's size, was compared (found in review).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/crypto_int.h"
#include "engine/engine.h"
#include "engine/index_int.h"
#include "engine/repo_int.h"

#include "tests/support/check_main.h"
#include "tests/support/testrepo.h"
#include "tests/support/testutil.h"

#define PASS "storage-test"

static void put(const char *dir, const char *name, const void *magic, size_t mlen, size_t size,
		uint64_t seed, char *path, size_t cap)
{
	char *b = malloc(size);
	tu_fill_text(b, size, seed);
	memcpy(b, magic, mlen);
	ck_assert_int_lt(snprintf(path, cap, "%s/%s", dir, name), (int)cap);
	tu_write_bytes(path, b, size);
	free(b);
}

/* Stored size of the single chunk of file @p path (its length is under the chunk minimum). */
static uint32_t stored_len(cairn_repo *r, const char *path, size_t size)
{
	char *data = tu_slurp(path);
	uint8_t id[32];
	cairn_chunk_id(&r->keys, data, size, id);
	free(data);
	cairn_blob_loc loc;
	ck_assert_int_eq(cairn_index_lookup(r->idx, id, &loc), 1);
	return loc.clen;
}

START_TEST(compressed_formats_stored_raw)
{
	char *base = tu_mkdtemp("storage");
	char src[4200], gz[4200], png[4200], zip[4200], plain[4200], big[4200];
	snprintf(src, sizeof(src), "%s/src", base);
	mkdir(src, 0755);
	put(src, "a.gz", "\x1f\x8b\x08\x00", 4, 40000, 1, gz, sizeof(gz));
	put(src, "b.png", "\x89PNG\r\n\x1a\n", 8, 100000, 2, png, sizeof(png));
	put(src, "c.zip", "PK\x03\x04", 4, 3000, 3, zip, sizeof(zip));
	put(src, "d.txt", "", 0, 40000, 1, plain, sizeof(plain));
	put(src, "e.gz", "\x1f\x8b\x08\x00", 4, 400000, 5, big, sizeof(big));
	setenv("CAIRN_PASSWORD", PASS, 1);
	ck_assert_int_eq(tu_sh("'%s' -q -r '%s/repo' init --kdf-memory 1024 --kdf-time 1", CAIRN_BIN,
			       base), 0);
	ck_assert_int_eq(tu_sh("'%s' -q --no-cache -r '%s/repo' backup '%s'", CAIRN_BIN, base, src),
			 0);
	ck_assert_int_eq(tu_sh("'%s' -q --no-cache -r '%s/repo' restore latest --target '%s/out'",
			       CAIRN_BIN, base, base), 0);
	ck_assert_int_eq(tu_sh("diff -r '%s' '%s/out%s'", src, base, src), 0);

	char rdir[4200];
	snprintf(rdir, sizeof(rdir), "%s/repo", base);
	cairn_repo *r = tu_open_local_repo(rdir, PASS);
	ck_assert_uint_eq(stored_len(r, gz, 40000), 40000 + CAIRN_BLOB_OVERHEAD);
	ck_assert_uint_eq(stored_len(r, png, 100000), 100000 + CAIRN_BLOB_OVERHEAD);
	ck_assert_uint_eq(stored_len(r, zip, 3000), 3000 + CAIRN_BLOB_OVERHEAD);
	ck_assert_uint_lt(stored_len(r, plain, 40000), 40000 / 2);
	ck_assert_uint_lt(stored_len(r, big, 400000), 400000 / 2);
	cairn_repo_close(r);
	tu_rmrf(base);
	free(base);
}
END_TEST

START_TEST(large_file_judged_by_chunks)
{
	char *base = tu_mkdtemp("storage");
	char src[4200], img[4200];
	snprintf(src, sizeof(src), "%s/src", base);
	mkdir(src, 0755);
	put(src, "disk.img", "\x1f\x8b\x08\x00", 4, 4u << 20, 9, img, sizeof(img));
	setenv("CAIRN_PASSWORD", PASS, 1);
	ck_assert_int_eq(tu_sh("'%s' -q -r '%s/repo' init --kdf-memory 1024 --kdf-time 1 "
			       "--chunk-min 16K --chunk-avg 64K --chunk-max 128K", CAIRN_BIN, base), 0);
	ck_assert_int_eq(tu_sh("'%s' -q --no-cache -r '%s/repo' backup '%s'", CAIRN_BIN, base, src),
			 0);
	uint64_t stored = tu_sh_u64("du -sb '%s/repo/data' | cut -f1", base);
	ck_assert_msg(stored < (4u << 20) / 2, "4 MiB of text stored in %llu bytes",
		      (unsigned long long)stored);
	ck_assert_int_eq(tu_sh("'%s' -q --no-cache -r '%s/repo' restore latest --target '%s/out'",
			       CAIRN_BIN, base, base), 0);
	ck_assert_int_eq(tu_sh("cmp '%s' '%s/out%s'", img, base, img), 0);

	/* a sparse file: a small first region with the magic, a hole, 8 MiB of text */
	char sparse[4200], *text = malloc(8u << 20);
	snprintf(sparse, sizeof(sparse), "%s/sparse/disk.img", base);
	ck_assert_int_eq(tu_sh("mkdir -p '%s/sparse'", base), 0);
	tu_fill_text(text, 8u << 20, 21);
	memcpy(text, "\x1f\x8b\x08\x00", 4);
	FILE *f = fopen(sparse, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(text, 1, 4096, f), 4096);
	ck_assert_int_eq(fseek(f, 64L << 20, SEEK_SET), 0);
	ck_assert_uint_eq(fwrite(text, 1, 8u << 20, f), 8u << 20);
	fclose(f);
	free(text);
	ck_assert_int_eq(tu_sh("'%s' -q -r '%s/repo2' init --kdf-memory 1024 --kdf-time 1", CAIRN_BIN,
			       base), 0);
	ck_assert_int_eq(tu_sh("'%s' -q --no-cache -r '%s/repo2' backup '%s/sparse'", CAIRN_BIN,
			       base, base), 0);
	stored = tu_sh_u64("du -sb '%s/repo2/data' | cut -f1", base);
	ck_assert_msg(stored < (8u << 20) / 2, "8 MiB of text after a hole stored in %llu bytes",
		      (unsigned long long)stored);
	ck_assert_int_eq(tu_sh("'%s' -q --no-cache -r '%s/repo2' restore latest --target '%s/out2'",
			       CAIRN_BIN, base, base), 0);
	ck_assert_int_eq(tu_sh("cmp '%s' '%s/out2%s'", sparse, base, sparse), 0);
	tu_rmrf(base);
	free(base);
}
END_TEST

static Suite *cli_storage_suite(void)
{
	Suite *s = suite_create("storage");
	TCase *tc = tcase_create("storage");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, compressed_formats_stored_raw);
	tcase_add_test(tc, large_file_judged_by_chunks);
	suite_add_tcase(s, tc);
	return s;
}

CAIRN_CHECK_MAIN(cli_storage_suite)
