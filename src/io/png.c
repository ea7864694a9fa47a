/* png.c: PNG load (any PNG -> float C x H x W in [0,1]) and 8-bit save, through libpng,
 * from/to files and memory buffers. See fmt.h. */
#define _POSIX_C_SOURCE 200809L
#include "fmt.h"

#include <errno.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* libpng reports errors through these; the message goes to the caller's err buffer. The
 * longjmp lands in the setjmp of png_decode/png_encode, the only functions calling libpng
 * after the structs exist. */
typedef struct {
  char *err;
  size_t errlen;
} png_errctx;

static void on_error(png_structp png, png_const_charp msg) {
  png_errctx *e = png_get_error_ptr(png);
  if (e) fmt_seterr(e->err, e->errlen, "png: %s", msg);
  png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
  (void)png; /* never print; warnings do not fail a load */
  (void)msg;
}

/* ------------------------------------------------------------------------------------------ */
/* reading                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* Everything that must outlive a longjmp lives here, in the caller's frame, not in locals of
 * the function that owns the setjmp. */
typedef struct {
  const unsigned char *mem; /* memory source ... */
  size_t len, pos;
  FILE *f;                  /* ... or file source */
  uint64_t avail;           /* size of the compressed input: bounds the image size */
  png_structp png;
  png_infop info;
  png_errctx ec;
  unsigned char *pix;       /* interleaved 8/16-bit rows */
  png_bytep *rows;
  float *out;               /* C x H x W */
  size_t outbytes;
  int c;
  uint32_t h, w;
} rd_t;

static void rd_fn(png_structp png, png_bytep dst, size_t n) {
  rd_t *r = png_get_io_ptr(png);
  if (r->f) {
    if (fread(dst, 1, n, r->f) != n) png_error(png, "truncated file (read past the end)");
    return;
  }
  if (n > r->len - r->pos) png_error(png, "truncated data (read past the end)");
  memcpy(dst, r->mem + r->pos, n);
  r->pos += n;
}

