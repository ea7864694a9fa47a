/* nnk.h: the neural-network CPU kernels of aiart-lua (llm.c style).
 *
 * Conventions
 *  - Every kernel exists for float (suffix _f32) and double (suffix _f64). The declarations
 *    below are written once, generically, in NNK_DECLARE(T, SFX) and instantiated for both;
 *    read "T" as float or double and "name##SFX" as name_f32 or name_f64.
 *  - Layout NCHW, contiguous arrays. Outputs come first, sizes last. Kernels OVERWRITE their
 *    outputs (never accumulate). No two pointer arguments may alias unless a comment says so.
 *  - Sizes are int for convolution/pooling geometry and spatial sizes, int64_t for the
 *    normalisation and softmax row counts. All offsets are computed in 64 bits.
 *  - Kernels that can fail return int: 0 on success, -1 on invalid geometry/arguments, a too
 *    small workspace or an allocation failure (nothing is printed; outputs are then undefined).
 *  - Scratch memory: a kernel that needs it takes (void *ws, size_t ws_bytes) and has a
 *    *_workspace_size(...) query (bytes, for omp_get_max_threads() threads at query time; pass
 *    memory aligned to 64 bytes). If fewer bytes are passed the kernel uses fewer threads; if not
 *    even one thread fits it returns -1. ws == NULL makes the kernel malloc (and free) the
 *    workspace itself. A query returning 0 means no workspace is needed.
 *  - Parallelism is OpenMP only (the core sets OpenBLAS to one thread): convolutions run one
 *    single-threaded gemm per (sample, block of output rows or channels) work unit, so a
 *    batch of 1 still uses every thread. 1x1 stride-1 pad-0 convolutions use the planes as gemm
 *    operands directly; depthwise convolutions (groups == C, <= 4 outputs per group) use
 *    direct loops; stride-1 backward_input runs as a forward convolution with the flipped
 *    kernel when that gives the better-shaped gemm. conv_transpose2d is the adjoint of conv2d.
 *    f32 3x3 stride-1 convolutions (groups 1, dilation 1) run Winograd F(4x4,3x3) where it
 *    was measured faster (nnk_set_winograd below); its error is ~10x that of im2col (see
 *    src/kernels/winograd.c). f32 4x4 stride-2 pad-1 convolutions (DCGAN's, and so the
 *    transposed ones of that shape) run a polyphase Winograd F(4x4,2x2) under the same switch
 *    (src/kernels/polyphase.c); their forwards can keep the transformed operands for the fused
 *    backward (nnk_conv2d_forward_keep, nnk_conv2d_backward).
 *  - Statistics (norm means/variances, softmax sums) are accumulated in double.
 *  - nnk_ref_* (bottom) are naive reference kernels for the tests (src/kernels/nnk_ref.c).
 */
#ifndef NNK_H
#define NNK_H

#include <stddef.h>
#include <stdint.h>

/* ---- convolution geometry ----------------------------------------------------------------
 * conv2d: input N x C x H x W, weight K x (C/groups) x R x S, bias K, output N x K x P x Q,
 * P = (H + 2*pad_h - dil_h*(R-1) - 1)/stride_h + 1 (Q likewise). */
typedef struct {
  int N, C, H, W;     /* input */
  int K, R, S;        /* output channels, kernel height, kernel width */
  int stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups;
  int P, Q;           /* output height, width: filled by nnk_conv_init */
} nnk_conv;

/* Validates the fields (N >= 0, the rest positive, pad >= 0, C and K divisible by groups,
 * output non-empty) and fills P, Q. Returns 0 or -1. */
int nnk_conv_init(nnk_conv *g);
/* Fills every field and calls nnk_conv_init. */
int nnk_conv_setup(nnk_conv *g, int N, int C, int H, int W, int K, int R, int S, int stride_h,
                   int stride_w, int pad_h, int pad_w, int dil_h, int dil_w, int groups);

/* conv_transpose2d: input N x C x H x W, weight C x (K/groups) x R x S, bias K,
 * output N x K x P x Q, P = (H-1)*stride_h - 2*pad_h + dil_h*(R-1) + out_pad_h + 1 (Q likewise).
 * out_pad must be smaller than the stride or the dilation (as PyTorch). */
typedef struct {
  int N, C, H, W;     /* input (C = in_channels) */
  int K, R, S;        /* out_channels, kernel height, kernel width */
  int stride_h, stride_w, pad_h, pad_w, out_pad_h, out_pad_w, dil_h, dil_w, groups;
  int P, Q;           /* output height, width: filled by nnk_convt_init */
} nnk_convt;

