/*
 * fuzz_tree.c - cairn_tree_decode on arbitrary bytes.
 *
 * Whatever decodes must encode again (the encoder accepts every tree the
 * decoder returns), decode to an equal tree, and the encoding must be the
 * input itself unless the input carried extensions (the only thing the
 * decoder skips), in which case it is strictly shorter.
 */
#include "engine/node_int.h"
#include "tests/fuzz/fuzz_common.h"

static int str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

static int node_eq(const cairn_node *a, const cairn_node *b)
{
	if (a->type != b->type || a->flags != b->flags || !str_eq(a->name, b->name) ||
	    a->mode != b->mode || a->uid != b->uid || a->gid != b->gid ||
	    !str_eq(a->user, b->user) || !str_eq(a->group, b->group) || a->size != b->size ||
	    a->mtime_ns != b->mtime_ns || a->ctime_ns != b->ctime_ns ||
	    a->atime_ns != b->atime_ns || a->dev != b->dev || a->ino != b->ino ||
	    a->nlink != b->nlink || a->rdev != b->rdev || !str_eq(a->link, b->link) ||
	    a->n_xattrs != b->n_xattrs || a->n_extents != b->n_extents ||
	    memcmp(a->digest, b->digest, CAIRN_ID_LEN) != 0 ||
	    memcmp(a->subtree, b->subtree, CAIRN_ID_LEN) != 0)
		return 0;
	for (size_t k = 0; k < a->n_xattrs; k++) {
		const cairn_xattr *x = &a->xattrs[k], *y = &b->xattrs[k];
		if (!str_eq(x->name, y->name) || x->len != y->len ||
		    (x->len && memcmp(x->value, y->value, x->len) != 0))
			return 0;
	}
	for (size_t k = 0; k < a->n_extents; k++) {
		const cairn_extent *x = &a->extents[k], *y = &b->extents[k];
		if (x->hole != y->hole || x->len != y->len || memcmp(x->id, y->id, CAIRN_ID_LEN) != 0)
			return 0;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cairn_tree t, t2;
	if (cairn_tree_decode(&t, data, size) < 0) {
		FUZZ_ASSERT(t.n == 0 && t.nodes == NULL);
		return 0;
	}
	cairn_buf enc = CAIRN_BUF_INIT;
	FUZZ_ASSERT(cairn_tree_encode(&t, &enc) == 0);
	FUZZ_ASSERT(enc.len <= size);
	FUZZ_ASSERT(enc.len < size || memcmp(enc.data, data, size) == 0);
	FUZZ_ASSERT(cairn_tree_decode(&t2, enc.data, enc.len) == 0);
	FUZZ_ASSERT(t2.n == t.n);
	for (size_t i = 0; i < t.n; i++)
		FUZZ_ASSERT(node_eq(&t.nodes[i], &t2.nodes[i]));
	for (size_t i = 0; i + 1 < t.n; i++) {
		const char *a = t.nodes[i].name, *b = t.nodes[i + 1].name;
		FUZZ_ASSERT(cairn_name_cmp(a, strlen(a), b, strlen(b)) < 0);
		FUZZ_ASSERT(cairn_tree_find(&t, b) == &t.nodes[i + 1]);
	}
	cairn_buf_free(&enc);
	cairn_tree_free(&t);
	cairn_tree_free(&t2);
	return 0;
}
