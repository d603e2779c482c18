"""LabelMe annotation files (github.com/wkentaro/labelme): one JSON file per image.

    {"version", "flags", "shapes": [{"label", "points": [[x, y], ...], "group_id", "shape_type", "flags"}],
     "imagePath", "imageData" (base64 of the image file, or null), "imageHeight", "imageWidth"}

Points are pixels with the origin at the top-left corner of the image (LabelMe's canvas coordinates), so they
are used as they are. `shape_type` "polygon" (the default when absent) and "linestrip" give their points as a
polygon, "rectangle" gives two opposite corners; other shape types ("circle", "line", "point") are reported
with their shape.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from cytohub.errors import RawFileError, RawLayoutError
from cytohub.formats import geometry, jsonfile
from cytohub.formats.geometry import AnnotationError
from cytohub.raw import RawFile

POLYGON_TYPES = ("polygon", "linestrip")


@dataclass
class Shape:
    """One checked shape: `points` flat [x1, y1, ...] in pixels, as in the file."""

    label: str
    shape_type: str
    points: list[float]
    group_id: object
    where: str  # "<file>: shape k (label 'cell')"


@dataclass
class Document:
    path: str
    shapes: list[Shape]
    size: tuple[int, int] | None  # (imageWidth, imageHeight) when declared
    image_path: str | None
    raw: dict  # the parsed file (for imageData and anything else a corpus reads)


def load(f: RawFile) -> Document:
    """Read and check a LabelMe file (bounded JSON; every shape's points finite numbers; the declared image
    size positive whole numbers). Raises RawFileError / RawLayoutError / AnnotationError naming the file."""
    return parse(jsonfile.load(f, "LabelMe JSON"), f.path)


def parse(doc: object, path: str) -> Document:
    """`load` for an already parsed document; `path` names the file in errors."""
    if not isinstance(doc, dict) or not isinstance(doc.get("shapes"), list):
        raise RawLayoutError(f"{path}: no 'shapes' list; expected a LabelMe JSON file")
    size = None
    if doc.get("imageWidth") is not None or doc.get("imageHeight") is not None:
        size = geometry.image_size(doc.get("imageWidth"), doc.get("imageHeight"), f"{path}: imageWidth x imageHeight")
    shapes = []
    for i, s in enumerate(doc["shapes"]):
        if not isinstance(s, dict):
            raise RawLayoutError(f"{path}: shape {i} is not an object; expected a LabelMe shape")
        label = str(s.get("label", ""))
        where = f"{path}: shape {i} (label {label!r})"
        kind = s.get("shape_type") or "polygon"
        if "points" not in s:
            raise RawLayoutError(f"{where}: no 'points'; expected [[x, y], ...]")
        shapes.append(Shape(label, str(kind), geometry.points(s["points"], "points", where), s.get("group_id"),
                            where))
    image_path = doc.get("imagePath")
    return Document(path, shapes, size, image_path if isinstance(image_path, str) else None, doc)


def polygon(shape: Shape) -> list[float] | None:
    """The shape as a polygon [x1, y1, ...]: polygon/linestrip points (None when fewer than 3), or the four
    corners of a rectangle (clockwise from its top-left). Raises AnnotationError for other shape types."""
    if shape.shape_type in POLYGON_TYPES:
        pts = geometry.drop_closing_point(shape.points)
        return pts if len(pts) >= 6 else None
    if shape.shape_type == "rectangle":
        if len(shape.points) != 4:
            raise AnnotationError(f"{shape.where}: a rectangle has {len(shape.points) // 2} points; expected 2 "
                                  "corners")
        (x0, x1), (y0, y1) = sorted(shape.points[0::2]), sorted(shape.points[1::2])
        return [x0, y0, x1, y0, x1, y1, x0, y1]
    raise AnnotationError(f"{shape.where}: shape_type {shape.shape_type!r} is not an outline; expected polygon, "
                          "linestrip or rectangle")


def image_data(doc: Document) -> bytes | None:
    """The embedded image file (imageData, base64), or None when the file has none; RawFileError when it is
    not valid base64."""
    data = doc.raw.get("imageData")
    if not data:
        return None
    if not isinstance(data, str):
        raise RawFileError(f"{doc.path}: imageData is {type(data).__name__}; expected base64 text")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise RawFileError(f"{doc.path}: imageData is not valid base64") from None
