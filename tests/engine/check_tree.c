/*
 * check_tree.c - nodes and trees: name order, the binary tree encoding
 * (round trips, strict rejection of malformed input, truncation and random
 * corruption), and capturing / recreating / applying metadata on a real
 * file system (root is needed for the owner and device parts).
 */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "engine/node_int.h"
#include "tests/support/testutil.h"

#define NAME255 /* 255 bytes */                                                                    \
	"L123456789012345678901234567890123456789012345678901234567890123456789012345678901234567" \
	"8901234567890123456789012345678901234567890123456789012345678901234567890123456789012345" \
	"678901234567890123456789012345678901234567890123456789012345678901234567890123E"

/* Helpers ----------------------------------------------------------------- */

/* A node of @p type named @p name with plausible defaults. */
static cairn_node mk(uint8_t type, const char *name)
{
	cairn_node n;
	memset(&n, 0, sizeof(n));
	n.type = type;
	n.name = strdup(name);
	n.mode = 0644;
	n.uid = 1000;
	n.gid = 100;
	n.nlink = 1;
	n.mtime_ns = 1614834367123456789;
	n.ctime_ns = 1614834368000000001;
	n.atime_ns = 1614834369999999999;
	n.dev = 2049;
	n.ino = 12345;
	if (type == CAIRN_NODE_SYMLINK) {
		n.link = strdup("target");
		n.size = 6;
	}
	return n;
}

static void add_xattr(cairn_node *n, const char *name, const void *val, size_t len)
{
	n->xattrs = realloc(n->xattrs, (n->n_xattrs + 1) * sizeof(*n->xattrs));
	cairn_xattr *x = &n->xattrs[n->n_xattrs++];
	x->name = strdup(name);
	x->value = malloc(len ? len : 1);
	memcpy(x->value, val, len);
	x->len = len;
}

static void add_extent(cairn_node *n, int hole, uint64_t len, uint8_t seed)
{
	n->extents = realloc(n->extents, (n->n_extents + 1) * sizeof(*n->extents));
	cairn_extent *e = &n->extents[n->n_extents++];
	memset(e, 0, sizeof(*e));
	e->hole = (uint8_t)hole;
	e->len = len;
	if (!hole)
		memset(e->id, seed, sizeof(e->id));
}

static void add(cairn_tree *t, cairn_node n)
{
	cairn_tree_add(t, &n);
}

/* A sorted tree with every node type, xattrs, extents, odd names and extreme values. */
static void sample_tree(cairn_tree *t)
{
	memset(t, 0, sizeof(*t));
	cairn_node n = mk(CAIRN_NODE_FILE, "file with spaces");
	n.mode = 04755;
	n.size = 3 * 1048576ull + 7;
	n.flags = CAIRN_NODE_F_DIGEST | CAIRN_NODE_F_CHANGED;
	memset(n.digest, 0xd1, sizeof(n.digest));
	n.user = strdup("alice");
	n.group = strdup("staff");
	add_xattr(&n, "user.a", "1", 1);
	add_xattr(&n, "user.b", "x\0y\0", 4);
	add_xattr(&n, "user.empty", "", 0);
	add_extent(&n, 0, 1048576, 1);
	add_extent(&n, 1, 1048576, 0);
	add_extent(&n, 0, 1048583, 2);
	add(t, n);

	n = mk(CAIRN_NODE_FILE, "new\nline");
	n.size = UINT64_MAX;
	n.mtime_ns = INT64_MIN;
	n.ctime_ns = INT64_MAX;
	n.atime_ns = -1;
	n.uid = UINT32_MAX;
	n.gid = UINT32_MAX;
	n.nlink = UINT32_MAX;
	n.dev = UINT64_MAX;
	n.ino = UINT64_MAX;
	n.mode = 0;
	add_extent(&n, 1, UINT64_MAX, 0);
	add(t, n);

	n = mk(CAIRN_NODE_DIR, "\xff\xfe");
	n.mode = 01777;
	memset(n.subtree, 0x5a, sizeof(n.subtree));
	add_xattr(&n, "trusted.x", "\0\0\0", 3);
	add(t, n);

	n = mk(CAIRN_NODE_SYMLINK, NAME255);
	free(n.link);
	n.link = strdup("/abs/dangling\ntarget \xff");
	n.size = strlen(n.link);
	n.mode = 0777;
	add(t, n);

	n = mk(CAIRN_NODE_FIFO, "fifo");
	add(t, n);
	n = mk(CAIRN_NODE_CHR, "chr");
	n.rdev = makedev(1, 3);
	add(t, n);
	n = mk(CAIRN_NODE_BLK, "blk");
	n.rdev = makedev(259, 1048575);
	add(t, n);
	n = mk(CAIRN_NODE_SOCK, "-sock");
	add(t, n);
	n = mk(CAIRN_NODE_FILE, "\x01");
	add(t, n);
	n = mk(CAIRN_NODE_DIR, "...");
	add(t, n);
	cairn_tree_sort(t);
}

/* Whether two strings (either may be NULL) are equal. */
static int str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

/*
 * Assert that @p b has the metadata of @p a. With @p fs, compare only what a
 * restore reproduces (no ctime, dev, ino, nlink, extents, digest, subtree).
 */
