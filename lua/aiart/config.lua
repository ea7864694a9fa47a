--[[ aiart.config (ai.config): command-line settings for experiment scripts.

  local cfg = ai.config.parse(arg, {lr = 2e-4, batch_size = 64, out = "runs/gan", amp = false,
                                    betas = {0.5, 0.999}},
                              {help = {lr = "learning rate", out = "output folder"},
                               description = "Trains a DCGAN on Fashion-MNIST."})
  -- or with the descriptions beside the defaults (every key in this form):
  local cfg = ai.config.parse(arg, {lr = {2e-4, "learning rate"}, out = {"runs/gan", "output"}},
                              {help = "Trains a DCGAN on Fashion-MNIST."})

  ./aiart-lua train.lua lr=1e-3 epochs=5 out=runs/x     key=value overrides a default
  ./aiart-lua train.lua config=exp.json lr=1e-3          a JSON object read first, then the rest
  ./aiart-lua train.lua --help                           the keys, defaults and descriptions

Values are parsed by the type of the default: numbers (integral values become integers, others
floats, so a default of 0 takes 1e-3 too), booleans (true/false, yes/no, on/off, 1/0), strings,
and tables (JSON, e.g. betas=[0.9,0.99], or comma-separated: betas=0.9,0.99). `--key=value`,
`--key value` and `--flag` (true) are accepted too. An unknown key is an error that lists the
known ones. The result is a new table; cfg.config holds the JSON file's path when one was given.
opts.help is a table of descriptions or a string shown at the top of --help.
]]
local ai = require "aiart"

local C = {}

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks)
  return ks
end

local function show(v)
  if type(v) == "string" then return ("%q"):format(v) end
  if type(v) == "table" then
    local json = rawget(ai, "json")
    if json then
      local ok, s = pcall(json.encode, v)
      if ok then return s end
    end
  end
  return tostring(v)
end

local function unknown(fn, key, defaults)
  return ("%s: unknown key '%s' (known: %s)"):format(fn, key, table.concat(sorted_keys(defaults), ", "))
end

local TRUE = {["true"] = true, yes = true, on = true, ["1"] = true}
local FALSE = {["false"] = false, no = false, off = false, ["0"] = false}

