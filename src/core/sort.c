/* sort.c: sorting along a dim and what is built on it: sort, topk, kthvalue, median, quantile,
 * unique, searchsorted. The order is computed here (a stable merge sort of each row's positions,
 * NaN after every number as in PyTorch, integers compared exactly); the values then come from
 * ai_gather, so they carry gradients. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"

/* A row's keys: doubles for float tensors, int64 for integer ones (a double would lose bits). */
typedef struct {
  const double *f;
  const int64_t *i;
  bool descending;
} keys;

/* a before b? NaN sorts after every number ascending (and before, descending), as PyTorch */
static inline bool before(const keys *k, int64_t a, int64_t b) {
  if (k->i) return k->descending ? k->i[a] > k->i[b] : k->i[a] < k->i[b];
  double x = k->f[a], y = k->f[b];
  if (x != x || y != y) return k->descending ? (x != x && y == y) : (x == x && y != y);
  return k->descending ? x > y : x < y;
}

/* Stable merge sort of the positions p[0..n) by their keys (tmp: n scratch). */
static void merge_sort(const keys *k, int64_t *p, int64_t *tmp, int64_t n) {
  for (int64_t w = 1; w < n; w *= 2) {
    for (int64_t lo = 0; lo < n; lo += 2 * w) {
      int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n, i = lo, j = mid, o = lo;
      while (i < mid && j < hi) tmp[o++] = before(k, p[j], p[i]) ? p[j++] : p[i++];
      while (i < mid) tmp[o++] = p[i++];
      while (j < hi) tmp[o++] = p[j++];
    }
    memcpy(p, tmp, sizeof *p * (size_t)n);
  }
}

/* The layout of t around `dim`: outer x len x inner. */
static void around(const ai_tensor *t, int dim, int64_t *outer, int64_t *len, int64_t *inner) {
  *outer = *inner = 1;
  for (int d = 0; d < dim; d++) *outer *= t->shape[d];
  *len = t->ndim ? t->shape[dim] : 1;
  for (int d = dim + 1; d < t->ndim; d++) *inner *= t->shape[d];
}

/* The sorted positions (0-based, i64, t's shape) of every row of t along dim. */
static ai_tensor *order(ai_tensor *t, int dim, bool descending) {
  bool isint = !ai_is_float(t->dtype);
  ai_tensor *c = ai_to_dtype(t, isint ? AI_I64 : AI_F64), *cc = c ? ai_contiguous(c) : NULL;
  ai_unref(c);
  ai_tensor *ix = cc ? ai_empty(AI_I64, t->ndim, t->shape) : NULL;
  if (!ix) { ai_unref(cc); return NULL; }
  int64_t O, D, I;
  around(t, dim, &O, &D, &I);
  int64_t *scratch = malloc(sizeof(int64_t) * (size_t)(3 * (D ? D : 1)));
  double *fk = isint ? NULL : malloc(sizeof(double) * (size_t)(D ? D : 1));
  int64_t *ik = isint ? malloc(sizeof(int64_t) * (size_t)(D ? D : 1)) : NULL;
  if (!scratch || (!fk && !ik)) {
    free(scratch); free(fk); free(ik); ai_unref(cc); ai_unref(ix);
    return AI_ERRNULL("sort: not enough memory");
  }
  int64_t *out = ai_data(ix);
  for (int64_t o = 0; o < O; o++)
    for (int64_t in = 0; in < I; in++) {
      int64_t base = o * D * I + in;
      for (int64_t j = 0; j < D; j++) {
        if (isint) ik[j] = ((const int64_t *)ai_data(cc))[base + j * I];
        else fk[j] = ((const double *)ai_data(cc))[base + j * I];
        scratch[j] = j;
      }
      keys k = {fk, ik, descending};
      merge_sort(&k, scratch, scratch + D, D);
      for (int64_t j = 0; j < D; j++) out[base + j * I] = scratch[j];
    }
  free(scratch); free(fk); free(ik);
  ai_unref(cc);
  return ix;
}

static int sort_args(ai_tensor *t, int *dim, const char *fn) {
  if (t->ndim == 0) { *dim = 0; return 0; }
  return (*dim = ai_wrapdim(*dim, t->ndim, fn)) < 0 ? -1 : 0;
}

/* values = t sorted along dim (with gradient), indices = where each came from (0-based). */
int ai_sort(ai_tensor *t, int dim, bool descending, ai_tensor **values, ai_tensor **indices) {
  *values = *indices = NULL;
  if (sort_args(t, &dim, "sort")) return -1;
  if (t->ndim == 0) { /* one element: itself */
    *values = ai_clone(t);
    *indices = *values ? ai_zeros(AI_I64, 0, NULL) : NULL;
    if (!*indices) { ai_unref(*values); *values = NULL; return -1; }
    return 0;
  }
  ai_tensor *ix = order(t, dim, descending);
  ai_tensor *v = ix ? ai_gather(t, dim, ix) : NULL;
  if (!v) { ai_unref(ix); return -1; }
  *values = v;
  *indices = ix;
  return 0;
}

