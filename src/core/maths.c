/* maths.c: lerp, baddbmm and cdist, composed of recorded ops (their gradients, and second
 * gradients, come from those), and the samplers normal (tensor mean and std) and multinomial. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compose.h"

static int need_float(const ai_tensor *t, const char *fn, const char *arg) {
  if (!ai_is_float(t->dtype))
    return ai_seterror("%s: %s must be f32 or f64, got %s", fn, arg, ai_dtype_names[t->dtype]);
  return 0;
}

static int same_dtype(const ai_tensor *a, const ai_tensor *b, const char *fn, const char *an, const char *bn) {
  if (a->dtype != b->dtype)
    return ai_seterror("%s: %s and %s must have one dtype (got %s and %s)", fn, an, bn, ai_dtype_names[a->dtype],
                       ai_dtype_names[b->dtype]);
  return 0;
}

/* a + w (b - a), written as PyTorch's kernel does: b - (b - a)(1 - w) where |w| >= 0.5, so that
 * w = 1 gives b exactly. w is the tensor wt, or the number w when wt is NULL. */
ai_tensor *ai_lerp(ai_tensor *a, ai_tensor *b, ai_tensor *wt, double w) {
  if (need_float(a, "lerp", "input") || same_dtype(a, b, "lerp", "input", "end")) return NULL;
  if (wt && same_dtype(a, wt, "lerp", "input", "weight")) return NULL;
  if (ai_check_broadcast(a, b, "lerp", "input", "end") ||
      (wt && (ai_check_broadcast(a, wt, "lerp", "input", "weight") || ai_check_broadcast(b, wt, "lerp", "end", "weight"))))
    return NULL;
  scope S = {.n = 0}, *s = &S;
  ai_tensor *d = sub(s, b, a), *r;
  if (!wt) {
    r = fabs(w) < 0.5 ? add(s, a, muls(s, d, w)) : sub(s, b, muls(s, d, 1 - w));
  } else {
    ai_tensor *low = K(s, ai_binary_scalar(AI_LT, K(s, ai_unary_nograd(AI_ABS, wt)), 0.5, false));
    ai_tensor *near_a = add(s, a, mul(s, wt, d)), *near_b = sub(s, b, mul(s, d, one_minus(s, wt)));
    r = low && near_a && near_b ? K(s, ai_where(low, near_a, near_b)) : NULL;
  }
  ai_tensor *res = r && !s->err ? ai_ref(r) : NULL;
  done(s);
  return res;
}

/* beta input + alpha (b1 @ b2), b1: B x n x m, b2: B x m x p, input broadcast to B x n x p;
 * beta = 0 ignores input (NaN and inf in it do not propagate), as PyTorch's. */
ai_tensor *ai_baddbmm(ai_tensor *in, ai_tensor *b1, ai_tensor *b2, double beta, double alpha) {
  if (b1->ndim != 3 || b2->ndim != 3)
    return AI_ERRNULL("baddbmm: batch1 and batch2 must be 3-D, got %d and %d dimensions", b1->ndim, b2->ndim);
  if (b1->shape[0] != b2->shape[0] || b1->shape[2] != b2->shape[1])
    return AI_ERRNULL("baddbmm: batch1 (%lldx%lldx%lld) and batch2 (%lldx%lldx%lld) cannot be multiplied",
                      (long long)b1->shape[0], (long long)b1->shape[1], (long long)b1->shape[2],
                      (long long)b2->shape[0], (long long)b2->shape[1], (long long)b2->shape[2]);
  if (same_dtype(b1, b2, "baddbmm", "batch1", "batch2") || same_dtype(in, b1, "baddbmm", "input", "batch1")) return NULL;
  if (!ai_is_float(in->dtype) && (alpha != floor(alpha) || beta != floor(beta)))
    return AI_ERRNULL("baddbmm: for integer tensors, alpha and beta must be whole numbers (got %g and %g)", alpha, beta);
  int64_t want[3] = {b1->shape[0], b1->shape[1], b2->shape[2]}, shape[AI_MAXDIM];
  int nd;
  ai_tensor prod_shape = *b1; /* a shape-only stand-in for the product */
  memcpy(prod_shape.shape, want, sizeof want);
  if (ai_broadcast_shape(in, &prod_shape, &nd, shape) || nd != 3 || memcmp(shape, want, sizeof want)) {
    char b[128];
    return AI_ERRNULL("baddbmm: input must broadcast to %lldx%lldx%lld, got %s", (long long)want[0],
                      (long long)want[1], (long long)want[2], ai_shape_str(in, b, sizeof b));
  }
  scope S = {.n = 0}, *s = &S;
  ai_tensor *p = K(s, ai_matmul(b1, b2));
  if (alpha != 1) p = muls(s, p, alpha);
  ai_tensor *r = beta == 0 ? p : add(s, beta == 1 ? in : muls(s, in, beta), p);
  ai_tensor *res = r && !s->err ? ai_ref(r) : NULL;
  done(s);
  return res;
}

