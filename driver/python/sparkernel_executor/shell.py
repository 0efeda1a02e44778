"""The IPython shell and its hooks: display publisher, display hook, traceback, pager,
input(), so that everything a cell shows becomes a frame for the kernel."""
from __future__ import annotations

import builtins
import contextlib
import getpass
import importlib
import os
import sys
import types
from typing import Any, Iterator

from IPython.core.displayhook import DisplayHook
from IPython.core.displaypub import DisplayPublisher
from IPython.core.error import StdinNotImplementedError
from IPython.core.interactiveshell import InteractiveShell
from traitlets import CBool
from traitlets.config import Config

from .frames import Channel

# Set once by make_shell before the shell (and so its hooks) is created.
_channel: Channel | None = None


def _flush_streams() -> None:
    for s in (sys.stdout, sys.stderr):
        try:
            s.flush()
        except Exception:  # a user may have replaced sys.stdout with anything
            pass


def _send(obj: dict) -> None:
    _flush_streams()
    assert _channel is not None
    _channel.send(obj)


_OWN = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _without_own_frames(tb: types.TracebackType | None) -> types.TracebackType | None:
    """A traceback without the kernel's frames: its wrappers of PySpark's and py4j's entry
    points sit between a cell's line and the library it calls, and a cell's traceback on
    ipykernel shows no such frame (nor a path of the kernel's)."""
    kept, n = [], 0
    t = tb
    while t is not None:
        n += 1
        if not t.tb_frame.f_code.co_filename.startswith(_OWN):
            kept.append(t)
        t = t.tb_next
    if len(kept) == n or not kept:
        return tb
    out = None
    for t in reversed(kept):
        out = types.TracebackType(out, t.tb_frame, t.tb_lasti, t.tb_lineno)
    return out


class FrameDisplayPublisher(DisplayPublisher):
    def publish(  # type: ignore[override]
        self,
        data: dict,
        metadata: dict | None = None,
        source: Any = None,
        *,
        transient: dict | None = None,
        update: bool = False,
        **kwargs: Any,
    ) -> None:
        _send({"type": "display", "data": data, "metadata": metadata or {},
               "transient": transient or {}, "update": bool(update)})

    def clear_output(self, wait: bool = False) -> None:
        _send({"type": "clear_output", "wait": bool(wait)})


class FrameDisplayHook(DisplayHook):
    def start_displayhook(self) -> None:
        self._bundle: tuple[dict, dict] | None = None

    def write_output_prompt(self) -> None:
        pass

    def write_format_data(self, format_dict: dict, md_dict: dict | None = None) -> None:
        self._bundle = (format_dict, md_dict or {})

    def finish_displayhook(self) -> None:
        if self._bundle is not None:
            data, md = self._bundle
            _send({"type": "result", "data": data, "metadata": md})
        self._bundle = None


class IPythonKernel:
    """What `get_ipython().kernel` is in ipykernel, for the libraries that look for it:
    the shell, and the kernel's own name; named as ipykernel's class, which is what a
    check of `type(get_ipython().kernel).__name__` finds there."""

    implementation = "sparkernel"

    def __init__(self, shell: InteractiveShell) -> None:
        self.shell = shell

    def get_parent(self, channel: str | None = None) -> dict:
        return self.shell.get_parent()