int ai_topk(ai_tensor *t, int64_t k, int dim, bool largest, ai_tensor **values, ai_tensor **indices) {
  *values = *indices = NULL;
  if (sort_args(t, &dim, "topk")) return -1;
  int64_t len = t->ndim ? t->shape[dim] : 1;
  if (k < 0 || k > len)
    return ai_seterror("topk: k = %lld is out of range for a dimension of size %lld", (long long)k, (long long)len);
  ai_tensor *v, *ix;
  if (ai_sort(t, dim, largest, &v, &ix)) return -1;
  if (t->ndim == 0) { *values = v; *indices = ix; return 0; }
  *values = ai_narrow(v, dim, 0, k);
  *indices = *values ? ai_narrow(ix, dim, 0, k) : NULL;
  ai_unref(v);
  ai_unref(ix);
  if (!*indices) { ai_unref(*values); *values = NULL; return -1; }
  return 0;
}

/* The k-th smallest (1-based k) along dim; keepdim keeps the dim as size 1. */
int ai_kthvalue(ai_tensor *t, int64_t k, int dim, bool keepdim, ai_tensor **values, ai_tensor **indices) {
  *values = *indices = NULL;
  if (sort_args(t, &dim, "kthvalue")) return -1;
  int64_t len = t->ndim ? t->shape[dim] : 1;
  if (k < 1 || k > len)
    return ai_seterror("kthvalue: k = %lld is out of range 1..%lld", (long long)k, (long long)len);
  ai_tensor *v, *ix;
  if (ai_sort(t, dim, false, &v, &ix)) return -1;
  if (t->ndim == 0) { *values = v; *indices = ix; return 0; }
  ai_tensor *nv = ai_narrow(v, dim, k - 1, 1), *ni = nv ? ai_narrow(ix, dim, k - 1, 1) : NULL;
  ai_unref(v);
  ai_unref(ix);
  if (!ni) { ai_unref(nv); return -1; }
  if (keepdim) { *values = nv; *indices = ni; return 0; }
  *values = ai_squeeze(nv, dim);
  *indices = *values ? ai_squeeze(ni, dim) : NULL;
  ai_unref(nv);
  ai_unref(ni);
  if (!*indices) { ai_unref(*values); *values = NULL; return -1; }
  return 0;
}

/* The lower median, as PyTorch's; a row with a NaN has NaN for its median (the first NaN). */
int ai_median(ai_tensor *t, int dim, bool keepdim, ai_tensor **values, ai_tensor **indices) {
  *values = *indices = NULL;
  if (sort_args(t, &dim, "median")) return -1;
  int64_t len = t->ndim ? t->shape[dim] : 1;
  if (len == 0) return ai_seterror("median: the dimension is empty");
  ai_tensor *v, *ix;
  if (ai_sort(t, dim, false, &v, &ix)) return -1;
  if (t->ndim == 0) { *values = v; *indices = ix; return 0; }
  int64_t shape[AI_MAXDIM];
  for (int d = 0; d < t->ndim; d++) shape[d] = t->shape[d];
  shape[dim] = 1;
  ai_tensor *pos = ai_empty(AI_I64, t->ndim, shape), *vc = pos ? ai_contiguous(v) : NULL;
  int rc = -1;
  if (vc) {
    int64_t O, D, I;
    around(t, dim, &O, &D, &I);
    int64_t *p = ai_data(pos);
    for (int64_t o = 0; o < O; o++)
      for (int64_t in = 0; in < I; in++) {
        int64_t base = o * D * I + in, k = (D - 1) / 2, numbers = D;
        if (ai_is_float(t->dtype)) { /* NaNs sort last: count the numbers before them */
          numbers = 0;
          for (int64_t j = 0; j < D; j++) {
            double x = vc->dtype == AI_F32 ? ((const float *)ai_data(vc))[base + j * I]
                                           : ((const double *)ai_data(vc))[base + j * I];
            if (x == x) numbers++;
          }
        }
        p[o * I + in] = numbers < D ? numbers : k;
      }
    ai_tensor *mv = ai_gather(v, dim, pos), *mi = mv ? ai_gather(ix, dim, pos) : NULL;
    if (mi && !keepdim) {
      *values = ai_squeeze(mv, dim);
      *indices = *values ? ai_squeeze(mi, dim) : NULL;
      ai_unref(mv);
      ai_unref(mi);
    } else {
      *values = mv;
      *indices = mi;
    }
    if (*values && *indices) rc = 0;
    else { ai_unref(*values); ai_unref(*indices); *values = *indices = NULL; }
  }
  ai_unref(pos); ai_unref(vc); ai_unref(v); ai_unref(ix);
  return rc;
}

