/* conv.c: conv2d (nnk.h): its geometry, the im2col + gemm path with its work planning, the
 * public kernels (which first hand depthwise, Winograd and polyphase geometries to
 * depthwise.c, winograd.c and polyphase.c), and the bias gradient.
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
 *  - 1x1 stride-1 pad-0 convolutions use the input/output planes directly as gemm operands.
 *  - stride-1 backward_input becomes conv2d_forward of dout with the flipped, transposed kernel
 *    when that gemm (C/g x K/g*R*S inner) is better shaped than (C/g*R*S x K/g inner) + col2im.
 *  - depthwise geometries (conv_is_depthwise) go to the direct loops of depthwise.c.
 *  - f32 3x3 stride-1 undilated ungrouped convolutions use Winograd F(4x4,3x3) (winograd.c)
 *    for forward, hence for the flipped backward_input and conv_transpose2d forward, and for
 *    backward_weight, where measured faster on the 2-core AVX2 machine: >= 6 input channels
 *    and >= 32 tiles of 4x4 outputs (backward_weight: >= 12 and >= 128, and K*C <= 116K),
 *    with the AVX2 clone; f32 4x4 stride-2 pad-1 ones the polyphase F(4x4,2x2) of
 *    polyphase.c. AIART_WINOGRAD=0 in the environment (or nnk_set_winograd(0)) keeps im2col
 *    everywhere.
 * conv_transpose2d (conv_transpose.c) runs on these kernels as conv2d's adjoint.
 */
#ifndef NNK_TMPL_PASS
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

/* natural output size of a convolution along one axis; <= 0 when empty */
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

#define NNK_TMPL "conv.c"
#include "nnk_tmpl.h" /* the part below, for float and for double */

#else /* ---- generic in T ---- */

#include "nnk_rows.h"

/* ---- im2col / col2im ---------------------------------------------------------------------
 * col: (cc*R*S) x (rows*Q), leading dimension ld >= rows*Q, = the patches of output rows
 * [p0, p0+rows) over input channels [0, cc) of x (cc x H x W). col2im_acc adds such a matrix
 * back into x. A unit of several samples puts their matrices side by side (ld = samples*rows*Q). */

/* stride 1 and Q == W (a "same" convolution): a kernel tap's rows are one shifted block of the
 * input plane, copied at once; the wrapped edge columns are zeroed afterwards */
static void FN(im2col_same)(T *col, const T *x, const nnk_conv *g, int64_t cc, int64_t p0,
                            int64_t rows, int64_t ld) {
  const int64_t H = g->H, W = g->W, Q = g->Q, HW = H * W, ncols = rows * Q;
  for (int64_t c = 0; c < cc; c++) {
    const T *xc = x + c * HW;
    for (int64_t r = 0; r < g->R; r++) {
      const int64_t sh = g->pad_h - r * g->dil_h; /* ih = p - sh */
      const int64_t pa = imax64(p0, sh), pb = imin64(p0 + rows, H + sh);
      for (int64_t s = 0; s < g->S; s++) {
        T *dst = col + ((c * g->R + r) * g->S + s) * ld;
        if (pa >= pb) {
          memset(dst, 0, (size_t)ncols * sizeof(T));
          continue;
        }
        int64_t qlo, qhi, off = s * g->dil_w - g->pad_w;
        conv_qrange(g, s, &qlo, &qhi);
        memset(dst, 0, (size_t)((pa - p0) * Q) * sizeof(T));
        memset(dst + (pb - p0) * Q, 0, (size_t)((p0 + rows - pb) * Q) * sizeof(T));
        const int64_t s0 = (pa - sh) * W + off, len = (pb - pa) * W, d0 = (pa - p0) * Q;
        const int64_t a = imax64(s0, 0), b = imin64(s0 + len, HW);
        if (b > a) memcpy(dst + d0 + (a - s0), xc + a, (size_t)(b - a) * sizeof(T));
        if (qlo > 0 || qhi < Q) {
          for (int64_t p = pa; p < pb; p++) {
            T *row = dst + (p - p0) * Q;
            for (int64_t q = 0; q < qlo; q++) row[q] = 0;
            for (int64_t q = qhi; q < Q; q++) row[q] = 0;
          }
        }
      }
    }
  }
}

NNK_CLONES static int FN(im2col_taps)(T *col, const T *x, const nnk_conv *g, int64_t cc,
                                      int64_t p0, int64_t rows, int64_t ld, T *phbuf);

