/*
 * fdcache.h - a small table of open read-only file descriptors, for files
 * that are read many times in small pieces and never change while named
 * (packs: written once under a name of their own; a replacement or removal
 * through cairn drops the name). Least recently used out;
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
 * An open descriptor of @p path (@p key names it in the table; opened with
 * cairn_open_regular on a miss); *size is the file's size when it was
 * opened. Release it with cairn_fdcache_put(c, *slot, fd): *slot is -1 when
 * the descriptor is not in the table (every slot in use, or a key of 128
 * bytes or more) and the put closes it. @return the descriptor, or -errno
 * (-ENOENT also for anything but a regular file).
 */
int cairn_fdcache_get(cairn_fdcache *c, const char *key, const char *path, int *slot,
		      uint64_t *size);
void cairn_fdcache_put(cairn_fdcache *c, int slot, int fd);
/**
 * cairn_pread_all of the file at @p path through the table: its descriptor
 * is kept open (opened on a miss; for this read alone when every slot is
 * busy). *size: the file's size when it was opened. @return as
 * cairn_pread_all, or cairn_fdcache_get's -errno.
 */
long long cairn_fdcache_pread(cairn_fdcache *c, const char *key, const char *path, void *buf,
			      size_t len, uint64_t off, uint64_t *size);
/** Forget @p key (the file was replaced or removed). */
void cairn_fdcache_drop(cairn_fdcache *c, const char *key);

#endif
