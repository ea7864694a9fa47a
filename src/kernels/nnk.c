/* nnk.c: the fast neural-network CPU kernels (API and conventions in nnk.h).
 *
 * This file holds the type-independent parts (geometry, work planning, workspace sizing) and
 * includes nnk_impl.h twice, once with T = float and once with T = double.
 *
 * Convolutions are im2col + one single-threaded gemm per work unit, the units spread over
 * OpenMP threads, because one gemm per thread on a skinny shape beats a threaded gemm:
 *  - forward / backward_weight: a unit is (sample, block of output rows); the block size keeps
 *    the column buffer around 1 MB (L2); for small batches the blocks are shrunk so every
 *    thread gets work. backward_weight accumulates into per-thread copies of dweight that are
 *    summed at the end (thread 0 accumulates into dweight itself), so no two threads write
 *    the same element.
 *  - backward_input: a unit is (sample block, group, chunk of input channels): gemm to a block
 *    of columns, then col2im into that unit's own input channels (no write races); chunks are
 *    split only when there are too few samples for the threads.
 *  - small output planes (<= 128 outputs, e.g. 7x7) make units of several samples: their
 *    column matrices side by side (up to 512 columns, 512 KB of buffer), one gemm, then the
 *    result copied to each sample's NCHW planes (forward), or dout gathered the same way first
 *    (backward_weight: a longer inner dimension; backward_input: col2im sample by sample),
 *    because a gemm of a few dozen columns runs far below peak. Blocks are a multiple of the
 *    thread count and differ by at most one sample. Not for 1x1 convolutions nor inner
 *    dimensions C/g*R*S < 64 (measured slower: see conv_batch_bound).
 *  - im2col / col2im go kernel tap by kernel tap: a tap's rows x Q block is one shifted copy
 *    of a plane (conv_tap), one vector loop with a column mask when the plane is as wide as
 *    the output, instead of a short loop per output row. Strided convolutions first split
 *    each input channel into its stride phases (a 4x4 stride-2 tap reads one 7x7 phase of a
 *    14x14 plane), so that their taps are shifted copies too, and col2im adds into the phases
 *    and merges them back.
 *  - conv_transpose2d is the adjoint of the conv2d of nnk_convt_as_conv: its forward is that
 *    conv's backward_input, its backward_input that conv's forward.
 *  - 1x1 stride-1 pad-0 convolutions use the input/output planes directly as gemm operands.
 *  - stride-1 backward_input becomes conv2d_forward of dout with the flipped, transposed kernel
 *    when that gemm (C/g x K/g*R*S inner) is better shaped than (C/g*R*S x K/g inner) + col2im.
 *  - depthwise convolutions (groups == C, <= 4 outputs per group) use direct loops (a gemm per
 *    group would have one row), with AVX2/AVX-512 clones chosen at load time.
 *  - f32 3x3 stride-1 undilated ungrouped convolutions use Winograd F(4x4,3x3)
 *    (winograd.c: 4x fewer multiplies, own product kernel) for forward, hence for the
 *    flipped backward_input and conv_transpose2d forward, and for backward_weight, where
 *    measured faster on the 2-core AVX2 machine: >= 6 input channels and >= 32 tiles of 4x4
 *    outputs (backward_weight: >= 12 and >= 128, and K*C <= 116K), with the AVX2 clone.
 *    AIART_WINOGRAD=0 in the environment (or nnk_set_winograd(0)) keeps im2col everywhere.
 */
#include "nnk_internal.h"

/* target size (elements) of one thread's im2col column buffer */
#ifndef NNK_COL_TARGET
#define NNK_COL_TARGET (1 << 18)
#endif
/* minimum gemm width (columns) a row block should have */
#define NNK_MIN_COLS 256
/* units of several samples (conv_batch_bound): the gemm width they aim at, their column
 * buffer's size (elements), the smallest gemm inner dimension (C/groups*R*S) worth it */
#ifndef NNK_BATCH_COLS
#define NNK_BATCH_COLS 512
#endif
#ifndef NNK_BATCH_COL_TARGET
#define NNK_BATCH_COL_TARGET (1 << 17)
#endif
#define NNK_BATCH_MIN_INNER 64

/* ---- geometry ---------------------------------------------------------------------------- */

/* natural output size of a convolution / pooling along one axis; <= 0 when empty */
static int64_t conv_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil) {
  return floor_div64(in + 2 * pad - dil * (k - 1) - 1, stride) + 1;
}

