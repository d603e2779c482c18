"""SIPaKMeD: 4,049 isolated Pap-smear cells in 5 classes, cropped from 966 cluster images (Plissiti et al. 2018).

One folder per class (`im_Dyskeratotic`, ..., `im_Superficial-Intermediate`; the Kaggle mirror nests it twice).
In it: the cluster images `NNN.bmp` with outlines `NNN_cytMM.dat` / `NNN_nucMM.dat`, and `CROPPED/` with one
`NNN_MM.bmp` per cell plus `NNN_MM_cyt.dat` / `NNN_MM_nuc.dat` outlines in crop coordinates (text, one
`x,y` vertex per line). One row per cropped cell; its outlines become `objects` polygons.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from cytohub import layout, synth
from cytohub.builder import Builder, Label, Published, Source
from cytohub.errors import RawLayoutError
from cytohub.formats import geometry
from cytohub.formats.naming import folder_name
from cytohub.raw import RawFile, RawTree

# (class, homepage grouping, Bethesda node, published cropped cells, published cluster images)
CLASSES = (
    ("Dyskeratotic", "abnormal", None, 813, 223),
    ("Koilocytotic", "abnormal", "LSIL", 825, 238),
    ("Metaplastic", "benign", "NILM/squamous/metaplastic", 793, 271),
    ("Parabasal", "normal", "NILM/squamous/parabasal", 787, 108),
    ("Superficial-Intermediate", "normal", "NILM/squamous", 831, 126),
)
HOMEPAGE = "https://www.cs.uoi.gr/~marina/sipakmed.html"
CROP_RE = re.compile(r"^(?P<img>\d+)_(?P<cell>\d+)\.bmp$", re.IGNORECASE)
CROP_DAT_RE = re.compile(r"^(?P<img>\d+)_(?P<cell>\d+)_(?P<kind>cyt|nuc)\.dat$", re.IGNORECASE)
CLUSTER_RE = re.compile(r"^\d+\.bmp$", re.IGNORECASE)
CLUSTER_DAT_RE = re.compile(r"^\d+_(cyt|nuc)\d+\.dat$", re.IGNORECASE)
KIND = {"cyt": "cytoplasm", "nuc": "nucleus"}


def _key(folder: str) -> str:
    low = folder_name(folder).lower()
    low = low[3:] if low.startswith("im_") else low
    return re.sub(r"[^a-z]+", "-", low).strip("-")


_BY_KEY = {_key(name): name for name, *_ in CLASSES}


def class_of(folder: str) -> str | None:
    """`im_Superficial-Intermediate`, `Superficial_Intermediate`, `im_parabasal` ... -> the class name."""
    return _BY_KEY.get(_key(folder))


def read_dat(f: RawFile) -> list[float]:
    """A .dat outline -> [x1, y1, x2, y2, ...] in pixels (x = column, y = row, used as published)."""
    pts: list[float] = []
    for line_no, line in enumerate(f.lines("latin-1"), start=1):
        if not line.strip():
            continue
        vals = [v for v in re.split(r"[,;\s]+", line.strip()) if v]
        if len(vals) != 2:
            raise RawLayoutError(f"{f.path} line {line_no}: {line.strip()!r}; expected one 'x,y' vertex per line")
        pts += geometry.numbers(vals, "vertex", f"{f.path} line {line_no}", 2)
    if len(pts) < 6:
        raise RawLayoutError(f"{f.path}: {len(pts) // 2} vertices; an outline needs at least 3")
    return pts


class SIPaKMeD(Builder):
    name = "sipakmed"
    pretty_name = "SIPaKMeD: Pap-smear single-cell images in 5 classes"
    version = "1.0.0"
    summary = ("4,049 isolated cervical cells from Pap-smear cluster images, 5 classes, with nucleus and "
               "cytoplasm outlines")
    homepage = HOMEPAGE
    license = "other"
    license_id = "sipakmed-terms"
    license_name = "SIPaKMeD terms: free for experimental use, citing Plissiti et al. (ICIP 2018)"
    license_link = HOMEPAGE
    redistribution = "gated"
    attribution = ("Plissiti M.E. et al., SIPaKMeD database, University of Ioannina "
                   "(https://www.cs.uoi.gr/~marina/sipakmed.html); cite the ICIP 2018 paper when using it.")
    citation = """@inproceedings{plissiti2018sipakmed,
  author    = {Plissiti, Marina E. and Dimitrakopoulos, Panagiotis and Sfikas, Giorgos and Nikou, Christophoros
               and Krikoni, Olga and Charchanti, Antonia},
  title     = {SIPaKMeD: A New Dataset for Feature and Image Based Classification of Normal and Pathological
               Cervical Cells in Pap Smear Images},
  booktitle = {2018 25th IEEE International Conference on Image Processing (ICIP)},
  pages     = {3144--3148},
  year      = {2018},
  doi       = {10.1109/ICIP.2018.8451588}
}"""
    sources = tuple(Source(f"im_{name}.zip", url=HOMEPAGE, name_published=False,
                           description=f"{cells} cropped cells from {images} cluster images (archive name "
                                       f"inferred from its folder im_{name}/; .zip or .rar not verified)")
                    for name, _, _, cells, images in CLASSES)
    manual_download = """Download the five class archives from https://www.cs.uoi.gr/~marina/sipakmed.html
