/* test_io_png.c: unit tests of the pure-C file-format layer (src/io): PNG (round trips, every
 * color type and bit depth, bad files) and animated GIF (read back by an independent decoder).
 * Shared helpers and how to build: io_test.h. */
#define _POSIX_C_SOURCE 200809L
#include "io_test.h"

#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <zlib.h>

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


int main(void) {
  static void (*const tests[])(void) = {test_png_roundtrip, test_png_variants, test_png_bad, test_gif};
  return io_test_main("test_io_png", tests, (int)(sizeof tests / sizeof *tests));
}
