--[[ aiart.checkpoint (ai.checkpoint): a whole training state in ONE safetensors file.

  ai.checkpoint.save(path, {model=, optimizer=, ema=, scheduler=, rng=true, loader=, step=,
                            config=, extra=, [any other name] = object or value})
  local info = ai.checkpoint.load(path, {model=, optimizer=, ema=, scheduler=, loader=,
                                         rng=true, strict=true})
      -> info.step, info.config, info.extra (and every saved part, decoded)

An entry that has a state_dict() method (modules, optimizers, EMA, schedulers, DataLoaders) is
saved through it and restored with load_state_dict(); rng=true saves the global generator
({seed, offset}); anything else (numbers, strings, booleans, nested tables, tensors) is saved
as it is. Tensors go into the file under their path ("model.<name>", "optimizer.state.1.exp_avg",
"ema.shadow.<name>", ...); every other value goes into the header's __metadata__ as JSON (key
"aiart"), with integer and float numbers, integer-keyed tables and inf/nan kept exactly, so a
resumed run continues bit for bit. Writing is atomic (temporary file in the same folder, fsync,
rename, fsync of the folder): a crash or kill -9 mid-save leaves the previous checkpoint intact.
]]
local ai = require "aiart"
local util = require "aiart.util"

local M = {}

local is_tensor = util.is_tensor
local error = util.error -- positions name the caller's line (see util.error)

local FORMAT = "aiart-checkpoint"
local VERSION = 1

local function libs(fn)
  local io_, json = rawget(ai, "io"), rawget(ai, "json")
  if not io_ or not json then error(fn .. ": ai.io and ai.json are not built into this aiart", 3) end
  return io_, json
end

local function has_method(v, name)
  if type(v) ~= "table" and type(v) ~= "userdata" then return false end
  local ok, f = pcall(function() return v[name] end)
  return ok and type(f) == "function"
end

-- ---------------------------------------------------------------- encoding

-- Values become JSON-ready trees; tensors are replaced by {__tensor = name} and collected.
-- Tags are objects with one key from TAGS; a string-keyed table with a key starting "__", or a
-- table whose keys are not exactly 1..n or all strings, is written as {__pairs = {{k, v}, ...}}.
local function pathname(path, key)
  local k = math.type(key) == "integer" and tostring(key) or tostring(key)
  if path == "" then return k end
  return path .. "." .. k
end

