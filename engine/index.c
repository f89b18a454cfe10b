/*
 * index.c - index segments and the in-memory blob index.
 *
 * DESIGN
 * The in-memory index must cost at most 48 bytes per blob (DESIGN.md §8).
 * A blob entry is 44 bytes (id 32, pack 4 with the blob type in the top bit,
 * offset 4, encoded length 4), kept in one array sorted by id and found by
 * binary search: no per-entry pointers, no hash-table slack. New entries go
 * to a delta array with an open-addressing table of 4-byte slots (load <= 1/2);
 * when the delta reaches 1/8 of the main array it is sorted and merged.
 * Packs are a separate array (id, size, type) with a hash table on their id.
 */
#include "engine/index_int.h"

#include <pthread.h>
#include <stdlib.h>

/* --- segments --------------------------------------------------------------- */

void cairn_idxseg_add(cairn_idxseg *s, const uint8_t id[32], uint8_t type, uint64_t size,
		      const cairn_pack_entry *e, size_t n)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->packs = cairn_xrealloc(s->packs, s->cap * sizeof(*s->packs));
	}
	cairn_idx_pack *p = &s->packs[s->n++];
	memcpy(p->id, id, 32);
	p->type = type;
	p->size = size;
	p->n = n;
	p->e = cairn_xmalloc((n ? n : 1) * sizeof(*e));
	if (n)
		memcpy(p->e, e, n * sizeof(*e));
}

void cairn_idxseg_free(cairn_idxseg *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->packs[i].e);
	free(s->packs);
	memset(s, 0, sizeof(*s));
}

void cairn_idxseg_encode(const cairn_idxseg *s, cairn_buf *out)
{
	cairn_buf_put_u8(out, 1);
	cairn_buf_put_uvar(out, s->n);
	for (size_t i = 0; i < s->n; i++) {
		const cairn_idx_pack *p = &s->packs[i];
		cairn_buf_append(out, p->id, 32);
		cairn_buf_put_u8(out, p->type);
		cairn_buf_put_uvar(out, p->size);
		cairn_buf_put_uvar(out, p->n);
		for (size_t j = 0; j < p->n; j++) {
			cairn_buf_put_u8(out, p->e[j].type);
			cairn_buf_append(out, p->e[j].id, 32);
			cairn_buf_put_uvar(out, p->e[j].offset);
			cairn_buf_put_uvar(out, p->e[j].clen);
			cairn_buf_put_uvar(out, p->e[j].rawlen);
		}
	}
}

int cairn_idxseg_decode(cairn_idxseg *out, const void *data, size_t len)
{
	cairn_rd r = cairn_rd_init(data, len);
	uint8_t ver;
	uint64_t np;
	memset(out, 0, sizeof(*out));
	if (cairn_rd_u8(&r, &ver) < 0 || ver != 1)
		return cairn_error_set(-EBADMSG, "index: unknown version");
	if (cairn_rd_uvar(&r, &np) < 0 || np > cairn_rd_left(&r) / 35)
		return cairn_error_set(-EBADMSG, "index: bad pack count");
	for (uint64_t i = 0; i < np; i++) {
		uint8_t id[32], type;
		uint64_t size, n;
		if (cairn_rd_raw(&r, id, 32) < 0 || cairn_rd_u8(&r, &type) < 0 ||
		    cairn_rd_uvar(&r, &size) < 0 || cairn_rd_uvar(&r, &n) < 0 ||
		    (type != CAIRN_BLOB_DATA && type != CAIRN_BLOB_TREE) ||
		    n > CAIRN_PACK_MAX_BLOBS || n > cairn_rd_left(&r) / 36) {
			cairn_idxseg_free(out);
			return cairn_error_set(-EBADMSG, "index: pack %llu is malformed",
					       (unsigned long long)i);
		}
		cairn_pack_entry *e = cairn_xcalloc(n ? n : 1, sizeof(*e));
		for (uint64_t j = 0; j < n; j++) {
			uint64_t off, clen, raw;
			if (cairn_rd_u8(&r, &e[j].type) < 0 || cairn_rd_raw(&r, e[j].id, 32) < 0 ||
			    cairn_rd_uvar(&r, &off) < 0 || cairn_rd_uvar(&r, &clen) < 0 ||
			    cairn_rd_uvar(&r, &raw) < 0 || off > UINT32_MAX || clen > UINT32_MAX ||
			    raw > UINT32_MAX || off + clen > size ||
			    (e[j].type != CAIRN_BLOB_DATA && e[j].type != CAIRN_BLOB_TREE)) {
				free(e);
				cairn_idxseg_free(out);
				return cairn_error_set(-EBADMSG, "index: pack %llu entry %llu is malformed",
						       (unsigned long long)i, (unsigned long long)j);
			}
			e[j].offset = (uint32_t)off;
			e[j].clen = (uint32_t)clen;
			e[j].rawlen = (uint32_t)raw;
		}
		cairn_idxseg_add(out, id, type, size, e, (size_t)n);
		free(e);
	}
	if (cairn_rd_left(&r)) {
		cairn_idxseg_free(out);
		return cairn_error_set(-EBADMSG, "index: %zu trailing bytes", cairn_rd_left(&r));
	}
	return 0;
}

