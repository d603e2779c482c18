"""MATLAB MAT-files: v5 (read with scipy.io) and v7.3 (HDF5, read with h5py), bounded and confined to the file.

`MatFile(raw_file)` opens either version and gives each variable as MATLAB sees it: numeric and logical arrays
in MATLAB's dimension order (rows, cols, ...), cell arrays as lazy list-like `Cell`s in MATLAB's linear
(column-major) order whose items are arrays or nested cells, and text (`char`, cell arrays of char, and MATLAB
`string` arrays) as Python strings. A 900-image v7.3 cell is never loaded whole: one element at a time.

How MATLAB lays out a v7.3 file: every variable is an HDF5 dataset at the root with the attribute MATLAB_class;
arrays are stored with their dimensions reversed (read transposed here); a cell array is a dataset of object
references to datasets in `#refs#`; an empty array stores its dimensions and has the attribute MATLAB_empty;
logicals are stored as uint8; a `string` array is an opaque MCOS object whose saved data (a uint64 vector
`[version, ndims, dims..., lengths..., UTF-16 characters packed 4 per uint64]`) sits in `#refs#` and is listed
by `#subsystem#/MCOS`. The file starts with a 512-byte user block holding the MAT-file header.

Trust boundary. A MAT-file is untrusted input, so:
* v7.3: HDF5 can make a file read other files: external links, datasets with external storage (raw bytes of
  any file named in the dataset), and virtual datasets. A file with any external link, or with a soft link that
  does not resolve inside it, is refused when opened; every dataset is checked for external storage and
  virtual layout before it is read (also datasets reached only through object references), and its declared
  size against the limit before any byte is read.
* v5: the file's structure is walked before scipy reads it: a compressed variable is refused from the size
  its first inflated bytes declare and inflated no further than that, and every array's declared dimensions
  are checked against the limit (and a cell's or struct's element count against the bytes that could hold
  it), so a few-KB file cannot make scipy allocate gigabytes.
Limits (environment variables; defaults and parsing in `cytohub.limits`):
  CYTOHUB_MAX_ARRAY_BYTES  largest single array, declared (default 256 MiB; the largest real arrays, ISBI 2014
                           512 x 512 doubles and Cx22 512 x 512 masks, are 2 MiB and 256 KiB)
  CYTOHUB_MAX_MAT_BYTES    largest total of a v5 file's variables after decompression (default 512 MiB)
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cytohub import errors, limits, synth
from cytohub.errors import RawFileError, RawLayoutError
from cytohub.raw import RawFile

MAX_ARRAY_BYTES = limits.current().array_bytes  # defaults and environment variable: cytohub.limits
MAX_MAT_BYTES = limits.current().mat_bytes  # defaults and environment variable: cytohub.limits

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


class MatSafetyError(RawFileError):
    """A MAT-file asks to read outside itself, or declares more data than the limits allow."""


def is_v73(path: Path) -> bool:
    """True when the file is HDF5 (a v7.3 MAT-file): the HDF5 signature at offset 0, 512, 1024 or 2048."""
    with open(path, "rb") as fh:
        for offset in (0, 512, 1024, 2048):
            fh.seek(offset)
            if fh.read(8) == _HDF5_SIGNATURE:
                return True
    return False


class Cell:
    """A MATLAB cell array, read lazily: `len(cell)`, `cell[i]` (0-based, linear column-major order)."""

    def __init__(self, items: list, deref: Callable[[Any, str], Any], where: str) -> None:
        self._items, self._deref, self.where = items, deref, where

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i: int):
        if not -len(self._items) <= i < len(self._items):
            raise IndexError(i)
        return self._deref(self._items[i], f"{self.where}{{{i % len(self._items) + 1}}}")

    def __iter__(self):
        return (self[i] for i in range(len(self)))


class MatFile:
    """One .mat file of either version; use as a context manager. Errors name the file and the variable."""

    def __init__(self, f: RawFile) -> None:
        self.file = f
        self.path = f.local_path()
        self.where = f.path
        self.v73 = is_v73(self.path)
        self.version = "7.3" if self.v73 else "5"
        self._h5 = self._v5 = None
        if self.v73:
            import h5py

            try:
                self._h5 = h5py.File(self.path, "r")
            except Exception as exc:  # h5py raises many types on corrupt input
                raise RawFileError(f"{f.path}: not a readable MATLAB v7.3 (HDF5) file ({type(exc).__name__}: "
                                   f"{exc})") from None
            try:
                _audit_links(self._h5, f.path)
            except BaseException:
                self.close()
                raise
        else:
            check_mat(self.path, f.path)
            import scipy.io

            try:
                self._v5 = scipy.io.loadmat(self.path)
            except Exception as exc:  # scipy raises many types on corrupt input
                raise RawFileError(f"{f.path}: not a readable MATLAB .mat file ({type(exc).__name__}: "
                                   f"{exc})") from None

    def __enter__(self) -> MatFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None

    def _here(self) -> None:
        """Name this file in any library error raised while it is read (a builder reads two .mat files at once,
        lazily: the file opened last is not always the one being read)."""
        errors.reading(self.where)

    def variables(self) -> list[str]:
        self._here()
        keys = self._h5.keys() if self.v73 else self._v5.keys()
        return sorted(k for k in keys if not k.startswith(("#", "__")))

    def _variable(self, name: str):
        self._here()
        if name not in self.variables():
            raise RawLayoutError(f"{self.where}: no variable {name!r}; found {self.variables()}")
        return self._h5[name] if self.v73 else self._v5[name]

    def value(self, name: str):
        """A variable: a numpy array (MATLAB dimension order) or a `Cell`."""
        return self._deref(self._variable(name), name)

    def cell(self, name: str) -> Cell:
        value = self.value(name)
        if not isinstance(value, Cell):
            raise RawLayoutError(f"{self.where}: variable {name!r} is not a cell array")
        return value

    def array(self, name: str) -> np.ndarray:
        value = self.value(name)
        if isinstance(value, Cell):
            raise RawLayoutError(f"{self.where}: variable {name!r} is a cell array; expected a numeric array")
        return value

    def strings(self, name: str, expected: int | None = None) -> list[str]:
        """A MATLAB string array, char matrix or cell array of char vectors -> Python strings (linear order).
        `expected` (the number of strings) picks the right saved object of a v7.3 string array."""
        obj = self._variable(name)
        if not self.v73:
            return _v5_strings(obj, f"{self.where}: {name}")
        kind = _class(obj, self.where)
        if kind == "char":
            chars = self._deref(obj, name)
            return ["".join(map(chr, row)).rstrip() for row in np.atleast_2d(chars)]
        if kind == "cell":
            return ["".join(map(chr, np.asarray(el).ravel())) for el in self.cell(name)]
        if kind != "string":
            raise RawLayoutError(f"{self.where}: {name} is a MATLAB {kind or 'unknown'} array, expected string "
                                 "or char")
        candidates = []
        h5 = self._h5
        if "#subsystem#" in h5 and "MCOS" in h5["#subsystem#"]:
            candidates += [h5[ref] for ref in _read(h5["#subsystem#/MCOS"], self.where).ravel() if ref]
        if "#refs#" in h5:
            candidates += [h5["#refs#"][k] for k in sorted(h5["#refs#"])]
        for cand in candidates:
            if not hasattr(cand, "dtype") or cand.dtype != np.uint64:
                continue
            decoded = _string_saveobj(_read(cand, self.where).ravel())
            if decoded is not None and (expected is None or len(decoded) == expected):
                return decoded
        raise RawLayoutError(f"{self.where}: could not decode the MATLAB string array {name!r}"
                             + (f" ({expected} names expected)" if expected is not None else ""))

    def _deref(self, obj, where: str):
        self._here()
        if not self.v73:
            if isinstance(obj, np.ndarray) and obj.dtype == object:
                return Cell(list(obj.ravel(order="F")), self._deref, where)
            return np.asarray(obj)
        import h5py

        if isinstance(obj, h5py.Reference):
            if not obj:
                raise RawLayoutError(f"{self.where}: {where} is a null reference")
            obj = self._h5[obj]
        if not isinstance(obj, h5py.Dataset):
            raise RawLayoutError(f"{self.where}: {where} is not an array (MATLAB structs are not expected)")
        kind = _class(obj, self.where)
        if _attr(obj, "MATLAB_empty", self.where):
            dims = tuple(int(d) for d in _read(obj, self.where, where).ravel())
            if dims and 0 not in dims:
                raise RawLayoutError(f"{self.where}: {where} is marked empty but has dimensions {list(dims)}")
            if kind == "cell":
                return Cell([], self._deref, where)
            return np.zeros(dims if len(dims) >= 2 else (0, 0), np.uint8)
        if h5py.check_dtype(ref=obj.dtype) is not None:  # a cell: refs, transposed -> C order = MATLAB order
            return Cell(list(_read(obj, self.where, where).ravel(order="C")), self._deref, where)
        return _read(obj, self.where, where).T


def _class(ds, path: str = "") -> str:
    v = _attr(ds, "MATLAB_class", path)
    if v is None:
        return ""
    return v.decode(errors="replace") if isinstance(v, bytes) else str(v)


def _attr(ds, name: str, path: str):
    """A small attribute's value (a scalar, or the first value of a one-element array), or None when absent.
    MATLAB writes one-value attributes; anything larger than 256 values is refused before it is read."""
    if name not in ds.attrs:
        return None
    shape = ds.attrs.get_id(name).shape or ()
    if int(np.prod(shape, dtype=np.float64)) > 256:
        raise MatSafetyError(f"{path}: {ds.name} has a {name} attribute of {' x '.join(map(str, shape))} values; "
                             "expected one value")
    value = ds.attrs[name]
    if isinstance(value, np.ndarray):
        return value.ravel()[0] if value.size else None
    return value


def _read(ds, path: str, what: str | None = None) -> np.ndarray:
    """A v7.3 dataset's values, after refusing external storage, virtual layout and a declared size over
    CYTOHUB_MAX_ARRAY_BYTES (nothing is read before these checks)."""
    what = what or ds.name
    if ds.is_virtual:
        raise MatSafetyError(f"{path}: {what} is an HDF5 virtual dataset (its data would be read from other "
                             "files); refused")
    if ds.external:
        names = ", ".join(str(e[0].decode(errors="replace") if isinstance(e[0], bytes) else e[0])
                          for e in ds.external)
        raise MatSafetyError(f"{path}: {what} stores its data in external file(s) {names}; refused (a MAT-file "
                             "must hold its own data)")
    n = int(np.prod(ds.shape, dtype=np.float64)) if ds.shape else 1
    declared = n * ds.dtype.itemsize
    if declared > MAX_ARRAY_BYTES:
        raise MatSafetyError(f"{path}: {what} declares {' x '.join(map(str, ds.shape))} values of "
                             f"{ds.dtype.itemsize} bytes ({declared:,} bytes), over the limit of "
                             f"{MAX_ARRAY_BYTES:,} (set CYTOHUB_MAX_ARRAY_BYTES to raise it)")
    try:
        return np.asarray(ds[()])
    except Exception as exc:  # h5py raises OSError, ValueError... on corrupt data
        raise RawFileError(f"{path}: {what} does not read ({type(exc).__name__}: {exc})") from None


def _audit_links(h5, path: str) -> None:
    """Refuse external links, user-defined links and soft links that do not resolve to an object inside the file
    (missing targets, relative paths, loops of soft links), anywhere in the file's group tree (checked on open,
    before any variable is accessed by name). Soft links are resolved only once the whole tree is known to hold
    no external link, so resolving one never opens another file."""
    import h5py

    soft: list[tuple[str, str]] = []

    def visit(name: str) -> str | None:  # returns the problem (which stops the walk); raising inside fails
        link = h5.get(name, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            return (f"{path}: {name} is an HDF5 external link to {link.filename}:{link.path}; refused (a MAT-file "
                    "must hold its own data)")
        if isinstance(link, h5py.SoftLink):
            soft.append((name, link.path))
        elif not isinstance(link, h5py.HardLink):
            return f"{path}: {name} is an HDF5 link of an unsupported kind; refused"
        return None

    try:
        problem = h5.visit_links(visit)
    except Exception as exc:
        raise RawFileError(f"{path}: the HDF5 structure is not readable ({type(exc).__name__}: {exc})") from None
    if problem is not None:
        raise MatSafetyError(problem)
    for name, target in soft:
        try:  # follows chains of soft links inside the file; a loop or a missing object raises
            resolved = target.startswith("/") and h5.get(target) is not None
        except Exception:
            resolved = False
        if not resolved:
            raise MatSafetyError(f"{path}: {name} is an HDF5 soft link to {target}, which does not resolve to an "
                                 "object of this file (missing, relative, or a loop of soft links); refused")


def _string_saveobj(v: np.ndarray) -> list[str] | None:
    """Decode [version, ndims, dims..., lengths..., packed UTF-16] or return None if `v` is not that."""
    if len(v) < 4 or int(v[0]) != 1 or not 1 <= int(v[1]) <= 8:
        return None
    nd = int(v[1])
    dims = [int(d) for d in v[2:2 + nd]]
    if any(d > len(v) for d in dims):
        return None
    n = int(np.prod(dims))
    lengths = [int(x) for x in v[2 + nd:2 + nd + n]]
    payload = v[2 + nd + n:]
    if len(lengths) != n or any(x > 10_000 for x in lengths) or (sum(lengths) + 3) // 4 != len(payload):
        return None
    try:
        text = payload.astype("<u8").tobytes().decode("utf-16-le", errors="strict")
    except UnicodeDecodeError:
        return None
    out, pos = [], 0
    for x in lengths:
        out.append(text[pos:pos + x])
        pos += x
    return out


def _v5_strings(obj, where: str) -> list[str]:
    """scipy's view of text: a char matrix is an array of row strings, a cell of char vectors an object array."""
    arr = np.asarray(obj)
    if arr.dtype.kind == "U":
        return [str(s).rstrip() for s in arr.ravel()]
    if arr.dtype == object:
        return ["".join(str(c) for c in np.asarray(el).ravel()) for el in arr.ravel(order="F")]
    raise RawLayoutError(f"{where}: not a char array or a cell array of char vectors")


