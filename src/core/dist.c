/* dist.c: MPI collectives on a communication thread (see dist.h). Without AI_HAVE_MPI only the
 * environment probe is real and the rest reports how to enable MPI. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* on_exit */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"

const char ai_dist_enable_hint[] =
    "this aiart-lua was built without MPI; to enable ai.dist, install Open MPI "
    "(apt-get install libopenmpi-dev openmpi-bin, or `sh scripts/install-deps.sh`) and rebuild "
    "(make)";

static int env_int(const char *name) {
  const char *v = getenv(name);
  if (!v || !*v) return -1;
  char *end;
  long n = strtol(v, &end, 10);
  return *end || n < 0 || n > 1 << 30 ? -1 : (int)n;
}

int ai_dist_launched_size(void) {
  static const char *const sizes[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    int n = env_int(sizes[i]);
    if (n > 0 && strcmp(sizes[i], "MPI_LOCALNRANKS") != 0) return n;
  }
  /* launched by a PMIx or Hydra launcher that does not announce the size here */
  if (getenv("PMIX_RANK") || getenv("PMI_RANK") || getenv("MPI_LOCALNRANKS")) return -1;
  return 0;
}

#ifndef AI_HAVE_MPI

bool ai_dist_available(void) { return false; }
int ai_dist_init(void) { return ai_seterror("%s", ai_dist_enable_hint); }
bool ai_dist_initialized(void) { return false; }
int ai_dist_rank(void) { return 0; }
int ai_dist_size(void) { return 1; }
int ai_dist_local_rank(void) { return 0; }
int ai_dist_local_size(void) { return 1; }
const char *ai_dist_library(void) { return ""; }
int ai_dist_finalize(void) { return 0; }
ai_dist_req *ai_dist_iallreduce(void *buf, int64_t count, ai_dtype dt, ai_dist_op op) {
  return AI_ERRNULL("%s", ai_dist_enable_hint);
}
ai_dist_req *ai_dist_ibcast(void *buf, int64_t nbytes, int root) { return AI_ERRNULL("%s", ai_dist_enable_hint); }
ai_dist_req *ai_dist_iallgather(const void *send, void *recv, int64_t nbytes) {
  return AI_ERRNULL("%s", ai_dist_enable_hint);
}
ai_dist_req *ai_dist_ibarrier(void) { return AI_ERRNULL("%s", ai_dist_enable_hint); }
int ai_dist_wait(ai_dist_req *req) { return ai_seterror("%s", ai_dist_enable_hint); }
double ai_dist_comm_seconds(void) { return 0; }

#else

#include <dlfcn.h>
#include <limits.h>
#include <mpi.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <time.h>

typedef enum { OP_ALLREDUCE, OP_BCAST, OP_ALLGATHER, OP_BARRIER } op_kind;

struct ai_dist_req {
  op_kind kind;
  void *buf;
  const void *send;
  int64_t count; /* elements (allreduce) or bytes */
  ai_dtype dt;
  ai_dist_op op;
  int root;
  bool done;
  char err[256];
  struct ai_dist_req *next;
};

static struct {
  bool initialized, finalized, worker_running, stopping;
  volatile int aborting;
  int rank, size, local_rank, local_size;
  char library[128];
  pthread_t worker;
  pthread_mutex_t mu;
  pthread_cond_t work, done;
  ai_dist_req *head, *tail;
  double comm_seconds;
} D = {.size = 1, .local_size = 1, .mu = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER,
       .done = PTHREAD_COND_INITIALIZER};

bool ai_dist_available(void) { return true; }
bool ai_dist_initialized(void) { return D.initialized && !D.finalized; }
int ai_dist_rank(void) { return D.rank; }
int ai_dist_size(void) { return D.size; }
int ai_dist_local_rank(void) { return D.local_rank; }
int ai_dist_local_size(void) { return D.local_size; }
const char *ai_dist_library(void) { return D.library; }
double ai_dist_comm_seconds(void) {
  pthread_mutex_lock(&D.mu);
  double s = D.comm_seconds;
  pthread_mutex_unlock(&D.mu);
  return s;
}

static void mpi_message(int rc, const char *what, char *err, size_t n) {
  char s[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, s, &len) != MPI_SUCCESS) snprintf(s, sizeof s, "MPI error %d", rc);
  snprintf(err, n, "%s: %.200s", what, s);
}

/* Drives one request to completion: MPI_Test in a tight loop for a moment (latency), then with
 * sleeps that grow to 200 us (an idle rank costs almost no CPU). */
