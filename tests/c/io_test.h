/* io_test.h: what the file-format test programs share (tests/c/test_io_*.c) beyond check.h:
 * CHECK_ERR, a temp folder and small file helpers (io_test.c).
 *
 * Build and run from the repository root (as the Makefile does), e.g.:
 *   gcc -std=gnu11 -Wall -Wextra -O2 -g -Isrc/io tests/c/test_io_idx.c tests/c/io_test.c \
 *     src/io/idx.c src/io/png.c src/io/safetensors.c src/io/gif.c \
 *     $(pkg-config --cflags --libs libpng libcjson zlib) -lm -o build/test_io_idx && build/test_io_idx
 * (add -fsanitize=address,undefined to check memory). The last line each program prints is
 * "N passed, M failed"; the exit status is non-zero on any failure. */
#ifndef IO_TEST_H
#define IO_TEST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "fmt.h"

extern char tmpdir[256];
extern char err[512];

/* Expects a failure whose message contains `want`. */
#define CHECK_ERR(rc, want)                                                                \
  CHECK((rc) != 0 && strstr(err, want) != NULL, "expected an error with '%s', got rc=%d '%s'", \
        want, rc, err)

/* tmpdir/name, in one of four rotating buffers. */
const char *tpath(const char *name);
unsigned char *slurp(const char *path, size_t *len);
int spit(const char *path, const void *b, size_t n);
/* No "*.tmp.*" may be left in the temp folder after any write. */
int stray_temps(void);
/* Makes the temp folder /tmp/<name>.XXXXXX, runs the tests, removes the folder and prints the
 * totals; returns the exit status. */
int io_test_main(const char *name, void (*const *tests)(void), int ntests);

#endif
