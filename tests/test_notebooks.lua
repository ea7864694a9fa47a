-- tests/test_notebooks.lua: every notebooks/*.ipynb runs top to bottom, headless, on the
-- aiart-lua kernel (notebooks/run_notebook.py --small: nbclient, a temporary kernelspec,
-- AIART_NB_SMALL=1), with no cell error and an image in every cell tagged "expect-image"; and
-- the notebooks are committed without outputs.
-- Needs Debian's python3-ipykernel, python3-jupyter-client, python3-nbclient, python3-nbformat
-- and jupyter-core: without them these tests FAIL and say what to install.
local T = package.loaded["helper"] or package.loaded["tests.helper"] or require("tests.helper")
local ai = require "aiart"

local shell_quote, readfile, find_python = T.shell_quote, T.readfile, T.jupyter_python

local BIN = T.abspath(T.binary())

local notebooks = {}
do
  local p = io.popen("ls notebooks/*.ipynb 2>/dev/null")
  for f in p:lines() do notebooks[#notebooks + 1] = f end
  p:close()
end

T.test("notebooks: the four notebooks are there", function()
  local have = {}
  for _, f in ipairs(notebooks) do have[f:match("[^/]+$")] = true end
  for _, name in ipairs({"tensors_and_autograd.ipynb", "gan.ipynb", "ddpm.ipynb", "style_transfer.ipynb"}) do
    T.ok(have[name], "notebooks/" .. name .. " is missing")
  end
end)

T.test("notebooks: the Jupyter packages are installed", function()
  local py, why = find_python()
  T.ok(py, why)
end)

for _, nb in ipairs(notebooks) do
  local name = nb:match("[^/]+$")

  T.test("notebooks: " .. name .. " is stored without outputs, for the aiart-lua kernel", function()
    local doc = ai.json.decode(assert(readfile(nb)))
    T.eq(doc.metadata.kernelspec.name, "aiart-lua")
    local images = 0
    for i, c in ipairs(doc.cells) do
      if c.cell_type == "code" then
        T.eq(#c.outputs, 0, name .. ": outputs of code cell " .. i)
        T.ok(c.execution_count == ai.json.null, name .. ": execution count of code cell " .. i)
        for _, tag in ipairs((c.metadata or {}).tags or {}) do
          if tag == "expect-image" then images = images + 1 end
        end
      end
    end
    T.ok(images > 0, name .. ": no cell is tagged expect-image")
    -- the parameter cell: AIART_NB_SMALL makes the notebook tiny
    local first
    for _, c in ipairs(doc.cells) do
      if c.cell_type == "code" then first = type(c.source) == "table" and table.concat(c.source) or c.source break end
    end
    T.ok(first and first:find("AIART_NB_SMALL", 1, true), name .. ": the first code cell reads AIART_NB_SMALL")
  end)

  T.test("notebooks: " .. name .. " runs top to bottom (AIART_NB_SMALL=1)", function()
    local py, why = find_python()
    if not py then error(why, 0) end
    local cmd = shell_quote(py) .. " notebooks/run_notebook.py --small --timeout 300 --aiart-lua " ..
                shell_quote(BIN) .. " " .. shell_quote(nb)
    local rc, out = T.sh(cmd)
    local ok = rc == 0
    local line = out:match("PASS [^\n]*")
    T.ok(ok and line, "run_notebook.py " .. nb .. ":\n" .. out:sub(-4000))
    local images = tonumber(line:match("(%d+) images"))
    T.ok(images and images > 0, line)
  end)
end
