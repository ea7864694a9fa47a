-- tests/test_port_ops.lua: the ops a port from PyTorch or Torch7 needs (src/core/shape.c,
-- compare.c, maths.c, lua/aiart/einsum.lua): values and gradients against PyTorch's
-- (tests/parity/parity.json, made by tests/parity/make_parity.py), gradient checks in f64,
-- misuse, unbatched nn input, and the migration table behind help and the REPL's hints.
-- Run: ./aiart-lua tests/run.lua test_port_ops
local T = require "helper"
local ai = require "aiart"

local test, near, ok, eq, expect_error = T.test, T.near, T.ok, T.eq, T.expect_error
local P = ai.json.decode(T.readfile("tests/parity/parity.json")).port_ops

local nums = T.json_numbers

-- the inputs of make_parity.py: sin(0.7 i + k), i = 1..n, row-major, f64
local function vals(shape, k, grad)
  local n = T.numel(shape)
  local v = {}
  for i = 1, n do v[i] = math.sin(0.7 * i + k) end
  if #shape == 0 then return ai.tensor(v[1], {dtype = "f64", requires_grad = grad}) end
  return ai.tensor(T.nest(v, shape), {dtype = "f64", requires_grad = grad})
end

-- |got - want| <= tol * max(1, |want|) elementwise
local function close(got, want, tol, what)
  got = T.flat(got)
  eq(#got, #want, what .. ": length")
  for i = 1, #want do
    local g, w = got[i], want[i]
    ok(g == w or math.abs(g - w) <= tol * math.max(1, math.abs(w)),
       ("%s: element %d: PyTorch %.17g, aiart %.17g"):format(what, i, w, g))
  end
end

-- f(inputs...) against a parity case: the values, the shape and every input's gradient
local function against(case, f, what, tol)
  tol = tol or 1e-12
  local xs = {}
  for i, sh in ipairs(case.inputs) do xs[i] = vals(sh, i, true) end
  local y = f(table.unpack(xs))
  eq(y.shape, case.shape, what .. ": shape")
  close(y, nums(case.y), tol, what)
  local w = vals(y.shape, 9)
  ;(y * w):sum():backward()
  for i, x in ipairs(xs) do close(x.grad, nums(case.grads[i]), tol, what .. ": gradient " .. i) end
end

local function L(t) return ai.tensor(t, {dtype = "i64"}) end
local function shape(t) return table.concat(t.shape, "x") end
local gc = function(f, inputs) ok(ai.gradcheck(f, inputs)) end
local ggc = function(f, inputs) ok(ai.gradgradcheck(f, inputs)) end
local function R(shp, k) return vals(shp, k or 3, true) end

---------------------------------------------------------------------------- parity with PyTorch

test("port ops: shape ops match PyTorch's values and gradients", function()
  against(P.flip, function(x) return x:flip({1, 3}) end, "flip")
  against(P.roll, function(x) return x:roll({1, -2}, {1, 3}) end, "roll")
  against(P.roll_flat, function(x) return ai.roll(x, 5) end, "roll without dims")
  against(P.tile, function(x) return x:tile(2, 1, 3) end, "tile (PyTorch's repeat)")
  against(P.tile_short, function(x) return x:tile({2}) end, "tile with fewer repeats than dims")
  against(P.repeat_interleave, function(x) return x:repeat_interleave(2, 2) end, "repeat_interleave")
  against(P.repeat_interleave_counts, function(x) return x:repeat_interleave(L({1, 0, 3}), 2) end, "repeat_interleave counts")
  against(P.repeat_interleave_flat, function(x) return x:repeat_interleave(2) end, "repeat_interleave flattened")
  against(P.tril, function(x) return x:tril(-1) end, "tril")
  against(P.triu, function(x) return ai.triu(x, 1) end, "triu")
  against(P.diag_vector, function(x) return ai.diag(x, -2) end, "diag of a vector")
  against(P.diag_matrix, function(x) return x:diag(1) end, "diag of a matrix")
  against(P.diagonal, function(x) return x:diagonal(-1, 1, 3) end, "diagonal")
  against(P.trace, function(x) return x:trace() end, "trace")
  against(P.outer, function(a, b) return a:outer(b) end, "outer")
  against(P.kron, function(a, b) return ai.kron(a, b) end, "kron")
  against(P.kron_dims, function(a, b) return a:kron(b) end, "kron of different dims")
end)

test("port ops: lerp, baddbmm and cdist match PyTorch", function()
  against(P.lerp_number, function(a, b) return a:lerp(b, 0.3) end, "lerp by a number")
  against(P.lerp_number_high, function(a, b) return a:lerp(b, 0.8) end, "lerp by a number >= 0.5")
  against(P.lerp_tensor, function(a, b, w) return ai.lerp(a, b, w) end, "lerp by a tensor")
  against(P.baddbmm, function(i, b1, b2) return i:baddbmm(b1, b2, {beta = 0.5, alpha = 2}) end, "baddbmm")
  against(P.baddbmm_broadcast, function(i, b1, b2) return ai.baddbmm(i, b1, b2) end, "baddbmm broadcast")
  for _, p in ipairs({"2", "1", "0.5", "3", "inf"}) do
    local pv = p == "inf" and math.huge or tonumber(p)
    against(P.cdist[p], function(a, b) return ai.cdist(a, b, {p = pv}) end, "cdist p=" .. p, 1e-10)
  end
  against(P.cdist.mm, function(a, b) return ai.cdist(a, b, {compute_mode = "use_mm_for_euclid_dist"}) end, "cdist by matmul", 1e-10)
  against(P.cdist.large, function(a, b) return ai.cdist(a, b) end, "cdist of 30 rows (matmul)", 1e-10)
  local a, b = vals({4, 3}, 1):round(), vals({5, 3}, 2):round()
  close(ai.cdist(a, b, {p = 0}), P.cdist.zero.y, 0, "cdist p=0")
end)

test("port ops: einsum matches PyTorch on every kind of equation", function()
  for _, c in ipairs(P.einsum) do
    against(c, function(...) return ai.einsum(c.eq, ...) end, "einsum " .. c.eq)
  end
  -- the list form, and spaces
  local a, b = vals({3, 4}, 1), vals({4, 5}, 2)
  near(ai.einsum(" ij , jk -> ik ", {a, b}), a:matmul(b), 1e-12)
end)

test("port ops: tests of values match PyTorch", function()
  local c = P.all_any
  local x = ai.tensor(c.x)
  eq(x:all():item(), c.all and 1 or 0)
  eq(x:any():item(), c.any and 1 or 0)
  eq(x:all(2, {keepdim = false}):tolist(), c.all_1)
  eq(x:any(1, {keepdim = false}):tolist(), c.any_0)
  eq(x:nonzero():tolist(), c.nonzero, "nonzero: 1-based")
  local s = P.isclose
  local a, b = ai.tensor(nums(s.a), {dtype = "f64"}), ai.tensor(nums(s.b), {dtype = "f64"})
  eq(ai.isclose(a, b):tolist(), s.default, "isclose")
  eq(a:isclose(b, {rtol = 1e-3, atol = 0, equal_nan = true}):tolist(), s.loose, "isclose, loose")
  eq(ai.isclose(a, b, {rtol = 0, atol = 0}):tolist(), s.exact, "isclose, exact")
  eq(ai.isclose(L({100, 5}), L({101, 9}), {rtol = 0.1, atol = 0}):tolist(), s.int, "isclose of integers")
  eq(ai.allclose(a:narrow(1, 1, 2), b:narrow(1, 1, 2), {rtol = 1e-3}), s.allclose)
  eq(ai.equal(L({1, 2}), ai.tensor({1, 2})), s.equal_mixed)
end)

---------------------------------------------------------------------------- gradient checks

test("port ops: gradcheck (f64) of the shape ops", function()
  gc(function(x) return x:flip(2) end, {R({3, 4})})
  gc(function(x) return x:roll(2, 1) end, {R({3, 4})})
  gc(function(x) return x:tile(2, 3) end, {R({2, 2})})
  gc(function(x) return x:repeat_interleave(L({2, 0, 1}), 1) end, {R({3, 2})})
  gc(function(x) return x:tril(1) + x:triu(-1) end, {R({2, 3, 3})})
  gc(function(x) return ai.diag(x, 1) end, {R({3})})
  gc(function(x) return x:diagonal(0, 2, 3) end, {R({2, 3, 3})})
  gc(function(x) return x:trace() end, {R({3, 3})})
  gc(function(a, b) return ai.outer(a, b) end, {R({3}, 1), R({2}, 2)})
  gc(function(a, b) return ai.kron(a, b) end, {R({2, 2}, 1), R({2, 3}, 2)})
  gc(function(x) local r, g = x:unbind(2); return r * 2 + g end, {R({3, 2})})
  gc(function(a, b) local u, v = ai.meshgrid(a, b, {indexing = "xy"}); return u * v end, {R({3}, 1), R({2}, 2)})
end)

test("port ops: gradcheck and gradgradcheck of lerp, baddbmm, cdist, einsum", function()
  local w = R({2, 3}, 5)
  gc(function(a, b, t) return ai.lerp(a, b, t) end, {R({2, 3}, 1), R({2, 3}, 2), w})
  ggc(function(a, b, t) return ai.lerp(a, b, t) end, {R({2, 3}, 1), R({2, 3}, 2), w})
  gc(function(a, b) return ai.lerp(a, b, 0.7) end, {R({3}, 1), R({3}, 2)})
  gc(function(i, b1, b2) return ai.baddbmm(i, b1, b2, {beta = 0.3, alpha = -1.5}) end, {R({2, 2, 3}, 1), R({2, 2, 4}, 2), R({2, 4, 3}, 3)})
  ggc(function(i, b1, b2) return ai.baddbmm(i, b1, b2) end, {R({3}, 1), R({2, 2, 4}, 2), R({2, 4, 3}, 3)})
  for _, p in ipairs({2, 1, 3, math.huge}) do
    gc(function(a, b) return ai.cdist(a, b, {p = p}) end, {R({3, 2}, 1), R({4, 2}, 2)})
  end
  gc(function(a, b) return ai.cdist(a, b, {compute_mode = "use_mm_for_euclid_dist"}) end, {R({2, 3, 2}, 1), R({4, 2}, 2)})
  ggc(function(a, b) return ai.cdist(a, b) end, {R({3, 2}, 1), R({4, 2}, 2)})
  gc(function(a, b, c) return ai.einsum("bn,anm,bm->ba", a, b, c) end, {R({2, 3}, 1), R({2, 3, 2}, 2), R({2, 2}, 3)})
  ggc(function(a, b) return ai.einsum("ij,jk", a, b) end, {R({2, 3}, 1), R({3, 2}, 2)})
  gc(function(a) return ai.einsum("iij->j", a) end, {R({3, 3, 2})})
end)

test("port ops: cdist of equal rows: PyTorch's values and zero gradients", function()
  local x = ai.tensor({{1, 2}, {3, 4}}, {dtype = "f64", requires_grad = true})
  local d = ai.cdist(x, x)
  near(d, {{0, 2 * math.sqrt(2)}, {2 * math.sqrt(2), 0}}, 1e-12)
  d:sum():backward()
  ok(x.grad:isfinite():all():item() == 1, "finite gradients at zero distance")
  local dm = ai.cdist(x, x, {compute_mode = "use_mm_for_euclid_dist"})
  near(dm[1][1], 1e-15, 1e-20, "clamped at 1e-30 before the square root, as PyTorch's")
end)

---------------------------------------------------------------------------- semantics

test("port ops: results are copies or views as PyTorch's, and keep dtypes", function()
  local x = ai.arange(6):reshape(2, 3)
  local f = x:flip(1)
  f:fill_(0)
  eq(x:sum():item(), 15, "flip copies")
  eq(x:roll(0):tolist(), x:tolist())
  local r = x:roll(0)
  r:fill_(0)
  eq(x:sum():item(), 15, "a roll by 0 is still a copy")
  eq(x:tile(1, 1).dtype, "i64")
  for _, y in ipairs({ai.ones(1):tile(3), x:tile(1, 1, 1), ai.ones(1, 1):repeat_interleave(3), x:tile(1, 1)}) do
    y:add_(1) -- never an expanded view, never x's memory
  end
  eq(x:sum():item(), 15, "tile and repeat_interleave copy")
  local d = ai.zeros(3, 3):diagonal()
  d:fill_(1)
  eq(d:sum():item(), 3)
  local m = ai.zeros(3, 3)
  m:diagonal():fill_(2)
  eq(m:sum():item(), 6, "diagonal of a contiguous matrix is a view")
  local a, b = ai.meshgrid(ai.tensor({1, 2}), ai.tensor({3, 4, 5}))
  eq(a.shape, {2, 3})
  eq(b:tolist(), {{3, 4, 5}, {3, 4, 5}})
  eq(ai.trace(ai.tensor({{1, 2}, {3, 4}}, {dtype = "u8"})).dtype, "i64")
  eq(ai.kron(ai.tensor(2), ai.tensor(3)):item(), 6, "0-dim kron")
  eq(x:tile({}):tolist(), x:tolist())
  eq(ai.zeros(2, 0):tile(3, 2).shape, {6, 0})
  eq(x:repeat_interleave(0, 1).shape, {0, 3})
  eq(ai.diag(ai.zeros(0)).shape, {0, 0})
  eq(ai.zeros(2, 3):diagonal(5).shape, {0})
end)

test("port ops: unbind and meshgrid give several returns; nonzero as_tuple too", function()
  local x = ai.arange(6):reshape(2, 3)
  local n = select("#", x:unbind())
  eq(n, 2)
  local c1, c2, c3 = x:unbind(-1)
  eq({c1:tolist(), c2:tolist(), c3:tolist()}, {{0, 3}, {1, 4}, {2, 5}})
  eq(select("#", ai.unbind(ai.zeros(0, 3))), 0)
  local r, c = ai.tensor({{0, 1}, {1, 0}}):nonzero({as_tuple = true})
  eq({r:tolist(), c:tolist()}, {{1, 2}, {2, 1}})
  eq(ai.tensor(5):nonzero():tolist(), {{}}, "a 0-dim nonzero is 1 x 0")
  eq(ai.tensor(5):nonzero({as_tuple = true}):tolist(), {1})
  eq(ai.tensor(0):nonzero({as_tuple = true}):tolist(), {})
  eq(ai.tensor({0 / 0, 0, -0.0}):nonzero():tolist(), {{1}}, "NaN is nonzero, -0 is zero")
  local u, v, w = ai.meshgrid({ai.ones(2), ai.ones(3), ai.ones(4)}, {indexing = "xy"})
  eq({u.shape, v.shape, w.shape}, {{3, 2, 4}, {3, 2, 4}, {3, 2, 4}})
end)

test("port ops: all and any take dims and keepdim as the reductions do", function()
  local x = ai.tensor({{{1, 0}, {1, 1}}, {{0, 0}, {1, 2}}})
  eq(x:all(3).shape, {2, 2, 1}, "a dim is kept, as in x:sum(3)")
  eq(x:any({1, 3}, {keepdim = false}):tolist(), {0 + 1, 1})
  eq(x:all(1, 3):tolist(), {{{0}, {1}}})
  eq(x:any().shape, {}, "no dims: 0-dim")
  eq(x:all().dtype, "u8")
  eq(ai.all(ai.zeros(0)):item(), 1, "all of nothing is true")
  eq(ai.any(ai.zeros(0)):item(), 0)
  eq(ai.any(ai.tensor({0 / 0})):item(), 1, "NaN counts as true, as in PyTorch")
  eq(ai.all(ai.tensor({true, true})):item(), 1)
end)

test("port ops: equal and allclose give booleans", function()
  eq(ai.equal(ai.ones(2), ai.ones(2)), true)
  eq(ai.equal(ai.ones(2), ai.ones(3)), false, "other shapes are not equal")
  eq(ai.equal(ai.ones(1, 2), ai.ones(2)), false, "no broadcasting")
  eq(ai.equal(ai.tensor({0 / 0}), ai.tensor({0 / 0})), false, "NaN equals nothing")
  eq(ai.allclose(ai.ones(2, 3), ai.ones(3) + 1e-9), true, "allclose broadcasts, as PyTorch's")
  eq(ai.ones(2):allclose(ai.ones(2) * 1.1), false)
end)

test("port ops: normal with tensors: broadcast shape, moments, no gradient", function()
  ai.manual_seed(7)
  local mean = ai.tensor({-5, 0, 5}, {dtype = "f64", requires_grad = true})
  local std = ai.tensor({{0.5}, {2}}, {dtype = "f64"})
  local s = ai.normal(mean, std)
  eq(s.shape, {2, 3})
  eq(s.dtype, "f64")
  ok(not s.requires_grad, "no gradient to mean or std (torch.normal's are zero)")
  local big = ai.normal(ai.full({20000}, 3, {dtype = "f64"}), 2)
  near(big:mean():item(), 3, 0.05)
  near(big:std():item(), 2, 0.05)
  local b2 = ai.normal(1, ai.full({20000}, 0.5))
  eq(b2.dtype, "f32")
  near(b2:mean():item(), 1, 0.02)
  near(b2:std():item(), 0.5, 0.02)
  eq(ai.normal(ai.zeros(3), ai.zeros(3)):tolist(), {0, 0, 0}, "std 0 gives the mean")
  ai.manual_seed(3)
  local r1 = ai.normal(ai.zeros(5), 1):tolist()
  ai.manual_seed(3)
  eq(ai.normal(ai.zeros(5), 1):tolist(), r1, "seeded")
  eq(ai.normal(0, 1, 2, 3).shape, {2, 3}, "the number form is unchanged")
end)

test("port ops: multinomial draws 1-based categories with the right frequencies", function()
  ai.manual_seed(11)
  local p = ai.tensor({0.1, 0, 0.6, 0.3})
  local d = ai.multinomial(p, 20000, {replacement = true})
  eq(d.dtype, "i64")
  eq(d.shape, {20000})
  for k, want in ipairs({0.1, 0, 0.6, 0.3}) do
    near(d:eq(k):sum():item() / 20000, want, 0.015, "frequency of category " .. k)
  end
  eq(d:eq(2):sum():item(), 0, "a category of weight 0 is never drawn")
  -- without replacement: distinct categories; the first draw follows the weights
  local rows = ai.multinomial(ai.tensor({{1, 2, 3, 4}, {0, 0, 5, 1}}), 2)
  eq(rows.shape, {2, 2})
  for i = 1, 2 do ok(rows[i][1]:item() ~= rows[i][2]:item(), "distinct draws") end
  ok(rows[2]:ge(3):all():item() == 1, "weight-0 categories are not drawn")
  local first = ai.zeros(4)
  for _ = 1, 4000 do
    local k = ai.multinomial(ai.tensor({1, 2, 3, 4}), 4):tolist()
    first[k[1]] = first[k[1]]:item() + 1
    local seen = {}
    for _, v in ipairs(k) do seen[v] = true end
    ok(seen[1] and seen[2] and seen[3] and seen[4], "a permutation when n = K")
  end
  near(first / 4000, {0.1, 0.2, 0.3, 0.4}, 0.1, "the first draw follows the weights")
  ai.manual_seed(5)
  local a = ai.multinomial(p, 10, {replacement = true}):tolist()
  ai.manual_seed(5)
  eq(ai.multinomial(p, 10, {replacement = true}):tolist(), a, "seeded")
  eq(ai.multinomial(ai.tensor({0, 0, 1}, {dtype = "f64"}), 3, {replacement = true}):tolist(), {3, 3, 3})
end)

---------------------------------------------------------------------------- misuse

test("port ops: misuse is an error naming the function and the argument", function()
  local x = ai.zeros(2, 3)
  expect_error("bad argument #1 to 'flip'", function() return x:flip(3) end)
  expect_error("dimension 1 appears twice", function() return x:flip({1, 1}) end)
  expect_error("a dimension or a list of dimensions expected", function() return x:flip() end)
  expect_error("an integer expected, got 1.5", function() return x:flip(1.5) end)
  expect_error("without dims, give one shift", function() return x:roll({1, 2}) end)
  expect_error("2 shifts but 1 dims", function() return x:roll({1, 2}, {1}) end)
  expect_error("too many arguments", function() return x:roll(1, 1, 1) end)
  expect_error("the repeats expected", function() return x:tile() end)
  expect_error("size must be a non-negative integer", function() return x:tile(-1) end)
  expect_error("tile: the result would be too large", function() return x:tile(1 << 40, 1 << 40) end)
  expect_error("repeats must be non-negative", function() return x:repeat_interleave(-1) end)
  expect_error("one count per entry along the dimension (3), got 2", function() return x:repeat_interleave(L({1, 2}), 2) end)
  expect_error("repeats must be an integer or an i64 tensor, got f32", function() return x:repeat_interleave(ai.ones(3), 2) end)
  expect_error("repeats expected", function() return x:repeat_interleave("2") end)
  expect_error("tril: expects a tensor of at least 2 dimensions", function() return ai.zeros(3):tril() end)
  expect_error("an integer expected, got 0.5", function() return x:triu(0.5) end)
  expect_error("diag: expects a 1-D or 2-D tensor", function() return ai.zeros(2, 2, 2):diag() end)
  expect_error("diag: the result would be too large", function() return ai.zeros(3):diag(1 << 40) end)
  expect_error("the two dimensions must differ", function() return x:diagonal(0, 1, -2) end)
  expect_error("a tensor of at least 2 dimensions expected", function() return ai.zeros(3):diagonal() end)
  expect_error("trace: expects a 2-D tensor", function() return ai.zeros(3):trace() end)
  expect_error("outer: expects two 1-D tensors", function() return ai.outer(x, x) end)
  expect_error("kron: at most 4 dimensions", function() return ai.kron(ai.zeros(1, 1, 1, 1, 1), ai.zeros(1)) end)
  expect_error("a 0-dim tensor cannot be unbound", function() return ai.tensor(1):unbind() end)
  expect_error("meshgrid: tensor 2 must be 0-D or 1-D", function() return ai.meshgrid(ai.zeros(2), x) end)
  expect_error("meshgrid: all tensors must have one dtype", function() return ai.meshgrid(ai.zeros(2), L({1})) end)
  expect_error("option 'indexing' must be \"ij\" or \"xy\"", function() return ai.meshgrid(ai.zeros(2), {indexing = "ji"}) end)
  expect_error("unknown option 'index'", function() return ai.meshgrid(ai.zeros(2), {index = "ij"}) end)
  expect_error("bad argument #1 to 'all' (dimension 3 out of range", function() return x:all(3) end)
  expect_error("bad argument #2 to 'all'", function() return ai.all(x, 3) end)
  expect_error("unknown option 'keep'", function() return x:any(1, {keep = true}) end)
  expect_error("unknown option 'astuple'", function() return x:nonzero({astuple = true}) end)
  expect_error("tensor expected", function() return ai.equal(x, 1) end)
  expect_error("isclose: both tensors must have one dtype", function() return ai.isclose(x, L({1})) end)
  expect_error("isclose: rtol must be >= 0", function() return ai.isclose(x, x, {rtol = -1}) end)
  expect_error("unknown option 'tol'", function() return ai.allclose(x, x, {tol = 1}) end)
  expect_error("lerp: input must be f32 or f64", function() return ai.lerp(L({1}), L({2}), 0.5) end)
  expect_error("lerp: input and end must have one dtype", function() return ai.lerp(x, x:double(), 0.5) end)
  expect_error("weight expected (a number or a tensor)", function() return ai.lerp(x, x) end)
  expect_error("lerp: end (2) and weight (3) cannot be broadcast together", function() return ai.lerp(ai.zeros(1), ai.zeros(2), ai.zeros(3)) end)
  expect_error("isclose: a (2) and b (3) cannot be broadcast together", function() return ai.allclose(ai.zeros(2), ai.zeros(3)) end)
  expect_error("cdist: the batch dims of x1 (2) and those of x2 (3) cannot be broadcast together", function() return ai.cdist(ai.zeros(2, 2, 3), ai.zeros(3, 2, 3)) end)
  expect_error("normal: mean (2) and std (3) cannot be broadcast together", function() return ai.normal(ai.zeros(2), ai.ones(3)) end)
  expect_error("normal: every std must be >= 0", function() return ai.normal(ai.zeros(2), ai.tensor({1, -1})) end)
  expect_error("normal: mean must be f32 or f64", function() return ai.normal(L({1}), 1) end)
  expect_error("normal: std must be >= 0", function() return ai.normal(ai.zeros(2), -1) end)
  expect_error("too many arguments", function() return ai.normal(ai.zeros(2), 1, 3) end)
  expect_error("multinomial: probabilities must be finite and >= 0", function() return ai.multinomial(ai.tensor({1, -1}), 1) end)
  expect_error("multinomial: the probabilities of row 2 sum to 0", function() return ai.multinomial(ai.tensor({{1, 1}, {0, 0}}), 1) end)
  expect_error("cannot draw 3 samples from 2 categories without replacement", function() return ai.multinomial(ai.ones(2), 3) end)
  expect_error("row 1 has 1 categories of nonzero probability", function() return ai.multinomial(ai.tensor({0, 1, 0}), 2) end)
  expect_error("the number of samples must be positive", function() return ai.multinomial(ai.ones(2), 0) end)
  expect_error("unknown option 'replace'", function() return ai.multinomial(ai.ones(2), 1, {replace = true}) end)
  expect_error("cdist: x1 and x2 must have the same number of columns", function() return ai.cdist(ai.zeros(2, 3), ai.zeros(2, 4)) end)
  expect_error("cdist: p must be >= 0", function() return ai.cdist(x, x, {p = -1}) end)
  expect_error("option 'compute_mode' must be", function() return ai.cdist(x, x, {compute_mode = "mm"}) end)
  expect_error("cdist: x1 must be f32 or f64", function() return ai.cdist(L({{1}}), L({{1}})) end)
  expect_error("baddbmm: batch1 and batch2 must be 3-D", function() return ai.baddbmm(x, x, x) end)
  expect_error("cannot be multiplied", function() return ai.baddbmm(ai.zeros(1), ai.zeros(2, 2, 3), ai.zeros(2, 2, 3)) end)
  expect_error("baddbmm: input must broadcast to 2x2x3", function() return ai.baddbmm(ai.zeros(4), ai.zeros(2, 2, 2), ai.zeros(2, 2, 3)) end)
  expect_error("unknown option 'gamma'", function() return ai.baddbmm(ai.zeros(1), ai.zeros(1, 1, 1), ai.zeros(1, 1, 1), {gamma = 1}) end)
  expect_error("einsum: the equation has 2 operands, 1 tensor given", function() return ai.einsum("ij,jk", x) end)
  expect_error("einsum: subscript 'j' has size 2 in operand 2 but 3 before", function() return ai.einsum("ij,jk", x, x) end)
  expect_error("einsum: operand 1 has 2 dimensions, but its subscripts 'ijk' name 3", function() return ai.einsum("ijk", x) end)
  expect_error("einsum: output subscript 'i' appears twice", function() return ai.einsum("ij->ii", x) end)
  expect_error("einsum: operand 1: '...' appears twice", function() return ai.einsum("......", x) end)
  expect_error("einsum: operand 2 must be a tensor", function() return ai.einsum("i,i", ai.zeros(2), 2) end)
  expect_error("einsum: the equation", function() return ai.einsum(x, x) end)
end)

---------------------------------------------------------------------------- unbatched nn input

test("nn.Conv2d, the pooling layers and nn.Linear take unbatched input, as PyTorch", function()
  ai.manual_seed(1)
  local nn = ai.nn
  local x = ai.randn(2, 6, 6, {dtype = "f64"})
  for _, m in ipairs({nn.Conv2d(2, 3, 3, {padding = 1, dtype = "f64"}),
                      nn.Conv2d(2, 3, 3, {padding = 1, padding_mode = "reflect", dtype = "f64"}),
                      nn.ConvTranspose2d(2, 3, 2, {stride = 2, dtype = "f64"}), nn.MaxPool2d(2),
                      nn.AvgPool2d(3, {stride = 1}), nn.AdaptiveAvgPool2d(2)}) do
    local y = m(x)
    eq(#y.shape, 3, tostring(m))
    near(y, m(x:unsqueeze(1))[1], 1e-12, tostring(m))
  end
  local lin = nn.Linear(6, 4, {dtype = "f64"})
  near(lin(x[1][1]), lin(x[1][{{1}}])[1], 1e-12, "Linear of a vector")
  gc(function(t) return ai.F.conv2d(t, ai.ones(3, 2, 3, 3, {dtype = "f64"}), nil, {padding = 1}) end, {R({2, 4, 4})})
  gc(function(t) return ai.F.max_pool2d(t, 2) end, {R({1, 4, 4})})
  expect_error("conv2d: input must be 4-D (N x C x H x W) or 3-D (C x H x W, one unbatched image), got shape 6x6",
               function() return nn.Conv2d(2, 3, 3)(ai.zeros(6, 6)) end)
  expect_error("avg_pool2d: input must be 4-D", function() return ai.F.avg_pool2d(ai.zeros(6), 2) end)
  ok(ai.help ~= nil and require("aiart.repl").find_doc(ai.F.conv2d):find("unbatched", 1, true), "F.conv2d's doc says so")
end)

---------------------------------------------------------------------------- migration

test("migration: the Torch7 aliases are the same functions as their names here", function()
  local mig = require "aiart.migrate"
  local n = 0
  for t7, here in pairs(mig.aliases()) do
    ok(ai.Tensor[t7] ~= nil and ai.Tensor[t7] == ai.Tensor[here], t7 .. " is " .. here)
    n = n + 1
  end
  eq(n, 6, "the six aliases of src/lua/l_ops_port.c")
  local x = ai.zeros(2, 3)
  eq(x:nElement(), 6)
  eq(x:repeatTensor(2, 1).shape, {4, 3})
  -- a name that writes in place in Torch7 is no alias: it does not exist here
  for _, name in ipairs({"fill", "zero", "cmul", "cdiv", "resize", "resizeAs", "apply", "copy"}) do
    eq(ai.Tensor[name], nil, name)
    ok(mig.find("x:" .. name), "an entry for " .. name)
  end
end)

test("migration: ?name, help and the REPL's errors name what to write here", function()
  local function pipe(input)
    local inf = os.tmpname()
    T.writefile(inf, input)
    local _, out = T.sh(T.binary() .. " < " .. inf .. " 2>&1")
    os.remove(inf)
    return out
  end
  local out = pipe("?x:nElement\n?x:fill\n?torch.save\n?nn.SpatialConvolution\n?ai.nn.MSECriterion\n" ..
                   "?optim.sgd\n?model:getParameters\n?x:sum\nhelp('x:zero')\n")
  for _, want in ipairs({"Torch7: x:nElement() -> here: x:nelement()", "nElement works too, as an alias",
                         "x:nelement() -> the number of elements", "x:fill(v) -> here: x:fill_(v)",
                         "torch.save(obj, path) (PyTorch) -> here: ai.save(path",
                         "nn.Conv2d(nIn, nOut, {kH, kW}", "nn.MSELoss()", "ai.optim.SGD({x}",
                         "model:parameters()", "x:sum(...) -> the sum", "x:zero() -> here: x:zero_()"}) do
    ok(out:find(want, 1, true), "no '" .. want .. "' in:\n" .. out)
  end
  ok(not out:find("no documentation", 1, true), out)
  ok(not out:find("PyTorch: x.sum", 1, true), "a name that exists here gets no note: " .. out)
  out = pipe("x = ai.zeros(3)\nx:cmul(x)\nai.nn.View(3)\ntorch.zeros(3)\nai.nn.BCECriterion()\nx:frobnicate()\n")
  for _, want in ipairs({"attempt to call a nil value (method 'cmul')\nhint: Torch7: x:cmul(y) -> here: x:mul_(y)",
                         "(field 'View')\nhint: Torch7: nn.View", "hint: there is no torch here: the module is ai",
                         "hint: Torch7: nn.BCECriterion() -> here: nn.BCELoss()"}) do
    ok(out:find(want, 1, true), "no '" .. want .. "' in:\n" .. out)
  end
  ok(not out:find("frobnicate')\nhint", 1, true), "no hint for a name that is nobody's: " .. out)
end)

test("migration: the README's two tables come from the same entries", function()
  local mig = require "aiart.migrate"
  for _, from in ipairs({"Torch7", "PyTorch"}) do
    local md = mig.markdown(from)
    ok(md:match("^| " .. from .. " | aiart%-lua |\n| %-%-%- | %-%-%- |\n"), md)
    local rows = select(2, md:gsub("\n", "\n")) - 1
    ok(rows >= 20, from .. ": " .. rows .. " rows")
  end
  ok(mig.markdown("Torch7"):find("`x:nElement()` | x:nelement() or x:numel(); `nElement` works too", 1, true))
  ok(mig.markdown("PyTorch"):find("`x.repeat(2, 3)` | x:tile(2, 3) (repeat is a Lua keyword)", 1, true))
  ok(mig.markdown("PyTorch"):find("torch.save(obj, path)", 1, true), "the entries of both are in both")
end)

T.run_alone()
