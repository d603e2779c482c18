"""Run-length encodings of binary masks, as three publishers write them.

* COCO (pycocotools): `{"size": [h, w], "counts": [...]}`, runs over the column-major (Fortran-order) flattened
  mask, alternating 0 and 1 and starting with a (possibly empty) run of 0; `counts` is a list of ints
  ("uncompressed", used for `iscrowd` regions in COCO files) or a string ("compressed": pycocotools'
  `rleToString`, each count as 5-bit groups in ASCII characters 48.., counts after the second stored as the
  difference to the count two places before).
* CISD (Cell Instance Segmentation Dataset): the same alternation starting with 0, but over the row-major
  (C-order) flattened mask of shape `size` = [h, w].
* Kaggle / 2018 Data Science Bowl: text 'start length start length ...', starts 1-based, pixels numbered top to
  bottom then left to right (column-major); only the runs of 1 are listed.

Every decoder checks the runs against the mask size (they must fill it exactly, or stay inside it) and the size
against CYTOHUB_MAX_MASK_PIXELS (default 2**28, far above the largest real masks) before allocating, and
raises ValueError with the reason; callers add the file and record.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cytohub import limits

MAX_MASK_PIXELS = limits.current().mask_pixels  # defaults and environment variable: cytohub.limits


def mask_shape(size: Sequence[object]) -> tuple[int, int]:
    """[height, width] as two whole numbers within CYTOHUB_MAX_MASK_PIXELS, else ValueError."""
    if isinstance(size, str | bytes) or len(size) != 2:
        raise ValueError(f"size {size!r} is not [height, width]")
    dims = []
    for v in size:
        if isinstance(v, bool) or not isinstance(v, int | float) or v != int(v) or v < 0:
            raise ValueError(f"size {list(size)!r} is not two whole numbers [height, width]")
        dims.append(int(v))
    h, w = dims
    if h * w > MAX_MASK_PIXELS:
        raise ValueError(f"size {h} x {w} is over the limit of {MAX_MASK_PIXELS:,} pixels "
                         "(set CYTOHUB_MAX_MASK_PIXELS to raise it)")
    return h, w


def run_lengths(counts: Sequence[object], total: int) -> np.ndarray:
    """Run lengths as whole numbers >= 0 that sum to `total` (the mask's pixels), else ValueError."""
    if isinstance(counts, str | bytes):
        raise ValueError("counts is text where a list of run lengths was expected")
    if any(isinstance(c, bool) or not isinstance(c, int | float) or c != int(c) for c in counts):
        raise ValueError("run lengths must be whole numbers")
    arr = np.asarray([int(c) for c in counts], np.int64)
    if (arr < 0).any():
        raise ValueError("negative run length")
    if int(arr.sum()) != total:
        raise ValueError(f"run lengths sum to {int(arr.sum())}, expected height x width = {total}")
    return arr


def _alternating(counts: np.ndarray) -> np.ndarray:
    return np.repeat((np.arange(len(counts)) % 2).astype(bool), counts)


def _runs(flat: np.ndarray) -> list[int]:
    """Alternating run lengths of a flat boolean array, starting with a run of 0 (empty when flat[0] is 1)."""
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(np.concatenate([[0], change, [flat.size]])).tolist()
    if flat.size and flat[0]:
        counts = [0, *counts]
    return [int(c) for c in counts]


# ------------------------------------------------------------------------------------------------------- COCO
def coco_decode(rle: dict) -> np.ndarray:
    """A COCO RLE dict (counts as a list or a compressed string) -> a boolean mask of shape (h, w)."""
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise ValueError("expected an RLE object {'size': [h, w], 'counts': ...}")
    h, w = mask_shape(rle["size"])
    counts = rle["counts"]
    if isinstance(counts, str):
        counts = coco_string_to_counts(counts)
    arr = run_lengths(counts, h * w)
    return _alternating(arr).reshape((h, w), order="F")


def coco_encode(mask: np.ndarray) -> dict:
    """A boolean mask (h, w) -> COCO uncompressed RLE {'size': [h, w], 'counts': [ints]}."""
    mask = np.asarray(mask, bool)
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": _runs(mask.ravel(order="F"))}


def coco_string_to_counts(text: str) -> list[int]:
    """pycocotools' compressed counts string -> the list of run lengths (rleFrString)."""
    counts: list[int] = []
    pos, n = 0, len(text)
    while pos < n:
        x, k, more = 0, 0, True
        while more:
            if pos >= n:
                raise ValueError("compressed RLE string ends inside a count")
            c = ord(text[pos]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"character {text[pos]!r} is not part of a compressed RLE string")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            pos += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
            if k > 13:  # 64-bit counts need at most 13 groups of 5 bits
                raise ValueError("compressed RLE count longer than 64 bits")
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def coco_counts_to_string(counts: Sequence[int]) -> str:
    """Run lengths -> pycocotools' compressed counts string (rleToString)."""
    out = []
    for i, c in enumerate(counts):
        x = int(c) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            ch = x & 0x1F
            x >>= 5
            more = x != -1 if ch & 0x10 else x != 0
            if more:
                ch |= 0x20
            out.append(chr(ch + 48))
    return "".join(out)


def coco_compress(rle: dict) -> dict:
    """A COCO RLE with list counts -> the same RLE with compressed string counts (unchanged if already one)."""
    if isinstance(rle.get("counts"), str):
        return {"size": list(rle["size"]), "counts": rle["counts"]}
    return {"size": [int(v) for v in rle["size"]], "counts": coco_counts_to_string(rle["counts"])}


# ------------------------------------------------------------------------------------------------------- CISD
def cisd_decode(counts: Sequence[object], size: Sequence[object]) -> np.ndarray:
    """CISD run lengths (alternating 0/1 from 0, row-major) over a mask of `size` = [h, w] -> bool (h, w)."""
    h, w = mask_shape(size)
    return _alternating(run_lengths(counts, h * w)).reshape(h, w)


def cisd_encode(mask: np.ndarray) -> dict:
    """The inverse of `cisd_decode`: {'counts': [...], 'size': [h, w]} (a leading 0 when the first pixel is 1)."""
    mask = np.asarray(mask, bool)
    return {"counts": _runs(mask.ravel()), "size": [int(mask.shape[0]), int(mask.shape[1])]}


# ------------------------------------------------------------------------------------------------- Kaggle/DSB
def kaggle_decode(text: str, height: int, width: int) -> np.ndarray:
    """Kaggle run lengths ('start length ...', 1-based starts, column-major) -> bool (height, width).

    Runs may come in any order but must be positive, inside the image and must not overlap (an overlap would
    mean the encoder and this decoder disagree)."""
    h, w = mask_shape([height, width])
    values = text.split()
    if not all(v.isascii() and v.isdigit() and len(v) <= 20 for v in values):  # int() takes '1_0', '١٠' too
        raise ValueError("run lengths must be whole numbers of ASCII digits")
    nums = [int(v) for v in values]
    if len(nums) % 2:
        raise ValueError("odd number of values; expected start/length pairs")
    pairs = sorted(zip(nums[::2], nums[1::2], strict=True))
    flat = np.zeros(h * w, bool)
    end = 0
    for start, length in pairs:
        if start < 1 or length < 1 or start - 1 + length > flat.size:
            raise ValueError(f"run ({start}, {length}) outside a {h}x{w} image")
        if start - 1 < end:
            raise ValueError(f"run ({start}, {length}) overlaps the run before it")
        flat[start - 1:start - 1 + length] = True
        end = start - 1 + length
    return flat.reshape(w, h).T


def kaggle_encode(mask: np.ndarray) -> str:
    """The inverse of `kaggle_decode` (runs in increasing order)."""
    flat = np.concatenate([[False], np.asarray(mask, bool).T.ravel(), [False]])
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1  # 1-based starts and ends (exclusive) alternate
    starts, ends = edges[::2], edges[1::2]
    return " ".join(f"{s} {e - s}" for s, e in zip(starts, ends, strict=True))
