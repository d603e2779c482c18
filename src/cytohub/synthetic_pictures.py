"""Synthetic pictures for builders' `synthesize`: May-Gruenwald-Giemsa-looking single blood or marrow cells
(AML-Cytomorphology_LMU, bone-marrow, BMCD-FGCD) and cytology fields whose look follows a class (the
folder-per-class corpora)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from cytohub import synth

# nucleus shape, cytoplasm RGB, granule RGB (or None), nucleus/cell radius ratio
_STYLES = {
    "blast": ("round", (150, 170, 215), None, 0.8),
    "promyelocyte": ("round", (170, 160, 210), (120, 60, 120), 0.7),
    "myelocyte": ("kidney", (215, 190, 210), (170, 110, 160), 0.6),
    "band": ("band", (225, 200, 215), (190, 150, 180), 0.45),
    "segmented": ("segmented", (228, 205, 218), (195, 160, 185), 0.45),
    "bilobed": ("bilobed", (200, 175, 215), (130, 70, 130), 0.6),
    "eosinophil": ("bilobed", (240, 170, 140), (225, 110, 80), 0.45),
    "basophil": ("segmented", (200, 170, 210), (60, 30, 90), 0.5),
    "monocyte": ("kidney", (185, 190, 215), None, 0.6),
    "lymphocyte": ("round", (150, 175, 225), None, 0.85),
    "plasma": ("eccentric", (120, 140, 205), None, 0.5),
    "erythroid": ("round", (185, 150, 185), None, 0.6),
    "megakaryocyte": ("segmented", (210, 180, 215), (170, 110, 170), 0.55),
    "smudge": ("smudge", (225, 210, 225), None, 0.9),
    "artefact": ("none", (200, 190, 200), (120, 90, 120), 0.0),
}
_NUCLEUS = (85, 45, 120)


def blood_cell(rng: np.random.Generator, size: tuple[int, int], style: str) -> Image.Image:
    """An RGB crop of one leukocyte-like cell among red cells on a pale pink background."""
    shape, cyto, granule, ratio = _STYLES[style]
    w, h = size
    base = np.empty((h, w, 3), np.float32)
    base[:] = (236, 226, 230)
    base += rng.normal(0, 3, (h, w, 1))
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(img)
    side = min(w, h)
    for _ in range(int(rng.integers(3, 8))):  # red cells with a pale centre
        x, y, r = float(rng.uniform(0, w)), float(rng.uniform(0, h)), float(rng.uniform(0.09, 0.13) * side)
        d.ellipse((x - r, y - r, x + r, y + r), fill=(222, 160, 165))
        d.ellipse((x - r / 2.5, y - r / 2.5, x + r / 2.5, y + r / 2.5), fill=(232, 190, 192))
    cx, cy = w / 2 + float(rng.normal(0, side * 0.03)), h / 2 + float(rng.normal(0, side * 0.03))
    r = float(rng.uniform(0.28, 0.36) * side)
    if shape != "none":
        d.ellipse((cx - r, cy - r * 0.95, cx + r, cy + r * 0.95), fill=cyto)
    if granule:
        for _ in range(60):
            a, rr = float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(0, r * 0.9))
            gx, gy = cx + rr * np.cos(a), cy + rr * np.sin(a)
            d.ellipse((gx - 1.5, gy - 1.5, gx + 1.5, gy + 1.5), fill=granule)
    nr = r * ratio
    if shape in ("round", "smudge"):
        d.ellipse((cx - nr, cy - nr, cx + nr, cy + nr), fill=_NUCLEUS if shape == "round" else (150, 110, 170))
    elif shape == "eccentric":
        d.ellipse((cx - r * 0.1 - nr, cy - nr, cx - r * 0.1 + nr, cy + nr), fill=_NUCLEUS)
    elif shape == "kidney":
        d.ellipse((cx - nr, cy - nr * 0.8, cx + nr, cy + nr * 0.8), fill=_NUCLEUS)
        d.ellipse((cx + nr * 0.3, cy - nr * 0.4, cx + nr * 1.1, cy + nr * 0.4), fill=cyto)
    elif shape == "band":
        d.arc((cx - r * 0.6, cy - r * 0.6, cx + r * 0.6, cy + r * 0.6), 30, 330, fill=_NUCLEUS,
              width=max(2, int(r * 0.25)))
    elif shape in ("segmented", "bilobed"):
        lobes = 2 if shape == "bilobed" else int(rng.integers(3, 5))
        for k in range(lobes):
            a = 2 * np.pi * k / lobes + float(rng.uniform(0, 0.5))
            lx, ly, lr = cx + r * 0.4 * np.cos(a), cy + r * 0.4 * np.sin(a), nr * 0.55
            d.ellipse((lx - lr, ly - lr, lx + lr, ly + lr), fill=_NUCLEUS)
    img = img.filter(ImageFilter.GaussianBlur(0.6))
    arr = np.asarray(img, np.float32) + rng.normal(0, 4, (h, w, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def cytology_picture(corpus: str, seed: int, cls: int, n: int, size: tuple[int, int], fmt: str,
                     malignant: float = 0.0) -> bytes:
    """A synthetic cytology picture: cell-like shapes whose nucleus/cytoplasm ratio grows with `malignant`
    (0..1), encoded as `fmt` (PNG, JPEG, TIFF, BMP). Deterministic for (corpus, seed, cls, n)."""
    rng: np.random.Generator = synth.rng_for(corpus, seed, cls, n)
    img, _ = synth.cell_field(rng, size, n_cells=int(rng.integers(2, 7)), nucleus_scale=0.22 + 0.3 * malignant,
                              tint=cls)
    kw = {"quality": 90} if fmt.upper() in ("JPEG", "JPG") else {}
    return synth.encode(img, fmt, **kw)
