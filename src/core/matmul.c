/* matmul.c: matrix products (dot, matrix-vector, matrix, batched with broadcast batch dims)
 * on OpenBLAS, with the work split over OpenMP threads each running a single-threaded gemm. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "graph.h"

/* How a 2-D strided matrix is handed to BLAS without a copy, if at all. */
static bool blas_layout(int64_t rows, int64_t cols, int64_t s0, int64_t s1, bool *trans, int64_t *ld) {
  if ((s1 == 1 || cols == 1) && s0 >= (cols > 1 ? cols : 1)) { *trans = false; *ld = s0 > 0 ? s0 : 1; return true; }
  if ((s0 == 1 || rows == 1) && s1 >= (rows > 1 ? rows : 1)) { *trans = true; *ld = s1 > 0 ? s1 : 1; return true; }
  return false;
}

/* C (M x N, row-major, ldc = N) = A (M x K) B (K x N); one thread. */
static void gemm1(ai_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void *A,
                  int64_t lda, const void *B, int64_t ldb, double beta, void *C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    if (beta == 0)
      for (int64_t i = 0; i < M; i++) memset((char *)C + i * ldc * (int64_t)ai_dtype_sizes[dt], 0, (size_t)N * ai_dtype_sizes[dt]);
    return;
  }
  if (dt == AI_F32)
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)M, (int)N, (int)K, 1.0f, A, (int)lda, B, (int)ldb, (float)beta, C, (int)ldc);
  else
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)M, (int)N, (int)K, 1.0, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

static void gemm_threads(ai_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void *Av,
                         int64_t lda, const void *Bv, int64_t ldb, double beta, void *Cv, int64_t ldc);

/* Products of more than 2^31 multiply-adds (a second or more here) go in row blocks, with an
 * interrupt check between them (Ctrl-C in the REPL): the caller sees ai_interrupt_pending(). The
 * blocks leave each element's sum as it was. */
#define GEMM_BLOCK_WORK (1LL << 31)

void ai_gemm(ai_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void *Av,
             int64_t lda, const void *Bv, int64_t ldb, double beta, void *Cv, int64_t ldc) {
  int64_t work = M * N * (K ? K : 1), es = (int64_t)ai_dtype_sizes[dt];
  if (work <= GEMM_BLOCK_WORK || M < 128) {
    gemm_threads(dt, ta, tb, M, N, K, Av, lda, Bv, ldb, beta, Cv, ldc);
    return;
  }
  int64_t rows = GEMM_BLOCK_WORK / (N * (K ? K : 1));
  if (rows < 64) rows = 64;
  for (int64_t r0 = 0; r0 < M && !ai_interrupt_pending(); r0 += rows) {
    int64_t m = M - r0 < rows ? M - r0 : rows;
    const char *Ap = (const char *)Av + (ta ? r0 : r0 * lda) * es;
    gemm_threads(dt, ta, tb, m, N, K, Ap, lda, Bv, ldb, beta, (char *)Cv + r0 * ldc * es, ldc);
  }
}

