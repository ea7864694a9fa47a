/* fmt.h: the file-format layer of aiart-lua (IDX, PNG, safetensors, GIF) in pure C.
 * It knows nothing of tensors or Lua: readers hand back raw buffers with a dtype and a shape.
 *
 * Conventions shared by every function here:
 *  - Return 0 on success, -1 on failure with a one-line message in err (err may be NULL or
 *    errlen 0). Nothing is printed, nothing exits or aborts, and a failed call has freed all it
 *    allocated and left its outputs zeroed.
 *  - Array data handed back is allocated by fmt_alloc (64-byte aligned, never NULL even when
 *    empty); encoded bytes from the *_write_mem functions are plain malloc memory. Both are freed
 *    by fmt_free (free()). A caller may take array data over (e.g. as the storage of a tensor)
 *    and clear the pointer in the struct so that fmt_array_free / fmt_st_free leave it alone.
 *  - Files are written atomically: "<path>.tmp.<pid>" in the same folder, fflush + fsync,
 *    rename over the target, fsync of the folder. A crash never leaves a half-written target.
 *  - Multi-byte data is converted to host byte order.
 *
 * Sources: idx.c (also the shared helpers: fmt_alloc, fmt_atomic_*, dtypes), png.c,
 * safetensors.c, gif.c. Link with zlib, libpng and libcjson.
 */
#ifndef FMT_H
#define FMT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* dtype codes: the same numbers as ai.h's ai_dtype, so bindings pass them straight through. */
enum { FMT_U8 = 0, FMT_I64 = 1, FMT_F32 = 2, FMT_F64 = 3, FMT_NDTYPES = 4 };
#define FMT_MAXDIM 8

size_t fmt_dtype_size(int dtype);       /* 0 for an unknown code */
const char *fmt_dtype_name(int dtype);  /* "u8" "i64" "f32" "f64", "?" otherwise */

/* A dense row-major array owned by the struct. */
typedef struct {
  int dtype;                  /* FMT_* */
  int ndim;                   /* 0..FMT_MAXDIM */
  int64_t shape[FMT_MAXDIM];
  void *data;                 /* fmt_alloc'd, never NULL after a successful read */
  size_t nbytes;              /* numel * fmt_dtype_size(dtype) */
} fmt_array;
void fmt_array_free(fmt_array *a); /* frees data (if any) and zeroes the struct */

/* Writes a printf-style message into err (when err && errlen) and returns -1. */
int fmt_seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Index of the first byte of s[0..n) that breaks UTF-8 (overlongs, surrogates, > U+10FFFF), or n;
 * shared by the safetensors reader and ai.json (defined in idx.c with the other shared helpers). */
size_t fmt_utf8_check(const unsigned char *s, size_t n);

void *fmt_alloc(size_t nbytes);    /* 64-byte aligned, at least 64 bytes; NULL when out of memory */
void fmt_free(void *p);

/* ---- atomic file writing (used by every writer; usable by bindings too) ---- */
typedef struct {
  FILE *f;      /* write here between open and commit */
  char *path;   /* target */
  char *tmp;    /* "<path>.tmp.<pid>" */
} fmt_atomic;
int fmt_atomic_open(fmt_atomic *a, const char *path, char *err, size_t errlen);
/* fflush, fsync, fclose, rename over the target, fsync the folder. On failure the temp file is
 * removed and the target is untouched. Always releases a. */
int fmt_atomic_commit(fmt_atomic *a, char *err, size_t errlen);
void fmt_atomic_abort(fmt_atomic *a); /* closes and removes the temp file; safe on a zeroed a */
int fmt_write_file(const char *path, const void *buf, size_t len, char *err, size_t errlen);

/* ---- IDX (MNIST's format; idx.c) ----
 * Reads gzip (detected by its magic 1f 8b) or plain files. All IDX element types are accepted
 * (0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64; big-endian) with rank 1..8, and
 * converted: u8 -> FMT_U8, i8/i16/i32 -> FMT_I64, f32 -> FMT_F32, f64 -> FMT_F64.
 * Strict: a short file is an error and so is any byte after the declared data (trailing data is
 * rejected: in IDX it means a wrong header). Garbage after a complete gzip stream is ignored, as
 * zlib's gzread does. */
int fmt_idx_read(const char *path, fmt_array *out, char *err, size_t errlen);
int fmt_idx_read_mem(const void *buf, size_t len, fmt_array *out, char *err, size_t errlen);
/* Writes u8 data of rank 1..8 (e.g. N x H x W images, N labels); gzip when path ends in ".gz". */
int fmt_idx_write_u8(const char *path, int ndim, const int64_t *shape, const uint8_t *data,
                     char *err, size_t errlen);
