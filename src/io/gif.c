/* gif.c: a small animated GIF89a encoder: one global palette (256 grays for 1-channel frames;
 * for color the exact colors when there are at most 256, else a median-cut palette computed over
 * all frames), LZW-coded frames, a per-frame delay, looping forever. See fmt.h. */
#include "fmt.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
  unsigned char *b;
  size_t len, cap;
  int oom;
} buf_t;

static void put(buf_t *o, const void *p, size_t n) {
  if (o->oom) return;
  if (n > o->cap - o->len) {
    size_t cap = o->cap ? o->cap : 1 << 16;
    while (cap - o->len < n) {
      if (cap > SIZE_MAX / 2) { o->oom = 1; return; }
      cap *= 2;
    }
    unsigned char *b = realloc(o->b, cap);
    if (!b) { o->oom = 1; return; }
    o->b = b;
    o->cap = cap;
  }
  memcpy(o->b + o->len, p, n);
  o->len += n;
}
static void put1(buf_t *o, unsigned v) {
  unsigned char c = (unsigned char)v;
  put(o, &c, 1);
}
static void put16(buf_t *o, unsigned v) {
  put1(o, v & 0xff);
  put1(o, v >> 8);
}

static unsigned char q8(float v) {
  if (!(v > 0.0f)) return 0; /* NaN too */
  if (v >= 1.0f) return 255;
  return (unsigned char)((double)v * 255.0 + 0.5);
}

/* ------------------------------------------------------------------------------------------ */
/* LZW (GIF variant: variable width 9..12 bits, LSB first, 255-byte sub-blocks)                */
/* ------------------------------------------------------------------------------------------ */

#define LZW_HSIZE 8192 /* power of two, > 2 * 4096 entries keeps probing short */

typedef struct {
  buf_t *o;
  uint32_t acc;
  int nbits;
  unsigned char block[255];
  int blen;
  int32_t key[LZW_HSIZE]; /* (prefix << 8 | byte) + 1; 0 = empty */
  int16_t code[LZW_HSIZE];
} lzw_t;

static void lzw_byte(lzw_t *z, unsigned char c) {
  z->block[z->blen++] = c;
  if (z->blen == 255) {
    put1(z->o, 255);
    put(z->o, z->block, 255);
    z->blen = 0;
  }
}

static void lzw_code(lzw_t *z, unsigned code, int width) {
  z->acc |= (uint32_t)code << z->nbits;
  z->nbits += width;
  while (z->nbits >= 8) {
    lzw_byte(z, (unsigned char)(z->acc & 0xff));
    z->acc >>= 8;
    z->nbits -= 8;
  }
}

static unsigned lzw_slot(int32_t key) {
  return ((uint32_t)key * 2654435761u) >> (32 - 13);
}

/* Codes n palette indices (8-bit minimum code size). The code width follows the decoder: it
 * grows right after the code written when the next free code reaches 1 << width, the way a
 * decoder that adds one entry per code sees it. */