local function encoder(fn)
  local e = {tensors = {}, used = {}, seen = {}}
  local function tensor_name(path)
    local name, k = path, 1
    while e.used[name] do k = k + 1; name = path .. "#" .. k end
    e.used[name] = true
    return name
  end
  local function enc(v, path, depth)
    local t = type(v)
    if t == "number" then
      if v ~= v then return {__num = "nan"} end
      if v == math.huge then return {__num = "inf"} end
      if v == -math.huge then return {__num = "-inf"} end
      return v
    elseif t == "string" or t == "boolean" then
      return v
    elseif is_tensor(v) then
      local name = e.seen[v]
      if not name then
        name = tensor_name(path)
        e.seen[v] = name
        local x = v
        x = x:detach() -- shares the storage; drops any graph
        e.tensors[name] = x
      end
      return {__tensor = name}
    elseif t == "table" then
      if depth > 100 then error(("%s: %s is nested too deeply (a cycle?)"):format(fn, path), 0) end
      local n, nstr, nint, maxk, dunder = 0, 0, 0, 0, false
      for k in pairs(v) do
        n = n + 1
        if type(k) == "string" then
          nstr = nstr + 1
          if k:sub(1, 2) == "__" then dunder = true end
        elseif math.type(k) == "integer" and k >= 1 then
          nint = nint + 1
          if k > maxk then maxk = k end
        end
      end
      if n == 0 then return setmetatable({}, {__jsontype = "object"}) end
      if nint == n and maxk == n then
        local arr = {}
        for i = 1, n do arr[i] = enc(v[i], pathname(path, i), depth + 1) end
        return arr
      end
      if nstr == n and not dunder then
        local obj = {}
        for k, x in pairs(v) do obj[k] = enc(x, pathname(path, k), depth + 1) end
        return obj
      end
      local pairs_ = {}
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = k end
      table.sort(keys, function(a, b)
        local ta, tb = type(a), type(b)
        if ta ~= tb then return ta < tb end
        if ta == "boolean" then return (a and 1 or 0) < (b and 1 or 0) end
        return a < b
      end)
      for _, k in ipairs(keys) do
        local kt = type(k)
        if kt ~= "string" and kt ~= "number" and kt ~= "boolean" then
          error(("%s: cannot save a table key of type %s at %s"):format(fn, kt, path), 0)
        end
        pairs_[#pairs_ + 1] = {enc(k, path, depth + 1), enc(v[k], pathname(path, k), depth + 1)}
      end
      return {__pairs = pairs_}
    end
    error(("%s: cannot save a %s at %s"):format(fn, t, path == "" and "the top level" or path), 0)
  end
  e.enc = enc
  return e
end

local function decode(v, tensors, fn)
  if type(v) ~= "table" then return v end
  local tag = next(v)
  if tag ~= nil and next(v, tag) == nil and type(tag) == "string" and tag:sub(1, 2) == "__" then
    local x = v[tag]
    if tag == "__tensor" then
      local t = tensors[x]
      if not t then error(("%s: the checkpoint refers to tensor '%s', which the file lacks"):format(fn, tostring(x)), 0) end
      return t
    elseif tag == "__num" then
      if x == "nan" then return 0 / 0 end
      if x == "inf" then return math.huge end
      if x == "-inf" then return -math.huge end
      error(fn .. ": bad number tag " .. tostring(x), 0)
    elseif tag == "__pairs" then
      local out = {}
      for _, kv in ipairs(x) do
        local k = decode(kv[1], tensors, fn)
        if k ~= nil and k == k then out[k] = decode(kv[2], tensors, fn) end
      end
      return out
    end
  end
  local out = {}
  for k, x in pairs(v) do out[k] = decode(x, tensors, fn) end
  return out
end

M._encoder = encoder
M._decode = decode

-- The state of one entry of the save table.
local function entry_state(fn, name, v)
  if name == "rng" then
    if v == true then return ai.get_rng_state() end
    if v == false or v == nil then return nil end
    return v -- an explicit {seed=, offset=}
  end
  if has_method(v, "state_dict") then return v:state_dict() end
  return v
end

-- Removes "<path>.tmp.<pid>" files left by writers that died (best effort, Linux /proc).
local function clean_stale(path)
  local dir = path:match("^(.*)/[^/]+$") or "."
  if dir == "" then dir = "/" end
  local f = io.open("/proc/self/stat", "r")
  if not f then return end
  f:close()
  local p = io.popen("ls -a " .. util.shell_quote(dir) .. " 2>/dev/null")
  if not p then return end
  -- any "<name>.tmp.<pid>" of a dead writer, not only this file's: a kill while a numbered
  -- checkpoint was written leaves one whose name differs from the next save's
  for line in p:lines() do
    local pid = line:match("%.tmp%.(%d+)$")
    if pid then
      local st = io.open("/proc/" .. pid .. "/stat", "r")
      local state = st and (st:read("a") or ""):match("%)%s+(%a)")
      if st then st:close() end
      if not st or state == "Z" or state == "X" then os.remove(dir .. "/" .. line) end
    end
  end
  p:close()
end

--- checkpoint.save(path, parts) -> path
function M.save(path, parts)
  local fn = "checkpoint.save"
  if type(path) ~= "string" then error(fn .. ": path must be a string, got " .. type(path), 2) end
  if type(parts) ~= "table" or is_tensor(parts) then error(fn .. ": expected a table {model=, optimizer=, ...}", 2) end
  local io_, json = libs(fn)
  local e = encoder(fn)
  local header = {format = FORMAT, version = VERSION, parts = {}}
  local names = {}
  for k in pairs(parts) do
    if type(k) ~= "string" then error(fn .. ": part names must be strings", 2) end
    if k:find("[.#]") then error(("%s: part name '%s' must not contain '.' or '#'"):format(fn, k), 2) end
    names[#names + 1] = k
  end
  table.sort(names)
  for _, name in ipairs(names) do
    local ok, state = pcall(entry_state, fn, name, parts[name])
    if not ok then error(("%s: %s:state_dict() failed: %s"):format(fn, name, util.strip_position(state)), 2) end
    if state ~= nil then
      local ok2, tree = pcall(e.enc, state, name, 0)
      if not ok2 then error(tree, 2) end
      header.parts[name] = tree
    end
  end
  local ok, text = pcall(json.encode, header)
  if not ok then error(fn .. ": " .. tostring(text), 2) end
  clean_stale(path)
  local ok2, err = pcall(io_.save_safetensors, path, e.tensors, {format = "aiart", aiart = text})
  if not ok2 then error(fn .. ": " .. tostring(err), 2) end
  return path
end

-- The decoded parts of the checkpoint at path; errors name fn.
local function read(fn, path)
  if type(path) ~= "string" then error(fn .. ": path must be a string, got " .. type(path), 2) end
  local io_, json = libs(fn)
  local ok, tensors, meta = pcall(io_.load_safetensors, path)
  if not ok then error(fn .. ": " .. tostring(tensors), 2) end
  local text = meta.aiart
  if not text then error(("%s: %s is a safetensors file but not an aiart checkpoint (use ai.load)"):format(fn, path), 2) end
  local ok2, header = pcall(json.decode, text)
  if not ok2 or type(header) ~= "table" or header.format ~= FORMAT then
    error(("%s: %s has a damaged checkpoint header"):format(fn, path), 2)
  end
  if type(header.version) ~= "number" or header.version > VERSION then
    error(("%s: %s is checkpoint format version %s, this aiart reads up to %d"):format(fn, path, tostring(header.version), VERSION), 2)
  end
  local ok3, parts = pcall(decode, header.parts or {}, tensors, fn)
  if not ok3 then error(parts, 2) end
  return parts, tensors
end

--- checkpoint.read(path) -> the decoded parts (tensors in place), without restoring anything
function M.read(path) return read("checkpoint.read", path) end

local LOAD_OPTS = {strict = true}

--- checkpoint.load(path, targets) -> info: restores each given object from its saved state
function M.load(path, targets)
  local fn = "checkpoint.load"
  if targets ~= nil and type(targets) ~= "table" then error(fn .. ": targets must be a table {model=, ...}", 2) end
  targets = targets or {}
  local parts = read(fn, path)
  local strict = targets.strict
  if strict == nil then strict = true end
  for name, obj in pairs(targets) do
    if not LOAD_OPTS[name] then
      if name == "rng" then
        if obj ~= false and parts.rng ~= nil then ai.set_rng_state(parts.rng) end
        if obj == true and parts.rng == nil and strict then
          error(("%s: %s holds no rng state"):format(fn, path), 2)
        end
      elseif obj ~= false and obj ~= nil then
        local state = parts[name]
        if state == nil then
          if strict then error(("%s: %s holds no '%s' state"):format(fn, path, name), 2) end
        elseif has_method(obj, "load_state_dict") then
          local ok2, err = pcall(obj.load_state_dict, obj, state)
          if not ok2 then error(("%s: restoring '%s': %s"):format(fn, name, util.strip_position(err)), 2) end
        else
          error(("%s: '%s' has no load_state_dict method"):format(fn, name), 2)
        end
      end
    end
  end
  if targets.rng == nil and parts.rng ~= nil then ai.set_rng_state(parts.rng) end
  return parts
end

return util.strict_args(M, "checkpoint.")
