/* nnk_internal.h: what the kernel files of src/kernels share (not a public header): the
 * OpenMP, SIMD and CPU-clone macros, small integer helpers, and the entry points by which the
 * convolutions reach the depthwise, Winograd and polyphase paths in their own files. How a
 * file is compiled once for float and once for double is in nnk_tmpl.h. */
#ifndef NNK_INTERNAL_H
#define NNK_INTERNAL_H

#include "nnk.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#else
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_thread_num(void) { return 0; }
static inline int omp_get_num_threads(void) { return 1; }
#endif

#define NNK_PRAGMA(x) _Pragma(#x)
#ifdef _OPENMP
#define NNK_OMP(x) NNK_PRAGMA(omp x)
#define NNK_SIMD NNK_PRAGMA(omp simd)
#define NNK_SIMD_RED(...) NNK_PRAGMA(omp simd reduction(__VA_ARGS__))
#else
#define NNK_OMP(x)
#define NNK_SIMD
#define NNK_SIMD_RED(...)
#endif

/* hot direct loops get AVX2+FMA / AVX-512 clones picked at load time. GCC gives a clone's
 * symbol default visibility whatever it is declared with, so clones stay static to their file
 * (other files call a plain function there) */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(NNK_NO_CLONES)
#define NNK_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define NNK_CLONES
#endif

/* helpers of NNK_CLONES functions must be inlined to be compiled for each clone's target */
#if defined(__GNUC__)
#define NNK_INLINE static inline __attribute__((always_inline))
#else
#define NNK_INLINE static inline
#endif

/* functions one kernel file calls in another: kept out of aiart.so's exported symbols, and
 * so not interposable (calls inside their own file may be inlined) */
#if defined(__GNUC__)
#define NNK_HIDDEN __attribute__((visibility("hidden")))
#else
#define NNK_HIDDEN
#endif

/* below this many elements of work a kernel runs on one thread */
#define NNK_PAR_MIN 32768

/* the largest plane (elements) and gemm dimension: they are passed to BLAS as int */
#define NNK_BIG ((int64_t)INT32_MAX)

static inline int64_t imin64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t imax64(int64_t a, int64_t b) { return a > b ? a : b; }
static inline int64_t ceil_div64(int64_t a, int64_t b) { return (a + b - 1) / b; }
/* floor division for any sign of a (b > 0) */
static inline int64_t floor_div64(int64_t a, int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}
static inline size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }

static inline int max_threads(void) {
  int nt = omp_get_max_threads();
  return nt < 1 ? 1 : nt;
}

/* a workspace a kernel allocates itself (ws == NULL): 64-byte aligned, as callers' must be */
static inline void *ws_alloc(size_t n) {
  if (n == 0) return NULL;
  return aligned_alloc(64, round64(n));
}

/* ---- convolution geometry shared by the convolution files -------------------------------- */

/* Checks a conv struct (P, Q may be smaller than the natural output size: the transposed
 * convolution uses that when out_pad >= stride). Also checks that the gemm sizes fit int.
 * (conv.c) */
NNK_HIDDEN int nnk_conv_check(const nnk_conv *g);

/* depthwise (one input channel per group, at most 4 outputs per group, kernel width <= 32):
 * direct loops instead of a gemm per group, whose inner dimension would be only R*S */
static inline int conv_is_depthwise(const nnk_conv *g) {
  return g->C == g->groups && g->K / g->groups <= 4 && g->S <= 32;
}

/* valid output columns [*qlo, *qhi) for kernel column s: 0 <= q*stride_w + s*dil_w - pad_w < W */
static inline void conv_qrange(const nnk_conv *g, int64_t s, int64_t *qlo, int64_t *qhi) {
  int64_t off = s * g->dil_w - g->pad_w, lo = 0, hi;
  if (off < 0) lo = ceil_div64(-off, g->stride_w);
  hi = (g->W - 1 - off) >= 0 ? (g->W - 1 - off) / g->stride_w + 1 : 0;
  lo = imin64(lo, g->Q);
  hi = imin64(hi, g->Q);
  if (hi < lo) hi = lo;
  *qlo = lo;
  *qhi = hi;
}

/* ---- the paths of conv2d other than im2col, called from conv.c and conv_transpose.c ------
 * Each "returns 1 when the path does not apply" (the caller goes on with im2col), else 0 or
 * -1 as the public kernels. Winograd and polyphase are f32 only; their f64 names (below)
 * say "does not apply", so that the type-generic callers read alike for both types. */

/* winograd.c: the mode of nnk_set_winograd (which polyphase.c obeys too), whether forward /
 * backward_weight of g with elements of esize bytes run Winograd, and its workspace */
