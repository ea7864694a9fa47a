/* alloc.c: a caching allocator for tensor storage, and the error message of the core.
 * Blocks are rounded to size classes (4 per power of two) and kept on free lists, so a
 * training loop that allocates the same shapes every step stops calling malloc after step 1. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ai.h"

static _Thread_local char errbuf[512];

int ai_seterror(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, sizeof errbuf, fmt, ap);
  va_end(ap);
  return -1;
}

const char *ai_error(void) { return errbuf[0] ? errbuf : "unknown error"; }

#define NCLASS 256          /* size classes cover up to 2^(NCLASS/4 + 6) bytes */
#define MIN_BLOCK 64
#ifdef AI_NO_CACHE /* sanitizer builds: every free really frees, so ASan sees use-after-free */
#define CACHE_LIMIT 0
#else
#define CACHE_LIMIT ((size_t)2 << 30) /* never keep more than this in free lists */
#endif

typedef struct block { struct block *next; } block;

static block *free_list[NCLASS];
static size_t live_bytes, cached_bytes, peak_bytes;
static long fail_countdown;

/* Size class: round up to 4 steps per power of two (at most 25% waste). */
static int size_class(size_t n, size_t *rounded) {
  if (n <= MIN_BLOCK) { *rounded = MIN_BLOCK; return 0; }
  int p = 63 - __builtin_clzll((unsigned long long)(n - 1)); /* 2^p < n <= 2^(p+1) */
  size_t base = (size_t)1 << p, step = base / 4;
  size_t k = (n - base + step - 1) / step;                   /* 1..4 */
  *rounded = base + k * step;
  int c = (p - 6) * 4 + (int)k;
  return c < NCLASS ? c : -1;
}

void ai_alloc_fail_after(long n) { fail_countdown = n; }

void *ai_alloc(size_t nbytes) {
  if (fail_countdown > 0 && --fail_countdown == 0) {
    ai_seterror("not enough memory (simulated allocation failure)");
    return NULL;
  }
  if (nbytes == 0) nbytes = 1;
  size_t rounded;
  int c = size_class(nbytes, &rounded);
  void *p = NULL;
  if (c >= 0 && free_list[c]) {
    block *b = free_list[c];
    free_list[c] = b->next;
    cached_bytes -= rounded;
    p = b;
  } else {
    if (c < 0) rounded = (nbytes + 63) & ~(size_t)63;
    if (rounded < nbytes) { ai_seterror("not enough memory (size overflow)"); return NULL; }
    if (posix_memalign(&p, 64, rounded)) p = NULL;
    if (!p && cached_bytes) { ai_empty_cache(); if (posix_memalign(&p, 64, rounded)) p = NULL; }
    if (!p) {
      ai_seterror("not enough memory (could not allocate %zu bytes)", nbytes);
      return NULL;
    }
  }
  live_bytes += rounded;
  if (live_bytes > peak_bytes) peak_bytes = live_bytes;
  return p;
}

void ai_free(void *p, size_t nbytes) {
  if (!p) return;
  if (nbytes == 0) nbytes = 1;
  size_t rounded;
  int c = size_class(nbytes, &rounded);
  if (c < 0) rounded = (nbytes + 63) & ~(size_t)63;
  live_bytes -= rounded;
  if (c >= 0 && cached_bytes + rounded <= CACHE_LIMIT) {
    block *b = p;
    b->next = free_list[c];
    free_list[c] = b;
    cached_bytes += rounded;
  } else {
    free(p);
  }
}

void ai_empty_cache(void) {
  for (int c = 0; c < NCLASS; c++) {
    while (free_list[c]) {
      block *b = free_list[c];
      free_list[c] = b->next;
      free(b);
    }
  }
  cached_bytes = 0;
}

size_t ai_live_bytes(void) { return live_bytes; }
size_t ai_cached_bytes(void) { return cached_bytes; }
size_t ai_peak_bytes(void) { return peak_bytes; }

/* ---------------------------------------------------------------- fixed-size free lists */

typedef struct free_block { struct free_block *next; } free_block;

void *ai_freelist_get(ai_freelist *fl) {
  free_block *b = fl->head;
  if (!b) return calloc(1, fl->size);
  fl->head = b->next;
  fl->len--;
  memset(b, 0, fl->size);
  return b;
}

void ai_freelist_put(ai_freelist *fl, void *p) {
#ifndef AI_NO_CACHE
  if (fl->len < fl->max) {
    free_block *b = p;
    b->next = fl->head;
    fl->head = b;
    fl->len++;
    return;
  }
#endif
  free(p);
}