# ------------------------------------------------------------------------------------------ v5 structure check
_MI_SIZES = {1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8, 16: 1, 17: 2, 18: 4}
_MI_MATRIX, _MI_COMPRESSED = 14, 15
_MX_CELL, _MX_STRUCT, _MX_OBJECT, _MX_SPARSE = 1, 2, 3, 5
_MX_NUMERIC_BYTES = {4: 2, 6: 8, 7: 4, 8: 1, 9: 1, 10: 2, 11: 2, 12: 4, 13: 4, 14: 8, 15: 8}


def check_mat(path: Path, where: str) -> None:
    """Walk a v5 (or v4) MAT-file's data elements before scipy loads it: inflate compressed variables with a
    bound (CYTOHUB_MAX_MAT_BYTES in total) and check every array's declared dimensions (CYTOHUB_MAX_ARRAY_BYTES),
    and that a cell or struct declares no more elements than its bytes could hold. Raises MatSafetyError or
    RawFileError naming `where`. (Every file of scipy's own MATLAB test data that scipy reads passes.)"""
    with open(path, "rb") as fh:
        head = fh.read(128)
        if len(head) < 128 or head[126:128] not in (b"IM", b"MI"):
            fh.seek(0)
            _check_v4(fh, path.stat().st_size, where)
            return
        endian = "<" if head[126:128] == b"IM" else ">"
        total = 0
        while True:
            tag = fh.read(8)
            if len(tag) < 8:
                return
            mtype, nbytes = struct.unpack(endian + "II", tag)
            if mtype == _MI_COMPRESSED:
                body = _inflate(fh, nbytes, MAX_MAT_BYTES - total, endian, where)
                total += len(body)
                _check_elements(memoryview(body), endian, where)  # slices of a memoryview are not copies
            else:
                if mtype != _MI_MATRIX:
                    fh.seek(nbytes + (-nbytes % 8), 1)
                    continue
                total += nbytes
                if total > MAX_MAT_BYTES:
                    raise MatSafetyError(f"{where}: variables of over {MAX_MAT_BYTES:,} bytes (set "
                                         "CYTOHUB_MAX_MAT_BYTES to raise it)")
                body = fh.read(nbytes)
                if len(body) < nbytes:
                    raise RawFileError(f"{where}: truncated MAT-file (a variable runs past the end)")
                _check_matrix(memoryview(body), endian, where, 0)
                fh.seek(-nbytes % 8, 1)


