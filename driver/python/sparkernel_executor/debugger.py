"""The JupyterLab debugger, inside the executor: debugpy, driven over the Debug Adapter
Protocol (DAP) by the kernel's debug_requests.

The kernel forwards each debug_request on the control pipe with a number; the control
thread hands it to this module's own thread ("debugger"), which answers with a
{"type": "debug_reply", "id", "content"} event, and DAP events become "debug_event"s. Both
threads run while a cell runs or sits at a breakpoint, and neither is traced or suspended
by debugpy (pydevd skips threads marked as its own daemons, as ipykernel marks its control
thread).

What the protocol asks of a Jupyter kernel beside plain DAP (JupyterLab's debugger relies
on it, ipykernel defines it): `debugInfo` (where cells' files are and how they are named:
the shell compiles each cell as ipykernel does, /tmp/ipykernel_<pid>/<murmur2 hash>.py),
`dumpCell` (write a cell to that file, for breakpoints set before it runs),
`inspectVariables` / `richInspectVariables` / `copyToGlobals` (the variable explorer,
stopped or not), `modules`, `source`; `attach` is completed with the adapter's address and
the start handshake (initialized, then configurationDone) is done here, as the adapter
expects it before it answers attach. Requests debugpy sends answers to are matched by
sequence number (ours, mapped back to the client's), so this thread may wait for one
answer while events and other answers arrive."""
from __future__ import annotations

import itertools
import json
import os
import queue
import re
import socket
import sys
import threading
from typing import Any, Callable

ANSWER_TIMEOUT = 60.0  # s: a DAP request debugpy has not answered by then fails

# Names of the user namespace the variable explorer leaves out, as ipykernel does.
_HIDDEN = {"__name__", "__doc__", "__package__", "__loader__", "__spec__", "__annotations__",
           "__builtins__", "__builtin__", "__display__", "get_ipython", "debugpy", "exit",
           "quit", "In", "Out", "_oh", "_dh", "_", "__", "___"}
_HIDDEN_RE = re.compile(r"^(_\d|_i)")


def untraced(thread: threading.Thread) -> threading.Thread:
    """Marks a thread of the executor's own as pydevd's: never traced, never suspended."""
    thread.pydev_do_not_trace = True  # type: ignore[attr-defined]
    thread.is_pydev_daemon_thread = True  # type: ignore[attr-defined]
    return thread


_debugger: "Debugger | None" = None


def breakpointhook(*args: Any, **kwargs: Any) -> Any:
    """breakpoint() as in ipykernel, where debugpy's hook is installed: it stops in the
    JupyterLab debugger when one is attached, and does nothing otherwise (a notebook never
    waits at a prompt nobody sees). PYTHONBREAKPOINT, when set, is Python's own rule."""
    if os.environ.get("PYTHONBREAKPOINT"):
        return sys.__breakpointhook__(*args, **kwargs)
    if _debugger is not None and _debugger.started:
        import debugpy

        debugpy.breakpoint()
    return None


def available() -> bool:
    import importlib.util

    return importlib.util.find_spec("debugpy") is not None


def _visible(name: str) -> bool:
    return name not in _HIDDEN and not _HIDDEN_RE.match(name)


def _response(request: dict, body: dict | None = None, success: bool = True,
              message: str | None = None) -> dict:
    out = {"type": "response", "seq": 0, "request_seq": request.get("seq"),
           "success": success, "command": request.get("command")}
    if body is not None:
        out["body"] = body
    if message is not None:
        out["message"] = message
    return out


class DebuggerError(Exception):
    """A request that cannot be answered: its DAP response says why."""


