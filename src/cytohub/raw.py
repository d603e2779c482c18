"""RawTree: one read-only view over a raw download, whatever it is shipped as.

A raw path may be a folder, a `.zip`, a `.7z`, a `.tar[.gz|.bz2|.xz]`, or any nesting of those (CCCID ships
`.zip.7z`: a zip inside a 7z; CCAgT ships per-slide zips inside a zip). Archives are expanded into one
virtual tree whose paths use `/` and keep archive names as folders, for example
`CCCID_NILM_part1.zip.7z/CCCID_NILM_part1.zip/NILM/1. Superficial-Intermediate Cells/001_(3059,11012,0).jpg`.

How each kind is read:
* a zip on disk is read in place, member by member, with positional reads (nothing extracted); stored,
  deflate, Deflate64, bzip2 and LZMA members are decompressed as they are read (`cytohub.zipindex`), and the
  central directory is read in chunks into a compact index (`cytohub.filetable`);
* a 7z or tar needs sequential decompression, so its members are unpacked once into a private temporary
  folder (`cytohub-raw-<pid>-*` under `--tmp-dir`/TMPDIR, under names derived from their hash, so long or
  odd member names do not matter), and a zip nested inside another archive is copied out once; all of that
  is removed by `close()`, and the folders of killed runs by the next run.

Raw input is untrusted. Every limit of `cytohub.limits` that concerns bytes is enforced here, before
decompression: a member's declared size against `member_bytes` (`image_bytes` for images) before it is read,
and reads stop at the declared size (a longer stream is an error, as is a CRC mismatch); compression ratios
of members and archives; archive nesting depth; the total written to the temporary folder (`unpacked_bytes`)
and the free space left there (`free_space_reserve`); the number of files. Member names are checked (no
absolute paths, drive letters, `..` or NUL bytes, no duplicates). In folders, named pipes, devices, sockets
and symbolic links leaving the raw folder are never opened; symbolic-link, device and other special members
of archives are never followed. Operating-system litter (`__MACOSX/`, `._*`, `.DS_Store`, `Thumbs.db`) and an
archive whose unpacked copy lies beside it are set aside. Everything set aside carries a reason.

The tree records which files a builder read and which it skipped (with a reason), so the build report can
account for every raw file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import lzma
import os
import re
import shutil
import stat
import tarfile
import tempfile
import threading
import zipfile
import zlib
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import numpy as np

from cytohub import errors, limits
from cytohub.errors import CytohubError, DatasetNotFoundError, RawFileError
from cytohub.filetable import FILE, LITTER, FileList, FileTable, RecordList, SkippedView, UsedView
from cytohub.limits import Limits, human_bytes
from cytohub.zipindex import MemberRecord, ZipReader, iter_central_directory, record_of

ARCHIVE_SUFFIXES = (".zip", ".7z", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp", ".jp2")
_LITTER_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}
_CHUNK = 1 << 20
_TMP_PREFIX = "cytohub-raw-"
_UNPACK_HINT = "unpack it with 7-Zip (7z x ARCHIVE) and pass the unpacked folder with --raw"
# 7z coder ids (7-Zip's Methods.txt) for naming what py7zr cannot decode
_7Z_METHODS = {"0303011b": "BCJ2", "0a": "ARM64", "0b": "RISCV", "04": "BCJ", "05": "PPC", "06": "IA64",
               "07": "ARM", "08": "ARMT", "09": "SPARC", "030401": "PPMd", "040109": "Deflate64",
               "0405": "Z", "0406": "LZH", "06f10701": "7zAES", "04f71101": "Zstandard", "04f71104": "LZ4"}


def archive_kind(name: str) -> str | None:
    """'zip', '7z' or 'tar' from a file name, else None."""
    low = name.lower()
    if low.endswith(".zip"):
        return "zip"
    if low.endswith(".7z"):
        return "7z"
    if low.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
        return "tar"
    return None


def _archive_stem(name: str) -> str:
    """The name an archive unpacks to in place: 'annotations.zip' -> 'annotations', 'X.zip.7z' -> 'X.zip'."""
    low = name.lower()
    for suf in (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tar", ".zip", ".7z"):
        if low.endswith(suf):
            return name[: len(name) - len(suf)]
    return name


def _sniff_kind(path: Path) -> str | None:
    """The archive kind from the file's first bytes."""
    with _open_regular(path, str(path)) as fh:
        head = fh.read(262)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return "7z"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")):
        return "tar"  # compressed tar; tarfile will say if it is not one
    return None


def safe_member_name(name: str, archive: str) -> str:
    """A member name normalised to a relative posix path, or an error if it could escape the tree."""
    norm = name.replace("\\", "/")
    if "\x00" in norm or norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        raise RawFileError(f"{archive}: member {name!r} has an absolute path; expected relative member paths")
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise RawFileError(f"{archive}: member {name!r} contains '..'; expected paths inside the archive")
    return "/".join(parts)


def is_litter(path: str) -> bool:
    parts = path.split("/")
    name = parts[-1]
    return "__MACOSX" in parts or name.startswith("._") or name.lower() in _LITTER_NAMES


def _zip_name(info: zipfile.ZipInfo) -> str:
    """Member name; zips written without the UTF-8 flag but with UTF-8 names are common (macOS, 7-Zip)."""
    name = info.filename
    if not info.flag_bits & 0x800:
        with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
            name = name.encode("cp437").decode("utf-8")
    return name


_SPECIAL_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
                  (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _special_kind(mode: int) -> str:
    for test, kind in _SPECIAL_KINDS:
        if test(mode):
            return kind
    return "not a regular file"


_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
               | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))


