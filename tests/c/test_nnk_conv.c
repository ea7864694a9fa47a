/* test_nnk_conv.c: compares the fast convolution kernels (conv2d and conv_transpose2d on
 * every path: im2col, 1x1, depthwise, Winograd, polyphase, the fused backward and its keep)
 * to the naive references of src/kernels/nnk_ref.c on many shapes and options, for f32
 * (tolerance 1e-4) and f64 (tolerance 1e-10), with 1, 2 and 3 OpenMP threads and with the
 * workspace passed as NULL, as queried, and sized for one thread; and the f32 error of the
 * Winograd paths at VGG and DCGAN sizes. Errors are relative to max(|ref_i|, max|ref|).
 * Prints one line per failed case and ends with "N passed, M failed"; exit status 1 on
 * failure. make test builds and runs it (make build/test_nnk_conv alone).
 *
 * The file includes itself once for float and once for double (TEST_PASS, nnk_test_tmpl.h). */
#ifndef TEST_PASS
#include "nnk_test.h"

#define TEST_SELF "test_nnk_conv.c"
#include "nnk_test_tmpl.h"

static void test_geometry(void) {
  nnk_conv g;
  nnk_convt t;
  result(nnk_conv_setup(&g, 2, 3, 7, 7, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1) == 0 && g.P == 7 && g.Q == 7,
         "conv geometry 3x3 pad 1");
  result(nnk_conv_setup(&g, 1, 3, 10, 9, 4, 3, 2, 2, 3, 0, 1, 2, 1, 1) == 0 && g.P == 3 && g.Q == 4,
         "conv geometry strided dilated");
  result(nnk_conv_setup(&g, 1, 3, 7, 7, 4, 3, 3, 1, 1, 1, 1, 1, 1, 2) == -1, "conv C %% groups");
  result(nnk_conv_setup(&g, 1, 4, 2, 2, 4, 3, 3, 1, 1, 0, 0, 1, 1, 1) == -1, "conv too small");
  result(nnk_conv_setup(&g, 1, 4, 5, 5, 4, 3, 3, 0, 1, 0, 0, 1, 1, 1) == -1, "conv stride 0");
  result(nnk_convt_setup(&t, 1, 4, 5, 5, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1) == 0 && t.P == 10 &&
             t.Q == 10,
         "convt geometry");
  result(nnk_convt_setup(&t, 1, 4, 5, 5, 3, 3, 3, 2, 2, 1, 1, 2, 0, 1, 1, 1) == -1,
         "convt out_pad >= stride and dilation");
}

/* an empty batch: outputs untouched except dweight, which must be zero */
static void test_empty_batch(void) {
  nnk_conv g;
  float w[4 * 3 * 9], dw[4 * 3 * 9];
  for (int i = 0; i < 4 * 3 * 9; i++) dw[i] = NAN, w[i] = 1;
  int ok = nnk_conv_setup(&g, 0, 3, 5, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1) == 0;
  ok = ok && nnk_conv2d_forward_f32(dw, w, w, NULL, &g, NULL, 0) == 0;
  ok = ok && nnk_conv2d_backward_weight_f32(dw, w, w, &g, NULL, 0) == 0;
  for (int i = 0; i < 4 * 3 * 9; i++) ok = ok && dw[i] == 0;
  result(ok, "conv2d with N = 0");
}

/* Winograd at VGG-like channel counts, where its f32 error is largest (it grows with C):
 * relu-like inputs, Kaiming-scaled weights, against the f64 reference of the same numbers.
 * Measured max error / max |ref|: ~1e-5 (im2col: ~3e-7); the bound is what training needs. */
/* The same for the polyphase F(4x4,2x2) of 4x4 stride-2 convolutions (polyphase.c), at
 * DCGAN's 64 -> 128 channel layer (the last shape) and above. Measured: ~5e-6 (im2col:
 * ~5e-7). */
