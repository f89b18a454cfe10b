/*
 * lock.c - repository locks.
 *
 * DESIGN
 * A lock is an encrypted object locks/<random id> holding who took it (host,
 * pid, user), when, why, and whether it is exclusive. Backups take shared
 * locks; prune takes an exclusive one. Taking a lock is "write mine, then
 * list the others": if a conflicting live lock exists, mine is removed and
 * the caller gets -EBUSY. Two parties racing both see each other and both
 * back off, so at most one side proceeds (restic's scheme). A thread
 * refreshes the lock every 5 minutes (new object, then the old one is
 * deleted). A lock is stale when not refreshed for 30 minutes, or when it
 * names this host and a process that no longer exists (kill -9); stale
 * locks are ignored and removed.
 *
 * This is what makes prune safe against concurrent backups: a backup
 * references blobs only while holding its shared lock, and prune deletes
 * only while holding the exclusive one.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "engine/repo_int.h"

#define REFRESH_NS (300ll * 1000000000)
#define STALE_NS (1800ll * 1000000000)

typedef struct lockinfo {
	int exclusive;
	int64_t time_ns;
	uint32_t pid;
	char host[256];
	char user[64];
	char purpose[64];
} lockinfo;

static void lock_encode(const lockinfo *l, cairn_buf *b)
{
	cairn_buf_put_u8(b, 1);
	cairn_buf_put_u8(b, (uint8_t)l->exclusive);
	cairn_buf_put_le64(b, (uint64_t)l->time_ns);
	cairn_buf_put_le32(b, l->pid);
	cairn_buf_put_bytes(b, l->host, strlen(l->host));
	cairn_buf_put_bytes(b, l->user, strlen(l->user));
	cairn_buf_put_bytes(b, l->purpose, strlen(l->purpose));
}

static int get_str(cairn_rd *r, char *out, size_t cap)
{
	const uint8_t *p;
	size_t n;
	if (cairn_rd_bytes(r, &p, &n, cap - 1) < 0)
		return -EBADMSG;
	memcpy(out, p, n);
	out[n] = 0;
	return 0;
}

static int lock_decode(lockinfo *l, const cairn_buf *b)
{
	cairn_rd r = cairn_rd_init(b->data, b->len);
	uint8_t ver, ex;
	uint64_t t;
	memset(l, 0, sizeof(*l));
	if (cairn_rd_u8(&r, &ver) < 0 || ver != 1 || cairn_rd_u8(&r, &ex) < 0 ||
	    cairn_rd_le64(&r, &t) < 0 || cairn_rd_le32(&r, &l->pid) < 0 ||
	    get_str(&r, l->host, sizeof(l->host)) < 0 || get_str(&r, l->user, sizeof(l->user)) < 0 ||
	    get_str(&r, l->purpose, sizeof(l->purpose)) < 0)
		return cairn_error_set(-EBADMSG, "lock is malformed");
	l->exclusive = ex;
	l->time_ns = (int64_t)t;
	return 0;
}

static void self_info(lockinfo *l, int exclusive, const char *purpose)
{
	memset(l, 0, sizeof(*l));
	l->exclusive = exclusive;
	l->time_ns = cairn_wall_ns();
	l->pid = (uint32_t)getpid();
	gethostname(l->host, sizeof(l->host) - 1);
	const char *u = getenv("USER");
	snprintf(l->user, sizeof(l->user), "%s", u ? u : "root");
	snprintf(l->purpose, sizeof(l->purpose), "%s", purpose);
}

static int is_stale(const lockinfo *l, int64_t now)
{
	char host[256] = "";
	gethostname(host, sizeof(host) - 1);
	if (now - l->time_ns > STALE_NS)
		return 1;
	if (!strcmp(host, l->host) && l->pid != (uint32_t)getpid() &&
	    kill((pid_t)l->pid, 0) < 0 && errno == ESRCH)
		return 1;
	return 0;
}

static int write_lock(cairn_repo *r, cairn_codec *cx, const lockinfo *me, char name[80])
{
	cairn_buf b = CAIRN_BUF_INIT;
	lock_encode(me, &b);
	int rc = repo_save_object(r, cx, "locks", CAIRN_OBJ_LOCK, b.data, b.len, name);
	cairn_buf_free(&b);
	return rc;
}

static void *refresher(void *arg)
{
	cairn_repo *r = arg;
	cairn_codec *cx = cairn_codec_new(0);
	pthread_mutex_lock(&r->mu);
	while (!r->lock_stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += REFRESH_NS / 1000000000;
		if (pthread_cond_timedwait(&r->lock_cond, &r->mu, &ts) == 0 || r->lock_stop)
			continue;
		char old[80], name[80];
		lockinfo me;
		snprintf(old, sizeof(old), "%s", r->lock_name);
		self_info(&me, r->lock_exclusive, "refresh");
		pthread_mutex_unlock(&r->mu);
		int rc = write_lock(r, cx, &me, name);
		if (rc == 0)
			cairn_target_del(r->t, old);
		pthread_mutex_lock(&r->mu);
		if (rc == 0)
			snprintf(r->lock_name, sizeof(r->lock_name), "%s", name);
	}
	pthread_mutex_unlock(&r->mu);
	cairn_codec_free(cx);
	return NULL;
}

int repo_lock(cairn_repo *r, int exclusive, const char *purpose)
{
	if (r->no_lock || r->lock_name[0])
		return 0;
	cairn_codec *cx = cairn_codec_new(0);
	lockinfo me, other;
	char name[80];
	self_info(&me, exclusive, purpose);
	int rc = write_lock(r, cx, &me, name);
	if (rc < 0) {
		cairn_codec_free(cx);
		return cairn_error_wrap(rc, "cannot lock the repository");
	}
	cairn_listing l = {0};
	cairn_buf pt = CAIRN_BUF_INIT;
	rc = cairn_target_list_all(r->t, "locks/", &l);
	int64_t now = cairn_wall_ns();
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		if (!strcmp(l.names[i], name))
			continue;
		int lr = repo_load_object(r, cx, l.names[i], CAIRN_OBJ_LOCK, 4096, 0, &pt);
		if (lr == -ENOENT)
			continue; /* released meanwhile */
		if (lr < 0 || lock_decode(&other, &pt) < 0) {
			repo_warn(r, "%s: unreadable lock ignored", l.names[i]);
			continue;
		}
		if (is_stale(&other, now)) {
			repo_warn(r, "removing stale lock %s (%s pid %u, %s)", l.names[i], other.host,
				  other.pid, other.purpose);
			cairn_target_del(r->t, l.names[i]);
			continue;
		}
		if (exclusive || other.exclusive) {
			time_t t = (time_t)(other.time_ns / 1000000000);
			char when[64];
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&t));
			rc = cairn_error_set(-EBUSY,
					     "repository is locked%s by %s@%s pid %u (%s) since %s",
					     other.exclusive ? " exclusively" : "", other.user,
					     other.host, other.pid, other.purpose, when);
		}
	}
	cairn_listing_free(&l);
	cairn_buf_free(&pt);
	cairn_codec_free(cx);
	if (rc < 0) {
		/* if removing mine fails too, still report the lock that is in the way */
		char msg[CAIRN_ERRMSG_MAX];
		snprintf(msg, sizeof(msg), "%s", cairn_error_last());
		cairn_target_del(r->t, name);
		return cairn_error_set(rc, "%s", msg);
	}
	pthread_mutex_lock(&r->mu);
	snprintf(r->lock_name, sizeof(r->lock_name), "%s", name);
	r->lock_exclusive = exclusive;
	r->lock_stop = 0;
	pthread_mutex_unlock(&r->mu);
	if (pthread_create(&r->lock_thread, NULL, refresher, r) == 0)
		r->lock_thread_running = 1;
	return 0;
}

void repo_unlock(cairn_repo *r)
{
	/* Failure paths unlock before returning their code: a lock deletion that fails as
	 * well (the same dead or full target) must not replace the caller's message. */
	char msg[CAIRN_ERRMSG_MAX];
	snprintf(msg, sizeof(msg), "%s", cairn_error_last());
	if (r->lock_thread_running) {
		pthread_mutex_lock(&r->mu);
		r->lock_stop = 1;
		pthread_cond_broadcast(&r->lock_cond);
		pthread_mutex_unlock(&r->mu);
		pthread_join(r->lock_thread, NULL);
		r->lock_thread_running = 0;
	}
	if (r->lock_name[0]) {
		cairn_target_del(r->t, r->lock_name);
		r->lock_name[0] = 0;
		cairn_error_set(0, "%s", msg);
	}
}
