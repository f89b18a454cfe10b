/*
 * cron.c - cron expressions evaluated in an IANA time zone (see sched.h).
 *
 * DESIGN: a schedule is a set of wall-clock times (bitmaps of minutes,
 * hours, days, months, weekdays). cairn_cron_next walks local calendar days
 * forward from the day of `after`, and within a matching day the wall times
 * in increasing order; each wall time W (seconds as if the local time were
 * UTC) is mapped to an instant by resolve():
 *   - offsets a day before and a day after W give two candidates
 *     W - off_before and W - off_after; a candidate is valid when the zone's
 *     offset at it equals the offset used;
 *   - two valid candidates: W occurs twice (fall back), take the first;
 *   - none valid: W is in a spring-forward gap; binary search for the
 *     transition instant, the first valid instant after the gap.
 * This mapping is non-decreasing in W within a day, so the first instant
 * > after found in wall order is the answer, and the skipped times of a gap
 * all collapse onto the transition (one firing). Zones with two transitions
 * within two days do not exist in tzdata's current rules.
 *
 * The zone is applied with setenv("TZ")/tzset()/localtime_r under one
 * process-wide mutex; the previous TZ is restored before unlocking.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/common.h"
#include "sched/sched.h"

struct cairn_cron {
	uint64_t minutes;       /* bit m: minute m matches */
	uint32_t hours;         /* bit h */
	uint32_t dom;           /* bits 1..31 */
	uint32_t months;        /* bits 1..12 */
	uint32_t dow;           /* bits 0..6, 0 = sunday */
	int dom_star, dow_star; /* field began with '*' (Vixie day matching) */
	char *expr;
	char *tz;               /* "UTC" or a zoneinfo name */
};

#define SEARCH_DAYS (366 * 10)

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
					  "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const dow_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

/* ---- time zone switching ---- */

static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;

static char *tz_enter(const char *tz)
{
	pthread_mutex_lock(&tz_lock);
	const char *old = getenv("TZ");
	char *saved = old ? cairn_xstrdup(old) : NULL;
	char val[300];
	if (!tz || !strcmp(tz, "UTC"))
		snprintf(val, sizeof(val), "UTC0");
	else
		snprintf(val, sizeof(val), ":%s", tz);
	setenv("TZ", val, 1);
	tzset();
	return saved;
}

static void tz_leave(char *saved)
{
	if (saved)
		setenv("TZ", saved, 1);
	else
		unsetenv("TZ");
	tzset();
	free(saved);
	pthread_mutex_unlock(&tz_lock);
}

/*
 * True if @p tz is "UTC" or a readable zoneinfo file name (no "..", not
 * absolute): glibc silently falls back to UTC for unknown names, so check.
 */