class ZMQInteractiveShell(InteractiveShell):
    """Named as ipykernel's shell, because that name (and IPKernelApp in the config, and
    a `kernel`) is how pandas, tqdm.auto, rich and plotly tell a notebook from a
    terminal. ipykernel's own class cannot be used: it needs ipykernel's kernel and
    sockets."""

    displayhook_class = FrameDisplayHook
    display_pub_class = FrameDisplayPublisher
    # ipykernel's compiler names a cell's code as a temporary file (what warnings show,
    # and what its debugger and debugpy's breakpoints go by), where IPython's says
    # <ipython-input-N-hash>. Its module imports only IPython, and ipykernel ships it.
    try:
        from ipykernel.compiler import XCachingCompiler as compiler_class
    except ImportError:  # without ipykernel: IPython's own
        pass

    # As ipykernel's: a notebook's cell has no typing-time indentation (%autoindent and
    # `get_ipython().autoindent` say so there).
    autoindent = CBool(False)
    last_error: dict | None = None
    _parent: dict = {}

    def init_environment(self) -> None:
        """What ipykernel's shell sets for the commands a cell runs (`!ls`, `%%bash`, git):
        colour on, as a notebook renders it, and no interactive pager."""
        os.environ.update({"TERM": "xterm-color", "CLICOLOR": "1", "FORCE_COLOR": "1",
                           "CLICOLOR_FORCE": "1", "PAGER": "cat", "GIT_PAGER": "cat"})

    def set_parent(self, parent: dict) -> None:
        """The request being answered ({"header": ...}), as ipykernel's shell keeps it:
        ipywidgets' Output widget captures the output of that message id."""
        self._parent = parent

    def get_parent(self) -> dict:
        return self._parent

    def _get_exc_info(self, exc_tuple: Any = None) -> Any:
        """The exception to show (and sys.last_traceback, which %tb and %debug read),
        without the kernel's own frames, its chained exceptions' neither."""
        etype, value, tb = super()._get_exc_info(exc_tuple)
        tb = _without_own_frames(tb)
        seen: set[int] = set()
        exc = value
        while isinstance(exc, BaseException) and id(exc) not in seen:
            seen.add(id(exc))
            exc.__traceback__ = tb if exc is value else _without_own_frames(exc.__traceback__)
            exc = exc.__cause__ or exc.__context__
        sys.last_traceback = tb
        return etype, value, tb

    def _showtraceback(self, etype: type, evalue: BaseException, stb: list[str]) -> None:
        err = {"ename": getattr(etype, "__name__", str(etype)), "evalue": str(evalue),
               "traceback": list(stb)}
        self.last_error = err
        _send({"type": "error", **err})

    @contextlib.contextmanager
    def _tee(self, channel: str) -> Iterator[None]:
        # IPython 9 wraps every sys.stdout.write to keep stream output in its history; the
        # kernel keeps the history here, and the wrapper made a 100k-line print 7x slower
        # and kept every line in memory for the whole session.
        yield

    def ask_exit(self) -> None:
        self.payload_manager.write_payload({"source": "ask_exit", "keepkernel": False})

    def set_next_input(self, text: str, replace: bool = False) -> None:
        self.payload_manager.write_payload(
            {"source": "set_next_input", "text": text, "replace": replace})

    def enable_gui(self, gui: str | None = None) -> None:
        pass  # no event loop integration: there is no GUI on an edgenode


class Stdin:
    """input() and getpass() through the kernel's stdin channel."""

    allowed = False

    def ask(self, prompt: str, password: bool) -> str:
        if not self.allowed:  # ipykernel's words: a notebook may print or match them
            raise StdinNotImplementedError(
                f"{'getpass' if password else 'raw_input'} was called, but this frontend "
                f"does not support input requests.")
        _send({"type": "input_request", "prompt": str(prompt), "password": password})
        assert _channel is not None
        while True:
            msg = _channel.recv()
            if msg is None:
                raise EOFError("the kernel closed the executor's input")
            if msg.get("type") == "input_reply":
                return str(msg.get("value", ""))
            if msg.get("type") == "sync":
                _channel.deferred.append(msg)  # answered after this cell's reply

    def input(self, prompt: str = "") -> str:
        return self.ask(prompt, False)

    def getpass(self, prompt: str = "", stream: Any = None) -> str:
        if stream is not None and self.allowed:  # as ipykernel (its prompt default too)
            import warnings

            warnings.warn("The `stream` parameter of `getpass.getpass` will have no effect "
                          "when using ipykernel", UserWarning, stacklevel=2)
        return self.ask(prompt, True)


class _KernelAppOnImport:
    """A meta path finder for ipykernel.kernelapp: once imported, its IPKernelApp instance
    is this kernel's (its connection file), as in ipykernel, so that
    ipykernel.connect.get_connection_file(), what notebooks and packages (ipynbname) find
    their kernel's id with, answers. At that import, not at start: it costs 90 ms."""

    def __init__(self, connection_file: str, kernel: Any) -> None:
        self._file = connection_file
        self._kernel = kernel

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "ipykernel.kernelapp":
            return None
        sys.meta_path.remove(self)  # once; and the lookup below does not come back here
        import importlib.util

        spec = importlib.util.find_spec(name)
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run, path_of, kernel = loader.exec_module, self._file, self._kernel

        def exec_module(module: types.ModuleType) -> None:
            run(module)
            try:
                module.IPKernelApp.instance(connection_file=path_of).kernel = kernel
            except Exception:
                pass  # another version's app: get_connection_file says so itself

        loader.exec_module = exec_module
        return spec


