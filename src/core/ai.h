/* ai.h: the C core of aiart-lua: tensors, ops, autograd. Knows nothing about Lua.
 *
 * Conventions:
 *  - Functions that make a tensor return a new reference (refs = 1, owned by the caller) or
 *    NULL on failure, with a message in ai_error(). Functions returning int return 0 on success
 *    and -1 on failure (message in ai_error()).
 *  - Dimensions and indices here are 0-based; the Lua binding converts from 1-based.
 *  - Arguments are borrowed: a function never steals a reference it was given.
 */
#ifndef AI_H
#define AI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ops.h"

#define AI_MAXDIM 8

typedef enum { AI_U8, AI_I64, AI_F32, AI_F64, AI_NDTYPES } ai_dtype;

extern const char *const ai_dtype_names[AI_NDTYPES]; /* "u8" "i64" "f32" "f64" */
extern const size_t ai_dtype_sizes[AI_NDTYPES];
static inline bool ai_is_float(ai_dtype d) { return d == AI_F32 || d == AI_F64; }

/* ---- errors (thread-local message; never printed, never exit) ---- */
int ai_seterror(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* returns -1 */
const char *ai_error(void);
#define AI_ERRNULL(...) (ai_seterror(__VA_ARGS__), (void *)0)

/* ---- memory: a caching allocator that counts live bytes ---- */
void *ai_alloc(size_t nbytes);            /* 64-byte aligned; NULL + error when out of memory */
void ai_free(void *p, size_t nbytes);
size_t ai_live_bytes(void);               /* bytes held by live storages */
size_t ai_cached_bytes(void);             /* bytes kept in the cache for reuse */
size_t ai_peak_bytes(void);
void ai_empty_cache(void);
/* Test hook: make the Nth allocation from now fail (0 disables). */
void ai_alloc_fail_after(long n);

/* A free list of fixed-size blocks, for the structs that every op makes and drops (tensors,
 * storages, autograd nodes): malloc/free were most of a small op's cost. At most `max` blocks
 * are kept; AI_NO_CACHE builds keep none. Not thread-safe: only the Lua thread uses them. */
typedef struct ai_freelist { void *head; size_t len, max, size; } ai_freelist;
void *ai_freelist_get(ai_freelist *fl); /* a zeroed block of fl->size bytes, or NULL */
void ai_freelist_put(ai_freelist *fl, void *p);

/* ---- storage: a reference-counted buffer shared by views ---- */
typedef struct ai_storage {
  int refs;
  unsigned version; /* bumped by every in-place write; checked by autograd */
  size_t nbytes;
  void *data;
  void (*release)(void *ctx, void *data); /* non-NULL: external memory (e.g. mmap) */
  void *release_ctx;
} ai_storage;

typedef struct ai_node ai_node;
typedef struct ai_grad_hook ai_grad_hook;
typedef struct ai_leaf_hooks ai_leaf_hooks;

typedef struct ai_tensor {
  int refs;
  ai_dtype dtype;
  int ndim;
  int64_t shape[AI_MAXDIM];
  int64_t stride[AI_MAXDIM]; /* in elements */
  int64_t offset;            /* in elements */
  ai_storage *storage;
  /* autograd */
  bool requires_grad;
  struct ai_tensor *grad; /* accumulated gradient of a leaf */
  ai_node *grad_fn;       /* the node that produced this tensor (NULL for leaves) */
  ai_grad_hook *hook;     /* gradient-ready hook of a leaf (ai_set_grad_hook), usually NULL */
  ai_leaf_hooks *hooks;   /* a leaf's gradient hooks (ai_add_tensor_hook), usually NULL */
} ai_tensor;

static inline void *ai_data(const ai_tensor *t) {
  return (char *)t->storage->data + t->offset * (int64_t)ai_dtype_sizes[t->dtype];
}
int64_t ai_numel(const ai_tensor *t);
bool ai_is_contiguous(const ai_tensor *t);
static inline ai_tensor *ai_ref(ai_tensor *t) { if (t) t->refs++; return t; }
void ai_unref(ai_tensor *t);
/* Normalises a possibly negative 0-based dim; -1 + error if out of range. */
int ai_wrapdim(int dim, int ndim, const char *fn);
bool ai_same_shape(const ai_tensor *a, const ai_tensor *b);
/* Writes "2x3x4" (or "scalar") into buf. */
const char *ai_shape_str(const ai_tensor *t, char *buf, size_t n);

/* ---- construction ---- */
ai_tensor *ai_empty(ai_dtype dt, int ndim, const int64_t *shape);
ai_tensor *ai_zeros(ai_dtype dt, int ndim, const int64_t *shape);
ai_tensor *ai_full(ai_dtype dt, int ndim, const int64_t *shape, double v);
ai_tensor *ai_scalar(ai_dtype dt, double v); /* 0-dim */
ai_tensor *ai_arange(ai_dtype dt, double start, double stop, double step);
ai_tensor *ai_linspace(ai_dtype dt, double start, double stop, int64_t n);
ai_tensor *ai_eye(ai_dtype dt, int64_t n, int64_t m);
/* A tensor over external memory; release(ctx, data) is called when the storage dies. */
ai_tensor *ai_from_external(ai_dtype dt, int ndim, const int64_t *shape, void *data,
                            void (*release)(void *, void *), void *ctx);
double ai_get(const ai_tensor *t, const int64_t *idx); /* element as double */
double ai_item(const ai_tensor *t);                     /* numel must be 1 */
int ai_set(ai_tensor *t, const int64_t *idx, double v);
/* The same for integers, exact for i64 (a double holds only 53 bits) */
int64_t ai_get_int(const ai_tensor *t, const int64_t *idx);
int ai_set_int(ai_tensor *t, const int64_t *idx, int64_t v);

/* ---- views (share storage; differentiable) ---- */
ai_tensor *ai_view(ai_tensor *t, int ndim, const int64_t *shape); /* -1 infers one dim */
ai_tensor *ai_reshape(ai_tensor *t, int ndim, const int64_t *shape); /* copies if needed */
ai_tensor *ai_permute(ai_tensor *t, const int *perm);
ai_tensor *ai_transpose(ai_tensor *t, int d0, int d1);
ai_tensor *ai_slice(ai_tensor *t, int dim, int64_t start, int64_t stop, int64_t step);
ai_tensor *ai_narrow(ai_tensor *t, int dim, int64_t start, int64_t len);
ai_tensor *ai_select(ai_tensor *t, int dim, int64_t index);
ai_tensor *ai_expand(ai_tensor *t, int ndim, const int64_t *shape); /* -1 keeps a size */
ai_tensor *ai_squeeze(ai_tensor *t, int dim);   /* dim < 0 after wrap: all size-1 dims */
ai_tensor *ai_squeeze_all(ai_tensor *t);
ai_tensor *ai_unsqueeze(ai_tensor *t, int dim);
ai_tensor *ai_flatten(ai_tensor *t, int start, int end);
ai_tensor *ai_contiguous(ai_tensor *t); /* new ref to t itself if already contiguous */
ai_tensor *ai_clone(ai_tensor *t);
ai_tensor *ai_detach(ai_tensor *t);     /* shares storage, no grad */
/* t takes src's storage, dtype, shape, strides and offset, keeping its identity, .grad and
 * requires_grad (PyTorch's set_; module conversion keeps optimizers' references valid). */
int ai_set_(ai_tensor *t, ai_tensor *src);
ai_tensor *ai_to_dtype(ai_tensor *t, ai_dtype dt); /* new ref to t if same dtype */
/* Contiguous f32 pixels for the image writers: u8 0..255 scaled to [0,1], floats as they are
 * (a new ref to t when it already is contiguous f32). Not recorded. */
ai_tensor *ai_to_unit_f32(ai_tensor *t);
/* Inverse of slice/select for gradients: a zero tensor of `shape` with g placed at the slice. */
ai_tensor *ai_slice_backward(ai_tensor *g, int ndim, const int64_t *shape, int dim,
                             int64_t start, int64_t step);

/* ---- in-place (not differentiable; error on tensors that need grad while recording) ---- */
int ai_copy_(ai_tensor *dst, ai_tensor *src); /* broadcasts src, converts dtype */
int ai_fill_(ai_tensor *t, double v);
int ai_fill_int_(ai_tensor *t, int64_t v); /* exact for i64 */
int ai_zero_(ai_tensor *t);
/* a = a op b (add_, mul_, ...); an error where the result's dtype would be float and a's is an
 * integer (ai_result_dtype), as in PyTorch. The scalar form takes s as ai_binary_scalar does. */
int ai_binary_(int op, ai_tensor *a, ai_tensor *b);
int ai_binary_scalar_(int op, ai_tensor *a, double s);
int ai_binary_scalar_int_(int op, ai_tensor *a, int64_t s);
int ai_clamp_(ai_tensor *t, double lo, double hi);
int ai_masked_fill_(ai_tensor *t, ai_tensor *mask, double v);

/* ---- the op registry (ops.h) as data, for tests, the REPL and the docs ---- */
typedef struct {
  const char *NAME;     /* "ADD": the row's name, as grad_fn shows it */
  const char *name;     /* "add": the name users see */
  const char *family;   /* "binary", "unary", "tensor" or "nn" */
  const char *dtypes;   /* binary: ARITH, FLOAT or COMPARE; unary: KEEP, FLOAT or BOOL; else "" */
  bool recorded;        /* recorded for autograd, with a rule */
  bool double_backward; /* its rule records its own graph (create_graph works through it) */
  bool inplace;         /* binary: has an in-place method name_ */
} ai_op_info;
extern const ai_op_info ai_op_table[]; /* indexed by the autograd row (graph.h's ai_opid) */
extern const int ai_op_count;

/* ---- elementwise ---- */
/* The elementwise and reduction ops are rows of the lists in ops.h (the op registry). */
#define AI_ELEM_ENUM(NAME, ...) AI_##NAME,
typedef enum { AI_BINARY_OPS(AI_ELEM_ENUM) AI_NBINARY } ai_binop;
typedef enum { AI_UNARY_OPS(AI_ELEM_ENUM) AI_NUNARY } ai_unop;
typedef enum { AI_REDUCE_OPS(AI_ELEM_ENUM) AI_NREDUCE } ai_redop;
#undef AI_ELEM_ENUM
extern const char *const ai_binop_names[AI_NBINARY]; /* "add", ... (the Lua names) */
extern const char *const ai_unop_names[AI_NUNARY];
extern const char *const ai_redop_names[AI_NREDUCE];

ai_tensor *ai_binary(ai_binop op, ai_tensor *a, ai_tensor *b);
ai_tensor *ai_binary_scalar(ai_binop op, ai_tensor *a, double s, bool scalar_first);
/* An integer scalar, exact beside an integer tensor (a float tensor takes it as a float) */
ai_tensor *ai_binary_scalar_int(ai_binop op, ai_tensor *a, int64_t s, bool scalar_first);
ai_tensor *ai_unary(ai_unop op, ai_tensor *a);
ai_tensor *ai_leaky_relu(ai_tensor *a, double slope);
ai_tensor *ai_softplus(ai_tensor *a, double beta, double threshold);
ai_tensor *ai_clamp(ai_tensor *a, double lo, double hi); /* +-INFINITY for no bound */
ai_tensor *ai_where(ai_tensor *cond, ai_tensor *a, ai_tensor *b);
ai_tensor *ai_masked_fill(ai_tensor *t, ai_tensor *mask, double v);
/* The wider of two dtypes (u8 < i64 < f32 < f64); the result dtype of a binary op (PyTorch's
 * rule: a 0-dim operand beside one with dims decides only integer vs float); the broadcast shape
 * of two tensors. */
ai_dtype ai_promote(ai_dtype a, ai_dtype b);
ai_dtype ai_result_dtype(const ai_tensor *a, const ai_tensor *b);
int ai_broadcast_shape(const ai_tensor *a, const ai_tensor *b, int *ndim, int64_t *shape);

/* ---- reductions: dims is a bitmask of 0-based dims (0 = all dims) ---- */
ai_tensor *ai_reduce(ai_redop op, ai_tensor *t, unsigned dims, bool keepdim);
ai_tensor *ai_var(ai_tensor *t, unsigned dims, bool unbiased, bool keepdim);
ai_tensor *ai_norm(ai_tensor *t, double p, unsigned dims, bool keepdim);
/* max/min along one dim with indices (i64) */
int ai_max_dim(ai_tensor *t, int dim, bool keepdim, bool is_min, ai_tensor **values,
               ai_tensor **indices);
ai_tensor *ai_argmax(ai_tensor *t, int dim, bool keepdim, bool is_min); /* dim < 0: flat */
ai_tensor *ai_cumulative(ai_tensor *t, int dim, bool is_prod);
/* Sum g down to shape (the inverse of broadcasting); new ref to g if already that shape. */
ai_tensor *ai_sum_to(ai_tensor *g, int ndim, const int64_t *shape);

/* ---- linear algebra ---- */
ai_tensor *ai_matmul(ai_tensor *a, ai_tensor *b);
/* Eigenvalues (ascending, 1-D) and eigenvectors (the columns of *vectors) of a symmetric float
 * matrix (only its upper triangle is read), by LAPACK dsyev in f64; both in a's dtype. Not
 * differentiable. linalg.c */
int ai_eigh(ai_tensor *a, ai_tensor **values, ai_tensor **vectors);

/* ---- joining, indexing ---- */
ai_tensor *ai_cat(ai_tensor **ts, int n, int dim);
ai_tensor *ai_stack(ai_tensor **ts, int n, int dim);
ai_tensor *ai_index_select(ai_tensor *t, int dim, ai_tensor *index);
ai_tensor *ai_gather(ai_tensor *t, int dim, ai_tensor *index);
ai_tensor *ai_scatter(ai_tensor *t, int dim, ai_tensor *index, ai_tensor *src, bool add);
ai_tensor *ai_index_add(ai_tensor *t, int dim, ai_tensor *index, ai_tensor *src); /* non-diff helper */
/* The elements of x where the u8 mask (broadcast against x) is nonzero, 1-D, in order. */
ai_tensor *ai_masked_select(ai_tensor *x, ai_tensor *mask);

/* x[...] with a list of parts as users write them: integers (1-based, negatives from the end,
 * selecting: the dim goes), ranges a..b (inclusive, 1-based, negatives from the end, with a
 * step), and tensors: i64 positions (1-based; several broadcast together and gather, as PyTorch's
 * advanced indexing) or u8 masks (their true positions). ai_index reads (a view when there are
 * no tensors; differentiable either way); ai_index_put_ writes src (broadcast) in place, a
 * position named twice taking its last value. */
typedef enum { AI_INDEX_INT, AI_INDEX_RANGE, AI_INDEX_TENSOR } ai_index_kind;
typedef struct {
  ai_index_kind kind;
  int64_t a, b, step; /* INT: a; RANGE: a..b by step */
  ai_tensor *t;       /* TENSOR */
} ai_index_part;
ai_tensor *ai_index(ai_tensor *t, int n, const ai_index_part *parts);
int ai_index_put_(ai_tensor *t, int n, const ai_index_part *parts, ai_tensor *src);

/* ---- sorting (sort.c): stable, NaN after every number (before, descending), integers exact;
 * indices are 0-based i64; values carry gradients (through gather) ---- */
int ai_sort(ai_tensor *t, int dim, bool descending, ai_tensor **values, ai_tensor **indices);
int ai_topk(ai_tensor *t, int64_t k, int dim, bool largest, ai_tensor **values, ai_tensor **indices);
/* the k-th smallest, k 1-based */
int ai_kthvalue(ai_tensor *t, int64_t k, int dim, bool keepdim, ai_tensor **values, ai_tensor **indices);
int ai_median(ai_tensor *t, int dim, bool keepdim, ai_tensor **values, ai_tensor **indices); /* the lower one */
typedef enum { AI_QUANTILE_LINEAR, AI_QUANTILE_LOWER, AI_QUANTILE_HIGHER, AI_QUANTILE_NEAREST, AI_QUANTILE_MIDPOINT } ai_quantile_mode;
/* q: a 0-dim or 1-D tensor of values in [0, 1]; a 1-D q's dim comes first in the result */
ai_tensor *ai_quantile(ai_tensor *t, ai_tensor *q, int dim, bool keepdim, ai_quantile_mode mode);
/* the sorted distinct values of t (flattened); inverse (t's shape) and counts may be NULL */
int ai_unique(ai_tensor *t, ai_tensor **values, ai_tensor **inverse, ai_tensor **counts);
/* for each value, the 0-based position where it would go in the 1-D sorted seq (after equal
 * elements when right) */
ai_tensor *ai_searchsorted(ai_tensor *seq, ai_tensor *values, bool right);
/* ---- shape ops composed of recorded ones (shape.c): no rules of their own ---- */
ai_tensor *ai_flip(ai_tensor *t, unsigned dims); /* dims: a bitmask of 0-based dims; a copy */
/* n (shift, dim) pairs applied in turn; n == 0: shifts[0] of the flattened tensor */
ai_tensor *ai_roll(ai_tensor *t, int n, const int64_t *shifts, const int *dims);
/* PyTorch's repeat (and tile): n counts aligned to t's last dims (either side padded with 1s) */
ai_tensor *ai_tile(ai_tensor *t, int n, const int64_t *reps);
/* each entry along dim repeated count times, or reps[i] times (reps: 1-D i64, NULL: count);
 * dim < 0: of the flattened tensor */
ai_tensor *ai_repeat_interleave(ai_tensor *t, int64_t count, ai_tensor *reps, int dim);
ai_tensor *ai_tril(ai_tensor *t, int64_t k, bool upper); /* upper: triu */
ai_tensor *ai_diag(ai_tensor *t, int64_t k);   /* 1-D -> square matrix, 2-D -> its diagonal k */
/* diagonal off of the plane (d1, d2), as the last dim (a view when the plane is contiguous) */
ai_tensor *ai_diagonal(ai_tensor *t, int64_t off, int d1, int d2);
ai_tensor *ai_trace(ai_tensor *t);
ai_tensor *ai_outer(ai_tensor *a, ai_tensor *b);
ai_tensor *ai_kron(ai_tensor *a, ai_tensor *b);
/* out[0..n): the 0-D or 1-D ts[i] expanded over the grid (views); xy swaps its first two dims */
int ai_meshgrid(ai_tensor **ts, int n, bool xy, ai_tensor **out);

/* ---- tests of values (compare.c): not differentiable ---- */
ai_tensor *ai_isclose(ai_tensor *a, ai_tensor *b, double rtol, double atol, bool equal_nan); /* u8 */
int ai_allclose(ai_tensor *a, ai_tensor *b, double rtol, double atol, bool equal_nan, bool *result);
int ai_equal(ai_tensor *a, ai_tensor *b, bool *result); /* same shape, same values */
ai_tensor *ai_nonzero(ai_tensor *t); /* n x ndim 0-based i64 indices, row-major order */

/* ---- maths composed of recorded ops, and samplers (maths.c) ---- */
ai_tensor *ai_lerp(ai_tensor *a, ai_tensor *b, ai_tensor *wt, double w); /* wt NULL: the number w */
ai_tensor *ai_baddbmm(ai_tensor *in, ai_tensor *b1, ai_tensor *b2, double beta, double alpha);
/* mode: 0 matmul for p = 2 when P or R > 25, 1 always, 2 never (PyTorch's compute_mode) */
ai_tensor *ai_cdist(ai_tensor *x1, ai_tensor *x2, double p, int mode);
/* N(mean, std^2) samples, mean and std tensors (NULL: the numbers ms, ss) broadcast; not recorded */
ai_tensor *ai_normal(ai_tensor *mean, double ms, ai_tensor *std, double ss);
/* n 0-based draws per row of probs (K or B x K weights): K-shaped n or B x n, i64 */
ai_tensor *ai_multinomial(ai_tensor *probs, int64_t n, bool replacement);

/* ---- random: one Philox-4x32 generator; element i of a draw depends only on (seed, offset+i) ---- */
typedef struct { uint64_t seed, offset; } ai_rng_state;
void ai_manual_seed(uint64_t seed);
ai_rng_state ai_rng_get(void);
void ai_rng_set(ai_rng_state s);
int ai_rand_(ai_tensor *t, double lo, double hi);     /* uniform [lo, hi) */
int ai_randn_(ai_tensor *t, double mean, double std);
int ai_randint_(ai_tensor *t, int64_t lo, int64_t hi); /* [lo, hi) */
int ai_bernoulli_(ai_tensor *t, double p);
ai_tensor *ai_bernoulli(ai_tensor *p); /* 0/1 draws with probabilities p, in p's float dtype or f32 */
ai_tensor *ai_randperm(int64_t n);

/* ---- neural-network ops (nn.c); geometry pairs are {height, width} ---- */
typedef struct {
  int stride[2], pad[2], dil[2], out_pad[2], groups;
} ai_conv_opts;
typedef enum { AI_PAD_CONSTANT, AI_PAD_REFLECT, AI_PAD_REPLICATE } ai_pad_mode;
typedef enum { AI_REDUCE_NONE, AI_REDUCE_MEAN, AI_REDUCE_SUM, AI_REDUCE_BATCHMEAN } ai_reduction;

ai_tensor *ai_linear(ai_tensor *x, ai_tensor *w, ai_tensor *b); /* b may be NULL */
ai_tensor *ai_conv2d(ai_tensor *x, ai_tensor *w, ai_tensor *b, const ai_conv_opts *o);
ai_tensor *ai_conv_transpose2d(ai_tensor *x, ai_tensor *w, ai_tensor *b, const ai_conv_opts *o);
/* The weight gradient of a conv2d with input a and output gradient d (K x C/g x R x S). */
ai_tensor *ai_conv2d_weight_grad(ai_tensor *a, ai_tensor *d, int R, int S, const ai_conv_opts *o);
/* The gradients of conv2d (transposed: conv_transpose2d) with input a and weight w, for the
 * output gradient g, in one kernel call: *ga, *gw and/or *gb (the bias's; any pointer NULL to
 * skip). keep: the tensor the recorded forward kept (saved with the node), or NULL. Not
 * recorded. */
int ai_conv_backward(bool transposed, ai_tensor *a, ai_tensor *w, ai_tensor *g, ai_tensor *keep,
                     const ai_conv_opts *o, ai_tensor **ga, ai_tensor **gw, ai_tensor **gb);
ai_tensor *ai_max_pool2d(ai_tensor *x, const int *kernel, const int *stride, const int *pad,
                         const int *dil, bool ceil_mode);
ai_tensor *ai_avg_pool2d(ai_tensor *x, const int *kernel, const int *stride, const int *pad,
                         bool ceil_mode, bool count_include_pad);
ai_tensor *ai_adaptive_avg_pool2d(ai_tensor *x, int P, int Q);
/* mode 0 nearest, 1 bilinear; scale <= 0 means "derive from the sizes" */
ai_tensor *ai_upsample(ai_tensor *x, int P, int Q, int mode, bool align_corners, double scale_h,
                       double scale_w);
ai_tensor *ai_pad2d(ai_tensor *x, int left, int right, int top, int bottom, ai_pad_mode mode,
                    double value);
/* running_mean/var (may be NULL) are updated in place when training */
ai_tensor *ai_batch_norm(ai_tensor *x, ai_tensor *running_mean, ai_tensor *running_var,
                         ai_tensor *w, ai_tensor *b, bool training, double momentum, double eps);
ai_tensor *ai_group_norm(ai_tensor *x, int groups, ai_tensor *w, ai_tensor *b, double eps);
/* normalises over the last `nd` dims */
ai_tensor *ai_layer_norm(ai_tensor *x, int nd, ai_tensor *w, ai_tensor *b, double eps);
ai_tensor *ai_softmax(ai_tensor *x, int dim, bool log);
ai_tensor *ai_dropout(ai_tensor *x, double p, bool training);
ai_tensor *ai_embedding(ai_tensor *indices, ai_tensor *weight); /* 0-based indices */
ai_tensor *ai_attention(ai_tensor *q, ai_tensor *k, ai_tensor *v, ai_tensor *mask);
/* losses */
ai_tensor *ai_apply_reduction(ai_tensor *l, ai_reduction r);
ai_tensor *ai_mse_loss(ai_tensor *x, ai_tensor *y, ai_reduction r);
ai_tensor *ai_l1_loss(ai_tensor *x, ai_tensor *y, ai_reduction r);
ai_tensor *ai_smooth_l1_loss(ai_tensor *x, ai_tensor *y, double beta, ai_reduction r);
ai_tensor *ai_bce_loss(ai_tensor *p, ai_tensor *y, ai_tensor *weight, ai_reduction r);
ai_tensor *ai_bce_with_logits(ai_tensor *x, ai_tensor *y, ai_tensor *pos_weight, ai_reduction r);
/* target: 0-based class indices (i64), shape x's without dim 1; ignore_index < -1 disables */
ai_tensor *ai_nll_loss(ai_tensor *logp, ai_tensor *target, ai_tensor *weight,
                       int64_t ignore_index, ai_reduction r);
ai_tensor *ai_cross_entropy(ai_tensor *x, ai_tensor *target, ai_tensor *weight,
                            int64_t ignore_index, double label_smoothing, ai_reduction r);
ai_tensor *ai_kl_div(ai_tensor *input, ai_tensor *target, bool log_target, ai_reduction r);

/* ---- runtime (runtime.c): threads, CPUs, clocks ---- */
void ai_set_num_threads(int n);
int ai_get_num_threads(void);
/* The CPUs this process may run on (its affinity mask) and the CPUs online. */
void ai_cpu_count(int *usable, int *online);
/* Seconds of a monotonic wall clock, for intervals (CPU time such as clock() sums threads). */
double ai_clock(void);
/* Interrupts (Ctrl-C in the REPL): a signal handler calls ai_request_interrupt (async-signal-
 * safe); long computations of the core (a big matrix product, the backward engine between
 * nodes) stop at their next check with the error "<fn>: interrupted" until ai_clear_interrupt. */
void ai_request_interrupt(void);
void ai_clear_interrupt(void);
bool ai_interrupt_pending(void);
int ai_check_interrupt(const char *fn); /* 0, or -1 with the error when one is pending */
/* Seconds since the Unix epoch, with fractions (for timestamps, not intervals). */
double ai_unix_time(void);

/* ---- autograd ---- */
bool ai_grad_enabled(void);
bool ai_set_grad_enabled(bool on); /* returns previous */
int ai_set_requires_grad(ai_tensor *t, bool on);
/* Accumulates d(sum(outputs * grad_outputs))/d(leaf) into leaf->grad for every leaf. */
int ai_backward(ai_tensor **outputs, ai_tensor **grad_outputs, int n, bool retain_graph,
                bool create_graph);
/* Returns the gradients w.r.t. inputs in grads[] (new refs; NULL where unreachable). */
int ai_grad(ai_tensor **outputs, ai_tensor **grad_outputs, int nout, ai_tensor **inputs,
            int nin, bool retain_graph, bool create_graph, bool allow_unused,
            ai_tensor **grads);
const char *ai_grad_fn_name(const ai_tensor *t); /* NULL for leaves */
/* Gradient hooks (x:register_hook): fn(ctx, g) gets the gradient w.r.t. t of one backward pass
 * (for a leaf: all of it, before it is added to .grad) and returns the gradient to use instead: a
 * new reference (ai_ref(g) to keep g), or NULL with an error, which ends the backward. For a
 * non-leaf the hook lives on the node that made t. release(ctx) runs when the hook goes. */
typedef ai_tensor *(*ai_tensor_hook_fn)(void *ctx, ai_tensor *g);
int ai_add_tensor_hook(ai_tensor *t, ai_tensor_hook_fn fn, void *ctx, void (*release)(void *ctx));
/* A non-leaf keeps the gradients of later backwards in .grad, as a leaf does (a leaf: no-op). */
int ai_retain_grad(ai_tensor *t);

/* An op whose backward is given by the caller (autograd functions written in Lua): out is
 * recorded from ins[0..nin) as output number `output` of the function; fn(ctx, output, g, nin,
 * gin) fills gin[i] (new references) for the inputs that need a gradient; release(ctx) runs when
 * the node goes. Returns 1 when recorded (the node owns ctx), 0 when nothing needs recording. */
typedef int (*ai_custom_backward)(void *ctx, int output, ai_tensor *g, int nin, ai_tensor **gin);
int ai_record_custom(ai_tensor *out, int nin, ai_tensor **ins, ai_custom_backward fn, void (*release)(void *ctx),
                     void *ctx, int output);

/* Gradient-ready hooks: during ai_backward, fn(ctx, leaf) runs as soon as leaf->grad holds every
 * contribution of that pass (before the rest of the graph is done), so that data-parallel
 * training can start reducing gradients while backward goes on. Not called by ai_grad. A leaf
 * has at most one hook: setting one where another ctx holds it is an error; clearing removes it
 * only for the ctx that set it. The hook must not raise or free tensors of the graph. */
typedef void (*ai_grad_hook_fn)(void *ctx, ai_tensor *leaf);
int ai_set_grad_hook(ai_tensor *leaf, ai_grad_hook_fn fn, void *ctx);
void ai_clear_grad_hook(ai_tensor *leaf, void *ctx);
/* Inside a hook: whether the running backward reaches this hooked leaf at all (a leaf it does
 * not reach gets no hook call in that pass). */
bool ai_grad_hook_reached(const ai_tensor *leaf);

#endif
