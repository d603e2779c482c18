"""JSON annotation files, read with bounds: a size limit checked before reading, a nesting-depth limit checked
before parsing (Python's parser recurses: a file of 100,000 '[' raises RecursionError), duplicate keys refused
(the last one would silently win), and one error line naming the file.

Limits (environment variables; defaults and parsing in `cytohub.limits`):
  CYTOHUB_MAX_JSON_BYTES  largest JSON file read (default 512 MiB; the largest real annotation files, CCAgT's
                          COCO file and CCEDD's LabelMe files with embedded images, are far smaller)
  CYTOHUB_MAX_JSON_DEPTH  deepest nesting of arrays and objects (default 64; COCO, LabelMe, CISD and the CRIC
                          export nest at most 6 deep)
NaN and Infinity literals are read as float values so that the record holding them can be named by the
format's own checks (`geometry.number`), instead of failing the whole file.
"""

from __future__ import annotations

import json
import re
from typing import Any

from cytohub import limits
from cytohub.errors import RawFileError
from cytohub.raw import RawFile

MAX_JSON_BYTES = limits.current().json_bytes  # defaults and environment variable: cytohub.limits
MAX_JSON_DEPTH = limits.current().json_depth  # defaults and environment variable: cytohub.limits

_STRING = re.compile(r'"[^"]*"')
_KEEP = dict.fromkeys(c for c in range(128) if chr(c) not in '[]{}"')
_CHUNK = 1 << 20


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
    depth = nesting_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise RawFileError(f"{where}: {what} nested {depth} levels deep; the limit is {MAX_JSON_DEPTH} "
                           "(set CYTOHUB_MAX_JSON_DEPTH to raise it)")
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
    import numpy as np

    # escaped backslashes, then escaped quotes, go first; then only brackets and quotes are kept (characters
    # outside ASCII can only stand inside strings), so the strings that remain are '"..."' without escapes
    reduced = text.replace("\\\\", "").replace('\\"', "").translate(_KEEP)
    brackets = re.sub(r"[^\[\]{}]", "", _STRING.sub("", reduced)).encode("ascii")
    depth = deepest = 0
    for start in range(0, len(brackets), _CHUNK):
        chunk = np.frombuffer(brackets, np.uint8, count=min(_CHUNK, len(brackets) - start), offset=start)
        steps = np.where((chunk == ord("[")) | (chunk == ord("{")), 1, -1).astype(np.int32)
        levels = np.cumsum(steps) + depth
        deepest = max(deepest, int(levels.max()))
        depth = int(levels[-1])
    return deepest


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
