"""Every resource limit cytohub applies to untrusted raw input, in one place.

Raw downloads come from dozens of publishers and are untrusted: a few-MB file can declare gigabytes of
content. Each limit below is enforced where the bytes enter (RawTree for archives and members, the image
checks for pixels, the annotation readers for arrays, JSON and CSV), before decompression or decoding, and
every refusal names the limit, its value and how to raise it. The annotation readers (`cytohub.formats`) take
their limits from here when they are imported, so those are set through the environment.

Defaults are sized for the largest real corpora (7z downloads of tens of GB, images up to 3264 x 2448 pixels,
annotation files of a few MB) with a wide margin, while keeping one build under 1 GB of memory.

Overriding, in increasing precedence:
* the environment: `CYTOHUB_MAX_MEMBER_BYTES=1GiB`, ... (one variable per limit, see `SPECS`);
* `cytohub build --limit member_bytes=1GiB` (repeatable), which wraps the build in `use(...)`; only the
  limits in `RUNTIME` (those RawTree and the build's row pipeline enforce) can be changed this way;
* in code: `with limits.use(limits.current().replace(member_bytes=2**30)): ...`.

API for engine modules (raw access, images, formats):
    lim = limits.current()                       # the Limits in force (a frozen dataclass)
    lim.check("image_pixels", w * h, where, "declares 100000 x 100000 pixels")   # raises LimitError
    raise lim.error("json_depth", depth, where, "nests JSON 5000 levels deep")
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from cytohub.errors import CytohubError, RawFileError

KiB, MiB, GiB = 2**10, 2**20, 2**30

# Below this many unpacked bytes a member's or archive's compression ratio is never held against it: an
# all-background mask of 2048 x 1536 x 3 bytes (9 MB) compresses about 1000:1 in a zip and is genuine.
RATIO_GRACE_BYTES = 64 * MiB


@dataclass(frozen=True)
class LimitSpec:
    """One limit: its name (for `--limit NAME=VALUE`), environment variable, unit and why its default."""

    name: str
    env: str
    unit: str  # "bytes" | "count"
    meaning: str
    why: str
    checked_by: str = "RawTree"  # the engine module that enforces it


SPECS: tuple[LimitSpec, ...] = (
    LimitSpec("member_bytes", "CYTOHUB_MAX_MEMBER_BYTES", "bytes",
              "largest raw file read into memory (annotation, table, .mat read whole)",
              "the largest real annotation files are a few MB; 256 MiB keeps one file plus its parse well "
              "under the 1 GB build budget"),
    LimitSpec("image_bytes", "CYTOHUB_MAX_IMAGE_BYTES", "bytes",
              "largest encoded image file (JPEG, PNG, BMP, TIFF ...)",
              "the largest real image is an uncompressed 3264 x 2448 RGB BMP (24 MB); 128 MiB is five times "
              "that and twice a 16-bit RGBA TIFF of the same size"),
    LimitSpec("compression_ratio", "CYTOHUB_MAX_COMPRESSION_RATIO", "count",
              f"largest unpacked/packed ratio of a member or archive above {RATIO_GRACE_BYTES // MiB} MiB "
              "unpacked",
              "real corpora (JPEG, PNG, CSV, nested zips) pack at 1-20:1; a run of zeros packs 1000:1 in a zip "
              "and far more in 7z or xz"),
    LimitSpec("nesting_depth", "CYTOHUB_MAX_NESTING_DEPTH", "count",
              "deepest archive inside archive (the raw archive itself is depth 1)",
              "the deepest real layouts are 2 (CCCID: zip inside 7z; CCAgT: zips inside a zip); 3 allows a "
              "user's own zip around them"),
    LimitSpec("unpacked_bytes", "CYTOHUB_MAX_UNPACKED_BYTES", "bytes",
              "total bytes written to the temporary folder for one raw tree (7z, tar, nested archives, "
              "members copied out)",
              "the largest real 7z/tar corpora unpack to tens of GB; 256 GiB leaves room for them and stops a "
              "bomb long before it fills a disk"),
    LimitSpec("files", "CYTOHUB_MAX_FILES", "count",
              "files in one raw tree, every archive member counted (each is held as a small record)",
              "the largest real corpus has 171,375 images (bone-marrow); 1,000,000 keeps the records of a "
              "hostile archive of tiny members well under the 1 GB build budget"),
    LimitSpec("sevenz_members", "CYTOHUB_MAX_7Z_MEMBERS", "count",
              "members of one 7z archive (py7zr refuses more before it reads them)",
              "py7zr keeps about 1.5 KB per member while it unpacks (a 2 MB 7z of a million empty members took "
              "2.7 GB); the real 7z corpora hold one zip each (CCCID), and a 7z of all 171,375 bone-marrow "
              "images would fit; larger ones unpack with 7-Zip and build from the folder"),
    LimitSpec("free_space_reserve", "CYTOHUB_FREE_SPACE_RESERVE", "bytes",
              "free space always left on the temporary folder's disk when unpacking",
              "the build's spool and shards often live on the same disk; 2 GiB keeps the system usable"),
    LimitSpec("text_lines", "CYTOHUB_MAX_TEXT_LINES", "count",
              "lines (or CSV records) of one text annotation file, read one at a time",
              "the longest real tables and lists have 171,375 lines (bone-marrow); parsed lines are kept as Python "
              "objects (a CSV record as a dict is about 600 bytes), so a million bounds them well under the 1 GB "
              "build budget"),
    LimitSpec("image_pixels", "CYTOHUB_MAX_IMAGE_PIXELS", "count",
              "largest image, width x height, read from its header before anything decodes it (Pillow's "
              "decompression-bomb guard is set to the same value)",
              "the largest real images are 3264 x 2448 (8.0 MP); 2^26 (8192 x 8192) is eight times that and at "
              "most 256 MiB decoded at 4 bytes per pixel",
              checked_by="images (Pillow's decompression-bomb guard)"),
    LimitSpec("geometry_values", "CYTOHUB_MAX_GEOMETRY_VALUES", "count",
              "coordinates (bbox, polygon and point values) in one row's objects, counted as the builder hands the "
              "row over, before it is sent to a worker",
              "the densest real rows (DSB 2018 and Cellpose masks turned into outlines) hold about 100,000; a "
              "million values are 32 MB as Python floats, and a few-MB outline file can declare many millions",
              checked_by="build (row pipeline)"),
    LimitSpec("array_bytes", "CYTOHUB_MAX_ARRAY_BYTES", "bytes",
              "largest array declared in a MATLAB .mat or HDF5 file (shape x item size), checked before reading",
              "the largest real arrays (ISBI 2014 512 x 512 doubles, Cx22 512 x 512 masks) are 2 MiB and 256 KiB",
              checked_by="formats.matlab"),
    LimitSpec("mat_bytes", "CYTOHUB_MAX_MAT_BYTES", "bytes",
              "total of a MATLAB v5 file's variables after decompression",
              "the largest real v5 files are ISBI 2014's Test90 ones: isbi_test90_GT.mat holds 90 x (cells + 1) "
              "512 x 512 logical masks of 256 KiB each, over 512 MiB only past 21 masks an image (the full-scale "
              "synthetic one inflates to 95 MB); its 900-image files and all of Cx22's are v7.3, read one element "
              "at a time under array_bytes (dataset reference, ISBI 2014 and Cx22 layouts); scipy loads a v5 file "
              "whole, so 512 MiB keeps a build under 1 GB",
              checked_by="formats.matlab"),
    LimitSpec("mask_pixels", "CYTOHUB_MAX_MASK_PIXELS", "count",
              "largest mask a run-length encoding or mask file may declare, width x height",
              "real masks are at most 2048 x 1536; 2^28 is far above them and bounds the allocation",
              checked_by="formats.rle, formats.masks"),
    LimitSpec("json_bytes", "CYTOHUB_MAX_JSON_BYTES", "bytes",
              "largest JSON annotation file (a whole read is also held to member_bytes)",
              "CCAgT's COCO file and CCEDD's LabelMe files with embedded images are far smaller",
              checked_by="formats.jsonfile"),
    LimitSpec("json_memory", "CYTOHUB_MAX_JSON_MEMORY", "bytes",
              "memory a JSON annotation file would take once parsed, estimated from its text before parsing "
              "(72 bytes per list or object, 40 per value, 32 more per string, plus the text)",
              "Python objects take 3 to 20 times the JSON text (a 15 MB file of empty lists parses to 340 MB), "
              "so a file within json_bytes could still exhaust memory; a COCO file the size of CCAgT's "
              "(63,190 polygons of 60 vertices, 64 MiB) is estimated at 440 MiB and takes 350 MiB",
              checked_by="formats.jsonfile"),
    LimitSpec("json_depth", "CYTOHUB_MAX_JSON_DEPTH", "count",
              "deepest nesting of a JSON annotation file",
              "COCO, LabelMe, CISD and the CRIC export nest at most 6 deep; 64 stays far below Python's "
              "recursion limit",
              checked_by="formats.jsonfile"),
    LimitSpec("csv_bytes", "CYTOHUB_MAX_CSV_BYTES", "bytes",
              "largest CSV annotation file (a whole read is also held to member_bytes)",
              "the largest real tables (HiCervix train.csv) are a few MB",
              checked_by="formats.csvfile"),
    LimitSpec("csv_field_bytes", "CYTOHUB_MAX_CSV_FIELD_BYTES", "bytes",
              "largest field of a CSV annotation file",
              "run-length masks and WKT polygons can exceed Python's 128 KiB default; the csv module holds a field at "
              "4 bytes per character while reading it, so 16 MiB (64 MB in memory) keeps it bounded",
              checked_by="formats.csvfile"),
)
_SPEC = {s.name: s for s in SPECS}


@dataclass(frozen=True)
class Limits:
    """The resource limits in force. Bytes are bytes, counts are plain numbers (see `SPECS`)."""

    member_bytes: int = 256 * MiB
    image_bytes: int = 128 * MiB
    compression_ratio: int = 100
    nesting_depth: int = 3
    unpacked_bytes: int = 256 * GiB
    files: int = 1_000_000
    sevenz_members: int = 250_000
    free_space_reserve: int = 2 * GiB
    text_lines: int = 1_000_000
    image_pixels: int = 2**26
    geometry_values: int = 2_000_000
    array_bytes: int = 256 * MiB
    mat_bytes: int = 512 * MiB
    mask_pixels: int = 2**28
    json_bytes: int = 512 * MiB
    json_memory: int = 640 * MiB
    json_depth: int = 64
    csv_bytes: int = 2 * GiB
    csv_field_bytes: int = 16 * MiB

    def replace(self, **changes: int) -> Limits:
        """A copy with some limits changed (names as in `SPECS`)."""
        unknown = set(changes) - set(_SPEC)
        if unknown:
            raise CytohubError(f"unknown limit {sorted(unknown)[0]!r}; expected one of {', '.join(_SPEC)}")
        return dataclasses.replace(self, **changes)

    def with_overrides(self, specs: Iterable[str], names: Iterable[str] | None = None) -> Limits:
        """A copy with `NAME=VALUE` overrides applied (as given to `--limit`), e.g. `member_bytes=1GiB`. With
        `names`, only those limits may be overridden (the others are refused, naming their variable)."""
        allowed = set(names) if names is not None else set(_SPEC)
        changes: dict[str, int] = {}
        for spec in specs:
            name, sep, value = spec.partition("=")
            name = name.strip().lower().replace("-", "_")
            if not sep or name not in _SPEC:
                raise CytohubError(f"--limit {spec!r}: expected NAME=VALUE with NAME one of "
                                   f"{', '.join(n for n in _SPEC if n in allowed)}")
            if name not in allowed:
                spec_ = _SPEC[name]
                raise CytohubError(f"--limit {name}: this limit is read when its reader ({spec_.checked_by}) is "
                                   f"loaded; set {spec_.env}={value.strip() or 'VALUE'} in the environment instead")
            changes[name] = parse_value(value, _SPEC[name], f"--limit {name}")
        return self.replace(**changes)

    def error(self, name: str, value: int, where: str, what: str) -> LimitError:
        """The error for `value` (of `where`, described by `what`) being over the limit `name`."""
        spec = _SPEC[name]
        limit = getattr(self, name)
        return LimitError(
            f"{where}: {what}, over the {name} limit of {format_value(limit, spec)}; if the file is genuine, "
            f"raise the limit with --limit {name}=VALUE or {spec.env}=VALUE",
            name=name, value=value, limit=limit,
        )

    def check(self, name: str, value: int, where: str, what: str) -> None:
        """Raise `LimitError` if `value` exceeds the limit `name`; `what` describes the value for the message,
        e.g. "6.0 GiB unpacked"."""
        if value > getattr(self, name):
            raise self.error(name, value, where, what)

    def ratio_exceeded(self, unpacked: int, packed: int) -> bool:
        """True if `unpacked` bytes from `packed` bytes is an absurd compression ratio (only counted above
        `RATIO_GRACE_BYTES` unpacked)."""
        return unpacked > RATIO_GRACE_BYTES and unpacked > self.compression_ratio * max(packed, 1)


class LimitError(RawFileError):
    """A raw input exceeds a resource limit; the message names the limit, its value and how to raise it."""

    def __init__(self, message: str, *, name: str = "", value: int = 0, limit: int = 0) -> None:
        super().__init__(message)
        self.name, self.value, self.limit = name, value, limit

    def __reduce__(self):  # crosses process boundaries intact (rows are read in worker processes)
        return (_limit_error, (str(self), self.name, self.value, self.limit))


def _limit_error(message: str, name: str, value: int, limit: int) -> LimitError:
    return LimitError(message, name=name, value=value, limit=limit)


_UNITS = {"": 1, "B": 1, "K": KiB, "KB": 10**3, "KIB": KiB, "M": MiB, "MB": 10**6, "MIB": MiB,
          "G": GiB, "GB": 10**9, "GIB": GiB, "T": 2**40, "TB": 10**12, "TIB": 2**40}


def parse_value(text: str, spec: LimitSpec, source: str) -> int:
    """'512MiB', '2GB', '100000', '1e8' -> an int >= 0 (units only for byte limits)."""
    m = re.fullmatch(r"\s*([0-9][0-9_]*(?:\.[0-9]*)?(?:[eE][0-9]+)?)\s*([A-Za-z]*)\s*", text)
    unit = m.group(2).upper() if m else ""
    if not m or unit not in _UNITS or (unit and spec.unit != "bytes"):
        expected = "a size such as 512MiB or 2GB" if spec.unit == "bytes" else "a whole number"
        raise CytohubError(f"{source}={text!r}: expected {expected}")
    value = int(float(m.group(1).replace("_", "")) * _UNITS[unit])
    if value < 1 and spec.name != "free_space_reserve":
        raise CytohubError(f"{source}={text!r}: expected a positive value (0 would refuse every input)")
    return value


def format_value(value: int, spec: LimitSpec | str) -> str:
    """A limit's value for messages: bytes in the largest whole binary unit, counts as they are."""
    spec = _SPEC[spec] if isinstance(spec, str) else spec
    if spec.unit != "bytes":
        return f"{value:,}"
    return human_bytes(value)


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB', 2**30 -> '1 GiB'."""
    for unit, size in (("TiB", 2**40), ("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= size:
            return f"{n // size:.0f} {unit}" if n % size == 0 else f"{n / size:.1f} {unit}"
    return f"{int(n)} bytes"


def from_env(environ: dict[str, str] | None = None) -> Limits:
    """The defaults with every `CYTOHUB_...` variable that is set applied."""
    env = os.environ if environ is None else environ
    changes = {s.name: parse_value(env[s.env], s, s.env) for s in SPECS if env.get(s.env, "").strip()}
    return Limits().replace(**changes)


_override: Limits | None = None
_lock = threading.Lock()


def current() -> Limits:
    """The limits in force: those set by `use()`, else the defaults with the environment applied."""
    return _override if _override is not None else from_env()


@contextlib.contextmanager
def use(limits: Limits) -> Iterator[Limits]:
    """Make `limits` the ones in force (for every thread) inside the `with` block."""
    global _override
    with _lock:
        previous, _override = _override, limits
    try:
        yield limits
    finally:
        with _lock:
            _override = previous


# the limits read while a build runs (by RawTree and the row pipeline), which `cytohub build --limit` can change
RUNTIME = tuple(s.name for s in SPECS if s.checked_by in ("RawTree", "build (row pipeline)"))


def describe() -> list[dict[str, str]]:
    """Every limit with its default, environment variable, meaning and reason (for docs and `--help`)."""
    d = Limits()
    return [{"name": s.name, "default": format_value(getattr(d, s.name), s), "env": s.env, "meaning": s.meaning,
             "why": s.why, "checked_by": s.checked_by} for s in SPECS]
