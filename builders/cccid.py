"""CCCID: Cervical Cancer Cell Image Database, multi-focus cytology dataset (Onishi et al. 2026).

639 fields of view (FOVs) x 11 focal planes, 1.0 um apart, 384 x 384 JPEG, BD SurePath LBC, Pap stain,
NanoZoomer-XR. Five `.zip.7z` archives; inside, `<Bethesda category>/<cell-type subfolder>/` folders of
`[Serial]_(CenterX,CenterY,Z).jpg` files. One row per FOV.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from cytohub import layout, synth
from cytohub.builder import Builder, Label, Published, Source
from cytohub.errors import RawLayoutError
from cytohub.formats.naming import letters_key
from cytohub.raw import RawFile, RawTree

CATEGORIES = ("NILM", "LSIL", "HSIL", "SCC_etc")
HARMONIZED = {"NILM": "NILM", "LSIL": "LSIL", "HSIL": "HSIL", "SCC_etc": "SCC"}
# (number as in the data paper, category, cell type)
CELL_TYPES = (
    (1, "NILM", "Superficial-Intermediate Cells"),
    (2, "NILM", "Parabasal-Basal Cells"),
    (3, "NILM", "Glandular Cells (Isolated)"),
    (4, "NILM", "Glandular Cells (Cluster)"),
    (5, "NILM", "Squamous Metaplastic Cells"),
    (6, "NILM", "Repair Cells"),
    (7, "NILM", "Atrophic Vaginitis"),
    (8, "NILM", "Macrophages"),
    (9, "NILM", "Neutrophils"),
    (10, "LSIL", "Superficial-type Dysplastic Cells"),
    (11, "LSIL", "Intermediate-type Dysplastic Cells"),
    (12, "LSIL", "Superficial-type Koilocyte"),
    (13, "LSIL", "Intermediate-type Koilocyte"),
    (14, "HSIL", "Deep-layer Dysplastic Cells"),
    (15, "HSIL", "Carcinoma in situ Cells"),
    (16, "SCC_etc", "Squamous Cell Carcinoma"),
    (17, "SCC_etc", "Adenocarcinoma"),
)
ARCHIVES = {  # archive -> cell-type numbers it holds (data paper, "Underlying data")
    "CCCID_NILM_part1.zip.7z": (1, 2, 3, 4),
    "CCCID_NILM_part2.zip.7z": (5, 6, 7, 8, 9),
    "CCCID_LSIL.zip.7z": (10, 11, 12, 13),
    "CCCID_HSIL.zip.7z": (14, 15),
    "CCCID_SCC_etc.zip.7z": (16, 17),
}
N_PLANES, BEST_Z, Z_STEP_UM = 11, 5, 1.0
FILE_RE = re.compile(
    r"^(?P<serial>\d+)_\(\s*(?P<x>-?\d+(?:\.\d+)?)\s*,\s*(?P<y>-?\d+(?:\.\d+)?)\s*,\s*(?P<z>\d+)\s*\)\.jpe?g$",
    re.IGNORECASE,
)


def _norm(text: str) -> str:
    """Folder name -> comparable key: no leading number, lower case, letters and digits only, no plural s."""
    text = re.sub(r"^\s*\d+\s*[.)_\-:]*\s*", "", text).lower()
    words = re.findall(r"[a-z0-9]+", text)
    return " ".join(w[:-1] if w.endswith("s") and len(w) > 3 else w for w in words)


_BY_NAME = {_norm(name): num for num, _, name in CELL_TYPES}
_BY_NUM = {num: (cat, name) for num, cat, name in CELL_TYPES}
_CAT_KEYS = {letters_key(c): c for c in CATEGORIES}


@lru_cache(maxsize=4096)  # called for every folder of every file's path (7,029 files x 5 parts): names repeat
def _category_of(folder: str) -> str | None:
    return _CAT_KEYS.get(letters_key(folder))


@lru_cache(maxsize=4096)
def _cell_type_of(folder: str) -> int | None:
    key = _norm(folder)
    if key in _BY_NAME:
        return _BY_NAME[key]
    lead = re.match(r"^\s*(\d+)\s*[.)_\-:]*\s*$", folder)  # a folder named only by its number
    return int(lead.group(1)) if lead and int(lead.group(1)) in _BY_NUM else None


def fov_counts(scale: str) -> dict[int, int]:
    """FOVs per cell type in synthetic data. full: the published 639 spread evenly (per-type counts are not
    published); small: 3 each."""
    n = len(CELL_TYPES)
    return {num: (639 // n + (num <= 639 % n)) if scale == "full" else 3 for num, _, _ in CELL_TYPES}


class CCCID(Builder):
    name = "cccid"
    pretty_name = "CCCID: Cervical Cancer Cell Image Database, Multi-focus Cytology Dataset"
    version = "1.0.0"
    summary = ("Cervical LBC fields of view as 11-plane focal stacks (1 um apart), 17 cell types under "
               "4 Bethesda categories")
    homepage = "https://doi.org/10.5281/zenodo.18904734"
    license = "cc-by-4.0"
    redistribution = "allowed"
    attribution = ("Onishi T. et al., CCCID (Zenodo, doi:10.5281/zenodo.18904734), Nobeoka Prefectural Hospital "
                   "and Kawasaki Medical University; licensed CC BY 4.0.")
    citation = """@article{onishi2026cccid,
  title   = {Dataset of multi-focus (Z-stack) images derived from liquid-based cervical cancer cytology specimens},
  author  = {Onishi, Takafumi and others},
  journal = {F1000Research},
  volume  = {15},
  pages   = {502},
  year    = {2026},
  doi     = {10.12688/f1000research.179164.1}
}"""
    sources = tuple(
        Source(name, url=f"https://zenodo.org/records/18904734/files/{name}?download=1", direct=True,
               description="cell types " + ", ".join(str(n) for n in nums))
        for name, nums in ARCHIVES.items()
    )
    manual_download = """Download the five archives of the Zenodo record https://doi.org/10.5281/zenodo.18904734
