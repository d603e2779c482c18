"""AML-Cytomorphology_LMU: 18,365 single-cell crops of peripheral-blood leukocytes from 100 AML patients and 100
non-malignant controls (Matek et al. 2019, TCIA), 15 morphological classes.

Raw layout: `AML-Cytomorphology_LMU/<CLASS>/<CLASS>_<NNNN>.tiff` plus `annotations.dat` (one line per image:
`<CLASS>/<CLASS>_<NNNN>.tiff LABEL REANN1 REANN2`, single spaces, no header; `nan` = not re-annotated, `UNC` =
the re-annotator could not assign a class) and `abbreviations.txt`. One row per image; the two re-annotations
are kept in `extra`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from cytohub import layout, synth
from cytohub.builder import Builder, Label, Published, Source
from cytohub.errors import RawLayoutError
from cytohub.raw import RawFile, RawTree, text_lines
from cytohub.synthetic_pictures import blood_cell

G = "heme/granulocytic"
# code, name (abbreviations.txt, verbatim), published count, harmonized node, synthetic style
CLASSES = (
    ("BAS", "Basophil", 79, f"{G}/basophilic", "basophil"),
    ("EBO", "Erythroblast", 78, "heme/erythroid/erythroblast", "erythroid"),
    ("EOS", "Eosinophil", 424, f"{G}/eosinophilic", "eosinophil"),
    ("KSC", "Smudge cell", 15, "heme/smudge-cell", "smudge"),
    ("LYA", "Lymphocyte (atypical)", 11, "heme/lymphoid/lymphocyte/atypical", "lymphocyte"),
    ("LYT", "Lymphocyte (typical)", 3937, "heme/lymphoid/lymphocyte/typical", "lymphocyte"),
    ("MMZ", "Metamyelocyte", 15, f"{G}/neutrophilic/metamyelocyte", "myelocyte"),
    ("MOB", "Monoblast", 26, "heme/monocytic/monoblast", "blast"),
    ("MON", "Monocyte", 1789, "heme/monocytic/monocyte", "monocyte"),
    ("MYB", "Myelocyte", 42, f"{G}/neutrophilic/myelocyte", "myelocyte"),
    ("MYO", "Myeloblast", 3268, f"{G}/myeloblast", "blast"),
    ("NGB", "Neutrophil (band)", 109, f"{G}/neutrophilic/band", "band"),
    ("NGS", "Neutrophil (segmented)", 8484, f"{G}/neutrophilic/segmented", "segmented"),
    ("PMB", "Promyelocyte (bilobled)", 18, f"{G}/promyelocyte/bilobed", "bilobed"),
    ("PMO", "Promyelocyte", 70, f"{G}/promyelocyte", "promyelocyte"),
)
CODES = tuple(c[0] for c in CLASSES)
HARMONIZED = {c[0]: c[3] for c in CLASSES}  # every native class -> node (None would mean: no honest node)
COUNTS = {c[0]: c[2] for c in CLASSES}
NO_REANNOTATION, UNASSIGNABLE = "nan", "UNC"
IMAGE_ROOT = "AML-Cytomorphology_LMU"
ABBREVIATIONS_TXT = (
    "Abbreviations of morphological classes used in folder structure and annotation file\n"
    + "-" * 88 + "\n"
    + "".join(f"{code} {name}\n" for code, name, *_ in CLASSES)
    + "\nUNC Image that could not be assigned a class during re-annotation\nnan no re-annotation\n"
)
RELPATH_RE = re.compile(r"^(?P<folder>[A-Za-z]{3})/(?P<stem>(?P<code>[A-Za-z]{3})_(?P<num>\d{4}))\.tiff?$")


def parse_annotations(text: str, where: str) -> list[tuple[str, str, str | None, str | None]]:
    """annotations.dat -> [(relpath, label, reannotation_1, reannotation_2)], `nan` as None, in file order."""
    out, seen = [], {}
    allowed = set(CODES) | {UNASSIGNABLE, NO_REANNOTATION}
    for n, line in enumerate(text_lines(text, where), 1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 4:
            raise RawLayoutError(f"{where}, line {n}: {line!r} has {len(fields)} fields; expected 4: "
                                 "<CLASS>/<CLASS>_<NNNN>.tiff LABEL REANNOTATION1 REANNOTATION2")
        rel, label, r1, r2 = fields
        m = RELPATH_RE.match(rel)
        if not m or m["folder"] != m["code"]:
            raise RawLayoutError(f"{where}, line {n}: image path {rel!r} is not <CLASS>/<CLASS>_<NNNN>.tiff")
        if label not in CODES:
            raise RawLayoutError(f"{where}, line {n}: unknown class {label!r}; expected one of {', '.join(CODES)}")
        if m["folder"] != label:
            raise RawLayoutError(f"{where}, line {n}: {rel} is in folder {m['folder']} but labelled {label}")
        for value in (r1, r2):
            if value not in allowed:
                raise RawLayoutError(f"{where}, line {n}: unknown re-annotation {value!r}; expected a class code, "
                                     f"{UNASSIGNABLE} or {NO_REANNOTATION}")
        if rel in seen:
            raise RawLayoutError(f"{where}: {rel} is listed twice (lines {seen[rel]} and {n})")
        seen[rel] = n
        out.append((rel, label, None if r1 == NO_REANNOTATION else r1, None if r2 == NO_REANNOTATION else r2))
    if not out:
        raise RawLayoutError(f"{where}: no annotation lines; expected 18,365 lines like "
                             "'BAS/BAS_0001.tiff BAS nan nan'")
    return out


def check_abbreviations(text: str, where: str) -> dict[str, str]:
    """abbreviations.txt -> {code: name}; every class code must be one cytohub knows."""
    found = {}
    for line in text_lines(text, where):
        m = re.match(r"^([A-Za-z]{3})\s+(\S.*)$", line.strip())
        if m and not line.startswith("Abbreviations"):
            found[m[1]] = m[2]
    unknown = sorted(set(found) - set(CODES) - {UNASSIGNABLE, NO_REANNOTATION})
    if unknown:
        raise RawLayoutError(f"{where}: class codes {unknown} are not among the 15 published classes "
                             f"({', '.join(CODES)}); a different version of the corpus?")
    return found


def synthetic_lines(scale: str, seed: int) -> list[str]:
    """annotations.dat lines for synthetic data: full = the published counts, small = 3 per class; a mix of
    `nan nan`, `UNC UNC`, agreeing and disagreeing re-annotations as in the real file."""
    lines = []
    for code in CODES:
        for i in range(1, (COUNTS[code] if scale == "full" else 3) + 1):
            rng = synth.rng_for("aml-reann", seed, code, i)
            u = rng.random()
            if scale == "small":  # nan nan; agreeing (even classes) or disagreeing (odd); UNC UNC
                u = (0.0, 0.96 if CODES.index(code) % 2 else 0.92, 0.99)[i - 1]
            if u < 0.9:
                r1 = r2 = NO_REANNOTATION
            elif u < 0.95:
                r1, r2 = code, code
            elif u < 0.98:
                r1, r2 = CODES[(CODES.index(code) + 2) % len(CODES)], code
            else:
                r1 = r2 = UNASSIGNABLE
            lines.append(f"{code}/{code}_{i:04d}.tiff {code} {r1} {r2}")
    return lines


class AMLCytomorphologyLMU(Builder):
    name = "aml-cytomorphology-lmu"
    pretty_name = "AML-Cytomorphology_LMU: Single-cell Morphological Dataset of Leukocytes from AML Patients"
    summary = ("18,365 expert-labelled single-leukocyte images from peripheral blood smears of 100 AML patients "
               "and 100 controls, 15 morphological classes, with re-annotations")
    homepage = "https://www.cancerimagingarchive.net/collection/aml-cytomorphology_lmu/"
    license = "cc-by-3.0"
    redistribution = "allowed"
    attribution = ("Matek C., Schwarz S., Marr C., Spiekermann K. (2019). A Single-cell Morphological Dataset of "
                   "Leukocytes from AML Patients and Non-malignant Controls [Data set]. The Cancer Imaging Archive. "
                   "doi:10.7937/tcia.2019.36f5o9ld; licensed CC BY 3.0 (TCIA data citation required).")
    citation = """@misc{matek2019aml_data,
  author    = {Matek, Christian and Schwarz, Simone and Marr, Carsten and Spiekermann, Karsten},
  title     = {A Single-cell Morphological Dataset of Leukocytes from AML Patients and Non-malignant Controls},
  year      = {2019},
  publisher = {The Cancer Imaging Archive},
  doi       = {10.7937/tcia.2019.36f5o9ld}
}
@article{matek2019human,
  title   = {Human-level recognition of blast cells in acute myeloid leukaemia with convolutional neural networks},
  author  = {Matek, Christian and Schwarz, Simone and Spiekermann, Karsten and Marr, Carsten},
  journal = {Nature Machine Intelligence},
  volume  = {1},
  pages   = {538--544},
  year    = {2019},
  doi     = {10.1038/s42256-019-0101-9}
}"""
    sources = (
        Source(f"{IMAGE_ROOT}/", url="https://doi.org/10.7937/tcia.2019.36f5o9ld",
               description="image folder (about 11 GB of TIFF, downloaded from TCIA with IBM Aspera)"),
        Source("AML-CYTOMORPHOLOGY_LMU-annotations-dat.zip", url="https://doi.org/10.7937/tcia.2019.36f5o9ld",
               aliases=("annotations.dat",), description="annotations.dat (550,950 bytes unzipped, 18,365 lines)"),
        Source("abbreviations.txt", url="https://doi.org/10.7937/tcia.2019.36f5o9ld", required=False,
               description="class abbreviations"),
    )
    manual_download = """From the TCIA collection page https://www.cancerimagingarchive.net/collection/aml-cytomorphology_lmu/
