/* iter.c: the N-d strided iterator shared by copy, elementwise and reduction kernels. */
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "iter.h"

void ai_iter_init(ai_iter *it, int ndim, const int64_t *shape) {
  memset(it, 0, sizeof *it);
  it->ndim = ndim;
  for (int d = 0; d < ndim; d++) it->shape[d] = shape[d];
}

void ai_iter_add(ai_iter *it, const ai_tensor *t) {
  int k = it->nops++;
  int64_t es = (int64_t)ai_dtype_sizes[t->dtype];
  int off = it->ndim - t->ndim;
  for (int d = 0; d < it->ndim; d++) {
    int td = d - off;
    it->st[k][d] = (td < 0 || t->shape[td] == 1) ? 0 : t->stride[td] * es;
  }
  it->base[k] = ai_data(t);
}

/* Drops size-1 dims and merges neighbours whose strides chain for every operand. */
static void coalesce(ai_iter *it) {
  int nd = 0;
  for (int d = 0; d < it->ndim; d++) {
    if (it->shape[d] == 1) continue;
    if (nd > 0) {
      bool merge = true;
      for (int k = 0; k < it->nops; k++)
        if (it->st[k][nd - 1] != it->st[k][d] * it->shape[d]) { merge = false; break; }
      if (merge) {
        it->shape[nd - 1] *= it->shape[d];
        for (int k = 0; k < it->nops; k++) it->st[k][nd - 1] = it->st[k][d];
        continue;
      }
    }
    it->shape[nd] = it->shape[d];
    for (int k = 0; k < it->nops; k++) it->st[k][nd] = it->st[k][d];
    nd++;
  }
  if (nd == 0) { /* a single element */
    it->shape[0] = 1;
    for (int k = 0; k < it->nops; k++) it->st[k][0] = 0;
    nd = 1;
  }
  it->ndim = nd;
}

/* Runs rows [r0, r1) of the outer dims, each row split to [c0, c0+len) of the inner dim. */
static void run_rows(const ai_iter *it, int64_t r0, int64_t r1, int64_t c0, int64_t len,
                     ai_rowfn fn, void *ctx) {
  int nd = it->ndim, inner = nd - 1;
  int64_t st[AI_ITER_MAXOPS];
  for (int k = 0; k < it->nops; k++) st[k] = it->st[k][inner];
  for (int64_t r = r0; r < r1; r++) {
    char *p[AI_ITER_MAXOPS];
    int64_t rem = r;
    for (int k = 0; k < it->nops; k++) p[k] = it->base[k] + c0 * st[k];
    for (int d = inner - 1; d >= 0; d--) {
      int64_t i = rem % it->shape[d];
      rem /= it->shape[d];
      for (int k = 0; k < it->nops; k++) p[k] += i * it->st[k][d];
    }
    fn(p, st, len, ctx);
  }
}

void ai_iter_run(ai_iter *it, ai_rowfn fn, void *ctx) {
  coalesce(it);
  int64_t inner = it->shape[it->ndim - 1], rows = 1;
  for (int d = 0; d < it->ndim - 1; d++) rows *= it->shape[d];
  int64_t total = rows * inner;
  if (total == 0) return;
#ifdef _OPENMP
  int nt = omp_get_max_threads();
  if (total >= AI_PAR_MIN && nt > 1) {
    if (rows >= nt * 4 || inner < 4096) {
#pragma omp parallel for schedule(static)
      for (int64_t r = 0; r < rows; r++) run_rows(it, r, r + 1, 0, inner, fn, ctx);
    } else {
      /* few long rows: split each row into chunks so every thread gets work */
      int64_t chunk = (inner + nt - 1) / nt;
      chunk = (chunk + 63) & ~(int64_t)63;
      int64_t nchunks = (inner + chunk - 1) / chunk, tasks = rows * nchunks;
#pragma omp parallel for schedule(static)
      for (int64_t t = 0; t < tasks; t++) {
        int64_t r = t / nchunks, c0 = (t % nchunks) * chunk;
        int64_t len = inner - c0 < chunk ? inner - c0 : chunk;
        run_rows(it, r, r + 1, c0, len, fn, ctx);
      }
    }
    return;
  }
#endif
  run_rows(it, 0, rows, 0, inner, fn, ctx);
}
