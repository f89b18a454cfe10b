/*
 * sched_int.h - helpers shared by the files of sched/ (not public API).
 */
#ifndef CAIRN_SCHED_INT_H
#define CAIRN_SCHED_INT_H

#include "common/common.h"
#include "sched/sched.h"

/** Suffix of the job id of verification runs ("host01/backup:verify"). */
#define CAIRN_VERIFY_SUFFIX ":verify"

/** Append @p s as a JSON string (quoted, escaped) to @p b. */
void cairn_json__str(cairn_buf *b, const char *s);
/** Append printf-formatted text to @p b. */
void cairn_buf__printf(cairn_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** NUL-terminate @p b and return its data (owned by @p b). */
char *cairn_buf__cstr(cairn_buf *b);

/**
 * The next route matching @p a at or after index *pos (updated past it), or
 * NULL. Matching: client pattern (fnmatch) and priority <= max_priority.
 */
const cairn_cfg_route *cairn_route__next(const cairn_config *cfg, const cairn_alert *a,
					 size_t *pos);

/** Recent runs of @p job (newest first, at most @p limit); free with free(). */
int cairn_store__recent(cairn_store *s, const char *job, size_t limit, cairn_run **out, size_t *n);

struct sqlite3;
/** The store's SQLite handle (borrowed), for read-only aggregates (metrics.c). */
struct sqlite3 *cairn_store__db(cairn_store *s);

#endif
