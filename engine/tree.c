/*
 * tree.c - the binary encoding of trees (docs/FORMAT.md, "Trees").
 *
 * A tree blob is a header ("CTRE", version 1, node count) and the nodes in
 * name order, each a fixed sequence of varints and length-prefixed byte
 * strings, ending with a list of extensions (tagged fields a future version
 * may add; this one writes none and skips the optional ones it reads).
 *
 * The decoder is the parser of untrusted repository data: every count and
 * length is checked against the bytes that remain before anything is
 * allocated (so memory stays within a small multiple of the input), varints
 * must be minimal, every field must be in range, and the result must be a
 * tree the encoder would write byte for byte the same (except extensions).
 * The encoder refuses exactly what the decoder would reject, so every tree
 * cairn writes can be read back.
 */
#include "engine/node_int.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define TREE_MAGIC "CTRE"
#define TREE_VERSION 1

#define OWNER_MAX 255          /* user / group name bytes */
#define LINK_MAX_LEN 4095      /* symlink target bytes */
#define XATTRS_MAX 65536       /* xattrs per node */
#define XATTR_NAME_MAX_LEN 255 /* as XATTR_NAME_MAX */
#define XATTR_VALUE_MAX 65536  /* as XATTR_SIZE_MAX */

/*
 * The fewest bytes each record can take, used to bound counts before
 * allocating: a node is at least 20 bytes (type, a 2-byte name, 14 one-byte
 * varints and string lengths, three counts), an xattr 3 (name length, one
 * name byte, value length), an extent 2 (hole flag, length), an extension 2.
 */
#define NODE_MIN 20
#define XATTR_MIN 3
#define EXTENT_MIN 2
#define EXT_MIN 2

#define KNOWN_FLAGS (CAIRN_NODE_F_CHANGED | CAIRN_NODE_F_DIGEST)

static uint64_t zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (v < 0 ? UINT64_MAX : 0);
}

static int64_t unzigzag(uint64_t u)
{
	uint64_t v = (u >> 1) ^ (0 - (u & 1));
	int64_t s;
	memcpy(&s, &v, sizeof(s));
	return s;
}

/* Validation shared by encoder and decoder ------------------------------- */

