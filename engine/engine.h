/*
 * engine.h - the cairn repository: the public API of the engine module.
 *
 * A repository lives under one target (a local directory, RADOS pool, S3
 * bucket or a replica set of them). It holds:
 *   config              plaintext parameters (format version, repository id, chunker sizes)
 *   keys/<id>           key files: the key set wrapped under a passphrase
 *   data/<xx>/<id>      packs of encrypted blobs (file chunks and trees)
 *   index/<id>          encrypted index segments naming the blobs of packs
 *   snapshots/<id>      encrypted snapshots pointing at a root tree
 *   locks/<id>          encrypted locks of running operations
 * Byte layouts: docs/FORMAT.md. Write order is the crash-safety argument:
 * packs, then the index segments naming them, then the snapshot.
 *
 * Errors: negative errno codes with cairn_error_last() set; -EKEYREJECTED for
 * a wrong passphrase, -ENOENT for a missing repository or snapshot, -EBADMSG for
 * corrupt data, -EBUSY when the repository is locked by another operation.
 */
#ifndef CAIRN_ENGINE_H
#define CAIRN_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "common/common.h"
#include "targets/target.h"

#define CAIRN_VERSION_STRING "0.1.0"

typedef struct cairn_repo cairn_repo;

/* --- init and open ------------------------------------------------------------ */

typedef struct cairn_init_opts {
	unsigned version;      /* 1 */
	uint32_t chunk_min, chunk_avg, chunk_max; /* 0 = defaults (512 KiB / 1 MiB / 8 MiB) */
	uint32_t pack_size;    /* target pack size; 0 = 16 MiB */
	int zstd_level;        /* default compression level; -1 = default (3), 0 = off */
	uint32_t kdf_t, kdf_m_kib, kdf_lanes; /* 0 = defaults (below) */
	int chunk_id;          /* chunk id function, CAIRN_CHUNK_ID_*; 0 = default (BLAKE3) */
} cairn_init_opts;
/* The Argon2id cost of a new repository's key (docs/FORMAT.md, "Key files"). */
#define CAIRN_KDF_DEFAULT_T 8
#define CAIRN_KDF_DEFAULT_M_KIB (32u * 1024)
#define CAIRN_KDF_DEFAULT_LANES 2
#define CAIRN_INIT_OPTS_INIT {1, 0, 0, 0, 0, -1, 0, 0, 0, 0}

/* Chunk id functions (docs/FORMAT.md §4). HMAC-SHA256 is what format-1 configs
 * imply; BLAKE3 keyed_hash, 2-4x faster here, is the default of new repositories. */
#define CAIRN_CHUNK_ID_HMAC_SHA256 1
#define CAIRN_CHUNK_ID_BLAKE3 2
static inline int cairn_chunk_id_known(int id_fn)
{
	return id_fn == CAIRN_CHUNK_ID_HMAC_SHA256 || id_fn == CAIRN_CHUNK_ID_BLAKE3;
}

/**
 * Create a new repository on @p t protected by @p pass.
 * @return 0; -EEXIST if a repository is already there.
 */
int cairn_repo_init(cairn_target *t, const char *pass, const cairn_init_opts *opts);

typedef struct cairn_open_opts {
	unsigned version;      /* 1 */
	const char *cache_dir; /* NULL: $XDG_CACHE_HOME/cairn or ~/.cache/cairn; "" disables */
	unsigned threads;      /* worker threads; 0 = number of CPUs */
	int zstd_level;        /* -1: the repository's default */
	int no_lock;           /* read-only operations may skip locking */
	int read_member;       /* >= 0: read only from this member of a replica set, without the
				* cache (restore drills of one copy); -1: any */
} cairn_open_opts;
#define CAIRN_OPEN_OPTS_INIT {1, NULL, 0, -1, 0, -1}

/**
 * Open the repository on @p t (which the repository then owns and closes).
 * Loads the index.
 * @return 0; -ENOENT no repository there; -EKEYREJECTED wrong passphrase.
 */
int cairn_repo_open(cairn_repo **out, cairn_target *t, const char *pass,
		    const cairn_open_opts *opts);
void cairn_repo_close(cairn_repo *r);

/** Where warnings go (files that vanished, unusable index segments...); default stderr. */
void cairn_repo_set_warn(cairn_repo *r, void (*warn)(void *payload, const char *msg),
			 void *payload);

