/* nnk_test_tmpl.h: compiles a kernel test's generic part twice, for float (tolerance 1e-4)
 * and for double (1e-10), as src/kernels/nnk_tmpl.h does for the kernels: a test file
 * defines TEST_SELF (its own name) and includes this after nnk_test.h; its generic part
 * stands under the #else of #ifndef TEST_PASS and defines FN(run_all). */

#define TEST_PASS 1
#define TEST_CAT_(a, b) a##b
#define TEST_CAT(a, b) TEST_CAT_(a, b)
#define T TEST_SEL(float, double)
#define FN(name) TEST_CAT(name, TEST_SEL(_f32, _f64))
#define TNAME TEST_SEL("f32", "f64")
#define TOL TEST_SEL(1e-4, 1e-10)

#define TEST_SEL(f32, f64) f32
#include "nnk_test.h"
#include TEST_SELF
#undef TEST_SEL

#define TEST_SEL(f32, f64) f64
#include "nnk_test.h"
#include TEST_SELF
#undef TEST_SEL

#undef T
#undef FN
#undef TNAME
#undef TOL
#undef TEST_CAT
#undef TEST_CAT_
#undef TEST_PASS
#undef TEST_SELF