/* phbuf: room for the stride phases of cc channels, or NULL */
static void FN(im2col)(T *col, const T *x, const nnk_conv *g, int64_t cc, int64_t p0,
                       int64_t rows, int64_t ld, T *phbuf) {
  const int64_t H = g->H, W = g->W, Q = g->Q, sw = g->stride_w;
  const int64_t HW = H * W;
  if (!FN(im2col_taps)(col, x, g, cc, p0, rows, ld, phbuf)) return;
  if (sw == 1 && g->stride_h == 1 && Q == W) {
    FN(im2col_same)(col, x, g, cc, p0, rows, ld);
    return;
  }
  for (int64_t c = 0; c < cc; c++) {
    const T *xc = x + c * HW;
    for (int64_t r = 0; r < g->R; r++) {
      for (int64_t s = 0; s < g->S; s++) {
        T *dst = col + ((c * g->R + r) * g->S + s) * ld;
        int64_t qlo, qhi, off = s * g->dil_w - g->pad_w;
        conv_qrange(g, s, &qlo, &qhi);
        for (int64_t p = p0; p < p0 + rows; p++, dst += Q) {
          int64_t ih = p * g->stride_h - g->pad_h + r * g->dil_h;
          if (ih < 0 || ih >= H) {
            for (int64_t q = 0; q < Q; q++) dst[q] = 0;
            continue;
          }
          const T *src = xc + ih * W;
          for (int64_t q = 0; q < qlo; q++) dst[q] = 0;
          if (sw == 1) {
            const T *sp = src + qlo + off;
            T *dp = dst + qlo;
            NNK_SIMD
            for (int64_t q = 0; q < qhi - qlo; q++) dp[q] = sp[q];
          } else {
            for (int64_t q = qlo; q < qhi; q++) dst[q] = src[q * sw + off];
          }
          for (int64_t q = qhi; q < Q; q++) dst[q] = 0;
        }
      }
    }
  }
}

static void FN(col2im_acc)(T *x, const T *col, const nnk_conv *g, int64_t cc, int64_t p0,
                           int64_t rows, int64_t ld) {
  const int64_t H = g->H, W = g->W, Q = g->Q, sw = g->stride_w;
  const int64_t HW = H * W;
  for (int64_t c = 0; c < cc; c++) {
    T *xc = x + c * HW;
    for (int64_t r = 0; r < g->R; r++) {
      for (int64_t s = 0; s < g->S; s++) {
        const T *src = col + ((c * g->R + r) * g->S + s) * ld;
        int64_t qlo, qhi, off = s * g->dil_w - g->pad_w;
        conv_qrange(g, s, &qlo, &qhi);
        for (int64_t p = p0; p < p0 + rows; p++, src += Q) {
          int64_t ih = p * g->stride_h - g->pad_h + r * g->dil_h;
          if (ih < 0 || ih >= H) continue;
          T *dst = xc + ih * W;
          if (sw == 1) {
            NNK_SIMD
            for (int64_t q = qlo; q < qhi; q++) dst[q + off] += src[q];
          } else {
            for (int64_t q = qlo; q < qhi; q++) dst[q * sw + off] += src[q];
          }
        }
      }
    }
  }
}

/* ---- im2col / col2im by shifted planes (conv_tap) ------------------------------------------
 * When a plane is as wide as the output (Wp == Q), a tap's rows x Q block and the plane are
 * contiguous alike: one vector loop per tap, with the columns that would wrap into the
 * neighbouring row masked out (m[d] = 0). Other widths go row by row. */

#define NNK_MASK_MAX 1024 /* largest rows*Q whose taps use a column mask */
/* stride 1 goes by taps for "same" planes narrower than 128 (wider rows are copied as fast
 * row by row: 256x256 was 6% slower by taps, 32..128 wide even, 7..28 wide 5-25% faster) */
#define NNK_TAPS_SAME(g, n) ((g)->Q == (g)->W && (g)->Q < 128 && (n) <= NNK_MASK_MAX)

NNK_INLINE void FN(tap_mask)(T *m, const conv_tap *t, int64_t Q, int64_t rows) {
  for (int64_t q = 0; q < Q; q++) m[q] = (q + t->ow >= 0 && q + t->ow < t->Wp) ? (T)1 : (T)0;
  for (int64_t p = 1; p < rows; p++) memcpy(m + p * Q, m, (size_t)Q * sizeof(T));
}

/* block [*d0, *d1) of the rows x Q block (output rows p0...) whose rows are inside the plane and
 * whose source index d + *off is too; Wp == Q */
NNK_INLINE void FN(tap_block)(const conv_tap *t, int64_t Q, int64_t p0, int64_t rows,
                              int64_t *d0, int64_t *d1, int64_t *off) {
  const int64_t pa = imax64(p0, -t->oh), pb = imin64(p0 + rows, t->Hp - t->oh);
  *off = (p0 + t->oh) * Q + t->ow;
  *d0 = *d1 = 0;
  if (pa >= pb) return;
  *d0 = imin64(imax64((pa - p0) * Q, -*off), rows * Q);
  *d1 = imax64(*d0, imin64((pb - p0) * Q, t->Hp * Q - *off));
}

/* valid output columns [*qlo, *qhi) of a tap */
NNK_INLINE void FN(tap_cols)(const conv_tap *t, int64_t Q, int64_t *qlo, int64_t *qhi) {
  *qlo = imin64(imax64(-t->ow, 0), Q);
  *qhi = imax64(*qlo, imin64(t->Wp - t->ow, Q));
}

