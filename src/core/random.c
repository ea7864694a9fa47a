/* random.c: one Philox-4x32-10 generator (Salmon et al., SC'11). Element i of a draw uses
 * counter (offset + i), so results never depend on the number of threads, and the whole state
 * is two integers that a checkpoint can store. */
#include <math.h>
#include <stdlib.h>

#include "graph.h"
#include "iter.h"

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

/* ---- the vectorised paths: Philox over a block of counters at once (the loops over the lanes
 * vectorise; AI_CLONES gives them AVX2), written straight into contiguous f32/f64 outputs ---- */
#define LANES 16

/* The four words of Philox-4x32-10 for the counters first .. first + LANES - 1. */
static void philox_block_generic(uint64_t first, uint64_t key, uint32_t r[4][LANES]) {
  for (int l = 0; l < LANES; l++) {
    uint32_t o[4];
    philox(first + (uint64_t)l, key, o);
    r[0][l] = o[0]; r[1][l] = o[1]; r[2][l] = o[2]; r[3][l] = o[3];
  }
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(AI_NO_CLONES)
#include <immintrin.h>
/* Eight counters per vector: vpmuludq multiplies the even 32-bit lanes, the odd ones go through
 * a shift, and the high and low halves of the products are put back in place by blends (the
 * compiler's own vectorisation of the 32 x 32 -> 64 products needs several times more). */
__attribute__((target("avx2"))) static inline void mul_hilo(__m256i a, __m256i m, __m256i *hi, __m256i *lo) {
  __m256i pe = _mm256_mul_epu32(a, m), po = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  *hi = _mm256_blend_epi32(_mm256_srli_epi64(pe, 32), po, 0xAA);
  *lo = _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA);
}
__attribute__((target("avx2"))) static void philox_block_avx2(uint64_t first, uint64_t key, uint32_t r[4][LANES]) {
  const __m256i m0 = _mm256_set1_epi32((int)0xD2511F53u), m1 = _mm256_set1_epi32((int)0xCD9E8D57u);
  for (int g = 0; g < LANES; g += 8) {
    uint32_t lo32[8], hi32[8];
    for (int l = 0; l < 8; l++) {
      uint64_t ctr = first + (uint64_t)(g + l);
      lo32[l] = (uint32_t)ctr;
      hi32[l] = (uint32_t)(ctr >> 32);
    }
    __m256i c0 = _mm256_loadu_si256((const __m256i *)lo32), c1 = _mm256_loadu_si256((const __m256i *)hi32);
    __m256i c2 = _mm256_setzero_si256(), c3 = _mm256_setzero_si256();
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int round = 0; round < 10; round++) {
      __m256i h0, l0, h2, l2;
      mul_hilo(c0, m0, &h0, &l0);
      mul_hilo(c2, m1, &h2, &l2);
      __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(h2, c1), _mm256_set1_epi32((int)k0));
      __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(h0, c3), _mm256_set1_epi32((int)k1));
      c1 = l2; c3 = l0; c0 = n0; c2 = n2;
      k0 += 0x9E3779B9u; k1 += 0xBB67AE85u;
    }
    _mm256_storeu_si256((__m256i *)(r[0] + g), c0);
    _mm256_storeu_si256((__m256i *)(r[1] + g), c1);
    _mm256_storeu_si256((__m256i *)(r[2] + g), c2);
    _mm256_storeu_si256((__m256i *)(r[3] + g), c3);
  }
}
static void philox_block(uint64_t first, uint64_t key, uint32_t r[4][LANES]) {
  static int avx2 = -1;
  if (avx2 < 0) avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
  if (avx2) philox_block_avx2(first, key, r);
  else philox_block_generic(first, key, r);
}
#else
#define philox_block philox_block_generic
#endif

/* Uniform [lo, hi): element i from counter offset + i, as the scalar path (bit for bit: the same
 * 53-bit double, computed the same way, then rounded to the output's dtype). Blocks [b0, b1). */
