/*
 * archiver_int.h - what the three files of a backup share (engine-internal):
 * archiver.c (errors, the in-flight set, trees, the driver), walker.c (the
 * walk of the source directories) and reader.c (readers, packers and
 * uploaders). See archiver.c for the design.
 */
#ifndef CAIRN_ARCHIVER_INT_H
#define CAIRN_ARCHIVER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "engine/queue_int.h"
#include "engine/repo_int.h"

#define NODE_SKIP 0x80000000u /* internal: drop from the tree (unreadable) */

typedef struct pdir {
	struct pdir *parent;
	size_t slot;     /* this directory's node in parent->tree */
	int fd;
	char *path;
	cairn_tree tree;
	int outstanding; /* children not finished + the walker's token (under arch.mu) */
} pdir;

typedef struct fjob {
	pdir *dir;
	size_t slot;
	int had_parent; /* the parent snapshot had this file (changed rather than new) */
} fjob;

typedef struct cjob {
	uint8_t id[32];
	int raw; /* store without trying compression (compressed_format) */
	size_t len, cap;
	uint8_t data[]; /* cap bytes, len used */
} cjob;

/*
 * Chunk copies travel from readers to packers; recycling their buffers keeps
 * memory at the few chunks in flight. Freed to malloc instead, ~1 MiB blocks
 * freed on other threads than the ones that allocated them fragmented glibc's
 * per-thread arenas to ~60 MiB on a 2 GiB backup.
 */
#define POOL_MAX 8
#define POOL_KEEP (2u << 20) /* rarer, larger buffers go back to malloc */

typedef struct inflight {
	struct inflight *next;
	uint8_t id[32];
} inflight;

#define INFLIGHT_BUCKETS 4096

typedef struct arch {
	cairn_repo *r;
	const cairn_backup_opts *o;
	cairn_queue files, chunks, packs;
	pthread_mutex_t poolmu;
	cjob *pool[POOL_MAX]; /* spare chunk buffers */
	size_t npool;
	pthread_mutex_t mu;
	inflight *inf[INFLIGHT_BUCKETS];
	cairn_packw *treepack;
	pthread_mutex_t packmu; /* guards datapack */
	cairn_packw *datapack;  /* the one data pack being filled, shared by the packers */
	cairn_codec *treecx;  /* encoding trees, under mu; the driver's own use before/after */
	pthread_mutex_t wmu;  /* the walk's stack of directories */
	pthread_cond_t wcond;
	struct wjob *wstack;
	unsigned wbusy;       /* walkers inside a directory */
	cairn_idxseg pending;
	size_t pending_packs;
	atomic_int err;
	char errmsg[CAIRN_ERRMSG_MAX];
	cairn_backup_summary sum; /* under mu */
	atomic_uint_fast64_t bytes_read, bytes_added, files_done;
	uint8_t root[32];
	int root_done;
	dev_t root_dev;
	void (*warn)(void *, const char *);
	void *warn_payload;
	uint64_t t0;
} arch;

/* The trie of the paths to back up below "/". */
typedef struct trie {
	char *name;
	int target; /* back up everything below */
	size_t n;
	struct trie **kids;
} trie;

typedef struct wjob {
	struct wjob *next;
	pdir *dir;                /* fd still closed unless it is the top */
	const cairn_tree *ptree;  /* the parent snapshot's tree, if already loaded (the top) */
	uint8_t psub[32];         /* else its id in the parent snapshot */
	int have_psub;
	int skip;                 /* another file system: recorded, not entered */
	const trie *only;
} wjob;

/* archiver.c */

/* A warning for the backup's summary and the caller's callback. */
void arch_warnf(arch *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* dir/name for a message, with unprintable bytes escaped. */
void arch_printable(char *out, size_t cap, const char *dir, const char *name);
/* A child of d is finished; the last one finishes d (its tree is stored). */
void arch_child_done(arch *a, pdir *d);
/* Keep the backup's first error (rc < 0, with cairn_error_last()); the stages see a->err and stop. */
void arch_fail(arch *a, int rc);
/* Under a->mu: 1 if id is known (index or in flight), else 0 and id is now in flight. */
int arch_claim_locked(arch *a, const uint8_t id[32]);
/* Under a->mu: id is no longer in flight (its pack is stored and its blobs indexed). */
void arch_release_locked(arch *a, const uint8_t id[32]);
/* Seal a full pack's header and hand it to the uploaders (cx NULL: a codec of its own). */
void arch_push_pack(arch *a, cairn_packw *pw, cairn_codec *cx);

/* reader.c: the stages' threads (each takes the arch) */

void *arch_reader_main(void *arg);
void *arch_packer_main(void *arg);
void *arch_uploader_main(void *arg);

/* walker.c */

/* dir + "/" + name (no doubled slash below "/"); malloc'd. */
char *arch_join_path(const char *dir, const char *name);
/* qsort comparison of C strings through pointers. */
int arch_cmp_str(const void *x, const void *y);
/* Put the chain first .. last on the walkers' stack and wake them. */
void arch_walk_push(arch *a, wjob *first, wjob *last);
/* A walker thread: takes directories from the stack until the walk is over. */
void *arch_walker_main(void *arg);

#endif