static void assert_node_eq(const cairn_node *a, const cairn_node *b, int fs)
{
	ck_assert_str_eq(a->name, b->name);
	ck_assert_uint_eq(a->type, b->type);
	ck_assert_uint_eq(a->mode, b->mode);
	ck_assert_uint_eq(a->uid, b->uid);
	ck_assert_uint_eq(a->gid, b->gid);
	ck_assert_msg(str_eq(a->user, b->user), "user of %s", a->name);
	ck_assert_msg(str_eq(a->group, b->group), "group of %s", a->name);
	ck_assert_uint_eq(a->size, b->size);
	ck_assert_int_eq(a->mtime_ns, b->mtime_ns);
	ck_assert_uint_eq(a->rdev, b->rdev);
	ck_assert_msg(str_eq(a->link, b->link), "link of %s", a->name);
	ck_assert_uint_eq(a->n_xattrs, b->n_xattrs);
	for (size_t k = 0; k < a->n_xattrs; k++) {
		ck_assert_str_eq(a->xattrs[k].name, b->xattrs[k].name);
		ck_assert_uint_eq(a->xattrs[k].len, b->xattrs[k].len);
		ck_assert(memcmp(a->xattrs[k].value, b->xattrs[k].value, a->xattrs[k].len) == 0);
	}
	if (fs) {
		if (a->type != CAIRN_NODE_SYMLINK)
			ck_assert_int_eq(a->atime_ns, b->atime_ns);
		return;
	}
	ck_assert_int_eq(a->atime_ns, b->atime_ns);
	ck_assert_uint_eq(a->flags, b->flags);
	ck_assert_int_eq(a->ctime_ns, b->ctime_ns);
	ck_assert_uint_eq(a->dev, b->dev);
	ck_assert_uint_eq(a->ino, b->ino);
	ck_assert_uint_eq(a->nlink, b->nlink);
	ck_assert_uint_eq(a->n_extents, b->n_extents);
	for (size_t k = 0; k < a->n_extents; k++) {
		ck_assert_uint_eq(a->extents[k].hole, b->extents[k].hole);
		ck_assert_uint_eq(a->extents[k].len, b->extents[k].len);
		ck_assert(memcmp(a->extents[k].id, b->extents[k].id, CAIRN_ID_LEN) == 0);
	}
	ck_assert(memcmp(a->digest, b->digest, CAIRN_ID_LEN) == 0);
	ck_assert(memcmp(a->subtree, b->subtree, CAIRN_ID_LEN) == 0);
}

static void assert_tree_eq(const cairn_tree *a, const cairn_tree *b)
{
	ck_assert_uint_eq(a->n, b->n);
	for (size_t i = 0; i < a->n; i++)
		assert_node_eq(&a->nodes[i], &b->nodes[i], 0);
}

/* Decoding @p len bytes must fail with -EBADMSG, leave @p out empty and say @p msg. */
static void assert_bad(const void *data, size_t len, const char *msg)
{
	cairn_tree t;
	memset(&t, 0xaa, sizeof(t));
	int rc = cairn_tree_decode(&t, data, len);
	ck_assert_msg(rc == -EBADMSG, "expected -EBADMSG for '%s', got %d", msg, rc);
	ck_assert_uint_eq(t.n, 0);
	ck_assert_ptr_null(t.nodes);
	if (msg)
		ck_assert_msg(strstr(cairn_error_last(), msg), "message '%s' lacks '%s'",
		              cairn_error_last(), msg);
}

/* Raw encodings for malformed input -------------------------------------- */

static void raw_header(cairn_buf *b, uint64_t count)
{
	cairn_buf_append(b, "CTRE", 4);
	cairn_buf_put_u8(b, 1);
	cairn_buf_put_uvar(b, count);
}

/* The fixed fields of a node, through rdev (and the target of a symlink). */
static void raw_head(cairn_buf *b, uint8_t type, const char *name, size_t nlen, uint64_t mode)
{
	cairn_buf_put_u8(b, type);
	cairn_buf_put_uvar(b, 0); /* flags */
	cairn_buf_put_bytes(b, name, nlen);
	cairn_buf_put_uvar(b, mode);
	for (int i = 0; i < 2; i++) /* uid, gid */
		cairn_buf_put_uvar(b, 0);
	cairn_buf_put_bytes(b, "", 0); /* user */
	cairn_buf_put_bytes(b, "", 0); /* group */
	for (int i = 0; i < 8; i++)    /* size, 3 times, dev, ino, nlink, rdev */
		cairn_buf_put_uvar(b, 0);
	if (type == CAIRN_NODE_SYMLINK)
		cairn_buf_put_bytes(b, "t", 1);
}

/* A whole node with no xattrs, extents or extensions. */
static void raw_node(cairn_buf *b, uint8_t type, const char *name)
{
	raw_head(b, type, name, strlen(name), 0644);
	cairn_buf_put_uvar(b, 0); /* xattrs */
	cairn_buf_put_uvar(b, 0); /* extents */
	if (type == CAIRN_NODE_DIR)
		cairn_buf_append(b, "0123456789abcdef0123456789abcdef", 32);
	cairn_buf_put_uvar(b, 0); /* extensions */
}

/* Name order and tree helpers --------------------------------------------- */

START_TEST(test_name_order)
{
	ck_assert_int_lt(cairn_name_cmp("a", 1, "ab", 2), 0);
	ck_assert_int_gt(cairn_name_cmp("b", 1, "ab", 2), 0);
	ck_assert_int_eq(cairn_name_cmp("ab", 2, "ab", 2), 0);
	ck_assert_int_gt(cairn_name_cmp("\xff", 1, "z", 1), 0); /* bytes are unsigned */
	ck_assert(cairn_name_valid("a", 1));
	ck_assert(cairn_name_valid("...", 3));
	ck_assert(cairn_name_valid(NAME255, 255));
	ck_assert(!cairn_name_valid("", 0));
	ck_assert(!cairn_name_valid(".", 1));
	ck_assert(!cairn_name_valid("..", 2));
	ck_assert(!cairn_name_valid("a/b", 3));
	ck_assert(!cairn_name_valid("a\0b", 3));
	char n256[257];
	memset(n256, 'x', 256);
	n256[256] = 0;
	ck_assert(!cairn_name_valid(n256, 256));
}
END_TEST

START_TEST(test_sort_find_copy)
{
	static const char *names[] = {"b", "ab", "a", "\xff", "a\n", "B", "a b", NAME255};
	static const char *sorted[] = {"B", NAME255, "a", "a\n", "a b", "ab", "b", "\xff"};
	cairn_tree t = {0};
	for (size_t i = 0; i < 8; i++)
		add(&t, mk(CAIRN_NODE_FILE, names[i]));
	cairn_tree_sort(&t);
	for (size_t i = 0; i < 8; i++) {
		ck_assert_str_eq(t.nodes[i].name, sorted[i]);
		ck_assert_ptr_eq(cairn_tree_find(&t, sorted[i]), &t.nodes[i]);
	}
	ck_assert_ptr_null(cairn_tree_find(&t, "aa"));
	ck_assert_ptr_null(cairn_tree_find(&t, "c"));
	ck_assert_ptr_null(cairn_tree_find(&t, ""));

	cairn_tree s;
	sample_tree(&s);
	for (size_t i = 0; i < s.n; i++) {
		cairn_node c;
		cairn_node_copy(&c, &s.nodes[i]);
		assert_node_eq(&s.nodes[i], &c, 0);
		ck_assert_ptr_ne(c.name, s.nodes[i].name);
		if (c.n_xattrs)
			ck_assert_ptr_ne(c.xattrs, s.nodes[i].xattrs);
		cairn_node_free(&c);
		ck_assert_ptr_null(c.name);
	}
	cairn_node_free(NULL);
	cairn_tree_free(&s);
	cairn_tree_free(&t);
	cairn_tree_free(&t); /* idempotent */
}
END_TEST

