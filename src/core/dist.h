/* dist.h: collective communication between the processes of an MPI job, for data-parallel
 * training (Open MPI; the code is plain MPI-3). Pure C: knows nothing of Lua.
 *
 * Built with MPI when AI_HAVE_MPI is defined; without it ai_dist_available() is false and the
 * functions that would communicate fail with a message that says how to enable MPI.
 *
 * Every MPI call after ai_dist_init runs on one communication thread (MPI_THREAD_SERIALIZED):
 * callers enqueue operations and wait for them, so that gradient buckets are reduced while the
 * caller goes on with backward. Operations run in the order they are enqueued; every rank must
 * enqueue the same collectives in the same order, as MPI requires. The thread drives each
 * operation with MPI_Test, spinning briefly and then sleeping, so that a rank waiting for a
 * slower one does not take a core from it (Open MPI's blocking calls spin at 100%).
 *
 * Process exit: ai_dist_init registers an exit handler that calls MPI_Finalize when the process
 * exits with status 0, and MPI_Abort (which ends every rank of the job) for any other status,
 * so that an error on one rank never leaves the others waiting forever.
 *
 * Ranks here are 0-based, as in MPI; the Lua binding converts. Errors: -1 (or NULL) with a
 * message in ai_error(). */
#ifndef AI_DIST_H
#define AI_DIST_H

#include <stdbool.h>
#include <stdint.h>

#include "ai.h"

typedef enum { AI_DIST_SUM, AI_DIST_MAX, AI_DIST_MIN } ai_dist_op;

typedef struct ai_dist_req ai_dist_req;

/* The message that says how to build with MPI. */
extern const char ai_dist_enable_hint[];

bool ai_dist_available(void);            /* compiled with MPI */
/* > 0: the world size announced by an MPI launcher in the environment (mpirun, srun); -1:
 * launched but the size is unknown; 0: not launched by an MPI launcher. */
int ai_dist_launched_size(void);
int ai_dist_init(void);                  /* MPI_Init_thread and the communication thread */
bool ai_dist_initialized(void);
int ai_dist_rank(void);                  /* 0 when not initialised */
int ai_dist_size(void);                  /* 1 when not initialised */
int ai_dist_local_rank(void);            /* among the ranks of this host */
int ai_dist_local_size(void);
const char *ai_dist_library(void);       /* MPI_Get_library_version's first line, or "" */
/* Stops the communication thread and calls MPI_Finalize (every rank must call it). */
int ai_dist_finalize(void);

/* Asynchronous collectives over all ranks; the buffers must stay valid until ai_dist_wait.
 * count is in elements of dt (f32, f64 or i64; max/min also u8); bcast and allgather move bytes.
 * allgather: recv holds size x nbytes, rank-major. */
ai_dist_req *ai_dist_iallreduce(void *buf, int64_t count, ai_dtype dt, ai_dist_op op);
ai_dist_req *ai_dist_ibcast(void *buf, int64_t nbytes, int root);
ai_dist_req *ai_dist_iallgather(const void *send, void *recv, int64_t nbytes);
ai_dist_req *ai_dist_ibarrier(void);
/* Waits for req and frees it; its error, if any, becomes ai_error(). */
int ai_dist_wait(ai_dist_req *req);
/* Seconds the communication thread spent inside MPI operations (for benchmarks). */
double ai_dist_comm_seconds(void);

/* ---- blocking collectives on tensors (dist_tensor.c) ----
 * Any layout: a strided tensor goes through a contiguous copy that is written back. In place,
 * and not recorded by autograd (writing into a parameter is allowed, as optimizers do). Errors
 * name the collective ("dist.all_reduce: ..."). */
/* -1 with "fn: MPI is not initialised ..." unless ai_dist_init has run. */
int ai_dist_check_initialized(const char *fn);
/* op over all ranks; mean (with AI_DIST_SUM, f32/f64 only) divides the sum by the size. */
int ai_dist_all_reduce(ai_tensor *t, ai_dist_op op, bool mean);
int ai_dist_broadcast(ai_tensor *t, int root);
/* A new tensor of size x t's shape: rank r's t at index r. */
ai_tensor *ai_dist_all_gather(ai_tensor *t);
int ai_dist_barrier(void);
/* ai_dist_ibcast and its wait; errors are named "dist.<fn>: ...". */
int ai_dist_broadcast_bytes(void *buf, int64_t nbytes, int root, const char *fn);

#endif
