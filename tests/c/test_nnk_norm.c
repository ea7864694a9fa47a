/* test_nnk_norm.c: compares the fast batch_norm, group_norm, layer_norm, softmax and
 * log_softmax kernels (src/kernels/norm.c, softmax.c), forward and backward, to the naive
 * references of src/kernels/nnk_ref.c on many shapes and options, for f32 (tolerance 1e-4)
 * and f64 (tolerance 1e-10), with 1, 2 and 3 OpenMP threads. Errors are relative to
 * max(|ref_i|, max|ref|). Prints one line per failed case and ends with "N passed, M failed";
 * exit status 1 on failure. make test builds and runs it (make build/test_nnk_norm alone).
 *
 * The file includes itself once for float and once for double (TEST_PASS, nnk_test_tmpl.h). */
#ifndef TEST_PASS
#include "nnk_test.h"

#define TEST_SELF "test_nnk_norm.c"
#include "nnk_test_tmpl.h"

int main(void) {
  run_all_f32();
  run_all_f64();
  return test_report();
}

#else /* ---- generic tests, T / FN / TNAME / TOL defined ---- */

/* ---- batch_norm ---- */

static void FN(test_batch_norm)(int64_t N, int64_t C, int64_t HW, int affine, int training,
                                double shift) {
  char label[160];
  snprintf(label, sizeof label, "N=%lld C=%lld HW=%lld affine=%d training=%d shift=%g",
           (long long)N, (long long)C, (long long)HW, affine, training, shift);
  const int64_t n = N * C * HW;
  T *x = FN(talloc)(n), *y = FN(talloc)(n), *yr = FN(talloc)(n), *dy = FN(talloc)(n);
  T *dx = FN(talloc)(n), *dxr = FN(talloc)(n), *w = FN(talloc)(C), *b = FN(talloc)(C);
  T *sm = FN(talloc)(C), *si = FN(talloc)(C), *smr = FN(talloc)(C), *sir = FN(talloc)(C);
  T *rm0 = FN(talloc)(C), *rv0 = FN(talloc)(C), *rm = FN(talloc)(C), *rv = FN(talloc)(C);
  T *rmr = FN(talloc)(C), *rvr = FN(talloc)(C);
  T *dw = FN(talloc)(C), *db = FN(talloc)(C), *dwr = FN(talloc)(C), *dbr = FN(talloc)(C);
  FN(fill)(x, n, -1 + shift, 1 + shift);
  FN(fill)(dy, n, -1, 1);
  FN(fill)(w, C, 0.5, 1.5);
  FN(fill)(b, C, -1, 1);
  FN(fill)(rm0, C, -0.5, 0.5);
  FN(fill)(rv0, C, 0.5, 2);
  const T *wp = affine ? w : NULL, *bp = affine ? b : NULL;
  memcpy(rmr, rm0, (size_t)C * sizeof(T));
  memcpy(rvr, rv0, (size_t)C * sizeof(T));
  FN(nnk_ref_batch_norm_forward)(yr, smr, sir, rmr, rvr, x, wp, bp, training, 0.1, 1e-5, N, C, HW);
  FN(nnk_ref_batch_norm_backward)(dxr, dwr, dbr, dy, x, wp, smr, sir, training, N, C, HW);
  for (int ti = 0; ti < NTHREADS; ti++) {
    char lab[260];
    snprintf(lab, sizeof lab, "%s nt=%d", label, thread_counts[ti]);
    set_threads(thread_counts[ti]);
    memcpy(rm, rm0, (size_t)C * sizeof(T));
    memcpy(rv, rv0, (size_t)C * sizeof(T));
    FN(poison)(y, n);
    FN(poison)(sm, C);
    FN(poison)(si, C);
    FN(nnk_batch_norm_forward)(y, sm, si, rm, rv, x, wp, bp, training, 0.1, 1e-5, N, C, HW);
    FN(check)("batch_norm_forward", lab, y, yr, n);
    FN(check)("batch_norm_forward save_mean", lab, sm, smr, C);
    FN(check)("batch_norm_forward save_invstd", lab, si, sir, C);
    FN(check)("batch_norm_forward running_mean", lab, rm, rmr, C);
    FN(check)("batch_norm_forward running_var", lab, rv, rvr, C);
    FN(poison)(dx, n);
    FN(poison)(dw, C);
    FN(poison)(db, C);
    FN(nnk_batch_norm_backward)(dx, dw, db, dy, x, wp, smr, sir, training, N, C, HW);
    FN(check)("batch_norm_backward dinp", lab, dx, dxr, n);
    FN(check)("batch_norm_backward dweight", lab, dw, dwr, C);
    FN(check)("batch_norm_backward dbias", lab, db, dbr, C);
    /* only dinp requested */
    FN(poison)(dx, n);
    FN(nnk_batch_norm_backward)(dx, NULL, NULL, dy, x, wp, smr, sir, training, N, C, HW);
    FN(check)("batch_norm_backward dinp only", lab, dx, dxr, n);
    /* only the parameter gradients */
    FN(poison)(dw, C);
    FN(nnk_batch_norm_backward)(NULL, dw, NULL, dy, x, wp, smr, sir, training, N, C, HW);
    FN(check)("batch_norm_backward dweight only", lab, dw, dwr, C);
    /* no running stats: batch statistics in either mode */
    T *y2r = FN(talloc)(n), *si2r = FN(talloc)(C);
    FN(nnk_ref_batch_norm_forward)(y2r, NULL, si2r, NULL, NULL, x, wp, bp, training, 0.1, 1e-5, N,
                                   C, HW);
    FN(poison)(y, n);
    FN(nnk_batch_norm_forward)(y, NULL, si, NULL, NULL, x, wp, bp, training, 0.1, 1e-5, N, C, HW);
    FN(check)("batch_norm_forward no running stats", lab, y, y2r, n);
    FN(check)("batch_norm_forward no running stats save_invstd", lab, si, si2r, C);
    free(y2r), free(si2r);
  }
  free(x), free(y), free(yr), free(dy), free(dx), free(dxr), free(w), free(b), free(sm), free(si);
  free(smr), free(sir), free(rm0), free(rv0), free(rm), free(rv), free(rmr), free(rvr), free(dw);
  free(db), free(dwr), free(dbr);
}

