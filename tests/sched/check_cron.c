/*
 * check_cron.c - cron expressions and their time-zone semantics: fields,
 * names, macros, Vixie day matching, and daylight-saving changes in
 * Europe/Berlin and America/New_York (gap -> first instant after it, repeat
 * -> first occurrence only).
 */
#include <check.h>
#include <stdlib.h>
#include <time.h>

#include "common/common.h"
#include "sched/sched.h"
#include "tests/support/check_main.h"

/* UTC instant of a calendar time. */
static int64_t utc(int y, int mo, int d, int h, int mi)
{
	struct tm tm = {0};
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	return (int64_t)timegm(&tm);
}

static int64_t next_of(const char *expr, const char *tz, int64_t after)
{
	cairn_cron *c;
	ck_assert_msg(cairn_cron_parse(&c, expr, tz) == 0, "%s", cairn_error_last());
	int64_t n = -1;
	ck_assert_msg(cairn_cron_next(c, after, &n) == 0, "%s", cairn_error_last());
	cairn_cron_free(c);
	return n;
}

static int64_t prev_of(const char *expr, const char *tz, int64_t at)
{
	cairn_cron *c;
	ck_assert_int_eq(cairn_cron_parse(&c, expr, tz), 0);
	int64_t n = -1;
	ck_assert_int_eq(cairn_cron_prev(c, at, &n), 0);
	cairn_cron_free(c);
	return n;
}

START_TEST(cron_fields)
{
	int64_t t0 = utc(2026, 1, 14, 0, 7); /* a wednesday */
	ck_assert_int_eq(next_of("*/15 * * * *", NULL, t0), utc(2026, 1, 14, 0, 15));
	ck_assert_int_eq(next_of("5,50 * * * *", "UTC", t0), utc(2026, 1, 14, 0, 50));
	ck_assert_int_eq(next_of("0 3 * * mon-fri", NULL, t0), utc(2026, 1, 14, 3, 0));
	ck_assert_int_eq(next_of("0 3 * * SAT,sun", NULL, t0), utc(2026, 1, 17, 3, 0));
	ck_assert_int_eq(next_of("0 3 * * 7", NULL, t0), utc(2026, 1, 18, 3, 0));
	ck_assert_int_eq(next_of("0 0 1 jul *", NULL, t0), utc(2026, 7, 1, 0, 0));
	ck_assert_int_eq(next_of("0 0 29 2 *", NULL, t0), utc(2028, 2, 29, 0, 0));
	ck_assert_int_eq(next_of("10-20/5 8 * * *", NULL, t0), utc(2026, 1, 14, 8, 10));
	ck_assert_int_eq(next_of("30/10 8 * * *", NULL, utc(2026, 1, 14, 8, 41)),
			 utc(2026, 1, 14, 8, 50));
	/* both day fields restricted: either matches (the 15th, or a monday) */
	ck_assert_int_eq(next_of("0 0 15 * mon", NULL, t0), utc(2026, 1, 15, 0, 0));
	ck_assert_int_eq(next_of("0 0 15 * mon", NULL, utc(2026, 1, 15, 1, 0)),
			 utc(2026, 1, 19, 0, 0));
	/* a starred day field means AND (a step on '*' counts as starred, like Vixie cron) */
	ck_assert_int_eq(next_of("0 0 */2 * mon", NULL, t0), utc(2026, 1, 19, 0, 0));
	/* strictly after */
	ck_assert_int_eq(next_of("0 * * * *", NULL, utc(2026, 1, 14, 5, 0)),
			 utc(2026, 1, 14, 6, 0));
}
END_TEST

START_TEST(cron_macros)
{
	int64_t t0 = utc(2026, 5, 13, 10, 30);
	ck_assert_int_eq(next_of("@hourly", NULL, t0), utc(2026, 5, 13, 11, 0));
	ck_assert_int_eq(next_of("@daily", NULL, t0), utc(2026, 5, 14, 0, 0));
	ck_assert_int_eq(next_of("@midnight", NULL, t0), utc(2026, 5, 14, 0, 0));
	ck_assert_int_eq(next_of("@weekly", NULL, t0), utc(2026, 5, 17, 0, 0));
	ck_assert_int_eq(next_of("@monthly", NULL, t0), utc(2026, 6, 1, 0, 0));
	ck_assert_int_eq(next_of("@yearly", NULL, t0), utc(2027, 1, 1, 0, 0));
	ck_assert_int_eq(next_of("@annually", NULL, t0), utc(2027, 1, 1, 0, 0));
}
END_TEST

