/* safetensors.c: safetensors reader (strict; every rule a bad file breaks is named in the
 * error) and deterministic atomic writer. See fmt.h.
 *
 * Format: u64 little-endian N, N bytes of UTF-8 JSON (an object: name -> {"dtype", "shape",
 * "data_offsets": [begin, end]} plus an optional "__metadata__": {string: string}), then the
 * raw little-endian data buffer. Rules the reader enforces, in order:
 *   1. the file holds the 8-byte length        2. N <= 100 MB
 *   3. the header lies within the file          4. the header is valid UTF-8
 *   5. the header is a valid JSON object (starting with '{'; trailing spaces allowed)
 *   6. __metadata__, when present, maps strings to strings
 *   7. each tensor entry: known dtype; shape of at most 8 non-negative integers; data_offsets
 *      [begin, end] of non-negative integers, begin <= end; end - begin == numel * dtype size
 *      (overflow-checked); end within the data buffer
 *   8. no duplicate names (nor duplicate metadata keys)
 *   9. tensors sorted by offset start at 0 and are contiguous: no hole, no overlap
 *  10. nothing follows the last tensor (no trailing bytes)
 * Integers in the JSON must be exact (at most 2^53); JSON numbers like 1.0 are taken as 1. */
#define _POSIX_C_SOURCE 200809L
#include "fmt.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ST_HEADER_MAX 100000000ull /* the reference implementation's limit */
#define ST_EXACT_MAX 9007199254740992.0 /* 2^53: larger JSON numbers are not exact doubles */

typedef struct {
  const char *name;
  size_t size;
  int out; /* FMT_* it converts to */
} st_dtype;

static const st_dtype st_dtypes[] = {
    {"F64", 8, FMT_F64}, {"F32", 4, FMT_F32}, {"F16", 2, FMT_F32}, {"BF16", 2, FMT_F32},
    {"I64", 8, FMT_I64}, {"I32", 4, FMT_I64}, {"I16", 2, FMT_I64}, {"I8", 1, FMT_I64},
    {"U8", 1, FMT_U8},   {"BOOL", 1, FMT_U8},
};
#define ST_NDTYPES (sizeof st_dtypes / sizeof st_dtypes[0])
enum { D_F64, D_F32, D_F16, D_BF16, D_I64, D_I32, D_I16, D_I8, D_U8, D_BOOL };

static int host_is_le(void) {
  const uint16_t one = 1;
  unsigned char b;
  memcpy(&b, &one, 1);
  return b == 1;
}


/* cJSON is lenient where JSON is not (raw control characters, "\u0000" that would cut names
 * short): reject those first. Returns the offending offset or n. */
static size_t json_lex_check(const unsigned char *s, size_t n, const char **why) {
  int in_str = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned c = s[i];
    if (in_str) {
      if (c == '"') {
        in_str = 0;
      } else if (c == '\\') {
        if (i + 5 < n && s[i + 1] == 'u' && memcmp(s + i + 2, "0000", 4) == 0) {
          *why = "\\u0000 in a string";
          return i;
        }
        i++; /* skip the escaped character (a quote or backslash among others) */
      } else if (c < 0x20) {
        *why = "control character in a string";
        return i;
      }
    } else if (c == '"') {
      in_str = 1;
    } else if (c < 0x20 && c != ' ' && c != '\t' && c != '\n' && c != '\r') {
      *why = "unexpected control character";
      return i;
    }
  }
  return n;
}

/* A JSON number that is an exact non-negative integer (<= 2^53). */
static int json_uint(const cJSON *it, uint64_t *v) {
  if (!cJSON_IsNumber(it)) return 0;
  double d = it->valuedouble;
  if (!(d >= 0) || d > ST_EXACT_MAX || d != floor(d)) return 0;
  *v = (uint64_t)d;
  return 1;
}

static void shape_str(const int64_t *shape, int ndim, char *buf, size_t n) {
  size_t k = 0;
  k += (size_t)snprintf(buf + k, n - k, "[");
  for (int i = 0; i < ndim && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)shape[i]);
  if (k < n) snprintf(buf + k, n - k, "]");
}

void fmt_st_free(fmt_st_file *f) {
  if (!f) return;
  for (size_t i = 0; i < f->ntensors; i++) {
    free(f->tensors[i].name);
    fmt_free(f->tensors[i].data);
  }
  for (size_t i = 0; i < f->nmeta; i++) {
    free(f->meta[i].key);
    free(f->meta[i].value);
  }
  free(f->tensors);
  free(f->meta);
  memset(f, 0, sizeof *f);
}

