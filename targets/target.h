/*
 * target.h - the one interface every object store of cairn sits behind.
 *
 * A target stores immutable named objects. Names are relative paths of
 * [A-Za-z0-9._-] segments joined by '/', never starting with '/' and never
 * containing "..": they need no escaping on any backend (S3 keys, RADOS object
 * names, local paths).
 *
 * Implementations embed `struct cairn_target` as their first member and fill
 * the ops they support; a NULL op makes the wrapper return -EOPNOTSUPP.
 * `close` is mandatory. Every op may be called from several threads at once.
 *
 * Errors: negative errno-style codes; the thread-local message
 * (cairn_error_last()) names the target and the object. Expected codes:
 *   -ENOENT     no such object
 *   -ENOSPC, -EACCES, -EROFS, -EDQUOT   the store refuses writes
 *   -EIO, -ETIMEDOUT, -ECONNREFUSED ...  the store is unhealthy (retryable ones
 *                                         satisfy cairn_err_retryable())
 *   -EBADMSG    a backend detected corruption
 *
 * Durability: put() returns 0 only once the object is on stable storage of
 * that target (local: fsync of file and directory) and visible under its
 * final name, atomically: a reader sees the whole object or nothing. A put of
 * an existing name replaces it atomically (idempotent retries).
 */
#ifndef CAIRN_TARGET_H
#define CAIRN_TARGET_H

#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

#define CAIRN_TARGET_VERSION 1

typedef struct cairn_target cairn_target;

/** Called once per listed object; a negative return stops the listing and is returned. */
typedef int (*cairn_target_list_cb)(void *payload, const char *name, uint64_t size);

/** Per-target counters (atomically updated by the wrappers). */
typedef struct cairn_target_stats {
	uint64_t puts, gets, lists, dels, errors;
	uint64_t bytes_written, bytes_read;
} cairn_target_stats;

struct cairn_target {
	unsigned int version;      /* CAIRN_TARGET_VERSION */
	const char *kind;          /* "local", "rados", "s3", "replica", "fault" */
	char *name;                /* printable address, e.g. "local:/srv/repo" (owned) */
	char *site;                /* site / region label, or NULL (owned) */
	cairn_target_stats stats;  /* maintained by the cairn_target_* wrappers */

	int (*put)(cairn_target *t, const char *name, const void *data, size_t len);
	/* Whole object into out (appended to out->len == 0). */
	int (*get)(cairn_target *t, const char *name, cairn_buf *out);
	/* Exactly len bytes at off into out; -ERANGE if the object is shorter. */
	int (*get_range)(cairn_target *t, const char *name, uint64_t off, size_t len, void *out);
	int (*stat)(cairn_target *t, const char *name, uint64_t *size);
	/* Every object whose name starts with prefix (which ends in '/' or is ""). */
	int (*list)(cairn_target *t, const char *prefix, cairn_target_list_cb cb, void *payload);
	int (*del)(cairn_target *t, const char *name);
	void (*close)(cairn_target *t); /* mandatory; frees t */

	/* Replicated targets only (NULL elsewhere; members are only ever appended). */
	/* Number of copies a read can choose from. */
	unsigned (*ncopies)(cairn_target *t);
	/* get_range from copy @p copy (0 = the preferred one, in preference order). */
	int (*get_range_copy)(cairn_target *t, unsigned copy, const char *name, uint64_t off,
			      size_t len, void *out);
	/* The caller found copy @p copy of @p name corrupt: journal it for repair. */
	void (*report_bad)(cairn_target *t, unsigned copy, const char *name);

	/* Optional (local directories): objects written piece by piece. tmpfile
	 * returns a writable fd of an unnamed file on the target's file system
	 * (-EOPNOTSUPP if there is none); link_tmpfile makes its @p len bytes
	 * durable as object @p name. The caller closes the fd. */
	int (*tmpfile)(cairn_target *t);
	int (*link_tmpfile)(cairn_target *t, const char *name, int fd, uint64_t len);
};

/**
 * Open a target from an address:
 *   /path, local:/path            a local directory (created by put as needed)
 *   rados:POOL[/NAMESPACE]        a RADOS pool (namespace "" if none), via the
 *                                 Ceph config in $CEPH_CONF, else
 *                                 /etc/ceph/ceph.conf, as client.admin
 *   s3:http://HOST:PORT/BUCKET[/PREFIX]
 *                                 an S3 bucket (or https://), path-style, keys
 *                                 under PREFIX/, credentials from
 *                                 $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY
 *   fault:OPTS:ADDRESS            TEST FACILITY, not for production use: the
 *                                 target at ADDRESS wrapped by
 *                                 cairn_target_fault_wrap(). OPTS is a comma
 *                                 list of delay=MS (sleep before every op),
 *                                 fail_after=N (ops from number N on fail with
 *                                 -EIO) and corrupt (flip a byte of every read),
 *                                 e.g. fault:delay=100:/srv/x. It lets the CLI
 *                                 tests put one member of a replica set behind
 *                                 added latency, or make it fail, where the
 *                                 kernel offers no netem.
 * @return 0, -EINVAL for an unknown or malformed address.
 */