int nnk_conv_check(const nnk_conv *g) {
  if (!g) return -1;
  if (g->N < 0 || g->C <= 0 || g->H <= 0 || g->W <= 0 || g->K <= 0 || g->R <= 0 || g->S <= 0)
    return -1;
  if (g->stride_h <= 0 || g->stride_w <= 0 || g->pad_h < 0 || g->pad_w < 0 || g->dil_h <= 0 ||
      g->dil_w <= 0 || g->groups <= 0)
    return -1;
  if (g->C % g->groups || g->K % g->groups) return -1;
  int64_t P = conv_out_size(g->H, g->R, g->stride_h, g->pad_h, g->dil_h);
  int64_t Q = conv_out_size(g->W, g->S, g->stride_w, g->pad_w, g->dil_w);
  if (g->P <= 0 || g->Q <= 0 || g->P > P || g->Q > Q) return -1;
  if ((int64_t)g->H * g->W > NNK_BIG || (int64_t)g->P * g->Q > NNK_BIG) return -1;
  if ((int64_t)g->C / g->groups * g->R * g->S > NNK_BIG) return -1;
  return 0;
}

int nnk_conv_init(nnk_conv *g) {
  if (!g) return -1;
  g->P = g->Q = 1; /* provisional, so that nnk_conv_check looks at the rest */
  if (nnk_conv_check(g)) return -1;
  int64_t P = conv_out_size(g->H, g->R, g->stride_h, g->pad_h, g->dil_h);
  int64_t Q = conv_out_size(g->W, g->S, g->stride_w, g->pad_w, g->dil_w);
  if (P <= 0 || Q <= 0 || P > NNK_BIG || Q > NNK_BIG) return -1;
  g->P = (int)P;
  g->Q = (int)Q;
  return nnk_conv_check(g);
}

int nnk_conv_setup(nnk_conv *g, int N, int C, int H, int W, int K, int R, int S, int stride_h,
                   int stride_w, int pad_h, int pad_w, int dil_h, int dil_w, int groups) {
  if (!g) return -1;
  *g = (nnk_conv){N, C, H, W, K, R, S, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups,
                  0, 0};
  return nnk_conv_init(g);
}

void nnk_convt_as_conv(const nnk_convt *t, nnk_conv *c) {
  *c = (nnk_conv){t->N,        t->K,        t->P,     t->Q,     t->C,     t->R,
                  t->S,        t->stride_h, t->stride_w, t->pad_h, t->pad_w, t->dil_h,
                  t->dil_w,    t->groups,   t->H,     t->W};
}

static int convt_check(const nnk_convt *t) {
  if (!t) return -1;
  if (t->out_pad_h < 0 || t->out_pad_w < 0) return -1;
  if (t->out_pad_h >= t->stride_h && t->out_pad_h >= t->dil_h) return -1;
  if (t->out_pad_w >= t->stride_w && t->out_pad_w >= t->dil_w) return -1;
  int64_t P = ((int64_t)t->H - 1) * t->stride_h - 2 * (int64_t)t->pad_h +
              (int64_t)t->dil_h * (t->R - 1) + t->out_pad_h + 1;
  int64_t Q = ((int64_t)t->W - 1) * t->stride_w - 2 * (int64_t)t->pad_w +
              (int64_t)t->dil_w * (t->S - 1) + t->out_pad_w + 1;
  if (P != t->P || Q != t->Q) return -1;
  nnk_conv c;
  nnk_convt_as_conv(t, &c);
  return nnk_conv_check(&c);
}

int nnk_convt_init(nnk_convt *g) {
  if (!g) return -1;
  if (g->H <= 0 || g->W <= 0 || g->stride_h <= 0 || g->stride_w <= 0 || g->dil_h <= 0 ||
      g->dil_w <= 0 || g->R <= 0 || g->S <= 0)
    return -1;
  int64_t P = ((int64_t)g->H - 1) * g->stride_h - 2 * (int64_t)g->pad_h +
              (int64_t)g->dil_h * (g->R - 1) + g->out_pad_h + 1;
  int64_t Q = ((int64_t)g->W - 1) * g->stride_w - 2 * (int64_t)g->pad_w +
              (int64_t)g->dil_w * (g->S - 1) + g->out_pad_w + 1;
  if (P <= 0 || Q <= 0 || P > NNK_BIG || Q > NNK_BIG) return -1;
  g->P = (int)P;
  g->Q = (int)Q;
  return convt_check(g);
}