/* Encoding ---------------------------------------------------------------- */

START_TEST(test_roundtrip)
{
	cairn_tree t, u, v;
	cairn_buf b = CAIRN_BUF_INIT, b2 = CAIRN_BUF_INIT;
	sample_tree(&t);
	ck_assert_msg(cairn_tree_encode(&t, &b) == 0, "encode: %s", cairn_error_last());
	ck_assert(memcmp(b.data, "CTRE\x01", 5) == 0);
	ck_assert_int_eq(cairn_tree_decode(&u, b.data, b.len), 0);
	assert_tree_eq(&t, &u);
	ck_assert_int_eq(cairn_tree_encode(&u, &b2), 0);
	ck_assert_uint_eq(b.len, b2.len);
	ck_assert(memcmp(b.data, b2.data, b.len) == 0);

	/* the empty tree, and appending after existing bytes */
	cairn_tree empty = {0};
	b2.len = 0;
	cairn_buf_append(&b2, "xyz", 3);
	ck_assert_int_eq(cairn_tree_encode(&empty, &b2), 0);
	ck_assert_uint_eq(b2.len, 3 + 6);
	ck_assert_int_eq(cairn_tree_decode(&v, b2.data + 3, b2.len - 3), 0);
	ck_assert_uint_eq(v.n, 0);
	cairn_tree_free(&v);

	/* a hole's id and an unflagged digest are not stored */
	cairn_node *f = (cairn_node *)cairn_tree_find(&t, "file with spaces");
	size_t fi = (size_t)(f - t.nodes);
	ck_assert_uint_eq(f->extents[1].hole, 1);
	f->extents[1].id[0] = 7;
	f->flags &= ~CAIRN_NODE_F_DIGEST;
	b2.len = 0;
	ck_assert_int_eq(cairn_tree_encode(&t, &b2), 0);
	ck_assert_uint_eq(b2.len, b.len - 32);
	ck_assert_int_eq(cairn_tree_decode(&v, b2.data, b2.len), 0);
	ck_assert_uint_eq(v.nodes[fi].extents[1].id[0], 0);
	ck_assert_uint_eq(v.nodes[fi].digest[0], 0);
	cairn_tree_free(&v);

	cairn_tree_free(&t);
	cairn_tree_free(&u);
	cairn_buf_free(&b);
	cairn_buf_free(&b2);
}
END_TEST

/* The example of docs/FORMAT.md ("Trees"), byte for byte. */
START_TEST(test_golden)
{
	static const uint8_t want[] = {
	    0x43, 0x54, 0x52, 0x45, 0x01, 0x01, 0x04, 0x00, 0x01, 0x61, 0xa4, 0x03,
	    0x00, 0x00, 0x04, 0x72, 0x6f, 0x6f, 0x74, 0x04, 0x72, 0x6f, 0x6f, 0x74,
	    0x00, 0x02, 0x02, 0x02, 0x00, 0x05, 0x01, 0x00, 0x00, 0x00, 0x00,
	};
	cairn_tree t = {0}, u;
	cairn_node n;
	memset(&n, 0, sizeof(n));
	n.type = CAIRN_NODE_FIFO;
	n.name = strdup("a");
	n.mode = 0644;
	n.user = strdup("root");
	n.group = strdup("root");
	n.mtime_ns = n.ctime_ns = n.atime_ns = 1;
	n.ino = 5;
	n.nlink = 1;
	cairn_tree_add(&t, &n);
	cairn_buf b = CAIRN_BUF_INIT;
	ck_assert_int_eq(cairn_tree_encode(&t, &b), 0);
	ck_assert_uint_eq(b.len, sizeof(want));
	ck_assert(memcmp(b.data, want, sizeof(want)) == 0);
	ck_assert_int_eq(cairn_tree_decode(&u, want, sizeof(want)), 0);
	assert_tree_eq(&t, &u);
	cairn_tree_free(&t);
	cairn_tree_free(&u);
	cairn_buf_free(&b);
}
END_TEST

/* Encoding @p t must fail with -EINVAL, append nothing and mention @p msg. */
static void assert_enc_fails(cairn_tree *t, const char *msg)
{
	cairn_buf b = CAIRN_BUF_INIT;
	cairn_buf_append(&b, "x", 1);
	ck_assert_int_eq(cairn_tree_encode(t, &b), -EINVAL);
	ck_assert_uint_eq(b.len, 1);
	ck_assert_msg(strstr(cairn_error_last(), msg), "message '%s' lacks '%s'",
	              cairn_error_last(), msg);
	cairn_buf_free(&b);
	cairn_tree_free(t);
}

