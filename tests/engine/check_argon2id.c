/*
 * check_argon2id.c - cairn's Argon2id against the reference: BLAKE2b known
 * answers and OpenSSL's BLAKE2b-512 across block boundaries; Argon2id bit for
 * bit equal to libargon2 (the reference implementation, as Debian builds it)
 * over lanes 1-5, memory at and above the minimum, 1-4 passes, outputs of 4 to
 * 1024 bytes (H' beyond 64 bytes), empty and long passphrases, with the AVX2
 * and the portable block function; a published test vector; bad parameters.
 */
#include <argon2.h>
#include <check.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "common/common.h"
#include "engine/argon2id.h"
#include "tests/support/check_main.h"

static void hex(char *out, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

START_TEST(blake2b_known_answers)
{
	uint8_t d[64];
	char h[129];
	cairn_blake2b(d, 64, "abc", 3);
	hex(h, d, 64);
	ck_assert_str_eq(h, "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
	                    "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923");
	cairn_blake2b(d, 64, "", 0);
	hex(h, d, 64);
	ck_assert_str_eq(h, "786a02f742015903c6c6fd852552d272912f4740e15847618a86e217f71f5419"
	                    "d25e1031afee585313896444934eb04b903a685b1448b755d56f701afe9be2ce");
}
END_TEST

START_TEST(blake2b_matches_openssl)
{
	uint8_t in[400], a[64], b[64];
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 131 + 7);
	const EVP_MD *md = EVP_blake2b512();
	for (size_t n = 0; n <= sizeof(in); n += (n < 260 ? 1 : 37)) {
		unsigned int len = 0;
		ck_assert_int_eq(EVP_Digest(in, n, b, &len, md, NULL), 1);
		cairn_blake2b(a, 64, in, n);
		ck_assert_msg(memcmp(a, b, 64) == 0, "BLAKE2b-512 differs at %zu bytes", n);
	}
}
END_TEST

typedef struct params {
	uint32_t t, m, lanes;
	size_t outlen, pwdlen, saltlen;
} params;

static const params cases[] = {
    {1, 8, 1, 32, 8, 16},     {1, 16, 2, 32, 8, 16},      {3, 64, 2, 32, 0, 16},
    {2, 256, 1, 4, 3, 8},     {4, 96, 3, 64, 20, 32},     {2, 1024, 4, 65, 100, 16},
    {1, 40, 5, 100, 1, 9},    {3, 2048, 2, 1024, 64, 16}, {2, 100, 2, 128, 8, 16},
    {1, 4096, 16, 32, 8, 16}, {3, 777, 3, 33, 200, 64},
};

static void compare_case(const params *p, int portable)
{
	uint8_t pwd[256], salt[64], a[1024], b[1024];
	for (size_t i = 0; i < sizeof(pwd); i++)
		pwd[i] = (uint8_t)(i * 7 + p->m);
	for (size_t i = 0; i < sizeof(salt); i++)
		salt[i] = (uint8_t)(i * 13 + p->t);
	cairn_argon2id_force_portable(portable);
	ck_assert_int_eq(
	    cairn_argon2id(p->t, p->m, p->lanes, pwd, p->pwdlen, salt, p->saltlen, a, p->outlen),
	    0);
	cairn_argon2id_force_portable(0);
	ck_assert_int_eq(
	    argon2id_hash_raw(p->t, p->m, p->lanes, pwd, p->pwdlen, salt, p->saltlen, b, p->outlen),
	    ARGON2_OK);
	ck_assert_msg(memcmp(a, b, p->outlen) == 0,
	              "t=%u m=%u lanes=%u out=%zu pwd=%zu salt=%zu (%s) differs from libargon2",
	              p->t, p->m, p->lanes, p->outlen, p->pwdlen, p->saltlen,
	              portable ? "portable" : "default");
}

START_TEST(argon2id_matches_reference)
{
	compare_case(&cases[_i], 0);
}
END_TEST

START_TEST(argon2id_portable_matches_reference)
{
	compare_case(&cases[_i], 1);
}
END_TEST

/* cairn's default cost, the one every key file made so far carries */
START_TEST(argon2id_default_cost)
{
	uint8_t a[32], b[32], salt[16];
	memset(salt, 0x5a, sizeof(salt));
	ck_assert_int_eq(cairn_argon2id(3, 64 * 1024, 2, "correct horse", 13, salt, 16, a, 32), 0);
	ck_assert_int_eq(argon2id_hash_raw(3, 64 * 1024, 2, "correct horse", 13, salt, 16, b, 32),
	                 ARGON2_OK);
	ck_assert_mem_eq(a, b, 32);
}
END_TEST

/* the reference implementation's own test vector (argon2id, v1.3, t=2, 64 MiB, 1 lane) */
START_TEST(argon2id_published_vector)
{
	uint8_t out[32];
	char h[65];
	ck_assert_int_eq(cairn_argon2id(2, 1 << 16, 1, "password", 8, "somesalt", 8, out, 32), 0);
	hex(h, out, 32);
	ck_assert_str_eq(h, "09316115d5cf24ed5a15a31a3ba326e5cf32edc24702987c02b6566f61913cf7");
}
END_TEST

START_TEST(argon2id_rejects_bad_parameters)
{
	uint8_t out[32];
	const char *salt = "saltsalt";
	ck_assert_int_eq(cairn_argon2id(0, 64, 1, "p", 1, salt, 8, out, 32), -EINVAL);
	ck_assert_int_eq(cairn_argon2id(1, 64, 0, "p", 1, salt, 8, out, 32), -EINVAL);
	ck_assert_int_eq(cairn_argon2id(1, 64, 17, "p", 1, salt, 8, out, 32), -EINVAL);
	ck_assert_int_eq(cairn_argon2id(1, 15, 2, "p", 1, salt, 8, out, 32), -EINVAL);
	ck_assert_int_eq(cairn_argon2id(1, 64, 1, "p", 1, salt, 7, out, 32), -EINVAL);
	ck_assert_int_eq(cairn_argon2id(1, 64, 1, "p", 1, salt, 8, out, 3), -EINVAL);
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "out of range"));
}
END_TEST

static Suite *engine_argon2id_suite(void)
{
	Suite *s = suite_create("argon2id");
	TCase *tc = tcase_create("argon2id");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, blake2b_known_answers);
	tcase_add_test(tc, blake2b_matches_openssl);
	int n = (int)(sizeof(cases) / sizeof(cases[0]));
	tcase_add_loop_test(tc, argon2id_matches_reference, 0, n);
	tcase_add_loop_test(tc, argon2id_portable_matches_reference, 0, n);
	tcase_add_test(tc, argon2id_default_cost);
	tcase_add_test(tc, argon2id_published_vector);
	tcase_add_test(tc, argon2id_rejects_bad_parameters);
	suite_add_tcase(s, tc);
	return s;
}

CAIRN_CHECK_MAIN(engine_argon2id_suite)