int nnk_convt_setup(nnk_convt *g, int N, int C, int H, int W, int K, int R, int S,
                    int stride_h, int stride_w, int pad_h, int pad_w, int out_pad_h,
                    int out_pad_w, int dil_h, int dil_w, int groups) {
  if (!g) return -1;
  *g = (nnk_convt){N,        C,        H,         W,         K,     R,     S,
                   stride_h, stride_w, pad_h,     pad_w,     out_pad_h, out_pad_w, dil_h,
                   dil_w,    groups,   0,         0};
  return nnk_convt_init(g);
}

/* PyTorch's pooling_output_shape */
static int64_t pool_out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, int ceil) {
  if (s <= 0) return 0; /* an invalid stride (rejected by pool_check): no division by it */
  int64_t o = floor_div64(in + 2 * p - d * (k - 1) - 1 + (ceil ? s - 1 : 0), s) + 1;
  if (ceil && (o - 1) * s >= in + p) o--;
  return o;
}

static int pool_check(const nnk_pool *g) {
  if (!g) return -1;
  if (g->N < 0 || g->C < 0 || g->H <= 0 || g->W <= 0 || g->kernel_h <= 0 || g->kernel_w <= 0 ||
      g->stride_h <= 0 || g->stride_w <= 0 || g->pad_h < 0 || g->pad_w < 0 || g->dil_h <= 0 ||
      g->dil_w <= 0 || g->divisor_override < 0)
    return -1;
  if ((int64_t)g->pad_h * 2 > (int64_t)g->dil_h * (g->kernel_h - 1) + 1) return -1;
  if ((int64_t)g->pad_w * 2 > (int64_t)g->dil_w * (g->kernel_w - 1) + 1) return -1;
  if ((int64_t)g->H * g->W > NNK_BIG) return -1;
  int64_t P = pool_out_size(g->H, g->kernel_h, g->stride_h, g->pad_h, g->dil_h, g->ceil_mode);
  int64_t Q = pool_out_size(g->W, g->kernel_w, g->stride_w, g->pad_w, g->dil_w, g->ceil_mode);
  if (P <= 0 || Q <= 0 || P > NNK_BIG || Q > NNK_BIG) return -1;
  if (g->P != P || g->Q != Q) return -1;
  return 0;
}

int nnk_pool_init(nnk_pool *g) {
  if (!g) return -1;
  g->P = (int)imin64(NNK_BIG, imax64(0, pool_out_size(g->H, g->kernel_h, g->stride_h, g->pad_h,
                                                       g->dil_h, g->ceil_mode)));
  g->Q = (int)imin64(NNK_BIG, imax64(0, pool_out_size(g->W, g->kernel_w, g->stride_w, g->pad_w,
                                                       g->dil_w, g->ceil_mode)));
  return pool_check(g);
}

int nnk_pool_setup(nnk_pool *g, int N, int C, int H, int W, int kernel_h, int kernel_w,
                   int stride_h, int stride_w, int pad_h, int pad_w, int dil_h, int dil_w,
                   int ceil_mode, int count_include_pad, int divisor_override) {
  if (!g) return -1;
  *g = (nnk_pool){N,      C,     H,     W,         kernel_h,          kernel_w,
                  stride_h, stride_w, pad_h, pad_w, dil_h,             dil_w,
                  ceil_mode, count_include_pad, divisor_override, 0, 0};
  return nnk_pool_init(g);
}

/* pad2d argument check; returns -1 when invalid */
static int pad_check(int N, int C, int H, int W, int l, int r, int t, int b, nnk_pad_mode mode) {
  if (N < 0 || C < 0 || H <= 0 || W <= 0 || l < 0 || r < 0 || t < 0 || b < 0) return -1;
  if ((int64_t)H + t + b > NNK_BIG || (int64_t)W + l + r > NNK_BIG) return -1;
  switch (mode) {
  case NNK_PAD_REFLECT: return (l < W && r < W && t < H && b < H) ? 0 : -1;
  case NNK_PAD_REPLICATE: return 0;
  case NNK_PAD_CIRCULAR: return (l <= W && r <= W && t <= H && b <= H) ? 0 : -1;
  }
  return -1;
}

