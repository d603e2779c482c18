"""Helpers for synthetic raw data: cell-like images, focus ramps, masks, deterministic archives.

Synthetic raw data reproduces a corpus's published layout (names, nesting, archive types, annotation
formats) with pixels we draw ourselves. Everything here is deterministic: the same seed gives the same bytes.

The synthetic mark. Inside `marking(corpus, scale, seed)` (which `Builder.synthesize` enters by itself, see
`cytohub.builder`), every file these helpers write carries the mark `cytohub-synthetic:<corpus>:<scale>:<seed>`
inside it, so that a copy of any of the files is still recognised as synthetic:
* images from `encode`: a JPEG COM segment, a PNG `tEXt` chunk (keyword `Comment`), the TIFF ImageDescription
  tag, or (BMP, which has no text field) bytes after the end of the bitmap that readers ignore;
* zips from `write_zip` / `zip_folder`: the archive comment; 7z from `write_7z`: a first member named `MARKER`
  (7z has no archive comment);
* MAT-files: the header text (`mat_header_text`; v5) or the HDF5 user block (`mark_file`; v7.3).
`find_mark(data)` reads the mark back from a file's first and last `MARK_WINDOW` bytes, and `detect(tree)` looks
for it in a raw download (see `cytohub.build`).
"""

from __future__ import annotations

import contextvars
import hashlib
import io
import json
import re
import shutil
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

if TYPE_CHECKING:
    from cytohub.raw import RawTree

MARKER = ".cytohub-synthetic.json"  # written at the root of every synthetic raw folder (and first in every 7z)
MARK_PREFIX = b"cytohub-synthetic:"
MARK_RE = re.compile(rb"cytohub-synthetic:(?P<corpus>[A-Za-z0-9_.-]{1,64}):(?P<scale>small|full):(?P<seed>-?\d{1,19})")
MARK_WINDOW = 8192  # bytes searched at each end of a file (headers, comments, trailers)
_FIXED_TIME = (2020, 1, 1, 0, 0, 0)
_FIXED_EPOCH = 1577836800.0
_MARK: contextvars.ContextVar[str | None] = contextvars.ContextVar("cytohub_synthetic_mark", default=None)


# ----------------------------------------------------------------------------------------------- the mark
def mark_text(corpus: str, scale: str, seed: int) -> str:
    """The mark carried by every synthetic file: `cytohub-synthetic:<corpus>:<scale>:<seed>` (ASCII)."""
    text = f"cytohub-synthetic:{corpus}:{scale}:{int(seed)}"
    if not MARK_RE.fullmatch(text.encode()):
        raise ValueError(f"cannot mark synthetic data of corpus {corpus!r} at scale {scale!r}")
    return text


@contextmanager
def marking(corpus: str, scale: str, seed: int) -> Iterator[str]:
    """Inside this block, the helpers of this module mark every file they write as synthetic."""
    token = _MARK.set(mark_text(corpus, scale, seed))
    try:
        yield _MARK.get()
    finally:
        _MARK.reset(token)


def current_mark() -> str | None:
    """The mark of the synthetic data being written (None outside `marking`)."""
    return _MARK.get()


def parse_mark(text: bytes) -> dict | None:
    """{"corpus", "scale", "seed"} of the first mark in `text`, or None."""
    m = MARK_RE.search(text)
    if m is None:
        return None
    return {"corpus": m["corpus"].decode(), "scale": m["scale"].decode(), "seed": int(m["seed"])}


def find_mark(data: bytes) -> dict | None:
    """The synthetic mark of a file's bytes (searched in its first and last MARK_WINDOW bytes), or None."""
    if len(data) <= 2 * MARK_WINDOW:
        return parse_mark(data)
    return parse_mark(data[:MARK_WINDOW]) or parse_mark(data[-MARK_WINDOW:])


def find_mark_in_file(path: Path) -> dict | None:
    """`find_mark` of a file on disk, reading only its two ends."""
    with open(path, "rb") as fh:
        head = fh.read(MARK_WINDOW)
        found = parse_mark(head)
        if found is not None:
            return found
        size = fh.seek(0, 2)
        if size <= MARK_WINDOW:
            return None
        fh.seek(max(MARK_WINDOW, size - MARK_WINDOW))
        return parse_mark(fh.read())


