-- tests/fuzz/replay.lua TARGET FILE...: feeds each file to the Lua face of a fuzzed reader, as
-- the libFuzzer harness tests/fuzz/fuzz_TARGET.c does (PNG inputs also with their chunk CRCs
-- repaired). Each must load or give a Lua error; prints "F <file>" before each one (so that a
-- crash names its input) and "replayed <n>" at the end. Run by tests/test_fuzz.lua.
local ai = require "aiart"
local target = arg[1]

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local crc_table = {}
for i = 0, 255 do
  local c = i
  for _ = 1, 8 do c = (c & 1 == 1) and (0xEDB88320 ~ (c >> 1)) or (c >> 1) end
  crc_table[i] = c
end
local function crc32(s, i, j)
  local c = 0xFFFFFFFF
  for k = i, j do c = crc_table[(c ~ s:byte(k)) & 0xFF] ~ (c >> 8) end
  return c ~ 0xFFFFFFFF
end
-- the harness' CRC repair: every chunk gets its correct CRC
local function repair(s)
  if #s < 8 or #s > (1 << 20) then return nil end
  local b = {s:byte(1, #s)}
  local p = 9
  while p + 11 <= #s do
    local n = string.unpack(">I4", s, p)
    if n > #s - (p - 1) - 12 then break end
    local crc = crc32(s, p + 4, p + 7 + n)
    local c = string.pack(">I4", crc)
    for k = 1, 4 do b[p + 7 + n + k] = c:byte(k) end
    p = p + 12 + n
  end
  local parts = {}
  for k = 1, #b, 4096 do parts[#parts + 1] = string.char(table.unpack(b, k, math.min(#b, k + 4095))) end
  return table.concat(parts)
end

local READERS = {
  idx = function(path) return ai.io.read_idx(path) end,
  safetensors = function(path) return ai.io.load_safetensors(path) end,
  png = function(path)
    local s = read(path)
    pcall(ai.io.load_png, s)
    local r = repair(s)
    if r and r ~= s then pcall(ai.io.load_png, r) end
    if s:sub(1, 8) == "\137PNG\r\n\26\n" then return ai.io.load_png(path) end
  end,
  json = function(path)
    local v = ai.json.decode(read(path))
    local e = ai.json.encode(v)
    assert(ai.json.encode(ai.json.decode(e)) == e, "json: encode is not a fixed point")
  end,
}
local reader = assert(READERS[target], "unknown target " .. tostring(target))
local n = 0
for i = 2, #arg do
  io.stderr:write("F ", arg[i], "\n")
  local ok, err = pcall(reader, arg[i])
  if not ok and tostring(err):find("fixed point", 1, true) then error(arg[i] .. ": " .. tostring(err), 0) end
  n = n + 1
  collectgarbage()
end
print("replayed " .. n)
