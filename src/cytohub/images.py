"""Encoded images as the build passes them through: header checks, the pixel limit, EXIF orientation, modes
and sizes, and full decodes for `validate` and the figures.

The build never re-encodes pixels, so it checks what it can without decoding them:
* the header is read (JPEG segments and PNG chunks directly, other formats and any image carrying EXIF/XMP
  metadata through Pillow; no pixel data) and the declared width x height is checked against
  `MAX_IMAGE_PIXELS` *before* anything decodes the image: a few-kilobyte PNG may declare 100000 x 100000
  pixels (10 GB once decoded);
* the data must be complete: a JPEG must reach the EOI marker that ends its last scan and a PNG its IEND
  chunk (found by walking the segments and chunks, not by looking at the last bytes, so bytes appended after
  the end marker are kept and accepted, as every decoder accepts them); a TIFF's strips or tiles must lie
  inside the file; a BMP must be as long as its header says.

EXIF orientation. `datasets` decodes an `Image` feature with `PIL.ImageOps.exif_transpose` (datasets 5.x,
`features/image.py`, `decode_example`): an image whose EXIF (or XMP) Orientation tag is 2..8 reaches users
rotated or mirrored, while its mask, polygons, boxes and points, written against the stored pixels, do not.
cytohub keeps every image in its *stored* frame: where the tag says 2..8, the build sets it to 1 in the
image's metadata (JPEG APP1 Exif/XMP, PNG eXIf/text chunks, TIFF IFD0, WebP EXIF/XMP chunks) without touching
the compressed pixel data, so `datasets` shows the pixels as stored and the annotations line up; the build
report counts every such image (`images.exif_orientation_normalised`). An image whose tag cannot be
rewritten that way is refused with one line. A builder whose source annotates in the *displayed* frame
(e.g. LabelMe, which applies the tag when it loads an image) converts its geometry with
`displayed_to_stored`.

Modes. Pixels are passed through in the mode they were published in (16-bit, CMYK, palette, RGBA, 1-bit...);
`ImageStats` counts formats, modes and sizes from the headers for the build report and the card.

Limit: `MAX_IMAGE_PIXELS` = `CYTOHUB_MAX_IMAGE_PIXELS` or 2**26 (67,108,864 = 8192 x 8192) pixels per image,
8 times the largest image documented for any supported corpus (3264 x 2448 = 7,990,272), and at
most 256 MiB once decoded at 4 bytes per pixel (RGBA, CMYK, 32-bit). Pillow's own decompression-bomb guard
is set to the same limit for the whole process (it warns above it and refuses above twice it; the `cytohub`
command turns the warning into an error too); it is never switched off.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Any

from PIL import Image, PngImagePlugin

from cytohub import limits
from cytohub.errors import RawFileError

MAX_IMAGE_PIXELS = limits.current().image_pixels  # CYTOHUB_MAX_IMAGE_PIXELS or 2**26 (cytohub.limits)
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS

ORIENTATION_TAG = 0x0112  # EXIF / TIFF tag 274
# datasets applies exif_transpose, which transposes for these values and leaves any other value alone
_TRANSPOSES = {2: "mirrored left-right", 3: "rotated 180 degrees", 4: "mirrored top-bottom",
               5: "transposed", 6: "rotated 90 degrees clockwise", 7: "transversed",
               8: "rotated 90 degrees counter-clockwise"}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_META_KEYS = (b"exif", b"Raw profile type exif", b"XML:com.adobe.xmp")
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_ECS_END = re.compile(rb"\xff[^\x00\xd0-\xd7]")  # the first marker (or fill byte) after entropy-coded data
_XMP_ORIENTATION = re.compile(rb'(tiff:Orientation(?:="|>))([0-9])')  # Pillow's own pattern (Image.getexif)
_XMP_JPEG = b"http://ns.adobe.com/xap/1.0/\x00"
_PNG_MODES = getattr(PngImagePlugin, "_MODES", {})  # (bit depth, colour type) -> (mode, raw mode)


@dataclass(frozen=True)
class Header:
    """What the header of an encoded image says, without decoding its pixels.

    `width` x `height` are the stored pixels (the frame cytohub keeps). `orientation` is the EXIF/XMP
    orientation that `datasets` applies when it decodes these bytes (1 when there is none or when datasets
    ignores the value); `decoded_size` is the size `datasets` shows. `trailing_bytes` counts bytes after a
    JPEG's EOI or a PNG's IEND (kept as published)."""

    format: str
    mode: str
    width: int
    height: int
    orientation: int = 1
    trailing_bytes: int = 0

    @property
    def decoded_size(self) -> tuple[int, int]:
        """(width, height) of the image as `datasets` decodes it (EXIF orientation applied)."""
        return (self.height, self.width) if self.orientation in (5, 6, 7, 8) else (self.width, self.height)


@dataclass(frozen=True)
class Prepared:
    """An image ready to be stored: `data` (the published bytes, or the same bytes with the orientation tag
    set to 1), its `header` and the orientation it had (`original_orientation`, 1 if none)."""

    data: bytes
    header: Header
    original_orientation: int = 1


# --------------------------------------------------------------------------------------------- public API
def header(data: bytes, where: str) -> Header:
    """Read an encoded image's header and check it without decoding pixels: readable, complete (see the
    module docstring), not over `MAX_IMAGE_PIXELS`, orientation readable as `datasets` reads it.

    Raises RawFileError naming `where` (a path relative to the raw root, or a row)."""
    if not data:
        raise RawFileError(f"{where}: empty file; expected an image")
    data = bytes(data)
    trailing = 0
    jpeg = png = None
    declared = None
    if data[:3] == b"\xff\xd8\xff":
        jpeg = _jpeg_walk(data, where)
        declared, trailing = jpeg.size, len(data) - jpeg.end
    elif data[:8] == _PNG_SIGNATURE:
        png = _png_walk(data, where)
        declared, trailing = png.size, len(data) - png.end
    elif data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        _check_tiff_directory(data, where)
        declared = _tiff_size(data)
    elif data[:2] == b"BM" and len(data) >= 26:
        declared = _bmp_size(data)
    if declared is not None:
        _check_pixels(declared[0], declared[1], _FORMAT_HINT.get(data[:2], "image"), where)
    # the common cases, read without Pillow (10x faster): the mode as Pillow names it, no orientation metadata
    if jpeg is not None and jpeg.size and jpeg.mode and not jpeg.app1 and not jpeg.mpf:
        return Header("JPEG", jpeg.mode, jpeg.size[0], jpeg.size[1], 1, trailing)
    if png is not None and png.size and png.mode and not png.meta:
        return Header("PNG", png.mode, png.size[0], png.size[1], 1, trailing)
    im = _open(data, where)
    with im:
        fmt, mode, (w, h) = im.format or "?", im.mode, im.size
        _check_pixels(w, h, fmt, where)
        orientation = 1 if jpeg is not None and not jpeg.app1 else _orientation(im, png, where)
        if fmt == "TIFF":
            if orientation in (5, 6, 7, 8):  # Pillow gives a TIFF's size, and decodes it, already oriented
                w, h = h, w
            _check_tiff_strips(im, data, where)
        elif fmt == "BMP" and len(data) < struct.unpack("<I", data[2:6])[0]:
            raise RawFileError(f"{where}: the BMP data is truncated (shorter than its header says); the file is "
                               "corrupt")
    return Header(fmt, mode, w, h, orientation, trailing)


def check(data: bytes, where: str) -> Header:
    """The build's check of an image it passes through (same as `header`)."""
    return header(data, where)


