/* runtime.c: thread settings, the CPUs this process may use, and the clocks. All parallelism
 * comes from one OpenMP pool; OpenBLAS stays on one thread so that it never competes with it
 * (each OpenMP thread calls a serial gemm). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_getaffinity */
#endif
#include <cblas.h>
#include <sched.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
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

void ai_cpu_count(int *usable, int *online) {
  cpu_set_t set;
  long on = sysconf(_SC_NPROCESSORS_ONLN);
  int mine = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : (int)on;
  *usable = mine;
  *online = on > 0 ? (int)on : mine;
}

double ai_clock(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double ai_unix_time(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- interrupts: a signal handler asks, long loops of the core look between their blocks ---- */
static volatile sig_atomic_t interrupt_requested;

void ai_request_interrupt(void) { interrupt_requested = 1; } /* async-signal-safe */
void ai_clear_interrupt(void) { interrupt_requested = 0; }
bool ai_interrupt_pending(void) { return interrupt_requested != 0; }
int ai_check_interrupt(const char *fn) {
  return interrupt_requested ? ai_seterror("%s: interrupted", fn) : 0;
}
