"""Masks to geometry: boxes and outline polygons of binary masks and instance label maps.

Conventions (cytohub): pixels, origin top-left, x right, y down, 0-based. A box [x, y, w, h] covers whole pixels:
a mask whose pixels span columns c0..c1 and rows r0..r1 (inclusive) has the box [c0, r0, c1-c0+1, r1-r0+1], so
a single pixel at (x=3, y=4) is [3, 4, 1, 1]. An outline runs along pixel edges (vertices are pixel corners), so
x is in [0, W] and y in [0, H]: a single pixel at (x=c, y=r) has the outline [c, r, c+1, r, c+1, r+1, c, r+1].

`outer_polygon` is the one outline used for every corpus: the outer boundary of the largest 8-connected region
(pixels touching at a corner belong together), clockwise on screen, starting at the top-left corner of the
region's first pixel in raster order, with collinear vertices removed. Holes are not represented (filling the
polygon gives the region with its holes filled) and smaller regions are not in it (the box still covers them).
All work is done on the crop of the mask's box, so the cost follows the object's size, not the canvas's.
"""

from __future__ import annotations

import io

import numpy as np

from cytohub.errors import RawFileError, RawLayoutError
from cytohub.formats import rle

_EIGHT = np.ones((3, 3), bool)


def mask_bbox(mask: np.ndarray) -> list[float] | None:
    """[x, y, w, h] of the set pixels of a 2-D mask (pixel edges), or None when none is set."""
    mask = np.asarray(mask)
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return [float(cols[0]), float(rows[0]), float(cols[-1] - cols[0] + 1), float(rows[-1] - rows[0] + 1)]


def _crop(mask: np.ndarray) -> tuple[np.ndarray, int, int] | None:
    """The mask cut to its box, and the box's (x, y) offset; None when empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1], int(cols[0]), int(rows[0])


def outer_polygon(mask: np.ndarray) -> list[float] | None:
    """The outer boundary of the largest 8-connected region of a 2-D mask as [x1, y1, x2, y2, ...] on pixel
    corners (see the module notes), or None for an empty mask. Ties between equally large regions go to the
    first in raster order."""
    from scipy import ndimage  # imported here: scipy is slow to import and most builds never need it

    cropped = _crop(np.asarray(mask, bool))
    if cropped is None:
        return None
    crop, ox, oy = cropped
    labels, n = ndimage.label(crop, structure=_EIGHT)
    if n > 1:
        sizes = np.bincount(labels.ravel())[1:]
        crop = labels == int(np.argmax(sizes)) + 1
        again = _crop(crop)
        assert again is not None
        crop, dx, dy = again
        ox, oy = ox + dx, oy + dy
    return [float(v) for v in _trace(crop, ox, oy)]


def _trace(region: np.ndarray, ox: int, oy: int) -> list[int]:
    """Walk the outer boundary of one 8-connected region that touches all four sides of `region`, keeping the
    region on the right (clockwise on screen, y down); vertices in image coordinates (offset by ox, oy)."""
    grid = np.pad(region, 1)  # a ring of outside pixels: the walk never leaves the array
    c0 = int(np.flatnonzero(grid[1])[0])
    start = (c0, 1)  # top-left corner of the first region pixel of the top row, in padded coordinates
    x, y = start
    dx, dy = 1, 0
    pts = [start]
    for _ in range(4 * grid.size + 8):
        x, y = x + dx, y + dy
        rx, ry = -dy, dx  # the right-hand side (y points down)
        if grid[y + (dy - ry - 1) // 2, x + (dx - rx - 1) // 2]:  # front-left pixel inside: turn left
            nd = (dy, -dx)
        elif grid[y + (dy + ry - 1) // 2, x + (dx + rx - 1) // 2]:  # front-right pixel inside: straight on
            nd = (dx, dy)
        else:
            nd = (rx, ry)  # turn right
        if (x, y) == start and nd == (1, 0):
            break
        if nd != (dx, dy):
            pts.append((x, y))
        dx, dy = nd
    else:  # pragma: no cover - a closed boundary always returns to its start
        raise RuntimeError("boundary tracing did not close")
    # padded pixel (col, row) is image pixel (col - 1 + ox, row - 1 + oy); the same holds for corners
    return [v for px, py in pts for v in (px - 1 + ox, py - 1 + oy)]


def binary_object(mask: np.ndarray, category: str) -> dict | None:
    """{'category', 'bbox' (of all set pixels), 'polygon' (outer boundary of the largest region)} of one binary
    mask, or None when it is empty."""
    box = mask_bbox(mask)
    if box is None:
        return None
    return {"category": category, "bbox": box, "polygon": outer_polygon(mask)}


def component_objects(mask: np.ndarray, category: str) -> list[dict]:
    """One object (box + outline) per 8-connected region of a binary mask, in raster order of each region's
    first pixel (e.g. a mask of all nuclei of an image -> one object per nucleus)."""
    from scipy import ndimage

    labels, _ = ndimage.label(np.asarray(mask, bool), structure=_EIGHT)
    objects, _ = instance_objects(labels, category)
    return objects


def component_boxes(mask: np.ndarray) -> list[list[float]]:
    """[x, y, w, h] of each 8-connected region of a binary mask, in raster order of each region's first pixel."""
    from scipy import ndimage

    labels, _ = ndimage.label(np.asarray(mask, bool), structure=_EIGHT)
    return [[float(sl[1].start), float(sl[0].start), float(sl[1].stop - sl[1].start), float(sl[0].stop - sl[0].start)]
            for sl in ndimage.find_objects(labels) if sl is not None]