(im_Dyskeratotic, im_Koilocytotic, im_Metaplastic, im_Parabasal, im_Superficial-Intermediate) into one
folder and pass it with --raw (or put it at $CYTOHUB_HOME/raw/sipakmed). Zip archives can stay packed;
extract .rar archives first. The Kaggle mirror (prahladmehandiratta/cervical-cancer-largest-dataset-sipakmed,
folders im_<Class>/im_<Class>/...) works as downloaded."""
    task_categories = ("image-classification", "image-segmentation")
    tags = ("cytology", "cervical-cancer", "pap-smear", "papanicolaou", "single-cell", "cell-segmentation",
            "microscopy", "medical")
    organ = "uterine cervix"
    stain = "Papanicolaou"
    preparation = "Pap smear"
    num_images = 4049
    published = Published(
        files=tuple(f"im_{c[0]}.zip" for c in CLASSES), rows=4049,
        per_class={c[0]: c[3] for c in CLASSES}, unit="cells",
        source="the SIPaKMeD homepage (4,049 cells) and the per-class file counts of its folders")
    layout = "verified"
    expected_layout = """
    im_<Class>.zip (or folders; the Kaggle mirror nests them twice)    Class: Dyskeratotic, ... (5)
      im_<Class>/NNN.bmp, NNN_cytMM.dat, NNN_nucMM.dat                    cluster images
      im_<Class>/CROPPED/NNN_MM.bmp, NNN_MM_cyt.dat, NNN_MM_nuc.dat        one row per cell