/* Splits one gemm over the threads by rows of C (or columns when M is small). */
static void gemm_threads(ai_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void *Av,
                         int64_t lda, const void *Bv, int64_t ldb, double beta, void *Cv, int64_t ldc) {
  const char *A = Av, *B = Bv;
  char *C = Cv;
  int64_t es = (int64_t)ai_dtype_sizes[dt];
  int nt = 1;
#ifdef _OPENMP
  nt = omp_get_max_threads();
#endif
  if (nt <= 1 || M * N * K < 64 * 64 * 64) {
    gemm1(dt, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  bool by_rows = M >= N || M >= 64 * nt;
#pragma omp parallel num_threads(nt)
  {
    int t = 0;
#ifdef _OPENMP
    t = omp_get_thread_num();
#endif
    int64_t total = by_rows ? M : N, chunk = (total + nt - 1) / nt;
    int64_t lo = t * chunk, hi = lo + chunk < total ? lo + chunk : total;
    if (lo < hi) {
      if (by_rows) { /* rows lo..hi of A (row i at A + i*lda, or column i when transposed) */
        const char *Ap = A + (ta ? lo : lo * lda) * es;
        gemm1(dt, ta, tb, hi - lo, N, K, Ap, lda, B, ldb, beta, C + lo * ldc * es, ldc);
      } else {
        const char *Bp = B + (tb ? lo * ldb : lo) * es;
        gemm1(dt, ta, tb, M, hi - lo, K, A, lda, Bp, ldb, beta, C + lo * es, ldc);
      }
    }
  }
}

static void int_matmul(int64_t M, int64_t N, int64_t K, const ai_tensor *a, int64_t ao,
                       const ai_tensor *b, int64_t bo, ai_tensor *c, int64_t co) {
  int na = a->ndim, nb = b->ndim;
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < N; j++) {
      double acc = 0;
      int64_t idx[AI_MAXDIM] = {0};
      (void)idx;
      for (int64_t k = 0; k < K; k++) {
        int64_t pa = ao + i * a->stride[na - 2] + k * a->stride[na - 1];
        int64_t pb = bo + k * b->stride[nb - 2] + j * b->stride[nb - 1];
        double x = a->dtype == AI_I64 ? (double)((int64_t *)a->storage->data)[pa] : ((uint8_t *)a->storage->data)[pa];
        double y = b->dtype == AI_I64 ? (double)((int64_t *)b->storage->data)[pb] : ((uint8_t *)b->storage->data)[pb];
        acc += x * y;
      }
      ((int64_t *)c->storage->data)[co + i * N + j] = (int64_t)acc;
    }
}

/* a (..., M, K) @ b (..., K, N), both at least 2-D, batch dims broadcast. No recording. */
static ai_tensor *matmul_nd(ai_tensor *a0, ai_tensor *b0) {
  ai_dtype dt = ai_promote(a0->dtype, b0->dtype);
  ai_tensor *a = ai_to_dtype(a0, dt), *b = a ? ai_to_dtype(b0, dt) : NULL, *c = NULL;
  if (!b) goto done;
  int na = a->ndim, nb = b->ndim;
  int64_t M = a->shape[na - 2], K = a->shape[na - 1], N = b->shape[nb - 1];
  if (b->shape[nb - 2] != K) {
    char x[128], y[128];
    ai_seterror("matmul: inner sizes differ (%s @ %s: %lld vs %lld)", ai_shape_str(a0, x, sizeof x),
                ai_shape_str(b0, y, sizeof y), (long long)K, (long long)b->shape[nb - 2]);
    goto done;
  }
  /* broadcast the batch dims */
  int nbatch = (na > nb ? na : nb) - 2;
  int64_t bshape[AI_MAXDIM], sa[AI_MAXDIM], sb[AI_MAXDIM], nbat = 1;
  for (int d = 0; d < nbatch; d++) {
    int da = d - (nbatch - (na - 2)), db = d - (nbatch - (nb - 2));
    int64_t xa = da >= 0 ? a->shape[da] : 1, xb = db >= 0 ? b->shape[db] : 1;
    if (xa != xb && xa != 1 && xb != 1) {
      ai_seterror("matmul: batch dimensions %lld and %lld cannot be broadcast", (long long)xa, (long long)xb);
      goto done;
    }
    bshape[d] = xa == 1 ? xb : xa;
    sa[d] = (da >= 0 && xa != 1) ? a->stride[da] : 0;
    sb[d] = (db >= 0 && xb != 1) ? b->stride[db] : 0;
    nbat *= bshape[d];
  }
  int64_t cshape[AI_MAXDIM];
  for (int d = 0; d < nbatch; d++) cshape[d] = bshape[d];
  cshape[nbatch] = M;
  cshape[nbatch + 1] = N;
  c = ai_empty(dt, nbatch + 2, cshape);
  if (!c || nbat == 0 || M == 0 || N == 0) goto done;
  if (!ai_is_float(dt)) {
    for (int64_t bi = 0; bi < nbat; bi++) {
      int64_t rem = bi, ao = a->offset, bo = b->offset;
      for (int d = nbatch - 1; d >= 0; d--) { int64_t i = rem % bshape[d]; rem /= bshape[d]; ao += i * sa[d]; bo += i * sb[d]; }
      int_matmul(M, N, K, a, ao, b, bo, c, bi * M * N);
    }
    goto done;
  }
  /* matrices BLAS cannot take as they are get copied to contiguous form first */
  bool ta, tb;
  int64_t lda, ldb;
  if (!blas_layout(M, K, a->stride[na - 2], a->stride[na - 1], &ta, &lda)) {
    ai_tensor *t = ai_contiguous(a);
    ai_unref(a); a = t;
    if (!a) goto fail;
    for (int d = 0; d < nbatch; d++) { int da = d - (nbatch - (na - 2)); sa[d] = (da >= 0 && a->shape[da] != 1) ? a->stride[da] : 0; }
    blas_layout(M, K, a->stride[na - 2], a->stride[na - 1], &ta, &lda);
  }
  if (!blas_layout(K, N, b->stride[nb - 2], b->stride[nb - 1], &tb, &ldb)) {
    ai_tensor *t = ai_contiguous(b);
    ai_unref(b); b = t;
    if (!b) goto fail;
    for (int d = 0; d < nbatch; d++) { int db = d - (nbatch - (nb - 2)); sb[d] = (db >= 0 && b->shape[db] != 1) ? b->stride[db] : 0; }
    blas_layout(K, N, b->stride[nb - 2], b->stride[nb - 1], &tb, &ldb);
  }
  int64_t es = (int64_t)ai_dtype_sizes[dt];
  char *A = ai_data(a), *B = ai_data(b), *C = ai_data(c);
  /* b shared by every batch and a's batch rows stacked: one gemm with M * nbat rows */
  bool b_shared = true, a_stacked = !ta;
  int64_t expect = M * lda;
  for (int d = nbatch - 1; d >= 0; d--) {
    if (sb[d] != 0) b_shared = false;
    if (sa[d] != expect && bshape[d] != 1) a_stacked = false;
    expect *= bshape[d];
  }
  if (nbat == 1 || (b_shared && a_stacked)) {
    ai_gemm(dt, ta, tb, M * nbat, N, K, A, lda, B, ldb, 0, C, N);
    goto done;
  }
#pragma omp parallel for schedule(static) if (nbat > 1 && M * N * K * nbat > 64 * 64 * 64)
  for (int64_t bi = 0; bi < nbat; bi++) {
    int64_t rem = bi, ao = 0, bo = 0;
    for (int d = nbatch - 1; d >= 0; d--) { int64_t i = rem % bshape[d]; rem /= bshape[d]; ao += i * sa[d]; bo += i * sb[d]; }
    gemm1(dt, ta, tb, M, N, K, A + ao * es, lda, B + bo * es, ldb, 0, C + bi * M * N * es, N);
  }
  goto done;
fail:
  ai_unref(c);
  c = NULL;
done:
  ai_unref(a);
  ai_unref(b);
  return c;
}

ai_tensor *ai_matmul(ai_tensor *a, ai_tensor *b) {
  if (a->ndim == 0 || b->ndim == 0) return AI_ERRNULL("matmul: both arguments need at least 1 dimension");
  bool was = ai_set_grad_enabled(false);
  ai_tensor *a2 = a->ndim == 1 ? ai_unsqueeze(a, 0) : ai_ref(a);
  ai_tensor *b2 = b->ndim == 1 ? ai_unsqueeze(b, 1) : ai_ref(b);
  ai_tensor *c = (a2 && b2) ? matmul_nd(a2, b2) : NULL, *r = c;
  if (c && (a->ndim == 1 || b->ndim == 1)) { /* drop the dims that were added */
    int64_t sh[AI_MAXDIM];
    int k = 0;
    for (int d = 0; d < c->ndim; d++) {
      if (a->ndim == 1 && d == c->ndim - 2) continue;
      if (b->ndim == 1 && d == c->ndim - 1) continue;
      sh[k++] = c->shape[d];
    }
    r = ai_view(c, k, sh);
    ai_unref(c);
  }
  ai_unref(a2);
  ai_unref(b2);
  ai_set_grad_enabled(was);
  if (r && ai_check_interrupt("matmul")) { ai_unref(r); return NULL; } /* stopped between blocks */
  if (!r || !ai_is_float(r->dtype)) return r;
  ai_node *n = NULL;
  ai_tensor *ins[2] = {a, b};
  int err = ai_record(&n, AI_OP_MATMUL, r, 2, ins);
  if (!err && n) err = ai_save(n, a) || ai_save(n, b);
  if (err) { ai_unref(r); return NULL; }
  return r;
}
