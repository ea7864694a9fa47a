/* l_dist.c: ai._dist, the C side of ai.dist (lua/aiart/dist.lua): MPI start-up and the
 * collectives on tensors (src/core/dist.h), and the gradient buckets of data-parallel training.
 * Ranks are 1-based here, as everywhere in Lua.
 *
 *   _dist.available() -> bool (built with MPI); _dist.hint: how to enable it
 *   _dist.launched_size() -> n > 0 under an MPI launcher, -1 launched with an unknown size, 0 not
 *   _dist.init() -> rank, size, local_rank, local_size;  _dist.finalize()
 *   _dist.all_reduce(t, "sum"|"mean"|"max"|"min")  in place;  _dist.broadcast(t, root)  in place
 *   _dist.all_gather(t) -> size x t's shape;  _dist.barrier();  _dist.broadcast_string(s|nil, root)
 *   _dist.library() -> MPI's version line;  _dist.comm_seconds();  _dist.cpus()
 *   _dist.buckets(params, bucket_bytes, hooks) -> a bucket set (see below; hooks=false: no
 *     overlap with backward, and the parameters may belong to another set too)
 *
 * A bucket set flattens the gradients of a parameter list into a few contiguous buffers and
 * reduces each with one all_reduce (mean over ranks). Buckets hold the parameters in reverse
 * order, the order in which backward produces their gradients. Between set:start(values) and
 * set:finish(), every parameter's gradient-ready hook (ai_set_grad_hook) marks it ready (and
 * the first such call marks those that the backward does not reach at all); as soon
 * as bucket k and all buckets before it are complete, bucket k is copied and its all_reduce
 * starts on the communication thread while backward goes on. finish() starts what is left,
 * waits, writes the means into the .grad tensors and returns the means of the values given to
 * start (a few numbers, such as the loss, that travel in the last bucket). Every bucket also
 * carries one flag per parameter (1 when this rank has a gradient), so a parameter that no rank
 * reached keeps .grad = nil, as it would in one process. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_getaffinity */
#endif
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lbind.h"
#include "../core/dist.h"

#define BUCKETS_MT "aiart.dist.Buckets"
#define MAX_VALUES 32

static int check_init(lua_State *L, const char *fn) {
  if (!ai_dist_initialized()) return luaL_error(L, "%s: MPI is not initialised (call ai.dist.init() under mpirun)", fn);
  return 0;
}

static int waitreq(lua_State *L, ai_dist_req *q, const char *fn) {
  if (!q || ai_dist_wait(q)) return luaL_error(L, "dist.%s: %s", fn, ai_error());
  return 0;
}

/* ---------------------------------------------------------------- set-up */

static int l_available(lua_State *L) {
  lua_pushboolean(L, ai_dist_available());
  return 1;
}

static int l_launched_size(lua_State *L) {
  lua_pushinteger(L, ai_dist_launched_size());
  return 1;
}

static int l_init(lua_State *L) {
  if (ai_dist_init()) return luaL_error(L, "%s", ai_error());
  lua_pushinteger(L, ai_dist_rank() + 1);
  lua_pushinteger(L, ai_dist_size());
  lua_pushinteger(L, ai_dist_local_rank() + 1);
  lua_pushinteger(L, ai_dist_local_size());
  return 4;
}

static int l_finalize(lua_State *L) {
  if (ai_dist_finalize()) return luaL_error(L, "%s", ai_error());
  return 0;
}

static int l_initialized(lua_State *L) {
  lua_pushboolean(L, ai_dist_initialized());
  return 1;
}

static int l_library(lua_State *L) {
  lua_pushstring(L, ai_dist_library());
  return 1;
}

static int l_comm_seconds(lua_State *L) {
  lua_pushnumber(L, ai_dist_comm_seconds());
  return 1;
}

/* _dist.cpus() -> the CPUs this process may run on, the CPUs online */
static int l_cpus(lua_State *L) {
  cpu_set_t set;
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  int mine = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : (int)online;
  lua_pushinteger(L, mine);
  lua_pushinteger(L, online > 0 ? online : mine);
  return 2;
}

/* ---------------------------------------------------------------- collectives on tensors */