static char *dupstr(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

/* Parse state: the tensors as found, with their raw layout. */
typedef struct {
  fmt_st_tensor *t; /* the caller's out->tensors */
  int dt;           /* index into st_dtypes */
  uint64_t begin, end;
} st_item;

static int cmp_item_name(const void *a, const void *b) {
  return strcmp(((const st_item *)a)->t->name, ((const st_item *)b)->t->name);
}
static int cmp_item_offset(const void *a, const void *b) {
  const st_item *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return 0;
}
static int cmp_tensor_name(const void *a, const void *b) {
  return strcmp(((const fmt_st_tensor *)a)->name, ((const fmt_st_tensor *)b)->name);
}
static int cmp_meta_key(const void *a, const void *b) {
  return strcmp(((const fmt_st_meta *)a)->key, ((const fmt_st_meta *)b)->key);
}

/* Reads one tensor entry into t / it. */
static int parse_entry(const cJSON *e, const char *name, uint64_t datalen, fmt_st_tensor *t,
                       st_item *it, char *err, size_t errlen) {
  if (!cJSON_IsObject(e))
    return fmt_seterr(err, errlen, "safetensors: tensor '%s': entry is not an object", name);
  const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
  const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
  const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
  if (!cJSON_IsString(jd))
    return fmt_seterr(err, errlen, "safetensors: tensor '%s': missing or non-string \"dtype\"", name);
  int dt = -1;
  for (size_t i = 0; i < ST_NDTYPES; i++)
    if (strcmp(jd->valuestring, st_dtypes[i].name) == 0) dt = (int)i;
  if (dt < 0)
    return fmt_seterr(err, errlen,
                      "safetensors: tensor '%s': unknown dtype '%.32s' (known: F64 F32 F16 BF16 "
                      "I64 I32 I16 I8 U8 BOOL)", name, jd->valuestring);
  if (!cJSON_IsArray(js))
    return fmt_seterr(err, errlen, "safetensors: tensor '%s': missing or non-array \"shape\"", name);
  int nd = cJSON_GetArraySize(js);
  if (nd > FMT_MAXDIM)
    return fmt_seterr(err, errlen, "safetensors: tensor '%s': shape has %d dimensions, at most %d "
                      "are supported", name, nd, FMT_MAXDIM);
  int k = 0;
  uint64_t numel = 1;
  int zero = 0;
  for (const cJSON *d = js->child; d; d = d->next, k++) {
    uint64_t v;
    if (!json_uint(d, &v))
      return fmt_seterr(err, errlen, "safetensors: tensor '%s': shape[%d] is not a non-negative "
                        "integer", name, k);
    t->shape[k] = (int64_t)v;
    if (v == 0) zero = 1;
  }
  t->ndim = nd;
  char sbuf[200];
  shape_str(t->shape, nd, sbuf, sizeof sbuf);
  size_t esz = st_dtypes[dt].size, osz = fmt_dtype_size(st_dtypes[dt].out);
  if (zero) {
    numel = 0;
  } else {
    for (int i = 0; i < nd; i++) {
      if (numel > UINT64_MAX / (uint64_t)t->shape[i])
        return fmt_seterr(err, errlen, "safetensors: tensor '%s': the size of shape %s overflows",
                          name, sbuf);
      numel *= (uint64_t)t->shape[i];
    }
  }
  if (numel > UINT64_MAX / 8)
    return fmt_seterr(err, errlen, "safetensors: tensor '%s': the size of shape %s overflows", name,
                      sbuf);
  uint64_t b, en;
  if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2 || !json_uint(jo->child, &b) ||
      !json_uint(jo->child->next, &en))
    return fmt_seterr(err, errlen, "safetensors: tensor '%s': \"data_offsets\" must be [begin, end] "
                      "of non-negative integers", name);
  if (b > en)
    return fmt_seterr(err, errlen, "safetensors: tensor '%s': data_offsets [%llu, %llu] end before "
                      "they begin", name, (unsigned long long)b, (unsigned long long)en);
  if (en - b != numel * esz)
    return fmt_seterr(err, errlen, "safetensors: tensor '%s': data_offsets [%llu, %llu] span %llu "
                      "bytes but shape %s of %s needs %llu", name, (unsigned long long)b,
                      (unsigned long long)en, (unsigned long long)(en - b), sbuf,
                      st_dtypes[dt].name, (unsigned long long)(numel * esz));
  if (en > datalen)
    return fmt_seterr(err, errlen, "safetensors: tensor '%s': data_offsets [%llu, %llu] lie outside "
                      "the data buffer (%llu bytes)", name, (unsigned long long)b,
                      (unsigned long long)en, (unsigned long long)datalen);
  if (numel * osz > (uint64_t)PTRDIFF_MAX - 64)
    return fmt_seterr(err, errlen, "safetensors: tensor '%s' is too large", name);
  t->dtype = st_dtypes[dt].out;
  t->file_dtype = st_dtypes[dt].name;
  t->nbytes = (size_t)(numel * osz);
  it->dt = dt;
  it->begin = b;
  it->end = en;
  return 0;
}

