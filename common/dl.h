/*
 * dl.h - loading a client library at run time, on first use.
 *
 * DESIGN
 *   - The rados and s3 targets call librados and libs3, and the cairn
 *     commands that talk to cairnd call libcurl, through a table of function
 *     pointers that cairn_dl_load() fills on first use, instead of linking
 *     them into the binaries. Linked, librados (with libceph-common and
 *     boost) and libs3 (with libcurl-gnutls and libxml2) cost every run ~20
 *     MiB of peak RSS and the dynamic linker's relocation time, and libcurl
 *     (with GnuTLS, Kerberos, LDAP, ssh and the rest) another ~5 MiB and
 *     ~2.7 ms, although most runs only ever touch a local repository.
 *   - Each table is a struct with one member per function, declared as
 *     `__typeof__(rados_create2) *rados_create2;`, so the compiler checks
 *     every call against the library's own header (a build dependency still);
 *     a list of {name, offsetof} pairs made from the same X-macro tells
 *     cairn_dl_load() what to resolve where.
 *   - dlopen with RTLD_NOW | RTLD_LOCAL: every symbol is resolved at once (a
 *     missing one fails the load, not a later call), and nothing the library
 *     drags in is added to the global scope. The handle is never closed
 *     (librados cannot be unloaded safely).
 *   - Callers run cairn_dl_load() once per process (pthread_once) and keep
 *     its result: a failed load is not retried.
 */
#ifndef CAIRN_COMMON_DL_H
#define CAIRN_COMMON_DL_H

#include <stddef.h>

/* One function to resolve: its name and the offset of its pointer in the table. */
typedef struct cairn_dl_sym {
	const char *name;
	size_t offset;
} cairn_dl_sym;

/*
 * Load library @p soname (or the file or soname in environment variable
 * @p env, if set and not empty) and resolve @p syms[0..n) into the function
 * pointers at @p table + offset. Returns 0, or -EOPNOTSUPP with the reason in
 * @p err (@p errlen bytes), e.g. "cannot load librados.so.2: <dlerror>"; the
 * table is then left all NULL.
 */
int cairn_dl_load(const char *env, const char *soname, void *table, size_t table_size,
		  const cairn_dl_sym *syms, size_t n, char *err, size_t errlen);

#endif
