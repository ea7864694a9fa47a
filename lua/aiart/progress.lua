--[[ aiart.progress (ai.progress): progress bars for training loops.

  local bar = ai.progress.bar{total=1000, desc="train", every=10, every_steps=nil, file=io.stdout,
                              tty=nil, start=0, disable=false}
      start: the count so far (resuming); disable: count but print nothing (the ranks other
      than the first of a distributed run)
  bar:update(n=1, {loss_d = 0.69, loss_g = 1.2})   -- values: numbers or 1-element tensors
  bar:write("a message")                            -- printed above the bar
  bar:close()                                       -- also on <close>
  for i in ai.progress.range(n, {desc=}) do ... end  -- the bar closes when the loop ends

On a terminal the bar is redrawn in place (\r) at most 10 times a second with the rate, the
ETA and the latest values. When the output is a file or a pipe, a plain line is printed every
`every` seconds (default 10) or every `every_steps` steps, and once at close. `tty` forces either
mode; otherwise isatty() on the file decides (TERM=dumb counts as no terminal), and plain lines
are the fallback where that cannot be asked. Under an MPI launcher, plain lines too: mpirun hands
its ranks a pseudo-terminal even when its own output goes to a file or a pipe.
]]
local ai = require "aiart"

local P = {}

local function helper() return rawget(ai, "_loader") end

local now = ai.clock
P.now = now

local function detect_tty(file)
  local D = rawget(ai, "_dist")
  if D and D.launched_size and D.launched_size() ~= 0 then return false end
  local K = helper()
  if K and K.isatty then
    local ok, r = pcall(K.isatty, file)
    if ok then
      local term = os.getenv("TERM")
      return r and term ~= "dumb"
    end
  end
  return false
end

local function fmt_time(s)
  if s ~= s or s == math.huge or s < 0 then return "?" end
  s = math.floor(s + 0.5)
  local h, m, sec = s // 3600, (s // 60) % 60, s % 60
  if h > 0 then return ("%d:%02d:%02d"):format(h, m, sec) end
  return ("%02d:%02d"):format(m, sec)
end
P.format_time = fmt_time

local function fmt_value(v)
  if math.type(v) == "integer" then return tostring(v) end
  if type(v) == "number" then
    if v ~= v then return "nan" end
    local a = math.abs(v)
    if a ~= 0 and (a < 1e-3 or a >= 1e5) then return ("%.3e"):format(v) end
    return ("%.4g"):format(v)
  end
  return tostring(v)
end

local function fmt_rate(r)
  if r ~= r or r == math.huge then return "? it/s" end
  if r >= 1 or r == 0 then return ("%.2f it/s"):format(r) end
  return ("%.2f s/it"):format(1 / r)
end

local Bar = {}
Bar.__index = Bar
Bar.__name = "ProgressBar"

local BAR_OPTS = {total = true, desc = true, every = true, every_steps = true, file = true, tty = true, width = true,
                  unit = true, initial = true, start = true, disable = true}

local null_file = {write = function() end, flush = function() end}

