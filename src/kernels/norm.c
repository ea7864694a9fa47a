/* norm.c: batch_norm, group_norm (and group_norm + SiLU fused) and layer_norm (nnk.h),
 * forward and backward; statistics in double. */
#ifndef NNK_TMPL_PASS
#include "nnk_internal.h"

#define NNK_TMPL "norm.c"
#include "nnk_tmpl.h" /* the part below, for float and for double */

#else /* ---- generic in T ---- */

#include "nnk_rows.h"

/* ---- batch_norm ------------------------------------------------------------------------- */

/* channel c of batch_norm forward: y = x*(*a) + *b, from the batch statistics (mean and the
 * sum ss of squared deviations over cnt values) when batch, else from the running ones;
 * updates the running statistics (training) and writes save_mean/save_invstd */
static inline void FN(bn_channel)(T *a, T *b, int64_t c, int batch, double mean, double ss,
                                  int64_t cnt, T *save_mean, T *save_invstd, T *running_mean,
                                  T *running_var, const T *weight, const T *bias, int training,
                                  double momentum, double eps) {
  double invstd;
  if (batch) {
    const double var = cnt > 0 ? ss / (double)cnt : 0.0;
    invstd = 1.0 / sqrt(var + eps);
    if (training && running_mean)
      running_mean[c] = (T)((1.0 - momentum) * (double)running_mean[c] + momentum * mean);
    if (training && running_var) {
      const double uvar = cnt > 1 ? ss / (double)(cnt - 1) : var;
      running_var[c] = (T)((1.0 - momentum) * (double)running_var[c] + momentum * uvar);
    }
  } else {
    mean = (double)running_mean[c];
    invstd = 1.0 / sqrt((double)running_var[c] + eps);
  }
  if (save_mean) save_mean[c] = (T)mean;
  if (save_invstd) save_invstd[c] = (T)invstd;
  const double ac = weight ? (double)weight[c] * invstd : invstd;
  *a = (T)ac;
  *b = (T)((bias ? (double)bias[c] : 0.0) - mean * ac);
}

/* BatchNorm1d (HW == 1): a channel's values are strided by C, so the statistics are gathered
 * row by row for a block of channels at once (vector loops over the channels) */
#define NNK_BN_BLOCK 256

static void FN(bn1d_forward)(T *out, T *save_mean, T *save_invstd, T *running_mean,
                             T *running_var, const T *inp, const T *weight, const T *bias,
                             int training, double momentum, double eps, int64_t N, int64_t C) {
  const int batch = training || !running_mean || !running_var;
  NNK_OMP(parallel for schedule(static) if (N * C > NNK_PAR_MIN))
  for (int64_t c0 = 0; c0 < C; c0 += NNK_BN_BLOCK) {
    const int64_t nc = imin64(NNK_BN_BLOCK, C - c0);
    double mean[NNK_BN_BLOCK], ss[NNK_BN_BLOCK];
    T a[NNK_BN_BLOCK], b[NNK_BN_BLOCK];
    for (int64_t j = 0; j < nc; j++) mean[j] = ss[j] = 0;
    if (batch) {
      for (int64_t n = 0; n < N; n++) {
        const T *x = inp + n * C + c0;
        NNK_SIMD
        for (int64_t j = 0; j < nc; j++) mean[j] += (double)x[j];
      }
      for (int64_t j = 0; j < nc; j++) mean[j] = N > 0 ? mean[j] / (double)N : 0.0;
      for (int64_t n = 0; n < N; n++) {
        const T *x = inp + n * C + c0;
        NNK_SIMD
        for (int64_t j = 0; j < nc; j++) {
          const double d = (double)x[j] - mean[j];
          ss[j] += d * d;
        }
      }
    }
    for (int64_t j = 0; j < nc; j++)
      FN(bn_channel)(&a[j], &b[j], c0 + j, batch, mean[j], ss[j], N, save_mean, save_invstd,
                     running_mean, running_var, weight, bias, training, momentum, eps);
    for (int64_t n = 0; n < N; n++) {
      const T *x = inp + n * C + c0;
      T *y = out + n * C + c0;
      NNK_SIMD
      for (int64_t j = 0; j < nc; j++) y[j] = x[j] * a[j] + b[j];
    }
  }
}