def _open_fd(path: Path, where: str) -> tuple[int, int]:
    """(descriptor, size) of a regular file opened for reading: never blocks on a FIFO (O_NONBLOCK, which
    does not affect regular files), never follows a final symbolic link (links inside the raw folder are
    resolved when it is scanned); anything but a regular file is refused."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise RawFileError(f"{where}: is a symbolic link; links are not followed when reading") from None
        raise RawFileError(f"{where}: cannot be opened ({exc.strerror})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise RawFileError(f"{where}: is {_special_kind(st.st_mode)}; expected a regular file")
    return fd, st.st_size


def _open_regular(path: Path, where: str) -> BinaryIO:
    """A binary file object for a regular file (see `_open_fd`)."""
    return os.fdopen(_open_fd(path, where)[0], "rb")


# ------------------------------------------------------------------------------------------------ 7z writer
class _SpillWriter:
    """Where py7zr writes one 7z member: a file in the temporary folder, never past its declared size (py7zr's
    Py7zIO interface, duck-typed so that py7zr is imported only when a 7z is met)."""

    __slots__ = ("_tree", "_declared", "_where", "_n", "_fh", "_open")

    def __init__(self, tree: RawTree, dest: str, declared: int, where: str, open_writers: set) -> None:
        self._tree, self._declared, self._where = tree, declared, where
        self._n = 0
        self._fh = tree._create(dest, where)
        self._open = open_writers
        open_writers.add(self)

    def write(self, s: bytes | bytearray) -> int:
        self._tree._check_cancelled(self._where)
        self._n += len(s)
        if self._n > self._declared:
            raise RawFileError(f"{self._where}: unpacks to more than the {self._declared} bytes its header "
                               "declares; the archive is corrupt or crafted")
        if self._fh is None:
            raise RawFileError(f"{self._where}: written after it was closed; the archive is corrupt")
        self._tree._write(self._fh, s, self._where)
        return len(s)

    def read(self, size: int | None = None) -> bytes:
        return b""

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._n

    def seekable(self) -> bool:
        return False

    def flush(self) -> None:
        pass

    def size(self) -> int:
        return self._n

    def close(self) -> None:
        self._open.discard(self)
        fh, self._fh = self._fh, None  # py7zr keeps every writer to the end: keep no file object alive in it
        if fh is not None and not fh.closed:
            self._tree._close_written(fh, self._where)


class _NullWriter:
    """Where py7zr writes members that are not kept (symbolic links, sockets): nowhere."""

    def write(self, s: bytes | bytearray) -> int:
        return len(s)

    def read(self, size: int | None = None) -> bytes:
        return b""

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def seekable(self) -> bool:
        return False

    def flush(self) -> None:
        pass

    def size(self) -> int:
        return 0

    def close(self) -> None:
        pass


class _SpillFactory:
    """py7zr's writer factory: `plan` maps py7zr's key of each kept member to (destination, declared size,
    virtual path). Only the writers still open are held (a 7z of a million members made a million of them)."""

    def __init__(self, tree: RawTree, plan: dict[str, tuple[str, int, str]]) -> None:
        self.tree, self.plan = tree, plan
        self.writers: set[_SpillWriter] = set()  # open ones

    def create(self, filename: str):
        entry = self.plan.get(filename)
        if entry is None:
            return _NullWriter()
        return _SpillWriter(self.tree, *entry, self.writers)


@dataclass(slots=True)
class _Unpacked:
    """A member unpacked to the temporary folder (`disk`), or set aside (`reason`), registered in scan order."""

    vpath: str
    disk: str | None
    size: int
    reason: str | None = None


class _Cancelled(RawFileError):
    """Unpacking stopped because the build is stopping (an interrupt, or an error in another archive)."""


class RawFile:
    """One file of the raw tree. `path` is relative to the raw root, `/`-separated, archives as folders.

    Made on demand from the tree's compact file table. A RawFile pickles to a detached copy that reads the
    same bytes in another process (a file on disk or a zip member, by path), so rows can be read and encoded
    in worker processes; a detached copy records the sha256 of a loose input file it reads in
    `DETACHED_SHA256` (index -> digest) for the parent to collect."""

    __slots__ = ("path", "size", "_tree", "_loc", "_index")

    def __init__(self, path: str, size: int, _tree: RawTree | None, _loc: tuple, _index: int = -1) -> None:
        self.path, self.size, self._tree, self._loc, self._index = path, size, _tree, _loc, _index

    def __repr__(self) -> str:
        return f"RawFile(path={self.path!r}, size={self.size})"

    def __reduce__(self):
        loc, want_sha = self._loc, False
        if self._tree is not None:
            loc = self._tree._portable(self)
            want_sha = self._tree._wants_sha(self)
        return (_detached, (self.path, self.size, loc, self._index, want_sha))

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.path.split("/"))

    @property
    def parent(self) -> str:
        return self.path.rsplit("/", 1)[0] if "/" in self.path else ""

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.name).suffix.lower()

    @property
    def stem(self) -> str:
        return PurePosixPath(self.name).stem

    @property
    def limit_name(self) -> str:
        """The limit a whole read of this file is held to: `image_bytes` for images, else `member_bytes`."""
        return "image_bytes" if self.name.lower().endswith(IMAGE_SUFFIXES) else "member_bytes"

    def read_bytes(self) -> bytes:
        """The whole file. Refused (LimitError) before anything is read if its size is over `limit_name`;
        RawFileError if it is truncated, corrupt or longer than its archive header declares."""
        if self._tree is None:
            return _read_detached(self)
        data = self._tree._read(self)
        self._tree.mark_used(self)
        return data

    def read_text(self, encoding: str = "utf-8-sig") -> str:
        data = self.read_bytes()
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as exc:
            raise RawFileError(f"{self.path}: not valid {encoding} text ({exc.reason} at byte {exc.start})") from None

    def lines(self, encoding: str = "utf-8-sig") -> Iterator[str]:
        """The file's lines, without their endings (\\n, \\r\\n or \\r), decoded as they are read: memory holds
        one line, never a list of them (a 256 MB file of short lines is 5 GB as a list of strings). More than
        the `text_lines` limit is refused (LimitError); text not valid in `encoding` is a RawFileError naming
        the line."""
        lim = self._tree.limits if self._tree is not None else limits.current()
        n = 0
        with self.open() as fh, io.TextIOWrapper(fh, encoding=encoding, newline=None) as text:
            try:
                for line in text:
                    n += 1
                    if n > lim.text_lines:
                        raise lim.error("text_lines", n, self.path, f"has more than {lim.text_lines:,} lines")
                    yield line[:-1] if line.endswith("\n") else line
            except UnicodeDecodeError as exc:
                raise RawFileError(f"{self.path}: not valid {encoding} text ({exc.reason} in line {n + 1})") from None

    def open(self) -> BinaryIO:
        """A read-only, seekable binary stream of the file (for readers that want a file object). The size is
        checked as for `read_bytes`; zip members are decompressed as they are read, never held whole. Readers
        that seek back and forth a lot (h5py) should use `local_path()`."""
        lim = self._tree.limits if self._tree is not None else limits.current()
        _check_whole_read(self, lim)
        if self._tree is not None:
            self._tree.mark_used(self)
        if self._loc[0] == "fs":
            return _open_regular(Path(self._loc[1]), self.path)
        return io.BufferedReader(_zip_reader(self).open(self._loc[2], self.path), _CHUNK)

    def local_path(self) -> Path:
        """A path on disk holding this file's bytes: the file itself when it is on disk, else a copy in the
        temporary folder (counted against `unpacked_bytes` and the free-space reserve)."""
        if self._loc[0] == "fs":
            if self._tree is not None:
                self._tree.mark_used(self)
            return Path(self._loc[1])
        if self._tree is None:
            raise RawFileError(f"{self.path}: a detached zip member has no local path")
        self._tree.mark_used(self)
        return self._tree._copy_out(self)


DETACHED_SHA256: dict[int, bytes] = {}  # file index -> sha256 of loose input files read by detached copies
_DETACHED_ZIPS: dict[str, ZipReader] = {}


def _detached(path: str, size: int, loc: tuple, index: int, want_sha: bool) -> RawFile:
    f = RawFile(path, size, None, loc, index)
    if want_sha:
        f._loc = (*loc, "sha")
    return f


def _zip_reader(f: RawFile) -> ZipReader:
    """The reader of a zip member's archive (a detached copy opens the archive once per process)."""
    reader = f._loc[1]
    if isinstance(reader, ZipReader):
        return reader
    cached = _DETACHED_ZIPS.get(reader)
    if cached is None:
        cached = _DETACHED_ZIPS[reader] = ZipReader(reader)
    return cached


def text_lines(text: str, where: str) -> Iterator[str]:
    """The lines of `text` already in memory, like `str.splitlines()` for \\n, \\r\\n and \\r endings, but one at a
    time (no list of every line) and within the `text_lines` limit (LimitError naming `where`)."""
    lim = limits.current()
    pos, n, end = 0, 0, len(text)
    while pos < end:
        nl = text.find("\n", pos)
        stop = end if nl < 0 else nl
        line = text[pos:stop]
        if "\r" in line:  # \r\n, or old Mac \r endings inside
            parts = line.split("\r")
            if parts[-1] == "":
                parts.pop()
        else:
            parts = [line]
        for part in parts:
            n += 1
            if n > lim.text_lines:
                raise lim.error("text_lines", n, where, f"has more than {lim.text_lines:,} lines")
            yield part
        pos = stop + 1


def _check_whole_read(f: RawFile, lim: Limits) -> None:
    """Refuse a whole read of `f` over its size limit or with an absurd compression ratio, before reading."""
    lim.check(f.limit_name, f.size, f.path, f"is {human_bytes(f.size)}")
    _check_ratio(f, lim)