def instance_objects(label_map: np.ndarray, category: str) -> tuple[list[dict], list[int]]:
    """One object (box of the instance's pixels + outline of its largest region) per non-zero value of an
    instance label map, in increasing value order, and the values. Values need not be consecutive (a 32-bit map
    whose values are 7 and 4,000,000,000 costs the same as one with 1 and 2). Raises RawLayoutError for a map
    that is not 2-D integers or holds negative values; callers add the file."""
    from scipy import ndimage

    lab = check_label_map(label_map)
    values = np.unique(lab)
    values = values[values != 0]
    if values.size == 0:
        return [], []
    sparse = int(values[-1]) > 4 * values.size + 4096
    if sparse:  # number the values 1..n so that find_objects' list stays as short as the list of instances
        dense = np.searchsorted(values, lab, side="left").astype(np.int64) + 1
        dense[lab == 0] = 0
    else:
        dense = lab.astype(np.int64, copy=False)
    objects, found = [], []
    slices = ndimage.find_objects(dense)
    for i, value in enumerate(values.tolist()):
        k = i + 1 if sparse else value
        sl = slices[k - 1]
        crop = dense[sl] == k
        box = mask_bbox(crop)
        poly = outer_polygon(crop)
        oy, ox = sl[0].start, sl[1].start
        objects.append({"category": category, "bbox": [box[0] + ox, box[1] + oy, box[2], box[3]],
                        "polygon": [v + (ox if i % 2 == 0 else oy) for i, v in enumerate(poly)]})
        found.append(int(value))
    return objects, found


def check_label_map(label_map: np.ndarray) -> np.ndarray:
    """A 2-D integer label map (0 = background), else RawLayoutError."""
    lab = np.asarray(label_map)
    if lab.ndim != 2 or not (np.issubdtype(lab.dtype, np.integer) or lab.dtype == bool):
        raise RawLayoutError(f"expected a single-channel integer label map, got an array of shape {lab.shape} "
                             f"and type {lab.dtype}")
    if lab.dtype == bool:
        return lab.astype(np.uint8)
    if np.issubdtype(lab.dtype, np.signedinteger) and lab.size and int(lab.min()) < 0:
        raise RawLayoutError(f"label map holds the negative value {int(lab.min())}; expected 0 (background) and "
                             "positive instance values")
    return lab


def decode(data: bytes, where: str) -> np.ndarray:
    """The pixels of an encoded mask or image (any mode; 16- and 32-bit maps keep their values). Raises
    RawFileError naming `where` when it does not decode or declares more than CYTOHUB_MAX_MASK_PIXELS pixels
    (`rle.MAX_MASK_PIXELS`, checked from the header, before decoding)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            if w * h > rle.MAX_MASK_PIXELS:
                raise RawFileError(f"{where}: {w} x {h} pixels is over the limit of {rle.MAX_MASK_PIXELS:,} "
                                   "(set CYTOHUB_MAX_MASK_PIXELS to raise it)")
            im.load()
            return np.asarray(im)
    except RawFileError:
        raise
    except Exception as exc:  # Pillow raises many types for corrupt data
        raise RawFileError(f"{where}: not a readable image ({type(exc).__name__}: {exc})") from None


def png16(label_map: np.ndarray) -> bytes:
    """A 16-bit grayscale PNG of an instance label map (values 0..65535), deterministic bytes. Raises
    ValueError for values that do not fit."""
    from PIL import Image

    arr = np.asarray(label_map)
    if arr.size and (int(arr.max()) > 65535 or int(arr.min()) < 0):
        raise ValueError("label values outside 0..65535 do not fit a 16-bit label map")
    from cytohub import synth

    return synth.encode(Image.fromarray(arr.astype(np.uint16)), "PNG")  # carries the mark when synthetic
