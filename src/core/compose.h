/* compose.h: a small scope of temporaries for C code that composes recording ops (backward
 * rules, composite ops such as losses). Every helper returns NULL once anything in the scope
 * failed, so a formula can be written as one expression and checked once at the end. */
#ifndef AI_COMPOSE_H
#define AI_COMPOSE_H

#include "graph.h"

/* ---- a scope of temporaries: every helper returns NULL once anything failed ---- */
typedef struct { ai_tensor *t[128]; int n; bool err; } scope;

static inline ai_tensor *K(scope *s, ai_tensor *t) {
  if (!t) { s->err = true; return NULL; }
  if (s->n == (int)(sizeof s->t / sizeof *s->t)) { ai_unref(t); s->err = true; ai_seterror("internal: rule scope full"); return NULL; }
  return s->t[s->n++] = t;
}
static inline int done(scope *s) {
  for (int i = 0; i < s->n; i++) ai_unref(s->t[i]);
  return s->err ? -1 : 0;
}
/* Hands t to gin[i] (a new reference). */
static inline void out(scope *s, ai_tensor **gin, int i, ai_tensor *t) {
  if (t && !s->err) gin[i] = ai_ref(t);
  else s->err = true;
}
#define OK2(a, b) (!s->err && (a) && (b))
static inline ai_tensor *saved(scope *s, ai_node *n, int k) { return K(s, ai_saved_get(n, k)); }
static inline ai_tensor *bin(scope *s, ai_binop op, ai_tensor *a, ai_tensor *b) { return OK2(a, b) ? K(s, ai_binary(op, a, b)) : (s->err = true, NULL); }
static inline ai_tensor *add(scope *s, ai_tensor *a, ai_tensor *b) { return bin(s, AI_ADD, a, b); }
static inline ai_tensor *sub(scope *s, ai_tensor *a, ai_tensor *b) { return bin(s, AI_SUB, a, b); }
static inline ai_tensor *mul(scope *s, ai_tensor *a, ai_tensor *b) { return bin(s, AI_MUL, a, b); }
static inline ai_tensor *dvd(scope *s, ai_tensor *a, ai_tensor *b) { return bin(s, AI_DIV, a, b); }
static inline ai_tensor *binsc(scope *s, ai_binop op, ai_tensor *a, double v) { return OK2(a, a) ? K(s, ai_binary_scalar(op, a, v, false)) : (s->err = true, NULL); }
static inline ai_tensor *muls(scope *s, ai_tensor *a, double v) { return binsc(s, AI_MUL, a, v); }
static inline ai_tensor *adds(scope *s, ai_tensor *a, double v) { return binsc(s, AI_ADD, a, v); }
static inline ai_tensor *un(scope *s, ai_unop op, ai_tensor *a) { return OK2(a, a) ? K(s, ai_unary(op, a)) : (s->err = true, NULL); }
/* 1 - x */
static inline ai_tensor *one_minus(scope *s, ai_tensor *a) { return OK2(a, a) ? K(s, ai_binary_scalar(AI_SUB, a, 1.0, true)) : (s->err = true, NULL); }
static inline ai_tensor *zeros_of(scope *s, const ai_input *in) { return K(s, ai_zeros(in->dtype, in->ndim, in->shape)); }
static inline ai_tensor *red(scope *s, ai_redop op, ai_tensor *a, unsigned dims, bool keep) { return OK2(a, a) ? K(s, ai_reduce(op, a, dims, keep)) : (s->err = true, NULL); }
static inline ai_tensor *viewas(scope *s, ai_tensor *a, int ndim, const int64_t *shape) { return OK2(a, a) ? K(s, ai_reshape(a, ndim, shape)) : (s->err = true, NULL); }
static inline ai_tensor *zero_scalar(scope *s, ai_dtype dt) { return K(s, ai_scalar(dt, 0)); }

/* For composite ops: an error naming fn and its two arguments when a and b do not broadcast
 * (before the inner op's own message would name the inner op). */
static inline int ai_check_broadcast(const ai_tensor *a, const ai_tensor *b, const char *fn, const char *an,
                                     const char *bn) {
  int nd;
  int64_t shape[AI_MAXDIM];
  if (!ai_broadcast_shape(a, b, &nd, shape)) return 0;
  char sa[96], sb[96];
  return ai_seterror("%s: %s (%s) and %s (%s) cannot be broadcast together", fn, an, ai_shape_str(a, sa, sizeof sa),
                     bn, ai_shape_str(b, sb, sizeof sb));
}

#endif