/** Hex repository id (valid while open). */
const char *cairn_repo_id(const cairn_repo *r);
cairn_target *cairn_repo_target(cairn_repo *r);

/* --- snapshots ---------------------------------------------------------------- */

typedef struct cairn_backup_summary {
	uint64_t files_new, files_changed, files_unchanged;
	uint64_t dirs, others;
	uint64_t bytes_read;      /* file content read from disk */
	uint64_t bytes_total;     /* logical size of all files in the snapshot */
	uint64_t bytes_added;     /* bytes written to the repository (packs, index, snapshot) */
	uint64_t blobs_added;
	uint64_t errors;          /* files that could not be read or changed while read */
	int64_t duration_ns;
} cairn_backup_summary;

typedef struct cairn_snapshot {
	char idhex[65];           /* name of the snapshot object */
	int64_t time_ns;
	uint8_t tree[32];
	int has_parent;
	uint8_t parent[32];
	char *client, *hostname, *username;
	size_t npaths;
	char **paths;
	size_t ntags;
	char **tags;
	cairn_backup_summary summary;
	char *program;
} cairn_snapshot;

void cairn_snapshot_free(cairn_snapshot *s);

/** All snapshots, sorted by time (oldest first). */
int cairn_snapshots_list(cairn_repo *r, cairn_snapshot **out, size_t *n);
void cairn_snapshots_free(cairn_snapshot *s, size_t n);

typedef struct cairn_snapshot_filter {
	const char *client;   /* NULL = any */
	const char *host;
	const char *tag;
	const char *path;
} cairn_snapshot_filter;

/**
 * Find one snapshot by id prefix or "latest" (newest matching the filter).
 * @return 0; -ENOENT none; -EINVAL an ambiguous prefix.
 */
int cairn_snapshot_find(cairn_repo *r, const char *spec, const cairn_snapshot_filter *f,
			cairn_snapshot *out);
/** Delete a snapshot object. */
int cairn_snapshot_delete(cairn_repo *r, const char *idhex);

/* --- backup ------------------------------------------------------------------ */

typedef void (*cairn_progress_fn)(void *payload, const char *line);

typedef struct cairn_backup_opts {
	unsigned version;      /* 1 */
	const char *const *paths;
	size_t npaths;
	const char *client;    /* client (customer) name; NULL = hostname */
	const char *const *tags;
	size_t ntags;
	const char *const *excludes; /* fnmatch patterns on paths or base names */
	size_t nexcludes;
	int one_file_system;
	const char *parent;    /* snapshot id; NULL: latest of the same client and paths */
	int force;             /* re-read every file */
	cairn_progress_fn progress; /* called a few times a second; NULL = none */
	void *progress_payload;
	int dry_run_crash_after; /* tests: _exit(9) after this many packs are written (0 = never) */
} cairn_backup_opts;
#define CAIRN_BACKUP_OPTS_INIT {1, NULL, 0, NULL, NULL, 0, NULL, 0, 0, NULL, 0, NULL, NULL, 0}

/**
 * Back up @p opts->paths into a new snapshot. Files that vanish, change or
 * cannot be read are counted in summary.errors and reported through
 * @p warn; the snapshot is still written (exit code 3 in the CLI).
 * @return 0 (also with warnings); negative errno if no snapshot was written.
 */
int cairn_backup(cairn_repo *r, const cairn_backup_opts *opts, cairn_snapshot *out,
		 void (*warn)(void *payload, const char *msg), void *warn_payload);

/* --- restore ------------------------------------------------------------------- */

typedef struct cairn_restore_opts {
	unsigned version;     /* 1 */
	const char *target;   /* directory to restore into (created) */
	const char *const *includes; /* paths inside the snapshot to restore; none = all */
	size_t nincludes;
	int verify_only;      /* read and verify everything, write nothing */
	int no_owner;         /* do not chown even as root */
	cairn_progress_fn progress;
	void *progress_payload;
	double sample;        /* restore drills: share of files (0 or >= 1 = all), chosen by a
			       * hash of (seed, path); the largest file and the deepest file are
			       * always included */
	uint64_t seed;
} cairn_restore_opts;
#define CAIRN_RESTORE_OPTS_INIT {1, NULL, NULL, 0, 0, 0, NULL, NULL, 0, 0}

