/* lockfile.c: the lock of an output folder (see process.h): a file that names its holder,
 * flock()ed while held, so that a second run is refused and a dead run's file is stale. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ai.h"
#include "process.h"

struct ai_lockfile {
  int fd;
  char *path;
};

/* "PID\nHOST\n" read from fd into pid and host ("" and 0 where missing) */
static void read_holder(int fd, long *pid, char *host, size_t hostlen) {
  char buf[160];
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  *pid = 0;
  host[0] = '\0';
  if (n <= 0) return;
  buf[n] = '\0';
  char *end = NULL;
  long p = strtol(buf, &end, 10);
  if (end == buf || p <= 0) return;
  *pid = p;
  if (*end == '\n') {
    char *h = end + 1;
    size_t len = strcspn(h, "\n");
    if (len >= hostlen) len = hostlen - 1;
    memcpy(host, h, len);
    host[len] = '\0';
  }
}

ai_lockfile *ai_lock_take(const char *path, ai_lock_info *info) {
  memset(info, 0, sizeof *info);
  /* the file at path can be removed by its holder's release between our open and our flock:
   * then we hold a lock on a file that no longer has the name, and try again */
  for (int attempt = 0; attempt < 16; attempt++) {
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644); /* CLOEXEC: children never keep it */
    if (fd < 0) return AI_ERRNULL("lock_file: cannot open %s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int e = errno;
      if (e == EWOULDBLOCK) {
        info->busy = 1;
        read_holder(fd, &info->pid, info->host, sizeof info->host);
        close(fd);
        if (info->pid > 0) return AI_ERRNULL("lock_file: %s is held by process %ld", path, info->pid);
        return AI_ERRNULL("lock_file: %s is held by another process", path);
      }
      close(fd);
      return AI_ERRNULL("lock_file: cannot lock %s: %s", path, strerror(e));
    }
    struct stat held, named;
    if (fstat(fd, &held) != 0 || stat(path, &named) != 0 || held.st_ino != named.st_ino ||
        held.st_dev != named.st_dev) {
      close(fd);
      continue;
    }
    read_holder(fd, &info->stale_pid, info->stale_host, sizeof info->stale_host);
    char host[64] = "";
    if (gethostname(host, sizeof host) != 0) host[0] = '\0';
    host[sizeof host - 1] = '\0';
    char line[128];
    int len = snprintf(line, sizeof line, "%ld\n%s\n", (long)getpid(), host);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)len, 0) != len) {
      int e = errno;
      close(fd);
      return AI_ERRNULL("lock_file: cannot write %s: %s", path, strerror(e));
    }
    ai_lockfile *lk = malloc(sizeof *lk);
    char *p = strdup(path);
    if (!lk || !p) {
      free(lk);
      free(p);
      unlink(path);
      close(fd);
      return AI_ERRNULL("lock_file: out of memory");
    }
    lk->fd = fd;
    lk->path = p;
    return lk;
  }
  return AI_ERRNULL("lock_file: %s keeps being replaced by other processes", path);
}

void ai_lock_release(ai_lockfile *lk) {
  if (!lk) return;
  unlink(lk->path); /* before the lock goes: a waiting process then finds a fresh file */
  close(lk->fd);
  free(lk->path);
  free(lk);
}
