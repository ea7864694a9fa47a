/* linalg.c: linear algebra beyond matmul, through the LAPACK that ships inside OpenBLAS. Not
 * differentiable: results are computed with recording off. */
#include <stdlib.h>

#include "ai.h"

/* LAPACK's symmetric eigensolver */
extern void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
                   double *work, const int *lwork, int *info);

int ai_eigh(ai_tensor *a, ai_tensor **values, ai_tensor **vectors) {
  *values = *vectors = NULL;
  if (a->ndim != 2 || a->shape[0] != a->shape[1])
    return ai_seterror("linalg.eigh: expected a square 2-D (symmetric) matrix");
  if (!ai_is_float(a->dtype)) return ai_seterror("linalg.eigh: expected a floating-point matrix");
  if (a->shape[0] > 46340) return ai_seterror("linalg.eigh: matrix too large"); /* n * n fits an int */
  int n = (int)a->shape[0], lwork = -1, info = 0;
  bool was = ai_set_grad_enabled(false);
  ai_tensor *c = ai_to_dtype(a, AI_F64), *m = c ? ai_clone(c) : NULL;
  ai_unref(c);
  int64_t nn = n;
  ai_tensor *w = m ? ai_empty(AI_F64, 1, &nn) : NULL;
  double q, *work = NULL;
  int rc = -1;
  if (!w) goto done;
  dsyev_("V", "U", &n, ai_data(m), &n, ai_data(w), &q, &lwork, &info);
  lwork = (int)q > 1 ? (int)q : 3 * n;
  work = malloc(sizeof(double) * (size_t)lwork);
  if (!work) { ai_seterror("not enough memory"); goto done; }
  dsyev_("V", "U", &n, ai_data(m), &n, ai_data(w), work, &lwork, &info);
  if (info != 0) { ai_seterror("linalg.eigh: LAPACK dsyev failed (info %d)", info); goto done; }
  /* column-major eigenvectors are the rows of the row-major buffer: transpose */
  ai_tensor *vt = ai_transpose(m, 0, 1), *v = vt ? ai_contiguous(vt) : NULL;
  ai_unref(vt);
  ai_tensor *vo = v ? ai_to_dtype(v, a->dtype) : NULL, *wo = vo ? ai_to_dtype(w, a->dtype) : NULL;
  ai_unref(v);
  if (!wo) { ai_unref(vo); goto done; }
  *values = wo;
  *vectors = vo;
  rc = 0;
done:
  free(work);
  ai_unref(m);
  ai_unref(w);
  ai_set_grad_enabled(was);
  return rc;
}
