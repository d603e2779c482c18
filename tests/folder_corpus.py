"""A minimal corpus for engine tests: every image file of a raw folder is one row, and a few other files
exercise the ways a builder's parsing can fail. Also small encoders that make test images in memory.

Layout read by `FolderCorpus.examples`:
* `NAME.png|jpg|tif|bmp|webp|gif`: one row, id NAME, label `cell-image`;
  `NAME.mask.png`: its mask; `NAME.box`: one `cell` object, "x y w h" in pixels.
* `NAME.z`: zlib data, decompressed (a corrupt one raises zlib.error);
* `NAME.json`: parsed with json (deep nesting raises RecursionError);
* `NAME.huge`: its first 8 bytes are a little-endian byte count that the builder allocates (MemoryError);
* `NAME.bug`: the builder looks up a missing key (a bug: KeyError);
* `NAME.crash`: a row whose `extra` ends the worker process that unpickles it (as the system's
  out-of-memory killer or a crash in a decoding library would).
"""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from typing import Any

from PIL import Image

from cytohub.builder import Builder, Label

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif")


class FolderCorpus(Builder):
    name = "test-folder"
    pretty_name = "Test folder corpus"
    homepage = "https://example.org/test-folder"
    license = "cc0-1.0"
    citation = "@misc{testfolder, title={Test folder corpus}}"
    manual_download = "Made by the tests."
    labels = (Label("cell-image", ("cell-image",)),)
    object_labels = (Label("cell", ("cell",)),)
    task_categories = ("image-classification", "object-detection")

    def examples(self, raw) -> Any:
        for f in raw.files():
            if f.suffix in IMAGE_SUFFIXES and not f.name.endswith(".mask.png"):
                stem = f.path[: -len(f.suffix)]
                row: dict[str, Any] = {"id": f.stem, "image": f, "label": "cell-image"}
                mask = raw.get(f"{stem}.mask.png")
                if mask is not None:
                    row["mask"] = mask
                box = raw.get(f"{stem}.box")
                if box is not None:
                    row["objects"] = [{"category": "cell", "bbox": [float(v) for v in box.read_text().split()]}]
                yield row
            elif f.suffix == ".z":
                zlib.decompress(f.read_bytes())
            elif f.suffix == ".json":
                json.loads(f.read_text())
            elif f.suffix == ".huge":
                bytearray(struct.unpack("<Q", f.read_bytes()[:8])[0])
            elif f.suffix == ".bug":
                f.read_bytes()
                {}["a key the builder forgot"]  # noqa: B018 - a deliberate bug
            elif f.suffix == ".crash":
                png = encode(Image.new("L", (4, 4)), "PNG")
                yield {"id": f.stem, "image": png, "label": "cell-image", "extra": ExitOnUnpickle()}


class ExitOnUnpickle:
    """Ends the process that unpickles it, at once (exit status 9)."""

    def __reduce__(self):
        return os._exit, (9,)


def encode(im: Image.Image, fmt: str, **kw: Any) -> bytes:
    """`im` encoded as `fmt` (Pillow's format name) in memory."""
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def exif_with_orientation(value: int) -> bytes:
    """An EXIF block (with its 'Exif\\0\\0' prefix) holding Orientation = `value` and a camera make."""
    exif = Image.Exif()
    exif[0x0112] = value
    exif[0x010F] = "test camera"
    return exif.tobytes()


def png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def png_declaring(width: int, height: int) -> bytes:
    """A tiny, complete greyscale PNG whose header declares `width` x `height` pixels (a decompression bomb
    when large: a decoder allocates width x height bytes before reading the first row)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (width + 1) * 4, 9)  # the first rows only: the file stays small
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
