/* dist_buckets.h: the gradient buckets of data-parallel training (pure C over dist.h; knows
 * nothing of Lua). Built with and without MPI: without it every reduction fails with
 * ai_dist_enable_hint, and in a single process (not initialised) it reduces over one rank.
 *
 * A bucket set flattens the gradients of a parameter list into a few contiguous buffers and
 * reduces each with one all_reduce (mean over ranks). Buckets hold the parameters in reverse
 * order, the order in which backward produces their gradients. Between ai_dist_buckets_start
 * and ai_dist_buckets_finish, every parameter's gradient-ready hook (ai_set_grad_hook) marks it
 * ready (and the first such call marks those that the backward does not reach at all); as soon
 * as bucket k and all buckets before it are complete, bucket k is copied and its all_reduce
 * starts on the communication thread while backward goes on. finish starts what is left, waits,
 * writes the means into the .grad tensors and gives the means of the values given to start (a
 * few numbers, such as the loss, that travel in the last bucket). Every bucket also carries one
 * flag per parameter (1 when this rank has a gradient), so a parameter that no rank reached
 * keeps grad = NULL, as it would in one process.
 *
 * Errors: -1 (or NULL) with a message in ai_error() that starts with "DataParallel:"
 * (parameters are counted from 1 in messages, as a person counts them). */
#ifndef AI_DIST_BUCKETS_H
#define AI_DIST_BUCKETS_H

#include <stdbool.h>
#include <stdint.h>

#include "ai.h"

#define AI_DIST_MAX_VALUES 32 /* values that start() may send along */

typedef struct ai_dist_buckets ai_dist_buckets;

/* A bucket set over params[0..n) (references are taken). Frozen parameters (no requires_grad)
 * and repeats (tied weights) are left out; the others must be f32/f64 leaves. A new bucket
 * begins when the current one holds bucket_bytes of gradients or the dtype changes. hooks:
 * overlap with backward through gradient-ready hooks (a parameter may then belong to one set
 * only); false: everything is reduced in finish. */
ai_dist_buckets *ai_dist_buckets_new(ai_tensor *const *params, int n, int64_t bucket_bytes, bool hooks);
/* Waits for every reduction in flight, clears the hooks and drops the references. */
void ai_dist_buckets_free(ai_dist_buckets *u);

/* Arms the hooks for one backward; values[0..nvalues) (at most AI_DIST_MAX_VALUES) are reduced
 * with the gradients. */
int ai_dist_buckets_start(ai_dist_buckets *u, const double *values, int nvalues);
/* Starts the remaining buckets, waits, writes the gradient means, and puts the means of the
 * values of start into means[0..*nvalues). The set is ready for the next start, also after an
 * error. */
int ai_dist_buckets_finish(ai_dist_buckets *u, double *means, int *nvalues);

typedef struct {
  int buckets, parameters;
  int64_t elements;  /* gradient elements over all buckets */
  int overlapped;    /* the buckets of the last finish that started during backward */
} ai_dist_buckets_info;
void ai_dist_buckets_get_info(const ai_dist_buckets *u, ai_dist_buckets_info *info);
/* Bytes bucket k (0-based) sends: its gradients, flags and (in the last) the values. */
int64_t ai_dist_bucket_bytes(const ai_dist_buckets *u, int k);

#endif
