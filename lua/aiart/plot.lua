--[[ aiart.plot (ai.plot): loss curves drawn with tensor ops and saved as PNG.

  ai.plot.curves("runs/x/loss.png", records, {keys={"loss_d", "loss_g"}, x="step",
                 width=640, height=360, smooth=0.9, title="GAN", log_y=false, xlabel=, ylabel=})
      records: a list of tables (e.g. from ai.metrics.read), each with x and some keys
  ai.plot.render(records, opts) -> the 3 x height x width f32 image without saving it
  ai.plot.layout(records, opts) -> where render puts things: {plot=, legend=, labels=}, boxes
      {x0, y0, x1, y1} (pixels, 0-based, inclusive; each label's text in its field text)

Each series gets a colour (tab10); with smooth (0..1, an exponential moving average as in
TensorBoard) the raw values are drawn faint and the smoothed ones on top. The axes carry a few
"nice" ticks labelled with a built-in 3x5 bitmap font (digits, letters, . - + _ : = / ( )); the
x axis is labelled with xlabel (default: x), the y axis with ylabel (default: the key when there
is one), written upwards. The legend sits above the plot, so that it never hides a curve.
Pixels are gathered in Lua and written with one scatter per colour.
]]
local ai = require "aiart"

local P = {}

local PALETTE = {
  {0.122, 0.467, 0.706}, {1.000, 0.498, 0.055}, {0.173, 0.627, 0.173}, {0.839, 0.153, 0.157},
  {0.580, 0.404, 0.741}, {0.549, 0.337, 0.294}, {0.890, 0.467, 0.761}, {0.498, 0.498, 0.498},
  {0.737, 0.741, 0.133}, {0.090, 0.745, 0.812},
}

-- 3 x 5 glyphs, rows top to bottom, "1" = ink
local FONT = {
  ["0"] = "111101101101111", ["1"] = "010110010010111", ["2"] = "111001111100111", ["3"] = "111001111001111",
  ["4"] = "101101111001001", ["5"] = "111100111001111", ["6"] = "111100111101111", ["7"] = "111001010010010",
  ["8"] = "111101111101111", ["9"] = "111101111001111",
  a = "010101111101101", b = "110101110101110", c = "011100100100011", d = "110101101101110",
  e = "111100110100111", f = "111100110100100", g = "011100101101011", h = "101101111101101",
  i = "111010010010111", j = "001001001101010", k = "101101110101101", l = "100100100100111",
  m = "101111111101101", n = "110101101101101", o = "010101101101010", p = "110101110100100",
  q = "010101101110011", r = "110101110101101", s = "011100010001110", t = "111010010010010",
  u = "101101101101111", v = "101101101101010", w = "101101111111101", x = "101101010101101",
  y = "101101010010010", z = "111001010100111",
  ["."] = "000000000000010", ["-"] = "000000111000000", ["_"] = "000000000000111", ["+"] = "000010111010000",
  [":"] = "000010000010000", ["="] = "000111000111000", ["/"] = "001001010100100", ["("] = "010100100100010",
  [")"] = "010001001001010", [" "] = "000000000000000", [","] = "000000000010100", ["%"] = "101001010100101",
}
P.FONT = FONT

-- A canvas: pixel lists per colour, flushed into the image at the end.
local Canvas = {}
Canvas.__index = Canvas

local function canvas(w, h)
  local util = require "aiart.util"
  w, h = util.int("plot.canvas", "w", w, 1, 1 << 15), util.int("plot.canvas", "h", h, 1, 1 << 15)
  return setmetatable({w = w, h = h, layers = {}, order = {}, z = 1}, Canvas)
end

-- Later phases paint over earlier ones; within a phase, one layer per colour.
function Canvas:phase() self.z = self.z + 1 end

function Canvas:layer(color)
  local key = ("%d:%.3f,%.3f,%.3f"):format(self.z, color[1], color[2], color[3])
  local l = self.layers[key]
  if not l then
    l = {color = color, idx = {}}
    self.layers[key] = l
    self.order[#self.order + 1] = l
  end
  return l
end

function Canvas:dot(l, x, y)
  if x >= 0 and x < self.w and y >= 0 and y < self.h then
    local idx = l.idx
    idx[#idx + 1] = y * self.w + x + 1
  end
end

function Canvas:rect(color, x0, y0, x1, y1)
  local l = self:layer(color)
  for y = math.max(y0, 0), math.min(y1, self.h - 1) do
    for x = math.max(x0, 0), math.min(x1, self.w - 1) do self:dot(l, x, y) end
  end
end

-- a line from (x0, y0) to (x1, y1), `thick` pixels wide
function Canvas:line(color, x0, y0, x1, y1, thick)
  local l = self:layer(color)
  thick = thick or 1
  x0, y0, x1, y1 = math.floor(x0 + 0.5), math.floor(y0 + 0.5), math.floor(x1 + 0.5), math.floor(y1 + 0.5)
  local dx, dy = math.abs(x1 - x0), -math.abs(y1 - y0)
  local sx, sy = x0 < x1 and 1 or -1, y0 < y1 and 1 or -1
  local err = dx + dy
  local lo = -((thick - 1) // 2)
  local hi = lo + thick - 1
  while true do
    for oy = lo, hi do
      for ox = lo, hi do self:dot(l, x0 + ox, y0 + oy) end
    end
    if x0 == x1 and y0 == y1 then break end
    local e2 = 2 * err
    if e2 >= dy then err = err + dy; x0 = x0 + sx end
    if e2 <= dx then err = err + dx; y0 = y0 + sy end
  end
end

-- The ink of a string: f(dx, dy) for each inked pixel, dx along the text, dy down the glyphs.
local function glyph_pixels(s, str, f)
  str = tostring(str):lower()
  for ci = 1, #str do
    local g = FONT[str:sub(ci, ci)] or FONT["."]
    for r = 0, 4 do
      for c = 0, 2 do
        if g:byte(r * 3 + c + 1) == 49 then
          for oy = 0, s - 1 do
            for ox = 0, s - 1 do f((ci - 1) * 4 * s + c * s + ox, r * s + oy) end
          end
        end
      end
    end
  end
end

-- text with its top-left corner at (x, y); scale s; returns the width drawn
function Canvas:text(color, x, y, s, str)
  local l = self:layer(color)
  glyph_pixels(s, str, function(dx, dy) self:dot(l, x + dx, y + dy) end)
  return #tostring(str) * 4 * s - s
end

function P.text_width(str, s)
  if type(str) ~= "string" and type(str) ~= "number" then
    require("aiart.util").error("plot.text_width: str must be a string or a number, got " .. type(str), 2)
  end
  require("aiart.util").check("plot.text_width", "s", s, "number")
  return #tostring(str) * 4 * s - s end

-- text written upwards (rotated a quarter turn), its bottom-left corner at (x, y)
function Canvas:vtext(color, x, y, s, str)
  local l = self:layer(color)
  glyph_pixels(s, str, function(dx, dy) self:dot(l, x + dy, y - dx) end)
end

-- The image: white, then each layer in order.
function Canvas:render()
  local w, h = self.w, self.h
  local img = ai.ones(3, h * w)
  for _, l in ipairs(self.order) do
    local n = #l.idx
    if n > 0 then
      local idx = ai.tensor(l.idx, {dtype = "i64"}):view(1, n):expand(3, n):contiguous()
      local src = ai.tensor({{l.color[1]}, {l.color[2]}, {l.color[3]}}):expand(3, n):contiguous()
      img = ai.scatter(img, 2, idx, src)
    end
  end
  return img:view(3, h, w)
end

P.canvas = canvas

-- "nice" tick values covering [lo, hi]: about n of them, steps of 1, 2 or 5 x 10^k
local function ticks(lo, hi, n)
  if hi <= lo then hi = lo + 1 end
  local raw = (hi - lo) / math.max(n, 1)
  local mag = 10 ^ math.floor(math.log(raw, 10))
  local step = mag
  for _, m in ipairs{1, 2, 5, 10} do
    if raw <= m * mag then step = m * mag; break end
  end
  local out = {}
  local k = math.ceil(lo / step - 1e-9)
  while k * step <= hi + step * 1e-9 do
    local t = tonumber(("%.12g"):format(k * step)) -- 0.6, not 0.6000000000000001
    out[#out + 1] = k == 0 and 0 or t
    k = k + 1
  end
  return out, step
end
P.ticks = ticks

local function tick_label(v, step)
  require("aiart.util").check("plot.tick_label", "v", v, "number")
  require("aiart.util").check("plot.tick_label", "step", step, "number", true)
  if v == 0 then return "0" end
  local a = math.abs(v)
  if a >= 1e5 or a < 1e-3 then
    local s = ("%.1e"):format(v):gsub("%.0e", "e"):gsub("e%+0*", "e"):gsub("e%-0*", "e-")
    return s
  end
  if math.type(v) == "integer" or (v == math.floor(v) and step >= 1) then return ("%d"):format(math.floor(v + 0.5)) end
  local decimals = math.max(0, -math.floor(math.log(step, 10) + 1e-9))
  return ("%." .. decimals .. "f"):format(v)
end
P.tick_label = tick_label

local function ema(ys, f)
  local out, s = {}, nil
  for i, v in ipairs(ys) do
    if v == v and v ~= math.huge and v ~= -math.huge then
      s = s == nil and v or f * s + (1 - f) * v
    end
    out[i] = s or v
  end
  return out
end

local CURVE_OPTS = {keys = true, x = true, width = true, height = true, smooth = true, title = true, log_y = true,
                    colors = true, xlabel = true, ylabel = true}

local function series_of(records, key, xkey)
  local xs, ys = {}, {}
  for i, r in ipairs(records) do
    local v = r[key]
    if type(v) == "userdata" and v.item then v = v:item() end
    if type(v) == "number" then
      local x = r[xkey]
      xs[#xs + 1] = type(x) == "number" and x or i
      ys[#ys + 1] = v
    end
  end
  return xs, ys
end

-- the image and its layout
local function draw(records, opts)
  local fn = "plot.curves"
  opts = opts or {}
  if type(records) ~= "table" then error(fn .. ": records must be a list of tables", 3) end
  for k in pairs(opts) do
    if not CURVE_OPTS[k] then error(("%s: unknown option '%s'"):format(fn, tostring(k)), 3) end
  end
  local W, H = opts.width or 640, opts.height or 360
  if math.type(W) ~= "integer" or math.type(H) ~= "integer" or W < 64 or H < 48 then
    error(fn .. ": width and height must be integers of at least 64 and 48", 3)
  end
  local xkey = opts.x or "step"
  local keys = opts.keys
  if keys == nil then -- every numeric field but x
    local seen = {}
    keys = {}
    for _, r in ipairs(records) do
      for k, v in pairs(r) do
        if k ~= xkey and k ~= "time" and type(v) == "number" and not seen[k] then seen[k] = true; keys[#keys + 1] = k end
      end
    end
    table.sort(keys)
  end
  if type(keys) == "string" then keys = {keys} end
  local smooth = opts.smooth
  if smooth ~= nil and (type(smooth) ~= "number" or smooth < 0 or smooth >= 1) then
    error(fn .. ": smooth must be a number in [0, 1)", 3)
  end
  local log_y = opts.log_y
  local series = {}
  local xmin, xmax, ymin, ymax = math.huge, -math.huge, math.huge, -math.huge
  for si, k in ipairs(keys) do
    local xs, ys = series_of(records, k, xkey)
    if log_y then
      for i, v in ipairs(ys) do ys[i] = v > 0 and math.log(v, 10) or 0 / 0 end
    end
    local sm = smooth and smooth > 0 and ema(ys, smooth) or nil
    series[si] = {key = k, xs = xs, ys = ys, sm = sm}
    for i = 1, #xs do
      local y = ys[i]
      if y == y and y ~= math.huge and y ~= -math.huge then
        if xs[i] < xmin then xmin = xs[i] end
        if xs[i] > xmax then xmax = xs[i] end
        if y < ymin then ymin = y end
        if y > ymax then ymax = y end
      end
    end
  end
  local cv = canvas(W, H)
  local black, grid, gray = {0, 0, 0}, {0.9, 0.9, 0.9}, {0.35, 0.35, 0.35}
  local fs = H >= 240 and 2 or 1 -- font scale
  local colors = opts.colors or PALETTE
  local ylabel = opts.ylabel
  if ylabel == nil and #keys == 1 then ylabel = keys[1] end
  -- the legend: rows of entries (a line of the colour, then the key) above the plot, right-aligned
  local entry_h, gap = 5 * fs + 4, 10 * fs
  local rows, row = {}, nil
  local max_row = W - 16
  for si, s in ipairs(series) do
    local w = 16 + P.text_width(s.key, fs)
    if not row or row.w + gap + w > max_row then
      row = {w = -gap, items = {}}
      rows[#rows + 1] = row
    end
    row.items[#row.items + 1] = {si = si, w = w}
    row.w = row.w + gap + w
  end
  local title_h = opts.title and 12 * fs or 0
  local left = math.max(12 * fs * 4 // 2 + 16, 8 * 4 * fs + 10) + (ylabel and 5 * fs + 6 or 0)
  local right, top, bottom = 12, title_h + 6 + #rows * entry_h + 6, 10 * fs + 12
  local pw, ph = W - left - right, H - top - bottom
  local layout = {plot = {left, top, left + pw - 1, top + ph - 1}, labels = {}}
  if xmin > xmax then xmin, xmax, ymin, ymax = 0, 1, 0, 1 end
  if xmax == xmin then xmin, xmax = xmin - 1, xmax + 1 end
  if ymax == ymin then ymin, ymax = ymin - 1, ymax + 1 end
  local pad = (ymax - ymin) * 0.05
  ymin, ymax = ymin - pad, ymax + pad
  local function px(x) return left + (x - xmin) / (xmax - xmin) * (pw - 1) end
  local function py(y) return top + (1 - (y - ymin) / (ymax - ymin)) * (ph - 1) end
  -- grid, then ticks and labels
  local yt, ystep = ticks(ymin, ymax, math.max(3, ph // (30 * fs)))
  if log_y then -- whole powers of ten
    local lo, hi = math.ceil(ymin - 1e-9), math.floor(ymax + 1e-9)
    local every = math.max(1, math.ceil((hi - lo + 1) / math.max(3, ph // (30 * fs))))
    yt, ystep = {}, every
    for v = lo, hi, every do yt[#yt + 1] = v end
  end
  for _, v in ipairs(yt) do
    local y = math.floor(py(v) + 0.5)
    cv:line(grid, left, y, left + pw - 1, y, 1)
    cv:line(black, left - 4, y, left - 1, y, 1)
    local label = log_y and ("1e" .. tick_label(v, 1)) or tick_label(v, ystep)
    local lx, ly = left - 6 - P.text_width(label, fs), y - (5 * fs) // 2
    cv:text(gray, lx, ly, fs, label)
    layout.labels[#layout.labels + 1] = {lx, ly, lx + P.text_width(label, fs) - 1, ly + 5 * fs - 1, text = label}
  end
  local xt, xstep = ticks(xmin, xmax, math.max(2, pw // (45 * fs)))
  for _, v in ipairs(xt) do
    local x = math.floor(px(v) + 0.5)
    cv:line(grid, x, top, x, top + ph - 1, 1)
    cv:line(black, x, top + ph, x, top + ph + 3, 1)
    local label = tick_label(v, xstep)
    local tw = P.text_width(label, fs)
    -- centred on its tick, but kept inside the picture (the last one at the right edge)
    local lx = math.max(0, math.min(x - tw // 2, W - 2 - tw))
    cv:text(gray, lx, top + ph + 6, fs, label)
    layout.labels[#layout.labels + 1] = {lx, top + ph + 6, lx + tw - 1, top + ph + 5 + 5 * fs, text = label}
  end
  cv:phase()
  -- curves
  for si, s in ipairs(series) do
    local c = colors[(si - 1) % #colors + 1]
    local faint = {1 - (1 - c[1]) * 0.35, 1 - (1 - c[2]) * 0.35, 1 - (1 - c[3]) * 0.35}
    local function draw(ys, color, thick)
      local n = #s.xs
      -- many points: one averaged point per pixel column
      local xs2, ys2 = s.xs, ys
      if n > 2 * pw then
        local sum, cnt = {}, {}
        for i = 1, n do
          local y = ys[i]
          if y == y and y ~= math.huge and y ~= -math.huge then
            local col = math.floor(px(s.xs[i]) + 0.5)
            sum[col] = (sum[col] or 0) + y
            cnt[col] = (cnt[col] or 0) + 1
          end
        end
        xs2, ys2 = {}, {}
        for col = left, left + pw do
          if cnt[col] then
            xs2[#xs2 + 1] = xmin + (col - left) / (pw - 1) * (xmax - xmin)
            ys2[#ys2 + 1] = sum[col] / cnt[col]
          end
        end
        n = #xs2
      end
      local prevx, prevy
      for i = 1, n do
        local y = ys2[i]
        if y == y and y ~= math.huge and y ~= -math.huge then
          local x1, y1 = px(xs2[i]), py(y)
          if prevx then cv:line(color, prevx, prevy, x1, y1, thick) else cv:line(color, x1, y1, x1, y1, thick) end
          prevx, prevy = x1, y1
        else
          prevx = nil
        end
      end
    end
    if s.sm then
      draw(s.ys, faint, 1)
      draw(s.sm, c, 2)
    else
      draw(s.ys, c, 2)
    end
  end
  cv:phase()
  -- axes
  cv:line(black, left - 1, top, left - 1, top + ph, 1)
  cv:line(black, left - 1, top + ph, left + pw - 1, top + ph, 1)
  -- legend: above the plot, right-aligned with it
  local lx0, ly0, lx1, ly1 = math.huge, math.huge, -1, -1
  for ri, r in ipairs(rows) do
    local ly = title_h + 6 + (ri - 1) * entry_h
    local lx = math.max(2, left + pw - r.w)
    for _, it in ipairs(r.items) do
      local s = series[it.si]
      local c = colors[(it.si - 1) % #colors + 1]
      cv:line(c, lx, ly + (5 * fs) // 2, lx + 12, ly + (5 * fs) // 2, 2)
      cv:text(black, lx + 16, ly, fs, s.key)
      lx0, ly0, lx1, ly1 = math.min(lx0, lx), math.min(ly0, ly), math.max(lx1, lx + it.w - 1), ly + 5 * fs - 1
      lx = lx + it.w + gap
    end
  end
  if #rows > 0 then layout.legend = {lx0, ly0, lx1, ly1} end
  if opts.title then
    local tw = P.text_width(opts.title, fs)
    cv:text(black, (W - tw) // 2, 4, fs, opts.title)
  end
  local xl = opts.xlabel or xkey
  local xw = P.text_width(xl, fs)
  cv:text(gray, left + pw - xw, H - 5 * fs - 2, fs, xl)
  layout.labels[#layout.labels + 1] = {left + pw - xw, H - 5 * fs - 2, left + pw - 1, H - 3, text = xl}
  if ylabel then -- upwards, centred on the plot's height, left of the tick labels
    local yw = P.text_width(ylabel, fs)
    local by = math.min(H - 1, top + (ph + yw) // 2)
    local x = left - 6
    for _, l in ipairs(layout.labels) do if l[2] < top + ph then x = math.min(x, l[1]) end end
    x = math.max(2, x - 5 * fs - 3 * fs)
    cv:vtext(gray, x, by, fs, ylabel)
    layout.labels[#layout.labels + 1] = {x, by - yw + 1, x + 5 * fs - 1, by, text = ylabel}
  end
  return cv:render(), layout
end

--- plot.render(records, opts) -> 3 x H x W f32 image
function P.render(records, opts)
  local img = draw(records, opts)
  return img
end

--- plot.layout(records, opts) -> {plot=, legend=, labels=}: the boxes of render's picture
function P.layout(records, opts)
  local _, layout = draw(records, opts)
  return layout
end

--- plot.curves(path, records, opts) -> path (a PNG of width x height)
function P.curves(path, records, opts)
  if type(path) ~= "string" then error("plot.curves: path must be a string", 2) end
  local img = draw(records, opts) -- (not through render: its errors name the caller of curves)
  require("aiart.image").save(path, img)
  return path
end

require("aiart.util").strict_args(P, "plot.")
return P