-- A command-line string converted to the type of default `def`.
local function convert(fn, key, s, def)
  local t = type(def)
  if t == "string" then return s end
  if t == "number" then
    local v = tonumber(s)
    if v == nil then error(("%s: %s must be a number, got '%s'"):format(fn, key, s), 0) end
    if math.type(def) == "integer" then return math.tointeger(v) or v end
    return v + 0.0
  end
  if t == "boolean" then
    local l = s:lower()
    if TRUE[l] then return true end
    if FALSE[l] ~= nil then return false end
    error(("%s: %s must be true or false, got '%s'"):format(fn, key, s), 0)
  end
  if t == "table" then
    local json = rawget(ai, "json")
    if s:match("^%s*[%[{]") and json then
      local ok, v = pcall(json.decode, s)
      if not ok then error(("%s: %s: %s"):format(fn, key, tostring(v)), 0) end
      return v
    end
    local out = {}
    for part in (s .. ","):gmatch("([^,]*),") do
      if part ~= "" then out[#out + 1] = tonumber(part) or part end
    end
    return out
  end
  return s -- a default of another type: the string
end

-- A value from a JSON file checked against the default's type.
local function check_json(fn, key, v, def, file)
  local t = type(def)
  if t == "number" and type(v) == "number" then
    if math.type(def) == "integer" then return math.tointeger(v) or v end
    return v + 0.0
  end
  if t == type(v) then return v end
  if t == "string" and type(v) == "number" then return tostring(v) end
  if t == "nil" then return v end
  error(("%s: %s in %s must be a %s, got %s"):format(fn, key, file, t, type(v)), 0)
end

local function help_text(defaults, opts, script)
  local lines = {}
  if opts.description then lines[#lines + 1] = opts.description; lines[#lines + 1] = "" end
  if type(opts.help) == "string" then lines[#lines + 1] = opts.help; lines[#lines + 1] = "" end
  lines[#lines + 1] = ("usage: aiart-lua %s [key=value ...] [config=file.json]"):format(script or "script.lua")
  lines[#lines + 1] = ""
  lines[#lines + 1] = "keys (default):"
  local keys = sorted_keys(defaults)
  local w = 6
  for _, k in ipairs(keys) do
    if #k > w then w = #k end
  end
  local desc = opts.descriptions or (type(opts.help) == "table" and opts.help) or {}
  for _, k in ipairs(keys) do
    local d = desc[k]
    lines[#lines + 1] = ("  %-" .. w .. "s  %s%s"):format(k, show(defaults[k]), d and ("  -- " .. d) or "")
  end
  lines[#lines + 1] = ("  %-" .. w .. "s  %s"):format("config", "a JSON file of settings, read before the other arguments")
  return table.concat(lines, "\n")
end
C.help_text = help_text

local function copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = copy(x) end
  return out
end

--- config.parse(args, defaults[, {help=, description=, exit=, print=}]) -> cfg
-- opts.exit (default os.exit) and opts.print (default print) are called for --help.
function C.parse(args, defaults, opts)
  local fn = "config"
  opts = opts or {}
  if type(defaults) ~= "table" then error(fn .. ".parse: defaults must be a table", 2) end
  -- {key = {default, "description"}, ...}: every entry in that form
  local spec = next(defaults) ~= nil
  for _, v in pairs(defaults) do
    if not (type(v) == "table" and #v == 2 and type(v[2]) == "string" and next(v, 2) == nil) then spec = false break end
  end
  if spec then
    local d, descs = {}, {}
    for k, v in pairs(defaults) do d[k], descs[k] = v[1], v[2] end
    if type(opts.help) == "table" then for k, v in pairs(opts.help) do descs[k] = v end end
    local o = {}
    for k, v in pairs(opts) do o[k] = v end
    o.descriptions = descs
    defaults, opts = d, o
  end
  if args ~= nil and type(args) ~= "table" then error(fn .. ".parse: arguments must be a table (arg)", 2) end
  args = args or {}
  local cfg = copy(defaults)
  local list = {}
  for i = 1, #args do list[i] = tostring(args[i]) end
  -- --help first
  for _, a in ipairs(list) do
    if a == "--help" or a == "-h" or a == "help" or a == "-help" then
      local text = help_text(defaults, opts, args[0])
      ;(opts.print or print)(text)
      ;(opts.exit or os.exit)(0)
      return cfg
    end
  end
  local pairs_ = {}
  local i = 1
  while i <= #list do
    local a = list[i]
    local k, v = a:match("^%-%-([%w_%.%-]+)=(.*)$")
    if not k then k, v = a:match("^([%a_][%w_%.%-]*)=(.*)$") end
    if not k then
      local flag = a:match("^%-%-([%w_%-]+)$")
      if flag then
        if type(defaults[flag]) == "boolean" then k, v = flag, "true"
        elseif i < #list and defaults[flag] ~= nil then k, v = flag, list[i + 1]; i = i + 1
        else error(defaults[flag] == nil and unknown(fn, flag, defaults) or ("%s: --%s needs a value"):format(fn, flag), 0) end
      else
        error(("%s: expected key=value, got '%s' (--help lists the keys)"):format(fn, a), 0)
      end
    end
    pairs_[#pairs_ + 1] = {k, v}
    i = i + 1
  end
  -- config=file.json first
  for _, kv in ipairs(pairs_) do
    if kv[1] == "config" and defaults.config == nil then
      local json = rawget(ai, "json")
      if not json then error(fn .. ": reading a JSON file needs ai.json", 0) end
      local f, err = io.open(kv[2], "r")
      if not f then error(("%s: cannot read config file: %s"):format(fn, tostring(err)), 0) end
      local text = f:read("a")
      f:close()
      local ok, t = pcall(json.decode, text)
      if not ok then error(("%s: %s: %s"):format(fn, kv[2], tostring(t)), 0) end
      if type(t) ~= "table" then error(("%s: %s must hold a JSON object"):format(fn, kv[2]), 0) end
      for key, v in pairs(t) do
        if defaults[key] == nil then error(unknown(fn, tostring(key), defaults) .. " in " .. kv[2], 0) end
        cfg[key] = check_json(fn, key, v, defaults[key], kv[2])
      end
      cfg.config = kv[2]
    end
  end
  for _, kv in ipairs(pairs_) do
    local k, v = kv[1], kv[2]
    if not (k == "config" and defaults.config == nil) then
      if defaults[k] == nil then error(unknown(fn, k, defaults), 0) end
      cfg[k] = convert(fn, k, v, defaults[k])
    end
  end
  return cfg
end

return C