/* --- in-memory index -------------------------------------------------------------- */

typedef struct ientry {
	uint8_t id[32];
	uint32_t pack; /* bit 31: tree blob */
	uint32_t offset;
	uint32_t clen;
} ientry;

_Static_assert(sizeof(ientry) == 44, "index entry must stay 44 bytes");

typedef struct ipack {
	uint8_t id[32];
	uint64_t size;
	uint8_t type;
} ipack;

struct cairn_index {
	pthread_rwlock_t lock;
	ientry *main;
	size_t nmain, capmain;
	ientry *delta;
	size_t ndelta, capdelta;
	uint32_t *dslots; /* index+1 into delta, 0 = empty */
	size_t nslots;    /* power of two */
	ipack *packs;
	size_t npacks, cappacks;
	uint32_t *pslots;
	size_t npslots;
};

#define TREE_BIT 0x80000000u

static uint64_t hash_id(const uint8_t *id)
{
	/* ids are HMAC outputs or random, so any 8 bytes would do; mixing two
	 * words keeps the open addressing even for ids that share a prefix */
	uint64_t h = (cairn_get_le64(id) ^ cairn_get_le64(id + 8)) * 0x9e3779b97f4a7c15ull;
	return h ^ (h >> 29);
}

cairn_index *cairn_index_new(void)
{
	cairn_index *idx = cairn_xcalloc(1, sizeof(*idx));
	pthread_rwlock_init(&idx->lock, NULL);
	return idx;
}

void cairn_index_free(cairn_index *idx)
{
	if (!idx)
		return;
	pthread_rwlock_destroy(&idx->lock);
	free(idx->main);
	free(idx->delta);
	free(idx->dslots);
	free(idx->packs);
	free(idx->pslots);
	free(idx);
}

static void pslots_rebuild(cairn_index *idx)
{
	size_t n = 64;
	while (n < idx->npacks * 2 + 2)
		n *= 2;
	free(idx->pslots);
	idx->pslots = cairn_xcalloc(n, sizeof(uint32_t));
	idx->npslots = n;
	for (size_t i = 0; i < idx->npacks; i++) {
		size_t s = hash_id(idx->packs[i].id) & (n - 1);
		while (idx->pslots[s])
			s = (s + 1) & (n - 1);
		idx->pslots[s] = (uint32_t)i + 1;
	}
}

