/* dist_buckets.c: the gradient buckets of data-parallel training (dist_buckets.h): filled by
 * the gradient-ready hooks during backward, reduced on the communication thread of dist.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "dist_buckets.h"

#define MAX_VALUES AI_DIST_MAX_VALUES

typedef struct ai_dist_buckets buckets;

typedef struct {
  buckets *owner;
  ai_tensor *p;
  int bucket;
  int64_t offset;  /* of its gradient, in elements of the bucket's dtype */
  int64_t numel;
  int flag;        /* index of its flag in the bucket */
  bool ready;
} slot;

typedef struct {
  ai_dtype dt;
  void *buf;
  int64_t ngrad, count; /* gradient elements; all elements (gradients, flags, values) */
  int first, nslots, nready;
  int64_t values;       /* offset of the values, or -1 */
  ai_dist_req *req;
} bucket;

struct ai_dist_buckets {
  slot *slots;
  int nslots;
  bucket *b;
  int nb;
  int next;             /* the next bucket to start */
  int early, last_early; /* buckets started during backward (this step, the last one) */
  bool armed, swept;
  int nvalues;
  double values[MAX_VALUES];
  char err[256];
};

static double get(const bucket *b, int64_t i) {
  return b->dt == AI_F32 ? ((const float *)b->buf)[i] : ((const double *)b->buf)[i];
}

static void set(bucket *b, int64_t i, double v) {
  if (b->dt == AI_F32) ((float *)b->buf)[i] = (float)v;
  else ((double *)b->buf)[i] = v;
}

static void no_release(void *ctx, void *data) { (void)ctx, (void)data; }

static void record_error(buckets *u, const char *what) {
  if (!u->err[0]) snprintf(u->err, sizeof u->err, "%s: %s", what, ai_error());
}

/* Copies the gradients (zeros where there is none) and flags of bucket k, and the values into
 * the last bucket, then starts its all_reduce. */
static void start_bucket(buckets *u, int k) {
  bucket *b = &u->b[k];
  size_t esz = ai_dtype_sizes[b->dt];
  for (int i = b->first; i < b->first + b->nslots; i++) {
    slot *s = &u->slots[i];
    char *dst = (char *)b->buf + s->offset * (int64_t)esz;
    ai_tensor *g = s->p->grad;
    set(b, b->ngrad + s->flag, g ? 1 : 0);
    if (!g) { memset(dst, 0, (size_t)s->numel * esz); continue; }
    if (g->dtype == b->dt && ai_is_contiguous(g) && ai_numel(g) == s->numel) {
      memcpy(dst, ai_data(g), (size_t)s->numel * esz);
      continue;
    }
    ai_tensor *v = ai_from_external(b->dt, s->p->ndim, s->p->shape, dst, no_release, NULL);
    bool was = ai_set_grad_enabled(false);
    if (!v || ai_copy_(v, g)) { record_error(u, "DataParallel"); memset(dst, 0, (size_t)s->numel * esz); }
    ai_set_grad_enabled(was);
    ai_unref(v);
  }
  if (b->values >= 0)
    for (int i = 0; i < MAX_VALUES; i++) set(b, b->values + i, i < u->nvalues ? u->values[i] : 0);
  b->req = ai_dist_iallreduce(b->buf, b->count, b->dt, AI_DIST_SUM);
  if (!b->req) record_error(u, "DataParallel");
}

static void start_ready(buckets *u) {
  while (u->next < u->nb && u->b[u->next].nready == u->b[u->next].nslots) start_bucket(u, u->next++);
}

static void mark_ready(buckets *u, slot *s) {
  s->ready = true;
  u->b[s->bucket].nready++;
}