static int parse_meta(const cJSON *m, fmt_st_file *out, char *err, size_t errlen) {
  if (!cJSON_IsObject(m)) return fmt_seterr(err, errlen, "safetensors: __metadata__ is not an object");
  int n = cJSON_GetArraySize(m);
  out->meta = calloc(n ? (size_t)n : 1, sizeof *out->meta);
  if (!out->meta) return fmt_seterr(err, errlen, "safetensors: out of memory");
  for (const cJSON *e = m->child; e; e = e->next) {
    if (!cJSON_IsString(e))
      return fmt_seterr(err, errlen, "safetensors: __metadata__ value of '%.200s' is not a string",
                        e->string);
    fmt_st_meta *kv = &out->meta[out->nmeta];
    kv->key = dupstr(e->string);
    kv->value = dupstr(e->valuestring);
    out->nmeta++; /* counted even if half-made, so that fmt_st_free frees it */
    if (!kv->key || !kv->value) return fmt_seterr(err, errlen, "safetensors: out of memory");
  }
  qsort(out->meta, out->nmeta, sizeof *out->meta, cmp_meta_key);
  for (size_t i = 1; i < out->nmeta; i++)
    if (strcmp(out->meta[i - 1].key, out->meta[i].key) == 0)
      return fmt_seterr(err, errlen, "safetensors: duplicate __metadata__ key '%.200s'",
                        out->meta[i].key);
  return 0;
}

/* Checks the header (rules 4-10) and fills out's names, dtypes and shapes; *items gets the
 * layout, sorted by offset. On failure the caller frees out and *items. */
static int parse_header(const unsigned char *h, size_t n, uint64_t datalen, fmt_st_file *out,
                        st_item **items, char *err, size_t errlen) {
  size_t bad = fmt_utf8_check(h, n);
  if (bad < n)
    return fmt_seterr(err, errlen, "safetensors: header is not valid UTF-8 (byte %zu of the header)",
                      bad);
  if (n == 0 || h[0] != '{')
    return fmt_seterr(err, errlen, "safetensors: header is not a JSON object (does not start with '{')");
  const char *why = NULL;
  bad = json_lex_check(h, n, &why);
  if (bad < n)
    return fmt_seterr(err, errlen, "safetensors: header is not valid JSON: %s at byte %zu", why, bad);
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts((const char *)h, n, &end, 0);
  if (!root) {
    size_t at = end && end >= (const char *)h ? (size_t)(end - (const char *)h) : 0;
    return fmt_seterr(err, errlen, "safetensors: header is not valid JSON (error at byte %zu)", at);
  }
  for (size_t i = (size_t)(end - (const char *)h); i < n; i++) {
    if (h[i] != ' ' && h[i] != '\t' && h[i] != '\n' && h[i] != '\r') {
      cJSON_Delete(root);
      return fmt_seterr(err, errlen, "safetensors: header is not valid JSON: trailing characters at "
                        "byte %zu", i);
    }
  }
  if (!cJSON_IsObject(root)) {
    cJSON_Delete(root);
    return fmt_seterr(err, errlen, "safetensors: header is not a JSON object");
  }
  int rc = 0, nent = cJSON_GetArraySize(root);
  out->tensors = calloc(nent ? (size_t)nent : 1, sizeof *out->tensors);
  *items = calloc(nent ? (size_t)nent : 1, sizeof **items);
  if (!out->tensors || !*items) {
    cJSON_Delete(root);
    return fmt_seterr(err, errlen, "safetensors: out of memory");
  }
  int seen_meta = 0;
  for (const cJSON *e = root->child; e && rc == 0; e = e->next) {
    if (strcmp(e->string, "__metadata__") == 0) {
      if (seen_meta) {
        rc = fmt_seterr(err, errlen, "safetensors: duplicate key '__metadata__'");
      } else {
        seen_meta = 1;
        rc = parse_meta(e, out, err, errlen);
      }
      continue;
    }
    fmt_st_tensor *t = &out->tensors[out->ntensors];
    st_item *it = &(*items)[out->ntensors];
    t->name = dupstr(e->string);
    out->ntensors++;
    if (!t->name) {
      rc = fmt_seterr(err, errlen, "safetensors: out of memory");
      break;
    }
    it->t = t;
    rc = parse_entry(e, t->name, datalen, t, it, err, errlen);
  }
  cJSON_Delete(root);
  if (rc != 0) return -1;

  size_t nt = out->ntensors;
  st_item *v = *items;
  qsort(v, nt, sizeof *v, cmp_item_name);
  for (size_t i = 1; i < nt; i++)
    if (strcmp(v[i - 1].t->name, v[i].t->name) == 0)
      return fmt_seterr(err, errlen, "safetensors: duplicate tensor name '%.200s'", v[i].t->name);
  qsort(v, nt, sizeof *v, cmp_item_offset);
  uint64_t pos = 0;
  for (size_t i = 0; i < nt; i++) {
    if (v[i].begin > pos)
      return fmt_seterr(err, errlen, "safetensors: hole of %llu bytes in the data buffer at offset "
                        "%llu (before tensor '%.200s')", (unsigned long long)(v[i].begin - pos),
                        (unsigned long long)pos, v[i].t->name);
    if (v[i].begin < pos)
      return fmt_seterr(err, errlen, "safetensors: tensor '%.200s' [%llu, %llu] overlaps tensor "
                        "'%.200s' [%llu, %llu]", v[i].t->name, (unsigned long long)v[i].begin,
                        (unsigned long long)v[i].end, v[i - 1].t->name,
                        (unsigned long long)v[i - 1].begin, (unsigned long long)v[i - 1].end);
    pos = v[i].end;
  }
  if (pos != datalen)
    return fmt_seterr(err, errlen, "safetensors: %llu trailing bytes after the last tensor (the data "
                      "buffer is %llu bytes, tensors cover %llu)",
                      (unsigned long long)(datalen - pos), (unsigned long long)datalen,
                      (unsigned long long)pos);
  return 0;
}

