#!/usr/bin/env python3
"""tests/jupyter_driver.py: drives the aiart-lua Jupyter kernel for tests/test_jupyter.lua.

    python3 tests/jupyter_driver.py STEPS.json [--aiart-lua BIN]

Starts the kernel from a temporary kernelspec (notebooks/run_notebook.py's
temporary_kernelspec, i.e. notebooks/install-kernel.sh --prefix TMP and JUPYTER_PATH), runs the
steps, and prints one JSON document: {"kernelspec": {...}, "results": [...]}, a result per step:
  {"execute": code [, "interrupt_after": s] [, "timeout": s]}
        -> {"reply": execute_reply content, "outputs": [{"msg_type", "content"}, ...], "elapsed": s}
  {"complete": code [, "cursor_pos": n]}    -> {"reply": complete_reply content}
  {"inspect": code [, "cursor_pos": n]}     -> {"reply": inspect_reply content}
  {"is_complete": code}                     -> {"reply": is_complete_reply content}
  {"interrupt": s}                          an interrupt between cells, then s seconds of sleep
                                            -> {"alive": bool}
An execute step may have "stdin": [answers] (allow_stdin; the answers to input requests, whose
prompts come back as "prompts").
Exit status 2 when the Jupyter modules are missing (the message names the Debian packages).
"""
import json
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the repository
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "notebooks"))

import run_notebook  # noqa: E402


def main():
    args = sys.argv[1:]
    binary = None
    if "--aiart-lua" in args:
        i = args.index("--aiart-lua")
        binary = args[i + 1]
        del args[i : i + 2]
    missing = run_notebook.missing_modules()
    if missing:
        print("the Python modules %s are missing; install the Debian packages %s"
              % (", ".join(missing), run_notebook.DEBIAN_PACKAGES), file=sys.stderr)
        return 2
    steps = json.load(open(args[0]))
    from jupyter_client.manager import start_new_kernel

    out = {"results": []}
    with temporary_spec(binary) as spec:
        out["kernelspec"] = spec
        km, kc = start_new_kernel(kernel_name=run_notebook.KERNEL_NAME, startup_timeout=120)
        try:
            for step in steps:
                out["results"].append(run_step(km, kc, step))
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=False)
    json.dump(out, sys.stdout)
    return 0


class temporary_spec:
    def __init__(self, binary):
        self.cm = run_notebook.temporary_kernelspec(binary)

    def __enter__(self):
        path = self.cm.__enter__()
        with open(os.path.join(path, "kernels", run_notebook.KERNEL_NAME, "kernel.json")) as f:
            return json.load(f)

    def __exit__(self, *exc):
        return self.cm.__exit__(*exc)


def run_step(km, kc, step):
    t0 = time.time()
    if "execute" in step:
        outputs = []
        timer = None
        if step.get("interrupt_after"):
            timer = threading.Timer(step["interrupt_after"], km.interrupt_kernel)
            timer.start()
        answers = list(step.get("stdin", []))
        prompts = []

        def stdin_hook(msg):
            prompts.append(msg["content"].get("prompt", ""))
            kc.input(answers.pop(0) if answers else "")

        try:
            reply = kc.execute_interactive(
                step["execute"], timeout=step.get("timeout", 60), allow_stdin=bool(step.get("stdin")),
                # each step waits for its reply; without this, ipykernel may abort the request
                # that follows an error if it arrives while the kernel still drains the error
                stop_on_error=False,
                stdin_hook=stdin_hook,
                output_hook=lambda m: outputs.append({"msg_type": m["msg_type"], "content": m["content"]}))
            content = reply["content"]
        except TimeoutError as e:
            content = {"status": "timeout", "message": str(e)}
        finally:
            if timer:
                timer.cancel()
        return {"reply": content, "outputs": outputs, "prompts": prompts, "elapsed": time.time() - t0}
    if "interrupt" in step:  # an interrupt while no cell runs: nothing may happen
        km.interrupt_kernel()
        time.sleep(step["interrupt"])
        return {"alive": km.is_alive(), "elapsed": time.time() - t0}
    if "complete" in step:
        code = step["complete"]
        r = kc.complete(code, step.get("cursor_pos", len(code)), reply=True, timeout=30)
        return {"reply": r["content"], "elapsed": time.time() - t0}
    if "inspect" in step:
        code = step["inspect"]
        r = kc.inspect(code, step.get("cursor_pos", len(code)), reply=True, timeout=30)
        return {"reply": r["content"], "elapsed": time.time() - t0}
    if "is_complete" in step:
        msg_id = kc.is_complete(step["is_complete"])
        while True:
            r = kc.get_shell_msg(timeout=30)
            if r["parent_header"].get("msg_id") == msg_id:
                return {"reply": r["content"], "elapsed": time.time() - t0}
    return {"error": "unknown step %r" % (step,)}


if __name__ == "__main__":
    sys.exit(main())
