"""Reading an untrusted HDF5 file's risky parts in a child process: HDF5's C code can
loop for ever, crash (SIGSEGV) or take all memory on a crafted file, and none of that
can be caught in the process it happens in. ``run_child`` runs the code of
``h5walk`` and ``h5text`` after ``CHILD_START``, and tells a child that started from a
``sys.executable`` that is no Python (``NoChild``); ``printable`` writes any text of
the file that goes into a message.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys

from nnbackend.checks import warn_caller

#: a child's address space: h5py's import takes about 300 MB of it
CHILD_BYTES = 1 << 30

#: what a child writes first, once h5py is imported: a program that is not this
#: Python (a frozen app, uWSGI as sys.executable) never writes it
STARTED = b"nnbackend child started"
#: what a child writes last, before its exit status: a process that ignores SIGCHLD (a
#: shell's ``trap "" CHLD``, inherited) has its children reaped by the OS, and Python
#: then reads every child's status, a crash's too, as 0
ENDED = b"nnbackend child ended "

#: the start of a child's code: its address space and CPU time capped (where the OS
#: allows: a child left behind by a killed parent ends), no core file written (a crash
#: on a crafted file left one in the user's folder), the parent's import path (on
#: stdin: one argument holds 128 KiB at most), h5py, then STARTED on stderr. The code
#: after it finds its own arguments in ``ARGS``, opens a file it is handed with
#: ``opened``, and ends with ``finish(status)``, its one way out.
CHILD_START = f"""
import json, sys
try:
    import resource
except ImportError:  # not on Windows
    resource = None
for limit, value in (("RLIMIT_AS", sys.argv[1]), ("RLIMIT_CPU", sys.argv[2]), ("RLIMIT_CORE", 0)):
    try:
        resource.setrlimit(getattr(resource, limit), (int(value), int(value)))
    except (AttributeError, ValueError, OSError):
        pass
# where the parent found h5py (-I leaves out PYTHONPATH and the user's site-packages)
sys.path[:0] = json.loads(sys.stdin.readline())
import h5py
sys.stderr.write("{STARTED.decode()}" + chr(10))
sys.stderr.flush()
ARGS = sys.argv[3:]


def opened(source):
    if source.startswith("fd:"):  # the parent's open file: not a name that may name another
        import os
        return os.fdopen(int(source[3:]), "rb", closefd=False)
    return source


def finish(status):  # said, then gone: nothing of HDF5's runs after the word
    sys.stdout.flush()
    sys.stderr.write(chr(10) + "{ENDED.decode()}" + str(status))
    sys.stderr.flush()
    import os
    os._exit(status)
"""


def handed(path, fd: int | None) -> tuple[str, tuple]:
    """(the child's argument for the file, the descriptors to pass): the caller's open
    file ``fd`` where it has one and the OS passes descriptors (not Windows), else the
    path; the child's ``opened(argument)`` gives what ``h5py.File`` takes."""
    if fd is None or os.name != "posix":
        return str(path), ()
    return f"fd:{fd}", (fd,)


class NoChild(Exception):
    """No child Python could be started, or it did not start as one: the reason."""


class ChildDied(Exception):
    """The child started but never finished: killed, or crashed (a signal, where known)."""


def run_child(
    code: str, args: list[str], seconds: float, pass_fds: tuple = ()
) -> subprocess.CompletedProcess:
    """``CHILD_START + code`` in an isolated Python (``-I``), with ``args`` as its
    ``ARGS``, the file descriptors ``pass_fds`` open in it, and one BLAS thread (its
    buffers would take the capped space); output as bytes, ``returncode`` the status it
    finished with. ``subprocess.TimeoutExpired`` past ``seconds`` (the child killed)
    once it started; ``NoChild`` where it never did; ``ChildDied`` where it never
    finished. The child has a session of its own: a Ctrl-C at the terminal (that the
    program catches, or that reaches a load in a thread) does not kill it mid-walk."""
    if getattr(sys, "frozen", False) or not sys.executable:  # no Python to run -c with
        raise NoChild("this program has no Python of its own to run")
    found = json.dumps([entry for entry in sys.path if entry and isinstance(entry, str)])
    cpu_seconds = str(math.ceil(seconds) + 1)
    command = [sys.executable, "-I", "-c", CHILD_START + code, str(CHILD_BYTES), cpu_seconds]
    done = _run(command + list(args), found, seconds, pass_fds)
    if STARTED not in done.stderr:  # not a Python, or one without h5py: its last words
        raise NoChild(last_words(done))
    ended = _FINISHED.search(done.stderr)
    if ended is None or done.returncode < 0:
        raise ChildDied(
            f"signal {-done.returncode}" if done.returncode < 0 else "it ended without a word"
        )
    done.returncode = int(ended[1])
    return done


def _run(command: list[str], found: str, seconds: float, pass_fds: tuple):
    """One child: ``command``, the import path ``found`` on its stdin, in a session of
    its own (a Ctrl-C held while it is made: one before its ``setsid`` killed it).
    Whatever ends the wait (its time, the caller's Ctrl-C) ends the child's session."""
    quiet = {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    child = None
    try:
        with _ctrl_c_held():  # a Ctrl-C held here comes as it ends: child is made by then
            child = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env={**os.environ, **quiet}, pass_fds=pass_fds, start_new_session=True,
            )  # fmt: skip
        out, err = child.communicate(found.encode() + b"\n", timeout=seconds)
    except OSError as exc:
        if child is None:
            raise NoChild(str(exc)) from None
        _end(child)
        raise
    except subprocess.TimeoutExpired as exc:
        _end(child)
        if STARTED not in (exc.stderr or b""):
            raise NoChild(f"no answer in {seconds} s") from None
        raise
    except BaseException:
        if child is not None:
            _end(child)
        raise
    return subprocess.CompletedProcess(command, child.returncode, out, err)


def _end(child: subprocess.Popen) -> None:
    """``child`` and whatever it started (its session's group) killed, and reaped: a
    wrapper that does not exec left its own child holding the pipes."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (OSError, AttributeError):  # gone already, or no process groups (Windows)
        child.kill()
    child.wait()
    for stream in (child.stdin, child.stdout, child.stderr):
        stream.close()


@contextlib.contextmanager
def _ctrl_c_held():
    """SIGINT blocked in this thread (where the OS allows), and delivered after."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


_FINISHED = re.compile(re.escape(ENDED) + rb"(\d+)\Z")


_warned: list[bool] = []


def warn_no_child(exc: NoChild) -> None:
    """Say once a process that the risky reads run in it, no child to take the harm."""
    if not _warned:
        _warned.append(True)
        warn_caller(
            f"nnbackend cannot start a child Python ({sys.executable!r}) to walk untrusted "
            f"HDF5 files first ({exc}): they are read in this process, where a crafted "
            "file can crash it or exhaust its memory. Load files only from sources you trust.",
            RuntimeWarning,
        )


def last_words(done: subprocess.CompletedProcess) -> str:
    """The last line a child wrote to stderr, printable, or "no message"."""
    lines = done.stderr.decode(errors="replace").strip().splitlines()
    lines = [line for line in lines if line != STARTED.decode()]
    lines = [line for line in lines if not line.startswith(ENDED.decode())]
    return printable(lines[-1] if lines else "no message")


def printable(text: str) -> str:
    """``text`` with each character that is not printable (newline, terminal escape,
    lone surrogate) written as its escape, for a message that may show text of a file."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