static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, ex = (h >> 10) & 0x1f, mant = h & 0x3ffu, bits;
  if (ex == 0) {
    if (mant == 0) {
      bits = sign;
    } else { /* subnormal: renormalise */
      ex = 113;
      while (!(mant & 0x400u)) {
        mant <<= 1;
        ex--;
      }
      bits = sign | ex << 23 | (mant & 0x3ffu) << 13;
    }
  } else if (ex == 31) {
    bits = sign | 0x7f800000u | mant << 13; /* inf, nan (payload kept) */
  } else {
    bits = sign | (ex + 112) << 23 | mant << 13;
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

/* The raw little-endian bytes of n elements of file dtype dt sit at the start of b: convert
 * them in place to the output dtype. Widening runs backwards (see idx.c). */
static void convert_inplace(int dt, unsigned char *b, size_t n) {
  int le = host_is_le();
  switch (dt) {
    case D_F64:
    case D_I64:
      if (!le)
        for (size_t i = 0; i < n; i++) {
          unsigned char *p = b + 8 * i, t;
          for (int j = 0; j < 4; j++) t = p[j], p[j] = p[7 - j], p[7 - j] = t;
        }
      break;
    case D_F32:
      if (!le)
        for (size_t i = 0; i < n; i++) {
          unsigned char *p = b + 4 * i, t;
          t = p[0], p[0] = p[3], p[3] = t;
          t = p[1], p[1] = p[2], p[2] = t;
        }
      break;
    case D_F16:
      for (size_t i = n; i-- > 0;) {
        float f = half_to_float((uint16_t)(b[2 * i] | b[2 * i + 1] << 8));
        memcpy(b + 4 * i, &f, 4);
      }
      break;
    case D_BF16:
      for (size_t i = n; i-- > 0;) {
        uint32_t u = (uint32_t)(b[2 * i] | b[2 * i + 1] << 8) << 16;
        memcpy(b + 4 * i, &u, 4);
      }
      break;
    case D_I32:
      for (size_t i = n; i-- > 0;) {
        const unsigned char *p = b + 4 * i;
        uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        int64_t v = (int64_t)u - (u & 0x80000000u ? INT64_C(4294967296) : 0);
        memcpy(b + 8 * i, &v, 8);
      }
      break;
    case D_I16:
      for (size_t i = n; i-- > 0;) {
        uint32_t u = (uint32_t)b[2 * i] | (uint32_t)b[2 * i + 1] << 8;
        int64_t v = (int64_t)u - (u & 0x8000u ? 65536 : 0);
        memcpy(b + 8 * i, &v, 8);
      }
      break;
    case D_I8:
      for (size_t i = n; i-- > 0;) {
        int64_t v = (int8_t)b[i];
        memcpy(b + 8 * i, &v, 8);
      }
      break;
    case D_BOOL:
      for (size_t i = 0; i < n; i++) b[i] = b[i] != 0;
      break;
    default:
      break;
  }
}

static uint64_t le64(const unsigned char *b) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | b[i];
  return v;
}