(doi:10.7937/tcia.2019.36f5o9ld) download the images (IBM Aspera; the package unpacks to
`AML-Cytomorphology_LMU/<CLASS>/<CLASS>_NNNN.tiff`), the annotations
(AML-CYTOMORPHOLOGY_LMU-annotations-dat.zip, zipped or unzipped) and abbreviations.txt. Put them in one folder
and pass it with --raw (or put it at $CYTOHUB_HOME/raw/aml-cytomorphology-lmu)."""
    task_categories = ("image-classification",)
    tags = ("hematology", "cytology", "leukocytes", "acute-myeloid-leukemia", "peripheral-blood", "single-cell",
            "microscopy", "medical")
    organ = "peripheral blood"
    stain = None  # not stated in the sources we could read
    preparation = "peripheral blood smear"
    scanner = "M8 digital microscope / scanner (Precipoint), 100x oil immersion"
    magnification = "100x"
    mpp = None
    num_images = 18365
    published = Published(
        rows=18365, per_class=COUNTS, unit="single-cell images",
        source="TCIA collection page (18,365 images); per class: the label column of annotations.dat")
    layout = "verified"
    expected_layout = """
    <root>/
      annotations.dat                   <CLASS>/<CLASS>_NNNN.tiff LABEL REANN1 REANN2
      abbreviations.txt
      AML-Cytomorphology_LMU/<CLASS>/<CLASS>_NNNN.tiff    CLASS: BAS, EBO, EOS, ... (15)
