"""YOLO (Darknet / Ultralytics / Roboflow export) box labels: one text file per image, one line per box,

    <class id> <x centre> <y centre> <width> <height>

with the class id a 0-based index into the export's class list (`classes.txt` or `data.yaml`) and the four
numbers normalised by the image width and height (0..1, origin top-left). Boxes become pixel [x, y, w, h].
"""

from __future__ import annotations

from dataclasses import dataclass

from cytohub.formats import geometry
from cytohub.formats.geometry import AnnotationError
from cytohub.raw import RawFile

TOLERANCE = 1e-3  # exporters round to 6 decimals: a box may pass the edge by that much, and is clipped back


@dataclass
class Box:
    """One label line: class id and the normalised centre and size."""

    class_id: int
    cx: float
    cy: float
    w: float
    h: float
    where: str  # "<file>:<line>"


def read(f: RawFile, n_classes: int) -> list[Box]:
    """Every box of a label file, checked: five fields, a whole class id in 0..n_classes-1, finite normalised
    numbers with w, h >= 0 and the box inside 0..1 (within TOLERANCE). Raises AnnotationError naming file:line."""
    out = []
    for n, line in enumerate(f.lines(), start=1):
        if not line.strip():
            continue
        where = f"{f.path}:{n}"
        parts = line.split()
        if len(parts) != 5:
            raise AnnotationError(f"{where}: {len(parts)} fields in {line.strip()!r}; expected 'class cx cy w h' "
                                  "(YOLO, normalised)")
        cls = geometry.integer(parts[0], "class id", where)
        if not 0 <= cls < n_classes:
            raise AnnotationError(f"{where}: class id {cls} outside 0..{n_classes - 1} of the class list")
        cx, cy, w, h = (geometry.number(v, name, where) for v, name in zip(parts[1:], ("x centre", "y centre",
                                                                                      "width", "height"),
                                                                         strict=True))
        x0, y0, x1, y1 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
        if w < 0 or h < 0 or min(x0, y0) < -TOLERANCE or max(x1, y1) > 1 + TOLERANCE:
            raise AnnotationError(f"{where}: box {line.strip()!r} is not inside the normalised image (0..1)")
        out.append(Box(cls, cx, cy, w, h, where))
    return out


def to_pixels(box: Box, size: tuple[int, int]) -> list[float]:
    """A checked box -> pixel [x, y, w, h] in an image of (width, height), clipped to it (by at most
    TOLERANCE of the image), rounded to 1/1000 pixel."""
    W, H = size
    x0, y0 = max(box.cx - box.w / 2, 0.0) * W, max(box.cy - box.h / 2, 0.0) * H
    x1, y1 = min(box.cx + box.w / 2, 1.0) * W, min(box.cy + box.h / 2, 1.0) * H
    return [round(x0, 3), round(y0, 3), round(x1 - x0, 3), round(y1 - y0, 3)]


def objects(f: RawFile, classes: list[str], size: tuple[int, int]) -> list[dict]:
    """Row objects {'category', 'bbox'} of a label file, `classes` giving the category of each class id."""
    return [{"category": classes[b.class_id], "bbox": to_pixels(b, size)} for b in read(f, len(classes))]


def line(class_id: int, box: list[float], size: tuple[int, int]) -> str:
    """A label line for a pixel box [x, y, w, h] in an image of (width, height) (6 decimals, as exporters
    write them)."""
    x, y, w, h = box
    W, H = size
    return f"{class_id} {(x + w / 2) / W:.6f} {(y + h / 2) / H:.6f} {w / W:.6f} {h / H:.6f}"
