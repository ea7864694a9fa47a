/* softmax.c: softmax and log_softmax along the middle dim of a contiguous (outer, dim, inner)
 * tensor (nnk.h), forward and backward; sums in double. */
#ifndef NNK_TMPL_PASS
#include "nnk_internal.h"

#define NNK_TMPL "softmax.c"
#include "nnk_tmpl.h" /* the part below, for float and for double */

#else /* ---- generic in T ---- */

#include "nnk_rows.h"

#define NNK_SM_BLOCK 64 /* inner positions handled together when inner > 1 */

/* forward of one (outer index, block of inner positions [j0, j0+nj)) */
static void FN(softmax_block)(T *out, const T *inp, int64_t dim, int64_t inner, int64_t nj,
                              int is_log) {
  T mx[NNK_SM_BLOCK];
  double sum[NNK_SM_BLOCK];
  for (int64_t j = 0; j < nj; j++) {
    mx[j] = (T)-INFINITY;
    sum[j] = 0;
  }
  for (int64_t d = 0; d < dim; d++) {
    const T *x = inp + d * inner;
    for (int64_t j = 0; j < nj; j++)
      if (x[j] > mx[j] || isnan(x[j])) mx[j] = x[j];
  }
  for (int64_t d = 0; d < dim; d++) {
    const T *x = inp + d * inner;
    T *y = out + d * inner;
    for (int64_t j = 0; j < nj; j++) {
      const T e = EXP(x[j] - mx[j]);
      sum[j] += (double)e;
      if (!is_log) y[j] = e;
    }
  }
  for (int64_t d = 0; d < dim; d++) {
    const T *x = inp + d * inner;
    T *y = out + d * inner;
    for (int64_t j = 0; j < nj; j++) {
      if (is_log)
        y[j] = x[j] - mx[j] - (T)LOG((T)sum[j]);
      else
        y[j] = (T)((double)y[j] / sum[j]);
    }
  }
}

/* forward of one contiguous row of `dim` elements */
static void FN(softmax_row)(T *y, const T *x, int64_t dim, int is_log) {
  T mx = (T)-INFINITY;
  for (int64_t d = 0; d < dim; d++)
    if (x[d] > mx || isnan(x[d])) mx = x[d];
  double s = 0;
  if (is_log) {
    for (int64_t d = 0; d < dim; d++) s += (double)EXP(x[d] - mx);
    const T lse = mx + (T)LOG((T)s);
    NNK_SIMD
    for (int64_t d = 0; d < dim; d++) y[d] = x[d] - lse;
  } else {
    for (int64_t d = 0; d < dim; d++) {
      const T e = EXP(x[d] - mx);
      y[d] = e;
      s += (double)e;
    }
    const T r = (T)(1.0 / s);
    NNK_SIMD
    for (int64_t d = 0; d < dim; d++) y[d] *= r;
  }
}

static void FN(softmax_fwd)(T *out, const T *inp, int64_t outer, int64_t dim, int64_t inner,
                            int is_log) {
  if (outer <= 0 || dim <= 0 || inner <= 0) return;
  if (inner == 1) {
    NNK_OMP(parallel for schedule(static) if (outer * dim > NNK_PAR_MIN))
    for (int64_t o = 0; o < outer; o++) FN(softmax_row)(out + o * dim, inp + o * dim, dim, is_log);
    return;
  }
  const int64_t nb = ceil_div64(inner, NNK_SM_BLOCK);
  NNK_OMP(parallel for schedule(static) if (outer * dim * inner > NNK_PAR_MIN))
  for (int64_t u = 0; u < outer * nb; u++) {
    const int64_t o = u / nb, j0 = (u % nb) * NNK_SM_BLOCK;
    const int64_t off = o * dim * inner + j0;
    FN(softmax_block)(out + off, inp + off, dim, inner, imin64(NNK_SM_BLOCK, inner - j0), is_log);
  }
}

