/* ops.h: the op registry. Every op of the core is one row of one X-macro list below; the op
 * enums, the names, the dispatch switches of the elementwise kernels, what a forward saves for
 * backward, the autograd table (ai_rules, graph.h) and the Lua bindings of the elementwise ops
 * (src/lua/l_ops.c) are all generated from these rows, so nothing has to be kept in line by
 * hand. Adding an op is: its row here, its kernel, its rule, and its doc line (the README's
 * "Architecture" section says exactly where each goes).
 *
 * Every row starts with the same four columns:
 *   NAME   the enum suffix (AI_OP_NAME in the autograd table; AI_NAME for the elementwise enums)
 *   name   the name users see (the Lua function, the doc key, the kernel stem)
 *   args   the member of the node's argument union (graph.h) that the forward writes and the
 *          rule reads: none, act, reduce, dim, slice, permute, conv, pool, linmap, norm, custom
 *   grad   GRAD: recorded, with a rule NAME_bw (grad_rules.c) that records its own graph, so
 *          it differentiates again (double backward); GRAD1: recorded, first-order rule only;
 *          NOGRAD: never recorded (comparisons, rounding: no useful gradient)
 * Family columns follow.
 */
#ifndef AI_OPS_H
#define AI_OPS_H

/* Binary elementwise ops, with numpy broadcasting. Family columns:
 *   kind   ARITH: the result has the promoted dtype; FLOAT: integer operands are computed in
 *          f32 (div, atan2); COMPARE: the result is u8 (0/1)
 *   saves  what the rule needs: NOTHING, or INPUTS (both operands, as computed)
 *   inplace  INPLACE: there is an in-place method name_ (x:add_(y)); OUTOFPLACE: there is not
 * Kernels: bk_<name>_f (floats) and, unless kind is FLOAT, bk_<name>_i (integers), in
 * elementwise.c. */
#define AI_BINARY_OPS(X)                                                \
  X(ADD, add, none, GRAD, ARITH, NOTHING, INPLACE)                      \
  X(SUB, sub, none, GRAD, ARITH, NOTHING, INPLACE)                      \
  X(MUL, mul, none, GRAD, ARITH, INPUTS, INPLACE)                       \
  X(DIV, div, none, GRAD, FLOAT, INPUTS, INPLACE)                       \
  X(POW, pow, none, GRAD, ARITH, INPUTS, INPLACE)                       \
  X(REM, remainder, none, GRAD, ARITH, INPUTS, INPLACE)                 \
  X(MAXIMUM, maximum, none, GRAD, ARITH, INPUTS, INPLACE)               \
  X(MINIMUM, minimum, none, GRAD, ARITH, INPUTS, INPLACE)               \
  X(ATAN2, atan2, none, GRAD, FLOAT, INPUTS, OUTOFPLACE)                \
  X(FLOOR_DIVIDE, floor_divide, none, NOGRAD, ARITH, NOTHING, OUTOFPLACE) \
  X(LOGADDEXP, logaddexp, none, GRAD, FLOAT, INPUTS, OUTOFPLACE)        \
  X(HYPOT, hypot, none, GRAD, FLOAT, INPUTS, OUTOFPLACE)                \
  X(EQ, eq, none, NOGRAD, COMPARE, NOTHING, OUTOFPLACE)                 \
  X(NE, ne, none, NOGRAD, COMPARE, NOTHING, OUTOFPLACE)                 \
  X(LT, lt, none, NOGRAD, COMPARE, NOTHING, OUTOFPLACE)                 \
  X(LE, le, none, NOGRAD, COMPARE, NOTHING, OUTOFPLACE)                 \
  X(GT, gt, none, NOGRAD, COMPARE, NOTHING, OUTOFPLACE)                 \
  X(GE, ge, none, NOGRAD, COMPARE, NOTHING, OUTOFPLACE)                 \
  X(AND, logical_and, none, NOGRAD, COMPARE, NOTHING, OUTOFPLACE)       \
  X(OR, logical_or, none, NOGRAD, COMPARE, NOTHING, OUTOFPLACE)

/* Unary elementwise ops. Family columns:
 *   ints   KEEP: an integer tensor keeps its dtype (there is an integer kernel); FLOAT: an
 *          integer tensor is computed in f32; BOOL: the result is u8 (0/1)
 *   saves  what the rule needs: NOTHING, INPUT (x) or OUTPUT (y, saved as a detached alias)
 * Kernels: uk_<name>_f32 and uk_<name>_f64 and, unless ints is FLOAT, uk_<name>_int, in
 * elementwise.c. */
