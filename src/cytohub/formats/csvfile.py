"""CSV annotation tables, read with one error line per problem: a field larger than Python's default limit of
128 KiB (a run-length mask of a large nucleus, for example) is read up to CYTOHUB_MAX_CSV_FIELD_BYTES (default
16 MiB) instead of stopping with `_csv.Error`; anything the csv module refuses is reported with the file and
line; records carry the number of the line they start on.

Limits (environment variables; defaults and parsing in `cytohub.limits`):
  CYTOHUB_MAX_CSV_FIELD_BYTES  largest single field (default 16 MiB; the csv module holds a field at 4 bytes per
                               character while reading it)
  CYTOHUB_MAX_TEXT_LINES       records read (default 1,000,000; `cytohub.limits` text_lines)
  CYTOHUB_MAX_CSV_BYTES        largest CSV file read (default 2 GiB; checked before reading)
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence

from cytohub import limits
from cytohub.errors import RawFileError, RawLayoutError
from cytohub.raw import RawFile

MAX_CSV_FIELD_BYTES = limits.current().csv_field_bytes  # defaults and environment variable: cytohub.limits
MAX_CSV_BYTES = limits.current().csv_bytes  # defaults and environment variable: cytohub.limits


def records(f: RawFile, encoding: str = "utf-8-sig", delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of every record of a CSV file, blank lines included as []. The line number is the
    one the record starts on (quoted fields may span lines). Raises RawFileError naming the file and line for
    an over-long field or malformed quoting, and before reading for a file over CYTOHUB_MAX_CSV_BYTES."""
    if f.size > MAX_CSV_BYTES:
        raise RawFileError(f"{f.path}: CSV file of {f.size:,} bytes is over the limit of {MAX_CSV_BYTES:,} bytes "
                           "(set CYTOHUB_MAX_CSV_BYTES to raise it)")
    # decoded as it is read (one buffer, not the file and its text: a StringIO of the whole text took 4 bytes
    # per character); newline="" lets quoted fields span lines, as the csv module expects
    with f.open() as fh, io.TextIOWrapper(fh, encoding=encoding, newline="") as text:
        try:
            yield from _records(text, f.path, delimiter)
        except UnicodeDecodeError as exc:
            raise RawFileError(f"{f.path}: not valid {encoding} text ({exc.reason})") from None


def text_records(text: str, where: str, delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    """`records` for text already in memory; `where` names its file in errors."""
    yield from _records(io.StringIO(text, newline=""), where, delimiter)


def _records(lines, where: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    lim = limits.current()
    reader = csv.reader(lines, delimiter=delimiter, strict=False)
    start = 1
    n = 0
    while True:
        previous = csv.field_size_limit(MAX_CSV_FIELD_BYTES)  # the module-wide limit, set only while parsing
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):
                raise RawFileError(f"{where}:{start}: a field is over the limit of {MAX_CSV_FIELD_BYTES:,} bytes "
                                   "(set CYTOHUB_MAX_CSV_FIELD_BYTES to raise it)") from None
            raise RawFileError(f"{where}:{start}: not readable as CSV ({exc})") from None
        finally:
            csv.field_size_limit(previous)
        n += 1
        if n > lim.text_lines:
            raise lim.error("text_lines", n, where, f"has more than {lim.text_lines:,} CSV records")
        yield start, row
        start = reader.line_num + 1


def table(f: RawFile, columns: Sequence[str], encoding: str = "utf-8-sig",
          delimiter: str = ",") -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, {column: value}) of every non-blank record of a CSV file whose header names at least
    `columns` (compared after stripping spaces). A header without them, or a record with more or fewer fields
    than the header, is a RawLayoutError naming the file and line."""
    it = records(f, encoding, delimiter)
    header: list[str] | None = None
    for _, row in it:
        if any(c.strip() for c in row):
            header = [c.strip() for c in row]
            break
    if header is None:
        raise RawLayoutError(f"{f.path}: empty file; expected a header {','.join(columns)}")
    missing = [c for c in columns if c not in header]
    if missing:
        raise RawLayoutError(f"{f.path}: header {','.join(header)!r} lacks {', '.join(missing)}; expected "
                             f"{','.join(columns)}")
    for line, row in it:
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise RawLayoutError(f"{f.path}:{line}: {len(row)} fields, expected {len(header)} ({','.join(header)})")
        yield line, dict(zip(header, row, strict=True))
