/*
 * check_codec.c - known answers for HMAC-SHA256, HKDF and AES-256-GCM; blob
 * round trips, tampering, wrong keys; key files and wrong passphrases;
 * sealed objects.
 */
#include <check.h>
#include <stdlib.h>
#include <zstd.h>

#include "engine/crypto_int.h"
#include "tests/support/check_main.h"
#include "tests/support/testutil.h"

static void unhex_any(uint8_t *out, const char *hex)
{
	size_t n = strlen(hex) / 2;
	char tmp[3] = {0};
	for (size_t i = 0; i < n; i++) {
		tmp[0] = hex[2 * i];
		tmp[1] = hex[2 * i + 1];
		out[i] = (uint8_t)strtoul(tmp, NULL, 16);
	}
}

static void assert_hex(const uint8_t *got, size_t len, const char *want)
{
	char buf[512];
	cairn_hex(buf, got, len);
	ck_assert_str_eq(buf, want);
}

/* RFC 4231 test cases 1 and 2 (HMAC-SHA256). */
START_TEST(kat_hmac)
{
	uint8_t key[20], out[32];
	memset(key, 0x0b, sizeof(key));
	const void *p[1] = {"Hi There"};
	size_t l[1] = {8};
	cairn_hmac_key(key, 20, p, l, 1, out);
	assert_hex(out, 32, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	const void *p2[2] = {"what do ya want ", "for nothing?"};
	size_t l2[2] = {16, 12};
	cairn_hmac_key("Jefe", 4, p2, l2, 2, out);
	assert_hex(out, 32, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	/* a 32-byte key equal to "Jefe" padded with zeros gives the same MAC (HMAC pads keys) */
	uint8_t k32[32] = {'J', 'e', 'f', 'e'};
	cairn_hmac(k32, p2, l2, 2, out);
	assert_hex(out, 32, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}
END_TEST

/* RFC 5869 test cases 1 and 3 (HKDF-SHA256), first 32 bytes of the OKM. */
START_TEST(kat_hkdf)
{
	uint8_t ikm[22], salt[13], info[10], out[32];
	memset(ikm, 0x0b, sizeof(ikm));
	for (int i = 0; i < 13; i++)
		salt[i] = (uint8_t)i;
	for (int i = 0; i < 10; i++)
		info[i] = (uint8_t)(0xf0 + i);
	cairn_hkdf(out, ikm, 22, salt, 13, info, 10);
	assert_hex(out, 32, "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf");
	cairn_hkdf(out, ikm, 22, NULL, 0, NULL, 0);
	assert_hex(out, 32, "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d");
}
END_TEST

/* GCM specification test cases 13, 14 and 16 (AES-256). */
START_TEST(kat_gcm)
{
	uint8_t key[32] = {0}, nonce[12] = {0}, pt[64] = {0}, ct[64], tag[16];
	ck_assert_int_eq(cairn_gcm_encrypt(key, nonce, NULL, 0, pt, 0, ct, tag), 0);
	assert_hex(tag, 16, "530f8afbc74536b9a963b4f1c4cb738b");
	ck_assert_int_eq(cairn_gcm_encrypt(key, nonce, NULL, 0, pt, 16, ct, tag), 0);
	assert_hex(ct, 16, "cea7403d4d606b6e074ec5d3baf39d18");
	assert_hex(tag, 16, "d0d1c8a799996bf0265b98b5d48ab919");

	uint8_t aad[20];
	unhex_any(key, "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
	unhex_any(nonce, "cafebabefacedbaddecaf888");
	unhex_any(pt, "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
		      "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
	unhex_any(aad, "feedfacedeadbeeffeedfacedeadbeefabaddad2");
	ck_assert_int_eq(cairn_gcm_encrypt(key, nonce, aad, 20, pt, 60, ct, tag), 0);
	assert_hex(ct, 60,
		   "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
		   "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662");
	assert_hex(tag, 16, "76fc6ece0f4e1768cddf8853bb2d551b");
}
END_TEST

START_TEST(kat_xxh128)
{
	uint8_t out[16];
	cairn_xxh128("", 0, out);
	/* XXH3_128bits("") = 99aa06d3014798d86001c324468d497f (xxhsum -H2) */
	assert_hex(out, 16, "99aa06d3014798d86001c324468d497f");
}
END_TEST

static void roundtrip(cairn_codec *cx, const uint8_t *data, size_t len, int expect_zstd)
{
	uint8_t key[32];
	tu_fill_random(key, 32, 99);
	uint8_t *enc = malloc(cairn_blob_bound(len));
	long n = cairn_blob_encode(cx, key, 5, "d", 1, data, len, enc);
	ck_assert_int_gt(n, 0);
	ck_assert_uint_le((size_t)n, cairn_blob_bound(len));
	if (expect_zstd == 1)
		ck_assert_uint_lt((size_t)n, len / 2);
	if (expect_zstd == 0)
		ck_assert_uint_eq((size_t)n, len + CAIRN_BLOB_OVERHEAD);
	cairn_buf out = CAIRN_BUF_INIT;
	ck_assert_int_eq(cairn_blob_decode(cx, key, "d", 1, enc, (size_t)n, len, &out), 0);
	ck_assert_uint_eq(out.len, len);
	ck_assert(len == 0 || memcmp(out.data, data, len) == 0);
	/* wrong type (AAD) fails */
	ck_assert_int_eq(cairn_blob_decode(cx, key, "t", 1, enc, (size_t)n, len, &out), -EBADMSG);
	ck_assert_uint_eq(out.len, 0);
	/* a limit below the size is refused */
	if (len > 1)
		ck_assert_int_eq(cairn_blob_decode(cx, key, "d", 1, enc, (size_t)n, len - 1, &out),
				 -ERANGE);
	/* a damaged codec byte, body or tag: refused as unauthenticated, before any limit and
	 * whichever buffer the body was decrypted into; nothing is handed out */
	const size_t at[] = {CAIRN_NONCE_LEN, CAIRN_NONCE_LEN + 1 + (size_t)(n - 29) / 2,
			     (size_t)n - 1};
	for (size_t k = 0; k < 3; k++) {
		if (at[k] >= (size_t)n)
			continue;
		enc[at[k]] ^= 0x01;
		for (size_t lim = 0; lim < 2; lim++) {
			ck_assert_int_eq(cairn_blob_decode(cx, key, "d", 1, enc, (size_t)n,
							   lim ? len : (len ? len - 1 : 0), &out),
					 -EBADMSG);
			ck_assert_uint_eq(out.len, 0);
		}
		enc[at[k]] ^= 0x01;
	}
	ck_assert_int_eq(cairn_blob_decode(cx, key, "d", 1, enc, (size_t)n, len, &out), 0);
	ck_assert(len == 0 || memcmp(out.data, data, len) == 0);
	cairn_buf_free(&out);
	free(enc);
}

START_TEST(blob_roundtrips)
{
	cairn_codec *cx = cairn_codec_new(3);
	size_t big = 8u << 20;
	uint8_t *b = malloc(big);
	roundtrip(cx, b, 0, 0);
	b[0] = 'x';
	roundtrip(cx, b, 1, 0);
	tu_fill_random(b, 1 << 20, 1);
	roundtrip(cx, b, 1 << 20, 0); /* incompressible: stored raw */
	tu_fill_text(b, 1 << 20, 2);
	roundtrip(cx, b, 1 << 20, 1); /* very compressible */
	memset(b, 0, big);
	roundtrip(cx, b, big, 1);
	tu_fill_random(b, big, 3);
	roundtrip(cx, b, big, 0);
	cairn_codec_free(cx);
	/* every level: fixed workspaces up to 9, growing contexts above; inputs
	 * of changing sizes through one codec (small, 8 MiB, small again) */
	const int levels[] = {1, 2, 9, 10, 19};
	for (size_t l = 0; l < sizeof(levels) / sizeof(levels[0]); l++) {
		cx = cairn_codec_new(levels[l]);
		tu_fill_text(b, big, 4 + (uint64_t)l);
		roundtrip(cx, b, 3000, 1);
		roundtrip(cx, b, levels[l] < 10 ? big : (1u << 20), 1); /* 19 is slow */
		roundtrip(cx, b, 70000, 1);
		cairn_codec_free(cx);
	}
	cx = cairn_codec_new(0); /* compression off */
	tu_fill_text(b, 100000, 2);
	roundtrip(cx, b, 100000, 0);
	cairn_codec_free(cx);
	free(b);
}
END_TEST

/*
 * Compressed bodies are single zstd frames that carry their content size, at
 * every level and size, up to the largest chunk: a static zstd context began
 * with all parameters zero and wrote frames without it (decoders refused
 * them), and a too small workspace would silently store everything raw.
 */
START_TEST(zstd_frames_carry_size)
{
	static const size_t sizes[] = {1000, 70000, 1u << 20, (8u << 20) + 5};
	static const int levels[] = {1, 3, 9, 19};
	char *in = malloc((8u << 20) + 5);
	tu_fill_text(in, (8u << 20) + 5, 8);
	for (size_t l = 0; l < sizeof(levels) / sizeof(levels[0]); l++) {
		cairn_codec *cx = cairn_codec_new(levels[l]);
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			if (levels[l] > 9 && sizes[i] > 70000)
				break; /* level 19 (its own growing context) is slow on megabytes */
			const void *body;
			size_t blen;
			uint8_t codec = cairn_blob_compress(cx, in, sizes[i], &body, &blen);
			ck_assert_msg(codec == CAIRN_CODEC_ZSTD, "level %d, %zu bytes stored raw",
				      levels[l], sizes[i]);
			ck_assert_msg(ZSTD_getFrameContentSize(body, blen) == sizes[i],
				      "level %d, %zu bytes: frame without its size", levels[l],
				      sizes[i]);
			ck_assert_uint_eq(ZSTD_findFrameCompressedSize(body, blen), blen);
		}
		cairn_codec_free(cx);
	}
	free(in);
}
END_TEST

START_TEST(blob_tamper)
{
	cairn_codec *cx = cairn_codec_new(3);
	uint8_t key[32], key2[32];
	tu_fill_random(key, 32, 1);
	tu_fill_random(key2, 32, 2);
	size_t lens[] = {0, 1, 3000};
	for (int t = 0; t < 2; t++) {
		for (size_t li = 0; li < 3; li++) {
			size_t len = lens[li];
			uint8_t *data = malloc(len + 1);
			if (t)
				tu_fill_text(data, len, 5);
			else
				tu_fill_random(data, len, 5);
			uint8_t *enc = malloc(cairn_blob_bound(len));
			long n = cairn_blob_encode(cx, key, 1, NULL, 0, data, len, enc);
			ck_assert_int_gt(n, 0);
			cairn_buf out = CAIRN_BUF_INIT;
			/* flip every bit of a small blob, a sample of a large one */
			for (long i = 0; i < n; i += (n > 200 ? 7 : 1)) {
				for (int bit = 0; bit < 8; bit++) {
					enc[i] ^= (uint8_t)(1 << bit);
					ck_assert_int_eq(cairn_blob_decode(cx, key, NULL, 0, enc,
									   (size_t)n, 1 << 20, &out),
							 -EBADMSG);
					ck_assert_uint_eq(out.len, 0);
					enc[i] ^= (uint8_t)(1 << bit);
				}
			}
			/* truncation and wrong key */
			for (long k = 0; k < n; k++)
				ck_assert_int_eq(cairn_blob_decode(cx, key, NULL, 0, enc, (size_t)k,
								   1 << 20, &out),
						 -EBADMSG);
			ck_assert_int_eq(
			    cairn_blob_decode(cx, key2, NULL, 0, enc, (size_t)n, 1 << 20, &out),
			    -EBADMSG);
			ck_assert_int_eq(
			    cairn_blob_decode(cx, key, NULL, 0, enc, (size_t)n, 1 << 20, &out), 0);
			cairn_buf_free(&out);
			free(enc);
			free(data);
		}
	}
	cairn_codec_free(cx);
}
END_TEST

static const cairn_kdf_params fast_kdf = {1, 64, 1};

START_TEST(keyfile_roundtrip)
{
	cairn_keyset ks, got;
	uint8_t repo[32];
	tu_fill_random(repo, 32, 1);
	cairn_keyset_generate(&ks, repo);
	cairn_buf f = CAIRN_BUF_INIT;
	ck_assert_int_eq(cairn_keyfile_create(&f, &ks, "correct horse", &fast_kdf, "root@host", 42),
			 0);
	ck_assert_int_eq(cairn_keyfile_open(&got, f.data, f.len, "correct horse"), 0);
	ck_assert(memcmp(&ks, &got, sizeof(ks)) == 0);
	ck_assert_int_eq(cairn_keyfile_open(&got, f.data, f.len, "wrong"), -EKEYREJECTED);
	ck_assert_int_eq(cairn_keyfile_open(&got, f.data, f.len, ""), -EKEYREJECTED);
	char label[64];
	int64_t created;
	cairn_kdf_params kdf;
	ck_assert_int_eq(cairn_keyfile_info(f.data, f.len, label, sizeof(label), &created, &kdf), 0);
	ck_assert_str_eq(label, "root@host");
	ck_assert_int_eq(created, 42);
	ck_assert_uint_eq(kdf.m_kib, 64);
	/* tampering with the clear header is detected as a wrong passphrase or corruption */
	f.data[50] ^= 1;
	ck_assert_int_lt(cairn_keyfile_open(&got, f.data, f.len, "correct horse"), 0);
	f.data[50] ^= 1;
	/* absurd KDF parameters are refused before running the KDF */
	cairn_put_le32(f.data + 14, 0xffffffffu);
	ck_assert_int_eq(cairn_keyfile_open(&got, f.data, f.len, "correct horse"), -EBADMSG);
	/* truncated */
	ck_assert_int_eq(cairn_keyfile_open(&got, f.data, f.len - 1, "x"), -EBADMSG);
	ck_assert_int_eq(cairn_keyfile_open(&got, "garbage", 7, "x"), -EBADMSG);
	cairn_buf_free(&f);
}
END_TEST

START_TEST(seal_roundtrip)
{
	cairn_keyset ks, other;
	uint8_t repo[32] = {0};
	cairn_keyset_generate(&ks, repo);
	cairn_keyset_generate(&other, repo);
	cairn_codec *cx = cairn_codec_new(3);
	cairn_buf s = CAIRN_BUF_INIT, out = CAIRN_BUF_INIT;
	ck_assert_int_eq(cairn_seal(cx, &ks, 2, "snapshot!", 9, &s), 0);
	ck_assert_int_eq(cairn_unseal(cx, &ks, 2, s.data, s.len, 100, &out), 0);
	ck_assert_uint_eq(out.len, 9);
	ck_assert_int_eq(cairn_unseal(cx, &ks, 3, s.data, s.len, 100, &out), -EBADMSG);
	ck_assert_int_eq(cairn_unseal(cx, &other, 2, s.data, s.len, 100, &out), -EBADMSG);
	s.data[5] = 3; /* changing the kind in the header breaks authentication */
	ck_assert_int_eq(cairn_unseal(cx, &ks, 3, s.data, s.len, 100, &out), -EBADMSG);
	cairn_buf_free(&s);
	cairn_buf_free(&out);
	cairn_codec_free(cx);
}
END_TEST

START_TEST(ids_and_gear)
{
	cairn_keyset a, b;
	uint8_t repo[32] = {0};
	cairn_keyset_generate(&a, repo);
	cairn_keyset_generate(&b, repo);
	uint8_t ia[32], ib[32], ia2[32];
	cairn_chunk_id(&a, "hello", 5, ia);
	cairn_chunk_id(&a, "hello", 5, ia2);
	cairn_chunk_id(&b, "hello", 5, ib);
	ck_assert(memcmp(ia, ia2, 32) == 0);
	ck_assert(memcmp(ia, ib, 32) != 0);
	uint64_t ga[256], gb[256], ga2[256];
	cairn_keyset_gear(&a, ga);
	cairn_keyset_gear(&a, ga2);
	cairn_keyset_gear(&b, gb);
	ck_assert(memcmp(ga, ga2, sizeof(ga)) == 0);
	ck_assert(memcmp(ga, gb, sizeof(ga)) != 0);
	uint8_t s1[32], s2[32], salt[32] = {1};
	cairn_subkey(s1, a.enc, salt, 32, "cairn/pack/v1");
	salt[0] = 2;
	cairn_subkey(s2, a.enc, salt, 32, "cairn/pack/v1");
	ck_assert(memcmp(s1, s2, 32) != 0);
}
END_TEST

static Suite *engine_codec_suite(void)
{
	Suite *s = suite_create("codec");
	TCase *kat = tcase_create("known-answers");
	tcase_add_test(kat, kat_hmac);
	tcase_add_test(kat, kat_hkdf);
	tcase_add_test(kat, kat_gcm);
	tcase_add_test(kat, kat_xxh128);
	suite_add_tcase(s, kat);
	TCase *core = tcase_create("core");
	tcase_set_timeout(core, 120);
	tcase_add_test(core, blob_roundtrips);
	tcase_add_test(core, zstd_frames_carry_size);
	tcase_add_test(core, ids_and_gear);
	tcase_add_test(core, seal_roundtrip);
	tcase_add_test(core, keyfile_roundtrip);
	suite_add_tcase(s, core);
	TCase *err = tcase_create("errors");
	tcase_set_timeout(err, 120);
	tcase_add_test(err, blob_tamper);
	suite_add_tcase(s, err);
	return s;
}

CAIRN_CHECK_MAIN(engine_codec_suite)
