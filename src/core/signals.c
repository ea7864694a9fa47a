/* signals.c: SIGINT and SIGTERM caught for a training loop (see process.h). The handler only
 * stores the signal's number, or, for a second signal, restores the default action and raises
 * the signal again: both async-signal-safe. */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "ai.h"
#include "process.h"

static volatile sig_atomic_t pending = 0;
static int trapped = 0;
static struct sigaction saved_int, saved_term;

static void on_signal(int sig) {
  if (pending) {
    /* the second one: the default action ends the process now. Checkpoints are written to a
     * temporary file and renamed, so the last complete one stays on disk. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    raise(sig); /* blocked while this handler runs: delivered as it returns */
    return;
  }
  pending = sig;
}

int ai_trap_signals(void) {
  if (trapped) return 0;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  /* SA_RESTART: a checkpoint being written (or a pipe being read) when the signal comes goes
   * on instead of failing with EINTR */
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGINT);
  sigaddset(&sa.sa_mask, SIGTERM);
  pending = 0;
  if (sigaction(SIGINT, &sa, &saved_int) != 0) return ai_seterror("trap_signals: sigaction: %s", strerror(errno));
  if (sigaction(SIGTERM, &sa, &saved_term) != 0) {
    int e = errno;
    sigaction(SIGINT, &saved_int, NULL);
    return ai_seterror("trap_signals: sigaction: %s", strerror(e));
  }
  trapped = 1;
  return 0;
}

void ai_untrap_signals(void) {
  if (!trapped) return;
  sigaction(SIGINT, &saved_int, NULL);
  sigaction(SIGTERM, &saved_term, NULL);
  trapped = 0;
  pending = 0;
}

int ai_pending_signal(void) { return pending; }
