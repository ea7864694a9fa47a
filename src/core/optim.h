/* optim.h: the fused in-place parameter updates behind lua/aiart/optim.lua (Adam/AdamW, SGD,
 * RMSprop, Adagrad, and EMA's lerp). Pure C over the core's tensors; knows nothing of Lua.
 *
 * Each update reads and writes every array once, where a chain of tensor ops would sweep the
 * parameter and its state several times and allocate temporaries on every step. The formulas
 * follow PyTorch's single-tensor implementations term by term, so sequences match up to
 * rounding.
 *
 * Arrays: the parameter and its state must be contiguous f32 or f64 tensors of one dtype and
 * shape, and must not share memory (one tensor passed twice would silently give wrong numbers).
 * The gradient needs only the dtype and shape: it is only read, and a strided one is copied.
 * Optional state (NULL) is named in each function. Every array written has its storage version
 * bumped, as any in-place write does. Not recorded by autograd.
 *
 * Errors: -1 with a message that names the function ("adam_step: ...") and the array, in
 * ai_error(); nothing is written then. */
#ifndef AI_OPTIM_H
#define AI_OPTIM_H

#include <stdbool.h>

#include "ai.h"

/* Adam, or AdamW with decoupled = true (the weights scaled by 1 - lr * weight_decay; without it
 * weight_decay * param is added to the gradient, Adam's L2). step: the 1-based count of this
 * update, for the bias corrections. amsgrad needs vmax; without amsgrad, vmax is not used. */
typedef struct {
  double lr, beta1, beta2, eps, weight_decay, step;
  bool decoupled, maximize, amsgrad;
} ai_adam_opts;
/* p, m (exp_avg), v (exp_avg_sq) and vmax (max_exp_avg_sq; may be NULL) from g. */
int ai_adam_step(ai_tensor *p, ai_tensor *g, ai_tensor *m, ai_tensor *v, ai_tensor *vmax,
                 const ai_adam_opts *o);

/* SGD. first = true on the step that creates the momentum buffer (which must hold zeros): it
 * is then set to the gradient, undamped. */
typedef struct {
  double lr, momentum, dampening, weight_decay;
  bool nesterov, maximize, first;
} ai_sgd_opts;
/* p and buf (the momentum buffer; NULL without momentum, and only then) from g. */
int ai_sgd_step(ai_tensor *p, ai_tensor *g, ai_tensor *buf, const ai_sgd_opts *o);

typedef struct {
  double lr, alpha, eps, weight_decay, momentum;
  bool maximize;
} ai_rmsprop_opts;
/* p, sq (square_avg), gavg (grad_avg: the centered variant; may be NULL) and buf (momentum
 * buffer: with momentum > 0, and only then) from g. */
int ai_rmsprop_step(ai_tensor *p, ai_tensor *g, ai_tensor *sq, ai_tensor *gavg, ai_tensor *buf,
                    const ai_rmsprop_opts *o);

/* Adagrad. lr is this step's decayed rate lr / (1 + (step - 1) * lr_decay). */
typedef struct {
  double lr, eps, weight_decay;
  bool maximize;
} ai_adagrad_opts;
/* p and sum (state_sum, accumulating g^2) from g. */
int ai_adagrad_step(ai_tensor *p, ai_tensor *g, ai_tensor *sum, const ai_adagrad_opts *o);

/* dst += weight * (src - dst): the exponential moving average of EMA. */
int ai_lerp_(ai_tensor *dst, ai_tensor *src, double weight);

#endif