/* dst (rows x Q) = the tap's view of plane for output rows [p0, p0+rows), zero outside it;
 * m: the tap's mask, or NULL to go row by row */
NNK_INLINE void FN(tap_copy)(T *dst, const T *plane, const conv_tap *t, const T *m, int64_t Q,
                         int64_t p0, int64_t rows) {
  if (m) {
    int64_t d0, d1, off;
    FN(tap_block)(t, Q, p0, rows, &d0, &d1, &off);
    for (int64_t d = 0; d < d0; d++) dst[d] = 0;
    NNK_SIMD
    for (int64_t d = d0; d < d1; d++) { /* loads outside the branch: the loop vectorises */
      const T v = plane[d + off];
      dst[d] = m[d] != (T)0 ? v : (T)0;
    }
    for (int64_t d = d1; d < rows * Q; d++) dst[d] = 0;
    return;
  }
  int64_t qlo, qhi;
  FN(tap_cols)(t, Q, &qlo, &qhi);
  for (int64_t p = p0; p < p0 + rows; p++, dst += Q) {
    const int64_t i = p + t->oh;
    if (i < 0 || i >= t->Hp || qlo == qhi) {
      memset(dst, 0, (size_t)Q * sizeof(T));
      continue;
    }
    const T *src = plane + i * t->Wp + t->ow + qlo;
    for (int64_t q = 0; q < qlo; q++) dst[q] = 0;
    NNK_SIMD
    for (int64_t q = qlo; q < qhi; q++) dst[q] = src[q - qlo];
    for (int64_t q = qhi; q < Q; q++) dst[q] = 0;
  }
}

/* plane += the tap's part of src (P x Q, all output rows); m as for tap_copy */
NNK_INLINE void FN(tap_add)(T *plane, const T *src, const conv_tap *t, const T *m, int64_t Q,
                        int64_t P) {
  if (m) {
    int64_t d0, d1, off;
    FN(tap_block)(t, Q, 0, P, &d0, &d1, &off);
    NNK_SIMD
    for (int64_t d = d0; d < d1; d++) {
      const T v = src[d];
      plane[d + off] += m[d] != (T)0 ? v : (T)0;
    }
    return;
  }
  int64_t qlo, qhi;
  FN(tap_cols)(t, Q, &qlo, &qhi);
  for (int64_t p = imax64(0, -t->oh); p < imin64(P, t->Hp - t->oh); p++) {
    T *dst = plane + (p + t->oh) * t->Wp + t->ow + qlo;
    const T *s = src + p * Q + qlo;
    NNK_SIMD
    for (int64_t q = 0; q < qhi - qlo; q++) dst[q] += s[q];
  }
}

#define NNK_PHASE_TMP 4096 /* largest plane split through a stack buffer */

/* the stride phases of one H x W plane x into ph, or back (merge: x = ph) */
NNK_INLINE void FN(phase_move)(T *ph, T *x, const nnk_conv *g, int merge) {
  const int64_t H = g->H, W = g->W, sh = g->stride_h, sw = g->stride_w;
  if (W % sw == 0 && H * W <= NNK_PHASE_TMP) {
    /* whole-plane passes: columns split by stride (long loops that vectorise), then rows
     * regrouped by phase with row copies */
    T tmp[NNK_PHASE_TMP];
    const int64_t Wp = W / sw, n = H * Wp;
    if (!merge) {
      if (sw == 2) {
        NNK_SIMD
        for (int64_t k = 0; k < n; k++) {
          tmp[k] = x[2 * k];
          tmp[n + k] = x[2 * k + 1];
        }
      } else {
        for (int64_t b = 0; b < sw; b++)
          for (int64_t k = 0; k < n; k++) tmp[b * n + k] = x[sw * k + b];
      }
    }
    for (int64_t b = 0; b < sw; b++)
      for (int64_t a = 0, r0 = 0; a < sh; a++) {
        const int64_t Hp = phase_len(H, sh, a);
        for (int64_t i = 0; i < Hp; i++) {
          T *pr = ph + b * n + (r0 + i) * Wp, *tr = tmp + b * n + (i * sh + a) * Wp;
          if (merge) /* short rows: loops, not memcpy calls */
            for (int64_t j = 0; j < Wp; j++) tr[j] = pr[j];
          else
            for (int64_t j = 0; j < Wp; j++) pr[j] = tr[j];
        }
        r0 += Hp;
      }
    if (merge) {
      if (sw == 2) {
        NNK_SIMD
        for (int64_t k = 0; k < n; k++) {
          x[2 * k] = tmp[k];
          x[2 * k + 1] = tmp[n + k];
        }
      } else {
        for (int64_t b = 0; b < sw; b++)
          for (int64_t k = 0; k < n; k++) x[sw * k + b] = tmp[b * n + k];
      }
    }
    return;
  }
  for (int64_t b = 0, c0 = 0; b < sw; b++) {
    const int64_t Wp = phase_len(W, sw, b);
    T *pr = ph + c0 * H, *xb = x + b;
    for (int64_t a = 0; a < sh; a++) {
      const int64_t Hp = phase_len(H, sh, a);
      for (int64_t i = 0; i < Hp; i++, pr += Wp) {
        T *xr = xb + (i * sh + a) * W;
        if (merge)
          for (int64_t j = 0; j < Wp; j++) xr[j * sw] = pr[j];
        else
          for (int64_t j = 0; j < Wp; j++) pr[j] = xr[j * sw];
      }
    }
    c0 += Wp;
  }
}