/* A contiguous tensor whose data the collective may write: t itself, or a copy left on the
 * stack (owned by Lua) that the caller copies back. */
static ai_tensor *work_tensor(lua_State *L, ai_tensor *t, bool *copied) {
  *copied = !ai_is_contiguous(t);
  if (!*copied) return t;
  bool was = ai_set_grad_enabled(false);
  ai_tensor *c = ai_clone(t);
  ai_set_grad_enabled(was);
  lai_push(L, c);
  return c;
}

/* Writes c back into t (t is not contiguous). */
static void copy_back(lua_State *L, ai_tensor *t, ai_tensor *c) {
  ai_tensor *d = ai_detach(t); /* in-place writes into a parameter are allowed, as in optimizers */
  int rc = d ? ai_copy_(d, c) : -1;
  ai_unref(d);
  if (rc) lai_error(L);
}

static int l_all_reduce(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  static const char *const ops[] = {"sum", "mean", "max", "min", NULL};
  int op = luaL_checkoption(L, 2, "sum", ops);
  check_init(L, "all_reduce");
  if (op == 1 && !ai_is_float(t->dtype)) return luaL_error(L, "dist.all_reduce: op 'mean' needs a f32 or f64 tensor, got %s", ai_dtype_names[t->dtype]);
  if (t->dtype == AI_U8 && op < 2) return luaL_error(L, "dist.all_reduce: op '%s' needs a f32, f64 or i64 tensor, got u8", ops[op]);
  bool copied;
  ai_tensor *w = work_tensor(L, t, &copied);
  int64_t n = ai_numel(w);
  ai_dist_op dop = op == 2 ? AI_DIST_MAX : op == 3 ? AI_DIST_MIN : AI_DIST_SUM;
  if (n > 0) waitreq(L, ai_dist_iallreduce(ai_data(w), n, w->dtype, dop), "all_reduce");
  if (op == 1 && ai_dist_size() > 1) {
    double s = 1.0 / ai_dist_size();
    if (w->dtype == AI_F32) { float *p = ai_data(w); for (int64_t i = 0; i < n; i++) p[i] *= (float)s; }
    else { double *p = ai_data(w); for (int64_t i = 0; i < n; i++) p[i] *= s; }
  }
  w->storage->version++;
  if (copied) copy_back(L, t, w);
  lua_settop(L, 1);
  return 1;
}

static int l_broadcast(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  lua_Integer root = luaL_checkinteger(L, 2);
  check_init(L, "broadcast");
  if (root < 1 || root > ai_dist_size())
    return luaL_error(L, "dist.broadcast: src must be a rank in 1..%d, got %d", ai_dist_size(), (int)root);
  bool copied;
  ai_tensor *w = work_tensor(L, t, &copied);
  int64_t nbytes = ai_numel(w) * (int64_t)ai_dtype_sizes[w->dtype];
  if (nbytes > 0) waitreq(L, ai_dist_ibcast(ai_data(w), nbytes, (int)root - 1), "broadcast");
  w->storage->version++;
  if (copied) copy_back(L, t, w);
  lua_settop(L, 1);
  return 1;
}

static int l_all_gather(lua_State *L) {
  ai_tensor *t = lai_check(L, 1);
  check_init(L, "all_gather");
  if (t->ndim >= AI_MAXDIM) return luaL_error(L, "dist.all_gather: the tensor has %d dims; at most %d", t->ndim, AI_MAXDIM - 1);
  bool copied;
  ai_tensor *w = work_tensor(L, t, &copied);
  int64_t shape[AI_MAXDIM];
  shape[0] = ai_dist_size();
  for (int d = 0; d < t->ndim; d++) shape[d + 1] = t->shape[d];
  ai_tensor *out = ai_empty(t->dtype, t->ndim + 1, shape);
  lai_push(L, out);
  int64_t nbytes = ai_numel(w) * (int64_t)ai_dtype_sizes[w->dtype];
  if (nbytes > 0) waitreq(L, ai_dist_iallgather(ai_data(w), ai_data(out), nbytes), "all_gather");
  return 1;
}

static int l_barrier(lua_State *L) {
  check_init(L, "barrier");
  waitreq(L, ai_dist_ibarrier(), "barrier");
  return 0;
}