/* source index of output position x of a padded axis (in = input size, lo = leading pad) */
static int64_t pad_src(int64_t x, int64_t in, int64_t lo, nnk_pad_mode mode) {
  int64_t i = x - lo;
  switch (mode) {
  case NNK_PAD_REFLECT:
    if (i < 0) i = -i;
    if (i >= in) i = 2 * (in - 1) - i;
    return i;
  case NNK_PAD_REPLICATE: return i < 0 ? 0 : (i >= in ? in - 1 : i);
  case NNK_PAD_CIRCULAR: return ((i % in) + in) % in;
  }
  return 0;
}

/* PyTorch's nearest source index (computed in float, as PyTorch does) */
static void nearest_map(int64_t *map, int64_t in, int64_t out, double scale) {
  const float s = scale > 0 ? (float)(1.0 / scale) : (float)in / (float)out;
  for (int64_t i = 0; i < out; i++) {
    if (out == in)
      map[i] = i;
    else if (out == 2 * in)
      map[i] = i >> 1;
    else
      map[i] = imin64((int64_t)floorf((float)i * s), in - 1);
  }
}

/* ---- convolution work planning ------------------------------------------------------------ */

typedef struct {
  int direct;  /* 1x1, stride 1, pad 0: no im2col */
  int64_t rows;  /* output rows per block */
  int64_t nblk;  /* row blocks per sample (forward, backward_weight) */
  int64_t nb;    /* most samples in one unit (> 1 only when rows == P) */
  int64_t nsb;   /* sample blocks: block i holds samples [i*N/nsb, (i+1)*N/nsb) */
  int64_t cc;    /* input channels per chunk (backward_input) */
  int64_t nchunk; /* chunks per (sample block, group) (backward_input) */
  size_t col_bytes; /* per-thread column buffer (+ the gemm's other block when nb > 1), rounded */
  size_t tmp_off;   /* offset of that other block (gemm result / gathered dout) in it */
  size_t ph_off;    /* offset of the stride-phase buffer in it (0: no phases) */
  size_t dw_bytes;  /* per-thread partial dweight (backward_weight), rounded to 64 */
} conv_plan;

static int conv_is_direct(const nnk_conv *g) {
  return g->R == 1 && g->S == 1 && g->stride_h == 1 && g->stride_w == 1 && g->pad_h == 0 &&
         g->pad_w == 0 && g->P == g->H && g->Q == g->W;
}

/* Kernel taps as shifted planes. With stride st along an axis of n inputs, stride phase ph
 * holds the inputs ph, ph + st, ... (phase_len of them); a channel's phase planes are stored
 * in its own H*W elements, column phase major, then row phase (for stride 1, the one phase is
 * the channel). Tap
 * (r, s) reads, for output (p, q), element (p + oh, q + ow) of the Hp x Wp plane at `base`. */
typedef struct {
  int64_t Hp, Wp, oh, ow, base;
} conv_tap;

static int64_t phase_len(int64_t n, int64_t st, int64_t ph) {
  return ph < n ? (n - ph + st - 1) / st : 0;
}

/* inputs of the phases before ph */
static int64_t phase_start(int64_t n, int64_t st, int64_t ph) {
  int64_t k = 0;
  for (int64_t i = 0; i < ph; i++) k += phase_len(n, st, i);
  return k;
}

static void conv_tap_make(conv_tap *t, const nnk_conv *g, int64_t r, int64_t s) {
  const int64_t a = r * g->dil_h - g->pad_h, b = s * g->dil_w - g->pad_w;
  t->oh = floor_div64(a, g->stride_h);
  t->ow = floor_div64(b, g->stride_w);
  const int64_t ph = a - t->oh * g->stride_h, pw = b - t->ow * g->stride_w;
  t->Hp = phase_len(g->H, g->stride_h, ph);
  t->Wp = phase_len(g->W, g->stride_w, pw);
  t->base = phase_start(g->W, g->stride_w, pw) * g->H + t->Wp * phase_start(g->H, g->stride_h, ph);
}

/* strided convolutions whose units cover whole planes split their input into stride phases
 * (when every phase is read: kernel >= stride) */
static int conv_uses_phases(const nnk_conv *g, int64_t rows) {
  return (g->stride_h > 1 || g->stride_w > 1) && rows == g->P && g->R >= g->stride_h &&
         g->S >= g->stride_w;
}

/* rows per block for a column buffer of m rows (m = channels*R*S) */
static int64_t conv_rows_bound(const nnk_conv *g, int64_t m) {
  int64_t rows = imax64(ceil_div64(NNK_MIN_COLS, g->Q), NNK_COL_TARGET / (m * g->Q));
  return imax64(1, imin64(rows, g->P));
}