_V4_SIZES = {0: 8, 1: 4, 2: 4, 3: 2, 4: 2, 5: 1}  # precision digit of a v4 header -> bytes per value


def _check_v4(fh, size: int, where: str) -> None:
    """MATLAB v4 files (no text header): matrices of a 20-byte header (type, rows, cols, imaginary flag, name
    length), the name, then the values. Each declared size is checked, and must fit the file."""
    pos = 0
    while pos < size:
        head = fh.read(20)
        for endian, m in (("<", 0), (">", 1)):
            mopt, rows, cols, imagf, namlen = struct.unpack(endian + "5i", head) if len(head) == 20 else (-1,) * 5
            if 0 <= mopt < 5000 and mopt // 1000 == m and (mopt % 100) // 10 in _V4_SIZES and mopt % 10 <= 2:
                break
        else:
            raise RawFileError(f"{where}: not a readable MATLAB .mat file (no v5 header, not v4, and not HDF5)")
        if rows < 0 or cols < 0 or namlen <= 0 or imagf not in (0, 1):
            raise RawFileError(f"{where}: not a readable MATLAB .mat file (a v4 matrix header is malformed)")
        nbytes = rows * cols * _V4_SIZES[(mopt % 100) // 10] * (2 if imagf else 1)
        if nbytes > MAX_ARRAY_BYTES:
            raise MatSafetyError(f"{where}: a MATLAB array declares {rows} x {cols} values ({nbytes:,} bytes), over "
                                 f"the limit of {MAX_ARRAY_BYTES:,} (set CYTOHUB_MAX_ARRAY_BYTES to raise it)")
        pos += 20 + namlen + nbytes
        if pos > size:
            raise RawFileError(f"{where}: truncated MAT-file (a variable runs past the end)")
        fh.seek(pos)


def _inflate(fh, nbytes: int, room: int, endian: str, where: str) -> bytearray:
    """The inflated body of a miCOMPRESSED element (`nbytes` compressed bytes at `fh`): one data element whose
    tag is inflated first, so an element declaring more than `room` bytes is refused before the rest is
    inflated (a 3 MB file declaring a 3 GiB variable used to be inflated to the limit first: 2.2 GB of memory
    at 1 GiB), and inflating past what the tag declares is refused too. Bytes of the element after the end of
    its zlib stream are skipped, as scipy does, so the next element is read from where scipy reads it."""
    z = zlib.decompressobj()
    out = bytearray()
    left = nbytes
    limit = 8  # bytes wanted so far: the tag, then the element it declares (8-byte aligned)
    while left > 0 or z.unconsumed_tail:
        chunk = z.unconsumed_tail
        if not chunk:
            chunk = fh.read(min(left, 1 << 20))
            if not chunk:
                raise RawFileError(f"{where}: truncated MAT-file (a compressed variable runs past the end)")
            left -= len(chunk)
        try:
            out += z.decompress(chunk, max(1, limit + 1 - len(out)))
        except zlib.error as exc:
            raise RawFileError(f"{where}: a compressed variable does not inflate ({exc})") from None
        if limit == 8 and len(out) >= 8:
            first, second = struct.unpack_from(endian + "II", out, 0)
            declared = 8 if first >> 16 else 8 + second + (-second % 8)
            if declared > room:
                raise MatSafetyError(f"{where}: variables inflate to over {MAX_MAT_BYTES:,} bytes (a compressed "
                                     f"variable declares {declared:,} bytes once inflated; refused before inflating "
                                     "it; set CYTOHUB_MAX_MAT_BYTES to raise the limit)")
            limit = declared
        if len(out) > limit:
            raise RawFileError(f"{where}: a compressed variable inflates to more than the {limit:,} bytes it "
                               "declares; the file is corrupt or crafted")
        if z.eof:
            break
    fh.seek(left, 1)  # the element's bytes after its zlib stream (scipy seeks past them too)
    return out


def _tag(buf: bytes, pos: int, endian: str, where: str) -> tuple[int, int, int, int]:
    """(type, nbytes, data start, next element start) of the element at `pos` (small elements included)."""
    if pos + 8 > len(buf):
        raise RawFileError(f"{where}: truncated MAT-file data element")
    first, second = struct.unpack_from(endian + "II", buf, pos)
    if first >> 16:  # small data element: type and size in one word, data in the next 4 bytes
        return first & 0xFFFF, first >> 16, pos + 4, pos + 8
    end = pos + 8 + second
    if end > len(buf):
        raise RawFileError(f"{where}: truncated MAT-file data element")
    return first, second, pos + 8, end + (-second % 8)


def _check_elements(buf: bytes, endian: str, where: str) -> None:
    pos = 0
    while pos < len(buf):
        mtype, nbytes, start, nxt = _tag(buf, pos, endian, where)
        if mtype == _MI_MATRIX:
            _check_matrix(buf[start:start + nbytes], endian, where, 0)
        pos = nxt


def _check_matrix(body: bytes, endian: str, where: str, depth: int) -> None:
    if depth > 32:
        raise MatSafetyError(f"{where}: cell arrays nested over 32 deep")
    if not body:
        return  # an empty miMATRIX is MATLAB's empty element
    mtype, nbytes, start, pos = _tag(body, 0, endian, where)
    if mtype != 6 or nbytes < 8:
        raise RawFileError(f"{where}: malformed MATLAB array (no array flags)")
    cls = struct.unpack_from(endian + "I", body, start)[0] & 0xFF
    if cls == 17:  # opaque objects (MATLAB classes): no dimensions element; scipy keeps their bytes as they are
        return
    mtype, nbytes, start, pos = _tag(body, pos, endian, where)
    if mtype not in (5, 6) or nbytes % 4:  # miINT32 (some writers use miUINT32)
        raise RawFileError(f"{where}: malformed MATLAB array (no dimensions)")
    dims = struct.unpack_from(f"{endian}{nbytes // 4}{'i' if mtype == 5 else 'I'}", body, start)
    if any(d < 0 for d in dims):
        raise RawFileError(f"{where}: MATLAB array with negative dimensions {list(dims)}")
    count = int(np.prod(dims, dtype=np.float64))
    _, _, _, pos = _tag(body, pos, endian, where)  # the name
    if cls in (_MX_CELL, _MX_STRUCT, _MX_OBJECT):
        fields = 1
        if cls == _MX_OBJECT:
            _, _, _, pos = _tag(body, pos, endian, where)  # class name
        if cls in (_MX_STRUCT, _MX_OBJECT):
            _, _, lstart, pos = _tag(body, pos, endian, where)
            name_len = struct.unpack_from(endian + "i", body, lstart)[0]
            ftype, fbytes, _, pos = _tag(body, pos, endian, where)
            fields = fbytes // name_len if name_len > 0 else 0
        elements = count * fields
        if elements * 8 > len(body) - pos:  # each element needs at least one 8-byte tag
            raise MatSafetyError(f"{where}: a MATLAB {'cell' if cls == _MX_CELL else 'struct'} array declares "
                                 f"{' x '.join(map(str, dims))} elements, more than its {len(body):,} bytes hold")
        for _ in range(elements):
            mtype, nbytes, start, pos = _tag(body, pos, endian, where)
            if mtype == _MI_MATRIX:
                _check_matrix(body[start:start + nbytes], endian, where, depth + 1)
        return
    declared = count * _MX_NUMERIC_BYTES.get(cls, 8) if cls != _MX_SPARSE else 0
    if declared > MAX_ARRAY_BYTES:
        raise MatSafetyError(f"{where}: a MATLAB array declares {' x '.join(map(str, dims))} values "
                             f"({declared:,} bytes), over the limit of {MAX_ARRAY_BYTES:,} (set "
                             "CYTOHUB_MAX_ARRAY_BYTES to raise it)")


# ---------------------------------------------------------------------------------------- writing (synthetic)
class Strings(list):
    """A MATLAB `string` array (N x 1) for `write_v73`."""


def write_v5(path: Path, variables: dict[str, Any]) -> None:
    """A v5 MAT-file for synthetic data: lists become n x 1 cell arrays (nested lists: cells of cells), arrays
    are written as they are; the header's creation time is fixed (byte-identical runs)."""
    import scipy.io

    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {k: _cell_v5(v) if isinstance(v, list) else v for k, v in variables.items()},
                     do_compression=True)
    data = bytearray(path.read_bytes())
    text = synth.mat_header_text("MATLAB 5.0 MAT-file, Platform: posix, Created on: Wed Jan  1 00:00:00 2014")
    data[:116] = text.encode().ljust(116)
    path.write_bytes(bytes(data))


