/* shape.c: shape ops composed of recorded views, copies and index ops (flip, roll, tile,
 * repeat_interleave, tril/triu, diag, diagonal, trace, outer, kron, meshgrid). They have no
 * rules of their own: their gradients (and second gradients) come from the ops they use. */
#include <string.h>

#include "compose.h"

/* The product of n sizes, or -1 when it would not fit an int64. */
static int64_t shape_numel(int n, const int64_t *shape) {
  int64_t p = 1;
  for (int d = 0; d < n; d++)
    if (__builtin_mul_overflow(p, shape[d], &p)) return -1;
  return p;
}

/* The positions n-1, ..., 1, 0 (i64). */
static ai_tensor *reversed_positions(int64_t n) {
  ai_tensor *ix = ai_empty(AI_I64, 1, &n);
  if (!ix) return NULL;
  int64_t *p = ai_data(ix);
  for (int64_t i = 0; i < n; i++) p[i] = n - 1 - i;
  return ix;
}

/* Replaces *cur by r (which may be NULL on failure), releasing the old one; returns r. */
static ai_tensor *step(ai_tensor **cur, ai_tensor *r) {
  ai_unref(*cur);
  return *cur = r;
}

/* A result that is always a tensor of its own, as PyTorch's copies are: cur itself when an op
 * has already copied (cur is not t), else (cur is t, or a view of it) a clone of cur. */
static ai_tensor *own_copy(ai_tensor *cur, ai_tensor *t) {
  if (!cur || cur != t) return cur;
  ai_tensor *c = ai_clone(cur);
  ai_unref(cur);
  return c;
}

/* ---------------------------------------------------------------- flip, roll */

ai_tensor *ai_flip(ai_tensor *t, unsigned dims) {
  ai_tensor *cur = ai_ref(t);
  for (int d = 0; d < t->ndim && cur; d++) {
    if (!(dims & (1u << d)) || t->shape[d] < 2) continue;
    ai_tensor *ix = reversed_positions(t->shape[d]);
    if (!ix) { ai_unref(cur); return NULL; }
    step(&cur, ai_index_select(cur, d, ix));
    ai_unref(ix);
  }
  return own_copy(cur, t);
}

/* n shifts along dims (0-based, already checked); n == 0: one shift of the flattened tensor */
ai_tensor *ai_roll(ai_tensor *t, int n, const int64_t *shifts, const int *dims) {
  if (t->ndim == 0) return ai_clone(t);
  if (n == 0) {
    int64_t all = ai_numel(t);
    ai_tensor *flat = ai_reshape(t, 1, &all);
    int zero = 0;
    ai_tensor *r = flat ? ai_roll(flat, 1, shifts, &zero) : NULL;
    ai_unref(flat);
    if (!r) return NULL;
    ai_tensor *back = ai_reshape(r, t->ndim, t->shape);
    ai_unref(r);
    return back;
  }
  ai_tensor *cur = ai_ref(t);
  for (int i = 0; i < n && cur; i++) {
    int d = ai_wrapdim(dims[i], t->ndim, "roll");
    if (d < 0) { ai_unref(cur); return NULL; }
    int64_t size = t->shape[d];
    if (size == 0) continue;
    int64_t s = shifts[i] % size;
    if (s < 0) s += size;
    if (s == 0) continue;
    ai_tensor *parts[2] = {ai_narrow(cur, d, size - s, s), ai_narrow(cur, d, 0, size - s)};
    step(&cur, parts[0] && parts[1] ? ai_cat(parts, 2, d) : NULL);
    ai_unref(parts[0]);
    ai_unref(parts[1]);
  }
  return own_copy(cur, t);
}

/* ---------------------------------------------------------------- tile, repeat_interleave */

/* x with dim d's size s replaced by r * s: blocks repeated (PyTorch's repeat: inner = false)
 * or each entry repeated r times (repeat_interleave: inner = true). Through a 4-D view (P, s,
 * Q with the new dim before or after s), so that any number of dims works. */
static ai_tensor *repeat_dim(ai_tensor *x, int d, int64_t r, bool inner) {
  int64_t P = 1, Q = 1, n = x->shape[d];
  for (int k = 0; k < d; k++) P *= x->shape[k];
  for (int k = d + 1; k < x->ndim; k++) Q *= x->shape[k];
  int64_t shape[AI_MAXDIM];
  memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
  shape[d] = r * n;
  int64_t v4[4] = {P, inner ? n : 1, inner ? 1 : n, Q}, e4[4] = {P, inner ? n : r, inner ? r : n, Q};
  scope S = {.n = 0}, *s = &S;
  ai_tensor *v = viewas(s, x, 4, v4);
  ai_tensor *e = v ? K(s, ai_expand(v, 4, e4)) : NULL;
  ai_tensor *flat = e ? K(s, ai_reshape(e, x->ndim, shape)) : NULL;
  /* a reshape of the expanded view may still be a view of x (size-1 dims): copy it then */
  ai_tensor *res = flat ? ai_contiguous(flat) : NULL;
  done(s);
  return res;
}