def sniff(data: bytes, where: str) -> tuple[str, int, int]:
    """(format, width, height) of the stored pixels, or a RawFileError naming `where`."""
    h = header(data, where)
    return h.format, h.width, h.height


def size(data: bytes, where: str) -> tuple[int, int]:
    """(width, height) of the stored pixels in pixels, or a RawFileError naming `where`. This is the size
    `datasets` shows once the build has normalised the EXIF orientation (see the module docstring)."""
    h = header(data, where)
    return h.width, h.height


def prepare(data: bytes, where: str) -> Prepared:
    """Check an image for the build and keep it in its stored frame: when `datasets` would rotate or mirror
    it (EXIF/XMP orientation 2..8) the orientation tag is set to 1 in the metadata, pixel data untouched.

    Raises RawFileError naming `where` when the image is bad or its orientation cannot be normalised."""
    h = header(data, where)
    if h.orientation == 1:
        return Prepared(bytes(data), h, 1)
    try:
        fixed = _set_orientation_to_1(bytes(data), h, where)
    except (ValueError, IndexError, struct.error, zlib.error) as exc:
        raise RawFileError(f"{where}: EXIF orientation {h.orientation} could not be normalised: its metadata is "
                           f"malformed ({type(exc).__name__}: {exc})") from None
    h2 = header(fixed, where)
    if h2.orientation != 1 or (h2.width, h2.height) != (h.width, h.height):
        raise RawFileError(f"{where}: EXIF orientation {h.orientation} could not be normalised in this {h.format} "
                           "file; rotate the image losslessly (e.g. exiftran, jpegtran) or remove the tag")
    return Prepared(fixed, h2, h.orientation)


