/* test_nnk_pool.c: compares the fast pooling (max, avg, adaptive avg), upsampling (nearest,
 * bilinear) and pad2d kernels (src/kernels/pool.c, resample.c) to the naive references of
 * src/kernels/nnk_ref.c on many shapes and options, for f32 (tolerance 1e-4) and f64
 * (tolerance 1e-10), with 1, 2 and 3 OpenMP threads; and the pooling geometry. Errors are
 * relative to max(|ref_i|, max|ref|). Prints one line per failed case and ends with
 * "N passed, M failed"; exit status 1 on failure. make test builds and runs it
 * (make build/test_nnk_pool alone).
 *
 * The file includes itself once for float and once for double (TEST_PASS, nnk_test_tmpl.h). */
#ifndef TEST_PASS
#include "nnk_test.h"

#define TEST_SELF "test_nnk_pool.c"
#include "nnk_test_tmpl.h"

static void test_pool_geometry(void) {
  nnk_pool p;
  result(nnk_pool_setup(&p, 1, 1, 7, 7, 2, 2, 2, 2, 0, 0, 1, 1, 1, 1, 0) == 0 && p.P == 4,
         "pool ceil_mode");
  result(nnk_pool_setup(&p, 1, 1, 6, 6, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 0) == 0 && p.P == 3,
         "pool ceil_mode 6/3/pad 1");
  result(nnk_pool_setup(&p, 1, 1, 5, 5, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 0) == 0 && p.P == 3,
         "pool ceil_mode last window dropped");
  result(nnk_pool_setup(&p, 1, 1, 7, 7, 2, 2, 2, 2, 2, 2, 1, 1, 0, 1, 0) == -1,
         "pool pad > kernel/2");
}

int main(void) {
  test_pool_geometry();
  run_all_f32();
  run_all_f64();
  return test_report();
}

#else /* ---- generic tests, T / FN / TNAME / TOL defined ---- */

/* ---- pooling ---- */

/* ties: 1 quantises the input so that max_pool windows hold equal values; nan: plants NaNs */
static void FN(test_pool)(int N, int C, int H, int W, int kh, int kw, int sh, int sw, int ph,
                          int pw, int dh, int dw, int ceil_mode, int cip, int div, int ties,
                          int nan) {
  nnk_pool g;
  char label[240];
  snprintf(label, sizeof label,
           "N=%d C=%d H=%d W=%d k=%d,%d s=%d,%d p=%d,%d d=%d,%d ceil=%d cip=%d div=%d ties=%d "
           "nan=%d",
           N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, ceil_mode, cip, div, ties, nan);
  if (nnk_pool_setup(&g, N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, ceil_mode, cip, div)) {
    result(0, "pool setup %s", label);
    return;
  }
  const int64_t ni = (int64_t)N * C * H * W, no = (int64_t)N * C * g.P * g.Q;
  T *x = FN(talloc)(ni), *y = FN(talloc)(no), *yr = FN(talloc)(no), *dy = FN(talloc)(no);
  T *dx = FN(talloc)(ni), *dxr = FN(talloc)(ni);
  int64_t *ind = xmalloc((size_t)no * sizeof(int64_t)), *indr = xmalloc((size_t)no * sizeof(int64_t));
  FN(fill)(x, ni, -1, 1);
  if (ties)
    for (int64_t i = 0; i < ni; i++) x[i] = (T)floor((double)x[i] * 2);
  if (nan)
    for (int64_t i = 0; i < ni; i += 7) x[i] = (T)NAN;
  FN(fill)(dy, no, -1, 1);
  FN(nnk_ref_max_pool2d_forward)(yr, indr, x, &g);
  FN(nnk_ref_max_pool2d_backward)(dxr, dy, indr, &g);
  for (int ti = 0; ti < NTHREADS; ti++) {
    char lab[300];
    snprintf(lab, sizeof lab, "%s nt=%d", label, thread_counts[ti]);
    set_threads(thread_counts[ti]);
    FN(poison)(y, no);
    result(FN(nnk_max_pool2d_forward)(y, ind, x, &g) == 0, "max_pool2d_forward rc %s", lab);
    FN(check)("max_pool2d_forward", lab, y, yr, no);
    result(same_i64(ind, indr, no), "max_pool2d_forward indices %s %s", TNAME, lab);
    FN(poison)(dx, ni);
    result(FN(nnk_max_pool2d_backward)(dx, dy, indr, &g) == 0, "max_pool2d_backward rc %s", lab);
    FN(check)("max_pool2d_backward", lab, dx, dxr, ni);
  }
  if (dh == 1 && dw == 1 && !nan) {
    FN(nnk_ref_avg_pool2d_forward)(yr, x, &g);
    FN(nnk_ref_avg_pool2d_backward)(dxr, dy, &g);
    for (int ti = 0; ti < NTHREADS; ti++) {
      char lab[300];
      snprintf(lab, sizeof lab, "%s nt=%d", label, thread_counts[ti]);
      set_threads(thread_counts[ti]);
      FN(poison)(y, no);
      result(FN(nnk_avg_pool2d_forward)(y, x, &g) == 0, "avg_pool2d_forward rc %s", lab);
      FN(check)("avg_pool2d_forward", lab, y, yr, no);
      FN(poison)(dx, ni);
      result(FN(nnk_avg_pool2d_backward)(dx, dy, &g) == 0, "avg_pool2d_backward rc %s", lab);
      FN(check)("avg_pool2d_backward", lab, dx, dxr, ni);
    }
  }
  free(x), free(y), free(yr), free(dy), free(dx), free(dxr), free(ind), free(indr);
}

