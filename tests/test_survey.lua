-- tests/test_survey.lua: the survey's own PyTorch code, ported line by line, runs as written.
-- Its GAN (section 5.2.1: Sigmoid discriminator + nn.BCELoss, Adam 2e-4) drives the
-- discriminator's outputs to exactly 0 and 1 in f32 within a few hundred steps; with a
-- gradient of 0 x inf there every weight turned NaN after about 1,000 steps.
local T = require "helper"

-- make asan runs the suite 5-10x slower: there the run is shorter (make test runs all 3,000)
local STEPS = os.getenv("ASAN_OPTIONS") and 600 or 3000

T.test("the survey's GAN (scripts/survey_gan.lua) trains 3,000 steps with finite losses and weights", function()
  local dir = T.tmpdir()
  local h = io.popen(("%s scripts/survey_gan.lua steps=%d out=%s 2>&1"):format(T.binary(), STEPS, dir))
  local out = h:read("a")
  local ok = h:close()
  T.ok(ok, "survey_gan.lua failed:\n" .. out)
  local d, g, w = out:match("steps " .. STEPS .. ", D_loss (%S+), G_loss (%S+), weights ([%a ]+),")
  T.ok(d, "the last line reports the run:\n" .. out)
  T.ok(tonumber(d) and tonumber(d) == tonumber(d), "a finite D loss: " .. tostring(d))
  T.ok(tonumber(g) and tonumber(g) == tonumber(g), "a finite G loss: " .. tostring(g))
  T.eq(w, "finite", "the generator's weights")
  local f = io.open(dir .. "/samples.png", "rb")
  T.ok(f, "the sample grid was written")
  if f then f:close() end
end)