static void test_wino_accuracy(void) {
  static const int shapes[][6] = {{1, 256, 16, 16, 40, 3}, {1, 512, 8, 8, 24, 3}, {2, 64, 20, 18, 96, 3},
                                  {2, 256, 16, 16, 64, 4}, {8, 64, 14, 14, 128, 4}};
  const int old = nnk_set_winograd(2);
  set_threads(2);
  for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
    const int *v = shapes[si];
    nnk_conv g;
    if (v[5] == 3) nnk_conv_setup(&g, v[0], v[1], v[2], v[3], v[4], 3, 3, 1, 1, 1, 1, 1, 1, 1);
    else nnk_conv_setup(&g, v[0], v[1], v[2], v[3], v[4], 4, 4, 2, 2, 1, 1, 1, 1, 1);
    const int64_t ni = (int64_t)g.N * g.C * g.H * g.W, nw = (int64_t)g.K * g.C * g.R * g.S;
    const int64_t no = (int64_t)g.N * g.K * g.P * g.Q;
    float *x = xmalloc((size_t)ni * 4), *w = xmalloc((size_t)nw * 4), *dy = xmalloc((size_t)no * 4);
    float *y = xmalloc((size_t)no * 4), *dx = xmalloc((size_t)ni * 4), *dw = xmalloc((size_t)nw * 4);
    double *xd = xmalloc((size_t)ni * 8), *wd = xmalloc((size_t)nw * 8), *dyd = xmalloc((size_t)no * 8);
    double *yd = xmalloc((size_t)no * 8), *dxd = xmalloc((size_t)ni * 8), *dwd = xmalloc((size_t)nw * 8);
    for (int64_t i = 0; i < ni; i++) xd[i] = x[i] = (float)fmax(0, urand() * 2 - 1);
    for (int64_t i = 0; i < nw; i++) wd[i] = w[i] = (float)((urand() * 2 - 1) * sqrt(6.0 / (g.R * g.S * g.C)));
    for (int64_t i = 0; i < no; i++) dyd[i] = dy[i] = (float)(urand() * 2 - 1);
    nnk_ref_conv2d_forward_f64(yd, xd, wd, NULL, &g);
    nnk_ref_conv2d_backward_input_f64(dxd, dyd, wd, &g);
    nnk_ref_conv2d_backward_weight_f64(dwd, xd, dyd, &g);
    char label[80];
    snprintf(label, sizeof label, "N=%d C=%d H=%d W=%d K=%d %dx%d", g.N, g.C, g.H, g.W, g.K, g.R, g.S);
    const int rc = nnk_conv2d_forward_f32(y, x, w, NULL, &g, NULL, 0) |
                   nnk_conv2d_backward_input_f32(dx, dy, w, &g, NULL, 0) |
                   nnk_conv2d_backward_weight_f32(dw, x, dy, &g, NULL, 0);
    double e[3] = {0, 0, 0}, m[3] = {0, 0, 0};
    const float *got[3] = {y, dx, dw};
    const double *ref[3] = {yd, dxd, dwd};
    const int64_t n[3] = {no, ni, nw};
    for (int k = 0; k < 3; k++)
      for (int64_t i = 0; i < n[k]; i++) {
        e[k] = fmax(e[k], fabs(got[k][i] - ref[k][i]));
        m[k] = fmax(m[k], fabs(ref[k][i]));
      }
    result(rc == 0 && e[0] <= 1e-4 * m[0] && e[1] <= 1e-4 * m[1] && e[2] <= 1e-4 * m[2],
           "winograd accuracy %s: rc %d, max err / max |ref| %.2g %.2g %.2g", label, rc,
           e[0] / m[0], e[1] / m[1], e[2] / m[2]);
    free(x), free(w), free(dy), free(y), free(dx), free(dw);
    free(xd), free(wd), free(dyd), free(yd), free(dxd), free(dwd);
  }
  nnk_set_winograd(old);
}

int main(void) {
  test_empty_batch();
  test_wino_accuracy();
  test_geometry();
  run_all_f32();
  run_all_f64();
  return test_report();
}

#else /* ---- generic tests, T / FN / TNAME / TOL defined ---- */

/* ---- workspace modes: 0 NULL, 1 as queried, 2 sized for one thread ---- */
typedef size_t (*FN(conv_query))(const nnk_conv *);

/* conv2d's fused backward (all three gradients, and each alone) against the references, then
 * with the keep of a forward: that backward must not need x or w (given as NaN copies), and a
 * keep whose head was cleared must be ignored */
