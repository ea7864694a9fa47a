/* test_io.c: unit tests of the pure-C file-format layer (src/io: IDX, PNG, safetensors, GIF).
 *
 * Build and run from the repository root:
 *   mkdir -p build && gcc -std=c11 -Wall -Wextra -O2 -g -Isrc/io tests/c/test_io.c \
 *     src/io/idx.c src/io/png.c src/io/safetensors.c src/io/gif.c \
 *     $(pkg-config --cflags --libs libpng libcjson zlib) -lm -o build/test_io && build/test_io
 * (add -fsanitize=address,undefined to check memory; FASHION_MNIST=dir overrides the data set
 * folder, default /usr/share/datasets/fashion-mnist; the test is skipped when it is missing).
 * The last line printed is "N passed, M failed"; the exit status is non-zero on any failure. */
#define _POSIX_C_SOURCE 200809L
#include "fmt.h"

#include <dirent.h>
#include <math.h>
#include <png.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

static int npass, nfail;
static char tmpdir[256];
static char err[512];

#define CHECK(cond, ...)                                      \
  do {                                                        \
    if (cond) {                                               \
      npass++;                                                \
    } else {                                                  \
      nfail++;                                                \
      printf("FAIL %s:%d: ", __FILE__, __LINE__);             \
      printf(__VA_ARGS__);                                    \
      printf("\n");                                           \
    }                                                         \
  } while (0)

/* Expects a failure whose message contains `want`. */
#define CHECK_ERR(rc, want)                                                                \
  CHECK((rc) != 0 && strstr(err, want) != NULL, "expected an error with '%s', got rc=%d '%s'", \
        want, rc, err)

static const char *tpath(const char *name) {
  static char buf[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
  return buf[k];
}

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 11);
}

static unsigned char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(n > 0 ? (size_t)n : 1);
  if (b && n > 0 && fread(b, 1, (size_t)n, f) != (size_t)n) {
    free(b);
    b = NULL;
  }
  fclose(f);
  *len = (size_t)n;
  return b;
}

static int spit(const char *path, const void *b, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  size_t w = fwrite(b, 1, n, f);
  fclose(f);
  return w == n ? 0 : -1;
}

/* No "*.tmp.*" may be left in the temp folder after any write. */
static int stray_temps(void) {
  DIR *d = opendir(tmpdir);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d)))
    if (strstr(e->d_name, ".tmp.")) n++;
  if (d) closedir(d);
  return n;
}

static void rm_tmpdir(void) {
  DIR *d = opendir(tmpdir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlink(tpath(e->d_name));
  }
  if (d) closedir(d);
  rmdir(tmpdir);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

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
/* PNG                                                                                         */
/* ========================================================================================== */

static void test_png_roundtrip(void) {
  for (int c = 1; c <= 4; c++) {
    int h = 7, w = 13;
    size_t n = (size_t)c * h * w;
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)(rnd() % 256) / 255.0f;
    void *buf;
    size_t len;
    int rc = fmt_png_write_mem(x, c, h, w, &buf, &len, err, sizeof err);
    CHECK(rc == 0 && len > 8 && memcmp(buf, "\x89PNG", 4) == 0, "png encode c=%d: %s", c, err);
    fmt_array a;
    rc = fmt_png_read_mem(buf, len, &a, err, sizeof err);
    CHECK(rc == 0 && a.dtype == FMT_F32 && a.ndim == 3 && a.shape[0] == c && a.shape[1] == h &&
              a.shape[2] == w && memcmp(a.data, x, n * 4) == 0,
          "png round trip c=%d exact: %s", c, err);
    fmt_array_free(&a);
    /* every truncation fails cleanly */
    int all = 1;
    for (size_t k = 0; k < len; k++)
      if (fmt_png_read_mem(buf, k, &a, err, sizeof err) == 0) all = 0;
    CHECK(all, "every truncated png (c=%d) is rejected", c);
    /* through a file */
    rc = fmt_png_write(tpath("r.png"), x, c, h, w, err, sizeof err);
    rc |= fmt_png_read(tpath("r.png"), &a, err, sizeof err);
    CHECK(rc == 0 && memcmp(a.data, x, n * 4) == 0, "png file round trip c=%d: %s", c, err);
    fmt_array_free(&a);
    free(buf);
    free(x);
  }
  /* clamping and rounding */
  float v[8] = {-1.0f, 2.0f, NAN, INFINITY, 0.5f, 0.5f / 255.0f, 0.49f / 255.0f, 1.0f};
  void *buf;
  size_t len;
  int rc = fmt_png_write_mem(v, 1, 1, 8, &buf, &len, err, sizeof err);
  fmt_array a;
  rc |= fmt_png_read_mem(buf, len, &a, err, sizeof err);
  const float *o = a.data;
  CHECK(rc == 0 && o[0] == 0.0f && o[1] == 1.0f && o[2] == 0.0f && o[3] == 1.0f &&
            o[4] == 128.0f / 255.0f && o[5] == 1.0f / 255.0f && o[6] == 0.0f && o[7] == 1.0f,
        "png clamps to [0,1] and rounds: %g %g %g %g %g %g %g %g", o ? o[0] : -1, o ? o[1] : -1,
        o ? o[2] : -1, o ? o[3] : -1, o ? o[4] : -1, o ? o[5] : -1, o ? o[6] : -1, o ? o[7] : -1);
  fmt_array_free(&a);
  free(buf);
  CHECK_ERR(fmt_png_write_mem(v, 5, 1, 1, &buf, &len, err, sizeof err), "5 channels");
  CHECK_ERR(fmt_png_write_mem(v, 1, 0, 1, &buf, &len, err, sizeof err), "bad image size");
  CHECK_ERR(fmt_png_write("/nonexistent-dir/x.png", v, 1, 1, 1, err, sizeof err), "cannot create");
  CHECK(stray_temps() == 0, "no temp files left");
}

/* An independent PNG writer (libpng's own API) for the variants the reader must handle. */
typedef struct { unsigned char *b; size_t len, cap; } mbuf;
static void mb_write(png_structp png, png_bytep p, size_t n) {
  mbuf *m = png_get_io_ptr(png);
  if (m->len + n > m->cap) {
    m->cap = (m->len + n) * 2;
    m->b = realloc(m->b, m->cap);
  }
  memcpy(m->b + m->len, p, n);
  m->len += n;
}
static void mb_flush(png_structp png) { (void)png; }

