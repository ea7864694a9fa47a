/* random.c: one Philox-4x32-10 generator (Salmon et al., SC'11). Element i of a draw uses
 * counter (offset + i), so results never depend on the number of threads, and the whole state
 * is two integers that a checkpoint can store. */
#include <math.h>
#include <stdlib.h>

#include "graph.h"

static ai_rng_state rng = {5489, 0};

void ai_manual_seed(uint64_t seed) { rng.seed = seed; rng.offset = 0; }
ai_rng_state ai_rng_get(void) { return rng; }
void ai_rng_set(ai_rng_state s) { rng = s; }

static inline void philox(uint64_t counter, uint64_t key, uint32_t out[4]) {
  uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
  for (int r = 0; r < 10; r++) {
    uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
    c1 = (uint32_t)p1; c3 = (uint32_t)p0; c0 = n0; c2 = n2;
    k0 += 0x9E3779B9u; k1 += 0xBB67AE85u;
  }
  out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

/* Two uniform doubles in [0,1) with 53 bits each, for draw number i. */
static inline void uniform2(uint64_t i, double *u0, double *u1) {
  uint32_t r[4];
  philox(rng.offset + i, rng.seed, r);
  *u0 = (double)((((uint64_t)r[0] << 32) | r[1]) >> 11) * 0x1.0p-53;
  *u1 = (double)((((uint64_t)r[2] << 32) | r[3]) >> 11) * 0x1.0p-53;
}

typedef enum { D_UNIFORM, D_NORMAL, D_INT, D_BERNOULLI } dist;

/* Fills t in logical (row-major) order, whatever its strides. */
static int fill_random(ai_tensor *t, dist kind, double a, double b, const char *fn) {
  if (ai_check_inplace(t, fn)) return -1;
  int64_t n = ai_numel(t);
  ai_tensor *tmp = ai_empty(AI_F64, t->ndim, t->shape);
  if (!tmp) return -1;
  double *v = ai_data(tmp);
#pragma omp parallel for schedule(static) if (n >= 65536)
  for (int64_t i = 0; i < n; i++) {
    double u0, u1;
    uniform2((uint64_t)i, &u0, &u1);
    switch (kind) {
    case D_UNIFORM: v[i] = a + (b - a) * u0; break;
    case D_NORMAL: v[i] = a + b * sqrt(-2.0 * log1p(-u0)) * cos(2.0 * M_PI * u1); break;
    case D_INT: v[i] = a + floor(u0 * (b - a)); break;
    default: v[i] = u0 < a ? 1 : 0; break;
    }
  }
  rng.offset += (uint64_t)n;
  if (t->dtype == AI_F32 && kind == D_UNIFORM) /* rounding must not reach the upper bound */
    for (int64_t i = 0; i < n; i++) if ((float)v[i] >= (float)b && b > a) v[i] = nextafterf((float)b, (float)a);
  bool was = ai_set_grad_enabled(false);
  int rc = ai_copy_(t, tmp);
  ai_set_grad_enabled(was);
  ai_unref(tmp);
  return rc;
}

int ai_rand_(ai_tensor *t, double lo, double hi) {
  if (!(lo <= hi)) return ai_seterror("rand: lower bound %g is above upper bound %g", lo, hi);
  return fill_random(t, D_UNIFORM, lo, hi, "uniform_");
}

int ai_randn_(ai_tensor *t, double mean, double std) {
  if (!(std >= 0)) return ai_seterror("normal_: std must be non-negative (got %g)", std);
  return fill_random(t, D_NORMAL, mean, std, "normal_");
}

int ai_randint_(ai_tensor *t, int64_t lo, int64_t hi) {
  if (lo >= hi) return ai_seterror("randint: empty range [%lld, %lld)", (long long)lo, (long long)hi);
  return fill_random(t, D_INT, (double)lo, (double)hi, "randint");
}

int ai_bernoulli_(ai_tensor *t, double p) {
  if (!(p >= 0 && p <= 1)) return ai_seterror("bernoulli: p must be in [0, 1] (got %g)", p);
  return fill_random(t, D_BERNOULLI, p, 0, "bernoulli_");
}

/* u < p for a fresh uniform u of every element: the mask is made with recording off (the
 * draws are not differentiable), in p's dtype when that is a float one. */
ai_tensor *ai_bernoulli(ai_tensor *p) {
  bool was = ai_set_grad_enabled(false);
  if (ai_numel(p) > 0) { /* a probability outside [0, 1] (or NaN) would give 0s or 1s without a word */
    ai_tensor *lo = ai_reduce(AI_RMIN, p, 0, false), *hi = lo ? ai_reduce(AI_RMAX, p, 0, false) : NULL;
    double pmin = hi ? ai_item(lo) : 0, pmax = hi ? ai_item(hi) : 0;
    ai_unref(lo);
    ai_unref(hi);
    if (!hi) { ai_set_grad_enabled(was); return NULL; }
    if (!(pmin >= 0 && pmax <= 1)) {
      ai_set_grad_enabled(was);
      return AI_ERRNULL("bernoulli: every probability must be in [0, 1] (got values from %g to %g)", pmin, pmax);
    }
  }
  ai_dtype dt = ai_is_float(p->dtype) ? p->dtype : AI_F32;
  ai_tensor *u = ai_empty(dt, p->ndim, p->shape);
  if (!u || ai_rand_(u, 0, 1)) { ai_unref(u); ai_set_grad_enabled(was); return NULL; }
  ai_tensor *m = ai_binary(AI_LT, u, p), *r = m ? ai_to_dtype(m, dt) : NULL;
  ai_set_grad_enabled(was);
  ai_unref(u);
  ai_unref(m);
  return r;
}

ai_tensor *ai_randperm(int64_t n) {
  if (n < 0) return AI_ERRNULL("randperm: n must be non-negative");
  ai_tensor *t = ai_empty(AI_I64, 1, &n);
  if (!t) return NULL;
  int64_t *p = ai_data(t);
  for (int64_t i = 0; i < n; i++) p[i] = i;
  for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates, one draw per step */
    double u0, u1;
    uniform2((uint64_t)(n - 1 - i), &u0, &u1);
    int64_t j = (int64_t)(u0 * (double)(i + 1));
    int64_t tmp = p[i]; p[i] = p[j]; p[j] = tmp;
  }
  rng.offset += (uint64_t)n;
  return t;
}