/* _dist.broadcast_string(s, root): s on the root (ignored elsewhere); returns it on every rank */
static int l_broadcast_string(lua_State *L) {
  lua_Integer root = luaL_checkinteger(L, 2);
  check_init(L, "broadcast_string");
  if (root < 1 || root > ai_dist_size())
    return luaL_error(L, "dist.broadcast_string: src must be a rank in 1..%d, got %d", ai_dist_size(), (int)root);
  bool is_root = ai_dist_rank() == root - 1;
  size_t len = 0;
  const char *s = is_root ? luaL_checklstring(L, 1, &len) : NULL;
  int64_t n = (int64_t)len;
  waitreq(L, ai_dist_ibcast(&n, sizeof n, (int)root - 1), "broadcast_string");
  if (is_root) {
    if (n > 0) waitreq(L, ai_dist_ibcast((void *)s, n, (int)root - 1), "broadcast_string");
    lua_pushvalue(L, 1);
    return 1;
  }
  char *buf = lua_newuserdatauv(L, n > 0 ? (size_t)n : 1, 0); /* owned by Lua if an error comes */
  if (n > 0) waitreq(L, ai_dist_ibcast(buf, n, (int)root - 1), "broadcast_string");
  lua_pushlstring(L, buf, (size_t)n);
  return 1;
}

/* ---------------------------------------------------------------- gradient buckets */

typedef struct buckets buckets;

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

struct buckets {
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

static buckets *check_buckets(lua_State *L) {
  buckets *u = luaL_checkudata(L, 1, BUCKETS_MT);
  if (!u->b) luaL_error(L, "DataParallel: the bucket set is closed");
  return u;
}

static int buckets_gc(lua_State *L) {
  release(luaL_checkudata(L, 1, BUCKETS_MT));
  return 0;
}

/* _dist.buckets(params, bucket_bytes, hooks) */
static int l_buckets(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer cap = luaL_checkinteger(L, 2);
  bool hooks = lua_toboolean(L, 3);
  if (cap < 1) return luaL_argerror(L, 2, "bucket size must be positive");
  int n = (int)luaL_len(L, 1);
  buckets *u = lua_newuserdatauv(L, sizeof *u, 0);
  memset(u, 0, sizeof *u);
  luaL_setmetatable(L, BUCKETS_MT);
  u->slots = calloc((size_t)(n > 0 ? n : 1), sizeof *u->slots);
  u->b = calloc((size_t)(n > 0 ? n : 1), sizeof *u->b); /* at most one bucket per parameter */
  if (!u->slots || !u->b) return luaL_error(L, "not enough memory");
  /* reverse order, without duplicates (tied weights) and frozen parameters */
  for (int i = n; i >= 1; i--) {
    lua_rawgeti(L, 1, i);
    ai_tensor *p = lai_test(L, -1);
    if (!p) return luaL_error(L, "DataParallel: parameter %d is not a tensor (got %s)", i, luaL_typename(L, -1));
    lua_pop(L, 1);
    if (!p->requires_grad) continue;
    if (!ai_is_float(p->dtype)) return luaL_error(L, "DataParallel: parameter %d is %s", i, ai_dtype_names[p->dtype]);
    if (p->grad_fn) return luaL_error(L, "DataParallel: parameter %d is not a leaf tensor", i);
    bool dup = false;
    for (int j = 0; j < u->nslots && !dup; j++) dup = u->slots[j].p == p;
    if (dup) continue;
    slot *s = &u->slots[u->nslots];
    s->owner = u;
    s->numel = ai_numel(p);
    if (hooks && ai_set_grad_hook(p, on_grad_ready, s)) return luaL_error(L, "DataParallel: parameter %d: %s", i, ai_error());
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
    if (!b->buf) return luaL_error(L, "not enough memory");
  }
  return 1;
}

/* set:start([values]): arms the hooks; values: up to 32 numbers reduced with the gradients */
static int buckets_start(lua_State *L) {
  buckets *u = check_buckets(L);
  if (u->armed) return luaL_error(L, "DataParallel: start() twice without finish()");
  u->nvalues = 0;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    int n = (int)luaL_len(L, 2);
    if (n > MAX_VALUES) return luaL_error(L, "DataParallel: at most %d values, got %d", MAX_VALUES, n);
    for (int i = 0; i < n; i++) {
      lua_rawgeti(L, 2, i + 1);
      if (!lua_isnumber(L, -1)) return luaL_error(L, "DataParallel: value %d is not a number", i + 1);
      u->values[i] = lua_tonumber(L, -1);
      lua_pop(L, 1);
    }
    u->nvalues = n;
  }
  u->err[0] = 0;
  reset(u);
  u->armed = true;
  return 0;
}

