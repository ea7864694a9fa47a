--[[ aiart.config (ai.config): command-line settings for experiment scripts.

  local cfg = ai.config.parse(arg, {lr = 2e-4, batch_size = 64, out = "runs/gan", amp = false,
                                    betas = {0.5, 0.999}},
                              {help = {lr = "learning rate", out = "output folder"},
                               description = "Trains a DCGAN on Fashion-MNIST."})
  -- or each key declared once: {default, "description"[, rule]} (every key in this form)
  local computed = ai.config.computed
  local cfg = ai.config.parse(arg, {
      arch = {"mlp", "the architecture", {"mlp", "dcgan"}},
      lr = {2e-4, "learning rate", "number > 0"},
      steps = {4000, "training steps (0: no limit)", "integer >= 0"},
      mults = {{1, 2}, "channel multipliers", "list of integers >= 1"},
      batch_size = {computed("32 mlp, 64 dcgan", function(c) return c.arch == "dcgan" and 64 or 32 end),
                    "batch size", "integer >= 1"},
    }, {help = "Trains a GAN.", check = function(c) if c.steps > 10 ^ 6 then return "steps=... too many" end end})

  ./aiart-lua train.lua lr=1e-3 epochs=5 out=runs/x     key=value overrides a default
  ./aiart-lua train.lua config=exp.json lr=1e-3          a JSON object read first, then the rest
  ./aiart-lua train.lua --help                           the keys, defaults, rules and descriptions

Without a rule, values are parsed by the type of the default: numbers (integral values become
integers, others floats, so a default of 0 takes 1e-3 too), booleans (true/false, yes/no, on/off,
1/0), strings, and tables (JSON, e.g. betas=[0.9,0.99], or comma-separated: betas=0.9,0.99).
A rule is a table of choices ({"mlp", "dcgan"}: one of them) or a string: a type, "integer",
"number", "boolean", "string", "list of integers" or "list of numbers", then for numbers a range
of one or two bounds joined by "and" (">= 1", "> 0", ">= 0 and < 1"). Integers follow Lua's rule
(2.0 is the integer 2, 2.5 is no integer); a number is a float unless its default is an
integer; a list is not empty, each element within the range. A value that breaks its rule, on
the command line or in the JSON file, is an error naming the key, the value and the rule.
A default made with config.computed(text, f) is f(cfg) of the other options when the key is not
given (text shows in --help); opts.check(cfg) then returns a message for a rule across options,
or nil. `--key=value`, `--key value` and `--flag` (true) are accepted too. An unknown key is an
error that lists the known ones. The result is a new table; cfg.config holds the JSON file's
path when one was given. opts.help is a table of descriptions or a string shown at the top of
--help; opts.name (default "config") starts every error message.
]]
local ai = require "aiart"

local C = {}

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks)
  return ks
end

local COMPUTED = {}
COMPUTED.__index = COMPUTED

--- config.computed(text, f) -> a default computed from the other options: f(cfg) when the key
-- is not given, after every plain default and given value is in cfg (f should not read another
-- computed key); text says what it is in --help ("32 mlp, 64 dcgan"). Such a key needs a rule.
function C.computed(text, f)
  if type(text) ~= "string" then error("config.computed: text must be a string", 2) end
  if type(f) ~= "function" then error("config.computed: f must be a function", 2) end
  return setmetatable({text = text, f = f}, COMPUTED)
end

local function is_computed(v) return getmetatable(v) == COMPUTED end

local function show(v)
  if is_computed(v) then return v.text end
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

------------------------------------------------------------------------------ rules

local ARTICLE = {integer = "an integer", number = "a number", boolean = "true or false", string = "a string"}
local ELEMENT = {integers = "integer", numbers = "number"}
local OPS = {[">="] = function(a, b) return a >= b end, [">"] = function(a, b) return a > b end,
             ["<="] = function(a, b) return a <= b end, ["<"] = function(a, b) return a < b end}