int cairn_tz_valid(const char *tz)
{
	if (!tz || !*tz || strlen(tz) > 200)
		return 0;
	if (!strcmp(tz, "UTC"))
		return 1;
	if (tz[0] == '/' || strstr(tz, ".."))
		return 0;
	for (const char *p = tz; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("/_+-", *p))
			return 0;
	const char *dir = getenv("TZDIR");
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", tz);
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Local time of @p t in @p tz. Returns 0 or -EINVAL (unknown zone). */
int cairn_tz_localtime(const char *tz, int64_t t, struct tm *out)
{
	if (tz && !cairn_tz_valid(tz))
		return cairn_error_set(-EINVAL, "time zone '%s' is unknown", tz);
	char *saved = tz_enter(tz);
	time_t tt = (time_t)t;
	struct tm *r = localtime_r(&tt, out);
	tz_leave(saved);
	return r ? 0 : cairn_error_set(-EINVAL, "time %lld out of range", (long long)t);
}

/* ---- parsing ---- */

static int lookup_name(const char *s, size_t len, const char *const *names, int count, int base)
{
	if (len != 3)
		return -1;
	for (int i = 0; i < count; i++)
		if (!strncasecmp(s, names[i], 3))
			return i + base;
	return -1;
}

/* One number or name at *p; advances *p. Returns the value or -1. */
static int field_value(const char **p, const char *const *names, int count, int base)
{
	const char *s = *p;
	if (isdigit((unsigned char)*s)) {
		long v = 0;
		while (isdigit((unsigned char)*s) && v < 1000)
			v = v * 10 + (*s++ - '0');
		*p = s;
		return (int)v;
	}
	size_t len = 0;
	while (isalpha((unsigned char)s[len]))
		len++;
	if (!names || !len)
		return -1;
	int v = lookup_name(s, len, names, count, base);
	if (v >= 0)
		*p = s + len;
	return v;
}

/*
 * Parse one field into bitmap @p bits over [lo, hi]. Items: "*", "N", "N-M",
 * each optionally "/STEP"; "N/STEP" means N-hi/STEP (cronie). Returns 0 or -1.
 */
static int parse_field(const char *f, int lo, int hi, const char *const *names, int base,
		       uint64_t *bits)
{
	*bits = 0;
	const char *p = f;
	for (;;) {
		int a, b, step = 1;
		if (*p == '*') {
			a = lo;
			b = hi;
			p++;
		} else {
			if ((a = field_value(&p, names, names == dow_names ? 7 : 12, base)) < 0)
				return -1;
			b = a;
			if (*p == '-') {
				p++;
				if ((b = field_value(&p, names, names == dow_names ? 7 : 12, base)) < 0)
					return -1;
			} else if (*p == '/') {
				b = hi;
			}
		}
		if (*p == '/') {
			p++;
			if (!isdigit((unsigned char)*p))
				return -1;
			step = field_value(&p, NULL, 0, 0);
			if (step <= 0 || step > hi)
				return -1;
		}
		if (a < lo || b > hi || a > b)
			return -1;
		for (int v = a; v <= b; v += step)
			*bits |= 1ull << v;
		if (*p == ',') {
			p++;
			continue;
		}
		return *p ? -1 : 0;
	}
}

static const struct {
	const char *name, *expr;
} macros[] = {
	{"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
	{"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
	{"@hourly", "0 * * * *"},
};

/*
 * Parse @p expr (5 fields or a macro) for zone @p tz. Returns 0, or -EINVAL
 * with a message naming the bad field.
 */
int cairn_cron_parse(cairn_cron **out, const char *expr, const char *tz)
{
	*out = NULL;
	if (!expr)
		return cairn_error_set(-EINVAL, "cron: no expression");
	if (tz && !cairn_tz_valid(tz))
		return cairn_error_set(-EINVAL, "time zone '%s' is unknown (expected UTC or a "
						"name like Europe/Berlin)", tz);
	const char *e = expr;
	while (isspace((unsigned char)*e))
		e++;
	if (*e == '@') {
		size_t i;
		for (i = 0; i < sizeof(macros) / sizeof(macros[0]); i++)
			if (!strcasecmp(e, macros[i].name))
				break;
		if (i == sizeof(macros) / sizeof(macros[0]))
			return cairn_error_set(-EINVAL, "cron '%s': unknown macro (expected @yearly, "
							"@monthly, @weekly, @daily, @hourly)", expr);
		e = macros[i].expr;
	}
	char buf[256];
	if (strlen(e) >= sizeof(buf))
		return cairn_error_set(-EINVAL, "cron '%s': too long", expr);
	strcpy(buf, e);
	char *fields[6];
	int nf = 0;
	char *save = NULL;
	for (char *t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (nf == 5)
			return cairn_error_set(-EINVAL, "cron '%s': more than 5 fields", expr);
		fields[nf++] = t;
	}
	if (nf != 5)
		return cairn_error_set(-EINVAL, "cron '%s': expected 5 fields (minute hour "
						"day-of-month month day-of-week)", expr);
	static const char *const fname[] = {"minute", "hour", "day of month", "month",
					    "day of week"};
	static const int lo[] = {0, 0, 1, 1, 0}, hi[] = {59, 23, 31, 12, 7};
	uint64_t bits[5];
	for (int i = 0; i < 5; i++) {
		const char *const *names = i == 3 ? month_names : i == 4 ? dow_names : NULL;
		if (parse_field(fields[i], lo[i], hi[i], names, i == 3 ? 1 : 0, &bits[i]) < 0)
			return cairn_error_set(-EINVAL, "cron '%s': bad %s field '%s'", expr,
					       fname[i], fields[i]);
	}
	cairn_cron *c = cairn_xcalloc(1, sizeof(*c));
	c->minutes = bits[0];
	c->hours = (uint32_t)bits[1];
	c->dom = (uint32_t)bits[2];
	c->months = (uint32_t)bits[3];
	c->dow = (uint32_t)((bits[4] | (bits[4] >> 7)) & 0x7f); /* 7 = sunday */
	c->dom_star = fields[2][0] == '*';
	c->dow_star = fields[4][0] == '*';
	c->expr = cairn_xstrdup(expr);
	c->tz = cairn_xstrdup(tz ? tz : "UTC");
	*out = c;
	return 0;
}

void cairn_cron_free(cairn_cron *c)
{
	if (!c)
		return;
	free(c->expr);
	free(c->tz);
	free(c);
}

/* ---- evaluation (caller holds the zone) ---- */

/* Proleptic Gregorian date of day @p z since 1970-01-01 (H. Hinnant). */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static long gmtoff(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!localtime_r(&tt, &tm))
		return 0;
	return tm.tm_gmtoff;
}

/* Local day number (days since 1970-01-01 in local wall time) of instant @p t. */
static int64_t local_day(int64_t t)
{
	int64_t w = t + gmtoff(t);
	return (w >= 0 ? w : w - 86399) / 86400;
}

/* The instant wall time @p w fires at (first occurrence; gap -> its end). */
static int64_t resolve(int64_t w)
{
	long off_a = gmtoff(w - 86400), off_b = gmtoff(w + 86400);
	int64_t c1 = w - off_a, c2 = w - off_b;
	int v1 = gmtoff(c1) == off_a, v2 = gmtoff(c2) == off_b;
	if (v1 && v2)
		return c1 < c2 ? c1 : c2;
	if (v1)
		return c1;
	if (v2)
		return c2;
	/* gap: the offset changes between lo and hi; find the first instant after it */
	int64_t lo = c1 < c2 ? c1 : c2, hi = c1 < c2 ? c2 : c1;
	long off_lo = gmtoff(lo);
	while (hi - lo > 1) {
		int64_t mid = lo + (hi - lo) / 2;
		if (gmtoff(mid) == off_lo)
			lo = mid;
		else
			hi = mid;
	}
	return hi;
}

static int day_matches(const cairn_cron *c, int64_t day)
{
	int64_t y;
	int m, d;
	civil_from_days(day, &y, &m, &d);
	if (!(c->months & (1u << m)))
		return 0;
	int wd = (int)(((day % 7) + 11) % 7); /* 1970-01-01 was a thursday (4) */
	int dom_ok = !!(c->dom & (1u << d)), dow_ok = !!(c->dow & (1u << wd));
	if (c->dom_star || c->dow_star)
		return dom_ok && dow_ok;
	return dom_ok || dow_ok;
}

/*
 * Search days from the local day of @p t in direction @p dir (+1/-1) for the
 * first instant > t (dir +1) or <= t (dir -1). Caller holds the zone.
 */
static int search(const cairn_cron *c, int64_t t, int dir, int64_t *res)
{
	int64_t day0 = local_day(t);
	for (int i = 0; i < SEARCH_DAYS; i++) {
		int64_t day = day0 + (int64_t)i * dir;
		if (!day_matches(c, day))
			continue;
		for (int k = 0; k < 24 * 60; k++) {
			int wm = dir > 0 ? k : 24 * 60 - 1 - k;
			int h = wm / 60, m = wm % 60;
			if (!(c->hours & (1u << h)) || !(c->minutes & (1ull << m)))
				continue;
			int64_t at = resolve(day * 86400 + h * 3600 + m * 60);
			if (dir > 0 ? at > t : at <= t) {
				*res = at;
				return 0;
			}
		}
	}
	return cairn_error_set(-ENOENT, "cron '%s': no firing within 10 years", c->expr);
}

/* Next firing strictly after @p after_s; see the DST rules in sched.h. */
int cairn_cron_next(const cairn_cron *c, int64_t after_s, int64_t *next_s)
{
	if (!c || !next_s)
		return cairn_error_set(-EINVAL, "cron: no schedule");
	char *saved = tz_enter(c->tz);
	int rc = search(c, after_s, +1, next_s);
	tz_leave(saved);
	return rc;
}

/* Latest firing at or before @p at_s. */
int cairn_cron_prev(const cairn_cron *c, int64_t at_s, int64_t *prev_s)
{
	if (!c || !prev_s)
		return cairn_error_set(-EINVAL, "cron: no schedule");
	char *saved = tz_enter(c->tz);
	int rc = search(c, at_s, -1, prev_s);
	tz_leave(saved);
	return rc;
}
