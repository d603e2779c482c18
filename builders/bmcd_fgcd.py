"""BMCD-FGCD: Bone Marrow Cell Dataset for Fine-Grained Classification (Chen et al. 2024, SCKansformer),
Zhejiang Hospital, Hangzhou. 92,335 bone-marrow cell images in 40 class IDs (8 of them empty), official
train (73,877) / test (18,458) split.

Raw layout (reported by a fork's README): `train/<class folder>/<image>` and `test/<class folder>/<image>`. The
download's class folders are bare integers 0-18 and 23-35 that follow the published IDs up to 28 and then
number the remaining non-empty classes in another order (`DOWNLOAD_FOLDERS`, inferred from per-class counts
printed by a real training run); named folders are matched by name (spelling-tolerant). An unmatched folder or
an unknown number is an error. One row per image; `label` index == published ID.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from pathlib import Path

from cytohub import layout, synth
from cytohub.builder import Builder, Label, Published, Source
from cytohub.errors import RawLayoutError
from cytohub.formats.naming import words_key as norm_name
from cytohub.raw import RawFile, RawTree
from cytohub.synthetic_pictures import blood_cell

G = "heme/granulocytic"
GRAN, RED, LYM, MONO, MEGA, PLAS, UNC = ("Granulocytic system", "Red blood cell system", "Lymphatic",
                                         "Mononuclear lineage", "Meganuclear system", "Plasma cells",
                                         "Uncategorized System")
# ID, published name (Detail.png), lineage group, train, test, harmonized node, fork spelling, synthetic style
CLASSES = (
    (0, "Haemocytoblast", None, 4, 1, "heme/progenitor", None, "blast"),
    (1, "Myeloblast", GRAN, 1562, 390, f"{G}/myeloblast", None, "blast"),
    (2, "Promyelocyte", GRAN, 1443, 360, f"{G}/promyelocyte", None, "promyelocyte"),
    (3, "Neutrophilic myelocyte", GRAN, 4342, 1085, f"{G}/neutrophilic/myelocyte", None, "myelocyte"),
    (4, "Neutrophilic metamyelocyte", GRAN, 11254, 2811, f"{G}/neutrophilic/metamyelocyte", None, "myelocyte"),
    (5, "Neutrophilic granulocyte band form", GRAN, 11227, 2807, f"{G}/neutrophilic/band", None, "band"),
    (6, "Neutrophilic granulocyte segmented form", GRAN, 7402, 1850, f"{G}/neutrophilic/segmented", None,
     "segmented"),
    (7, "Acidophilus in young", GRAN, 99, 25, f"{G}/eosinophilic/myelocyte", "Acidophil in young", "eosinophil"),
    (8, "Acidophilic late young", GRAN, 738, 184, f"{G}/eosinophilic/metamyelocyte", "Acidophil late young",
     "eosinophil"),
    (9, "Acidophilic rod-shaped nucleus", GRAN, 132, 33, f"{G}/eosinophilic/band", "Acidophillic rod-shaped nucleus",
     "eosinophil"),
    (10, "Eosinophilic phloem granulocyte", GRAN, 548, 137, f"{G}/eosinophilic/segmented",
     "Eosinophillic phloem granulocyte", "eosinophil"),
    (11, "Basophilic in young", GRAN, 16, 4, f"{G}/basophilic/myelocyte", "Basophillic in young", "basophil"),
    (12, "Basophilic late young", GRAN, 32, 8, f"{G}/basophilic/metamyelocyte", "Basophillic late young",
     "basophil"),
    (13, "Basophilic rod-shaped nucleus", GRAN, 4, 1, f"{G}/basophilic/band", "Basophillic rod-shaped nucleus",
     "basophil"),
    (14, "Basophilic lobule nucleus", GRAN, 24, 6, f"{G}/basophilic/segmented", "Basophllic lobule nucleus",
     "basophil"),
    (15, "Pronormoblast", RED, 90, 22, "heme/erythroid/proerythroblast", None, "erythroid"),
    (16, "Prorubricyte", RED, 263, 65, "heme/erythroid/erythroblast/basophilic", None, "erythroid"),
    (17, "Polychromatic erythroblast", RED, 5744, 1435, "heme/erythroid/erythroblast/polychromatic", None,
     "erythroid"),
    (18, "Metarubricyte", RED, 8194, 2048, "heme/erythroid/erythroblast/orthochromatic", None, "erythroid"),
    (19, "Giant early erythrocyte", RED, 0, 0, "heme/erythroid/megaloblast/early", None, "erythroid"),
    (20, "Giant medium erythrocyte", RED, 0, 0, "heme/erythroid/megaloblast/intermediate", None, "erythroid"),
    (21, "Giant late erythrocyte", RED, 0, 0, "heme/erythroid/megaloblast/late", None, "erythroid"),
    (22, "Primordial lymphocyte", LYM, 0, 0, "heme/lymphoid/immature/lymphoblast", None, "blast"),
    (23, "Prolymphocyte", LYM, 4586, 1146, "heme/lymphoid/immature/prolymphocyte", None, "lymphocyte"),
    (24, "Mature lymphocyte", LYM, 11773, 2943, "heme/lymphoid/lymphocyte", None, "lymphocyte"),
    (25, "Heterotypic lymphocyte", LYM, 266, 66, "heme/lymphoid/lymphocyte/atypical", "Hetertypic lymphocyte",
     "lymphocyte"),
    (26, "Primitive monocyte", MONO, 261, 65, "heme/monocytic/monoblast", None, "blast"),
    (27, "Promonocyte", MONO, 964, 241, "heme/monocytic/promonocyte", None, "monocyte"),
    (28, "Mature monocyte", MONO, 2304, 575, "heme/monocytic/monocyte", None, "monocyte"),
    (29, "Megakaryoblast", MEGA, 0, 0, "heme/megakaryocytic/megakaryoblast", None, "megakaryocyte"),
    (30, "Promegakaryocyte", MEGA, 0, 0, "heme/megakaryocytic/promegakaryocyte", None, "megakaryocyte"),
    (31, "Granulocyte megakaryocyte", MEGA, 20, 5, "heme/megakaryocytic/megakaryocyte/granular", None,
     "megakaryocyte"),
    (32, "Thromocytogenic megakaryocyte", MEGA, 0, 0, "heme/megakaryocytic/megakaryocyte/thrombocytogenic", None,
     "megakaryocyte"),
    (33, "Naked megakaryocyte", MEGA, 4, 1, "heme/megakaryocytic/megakaryocyte/naked-nucleus", None,
     "megakaryocyte"),
    (34, "Plasmablast", PLAS, 8, 2, "heme/lymphoid/plasma/plasmablast", None, "plasma"),
    (35, "Infantile plasmocyte", PLAS, 215, 53, "heme/lymphoid/plasma/immature", "infantile plasmocyte", "plasma"),
    (36, "Mature plasmocyte", PLAS, 190, 47, "heme/lymphoid/plasma/mature", "Matrue plasmocyte", "plasma"),
    (37, "Bistiocyte", UNC, 4, 1, "heme/macrophage", None, "monocyte"),
    (38, "Juvenile cell", UNC, 164, 41, "heme/immature", None, "blast"),
    (39, "Unidentified cell", UNC, 0, 0, "heme/unidentifiable", None, "smudge"),
)
NAMES = tuple(c[1] for c in CLASSES)
HARMONIZED = {c[1]: c[5] for c in CLASSES}
SPLITS = ("train", "test")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
ROOT = "BMCD-FGCD"
_BY_KEY = {}
for _c in CLASSES:
    for _spelling in (_c[1], _c[6]):
        if _spelling:
            _BY_KEY[norm_name(_spelling)] = _c[0]
_LEAD_ID = re.compile(r"^\s*(\d{1,2})(?:\s*[._)\-:]\s*|\s+|$)(.*)$")
# The download's bare-integer class folders -> published class ID. Folders 0-18 and 23-28 are the published IDs;
# 29-35 hold the remaining non-empty classes in another order. Inferred (not published): per-class counts printed
# by a real training run on the download match the published table only under this reading (folders 29-35 hold
# 755 images: 10 + 268 + 237 + 5 + 205 + 25 + 5). Numbers 19-22 and 36-39 do not occur.
DOWNLOAD_FOLDERS = {**{n: n for n in (*range(19), *range(23, 29))},
                    29: 34, 30: 35, 31: 36, 32: 37, 33: 38, 34: 31, 35: 33}
FOLDER_OF_CLASS = {cid: folder for folder, cid in DOWNLOAD_FOLDERS.items()}


def class_id(folder: str) -> int | None:
    """The published class ID of a class folder, else None. A bare number (`29`, `07`) is read with the
    download's own numbering (`DOWNLOAD_FOLDERS`: 29 -> 34 Plasmablast); a name by the published or the fork's
    spelling (case and punctuation ignored) or a close spelling; a number with a name (`07_Acidophil in young`)
    only when the name agrees with the number read either as a download folder or as a published ID."""
    m = _LEAD_ID.match(folder)
    if m:
        num, rest = int(m[1]), m[2]
        if not norm_name(rest):
            return DOWNLOAD_FOLDERS.get(num)
        by_name = class_id(rest)
        return by_name if by_name is not None and by_name in (num, DOWNLOAD_FOLDERS.get(num)) else None
    key = norm_name(folder)
    if key in _BY_KEY:
        return _BY_KEY[key]
    best: dict[int, float] = {}  # class ID -> best similarity of any of its spellings
    for spelling, cid in _BY_KEY.items():
        best[cid] = max(best.get(cid, 0.0), difflib.SequenceMatcher(None, key, spelling).ratio())
    ranked = sorted(best.items(), key=lambda kv: -kv[1])
    if ranked[0][1] >= 0.88 and ranked[0][1] - ranked[1][1] >= 0.04:  # close, and clearly closer than the rest
        return ranked[0][0]
    return None


def full_scale_rows() -> dict[str, int]:
    """Rows per split of a full-scale synthetic build: the published train/test counts."""
    return {"train": sum(c[3] for c in CLASSES), "test": sum(c[4] for c in CLASSES)}


def synthetic_counts(scale: str) -> dict[tuple[str, int], int]:
    """Images per (split, class ID): full = the published table; small = 3 train + 1 test per non-empty class."""
    out = {}
    for cid, _, _, train, test, *_ in CLASSES:
        if train + test:
            out[("train", cid)] = train if scale == "full" else 3
            out[("test", cid)] = test if scale == "full" else 1
    return out


class BMCDFGCD(Builder):
    name = "bmcd-fgcd"
    pretty_name = "BMCD-FGCD: Bone Marrow Cell Dataset for Fine-Grained Classification"
    summary = ("92,335 bone-marrow cell images from Zhejiang Hospital in 40 fine-grained lineage/maturation "
               "classes (32 non-empty), official train/test split")
    homepage = "https://github.com/JustlfC03/SCKansformer"
    license = "unknown"
    redistribution = "forbidden"
    attribution = ("Chen Y. et al., SCKansformer (IEEE JBHI 2024); BMCD-FGCD built with the Department of "
                   "Hematology, Zhejiang Hospital, Hangzhou. The authors ask users to cite their article.")
    citation = """@article{chen2024sckansformer,
  title   = {SCKansformer: Fine-grained classification of bone marrow cells via Kansformer backbone and
             hierarchical attention mechanisms},
  author  = {Chen, Yifei and Zhu, Zhu and Zhu, Shenghao and Qiu, Linwei and Zou, Binfeng and Jia, Fan and
             Zhu, Yunpeng and Zhang, Chenyan and Fang, Zhaojie and Qin, Feiwei and others},
  journal = {IEEE Journal of Biomedical and Health Informatics},
  year    = {2024},
  note    = {arXiv:2406.09931}
}"""
    sources = (
        Source("BMCD-FGCD", url="https://drive.google.com/file/d/1NrbK-OZCgTiFhWqeboaq8OVFXPNONegv/view?usp=sharing",
               name_published=False,
               description="Google Drive file (name and archive type not published) holding train/ and test/ "
                           "folders with one sub-folder per class"),
    )
    manual_download = """The dataset is linked from the README of https://github.com/JustlfC03/SCKansformer
