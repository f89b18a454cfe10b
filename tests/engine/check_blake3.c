/*
 * check_blake3.c - cairn's BLAKE3 keyed hash against the b3sum program (the
 * Rust reference implementation, Debian's package): known answers at every
 * tree shape boundary (the BLAKE3 test-vector inputs, bytes i mod 251 under
 * the key "whats the Elvish word for friend"), and b3sum run on random inputs
 * of many lengths; every implementation (portable, AVX2 x 8, AVX-512VL x 8,
 * AVX-512 x 16) equal on unaligned inputs; the chunk id dispatch.
 */
#include <check.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "engine/blake3.h"
#include "engine/crypto_int.h"
#include "engine/engine.h"
#include "tests/support/check_main.h"
#include "tests/support/testutil.h"

static const uint8_t vec_key[33] = "whats the Elvish word for friend";

/* b3sum --keyed --no-names over i % 251 (b3sum 1.2.0); 0 is the published vector. */
static const struct {
	size_t len;
	const char *hex;
} known[] = {
	{0, "92b2b75604ed3c761f9d6f62392c8a9227ad0ea3f09573e783f1498a4ed60d26"},
	{1, "6d7878dfff2f485635d39013278ae14f1454b8c0a3a2d34bc1ab38228a80c95b"},
	{63, "bb1eb5d4afa793c1ebdd9fb08def6c36d10096986ae0cfe148cd101170ce37ae"},
	{64, "ba8ced36f327700d213f120b1a207a3b8c04330528586f414d09f2f7d9ccb7e6"},
	{65, "c0a4edefa2d2accb9277c371ac12fcdbb52988a86edc54f0716e1591b4326e72"},
	{1023, "c951ecdf03288d0fcc96ee3413563d8a6d3589547f2c2fb36d9786470f1b9d6e"},
	{1024, "75c46f6f3d9eb4f55ecaaee480db732e6c2105546f1e675003687c31719c7ba4"},
	{1025, "357dc55de0c7e382c900fd6e320acc04146be01db6a8ce7210b7189bd664ea69"},
	{2048, "879cf1fa2ea0e79126cb1063617a05b6ad9d0b696d0d757cf053439f60a99dd1"},
	{2049, "9f29700902f7c86e514ddc4df1e3049f258b2472b6dd5267f61bf13983b78dd5"},
	{3072, "044a0e7b172a312dc02a4c9a818c036ffa2776368d7f528268d2e6b5df191770"},
	{3073, "68dede9bef00ba89e43f31a6825f4cf433389fedae75c04ee9f0cf16a427c95a"},
	{4096, "befc660aea2f1718884cd8deb9902811d332f4fc4a38cf7c7300d597a081bfc0"},
	{4097, "00df940cd36bb9fa7cbbc3556744e0dbc8191401afe70520ba292ee3ca80abbc"},
	{5120, "2c493e48e9b9bf31e0553a22b23503c0a3388f035cece68eb438d22fa1943e20"},
	{5121, "6ccf1c34753e7a044db80798ecd0782a8f76f33563accaddbfbb2e0ea4b2d024"},
	{6144, "3d6b6d21281d0ade5b2b016ae4034c5dec10ca7e475f90f76eac7138e9bc8f1d"},
	{6145, "9ac301e9e39e45e3250a7e3b3df701aa0fb6889fbd80eeecf28dbc6300fbc539"},
	{7168, "b42835e40e9d4a7f42ad8cc04f85a963a76e18198377ed84adddeaecacc6f3fc"},
	{7169, "ed9b1a922c046fdb3d423ae34e143b05ca1bf28b710432857bf738bcedbfa511"},
	{8192, "dc9637c8845a770b4cbf76b8daec0eebf7dc2eac11498517f08d44c8fc00d58a"},
	{8193, "954a2a75420c8d6547e3ba5b98d963e6fa6491addc8c023189cc519821b4a1f5"},
	{16384, "9e9fc4eb7cf081ea7c47d1807790ed211bfec56aa25bb7037784c13c4b707b0d"},
	{31744, "efa53b389ab67c593dba624d898d0f7353ab99e4ac9d42302ee64cbf9939a419"},
	{102400, "1c35d1a5811083fd7119f5d5d1ba027b4d01c0c6c49fb6ff2cf75393ea5db4a7"},
	{263168, "d5d9a275d4234b2fd712e35979ff33ba98466eab0c3a431359673c814b4d8e00"},
	{1048577, "a0c8e093827da3e07e22fa684eb60fc1600cf44c5036c80fb0b587d0f39ef421"},
};

#define NIMPL 4 /* cairn_blake3_force 1 .. 4 */

static int impls_checked;

static void teardown(void)
{
	cairn_blake3_force(0);
}

START_TEST(known_answers)
{
	size_t max = known[sizeof(known) / sizeof(known[0]) - 1].len;
	uint8_t *in = malloc(max + 1), out[32];
	char h[65];
	for (size_t i = 0; i < max; i++)
		in[i] = (uint8_t)(i % 251);
	for (int impl = 1; impl <= NIMPL; impl++) {
		if (cairn_blake3_force(impl) < 0)
			continue;
		for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++) {
			cairn_blake3_keyed(vec_key, in, known[k].len, out);
			cairn_hex(h, out, 32);
			ck_assert_msg(!strcmp(h, known[k].hex), "implementation %d, %zu bytes: %s", impl,
				      known[k].len, h);
		}
		impls_checked++;
	}
	ck_assert_int_ge(impls_checked, 1);
	free(in);
}
END_TEST

