--[[ aiart.migrate: the names people type first when they come from Torch7 or PyTorch, and what
they are here. help() and ?name consult it (?x:nElement says that Torch7's nElement is
x:nelement() here), the REPL adds its line to an error about a name that does not exist here
(x:cmul(y) -> "attempt to call a nil value (method 'cmul')" and the hint), and M.markdown
writes the README's two migration tables from it.

Each entry: key (what is looked up: "Tensor:name" for a tensor method, "Module:name" for an nn
module's, "torch.name" for PyTorch's or Torch7's module functions, "nn.Name", "optim.name"),
from ("Torch7" or "PyTorch"), was (what they write), now (what to write here) and a note.
alias: the Torch7 name works here too, as the same function (registered in src/lua/l_ops_port.c;
tests/test_port_ops.lua checks the two lists agree). Only names whose behaviour is the same, that
write nothing in place and that mean nothing else here are aliases; the rest are pointers, so
that a name keeps one meaning: Torch7's x:add(y), x:mul(v), x:fill(v), x:zero(), x:cmul(y) write
into x, while here (as in PyTorch) a name without a trailing _ never writes in place.
]]
local M = {}

local T7, PT, BOTH = "Torch7", "PyTorch", "Torch7 and PyTorch"

M.entries = {
  -- Torch7: tensors
  { key = "torch.Tensor", from = T7, was = "torch.Tensor(3, 4)", now = "ai.empty(3, 4) (uninitialised, as Torch7's) or ai.zeros(3, 4); ai.tensor({{1, 2}, {3, 4}}) from a table" },
  { key = "torch.FloatTensor", from = T7, was = "torch.FloatTensor(n), torch.DoubleTensor, torch.LongTensor, torch.ByteTensor", now = "ai.empty(n, {dtype = \"f32\"}) (\"f64\", \"i64\", \"u8\")" },
  { key = "Tensor:nElement", from = T7, was = "x:nElement()", now = "x:nelement() or x:numel()", alias = "nelement" },
  { key = "Tensor:nDimension", from = T7, was = "x:nDimension()", now = "x:dim() or x.ndim", alias = "dim" },
  { key = "Tensor:isContiguous", from = T7, was = "x:isContiguous()", now = "x:is_contiguous()", alias = "is_contiguous" },
  { key = "Tensor:fill", from = T7, was = "x:fill(v)", now = "x:fill_(v)", note = "in place, returns x; a name without _ never writes in place here" },
  { key = "Tensor:zero", from = T7, was = "x:zero()", now = "x:zero_()", note = "in place, returns x" },
  { key = "Tensor:cmul", from = T7, was = "x:cmul(y)", now = "x:mul_(y) (in place, as Torch7's) or x * y (a new tensor)" },
  { key = "Tensor:cdiv", from = T7, was = "x:cdiv(y)", now = "x:div_(y) (in place) or x / y" },
  { key = "Tensor:add", from = T7, was = "x:add(y), x:mul(v), x:div(v) (in place in Torch7)", now = "x:add_(y), x:mul_(v), x:div_(v)", note = "x:add(y) here returns a new tensor and leaves x alone, as PyTorch's" },
  { key = "Tensor:resize", from = T7, was = "x:resize(3, 4)", now = "x = ai.empty(3, 4) (new memory), or x:view(3, 4) / x:reshape(3, 4) (the same elements)", note = "tensors keep their size; there is no resize" },
  { key = "Tensor:resizeAs", from = T7, was = "x:resizeAs(y)", now = "ai.empty_like(y), or x:view_as(y)" },
  { key = "Tensor:repeatTensor", from = T7, was = "x:repeatTensor(2, 3)", now = "x:tile(2, 3)", alias = "tile" },
  { key = "Tensor:expandAs", from = T7, was = "x:expandAs(y)", now = "x:expand_as(y)", alias = "expand_as" },
  { key = "Tensor:viewAs", from = T7, was = "x:viewAs(y)", now = "x:view_as(y)", alias = "view_as" },
  { key = "Tensor:sub", from = T7, was = "x:sub(a, b) (rows a..b)", now = "x[{{a, b}}] or x:narrow(1, a, b - a + 1)", note = "x:sub(y) here is subtraction" },
  { key = "Tensor:index", from = T7, was = "x:index(dim, idx)", now = "x:index_select(dim, idx)", note = "idx 1-based, as in Torch7" },
  { key = "Tensor:maskedFill", from = T7, was = "x:maskedFill(mask, v)", now = "x:masked_fill_(mask, v) (in place) or x:masked_fill(mask, v)" },
  { key = "Tensor:maskedSelect", from = T7, was = "x:maskedSelect(mask)", now = "x:masked_select(mask) or x[mask]" },
  { key = "Tensor:copy", from = T7, was = "x:copy(y)", now = "x:copy_(y)" },
  { key = "Tensor:uniform", from = T7, was = "x:uniform(a, b), x:normal(m, s), x:bernoulli(p)", now = "x:uniform_(a, b), x:normal_(m, s), x:bernoulli_(p)" },
  { key = "Tensor:apply", from = T7, was = "x:apply(f)", now = "a tensor op (x:clamp, ai.where, ...) or x:tolist()", note = "there is no per-element callback" },
  { key = "torch.manualSeed", from = T7, was = "torch.manualSeed(s)", now = "ai.manual_seed(s)" },
  { key = "torch.Timer", from = T7, was = "torch.Timer(), sys.clock()", now = "ai.clock() (seconds of wall time)" },
  { key = "torch.setdefaulttensortype", from = T7, was = "torch.setdefaulttensortype('torch.FloatTensor')", now = "nothing: f32 is the default; {dtype = \"f64\"} where wanted" },
  -- Torch7: nn and optim
  { key = "nn.View", from = T7, was = "nn.View(-1, 784), nn.Reshape(784)", now = "nn.Flatten() or nn.Unflatten(dim, sizes), or x:view(...) in forward" },
  { key = "nn.SpatialConvolution", from = T7, was = "nn.SpatialConvolution(nIn, nOut, kW, kH, dW, dH, padW, padH)", now = "nn.Conv2d(nIn, nOut, {kH, kW}, {stride = {dH, dW}, padding = {padH, padW}})", note = "sizes are {height, width} here, Torch7 gives width first" },
  { key = "nn.SpatialFullConvolution", from = T7, was = "nn.SpatialFullConvolution(nIn, nOut, kW, kH, dW, dH, padW, padH)", now = "nn.ConvTranspose2d(nIn, nOut, {kH, kW}, {stride = {dH, dW}, padding = {padH, padW}})" },
  { key = "nn.SpatialMaxPooling", from = T7, was = "nn.SpatialMaxPooling(kW, kH, dW, dH)", now = "nn.MaxPool2d({kH, kW}, {stride = {dH, dW}})" },
  { key = "nn.SpatialAveragePooling", from = T7, was = "nn.SpatialAveragePooling(kW, kH, dW, dH)", now = "nn.AvgPool2d({kH, kW}, {stride = {dH, dW}})" },
  { key = "nn.SpatialBatchNormalization", from = T7, was = "nn.SpatialBatchNormalization(n), nn.BatchNormalization(n)", now = "nn.BatchNorm2d(n), nn.BatchNorm1d(n)" },
  { key = "nn.SoftMax", from = T7, was = "nn.SoftMax(), nn.LogSoftMax()", now = "nn.Softmax(dim), nn.LogSoftmax(dim)", note = "the dim is required" },
  { key = "nn.Criterion", from = T7, was = "nn.MSECriterion(), nn.ClassNLLCriterion(), nn.CrossEntropyCriterion(), nn.BCECriterion(), nn.AbsCriterion(), nn.SmoothL1Criterion(), nn.DistKLDivCriterion()", now = "nn.MSELoss(), nn.NLLLoss(), nn.CrossEntropyLoss(), nn.BCELoss(), nn.L1Loss(), nn.SmoothL1Loss(), nn.KLDivLoss(); loss = crit(output, target), then loss:backward()" },
  { key = "Module:backward", from = T7, was = "model:backward(x, gradOutput), crit:backward(out, y)", now = "loss:backward() (autograd), or y:backward(gradOutput)" },
  { key = "Module:zeroGradParameters", from = T7, was = "model:zeroGradParameters()", now = "model:zero_grad() or opt:zero_grad()" },
  { key = "Module:updateParameters", from = T7, was = "model:updateParameters(lr)", now = "local opt = ai.optim.SGD(model:parameters(), {lr = lr}); opt:step()" },
  { key = "Module:getParameters", from = T7, was = "params, gradParams = model:getParameters()", now = "model:parameters() (a list of tensors; each has .grad); optimizers take the list", note = "nothing is flattened" },
  { key = "Module:training", from = T7, was = "model:training(), model:evaluate()", now = "model:train(), model:eval()" },
  { key = "Module:cuda", from = BOTH, was = "model:cuda(), x.cuda(), x.to(device)", now = "nothing: everything runs on the CPU", note = "x:to(dtype) converts dtypes" },
  { key = "optim.sgd", from = T7, was = "optim.sgd(feval, x, config)", now = "local opt = ai.optim.SGD({x}, {lr = config.learningRate}); opt:zero_grad(); f(x):backward(); opt:step()", note = "also optim.Adam, optim.LBFGS (its step takes the closure)" },
  { key = "optim.adam", from = T7, was = "optim.adam(feval, x, config)", now = "ai.optim.Adam({x}, {lr = config.learningRate}), then :step() after each backward" },
  { key = "optim.lbfgs", from = T7, was = "optim.lbfgs(feval, x, config)", now = "local opt = ai.optim.LBFGS({x}); opt:step(function() opt:zero_grad(); local l = f(x); l:backward(); return l end)" },
  { key = "torch.save", from = BOTH, was = "torch.save(path, obj) (Torch7), torch.save(obj, path) (PyTorch)", now = "ai.save(path, {name = tensor, ...}) (safetensors, tensors only); ai.checkpoint.save(path, {model = m, optimizer = opt}) for a run", note = "the path comes first" },
  { key = "torch.load", from = BOTH, was = "torch.load(path)", now = "ai.load(path) (a table of tensors); model:load_state_dict(ai.load(path))" },
  -- PyTorch
  { key = "torch.tensor", from = PT, was = "torch.tensor([[1, 2], [3, 4]])", now = "ai.tensor({{1, 2}, {3, 4}})" },
  { key = "torch.zeros", from = PT, was = "torch.zeros(3, 4), torch.randn(...), torch.arange(10)", now = "ai.zeros(3, 4), ai.randn(...), ai.arange(10) (0..9; ai.range(1, 10) is 1..10)", note = "the module is `ai`" },
  { key = "Tensor.shape", from = PT, was = "x.shape[0], x.size(0)", now = "x.shape[1], x:size(1)", note = "sizes, dims and indices are 1-based" },
  { key = "Tensor.item", from = PT, was = "x.item(), x.tolist(), x.numel()", now = "x:item(), x:tolist(), x:numel()", note = "methods are called with a colon" },
  { key = "Tensor.data", from = PT, was = "x.data", now = "x.data (the same: detached, shares memory)" },
  { key = "Tensor.requires_grad", from = PT, was = "x.requires_grad = True, x.requires_grad_()", now = "x.requires_grad = true, x:requires_grad_(); ai.randn(3, {requires_grad = true})" },
  { key = "Tensor.grad", from = PT, was = "x.grad.zero_()", now = "x.grad = nil, or opt:zero_grad()" },
  { key = "torch.no_grad", from = PT, was = "with torch.no_grad(): ...", now = "ai.no_grad(function() ... end)", note = "also ai.set_grad_enabled(false)" },
  { key = "Tensor:repeat", from = PT, was = "x.repeat(2, 3)", now = "x:tile(2, 3)", note = "repeat is a Lua keyword" },
  { key = "Tensor.permute", from = PT, was = "x.permute(0, 2, 1), x.transpose(0, 1), x.unsqueeze(0)", now = "x:permute(1, 3, 2), x:transpose(1, 2), x:unsqueeze(1)" },
  { key = "Tensor.sum", from = PT, was = "x.sum(dim=1), x.mean(1), x.max(1)", now = "x:sum(2, {keepdim = false}), x:mean(2, {keepdim = false}), x:max(2, {keepdim = false})", note = "reductions over a dim keep it unless told (Torch7's rule); max's indices are 1-based" },
  { key = "Tensor.index", from = PT, was = "x[:, 0], x[..., None], x[1:3]", now = "x[{{}, 1}], x:unsqueeze(-1), x[{{2, 3}}]", note = "ranges are 1-based and inclusive" },
  { key = "Tensor.gather_index", from = PT, was = "sqrt_ac[t] (t a tensor of positions), x[mask]", now = "sqrt_ac[t] with t an i64 tensor of 1-based positions (t + 1 for PyTorch's), x[mask] with a u8 mask" },
  { key = "torch.autograd.Function", from = PT, was = "class F(torch.autograd.Function): forward(ctx, ...), backward(ctx, ...); F.apply(x)", now = "local f = ai.autograd.Function{forward = function(ctx, ...) end, backward = function(ctx, ...) end}; f(x)" },
  { key = "Tensor.register_hook", from = PT, was = "t.register_hook(fn), t.retain_grad()", now = "t:register_hook(fn), t:retain_grad()" },
  { key = "torch.cat", from = PT, was = "torch.cat([a, b], dim=1), torch.stack(ts, 0)", now = "ai.cat({a, b}, 2), ai.stack(ts, 1)" },
  { key = "Tensor.to", from = PT, was = "x.to(torch.float64), x.long(), x.bool()", now = "x:to(\"f64\"), x:long(), x:ne(0) (u8 0/1; x:to(\"bool\") converts values as u8 does, 0.5 to 0)" },
  { key = "Tensor.matmul", from = PT, was = "a @ b, x ** 2, ~m, a & b", now = "a:matmul(b), x ^ 2, m:logical_not(), a:logical_and(b)" },
  { key = "torch.nn.functional", from = PT, was = "import torch.nn.functional as F", now = "local F = ai.F" },
  { key = "nn.Module", from = PT, was = "class Net(nn.Module): def __init__(self): super().__init__() ...", now = "local Net = ai.nn.Module:extend(\"Net\"); function Net:init() ... end; function Net:forward(x) ... end" },
  { key = "Module.state_dict", from = PT, was = "model.state_dict(), model.load_state_dict(sd)", now = "model:state_dict(), model:load_state_dict(sd) (PyTorch's names: weights move both ways through safetensors)" },
  { key = "Module.parameters", from = PT, was = "model.parameters(), model.eval(), model.train()", now = "model:parameters(), model:eval(), model:train()" },
  { key = "optim.Adam", from = PT, was = "torch.optim.Adam(model.parameters(), lr=1e-3)", now = "ai.optim.Adam(model:parameters(), {lr = 1e-3})" },
  { key = "torch.manual_seed", from = PT, was = "torch.manual_seed(0)", now = "ai.manual_seed(0)" },
  { key = "torch.utils.data.DataLoader", from = PT, was = "DataLoader(ds, batch_size=64, shuffle=True); for x, y in loader:", now = "ai.data.DataLoader(ds, {batch_size = 64, shuffle = true}); for x, y in loader:iter() do ... end" },
  { key = "Tensor.nonzero", from = PT, was = "x.nonzero(), x.argmax(), torch.multinomial(p, n), torch.randperm(n)", now = "the same names; every index they give is 1-based" },
}

local by_key = {}
for _, e in ipairs(M.entries) do by_key[e.key] = e end

-- Criterions by name (nn.MSECriterion -> nn.MSELoss), for nn.<X>Criterion
local CRITERIA = {
  MSE = "MSELoss", ClassNLL = "NLLLoss", CrossEntropy = "CrossEntropyLoss", BCE = "BCELoss", Abs = "L1Loss",
  SmoothL1 = "SmoothL1Loss", DistKLDiv = "KLDivLoss", MarginRanking = "MarginRankingLoss",
  HingeEmbedding = "HingeEmbeddingLoss",
}

--- migrate.message(entry) -> the one line that help() and the REPL show for an entry:
-- "Torch7: x:nElement() -> here: x:nelement() or x:numel() (...)"
function M.message(e)
  local s = ("%s: %s -> here: %s"):format(e.from, e.was, e.now)
  if e.note then s = s .. " (" .. e.note .. ")" end
  if e.alias then s = s .. "; " .. e.key:match("[:.](.*)$") .. " works too, as an alias" end
  return s
end

-- The entry for a method or field name of a tensor (sep ":" or ".") or of a module.
local function member(name, sep, is_module)
  local order = is_module and { "Module", "Tensor" } or { "Tensor", "Module" }
  for _, cls in ipairs(order) do
    local e = by_key[cls .. sep .. name] or by_key[cls .. (sep == ":" and "." or ":") .. name]
    if e then return e end
  end
  return nil
end

--- migrate.find(name[, kind]) -> the entry for a name as typed ("x:nElement", "torch.save",
-- "nn.SpatialConvolution", "ai.nn.MSECriterion", "optim.sgd"), or nil. kind: "module" when
-- the receiver of x:name is known to be an nn module.
function M.find(name, kind)
  if type(name) ~= "string" then return nil end
  name = name:gsub("^ai%.", "")
  local e = by_key[name]
  if e then return e end
  local crit = name:match("^nn%.(%w+)Criterion$")
  if crit then
    local loss = CRITERIA[crit]
    return {
      key = name, from = T7, was = name .. "()",
      now = (loss and ("nn." .. loss .. "()") or "the nn.*Loss of the same name") .. "; loss = crit(output, target), then loss:backward()",
    }
  end
  local base, sep, m = name:match("^(.-)([.:])([%a_][%w_]*)$")
  if not base or base == "" or base:match("^torch") or base == "nn" or base == "optim" then return nil end
  return member(m, sep, kind == "module")
end

--- migrate.hint(message) -> a line for an error about a name that does not exist here, when
-- the name is one of Torch7's or PyTorch's ("attempt to call a nil value (method 'cmul')"), or nil
function M.hint(msg)
  if type(msg) ~= "string" then return nil end
  local kind, name = msg:match("attempt to [%a ]- a nil value %((%a+) '([%w_]+)'%)")
  if not kind then return nil end
  if kind == "global" and name == "torch" then
    return "there is no torch here: the module is ai (torch.zeros is ai.zeros; help(ai) lists it)"
  end
  local e
  if kind == "method" then
    e = member(name, ":")
  elseif kind == "field" then
    e = by_key["nn." .. name] or by_key["optim." .. name] or by_key["torch." .. name] or member(name, ".")
    if not e and name:match("Criterion$") then e = M.find("nn." .. name) end
  end
  return e and M.message(e) or nil
end

--- migrate.aliases() -> {torch7_name = name here, ...}: the tensor methods that answer to
-- their Torch7 names too
function M.aliases()
  local r = {}
  for _, e in ipairs(M.entries) do
    if e.alias then r[e.key:match(":(.*)$")] = e.alias end
  end
  return r
end

--- migrate.markdown(from) -> the migration table of "Torch7" or "PyTorch" as Markdown (the
-- entries of both frameworks are in both tables)
function M.markdown(from)
  local lines = { ("| %s | aiart-lua |"):format(from), "| --- | --- |" }
  local function cell(s) return (s:gsub("|", "\\|")) end
  for _, e in ipairs(M.entries) do
    if e.from == from or e.from == BOTH then
      local now = e.now .. (e.note and (" (" .. e.note .. ")") or "")
      if e.alias then now = now .. "; `" .. e.key:match(":(.*)$") .. "` works too" end
      lines[#lines + 1] = ("| `%s` | %s |"):format(cell(e.was), cell(now))
    end
  end
  return table.concat(lines, "\n")
end

return M
