/*
 * check_verify.c - end-to-end tests of verification (docs/DRILLS.md) on a
 * replica set of three local directories described by a configuration file:
 *
 *  - clean: check --read-data, scrub of every target and a drill all pass;
 *  - damage: a flipped byte in a pack, a missing pack, missing index
 *    segments and a truncated tree pack on one target are each found by
 *    the right tool, named with the object, the target and (check) the
 *    snapshots and paths affected; a wrong passphrase is exit 12; then
 *    `repair` (no passphrase) makes scrub and check pass on every target;
 *  - drills: real figures, a seeded sample that is deterministic and
 *    fetches about its share of the data (printed as DRILL-SAMPLE:), target
 *    rotation, `drill status` (NEVER DRILLED, exit 1) and `drill --due`;
 *  - compare-live: a source file whose content changed behind an unchanged
 *    size and mtime fails the drill.
 *
 * The source (about 400 files of 64-256 KiB of random data, nothing huge, so
 * the sample's largest-file rule barely matters) is made once; each test has
 * its own replica set under one temporary base.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/check_main.h"
#include "tests/support/testutil.h"

#define CAP 8192
#define NFILES 400

static char *g_base; /* the shared source and every test's directory */
static char g_src[CAP];

__attribute__((format(printf, 2, 3))) static char *pf(char *buf, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, CAP, fmt, ap);
	va_end(ap);
	ck_assert_msg(n >= 0 && n < CAP, "too long: %.100s...", buf);
	return buf;
}

static void write_file(const char *path, size_t size, uint64_t seed)
{
	char *b = malloc(size ? size : 1);
	tu_fill_random(b, size, seed);
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(b, 1, size, f), size);
	fclose(f);
	free(b);
}

/* nfiles files of 64-256 KiB in 10 directories under dir */
static void make_source(const char *dir, int nfiles)
{
	char p[CAP];
	mkdir(dir, 0755);
	for (int i = 0; i < nfiles; i++) {
		pf(p, "%s/d%d", dir, i % 10);
		mkdir(p, 0755);
		pf(p, "%s/d%d/f%03d", dir, i % 10, i);
		write_file(p, (size_t)(64 + (i * 37) % 193) * 1024, (uint64_t)i + 1);
	}
}

static void base_setup(void)
{
	g_base = tu_mkdtemp("cli-verify");
	pf(g_src, "%s/src", g_base);
	make_source(g_src, NFILES);
	setenv("CAIRN_PASSWORD", "verify pass", 1);
}

static void base_teardown(void)
{
	tu_rmrf(g_base);
	free(g_base);
	g_base = NULL;
}

/* Run a shell command; its stdout and stderr in *out (malloc'd). Returns the exit code. */
__attribute__((format(printf, 2, 3))) static int run(char **out, const char *fmt, ...)
{
	char cmd[CAP], full[CAP + 32];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	ck_assert(n > 0 && n < CAP);
	snprintf(full, sizeof(full), "(%s) 2>&1 </dev/null", cmd);
	FILE *p = popen(full, "r");
	ck_assert_ptr_nonnull(p);
	size_t len = 0, cap = 1 << 16, got;
	char *buf = malloc(cap);
	while ((got = fread(buf + len, 1, cap - len - 1, p)) > 0) {
		len += got;
		if (cap - len < 2)
			buf = realloc(buf, cap *= 2);
	}
	buf[len] = 0;
	int st = pclose(p);
	/* sanitizer builds: a report is a failure even where the command is meant to fail */
	ck_assert_msg(!strstr(buf, "Sanitizer") && !strstr(buf, "runtime error:"), "%s:\n%s", cmd,
		      buf);
	if (out)
		*out = buf;
	else
		free(buf);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}


/* One replica set: t0, t1, t2, journal, cfg.yaml in dir. */
typedef struct rs {
	char dir[CAP], cfg[CAP], t[3][CAP];
	char snap[65];  /* the snapshot's id */
} rs;

/* "cairn --config CFG -r rs --no-cache" */
#define CN "'%s' --config '%s' -r rs --no-cache"
#define CA(r) CAIRN_BIN, (r)->cfg