/* Fail with @p code and the message "tree: node <i>: <fmt...>". */
__attribute__((format(printf, 3, 4))) static int node_fail(int code, size_t i, const char *fmt, ...)
{
	char msg[CAIRN_ERRMSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return cairn_error_set(code, "tree: node %zu: %s", i, msg);
}

/*
 * Check the rules of the format that are about values rather than bytes:
 * type and flags, name, mode, string lengths, symlink target, xattrs sorted
 * and unique, extents only on files and without zero-length runs or an
 * overflowing total. Returns 0 or @p code with a message naming node @p i.
 */
static int check_node(const cairn_node *n, size_t i, int code)
{
	if (n->type < CAIRN_NODE_FILE || n->type > CAIRN_NODE_SOCK)
		return node_fail(code, i, "unknown type %u", n->type);
	if (n->flags & ~KNOWN_FLAGS)
		return node_fail(code, i, "unknown flags 0x%" PRIx32, n->flags & ~KNOWN_FLAGS);
	if ((n->flags & CAIRN_NODE_F_DIGEST) && n->type != CAIRN_NODE_FILE)
		return node_fail(code, i, "digest flag on a non-file");
	if (!n->name)
		return node_fail(code, i, "no name");
	size_t nlen = strlen(n->name);
	if (nlen == 0)
		return node_fail(code, i, "empty name");
	if (nlen > CAIRN_NAME_MAX)
		return node_fail(code, i, "name longer than %d bytes", CAIRN_NAME_MAX);
	if (memchr(n->name, '/', nlen))
		return node_fail(code, i, "name contains '/'");
	if (!cairn_name_valid(n->name, nlen))
		return node_fail(code, i, "name is '.' or '..'");
	if (n->mode > 07777)
		return node_fail(code, i, "mode 0%" PRIo32 " has bits beyond 07777", n->mode);
	if (n->user && strlen(n->user) > OWNER_MAX)
		return node_fail(code, i, "user name longer than %d bytes", OWNER_MAX);
	if (n->group && strlen(n->group) > OWNER_MAX)
		return node_fail(code, i, "group name longer than %d bytes", OWNER_MAX);
	if (n->type == CAIRN_NODE_SYMLINK) {
		size_t l = n->link ? strlen(n->link) : 0;
		if (l == 0 || l > LINK_MAX_LEN)
			return node_fail(code, i, "symlink target of %zu bytes (must be 1..%d)", l,
			                 LINK_MAX_LEN);
	}
	if (n->n_xattrs > XATTRS_MAX)
		return node_fail(code, i, "%zu xattrs (max %d)", n->n_xattrs, XATTRS_MAX);
	for (size_t k = 0; k < n->n_xattrs; k++) {
		const cairn_xattr *x = &n->xattrs[k];
		size_t l = x->name ? strlen(x->name) : 0;
		if (l == 0 || l > XATTR_NAME_MAX_LEN)
			return node_fail(code, i, "xattr %zu: name of %zu bytes (must be 1..%d)", k,
			                 l, XATTR_NAME_MAX_LEN);
		if (x->len > XATTR_VALUE_MAX)
			return node_fail(code, i, "xattr %zu: value of %zu bytes (max %d)", k,
			                 x->len, XATTR_VALUE_MAX);
		if (x->len && !x->value)
			return node_fail(code, i, "xattr %zu: no value", k);
		if (k && strcmp(n->xattrs[k - 1].name, x->name) >= 0)
			return node_fail(code, i, "xattr %zu: names not sorted and unique", k);
	}
	if (n->n_extents && n->type != CAIRN_NODE_FILE)
		return node_fail(code, i, "extents on a non-file");
	uint64_t total = 0;
	for (size_t k = 0; k < n->n_extents; k++) {
		const cairn_extent *e = &n->extents[k];
		if (e->hole > 1)
			return node_fail(code, i, "extent %zu: hole flag %u", k, e->hole);
		if (e->len == 0)
			return node_fail(code, i, "extent %zu: zero length", k);
		if (__builtin_add_overflow(total, e->len, &total))
			return node_fail(code, i, "extent %zu: total length overflows", k);
	}
	return 0;
}

/* Encoder ----------------------------------------------------------------- */

/* Length-prefixed string; NULL and "" are both written as length 0. */
static void put_str(cairn_buf *b, const char *s)
{
	cairn_buf_put_bytes(b, s, s ? strlen(s) : 0);
}

static void encode_node(cairn_buf *b, const cairn_node *n)
{
	cairn_buf_put_u8(b, n->type);
	cairn_buf_put_uvar(b, n->flags);
	put_str(b, n->name);
	cairn_buf_put_uvar(b, n->mode);
	cairn_buf_put_uvar(b, n->uid);
	cairn_buf_put_uvar(b, n->gid);
	put_str(b, n->user);
	put_str(b, n->group);
	cairn_buf_put_uvar(b, n->size);
	cairn_buf_put_uvar(b, zigzag(n->mtime_ns));
	cairn_buf_put_uvar(b, zigzag(n->ctime_ns));
	cairn_buf_put_uvar(b, zigzag(n->atime_ns));
	cairn_buf_put_uvar(b, n->dev);
	cairn_buf_put_uvar(b, n->ino);
	cairn_buf_put_uvar(b, n->nlink);
	cairn_buf_put_uvar(b, n->rdev);
	if (n->type == CAIRN_NODE_SYMLINK)
		put_str(b, n->link);
	cairn_buf_put_uvar(b, n->n_xattrs);
	for (size_t k = 0; k < n->n_xattrs; k++) {
		put_str(b, n->xattrs[k].name);
		cairn_buf_put_bytes(b, n->xattrs[k].value, n->xattrs[k].len);
	}
	cairn_buf_put_uvar(b, n->n_extents);
	for (size_t k = 0; k < n->n_extents; k++) {
		const cairn_extent *e = &n->extents[k];
		cairn_buf_put_u8(b, e->hole);
		cairn_buf_put_uvar(b, e->len);
		if (!e->hole)
			cairn_buf_append(b, e->id, CAIRN_ID_LEN);
	}
	if (n->type == CAIRN_NODE_FILE && (n->flags & CAIRN_NODE_F_DIGEST))
		cairn_buf_append(b, n->digest, CAIRN_ID_LEN);
	if (n->type == CAIRN_NODE_DIR)
		cairn_buf_append(b, n->subtree, CAIRN_ID_LEN);
	cairn_buf_put_uvar(b, 0); /* extensions */
}

int cairn_tree_encode(const cairn_tree *t, cairn_buf *out)
{
	int rc;
	for (size_t i = 0; i < t->n; i++) {
		if ((rc = check_node(&t->nodes[i], i, -EINVAL)) < 0)
			return rc;
		if (i) {
			const char *a = t->nodes[i - 1].name, *b = t->nodes[i].name;
			if (cairn_name_cmp(a, strlen(a), b, strlen(b)) >= 0)
				return node_fail(-EINVAL, i, "names not sorted and unique");
		}
	}
	cairn_buf_append(out, TREE_MAGIC, 4);
	cairn_buf_put_u8(out, TREE_VERSION);
	cairn_buf_put_uvar(out, t->n);
	for (size_t i = 0; i < t->n; i++)
		encode_node(out, &t->nodes[i]);
	return 0;
}

/* Decoder ----------------------------------------------------------------- */

typedef struct dec {
	cairn_rd r;
	size_t node; /* index of the node being read */
} dec;

/*
 * Read a minimal LEB128 varint: no redundant trailing zero groups, at most
 * 64 bits. Returns 0, -EBADMSG if the input ends, -EINVAL if malformed.
 */
static int get_uvar(cairn_rd *r, uint64_t *v)
{
	uint64_t x = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		uint8_t b;
		if (cairn_rd_u8(r, &b) < 0)
			return -EBADMSG;
		if (shift == 63 && b > 1)
			return -EINVAL;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			if (b == 0 && shift)
				return -EINVAL;
			*v = x;
			return 0;
		}
	}
	return -EINVAL;
}