static unsigned char *mkpng(int w, int h, int ct, int bd, int il, unsigned char **rows,
                            const png_color *pal, int npal, const unsigned char *trns, int ntrns,
                            const png_color_16 *trns_color, size_t *len) {
  mbuf m = {0};
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    free(m.b);
    return NULL;
  }
  png_set_write_fn(png, &m, mb_write, mb_flush);
  png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, bd, ct, il, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (pal) png_set_PLTE(png, info, pal, npal);
  if (trns || trns_color) png_set_tRNS(png, info, trns, ntrns, trns_color);
  png_write_info(png, info);
  png_write_image(png, rows);
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  *len = m.len;
  return m.b;
}

static void test_png_variants(void) {
  fmt_array a;
  size_t len;
  int rc;
  /* 16-bit gray keeps its precision */
  {
    uint16_t v[6] = {0, 1, 65535, 32768, 12345, 54321};
    unsigned char r0[6], r1[6], *rows[2] = {r0, r1};
    for (int i = 0; i < 3; i++) {
      r0[2 * i] = (unsigned char)(v[i] >> 8), r0[2 * i + 1] = (unsigned char)v[i];
      r1[2 * i] = (unsigned char)(v[3 + i] >> 8), r1[2 * i + 1] = (unsigned char)v[3 + i];
    }
    unsigned char *p = mkpng(3, 2, PNG_COLOR_TYPE_GRAY, 16, 0, rows, NULL, 0, NULL, 0, NULL, &len);
    rc = fmt_png_read_mem(p, len, &a, err, sizeof err);
    int ok = rc == 0 && a.shape[0] == 1 && a.shape[1] == 2 && a.shape[2] == 3;
    for (int i = 0; ok && i < 6; i++)
      ok = ((float *)a.data)[i] == (float)((double)v[i] / 65535.0);
    CHECK(ok, "png 16-bit gray: %s", err);
    fmt_array_free(&a);
    free(p);
  }
  /* 16-bit RGBA */
  {
    unsigned char r0[16], *rows[1] = {r0};
    for (int i = 0; i < 16; i++) r0[i] = (unsigned char)(i * 17);
    unsigned char *p = mkpng(2, 1, PNG_COLOR_TYPE_RGB_ALPHA, 16, 0, rows, NULL, 0, NULL, 0, NULL, &len);
    rc = fmt_png_read_mem(p, len, &a, err, sizeof err);
    int ok = rc == 0 && a.shape[0] == 4 && a.shape[1] == 1 && a.shape[2] == 2;
    for (int ch = 0; ok && ch < 4; ch++)
      for (int x = 0; ok && x < 2; x++) {
        const unsigned char *s = r0 + 8 * x + 2 * ch;
        ok = ((float *)a.data)[ch * 2 + x] == (float)((double)(s[0] << 8 | s[1]) / 65535.0);
      }
    CHECK(ok, "png 16-bit RGBA: %s", err);
    fmt_array_free(&a);
    free(p);
  }
  /* palette, 2-bit, no tRNS -> RGB */
  png_color pal[4] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {10, 20, 30}};
  {
    unsigned char r0[1] = {0x1B}, *rows[1] = {r0}; /* indices 0 1 2 3 */
    unsigned char *p = mkpng(4, 1, PNG_COLOR_TYPE_PALETTE, 2, 0, rows, pal, 4, NULL, 0, NULL, &len);
    rc = fmt_png_read_mem(p, len, &a, err, sizeof err);
    int ok = rc == 0 && a.shape[0] == 3 && a.shape[2] == 4;
    for (int ch = 0; ok && ch < 3; ch++)
      for (int x = 0; ok && x < 4; x++) {
        unsigned want = ch == 0 ? pal[x].red : ch == 1 ? pal[x].green : pal[x].blue;
        ok = ((float *)a.data)[ch * 4 + x] == (float)want / 255.0f;
      }
    CHECK(ok, "png palette 2-bit -> RGB: %s", err);
    fmt_array_free(&a);
    free(p);
  }
  /* palette 8-bit with tRNS -> RGBA */
  {
    unsigned char r0[4] = {0, 1, 2, 3}, *rows[1] = {r0}, trns[2] = {0, 128};
    unsigned char *p = mkpng(4, 1, PNG_COLOR_TYPE_PALETTE, 8, 0, rows, pal, 4, trns, 2, NULL, &len);
    rc = fmt_png_read_mem(p, len, &a, err, sizeof err);
    const float *o = a.data;
    CHECK(rc == 0 && a.shape[0] == 4 && o[12] == 0.0f && o[13] == 128.0f / 255.0f && o[14] == 1.0f &&
              o[15] == 1.0f && o[0] == 1.0f && o[7] == 20.0f / 255.0f && o[11] == 30.0f / 255.0f,
          "png palette + tRNS -> RGBA: %s", err);
    fmt_array_free(&a);
    free(p);
  }
  /* gray 1-bit and 4-bit */
  {
    unsigned char r0[1] = {0xA0}, *rows[1] = {r0}; /* 1 0 1 0 */
    unsigned char *p = mkpng(4, 1, PNG_COLOR_TYPE_GRAY, 1, 0, rows, NULL, 0, NULL, 0, NULL, &len);
    rc = fmt_png_read_mem(p, len, &a, err, sizeof err);
    const float *o = a.data;
    CHECK(rc == 0 && a.shape[0] == 1 && o[0] == 1.0f && o[1] == 0.0f && o[2] == 1.0f && o[3] == 0.0f,
          "png gray 1-bit: %s", err);
    fmt_array_free(&a);
    free(p);
    unsigned char q0[2] = {0x0F, 0x5A}, *qrows[1] = {q0}; /* 0 15 5 10 */
    p = mkpng(4, 1, PNG_COLOR_TYPE_GRAY, 4, 0, qrows, NULL, 0, NULL, 0, NULL, &len);
    rc = fmt_png_read_mem(p, len, &a, err, sizeof err);
    o = a.data;
    CHECK(rc == 0 && o[0] == 0.0f && o[1] == 1.0f && o[2] == 85.0f / 255.0f && o[3] == 170.0f / 255.0f,
          "png gray 4-bit: %s", err);
    fmt_array_free(&a);
    free(p);
  }
  /* gray 8-bit + tRNS -> gray+alpha; RGB + tRNS -> RGBA */
  {
    unsigned char r0[3] = {7, 8, 7}, *rows[1] = {r0};
    png_color_16 tc = {0, 0, 0, 0, 7};
    unsigned char *p = mkpng(3, 1, PNG_COLOR_TYPE_GRAY, 8, 0, rows, NULL, 0, NULL, 0, &tc, &len);
    rc = fmt_png_read_mem(p, len, &a, err, sizeof err);
    const float *o = a.data;
    CHECK(rc == 0 && a.shape[0] == 2 && o[3] == 0.0f && o[4] == 1.0f && o[5] == 0.0f &&
              o[1] == 8.0f / 255.0f, "png gray + tRNS -> 2 channels: %s", err);
    fmt_array_free(&a);
    free(p);
    unsigned char s0[6] = {1, 2, 3, 4, 5, 6}, *srows[1] = {s0};
    png_color_16 tc2 = {0, 4, 5, 6, 0};
    p = mkpng(2, 1, PNG_COLOR_TYPE_RGB, 8, 0, srows, NULL, 0, NULL, 0, &tc2, &len);
    rc = fmt_png_read_mem(p, len, &a, err, sizeof err);
    o = a.data;
    CHECK(rc == 0 && a.shape[0] == 4 && o[6] == 1.0f && o[7] == 0.0f, "png RGB + tRNS -> RGBA: %s",
          err);
    fmt_array_free(&a);
    free(p);
  }
  /* interlaced (Adam7) equals non-interlaced */
  {
    int w = 19, h = 11;
    unsigned char *px = malloc((size_t)w * h * 3), *rows[11];
    for (int i = 0; i < w * h * 3; i++) px[i] = (unsigned char)rnd();
    for (int y = 0; y < h; y++) rows[y] = px + (size_t)y * w * 3;
    size_t l1, l2;
    unsigned char *p1 = mkpng(w, h, PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_ADAM7, rows, NULL, 0, NULL,
                              0, NULL, &l1);
    unsigned char *p2 = mkpng(w, h, PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_NONE, rows, NULL, 0, NULL,
                              0, NULL, &l2);
    fmt_array b;
    rc = fmt_png_read_mem(p1, l1, &a, err, sizeof err);
    rc |= fmt_png_read_mem(p2, l2, &b, err, sizeof err);
    int ok = rc == 0 && a.nbytes == b.nbytes && memcmp(a.data, b.data, a.nbytes) == 0;
    for (int x = 0; ok && x < w; x++) /* spot check planar layout: pixel (y=3, x) */
      ok = ((float *)a.data)[(size_t)h * w + 3 * w + x] == (float)px[3 * w * 3 + 3 * x + 1] / 255.0f;
    CHECK(ok, "png interlaced == plain: %s", err);
    fmt_array_free(&b);
    int all = 1;
    for (size_t k = 0; k < l1; k += 3)
      if (fmt_png_read_mem(p1, k, &b, err, sizeof err) == 0) all = 0;
    CHECK(all, "truncated interlaced pngs are rejected");
    fmt_array_free(&a);
    fmt_array_free(&b);
    free(p1);
    free(p2);
    free(px);
  }
}