static void rs_make(rs *r, const char *tag, const char *src)
{
	pf(r->dir, "%s/%s", g_base, tag);
	ck_assert_int_eq(mkdir(r->dir, 0755), 0);
	for (int i = 0; i < 3; i++)
		pf(r->t[i], "%s/t%d", r->dir, i);
	pf(r->cfg, "%s/cfg.yaml", r->dir);
	FILE *f = fopen(r->cfg, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "repositories:\n  rs:\n    journal: %s/journal\n    targets:\n", r->dir);
	for (int i = 0; i < 3; i++)
		fprintf(f, "      - url: %s\n        site: site%d\n", r->t[i], i);
	fprintf(f, "    drill:\n      interval: 1s\n");
	fclose(f);
	char *out;
	int rc = run(&out, CN " -q init --kdf-memory 1024 --kdf-time 1", CA(r));
	ck_assert_msg(rc == 0, "init: %s", out);
	free(out);
	rc = run(&out, CN " -q backup '%s'", CA(r), src);
	ck_assert_msg(rc == 0, "backup: %s", out);
	free(out);
	rc = run(&out, "ls '%s/snapshots'", r->t[0]);
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(strlen(out), 65);
	memcpy(r->snap, out, 64);
	r->snap[64] = 0;
	free(out);
}

/* A pack of type 1 (data) or 2 (trees) from the index, as "data/xx/<hex>". */
static void find_pack(const rs *r, int type, char name[CAP])
{
	char *idx, *out;
	ck_assert_int_eq(run(&idx, "ls '%s/index' | head -n 1", r->t[0]), 0);
	idx[strcspn(idx, "\n")] = 0;
	int rc = run(&out, CN " cat index %s", CA(r), idx);
	ck_assert_msg(rc == 0, "cat index: %s", out);
	char want[16];
	snprintf(want, sizeof(want), " type=%d ", type);
	name[0] = 0;
	char *save = NULL;
	for (char *l = strtok_r(out, "\n", &save); l && !name[0]; l = strtok_r(NULL, "\n", &save)) {
		char hex[65];
		if (sscanf(l, "pack %64s", hex) == 1 && strstr(l, want))
			pf(name, "data/%.2s/%s", hex, hex);
	}
	ck_assert_msg(name[0], "no pack of type %d in index %s", type, idx);
	free(out);
	free(idx);
}

static void must_contain(const char *out, const char *what, const char *ctx)
{
	ck_assert_msg(strstr(out, what), "%s: expected \"%s\" in:\n%s", ctx, what, out);
}

/* The number after "key": in a JSON text. */
static double jnum(const char *js, const char *key)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *p = strstr(js, pat);
	ck_assert_msg(p, "no %s in %s", key, js);
	return strtod(p + strlen(pat), NULL);
}

static void jstr(const char *js, const char *key, char *out, size_t cap)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	const char *p = strstr(js, pat);
	ck_assert_msg(p, "no %s in %s", key, js);
	p += strlen(pat);
	size_t n = strcspn(p, "\"");
	ck_assert_uint_lt(n, cap);
	memcpy(out, p, n);
	out[n] = 0;
}

/* scrub of every target and check --read-data of every target alone all pass */
static void all_clean(const rs *r, const char *ctx)
{
	char *out;
	int rc = run(&out, CN " scrub", CA(r));
	ck_assert_msg(rc == 0, "%s: scrub: %s", ctx, out);
	free(out);
	for (int i = 0; i < 3; i++) {
		rc = run(&out, "'%s' -r '%s' --no-cache check --read-data", CAIRN_BIN, r->t[i]);
		ck_assert_msg(rc == 0, "%s: check of t%d: %s", ctx, i, out);
		ck_assert_msg(!strstr(out, "error:"), "%s: %s", ctx, out);
		free(out);
	}
}

static void repair_all(const rs *r, const char *ctx)
{
	char *out;
	int rc = run(&out, "env -u CAIRN_PASSWORD " CN " repair", CA(r));
	ck_assert_msg(rc == 0, "%s: repair: %s", ctx, out);
	free(out);
	all_clean(r, ctx);
}

