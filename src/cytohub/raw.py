"""RawTree: one read-only view over a raw download, whatever it is shipped as.

A raw path may be a folder, a `.zip`, a `.7z`, a `.tar[.gz|.bz2|.xz]`, or any nesting of those (CCCID ships
`.zip.7z`: a zip inside a 7z; CCAgT ships per-slide zips inside a zip). Archives are expanded into one
virtual tree whose paths use `/` and keep archive names as folders, for example
`CCCID_NILM_part1.zip.7z/CCCID_NILM_part1.zip/NILM/1. Superficial-Intermediate Cells/001_(3059,11012,0).jpg`.

How each kind is read:
* a zip on disk is read in place, member by member (random access, nothing extracted);
* a 7z or tar needs sequential decompression, so it is extracted once into a private temporary folder,
  and a zip nested inside another archive is copied out once; all of that is removed by `close()`.

Every member name is checked before anything is read or written: no absolute paths, drive letters, `..`
or NUL bytes, and the declared unpacked size of a spilled archive must fit the free temporary space.
Operating-system litter (`__MACOSX/`, `._*`, `.DS_Store`, `Thumbs.db`) is set aside with a reason.

The tree records which files a builder read and which it skipped (with a reason), so the build report can
account for every raw file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tarfile
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import numpy as np

from cytohub import errors
from cytohub.errors import CytohubError, DatasetNotFoundError, RawFileError
from cytohub.filetable import FILE, LITTER, FileList, FileTable, RecordList, SkippedView, UsedView
from cytohub.zipindex import MemberRecord, ZipReader, iter_central_directory, record_of

ARCHIVE_SUFFIXES = (".zip", ".7z", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
_LITTER_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}
MAX_MEMBER_BYTES = int(os.environ.get("CYTOHUB_MAX_MEMBER_BYTES", 16 * 2**30))
_CHUNK = 1 << 20


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


def _sniff_kind(path: Path) -> str | None:
    """The archive kind from the file's first bytes."""
    with open(path, "rb") as fh:
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

    def read_bytes(self) -> bytes:
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

    def open(self) -> BinaryIO:
        """A binary file object (for h5py, scipy.io and other readers that want one)."""
        kind = self._loc[0]
        if self._tree is not None:
            self._tree.mark_used(self)
        if kind == "fs":
            return open(self._loc[1], "rb")
        import io

        return io.BytesIO(self.read_bytes() if self._tree is None else self._tree._read(self))

    def local_path(self) -> Path:
        """A path on disk holding this file's bytes (copied out of a zip into the temp folder if needed)."""
        if self._loc[0] == "fs":
            if self._tree is not None:
                self._tree.mark_used(self)
            return Path(self._loc[1])
        if self._tree is None:
            raise RawFileError(f"{self.path}: a detached zip member has no local path")
        self._tree.mark_used(self)
        dest = self._tree._tmp() / "members" / hashlib.sha1(self.path.encode()).hexdigest() / self.name
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(self._tree._read(self))
        return dest


DETACHED_SHA256: dict[int, bytes] = {}  # file index -> sha256 of loose input files read by detached copies
_DETACHED_ZIPS: dict[str, ZipReader] = {}


def _detached(path: str, size: int, loc: tuple, index: int, want_sha: bool) -> RawFile:
    f = RawFile(path, size, None, loc, index)
    if want_sha:
        f._loc = (*loc, "sha")
    return f


def _read_detached(f: RawFile) -> bytes:
    errors.reading(f.path)  # a library error while this file is parsed (in a worker process) names it
    loc = f._loc
    try:
        if loc[0] == "fs":
            data = Path(loc[1]).read_bytes()
        else:
            reader = _DETACHED_ZIPS.get(loc[1])
            if reader is None:
                reader = _DETACHED_ZIPS[loc[1]] = ZipReader(loc[1])
            data = reader.read(loc[2])
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError, NotImplementedError) as exc:
        raise RawFileError(f"{f.path}: cannot be read ({exc}); the archive may be truncated or corrupt") from None
    if loc[-1] == "sha":
        DETACHED_SHA256[f._index] = hashlib.sha256(data).digest()
    return data


