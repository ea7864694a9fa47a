-- tests/test_parity.lua: aiart-lua against numbers PyTorch computed for the same inputs
-- (tests/parity/parity.json, written by tests/parity/make_parity.py; no PyTorch needed here).
local T = require "helper"
local ai = require "aiart"

local read = T.readfile
local P = ai.json.decode(read("tests/parity/parity.json"))

local function num(v) return v == "inf" and math.huge or v == "-inf" and -math.huge or v == "nan" and 0 / 0 or v end
local function nums(list)
  local r = {}
  for i, v in ipairs(list) do r[i] = num(v) end
  return r
end

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
