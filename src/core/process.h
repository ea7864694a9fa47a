/* process.h: what a long run needs from its process: the signals that ask it to stop, caught so
 * that it can finish its step and save (signals.c), and a lock on its output folder
 * (lockfile.c). The Lua face is src/lua/l_signal.c. */
#ifndef AI_PROCESS_H
#define AI_PROCESS_H

/* Catches SIGINT and SIGTERM. The first one is only recorded (ai_pending_signal), for the
 * training loop to see between steps; a second one of either restores the default action and
 * re-raises itself, which ends the process at once. The actions in place before (a host's own
 * SIGINT handler, as lua.c and aiart-lua install around a script) are kept for
 * ai_untrap_signals. Trapping while trapped changes nothing. Returns 0, or -1 with ai_error(). */
int ai_trap_signals(void);
/* Puts back the actions that were in place before ai_trap_signals and forgets a pending signal
 * (a no-op when not trapped). */
void ai_untrap_signals(void);
/* The first signal caught since ai_trap_signals (SIGINT or SIGTERM), or 0. */
int ai_pending_signal(void);

/* A lock file: holds "PID\nHOST\n" of the process that holds it, which keeps it flock()ed. The
 * kernel drops a lock when its holder dies, however it dies, so a file left by a killed run is
 * stale and is taken over. */
typedef struct ai_lockfile ai_lockfile;

typedef struct {
  int busy;            /* 1: another process holds the lock */
  long pid;            /* busy: the holder's PID (0 if it has not written it yet) */
  char host[64];       /* busy: the holder's host name ("" if unknown) */
  long stale_pid;      /* taken: the PID written in a stale file taken over, else 0 */
  char stale_host[64]; /* taken: its host name */
} ai_lock_info;

/* Takes the lock file at path (created if missing; its folder must exist). Returns the lock,
 * or NULL with info->busy and the holder, or an error, in ai_error(). */
ai_lockfile *ai_lock_take(const char *path, ai_lock_info *info);
/* Removes the file, releases the lock and frees lk (NULL: nothing). */
void ai_lock_release(ai_lockfile *lk);

#endif
