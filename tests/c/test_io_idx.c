/* test_io_idx.c: unit tests of the pure-C file-format layer (src/io): IDX (plain and gzip,
 * every element type, bad files, Fashion-MNIST when present) and the atomic file writer.
 * FASHION_MNIST=dir overrides the data set folder, default /usr/share/datasets/fashion-mnist;
 * that test is skipped when it is missing. Shared helpers and how to build: io_test.h. */
#define _POSIX_C_SOURCE 200809L
#include "io_test.h"

#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

/* gzip in memory with zlib (independent of the reader). */
static unsigned char *gzip_mem(const unsigned char *p, size_t n, size_t *outlen) {
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  size_t cap = deflateBound(&zs, n) + 64;
  unsigned char *o = malloc(cap);
  zs.next_in = (Bytef *)(uintptr_t)p;
  zs.avail_in = (uInt)n;
  zs.next_out = o;
  zs.avail_out = (uInt)cap;
  deflate(&zs, Z_FINISH);
  *outlen = cap - zs.avail_out;
  deflateEnd(&zs);
  return o;
}


/* ========================================================================================== */
/* IDX                                                                                         */
/* ========================================================================================== */

static size_t idx_hdr(unsigned char *b, int type, int rank, const uint32_t *dims) {
  b[0] = b[1] = 0;
  b[2] = (unsigned char)type;
  b[3] = (unsigned char)rank;
  for (int i = 0; i < rank; i++) {
    b[4 + 4 * i] = (unsigned char)(dims[i] >> 24);
    b[5 + 4 * i] = (unsigned char)(dims[i] >> 16);
    b[6 + 4 * i] = (unsigned char)(dims[i] >> 8);
    b[7 + 4 * i] = (unsigned char)dims[i];
  }
  return 4 + 4 * (size_t)rank;
}

static void test_idx_roundtrip(void) {
  int64_t shape[3] = {5, 7, 3};
  unsigned char data[105];
  for (int i = 0; i < 105; i++) data[i] = (unsigned char)rnd();
  const char *names[2] = {"a.idx", "a.idx.gz"};
  for (int k = 0; k < 2; k++) {
    const char *p = tpath(names[k]);
    int rc = fmt_idx_write_u8(p, 3, shape, data, err, sizeof err);
    CHECK(rc == 0, "idx write %s: %s", names[k], err);
    size_t len;
    unsigned char *raw = slurp(p, &len);
    CHECK(raw && (k == 0 ? len == 16 + 105 : (raw[0] == 0x1f && raw[1] == 0x8b)),
          "idx file %s has the expected form", names[k]);
    free(raw);
    fmt_array a;
    rc = fmt_idx_read(p, &a, err, sizeof err);
    CHECK(rc == 0 && a.dtype == FMT_U8 && a.ndim == 3 && a.shape[0] == 5 && a.shape[1] == 7 &&
              a.shape[2] == 3 && a.nbytes == 105 && memcmp(a.data, data, 105) == 0,
          "idx round trip %s: %s", names[k], err);
    fmt_array_free(&a);
  }
  void *m;
  size_t mlen;
  int rc = fmt_idx_write_u8_mem(3, shape, data, &m, &mlen, err, sizeof err);
  CHECK(rc == 0 && mlen == 121, "idx write mem");
  fmt_array a;
  rc = fmt_idx_read_mem(m, mlen, &a, err, sizeof err);
  CHECK(rc == 0 && a.nbytes == 105 && memcmp(a.data, data, 105) == 0, "idx mem round trip");
  fmt_array_free(&a);
  /* every truncation of a valid file is an error, never a crash */
  int all = 1;
  for (size_t n = 0; n < mlen; n++) {
    if (fmt_idx_read_mem(m, n, &a, err, sizeof err) == 0 || a.data) all = 0;
  }
  CHECK(all, "every truncated idx is rejected");
  /* the same through gzip */
  size_t glen;
  unsigned char *g = gzip_mem(m, mlen, &glen);
  rc = fmt_idx_read_mem(g, glen, &a, err, sizeof err);
  CHECK(rc == 0 && a.nbytes == 105 && memcmp(a.data, data, 105) == 0, "idx gzip mem: %s", err);
  fmt_array_free(&a);
  all = 1;
  for (size_t n = 0; n < glen; n++)
    if (fmt_idx_read_mem(g, n, &a, err, sizeof err) == 0) all = 0;
  CHECK(all, "every truncated gzip idx is rejected");
  free(g);
  fmt_free(m);
  /* labels: rank 1 */
  int64_t n1 = 10;
  unsigned char lab[10] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5};
  rc = fmt_idx_write_u8(tpath("l.idx"), 1, &n1, lab, err, sizeof err);
  rc |= fmt_idx_read(tpath("l.idx"), &a, err, sizeof err);
  CHECK(rc == 0 && a.ndim == 1 && a.shape[0] == 10 && memcmp(a.data, lab, 10) == 0, "idx labels");
  fmt_array_free(&a);
  /* zero-sized */
  int64_t z[3] = {0, 28, 28};
  rc = fmt_idx_write_u8(tpath("z.idx"), 3, z, NULL, err, sizeof err);
  rc |= fmt_idx_read(tpath("z.idx"), &a, err, sizeof err);
  CHECK(rc == 0 && a.shape[0] == 0 && a.shape[1] == 28 && a.nbytes == 0 && a.data, "idx empty: %s",
        err);
  fmt_array_free(&a);
  /* a zero dimension after huge ones is still empty, not an overflow (found by fuzzing) */
  int64_t zb[4] = {4000000000, 4000000000, 4000000000, 0};
  rc = fmt_idx_write_u8_mem(4, zb, NULL, &m, &mlen, err, sizeof err);
  rc |= fmt_idx_read_mem(m, mlen, &a, err, sizeof err);
  CHECK(rc == 0 && mlen == 20 && a.ndim == 4 && a.shape[0] == 4000000000 && a.nbytes == 0,
        "idx huge x 0: %s", err);
  fmt_array_free(&a);
  fmt_free(m);
  CHECK(stray_temps() == 0, "no temp files left");
}