(CCCID_NILM_part1.zip.7z, CCCID_NILM_part2.zip.7z, CCCID_LSIL.zip.7z, CCCID_HSIL.zip.7z,
CCCID_SCC_etc.zip.7z) into one folder and pass that folder with --raw (or put it at
$CYTOHUB_HOME/raw/cccid). Already-extracted folders (NILM/, LSIL/, HSIL/, SCC_etc/) work too."""
    task_categories = ("image-classification",)
    tags = ("cytology", "cervical-cancer", "liquid-based-cytology", "papanicolaou", "z-stack",
            "multi-focus", "microscopy", "medical")
    organ = "uterine cervix"
    stain = "Papanicolaou"
    preparation = "liquid-based cytology (BD SurePath)"
    scanner = "Hamamatsu NanoZoomer-XR (20x objective), 11 focal planes 1.0 um apart"
    magnification = "20x"
    mpp = None
    num_images = 639
    published = Published(files=tuple(ARCHIVES), rows=639, unit="fields of view (11 focal planes each)",
                          source="Onishi et al., F1000Research 2026 (639 FOVs x 11 planes, five archives)")
    layout = "verified"
    expected_layout = """
    CCCID_NILM_part1.zip.7z, CCCID_NILM_part2.zip.7z, CCCID_LSIL.zip.7z, CCCID_HSIL.zip.7z, CCCID_SCC_etc.zip.7z
      (or the unpacked tree)
      <category>/<N. cell type>/<serial>_(<x>,<y>,<z>).jpg     category: NILM, LSIL, HSIL, SCC_etc
