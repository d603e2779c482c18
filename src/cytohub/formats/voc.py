"""Pascal VOC annotation files (one XML file per image; host.robots.ox.ac.uk/pascal/VOC):

    <annotation><filename/><size><width/><height/><depth/></size>
      <object><name/><difficult/><bndbox><xmin/><ymin/><xmax/><ymax/></bndbox></object>...</annotation>

Box bounds are 1-based and inclusive (pixel xmin..xmax), so a box becomes [xmin - 1, ymin - 1, xmax - xmin + 1,
ymax - ymin + 1] in cytohub's 0-based pixel-edge convention.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from cytohub.errors import RawFileError, RawLayoutError
from cytohub.formats import geometry
from cytohub.formats.geometry import AnnotationError
from cytohub.raw import RawFile

MAX_XML_BYTES = int(os.environ.get("CYTOHUB_MAX_XML_BYTES", 64 * 2**20))


@dataclass
class Object:
    name: str  # <name> as written (stripped)
    bbox: list[float]  # [x, y, w, h], 0-based pixel edges
    difficult: bool
    where: str  # "<file>: object k ('name')"


@dataclass
class Annotation:
    path: str
    filename: str | None
    size: tuple[int, int] | None  # (width, height) from <size>, when present
    objects: list[Object]


def box(xmin: float, ymin: float, xmax: float, ymax: float) -> list[float]:
    """VOC bounds (1-based, inclusive) -> [x, y, w, h] with a 0-based top-left origin."""
    return [xmin - 1, ymin - 1, xmax - xmin + 1, ymax - ymin + 1]


def load(f: RawFile) -> Annotation:
    """Read and check one VOC file: well-formed XML with an <annotation> root, whole-number <size>, and for
    every <object> a <name> and a <bndbox> of finite numbers with max >= min. Errors name the file and object."""
    if f.size > MAX_XML_BYTES:
        raise RawFileError(f"{f.path}: XML file of {f.size:,} bytes is over the limit of {MAX_XML_BYTES:,} bytes "
                           "(set CYTOHUB_MAX_XML_BYTES to raise it)")
    try:
        root = ET.fromstring(f.read_bytes())
    except ET.ParseError as exc:
        raise RawFileError(f"{f.path}: not well-formed XML ({exc}); expected a Pascal VOC annotation") from None
    if root.tag != "annotation":
        raise RawLayoutError(f"{f.path}: root element <{root.tag}>, expected <annotation> (Pascal VOC)")
    size = None
    node = root.find("size")
    if node is not None:
        size = geometry.image_size(_text(node, "width", f.path), _text(node, "height", f.path), f"{f.path}: <size>")
    objects = []
    for k, obj in enumerate(root.iter("object")):
        name = (obj.findtext("name") or "").strip()
        where = f"{f.path}: object {k + 1} ({name!r})"
        bnd = obj.find("bndbox")
        if bnd is None:
            raise RawLayoutError(f"{where}: no <bndbox>")
        x1, y1, x2, y2 = (geometry.number(_text(bnd, t, where), f"<{t}>", where)
                          for t in ("xmin", "ymin", "xmax", "ymax"))
        if x2 < x1 or y2 < y1:
            raise AnnotationError(f"{where}: box has xmax < xmin or ymax < ymin: ({x1:g}, {y1:g}, {x2:g}, {y2:g})")
        objects.append(Object(name, box(x1, y1, x2, y2), (obj.findtext("difficult") or "0").strip() == "1", where))
    return Annotation(f.path, root.findtext("filename"), size, objects)


def _text(node: ET.Element, tag: str, where: str) -> str:
    text = node.findtext(tag)
    if text is None:
        raise RawLayoutError(f"{where}: missing <{tag}>; expected a Pascal VOC annotation")
    return text