static void test_png_bad(void) {
  float x[12] = {0};
  void *buf;
  size_t len;
  fmt_array a;
  fmt_png_write_mem(x, 3, 2, 2, &buf, &len, err, sizeof err);
  unsigned char *b = buf;
  CHECK_ERR(fmt_png_read_mem(b, 5, &a, err, sizeof err), "too short");
  CHECK_ERR(fmt_png_read_mem("GIF89a......", 12, &a, err, sizeof err), "bad signature");
  b[20] ^= 1; /* inside IHDR: its CRC no longer matches */
  CHECK_ERR(fmt_png_read_mem(b, len, &a, err, sizeof err), "CRC");
  printf("  (libpng says: %s)\n", err);
  b[20] ^= 1;
  CHECK_ERR(fmt_png_read_mem(b, len - 13, &a, err, sizeof err), "png: ");
  /* damage IDAT's compressed bytes but fix the CRC: zlib must complain */
  size_t p = 8;
  while (p + 8 < len && memcmp(b + p + 4, "IDAT", 4) != 0) p += 12 + ((size_t)b[p] << 24 | b[p + 1] << 16 | b[p + 2] << 8 | b[p + 3]);
  size_t dl = (size_t)b[p] << 24 | b[p + 1] << 16 | b[p + 2] << 8 | b[p + 3];
  for (size_t i = 2; i < dl; i++) b[p + 8 + i] ^= 0xA5;
  uint32_t crc = (uint32_t)crc32(0, b + p + 4, (uInt)(dl + 4));
  b[p + 8 + dl] = (unsigned char)(crc >> 24), b[p + 9 + dl] = (unsigned char)(crc >> 16);
  b[p + 10 + dl] = (unsigned char)(crc >> 8), b[p + 11 + dl] = (unsigned char)crc;
  CHECK_ERR(fmt_png_read_mem(b, len, &a, err, sizeof err), "png: ");
  printf("  (libpng says: %s)\n", err);
  free(buf);
  /* a tiny file claiming 1000000 x 1000000 RGBA: refused before any big allocation */
  {
    unsigned char png[80] = "\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\x0f\x42\x40\0\x0f\x42\x40\x08\x06\0\0\0";
    uint32_t c = (uint32_t)crc32(0, png + 12, 17);
    png[29] = (unsigned char)(c >> 24), png[30] = (unsigned char)(c >> 16);
    png[31] = (unsigned char)(c >> 8), png[32] = (unsigned char)c;
    memcpy(png + 33, "\0\0\0\0IDAT\x35\xaf\x06\x1e\0\0\0\0IEND\xae\x42\x60\x82", 24);
    CHECK_ERR(fmt_png_read_mem(png, 57, &a, err, sizeof err), "cannot fit");
    spit(tpath("huge.png"), png, 57);
    CHECK_ERR(fmt_png_read(tpath("huge.png"), &a, err, sizeof err), "cannot fit");
  }
  CHECK_ERR(fmt_png_read(tpath("missing.png"), &a, err, sizeof err), "cannot open");
  spit(tpath("not.png"), "hello world", 11);
  CHECK_ERR(fmt_png_read(tpath("not.png"), &a, err, sizeof err), "not a PNG");
}

/* ========================================================================================== */
/* safetensors                                                                                 */
/* ========================================================================================== */

/* An independent minimal writer, straight from the format description: u64 LE header length,
 * the JSON header as given, then the data buffer as given. */
static unsigned char *st_make(const char *json, const void *data, size_t dlen, size_t *len) {
  size_t n = strlen(json);
  unsigned char *b = malloc(8 + n + dlen + 1);
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)n >> (8 * i));
  memcpy(b + 8, json, n);
  if (dlen) memcpy(b + 8 + n, data, dlen);
  *len = 8 + n + dlen;
  return b;
}

