"""Coordinates read from annotation files: checked numbers, polygons, boxes and points.

Every value that reaches a row passes through here first, so a bad value is reported once, with the annotation
file and the record, instead of being changed silently further on (a NaN box clipped to the image would become
a full-image box). Conventions (cytohub): pixels of the image, origin top-left, x right, y down, 0-based;
bbox = [x, y, w, h]; polygon = [x1, y1, x2, y2, ...] (not closed: the last vertex is not a repeat of the first).

Errors are `AnnotationError` (a `RawLayoutError`), whose message starts with `where`: callers pass the annotation
file and the record, e.g. "annotations.json: annotation id 17 (image 3)".
"""

from __future__ import annotations

import math
import numbers as _numbers
import re
from collections.abc import Sequence

from cytohub.errors import RawLayoutError

# A number written as text: ASCII decimal digits, optional sign, fraction and exponent, as CSV, JSON and every
# annotation tool write them. Python's float() and int() also take '1_000', non-ASCII digits ('١٠٥') and
# surrounding whitespace; the first two are not numbers in any annotation format, so they are refused rather
# than silently read as another value. The words nan / inf / infinity reach the non-finite message.
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_INTEGER = re.compile(r"[+-]?\d+", re.ASCII)
_NONFINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.ASCII | re.IGNORECASE)
_MAX_NUMBER_TEXT = 400  # characters of one number written as text (a double needs at most ~25)


def _number_text(value: str, what: str, where: str) -> str:
    """`value` stripped, once it is known to be a number written as text (or a non-finite word)."""
    text = value.strip()
    if len(text) > _MAX_NUMBER_TEXT:
        raise AnnotationError(f"{where}: {what} is a {len(text):,}-character value; expected a number of at most "
                              f"{_MAX_NUMBER_TEXT} characters")
    if _DECIMAL.fullmatch(text) or _NONFINITE.fullmatch(text):
        return text
    raise AnnotationError(f"{where}: {what} is {_show(value)}; expected a number")


class AnnotationError(RawLayoutError):
    """An annotation record holds a value that cannot be read as what the format says it is."""


def number(value: object, what: str, where: str) -> float:
    """A finite number: int, float (numpy's too) or a numeric string ('12.5', ' 3e2 ': ASCII digits only, at most
    400 characters). Refuses NaN, infinities, None, booleans, '1_0', non-ASCII digits and anything else, naming
    `what` (e.g. 'bbox') and `where`."""
    if isinstance(value, bool) or value is None or type(value).__name__ == "bool_":
        raise AnnotationError(f"{where}: {what} is {_show(value)}; expected a number")
    if isinstance(value, _numbers.Integral):  # int and numpy integers
        return float(int(value))
    if isinstance(value, _numbers.Real):  # float and numpy floats
        f = float(value)
    elif isinstance(value, str):
        f = float(_number_text(value, what, where))  # float() of a long digit string is infinity, refused below
    else:
        raise AnnotationError(f"{where}: {what} is {_show(value)}; expected a number")
    if not math.isfinite(f):
        raise AnnotationError(f"{where}: {what} has {_nonfinite(f)}; expected a finite number")
    return f


def integer(value: object, what: str, where: str) -> int:
    """A whole number (2, 2.0 or '2'); 2.5, NaN, booleans or text are refused, never rounded or truncated."""
    if isinstance(value, _numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()) and len(value.strip()) <= _MAX_NUMBER_TEXT:
        return int(value.strip())
    f = number(value, what, where)
    if not f.is_integer():
        raise AnnotationError(f"{where}: {what} is {_show(value)}; expected a whole number")
    return int(f)


def image_size(width: object, height: object, where: str) -> tuple[int, int]:
    """(width, height) declared by an annotation file: positive whole numbers (512.5 or '512px' are refused)."""
    w, h = integer(width, "width", where), integer(height, "height", where)
    if w <= 0 or h <= 0:
        raise AnnotationError(f"{where}: image size {w} x {h}; expected positive width and height")
    return w, h


def numbers(values: object, what: str, where: str, count: int | None = None) -> list[float]:
    """A list of finite numbers (of exactly `count` values when given). The message names the first bad value:
    "bbox has NaN", "polygon value 5 is 'abc'"."""
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise AnnotationError(f"{where}: {what} is {_show(values)}; expected a list of numbers")
    if count is not None and len(values) != count:
        raise AnnotationError(f"{where}: {what} has {len(values)} values; expected {count}")
    if all(type(v) is float for v in values) and all(map(math.isfinite, values)):
        return list(values)  # the common case (parsed JSON floats, all finite): 20 times faster than per value
    out = []
    for i, v in enumerate(values):
        if isinstance(v, float) and not math.isfinite(v):
            raise AnnotationError(f"{where}: {what} has {_nonfinite(v)}; expected finite numbers")
        out.append(number(v, f"{what} value {i + 1}", where))
    return out


def bbox(values: object, what: str, where: str) -> list[float]:
    """[x, y, w, h]: four finite numbers with w, h >= 0."""
    b = numbers(values, what, where, 4)
    if b[2] < 0 or b[3] < 0:
        raise AnnotationError(f"{where}: {what} {_fmt(b)} has a negative width or height; expected [x, y, w, h]")
    return b