START_TEST(test_encode_rejects)
{
	cairn_tree t = {0};
	add(&t, mk(CAIRN_NODE_FILE, "b"));
	add(&t, mk(CAIRN_NODE_FILE, "a"));
	assert_enc_fails(&t, "node 1: names not sorted");

	add(&t, mk(CAIRN_NODE_FILE, "a"));
	add(&t, mk(CAIRN_NODE_DIR, "a"));
	assert_enc_fails(&t, "node 1: names not sorted and unique");

	static const char *bad[] = {"", ".", "..", "a/b", "/"};
	static const char *why[] = {"empty name", "'.' or '..'", "'.' or '..'", "contains '/'",
	                            "contains '/'"};
	for (int i = 0; i < 5; i++) {
		add(&t, mk(CAIRN_NODE_FILE, bad[i]));
		assert_enc_fails(&t, why[i]);
	}
	char n256[257];
	memset(n256, 'x', 256);
	n256[256] = 0;
	add(&t, mk(CAIRN_NODE_FILE, n256));
	assert_enc_fails(&t, "name longer");

	cairn_node n = mk(CAIRN_NODE_FILE, "m");
	n.mode = 010000;
	add(&t, n);
	assert_enc_fails(&t, "mode");

	n = mk(CAIRN_NODE_SYMLINK, "s");
	free(n.link);
	n.link = NULL;
	add(&t, n);
	assert_enc_fails(&t, "symlink target");

	n = mk(CAIRN_NODE_DIR, "d");
	add_extent(&n, 1, 5, 0);
	add(&t, n);
	assert_enc_fails(&t, "extents on a non-file");

	n = mk(CAIRN_NODE_FILE, "f");
	add_extent(&n, 0, 0, 1);
	add(&t, n);
	assert_enc_fails(&t, "zero length");

	n = mk(CAIRN_NODE_FILE, "f");
	add_extent(&n, 1, UINT64_MAX, 0);
	add_extent(&n, 1, 1, 0);
	add(&t, n);
	assert_enc_fails(&t, "overflows");

	n = mk(CAIRN_NODE_FILE, "f");
	add_xattr(&n, "user.b", "", 0);
	add_xattr(&n, "user.a", "", 0);
	add(&t, n);
	assert_enc_fails(&t, "xattr 1: names not sorted");

	n = mk(CAIRN_NODE_DIR, "d");
	n.flags = CAIRN_NODE_F_DIGEST;
	add(&t, n);
	assert_enc_fails(&t, "digest flag");

	n = mk(CAIRN_NODE_FILE, "f");
	n.flags = 0x80;
	add(&t, n);
	assert_enc_fails(&t, "unknown flags");

	n = mk(9, "f");
	add(&t, n);
	assert_enc_fails(&t, "unknown type");
}
END_TEST

/* Decoding malformed input --------------------------------------------------- */

