"""AICCS: Artificial Intelligence Cervical Cancer Screening system (Wang et al., Nature Communications 2024).

LAYOUT UNVERIFIED. The Zenodo record (doi:10.5281/zenodo.10828395) could not be inspected; it may hold only
code. This builder reads the patch-detector training data in the form the authors' own code expects
(github cellsvision/AICCS, `RetinaNet/dataset/cvs_voc.py`): a Pascal-VOC devkit with `Annotations/<id>.xml`,
`JPEGImages/<id>.png` and `ImageSets/Main/<set>.txt`. One row per patch image, its cells as boxes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from cytohub import layout, synth
from cytohub.builder import Builder, Label, Source
from cytohub.errors import RawLayoutError
from cytohub.formats import voc
from cytohub.formats.naming import letters_key
from cytohub.raw import RawFile, RawTree

# detector classes of the authors' code, with display names and Bethesda 2014 nodes
CLASSES = (
    ("hsil", "HSIL", "HSIL"),
    ("asc_h", "ASC-H", "ASC-H"),
    ("lsil", "LSIL", "LSIL"),
    ("asc_us", "ASC-US", "ASC-US"),
    ("scc", "SCC", "SCC"),
    ("agc", "AGC", "AGC"),
    ("tri", "Trichomonas", "NILM/organism/trichomonas"),
    ("actino", "Actinomyces", "NILM/organism/actinomyces"),
    ("cc", "Clue cell", "NILM/organism/bacterial-vaginosis"),
    ("candida", "Candida", "NILM/organism/candida"),
)
_KEY = {letters_key(c): c for c, _, _ in CLASSES}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SETS = ("train", "val", "test")


def class_of(name: str) -> str | None:
    """An XML <name> -> class id (case, '-', '_' and spaces ignored: 'ASC-US' == 'asc_us')."""
    return _KEY.get(letters_key(name))


def parse_annotation(f: RawFile) -> dict:
    """A VOC XML -> {"width", "height", "objects": [(class id, bbox, difficult)]}; an unknown class name or a
    missing <size> is an error naming the file."""
    ann = voc.load(f)
    if ann.size is None:
        raise RawLayoutError(f"{f.path}: no <size> element; expected <size><width>..<height>..</size>")
    objects = []
    for obj in ann.objects:
        cls = class_of(obj.name)
        if cls is None:
            raise RawLayoutError(f"{obj.where}: unknown class {obj.name!r}; expected one of "
                                 f"{', '.join(c for c, _, _ in CLASSES)}")
        objects.append((cls, obj.bbox, obj.difficult))
    return {"width": ann.size[0], "height": ann.size[1], "objects": objects}


def full_scale_rows() -> int:
    """Rows of a full-scale synthetic build: 2000 patches (a plausible number; none is published)."""
    return 2000


class AICCS(Builder):
    name = "aiccs"
    pretty_name = "AICCS: Artificial Intelligence Cervical Cancer Screening (patch-level cell detection)"
    summary = "Cervical cytology patches with boxes of 10 abnormal-cell and organism classes (layout unverified)"
    homepage = "https://doi.org/10.5281/zenodo.10828395"
    license = "unknown"
    redistribution = "forbidden"
    attribution = ("Wang J., Yu Y., Tan Y. et al., Artificial intelligence enables precision diagnosis of cervical "
                   "cytology grades and cervical cancer, Nature Communications 15 (2024); Zenodo "
                   "doi:10.5281/zenodo.10828395. License not stated in the sources consulted.")
    citation = """@article{wang2024aiccs,
  title   = {Artificial intelligence enables precision diagnosis of cervical cytology grades and cervical cancer},
  author  = {Wang, Jue and Yu, Yunfang and Tan, Yujie and others},
  journal = {Nature Communications},
  volume  = {15},
  year    = {2024},
  doi     = {10.1038/s41467-024-48705-3}
}"""
    sources = (Source("zenodo-10828395", url="https://zenodo.org/records/10828395", name_published=False,
                      description="Zenodo record 'Artificial Intelligence Enables Precision Diagnosis of Cervical "
                                  "Cytology Grades and Cervical Cancer' (1.0.0); file list not verified"),)
    manual_download = """The content of the Zenodo record https://doi.org/10.5281/zenodo.10828395 has not been