/* Samples per unit for a column buffer of m rows: several when an output plane is small
 * (<= NNK_BATCH_COLS/4 gemm columns), as many as fill NNK_BATCH_COLS columns within
 * NNK_BATCH_COL_TARGET elements of column buffer (half of a 1 MB L2). Measured (1 thread,
 * f32, N=64): C=64->128 k4 s2 14->7 forward 14.2 -> 13.3 ms, backward_input 16.3 -> 14.4,
 * backward_weight 12.9 -> 12.4; but 14x14 planes (C=32->64 3x3) lost 6% in the forward, tiny
 * inner dimensions (C=1: m=16) up to 50% (the copy to NCHW costs as much as their gemm), and
 * 1x1 convolutions, whose gemm reads the input in place, lost 5-15%: those stay per sample. */
static int64_t conv_batch_bound(const nnk_conv *g, int64_t m, int direct) {
  const int64_t PQ = (int64_t)g->P * g->Q;
  if (4 * PQ > NNK_BATCH_COLS || g->N <= 1 || direct || m < NNK_BATCH_MIN_INNER) return 1;
  int64_t nb = imin64(ceil_div64(NNK_BATCH_COLS, PQ), NNK_BATCH_COL_TARGET / (m * PQ));
  return imax64(1, imin64(nb, g->N));
}

/* More parts per item when there are few units that do not split evenly over nt threads:
 * returns the number of parts (<= maxparts) to cut each of `items` items into. */
static int64_t balance_parts(int64_t items, int64_t parts, int64_t maxparts, int nt) {
  int64_t units = items * parts;
  if (nt <= 1 || items == 0 || units % nt == 0 || units >= 8 * (int64_t)nt) return parts;
  int64_t want = ceil_div64(ceil_div64(units, nt) * nt, items);
  return imin64(imax64(want, parts), maxparts);
}

/* kind: 0 forward, 1 backward_input, 2 backward_weight. Sizes are independent of the thread
 * count (only the split for balancing depends on it, and it only makes blocks smaller). */
static void conv_plan_make(conv_plan *pl, const nnk_conv *g, int kind, size_t esize, int nt) {
  const int64_t Cg = g->C / g->groups, Kg = g->K / g->groups, RS = (int64_t)g->R * g->S;
  memset(pl, 0, sizeof *pl);
  pl->direct = conv_is_direct(g);
  pl->rows = pl->direct ? g->P : conv_rows_bound(g, Cg * RS);
  pl->nb = pl->rows == g->P ? conv_batch_bound(g, Cg * RS, pl->direct) : 1;
  pl->nblk = ceil_div64(g->P, pl->rows);
  pl->nsb = g->N;
  pl->cc = Cg;
  pl->nchunk = 1;
  const int64_t cols = pl->nb * pl->rows * g->Q;
  if (!pl->direct) pl->col_bytes = round64((size_t)(Cg * RS * cols) * esize);
  pl->tmp_off = pl->col_bytes;
  if (pl->nb > 1) pl->col_bytes += round64((size_t)(Kg * cols) * esize);
  if (!pl->direct && conv_uses_phases(g, pl->rows)) {
    pl->ph_off = pl->col_bytes;
    pl->col_bytes += round64((size_t)(Cg * g->H * g->W) * esize);
  }
  if (kind == 2) pl->dw_bytes = round64((size_t)((int64_t)g->K * Cg * RS) * esize);
  if (pl->nb > 1) { /* a multiple of nt sample blocks, of sizes that differ by at most one */
    pl->nsb = ceil_div64(g->N, pl->nb);
    if (nt > 1 && pl->nsb < 8 * (int64_t)nt) pl->nsb = imin64(g->N, ceil_div64(pl->nsb, nt) * nt);
  }
  if (kind == 1) {
    int64_t ch = balance_parts(pl->nsb * g->groups, 1, Cg, nt);
    pl->cc = ceil_div64(Cg, ch);
    pl->nchunk = ceil_div64(Cg, pl->cc);
  } else if (pl->nb == 1) {
    int64_t nb = balance_parts(g->N, pl->nblk, g->P, nt);
    if (nb != pl->nblk) {
      pl->rows = ceil_div64(g->P, nb);
      pl->nblk = ceil_div64(g->P, pl->rows);
    }
  }
}