static void FN(test_adaptive)(int N, int C, int H, int W, int P, int Q) {
  char label[120];
  snprintf(label, sizeof label, "N=%d C=%d H=%d W=%d P=%d Q=%d", N, C, H, W, P, Q);
  const int64_t ni = (int64_t)N * C * H * W, no = (int64_t)N * C * P * Q;
  T *x = FN(talloc)(ni), *y = FN(talloc)(no), *yr = FN(talloc)(no), *dy = FN(talloc)(no);
  T *dx = FN(talloc)(ni), *dxr = FN(talloc)(ni);
  FN(fill)(x, ni, -1, 1);
  FN(fill)(dy, no, -1, 1);
  FN(nnk_ref_adaptive_avg_pool2d_forward)(yr, x, N, C, H, W, P, Q);
  FN(nnk_ref_adaptive_avg_pool2d_backward)(dxr, dy, N, C, H, W, P, Q);
  for (int ti = 0; ti < NTHREADS; ti++) {
    char lab[200];
    snprintf(lab, sizeof lab, "%s nt=%d", label, thread_counts[ti]);
    set_threads(thread_counts[ti]);
    FN(poison)(y, no);
    FN(nnk_adaptive_avg_pool2d_forward)(y, x, N, C, H, W, P, Q);
    FN(check)("adaptive_avg_pool2d_forward", lab, y, yr, no);
    FN(poison)(dx, ni);
    FN(nnk_adaptive_avg_pool2d_backward)(dx, dy, N, C, H, W, P, Q);
    FN(check)("adaptive_avg_pool2d_backward", lab, dx, dxr, ni);
  }
  free(x), free(y), free(yr), free(dy), free(dx), free(dxr);
}

/* ---- upsampling ---- */

