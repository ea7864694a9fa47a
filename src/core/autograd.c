/* autograd.c: recording of nodes by forward ops, saved tensors, and the backward engine.
 * The engine is the one place where gradients are un-broadcast to their inputs' shapes and
 * accumulated; the per-op rules (grad_rules.c) only compute local gradients. */
#include <stdlib.h>
#include <string.h>

#include "graph.h"

static bool grad_mode = true;
static bool create_graph_active;
static unsigned generation;

bool ai_grad_enabled(void) { return grad_mode; }
bool ai_set_grad_enabled(bool on) { bool was = grad_mode; grad_mode = on; return was; }
bool ai_create_graph_active(void) { return create_graph_active; }

int ai_set_requires_grad(ai_tensor *t, bool on) {
  if (on && !ai_is_float(t->dtype))
    return ai_seterror("requires_grad: only floating-point tensors can require gradients (got %s)",
                       ai_dtype_names[t->dtype]);
  if (!on && t->grad_fn)
    return ai_seterror("requires_grad: cannot turn off gradients of a non-leaf tensor; use :detach()");
  t->requires_grad = on;
  return 0;
}

const char *ai_grad_fn_name(const ai_tensor *t) { return t->grad_fn ? ai_op_name(t->grad_fn->op) : NULL; }

int ai_set_grad_hook(ai_tensor *leaf, ai_grad_hook_fn fn, void *ctx) {
  if (leaf->grad_fn) return ai_seterror("grad hook: the tensor is not a leaf");
  if (leaf->hook && leaf->hook->ctx != ctx)
    return ai_seterror("grad hook: the tensor already has a gradient hook (is it in two DataParallel wrappers?)");
  if (!leaf->hook && !(leaf->hook = calloc(1, sizeof *leaf->hook))) return ai_seterror("not enough memory");
  leaf->hook->fn = fn;
  leaf->hook->ctx = ctx;
  return 0;
}

void ai_clear_grad_hook(ai_tensor *leaf, void *ctx) {
  if (leaf->hook && leaf->hook->ctx == ctx) { free(leaf->hook); leaf->hook = NULL; }
}

bool ai_grad_hook_reached(const ai_tensor *leaf) { return leaf->hook && leaf->hook->mark == generation; }

/* ---------------------------------------------------------------- nodes */

/* Nodes with room for NODE_POOL_NIN inputs (almost every op) come from a free list:
 * recording allocates a node per op. */
#define NODE_POOL_NIN 3
static ai_freelist nodes = {.size = sizeof(ai_node) + sizeof(ai_input) * NODE_POOL_NIN, .max = 4096};

static ai_node *node_alloc(int nin) {
  if (nin <= NODE_POOL_NIN) return ai_freelist_get(&nodes);
  return calloc(1, sizeof(ai_node) + sizeof(ai_input) * (size_t)nin);
}

static void node_free(ai_node *n) {
  if (n->nin <= NODE_POOL_NIN) ai_freelist_put(&nodes, n);
  else free(n);
}