NNK_HIDDEN int nnk_wino_mode(void);
NNK_HIDDEN int nnk_wino_use(const nnk_conv *g, size_t esize);
NNK_HIDDEN int nnk_wino_use_bww(const nnk_conv *g, size_t esize);
NNK_HIDDEN size_t nnk_wino_ws_query(const nnk_conv *g, int bww);
NNK_HIDDEN int nnk_wino_forward_f32(float *out, const float *inp, const float *weight,
                                    const float *bias, const nnk_conv *g, void *ws,
                                    size_t ws_bytes);
NNK_HIDDEN int nnk_wino_backward_weight_f32(float *dweight, const float *inp, const float *dout,
                                            const nnk_conv *g, void *ws, size_t ws_bytes);

/* polyphase.c: whether g runs the polyphase path, the workspace of a job asking for out, dinp
 * and dweight (each 0 or 1), the keep of a forward (keep_v: a conv2d forward's, else a
 * transposed one's; 0: it keeps nothing), and the entry points (nnk.h's conv2d and
 * conv_transpose2d kernels, with their keep) */
NNK_HIDDEN int nnk_poly_use(const nnk_conv *g, size_t esize);
NNK_HIDDEN size_t nnk_poly_ws_query(const nnk_conv *g, int out, int dinp, int dweight);
NNK_HIDDEN size_t nnk_poly_keep_bytes_f32(const nnk_conv *g, int keep_v);
/* the forwards clear the keep's head first, so that a keep they do not fill (another path
 * ran) is never read as filled */
NNK_HIDDEN void nnk_poly_keep_clear_f32(void *keep);
NNK_HIDDEN int nnk_poly_forward_f32(float *out, const float *inp, const float *weight,
                                    const float *bias, void *keep, const nnk_conv *g, void *ws,
                                    size_t ws_bytes);
/* bias: a transposed convolution's (this is its forward) */
NNK_HIDDEN int nnk_poly_backward_input_f32(float *dinp, const float *dout, const float *weight,
                                           const float *bias, void *keep, const nnk_conv *g,
                                           void *ws, size_t ws_bytes);
NNK_HIDDEN int nnk_poly_backward_weight_f32(float *dweight, const float *inp, const float *dout,
                                            const nnk_conv *g, void *ws, size_t ws_bytes);
/* conv2d's backward: dinp, dweight and/or dbias, with the forward's keep (or NULL) */
NNK_HIDDEN int nnk_poly_backward_f32(float *dinp, float *dweight, float *dbias, const float *inp,
                                     const float *dout, const float *weight, const void *keep,
                                     const nnk_conv *g, void *ws, size_t ws_bytes);
/* the backward of the transposed convolution whose forward is g's backward_input (x its
 * input, dy its output's gradient), with that forward's keep (or NULL) */
NNK_HIDDEN int nnk_poly_transposed_backward_f32(float *dx, float *dweight, float *dbias,
                                                const float *x, const float *dy,
                                                const float *weight, const void *keep,
                                                const nnk_conv *g, void *ws, size_t ws_bytes);

/* f64 keeps im2col: its names of the two paths are macros for "does not apply" (keep nothing),
 * whose arguments are not evaluated, so the f64 kernels compile without those branches */
#define nnk_wino_forward_f64(...) 1
#define nnk_wino_backward_weight_f64(...) 1
#define nnk_poly_keep_bytes_f64(...) 0
#define nnk_poly_keep_clear_f64(...) ((void)0)
#define nnk_poly_forward_f64(...) 1
#define nnk_poly_backward_input_f64(...) 1
#define nnk_poly_backward_weight_f64(...) 1
#define nnk_poly_backward_f64(...) 1
#define nnk_poly_transposed_backward_f64(...) 1

/* depthwise.c: direct loops for conv_is_depthwise(g) geometries */
#define NNK_DECLARE_DEPTHWISE(T, SFX)                                                          \
  NNK_HIDDEN void nnk_dw_forward##SFX(T *out, const T *inp, const T *weight, const T *bias,    \
                                      const nnk_conv *g);                                       \
  /* returns 0 or -1 (allocation failure) */                                                    \
  NNK_HIDDEN int nnk_dw_backward_input##SFX(T *dinp, const T *dout, const T *weight,           \
                                            const nnk_conv *g);                                 \
  NNK_HIDDEN void nnk_dw_backward_weight##SFX(T *dweight, const T *inp, const T *dout,         \
                                              const nnk_conv *g);

NNK_DECLARE_DEPTHWISE(float, _f32)
NNK_DECLARE_DEPTHWISE(double, _f64)

#endif
