-- tests/test_fuzz.lua: replays the fuzz corpora (tests/fuzz/corpus/<target>/) and every input a
-- fuzzer ever crashed on (tests/fuzz/regressions/<target>/, written by `make fuzz`) through the
-- Lua API in a child process: each must load or give a Lua error, never crash.
local T = require "helper"

local q = T.shell_quote

T.test("fuzz regressions and corpora replay without a crash", function()
  local total, regressions = 0, 0
  for _, target in ipairs{"idx", "json", "png", "safetensors"} do
    local files = {}
    for _, sub in ipairs{"corpus", "regressions"} do
      local p = io.popen("ls -1 tests/fuzz/" .. sub .. "/" .. target .. " 2>/dev/null")
      for f in p:lines() do
        if not f:match("%.md$") then
          files[#files + 1] = q("tests/fuzz/" .. sub .. "/" .. target .. "/" .. f)
          if sub == "regressions" then regressions = regressions + 1 end
        end
      end
      p:close()
    end
    if #files > 0 then
      local rc, out = T.sh(("%s tests/fuzz/replay.lua %s %s"):format(T.binary(), target, table.concat(files, " ")))
      local n = tonumber(out:match("replayed (%d+)"))
      if rc ~= 0 or n ~= #files then
        local last = "?"
        for f in out:gmatch("F ([^\n]+)") do last = f end
        error(("%s: the replay stopped (exit %s) at %s:\n%s"):format(target, tostring(rc), last, out:sub(-1500)), 0)
      end
      total = total + n
    end
  end
  print(("test_fuzz.lua: %d fuzz inputs replayed (%d regression inputs)"):format(total, regressions))
  T.ok(total > 20, "only " .. total .. " inputs found")
end)
