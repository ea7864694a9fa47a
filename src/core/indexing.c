/* indexing.c: x[...] with a list of parts (integers, ranges, index tensors, masks), read and
 * written, with PyTorch's advanced-indexing rules: integers and ranges make a view; index tensors
 * (broadcast together) gather, differentiably, through one index_select on the indexed dims
 * merged; a u8 mask stands for the index tensors of its true positions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"

/* Positions of a mask's true elements, one i64 tensor of them per dim of the mask (nonzero). */
static int mask_indices(ai_tensor *mask, ai_tensor **out) {
  ai_tensor *m = ai_contiguous(mask);
  if (!m) return -1;
  int64_t n = ai_numel(m), cnt = 0;
  const uint8_t *p = ai_data(m);
  for (int64_t i = 0; i < n; i++) cnt += p[i] != 0;
  int k = m->ndim, rc = 0;
  for (int d = 0; d < k; d++) out[d] = NULL;
  for (int d = 0; d < k && !rc; d++) if (!(out[d] = ai_empty(AI_I64, 1, &cnt))) rc = -1;
  if (!rc) {
    int64_t idx[AI_MAXDIM] = {0}, j = 0;
    for (int64_t i = 0; i < n; i++) {
      if (p[i]) { for (int d = 0; d < k; d++) ((int64_t *)ai_data(out[d]))[j] = idx[d]; j++; }
      for (int d = k - 1; d >= 0; d--) { if (++idx[d] < m->shape[d]) break; idx[d] = 0; }
    }
  } else {
    for (int d = 0; d < k; d++) ai_unref(out[d]);
  }
  ai_unref(m);
  return rc;
}

/* The parts applied: integers and ranges as views of t (*view, a new reference), the index
 * tensors collected (0-based, in the dims of the view: dims[j]) and broadcast to one shape. */
typedef struct {
  ai_tensor *view;
  int k;                        /* index tensors */
  int dims[AI_MAXDIM];          /* the dim of the view each one indexes */
  ai_tensor *idx[AI_MAXDIM];    /* contiguous i64, 0-based, checked, all of shape B */
  int bdim;
  int64_t bshape[AI_MAXDIM];
} adv_plan;

static void plan_free(adv_plan *p) {
  ai_unref(p->view);
  for (int j = 0; j < p->k; j++) ai_unref(p->idx[j]);
}

/* An index tensor's values for a dim of `size`: 1-based ones shifted (1..size; -size..-1 count
 * from the end, as the integers do), checked, copied to a new contiguous i64 tensor. */
static ai_tensor *positions(ai_tensor *ix, int64_t size, int pos, const char *fn) {
  if (ix->dtype != AI_I64)
    return AI_ERRNULL("%s: index %d is a %s tensor; index tensors are i64 (positions) or u8 (masks)", fn, pos,
                      ai_dtype_names[ix->dtype]);
  ai_tensor *c = ai_clone(ix);
  if (!c) return NULL;
  int64_t n = ai_numel(c), *v = ai_data(c);
  for (int64_t i = 0; i < n; i++) {
    int64_t x = v[i];
    if (x == 0) { ai_unref(c); return AI_ERRNULL("%s: index %d holds 0; indices are 1-based", fn, pos); }
    if (x > size || x < -size) {
      ai_unref(c);
      return AI_ERRNULL("%s: index %d holds %lld, out of range for a dimension of size %lld", fn, pos, (long long)x,
                        (long long)size);
    }
    v[i] = x > 0 ? x - 1 : x + size;
  }
  return c;
}

/* One integer part (1-based; negatives count from the end) as a 0-based position. */
static int int_position(int64_t i, int64_t size, int pos, int64_t *out) {
  if (i == 0) return ai_seterror("index: indices are 1-based (0 is not an index)");
  if (i > size || i < -size)
    return ai_seterror("index %lld out of range for dimension %d of size %lld", (long long)i, pos, (long long)size);
  *out = i > 0 ? i - 1 : i + size;
  return 0;
}

