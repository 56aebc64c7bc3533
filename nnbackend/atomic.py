"""Writing a file so that no crash, full disk or second writer ever loses it.

    atomic_write("ckpt.h5", data)

The bytes go to a temporary file of a unique name in the target's folder, which is
flushed to disk (fsync) and renamed over the target; then the folder is flushed, so
the rename itself survives a power cut. A reader sees the old file or the new one,
never a part of either. With two writers on one path the last rename wins, and each
removes only its own temporary file.

A writer holds a lock on its temporary file while it lives. A process killed mid-save
leaves its temporary file behind, unlocked: the next save to the same path removes
such leftovers (and only those).

A symbolic link at the target is replaced by the new file; the file it pointed to is
left as it was (so a link planted in a shared folder cannot redirect a save). To
write through a link, pass ``Path(path).resolve()``. A device, FIFO or socket at the
target is refused, never replaced (a save as root to /dev/null would replace it).
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
import tempfile
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; leftovers of killed saves then stay
    fcntl = None

SUFFIX = ".nnbackend-tmp"
_NAME_MAX = 255  # bytes in one file name, on the file systems that matter
_CHUNK = 1 << 24


def atomic_write(path, data) -> Path:
    """Write ``data`` (bytes-like) to ``path`` atomically; returns the path. Errors of
    the operating system (full disk, permission) are raised as OSError naming ``path``,
    with the previous file intact and no temporary file left behind."""
    path = _file_path(path)
    mode, start = _previous_mode(path), 0o666
    if mode is None and (linked := _previous_mode(path, follow=True)) is not None:
        start &= linked | 0o600  # no more open than the file linked to, and the owner's own
    fd, temporary = _create_temporary(path, start if mode is None else mode)
    try:
        if mode is not None and hasattr(os, "fchmod"):
            os.fchmod(fd, mode)  # exactly the old bits: os.open's were cut by the umask
        elif hasattr(os, "fchmod"):  # a umask of 0o222: else the next save refuses it
            os.fchmod(fd, stat.S_IMODE(os.fstat(fd).st_mode) | 0o600)
        _write_all(fd, memoryview(data).cast("B"))
        os.fsync(fd)
        os.replace(temporary, path)
    except BaseException as exc:
        os.close(fd)
        _remove_quietly(temporary)
        if isinstance(exc, OSError):
            raise _naming(exc, path) from exc
        raise
    os.close(fd)  # the lock goes with it, after the rename
    _sync_folder(path.parent)
    remove_leftovers(path)
    return path


def check_can_write(path, name: str) -> None:
    """Refuse, before any work, a ``path`` that a save could not write: no file's name,
    a folder that does not exist or takes no new file, a folder or device at the path.
    ``name`` says where the path was given, e.g. "checkpoint"."""
    try:
        target = _file_path(path)
    except TypeError:
        raise TypeError(f"{name} must be a file's path (str or Path), not {path!r}") from None
    except (ValueError, PermissionError) as exc:
        raise type(exc)(f"{name}: {exc}") from None
    shown = f"{name}={str(path)!r}"
    try:
        missing, folder = not target.parent.is_dir(), target.is_dir()
        if not (missing or folder):
            tempfile.TemporaryFile(dir=target.parent).close()  # a folder may refuse new files
    except OSError as exc:  # no right to look into the folder, or to add to it
        raise type(exc)(f"{shown}: cannot write in its folder: {exc.strerror or exc}") from None
    if missing:
        kind = "is a file, not a folder" if target.parent.exists() else "does not exist"
        raise FileNotFoundError(f"{shown}: its folder {kind}")
    if folder:
        raise ValueError(f"{shown} is a folder or other non-file: name a file in it, e.g. "
                         "'run/model.h5'")  # fmt: skip


def _file_path(path) -> Path:
    """``path`` as a Path, refused where it names no file that a save may replace: ""
    or ".", a name ending in "/" (Path drops it, and a file "ckdir" would appear), or
    a device, FIFO or socket (a save as root would replace /dev/null)."""
    text = os.fspath(path)
    last = os.path.basename(text)  # Path drops a last "." ("ckdir/." is "ckdir")
    if Path(text).name in ("", ".", "..") or last in ("", ".", ".."):
        raise ValueError(f"{text!r} names no file: give a file's path, e.g. 'run/model.h5'")
    path = Path(text)
    try:
        mode = os.stat(path, follow_symlinks=False).st_mode
    except OSError:
        return path
    if stat.S_ISREG(mode) and not mode & 0o222:  # a rename would replace it all the same
        raise PermissionError(
            f"{text!r} is write-protected (mode {oct(stat.S_IMODE(mode))}): make it "
            "writable (chmod u+w) to replace it, or name another file"
        )
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode) or stat.S_ISDIR(mode)):
        raise ValueError(
            f"{text!r} is a device, FIFO or socket, not a file: a save replaces only a "
            "file (or a link); name a file, e.g. 'run/model.h5'"
        )
    return path


def _previous_mode(path: Path, follow: bool = False) -> int | None:
    """The permission bits of the file ``path`` replaces (a private checkpoint stays
    private, from the first byte written); None where there is no such regular file.
    ``follow``: of the file a link at ``path`` points to."""
    try:
        mode = os.stat(path, follow_symlinks=follow).st_mode
    except OSError:
        return None
    return stat.S_IMODE(mode) if stat.S_ISREG(mode) else None


def _create_temporary(path: Path, mode: int = 0o666) -> tuple[int, Path]:
    """A new, locked, empty file beside ``path``: (descriptor, its path)."""
    for _ in range(100):
        temporary = path.with_name(_temporary_name(path.name))
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            continue
        except PermissionError as exc:  # the folder's right, not the file's
            where = f"cannot create a file in {str(path.parent)!r}, as a save does"
            raise _naming(exc, path, where) from exc
        except OSError as exc:
            raise _naming(exc, path) from exc
        try:
            if _lock(fd, blocking=True) and _is_still(temporary, fd):
                return fd, temporary
        except BaseException:  # Ctrl-C while waiting for the lock: no file left open
            os.close(fd)
            _remove_quietly(temporary)
            raise
        os.close(fd)  # a sweep removed it between creation and lock: try another name
    raise FileExistsError(errno.EEXIST, "cannot create a temporary file beside it", str(path))


def _temporary_name(name: str) -> str:
    """``.<name>.<random>.nnbackend-tmp``, the name cut so the whole fits in 255 bytes."""
    token = secrets.token_hex(4)
    room = _NAME_MAX - len(f"..{token}{SUFFIX}")
    stem = os.fsdecode(os.fsencode(name)[:room])
    return f".{stem}.{token}{SUFFIX}"


def _write_all(fd: int, data: memoryview) -> None:
    for start in range(0, len(data), _CHUNK):
        part = data[start : start + _CHUNK]
        while len(part):
            part = part[_write_some(fd, part) :]


def _write_some(fd: int, data) -> int:
    return os.write(fd, data)


def _naming(exc: OSError, path: Path, where: str = "") -> OSError:
    """``exc`` again, as the same OSError type, with the target's path and its
    reason; the previous file is untouched."""
    reason = (exc.strerror or str(exc)) + (f": {where}" if where else "")
    return type(exc)(
        exc.errno,
        f"{reason}; the save failed and the previous file, if any, is unchanged",
        str(path),
    )


def _remove_quietly(temporary: Path) -> None:
    """Remove our own temporary file; a failure here must not hide the original error."""
    try:
        temporary.unlink(missing_ok=True)
    except OSError:
        pass


def _sync_folder(folder: Path) -> None:
    """Flush the folder's entries (the rename) to disk, where the OS allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a folder
    finally:
        os.close(fd)