int ai_record(ai_node **node, ai_opid op, ai_tensor *out, int nin, ai_tensor **ins) {
  *node = NULL;
  if (!grad_mode) return 0;
  bool any = false;
  for (int i = 0; i < nin; i++) if (ins[i] && ins[i]->requires_grad) any = true;
  if (!any) return 0;
  ai_node *n = node_alloc(nin);
  if (!n) return ai_seterror("not enough memory");
  n->refs = 1;
  n->op = op;
  n->nin = nin;
  for (int i = 0; i < nin; i++) {
    ai_tensor *t = ins[i];
    ai_input *in = &n->in[i];
    if (!t) continue;
    in->ndim = t->ndim;
    memcpy(in->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    in->dtype = t->dtype;
    if (!t->requires_grad) continue;
    if (t->grad_fn) { in->fn = t->grad_fn; in->fn->refs++; }
    else in->leaf = ai_ref(t);
  }
  out->requires_grad = true;
  out->grad_fn = n;
  *node = n;
  return 0;
}

int ai_save(ai_node *n, ai_tensor *t) {
  if (n->nsaved >= AI_MAXSAVED) return ai_seterror("internal: too many saved tensors");
  n->saved[n->nsaved++] = (ai_saved){ai_ref(t), t->storage->version, false};
  return 0;
}

/* The output is saved as a detached alias (the node must not own the tensor that owns it);
 * ai_saved_get reattaches it to this node when a backward records its own graph. */
int ai_save_output(ai_node *n, ai_tensor *out) {
  if (n->nsaved >= AI_MAXSAVED) return ai_seterror("internal: too many saved tensors");
  ai_tensor *alias = ai_detach(out);
  if (!alias) return -1;
  n->saved[n->nsaved++] = (ai_saved){alias, out->storage->version, true};
  return 0;
}

ai_tensor *ai_saved_get(ai_node *n, int k) {
  if (n->freed || k >= n->nsaved)
    return AI_ERRNULL("backward through the graph a second time: the tensors saved by %s were freed; "
                      "pass retain_graph=true to the first backward", ai_op_name(n->op));
  ai_saved *s = &n->saved[k];
  if (s->t->storage->version != s->version)
    return AI_ERRNULL("a tensor saved for the backward of %s was modified in place since; "
                      "clone it before changing it", ai_op_name(n->op));
  if (!s->is_output || !grad_mode) return ai_ref(s->t);
  ai_tensor *a = ai_detach(s->t);
  if (!a) return NULL;
  a->requires_grad = true;
  a->grad_fn = n;
  n->refs++;
  return a;
}

static void release_saved(ai_node *n) {
  for (int k = 0; k < n->nsaved; k++) ai_unref(n->saved[k].t);
  n->nsaved = 0;
}

/* Frees nodes iteratively: a long chain must not overflow the C stack. */
void ai_node_unref(ai_node *n) {
  if (!n || --n->refs > 0) return;
  ai_node *local[16]; /* the stack lives on the C stack until a wide graph needs more */
  size_t cap = sizeof local / sizeof *local, len = 0;
  ai_node **stack = local;
  ai_node *cur = n;
  for (;;) {
    for (int i = 0; i < cur->nin; i++) {
      ai_input *in = &cur->in[i];
      if (in->leaf) ai_unref(in->leaf);
      if (in->fn && --in->fn->refs == 0) {
        if (len == cap) {
          ai_node **s2 = stack == local ? malloc(2 * cap * sizeof *stack)
                                        : realloc(stack, 2 * cap * sizeof *stack);
          if (s2 && stack == local) memcpy(s2, local, sizeof local);
          if (s2) { stack = s2; cap *= 2; }
        }
        if (len < cap) stack[len++] = in->fn;
        else ai_node_unref((in->fn->refs++, in->fn)); /* no memory for the stack: recurse */
      }
    }
    release_saved(cur);
    if (cur->gbuf) ai_unref(cur->gbuf);
    free(cur->extra);
    ai_free_tensor_hooks(cur->hooks);
    if (cur->op == AI_OP_CUSTOM && cur->arg.custom.release) cur->arg.custom.release(cur->arg.custom.ctx);
    node_free(cur);
    if (len == 0) break;
    cur = stack[--len];
  }
  if (stack != local) free(stack);
}

/* ---------------------------------------------------------------- hooks and custom ops */

void ai_free_tensor_hooks(ai_tensor_hook *h) {
  while (h) {
    ai_tensor_hook *next = h->next;
    if (h->release) h->release(h->ctx);
    free(h);
    h = next;
  }
}

int ai_add_tensor_hook(ai_tensor *t, ai_tensor_hook_fn fn, void *ctx, void (*release)(void *)) {
  if (!t->requires_grad) return ai_seterror("register_hook: the tensor does not require grad");
  ai_tensor_hook *h = calloc(1, sizeof *h);
  if (!h) return ai_seterror("not enough memory");
  *h = (ai_tensor_hook){fn, ctx, release, NULL};
  ai_tensor_hook **list;
  if (t->grad_fn) {
    list = &t->grad_fn->hooks;
  } else {
    if (!t->hooks && !(t->hooks = calloc(1, sizeof *t->hooks))) { free(h); return ai_seterror("not enough memory"); }
    list = &t->hooks->list;
  }
  while (*list) list = &(*list)->next; /* hooks run in the order they were added */
  *list = h;
  return 0;
}

static int accumulate(ai_tensor **slot, ai_tensor *g);

/* retain_grad: the non-leaf keeps the gradient of each backward in .grad (summed, as a leaf's) */
static ai_tensor *retain_hook(void *ctx, ai_tensor *g) {
  ai_tensor *t = ctx;
  if (accumulate(&t->grad, g)) return NULL;
  return ai_ref(g);
}

int ai_retain_grad(ai_tensor *t) {
  if (!t->requires_grad) return ai_seterror("retain_grad: the tensor does not require grad");
  if (!t->grad_fn) return 0; /* a leaf keeps its gradient anyway */
  for (ai_tensor_hook *h = t->grad_fn->hooks; h; h = h->next)
    if (h->fn == retain_hook && h->ctx == t) return 0;
  return ai_add_tensor_hook(t, retain_hook, t, NULL);
}

/* The tensor is going: its node may outlive it, and must not write into it any more. */
void ai_forget_retained(ai_tensor *t) {
  for (ai_tensor_hook **h = &t->grad_fn->hooks; *h;) {
    if ((*h)->fn == retain_hook && (*h)->ctx == t) {
      ai_tensor_hook *dead = *h;
      *h = dead->next;
      free(dead);
    } else {
      h = &(*h)->next;
    }
  }
}

/* g through each hook in turn: a new reference, or NULL with an error. */
static ai_tensor *run_hooks(ai_tensor_hook *h, ai_tensor *g) {
  ai_ref(g);
  for (; h && g; h = h->next) {
    ai_tensor *r = h->fn(h->ctx, g);
    ai_unref(g);
    g = r;
  }
  return g;
}

int ai_record_custom(ai_tensor *out, int nin, ai_tensor **ins, ai_custom_backward fn, void (*release)(void *),
                     void *ctx, int output) {
  if (out->grad_fn || out->requires_grad)
    return ai_seterror("internal: a custom op's output must be a fresh tensor");
  ai_node *n;
  if (ai_record(&n, AI_OP_CUSTOM, out, nin, ins)) return -1;
  if (!n) return 0;
  *AI_ARGS(n, CUSTOM) = (ai_custom_args){fn, release, ctx, output};
  return 1;
}


/* ---------------------------------------------------------------- the engine */

typedef struct {
  ai_node **v;
  size_t len, cap;
} nodelist;

static int push(nodelist *l, ai_node *n) {
  if (l->len == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 64;
    ai_node **v = realloc(l->v, cap * sizeof *v);
    if (!v) return ai_seterror("not enough memory");
    l->v = v;
    l->cap = cap;
  }
  l->v[l->len++] = n;
  return 0;
}

/* *slot += g (out of place, so a slot never aliases a tensor someone else holds). */
static int accumulate(ai_tensor **slot, ai_tensor *g) {
  if (!*slot) { *slot = ai_ref(g); return 0; }
  ai_tensor *s = ai_binary(AI_ADD, *slot, g);
  if (!s) return -1;
  ai_unref(*slot);
  *slot = s;
  return 0;
}

/* A leaf's .grad must be its own dense tensor: users and optimizers update it in place. */
static int accumulate_leaf(ai_tensor *leaf, ai_tensor *g) {
  if (leaf->grad) return accumulate(&leaf->grad, g);
  if (g->refs == 1 && g->storage->refs == 1 && ai_is_contiguous(g) && !g->grad_fn) {
    leaf->grad = ai_ref(g);
    return 0;
  }
  ai_tensor *c = ai_clone(g);
  if (!c) return -1;
  leaf->grad = c;
  return 0;
}

/* A contribution to a leaf: into .grad, or, for a leaf whose hooks this pass runs, into the pass's
 * own sum, which the hooks see once it is complete (finish_leaf). */
static int to_leaf(ai_tensor *leaf, ai_tensor *g, unsigned gen) {
  if (leaf->hooks && leaf->hooks->mark == gen) return accumulate(&leaf->hooks->acc, g);
  return accumulate_leaf(leaf, g);
}
static int finish_leaf(ai_tensor *leaf) {
  ai_leaf_hooks *h = leaf->hooks;
  ai_tensor *acc = h->acc;
  h->acc = NULL;
  if (!acc) return 0;
  ai_tensor *g = run_hooks(h->list, acc);
  ai_unref(acc);
  if (!g) return -1;
  int rc = accumulate_leaf(leaf, g);
  ai_unref(g);
  return rc;
}

static int run_backward(ai_tensor **outs, ai_tensor **gouts, int nout, bool retain, bool create,
                        ai_tensor **inputs, int nin, ai_tensor **results) {
  nodelist all = {0}, ready = {0};
  int rc = -1;
  bool was = grad_mode, was_create = create_graph_active;
  unsigned gen = ++generation;
  ai_tensor **seeds = calloc((size_t)nout, sizeof *seeds);
  if (!seeds) return ai_seterror("not enough memory");

  for (int i = 0; i < nout; i++) {
    ai_tensor *o = outs[i];
    if (!o->requires_grad)
      { ai_seterror("backward: tensor %d does not require grad and has no grad_fn", i + 1); goto out; }
    if (gouts && gouts[i]) {
      if (!ai_same_shape(gouts[i], o)) {
        char a[128], b[128];
        ai_seterror("backward: gradient of shape %s does not match the output's %s",
                    ai_shape_str(gouts[i], a, sizeof a), ai_shape_str(o, b, sizeof b));
        goto out;
      }
      seeds[i] = ai_to_dtype(gouts[i], o->dtype);
    } else {
      if (ai_numel(o) != 1) {
        char a[128];
        ai_seterror("backward: grad can be implicitly created only for scalar outputs (this one is %s); "
                    "pass a gradient", ai_shape_str(o, a, sizeof a));
        goto out;
      }
      seeds[i] = ai_full(o->dtype, o->ndim, o->shape, 1.0);
    }
    if (!seeds[i]) goto out;
  }

  /* collect the graph and count, for each node, the edges that lead into it */
  for (int i = 0; i < nout; i++) {
    ai_node *r = outs[i]->grad_fn;
    if (r && r->mark != gen) { r->mark = gen; r->deps = 0; if (push(&all, r)) goto out; }
  }
  for (size_t k = 0; k < all.len; k++) {
    ai_node *n = all.v[k];
    for (int i = 0; i < n->nin; i++) {
      ai_node *f = n->in[i].fn;
      ai_grad_hook *h = n->in[i].leaf && !inputs ? n->in[i].leaf->hook : NULL;
      if (h) {
        if (h->mark != gen) { h->mark = gen; h->pending = 0; }
        h->pending++;
      }
      ai_leaf_hooks *lh = n->in[i].leaf && !inputs ? n->in[i].leaf->hooks : NULL;
      if (lh && lh->list) {
        if (lh->mark != gen) { lh->mark = gen; lh->pending = 0; ai_unref(lh->acc); lh->acc = NULL; }
        lh->pending++;
      }
      if (!f) continue;
      if (f->mark != gen) { f->mark = gen; f->deps = 0; if (push(&all, f)) goto out; }
      f->deps++;
    }
  }
  grad_mode = create;
  create_graph_active = create;
  for (int i = 0; i < nout; i++) {
    ai_tensor *o = outs[i];
    if (o->grad_fn) {
      if (accumulate(&o->grad_fn->gbuf, seeds[i])) goto out;
    } else if (inputs) {
      for (int j = 0; j < nin; j++) if (inputs[j] == o && accumulate(&results[j], seeds[i])) goto out;
    } else if (o->hooks && o->hooks->list) { /* an output that is itself a hooked leaf */
      ai_tensor *hg = run_hooks(o->hooks->list, seeds[i]);
      int err = hg ? accumulate_leaf(o, hg) : -1;
      ai_unref(hg);
      if (err) goto out;
      if (o->hook && o->hook->mark != gen) o->hook->fn(o->hook->ctx, o);
    } else if (accumulate_leaf(o, seeds[i])) {
      goto out;
    } else if (o->hook && o->hook->mark != gen) {
      o->hook->fn(o->hook->ctx, o); /* an output that is itself a hooked leaf */
    }
  }
  for (int i = 0; i < nout; i++) {
    ai_node *r = outs[i]->grad_fn;
    if (r && r->deps == 0 && r->mark == gen) { r->deps = -1; if (push(&ready, r)) goto out; }
  }

  while (ready.len) {
    if (ai_check_interrupt("backward")) goto out; /* Ctrl-C stops a long backward between nodes */
    ai_node *n = ready.v[--ready.len];
    ai_tensor *g = n->gbuf;
    n->gbuf = NULL;
    if (g && n->hooks) { /* the hooks of the tensor this node made see its whole gradient */
      ai_tensor *hg = run_hooks(n->hooks, g);
      ai_unref(g);
      if (!(g = hg)) goto out;
    }
    if (inputs) /* gradients w.r.t. non-leaf inputs are what reaches their producer */
      for (int j = 0; j < nin; j++)
        if (g && inputs[j]->grad_fn == n && accumulate(&results[j], g)) { ai_unref(g); goto out; }
    if (g) {
      if (n->freed) {
        ai_seterror("backward through the graph a second time (%s's saved tensors were freed); "
                    "pass retain_graph=true to the first backward", ai_op_name(n->op));
        ai_unref(g);
        goto out;
      }
      if (create && !ai_op_table[n->op].double_backward) {
        ai_seterror("create_graph: the backward of %s is not differentiable", ai_op_name(n->op));
        ai_unref(g);
        goto out;
      }
      ai_tensor *gin[AI_MAXDIM * 8] = {0};
      ai_tensor **gv = n->nin <= (int)(sizeof gin / sizeof *gin) ? gin : calloc((size_t)n->nin, sizeof *gv);
      if (!gv) { ai_unref(g); ai_seterror("not enough memory"); goto out; }
      int err = ai_rules[n->op](n, g, gv);
      for (int i = 0; i < n->nin && !err; i++) {
        ai_tensor *gi = gv[i];
        ai_input *in = &n->in[i];
        if (!gi || (!in->fn && !in->leaf)) continue;
        ai_tensor *s = ai_sum_to(gi, in->ndim, in->shape);
        /* drop the rule's reference first: a gradient held nowhere else becomes the leaf's
         * .grad as it is, without a copy (accumulate_leaf) */
        ai_unref(gi);
        gv[i] = NULL;
        ai_tensor *c = s ? ai_to_dtype(s, in->dtype) : NULL;
        ai_unref(s);
        if (!c) { err = -1; break; }
        if (in->fn) err = accumulate(&in->fn->gbuf, c);
        else if (inputs) {
          for (int j = 0; j < nin && !err; j++) if (inputs[j] == in->leaf) err = accumulate(&results[j], c);
        } else err = to_leaf(in->leaf, c, gen);
        ai_unref(c);
      }
      for (int i = 0; i < n->nin; i++) ai_unref(gv[i]);
      if (gv != gin) free(gv);
      ai_unref(g);
      if (err) goto out;
    }
    if (!retain) { release_saved(n); n->freed = true; }
    for (int i = 0; i < n->nin; i++) {
      ai_leaf_hooks *lh = n->in[i].leaf && !inputs ? n->in[i].leaf->hooks : NULL;
      if (lh && lh->list && lh->mark == gen && --lh->pending == 0 && finish_leaf(n->in[i].leaf)) goto out;
      ai_grad_hook *h = n->in[i].leaf && !inputs ? n->in[i].leaf->hook : NULL;
      if (h && h->mark == gen && --h->pending == 0) h->fn(h->ctx, n->in[i].leaf);
      ai_node *f = n->in[i].fn;
      if (f && f->mark == gen && --f->deps == 0) { f->deps = -1; if (push(&ready, f)) goto out; }
    }
  }
  /* ai_grad: the hooks of leaf inputs see their whole gradient */
  for (int j = 0; inputs && j < nin; j++)
    if (results[j] && !inputs[j]->grad_fn && inputs[j]->hooks && inputs[j]->hooks->list) {
      ai_tensor *hg = run_hooks(inputs[j]->hooks->list, results[j]);
      if (!hg) goto out;
      ai_unref(results[j]);
      results[j] = hg;
    }
  rc = 0;
out:
  grad_mode = was;
  create_graph_active = was_create;
  for (size_t k = 0; k < all.len; k++) { /* drop what an error left behind */
    ai_node *n = all.v[k];
    if (n->gbuf) { ai_unref(n->gbuf); n->gbuf = NULL; }
    for (int i = 0; i < n->nin; i++)
      if (n->in[i].leaf && n->in[i].leaf->hooks) { ai_unref(n->in[i].leaf->hooks->acc); n->in[i].leaf->hooks->acc = NULL; }
  }
  for (int i = 0; i < nout; i++) ai_unref(seeds[i]);
  free(seeds);
  free(all.v);
  free(ready.v);
  return rc;
}

int ai_backward(ai_tensor **outputs, ai_tensor **grad_outputs, int n, bool retain_graph,
                bool create_graph) {
  return run_backward(outputs, grad_outputs, n, retain_graph || create_graph, create_graph, NULL, 0, NULL);
}

int ai_grad(ai_tensor **outputs, ai_tensor **grad_outputs, int nout, ai_tensor **inputs, int nin,
            bool retain_graph, bool create_graph, bool allow_unused, ai_tensor **grads) {
  for (int j = 0; j < nin; j++) {
    grads[j] = NULL;
    if (!inputs[j]->requires_grad)
      return ai_seterror("grad: input %d does not require grad", j + 1);
  }
  if (run_backward(outputs, grad_outputs, nout, retain_graph || create_graph, create_graph, inputs, nin, grads)) {
    for (int j = 0; j < nin; j++) { ai_unref(grads[j]); grads[j] = NULL; }
    return -1;
  }
  for (int j = 0; j < nin; j++) {
    if (grads[j] || allow_unused) continue;
    for (int k = 0; k < nin; k++) { ai_unref(grads[k]); grads[k] = NULL; }
    return ai_seterror("grad: input %d was not used to compute the outputs (pass allow_unused=true)", j + 1);
  }
  return 0;
}