/* Rules 1-3 on the first 8 bytes and the total size. */
static int check_prefix(const unsigned char *b8, uint64_t total, uint64_t *hn, char *err,
                        size_t errlen) {
  if (total < 8)
    return fmt_seterr(err, errlen, "safetensors: file too small for the 8-byte header length "
                      "(%llu bytes)", (unsigned long long)total);
  uint64_t n = le64(b8);
  if (n > ST_HEADER_MAX)
    return fmt_seterr(err, errlen, "safetensors: header length %llu exceeds the 100 MB limit",
                      (unsigned long long)n);
  if (n > total - 8)
    return fmt_seterr(err, errlen, "safetensors: header (%llu bytes) extends past the end of the "
                      "file (%llu bytes)", (unsigned long long)n, (unsigned long long)total);
  *hn = n;
  return 0;
}

int fmt_st_read_mem(const void *buf, size_t len, fmt_st_file *out, char *err, size_t errlen) {
  if (out) memset(out, 0, sizeof *out);
  if (!out || (!buf && len)) return fmt_seterr(err, errlen, "safetensors: invalid arguments");
  const unsigned char *b = buf;
  uint64_t hn = 0;
  if (check_prefix(b, len, &hn, err, errlen) != 0) return -1;
  const unsigned char *data = b + 8 + hn;
  st_item *items = NULL;
  if (parse_header(b + 8, (size_t)hn, len - 8 - hn, out, &items, err, errlen) != 0) {
    free(items);
    fmt_st_free(out);
    return -1;
  }
  for (size_t i = 0; i < out->ntensors; i++) {
    fmt_st_tensor *t = items[i].t;
    size_t raw = (size_t)(items[i].end - items[i].begin);
    t->data = fmt_alloc(t->nbytes);
    if (!t->data) {
      free(items);
      fmt_st_free(out);
      return fmt_seterr(err, errlen, "safetensors: out of memory");
    }
    if (raw) memcpy(t->data, data + items[i].begin, raw);
    convert_inplace(items[i].dt, t->data, raw / st_dtypes[items[i].dt].size);
  }
  free(items);
  qsort(out->tensors, out->ntensors, sizeof *out->tensors, cmp_tensor_name);
  return 0;
}

int fmt_st_read(const char *path, fmt_st_file *out, char *err, size_t errlen) {
  if (out) memset(out, 0, sizeof *out);
  if (!out || !path) return fmt_seterr(err, errlen, "safetensors: invalid arguments");
  FILE *f = fopen(path, "rb");
  if (!f) return fmt_seterr(err, errlen, "safetensors: cannot open '%s': %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(f);
    return fmt_seterr(err, errlen, "safetensors: '%s' is not a regular file", path);
  }
  uint64_t total = (uint64_t)st.st_size, hn = 0;
  unsigned char b8[8] = {0};
  if (total >= 8 && fread(b8, 1, 8, f) != 8) total = 0; /* reported as too small */
  if (check_prefix(b8, total, &hn, err, errlen) != 0) {
    fclose(f);
    return -1;
  }
  unsigned char *h = malloc(hn ? (size_t)hn : 1);
  if (!h) {
    fclose(f);
    return fmt_seterr(err, errlen, "safetensors: out of memory for a %llu-byte header",
                      (unsigned long long)hn);
  }
  st_item *items = NULL;
  int rc = 0;
  if (hn && fread(h, 1, (size_t)hn, f) != hn)
    rc = fmt_seterr(err, errlen, "safetensors: '%s': read error in the header", path);
  if (rc == 0) rc = parse_header(h, (size_t)hn, total - 8 - hn, out, &items, err, errlen);
  free(h);
  /* items are sorted by offset and contiguous from 0: read the data buffer in one pass */
  for (size_t i = 0; rc == 0 && i < out->ntensors; i++) {
    fmt_st_tensor *t = items[i].t;
    size_t raw = (size_t)(items[i].end - items[i].begin);
    t->data = fmt_alloc(t->nbytes);
    if (!t->data) {
      rc = fmt_seterr(err, errlen, "safetensors: out of memory for tensor '%.200s' (%zu bytes)",
                      t->name, t->nbytes);
    } else if (raw && fread(t->data, 1, raw, f) != raw) {
      rc = fmt_seterr(err, errlen, "safetensors: '%s': the file ended early (changed while read?)",
                      path);
    } else {
      convert_inplace(items[i].dt, t->data, raw / st_dtypes[items[i].dt].size);
    }
  }
  free(items);
  fclose(f);
  if (rc != 0) {
    fmt_st_free(out);
    return -1;
  }
  qsort(out->tensors, out->ntensors, sizeof *out->tensors, cmp_tensor_name);
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* writing                                                                                     */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
  char *s;
  size_t len, cap;
  int oom;
} sbuf;