static int pack_find_locked(cairn_index *idx, const uint8_t id[32], uint32_t *no)
{
	if (!idx->npslots)
		return 0;
	size_t s = hash_id(id) & (idx->npslots - 1);
	while (idx->pslots[s]) {
		uint32_t i = idx->pslots[s] - 1;
		if (!memcmp(idx->packs[i].id, id, 32)) {
			*no = i;
			return 1;
		}
		s = (s + 1) & (idx->npslots - 1);
	}
	return 0;
}

uint32_t cairn_index_pack(cairn_index *idx, const uint8_t id[32], uint8_t type, uint64_t size)
{
	uint32_t no;
	pthread_rwlock_wrlock(&idx->lock);
	if (pack_find_locked(idx, id, &no)) {
		pthread_rwlock_unlock(&idx->lock);
		return no;
	}
	if (idx->npacks == idx->cappacks) {
		idx->cappacks = idx->cappacks ? idx->cappacks * 2 : 64;
		idx->packs = cairn_xrealloc(idx->packs, idx->cappacks * sizeof(ipack));
	}
	no = (uint32_t)idx->npacks++;
	memcpy(idx->packs[no].id, id, 32);
	idx->packs[no].size = size;
	idx->packs[no].type = type;
	if (idx->npacks * 2 + 2 > idx->npslots)
		pslots_rebuild(idx);
	else {
		size_t s = hash_id(id) & (idx->npslots - 1);
		while (idx->pslots[s])
			s = (s + 1) & (idx->npslots - 1);
		idx->pslots[s] = no + 1;
	}
	pthread_rwlock_unlock(&idx->lock);
	return no;
}

int cairn_index_pack_find(cairn_index *idx, const uint8_t id[32], uint32_t *no)
{
	pthread_rwlock_rdlock(&idx->lock);
	int r = pack_find_locked(idx, id, no);
	pthread_rwlock_unlock(&idx->lock);
	return r;
}

void cairn_index_pack_info(cairn_index *idx, uint32_t no, uint8_t id[32], uint8_t *type,
			   uint64_t *size)
{
	pthread_rwlock_rdlock(&idx->lock);
	if (id)
		memcpy(id, idx->packs[no].id, 32);
	if (type)
		*type = idx->packs[no].type;
	if (size)
		*size = idx->packs[no].size;
	pthread_rwlock_unlock(&idx->lock);
}

size_t cairn_index_npacks(cairn_index *idx)
{
	pthread_rwlock_rdlock(&idx->lock);
	size_t n = idx->npacks;
	pthread_rwlock_unlock(&idx->lock);
	return n;
}

/* The first 8 bytes of an id as a number that sorts as the id does. */
static uint64_t id_key(const uint8_t *id)
{
	uint64_t k;
	memcpy(&k, id, 8);
	return __builtin_bswap64(k);
}

/*
 * Ids are keyed hashes, uniform over their range, so the sorted main array
 * is searched by interpolation (a lookup touches ~3 entries instead of
 * ~log2(n), each a cache miss on a large index); every other probe bisects,
 * so no distribution of ids can make a lookup worse than twice a binary
 * search.
 */
