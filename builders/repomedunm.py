"""RepoMedUNM: Pap smear image repository of Universitas Nusa Mandiri, Indonesia (Riana et al., ICONIP 2021).

LAYOUT UNVERIFIED. Documented: four classes (Normal, L-Sil, H-Sil, Koilocyt), ThinPrep (TP) and non-ThinPrep
(nTP) Pap test images, JPG files. Not documented: folder names and nesting. The builder reads images inside class
folders (tolerant spelling), optionally below a ThinPrep / non-ThinPrep folder. One row per image.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from cytohub import layout, synth
from cytohub.builder import Builder, Label, Source
from cytohub.errors import RawLayoutError
from cytohub.formats.naming import letters_key
from cytohub.raw import RawTree

# (class as spelled by the authors, Bethesda 2014 node)
CLASSES = (("Normal", "NILM"), ("L-Sil", "LSIL"), ("H-Sil", "HSIL"), ("Koilocyt", "LSIL"))
_CLASS_KEYS = {"normal": "Normal", "lsil": "L-Sil", "hsil": "H-Sil", "koilocyt": "Koilocyt",
               "koilocyte": "Koilocyt", "koilocytes": "Koilocyt", "koilocyts": "Koilocyt"}
_PREP_KEYS = {"thinprep": "ThinPrep", "tp": "ThinPrep", "nonthinprep": "non-ThinPrep", "ntp": "non-ThinPrep",
              "conventional": "non-ThinPrep", "konvensional": "non-ThinPrep"}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
# synthetic layout: preparation folder -> classes (TP in 3 classes, nTP in 2, as in Riana et al.'s K-means study)
SYNTH_LAYOUT = {"ThinPrep": ("Normal", "L-Sil", "H-Sil"), "Non-ThinPrep": ("Normal", "Koilocyt")}
# full-scale counts: 7,437 images reported; 6,168 ThinPrep and 434 koilocytes reported by another source
FULL_COUNTS = {("ThinPrep", "Normal"): 2056, ("ThinPrep", "L-Sil"): 2056, ("ThinPrep", "H-Sil"): 2056,
               ("Non-ThinPrep", "Normal"): 835, ("Non-ThinPrep", "Koilocyt"): 434}


def class_of(folder: str) -> str | None:
    """A folder name -> class ('L-SIL', 'lsil', 'L_Sil', '2. L-Sil' -> 'L-Sil'), or None."""
    return _CLASS_KEYS.get(letters_key(folder))


def preparation_of(folder: str) -> str | None:
    """A folder name -> 'ThinPrep' | 'non-ThinPrep' | None ('TP', 'nTP', 'Non-ThinPrep', 'Non ThinPrep'...)."""
    return _PREP_KEYS.get(letters_key(folder))


class RepoMedUNM(Builder):
    name = "repomedunm"
    pretty_name = "RepoMedUNM: Pap Smear Image Repository (ThinPrep and non-ThinPrep, 4 classes)"
    summary = ("Indonesian Pap smear images of cell groups in 4 classes: Normal, L-Sil, H-Sil, Koilocyt "
               "(layout unverified)")
    homepage = "http://repomed.nusamandiri.ac.id/eng/"
    license = "unknown"
    redistribution = "forbidden"
    attribution = ("Riana D. et al., RepoMedUNM, Universitas Nusa Mandiri (http://repomed.nusamandiri.ac.id/). "
                   "License not stated in the sources consulted.")
    citation = """@inproceedings{riana2021repomedunm,
  title     = {{RepoMedUNM}: A New Dataset for Feature Extraction and Training of Deep Learning Network for
               Classification of Pap Smear Images},
  author    = {Riana, Dwiza and others},
  booktitle = {Neural Information Processing (ICONIP 2021)},
  publisher = {Springer International Publishing},
  address   = {Cham},
  year      = {2021},
  doi       = {10.1007/978-3-030-92307-5_37}
}"""
    sources = (Source("RepoMedUNM", url="http://repomed.nusamandiri.ac.id/eng/", name_published=False,
                      description="image repository website (access by request on the site; file names unknown)"),)
    manual_download = """Obtain the RepoMedUNM images from http://repomed.nusamandiri.ac.id/eng/ (access
appears to be by request on the site). Pass the downloaded archive or folder with --raw (or put it at
$CYTOHUB_HOME/raw/repomedunm). The builder expects one folder per class (Normal, L-Sil, H-Sil, Koilocyt; spelling
tolerant), optionally below a ThinPrep / Non-ThinPrep (TP / nTP) folder, holding the JPG images."""
    task_categories = ("image-classification",)
    tags = ("cytology", "cervical-cancer", "pap-smear", "thinprep", "koilocyte", "microscopy", "medical")
    organ = "uterine cervix"
    stain = "Papanicolaou"
    preparation = "ThinPrep (liquid-based) and non-ThinPrep (conventional) Pap tests"
    scanner = "Olympus CX33RTFS2 and X52-107BN optical microscopes with a Logitech camera (third-party description)"
    magnification = None
    mpp = None
    num_images = 7437  # reported by a third party; another source reports 6,168 ThinPrep + 434 koilocyte images
    layout = "unverified"
    expected_layout = """
    <root>/
      [ThinPrep | non-ThinPrep folder/]
        Normal/, L-Sil/, H-Sil/, Koilocyt/      <image>.jpg   (class folders, tolerant spelling)