static const fmt_st_tensor *st_find(const fmt_st_file *f, const char *name) {
  for (size_t i = 0; i < f->ntensors; i++)
    if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
  return NULL;
}

static void test_st_independent(void) {
  /* Every file dtype, tensors stored in an order unrelated to their names, no padding. */
  unsigned char d[256];
  size_t o = 0;
  /* F16: 1, -2, 65504, 2^-24 (smallest subnormal), inf, 2^-14 (smallest normal) */
  uint16_t f16[6] = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x7C00, 0x0400};
  size_t f16_at = o;
  for (int i = 0; i < 6; i++) d[o++] = (unsigned char)f16[i], d[o++] = (unsigned char)(f16[i] >> 8);
  /* BF16: 1, -3.5 */
  uint16_t bf[2] = {0x3F80, 0xC060};
  size_t bf_at = o;
  for (int i = 0; i < 2; i++) d[o++] = (unsigned char)bf[i], d[o++] = (unsigned char)(bf[i] >> 8);
  /* I32: -5, INT32_MAX */
  int32_t i32[2] = {-5, INT32_MAX};
  size_t i32_at = o;
  for (int i = 0; i < 2; i++)
    for (int k = 0; k < 4; k++) d[o++] = (unsigned char)((uint32_t)i32[i] >> (8 * k));
  /* I16: -300 */
  size_t i16_at = o;
  d[o++] = (unsigned char)((uint16_t)-300), d[o++] = (unsigned char)((uint16_t)-300 >> 8);
  /* I8: -1, 5 */
  size_t i8_at = o;
  d[o++] = 0xFF, d[o++] = 5;
  /* BOOL: 0, 1, 2 (nonzero -> 1) */
  size_t bo_at = o;
  d[o++] = 0, d[o++] = 1, d[o++] = 2;
  /* U8 */
  size_t u8_at = o;
  d[o++] = 200;
  /* F64: -0.25 (LE) */
  size_t f64_at = o;
  double dv = -0.25;
  uint64_t u64;
  memcpy(&u64, &dv, 8);
  for (int k = 0; k < 8; k++) d[o++] = (unsigned char)(u64 >> (8 * k));
  /* I64: -7 */
  size_t i64_at = o;
  int64_t iv = -7;
  memcpy(&u64, &iv, 8);
  for (int k = 0; k < 8; k++) d[o++] = (unsigned char)(u64 >> (8 * k));
  /* F32: 1.5, scalar (shape []) */
  size_t f32_at = o;
  float fv = 1.5f;
  uint32_t u32;
  memcpy(&u32, &fv, 4);
  for (int k = 0; k < 4; k++) d[o++] = (unsigned char)(u32 >> (8 * k));
  /* an empty tensor at the end */
  char json[2048];
  snprintf(json, sizeof json,
           "{\"z_half\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[%zu,%zu]},"
           "\"bf\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[%zu,%zu]},"
           "\"__metadata__\":{\"format\":\"pt\",\"note\":\"h\\u00e9 \\\"q\\\"\"},"
           "\"i32\":{\"dtype\":\"I32\",\"shape\":[1,2],\"data_offsets\":[%zu,%zu]},"
           "\"i16\":{\"dtype\":\"I16\",\"shape\":[1],\"data_offsets\":[%zu,%zu]},"
           "\"i8\":{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[%zu,%zu]},"
           "\"flags\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[%zu,%zu]},"
           "\"u8\":{\"dtype\":\"U8\",\"shape\":[1,1,1],\"data_offsets\":[%zu,%zu]},"
           "\"f64\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[%zu,%zu]},"
           "\"i64\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[%zu,%zu]},"
           "\"a_scalar\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[%zu,%zu]},"
           "\"empty\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[%zu,%zu]}}",
           f16_at, f16_at + 12, bf_at, bf_at + 4, i32_at, i32_at + 8, i16_at, i16_at + 2, i8_at,
           i8_at + 2, bo_at, bo_at + 3, u8_at, u8_at + 1, f64_at, f64_at + 8, i64_at, i64_at + 8,
           f32_at, f32_at + 4, o, o);
  size_t len;
  unsigned char *file = st_make(json, d, o, &len);
  fmt_st_file f;
  int rc = fmt_st_read_mem(file, len, &f, err, sizeof err);
  CHECK(rc == 0 && f.ntensors == 11 && f.nmeta == 2, "independent file loads: %s", err);
  if (rc == 0) {
    int sorted = 1;
    for (size_t i = 1; i < f.ntensors; i++)
      sorted = sorted && strcmp(f.tensors[i - 1].name, f.tensors[i].name) < 0;
    CHECK(sorted, "tensors come sorted by name");
    const fmt_st_tensor *t = st_find(&f, "z_half");
    const float *fp = t ? t->data : NULL;
    CHECK(t && t->dtype == FMT_F32 && !strcmp(t->file_dtype, "F16") && t->ndim == 2 &&
              t->shape[1] == 3 && fp[0] == 1.0f && fp[1] == -2.0f && fp[2] == 65504.0f &&
              fp[3] == ldexpf(1.0f, -24) && isinf(fp[4]) && fp[5] == ldexpf(1.0f, -14),
          "F16 -> f32");
    t = st_find(&f, "bf");
    fp = t ? t->data : NULL;
    CHECK(t && t->dtype == FMT_F32 && fp[0] == 1.0f && fp[1] == -3.5f, "BF16 -> f32");
    t = st_find(&f, "i32");
    CHECK(t && t->dtype == FMT_I64 && ((int64_t *)t->data)[0] == -5 &&
              ((int64_t *)t->data)[1] == INT32_MAX, "I32 -> i64");
    t = st_find(&f, "i16");
    CHECK(t && t->dtype == FMT_I64 && ((int64_t *)t->data)[0] == -300, "I16 -> i64");
    t = st_find(&f, "i8");
    CHECK(t && t->dtype == FMT_I64 && ((int64_t *)t->data)[0] == -1 && ((int64_t *)t->data)[1] == 5,
          "I8 -> i64");
    t = st_find(&f, "flags");
    const unsigned char *bp = t ? t->data : NULL;
    CHECK(t && t->dtype == FMT_U8 && bp[0] == 0 && bp[1] == 1 && bp[2] == 1, "BOOL -> u8 0/1");
    t = st_find(&f, "u8");
    CHECK(t && t->dtype == FMT_U8 && t->ndim == 3 && ((unsigned char *)t->data)[0] == 200, "U8");
    t = st_find(&f, "f64");
    CHECK(t && t->dtype == FMT_F64 && ((double *)t->data)[0] == -0.25, "F64");
    t = st_find(&f, "i64");
    CHECK(t && t->dtype == FMT_I64 && ((int64_t *)t->data)[0] == -7, "I64");
    t = st_find(&f, "a_scalar");
    CHECK(t && t->ndim == 0 && t->nbytes == 4 && ((float *)t->data)[0] == 1.5f, "F32 scalar");
    t = st_find(&f, "empty");
    CHECK(t && t->ndim == 2 && t->shape[0] == 0 && t->nbytes == 0 && t->data, "empty tensor");
    CHECK(!strcmp(f.meta[0].key, "format") && !strcmp(f.meta[0].value, "pt") &&
              !strcmp(f.meta[1].key, "note") && !strcmp(f.meta[1].value, "h\xc3\xa9 \"q\""),
          "metadata (sorted, unescaped)");
  }
  fmt_st_free(&f);
  /* the same bytes from a file */
  spit(tpath("ind.safetensors"), file, len);
  rc = fmt_st_read(tpath("ind.safetensors"), &f, err, sizeof err);
  CHECK(rc == 0 && f.ntensors == 11 && st_find(&f, "i8") &&
            ((int64_t *)st_find(&f, "i8")->data)[0] == -1, "independent file from a path: %s", err);
  fmt_st_free(&f);
  /* every truncation is rejected */
  int all = 1;
  for (size_t k = 0; k < len; k++) {
    if (fmt_st_read_mem(file, k, &f, err, sizeof err) == 0) all = 0;
    if (f.ntensors || f.tensors) all = 0;
  }
  CHECK(all, "every truncated safetensors is rejected");
  free(file);
  /* trailing spaces after the JSON (padding) are fine */
  file = st_make("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}     ", "xy", 2, &len);
  rc = fmt_st_read_mem(file, len, &f, err, sizeof err);
  CHECK(rc == 0 && f.ntensors == 1, "padded header: %s", err);
  fmt_st_free(&f);
  free(file);
  /* no tensors at all */
  file = st_make("{}", NULL, 0, &len);
  rc = fmt_st_read_mem(file, len, &f, err, sizeof err);
  CHECK(rc == 0 && f.ntensors == 0 && f.nmeta == 0, "empty file: %s", err);
  fmt_st_free(&f);
  free(file);
}