int cairn_target_open(cairn_target **out, const char *address);

/* Per-target settings of the configuration file (docs/CONFIG.md); zero fields
 * (or a NULL pointer) take the defaults of cairn_target_open(). */
typedef struct cairn_target_open_opts {
	const char *ceph_conf;  /* rados: Ceph config; NULL: $CEPH_CONF, /etc/ceph/ceph.conf */
	unsigned timeout_s;     /* rados, s3: operation timeout in seconds; 0: default (30) */
	const char *access_key; /* s3: NULL: $AWS_ACCESS_KEY_ID */
	const char *secret_key; /* s3: NULL: $AWS_SECRET_ACCESS_KEY */
} cairn_target_open_opts;

/** cairn_target_open() with settings @p o (applied to the inner address of fault:). */
int cairn_target_open_with(cairn_target **out, const char *address,
			   const cairn_target_open_opts *o);

/** Open a local-directory target rooted at @p root. */
int cairn_target_local_open(cairn_target **out, const char *root);

/* Options of a RADOS target; zero fields (or a NULL pointer) take the defaults. */
typedef struct cairn_rados_opts {
	unsigned timeout_s;      /* client_mount_timeout, rados_osd_op_timeout and
				  * rados_mon_op_timeout, in seconds; default 30 */
	unsigned max_inflight;   /* librados ops in flight at once; default 8 */
	const char *client_name; /* cephx identity; default "client.admin" */
} cairn_rados_opts;

/**
 * Open a RADOS target over pool @p pool, objects in namespace @p ns (NULL or
 * "" for the default namespace), connecting with Ceph config @p conf_path.
 * Connecting waits at most opts->timeout_s for the monitors.
 * @return 0, -ETIMEDOUT (cluster unreachable), -ENOENT (no config, keyring or
 * pool), -EACCES (authentication refused), -EOPNOTSUPP (built without
 * librados, or librados.so.2 cannot be loaded: it is loaded at the first
 * open, $CAIRN_RADOS_LIB overriding the name), or another negative code;
 * always with a message.
 */
int cairn_target_rados_open(cairn_target **out, const char *pool, const char *ns,
			    const char *conf_path, const cairn_rados_opts *opts);

/* Options of an S3 target; zero fields (or a NULL pointer) take the defaults. */
typedef struct cairn_s3_opts {
	const char *access_key; /* NULL: $AWS_ACCESS_KEY_ID */
	const char *secret_key; /* NULL: $AWS_SECRET_ACCESS_KEY */
	unsigned timeout_s;     /* an attempt fails -ETIMEDOUT after this long without
				 * progress; default 30 (libs3 itself stops at 15) */
	int retries;            /* retries of a transient failure; default 4, < 0: none */
} cairn_s3_opts;

/**
 * Open an S3 target: bucket @p bucket at @p endpoint_url ("http://HOST:PORT"
 * or "https://..."), objects under the key prefix @p prefix + "/" (NULL or ""
 * for none). Nothing is sent yet; the first put creates a missing bucket.
 * Objects are limited to 5 GiB (one PUT; libs3 2.0 has no multipart).
 * @return 0, -EINVAL (malformed endpoint, bucket or prefix; no credentials),
 * -EOPNOTSUPP (built without libs3, or libs3.so.2 cannot be loaded: it is
 * loaded at the first open, $CAIRN_S3_LIB overriding the name); always with
 * a message.
 */
int cairn_target_s3_open(cairn_target **out, const char *endpoint_url, const char *bucket,
			 const char *prefix, const cairn_s3_opts *opts);

/** Open an S3 target from "http://HOST:PORT/BUCKET[/PREFIX]" (the s3: address without "s3:"). */
int cairn_target_s3_open_url(cairn_target **out, const char *url, const cairn_s3_opts *opts);

/*
 * Fault-injecting wrapper for tests: wraps @p inner (which it then owns).
 * Configure with cairn_target_fault_set(); by default it passes everything.
 */