/* ---- group_norm ---- */

static void FN(test_group_norm)(int64_t N, int64_t C, int64_t HW, int64_t G, int affine,
                                double shift) {
  char label[160];
  snprintf(label, sizeof label, "N=%lld C=%lld HW=%lld G=%lld affine=%d shift=%g", (long long)N,
           (long long)C, (long long)HW, (long long)G, affine, shift);
  const int64_t n = N * C * HW;
  T *x = FN(talloc)(n), *y = FN(talloc)(n), *yr = FN(talloc)(n), *dy = FN(talloc)(n);
  T *dx = FN(talloc)(n), *dxr = FN(talloc)(n), *w = FN(talloc)(C), *b = FN(talloc)(C);
  T *mu = FN(talloc)(N * G), *rs = FN(talloc)(N * G), *mur = FN(talloc)(N * G);
  T *rsr = FN(talloc)(N * G);
  T *dw = FN(talloc)(C), *db = FN(talloc)(C), *dwr = FN(talloc)(C), *dbr = FN(talloc)(C);
  FN(fill)(x, n, -1 + shift, 1 + shift);
  FN(fill)(dy, n, -1, 1);
  FN(fill)(w, C, 0.5, 1.5);
  FN(fill)(b, C, -1, 1);
  const T *wp = affine ? w : NULL, *bp = affine ? b : NULL;
  FN(nnk_ref_group_norm_forward)(yr, mur, rsr, x, wp, bp, N, C, HW, G, 1e-5);
  FN(nnk_ref_group_norm_backward)(dxr, dwr, dbr, dy, x, wp, mur, rsr, N, C, HW, G);
  for (int ti = 0; ti < NTHREADS; ti++) {
    char lab[260];
    snprintf(lab, sizeof lab, "%s nt=%d", label, thread_counts[ti]);
    set_threads(thread_counts[ti]);
    FN(poison)(y, n);
    FN(poison)(mu, N * G);
    FN(poison)(rs, N * G);
    FN(nnk_group_norm_forward)(y, mu, rs, x, wp, bp, N, C, HW, G, 1e-5);
    FN(check)("group_norm_forward", lab, y, yr, n);
    FN(check)("group_norm_forward mean", lab, mu, mur, N * G);
    FN(check)("group_norm_forward rstd", lab, rs, rsr, N * G);
    for (int mode = 0; mode < 2; mode++) {
      size_t sz = FN(nnk_group_norm_backward_workspace_size)(N, C);
      void *ws = mode ? aligned_alloc(64, (sz + 64) & ~(size_t)63) : NULL;
      FN(poison)(dx, n);
      FN(poison)(dw, C);
      FN(poison)(db, C);
      int rc = FN(nnk_group_norm_backward)(dx, dw, db, dy, x, wp, mur, rsr, N, C, HW, G, ws, sz);
      result(rc == 0, "group_norm_backward rc %s %s", TNAME, lab);
      FN(check)("group_norm_backward dinp", lab, dx, dxr, n);
      FN(check)("group_norm_backward dweight", lab, dw, dwr, C);
      FN(check)("group_norm_backward dbias", lab, db, dbr, C);
      FN(poison)(dx, n);
      rc = FN(nnk_group_norm_backward)(dx, NULL, NULL, dy, x, wp, mur, rsr, N, C, HW, G, ws, sz);
      FN(check)("group_norm_backward dinp only", lab, dx, dxr, n);
      free(ws);
    }
  }
  FN(nnk_ref_group_norm_silu_forward)(yr, mur, rsr, x, wp, bp, N, C, HW, G, 1e-5);
  FN(poison)(y, n);
  FN(nnk_group_norm_silu_forward)(y, mu, rs, x, wp, bp, N, C, HW, G, 1e-5);
  FN(check)("group_norm_silu_forward", label, y, yr, n);
  free(x), free(y), free(yr), free(dy), free(dx), free(dxr), free(w), free(b), free(mu), free(rs);
  free(mur), free(rsr), free(dw), free(db), free(dwr), free(dbr);
}

