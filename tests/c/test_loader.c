/* test_loader.c: unit tests of the batch prefetcher (src/core/loader.c): raw and converted
 * batches, augmentations against a direct reference, determinism across prefetch depths,
 * resuming at a batch, drop_last, errors, shutdown with batches in flight, buffers that outlive
 * the loader, and the throughput on Fashion-MNIST-sized data (printed, not asserted).
 *
 * Build and run from the repository root:
 *   gcc -std=gnu11 -O2 -g -pthread -Isrc tests/c/test_loader.c src/core/loader.c -o build/test_loader
 *   build/test_loader
 * (-fsanitize=thread or -fsanitize=address,undefined to check the threading and memory).
 * The last line printed is "N passed, M failed"; the exit status is non-zero on any failure. */
#define _POSIX_C_SOURCE 200809L
#include "core/loader.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"

int npass, nfail;
static char err[256];

enum { N = 300, C = 2, H = 9, W = 7 };
static uint8_t images[N * C * H * W];
static int64_t labels[N], order[N];

static ai_loader_config base_config(void) {
  ai_loader_config c;
  memset(&c, 0, sizeof c);
  c.data = images;
  c.dtype = AI_LOADER_U8;
  c.elem_size = 1;
  c.n = N;
  c.sample_ndim = 3;
  c.sample_shape[0] = C;
  c.sample_shape[1] = H;
  c.sample_shape[2] = W;
  c.labels = labels;
  c.label_bytes = sizeof(int64_t);
  c.order = order;
  c.norder = N;
  c.batch_size = 32;
  c.convert = 1;
  c.divisor = 255;
  c.seed = 7;
  c.epoch = 1;
  c.prefetch = 3;
  return c;
}

/* All batches of an epoch, concatenated (x as floats or bytes), and the labels. */
typedef struct {
  unsigned char *x;
  int64_t *y;
  size_t xbytes;
  int64_t nbatch, nsamples;
} epoch_t;

static epoch_t run_epoch(const ai_loader_config *cfg) {
  epoch_t e = {0};
  ai_loader *ld = ai_loader_new(cfg, err, sizeof err);
  if (!ld) {
    printf("loader: %s\n", err);
    return e;
  }
  int64_t shape[8];
  int nd = ai_loader_sample_shape(ld, shape);
  size_t per = ai_loader_out_elem_size(ld);
  for (int d = 0; d < nd; d++) per *= (size_t)shape[d];
  e.x = malloc(per * (size_t)cfg->norder + 1);
  e.y = malloc(sizeof(int64_t) * (size_t)cfg->norder + 1);
  ai_loader_batch b;
  int rc;
  while ((rc = ai_loader_next(ld, &b, err, sizeof err)) == 1) {
    memcpy(e.x + e.xbytes, b.x, per * (size_t)b.n);
    if (b.y) memcpy(e.y + e.nsamples, b.y, sizeof(int64_t) * (size_t)b.n);
    e.xbytes += per * (size_t)b.n;
    e.nsamples += b.n;
    e.nbatch++;
    ai_loader_release_x(ld, b.x);
    ai_loader_release_y(NULL, b.y);
  }
  CHECK(rc == 0, "epoch ended with %d (%s)", rc, err);
  ai_loader_free(ld);
  return e;
}

static void free_epoch(epoch_t *e) {
  free(e->x);
  free(e->y);
}