int nnk_convt_init(nnk_convt *g);
int nnk_convt_setup(nnk_convt *g, int N, int C, int H, int W, int K, int R, int S,
                    int stride_h, int stride_w, int pad_h, int pad_w, int out_pad_h,
                    int out_pad_w, int dil_h, int dil_w, int groups);
/* The conv2d whose backward_input is this transposed convolution (C and K swapped, input
 * and output sizes swapped). The nnk_conv_transpose2d_* wrappers use it; exposed for callers
 * that want the conv2d kernels directly. */
void nnk_convt_as_conv(const nnk_convt *t, nnk_conv *c);

/* Winograd F(4x4,3x3) for f32 3x3 stride-1 undilated ungrouped convolutions (forward, and so
 * stride-1 backward_input, and backward_weight) and polyphase Winograd F(4x4,2x2) for f32 4x4
 * stride-2 pad-1 ones: 0 never (im2col), 1 where it was measured faster (the default),
 * 2 wherever it applies (for tests). The start value comes from the environment variable
 * AIART_WINOGRAD (0, 1 or 2). Returns the previous mode; a mode outside 0..2 only reads it.
 * Not to be changed while a kernel runs; query workspace sizes under the same mode. */
int nnk_set_winograd(int mode);

/* ---- pooling geometry ---------------------------------------------------------------------
 * input N x C x H x W, output N x C x P x Q; PyTorch's output size rule (ceil_mode included:
 * the last window must start inside the input or the left padding). pad <= half the
 * effective kernel. count_include_pad and divisor_override (0 = none) are for avg_pool only;
 * avg_pool requires dil_h = dil_w = 1. Indices of max_pool are h*W + w in the input plane. */
typedef struct {
  int N, C, H, W;
  int kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
  int ceil_mode, count_include_pad, divisor_override;
  int P, Q;           /* filled by nnk_pool_init */
} nnk_pool;

int nnk_pool_init(nnk_pool *g);
int nnk_pool_setup(nnk_pool *g, int N, int C, int H, int W, int kernel_h, int kernel_w,
                   int stride_h, int stride_w, int pad_h, int pad_w, int dil_h, int dil_w,
                   int ceil_mode, int count_include_pad, int divisor_override);

typedef enum { NNK_PAD_REFLECT, NNK_PAD_REPLICATE, NNK_PAD_CIRCULAR } nnk_pad_mode;