/* The sizes of a result, checked: shape[d] * reps[d] for every d, and their product. */
static int check_repeat_sizes(int nd, const int64_t *shape, const int64_t *reps, int64_t *out, const char *fn) {
  for (int d = 0; d < nd; d++) {
    if (reps[d] < 0) return ai_seterror("%s: repeats must be non-negative (got %lld)", fn, (long long)reps[d]);
    if (__builtin_mul_overflow(shape[d], reps[d], &out[d])) return ai_seterror("%s: the result would be too large", fn);
  }
  if (shape_numel(nd, out) < 0) return ai_seterror("%s: the result would be too large", fn);
  return 0;
}

ai_tensor *ai_tile(ai_tensor *t, int n, const int64_t *reps) {
  int nd = n > t->ndim ? n : t->ndim;
  if (nd > AI_MAXDIM) return AI_ERRNULL("tile: at most %d dimensions", AI_MAXDIM);
  int64_t shape[AI_MAXDIM] = {0}, r[AI_MAXDIM] = {0}, out[AI_MAXDIM];
  for (int d = 0; d < nd; d++) { /* both aligned to the right, padded with 1s */
    int td = d - (nd - t->ndim), rd = d - (nd - n);
    shape[d] = td >= 0 ? t->shape[td] : 1;
    r[d] = rd >= 0 ? reps[rd] : 1;
  }
  if (check_repeat_sizes(nd, shape, r, out, "tile")) return NULL;
  ai_tensor *cur = ai_reshape(t, nd, shape);
  bool copied = false;
  for (int d = 0; d < nd && cur; d++)
    if (r[d] != 1) { step(&cur, repeat_dim(cur, d, r[d], false)); copied = true; }
  return copied ? cur : own_copy(cur, cur);
}

/* repeats: one count for every entry (reps == NULL) or an i64 tensor of counts, one per entry
 * along dim (or a single one); dim < 0: of the flattened tensor. */
ai_tensor *ai_repeat_interleave(ai_tensor *t, int64_t count, ai_tensor *reps, int dim) {
  if (reps && reps->dtype != AI_I64)
    return AI_ERRNULL("repeat_interleave: repeats must be an integer or an i64 tensor, got %s", ai_dtype_names[reps->dtype]);
  if (reps && reps->ndim > 1)
    return AI_ERRNULL("repeat_interleave: repeats must be 0-D or 1-D, got %d dimensions", reps->ndim);
  int64_t zero[AI_MAXDIM] = {0};
  if (reps && ai_numel(reps) == 1) { count = ai_get_int(reps, zero); reps = NULL; }
  ai_tensor *x;
  if (dim < 0) {
    int64_t all = ai_numel(t);
    x = ai_reshape(t, 1, &all);
    dim = 0;
  } else if (t->ndim == 0) {
    return AI_ERRNULL("repeat_interleave: a 0-dim tensor has no dimension to repeat along");
  } else if ((dim = ai_wrapdim(dim, t->ndim, "repeat_interleave")) < 0) {
    return NULL;
  } else {
    x = ai_ref(t);
  }
  if (!x) return NULL;
  int64_t size = x->shape[dim];
  ai_tensor *res = NULL;
  if (!reps) {
    int64_t r[AI_MAXDIM], out[AI_MAXDIM];
    for (int d = 0; d < x->ndim; d++) r[d] = d == dim ? count : 1;
    if (!check_repeat_sizes(x->ndim, x->shape, r, out, "repeat_interleave"))
      res = count == 1 ? ai_clone(x) : repeat_dim(x, dim, count, true);
  } else if (reps->shape[0] != size) {
    ai_seterror("repeat_interleave: repeats must hold one count per entry along the dimension (%lld), got %lld",
                (long long)size, (long long)reps->shape[0]);
  } else {
    int64_t total = 0, *c = NULL;
    ai_tensor *cc = ai_contiguous(reps);
    int bad = cc ? 0 : -1;
    if (cc) c = ai_data(cc);
    for (int64_t i = 0; i < size && !bad; i++) {
      if (c[i] < 0) bad = ai_seterror("repeat_interleave: repeats must be non-negative (got %lld)", (long long)c[i]);
      else if (__builtin_add_overflow(total, c[i], &total) || total > ((int64_t)1 << 40))
        bad = ai_seterror("repeat_interleave: the result would be too large");
    }
    ai_tensor *ix = bad ? NULL : ai_empty(AI_I64, 1, &total);
    if (ix) {
      int64_t *p = ai_data(ix), k = 0;
      for (int64_t i = 0; i < size; i++)
        for (int64_t j = 0; j < c[i]; j++) p[k++] = i;
      res = ai_index_select(x, dim, ix);
      ai_unref(ix);
    }
    ai_unref(cc);
  }
  ai_unref(x);
  return res;
}