AI_CLONES static void uniform_blocks(void *out, bool f32, int64_t n, int64_t b0, int64_t b1, uint64_t offset,
                                     uint64_t seed, double lo, double hi) {
  for (int64_t b = b0; b < b1; b++) {
    uint32_t r[4][LANES];
    double v[LANES];
    philox_block(offset + (uint64_t)(b * LANES), seed, r);
    for (int l = 0; l < LANES; l++) {
      /* the 53 bits as a double without a 64-bit integer conversion (none in AVX2): both halves
       * exact, so the sum is (double)bits exactly */
      uint64_t bits = (((uint64_t)r[0][l] << 32) | r[1][l]) >> 11;
      union { uint64_t u; double d; } h = {.u = 0x4330000000000000ull | (bits >> 32)},
                                       w = {.u = 0x4330000000000000ull | (bits & 0xffffffffu)};
      double u = ((h.d - 0x1.0p52) * 0x1.0p32 + (w.d - 0x1.0p52)) * 0x1.0p-53;
      v[l] = lo + (hi - lo) * u;
    }
    int64_t base = b * LANES, m = n - base < LANES ? n - base : LANES;
    if (f32) { /* rounding must not reach hi: the float below it instead */
      float *o = (float *)out + base, top = hi > lo ? (float)hi : INFINITY, below = nextafterf((float)hi, (float)lo);
      for (int64_t l = 0; l < m; l++) {
        float f = (float)v[l];
        o[l] = f >= top ? below : f;
      }
    } else {
      double *o = (double *)out + base;
      for (int64_t l = 0; l < m; l++) o[l] = v[l];
    }
  }
}

/* The blocks split over the threads in contiguous chunks (the clones above are not reached from
 * inside an OpenMP region's outlined body, so the loop over blocks stays in them). */
#define SPLIT_BLOCKS(blocks, n, CALL)                                              \
  do {                                                                             \
    int nt_ = (n) >= 65536 ? ai_get_num_threads() : 1;                             \
    _Pragma("omp parallel for schedule(static) num_threads(nt_) if (nt_ > 1)")     \
    for (int t_ = 0; t_ < nt_; t_++) {                                             \
      int64_t b0 = (blocks) * t_ / nt_, b1 = (blocks) * (t_ + 1) / nt_;            \
      CALL;                                                                        \
    }                                                                              \
  } while (0)

static void uniform_fill(void *out, bool f32, int64_t n, uint64_t offset, uint64_t seed, double lo, double hi) {
  int64_t blocks = (n + LANES - 1) / LANES;
  SPLIT_BLOCKS(blocks, n, uniform_blocks(out, f32, n, b0, b1, offset, seed, lo, hi));
}

/* log and sin/cos of f32 for Box-Muller, vectorisable (no libm calls): Cephes-style range
 * reduction and polynomials, about 1e-7 relative, far below what a 24-bit uniform resolves. */
static inline float vlogf(float x) { /* x in (0, 1] */
  union { float f; int32_t i; } u = {.f = x};
  int32_t e = ((u.i >> 23) & 0xff) - 126;
  u.i = (u.i & 0x007fffff) | 0x3f000000; /* m in [0.5, 1) */
  float m = u.f;
  float sh = m < 0.70710678f ? 1.0f : 0.0f; /* m to [sqrt(1/2), sqrt(2)) */
  e -= (int32_t)sh;
  m = m + m * sh - 1.0f;
  float z = m * m;
  float p = 7.0376836292e-2f;
  p = p * m - 1.1514610310e-1f;
  p = p * m + 1.1676998740e-1f;
  p = p * m - 1.2420140846e-1f;
  p = p * m + 1.4249322787e-1f;
  p = p * m - 1.6668057665e-1f;
  p = p * m + 2.0000714765e-1f;
  p = p * m - 2.4999993993e-1f;
  p = p * m + 3.3333331174e-1f;
  float y = p * m * z - 0.5f * z + m;
  return y + (float)e * 0.69314718056f;
}

/* cos and sin of 2 pi t for t in [0, 1): the quarter turn q nearest to 4t, then polynomials on
 * r = (4t - q) pi / 2 in [-pi/4, pi/4] */
static inline void vsincos2pi(float t, float *c, float *s) {
  float q4 = t * 4.0f;
  float q = (float)(int32_t)(q4 + 0.5f);
  float r = (q4 - q) * 1.57079632679f, r2 = r * r;
  float sr = r * (1.0f + r2 * (-1.6666667e-1f + r2 * (8.3333310e-3f + r2 * -1.9841270e-4f)));
  float cr = 1.0f + r2 * (-0.5f + r2 * (4.1666642e-2f + r2 * (-1.3888397e-3f + r2 * 2.4760495e-5f)));
  int32_t k = (int32_t)q & 3;
  float cc = k == 0 ? cr : k == 1 ? -sr : k == 2 ? -cr : sr;
  float ss = k == 0 ? sr : k == 1 ? cr : k == 2 ? -sr : -cr;
  *c = cc;
  *s = ss;
}

