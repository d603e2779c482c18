"""CSD: the private cervical cytology WSI dataset of Huang et al. (TCT-InfoNCE, CVIU-CSU; arXiv 2407.11486).

LAYOUT UNVERIFIED, DATA NOT PUBLIC. The authors state they have no permission to disclose the slides; only the
slide-level label files are public (github CVIU-CSU/TCT-InfoNCE, `datatools/gc/labels/*.csv`, lines
`<slide>,<0|1>`). For anyone who obtains the data from the authors, the builder reads it in the tiled form their
code consumes (`extract_features_tct.py`, dataset 'gc'): `<root>/{NILM,POS}/<slide>/<i>_<j>.jpg`, and takes the
official split from `train_val.csv` / `test_label.csv`. One row per tile, labelled with its slide's label.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from cytohub import layout, synth
from cytohub.builder import Builder, Label, Source
from cytohub.errors import RawLayoutError
from cytohub.raw import RawFile, RawTree

SPLIT_FILES = {"train_val.csv": "train", "test_label.csv": "test"}
SUBSET_FILES = ("test_c.csv", "test_h.csv")  # subsets of the test slides used by the authors' eval.py
CLASS_DIRS = {"nilm": "NILM", "pos": "POS"}
BINARY = {"0": "NILM", "1": "POS"}
TILE_RE = re.compile(r"^(?P<i>\d+)_(?P<j>\d+)\.(?:jpe?g|png)$", re.IGNORECASE)
# A Bethesda category near the end of a slide name, after a dash or straight after the slide number, optionally
# followed by `+X` notes: 'CX20164770-HSIL+T', 'CX20166857-ASC-US+M', 'CX20147703ASC-US', '201221142818-22-3ASC-US'.
CATEGORY_RE = re.compile(r"(?<![A-Za-z])(NILM|ASC-US|ASC-H|LSIL|HSIL|AGC|SCC|AIS|ADC)((?:\+[A-Za-z0-9]*)*)$",
                         re.IGNORECASE)
TILE_PX = 224
# synthetic slides: (name, folder, split); test_h / test_c membership below
SYNTH_SLIDES = (
    ("xCR20018134-NILM", "NILM", "train"), ("x202000796", "NILM", "train"),
    ("xCR20018201-LSIL", "POS", "train"), ("xCR20018202ASC-H", "POS", "train"),
    ("xCR20018140-NILM", "NILM", "test"), ("xCR20018210-HSIL+T", "POS", "test"),
    ("x201221142818-22-3ASC-US", "POS", "test"),
)


def slide_category(slide: str) -> str | None:
    """The Bethesda category at the end of a slide name, if any: 'xCR20018134-NILM' -> 'NILM',
    'CX20164770-HSIL+T' -> 'HSIL', 'CX20147703ASC-US' -> 'ASC-US', '202000796' -> None. The category follows a
    dash or the slide number directly, and may be followed by `+X` notes (kept by `slide_category_notes`)."""
    m = CATEGORY_RE.search(slide)
    return m[1].upper() if m else None


def slide_category_notes(slide: str) -> list[str]:
    """The `+X` notes after a slide name's category ('CX20166857-ASC-US+M' -> ['M']); their meaning is not
    published, so they are kept verbatim."""
    m = CATEGORY_RE.search(slide)
    return [n for n in m[2].split("+") if n] if m else []


def full_scale_rows() -> dict[str, int]:
    """Rows per split of a full-scale synthetic build. Nothing is published: 200 slides of 10 x 10 tiles, one
    slide in five in the test split (see `CSD.synthesize`)."""
    return {"train": 160 * 100, "test": 40 * 100}


def parse_labels(f: RawFile) -> list[tuple[str, str]]:
    """`<slide>,<0|1>` lines -> [(slide, 'NILM' | 'POS')]; no header (the authors' readCSV has none)."""
    out = []
    for n, line in enumerate(f.lines(), 1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 2 or not parts[0] or parts[1] not in BINARY:
            raise RawLayoutError(f"{f.path}, line {n}: {line!r}; expected '<slide name>,<0|1>'")
        out.append((parts[0], BINARY[parts[1]]))
    return out


def _pick(raw: RawTree, name: str) -> RawFile | None:
    hits = raw.named(name)
    if len(hits) > 1:
        hits = [h for h in hits if "gc" in [p.lower() for p in h.parts[:-1]]] or hits
    if len(hits) > 1:
        raise RawLayoutError(f"{raw.root}: {len(hits)} files named {name}: {', '.join(h.path for h in hits[:4])}; "
                             "expected one (the CSD labels are datatools/gc/labels/ of TCT-InfoNCE)")
    return hits[0] if hits else None


class CSD(Builder):
    name = "csd"
    pretty_name = "CSD: Cervical Cytopathology WSI Screening Dataset (tiles, slide-level labels)"
    summary = ("Private cervical cytology WSIs from TCT-InfoNCE, as 224-px tiles with slide-level NILM / positive "
               "labels (data not public, layout unverified)")
    homepage = "https://github.com/CVIU-CSU/TCT-InfoNCE"
    license = "unknown"
    redistribution = "forbidden"
    attribution = ("Huang J., Li G., Kan S., Liu J., Liang Y., Central South University (CVIU-CSU); the CSD slides "
                   "are private ('absence of permission to publicly disclose the CSD dataset').")
    citation = """@article{huang2025tctinfonce,
  title   = {An efficient framework based on large foundation model for cervical cytopathology whole slide image
             screening},
  author  = {Huang, Jialong and Li, Gaojie and Kan, Shichao and Liu, Jianfeng and Liang, Yixiong},
  journal = {Biomedical Signal Processing and Control},
  year    = {2025},
  doi     = {10.1016/j.bspc.2025.107859},
  note    = {arXiv:2407.11486}
}"""
    sources = (
        Source("train_val.csv", url="https://github.com/CVIU-CSU/TCT-InfoNCE",
               description="datatools/gc/labels/train_val.csv: training slides, '<slide>,<0|1>'"),
        Source("test_label.csv", url="https://github.com/CVIU-CSU/TCT-InfoNCE",
               description="datatools/gc/labels/test_label.csv: test slides, '<slide>,<0|1>'"),
        Source("gc tiles", name_published=False,
               description="slide tiles <root>/{NILM,POS}/<slide>/<i>_<j>.jpg: private, from the authors"),
    )
    manual_download = """The CSD slides are not public: the authors (CVIU-CSU, Central South University; see
https://github.com/CVIU-CSU/TCT-InfoNCE) state they have no permission to disclose them, so they can only be
obtained from the authors, if at all. Put the tiled slides (NILM/<slide>/<i>_<j>.jpg and POS/<slide>/<i>_<j>.jpg)
and the label files datatools/gc/labels/train_val.csv and test_label.csv (public, in the TCT-InfoNCE repository)
in one folder and pass it with --raw (or put it at $CYTOHUB_HOME/raw/csd). Only the precomputed features and
model weights are offered for download (Baidu Pan); they are not images and are not used."""
    task_categories = ("image-classification",)
    tags = ("cytology", "cervical-cancer", "whole-slide-image", "multiple-instance-learning", "tiles",
            "weak-labels", "microscopy", "medical")
    organ = "uterine cervix"
    stain = None
    preparation = "ThinPrep cytologic test (TCT, liquid-based)"
    scanner = None
    magnification = None
    mpp = None
    num_images = None
    layout = "unverified"
    expected_layout = """
    <root>/
      .../datatools/gc/labels/train_val.csv, test_label.csv   (test_c.csv, test_h.csv optional)
      .../NILM/<slide>/<i>_<j>.jpg
      .../POS/<slide>/<i>_<j>.jpg
"""
    assumptions = (
        "The slides themselves are private; the builder assumes they come as the tiles the authors' code reads "
        "for the 'gc' dataset (extract_features_tct.py): <root>/NILM/<slide>/<i>_<j>.jpg|png and "
        "<root>/POS/<slide>/<i>_<j>.jpg|png. Whole-slide files cannot be read.",
        "CSD is taken to be the code's 'gc' dataset (tools/test.sh evaluates 'CSD' with DATASET=gc); its label "
        "files are datatools/gc/labels/train_val.csv (-> split 'train') and test_label.csv (-> split 'test').",
        "Label 0 = NILM and 1 = positive, matching the NILM/ and POS/ tile folders; a mismatch is an error.",
        "Tile <i>_<j> is column i, row j of a grid of 224-px tiles (from the FNAC tiling notebook and the "
        "'gc-224' default path); kept in extra, not turned into coordinates.",
        "The Bethesda category in a slide name (e.g. 'CX20164770-HSIL+T', 'CX20147703ASC-US', "
        "'201221142818-22-3ASC-US') is recorded in extra['slide_category'] but not used as a tile label: a tile of "
        "a positive slide need not show abnormal cells. Notes after it ('+T', '+M') are kept verbatim in "
        "extra['slide_category_notes'] (their meaning is not published); a name without a category (e.g. "
        "'202000796') gives null.",
        "'TCT' in the code is read as ThinPrep cytologic test (liquid-based); stain and scanner are not stated.",
        "test_c.csv and test_h.csv are recorded as extra['test_subsets'] without interpretation.",
    )
    labels = (
        Label("NILM", ("NILM",), "NILM", "tile of a slide labelled negative (0)"),
        Label("POS", ("POS",), None, "tile of a slide labelled positive (1): the tile itself may be normal"),
    )
    splits = ("train", "test")

    # ------------------------------------------------------------------ raw -> rows
    def examples(self, raw: RawTree) -> Iterator[dict]:
        slides: dict[str, tuple[str, str]] = {}  # slide -> (label, split)
        where: dict[str, str] = {}
        for fname, split in SPLIT_FILES.items():
            f = _pick(raw, fname)
            if f is None:
                raise RawLayoutError(f"{raw.root}: no {fname} found; copy datatools/gc/labels/ of "
                                     "github.com/CVIU-CSU/TCT-InfoNCE next to the tiles" + layout.found(raw))
            for slide, label in parse_labels(f):
                if slide in slides:
                    raise RawLayoutError(f"{f.path}: slide {slide!r} is also listed in {where[slide]}")
                slides[slide], where[slide] = (label, split), f.path
        subsets: dict[str, list[str]] = defaultdict(list)
        for fname in SUBSET_FILES:
            f = _pick(raw, fname)
            if f is not None:
                for slide, _ in parse_labels(f):
                    subsets[slide].append(fname[:-4])
        for f in raw.files(suffix=".csv"):
            if f.name.lower() not in (*SPLIT_FILES, *SUBSET_FILES) or f.path not in raw.used:
                raw.skip(f, "not one of the CSD (gc) split files train_val.csv / test_label.csv / test_c.csv / "
                            "test_h.csv")

        tiles: dict[str, list[tuple[int, int, RawFile]]] = defaultdict(list)
        folder_of: dict[str, str] = {}
        stray: set[str] = set()  # folders holding slide folders of tiles, other than NILM/ and POS/
        for f in raw.files(suffix=(".jpg", ".jpeg", ".png")):
            parts = f.parts
            if len(parts) < 3 or parts[-3].lower() not in CLASS_DIRS:
                raw.skip(f, "not a tile of a NILM/<slide>/ or POS/<slide>/ folder")
                if len(parts) > 2:
                    stray.add("/".join(parts[:-2]) + "/")
                continue
            slide, cls_dir = parts[-2], CLASS_DIRS[parts[-3].lower()]
            m = TILE_RE.match(f.name)
            if not m:
                raise RawLayoutError(f"{f.path}: tile name does not match <i>_<j>.jpg (column_row, e.g. 3_7.jpg)")
            if slide in folder_of and folder_of[slide] != f.parent:
                raise RawLayoutError(f"slide {slide!r} has tiles in two folders: {folder_of[slide]} and {f.parent}")
            folder_of[slide] = f.parent
            if slide in slides and slides[slide][0] != cls_dir:
                raise RawLayoutError(f"{f.parent}: slide is in the {parts[-3]}/ folder but {where[slide]} labels it "
                                     f"{'1 (positive)' if slides[slide][0] == 'POS' else '0 (NILM)'}")
            if slide not in slides:
                raw.skip(f, "slide not listed in train_val.csv or test_label.csv")
                continue
            tiles[slide].append((int(m["i"]), int(m["j"]), f))
        missing = sorted(s for s in slides if s not in tiles)
        if missing:
            raise RawLayoutError(f"{where[missing[0]]} lists slide {missing[0]!r} but no NILM/{missing[0]}/ or "
                                 f"POS/{missing[0]}/ folder of tiles was found ({len(missing)} slide(s) missing); "
                                 + layout.mismatch("slide folders of tiles in NILM/ and POS/",
                                                   f"tiles in {layout.found_text(sorted(stray))}" if stray
                                                   else f"{layout.listing(raw)} at the top"))
        for slide in sorted(tiles):
            label, split = slides[slide]
            seen: dict[tuple[int, int], str] = {}
            for i, j, f in sorted(tiles[slide], key=lambda t: (t[0], t[1], t[2].name)):
                if (i, j) in seen:
                    raise RawLayoutError(f"duplicated tile {i}_{j}: {seen[(i, j)]} and {f.path}")
                seen[(i, j)] = f.path
                yield {
                    "id": f"{slide}/{i}_{j}",
                    "image": f,
                    "label": label,
                    "group": {"slide_id": slide},
                    "split": split,
                    "extra": {"tile_col": i, "tile_row": j, "slide_category": slide_category(slide),
                              "slide_category_notes": slide_category_notes(slide),
                              "test_subsets": subsets.get(slide, [])},
                }

    # ------------------------------------------------------------------ synthetic raw layout
    def synthesize(self, root: Path, scale: str = "small", seed: int = 0) -> None:
        if scale == "small":
            slide_list, grid = SYNTH_SLIDES, 2
        else:  # no published counts: 200 slides of 10 x 10 tiles, 1 in 2 positive, 1 in 5 in the test split
            cats = ("NILM", "LSIL", "NILM", "HSIL", "NILM", "ASC-US", "NILM", "ASC-H")
            slide_list = tuple((f"xCR2002{k:04d}-{cats[k % 8]}", "NILM" if cats[k % 8] == "NILM" else "POS",
                                "test" if k % 5 == 4 else "train") for k in range(200))
            grid = 10
        lines: dict[str, list[str]] = defaultdict(list)
        pool = synth.ImagePool(scale)  # full scale: 32 drawn tiles per class folder, reused over 20,000 tiles

        def draw(slide: str, folder: str, n: int, i: int, j: int) -> bytes:
            rng = synth.rng_for("csd", seed, slide, i, j)
            img, _ = synth.cell_field(rng, (TILE_PX, TILE_PX), n_cells=int(rng.integers(1, 4)),
                                      nucleus_scale=0.2 if folder == "NILM" else 0.2 + 0.2 * (n % 2), tint=n)
            return synth.encode(img, "JPEG")

        for n, (slide, folder, split) in enumerate(slide_list):
            lines["train_val.csv" if split == "train" else "test_label.csv"].append(
                f"{slide},{0 if folder == 'NILM' else 1}")
            if split == "test" and folder == "POS":
                lines["test_h.csv" if slide_category(slide) in ("HSIL", "ASC-H") else "test_c.csv"].append(
                    f"{slide},1")
            for i in range(grid):
                for j in range(grid):
                    data = pool(folder, n * grid * grid + i * grid + j,
                                lambda _k, slide=slide, folder=folder, n=n, i=i, j=j: draw(slide, folder, n, i, j))
                    synth.write_bytes(root / "gc-224" / folder / slide / f"{i}_{j}.jpg", data)
        for fname, rows in lines.items():
            synth.write_bytes(root / "TCT-InfoNCE" / "datatools" / "gc" / "labels" / fname,
                              ("\n".join(rows) + "\n").encode())
        synth.write_marker(root, self.name, scale, seed)