static void test_idx_types(void) {
  unsigned char b[256];
  uint32_t d2[2] = {2, 3};
  fmt_array a;
  /* i8 */
  size_t h = idx_hdr(b, 0x09, 2, d2);
  signed char v8[6] = {-128, -1, 0, 1, 100, 127};
  memcpy(b + h, v8, 6);
  int rc = fmt_idx_read_mem(b, h + 6, &a, err, sizeof err);
  int ok = rc == 0 && a.dtype == FMT_I64 && a.shape[0] == 2 && a.shape[1] == 3;
  for (int i = 0; ok && i < 6; i++) ok = ((int64_t *)a.data)[i] == v8[i];
  CHECK(ok, "idx i8 -> i64: %s", err);
  fmt_array_free(&a);
  /* i16 */
  int16_t v16[6] = {-32768, -2, 0, 1, 300, 32767};
  h = idx_hdr(b, 0x0B, 2, d2);
  for (int i = 0; i < 6; i++) {
    b[h + 2 * i] = (unsigned char)((uint16_t)v16[i] >> 8);
    b[h + 2 * i + 1] = (unsigned char)v16[i];
  }
  rc = fmt_idx_read_mem(b, h + 12, &a, err, sizeof err);
  ok = rc == 0 && a.dtype == FMT_I64;
  for (int i = 0; ok && i < 6; i++) ok = ((int64_t *)a.data)[i] == v16[i];
  CHECK(ok, "idx i16 -> i64: %s", err);
  fmt_array_free(&a);
  /* i32 */
  int32_t v32[6] = {INT32_MIN, -70000, 0, 1, 70000, INT32_MAX};
  h = idx_hdr(b, 0x0C, 2, d2);
  for (int i = 0; i < 6; i++) {
    uint32_t u = (uint32_t)v32[i];
    b[h + 4 * i] = (unsigned char)(u >> 24);
    b[h + 4 * i + 1] = (unsigned char)(u >> 16);
    b[h + 4 * i + 2] = (unsigned char)(u >> 8);
    b[h + 4 * i + 3] = (unsigned char)u;
  }
  rc = fmt_idx_read_mem(b, h + 24, &a, err, sizeof err);
  ok = rc == 0 && a.dtype == FMT_I64;
  for (int i = 0; ok && i < 6; i++) ok = ((int64_t *)a.data)[i] == v32[i];
  CHECK(ok, "idx i32 -> i64: %s", err);
  fmt_array_free(&a);
  /* f32 */
  float vf[6] = {-1.5f, 0.0f, 3.25f, 1e-30f, -1e30f, 0.1f};
  h = idx_hdr(b, 0x0D, 2, d2);
  for (int i = 0; i < 6; i++) {
    uint32_t u;
    memcpy(&u, &vf[i], 4);
    for (int k = 0; k < 4; k++) b[h + 4 * i + k] = (unsigned char)(u >> (24 - 8 * k));
  }
  rc = fmt_idx_read_mem(b, h + 24, &a, err, sizeof err);
  ok = rc == 0 && a.dtype == FMT_F32 && memcmp(a.data, vf, 24) == 0;
  CHECK(ok, "idx f32: %s", err);
  fmt_array_free(&a);
  /* f64, gzipped, through a file */
  double vd[6] = {-1.5, 0.0, 3.25, 1e-300, -1e300, 0.1};
  h = idx_hdr(b, 0x0E, 2, d2);
  for (int i = 0; i < 6; i++) {
    uint64_t u;
    memcpy(&u, &vd[i], 8);
    for (int k = 0; k < 8; k++) b[h + 8 * i + k] = (unsigned char)(u >> (56 - 8 * k));
  }
  size_t glen;
  unsigned char *g = gzip_mem(b, h + 48, &glen);
  spit(tpath("f64.idx.gz"), g, glen);
  free(g);
  rc = fmt_idx_read(tpath("f64.idx.gz"), &a, err, sizeof err);
  ok = rc == 0 && a.dtype == FMT_F64 && memcmp(a.data, vd, 48) == 0;
  CHECK(ok, "idx f64 gzip file: %s", err);
  fmt_array_free(&a);
  /* rank 8 */
  uint32_t d8[8] = {1, 2, 1, 2, 1, 2, 1, 2};
  h = idx_hdr(b, 0x08, 8, d8);
  memset(b + h, 7, 16);
  rc = fmt_idx_read_mem(b, h + 16, &a, err, sizeof err);
  CHECK(rc == 0 && a.ndim == 8 && a.shape[7] == 2 && a.nbytes == 16, "idx rank 8: %s", err);
  fmt_array_free(&a);
}