/* ---------------------------------------------------------------- triangles and diagonals */

/* The lower (upper = false: j - i <= k) or upper (j - i >= k) triangle of the last two dims. */
ai_tensor *ai_tril(ai_tensor *t, int64_t k, bool upper) {
  const char *fn = upper ? "triu" : "tril";
  if (t->ndim < 2) return AI_ERRNULL("%s: expects a tensor of at least 2 dimensions, got %d", fn, t->ndim);
  int64_t H = t->shape[t->ndim - 2], W = t->shape[t->ndim - 1], hw[2] = {H, W};
  ai_tensor *drop = ai_empty(AI_U8, 2, hw);
  if (!drop) return NULL;
  uint8_t *m = ai_data(drop);
  for (int64_t i = 0; i < H; i++)
    for (int64_t j = 0; j < W; j++) m[i * W + j] = upper ? j - i < k : j - i > k;
  ai_tensor *r = ai_masked_fill(t, drop, 0);
  ai_unref(drop);
  return r;
}

/* The length and the flat start of diagonal `off` of an n x m matrix laid out in rows of m. */
static void diagonal_span(int64_t n, int64_t m, int64_t off, int64_t *len, int64_t *start) {
  if (off >= 0) {
    *len = off >= m ? 0 : (n < m - off ? n : m - off);
    *start = *len ? off : 0;
  } else {
    *len = off <= -n ? 0 : (n + off < m ? n + off : m);
    *start = *len ? -off * m : 0;
  }
}

ai_tensor *ai_diagonal(ai_tensor *t, int64_t off, int d1, int d2) {
  if (t->ndim < 2) return AI_ERRNULL("diagonal: expects a tensor of at least 2 dimensions, got %d", t->ndim);
  if ((d1 = ai_wrapdim(d1, t->ndim, "diagonal")) < 0 || (d2 = ai_wrapdim(d2, t->ndim, "diagonal")) < 0) return NULL;
  if (d1 == d2) return AI_ERRNULL("diagonal: the two dimensions must differ (both are %d)", d1 + 1);
  int perm[AI_MAXDIM], k = 0;
  int64_t shape[AI_MAXDIM];
  for (int d = 0; d < t->ndim; d++)
    if (d != d1 && d != d2) { shape[k] = t->shape[d]; perm[k++] = d; }
  perm[k] = d1;
  perm[k + 1] = d2;
  int64_t n = t->shape[d1], m = t->shape[d2], len, start;
  shape[k] = n * m;
  diagonal_span(n, m, off, &len, &start);
  scope S = {.n = 0}, *s = &S;
  ai_tensor *p = K(s, ai_permute(t, perm));
  ai_tensor *flat = p ? viewas(s, p, k + 1, shape) : NULL; /* a view when the two dims are the last, contiguous */
  ai_tensor *res = flat ? ai_slice(flat, k, start, len ? start + (len - 1) * (m + 1) + 1 : start, m + 1) : NULL;
  done(s);
  return res;
}

/* 1-D: the square matrix with t on diagonal k; 2-D: diagonal k of t, as a vector. */
ai_tensor *ai_diag(ai_tensor *t, int64_t k) {
  if (t->ndim == 2) return ai_diagonal(t, k, 0, 1);
  if (t->ndim != 1) return AI_ERRNULL("diag: expects a 1-D or 2-D tensor, got %d dimensions", t->ndim);
  const int64_t big = (int64_t)1 << 40;
  int64_t n = t->shape[0], ak = k < -big ? big : k < 0 ? -k : k, N, NN;
  if (__builtin_add_overflow(n, ak, &N) || __builtin_mul_overflow(N, N, &NN))
    return AI_ERRNULL("diag: the result would be too large");
  int64_t sq[2] = {N, N};
  ai_tensor *flat = ai_slice_backward(t, 1, &NN, 0, k >= 0 ? k : ak * N, N + 1);
  ai_tensor *res = flat ? ai_view(flat, 2, sq) : NULL;
  ai_unref(flat);
  return res;
}