/* every tap of cc channels between col (leading dimension ld) and their planes: col rows =
 * the planes' shifted views for output rows [p0, p0+rows) (add = 0), or planes += col rows
 * (add = 1, p0 = 0, rows = P) */
NNK_INLINE void FN(taps)(T *col, T *planes, const nnk_conv *g, int64_t cc, int64_t p0,
                         int64_t rows, int64_t ld, int add) {
  const int64_t Q = g->Q, HW = (int64_t)g->H * g->W, n = rows * Q;
  T m[NNK_MASK_MAX];
  for (int64_t s = 0; s < g->S; s++) {
    conv_tap t;
    conv_tap_make(&t, g, 0, s);
    const T *mask = n <= NNK_MASK_MAX && t.Wp == Q ? m : NULL;
    if (mask) FN(tap_mask)(m, &t, Q, rows);
    for (int64_t r = 0; r < g->R; r++) {
      conv_tap_make(&t, g, r, s);
      for (int64_t c = 0; c < cc; c++) {
        T *row = col + ((c * g->R + r) * g->S + s) * ld, *plane = planes + c * HW + t.base;
        if (add)
          FN(tap_add)(plane, row, &t, mask, Q, rows);
        else
          FN(tap_copy)(row, plane, &t, mask, Q, p0, rows);
      }
    }
  }
}

/* im2col by taps: for stride 1 with Q == W and small blocks, or with the phases in phbuf;
 * returns 1 when not applicable */
NNK_CLONES static int FN(im2col_taps)(T *col, const T *x, const nnk_conv *g, int64_t cc,
                                      int64_t p0, int64_t rows, int64_t ld, T *phbuf) {
  const int64_t HW = (int64_t)g->H * g->W;
  const int strided = g->stride_h > 1 || g->stride_w > 1;
  if (strided ? !phbuf || p0 != 0 || !conv_uses_phases(g, rows) : !NNK_TAPS_SAME(g, rows * g->Q))
    return 1;
  if (strided)
    for (int64_t c = 0; c < cc; c++) /* reads x only */
      FN(phase_move)(phbuf + c * HW, (T *)x + c * HW, g, 0);
  FN(taps)(col, strided ? phbuf : (T *)x, g, cc, p0, rows, ld, 0); /* reads the planes only */
  return 0;
}

/* x (cc x H x W) = col2im of col (all P output rows, leading dimension ld); phbuf: room for
 * the stride phases of cc channels, or NULL */
NNK_CLONES static void FN(col2im)(T *x, const T *col, const nnk_conv *g, int64_t cc,
                                  int64_t ld, T *phbuf) {
  const int64_t HW = (int64_t)g->H * g->W;
  const int strided = g->stride_h > 1 || g->stride_w > 1;
  if (strided ? !phbuf || !conv_uses_phases(g, g->P) : !NNK_TAPS_SAME(g, g->P * g->Q)) {
    memset(x, 0, (size_t)(cc * HW) * sizeof(T));
    FN(col2im_acc)(x, col, g, cc, 0, g->P, ld);
    return;
  }
  T *planes = strided ? phbuf : x;
  memset(planes, 0, (size_t)(cc * HW) * sizeof(T));
  FN(taps)((T *)col, planes, g, cc, 0, g->P, ld, 1); /* reads col only */
  if (strided)
    for (int64_t c = 0; c < cc; c++) FN(phase_move)(phbuf + c * HW, x + c * HW, g, 1);
}

/* ---- conv2d ------------------------------------------------------------------------------ */

size_t FN(nnk_conv2d_forward_workspace_size)(const nnk_conv *g) {
  return conv_ws_query(g, 0, sizeof(T));
}
size_t FN(nnk_conv2d_backward_input_workspace_size)(const nnk_conv *g) {
  return conv_ws_query(g, 1, sizeof(T));
}
size_t FN(nnk_conv2d_backward_weight_workspace_size)(const nnk_conv *g) {
  return conv_ws_query(g, 2, sizeof(T));
}

/* Common start of the conv kernels: plan, thread count, workspace. Returns -1 on failure;
 * *wsp is the workspace to use, *owned set when it was allocated here. */