static void FN(test_conv_fused)(const char *lab, const nnk_conv *g, const T *x, const T *w, const T *b,
                                const T *dy, const T *yr, const T *dxr, const T *dwr, const T *dbr, void *wsf,
                                size_t szf, void *wsb, size_t szb) {
  const int64_t ni = (int64_t)g->N * g->C * g->H * g->W, nw = (int64_t)g->K * (g->C / g->groups) * g->R * g->S;
  const int64_t no = (int64_t)g->N * g->K * g->P * g->Q;
  T *dx = FN(talloc)(ni), *dw = FN(talloc)(nw), *y = FN(talloc)(no), *xn = FN(talloc)(ni), *wn = FN(talloc)(nw);
  T *db = FN(talloc)(g->K);
  for (int part = 0; part < 4; part++) { /* all, dinp alone, dweight alone, dbias alone */
    FN(poison)(dx, ni), FN(poison)(dw, nw), FN(poison)(db, g->K);
    const int wx = part == 0 || part == 1, ww = part == 0 || part == 2, wb = part == 0 || part == 3;
    int rc = FN(nnk_conv2d_backward)(wx ? dx : NULL, ww ? dw : NULL, wb ? db : NULL, x, dy, w, NULL, g, wsb, szb);
    result(rc == 0, "conv2d_backward rc part=%d %s %s", part, TNAME, lab);
    if (wx) FN(check)("conv2d_backward dinp", lab, dx, dxr, ni);
    if (ww) FN(check)("conv2d_backward dweight", lab, dw, dwr, nw);
    if (wb) FN(check)("conv2d_backward dbias", lab, db, dbr, g->K);
  }
  const size_t kb = FN(nnk_conv2d_keep_bytes)(g);
  if (kb) {
    unsigned char *keep = xmalloc(kb);
    FN(poison)(y, no);
    result(FN(nnk_conv2d_forward_keep)(y, x, w, b, keep, g, wsf, szf) == 0, "conv2d_forward_keep rc %s %s", TNAME, lab);
    FN(check)("conv2d_forward_keep", lab, y, yr, no);
    FN(poison)(xn, ni), FN(poison)(wn, nw), FN(poison)(dx, ni), FN(poison)(dw, nw), FN(poison)(db, g->K);
    int rc = FN(nnk_conv2d_backward)(dx, dw, db, xn, dy, wn, keep, g, wsb, szb);
    result(rc == 0, "conv2d_backward with keep rc %s %s", TNAME, lab);
    FN(check)("conv2d_backward dinp with keep", lab, dx, dxr, ni);
    FN(check)("conv2d_backward dweight with keep", lab, dw, dwr, nw);
    FN(check)("conv2d_backward dbias with keep", lab, db, dbr, g->K);
    memset(keep, 0, 64);
    FN(poison)(dx, ni), FN(poison)(dw, nw);
    rc = FN(nnk_conv2d_backward)(dx, dw, NULL, x, dy, w, keep, g, wsb, szb);
    result(rc == 0, "conv2d_backward stale keep rc %s %s", TNAME, lab);
    FN(check)("conv2d_backward dweight, keep ignored", lab, dw, dwr, nw);
    free(keep);
  }
  free(dx), free(dw), free(y), free(xn), free(wn), free(db);
}

/* ---- conv2d ---- */

