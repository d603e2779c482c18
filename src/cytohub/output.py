"""Writing a build's output safely: checks of the destination, one build per destination at a time, and a
file sink that turns write failures into exceptions instead of aborting the process.

* `check_destination(out, raw)`: `--out` must name a folder cytohub may create or replace: not a file,
  not the current folder or one of its parents, not the file system root, not inside the raw data and not
  containing it (replacing it would delete the raw data).
* `check_tmp_dir(path)`: an explicit `--tmp-dir` must exist and be writable.
* `DestinationLock(out)`: an exclusive lock on `.NAME.cytohub.lock` next to `out` (fcntl.flock, released by
  the kernel when the process dies, so a killed build never leaves a stale lock). A second build to the same
  folder fails at once with one line; the lock file is removed when the lock is released.
* `GuardedFile(path)`: a file object for `pyarrow.parquet.ParquetWriter`. When the disk is full, pyarrow's
  Parquet writer with content-defined chunking (pyarrow 21+) aborts the whole process on a failed write
  (`Check failed: _s.ok()`, exit 134) instead of raising; this sink never fails a write towards pyarrow, it
  keeps the first OSError and `check()` raises it after the call, so the build reports a full disk in one
  line and removes its staging folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from cytohub.errors import OutputError, os_reason

LOCK_SUFFIX = ".cytohub.lock"


# --------------------------------------------------------------------------------------------- destination
def check_destination(out: Path, raw: Path | None = None, what: str = "the raw data") -> None:
    """Refuse an `out` that cytohub must not create or replace (see the module docstring): `raw` is an input
    folder `out` must neither be nor lie inside nor contain, named `what` in the message. Raises OutputError."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} is a file, not a folder; pass a folder to create, e.g. out/NAME")
    target = Path(os.path.realpath(out))
    if target == Path(target.anchor):
        raise OutputError(f"--out {out} is the root of the file system; pass a folder to create, e.g. out/NAME")
    cwd = Path(os.path.realpath(Path.cwd()))
    if target == cwd or target in cwd.parents:
        raise OutputError(f"--out {out} is the current folder or contains it; a build replaces its --out "
                          "folder: pass a new folder, e.g. out/NAME")
    if raw is not None and raw.exists():
        rt, ot = Path(os.path.realpath(raw)), target
        if ot == rt or rt in ot.parents:
            raise OutputError(f"--out {out} is inside {what} {raw}; pass a folder outside it")
        if ot in rt.parents:
            raise OutputError(f"--out {out} contains {what} {raw}; replacing it would delete {what}: "
                              "pass another folder")


def check_tmp_dir(path: Path) -> None:
    """An explicit temporary folder must exist and accept new files. Raises OutputError."""
    if not path.exists():
        raise OutputError(f"--tmp-dir {path} does not exist; pass an existing folder with free space")
    if not path.is_dir():
        raise OutputError(f"--tmp-dir {path} is a file, not a folder")
    try:
        probe = tempfile.mkdtemp(prefix=".cytohub-probe-", dir=path)
    except OSError as exc:
        raise OutputError(f"--tmp-dir {path}: cannot create files there ({os_reason(exc)})") from None
    os.rmdir(probe)


def free_bytes(path: Path) -> int | None:
    """Free bytes on the file system holding `path` (or its nearest existing parent), or None."""
    for p in (path, *path.parents):
        with contextlib.suppress(OSError):
            if p.exists():
                return shutil.disk_usage(p).free
    return None


# --------------------------------------------------------------------------------------------- lock
class DestinationLock:
    """Exclusive lock for building into `out`; use as a context manager. Raises OutputError when another
    process holds it, or when the folder next to `out` cannot be written."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.path = out.parent / f".{out.name}{LOCK_SUFFIX}"
        self._fd: int | None = None

    def __enter__(self) -> DestinationLock:
        for _ in range(100):  # retried only when the file was replaced between open and lock
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise OutputError(f"{self.out.parent}: cannot write there ({os_reason(exc)}); --out must be in a "
                                  "writable folder") from None
            if not _try_lock(fd):
                holder = _read_pid(fd)
                os.close(fd)
                raise OutputError(f"{self.out}: another cytohub build is writing this folder"
                                  + (f" (process {holder})" if holder else "")
                                  + "; wait for it to finish or choose another --out")
            try:  # the holder before us may have removed the file after we opened it: lock the current one
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                self._fd = fd
                return self
            os.close(fd)
        raise OutputError(f"{self.path}: could not take the build lock")

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)  # while still holding the lock, so no one else locks this file
            os.close(self._fd)
            self._fd = None


try:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
except ImportError:  # Windows
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip() or 0) or None
    except (OSError, ValueError, AttributeError):
        return None


# --------------------------------------------------------------------------------------------- sink
class GuardedFile:
    """A binary file for pyarrow writers that never fails a write: the first OSError is kept (later data is
    discarded) and `check()` raises it. Call `check()` after every writer call and after `close()`."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._f = open(self.path, "wb")  # noqa: SIM115 - closed by close()
        self._pos = 0
        self.error: OSError | None = None
        self.closed = False

    def _guard(self, fn, *args) -> None:
        if self.error is None:
            try:
                fn(*args)
            except OSError as exc:
                if exc.filename is None:
                    exc.filename = str(self.path)
                self.error = exc

    def write(self, data) -> int:
        n = len(data) if not isinstance(data, memoryview) else data.nbytes
        self._guard(self._f.write, data)
        self._pos += n
        return n

    def tell(self) -> int:
        return self._pos

    def flush(self) -> None:
        self._guard(self._f.flush)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._guard(self._f.close)
            if not self._f.closed:
                with contextlib.suppress(OSError):
                    self._f.close()

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def check(self) -> None:
        """Raise the first write error, if any."""
        if self.error is not None:
            raise self.error
