-- tests/reliability/signal_at.lua: a signal sent to an unmodified training script at a known
-- step, for the tests of its SIGINT/SIGTERM handling. Loaded before the script through LUA_INIT:
--   LUA_INIT=@tests/reliability/signal_at.lua AIART_SIGNAL_AT=5 aiart-lua scripts/train_gan.lua ...
-- sends the process SIGINT (AIART_SIGNAL=TERM: SIGTERM) from a child while the metrics record of
-- step 5 is written, as a user pressing Ctrl-C during that step would; AIART_SIGNAL_TWICE=1
-- sends a second one 0.3 s later (while the first is being handled). The kill runs in a child
-- of io.popen: os.execute's system() ignores SIGINT in the caller while the child runs.
local ai = require "aiart"
local at = tonumber(os.getenv("AIART_SIGNAL_AT") or "")
if at then
  local sig = os.getenv("AIART_SIGNAL") or "INT"
  local twice = os.getenv("AIART_SIGNAL_TWICE") == "1"
  local f = assert(io.open("/proc/self/stat", "r"))
  local pid = f:read("a"):match("^(%d+)")
  f:close()
  local metrics = ai.metrics
  local logger, sent = metrics.logger, false
  metrics.logger = function(...)
    local log = logger(...)
    local write = log.write
    log.write = function(self, rec)
      local r = write(self, rec)
      if not sent and rec.step == at then
        sent = true
        local cmd = ("kill -%s %s"):format(sig, pid)
        if twice then cmd = cmd .. (" ; sleep 0.3 ; kill -%s %s"):format(sig, pid) end
        io.popen(cmd):close()
      end
      return r
    end
    return log
  end
end