static void FN(test_conv)(int N, int C, int H, int W, int K, int R, int S, int sh, int sw, int ph,
                          int pw, int dh, int dw, int groups) {
  nnk_conv g;
  char label[200];
  snprintf(label, sizeof label, "N=%d C=%d H=%d W=%d K=%d R=%d S=%d s=%d,%d p=%d,%d d=%d,%d g=%d",
           N, C, H, W, K, R, S, sh, sw, ph, pw, dh, dw, groups);
  if (nnk_conv_setup(&g, N, C, H, W, K, R, S, sh, sw, ph, pw, dh, dw, groups)) {
    result(0, "conv setup %s", label);
    return;
  }
  const int64_t ni = (int64_t)N * C * H * W, nw = (int64_t)K * (C / groups) * R * S;
  const int64_t no = (int64_t)N * K * g.P * g.Q;
  T *x = FN(talloc)(ni), *w = FN(talloc)(nw), *b = FN(talloc)(K), *dy = FN(talloc)(no);
  T *y = FN(talloc)(no), *yr = FN(talloc)(no), *yr0 = FN(talloc)(no);
  T *dx = FN(talloc)(ni), *dxr = FN(talloc)(ni), *dw_ = FN(talloc)(nw), *dwr = FN(talloc)(nw);
  T *db = FN(talloc)(K), *dbr = FN(talloc)(K);
  FN(fill)(x, ni, -1, 1);
  FN(fill)(w, nw, -1, 1);
  FN(fill)(b, K, -1, 1);
  FN(fill)(dy, no, -1, 1);
  FN(nnk_ref_conv2d_forward)(yr, x, w, b, &g);
  FN(nnk_ref_conv2d_forward)(yr0, x, w, NULL, &g);
  FN(nnk_ref_conv2d_backward_input)(dxr, dy, w, &g);
  FN(nnk_ref_conv2d_backward_weight)(dwr, x, dy, &g);
  FN(nnk_ref_bias_backward)(dbr, dy, N, K, (int64_t)g.P * g.Q);
  for (int ti = 0; ti < NTHREADS; ti++) {
    for (int mode = 0; mode < 3; mode++) {
      char lab[300];
      snprintf(lab, sizeof lab, "%s nt=%d ws=%d", label, thread_counts[ti], mode);
      FN(conv_query) queries[4] = {FN(nnk_conv2d_forward_workspace_size),
                                   FN(nnk_conv2d_backward_input_workspace_size),
                                   FN(nnk_conv2d_backward_weight_workspace_size),
                                   FN(nnk_conv2d_backward_workspace_size)};
      size_t sz[4];
      void *ws[4];
      set_threads(mode == 2 ? 1 : thread_counts[ti]);
      for (int k = 0; k < 4; k++) {
        sz[k] = queries[k](&g);
        ws[k] = mode == 0 ? NULL : aligned_alloc(64, (sz[k] + 64) & ~(size_t)63);
      }
      set_threads(thread_counts[ti]);
      FN(poison)(y, no);
      int rc = FN(nnk_conv2d_forward)(y, x, w, mode == 1 && ti == 0 ? NULL : b, &g, ws[0], sz[0]);
      result(rc == 0, "conv2d_forward rc %s", lab);
      FN(check)("conv2d_forward", lab, y, mode == 1 && ti == 0 ? yr0 : yr, no);
      FN(poison)(dx, ni);
      rc = FN(nnk_conv2d_backward_input)(dx, dy, w, &g, ws[1], sz[1]);
      result(rc == 0, "conv2d_backward_input rc %s", lab);
      FN(check)("conv2d_backward_input", lab, dx, dxr, ni);
      FN(poison)(dw_, nw);
      rc = FN(nnk_conv2d_backward_weight)(dw_, x, dy, &g, ws[2], sz[2]);
      result(rc == 0, "conv2d_backward_weight rc %s", lab);
      FN(check)("conv2d_backward_weight", lab, dw_, dwr, nw);
      FN(poison)(db, K);
      FN(nnk_bias_backward)(db, dy, N, K, (int64_t)g.P * g.Q);
      FN(check)("bias_backward", lab, db, dbr, K);
      FN(test_conv_fused)(lab, &g, x, w, b, dy, yr, dxr, dwr, dbr, ws[0], sz[0], ws[3], sz[3]);
      for (int k = 0; k < 4; k++) free(ws[k]);
    }
  }
  /* a workspace too small for even one thread must be refused */
  set_threads(1);
  size_t s1 = FN(nnk_conv2d_forward_workspace_size)(&g);
  if (s1 > 0) {
    void *small = aligned_alloc(64, 64);
    result(FN(nnk_conv2d_forward)(y, x, w, b, &g, small, s1 - 1) == -1,
           "conv2d_forward small ws refused %s %s", TNAME, label);
    free(small);
  }
  free(x), free(w), free(b), free(dy), free(y), free(yr), free(yr0), free(dx), free(dxr);
  free(dw_), free(dwr), free(db), free(dbr);
}

/* ---- conv_transpose2d ---- */

typedef size_t (*FN(convt_query))(const nnk_convt *);