/* One file breaking one rule; the message must name it. */
static void st_bad(const char *json, const void *data, size_t dlen, const char *want) {
  size_t len;
  unsigned char *b = st_make(json, data, dlen, &len);
  fmt_st_file f;
  int rc = fmt_st_read_mem(b, len, &f, err, sizeof err);
  CHECK(rc != 0 && strstr(err, want) && f.tensors == NULL,
        "rule '%s' for %.60s: rc=%d '%s'", want, json, rc, err);
  free(b);
}

static void test_st_rules(void) {
  fmt_st_file f;
  const char z[64] = {0};
  /* 1. the 8-byte length */
  CHECK_ERR(fmt_st_read_mem("\x02\0\0", 3, &f, err, sizeof err), "too small for the 8-byte header length");
  /* 2. the limit */
  unsigned char big[16] = {0x01, 0xE1, 0xF5, 0x05, 0, 0, 0, 0}; /* 100000001 */
  CHECK_ERR(fmt_st_read_mem(big, 16, &f, err, sizeof err), "exceeds the 100 MB limit");
  /* 3. within the file */
  unsigned char past[12] = {100, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' '};
  CHECK_ERR(fmt_st_read_mem(past, 12, &f, err, sizeof err), "extends past the end of the file");
  /* 4. UTF-8 */
  st_bad("{\"a\xff\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", z, 1, "not valid UTF-8");
  st_bad("{\"\xed\xa0\x80\":{}}", NULL, 0, "not valid UTF-8"); /* a surrogate */
  st_bad("{\"\xc0\xaf\":{}}", NULL, 0, "not valid UTF-8");     /* overlong */
  /* 5. JSON object */
  st_bad("{\"a\":", NULL, 0, "not valid JSON");
  st_bad("[1,2]", NULL, 0, "not a JSON object");
  st_bad("{} x", NULL, 0, "trailing characters");
  st_bad("{\"a\x01\":{}}", NULL, 0, "control character");
  st_bad("{\"a\\u0000b\":{}}", NULL, 0, "\\u0000");
  st_bad("{\"a\":1}", NULL, 0, "entry is not an object");
  /* 6. metadata */
  st_bad("{\"__metadata__\":{\"k\":1}}", NULL, 0, "__metadata__ value of 'k' is not a string");
  st_bad("{\"__metadata__\":[\"k\"]}", NULL, 0, "__metadata__ is not an object");
  st_bad("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", NULL, 0, "duplicate __metadata__ key 'k'");
  st_bad("{\"__metadata__\":{},\"__metadata__\":{}}", NULL, 0, "duplicate key '__metadata__'");
  /* 7. entries */
  st_bad("{\"a\":{\"shape\":[1],\"data_offsets\":[0,1]}}", z, 1, "missing or non-string \"dtype\"");
  st_bad("{\"a\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,1]}}", z, 1, "unknown dtype 'Q4'");
  st_bad("{\"a\":{\"dtype\":\"U8\",\"data_offsets\":[0,1]}}", z, 1, "missing or non-array \"shape\"");
  st_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}", z, 1,
         "shape[0] is not a non-negative integer");
  st_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1.5],\"data_offsets\":[0,1]}}", z, 1,
         "shape[1] is not a non-negative integer");
  st_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[\"1\"],\"data_offsets\":[0,1]}}", z, 1,
         "shape[0] is not a non-negative integer");
  st_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", z, 1,
         "at most 8");
  st_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0]}}", z, 1,
         "\"data_offsets\" must be [begin, end]");
  st_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,-1]}}", z, 1,
         "\"data_offsets\" must be [begin, end]");
  st_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[1,0]}}", z, 1, "end before they begin");
  st_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", z, 4,
         "span 4 bytes but shape [2] of F32 needs 8");
  st_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4194304,4194304,4194304],\"data_offsets\":[0,4]}}", z, 4,
         "overflows");
  st_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}}", z, 4,
         "lie outside the data buffer (4 bytes)");
  /* 8. duplicates */
  st_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
         "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", z, 2, "duplicate tensor name 'a'");
  /* 9. contiguous from 0 */
  st_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", z, 2,
         "hole of 1 bytes in the data buffer at offset 0");
  st_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
         "\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[2,3]}}", z, 3, "hole of 1 bytes");
  st_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
         "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[1,3]}}", z, 3, "overlaps");
  st_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[2,2]}}", z, 4, "overlaps");
  /* 10. trailing */
  st_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", z, 3,
         "2 trailing bytes after the last tensor");
  st_bad("{}", z, 1, "1 trailing bytes");
  /* file-level */
  CHECK_ERR(fmt_st_read(tpath("missing.safetensors"), &f, err, sizeof err), "cannot open");
  CHECK_ERR(fmt_st_read(tmpdir, &f, err, sizeof err), "not a regular file");
}

