"""BMT: Brown Multicellular ThinPrep database (Welch et al., Sci Data 2024). 600 multicellular ThinPrep Pap
fields of view (1920 x 1080 JPEG), 200 each of NILM, LSIL and HSIL, from 180 slides of 180 patients, hosted on
Synapse (syn55259257).

Raw layout (unverified, see `assumptions`): a Synapse download holding
`Brown Multicellular ThinPrep Database - images/` with one folder per class (`NIL` or `NILM`, `LSIL`, `HSIL`) of
`.JPG` files, a separate folder of annotated copies, a table, and the client's `SYNAPSE_METADATA_MANIFEST.tsv`.
The label comes from the class folder, or from the file-name prefix when the files are flat. One row per image.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from cytohub import layout, synth
from cytohub.builder import Builder, Label, Published, Source
from cytohub.errors import RawLayoutError
from cytohub.raw import RawFile, RawTree

CLASSES = ("NILM", "LSIL", "HSIL")
HARMONIZED = {"NILM": "NILM", "LSIL": "LSIL", "HSIL": "HSIL"}  # Bethesda 2014 nodes
_CLASS_KEYS = {"nil": "NILM", "nilm": "NILM", "lsil": "LSIL", "hsil": "HSIL"}
_PREFIX_RE = re.compile(r"^(nilm|nil|lsil|hsil)(?![a-z])", re.IGNORECASE)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
TABLE_SUFFIXES = (".tsv", ".csv", ".xlsx", ".xls", ".txt", ".docx", ".pdf")
IMAGES_FOLDER = "Brown Multicellular ThinPrep Database - images"
SYNTH_FOLDERS = {"NILM": "NIL", "LSIL": "LSIL", "HSIL": "HSIL"}  # as a third-party loader names them


def _is_annotated(parts: tuple[str, ...]) -> bool:
    return any("annotat" in p.lower() for p in parts[:-1])


def label_of(f: RawFile, raw: RawTree | None = None) -> str:
    """The class of an image: its class folder, else its file-name prefix; both must agree when present. With
    `raw`, an image of no class says which folders sit beside its own."""
    folders = [_CLASS_KEYS[p.lower()] for p in f.parts[:-1] if p.lower() in _CLASS_KEYS]
    m = _PREFIX_RE.match(f.name)
    by_name = _CLASS_KEYS[m[1].lower()] if m else None
    if folders:
        if by_name and by_name != folders[-1]:
            raise RawLayoutError(f"{f.path}: the file name says {by_name} but the folder says {folders[-1]}")
        return folders[-1]
    if by_name:
        return by_name
    under = "/".join(f.parts[:-2])
    found = layout.listing(raw, under) if raw is not None else f"{f.parent}/"
    raise RawLayoutError(f"{f.path}: neither in a class folder nor named with a class prefix (e.g. HSIL_001.JPG); "
                         "cannot tell its class; " + layout.mismatch("class folders NIL (or NILM), LSIL, HSIL", found,
                                                                       under=under))


class BMT(Builder):
    name = "bmt"
    pretty_name = "BMT: Brown Multicellular ThinPrep Pap Cervical Cytology Dataset"
    summary = ("600 multicellular ThinPrep Pap fields of view (200 NILM, 200 LSIL, 200 HSIL) from 180 patients, "
               "labels by unanimous consensus of three pathologists")
    homepage = "https://www.synapse.org/Synapse:syn55259257/wiki/629294"
    # A third-party summary reports CC BY 4.0, but the Synapse page was not seen: until it is confirmed the
    # license is recorded as unknown and the data as not redistributable (the conservative reading).
    license = "unknown"
    redistribution = "forbidden"
    attribution = ("Welch E.C., Lu C., Sung C.J., Zhang C., Tripathi A., Ou J. (2024). BMT: Brown Multicellular "
                   "ThinPrep database, Synapse doi:10.7303/syn55259257 (Brown University / Women and Infants "
                   "Hospital of Rhode Island); reported as CC BY 4.0 by a third party (unconfirmed).")
    citation = """@article{welch2024bmt,
  title   = {BMT: A Cross-Validated ThinPrep Pap Cervical Cytology Dataset for Machine Learning Model Training
             and Validation},
  author  = {Welch, E. Celeste and Lu, Chenhao and Sung, C. James and Zhang, Cunxian and Tripathi, Anubhav and
             Ou, Joyce},
  journal = {Scientific Data},
  volume  = {11},
  pages   = {1444},
  year    = {2024},
  doi     = {10.1038/s41597-024-04328-3}
}
@misc{ou2024bmt_data,
  author    = {Ou, Joyce},
  title     = {Pap images (Brown Multicellular ThinPrep database)},
  year      = {2024},
  publisher = {Synapse},
  doi       = {10.7303/syn55259257}
}"""
    sources = (
        Source("syn55259257", url="https://doi.org/10.7303/syn55259257", name_published=False,
               description="Synapse project: class folders of JPEG images, annotated images and a table"),
    )
    manual_download = """Create a (free) Synapse account, then download project syn55259257
