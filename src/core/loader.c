/* loader.c: the batch prefetcher of loader.h: a worker thread fills a ring of batch slots from
 * an in-memory dataset, applying C augmentations with counter-based (Philox) randomness. */
#include "loader.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  ai_aug_kind kind;
  const float *mean, *std; /* NORMALIZE: C entries each (expanded) */
  double p;
  int out_h, out_w, pad, random;
  int max_dy, max_dx;
  int64_t in_h, in_w;      /* the image size this op sees */
} aug_t;

typedef struct {
  int ready;               /* holds a finished batch not yet taken */
  void *x, *y;
  int64_t n, index;
} slot_t;

struct ai_loader {
  pthread_mutex_t mu;
  pthread_cond_t ready_cv, space_cv;
  /* the dataset */
  const unsigned char *data, *labels;
  size_t elem_size, label_bytes, in_sample_bytes;
  int dtype, convert;
  int64_t n, C, H, W;
  float divisor;
  /* the epoch */
  int64_t *order, norder, bs, nbatches, start_batch;
  uint64_t seed, epoch;
  int64_t pos_offset, pos_stride;
  aug_t augs[AI_LOADER_MAXAUG];
  int naugs, nrandom;      /* nrandom: ops that draw */
  float *normvals;         /* the expanded mean/std arrays */
  float *lut;              /* u8 f32 mode: C x 256 final values */
  float *fill;             /* naugs x C: the value of a pixel that leaves the image at op j */
  int out_ndim;
  int64_t out_shape[AI_LOADER_MAXDIM], Ho, Wo;
  size_t out_elem, out_sample_bytes, xbytes;
  int32_t *rowsrc, *rowst, *colsrc, *colst; /* per-sample maps (one filler at a time) */
  /* the ring */
  int nslots, threaded;
  slot_t slots[AI_LOADER_MAXPREFETCH];
  int64_t next_fill, next_take;
  int stop, failed;
  char errmsg[256];
  /* buffer pool */
  void **freebufs;
  int nfree, freecap;
  int64_t refs, outstanding, allocated;
  int closed;
  pthread_t thread;
};

