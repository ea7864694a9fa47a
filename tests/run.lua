-- tests/run.lua: runs tests/test_*.lua (or those matching the first argument) and the C test
-- programs named in AIART_CTESTS, then prints the totals as the last line: "N passed, M failed".
package.path = "tests/?.lua;" .. package.path
local T = require "helper"
local ai = require "aiart"
local filter = arg and arg[1]

local files = {}
local p = io.popen("ls tests/test_*.lua 2>/dev/null")
for f in p:lines() do
  if not filter or f:find(filter, 1, true) then files[#files + 1] = f end
end
p:close()

local passed, failed, failures = 0, 0, {}

-- C test programs print their own "N passed, M failed" as their last line.
for cmd in (os.getenv("AIART_CTESTS") or ""):gmatch("%S+") do
  if not filter or cmd:find(filter, 1, true) then
    local h = io.popen(cmd .. " 2>&1")
    local out = h:read("a")
    local ok = h:close()
    local np, nf = out:match("(%d+) passed, (%d+) failed%s*$")
    io.write(out)
    if np then passed, failed = passed + tonumber(np), failed + tonumber(nf) end
    if not np or not ok then
      failed = failed + (np and 0 or 1)
      failures[#failures + 1] = cmd .. ": " .. (np and "exited with an error" or "printed no totals")
    end
  end
end

for _, f in ipairs(files) do
  T.cases = {}
  T.current_file = f
  local t0 = ai.clock() -- wall time (os.clock is the CPU time of every thread, and misses children)
  local chunk, err = loadfile(f)
  if not chunk then
    failed = failed + 1
    failures[#failures + 1] = f .. ": " .. err
  else
    local ok, lerr = pcall(chunk)
    if not ok then
      failed = failed + 1
      failures[#failures + 1] = f .. ": error while loading: " .. tostring(lerr)
    end
    local fp, ff = 0, 0
    for _, c in ipairs(T.cases) do
      local ok2, e = xpcall(c.fn, debug.traceback)
      if ok2 then fp = fp + 1 else
        ff = ff + 1
        failures[#failures + 1] = f .. ": " .. c.name .. ": " .. tostring(e)
      end
      collectgarbage()
    end
    passed, failed = passed + fp, failed + ff
    print(("%-32s %4d passed, %d failed  (%.1fs)"):format(f, fp, ff, ai.clock() - t0))
  end
end

for _, d in ipairs(T.tmpdirs or {}) do os.execute("rm -rf '" .. d .. "'") end
if #failures > 0 then
  print("\nFailures:")
  for _, m in ipairs(failures) do print("- " .. m) end
  print()
end
print(("%d passed, %d failed"):format(passed, failed))
os.exit(failed == 0 and 0 or 1)