/* --- 1. a clean repository passes everything ------------------------------------------ */

START_TEST(clean_passes)
{
	rs r;
	char *out;
	rs_make(&r, "clean", g_src);
	int rc = run(&out, CN " check --read-data", CA(&r));
	ck_assert_msg(rc == 0, "check: %s", out);
	must_contain(out, "no errors", "check");
	free(out);
	for (int i = 0; i < 3; i++) {
		rc = run(&out, CN " scrub --target %d", CA(&r), i);
		ck_assert_msg(rc == 0, "scrub t%d: %s", i, out);
		must_contain(out, "0 corrupt, 0 missing", "scrub");
		free(out);
	}
	all_clean(&r, "clean");
	rc = run(&out, CN " --json drill", CA(&r));
	ck_assert_msg(rc == 0, "drill: %s", out);
	must_contain(out, "\"verdict\":\"pass\"", "drill");
	ck_assert_double_eq(jnum(out, "files"), NFILES);
	free(out);
}
END_TEST

/* --- 2. each kind of damage is found, named, and repaired ------------------------------- */

/* check of target t alone fails; its output (stderr) in *out */
static void check_fails(const rs *r, int t, int read_data, char **out)
{
	int rc = run(out, "'%s' -r '%s' --no-cache check%s", CAIRN_BIN, r->t[t],
		     read_data ? " --read-data" : "");
	ck_assert_msg(rc == 1, "check of damaged t%d: exit %d:\n%s", t, rc, *out);
}

/* The first "affected: snapshot S: PATH (" line names a file of the source. */
static void affected_file_exists(const rs *r, const char *out, const char *src)
{
	char pat[128];
	snprintf(pat, sizeof(pat), "affected: snapshot %.8s: ", r->snap);
	const char *p = strstr(out, pat);
	ck_assert_msg(p, "no \"%s\" in:\n%s", pat, out);
	p += strlen(pat);
	char path[CAP];
	size_t n = strcspn(p, " \n");
	ck_assert_uint_lt(n, sizeof(path));
	memcpy(path, p, n);
	path[n] = 0;
	ck_assert_msg(!strncmp(path, src, strlen(src)), "affected %s is not in %s", path, src);
	struct stat st;
	ck_assert_msg(stat(path, &st) == 0 && S_ISREG(st.st_mode), "affected %s: not a file", path);
}