static void FN(bn1d_backward)(T *dinp, T *dweight, T *dbias, const T *dout, const T *inp,
                              const T *weight, const T *save_mean, const T *save_invstd,
                              int training, int64_t N, int64_t C) {
  const int sums = dweight || dbias || (dinp && training);
  NNK_OMP(parallel for schedule(static) if (N * C > NNK_PAR_MIN))
  for (int64_t c0 = 0; c0 < C; c0 += NNK_BN_BLOCK) {
    const int64_t nc = imin64(NNK_BN_BLOCK, C - c0);
    double sdy[NNK_BN_BLOCK], sdyx[NNK_BN_BLOCK], mean[NNK_BN_BLOCK];
    T k[NNK_BN_BLOCK], kx[NNK_BN_BLOCK], k0[NNK_BN_BLOCK];
    for (int64_t j = 0; j < nc; j++) {
      mean[j] = (double)save_mean[c0 + j];
      sdy[j] = sdyx[j] = 0;
    }
    if (sums) {
      for (int64_t n = 0; n < N; n++) {
        const T *dy = dout + n * C + c0, *x = inp + n * C + c0;
        NNK_SIMD
        for (int64_t j = 0; j < nc; j++) {
          sdy[j] += (double)dy[j];
          sdyx[j] += (double)dy[j] * ((double)x[j] - mean[j]);
        }
      }
    }
    for (int64_t j = 0; j < nc; j++) {
      const int64_t c = c0 + j;
      const double invstd = (double)save_invstd[c], w = weight ? (double)weight[c] : 1.0;
      if (dbias) dbias[c] = (T)sdy[j];
      if (dweight) dweight[c] = (T)(sdyx[j] * invstd);
      /* dinp = dy*k + x*kx + k0 */
      double kk = invstd * w, kkx = 0, kk0 = 0;
      if (training && N > 0) {
        kkx = -sdyx[j] / (double)N * invstd * invstd * kk;
        kk0 = -sdy[j] / (double)N * kk - mean[j] * kkx;
      }
      k[j] = (T)kk;
      kx[j] = (T)kkx;
      k0[j] = (T)kk0;
    }
    if (!dinp) continue;
    for (int64_t n = 0; n < N; n++) {
      const T *dy = dout + n * C + c0, *x = inp + n * C + c0;
      T *dx = dinp + n * C + c0;
      NNK_SIMD
      for (int64_t j = 0; j < nc; j++) dx[j] = dy[j] * k[j] + x[j] * kx[j] + k0[j];
    }
  }
}

/* out: (N,C,HW), inp: (N,C,HW), weight, bias, save_*, running_*: (C) */
void FN(nnk_batch_norm_forward)(T *out, T *save_mean, T *save_invstd, T *running_mean,
                                T *running_var, const T *inp, const T *weight, const T *bias,
                                int training, double momentum, double eps, int64_t N, int64_t C,
                                int64_t HW) {
  if (HW == 1) {
    FN(bn1d_forward)(out, save_mean, save_invstd, running_mean, running_var, inp, weight, bias,
                     training, momentum, eps, N, C);
    return;
  }
  const int64_t cnt = N * HW;
  const int batch = training || !running_mean || !running_var;
  NNK_OMP(parallel for schedule(static) if (N * C * HW > NNK_PAR_MIN))
  for (int64_t c = 0; c < C; c++) {
    double mean = 0, ss = 0;
    if (batch) {
      for (int64_t n = 0; n < N; n++) mean += FN(sum)(inp + (n * C + c) * HW, HW);
      mean = cnt > 0 ? mean / (double)cnt : 0.0;
      for (int64_t n = 0; n < N; n++) ss += FN(sumsqdev)(inp + (n * C + c) * HW, HW, mean);
    }
    T a, b;
    FN(bn_channel)(&a, &b, c, batch, mean, ss, cnt, save_mean, save_invstd, running_mean,
                   running_var, weight, bias, training, momentum, eps);
    for (int64_t n = 0; n < N; n++)
      FN(affine)(out + (n * C + c) * HW, inp + (n * C + c) * HW, HW, a, b);
  }
}