class _Adapter:
    """The TCP connection to debugpy's adapter: Content-Length framed JSON both ways.
    Responses go to whoever waits for their request_seq; events to on_event."""

    def __init__(self, endpoint: tuple[str, int], on_event: Callable[[dict], None]) -> None:
        self.sock = socket.create_connection(endpoint, timeout=10)
        self.sock.settimeout(None)
        self.on_event = on_event
        self.seq = itertools.count(1)
        self.waiting: dict[int, queue.Queue] = {}
        self.lock = threading.Lock()
        untraced(threading.Thread(target=self._read, name="debugpy-reader", daemon=True)).start()

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def send(self, request: dict) -> queue.Queue:
        """Sends a copy of request under our own seq; returns where its response lands."""
        answer: queue.Queue = queue.Queue(1)
        with self.lock:
            seq = next(self.seq)
            self.waiting[seq] = answer
            body = json.dumps({**request, "seq": seq}).encode()
            try:
                self.sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            except OSError as exc:
                del self.waiting[seq]
                raise DebuggerError(f"debugpy's adapter is gone ({exc})") from None
        return answer

    @staticmethod
    def wait(answer: queue.Queue, request: dict) -> dict:
        try:
            response = answer.get(timeout=ANSWER_TIMEOUT)
        except queue.Empty:
            raise DebuggerError(f"debugpy did not answer {request.get('command')} in "
                                f"{ANSWER_TIMEOUT:.0f} s") from None
        if response is None:
            raise DebuggerError("debugpy's adapter closed the connection")
        return {**response, "request_seq": request.get("seq")}

    def request(self, request: dict) -> dict:
        return self.wait(self.send(request), request)

    def _read(self) -> None:
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = self.sock.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                while len(buf) < length:
                    chunk = self.sock.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                msg, buf = json.loads(buf[:length]), buf[length:]
                if msg.get("type") == "response":
                    with self.lock:
                        answer = self.waiting.pop(msg.get("request_seq"), None)
                    if answer is not None:
                        answer.put(msg)
                elif msg.get("type") == "event":
                    self.on_event(msg)
        except (OSError, ValueError, StopIteration):
            return
        finally:
            with self.lock:
                for answer in self.waiting.values():
                    answer.put(None)
                self.waiting.clear()


