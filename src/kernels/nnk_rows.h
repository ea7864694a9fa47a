/* nnk_rows.h: the row loops of the normalisations, the bias gradient and log_softmax's
 * backward, generic in T: a kernel file includes it in its generic part (so once per type,
 * see nnk_tmpl.h; no include guard). They are called once per plane row of the OpenMP
 * loops, as NNK_CLONES (AVX-512 / AVX2 where the CPU has them; the loops around them are
 * compiled for the baseline). Sums are accumulated in double. They are static inline only so
 * that a file gets the clones of those it calls and no warning for the others: a clone is
 * called through its load-time resolver and never inlined. */

NNK_CLONES static inline double FN(sum)(const T *x, int64_t n) {
  double s = 0;
  NNK_SIMD_RED(+ : s)
  for (int64_t i = 0; i < n; i++) s += (double)x[i];
  return s;
}

NNK_CLONES static inline double FN(sumsqdev)(const T *x, int64_t n, double mean) {
  double s = 0;
  NNK_SIMD_RED(+ : s)
  for (int64_t i = 0; i < n; i++) {
    const double d = (double)x[i] - mean;
    s += d * d;
  }
  return s;
}

/* y = x*a + b */
NNK_CLONES static inline void FN(affine)(T *y, const T *x, int64_t n, T a, T b) {
  NNK_SIMD
  for (int64_t i = 0; i < n; i++) y[i] = x[i] * a + b;
}

/* *sdy += sum dy, *sdyx += sum dy (x - mean) */
NNK_CLONES static inline void FN(norm_sums)(double *sdy, double *sdyx, const T *dy, const T *x, int64_t n, double mean) {
  double a = 0, b = 0;
  NNK_SIMD_RED(+ : a, b)
  for (int64_t i = 0; i < n; i++) {
    a += (double)dy[i];
    b += (double)dy[i] * ((double)x[i] - mean);
  }
  *sdy += a, *sdyx += b;
}

/* dx = dy*k + x*kx + k0 */
NNK_CLONES static inline void FN(norm_dx)(T *dx, const T *dy, const T *x, int64_t n, T k, T kx, T k0) {
  NNK_SIMD
  for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * k + x[i] * kx + k0;
}

