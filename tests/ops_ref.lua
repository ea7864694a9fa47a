-- tests/ops_ref.lua: the reference helpers of the tests/test_ops_*.lua files: flat positions and
-- indices, broadcasting, a naive binary op, and deterministic inputs (a tensor and its values).
local T = require "helper"
local ai = require "aiart"

local numel, nest, flat = T.numel, T.nest, T.flat

local M = {}

local function unravel(i, shape) -- 1-based flat position -> 1-based index list
  local idx, r = {}, i - 1
  for d = #shape, 1, -1 do
    idx[d] = r % shape[d] + 1
    r = r // shape[d]
  end
  return idx
end

local function ravel(idx, shape)
  local k = 0
  for d = 1, #shape do k = k * shape[d] + (idx[d] - 1) end
  return k + 1
end

local function bshape(a, b)
  local n = math.max(#a, #b)
  local out = {}
  for d = 1, n do
    local sa, sb = a[#a - n + d] or 1, b[#b - n + d] or 1
    assert(sa == sb or sa == 1 or sb == 1, "reference: shapes do not broadcast")
    out[d] = sa == 1 and sb or sa
  end
  return out
end

-- value of a flat list v of shape sh at a (broadcast) index of shape osh
local function bget(v, sh, idx, osh)
  local off = #osh - #sh
  local k = 0
  for d = 1, #sh do
    local i = sh[d] == 1 and 1 or idx[d + off]
    k = k * sh[d] + (i - 1)
  end
  return v[k + 1]
end

local function ref_binary(av, ash, bv, bsh, f)
  local osh = bshape(ash, bsh)
  local out = {}
  for i = 1, numel(osh) do
    local idx = unravel(i, osh)
    out[i] = f(bget(av, ash, idx, osh), bget(bv, bsh, idx, osh))
  end
  return out, osh
end

-- deterministic pseudo-random values (Lua's generator, seeded per call site)
local function rvals(n, lo, hi, seed, int)
  math.randomseed(seed or 1)
  local t = {}
  for i = 1, n do
    if int then t[i] = math.random(lo, hi) else t[i] = lo + (hi - lo) * math.random() end
  end
  return t
end

local function mk(shape, opts)
  opts = opts or {}
  local n = numel(shape)
  local v = rvals(n, opts.lo or -2, opts.hi or 2, opts.seed or (n * 7 + #shape), opts.int)
  local t
  if #shape == 0 then t = ai.tensor(v[1], {dtype = opts.dtype or "f64"})
  else t = ai.tensor(nest(v, shape), {dtype = opts.dtype or "f64"}) end
  return t, flat(t)
end

M.unravel, M.ravel, M.bshape, M.bget, M.ref_binary, M.rvals, M.mk = unravel, ravel, bshape, bget, ref_binary, rvals, mk
return M