--- progress.bar(opts) -> bar
function P.bar(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("progress.bar: options must be a table", 2) end
  for k in pairs(opts) do
    if not BAR_OPTS[k] then
      local names = {}
      for n in pairs(BAR_OPTS) do names[#names + 1] = n end
      table.sort(names)
      error(("progress.bar: unknown option '%s' (known: %s)"):format(tostring(k), table.concat(names, ", ")), 2)
    end
  end
  if opts.total ~= nil and (type(opts.total) ~= "number" or opts.total < 0) then
    error("progress.bar: total must be a non-negative number", 2)
  end
  local file = opts.file or io.stdout
  local tty = opts.tty
  if opts.disable then file, tty = null_file, false end
  if tty == nil then tty = detect_tty(file) end
  local t = now()
  local initial = opts.initial or opts.start or 0
  if type(initial) ~= "number" then error("progress.bar: start must be a number", 2) end
  local self = setmetatable({
    total = opts.total, desc = opts.desc, every = opts.every or 10, every_steps = opts.every_steps,
    file = file, tty = tty, width = opts.width or tonumber(os.getenv("COLUMNS") or "") or 100,
    unit = opts.unit or "it",
    n = initial, n0 = initial, t0 = t, last_print = t, last_print_n = initial, values = {}, keys = {},
    closed = false, drawn_len = 0,
  }, Bar)
  if self.tty then self:_draw(true) end
  return self
end

function Bar:_values_str()
  local parts = {}
  for _, k in ipairs(self.keys) do parts[#parts + 1] = k .. "=" .. fmt_value(self.values[k]) end
  return table.concat(parts, " ")
end

function Bar:_stats()
  local elapsed = now() - self.t0
  local rate = elapsed > 0 and (self.n - self.n0) / elapsed or 0 / 0
  local eta = 0 / 0
  if self.total and rate == rate and rate > 0 then eta = (self.total - self.n) / rate end
  return elapsed, rate, eta
end

local utf8_ok = (os.getenv("LC_ALL") or os.getenv("LC_CTYPE") or os.getenv("LANG") or ""):upper():find("UTF%-?8") ~= nil

-- the in-place line of a terminal
function Bar:_draw(force)
  local t = now()
  if not force and t - (self.last_draw or 0) < 0.1 then return end
  self.last_draw = t
  local elapsed, rate, eta = self:_stats()
  local head = self.desc and (self.desc .. ": ") or ""
  local line
  if self.total and self.total > 0 then
    local frac = math.min(self.n / self.total, 1)
    local w = 20
    local fill = math.floor(frac * w + 1e-9)
    local full, empty = utf8_ok and "\u{2588}" or "#", utf8_ok and " " or "-"
    line = ("%s%3d%%|%s%s| %d/%d [%s<%s, %s]"):format(head, math.floor(frac * 100), full:rep(fill), empty:rep(w - fill),
      self.n, self.total, fmt_time(elapsed), fmt_time(eta), fmt_rate(rate))
  else
    line = ("%s%d [%s, %s]"):format(head, self.n, fmt_time(elapsed), fmt_rate(rate))
  end
  local v = self:_values_str()
  if v ~= "" then line = line .. " " .. v end
  local pad = self.drawn_len - utf8.len(line)
  self.file:write("\r", line, pad > 0 and (" "):rep(pad) or "")
  self.file:flush()
  self.drawn_len = utf8.len(line)
end

-- a plain line for files and pipes
function Bar:_line()
  local elapsed, rate, eta = self:_stats()
  local parts = {}
  if self.desc then parts[#parts + 1] = self.desc end
  if self.total then
    local pct = self.total > 0 and math.floor(100 * self.n / self.total) or 100
    parts[#parts + 1] = ("%d/%d (%d%%)"):format(self.n, self.total, pct)
  else
    parts[#parts + 1] = tostring(self.n)
  end
  parts[#parts + 1] = fmt_rate(rate)
  parts[#parts + 1] = "elapsed " .. fmt_time(elapsed)
  if self.total then parts[#parts + 1] = "eta " .. fmt_time(eta) end
  local v = self:_values_str()
  if v ~= "" then parts[#parts + 1] = v end
  self.file:write(table.concat(parts, " "), "\n")
  self.file:flush()
  self.last_print = now()
  self.last_print_n = self.n
end

--- bar:update(n=1[, values])
function Bar:update(n, values)
  if type(n) == "table" and values == nil then n, values = 1, n end
  n = n or 1
  if type(n) ~= "number" then error("bar:update: n must be a number", 2) end
  if self.closed then return self end
  self.n = self.n + n
  if values ~= nil then
    if type(values) ~= "table" then error("bar:update: values must be a table", 2) end
    for k, v in pairs(values) do
      if type(v) == "userdata" and v.item then v = v:item() end
      if self.values[k] == nil then
        self.keys[#self.keys + 1] = k
        table.sort(self.keys, function(a, b) return tostring(a) < tostring(b) end)
      end
      self.values[k] = v
    end
  end
  if self.tty then
    self:_draw(false)
  else
    local due = (self.every_steps and self.n - self.last_print_n >= self.every_steps)
      or (not self.every_steps and now() - self.last_print >= self.every)
    if due then self:_line() end
  end
  return self
end

--- bar:set(values): the values without a step
function Bar:set(values)
  if type(values) ~= "table" then error("bar:set: values must be a table, got " .. type(values), 2) end
  return self:update(0, values)
end

--- bar:write(msg): a line printed above the bar
function Bar:write(msg)
  if type(msg) ~= "string" and type(msg) ~= "number" then
    error("bar:write: msg must be a string or a number, got " .. type(msg), 2)
  end
  if self.tty then
    self.file:write("\r", (" "):rep(self.drawn_len), "\r", tostring(msg), "\n")
    self.drawn_len = 0
    self:_draw(true)
  else
    self.file:write(tostring(msg), "\n")
    self.file:flush()
  end
end

--- bar:close(): the final state (a newline on a terminal, a last line elsewhere)
function Bar:close()
  if self.closed then return end
  if self.tty then
    self:_draw(true)
    self.file:write("\n")
    self.file:flush()
  elseif self.last_print_n ~= self.n or self.n == 0 then
    self:_line()
  end
  self.closed = true
end
Bar.__close = Bar.close

--- progress.range(n[, opts]): for i in progress.range(n, {desc=}) do ... end; the bar (second
-- loop value) counts an iteration when the next one starts and closes when the loop ends
function P.range(n, opts)
  n = require("aiart.util").int("progress.range", "n", n, 0) -- 1e3 is 1000, as in Lua's own for loops
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.total = n
  local bar = P.bar(o)
  local i = 0
  return function()
    if i > 0 then bar:update(1) end
    if i >= n then
      bar:close()
      return nil
    end
    i = i + 1
    return i, bar
  end, nil, nil, bar
end

P.Bar = Bar
require("aiart.util").strict_args(P, "progress.")
require("aiart.util").strict_args(Bar, "progress.bar:", true)
return P