START_TEST(cron_errors)
{
	static const char *bad[] = {"61 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *",
				    "* * * * 8", "* * * *", "* * * * * *", "*/0 * * * *",
				    "5-1 * * * *", "@reboot", "a * * * *", "1,,2 * * * *",
				    "* * * foo *", ""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cairn_cron *c = NULL;
		ck_assert_msg(cairn_cron_parse(&c, bad[i], NULL) == -EINVAL, "accepted '%s'",
			      bad[i]);
		ck_assert_ptr_null(c);
	}
	cairn_cron *c = NULL;
	ck_assert_int_eq(cairn_cron_parse(&c, "0 0 * * *", "Mars/Olympus"), -EINVAL);
	ck_assert_int_eq(cairn_cron_parse(&c, "0 0 * * *", "../etc/passwd"), -EINVAL);
	ck_assert_int_eq(cairn_cron_parse(&c, "0 0 31 2 *", NULL), 0);
	int64_t n;
	ck_assert_int_eq(cairn_cron_next(c, 0, &n), -ENOENT);
	cairn_cron_free(c);
	ck_assert(cairn_tz_valid("Europe/Berlin"));
	ck_assert(!cairn_tz_valid("Europe"));
}
END_TEST

/* 2026-03-29: Berlin goes 02:00 CET -> 03:00 CEST at 01:00 UTC */
START_TEST(cron_berlin_spring)
{
	const char *tz = "Europe/Berlin";
	int64_t t0 = utc(2026, 3, 28, 12, 0);
	/* 02:30 does not exist: fires once at 03:00 CEST = 01:00 UTC */
	int64_t a = next_of("30 2 * * *", tz, t0);
	ck_assert_int_eq(a, utc(2026, 3, 29, 1, 0));
	ck_assert_int_eq(next_of("30 2 * * *", tz, a), utc(2026, 3, 30, 0, 30));
	/* a job at 02:00, 02:15, 02:30, 02:45: one firing at the end of the gap */
	a = next_of("*/15 2 * * *", tz, t0);
	ck_assert_int_eq(a, utc(2026, 3, 29, 1, 0));
	ck_assert_int_eq(next_of("*/15 2 * * *", tz, a), utc(2026, 3, 30, 0, 0));
	/* hourly: 01:00 CET, then 03:00 CEST (the 02:00 slot merges into it), 04:00 */
	a = next_of("0 * * * *", tz, utc(2026, 3, 28, 23, 30));
	ck_assert_int_eq(a, utc(2026, 3, 29, 0, 0));
	a = next_of("0 * * * *", tz, a);
	ck_assert_int_eq(a, utc(2026, 3, 29, 1, 0));
	ck_assert_int_eq(next_of("0 * * * *", tz, a), utc(2026, 3, 29, 2, 0));
	/* a time after the gap is unaffected: 04:00 CEST = 02:00 UTC */
	ck_assert_int_eq(next_of("0 4 * * *", tz, t0), utc(2026, 3, 29, 2, 0));
	/* the day before: 02:30 CET = 01:30 UTC */
	ck_assert_int_eq(next_of("30 2 * * *", tz, utc(2026, 3, 27, 12, 0)),
			 utc(2026, 3, 28, 1, 30));
	/* prev agrees */
	ck_assert_int_eq(prev_of("30 2 * * *", tz, utc(2026, 3, 29, 1, 30)),
			 utc(2026, 3, 29, 1, 0));
	ck_assert_int_eq(prev_of("30 2 * * *", tz, utc(2026, 3, 29, 0, 59)),
			 utc(2026, 3, 28, 1, 30));
}
END_TEST