static int png_decode(rd_t *r) {
  png_structp png = r->png;
  png_infop info = r->info;
  if (setjmp(png_jmpbuf(png))) return -1;
  png_set_read_fn(png, r, rd_fn);
  png_read_info(png, info);
  png_uint_32 w, h;
  int bd, ct, il;
  png_get_IHDR(png, info, &w, &h, &bd, &ct, &il, NULL, NULL);
  int fch = ct == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : ct == PNG_COLOR_TYPE_RGB ? 3
          : ct == PNG_COLOR_TYPE_RGB_ALPHA ? 4 : 1;
  /* The compressed stream cannot expand more than deflate's 1032:1: refuse before allocating
   * what a small corrupt file claims. */
  uint64_t raw = ((uint64_t)w * (uint64_t)fch * (uint64_t)bd + 7) / 8 * (uint64_t)h;
  if (r->avail < UINT64_MAX / 2048 && raw > r->avail * 1032 + 65536)
    png_error(png, "image data cannot fit in the input (truncated or corrupt)");

  if (ct == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (ct == PNG_COLOR_TYPE_GRAY && bd < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  if (il != PNG_INTERLACE_NONE) png_set_interlace_handling(png);
  png_read_update_info(png, info);

  int c = png_get_channels(png, info), obd = png_get_bit_depth(png, info);
  size_t rowbytes = png_get_rowbytes(png, info);
  if (c < 1 || c > 4 || (obd != 8 && obd != 16) ||
      rowbytes != (size_t)w * (size_t)c * (size_t)(obd / 8))
    png_error(png, "unexpected layout after transformations");
  if (h && rowbytes > SIZE_MAX / 4 / h) png_error(png, "image too large");
  size_t n = (size_t)w * h * (size_t)c;
  /* zeroed so that nothing uninitialised can ever reach the caller */
  r->pix = calloc(rowbytes * h > 0 ? rowbytes * h : 1, 1);
  r->rows = malloc(sizeof(png_bytep) * (h ? h : 1));
  r->outbytes = n * sizeof(float);
  r->out = fmt_alloc(r->outbytes);
  if (!r->pix || !r->rows || !r->out) png_error(png, "out of memory");
  for (png_uint_32 y = 0; y < h; y++) r->rows[y] = r->pix + (size_t)y * rowbytes;
  png_read_image(png, r->rows);
  png_read_end(png, NULL);

  /* interleaved -> planar floats */
  size_t plane = (size_t)w * h;
  if (obd == 8) {
    float lut[256];
    for (int i = 0; i < 256; i++) lut[i] = (float)i / 255.0f;
    for (int ch = 0; ch < c; ch++) {
      float *o = r->out + (size_t)ch * plane;
      const unsigned char *p = r->pix + ch;
      for (size_t i = 0; i < plane; i++) o[i] = lut[p[i * (size_t)c]];
    }
  } else {
    for (int ch = 0; ch < c; ch++) {
      float *o = r->out + (size_t)ch * plane;
      const unsigned char *p = r->pix + 2 * ch;
      for (size_t i = 0; i < plane; i++) {
        const unsigned char *s = p + 2 * i * (size_t)c;
        o[i] = (float)((double)((unsigned)s[0] << 8 | s[1]) / 65535.0);
      }
    }
  }
  r->c = c;
  r->h = h;
  r->w = w;
  return 0;
}

static int png_read_common(rd_t *r, fmt_array *out, char *err, size_t errlen) {
  r->ec.err = err;
  r->ec.errlen = errlen;
  r->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r->ec, on_error, on_warning);
  if (!r->png) return fmt_seterr(err, errlen, "png: out of memory");
  r->info = png_create_info_struct(r->png);
  int rc = r->info ? png_decode(r) : fmt_seterr(err, errlen, "png: out of memory");
  png_destroy_read_struct(&r->png, r->info ? &r->info : NULL, NULL);
  free(r->pix);
  free(r->rows);
  if (rc != 0) {
    fmt_free(r->out);
    return -1;
  }
  out->dtype = FMT_F32;
  out->ndim = 3;
  out->shape[0] = r->c;
  out->shape[1] = r->h;
  out->shape[2] = r->w;
  out->data = r->out;
  out->nbytes = r->outbytes;
  return 0;
}

int fmt_png_read_mem(const void *buf, size_t len, fmt_array *out, char *err, size_t errlen) {
  if (out) memset(out, 0, sizeof *out);
  if (!out || (!buf && len)) return fmt_seterr(err, errlen, "png: invalid arguments");
  if (len < 8) return fmt_seterr(err, errlen, "png: too short for a PNG (%zu bytes)", len);
  if (png_sig_cmp((png_const_bytep)buf, 0, 8) != 0)
    return fmt_seterr(err, errlen, "png: not a PNG (bad signature)");
  rd_t r;
  memset(&r, 0, sizeof r);
  r.mem = buf;
  r.len = len;
  r.avail = len;
  return png_read_common(&r, out, err, errlen);
}

int fmt_png_read(const char *path, fmt_array *out, char *err, size_t errlen) {
  if (out) memset(out, 0, sizeof *out);
  if (!out || !path) return fmt_seterr(err, errlen, "png: invalid arguments");
  FILE *f = fopen(path, "rb");
  if (!f) return fmt_seterr(err, errlen, "png: cannot open '%s': %s", path, strerror(errno));
  struct stat st;
  unsigned char sig[8];
  if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
    fclose(f);
    return fmt_seterr(err, errlen, "png: '%s' is a directory", path);
  }
  if (fread(sig, 1, 8, f) != 8 || png_sig_cmp(sig, 0, 8) != 0) {
    fclose(f);
    return fmt_seterr(err, errlen, "png: '%s' is not a PNG (bad signature)", path);
  }
  rewind(f);
  rd_t r;
  memset(&r, 0, sizeof r);
  r.f = f;
  r.avail = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : UINT64_MAX;
  int rc = png_read_common(&r, out, err, errlen);
  fclose(f);
  return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* writing                                                                                     */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
  FILE *f;            /* file sink ... */
  unsigned char *buf; /* ... or a growing memory buffer */
  size_t len, cap;
} sink_t;

typedef struct {
  png_structp png;
  png_infop info;
  png_errctx ec;
  sink_t sink;
  unsigned char *row;
  const float *chw;
  int c;
  uint32_t h, w;
} wr_t;

