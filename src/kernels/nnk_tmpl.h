/* nnk_tmpl.h: compiles a kernel file's type-generic part twice, for float and for double.
 *
 * Every kernel exists as name_f32 and name_f64 with the same body, so a family file
 * (pool.c, norm.c, ...) is written once, in T, and read twice: its type-independent part
 * comes first, under #ifndef NNK_TMPL_PASS, and ends with
 *     #define NNK_TMPL "pool.c"
 *     #include "nnk_tmpl.h"
 * which includes the file again, with NNK_TMPL_PASS, T, FN(name) (name_f32 / name_f64), GEMM,
 * EXP, LOG and FLOOR defined, once per type; the generic part stands under #else. So a family
 * is one file, and every hot helper stays static in the file that calls it (inlined, or
 * cloned, there), as the kernel tests (tests/c/nnk_test_tmpl.h) do for theirs. */

#define NNK_TMPL_PASS 1

/* the parameters, through NNK_TMPL_SEL(float's, double's), which each pass defines */
#define NNK_TMPL_CAT_(a, b) a##b
#define NNK_TMPL_CAT(a, b) NNK_TMPL_CAT_(a, b)
#define T NNK_TMPL_SEL(float, double)
#define FN(name) NNK_TMPL_CAT(name, NNK_TMPL_SEL(_f32, _f64))
#define GEMM NNK_TMPL_SEL(cblas_sgemm, cblas_dgemm)
#define EXP NNK_TMPL_SEL(expf, exp)
#define LOG NNK_TMPL_SEL(logf, log)
#define FLOOR NNK_TMPL_SEL(floorf, floor)

#define NNK_TMPL_SEL(f32, f64) f32
#include NNK_TMPL
#undef NNK_TMPL_SEL

#define NNK_TMPL_SEL(f32, f64) f64
#include NNK_TMPL
#undef NNK_TMPL_SEL

#undef T
#undef FN
#undef GEMM
#undef EXP
#undef LOG
#undef FLOOR
#undef NNK_TMPL_CAT
#undef NNK_TMPL_CAT_
#undef NNK_TMPL_PASS
#undef NNK_TMPL
