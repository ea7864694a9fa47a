/* fuzz_png.c: libFuzzer harness of the PNG reader (fmt_png_read_mem); a decoded image is
 * re-encoded with fmt_png_write_mem and decoded again, which must give its 8-bit rounding.
 * Each input is tried as is and with its chunk CRCs repaired: libpng is not instrumented, so
 * without the repair almost every mutation would stop at a CRC error.
 * Build and run from the repository root (new inputs go to tests/fuzz/out/, git-ignored):
 *   mkdir -p build tests/fuzz/out/png
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc/io tests/fuzz/fuzz_png.c \
 *     src/io/png.c src/io/idx.c $(pkg-config --cflags --libs libpng zlib) -o build/fuzz_png
 *   build/fuzz_png -max_total_time=60 tests/fuzz/out/png tests/fuzz/corpus/png */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fmt.h"

static void one(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  one(data, size);
  if (size < 8 || size > (1 << 20)) return 0;
  uint8_t *c = malloc(size);
  memcpy(c, data, size);
  for (size_t p = 8; p + 12 <= size;) {
    size_t n = (size_t)c[p] << 24 | (size_t)c[p + 1] << 16 | (size_t)c[p + 2] << 8 | c[p + 3];
    if (n > size - p - 12) break;
    uint32_t crc = (uint32_t)crc32(0, c + p + 4, (uInt)(n + 4));
    c[p + 8 + n] = (uint8_t)(crc >> 24), c[p + 9 + n] = (uint8_t)(crc >> 16);
    c[p + 10 + n] = (uint8_t)(crc >> 8), c[p + 11 + n] = (uint8_t)crc;
    p += 12 + n;
  }
  if (memcmp(c, data, size) != 0) one(c, size);
  free(c);
  return 0;
}

static void one(const uint8_t *data, size_t size) {
  fmt_array a;
  char err[256];
  err[0] = 0;
  if (fmt_png_read_mem(data, size, &a, err, sizeof err) != 0) {
    if (!err[0] || a.data) __builtin_trap();
    return;
  }
  if (a.dtype != FMT_F32 || a.ndim != 3 || a.shape[0] < 1 || a.shape[0] > 4 ||
      (size_t)(a.shape[0] * a.shape[1] * a.shape[2]) * 4 != a.nbytes)
    __builtin_trap();
  const float *x = a.data;
  size_t n = a.nbytes / 4;
  for (size_t i = 0; i < n; i++)
    if (!(x[i] >= 0.0f && x[i] <= 1.0f)) __builtin_trap();
  if (n <= (1u << 20)) { /* keep big images from slowing the run */
    void *png;
    size_t len;
    if (fmt_png_write_mem(x, (int)a.shape[0], a.shape[1], a.shape[2], &png, &len, err,
                          sizeof err) != 0)
      __builtin_trap();
    fmt_array b;
    if (fmt_png_read_mem(png, len, &b, err, sizeof err) != 0 || b.nbytes != a.nbytes)
      __builtin_trap();
    const float *y = b.data;
    for (size_t i = 0; i < n; i++)
      if (y[i] != (float)(unsigned)((double)x[i] * 255.0 + 0.5) / 255.0f) __builtin_trap();
    fmt_array_free(&b);
    free(png);
  }
  fmt_array_free(&a);
}
