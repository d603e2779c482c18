"""CCEDD: Cervical Cell Edge Detection Dataset, released with LLPC (Liu et al., Front. Neuroinform. 2022).

Liquid-based cervical cytology images (PNG) with LabelMe outlines of every cell (`cell`) and nucleus
(`kernel`), and edge label maps drawn from them: `edge/<id>_edge.png`, once as annotated (label_no_correct)
and once after the authors' Local Label Point Correction (label_correct). Shared as a OneDrive folder
`CCEDD/` of zips: `png.zip` -> `png/<id>.png`, `json.zip` -> `json/<id>.json`, and the edge labels.
One row per image: outlines as polygons, the corrected edge map as `mask`.
"""

from __future__ import annotations

import base64
import json
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from PIL import Image, ImageDraw

from cytohub import layout, synth
from cytohub.builder import Builder, Label, Source
from cytohub.errors import RawLayoutError
from cytohub.formats import labelme
from cytohub.formats.geometry import clip_polygon, polygon_bbox
from cytohub.formats.naming import natural_key
from cytohub.images import size as image_size
from cytohub.raw import RawFile, RawTree

SHAPE_LABELS = {"cell": "cell", "kernel": "nucleus"}  # LabelMe label -> object category
EDGE_RE = re.compile(r"^(?P<id>.+?)(?:_edge)?\.png$", re.IGNORECASE)
CORRECTED, UNCORRECTED, UNNAMED = "label_correct", "label_no_correct", "edge (variant not named in the path)"


def edge_variant(path: str) -> str:
    """Which edge label a file is, from its path: the corrected (LLPC) or the uncorrected one."""
    low = path.lower().replace("-", "_")
    if "no_correct" in low or "nocorrect" in low or "uncorrect" in low:
        return UNCORRECTED
    if "correct" in low:
        return CORRECTED
    return UNNAMED


def labelme_objects(doc: labelme.Document, size: tuple[int, int]) -> tuple[list[dict], dict]:
    """Objects from a checked LabelMe document: each `cell`/`kernel` shape's outline (pixels, origin top-left,
    as LabelMe stores them) as a polygon with its box. Vertices outside the image are clamped onto its border
    (counted); shapes with fewer than 3 points cannot be polygons and are counted, not kept."""
    objects, clipped, degenerate = [], 0, 0
    for shape in doc.shapes:
        label = shape.label.strip().lower()
        if label not in SHAPE_LABELS:
            raise RawLayoutError(f"{shape.where}: label {shape.label!r}; expected 'cell' or 'kernel'")
        outline = labelme.polygon(shape)
        if outline is None:
            degenerate += 1
            continue
        poly, moved = clip_polygon(outline, *size)
        clipped += moved
        objects.append({"category": SHAPE_LABELS[label], "bbox": polygon_bbox(poly), "polygon": poly})
    return objects, {"clipped_vertices": clipped, "degenerate_shapes": degenerate}


def full_scale_rows() -> int:
    """Rows of a full-scale synthetic build: the 686 images stated in the paper (not confirmed)."""
    return image_count("full")


def image_count(scale: str) -> int:
    return 686 if scale == "full" else 5


