/* l_format.c: tostring of a tensor, in the style of PyTorch:
 *
 *   tensor([[ 0.1234, -1.5000],
 *           [ 2.0000,  3.0000]], dtype=f32, shape=2x2)
 *   tensor([1, 2, 3], dtype=i64, shape=3)
 *   tensor(3.1416, dtype=f64)                      0-dim
 *   tensor([], dtype=f32, shape=0x3)               empty
 *   tensor([1., 2.], dtype=f32, shape=2, requires_grad=true)
 *   tensor([2., 4.], dtype=f32, shape=2, grad_fn=<MulBackward>)
 *
 * Floats: 4 decimals; "1." style when every value is an integer; scientific (1.0000e+05) when
 * max/min of the nonzero finite magnitudes > 1000, max > 1e8 or min < 1e-4 (as PyTorch).
 * Integers and u8: plain. Values are right-aligned to a common width; rows of a 1-d run wrap at
 * 80 columns. Tensors with more than 1000 elements show the first and last 3 entries of every
 * dim longer than 6 with "..." between. Only uses ai.h: ndim, shape, dtype, requires_grad,
 * grad_fn, ai_get, ai_numel, ai_grad_fn_name, ai_dtype_names.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lbind.h"

#define FMT_EDGE 3          /* items kept at each end of a summarised dim */
#define FMT_THRESHOLD 1000  /* summarise above this many elements */
#define FMT_LINEWIDTH 80
#define FMT_PRECISION 4

typedef struct {
  int is_float;
  int int_mode; /* floats that are all integers: "3." */
  int sci;      /* scientific notation */
  int width;    /* common width of the formatted values */
  /* statistics of the visited values */
  int any_nonzero_finite;
  double minabs, maxabs;
} formatter;

/* The unpadded text of v; returns its length. */
static int fmt_value(const formatter *f, double v, char *buf, size_t n) {
  if (!f->is_float) return snprintf(buf, n, "%lld", (long long)v);
  if (isnan(v)) return snprintf(buf, n, "nan");
  if (isinf(v)) return snprintf(buf, n, v > 0 ? "inf" : "-inf");
  if (f->sci) return snprintf(buf, n, "%.*e", FMT_PRECISION, v);
  if (f->int_mode) return snprintf(buf, n, "%.0f.", v);
  return snprintf(buf, n, "%.*f", FMT_PRECISION, v);
}

/* The indices shown along a dim of the given size: -1 marks the "..." gap. */
static int shown_positions(int64_t size, int summarize, int64_t *pos) {
  if (summarize && size > 2 * FMT_EDGE) {
    int k = 0;
    for (int i = 0; i < FMT_EDGE; i++) pos[k++] = i;
    pos[k++] = -1;
    for (int i = FMT_EDGE; i > 0; i--) pos[k++] = size - i;
    return k;
  }
  for (int64_t i = 0; i < size; i++) pos[i] = i;
  return (int)size;
}

/* Visits every shown element, calling fn(f, value). */
static void visit(const ai_tensor *t, int64_t *idx, int dim, int summarize, formatter *f,
                  void (*fn)(formatter *, double)) {
  if (dim == t->ndim) {
    fn(f, ai_get(t, idx));
    return;
  }
  int64_t size = t->shape[dim];
  if (summarize && size > 2 * FMT_EDGE) {
    for (int64_t i = 0; i < size; i++) {
      if (i == FMT_EDGE) i = size - FMT_EDGE;
      idx[dim] = i;
      visit(t, idx, dim + 1, summarize, f, fn);
    }
  } else {
    for (int64_t i = 0; i < size; i++) {
      idx[dim] = i;
      visit(t, idx, dim + 1, summarize, f, fn);
    }
  }
}

static void collect_stats(formatter *f, double v) {
  if (!f->is_float || !isfinite(v) || v == 0) return;
  double a = fabs(v);
  if (!f->any_nonzero_finite) {
    f->any_nonzero_finite = 1;
    f->minabs = f->maxabs = a;
  } else {
    if (a < f->minabs) f->minabs = a;
    if (a > f->maxabs) f->maxabs = a;
  }
  if (v != ceil(v)) f->int_mode = 0;
}

static void collect_width(formatter *f, double v) {
  char buf[64];
  int n = fmt_value(f, v, buf, sizeof buf);
  if (n > f->width) f->width = n;
}

static void add_spaces(luaL_Buffer *b, int n) {
  for (int i = 0; i < n; i++) luaL_addchar(b, ' ');
}

static void add_value(luaL_Buffer *b, const formatter *f, double v) {
  char buf[64];
  int n = fmt_value(f, v, buf, sizeof buf);
  add_spaces(b, f->width - n);
  luaL_addlstring(b, buf, (size_t)n);
}

