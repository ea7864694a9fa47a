/* graph.h: internals of autograd shared by the ops and the engine: the op table, the nodes
 * recorded by forward ops, and the helpers ops use to record themselves. */
#ifndef AI_GRAPH_H
#define AI_GRAPH_H

#include "ai.h"

/* One row per differentiable op: NAME, and whether its backward rule is itself differentiable
 * (written with recording ops) so that create_graph=true works through it. The rules live in
 * grad_rules.c; un-broadcasting and accumulation live only in the engine (autograd.c). */
#define AI_OP_LIST(X)                                                                    \
  X(ADD, 1) X(SUB, 1) X(MUL, 1) X(DIV, 1) X(POW, 1) X(REM, 1) X(MAXIMUM, 1) X(MINIMUM, 1) \
  X(ATAN2, 1)                                                                            \
  X(NEG, 1) X(ABS, 1) X(EXP, 1) X(LOG, 1) X(LOG1P, 1) X(EXPM1, 1) X(SQRT, 1) X(RSQRT, 1) \
  X(SIN, 1) X(COS, 1) X(TANH, 1) X(SIGMOID, 1) X(RELU, 1) X(SILU, 1) X(GELU, 1)          \
  X(RECIPROCAL, 1) X(SQUARE, 1) X(LOG2, 1) X(ERF, 1)                                    \
  X(LEAKY_RELU, 1) X(SOFTPLUS, 1) X(CLAMP, 1) X(WHERE, 1) X(MASKED_FILL, 1)              \
  X(SUM, 1) X(MEAN, 1) X(PROD, 1) X(AMAX, 1) X(LOGSUMEXP, 1) X(NORM, 1)        \
  X(MAX_DIM, 1) X(CUMSUM, 1) X(CUMPROD, 1)                                               \
  X(MATMUL, 1) X(VIEW, 1) X(PERMUTE, 1) X(SLICE, 1) X(SELECT, 1) X(EXPAND, 1)            \
  X(SLICE_BACKWARD, 1) X(CLONE, 1) X(TO_DTYPE, 1) X(CAT, 1) X(INDEX_SELECT, 1)           \
  X(GATHER, 1) X(SCATTER, 1) X(INDEX_ADD, 1) \
  AI_OP_LIST_NN(X)

/* Rows of the neural-network ops; their forwards are in nn.c, rules in grad_rules_nn.inc. */
#define AI_OP_LIST_NN(X)                                                                  \
  X(LINEAR, 1) X(CONV2D, 1) X(CONV_TRANSPOSE2D, 1) X(CONV2D_WEIGHT_GRAD, 1)              \
  X(MAX_POOL2D, 0) X(AVG_POOL2D, 1) X(AVG_POOL2D_BACKWARD, 1) X(ADAPTIVE_AVG_POOL2D, 1)  \
  X(ADAPTIVE_AVG_POOL2D_BACKWARD, 1) X(UPSAMPLE, 1) X(UPSAMPLE_BACKWARD, 1) X(PAD, 1)    \
  X(PAD_BACKWARD, 1) X(BATCH_NORM, 1) X(GROUP_NORM, 1) X(LAYER_NORM, 1) X(SOFTMAX, 1)    \
  X(LOG_SOFTMAX, 1)

typedef enum {
#define X(name, dbl) AI_OP_##name,
  AI_OP_LIST(X)
#undef X
  AI_NOPS
} ai_opid;

typedef struct {
  ai_node *fn;       /* producer of this input, or NULL */
  ai_tensor *leaf;   /* a leaf that requires grad, or NULL */
  int ndim;
  int64_t shape[AI_MAXDIM];
  ai_dtype dtype;
} ai_input;

typedef struct {
  ai_tensor *t;      /* an input (own ref, keeps its grad_fn) or a detached alias of the output */
  unsigned version;
  bool is_output;
} ai_saved;

#define AI_MAXSAVED 6

struct ai_node {
  int refs;
  ai_opid op;
  int nin, nsaved;
  bool freed;                 /* saved tensors released by a backward without retain_graph */
  ai_saved saved[AI_MAXSAVED];
  double f[4];                /* op arguments */
  int64_t i[12];
  int64_t *extra;             /* variable-length arguments (e.g. cat sizes), freed with the node */
  /* engine scratch */
  ai_tensor *gbuf;
  int deps;
  unsigned mark;
  ai_input in[];
};

/* A leaf's gradient-ready hook; pending counts the edges into the leaf that the current
 * backward (generation mark) has yet to process. */
struct ai_grad_hook {
  ai_grad_hook_fn fn;
  void *ctx;
  unsigned mark;
  int pending;
};

typedef int (*ai_rule)(ai_node *n, ai_tensor *g, ai_tensor **gin);
extern const ai_rule ai_rules[AI_NOPS];
extern const char *const ai_op_names[AI_NOPS];
extern const bool ai_op_double_backward[AI_NOPS];

/* Records op producing `out` from inputs ins[0..nin). *node is NULL when nothing needs
 * recording (grad disabled or no input requires grad). Returns -1 on allocation failure. */
int ai_record(ai_node **node, ai_opid op, ai_tensor *out, int nin, ai_tensor **ins);
int ai_save(ai_node *n, ai_tensor *t);        /* saves an input (or any tensor) */
int ai_save_output(ai_node *n, ai_tensor *out);
/* A saved tensor (new ref), checked against in-place changes since it was saved. */
ai_tensor *ai_saved_get(ai_node *n, int k);
void ai_node_unref(ai_node *n);
/* Does input k of n need a gradient? */
static inline bool ai_needs_grad(const ai_node *n, int k) { return n->in[k].fn || n->in[k].leaf; }
/* True while the engine runs a backward with create_graph (rules may then not use raw kernels). */
bool ai_create_graph_active(void);

/* Tensor allocation helpers shared by the op files. */
ai_tensor *ai_new_like_shape(ai_dtype dt, int ndim, const int64_t *shape);
void ai_bump_version(ai_tensor *t);
int ai_check_inplace(ai_tensor *t, const char *fn);

/* C = A B + beta C on BLAS, split over the OpenMP threads (matmul.c). */
void ai_gemm(ai_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void *A,
             int64_t lda, const void *B, int64_t ldb, double beta, void *C, int64_t ldc);

/* The linear geometric maps of nn.c (pooling, upsampling, padding) and their adjoints. */
ai_tensor *ai_linmap(ai_opid fwd, bool adjoint, ai_tensor *in, const int64_t *gi, const double *gf);

/* g times an activation's derivative in one pass, not recorded (elementwise.c); used by the
 * rules when no graph is being recorded. v is the activation's input x or its output y. */
typedef enum {
  AI_ACTGRAD_SILU,       /* v = x: g s (1 + x (1 - s)), s = sigmoid(x) */
  AI_ACTGRAD_SIGMOID_Y,  /* v = y: g y (1 - y) */
  AI_ACTGRAD_TANH_Y,     /* v = y: g (1 - y^2) */
  AI_ACTGRAD_RELU,       /* v = x: x > 0 ? g : 0 */
  AI_ACTGRAD_LEAKY,      /* v = x: x > 0 ? g : g slope */
} ai_actgrad_kind;
ai_tensor *ai_activation_grad(ai_tensor *g, ai_tensor *v, ai_actgrad_kind kind, double slope);

/* Op dispatch helpers for the unary math ops (elementwise.c). */
ai_tensor *ai_unary_nograd(ai_unop op, ai_tensor *a);

#endif
