-- aiart.gradcheck: numerical checks of analytic gradients (ai.gradcheck, ai.gradgradcheck).
-- For random vectors v, the analytic vector-Jacobian product J^T v from backward is compared
-- with central differences of <f(x), v> in every input element. Use f64 inputs.
local ai = require "aiart"
local util = require "aiart.util"

local error = util.error -- positions name the caller's line (see util.error)

local M = {}

local function as_list(v)
  if type(v) == "table" and getmetatable(v) == nil then return v end
  return {v}
end

-- <outs, vs> summed into a Lua number (no graph)
local function dot(outs, vs)
  local s = 0
  for i, o in ipairs(outs) do
    if vs[i] then s = s + (o:double() * vs[i]):sum():item() end
  end
  return s
end

local OPTS = {eps = true, atol = true, rtol = true, raise = true, trials = true}

local function check_opts(fn, opts)
  opts = util.check_opts(fn, opts, OPTS)
  return opts.eps or 1e-6, opts.atol or 1e-5, opts.rtol or 1e-3, opts.raise ~= false,
    util.int(fn, "trials", opts.trials or 2, 1)
end

--- ai.gradcheck(f, inputs, {eps=1e-6, atol=1e-5, rtol=1e-3, raise=true}) -> true or false, message
-- f(inputs...) returns a tensor or a list of tensors; inputs that require grad are checked.
function M.gradcheck(f, inputs, opts)
  local eps, atol, rtol, raise, trials = check_opts("gradcheck", opts)
  inputs = as_list(inputs)
  local function fail(msg)
    if raise then error("gradcheck: " .. msg, 3) end
    return false, msg
  end
  local wrt = {}
  for i, x in ipairs(inputs) do
    if x.requires_grad then
      if x.dtype ~= "f64" then return fail(("input %d is %s; gradcheck needs f64 inputs"):format(i, x.dtype)) end
      wrt[#wrt + 1] = i
    end
  end
  if #wrt == 0 then return fail("no input requires grad") end
  for trial = 1, trials do
    local outs = as_list(f(table.unpack(inputs)))
    -- outputs that do not depend on the inputs differentiably (e.g. the gradient of relu,
    -- which is piecewise constant) have an analytic gradient of zero
    local vs = {}
    for k, o in ipairs(outs) do
      if o.dtype == "f64" or o.dtype == "f32" then vs[k] = ai.randn(o.shape, {dtype = o.dtype}) end
    end
    local douts, dvs, dins = {}, {}, {}
    for k, o in ipairs(outs) do
      if vs[k] and o.requires_grad then douts[#douts + 1] = o; dvs[#dvs + 1] = vs[k] end
    end
    for _, i in ipairs(wrt) do dins[#dins + 1] = inputs[i] end
    local analytic = #douts > 0 and ai.grad(douts, dins, {grad_outputs = dvs, allow_unused = true}) or {}
    for j, i in ipairs(wrt) do
      local x = inputs[i]
      local flat = ai.no_grad(function() return x:view(-1) end)
      local n = x:numel()
      local numeric = {}
      for e = 1, n do
        local orig = flat[e]:item()
        -- f runs with gradients enabled: gradgradcheck's f calls ai.grad itself
        ai.no_grad(function() flat[e] = orig + eps end)
        local plus = ai.no_grad(dot, as_list(f(table.unpack(inputs))), vs)
        ai.no_grad(function() flat[e] = orig - eps end)
        local minus = ai.no_grad(dot, as_list(f(table.unpack(inputs))), vs)
        ai.no_grad(function() flat[e] = orig end)
        numeric[e] = (plus - minus) / (2 * eps)
      end
      local a = analytic[j] and analytic[j]:reshape(-1):tolist() or {}
      for e = 1, n do
        local av, nv = a[e] or 0, numeric[e]
        if math.abs(av - nv) > atol + rtol * math.abs(nv) or av ~= av then
          return fail(("input %d, element %d (trial %d): analytic %.10g vs numerical %.10g"):format(i, e, trial, av, nv))
        end
      end
    end
  end
  return true
end

--- ai.gradgradcheck(f, inputs, opts): checks second derivatives, i.e. that the gradients
-- computed with create_graph=true are themselves differentiated correctly.
function M.gradgradcheck(f, inputs, opts)
  check_opts("gradgradcheck", opts)
  inputs = as_list(inputs)
  local outs0 = as_list(f(table.unpack(inputs)))
  local vs = {}
  for k, o in ipairs(outs0) do vs[k] = ai.randn(o.shape, {dtype = "f64"}) end
  local wrt = {}
  for _, x in ipairs(inputs) do if x.requires_grad then wrt[#wrt + 1] = x end end
  local function first_grads(...)
    local outs = as_list(f(...))
    local gs = ai.grad(outs, wrt, {grad_outputs = vs, create_graph = true, allow_unused = true})
    local res = {}
    for k, g in pairs(gs) do res[#res + 1] = g end
    return res
  end
  return M.gradcheck(first_grads, inputs, opts)
end

return util.strict_args(M, "")
