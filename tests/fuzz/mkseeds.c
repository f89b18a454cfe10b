/*
 * mkseeds.c - writes the seed corpora of the fuzz targets into
 * <dir>/<target>/ (tests/fuzz/seeds). Built on demand only:
 *
 *   cmake --build build-fuzz --target cairn_mkseeds
 *   build-fuzz/bin/cairn_mkseeds tests/fuzz/seeds
 *
 * Each seed is a small valid (or nearly valid) input that takes the decoder
 * past its first checks; the encrypted ones use the fixed keys of
 * fuzz_common.h. Pack ids, key file salts and nonces are random, so a rerun
 * rewrites the files with different bytes of the same shape.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <zstd.h>

#include "engine/config_int.h"
#include "engine/index_int.h"
#include "engine/node_int.h"
#include "engine/pack_int.h"
#include "engine/repo_int.h"
#include "tests/fuzz/fuzz_common.h"

static const char *root;

static void put(const char *target, const char *name, const void *data, size_t len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", root, target);
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/%s", root, target, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
	printf("%s %zu\n", path, len);
}

static void put_buf(const char *target, const char *name, cairn_buf *b)
{
	put(target, name, b->data, b->len);
	cairn_buf_free(b);
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

/* --- trees -------------------------------------------------------------------- */

static cairn_node node(uint8_t type, const char *name)
{
	cairn_node n;
	memset(&n, 0, sizeof(n));
	n.type = type;
	n.name = cairn_xstrdup(name);
	n.mode = 0644;
	n.uid = 1000;
	n.gid = 100;
	n.user = cairn_xstrdup("alice");
	n.group = cairn_xstrdup("users");
	n.nlink = 1;
	n.mtime_ns = 1700000000123456789;
	n.ctime_ns = -5;
	n.atime_ns = INT64_MIN;
	n.dev = 2049;
	n.ino = 77;
	return n;
}

static void seeds_tree(void)
{
	cairn_tree t;
	cairn_buf b = CAIRN_BUF_INIT;
	memset(&t, 0, sizeof(t));
	cairn_tree_encode(&t, &b);
	put_buf("tree", "empty", &b);

	cairn_node n = node(CAIRN_NODE_FILE, "a file.txt");
	n.flags = CAIRN_NODE_F_DIGEST | CAIRN_NODE_F_CHANGED;
	n.size = 70000;
	n.n_extents = 3;
	n.extents = cairn_xcalloc(3, sizeof(cairn_extent));
	n.extents[0].len = 65536;
	fill(n.extents[0].id, 32, 1);
	n.extents[1].hole = 1;
	n.extents[1].len = 4096;
	n.extents[2].len = 368;
	fill(n.extents[2].id, 32, 2);
	fill(n.digest, 32, 3);
	n.n_xattrs = 2;
	n.xattrs = cairn_xcalloc(2, sizeof(cairn_xattr));
	n.xattrs[0].name = cairn_xstrdup("user.a");
	n.xattrs[1].name = cairn_xstrdup("user.comment");
	n.xattrs[1].value = (uint8_t *)cairn_xstrdup("hello");
	n.xattrs[1].len = 5;
	cairn_tree_add(&t, &n);
	n = node(CAIRN_NODE_DIR, "d\xc3\xa9j\xc3\xa0");
	n.mode = 0755;
	fill(n.subtree, 32, 4);
	cairn_tree_add(&t, &n);
	n = node(CAIRN_NODE_SYMLINK, "link");
	n.link = cairn_xstrdup("../a file.txt");
	n.size = 13;
	cairn_tree_add(&t, &n);
	n = node(CAIRN_NODE_FIFO, "pipe");
	cairn_tree_add(&t, &n);
	n = node(CAIRN_NODE_CHR, "tty");
	n.rdev = 0x501;
	cairn_tree_add(&t, &n);
	n = node(CAIRN_NODE_BLK, "\x01\xff");
	n.rdev = 0x800;
	cairn_tree_add(&t, &n);
	n = node(CAIRN_NODE_SOCK, "sock");
	free(n.user);
	n.user = NULL;
	cairn_tree_add(&t, &n);
	cairn_tree_sort(&t);
	if (cairn_tree_encode(&t, &b) < 0) {
		fprintf(stderr, "mkseeds: %s\n", cairn_error_last());
		exit(1);
	}
	put_buf("tree", "mixed", &b);
	cairn_tree_free(&t);

	/* one node with an optional extension (the encoder never writes one) */
	n = node(CAIRN_NODE_FILE, "x");
	cairn_tree_add(&t, &n);
	cairn_tree_encode(&t, &b);
	b.len--; /* the extension count 0 */
	static const uint8_t ext[] = {1, 2, 3, 'e', 'x', 't'};
	cairn_buf_append(&b, ext, sizeof(ext));
	put_buf("tree", "extension", &b);
	cairn_tree_free(&t);
}