static int poll_request(MPI_Request *r) {
  int flag = 0;
  double t0 = ai_clock();
  long ns = 2000;
  for (;;) {
    int rc = MPI_Test(r, &flag, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS || flag) return rc;
    if (D.aborting) return MPI_ERR_OTHER;
    if (ai_clock() - t0 < 100e-6) continue;
    struct timespec ts = {0, ns};
    nanosleep(&ts, NULL);
    if (ns < 200000) ns *= 2;
  }
}

static MPI_Datatype mpi_type(ai_dtype dt) {
  switch (dt) {
  case AI_F32: return MPI_FLOAT;
  case AI_F64: return MPI_DOUBLE;
  case AI_I64: return MPI_INT64_T;
  default: return MPI_UINT8_T;
  }
}

static MPI_Op mpi_op(ai_dist_op op) { return op == AI_DIST_MAX ? MPI_MAX : op == AI_DIST_MIN ? MPI_MIN : MPI_SUM; }

#define CHUNK ((int64_t)1 << 30) /* MPI counts are ints */

/* Runs one operation; returns the seconds it took. */
static double run(ai_dist_req *q) {
  int rc = MPI_SUCCESS;
  MPI_Request r;
  const char *what = "MPI";
  double t0 = ai_clock();
  switch (q->kind) {
  case OP_ALLREDUCE: {
    what = "all_reduce";
    size_t esz = ai_dtype_sizes[q->dt];
    for (int64_t off = 0; off < q->count && rc == MPI_SUCCESS; off += CHUNK) {
      int n = (int)(q->count - off < CHUNK ? q->count - off : CHUNK);
      rc = MPI_Iallreduce(MPI_IN_PLACE, (char *)q->buf + off * (int64_t)esz, n, mpi_type(q->dt), mpi_op(q->op),
                          MPI_COMM_WORLD, &r);
      if (rc == MPI_SUCCESS) rc = poll_request(&r);
    }
    break;
  }
  case OP_BCAST:
    what = "broadcast";
    for (int64_t off = 0; off < q->count && rc == MPI_SUCCESS; off += CHUNK) {
      int n = (int)(q->count - off < CHUNK ? q->count - off : CHUNK);
      rc = MPI_Ibcast((char *)q->buf + off, n, MPI_BYTE, q->root, MPI_COMM_WORLD, &r);
      if (rc == MPI_SUCCESS) rc = poll_request(&r);
    }
    break;
  case OP_ALLGATHER:
    what = "all_gather";
    rc = MPI_Iallgather(q->send, (int)q->count, MPI_BYTE, q->buf, (int)q->count, MPI_BYTE, MPI_COMM_WORLD, &r);
    if (rc == MPI_SUCCESS) rc = poll_request(&r);
    break;
  case OP_BARRIER:
    what = "barrier";
    rc = MPI_Ibarrier(MPI_COMM_WORLD, &r);
    if (rc == MPI_SUCCESS) rc = poll_request(&r);
    break;
  }
  if (D.aborting) snprintf(q->err, sizeof q->err, "%s: the job is being aborted", what);
  else if (rc != MPI_SUCCESS) mpi_message(rc, what, q->err, sizeof q->err);
  return ai_clock() - t0;
}

static void *worker_main(void *arg) {
  (void)arg;
  prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0); /* short sleeps in poll_request stay short */
  pthread_mutex_lock(&D.mu);
  for (;;) {
    while (!D.head && !D.stopping) pthread_cond_wait(&D.work, &D.mu);
    if (!D.head) break;
    ai_dist_req *q = D.head;
    D.head = q->next;
    if (!D.head) D.tail = NULL;
    pthread_mutex_unlock(&D.mu);
    double dt = 0;
    if (D.aborting) snprintf(q->err, sizeof q->err, "the job is being aborted");
    else dt = run(q);
    pthread_mutex_lock(&D.mu);
    D.comm_seconds += dt;
    q->done = true;
    pthread_cond_broadcast(&D.done);
  }
  pthread_mutex_unlock(&D.mu);
  return NULL;
}

static void stop_worker(void) {
  if (!D.worker_running) return;
  pthread_mutex_lock(&D.mu);
  D.stopping = true;
  pthread_cond_signal(&D.work);
  pthread_mutex_unlock(&D.mu);
  pthread_join(D.worker, NULL);
  D.worker_running = false;
}

/* Exit with status 0: finalize. Anything else (an uncaught error, os.exit(false), a signal turned
 * into an exit): abort the whole job, so that the other ranks do not wait for this one forever. */
static void at_exit(int status, void *arg) {
  (void)arg;
  if (!ai_dist_initialized()) return;
  if (status == 0) {
    ai_dist_finalize();
    return;
  }
  fflush(stdout);
  fflush(stderr);
  D.aborting = 1;
  stop_worker();
  MPI_Abort(MPI_COMM_WORLD, status);
}

