/* fuzz_safetensors.c: libFuzzer harness of the safetensors reader (fmt_st_read_mem); a file that
 * loads is written back with fmt_st_write_mem and must load again to the same tensors.
 * Build and run from the repository root (new inputs go to tests/fuzz/out/, git-ignored):
 *   mkdir -p build tests/fuzz/out/safetensors
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc/io tests/fuzz/fuzz_safetensors.c \
 *     src/io/safetensors.c src/io/idx.c $(pkg-config --cflags --libs libcjson zlib) -lm \
 *     -o build/fuzz_safetensors
 *   build/fuzz_safetensors -max_total_time=60 -dict=tests/fuzz/safetensors.dict \
 *     tests/fuzz/out/safetensors tests/fuzz/corpus/safetensors */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fmt_st_file f;
  char err[256];
  err[0] = 0;
  if (fmt_st_read_mem(data, size, &f, err, sizeof err) != 0) {
    if (!err[0] || f.tensors || f.meta || f.ntensors) __builtin_trap();
    return 0;
  }
  fmt_st_entry *e = calloc(f.ntensors + 1, sizeof *e);
  const char **mk = calloc(f.nmeta + 1, sizeof *mk), **mv = calloc(f.nmeta + 1, sizeof *mv);
  for (size_t i = 0; i < f.ntensors; i++) {
    fmt_st_tensor *t = &f.tensors[i];
    uint64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= (uint64_t)t->shape[d];
    if (!t->data || n * fmt_dtype_size(t->dtype) != t->nbytes) __builtin_trap();
    e[i].name = t->name;
    e[i].dtype = t->dtype;
    e[i].ndim = t->ndim;
    e[i].shape = t->shape;
    e[i].data = t->data;
  }
  for (size_t i = 0; i < f.nmeta; i++) mk[i] = f.meta[i].key, mv[i] = f.meta[i].value;
  void *out;
  size_t len;
  if (fmt_st_write_mem(e, f.ntensors, mk, mv, f.nmeta, &out, &len, err, sizeof err) != 0)
    __builtin_trap();
  fmt_st_file g;
  if (fmt_st_read_mem(out, len, &g, err, sizeof err) != 0) __builtin_trap();
  if (g.ntensors != f.ntensors || g.nmeta != f.nmeta) __builtin_trap();
  for (size_t i = 0; i < f.ntensors; i++) {
    fmt_st_tensor *a = &f.tensors[i], *b = &g.tensors[i];
    if (strcmp(a->name, b->name) || a->dtype != b->dtype || a->ndim != b->ndim ||
        memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim) || a->nbytes != b->nbytes ||
        memcmp(a->data, b->data, a->nbytes))
      __builtin_trap();
  }
  for (size_t i = 0; i < f.nmeta; i++)
    if (strcmp(f.meta[i].key, g.meta[i].key) || strcmp(f.meta[i].value, g.meta[i].value))
      __builtin_trap();
  fmt_st_free(&g);
  fmt_free(out);
  free(e);
  free(mk);
  free(mv);
  fmt_st_free(&f);
  return 0;
}