static void FN(test_convt)(int N, int C, int H, int W, int K, int R, int S, int sh, int sw,
                           int ph, int pw, int oph, int opw, int dh, int dw, int groups) {
  nnk_convt g;
  char label[200];
  snprintf(label, sizeof label,
           "N=%d C=%d H=%d W=%d K=%d R=%d S=%d s=%d,%d p=%d,%d op=%d,%d d=%d,%d g=%d", N, C, H,
           W, K, R, S, sh, sw, ph, pw, oph, opw, dh, dw, groups);
  if (nnk_convt_setup(&g, N, C, H, W, K, R, S, sh, sw, ph, pw, oph, opw, dh, dw, groups)) {
    result(0, "convt setup %s", label);
    return;
  }
  const int64_t ni = (int64_t)N * C * H * W, nw = (int64_t)C * (K / groups) * R * S;
  const int64_t no = (int64_t)N * K * g.P * g.Q;
  T *x = FN(talloc)(ni), *w = FN(talloc)(nw), *b = FN(talloc)(K), *dy = FN(talloc)(no);
  T *y = FN(talloc)(no), *yr = FN(talloc)(no);
  T *dx = FN(talloc)(ni), *dxr = FN(talloc)(ni), *dw_ = FN(talloc)(nw), *dwr = FN(talloc)(nw);
  T *db = FN(talloc)(K), *dbr = FN(talloc)(K);
  FN(fill)(x, ni, -1, 1);
  FN(fill)(w, nw, -1, 1);
  FN(fill)(b, K, -1, 1);
  FN(fill)(dy, no, -1, 1);
  FN(nnk_ref_bias_backward)(dbr, dy, N, K, (int64_t)g.P * g.Q);
  FN(nnk_ref_conv_transpose2d_forward)(yr, x, w, b, &g);
  FN(nnk_ref_conv_transpose2d_backward_input)(dxr, dy, w, &g);
  FN(nnk_ref_conv_transpose2d_backward_weight)(dwr, x, dy, &g);
  for (int ti = 0; ti < NTHREADS; ti++) {
    for (int mode = 0; mode < 3; mode++) {
      char lab[300];
      snprintf(lab, sizeof lab, "%s nt=%d ws=%d", label, thread_counts[ti], mode);
      FN(convt_query) queries[4] = {FN(nnk_conv_transpose2d_forward_workspace_size),
                                    FN(nnk_conv_transpose2d_backward_input_workspace_size),
                                    FN(nnk_conv_transpose2d_backward_weight_workspace_size),
                                    FN(nnk_conv_transpose2d_backward_workspace_size)};
      size_t sz[4];
      void *ws[4];
      set_threads(mode == 2 ? 1 : thread_counts[ti]);
      for (int k = 0; k < 4; k++) {
        sz[k] = queries[k](&g);
        ws[k] = mode == 0 ? NULL : aligned_alloc(64, (sz[k] + 64) & ~(size_t)63);
      }
      set_threads(thread_counts[ti]);
      FN(poison)(y, no);
      int rc = FN(nnk_conv_transpose2d_forward)(y, x, w, b, &g, ws[0], sz[0]);
      result(rc == 0, "conv_transpose2d_forward rc %s", lab);
      FN(check)("conv_transpose2d_forward", lab, y, yr, no);
      FN(poison)(dx, ni);
      rc = FN(nnk_conv_transpose2d_backward_input)(dx, dy, w, &g, ws[1], sz[1]);
      result(rc == 0, "conv_transpose2d_backward_input rc %s", lab);
      FN(check)("conv_transpose2d_backward_input", lab, dx, dxr, ni);
      FN(poison)(dw_, nw);
      rc = FN(nnk_conv_transpose2d_backward_weight)(dw_, x, dy, &g, ws[2], sz[2]);
      result(rc == 0, "conv_transpose2d_backward_weight rc %s", lab);
      FN(check)("conv_transpose2d_backward_weight", lab, dw_, dwr, nw);
      for (int part = 0; part < 4; part++) { /* fused: all, dinp alone, dweight alone, dbias alone */
        FN(poison)(dx, ni), FN(poison)(dw_, nw), FN(poison)(db, K);
        const int wx = part == 0 || part == 1, ww = part == 0 || part == 2, wb = part == 0 || part == 3;
        rc = FN(nnk_conv_transpose2d_backward)(wx ? dx : NULL, ww ? dw_ : NULL, wb ? db : NULL, x, dy, w, NULL, &g,
                                               ws[3], sz[3]);
        result(rc == 0, "conv_transpose2d_backward rc part=%d %s", part, lab);
        if (wx) FN(check)("conv_transpose2d_backward dinp", lab, dx, dxr, ni);
        if (ww) FN(check)("conv_transpose2d_backward dweight", lab, dw_, dwr, nw);
        if (wb) FN(check)("conv_transpose2d_backward dbias", lab, db, dbr, K);
      }
      const size_t kb = FN(nnk_conv_transpose2d_keep_bytes)(&g);
      if (kb) { /* with the forward's keep, the backward needs neither x nor w */
        unsigned char *keep = xmalloc(kb);
        FN(poison)(y, no);
        rc = FN(nnk_conv_transpose2d_forward_keep)(y, x, w, b, keep, &g, ws[0], sz[0]);
        result(rc == 0, "conv_transpose2d_forward_keep rc %s", lab);
        FN(check)("conv_transpose2d_forward_keep", lab, y, yr, no);
        T *xn = FN(talloc)(ni), *wn = FN(talloc)(nw);
        FN(poison)(xn, ni), FN(poison)(wn, nw), FN(poison)(dx, ni), FN(poison)(dw_, nw), FN(poison)(db, K);
        rc = FN(nnk_conv_transpose2d_backward)(dx, dw_, db, xn, dy, wn, keep, &g, ws[3], sz[3]);
        result(rc == 0, "conv_transpose2d_backward with keep rc %s", lab);
        FN(check)("conv_transpose2d_backward dinp with keep", lab, dx, dxr, ni);
        FN(check)("conv_transpose2d_backward dweight with keep", lab, dw_, dwr, nw);
        FN(check)("conv_transpose2d_backward dbias with keep", lab, db, dbr, K);
        free(xn), free(wn), free(keep);
      }
      for (int k = 0; k < 4; k++) free(ws[k]);
    }
  }
  free(x), free(w), free(b), free(dy), free(y), free(yr), free(dx), free(dxr), free(dw_);
  free(dwr), free(db), free(dbr);
}