static void test_idx_bad(void) {
  unsigned char b[256];
  uint32_t d[3] = {2, 2, 2};
  fmt_array a;
  size_t h = idx_hdr(b, 0x08, 3, d);
  memset(b + h, 1, 8);
  unsigned char c[256];
  memcpy(c, b, sizeof c);
  c[0] = 1;
  CHECK_ERR(fmt_idx_read_mem(c, h + 8, &a, err, sizeof err), "bad magic");
  memcpy(c, b, sizeof c);
  c[2] = 0x0A;
  CHECK_ERR(fmt_idx_read_mem(c, h + 8, &a, err, sizeof err), "unknown element type 0x0a");
  memcpy(c, b, sizeof c);
  c[3] = 0;
  CHECK_ERR(fmt_idx_read_mem(c, h + 8, &a, err, sizeof err), "rank 0 not in 1..8");
  c[3] = 9;
  CHECK_ERR(fmt_idx_read_mem(c, h + 8, &a, err, sizeof err), "rank 9 not in 1..8");
  CHECK_ERR(fmt_idx_read_mem(b, h + 7, &a, err, sizeof err), "truncated");
  CHECK_ERR(fmt_idx_read_mem(b, 9, &a, err, sizeof err), "truncated header");
  CHECK_ERR(fmt_idx_read_mem(b, 3, &a, err, sizeof err), "too short");
  CHECK_ERR(fmt_idx_read_mem(b, h + 9, &a, err, sizeof err), "1 trailing bytes");
  CHECK(a.data == NULL && a.ndim == 0, "failed read leaves out zeroed");
  /* a header claiming 4G x 4G x 4G elements in a tiny buffer: overflow, no allocation */
  uint32_t big[3] = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
  h = idx_hdr(c, 0x0E, 3, big);
  CHECK_ERR(fmt_idx_read_mem(c, h + 8, &a, err, sizeof err), "overflows");
  uint32_t big2[2] = {60000, 60000};
  h = idx_hdr(c, 0x0C, 2, big2);
  CHECK_ERR(fmt_idx_read_mem(c, h + 8, &a, err, sizeof err), "truncated");
  /* ... and through gzip: refused from the size bound before reading */
  size_t glen;
  unsigned char *g = gzip_mem(c, h + 8, &glen);
  CHECK_ERR(fmt_idx_read_mem(g, glen, &a, err, sizeof err), "more than");
  free(g);
  /* gzip: trailing data inside the stream, corrupt stream */
  h = idx_hdr(b, 0x08, 3, d);
  g = gzip_mem(b, h + 9, &glen);
  CHECK_ERR(fmt_idx_read_mem(g, glen, &a, err, sizeof err), "trailing data");
  free(g);
  g = gzip_mem(b, h + 8, &glen);
  g[glen - 6] ^= 0x55; /* the CRC */
  CHECK_ERR(fmt_idx_read_mem(g, glen, &a, err, sizeof err), "gzip");
  spit(tpath("bad.idx.gz"), g, glen - 4);
  CHECK_ERR(fmt_idx_read(tpath("bad.idx.gz"), &a, err, sizeof err), "bad.idx.gz");
  free(g);
  CHECK_ERR(fmt_idx_read(tpath("missing.idx"), &a, err, sizeof err), "cannot open");
  CHECK_ERR(fmt_idx_read(tmpdir, &a, err, sizeof err), "directory");
  /* writer */
  int64_t s[2] = {2, INT64_C(5000000000)};
  CHECK_ERR(fmt_idx_write_u8(tpath("w.idx"), 2, s, b, err, sizeof err), "not in 0..4294967295");
  CHECK_ERR(fmt_idx_write_u8(tpath("w.idx"), 0, s, b, err, sizeof err), "rank 0");
  int64_t s2[1] = {4};
  CHECK_ERR(fmt_idx_write_u8("/nonexistent-dir/x.idx", 1, s2, b, err, sizeof err), "cannot create");
}

