"""HiCervix: hierarchical cervical cytology classification (Cai et al., IEEE TMI 2024).

40,229 ThinPrep cell crops in three flat folders `train/`, `val/`, `test/` of `<uuid>.jpg`, labelled by
`train.csv`, `val.csv`, `test.csv` (`image_name,class_name,class_id,level_1,level_2,level_3`). The label
tree has 3 levels; `class_name` is the finest node the annotator gave, which may be an internal node
(`AGC`, `AGC-NOS`, `ADC`): such rows keep a shorter `label_path`. The glossary `hierarchy_names.csv`
(UTF-8 with BOM, CRLF; Chinese and English names) lives in the code repository and is read when present.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from cytohub import layout, synth
from cytohub.builder import Builder, Label, Published, Source
from cytohub.errors import RawFileError, RawLayoutError
from cytohub.formats import csvfile
from cytohub.formats.naming import folder_name
from cytohub.raw import RawFile, RawTree

HEADER = ["image_name", "class_name", "class_id", "level_1", "level_2", "level_3"]
GLOSSARY_HEADER = ["中文名", "英文名", "abbr.", "class_id"]
SPLITS = {"train": "train", "val": "validation", "test": "test"}  # file/folder name -> cytohub split
# (class_id, class_name, path in the tree, Bethesda node, published train/val/test counts)
CLASSES = (
    (0, "Normal", ("negative", "Normal"), "NILM", (2409, 354, 691)),
    (1, "ECC", ("negative", "ECC"), "NILM/glandular", (1601, 223, 448)),
    (2, "RPC", ("negative", "RPC"), "NILM/reactive", (1459, 191, 461)),
    (3, "MPC", ("negative", "MPC"), "NILM/squamous/metaplastic", (1126, 151, 314)),
    (4, "PG", ("negative", "PG"), "NILM/squamous", (1093, 143, 327)),
    (5, "Atrophy", ("negative", "Atrophy"), "NILM/atrophy", (1049, 138, 297)),
    (6, "EMC", ("negative", "EMC"), "NILM/glandular", (1098, 151, 280)),
    (7, "HCG", ("negative", "HCG"), "NILM", (625, 84, 178)),
    (8, "ASC-US", ("ASC", "ASC-US"), "ASC-US", (1762, 284, 553)),
    (9, "LSIL", ("ASC", "LSIL"), "LSIL", (1208, 188, 348)),
    (10, "ASC-H", ("ASC", "ASC-H"), "ASC-H", (977, 152, 308)),
    (11, "HSIL", ("ASC", "HSIL"), "HSIL", (1369, 203, 416)),
    (12, "SCC", ("ASC", "SCC"), "SCC", (765, 105, 202)),
    (13, "AGC", ("AGC",), "AGC", (1491, 191, 407)),
    (14, "AGC-NOS", ("AGC", "AGC-NOS"), "AGC", (1535, 229, 441)),
    (15, "AGC-FN", ("AGC", "AGC-FN"), "AGC", (783, 113, 218)),
    (16, "ADC", ("AGC", "ADC"), "Adenocarcinoma", (936, 118, 257)),
    (17, "AGC-ECC-NOS", ("AGC", "AGC-NOS", "AGC-ECC-NOS"), "AGC", (762, 114, 189)),
    (18, "AGC-EMC-NOS", ("AGC", "AGC-NOS", "AGC-EMC-NOS"), "AGC", (170, 27, 56)),
    (19, "ADC-ECC", ("AGC", "ADC", "ADC-ECC"), "Adenocarcinoma", (169, 25, 50)),
    (20, "ADC-EMC", ("AGC", "ADC", "ADC-EMC"), "Adenocarcinoma", (77, 10, 21)),
    (21, "FUNGI", ("microbe", "FUNGI"), "NILM/organism/candida", (1453, 204, 390)),
    (22, "ACTINO", ("microbe", "ACTINO"), "NILM/organism/actinomyces", (1379, 207, 432)),
    (23, "TRI", ("microbe", "TRI"), "NILM/organism/trichomonas", (1213, 170, 314)),
    (24, "HSV", ("microbe", "HSV"), "NILM/organism/herpes", (872, 125, 251)),
    (25, "CC", ("microbe", "CC"), "NILM/organism/bacterial-vaginosis", (779, 118, 202)),
)
SPLIT_SIZES = {"train": 28160, "val": 4018, "test": 8051}
# hierarchy_names.csv of the code repository, in its order: (Chinese name, English name as published, abbr.)
GLOSSARY = (
    ("其他正常细胞", "Normal cell ", "Normal"), ("宫颈管细胞", "Endocervical cell", "ECC"),
    ("修复细胞", "Repair cell ", "RPC"), ("化生细胞", "Metaplasia cell", "MPC"),
    ("糖原溶解细胞", "Pseudokoilocytes by glycogen", "PG"), ("萎缩性改变", "Atrophy", "Atrophy"),
    ("子宫内膜细胞", "Endometrial cell", "EMC"), ("深染细胞团", "Hyperchromatic crowded groups", "HCG"),
    ("ASC-US", "Atypical squamous cells of undetermined significance ", "ASC-US"),
    ("LSIL", "Low-grade squamous intraepithelial lesion", "LSIL"),
    ("ASC-H", "Atypical squamous cells, cannot exclude high-grade squamous intraepithelial lesion", "ASC-H"),
    ("HSIL", "High-grade squamous intraepithelial lesion", "HSIL"), ("SCC", "Squamous cell carcinoma", "SCC"),
    ("AGC", "Atypical glandular cell", "AGC"),
    ("AGC-NOS", "Atypical glandular cell- not otherwise specified", "AGC-NOS"),
    ("AGC-FN", "Atypical glandular cell- favor neoplastic", "AGC-FN"), ("ADC", "Adenocarcinoma", "ADC"),
    ("非典型颈管腺细胞", "Atypical glandular cell(endocervical cell)- not otherwise specified", "AGC-ECC-NOS"),
    ("非典型子宫内膜细胞", "Atypical glandular cell(endometrial cell)- not otherwise specified", "AGC-EMC-NOS"),
    ("颈管腺癌", "Adenocarcinoma(endocervical cell)", "ADC-ECC"),
    ("子宫内膜腺癌", "Adenocarcinoma(endometrial cell)", "ADC-EMC"),
    ("微生物", "Organisms", "Organisms"),
    ("念珠菌", "Fungal organisms morphologically consistent with Candida spp.", "FUNGI"),
    ("放线菌", "Bacteria morphologically consistent with Actinomyces spp.", "ACTINO"),
    ("滴虫", "Trichomonas vaginalis ", "TRI"),
    ("疱疹病毒感染", "Cellular changes consistent with herpes simplex virus", "HSV"),
    ("细菌性阴道病", "Coccobacilli/Shift in flora suggestive of bacterial vaginosis", "CC"),
)
_BY_NAME = {name: (cid, path) for cid, name, path, _, _ in CLASSES}
_ENGLISH = {abbr: en.strip() for _, en, abbr in GLOSSARY}


def _split_of_csv(f: RawFile) -> str | None:
    return f.stem.lower() if f.stem.lower() in SPLITS and f.suffix == ".csv" else None


def read_split_csv(f: RawFile) -> list[tuple[int, str, str, int]]:
    """(line number, image name, class name, class id) of every row, checked against the published tree."""
    records = csvfile.records(f, "utf-8-sig")
    header = next(records, (1, None))[1]
    if header is None or [h.strip() for h in header] != HEADER:
        raise RawLayoutError(f"{f.path}: header {header!r}; expected {','.join(HEADER)}")
    out = []
    for line, rec in records:
        if not rec or all(not v.strip() for v in rec):
            continue
        if len(rec) != len(HEADER):
            raise RawLayoutError(f"{f.path} line {line}: {len(rec)} fields, expected {len(HEADER)} ({rec!r})")
        image, name, cid, *levels = (v.strip() for v in rec)
        if not image.lower().endswith(".jpg") or "/" in image or "\\" in image:
            raise RawLayoutError(f"{f.path} line {line}: image_name {image!r}; expected a file name <uuid>.jpg")
        if name not in _BY_NAME:
            raise RawLayoutError(f"{f.path} line {line}: unknown class_name {name!r}; expected one of "
                                 f"{', '.join(_BY_NAME)}")
        known_id, path = _BY_NAME[name]
        if cid != str(known_id):
            raise RawLayoutError(f"{f.path} line {line}: class_id {cid!r} for {name}; HiCervix uses {known_id}")
        if levels != [*path, "", "", ""][:3]:
            raise RawLayoutError(f"{f.path} line {line}: levels {levels} for {name}; expected "
                                 f"{list(path)} (level_1, level_2, level_3, empty where the path stops)")
        out.append((line, image, name, known_id))
    return out


def read_glossary(f: RawFile) -> dict[str, tuple[str, str]]:
    """hierarchy_names.csv -> abbr. -> (Chinese name, English name stripped)."""
    rows = list(csvfile.records(f, "utf-8-sig"))
    if not rows or [h.strip() for h in rows[0][1]] != GLOSSARY_HEADER:
        raise RawLayoutError(f"{f.path}: header {rows[0][1] if rows else None!r}; expected "
                             f"{','.join(GLOSSARY_HEADER)}")
    out = {}
    for line, rec in rows[1:]:
        if not rec or all(not v.strip() for v in rec):
            continue
        if len(rec) < 3:
            raise RawLayoutError(f"{f.path} line {line}: {rec!r}; expected Chinese name, English name, abbr.")
        out[rec[2].strip()] = (rec[0].strip(), rec[1].strip())
    return out



def full_scale_rows() -> dict[str, int]:
    """Rows per split of a full-scale synthetic build: the published per-class counts of each split."""
    return {SPLITS[split]: sum(c[4][k] for c in CLASSES) for k, split in enumerate(SPLITS)}

class HiCervix(Builder):
    name = "hicervix"
    pretty_name = "HiCervix: Hierarchical Cervical Cytology Classification"
    version = "1.0.0"
    summary = ("40,229 ThinPrep cervical cell crops in a 3-level label tree (26 labelled nodes), with official "
               "train/val/test splits")
    homepage = "https://zenodo.org/records/11087263"
    license = "other"
    license_id = "hicervix-terms"
    license_name = "HiCervix terms: GPL-3.0, non-commercial academic use only"
    license_link = "https://github.com/Scu-sen/HiCervix"
    redistribution = "gated"
    attribution = ("Cai D. et al., HiCervix (Zenodo record 11087263; code github.com/Scu-sen/HiCervix); released "
                   "under GPL-3.0 for non-commercial academic purposes.")
    citation = """@article{cai2024hicervix,
  author  = {Cai, De and Chen, Jie and Zhao, Junhan and Xue, Yuan and Yang, Sen and Yuan, Wei and Feng, Min and
             Weng, Haiyan and Liu, Shuguang and Peng, Yulong and Zhu, Junyou and Wang, Kanran and Jackson, Christopher
             and Tang, Hongping and Huang, Junzhou and Wang, Xiyue},
  journal = {IEEE Transactions on Medical Imaging},
  title   = {HiCervix: An Extensive Hierarchical Dataset and Benchmark for Cervical Cytology Classification},
  year    = {2024},
  doi     = {10.1109/TMI.2024.3419697}
}"""
    sources = (
        *(Source(name, url="https://zenodo.org/records/11087263", name_published=False, description=text)
          for name, text in (
              ("train.csv", "28,160 rows: image_name,class_name,class_id,level_1,level_2,level_3"),
              ("val.csv", "4,018 rows"),
              ("test.csv", "8,051 rows"),
              ("train/", "28,160 <uuid>.jpg cell crops"),
              ("val/", "4,018 <uuid>.jpg cell crops"),
              ("test/", "8,051 <uuid>.jpg cell crops"))),
        Source("hierarchy_names.csv", required=False,
               url="https://github.com/Scu-sen/HiCervix/tree/main/dataset/hierarchy_classification/version2023",
               description="optional glossary (Chinese and English class names), from the code repository"),
    )
    manual_download = """Download every file of the Zenodo record https://zenodo.org/records/11087263 into one