static int seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int seterr(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

/* ---------------------------------------------------------------- randomness */

static void philox10(uint32_t c[4], uint32_t k0, uint32_t k1) {
  for (int r = 0; r < 10; r++) {
    uint64_t p0 = (uint64_t)0xD2511F53u * c[0], p1 = (uint64_t)0xCD9E8D57u * c[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    uint32_t n0 = hi1 ^ c[1] ^ k0, n2 = hi0 ^ c[3] ^ k1;
    c[0] = n0;
    c[1] = lo1;
    c[2] = n2;
    c[3] = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
}

double ai_loader_uniform(uint64_t seed, uint64_t epoch, uint64_t pos, uint32_t k) {
  uint32_t c[4] = {k, (uint32_t)pos, (uint32_t)(pos >> 32), (uint32_t)epoch};
  uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32) ^ (uint32_t)(epoch >> 32) * 0x85EBCA6Bu;
  philox10(c, k0, k1);
  uint64_t bits = ((uint64_t)c[0] << 32 | c[1]) >> 11;
  return (double)bits * 0x1p-53;
}

static int64_t rand_int(const ai_loader *ld, uint64_t pos, uint32_t *k, int64_t n) {
  double u = ai_loader_uniform(ld->seed, ld->epoch, pos, (*k)++);
  int64_t v = (int64_t)(u * (double)n);
  return v >= n ? n - 1 : v;
}

/* ---------------------------------------------------------------- filling one batch */

/* Builds the row and column maps of the sample at order position pos: for output row y,
 * rowsrc[y] is the source row and rowst[y] = -1, or rowst[y] = j when the row leaves the image
 * at op j (the latest such op). Same for columns. */
static void sample_maps(ai_loader *ld, uint64_t pos) {
  int na = ld->naugs;
  int flip[AI_LOADER_MAXAUG];
  int64_t offy[AI_LOADER_MAXAUG], offx[AI_LOADER_MAXAUG];
  uint32_t k = 0;
  for (int j = 0; j < na; j++) { /* draws in list order */
    const aug_t *a = &ld->augs[j];
    flip[j] = 0;
    offy[j] = offx[j] = 0;
    switch (a->kind) {
    case AI_AUG_HFLIP:
      flip[j] = ai_loader_uniform(ld->seed, ld->epoch, pos, k++) < a->p;
      break;
    case AI_AUG_CROP:
      if (a->random) {
        int64_t top = rand_int(ld, pos, &k, a->in_h + 2 * a->pad - a->out_h + 1);
        int64_t left = rand_int(ld, pos, &k, a->in_w + 2 * a->pad - a->out_w + 1);
        offy[j] = top - a->pad; /* source = output + off */
        offx[j] = left - a->pad;
      } else {
        int64_t dh = a->in_h - a->out_h, dw = a->in_w - a->out_w;
        offy[j] = dh >= 0 ? dh / 2 : -((-dh + 1) / 2);
        offx[j] = dw >= 0 ? dw / 2 : -((-dw + 1) / 2);
      }
      break;
    case AI_AUG_SHIFT: {
      int64_t dy = rand_int(ld, pos, &k, 2 * (int64_t)a->max_dy + 1) - a->max_dy;
      int64_t dx = rand_int(ld, pos, &k, 2 * (int64_t)a->max_dx + 1) - a->max_dx;
      offy[j] = -dy;
      offx[j] = -dx;
      break;
    }
    default:
      break;
    }
  }
  for (int64_t y = 0; y < ld->Ho; y++) {
    int64_t c = y;
    int st = -1;
    for (int j = na - 1; j >= 0; j--) {
      const aug_t *a = &ld->augs[j];
      if (a->kind == AI_AUG_CROP || a->kind == AI_AUG_SHIFT) {
        c += offy[j];
        if (c < 0 || c >= a->in_h) { st = j; break; }
      }
    }
    ld->rowst[y] = st;
    ld->rowsrc[y] = st < 0 ? (int32_t)c : 0;
  }
  for (int64_t x = 0; x < ld->Wo; x++) {
    int64_t c = x;
    int st = -1;
    for (int j = na - 1; j >= 0; j--) {
      const aug_t *a = &ld->augs[j];
      if (a->kind == AI_AUG_HFLIP) {
        if (flip[j]) c = a->in_w - 1 - c;
      } else if (a->kind == AI_AUG_CROP || a->kind == AI_AUG_SHIFT) {
        c += offx[j];
        if (c < 0 || c >= a->in_w) { st = j; break; }
      }
    }
    ld->colst[x] = st;
    ld->colsrc[x] = st < 0 ? (int32_t)c : 0;
  }
}

/* The final value of a source value v of channel c (f32 data). */
static inline float chain(const ai_loader *ld, float v, int64_t c) {
  v = v / ld->divisor;
  for (int j = 0; j < ld->naugs; j++) {
    const aug_t *a = &ld->augs[j];
    if (a->kind == AI_AUG_NORMALIZE) v = (v - a->mean[c]) / a->std[c];
  }
  return v;
}

static void fill_sample_f32(ai_loader *ld, const unsigned char *src, float *dst, uint64_t pos) {
  int64_t C = ld->C, H = ld->H, W = ld->W, Ho = ld->Ho, Wo = ld->Wo;
  int geometric = ld->nrandom > 0 || Ho != H || Wo != W;
  for (int j = 0; j < ld->naugs && !geometric; j++)
    if (ld->augs[j].kind != AI_AUG_NORMALIZE) geometric = 1;
  if (!geometric) { /* values only */
    int64_t hw = H * W;
    for (int64_t c = 0; c < C; c++) {
      float *d = dst + c * hw;
      if (ld->dtype == AI_LOADER_U8) {
        const unsigned char *s = src + c * hw;
        const float *lut = ld->lut + c * 256;
        for (int64_t i = 0; i < hw; i++) d[i] = lut[s[i]];
      } else {
        const float *s = (const float *)src + c * hw;
        for (int64_t i = 0; i < hw; i++) d[i] = chain(ld, s[i], c);
      }
    }
    return;
  }
  sample_maps(ld, pos);
  /* Translations and flips map the valid columns to one run [x0, x1) with source columns
   * colsrc[x0] + step * (x - x0), step = +-1; rows outside it are filled per pixel. */
  int64_t x0 = 0, x1 = 0, step = 1;
  while (x0 < Wo && ld->colst[x0] >= 0) x0++;
  x1 = x0;
  while (x1 < Wo && ld->colst[x1] < 0) x1++;
  if (x1 - x0 >= 2) step = ld->colsrc[x0 + 1] - ld->colsrc[x0];
  int run = step == 1 || step == -1;
  for (int64_t x = x0; x < x1 && run; x++)
    if (ld->colsrc[x] != ld->colsrc[x0] + step * (x - x0)) run = 0;
  for (int64_t x = x1; x < Wo && run; x++)
    if (ld->colst[x] < 0) run = 0;
  if (run && ld->dtype == AI_LOADER_U8) {
    for (int64_t c = 0; c < C; c++) {
      const float *lut = ld->lut + c * 256;
      for (int64_t y = 0; y < Ho; y++) {
        float *d = dst + (c * Ho + y) * Wo;
        int rs = ld->rowst[y];
        if (rs >= 0) {
          for (int64_t x = 0; x < Wo; x++) {
            int st = ld->colst[x] > rs ? ld->colst[x] : rs;
            d[x] = ld->fill[st * C + c];
          }
          continue;
        }
        for (int64_t x = 0; x < x0; x++) d[x] = ld->fill[ld->colst[x] * C + c];
        const unsigned char *s = src + (c * H + ld->rowsrc[y]) * W + (x1 > x0 ? ld->colsrc[x0] : 0);
        if (step == 1)
          for (int64_t x = x0; x < x1; x++) d[x] = lut[s[x - x0]];
        else
          for (int64_t x = x0; x < x1; x++) d[x] = lut[s[x0 - x]];
        for (int64_t x = x1; x < Wo; x++) d[x] = ld->fill[ld->colst[x] * C + c];
      }
    }
    return;
  }
  for (int64_t c = 0; c < C; c++) {
    for (int64_t y = 0; y < Ho; y++) {
      float *d = dst + (c * Ho + y) * Wo;
      int rs = ld->rowst[y];
      if (rs >= 0) {
        for (int64_t x = 0; x < Wo; x++) {
          int st = ld->colst[x] > rs ? ld->colst[x] : rs;
          d[x] = ld->fill[st * C + c];
        }
        continue;
      }
      int64_t row = (c * H + ld->rowsrc[y]) * W;
      if (ld->dtype == AI_LOADER_U8) {
        const unsigned char *s = src + row;
        const float *lut = ld->lut + c * 256;
        for (int64_t x = 0; x < Wo; x++) {
          int cs = ld->colst[x];
          d[x] = cs < 0 ? lut[s[ld->colsrc[x]]] : ld->fill[cs * C + c];
        }
      } else {
        const float *s = (const float *)src + row;
        for (int64_t x = 0; x < Wo; x++) {
          int cs = ld->colst[x];
          d[x] = cs < 0 ? chain(ld, s[ld->colsrc[x]], c) : ld->fill[cs * C + c];
        }
      }
    }
  }
}

static void fill_batch(ai_loader *ld, int64_t k, void *x, void *y, int64_t *nout) {
  int64_t first = k * ld->bs, n = ld->norder - first;
  if (n > ld->bs) n = ld->bs;
  for (int64_t i = 0; i < n; i++) {
    int64_t pos = first + i, idx = ld->order[pos];
    const unsigned char *src = ld->data + (size_t)idx * ld->in_sample_bytes;
    unsigned char *dst = (unsigned char *)x + (size_t)i * ld->out_sample_bytes;
    if (ld->convert) fill_sample_f32(ld, src, (float *)dst, (uint64_t)(ld->pos_offset + pos * ld->pos_stride));
    else memcpy(dst, src, ld->in_sample_bytes);
    if (y) memcpy((unsigned char *)y + (size_t)i * ld->label_bytes, ld->labels + (size_t)idx * ld->label_bytes,
                  ld->label_bytes);
  }
  *nout = n;
}

/* ---------------------------------------------------------------- the pool */

static void destroy(ai_loader *ld) {
  for (int i = 0; i < ld->nfree; i++) free(ld->freebufs[i]);
  for (int i = 0; i < ld->nslots; i++) {
    free(ld->slots[i].x);
    free(ld->slots[i].y);
  }
  free(ld->freebufs);
  free(ld->order);
  free(ld->normvals);
  free(ld->lut);
  free(ld->fill);
  free(ld->rowsrc);
  free(ld->rowst);
  free(ld->colsrc);
  free(ld->colst);
  pthread_mutex_destroy(&ld->mu);
  pthread_cond_destroy(&ld->ready_cv);
  pthread_cond_destroy(&ld->space_cv);
  free(ld);
}

/* Called with mu held: a buffer from the pool or NULL (then malloc outside the lock). */
static void *pool_get_locked(ai_loader *ld) { return ld->nfree ? ld->freebufs[--ld->nfree] : NULL; }

void ai_loader_release_x(void *loader, void *buf) {
  ai_loader *ld = loader;
  if (!ld) { free(buf); return; }
  pthread_mutex_lock(&ld->mu);
  if (buf && !ld->closed && ld->nfree < ld->freecap) ld->freebufs[ld->nfree++] = buf;
  else free(buf);
  ld->outstanding--;
  int last = --ld->refs == 0;
  pthread_mutex_unlock(&ld->mu);
  if (last) destroy(ld);
}

void ai_loader_release_y(void *unused, void *buf) {
  (void)unused;
  free(buf);
}

void ai_loader_stats(ai_loader *ld, int64_t *outstanding, int64_t *allocated) {
  pthread_mutex_lock(&ld->mu);
  if (outstanding) *outstanding = ld->outstanding;
  if (allocated) *allocated = ld->allocated;
  pthread_mutex_unlock(&ld->mu);
}

/* Produces batch k into freshly obtained buffers; called without the lock. */
static int produce(ai_loader *ld, int64_t k, slot_t *out) {
  pthread_mutex_lock(&ld->mu);
  void *x = pool_get_locked(ld);
  pthread_mutex_unlock(&ld->mu);
  int fresh = 0;
  if (!x) {
    x = malloc(ld->xbytes ? ld->xbytes : 1);
    fresh = 1;
  }
  void *y = ld->labels ? malloc(ld->bs * ld->label_bytes + 1) : NULL;
  if (!x || (ld->labels && !y)) {
    free(x);
    free(y);
    return -1;
  }
  fill_batch(ld, k, x, y, &out->n);
  out->x = x;
  out->y = y;
  out->index = k;
  if (fresh) {
    pthread_mutex_lock(&ld->mu);
    ld->allocated++;
    pthread_mutex_unlock(&ld->mu);
  }
  return 0;
}

static void *worker(void *arg) {
  ai_loader *ld = arg;
  pthread_mutex_lock(&ld->mu);
  for (;;) {
    while (!ld->stop && ld->next_fill < ld->nbatches && ld->next_fill - ld->next_take >= ld->nslots)
      pthread_cond_wait(&ld->space_cv, &ld->mu);
    if (ld->stop || ld->next_fill >= ld->nbatches) break;
    int64_t k = ld->next_fill;
    pthread_mutex_unlock(&ld->mu);
    slot_t s = {0};
    int rc = produce(ld, k, &s);
    pthread_mutex_lock(&ld->mu);
    if (rc) {
      ld->failed = 1;
      snprintf(ld->errmsg, sizeof ld->errmsg, "out of memory building batch %lld", (long long)k + 1);
      pthread_cond_broadcast(&ld->ready_cv);
      break;
    }
    s.ready = 1;
    ld->slots[k % ld->nslots] = s;
    ld->next_fill = k + 1;
    pthread_cond_broadcast(&ld->ready_cv);
  }
  pthread_mutex_unlock(&ld->mu);
  return NULL;
}

/* ---------------------------------------------------------------- public */

static int mul_ok(int64_t a, int64_t b, int64_t *out) {
  if (a < 0 || b < 0) return 0;
  if (a && b > INT64_MAX / a) return 0;
  *out = a * b;
  return 1;
}

ai_loader *ai_loader_new(const ai_loader_config *cfg, char *err, size_t errlen) {
  if (!cfg) return seterr(err, errlen, "no configuration"), NULL;
  if (cfg->n < 0 || cfg->norder < 0) return seterr(err, errlen, "negative sample count"), NULL;
  if (cfg->batch_size < 1) return seterr(err, errlen, "batch_size must be at least 1, got %lld", (long long)cfg->batch_size), NULL;
  if (cfg->prefetch < 0 || cfg->prefetch > AI_LOADER_MAXPREFETCH)
    return seterr(err, errlen, "prefetch must be 0..%d, got %d", AI_LOADER_MAXPREFETCH, cfg->prefetch), NULL;
  if (cfg->sample_ndim < 0 || cfg->sample_ndim > AI_LOADER_MAXDIM)
    return seterr(err, errlen, "a sample has %d dimensions (at most %d)", cfg->sample_ndim, AI_LOADER_MAXDIM), NULL;
  if (cfg->naugs < 0 || cfg->naugs > AI_LOADER_MAXAUG)
    return seterr(err, errlen, "at most %d augmentations, got %d", AI_LOADER_MAXAUG, cfg->naugs), NULL;
  if (cfg->elem_size == 0) return seterr(err, errlen, "element size is 0"), NULL;
  if (cfg->n > 0 && !cfg->data) return seterr(err, errlen, "no data"), NULL;
  if (cfg->norder > 0 && !cfg->order) return seterr(err, errlen, "no order"), NULL;
  if (cfg->labels && cfg->label_bytes == 0) return seterr(err, errlen, "labels of 0 bytes"), NULL;
  if (!cfg->convert && cfg->naugs) return seterr(err, errlen, "augmentations need the f32 mode"), NULL;
  if (cfg->convert && cfg->dtype != AI_LOADER_U8 && cfg->dtype != AI_LOADER_F32)
    return seterr(err, errlen, "augmented data must be u8 or f32"), NULL;
  if (cfg->convert && cfg->dtype == AI_LOADER_U8 && cfg->elem_size != 1)
    return seterr(err, errlen, "u8 data with element size %zu", cfg->elem_size), NULL;
  if (cfg->convert && cfg->dtype == AI_LOADER_F32 && cfg->elem_size != 4)
    return seterr(err, errlen, "f32 data with element size %zu", cfg->elem_size), NULL;
  if (cfg->convert && !(cfg->divisor > 0 || cfg->divisor < 0))
    return seterr(err, errlen, "divisor must be non-zero"), NULL;

  int64_t sample_elems = 1;
  for (int d = 0; d < cfg->sample_ndim; d++)
    if (!mul_ok(sample_elems, cfg->sample_shape[d], &sample_elems))
      return seterr(err, errlen, "bad sample shape"), NULL;
  int64_t dummy;
  if (!mul_ok(sample_elems, (int64_t)cfg->elem_size, &dummy) || !mul_ok(dummy, cfg->n, &dummy))
    return seterr(err, errlen, "dataset too large"), NULL;
  for (int64_t i = 0; i < cfg->norder; i++)
    if (cfg->order[i] < 0 || cfg->order[i] >= cfg->n)
      return seterr(err, errlen, "order[%lld] = %lld is not a sample index (0..%lld)", (long long)i,
                    (long long)cfg->order[i], (long long)cfg->n - 1), NULL;

  ai_loader *ld = calloc(1, sizeof *ld);
  if (!ld) return seterr(err, errlen, "out of memory"), NULL;
  if (pthread_mutex_init(&ld->mu, NULL)) { free(ld); return seterr(err, errlen, "mutex init failed"), NULL; }
  pthread_cond_init(&ld->ready_cv, NULL);
  pthread_cond_init(&ld->space_cv, NULL);
  ld->refs = 1;
  ld->data = cfg->data;
  ld->labels = cfg->labels;
  ld->label_bytes = cfg->labels ? cfg->label_bytes : 0;
  ld->elem_size = cfg->elem_size;
  ld->in_sample_bytes = (size_t)sample_elems * cfg->elem_size;
  ld->dtype = cfg->dtype;
  ld->convert = cfg->convert;
  ld->n = cfg->n;
  ld->divisor = cfg->convert ? cfg->divisor : 1;
  ld->norder = cfg->norder;
  ld->bs = cfg->batch_size;
  ld->nbatches = cfg->norder / cfg->batch_size + (!cfg->drop_last && cfg->norder % cfg->batch_size != 0); /* no overflow */
  ld->start_batch = cfg->start_batch < 0 ? 0 : cfg->start_batch > ld->nbatches ? ld->nbatches : cfg->start_batch;
  ld->next_fill = ld->next_take = ld->start_batch;
  ld->seed = cfg->seed;
  ld->epoch = cfg->epoch;
  ld->pos_offset = cfg->pos_offset;
  ld->pos_stride = cfg->pos_stride ? cfg->pos_stride : 1;
  ld->nslots = cfg->prefetch ? cfg->prefetch : 1;
  ld->freecap = ld->nslots + 72; /* room for what a collection hands back at once (l_data.c) */
  ld->order = malloc(sizeof(int64_t) * (size_t)(cfg->norder ? cfg->norder : 1));
  ld->freebufs = calloc((size_t)ld->freecap, sizeof(void *));
  if (!ld->order || !ld->freebufs) goto oom;
  if (cfg->norder) memcpy(ld->order, cfg->order, sizeof(int64_t) * (size_t)cfg->norder);

  /* geometry: a sample is C x H x W */
  ld->out_ndim = cfg->sample_ndim;
  memcpy(ld->out_shape, cfg->sample_shape, sizeof(int64_t) * (size_t)cfg->sample_ndim);
  if (cfg->sample_ndim >= 2) {
    ld->H = cfg->sample_shape[cfg->sample_ndim - 2];
    ld->W = cfg->sample_shape[cfg->sample_ndim - 1];
  } else {
    ld->H = 1;
    ld->W = cfg->sample_ndim == 1 ? cfg->sample_shape[0] : 1;
  }
  ld->C = (ld->H > 0 && ld->W > 0) ? sample_elems / (ld->H * ld->W) : 0;
  int64_t h = ld->H, w = ld->W;
  ld->naugs = cfg->naugs;
  size_t nnorm = 0;
  for (int j = 0; j < cfg->naugs; j++)
    if (cfg->augs[j].kind == AI_AUG_NORMALIZE) nnorm++;
  if (nnorm) {
    ld->normvals = malloc(sizeof(float) * 2 * nnorm * (size_t)(ld->C ? ld->C : 1));
    if (!ld->normvals) goto oom;
  }
  float *nv = ld->normvals;
  for (int j = 0; j < cfg->naugs; j++) {
    const ai_loader_aug *s = &cfg->augs[j];
    aug_t *a = &ld->augs[j];
    a->kind = s->kind;
    a->in_h = h;
    a->in_w = w;
    switch (s->kind) {
    case AI_AUG_NORMALIZE:
      if (s->nch != 1 && s->nch != ld->C) {
        seterr(err, errlen, "normalize %d: %d mean/std values for %lld channels", j + 1, s->nch, (long long)ld->C);
        goto fail;
      }
      for (int64_t c = 0; c < ld->C; c++) {
        int64_t i = s->nch == 1 ? 0 : c;
        if (!(s->std[i] > 0 || s->std[i] < 0)) {
          seterr(err, errlen, "normalize %d: std must be non-zero", j + 1);
          goto fail;
        }
        nv[c] = s->mean[i];
        nv[ld->C + c] = s->std[i];
      }
      a->mean = nv;
      a->std = nv + ld->C;
      nv += 2 * ld->C;
      break;
    case AI_AUG_HFLIP:
      if (!(s->p >= 0 && s->p <= 1)) {
        seterr(err, errlen, "horizontal flip %d: p must be in [0, 1], got %g", j + 1, s->p);
        goto fail;
      }
      a->p = s->p;
      ld->nrandom++;
      break;
    case AI_AUG_CROP:
      if (s->out_h < 1 || s->out_w < 1 || s->pad < 0) {
        seterr(err, errlen, "crop %d: size must be positive and padding non-negative", j + 1);
        goto fail;
      }
      a->out_h = s->out_h;
      a->out_w = s->out_w;
      a->random = s->random;
      a->pad = s->random ? s->pad : 0;
      if (s->random && (h + 2 * a->pad < s->out_h || w + 2 * a->pad < s->out_w)) {
        seterr(err, errlen, "random crop %d: a %dx%d window is larger than the padded %lldx%lld image", j + 1,
               s->out_h, s->out_w, (long long)(h + 2 * a->pad), (long long)(w + 2 * a->pad));
        goto fail;
      }
      if (s->random) ld->nrandom++;
      h = s->out_h;
      w = s->out_w;
      break;
    case AI_AUG_SHIFT:
      if (s->max_dy < 0 || s->max_dx < 0) {
        seterr(err, errlen, "shift %d: the maximum shift must be non-negative", j + 1);
        goto fail;
      }
      a->max_dy = s->max_dy;
      a->max_dx = s->max_dx;
      ld->nrandom++;
      break;
    default:
      seterr(err, errlen, "augmentation %d: unknown kind %d", j + 1, (int)s->kind);
      goto fail;
    }
  }
  ld->Ho = h;
  ld->Wo = w;
  if (cfg->sample_ndim >= 2) {
    ld->out_shape[cfg->sample_ndim - 2] = h;
    ld->out_shape[cfg->sample_ndim - 1] = w;
  } else if (h != ld->H || w != ld->W) {
    seterr(err, errlen, "a crop needs samples of at least 2 dimensions");
    goto fail;
  }
  ld->out_elem = cfg->convert ? sizeof(float) : cfg->elem_size;
  ld->out_sample_bytes = (size_t)(ld->C * h * w) * ld->out_elem;
  if (!cfg->convert) ld->out_sample_bytes = ld->in_sample_bytes;
  if (!mul_ok((int64_t)ld->out_sample_bytes, ld->bs, &dummy)) {
    seterr(err, errlen, "batch too large");
    goto fail;
  }
  ld->xbytes = ld->out_sample_bytes * (size_t)ld->bs;
  if (cfg->convert) {
    int64_t C = ld->C ? ld->C : 1;
    ld->fill = malloc(sizeof(float) * (size_t)(ld->naugs ? ld->naugs : 1) * (size_t)C);
    ld->rowsrc = malloc(sizeof(int32_t) * (size_t)(h ? h : 1));
    ld->rowst = malloc(sizeof(int32_t) * (size_t)(h ? h : 1));
    ld->colsrc = malloc(sizeof(int32_t) * (size_t)(w ? w : 1));
    ld->colst = malloc(sizeof(int32_t) * (size_t)(w ? w : 1));
    if (!ld->fill || !ld->rowsrc || !ld->rowst || !ld->colsrc || !ld->colst) goto oom;
    if (ld->H > INT32_MAX || ld->W > INT32_MAX) {
      seterr(err, errlen, "image too large");
      goto fail;
    }
    for (int j = 0; j < ld->naugs; j++)
      for (int64_t c = 0; c < ld->C; c++) {
        float v = 0;
        for (int i = j + 1; i < ld->naugs; i++)
          if (ld->augs[i].kind == AI_AUG_NORMALIZE) v = (v - ld->augs[i].mean[c]) / ld->augs[i].std[c];
        ld->fill[j * ld->C + c] = v;
      }
    if (ld->dtype == AI_LOADER_U8) {
      ld->lut = malloc(sizeof(float) * 256 * (size_t)C);
      if (!ld->lut) goto oom;
      for (int64_t c = 0; c < ld->C; c++)
        for (int r = 0; r < 256; r++) ld->lut[c * 256 + r] = chain(ld, (float)r, c);
    }
  }
  if (cfg->prefetch > 0 && ld->start_batch < ld->nbatches) {
    if (pthread_create(&ld->thread, NULL, worker, ld)) {
      seterr(err, errlen, "cannot start the loader thread");
      goto fail;
    }
    ld->threaded = 1;
  }
  return ld;
oom:
  seterr(err, errlen, "out of memory");
fail:
  destroy(ld);
  return NULL;
}

int64_t ai_loader_num_batches(const ai_loader *ld) { return ld->nbatches; }

int ai_loader_sample_shape(const ai_loader *ld, int64_t *shape) {
  memcpy(shape, ld->out_shape, sizeof(int64_t) * (size_t)ld->out_ndim);
  return ld->out_ndim;
}

size_t ai_loader_out_elem_size(const ai_loader *ld) { return ld->out_elem; }

int ai_loader_next(ai_loader *ld, ai_loader_batch *b, char *err, size_t errlen) {
  memset(b, 0, sizeof *b);
  pthread_mutex_lock(&ld->mu);
  int64_t k = ld->next_take;
  if (k >= ld->nbatches) {
    pthread_mutex_unlock(&ld->mu);
    return 0;
  }
  slot_t s = {0};
  if (ld->threaded) {
    slot_t *sl = &ld->slots[k % ld->nslots];
    while (!sl->ready && !ld->failed) pthread_cond_wait(&ld->ready_cv, &ld->mu);
    if (!sl->ready) {
      int rc = seterr(err, errlen, "%s", ld->errmsg);
      pthread_mutex_unlock(&ld->mu);
      return rc;
    }
    s = *sl;
    memset(sl, 0, sizeof *sl);
  } else {
    pthread_mutex_unlock(&ld->mu);
    if (produce(ld, k, &s)) return seterr(err, errlen, "out of memory building batch %lld", (long long)k + 1);
    pthread_mutex_lock(&ld->mu);
  }
  ld->next_take = k + 1;
  ld->outstanding++;
  ld->refs++;
  pthread_cond_broadcast(&ld->space_cv);
  pthread_mutex_unlock(&ld->mu);
  b->x = s.x;
  b->y = s.y;
  b->n = s.n;
  b->index = s.index;
  return 1;
}

void ai_loader_free(ai_loader *ld) {
  if (!ld) return;
  pthread_mutex_lock(&ld->mu);
  ld->stop = 1;
  pthread_cond_broadcast(&ld->space_cv);
  pthread_mutex_unlock(&ld->mu);
  if (ld->threaded) pthread_join(ld->thread, NULL);
  ld->threaded = 0;
  pthread_mutex_lock(&ld->mu);
  ld->closed = 1;
  for (int i = 0; i < ld->nfree; i++) free(ld->freebufs[i]);
  ld->nfree = 0;
  for (int i = 0; i < ld->nslots; i++) { /* batches built but never taken */
    free(ld->slots[i].x);
    free(ld->slots[i].y);
    memset(&ld->slots[i], 0, sizeof ld->slots[i]);
  }
  int last = --ld->refs == 0;
  pthread_mutex_unlock(&ld->mu);
  if (last) destroy(ld);
}