/* The plain (uncompressed) bytes of such a file into a fmt_alloc'd *out. */
int fmt_idx_write_u8_mem(int ndim, const int64_t *shape, const uint8_t *data, void **out,
                         size_t *outlen, char *err, size_t errlen);

/* ---- PNG (png.c, libpng) ----
 * Load: any PNG (gray, gray+alpha, RGB, RGBA, palette with or without tRNS, 1..16 bits,
 * interlaced) into FMT_F32 C x H x W in [0,1]: C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA
 * (palette -> 3 or 4, a tRNS chunk adds alpha). 16-bit samples keep their precision. No gamma
 * or color-profile conversion is applied. */
int fmt_png_read(const char *path, fmt_array *out, char *err, size_t errlen);
int fmt_png_read_mem(const void *buf, size_t len, fmt_array *out, char *err, size_t errlen);
/* Save 8-bit from float C x H x W (C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA): values are clamped
 * to [0,1] (NaN -> 0) and rounded to the nearest of 0..255. */
int fmt_png_write(const char *path, const float *chw, int c, int64_t h, int64_t w, char *err,
                  size_t errlen);
int fmt_png_write_mem(const float *chw, int c, int64_t h, int64_t w, void **out, size_t *outlen,
                      char *err, size_t errlen);

/* ---- animated GIF (gif.c) ----
 * frames: n frames of float C x H x W in [0,1], contiguous (n*C*H*W floats). C = 1 (or 2: the
 * alpha is dropped) uses a global palette of 256 grays, exact for 8-bit levels; C = 3 or 4
 * (alpha dropped) uses one median-cut palette of 256 colors computed over all frames.
 * delay_ms per frame (GIF stores hundredths: rounded, at least 1), loops forever. H, W <= 65535. */
int fmt_gif_write(const char *path, const float *frames, int64_t n, int c, int64_t h, int64_t w,
                  int delay_ms, char *err, size_t errlen);
int fmt_gif_write_mem(const float *frames, int64_t n, int c, int64_t h, int64_t w, int delay_ms,
                      void **out, size_t *outlen, char *err, size_t errlen);

/* ---- safetensors (safetensors.c, libcjson) ----
 * Reading checks and names every rule a file breaks (see safetensors.c). File dtypes convert:
 * F64 -> f64, F32/F16/BF16 -> f32, I64/I32/I16/I8 -> i64, U8/BOOL -> u8 (BOOL as 0/1). */
typedef struct {
  char *name;
  int dtype;                  /* FMT_* after conversion */
  const char *file_dtype;     /* as stored: "F32", "BF16", ... (static string) */
  int ndim;                   /* 0..FMT_MAXDIM */
  int64_t shape[FMT_MAXDIM];
  void *data;                 /* fmt_alloc'd; may be taken over (set to NULL) */
  size_t nbytes;
} fmt_st_tensor;
typedef struct { char *key, *value; } fmt_st_meta;
typedef struct {
  fmt_st_tensor *tensors;     /* sorted by name */
  size_t ntensors;
  fmt_st_meta *meta;          /* "__metadata__", sorted by key */
  size_t nmeta;
} fmt_st_file;
void fmt_st_free(fmt_st_file *f); /* frees all still owned, zeroes; safe on a zeroed f */
int fmt_st_read(const char *path, fmt_st_file *out, char *err, size_t errlen);
int fmt_st_read_mem(const void *buf, size_t len, fmt_st_file *out, char *err, size_t errlen);

/* Writing: dtypes FMT_F32/F64/I64/U8; tensors are written sorted by name (bytewise), the header
 * padded with spaces to a multiple of 8. Names and metadata must be valid UTF-8, names unique and
 * not "__metadata__". meta_keys/meta_values: nmeta strings each (NULL when nmeta == 0). */
typedef struct {
  const char *name;
  int dtype;
  int ndim;
  const int64_t *shape;       /* ndim entries (may be NULL when ndim == 0) */
  const void *data;           /* numel * dtype size bytes, host order */
} fmt_st_entry;
int fmt_st_write(const char *path, const fmt_st_entry *t, size_t n, const char *const *meta_keys,
                 const char *const *meta_values, size_t nmeta, char *err, size_t errlen);
int fmt_st_write_mem(const fmt_st_entry *t, size_t n, const char *const *meta_keys,
                     const char *const *meta_values, size_t nmeta, void **out, size_t *outlen,
                     char *err, size_t errlen);

#endif