/* Read varint @p field of the current node; it must be <= @p max. */
static int dec_uvar(dec *d, uint64_t *v, uint64_t max, const char *field)
{
	int rc = get_uvar(&d->r, v);
	if (rc == -EBADMSG)
		return node_fail(-EBADMSG, d->node, "truncated (%s)", field);
	if (rc < 0)
		return node_fail(-EBADMSG, d->node, "%s: malformed varint", field);
	if (*v > max)
		return node_fail(-EBADMSG, d->node, "%s %" PRIu64 " out of range (max %" PRIu64 ")",
		                 field, *v, max);
	return 0;
}

/* Borrow @p len raw bytes of @p field. */
static int dec_raw(dec *d, const uint8_t **p, size_t len, const char *field)
{
	if (cairn_rd_ref(&d->r, p, len) < 0)
		return node_fail(-EBADMSG, d->node, "truncated (%s)", field);
	return 0;
}

/* Borrow a length-prefixed byte string of @p min..@p max bytes. */
static int dec_bytes(dec *d, const uint8_t **p, size_t *len, size_t min, size_t max,
                     const char *field)
{
	uint64_t n;
	int rc = dec_uvar(d, &n, UINT64_MAX, field);
	if (rc < 0)
		return rc;
	if (n < min || n > max)
		return node_fail(-EBADMSG, d->node, "%s of %" PRIu64 " bytes (must be %zu..%zu)",
		                 field, n, min, max);
	if (n > cairn_rd_left(&d->r))
		return node_fail(-EBADMSG, d->node, "truncated (%s)", field);
	*len = (size_t)n;
	return dec_raw(d, p, *len, field);
}

/*
 * Read a length-prefixed string of @p min..@p max bytes without NULs into a
 * malloc'd C string; length 0 gives NULL.
 */
static int dec_str(dec *d, char **out, size_t min, size_t max, const char *field)
{
	const uint8_t *p;
	size_t len;
	int rc = dec_bytes(d, &p, &len, min, max, field);
	if (rc < 0)
		return rc;
	if (memchr(p, 0, len))
		return node_fail(-EBADMSG, d->node, "%s contains NUL", field);
	*out = NULL;
	if (len) {
		*out = cairn_xmalloc(len + 1);
		memcpy(*out, p, len);
		(*out)[len] = 0;
	}
	return 0;
}

/* Upper bound on a count whose records take at least @p min bytes each. */
static uint64_t fits(const dec *d, size_t min)
{
	return cairn_rd_left(&d->r) / min;
}