static void FN(test_upsample)(int N, int C, int H, int W, int P, int Q, double sh, double sw) {
  char label[160];
  snprintf(label, sizeof label, "N=%d C=%d H=%d W=%d P=%d Q=%d scale=%g,%g", N, C, H, W, P, Q,
           sh, sw);
  const int64_t ni = (int64_t)N * C * H * W, no = (int64_t)N * C * P * Q;
  T *x = FN(talloc)(ni), *y = FN(talloc)(no), *yr = FN(talloc)(no), *dy = FN(talloc)(no);
  T *dx = FN(talloc)(ni), *dxr = FN(talloc)(ni);
  FN(fill)(x, ni, -1, 1);
  FN(fill)(dy, no, -1, 1);
  for (int kind = 0; kind < 3; kind++) { /* nearest, bilinear, bilinear align_corners */
    const char *name = kind == 0 ? "nearest" : kind == 1 ? "bilinear" : "bilinear_align";
    if (kind == 0) {
      FN(nnk_ref_upsample_nearest2d_forward)(yr, x, N, C, H, W, P, Q, sh, sw);
      FN(nnk_ref_upsample_nearest2d_backward)(dxr, dy, N, C, H, W, P, Q, sh, sw);
    } else {
      FN(nnk_ref_upsample_bilinear2d_forward)(yr, x, N, C, H, W, P, Q, kind == 2, sh, sw);
      FN(nnk_ref_upsample_bilinear2d_backward)(dxr, dy, N, C, H, W, P, Q, kind == 2, sh, sw);
    }
    for (int ti = 0; ti < NTHREADS; ti++) {
      char lab[260];
      snprintf(lab, sizeof lab, "%s %s nt=%d", name, label, thread_counts[ti]);
      set_threads(thread_counts[ti]);
      FN(poison)(y, no);
      FN(poison)(dx, ni);
      int rc1, rc2;
      if (kind == 0) {
        rc1 = FN(nnk_upsample_nearest2d_forward)(y, x, N, C, H, W, P, Q, sh, sw);
        rc2 = FN(nnk_upsample_nearest2d_backward)(dx, dy, N, C, H, W, P, Q, sh, sw);
      } else {
        rc1 = FN(nnk_upsample_bilinear2d_forward)(y, x, N, C, H, W, P, Q, kind == 2, sh, sw);
        rc2 = FN(nnk_upsample_bilinear2d_backward)(dx, dy, N, C, H, W, P, Q, kind == 2, sh, sw);
      }
      result(rc1 == 0 && rc2 == 0, "upsample rc %s", lab);
      FN(check)("upsample_forward", lab, y, yr, no);
      FN(check)("upsample_backward", lab, dx, dxr, ni);
    }
  }
  free(x), free(y), free(yr), free(dy), free(dx), free(dxr);
}

/* ---- pad2d ---- */

static void FN(test_pad)(int N, int C, int H, int W, int l, int r, int t, int b) {
  const int Ho = H + t + b, Wo = W + l + r;
  const int64_t ni = (int64_t)N * C * H * W, no = (int64_t)N * C * Ho * Wo;
  T *x = FN(talloc)(ni), *y = FN(talloc)(no), *yr = FN(talloc)(no), *dy = FN(talloc)(no);
  T *dx = FN(talloc)(ni), *dxr = FN(talloc)(ni);
  FN(fill)(x, ni, -1, 1);
  FN(fill)(dy, no, -1, 1);
  for (int mode = 0; mode < 3; mode++) {
    char lab[200];
    snprintf(lab, sizeof lab, "mode=%d N=%d C=%d H=%d W=%d pad=%d,%d,%d,%d", mode, N, C, H, W, l,
             r, t, b);
    int valid = 1;
    if (mode == NNK_PAD_REFLECT && (l >= W || r >= W || t >= H || b >= H)) valid = 0;
    if (mode == NNK_PAD_CIRCULAR && (l > W || r > W || t > H || b > H)) valid = 0;
    if (!valid) {
      result(FN(nnk_pad2d_forward)(y, x, N, C, H, W, l, r, t, b, (nnk_pad_mode)mode) == -1,
             "pad2d invalid refused %s %s", TNAME, lab);
      continue;
    }
    FN(nnk_ref_pad2d_forward)(yr, x, N, C, H, W, l, r, t, b, (nnk_pad_mode)mode);
    FN(nnk_ref_pad2d_backward)(dxr, dy, N, C, H, W, l, r, t, b, (nnk_pad_mode)mode);
    for (int ti = 0; ti < NTHREADS; ti++) {
      char lab2[260];
      snprintf(lab2, sizeof lab2, "%s nt=%d", lab, thread_counts[ti]);
      set_threads(thread_counts[ti]);
      FN(poison)(y, no);
      FN(poison)(dx, ni);
      int rc1 = FN(nnk_pad2d_forward)(y, x, N, C, H, W, l, r, t, b, (nnk_pad_mode)mode);
      int rc2 = FN(nnk_pad2d_backward)(dx, dy, N, C, H, W, l, r, t, b, (nnk_pad_mode)mode);
      result(rc1 == 0 && rc2 == 0, "pad2d rc %s", lab2);
      FN(check)("pad2d_forward", lab2, y, yr, no);
      FN(check)("pad2d_backward", lab2, dx, dxr, ni);
    }
  }
  free(x), free(y), free(yr), free(dy), free(dx), free(dxr);
}

