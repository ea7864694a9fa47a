/* runtime.c: thread settings. All parallelism comes from one OpenMP pool; OpenBLAS stays on
 * one thread so that it never competes with it (each OpenMP thread calls a serial gemm). */
#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "ai.h"

extern void openblas_set_num_threads(int);

static int nthreads;

void ai_set_num_threads(int n) {
  if (n < 1) n = 1;
  nthreads = n;
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif
  openblas_set_num_threads(1);
}

int ai_get_num_threads(void) {
#ifdef _OPENMP
  return nthreads ? nthreads : omp_get_max_threads();
#else
  return 1;
#endif
}