static void tensor_str(luaL_Buffer *b, const ai_tensor *t, int64_t *idx, int dim, int indent,
                       int summarize, const formatter *f) {
  int64_t size = t->shape[dim];
  int64_t pos[2 * FMT_EDGE + 1];
  int gapped = summarize && size > 2 * FMT_EDGE; /* first and last FMT_EDGE, "..." between */
  int64_t n = gapped ? shown_positions(size, summarize, pos) : size;
  luaL_addchar(b, '[');
  if (dim == t->ndim - 1) { /* a row of values */
    int per_line = (FMT_LINEWIDTH - indent) / (f->width + 2);
    if (per_line < 1) per_line = 1;
    for (int64_t k = 0; k < n; k++) {
      int64_t i = gapped ? pos[k] : k;
      if (k > 0) {
        luaL_addchar(b, ',');
        if (k % per_line == 0) {
          luaL_addchar(b, '\n');
          add_spaces(b, indent + 1);
        } else {
          luaL_addchar(b, ' ');
        }
      }
      if (i < 0) {
        luaL_addstring(b, " ...");
      } else {
        idx[dim] = i;
        add_value(b, f, ai_get(t, idx));
      }
    }
  } else {
    int newlines = t->ndim - dim - 1;
    for (int64_t k = 0; k < n; k++) {
      int64_t i = gapped ? pos[k] : k;
      if (k > 0) {
        luaL_addchar(b, ',');
        for (int j = 0; j < newlines; j++) luaL_addchar(b, '\n');
        add_spaces(b, indent + 1);
      }
      if (i < 0) {
        luaL_addstring(b, "...");
      } else {
        idx[dim] = i;
        tensor_str(b, t, idx, dim + 1, indent + 1, summarize, f);
      }
    }
  }
  luaL_addchar(b, ']');
}

/* Length of the last line of what the buffer holds. */
static size_t last_line_len(luaL_Buffer *b) {
  const char *s = luaL_buffaddr(b);
  size_t len = luaL_bufflen(b), i = len;
  while (i > 0 && s[i - 1] != '\n') i--;
  return len - i;
}

/* Appends ", suffix" or ",\n<indent>suffix" when the line would pass the line width. */
static void add_suffix(luaL_Buffer *b, const char *suffix, int indent) {
  size_t n = strlen(suffix);
  if (last_line_len(b) + n + 2 > FMT_LINEWIDTH) {
    luaL_addstring(b, ",\n");
    add_spaces(b, indent);
  } else {
    luaL_addstring(b, ", ");
  }
  luaL_addlstring(b, suffix, n);
}

void lai_format_tensor(lua_State *L, const ai_tensor *t) {
  luaL_Buffer b;
  char tmp[256];
  const int indent = 7; /* strlen("tensor(") */
  if (t == NULL) {
    lua_pushliteral(L, "tensor(<closed>)");
    return;
  }
  int ndim = t->ndim < 0 ? 0 : (t->ndim > AI_MAXDIM ? AI_MAXDIM : t->ndim);
  const char *dtname =
      (t->dtype >= 0 && t->dtype < AI_NDTYPES) ? ai_dtype_names[t->dtype] : "?";
  int64_t numel = ai_numel(t);
  int64_t idx[AI_MAXDIM] = {0};

  formatter f;
  memset(&f, 0, sizeof f);
  f.is_float = ai_is_float(t->dtype);
  f.int_mode = 1;
  f.width = 1;
  int summarize = numel > FMT_THRESHOLD;

  luaL_buffinit(L, &b);
  luaL_addstring(&b, "tensor(");
  if (numel == 0) {
    luaL_addstring(&b, "[]");
  } else {
    visit(t, idx, 0, summarize, &f, collect_stats);
    if (f.is_float && f.any_nonzero_finite) {
      double ratio = f.maxabs / f.minabs;
      if (f.int_mode) f.sci = ratio > 1000.0 || f.maxabs > 1.0e8;
      else f.sci = ratio > 1000.0 || f.maxabs > 1.0e8 || f.minabs < 1.0e-4;
    }
    visit(t, idx, 0, summarize, &f, collect_width);
    if (ndim == 0) {
      char buf[64];
      int n = fmt_value(&f, ai_get(t, idx), buf, sizeof buf);
      luaL_addlstring(&b, buf, (size_t)n);
    } else {
      tensor_str(&b, t, idx, 0, indent, summarize, &f);
    }
  }

  snprintf(tmp, sizeof tmp, "dtype=%s", dtname);
  add_suffix(&b, tmp, indent);
  if (ndim > 0) {
    size_t k = (size_t)snprintf(tmp, sizeof tmp, "shape=");
    for (int d = 0; d < ndim && k < sizeof tmp; d++)
      k += (size_t)snprintf(tmp + k, sizeof tmp - k, d ? "x%lld" : "%lld",
                            (long long)t->shape[d]);
    add_suffix(&b, tmp, indent);
  }
  if (t->grad_fn) {
    const char *name = ai_grad_fn_name(t);
    snprintf(tmp, sizeof tmp, "grad_fn=<%s>", name ? name : "?");
    add_suffix(&b, tmp, indent);
  } else if (t->requires_grad) {
    add_suffix(&b, "requires_grad=true", indent);
  }
  luaL_addchar(&b, ')');
  luaL_pushresult(&b);
}