folder (archives may stay packed) so that it holds train/, val/ and test/ folders of <uuid>.jpg images and
train.csv, val.csv and test.csv, then pass that folder with --raw (or put it at $CYTOHUB_HOME/raw/hicervix).
Optionally add hierarchy_names.csv from github.com/Scu-sen/HiCervix (dataset/hierarchy_classification/
version2023/) to get the English and Chinese class names in each row's `extra`.
Use is restricted to non-commercial academic purposes."""
    task_categories = ("image-classification",)
    tags = ("cytology", "cervical-cancer", "liquid-based-cytology", "thinprep", "papanicolaou",
            "hierarchical-classification", "microscopy", "medical")
    organ = "uterine cervix"
    stain = "Papanicolaou"
    preparation = "liquid-based cytology (ThinPrep / TCT)"
    num_images = 40229
    published = Published(
        rows=40229, rows_per_split={"train": SPLIT_SIZES["train"], "validation": SPLIT_SIZES["val"],
                                    "test": SPLIT_SIZES["test"]},
        per_class={c[1]: sum(c[4]) for c in CLASSES}, files=("train.csv", "val.csv", "test.csv"),
        unit="cell images", source="the three label CSVs of Zenodo record 11087263")
    layout = "verified"
    expected_layout = """
    <root>/
      train.csv, val.csv, test.csv          image_name,class_name,class_id,level_1,level_2,level_3
      train/<uuid>.jpg, val/<uuid>.jpg, test/<uuid>.jpg
      hierarchy_names.csv                   optional