/* Distances between the rows of x1 (... x P x M) and of x2 (... x R x M): ... x P x R, batch
 * dims broadcast. p = 2 goes through one matmul when mm says so (PyTorch's compute_mode:
 * 0 "use_mm_for_euclid_dist_if_necessary" (when P or R exceeds 25), 1 "use_mm_for_euclid_dist",
 * 2 "donot_use_mm_for_euclid_dist"), with PyTorch's formula: the squared distance clamped at
 * 1e-30 before the square root (so equal rows are 1e-15 apart, with gradient 0). Otherwise the
 * p-norm of the differences (P x R x M of them). */
ai_tensor *ai_cdist(ai_tensor *x1, ai_tensor *x2, double p, int mode) {
  if (need_float(x1, "cdist", "x1") || same_dtype(x1, x2, "cdist", "x1", "x2")) return NULL;
  if (x1->ndim < 2 || x2->ndim < 2)
    return AI_ERRNULL("cdist: x1 and x2 must have at least 2 dimensions, got %d and %d", x1->ndim, x2->ndim);
  int64_t M = x1->shape[x1->ndim - 1], P = x1->shape[x1->ndim - 2], R = x2->shape[x2->ndim - 2];
  if (x2->shape[x2->ndim - 1] != M)
    return AI_ERRNULL("cdist: x1 and x2 must have the same number of columns (got %lld and %lld)", (long long)M,
                      (long long)x2->shape[x2->ndim - 1]);
  if (!(p >= 0)) return AI_ERRNULL("cdist: p must be >= 0 (got %g)", p);
  if (x1->ndim == AI_MAXDIM || x2->ndim == AI_MAXDIM) return AI_ERRNULL("cdist: at most %d dimensions", AI_MAXDIM - 1);
  ai_tensor batch1 = *x1, batch2 = *x2; /* shape-only stand-ins for the batch dims */
  batch1.ndim -= 2, batch2.ndim -= 2;
  if (ai_check_broadcast(&batch1, &batch2, "cdist", "the batch dims of x1", "those of x2")) return NULL;
  bool mm = p == 2 && (mode == 1 || (mode == 0 && (P > 25 || R > 25)));
  scope S = {.n = 0}, *s = &S;
  ai_tensor *r;
  if (mm) {
    int64_t sh1[AI_MAXDIM], sh2[AI_MAXDIM];
    memcpy(sh1, x1->shape, sizeof(int64_t) * (size_t)x1->ndim);
    memcpy(sh2, x2->shape, sizeof(int64_t) * (size_t)x2->ndim);
    sh1[x1->ndim - 1] = sh2[x2->ndim - 1] = 1;
    ai_tensor *n1 = red(s, AI_RSUM, un(s, AI_SQUARE, x1), 1u << (x1->ndim - 1), true);
    ai_tensor *n2 = red(s, AI_RSUM, un(s, AI_SQUARE, x2), 1u << (x2->ndim - 1), true);
    ai_tensor *o1 = K(s, ai_full(x1->dtype, x1->ndim, sh1, 1)), *o2 = K(s, ai_full(x2->dtype, x2->ndim, sh2, 1));
    ai_tensor *a1 = muls(s, x1, -2);
    ai_tensor *l[3] = {a1, n1, o1}, *rr[3] = {x2, o2, n2};
    ai_tensor *c1 = a1 && n1 && o1 ? K(s, ai_cat(l, 3, -1)) : NULL;
    ai_tensor *c2 = n2 && o2 ? K(s, ai_cat(rr, 3, -1)) : NULL;
    ai_tensor *c2t = c2 ? K(s, ai_transpose(c2, -2, -1)) : NULL;
    ai_tensor *d2 = OK2(c1, c2t) ? K(s, ai_matmul(c1, c2t)) : NULL;
    r = d2 ? un(s, AI_SQRT, K(s, ai_clamp(d2, 1e-30, INFINITY))) : NULL;
  } else {
    ai_tensor *u1 = K(s, ai_unsqueeze(x1, -2)), *u2 = K(s, ai_unsqueeze(x2, -3));
    ai_tensor *d = sub(s, u1, u2);
    unsigned last = d ? 1u << (d->ndim - 1) : 0;
    if (p > 0) {
      r = d ? K(s, ai_norm(d, p, last, false)) : NULL;
    } else { /* the count of differing coordinates: no gradient (PyTorch's is zero) */
      ai_tensor *nz = d ? K(s, ai_binary_scalar(AI_NE, d, 0, false)) : NULL;
      ai_tensor *cnt = nz ? red(s, AI_RSUM, nz, last, false) : NULL;
      r = cnt ? K(s, ai_to_dtype(cnt, x1->dtype)) : NULL;
    }
  }
  ai_tensor *res = r && !s->err ? ai_ref(r) : NULL;
  done(s);
  return res;
}

