--[[ aiart.metrics (ai.metrics): training logs as JSON lines.

  local log = ai.metrics.logger("runs/exp1/metrics.jsonl", {append=false, time=false})
      (ai.metrics.open is the same; the file starts empty unless append=true)
  log:write{step = 100, loss_d = 0.69, loss_g = 1.3}   -- one line, flushed at once
  log:close()                                           -- also on <close>
  local records = ai.metrics.read("runs/exp1/metrics.jsonl")  -> {{step=100, ...}, ...}

Values may be numbers, strings, booleans, nested tables or 1-element tensors (stored as numbers).
NaN and infinities are stored as the strings "NaN", "Infinity", "-Infinity" and read back as
numbers. With time=true each record gets a `time` field (seconds since the epoch). A last line
cut short by a crash is skipped on reading; any other malformed line is an error naming it.
]]
local ai = require "aiart"
local util = require "aiart.util"

local M = {}

local function json_lib(fn)
  local j = rawget(ai, "json")
  if not j then error(fn .. ": ai.json is not built into this aiart", 3) end
  return j
end

-- numbers that JSON cannot hold, and tensors, made storable
local function clean(v, depth)
  local t = type(v)
  if t == "number" then
    if v ~= v then return "NaN" end
    if v == math.huge then return "Infinity" end
    if v == -math.huge then return "-Infinity" end
    return v
  elseif t == "userdata" and v.item then
    return clean(v:item(), depth)
  elseif t == "table" then
    if depth > 50 then error("metrics: record nested too deeply", 0) end
    local out = {}
    for k, x in pairs(v) do out[k] = clean(x, depth + 1) end
    return out
  end
  return v
end

local SPECIAL = {NaN = 0 / 0, Infinity = math.huge, ["-Infinity"] = -math.huge}

local function restore(v)
  if type(v) == "string" and SPECIAL[v] then return SPECIAL[v] end
  if type(v) == "table" then
    for k, x in pairs(v) do v[k] = restore(x) end
  end
  return v
end

local Logger = {}
Logger.__index = Logger
Logger.__name = "MetricsLogger"

--- metrics.logger(path[, {append=false, time=false}]) -> log
function M.logger(path, opts)
  local fn = "metrics.logger"
  if type(path) ~= "string" then error(fn .. ": path must be a string, got " .. type(path), 2) end
  opts = opts or {}
  local append = opts.append and true or false
  local f, err = io.open(path, append and "a" or "w")
  if not f then error(fn .. ": cannot open " .. tostring(err), 2) end
  return setmetatable({path = path, file = f, time = opts.time and true or false, json = json_lib(fn), n = 0}, Logger)
end

M.open = M.logger

--- log:write(record): appends one JSON line and flushes
function Logger:write(record)
  if type(record) ~= "table" then error("log:write: record must be a table", 2) end
  if not self.file then error("log:write: the logger is closed", 2) end
  local r = clean(record, 0)
  if self.time and r.time == nil then
    r.time = util.wall_time()
  end
  local ok, line = pcall(self.json.encode, r)
  if not ok then error("log:write: " .. tostring(line), 2) end
  self.file:write(line, "\n")
  self.file:flush()
  self.n = self.n + 1
  return self
end
Logger.log = Logger.write

function Logger:close()
  if self.file then self.file:close() end
  self.file = nil
end
Logger.__close = Logger.close
Logger.__gc = Logger.close

--- metrics.read(path) -> list of records
function M.read(path)
  local fn = "metrics.read"
  if type(path) ~= "string" then error(fn .. ": path must be a string, got " .. type(path), 2) end
  local f, err = io.open(path, "rb")
  if not f then error(fn .. ": cannot open " .. tostring(err), 2) end
  local text = f:read("a")
  f:close()
  local json = json_lib(fn)
  local out, lineno = {}, 0
  local pos = 1
  while pos <= #text do
    local nl = text:find("\n", pos, true)
    local line = text:sub(pos, (nl or #text + 1) - 1)
    lineno = lineno + 1
    pos = (nl or #text) + 1
    if line:match("%S") then
      local ok, rec = pcall(json.decode, line)
      if ok and type(rec) == "table" then
        out[#out + 1] = restore(rec)
      elseif nl then
        error(("%s: %s line %d is not a JSON object: %s"):format(fn, path, lineno, tostring(rec)), 2)
      end -- a last line without its newline: cut short by a crash, skipped
    end
  end
  return out
end

--- metrics.column(records, key) -> xs (record.step or the index), ys for records having key
function M.column(records, key, xkey)
  util.check("metrics.column", "records", records, "table")
  util.check("metrics.column", "key", key, "string")
  xkey = util.check("metrics.column", "xkey", xkey, "string", true) or "step"
  local xs, ys = {}, {}
  for i, r in ipairs(records) do
    local v = r[key]
    if type(v) == "number" then
      xs[#xs + 1] = type(r[xkey]) == "number" and r[xkey] or i
      ys[#ys + 1] = v
    end
  end
  return xs, ys
end

util.strict_args(M, "metrics.")
util.strict_args(Logger, "metrics.logger:", true)
return M