/* ---- kernels, generic in T ------------------------------------------------------------- */
#define NNK_DECLARE(T, SFX)                                                                     \
  /* conv2d forward: out (N,K,P,Q) = conv(inp (N,C,H,W), weight (K,C/groups,R,S)) + bias (K)  \
   * bias may be NULL. */                                                                       \
  size_t nnk_conv2d_forward_workspace_size##SFX(const nnk_conv *g);                            \
  int nnk_conv2d_forward##SFX(T *out, const T *inp, const T *weight, const T *bias,            \
                              const nnk_conv *g, void *ws, size_t ws_bytes);                   \
  /* conv2d backward to the input: dinp (N,C,H,W) from dout (N,K,P,Q), weight (K,C/g,R,S) */   \
  size_t nnk_conv2d_backward_input_workspace_size##SFX(const nnk_conv *g);                     \
  int nnk_conv2d_backward_input##SFX(T *dinp, const T *dout, const T *weight,                  \
                                     const nnk_conv *g, void *ws, size_t ws_bytes);            \
  /* conv2d backward to the weight: dweight (K,C/g,R,S) from inp (N,C,H,W), dout (N,K,P,Q) */  \
  size_t nnk_conv2d_backward_weight_workspace_size##SFX(const nnk_conv *g);                    \
  int nnk_conv2d_backward_weight##SFX(T *dweight, const T *inp, const T *dout,                 \
                                      const nnk_conv *g, void *ws, size_t ws_bytes);           \
  /* conv2d backward, the three gradients (any pointer may be NULL to skip it) in one pass    \
   * where they share transforms; keep: NULL, or what nnk_conv2d_forward_keep filled for the  \
   * same geometry and tensors (its transforms of inp and weight are then not recomputed). */   \
  size_t nnk_conv2d_backward_workspace_size##SFX(const nnk_conv *g);                           \
  int nnk_conv2d_backward##SFX(T *dinp, T *dweight, T *dbias, const T *inp, const T *dout,     \
                               const T *weight, const void *keep, const nnk_conv *g, void *ws, \
                               size_t ws_bytes);                                               \
  /* A forward that keeps its transformed operands for the backward: keep_bytes is 0 where   \
   * the geometry has none (the f32 4x4 stride-2 path only), else the size of keep, which    \
   * the forward fills (keep NULL: as nnk_conv2d_forward). */                                   \
  size_t nnk_conv2d_keep_bytes##SFX(const nnk_conv *g);                                        \
  int nnk_conv2d_forward_keep##SFX(T *out, const T *inp, const T *weight, const T *bias,       \
                                   void *keep, const nnk_conv *g, void *ws, size_t ws_bytes);  \
  /* bias gradient of conv2d/conv_transpose2d/batch-like layouts: dbias (C) = sum over N and   \
   * HW of dout (N,C,HW). */                                                                    \
  void nnk_bias_backward##SFX(T *dbias, const T *dout, int64_t N, int64_t C, int64_t HW);      \
                                                                                                \
  /* conv_transpose2d forward: out (N,K,P,Q) from inp (N,C,H,W), weight (C,K/g,R,S), bias (K)  \
   * or NULL. */                                                                                \
  size_t nnk_conv_transpose2d_forward_workspace_size##SFX(const nnk_convt *g);                 \
  int nnk_conv_transpose2d_forward##SFX(T *out, const T *inp, const T *weight, const T *bias,  \
                                        const nnk_convt *g, void *ws, size_t ws_bytes);        \
  /* dinp (N,C,H,W) from dout (N,K,P,Q), weight (C,K/g,R,S) */                                 \
  size_t nnk_conv_transpose2d_backward_input_workspace_size##SFX(const nnk_convt *g);          \
  int nnk_conv_transpose2d_backward_input##SFX(T *dinp, const T *dout, const T *weight,        \
                                               const nnk_convt *g, void *ws, size_t ws_bytes); \
  /* dweight (C,K/g,R,S) from inp (N,C,H,W), dout (N,K,P,Q); dbias: nnk_bias_backward */       \
  size_t nnk_conv_transpose2d_backward_weight_workspace_size##SFX(const nnk_convt *g);         \
  int nnk_conv_transpose2d_backward_weight##SFX(T *dweight, const T *inp, const T *dout,       \
                                                const nnk_convt *g, void *ws,                  \
                                                size_t ws_bytes);                              \
  /* both gradients in one pass, as nnk_conv2d_backward, with the keep of                    \
   * nnk_conv_transpose2d_forward_keep (keep_bytes: as conv2d's) */                             \
  size_t nnk_conv_transpose2d_backward_workspace_size##SFX(const nnk_convt *g);                \
  int nnk_conv_transpose2d_backward##SFX(T *dinp, T *dweight, T *dbias, const T *inp,         \
                                         const T *dout, const T *weight, const void *keep,     \
                                         const nnk_convt *g, void *ws, size_t ws_bytes);       \
  size_t nnk_conv_transpose2d_keep_bytes##SFX(const nnk_convt *g);                             \
  int nnk_conv_transpose2d_forward_keep##SFX(T *out, const T *inp, const T *weight,            \
                                             const T *bias, void *keep, const nnk_convt *g,    \
                                             void *ws, size_t ws_bytes);                       \
                                                                                                \
  /* max_pool2d: out (N,C,P,Q), indices (N,C,P,Q) (may be NULL) from inp (N,C,H,W).           \
   * NaN wins, as PyTorch. */                                                                   \
  int nnk_max_pool2d_forward##SFX(T *out, int64_t *indices, const T *inp, const nnk_pool *g);  \
  /* dinp (N,C,H,W) = scatter-add of dout (N,C,P,Q) through indices (zero elsewhere) */        \
  int nnk_max_pool2d_backward##SFX(T *dinp, const T *dout, const int64_t *indices,             \
                                   const nnk_pool *g);                                          \
  /* avg_pool2d: out (N,C,P,Q) from inp (N,C,H,W) */                                           \
  int nnk_avg_pool2d_forward##SFX(T *out, const T *inp, const nnk_pool *g);                    \
  int nnk_avg_pool2d_backward##SFX(T *dinp, const T *dout, const nnk_pool *g);                 \
  /* adaptive_avg_pool2d: out (N,C,P,Q) from inp (N,C,H,W); window rows                        \
   * [floor(i*H/P), ceil((i+1)*H/P)) (columns likewise) */                                      \
  void nnk_adaptive_avg_pool2d_forward##SFX(T *out, const T *inp, int N, int C, int H, int W,  \
                                            int P, int Q);                                      \
  void nnk_adaptive_avg_pool2d_backward##SFX(T *dinp, const T *dout, int N, int C, int H,      \
                                             int W, int P, int Q);                              \
                                                                                                \
  /* upsample nearest (PyTorch 'nearest'): out (N,C,P,Q) from inp (N,C,H,W);                   \
   * src = min(floor(dst * s), in-1) in float, s = 1/scale if scale > 0 (the user's            \
   * scale_factor) else in/out. Returns -1 on bad sizes or allocation failure. */               \
  int nnk_upsample_nearest2d_forward##SFX(T *out, const T *inp, int N, int C, int H, int W,    \
                                          int P, int Q, double scale_h, double scale_w);       \
  int nnk_upsample_nearest2d_backward##SFX(T *dinp, const T *dout, int N, int C, int H, int W, \
                                           int P, int Q, double scale_h, double scale_w);      \
  /* upsample bilinear (PyTorch 'bilinear', align_corners 0/1; scales as above, ignored when   \
   * align_corners). */                                                                         \
  int nnk_upsample_bilinear2d_forward##SFX(T *out, const T *inp, int N, int C, int H, int W,   \
                                           int P, int Q, int align_corners, double scale_h,    \
                                           double scale_w);                                     \
  int nnk_upsample_bilinear2d_backward##SFX(T *dinp, const T *dout, int N, int C, int H,       \
                                            int W, int P, int Q, int align_corners,            \
                                            double scale_h, double scale_w);                   \
                                                                                                \
  /* pad2d of the last two dims: out (N,C,H+top+bottom,W+left+right) from inp (N,C,H,W).       \
   * Pads >= 0; reflect needs pad < dim, circular pad <= dim. Returns -1 when invalid. */      \
  int nnk_pad2d_forward##SFX(T *out, const T *inp, int N, int C, int H, int W, int left,       \
                             int right, int top, int bottom, nnk_pad_mode mode);               \
  /* dinp (N,C,H,W) = sum of the dout (N,C,H+top+bottom,W+left+right) that each input          \
   * element was copied to */                                                                   \
  int nnk_pad2d_backward##SFX(T *dinp, const T *dout, int N, int C, int H, int W, int left,    \
                              int right, int top, int bottom, nnk_pad_mode mode);              \
                                                                                                \
  /* batch_norm over inp (N,C,HW) (HW = 1 for 2-D input), weight/bias (C) or NULL.             \
   * training: batch mean and biased variance; writes save_mean/save_invstd (C) and updates     \
   * running_mean/running_var (C) with momentum and the unbiased variance (pointers may be      \
   * NULL). eval: normalises with the running stats and writes them to save_mean/save_invstd   \
   * (as mean and 1/sqrt(var+eps)) if non-NULL; eval with running_mean or running_var NULL      \
   * uses the batch statistics instead (and updates nothing). */                                \
  void nnk_batch_norm_forward##SFX(T *out, T *save_mean, T *save_invstd, T *running_mean,      \
                                   T *running_var, const T *inp, const T *weight,              \
                                   const T *bias, int training, double momentum, double eps,   \
                                   int64_t N, int64_t C, int64_t HW);                           \
  /* dinp (N,C,HW), dweight (C), dbias (C) (each may be NULL) from dout, inp, weight (NULL =    \
   * ones) and the saved mean/invstd. training = 0: the stats are constants (eval mode). */     \
  void nnk_batch_norm_backward##SFX(T *dinp, T *dweight, T *dbias, const T *dout,              \
                                    const T *inp, const T *weight, const T *save_mean,         \
                                    const T *save_invstd, int training, int64_t N, int64_t C,  \
                                    int64_t HW);                                                \
                                                                                                \
  /* group_norm: inp (N,C,HW), G groups (C % G == 0), weight/bias (C) or NULL; writes out      \
   * (N,C,HW), mean and rstd (N*G) (may be NULL). */                                            \
  void nnk_group_norm_forward##SFX(T *out, T *mean, T *rstd, const T *inp, const T *weight,    \
                                   const T *bias, int64_t N, int64_t C, int64_t HW, int64_t G, \
                                   double eps);                                                 \
  /* out = silu(group_norm(inp)); mean/rstd as above */                                         \
  void nnk_group_norm_silu_forward##SFX(T *out, T *mean, T *rstd, const T *inp,                \
                                        const T *weight, const T *bias, int64_t N, int64_t C,  \
                                        int64_t HW, int64_t G, double eps);                     \
  size_t nnk_group_norm_backward_workspace_size##SFX(int64_t N, int64_t C);                    \
  /* dinp (N,C,HW), dweight (C), dbias (C) (each may be NULL) */                                \
  int nnk_group_norm_backward##SFX(T *dinp, T *dweight, T *dbias, const T *dout, const T *inp, \
                                   const T *weight, const T *mean, const T *rstd, int64_t N,   \
                                   int64_t C, int64_t HW, int64_t G, void *ws,                 \
                                   size_t ws_bytes);                                            \
                                                                                                \
  /* layer_norm over rows of D: inp (M,D), weight/bias (D) or NULL; out (M,D), mean/rstd (M)    \
   * (may be NULL) */                                                                           \
  void nnk_layer_norm_forward##SFX(T *out, T *mean, T *rstd, const T *inp, const T *weight,    \
                                   const T *bias, int64_t M, int64_t D, double eps);           \
  size_t nnk_layer_norm_backward_workspace_size##SFX(int64_t M, int64_t D);                    \
  /* dinp (M,D), dweight (D), dbias (D) (each may be NULL) */                                   \
  int nnk_layer_norm_backward##SFX(T *dinp, T *dweight, T *dbias, const T *dout, const T *inp, \
                                   const T *weight, const T *mean, const T *rstd, int64_t M,   \
                                   int64_t D, void *ws, size_t ws_bytes);                      \
                                                                                                \
  /* softmax / log_softmax along the middle dim of a contiguous (outer, dim, inner) tensor.    \
   * Forward: out may alias inp. Backward takes the forward output `out`:                       \
   * softmax: dinp = out*(dout - sum(dout*out)); log_softmax: dinp = dout - exp(out)*sum(dout).\
   * dinp may alias dout. */                                                                    \
  void nnk_softmax_forward##SFX(T *out, const T *inp, int64_t outer, int64_t dim,              \
                                int64_t inner);                                                 \
  void nnk_softmax_backward##SFX(T *dinp, const T *dout, const T *out, int64_t outer,          \
                                 int64_t dim, int64_t inner);                                   \
  void nnk_log_softmax_forward##SFX(T *out, const T *inp, int64_t outer, int64_t dim,          \
                                    int64_t inner);                                             \
  void nnk_log_softmax_backward##SFX(T *dinp, const T *dout, const T *out, int64_t outer,      \
                                     int64_t dim, int64_t inner);