def corners_to_bbox(x0: float, y0: float, x1: float, y1: float, what: str, where: str) -> list[float]:
    """[x_min, y_min, x_max, y_max] (exclusive max, i.e. pixel edges) -> [x, y, w, h]; refuses max < min."""
    if x1 < x0 or y1 < y0:
        raise AnnotationError(f"{where}: {what} has max < min ({_fmt([x0, y0, x1, y1])}); expected "
                              "[x_min, y_min, x_max, y_max]")
    return [x0, y0, x1 - x0, y1 - y0]


def polygon(values: object, what: str, where: str) -> list[float]:
    """A flat polygon [x1, y1, x2, y2, ...] of finite numbers with an even count and at least 3 vertices; a ring
    written closed (last vertex == first, as in WKT and often in COCO) loses its repeated vertex."""
    poly = numbers(values, what, where)
    if len(poly) % 2:
        raise AnnotationError(f"{where}: {what} has an odd number of values ({len(poly)}); expected x, y pairs")
    poly = drop_closing_point(poly)
    if len(poly) < 6:
        raise AnnotationError(f"{where}: {what} has {len(poly) // 2} vertices; a polygon needs at least 3")
    return poly


def points(pairs: object, what: str, where: str) -> list[float]:
    """[[x, y], [x, y], ...] (LabelMe, GeoJSON-like) -> a flat list [x1, y1, x2, y2, ...] of finite numbers."""
    if isinstance(pairs, str | bytes) or not isinstance(pairs, Sequence):
        raise AnnotationError(f"{where}: {what} is {_show(pairs)}; expected a list of [x, y] points")
    out: list[float] = []
    for i, p in enumerate(pairs):
        out += numbers(p, f"{what} point {i + 1}", where, 2)
    return out


def polygon_bbox(poly: Sequence[float]) -> list[float]:
    """[x, y, w, h] of a flat polygon [x1, y1, x2, y2, ...] (the extent of its vertices)."""
    xs, ys = poly[0::2], poly[1::2]
    return [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]


def drop_closing_point(poly: list[float]) -> list[float]:
    """A ring written closed (last vertex == first, at least 4 vertices) without its repeat; others unchanged."""
    if len(poly) >= 8 and poly[0] == poly[-2] and poly[1] == poly[-1]:
        return poly[:-2]
    return poly


def clip_polygon(poly: Sequence[float], width: float, height: float) -> tuple[list[float], int]:
    """The polygon with every vertex clamped into [0, width] x [0, height], and how many vertices moved.

    Only for checked, finite coordinates (`polygon` above): a non-finite value raises ValueError rather than
    being clamped into a valid one."""
    _finite(poly, "clip_polygon")
    out, moved = [], 0
    for x, y in zip(poly[0::2], poly[1::2], strict=True):
        cx, cy = min(max(x, 0.0), float(width)), min(max(y, 0.0), float(height))
        moved += (cx, cy) != (x, y)
        out += [cx, cy]
    return out, moved


def clip_bbox(box: Sequence[float], width: float, height: float) -> list[float] | None:
    """The part of a finite [x, y, w, h] box inside [0, width] x [0, height], or None when nothing of it is.

    A non-finite value raises ValueError: clipping never turns an invalid box into a valid one."""
    _finite(box, "clip_bbox")
    x, y, w, h = box
    x0, y0 = max(x, 0.0), max(y, 0.0)
    x1, y1 = min(x + w, float(width)), min(y + h, float(height))
    if x1 < x0 or y1 < y0:
        return None
    return [x0, y0, x1 - x0, y1 - y0]


def one_based_xy(x: object, y: object, size: tuple[int, int], what: str, where: str) -> list[float]:
    """A 1-based pixel index (x = column, y = row, as in the CRIC export) -> a 0-based point [x - 1, y - 1].
    Both must be whole numbers in 1..width and 1..height (anything else means another convention or another
    image, and is refused)."""
    xi, yi = integer(x, f"{what} x", where), integer(y, f"{what} y", where)
    w, h = size
    if not (1 <= xi <= w and 1 <= yi <= h):
        raise AnnotationError(f"{where}: {what} ({xi}, {yi}) is outside the {w}x{h} image; expected 1-based "
                              "coordinates with x in 1..width and y in 1..height")
    return [float(xi - 1), float(yi - 1)]


def one_based_row_col(row: object, col: object, size: tuple[int, int], what: str, where: str) -> list[float]:
    """A 1-based (row, column) pixel index (MATLAB order) -> a 0-based point [x, y] = [col - 1, row - 1]; both
    whole numbers, row in 1..height and column in 1..width."""
    r, c = integer(row, f"{what} row", where), integer(col, f"{what} column", where)
    w, h = size
    if not (1 <= r <= h and 1 <= c <= w):
        raise AnnotationError(f"{where}: {what} (row {r}, col {c}) is outside the {w}x{h} image; expected 1-based "
                              "row in 1..height and col in 1..width")
    return [float(c - 1), float(r - 1)]


def _finite(values: Sequence[float], what: str) -> None:
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{what}: non-finite coordinates must be refused before clipping, got {list(values)}")


def _nonfinite(f: float) -> str:
    return "NaN" if math.isnan(f) else ("+infinity" if f > 0 else "-infinity")


def _show(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, float) and not math.isfinite(value):
        return _nonfinite(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fmt(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"