def mark_file(path: Path, offset: int) -> None:
    """Write the current mark into a file at `offset`, over bytes its format leaves unused (e.g. the free part
    of an HDF5 user block: bytes 128..511 of a MATLAB v7.3 file). Nothing happens outside `marking`."""
    mark = current_mark()
    if mark is None:
        return
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(mark.encode())


def mat_header_text(default: str) -> str:
    """The 116-byte text of a MATLAB v5 header: `default`, or inside `marking` the mark after the version."""
    mark = current_mark()
    return default if mark is None else f"MATLAB 5.0 MAT-file, {mark}"


MARKER_MAX_BYTES = 64 * 1024  # a marker file written by `synthesize` holds a few hundred bytes


def detect(tree: RawTree) -> dict | None:
    """The synthetic mark of a raw download, or None when nothing in it is marked.

    Looks where a copy keeps the mark: marker files anywhere in the tree (the hidden file beside a synthetic
    download, the first member of a 7z), the comment of every zip the user gave, and both ends of every other
    file the user gave (image metadata, MAT-file headers), read straight from disk (two small reads per file,
    no symbolic link followed). Marked images inside unmarked archives are found by the build in the rows it
    samples for its figures. Returns the first mark found, with `found_in` (the marked file, relative to the
    raw root) and `scales` (every scale any mark claims)."""
    found: list[tuple[dict, str]] = []
    for f in tree.named(MARKER):
        try:  # the file marks the download whatever it holds; a genuine one is a few hundred bytes of JSON
            if f.size > MARKER_MAX_BYTES:
                raise ValueError("too large for a marker file")
            data = json.loads(f.read_bytes())
            found.append(({"corpus": data.get("corpus"), "scale": data.get("scale"), "seed": data.get("seed")},
                          f.path))
        except (ValueError, AttributeError, RecursionError):
            found.append(({"corpus": None, "scale": None, "seed": None}, f.path))
    for disk, rel in _user_files(Path(tree.root)):
        if rel.rsplit("/", 1)[-1] == MARKER:
            continue
        try:
            if zipfile.is_zipfile(disk):
                with open(disk, "rb") as fh:  # the end record only: ZipFile would load every member's entry
                    end = zipfile._EndRecData(fh)
                mark = parse_mark(end[zipfile._ECD_COMMENT]) if end else None
            else:
                mark = find_mark_in_file(disk)
        except (OSError, zipfile.BadZipFile):
            continue  # unreadable inputs are reported by the build itself
        if mark is not None:
            found.append((mark, rel))
    if not found:
        return None
    first, where = found[0]
    return {**first, "found_in": where, "scales": sorted({str(m.get("scale")) for m, _ in found})}


def _user_files(root: Path) -> Iterator[tuple[Path, str]]:
    """(file on disk, path relative to the raw root) of every regular file the user gave, sorted."""
    import os

    if root.is_file():
        yield root, root.name
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted(filenames):
            disk = base / name
            if not disk.is_symlink() and disk.is_file():
                yield disk, disk.relative_to(root).as_posix()


