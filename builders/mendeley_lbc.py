"""Mendeley LBC: "Liquid based cytology pap smear images for multi-class diagnosis of cervical cancer"
(Hussain et al., Mendeley Data zddtpgzv63, Data in Brief 2020).

About 962 JPEG fields of view (Leica ICC50 HD camera, 40x) in four class folders with long names
(`High squamous intra-epithelial lesion`, `Low squamous intra-epithelial lesion`,
`Negative for Intraepithelial malignancy`, `Squamous cell carcinoma`), inside the Mendeley download
`zddtpgzv63-4.zip` -> `zddtpgzv63-4/`. File names contain spaces and parentheses (`NL_1_ (6).jpg`). One row
per image.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from cytohub import layout, synth
from cytohub.builder import Builder, Label, Published, Source
from cytohub.errors import RawLayoutError
from cytohub.formats.naming import folder_name, letters_key, natural_key
from cytohub.raw import RawFile, RawTree

# (label, class folder as published, file-name prefix, count in one third-party listing)
CLASSES = (
    ("NILM", "Negative for Intraepithelial malignancy", "NL", 612),
    ("LSIL", "Low squamous intra-epithelial lesion", "LSIL", 113),
    ("HSIL", "High squamous intra-epithelial lesion", "HSIL", 163),
    ("SCC", "Squamous cell carcinoma", "scc", 74),
)
DOI_ID = "zddtpgzv63-4"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
NAME_RE = re.compile(r"^(?P<prefix>[A-Za-z]+)_(?P<n>\d+)_?\s*\((?P<k>\d+)\)$")


def _key(text: str) -> str:
    return letters_key(folder_name(text))


_BY_KEY = {_key(folder): label for label, folder, _, _ in CLASSES} | {_key(label): label for label, *_ in CLASSES}


def class_of(folder: str) -> str | None:
    """A class folder name (case, spaces and hyphens ignored; the abbreviations are accepted) -> label."""
    return _BY_KEY.get(_key(folder))


class MendeleyLBC(Builder):
    name = "mendeley-lbc"
    pretty_name = "Mendeley LBC: liquid-based cytology Pap smear images for multi-class diagnosis"
    version = "1.0.0"
    summary = "About 962 liquid-based cytology Pap-smear images in 4 Bethesda classes (NILM, LSIL, HSIL, SCC)"
    homepage = "https://data.mendeley.com/datasets/zddtpgzv63/4"
    license = "cc-by-4.0"
    redistribution = "allowed"
    attribution = ("Hussain E., Liquid based cytology pap smear images for multi-class diagnosis of cervical "
                   "cancer, Mendeley Data V4, doi:10.17632/zddtpgzv63.4; licensed CC BY 4.0.")
    citation = """@misc{hussain2019lbc,
  author    = {Hussain, Elima},
  title     = {Liquid based cytology pap smear images for multi-class diagnosis of cervical cancer},
  publisher = {Mendeley Data},
  version   = {V4},
  year      = {2019},
  doi       = {10.17632/zddtpgzv63.4}
}
@article{hussain2020lbcdib,
  title   = {Liquid based-cytology Pap smear dataset for automated multi-class diagnosis of pre-cancerous and
             cervical cancer lesions},
  author  = {Hussain, Elima and Mahanta, Lipi B. and Borah, Himakshi and Das, Chandana Ray},
  journal = {Data in Brief},
  volume  = {30},
  pages   = {105589},
  year    = {2020},
  doi     = {10.1016/j.dib.2020.105589}
}"""
    sources = (Source(f"{DOI_ID}.zip",
                      url=f"https://prod-dcd-datasets-cache-zipfiles.s3.eu-west-1.amazonaws.com/{DOI_ID}.zip",
                      direct=True, description="Mendeley Data bulk download of version 4"),)
    manual_download = """Download the dataset from https://data.mendeley.com/datasets/zddtpgzv63/4 ("Download
All", a zip named zddtpgzv63-4.zip) and pass the zip, or the extracted folder, with --raw (or put it at
$CYTOHUB_HOME/raw/mendeley-lbc). The four class folders are found wherever they are inside."""
    task_categories = ("image-classification",)
    tags = ("cytology", "cervical-cancer", "liquid-based-cytology", "papanicolaou", "bethesda", "microscopy",
            "medical")
    organ = "uterine cervix"
    stain = "Papanicolaou"
    preparation = "liquid-based cytology"
    scanner = "Leica ICC50 HD microscope camera (reported)"
    magnification = "40x (reported)"
    num_images = 962
    published = Published(
        files=(f"{DOI_ID}.zip",), rows=(962, 963), unit="images",
        source="Hussain et al., Data in Brief 2020, and a listing of the Mendeley download",
        note="The Data in Brief paper is quoted as 963 images, a listing of the download counts 962; the "
             "per-class counts differ between sources and are not compared.")
    layout = "unverified"
    expected_layout = """
    zddtpgzv63-4.zip / zddtpgzv63-4/
      High squamous intra-epithelial lesion/<image>.jpg
      Low squamous intra-epithelial lesion/<image>.jpg
      Negative for Intraepithelial malignancy/<image>.jpg
      Squamous cell carcinoma/<image>.jpg