local function or_list(words)
  if #words == 1 then return words[1] end
  return table.concat(words, ", ", 1, #words - 1) .. " or " .. words[#words]
end

-- A declared rule -> {kind=, elem=, bounds=, choices=, help=, text=}: help is the rule as
-- --help shows it, text what a value must be ("an integer >= 1", "mlp or dcgan").
local function parse_rule(key, rule)
  local function bad(why) error(("config.parse: the rule of %s: %s"):format(key, why), 0) end
  if type(rule) == "table" then
    if #rule == 0 then bad("a table of choices needs at least one") end
    local set = {}
    for i, c in ipairs(rule) do
      if type(c) ~= "string" then bad("choice " .. i .. " is not a string") end
      set[c] = true
    end
    local text = or_list(rule)
    return {kind = "choice", choices = set, help = text, text = text}
  end
  if type(rule) ~= "string" then bad("must be a string or a table of choices") end
  local r = {bounds = {}, help = rule}
  local word, rest = rule:match("^list of (%a+)%s*(.-)%s*$")
  if word then
    r.kind, r.elem = "list", ELEMENT[word] or bad("'" .. word .. "': lists are of integers or numbers")
  else
    word, rest = rule:match("^(%a+)%s*(.-)%s*$")
    if not ARTICLE[word or ""] then bad("'" .. rule .. "' starts with none of integer, number, boolean, string, list of") end
    r.kind = word
  end
  if rest ~= "" then
    if r.kind ~= "integer" and r.kind ~= "number" and r.kind ~= "list" then bad("a range is for numbers only") end
    for part in (rest .. " and "):gmatch("(.-)%s+and%s+") do
      local op, n = part:match("^([<>]=?)%s*(%S+)$")
      n = tonumber(n)
      if not op or not n then bad("'" .. part .. "' is not a bound such as >= 1") end
      r.bounds[#r.bounds + 1] = {OPS[op], n}
    end
  end
  local range = rest ~= "" and " " .. rest or ""
  r.text = r.kind == "list" and ("a list of %ss%s"):format(r.elem, range) or ARTICLE[r.kind] .. range
  return r
end

-- n (a number, or a string of one) as a value of a scalar kind within bounds, or nil. A number
-- is a float when float is true (a float default), else an integer where it is integral.
local function scalar(kind, bounds, n, float)
  if type(n) == "string" then n = tonumber(n) end
  if type(n) ~= "number" or n ~= n or n == math.huge or n == -math.huge then return nil end
  if kind == "integer" then
    n = math.tointeger(n)
    if n == nil then return nil end
  elseif float then
    n = n + 0.0
  else
    n = math.tointeger(n) or n
  end
  for _, b in ipairs(bounds) do
    if not b[1](n, b[2]) then return nil end
  end
  return n
end

-- v (a command-line string, a JSON value or a default) as a value of rule r, or nil.
local function coerce(r, v)
  local kind = r.kind
  if kind == "integer" or kind == "number" then return scalar(kind, r.bounds, v, r.float) end
  if kind == "boolean" then
    if type(v) == "boolean" then return v end
    if type(v) ~= "string" then return nil end
    local l = v:lower()
    if TRUE[l] then return true end
    return FALSE[l]
  end
  if kind == "string" then
    if type(v) == "string" then return v end
    if type(v) == "number" then return tostring(v) end
    return nil
  end
  if kind == "choice" then return type(v) == "string" and r.choices[v] and v or nil end
  -- a list: JSON (an array, or a string of one), or comma-separated
  local items = v
  if type(v) == "string" then
    local json = rawget(ai, "json")
    if v:match("^%s*%[") and json then
      local ok, t = pcall(json.decode, v)
      items = ok and t or nil
    else
      items = {}
      for part in (v .. ","):gmatch("([^,]*),") do items[#items + 1] = part end
    end
  end
  if type(items) ~= "table" or #items == 0 then return nil end
  local out, n = {}, 0
  for _ in pairs(items) do n = n + 1 end
  if n ~= #items then return nil end
  for i, x in ipairs(items) do
    out[i] = scalar(r.elem, r.bounds, x, r.elem == "number")
    if out[i] == nil then return nil end
  end
  return out
end

--- config.coerce(declaration, v) -> v as the value of a declaration {default, "description",
-- rule} (a command-line string, a JSON value: as config.parse converts it), or nil when v breaks
-- the rule; without a rule, v itself. For values read back from elsewhere (a checkpoint's config).
function C.coerce(decl, v)
  if type(decl) ~= "table" then
    require("aiart.util").error("config.coerce: declaration must be a table {default, \"description\"[, rule]}, got " .. type(decl), 2)
  end
  if decl[3] == nil then return v end
  local r = parse_rule("value", decl[3])
  r.float = math.type(decl[1]) ~= "integer"
  return coerce(r, v)
end

------------------------------------------------------------------------------ without a rule

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

------------------------------------------------------------------------------ --help

local function help_text(defaults, opts, script, rules)
  local lines = {}
  if opts.description then lines[#lines + 1] = opts.description; lines[#lines + 1] = "" end
  if type(opts.help) == "string" then lines[#lines + 1] = opts.help; lines[#lines + 1] = "" end
  lines[#lines + 1] = ("usage: aiart-lua %s [key=value ...] [config=file.json]"):format(script or "script.lua")
  lines[#lines + 1] = ""
  rules = rules or {}
  local keys = sorted_keys(defaults)
  local desc = opts.descriptions or (type(opts.help) == "table" and opts.help) or {}
  local w, dw, rw = 6, 0, 0
  for _, k in ipairs(keys) do
    w = math.max(w, #k)
    dw = math.max(dw, #show(defaults[k]))
    if rules[k] then rw = math.max(rw, #rules[k].help) end
  end
  for a in pairs(opts.aliases or {}) do w = math.max(w, #a) end
  dw, rw = math.min(dw, 24), math.min(rw, 26)
  if rw > 0 then
    lines[#lines + 1] = ("  %-" .. w .. "s  %-" .. dw .. "s  %-" .. rw .. "s  %s"):format("key", "default", "rule", "description")
    for _, k in ipairs(keys) do
      local line = ("  %-" .. w .. "s  %-" .. dw .. "s  %-" .. rw .. "s  %s"):format(k, show(defaults[k]),
        rules[k] and rules[k].help or "", desc[k] or "")
      lines[#lines + 1] = line:gsub("%s+$", "")
    end
  else
    lines[#lines + 1] = "keys (default):"
    for _, k in ipairs(keys) do
      local d = desc[k]
      lines[#lines + 1] = ("  %-" .. w .. "s  %s%s"):format(k, show(defaults[k]), d and ("  -- " .. d) or "")
    end
  end
  for _, a in ipairs(sorted_keys(opts.aliases or {})) do
    lines[#lines + 1] = ("  %-" .. w .. "s  %s"):format(a, "another name of " .. opts.aliases[a])
  end
  lines[#lines + 1] = ("  %-" .. w .. "s  %s"):format("config", "a JSON file of settings, read before the other arguments")
  return table.concat(lines, "\n")
end
C.help_text = help_text

local function copy(v)
  if type(v) ~= "table" or is_computed(v) then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = copy(x) end
  return out
end

-- {default, "description"[, rule]} and nothing else
local function is_declaration(v)
  if type(v) ~= "table" or is_computed(v) or type(v[2]) ~= "string" then return false end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  if v[3] ~= nil and type(v[3]) ~= "string" and type(v[3]) ~= "table" then return false end
  return n == #v and (n == 2 or n == 3)
end

--- config.parse(args, defaults[, {help=, description=, name=, check=, exit=, print=, aliases=}]) -> cfg, given
-- opts.exit (default os.exit) and opts.print (default print) are called for --help. given is
-- the set of keys that the arguments or the JSON file set (the others took their defaults).
-- opts.aliases {old = "new"}: keys that stay accepted under another name (sample_steps=50 sets
-- steps); giving both is an error.
function C.parse(args, defaults, opts)
  opts = require("aiart.util").check_opts("config.parse", opts, {help = true, description = true, name = true,
    check = true, exit = true, print = true, descriptions = true, aliases = true})
  local fn = opts.name or "config"
  if type(defaults) ~= "table" then error("config.parse: defaults must be a table", 2) end
  local aliases = opts.aliases or {}
  if type(aliases) ~= "table" then error("config.parse: aliases must be a table {old = \"new\"}", 2) end
  for a, k in pairs(aliases) do
    if defaults[k] == nil or defaults[a] ~= nil then
      error(("config.parse: alias %s must name a key (%s) and not be one"):format(tostring(a), tostring(k)), 2)
    end
  end
  -- the key an argument names, its alias resolved; an alias and its key both given is an error
  local named = {}
  local function resolve(k)
    local to = aliases[k] or k
    if named[to] and named[to] ~= k then
      error(("%s: %s and %s are one option (%s is its other name): give one"):format(fn, named[to], k,
            aliases[k] and k or named[to]), 0)
    end
    named[to] = k
    return to
  end
  -- {key = {default, "description"[, rule]}, ...}: every entry in that form
  local spec = next(defaults) ~= nil
  for _, v in pairs(defaults) do
    if not is_declaration(v) then spec = false break end
  end
  local rules = {}
  if spec then
    local d, descs = {}, {}
    for k, v in pairs(defaults) do
      d[k], descs[k] = v[1], v[2]
      if v[3] ~= nil then rules[k] = parse_rule(k, v[3]) end
    end
    if type(opts.help) == "table" then for k, v in pairs(opts.help) do descs[k] = v end end
    opts = setmetatable({descriptions = descs}, {__index = opts})
    defaults = d
  end
  for k, def in pairs(defaults) do
    local r = rules[k]
    if is_computed(def) and not r then error(("config.parse: %s has a computed default and no rule"):format(k), 0) end
    if r then
      r.float = math.type(def) ~= "integer"
      if not is_computed(def) and coerce(r, def) == nil then
        error(("config.parse: the default of %s (%s) is not %s"):format(k, show(def), r.text), 0)
      end
    end
  end
  if args ~= nil and type(args) ~= "table" then error("config.parse: arguments must be a table (arg)", 2) end
  args = args or {}
  local cfg = {}
  for k, v in pairs(defaults) do
    if not is_computed(v) then cfg[k] = copy(v) end
  end
  local list, given = {}, {}
  for i = 1, #args do list[i] = tostring(args[i]) end
  -- --help first
  for _, a in ipairs(list) do
    if a == "--help" or a == "-h" or a == "help" or a == "-help" then
      local text = help_text(defaults, opts, args[0], rules)
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
        local boolean = rules[flag] and rules[flag].kind == "boolean" or type(defaults[flag]) == "boolean"
        if boolean then k, v = flag, "true"
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
        -- the file a recorded run read: its values are all here
        if key ~= "config" then
          key = aliases[key] or key
          if defaults[key] == nil then error(unknown(fn, tostring(key), defaults) .. " in " .. kv[2], 0) end
          local r = rules[key]
          if r then
            cfg[key] = coerce(r, v)
            if cfg[key] == nil then error(("%s: %s in %s must be %s, got %s"):format(fn, key, kv[2], r.text, show(v)), 0) end
          else
            cfg[key] = check_json(fn, key, v, defaults[key], kv[2])
          end
          given[key] = true
        end
      end
      cfg.config = kv[2]
    end
  end
  for _, kv in ipairs(pairs_) do
    local k, v = kv[1], kv[2]
    if not (k == "config" and defaults.config == nil) then
      k = resolve(k)
      if defaults[k] == nil then error(unknown(fn, k, defaults), 0) end
      local r = rules[k]
      if r then
        cfg[k] = coerce(r, v)
        if cfg[k] == nil then error(("%s: %s must be %s, got '%s'"):format(fn, kv[1], r.text, v), 0) end
      else
        cfg[k] = convert(fn, k, v, defaults[k])
      end
      given[k] = true
    end
  end
  -- the defaults computed from the others, in key order (none reads another computed key)
  for _, k in ipairs(sorted_keys(defaults)) do
    local def = defaults[k]
    if is_computed(def) and cfg[k] == nil then
      local v = def.f(cfg)
      cfg[k] = coerce(rules[k], v)
      if cfg[k] == nil then
        error(("config.parse: the default of %s computed from the other options (%s) is not %s"):format(k, show(v),
              rules[k].text), 0)
      end
    end
  end
  if opts.check then
    local msg = opts.check(cfg)
    if msg ~= nil then error(("%s: %s"):format(fn, tostring(msg)), 0) end
  end
  return cfg, given
end

require("aiart.util").strict_args(C, "config.")
return C