/* Winograd F(4x4,3x3) (f32 3x3 stride-1 convolutions, forward and so the flipped backward
 * input) forced on wherever it applies, over edge tiles (sizes not multiples of 4, narrower
 * than a tile), pads 0..2, blocks of output channels that are not multiples of the kernel's 6
 * rows, tile blocks spread over images, the K split (one image, few tiles) and bias or not.
 * Its error grows with C; these sizes stay within TOL (the VGG-sized check is in the notes of
 * src/kernels/winograd.c). */
static void FN(test_wino)(void) {
  const int old = nnk_set_winograd(2);
  static const int shapes[][6] = {
      /* N C H W K pad */
      {1, 1, 1, 1, 1, 1},    {2, 3, 7, 7, 4, 1},    {1, 5, 4, 4, 7, 0},   {3, 2, 5, 9, 5, 1},
      {2, 6, 13, 11, 13, 2}, {1, 17, 8, 8, 19, 1},  {4, 9, 6, 5, 6, 0},   {5, 16, 7, 7, 16, 1},
      {1, 32, 34, 33, 20, 1}, {2, 20, 14, 14, 40, 1}, {1, 40, 9, 10, 37, 1}, {9, 4, 3, 3, 3, 2},
      {1, 64, 16, 16, 64, 1}, {16, 8, 7, 7, 12, 1}, {1, 3, 2, 30, 5, 2},  {2, 12, 30, 2, 9, 1},
  };
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    const int *v = shapes[i];
    FN(test_conv)(v[0], v[1], v[2], v[3], v[4], 3, 3, 1, 1, v[5], v[5], 1, 1, 1);
  }
  /* transposed stride-1 3x3 convolutions run it too (their input gradient is a conv2d) */
  FN(test_convt)(2, 7, 6, 9, 5, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1);
  FN(test_convt)(1, 16, 11, 11, 24, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1);
  nnk_set_winograd(0); /* and the im2col path on a shape that would use Winograd */
  FN(test_conv)(1, 32, 20, 20, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1);
  nnk_set_winograd(old);
}

/* Polyphase Winograd F(4x4,2x2) (f32 4x4 stride-2 pad-1 convolutions, polyphase.c) forced on
 * wherever it applies: planes whose outputs are not multiples of the 4x4 tile, odd sizes,
 * one image and many (several blocks of images; lanes that cross tile positions), few and
 * many channels; and the transposed convolutions of that shape (DCGAN's generator). */
static void FN(test_poly)(void) {
  const int old = nnk_set_winograd(2);
  static const int shapes[][5] = {
      /* N C H W K */
      {1, 1, 2, 2, 1},  {2, 3, 7, 7, 4},   {3, 5, 8, 8, 6},  {2, 16, 14, 14, 32}, {1, 4, 9, 13, 5},
      {5, 8, 6, 10, 3}, {20, 2, 4, 4, 3},  {70, 3, 16, 16, 5}, {17, 6, 11, 5, 7},
  };
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    const int *v = shapes[i];
    FN(test_conv)(v[0], v[1], v[2], v[3], v[4], 4, 4, 2, 2, 1, 1, 1, 1, 1);
  }
  FN(test_convt)(2, 6, 7, 7, 5, 4, 4, 2, 2, 1, 1, 0, 0, 1, 1, 1);
  FN(test_convt)(3, 16, 4, 5, 8, 4, 4, 2, 2, 1, 1, 0, 0, 1, 1, 1);
  nnk_set_winograd(old);
}