ai_tensor *ai_quantile(ai_tensor *t, ai_tensor *q, int dim, bool keepdim, ai_quantile_mode mode) {
  if (!ai_is_float(t->dtype)) return AI_ERRNULL("quantile: the input must be a float tensor (got %s)", ai_dtype_names[t->dtype]);
  if (q->ndim > 1) return AI_ERRNULL("quantile: q must be a number or a 1-D tensor");
  if (sort_args(t, &dim, "quantile")) return NULL;
  int64_t nq = ai_numel(q), len = t->ndim ? t->shape[dim] : 1;
  if (len == 0) return AI_ERRNULL("quantile: the dimension is empty");
  ai_tensor *qd = ai_to_dtype(q, AI_F64), *qc = qd ? ai_contiguous(qd) : NULL;
  ai_unref(qd);
  if (!qc) return NULL;
  const double *qp = ai_data(qc);
  for (int64_t i = 0; i < nq; i++)
    if (!(qp[i] >= 0 && qp[i] <= 1)) { ai_unref(qc); return AI_ERRNULL("quantile: q must be in [0, 1] (got %g)", qp[i]); }
  /* positions lo, hi and weights: value = lo + (hi - lo) * w, along the sorted dim */
  ai_tensor *lo = ai_empty(AI_I64, 1, &nq), *hi = lo ? ai_empty(AI_I64, 1, &nq) : NULL;
  ai_tensor *w = hi ? ai_empty(t->dtype, 1, &nq) : NULL;
  ai_tensor *v = NULL, *ix = NULL, *r = NULL;
  if (!w) goto done;
  for (int64_t i = 0; i < nq; i++) {
    double pos = qp[i] * (double)(len - 1), f = floor(pos), c = ceil(pos), wt = pos - f;
    int64_t a = (int64_t)f, b = (int64_t)c;
    switch (mode) {
    case AI_QUANTILE_LOWER: b = a; wt = 0; break;
    case AI_QUANTILE_HIGHER: a = b; wt = 0; break;
    case AI_QUANTILE_NEAREST: a = b = (int64_t)nearbyint(pos); wt = 0; break; /* ties to even, as PyTorch */
    case AI_QUANTILE_MIDPOINT: wt = a == b ? 0 : 0.5; break;
    default: break;
    }
    ((int64_t *)ai_data(lo))[i] = a;
    ((int64_t *)ai_data(hi))[i] = b;
    if (w->dtype == AI_F32) ((float *)ai_data(w))[i] = (float)wt; else ((double *)ai_data(w))[i] = wt;
  }
  if (ai_sort(t, dim, false, &v, &ix)) goto done;
  {
    ai_tensor *sv = v;
    if (t->ndim == 0) { /* a 0-dim input: one value */
      sv = ai_view(v, 1, (int64_t[]){1});
      dim = 0;
      if (!sv) goto done;
    }
    ai_tensor *a = ai_index_select(sv, dim, lo), *b = a ? ai_index_select(sv, dim, hi) : NULL;
    /* the weights along dim: shape 1 x ... x nq x ... x 1 */
    int64_t wshape[AI_MAXDIM];
    for (int d = 0; d < sv->ndim; d++) wshape[d] = 1;
    wshape[dim] = nq;
    ai_tensor *wv = b ? ai_view(w, sv->ndim, wshape) : NULL;
    ai_tensor *diff = wv ? ai_binary(AI_SUB, b, a) : NULL, *step = diff ? ai_binary(AI_MUL, diff, wv) : NULL;
    ai_tensor *val = step ? ai_binary(AI_ADD, a, step) : NULL;
    /* a row with a NaN has NaN quantiles, as PyTorch's (the NaN sorts last: test the last value) */
    ai_tensor *last = val ? ai_narrow(sv, dim, len - 1, 1) : NULL;
    ai_tensor *nanrow = last ? ai_unary(AI_ISNAN, last) : NULL, *nanv = nanrow ? ai_expand(nanrow, val->ndim, val->shape) : NULL;
    ai_tensor *masked = nanv ? ai_masked_fill(val, nanv, NAN) : NULL;
    ai_unref(val);
    val = masked;
    ai_unref(last); ai_unref(nanrow); ai_unref(nanv);
    if (sv != v) ai_unref(sv);
    ai_unref(a); ai_unref(b); ai_unref(wv); ai_unref(diff); ai_unref(step);
    if (!val) goto done;
    /* q's dim goes first (PyTorch); a number q has none; keepdim keeps the reduced dim */
    ai_tensor *moved = val;
    if (q->ndim == 1) {
      int perm[AI_MAXDIM], m = 0;
      perm[m++] = dim;
      for (int d = 0; d < val->ndim; d++) if (d != dim) perm[m++] = d;
      moved = ai_permute(val, perm);
      ai_unref(val);
      if (!moved) goto done;
      if (keepdim) { r = ai_unsqueeze(moved, dim + 1); ai_unref(moved); }
      else r = moved;
    } else {
      r = keepdim && t->ndim ? ai_ref(val) : ai_squeeze(val, dim);
      ai_unref(val);
    }
  }
done:
  ai_unref(qc); ai_unref(lo); ai_unref(hi); ai_unref(w); ai_unref(v); ai_unref(ix);
  return r;
}