static void on_grad_ready(void *ctx, ai_tensor *leaf) {
  slot *s = ctx;
  buckets *u = s->owner;
  if (!u->armed || s->ready) return;
  if (!u->swept) { /* parameters this backward does not reach are ready at once */
    u->swept = true;
    for (int i = 0; i < u->nslots; i++)
      if (!u->slots[i].ready && !ai_grad_hook_reached(u->slots[i].p)) mark_ready(u, &u->slots[i]);
  }
  mark_ready(u, s);
  int before = u->next;
  start_ready(u);
  u->early += u->next - before;
}

/* Waits for every started bucket (buffers must outlive their operations). */
static void wait_all(buckets *u) {
  for (int k = 0; k < u->nb; k++) {
    if (u->b[k].req && ai_dist_wait(u->b[k].req)) record_error(u, "DataParallel");
    u->b[k].req = NULL;
  }
}

static void reset(buckets *u) {
  u->armed = false;
  u->swept = false;
  u->next = 0;
  u->early = 0;
  for (int k = 0; k < u->nb; k++) u->b[k].nready = 0;
  for (int i = 0; i < u->nslots; i++) u->slots[i].ready = false;
}

static void release(buckets *u) {
  if (!u->slots && !u->b) return;
  wait_all(u);
  for (int i = 0; i < u->nslots; i++) {
    if (!u->slots[i].p) continue;
    ai_clear_grad_hook(u->slots[i].p, &u->slots[i]);
    ai_unref(u->slots[i].p);
  }
  for (int k = 0; k < u->nb; k++) free(u->b[k].buf);
  free(u->slots);
  free(u->b);
  u->slots = NULL;
  u->b = NULL;
  u->nslots = u->nb = 0;
}

ai_dist_buckets *ai_dist_buckets_new(ai_tensor *const *params, int n, int64_t cap, bool hooks) {
  if (cap < 1) return AI_ERRNULL("DataParallel: bucket size must be positive");
  buckets *u = calloc(1, sizeof *u);
  if (!u) return AI_ERRNULL("not enough memory");
  u->slots = calloc((size_t)(n > 0 ? n : 1), sizeof *u->slots);
  u->b = calloc((size_t)(n > 0 ? n : 1), sizeof *u->b); /* at most one bucket per parameter */
  if (!u->slots || !u->b) goto oom;
  /* reverse order, without duplicates (tied weights) and frozen parameters */
  for (int i = n - 1; i >= 0; i--) {
    ai_tensor *p = params[i];
    if (!p->requires_grad) continue;
    if (!ai_is_float(p->dtype)) {
      ai_seterror("DataParallel: parameter %d is %s", i + 1, ai_dtype_names[p->dtype]);
      goto fail;
    }
    if (p->grad_fn) {
      ai_seterror("DataParallel: parameter %d is not a leaf tensor", i + 1);
      goto fail;
    }
    bool dup = false;
    for (int j = 0; j < u->nslots && !dup; j++) dup = u->slots[j].p == p;
    if (dup) continue;
    slot *s = &u->slots[u->nslots];
    s->owner = u;
    s->numel = ai_numel(p);
    if (hooks && ai_set_grad_hook(p, on_grad_ready, s)) {
      char msg[256]; /* ai_error() is the buffer ai_seterror writes */
      snprintf(msg, sizeof msg, "%s", ai_error());
      ai_seterror("DataParallel: parameter %d: %s", i + 1, msg);
      goto fail;
    }
    s->p = ai_ref(p);
    u->nslots++;
    /* a new bucket when this one is full or the dtype changes */
    bucket *b = u->nb ? &u->b[u->nb - 1] : NULL;
    if (!b || b->dt != p->dtype || (int64_t)(b->ngrad * (int64_t)ai_dtype_sizes[b->dt]) >= cap) {
      b = &u->b[u->nb++];
      b->dt = p->dtype;
      b->first = u->nslots - 1;
      b->values = -1;
    }
    s->bucket = u->nb - 1;
    s->offset = b->ngrad;
    s->flag = b->nslots++;
    b->ngrad += s->numel;
  }
  if (u->nb == 0) { /* no parameter needs a gradient: the values travel alone */
    u->b[0].dt = AI_F64;
    u->nb = 1;
  }
  for (int k = 0; k < u->nb; k++) {
    bucket *b = &u->b[k];
    b->count = b->ngrad + b->nslots; /* the gradients, then one flag per parameter */
    if (k == u->nb - 1) { b->values = b->count; b->count += MAX_VALUES; } /* then the values */
    b->buf = malloc((size_t)b->count * ai_dtype_sizes[b->dt]);
    if (!b->buf) goto oom;
  }
  return u;
oom:
  ai_seterror("not enough memory");
fail:
  ai_dist_buckets_free(u);
  return NULL;
}