static const ientry *main_find(const cairn_index *idx, const uint8_t *id)
{
	size_t lo = 0, hi = idx->nmain; /* the id can only be in [lo, hi) */
	uint64_t key = id_key(id);
	for (unsigned step = 0; lo < hi; step++) {
		size_t mid = lo + (hi - lo) / 2;
		if (!(step & 1) && hi - lo > 16) {
			uint64_t klo = id_key(idx->main[lo].id), khi = id_key(idx->main[hi - 1].id);
			if (key < klo || key > khi)
				return NULL;
			if (khi > klo)
				mid = lo + (size_t)((unsigned __int128)(key - klo) * (hi - 1 - lo) /
						    (khi - klo));
		}
		uint64_t km = id_key(idx->main[mid].id);
		int c = km < key ? -1 : km > key ? 1 : memcmp(idx->main[mid].id + 8, id + 8, 24);
		if (!c)
			return &idx->main[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static const ientry *delta_find(const cairn_index *idx, const uint8_t *id)
{
	if (!idx->nslots)
		return NULL;
	size_t s = hash_id(id) & (idx->nslots - 1);
	while (idx->dslots[s]) {
		const ientry *e = &idx->delta[idx->dslots[s] - 1];
		if (!memcmp(e->id, id, 32))
			return e;
		s = (s + 1) & (idx->nslots - 1);
	}
	return NULL;
}

static int cmp_ientry(const void *a, const void *b)
{
	return memcmp(((const ientry *)a)->id, ((const ientry *)b)->id, 32);
}

static void sort_small(ientry *a, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		if (cmp_ientry(&a[i - 1], &a[i]) <= 0)
			continue;
		ientry e = a[i];
		size_t j = i;
		while (j && cmp_ientry(&a[j - 1], &e) > 0) {
			a[j] = a[j - 1];
			j--;
		}
		a[j] = e;
	}
}

/*
 * The entries sorted by id, in a new array. Ids are keyed hashes (BLAKE3 or
 * HMAC-SHA256), uniform in their leading bits: one counting pass on the top 8-16 bits puts every
 * entry into a bucket of about two, which insertion sort finishes. qsort of
 * 75,000 entries (loading the index of 2 GiB of /usr) took 10 ms of every
 * command's start; this ~1 ms. A bucket that is large after all (ids that
 * are not uniform) gets qsort.
 */
static ientry *sorted_copy(const ientry *a, size_t n)
{
	ientry *out = cairn_xmalloc((n ? n : 1) * sizeof(ientry));
	unsigned bits = 8;
	while (bits < 16 && ((size_t)1 << (bits + 1)) <= n)
		bits++;
	size_t nb = (size_t)1 << bits;
	size_t *end = cairn_xcalloc(nb + 1, sizeof(size_t));
	for (size_t i = 0; i < n; i++)
		end[(id_key(a[i].id) >> (64 - bits)) + 1]++;
	for (size_t b = 0; b < nb; b++)
		end[b + 1] += end[b];
	for (size_t i = 0; i < n; i++) /* end[b] goes from bucket b's start to its end */
		out[end[id_key(a[i].id) >> (64 - bits)]++] = a[i];
	size_t lo = 0;
	for (size_t b = 0; b < nb; b++) {
		size_t hi = end[b];
		if (hi - lo > 32)
			qsort(out + lo, hi - lo, sizeof(ientry), cmp_ientry);
		else
			sort_small(out + lo, hi - lo);
		lo = hi;
	}
	free(end);
	return out;
}

static void compact_locked(cairn_index *idx)
{
	if (!idx->ndelta)
		return;
	ientry *d = sorted_copy(idx->delta, idx->ndelta);
	free(idx->delta);
	free(idx->dslots);
	size_t total = idx->nmain + idx->ndelta;
	if (!idx->nmain) { /* loading: the sorted entries are the main array */
		free(idx->main);
		idx->main = d;
	} else {
		ientry *m = cairn_xmalloc(total * sizeof(ientry));
		size_t i = 0, j = 0, k = 0;
		while (i < idx->nmain || j < idx->ndelta) {
			if (j == idx->ndelta ||
			    (i < idx->nmain && cmp_ientry(&idx->main[i], &d[j]) < 0))
				m[k++] = idx->main[i++];
			else
				m[k++] = d[j++];
		}
		free(idx->main);
		free(d);
		idx->main = m;
	}
	idx->nmain = idx->capmain = total;
	idx->delta = NULL;
	idx->dslots = NULL;
	idx->ndelta = idx->capdelta = idx->nslots = 0;
}

void cairn_index_compact(cairn_index *idx)
{
	pthread_rwlock_wrlock(&idx->lock);
	compact_locked(idx);
	pthread_rwlock_unlock(&idx->lock);
}

static void delta_insert(cairn_index *idx, const ientry *e)
{
	if (idx->ndelta == idx->capdelta) {
		idx->capdelta = idx->capdelta ? idx->capdelta * 2 : 1024;
		idx->delta = cairn_xrealloc(idx->delta, idx->capdelta * sizeof(ientry));
	}
	if ((idx->ndelta + 1) * 2 > idx->nslots) {
		size_t n = idx->nslots ? idx->nslots * 2 : 2048;
		free(idx->dslots);
		idx->dslots = cairn_xcalloc(n, sizeof(uint32_t));
		idx->nslots = n;
		for (size_t i = 0; i < idx->ndelta; i++) {
			size_t s = hash_id(idx->delta[i].id) & (n - 1);
			while (idx->dslots[s])
				s = (s + 1) & (n - 1);
			idx->dslots[s] = (uint32_t)i + 1;
		}
	}
	idx->delta[idx->ndelta] = *e;
	size_t s = hash_id(e->id) & (idx->nslots - 1);
	while (idx->dslots[s])
		s = (s + 1) & (idx->nslots - 1);
	idx->dslots[s] = (uint32_t)++idx->ndelta;
}

static int add_locked(cairn_index *idx, const uint8_t id[32], uint8_t type, uint32_t pack,
		      uint32_t offset, uint32_t clen)
{
	if (main_find(idx, id) || delta_find(idx, id))
		return 0;
	ientry e;
	memcpy(e.id, id, 32);
	e.pack = pack | (type == CAIRN_BLOB_TREE ? TREE_BIT : 0);
	e.offset = offset;
	e.clen = clen;
	delta_insert(idx, &e);
	if (idx->ndelta > 65536 && idx->ndelta > idx->nmain / 8)
		compact_locked(idx);
	return 1;
}

int cairn_index_add(cairn_index *idx, const uint8_t id[32], uint8_t type, uint32_t pack,
		    uint32_t offset, uint32_t clen)
{
	pthread_rwlock_wrlock(&idx->lock);
	int r = add_locked(idx, id, type, pack, offset, clen);
	pthread_rwlock_unlock(&idx->lock);
	return r;
}

void cairn_index_add_segment(cairn_index *idx, const cairn_idxseg *s)
{
	for (size_t i = 0; i < s->n; i++) {
		const cairn_idx_pack *p = &s->packs[i];
		uint32_t no = cairn_index_pack(idx, p->id, p->type, p->size);
		pthread_rwlock_wrlock(&idx->lock);
		for (size_t j = 0; j < p->n; j++)
			add_locked(idx, p->e[j].id, p->e[j].type, no, p->e[j].offset, p->e[j].clen);
		pthread_rwlock_unlock(&idx->lock);
	}
}

int cairn_index_lookup(cairn_index *idx, const uint8_t id[32], cairn_blob_loc *out)
{
	pthread_rwlock_rdlock(&idx->lock);
	const ientry *e = main_find(idx, id);
	if (!e)
		e = delta_find(idx, id);
	if (e && out) {
		out->pack = e->pack & ~TREE_BIT;
		out->type = (e->pack & TREE_BIT) ? CAIRN_BLOB_TREE : CAIRN_BLOB_DATA;
		out->offset = e->offset;
		out->clen = e->clen;
	}
	pthread_rwlock_unlock(&idx->lock);
	return e != NULL;
}

size_t cairn_index_count(cairn_index *idx)
{
	pthread_rwlock_rdlock(&idx->lock);
	size_t n = idx->nmain + idx->ndelta;
	pthread_rwlock_unlock(&idx->lock);
	return n;
}

size_t cairn_index_memory(cairn_index *idx)
{
	pthread_rwlock_rdlock(&idx->lock);
	size_t m = idx->capmain * sizeof(ientry) + idx->capdelta * sizeof(ientry) +
		   idx->nslots * sizeof(uint32_t) + idx->cappacks * sizeof(ipack) +
		   idx->npslots * sizeof(uint32_t);
	pthread_rwlock_unlock(&idx->lock);
	return m;
}
