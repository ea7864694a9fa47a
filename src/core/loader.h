/* loader.h: a batch prefetcher for in-memory datasets (pure C + pthreads; knows nothing of Lua
 * and uses neither the core's allocator nor its tensors, which are not thread-safe).
 *
 * A dataset is N samples stored contiguously (data: N x sample_shape, elements of elem_size
 * bytes) with optional per-sample labels (label_bytes each). Given an order (0-based sample
 * indices, already shuffled by the caller), a batch size and drop_last, a background worker
 * thread assembles batches 0, 1, 2, ... (or from start_batch on) into a ring of `prefetch`
 * slots; the consumer takes them in order with ai_loader_next.
 *
 * Two modes:
 *  - raw (convert = 0): sample bytes are copied as they are (no augmentations allowed);
 *  - f32 (convert = 1): u8 or f32 data becomes f32 (v = raw / divisor), then the augmentation
 *    list runs in order. A sample's last two dims are H x W (a 1-D sample is 1 x W) and the
 *    product of the others is the channel count C. Augmentations:
 *      NORMALIZE  v = (v - mean[c]) / std[c]       (nch = 1: one value for every channel)
 *      HFLIP      mirror left-right with probability p
 *      CROP       pad `pad` zeros on every side, then an out_h x out_w window at a random
 *                 offset (random = 1, as torchvision's RandomCrop) or centred (random = 0,
 *                 offset floor((H - out_h) / 2); a window larger than the image is zero-filled)
 *      SHIFT      translate by dy in [-max_dy, max_dy], dx in [-max_dx, max_dx], zero fill
 *    Pixels that fall outside the image at some step are 0 at that step (then any later
 *    NORMALIZE applies), exactly as padding with zeros at that point of the list would give.
 *
 * Randomness is counter-based: draw k of the sample at position pos (0-based, in the order) of
 * epoch `epoch` is ai_loader_uniform(seed, epoch, pos_offset + pos * pos_stride, k), independent
 * of threads and timing, so a loader restarted at a given batch reproduces the same batches. The
 * offset and stride (default 0 and 1) let one shard of an epoch's order (rank r of n takes
 * positions r-1, r-1+n, ...) draw exactly what the same sample draws in the unsharded order. Draws per sample, in
 * list order: HFLIP one (flip when u < p), random CROP two (top = floor(u0 * (Hp - out_h + 1)),
 * then left likewise), SHIFT two (dy = floor(u0 * (2 max_dy + 1)) - max_dy, then dx).
 *
 * Memory: the x buffer of a batch is handed to the consumer, who returns it with
 * ai_loader_release_x(loader, buf) (the signature of an ai_storage release callback) once done;
 * returned buffers are reused. The y buffer is plain malloc'd and freed with
 * ai_loader_release_y(NULL, buf). Buffers may outlive ai_loader_free: the loader's memory goes
 * when the last buffer comes back.
 *
 * Errors: functions return -1 (or NULL) with a one-line message in err (err may be NULL). */
#ifndef AI_LOADER_H
#define AI_LOADER_H

#include <stddef.h>
#include <stdint.h>

#define AI_LOADER_MAXDIM 8
#define AI_LOADER_MAXAUG 32
#define AI_LOADER_MAXPREFETCH 16

/* element types of the f32 mode (the same codes as ai.h's ai_dtype) */
enum { AI_LOADER_U8 = 0, AI_LOADER_F32 = 2 };

typedef enum { AI_AUG_NORMALIZE, AI_AUG_HFLIP, AI_AUG_CROP, AI_AUG_SHIFT } ai_aug_kind;

typedef struct {
  ai_aug_kind kind;
  int nch;                  /* NORMALIZE: 1 or C entries in mean and std (copied) */
  const float *mean, *std;
  double p;                 /* HFLIP */
  int out_h, out_w, pad;    /* CROP */
  int random;               /* CROP: 1 random offset, 0 centred */
  int max_dy, max_dx;       /* SHIFT */
} ai_loader_aug;

typedef struct {
  const void *data;         /* N samples, contiguous (borrowed: must outlive the loader) */
  int dtype;                /* f32 mode: AI_LOADER_U8 or AI_LOADER_F32; raw mode: ignored */
  size_t elem_size;         /* bytes per element of data */
  int64_t n;                /* number of samples */
  int sample_ndim;          /* 0..AI_LOADER_MAXDIM */
  int64_t sample_shape[AI_LOADER_MAXDIM];
  const void *labels;       /* N x label_bytes, or NULL (borrowed) */
  size_t label_bytes;
  const int64_t *order;     /* norder sample indices in [0, n) (copied) */
  int64_t norder;
  int64_t batch_size;
  int drop_last;
  int64_t start_batch;      /* first batch to produce (resuming) */
  int convert;              /* 0 raw, 1 f32 */
  float divisor;            /* f32 mode: v = raw / divisor (e.g. 255 for u8 images) */
  const ai_loader_aug *augs;/* naugs entries (copied) */
  int naugs;
  uint64_t seed, epoch;
  int64_t pos_offset, pos_stride; /* draw position of order position i: offset + i * stride (0: 1) */
  int prefetch;             /* 0: no thread, batches built inside ai_loader_next; else ring size */
} ai_loader_config;

typedef struct {
  void *x;                  /* n x out sample shape; release with ai_loader_release_x */
  void *y;                  /* n x label_bytes, or NULL; release with ai_loader_release_y */
  int64_t n;                /* samples in this batch (the last one may be short) */
  int64_t index;            /* 0-based batch number */
} ai_loader_batch;

typedef struct ai_loader ai_loader;

ai_loader *ai_loader_new(const ai_loader_config *cfg, char *err, size_t errlen);
/* Batches in the whole epoch (independent of start_batch). */
int64_t ai_loader_num_batches(const ai_loader *ld);
/* The shape of one output sample and the bytes of one output element. */
int ai_loader_sample_shape(const ai_loader *ld, int64_t *shape);
size_t ai_loader_out_elem_size(const ai_loader *ld);
/* 1: a batch in *b (owned by the caller), 0: the epoch is over, -1: error. */
int ai_loader_next(ai_loader *ld, ai_loader_batch *b, char *err, size_t errlen);
/* Stops and joins the worker; safe on NULL. Outstanding buffers stay valid. */
void ai_loader_free(ai_loader *ld);
void ai_loader_release_x(void *loader, void *buf);
void ai_loader_release_y(void *unused, void *buf);

/* Uniform double in [0, 1) from Philox-4x32-10 keyed by seed, counter (k, pos, epoch). */
double ai_loader_uniform(uint64_t seed, uint64_t epoch, uint64_t pos, uint32_t k);

/* Counters for tests and benchmarks: buffers currently handed out, and allocated in total. */
void ai_loader_stats(ai_loader *ld, int64_t *outstanding, int64_t *allocated);

#endif
