--[[ aiart.einsum: ai.einsum, Einstein summation as PyTorch's torch.einsum, lowered to the
core's ops: diagonal for a label repeated in one operand, sum for a label no one else needs, and
for each pair of operands (left to right) one batched matmul between permuted and reshaped
copies: batch labels (in both, kept), contracted labels (in both, not kept), and the labels of
one side. No loops over elements: the gradients (and second gradients) are the ops' own.
]]
local ai = require "aiart"
local util = require "aiart.util"

local raise = util.error

local E = {}

-- "ij", "...ij", "i...j": a list of labels, with "..." standing for the ellipsis dims
local function parse_term(term, what)
  local labels, seen_dots = {}, false
  local i = 1
  while i <= #term do
    local c = term:sub(i, i)
    if c == "." then
      if term:sub(i, i + 2) ~= "..." then raise(("einsum: %s: a '.' that is not part of '...'"):format(what), 3) end
      if seen_dots then raise(("einsum: %s: '...' appears twice"):format(what), 3) end
      seen_dots = true
      labels[#labels + 1] = "..."
      i = i + 3
    elseif c:match("^%a$") then
      labels[#labels + 1] = c
      i = i + 1
    else
      raise(("einsum: %s: '%s' is not a subscript (letters a-z, A-Z and '...')"):format(what, c), 3)
    end
  end
  return labels, seen_dots
end

local function index_of(list, v)
  for i, e in ipairs(list) do if e == v then return i end end
  return nil
end

-- The labels (in their order) of x that are in none of the sets; sums them out of x.
local function sum_out(x, labels, needed)
  local dims, rest = {}, {}
  for d, l in ipairs(labels) do
    local keep = false
    for _, set in ipairs(needed) do if set[l] then keep = true break end end
    if keep then rest[#rest + 1] = l else dims[#dims + 1] = d end
  end
  if #dims == 0 then return x, labels end
  return x:sum(dims, {keepdim = false}), rest
end

-- x with its dims in the order of `order` (labels) and reshaped to the products of the groups
local function group(x, labels, groups, sizes)
  local perm, shape = {}, {}
  for _, g in ipairs(groups) do
    local n = 1
    for _, l in ipairs(g) do
      perm[#perm + 1] = index_of(labels, l)
      n = n * sizes[l]
    end
    shape[#shape + 1] = n
  end
  -- size-1 dims broadcast against the other operand's size
  local want = {}
  for i, d in ipairs(perm) do want[i] = sizes[labels[d]] end
  local p = #perm > 0 and x:permute(perm) or x
  local same = true
  for i, n in ipairs(want) do if p.shape[i] ~= n then same = false break end end
  if not same then p = p:expand(want) end
  return p:reshape(shape)
end

-- The contraction of x (labels lx) and y (labels ly), keeping the labels in `keep`.
local function contract(x, lx, y, ly, keep, sizes)
  local inx, iny = {}, {}
  for _, l in ipairs(lx) do inx[l] = true end
  for _, l in ipairs(ly) do iny[l] = true end
  x, lx = sum_out(x, lx, {keep, iny})
  y, ly = sum_out(y, ly, {keep, inx})
  local batch, contracted, left, right = {}, {}, {}, {}
  for _, l in ipairs(lx) do
    if iny[l] then
      if keep[l] then batch[#batch + 1] = l else contracted[#contracted + 1] = l end
    else
      left[#left + 1] = l
    end
  end
  for _, l in ipairs(ly) do if not inx[l] then right[#right + 1] = l end end
  local a = group(x, lx, {batch, left, contracted}, sizes)
  local b = group(y, ly, {batch, contracted, right}, sizes)
  local shape, labels = {}, {}
  for _, g in ipairs({batch, left, right}) do
    for _, l in ipairs(g) do
      shape[#shape + 1] = sizes[l]
      labels[#labels + 1] = l
    end
  end
  return a:matmul(b):reshape(shape), labels
end

--- ai.einsum(equation, a, b, ... | {a, b, ...}) -> the sum over the repeated subscripts of
-- equation ("ij,jk->ik" a matrix product, "bij,bjk->bik" a batched one, "ii->i" a diagonal,
-- "ij->" a sum, "...ij->...ji", "i,j->ij" an outer product; without "->" the output is the
-- subscripts that appear once, in alphabetical order), as PyTorch's torch.einsum; contractions
-- run on the batched matmul, with gradients through the ops used.
function E.einsum(equation, ...)
  if type(equation) ~= "string" then
    raise("einsum: the equation (a string such as \"ij,jk->ik\") must come first, got " .. type(equation), 2)
  end
  local ops, n = { ... }, select("#", ...)
  if type(ops[1]) == "table" and not util.is_tensor(ops[1]) then -- einsum(eq, {a, b}), as PyTorch's list form
    if n > 1 then raise("einsum: give the operands as one list or one by one, not both", 2) end
    ops = ops[1]
    n = #ops
  end
  for i = 1, n do
    if not util.is_tensor(ops[i]) then
      raise(("einsum: operand %d must be a tensor, got %s"):format(i, type(ops[i])), 2)
    end
  end
  local eq = equation:gsub("%s", "")
  local lhs, rhs = eq:match("^(.-)%->(.*)$")
  if not lhs then lhs = eq end
  if rhs and rhs:find("->", 1, true) then raise("einsum: '->' appears twice", 2) end
  local terms = {}
  for term in (lhs .. ","):gmatch("([^,]*),") do terms[#terms + 1] = term end
  if #terms ~= n then
    raise(("einsum: the equation has %d operand%s, %d tensor%s given"):format(#terms, #terms == 1 and "" or "s",
      n, n == 1 and "" or "s"), 2)
  end
  -- labels of every operand, the ellipsis expanded into labels "1", "2", ... aligned right
  local parsed, ell = {}, 0
  for i, term in ipairs(terms) do
    local labels, dots = parse_term(term, "operand " .. i)
    local letters = #labels - (dots and 1 or 0)
    local nd = ops[i].ndim
    if (dots and letters > nd) or (not dots and letters ~= nd) then
      raise(("einsum: operand %d has %d dimensions, but its subscripts '%s' name %s%d"):format(i, nd, term,
        dots and "at least " or "", letters), 2)
    end
    parsed[i] = { labels = labels, e = dots and nd - letters or 0 }
    ell = math.max(ell, parsed[i].e)
  end
  local function expand_dots(labels, e)
    local out = {}
    for _, l in ipairs(labels) do
      if l == "..." then
        for k = ell - e + 1, ell do out[#out + 1] = tostring(k) end
      else
        out[#out + 1] = l
      end
    end
    return out
  end
  local count, sizes, x, lab = {}, {}, {}, {}
  for i, p in ipairs(parsed) do
    lab[i] = expand_dots(p.labels, p.e)
    local shape = ops[i].shape
    for d, l in ipairs(lab[i]) do
      count[l] = (count[l] or 0) + 1
      local s = shape[d]
      if sizes[l] == nil or sizes[l] == 1 then sizes[l] = s
      elseif s ~= 1 and s ~= sizes[l] then
        raise(("einsum: subscript '%s' has size %d in operand %d but %d before"):format(
          l:match("%d") and "..." or l, s, i, sizes[l]), 2)
      end
    end
  end
  local out
  if rhs then
    local labels = parse_term(rhs, "the output")
    out = expand_dots(labels, ell)
    local seen = {}
    for _, l in ipairs(out) do
      if seen[l] then raise(("einsum: output subscript '%s' appears twice"):format(l), 2) end
      seen[l] = true
      if not count[l] and not l:match("%d") then
        raise(("einsum: output subscript '%s' is in no operand"):format(l), 2)
      end
    end
  else
    out = {}
    for k = 1, ell do out[k] = tostring(k) end
    local once = {}
    for l, c in pairs(count) do if c == 1 and not l:match("%d") then once[#once + 1] = l end end
    table.sort(once) -- byte order: "A" .. "Z" before "a" .. "z", as PyTorch
    for _, l in ipairs(once) do out[#out + 1] = l end
  end
  local keep_out = {}
  for _, l in ipairs(out) do keep_out[l] = true end
  -- each operand alone: repeated labels become one (its diagonal), lone labels are summed out
  for i = 1, n do
    local t, labels = ops[i], lab[i]
    local again = true
    while again do
      again = false
      for d1 = 1, #labels do
        local d2 = index_of({ table.unpack(labels, d1 + 1) }, labels[d1])
        if d2 then
          local l = labels[d1]
          t = t:diagonal(0, d1, d1 + d2)
          table.remove(labels, d1 + d2)
          table.remove(labels, d1)
          labels[#labels + 1] = l
          again = true
          break
        end
      end
    end
    local others = {}
    for j = 1, n do
      if j ~= i then for _, l in ipairs(lab[j]) do others[l] = true end end
    end
    x[i], lab[i] = sum_out(t, labels, { keep_out, others })
  end
  local cur, lc = x[1], lab[1]
  for i = 2, n do
    local keep = {}
    for l in pairs(keep_out) do keep[l] = true end
    for j = i + 1, n do for _, l in ipairs(lab[j]) do keep[l] = true end end
    cur, lc = contract(cur, lc, x[i], lab[i], keep, sizes)
  end
  cur, lc = sum_out(cur, lc, { keep_out })
  local perm, same = {}, true
  for k, l in ipairs(out) do
    perm[k] = index_of(lc, l)
    if perm[k] ~= k then same = false end
  end
  if same then return cur == ops[1] and cur:view_as(cur) or cur end -- a view, never the operand itself
  return cur:permute(perm)
end

return E