/* ---- a direct reference of one augmented sample: op by op on padded float images ---- */
static void reference_sample(const ai_loader_config *cfg, int64_t pos, int64_t idx, float *out, int *oh, int *ow) {
  int h = H, w = W;
  float *cur = malloc(sizeof(float) * C * 64 * 64), *nxt = malloc(sizeof(float) * C * 64 * 64);
  for (int i = 0; i < C * H * W; i++) cur[i] = (float)images[idx * C * H * W + i] / cfg->divisor;
  uint32_t k = 0;
  for (int j = 0; j < cfg->naugs; j++) {
    const ai_loader_aug *a = &cfg->augs[j];
    if (a->kind == AI_AUG_NORMALIZE) {
      for (int c = 0; c < C; c++)
        for (int i = 0; i < h * w; i++) {
          int m = a->nch == 1 ? 0 : c;
          cur[c * h * w + i] = (cur[c * h * w + i] - a->mean[m]) / a->std[m];
        }
      continue;
    }
    int nh = h, nw = w, top = 0, left = 0, flip = 0;
    if (a->kind == AI_AUG_HFLIP) {
      flip = ai_loader_uniform(cfg->seed, cfg->epoch, (uint64_t)pos, k++) < a->p;
    } else if (a->kind == AI_AUG_CROP) {
      nh = a->out_h;
      nw = a->out_w;
      if (a->random) {
        double u0 = ai_loader_uniform(cfg->seed, cfg->epoch, (uint64_t)pos, k++);
        double u1 = ai_loader_uniform(cfg->seed, cfg->epoch, (uint64_t)pos, k++);
        top = (int)floor(u0 * (h + 2 * a->pad - nh + 1)) - a->pad;
        left = (int)floor(u1 * (w + 2 * a->pad - nw + 1)) - a->pad;
      } else {
        top = (int)floor((h - nh) / 2.0);
        left = (int)floor((w - nw) / 2.0);
      }
    } else if (a->kind == AI_AUG_SHIFT) {
      double u0 = ai_loader_uniform(cfg->seed, cfg->epoch, (uint64_t)pos, k++);
      double u1 = ai_loader_uniform(cfg->seed, cfg->epoch, (uint64_t)pos, k++);
      top = -((int)floor(u0 * (2 * a->max_dy + 1)) - a->max_dy);
      left = -((int)floor(u1 * (2 * a->max_dx + 1)) - a->max_dx);
    }
    for (int c = 0; c < C; c++)
      for (int y = 0; y < nh; y++)
        for (int x = 0; x < nw; x++) {
          int sy = y + top, sx = flip ? w - 1 - x : x + left;
          nxt[(c * nh + y) * nw + x] = (sy >= 0 && sy < h && sx >= 0 && sx < w) ? cur[(c * h + sy) * w + sx] : 0.0f;
        }
    float *t = cur;
    cur = nxt;
    nxt = t;
    h = nh;
    w = nw;
  }
  memcpy(out, cur, sizeof(float) * (size_t)(C * h * w));
  *oh = h;
  *ow = w;
  free(cur);
  free(nxt);
}

static void test_raw(void) {
  ai_loader_config c = base_config();
  c.convert = 0;
  epoch_t e = run_epoch(&c);
  CHECK(e.nbatch == (N + 31) / 32, "raw: %lld batches", (long long)e.nbatch);
  CHECK(e.nsamples == N && memcmp(e.x, images, sizeof images) == 0, "raw: bytes differ");
  CHECK(memcmp(e.y, labels, sizeof labels) == 0, "raw: labels differ");
  free_epoch(&e);
  c.drop_last = 1;
  e = run_epoch(&c);
  CHECK(e.nbatch == N / 32 && e.nsamples == N / 32 * 32, "drop_last: %lld batches", (long long)e.nbatch);
  free_epoch(&e);
}

static void test_augmented(void) {
  static const float mean[C] = {0.5f, 0.25f}, sd[C] = {0.5f, 2.0f}, m1 = 0.1f, s1 = 3.0f;
  ai_loader_aug lists[][6] = {
      {{.kind = AI_AUG_NORMALIZE, .nch = C, .mean = mean, .std = sd}},
      {{.kind = AI_AUG_HFLIP, .p = 0.5}},
      {{.kind = AI_AUG_CROP, .out_h = 7, .out_w = 8, .pad = 2, .random = 1}},
      {{.kind = AI_AUG_SHIFT, .max_dy = 2, .max_dx = 3}},
      {{.kind = AI_AUG_CROP, .out_h = 11, .out_w = 4, .random = 0}},
      {{.kind = AI_AUG_HFLIP, .p = 0.7},
       {.kind = AI_AUG_CROP, .out_h = 9, .out_w = 7, .pad = 1, .random = 1},
       {.kind = AI_AUG_NORMALIZE, .nch = 1, .mean = &m1, .std = &s1},
       {.kind = AI_AUG_SHIFT, .max_dy = 1, .max_dx = 2},
       {.kind = AI_AUG_NORMALIZE, .nch = C, .mean = mean, .std = sd},
       {.kind = AI_AUG_CROP, .out_h = 6, .out_w = 5, .random = 0}},
  };
  int counts[] = {1, 1, 1, 1, 1, 6};
  for (size_t li = 0; li < sizeof counts / sizeof *counts; li++) {
    ai_loader_config c = base_config();
    c.augs = lists[li];
    c.naugs = counts[li];
    epoch_t e = run_epoch(&c);
    float ref[C * 64 * 64];
    int bad = 0, oh = 0, ow = 0;
    for (int64_t p = 0; p < N && !bad; p++) {
      reference_sample(&c, p, order[p], ref, &oh, &ow);
      const float *got = (const float *)e.x + p * C * oh * ow;
      for (int i = 0; i < C * oh * ow; i++)
        if (fabsf(got[i] - ref[i]) > 1e-6f) {
          printf("  list %zu sample %lld element %d: %g vs %g\n", li, (long long)p, i, got[i], ref[i]);
          bad = 1;
          break;
        }
    }
    CHECK(!bad && e.nsamples == N, "augmentation list %zu differs from the reference", li);
    /* the same batches with any prefetch depth and without a thread */
    int pfs[] = {0, 1, 2, 16};
    for (int k = 0; k < 4; k++) {
      c.prefetch = pfs[k];
      epoch_t f = run_epoch(&c);
      CHECK(f.xbytes == e.xbytes && memcmp(f.x, e.x, e.xbytes) == 0, "list %zu prefetch %d differs", li, pfs[k]);
      free_epoch(&f);
    }
    /* resuming at batch 4 gives the tail of the epoch */
    c.prefetch = 3;
    c.start_batch = 4;
    epoch_t r = run_epoch(&c);
    size_t skip = e.xbytes / (size_t)N * 4 * 32;
    CHECK(r.nbatch == e.nbatch - 4 && r.xbytes == e.xbytes - skip && memcmp(r.x, e.x + skip, r.xbytes) == 0,
          "list %zu: resumed batches differ", li);
    free_epoch(&r);
    /* another epoch draws other augmentations (lists with random ops) */
    if (li > 0 && li != 4) {
      c.start_batch = 0;
      c.epoch = 2;
      epoch_t o = run_epoch(&c);
      CHECK(memcmp(o.x, e.x, e.xbytes) != 0, "list %zu: epoch 2 equals epoch 1", li);
      free_epoch(&o);
    }
    free_epoch(&e);
  }
}