static void sb_put(sbuf *b, const char *p, size_t n) {
  if (b->oom) return;
  if (n > b->cap - b->len) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n) {
      if (cap > SIZE_MAX / 2) { b->oom = 1; return; }
      cap *= 2;
    }
    char *s = realloc(b->s, cap);
    if (!s) { b->oom = 1; return; }
    b->s = s;
    b->cap = cap;
  }
  memcpy(b->s + b->len, p, n);
  b->len += n;
}
static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }
static void sb_u64(sbuf *b, uint64_t v) {
  char t[24];
  snprintf(t, sizeof t, "%llu", (unsigned long long)v);
  sb_str(b, t);
}
static void sb_json(sbuf *b, const char *s) {
  sb_put(b, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    char t[8];
    if (*p == '"' || *p == '\\') {
      t[0] = '\\';
      t[1] = (char)*p;
      sb_put(b, t, 2);
    } else if (*p < 0x20) {
      snprintf(t, sizeof t, "\\u%04x", *p);
      sb_put(b, t, 6);
    } else {
      sb_put(b, (const char *)p, 1);
    }
  }
  sb_put(b, "\"", 1);
}

static int wdtype(int dt, const char **name) {
  switch (dt) {
    case FMT_F32: *name = "F32"; return 1;
    case FMT_F64: *name = "F64"; return 1;
    case FMT_I64: *name = "I64"; return 1;
    case FMT_U8: *name = "U8"; return 1;
    default: return 0;
  }
}

static int cmp_entry_ptr(const void *a, const void *b) {
  return strcmp((*(const fmt_st_entry *const *)a)->name, (*(const fmt_st_entry *const *)b)->name);
}
static int cmp_str_ptr(const void *a, const void *b) {
  return strcmp(**(const char *const *const *)a, **(const char *const *const *)b);
}