static void test_st_roundtrip(void) {
  float a[6] = {1, -2, 3.5f, 1e-20f, -0.0f, 1e30f};
  double b[3] = {0.1, -1e300, 42};
  int64_t c[4] = {INT64_MIN, -1, 0, INT64_MAX};
  unsigned char u[5] = {0, 1, 127, 128, 255};
  double s = 3.0;
  int64_t sa[2] = {2, 3}, sb[1] = {3}, sc[4] = {1, 1, 2, 2}, su[8] = {1, 1, 1, 1, 1, 1, 1, 5},
          se[2] = {0, 7};
  fmt_st_entry e[6] = {
      {"weight", FMT_F32, 2, sa, a}, {"bias", FMT_F64, 1, sb, b},   {"idx", FMT_I64, 4, sc, c},
      {"bytes", FMT_U8, 8, su, u},   {"scalar", FMT_F64, 0, NULL, &s}, {"empty", FMT_F32, 2, se, NULL},
  };
  const char *mk[2] = {"z", "format"}, *mv[2] = {"last \"quoted\"\n", "pt"};
  void *m1, *m2;
  size_t l1, l2;
  int rc = fmt_st_write_mem(e, 6, mk, mv, 2, &m1, &l1, err, sizeof err);
  CHECK(rc == 0, "st write mem: %s", err);
  if (rc != 0) return;
  uint64_t hn = 0;
  for (int i = 7; i >= 0; i--) hn = hn << 8 | ((unsigned char *)m1)[i];
  CHECK((8 + hn) % 8 == 0, "header padded to 8");
  char *hdr = strndup((char *)m1 + 8, (size_t)hn);
  const char *pb = strstr(hdr, "\"bias\""), *pw = strstr(hdr, "\"weight\""),
             *pm = strstr(hdr, "\"__metadata__\"");
  CHECK(pm && pb && pw && pm < pb && pb < pw && hdr[hn - 1] == (hn % 8 ? ' ' : hdr[hn - 1]),
        "header: metadata first, then names sorted: %s", hdr);
  CHECK(strstr(hdr, "\"bias\":{\"dtype\":\"F64\",\"shape\":[3],\"data_offsets\":[0,24]}") != NULL,
        "bias first at offset 0");
  free(hdr);
  /* deterministic: entries given in another order produce the same bytes */
  fmt_st_entry r[6];
  for (int i = 0; i < 6; i++) r[i] = e[5 - i];
  const char *mk2[2] = {"format", "z"}, *mv2[2] = {"pt", "last \"quoted\"\n"};
  rc = fmt_st_write_mem(r, 6, mk2, mv2, 2, &m2, &l2, err, sizeof err);
  CHECK(rc == 0 && l1 == l2 && memcmp(m1, m2, l1) == 0, "writer is deterministic");
  fmt_free(m2);
  fmt_st_file f;
  rc = fmt_st_read_mem(m1, l1, &f, err, sizeof err);
  CHECK(rc == 0 && f.ntensors == 6 && f.nmeta == 2, "st round trip: %s", err);
  if (rc == 0) {
    const fmt_st_tensor *t = st_find(&f, "weight");
    CHECK(t && t->dtype == FMT_F32 && t->ndim == 2 && t->shape[0] == 2 && memcmp(t->data, a, 24) == 0,
          "f32 round trip");
    t = st_find(&f, "bias");
    CHECK(t && t->dtype == FMT_F64 && memcmp(t->data, b, 24) == 0, "f64 round trip");
    t = st_find(&f, "idx");
    CHECK(t && t->dtype == FMT_I64 && t->ndim == 4 && memcmp(t->data, c, 32) == 0, "i64 round trip");
    t = st_find(&f, "bytes");
    CHECK(t && t->dtype == FMT_U8 && t->ndim == 8 && t->shape[7] == 5 && memcmp(t->data, u, 5) == 0,
          "u8 rank 8 round trip");
    t = st_find(&f, "scalar");
    CHECK(t && t->ndim == 0 && ((double *)t->data)[0] == 3.0, "scalar round trip");
    t = st_find(&f, "empty");
    CHECK(t && t->shape[0] == 0 && t->shape[1] == 7 && t->nbytes == 0, "empty round trip");
    CHECK(!strcmp(f.meta[1].key, "z") && !strcmp(f.meta[1].value, "last \"quoted\"\n"),
          "metadata round trip");
  }
  fmt_st_free(&f);
  /* through a file, replacing an older one atomically */
  const char *p = tpath("m.safetensors");
  spit(p, "old", 3);
  rc = fmt_st_write(p, e, 6, mk, mv, 2, err, sizeof err);
  size_t flen;
  unsigned char *fb = slurp(p, &flen);
  CHECK(rc == 0 && fb && flen == l1 && memcmp(fb, m1, l1) == 0, "file equals the memory image: %s", err);
  free(fb);
  rc = fmt_st_read(p, &f, err, sizeof err);
  CHECK(rc == 0 && f.ntensors == 6 && memcmp(st_find(&f, "idx")->data, c, 32) == 0,
        "st file round trip: %s", err);
  fmt_st_free(&f);
  fmt_free(m1);
  /* a failed write leaves the old file alone and no temp behind */
  fmt_st_entry dup[2] = {{"x", FMT_U8, 1, su, u}, {"x", FMT_U8, 1, su, u}};
  CHECK_ERR(fmt_st_write(p, dup, 2, NULL, NULL, 0, err, sizeof err), "duplicate tensor name 'x'");
  fb = slurp(p, &flen);
  CHECK(fb && flen == l1, "old file intact after a failed write");
  free(fb);
  CHECK(stray_temps() == 0, "no temp files left");
  /* writer validation */
  fmt_st_entry bad1 = {"__metadata__", FMT_U8, 1, su, u};
  CHECK_ERR(fmt_st_write_mem(&bad1, 1, NULL, NULL, 0, &m1, &l1, err, sizeof err), "cannot name a tensor");
  fmt_st_entry bad2 = {"a\xff", FMT_U8, 1, su, u};
  CHECK_ERR(fmt_st_write_mem(&bad2, 1, NULL, NULL, 0, &m1, &l1, err, sizeof err), "not valid UTF-8");
  fmt_st_entry bad3 = {"a", 7, 1, su, u};
  CHECK_ERR(fmt_st_write_mem(&bad3, 1, NULL, NULL, 0, &m1, &l1, err, sizeof err), "cannot be written");
  int64_t neg = -1;
  fmt_st_entry bad4 = {"a", FMT_U8, 1, &neg, u};
  CHECK_ERR(fmt_st_write_mem(&bad4, 1, NULL, NULL, 0, &m1, &l1, err, sizeof err), "negative");
  fmt_st_entry bad5 = {"a", FMT_U8, 1, su, NULL};
  CHECK_ERR(fmt_st_write_mem(&bad5, 1, NULL, NULL, 0, &m1, &l1, err, sizeof err), "no data");
  const char *dk[2] = {"k", "k"};
  CHECK_ERR(fmt_st_write_mem(e, 1, dk, dk, 2, &m1, &l1, err, sizeof err), "duplicate metadata key");
  CHECK_ERR(fmt_st_write("/nonexistent-dir/x.safetensors", e, 1, NULL, NULL, 0, err, sizeof err),
            "cannot create");
  /* names with quotes, backslashes and control characters survive the JSON */
  fmt_st_entry odd = {"a\"b\\c\td\x01 \xc3\xa9", FMT_U8, 1, su, u};
  rc = fmt_st_write_mem(&odd, 1, NULL, NULL, 0, &m1, &l1, err, sizeof err);
  rc |= fmt_st_read_mem(m1, l1, &f, err, sizeof err);
  CHECK(rc == 0 && f.ntensors == 1 && !strcmp(f.tensors[0].name, odd.name), "odd names: %s", err);
  fmt_st_free(&f);
  fmt_free(m1);
}

