-- tests/test_badinput.lua: every public function of ai called with bad input (wrong types,
-- wrong shapes, empty and zero-size tensors, NaN/Inf, out-of-range dims and indices,
-- non-contiguous and expanded views, huge sizes, missing/empty/truncated/oversized/foreign
-- files) must give a Lua error or a valid result, never a crash. The cases run in child
-- processes (tests/reliability/badinput_child.lua): a crash takes down only the child, the
-- case that crashed is named, and a new child goes on after it.
-- Misuse cases: each function's working call with an unknown option key added, and with an
-- extra trailing argument: a call that then SUCCEEDS ignored an argument it should have refused;
-- those are named in the output and fail the test.
-- AIART_BADINPUT_STRIDE=k runs every k-th generated case (default 4; 1 runs all of them, as
-- `make badinput` does), every targeted case and every misuse case.
local T = require "helper"

local abs, sh_quote = T.abspath, T.shell_quote
local function read_all(path) return T.readfile(path) or "" end

-- Runs the cases [first, ...] in one child; returns the protocol facts.
local function run_child(bin, child, dir, first, stride)
  local proto, errf = dir .. "/proto", dir .. "/stderr"
  os.remove(proto)
  -- ulimit -v keeps a runaway allocation from taking the machine (not for ASan, whose shadow
  -- memory needs a huge address space; there max_allocation_size_mb does the same job)
  local limit = os.getenv("ASAN_OPTIONS") and "" or "ulimit -v 6000000; "
  local cmd = ("cd %s && %s AIART_BADINPUT_STRIDE=%d timeout -k 5 600 %s %s %s %d </dev/null >/dev/null 2>%s; echo $?")
      :format(sh_quote(dir), limit, stride, sh_quote(bin), sh_quote(child), sh_quote(proto), first, sh_quote(errf))
  local p = io.popen(cmd)
  local status = tonumber(p:read("a"):match("(%d+)%s*$"))
  p:close()
  local r = {status = status, total = nil, last_started = nil, finished = false, done = {}, kinds = {}, accepted = {}, nobase = {}}
  for line in read_all(proto):gmatch("[^\n]+") do
    local idx, lang, desc = line:match("^A (%d+) (%a+) (.*)$")
    if idx then r.accepted[#r.accepted + 1] = {lang, desc} end
    local name = line:match("^B %d+ (.*)$")
    if name then r.nobase[#r.nobase + 1] = name end
    local tag, a, b = line:match("^(%u+) ?(%d*) ?(%a*)")
    if tag == "N" then r.total = tonumber(a)
    elseif tag == "C" then r.last_started = tonumber(a)
    elseif tag == "R" then r.done[tonumber(a)] = true; r.kinds[b] = (r.kinds[b] or 0) + 1
    elseif tag == "END" then r.finished = true end
  end
  r.stderr = read_all(errf)
  return r
end

T.test("bad input: every public function, every kind of bad argument: errors, never crashes", function()
  local bin = abs(T.binary())
  local child = abs("tests/reliability/badinput_child.lua")
  local dir = T.tmpdir()
  -- every case takes about 4 minutes of CPU; `make test` runs every 4th (all the special ones)
  local stride = tonumber(os.getenv("AIART_BADINPUT_STRIDE") or "") or 4
  local first, total, crashes, kinds, ran, accepted, nobase = 1, nil, {}, {}, 0, {}, {}
  local restarts = 0
  while true do
    local r = run_child(bin, child, dir, first, stride)
    total = total or r.total
    for k, n in pairs(r.kinds) do kinds[k] = (kinds[k] or 0) + n; ran = ran + n end
    for _, d in ipairs(r.accepted) do accepted[#accepted + 1] = d end
    for _, n in ipairs(r.nobase) do nobase[#nobase + 1] = n end
    if r.finished and r.status == 0 then break end
    -- the child died: the case it started and did not finish is the culprit
    local culprit = r.last_started
    if r.finished then culprit = nil end
    local desc = "?"
    if culprit then
      local p = io.popen(("cd %s && %s %s x describe %d 2>&1"):format(sh_quote(dir), sh_quote(bin), sh_quote(child), culprit))
      desc = p:read("a"):gsub("%s+$", "")
      p:close()
    end
    -- the sanitizer's or the runtime's own words, where it starts
    local at = r.stderr:find("runtime error") or r.stderr:find("ERROR: %a+Sanitizer") or math.max(1, #r.stderr - 1500)
    local tail = r.stderr:sub(at, at + 1500)
    crashes[#crashes + 1] = ("case %s (%s): exit status %s\n%s"):format(tostring(culprit), desc, tostring(r.status), tail)
    ran = ran + (culprit and 1 or 0)
    if not culprit or (total and culprit >= total) then break end
    first = culprit + 1
    restarts = restarts + 1
    if restarts > 25 then crashes[#crashes + 1] = "too many crashes, stopped" break end
  end
  print(("test_badinput.lua: %d bad-input cases run (of %d; stride %d): %d Lua errors, %d 'not enough memory', %d valid results, %d stopped as too slow, %d crashes")
        :format(ran, total or 0, stride, kinds.err or 0, kinds.oom or 0, kinds.ok or 0, kinds.slow or 0, #crashes))
  -- Every call that accepted a misuse fails the test, C binding or Lua library alike.
  local failing, c_accepted = {}, 0
  for _, a in ipairs(accepted) do
    if a[1] == "C" then c_accepted = c_accepted + 1 end
    failing[#failing + 1] = a[2]
  end
  print(("test_badinput.lua: misuse cases (a working call plus an unknown option key, or plus an extra argument): %d refused, %d accepted (%d by C functions), %d with no working call (%d C functions)")
        :format(kinds.refused or 0, kinds.accepted or 0, c_accepted, kinds.nobase or 0, #nobase))
  for _, d in ipairs(failing) do print("  accepted: " .. d) end
  if #nobase > 0 then print("  C functions the misuse cases could not reach (add a row to BASE): " .. table.concat(nobase, ", ")) end
  T.badinput_cases = ran
  if #crashes > 0 then error(#crashes .. " crash(es):\n" .. table.concat(crashes, "\n---\n"), 0) end
  if #failing > 0 then
    error(#failing .. " call(s) succeeded with an argument that should have been refused:\n  " .. table.concat(failing, "\n  "), 0)
  end
  T.ok(#nobase == 0, "C functions without a working call for the misuse cases: " .. table.concat(nobase, ", "))
  T.ok((kinds.refused or 0) >= 1200, "expected at least 1200 refused misuse cases, got " .. tostring(kinds.refused))
  T.ok(total and total > 100000, "expected over 100000 cases, got " .. tostring(total))
end)