/* Read the extension list of a node: skip optional ones, refuse critical ones. */
static int dec_extensions(dec *d)
{
	uint64_t count, tag, prev = 0;
	int rc;
	if ((rc = dec_uvar(d, &count, fits(d, EXT_MIN), "extension count")) < 0)
		return rc;
	for (uint64_t k = 0; k < count; k++) {
		const uint8_t *p;
		size_t len;
		if ((rc = dec_uvar(d, &tag, UINT64_MAX, "extension tag")) < 0)
			return rc;
		if (k && tag <= prev)
			return node_fail(-EBADMSG, d->node, "extension tags not increasing");
		if (tag & 1)
			return node_fail(-EBADMSG, d->node, "unknown critical extension %" PRIu64,
			                 tag);
		if ((rc = dec_bytes(d, &p, &len, 0, SIZE_MAX, "extension")) < 0)
			return rc;
		prev = tag;
	}
	return 0;
}

/*
 * Decode one node into @p n (zeroed by the caller). On failure @p n may hold
 * partial results, always consistent enough for cairn_node_free().
 */
static int dec_node(dec *d, cairn_node *n)
{
	uint64_t v, count;
	const uint8_t *p;
	size_t len;
	uint8_t type;
	int rc;

	if (cairn_rd_u8(&d->r, &type) < 0)
		return node_fail(-EBADMSG, d->node, "truncated (type)");
	if (type < CAIRN_NODE_FILE || type > CAIRN_NODE_SOCK)
		return node_fail(-EBADMSG, d->node, "unknown type %u", type);
	n->type = type;
	if ((rc = dec_uvar(d, &v, UINT32_MAX, "flags")) < 0)
		return rc;
	n->flags = (uint32_t)v;
	if ((rc = dec_str(d, &n->name, 1, CAIRN_NAME_MAX, "name")) < 0)
		return rc;
	if ((rc = dec_uvar(d, &v, 07777, "mode")) < 0)
		return rc;
	n->mode = (uint32_t)v;
	if ((rc = dec_uvar(d, &v, UINT32_MAX, "uid")) < 0)
		return rc;
	n->uid = (uint32_t)v;
	if ((rc = dec_uvar(d, &v, UINT32_MAX, "gid")) < 0)
		return rc;
	n->gid = (uint32_t)v;
	if ((rc = dec_str(d, &n->user, 0, OWNER_MAX, "user")) < 0 ||
	    (rc = dec_str(d, &n->group, 0, OWNER_MAX, "group")) < 0 ||
	    (rc = dec_uvar(d, &n->size, UINT64_MAX, "size")) < 0)
		return rc;
	if ((rc = dec_uvar(d, &v, UINT64_MAX, "mtime")) < 0)
		return rc;
	n->mtime_ns = unzigzag(v);
	if ((rc = dec_uvar(d, &v, UINT64_MAX, "ctime")) < 0)
		return rc;
	n->ctime_ns = unzigzag(v);
	if ((rc = dec_uvar(d, &v, UINT64_MAX, "atime")) < 0)
		return rc;
	n->atime_ns = unzigzag(v);
	if ((rc = dec_uvar(d, &n->dev, UINT64_MAX, "dev")) < 0 ||
	    (rc = dec_uvar(d, &n->ino, UINT64_MAX, "ino")) < 0 ||
	    (rc = dec_uvar(d, &v, UINT32_MAX, "nlink")) < 0)
		return rc;
	n->nlink = (uint32_t)v;
	if ((rc = dec_uvar(d, &n->rdev, UINT64_MAX, "rdev")) < 0)
		return rc;
	if (type == CAIRN_NODE_SYMLINK &&
	    (rc = dec_str(d, &n->link, 1, LINK_MAX_LEN, "symlink target")) < 0)
		return rc;

	uint64_t max_x = fits(d, XATTR_MIN);
	if ((rc = dec_uvar(d, &count, max_x < XATTRS_MAX ? max_x : XATTRS_MAX, "xattr count")) < 0)
		return rc;
	if (count) {
		n->xattrs = cairn_xcalloc((size_t)count, sizeof(*n->xattrs));
		n->n_xattrs = (size_t)count;
	}
	for (size_t k = 0; k < n->n_xattrs; k++) {
		cairn_xattr *x = &n->xattrs[k];
		if ((rc = dec_str(d, &x->name, 1, XATTR_NAME_MAX_LEN, "xattr name")) < 0 ||
		    (rc = dec_bytes(d, &p, &len, 0, XATTR_VALUE_MAX, "xattr value")) < 0)
			return rc;
		x->value = cairn_xmalloc(len);
		if (len)
			memcpy(x->value, p, len);
		x->len = len;
	}

	if ((rc = dec_uvar(d, &count, fits(d, EXTENT_MIN), "extent count")) < 0)
		return rc;
	if (count) {
		n->extents = cairn_xcalloc((size_t)count, sizeof(*n->extents));
		n->n_extents = (size_t)count;
	}
	for (size_t k = 0; k < n->n_extents; k++) {
		cairn_extent *e = &n->extents[k];
		if (cairn_rd_u8(&d->r, &e->hole) < 0)
			return node_fail(-EBADMSG, d->node, "truncated (extent)");
		if (e->hole > 1)
			return node_fail(-EBADMSG, d->node, "extent %zu: hole flag %u", k, e->hole);
		if ((rc = dec_uvar(d, &e->len, UINT64_MAX, "extent length")) < 0)
			return rc;
		if (!e->hole) {
			if ((rc = dec_raw(d, &p, CAIRN_ID_LEN, "extent id")) < 0)
				return rc;
			memcpy(e->id, p, CAIRN_ID_LEN);
		}
	}

	if (type == CAIRN_NODE_FILE && (n->flags & CAIRN_NODE_F_DIGEST)) {
		if ((rc = dec_raw(d, &p, CAIRN_ID_LEN, "digest")) < 0)
			return rc;
		memcpy(n->digest, p, CAIRN_ID_LEN);
	}
	if (type == CAIRN_NODE_DIR) {
		if ((rc = dec_raw(d, &p, CAIRN_ID_LEN, "subtree")) < 0)
			return rc;
		memcpy(n->subtree, p, CAIRN_ID_LEN);
	}
	if ((rc = dec_extensions(d)) < 0)
		return rc;
	return check_node(n, d->node, -EBADMSG);
}