/* 2026-10-25: Berlin goes 03:00 CEST -> 02:00 CET at 01:00 UTC */
START_TEST(cron_berlin_fall)
{
	const char *tz = "Europe/Berlin";
	int64_t t0 = utc(2026, 10, 24, 12, 0);
	/* 02:30 happens twice: fires at the first (CEST, 00:30 UTC) only */
	int64_t a = next_of("30 2 * * *", tz, t0);
	ck_assert_int_eq(a, utc(2026, 10, 25, 0, 30));
	ck_assert_int_eq(next_of("30 2 * * *", tz, a), utc(2026, 10, 26, 1, 30));
	/* hourly: 02:00 CEST (00:00 UTC), then 03:00 CET (02:00 UTC): no second 02:00 */
	a = next_of("0 * * * *", tz, utc(2026, 10, 24, 23, 30));
	ck_assert_int_eq(a, utc(2026, 10, 25, 0, 0));
	ck_assert_int_eq(next_of("0 * * * *", tz, a), utc(2026, 10, 25, 2, 0));
	/* midnight and 03:00 are ordinary */
	ck_assert_int_eq(next_of("0 0 * * *", tz, t0), utc(2026, 10, 24, 22, 0));
	ck_assert_int_eq(next_of("0 3 * * *", tz, t0), utc(2026, 10, 25, 2, 0));
	ck_assert_int_eq(prev_of("30 2 * * *", tz, utc(2026, 10, 25, 1, 45)),
			 utc(2026, 10, 25, 0, 30));
}
END_TEST

/* 2026-03-08 02:00 EST -> 03:00 EDT (07:00 UTC); 2026-11-01 02:00 EDT -> 01:00 EST (06:00 UTC) */
START_TEST(cron_new_york)
{
	const char *tz = "America/New_York";
	ck_assert_int_eq(next_of("30 2 * * *", tz, utc(2026, 3, 7, 12, 0)), utc(2026, 3, 8, 7, 0));
	ck_assert_int_eq(next_of("30 2 * * *", tz, utc(2026, 3, 8, 7, 0)), utc(2026, 3, 9, 6, 30));
	int64_t a = next_of("30 1 * * *", tz, utc(2026, 10, 31, 12, 0));
	ck_assert_int_eq(a, utc(2026, 11, 1, 5, 30));
	ck_assert_int_eq(next_of("30 1 * * *", tz, a), utc(2026, 11, 2, 6, 30));
	/* the weekday is the local one: monday 00:30 in New York is 05:30 UTC */
	ck_assert_int_eq(next_of("30 0 * * mon", tz, utc(2026, 1, 1, 0, 0)),
			 utc(2026, 1, 5, 5, 30));
}
END_TEST

START_TEST(cron_tz_restored)
{
	setenv("TZ", "America/New_York", 1);
	tzset();
	(void)next_of("0 2 * * *", "Europe/Berlin", utc(2026, 1, 1, 0, 0));
	ck_assert_str_eq(getenv("TZ"), "America/New_York");
	unsetenv("TZ");
	(void)next_of("0 2 * * *", "Europe/Berlin", utc(2026, 1, 1, 0, 0));
	ck_assert_ptr_null(getenv("TZ"));
	struct tm tm;
	ck_assert_int_eq(cairn_tz_localtime("Europe/Berlin", utc(2026, 7, 1, 12, 0), &tm), 0);
	ck_assert_int_eq(tm.tm_hour, 14);
}
END_TEST

static Suite *sched_cron_suite(void)
{
	Suite *s = suite_create("sched_cron");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, cron_fields);
	tcase_add_test(tc, cron_macros);
	tcase_add_test(tc, cron_berlin_spring);
	tcase_add_test(tc, cron_berlin_fall);
	tcase_add_test(tc, cron_new_york);
	tcase_add_test(tc, cron_tz_restored);
	suite_add_tcase(s, tc);
	tc = tcase_create("errors");
	tcase_add_test(tc, cron_errors);
	suite_add_tcase(s, tc);
	return s;
}

CAIRN_CHECK_MAIN(sched_cron_suite)