/* Lengths around every 1 KiB chunk up to 40 chunks (x 8 and x 16 batches, the
 * padded remainder, odd tree levels), then larger ones, at offsets 0-3. */
START_TEST(implementations_agree)
{
	const size_t max = (3u << 20) + 77;
	uint8_t *buf = malloc(max + 4), ref[32], got[32];
	tu_fill_random(buf, max + 4, 11);
	size_t lens[200], n = 0;
	for (size_t c = 0; c <= 40; c++) {
		lens[n++] = c * 1024;
		lens[n++] = c * 1024 + 1 + (c * 37) % 1023;
	}
	size_t big[] = {65536 * 3 + 5, 256 * 1024, 257 * 1024 - 1, 1u << 20, max};
	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++)
		lens[n++] = big[i];
	for (size_t i = 0; i < n; i++) {
		for (size_t off = 0; off < 4; off++) {
			ck_assert_int_eq(cairn_blake3_force(1), 0);
			cairn_blake3_keyed(vec_key, buf + off, lens[i], ref);
			for (int impl = 2; impl <= NIMPL; impl++) {
				if (cairn_blake3_force(impl) < 0)
					continue;
				cairn_blake3_keyed(vec_key, buf + off, lens[i], got);
				ck_assert_msg(!memcmp(ref, got, 32), "implementation %d differs at %zu "
								     "bytes, offset %zu", impl, lens[i], off);
			}
		}
	}
	free(buf);
}
END_TEST

/* b3sum, the reference, on random keys and inputs (Debian package b3sum). */
START_TEST(matches_b3sum)
{
	char *dir = tu_mkdtemp("blake3");
	char path[4200], kpath[4200], h[65], line[200];
	snprintf(path, sizeof(path), "%s/in", dir);
	snprintf(kpath, sizeof(kpath), "%s/key", dir);
	ck_assert_msg(tu_sh("command -v b3sum >/dev/null") == 0,
		      "b3sum is missing (scripts/install-deps.sh installs it)");
	const size_t lens[] = {0, 17, 1000, 1024, 4000, 9000, 17 * 1024 + 3, 129 * 1024,
			       600000, 2u << 20, (8u << 20) + 9};
	uint8_t key[32], out[32];
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		uint8_t *in = malloc(lens[i] + 1);
		tu_fill_random(in, lens[i], 100 + i);
		tu_fill_random(key, 32, 200 + i);
		tu_write_bytes(path, in, lens[i]);
		tu_write_bytes(kpath, key, 32);
		char cmd[9000];
		snprintf(cmd, sizeof(cmd), "b3sum --keyed --no-names '%s' < '%s'", path, kpath);
		FILE *p = popen(cmd, "r");
		ck_assert_ptr_nonnull(p);
		ck_assert_ptr_nonnull(fgets(line, sizeof(line), p));
		ck_assert_int_eq(pclose(p), 0);
		line[strcspn(line, "\n")] = 0;
		cairn_blake3_force(0);
		cairn_blake3_keyed(key, in, lens[i], out);
		cairn_hex(h, out, 32);
		ck_assert_msg(!strcmp(h, line), "%zu bytes: cairn %s, b3sum %s", lens[i], h, line);
		free(in);
	}
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* cairn_chunk_id follows the key set's id_fn; HMAC-SHA256 when nothing says otherwise. */
START_TEST(chunk_id_dispatch)
{
	cairn_keyset ks;
	uint8_t repo[32] = {1}, a[32], b[32];
	unsigned int len = 0;
	char data[5000];
	tu_fill_text(data, sizeof(data), 3);
	cairn_keyset_generate(&ks, repo);
	ck_assert_int_eq(ks.id_fn, CAIRN_CHUNK_ID_HMAC_SHA256);
	cairn_chunk_id(&ks, data, sizeof(data), a);
	ck_assert_ptr_nonnull(HMAC(EVP_sha256(), ks.id, 32, (const uint8_t *)data, sizeof(data), b,
				   &len));
	ck_assert_uint_eq(len, 32);
	ck_assert_mem_eq(a, b, 32);
	ks.id_fn = CAIRN_CHUNK_ID_BLAKE3;
	cairn_chunk_id(&ks, data, sizeof(data), a);
	cairn_blake3_keyed(ks.id, data, sizeof(data), b);
	ck_assert_mem_eq(a, b, 32);
	cairn_wipe(&ks, sizeof(ks));
}
END_TEST

static Suite *engine_blake3_suite(void)
{
	Suite *s = suite_create("blake3");
	TCase *tc = tcase_create("blake3");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, known_answers);
	tcase_add_test(tc, implementations_agree);
	tcase_add_test(tc, matches_b3sum);
	tcase_add_test(tc, chunk_id_dispatch);
	suite_add_tcase(s, tc);
	return s;
}

CAIRN_CHECK_MAIN(engine_blake3_suite)
