--[[ aiart.autograd (ai.autograd): functions with a backward written in Lua, as PyTorch's
torch.autograd.Function.

  local STE = ai.autograd.Function{           -- a straight-through estimator
    forward = function(ctx, x) return x:round() end,
    backward = function(ctx, grad) return grad end,
  }
  local y = STE(x)                            -- or STE:apply(x)

forward(ctx, ...) runs without recording, on the arguments as given (tensors and anything else);
it returns one or several results. backward(ctx, g1, g2, ...) gets one gradient per result (zeros
for a result that did not reach the loss) and returns one gradient per argument of forward (nil
for the arguments that are not tensors or need none). ctx:save_for_backward(...) keeps tensors
for backward (ctx.saved_tensors, a list); ctx.needs_input_grad[i] says whether argument i needs a
gradient; any other field of ctx is yours. With create_graph the backward's own ops are recorded,
so a backward written in differentiable ops differentiates again (double backward).
]]
local ai = require "aiart"
local util = require "aiart.util"

local M = {}
local is_tensor, error = util.is_tensor, util.error

local Ctx = {}
Ctx.__index = Ctx

--- ctx:save_for_backward(...): keeps the given tensors (or nils) for backward, as ctx.saved_tensors
function Ctx:save_for_backward(...)
  local n, saved = select("#", ...), {}
  for i = 1, n do
    local t = select(i, ...)
    if t ~= nil and not is_tensor(t) then
      error(("save_for_backward: argument %d is a %s; save tensors (keep other values as fields of ctx)"):format(i, type(t)))
    end
    saved[i] = t
  end
  self.saved_tensors = saved
end

local Function = {}
Function.__index = Function
Function.__name = "autograd.Function"

local function apply(self, ...)
  local spec = self._spec
  local args = table.pack(...)
  local recording = ai.is_grad_enabled()
  local needs, inputs, arg_of = {}, {}, {}
  for i = 1, args.n do
    needs[i] = recording and is_tensor(args[i]) and args[i].requires_grad or false
    if needs[i] then inputs[#inputs + 1] = args[i]; arg_of[#inputs] = i end
  end
  local ctx = setmetatable({needs_input_grad = needs, saved_tensors = {}}, Ctx)
  local outs = table.pack(ai.no_grad(spec.forward, ctx, ...))
  if #inputs == 0 then return table.unpack(outs, 1, outs.n) end
  local function backward_entry(j, g) -- called by the engine, once per result that got a gradient
    local gs = {}
    for k = 1, outs.n do
      if is_tensor(outs[k]) then gs[k] = k == j and g or ai.zeros_like(outs[k]) end
    end
    local res = table.pack(spec.backward(ctx, table.unpack(gs, 1, outs.n)))
    if res.n > args.n then
      error(("backward returned %d gradients for %d arguments of forward"):format(res.n, args.n), 0)
    end
    local list = {}
    for m, i in ipairs(arg_of) do
      local gi = res[i]
      if gi ~= nil and not is_tensor(gi) then
        error(("backward: the gradient of argument %d is a %s; return a tensor or nil"):format(i, type(gi)), 0)
      end
      list[m] = gi
    end
    return list
  end
  for k = 1, outs.n do
    local o = outs[k]
    if is_tensor(o) and (o.dtype == "f32" or o.dtype == "f64") then
      outs[k] = ai._record_function(o, inputs, backward_entry, k)
    end
  end
  return table.unpack(outs, 1, outs.n)
end

Function.__call = apply
Function.apply = apply

--- ai.autograd.Function{forward = function(ctx, ...), backward = function(ctx, grad, ...)} -> a callable
function M.Function(spec)
  if type(spec) ~= "table" then error("autograd.Function: expected a table {forward = f, backward = g}") end
  util.check_opts("autograd.Function", spec, {forward = true, backward = true})
  for _, k in ipairs{"forward", "backward"} do
    if type(spec[k]) ~= "function" then
      error(("autograd.Function: '%s' must be a function, got %s"):format(k, type(spec[k])))
    end
  end
  return setmetatable({_spec = spec}, Function)
end

return M