(Google Drive: https://drive.google.com/file/d/1NrbK-OZCgTiFhWqeboaq8OVFXPNONegv/view?usp=sharing). Download
it, and pass the archive or the extracted folder (the one holding train/ and test/) with --raw, or put it at
$CYTOHUB_HOME/raw/bmcd-fgcd. The authors ask that you cite their article; no data licence is stated, so the
built dataset is for local use and must not be re-published."""
    task_categories = ("image-classification",)
    tags = ("hematology", "cytology", "bone-marrow", "fine-grained", "single-cell", "microscopy", "medical")
    organ = "bone marrow"
    stain = None
    preparation = "bone-marrow smear"
    scanner = None
    magnification = None
    mpp = None
    num_images = 92335
    published = Published(
        rows=92335, rows_per_split={s: sum(c[3 + i] for c in CLASSES) for i, s in enumerate(SPLITS)},
        per_class={c[1]: c[3] + c[4] for c in CLASSES}, unit="cell images",
        source="the class table of the SCKansformer repository (img/Detail.png)")
    layout = "unverified"
    expected_layout = """
    BMCD-FGCD.zip (or its folder)/
      train/<class folder>/<image>.png      class folder: 0-18, 23-35 (the download's numbers) or a class name
      test/<class folder>/<image>.png
"""
    assumptions = (
        "Layout `train/<class folder>/<image>` and `test/<class folder>/<image>` comes from a third-party fork's "
        "README; the archive name and type (a zip is assumed in synthetic data) are not published.",
        "Class folders of the download are bare integers 0-18 and 23-35. Folders 0-18 and 23-28 are taken as the "
        "published IDs; 29 = Plasmablast (ID 34), 30 = Infantile plasmocyte (35), 31 = Mature plasmocyte (36), "
        "32 = Bistiocyte (37), 33 = Juvenile cell (38), 34 = Granulocyte megakaryocyte (31), 35 = Naked "
        "megakaryocyte (33). This is inferred, not published: per-class counts printed by a real training run "
        "match the published table only under this reading (folders 29-35: 755 images). Any other number is an "
        "error. Named folders (published or fork spellings such as 'Matrue plasmocyte', or close spellings, "
        "optionally after a number that agrees) are accepted too; any other folder is an error.",
        "Cells are PNG, RGB, of varying size (170-264 px a side), as the same training run shows; "
        ".jpg/.jpeg/.bmp/.tif/.tiff are accepted too. Synthetic data use PNG, RGB, 170-264 px.",
        "Image file names are unknown: row ids are `<split>-<ID>-<file name>`; synthetic files are numbered.",
        "The 8 published IDs with no images (19-22, 29, 30, 32, 39) are kept as classes so that the label "
        "index equals the published ID; they have no rows.",
        "The English class names translate Chinese haematology terms; the harmonized mapping reads them as "
        "myelocyte ('in young'), metamyelocyte ('late young'), band ('rod-shaped nucleus'), segmented "
        "('phloem'/'lobule' nucleus), megaloblast ('giant ... erythrocyte'), histiocyte ('Bistiocyte') and "
        "unclassified immature cell ('Juvenile cell').",
        "No data licence is stated (the code is MIT): redistribution is treated as not allowed.",
        "No patient or slide identifiers are published: rows carry no group.",
    )
    labels = tuple(Label(name, (group, name) if group else (name,), node)
                   for _, name, group, _, _, node, _, _ in CLASSES)
    splits = SPLITS

    # ------------------------------------------------------------------ raw -> rows
    def examples(self, raw: RawTree) -> Iterator[dict]:
        found: list[tuple[int, int, str, str, RawFile]] = []
        folder_ids: dict[str, int] = {}
        for f in raw.files(suffix=IMAGE_SUFFIXES):
            parts = f.parts
            pos = [i for i, p in enumerate(parts[:-1]) if p.lower() in SPLITS]
            if not pos:
                raise RawLayoutError(f"{f.path}: not inside a train/ or test/ folder; expected "
                                     "train/<class folder>/<image> and test/<class folder>/<image>"
                                     + layout.found(raw, f.parts[0] if len(f.parts) > 1 else ""))
            i = pos[-1]
            if i != len(parts) - 3:
                raise RawLayoutError(f"{f.path}: expected {parts[i]}/<class folder>/<image>, one class folder "
                                     f"directly below {parts[i]}/")
            split, folder = parts[i].lower(), parts[-2]
            if folder not in folder_ids:
                cid = class_id(folder)
                if cid is None and folder.strip().isdigit():
                    raise RawLayoutError(f"{f.parent}: unknown numbered class folder {folder!r}; the download's "
                                         "numbered folders are 0-18 and 23-35 (29-35 = IDs 34, 35, 36, 37, 38, "
                                         "31, 33)")
                if cid is None:
                    raise RawLayoutError(f"{f.parent}: unknown class folder {folder!r}; " + layout.mismatch(
                        "class folders 0-18, 23-35 (the download's numbers) or one of the 40 published classes "
                        "by name: " + "; ".join(f"{c[0]} {c[1]}" for c in CLASSES),
                        layout.listing(raw, "/".join(parts[:i + 1])), under="/".join(parts[:i + 1])))
                folder_ids[folder] = cid
            found.append((SPLITS.index(split), folder_ids[folder], folder, f.name, f))
        if not found:
            raise RawLayoutError(f"{raw.root}: no BMCD-FGCD images found; expected train/<class folder>/<image> "
                                 "and test/<class folder>/<image>" + layout.found(raw))
        ids: dict[str, RawFile] = {}
        for s, cid, folder, _, f in sorted(found, key=lambda t: t[:4]):
            row_id = f"{SPLITS[s]}-{cid:02d}-{f.name}"
            if row_id in ids:
                raise RawLayoutError(f"two images give the row id {row_id}: {ids[row_id].path} and {f.path} "
                                     "(two folders of the same class?)")
            ids[row_id] = f
            yield {"id": row_id, "image": f, "label": NAMES[cid], "split": SPLITS[s], "source_path": f.path,
                   "extra": {"class_id": cid, "class_folder": folder}}

    # ------------------------------------------------------------------ synthetic raw layout
    def synthesize(self, root: Path, scale: str = "small", seed: int = 0) -> None:
        style = {c[0]: c[7] for c in CLASSES}
        pool = synth.ImagePool(scale)  # full scale: 32 drawn cells per class and split, reused

        def draw(split: str, cid: int, k: int) -> bytes:
            rng = synth.rng_for("bmcd-fgcd", seed, split, cid, k)
            side = int(rng.integers(170, 265))  # varied sizes, as in the download
            return synth.encode(blood_cell(rng, (side, int(rng.integers(170, 265))), style[cid]), "PNG")

        def entries():
            for (split, cid), n in synthetic_counts(scale).items():
                for k in range(1, n + 1):
                    data = pool((split, cid), k, lambda i, split=split, cid=cid: draw(split, cid, i))
                    yield f"{ROOT}/{split}/{FOLDER_OF_CLASS[cid]}/{k:05d}.png", data

        synth.write_zip(root / f"{ROOT}.zip", entries(), compress=False)
        synth.write_marker(root, self.name, scale, seed)
