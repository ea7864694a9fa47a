/* test_io_safetensors.c: unit tests of the pure-C file-format layer (src/io): safetensors (an
 * independent writer, every rule a file can break, round trips). Shared helpers and how to
 * build: io_test.h. */
#define _POSIX_C_SOURCE 200809L
#include "io_test.h"

#include <math.h>
#include <stdlib.h>

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


int main(void) {
  static void (*const tests[])(void) = {test_st_independent, test_st_rules, test_st_roundtrip};
  return io_test_main("test_io_safetensors", tests, (int)(sizeof tests / sizeof *tests));
}