START_TEST(damage_found_and_repaired)
{
	rs r;
	char *out, pack[CAP], tpack[CAP], p[CAP], tname[CAP];
	rs_make(&r, "damage", g_src);
	find_pack(&r, 1, pack);
	find_pack(&r, 2, tpack);
	pf(tname, "local:%s", r.t[1]);

	/* (a) a flipped byte in a data pack on t1 */
	pf(p, "%s/%s", r.t[1], pack);
	ck_assert_int_eq(tu_sh("printf '\\377' | dd of='%s' bs=1 seek=5000 conv=notrunc "
			       "2>/dev/null", p), 0);
	ck_assert_int_eq(run(&out, CN " scrub --target 1", CA(&r)), 1);
	must_contain(out, pack, "scrub (a)");
	must_contain(out, tname, "scrub (a)");
	must_contain(out, "checksum mismatch", "scrub (a)");
	free(out);
	check_fails(&r, 1, 1, &out);
	must_contain(out, pack, "check (a)");
	must_contain(out, tname, "check (a)");
	must_contain(out, "error: ", "check (a)");
	affected_file_exists(&r, out, g_src);
	free(out);
	repair_all(&r, "after (a)");

	/* (b) a missing pack on t1 */
	ck_assert_int_eq(unlink(p), 0);
	ck_assert_int_eq(run(&out, CN " scrub --target 1", CA(&r)), 1);
	must_contain(out, pack, "scrub (b)");
	must_contain(out, "missing on ", "scrub (b)");
	must_contain(out, tname, "scrub (b)");
	free(out);
	check_fails(&r, 1, 0, &out);
	must_contain(out, pack, "check (b)");
	must_contain(out, "is missing on", "check (b)");
	affected_file_exists(&r, out, g_src);
	free(out);
	repair_all(&r, "after (b)");

	/* (c) missing index segments on t2 */
	ck_assert_int_eq(tu_sh("rm -f '%s'/index/*", r.t[2]), 0);
	ck_assert_int_eq(run(&out, CN " scrub --target 2", CA(&r)), 1);
	must_contain(out, "index/", "scrub (c)");
	pf(p, "missing on local:%s", r.t[2]);
	must_contain(out, p, "scrub (c)");
	free(out);
	repair_all(&r, "after (c)");

	/* (d) a truncated tree pack on t1 */
	pf(p, "%s/%s", r.t[1], tpack);
	ck_assert_int_eq(truncate(p, 100), 0);
	ck_assert_int_eq(run(&out, CN " scrub --target 1", CA(&r)), 1);
	must_contain(out, tpack, "scrub (d)");
	free(out);
	check_fails(&r, 1, 0, &out);
	must_contain(out, tpack, "check (d)");
	must_contain(out, tname, "check (d)");
	char want[CAP];
	pf(want, "affected: snapshot %.8s: / (tree ", r.snap);
	must_contain(out, want, "check (d)");
	free(out);
	repair_all(&r, "after (d)");

	/* (e) a wrong passphrase */
	ck_assert_int_eq(run(&out, "CAIRN_PASSWORD=wrong " CN " drill", CA(&r)), 12);
	must_contain(out, "wrong passphrase", "drill (e)");
	free(out);
	ck_assert_int_eq(run(&out, "CAIRN_PASSWORD=wrong '%s' -r '%s' --no-cache check", CAIRN_BIN,
			     r.t[0]), 12);
	must_contain(out, "wrong passphrase", "check (e)");
	free(out);
	all_clean(&r, "at the end");
}
END_TEST

/* An orphan pack is a warning, not an error. */
START_TEST(orphan_is_warning)
{
	rs r;
	char *out, pack[CAP];
	rs_make(&r, "orphan", g_src);
	find_pack(&r, 1, pack);
	/* the same bytes under another pack name: in no index */
	ck_assert_int_eq(tu_sh("mkdir -p '%s/data/00' && cp '%s/%s' '%s/data/00/00%.62s'", r.t[0],
			       r.t[0], pack, r.t[0], pack + 10),
			 0);
	int rc = run(&out, "'%s' -r '%s' --no-cache check", CAIRN_BIN, r.t[0]);
	ck_assert_msg(rc == 0, "check: %s", out);
	must_contain(out, "warning: data/00/00", "check");
	must_contain(out, "not in any index", "check");
	ck_assert_msg(!strstr(out, "error:"), "%s", out);
	free(out);
}
END_TEST

/* --- 3. drills: figures, sample, rotation, status, due -------------------------------- */

static void restored_paths(const char *sandbox, char **out)
{
	ck_assert_int_eq(run(out, "cd '%s'/drill-* && find . -type f | sort", sandbox), 0);
}