/* Normal f32: every counter gives four normals, two Box-Muller pairs from its four 32-bit words
 * (u1 in (0, 1] from 24 bits, u2 in [0, 1)); element i comes from counter offset + i / 4, so a
 * draw of n elements advances the generator by ceil(n / 4), whatever the thread count. */
AI_CLONES static void normal_blocks(float *out, int64_t n, int64_t b0, int64_t b1, uint64_t offset, uint64_t seed,
                                    float mean, float std) {
  const int64_t per = 4 * LANES;
  for (int64_t b = b0; b < b1; b++) {
    uint32_t r[4][LANES];
    float z[4][LANES];
    philox_block(offset + (uint64_t)(b * LANES), seed, r);
    for (int p = 0; p < 2; p++)
      for (int l = 0; l < LANES; l++) {
        float u1 = (float)((r[2 * p][l] >> 8) + 1) * 0x1.0p-24f, u2 = (float)(r[2 * p + 1][l] >> 8) * 0x1.0p-24f;
        float rad = sqrtf(-2.0f * vlogf(u1)), c, sn;
        vsincos2pi(u2, &c, &sn);
        z[2 * p][l] = mean + std * rad * c;
        z[2 * p + 1][l] = mean + std * rad * sn;
      }
    int64_t base = b * per, m = n - base < per ? n - base : per;
    float *o = out + base;
    if (m == per)
      for (int l = 0; l < LANES; l++)
        for (int j = 0; j < 4; j++) o[4 * l + j] = z[j][l];
    else
      for (int64_t i = 0; i < m; i++) o[i] = z[i & 3][i >> 2];
  }
}

static void normal_fill_f32(float *out, int64_t n, uint64_t offset, uint64_t seed, float mean, float std) {
  int64_t blocks = (n + 4 * LANES - 1) / (4 * LANES);
  SPLIT_BLOCKS(blocks, n, normal_blocks(out, n, b0, b1, offset, seed, mean, std));
}

/* Fills t in logical (row-major) order, whatever its strides. */
static int fill_random(ai_tensor *t, dist kind, double a, double b, const char *fn) {
  if (ai_check_inplace(t, fn)) return -1;
  int64_t n = ai_numel(t);
  bool dense = ai_is_contiguous(t) && (t->dtype == AI_F32 || (t->dtype == AI_F64 && kind == D_UNIFORM));
  if (dense && kind == D_UNIFORM) {
    uniform_fill(ai_data(t), t->dtype == AI_F32, n, rng.offset, rng.seed, a, b);
    rng.offset += (uint64_t)n;
    ai_bump_version(t);
    return 0;
  }
  if (kind == D_NORMAL && t->dtype != AI_F64) { /* f32 normals, then converted where t is not dense f32 */
    ai_tensor *tmp = dense ? ai_ref(t) : ai_empty(AI_F32, t->ndim, t->shape);
    if (!tmp) return -1;
    normal_fill_f32(ai_data(tmp), n, rng.offset, rng.seed, (float)a, (float)b);
    rng.offset += (uint64_t)((n + 3) / 4);
    int rc = 0;
    if (!dense) {
      bool was = ai_set_grad_enabled(false);
      rc = ai_copy_(t, tmp);
      ai_set_grad_enabled(was);
    } else {
      ai_bump_version(t);
    }
    ai_unref(tmp);
    return rc;
  }
  ai_tensor *tmp = ai_empty(AI_F64, t->ndim, t->shape);
  if (!tmp) return -1;
  double *v = ai_data(tmp);
  if (kind == D_UNIFORM) {
    uniform_fill(v, false, n, rng.offset, rng.seed, a, b);
  } else {
#pragma omp parallel for schedule(static) if (n >= 65536)
    for (int64_t i = 0; i < n; i++) {
      double u0, u1;
      uniform2((uint64_t)i, &u0, &u1);
      switch (kind) {
      case D_NORMAL: v[i] = a + b * sqrt(-2.0 * log1p(-u0)) * cos(2.0 * M_PI * u1); break; /* f64 */
      case D_INT: v[i] = a + floor(u0 * (b - a)); break;
      default: v[i] = u0 < a ? 1 : 0; break;
      }
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