/* Validates the inputs and builds the padded header; *order gets the entries sorted by name. */
static int build_header(const fmt_st_entry *t, size_t n, const char *const *mk,
                        const char *const *mv, size_t nm, sbuf *hb, const fmt_st_entry ***order,
                        uint64_t **sizes, char *err, size_t errlen) {
  *order = NULL;
  *sizes = NULL;
  if ((n && !t) || (nm && (!mk || !mv))) return fmt_seterr(err, errlen, "safetensors: invalid arguments");
  const fmt_st_entry **o = malloc((n ? n : 1) * sizeof *o);
  uint64_t *sz = malloc((n ? n : 1) * sizeof *sz);
  const char *const **mo = malloc((nm ? nm : 1) * sizeof *mo);
  *order = o;
  *sizes = sz;
  if (!o || !sz || !mo) {
    free(mo);
    return fmt_seterr(err, errlen, "safetensors: out of memory");
  }
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    const fmt_st_entry *e = &t[i];
    const char *dn;
    o[i] = e;
    if (!e->name) { rc = fmt_seterr(err, errlen, "safetensors: tensor %zu has no name", i); break; }
    if (fmt_utf8_check((const unsigned char *)e->name, strlen(e->name)) != strlen(e->name)) {
      rc = fmt_seterr(err, errlen, "safetensors: tensor name '%.200s' is not valid UTF-8", e->name);
      break;
    }
    if (strcmp(e->name, "__metadata__") == 0) {
      rc = fmt_seterr(err, errlen, "safetensors: '__metadata__' cannot name a tensor");
      break;
    }
    if (!wdtype(e->dtype, &dn)) {
      rc = fmt_seterr(err, errlen, "safetensors: tensor '%.200s': dtype %s cannot be written "
                      "(F32, F64, I64, U8 can)", e->name, fmt_dtype_name(e->dtype));
      break;
    }
    if (e->ndim < 0 || e->ndim > FMT_MAXDIM || (e->ndim && !e->shape)) {
      rc = fmt_seterr(err, errlen, "safetensors: tensor '%.200s': bad rank %d", e->name, e->ndim);
      break;
    }
    uint64_t numel = 1;
    int zero = 0;
    for (int d = 0; d < e->ndim; d++) {
      if (e->shape[d] < 0) {
        rc = fmt_seterr(err, errlen, "safetensors: tensor '%.200s': negative dimension", e->name);
        break;
      }
      if (e->shape[d] == 0) zero = 1;
    }
    if (rc) break;
    for (int d = 0; d < e->ndim && !zero; d++) {
      if (numel > (uint64_t)PTRDIFF_MAX / 8 / (uint64_t)e->shape[d]) {
        rc = fmt_seterr(err, errlen, "safetensors: tensor '%.200s': size overflows", e->name);
        break;
      }
      numel *= (uint64_t)e->shape[d];
    }
    if (rc) break;
    sz[i] = zero ? 0 : numel * fmt_dtype_size(e->dtype);
    if (sz[i] && !e->data)
      rc = fmt_seterr(err, errlen, "safetensors: tensor '%.200s' has no data", e->name);
  }
  for (size_t i = 0; i < nm && rc == 0; i++) {
    mo[i] = &mk[i];
    if (!mk[i] || !mv[i]) {
      rc = fmt_seterr(err, errlen, "safetensors: metadata entry %zu is NULL", i);
    } else if (fmt_utf8_check((const unsigned char *)mk[i], strlen(mk[i])) != strlen(mk[i]) ||
               fmt_utf8_check((const unsigned char *)mv[i], strlen(mv[i])) != strlen(mv[i])) {
      rc = fmt_seterr(err, errlen, "safetensors: metadata '%.200s' is not valid UTF-8", mk[i]);
    }
  }
  if (rc) {
    free(mo);
    return -1;
  }
  qsort(o, n, sizeof *o, cmp_entry_ptr);
  for (size_t i = 1; i < n; i++)
    if (strcmp(o[i - 1]->name, o[i]->name) == 0) {
      free(mo);
      return fmt_seterr(err, errlen, "safetensors: duplicate tensor name '%.200s'", o[i]->name);
    }
  qsort(mo, nm, sizeof *mo, cmp_str_ptr);
  for (size_t i = 1; i < nm; i++)
    if (strcmp(*mo[i - 1], *mo[i]) == 0) {
      fmt_seterr(err, errlen, "safetensors: duplicate metadata key '%.200s'", *mo[i]);
      free(mo);
      return -1;
    }
  sb_put(hb, "{", 1);
  if (nm) {
    sb_str(hb, "\"__metadata__\":{");
    for (size_t i = 0; i < nm; i++) {
      size_t j = (size_t)(mo[i] - mk);
      if (i) sb_put(hb, ",", 1);
      sb_json(hb, mk[j]);
      sb_put(hb, ":", 1);
      sb_json(hb, mv[j]);
    }
    sb_put(hb, "}", 1);
  }
  free(mo);
  uint64_t off = 0;
  for (size_t i = 0; i < n; i++) {
    const fmt_st_entry *e = o[i];
    const char *dn = "?";
    uint64_t bytes = sz[e - t];
    wdtype(e->dtype, &dn);
    if (i || nm) sb_put(hb, ",", 1);
    sb_json(hb, e->name);
    sb_str(hb, ":{\"dtype\":\"");
    sb_str(hb, dn);
    sb_str(hb, "\",\"shape\":[");
    for (int d = 0; d < e->ndim; d++) {
      if (d) sb_put(hb, ",", 1);
      sb_u64(hb, (uint64_t)e->shape[d]);
    }
    sb_str(hb, "],\"data_offsets\":[");
    sb_u64(hb, off);
    sb_put(hb, ",", 1);
    sb_u64(hb, off + bytes);
    sb_str(hb, "]}");
    off += bytes;
  }
  sb_put(hb, "}", 1);
  while (!hb->oom && hb->len % 8) sb_put(hb, " ", 1); /* pad: the data starts 8-aligned */
  if (hb->oom) return fmt_seterr(err, errlen, "safetensors: out of memory");
  if (hb->len > ST_HEADER_MAX)
    return fmt_seterr(err, errlen, "safetensors: header of %zu bytes exceeds the 100 MB limit",
                      hb->len);
  return 0;
}