static void FN(run_all)(void) {
  /* conv2d: N C H W K R S sh sw ph pw dh dw groups */
  FN(test_conv)(2, 3, 7, 7, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1);
  FN(test_conv)(1, 4, 9, 8, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1);
  FN(test_conv)(3, 4, 10, 11, 6, 3, 2, 2, 1, 0, 2, 2, 1, 2);
  FN(test_conv)(2, 8, 6, 6, 8, 1, 1, 1, 1, 0, 0, 1, 1, 1);     /* 1x1 direct */
  FN(test_conv)(1, 8, 20, 20, 12, 1, 1, 1, 1, 0, 0, 1, 1, 4);  /* 1x1 direct, groups, N=1 */
  FN(test_conv)(5, 6, 9, 9, 4, 1, 1, 1, 1, 0, 0, 1, 1, 2);     /* 1x1 direct, odd N */
  FN(test_conv)(4, 32, 16, 16, 24, 1, 1, 1, 1, 0, 0, 1, 1, 1); /* 1x1 direct, threaded */
  FN(test_conv)(1, 32, 24, 20, 16, 1, 1, 1, 1, 0, 0, 1, 1, 1); /* 1x1 direct, N=1 threaded */
  FN(test_conv)(1, 8, 6, 6, 4, 1, 1, 2, 2, 0, 0, 1, 1, 2);     /* 1x1 strided */
  FN(test_conv)(2, 4, 5, 5, 4, 1, 1, 1, 1, 1, 1, 1, 1, 1);     /* 1x1 padded */
  FN(test_conv)(2, 6, 13, 13, 6, 3, 3, 1, 1, 1, 1, 1, 1, 6);   /* depthwise */
  FN(test_conv)(2, 4, 11, 9, 8, 3, 5, 2, 1, 1, 2, 2, 1, 4);    /* depthwise x2, strided */
  FN(test_conv)(2, 4, 9, 9, 4, 3, 3, 2, 2, 0, 0, 1, 1, 4);     /* depthwise strided */
  FN(test_conv)(2, 16, 20, 20, 16, 7, 7, 1, 1, 3, 3, 1, 1, 16); /* depthwise 7x7 */
  FN(test_conv)(2, 5, 6, 6, 5, 1, 1, 1, 1, 0, 0, 1, 1, 5);     /* depthwise 1x1 */
  FN(test_conv)(3, 7, 15, 13, 7, 3, 3, 1, 1, 1, 1, 1, 1, 7);   /* depthwise 3x3 same */
  FN(test_conv)(2, 4, 12, 11, 4, 3, 3, 1, 1, 2, 0, 2, 2, 4);   /* depthwise 3x3 dilated */
  FN(test_conv)(2, 3, 4, 9, 3, 3, 3, 1, 1, 0, 2, 1, 1, 3);     /* depthwise 3x3, pad > */
  FN(test_conv)(1, 3, 5, 2, 3, 3, 3, 1, 1, 1, 1, 1, 1, 3);     /* depthwise, narrow */
  FN(test_conv)(1, 3, 8, 8, 24, 3, 3, 1, 1, 1, 1, 1, 1, 3);    /* groups = C, 8 per group */
  FN(test_conv)(1, 3, 40, 40, 8, 5, 5, 1, 1, 2, 2, 1, 1, 1);   /* N=1, larger plane */
  FN(test_conv)(1, 32, 64, 64, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1);  /* several row blocks */
  FN(test_conv)(3, 32, 40, 40, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1);  /* row blocks, odd N */
  FN(test_conv)(1, 2, 9, 9, 3, 2, 2, 3, 3, 0, 0, 1, 1, 1);     /* stride > kernel */
  FN(test_conv)(1, 2, 5, 5, 3, 3, 3, 1, 1, 3, 3, 1, 1, 1);     /* pad > kernel */
  FN(test_conv)(2, 3, 12, 10, 4, 3, 3, 2, 3, 2, 1, 2, 3, 1);   /* dilation and stride */
  FN(test_conv)(2, 3, 5, 5, 4, 5, 5, 1, 1, 0, 0, 1, 1, 1);     /* kernel = input */
  FN(test_conv)(4, 16, 14, 14, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1); /* typical */
  FN(test_conv)(2, 8, 12, 12, 4, 3, 3, 1, 1, 2, 1, 2, 1, 1);   /* flipped bwd_input, dilated */
  FN(test_conv)(2, 8, 10, 10, 4, 3, 3, 1, 1, 1, 1, 1, 1, 2);   /* flipped bwd_input, groups */
  FN(test_conv)(1, 6, 7, 12, 2, 2, 4, 1, 1, 1, 2, 1, 1, 1);    /* flipped, even kernel */
  FN(test_conv)(7, 3, 17, 15, 5, 7, 7, 2, 2, 3, 3, 1, 1, 1);   /* stem-like */
  FN(test_wino)();
  FN(test_poly)();
  /* conv_transpose2d: N C H W K R S sh sw ph pw oph opw dh dw groups */
  FN(test_convt)(2, 4, 5, 5, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1);
  FN(test_convt)(1, 6, 7, 6, 4, 4, 4, 2, 2, 1, 1, 0, 0, 1, 1, 2);
  FN(test_convt)(2, 3, 4, 5, 6, 3, 2, 1, 1, 0, 1, 0, 0, 1, 1, 1);
  FN(test_convt)(1, 4, 6, 6, 4, 3, 3, 3, 2, 1, 0, 2, 1, 2, 1, 1);
  FN(test_convt)(1, 2, 5, 5, 3, 3, 3, 1, 1, 1, 1, 1, 1, 2, 2, 1); /* out_pad >= stride */
  FN(test_convt)(1, 16, 32, 32, 8, 4, 4, 2, 2, 1, 1, 0, 0, 1, 1, 1);
  FN(test_convt)(3, 8, 8, 8, 8, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1);  /* 1x1 */
  FN(test_convt)(2, 4, 3, 3, 6, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, 2);  /* k = stride */
  FN(test_convt)(1, 4, 5, 5, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 4);  /* depthwise */
  FN(test_convt)(5, 24, 7, 7, 12, 4, 4, 2, 2, 1, 1, 0, 0, 1, 1, 1); /* DCGAN-like, batched */
  FN(test_convt)(4, 32, 5, 5, 32, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 2); /* batched, groups */
  FN(test_convt)(3, 16, 4, 4, 16, 3, 3, 1, 1, 1, 1, 0, 0, 2, 2, 1); /* dilated */
  /* units of several samples (output plane <= 128, C/groups*R*S >= 64), N not a multiple of
   * the block */
  FN(test_conv)(5, 16, 7, 7, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1);     /* 3x3 same, 7x7 */
  FN(test_conv)(3, 32, 6, 6, 16, 3, 3, 1, 1, 1, 1, 1, 1, 2);    /* groups */
  FN(test_conv)(7, 16, 14, 14, 24, 4, 4, 2, 2, 1, 1, 1, 1, 1);  /* DCGAN-like k4 s2 */
  FN(test_conv)(4, 8, 9, 9, 6, 3, 3, 1, 1, 2, 2, 2, 2, 1);      /* dilated */
  FN(test_conv)(3, 8, 9, 11, 5, 3, 3, 2, 2, 1, 1, 1, 1, 1);     /* s2, phases of two widths */
  FN(test_conv)(40, 8, 5, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1);     /* several blocks */
  FN(test_conv)(2, 8, 2, 7, 8, 3, 3, 3, 2, 1, 1, 1, 1, 1);      /* an empty stride phase */
  FN(test_conv)(2, 8, 2, 2, 8, 5, 5, 1, 1, 2, 2, 1, 1, 1);      /* taps wholly outside */
  FN(test_conv)(3, 12, 8, 8, 10, 2, 3, 2, 1, 0, 1, 1, 1, 1);    /* stride 2 x 1, pad 0 x 1 */
  FN(test_conv)(2, 24, 9, 9, 6, 3, 3, 1, 1, 0, 0, 1, 1, 3);     /* valid conv, groups 3 */
  FN(test_conv)(1, 32, 64, 64, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1);   /* strided, row blocks */
  FN(test_conv)(6, 64, 7, 7, 32, 1, 1, 1, 1, 0, 0, 1, 1, 1);    /* 1x1 small plane */
}

#endif