START_TEST(drill_figures_sample_rotation)
{
	rs r;
	char *out, *a, *b, tg[3][CAP];
	rs_make(&r, "drills", g_src);

	/* rotation: three drills hit three targets; status in between */
	for (int i = 0; i < 3; i++) {
		int rc = run(&out, CN " --json drill", CA(&r));
		ck_assert_msg(rc == 0, "drill %d: %s", i, out);
		must_contain(out, "\"verdict\":\"pass\"", "drill");
		ck_assert(jnum(out, "seconds") > 0);
		ck_assert(jnum(out, "mb_per_s") > 0);
		ck_assert(jnum(out, "bytes") > 0);
		ck_assert(jnum(out, "files") > 0);
		ck_assert(jnum(out, "first_byte_s") >= 0);
		ck_assert_double_eq(jnum(out, "files"), jnum(out, "files_total"));
		jstr(out, "target", tg[i], CAP);
		if (i == 0)
			printf("DRILL-FULL: %.0f files, %.0f bytes in %.3f s, %.1f MB/s, first byte "
			       "%.3f s\n", jnum(out, "files"), jnum(out, "bytes"),
			       jnum(out, "seconds"), jnum(out, "mb_per_s"), jnum(out, "first_byte_s"));
		free(out);
		if (i == 0) {
			ck_assert_int_eq(run(&out, CN " drill status", CA(&r)), 1);
			must_contain(out, "NEVER DRILLED", "status");
			/* the drilled target is not marked */
			char *l = strstr(out, tg[0]);
			ck_assert_ptr_nonnull(l);
			ck_assert_msg(!strstr(l, "NEVER") ||
					  strstr(l, "NEVER") > strchr(l, '\n'), "%s", out);
			free(out);
		}
	}
	ck_assert_str_ne(tg[0], tg[1]);
	ck_assert_str_ne(tg[1], tg[2]);
	ck_assert_str_ne(tg[0], tg[2]);
	int rc = run(&out, CN " drill status", CA(&r));
	ck_assert_msg(!strstr(out, "NEVER DRILLED"), "status: %s", out);
	(void)rc; /* 1 if a second has passed: interval 1s */
	free(out);

	/* a sample: deterministic for its seed, fetches about its share. The first drill reads
	 * target 0 under strace (when it works here) to measure what was really fetched. */
	char sb1[CAP], sb2[CAP], trace[CAP], strace[CAP] = "";
	pf(sb1, "%s/sb1", r.dir);
	pf(sb2, "%s/sb2", r.dir);
	pf(trace, "%s/strace.log", r.dir);
	if (tu_sh("strace -f -qq -o /dev/null true >/dev/null 2>&1") == 0)
		/* LeakSanitizer cannot run under ptrace; the other drills cover leaks */
		pf(strace, "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 "
			   "strace -f -qq -e trace=pread64 -o '%s' ", trace);
	rc = run(&a, "%s" CN " --json drill --target 0 --sample 10%% --seed 42 --sandbox '%s' "
		 "--keep-sandbox", strace, CA(&r), sb1);
	ck_assert_msg(rc == 0, "sampled drill: %s", a);
	rc = run(&b, CN " --json drill --target 1 --sample 10%% --seed 42 --sandbox '%s' "
		 "--keep-sandbox", CA(&r), sb2);
	ck_assert_msg(rc == 0, "sampled drill: %s", b);
	ck_assert_double_eq(jnum(a, "files"), jnum(b, "files"));
	ck_assert_double_eq(jnum(a, "bytes"), jnum(b, "bytes"));
	ck_assert(jnum(a, "files") < NFILES / 2);
	ck_assert(jnum(a, "meta_checked") >= jnum(a, "files"));
	double share = jnum(a, "fetched_share");
	/* measured: bytes restored in the sandbox over the bytes of the source */
	double on_disk = (double)tu_sh_u64("find '%s' -type f -printf '%%s\\n' | "
					"awk '{s+=$1} END {printf \"%%d\", s}'", sb1);
	double src_bytes = (double)tu_sh_u64("find '%s' -type f -printf '%%s\\n' | "
					  "awk '{s+=$1} END {printf \"%%d\", s}'", g_src);
	double measured = on_disk / src_bytes;
	ck_assert_double_eq(on_disk, jnum(a, "bytes"));
	ck_assert_double_eq(src_bytes, jnum(a, "bytes_total"));
	/* fetched: what the drill read (pread) from target 0 over the size of its packs */
	double io = -1;
	if (strace[0]) {
		double got = (double)tu_sh_u64("awk '/pread64/ && /= [0-9]+$/ {s+=$NF} END "
					    "{printf \"%%d\", s}' '%s'", trace);
		double packs = (double)tu_sh_u64("du -sb '%s/data' | cut -f1", r.t[0]);
		io = got / packs;
		ck_assert_msg(io >= 0.04 && io <= 0.2, "read %.0f of %.0f pack bytes", got, packs);
	}
	printf("DRILL-SAMPLE: 10%% sample (seed 42) restored %.0f of %.0f files, %.0f of %.0f "
	       "bytes: fetched_share %.4f, measured on disk %.4f, read from the target %.4f%s\n",
	       jnum(a, "files"), jnum(a, "files_total"), jnum(a, "bytes"), jnum(a, "bytes_total"),
	       share, measured, io, strace[0] ? "" : " (no strace: not measured)");
	ck_assert_msg(share >= 0.04 && share <= 0.2, "fetched_share %.4f", share);
	ck_assert_msg(measured >= 0.04 && measured <= 0.2, "measured share %.4f", measured);
	free(a);
	free(b);
	restored_paths(sb1, &a);
	restored_paths(sb2, &b);
	ck_assert_str_eq(a, b);
	size_t nl = 0;
	for (const char *s = a; *s; s++)
		nl += *s == '\n';
	ck_assert_uint_gt(nl, 0);
	free(a);
	free(b);

	/* --due with interval 1s: after a second, every target is due again */
	sleep(2);
	ck_assert_int_eq(run(&out, CN " drill status", CA(&r)), 1);
	must_contain(out, "OVERDUE", "status");
	free(out);
	rc = run(&out, CN " --json drill --due", CA(&r));
	ck_assert_msg(rc == 0, "drill --due: %s", out);
	for (int i = 0; i < 3; i++) {
		char t[CAP];
		pf(t, "\"target\":\"%s\"", tg[i]);
		must_contain(out, t, "drill --due");
	}
	size_t reps = 0;
	for (const char *s = out; (s = strstr(s, "\"type\":\"drill\"")); s++)
		reps++;
	ck_assert_uint_eq(reps, 3);
	free(out);
	/* and the whole configuration */
	rc = run(&out, "'%s' --config '%s' drill status", CAIRN_BIN, r.cfg);
	ck_assert_msg(!strstr(out, "NEVER DRILLED"), "%s", out);
	free(out);
}
END_TEST