/* --- index segments -------------------------------------------------------------- */

static void entries(cairn_pack_entry *e, size_t n, uint8_t type, uint32_t seed)
{
	uint32_t off = 0;
	for (size_t i = 0; i < n; i++) {
		fill(e[i].id, 32, seed + (uint32_t)i);
		e[i].type = type;
		e[i].offset = off;
		e[i].clen = 100 + 50 * (uint32_t)i;
		e[i].rawlen = e[i].clen + 300;
		off += e[i].clen;
	}
}

static void seeds_index(void)
{
	cairn_idxseg s;
	cairn_buf b = CAIRN_BUF_INIT;
	cairn_pack_entry e[5];
	uint8_t id[32];
	memset(&s, 0, sizeof(s));
	cairn_idxseg_encode(&s, &b);
	put_buf("index", "empty", &b);

	fill(id, 32, 10);
	entries(e, 3, CAIRN_BLOB_DATA, 20);
	cairn_idxseg_add(&s, id, CAIRN_BLOB_DATA, 5000, e, 3);
	cairn_idxseg_encode(&s, &b);
	put_buf("index", "one-pack", &b);

	fill(id, 32, 11);
	entries(e, 5, CAIRN_BLOB_TREE, 30);
	cairn_idxseg_add(&s, id, CAIRN_BLOB_TREE, 1u << 20, e, 5);
	fill(id, 32, 12);
	cairn_idxseg_add(&s, id, CAIRN_BLOB_DATA, 4200, NULL, 0);
	cairn_idxseg_encode(&s, &b);
	put_buf("index", "three-packs", &b);
	cairn_idxseg_free(&s);
}

/* --- packs ------------------------------------------------------------------------ */

/* A finished pack of @p nblobs small blobs under the fixed keys. */
static cairn_packw *make_pack(size_t nblobs, cairn_codec *cx)
{
	cairn_keyset keys;
	fuzz_keys(&keys);
	cairn_packw *pw = cairn_packw_new(&keys, CAIRN_BLOB_DATA);
	for (size_t i = 0; i < nblobs; i++) {
		uint8_t data[300], id[32];
		size_t len = i * 97 % sizeof(data);
		if (i % 2)
			memset(data, 'a' + (int)i, len); /* compressible */
		else
			fill(data, len, (uint32_t)i);
		cairn_chunk_id(&keys, data, len, id);
		cairn_packw_add(pw, cx, id, i == 2 ? CAIRN_BLOB_TREE : CAIRN_BLOB_DATA, data, len);
	}
	cairn_packw_finish(pw, cx);
	return pw;
}

static void seeds_packs(void)
{
	static const char hdr_aad[] = "cairn/pack-header/v1";
	cairn_codec *cx = cairn_codec_new(3), *raw = cairn_codec_new(0);
	cairn_keyset keys;
	uint8_t fixed_id[32], fixed_key[32];
	fuzz_keys(&keys);
	fuzz_pack_id(fixed_id);
	cairn_pack_key(fixed_key, &keys, fixed_id);
	const size_t counts[] = {0, 1, 5};
	for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		char name[64];
		cairn_packw *pw = make_pack(counts[c], cx);
		const cairn_buf *p = cairn_packw_bytes(pw);
		snprintf(name, sizeof(name), "pack-%zu-blobs", counts[c]);
		put("pack_trailer", name, p->data, p->len);

		/* the header's plaintext as cairn_packw_finish lays it out */
		uint32_t tl;
		cairn_pack_trailer tr;
		cairn_buf pt = CAIRN_BUF_INIT, b = CAIRN_BUF_INIT;
		if (cairn_pack_footer(p->data + p->len - CAIRN_PACK_FOOTER, p->len, &tl) < 0 ||
		    cairn_pack_trailer_parse(&tr, p->data + p->len - tl, tl, p->len) < 0) {
			fprintf(stderr, "mkseeds: %s\n", cairn_error_last());
			exit(1);
		}
		const cairn_pack_entry *e = cairn_packw_entries(pw);
		cairn_buf_put_u8(&pt, 1);
		cairn_buf_put_uvar(&pt, cairn_packw_count(pw));
		for (size_t i = 0; i < cairn_packw_count(pw); i++) {
			cairn_buf_put_u8(&pt, e[i].type);
			cairn_buf_append(&pt, e[i].id, 32);
			cairn_buf_put_uvar(&pt, e[i].offset);
			cairn_buf_put_uvar(&pt, e[i].clen);
			cairn_buf_put_uvar(&pt, e[i].rawlen);
		}
		/* mode 1: the plaintext without its zero padding (the parser ignores what follows) */
		uint8_t hdr[9];
		hdr[0] = 1;
		cairn_put_le64(hdr + 1, tr.hdr_off);
		cairn_buf_append(&b, hdr, 9);
		cairn_buf_append(&b, pt.data, pt.len);
		snprintf(name, sizeof(name), "plain-%zu-blobs", counts[c]);
		put_buf("pack_header", name, &b);
		size_t padded = tr.hdr_len - CAIRN_BLOB_OVERHEAD;
		cairn_buf_reserve(&pt, padded - pt.len);
		memset(pt.data + pt.len, 0, padded - pt.len);
		pt.len = padded;
		/* mode 0: the whole padded header encrypted under the fixed pack id */
		hdr[0] = 0;
		cairn_buf_append(&b, hdr, 9);
		cairn_buf_reserve(&b, cairn_blob_bound(pt.len));
		long n = cairn_blob_encode(raw, fixed_key, UINT64_MAX, hdr_aad, sizeof(hdr_aad) - 1,
					   pt.data, pt.len, b.data + b.len);
		b.len += (size_t)n;
		snprintf(name, sizeof(name), "sealed-%zu-blobs", counts[c]);
		put_buf("pack_header", name, &b);
		cairn_buf_free(&pt);
		cairn_pack_trailer_free(&tr);
		cairn_packw_free(pw);
	}
	cairn_codec_free(cx);
	cairn_codec_free(raw);
}