int ai_dist_init(void) {
  if (D.initialized) {
    if (D.finalized) return ai_seterror("dist.init: MPI was finalized; it cannot be initialised again");
    return 0;
  }
  int provided = 0, rc, flag = 0;
  MPI_Initialized(&flag);
  if (!flag) {
    rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided);
    if (rc != MPI_SUCCESS) return ai_seterror("dist.init: MPI_Init_thread failed (code %d)", rc);
  } else {
    MPI_Query_thread(&provided);
  }
  if (provided < MPI_THREAD_SERIALIZED) {
    MPI_Finalize();
    return ai_seterror("dist.init: the MPI library does not support MPI_THREAD_SERIALIZED");
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &D.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &D.size);
  MPI_Comm node;
  if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
    MPI_Comm_rank(node, &D.local_rank);
    MPI_Comm_size(node, &D.local_size);
    MPI_Comm_free(&node);
  }
  char lib[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  if (MPI_Get_library_version(lib, &len) == MPI_SUCCESS) {
    lib[strcspn(lib, ",\n")] = 0;
    snprintf(D.library, sizeof D.library, "%.127s", lib);
  }
  D.initialized = true;
  D.stopping = false;
  if (pthread_create(&D.worker, NULL, worker_main, NULL) != 0) {
    MPI_Finalize();
    D.finalized = true;
    return ai_seterror("dist.init: cannot start the communication thread");
  }
  D.worker_running = true;
  on_exit(at_exit, NULL);
  /* aiart.so loaded by a stock lua is unloaded at lua_close, before exit handlers run: keep
   * the code of at_exit mapped */
  Dl_info self;
  if (dladdr((void *)at_exit, &self) && self.dli_fname) dlopen(self.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
  return 0;
}

int ai_dist_finalize(void) {
  if (!ai_dist_initialized()) return 0;
  stop_worker();
  D.finalized = true;
  int rc = MPI_Finalize();
  if (rc != MPI_SUCCESS) return ai_seterror("dist.finalize: MPI_Finalize failed (code %d)", rc);
  return 0;
}

static ai_dist_req *submit(ai_dist_req *q) {
  if (!ai_dist_initialized()) {
    free(q);
    return AI_ERRNULL("dist: MPI is not initialised (call ai.dist.init() under mpirun)");
  }
  q->next = NULL;
  pthread_mutex_lock(&D.mu);
  if (D.tail) D.tail->next = q; else D.head = q;
  D.tail = q;
  pthread_cond_signal(&D.work);
  pthread_mutex_unlock(&D.mu);
  return q;
}

static ai_dist_req *new_req(op_kind kind) {
  ai_dist_req *q = calloc(1, sizeof *q);
  if (!q) return AI_ERRNULL("not enough memory");
  q->kind = kind;
  return q;
}

ai_dist_req *ai_dist_iallreduce(void *buf, int64_t count, ai_dtype dt, ai_dist_op op) {
  ai_dist_req *q = new_req(OP_ALLREDUCE);
  if (!q) return NULL;
  q->buf = buf, q->count = count, q->dt = dt, q->op = op;
  return submit(q);
}

ai_dist_req *ai_dist_ibcast(void *buf, int64_t nbytes, int root) {
  if (root < 0 || root >= D.size) return AI_ERRNULL("broadcast: no rank %d in a job of %d", root + 1, D.size);
  ai_dist_req *q = new_req(OP_BCAST);
  if (!q) return NULL;
  q->buf = buf, q->count = nbytes, q->root = root;
  return submit(q);
}

ai_dist_req *ai_dist_iallgather(const void *send, void *recv, int64_t nbytes) {
  if (nbytes > INT_MAX) return AI_ERRNULL("all_gather: at most 2 GB per rank");
  ai_dist_req *q = new_req(OP_ALLGATHER);
  if (!q) return NULL;
  q->send = send, q->buf = recv, q->count = nbytes;
  return submit(q);
}

ai_dist_req *ai_dist_ibarrier(void) {
  ai_dist_req *q = new_req(OP_BARRIER);
  return q ? submit(q) : NULL;
}

int ai_dist_wait(ai_dist_req *q) {
  if (!q) return -1;
  pthread_mutex_lock(&D.mu);
  while (!q->done) pthread_cond_wait(&D.done, &D.mu);
  pthread_mutex_unlock(&D.mu);
  int rc = q->err[0] ? ai_seterror("%s", q->err) : 0;
  free(q);
  return rc;
}

#endif
