/* ops.c: the op registry (ops.h) as data: the names of the elementwise and reduction ops and
 * one description per autograd row, all generated from the registry's lists. */
#include "graph.h"

#define NAME_ROW(NAME, name, ...) [AI_##NAME] = #name,
const char *const ai_binop_names[AI_NBINARY] = {AI_BINARY_OPS(NAME_ROW)};
const char *const ai_unop_names[AI_NUNARY] = {AI_UNARY_OPS(NAME_ROW)};
const char *const ai_redop_names[AI_NREDUCE] = {AI_REDUCE_OPS(NAME_ROW)};
#undef NAME_ROW

#define RECORDED_GRAD 1
#define RECORDED_GRAD1 1
#define RECORDED_NOGRAD 0
#define IS_INPLACE_INPLACE 1
#define IS_INPLACE_OUTOFPLACE 0
#define INFO(NAME, name, args, grad, family, dtypes, inplace)                                 \
  [AI_OP_##NAME] = {#NAME, #name, family, dtypes, RECORDED_##grad, AI_DOUBLE_BACKWARD_##grad, \
                    inplace},
#define AI_DOUBLE_BACKWARD_GRAD 1
#define AI_DOUBLE_BACKWARD_GRAD1 0
#define AI_DOUBLE_BACKWARD_NOGRAD 0
#define BINARY_INFO(NAME, name, args, grad, kind, saves, inplace) \
  INFO(NAME, name, args, grad, "binary", #kind, IS_INPLACE_##inplace)
#define UNARY_INFO(NAME, name, args, grad, ints, saves) INFO(NAME, name, args, grad, "unary", #ints, 0)
#define TENSOR_INFO(NAME, name, args, grad) INFO(NAME, name, args, grad, "tensor", "", 0)
#define NN_INFO(NAME, name, args, grad) INFO(NAME, name, args, grad, "nn", "", 0)
const ai_op_info ai_op_table[AI_NOPS] = {AI_BINARY_OPS(BINARY_INFO) AI_UNARY_OPS(UNARY_INFO)
                                         AI_TENSOR_OPS(TENSOR_INFO) AI_NN_OPS(NN_INFO)};
const int ai_op_count = AI_NOPS;

/* graph.h's ai_binop_row and ai_unop_row rely on this: the binary rows open the autograd
 * table and the unary rows follow, each in the order of its own enum. */
#define BIN_ORDER(NAME, ...) _Static_assert((int)AI_OP_##NAME == (int)AI_##NAME, "binary rows out of order");
#define UN_ORDER(NAME, ...) \
  _Static_assert((int)AI_OP_##NAME == (int)AI_NBINARY + (int)AI_##NAME, "unary rows out of order");
AI_BINARY_OPS(BIN_ORDER)
AI_UNARY_OPS(UN_ORDER)
