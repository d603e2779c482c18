"""JSON annotation files, read with bounds: a size limit checked before reading, a nesting-depth limit checked
before parsing (Python's parser recurses: a file of 100,000 '[' raises RecursionError), duplicate keys refused
(the last one would silently win), and one error line naming the file.

Limits (environment variables; defaults and parsing in `cytohub.limits`):
  CYTOHUB_MAX_JSON_BYTES  largest JSON file read (default 512 MiB; the largest real annotation files, CCAgT's
                          COCO file and CCEDD's LabelMe files with embedded images, are far smaller)
  CYTOHUB_MAX_JSON_MEMORY estimated memory of the parsed file (default 640 MiB), checked before parsing: Python
                          objects take 3 to 20 times the text (a 15 MB file of empty lists parses to 340 MB)
  CYTOHUB_MAX_JSON_DEPTH  deepest nesting of arrays and objects (default 64; COCO, LabelMe, CISD and the CRIC
                          export nest at most 6 deep)
NaN and Infinity literals are read as float values so that the record holding them can be named by the
format's own checks (`geometry.number`), instead of failing the whole file.
"""

from __future__ import annotations

import json
from typing import Any

from cytohub import limits
from cytohub.errors import RawFileError
from cytohub.raw import RawFile

MAX_JSON_BYTES = limits.current().json_bytes  # defaults and environment variable: cytohub.limits
MAX_JSON_DEPTH = limits.current().json_depth  # defaults and environment variable: cytohub.limits
MAX_JSON_MEMORY = limits.current().json_memory  # defaults and environment variable: cytohub.limits
# bytes of Python objects per JSON list/object, value and string, at or above what CPython 3.11 (64-bit) takes,
# measured with tracemalloc: [] 64, {} 72, a float 32 and an int over 256 36 with their list slot, "ab" 60; the
# text is counted too (it is held while parsing)
_PER_CONTAINER, _PER_VALUE, _PER_STRING = 72, 40, 32

_KEEP = dict.fromkeys(c for c in range(128) if chr(c) not in '[]{}",')
_CHUNK = 1 << 18


def load(f: RawFile, what: str = "JSON") -> Any:
    """The parsed content of a raw JSON file (UTF-8, a BOM allowed). Raises RawFileError naming the file when
    it is over CYTOHUB_MAX_JSON_BYTES (checked before reading), nested deeper than CYTOHUB_MAX_JSON_DEPTH, not
    valid JSON, or has an object with a repeated key."""
    if f.size > MAX_JSON_BYTES:
        raise RawFileError(f"{f.path}: {what} file of {f.size:,} bytes is over the limit of {MAX_JSON_BYTES:,} "
                           "bytes (set CYTOHUB_MAX_JSON_BYTES to raise it)")
    return loads(f.read_text(), f.path, what)


def loads(text: str, where: str, what: str = "JSON") -> Any:
    """`load` for text already in memory; `where` names its file in errors."""
    if len(text) > MAX_JSON_BYTES:
        raise RawFileError(f"{where}: {what} text of {len(text):,} characters is over the limit of "
                           f"{MAX_JSON_BYTES:,} (set CYTOHUB_MAX_JSON_BYTES to raise it)")
    depth, memory = _scan(text)
    if depth > MAX_JSON_DEPTH:
        raise RawFileError(f"{where}: {what} nested {depth} levels deep; the limit is {MAX_JSON_DEPTH} "
                           "(set CYTOHUB_MAX_JSON_DEPTH to raise it)")
    if memory > MAX_JSON_MEMORY:
        raise RawFileError(f"{where}: {what} would take about {limits.human_bytes(memory)} of memory once parsed "
                           f"({len(text):,} characters), over the json_memory limit of "
                           f"{limits.human_bytes(MAX_JSON_MEMORY)}; if the file is genuine, raise it with "
                           "CYTOHUB_MAX_JSON_MEMORY=VALUE")
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise RawFileError(f"{where}: not valid {what}: an object repeats the key {exc.args[0]!r} (which value is "
                           "meant is unknown)") from None
    except RecursionError:  # defensive: the depth check above should make this unreachable
        raise RawFileError(f"{where}: {what} nested too deeply to read") from None
    except ValueError as exc:
        raise RawFileError(f"{where}: not valid {what} ({exc})") from None


def nesting_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in JSON text (brackets inside strings do not count); linear
    time, memory bounded by one chunk. Unbalanced text gives a meaningless depth; the parser reports it."""
    return _scan(text)[0]


def parsed_memory(text: str) -> int:
    """An estimate, in bytes, of the memory JSON `text` takes once parsed by `json.loads` (the text itself
    included): 72 bytes per list or object, 40 per value (lists and objects included), 32 more per string. At
    or above what CPython 3.11 takes (1.2 to 1.5 times for COCO files); computed without parsing."""
    return _scan(text)[1]


def _scan(text: str) -> tuple[int, int]:
    """(nesting depth, estimated parsed memory) of JSON text, in one linear pass over chunks of the text, so the
    scan itself holds one chunk at a time however many values the text has."""
    import numpy as np

    depth = deepest = containers = commas = quotes = 0
    in_string = False
    start = 0
    while start < len(text):
        end = min(start + _CHUNK, len(text))
        while end < len(text) and text[end - 1] == "\\":  # a run of backslashes never straddles two chunks
            end += 1
        # escaped backslashes, then escaped quotes, go first; then only brackets, commas and quotes are kept
        # (characters outside ASCII can only stand inside strings)
        reduced = text[start:end].replace("\\\\", "").replace('\\"', "").translate(_KEEP)
        start = end
        parts = reduced.split('"')
        quotes += len(parts) - 1
        outside = "".join(parts[1::2] if in_string else parts[0::2])
        del parts, reduced
        in_string = quotes % 2 == 1
        commas += outside.count(",")
        brackets = outside.replace(",", "").encode("ascii", "ignore")
        if not brackets:
            continue
        containers += sum(brackets.count(c) for c in b"[{")
        chunk = np.frombuffer(brackets, np.uint8)
        steps = np.where((chunk == ord("[")) | (chunk == ord("{")), 1, -1).astype(np.int32)
        levels = np.cumsum(steps) + depth
        deepest = max(deepest, int(levels.max()))
        depth = int(levels[-1])
    values = commas + containers
    memory = len(text) + _PER_CONTAINER * containers + _PER_VALUE * values + _PER_STRING * (quotes // 2)
    return deepest, memory


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise _DuplicateKey(k)
            seen.add(k)
    return out
