/*
 * repo_int.h - what the engine's parts share about an open repository
 * (engine-internal).
 */
#ifndef CAIRN_REPO_INT_H
#define CAIRN_REPO_INT_H

#include <pthread.h>

#include "common/fdcache.h"
#include "engine/crypto_int.h"
#include "engine/engine.h"
#include "engine/index_int.h"
#include "engine/node_int.h"
#include "engine/pack_int.h"

/* Sealed object kinds. */
#define CAIRN_OBJ_INDEX 1
#define CAIRN_OBJ_SNAPSHOT 2
#define CAIRN_OBJ_LOCK 3
#define CAIRN_OBJ_REPORT 4 /* drill reports: JSON text */

#define CAIRN_TREE_MAX (256u << 20) /* largest tree blob accepted */

struct cairn_repo {
	cairn_target *t;          /* where objects are written (and read from, normally) */
	cairn_target *rt;         /* where objects are read from: t, or one member (drills) */
	cairn_keyset keys;
	char key_name[64];        /* keys/<id> this session opened */
	char idhex[65];
	uint32_t chunk_min, chunk_avg, chunk_max, pack_size;
	int zstd_level;
	int format;               /* config version: 1, or 2 (which names keys.id_fn) */
	uint64_t gear[256];
	cairn_index *idx;
	char *cache;              /* per-repository cache directory, or NULL */
	unsigned threads;
	int no_lock;
	void (*warn)(void *payload, const char *msg);
	void *warn_payload;
	pthread_mutex_t mu;       /* protects the lock state and warnings */
	char lock_name[80];       /* locks/<id> held, or "" */
	int lock_exclusive;
	pthread_t lock_thread;
	int lock_thread_running;
	pthread_cond_t lock_cond;
	int lock_stop;
	uint64_t index_errors;    /* index segments that could not be loaded */
	cairn_fdcache *cache_fds; /* open cached tree packs (repo.c, cache_read_range) */
};

/** Report a warning through the repository's callback (or stderr). */
void repo_warn(cairn_repo *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Seal @p data as @p kind and store it as <dir>/<random hex>; name written to @p name. */
int repo_save_object(cairn_repo *r, cairn_codec *cx, const char *dir, uint8_t kind,
		     const void *data, size_t len, char name[80]);
/** Load and unseal an object (through the cache when @p cacheable). */
int repo_load_object(cairn_repo *r, cairn_codec *cx, const char *name, uint8_t kind,
		     size_t max, int cacheable, cairn_buf *out);

/**
 * Read one blob by id, authenticate it and check its id. @p rawlen is the
 * expected plaintext length or 0 if unknown.
 * @return 0; -ENOENT not in the index; -EBADMSG corrupt; target errors.
 */
int repo_blob_read(cairn_repo *r, cairn_codec *cx, const uint8_t id[32], size_t rawlen,
		   cairn_buf *out);
/** Load and decode a tree blob. */
int repo_tree_load(cairn_repo *r, cairn_codec *cx, const uint8_t id[32], cairn_tree *out);

/**
 * Store a finished pack and register its blobs in the in-memory index and
 * in @p pending (the next index segment to write).
 */
int repo_pack_store(cairn_repo *r, cairn_packw *pw, cairn_idxseg *pending);
/** Write @p seg as a new index segment (no-op if empty) and clear it. */
int repo_index_write(cairn_repo *r, cairn_codec *cx, cairn_idxseg *seg, char name[80]);
/** (Re)load every index segment. */
int repo_index_load(cairn_repo *r);
/**
 * Bring the in-memory index up to date with the target (call under a lock):
 * reload it if it names packs that are gone (a prune ran since it was loaded),
 * then find packs that no index segment names (left by an interrupted backup),
 * read their headers and write an index segment for them.
 * @return number of packs adopted, or a negative errno.
 */
long repo_index_adopt_orphans(cairn_repo *r, cairn_codec *cx);

/** Take a shared (backup) or exclusive (prune) lock. -EBUSY if it conflicts. */
int repo_lock(cairn_repo *r, int exclusive, const char *purpose);
void repo_unlock(cairn_repo *r);

/** Snapshot encoding (snapshot.c). */
void snapshot_encode(const cairn_snapshot *s, cairn_buf *out);
int snapshot_decode(cairn_snapshot *out, const void *data, size_t len);
/** Store a snapshot object; fills s->idhex. */
int snapshot_save(cairn_repo *r, cairn_codec *cx, cairn_snapshot *s);

/** Whole-file digest over the extents (docs/FORMAT.md, "File digest"). */
void file_digest(const cairn_keyset *keys, const cairn_extent *e, size_t n, uint64_t size,
		 uint8_t out[32]);

#endif
