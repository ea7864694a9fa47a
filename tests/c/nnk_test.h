/* nnk_test.h: what the kernel tests (tests/c/test_nnk_*.c) share: the pass/fail count and
 * its "N passed, M failed" line, a seeded generator, the thread counts and, generic in T, the
 * allocation, filling and comparison helpers. A test file includes it at its top;
 * nnk_test_tmpl.h includes it again in each of the file's two passes, for the generic part.
 * Helpers not every test file calls are static inline (no unused-function warning). */
#ifndef TEST_PASS
#ifndef NNK_TEST_H
#define NNK_TEST_H

#include "kernels/nnk.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static int npass, nfail;

static void set_threads(int nt) {
#ifdef _OPENMP
  omp_set_num_threads(nt);
#else
  (void)nt;
#endif
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double urand(void) { /* splitmix64 -> [0, 1) */
  uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (double)(z >> 11) * 0x1.0p-53;
}

static void result(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void result(int ok, const char *fmt, ...) {
  if (ok) {
    npass++;
    return;
  }
  nfail++;
  va_list ap;
  va_start(ap, fmt);
  printf("FAIL ");
  vprintf(fmt, ap);
  printf("\n");
  va_end(ap);
}

static inline void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) {
    fprintf(stderr, "out of memory\n");
    exit(2);
  }
  return p;
}

static inline int same_i64(const int64_t *a, const int64_t *b, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (a[i] != b[i]) return 0;
  return 1;
}

/* the totals line that tests/run.lua reads, and the exit status */
static inline int test_report(void) {
  printf("%d passed, %d failed\n", npass, nfail);
  return nfail ? 1 : 0;
}

static const int thread_counts[] = {1, 2, 3};
#define NTHREADS ((int)(sizeof thread_counts / sizeof thread_counts[0]))

#endif
#else /* ---- generic helpers, T / FN / TNAME / TOL defined ---- */

static T *FN(talloc)(int64_t n) { return (T *)xmalloc((size_t)n * sizeof(T)); }

static void FN(fill)(T *x, int64_t n, double lo, double hi) {
  for (int64_t i = 0; i < n; i++) x[i] = (T)(lo + (hi - lo) * urand());
}

static void FN(poison)(T *x, int64_t n) {
  for (int64_t i = 0; i < n; i++) x[i] = (T)NAN;
}

/* max over i of |a-b| / max(|b_i|, max|b|); NaN in a where b is not NaN counts as infinite */
static double FN(relerr)(const T *a, const T *b, int64_t n) {
  double scale = 0, err = 0;
  for (int64_t i = 0; i < n; i++)
    if (fabs((double)b[i]) > scale) scale = fabs((double)b[i]);
  if (scale == 0) scale = 1;
  for (int64_t i = 0; i < n; i++) {
    if (isnan((double)a[i]) || isnan((double)b[i])) {
      if (!(isnan((double)a[i]) && isnan((double)b[i]))) return INFINITY;
      continue;
    }
    if (isinf((double)b[i]) || isinf((double)a[i])) {
      if ((double)a[i] != (double)b[i]) return INFINITY;
      continue;
    }
    double d = fabs((double)a[i] - (double)b[i]);
    double s = fabs((double)b[i]) > scale ? fabs((double)b[i]) : scale;
    if (d / s > err) err = d / s;
  }
  return err;
}

static void FN(check)(const char *what, const char *label, const T *got, const T *ref,
                      int64_t n) {
  double e = FN(relerr)(got, ref, n);
  result(e <= TOL, "%s %s %s: rel err %.3g", what, TNAME, label, e);
}

#endif