static int FN(conv_begin)(conv_plan *pl, int *nt, void **wsp, int *owned, const nnk_conv *g,
                          int kind, void *ws, size_t ws_bytes, int64_t units) {
  int alloc;
  *owned = 0;
  conv_plan_make(pl, g, kind, sizeof(T), omp_get_max_threads());
  *nt = conv_threads(pl, ws, ws_bytes, &alloc);
  if (*nt < 1) return -1;
  const int64_t Cg = g->C / g->groups;
  double macs = (double)g->N * (double)g->K * (double)(Cg * g->R * g->S) * (double)g->P * (double)g->Q;
  if (macs < 65536.0) *nt = 1;
  conv_plan_make(pl, g, kind, sizeof(T), *nt);
  if (units < 0) units = kind == 1 ? pl->nsb * g->groups * pl->nchunk : pl->nsb * pl->nblk;
  if (kind != 2 && units < *nt) *nt = units < 1 ? 1 : (int)units;
  *wsp = ws;
  if (alloc) {
    size_t need = conv_ws_bytes(pl, *nt);
    if (need) {
      *wsp = ws_alloc(need);
      if (!*wsp) return -1;
      *owned = 1;
    }
  }
  return 0;
}

/* one thread's buffers in the workspace: the column matrix, the gemm's other block for a unit
 * of several samples (its result, or the gathered dout), the stride phases (NULL if unused) */
typedef struct {
  T *col, *tmp, *ph;
} FN(conv_buf);

static FN(conv_buf) FN(conv_bufs)(const conv_plan *pl, void *w, int tid) {
  char *base = w ? (char *)w + (size_t)tid * pl->col_bytes : NULL;
  FN(conv_buf) b = {(T *)base, NULL, NULL};
  if (base && pl->nb > 1) b.tmp = (T *)(base + pl->tmp_off);
  if (base && pl->ph_off) b.ph = (T *)(base + pl->ph_off);
  return b;
}

/* the column matrix of samples [n0, n0+ns), output rows [p0, p0+nr), group gi, side by side
 * in col (leading dimension ns*nr*Q); for one sample of a 1x1 convolution the input itself.
 * Returns the matrix and sets *ld. */
static const T *FN(conv_cols)(const FN(conv_buf) *bf, const T *inp, const nnk_conv *g,
                              const conv_plan *pl, int64_t n0, int64_t ns, int64_t gi, int64_t p0,
                              int64_t nr, int64_t *ld) {
  const int64_t Cg = g->C / g->groups, HW = (int64_t)g->H * g->W, ncols = nr * g->Q;
  const T *x = inp + (n0 * g->C + gi * Cg) * HW;
  if (pl->direct) { /* one sample (conv_batch_bound) */
    *ld = HW;
    return x + p0 * g->Q;
  }
  *ld = ns * ncols;
  for (int64_t s = 0; s < ns; s++)
    FN(im2col)(bf->col + s * ncols, x + s * g->C * HW, g, Cg, p0, nr, *ld, bf->ph);
  return bf->col;
}

/* dout of samples [n0, n0+ns), output rows [p0, p0+nr), group gi as one matrix
 * Kg x (ns*nr*Q): dout itself for one sample, else gathered into buf. Sets *ld. */
static const T *FN(conv_dout_block)(T *buf, const T *dout, const nnk_conv *g, int64_t n0,
                                    int64_t ns, int64_t gi, int64_t p0, int64_t nr, int64_t *ld) {
  const int64_t Kg = g->K / g->groups, PQ = (int64_t)g->P * g->Q, ncols = nr * g->Q;
  const T *dy = dout + (n0 * g->K + gi * Kg) * PQ + p0 * g->Q;
  if (ns == 1) {
    *ld = PQ;
    return dy;
  }
  *ld = ns * ncols;
  for (int64_t k = 0; k < Kg; k++)
    for (int64_t s = 0; s < ns; s++)
      memcpy(buf + k * *ld + s * ncols, dy + (s * g->K + k) * PQ, (size_t)ncols * sizeof(T));
  return buf;
}

/* one forward unit: a block of samples (or one sample's output rows [p0, p0+nr)), all groups */
static void FN(conv_fwd_unit)(T *out, const T *inp, const T *weight, const T *bias,
                              const nnk_conv *g, const conv_plan *pl, const FN(conv_buf) *bf,
                              int64_t u) {
  const int64_t G = g->groups, Cg = g->C / G, Kg = g->K / G;
  const int64_t PQ = (int64_t)g->P * g->Q, CRSg = Cg * g->R * g->S;
  T *tmp = bf->tmp;
  const int64_t p0 = (u % pl->nblk) * pl->rows, nr = imin64(pl->rows, g->P - p0);
  const int64_t ncols = nr * g->Q;
  int64_t n0, ns, ldb;
  conv_block_samples(pl, g->N, u / pl->nblk, &n0, &ns);
  for (int64_t gi = 0; gi < G; gi++) {
    const T *b = FN(conv_cols)(bf, inp, g, pl, n0, ns, gi, p0, nr, &ldb);
    const T *wg = weight + gi * Kg * CRSg;
    T *o = out + (n0 * g->K + gi * Kg) * PQ + p0 * g->Q;
    if (ns > 1) { /* one gemm for the block, then each sample's rows to its place (+ bias) */
      GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Kg, (int)ldb, (int)CRSg, (T)1, wg,
           (int)CRSg, b, (int)ldb, (T)0, tmp, (int)ldb);
      for (int64_t s = 0; s < ns; s++)
        for (int64_t k = 0; k < Kg; k++) {
          const T bk = bias ? bias[gi * Kg + k] : (T)0, *src = tmp + k * ldb + s * ncols;
          T *ok = o + (s * g->K + k) * PQ;
          NNK_SIMD
          for (int64_t j = 0; j < ncols; j++) ok[j] = src[j] + bk;
        }
      continue;
    }
    if (bias) { /* start from the bias and accumulate (saves gemm's separate beta = 0 pass) */
      for (int64_t k = 0; k < Kg; k++) {
        const T bk = bias[gi * Kg + k];
        T *ok = o + k * PQ;
        NNK_SIMD
        for (int64_t j = 0; j < ncols; j++) ok[j] = bk;
      }
    }
    GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Kg, (int)ncols, (int)CRSg, (T)1, wg,
         (int)CRSg, b, (int)ldb, bias ? (T)1 : (T)0, o, (int)PQ);
  }
}