/* ---------------------------------------------------------------- samplers (not differentiable) */

/* Samples of N(mean, std^2), mean and std each a tensor (NULL: the number ms or ss), broadcast
 * together; not recorded, as PyTorch's normal gives no gradient to mean or std. */
ai_tensor *ai_normal(ai_tensor *mean, double ms, ai_tensor *std, double ss) {
  const ai_tensor *ref = mean ? mean : std;
  if (!ref) return AI_ERRNULL("normal: mean or std must be a tensor");
  if (mean && need_float(mean, "normal", "mean")) return NULL;
  if (std && need_float(std, "normal", "std")) return NULL;
  if (mean && std && same_dtype(mean, std, "normal", "mean", "std")) return NULL;
  int nd = ref->ndim;
  int64_t shape[AI_MAXDIM];
  memcpy(shape, ref->shape, sizeof shape);
  if (mean && std && (ai_check_broadcast(mean, std, "normal", "mean", "std") || ai_broadcast_shape(mean, std, &nd, shape)))
    return NULL;
  if (!std && !(ss >= 0)) return AI_ERRNULL("normal: std must be >= 0 (got %g)", ss);
  bool was = ai_set_grad_enabled(false);
  scope S = {.n = 0}, *s = &S;
  if (std) {
    ai_tensor *neg = K(s, ai_binary_scalar(AI_LT, std, 0, false)), *bad = neg ? red(s, AI_RSUM, neg, 0, false) : NULL;
    if (bad && ai_item(bad) != 0) { s->err = true; ai_seterror("normal: every std must be >= 0"); }
  }
  ai_tensor *eps = s->err ? NULL : K(s, ai_empty(ref->dtype, nd, shape));
  if (eps && ai_randn_(eps, 0, 1)) s->err = true;
  ai_tensor *scaled = std ? mul(s, eps, std) : muls(s, eps, ss);
  ai_tensor *r = mean ? add(s, scaled, mean) : adds(s, scaled, ms);
  ai_tensor *res = r && !s->err ? ai_ref(r) : NULL;
  done(s);
  ai_set_grad_enabled(was);
  return res;
}

typedef struct { double key; int64_t i; } keyed;
static int by_key_desc(const void *a, const void *b) {
  double x = ((const keyed *)a)->key, y = ((const keyed *)b)->key;
  if (x != y) return x < y ? 1 : -1;
  int64_t i = ((const keyed *)a)->i, j = ((const keyed *)b)->i;
  return (i > j) - (i < j);
}

/* n 0-based category indices for each row of probs (K or B x K non-negative weights, not
 * necessarily normalised): with replacement by the inverse of each row's cumulative sum,
 * without it by the largest keys log(u) / w (Efraimidis and Spirakis), which orders the draws
 * as one-by-one sampling does. One uniform per sample (with) or per category (without). */