verified (it may contain code only). If it, or the authors on request, provide the patch-detector training data,
pass the downloaded archive or folder with --raw (or put it at $CYTOHUB_HOME/raw/aiccs). The builder expects a
Pascal VOC devkit as read by github.com/cellsvision/AICCS: Annotations/<id>.xml, JPEGImages/<id>.png and
optionally ImageSets/Main/{train,val,test}.txt, at any depth. WSI-level *.pkl files (detector outputs) are
listed in the build report and not used."""
    task_categories = ("object-detection",)
    tags = ("cytology", "cervical-cancer", "bethesda", "cell-detection", "microscopy", "medical")
    organ = "uterine cervix"
    stain = None  # not stated in the sources consulted
    preparation = None
    scanner = None
    magnification = None
    mpp = None
    num_images = None
    layout = "unverified"
    expected_layout = """
    <root>/ (e.g. AICCS_patch_data.zip)
      CVS_VOC/Annotations/<id>.xml          Pascal VOC boxes
      CVS_VOC/JPEGImages/<id>.png
      CVS_VOC/ImageSets/Main/<set>.txt      optional image lists
"""
    assumptions = (
        "The Zenodo record's content is unknown; the builder assumes it (or a copy obtained from the authors) holds "
        "the patch-detector training data in the Pascal VOC form read by cellsvision/AICCS "
        "(Annotations/<id>.xml, JPEGImages/<id>.png, ImageSets/Main/<set>.txt).",
        "Images are PNG as in the code (self.extension = '.png'); JPEG is tolerated.",
        "Box coordinates follow the VOC convention (1-based, inclusive bounds: x = xmin - 1, w = xmax - xmin + 1); "
        "the authors' evaluation code writes 1-based boxes, which suggests but does not prove it.",
        "Class names are the detector classes of the code (hsil, asc_h, lsil, asc_us, scc, agc, tri, actino, cc, "
        "candida); 'cc' is read as clue cell (bacterial vaginosis) and 'actino' as Actinomyces: both are "
        "interpretations of abbreviations, not stated by the authors.",
        "ImageSets/Main/<set>.txt lists are not treated as official splits (which lists exist is unknown); a row "
        "records its lists in extra['image_sets'].",
        "No patient, slide or pixel-size information is assumed (mpp is null; 0.25 um/px appears only in the "
        "code's WSI-level pickle example).",
    )
    labels = ()
    # object categories keep the authors' exact class strings; the path holds the readable name
    object_labels = tuple(Label(cid, (display,), node) for cid, display, node in CLASSES)

    # ------------------------------------------------------------------ raw -> rows
    def examples(self, raw: RawTree) -> Iterator[dict]:
        xmls = [f for f in raw.files(suffix=".xml") if f.parts[-2:-1] and f.parts[-2].lower() == "annotations"]
        if not xmls:
            raise RawLayoutError(f"{raw.root}: no Annotations/*.xml found; expected a Pascal VOC devkit "
                                 "(Annotations/<id>.xml, JPEGImages/<id>.png, ImageSets/Main/<set>.txt)"
                                 + layout.found(raw))
        images: dict[tuple[str, str], RawFile] = {}
        for f in raw.files(suffix=IMAGE_SUFFIXES):
            if len(f.parts) >= 2 and f.parts[-2].lower() == "jpegimages":
                key = (f.parent.rsplit("/", 1)[0] if "/" in f.parent else "", f.stem)
                if key in images:
                    raise RawLayoutError(f"two images for one id: {images[key].path} and {f.path}")
                images[key] = f
        sets: dict[tuple[str, str], list[str]] = {}
        for f in raw.files(suffix=".txt", pattern=r"(^|/)imagesets/main/[^/]+$"):
            lines = [ln.split() for ln in f.lines() if ln.strip()]
            if any(len(ln) != 1 for ln in lines):
                raw.skip(f, "per-class VOC list (<id> <1|-1>); the same information is in the annotations")
                continue
            devkit = "/".join(f.parts[:-3])
            for (name,) in lines:
                sets.setdefault((devkit, name), []).append(f.stem)
        for f in raw.files(suffix=".pkl"):
            raw.skip(f, "WSI-level detector output (pickle of boxes, no image): not part of the patch data")
        for f in raw.files(suffix=(".rec", ".idx", ".lst")):
            raw.skip(f, "mxnet RecordIO file derived from the VOC files")

        parsed = []
        seen = set()
        for f in xmls:
            devkit = f.parent.rsplit("/", 1)[0] if "/" in f.parent else ""
            img = images.get((devkit, f.stem))
            if img is None:
                raise RawLayoutError(f"{f.path}: no image {devkit + '/' if devkit else ''}JPEGImages/{f.stem}.png "
                                     "for this annotation")
            seen.add((devkit, f.stem))
            parsed.append((devkit, f, img, parse_annotation(f)))
        for key, img in sorted(images.items()):
            if key not in seen:
                raise RawLayoutError(f"{img.path}: no annotation {key[0] + '/' if key[0] else ''}Annotations/"
                                     f"{key[1]}.xml for this image")
        for (devkit, name), lists in sorted(sets.items()):
            if (devkit, name) not in seen:
                raise RawLayoutError(f"{devkit + '/' if devkit else ''}ImageSets/Main/{lists[0]}.txt lists "
                                     f"{name!r}, which has no Annotations/{name}.xml")

        multi = len({d for d, _, _, _ in parsed}) > 1
        for devkit, f, img, ann in parsed:
            row_id = f"{devkit.rsplit('/', 1)[-1]}/{f.stem}" if multi and devkit else f.stem
            yield {
                "id": row_id,
                "image": img,
                "objects": [{"category": c, "bbox": box} for c, box, _ in ann["objects"]],
                "source_path": f"{img.path};{f.path}",
                "extra": {"image_sets": sorted(sets.get((devkit, f.stem), [])),
                          "difficult": [i for i, (_, _, d) in enumerate(ann["objects"]) if d],
                          "voc_size": [ann["width"], ann["height"]]},
            }

    # ------------------------------------------------------------------ synthetic raw layout
    def synthesize(self, root: Path, scale: str = "small", seed: int = 0) -> None:
        n_images, size = (20, (256, 256)) if scale == "small" else (full_scale_rows(), (1024, 1024))
        entries: list[tuple[str, bytes]] = []
        sets: dict[str, list[str]] = {s: [] for s in SETS}
        pool = synth.ImagePool(scale)  # full scale: 32 drawn 1024 x 1024 patches, reused with their cells

        def draw(i: int) -> tuple[bytes, list[synth.Cell]]:
            rng = synth.rng_for("aiccs", seed, i)
            field, cells = synth.cell_field(rng, size, n_cells=int(rng.integers(1, 5)), nucleus_scale=0.35,
                                            tint=i, margin=0.05)
            return synth.encode(field, "PNG"), cells

        for i in range(n_images):
            png, cells = pool(None, i, draw)
            stem = f"patch_{i:05d}"
            objs = []
            for k, cell in enumerate(cells):
                cid = CLASSES[(i + k) % len(CLASSES)][0]
                x, y, w, h = cell.bbox()
                x1, y1 = max(1, int(x) + 1), max(1, int(y) + 1)  # VOC: 1-based inclusive
                x2, y2 = min(size[0], int(x + w)), min(size[1], int(y + h))
                objs.append(f"""  <object>
    <name>{cid}</name>
    <pose>Unspecified</pose>
    <truncated>0</truncated>
    <difficult>{int(k == 3)}</difficult>
    <bndbox>
      <xmin>{x1}</xmin>
      <ymin>{y1}</ymin>
      <xmax>{x2}</xmax>
      <ymax>{y2}</ymax>
    </bndbox>
  </object>
""")
            xml = (f"<annotation>\n  <folder>CVS_VOC</folder>\n  <filename>{stem}.png</filename>\n"
                   f"  <size>\n    <width>{size[0]}</width>\n    <height>{size[1]}</height>\n"
                   f"    <depth>3</depth>\n  </size>\n  <segmented>0</segmented>\n{''.join(objs)}</annotation>\n")
            entries.append((f"CVS_VOC/Annotations/{stem}.xml", xml.encode()))
            entries.append((f"CVS_VOC/JPEGImages/{stem}.png", png))
            sets[SETS[0] if i % 5 < 3 else SETS[1] if i % 5 == 3 else SETS[2]].append(stem)
        for s, names in sets.items():
            entries.append((f"CVS_VOC/ImageSets/Main/{s}.txt", ("\n".join(names) + "\n").encode()))
        synth.write_zip(root / "AICCS_patch_data.zip", sorted(entries))
        synth.write_marker(root, self.name, scale, seed)