static int make_plan(ai_tensor *t, int n, const ai_index_part *parts, const char *fn, adv_plan *p) {
  memset(p, 0, sizeof *p);
  p->view = ai_ref(t);
  ai_tensor *raw[AI_MAXDIM];
  int rawdim[AI_MAXDIM], nraw = 0, d = 0;
  for (int i = 0; i < n; i++) {
    const ai_index_part *q = &parts[i];
    int need = q->kind == AI_INDEX_TENSOR && q->t->dtype == AI_U8 ? (q->t->ndim ? q->t->ndim : 1) : 1;
    if (d + need > p->view->ndim) {
      ai_seterror("%s: too many indices for a tensor of %d dimensions", fn, t->ndim);
      goto fail_raw;
    }
    int64_t size = p->view->shape[d];
    ai_tensor *next = NULL;
    switch (q->kind) {
    case AI_INDEX_INT: {
      int64_t at = 0;
      if (int_position(q->a, size, i + 1, &at)) goto fail_raw;
      next = ai_select(p->view, d, at);
      break;
    }
    case AI_INDEX_RANGE: { /* a..b inclusive, 1-based, negatives from the end; a > b is empty */
      int64_t a = q->a < 0 ? q->a + size + 1 : q->a, b = q->b < 0 ? q->b + size + 1 : q->b;
      if (a < 1 || a > size + 1 || b > size) {
        ai_seterror("index: range %lld..%lld out of bounds for dimension %d of size %lld", (long long)q->a,
                    (long long)q->b, i + 1, (long long)size);
        goto fail_raw;
      }
      next = ai_slice(p->view, d, a - 1, b < a - 1 ? a - 1 : b, q->step);
      d++;
      break;
    }
    case AI_INDEX_TENSOR:
      if (q->t->dtype == AI_U8) { /* a mask over the next dims: their true positions */
        if (q->t->ndim == 0) { ai_seterror("%s: a 0-dim mask cannot index", fn); goto fail_raw; }
        for (int j = 0; j < q->t->ndim; j++)
          if (q->t->shape[j] != p->view->shape[d + j]) {
            char a[128], b[128];
            ai_seterror("%s: mask %d of shape %s does not fit the dims it indexes (the tensor's sizes are %s, "
                        "from dim %d)", fn, i + 1, ai_shape_str(q->t, a, sizeof a), ai_shape_str(p->view, b, sizeof b),
                        d + 1);
            goto fail_raw;
          }
        ai_tensor *m[AI_MAXDIM];
        if (mask_indices(q->t, m)) goto fail_raw;
        for (int j = 0; j < q->t->ndim; j++) { raw[nraw] = m[j]; rawdim[nraw++] = d++; }
      } else {
        if (!(raw[nraw] = positions(q->t, size, i + 1, fn))) goto fail_raw;
        rawdim[nraw++] = d++;
      }
      continue;
    }
    if (!next) goto fail_raw;
    ai_unref(p->view);
    p->view = next;
  }
  /* the index tensors broadcast together (PyTorch's rule) */
  p->bdim = 0;
  ai_tensor shape_only = {0};
  for (int j = 0; j < nraw; j++) {
    shape_only.ndim = p->bdim;
    memcpy(shape_only.shape, p->bshape, sizeof p->bshape);
    if (ai_broadcast_shape(&shape_only, raw[j], &p->bdim, p->bshape)) {
      char msg[512];
      snprintf(msg, sizeof msg, "%s", ai_error());
      ai_seterror("%s: the index tensors do not broadcast together: %s", fn, msg);
      goto fail_raw;
    }
  }
  for (int j = 0; j < nraw; j++) {
    ai_tensor *e = ai_expand(raw[j], p->bdim, p->bshape), *c = e ? ai_contiguous(e) : NULL;
    ai_unref(e);
    ai_unref(raw[j]);
    if (!c) { for (int i = j + 1; i < nraw; i++) ai_unref(raw[i]); goto fail; }
    p->idx[p->k] = c;
    p->dims[p->k++] = rawdim[j];
  }
  return 0;
fail_raw:
  for (int j = 0; j < nraw; j++) ai_unref(raw[j]);
fail:
  plan_free(p);
  memset(p, 0, sizeof *p);
  return -1;
}

/* Brings the indexed dims next to each other: when they are apart, PyTorch puts the result's
 * index dims first, so they are moved to the front (a view). Returns where they start. */
static int gather_dims(adv_plan *p) {
  bool adjacent = true;
  for (int j = 1; j < p->k; j++) if (p->dims[j] != p->dims[j - 1] + 1) adjacent = false;
  if (adjacent) return p->dims[0];
  int perm[AI_MAXDIM], m = 0;
  bool used[AI_MAXDIM] = {false};
  for (int j = 0; j < p->k; j++) { perm[m++] = p->dims[j]; used[p->dims[j]] = true; }
  for (int d = 0; d < p->view->ndim; d++) if (!used[d]) perm[m++] = d;
  ai_tensor *v = ai_permute(p->view, perm);
  if (!v) return -1;
  ai_unref(p->view);
  p->view = v;
  for (int j = 0; j < p->k; j++) p->dims[j] = j;
  return 0;
}