def _check_ratio(f: RawFile, lim: Limits) -> None:
    if f._loc[0] == "zip":
        rec: MemberRecord = f._loc[2]
        if lim.ratio_exceeded(rec.file_size, rec.compress_size):
            ratio = rec.file_size // max(rec.compress_size, 1)
            raise lim.error("compression_ratio", ratio, f.path, f"unpacks {human_bytes(rec.file_size)} from "
                            f"{human_bytes(rec.compress_size)} ({ratio:,}:1)")


def _read_whole(f: RawFile, lim: Limits) -> bytes:
    """The bytes of `f`, within the limits (see `RawFile.read_bytes`)."""
    _check_whole_read(f, lim)
    if f._loc[0] == "zip":
        return _zip_reader(f).read(f._loc[2], f.path)
    fd, size = _open_fd(Path(f._loc[1]), f.path)
    try:
        lim.check(f.limit_name, size, f.path, f"is {human_bytes(size)}")
        parts, left = [], size + 1  # sized to the file: one read for most files, none past the limit
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 30))):
            parts.append(chunk)
            left -= len(chunk)
        data = parts[0] if len(parts) == 1 else b"".join(parts)
    except OSError as exc:
        raise RawFileError(f"{f.path}: cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)
    if len(data) != size:
        raise RawFileError(f"{f.path}: changed size while it was read ({size} bytes, then {len(data)}+); "
                           "expected a file that is not being written")
    return data


def _read_detached(f: RawFile) -> bytes:
    errors.reading(f.path)  # a library error while this file is parsed (in a worker process) names it
    data = _read_whole(f, limits.current())
    if f._loc[-1] == "sha":
        DETACHED_SHA256[f._index] = hashlib.sha256(data).digest()
    return data


class RawTree:
    """A read-only, recursive view over a raw folder or archive. Use as a context manager.

    Raises DatasetNotFoundError if `root` does not exist, RawFileError (LimitError for a resource limit,
    see `cytohub.limits`) for unreadable, corrupt, encrypted or oversized input, and CytohubError when the
    temporary folder is missing, read-only or full. Limits are those of `limits.current()` at creation."""

    def __init__(self, root: str | os.PathLike, *, tmp_dir: str | os.PathLike | None = None,
                 known_sha256: dict[str, str] | None = None,
                 progress: Callable[[str], None] | None = None) -> None:
        self.root = Path(root).expanduser()
        if not self.root.exists():
            raise DatasetNotFoundError(f"raw path {self.root} does not exist; expected a folder or an archive")
        self.limits: Limits = limits.current()
        self._root_real = Path(os.path.realpath(self.root))
        self._tmp_parent = Path(tmp_dir).expanduser() if tmp_dir else None
        self._tmpdir: Path | None = None
        self._known = {k.lower(): v.lower() for k, v in (known_sha256 or {}).items()}
        self._progress = progress or (lambda msg: None)
        self._table = FileTable()  # every file and set-aside file, compact (see cytohub.filetable)
        # ("dir", base folder, virtual prefix) | ("zip", ZipReader, vpath) | ("abs",): disk path in the orig column
        self._slots: list[tuple] = [("abs",)]
        self._zips: list[ZipReader] = []
        self._archive_inputs: list[dict] = []  # archives given by the user: path, size, sha256
        self.containers: list[str] = []  # virtual paths of archives that were expanded
        self._skipped_other: dict[str, str] = {}  # skip() of paths that are not files of the tree
        self._aside: dict[str, str] = {}  # set-aside entries other than litter: path -> reason
        self._entries = 0
        self.absent_parts: list[dict[str, str]] = []  # declared parts of the download not present (note_absent)
        self._pending_unpack: dict = {}  # vpath -> Future of an archive being unpacked in the background
        self._sha256_done: dict[str, str] = {}  # disk path -> sha256 of a user's archive, hashed while unpacking
        self._tmp_lock = threading.Lock()
        self._cancel = threading.Event()  # set when the tree is closed or an unpack fails: unpack threads stop
        self._reserved = 0  # bytes promised to the temporary folder
        self._written = 0  # bytes written there
        try:
            _sweep_dead_tmp(self._tmp_parent)
            self._scan()
            self._table.seal()
            self._check_duplicates()
        except BaseException:
            self.close()
            raise

    # ----------------------------------------------------------------- scanning
    def _add(self, vpath: str, size: int, kind: int = FILE, slot: int = -1, member: tuple | None = None,
             top: bool = False, reason: str | None = None) -> None:
        """One entry of the file table (a set-aside one with its reason), within the `files` limit."""
        self._entries += 1
        self.limits.check("files", self._entries, vpath, f"is file number {self._entries:,} of the raw tree")
        if reason is not None:
            self._aside[vpath] = reason
        self._table.add(vpath, size, kind, slot, member, top=top)

    def _add_abs(self, vpath: str, disk: Path, size: int, top: bool = False) -> None:
        """A file whose bytes are at `disk` (an unpacked member, or the target of a link inside the raw folder)."""
        self._add(vpath, size, FILE, 0, (str(disk), 0, 0, 0, 0, 0, 0), top=top)

    def _scan(self) -> None:
        st = os.stat(self.root)
        if stat.S_ISDIR(st.st_mode):
            self._scan_dir(self._root_real)
            return
        if not stat.S_ISREG(st.st_mode):
            raise RawFileError(f"{self.root}: is {_special_kind(st.st_mode)}; expected a folder or an archive")
        kind = _sniff_kind(self._root_real)
        if kind is None:
            raise RawFileError(
                f"{self.root}: not a zip, 7z or tar archive (expected a folder or one of "
                f"{', '.join(ARCHIVE_SUFFIXES)})"
            )
        self._add_input(self._root_real, self.root.name, archive=True)
        self._add_archive(self._root_real, self.root.name, kind, depth=1)

    def _walk(self, base: Path) -> list[tuple[Path, str, bool]]:
        """The raw folder's regular files, sorted, depth first, as (disk path, virtual path, is a link); the
        rest is set aside with a reason. Symbolic links are followed only to files inside the raw folder."""
        found: list[tuple[Path, str, bool]] = []

        def visit(folder: Path, rel: str) -> None:
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError as exc:
                raise RawFileError(f"{rel or folder}: folder cannot be read ({exc.strerror}); nothing in it would "
                                   "be accounted for") from None
            for entry in entries:
                vpath = f"{rel}/{entry.name}" if rel else entry.name
                disk = Path(entry.path)
                try:
                    mode = entry.stat(follow_symlinks=False).st_mode
                except OSError:
                    continue  # vanished while scanning
                if stat.S_ISDIR(mode):
                    visit(disk, vpath)
                elif is_litter(vpath):
                    self._add(vpath, -1, LITTER)
                elif stat.S_ISREG(mode):
                    found.append((disk, vpath, False))
                elif stat.S_ISLNK(mode):
                    target = Path(os.path.realpath(disk))
                    if not target.exists():
                        self._add(vpath, -1, LITTER, reason="broken symbolic link")
                    elif not (target == self._root_real or self._root_real in target.parents):
                        self._add(vpath, -1, LITTER, reason="symbolic link leading outside the raw folder; not "
                                                           "followed (nothing outside the raw folder is read)")
                    elif target.is_dir():
                        self._add(vpath, -1, LITTER, reason="symbolic link to a folder inside the raw folder; its "
                                                           "files are read at their own place")
                    elif not target.is_file():
                        self._add(vpath, -1, LITTER, reason=f"symbolic link to {_special_kind(target.stat().st_mode)}"
                                                           "; never opened")
                    else:
                        found.append((target, vpath, True))
                else:
                    self._add(vpath, -1, LITTER, reason=f"{_special_kind(mode)}, not a regular file; never opened")

        visit(base, "")
        return found

    def _scan_dir(self, base: Path) -> None:
        slot = len(self._slots)
        self._slots.append(("dir", base, ""))
        found = self._walk(base)
        copies = self._unpacked_copies(found)
        archives: list[tuple[Path, str]] = []  # (file on disk, virtual path), in sorted walk order
        for disk, vpath, link in found:
            if vpath in copies:
                self._add(vpath, -1, LITTER, reason=copies[vpath])
            elif archive_kind(vpath):
                archives.append((disk, vpath))
            elif link:
                self._add_abs(vpath, disk, disk.stat().st_size, top=True)
            else:
                self._add(vpath, disk.stat().st_size, FILE, slot, top=True)
        self._prefetch(archives)
        for disk, vpath in archives:
            self._add_input(disk, vpath, archive=True)
            self._add_archive(disk, vpath, archive_kind(vpath), depth=1)

    def _add_input(self, disk: Path, vpath: str, archive: bool) -> None:
        entry = {"path": vpath, "size": disk.stat().st_size, "sha256": None}
        self._archive_inputs.append(entry)
        if archive:  # archives are hashed now (their checksums are what publishers list), or while they unpacked
            entry["sha256"] = self._sha256_done.pop(str(disk), None) or _sha256_file(disk, vpath)
            expected = self._known.get(vpath.rsplit("/", 1)[-1].lower()) or self._known.get(disk.name.lower())
            if expected and expected != entry["sha256"]:
                raise RawFileError(
                    f"{vpath}: sha256 {entry['sha256']} does not match the published {expected}; "
                    "the download is corrupt or a different version"
                )

    def _unpacked_copies(self, found: list[tuple[Path, str, bool]]) -> dict[str, str]:
        """Archives that lie beside their own unpacked copy (the state after unpacking in place): the copy
        is used, the archive set aside. Same member names and sizes are required; a partial copy is not one."""
        on_disk = {v: d for d, v, _ in found}
        dirs = {v.rsplit("/", 1)[0] for v in on_disk if "/" in v}
        dirs |= {d.rsplit("/", i)[0] for d in list(dirs) for i in range(1, d.count("/") + 1)}
        loose: dict[str, bool] = {}  # folder ('' or 'a/b/') -> it holds something that is not an archive
        for v in on_disk:
            if archive_kind(v) is None:
                parts = v.split("/")
                for i in range(len(parts)):
                    loose["/".join(parts[:i]) + "/" if i else ""] = True
        out: dict[str, str] = {}
        for disk, vpath, _ in found:
            kind = archive_kind(vpath)
            if kind is None:
                continue
            stem = _archive_stem(vpath.rsplit("/", 1)[-1])
            parent = vpath.rsplit("/", 1)[0] + "/" if "/" in vpath else ""
            sibling = f"{parent}{stem}"
            if sibling in on_disk:
                listing = self._listing(disk, vpath, kind)
                if listing is not None and list(listing) == [stem] and listing[stem] == on_disk[sibling].stat().st_size:
                    out[vpath] = f"its unpacked copy {sibling} lies beside it and is used instead"
                continue
            # an archive unpacked into its own folder (`sibling`), or into the folder it lies in (`unzip x.zip`
            # writes the members beside it, under whatever top folder they have); zip and 7z list their members
            # from a directory, so they are checked whenever that folder holds anything besides archives
            if sibling not in dirs and not (kind in ("zip", "7z") and loose.get(parent)):
                continue
            listing = self._listing(disk, vpath, kind)
            if not listing:
                continue
            for prefix in (parent, f"{sibling}/"):
                if all(on_disk.get(prefix + m) is not None and on_disk[prefix + m].stat().st_size == n
                       for m, n in listing.items()):
                    if prefix == parent:  # named by the top-level entries it unpacked to
                        tops = sorted({m.split("/", 1)[0] + ("/" if "/" in m else "") for m in listing})
                        copy = ", ".join(parent + t for t in tops[:3]) + (f", ... ({len(tops) - 3} more)"
                                                                         if len(tops) > 3 else "")
                    else:
                        copy = f"{sibling}/"
                    out[vpath] = f"its unpacked copy {copy} lies beside it and is used instead"
                    break
        return out

    def _listing(self, disk: Path, vpath: str, kind: str) -> dict[str, int] | None:
        """Member name -> size of an archive's regular files (litter left out), or None if unreadable."""
        try:
            if _sniff_kind(disk) != kind:
                return None
            out: dict[str, int] = {}
            if kind == "zip":
                with _open_regular(disk, vpath) as fh:
                    for info in iter_central_directory(fh):
                        name = safe_member_name(_zip_name(info), vpath)
                        if not info.is_dir() and name and not is_litter(name):
                            out[name] = info.file_size
                        if len(out) > self.limits.files:
                            return None
            elif kind == "7z":
                with _open_7z(disk, self.limits) as z:
                    for f in z.files:
                        name = safe_member_name(f.filename, vpath)
                        if not (f.is_directory or f.is_symlink) and name and not is_litter(name):
                            out[name] = f.uncompressed or 0
            else:
                with _open_regular(disk, vpath) as fh, tarfile.open(fileobj=fh, mode="r|*") as tf:
                    for m in tf:
                        name = safe_member_name(m.name, vpath)
                        if m.isfile() and name and not is_litter(name):
                            out[name] = m.size
            return out
        except Exception:  # an unreadable archive is not a copy; reading it later gives the real error
            return None

    def _add_archive(self, disk: Path, vpath: str, kind: str, depth: int) -> None:
        self.limits.check("nesting_depth", depth, vpath, f"is an archive nested {depth} levels deep")
        sniffed = _sniff_kind(disk)
        if sniffed != kind:
            raise RawFileError(f"{vpath}: named like a {kind} archive but its content is not one "
                               f"({'looks like ' + sniffed if sniffed else 'unknown format'})")
        self.containers.append(vpath)
        errors.reading(vpath)  # a library error while scanning it names this archive
        self._progress(f"reading {vpath}")
        if kind == "zip":
            self._add_zip(disk, vpath, depth)
            return
        fut = self._pending_unpack.pop(vpath, None)
        members = fut.result() if fut is not None else self._unpack(disk, vpath, kind)
        for m in members:
            if m.reason is not None:
                self._add(m.vpath, -1, LITTER, reason=m.reason)
            elif archive_kind(m.vpath):
                self._add_archive(Path(m.disk), m.vpath, archive_kind(m.vpath), depth + 1)
            else:
                self._add_abs(m.vpath, m.disk, m.size)

    # ----------------------------------------------------------------- zip
    def _add_zip(self, disk: Path, vpath: str, depth: int) -> None:
        lim = self.limits
        try:
            zf = ZipReader(disk)
        except OSError as exc:
            raise RawFileError(f"{vpath}: not a readable zip archive ({exc.strerror})") from None
        self._zips.append(zf)
        slot = len(self._slots)
        self._slots.append(("zip", zf, vpath))
        starts, ends = array("q"), array("q")  # each member's span in the file, to find overlaps
        total = 0
        with _open_regular(disk, vpath) as fh:
            infos = iter_central_directory(fh)
            while True:
                try:
                    info = next(infos)
                except StopIteration:
                    break
                except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, ValueError) as exc:
                    raise RawFileError(f"{vpath}: not a readable zip archive ({exc}); the file may be "
                                       "truncated") from None
                starts.append(info.header_offset)
                ends.append(info.header_offset + 30 + info.compress_size)
                total += info.file_size
                if info.is_dir():
                    continue
                name = safe_member_name(_zip_name(info), vpath)
                if not name:
                    continue
                member = f"{vpath}/{name}"
                if info.flag_bits & 0x1:
                    raise RawFileError(f"{vpath}: the archive is encrypted (member {name!r} needs a password); "
                                       "expected an unencrypted archive: decrypt it with 7-Zip and pass the folder")
                if is_litter(member):
                    self._add(member, -1, LITTER)
                    continue
                ftype = (info.external_attr >> 16) & 0o170000 if info.create_system == 3 else 0
                if ftype == stat.S_IFLNK:
                    self._add(member, -1, LITTER, reason="symbolic link member; links in archives are never followed")
                    continue
                if ftype not in (0, stat.S_IFREG):
                    self._add(member, -1, LITTER, reason=f"{_special_kind(ftype)} member; never read")
                    continue
                kind = archive_kind(name)
                if kind:  # nested archive: copy it out once (within the limits), then read it like a file on disk
                    rec = record_of(info)
                    if lim.ratio_exceeded(rec.file_size, rec.compress_size):
                        ratio = rec.file_size // max(rec.compress_size, 1)
                        raise lim.error("compression_ratio", ratio, member, f"unpacks {human_bytes(rec.file_size)} "
                                        f"from {human_bytes(rec.compress_size)} ({ratio:,}:1)")
                    lim.check("nesting_depth", depth + 1, member, f"is an archive nested {depth + 1} levels deep")
                    out = self._spill_path(member)
                    self._reserve(rec.file_size, member)
                    with zf.open(rec, member) as src:
                        self._copy(src, out, rec.file_size, member)
                    self._add_archive(out, member, kind, depth + 1)
                else:
                    self._add(member, info.file_size, FILE, slot, record_of(info))
        self._check_zip_whole(zf, np.frombuffer(starts, dtype=np.int64), np.frombuffer(ends, dtype=np.int64),
                              total, vpath)

    def _check_zip_whole(self, zf: ZipReader, starts: np.ndarray, ends: np.ndarray, total: int, vpath: str) -> None:
        """Refuse a zip whose central directory does not describe the file: a truncated zip of zips (the
        directory found is that of the last complete inner zip), overlapping members (a zip bomb), or an
        absurd total compression ratio."""
        lim = self.limits
        first = int(starts.min()) if len(starts) else 0
        if first > 0 and zf.pread(4, 0) == b"PK\x03\x04":
            raise RawFileError(f"{vpath}: the zip is truncated: its own central directory is missing (the one found "
                               f"belongs to a zip stored inside it, {first} bytes in); download it again")
        order = np.argsort(starts, kind="stable")
        if len(order) > 1 and bool((starts[order][1:] < ends[order][:-1]).any()):
            raise RawFileError(f"{vpath}: members overlap in the file (a zip bomb or a corrupt archive); "
                               "expected each member stored once")
        if lim.ratio_exceeded(total, zf.size):
            raise lim.error("compression_ratio", total // max(zf.size, 1), vpath,
                            f"declares {human_bytes(total)} unpacked from {human_bytes(zf.size)} "
                            f"({total // max(zf.size, 1):,}:1)")

    def _check_duplicates(self) -> None:
        """Two entries with one path (a name repeated in an archive) are an error: which is meant is unknown."""

        first = self._table.first_duplicate()
        if first is not None:
            path = self._table.path(first)
            archive = max((c for c in self.containers if path.startswith(c + "/")), key=len, default="")
            raise RawFileError(f"{archive or self.root}: member {path.removeprefix(archive + '/')!r} appears twice; "
                               "expected unique member names (which copy is meant is unknown)")

    # ----------------------------------------------------------------- 7z and tar
    def _prefetch(self, found: list[tuple[Path, str]]) -> None:
        """Unpack the 7z/tar archives among a folder's files concurrently (LZMA and zlib release the GIL), so
        that a multi-archive download uses every core; scanning then proceeds in sorted order as usual."""
        todo = [(disk, vpath) for disk, vpath in found if archive_kind(vpath) in ("7z", "tar")]
        todo.sort(key=lambda t: -t[0].stat().st_size)  # largest first: the cores finish together
        workers = min(len(todo), os.cpu_count() or 1, 4)
        if workers < 2:
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            with errors.signals_deferred():  # an interrupt inside submit() would leave an unjoined worker
                for disk, vpath in todo:
                    self._pending_unpack[vpath] = pool.submit(self._unpack, disk, vpath, archive_kind(vpath))
            try:
                for disk, vpath in sorted(found):  # while the archives unpack: hash them (hashlib frees the GIL)
                    if self._cancel.is_set() or any(f.done() and f.exception() is not None
                                                    for f in self._pending_unpack.values()):
                        break
                    with contextlib.suppress(OSError, CytohubError):  # _add_input hashes again and says why
                        self._sha256_done[str(disk)] = _sha256_file(disk, vpath)
                for fut in self._pending_unpack.values():  # surface the first error before scanning
                    if fut.exception() is not None:
                        break
            except BaseException:  # Ctrl-C or SIGTERM while waiting: the other archives stop at their next write
                self._cancel.set()
                raise
            if any(f.done() and f.exception() is not None for f in self._pending_unpack.values()):
                self._cancel.set()  # an archive failed: the build stops, so the others need not finish
        failed = [fut.exception() for vpath, fut in sorted(self._pending_unpack.items())
                  if fut.exception() is not None and not isinstance(fut.exception(), _Cancelled)]
        if failed:  # the true error (of the first archive in path order), not "unpacking stopped" of another
            raise failed[0]

    def _unpack(self, disk: Path, vpath: str, kind: str) -> list[_Unpacked]:
        """Unpack a 7z or tar into the temporary folder (may run in a thread: nothing is added to the table)."""
        if _sniff_kind(disk) != kind:
            return []  # _add_archive reports the mismatch in scan order
        return self._unpack_7z(disk, vpath) if kind == "7z" else self._unpack_tar(disk, vpath)

    def _unpack_7z(self, disk: Path, vpath: str) -> list[_Unpacked]:
        import py7zr  # imported when a 7z is met: zip and folder corpora never pay for it

        lim = self.limits
        factory: _SpillFactory | None = None
        try:
            with _open_7z(disk, lim) as z:
                if z.needs_password():
                    raise RawFileError(f"{vpath}: the archive is encrypted; expected an unencrypted 7z archive "
                                       "(decrypt it with 7-Zip and pass the folder)")
                self._check_7z_methods(z, vpath)
                plan: dict[str, tuple[Path, int, str]] = {}
                members: list[_Unpacked] = []
                seen: set[str] = set()
                total = 0
                for f in z.files:
                    if f.is_directory:
                        continue
                    name = safe_member_name(f.filename, vpath)
                    if not name:
                        continue
                    member = f"{vpath}/{name}"
                    self._claim(seen, name, vpath)
                    if is_litter(member):
                        members.append(_Unpacked(member, None, -1, _LITTER_REASON))
                    elif f.is_symlink or f.is_junction:
                        members.append(_Unpacked(member, None, -1, _LINK_MEMBER))
                    elif f.is_socket:
                        members.append(_Unpacked(member, None, -1, "socket member; never read"))
                    else:
                        size = f.uncompressed or 0
                        total += size
                        dest = self._spill_name(member)
                        plan[_7z_key(f.filename)] = (dest, size, member)
                        members.append(_Unpacked(member, dest, size))
                packed = disk.stat().st_size
                if lim.ratio_exceeded(total, packed):
                    raise lim.error("compression_ratio", total // max(packed, 1), vpath,
                                    f"declares {human_bytes(total)} unpacked from {human_bytes(packed)} "
                                    f"({total // max(packed, 1):,}:1)")
                self._reserve(total, vpath)
                factory = _SpillFactory(self, plan)
                z.extractall(factory=factory)
        except (CytohubError, MemoryError):
            raise
        except py7zr.exceptions.PasswordRequired:
            raise RawFileError(f"{vpath}: the archive is encrypted (its file list too); expected an unencrypted "
                               "7z archive (decrypt it with 7-Zip and pass the folder)") from None
        except py7zr.exceptions.UnsupportedCompressionMethodError as exc:
            method = exc.args[0] if exc.args and isinstance(exc.args[0], bytes) else None
            name = _7Z_METHODS.get(method.hex(), f"method 0x{method.hex()}") if method else "a compression method"
            raise RawFileError(f"{vpath}: uses the {name} filter, which cytohub's 7z reader (py7zr) cannot "
                               f"decode; {_UNPACK_HINT.replace('ARCHIVE', vpath.rsplit('/', 1)[-1])}") from None
        except Exception as exc:  # py7zr raises many types (Bad7zFile, EOFError, LZMAError, CrcError...)
            m = re.fullmatch(r"numfiles value (\d+) exceeds limit \d+", str(exc))
            if m:  # py7zr's own count check, set from sevenz_members (see _open_7z)
                hint = _UNPACK_HINT.replace("ARCHIVE", vpath.rsplit("/", 1)[-1])
                raise lim.error("sevenz_members", int(m[1]), vpath, f"holds {int(m[1]):,} members (py7zr keeps "
                                f"about 1.5 KB per member while unpacking; {hint} instead)") from None
            raise RawFileError(f"{vpath}: not a readable 7z archive ({type(exc).__name__}: {exc}); "
                               "the file may be truncated or corrupt") from None
        finally:
            for w in list(factory.writers) if factory else ():
                with contextlib.suppress(Exception):
                    w.close()
        return members

    @staticmethod
    def _check_7z_methods(z, vpath: str) -> None:
        """Name a coder py7zr cannot decode (BCJ2, ARM64, ...) before anything is unpacked."""
        import py7zr
        from py7zr.compressor import SupportedMethods

        streams = getattr(z.header, "main_streams", None)
        for folder in streams.unpackinfo.folders if streams is not None else ():
            for coder in folder.coders:
                try:
                    SupportedMethods.is_native_coder(coder)
                except py7zr.exceptions.UnsupportedCompressionMethodError:
                    method = coder["method"]
                    name = _7Z_METHODS.get(method.hex(), f"method 0x{method.hex()}")
                    raise RawFileError(f"{vpath}: uses the {name} filter, which cytohub's 7z reader (py7zr) cannot "
                                       f"decode; {_UNPACK_HINT.replace('ARCHIVE', vpath.rsplit('/', 1)[-1])}") from None

    def _unpack_tar(self, disk: Path, vpath: str) -> list[_Unpacked]:
        lim = self.limits
        members: list[_Unpacked] = []
        seen: set[str] = set()
        unpacked = 0
        try:
            with _open_regular(disk, vpath) as fh, tarfile.open(fileobj=fh, mode="r|*", errors="replace") as tf:
                for m in tf:
                    name = safe_member_name(m.name, vpath)
                    if not name or m.isdir():
                        continue
                    member = f"{vpath}/{name}"
                    self._claim(seen, name, vpath)
                    if not m.isfile():
                        members.append(_Unpacked(member, None, -1, _tar_member_reason(m)))
                        continue
                    if is_litter(member):
                        members.append(_Unpacked(member, None, -1, _LITTER_REASON))
                        continue
                    dest = self._spill_name(member)
                    self._reserve(m.size, member)
                    src = tf.extractfile(m)

                    def ratio_check(n: int, fh=fh, member=member, before=unpacked) -> None:
                        if lim.ratio_exceeded(before + n, fh.tell()):
                            raise lim.error("compression_ratio", (before + n) // max(fh.tell(), 1), member,
                                            f"has unpacked {human_bytes(before + n)} from the first "
                                            f"{human_bytes(fh.tell())} of {vpath}")

                    self._copy(src, dest, m.size, member, on_progress=ratio_check)
                    unpacked += m.size
                    members.append(_Unpacked(member, dest, m.size))
        except CytohubError:
            raise
        except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError, ValueError) as exc:
            raise RawFileError(f"{vpath}: not a readable tar archive ({type(exc).__name__}: {exc}); the file may "
                               "be truncated or corrupt") from None
        return members

    def _claim(self, seen: set[str], name: str, archive: str) -> None:
        """A member name of a 7z or tar being unpacked: a repeated one is an error (before it is written), and
        the count of entries is limited."""
        if name in seen:
            raise RawFileError(f"{archive}: member {name!r} appears twice; expected unique member names (which copy "
                               "is meant is unknown)")
        seen.add(name)
        self.limits.check("files", self._entries + len(seen), archive, f"holds more than {len(seen) - 1:,} members")

    # ----------------------------------------------------------------- temporary folder
    def _tmp(self) -> Path:
        with self._tmp_lock:
            if self._tmpdir is None:
                parent = self._tmp_parent or Path(tempfile.gettempdir())
                try:
                    self._tmpdir = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{os.getpid()}-", dir=parent))
                except OSError as exc:
                    raise _tmp_error(exc, parent, "creating the unpack folder") from None
        return self._tmpdir

    def _spill_path(self, vpath: str) -> Path:
        """Where a member is unpacked: named from its virtual path's hash (any length or characters work)."""
        return Path(self._spill_name(vpath))

    def _spill_name(self, vpath: str) -> str:
        """`_spill_path` as a string (a Path per member of a million-member archive costs 200 MB)."""
        h = hashlib.sha1(vpath.encode("utf-8", "surrogateescape")).hexdigest()
        dot = vpath.rfind(".")
        suffix = vpath[dot:] if dot > vpath.rfind("/") else ""
        suffix = suffix if _SUFFIX_RE.fullmatch(suffix) else ""
        return f"{self._tmp()}{os.sep}{h}{suffix}"  # one flat folder: no folder to create or remove per member

    def _check_cancelled(self, what: str) -> None:
        """Stop unpacking (in any thread) once the build is stopping."""
        if self._cancel.is_set():
            raise _Cancelled(f"{what}: unpacking stopped")

    def _reserve(self, nbytes: int, what: str) -> None:
        """Promise `nbytes` of the temporary folder to `what`, or refuse: over `unpacked_bytes` in total, or
        leaving less than `free_space_reserve` free."""
        lim = self.limits
        tmp = self._tmp()
        with self._tmp_lock:
            total = self._reserved + nbytes
            lim.check("unpacked_bytes", total, what,
                      f"unpacking needs {human_bytes(nbytes)}, {human_bytes(total)} in all for this raw tree")
            try:
                free = shutil.disk_usage(tmp).free - (self._reserved - self._written)
            except OSError as exc:
                raise _tmp_error(exc, tmp.parent, "checking free space") from None
            if free - nbytes < lim.free_space_reserve:
                raise CytohubError(
                    f"{what}: unpacking needs {human_bytes(nbytes)} but only {human_bytes(max(free, 0))} is free in "
                    f"the temporary folder {tmp.parent}, which keeps {human_bytes(lim.free_space_reserve)} free "
                    "(free_space_reserve); pass --tmp-dir on a larger disk (or set TMPDIR)"
                )
            self._reserved = total

    def _create(self, dest: Path, what: str):
        try:
            fh = open(dest, "xb")  # noqa: SIM115 (closed by the caller)
        except OSError as exc:
            raise _tmp_error(exc, self._tmp().parent, f"unpacking {what}") from None
        return fh

    def _write(self, fh, data: bytes, what: str) -> None:
        try:
            fh.write(data)
        except OSError as exc:
            raise _tmp_error(exc, self._tmp().parent, f"unpacking {what}") from None
        with self._tmp_lock:
            self._written += len(data)

    def _close_written(self, fh, what: str) -> None:
        try:
            fh.close()
        except OSError as exc:
            raise _tmp_error(exc, self._tmp().parent, f"unpacking {what}") from None

    def _copy(self, src, dest: Path, declared: int, what: str,
              on_progress: Callable[[int], None] | None = None) -> None:
        """Stream `src` into `dest`, never past `declared` bytes (more is an error), checking as it goes."""
        fh = self._create(dest, what)
        n = 0
        try:
            while chunk := src.read(_CHUNK):
                self._check_cancelled(what)
                n += len(chunk)
                if n > declared:
                    raise RawFileError(f"{what}: unpacks to more than the {declared} bytes its header declares; the "
                                       "archive is corrupt or crafted")
                self._write(fh, chunk, what)
                if on_progress:
                    on_progress(n)
        finally:
            fh.close()
        if n < declared:
            raise RawFileError(f"{what}: ends after {n} of the {declared} bytes its header declares; the archive is "
                               "truncated or corrupt")

    def _copy_out(self, f: RawFile) -> Path:
        dest = self._spill_path(f.path)
        if not dest.exists():
            _check_ratio(f, self.limits)
            self._reserve(f.size, f.path)
            part = dest.with_name(dest.name + ".part")
            with contextlib.suppress(FileNotFoundError):
                part.unlink()
            with f._loc[1].open(f._loc[2], f.path) as src:
                self._copy(src, part, f.size, f.path)
            os.replace(part, dest)
        return dest

    # ----------------------------------------------------------------- reading
    def _file(self, i: int, path: str | None = None) -> RawFile:
        t = self._table
        path = t.path(i) if path is None else path
        slot = self._slots[t.slot[i]]
        if slot[0] == "dir":
            base, prefix = slot[1], slot[2]
            loc: tuple = ("fs", base / (path[len(prefix) + 1:] if prefix else path))
        elif slot[0] == "abs":
            loc = ("fs", Path(t.orig(i)))
        else:
            hoff, csize, ctype, flags, crc = t.zip_fields(i)
            orig = t.orig(i) or path[len(slot[2]) + 1:]
            loc = ("zip", slot[1], MemberRecord(orig, hoff, csize, int(t.size[i]), ctype, flags, crc))
        return RawFile(path, int(t.size[i]), self, loc, i)

    def _portable(self, f: RawFile) -> tuple:
        """The location of `f` as plain data another process can read from."""
        if f._loc[0] == "fs":
            return ("fs", str(f._loc[1]))
        return ("zip", str(f._loc[1].path), f._loc[2])

    def _wants_sha(self, f: RawFile) -> bool:
        return f._index >= 0 and bool(self._table.is_input[f._index]) and self._table.get_sha(f._index) is None

    def record_sha256(self, digests: dict[int, bytes]) -> None:
        """Store sha256 digests of loose input files read elsewhere (by detached copies, by file index)."""
        for i, digest in digests.items():
            self._table.set_sha(i, digest)

    def _read(self, f: RawFile) -> bytes:
        errors.reading(f.path)  # a library error while this file is parsed names it
        data = _read_whole(f, self.limits)
        if f._loc[0] == "fs" and self._wants_sha(f):
            self._table.set_sha(f._index, hashlib.sha256(data).digest())
        return data

    # ----------------------------------------------------------------- queries
    def files(self, suffix: str | tuple[str, ...] | None = None, pattern: str | None = None) -> FileList:
        """All files, sorted by path; optionally only those whose name ends with `suffix` (case-insensitive)
        or whose path matches the regular expression `pattern` (searched, case-insensitive). A read-only
        sequence: RawFile objects are made as they are accessed, so a million files cost no memory here."""
        sufs = None
        if suffix:
            sufs = (suffix,) if isinstance(suffix, str) else tuple(suffix)
        idx = self._table.select(sufs)
        if pattern:
            rx = re.compile(pattern, re.IGNORECASE)
            idx = np.fromiter((i for i, p in self._table.paths_of(idx) if rx.search(p)), dtype=np.int64)
        return FileList(self._file, idx, self._table.paths_of)

    def named(self, name: str) -> FileList:
        """Files whose base name equals `name` (case-insensitive), wherever they are."""
        return FileList(self._file, self._table.select(name=name), self._table.paths_of)

    def one(self, name: str, what: str = "") -> RawFile:
        """The single file called `name` anywhere in the tree, or a clear error."""
        hits = self.named(name)
        if not hits:
            from cytohub.layout import found

            raise RawFileError(f"{self.root}: no file named {name!r} found{' (' + what + ')' if what else ''}"
                               + found(self))
        if len(hits) > 1:
            raise RawFileError(f"{self.root}: {len(hits)} files named {name!r}: "
                               f"{', '.join(h.path for h in hits[:5])}; expected exactly one")
        return hits[0]

    def get(self, path: str) -> RawFile | None:
        i = self._table.find(path)
        return None if i is None or self._table.kind[i] != FILE else self._file(i)

    def __iter__(self) -> Iterator[RawFile]:
        return iter(self.files())

    def __len__(self) -> int:
        return len(self._table.files)

    # ----------------------------------------------------------------- accounting
    @property
    def used(self) -> UsedView:
        """The paths of the files read so far (supports `path in tree.used`, iteration, len)."""
        return UsedView(self._table)

    @property
    def skipped(self) -> SkippedView:
        """path -> reason of the files deliberately left out."""
        return SkippedView(self._table, self._skipped_other)

    @property
    def set_aside(self) -> dict[str, str]:
        """Files never read, whatever the builder: path -> reason (operating-system litter, links, special
        files, link and device members of archives, archives beside their unpacked copy)."""
        t = self._table
        return {p: self._aside.get(p, _LITTER_REASON) for _, p in t.paths_of(np.flatnonzero(t.kind == LITTER))}

    def mark_used(self, f: RawFile) -> None:
        errors.reading(f.path)
        if f._index >= 0:
            self._table.used[f._index] = True
        else:
            i = self._table.find(f.path)
            if i is not None:
                self._table.used[i] = True

    def mark_used_index(self, idx: np.ndarray) -> None:
        """Mark files used by their indices in the file table (`RawFile._index`)."""
        self._table.used[idx] = True

    def skip(self, f: RawFile | str, reason: str) -> None:
        """Record that a file is deliberately not used, and why (it shows in the build report)."""
        path = f if isinstance(f, str) else f.path
        i = f._index if isinstance(f, RawFile) and f._index >= 0 else self._table.find(path)
        if i is None or self._table.kind[i] != FILE:
            self._skipped_other[path] = reason
        else:
            self._table.reason[i] = self._table.reason_id(reason)

    def note_absent(self, part: str, effect: str) -> None:
        """Record that `part` of the official download (a file name, e.g. 'stage1_train.zip') is not in this raw
        tree and what the build lacks because of it ('no train rows'). The build report lists these under
        `absent_parts`; the completeness check (`cytohub.completeness.check`) counts each as an absent file of
        the download (a missing one makes the build partial, allowed only with --allow-partial) and the card's
        Completeness section names it with its effect. The builder builds what is present."""
        entry = {"part": part, "effect": effect}
        if entry not in self.absent_parts:
            self.absent_parts.append(entry)

    def accounting(self, default_reason: str) -> RecordList:
        """Every raw file with its status: used, skipped (reason) or set aside (reason); files in path order,
        then the set-aside files. A read-only sequence of dicts made as they are read (O(1) memory)."""
        t = self._table
        order = np.concatenate([t.files, np.flatnonzero(t.kind == LITTER)])
        default = t.reason_id(default_reason)

        def entry(i: int, path: str) -> dict:
            if t.kind[i] == LITTER:
                reason = self._aside.get(path, _LITTER_REASON)
                return {"path": path, "size": None, "status": "skipped", "reason": reason}
            size = int(t.size[i])
            if t.reason[i]:
                return {"path": path, "size": size, "status": "skipped", "reason": t.reasons[t.reason[i] - 1]}
            if t.used[i]:
                return {"path": path, "size": size, "status": "used"}
            return {"path": path, "size": size, "status": "skipped", "reason": t.reasons[default - 1]}

        return RecordList(len(order), lambda j: entry(int(order[j]), t.path(order[j])),
                          lambda: (entry(i, p) for i, p in t.paths_of(order)))

    def accounting_counts(self) -> tuple[int, int]:
        """(used, skipped) as `accounting` would list them, counted without listing."""
        t = self._table
        files = t.kind == FILE
        used = int((files & t.used & (t.reason == 0)).sum())
        return used, int(len(t)) - used

    def skip_reasons(self, default_reason: str) -> dict[str, int]:
        """reason -> number of raw files skipped for it, as `accounting` would list them."""
        t = self._table
        files = t.kind == FILE
        out: dict[str, int] = {}
        for rid, n in zip(*np.unique(t.reason[files], return_counts=True), strict=True):
            if rid:
                out[t.reasons[rid - 1]] = out.get(t.reasons[rid - 1], 0) + int(n)
        unused = int((files & (t.reason == 0) & ~t.used).sum())
        if unused:
            out[default_reason] = out.get(default_reason, 0) + unused
        litter = int((t.kind == LITTER).sum()) - len(self._aside)
        if litter:
            out[_LITTER_REASON] = out.get(_LITTER_REASON, 0) + litter
        for reason in self._aside.values():
            out[reason] = out.get(reason, 0) + 1
        return out

    def input_hashes(self) -> RecordList:
        """The user's input files (archives and loose files) with sha256, in path order; loose files that
        were never read are hashed when their entry is first made. A read-only sequence of dicts."""
        t = self._table
        loose = np.flatnonzero(t.is_input)
        archives = sorted(self._archive_inputs, key=lambda e: e["path"])

        def loose_entry(i: int, path: str) -> dict:
            sha = t.get_sha(i)
            if sha is None:
                sha = _sha256_file(self._file(i, path)._loc[1], path)
                t.set_sha(i, bytes.fromhex(sha))
            return {"path": path, "size": int(t.size[i]), "sha256": sha}

        def merged() -> Iterator[dict]:
            k = 0
            for i, path in t.paths_of(loose):
                while k < len(archives) and archives[k]["path"] < path:
                    yield archives[k]
                    k += 1
                yield loose_entry(i, path)
            yield from archives[k:]

        if not len(loose):
            return RecordList(len(archives), lambda j: archives[j])
        return RecordList(len(loose) + len(archives), lambda j: _nth(merged(), j), merged)

    @property
    def inputs(self) -> RecordList:
        return self.input_hashes()

    # ----------------------------------------------------------------- lifecycle
    def close(self) -> None:
        self._cancel.set()
        for fut in self._pending_unpack.values():
            with contextlib.suppress(BaseException):
                fut.result()
        self._pending_unpack.clear()
        for zf in self._zips:
            zf.close()
        self._zips.clear()
        self._table.drop_locations()  # nothing is read after close: keep only what accounting needs
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> RawTree:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_LITTER_REASON = "operating-system metadata file"
_SUFFIX_RE = re.compile(r"\.[A-Za-z0-9]{1,8}")