/* dinp: (N,C,HW), dweight, dbias: (C) (each may be NULL) */
void FN(nnk_batch_norm_backward)(T *dinp, T *dweight, T *dbias, const T *dout, const T *inp,
                                 const T *weight, const T *save_mean, const T *save_invstd,
                                 int training, int64_t N, int64_t C, int64_t HW) {
  if (HW == 1) {
    FN(bn1d_backward)(dinp, dweight, dbias, dout, inp, weight, save_mean, save_invstd, training,
                      N, C);
    return;
  }
  const int64_t cnt = N * HW;
  NNK_OMP(parallel for schedule(static) if (N * C * HW > NNK_PAR_MIN))
  for (int64_t c = 0; c < C; c++) {
    const double mean = (double)save_mean[c], invstd = (double)save_invstd[c];
    const double w = weight ? (double)weight[c] : 1.0;
    double sdy = 0, sdyx = 0;
    if (dweight || (dinp && training) || dbias)
      for (int64_t n = 0; n < N; n++)
        FN(norm_sums)(&sdy, &sdyx, dout + (n * C + c) * HW, inp + (n * C + c) * HW, HW, mean);
    if (dbias) dbias[c] = (T)sdy;
    if (dweight) dweight[c] = (T)(sdyx * invstd);
    if (!dinp) continue;
    /* dinp = dy*k + x*kx + k0 */
    double k = invstd * w, kx = 0, k0 = 0;
    if (training && cnt > 0) {
      kx = -sdyx / (double)cnt * invstd * invstd * k;
      k0 = -sdy / (double)cnt * k - mean * kx;
    }
    for (int64_t n = 0; n < N; n++) {
      const int64_t o = (n * C + c) * HW;
      FN(norm_dx)(dinp + o, dout + o, inp + o, HW, (T)k, (T)kx, (T)k0);
    }
  }
}

/* ---- group_norm --------------------------------------------------------------------------- */

static void FN(group_norm_fwd)(T *out, T *mean, T *rstd, const T *inp, const T *weight,
                               const T *bias, int64_t N, int64_t C, int64_t HW, int64_t G,
                               double eps, int silu) {
  if (G <= 0 || C % G) return;
  const int64_t Cg = C / G, M = Cg * HW;
  NNK_OMP(parallel for schedule(static) if (N * C * HW > NNK_PAR_MIN))
  for (int64_t ng = 0; ng < N * G; ng++) {
    const T *x = inp + ng * M;
    T *y = out + ng * M;
    const double mu = M > 0 ? FN(sum)(x, M) / (double)M : 0.0;
    const double var = M > 0 ? FN(sumsqdev)(x, M, mu) / (double)M : 0.0;
    const double rs = 1.0 / sqrt(var + eps);
    if (mean) mean[ng] = (T)mu;
    if (rstd) rstd[ng] = (T)rs;
    for (int64_t j = 0; j < Cg; j++) {
      const int64_t c = (ng % G) * Cg + j;
      const double a = weight ? (double)weight[c] * rs : rs;
      const double b = (bias ? (double)bias[c] : 0.0) - mu * a;
      FN(affine)(y + j * HW, x + j * HW, HW, (T)a, (T)b);
      if (silu) {
        T *yj = y + j * HW;
        for (int64_t i = 0; i < HW; i++) yj[i] = yj[i] / ((T)1 + EXP(-yj[i]));
      }
    }
  }
}

/* out: (N,C,HW), inp: (N,C,HW), weight, bias: (C) or NULL, mean, rstd: (N*G) or NULL */
void FN(nnk_group_norm_forward)(T *out, T *mean, T *rstd, const T *inp, const T *weight,
                                const T *bias, int64_t N, int64_t C, int64_t HW, int64_t G,
                                double eps) {
  FN(group_norm_fwd)(out, mean, rstd, inp, weight, bias, N, C, HW, G, eps, 0);
}

/* out = silu(group_norm(inp)); shapes as nnk_group_norm_forward */
void FN(nnk_group_norm_silu_forward)(T *out, T *mean, T *rstd, const T *inp, const T *weight,
                                     const T *bias, int64_t N, int64_t C, int64_t HW, int64_t G,
                                     double eps) {
  FN(group_norm_fwd)(out, mean, rstd, inp, weight, bias, N, C, HW, G, eps, 1);
}

size_t FN(nnk_group_norm_backward_workspace_size)(int64_t N, int64_t C) {
  if (N <= 0 || C <= 0) return 0;
  return round64((size_t)(2 * N * C) * sizeof(double));
}

