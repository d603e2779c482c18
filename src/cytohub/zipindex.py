"""Zip archives with a compact member index: a million members without a million Python objects.

`zipfile.ZipFile` keeps one `ZipInfo` per member (about 680 bytes each, measured on CPython 3.11: 135 MB for
200,000 members) and reads the whole central directory into memory at once. A raw download is read member
by member, so cytohub reads the central directory in chunks (`iter_central_directory`), hands each entry to
the caller as a transient `ZipInfo` (same fields as `zipfile` gives), and keeps only what is needed to
read a member again (`MemberRecord`: about 40 bytes in the caller's compact columns). `ZipReader` reads a
member with positional reads and decompresses it as it is read (`MemberStream`: stored, deflate, Deflate64
through the `inflate64` codec, bzip2, LZMA), checking the local header against the directory, stopping at
the declared size (a longer stream is an error) and checking the CRC.

Zip format facts (PKWARE APPNOTE 6.3.10, sections 4.3.12 to 4.3.16, and CPython's `zipfile`): the end of
central directory record (with its Zip64 locator) gives the directory's offset and size; each directory
entry is a 46-byte fixed header followed by the name, the extra field and the comment.
"""

from __future__ import annotations

import bz2
import io
import lzma
import os
import struct
import threading
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from cytohub.errors import CytohubError, RawFileError

_CHUNK = 1 << 20
_UNPACK_HINT = "unpack it with 7-Zip (7z x ARCHIVE) and pass the unpacked folder with --raw"
# zip compression methods (APPNOTE 4.4.5): those read here, then the names of the others for messages
ZIP_METHODS_READ = {0: "stored", 8: "deflate", 9: "Deflate64", 12: "bzip2", 14: "LZMA"}
_ZIP_OTHER = {1: "Shrink", 6: "Implode", 10: "PKWARE Implode", 18: "IBM TERSE", 19: "LZ77", 93: "Zstandard",
              94: "MP3", 95: "XZ", 96: "JPEG", 97: "WavPack", 98: "PPMd", 99: "AES-encrypted"}


class MemberRecord(NamedTuple):
    """Where one member's bytes are: enough to rebuild the `ZipInfo` that `zipfile` opens."""

    orig_filename: str
    header_offset: int
    compress_size: int
    file_size: int
    compress_type: int
    flag_bits: int
    crc: int


def record_of(info: zipfile.ZipInfo) -> MemberRecord:
    return MemberRecord(info.orig_filename, info.header_offset, info.compress_size, info.file_size,
                        info.compress_type, info.flag_bits, info.CRC)


def _decode_extra(x: zipfile.ZipInfo, raw_name: bytes) -> None:
    try:
        x._decodeExtra()
    except TypeError:  # CPython >= 3.12 passes the name's CRC (for the Unicode path extra field)
        x._decodeExtra(zlib.crc32(raw_name))


def iter_central_directory(fp: io.BufferedIOBase) -> Iterator[zipfile.ZipInfo]:
    """Every central-directory entry of the zip open in `fp`, in directory order, as a transient `ZipInfo`
    (name decoded as `zipfile` does: UTF-8 when flagged, else cp437). Raises `zipfile.BadZipFile` for a file
    that is not a zip or whose directory is truncated or corrupt."""
    try:
        endrec = zipfile._EndRecData(fp)
    except OSError:
        raise zipfile.BadZipFile("File is not a zip file") from None
    if not endrec:
        raise zipfile.BadZipFile("File is not a zip file")
    size_cd, offset_cd = endrec[zipfile._ECD_SIZE], endrec[zipfile._ECD_OFFSET]
    concat = endrec[zipfile._ECD_LOCATION] - size_cd - offset_cd
    if endrec[zipfile._ECD_SIGNATURE] == zipfile.stringEndArchive64:
        concat -= zipfile.sizeEndCentDir64 + zipfile.sizeEndCentDir64Locator
    start = offset_cd + concat
    if start < 0:
        raise zipfile.BadZipFile("Bad offset for central directory")
    fp.seek(start)
    buf, pos, total = b"", 0, 0
    fixed = zipfile.sizeCentralDir

    def need(n: int) -> None:
        nonlocal buf, pos
        if len(buf) - pos < n:
            more = fp.read(max(_CHUNK, n - (len(buf) - pos)))
            buf = buf[pos:] + more
            pos = 0
            if len(buf) < n:
                raise zipfile.BadZipFile("Truncated central directory")

    while total < size_cd:
        need(fixed)
        centdir = struct.unpack(zipfile.structCentralDir, buf[pos:pos + fixed])
        if centdir[zipfile._CD_SIGNATURE] != zipfile.stringCentralDir:
            raise zipfile.BadZipFile("Bad magic number for central directory")
        n_name = centdir[zipfile._CD_FILENAME_LENGTH]
        n_extra = centdir[zipfile._CD_EXTRA_FIELD_LENGTH]
        n_comment = centdir[zipfile._CD_COMMENT_LENGTH]
        need(fixed + n_name + n_extra + n_comment)
        raw_name = buf[pos + fixed:pos + fixed + n_name]
        flags = centdir[zipfile._CD_FLAG_BITS]
        name = raw_name.decode("utf-8") if flags & zipfile._MASK_UTF_FILENAME else raw_name.decode("cp437")
        x = zipfile.ZipInfo(name)
        x.extra = buf[pos + fixed + n_name:pos + fixed + n_name + n_extra]
        x.comment = buf[pos + fixed + n_name + n_extra:pos + fixed + n_name + n_extra + n_comment]
        x.header_offset = centdir[zipfile._CD_LOCAL_HEADER_OFFSET]
        (x.create_version, x.create_system, x.extract_version, x.reserved, x.flag_bits, x.compress_type, t, d,
         x.CRC, x.compress_size, x.file_size) = centdir[1:12]
        if x.extract_version > zipfile.MAX_EXTRACT_VERSION:
            raise NotImplementedError(f"zip file version {x.extract_version / 10:.1f}")
        x.volume, x.internal_attr, x.external_attr = centdir[15:18]
        x._raw_time = t
        x.date_time = ((d >> 9) + 1980, (d >> 5) & 0xF, d & 0x1F, t >> 11, (t >> 5) & 0x3F, (t & 0x1F) * 2)
        _decode_extra(x, raw_name)
        x.header_offset += concat
        pos += fixed + n_name + n_extra + n_comment
        total += fixed + n_name + n_extra + n_comment
        yield x


