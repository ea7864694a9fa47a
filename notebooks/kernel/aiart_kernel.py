#!/usr/bin/env python3
"""aiart_kernel: a Jupyter kernel for aiart-lua (Lua 5.4 with the tensor module `ai`).

A wrapper kernel (as bash_kernel): ipykernel's Kernel speaks the Jupyter protocol, and a child
process

    aiart-lua -i -e 'require("aiart.jupyter").install()'

keeps the Lua state across cells. The two talk in JSON lines (see lua/aiart/jupyter.lua):
requests on the child's stdin; on its stdout, messages prefixed by MARK (streams, displays,
results, errors, input requests, and "done" at the end of each request) and, between them, stray
text that the child wrote to stdout without going through Lua's print (shown as stdout).

The binary: $AIART_LUA (the kernelspec written by notebooks/install-kernel.sh sets it), else
aiart-lua next to this repository's notebooks/ folder, else aiart-lua on PATH.

Interrupt (Jupyter's interrupt button, by signal or message): SIGINT reaches this process, which
forwards one SIGINT to the child while a request runs; the host's handler makes the running Lua
code raise "interrupted", so the cell ends with an Interrupted error and the state survives.
The child lives in its own session, so the frontend's signals reach it only through here.
"""
import codecs
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

from ipykernel.kernelbase import Kernel

__version__ = "0.1.0"

MARK = b"\x02aiart\x03"


def find_binary():
    env = os.environ.get("AIART_LUA")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    cand = os.path.normpath(os.path.join(here, "..", "..", "aiart-lua"))
    if os.access(cand, os.X_OK):
        return cand
    return shutil.which("aiart-lua") or "aiart-lua"


