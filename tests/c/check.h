/* check.h: what the C test programs of tests/c share: the pass/fail counters (each program
 * defines npass and nfail), CHECK, a seeded xorshift generator and a monotonic clock. */
#ifndef CHECK_H
#define CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

extern int npass, nfail;

#define CHECK(cond, ...)                          \
  do {                                            \
    if (cond) {                                   \
      npass++;                                    \
    } else {                                      \
      nfail++;                                    \
      printf("FAIL %s:%d: ", __FILE__, __LINE__); \
      printf(__VA_ARGS__);                        \
      printf("\n");                               \
    }                                             \
  } while (0)

/* The same sequence in every program (and in every file that draws from it). */
static uint64_t check_rng = 88172645463325252ull;
static inline uint32_t rnd(void) {
  check_rng ^= check_rng << 13;
  check_rng ^= check_rng >> 7;
  check_rng ^= check_rng << 17;
  return (uint32_t)(check_rng >> 11);
}

static inline double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif
