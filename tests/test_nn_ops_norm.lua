-- tests/test_nn_ops_norm.lua: forward values of normalisation (batch, group, instance and
-- layer norm), softmax and log_softmax, dropout, embedding and attention against naive Lua
-- reference implementations on tiny inputs, and their error messages.
-- Run alone: ./aiart-lua tests/run.lua test_nn_ops_norm
package.path = "tests/?.lua;" .. package.path
local T = require "helper"
local ai = require "aiart"
local ref = require "nn_ops_ref"

local test, near, expect_error = T.test, T.near, T.expect_error
local eq = T.eq  -- shared helpers (tests/helper.lua)
local R, L = ref.inputs(), ref.L

local count_errors = T.count_error_cases()

---------------------------------------------------------------------------- normalisation

local function channel_stats(xv, c) -- values of channel c of an N x C x ... nested table
  local vals = {}
  local function rec(v) if type(v) == "table" then for _, e in ipairs(v) do rec(e) end else vals[#vals + 1] = v end end
  for n = 1, #xv do rec(xv[n][c]) end
  local m = 0
  for _, v in ipairs(vals) do m = m + v end
  m = m / #vals
  local ss = 0
  for _, v in ipairs(vals) do ss = ss + (v - m) ^ 2 end
  return m, ss / #vals, ss / (#vals - 1), #vals
end

local function map_channels(xv, f) -- f(value, c) over an N x C x ... nested table
  local function rec(v, c) if type(v) == "table" then local o = {} for i, e in ipairs(v) do o[i] = rec(e, c) end return o end return f(v, c) end
  local out = {}
  for n = 1, #xv do
    out[n] = {}
    for c = 1, #xv[n] do out[n][c] = rec(xv[n][c], c) end
  end
  return out
end

test("batch_norm training: batch statistics, affine, running stats with momentum and unbiased var", function()
  local x = R({3, 2, 2, 2}, -2, 3)
  local w, b = R({2}), R({2})
  local rm = ai.tensor({0.5, -0.5}, {dtype = "f64"})
  local rv = ai.tensor({2, 0.5}, {dtype = "f64"})
  local xv, wv, bv = x:tolist(), w:tolist(), b:tolist()
  local stats = {}
  for c = 1, 2 do stats[c] = {channel_stats(xv, c)} end
  local eps = 1e-5
  local want = map_channels(xv, function(v, c) return (v - stats[c][1]) / math.sqrt(stats[c][2] + eps) * wv[c] + bv[c] end)
  local y = ai.batch_norm(x, rm, rv, w, b, {training = true, momentum = 0.3})
  near(y, want, 1e-10)
  near(rm:tolist(), {0.7 * 0.5 + 0.3 * stats[1][1], 0.7 * -0.5 + 0.3 * stats[2][1]}, 1e-12, "running mean")
  near(rv:tolist(), {0.7 * 2 + 0.3 * stats[1][3], 0.7 * 0.5 + 0.3 * stats[2][3]}, 1e-12, "running var is unbiased")
  -- default momentum 0.1, no affine
  local rm2, rv2 = ai.zeros({2}, {dtype = "f64"}), ai.ones({2}, {dtype = "f64"})
  local y2 = ai.batch_norm(x, rm2, rv2, nil, nil, {training = true, eps = 1e-3})
  near(y2, map_channels(xv, function(v, c) return (v - stats[c][1]) / math.sqrt(stats[c][2] + 1e-3) end), 1e-10)
  near(rm2:tolist(), {0.1 * stats[1][1], 0.1 * stats[2][1]}, 1e-12)
  near(rv2:tolist(), {0.9 + 0.1 * stats[1][3], 0.9 + 0.1 * stats[2][3]}, 1e-12)
  -- 2-D input (N x C)
  local x2 = R({5, 3})
  local x2v = x2:tolist()
  local y3 = ai.batch_norm(x2, nil, nil, nil, nil, {training = true})
  for c = 1, 3 do
    local m, v = channel_stats(x2v, c)
    for n = 1, 5 do near(y3[{n, c}]:item(), (x2v[n][c] - m) / math.sqrt(v + 1e-5), 1e-10) end
  end
  -- f32
  near(ai.batch_norm(x:float(), nil, nil, w:float(), b:float(), {training = true}), want, 1e-4, "f32")
end)

test("batch_norm eval uses the running statistics and leaves them alone", function()
  local x = R({2, 3, 2, 2})
  local rm = ai.tensor({0.1, -0.2, 0.3}, {dtype = "f64"})
  local rv = ai.tensor({0.5, 1.5, 2}, {dtype = "f64"})
  local w, b = R({3}), R({3})
  local xv, rmv, rvv, wv, bv = x:tolist(), rm:tolist(), rv:tolist(), w:tolist(), b:tolist()
  local want = map_channels(xv, function(v, c) return (v - rmv[c]) / math.sqrt(rvv[c] + 1e-5) * wv[c] + bv[c] end)
  near(ai.batch_norm(x, rm, rv, w, b, {training = false}), want, 1e-10, "with weight and bias")
  near(ai.batch_norm(x, rm, rv, w, b), want, 1e-10, "training defaults to false")
  near(ai.batch_norm(x, rm, rv), map_channels(xv, function(v, c) return (v - rmv[c]) / math.sqrt(rvv[c] + 1e-5) end), 1e-10)
  eq(rm:tolist(), {0.1, -0.2, 0.3})
  eq(rv:tolist(), {0.5, 1.5, 2})
end)

test("group_norm and instance_norm against per-group statistics", function()
  local x = R({2, 4, 3}, -2, 2)
  local w, b = R({4}), R({4})
  local xv, wv, bv = x:tolist(), w:tolist(), b:tolist()
  local function ref(G, eps, aff)
    local out = {}
    for n = 1, 2 do
      out[n] = {}
      local Cg = 4 // G
      for g = 0, G - 1 do
        local vals = {}
        for c = g * Cg + 1, (g + 1) * Cg do for _, v in ipairs(xv[n][c]) do vals[#vals + 1] = v end end
        local m, ss = 0, 0
        for _, v in ipairs(vals) do m = m + v end
        m = m / #vals
        for _, v in ipairs(vals) do ss = ss + (v - m) ^ 2 end
        local rs = 1 / math.sqrt(ss / #vals + eps)
        for c = g * Cg + 1, (g + 1) * Cg do
          out[n][c] = {}
          for i, v in ipairs(xv[n][c]) do out[n][c][i] = aff and (v - m) * rs * wv[c] + bv[c] or (v - m) * rs end
        end
      end
    end
    return out
  end
  near(ai.group_norm(x, 2, w, b), ref(2, 1e-5, true), 1e-10, "2 groups")
  near(ai.group_norm(x, 1), ref(1, 1e-5, false), 1e-10, "1 group")
  near(ai.group_norm(x, 4, w, b, {eps = 1e-2}), ref(4, 1e-2, true), 1e-10, "4 groups, eps")
  near(ai.instance_norm(x, w, b), ref(4, 1e-5, true), 1e-10, "instance_norm")
  near(ai.instance_norm(x), ref(4, 1e-5, false), 1e-10, "instance_norm no affine")
  near(ai.group_norm(x:float(), 2, w:float(), b:float()), ref(2, 1e-5, true), 1e-4, "f32")
  local x4 = R({1, 2, 2, 2})
  local g4 = ai.group_norm(x4, 1):tolist()
  local vals = {}
  for _, v in ipairs(x4:view(-1):tolist()) do vals[#vals + 1] = v end
  local m = 0
  for _, v in ipairs(vals) do m = m + v end
  m = m / 8
  local ss = 0
  for _, v in ipairs(vals) do ss = ss + (v - m) ^ 2 end
  near(g4[1][2][2][1], (x4[{1, 2, 2, 1}]:item() - m) / math.sqrt(ss / 8 + 1e-5), 1e-10, "4-D input")
end)

test("layer_norm over the last one and two dims", function()
  local x = R({2, 3, 4}, -2, 2)
  local xv = x:tolist()
  local w1, b1 = R({4}), R({4})
  local w1v, b1v = w1:tolist(), b1:tolist()
  local want = {}
  for i = 1, 2 do
    want[i] = {}
    for j = 1, 3 do
      local row = xv[i][j]
      local m, ss = 0, 0
      for _, v in ipairs(row) do m = m + v end
      m = m / 4
      for _, v in ipairs(row) do ss = ss + (v - m) ^ 2 end
      want[i][j] = {}
      for k, v in ipairs(row) do want[i][j][k] = (v - m) / math.sqrt(ss / 4 + 1e-5) * w1v[k] + b1v[k] end
    end
  end
  near(ai.layer_norm(x, 4, w1, b1), want, 1e-10, "last dim")
  near(ai.layer_norm(x, {4}, w1, b1), want, 1e-10, "table shape")
  local w2, b2 = R({3, 4}), R({3, 4})
  local w2v, b2v = w2:tolist(), b2:tolist()
  local want2 = {}
  for i = 1, 2 do
    local m, ss, n = 0, 0, 12
    for j = 1, 3 do for k = 1, 4 do m = m + xv[i][j][k] end end
    m = m / n
    for j = 1, 3 do for k = 1, 4 do ss = ss + (xv[i][j][k] - m) ^ 2 end end
    want2[i] = {}
    for j = 1, 3 do
      want2[i][j] = {}
      for k = 1, 4 do want2[i][j][k] = (xv[i][j][k] - m) / math.sqrt(ss / n + 1e-3) * w2v[j][k] + b2v[j][k] end
    end
  end
  near(ai.layer_norm(x, {3, 4}, w2, b2, {eps = 1e-3}), want2, 1e-10, "last two dims")
  local nw = ai.layer_norm(x, 4):tolist()
  local row = xv[2][3]
  local m = (row[1] + row[2] + row[3] + row[4]) / 4
  local v = 0
  for _, e in ipairs(row) do v = v + (e - m) ^ 2 end
  near(nw[2][3][1], (row[1] - m) / math.sqrt(v / 4 + 1e-5), 1e-10, "no affine")
end)

---------------------------------------------------------------------------- softmax

test("softmax and log_softmax along each dim", function()
  local x = R({2, 3, 4}, -3, 3)
  local xv = x:view(-1):tolist()
  local sh = {2, 3, 4}
  for d = 1, 3 do
    local y = ai.softmax(x, d):view(-1):tolist()
    local ly = ai.log_softmax(x, d):view(-1):tolist()
    for i = 1, 24 do
      local idx = {(i - 1) // 12 + 1, ((i - 1) // 4) % 3 + 1, (i - 1) % 4 + 1}
      local m, s = -math.huge, 0
      local function at(k) local j = {idx[1], idx[2], idx[3]}; j[d] = k; return xv[(j[1] - 1) * 12 + (j[2] - 1) * 4 + j[3]] end
      for k = 1, sh[d] do m = math.max(m, at(k)) end
      for k = 1, sh[d] do s = s + math.exp(at(k) - m) end
      near(y[i], math.exp(xv[i] - m) / s, 1e-12, "softmax dim " .. d)
      near(ly[i], xv[i] - m - math.log(s), 1e-12, "log_softmax dim " .. d)
    end
    near(ai.softmax(x, d):sum(d), ai.ones_like(x:sum(d)), 1e-12, "rows sum to 1")
  end
  near(x:softmax(-1), ai.softmax(x, 3), 0, "negative dim, method")
  local big = ai.tensor({1000, 1000, -1000})
  near(big:softmax(1):tolist(), {0.5, 0.5, 0}, 1e-6, "stable for large inputs")
  near(big:log_softmax(1):tolist(), {-math.log(2), -math.log(2), -2000 - math.log(2)}, 1e-3)
  near(ai.softmax(x:float(), 2), ai.softmax(x, 2), 1e-6, "f32")
end)

---------------------------------------------------------------------------- dropout, embedding, attention

test("dropout zeroes with probability p and scales the rest by 1/(1-p)", function()
  ai.manual_seed(8)
  local x = ai.ones(100000, {dtype = "f64"})
  local y = ai.dropout(x, 0.3)
  local zeros = y:eq(0):double():mean():item()
  near(zeros, 0.3, 0.01)
  local kept = y:masked_select(y:ne(0))
  near(kept:min():item(), 1 / 0.7, 1e-12)
  near(kept:max():item(), 1 / 0.7, 1e-12)
  near(y:mean():item(), 1, 0.02)
  local same = ai.dropout(x, 0.3, false)
  eq(same:sum():item(), 100000.0, "not training: identity")
  eq(ai.dropout(x, 0):sum():item(), 100000.0, "p = 0")
  eq(ai.dropout(x, 1):sum():item(), 0.0, "p = 1")
  ai.manual_seed(4)
  local a = ai.dropout(ai.ones(50), 0.5):tolist()
  ai.manual_seed(4)
  eq(ai.dropout(ai.ones(50), 0.5):tolist(), a, "reproducible with a seed")
  eq(ai.dropout(ai.ones(10)).shape, {10}, "default p = 0.5")
end)

test("embedding picks rows by 1-based index, any index shape", function()
  local w = R({5, 3})
  local wv = w:tolist()
  local e = ai.embedding(L{{1, 5}, {3, 3}}, w)
  eq(e.shape, {2, 2, 3})
  near(e[1][2], wv[5], 0)
  near(e[2][1], wv[3], 0)
  near(ai.embedding(L{2}, w), {wv[2]}, 0)
  near(ai.embedding(L(4), w), wv[4], 0, "0-dim index")
end)

test("scaled_dot_product_attention against softmax(QK^T/sqrt(d))V, with masks", function()
  local q, k, v = R({2, 3, 4}), R({2, 5, 4}), R({2, 5, 2})
  local qv, kv, vv = q:tolist(), k:tolist(), v:tolist()
  local function ref(mask, fmask)
    local out = {}
    for bb = 1, 2 do
      out[bb] = {}
      for i = 1, 3 do
        local sc, m = {}, -math.huge
        for j = 1, 5 do
          local s = 0
          for d = 1, 4 do s = s + qv[bb][i][d] * kv[bb][j][d] end
          s = s / 2
          if fmask then s = s + fmask[i][j] end
          if mask and not mask[i][j] then s = -math.huge end
          sc[j] = s
          m = math.max(m, s)
        end
        local z = 0
        for j = 1, 5 do sc[j] = math.exp(sc[j] - m); z = z + sc[j] end
        out[bb][i] = {}
        for e = 1, 2 do
          local acc = 0
          for j = 1, 5 do acc = acc + sc[j] / z * vv[bb][j][e] end
          out[bb][i][e] = acc
        end
      end
    end
    return out
  end
  near(ai.scaled_dot_product_attention(q, k, v), ref(), 1e-12)
  local mb = {{true, false, true, true, false}, {false, false, false, false, true}, {true, true, true, true, true}}
  near(ai.scaled_dot_product_attention(q, k, v, {mask = ai.tensor(mb)}), ref(mb), 1e-12, "boolean mask: true = attend")
  local fm = R({3, 5})
  near(ai.scaled_dot_product_attention(q, k, v, {mask = fm}), ref(nil, fm:tolist()), 1e-12, "float mask is added")
end)

---------------------------------------------------------------------------- errors

test("errors: normalisation, softmax, dropout, embedding, attention", function()
  local x = ai.zeros(2, 3, 4)
  expect_error("batch_norm: running_mean must be a contiguous 1-D tensor of 3 f32 values", function()
    return ai.batch_norm(x, ai.zeros(4), ai.ones(3), nil, nil, {training = true})
  end)
  expect_error("batch_norm: weight must be a contiguous 1-D tensor of 3 f32 values", function()
    return ai.batch_norm(x, nil, nil, ai.ones(2), nil, {training = true})
  end)
  expect_error("running_var must be", function() return ai.batch_norm(x, ai.zeros(3), ai.ones({3}, {dtype = "f64"}), nil, nil, {training = true}) end)
  expect_error("batch_norm: evaluation needs running_mean and running_var", function() return ai.batch_norm(x, nil, nil) end)
  expect_error("batch_norm: training needs more than one value per channel", function()
    return ai.batch_norm(ai.zeros(1, 3), nil, nil, nil, nil, {training = true})
  end)
  expect_error("batch_norm: input must be at least 2-D", function() return ai.batch_norm(ai.zeros(3), nil, nil, nil, nil, {training = true}) end)
  expect_error("group_norm: 3 channels do not divide into 2 groups", function() return ai.group_norm(x, 2) end)
  expect_error("group_norm: weight and bias must be 1-D tensors of 3 values", function() return ai.group_norm(x, 3, ai.ones(4)) end)
  expect_error("group_norm: input must be at least 2-D", function() return ai.group_norm(ai.zeros(3), 1) end)
  expect_error("instance_norm: input must be N x C x ...", function() return ai.instance_norm(ai.zeros(2, 3)) end)
  expect_error("layer_norm: normalized shape does not match the input's last dimensions", function() return ai.layer_norm(x, 3) end)
  expect_error("layer_norm: normalized shape does not match", function() return ai.layer_norm(x, {2, 3, 4, 5}) end)
  expect_error("layer_norm: weight must have the normalised shape", function() return ai.layer_norm(x, 4, ai.ones(3)) end)
  expect_error("normalized shape must be a size or a table of sizes", function() return ai.layer_norm(x, "a") end)
  expect_error("dimension 4 out of range", function() return ai.softmax(x, 4) end)
  expect_error("softmax: input must be a floating-point tensor (got i64)", function() return ai.softmax(ai.zeros({3}, {dtype = "i64"}), 1) end)
  expect_error("dropout: p must be in [0, 1] (got 1.5)", function() return ai.dropout(x, 1.5) end)
  expect_error("indices must be an i64 tensor (got f32)", function() return ai.embedding(ai.tensor{1}, ai.zeros(3, 2)) end)
  expect_error("embedding: weight must be 2-D", function() return ai.embedding(L{1}, ai.zeros(3)) end)
  expect_error("index 4 out of range", function() return ai.embedding(L{4}, ai.zeros(3, 2)) end)
  expect_error("scaled_dot_product_attention: q, k, v need 2+ dims", function() return ai.scaled_dot_product_attention(ai.zeros(3), ai.zeros(3), ai.zeros(3)) end)
  expect_error("inner sizes differ", function() return ai.scaled_dot_product_attention(ai.zeros(2, 3), ai.zeros(2, 4), ai.zeros(2, 4)) end)
end)

count_errors("test_nn_ops_norm.lua", 16)