class CCEDD(Builder):
    name = "ccedd"
    pretty_name = "CCEDD: Cervical Cell Edge Detection Dataset"
    version = "1.0.0"
    summary = ("Liquid-based cervical cytology images with cell and nucleus outlines (LabelMe polygons) and "
               "corrected edge label maps")
    homepage = "https://github.com/nachifur/LLPC"
    license = "other"
    license_id = "ccedd-terms"
    license_name = "CCEDD terms of use (non-commercial research and education only; no redistribution)"
    license_link = "https://github.com/nachifur/LLPC"
    redistribution = "forbidden"
    attribution = ("Liu J., Fan H., Wang Q., Li W., Tang Y., Wang D., Zhou M., Chen L.: CCEDD, released with "
                   "Local Label Point Correction for Edge Detection of Overlapping Cervical Cells (Frontiers in "
                   "Neuroinformatics 16, 2022); Shenyang Institute of Automation, Chinese Academy of Sciences.")
    citation = """@ARTICLE{10.3389/fninf.2022.895290,
  AUTHOR  = {Liu, Jiawei and Fan, Huijie and Wang, Qiang and Li, Wentao and Tang, Yandong and Wang, Danbo and
             Zhou, Mingyi and Chen, Li},
  TITLE   = {Local Label Point Correction for Edge Detection of Overlapping Cervical Cells},
  JOURNAL = {Frontiers in Neuroinformatics},
  VOLUME  = {16},
  YEAR    = {2022},
  URL     = {https://www.frontiersin.org/article/10.3389/fninf.2022.895290},
  DOI     = {10.3389/fninf.2022.895290},
  ISSN    = {1662-5196}
}"""
    sources = (
        Source("png.zip", one_of="images", aliases=("CCEDD.zip", "png/"),
               description="CCEDD/png.zip: png/<id>.png, the images"),
        Source("json.zip", one_of="images", aliases=("CCEDD.zip", "json/"),
               description="CCEDD/json.zip: json/<id>.json, LabelMe cell/kernel outlines (images embedded)"),
        Source("edge_correct.zip", required=False,
               description="edge labels after LLPC correction (edge/<id>_edge.png); archive name from an earlier "
                           "README"),
        Source("edge_no_correct.zip", required=False,
               description="edge labels as annotated (edge/<id>_edge.png); archive name from an earlier README"),
    )
    manual_download = """CCEDD is shared through links in the README of https://github.com/nachifur/LLPC
(a OneDrive/SharePoint folder "CCEDD", and a USTC mirror
https://rec.ustc.edu.cn/share/16db9c80-15d5-11ef-9ca4-7b154f4fe8b0 with password e2ww).
Download the CCEDD folder (png.zip, json.zip and the edge-label zips; a folder download arrives as
CCEDD.zip) and pass the folder or CCEDD.zip with --raw (or put it at $CYTOHUB_HOME/raw/ccedd). Folders
already unzipped the LLPC way (CCEDD/label_correct/{png,json,edge}, CCEDD/label_no_correct/...) work too.
Terms: non-commercial research and education only; the images must not be redistributed."""
    task_categories = ("image-segmentation",)
    tags = ("cytology", "cervical-cancer", "liquid-based-cytology", "edge-detection", "instance-segmentation",
            "overlapping-cells", "microscopy", "medical")
    organ = "uterine cervix"
    stain = None
    preparation = "liquid-based cytology"
    mpp = None
    num_images = None
    layout = "unverified"
    expected_layout = """
    CCEDD/
      png.zip   -> png/<id>.png
      json.zip  -> json/<id>.json       LabelMe outlines (cell, kernel)
      edge_correct.zip / edge_no_correct.zip -> edge/<id>_edge.png
"""
    conversions = (
        "An image present only inside its LabelMe JSON (base64 `imageData`, no PNG file beside it) is decoded "
        "from base64 to the bytes that were embedded; those bytes are not re-encoded.",
    )
    assumptions = (
        "Archive names: png.zip and json.zip are named in the LLPC README; the edge labels are named "
        "edge_correct.zip / edge_no_correct.zip in an earlier README and only described as 'already provided' "
        "in the current one. Edge files are told apart by 'no_correct' / 'correct' anywhere in their path.",
        "Edge maps are named <id>_edge.png (from the LLPC code that writes them); <id>.png inside an edge/ "
        "folder is accepted too.",
        "Image ids are 5-digit zero-padded (00000.png), inferred from the names Cx22 refers to.",
        "LabelMe fields other than shapes[].label, shapes[].points, imageHeight, imageWidth and imageData are "
        "reproduced from the LabelMe format in the synthetic data, not from CCEDD files.",
        "The number of images (686 in the paper) and the image size (2048 x 1536) are not confirmed; the "
        "builder hard-codes neither.",
        "When an image's png/ file is absent, the image embedded in its LabelMe JSON (imageData) is used.",
    )
    labels = ()
    object_labels = (
        Label("cell", ("cell",), None, "outline of a whole cell (LabelMe label 'cell')"),
        Label("nucleus", ("cell", "kernel"), None, "outline of a nucleus (LabelMe label 'kernel')"),
    )

    # ------------------------------------------------------------------ raw -> rows
    def examples(self, raw: RawTree) -> Iterator[dict]:
        pngs: dict[str, list[RawFile]] = defaultdict(list)
        jsons: dict[str, list[RawFile]] = defaultdict(list)
        edges: dict[str, dict[str, RawFile]] = defaultdict(dict)
        for f in raw.files(suffix=(".png", ".json")):
            folder = f.parts[-2].lower() if len(f.parts) > 1 else ""
            if folder == "png" and f.suffix == ".png":
                pngs[f.stem].append(f)
            elif folder == "json" and f.suffix == ".json":
                jsons[f.stem].append(f)
            elif folder == "edge" and f.suffix == ".png":
                m = EDGE_RE.match(f.name)
                variant = edge_variant(f.path)
                if variant in edges[m["id"]]:
                    self._keep_one(raw, [edges[m["id"]][variant], f])
                else:
                    edges[m["id"]][variant] = f
        ids = sorted(set(pngs) | set(jsons), key=natural_key)
        if not ids:
            raise RawLayoutError(f"{raw.root}: no CCEDD images found; expected png.zip (png/<id>.png) and json.zip "
                                 "(json/<id>.json) from the CCEDD download" + layout.found(raw))
        for stem in sorted(set(edges) - set(ids)):
            for f in edges[stem].values():
                raw.skip(f, "edge label of an image that is not in the download")
        for stem in ids:
            png = self._keep_one(raw, pngs[stem]) if pngs.get(stem) else None
            ann = self._keep_one(raw, jsons[stem]) if jsons.get(stem) else None
            if ann is None and jsons:
                raise RawLayoutError(f"{png.path}: no outline file json/{stem}.json, though json/ is present; "
                                     "expected one LabelMe file per image")
            doc = labelme.load(ann) if ann is not None else None
            if png is not None:
                img = {"bytes": png.read_bytes(), "path": png.name}
                where = png.path
            else:
                img, where = self._embedded_image(doc, ann, stem), f"{ann.path} (imageData)"
            size = image_size(img["bytes"], where)
            objects, counts = [], {}
            if doc is not None:
                if doc.size is not None and doc.size != size:
                    raise RawLayoutError(f"{ann.path}: imageWidth x imageHeight {doc.size} but the image {where} "
                                         f"is {size}")
                objects, counts = labelme_objects(doc, size)
            mask, used = None, None
            by_variant = edges.get(stem, {})
            for variant in (CORRECTED, UNNAMED, UNCORRECTED):
                f = by_variant.get(variant)
                if f is None:
                    continue
                if mask is None:
                    data = f.read_bytes()
                    if image_size(data, f.path) != size:
                        raise RawLayoutError(f"{f.path}: edge map is {image_size(data, f.path)}, the image is {size}")
                    mask, used = {"bytes": data, "path": f.name}, (variant, f)
                else:
                    raw.skip(f, f"{variant} edge map; the row's mask is the {used[0]} edge map of the same image "
                                "(uncorrected edges are drawn from the annotated outlines kept in `objects`)")
            sources = [p.path for p in (png, ann, used[1] if used else None) if p is not None]
            yield {
                "id": stem,
                "image": img,
                "mask": mask,
                "objects": objects,
                "source_path": ";".join(sources),
                "extra": {"edge_label": used[0] if used else None, "outlines": ann is not None, **counts},
            }

    @staticmethod
    def _keep_one(raw: RawTree, copies: list[RawFile]) -> RawFile:
        """One file of several copies of the same id (png.zip and json.zip are unzipped twice in the LLPC
        layout): the first (label_correct sorts first), the others must be identical."""
        first = copies[0]
        for other in copies[1:]:
            if other.read_bytes() != first.read_bytes():
                raise RawLayoutError(f"{first.path} and {other.path} differ; expected identical copies of one file")
            raw.skip(other, f"identical copy of {first.path}")
        return first

    @staticmethod
    def _embedded_image(doc: labelme.Document | None, ann: RawFile, stem: str) -> dict:
        data = labelme.image_data(doc) if doc is not None else None
        if data is None:
            raise RawLayoutError(f"{ann.path}: no png/{stem}.png and no embedded imageData; expected png.zip "
                                 "next to json.zip")
        return {"bytes": data, "path": f"{stem}.png"}

    # ------------------------------------------------------------------ synthetic raw layout
    def synthesize(self, root: Path, scale: str = "small", seed: int = 0) -> None:
        # full scale: the paper's 686 images, drawn at 1024 x 768 (a quarter of the reported 2048 x 1536, which is
        # not confirmed) so that the synthetic download stays near 4 GB; 8 drawn fields reused with their outlines
        size = (1024, 768) if scale == "full" else (128, 96)
        pool = synth.ImagePool(scale, size=8)

        def field(i: int) -> tuple[bytes, list[dict], str, dict[str, bytes]]:
            rng = synth.rng_for("ccedd", seed, i)
            img, cells = synth.cell_field(rng, size, n_cells=int(rng.integers(2, 5)), nucleus_scale=0.3, margin=0.02)
            png = synth.encode(img, "PNG")
            shapes = []
            for cell in cells:
                for label, poly in (("cell", cell.cytoplasm_polygon(20)), ("kernel", cell.nucleus_polygon(12))):
                    poly, _ = clip_polygon(poly, size[0] - 1, size[1] - 1)
                    shapes.append({"label": label, "points": [[x, y] for x, y in zip(poly[0::2], poly[1::2],
                                                                                        strict=True)],
                                   "group_id": None, "shape_type": "polygon", "flags": {}})
            edges = {}
            for variant, jitter in (("edge_correct", 1.0), ("edge_no_correct", 0.0)):
                edge = Image.new("L", size, 0)
                draw = ImageDraw.Draw(edge)
                for shape in shapes:
                    pts = [(x + jitter * float(rng.uniform(-1, 1)), y + jitter * float(rng.uniform(-1, 1)))
                           for x, y in shape["points"]]
                    draw.line(pts + pts[:1], fill=255, width=1)
                edges[variant] = synth.encode(edge, "PNG")
            return png, shapes, base64.b64encode(png).decode(), edges

        def labelme(stem: str, shapes: list[dict], b64: str) -> bytes:
            return json.dumps({"version": "4.5.6", "flags": {}, "shapes": shapes, "imagePath": f"{stem}.png",
                               "imageData": b64, "imageHeight": size[1], "imageWidth": size[0]}, indent=2).encode()

        fields = [(f"{i:05d}", pool(None, i, field)) for i in range(image_count(scale))]
        entries = {  # generators: each JSON (with its embedded image) is made only while its zip is written
            "png": ((f"png/{stem}.png", f[0]) for stem, f in fields),
            "json": ((f"json/{stem}.json", labelme(stem, f[1], f[2])) for stem, f in fields),
            "edge_correct": ((f"edge/{stem}_edge.png", f[3]["edge_correct"]) for stem, f in fields),
            "edge_no_correct": ((f"edge/{stem}_edge.png", f[3]["edge_no_correct"]) for stem, f in fields),
        }
        for archive, items in entries.items():
            synth.write_zip(root / "CCEDD" / f"{archive}.zip", items)
        synth.write_marker(root, self.name, scale, seed)
