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
M.is_tensor = is_tensor

local io_lib = util.io_lib

--- ai.save(path, tensors[, metadata])
function M.save(path, tensors, metadata)
  local fn = "save"
  if type(path) ~= "string" then error(fn .. ": path must be a string, got " .. type(path), 2) end
  if type(tensors) ~= "table" or is_tensor(tensors) then
    error(fn .. ": expected a table {name = tensor, ...} (for one tensor: {x = t})", 2)
  end
  local ts = {}
  for k, v in pairs(tensors) do
    if type(k) ~= "string" then error(("%s: tensor names must be strings, got a %s key"):format(fn, type(k)), 2) end
    if not is_tensor(v) then error(("%s: '%s' is a %s, not a tensor"):format(fn, k, type(v)), 2) end
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

return M