_7Z_HEADER_BYTES = 64 * 2**20  # a 7z's decoded header (names, sizes): 26 MB for 171,375 members of 60-char paths
_7z_bounds = threading.Lock()


def _open_7z(disk: Path, lim: Limits):
    """py7zr.SevenZipFile for `disk`, with py7zr's own header checks set from `lim` first: at most
    `sevenz_members` members (py7zr refuses a larger count before it makes a dict per member, about 1.5 KB
    each by the end of unpacking: a 2 MB 7z of a million empty members took 2.7 GB) and a decoded header of
    at most 64 MiB (py7zr's default is 256 MiB, held in memory)."""
    import py7zr
    from py7zr import archiveinfo

    with _7z_bounds:  # module globals of py7zr, read while it parses the header
        archiveinfo.MAX_NUMFILES = min(lim.sevenz_members, 1 << 23)
        archiveinfo.MAX_HEADER_SIZE = min(_7Z_HEADER_BYTES, 1 << 28)
    return py7zr.SevenZipFile(disk)


def _7z_key(filename: str) -> str:
    """The name py7zr hands the writer factory for a member: `get_sanitized_output_path(name, None)` as posix,
    computed without its per-member realpath() (py7zr 1.x: `_sanitize_member_name`); names RawTree accepts
    (relative, no '..') are the same either way."""
    import py7zr

    sanitize = getattr(py7zr.helpers, "_sanitize_member_name", None)
    if sanitize is None:
        return py7zr.helpers.get_sanitized_output_path(filename, None).as_posix()
    return PurePosixPath(sanitize(filename)).as_posix()