int ai_unique(ai_tensor *t, ai_tensor **values, ai_tensor **inverse, ai_tensor **counts) {
  *values = NULL;
  if (inverse) *inverse = NULL;
  if (counts) *counts = NULL;
  int64_t n = ai_numel(t), flat = -1;
  bool was = ai_set_grad_enabled(false);
  ai_tensor *f = ai_reshape(t, 1, &flat), *ix = f ? order(f, 0, false) : NULL, *sv = ix ? ai_gather(f, 0, ix) : NULL;
  ai_set_grad_enabled(was);
  ai_tensor *first = sv ? ai_empty(AI_I64, 1, &n) : NULL, *inv = first ? ai_empty(AI_I64, 1, &n) : NULL;
  int rc = -1;
  if (inv) {
    /* runs of equal values in the sorted order (NaNs are all distinct, as PyTorch's) */
    int64_t *fp = ai_data(first), *ip = ai_data(inv), *op = ai_data(ix), u = 0;
    for (int64_t i = 0; i < n; i++) {
      bool same = i > 0;
      if (same) {
        int64_t p[1] = {i}, q[1] = {i - 1};
        same = ai_is_float(t->dtype) ? ai_get(sv, p) == ai_get(sv, q) : ai_get_int(sv, p) == ai_get_int(sv, q);
      }
      if (!same) fp[u++] = i;
      ip[op[i]] = u - 1;
    }
    ai_tensor *firsts = ai_narrow(first, 0, 0, u);
    ai_tensor *vals = firsts ? ai_index_select(sv, 0, firsts) : NULL;
    ai_tensor *cnt = vals && counts ? ai_empty(AI_I64, 1, &u) : NULL;
    if (cnt) {
      int64_t *cp = ai_data(cnt);
      for (int64_t j = 0; j < u; j++) cp[j] = (j + 1 < u ? fp[j + 1] : n) - fp[j];
    }
    ai_unref(firsts);
    if (vals && (cnt || !counts)) {
      *values = vals;
      if (counts) *counts = cnt;
      if (inverse) {
        *inverse = ai_reshape(inv, t->ndim, t->shape);
        if (!*inverse) { ai_unref(vals); ai_unref(cnt); *values = NULL; if (counts) *counts = NULL; goto out; }
      }
      rc = 0;
    } else {
      ai_unref(vals);
      ai_unref(cnt);
    }
  }
out:
  ai_unref(f); ai_unref(ix); ai_unref(sv); ai_unref(first); ai_unref(inv);
  return rc;
}

ai_tensor *ai_searchsorted(ai_tensor *seq, ai_tensor *values, bool right) {
  if (seq->ndim != 1) return AI_ERRNULL("searchsorted: the sorted sequence must be 1-D (got %d dims)", seq->ndim);
  bool isint = !ai_is_float(seq->dtype) && !ai_is_float(values->dtype);
  ai_dtype dt = isint ? AI_I64 : AI_F64;
  ai_tensor *s0 = ai_to_dtype(seq, dt), *s = s0 ? ai_contiguous(s0) : NULL;
  ai_tensor *v0 = s ? ai_to_dtype(values, dt) : NULL, *v = v0 ? ai_contiguous(v0) : NULL;
  ai_unref(s0);
  ai_unref(v0);
  ai_tensor *out = v ? ai_empty(AI_I64, values->ndim, values->shape) : NULL;
  if (out) {
    int64_t n = seq->shape[0], m = ai_numel(v), *o = ai_data(out);
    for (int64_t i = 0; i < m; i++) { /* the first position whose element is >= v (> v when right) */
      int64_t lo = 0, hi = n;
      while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        bool go_right;
        if (isint) {
          int64_t a = ((const int64_t *)ai_data(s))[mid], x = ((const int64_t *)ai_data(v))[i];
          go_right = right ? a <= x : a < x;
        } else {
          double a = ((const double *)ai_data(s))[mid], x = ((const double *)ai_data(v))[i];
          go_right = right ? !(a > x) : a < x; /* NaN in the sequence counts as largest */
          if (a != a) go_right = false;
        }
        if (go_right) lo = mid + 1; else hi = mid;
      }
      o[i] = lo;
    }
  }
  ai_unref(s);
  ai_unref(v);
  return out;
}