void ai_dist_buckets_free(ai_dist_buckets *u) {
  if (!u) return;
  release(u);
  free(u);
}

int ai_dist_buckets_start(ai_dist_buckets *u, const double *values, int nvalues) {
  if (u->armed) return ai_seterror("DataParallel: start() twice without finish()");
  if (nvalues > MAX_VALUES) return ai_seterror("DataParallel: at most %d values, got %d", MAX_VALUES, nvalues);
  u->nvalues = nvalues > 0 ? nvalues : 0;
  for (int i = 0; i < u->nvalues; i++) u->values[i] = values[i];
  u->err[0] = 0;
  reset(u);
  u->armed = true;
  return 0;
}

int ai_dist_buckets_finish(ai_dist_buckets *u, double *means, int *nvalues) {
  *nvalues = 0;
  if (!u->armed) return ai_seterror("DataParallel: finish() without start()");
  u->last_early = u->early;
  while (u->next < u->nb) start_bucket(u, u->next++);
  wait_all(u);
  u->armed = false;
  if (u->err[0]) {
    reset(u);
    return ai_seterror("%s", u->err);
  }
  double scale = 1.0 / ai_dist_size();
  for (int i = 0; i < u->nslots; i++) {
    slot *s = &u->slots[i];
    bucket *b = &u->b[s->bucket];
    if (get(b, b->ngrad + s->flag) == 0) continue; /* no rank has a gradient */
    size_t esz = ai_dtype_sizes[b->dt];
    char *src = (char *)b->buf + s->offset * (int64_t)esz;
    if (b->dt == AI_F32) { float *v = (float *)src; for (int64_t j = 0; j < s->numel; j++) v[j] *= (float)scale; }
    else { double *v = (double *)src; for (int64_t j = 0; j < s->numel; j++) v[j] *= scale; }
    ai_tensor *g = s->p->grad;
    if (g && g->dtype == b->dt && ai_is_contiguous(g) && ai_numel(g) == s->numel && !g->grad_fn && !g->requires_grad) {
      memcpy(ai_data(g), src, (size_t)s->numel * esz);
      g->storage->version++;
      continue;
    }
    ai_tensor *fresh = ai_empty(s->p->dtype, s->p->ndim, s->p->shape); /* replaces a view or a graph */
    if (!fresh) { reset(u); return -1; }
    memcpy(ai_data(fresh), src, (size_t)s->numel * esz);
    ai_unref(s->p->grad);
    s->p->grad = fresh;
  }
  bucket *last = &u->b[u->nb - 1];
  for (int i = 0; i < u->nvalues; i++) means[i] = get(last, last->values + i) * scale;
  *nvalues = u->nvalues;
  reset(u);
  return 0;
}

void ai_dist_buckets_get_info(const ai_dist_buckets *u, ai_dist_buckets_info *info) {
  info->buckets = u->nb;
  info->parameters = u->nslots;
  info->elements = 0;
  for (int k = 0; k < u->nb; k++) info->elements += u->b[k].ngrad;
  info->overlapped = u->last_early;
}

int64_t ai_dist_bucket_bytes(const ai_dist_buckets *u, int k) {
  return u->b[k].count * (int64_t)ai_dtype_sizes[u->b[k].dt];
}