/* --- key files --------------------------------------------------------------------- */

static void seeds_keyfile(void)
{
	cairn_keyset keys;
	fuzz_keys(&keys);
	const struct {
		const char *name, *label;
		cairn_kdf_params kdf;
	} kf[] = {
		{"small", "fuzz@seed", {1, 8, 1}},
		{"two-lanes", "", {2, 64, 2}},
		{"slow-kdf", "user@host (not opened by the fuzzer)", {3, 2048, 1}},
	};
	for (size_t i = 0; i < sizeof(kf) / sizeof(kf[0]); i++) {
		cairn_buf b = CAIRN_BUF_INIT;
		if (cairn_keyfile_create(&b, &keys, FUZZ_PASS, &kf[i].kdf, kf[i].label,
					 1700000000000000000) < 0) {
			fprintf(stderr, "mkseeds: %s\n", cairn_error_last());
			exit(1);
		}
		put_buf("keyfile", kf[i].name, &b);
	}
}

/* --- snapshots ---------------------------------------------------------------------- */

static void seeds_snapshot(void)
{
	cairn_snapshot s;
	cairn_buf b = CAIRN_BUF_INIT;
	memset(&s, 0, sizeof(s));
	snapshot_encode(&s, &b);
	put_buf("snapshot", "minimal", &b);

	char *paths[] = {"/home/alice", "/srv/d\xc3\xa9p\xc3\xb4t \xf0\x9f\x93\xa6", "/tmp/new\nline"};
	char *tags[] = {"daily", "\xe6\x97\xa5\xe6\x9c\xac"};
	s.time_ns = 1700000000123456789;
	fill(s.tree, 32, 40);
	s.has_parent = 1;
	fill(s.parent, 32, 41);
	s.client = "acme";
	s.hostname = "host-1.example";
	s.username = "root";
	s.npaths = 3;
	s.paths = paths;
	s.ntags = 2;
	s.tags = tags;
	s.summary.files_new = 10;
	s.summary.files_changed = 2;
	s.summary.bytes_total = UINT64_MAX;
	s.summary.duration_ns = 1234567890;
	s.program = "cairn 0.1.0";
	snapshot_encode(&s, &b);
	put_buf("snapshot", "full", &b);

	/* an extension a reader skips: (tag 7, 3 bytes) */
	s.has_parent = 0;
	s.npaths = 1;
	s.ntags = 0;
	snapshot_encode(&s, &b);
	b.len--;
	static const uint8_t ext[] = {1, 7, 3, 'a', 'b', 'c'};
	cairn_buf_append(&b, ext, sizeof(ext));
	put_buf("snapshot", "extension", &b);
}

/* --- blobs --------------------------------------------------------------------------- */