typedef struct cairn_restore_result {
	uint64_t files, dirs, others, bytes, errors;
	int64_t duration_ns;
	int64_t first_byte_ns; /* time to first byte of file content */
	uint64_t files_total, bytes_total; /* in the snapshot (or the included paths) */
	char largest[1024], deepest[1024]; /* with sampling: the paths always included */
} cairn_restore_result;

int cairn_restore(cairn_repo *r, const cairn_snapshot *snap, const cairn_restore_opts *opts,
		  cairn_restore_result *res, void (*warn)(void *payload, const char *msg),
		  void *warn_payload);

/* --- listing ----------------------------------------------------------------------- */

/** One entry while walking a snapshot: path relative to the root and its node. */
typedef struct cairn_entry {
	const char *path;
	uint8_t type;    /* cairn node type: 1 file, 2 dir, 3 symlink, 4 fifo, 5 chr, 6 blk, 7 sock */
	uint32_t mode, uid, gid;
	uint64_t size;
	int64_t mtime_ns;
	const char *link;
} cairn_entry;

int cairn_ls(cairn_repo *r, const cairn_snapshot *snap, const char *prefix,
	     int (*cb)(void *payload, const cairn_entry *e), void *payload);

/* --- forget and prune --------------------------------------------------------------- */

typedef struct cairn_retention {
	int keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly;
	int64_t keep_within_ns; /* keep everything newer than now - this */
	const char *const *keep_tags;
	size_t nkeep_tags;
} cairn_retention;

/**
 * Decide which of @p snaps (sorted by time) to keep under @p pol, at time
 * @p now_ns. keep[i] is set to 1/0. Pure function (tests). Snapshots are
 * grouped by client before the policy applies.
 */
void cairn_retention_apply(const cairn_retention *pol, const cairn_snapshot *snaps, size_t n,
			   int64_t now_ns, int *keep);

typedef struct cairn_prune_opts {
	unsigned version;
	int dry_run;
	double repack_threshold; /* repack packs with more than this share unused; default 0.2 */
	cairn_progress_fn progress;
	void *progress_payload;
} cairn_prune_opts;
#define CAIRN_PRUNE_OPTS_INIT {1, 0, 0.2, NULL, NULL}

typedef struct cairn_prune_result {
	uint64_t packs_total, packs_deleted, packs_repacked;
	uint64_t blobs_total, blobs_unused, bytes_freed, bytes_total;
} cairn_prune_result;

int cairn_prune(cairn_repo *r, const cairn_prune_opts *opts, cairn_prune_result *res);

typedef struct cairn_reindex_result {
	uint64_t packs, packs_bad, blobs_kept, blobs_dropped, segments_replaced;
} cairn_reindex_result;

/**
 * Rebuild the index from the packs themselves (`cairn repair --index`): read
 * every pack, keep every blob that authenticates and hashes to its id, drop
 * the rest (and every pack that cannot be read), write a complete new index,
 * then delete the old segments. Chunks that were lost are then in no index,
 * so the next backup stores them again from the source; `check` names the
 * snapshots and files that still need them. Runs under the exclusive lock.
 * Problems go to @p report naming the pack.
 */
int cairn_repair_index(cairn_repo *r, cairn_reindex_result *res,
		       void (*report)(void *payload, const char *msg), void *payload);

/* --- check ----------------------------------------------------------------------------- */

typedef struct cairn_check_opts {
	unsigned version;
	int read_data;        /* read every pack: keyless checksums, then authenticate every blob */
	double subset;        /* with read_data: share of packs to read (0 < s <= 1; 0 = all) */
	uint64_t seed;        /* which subset */
	cairn_progress_fn progress;
	void *progress_payload;
} cairn_check_opts;
#define CAIRN_CHECK_OPTS_INIT {1, 0, 0, 0, NULL, NULL}

typedef struct cairn_check_result {
	uint64_t snapshots, trees, files, packs, packs_read, blobs_read, bytes_read;
	uint64_t errors, warnings;
	uint64_t affected;    /* files and directories of snapshots that need damaged data */
} cairn_check_result;

/** Severity of a finding passed to the check report callback. */
enum cairn_check_severity {
	CAIRN_CHECK_ERROR = 0,    /* damage: counted in errors, check fails */
	CAIRN_CHECK_WARNING = 1,  /* harmless (orphan packs...): counted in warnings */
	CAIRN_CHECK_AFFECTED = 2, /* what an error costs: "snapshot 1a2b3c4d: /path (chunk ...)" */
};
typedef void (*cairn_check_report_fn)(void *payload, int severity, const char *msg);

