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
#include <unistd.h>

#include "common/common.h"

#define SLOTS 16
#define KEY_MAX 128

struct slot {
	char key[KEY_MAX]; /* "" = free */
	int fd;
	unsigned refs;
	int dead; /* dropped while in use: closed by the last user */
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

/* The slot of live @p key, or NULL. Under c->mu. */
static struct slot *find_locked(cairn_fdcache *c, const char *key)
{
	for (int i = 0; i < SLOTS; i++)
		if (c->s[i].key[0] && !c->s[i].dead && !strcmp(c->s[i].key, key))
			return &c->s[i];
	return NULL;
}

/* A free slot, else the least recently used one nobody holds, or NULL. Under c->mu. */
static struct slot *victim_locked(cairn_fdcache *c)
{
	struct slot *v = NULL;
	for (int i = 0; i < SLOTS; i++) {
		struct slot *s = &c->s[i];
		if (!s->key[0])
			return s;
		if (!s->refs && (!v || s->used < v->used))
			v = s;
	}
	return v;
}

static int take_locked(cairn_fdcache *c, struct slot *e, int *slot, uint64_t *size)
{
	e->refs++;
	e->used = ++c->clock;
	*slot = (int)(e - c->s);
	*size = e->size;
	return e->fd;
}

int cairn_fdcache_get(cairn_fdcache *c, const char *key, const char *path, int *slot,
                      uint64_t *size)
{
	int fd = -1;
	struct slot *e = NULL;
	*slot = -1;
	if (strlen(key) < KEY_MAX) {
		pthread_mutex_lock(&c->mu);
		if ((e = find_locked(c, key)) != NULL)
			fd = take_locked(c, e, slot, size);
		pthread_mutex_unlock(&c->mu);
		if (e)
			return fd;
	}
	/* a miss: open outside the lock, so a slow open holds up no other reader */
	fd = cairn_open_regular(path, size);
	if (fd < 0 || strlen(key) >= KEY_MAX)
		return fd;
	pthread_mutex_lock(&c->mu);
	if ((e = find_locked(c, key)) != NULL) { /* another thread opened it meanwhile */
		close(fd);
		fd = take_locked(c, e, slot, size);
	} else if ((e = victim_locked(c)) != NULL) {
		if (e->key[0])
			slot_close(e);
		snprintf(e->key, sizeof(e->key), "%s", key);
		e->fd = fd;
		e->size = *size;
		take_locked(c, e, slot, size);
	} /* else every slot is in use: the descriptor is the caller's alone */
	pthread_mutex_unlock(&c->mu);
	return fd;
}

void cairn_fdcache_put(cairn_fdcache *c, int slot, int fd)
{
	if (slot < 0) {
		close(fd);
		return;
	}
	pthread_mutex_lock(&c->mu);
	struct slot *e = &c->s[slot];
	if (!--e->refs && e->dead)
		slot_close(e);
	pthread_mutex_unlock(&c->mu);
}

long long cairn_fdcache_pread(cairn_fdcache *c, const char *key, const char *path, void *buf,
                              size_t len, uint64_t off, uint64_t *size)
{
	int slot;
	int fd = cairn_fdcache_get(c, key, path, &slot, size);
	if (fd < 0)
		return fd;
	long long n = cairn_pread_all(fd, buf, len, off);
	cairn_fdcache_put(c, slot, fd);
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