"""
    assumptions = (
        "annotations.dat is authoritative: a TIFF it does not list is reported as skipped, and a listed image "
        "that is missing stops the build.",
        "TIFF bytes are passed through untouched (some TIFFs may carry an alpha channel; decoders handle it).",
        "No patient identifiers are published with the images, so rows carry no group and splits are by image.",
        "The stain is not stated in the sources we could read (blood smears are routinely Romanowsky-stained), "
        "so it is left empty.",
    )
    labels = tuple(Label(code, (name,), node) for code, name, _, node, _ in CLASSES)

    # ------------------------------------------------------------------ raw -> rows
    def examples(self, raw: RawTree) -> Iterator[dict]:
        hits = raw.named("annotations.dat")
        if not hits:
            raise RawLayoutError(f"{raw.root}: annotations.dat not found; expected it next to the {IMAGE_ROOT}/ "
                                 "folder (download AML-CYTOMORPHOLOGY_LMU-annotations-dat.zip from TCIA)"
                                 + layout.found(raw))
        if len(hits) > 1:
            raise RawLayoutError(f"{raw.root}: {len(hits)} files named annotations.dat "
                                 f"({', '.join(h.path for h in hits)}); expected exactly one")
        ann = hits[0]
        entries = parse_annotations(ann.read_text(encoding="ascii"), ann.path)
        for f in raw.named("abbreviations.txt"):
            check_abbreviations(f.read_text(), f.path)

        images: dict[str, RawFile] = {}
        for f in raw.files(suffix=(".tiff", ".tif")):
            key = "/".join(f.parts[-2:])
            if key in images:
                raise RawLayoutError(f"two copies of {key}: {images[key].path} and {f.path}")
            images[key] = f
        missing = [rel for rel, *_ in entries if rel not in images]
        if missing:
            raise RawLayoutError(f"{ann.path} lists {len(missing)} images not found under {raw.root} (e.g. "
                                 f"{', '.join(missing[:3])}); expected {IMAGE_ROOT}/<CLASS>/<CLASS>_NNNN.tiff")
        listed = {rel for rel, *_ in entries}
        for key, f in sorted(images.items()):
            if key not in listed:
                raw.skip(f, "TIFF not listed in annotations.dat")
        for rel, label, r1, r2 in entries:
            f = images[rel]
            yield {
                "id": rel.split("/")[1].rsplit(".", 1)[0],
                "image": f,
                "label": label,
                "source_path": f.path,
                "extra": {"reannotation_1": r1, "reannotation_2": r2},
            }

    # ------------------------------------------------------------------ synthetic raw layout
    def synthesize(self, root: Path, scale: str = "small", seed: int = 0) -> None:
        size = (400, 400) if scale == "full" else (72, 72)
        styles = {c[0]: c[4] for c in CLASSES}
        lines = synthetic_lines(scale, seed)
        pool = synth.ImagePool(scale)  # full scale: 32 drawn cells per class, reused under the 18,365 names
        rels = {}

        def draw(code: str, k: int) -> bytes:
            img = blood_cell(synth.rng_for("aml", seed, rels[code][k]), size, styles[code])
            if k == 1:  # one RGBA TIFF per class, as some of the real ones may be
                img = img.convert("RGBA")
            return synth.encode(img, "TIFF")

        for line in lines:
            rel, code = line.split()[:2]
            rels.setdefault(code, []).append(rel)
        seen: dict[str, int] = {}
        for line in lines:
            rel, code = line.split()[:2]
            k = seen[code] = seen.get(code, -1) + 1
            synth.write_bytes(root / IMAGE_ROOT / rel, pool(code, k, lambda i, code=code: draw(code, i)))
        (root / "annotations.dat").write_bytes(("\n".join(lines) + "\n").encode("ascii"))
        (root / "abbreviations.txt").write_bytes(ABBREVIATIONS_TXT.encode("ascii"))
        synth.write_marker(root, self.name, scale, seed)