START_TEST(test_decode_rejects)
{
	cairn_buf b = CAIRN_BUF_INIT;
	cairn_tree t;

	/* sanity: the raw writer makes valid trees */
	raw_header(&b, 3);
	raw_node(&b, CAIRN_NODE_FIFO, "a");
	raw_node(&b, CAIRN_NODE_DIR, "b");
	raw_node(&b, CAIRN_NODE_SYMLINK, "c");
	ck_assert_int_eq(cairn_tree_decode(&t, b.data, b.len), 0);
	ck_assert_uint_eq(t.n, 3);
	ck_assert_str_eq(t.nodes[2].link, "t");
	cairn_tree_free(&t);

	b.len = 0;
	raw_header(&b, 4);
	raw_node(&b, CAIRN_NODE_FIFO, "a");
	raw_node(&b, CAIRN_NODE_FIFO, "b");
	raw_node(&b, CAIRN_NODE_FIFO, "c");
	raw_node(&b, CAIRN_NODE_FIFO, "c/d");
	assert_bad(b.data, b.len, "tree: node 3: name contains '/'");

	b.len = 0;
	raw_header(&b, 2);
	raw_node(&b, CAIRN_NODE_FIFO, "b");
	raw_node(&b, CAIRN_NODE_FIFO, "a");
	assert_bad(b.data, b.len, "tree: node 1: names not sorted");

	b.len = 0;
	raw_header(&b, 2);
	raw_node(&b, CAIRN_NODE_FIFO, "ab");
	raw_node(&b, CAIRN_NODE_DIR, "ab");
	assert_bad(b.data, b.len, "tree: node 1: names not sorted and unique");

	b.len = 0;
	raw_header(&b, 2);
	raw_node(&b, CAIRN_NODE_FIFO, "ab");
	raw_node(&b, CAIRN_NODE_FIFO, "a");
	assert_bad(b.data, b.len, "not sorted"); /* shorter sorts first */

	static const char *bad[] = {".", "..", "/"};
	for (int i = 0; i < 3; i++) {
		b.len = 0;
		raw_header(&b, 1);
		raw_node(&b, CAIRN_NODE_FIFO, bad[i]);
		assert_bad(b.data, b.len, "tree: node 0: name");
	}

	struct {
		uint8_t type;
		const char *name;
		size_t nlen;
		uint64_t mode;
		const char *msg;
	} heads[] = {
	    {CAIRN_NODE_FIFO, "a\0b", 3, 0644, "name contains NUL"},
	    {CAIRN_NODE_FIFO, "", 0, 0644, "name of 0 bytes"},
	    {CAIRN_NODE_FIFO, NAME255 "x", 256, 0644, "name of 256 bytes"},
	    {CAIRN_NODE_FIFO, "a", 1, 010000, "mode 4096 out of range"},
	    {0, "a", 1, 0644, "unknown type 0"},
	    {8, "a", 1, 0644, "unknown type 8"},
	};
	for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
		b.len = 0;
		raw_header(&b, 1);
		raw_head(&b, heads[i].type, heads[i].name, heads[i].nlen, heads[i].mode);
		cairn_buf_append(&b, "\0\0\0", 3);
		assert_bad(b.data, b.len, heads[i].msg);
	}

	/* header */
	assert_bad("CTRX\x01\x00", 6, "bad magic");
	assert_bad("CTRE\x02\x00", 6, "unsupported format version 2");
	assert_bad("CTRE\x01", 5, "truncated node count");
	assert_bad("CTRE\x01\x80\x00", 7, "malformed node count"); /* non-minimal 0 */
	assert_bad("CTRE\x01\x00\x00", 7, "1 trailing bytes");
	assert_bad("CTR", 3, "truncated header");
	assert_bad(NULL, 0, "truncated header");
	b.len = 0;
	raw_header(&b, 2);
	raw_node(&b, CAIRN_NODE_FIFO, "a");
	assert_bad(b.data, b.len, "node count 2 exceeds");
	b.len = 0;
	raw_header(&b, UINT64_MAX);
	assert_bad(b.data, b.len, "exceeds");

	/* non-minimal varints and overlong ones */
	b.len = 0;
	raw_header(&b, 1);
	raw_head(&b, CAIRN_NODE_FIFO, "a", 1, 0644);
	cairn_buf_append(&b, "\x80\x00\0\0", 4); /* xattr count 0 as two bytes */
	assert_bad(b.data, b.len, "xattr count: malformed varint");
	b.len = 0;
	raw_header(&b, 1);
	cairn_buf_put_u8(&b, CAIRN_NODE_FIFO);
	cairn_buf_append(&b, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10);
	cairn_buf_append(&b, "padding to a node's minimum", 20);
	assert_bad(b.data, b.len, "flags");

	/* xattrs */
	size_t base;
	b.len = 0;
	raw_header(&b, 1);
	raw_head(&b, CAIRN_NODE_FILE, "f", 1, 0644);
	base = b.len;
	cairn_buf_put_uvar(&b, 2);
	cairn_buf_put_bytes(&b, "user.b", 6);
	cairn_buf_put_bytes(&b, "1", 1);
	cairn_buf_put_bytes(&b, "user.a", 6);
	cairn_buf_put_bytes(&b, "2", 1);
	cairn_buf_append(&b, "\0\0", 2);
	assert_bad(b.data, b.len, "xattr 1: names not sorted");
	b.len = base;
	cairn_buf_put_uvar(&b, 1);
	cairn_buf_put_bytes(&b, "user.\0", 6);
	cairn_buf_put_bytes(&b, "1", 1);
	cairn_buf_append(&b, "\0\0", 2);
	assert_bad(b.data, b.len, "xattr name contains NUL");
	b.len = base;
	cairn_buf_put_uvar(&b, 1);
	cairn_buf_put_bytes(&b, "user.a", 6);
	cairn_buf_put_uvar(&b, 65537);
	assert_bad(b.data, b.len, "xattr value of 65537 bytes");
	b.len = base;
	cairn_buf_put_uvar(&b, 65537);
	for (int i = 0; i < 65537; i++)
		cairn_buf_append(&b, "\x01x\x00", 3);
	assert_bad(b.data, b.len, "xattr count 65537 out of range");
	b.len = base;
	cairn_buf_put_uvar(&b, 1000);
	cairn_buf_append(&b, "\x01x\x00\0\0", 5);
	assert_bad(b.data, b.len, "xattr count 1000 out of range");

	/* extents */
	b.len = base;
	cairn_buf_append(&b, "\x00\x01\x02\x05", 4); /* 1 extent, hole flag 2 */
	assert_bad(b.data, b.len, "hole flag 2");
	b.len = base;
	cairn_buf_append(&b, "\x00\x01\x01\x00\x00\x00", 6);
	assert_bad(b.data, b.len, "extent 0: zero length");
	b.len = base;
	cairn_buf_append(&b, "\x00\x01\x00\x05", 4);
	cairn_buf_append(&b, "0123456789", 10); /* id cut short */
	assert_bad(b.data, b.len, "truncated (extent id)");
	b.len = base;
	cairn_buf_append(&b, "\x00\x10\x01\x05\x00\x00", 6);
	assert_bad(b.data, b.len, "extent count 16 out of range");
	b.len = base;
	cairn_buf_append(&b, "\x00\x02\x01", 3);
	cairn_buf_put_uvar(&b, UINT64_MAX);
	cairn_buf_append(&b, "\x01\x01\x00", 3);
	assert_bad(b.data, b.len, "overflows");
	b.len = 0;
	raw_header(&b, 1);
	raw_head(&b, CAIRN_NODE_FIFO, "p", 1, 0644);
	cairn_buf_append(&b, "\x00\x01\x01\x05\x00", 5);
	assert_bad(b.data, b.len, "extents on a non-file");

	/* digest flag: only on files, and the digest must be there */
	b.len = 0;
	raw_header(&b, 1);
	raw_head(&b, CAIRN_NODE_FILE, "f", 1, 0644);
	b.data[7] = CAIRN_NODE_F_DIGEST; /* type is at 6, flags at 7 */
	base = b.len;
	cairn_buf_append(&b, "\0\0", 2);
	cairn_buf_append(&b, "0123456789abcdef0123456789abcdef", 32);
	cairn_buf_put_uvar(&b, 0);
	ck_assert_int_eq(cairn_tree_decode(&t, b.data, b.len), 0);
	ck_assert_uint_eq(t.nodes[0].digest[31], 'f');
	cairn_tree_free(&t);
	b.len = base + 2 + 31;
	assert_bad(b.data, b.len, "truncated (digest)");
	b.data[6] = CAIRN_NODE_FIFO;
	b.len = base + 2;
	cairn_buf_put_uvar(&b, 0);
	assert_bad(b.data, b.len, "digest flag on a non-file");
	b.data[7] = 0x40;
	assert_bad(b.data, b.len, "unknown flags 0x40");

	/* extensions: optional ones (even tags) are skipped, critical ones refused */
	b.len = 0;
	raw_header(&b, 2);
	raw_node(&b, CAIRN_NODE_FIFO, "a");
	b.len--;
	cairn_buf_append(&b, "\x02\x02\x03xyz\x80\x01\x00", 9); /* tags 2 and 128 */
	raw_node(&b, CAIRN_NODE_FIFO, "b");
	ck_assert_int_eq(cairn_tree_decode(&t, b.data, b.len), 0);
	ck_assert_uint_eq(t.n, 2);
	cairn_tree_free(&t);
	b.len = 0;
	raw_header(&b, 1);
	raw_node(&b, CAIRN_NODE_FIFO, "a");
	b.len--;
	cairn_buf_append(&b, "\x01\x03\x00", 3);
	assert_bad(b.data, b.len, "unknown critical extension 3");
	b.len -= 3;
	cairn_buf_append(&b, "\x02\x04\x00\x02\x00", 5);
	assert_bad(b.data, b.len, "extension tags not increasing");
	b.len -= 5;
	cairn_buf_append(&b, "\x01\x04\x05xy", 5);
	assert_bad(b.data, b.len, "truncated (extension)");

	/* symlinks need a target of 1..4095 bytes without NUL */
	b.len = 0;
	raw_header(&b, 1);
	raw_head(&b, CAIRN_NODE_FIFO, "s", 1, 0777);
	b.data[6] = CAIRN_NODE_SYMLINK;
	base = b.len;
	cairn_buf_put_bytes(&b, "", 0);
	cairn_buf_append(&b, "\0\0\0", 3);
	assert_bad(b.data, b.len, "symlink target of 0 bytes");
	b.len = base;
	cairn_buf_put_bytes(&b, "a\0", 2);
	cairn_buf_append(&b, "\0\0\0", 3);
	assert_bad(b.data, b.len, "symlink target contains NUL");
	cairn_buf_free(&b);
}
END_TEST