/* out: (N,K,P,Q), inp: (N,C,H,W), weight: (K,C/groups,R,S), bias: (K) or NULL */
int FN(nnk_conv2d_forward)(T *out, const T *inp, const T *weight, const T *bias,
                           const nnk_conv *g, void *ws, size_t ws_bytes) {
  return FN(nnk_conv2d_forward_keep)(out, inp, weight, bias, NULL, g, ws, ws_bytes);
}

size_t FN(nnk_conv2d_keep_bytes)(const nnk_conv *g) {
  return nnk_conv_check(g) ? 0 : FN(nnk_poly_keep_bytes)(g, 1);
}

int FN(nnk_conv2d_forward_keep)(T *out, const T *inp, const T *weight, const T *bias, void *keep,
                                const nnk_conv *g, void *ws, size_t ws_bytes) {
  FN(nnk_poly_keep_clear)(keep);
  if (nnk_conv_check(g) || !out || !inp || !weight) return -1;
  if (conv_is_depthwise(g)) {
    FN(nnk_dw_forward)(out, inp, weight, bias, g);
    return 0;
  }
  const int wrc = FN(nnk_wino_forward)(out, inp, weight, bias, g, ws, ws_bytes); /* winograd.c */
  if (wrc <= 0) return wrc;
  const int prc = FN(nnk_poly_forward)(out, inp, weight, bias, keep, g, ws, ws_bytes); /* polyphase.c */
  if (prc <= 0) return prc;
  conv_plan pl;
  int nt, owned;
  void *w;
  if (FN(conv_begin)(&pl, &nt, &w, &owned, g, 0, ws, ws_bytes, -1)) return -1;
  const int64_t units = pl.nsb * pl.nblk;
  NNK_OMP(parallel num_threads(nt) if (nt > 1))
  {
    const FN(conv_buf) bf = FN(conv_bufs)(&pl, w, omp_get_thread_num());
    NNK_OMP(for schedule(static))
    for (int64_t u = 0; u < units; u++) FN(conv_fwd_unit)(out, inp, weight, bias, g, &pl, &bf, u);
  }
  if (owned) free(w);
  return 0;
}

/* one backward_input unit: a block of samples, group gi, input channels [c0, c0+cc) of the
 * group */
static void FN(conv_bwi_unit)(T *dinp, const T *dout, const T *weight, const nnk_conv *g,
                              const conv_plan *pl, const FN(conv_buf) *bf, int64_t u) {
  const int64_t G = g->groups, Cg = g->C / G, Kg = g->K / G, RS = (int64_t)g->R * g->S;
  const int64_t HW = (int64_t)g->H * g->W, PQ = (int64_t)g->P * g->Q, CRSg = Cg * RS;
  const int64_t gi = (u / pl->nchunk) % G;
  const int64_t c0 = (u % pl->nchunk) * pl->cc, ncc = imin64(pl->cc, Cg - c0);
  int64_t n0, ns;
  conv_block_samples(pl, g->N, u / (G * pl->nchunk), &n0, &ns);
  T *dx = dinp + (n0 * g->C + gi * Cg + c0) * HW;
  const T *a = weight + gi * Kg * CRSg + c0 * RS; /* used transposed: (ncc*RS) x Kg */
  if (ns > 1) { /* one gemm for the block (rows == P), then col2im sample by sample */
    int64_t ld;
    const T *dy = FN(conv_dout_block)(bf->tmp, dout, g, n0, ns, gi, 0, g->P, &ld);
    GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(ncc * RS), (int)ld, (int)Kg, (T)1, a,
         (int)CRSg, dy, (int)ld, (T)0, bf->col, (int)ld);
    for (int64_t s = 0; s < ns; s++)
      FN(col2im)(dx + s * g->C * HW, bf->col + s * PQ, g, ncc, ld, bf->ph);
    return;
  }
  T *col = bf->col;
  const T *dy = dout + (n0 * g->K + gi * Kg) * PQ;
  if (pl->direct) {
    GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)ncc, (int)PQ, (int)Kg, (T)1, a,
         (int)CRSg, dy, (int)PQ, (T)0, dx, (int)HW);
    return;
  }
  if (pl->rows == g->P) {
    GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(ncc * RS), (int)PQ, (int)Kg, (T)1, a,
         (int)CRSg, dy, (int)PQ, (T)0, col, (int)PQ);
    FN(col2im)(dx, col, g, ncc, PQ, bf->ph);
    return;
  }
  memset(dx, 0, (size_t)(ncc * HW) * sizeof(T));
  for (int64_t p0 = 0; p0 < g->P; p0 += pl->rows) {
    const int64_t nr = imin64(pl->rows, g->P - p0), ncols = nr * g->Q;
    GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(ncc * RS), (int)ncols, (int)Kg, (T)1, a,
         (int)CRSg, dy + p0 * g->Q, (int)PQ, (T)0, col, (int)ncols);
    FN(col2im_acc)(dx, col, g, ncc, p0, nr, ncols);
  }
}