class RawTree:
    """A read-only, recursive view over a raw folder or archive. Use as a context manager."""

    def __init__(self, root: str | os.PathLike, *, tmp_dir: str | os.PathLike | None = None,
                 known_sha256: dict[str, str] | None = None,
                 progress: Callable[[str], None] | None = None) -> None:
        self.root = Path(root).expanduser()
        if not self.root.exists():
            raise DatasetNotFoundError(f"raw path {self.root} does not exist; expected a folder or an archive")
        self._tmp_parent = Path(tmp_dir) if tmp_dir else None
        self._tmpdir: Path | None = None
        self._known = {k.lower(): v.lower() for k, v in (known_sha256 or {}).items()}
        self._progress = progress or (lambda msg: None)
        self._table = FileTable()  # every file and set-aside file, compact (see cytohub.filetable)
        self._slots: list[tuple] = []  # ("dir", base folder, virtual prefix) | ("zip", ZipReader, vpath)
        self._zips: list[ZipReader] = []
        self._archive_inputs: list[dict] = []  # archives given by the user: path, size, sha256
        self.containers: list[str] = []  # virtual paths of archives that were expanded
        self._skipped_other: dict[str, str] = {}  # skip() of paths that are not files of the tree
        self._pending_unpack: dict = {}  # vpath -> Future of an archive being unpacked in the background
        self._tmp_lock = threading.Lock()
        try:
            self._scan()
            self._table.seal()
        except BaseException:
            self.close()
            raise

    # ----------------------------------------------------------------- scanning
    def _scan(self) -> None:
        if self.root.is_dir():
            self._scan_dir(self.root, "", top=True)
            return
        kind = _sniff_kind(self.root)
        if kind is None:
            raise RawFileError(
                f"{self.root}: not a zip, 7z or tar archive (expected a folder or one of "
                f"{', '.join(ARCHIVE_SUFFIXES)})"
            )
        self._add_input(self.root, self.root.name, archive=True)
        self._add_archive(self.root, self.root.name, kind)

    def _scan_dir(self, base: Path, prefix: str, top: bool) -> None:
        slot = len(self._slots)
        self._slots.append(("dir", base, prefix))
        archives: list[tuple[Path, str]] = []  # (file on disk, virtual path), in sorted walk order
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            rel_dir = Path(dirpath).relative_to(base).as_posix()
            for fname in sorted(filenames):
                rel = fname if rel_dir == "." else f"{rel_dir}/{fname}"
                vpath = f"{prefix}/{rel}" if prefix else rel
                if is_litter(vpath):
                    self._table.add(vpath, -1, LITTER)
                elif archive_kind(fname):
                    archives.append((Path(dirpath) / fname, vpath))
                else:
                    size = os.stat(os.path.join(dirpath, fname)).st_size
                    self._table.add(vpath, size, FILE, slot, top=top)
        if top:
            self._prefetch(archives)
        for disk, vpath in archives:
            kind = archive_kind(disk.name)
            if top:
                self._add_input(disk, vpath, archive=True)
            self._add_archive(disk, vpath, kind)

    def _add_input(self, disk: Path, vpath: str, archive: bool) -> None:
        entry = {"path": vpath, "size": disk.stat().st_size, "sha256": None}
        self._archive_inputs.append(entry)
        if archive:  # archives are hashed now (their checksums are what publishers list)
            entry["sha256"] = _sha256_file(disk)
            expected = self._known.get(disk.name.lower())
            if expected and expected != entry["sha256"]:
                raise RawFileError(
                    f"{disk}: sha256 {entry['sha256']} does not match the published {expected}; "
                    "the download is corrupt or a different version"
                )

    def _add_archive(self, disk: Path, vpath: str, kind: str) -> None:
        sniffed = _sniff_kind(disk)
        if sniffed != kind:
            raise RawFileError(f"{vpath}: named like a {kind} archive but its content is not one "
                               f"({'looks like ' + sniffed if sniffed else 'unknown format'})")
        self.containers.append(vpath)
        errors.reading(vpath)  # a library error while scanning it names this archive
        self._progress(f"reading {vpath}")
        if kind == "zip":
            self._add_zip(disk, vpath)
        elif kind == "7z":
            self._extract_7z(disk, vpath)
        else:
            self._extract_tar(disk, vpath)

    def _add_zip(self, disk: Path, vpath: str) -> None:
        try:
            zf = ZipReader(disk)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise RawFileError(f"{vpath}: not a readable zip archive ({exc}); the file may be truncated") from None
        self._zips.append(zf)
        slot = len(self._slots)
        self._slots.append(("zip", zf, vpath))
        with open(disk, "rb") as fh:
            infos = iter_central_directory(fh)
            while True:
                try:
                    info = next(infos)
                except StopIteration:
                    break
                except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
                    raise RawFileError(f"{vpath}: not a readable zip archive ({exc}); the file may be "
                                       "truncated") from None
                if info.is_dir():
                    continue
                name = safe_member_name(_zip_name(info), vpath)
                if not name:
                    continue
                member = f"{vpath}/{name}"
                if info.file_size > MAX_MEMBER_BYTES:
                    raise RawFileError(f"{member}: {info.file_size} bytes unpacked, over the {MAX_MEMBER_BYTES} "
                                       "limit")
                if is_litter(member):
                    self._table.add(member, -1, LITTER)
                    continue
                kind = archive_kind(name)
                if kind:  # nested archive: copy it out once, then read it like a file on disk
                    out = self._tmp() / "nested" / hashlib.sha1(member.encode()).hexdigest() / PurePosixPath(name).name
                    out.parent.mkdir(parents=True, exist_ok=True)
                    self._check_space(info.file_size, member)
                    with zf._zf.open(info) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst, _CHUNK)
                    self._add_archive(out, member, kind)
                else:
                    self._table.add(member, info.file_size, FILE, slot, record_of(info))

    def _prefetch(self, found: list[tuple[Path, str]]) -> None:
        """Unpack the 7z/tar archives among a folder's files concurrently (LZMA and zlib release the GIL), so
        that a multi-archive download uses every core; scanning then proceeds in sorted order as usual."""
        todo = [(disk, vpath) for disk, vpath in found if archive_kind(disk.name) in ("7z", "tar")]
        todo.sort(key=lambda t: -t[0].stat().st_size)  # largest first: the cores finish together
        workers = min(len(todo), os.cpu_count() or 1, 4)
        if workers < 2:
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            with errors.signals_deferred():  # an interrupt inside submit() would leave an unjoined worker
                for disk, vpath in todo:
                    self._pending_unpack[vpath] = pool.submit(self._unpack, disk, vpath, archive_kind(disk.name))
            for fut in self._pending_unpack.values():  # surface the first error before scanning
                fut.exception()

    def _unpack(self, disk: Path, vpath: str, kind: str) -> Path:
        return self._unpack_7z(disk, vpath) if kind == "7z" else self._unpack_tar(disk, vpath)

    def _extract_7z(self, disk: Path, vpath: str) -> None:
        fut = self._pending_unpack.pop(vpath, None)
        dest = fut.result() if fut is not None else self._unpack_7z(disk, vpath)
        self._scan_dir(dest, vpath, top=False)

    def _extract_tar(self, disk: Path, vpath: str) -> None:
        fut = self._pending_unpack.pop(vpath, None)
        dest = fut.result() if fut is not None else self._unpack_tar(disk, vpath)
        self._scan_dir(dest, vpath, top=False)

    def _unpack_7z(self, disk: Path, vpath: str) -> Path:
        import py7zr  # imported when a 7z is met: zip and folder corpora never pay for it

        try:
            with py7zr.SevenZipFile(disk) as z:
                if z.needs_password():
                    raise RawFileError(f"{vpath}: the 7z archive is encrypted; expected an unencrypted archive")
                infos = z.list()
                for info in infos:
                    safe_member_name(info.filename, vpath)
                total = sum(i.uncompressed or 0 for i in infos if not i.is_directory)
                dest = self._tmp() / "7z" / hashlib.sha1(vpath.encode()).hexdigest()
                self._check_space(total, vpath)
                dest.mkdir(parents=True)
                z.extractall(path=dest)
        except CytohubError:
            raise
        except Exception as exc:  # py7zr raises many types (Bad7zFile, EOFError, LZMAError, CrcError...)
            raise RawFileError(f"{vpath}: not a readable 7z archive ({type(exc).__name__}: {exc}); "
                               "the file may be truncated or corrupt") from None
        return dest

    def _unpack_tar(self, disk: Path, vpath: str) -> Path:
        dest = self._tmp() / "tar" / hashlib.sha1(vpath.encode()).hexdigest()
        try:
            with tarfile.open(disk) as tf:
                members = []
                for m in tf.getmembers():
                    if not (m.isfile() or m.isdir()):
                        continue  # links and devices are never followed
                    m.name = safe_member_name(m.name, vpath)
                    if m.name:
                        members.append(m)
                self._check_space(sum(m.size for m in members), vpath)
                dest.mkdir(parents=True)
                tf.extractall(dest, members=members, filter="data")
        except CytohubError:
            raise
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise RawFileError(f"{vpath}: not a readable tar archive ({exc}); the file may be truncated") from None
        return dest

    def _tmp(self) -> Path:
        with self._tmp_lock:
            if self._tmpdir is None:
                self._tmpdir = Path(tempfile.mkdtemp(prefix="cytohub-raw-", dir=self._tmp_parent))
        return self._tmpdir

    def _check_space(self, nbytes: int, what: str) -> None:
        free = shutil.disk_usage(self._tmp()).free
        if nbytes > free:
            raise CytohubError(
                f"{what}: unpacking needs {nbytes / 1e9:.1f} GB but only {free / 1e9:.1f} GB is free in "
                f"{self._tmp().parent}; set TMPDIR (or --tmp-dir) to a larger disk"
            )

    # ----------------------------------------------------------------- reading
    def _file(self, i: int, path: str | None = None) -> RawFile:
        t = self._table
        path = t.path(i) if path is None else path
        slot = self._slots[t.slot[i]]
        if slot[0] == "dir":
            base, prefix = slot[1], slot[2]
            loc: tuple = ("fs", base / (path[len(prefix) + 1:] if prefix else path))
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
        loc = f._loc
        try:
            if loc[0] == "fs":
                data = loc[1].read_bytes()
                if self._wants_sha(f):
                    self._table.set_sha(f._index, hashlib.sha256(data).digest())
                return data
            return loc[1].read(loc[2])
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError, NotImplementedError) as exc:
            raise RawFileError(f"{f.path}: cannot be read ({exc}); the archive may be truncated or corrupt") from None

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
            idx = np.array([i for i, p in self._table.paths_of(idx) if rx.search(p)], dtype=np.int64)
        return FileList(self._file, idx, self._table.paths_of)

    def named(self, name: str) -> FileList:
        """Files whose base name equals `name` (case-insensitive), wherever they are."""
        return FileList(self._file, self._table.select(name=name), self._table.paths_of)

    def one(self, name: str, what: str = "") -> RawFile:
        """The single file called `name` anywhere in the tree, or a clear error."""
        hits = self.named(name)
        if not hits:
            raise RawFileError(f"{self.root}: no file named {name!r} found{' (' + what + ')' if what else ''}")
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
        """Operating-system litter: path -> reason."""
        t = self._table
        return {p: _LITTER_REASON for _, p in t.paths_of(np.flatnonzero(t.kind == LITTER))}

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

    def accounting(self, default_reason: str) -> RecordList:
        """Every raw file with its status: used, skipped (reason) or set aside (reason); files in path order,
        then the set-aside files. A read-only sequence of dicts made as they are read (O(1) memory)."""
        t = self._table
        order = np.concatenate([t.files, np.flatnonzero(t.kind == LITTER)])
        default = t.reason_id(default_reason)

        def entry(i: int, path: str) -> dict:
            if t.kind[i] == LITTER:
                return {"path": path, "size": None, "status": "skipped", "reason": _LITTER_REASON}
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
        litter = int((t.kind == LITTER).sum())
        if litter:
            out[_LITTER_REASON] = out.get(_LITTER_REASON, 0) + litter
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
                sha = _sha256_file(self._disk_path(path))
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

    def _disk_path(self, vpath: str) -> Path:
        return self.root if self.root.is_file() else self.root / vpath

    # ----------------------------------------------------------------- lifecycle
    def close(self) -> None:
        for zf in self._zips:
            zf.close()
        self._zips.clear()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> RawTree:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_LITTER_REASON = "operating-system metadata file"


def _nth(it: Iterator[dict], n: int) -> dict:
    for j, item in enumerate(it):
        if j == n:
            return item
    raise IndexError(n)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()