/* out, inp: (outer, dim, inner) */
void FN(nnk_softmax_forward)(T *out, const T *inp, int64_t outer, int64_t dim, int64_t inner) {
  FN(softmax_fwd)(out, inp, outer, dim, inner, 0);
}
void FN(nnk_log_softmax_forward)(T *out, const T *inp, int64_t outer, int64_t dim,
                                 int64_t inner) {
  FN(softmax_fwd)(out, inp, outer, dim, inner, 1);
}

/* backward of one (outer, inner block): softmax: dx = y*(dy - sum(dy*y));
 * log_softmax: dx = dy - exp(y)*sum(dy) */
static void FN(softmax_bwd_block)(T *dinp, const T *dout, const T *out, int64_t dim,
                                  int64_t inner, int64_t nj, int is_log) {
  double s[NNK_SM_BLOCK];
  for (int64_t j = 0; j < nj; j++) s[j] = 0;
  for (int64_t d = 0; d < dim; d++) {
    const T *dy = dout + d * inner, *y = out + d * inner;
    for (int64_t j = 0; j < nj; j++) s[j] += is_log ? (double)dy[j] : (double)dy[j] * (double)y[j];
  }
  for (int64_t d = 0; d < dim; d++) {
    const T *dy = dout + d * inner, *y = out + d * inner;
    T *dx = dinp + d * inner;
    for (int64_t j = 0; j < nj; j++) {
      if (is_log)
        dx[j] = dy[j] - EXP(y[j]) * (T)s[j];
      else
        dx[j] = y[j] * (dy[j] - (T)s[j]);
    }
  }
}

static void FN(softmax_bwd)(T *dinp, const T *dout, const T *out, int64_t outer, int64_t dim,
                            int64_t inner, int is_log) {
  if (outer <= 0 || dim <= 0 || inner <= 0) return;
  if (inner == 1) {
    NNK_OMP(parallel for schedule(static) if (outer * dim > NNK_PAR_MIN))
    for (int64_t o = 0; o < outer; o++) {
      const T *dy = dout + o * dim, *y = out + o * dim;
      T *dx = dinp + o * dim;
      double s = 0;
      if (is_log) {
        s = FN(sum)(dy, dim);
        const T ts = (T)s;
        for (int64_t d = 0; d < dim; d++) dx[d] = dy[d] - EXP(y[d]) * ts;
      } else {
        NNK_SIMD_RED(+ : s)
        for (int64_t d = 0; d < dim; d++) s += (double)dy[d] * (double)y[d];
        const T ts = (T)s;
        NNK_SIMD
        for (int64_t d = 0; d < dim; d++) dx[d] = y[d] * (dy[d] - ts);
      }
    }
    return;
  }
  const int64_t nb = ceil_div64(inner, NNK_SM_BLOCK);
  NNK_OMP(parallel for schedule(static) if (outer * dim * inner > NNK_PAR_MIN))
  for (int64_t u = 0; u < outer * nb; u++) {
    const int64_t o = u / nb, j0 = (u % nb) * NNK_SM_BLOCK;
    const int64_t off = o * dim * inner + j0;
    FN(softmax_bwd_block)(dinp + off, dout + off, out + off, dim, inner,
                          imin64(NNK_SM_BLOCK, inner - j0), is_log);
  }
}

/* dinp, dout, out: (outer, dim, inner) */
void FN(nnk_softmax_backward)(T *dinp, const T *dout, const T *out, int64_t outer, int64_t dim,
                              int64_t inner) {
  FN(softmax_bwd)(dinp, dout, out, outer, dim, inner, 0);
}
void FN(nnk_log_softmax_backward)(T *dinp, const T *dout, const T *out, int64_t outer,
                                  int64_t dim, int64_t inner) {
  FN(softmax_bwd)(dinp, dout, out, outer, dim, inner, 1);
}

#endif