def _connect_info(line: str) -> None:
    """Print information for connecting other clients to this kernel: its connection
    file's contents without the key (a secret: it stays in the file, which only this user
    can read), and how to connect with the file. ipykernel's %connect_info prints the
    key."""
    import json

    from jupyter_core.paths import jupyter_runtime_dir

    path = _connection_file()
    try:
        with open(path) as f:
            info = json.load(f)
    except (OSError, ValueError) as exc:
        print(f"Could not read the connection file {path!r}: {exc}", file=sys.stderr)
        return
    if info.get("key"):
        info["key"] = "<in the connection file>"
    short = os.path.basename(path) if os.path.dirname(os.path.abspath(path)) == \
        os.path.abspath(jupyter_runtime_dir()) else path
    print(json.dumps(info, indent=2) + "\n")
    print(f"The key stays in the connection file. Connect with it:\n"
          f"    $> jupyter <app> --existing {short}\n"
          f"or even just:\n"
          f"    $> jupyter <app> --existing\n"
          f"if this is the most recent Jupyter kernel you have started.")


_started_with: list[str] = []  # sys.argv at the start (a cell may change sys.argv)


def _connection_file() -> str:
    argv = _started_with
    return argv[2] if len(argv) > 2 and argv[1] == "-f" else ""


def make_shell(channel: Channel) -> tuple[ZMQInteractiveShell, Stdin]:
    global _channel
    _channel = channel
    _started_with[:] = sys.argv
    cfg = Config()
    cfg.HistoryManager.hist_file = ":memory:"  # the kernel keeps the session's history
    cfg.IPKernelApp.parent_appname = "sparkernel"  # what notebook checks look for
    try:
        # tqdm.auto (and others) tell a notebook by ipykernel's shell module being loaded:
        # the real module (about 80 ms of the executor's start, which happens while the
        # kernel starts). Without ipykernel there is nothing to load.
        zmqshell: Any = importlib.import_module("ipykernel.zmqshell")
    except ImportError:
        zmqshell = None
    shell = ZMQInteractiveShell.instance(config=cfg)
    shell.kernel = IPythonKernel(shell)
    # The magics a notebook has on ipykernel beside IPython's: its KernelMagics (%clear,
    # %less, %more, %man, %autosave, %edit, %connect_info) and the default extension
    # storemagic (%store), which IPKernelApp loads.
    if zmqshell is not None:
        shell.register_magics(zmqshell.KernelMagics)
        if _connection_file():
            sys.meta_path.insert(0, _KernelAppOnImport(_connection_file(), shell.kernel))
            shell.register_magic_function(_connect_info, "line", "connect_info")
    # The notebook's path, as jupyter_server gives it to the kernel and ipykernel to the
    # notebook.
    if os.environ.get("JPY_SESSION_NAME"):
        shell.user_ns["__session__"] = os.environ["JPY_SESSION_NAME"]
    shell.extension_manager.load_extension("storemagic")
    # pdb.set_trace() and pdb.Pdb are IPython's interruptible debugger, as ipykernel makes
    # them (a ^C in a plain pdb prompt would leave the executor stuck in it).
    import pdb

    from IPython.core import debugger

    if hasattr(debugger, "InterruptiblePdb"):
        debugger.Pdb = debugger.InterruptiblePdb
        pdb.Pdb = debugger.Pdb  # type: ignore[misc]
        pdb.set_trace = debugger.set_trace
    from IPython.core import page, payloadpage

    # obj? and %page become a "page" payload of the execute reply, as frontends expect.
    shell.set_hook("show_in_pager", page.as_hook(payloadpage.page), 99)
    stdin = Stdin()
    builtins.input = stdin.input
    getpass.getpass = stdin.getpass
    return shell, stdin
