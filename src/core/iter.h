/* iter.h: strided N-d iteration over up to 4 operands of one (broadcast) shape.
 * Dims are coalesced where the layout allows, and the innermost dim is handed to a row
 * function with byte strides, so kernels write one tight loop with fast paths for the
 * contiguous and scalar-broadcast cases (as PyTorch's TensorIterator does). */
#ifndef AI_ITER_H
#define AI_ITER_H

#include "ai.h"

#define AI_ITER_MAXOPS 4

typedef struct {
  int nops, ndim;
  int64_t shape[AI_MAXDIM];
  int64_t st[AI_ITER_MAXOPS][AI_MAXDIM]; /* byte strides */
  char *base[AI_ITER_MAXOPS];
} ai_iter;

/* p[k] points at the first element of operand k for this row, st[k] its byte stride. */
typedef void (*ai_rowfn)(char **p, const int64_t *st, int64_t n, void *ctx);

void ai_iter_init(ai_iter *it, int ndim, const int64_t *shape);
/* Adds t as the next operand, broadcasting its shape (right-aligned) to the iterator's. */
void ai_iter_add(ai_iter *it, const ai_tensor *t);
/* Runs fn over all rows; with OpenMP when the work is large enough. Coalesces first. */
void ai_iter_run(ai_iter *it, ai_rowfn fn, void *ctx);

/* Hot row kernels get an AVX2+FMA clone next to the baseline x86-64 one, picked at load time
 * (the build targets baseline x86-64, where exp and friends vectorise only 4-wide, badly). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(AI_NO_CLONES)
#define AI_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define AI_CLONES
#endif

/* Elements below which kernels stay on one thread. */
#define AI_PAR_MIN 32768

#endif