"""
    assumptions = (
        "The exact spelling of the 17 cell-type subfolders on disk is not published: they are matched "
        "tolerantly (leading number, punctuation, case and plural ignored); an unmatched subfolder is an error.",
        "Z index 5 is taken as best focus (the paper centres the 11-plane range on the scanner's optimal focus), "
        "so z_um = (Z - 5) x 1.0 and `image` is plane Z = 5.",
        "Whether serial numbers restart per subfolder is not published: a FOV is keyed by category, "
        "subfolder, serial and centre, never by serial alone.",
        "Pixel size is not published (mpp is null).",
    )
    labels = tuple(
        Label(name, (cat, name), "Adenocarcinoma" if num == 17 else HARMONIZED[cat])
        for num, cat, name in CELL_TYPES
    )

    # ------------------------------------------------------------------ raw -> rows
    def examples(self, raw: RawTree) -> Iterator[dict]:
        fovs: dict[tuple, dict[int, RawFile]] = defaultdict(dict)
        for f in raw.files(suffix=(".jpg", ".jpeg")):
            parts = f.parts
            cat_pos = [i for i, p in enumerate(parts[:-1]) if _category_of(p)]
            if not cat_pos:
                under = "/".join(parts[:-3])
                raise RawLayoutError(f"{f.path}: not inside a category folder; " + layout.mismatch(
                    f"category folders {', '.join(CATEGORIES)} (<category>/<cell type>/<file>.jpg)",
                    layout.listing(raw, under), under=under))
            i = cat_pos[-1]
            category = _category_of(parts[i])
            if i != len(parts) - 3:
                raise RawLayoutError(f"{f.path}: expected {parts[i]}/<cell-type subfolder>/<file>.jpg, "
                                     f"one subfolder below the category folder")
            sub = parts[-2]
            num = _cell_type_of(sub)
            if num is None:
                known = "; ".join(f"{n}. {name}" for n, c, name in CELL_TYPES if c == category)
                raise RawLayoutError(f"{f.parent}: unknown cell-type subfolder {sub!r} under {category}; "
                                     f"expected one of: {known}")
            if _BY_NUM[num][0] != category:
                raise RawLayoutError(f"{f.parent}: cell type {_BY_NUM[num][1]!r} belongs under "
                                     f"{_BY_NUM[num][0]}, not {category}")
            m = FILE_RE.match(f.name)
            if not m:
                raise RawLayoutError(f"{f.path}: file name does not match [Serial]_(CenterX,CenterY,Z).jpg, "
                                     "e.g. 001_(3059,11012,0).jpg")
            z = int(m["z"])
            if not 0 <= z < N_PLANES:
                raise RawLayoutError(f"{f.path}: focal plane index {z} outside 0..{N_PLANES - 1}")
            key = (num, f.parent, int(m["serial"]), m["serial"], float(m["x"]), float(m["y"]), m["x"], m["y"])
            if z in fovs[key]:
                raise RawLayoutError(f"duplicated focal plane Z={z}: {fovs[key][z].path} and {f.path}")
            fovs[key][z] = f
        if not fovs:
            raise RawLayoutError(f"{raw.root}: no CCCID images found; expected NILM/, LSIL/, HSIL/ and SCC_etc/ "
                                 "folders of [Serial]_(CenterX,CenterY,Z).jpg files (inside the .zip.7z archives)"
                                 + layout.found(raw))
        for key, planes in fovs.items():  # check every stack before the first row is written
            if len(planes) != N_PLANES:
                missing = sorted(set(range(N_PLANES)) - set(planes))
                raise RawLayoutError(f"{key[1]}: FOV {key[3]} at ({key[6]},{key[7]}) has {len(planes)} focal "
                                     f"planes, expected {N_PLANES} (missing Z = {missing})")
        ids: dict[str, tuple] = {}
        for key in sorted(fovs, key=lambda k: (k[0], k[2], k[4], k[5], k[1])):
            num, parent, _, serial, x, y, xs, ys = key
            cat, cell_type = _BY_NUM[num]
            row_id = f"{cat}-{num:02d}-{serial}-{xs}-{ys}"
            if row_id in ids:  # same class, serial and centre in two different folders
                raise RawLayoutError(f"FOV {serial} at ({xs},{ys}) appears twice: in {ids[row_id][1]} and {parent}")
            ids[row_id] = key
            planes = [fovs[key][z] for z in range(N_PLANES)]
            yield {
                "id": row_id,
                "image": planes[BEST_Z],
                "focal_stack": planes,
                "z_um": [(z - BEST_Z) * Z_STEP_UM for z in range(N_PLANES)],
                "label": cell_type,
                "fov_center_um": [x, y],
                "group": {"fov_id": row_id},
                "source_path": f"{parent}/{serial}_({xs},{ys},{{0..{N_PLANES - 1}}}).jpg",
                "extra": {"serial": serial, "category_folder": parent.split("/")[-2],
                          "subfolder": parent.split("/")[-1]},
            }

    # ------------------------------------------------------------------ synthetic raw layout
    def synthesize(self, root: Path, scale: str = "small", seed: int = 0) -> None:
        per_class = fov_counts(scale)
        size = (384, 384)
        work = root / ".cytohub-staging"
        for archive, nums in ARCHIVES.items():
            entries = []
            for num in nums:
                cat, cell_type = _BY_NUM[num]
                folder = f"{cat}/{num}. {cell_type}"
                for serial in range(1, per_class[num] + 1):
                    rng = synth.rng_for("cccid", seed, num, serial)
                    x, y = int(rng.integers(1000, 40000)), int(rng.integers(1000, 40000))
                    field, _ = synth.cell_field(rng, size, n_cells=int(rng.integers(2, 6)),
                                                nucleus_scale=0.2 + 0.04 * (num - 1) / 2, tint=num)
                    for z in range(N_PLANES):
                        img = synth.defocus(field, z - BEST_Z)
                        entries.append((f"{folder}/{serial:03d}_({x},{y},{z}).jpg",
                                        synth.encode(img, "JPEG", quality=88, dpi=(96, 96))))
            inner = work / archive[: -len(".7z")]
            synth.write_zip(inner, entries, compress=False)
            synth.write_7z(root / archive, [(inner.name, inner)])
            inner.unlink()
        work.rmdir()
        synth.write_marker(root, self.name, scale, seed)