static void test_fashion_mnist(void) {
  const char *dir = getenv("FASHION_MNIST");
  if (!dir) dir = "/usr/share/datasets/fashion-mnist";
  char p[4][512];
  const char *files[4] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                          "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
  for (int i = 0; i < 4; i++) snprintf(p[i], sizeof p[i], "%s/%s", dir, files[i]);
  if (access(p[0], R_OK) != 0) {
    printf("skip: Fashion-MNIST not found in %s\n", dir);
    return;
  }
  double t0 = now();
  fmt_array im, lb, tim, tlb;
  int rc = fmt_idx_read(p[0], &im, err, sizeof err);
  rc |= fmt_idx_read(p[1], &lb, err, sizeof err);
  rc |= fmt_idx_read(p[2], &tim, err, sizeof err);
  rc |= fmt_idx_read(p[3], &tlb, err, sizeof err);
  double dt = now() - t0;
  CHECK(rc == 0, "fashion-mnist loads: %s", err);
  if (rc == 0) {
    CHECK(im.dtype == FMT_U8 && im.ndim == 3 && im.shape[0] == 60000 && im.shape[1] == 28 &&
              im.shape[2] == 28, "train images are 60000x28x28 u8");
    CHECK(lb.dtype == FMT_U8 && lb.ndim == 1 && lb.shape[0] == 60000, "train labels are 60000");
    CHECK(tim.ndim == 3 && tim.shape[0] == 10000 && tlb.shape[0] == 10000, "t10k is 10000");
    int ok = 1, hist[10] = {0};
    for (int i = 0; i < 60000; i++) {
      unsigned l = ((unsigned char *)lb.data)[i];
      if (l > 9) ok = 0;
      else hist[l]++;
    }
    for (int k = 0; k < 10; k++) ok = ok && hist[k] == 6000;
    CHECK(ok, "train labels are 0..9, 6000 each");
    CHECK(((unsigned char *)lb.data)[0] == 9 && ((unsigned char *)tlb.data)[0] == 9,
          "first labels are 9 (ankle boot)");
    /* a real image has ink */
    long sum = 0;
    for (int i = 0; i < 784; i++) sum += ((unsigned char *)im.data)[i];
    CHECK(sum > 10000, "first image is not blank (%ld)", sum);
  }
  printf("fashion-mnist: 4 files in %.3f s\n", dt);
  CHECK(dt < 3.0, "fashion-mnist loads fast (%.3f s)", dt);
  fmt_array_free(&im);
  fmt_array_free(&lb);
  fmt_array_free(&tim);
  fmt_array_free(&tlb);
}

/* ========================================================================================== */

static void test_atomic(void) {
  const char *p = tpath("atomic.txt");
  int rc = fmt_write_file(p, "one", 3, err, sizeof err);
  rc |= fmt_write_file(p, "second", 6, err, sizeof err);
  size_t len;
  unsigned char *b = slurp(p, &len);
  CHECK(rc == 0 && b && len == 6 && !memcmp(b, "second", 6), "atomic replace: %s", err);
  free(b);
  fmt_atomic a;
  rc = fmt_atomic_open(&a, p, err, sizeof err);
  fputs("partial", a.f);
  fmt_atomic_abort(&a);
  b = slurp(p, &len);
  CHECK(rc == 0 && b && len == 6 && !memcmp(b, "second", 6), "aborted write leaves the target");
  free(b);
  CHECK(stray_temps() == 0, "abort removes the temp");
  CHECK_ERR(fmt_write_file("", "x", 1, err, sizeof err), "empty file name");
  /* err may be NULL */
  CHECK(fmt_write_file("/nonexistent-dir/x", "x", 1, NULL, 0) == -1, "NULL err buffer");
  CHECK(fmt_dtype_size(FMT_I64) == 8 && fmt_dtype_size(9) == 0 && !strcmp(fmt_dtype_name(2), "f32"),
        "dtype table");
}

int main(void) {
  static void (*const tests[])(void) = {test_atomic, test_idx_roundtrip, test_idx_types, test_idx_bad, test_fashion_mnist};
  return io_test_main("test_io_idx", tests, (int)(sizeof tests / sizeof *tests));
}