class Debugger:
    def __init__(self, send: Callable[[dict], None], shell: Any) -> None:
        self._send = send
        self.shell = shell
        self._tasks: queue.Queue = queue.Queue()
        self._endpoint: tuple[str, int] | None = None  # debugpy listens once per process
        self._adapter: _Adapter | None = None
        self._initialized = threading.Event()  # the adapter's "initialized" event
        self._attached = False
        self.started = False
        self.breakpoints: dict[str, list[dict]] = {}
        self.stopped_threads: set[int] = set()
        self._removed_cleanup: dict[int, Any] = {}
        self._explorer: Any = None
        self._handlers = {
            "debugInfo": self.debug_info, "inspectVariables": self.inspect_variables,
            "richInspectVariables": self.rich_inspect_variables, "modules": self.modules,
            "copyToGlobals": self.copy_to_globals, "source": self.source,
        }
        self._started_handlers = {
            "dumpCell": self.dump_cell, "setBreakpoints": self.set_breakpoints,
            "stackTrace": self.stack_trace, "variables": self.variables,
            "attach": self.attach, "configurationDone": self.configuration_done,
        }
        untraced(threading.Thread(target=self._serve, name="debugger", daemon=True)).start()
        global _debugger
        _debugger = self
        sys.breakpointhook = breakpointhook

    # -- the kernel's side ---------------------------------------------------------------

    def submit(self, req_id: Any, request: Any) -> None:
        """From the control thread: answered later, in order, by the debugger thread."""
        self._tasks.put((req_id, request))

    def _serve(self) -> None:
        while True:
            req_id, request = self._tasks.get()
            if callable(request):  # work an event asked for (the threads of a stop)
                try:
                    request()
                except DebuggerError:
                    pass
                continue
            if not isinstance(request, dict):
                reply = _response({}, success=False, message="a debug request must be a DAP "
                                  "request object")
            else:
                try:
                    reply = self.process(request)
                except DebuggerError as exc:
                    reply = _response(request, success=False, message=str(exc))
                except Exception as exc:  # a bug here must not leave the client waiting
                    reply = _response(request, success=False,
                                      message=f"{type(exc).__name__}: {exc}")
            self._send({"type": "debug_reply", "id": req_id, "content": reply})

    def _event(self, event: dict) -> None:
        self._send({"type": "debug_event", "content": event})

    def process(self, request: dict) -> dict:
        command = request.get("command")
        if request.get("type") != "request" or not isinstance(command, str):
            raise DebuggerError("not a DAP request (type \"request\" and a command)")
        if command == "initialize" and not self.started:
            self.start()
        handler = self._handlers.get(command)
        if handler is not None:
            return handler(request)
        if not self.started:
            raise DebuggerError("the debugger is not started: send initialize first")
        handler = self._started_handlers.get(command)
        reply = handler(request) if handler is not None else self._forward(request)
        if command == "disconnect":
            self.stop()
        return reply

    # -- start and stop ------------------------------------------------------------------

    def start(self) -> None:
        """debugpy listens (once per process: its adapter is a child process that stays),
        and this thread connects to its adapter as the DAP client."""
        from ipykernel.compiler import get_tmp_directory
        from IPython.core.inputtransformer2 import leading_empty_lines

        if self._endpoint is None:
            # The adapter is told each cell's file; frozen stdlib modules do not matter.
            os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
            try:
                import debugpy
            except ImportError as exc:
                raise DebuggerError(f"debugpy cannot be imported ({exc}): pip install "
                                    "debugpy into the kernel's Python") from None
            os.makedirs(get_tmp_directory(), exist_ok=True)
            # Spark's and the user's subprocesses stay undebugged, as they run without it.
            debugpy.configure(subProcess=False)
            host, port = debugpy.listen(("127.0.0.1", 0))
            self._endpoint = (host, int(port))
        try:
            self._adapter = _Adapter(self._endpoint, self._on_adapter_event)
        except OSError as exc:
            raise DebuggerError(f"cannot reach debugpy's adapter ({exc})") from None
        # Breakpoints go by line: a cell's leading blank lines must stay where they are.
        cleanup = self.shell.input_transformer_manager.cleanup_transforms
        if leading_empty_lines in cleanup:
            index = cleanup.index(leading_empty_lines)
            self._removed_cleanup[index] = cleanup.pop(index)
        self.started = True

    def stop(self) -> None:
        if self._adapter is not None:
            self._adapter.close()
        self._adapter = None
        self._initialized.clear()
        self._attached = False
        cleanup = self.shell.input_transformer_manager.cleanup_transforms
        for index in sorted(self._removed_cleanup):
            cleanup.insert(index, self._removed_cleanup.pop(index))
        self.breakpoints.clear()
        self.stopped_threads.clear()
        self.started = False

    # -- DAP plumbing --------------------------------------------------------------------

    def _forward(self, request: dict) -> dict:
        if self._adapter is None:
            raise DebuggerError("the debugger is not started: send initialize first")
        return self._adapter.request(request)

    def _on_adapter_event(self, event: dict) -> None:
        """On the reader thread: never waits for an answer itself."""
        name, body = event.get("event"), event.get("body") or {}
        if name == "initialized":
            self._initialized.set()
        elif name == "stopped" and body.get("allThreadsStopped"):
            # Which threads stopped: asked on the debugger thread, then the event goes out.
            self._tasks.put((None, lambda: self._stopped_all(event)))
            return
        elif name == "stopped" and "threadId" in body:
            self.stopped_threads.add(body["threadId"])
        elif name == "continued":
            if body.get("allThreadsContinued"):
                self.stopped_threads.clear()
            else:
                self.stopped_threads.discard(body.get("threadId"))
        self._event(event)

    def _stopped_all(self, event: dict) -> None:
        try:
            threads = self._forward({"type": "request", "command": "threads", "seq": 0})
            for thread in (threads.get("body") or {}).get("threads", []):
                self.stopped_threads.add(thread["id"])
        finally:
            self._event(event)

    # -- requests answered here ----------------------------------------------------------

    def attach(self, request: dict) -> dict:
        """The adapter answers attach only after the client's configurationDone, which
        JupyterLab sends after attach's answer: the handshake is done here, as ipykernel
        does, and the client's own configurationDone is answered at once."""
        host, port = self._endpoint  # type: ignore[misc]
        args = dict(request.get("arguments") or {})
        args["connect"] = {"host": host, "port": port}
        # The executor's own frames are library code: stepping out of a cell ends there.
        here = os.path.dirname(os.path.abspath(__file__))
        args["rules"] = list(args.get("rules") or []) + [{"path": here, "include": False}]
        request = {**request, "arguments": args}
        if self._attached:
            return self._forward(request)
        adapter = self._adapter
        assert adapter is not None
        answer = adapter.send(request)
        if not self._initialized.wait(ANSWER_TIMEOUT):
            raise DebuggerError("debugpy did not initialize in "
                                f"{ANSWER_TIMEOUT:.0f} s")
        adapter.request({"type": "request", "command": "configurationDone", "seq": 0})
        reply = adapter.wait(answer, request)
        self._attached = True
        return reply

    def configuration_done(self, request: dict) -> dict:
        return _response(request)

    def dump_cell(self, request: dict) -> dict:
        from ipykernel.compiler import get_file_name

        code = (request.get("arguments") or {}).get("code", "")
        path = get_file_name(code)
        with open(path, "w", encoding="utf-8") as f:
            f.write(code)
        return _response(request, {"sourcePath": path})

    def set_breakpoints(self, request: dict) -> dict:
        args = request.get("arguments") or {}
        path = (args.get("source") or {}).get("path")
        reply = self._forward(request)
        if path and reply.get("success"):  # where debugpy put them, not where asked
            self.breakpoints[path] = [{"line": b["line"]}
                                      for b in (reply.get("body") or {}).get("breakpoints", [])
                                      if "line" in b]
        return reply

    def source(self, request: dict) -> dict:
        path = ((request.get("arguments") or {}).get("source") or {}).get("path", "")
        try:
            with open(path, encoding="utf-8") as f:
                return _response(request, {"content": f.read()})
        except (OSError, TypeError, ValueError):
            return _response(request, {}, success=False, message="source unavailable")

    def stack_trace(self, request: dict) -> dict:
        """The frames up to the outermost cell's: the shell's and the executor's below it
        are the kernel's, not the notebook's."""
        from ipykernel.compiler import get_tmp_directory

        reply = self._forward(request)
        frames = (reply.get("body") or {}).get("stackFrames")
        if isinstance(frames, list):
            prefix = get_tmp_directory() + os.sep
            cells = [i for i, f in enumerate(frames)
                     if str((f.get("source") or {}).get("path", "")).startswith(prefix)]
            if cells:
                reply["body"]["stackFrames"] = frames[:cells[-1] + 1]
                reply["body"]["totalFrames"] = cells[-1] + 1
        return reply

    def variables(self, request: dict) -> dict:
        if self.stopped_threads:
            reply = self._forward(request)
            body = reply.get("body") or {}
            if isinstance(body.get("variables"), list):
                body["variables"] = [v for v in body["variables"] if _visible(v.get("name", ""))]
            return reply
        ref = (request.get("arguments") or {}).get("variablesReference")
        return _response(request, {"variables": self._namespace_variables(ref)})

    def inspect_variables(self, request: dict) -> dict:
        self._explorer = None  # the namespace as it is now
        return _response(request, {"variables": self._namespace_variables(None)})

    def _namespace_variables(self, ref: Any) -> list[dict]:
        """The user namespace (and, by reference, what its values hold) as DAP variables,
        through pydevd's own variable presentation, as when stopped."""
        if self._explorer is None:
            self._explorer = _NamespaceExplorer(self.shell.user_ns)
        return [v for v in self._explorer.children(ref) if _visible(v.get("name", ""))]

    def rich_inspect_variables(self, request: dict) -> dict:
        args = request.get("arguments") or {}
        name = str(args.get("variableName", ""))
        if not name.isidentifier():
            ok = name in ("special variables", "function variables")
            return _response(request, {"data": {}, "metadata": {}}, success=ok)
        data: dict = {}
        metadata: dict = {}
        if not self.stopped_threads:
            result = self.shell.user_expressions({name: name})[name]
            if result.get("status") == "ok":
                data, metadata = result.get("data", {}), result.get("metadata", {})
        else:
            reply = self._forward({"type": "request", "command": "evaluate", "seq": 0,
                                   "arguments": {"expression":
                                                 f"get_ipython().display_formatter.format({name})",
                                                 "frameId": args.get("frameId"),
                                                 "context": "clipboard"}})
            if reply.get("success"):
                import ast

                data, metadata = ast.literal_eval(reply["body"]["result"])
        return _response(request, {"data": data, "metadata": {k: v for k, v in metadata.items()
                                                             if k in data}})

    def copy_to_globals(self, request: dict) -> dict:
        args = request.get("arguments") or {}
        dst = str(args.get("dstVariableName", ""))
        if not dst.isidentifier():
            return _response(request, success=False, message=f"{dst!r} is not a name")
        return self._forward({**request, "command": "setExpression",
                              "arguments": {"expression": f"globals()['{dst}']",
                                            "value": args.get("srcVariableName"),
                                            "frameId": args.get("srcFrameId")}})

    def modules(self, request: dict) -> dict:
        args = request.get("arguments") or {}
        mods = list(sys.modules.values())
        start = int(args.get("startModule", 0) or 0)
        count = int(args.get("moduleCount", 0) or 0) or len(mods)
        found = []
        for i, module in enumerate(mods[start:start + count], start):
            path = getattr(getattr(module, "__spec__", None), "origin", None)
            if isinstance(path, str) and path.endswith(".py"):
                found.append({"id": i, "name": module.__name__, "path": path})
        return _response(request, {"modules": found, "totalModules": len(mods)})

    def debug_info(self, request: dict) -> dict:
        from ipykernel.compiler import get_tmp_directory, get_tmp_hash_seed

        return _response(request, {
            "isStarted": self.started,
            "hashMethod": "Murmur2",
            "hashSeed": get_tmp_hash_seed(),
            "tmpFilePrefix": get_tmp_directory() + os.sep,
            "tmpFileSuffix": ".py",
            "breakpoints": [{"source": path, "breakpoints": lines}
                            for path, lines in self.breakpoints.items()],
            "stoppedThreads": sorted(self.stopped_threads),
            "richRendering": True,
            "exceptionPaths": ["Python Exceptions"],
            "copyToGlobals": True,
        })


class _NamespaceExplorer:
    """The user namespace seen as a suspended frame by pydevd, so that the variable
    explorer shows and expands values between cells exactly as at a breakpoint."""

    def __init__(self, namespace: dict) -> None:
        import importlib

        importlib.import_module("debugpy.server.api")  # puts pydevd's bundle on sys.path
        from _pydevd_bundle import pydevd_frame_utils
        from _pydevd_bundle.pydevd_api import PyDevdAPI
        from _pydevd_bundle.pydevd_suspended_frames import SuspendedFramesManager, _FramesTracker

        class _DB:
            variable_presentation = PyDevdAPI.VariablePresentation()

        class _Code:
            co_filename, co_name = "<namespace>", "<module>"

        class _Frame:
            f_code, f_globals, f_locals, f_back, f_lineno = _Code(), namespace, namespace, None, 0

        self.frame = _Frame()
        self.manager = SuspendedFramesManager()
        self.tracker = _FramesTracker(self.manager, _DB())
        self.tracker.track("namespace",
                           pydevd_frame_utils.create_frames_list_from_frame(self.frame))

    def children(self, ref: Any) -> list[dict]:
        variable = self.manager.get_variable(ref or id(self.frame))
        return [v.get_var_data() for v in variable.get_children_variables()]