static void test_errors(void) {
  ai_loader_config c = base_config();
  c.batch_size = 0;
  CHECK(!ai_loader_new(&c, err, sizeof err) && strstr(err, "batch_size"), "batch_size 0: %s", err);
  c = base_config();
  int64_t bad[2] = {0, N};
  c.order = bad;
  c.norder = 2;
  CHECK(!ai_loader_new(&c, err, sizeof err) && strstr(err, "not a sample index"), "bad order: %s", err);
  c = base_config();
  ai_loader_aug crop = {.kind = AI_AUG_CROP, .out_h = 20, .out_w = 3, .pad = 1, .random = 1};
  c.augs = &crop;
  c.naugs = 1;
  CHECK(!ai_loader_new(&c, err, sizeof err) && strstr(err, "larger than the padded"), "big crop: %s", err);
  c = base_config();
  c.convert = 0;
  c.augs = &crop;
  c.naugs = 1;
  CHECK(!ai_loader_new(&c, err, sizeof err) && strstr(err, "f32 mode"), "raw with augs: %s", err);
  c = base_config();
  float z = 0;
  ai_loader_aug nz = {.kind = AI_AUG_NORMALIZE, .nch = 1, .mean = &z, .std = &z};
  c.augs = &nz;
  c.naugs = 1;
  CHECK(!ai_loader_new(&c, err, sizeof err) && strstr(err, "std"), "std 0: %s", err);
  c = base_config();
  c.prefetch = 99;
  CHECK(!ai_loader_new(&c, err, sizeof err) && strstr(err, "prefetch"), "prefetch 99: %s", err);
  /* an empty order: no batches, no thread */
  c = base_config();
  c.norder = 0;
  ai_loader *ld = ai_loader_new(&c, err, sizeof err);
  ai_loader_batch b;
  CHECK(ld && ai_loader_num_batches(ld) == 0 && ai_loader_next(ld, &b, err, sizeof err) == 0, "empty order");
  ai_loader_free(ld);
  ai_loader_free(NULL);
}

static void test_shutdown(void) {
  /* free while the worker waits on a full ring, with batches held by the caller */
  for (int round = 0; round < 50; round++) {
    ai_loader_config c = base_config();
    c.batch_size = 1 + round % 5;
    c.prefetch = 1 + round % 4;
    ai_loader *ld = ai_loader_new(&c, err, sizeof err);
    ai_loader_batch held[3];
    int nheld = 0;
    for (int i = 0; i < round % 4 && nheld < 3; i++)
      if (ai_loader_next(ld, &held[nheld], err, sizeof err) == 1) nheld++;
    ai_loader_free(ld);
    /* buffers stay valid after the loader is gone */
    for (int i = 0; i < nheld; i++) {
      float *x = held[i].x;
      volatile float s = 0;
      for (int j = 0; j < C * H * W; j++) s += x[j];
      (void)s;
      ai_loader_release_x(ld, held[i].x);
      ai_loader_release_y(NULL, held[i].y);
    }
  }
  CHECK(1, "shutdown");
  /* buffers are recycled: a long epoch allocates only a few */
  ai_loader_config c = base_config();
  c.batch_size = 4;
  ai_loader *ld = ai_loader_new(&c, err, sizeof err);
  ai_loader_batch b;
  while (ai_loader_next(ld, &b, err, sizeof err) == 1) {
    ai_loader_release_x(ld, b.x);
    ai_loader_release_y(NULL, b.y);
  }
  int64_t out = -1, alloc = -1;
  ai_loader_stats(ld, &out, &alloc);
  CHECK(out == 0 && alloc <= 6, "pool: %lld outstanding, %lld allocated", (long long)out, (long long)alloc);
  ai_loader_free(ld);
}