_LINK_MEMBER = "symbolic link member; links in archives are never followed"


def _tar_member_reason(m: tarfile.TarInfo) -> str:
    if m.issym():
        return _LINK_MEMBER
    if m.islnk():
        return "hard link member; links in archives are never followed"
    if m.ischr():
        return "character device member; never read"
    if m.isblk():
        return "block device member; never read"
    if m.isfifo():
        return "named pipe (FIFO) member; never read"
    return f"tar member of type {m.type!r}, not a regular file; never read"


def _tmp_error(exc: OSError, folder: Path, doing: str) -> CytohubError:
    """The true cause of a failure to write to the temporary folder, as one line."""
    hint = "pass --tmp-dir with a writable folder on a disk with room (or set TMPDIR)"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        try:
            free = human_bytes(shutil.disk_usage(folder).free)
        except OSError:
            free = "little"
        return CytohubError(f"the temporary folder {folder} is full ({free} free) while {doing}; {hint}")
    if exc.errno == errno.ENOENT:
        return CytohubError(f"the temporary folder {folder} does not exist (while {doing}); {hint}")
    if exc.errno == errno.EROFS:
        return CytohubError(f"the temporary folder {folder} is on a read-only file system (while {doing}); {hint}")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return CytohubError(f"the temporary folder {folder} is not writable (while {doing}); {hint}")
    if exc.errno == errno.ENOTDIR:
        return CytohubError(f"the temporary folder {folder} is not a folder (while {doing}); {hint}")
    return CytohubError(f"cannot write to the temporary folder {folder} while {doing} ({exc.strerror}); {hint}")


def _sweep_dead_tmp(parent: Path | None) -> None:
    """Remove unpack folders left by RawTrees of processes that no longer run (killed builds)."""
    try:
        base = parent or Path(tempfile.gettempdir())
        candidates = list(base.glob(f"{_TMP_PREFIX}*-*"))
    except OSError:
        return
    for p in candidates:
        try:
            pid = int(p.name[len(_TMP_PREFIX):].split("-", 1)[0])
            if p.lstat().st_uid != os.getuid() or not p.is_dir() or pid == os.getpid():
                continue
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(p, ignore_errors=True)
        except (ValueError, OSError):
            continue


def _nth(it: Iterator[dict], n: int) -> dict:
    for j, item in enumerate(it):
        if j == n:
            return item
    raise IndexError(n)


def _sha256_file(path: Path, where: str | None = None) -> str:
    h = hashlib.sha256()
    with _open_regular(path, where or str(path)) as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()