"""
    assumptions = (
        "The official archive names and format are not documented (im_<Class>.zip assumed); the builder finds "
        "the class folders anywhere and accepts single (im_X/...) and double (im_X/im_X/...) nesting, 'im_' "
        "prefix optional, hyphen or underscore in Superficial-Intermediate.",
        "The .dat outlines are used as published: x = column, y = row, in pixels of the cropped image. Their "
        "origin (0- or 1-based) is not documented; no offset is applied.",
        "The cytoplasm outline (_cyt.dat) is the outer boundary of the whole cell, nucleus included.",
        "Rows are the cropped cells; the 966 cluster images and their NNN_cytMM/NNN_nucMM.dat outlines are not "
        "rows (listed as skipped in the build report). Crops of one cluster image share group.fov_id.",
        "Dyskeratotic cells have no single Bethesda category (harmonized is null); Koilocytotic maps to LSIL.",
    )
    labels = tuple(Label(name, (group, name), node) for name, group, node, _, _ in CLASSES)
    object_labels = (Label("cytoplasm", ("cell", "cytoplasm")), Label("nucleus", ("cell", "nucleus")))

    # ------------------------------------------------------------------ raw -> rows
    def examples(self, raw: RawTree) -> Iterator[dict]:
        crops: dict[tuple[str, str, str], RawFile] = {}
        outlines: dict[tuple[str, str, str], dict[str, RawFile]] = {}
        for f in raw.files():
            folders = f.parts[:-1]
            cls_pos = [i for i, p in enumerate(folders) if class_of(p)]
            if not cls_pos:
                continue
            cls = class_of(folders[cls_pos[-1]])
            below = [p.lower() for p in folders[cls_pos[-1] + 1:]]
            if below == ["cropped"]:
                m, d = CROP_RE.match(f.name), CROP_DAT_RE.match(f.name)
                if m:
                    key = (cls, m["img"], m["cell"])
                    if key in crops:
                        raise RawLayoutError(f"cell {f.name} of {cls} appears twice: {crops[key].path} and {f.path}")
                    crops[key] = f
                elif d:
                    slot = outlines.setdefault((cls, d["img"], d["cell"]), {})
                    kind = KIND[d["kind"].lower()]
                    if kind in slot:
                        raise RawLayoutError(f"{kind} outline of {cls} cell {d['img']}_{d['cell']} appears twice: "
                                             f"{slot[kind].path} and {f.path}")
                    slot[kind] = f
                elif f.suffix in (".bmp", ".dat"):
                    raise RawLayoutError(f"{f.path}: unexpected name in CROPPED/; expected NNN_MM.bmp, "
                                         "NNN_MM_cyt.dat or NNN_MM_nuc.dat")
            elif not below:
                if CLUSTER_RE.match(f.name):
                    raw.skip(f, "cluster image (rows are its cropped cells in CROPPED/)")
                elif CLUSTER_DAT_RE.match(f.name):
                    raw.skip(f, "outline in cluster-image coordinates (the crop's own outline is used)")
        if not crops:
            raise RawLayoutError(f"{raw.root}: no SIPaKMeD cells found; expected im_<Class>/CROPPED/NNN_MM.bmp for "
                                 f"the classes {', '.join(n for n, *_ in CLASSES)}" + layout.found(raw))
        for key, slot in outlines.items():
            if key not in crops:
                for f in slot.values():
                    raw.skip(f, "outline without its cropped image")

        order = [n for n, *_ in CLASSES]
        for key in sorted(crops, key=lambda k: (order.index(k[0]), int(k[1]), int(k[2]), k[1], k[2])):
            cls, img, cell = key
            f = crops[key]
            objects, sources = [], [f.path]
            for kind in ("cytoplasm", "nucleus"):
                dat = outlines.get(key, {}).get(kind)
                if dat is not None:
                    poly = read_dat(dat)
                    objects.append({"category": kind, "polygon": poly, "bbox": geometry.polygon_bbox(poly)})
                    sources.append(dat.path)
            yield {
                "id": f"{cls}-{img}_{cell}",
                "image": f,
                "label": cls,
                "objects": objects,
                "group": {"fov_id": f"{cls}-{img}"},
                "source_path": ";".join(sources),
                "extra": {"cluster_image": f"{img}.bmp", "cell": cell},
            }

    # ------------------------------------------------------------------ synthetic raw layout
    def synthesize(self, root: Path, scale: str = "small", seed: int = 0) -> None:
        # full scale: the published 966 cluster images and 4,049 cells, drawn at 512 x 384 (the real cluster
        # images are 2048 x 1536 BMPs: 9 GB) and reused from a pool of 16 drawn clusters per class and cell count
        pool = synth.ImagePool(scale, size=16)

        def cluster(ci: int, cls: str, n: int, i: int, size: tuple[int, int]) -> tuple[list, list]:
            """(files of the cluster image, files of its cropped cells) as (name suffix, bytes) pairs."""
            rng = synth.rng_for("sipakmed", seed, cls, i)
            field, cells = synth.cell_field(rng, size, n_cells=n, nucleus_scale=0.18 + 0.05 * ci, tint=ci,
                                            margin=0.05)
            whole = [(".bmp", synth.encode(field, "BMP"))]
            for j, cell in enumerate(cells, start=1):
                whole.append((f"_cyt{j:02d}.dat", _dat(cell.cytoplasm_polygon())))
                whole.append((f"_nuc{j:02d}.dat", _dat(cell.nucleus_polygon())))
            crops = []
            for j, cell in enumerate(cells, start=1):
                x, y, w, h = cell.bbox()
                x0, y0 = max(0, int(x) - 2), max(0, int(y) - 2)
                x1, y1 = min(size[0], int(x + w) + 3), min(size[1], int(y + h) + 3)
                crops.append((f"_{j:02d}.bmp", synth.encode(field.crop((x0, y0, x1, y1)), "BMP")))
                for kind, poly in (("cyt", cell.cytoplasm_polygon()), ("nuc", cell.nucleus_polygon())):
                    shifted = [v - (x0 if k % 2 == 0 else y0) for k, v in enumerate(poly)]
                    crops.append((f"_{j:02d}_{kind}.dat", _dat(shifted)))
            return whole, crops

        for ci, (cls, _, _, n_cells, n_images) in enumerate(CLASSES):
            folder = f"im_{cls}"
            if scale == "full":
                per_image = [n_cells // n_images + (i < n_cells % n_images) for i in range(n_images)]
                size = (512, 384)
            else:
                per_image, size = [2, 2, 2], (200, 160)
            entries: list[tuple[str, bytes]] = []
            for i, n in enumerate(per_image, start=1):
                whole, crops = pool((cls, n), i, lambda k, ci=ci, cls=cls, n=n, size=size: cluster(ci, cls, n, k,
                                                                                                    size))
                entries += [(f"{folder}/{i:03d}{suffix}", data) for suffix, data in whole]
                entries += [(f"{folder}/CROPPED/{i:03d}{suffix}", data) for suffix, data in crops]
            entries.sort(key=lambda e: e[0])
            synth.write_zip(root / f"{folder}.zip", entries)
        synth.write_marker(root, self.name, scale, seed)


def _dat(poly: list[float]) -> bytes:
    """Outline text as published: one `x,y` vertex per line."""
    return "".join(f"{x:.4f},{y:.4f}\n" for x, y in zip(poly[0::2], poly[1::2], strict=True)).encode()