(https://www.synapse.org/Synapse:syn55259257/wiki/629294), e.g. with the Python client
(`pip install synapseclient`, then `synapseutils.syncFromSynapse(syn, "syn55259257", path="bmt")` after
`syn = synapseclient.login()`), or through the web interface. Pass the download folder with --raw (or put it at
$CYTOHUB_HOME/raw/bmt). Zipped copies work too."""
    task_categories = ("image-classification",)
    tags = ("cytology", "cervical-cancer", "liquid-based-cytology", "thinprep", "papanicolaou", "multicellular",
            "microscopy", "medical")
    organ = "uterine cervix"
    stain = "Papanicolaou"
    preparation = "liquid-based cytology (Hologic ThinPrep)"
    scanner = "Olympus BX43 microscope, 40x objective, Excelis HD colour camera (reported)"
    magnification = "40x"
    mpp = None
    num_images = 600
    deidentification = ("taken from de-identified archival ThinPrep slides, as the data descriptor states "
                        "(Welch et al., Scientific Data 11, 1444, 2024)")
    published = Published(rows=600, per_class=dict.fromkeys(CLASSES, 200), unit="images",
                          source="Welch et al., Sci Data 2024 (600 images, 200 per class)")
    layout = "unverified"
    expected_layout = """
    <root>/
      Brown Multicellular ThinPrep Database - images/
        NIL (or NILM)/, LSIL/, HSIL/         <class>_NNN.JPG
        Annotated Images/                    skipped
      SYNAPSE_METADATA_MANIFEST.tsv          optional
"""
    assumptions = (
        "The Synapse file tree is not documented in our sources. Assumed: one folder per class inside "
        f"'{IMAGES_FOLDER}' (the folder name a third-party download script expects), named NIL or NILM, LSIL and "
        "HSIL (a third-party loader uses HSIL, LSIL, NIL); flat files named with a class prefix are accepted too.",
        "Images are JPEG with an upper-case .JPG extension (a third-party file list); file names are a guess "
        "(HSIL_001.JPG ...); row ids are '<class>/<file name>'.",
        "A folder whose name contains 'annotat' holds annotated copies (a third-party summary of the data "
        "descriptor mentions a sub-folder of annotated images with a table): they are skipped, not used as rows.",
        "Tables (.tsv/.csv/.xlsx/...) such as the Synapse client's SYNAPSE_METADATA_MANIFEST.tsv are skipped.",
        "Microscope and camera are taken from a third-party summary of the data descriptor (PMC11682344), which "
        "also reports the license as CC BY 4.0; as the Synapse page was not seen, the license is recorded as "
        "unknown and redistribution as forbidden until it is confirmed there.",
        "No patient or slide identifiers are known for the images (180 patients, 1-5 images each): rows carry no "
        "group, so images of one patient may fall in different splits.",
    )
    labels = tuple(Label(c, (c,), HARMONIZED[c]) for c in CLASSES)

    # ------------------------------------------------------------------ raw -> rows
    def examples(self, raw: RawTree) -> Iterator[dict]:
        found: dict[str, tuple[str, RawFile]] = {}
        for f in raw.files():
            if f.name.lower().endswith(TABLE_SUFFIXES):
                raw.skip(f, "table / manifest file, not used (labels come from the class folders)")
                continue
            if not f.name.lower().endswith(IMAGE_SUFFIXES):
                continue
            if _is_annotated(f.parts):
                raw.skip(f, "annotated copy (marks drawn on the image); not used as a row")
                continue
            label = label_of(f, raw)
            row_id = f"{label}/{f.name}"
            if row_id in found:
                raise RawLayoutError(f"two {label} images named {f.name}: {found[row_id][1].path} and {f.path}")
            found[row_id] = (label, f)
        if not found:
            raise RawLayoutError(f"{raw.root}: no BMT images found; expected class folders NIL (or NILM), LSIL "
                                 "and HSIL of .JPG images" + layout.found(raw))
        for row_id in sorted(found, key=lambda r: (CLASSES.index(found[r][0]), r)):
            label, f = found[row_id]
            yield {"id": row_id, "image": f, "label": label, "source_path": f.path}

    # ------------------------------------------------------------------ synthetic raw layout
    def synthesize(self, root: Path, scale: str = "small", seed: int = 0) -> None:
        n, size = (200, (1920, 1080)) if scale == "full" else (3, (192, 108))
        base = root / IMAGES_FOLDER
        manifest = ["path\tparent\tname\tsynapseStore\tcontentType"]
        pool = synth.ImagePool(scale, size=16)  # full scale: 16 drawn 1920 x 1080 fields per class, reused

        def draw(k: int, label: str, i: int) -> bytes:
            rng = synth.rng_for("bmt", seed, label, i)
            img, _ = synth.cell_field(rng, size, n_cells=int(rng.integers(4, 9)), nucleus_scale=0.18 + 0.12 * k,
                                      tint=k)
            return synth.encode(img, "JPEG", quality=90)

        for k, label in enumerate(CLASSES):
            for i in range(1, n + 1):
                path = base / SYNTH_FOLDERS[label] / f"{label}_{i:03d}.JPG"
                synth.write_bytes(path, pool(label, i, lambda j, k=k, label=label: draw(k, label, j)))
                manifest.append(f"{path.relative_to(root).as_posix()}\tsyn0\t{path.name}\tTrue\timage/jpeg")
            img, _ = synth.cell_field(synth.rng_for("bmt-annotated", seed, label), size, n_cells=5, tint=k)
            synth.write_bytes(base / "Annotated Images" / f"{label}_001_annotated.JPG",
                              synth.encode(img, "JPEG", quality=90))
        (base / "Annotated Images" / "annotated_images_table.csv").write_text(
            "image,classification context\n" + "".join(f"{c}_001_annotated.JPG,example {c} cells\n" for c in CLASSES))
        (root / "SYNAPSE_METADATA_MANIFEST.tsv").write_text("\n".join(manifest) + "\n")
        synth.write_marker(root, self.name, scale, seed)