class ZipReader:
    """Reads members of one zip file on disk by their `MemberRecord`, with positional reads (safe to share
    between threads): the bytes are decompressed as they are read (`MemberStream`), never past the size the
    central directory declares."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
        self.size = os.fstat(self.fd).st_size
        self._lock = threading.Lock()

    def pread(self, n: int, offset: int) -> bytes:
        if hasattr(os, "pread"):
            return os.pread(self.fd, n, offset)
        with self._lock:  # platforms without pread (Windows)
            os.lseek(self.fd, offset, os.SEEK_SET)
            return os.read(self.fd, n)

    def open(self, rec: MemberRecord, where: str | None = None) -> MemberStream:
        """A stream of the member's unpacked bytes; `where` names it in errors (default: its name)."""
        return MemberStream(self, rec, where or f"{self.path.name}/{rec.orig_filename}")

    def read(self, rec: MemberRecord, where: str | None = None) -> bytes:
        """The member's bytes (decompressed, length and CRC checked). Raises RawFileError (naming `where`) for
        an unsupported method, a truncated, corrupt or crafted member."""
        with self.open(rec, where) as fh:
            return fh.read()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class MemberStream(io.RawIOBase):
    """The unpacked bytes of one zip member, decompressed as they are read (bounded memory per read).

    Never yields more than the size the central directory declares: a longer stream (a lying header), a
    shorter one (truncation) or a CRC mismatch raises RawFileError as soon as the declared end is reached.
    Seekable; a backward seek restarts decompression from the member's start."""

    _IN = 64 * 1024  # compressed bytes per step
    _IN_DEFLATE64 = 1024  # inflate64 has no output bound per call: small steps bound it (~30 MB worst case)

    def __init__(self, archive: ZipReader, info: MemberRecord, where: str) -> None:
        super().__init__()
        self._a, self._info, self._where = archive, info, where
        self._method = info.compress_type
        if self._method not in ZIP_METHODS_READ:
            name = _ZIP_OTHER.get(self._method, f"method {self._method}")
            raise RawFileError(f"{where}: compressed with {name}, which cytohub cannot read; {_UNPACK_HINT}, or "
                               "re-zip it with standard deflate")
        head = archive.pread(30, info.header_offset)
        if len(head) < 30 or head[:4] != b"PK\x03\x04":
            raise RawFileError(f"{where}: its local header is missing; the archive is truncated or corrupt")
        name_len, extra_len = struct.unpack("<HH", head[26:30])
        local_name = archive.pread(name_len, info.header_offset + 30)
        if local_name != info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437", "replace"):
            raise RawFileError(f"{where}: the local header names {local_name[:80]!r}; the central directory and "
                               "the data disagree (a corrupt or crafted archive)")
        self._start = info.header_offset + 30 + name_len + extra_len
        if self._start + info.compress_size > archive.size:
            raise RawFileError(f"{where}: its data runs past the end of {archive.path.name}; the archive is truncated")
        self._reset()

    # ------------------------------------------------------------------ decoding
    def _reset(self) -> None:
        self._in_pos = 0
        self._out = 0
        self._crc = 0
        self._pending = b""
        self._done = False
        m = self._method
        if m == 8:
            self._dec = zlib.decompressobj(-15)
        elif m == 12:
            self._dec = bz2.BZ2Decompressor()
        elif m == 14:
            self._dec = None  # created once the LZMA properties are read
        elif m == 9:
            import inflate64

            self._dec = inflate64.Inflater()
        else:
            self._dec = None

    def _take(self, n: int) -> bytes:
        left = self._info.compress_size - self._in_pos
        n = min(n, left)
        if n <= 0:
            return b""
        data = self._a.pread(n, self._start + self._in_pos)
        if len(data) < n:
            raise RawFileError(f"{self._where}: {self._a.path.name} ends inside this member; the archive is truncated")
        self._in_pos += n
        return data

    def _lzma(self) -> lzma.LZMADecompressor:
        head = self._take(4)
        if len(head) < 4:
            raise RawFileError(f"{self._where}: LZMA header missing; the archive is corrupt")
        psize = struct.unpack("<H", head[2:4])[0]
        props = self._take(psize)
        if len(props) != 5:
            raise RawFileError(f"{self._where}: LZMA properties of {psize} bytes; the archive is corrupt")
        d = props[0]
        lc, lp, pb = d % 9, (d // 9) % 5, d // 45
        dict_size = struct.unpack("<I", props[1:5])[0]
        return lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[
            {"id": lzma.FILTER_LZMA1, "dict_size": dict_size, "lc": lc, "lp": lp, "pb": pb}])

    def _step(self, n: int) -> bytes:
        """Up to n more unpacked bytes; b'' at the end of the member's data."""
        if self._pending:
            out, self._pending = self._pending[:n], self._pending[n:]
            return out
        m = self._method
        while True:
            if m == 0:
                return self._take(min(n, _CHUNK))
            if m == 9:
                if self._dec.eof:
                    return b""
                data = self._take(self._IN_DEFLATE64)
                if not data:
                    return b""
                out = self._dec.inflate(data)
                if out:
                    out, self._pending = out[:n], out[n:]
                    return out
                continue
            if m == 14 and self._dec is None:
                self._dec = self._lzma()
            d = self._dec
            if d.eof:
                return b""
            if m == 8:
                data = d.unconsumed_tail or self._take(self._IN)
            else:
                data = self._take(self._IN) if d.needs_input else b""
            out = d.decompress(data, n)
            if out:
                return out
            if not data and (m != 8 or not d.unconsumed_tail):
                return b""

    def _produce(self, n: int) -> bytes:
        if self._done:
            return b""
        declared = self._info.file_size
        try:
            out = self._step(min(n, max(declared - self._out, 0)) or 1)
        except (CytohubError, MemoryError):
            raise
        except Exception as exc:  # zlib.error, OSError (bz2), LZMAError, inflate64's errors
            raise RawFileError(f"{self._where}: cannot be decompressed ({type(exc).__name__}: {exc}); the "
                               "archive is corrupt") from None
        self._out += len(out)
        self._crc = zlib.crc32(out, self._crc)
        if self._out > declared:
            raise RawFileError(f"{self._where}: unpacks to more than the {declared} bytes its header declares; "
                               "the archive is corrupt or crafted")
        if not out or self._out == declared:
            self._finish()
        return out

    def _finish(self) -> None:
        declared = self._info.file_size
        if self._out == declared:
            try:
                extra = self._step(1)
            except Exception:
                extra = b""
            if extra:
                raise RawFileError(f"{self._where}: unpacks to more than the {declared} bytes its header "
                                   "declares; the archive is corrupt or crafted")
        if self._out < declared:
            raise RawFileError(f"{self._where}: ends after {self._out} of the {declared} bytes its header declares; "
                               "the archive is truncated or corrupt")
        if self._crc != self._info.crc:
            raise RawFileError(f"{self._where}: CRC mismatch; the archive is corrupt (download it again)")
        self._done = True

    # ------------------------------------------------------------------ io interface
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        out = self._produce(len(b))
        b[: len(out)] = out
        return len(out)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            first = self._produce(max(self._info.file_size - self._out, 1))
            if self._done:
                return first  # usually the whole member in one step
            buf = io.BytesIO(first)  # getvalue() shares its buffer: one copy of the data in memory, not two
            buf.seek(0, io.SEEK_END)
            while chunk := self._produce(_CHUNK):
                buf.write(chunk)
            return buf.getvalue()
        parts, want = [], size
        while want > 0 and (chunk := self._produce(want)):
            parts.append(chunk)
            want -= len(chunk)
        return b"".join(parts)

    def readall(self) -> bytes:
        return self.read()

    def tell(self) -> int:
        return self._out

    def seek(self, offset: int, whence: int = 0) -> int:
        pos = self.tell()
        target = offset if whence == 0 else pos + offset if whence == 1 else self._info.file_size + offset
        if target < 0:
            raise ValueError("negative seek position")
        if target < pos:
            self._reset()
            pos = 0
        while pos < target and (chunk := self.read(min(target - pos, _CHUNK))):
            pos += len(chunk)
        return pos