/* stride 1: dinp = conv2d_forward(dout, flipped weight) with the geometry f of conv_bwi_flip */
static int FN(conv_bwi_flipped)(T *dinp, const T *dout, const T *weight, const nnk_conv *g,
                                const nnk_conv *f, void *ws, size_t ws_bytes) {
  const size_t fb = conv_flip_bytes(g, sizeof(T));
  T *wf;
  if (ws) {
    if (ws_bytes < fb) return -1;
    wf = (T *)ws;
  } else {
    wf = (T *)ws_alloc(fb);
    if (!wf) return -1;
  }
  /* wf (C, K/groups, R, S): wf[ci][kk][R-1-r][S-1-s] = weight[k][c][r][s] */
  const int64_t G = g->groups, Cg = g->C / G, Kg = g->K / G, R = g->R, S = g->S, RS = R * S;
  for (int64_t gi = 0; gi < G; gi++)
    for (int64_t kk = 0; kk < Kg; kk++)
      for (int64_t c = 0; c < Cg; c++) {
        const T *src = weight + ((gi * Kg + kk) * Cg + c) * RS;
        T *dst = wf + ((gi * Cg + c) * Kg + kk) * RS;
        for (int64_t i = 0; i < RS; i++) dst[RS - 1 - i] = src[i];
      }
  int rc = FN(nnk_conv2d_forward)(dinp, dout, wf, NULL, f, ws ? (char *)ws + fb : NULL,
                                  ws ? ws_bytes - fb : 0);
  if (!ws) free(wf);
  return rc;
}

/* dinp: (N,C,H,W), dout: (N,K,P,Q), weight: (K,C/groups,R,S) */
int FN(nnk_conv2d_backward_input)(T *dinp, const T *dout, const T *weight, const nnk_conv *g,
                                  void *ws, size_t ws_bytes) {
  if (nnk_conv_check(g) || !dinp || !dout || !weight) return -1;
  if (conv_is_depthwise(g)) return FN(nnk_dw_backward_input)(dinp, dout, weight, g);
  const int prc = FN(nnk_poly_backward_input)(dinp, dout, weight, NULL, NULL, g, ws, ws_bytes); /* polyphase.c */
  if (prc <= 0) return prc;
  nnk_conv f;
  if (conv_bwi_flip(g, &f, sizeof(T))) return FN(conv_bwi_flipped)(dinp, dout, weight, g, &f, ws, ws_bytes);
  conv_plan pl;
  int nt, owned;
  void *w;
  if (FN(conv_begin)(&pl, &nt, &w, &owned, g, 1, ws, ws_bytes, -1)) return -1;
  const int64_t units = pl.nsb * g->groups * pl.nchunk;
  NNK_OMP(parallel num_threads(nt) if (nt > 1))
  {
    const FN(conv_buf) bf = FN(conv_bufs)(&pl, w, omp_get_thread_num());
    NNK_OMP(for schedule(static))
    for (int64_t u = 0; u < units; u++) FN(conv_bwi_unit)(dinp, dout, weight, g, &pl, &bf, u);
  }
  if (owned) free(w);
  return 0;
}

/* one backward_weight unit: a block of samples (or one sample's output rows [p0, p0+nr)), all
 * groups, into dw: dw += dout block * col^T, whose inner dimension spans the block */
static void FN(conv_bww_unit)(T *dw, const T *inp, const T *dout, const nnk_conv *g,
                              const conv_plan *pl, const FN(conv_buf) *bf, int64_t u) {
  const int64_t G = g->groups, Cg = g->C / G, Kg = g->K / G;
  const int64_t CRSg = Cg * g->R * g->S;
  const int64_t p0 = (u % pl->nblk) * pl->rows, nr = imin64(pl->rows, g->P - p0);
  int64_t n0, ns, ldb, ldy;
  conv_block_samples(pl, g->N, u / pl->nblk, &n0, &ns);
  for (int64_t gi = 0; gi < G; gi++) {
    const T *b = FN(conv_cols)(bf, inp, g, pl, n0, ns, gi, p0, nr, &ldb);
    const T *dy = FN(conv_dout_block)(bf->tmp, dout, g, n0, ns, gi, p0, nr, &ldy);
    GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)Kg, (int)CRSg, (int)(ns * nr * g->Q),
         (T)1, dy, (int)ldy, b, (int)ldb, (T)1, dw + gi * Kg * CRSg, (int)CRSg);
  }
}