/* dinp: (N,C,HW), dweight, dbias: (C) (each may be NULL); mean, rstd: (N*G) */
int FN(nnk_group_norm_backward)(T *dinp, T *dweight, T *dbias, const T *dout, const T *inp,
                                const T *weight, const T *mean, const T *rstd, int64_t N,
                                int64_t C, int64_t HW, int64_t G, void *ws, size_t ws_bytes) {
  if (N < 0 || C <= 0 || HW < 0 || G <= 0 || C % G) return -1;
  if (N == 0) {
    if (dweight) memset(dweight, 0, (size_t)C * sizeof(T));
    if (dbias) memset(dbias, 0, (size_t)C * sizeof(T));
    return 0;
  }
  const size_t need = FN(nnk_group_norm_backward_workspace_size)(N, C);
  void *mem = ws;
  if (!ws) {
    mem = ws_alloc(need);
    if (!mem) return -1;
  } else if (ws_bytes < need) {
    return -1;
  }
  double *ds = (double *)mem, *db = ds + N * C; /* per (n,c): sum dy*x, sum dy */
  const int64_t Cg = C / G;
  const double M = (double)(Cg * HW);
  NNK_OMP(parallel if (N * C * HW > NNK_PAR_MIN))
  {
    NNK_OMP(for schedule(static))
    for (int64_t nc = 0; nc < N * C; nc++) {
      const T *dy = dout + nc * HW, *x = inp + nc * HW;
      double a = 0, b = 0;
      NNK_SIMD_RED(+ : a, b)
      for (int64_t i = 0; i < HW; i++) {
        a += (double)dy[i] * (double)x[i];
        b += (double)dy[i];
      }
      ds[nc] = a;
      db[nc] = b;
    }
    if (dweight || dbias) {
      NNK_OMP(for schedule(static))
      for (int64_t c = 0; c < C; c++) {
        double sw = 0, sb = 0;
        for (int64_t n = 0; n < N; n++) {
          const int64_t ng = n * G + c / Cg;
          sw += (ds[n * C + c] - db[n * C + c] * (double)mean[ng]) * (double)rstd[ng];
          sb += db[n * C + c];
        }
        if (dweight) dweight[c] = (T)sw;
        if (dbias) dbias[c] = (T)sb;
      }
    }
    if (dinp) {
      NNK_OMP(for schedule(static))
      for (int64_t ng = 0; ng < N * G; ng++) {
        const int64_t n = ng / G, c0 = (ng % G) * Cg;
        const double mu = (double)mean[ng], rs = (double)rstd[ng];
        double A = 0, B = 0;
        for (int64_t j = 0; j < Cg; j++) {
          const int64_t c = c0 + j;
          const double w = weight ? (double)weight[c] : 1.0;
          A += w * db[n * C + c];
          B += w * (ds[n * C + c] - mu * db[n * C + c]);
        }
        const double k2 = M > 0 ? -rs * rs * rs * B / M : 0.0;
        const double k3 = (M > 0 ? -rs * A / M : 0.0) - k2 * mu;
        for (int64_t j = 0; j < Cg; j++) {
          const int64_t c = c0 + j;
          const T k1 = (T)(rs * (weight ? (double)weight[c] : 1.0));
          const T *dy = dout + (n * C + c) * HW, *x = inp + (n * C + c) * HW;
          T *dx = dinp + (n * C + c) * HW;
          const T tk2 = (T)k2, tk3 = (T)k3;
          NNK_SIMD
          for (int64_t i = 0; i < HW; i++) dx[i] = dy[i] * k1 + x[i] * tk2 + tk3;
        }
      }
    }
  }
  if (!ws) free(mem);
  return 0;
}

/* ---- layer_norm ----------------------------------------------------------------------------- */