def _cell_v5(items: list) -> np.ndarray:
    out = np.empty((len(items), 1), dtype=object)
    for i, item in enumerate(items):
        out[i, 0] = _cell_v5(item) if isinstance(item, list) else item
    return out


V73_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Wed Jan  1 00:00:00 2014 HDF5 schema 1.00 ."


def write_v73(path: Path, variables: dict[str, Any]) -> None:
    """A MATLAB v7.3 (HDF5) file for synthetic data, laid out as MATLAB does: lists become n x 1 cell arrays of
    object references to datasets in `#refs#` (empty lists: empty cells), arrays are stored transposed with
    MATLAB_class attributes (bool as logical = uint8), `Strings` become MATLAB string arrays (MCOS saved data),
    and the 512-byte MAT-file header goes in the user block."""
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    counter = [0]

    def ref_name() -> str:
        n, name = counter[0], ""
        counter[0] += 1
        while True:
            name = chr(ord("a") + n % 26) + name
            n = n // 26 - 1
            if n < 0:
                return name

    def dataset(group, name: str, data: np.ndarray, cls: str, **attrs):
        big = data.size >= 4096 and data.dtype != h5py.ref_dtype
        ds = group.create_dataset(name, data=data, compression="gzip" if big else None,
                                  compression_opts=3 if big else None, track_times=False)
        ds.attrs["MATLAB_class"] = np.bytes_(cls)
        for k, v in attrs.items():
            ds.attrs[k] = v
        return ds

    with h5py.File(path, "w", userblock_size=512, libver="earliest", track_order=False) as f:
        refs = f.create_group("#refs#")

        def put(group, name: str, value):
            if isinstance(value, Strings):
                return _string_array(f, refs, name, list(value), dataset, ref_name)
            if isinstance(value, list):
                if not value:
                    return dataset(group, name, np.asarray([1, 0], np.uint64), "cell", MATLAB_empty=np.uint8(1))
                handles = [put(refs, ref_name(), item).ref for item in value]
                return dataset(group, name, np.array([handles], dtype=h5py.ref_dtype), "cell")
            arr = np.asarray(value)
            if arr.size == 0:
                return dataset(group, name, np.asarray(arr.shape, np.uint64), _mat_class(arr),
                               MATLAB_empty=np.uint8(1))
            if arr.dtype == bool:
                return dataset(group, name, np.ascontiguousarray(arr.T.astype(np.uint8)), "logical",
                               MATLAB_int_decode=np.int32(1))
            return dataset(group, name, np.ascontiguousarray(arr.T), _mat_class(arr))

        for name, value in variables.items():
            put(f, name, value)
    with open(path, "r+b") as fh:
        fh.write(V73_HEADER.ljust(116) + b"\x00" * 8 + b"\x00\x02IM")
    synth.mark_file(path, 128)  # synthetic data: the mark in the free part of the 512-byte user block