NNK_DECLARE(float, _f32)
NNK_DECLARE(double, _f64)

/* ---- reference kernels (src/kernels/nnk_ref.c): naive loops, for tests only --------------
 * Same meaning as the fast kernels; geometry structs must have been initialised. */
#define NNK_DECLARE_REF(T, SFX)                                                                 \
  void nnk_ref_conv2d_forward##SFX(T *out, const T *inp, const T *weight, const T *bias,       \
                                   const nnk_conv *g);                                          \
  void nnk_ref_conv2d_backward_input##SFX(T *dinp, const T *dout, const T *weight,             \
                                          const nnk_conv *g);                                   \
  void nnk_ref_conv2d_backward_weight##SFX(T *dweight, const T *inp, const T *dout,            \
                                           const nnk_conv *g);                                  \
  void nnk_ref_bias_backward##SFX(T *dbias, const T *dout, int64_t N, int64_t C, int64_t HW);  \
  void nnk_ref_conv_transpose2d_forward##SFX(T *out, const T *inp, const T *weight,            \
                                             const T *bias, const nnk_convt *g);               \
  void nnk_ref_conv_transpose2d_backward_input##SFX(T *dinp, const T *dout, const T *weight,   \
                                                    const nnk_convt *g);                        \
  void nnk_ref_conv_transpose2d_backward_weight##SFX(T *dweight, const T *inp, const T *dout,  \
                                                     const nnk_convt *g);                       \
  void nnk_ref_max_pool2d_forward##SFX(T *out, int64_t *indices, const T *inp,                 \
                                       const nnk_pool *g);                                      \
  void nnk_ref_max_pool2d_backward##SFX(T *dinp, const T *dout, const int64_t *indices,        \
                                        const nnk_pool *g);                                     \
  void nnk_ref_avg_pool2d_forward##SFX(T *out, const T *inp, const nnk_pool *g);               \
  void nnk_ref_avg_pool2d_backward##SFX(T *dinp, const T *dout, const nnk_pool *g);            \
  void nnk_ref_adaptive_avg_pool2d_forward##SFX(T *out, const T *inp, int N, int C, int H,     \
                                                int W, int P, int Q);                           \
  void nnk_ref_adaptive_avg_pool2d_backward##SFX(T *dinp, const T *dout, int N, int C, int H,  \
                                                 int W, int P, int Q);                          \
  void nnk_ref_upsample_nearest2d_forward##SFX(T *out, const T *inp, int N, int C, int H,      \
                                               int W, int P, int Q, double scale_h,            \
                                               double scale_w);                                 \
  void nnk_ref_upsample_nearest2d_backward##SFX(T *dinp, const T *dout, int N, int C, int H,   \
                                                int W, int P, int Q, double scale_h,           \
                                                double scale_w);                                \
  void nnk_ref_upsample_bilinear2d_forward##SFX(T *out, const T *inp, int N, int C, int H,     \
                                                int W, int P, int Q, int align_corners,        \
                                                double scale_h, double scale_w);               \
  void nnk_ref_upsample_bilinear2d_backward##SFX(T *dinp, const T *dout, int N, int C, int H,  \
                                                 int W, int P, int Q, int align_corners,       \
                                                 double scale_h, double scale_w);              \
  void nnk_ref_pad2d_forward##SFX(T *out, const T *inp, int N, int C, int H, int W, int left,  \
                                  int right, int top, int bottom, nnk_pad_mode mode);          \
  void nnk_ref_pad2d_backward##SFX(T *dinp, const T *dout, int N, int C, int H, int W,         \
                                   int left, int right, int top, int bottom,                   \
                                   nnk_pad_mode mode);                                          \
  void nnk_ref_batch_norm_forward##SFX(T *out, T *save_mean, T *save_invstd, T *running_mean,  \
                                       T *running_var, const T *inp, const T *weight,          \
                                       const T *bias, int training, double momentum,           \
                                       double eps, int64_t N, int64_t C, int64_t HW);           \
  void nnk_ref_batch_norm_backward##SFX(T *dinp, T *dweight, T *dbias, const T *dout,          \
                                        const T *inp, const T *weight, const T *save_mean,     \
                                        const T *save_invstd, int training, int64_t N,         \
                                        int64_t C, int64_t HW);                                 \
  void nnk_ref_group_norm_forward##SFX(T *out, T *mean, T *rstd, const T *inp,                 \
                                       const T *weight, const T *bias, int64_t N, int64_t C,   \
                                       int64_t HW, int64_t G, double eps);                      \
  void nnk_ref_group_norm_silu_forward##SFX(T *out, T *mean, T *rstd, const T *inp,            \
                                            const T *weight, const T *bias, int64_t N,         \
                                            int64_t C, int64_t HW, int64_t G, double eps);      \
  void nnk_ref_group_norm_backward##SFX(T *dinp, T *dweight, T *dbias, const T *dout,          \
                                        const T *inp, const T *weight, const T *mean,          \
                                        const T *rstd, int64_t N, int64_t C, int64_t HW,       \
                                        int64_t G);                                             \
  void nnk_ref_layer_norm_forward##SFX(T *out, T *mean, T *rstd, const T *inp,                 \
                                       const T *weight, const T *bias, int64_t M, int64_t D,   \
                                       double eps);                                             \
  void nnk_ref_layer_norm_backward##SFX(T *dinp, T *dweight, T *dbias, const T *dout,          \
                                        const T *inp, const T *weight, const T *mean,          \
                                        const T *rstd, int64_t M, int64_t D);                   \
  void nnk_ref_softmax_forward##SFX(T *out, const T *inp, int64_t outer, int64_t dim,          \
                                    int64_t inner);                                             \
  void nnk_ref_softmax_backward##SFX(T *dinp, const T *dout, const T *out, int64_t outer,      \
                                     int64_t dim, int64_t inner);                               \
  void nnk_ref_log_softmax_forward##SFX(T *out, const T *inp, int64_t outer, int64_t dim,      \
                                        int64_t inner);                                         \
  void nnk_ref_log_softmax_backward##SFX(T *dinp, const T *dout, const T *out, int64_t outer,  \
                                         int64_t dim, int64_t inner);

NNK_DECLARE_REF(float, _f32)
NNK_DECLARE_REF(double, _f64)

#endif
