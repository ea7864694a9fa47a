/* graph.h: internals of autograd shared by the ops and the engine: the op table, the nodes
 * recorded by forward ops, and the helpers ops use to record themselves. */
#ifndef AI_GRAPH_H
#define AI_GRAPH_H

#include "ai.h"

/* The autograd table has one row per op of the registry (ops.h): AI_OP_ADD ... AI_OP_LOG_SOFTMAX.
 * Rows marked NOGRAD exist but are never recorded. */
#define AI_OPID(NAME, name, args, grad, ...) AI_OP_##NAME,
typedef enum { AI_OP_LIST(AI_OPID) AI_NOPS } ai_opid;
#undef AI_OPID
/* The elementwise families open the table in their enums' order (ops.c checks it). */
static inline ai_opid ai_binop_row(ai_binop op) { return (ai_opid)op; }
static inline ai_opid ai_unop_row(ai_unop op) { return (ai_opid)(AI_NBINARY + (int)op); }

/* ---- the arguments a forward keeps in its node for the rule: one struct per kind, named by
 * the `args` column of the op's row; AI_ARGS(n, NAME) is that member of node n ---- */
typedef struct { double a, b; } ai_act_args; /* LEAKY_RELU: slope; SOFTPLUS: beta, threshold; CLAMP: min, max */
typedef struct {
  unsigned dims; /* bitmask of the reduced 0-based dims (every dim for a full reduction) */
  bool keepdim;
  double p;      /* NORM: the order */
} ai_reduce_args;
typedef struct {
  int dim;
  bool keepdim;  /* MAX_DIM */
  bool add;      /* SCATTER: scatter_add */
} ai_dim_args;   /* also CAT (its sizes in node->extra), softmax, index ops */
typedef struct { int dim; int64_t start, step; } ai_slice_args; /* SELECT: start is the index */
typedef struct { int perm[AI_MAXDIM]; } ai_permute_args;
typedef struct { ai_conv_opts o; int R, S; } ai_conv_args; /* R x S: CONV2D_WEIGHT_GRAD's kernel */
typedef struct { int kernel[2], stride[2], pad[2], dil[2]; bool ceil_mode; } ai_pool_args;
/* The linear geometric maps of nn.c (ai_linmap): H x W planes in, P x Q out. */
typedef struct {
  int H, W, P, Q;
  int kernel[2], stride[2], pad[2]; /* AVG_POOL2D */
  bool ceil_mode, count_include_pad;
  int mode;                         /* UPSAMPLE: 0 nearest, 1 bilinear */
  bool align_corners;
  double scale_h, scale_w;          /* UPSAMPLE: the scale factors given (0: from the sizes) */
  int left, right, top, bottom;     /* PAD */
  ai_pad_mode pad_mode;
} ai_linmap_args;
typedef struct {
  double eps;
  bool training; /* BATCH_NORM */
  int groups;    /* GROUP_NORM */
  int ndims;     /* LAYER_NORM: the normalised trailing dims */
} ai_norm_args;
typedef struct {
  ai_custom_backward fn; /* an op whose rule the caller gives (ai_record_custom) */
  void (*release)(void *ctx);
  void *ctx;
  int output;
} ai_custom_args;
typedef union {
  char none;
  ai_custom_args custom;
  ai_act_args act;
  ai_reduce_args reduce;
  ai_dim_args dim;
  ai_slice_args slice;
  ai_permute_args permute;
  ai_conv_args conv;
  ai_pool_args pool;
  ai_linmap_args linmap;
  ai_norm_args norm;
} ai_node_args;

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
  ai_node_args arg;           /* the op's arguments: AI_ARGS(n, NAME) */
  struct ai_tensor_hook *hooks; /* gradient hooks of the tensor this node made (register_hook) */
  int64_t *extra;             /* variable-length arguments (e.g. cat sizes), freed with the node */
  /* engine scratch */
  ai_tensor *gbuf;
  int deps;
  unsigned mark;
  ai_input in[];
};

/* Gradient hooks (ai_add_tensor_hook): a list on a node (for the tensor it made) or on a leaf,
 * whose contributions of one backward pass are collected in acc until the last of them came
 * (pending, in the pass marked `mark`), then hooked and added to .grad. */
typedef struct ai_tensor_hook {
  ai_tensor_hook_fn fn;
  void *ctx;
  void (*release)(void *ctx);
  struct ai_tensor_hook *next;
} ai_tensor_hook;
struct ai_leaf_hooks {
  ai_tensor_hook *list;
  ai_tensor *acc;
  unsigned mark;
  int pending;
};
void ai_free_tensor_hooks(ai_tensor_hook *h);
void ai_forget_retained(ai_tensor *t); /* a tensor with retain_grad is going */

/* A leaf's gradient-ready hook; pending counts the edges into the leaf that the current
 * backward (generation mark) has yet to process. */
struct ai_grad_hook {
  ai_grad_hook_fn fn;
  void *ctx;
  unsigned mark;
  int pending;
};

/* Typed access to a node's arguments: the member that the op's row names. */
#define AI_ARGS_FN(NAME, name, args, grad, ...) \
  static inline __typeof__(((ai_node *)0)->arg.args) *ai_args_##NAME(ai_node *n) { return &n->arg.args; }
AI_OP_LIST(AI_ARGS_FN)
#undef AI_ARGS_FN
#define AI_ARGS(n, NAME) ai_args_##NAME(n)

/* A rule fills gin[i] for the inputs that need a gradient (grad_rules.c); NULL for NOGRAD rows. */
typedef int (*ai_rule)(ai_node *n, ai_tensor *g, ai_tensor **gin);
extern const ai_rule ai_rules[AI_NOPS];
/* The op's name as grad_fn shows it ("ADD", "CONV2D"). */
static inline const char *ai_op_name(ai_opid op) { return ai_op_table[op].NAME; }

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
ai_tensor *ai_linmap(ai_opid fwd, bool adjoint, ai_tensor *in, const ai_linmap_args *a);

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