/* dweight: (K,C/groups,R,S), inp: (N,C,H,W), dout: (N,K,P,Q) */
int FN(nnk_conv2d_backward_weight)(T *dweight, const T *inp, const T *dout, const nnk_conv *g,
                                   void *ws, size_t ws_bytes) {
  if (nnk_conv_check(g) || !dweight || !inp || !dout) return -1;
  if (conv_is_depthwise(g)) {
    FN(nnk_dw_backward_weight)(dweight, inp, dout, g);
    return 0;
  }
  const int wrc = FN(nnk_wino_backward_weight)(dweight, inp, dout, g, ws, ws_bytes); /* winograd.c */
  if (wrc <= 0) return wrc;
  const int prc = FN(nnk_poly_backward_weight)(dweight, inp, dout, g, ws, ws_bytes); /* polyphase.c */
  if (prc <= 0) return prc;
  conv_plan pl;
  int nt, owned;
  void *w;
  if (FN(conv_begin)(&pl, &nt, &w, &owned, g, 2, ws, ws_bytes, -1)) return -1;
  const int64_t units = pl.nsb * pl.nblk;
  const int64_t wsize = (int64_t)g->K * (g->C / g->groups) * g->R * g->S;
  if (units < nt) nt = units < 1 ? 1 : (int)units;
  NNK_OMP(parallel num_threads(nt) if (nt > 1))
  {
    const int tid = omp_get_thread_num(), nth = omp_get_num_threads();
    char *base = (char *)w;
    const FN(conv_buf) bf = FN(conv_bufs)(&pl, w, tid);
    T *dw = tid == 0 ? dweight
                     : (T *)(base + (size_t)nt * pl.col_bytes + (size_t)(tid - 1) * pl.dw_bytes);
    memset(dw, 0, (size_t)wsize * sizeof(T));
    NNK_OMP(for schedule(static))
    for (int64_t u = 0; u < units; u++) FN(conv_bww_unit)(dw, inp, dout, g, &pl, &bf, u);
    if (nth > 1) {
      const T *part = (const T *)(base + (size_t)nt * pl.col_bytes);
      const size_t pstride = pl.dw_bytes / sizeof(T);
      NNK_OMP(for schedule(static))
      for (int64_t i = 0; i < wsize; i++) {
        T s = dweight[i];
        for (int t = 1; t < nth; t++) s += part[(size_t)(t - 1) * pstride + (size_t)i];
        dweight[i] = s;
      }
    }
  }
  if (owned) free(w);
  return 0;
}

/* dinp, dweight and/or dbias (each may be NULL) in one pass where the transforms can be
 * shared (polyphase.c), with the keep of nnk_conv2d_forward_keep or NULL */
size_t FN(nnk_conv2d_backward_workspace_size)(const nnk_conv *g) {
  if (nnk_conv_check(g)) return 0;
  if (nnk_poly_use(g, sizeof(T))) return nnk_poly_ws_query(g, 0, 1, 1);
  const size_t a = FN(nnk_conv2d_backward_input_workspace_size)(g);
  const size_t b = FN(nnk_conv2d_backward_weight_workspace_size)(g);
  return a > b ? a : b;
}

int FN(nnk_conv2d_backward)(T *dinp, T *dweight, T *dbias, const T *inp, const T *dout, const T *weight,
                            const void *keep, const nnk_conv *g, void *ws, size_t ws_bytes) {
  if (nnk_conv_check(g) || !dout || (dinp && !weight) || (dweight && !inp)) return -1;
  if (!dinp && !dweight && !dbias) return 0;
  const int prc = FN(nnk_poly_backward)(dinp, dweight, dbias, inp, dout, weight, keep, g, ws, ws_bytes); /* polyphase.c */
  if (prc <= 0) return prc;
  if (dinp && FN(nnk_conv2d_backward_input)(dinp, dout, weight, g, ws, ws_bytes)) return -1;
  if (dweight && FN(nnk_conv2d_backward_weight)(dweight, inp, dout, g, ws, ws_bytes)) return -1;
  if (dbias) FN(nnk_bias_backward)(dbias, dout, g->N, g->K, (int64_t)g->P * g->Q);
  return 0;
}

/* dbias: (C) = sum over n, hw of dout (N,C,HW) */
void FN(nnk_bias_backward)(T *dbias, const T *dout, int64_t N, int64_t C, int64_t HW) {
  NNK_OMP(parallel for schedule(static) if (N * C * HW > NNK_PAR_MIN))
  for (int64_t c = 0; c < C; c++) {
    double s = 0;
    for (int64_t n = 0; n < N; n++) s += FN(sum)(dout + (n * C + c) * HW, HW);
    dbias[c] = (T)s;
  }
}

#endif