def _mat_class(arr: np.ndarray) -> str:
    return "logical" if arr.dtype == bool else ("double" if arr.dtype == np.float64 else
                                                "single" if arr.dtype == np.float32 else str(arr.dtype))


def _string_array(f, refs, name: str, values: list[str], dataset, ref_name) -> Any:
    """A MATLAB string column (N x 1): the MCOS object header as the variable, the saved data in #refs#."""
    import h5py

    chars = "".join(values).encode("utf-16-le")
    chars += b"\x00" * (-len(chars) % 8)
    payload = np.frombuffer(chars, "<u8")
    saved = np.concatenate([np.asarray([1, 2, len(values), 1], np.uint64),
                            np.asarray([len(v) for v in values], np.uint64), payload.astype(np.uint64)])
    meta = dataset(refs, ref_name(), np.zeros((8, 1), np.uint8), "uint8").ref
    data_ref = dataset(refs, ref_name(), saved.reshape(1, -1), "uint64").ref
    sub = f.require_group("#subsystem#")
    mcos = np.empty((1, 2), dtype=h5py.ref_dtype)
    mcos.ravel()[:] = [meta, data_ref]
    dataset(sub, "MCOS", mcos, "FileWrapper__", MATLAB_object_decode=np.int32(3))
    header = np.asarray([[0xDD000000, 2, 1, 1, 1, 1]], np.uint32)
    return dataset(f, name, header, "string", MATLAB_object_decode=np.int32(3))
