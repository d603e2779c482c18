"""The error types for everything a user can cause, and how any other exception is turned into one line.

Every message names the file (or corpus, or folder) concerned and says what was expected, so the CLI
can print it as it is, without a traceback, and exit non-zero.

Exceptions that are not CytohubErrors reach the user through `explain`: raised while a raw file was being
read (zlib.error, BadZipFile, struct.error, RecursionError, MemoryError, Pillow's errors...), they become one
line naming that file (`reading` records the raw file being read); a full, read-only or quota-limited disk
is said as such, wherever it happens. Anything else is a bug: the CLI saves its traceback
(`save_traceback`) and prints one line with the file's path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path


class CytohubError(Exception):
    """A problem with the user's input: a path, a raw layout, a file, an option."""

    exit_code = 2


class RawLayoutError(CytohubError):
    """The raw data does not have the documented layout of the corpus."""


class IncompleteDownloadError(RawLayoutError):
    """The raw data lacks files or rows that the publisher states the download holds."""


class RawFileError(CytohubError):
    """A raw file is unreadable, truncated, corrupt or of the wrong kind."""


class DatasetNotFoundError(CytohubError):
    """No raw data was found; the message carries the corpus's download instructions."""


class ValidationError(CytohubError):
    """A build folder failed validation."""


class OutputError(CytohubError):
    """cytohub cannot write where it was asked to: disk full, read-only, no permission, quota, a file in the
    way, another build writing the same folder."""


class ResourceError(CytohubError):
    """The machine ran out of a resource (memory) while reading the input."""


class Terminated(KeyboardInterrupt):
    """SIGTERM was received; handled like Ctrl-C (clean-up runs, nothing is left half-written)."""


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) and SIGTERM until the block ends, then deliver them to their handlers: for steps
    that must not be cut in the middle, such as starting worker threads (a thread whose `start()` is
    interrupted runs on without being joined by its pool, and writes after the clean-up). Works in the main
    thread (where Python runs signal handlers); elsewhere the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: held.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if held:
            signal.raise_signal(held[0])  # now, to the handler that was in place


def worker_signals() -> None:
    """For a worker process (a pool's initializer): Ctrl-C is left to the parent, which stops the pool and
    cleans up, and SIGTERM ends the worker at once, silently; neither prints a worker's traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


# --------------------------------------------------------------------------------------------- what is being read
_reading: ContextVar[str | None] = ContextVar("cytohub_reading", default=None)


def reading(path: str | None) -> None:
    """Record the raw file being read now (RawTree calls this), so an exception a library raises while a
    builder parses it can name it."""
    _reading.set(path)


def last_read() -> str | None:
    """The raw file most recently opened for reading in this thread, or None."""
    return _reading.get()


# --------------------------------------------------------------------------------------------- classification
_DISK_ERRNOS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
                errno.EROFS: "read-only file system",
                errno.EFBIG: "file too large (over the file system's limit or the process's file size limit, "
                             "`ulimit -f`)"}
_INPUT_KINDS: tuple[type[BaseException], ...] = (
    OSError, EOFError, ValueError, ArithmeticError, NotImplementedError, RuntimeError, SyntaxError, Warning,
)


def _input_kinds() -> tuple[type[BaseException], ...]:
    """Exception types a library raises on malformed input (modules imported since start-up included)."""
    kinds = _INPUT_KINDS
    for mod, names in (("zlib", ("error",)), ("zipfile", ("BadZipFile", "LargeZipFile")), ("lzma", ("LZMAError",)),
                       ("struct", ("error",)), ("tarfile", ("TarError",)), ("csv", ("Error",)),
                       ("PIL.Image", ("DecompressionBombError",)), ("py7zr.exceptions", ("ArchiveError",)),
                       ("scipy.io.matlab", ("MatReadError",))):
        m = sys.modules.get(mod)
        for n in names:
            t = getattr(m, n, None) if m is not None else None
            if isinstance(t, type) and issubclass(t, BaseException) and t not in kinds:
                kinds += (t,)
    return kinds


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then its cause or context, and so on (each once)."""
    seen = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def release_memory(exc: BaseException) -> bool:
    """If `exc` is, or was caused by, a MemoryError: clear the local variables of the finished frames in its
    traceback chain (which keep alive whatever the failed code was building, e.g. a parsed annotation file)
    and collect garbage, so that the clean-up and the one-line message that follow have memory to run in.
    Returns whether it did."""
    import gc

    chain = list(_chain(exc))
    if not any(isinstance(e, MemoryError) for e in chain):
        return False
    for e in chain:
        if e.__traceback__ is not None:
            traceback.clear_frames(e.__traceback__)
    del chain
    gc.collect()
    return True