#define AI_UNARY_OPS(X)                                 \
  X(NEG, neg, none, GRAD, KEEP, NOTHING)                \
  X(ABS, abs, none, GRAD, KEEP, INPUT)                  \
  X(SIGN, sign, none, NOGRAD, KEEP, NOTHING)            \
  X(EXP, exp, none, GRAD, FLOAT, OUTPUT)                \
  X(LOG, log, none, GRAD, FLOAT, INPUT)                 \
  X(LOG1P, log1p, none, GRAD, FLOAT, INPUT)             \
  X(EXPM1, expm1, none, GRAD, FLOAT, OUTPUT)            \
  X(SQRT, sqrt, none, GRAD, FLOAT, OUTPUT)              \
  X(RSQRT, rsqrt, none, GRAD, FLOAT, OUTPUT)            \
  X(SIN, sin, none, GRAD, FLOAT, INPUT)                 \
  X(COS, cos, none, GRAD, FLOAT, INPUT)                 \
  X(TANH, tanh, none, GRAD, FLOAT, OUTPUT)              \
  X(SIGMOID, sigmoid, none, GRAD, FLOAT, OUTPUT)        \
  X(RELU, relu, none, GRAD, KEEP, INPUT)                \
  X(SILU, silu, none, GRAD, FLOAT, INPUT)               \
  X(GELU, gelu, none, GRAD, FLOAT, INPUT)               \
  X(FLOOR, floor, none, NOGRAD, KEEP, NOTHING)          \
  X(CEIL, ceil, none, NOGRAD, KEEP, NOTHING)            \
  X(ROUND, round, none, NOGRAD, KEEP, NOTHING)          \
  X(NOT, logical_not, none, NOGRAD, BOOL, NOTHING)      \
  X(RECIPROCAL, reciprocal, none, GRAD, FLOAT, OUTPUT)  \
  X(SQUARE, square, none, GRAD, KEEP, INPUT)            \
  X(LOG2, log2, none, GRAD, FLOAT, INPUT)               \
  X(ERF, erf, none, GRAD, FLOAT, INPUT)                 \
  X(TAN, tan, none, GRAD, FLOAT, OUTPUT)                \
  X(ASIN, asin, none, GRAD, FLOAT, INPUT)               \
  X(ACOS, acos, none, GRAD, FLOAT, INPUT)               \
  X(ATAN, atan, none, GRAD, FLOAT, INPUT)               \
  X(SINH, sinh, none, GRAD, FLOAT, INPUT)               \
  X(COSH, cosh, none, GRAD, FLOAT, INPUT)               \
  X(ASINH, asinh, none, GRAD, FLOAT, INPUT)             \
  X(ACOSH, acosh, none, GRAD, FLOAT, INPUT)             \
  X(ATANH, atanh, none, GRAD, FLOAT, INPUT)             \
  X(ERFINV, erfinv, none, GRAD, FLOAT, OUTPUT)          \
  X(LGAMMA, lgamma, none, GRAD, FLOAT, INPUT)           \
  X(DIGAMMA, digamma, none, GRAD1, FLOAT, INPUT)        \
  X(TRIGAMMA, trigamma, none, NOGRAD, FLOAT, NOTHING)   \
  X(ISNAN, isnan, none, NOGRAD, BOOL, NOTHING)          \
  X(ISINF, isinf, none, NOGRAD, BOOL, NOTHING)          \
  X(ISFINITE, isfinite, none, NOGRAD, BOOL, NOTHING)

/* Reductions over all elements or a set of dims (ai_reduce, reduce.c): X(RNAME, name, ROW,
 * saves) with ROW the autograd row that records it (max and min share AMAX's rule) and saves
 * NOTHING or INOUT (the input and the output). Not autograd rows themselves. */
#define AI_REDUCE_OPS(X)                                \
  X(RSUM, sum, SUM, NOTHING)                            \
  X(RMEAN, mean, MEAN, NOTHING)                         \
  X(RPROD, prod, PROD, INOUT)                           \
  X(RMAX, max, AMAX, INOUT)                             \
  X(RMIN, min, AMAX, INOUT)                             \
  X(RLOGSUMEXP, logsumexp, LOGSUMEXP, INOUT)