def open_header(data: bytes, where: str) -> Image.Image:
    """A Pillow image with its header read and nothing decoded, after `header` checked it (pixel limit,
    completeness). Raises RawFileError naming `where`."""
    header(data, where)
    return _open(data, where)


def _open(data: bytes, where: str) -> Image.Image:
    try:
        im = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise RawFileError(f"{where}: {_bomb_text(str(exc))}") from None
    except Exception as exc:  # Pillow raises many types on hostile headers
        raise RawFileError(f"{where}: not a readable image ({type(exc).__name__}: {exc}); expected JPEG, PNG, "
                           "BMP or TIFF") from None
    try:
        _check_pixels(im.width, im.height, im.format or "image", where)
    except RawFileError:
        im.close()
        raise
    return im


def decode(data: bytes, where: str, reduce_jpeg: bool = True) -> Image.Image:
    """Fully decode an image after checking its header (limit, completeness). JPEGs are decoded at 1/8 scale
    by default: every entropy-coded block is still read, so corruption is still found, at a fraction of the
    cost. Raises RawFileError naming `where`."""
    im = open_header(data, where)
    try:
        if reduce_jpeg and im.format == "JPEG":
            im.draft(im.mode, (max(1, im.width // 8), max(1, im.height // 8)))
        im.load()
        return im
    except Exception as exc:  # PIL raises many types for corrupt data
        im.close()
        raise RawFileError(f"{where}: image does not decode ({type(exc).__name__}: {exc})") from None


def displayed_to_stored(points: list[float], orientation: int, stored_size: tuple[int, int]) -> list[float]:
    """Convert flat [x1, y1, x2, y2, ...] pixel coordinates (origin top-left, x right, y down) from the
    *displayed* frame of an image (after its EXIF orientation is applied, as LabelMe and browsers show it) to
    its *stored* frame (the frame cytohub keeps). `stored_size` is (width, height) of the stored pixels.
    Coordinates are continuous (a pixel's corners, 0..width), so a box stays a box.

    Raises ValueError for an odd number of values or an orientation outside 1..8."""
    if len(points) % 2:
        raise ValueError(f"{len(points)} values; expected x, y pairs")
    if orientation not in range(1, 9):
        raise ValueError(f"EXIF orientation {orientation}; expected 1..8")
    w, h = stored_size
    out: list[float] = []
    for x, y in zip(points[::2], points[1::2], strict=True):
        # the inverse of the transpose PIL.ImageOps.exif_transpose applies for each orientation
        sx, sy = {1: (x, y), 2: (w - x, y), 3: (w - x, h - y), 4: (x, h - y), 5: (y, x),
                  6: (y, h - x), 7: (w - y, h - x), 8: (w - y, x)}[orientation]
        out += [sx, sy]
    return out


class ImageStats:
    """Formats, modes and sizes of the images a build stores, per role (`image`, `focal_stack`, `mask`),
    counted from their headers while the build streams (a few counters, whatever the corpus size), plus the
    images whose EXIF orientation was normalised and those with bytes after their end marker."""

    EXAMPLES = 20  # paths listed per kind of note; the counts are complete

    def __init__(self) -> None:
        self._roles: dict[str, dict[str, Any]] = {}
        self._orientation: Counter[int] = Counter()
        self._orientation_examples: list[str] = []
        self._trailing = 0
        self._trailing_examples: list[str] = []

    def add(self, role: str, prepared: Prepared, where: str) -> None:
        h = prepared.header
        r = self._roles.get(role)
        if r is None:
            r = self._roles[role] = {"count": 0, "formats": Counter(), "modes": Counter(),
                                     "width": [h.width, h.width], "height": [h.height, h.height]}
        r["count"] += 1
        r["formats"][h.format] += 1
        r["modes"][h.mode] += 1
        r["width"] = [min(r["width"][0], h.width), max(r["width"][1], h.width)]
        r["height"] = [min(r["height"][0], h.height), max(r["height"][1], h.height)]
        if prepared.original_orientation != 1:
            self._orientation[prepared.original_orientation] += 1
            if len(self._orientation_examples) < self.EXAMPLES:
                self._orientation_examples.append(where)
        if h.trailing_bytes:
            self._trailing += 1
            if len(self._trailing_examples) < self.EXAMPLES:
                self._trailing_examples.append(where)

    def merge(self, other: ImageStats | None) -> None:
        """Add the counts of `other` (e.g. one chunk's, from a worker process), after this one's."""
        if other is None:
            return
        for role, o in other._roles.items():
            r = self._roles.get(role)
            if r is None:
                self._roles[role] = {**o, "formats": Counter(o["formats"]), "modes": Counter(o["modes"])}
                continue
            r["count"] += o["count"]
            r["formats"].update(o["formats"])
            r["modes"].update(o["modes"])
            r["width"] = [min(r["width"][0], o["width"][0]), max(r["width"][1], o["width"][1])]
            r["height"] = [min(r["height"][0], o["height"][0]), max(r["height"][1], o["height"][1])]
        self._orientation.update(other._orientation)
        self._orientation_examples += other._orientation_examples[:self.EXAMPLES - len(self._orientation_examples)]
        self._trailing += other._trailing
        self._trailing_examples += other._trailing_examples[:self.EXAMPLES - len(self._trailing_examples)]

    def summary(self) -> dict[str, Any]:
        """For the build report: {role: {count, formats, modes, width [min, max], height [min, max]}, ...,
        "exif_orientation_normalised": {count, by_value, examples}, "trailing_bytes_kept": {count, examples}}."""
        out: dict[str, Any] = {}
        for role in ("image", "focal_stack", "mask", *sorted(set(self._roles) - {"image", "focal_stack", "mask"})):
            r = self._roles.get(role)
            if r:
                out[role] = {"count": r["count"], "formats": dict(sorted(r["formats"].items())),
                             "modes": dict(sorted(r["modes"].items())), "width": r["width"], "height": r["height"]}
        out["exif_orientation_normalised"] = {
            "count": sum(self._orientation.values()),
            "by_value": {str(k): v for k, v in sorted(self._orientation.items())},
            "examples": self._orientation_examples}
        out["trailing_bytes_kept"] = {"count": self._trailing, "examples": self._trailing_examples}
        return out


# --------------------------------------------------------------------------------------------- limits
_FORMAT_HINT = {b"\xff\xd8": "JPEG", b"\x89P": "PNG", b"II": "TIFF", b"MM": "TIFF", b"BM": "BMP"}


def _check_pixels(w: int, h: int, fmt: str, where: str) -> None:
    if w <= 0 or h <= 0:
        raise RawFileError(f"{where}: the {fmt} header declares {w}x{h} pixels; expected a non-empty image")
    if w * h > MAX_IMAGE_PIXELS:
        raise RawFileError(
            f"{where}: the {fmt} header declares {w}x{h} pixels ({w * h:,}), over the limit of "
            f"{MAX_IMAGE_PIXELS:,} pixels per image; refused before decoding (a decompression bomb, or raise "
            "CYTOHUB_MAX_IMAGE_PIXELS if the image is genuine)")


def _bomb_text(msg: str) -> str:
    m = re.search(r"\((\d+) pixels\)", msg)
    n = f"{int(m[1]):,} pixels" if m else "more pixels than allowed"
    return (f"the image header declares {n}, over the limit of {MAX_IMAGE_PIXELS:,} pixels per image; refused "
            "before decoding (a decompression bomb, or raise CYTOHUB_MAX_IMAGE_PIXELS if the image is genuine)")


# --------------------------------------------------------------------------------------------- JPEG
@dataclass
class _Jpeg:
    size: tuple[int, int] | None
    end: int  # offset just past the EOI marker
    app1: list[tuple[int, int]]  # (start, end) of each APP1 payload (after the length field)
    mode: str | None = None  # as Pillow names it (JpegImagePlugin.SOF): 8-bit L, RGB or CMYK, else None
    mpf: bool = False  # an APP2 "MPF" segment: Pillow may open the file as an MPO


def _jpeg_walk(data: bytes, where: str) -> _Jpeg:
    """Walk a JPEG's marker segments to the EOI that follows its last scan (ITU-T T.81 B.1)."""
    n, pos, size, app1 = len(data), 2, None, []
    scanned, mode, mpf = False, None, False

    def truncated(what: str) -> RawFileError:
        return RawFileError(f"{where}: the JPEG data is truncated ({what}; no end marker); the file is corrupt")

    while True:
        if pos + 2 > n:
            raise truncated(f"ends at byte {n}")
        if data[pos] != 0xFF:
            raise RawFileError(f"{where}: the JPEG data is corrupt (no marker at byte {pos})")
        while pos + 1 < n and data[pos + 1] == 0xFF:  # fill bytes
            pos += 1
        if pos + 2 > n:
            raise truncated(f"ends at byte {n}")
        code = data[pos + 1]
        if code == 0xD9:
            return _Jpeg(size, pos + 2, app1, mode, mpf)
        if code == 0x01 or 0xD0 <= code <= 0xD8:  # markers without a length
            pos += 2
            continue
        if pos + 4 > n:
            raise truncated(f"ends inside the marker at byte {pos}")
        seg_end = pos + 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        if seg_end < pos + 4:
            raise RawFileError(f"{where}: the JPEG data is corrupt (a segment length below 2 at byte {pos})")
        if seg_end > n:
            raise truncated(f"the segment at byte {pos} runs past the end")
        if code in _JPEG_SOF and size is None and seg_end - pos >= 10:
            size = (int.from_bytes(data[pos + 7:pos + 9], "big"), int.from_bytes(data[pos + 5:pos + 7], "big"))
            if data[pos + 4] == 8:
                mode = {1: "L", 3: "RGB", 4: "CMYK"}.get(data[pos + 9])
        elif code == 0xE1:
            app1.append((pos + 4, seg_end))
        elif code == 0xE2 and data[pos + 4:pos + 8] == b"MPF\x00":
            mpf = True
        pos = seg_end
        if code == 0xDA:  # start of scan: entropy-coded data up to the next marker
            if not scanned and data.endswith(b"\xff\xd9"):
                return _Jpeg(size, n, app1, mode, mpf)  # the common case, without scanning the pixel data
            scanned = True
            m = _JPEG_ECS_END.search(data, pos)
            if m is None:
                raise truncated("the scan data has no end")
            pos = m.start()


# --------------------------------------------------------------------------------------------- PNG
@dataclass
class _Png:
    size: tuple[int, int] | None
    end: int  # offset just past the IEND chunk
    meta: list[tuple[int, bytes, bool]]  # (offset, type, after the first IDAT) of chunks that can orient
    mode: str | None = None  # as Pillow names it (PngImagePlugin._MODES), None if unknown


def _png_walk(data: bytes, where: str) -> _Png:
    """Walk a PNG's chunks to IEND (PNG spec 5.3), noting the chunks Pillow reads an orientation from."""
    n, pos, size, meta, idat, mode = len(data), 8, None, [], False, None
    while pos + 12 <= n:
        length = int.from_bytes(data[pos:pos + 4], "big")
        ctype = data[pos + 4:pos + 8]
        end = pos + 12 + length
        if length > 0x7FFFFFFF or end > n:
            break
        if ctype == b"IHDR" and length >= 10:
            size = (int.from_bytes(data[pos + 8:pos + 12], "big"), int.from_bytes(data[pos + 12:pos + 16], "big"))
            mode = _PNG_MODES.get((data[pos + 16], data[pos + 17]), (None,))[0]
        elif ctype == b"IDAT":
            idat = True
        elif ctype == b"IEND":
            return _Png(size, end, meta, mode)
        elif ctype == b"eXIf" or (ctype in (b"tEXt", b"zTXt", b"iTXt")
                                   and data[pos + 8:pos + 8 + 80].split(b"\0", 1)[0] in _PNG_META_KEYS):
            meta.append((pos, ctype, idat))
        pos = end
    raise RawFileError(f"{where}: the PNG data is truncated (no IEND chunk before the end at byte {n}); the file "
                       "is corrupt")


# --------------------------------------------------------------------------------------------- TIFF, BMP
def _tiff_ifd0(buf: bytes | bytearray, base: int, end: int) -> tuple[str, int, list[tuple[int, int, int, int]]]:
    """The first IFD of the TIFF structure at buf[base:end]: byte order ('<' or '>'), the size of a value
    field (4, or 8 in BigTIFF) and the entries (tag, type, count, offset of the entry's value field). No
    entries when the structure is not readable."""
    if end - base < 8 or buf[base:base + 2] not in (b"II", b"MM"):
        return "<", 4, []
    bo = "<" if buf[base:base + 2] == b"II" else ">"
    magic = struct.unpack(bo + "H", buf[base + 2:base + 4])[0]
    try:
        if magic == 42:
            ifd = base + struct.unpack(bo + "I", buf[base + 4:base + 8])[0]
            count = struct.unpack(bo + "H", buf[ifd:ifd + 2])[0]
            first, width, head = ifd + 2, 12, "HHI"
        elif magic == 43:
            ifd = base + struct.unpack(bo + "Q", buf[base + 8:base + 16])[0]
            count = struct.unpack(bo + "Q", buf[ifd:ifd + 8])[0]
            first, width, head = ifd + 8, 20, "HHQ"
        else:
            return bo, 4, []
    except struct.error:
        return bo, 4, []
    entries = []
    for i in range(min(count, 4096)):
        at = first + i * width
        if at + width > end:
            break
        tag, typ, n = struct.unpack(bo + head, buf[at:at + width - (4 if magic == 42 else 8)])
        entries.append((tag, typ, n, at + width - (4 if magic == 42 else 8)))
    return bo, (4 if magic == 42 else 8), entries


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    bo, _, entries = _tiff_ifd0(data, 0, len(data))
    dims = {}
    for tag, typ, n, at in entries:
        if tag in (256, 257) and n == 1 and typ in (3, 4):
            dims[tag] = struct.unpack(bo + ("H" if typ == 3 else "I"), data[at:at + (2 if typ == 3 else 4)])[0]
    return (dims[256], dims[257]) if len(dims) == 2 else None


def _bmp_size(data: bytes) -> tuple[int, int]:
    if struct.unpack("<I", data[14:18])[0] == 12:  # BITMAPCOREHEADER
        return struct.unpack("<HH", data[18:22])
    w, h = struct.unpack("<ii", data[18:26])
    return abs(w), abs(h)


def _check_tiff_directory(data: bytes, where: str) -> None:
    """The first image file directory must lie inside the file (writers often put it after the pixel data)."""
    bo = "<" if data[:2] == b"II" else ">"
    big = data[2:4] in (b"+\x00", b"\x00+")
    try:
        offset = struct.unpack(bo + ("Q" if big else "I"), data[8:16] if big else data[4:8])[0]
    except struct.error:
        offset = len(data)
    if offset + (8 if big else 2) > len(data):
        raise RawFileError(f"{where}: the TIFF data is truncated (its image directory at byte {offset:,} is past "
                           f"the end of the {len(data):,}-byte file); the file is corrupt")


def _check_tiff_strips(im: Image.Image, data: bytes, where: str) -> None:
    """Every strip or tile of the first image (the one `datasets` decodes) must lie inside the file."""
    tags = getattr(im, "tag_v2", {})
    offsets, counts = tags.get(273) or tags.get(324), tags.get(279) or tags.get(325)
    if isinstance(offsets, int):
        offsets = (offsets,)
    if isinstance(counts, int):
        counts = (counts,)
    if offsets and counts and len(offsets) == len(counts):
        last = max(o + c for o, c in zip(offsets, counts, strict=True))
        if last > len(data):
            raise RawFileError(f"{where}: the TIFF data is truncated (its image data runs to byte {last:,} but the "
                               f"file has {len(data):,} bytes); the file is corrupt")
        return
    try:  # no usable strip table: decode it (bounded by the pixel limit)
        im.load()
    except Exception as exc:
        raise RawFileError(f"{where}: the TIFF image does not decode ({type(exc).__name__}: {exc})") from None


# --------------------------------------------------------------------------------------------- orientation
def _orientation(im: Image.Image, png: _Png | None, where: str) -> int:
    """The orientation `datasets` applies: image.load(); image.getexif().get(Orientation); exif_transpose.
    (A JPEG without APP1 segments has none: Pillow reads a JPEG's EXIF and XMP from APP1 only.)"""
    try:
        if png is not None:
            if not png.meta:
                return 1
            if any(after for _, _, after in png.meta):
                im.load()  # metadata after the pixel data is only read by a decode, as datasets does
                exif = im.getexif()
            else:
                exif = Image.Image.getexif(im)  # all metadata was read with the header
        else:
            exif = im.getexif()
        value = exif.get(ORIENTATION_TAG)
    except Exception as exc:
        raise RawFileError(f"{where}: the image's EXIF metadata is unreadable ({type(exc).__name__}: {exc}); "
                           "datasets fails on it too") from None
    if value is None:
        return 1
    try:
        transposed = value in _TRANSPOSES  # exif_transpose looks the value up in the same way
    except TypeError:
        raise RawFileError(f"{where}: the EXIF orientation is {value!r}, not a number; datasets fails on it") from None
    return int(value) if transposed else 1


def _set_orientation_to_1(data: bytes, h: Header, where: str) -> bytes:
    """The same bytes with every EXIF/XMP orientation value set to 1, pixel data untouched."""
    if h.format in ("JPEG", "MPO"):
        buf = bytearray(data)
        for start, end in _jpeg_walk(data, where).app1:
            if buf[start:start + 6] == b"Exif\x00\x00":
                _patch_tiff_orientation(buf, start + 6, end)
            elif buf[start:start + len(_XMP_JPEG)] == _XMP_JPEG:
                _patch_xmp(buf, start, end)
        return bytes(buf)
    if h.format == "PNG":
        return _png_set_orientation(data, where)
    if h.format == "TIFF":
        buf = bytearray(data)
        _patch_tiff_orientation(buf, 0, len(buf))
        bo, inline, entries = _tiff_ifd0(buf, 0, len(buf))
        for tag, _typ, n, at in entries:
            if tag == 700:  # XMP packet (BYTE or UNDEFINED values)
                off = struct.unpack(bo + ("I" if inline == 4 else "Q"), buf[at:at + inline])[0] if n > inline else at
                _patch_xmp(buf, off, min(off + n, len(buf)))
        return bytes(buf)
    if h.format == "WEBP":
        buf = bytearray(data)
        pos = 12
        while pos + 8 <= len(buf):
            fourcc, n = bytes(buf[pos:pos + 4]), struct.unpack("<I", buf[pos + 4:pos + 8])[0]
            start, end = pos + 8, min(pos + 8 + n, len(buf))
            if fourcc == b"EXIF":
                _patch_tiff_orientation(buf, start + (6 if buf[start:start + 6] == b"Exif\x00\x00" else 0), end)
            elif fourcc == b"XMP ":
                _patch_xmp(buf, start, end)
            pos = start + n + (n & 1)
        return bytes(buf)
    raise RawFileError(f"{where}: EXIF orientation {h.orientation} in a {h.format} image; cytohub can normalise it "
                       "only in JPEG, PNG, TIFF and WebP files. Rotate the image losslessly or remove the tag")


def _patch_tiff_orientation(buf: bytearray, base: int, end: int) -> None:
    """Set the Orientation entries of the first IFD of the TIFF structure at buf[base:end] to 1, in place."""
    bo, _, entries = _tiff_ifd0(buf, base, end)
    sizes = {3: "H", 4: "I", 8: "h", 9: "i"}
    for tag, typ, n, at in entries:
        if tag == ORIENTATION_TAG and n == 1 and typ in sizes and at + struct.calcsize(sizes[typ]) <= end:
            struct.pack_into(bo + sizes[typ], buf, at, 1)


def _patch_xmp(buf: bytearray, start: int, end: int) -> None:
    for m in _XMP_ORIENTATION.finditer(bytes(buf[start:end])):
        buf[start + m.start(2)] = ord("1")


def _png_set_orientation(data: bytes, where: str) -> bytes:
    """Rewrite the PNG chunks that carry an orientation (eXIf, and text chunks with EXIF or XMP); every other
    chunk, the pixel data (IDAT) included, is copied unchanged."""
    walk = _png_walk(data, where)
    parts, pos = [], 0
    for off, ctype, _after in walk.meta:
        length = int.from_bytes(data[off:off + 4], "big")
        body = data[off + 8:off + 8 + length]
        new = _png_chunk_with_orientation_1(ctype, body)
        if new != body:
            parts += [data[pos:off], len(new).to_bytes(4, "big"), ctype, new,
                      zlib.crc32(ctype + new).to_bytes(4, "big")]
            pos = off + 12 + length
    parts.append(data[pos:])
    return b"".join(parts)


def _png_chunk_with_orientation_1(ctype: bytes, body: bytes) -> bytes:
    if ctype == b"eXIf":
        buf = bytearray(body)
        _patch_tiff_orientation(buf, 0, len(buf))
        return bytes(buf)
    key, rest = body.split(b"\0", 1)
    if ctype == b"tEXt":
        prefix, compressed, value = key + b"\0", False, rest
    elif ctype == b"zTXt":
        prefix, compressed, value = key + b"\0" + rest[:1], True, rest[1:]
    else:  # iTXt: keyword, flag, method, language, translated keyword, text
        flag, method = rest[0], rest[1]
        lang, tkey, value = rest[2:].split(b"\0", 2)
        prefix, compressed = key + b"\0" + rest[:2] + lang + b"\0" + tkey + b"\0", flag == 1 and method == 0
    text = zlib.decompress(value) if compressed else value
    buf = bytearray(text)
    if key == b"XML:com.adobe.xmp":
        _patch_xmp(buf, 0, len(buf))
    elif key == b"exif":
        _patch_tiff_orientation(buf, 6 if buf.startswith(b"Exif\x00\x00") else 0, len(buf))
    else:  # "Raw profile type exif": "\nexif\n<length>\n<hex lines>"; Pillow joins the lines after the third
        lines = bytes(buf).split(b"\n")
        head = b"\n".join(lines[:3]) + b"\n"
        hexchars = b"".join(lines[3:])
        try:
            blob = bytearray(bytes.fromhex(hexchars.decode("ascii")))
        except ValueError:
            return body
        before = bytes(blob)
        _patch_tiff_orientation(blob, 6 if blob.startswith(b"Exif\x00\x00") else 0, len(blob))
        new_hex = bytearray(hexchars)
        for i, (a, b) in enumerate(zip(before, blob, strict=True)):
            if a != b:
                new_hex[2 * i:2 * i + 2] = f"{b:02x}".encode()
        out, k = [], 0
        for line in lines[3:]:  # the same line breaks as before
            out.append(bytes(new_hex[k:k + len(line)]))
            k += len(line)
        buf = bytearray(head + b"\n".join(out))
    if bytes(buf) == text:
        return body
    return prefix + (zlib.compress(bytes(buf)) if compressed else bytes(buf))