"""
    assumptions = (
        "The Zenodo archive names are not documented: the builder finds train.csv, val.csv, test.csv and the "
        "train/, val/, test/ image folders anywhere in the raw tree (packed or extracted).",
        "hierarchy_names.csv is not part of the Zenodo record; when present its names go into `extra`.",
        "`label` is the finest node each row names (`class_name`); the 26 ClassLabel indices equal the official "
        "class_id. Rows labelled with an internal node (AGC, AGC-NOS, ADC) keep a 1- or 2-element label_path.",
        "Harmonized: HCG (hyperchromatic crowded groups) and PG (glycogen pseudokoilocytes) sit under HiCervix's "
        "'negative' branch and are mapped to NILM and NILM/squamous; all AGC sub-types map to AGC and all ADC "
        "sub-types to Adenocarcinoma (Bethesda has no finer node).",
        "No patient or slide identifiers and no pixel size are published.",
    )
    labels = tuple(Label(name, path, node, _ENGLISH[name]) for _, name, path, node, _ in CLASSES)
    splits = ("train", "validation", "test")

    # ------------------------------------------------------------------ raw -> rows
    def examples(self, raw: RawTree) -> Iterator[dict]:
        csvs: dict[str, RawFile] = {}
        for f in raw.files(suffix=".csv"):
            split = _split_of_csv(f)
            if split is None:
                continue
            if split in csvs:
                raise RawLayoutError(f"two {f.name} files: {csvs[split].path} and {f.path}; expected one per split")
            csvs[split] = f
        missing = [f"{s}.csv" for s in SPLITS if s not in csvs]
        if missing:
            raise RawLayoutError(f"{raw.root}: no {', '.join(missing)} found; HiCervix needs train.csv, val.csv and "
                                 "test.csv next to the train/, val/ and test/ image folders" + layout.found(raw))
        glossary: dict[str, tuple[str, str]] = {}
        hits = raw.named("hierarchy_names.csv")
        if len(hits) > 1:
            raise RawLayoutError(f"{len(hits)} hierarchy_names.csv files: {', '.join(h.path for h in hits)}")
        if hits:
            glossary = read_glossary(hits[0])
        for f in raw.files(suffix=".csv"):
            if _split_of_csv(f) is None and f.name.lower() != "hierarchy_names.csv":
                raw.skip(f, "not one of train.csv, val.csv, test.csv, hierarchy_names.csv (e.g. the HierSwin "
                            "leaf-only subsets of the code repository)")

        # images: <split folder>/<name>.jpg (or <split>.zip/<name>.jpg), indexed by split and name
        images: dict[str, dict[str, RawFile]] = {s: {} for s in SPLITS}
        for f in raw.files(suffix=(".jpg", ".jpeg")):
            folder = folder_name(f.parts[-2]).lower() if len(f.parts) > 1 else ""
            if folder in images:
                if f.name in images[folder]:
                    raise RawLayoutError(f"{f.name} appears twice in {folder}/: {images[folder][f.name].path} "
                                         f"and {f.path}")
                images[folder][f.name] = f

        tables = {s: read_split_csv(csvs[s]) for s in SPLITS}
        seen: dict[str, str] = {}
        for split, table in tables.items():
            lost = []
            for line, image, _, _ in table:
                if image in seen:
                    raise RawLayoutError(f"{csvs[split].path} line {line}: {image} is already listed in {seen[image]}")
                seen[image] = f"{csvs[split].path} line {line}"
                if image not in images[split]:
                    lost.append(image)
            if lost:
                raise RawFileError(f"{csvs[split].path}: {len(lost)} listed image(s) not found in a {split}/ "
                                   f"folder, e.g. {split}/{lost[0]}")
            listed = {image for _, image, _, _ in table}
            for name, f in images[split].items():
                if name not in listed:
                    raw.skip(f, f"in {split}/ but not listed in {split}.csv (no label)")

        for split, table in tables.items():
            for _, image, name, cid in table:
                extra: dict = {"class_id": cid}
                if name in glossary:
                    extra["name_zh"], extra["name_en"] = glossary[name]
                yield {
                    "id": image.rsplit(".", 1)[0],
                    "image": images[split][image],
                    "label": name,
                    "split": SPLITS[split],
                    "extra": extra,
                }

    # ------------------------------------------------------------------ synthetic raw layout
    def synthesize(self, root: Path, scale: str = "small", seed: int = 0) -> None:
        root.mkdir(parents=True, exist_ok=True)
        pool = synth.ImagePool(scale)  # full scale: 32 drawn cells per class and split, reused

        def draw(split: str, cid: int, i: int) -> bytes:
            rng = synth.rng_for("hicervix", seed, split, cid, i)
            _uuid_like(rng)  # the name's draws come first, as in the file names
            side = int(rng.integers(96, 320)) if scale == "full" else int(rng.integers(40, 72))
            img, _ = synth.cell_field(rng, (side, int(side * rng.uniform(0.8, 1.2))), n_cells=1,
                                      nucleus_scale=0.2 + 0.02 * (cid % 10), tint=cid, margin=0.1)
            return synth.encode(img, "JPEG", quality=85)

        for k, split in enumerate(SPLITS):
            lines = [",".join(HEADER)]
            for cid, name, path, _, counts in CLASSES:
                n = counts[k] if scale == "full" else (2 if split == "train" else 1)
                for i in range(n):
                    uid = _uuid_like(synth.rng_for("hicervix", seed, split, cid, i))
                    data = pool((split, cid), i, lambda j, split=split, cid=cid: draw(split, cid, j))
                    synth.write_bytes(root / split / f"{uid}.jpg", data)
                    lines.append(",".join([f"{uid}.jpg", name, str(cid), *[*path, "", "", ""][:3]]))
            (root / f"{split}.csv").write_bytes(("\n".join(lines) + "\n").encode("utf-8"))  # no BOM, LF
        glossary = [",".join(GLOSSARY_HEADER)] + [
            ",".join(f'"{v}"' if "," in v else v for v in (zh, en, abbr, "")) for zh, en, abbr in GLOSSARY]
        (root / "hierarchy_names.csv").write_bytes(("\r\n".join(glossary)).encode("utf-8-sig"))  # BOM, CRLF
        synth.write_marker(root, self.name, scale, seed)


def _uuid_like(rng) -> str:
    h = "".join(f"{int(b):02x}" for b in rng.integers(0, 256, 16))
    return f"{h[:8]}-{h[8:12]}-3{h[13:16]}-{h[16:20]}-{h[20:32]}"