def _set_pdeathsig():
    """In the child: die with the kernel (Linux), so that a killed kernel leaves no busy Lua."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Child:
    """The aiart-lua process and the threads that read its stdout and stderr into a queue of
    events: ("msg", dict), ("stdout", text), ("stderr", text), ("eof", returncode)."""

    def __init__(self, binary, cwd=None):
        self.binary = binary
        self.events = queue.Queue()
        env = dict(os.environ)
        env["AIART_JUPYTER"] = "1"
        env.setdefault("TERM", "dumb")
        self.proc = subprocess.Popen(
            [binary, "-i", "-e", 'require("aiart.jupyter").install()'],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
            bufsize=0,
            start_new_session=True,
            preexec_fn=_set_pdeathsig,
        )
        self._open_streams = 2
        self._lock = threading.Lock()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    # -- reading
    def _stream_done(self):
        with self._lock:
            self._open_streams -= 1
            last = self._open_streams == 0
        if last:
            rc = self.proc.wait()
            self.events.put(("eof", rc))

    def _read_stderr(self):
        dec = codecs.getincrementaldecoder("utf-8")("replace")
        fd = self.proc.stderr.fileno()
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                break
            text = dec.decode(data)
            if text:
                self.events.put(("stderr", text))
        self._stream_done()

    def _read_stdout(self):
        dec = codecs.getincrementaldecoder("utf-8")("replace")
        fd = self.proc.stdout.fileno()
        buf = b""
        while True:
            try:
                data = os.read(fd, 1 << 20)
            except OSError:
                data = b""
            if not data:
                break
            buf += data
            buf = self._parse(buf, dec)
        if buf:
            text = dec.decode(buf, final=True)
            if text:
                self.events.put(("stdout", text))
        self._stream_done()

    def _parse(self, buf, dec):
        """Takes the complete messages and the stray text out of buf; returns the rest."""
        pos, n, put = 0, len(buf), self.events.put
        while pos < n:
            i = buf.find(MARK, pos)
            if i < 0:
                # keep what could be the start of a MARK
                keep = 0
                for k in range(min(len(MARK) - 1, n - pos), 0, -1):
                    if buf.endswith(MARK[:k]):
                        keep = k
                        break
                if n - keep > pos:
                    text = dec.decode(buf[pos : n - keep])
                    if text:
                        put(("stdout", text))
                return buf[n - keep :]
            if i > pos:
                text = dec.decode(buf[pos:i])
                if text:
                    put(("stdout", text))
            start = i + len(MARK)
            nl = buf.find(b"\n", start)
            nxt = buf.find(MARK, start, nl if nl >= 0 else n)
            if nxt >= 0:
                pos = nxt  # a message cut short (a write interrupted by a signal): dropped
                continue
            if nl < 0:
                return buf[i:]  # wait for the rest of the line
            pos = nl + 1
            try:
                msg = json.loads(buf[start:nl].decode("utf-8", "replace"))
            except ValueError:
                continue
            if isinstance(msg, dict):
                put(("msg", msg))
        return b""

    # -- writing
    def send(self, obj):
        data = (json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass")
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def alive(self):
        return self.proc.poll() is None

    def interrupt(self):
        if self.alive():
            try:
                os.kill(self.proc.pid, signal.SIGINT)
            except OSError:
                pass

    def close(self, timeout=2.0):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass


class ChildDied(Exception):
    pass


class AiartKernel(Kernel):
    implementation = "aiart_kernel"
    implementation_version = __version__
    language = "lua"
    language_version = "5.4"
    language_info = {
        "name": "lua",
        "version": "5.4",
        "mimetype": "text/x-lua",
        "file_extension": ".lua",
        "codemirror_mode": "lua",
        "pygments_lexer": "lua",
    }
    banner = "aiart-lua: Lua 5.4 with tensors, autograd and neural networks (the global `ai`)"
    help_links = [{"text": "Lua 5.4 manual", "url": "https://www.lua.org/manual/5.4/"}]

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.binary = find_binary()
        self.child = None
        self._busy = False
        self._interrupt_sent = False
        self._notice = None
        try:
            self._start_child()
        except ChildDied as e:  # shown by the first cell, which tries again
            self.log.error("%s", e)
            self.child = None

    # -- the child process
    def _start_child(self):
        try:
            self.child = Child(self.binary, cwd=os.getcwd())
        except OSError as e:
            self.child = None
            raise ChildDied(f"cannot run {self.binary}: {e}")
        self._busy, self._interrupt_sent = True, False
        try:
            deadline = time.time() + 60
            while True:
                kind, val = self.child.events.get(timeout=max(0.1, deadline - time.time()))
                if kind == "msg" and val.get("ready"):
                    self.language_version = str(val.get("version", "5.4"))
                    break
                if kind == "eof":
                    raise ChildDied(f"{self.binary} exited with status {val} before it was ready")
                if kind == "stderr":
                    sys.__stderr__.write(val)
        except queue.Empty:
            self.child.proc.kill()
            raise ChildDied(f"{self.binary} did not start within 60 s")
        finally:
            self._busy = False

    def _ensure_child(self):
        if self.child is None or not self.child.alive():
            old = self.child
            if old is not None:
                old.close(0.5)
            self._start_child()
            if old is not None:
                self._notice = "[aiart-lua was restarted: the variables of earlier cells are gone]\n"

    # SIGINT handling: ipykernel installs default_int_handler around shell handlers; this kernel
    # forwards the signal to the child instead (once per request: a second SIGINT would kill a
    # child whose Lua code has not yet run the hook of the first).
    def _on_sigint(self, signum, frame):
        if self._busy and not self._interrupt_sent and self.child is not None:
            self._interrupt_sent = True
            self.child.interrupt()

    def pre_handler_hook(self):
        self.saved_sigint_handler = signal.signal(signal.SIGINT, self._on_sigint)

    def post_handler_hook(self):
        signal.signal(signal.SIGINT, self.saved_sigint_handler)

    # -- requests
    def _request(self, obj, on_event=None):
        """Sends one request and returns its "done" message; other events go to on_event."""
        self._ensure_child()
        self._busy, self._interrupt_sent = True, False
        try:
            try:
                self.child.send(obj)
            except (BrokenPipeError, OSError):
                pass  # the child died: its eof event comes below
            while True:
                try:
                    kind, val = self.child.events.get(timeout=0.2)
                except queue.Empty:
                    continue
                if kind == "msg" and val.get("done"):
                    return val
                if kind == "eof":
                    raise ChildDied(f"aiart-lua exited (status {val})")
                if kind == "msg" and "input" in val:
                    self._answer_input(val["input"])
                    continue
                if on_event:
                    on_event(kind, val)
        finally:
            self._busy = False

    def _answer_input(self, req):
        value = None
        if self._allow_stdin_now:
            try:
                if req.get("password"):
                    value = self.getpass(req.get("prompt", ""))
                else:
                    value = self.raw_input(req.get("prompt", ""))
            except Exception as e:  # StdinNotImplementedError: the frontend has no stdin
                self.log.debug("input request: %s", e)
                value = None
        try:
            self.child.send({"op": "input_reply", "value": value})
        except OSError:
            pass

    _allow_stdin_now = False

    def _stream(self, name, text):
        if text and not self._silent:
            self.send_response(self.iopub_socket, "stream", {"name": name, "text": text})

    def do_execute(self, code, silent, store_history=True, user_expressions=None, allow_stdin=False):
        self._silent = silent
        self._allow_stdin_now = allow_stdin
        self._allow_stdin = allow_stdin  # what Kernel.raw_input checks (IPythonKernel sets it too)
        n = self.execution_count
        reply = {"status": "ok", "execution_count": n, "payload": [], "user_expressions": {}}
        if not code.strip():
            return reply
        pending = {"name": None, "text": [], "size": 0, "since": 0.0}
        error = {}

        def flush():
            if pending["name"]:
                self._stream(pending["name"], "".join(pending["text"]))
            pending["name"], pending["text"], pending["size"] = None, [], 0

        def on_event(kind, val):
            if kind in ("stdout", "stderr"):
                name, text = kind, val
            elif "stream" in val:
                name, text = val["stream"], val.get("text", "")
            else:
                name = None
            if name is not None:
                if pending["name"] not in (None, name):
                    flush()
                pending["name"] = name
                if not pending["text"]:
                    pending["since"] = time.monotonic()
                pending["text"].append(text)
                pending["size"] += len(text)
                # merged while more output waits, but sent at least every 0.1 s
                if (pending["size"] > 65536 or self.child.events.empty()
                        or time.monotonic() - pending["since"] > 0.1):
                    flush()
                return
            flush()
            if "display" in val:
                if not silent:
                    self.send_response(
                        self.iopub_socket, "display_data", {"data": val["display"], "metadata": {}}
                    )
            elif "result" in val:
                if not silent:
                    self.send_response(
                        self.iopub_socket,
                        "execute_result",
                        {"execution_count": n, "data": {"text/plain": val["result"]}, "metadata": {}},
                    )
            elif "error" in val:
                err = val["error"]
                error.update(
                    ename=str(err.get("ename", "LuaError")),
                    evalue=str(err.get("evalue", "")),
                    traceback=[str(x) for x in err.get("traceback", [])],
                )
                self.send_response(self.iopub_socket, "error", dict(error))

        try:
            self._ensure_child()
            if self._notice:
                self._stream("stderr", self._notice)
                self._notice = None
            self._request({"op": "execute", "code": code, "n": n}, on_event)
            flush()
        except ChildDied as e:
            flush()
            error.update(ename="KernelDied", evalue=str(e), traceback=[f"\x1b[0;31m{e}\x1b[0m",
                         "(the next cell starts a new aiart-lua; earlier variables are gone)"])
            self.send_response(self.iopub_socket, "error", dict(error))
        if error:
            reply.update(status="error", **error)
        return reply

    def do_complete(self, code, cursor_pos):
        before = code[:cursor_pos]
        line = before.rsplit("\n", 1)[-1]
        m = re.search(r"[A-Za-z_0-9.:]*$", line)
        text = m.group(0) if m else ""
        # `:help`-style commands are for the REPL; in a cell a leading ':' is not a name
        if text.startswith(":"):
            text = text.lstrip(":")
        start = cursor_pos - len(text)
        try:
            done = self._request({"op": "complete", "text": text, "before": line[: len(line) - len(text)]})
            matches = [str(x) for x in done.get("matches", [])]
        except ChildDied:
            matches = []
        return {"status": "ok", "matches": matches, "cursor_start": start, "cursor_end": cursor_pos,
                "metadata": {}}

    def do_inspect(self, code, cursor_pos, detail_level=0, omit_sections=()):
        left = re.search(r"[A-Za-z_0-9.:]*$", code[:cursor_pos]).group(0)
        right = re.match(r"[A-Za-z_0-9]*", code[cursor_pos:]).group(0)
        expr = (left + right).strip(".:")
        if not expr:
            return {"status": "ok", "found": False, "data": {}, "metadata": {}}
        try:
            done = self._request({"op": "inspect", "expr": expr})
        except ChildDied:
            return {"status": "ok", "found": False, "data": {}, "metadata": {}}
        found = bool(done.get("found"))
        data = {"text/plain": done.get("text", "")} if found else {}
        return {"status": "ok", "found": found, "data": data, "metadata": {}}

    def do_is_complete(self, code):
        try:
            done = self._request({"op": "is_complete", "code": code})
        except ChildDied:
            return {"status": "unknown"}
        r = {"status": done.get("status", "unknown")}
        if r["status"] == "incomplete":
            r["indent"] = done.get("indent", "")
        return r

    def do_shutdown(self, restart):
        if self.child is not None:
            self.child.close()
            self.child = None
        return {"status": "ok", "restart": restart}


def main():
    from ipykernel.kernelapp import IPKernelApp

    IPKernelApp.launch_instance(kernel_class=AiartKernel)


if __name__ == "__main__":
    main()
