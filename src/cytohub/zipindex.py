"""Zip archives with a compact member index: a million members without a million Python objects.

`zipfile.ZipFile` keeps one `ZipInfo` per member (about 680 bytes each, measured on CPython 3.11: 135 MB for
200,000 members) and reads the whole central directory into memory at once. A raw download is read member
by member, so cytohub reads the central directory in chunks (`iter_central_directory`), hands each entry to
the caller as a transient `ZipInfo` (same fields as `zipfile` gives), and keeps only what is needed to
read a member again (`MemberRecord`: about 40 bytes in the caller's compact columns). `ZipReader.read`
opens a member through `zipfile`'s own machinery (local header check, decompressors, CRC check), so every
compression method `zipfile` supports keeps working.

Zip format facts (PKWARE APPNOTE 6.3.10, sections 4.3.12 to 4.3.16, and CPython's `zipfile`): the end of
central directory record (with its Zip64 locator) gives the directory's offset and size; each directory
entry is a 46-byte fixed header followed by the name, the extra field and the comment.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

_CHUNK = 1 << 20


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


class _NoDirectoryZipFile(zipfile.ZipFile):
    """A `zipfile.ZipFile` that does not load the central directory (cytohub keeps its own compact index)."""

    def _RealGetContents(self) -> None:  # noqa: N802 (zipfile's name)
        self.start_dir = 0


class ZipReader:
    """Reads members of one zip file on disk by their `MemberRecord` (thread-safe, like `ZipFile.read`)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._zf = _NoDirectoryZipFile(self.path)

    def read(self, rec: MemberRecord) -> bytes:
        """The member's bytes (decompressed, CRC checked). Raises zipfile.BadZipFile, OSError, EOFError,
        NotImplementedError (unsupported method) or RuntimeError (encrypted) like `ZipFile.read`."""
        info = zipfile.ZipInfo(rec.orig_filename)
        (info.header_offset, info.compress_size, info.file_size, info.compress_type, info.flag_bits,
         info.CRC) = rec[1:]
        with self._zf.open(info) as fh:
            return fh.read()

    def close(self) -> None:
        self._zf.close()
