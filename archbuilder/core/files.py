"""Files from and for untrusted places: inputs read safely, outputs written all at once.

Inputs are opened without blocking and read only when they are regular files, with the size
cap enforced while reading (``/dev/zero`` says its size is 0). Outputs go to a temporary
file that is renamed into place, and only over a regular file: never over a device, a FIFO,
a socket or a folder, and never into the system's folders of special files. A file the user
named (:func:`write_atomic`) may be a symbolic link to the file to replace; files written into
a folder (:func:`write_into`) never replace a link, which could lead out of the folder.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import threading
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "UnreadableFile",
    "cancelled_by",
    "open_regular",
    "output_target",
    "read_regular",
    "shown_path",
    "write_atomic",
    "write_into",
]

_cancellation: ContextVar[threading.Event | None] = ContextVar("archbuilder_cancellation", default=None)


@contextlib.contextmanager
def cancelled_by(event: threading.Event) -> Iterator[None]:
    """While inside, :func:`write_atomic` renames nothing into place once ``event`` is set (it
    raises KeyboardInterrupt and leaves no file): the command line passes its Ctrl-C flag,
    so an interrupted command writes no output even where a library swallowed the signal.
    Scoped to this thread's context, not the process."""
    token = _cancellation.set(event)
    try:
        yield
    finally:
        _cancellation.reset(token)


_SPECIAL_ROOTS = (Path("/dev"), Path("/proc"), Path("/sys"))


class UnreadableFile(ValueError):
    """An input that is not a readable regular file; ``reason`` says why, ``path`` which."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def _name(path: str | os.PathLike[str]) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"a file path is a str or a Path, not {type(path).__name__}")
    name = os.fspath(path)
    if not isinstance(name, str):
        raise TypeError(f"a file path is a str or a Path, not {type(name).__name__}")
    if "\0" in name:
        raise UnreadableFile(repr(name), "the path contains a NUL byte")
    return name


def _kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """``path`` opened for reading; UnreadableFile unless it is a regular file (never blocks)."""
    name = _name(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise UnreadableFile(name, _reason(exc)) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = _kind(mode)
        raise UnreadableFile(name, f"is {kind}, not a regular file" if kind.startswith("a ") else kind)
    return os.fdopen(fd, "rb")


def read_regular(path: str | os.PathLike[str], *, max_bytes: int) -> bytes:
    """The bytes of regular file ``path``, refused once more than ``max_bytes`` have been read."""
    with open_regular(path) as file:
        data = _read_capped(file, max_bytes)
    if len(data) > max_bytes:
        raise UnreadableFile(os.fspath(path), f"is larger than {_size(max_bytes)}")
    return data


def _read_capped(file: BinaryIO, max_bytes: int) -> bytes:
    """At most ``max_bytes + 1`` bytes of ``file``, in one read of its stated size where that
    is all there is (a read of the whole cap would allocate the cap, however small the file)."""
    stated = os.fstat(file.fileno()).st_size
    chunks = [file.read(min(stated, max_bytes) + 1)]
    count = len(chunks[0])
    while count <= max_bytes and (chunk := file.read(min(max_bytes + 1 - count, 1 << 24))):
        chunks.append(chunk)  # more than stated: a file that grew, or one of /proc's
        count += len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _reason(exc: OSError) -> str:
    reasons = {
        errno.ENOENT: "no such file",
        errno.ENOTDIR: "no such file (a part of the path is not a folder)",
        errno.ELOOP: "a symbolic link loop (the link points back to itself)",
        errno.EACCES: "permission denied",
        errno.ENAMETOOLONG: "the path is too long",
    }
    return reasons.get(exc.errno, f"cannot read: {exc.strerror}")


def _size(count: int) -> str:
    return f"{count / 2**20:g} MiB" if count >= 2**20 else f"{count:,} bytes"


def output_target(path: str | os.PathLike[str]) -> Path:
    """The file a write to ``path`` replaces: symbolic links resolved; OSError when it may not be written."""
    name, target = _resolved(path, "choose another -o")
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, name) from None
    if stat.S_ISDIR(mode):
        raise OSError(errno.EISDIR, "is a directory", name)
    if not stat.S_ISREG(mode):
        message = f"is {_kind(mode)}; only a regular file is replaced (use -o - for standard output)"
        raise OSError(errno.EINVAL, message, name)
    return target


def write_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` all at once: readers see the old file or the new one.

    A symbolic link is followed (the file it names is replaced); an existing target that is
    not a regular file is refused with an OSError. Returns ``path`` as a Path.
    """
    target = output_target(path)
    with _folder(target.parent, shown=str(path)) as folder:
        _replace(folder, target.name, data, shown=str(path))
    return Path(path)


def write_into(folder: str | os.PathLike[str], files: Mapping[str, bytes]) -> list[Path]:
    """Write ``files`` (file name → bytes) into ``folder``, each all at once; their paths.

    The folder is made when missing; OSError when it is not a folder. Inside it a name is
    never followed anywhere: a symbolic link (it could lead out of the folder), a folder or a
    special file in the way is refused, naming it, before anything is written; only regular
    files are replaced.
    """
    shown, _ = _resolved(folder, "choose another folder")
    try:
        os.makedirs(shown, exist_ok=True)
    except FileExistsError:
        what = "a symbolic link to nothing" if os.path.islink(shown) else "a file"
        raise OSError(errno.ENOTDIR, f"is {what}, not a folder; give a folder", shown) from None
    with _folder(Path(shown), shown=shown) as fd:
        for name in files:
            _check_replaceable(fd, name, os.path.join(shown, name))
        for name, data in files.items():
            _replace(fd, name, data, shown=os.path.join(shown, name))
    return [Path(shown, name) for name in files]