/* ---- layer_norm ---- */

static void FN(test_layer_norm)(int64_t M, int64_t D, int affine, double shift) {
  char label[160];
  snprintf(label, sizeof label, "M=%lld D=%lld affine=%d shift=%g", (long long)M, (long long)D,
           affine, shift);
  const int64_t n = M * D;
  T *x = FN(talloc)(n), *y = FN(talloc)(n), *yr = FN(talloc)(n), *dy = FN(talloc)(n);
  T *dx = FN(talloc)(n), *dxr = FN(talloc)(n), *w = FN(talloc)(D), *b = FN(talloc)(D);
  T *mu = FN(talloc)(M), *rs = FN(talloc)(M), *mur = FN(talloc)(M), *rsr = FN(talloc)(M);
  T *dw = FN(talloc)(D), *db = FN(talloc)(D), *dwr = FN(talloc)(D), *dbr = FN(talloc)(D);
  FN(fill)(x, n, -1 + shift, 1 + shift);
  FN(fill)(dy, n, -1, 1);
  FN(fill)(w, D, 0.5, 1.5);
  FN(fill)(b, D, -1, 1);
  const T *wp = affine ? w : NULL, *bp = affine ? b : NULL;
  FN(nnk_ref_layer_norm_forward)(yr, mur, rsr, x, wp, bp, M, D, 1e-5);
  FN(nnk_ref_layer_norm_backward)(dxr, dwr, dbr, dy, x, wp, mur, rsr, M, D);
  for (int ti = 0; ti < NTHREADS; ti++) {
    for (int mode = 0; mode < 3; mode++) {
      char lab[260];
      snprintf(lab, sizeof lab, "%s nt=%d ws=%d", label, thread_counts[ti], mode);
      set_threads(mode == 2 ? 1 : thread_counts[ti]);
      size_t sz = FN(nnk_layer_norm_backward_workspace_size)(M, D);
      void *ws = mode ? aligned_alloc(64, (sz + 64) & ~(size_t)63) : NULL;
      set_threads(thread_counts[ti]);
      FN(poison)(y, n);
      FN(poison)(mu, M);
      FN(poison)(rs, M);
      FN(nnk_layer_norm_forward)(y, mu, rs, x, wp, bp, M, D, 1e-5);
      FN(check)("layer_norm_forward", lab, y, yr, n);
      FN(check)("layer_norm_forward mean", lab, mu, mur, M);
      FN(check)("layer_norm_forward rstd", lab, rs, rsr, M);
      FN(poison)(dx, n);
      FN(poison)(dw, D);
      FN(poison)(db, D);
      int rc = FN(nnk_layer_norm_backward)(dx, dw, db, dy, x, wp, mur, rsr, M, D, ws, sz);
      result(rc == 0, "layer_norm_backward rc %s %s", TNAME, lab);
      FN(check)("layer_norm_backward dinp", lab, dx, dxr, n);
      FN(check)("layer_norm_backward dweight", lab, dw, dwr, D);
      FN(check)("layer_norm_backward dbias", lab, db, dbr, D);
      FN(poison)(dx, n);
      rc = FN(nnk_layer_norm_backward)(dx, NULL, NULL, dy, x, wp, mur, rsr, M, D, ws, sz);
      result(rc == 0, "layer_norm_backward rc %s %s", TNAME, lab);
      FN(check)("layer_norm_backward dinp only", lab, dx, dxr, n);
      free(ws);
    }
  }
  free(x), free(y), free(yr), free(dy), free(dx), free(dxr), free(w), free(b), free(mu), free(rs);
  free(mur), free(rsr), free(dw), free(db), free(dwr), free(dbr);
}

/* ---- softmax ---- */