START_TEST(test_truncation)
{
	cairn_tree t;
	cairn_buf b = CAIRN_BUF_INIT;
	sample_tree(&t);
	ck_assert_msg(cairn_tree_encode(&t, &b) == 0, "encode: %s", cairn_error_last());
	for (size_t len = 0; len < b.len; len++) {
		/* a private copy, so ASan catches any read past the end */
		uint8_t *copy = malloc(len ? len : 1);
		memcpy(copy, b.data, len);
		assert_bad(copy, len, "tree: ");
		free(copy);
	}
	cairn_tree_free(&t);
	cairn_buf_free(&b);
}
END_TEST

/*
 * Decode @p data; if it is accepted, re-encoding must work and decode back
 * to the same tree. Returns 1 if accepted.
 */
static int decode_check(const uint8_t *data, size_t len)
{
	cairn_tree t, u;
	cairn_buf b = CAIRN_BUF_INIT;
	int rc = cairn_tree_decode(&t, data, len);
	if (rc < 0) {
		ck_assert_int_eq(rc, -EBADMSG);
		ck_assert_ptr_null(t.nodes);
		ck_assert(strncmp(cairn_error_last(), "tree: ", 6) == 0);
		return 0;
	}
	ck_assert_msg(cairn_tree_encode(&t, &b) == 0, "encode: %s", cairn_error_last());
	ck_assert_uint_le(b.len, len);
	ck_assert_int_eq(cairn_tree_decode(&u, b.data, b.len), 0);
	assert_tree_eq(&t, &u);
	cairn_tree_free(&t);
	cairn_tree_free(&u);
	cairn_buf_free(&b);
	return 1;
}

START_TEST(test_random_flips)
{
	cairn_tree t;
	cairn_buf b = CAIRN_BUF_INIT;
	sample_tree(&t);
	ck_assert_msg(cairn_tree_encode(&t, &b) == 0, "encode: %s", cairn_error_last());
	uint8_t *m = malloc(b.len);
	uint64_t r[4];
	int accepted = 0;
	for (int iter = 0; iter < 30000; iter++) {
		memcpy(m, b.data, b.len);
		tu_fill_random(r, sizeof(r), (uint64_t)iter + 1);
		int flips = 1 + (int)(r[0] % 3);
		for (int k = 0; k < flips; k++) {
			size_t at = (size_t)(r[1 + k] % b.len);
			if (r[0] & 0x100)
				m[at] ^= (uint8_t)(1u << ((r[1 + k] >> 32) & 7)); /* bit flip */
			else
				m[at] = (uint8_t)(r[1 + k] >> 40); /* byte replace */
		}
		accepted += decode_check(m, b.len);
	}
	ck_assert_int_gt(accepted, 0); /* some flips hit free-form fields */
	free(m);

	/* random garbage behind a valid header */
	uint8_t g[512];
	for (int iter = 0; iter < 20000; iter++) {
		tu_fill_random(g, sizeof(g), 1000000u + (uint64_t)iter);
		memcpy(g, "CTRE\x01", 5);
		g[5] &= 7; /* a small node count */
		size_t len = 6 + (size_t)(g[6] | g[7] << 8) % (sizeof(g) - 6);
		decode_check(g, len);
	}
	cairn_tree_free(&t);
	cairn_buf_free(&b);
}
END_TEST

/* File system -------------------------------------------------------------- */

#define MTIME_NS 1614834367123456789ll /* 2021-03-04 05:06:07.123456789 UTC */

static struct timespec to_ts(int64_t ns)
{
	struct timespec ts = {ns / 1000000000, ns % 1000000000};
	if (ts.tv_nsec < 0) {
		ts.tv_nsec += 1000000000;
		ts.tv_sec--;
	}
	return ts;
}

static void set_times(int dfd, const char *name, int64_t atime_ns, int64_t mtime_ns)
{
	struct timespec ts[2] = {to_ts(atime_ns), to_ts(mtime_ns)};
	ck_assert_int_eq(utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static void set_xattr(const char *dir, const char *name, const char *xn, const void *v, size_t len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	ck_assert_msg(lsetxattr(path, xn, v, len, 0) == 0, "setxattr %s: %s", xn, strerror(errno));
}

/* Capture every entry of @p dfd into a sorted tree. */
static void capture_dir(int dfd, cairn_tree *t)
{
	memset(t, 0, sizeof(*t));
	DIR *d = fdopendir(dup(dfd));
	ck_assert_ptr_nonnull(d);
	rewinddir(d);
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		cairn_node n;
		struct stat st;
		ck_assert_int_eq(fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW), 0);
		/* half with a given stat, half without */
		int rc = cairn_node_capture(&n, dfd, de->d_name, (st.st_ino & 1) ? &st : NULL);
		ck_assert_msg(rc == 0, "capture: %s", cairn_error_last());
		cairn_tree_add(t, &n);
	}
	closedir(d);
	cairn_tree_sort(t);
}

