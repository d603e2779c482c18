"""Bone marrow cytomorphology (Matek et al. 2021, TCIA "Bone-Marrow-Cytomorphology_MLL_Helmholtz_Fraunhofer";
Kaggle mirror andrewmvd/bone-marrow-cell-classification): 171,375 single-cell crops from bone-marrow smears of
945 patients, 21 classes.

Raw layout (Kaggle): `abbreviations.csv` (`;`-separated, header `Abbreviation;...`) and
`bone_marrow_cell_dataset/<CODE>/<range>/<CODE>_<5 digits>.jpg`, where classes with more than 1000 images are
split into range folders `0001-1000`, `1001-2000`, ..., `10001-11000`, ... (four digits below 10,000, five above;
the last one ends at the class count) and small classes
are flat (`ABE/ABE_00001.jpg`). The TCIA copy has the same tree under `BM_cytomorphology_data/`. One row per image.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from cytohub import layout, synth
from cytohub.builder import Builder, Label, Published, Source
from cytohub.errors import RawLayoutError
from cytohub.raw import RawTree, text_lines
from cytohub.synthetic_pictures import blood_cell

G = "heme/granulocytic"
# code, name, published count (openmedlab table), harmonized node, synthetic style
CLASSES = (
    ("ABE", "Abnormal eosinophil", 8, f"{G}/eosinophilic/abnormal", "eosinophil"),
    ("ART", "Artefact", 19630, "heme-artefact", "artefact"),
    ("BAS", "Basophil", 441, f"{G}/basophilic", "basophil"),
    ("BLA", "Blast", 11973, "heme/immature/blast", "blast"),
    ("EBO", "Erythroblast", 27395, "heme/erythroid/erythroblast", "erythroid"),
    ("EOS", "Eosinophil", 5883, f"{G}/eosinophilic", "eosinophil"),
    ("FGC", "Faggott cell", 47, f"{G}/promyelocyte/faggot-cell", "promyelocyte"),
    ("HAC", "Hairy cell", 409, "heme/lymphoid/hairy-cell", "lymphocyte"),
    ("KSC", "Smudge cell", 42, "heme/smudge-cell", "smudge"),
    ("LYI", "Immature lymphocyte", 65, "heme/lymphoid/immature", "blast"),
    ("LYT", "Lymphocyte", 26242, "heme/lymphoid/lymphocyte", "lymphocyte"),
    ("MMZ", "Metamyelocyte", 3055, f"{G}/neutrophilic/metamyelocyte", "myelocyte"),
    ("MON", "Monocyte", 4040, "heme/monocytic/monocyte", "monocyte"),
    ("MYB", "Myelocyte", 6557, f"{G}/neutrophilic/myelocyte", "myelocyte"),
    ("NGB", "Band neutrophil", 9968, f"{G}/neutrophilic/band", "band"),
    ("NGS", "Segmented neutrophil", 29424, f"{G}/neutrophilic/segmented", "segmented"),
    ("NIF", "Not identifiable", 3538, "heme/unidentifiable", "smudge"),
    ("OTH", "Other cell", 294, "heme", "plasma"),
    ("PEB", "Proerythroblast", 2740, "heme/erythroid/proerythroblast", "erythroid"),
    ("PLM", "Plasma cell", 7629, "heme/lymphoid/plasma", "plasma"),
    ("PMO", "Promyelocyte", 11994, f"{G}/promyelocyte", "promyelocyte"),
)
CODES = tuple(c[0] for c in CLASSES)
HARMONIZED = {c[0]: c[3] for c in CLASSES}
COUNTS = {c[0]: c[2] for c in CLASSES}
DATA_FOLDER = "bone_marrow_cell_dataset"
RANGE_RE = re.compile(r"^(\d+)-(\d+)$")  # any N-M: 0001-1000, 10001-11000, 19001-19630
FILE_RE = re.compile(r"^([A-Za-z]{3})_(\d{5})\.jpe?g$", re.IGNORECASE)
_KEY = 100_000  # image numbers have five digits


def range_folder(i: int, count: int) -> str:
    """The range sub-folder of image number i (1-based) of a class with `count` images."""
    start = (i - 1) // 1000 * 1000 + 1
    return f"{start:04d}-{min(start + 999, count)}"


def synthetic_counts(scale: str) -> dict[str, int]:
    """full: the published counts; small: 3 per class, and 1002 for ART so that it spans two range folders."""
    return dict(COUNTS) if scale == "full" else {c: 1002 if c == "ART" else 3 for c in CODES}


def full_scale_rows() -> int:
    """Rows of a full-scale synthetic build: the published per-class counts (they sum to 171,374, one less than
    the 171,375 TCIA states)."""
    return sum(COUNTS.values())


def parse_abbreviations(text: str, where: str) -> dict[str, str]:
    """abbreviations.csv (`;`-separated, header row `Abbreviation;...`) -> {code: name}."""
    out = {}
    for n, line in enumerate(text_lines(text, where), 1):
        if not line.strip():
            continue
        fields = [x.strip().strip('"') for x in line.split(";")]
        if n == 1 and fields[0].lower() == "abbreviation":
            continue
        if len(fields) < 2 or not re.fullmatch(r"[A-Za-z]{3}", fields[0]):
            raise RawLayoutError(f"{where}, line {n}: {line!r} is not 'CODE;Name' (semicolon-separated)")
        if fields[0].upper() not in CODES:
            raise RawLayoutError(f"{where}, line {n}: class code {fields[0]!r} is not one of the 21 published "
                                 f"classes ({', '.join(CODES)})")
        out[fields[0].upper()] = fields[1]
    return out


class BoneMarrow(Builder):
    name = "bone-marrow"
    pretty_name = "Bone Marrow Cytomorphology (Matek et al. 2021): Expert-Annotated Bone-Marrow Cells"
    summary = ("171,375 expert-annotated single-cell images from bone-marrow smears of 945 patients with "
               "haematological diseases, 21 morphological classes")
    homepage = "https://doi.org/10.7937/TCIA.AXH3-T579"
    license = "cc-by-4.0"
    redistribution = "allowed"
    attribution = ("Matek C., Krappe S., Muenzenmayer C., Haferlach T., Marr C. (2021). An Expert-Annotated Dataset "
                   "of Bone Marrow Cytology in Hematologic Malignancies [Data set]. The Cancer Imaging Archive. "
                   "doi:10.7937/TCIA.AXH3-T579; licensed CC BY 4.0 (TCIA data citation required).")
    citation = """@misc{matek2021bm_data,
  author    = {Matek, Christian and Krappe, Sebastian and M{\\"u}nzenmayer, Christian and
               Haferlach, Torsten and Marr, Carsten},
  title     = {An Expert-Annotated Dataset of Bone Marrow Cytology in Hematologic Malignancies},
  year      = {2021},
  publisher = {The Cancer Imaging Archive},
  doi       = {10.7937/TCIA.AXH3-T579}
}
@article{matek2021highly,
  title   = {Highly accurate differentiation of bone marrow cell morphologies using deep neural networks
             on a large image data set},
  author  = {Matek, Christian and Krappe, Sebastian and M{\\"u}nzenmayer, Christian and
             Haferlach, Torsten and Marr, Carsten},
  journal = {Blood},
  volume  = {138},
  number  = {20},
  pages   = {1917--1927},
  year    = {2021},
  doi     = {10.1182/blood.2020010568}
}"""
    sources = (
        Source("bone-marrow-cell-classification.zip",
               url="https://www.kaggle.com/datasets/andrewmvd/bone-marrow-cell-classification", one_of="images",
               aliases=("archive.zip", "bone_marrow_cell_dataset/"),
               description="Kaggle mirror: abbreviations.csv + bone_marrow_cell_dataset/"),
        Source("BM_cytomorphology_data/", url="https://doi.org/10.7937/TCIA.AXH3-T579", one_of="images",
               description="TCIA original (6.8 GB of JPG, IBM Aspera download)"),
    )
    manual_download = """Either download the Kaggle mirror
(`kaggle datasets download -d andrewmvd/bone-marrow-cell-classification`, or the Download button on
https://www.kaggle.com/datasets/andrewmvd/bone-marrow-cell-classification; a Kaggle account is needed) and pass
the zip or its extracted folder with --raw, or download the TCIA collection
Bone-Marrow-Cytomorphology_MLL_Helmholtz_Fraunhofer (doi:10.7937/TCIA.AXH3-T579, IBM Aspera) and pass the
`BM_cytomorphology_data` folder. Or put it at $CYTOHUB_HOME/raw/bone-marrow."""
    task_categories = ("image-classification",)
    tags = ("hematology", "cytology", "bone-marrow", "leukemia", "lymphoma", "single-cell", "microscopy", "medical")
    organ = "bone marrow"
    stain = "May-Gruenwald-Giemsa / Pappenheim"
    preparation = "bone-marrow aspirate smear"
    scanner = "brightfield microscope, 40x objective with oil immersion"
    magnification = "40x"
    mpp = None
    num_images = 171375
    deidentification = ("the images are de-identified, as the publisher states (The Cancer Imaging Archive collection, "
                        "doi:10.7937/TCIA.AXH3-T579)")
    published = Published(
        rows=(171374, 171375), per_class=COUNTS, unit="single-cell images",
        source="TCIA collection page (171,375 images); per class: the published class table",
        note="TCIA states 171,375 images while the published per-class counts sum to 171,374.")
    layout = "verified"
    expected_layout = """
    bone-marrow-cell-classification.zip (or its folder; TCIA: BM_cytomorphology_data/)
      abbreviations.csv                        CODE;Name (optional)
      bone_marrow_cell_dataset/<CODE>/[<N-M>/]<CODE>_NNNNN.jpg
        CODE: ABE, ART, BAS, ... (21); N-M range folders: 0001-1000, ..., 10001-11000
"""
    assumptions = (
        "Only ABE is verified to be flat; any class folder may be flat or split into range folders named N-M "
        "(0001-1000, ..., 10001-11000 in classes over 10,000 images), and both are accepted (a file in a range "
        "folder must have a number inside that range).",
        "The second column name of abbreviations.csv is not published; the file is read as 'CODE;Name' after "
        "an optional 'Abbreviation;...' header, and only checked (codes must be the 21 known ones).",
        "The published per-class counts sum to 171,374 while TCIA states 171,375; full-scale synthetic data use "
        "the per-class counts.",
        "No patient identifiers are published with the images: rows carry no group and splits are by image.",
    )
    labels = tuple(Label(code, (name,), node) for code, name, _, node, _ in CLASSES)

    # ------------------------------------------------------------------ raw -> rows
    def examples(self, raw: RawTree) -> Iterator[dict]:
        for f in raw.named("abbreviations.csv"):
            parse_abbreviations(f.read_text(), f.path)
        codes = {c.lower(): c for c in CODES}
        files = raw.files(suffix=(".jpg", ".jpeg"))
        # one int64 per image (class, number): a million images cost 8 MB here, not a Python object each
        keys = np.empty(len(files), dtype=np.int64)
        for j, f in enumerate(files):
            parts = f.parts
            pos = [i for i, p in enumerate(parts[:-1]) if p.lower() in codes]
            if not pos:
                k = len(parts) - 3 if len(parts) >= 3 and RANGE_RE.match(parts[-2]) else len(parts) - 2
                folder = parts[k] if k >= 0 else "(none)"
                raise RawLayoutError(f"{f.path}: unknown class folder {folder!r}; " + layout.mismatch(
                    f"class folders {', '.join(CODES)}", layout.listing(raw, "/".join(parts[:max(k, 0)])),
                    under="/".join(parts[:max(k, 0)]) or DATA_FOLDER))
            i = pos[-1]
            code = codes[parts[i].lower()]
            between = parts[i + 1:-1]
            m = FILE_RE.match(f.name)
            if not m or m[1].upper() != code:
                raise RawLayoutError(f"{f.path}: file name is not {code}_<5 digits>.jpg")
            num = int(m[2])
            if len(between) > 1 or (between and not RANGE_RE.match(between[0])):
                raise RawLayoutError(f"{f.path}: expected {parts[i]}/<file> or {parts[i]}/<range such as "
                                     f"0001-1000 or 10001-11000>/<file>, found sub-folders {'/'.join(between)!r}")
            if between:
                lo, hi = (int(x) for x in RANGE_RE.match(between[0]).groups())
                if lo > hi:
                    raise RawLayoutError(f"{f.path}: range folder {between[0]} ends before it starts; expected N-M "
                                         "with N <= M, such as 10001-11000")
                if not lo <= num <= hi:
                    raise RawLayoutError(f"{f.path}: image number {num} is outside its range folder {between[0]}")
            keys[j] = CODES.index(code) * _KEY + num
        if not len(files):
            raise RawLayoutError(f"{raw.root}: no bone-marrow cell images found; expected {DATA_FOLDER}/<CODE>/"
                                 "[<range>/]<CODE>_NNNNN.jpg with CODE one of " + ", ".join(CODES)
                                 + layout.found(raw))
        order = np.argsort(keys, kind="stable")  # by class, then number
        ranked = keys[order]
        twice = np.flatnonzero(ranked[1:] == ranked[:-1])
        if len(twice):
            a, b = files[int(order[twice[0]])], files[int(order[twice[0] + 1])]
            code, num = divmod(int(ranked[twice[0]]), _KEY)
            raise RawLayoutError(f"{CODES[code]}_{num:05d} appears twice: {a.path} and {b.path}")
        del ranked, twice
        for start in range(0, len(order), 4096):  # a block of positions at a time, not a list of every one
            for j in order[start:start + 4096].tolist():
                f = files[j]
                code, num = divmod(int(keys[j]), _KEY)
                yield {"id": f"{CODES[code]}_{num:05d}", "image": f, "label": CODES[code], "source_path": f.path}

    # ------------------------------------------------------------------ synthetic raw layout
    def synthesize(self, root: Path, scale: str = "small", seed: int = 0) -> None:
        size = (250, 250) if scale == "full" else (64, 64)
        counts = synthetic_counts(scale)
        styles = {c[0]: c[4] for c in CLASSES}
        names = {c[0]: c[1] for c in CLASSES}

        pool = synth.ImagePool(scale)  # full scale: 32 drawn cells per class, reused under the 171,374 names

        def draw(code: str, i: int) -> bytes:
            img = blood_cell(synth.rng_for("bone-marrow", seed, code, i), size, styles[code])
            return synth.encode(img, "JPEG", quality=85)

        def entries():
            yield "abbreviations.csv", ("Abbreviation;Meaning\n" + "".join(
                f"{c};{names[c]}\n" for c in CODES)).encode("utf-8")
            for code in CODES:
                for i in range(1, counts[code] + 1):
                    sub = f"{range_folder(i, counts[code])}/" if counts[code] > 1000 else ""
                    yield (f"{DATA_FOLDER}/{code}/{sub}{code}_{i:05d}.jpg",
                           pool(code, i, lambda k, code=code: draw(code, k)))

        synth.write_zip(root / "bone-marrow-cell-classification.zip", entries(), compress=False)
        synth.write_marker(root, self.name, scale, seed)
