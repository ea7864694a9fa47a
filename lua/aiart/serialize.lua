--[[ aiart.serialize: ai.save and ai.load, tensors in safetensors files.

  ai.save(path, {name = tensor, ...}[, metadata])   metadata: {key = string|number|boolean}
  ai.load(path) -> {name = tensor, ...}, {key = "value", ...}

Tensors keep their dtype (f32, f64, i64, u8) and shape; views are written as their values and
tensors that require grad are saved detached. Files from other programs load too: F16/BF16 as
f32, I32/I16/I8 as i64, BOOL as u8. The file is written atomically (a temporary file in the same
folder, fsync, rename, fsync of the folder): a crash leaves the old file or the new one, never a
half-written one. For whole training states see ai.checkpoint.
]]
local ai = require "aiart"
local util = require "aiart.util"

local M = {}

local is_tensor = util.is_tensor
local error = util.error -- positions name the caller's line (see util.error)
M.is_tensor = is_tensor

local io_lib = util.io_lib

--- ai.save(path, tensors[, metadata])
function M.save(path, tensors, metadata)
  local fn = "save"
  if type(path) ~= "string" then error(fn .. ": path must be a string, got " .. type(path), 2) end
  if type(tensors) ~= "table" or is_tensor(tensors) then
    error(fn .. ": expected a table {name = tensor, ...} (for one tensor: {x = t})", 2)
  end
  -- a model, an optimizer, ...: objects whose state is not a flat table of tensors
  if getmetatable(tensors) ~= nil and type(tensors.state_dict) == "function" then
    local nn_module = package.loaded["aiart.nn.module"]
    local is_module = nn_module and nn_module.is_module(tensors)
    local what = is_module and "a module" or type(tensors.param_groups) == "table" and "an optimizer"
      or "an object with a state_dict method"
    local name = is_module and "model" or what == "an optimizer" and "opt" or "obj"
    local hint = is_module and ("pass model:state_dict(), or use ai.checkpoint.save(path, {model = model})")
      or ("use ai.checkpoint.save(path, {%s = %s}), which saves %s:state_dict() (ai.save takes flat {name = tensor} tables)"):format(
        what == "an optimizer" and "optimizer" or "state", name, name)
    error(("%s: got %s (%s), not a table {name = tensor, ...}: %s"):format(fn, what,
      tostring(getmetatable(tensors).__name or "?"), hint), 2)
  end
  local ts = {}
  for k, v in pairs(tensors) do
    if type(k) ~= "string" then error(("%s: tensor names must be strings, got a %s key"):format(fn, type(k)), 2) end
    if not is_tensor(v) then
      error(("%s: '%s' is a %s, not a tensor (ai.save writes {name = tensor} tables; for other values use ai.checkpoint)"):format(
        fn, k, type(v)), 2)
    end
    v = v:detach() -- shares the storage; drops any graph
    ts[k] = v
  end
  local meta
  if metadata ~= nil then
    if type(metadata) ~= "table" then error(fn .. ": metadata must be a table of strings", 2) end
    meta = {}
    for k, v in pairs(metadata) do
      if type(k) ~= "string" then error(fn .. ": metadata keys must be strings", 2) end
      local t = type(v)
      if t == "number" or t == "boolean" then v = tostring(v)
      elseif t ~= "string" then error(("%s: metadata '%s' is a %s (strings, numbers, booleans only; encode tables with ai.json)"):format(fn, k, t), 2) end
      meta[k] = v
    end
  end
  io_lib(fn).save_safetensors(path, ts, meta)
  return path
end

--- ai.load(path) -> tensors, metadata
function M.load(path)
  if type(path) ~= "string" then error("load: path must be a string, got " .. type(path), 2) end
  return io_lib("load").load_safetensors(path)
end

return util.strict_args(M, "")