static void lzw_encode(lzw_t *z, const unsigned char *px, size_t n) {
  enum { CLEAR = 256, EOI = 257 };
  int width = 9, next = 258;
  memset(z->key, 0, sizeof z->key);
  z->acc = 0;
  z->nbits = 0;
  z->blen = 0;
  put1(z->o, 8);
  lzw_code(z, CLEAR, width);
  int cur = px[0];
  for (size_t i = 1; i < n; i++) {
    int c = px[i];
    int32_t key = (cur << 8 | c) + 1;
    unsigned s = lzw_slot(key);
    while (z->key[s] && z->key[s] != key) s = (s + 1) & (LZW_HSIZE - 1);
    if (z->key[s]) {
      cur = z->code[s];
      continue;
    }
    lzw_code(z, (unsigned)cur, width);
    if (next > (1 << width) - 1 && width < 12) width++;
    if (next < 4096) {
      z->key[s] = key;
      z->code[s] = (int16_t)next++;
    } else { /* table full: start over */
      lzw_code(z, CLEAR, width);
      memset(z->key, 0, sizeof z->key);
      width = 9;
      next = 258;
    }
    cur = c;
  }
  lzw_code(z, (unsigned)cur, width);
  if (next > (1 << width) - 1 && width < 12) width++;
  lzw_code(z, EOI, width);
  if (z->nbits > 0) lzw_byte(z, (unsigned char)(z->acc & 0xff));
  if (z->blen) {
    put1(z->o, (unsigned)z->blen);
    put(z->o, z->block, (size_t)z->blen);
  }
  put1(z->o, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* palette                                                                                     */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
  uint64_t count[32768];       /* 5-bit-per-channel histogram */
  uint64_t sum[32768][3];
  unsigned char map[32768];    /* bin -> palette index */
  uint32_t bins[32768];        /* the non-empty bins, reordered by the cuts */
  uint32_t tmp[32768];
} hist_t;

typedef struct {
  size_t lo, hi; /* range in bins[] */
  uint64_t count;
  int axis, range;
} box_t;

static int comp5(uint32_t bin, int axis) { return (int)(bin >> (10 - 5 * axis)) & 31; }

static void box_measure(const hist_t *hs, box_t *b) {
  int mn[3] = {31, 31, 31}, mx[3] = {0, 0, 0};
  b->count = 0;
  for (size_t i = b->lo; i < b->hi; i++) {
    uint32_t bin = hs->bins[i];
    b->count += hs->count[bin];
    for (int a = 0; a < 3; a++) {
      int v = comp5(bin, a);
      if (v < mn[a]) mn[a] = v;
      if (v > mx[a]) mx[a] = v;
    }
  }
  b->axis = 0;
  b->range = -1;
  for (int a = 0; a < 3; a++)
    if (mx[a] - mn[a] > b->range) b->range = mx[a] - mn[a], b->axis = a;
}

/* Orders bins[lo..hi) by one 5-bit component: a counting sort (stable, no global state). */
static void sort_bins(hist_t *hs, size_t lo, size_t hi, int axis) {
  size_t start[33] = {0};
  for (size_t i = lo; i < hi; i++) start[comp5(hs->bins[i], axis) + 1]++;
  for (int v = 0; v < 32; v++) start[v + 1] += start[v];
  for (size_t i = lo; i < hi; i++) hs->tmp[start[comp5(hs->bins[i], axis)]++] = hs->bins[i];
  memcpy(hs->bins + lo, hs->tmp, (hi - lo) * sizeof(uint32_t));
}

/* Median cut over the histogram; fills pal (up to 256 colors) and hs->map. Returns the count. */
static int median_cut(hist_t *hs, unsigned char pal[256][3]) {
  size_t nb = 0;
  for (uint32_t b = 0; b < 32768; b++)
    if (hs->count[b]) hs->bins[nb++] = b;
  box_t boxes[256];
  int nbox = 1;
  boxes[0].lo = 0;
  boxes[0].hi = nb;
  box_measure(hs, &boxes[0]);
  while (nbox < 256) {
    int best = -1;
    double score = 0;
    for (int i = 0; i < nbox; i++) {
      double s = (double)boxes[i].count * boxes[i].range;
      if (boxes[i].hi - boxes[i].lo >= 2 && boxes[i].range > 0 && s > score) score = s, best = i;
    }
    if (best < 0) break;
    box_t *b = &boxes[best];
    sort_bins(hs, b->lo, b->hi, b->axis);
    uint64_t half = b->count / 2, acc = 0;
    size_t cut = b->lo + 1;
    for (size_t i = b->lo; i < b->hi - 1; i++) {
      acc += hs->count[hs->bins[i]];
      cut = i + 1;
      if (acc >= half) break;
    }
    boxes[nbox].lo = cut;
    boxes[nbox].hi = b->hi;
    b->hi = cut;
    box_measure(hs, b);
    box_measure(hs, &boxes[nbox]);
    nbox++;
  }
  for (int i = 0; i < nbox; i++) {
    uint64_t s[3] = {0, 0, 0}, c = 0;
    for (size_t k = boxes[i].lo; k < boxes[i].hi; k++) {
      uint32_t bin = hs->bins[k];
      c += hs->count[bin];
      for (int a = 0; a < 3; a++) s[a] += hs->sum[bin][a];
    }
    for (int a = 0; a < 3; a++) pal[i][a] = c ? (unsigned char)((s[a] + c / 2) / c) : 0;
  }
  /* each used bin -> the nearest palette color to the bin's mean */
  for (size_t k = 0; k < nb; k++) {
    uint32_t bin = hs->bins[k];
    uint64_t c = hs->count[bin];
    int m[3];
    for (int a = 0; a < 3; a++) m[a] = (int)((hs->sum[bin][a] + c / 2) / c);
    int bi = 0;
    long bd = -1;
    for (int i = 0; i < nbox; i++) {
      long d = 0;
      for (int a = 0; a < 3; a++) d += (long)(m[a] - pal[i][a]) * (m[a] - pal[i][a]);
      if (bd < 0 || d < bd) bd = d, bi = i;
    }
    hs->map[bin] = (unsigned char)bi;
  }
  return nbox;
}

static int cmp_u32(const void *x, const void *y) {
  uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
  return a < b ? -1 : a > b;
}

/* ------------------------------------------------------------------------------------------ */
/* the file                                                                                    */
/* ------------------------------------------------------------------------------------------ */

static int gif_encode(const float *frames, int64_t n, int c, int64_t h, int64_t w, int delay_ms,
                      buf_t *o, char *err, size_t errlen) {
  if (!frames) return fmt_seterr(err, errlen, "gif: no frames");
  if (n < 1) return fmt_seterr(err, errlen, "gif: no frames");
  if (c < 1 || c > 4) return fmt_seterr(err, errlen, "gif: %d channels (expected 1, 2, 3 or 4)", c);
  if (h < 1 || w < 1 || h > 65535 || w > 65535)
    return fmt_seterr(err, errlen, "gif: frame size %lldx%lld not in 1..65535",
                      (long long)h, (long long)w);
  if (delay_ms < 0) return fmt_seterr(err, errlen, "gif: negative delay %d ms", delay_ms);
  size_t plane = (size_t)h * (size_t)w;
  if ((uint64_t)n > (uint64_t)PTRDIFF_MAX / 16 / plane / (uint64_t)c)
    return fmt_seterr(err, errlen, "gif: too many frames");
  size_t fsz = plane * (size_t)c;
  int color = c >= 3;
  unsigned char pal[256][3];
  memset(pal, 0, sizeof pal);
  hist_t *hs = NULL;
  uint32_t exact[256];
  int nexact = -1; /* >= 0: the frames have only these colors */
  unsigned char *idx = malloc(plane);
  lzw_t *z = malloc(sizeof *z);
  if (!idx || !z) {
    free(idx);
    free(z);
    return fmt_seterr(err, errlen, "gif: out of memory");
  }
  if (!color) {
    for (int i = 0; i < 256; i++) pal[i][0] = pal[i][1] = pal[i][2] = (unsigned char)i;
  } else {
    /* at most 256 distinct colors: keep them exactly (a small hash set finds them) */
    uint32_t set[1024]; /* rgb + 1; 0 = empty */
    memset(set, 0, sizeof set);
    nexact = 0;
    for (int64_t f = 0; f < n && nexact >= 0; f++) {
      const float *fr = frames + (size_t)f * fsz;
      for (size_t i = 0; i < plane && nexact >= 0; i++) {
        uint32_t rgb = (uint32_t)q8(fr[i]) << 16 | (uint32_t)q8(fr[plane + i]) << 8 |
                       q8(fr[2 * plane + i]);
        unsigned s = (rgb * 2654435761u) >> 22;
        while (set[s] && set[s] != rgb + 1) s = (s + 1) & 1023;
        if (!set[s]) {
          if (nexact == 256) {
            nexact = -1;
          } else {
            set[s] = rgb + 1;
            exact[nexact++] = rgb;
          }
        }
      }
    }
    if (nexact >= 0) {
      qsort(exact, (size_t)nexact, sizeof exact[0], cmp_u32);
      for (int k = 0; k < nexact; k++) {
        pal[k][0] = (unsigned char)(exact[k] >> 16);
        pal[k][1] = (unsigned char)(exact[k] >> 8);
        pal[k][2] = (unsigned char)exact[k];
      }
    } else {
      hs = calloc(1, sizeof *hs);
      if (!hs) {
        free(idx);
        free(z);
        return fmt_seterr(err, errlen, "gif: out of memory");
      }
      for (int64_t f = 0; f < n; f++) {
        const float *fr = frames + (size_t)f * fsz;
        for (size_t i = 0; i < plane; i++) {
          unsigned r = q8(fr[i]), g = q8(fr[plane + i]), b = q8(fr[2 * plane + i]);
          uint32_t bin = (r >> 3) << 10 | (g >> 3) << 5 | (b >> 3);
          hs->count[bin]++;
          hs->sum[bin][0] += r;
          hs->sum[bin][1] += g;
          hs->sum[bin][2] += b;
        }
      }
      median_cut(hs, pal);
    }
  }

  put(o, "GIF89a", 6);
  put16(o, (unsigned)w);
  put16(o, (unsigned)h);
  put1(o, 0xF7); /* global table of 2^(7+1) entries, 8-bit color resolution */
  put1(o, 0);    /* background */
  put1(o, 0);    /* aspect */
  put(o, pal, sizeof pal);
  put(o, "\x21\xFF\x0BNETSCAPE2.0\x03\x01\x00\x00\x00", 19); /* loop forever */
  long cs = (delay_ms + 5L) / 10;
  if (cs < 1) cs = 1;
  if (cs > 65535) cs = 65535;
  z->o = o;
  for (int64_t f = 0; f < n && !o->oom; f++) {
    const float *fr = frames + (size_t)f * fsz;
    for (size_t i = 0; i < plane; i++) {
      if (!color) {
        idx[i] = q8(fr[i]);
      } else {
        unsigned r = q8(fr[i]), g = q8(fr[plane + i]), b = q8(fr[2 * plane + i]);
        if (nexact >= 0) {
          uint32_t rgb = r << 16 | g << 8 | b;
          uint32_t *hit = bsearch(&rgb, exact, (size_t)nexact, sizeof exact[0], cmp_u32);
          idx[i] = hit ? (unsigned char)(hit - exact) : 0;
        } else {
          idx[i] = hs->map[(r >> 3) << 10 | (g >> 3) << 5 | (b >> 3)];
        }
      }
    }
    put(o, "\x21\xF9\x04\x04", 4); /* graphic control: disposal 1 (leave), no transparency */
    put16(o, (unsigned)cs);
    put1(o, 0);
    put1(o, 0);
    put1(o, 0x2C); /* image descriptor: full frame, no local table, not interlaced */
    put16(o, 0);
    put16(o, 0);
    put16(o, (unsigned)w);
    put16(o, (unsigned)h);
    put1(o, 0);
    lzw_encode(z, idx, plane);
  }
  put1(o, 0x3B);
  free(hs);
  free(idx);
  free(z);
  if (o->oom) return fmt_seterr(err, errlen, "gif: out of memory");
  return 0;
}

int fmt_gif_write_mem(const float *frames, int64_t n, int c, int64_t h, int64_t w, int delay_ms,
                      void **out, size_t *outlen, char *err, size_t errlen) {
  if (out) *out = NULL;
  if (outlen) *outlen = 0;
  if (!out || !outlen) return fmt_seterr(err, errlen, "gif: invalid arguments");
  buf_t o = {0};
  if (gif_encode(frames, n, c, h, w, delay_ms, &o, err, errlen) != 0) {
    free(o.b);
    return -1;
  }
  *out = o.b;
  *outlen = o.len;
  return 0;
}

int fmt_gif_write(const char *path, const float *frames, int64_t n, int c, int64_t h, int64_t w,
                  int delay_ms, char *err, size_t errlen) {
  if (!path) return fmt_seterr(err, errlen, "gif: invalid arguments");
  buf_t o = {0};
  if (gif_encode(frames, n, c, h, w, delay_ms, &o, err, errlen) != 0) {
    free(o.b);
    return -1;
  }
  int rc = fmt_write_file(path, o.b, o.len, err, errlen);
  free(o.b);
  if (rc != 0) {
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", err ? err : "");
    fmt_seterr(err, errlen, "gif: %s", tmp);
  }
  return rc;
}
