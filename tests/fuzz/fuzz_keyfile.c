/*
 * fuzz_keyfile.c - cairn_keyfile_info and cairn_keyfile_open on arbitrary
 * bytes with a fixed passphrase.
 *
 * The Argon2id parameters come from the input (bounded by CAIRN_KDF_MAX_*,
 * which still allows 4 GiB and 64 passes); to keep the fuzzer fast, open
 * is only tried when m_kib <= 1024 and t_cost <= 2. The seeds are key files
 * made with such parameters under FUZZ_PASS, so the success path is reached.
 */
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char label[64];
	int64_t created = 0;
	cairn_kdf_params kdf;
	memset(label, 'x', sizeof(label));
	int r = cairn_keyfile_info(data, size, label, sizeof(label), &created, &kdf);
	/* NULL outputs are allowed */
	FUZZ_ASSERT(cairn_keyfile_info(data, size, NULL, 0, NULL, NULL) == r);
	if (r < 0) {
		FUZZ_ASSERT(r == -EBADMSG);
		cairn_keyset k;
		FUZZ_ASSERT(cairn_keyfile_open(&k, data, size, FUZZ_PASS) == -EBADMSG);
		return 0;
	}
	FUZZ_ASSERT(r == 0);
	FUZZ_ASSERT(memchr(label, 0, sizeof(label)) != NULL);
	FUZZ_ASSERT(kdf.t_cost >= 1 && kdf.t_cost <= CAIRN_KDF_MAX_T);
	FUZZ_ASSERT(kdf.m_kib <= CAIRN_KDF_MAX_M_KIB);
	FUZZ_ASSERT(kdf.lanes >= 1 && kdf.m_kib >= 8 * kdf.lanes);
	if (kdf.m_kib > 1024 || kdf.t_cost > 2)
		return 0;
	cairn_keyset k;
	memset(&k, 0, sizeof(k));
	r = cairn_keyfile_open(&k, data, size, FUZZ_PASS);
	FUZZ_ASSERT(r == 0 || r == -EKEYREJECTED || r == -EBADMSG);
	/* a wrong passphrase never opens what the right one opens */
	if (r == 0) {
		cairn_keyset k2;
		FUZZ_ASSERT(cairn_keyfile_open(&k2, data, size, FUZZ_PASS "!") == -EKEYREJECTED);
	}
	return 0;
}
