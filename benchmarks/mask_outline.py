"""Benchmark: outline polygons of Cx22's 512 x 512 instance masks, per image.

Times `cytohub.formats.masks.outer_polygon` (labels and traces the crop of each mask's box) against the
whole-canvas approach cytohub used before (label the 512 x 512 canvas, fill holes on it, collect every pixel
edge in a dict, walk), on every cytoplasm, nucleus and clump mask of each image of a Cx22 subset archive, and
checks that both give a polygon enclosing the same pixels.

Usage: python benchmarks/mask_outline.py CX22_ZIP [--subset Cx22-Multi-Test] [--images N]
(e.g. the Cx22-Multi-Test.zip of the Cx22 download). Prints one line per image and the mean.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def whole_canvas_outline(mask: np.ndarray) -> list[float] | None:
    """The earlier whole-canvas method (4-connected largest component, holes filled on the full canvas)."""
    from scipy import ndimage

    lab, n = ndimage.label(mask)
    if n == 0:
        return None
    comp = lab == (int(np.argmax(np.bincount(lab.ravel())[1:])) + 1) if n > 1 else lab == 1
    comp = ndimage.binary_fill_holes(comp)
    p = np.pad(comp, 1)
    inner = p[1:-1, 1:-1]
    nxt: dict[tuple[int, int], tuple[int, int]] = {}
    for r, c in zip(*np.nonzero(inner & ~p[:-2, 1:-1]), strict=True):
        nxt[(c, r)] = (c + 1, r)
    for r, c in zip(*np.nonzero(inner & ~p[1:-1, 2:]), strict=True):
        nxt[(c + 1, r)] = (c + 1, r + 1)
    for r, c in zip(*np.nonzero(inner & ~p[2:, 1:-1]), strict=True):
        nxt[(c + 1, r + 1)] = (c, r + 1)
    for r, c in zip(*np.nonzero(inner & ~p[1:-1, :-2]), strict=True):
        nxt[(c, r + 1)] = (c, r)
    start = min(nxt, key=lambda v: (v[1], v[0]))
    loop, v = [start], nxt[start]
    while v != start:
        loop.append(v)
        v = nxt[v]
    return [float(t) for xy in loop for t in xy]


def main() -> None:
    from cytohub.formats import matlab
    from cytohub.formats.masks import outer_polygon
    from cytohub.raw import RawTree

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("zip", type=Path)
    ap.add_argument("--subset", default="Cx22-Multi-Test")
    ap.add_argument("--images", type=int, default=100)
    args = ap.parse_args()
    with RawTree(args.zip) as tree:
        files = [tree.get(f"{args.zip.name}/{args.subset}/{rel}") for rel in (
            "cyto/cyto_ins.mat", "nuc/nuc_ins.mat", "cyto/cyto_clumps.mat", "nuc/nuc_clumps.mat")]
        handles = [matlab.MatFile(f) for f in files]
        cells = [mf.cell(f.name[:-4]) for mf, f in zip(handles, files, strict=True)]
        before, after = [], []
        for i in range(min(args.images, len(cells[0]))):
            masks = [np.asarray(m).astype(bool) for c in cells for m in c[i]]
            t0 = time.perf_counter()
            old = [whole_canvas_outline(m) for m in masks]
            t1 = time.perf_counter()
            new = [outer_polygon(m) for m in masks]
            t2 = time.perf_counter()
            same = sum(_area(a) == _area(b) for a, b in zip(old, new, strict=True))
            before.append(t1 - t0)
            after.append(t2 - t1)
            print(f"image {i + 1:3d}: {len(masks):3d} masks  whole canvas {t1 - t0:6.3f} s  cropped {t2 - t1:6.3f} s"
                  f"  same enclosed area {same}/{len(masks)}")
        for mf in handles:
            mf.close()
    print(f"mean per image: whole canvas {np.mean(before):.3f} s, cropped {np.mean(after):.3f} s "
          f"({np.mean(before) / max(np.mean(after), 1e-9):.0f}x)")


def _area(poly: list[float] | None) -> float:
    if not poly:
        return 0.0
    xs, ys = np.asarray(poly[0::2]), np.asarray(poly[1::2])
    return 0.5 * abs(float(np.sum(xs * np.roll(ys, -1) - np.roll(xs, -1) * ys)))


if __name__ == "__main__":
    main()
