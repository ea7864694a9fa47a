/* idx.c: the IDX (MNIST) reader and u8 writer, plus the helpers the whole io layer shares
 * (error messages, aligned buffers, dtype table, atomic file writing). See fmt.h. */
#define _POSIX_C_SOURCE 200809L
#include "fmt.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* ------------------------------------------------------------------------------------------ */
/* shared helpers                                                                              */
/* ------------------------------------------------------------------------------------------ */

int fmt_seterr(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

static const size_t dtype_sizes[FMT_NDTYPES] = {1, 8, 4, 8};
static const char *const dtype_names[FMT_NDTYPES] = {"u8", "i64", "f32", "f64"};

size_t fmt_dtype_size(int dtype) {
  return dtype >= 0 && dtype < FMT_NDTYPES ? dtype_sizes[dtype] : 0;
}
const char *fmt_dtype_name(int dtype) {
  return dtype >= 0 && dtype < FMT_NDTYPES ? dtype_names[dtype] : "?";
}

void *fmt_alloc(size_t nbytes) {
  if (nbytes > (size_t)PTRDIFF_MAX - 64) return NULL;
  /* aligned_alloc wants a multiple of the alignment; never 0 so that data is never NULL */
  size_t n = nbytes ? (nbytes + 63) & ~(size_t)63 : 64;
  return aligned_alloc(64, n);
}

void fmt_free(void *p) { free(p); }

void fmt_array_free(fmt_array *a) {
  if (!a) return;
  fmt_free(a->data);
  memset(a, 0, sizeof *a);
}

/* ---- atomic writing ---- */

int fmt_atomic_open(fmt_atomic *a, const char *path, char *err, size_t errlen) {
  memset(a, 0, sizeof *a);
  if (!path || !*path) return fmt_seterr(err, errlen, "empty file name");
  size_t n = strlen(path);
  a->path = malloc(n + 1);
  a->tmp = malloc(n + 32);
  if (!a->path || !a->tmp) {
    free(a->path);
    free(a->tmp);
    memset(a, 0, sizeof *a);
    return fmt_seterr(err, errlen, "out of memory");
  }
  memcpy(a->path, path, n + 1);
  snprintf(a->tmp, n + 32, "%s.tmp.%ld", path, (long)getpid());
  /* O_NOFOLLOW: never write through a planted link; the temp sits beside the target so that
   * rename() is atomic (same file system). */
  int fd = open(a->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0666);
  if (fd < 0) {
    int e = errno;
    fmt_seterr(err, errlen, "cannot create '%s': %s", a->tmp, strerror(e));
    free(a->path);
    free(a->tmp);
    memset(a, 0, sizeof *a);
    return -1;
  }
  a->f = fdopen(fd, "wb");
  if (!a->f) {
    int e = errno;
    close(fd);
    unlink(a->tmp);
    fmt_seterr(err, errlen, "cannot open '%s': %s", a->tmp, strerror(e));
    free(a->path);
    free(a->tmp);
    memset(a, 0, sizeof *a);
    return -1;
  }
  return 0;
}

void fmt_atomic_abort(fmt_atomic *a) {
  if (!a) return;
  if (a->f) fclose(a->f);
  if (a->tmp) unlink(a->tmp);
  free(a->path);
  free(a->tmp);
  memset(a, 0, sizeof *a);
}

/* Best effort: the rename has happened, so a failure here only weakens durability. */
static void fsync_parent(const char *path) {
  const char *slash = strrchr(path, '/');
  char buf[4096];
  const char *dir;
  if (!slash) {
    dir = ".";
  } else if (slash == path) {
    dir = "/";
  } else {
    size_t n = (size_t)(slash - path);
    if (n >= sizeof buf) return;
    memcpy(buf, path, n);
    buf[n] = 0;
    dir = buf;
  }
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

int fmt_atomic_commit(fmt_atomic *a, char *err, size_t errlen) {
  int rc = 0;
  if (!a->f) {
    rc = fmt_seterr(err, errlen, "atomic write was not opened");
  } else if (fflush(a->f) != 0 || ferror(a->f)) {
    rc = fmt_seterr(err, errlen, "error writing '%s': %s", a->tmp, strerror(errno));
  } else if (fsync(fileno(a->f)) != 0 && errno != EINVAL && errno != ENOTSUP) {
    /* EINVAL/ENOTSUP: the file system has nothing to sync */
    rc = fmt_seterr(err, errlen, "cannot fsync '%s': %s", a->tmp, strerror(errno));
  }
  if (a->f && fclose(a->f) != 0 && rc == 0)
    rc = fmt_seterr(err, errlen, "error closing '%s': %s", a->tmp, strerror(errno));
  a->f = NULL;
  if (rc == 0 && rename(a->tmp, a->path) != 0)
    rc = fmt_seterr(err, errlen, "cannot rename '%s' to '%s': %s", a->tmp, a->path,
                    strerror(errno));
  if (rc != 0) {
    if (a->tmp) unlink(a->tmp);
  } else {
    fsync_parent(a->path);
  }
  free(a->path);
  free(a->tmp);
  memset(a, 0, sizeof *a);
  return rc;
}

int fmt_write_file(const char *path, const void *buf, size_t len, char *err, size_t errlen) {
  fmt_atomic a;
  if (fmt_atomic_open(&a, path, err, errlen) != 0) return -1;
  if (len && fwrite(buf, 1, len, a.f) != len) {
    int e = errno;
    fmt_seterr(err, errlen, "error writing '%s': %s", a.tmp, strerror(e));
    fmt_atomic_abort(&a);
    return -1;
  }
  return fmt_atomic_commit(&a, err, errlen);
}

/* ------------------------------------------------------------------------------------------ */
/* IDX reading                                                                                 */
/* ------------------------------------------------------------------------------------------ */

/* A byte source: a gzFile (plain files too: gzread is transparent), a plain memory buffer, or
 * a gzip memory buffer inflated on the fly. */
typedef struct {
  gzFile gz;
  const unsigned char *mem;
  size_t memlen, mempos; /* mempos: bytes consumed (plain) or handed to zlib (gzip) */
  z_stream zs;
  int zinit, zdone;
  int gzip;
  uint64_t clen; /* size of the file or buffer, to bound what the data can expand to */
} src_t;

static int src_read(src_t *s, void *dst, size_t n, size_t *got, char *err, size_t errlen) {
  unsigned char *p = dst;
  *got = 0;
  if (s->gz) {
    while (n > 0) {
      unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
      int r = gzread(s->gz, p, chunk);
      if (r <= 0) break;
      p += r;
      n -= (size_t)r;
      *got += (size_t)r;
    }
    if (n > 0) {
      int e = Z_OK;
      const char *m = gzerror(s->gz, &e);
      if (e == Z_ERRNO) return fmt_seterr(err, errlen, "idx: read error: %s", strerror(errno));
      if (e == Z_BUF_ERROR) return fmt_seterr(err, errlen, "idx: gzip data truncated");
      if (e != Z_OK) return fmt_seterr(err, errlen, "idx: gzip: %s", m);
    }
    return 0;
  }
  if (!s->gzip) {
    size_t k = s->memlen - s->mempos;
    if (k > n) k = n;
    if (k) memcpy(p, s->mem + s->mempos, k);
    s->mempos += k;
    *got = k;
    return 0;
  }
  while (n > 0 && !s->zdone) {
    if (s->zs.avail_in == 0 && s->mempos < s->memlen) {
      size_t k = s->memlen - s->mempos;
      if (k > UINT_MAX) k = UINT_MAX;
      s->zs.next_in = (Bytef *)(uintptr_t)(s->mem + s->mempos);
      s->zs.avail_in = (uInt)k;
      s->mempos += k;
    }
    uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
    s->zs.next_out = p;
    s->zs.avail_out = chunk;
    int r = inflate(&s->zs, Z_NO_FLUSH);
    size_t made = chunk - s->zs.avail_out;
    p += made;
    n -= made;
    *got += made;
    if (r == Z_STREAM_END) {
      /* a further gzip member continues the data, as with gzread; anything else ends it */
      if (s->zs.avail_in >= 2 && s->zs.next_in[0] == 0x1f && s->zs.next_in[1] == 0x8b)
        inflateReset(&s->zs);
      else
        s->zdone = 1;
    } else if (r == Z_BUF_ERROR) {
      return fmt_seterr(err, errlen, "idx: gzip data truncated");
    } else if (r != Z_OK) {
      return fmt_seterr(err, errlen, "idx: gzip: %s", s->zs.msg ? s->zs.msg : "corrupt data");
    }
  }
  return 0;
}

static uint32_t be32(const unsigned char *b) {
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static int idx_read_src(src_t *s, fmt_array *out, char *err, size_t errlen) {
  unsigned char hdr[4 + 4 * FMT_MAXDIM];
  size_t got;
  if (src_read(s, hdr, 4, &got, err, errlen) != 0) return -1;
  if (got < 4) return fmt_seterr(err, errlen, "idx: too short for the 4-byte magic (%zu bytes)", got);
  if (hdr[0] != 0 || hdr[1] != 0)
    return fmt_seterr(err, errlen, "idx: bad magic %02x %02x %02x %02x (expected 00 00 <type> <rank>)",
                      hdr[0], hdr[1], hdr[2], hdr[3]);
  int type = hdr[2], rank = hdr[3], odt;
  size_t esz;
  switch (type) {
    case 0x08: esz = 1; odt = FMT_U8; break;
    case 0x09: esz = 1; odt = FMT_I64; break;
    case 0x0B: esz = 2; odt = FMT_I64; break;
    case 0x0C: esz = 4; odt = FMT_I64; break;
    case 0x0D: esz = 4; odt = FMT_F32; break;
    case 0x0E: esz = 8; odt = FMT_F64; break;
    default:
      return fmt_seterr(err, errlen,
                        "idx: unknown element type 0x%02x (expected 08, 09, 0B, 0C, 0D or 0E)", type);
  }
  if (rank < 1 || rank > FMT_MAXDIM)
    return fmt_seterr(err, errlen, "idx: rank %d not in 1..%d", rank, FMT_MAXDIM);
  if (src_read(s, hdr + 4, 4 * (size_t)rank, &got, err, errlen) != 0) return -1;
  if (got < 4 * (size_t)rank)
    return fmt_seterr(err, errlen, "idx: truncated header: %d dimensions need %d bytes, found %zu",
                      rank, 4 * rank, got);
  int64_t shape[FMT_MAXDIM];
  uint64_t n = 1;
  int zero = 0;
  for (int i = 0; i < rank; i++) {
    shape[i] = be32(hdr + 4 + 4 * i);
    if (shape[i] == 0) zero = 1;
  }
  if (zero) {
    n = 0;
  } else {
    for (int i = 0; i < rank; i++) {
      if (n > UINT64_MAX / (uint64_t)shape[i])
        return fmt_seterr(err, errlen, "idx: the element count overflows");
      n *= (uint64_t)shape[i];
    }
  }
  size_t osz = fmt_dtype_size(odt);
  if (n > ((uint64_t)PTRDIFF_MAX - 64) / 8)
    return fmt_seterr(err, errlen, "idx: %llu elements are too many", (unsigned long long)n);
  uint64_t inb = n * esz, outb = n * osz, hlen = 4 + 4 * (uint64_t)rank;
  /* The data must be physically there before anything big is allocated: exactly for a plain
   * source, and through deflate's 1032:1 ceiling for gzip. */
  if (!s->gzip) {
    uint64_t have = s->clen >= hlen ? s->clen - hlen : 0;
    if (s->clen != UINT64_MAX && have < inb)
      return fmt_seterr(err, errlen,
                        "idx: truncated: the header declares %llu data bytes, only %llu present",
                        (unsigned long long)inb, (unsigned long long)have);
    if (s->clen != UINT64_MAX && have > inb)
      return fmt_seterr(err, errlen, "idx: %llu trailing bytes after the %llu declared data bytes",
                        (unsigned long long)(have - inb), (unsigned long long)inb);
  } else if (s->clen != UINT64_MAX && s->clen < (UINT64_MAX - 4096) / 1032 &&
             inb > s->clen * 1032 + 4096) {
    return fmt_seterr(err, errlen,
                      "idx: truncated: the header declares %llu data bytes, more than %llu gzip "
                      "bytes can hold", (unsigned long long)inb, (unsigned long long)s->clen);
  }
  unsigned char *b = fmt_alloc((size_t)outb);
  if (!b) return fmt_seterr(err, errlen, "idx: out of memory for %llu bytes", (unsigned long long)outb);
  if (src_read(s, b, (size_t)inb, &got, err, errlen) != 0) {
    fmt_free(b);
    return -1;
  }
  if (got < inb) {
    fmt_free(b);
    return fmt_seterr(err, errlen,
                      "idx: truncated: the header declares %llu data bytes, only %zu present",
                      (unsigned long long)inb, got);
  }
  unsigned char extra;
  if (src_read(s, &extra, 1, &got, err, errlen) != 0) {
    fmt_free(b);
    return -1;
  }
  if (got) {
    fmt_free(b);
    return fmt_seterr(err, errlen, "idx: trailing data after the %llu declared data bytes",
                      (unsigned long long)inb);
  }
  /* Convert in place. Widening runs backwards: element i is read before the bytes it lands on
   * (8i..8i+7) are written, and those only hold elements >= i, already done. */
  size_t cnt = (size_t)n;
  switch (type) {
    case 0x09:
      for (size_t i = cnt; i-- > 0;) {
        int64_t v = (int8_t)b[i];
        memcpy(b + 8 * i, &v, 8);
      }
      break;
    case 0x0B:
      for (size_t i = cnt; i-- > 0;) {
        uint32_t u = (uint32_t)b[2 * i] << 8 | b[2 * i + 1];
        int64_t v = (int64_t)u - (u & 0x8000u ? 65536 : 0);
        memcpy(b + 8 * i, &v, 8);
      }
      break;
    case 0x0C:
      for (size_t i = cnt; i-- > 0;) {
        uint32_t u = be32(b + 4 * i);
        int64_t v = (int64_t)u - (u & 0x80000000u ? INT64_C(4294967296) : 0);
        memcpy(b + 8 * i, &v, 8);
      }
      break;
    case 0x0D:
      for (size_t i = 0; i < cnt; i++) {
        uint32_t u = be32(b + 4 * i);
        memcpy(b + 4 * i, &u, 4);
      }
      break;
    case 0x0E:
      for (size_t i = 0; i < cnt; i++) {
        uint64_t u = (uint64_t)be32(b + 8 * i) << 32 | be32(b + 8 * i + 4);
        memcpy(b + 8 * i, &u, 8);
      }
      break;
    default:
      break;
  }
  memset(out, 0, sizeof *out);
  out->dtype = odt;
  out->ndim = rank;
  memcpy(out->shape, shape, sizeof(int64_t) * (size_t)rank);
  out->data = b;
  out->nbytes = (size_t)outb;
  return 0;
}

int fmt_idx_read_mem(const void *buf, size_t len, fmt_array *out, char *err, size_t errlen) {
  if (out) memset(out, 0, sizeof *out);
  if (!out || (!buf && len)) return fmt_seterr(err, errlen, "idx: invalid arguments");
  src_t s;
  memset(&s, 0, sizeof s);
  s.mem = buf;
  s.memlen = len;
  s.clen = len;
  s.gzip = len >= 2 && s.mem[0] == 0x1f && s.mem[1] == 0x8b;
  if (s.gzip) {
    if (inflateInit2(&s.zs, 15 + 16) != Z_OK) return fmt_seterr(err, errlen, "idx: out of memory");
    s.zinit = 1;
  }
  int rc = idx_read_src(&s, out, err, errlen);
  if (s.zinit) inflateEnd(&s.zs);
  return rc;
}

int fmt_idx_read(const char *path, fmt_array *out, char *err, size_t errlen) {
  if (out) memset(out, 0, sizeof *out);
  if (!out || !path) return fmt_seterr(err, errlen, "idx: invalid arguments");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fmt_seterr(err, errlen, "idx: cannot open '%s': %s", path, strerror(errno));
  src_t s;
  memset(&s, 0, sizeof s);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return fmt_seterr(err, errlen, "idx: cannot stat '%s': %s", path, strerror(e));
  }
  if (S_ISDIR(st.st_mode)) {
    close(fd);
    return fmt_seterr(err, errlen, "idx: '%s' is a directory", path);
  }
  s.clen = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : UINT64_MAX;
  unsigned char magic[2];
  ssize_t m = S_ISREG(st.st_mode) ? pread(fd, magic, 2, 0) : 0;
  s.gzip = m == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
  s.gz = gzdopen(fd, "rb"); /* owns fd from here on */
  if (!s.gz) {
    close(fd);
    return fmt_seterr(err, errlen, "idx: cannot open '%s': out of memory", path);
  }
  gzbuffer(s.gz, 1 << 17);
  int rc = idx_read_src(&s, out, err, errlen);
  gzclose(s.gz);
  if (rc != 0 && err && errlen) {
    /* prefix the file name: "idx: <path>: message" */
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", err);
    const char *msg = strncmp(tmp, "idx: ", 5) == 0 ? tmp + 5 : tmp;
    fmt_seterr(err, errlen, "idx: %s: %s", path, msg);
  }
  return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* IDX writing (u8)                                                                            */
/* ------------------------------------------------------------------------------------------ */

static int idx_header(int ndim, const int64_t *shape, unsigned char *hdr, size_t *hlen,
                      uint64_t *count, char *err, size_t errlen) {
  if (ndim < 1 || ndim > FMT_MAXDIM)
    return fmt_seterr(err, errlen, "idx: rank %d not in 1..%d", ndim, FMT_MAXDIM);
  uint64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0 || shape[i] > (int64_t)UINT32_MAX)
      return fmt_seterr(err, errlen, "idx: dimension %d (%lld) not in 0..4294967295", i + 1,
                        (long long)shape[i]);
  }
  for (int i = 0; i < ndim; i++)
    if (shape[i] == 0) n = 0; /* a zero anywhere: no elements, whatever the other sizes */
  for (int i = 0; i < ndim && n; i++) {
    if (n > (uint64_t)PTRDIFF_MAX / (uint64_t)shape[i])
      return fmt_seterr(err, errlen, "idx: the element count overflows");
    n *= (uint64_t)shape[i];
  }
  hdr[0] = hdr[1] = 0;
  hdr[2] = 0x08;
  hdr[3] = (unsigned char)ndim;
  for (int i = 0; i < ndim; i++) {
    uint32_t d = (uint32_t)shape[i];
    hdr[4 + 4 * i] = (unsigned char)(d >> 24);
    hdr[5 + 4 * i] = (unsigned char)(d >> 16);
    hdr[6 + 4 * i] = (unsigned char)(d >> 8);
    hdr[7 + 4 * i] = (unsigned char)d;
  }
  *hlen = 4 + 4 * (size_t)ndim;
  *count = n;
  return 0;
}

int fmt_idx_write_u8_mem(int ndim, const int64_t *shape, const uint8_t *data, void **out,
                         size_t *outlen, char *err, size_t errlen) {
  if (out) *out = NULL;
  if (outlen) *outlen = 0;
  if (!out || !outlen || (!shape && ndim)) return fmt_seterr(err, errlen, "idx: invalid arguments");
  unsigned char hdr[4 + 4 * FMT_MAXDIM];
  size_t hlen;
  uint64_t n;
  if (idx_header(ndim, shape, hdr, &hlen, &n, err, errlen) != 0) return -1;
  if (n && !data) return fmt_seterr(err, errlen, "idx: no data");
  unsigned char *b = fmt_alloc(hlen + (size_t)n);
  if (!b) return fmt_seterr(err, errlen, "idx: out of memory");
  memcpy(b, hdr, hlen);
  if (n) memcpy(b + hlen, data, (size_t)n);
  *out = b;
  *outlen = hlen + (size_t)n;
  return 0;
}

/* Deflates len bytes into f; flush = Z_FINISH ends the stream. */
static int gz_put(z_stream *zs, FILE *f, const unsigned char *p, size_t len, int flush) {
  unsigned char obuf[1 << 16];
  do {
    uInt chunk = len > (1u << 30) ? (1u << 30) : (uInt)len;
    zs->next_in = (Bytef *)(uintptr_t)p;
    zs->avail_in = chunk;
    int last = flush == Z_FINISH && chunk == len;
    int r;
    do {
      zs->next_out = obuf;
      zs->avail_out = sizeof obuf;
      r = deflate(zs, last ? Z_FINISH : Z_NO_FLUSH);
      if (r == Z_STREAM_ERROR) return -1;
      size_t have = sizeof obuf - zs->avail_out;
      if (have && fwrite(obuf, 1, have, f) != have) return -1;
    } while (zs->avail_out == 0 || (last && r != Z_STREAM_END));
    p += chunk;
    len -= chunk;
  } while (len > 0);
  return 0;
}

int fmt_idx_write_u8(const char *path, int ndim, const int64_t *shape, const uint8_t *data,
                     char *err, size_t errlen) {
  if (!path || (!shape && ndim)) return fmt_seterr(err, errlen, "idx: invalid arguments");
  unsigned char hdr[4 + 4 * FMT_MAXDIM];
  size_t hlen;
  uint64_t n;
  if (idx_header(ndim, shape, hdr, &hlen, &n, err, errlen) != 0) return -1;
  if (n && !data) return fmt_seterr(err, errlen, "idx: no data");
  size_t plen = strlen(path);
  int gz = plen > 3 && strcmp(path + plen - 3, ".gz") == 0;
  fmt_atomic a;
  if (fmt_atomic_open(&a, path, err, errlen) != 0) return -1;
  int bad = 0;
  if (!gz) {
    bad = fwrite(hdr, 1, hlen, a.f) != hlen || (n && fwrite(data, 1, (size_t)n, a.f) != n);
  } else {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
      fmt_atomic_abort(&a);
      return fmt_seterr(err, errlen, "idx: out of memory");
    }
    bad = gz_put(&zs, a.f, hdr, hlen, Z_NO_FLUSH) != 0 ||
          gz_put(&zs, a.f, data, (size_t)n, Z_FINISH) != 0;
    deflateEnd(&zs);
  }
  if (bad) {
    int e = errno;
    fmt_atomic_abort(&a);
    return fmt_seterr(err, errlen, "idx: error writing '%s': %s", path, strerror(e));
  }
  if (fmt_atomic_commit(&a, err, errlen) != 0) {
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", err ? err : "");
    return fmt_seterr(err, errlen, "idx: %s", tmp);
  }
  return 0;
}

/* Index of the first byte that breaks UTF-8 (overlongs, surrogates, > U+10FFFF), or n. */
size_t fmt_utf8_check(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    if (c < 0x80) { i++; continue; }
    size_t k;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) k = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
      k = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      k = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (n - i <= k) return i;
    if (s[i + 1] < lo || s[i + 1] > hi) return i;
    for (size_t j = 2; j <= k; j++)
      if ((s[i + j] & 0xC0) != 0x80) return i;
    i += k + 1;
  }
  return n;
}