def disk_cause(exc: BaseException) -> OSError | None:
    """The OSError in `exc`'s chain (itself, its cause or context) that says the disk is full, read-only,
    over quota or a file too large, or None."""
    seen = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in _DISK_ERRNOS:
            return e
        e = e.__cause__ or e.__context__
    return None


def os_reason(exc: OSError) -> str:
    """A short, true description of an OSError: 'no space left on the device', 'permission denied'..."""
    if exc.errno in _DISK_ERRNOS:
        return _DISK_ERRNOS[exc.errno]
    if exc.errno is not None:
        return os.strerror(exc.errno).lower() if exc.strerror is None else exc.strerror.lower()
    return str(exc)


def describe(exc: BaseException) -> str:
    """'TypeName: message' with module-level error classes qualified (zlib.error, struct.error)."""
    name = type(exc).__name__
    if name in ("error", "Error"):
        name = f"{type(exc).__module__}.{name}"
    text = str(exc).strip() or "(no message)"
    return f"{name}: {text}"


def explain(exc: BaseException, where: str | None) -> CytohubError | None:
    """A CytohubError saying the true cause of `exc`, raised while reading `where` (a raw file, or None),
    or None when `exc` is a bug (or a KeyboardInterrupt / SystemExit, which pass through). Without `where`,
    only causes that carry their own place (a disk error, an OSError with a file name) or need none
    (MemoryError) are explained.

    A CytohubError is returned as it is, unless a full, read-only or quota-limited disk lies under it (some
    readers wrap every OSError as "the archive may be corrupt")."""
    if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
        return None
    disk = disk_cause(exc)
    if disk is not None:
        place = disk.filename or where
        return OutputError(f"{place}: {_DISK_ERRNOS[disk.errno]}" if place else _DISK_ERRNOS[disk.errno])
    if isinstance(exc, CytohubError):
        return exc
    if where is None:  # no file to name: only causes that say where they are, or need no place
        if isinstance(exc, MemoryError):
            return ResourceError("ran out of memory; close other programs or use a machine with more memory")
        if isinstance(exc, OSError) and exc.filename:
            return CytohubError(f"{exc.filename}: {os_reason(exc)}")
        return None
    what = where
    if isinstance(exc, MemoryError):
        return ResourceError(f"{what}: ran out of memory while reading it; the file may be hostile (a bomb) or "
                             "need more memory than this machine has")
    if isinstance(exc, RecursionError):
        return RawFileError(f"{what}: nested too deeply to read ({exc})")
    if isinstance(exc, NotImplementedError):
        return RawFileError(f"{what}: uses a feature cytohub's readers do not support ({describe(exc)})")
    if isinstance(exc, _input_kinds()):
        return RawFileError(f"{what}: cannot be read ({describe(exc)})")
    return None


# --------------------------------------------------------------------------------------------- bugs
def save_traceback(exc: BaseException, folder: Path) -> Path | None:
    """Write `exc`'s traceback (with the command line and versions) to a new file in `folder`, else in the
    system's temporary folder; returns its path, or None if nothing could be written."""
    from cytohub import __version__

    text = (f"cytohub {__version__}, Python {sys.version.split()[0]} on {sys.platform}\n"
            f"command: {' '.join(sys.argv)}\n\n" + "".join(traceback.format_exception(exc)))
    name = f"cytohub-traceback-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    import tempfile

    for base in (folder, Path(tempfile.gettempdir())):
        try:
            base.mkdir(parents=True, exist_ok=True)
            path = base / name
            path.write_text(text, encoding="utf-8")
            return path
        except OSError:
            continue
    return None
