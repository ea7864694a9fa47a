-- tests/nn_ops_ref.lua: the inputs of the tests/test_nn_ops*.lua files.
local T = require "helper"
local ai = require "aiart"

local numel, nest = T.numel, T.nest

local M = {}

-- M.inputs() -> R: R(shape[, lo=-1, hi=1, dtype="f64"]) is a tensor of uniform values in
-- [lo, hi]; the k-th call of this R seeds Lua's generator with 500 + k, so that the inputs of a
-- file do not depend on the files that ran before it.
function M.inputs()
  local seed = 0
  return function(shape, lo, hi, dtype)
    seed = seed + 1
    math.randomseed(500 + seed)
    lo, hi = lo or -1, hi or 1
    local v = {}
    for i = 1, numel(shape) do v[i] = lo + (hi - lo) * math.random() end
    return ai.tensor(nest(v, shape), {dtype = dtype or "f64"})
  end
end

function M.L(t) return ai.tensor(t, {dtype = "i64"}) end

return M