# --- locks, and the leftovers of killed saves -------------------------------------


def _lock(fd: int, blocking: bool) -> bool:
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except OSError:
        return False
    return True


def _is_still(temporary: Path, fd: int) -> bool:
    """Whether ``temporary`` still names the file open as ``fd``."""
    try:
        return os.stat(temporary, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def leftovers(path) -> list[Path]:
    """Temporary files of saves to ``path`` (live or dead) in its folder."""
    path = Path(path)
    prefix = _temporary_name(path.name).rsplit(".", 2)[0] + "."
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    ours = re.compile(re.escape(prefix) + "[0-9a-f]{8}" + re.escape(SUFFIX))  # token_hex(4)
    return [path.parent / n for n in names if ours.fullmatch(n)]  # not m.h5.bak's for m.h5


def remove_leftovers(path) -> None:
    """Remove the temporary files that killed saves to ``path`` left: those whose
    writer no longer holds its lock. A live writer's file is never touched, nor
    anything but a regular file (a FIFO of that name would block a plain open)."""
    if fcntl is None:
        return
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    for temporary in leftovers(path):
        try:
            fd = os.open(temporary, flags)
        except OSError:
            continue
        try:
            regular = stat.S_ISREG(os.fstat(fd).st_mode)
            if regular and _lock(fd, blocking=False) and _is_still(temporary, fd):
                _remove_quietly(temporary)
        finally:
            os.close(fd)