START_TEST(test_fs_roundtrip)
{
	int root = geteuid() == 0;
	char *base = tu_mkdtemp("tree");
	char src[4096], dst[4096];
	snprintf(src, sizeof(src), "%s/src", base);
	snprintf(dst, sizeof(dst), "%s/dst", base);
	ck_assert_int_eq(mkdir(src, 0755), 0);
	ck_assert_int_eq(mkdir(dst, 0755), 0);
	int sfd = open(src, O_RDONLY | O_DIRECTORY);
	int dfd = open(dst, O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(sfd, 0);
	ck_assert_int_ge(dfd, 0);

	/* a setuid file owned by 1234:5678 with two xattrs, one holding NULs */
	const char *fname = "file\nwith newline";
	int fd = openat(sfd, fname, O_CREAT | O_WRONLY | O_EXCL, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "hello\n", 6), 6);
	close(fd);
	if (root)
		ck_assert_int_eq(fchownat(sfd, fname, 1234, 5678, AT_SYMLINK_NOFOLLOW), 0);
	ck_assert_int_eq(fchmodat(sfd, fname, 04755, 0), 0);
	set_xattr(src, fname, "user.b", "x\0y\0z", 5);
	set_xattr(src, fname, "user.a", "", 0);
	set_times(sfd, fname, MTIME_NS + 1, MTIME_NS);

	/* a file with mode 0000, a 255-byte name and a time before 1970 */
	fd = openat(sfd, NAME255, O_CREAT | O_WRONLY | O_EXCL, 0);
	ck_assert_int_ge(fd, 0);
	close(fd);
	set_times(sfd, NAME255, -1500000000, -999999999);

	/* a sticky world-writable directory with a non-UTF-8 name */
	ck_assert_int_eq(mkdirat(sfd, "\xff\xfe dir", 0700), 0);
	ck_assert_int_eq(fchmodat(sfd, "\xff\xfe dir", 01777, 0), 0);
	set_xattr(src, "\xff\xfe dir", "user.dir", "d", 1);
	set_times(sfd, "\xff\xfe dir", MTIME_NS + 5, MTIME_NS + 7);

	/* a dangling symlink, a fifo, devices and a socket */
	ck_assert_int_eq(symlinkat("../no/such\ntarget", sfd, "link"), 0);
	if (root)
		ck_assert_int_eq(fchownat(sfd, "link", 1234, 5678, AT_SYMLINK_NOFOLLOW), 0);
	set_times(sfd, "link", MTIME_NS + 3, MTIME_NS + 2);
	ck_assert_int_eq(mkfifoat(sfd, "fifo", 0640), 0);
	set_times(sfd, "fifo", MTIME_NS, MTIME_NS + 999);
	if (root) {
		ck_assert_int_eq(mknodat(sfd, "chr", S_IFCHR | 0666, makedev(1, 3)), 0);
		ck_assert_int_eq(mknodat(sfd, "blk", S_IFBLK | 0660, makedev(7, 200)), 0);
		set_times(sfd, "blk", 1, 2);
	}
	ck_assert_int_eq(mknodat(sfd, "sock", S_IFSOCK | 0755, 0), 0);
	set_times(sfd, "sock", 0, 0);

	cairn_tree t, u;
	capture_dir(sfd, &t);
	ck_assert_uint_eq(t.n, root ? 8 : 6);

	const cairn_node *f = cairn_tree_find(&t, fname);
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(f->type, CAIRN_NODE_FILE);
	ck_assert_uint_eq(f->mode, 04755);
	ck_assert_uint_eq(f->size, 6);
	ck_assert_int_eq(f->mtime_ns, MTIME_NS);
	ck_assert_int_eq(f->atime_ns, MTIME_NS + 1);
	ck_assert_uint_eq(f->nlink, 1);
	ck_assert_uint_eq(f->n_xattrs, 2);
	ck_assert_str_eq(f->xattrs[0].name, "user.a");
	ck_assert_uint_eq(f->xattrs[0].len, 0);
	ck_assert_str_eq(f->xattrs[1].name, "user.b");
	ck_assert_uint_eq(f->xattrs[1].len, 5);
	ck_assert(memcmp(f->xattrs[1].value, "x\0y\0z", 5) == 0);
	if (root) {
		ck_assert_uint_eq(f->uid, 1234);
		ck_assert_uint_eq(f->gid, 5678);
		const cairn_node *c = cairn_tree_find(&t, "chr");
		ck_assert_uint_eq(c->type, CAIRN_NODE_CHR);
		ck_assert_uint_eq(c->rdev, makedev(1, 3));
		ck_assert_uint_eq(cairn_tree_find(&t, "blk")->type, CAIRN_NODE_BLK);
	}
	const cairn_node *l = cairn_tree_find(&t, "link");
	ck_assert_uint_eq(l->type, CAIRN_NODE_SYMLINK);
	ck_assert_str_eq(l->link, "../no/such\ntarget");
	ck_assert_uint_eq(l->size, strlen(l->link));
	ck_assert_int_eq(l->mtime_ns, MTIME_NS + 2);
	ck_assert_uint_eq(cairn_tree_find(&t, "fifo")->type, CAIRN_NODE_FIFO);
	ck_assert_uint_eq(cairn_tree_find(&t, "sock")->type, CAIRN_NODE_SOCK);
	ck_assert_uint_eq(cairn_tree_find(&t, "\xff\xfe dir")->mode, 01777);
	ck_assert_int_eq(cairn_tree_find(&t, NAME255)->mtime_ns, -999999999);
	ck_assert_int_eq(cairn_tree_find(&t, NAME255)->mode, 0);
	if (root)
		ck_assert_str_eq(cairn_tree_find(&t, "sock")->user, "root");

	/* through the encoding and back */
	cairn_buf b = CAIRN_BUF_INIT;
	ck_assert_msg(cairn_tree_encode(&t, &b) == 0, "encode: %s", cairn_error_last());
	ck_assert_int_eq(cairn_tree_decode(&u, b.data, b.len), 0);
	assert_tree_eq(&t, &u);

	/* recreate in dst: files by hand (content is not this module's job), others by make */
	for (size_t i = 0; i < u.n; i++) {
		const cairn_node *n = &u.nodes[i];
		if (n->type == CAIRN_NODE_FILE) {
			fd = openat(dfd, n->name, O_CREAT | O_WRONLY | O_EXCL, 0600);
			ck_assert_int_ge(fd, 0);
			if (n->size)
				ck_assert_int_eq(write(fd, "hello\n", 6), 6);
			close(fd);
			ck_assert_int_eq(cairn_node_make(dfd, n), -EINVAL);
		} else {
			int rc = cairn_node_make(dfd, n);
			ck_assert_msg(rc == 0, "make: %s", cairn_error_last());
		}
	}
	for (size_t i = 0; i < u.n; i++) {
		int rc = cairn_node_apply(dfd, &u.nodes[i], CAIRN_APPLY_ALL);
		ck_assert_msg(rc == 0, "apply: %s", cairn_error_last());
	}
	/* an existing directory is accepted; an existing non-directory is not */
	ck_assert_int_eq(cairn_node_make(dfd, cairn_tree_find(&u, "\xff\xfe dir")), 0);
	ck_assert_int_eq(cairn_node_make(dfd, cairn_tree_find(&u, "fifo")), -EEXIST);

	cairn_tree v;
	capture_dir(dfd, &v);
	ck_assert_uint_eq(v.n, u.n);
	for (size_t i = 0; i < u.n; i++)
		assert_node_eq(&u.nodes[i], &v.nodes[i], 1);

	/* without CAIRN_APPLY_XATTRS, xattrs are left alone */
	cairn_node *nf = &u.nodes[0];
	for (size_t i = 0; i < u.n; i++)
		if (u.nodes[i].n_xattrs && u.nodes[i].type == CAIRN_NODE_FILE)
			nf = &u.nodes[i];
	ck_assert_int_eq(unlinkat(dfd, nf->name, 0), 0);
	fd = openat(dfd, nf->name, O_CREAT | O_WRONLY | O_EXCL, 0600);
	close(fd);
	ck_assert_int_eq(cairn_node_apply(dfd, nf, CAIRN_APPLY_OWNER), 0);
	char path[sizeof(dst) + 512];
	snprintf(path, sizeof(path), "%s/%s", dst, nf->name);
	ck_assert_int_lt(lgetxattr(path, "user.b", NULL, 0), 0);

	cairn_tree_free(&t);
	cairn_tree_free(&u);
	cairn_tree_free(&v);
	cairn_buf_free(&b);
	close(sfd);
	close(dfd);
	tu_rmrf(base);
	free(base);
}
END_TEST