/* set:finish() -> {means of the values}: starts the remaining buckets, waits, writes the
 * gradient means */
static int buckets_finish(lua_State *L) {
  buckets *u = check_buckets(L);
  if (!u->armed) return luaL_error(L, "DataParallel: finish() without start()");
  u->last_early = u->early;
  while (u->next < u->nb) start_bucket(u, u->next++);
  wait_all(u);
  u->armed = false;
  if (u->err[0]) {
    reset(u);
    return luaL_error(L, "%s", u->err);
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
    if (!fresh) { reset(u); return lai_error(L); }
    memcpy(ai_data(fresh), src, (size_t)s->numel * esz);
    ai_unref(s->p->grad);
    s->p->grad = fresh;
  }
  bucket *last = &u->b[u->nb - 1];
  lua_createtable(L, u->nvalues, 0);
  for (int i = 0; i < u->nvalues; i++) {
    lua_pushnumber(L, get(last, last->values + i) * scale);
    lua_rawseti(L, -2, i + 1);
  }
  reset(u);
  return 1;
}

/* set:info() -> {buckets = n, parameters = n, elements = n, bytes = {per bucket}, overlapped = n}
 * (overlapped: the buckets of the last finish() that started during backward) */
static int buckets_info(lua_State *L) {
  buckets *u = check_buckets(L);
  int64_t elems = 0;
  lua_createtable(L, 0, 5);
  lua_createtable(L, u->nb, 0);
  for (int k = 0; k < u->nb; k++) {
    elems += u->b[k].ngrad;
    lua_pushinteger(L, (lua_Integer)(u->b[k].count * (int64_t)ai_dtype_sizes[u->b[k].dt]));
    lua_rawseti(L, -2, k + 1);
  }
  lua_setfield(L, -2, "bytes");
  lua_pushinteger(L, u->nb);
  lua_setfield(L, -2, "buckets");
  lua_pushinteger(L, u->nslots);
  lua_setfield(L, -2, "parameters");
  lua_pushinteger(L, (lua_Integer)elems);
  lua_setfield(L, -2, "elements");
  lua_pushinteger(L, u->last_early);
  lua_setfield(L, -2, "overlapped");
  return 1;
}

void lai_open_dist(lua_State *L) {
  static const luaL_Reg methods[] = {{"start", buckets_start}, {"finish", buckets_finish},
                                     {"info", buckets_info}, {"close", buckets_gc}, {NULL, NULL}};
  static const luaL_Reg fns[] = {
      {"available", l_available}, {"launched_size", l_launched_size}, {"init", l_init},
      {"finalize", l_finalize},   {"initialized", l_initialized},     {"library", l_library},
      {"comm_seconds", l_comm_seconds}, {"cpus", l_cpus},
      {"all_reduce", l_all_reduce}, {"broadcast", l_broadcast},       {"all_gather", l_all_gather},
      {"barrier", l_barrier},     {"broadcast_string", l_broadcast_string}, {"buckets", l_buckets},
      {NULL, NULL}};
  if (luaL_newmetatable(L, BUCKETS_MT)) {
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, buckets_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, buckets_gc);
    lua_setfield(L, -2, "__close");
    lua_pushliteral(L, "DataParallel buckets");
    lua_setfield(L, -2, "__name");
  }
  lua_pop(L, 1);
  lua_newtable(L);
  luaL_setfuncs(L, fns, 0);
  lua_pushstring(L, ai_dist_enable_hint);
  lua_setfield(L, -2, "hint");
  lua_setfield(L, -3, "_dist");
}