/* samples [*n0, *n0 + *ns) of sample block i */
static void conv_block_samples(const conv_plan *pl, int64_t N, int64_t i, int64_t *n0,
                               int64_t *ns) {
  *n0 = i * N / pl->nsb;
  *ns = (i + 1) * N / pl->nsb - *n0;
}

static size_t conv_ws_bytes(const conv_plan *pl, int nt) {
  if (nt < 1) return 0;
  return (size_t)nt * pl->col_bytes + (size_t)(nt - 1) * pl->dw_bytes;
}

/* Threads usable with ws_bytes of workspace (0: not even one); *alloc set when ws == NULL and
 * the kernel must allocate. */
static int conv_threads(const conv_plan *pl, const void *ws, size_t ws_bytes, int *alloc) {
  int nt = omp_get_max_threads();
  if (nt < 1) nt = 1;
  *alloc = 0;
  if (conv_ws_bytes(pl, nt) == 0) return nt;
  if (!ws) {
    *alloc = 1;
    return nt;
  }
  while (nt > 0 && conv_ws_bytes(pl, nt) > ws_bytes) nt--;
  return nt;
}

/* backward_input of a stride-1 convolution is the forward convolution of dout with the
 * flipped, transposed weight and padding dil*(k-1) - pad: im2col + a gemm with inner dimension
 * K/groups*R*S instead of a gemm with inner dimension K/groups + col2im. Fills *f and returns 1
 * when that applies and is expected to be faster (not for 1x1 pad-0, which needs no im2col
 * either way). */
static int conv_bwi_flip(const nnk_conv *g, nnk_conv *f, size_t esize) {
  if (g->stride_h != 1 || g->stride_w != 1 || conv_is_direct(g) || conv_is_depthwise(g)) return 0;
  const int ph = g->dil_h * (g->R - 1) - g->pad_h, pw = g->dil_w * (g->S - 1) - g->pad_w;
  if (ph < 0 || pw < 0) return 0;
  if (nnk_conv_setup(f, g->N, g->K, g->P, g->Q, g->C, g->R, g->S, 1, 1, ph, pw, g->dil_h, g->dil_w,
                     g->groups) ||
      f->P != g->H || f->Q != g->W)
    return 0;
  if (nnk_wino_use(f, esize)) return 1; /* the flipped convolution runs Winograd */
  /* the gemm with the larger smaller side wins: flip (Cg x Kg*R*S inner) vs (Cg*R*S x Kg inner);
   * measured: C=32,K=3,9x9: 61 vs 9 GFLOP/s; C=3,K=32,9x9: 11 vs 45; C=64,K=16: 63 vs 29 */
  const int64_t Cg = g->C / g->groups, Kg = g->K / g->groups, RS = (int64_t)g->R * g->S;
  return imin64(Cg, Kg * RS) >= imin64(Cg * RS, Kg);
}

/* bytes of the flipped weight of conv_bwi_flip, rounded to 64 */
static size_t conv_flip_bytes(const nnk_conv *g, size_t esize) {
  return round64((size_t)g->K * (size_t)(g->C / g->groups) * (size_t)g->R * (size_t)g->S * esize);
}

static size_t conv_ws_query(const nnk_conv *g, int kind, size_t esize) {
  if (nnk_conv_check(g) || conv_is_depthwise(g)) return 0;
  nnk_conv f;
  if (nnk_poly_use(g, esize)) return nnk_poly_ws_query(g, kind == 0, kind == 1, kind == 2);
  if (kind == 1 && conv_bwi_flip(g, &f, esize))
    return conv_flip_bytes(g, esize) + conv_ws_query(&f, 0, esize);
  if (kind == 0 && nnk_wino_use(g, esize)) return nnk_wino_ws_query(g, 0);
  if (kind == 2 && nnk_wino_use_bww(g, esize)) return nnk_wino_ws_query(g, 1);
  conv_plan pl;
  int nt = omp_get_max_threads();
  conv_plan_make(&pl, g, kind, esize, nt);
  return conv_ws_bytes(&pl, nt < 1 ? 1 : nt);
}

/* ---- type-generic kernels ----------------------------------------------------------------- */

#define T float
#define FN(name) name##_f32
#define GEMM cblas_sgemm
#define EXP expf
#define LOG logf
#define FLOOR floorf
#include "nnk_impl.h"

#define T double
#define FN(name) name##_f64
#define GEMM cblas_dgemm
#define EXP exp
#define LOG log
#define FLOOR floor
#include "nnk_impl.h"