ai_tensor *ai_trace(ai_tensor *t) {
  if (t->ndim != 2) return AI_ERRNULL("trace: expects a 2-D tensor, got %d dimensions", t->ndim);
  ai_tensor *d = ai_diagonal(t, 0, 0, 1);
  ai_tensor *r = d ? ai_reduce(AI_RSUM, d, 0, false) : NULL;
  ai_unref(d);
  return r;
}

/* ---------------------------------------------------------------- products of shapes */

ai_tensor *ai_outer(ai_tensor *a, ai_tensor *b) {
  if (a->ndim != 1 || b->ndim != 1)
    return AI_ERRNULL("outer: expects two 1-D tensors, got %d and %d dimensions", a->ndim, b->ndim);
  scope S = {.n = 0}, *s = &S;
  ai_tensor *col = viewas(s, a, 2, (int64_t[]){a->shape[0], 1}), *row = viewas(s, b, 2, (int64_t[]){1, b->shape[0]});
  ai_tensor *r = OK2(col, row) ? ai_binary(AI_MUL, col, row) : NULL;
  done(s);
  return r;
}

/* The Kronecker product: a's and b's dims aligned to the right; every block of the result is
 * one element of a times b. Through a product of 2 x nd dims, so nd is at most 4. */
ai_tensor *ai_kron(ai_tensor *a, ai_tensor *b) {
  int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
  if (2 * nd > AI_MAXDIM) return AI_ERRNULL("kron: at most %d dimensions", AI_MAXDIM / 2);
  int64_t sa[AI_MAXDIM], sb[AI_MAXDIM], out[AI_MAXDIM];
  for (int d = 0; d < nd; d++) {
    int da = d - (nd - a->ndim), db = d - (nd - b->ndim);
    int64_t x = da >= 0 ? a->shape[da] : 1, y = db >= 0 ? b->shape[db] : 1;
    sa[2 * d] = x, sa[2 * d + 1] = 1;
    sb[2 * d] = 1, sb[2 * d + 1] = y;
    if (__builtin_mul_overflow(x, y, &out[d])) return AI_ERRNULL("kron: the result would be too large");
  }
  if (shape_numel(nd, out) < 0) return AI_ERRNULL("kron: the result would be too large");
  scope S = {.n = 0}, *s = &S;
  ai_tensor *p = mul(s, viewas(s, a, 2 * nd, sa), viewas(s, b, 2 * nd, sb));
  ai_tensor *r = p ? ai_reshape(p, nd, out) : NULL;
  done(s);
  return r;
}

/* Coordinate grids: out[i] is ts[i] (0-D or 1-D) expanded along dim i of the grid (views, as
 * PyTorch's). xy: the first two dims of the grid are swapped (numpy's Cartesian indexing). */
int ai_meshgrid(ai_tensor **ts, int n, bool xy, ai_tensor **out) {
  if (n < 1) return ai_seterror("meshgrid: needs at least one tensor");
  if (n > AI_MAXDIM) return ai_seterror("meshgrid: at most %d tensors", AI_MAXDIM);
  int64_t grid[AI_MAXDIM];
  int pos[AI_MAXDIM];
  for (int i = 0; i < n; i++) {
    if (ts[i]->ndim > 1)
      return ai_seterror("meshgrid: tensor %d must be 0-D or 1-D, got %d dimensions", i + 1, ts[i]->ndim);
    if (ts[i]->dtype != ts[0]->dtype)
      return ai_seterror("meshgrid: all tensors must have one dtype (tensor 1 is %s, tensor %d %s)",
                         ai_dtype_names[ts[0]->dtype], i + 1, ai_dtype_names[ts[i]->dtype]);
    pos[i] = xy && n > 1 && i < 2 ? 1 - i : i;
    grid[pos[i]] = ai_numel(ts[i]);
  }
  if (shape_numel(n, grid) < 0) return ai_seterror("meshgrid: the grid would be too large");
  for (int i = 0; i < n; i++) out[i] = NULL;
  for (int i = 0; i < n; i++) {
    int64_t v[AI_MAXDIM];
    for (int d = 0; d < n; d++) v[d] = d == pos[i] ? grid[d] : 1;
    ai_tensor *r = ai_reshape(ts[i], n, v);
    out[i] = r ? ai_expand(r, n, grid) : NULL;
    ai_unref(r);
    if (!out[i]) {
      for (int j = 0; j < i; j++) { ai_unref(out[j]); out[j] = NULL; }
      return -1;
    }
  }
  return 0;
}