def rng_for(*keys: object) -> np.random.Generator:
    """A generator seeded from `keys` (stable across runs and machines, unlike hash())."""
    digest = hashlib.sha256(repr(keys).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


@dataclass(frozen=True)
class Cell:
    """A drawn cell, in pixels: centre, cytoplasm and nucleus radii (x, y), rotation in degrees."""

    cx: float
    cy: float
    cyto: tuple[float, float]
    nuc: tuple[float, float]
    angle: float

    def bbox(self) -> tuple[float, float, float, float]:
        r = max(self.cyto)
        return (self.cx - r, self.cy - r, 2 * r, 2 * r)

    def nucleus_polygon(self, n: int = 16) -> list[float]:
        return _ellipse_polygon(self.cx, self.cy, *self.nuc, self.angle, n)

    def cytoplasm_polygon(self, n: int = 24) -> list[float]:
        return _ellipse_polygon(self.cx, self.cy, *self.cyto, self.angle, n)


def _ellipse_polygon(cx, cy, rx, ry, angle, n) -> list[float]:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    a = np.deg2rad(angle)
    x = cx + rx * np.cos(t) * np.cos(a) - ry * np.sin(t) * np.sin(a)
    y = cy + rx * np.cos(t) * np.sin(a) + ry * np.sin(t) * np.cos(a)
    return [round(float(v), 1) for pair in zip(x, y, strict=True) for v in pair]


# Papanicolaou-like palette: cyanophilic / eosinophilic cytoplasm, hyperchromatic nuclei
_CYTO = [(150, 190, 210), (215, 160, 175), (170, 200, 170), (225, 190, 150)]
_NUC = [(60, 50, 120), (80, 60, 140), (40, 40, 90)]


def cell_field(rng: np.random.Generator, size: tuple[int, int], n_cells: int = 4,
               nucleus_scale: float = 0.3, tint: int = 0, margin: float = 0.0) -> tuple[Image.Image, list[Cell]]:
    """An RGB image of Pap-stained-looking cells on a pale background, and the cells drawn.
    `nucleus_scale` is the nucleus/cytoplasm radius ratio (larger for dysplastic classes).
    `margin` keeps whole cells inside the image (fraction of the smaller side)."""
    w, h = size
    base = np.empty((h, w, 3), np.float32)
    base[:] = (238, 232, 236)
    base += rng.normal(0, 4, (h, w, 1))
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    cells = []
    side = min(w, h)
    for _ in range(n_cells):
        r = float(rng.uniform(0.12, 0.22) * side)
        lo = r * (1 + margin) if margin else 0.1 * side
        cx = float(rng.uniform(lo, w - lo)) if w > 2 * lo else w / 2
        cy = float(rng.uniform(lo, h - lo)) if h > 2 * lo else h / 2
        ry = r * float(rng.uniform(0.7, 1.0))
        angle = float(rng.uniform(0, 180))
        nr = r * nucleus_scale * float(rng.uniform(0.8, 1.2))
        cell = Cell(cx, cy, (r, ry), (nr, nr * float(rng.uniform(0.75, 1.0))), angle)
        cells.append(cell)
        cyto = _CYTO[(tint + int(rng.integers(len(_CYTO)))) % len(_CYTO)]
        draw.polygon(cell.cytoplasm_polygon(), fill=cyto, outline=tuple(c - 30 for c in cyto))
        nuc = _NUC[int(rng.integers(len(_NUC)))]
        draw.polygon(cell.nucleus_polygon(), fill=nuc)
    # chromatin-like texture
    arr = np.asarray(img, np.float32)
    arr += rng.normal(0, 6, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB"), cells


class ImagePool:
    """Full-scale synthetic data without drawing every image: `pool(key, i, make)` calls `make(k)` once for each
    k = i mod `size` per `key` and hands back that result (image bytes, with whatever annotations go with them)
    for every i with the same k. At small scale (`active` False) it simply returns `make(i)`, so every image is
    drawn. Full-scale corpora of 100k+ files then cost `size` drawings per class plus file writes.

    `make` must be deterministic in its index; the pool keeps at most `size` results per key in memory."""

    def __init__(self, scale: str, size: int = 32) -> None:
        if size < 1:
            raise ValueError("an image pool needs at least one image per key")
        self.active = scale == "full"
        self.size = size
        self._cache: dict[tuple, object] = {}

    def __call__(self, key, i: int, make):
        if not self.active:
            return make(i)
        k = (key, i % self.size)
        if k not in self._cache:
            self._cache[k] = make(i % self.size)
        return self._cache[k]


def defocus(img: Image.Image, distance: float, per_step: float = 0.9) -> Image.Image:
    """The image as seen `distance` focal steps away from best focus (Gaussian blur grows with distance)."""
    radius = abs(distance) * per_step
    return img.filter(ImageFilter.GaussianBlur(radius)) if radius > 0 else img.copy()


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    """Image bytes in `fmt` (JPEG, PNG, BMP, TIFF); JPEG without timestamps, so deterministic. Inside
    `marking`, the image carries the synthetic mark (see the module docstring)."""
    buf = io.BytesIO()
    mark = current_mark()
    fmt = fmt.upper()
    if fmt in ("JPEG", "JPG"):
        kw.setdefault("quality", 90)
        if mark:
            kw.setdefault("comment", mark.encode())
        img.convert("RGB").save(buf, "JPEG", **kw)
        return buf.getvalue()
    if mark and fmt == "PNG" and "pnginfo" not in kw:
        from PIL import PngImagePlugin

        info = PngImagePlugin.PngInfo()
        info.add_text("Comment", mark)
        kw["pnginfo"] = info
    elif mark and fmt in ("TIFF", "TIF"):
        kw.setdefault("description", mark)
    img.save(buf, fmt, **kw)
    if mark and fmt == "BMP":  # no text field in BMP: after the bitmap (its size is in the header)
        buf.write(b"\0" + mark.encode())
    return buf.getvalue()


def label_mask(size: tuple[int, int], shapes: Iterable[tuple[list[float], int]], mode: str = "L") -> Image.Image:
    """A label map with each polygon filled with its value, later shapes on top."""
    m = Image.new(mode, size, 0)
    d = ImageDraw.Draw(m)
    for poly, value in shapes:
        d.polygon(poly, fill=value)
    return m


def write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def write_zip(path: Path, entries: Iterable[tuple[str, bytes | Path]], compress: bool = True) -> None:
    """A zip with the entries in the given order and fixed timestamps (byte-identical on every run). Values may
    be bytes or file paths (streamed, so a large member, such as a nested archive, is never held in memory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        mark = current_mark()
        if mark:
            zf.comment = mark.encode()
        for name, data in entries:
            info = zipfile.ZipInfo(name, _FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            if isinstance(data, Path):
                with open(data, "rb") as src, zf.open(info, "w", force_zip64=data.stat().st_size > 2**31) as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            else:
                zf.writestr(info, data)


def zip_folder(folder: Path, path: Path, compress: bool = True) -> None:
    """Zip every file under `folder` (names relative to folder.parent, so the folder is the zip's root)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    write_zip(path, ((p.relative_to(folder.parent).as_posix(), p.read_bytes()) for p in files), compress)


def write_7z(path: Path, entries: Iterable[tuple[str, bytes | Path]], preset: int = 1) -> None:
    """A 7z (LZMA2) archive with fixed timestamps (byte-identical on every run). Values may be bytes or
    file paths. `preset` is the LZMA level: low by default, as synthetic data need not be small. Inside
    `marking`, the first member is the marker file `MARKER` (7z archives have no comment)."""
    import py7zr
    from py7zr.helpers import ArchiveTimestamp

    fixed = ArchiveTimestamp.from_datetime(_FIXED_EPOCH)
    path.parent.mkdir(parents=True, exist_ok=True)
    with py7zr.SevenZipFile(path, "w", filters=[{"id": py7zr.FILTER_LZMA2, "preset": preset}]) as z:
        mark = current_mark()
        if mark:
            z.writestr(_marker_json(parse_mark(mark.encode())), MARKER)
        for name, data in entries:
            if isinstance(data, Path):
                with open(data, "rb") as fh:
                    z.writef(fh, name)
            else:
                z.writestr(data, name)
        for info in z.header.files_info.files:
            for key in ("creationtime", "lastwritetime", "lastaccesstime"):
                info[key] = fixed


def write_marker(root: Path, corpus: str, scale: str, seed: int) -> None:
    """Mark a folder as synthetic raw data (a build from it is labelled synthetic)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).write_text(_marker_json({"corpus": corpus, "scale": scale, "seed": seed}))


def _marker_json(mark: dict) -> str:
    return json.dumps({
        "generator": "cytohub synthesize", **mark,
        "note": "Synthetic raw data in the corpus's published layout; the pixels are drawn, not real.",
    }, indent=2) + "\n"