/**
 * Verify the repository: every snapshot readable, every tree decodable, every
 * file's chunks indexed and its digest consistent, every indexed pack present
 * with the right size; with read_data every pack's checksums and every blob's
 * authentication and id. Each problem is reported through @p report with the
 * object named (and the target it was read from); when packs or blobs are
 * damaged, the snapshots' trees are then walked and each file or directory
 * that needs damaged data is reported (severity CAIRN_CHECK_AFFECTED, at most
 * 50 lines and a count of the rest). Returns -EBADMSG if there was any error.
 */
int cairn_check(cairn_repo *r, const cairn_check_opts *o, cairn_check_result *res,
		cairn_check_report_fn report, void *payload);

/* --- stats and keys ------------------------------------------------------------------- */

typedef struct cairn_stats {
	uint64_t snapshots, packs, blobs, data_blobs, tree_blobs;
	uint64_t stored_bytes;   /* sum of pack sizes */
	uint64_t raw_bytes;      /* logical bytes of all snapshots' files */
	uint64_t unique_bytes;   /* plaintext bytes of distinct chunks */
	size_t index_memory;     /* bytes the in-memory index uses */
} cairn_stats;

int cairn_repo_stats(cairn_repo *r, cairn_stats *out);

typedef struct cairn_keyinfo {
	char idhex[17];
	char label[256];
	int64_t created_ns;
	int current;             /* the key this session opened with */
	uint32_t kdf_t, kdf_m_kib, kdf_lanes; /* its Argon2id cost */
} cairn_keyinfo;

int cairn_key_list(cairn_repo *r, cairn_keyinfo **out, size_t *n);

/** Argon2id cost of a new key; a 0 field keeps the current key's value. */
typedef struct cairn_kdf_cost {
	uint32_t t, m_kib;
} cairn_kdf_cost;

/**
 * Add a key under @p newpass at the current key's cost changed by @p cost
 * (NULL: unchanged); on success @p cost (if given) holds the cost used.
 */
int cairn_key_add(cairn_repo *r, const char *newpass, cairn_kdf_cost *cost, char idhex_out[17]);
/** Remove a key; refuses to remove the current one (-EPERM). */
int cairn_key_remove(cairn_repo *r, const char *idhex);
/** Change the passphrase (and optionally the cost, as cairn_key_add): add a new key, remove
 *  the current one. */
int cairn_key_passwd(cairn_repo *r, const char *newpass, cairn_kdf_cost *cost);

/* --- drill reports ---------------------------------------------------------------------- */

/** Store a drill report (JSON text), encrypted, as reports/<random id>. */
int cairn_report_save(cairn_repo *r, const char *json, size_t len, char name_out[80]);
/** Every stored report, oldest name first; @p cb gets the decrypted JSON text. */
int cairn_reports_list(cairn_repo *r, int (*cb)(void *payload, const char *name, const char *json),
		       void *payload);

/* --- keyless ------------------------------------------------------------------------ */

/**
 * Keyless integrity check of a whole pack object (its trailer's XXH3-128
 * checksums): what scrub and repair use without any client key.
 * @p bad_segment gets the first damaged 1 MiB segment, or -1.
 * @return 0 intact; -EBADMSG with a message naming the damage.
 */
int cairn_pack_check(const void *pack, size_t len, int64_t *bad_segment);
/**
 * The same check of pack object @p name (@p size bytes) on @p t, read a
 * window of ~2 MiB at a time into @p buf (the caller's, reusable): memory
 * does not grow with the pack. @return 0 intact; -EBADMSG with a message
 * naming the damage; another negative errno if it could not be read.
 */
int cairn_pack_check_object(cairn_target *t, const char *name, uint64_t size, cairn_buf *buf,
			    int64_t *bad_segment);
/** 1 if @p name is the name of a pack object (data/xx/<64 hex>). */
int cairn_is_pack_name(const char *name);

/* --- low-level access (cat, check) -------------------------------------------------------- */

/** Read and decrypt a repository object: "config", "index/<id>", "snapshots/<id>", "keys/<id>"
 *  (key files are printed as their clear fields). The result is human-readable text. */
int cairn_cat(cairn_repo *r, const char *what, cairn_buf *out);

#endif
