/* io_test.c: the helpers of the file-format test programs (io_test.h). */
#define _POSIX_C_SOURCE 200809L
#include "io_test.h"

#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>

int npass, nfail;
char tmpdir[256];
char err[512];

const char *tpath(const char *name) {
  static char buf[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
  return buf[k];
}

unsigned char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(n > 0 ? (size_t)n : 1);
  if (b && n > 0 && fread(b, 1, (size_t)n, f) != (size_t)n) {
    free(b);
    b = NULL;
  }
  fclose(f);
  *len = (size_t)n;
  return b;
}

int spit(const char *path, const void *b, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  size_t w = fwrite(b, 1, n, f);
  fclose(f);
  return w == n ? 0 : -1;
}

int stray_temps(void) {
  DIR *d = opendir(tmpdir);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d)))
    if (strstr(e->d_name, ".tmp.")) n++;
  if (d) closedir(d);
  return n;
}

static void rm_tmpdir(void) {
  DIR *d = opendir(tmpdir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlink(tpath(e->d_name));
  }
  if (d) closedir(d);
  rmdir(tmpdir);
}

int io_test_main(const char *name, void (*const *tests)(void), int ntests) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/%s.XXXXXX", name);
  if (!mkdtemp(tmpdir)) {
    printf("cannot make a temp folder\n0 passed, 1 failed\n");
    return 1;
  }
  for (int i = 0; i < ntests; i++) tests[i]();
  rm_tmpdir();
  printf("%d passed, %d failed\n", npass, nfail);
  return nfail ? 1 : 0;
}