"""
    assumptions = (
        "Folder names and nesting are not published: images are assumed to sit in one folder per class, named like "
        "the paper's classes (Normal, L-Sil, H-Sil, Koilocyt; case, punctuation and plural ignored).",
        "A ThinPrep / non-ThinPrep level (TP / nTP) above the class folders is optional; when present it is kept "
        "in extra['preparation'], otherwise that field is null.",
        "The synthetic layout puts Normal, L-Sil and H-Sil under ThinPrep/ and Normal and Koilocyt under "
        "Non-ThinPrep/, following the 3-class TP / 2-class nTP split of Riana et al.'s K-means study; the real "
        "split of classes between the two preparations is not verified.",
        "Images are JPG (reported by a third-party script); PNG, BMP and TIFF are tolerated.",
        "num_images = 7,437 comes from a third-party README; per-class counts are not published (the synthetic "
        "full scale spreads 6,168 ThinPrep images evenly and uses 434 koilocyte images, as reported elsewhere).",
        "Koilocyt maps to the Bethesda node LSIL (koilocytosis is an LSIL finding in Bethesda 2014).",
    )
    labels = tuple(Label(name, (name,), node) for name, node in CLASSES)

    # ------------------------------------------------------------------ raw -> rows
    def examples(self, raw: RawTree) -> Iterator[dict]:
        found = []
        for f in raw.files(suffix=IMAGE_SUFFIXES):
            folders = f.parts[:-1]
            cls_pos = [i for i, p in enumerate(folders) if class_of(p)]
            if not cls_pos:
                under = "/".join(f.parts[:-2])
                raise RawLayoutError(f"{f.path}: not inside a class folder; " + layout.mismatch(
                    "class folders Normal/, L-Sil/, H-Sil/, Koilocyt/ (optionally below ThinPrep/ or Non-ThinPrep/)",
                    layout.listing(raw, under), under=under))
            i = cls_pos[-1]
            if i != len(folders) - 1:
                raise RawLayoutError(f"{f.path}: expected the image directly inside the class folder "
                                     f"{folders[i]!r}, found it in a subfolder")
            preps = [preparation_of(p) for p in folders[:i] if preparation_of(p)]
            if len(set(preps)) > 1:
                raise RawLayoutError(f"{f.path}: both a ThinPrep and a non-ThinPrep folder above the image")
            found.append((f, class_of(folders[i]), preps[0] if preps else None))
        if not found:
            raise RawLayoutError(f"{raw.root}: no RepoMedUNM images found; expected class folders Normal/, L-Sil/, "
                                 "H-Sil/ and Koilocyt/ of JPG images" + layout.found(raw))
        ids: dict[str, str] = {}
        for f, cls, prep in found:
            parts = [p for p in (prep, cls) if p]
            row_id = re.sub(r"[^A-Za-z0-9_./-]+", "_", "/".join([*parts, f.stem]))
            if row_id in ids:
                raise RawLayoutError(f"two images give the row id {row_id!r}: {ids[row_id]} and {f.path}")
            ids[row_id] = f.path
            yield {
                "id": row_id,
                "image": f,
                "label": cls,
                "extra": {"preparation": prep, "class_folder": f.parts[-2]},
            }

    # ------------------------------------------------------------------ synthetic raw layout
    def synthesize(self, root: Path, scale: str = "small", seed: int = 0) -> None:
        size = (256, 192) if scale == "small" else (1280, 960)
        nuc = {"Normal": 0.18, "L-Sil": 0.3, "H-Sil": 0.45, "Koilocyt": 0.28}
        pool = synth.ImagePool(scale, size=16)  # full scale: 16 drawn fields per folder, reused

        def draw(prep: str, cls: str, k: int) -> bytes:
            rng = synth.rng_for("repomedunm", seed, prep, cls, k)
            img, _ = synth.cell_field(rng, size, n_cells=int(rng.integers(3, 7)), nucleus_scale=nuc[cls],
                                      tint=len(cls))
            return synth.encode(img, "JPEG", quality=90)

        for prep, classes in SYNTH_LAYOUT.items():
            for cls in classes:
                n = 3 if scale == "small" else FULL_COUNTS[(prep, cls)]
                for k in range(1, n + 1):
                    synth.write_bytes(root / "RepoMedUNM" / prep / cls / f"{k:04d}.jpg",
                                      pool((prep, cls), k, lambda i, prep=prep, cls=cls: draw(prep, cls, i)))
        synth.write_marker(root, self.name, scale, seed)