/* Tensor ops with a rule of their own: parameterised activations, reductions, linear algebra,
 * views, copies, joining and indexing (elementwise.c, reduce.c, matmul.c, tensor.c, index.c). */
#define AI_TENSOR_OPS(X)                                \
  X(LEAKY_RELU, leaky_relu, act, GRAD)                  \
  X(SOFTPLUS, softplus, act, GRAD)                      \
  X(CLAMP, clamp, act, GRAD)                            \
  X(WHERE, where, none, GRAD)                           \
  X(MASKED_FILL, masked_fill, none, GRAD)               \
  X(SUM, sum, reduce, GRAD)                             \
  X(MEAN, mean, reduce, GRAD)                           \
  X(PROD, prod, reduce, GRAD)                           \
  X(AMAX, amax, reduce, GRAD)                           \
  X(LOGSUMEXP, logsumexp, reduce, GRAD)                 \
  X(NORM, norm, reduce, GRAD)                           \
  X(MAX_DIM, max_dim, dim, GRAD)                        \
  X(CUMSUM, cumsum, dim, GRAD)                          \
  X(CUMPROD, cumprod, dim, GRAD)                        \
  X(MATMUL, matmul, none, GRAD)                         \
  X(VIEW, view, none, GRAD)                             \
  X(PERMUTE, permute, permute, GRAD)                    \
  X(SLICE, slice, slice, GRAD)                          \
  X(SELECT, select, slice, GRAD)                        \
  X(EXPAND, expand, none, GRAD)                         \
  X(SLICE_BACKWARD, slice_backward, slice, GRAD)        \
  X(CLONE, clone, none, GRAD)                           \
  X(TO_DTYPE, to_dtype, none, GRAD)                     \
  X(CAT, cat, dim, GRAD)                                \
  X(INDEX_SELECT, index_select, dim, GRAD)              \
  X(GATHER, gather, dim, GRAD)                          \
  X(SCATTER, scatter, dim, GRAD)                        \
  X(INDEX_ADD, index_add, dim, GRAD)                    \
  X(CUSTOM, custom, custom, GRAD)

/* Neural-network ops with fused kernels (src/kernels, through nn.c) and their rules
 * (grad_rules_nn.inc). An op and its adjoint (NAME_BACKWARD) sit next to each other: the
 * linear maps differentiate into each other any number of times. */
#define AI_NN_OPS(X)                                                    \
  X(LINEAR, linear, none, GRAD)                                         \
  X(CONV2D, conv2d, conv, GRAD)                                         \
  X(CONV_TRANSPOSE2D, conv_transpose2d, conv, GRAD)                     \
  X(CONV2D_WEIGHT_GRAD, conv2d_weight_grad, conv, GRAD)                 \
  X(MAX_POOL2D, max_pool2d, pool, GRAD1)                                \
  X(AVG_POOL2D, avg_pool2d, linmap, GRAD)                               \
  X(AVG_POOL2D_BACKWARD, avg_pool2d_backward, linmap, GRAD)             \
  X(ADAPTIVE_AVG_POOL2D, adaptive_avg_pool2d, linmap, GRAD)             \
  X(ADAPTIVE_AVG_POOL2D_BACKWARD, adaptive_avg_pool2d_backward, linmap, GRAD) \
  X(UPSAMPLE, upsample, linmap, GRAD)                                   \
  X(UPSAMPLE_BACKWARD, upsample_backward, linmap, GRAD)                 \
  X(PAD, pad, linmap, GRAD)                                             \
  X(PAD_BACKWARD, pad_backward, linmap, GRAD)                           \
  X(BATCH_NORM, batch_norm, norm, GRAD)                                 \
  X(GROUP_NORM, group_norm, norm, GRAD)                                 \
  X(LAYER_NORM, layer_norm, norm, GRAD)                                 \
  X(SOFTMAX, softmax, dim, GRAD)                                        \
  X(LOG_SOFTMAX, log_softmax, dim, GRAD)                                \
  X(BCE_LOSS, bce_loss, none, GRAD)

/* Every op of the autograd table, family by family. A macro used with it takes the four
 * common columns and ignores the rest: #define X(NAME, name, args, grad, ...) */
#define AI_OP_LIST(X) AI_BINARY_OPS(X) AI_UNARY_OPS(X) AI_TENSOR_OPS(X) AI_NN_OPS(X)

#endif
