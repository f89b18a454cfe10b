/*
 * fdcache.c - a small table of open read-only descriptors (see fdcache.h).
 */
#include "common/fdcache.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"

#define SLOTS 16
#define KEY_MAX 128

struct slot {
	char key[KEY_MAX]; /* "" = free */
	int fd;
	unsigned refs;
	int dead;      /* dropped while in use: closed by the last user */
	uint64_t size;
	uint64_t used; /* least recently used goes first */
};

struct cairn_fdcache {
	pthread_mutex_t mu;
	struct slot s[SLOTS];
	uint64_t clock;
};

cairn_fdcache *cairn_fdcache_new(void)
{
	cairn_fdcache *c = cairn_xcalloc(1, sizeof(*c));
	pthread_mutex_init(&c->mu, NULL);
	return c;
}

static void slot_close(struct slot *e)
{
	close(e->fd);
	e->key[0] = 0;
	e->dead = 0;
}

void cairn_fdcache_free(cairn_fdcache *c)
{
	if (!c)
		return;
	for (int i = 0; i < SLOTS; i++)
		if (c->s[i].key[0])
			slot_close(&c->s[i]);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

int cairn_fdcache_get(cairn_fdcache *c, const char *key, const char *path, int *slot,
		      uint64_t *size)
{
	if (strlen(key) >= KEY_MAX)
		return -EBUSY; /* not cacheable: the caller opens it */
	struct slot *e = NULL, *victim = NULL;
	int rc = 0;
	pthread_mutex_lock(&c->mu);
	for (int i = 0; i < SLOTS && !e; i++) {
		struct slot *s = &c->s[i];
		if (s->key[0] && !s->dead && !strcmp(s->key, key))
			e = s;
		else if (!s->key[0] && (!victim || victim->key[0]))
			victim = s;
		else if (s->key[0] && !s->refs && (!victim || (victim->key[0] && s->used < victim->used)))
			victim = s;
	}
	if (!e && !victim)
		rc = -EBUSY;
	if (!e && victim) {
		struct stat st;
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			rc = -errno;
		} else if (fstat(fd, &st) < 0) {
			rc = -errno;
			close(fd);
		} else if (!S_ISREG(st.st_mode)) {
			rc = S_ISDIR(st.st_mode) ? -ENOENT : -EINVAL;
			close(fd);
		} else {
			if (victim->key[0])
				slot_close(victim);
			e = victim;
			snprintf(e->key, sizeof(e->key), "%s", key);
			e->fd = fd;
			e->size = (uint64_t)st.st_size;
		}
	}
	if (e) {
		e->refs++;
		e->used = ++c->clock;
		*slot = (int)(e - c->s);
		*size = e->size;
		rc = e->fd;
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

void cairn_fdcache_put(cairn_fdcache *c, int slot)
{
	pthread_mutex_lock(&c->mu);
	struct slot *e = &c->s[slot];
	if (!--e->refs && e->dead)
		slot_close(e);
	pthread_mutex_unlock(&c->mu);
}

long long cairn_fdcache_pread(cairn_fdcache *c, const char *key, const char *path, void *buf,
			      size_t len, uint64_t off, uint64_t *size)
{
	int slot = -1;
	int fd = cairn_fdcache_get(c, key, path, &slot, size);
	if (fd == -EBUSY) { /* every slot busy: a descriptor of its own */
		struct stat st;
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			close(fd);
			return -ENOENT;
		}
		*size = (uint64_t)st.st_size;
	}
	if (fd < 0)
		return fd;
	long long n = cairn_pread_all(fd, buf, len, off);
	if (slot >= 0)
		cairn_fdcache_put(c, slot);
	else
		close(fd);
	return n;
}

void cairn_fdcache_drop(cairn_fdcache *c, const char *key)
{
	pthread_mutex_lock(&c->mu);
	for (int i = 0; i < SLOTS; i++) {
		struct slot *e = &c->s[i];
		if (e->key[0] && !strcmp(e->key, key)) {
			if (e->refs)
				e->dead = 1;
			else
				slot_close(e);
		}
	}
	pthread_mutex_unlock(&c->mu);
}
