-- tests/test_parity.lua: aiart-lua against numbers PyTorch computed for the same inputs
-- (tests/parity/parity.json, written by tests/parity/make_parity.py; no PyTorch needed here).
local T = require "helper"
local ai = require "aiart"

local read = T.readfile
local P = ai.json.decode(read("tests/parity/parity.json"))

local num, nums = T.json_number, T.json_numbers

-- |got - want| <= tol * max(1, |want|), elementwise; infinities must match exactly
local function close(got, want, tol, what)
  T.eq(#got, #want, what .. ": length")
  for i = 1, #want do
    local g, w = got[i], want[i]
    local ok = (g == w) or (math.abs(g - w) <= tol * math.max(1, math.abs(w)))
    T.ok(ok, ("%s: element %d: PyTorch %.17g, aiart %.17g"):format(what, i, w, g))
  end
end

for _, name in ipairs({"bce_edges", "bce_sum_weighted", "bce_soft_targets"}) do
  T.test("bce_loss and its gradients match PyTorch: " .. name, function()
    local c = P[name]
    local p = ai.tensor(c.p, {dtype = "f64", requires_grad = true})
    local y = ai.tensor(c.y, {dtype = "f64", requires_grad = true})
    local w = c.weight ~= ai.json.null and c.weight and ai.tensor(c.weight, {dtype = "f64"}) or nil
    local loss = ai.F.bce_loss(p, y, {weight = w, reduction = c.reduction})
    loss:backward()
    close({loss:item()}, {c.loss}, 1e-12, name .. " loss")
    close(p.grad:tolist(), nums(c.grad_p), 1e-12, name .. " input gradient")
    -- the target's gradient uses the forward's clamped logs, so it stays finite where PyTorch's
    -- is +-inf (p exactly 0 or 1); elsewhere the two agree
    local gy, want = y.grad:tolist(), nums(c.grad_y)
    for i = 1, #want do
      if want[i] == math.huge or want[i] == -math.huge then
        T.ok(gy[i] == gy[i] and math.abs(gy[i]) < math.huge and (gy[i] > 0) == (want[i] > 0),
             name .. ": a finite target gradient of PyTorch's sign at element " .. i)
        gy[i] = want[i]
      end
    end
    close(gy, want, 1e-12, name .. " target gradient")
  end)
end

T.test("bce_loss refuses inputs outside [0, 1], as PyTorch does", function()
  T.expect_error("bce_loss: every input value must be a probability in [0, 1]", function()
    ai.F.bce_loss(ai.tensor({0.5, 1.5}), ai.tensor({1, 0}))
  end)
  T.expect_error("for logits use bce_with_logits", function()
    ai.F.bce_loss(ai.tensor({-0.1}), ai.tensor({1}))
  end)
  T.expect_error("in [0, 1]", function() ai.F.bce_loss(ai.tensor({0 / 0}), ai.tensor({1})) end)
end)

T.test("nn.BCELoss after a saturated sigmoid keeps finite gradients (the survey's GAN)", function()
  local x = ai.tensor({30, -30, 20}, {requires_grad = true}) -- sigmoid is exactly 1 or 0 in f32
  local crit = ai.nn.BCELoss()
  local loss = crit(x:sigmoid(), ai.tensor({0, 1, 1}))
  loss:backward()
  for _, v in ipairs(x.grad:tolist()) do T.ok(v == v and math.abs(v) < math.huge, "finite gradient " .. v) end
  T.ok(loss:item() == loss:item(), "a finite loss")
end)

-- NaN matches NaN, infinities match exactly, numbers within tol relative to max(1, |want|)
local function close_nan(got, want, tol, what)
  T.eq(#got, #want, what .. ": length")
  for i = 1, #want do
    local g, w = got[i], num(want[i])
    if w ~= w then T.ok(g ~= g, ("%s: element %d: PyTorch NaN, aiart %.17g"):format(what, i, g))
    else T.ok(g == w or math.abs(g - w) <= tol * math.max(1, math.abs(w)),
              ("%s: element %d: PyTorch %.17g, aiart %.17g"):format(what, i, w, g)) end
  end
end

-- PyTorch's own accuracy where it is below 1e-12 (checked against 30-digit values below): its
-- trigamma (so digamma's gradient) is good to about 1e-9, its erfinv near +-1 to about 1e-10
local TOL = {trigamma = 1e-8, digamma = 1e-8, erfinv = 1e-9}

T.test("the unary maths match PyTorch's values and gradients (f64)", function()
  for name, c in pairs(P.unary_math) do
    local x = ai.tensor(c.x, {dtype = "f64", requires_grad = c.grad ~= nil})
    local y = ai[name](x)
    close_nan(y:tolist(), c.y, name == "digamma" and 1e-12 or TOL[name] or 1e-12, name)
    if c.grad then
      y:sum():backward()
      close_nan(x.grad:tolist(), c.grad, TOL[name] or 1e-10, name .. " gradient")
    end
    -- in f32 PyTorch uses a float approximation (4e-6 off near -1); ours is the f64 one, rounded
    if c.y_f32 then close_nan(ai[name](ai.tensor(c.x)):tolist(), c.y_f32, 1e-5, name .. " f32") end
  end
end)

T.test("logaddexp and hypot match PyTorch's values and gradients (f64)", function()
  for name, c in pairs(P.binary_math) do
    local a = ai.tensor(c.a, {dtype = "f64", requires_grad = true})
    local b = ai.tensor(c.b, {dtype = "f64", requires_grad = true})
    local y = ai[name](a, b)
    close_nan(y:tolist(), c.y, 1e-13, name)
    y:sum():backward()
    close_nan(a.grad:tolist(), c.grad_a, 1e-12, name .. " gradient of a")
    close_nan(b.grad:tolist(), c.grad_b, 1e-12, name .. " gradient of b")
  end
end)

T.test("digamma, trigamma and erfinv at points known exactly", function()
  local pi, gamma = math.pi, 0.57721566490153286
  local x = ai.tensor({0.5, 1, 2, 10, 1e4}, {dtype = "f64"})
  close_nan(ai.trigamma(x):tolist(), {pi ^ 2 / 2, pi ^ 2 / 6, pi ^ 2 / 6 - 1, 0.10516633568168575, 1.00005000166666666e-4}, 1e-14, "trigamma")
  close_nan(ai.digamma(x):tolist(), {-gamma - 2 * math.log(2), -gamma, 1 - gamma, 2.2517525890667211, 9.2102903711428494}, 1e-14, "digamma")
  -- 30-digit values (mpmath)
  close_nan(ai.erfinv(ai.tensor({-0.999999, 0.9999999}, {dtype = "f64"})):tolist(),
            {-3.4589107372754987775, 3.7665625816384708887}, 1e-15, "erfinv near +-1")
end)