typedef struct cairn_fault_opts {
	int fail_errno;        /* errno to fail with (positive), e.g. EIO; 0 injects no failures */
	int64_t fail_after;    /* succeed this many ops, then fail every op; -1 never */
	int fail_once;         /* with fail_after: fail only op number fail_after, then pass */
	unsigned delay_ms;     /* sleep before every op */
	int corrupt_reads;     /* flip one byte of every get / get_range result */
	unsigned ops_mask;     /* which ops the faults apply to (CAIRN_FAULT_OP_*), 0 = all */
} cairn_fault_opts;

#define CAIRN_FAULT_OP_PUT 1u
#define CAIRN_FAULT_OP_GET 2u /* get and get_range */
#define CAIRN_FAULT_OP_STAT 4u
#define CAIRN_FAULT_OP_LIST 8u
#define CAIRN_FAULT_OP_DEL 16u

int cairn_target_fault_wrap(cairn_target **out, cairn_target *inner, const cairn_fault_opts *opts);
void cairn_target_fault_set(cairn_target *t, const cairn_fault_opts *opts);

/* --- the replica set ------------------------------------------------------------ */

typedef struct cairn_replica_opts {
	unsigned min_copies;  /* a put succeeds once this many members confirm; 0 = all */
	const char *journal;  /* repair journal file (appended); NULL = none */
	unsigned cooldown_s;  /* a failing member is skipped this long before retrying; 0 = 30 */
} cairn_replica_opts;

/**
 * A target that writes every object to all @p members in parallel and reads
 * from the first healthy one (members are given nearest first), failing over
 * on errors. What a member missed goes to the repair journal. The replica set
 * owns the members.
 * @return 0, -EINVAL (no members, min_copies > n).
 */
int cairn_target_replica_open(cairn_target **out, cairn_target *const *members, size_t n,
			      const cairn_replica_opts *opts);
/** Number of members of a replica set (1 for any other target). */
size_t cairn_target_members(cairn_target *t);
/** Member @p i of a replica set (borrowed), or @p t itself for other targets. */
cairn_target *cairn_target_member(cairn_target *t, size_t i);
/** Whether member @p i is healthy (not in its cool-down after a failure). */
int cairn_target_member_healthy(cairn_target *t, size_t i);

/** Copies a read can choose from (1 for plain targets). */
unsigned cairn_target_ncopies(cairn_target *t);
/** get_range from one copy (copy 0 on plain targets). */
int cairn_target_get_range_copy(cairn_target *t, unsigned copy, const char *name, uint64_t off,
				size_t len, void *out);
/** Report a corrupt copy (no-op on plain targets). */
void cairn_target_report_bad(cairn_target *t, unsigned copy, const char *name);
/**
 * Name of the member that serves copy @p copy of a replica set for the calling
 * thread's current read (see cairn_target_get_range_copy), for messages; @p t's
 * own name for plain targets; "?" if there is no such copy.
 */
const char *cairn_target_copy_name(cairn_target *t, unsigned copy);

/* Checked wrappers: validate arguments and the name, count stats, and make
 * sure a failure carries a message naming the target and the object. */
int cairn_target_put(cairn_target *t, const char *name, const void *data, size_t len);
/** An unnamed file to build an object in, or -EOPNOTSUPP (see tmpfile above). */
int cairn_target_tmpfile(cairn_target *t);
/** Store the @p len bytes of @p fd (from cairn_target_tmpfile) as object @p name. */
int cairn_target_link_tmpfile(cairn_target *t, const char *name, int fd, uint64_t len);
int cairn_target_get(cairn_target *t, const char *name, cairn_buf *out);
int cairn_target_get_range(cairn_target *t, const char *name, uint64_t off, size_t len, void *out);
int cairn_target_stat(cairn_target *t, const char *name, uint64_t *size);
int cairn_target_list(cairn_target *t, const char *prefix, cairn_target_list_cb cb, void *payload);
int cairn_target_del(cairn_target *t, const char *name);
void cairn_target_close(cairn_target *t);

/** Every object under a prefix, with its size, sorted by name (owned copies). */
typedef struct cairn_listing {
	size_t n, cap;
	char **names;
	uint64_t *sizes;
} cairn_listing;

/** List @p prefix completely into @p out (appended, then sorted). 0 or the list error. */
int cairn_target_list_all(cairn_target *t, const char *prefix, cairn_listing *out);
/** Position of @p name in a sorted listing, or -1. */
long cairn_listing_find(const cairn_listing *l, const char *name);
void cairn_listing_free(cairn_listing *l);

/** 1 if @p name is a valid object name (see top of file), else 0. */
int cairn_target_name_ok(const char *name);

#endif