int cairn_tree_decode(cairn_tree *out, const void *data, size_t len)
{
	const uint8_t *magic;
	uint8_t version;
	uint64_t count;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!data) {
		if (len)
			return cairn_error_set(-EBADMSG, "tree: no data");
		data = ""; /* no arithmetic on NULL */
	}
	dec d = {cairn_rd_init(data, len), 0};
	if (cairn_rd_ref(&d.r, &magic, 4) < 0 || cairn_rd_u8(&d.r, &version) < 0)
		return cairn_error_set(-EBADMSG, "tree: truncated header (%zu bytes)", len);
	if (memcmp(magic, TREE_MAGIC, 4) != 0)
		return cairn_error_set(-EBADMSG, "tree: bad magic");
	if (version != TREE_VERSION)
		return cairn_error_set(-EBADMSG, "tree: unsupported format version %u", version);
	rc = get_uvar(&d.r, &count);
	if (rc < 0)
		return cairn_error_set(-EBADMSG, "tree: %s node count",
		                       rc == -EBADMSG ? "truncated" : "malformed");
	if (count > fits(&d, NODE_MIN))
		return cairn_error_set(-EBADMSG, "tree: node count %" PRIu64 " exceeds the input",
		                       count);
	if (count) {
		out->nodes = cairn_xcalloc((size_t)count, sizeof(*out->nodes));
		out->cap = (size_t)count;
	}
	for (size_t i = 0; i < (size_t)count; i++) {
		d.node = i;
		out->n = i + 1; /* so a partial node is freed on failure */
		if ((rc = dec_node(&d, &out->nodes[i])) < 0)
			goto fail;
		if (i) {
			const char *a = out->nodes[i - 1].name, *b = out->nodes[i].name;
			if (cairn_name_cmp(a, strlen(a), b, strlen(b)) >= 0) {
				rc = node_fail(-EBADMSG, i, "names not sorted and unique");
				goto fail;
			}
		}
	}
	if (cairn_rd_left(&d.r)) {
		rc = cairn_error_set(-EBADMSG, "tree: %zu trailing bytes", cairn_rd_left(&d.r));
		goto fail;
	}
	return 0;
fail:
	cairn_tree_free(out);
	return rc;
}