/* ========================================================================================== */
/* GIF                                                                                         */
/* ========================================================================================== */

/* A minimal GIF decoder written from the GIF89a spec, for checking the encoder. */
static int lzw_dec(const unsigned char *d, size_t dlen, int mcs, unsigned char *out, size_t npix) {
  int clear = 1 << mcs, eoi = clear + 1, width = mcs + 1, next = clear + 2, prev = -1;
  static uint16_t prefix[4096];
  static unsigned char suffix[4096], stack[4097];
  for (int i = 0; i < clear; i++) prefix[i] = 0xFFFF, suffix[i] = (unsigned char)i;
  size_t bit = 0, o = 0;
  for (;;) {
    if (bit + (size_t)width > dlen * 8) return -1; /* ran out before EOI */
    int code = 0;
    for (int k = 0; k < width; k++, bit++) code |= ((d[bit / 8] >> (bit % 8)) & 1) << k;
    if (code == clear) {
      width = mcs + 1;
      next = clear + 2;
      prev = -1;
      continue;
    }
    if (code == eoi) break;
    if (prev < 0) {
      if (code >= clear) return -2;
      if (o >= npix) return -3;
      out[o++] = (unsigned char)code;
      prev = code;
      continue;
    }
    int sp = 0, c = code;
    if (code > next || code == clear + 1) return -4;
    if (code == next) { /* KwKwK */
      int p = prev;
      while (p != 0xFFFF && prefix[p] != 0xFFFF) p = prefix[p];
      stack[sp++] = suffix[p];
      c = prev;
    }
    while (c != 0xFFFF) {
      stack[sp++] = suffix[c];
      c = prefix[c];
    }
    unsigned char first = stack[sp - 1];
    if (o + (size_t)sp > npix) return -5;
    while (sp > 0) out[o++] = stack[--sp];
    if (next < 4096) {
      prefix[next] = (uint16_t)prev;
      suffix[next] = first;
      next++;
      if (next == (1 << width) && width < 12) width++;
    }
    prev = code;
  }
  return o == npix ? 0 : -6;
}

typedef struct {
  int w, h, nframes, delay;
  unsigned char pal[256][3];
  unsigned char *px; /* nframes * w * h indices */
  int loops;
} gifinfo;

static int gif_dec(const unsigned char *b, size_t len, gifinfo *g) {
  memset(g, 0, sizeof *g);
  if (len < 13 + 768 || memcmp(b, "GIF89a", 6)) return -1;
  g->w = b[6] | b[7] << 8;
  g->h = b[8] | b[9] << 8;
  if (b[10] != 0xF7) return -2;
  memcpy(g->pal, b + 13, 768);
  size_t p = 13 + 768, npix = (size_t)g->w * g->h;
  unsigned char *data = malloc(len);
  for (;;) {
    if (p >= len) goto bad;
    if (b[p] == 0x3B) break;
    if (b[p] == 0x21) {
      int label = b[p + 1];
      p += 2;
      if (label == 0xFF && p + 12 < len && !memcmp(b + p + 1, "NETSCAPE2.0", 11)) g->loops = 1;
      if (label == 0xF9) g->delay = b[p + 2] | b[p + 3] << 8;
      while (p < len && b[p]) p += 1 + b[p];
      p++;
    } else if (b[p] == 0x2C) {
      if (p + 11 > len) goto bad;
      int fw = b[p + 5] | b[p + 6] << 8, fh = b[p + 7] | b[p + 8] << 8;
      if (fw != g->w || fh != g->h || b[p + 9]) goto bad;
      int mcs = b[p + 10];
      p += 11;
      size_t dl = 0;
      while (p < len && b[p]) {
        if (p + 1 + b[p] > len) goto bad;
        memcpy(data + dl, b + p + 1, b[p]);
        dl += b[p];
        p += 1 + b[p];
      }
      p++;
      g->px = realloc(g->px, npix * (size_t)(g->nframes + 1));
      if (lzw_dec(data, dl, mcs, g->px + npix * (size_t)g->nframes, npix) != 0) goto bad;
      g->nframes++;
    } else {
      goto bad;
    }
  }
  free(data);
  return 0;
bad:
  free(data);
  free(g->px);
  g->px = NULL;
  return -3;
}

