/*
 * fuzz_snapshot.c - snapshot_decode (engine/repo_int.h) on arbitrary bytes.
 *
 * The decoder keeps the caller's idhex (the object name) in every case and
 * leaves nothing allocated on failure. What decodes must re-encode, decode
 * to an equal snapshot and encode again to the same bytes.
 */
#include "engine/repo_int.h"
#include "tests/fuzz/fuzz_common.h"

static const char idhex[65] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static int str_eq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

static void check_eq(const cairn_snapshot *a, const cairn_snapshot *b)
{
	FUZZ_ASSERT(strcmp(a->idhex, b->idhex) == 0);
	FUZZ_ASSERT(a->time_ns == b->time_ns && memcmp(a->tree, b->tree, 32) == 0);
	FUZZ_ASSERT(a->has_parent == b->has_parent);
	FUZZ_ASSERT(!a->has_parent || memcmp(a->parent, b->parent, 32) == 0);
	FUZZ_ASSERT(str_eq(a->client, b->client) && str_eq(a->hostname, b->hostname) &&
		    str_eq(a->username, b->username) && str_eq(a->program, b->program));
	FUZZ_ASSERT(a->npaths == b->npaths && a->ntags == b->ntags);
	for (size_t i = 0; i < a->npaths; i++)
		FUZZ_ASSERT(str_eq(a->paths[i], b->paths[i]));
	for (size_t i = 0; i < a->ntags; i++)
		FUZZ_ASSERT(str_eq(a->tags[i], b->tags[i]));
	FUZZ_ASSERT(memcmp(&a->summary, &b->summary, sizeof(a->summary)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cairn_snapshot s, s2;
	memset(&s, 0xa5, sizeof(s)); /* the decoder must not trust anything but idhex */
	memcpy(s.idhex, idhex, sizeof(idhex));
	if (snapshot_decode(&s, data, size) < 0) {
		FUZZ_ASSERT(strcmp(s.idhex, idhex) == 0);
		FUZZ_ASSERT(!s.client && !s.hostname && !s.username && !s.program);
		FUZZ_ASSERT(!s.paths && !s.tags && !s.npaths && !s.ntags);
		return 0;
	}
	FUZZ_ASSERT(strcmp(s.idhex, idhex) == 0);
	FUZZ_ASSERT(s.has_parent == 0 || s.has_parent == 1);
	cairn_buf enc = CAIRN_BUF_INIT, enc2 = CAIRN_BUF_INIT;
	snapshot_encode(&s, &enc);
	FUZZ_ASSERT(enc.len <= size + 11); /* only missing (zero) summary counters add bytes */
	memset(&s2, 0, sizeof(s2));
	memcpy(s2.idhex, idhex, sizeof(idhex));
	FUZZ_ASSERT(snapshot_decode(&s2, enc.data, enc.len) == 0);
	check_eq(&s, &s2);
	snapshot_encode(&s2, &enc2);
	FUZZ_ASSERT(enc2.len == enc.len && memcmp(enc.data, enc2.data, enc.len) == 0);
	cairn_buf_free(&enc);
	cairn_buf_free(&enc2);
	cairn_snapshot_free(&s);
	cairn_snapshot_free(&s2);
	return 0;
}