START_TEST(test_fs_errors)
{
	char *base = tu_mkdtemp("tree");
	int dfd = open(base, O_RDONLY | O_DIRECTORY);
	cairn_node n;
	memset(&n, 0x55, sizeof(n));
	ck_assert_int_eq(cairn_node_capture(&n, dfd, "missing", NULL), -ENOENT);
	ck_assert_ptr_null(n.name);
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "missing"));
	ck_assert_int_eq(cairn_node_capture(&n, dfd, "..", NULL), -EINVAL);
	ck_assert_int_eq(cairn_node_capture(&n, dfd, "a/b", NULL), -EINVAL);

	cairn_node m = mk(CAIRN_NODE_FIFO, "../escape");
	ck_assert_int_eq(cairn_node_make(dfd, &m), -EINVAL);
	ck_assert_int_eq(cairn_node_apply(dfd, &m, CAIRN_APPLY_ALL), -EINVAL);
	cairn_node_free(&m);
	m = mk(CAIRN_NODE_FIFO, "gone");
	ck_assert_int_eq(cairn_node_apply(dfd, &m, CAIRN_APPLY_ALL), -ENOENT);
	cairn_node_free(&m);

	/* a symlink gets owner, xattrs and times, never a mode */
	m = mk(CAIRN_NODE_SYMLINK, "sl");
	m.mode = 0600;
	if (geteuid() == 0)
		add_xattr(&m, "trusted.on_link", "v\0", 2);
	ck_assert_int_eq(cairn_node_make(dfd, &m), 0);
	ck_assert_msg(cairn_node_apply(dfd, &m, CAIRN_APPLY_ALL) == 0, "%s", cairn_error_last());
	struct stat st;
	ck_assert_int_eq(fstatat(dfd, "sl", &st, AT_SYMLINK_NOFOLLOW), 0);
	ck_assert(S_ISLNK(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0777);
	ck_assert_int_eq(st.st_mtim.tv_sec, m.mtime_ns / 1000000000);
	ck_assert_int_eq(st.st_mtim.tv_nsec, m.mtime_ns % 1000000000);
	cairn_node c;
	ck_assert_int_eq(cairn_node_capture(&c, dfd, "sl", NULL), 0);
	ck_assert_str_eq(c.link, "target");
	if (geteuid() == 0) {
		ck_assert_uint_eq(st.st_uid, 1000);
		ck_assert_uint_eq(c.n_xattrs, 1);
		ck_assert_str_eq(c.xattrs[0].name, "trusted.on_link");
		ck_assert_uint_eq(c.xattrs[0].len, 2);
	}
	cairn_node_free(&c);
	cairn_node_free(&m);

	/* a user xattr on a symlink is refused by Linux, and reported */
	m = mk(CAIRN_NODE_SYMLINK, "sl2");
	add_xattr(&m, "user.x", "1", 1);
	ck_assert_int_eq(cairn_node_make(dfd, &m), 0);
	ck_assert_int_eq(cairn_node_apply(dfd, &m, CAIRN_APPLY_ALL), -EPERM);
	ck_assert_ptr_nonnull(strstr(cairn_error_last(), "user.x"));
	ck_assert_int_eq(cairn_node_apply(dfd, &m, CAIRN_APPLY_OWNER), 0);
	cairn_node_free(&m);

	/* hard links show in nlink */
	int fd = openat(dfd, "h1", O_CREAT | O_WRONLY, 0644);
	close(fd);
	ck_assert_int_eq(linkat(dfd, "h1", dfd, "h2", 0), 0);
	ck_assert_int_eq(cairn_node_capture(&n, dfd, "h2", NULL), 0);
	ck_assert_uint_eq(n.nlink, 2);
	cairn_node_free(&n);

	close(dfd);
	tu_rmrf(base);
	free(base);
}
END_TEST

static Suite *engine_tree_suite(void)
{
	Suite *s = suite_create("engine_tree");
	TCase *tc = tcase_create("tree");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_name_order);
	tcase_add_test(tc, test_sort_find_copy);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_golden);
	tcase_add_test(tc, test_encode_rejects);
	tcase_add_test(tc, test_decode_rejects);
	tcase_add_test(tc, test_truncation);
	tcase_add_test(tc, test_random_flips);
	tcase_add_test(tc, test_fs_roundtrip);
	tcase_add_test(tc, test_fs_errors);
	suite_add_tcase(s, tc);
	return s;
}

#include "tests/support/check_main.h"
CAIRN_CHECK_MAIN(engine_tree_suite)