/* Copies n bytes of element size esz to dst in little-endian order. */
static void put_le(unsigned char *dst, const unsigned char *src, size_t n, size_t esz) {
  if (host_is_le() || esz == 1) {
    memcpy(dst, src, n);
    return;
  }
  for (size_t i = 0; i < n; i += esz)
    for (size_t j = 0; j < esz; j++) dst[i + j] = src[i + esz - 1 - j];
}

static void le64_put(unsigned char *b, uint64_t v) {
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
}

int fmt_st_write_mem(const fmt_st_entry *t, size_t n, const char *const *meta_keys,
                     const char *const *meta_values, size_t nmeta, void **out, size_t *outlen,
                     char *err, size_t errlen) {
  if (out) *out = NULL;
  if (outlen) *outlen = 0;
  if (!out || !outlen) return fmt_seterr(err, errlen, "safetensors: invalid arguments");
  sbuf hb = {0};
  const fmt_st_entry **o;
  uint64_t *sz;
  if (build_header(t, n, meta_keys, meta_values, nmeta, &hb, &o, &sz, err, errlen) != 0) {
    free(hb.s);
    free(o);
    free(sz);
    return -1;
  }
  uint64_t total = 8 + hb.len;
  for (size_t i = 0; i < n; i++) total += sz[i];
  unsigned char *b = total > (uint64_t)PTRDIFF_MAX - 64 ? NULL : fmt_alloc((size_t)total);
  if (!b) {
    free(hb.s);
    free(o);
    free(sz);
    return fmt_seterr(err, errlen, "safetensors: out of memory");
  }
  le64_put(b, hb.len);
  memcpy(b + 8, hb.s, hb.len);
  size_t pos = 8 + hb.len;
  for (size_t i = 0; i < n; i++) {
    size_t bytes = (size_t)sz[o[i] - t];
    if (bytes) put_le(b + pos, o[i]->data, bytes, fmt_dtype_size(o[i]->dtype));
    pos += bytes;
  }
  free(hb.s);
  free(o);
  free(sz);
  *out = b;
  *outlen = (size_t)total;
  return 0;
}

int fmt_st_write(const char *path, const fmt_st_entry *t, size_t n, const char *const *meta_keys,
                 const char *const *meta_values, size_t nmeta, char *err, size_t errlen) {
  if (!path) return fmt_seterr(err, errlen, "safetensors: invalid arguments");
  sbuf hb = {0};
  const fmt_st_entry **o;
  uint64_t *sz;
  if (build_header(t, n, meta_keys, meta_values, nmeta, &hb, &o, &sz, err, errlen) != 0) {
    free(hb.s);
    free(o);
    free(sz);
    return -1;
  }
  fmt_atomic a;
  int rc = fmt_atomic_open(&a, path, err, errlen);
  if (rc == 0) {
    unsigned char b8[8];
    le64_put(b8, hb.len);
    int bad = fwrite(b8, 1, 8, a.f) != 8 || fwrite(hb.s, 1, hb.len, a.f) != hb.len;
    unsigned char chunk[1 << 16];
    for (size_t i = 0; i < n && !bad; i++) {
      size_t bytes = (size_t)sz[o[i] - t], esz = fmt_dtype_size(o[i]->dtype);
      const unsigned char *p = o[i]->data;
      if (host_is_le() || esz == 1) {
        bad = bytes && fwrite(p, 1, bytes, a.f) != bytes;
      } else {
        for (size_t k = 0; k < bytes && !bad; k += sizeof chunk) {
          size_t m = bytes - k < sizeof chunk ? bytes - k : sizeof chunk;
          put_le(chunk, p + k, m, esz);
          bad = fwrite(chunk, 1, m, a.f) != m;
        }
      }
    }
    if (bad) {
      rc = fmt_seterr(err, errlen, "safetensors: error writing '%s': %s", path, strerror(errno));
      fmt_atomic_abort(&a);
    } else if (fmt_atomic_commit(&a, err, errlen) != 0) {
      char tmp[512];
      snprintf(tmp, sizeof tmp, "%s", err ? err : "");
      rc = fmt_seterr(err, errlen, "safetensors: %s", tmp);
    }
  } else {
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", err ? err : "");
    fmt_seterr(err, errlen, "safetensors: %s", tmp);
  }
  free(hb.s);
  free(o);
  free(sz);
  return rc;
}