static void seeds_blob(void)
{
	uint8_t key[CAIRN_KEY_LEN], text[2000], rnd[200];
	fuzz_blob_key(key);
	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = (uint8_t)"backup restore chunk pack \n"[i * 7 % 27];
	fill(rnd, sizeof(rnd), 50);
	cairn_codec *raw = cairn_codec_new(0), *z = cairn_codec_new(3);
	cairn_buf b = CAIRN_BUF_INIT;

	/* mode 0: encoded blobs */
	struct {
		const char *name;
		cairn_codec *cx;
		const uint8_t *data;
		size_t len;
	} enc[] = {{"sealed-raw", raw, rnd, sizeof(rnd)},
		   {"sealed-zstd", z, text, sizeof(text)},
		   {"sealed-empty", raw, rnd, 0}};
	for (size_t i = 0; i < sizeof(enc) / sizeof(enc[0]); i++) {
		cairn_buf_put_u8(&b, 0);
		cairn_buf_reserve(&b, cairn_blob_bound(enc[i].len));
		long n = cairn_blob_encode(enc[i].cx, key, i, FUZZ_BLOB_AAD, 1, enc[i].data,
					   enc[i].len, b.data + b.len);
		b.len += (size_t)n;
		put_buf("blob", enc[i].name, &b);
	}

	/* mode 0: a sealed object of kind 1 under the fixed key set */
	cairn_keyset keys;
	fuzz_keys(&keys);
	cairn_buf_put_u8(&b, 0);
	cairn_seal(z, &keys, 1, text, 300, &b);
	put_buf("blob", "sealed-object", &b);

	/* mode 0x80 | codec: bodies */
	cairn_buf_put_u8(&b, 0x80);
	cairn_buf_append(&b, rnd, 64);
	put_buf("blob", "plain-raw", &b);

	uint8_t frame[4096];
	size_t fl = ZSTD_compress(frame, sizeof(frame), text, sizeof(text), 3);
	cairn_buf_put_u8(&b, 0x81);
	cairn_buf_append(&b, frame, fl);
	put_buf("blob", "plain-zstd", &b);

	/* a frame without its content size (the decoder refuses those) */
	ZSTD_CCtx *zc = ZSTD_createCCtx();
	ZSTD_CCtx_setParameter(zc, ZSTD_c_contentSizeFlag, 0);
	ZSTD_CCtx_setParameter(zc, ZSTD_c_checksumFlag, 1);
	ZSTD_outBuffer out = {frame, sizeof(frame), 0};
	ZSTD_inBuffer in = {text, 500, 0};
	ZSTD_compressStream2(zc, &out, &in, ZSTD_e_end);
	ZSTD_freeCCtx(zc);
	cairn_buf_put_u8(&b, 0x81);
	cairn_buf_append(&b, frame, out.pos);
	put_buf("blob", "plain-zstd-nosize", &b);

	/* two frames back to back, the second one empty */
	fl = ZSTD_compress(frame, sizeof(frame), text, 100, 1);
	size_t fl2 = ZSTD_compress(frame + fl, sizeof(frame) - fl, text, 0, 1);
	cairn_buf_put_u8(&b, 0x81);
	cairn_buf_append(&b, frame, fl + fl2);
	put_buf("blob", "plain-zstd-two-frames", &b);

	static const uint8_t unknown[] = {0x85, 'x', 'y'};
	put("blob", "plain-unknown-codec", unknown, sizeof(unknown));
	cairn_codec_free(raw);
	cairn_codec_free(z);
}

/* --- configs ------------------------------------------------------------------ */

static void seeds_config(void)
{
	cairn_config c = {.format = 2,
			  .id_fn = CAIRN_CHUNK_ID_BLAKE3,
			  .chunk_min = 512u << 10,
			  .chunk_avg = 1u << 20,
			  .chunk_max = 8u << 20,
			  .pack_size = 16u << 20,
			  .zstd_level = 3,
			  .created_s = 1790000000};
	uint8_t out[CAIRN_CONFIG_MAX];
	fill(c.repo_id, 32, 7);
	put("config", "format2-blake3", out, cairn_config_encode(out, &c));
	c.format = 1;
	c.id_fn = CAIRN_CHUNK_ID_HMAC_SHA256;
	c.chunk_min = 16u << 10;
	c.chunk_avg = 64u << 10;
	c.chunk_max = 256u << 10;
	put("config", "format1-hmac", out, cairn_config_encode(out, &c));
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s <seeds dir>\n", argv[0]);
		return 2;
	}
	root = argv[1];
	if (mkdir(root, 0755) < 0 && errno != EEXIST) {
		perror(root);
		return 1;
	}
	seeds_tree();
	seeds_index();
	seeds_packs();
	seeds_keyfile();
	seeds_snapshot();
	seeds_blob();
	seeds_config();
	return 0;
}
