#!/usr/bin/env python3
"""run_notebook.py: runs notebooks top to bottom, headless, with the aiart-lua kernel.

    python3 notebooks/run_notebook.py [--small] [--timeout S] [--output DIR] NOTEBOOK.ipynb ...

The kernelspec comes from notebooks/install-kernel.sh, installed into a temporary folder put
first on JUPYTER_PATH: nothing is installed into the user's Jupyter folders. --small sets
AIART_NB_SMALL=1 (the notebooks' parameter cell then picks tiny sizes).

A notebook fails when a cell raises an error (unless the cell is tagged "raises-exception"),
when a cell tagged "expect-image" shows no image/png, or when a cell tagged "expect-output"
shows nothing. One line per notebook: "PASS name: N cells, M images, T s" or "FAIL name: why".
The exit status is 0 when every notebook passed, 1 otherwise, 2 when Jupyter is missing.

Environment: AIART_LUA (the binary; default ./aiart-lua of this repository), PYTHON (the
interpreter written into the kernelspec; default: this one).
"""
import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
KERNEL_NAME = "aiart-lua"
DEBIAN_PACKAGES = "python3-ipykernel python3-jupyter-client python3-nbclient python3-nbformat jupyter-core"


def missing_modules():
    missing = []
    for mod in ("ipykernel", "jupyter_client", "nbclient", "nbformat"):
        try:
            __import__(mod)
        except ImportError:
            missing.append(mod)
    return missing


@contextlib.contextmanager
def temporary_kernelspec(aiart_lua=None):
    """Installs the aiart-lua kernelspec into a temporary prefix put first on JUPYTER_PATH."""
    tmp = tempfile.mkdtemp(prefix="aiart-kernelspec-")
    env = dict(os.environ)
    env["PYTHON"] = sys.executable
    if aiart_lua:
        env["AIART_LUA"] = aiart_lua
    old = os.environ.get("JUPYTER_PATH")
    try:
        subprocess.run(["sh", os.path.join(HERE, "install-kernel.sh"), "--prefix", tmp], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        path = os.path.join(tmp, "share", "jupyter")
        os.environ["JUPYTER_PATH"] = path + (os.pathsep + old if old else "")
        yield path
    finally:
        if old is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = old
        shutil.rmtree(tmp, ignore_errors=True)


def cell_images(cell):
    return sum(1 for o in cell.get("outputs", []) if "image/png" in o.get("data", {}))


def run_one(path, timeout, output_dir=None):
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    name = os.path.basename(path)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, startup_timeout=120, kernel_name=KERNEL_NAME,
                            resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}})
    t0 = time.time()
    failure = None
    try:
        client.execute()
    except CellTimeoutError as e:
        failure = "a cell ran past the timeout of %s s: %s" % (timeout, str(e).strip().splitlines()[0:1])
    except CellExecutionError as e:
        failure = "a cell failed:\n" + str(e)
    except Exception as e:  # kernel death, startup failure
        failure = "%s: %s" % (type(e).__name__, e)
    elapsed = time.time() - t0
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    images = sum(cell_images(c) for c in code_cells)
    if failure is None:
        for i, c in enumerate(code_cells, 1):
            tags = c.get("metadata", {}).get("tags", [])
            if "expect-image" in tags and cell_images(c) == 0:
                failure = "code cell %d is tagged expect-image but shows no image:\n%s" % (i, c.source)
                break
            if "expect-output" in tags and not c.get("outputs"):
                failure = "code cell %d is tagged expect-output but shows nothing:\n%s" % (i, c.source)
                break
    if output_dir:
        os.makedirs(output_dir, exist_ok=True)
        nbformat.write(nb, os.path.join(output_dir, name))
    if failure:
        print("FAIL %s: %s" % (name, failure), flush=True)
        return False
    print("PASS %s: %d cells, %d images, %.1f s" % (name, len(code_cells), images, elapsed), flush=True)
    return True


def main(argv=None):
    ap = argparse.ArgumentParser(description="Run notebooks headless with the aiart-lua kernel.")
    ap.add_argument("notebooks", nargs="+")
    ap.add_argument("--small", action="store_true", help="set AIART_NB_SMALL=1 (tiny sizes, for tests)")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per cell (default 600)")
    ap.add_argument("--output", help="write the executed notebooks (with outputs) into this folder")
    ap.add_argument("--aiart-lua", help="the aiart-lua binary (default $AIART_LUA or the repository's)")
    args = ap.parse_args(argv)
    missing = missing_modules()
    if missing:
        print("FAIL: the Python modules %s are missing; install the Debian packages %s"
              % (", ".join(missing), DEBIAN_PACKAGES), flush=True)
        return 2
    if args.small:
        os.environ["AIART_NB_SMALL"] = "1"
    ok = True
    with temporary_kernelspec(args.aiart_lua):
        for nb in args.notebooks:
            ok = run_one(nb, args.timeout, args.output) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