static void test_gif(void) {
  /* gray: exact through 256 gray levels; big enough for several LZW table resets */
  int n = 3, h = 120, w = 150;
  size_t plane = (size_t)h * w;
  float *fr = malloc(sizeof(float) * n * plane);
  for (size_t i = 0; i < n * plane; i++) fr[i] = (float)(rnd() % 256) / 255.0f;
  for (size_t i = 0; i < plane; i++) fr[2 * plane + i] = (float)((i / 7) % 256) / 255.0f;
  void *buf;
  size_t len;
  int rc = fmt_gif_write_mem(fr, n, 1, h, w, 80, &buf, &len, err, sizeof err);
  CHECK(rc == 0, "gif gray encode: %s", err);
  gifinfo g;
  rc = rc == 0 ? gif_dec(buf, len, &g) : -1;
  CHECK(rc == 0 && g.w == w && g.h == h && g.nframes == n && g.delay == 8 && g.loops,
        "gif gray decodes: rc=%d", rc);
  if (rc == 0) {
    int ok = 1;
    for (size_t i = 0; ok && i < n * plane; i++) {
      unsigned k = g.px[i];
      ok = g.pal[k][0] == k && g.pal[k][1] == k && (float)k / 255.0f == fr[i];
    }
    CHECK(ok, "gif gray frames are exact");
    free(g.px);
  }
  free(buf);
  /* a single uniform pixel, a single frame: smallest case */
  float one = 0.5f;
  rc = fmt_gif_write_mem(&one, 1, 1, 1, 1, 0, &buf, &len, err, sizeof err);
  rc = rc == 0 ? gif_dec(buf, len, &g) : -1;
  CHECK(rc == 0 && g.nframes == 1 && g.px[0] == 128 && g.delay == 1, "gif 1x1");
  if (rc == 0) free(g.px);
  free(buf);
  /* color with few colors: exact */
  int cw = 40, ch = 30;
  size_t cp = (size_t)cw * ch;
  float *cf = malloc(sizeof(float) * 2 * 3 * cp);
  for (size_t f = 0; f < 2; f++)
    for (size_t i = 0; i < cp; i++) {
      unsigned k = (unsigned)((i + f * 11) % 200);
      cf[f * 3 * cp + i] = (float)((k * 37) % 256) / 255.0f;
      cf[f * 3 * cp + cp + i] = (float)((k * 91) % 256) / 255.0f;
      cf[f * 3 * cp + 2 * cp + i] = (float)k / 255.0f;
    }
  rc = fmt_gif_write_mem(cf, 2, 3, ch, cw, 100, &buf, &len, err, sizeof err);
  rc = rc == 0 ? gif_dec(buf, len, &g) : -1;
  CHECK(rc == 0 && g.nframes == 2 && g.delay == 10, "gif few colors decodes: %s", err);
  if (rc == 0) {
    int ok = 1;
    for (size_t f = 0; f < 2 && ok; f++)
      for (size_t i = 0; ok && i < cp; i++) {
        const unsigned char *c = g.pal[g.px[f * cp + i]];
        for (int k = 0; k < 3; k++) ok = ok && (float)c[k] / 255.0f == cf[f * 3 * cp + k * cp + i];
      }
    CHECK(ok, "gif colors exact when at most 256");
    free(g.px);
  }
  free(buf);
  free(cf);
  /* color with many colors (RGBA, alpha dropped): median cut stays close */
  cw = 128, ch = 96, cp = (size_t)cw * ch;
  cf = malloc(sizeof(float) * 4 * cp);
  for (int y = 0; y < ch; y++)
    for (int x = 0; x < cw; x++) {
      size_t i = (size_t)y * cw + x;
      cf[i] = (float)x / (cw - 1);
      cf[cp + i] = (float)y / (ch - 1);
      cf[2 * cp + i] = (float)((x * y) % 97) / 96.0f;
      cf[3 * cp + i] = 0.5f;
    }
  rc = fmt_gif_write_mem(cf, 1, 4, ch, cw, 40, &buf, &len, err, sizeof err);
  rc = rc == 0 ? gif_dec(buf, len, &g) : -1;
  CHECK(rc == 0 && g.nframes == 1, "gif many colors decodes: %s", err);
  if (rc == 0) {
    double se = 0, mx = 0;
    for (size_t i = 0; i < cp; i++) {
      const unsigned char *c = g.pal[g.px[i]];
      for (int k = 0; k < 3; k++) {
        double e = fabs(c[k] / 255.0 - cf[k * cp + i]);
        se += e * e;
        if (e > mx) mx = e;
      }
    }
    double rmse = sqrt(se / (3.0 * cp));
    printf("  gif median cut: rmse %.4f, max error %.4f\n", rmse, mx);
    /* a 3-D spread of colors: a 6x6x6 cube would give rmse ~0.058 */
    CHECK(rmse < 0.055 && mx < 0.2, "gif median cut is close (rmse %.4f, max %.4f)", rmse, mx);
    free(g.px);
  }
  free(buf);
  /* file, atomic */
  rc = fmt_gif_write(tpath("a.gif"), cf, 1, 4, ch, cw, 40, err, sizeof err);
  unsigned char *fb = slurp(tpath("a.gif"), &len);
  CHECK(rc == 0 && fb && len > 800 && !memcmp(fb, "GIF89a", 6) && fb[len - 1] == 0x3B,
        "gif file: %s", err);
  free(fb);
  free(cf);
  CHECK_ERR(fmt_gif_write_mem(fr, 1, 5, h, w, 10, &buf, &len, err, sizeof err), "5 channels");
  CHECK_ERR(fmt_gif_write_mem(fr, 0, 1, h, w, 10, &buf, &len, err, sizeof err), "no frames");
  CHECK_ERR(fmt_gif_write_mem(fr, 1, 1, 1, 70000, 10, &buf, &len, err, sizeof err), "65535");
  CHECK_ERR(fmt_gif_write_mem(fr, 1, 1, h, w, -1, &buf, &len, err, sizeof err), "negative delay");
  CHECK_ERR(fmt_gif_write("/nonexistent-dir/x.gif", fr, 1, 1, h, w, 10, err, sizeof err),
            "cannot create");
  CHECK(stray_temps() == 0, "no temp files left");
  free(fr);
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
  snprintf(tmpdir, sizeof tmpdir, "/tmp/test_io.XXXXXX");
  if (!mkdtemp(tmpdir)) {
    printf("cannot make a temp folder\n0 passed, 1 failed\n");
    return 1;
  }
  test_atomic();
  test_idx_roundtrip();
  test_idx_types();
  test_idx_bad();
  test_fashion_mnist();
  test_png_roundtrip();
  test_png_variants();
  test_png_bad();
  test_st_independent();
  test_st_rules();
  test_st_roundtrip();
  test_gif();
  rm_tmpdir();
  printf("%d passed, %d failed\n", npass, nfail);
  return nfail ? 1 : 0;
}
