/* dist_tensor.c: the blocking collectives on tensors (dist.h), over the asynchronous byte and
 * element collectives of dist.c. Needs no MPI header: built the same with and without MPI. */
#include <stdio.h>

#include "dist.h"

int ai_dist_check_initialized(const char *fn) {
  if (!ai_dist_initialized()) return ai_seterror("%s: MPI is not initialised (call ai.dist.init() under mpirun)", fn);
  return 0;
}

/* Waits for q (NULL: it failed to start); the error names the collective. */
static int waitreq(ai_dist_req *q, const char *fn) {
  if (!q || ai_dist_wait(q)) {
    char msg[256]; /* ai_error() is the buffer ai_seterror writes */
    snprintf(msg, sizeof msg, "%s", ai_error());
    return ai_seterror("dist.%s: %s", fn, msg);
  }
  return 0;
}

/* A contiguous tensor whose data a collective may write: a new reference to t itself, or to a
 * copy that the caller writes back with copy_back. */
static ai_tensor *work_tensor(ai_tensor *t, bool *copied) {
  *copied = !ai_is_contiguous(t);
  if (!*copied) return ai_ref(t);
  bool was = ai_set_grad_enabled(false);
  ai_tensor *c = ai_clone(t);
  ai_set_grad_enabled(was);
  return c;
}

/* Writes c back into t (t is not contiguous). */
static int copy_back(ai_tensor *t, ai_tensor *c) {
  ai_tensor *d = ai_detach(t); /* in-place writes into a parameter are allowed, as in optimizers */
  int rc = d ? ai_copy_(d, c) : -1;
  ai_unref(d);
  return rc;
}

int ai_dist_all_reduce(ai_tensor *t, ai_dist_op op, bool mean) {
  if (ai_dist_check_initialized("all_reduce")) return -1;
  if (mean && !ai_is_float(t->dtype))
    return ai_seterror("dist.all_reduce: op 'mean' needs a f32 or f64 tensor, got %s", ai_dtype_names[t->dtype]);
  if (t->dtype == AI_U8 && op == AI_DIST_SUM)
    return ai_seterror("dist.all_reduce: op 'sum' needs a f32, f64 or i64 tensor, got u8");
  bool copied;
  ai_tensor *w = work_tensor(t, &copied);
  if (!w) return -1;
  int64_t n = ai_numel(w);
  int rc = n > 0 ? waitreq(ai_dist_iallreduce(ai_data(w), n, w->dtype, op), "all_reduce") : 0;
  if (!rc && mean && ai_dist_size() > 1) {
    double s = 1.0 / ai_dist_size();
    if (w->dtype == AI_F32) { float *p = ai_data(w); for (int64_t i = 0; i < n; i++) p[i] *= (float)s; }
    else { double *p = ai_data(w); for (int64_t i = 0; i < n; i++) p[i] *= s; }
  }
  if (!rc) w->storage->version++;
  if (!rc && copied) rc = copy_back(t, w);
  ai_unref(w);
  return rc;
}

int ai_dist_broadcast(ai_tensor *t, int root) {
  if (ai_dist_check_initialized("broadcast")) return -1;
  if (root < 0 || root >= ai_dist_size())
    return ai_seterror("dist.broadcast: root must be a rank in 0..%d, got %d", ai_dist_size() - 1, root);
  bool copied;
  ai_tensor *w = work_tensor(t, &copied);
  if (!w) return -1;
  int64_t nbytes = ai_numel(w) * (int64_t)ai_dtype_sizes[w->dtype];
  int rc = nbytes > 0 ? waitreq(ai_dist_ibcast(ai_data(w), nbytes, root), "broadcast") : 0;
  if (!rc) w->storage->version++;
  if (!rc && copied) rc = copy_back(t, w);
  ai_unref(w);
  return rc;
}

ai_tensor *ai_dist_all_gather(ai_tensor *t) {
  if (ai_dist_check_initialized("all_gather")) return NULL;
  if (t->ndim >= AI_MAXDIM)
    return AI_ERRNULL("dist.all_gather: the tensor has %d dims; at most %d", t->ndim, AI_MAXDIM - 1);
  bool copied;
  ai_tensor *w = work_tensor(t, &copied);
  if (!w) return NULL;
  int64_t shape[AI_MAXDIM];
  shape[0] = ai_dist_size();
  for (int d = 0; d < t->ndim; d++) shape[d + 1] = t->shape[d];
  ai_tensor *out = ai_empty(t->dtype, t->ndim + 1, shape);
  int64_t nbytes = ai_numel(w) * (int64_t)ai_dtype_sizes[w->dtype];
  if (out && nbytes > 0 && waitreq(ai_dist_iallgather(ai_data(w), ai_data(out), nbytes), "all_gather")) {
    ai_unref(out);
    out = NULL;
  }
  ai_unref(w);
  return out;
}

int ai_dist_barrier(void) {
  if (ai_dist_check_initialized("barrier")) return -1;
  return waitreq(ai_dist_ibarrier(), "barrier");
}

int ai_dist_broadcast_bytes(void *buf, int64_t nbytes, int root, const char *fn) {
  return waitreq(ai_dist_ibcast(buf, nbytes, root), fn);
}