/* out: (M,D), inp: (M,D), weight, bias: (D) or NULL, mean, rstd: (M) or NULL */
void FN(nnk_layer_norm_forward)(T *out, T *mean, T *rstd, const T *inp, const T *weight,
                                const T *bias, int64_t M, int64_t D, double eps) {
  NNK_OMP(parallel for schedule(static) if (M * D > NNK_PAR_MIN))
  for (int64_t m = 0; m < M; m++) {
    const T *x = inp + m * D;
    T *y = out + m * D;
    const double mu = D > 0 ? FN(sum)(x, D) / (double)D : 0.0;
    const double var = D > 0 ? FN(sumsqdev)(x, D, mu) / (double)D : 0.0;
    const double rs = 1.0 / sqrt(var + eps);
    if (mean) mean[m] = (T)mu;
    if (rstd) rstd[m] = (T)rs;
    if (!weight && !bias) {
      FN(affine)(y, x, D, (T)rs, (T)(-mu * rs));
      continue;
    }
    const T tmu = (T)mu, trs = (T)rs;
    for (int64_t d = 0; d < D; d++) {
      T v = (x[d] - tmu) * trs;
      if (weight) v *= weight[d];
      if (bias) v += bias[d];
      y[d] = v;
    }
  }
}

size_t FN(nnk_layer_norm_backward_workspace_size)(int64_t M, int64_t D) {
  if (M <= 0 || D <= 0) return 0;
  return (size_t)max_threads() * round64((size_t)(2 * D) * sizeof(double));
}

/* dinp: (M,D), dweight, dbias: (D) (each may be NULL); mean, rstd: (M) */
int FN(nnk_layer_norm_backward)(T *dinp, T *dweight, T *dbias, const T *dout, const T *inp,
                                const T *weight, const T *mean, const T *rstd, int64_t M,
                                int64_t D, void *ws, size_t ws_bytes) {
  if (M < 0 || D < 0) return -1;
  const int want_wb = dweight || dbias;
  const size_t per = round64((size_t)(2 * D) * sizeof(double));
  int nt = max_threads();
  if (M * D <= NNK_PAR_MIN) nt = 1;
  void *mem = ws;
  int owned = 0;
  if (want_wb && D > 0) {
    if (!ws) {
      mem = ws_alloc((size_t)nt * per);
      if (!mem) return -1;
      owned = 1;
    } else {
      if ((size_t)nt * per > ws_bytes) nt = (int)(ws_bytes / per);
      if (nt < 1) return -1;
    }
  }
  NNK_OMP(parallel num_threads(nt) if (nt > 1))
  {
    const int tid = omp_get_thread_num(), nth = omp_get_num_threads();
    double *pw = want_wb ? (double *)((char *)mem + (size_t)tid * per) : NULL, *pb = NULL;
    if (pw) {
      pb = pw + D;
      memset(pw, 0, (size_t)(2 * D) * sizeof(double));
    }
    NNK_OMP(for schedule(static))
    for (int64_t m = 0; m < M; m++) {
      const T *dy = dout + m * D, *x = inp + m * D;
      const double mu = (double)mean[m], rs = (double)rstd[m];
      if (pw) {
        for (int64_t d = 0; d < D; d++) {
          pw[d] += (double)dy[d] * ((double)x[d] - mu) * rs;
          pb[d] += (double)dy[d];
        }
      }
      if (!dinp) continue;
      double a = 0, b = 0; /* sum dxhat, sum dxhat*xhat */
      NNK_SIMD_RED(+ : a, b)
      for (int64_t d = 0; d < D; d++) {
        const double g = (double)dy[d] * (weight ? (double)weight[d] : 1.0);
        a += g;
        b += g * ((double)x[d] - mu) * rs;
      }
      a /= (double)D;
      b /= (double)D;
      T *dx = dinp + m * D;
      const T tmu = (T)mu, trs = (T)rs, ta = (T)a, tb = (T)b;
      for (int64_t d = 0; d < D; d++) {
        const T g = weight ? dy[d] * weight[d] : dy[d];
        const T xh = (x[d] - tmu) * trs;
        dx[d] = trs * (g - ta - xh * tb);
      }
    }
    if (pw) {
      NNK_OMP(for schedule(static))
      for (int64_t d = 0; d < D; d++) {
        double sw = 0, sb = 0;
        for (int t = 0; t < nth; t++) {
          const double *q = (const double *)((char *)mem + (size_t)t * per);
          sw += q[d];
          sb += q[D + d];
        }
        if (dweight) dweight[d] = (T)sw;
        if (dbias) dbias[d] = (T)sb;
      }
    }
  }
  if (owned) free(mem);
  return 0;
}

#endif