static void FN(run_all)(void) {
  /* pooling: N C H W kh kw sh sw ph pw dh dw ceil cip divisor ties nan */
  FN(test_pool)(2, 3, 8, 8, 2, 2, 2, 2, 0, 0, 1, 1, 0, 1, 0, 0, 0);
  FN(test_pool)(1, 2, 7, 9, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0, 0);
  FN(test_pool)(1, 2, 7, 9, 3, 3, 2, 2, 1, 1, 1, 1, 1, 0, 0, 0, 0);
  FN(test_pool)(2, 2, 10, 10, 3, 2, 2, 3, 1, 1, 2, 2, 0, 1, 0, 0, 0); /* dilation (max only) */
  FN(test_pool)(1, 1, 5, 5, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 0, 0, 0);
  FN(test_pool)(1, 1, 6, 6, 3, 3, 3, 3, 1, 1, 1, 1, 1, 0, 0, 0, 0);
  FN(test_pool)(2, 3, 9, 7, 3, 3, 1, 1, 1, 1, 1, 1, 0, 0, 5, 0, 0); /* divisor_override */
  FN(test_pool)(4, 16, 32, 32, 3, 3, 2, 2, 1, 1, 1, 1, 0, 1, 0, 1, 0); /* ties, parallel */
  FN(test_pool)(2, 3, 11, 11, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0, 1);  /* NaN */
  FN(test_pool)(3, 2, 13, 12, 4, 5, 3, 2, 2, 2, 1, 1, 1, 0, 0, 1, 0);
  /* adaptive_avg_pool2d: N C H W P Q */
  FN(test_adaptive)(2, 3, 7, 7, 3, 3);
  FN(test_adaptive)(1, 2, 10, 9, 4, 5);
  FN(test_adaptive)(2, 2, 5, 5, 7, 6);
  FN(test_adaptive)(4, 64, 8, 8, 1, 1);
  /* upsample: N C H W P Q scale_h scale_w */
  FN(test_upsample)(2, 3, 4, 5, 8, 10, 0, 0);
  FN(test_upsample)(1, 2, 4, 5, 4, 5, 0, 0);
  FN(test_upsample)(2, 2, 5, 7, 7, 9, 0, 0);
  FN(test_upsample)(1, 3, 6, 6, 4, 3, 0, 0);
  FN(test_upsample)(1, 2, 5, 5, 7, 7, 1.5, 1.5);
  FN(test_upsample)(2, 2, 3, 4, 9, 12, 3.0, 3.0);
  FN(test_upsample)(4, 16, 16, 16, 40, 33, 0, 0);
  FN(test_upsample)(1, 1, 1, 1, 3, 4, 0, 0);
  /* pad2d: N C H W left right top bottom */
  FN(test_pad)(2, 3, 5, 6, 1, 2, 2, 1);
  FN(test_pad)(1, 2, 4, 4, 3, 3, 3, 3);
  FN(test_pad)(1, 2, 3, 3, 3, 0, 0, 3);
  FN(test_pad)(1, 1, 4, 5, 5, 0, 1, 1);
  FN(test_pad)(4, 16, 32, 32, 4, 4, 4, 4);
  FN(test_pad)(1, 1, 1, 1, 1, 1, 1, 1);
}

#endif