static void test_uniform(void) {
  double a = ai_loader_uniform(1, 2, 3, 4);
  CHECK(a >= 0 && a < 1 && a == ai_loader_uniform(1, 2, 3, 4), "uniform");
  double s = 0;
  for (int i = 0; i < 10000; i++) s += ai_loader_uniform(9, 1, (uint64_t)i, 0);
  CHECK(fabs(s / 10000 - 0.5) < 0.02, "uniform mean %g", s / 10000);
}

static void bench(void) {
  enum { BN = 60000, BH = 28, BW = 28 };
  uint8_t *big = malloc((size_t)BN * BH * BW);
  int64_t *lab = malloc(sizeof(int64_t) * BN), *ord = malloc(sizeof(int64_t) * BN);
  for (int i = 0; i < BN * BH * BW; i++) big[i] = (uint8_t)rnd();
  for (int i = 0; i < BN; i++) {
    lab[i] = i % 10;
    ord[i] = i;
  }
  for (int i = BN - 1; i > 0; i--) {
    int j = (int)(rnd() % (uint32_t)(i + 1));
    int64_t t = ord[i];
    ord[i] = ord[j];
    ord[j] = t;
  }
  static const float half = 0.5f;
  ai_loader_aug augs[4] = {{.kind = AI_AUG_HFLIP, .p = 0.5},
                           {.kind = AI_AUG_CROP, .out_h = 28, .out_w = 28, .pad = 2, .random = 1},
                           {.kind = AI_AUG_SHIFT, .max_dy = 2, .max_dx = 2},
                           {.kind = AI_AUG_NORMALIZE, .nch = 1, .mean = &half, .std = &half}};
  for (int variant = 0; variant < 2; variant++) {
    ai_loader_config c;
    memset(&c, 0, sizeof c);
    c.data = big;
    c.dtype = AI_LOADER_U8;
    c.elem_size = 1;
    c.n = BN;
    c.sample_ndim = 3;
    c.sample_shape[0] = 1;
    c.sample_shape[1] = BH;
    c.sample_shape[2] = BW;
    c.labels = lab;
    c.label_bytes = 8;
    c.order = ord;
    c.norder = BN;
    c.batch_size = 64;
    c.convert = 1;
    c.divisor = 255;
    c.augs = variant ? augs : augs + 3;
    c.naugs = variant ? 4 : 1;
    c.prefetch = 3;
    double t0 = now();
    ai_loader *ld = ai_loader_new(&c, err, sizeof err);
    ai_loader_batch b;
    int64_t n = 0;
    while (ai_loader_next(ld, &b, err, sizeof err) == 1) {
      n += b.n;
      ai_loader_release_x(ld, b.x);
      ai_loader_release_y(NULL, b.y);
    }
    ai_loader_free(ld);
    double dt = now() - t0;
    printf("  loader throughput (%s, 60000 u8 28x28, batches of 64): %.0f images/s\n",
           variant ? "flip+crop+shift+normalize" : "normalize", (double)n / dt);
    CHECK(n == BN, "bench epoch: %lld samples", (long long)n);
  }
  free(big);
  free(lab);
  free(ord);
}

int main(void) {
  for (int i = 0; i < N * C * H * W; i++) images[i] = (uint8_t)rnd();
  for (int i = 0; i < N; i++) {
    labels[i] = i;
    order[i] = i;
  }
  test_raw();
  for (int i = N - 1; i > 0; i--) { /* shuffled from here on */
    int j = (int)(rnd() % (uint32_t)(i + 1));
    int64_t t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  test_augmented();
  test_errors();
  test_shutdown();
  test_uniform();
  bench();
  printf("%d passed, %d failed\n", npass, nfail);
  return nfail ? 1 : 0;
}
