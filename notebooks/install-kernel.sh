#!/bin/sh
# Installs the Jupyter kernelspec "aiart-lua" (notebooks/kernel/kernel.json, filled in with
# absolute paths of this repository's aiart-lua and notebooks/kernel/aiart_kernel.py).
#
#   sh notebooks/install-kernel.sh                 into `jupyter --data-dir`/kernels/aiart-lua
#   sh notebooks/install-kernel.sh --prefix DIR    into DIR/share/jupyter/kernels/aiart-lua
#                                                  (Jupyter finds it with JUPYTER_PATH=DIR/share/jupyter,
#                                                  or without when DIR is sys.prefix, /usr/local, ...)
#   sh notebooks/install-kernel.sh --dir DIR       into DIR itself (the kernelspec folder)
#
# Environment: AIART_LUA (the binary, default ./aiart-lua of this repository), PYTHON (a Python 3
# with ipykernel; default /usr/bin/python3 where Debian's python3-ipykernel lives, else python3).
set -e
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
dest=""
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ -n "$2" ] || { echo "install-kernel.sh: --prefix needs a directory" >&2; exit 2; }
              dest="$2/share/jupyter/kernels/aiart-lua"; shift 2 ;;
    --prefix=*) dest="${1#--prefix=}/share/jupyter/kernels/aiart-lua"; shift ;;
    --dir) [ -n "$2" ] || { echo "install-kernel.sh: --dir needs a directory" >&2; exit 2; }
           dest="$2"; shift 2 ;;
    --dir=*) dest="${1#--dir=}"; shift ;;
    --user) shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "install-kernel.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done

bin=${AIART_LUA:-$root/aiart-lua}
case "$bin" in /*) ;; *) bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")" ;; esac
[ -x "$bin" ] || { echo "install-kernel.sh: $bin is not built (run make)" >&2; exit 1; }

py=""
for c in ${PYTHON:-} /usr/bin/python3 python3; do
  if command -v "$c" >/dev/null 2>&1 && "$c" -c "import ipykernel" >/dev/null 2>&1; then
    py=$(command -v "$c"); break
  fi
done
if [ -z "$py" ]; then
  echo "install-kernel.sh: no Python 3 with ipykernel; install the Debian packages" >&2
  echo "  python3-ipykernel python3-jupyter-client jupyter-core (and jupyter-notebook to use it)" >&2
  exit 1
fi

if [ -z "$dest" ]; then
  if command -v jupyter >/dev/null 2>&1; then
    data=$(jupyter --data-dir)
  else
    data=$("$py" -c "from jupyter_core.paths import jupyter_data_dir; print(jupyter_data_dir())")
  fi
  dest="$data/kernels/aiart-lua"
fi

mkdir -p "$dest"
"$py" - "$here/kernel/kernel.json" "$dest/kernel.json" "$py" "$here/kernel/aiart_kernel.py" "$bin" <<'PYEOF'
import json, sys
src, out, py, kernel, binary = sys.argv[1:6]
text = open(src).read()
for key, val in (("@PYTHON@", py), ("@KERNEL_PY@", kernel), ("@AIART_LUA@", binary)):
    text = text.replace('"%s"' % key, json.dumps(val))
json.loads(text)
open(out, "w").write(text)
PYEOF
echo "installed the kernelspec aiart-lua in $dest"