/* --- 4. --compare-live catches content that changed behind size and mtime --------------- */

START_TEST(compare_live)
{
	rs r;
	char *out, src[CAP], f[CAP], sb[CAP];
	pf(src, "%s/live", g_base);
	make_source(src, 20);
	rs_make(&r, "live-rs", src);
	pf(sb, "%s/sandbox", r.dir);
	int rc = run(&out, CN " --json drill --sandbox '%s' --compare-live", CA(&r), sb);
	ck_assert_msg(rc == 0, "drill: %s", out);
	must_contain(out, "\"verdict\":\"pass\"", "drill");
	ck_assert_double_eq(jnum(out, "live_compared"), 20);
	free(out);
	/* bit rot in the source: same size, same mtime, other content */
	pf(f, "%s/d3/f003", src);
	ck_assert_int_eq(tu_sh("m=$(stat -c %%y '%s') && printf 'rot' | dd of='%s' bs=1 seek=777 "
			       "conv=notrunc 2>/dev/null && touch -d \"$m\" '%s'", f, f, f), 0);
	rc = run(&out, CN " --json drill --sandbox '%s' --compare-live", CA(&r), sb);
	ck_assert_msg(rc == 1, "drill: exit %d: %s", rc, out);
	must_contain(out, "\"verdict\":\"fail\"", "drill");
	must_contain(out, f, "drill");
	must_contain(out, "differs from the live file", "drill");
	free(out);
	/* the text report names it too */
	rc = run(&out, CN " drill --sandbox '%s' --compare-live", CA(&r), sb);
	ck_assert_int_eq(rc, 1);
	must_contain(out, f, "drill (text)");
	must_contain(out, "FAILED", "drill (text)");
	free(out);
	/* without --compare-live the backup itself is fine */
	rc = run(&out, CN " --json drill --sandbox '%s'", CA(&r), sb);
	ck_assert_msg(rc == 0, "drill: %s", out);
	free(out);
}
END_TEST

static Suite *cli_verify_suite(void)
{
	Suite *s = suite_create("verify");
	TCase *tc = tcase_create("core");
	tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, clean_passes);
	tcase_add_test(tc, damage_found_and_repaired);
	tcase_add_test(tc, orphan_is_warning);
	tcase_add_test(tc, drill_figures_sample_rotation);
	tcase_add_test(tc, compare_live);
	suite_add_tcase(s, tc);
	return s;
}

CAIRN_CHECK_MAIN(cli_verify_suite)
