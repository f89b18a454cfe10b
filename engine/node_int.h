/*
 * node_int.h - file-system nodes and trees (engine-internal).
 *
 * A tree is the listing of one directory: its entries sorted by name (bytewise
 * memcmp, shorter first on a common prefix), each a cairn_node carrying the
 * full metadata cairn restores. Trees are stored as blobs (DESIGN.md §3); the
 * binary encoding is specified in docs/FORMAT.md ("Trees").
 *
 * This module also captures a node's metadata from the file system and
 * applies it back on restore. It never reads or writes file *content*: the
 * archiver and the restorer do that and fill/consume `extents` and `digest`.
 */
#ifndef CAIRN_NODE_INT_H
#define CAIRN_NODE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "common/common.h"

#define CAIRN_ID_LEN 32

enum cairn_node_type {
	CAIRN_NODE_FILE = 1,
	CAIRN_NODE_DIR = 2,
	CAIRN_NODE_SYMLINK = 3,
	CAIRN_NODE_FIFO = 4,
	CAIRN_NODE_CHR = 5,
	CAIRN_NODE_BLK = 6,
	CAIRN_NODE_SOCK = 7,
};

/* node flags */
#define CAIRN_NODE_F_CHANGED 1u /* file changed while it was read: content is best effort */
#define CAIRN_NODE_F_DIGEST 2u  /* digest is valid */

/** A run of file content: a stored chunk, or a hole of zeros that is not stored. */
typedef struct cairn_extent {
	uint8_t id[CAIRN_ID_LEN]; /* chunk id; all zero for a hole */
	uint64_t len;             /* bytes of file content this extent covers */
	uint8_t hole;             /* 1: a hole (sparse region) of len zero bytes */
} cairn_extent;

typedef struct cairn_xattr {
	char *name;     /* e.g. "user.comment" (owned) */
	uint8_t *value; /* owned, may hold any bytes */
	size_t len;
} cairn_xattr;

typedef struct cairn_node {
	uint8_t type;     /* enum cairn_node_type */
	uint32_t flags;   /* CAIRN_NODE_F_* */
	char *name;       /* entry name: any bytes but '/' and NUL, 1..255 bytes (owned) */
	uint32_t mode;    /* st_mode & 07777 */
	uint32_t uid, gid;
	char *user;       /* owner name or NULL (owned) */
	char *group;      /* group name or NULL (owned) */
	uint64_t size;    /* st_size (files), link length (symlinks), 0 otherwise */
	int64_t mtime_ns, ctime_ns, atime_ns;
	uint64_t dev, ino; /* where it was read from (hardlink detection, parent matching) */
	uint32_t nlink;
	uint64_t rdev;    /* devices */
	char *link;       /* symlink target (owned), any bytes but NUL */
	size_t n_xattrs;
	cairn_xattr *xattrs; /* sorted by name (owned) */
	size_t n_extents;
	cairn_extent *extents; /* file content in order (owned) */
	uint8_t digest[CAIRN_ID_LEN]; /* whole-file digest (see FORMAT.md) */
	uint8_t subtree[CAIRN_ID_LEN]; /* directories: blob id of their tree */
} cairn_node;

typedef struct cairn_tree {
	size_t n, cap;
	cairn_node *nodes;
} cairn_tree;

#define CAIRN_NAME_MAX 255 /* longest entry name, in bytes */

/**
 * Tree order of entry names: memcmp over the common length, the shorter
 * first. Returns <0, 0 or >0 like memcmp.
 */
int cairn_name_cmp(const char *a, size_t alen, const char *b, size_t blen);

/**
 * 1 if the @p len bytes at @p name are a valid entry name (1..255 bytes, no
 * '/' or NUL, not "." or ".."), else 0.
 */
int cairn_name_valid(const char *name, size_t len);

/** Free what a node owns (not the node itself); zeroes it. NULL-safe. */
void cairn_node_free(cairn_node *n);
/** Deep copy into @p dst (whose previous contents are overwritten, not freed). */
void cairn_node_copy(cairn_node *dst, const cairn_node *src);

/** Append a node (takes ownership of its members; *n is zeroed). */
void cairn_tree_add(cairn_tree *t, cairn_node *n);
/** Sort nodes by name (bytewise). */
void cairn_tree_sort(cairn_tree *t);
/** Binary search in a sorted tree; NULL if absent. */
const cairn_node *cairn_tree_find(const cairn_tree *t, const char *name);
void cairn_tree_free(cairn_tree *t);

/**
 * Encode a sorted tree into its binary form (appended to @p out).
 * Everything the decoder would reject is refused here, so whatever encodes
 * decodes back to the same tree (docs/FORMAT.md lists the rules).
 * @return 0, or -EINVAL (with a message; @p out unchanged) if the nodes are
 * not sorted and unique, a name is invalid or a field is out of range.
 */
int cairn_tree_encode(const cairn_tree *t, cairn_buf *out);

/**
 * Decode a tree, strictly: every length is bounds-checked, names are valid
 * and strictly increasing, enums are in range, no trailing bytes.
 * @return 0, -EBADMSG for anything malformed (message says what), never crashes.
 */
int cairn_tree_decode(cairn_tree *out, const void *data, size_t len);

/**
 * Capture the metadata of entry @p name of directory @p dirfd (lstat, xattrs,
 * symlink target, owner and group names). @p st may give an lstat result
 * already taken, or be NULL. Does not touch extents, digest or subtree.
 * @return 0, or a negative errno (-ENOENT if it vanished) with a message.
 */
int cairn_node_capture(cairn_node *out, int dirfd, const char *name, const struct stat *st);

/**
 * Create a non-regular node @p n (directory, symlink, fifo, device, socket)
 * as entry n->name of @p dirfd. An existing directory is accepted.
 * @return 0 or a negative errno with a message.
 */
int cairn_node_make(int dirfd, const cairn_node *n);

#define CAIRN_APPLY_OWNER 1u  /* chown to uid/gid (only meaningful as root) */
#define CAIRN_APPLY_XATTRS 2u
#define CAIRN_APPLY_ALL (CAIRN_APPLY_OWNER | CAIRN_APPLY_XATTRS)

/**
 * Apply ownership, mode, xattrs and times of @p n to entry n->name of @p dirfd,
 * in the order that keeps them all: owner first (chown clears setuid/setgid
 * and security.capability), then xattrs (before the mode, so a read-only
 * mode cannot block them for a non-root restorer), then the mode, times last.
 * Symlinks get no mode (Linux has none for them); their xattrs (only
 * trusted.* / security.* can exist there) are set like any other's.
 * Ownership is set only as root; other failures return a negative errno
 * with a message.
 */
int cairn_node_apply(int dirfd, const cairn_node *n, unsigned flags);

#endif