ai_tensor *ai_index(ai_tensor *t, int n, const ai_index_part *parts) {
  adv_plan p;
  if (make_plan(t, n, parts, "index", &p)) return NULL;
  if (p.k == 0) return p.view;
  int at = gather_dims(&p);
  if (at < 0) { plan_free(&p); return NULL; }
  /* merge the indexed dims into one and take the rows that the linear positions name */
  ai_tensor *v = p.view;
  int64_t merged[AI_MAXDIM], F = 1, stride = 1;
  int m = 0;
  for (int d = 0; d < at; d++) merged[m++] = v->shape[d];
  for (int j = 0; j < p.k; j++) F *= v->shape[at + j];
  merged[m++] = F;
  for (int d = at + p.k; d < v->ndim; d++) merged[m++] = v->shape[d];
  int64_t nb = 1;
  for (int d = 0; d < p.bdim; d++) nb *= p.bshape[d];
  ai_tensor *lin = ai_zeros(AI_I64, 1, &nb), *r = NULL;
  if (lin) {
    int64_t *l = ai_data(lin);
    for (int j = p.k - 1; j >= 0; j--) {
      const int64_t *x = ai_data(p.idx[j]);
      for (int64_t i = 0; i < nb; i++) l[i] += x[i] * stride;
      stride *= v->shape[at + j];
    }
    ai_tensor *flat = ai_reshape(v, m, merged), *rows = flat ? ai_index_select(flat, at, lin) : NULL;
    int64_t out[2 * AI_MAXDIM];
    int o = 0;
    for (int d = 0; d < at; d++) out[o++] = v->shape[d];
    for (int d = 0; d < p.bdim; d++) out[o++] = p.bshape[d];
    for (int d = at + p.k; d < v->ndim; d++) out[o++] = v->shape[d];
    if (rows && o > AI_MAXDIM) ai_seterror("index: the result would have %d dimensions (at most %d)", o, AI_MAXDIM);
    else if (rows) r = ai_reshape(rows, o, out);
    ai_unref(flat);
    ai_unref(rows);
  }
  ai_unref(lin);
  plan_free(&p);
  return r;
}

int ai_index_put_(ai_tensor *t, int n, const ai_index_part *parts, ai_tensor *src) {
  if (ai_check_inplace(t, "index assignment")) return -1;
  adv_plan p;
  if (make_plan(t, n, parts, "index assignment", &p)) return -1;
  if (p.k == 0) {
    int rc = ai_copy_(p.view, src);
    plan_free(&p);
    return rc;
  }
  int at = gather_dims(&p);
  if (at < 0) { plan_free(&p); return -1; }
  ai_tensor *v = p.view;
  /* the result's shape (what src broadcasts to): the dims before, B, the dims after */
  int64_t rshape[2 * AI_MAXDIM];
  int rn = 0;
  for (int d = 0; d < at; d++) rshape[rn++] = v->shape[d];
  for (int d = 0; d < p.bdim; d++) rshape[rn++] = p.bshape[d];
  for (int d = at + p.k; d < v->ndim; d++) rshape[rn++] = v->shape[d];
  if (rn > AI_MAXDIM) { plan_free(&p); return ai_seterror("index assignment: too many dimensions"); }
  ai_tensor shape_only = *src;
  shape_only.ndim = rn;
  memcpy(shape_only.shape, rshape, sizeof(int64_t) * (size_t)rn);
  int bn;
  int64_t bs[AI_MAXDIM];
  if (ai_broadcast_shape(src, &shape_only, &bn, bs) || bn != rn || memcmp(bs, rshape, sizeof(int64_t) * (size_t)rn)) {
    char a[128], b[128];
    ai_seterror("index assignment: a value of shape %s does not broadcast to the indexed shape %s",
                ai_shape_str(src, a, sizeof a), ai_shape_str(&shape_only, b, sizeof b));
    plan_free(&p);
    return -1;
  }
  ai_tensor *e = ai_expand(src, rn, rshape), *c = e ? ai_to_dtype(e, v->dtype) : NULL, *s = c ? ai_contiguous(c) : NULL;
  ai_unref(e);
  ai_unref(c);
  if (!s) { plan_free(&p); return -1; }
  /* element by element, in row-major order of the result: a position named twice gets the
   * value of its last occurrence */
  size_t es = ai_dtype_sizes[v->dtype];
  const char *sp = ai_data(s);
  char *base = (char *)v->storage->data;
  int64_t total = ai_numel(s), ridx[2 * AI_MAXDIM] = {0}, nb = 1;
  for (int d = 0; d < p.bdim; d++) nb *= p.bshape[d];
  for (int64_t i = 0; i < total; i++) {
    int64_t off = v->offset, bflat = 0;
    int r = 0;
    for (int d = 0; d < at; d++) off += ridx[r++] * v->stride[d];
    for (int d = 0; d < p.bdim; d++) bflat = bflat * p.bshape[d] + ridx[r++];
    for (int j = 0; j < p.k; j++) off += ((const int64_t *)ai_data(p.idx[j]))[bflat] * v->stride[at + j];
    for (int d = at + p.k; d < v->ndim; d++) off += ridx[r++] * v->stride[d];
    memcpy(base + off * (int64_t)es, sp + i * (int64_t)es, es);
    for (int d = rn - 1; d >= 0; d--) { if (++ridx[d] < rshape[d]) break; ridx[d] = 0; }
  }
  (void)nb;
  ai_unref(s);
  ai_bump_version(v);
  plan_free(&p);
  return 0;
}
