"""COCO object annotations (cocodataset.org/#format-data): `images`, `annotations`, `categories`.

An annotation has `image_id`, `category_id`, `bbox` [x, y, w, h] (0-based pixels, already cytohub's convention),
an optional `segmentation` and `iscrowd`. The segmentation is a list of polygons [x1, y1, x2, y2, ...] when
`iscrowd` is 0, and a run-length mask (`rle` module) when `iscrowd` is 1 (a region covering a crowd of objects,
which COCO's evaluation treats as "ignore"), or occasionally for a single object.

Checked on reading, with one error line naming the file and the record ("CCAgT_COCO_OD.json: annotation id 17
(image 3): bbox has NaN"): unique image ids (a repeated id would give one image the other's objects) and file
names, known image and category ids, positive whole-number image sizes, finite boxes with w, h >= 0, polygons
of x, y pairs, RLE sizes and run lengths that fill the mask, `iscrowd` 0 or 1.

In rows (`objects`): every annotation becomes one object per polygon part (a single part keeps the file's bbox;
several parts get the box of each part), or one object with its bbox and no polygon when it has no polygon (no
segmentation, or an RLE one).
What the unified object has no field for goes to `extra`, indexed by the object's position in `objects`:
`crowd_objects` lists the objects that come from `iscrowd: 1` annotations (present for every COCO corpus, `[]`
when none), and `segmentation_rle` maps an object's position (as a string) to its mask as a COCO RLE with
compressed counts (present only when some annotation has one). Polygon parts of fewer than 3 vertices cannot be
polygons: they are counted in `degenerate_polygons` (present only when not 0), not kept.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from cytohub.errors import RawLayoutError
from cytohub.formats import geometry, jsonfile, rle
from cytohub.formats.geometry import AnnotationError
from cytohub.raw import RawFile


@dataclass
class Image:
    """One entry of `images`."""

    id: object
    file_name: str
    width: int | None
    height: int | None
    where: str  # "<file>: images[k] (id 3)"


@dataclass
class Annotation:
    """One entry of `annotations`, checked; `category` is the category's name after the caller's mapping."""

    id: object
    image_id: object
    category: str
    bbox: list[float]
    polygons: list[list[float]] = field(default_factory=list)
    rle: dict | None = None  # {"size": [h, w], "counts": compressed string}
    iscrowd: bool = False
    degenerate_polygons: int = 0  # polygon parts of fewer than 3 vertices (even value count), not kept
    where: str = ""


@dataclass
class Document:
    """A checked COCO file: images in file order, annotations grouped by image id (file order)."""

    path: str
    images: list[Image]
    categories: dict[object, str]
    annotations: dict[object, list[Annotation]]

    def annotations_of(self, image: Image) -> list[Annotation]:
        return self.annotations.get(image.id, [])


def load(f: RawFile, category_name: Callable[[str, str], str] | None = None) -> Document:
    """Read and check a COCO file. `category_name(name, where)` maps each category's name to the corpus's
    object category (raising for an unknown one); by default names are kept as they are. Raises RawFileError
    (not JSON, too large or too deep) or RawLayoutError / AnnotationError naming the file and record."""
    doc = jsonfile.load(f, "COCO JSON")
    return parse(doc, f.path, category_name)


def parse(doc: object, path: str, category_name: Callable[[str, str], str] | None = None) -> Document:
    """`load` for an already parsed document; `path` names the file in errors."""
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), list) for k in ("images", "annotations",
                                                                                    "categories")):
        raise RawLayoutError(f"{path}: expected a COCO file: an object with 'images', 'annotations' and "
                             "'categories' lists")
    categories: dict[object, str] = {}
    for k, c in enumerate(doc["categories"]):
        where = f"{path}: categories[{k}]"
        if not isinstance(c, dict) or "id" not in c or "name" not in c:
            raise RawLayoutError(f"{where}: expected an object with 'id' and 'name'")
        cid = _id(c["id"], "category id", where)
        if cid in categories:
            raise RawLayoutError(f"{where}: category id {cid!r} is listed twice")
        name = str(c["name"])
        categories[cid] = category_name(name, where) if category_name else name

    images: list[Image] = []
    by_id: dict[object, Image] = {}
    by_name: dict[str, Image] = {}
    for k, im in enumerate(doc["images"]):
        where = f"{path}: images[{k}]"
        if not isinstance(im, dict) or "id" not in im or "file_name" not in im:
            raise RawLayoutError(f"{where}: expected an object with 'id' and 'file_name'")
        iid = _id(im["id"], "image id", where)
        where = f"{path}: image id {iid!r}"
        if iid in by_id:
            raise RawLayoutError(f"{where}: the id is used by two images ({by_id[iid].file_name!r} and "
                                 f"{im['file_name']!r}); expected unique image ids")
        name = im["file_name"]
        if not isinstance(name, str) or not name.strip():
            raise RawLayoutError(f"{where}: file_name is {name!r}; expected a file name")
        if name in by_name:
            raise RawLayoutError(f"{where}: file_name {name!r} is also image id {by_name[name].id!r}; expected "
                                 "each image listed once")
        w = h = None
        if im.get("width") is not None or im.get("height") is not None:
            w, h = geometry.image_size(im.get("width"), im.get("height"), where)
        image = Image(iid, name, w, h, where)
        images.append(image)
        by_id[iid] = by_name[name] = image

    annotations: dict[object, list[Annotation]] = defaultdict(list)
    for k, a in enumerate(doc["annotations"]):
        if not isinstance(a, dict):
            raise RawLayoutError(f"{path}: annotations[{k}]: expected an object")
        label = f"annotation id {a['id']!r}" if "id" in a else f"annotations[{k}]"
        iid = a.get("image_id")
        where = f"{path}: {label} (image {iid!r})"
        image = by_id.get(iid) if _hashable(iid) else None
        if image is None:
            raise RawLayoutError(f"{where}: image_id {iid!r} is not in 'images'")
        cid = a.get("category_id")
        if not _hashable(cid) or cid not in categories:
            raise RawLayoutError(f"{where}: category_id {cid!r} is not in 'categories'")
        ann = Annotation(a.get("id"), iid, categories[cid], geometry.bbox(a.get("bbox"), "bbox", where),
                         iscrowd=_crowd(a.get("iscrowd", 0), where), where=where)
        _segmentation(ann, a.get("segmentation"), image)
        annotations[iid].append(ann)
    return Document(path, images, categories, dict(annotations))


def objects(annotations: list[Annotation]) -> tuple[list[dict], dict]:
    """Row objects of an image's annotations and the `extra` entries that go with them (see the module notes):
    ({'category', 'bbox', 'polygon'} dicts, {'crowd_objects': [...], 'segmentation_rle': {...}})."""
    out: list[dict] = []
    crowd: list[int] = []
    rles: dict[str, dict] = {}
    degenerate = 0
    for ann in annotations:
        degenerate += ann.degenerate_polygons
        first = len(out)
        if len(ann.polygons) > 1:
            out += [{"category": ann.category, "bbox": geometry.polygon_bbox(p), "polygon": p} for p in ann.polygons]
        else:
            obj = {"category": ann.category, "bbox": list(ann.bbox)}
            if ann.polygons:
                obj["polygon"] = ann.polygons[0]
            out.append(obj)
            if ann.rle is not None:
                rles[str(first)] = ann.rle
        if ann.iscrowd:
            crowd += range(first, len(out))
    extra: dict = {"crowd_objects": crowd}
    if rles:
        extra["segmentation_rle"] = rles
    if degenerate:
        extra["degenerate_polygons"] = degenerate
    return out, extra


def _segmentation(ann: Annotation, seg: object, image: Image) -> None:
    where = ann.where
    if seg is None or seg == []:
        return
    if isinstance(seg, dict):
        try:
            size = seg.get("size")
            counts = seg.get("counts")
            if isinstance(counts, str):
                counts = rle.coco_string_to_counts(counts)
            h, w = rle.mask_shape(size if isinstance(size, list | tuple) else ())
            rle.run_lengths(counts if isinstance(counts, list) else "", h * w)
        except ValueError as exc:
            raise AnnotationError(f"{where}: segmentation RLE is not readable ({exc})") from None
        if image.width is not None and (w, h) != (image.width, image.height):
            raise AnnotationError(f"{where}: segmentation RLE is {w} x {h} but the image is {image.width} x "
                                  f"{image.height}")
        ann.rle = rle.coco_compress({"size": [h, w], "counts": counts})
        return
    if not isinstance(seg, list):
        raise AnnotationError(f"{where}: segmentation is {type(seg).__name__}; expected a list of polygons or "
                              "an RLE object")
    for j, part in enumerate(seg):
        what = "segmentation" if len(seg) == 1 else f"segmentation polygon {j + 1}"
        values = geometry.numbers(part, what, where)
        if len(values) % 2:
            raise AnnotationError(f"{where}: {what} has an odd number of values ({len(values)}); expected x, y "
                                  "pairs")
        if len(geometry.drop_closing_point(values)) < 6:
            ann.degenerate_polygons += 1
            continue
        ann.polygons.append(geometry.polygon(values, what, where))


def _crowd(value: object, where: str) -> bool:
    if value in (0, 1) and not isinstance(value, float):  # 0, 1, False, True
        return bool(value)
    raise AnnotationError(f"{where}: iscrowd is {value!r}; expected 0 or 1")


def _id(value: object, what: str, where: str) -> object:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise RawLayoutError(f"{where}: {what} is {value!r}; expected an integer or a string")
    return value


def _hashable(value: object) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)