ai_tensor *ai_multinomial(ai_tensor *probs, int64_t n, bool replacement) {
  if (need_float(probs, "multinomial", "probabilities")) return NULL;
  if (probs->ndim != 1 && probs->ndim != 2)
    return AI_ERRNULL("multinomial: probabilities must be 1-D or 2-D, got %d dimensions", probs->ndim);
  int64_t B = probs->ndim == 2 ? probs->shape[0] : 1, Kc = probs->shape[probs->ndim - 1];
  if (Kc == 0) return AI_ERRNULL("multinomial: no categories to sample from");
  if (n <= 0) return AI_ERRNULL("multinomial: the number of samples must be positive (got %lld)", (long long)n);
  if (!replacement && n > Kc)
    return AI_ERRNULL("multinomial: cannot draw %lld samples from %lld categories without replacement", (long long)n,
                      (long long)Kc);
  if (n > ((int64_t)1 << 40) / (B ? B : 1)) return AI_ERRNULL("multinomial: too many samples");
  bool was = ai_set_grad_enabled(false);
  ai_tensor *w = ai_to_dtype(probs, AI_F64), *wc = w ? ai_contiguous(w) : NULL;
  ai_unref(w);
  ai_set_grad_enabled(was);
  if (!wc) return NULL;
  const double *pw = ai_data(wc);
  for (int64_t b = 0; b < B; b++) {
    double sum = 0;
    int64_t pos = 0;
    for (int64_t k = 0; k < Kc; k++) {
      double v = pw[b * Kc + k];
      if (!(v >= 0) || isinf(v)) {
        ai_unref(wc);
        return AI_ERRNULL("multinomial: probabilities must be finite and >= 0 (row %lld holds %g)", (long long)b + 1, v);
      }
      sum += v;
      pos += v > 0;
    }
    if (!(sum > 0) || isinf(sum)) {
      ai_unref(wc);
      return AI_ERRNULL("multinomial: the probabilities of row %lld sum to %g", (long long)b + 1, sum);
    }
    if (!replacement && pos < n) {
      ai_unref(wc);
      return AI_ERRNULL("multinomial: row %lld has %lld categories of nonzero probability, fewer than the %lld samples "
                        "drawn without replacement", (long long)b + 1, (long long)pos, (long long)n);
    }
  }
  int64_t shape[2] = {B, n}, nu = B * (replacement ? n : Kc);
  ai_tensor *out = ai_empty(AI_I64, probs->ndim, probs->ndim == 2 ? shape : &n);
  ai_tensor *u = out ? ai_empty(AI_F64, 1, &nu) : NULL;
  double *cdf = u ? malloc(sizeof(double) * (size_t)Kc) : NULL;
  keyed *keys = cdf && !replacement ? malloc(sizeof(keyed) * (size_t)Kc) : NULL;
  if (!cdf || (!replacement && !keys) || ai_rand_(u, 0, 1)) {
    if (u && (!cdf || (!replacement && !keys))) ai_seterror("not enough memory");
    ai_unref(out); ai_unref(u); ai_unref(wc); free(cdf); free(keys);
    return NULL;
  }
  const double *pu = ai_data(u);
  int64_t *o = ai_data(out);
  for (int64_t b = 0; b < B; b++) {
    const double *row = pw + b * Kc;
    if (replacement) {
      double acc = 0;
      int64_t last = 0;
      for (int64_t k = 0; k < Kc; k++) { acc += row[k]; cdf[k] = acc; if (row[k] > 0) last = k; }
      for (int64_t j = 0; j < n; j++) {
        double x = pu[b * n + j] * acc;
        int64_t lo = 0, hi = Kc - 1; /* the first k with cdf[k] > x */
        while (lo < hi) { int64_t mid = lo + (hi - lo) / 2; if (cdf[mid] > x) hi = mid; else lo = mid + 1; }
        o[b * n + j] = lo > last ? last : lo; /* rounding never picks a category of weight 0 */
      }
    } else {
      for (int64_t k = 0; k < Kc; k++)
        keys[k] = (keyed){row[k] > 0 ? log1p(-pu[b * Kc + k]) / row[k] : -INFINITY, k};
      qsort(keys, (size_t)Kc, sizeof *keys, by_key_desc);
      for (int64_t j = 0; j < n; j++) o[b * n + j] = keys[j].i;
    }
  }
  ai_unref(u);
  ai_unref(wc);
  free(cdf);
  free(keys);
  return out;
}
