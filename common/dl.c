/*
 * dl.c - loading a client library at run time: see dl.h.
 */
#include "common/dl.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A function pointer is stored from dlsym()'s void * by copying its bytes (POSIX). */
_Static_assert(sizeof(void (*)(void)) == sizeof(void *),
	       "function pointers and void * differ in size");

/*
 * "cannot load FILE[ ($ENV)]: WHY" into @p err; dlerror()'s own "FILE: "
 * prefix is dropped from @p why, so that the file is named once.
 */
static void load_error(char *err, size_t errlen, const char *file, const char *env,
		       const char *why, const char *dflt)
{
	size_t flen = strlen(file);
	if (!why)
		why = dflt;
	else if (!strncmp(why, file, flen) && !strncmp(why + flen, ": ", 2))
		why += flen + 2;
	snprintf(err, errlen, "cannot load %s%s%s%s: %s", file, env ? " ($" : "", env ? env : "",
		 env ? ")" : "", why);
}

int cairn_dl_load(const char *env, const char *soname, void *table, size_t table_size,
		  const cairn_dl_sym *syms, size_t n, char *err, size_t errlen)
{
	const char *file = env ? getenv(env) : NULL;
	const char *from = file && *file ? env : NULL; /* named in messages */
	if (!from)
		file = soname;
	memset(table, 0, table_size);
	dlerror(); /* clear a stale message */
	void *h = dlopen(file, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		load_error(err, errlen, file, from, dlerror(), "dlopen failed");
		return -EOPNOTSUPP;
	}
	for (size_t i = 0; i < n; i++) {
		dlerror();
		void *p = dlsym(h, syms[i].name);
		if (!p) {
			load_error(err, errlen, file, from, dlerror(), "symbol resolves to NULL");
			memset(table, 0, table_size);
			return -EOPNOTSUPP; /* not closed: its constructors ran */
		}
		memcpy((char *)table + syms[i].offset, &p, sizeof(p));
	}
	/* never closed: the table points into it for the rest of the process */
	err[0] = 0;
	return 0;
}
