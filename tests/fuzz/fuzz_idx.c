/* fuzz_idx.c: libFuzzer harness of the IDX reader (fmt_idx_read_mem; plain and gzip input).
 * Build and run from the repository root (new inputs go to tests/fuzz/out/, git-ignored):
 *   mkdir -p build tests/fuzz/out/idx
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc/io tests/fuzz/fuzz_idx.c \
 *     src/io/idx.c $(pkg-config --cflags --libs zlib) -o build/fuzz_idx
 *   build/fuzz_idx -max_total_time=60 tests/fuzz/out/idx tests/fuzz/corpus/idx */
#include <stdint.h>
#include <string.h>

#include "fmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fmt_array a;
  char err[256];
  err[0] = 0;
  if (fmt_idx_read_mem(data, size, &a, err, sizeof err) != 0) {
    /* a failure names itself and leaves nothing behind */
    if (!err[0] || a.data || a.ndim) __builtin_trap();
    return 0;
  }
  uint64_t n = 1;
  for (int i = 0; i < a.ndim; i++) n *= (uint64_t)a.shape[i];
  if (a.ndim < 1 || a.ndim > FMT_MAXDIM || !a.data || n * fmt_dtype_size(a.dtype) != a.nbytes)
    __builtin_trap();
  /* a plain u8 file is rewritten byte for byte */
  if (a.dtype == FMT_U8 && size >= 4 && data[2] == 0x08) {
    void *out;
    size_t len;
    if (fmt_idx_write_u8_mem(a.ndim, a.shape, a.data, &out, &len, err, sizeof err) != 0)
      __builtin_trap();
    if (data[0] == 0 && (len != size || memcmp(out, data, len) != 0)) __builtin_trap();
    fmt_free(out);
  }
  fmt_array_free(&a);
  return 0;
}
