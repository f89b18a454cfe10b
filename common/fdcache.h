/*
 * fdcache.h - a small table of open read-only file descriptors, for files
 * that are read many times in small pieces and never change while named
 * (packs: their names are their contents' hashes). Least recently used out;
 * a descriptor in use is never closed under its user: dropping it marks it,
 * and the last user closes it. Thread-safe.
 */
#ifndef CAIRN_FDCACHE_H
#define CAIRN_FDCACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct cairn_fdcache cairn_fdcache;

cairn_fdcache *cairn_fdcache_new(void);
/** Closes every descriptor (none may be in use). NULL is fine. */
void cairn_fdcache_free(cairn_fdcache *c);

/**
 * An open descriptor of @p path (@p key names it in the table), opened
 * O_RDONLY on a miss; *size is the file's size when it was opened. Release
 * it with cairn_fdcache_put(c, *slot). @return the descriptor; -ENOENT etc.
 * (-errno) if it cannot be opened or is not a regular file; -EBUSY if every
 * slot is in use (the caller opens the file itself).
 */
int cairn_fdcache_get(cairn_fdcache *c, const char *key, const char *path, int *slot,
		      uint64_t *size);
void cairn_fdcache_put(cairn_fdcache *c, int slot);
/**
 * cairn_pread_all of the file at @p path through the table: its descriptor
 * is kept open (opened on a miss; opened for this read alone when every slot
 * is busy). *size: the file's size when it was opened. @return as
 * cairn_pread_all; -errno if it cannot be opened (-ENOENT for a directory).
 */
long long cairn_fdcache_pread(cairn_fdcache *c, const char *key, const char *path, void *buf,
			      size_t len, uint64_t off, uint64_t *size);
/** Forget @p key (the file was replaced or removed). */
void cairn_fdcache_drop(cairn_fdcache *c, const char *key);

#endif