static void wr_fn(png_structp png, png_bytep p, size_t n) {
  sink_t *s = png_get_io_ptr(png);
  if (s->f) {
    if (fwrite(p, 1, n, s->f) != n) png_error(png, "write error");
    return;
  }
  if (n > s->cap - s->len) {
    size_t cap = s->cap ? s->cap : 4096;
    while (cap - s->len < n) {
      if (cap > SIZE_MAX / 2) png_error(png, "out of memory");
      cap *= 2;
    }
    unsigned char *b = realloc(s->buf, cap);
    if (!b) png_error(png, "out of memory");
    s->buf = b;
    s->cap = cap;
  }
  memcpy(s->buf + s->len, p, n);
  s->len += n;
}

static void flush_fn(png_structp png) { (void)png; }

static unsigned char to8(float v) {
  if (!(v > 0.0f)) return 0; /* NaN too */
  if (v >= 1.0f) return 255;
  return (unsigned char)((double)v * 255.0 + 0.5);
}

static int png_encode(wr_t *x) {
  png_structp png = x->png;
  if (setjmp(png_jmpbuf(png))) return -1;
  static const int types[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                               PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
  png_set_write_fn(png, &x->sink, wr_fn, flush_fn);
  png_set_IHDR(png, x->info, x->w, x->h, 8, types[x->c], PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, x->info);
  size_t plane = (size_t)x->w * x->h;
  for (uint32_t y = 0; y < x->h; y++) {
    for (int ch = 0; ch < x->c; ch++) {
      const float *src = x->chw + (size_t)ch * plane + (size_t)y * x->w;
      unsigned char *d = x->row + ch;
      for (uint32_t i = 0; i < x->w; i++) d[(size_t)i * x->c] = to8(src[i]);
    }
    png_write_row(png, x->row);
  }
  png_write_end(png, NULL);
  return 0;
}

/* Encodes into sink (file or memory). */
static int png_write_common(const float *chw, int c, int64_t h, int64_t w, sink_t *sink,
                            char *err, size_t errlen) {
  if (!chw) return fmt_seterr(err, errlen, "png: no data");
  if (c < 1 || c > 4) return fmt_seterr(err, errlen, "png: %d channels (expected 1, 2, 3 or 4)", c);
  if (h < 1 || w < 1 || h > 0x7fffffff || w > 0x7fffffff)
    return fmt_seterr(err, errlen, "png: bad image size %lldx%lld", (long long)h, (long long)w);
  wr_t x;
  memset(&x, 0, sizeof x);
  x.chw = chw;
  x.c = c;
  x.h = (uint32_t)h;
  x.w = (uint32_t)w;
  x.sink = *sink;
  x.ec.err = err;
  x.ec.errlen = errlen;
  x.row = malloc((size_t)w * (size_t)c);
  if (!x.row) return fmt_seterr(err, errlen, "png: out of memory");
  x.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &x.ec, on_error, on_warning);
  if (x.png) x.info = png_create_info_struct(x.png);
  int rc = x.info ? png_encode(&x) : fmt_seterr(err, errlen, "png: out of memory");
  if (x.png) png_destroy_write_struct(&x.png, x.info ? &x.info : NULL);
  free(x.row);
  *sink = x.sink;
  return rc;
}

int fmt_png_write_mem(const float *chw, int c, int64_t h, int64_t w, void **out, size_t *outlen,
                      char *err, size_t errlen) {
  if (out) *out = NULL;
  if (outlen) *outlen = 0;
  if (!out || !outlen) return fmt_seterr(err, errlen, "png: invalid arguments");
  sink_t s;
  memset(&s, 0, sizeof s);
  if (png_write_common(chw, c, h, w, &s, err, errlen) != 0) {
    free(s.buf);
    return -1;
  }
  *out = s.buf;
  *outlen = s.len;
  return 0;
}

int fmt_png_write(const char *path, const float *chw, int c, int64_t h, int64_t w, char *err,
                  size_t errlen) {
  if (!path) return fmt_seterr(err, errlen, "png: invalid arguments");
  fmt_atomic a;
  if (fmt_atomic_open(&a, path, err, errlen) != 0) {
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", err ? err : "");
    return fmt_seterr(err, errlen, "png: %s", tmp);
  }
  sink_t s;
  memset(&s, 0, sizeof s);
  s.f = a.f;
  if (png_write_common(chw, c, h, w, &s, err, errlen) != 0) {
    fmt_atomic_abort(&a);
    return -1;
  }
  if (fmt_atomic_commit(&a, err, errlen) != 0) {
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", err ? err : "");
    return fmt_seterr(err, errlen, "png: %s", tmp);
  }
  return 0;
}
