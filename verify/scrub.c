/*
 * scrub.c - keyless scrub of one copy of a repository.
 *
 * Every pack of the member is read, a window of ~2 MiB at a time, and
 * checked against the XXH3-128 checksums of its plaintext trailer (segments
 * of 1 MiB and the whole pack),
 * which locates damage without any client key, so the appliance can scrub
 * every client's data. The member's listing is compared with the other
 * members' (missing, orphaned and size-mismatched objects). Findings are
 * appended to the repair journal in the replica set's format, so `cairn
 * repair` fixes exactly what scrub found.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "verify/verify.h"

/* Locks are ephemeral: never compared between members. */
static int is_lock(const char *name)
{
	return !strncmp(name, "locks/", 6);
}

static void jot(int fd, const char *what, const char *member, const char *name)
{
	if (fd < 0)
		return;
	char line[2200];
	int n = snprintf(line, sizeof(line), "%lld %s %s %s\n", (long long)time(NULL), what, member,
			 name);
	if (n > 0 && (size_t)n < sizeof(line) && write(fd, line, (size_t)n) < 0)
		return;
}

int cairn_scrub(cairn_target *t, size_t member, const char *journal, cairn_scrub_result *res,
		void (*report)(void *payload, const char *msg), void *payload)
{
	size_t n = cairn_target_members(t);
	memset(res, 0, sizeof(*res));
	if (member >= n)
		return cairn_error_set(-EINVAL, "scrub: no target %zu (the repository has %zu)", member,
				       n);
	cairn_target *m = cairn_target_member(t, member);
	uint64_t t0 = cairn_now_ns();
	int jfd = journal ? open(journal, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : -1;
	cairn_listing mine = {0};
	int rc = cairn_target_list_all(m, "", &mine);
	if (rc < 0) {
		if (jfd >= 0)
			close(jfd);
		return cairn_error_wrap(rc, "scrub: cannot list %s", m->name);
	}
	/* 1. every pack of this member against its own checksums */
	cairn_buf b = CAIRN_BUF_INIT;
	for (size_t i = 0; i < mine.n; i++) {
		if (!cairn_is_pack_name(mine.names[i]))
			continue;
		int64_t seg = -1;
		int r = cairn_pack_check_object(m, mine.names[i], mine.sizes[i], &b, &seg);
		if (r == 0 || r == -EBADMSG) { /* read, intact or not */
			res->packs++;
			res->bytes += mine.sizes[i];
		}
		if (r < 0) {
			res->corrupt++;
			cairn_say(report, payload, "%s on %s: %s", mine.names[i], m->name, cairn_error_last());
			jot(jfd, "bad", m->name, mine.names[i]);
		}
	}
	cairn_buf_free(&b);
	/* 2. the listing against the other members' */
	for (size_t k = 0; k < n; k++) {
		if (k == member)
			continue;
		cairn_target *o = cairn_target_member(t, k);
		cairn_listing other = {0};
		if (cairn_target_list_all(o, "", &other) < 0) {
			cairn_say(report, payload, "%s: cannot list for comparison: %s", o->name,
			    cairn_error_last());
			cairn_listing_free(&other);
			continue;
		}
		for (size_t i = 0; i < other.n; i++) {
			if (is_lock(other.names[i]))
				continue;
			long j = cairn_listing_find(&mine, other.names[i]);
			if (j < 0) {
				res->missing++;
				cairn_say(report, payload, "%s: missing on %s (present on %s)", other.names[i],
				    m->name, o->name);
				jot(jfd, "missing", m->name, other.names[i]);
			} else if (mine.sizes[j] != other.sizes[i]) {
				res->mismatched++;
				cairn_say(report, payload, "%s: %llu bytes on %s, %llu on %s", other.names[i],
				    (unsigned long long)mine.sizes[j], m->name,
				    (unsigned long long)other.sizes[i], o->name);
			}
		}
		for (size_t i = 0; i < mine.n; i++) {
			if (is_lock(mine.names[i]))
				continue;
			if (cairn_listing_find(&other, mine.names[i]) < 0) {
				res->orphaned++;
				cairn_say(report, payload, "%s: on %s but not on %s", mine.names[i], m->name,
				    o->name);
			}
		}
		cairn_listing_free(&other);
	}
	cairn_listing_free(&mine);
	if (jfd >= 0)
		close(jfd);
	res->seconds = (double)(cairn_now_ns() - t0) / 1e9;
	if (res->corrupt || res->missing || res->mismatched)
		return cairn_error_set(-EBADMSG, "scrub of %s found problems", m->name);
	return 0;
}
