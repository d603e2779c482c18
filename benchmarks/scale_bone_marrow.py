"""Benchmark: `cytohub build bone-marrow` at 10k, 30k, 100k, 171k rows and a 1M-row corpus.

The raw data are synthetic zips in bone-marrow's exact Kaggle layout (`bone_marrow_cell_dataset/<CODE>/
[<range>/]<CODE>_NNNNN.jpg`, class counts in the published proportions). A benchmark-only generator writes
them fast: a pool of distinct encoded cells per class is reused (the build never compares pixels), 250x250
JPEGs for the 10k..171k series as published, and tiny 24x24 JPEGs for the 1M-row corpus (what is measured
there is per-row bookkeeping, not bytes).

For each size, one child process runs the CLI build (`--allow-partial` below the published 171,374 images,
`--limit files=` twice the rows for the 1M-row corpus); measured: wall time, peak RSS of the whole process tree
(the build and its workers, summed), peak temporary disk (the staging folder next to `--out` plus
TMPDIR) against the finished output's size. Targets (issue): time linear in rows, RSS flat and < 400 MB,
temporary disk <= 1.2x the output.

Usage: python benchmarks/scale_bone_marrow.py [--work DIR] [--sizes 10000,30000,100000,171374,1000000]
       [--repeat N] [--num-proc N]
Prints a table and writes benchmarks/results/scale_bone_marrow.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from measure import run  # noqa: E402


def generate(path: Path, rows: int, tiny: bool) -> None:
    """A bone-marrow-layout zip with `rows` images, classes in the published proportions."""
    import numpy as np
    from PIL import Image

    from cytohub import synth
    from cytohub.builders import bone_marrow as bm
    from cytohub.synthetic_pictures import blood_cell

    total = sum(bm.COUNTS.values())
    counts = {c: max(1, round(rows * n / total)) for c, n in bm.COUNTS.items()}
    counts["ART"] += rows - sum(counts.values())
    cap = 99_999  # file names have five digits: spread what a class cannot hold over the others
    while max(counts.values()) > cap:
        over = sum(max(0, n - cap) for n in counts.values())
        counts = {c: min(n, cap) for c, n in counts.items()}
        room = [c for c in bm.CODES if counts[c] < cap]
        for k, c in enumerate(room):
            counts[c] += over // len(room) + (k < over % len(room))
    styles = {c[0]: c[4] for c in bm.CLASSES}
    size = (24, 24) if tiny else (250, 250)
    pool = {}
    for code in bm.CODES:
        imgs = []
        for k in range(8 if tiny else 32):
            img = blood_cell(synth.rng_for("bench-bm", 0, code, k), (250, 250), styles[code])
            if tiny:
                img = img.resize(size, Image.Resampling.BILINEAR)
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=85)
            imgs.append(buf.getvalue())
        pool[code] = imgs
    rng = np.random.default_rng(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("abbreviations.csv", "Abbreviation;Meaning\n" + "".join(f"{c};{n}\n" for c, n, *_ in bm.CLASSES))
        for code in bm.CODES:
            picks = rng.integers(0, len(pool[code]), counts[code])
            for i in range(1, counts[code] + 1):
                sub = f"{bm.range_folder(i, counts[code])}/" if counts[code] > 1000 else ""
                zf.writestr(f"{bm.DATA_FOLDER}/{code}/{sub}{code}_{i:05d}.jpg", pool[code][picks[i - 1]])
    os.replace(tmp, path)


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=HERE / "results" / "work")
    ap.add_argument("--sizes", default="10000,30000,100000,171374,1000000")
    ap.add_argument("--repeat", type=int, default=1, help="builds per size (the fastest is reported)")
    ap.add_argument("--num-proc", type=int, default=None)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    cytohub = str(Path(sys.executable).with_name("cytohub"))
    results = []
    for rows in sizes:
        tiny = rows > 171374
        raw = args.work / f"raw-bone-marrow-{rows}{'-tiny' if tiny else ''}.zip"
        if not raw.exists():
            t0 = time.perf_counter()
            generate(raw, rows, tiny)
            print(f"generated {raw.name} ({raw.stat().st_size / 2**20:.0f} MB) in {time.perf_counter() - t0:.0f} s",
                  file=sys.stderr)
        best = None
        for _ in range(args.repeat):
            out = args.work / f"out-bone-marrow-{rows}"
            tmp = args.work / f"tmp-{rows}"
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            staging_parent = out.parent
            cmd = [cytohub, "build", "bone-marrow", "--raw", str(raw), "--out", str(out), "--quiet",
                   "--tmp-dir", str(tmp), "--limit", f"files={2 * rows}"]
            if rows != 171374:  # fewer (or more) images than published: a partial build, said so in the card
                cmd.append("--allow-partial")
            if args.num_proc:
                cmd += ["--num-proc", str(args.num_proc)]
            # staging folders are hidden siblings of --out: watch every one of them, plus the unpack folder
            watch = _StagingWatch(staging_parent, out.name, tmp)
            m = run(cmd, watch=watch)
            out_mb = folder_mb(out)
            entry = {"rows": rows, "tiny_images": tiny, "raw_mb": round(raw.stat().st_size / 2**20, 1),
                     "seconds": round(m.seconds, 2), "peak_rss_mb": round(m.peak_rss_mb, 1),
                     "peak_main_rss_mb": round(m.peak_main_rss_mb, 1), "peak_temp_mb": round(m.peak_disk_mb, 1),
                     "output_mb": round(out_mb, 1), "temp_over_output": round(m.peak_disk_mb / out_mb, 3),
                     "shards": len(list((out / "data").glob("*.parquet")))}
            if best is None or entry["seconds"] < best["seconds"]:
                best = entry
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(tmp, ignore_errors=True)
        results.append(best)
        print(json.dumps(best), file=sys.stderr)
    print(f"{'rows':>8} {'raw MB':>8} {'s':>7} {'us/row':>7} {'RSS MB':>7} {'main MB':>8} {'temp/out':>9} "
          f"{'shards':>6}")
    for r in results:
        print(f"{r['rows']:>8} {r['raw_mb']:>8} {r['seconds']:>7} {1e6 * r['seconds'] / r['rows']:>7.0f} "
              f"{r['peak_rss_mb']:>7} {r['peak_main_rss_mb']:>8} {r['temp_over_output']:>9} {r['shards']:>6}"
              + (" (tiny images)" if r["tiny_images"] else ""))
    summary = {"results": results, "repeat": args.repeat, "num_proc": args.num_proc,
               "command": "python benchmarks/scale_bone_marrow.py --sizes " + args.sizes
               + (f" --repeat {args.repeat}" if args.repeat > 1 else "")}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "scale_bone_marrow.json").write_text(json.dumps(summary, indent=1) + "\n")


class _StagingWatch(list):
    """The folders to measure: hidden staging siblings of `out` (found when sampled) and the tmp folder."""

    def __init__(self, parent: Path, name: str, tmp: Path) -> None:
        super().__init__()
        self.parent, self.name, self.tmp = parent, name, tmp

    def __iter__(self):
        yield from (p for p in self.parent.glob(f".{self.name}.cytohub-*") if p.is_dir())
        yield self.tmp

    def __bool__(self) -> bool:
        return True


if __name__ == "__main__":
    main()