def _resolved(path: str | os.PathLike[str], advice: str) -> tuple[str, Path]:
    """``path`` as given and with symbolic links resolved; OSError for a loop or a path in a
    system folder of special files."""
    try:
        name = _name(path)
    except UnreadableFile as exc:
        raise OSError(errno.EINVAL, exc.reason, exc.path) from None
    try:
        target = Path(name).resolve()
    except (RuntimeError, OSError):  # Python < 3.13 raises RuntimeError for a loop
        raise OSError(errno.ELOOP, "a symbolic link loop", name) from None
    if any(target == root or root in target.parents for root in _SPECIAL_ROOTS):
        raise OSError(errno.EPERM, f"a system folder of special files; {advice}", name)
    return name, target


@contextlib.contextmanager
def _folder(path: Path, *, shown: str) -> Iterator[int]:
    """The folder ``path`` opened, for calls relative to it (a later rename of the path
    cannot redirect them); OSError naming ``shown`` when it cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, shown) from None
    try:
        yield fd
    finally:
        os.close(fd)


def _check_replaceable(folder: int, name: str, shown: str) -> None:
    """OSError unless ``name`` is a plain file name in ``folder`` that is absent or a regular file."""
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise OSError(errno.EINVAL, "not a plain file name", shown)
    try:
        mode = os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISLNK(mode):
        message = (
            "is a symbolic link, and a file written into a folder never replaces one (it could "
            "lead out of the folder); remove it or choose another folder"
        )
        raise OSError(errno.ELOOP, message, shown)
    if stat.S_ISDIR(mode):
        raise OSError(errno.EISDIR, "is a directory", shown)
    if not stat.S_ISREG(mode):
        raise OSError(errno.EINVAL, f"is {_kind(mode)}; only a regular file is replaced", shown)


def _replace(folder: int, name: str, data: bytes, *, shown: str) -> None:
    """Write ``data`` to a new file in ``folder`` and rename it over ``name``.

    The new file gets the permissions of the file it replaces, or what the process's umask
    gives a new file: the kernel applies the umask when the file is made, so the process's
    umask is never read or changed (``os.umask`` can only read it by setting it, which
    races with other threads).
    """
    temporary, handle = _temporary(folder, name, shown)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            with contextlib.suppress(FileNotFoundError):
                existing = os.stat(name, dir_fd=folder, follow_symlinks=False)
                if stat.S_ISREG(existing.st_mode):
                    os.fchmod(file.fileno(), existing.st_mode & 0o777)
        cancellation = _cancellation.get()
        if cancellation is not None and cancellation.is_set():
            raise KeyboardInterrupt
        os.replace(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
    except IsADirectoryError as exc:
        _discard(folder, temporary)
        raise OSError(exc.errno, "is a directory", shown) from None
    except BaseException:
        _discard(folder, temporary)
        raise


def _temporary(folder: int, name: str, shown: str) -> tuple[str, int]:
    """A new, empty file ``.{name}.XXXXXXXX.tmp`` in ``folder`` (made with mode 0o666 less
    the umask, as any new file) and its open descriptor."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        stem = name.encode()[:200].decode(errors="ignore")  # a file name holds 255 bytes at most
        temporary = f".{stem}.{secrets.token_hex(4)}.tmp"
        try:
            return temporary, os.open(temporary, flags, 0o666, dir_fd=folder)
        except FileExistsError:
            continue
        except OSError as exc:  # report the file asked for, not the temporary name
            raise OSError(exc.errno, exc.strerror, shown) from None
    raise OSError(errno.EEXIST, "no free temporary file name next to it", shown)


def _discard(folder: int, name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name, dir_fd=folder)


# The shipped specs' folder: files.py names it (not spec/shipped.py) so that the bottom layer
# (errors, files) can name a shipped spec without importing the spec package above it.
SHIPPED_SPECS = Path(__file__).resolve().parent.parent / "specs"


def shipped_name(file: str | os.PathLike[str]) -> str | None:
    """The name of the shipped spec that ``file`` is, as a name resolves to it
    (``SHIPPED_SPECS/googlenet.yaml`` → ``googlenet``); None for any other path, a shipped
    spec's file typed as a path included (it is shown as typed)."""
    path = Path(file)
    return path.stem if path.suffix == ".yaml" and path.parent == SHIPPED_SPECS else None


def shown_path(path: str | os.PathLike[str]) -> str:
    """How an output (a page, a header, metadata) names a file it was made from, without the
    layout of this machine: a shipped spec by its name (``googlenet``); a file under the
    working folder by its path relative to it (a relative path as given, normalized); any
    other by its file name alone. Never an absolute path, never ``..`` out of the working folder."""
    name = os.fspath(path)
    if not name:
        return name
    given = Path(os.path.normpath(name))
    shipped = shipped_name(given)
    if shipped is not None:
        return shipped
    if not given.is_absolute() and given.parts[:1] != ("..",):
        return given.as_posix()
    try:
        here = Path.cwd()
    except OSError:  # the working folder was removed
        return given.name
    for inside, folder in ((given, here), (_real(given), _real(here))):
        if folder in inside.parents:
            return inside.relative_to(folder).as_posix()
    return given.name


def _real(path: Path) -> Path:
    try:
        return path.resolve()
    except (RuntimeError, OSError):
        return path