"""
    assumptions = (
        "The four class-folder names and the file-name style are confirmed by several public loaders; what lies "
        "between the zip's root folder zddtpgzv63-4/ and the class folders (nothing, a folder or a zip) is not "
        "known, so the class folders are searched for at any depth.",
        "The number of images is reported as 962 (NILM 612, HSIL 163, LSIL 113, SCC 74) by one third party and "
        "as 963 in the data paper's abstract; per-class counts are only used for full-scale synthetic data.",
        "The file-name prefix (HSIL_1, NL_16, scc_1 ...) is taken to identify a slide/case and is used as "
        "group.slide_id, keeping its images in one split; the number in parentheses is taken as the field.",
        "Image size (2048 x 1536), camera and 40x magnification are third-party reports, not verified.",
        "License CC BY 4.0 as quoted by two independent third-party READMEs.",
    )
    labels = tuple(Label(label, (folder,), label) for label, folder, _, _ in CLASSES)

    # ------------------------------------------------------------------ raw -> rows
    def examples(self, raw: RawTree) -> Iterator[dict]:
        found: dict[tuple[str, str], RawFile] = {}
        for f in raw.files(suffix=IMAGE_SUFFIXES):
            label = class_of(f.parts[-2]) if len(f.parts) > 1 else None
            if label is None:
                under = "/".join(f.parts[:-2])
                raise RawLayoutError(f"{f.path}: image not inside a class folder; " + layout.mismatch(
                    "class folders " + ", ".join(repr(folder) for _, folder, _, _ in CLASSES),
                    layout.listing(raw, under), under=under))
            key = (label, f.stem)
            if key in found:
                raise RawLayoutError(f"{f.name} appears twice in {label}: {found[key].path} and {f.path}")
            found[key] = f
        if not found:
            raise RawLayoutError(f"{raw.root}: no Mendeley LBC images found; expected the class folders "
                                 + ", ".join(repr(folder) for _, folder, _, _ in CLASSES) + layout.found(raw))
        order = [label for label, *_ in CLASSES]
        for key in sorted(found, key=lambda k: (order.index(k[0]), natural_key(k[1]), k[1])):
            label, stem = key
            f = found[key]
            m = NAME_RE.match(stem)
            extra = {"class_folder": f.parts[-2]}
            group = None
            if m:
                group = {"slide_id": f"{label}-{m['prefix'].upper()}_{int(m['n'])}"}
                extra["field"] = int(m["k"])
            yield {"id": f"{label}-{stem}", "image": f, "label": label, "group": group, "extra": extra}

    # ------------------------------------------------------------------ synthetic raw layout
    def synthesize(self, root: Path, scale: str = "small", seed: int = 0) -> None:
        size = (2048, 1536) if scale == "full" else (256, 192)
        entries: list[tuple[str, bytes]] = []
        pool = synth.ImagePool(scale, size=8)  # full scale: 8 drawn 2048 x 1536 fields per class, reused

        def draw(ci: int, label: str, i: int) -> bytes:
            rng = synth.rng_for("mendeley-lbc", seed, label, i)
            img, _ = synth.cell_field(rng, size, n_cells=int(rng.integers(3, 7)), nucleus_scale=0.15 + 0.08 * ci,
                                      tint=ci)
            return synth.encode(img, "JPEG", quality=88)

        for ci, (label, folder, prefix, count) in enumerate(CLASSES):
            n = count if scale == "full" else 6
            for i in range(n):
                case, fld = i // 2 + 1, i % 2 + 1 + 3 * (i // 2)  # two fields per case
                stem = f"{prefix}_{case}_ ({fld})" if label == "NILM" else f"{prefix}_{case} ({fld})"
                data = pool(label, i, lambda j, ci=ci, label=label: draw(ci, label, j))
                entries.append((f"{DOI_ID}/{folder}/{stem}.jpg", data))
        entries.sort(key=lambda e: e[0])
        synth.write_zip(root / f"{DOI_ID}.zip", entries, compress=False)
        synth.write_marker(root, self.name, scale, seed)