static void FN(test_softmax)(int64_t outer, int64_t dim, int64_t inner, double scale,
                             double shift) {
  char label[160];
  snprintf(label, sizeof label, "outer=%lld dim=%lld inner=%lld scale=%g shift=%g",
           (long long)outer, (long long)dim, (long long)inner, scale, shift);
  const int64_t n = outer * dim * inner;
  T *x = FN(talloc)(n), *y = FN(talloc)(n), *yr = FN(talloc)(n), *dy = FN(talloc)(n);
  T *dx = FN(talloc)(n), *dxr = FN(talloc)(n);
  FN(fill)(x, n, shift - scale, shift + scale);
  FN(fill)(dy, n, -1, 1);
  for (int is_log = 0; is_log < 2; is_log++) {
    const char *name = is_log ? "log_softmax" : "softmax";
    if (is_log) {
      FN(nnk_ref_log_softmax_forward)(yr, x, outer, dim, inner);
      FN(nnk_ref_log_softmax_backward)(dxr, dy, yr, outer, dim, inner);
    } else {
      FN(nnk_ref_softmax_forward)(yr, x, outer, dim, inner);
      FN(nnk_ref_softmax_backward)(dxr, dy, yr, outer, dim, inner);
    }
    for (int ti = 0; ti < NTHREADS; ti++) {
      char lab[260];
      snprintf(lab, sizeof lab, "%s %s nt=%d", name, label, thread_counts[ti]);
      set_threads(thread_counts[ti]);
      FN(poison)(y, n);
      FN(poison)(dx, n);
      if (is_log) {
        FN(nnk_log_softmax_forward)(y, x, outer, dim, inner);
        FN(nnk_log_softmax_backward)(dx, dy, yr, outer, dim, inner);
      } else {
        FN(nnk_softmax_forward)(y, x, outer, dim, inner);
        FN(nnk_softmax_backward)(dx, dy, yr, outer, dim, inner);
      }
      FN(check)("forward", lab, y, yr, n);
      FN(check)("backward", lab, dx, dxr, n);
      /* in place (out == inp, dinp == dout) */
      memcpy(y, x, (size_t)n * sizeof(T));
      memcpy(dx, dy, (size_t)n * sizeof(T));
      if (is_log) {
        FN(nnk_log_softmax_forward)(y, y, outer, dim, inner);
        FN(nnk_log_softmax_backward)(dx, dx, yr, outer, dim, inner);
      } else {
        FN(nnk_softmax_forward)(y, y, outer, dim, inner);
        FN(nnk_softmax_backward)(dx, dx, yr, outer, dim, inner);
      }
      FN(check)("forward in place", lab, y, yr, n);
      FN(check)("backward in place", lab, dx, dxr, n);
    }
  }
  free(x), free(y), free(yr), free(dy), free(dx), free(dxr);
}

static void FN(run_all)(void) {
  /* batch_norm: N C HW affine training shift */
  for (int tr = 0; tr < 2; tr++) {
    FN(test_batch_norm)(4, 3, 25, 1, tr, 0);
    FN(test_batch_norm)(8, 5, 1, 1, tr, 0);  /* 2-D input */
    FN(test_batch_norm)(2, 4, 30, 0, tr, 3);
    FN(test_batch_norm)(16, 32, 64, 1, tr, 0);
    FN(test_batch_norm)(1, 2, 7, 1, tr, 100);
    FN(test_batch_norm)(64, 600, 1, 1, tr, 0);  /* 2-D, several channel blocks */
    FN(test_batch_norm)(3, 257, 1, 0, tr, 20);  /* 2-D, a block plus one channel */
    FN(test_batch_norm)(1, 300, 1, 1, tr, 0);   /* 2-D, one sample */
  }
  /* group_norm: N C HW G affine shift */
  FN(test_group_norm)(2, 6, 10, 3, 1, 0);
  FN(test_group_norm)(1, 8, 1, 8, 1, 0);
  FN(test_group_norm)(3, 4, 7, 1, 0, 2);
  FN(test_group_norm)(2, 64, 256, 32, 1, 0);
  FN(test_group_norm)(1, 6, 9, 2, 1, 50);
  /* layer_norm: M D affine shift */
  FN(test_layer_norm)(5, 7, 1, 0);
  FN(test_layer_norm)(64, 100, 1, 0);
  FN(test_layer_norm)(1, 1000, 0, 0);
  FN(test_layer_norm)(300, 200, 1, 10);
  FN(test_layer_norm)(3, 1, 1, 0);
  /* softmax: outer dim inner scale shift */
  FN(test_softmax)(4, 10, 1, 1, 0);
  FN(test_softmax)(3, 7, 5, 3, 0);
  FN(test_softmax)(2, 5, 130, 3, 0);
  FN(test_softmax)(1, 1000, 1, 10, 1000);
  FN(test_softmax)(50, 300, 3, 5, 0);
  FN(test_softmax)(200, 200, 1, 20, -500);
  FN(test_softmax)(2, 1, 3, 1, 0);
}

#endif
