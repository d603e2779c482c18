"""Benchmark: streaming a build folder with a 2-worker DataLoader against a 2-process pyarrow + PIL scan.

Both variants read the same local shards of the `train` split and decode every image (image + focal stack)
in two worker processes; only small results travel back to the parent:
  stream  `load_dataset(folder, split="train", streaming=True)`, a `map` that counts the decoded images
          (it runs in the DataLoader's workers, like a training transform), `DataLoader(num_workers=2)`
  scan    a pool of 2 processes, each reading its share of the shards row group by row group with pyarrow
          and decoding the same bytes with PIL
Target (issue 11): stream >= 0.9x scan (rows per second). Alternated --repeat times, best of each kept.

Usage: python benchmarks/stream_read.py [--work DIR] [--repeat N] [--folder BUILD] [--batch-size N]
(default folder: the full-scale CCCID build of benchmarks/build_cccid.py, built if missing)
Prints a table and writes benchmarks/results/stream_read.json.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKERS = 2


def _scan_shards(paths: list[str]) -> tuple[int, int]:
    import pyarrow.parquet as pq
    from PIL import Image

    rows = images = 0
    for path in paths:
        pf = pq.ParquetFile(path)
        for rg in range(pf.num_row_groups):
            table = pf.read_row_group(rg, columns=["image", "focal_stack"])
            for row in table.to_pylist():
                for data in [row["image"]["bytes"]] + [p["bytes"] for p in row["focal_stack"]]:
                    Image.open(io.BytesIO(data)).load()
                    images += 1
                rows += 1
    return rows, images


def scan(folder: Path) -> tuple[int, int, float]:
    from concurrent.futures import ProcessPoolExecutor

    t0 = time.perf_counter()
    shards = sorted(str(p) for p in (folder / "data").glob("train-*.parquet"))
    with ProcessPoolExecutor(WORKERS) as pool:
        parts = list(pool.map(_scan_shards, [shards[i::WORKERS] for i in range(WORKERS)]))
    return sum(p[0] for p in parts), sum(p[1] for p in parts), time.perf_counter() - t0


def _count(row: dict) -> dict:
    for im in [row["image"], *row["focal_stack"]]:
        im.load()  # datasets decodes already; make sure every pixel is in memory, as in the scan
    return {"images": 1 + len(row["focal_stack"])}


def stream(folder: Path, batch_size: int | None = None) -> tuple[int, int, float]:
    import datasets
    from torch.utils.data import DataLoader

    t0 = time.perf_counter()
    ds = datasets.load_dataset(str(folder), split="train", streaming=True)
    ds = ds.map(_count, remove_columns=list(ds.features))
    rows = images = 0
    for item in DataLoader(ds, batch_size=batch_size, num_workers=WORKERS):
        counts = [int(item["images"])] if batch_size is None else item["images"].tolist()
        rows += len(counts)
        images += sum(counts)
    return rows, images, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=HERE / "results" / "work")
    ap.add_argument("--folder", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=None, help="DataLoader batch size (default: rows one by one, "
                    "each row sent from its worker on its own; a batch is collated in the worker)")
    args = ap.parse_args()
    folder = args.folder or args.work / "out-cytohub"
    if not (folder / "build-report.json").exists():
        cytohub = str(Path(sys.executable).with_name("cytohub"))
        raw = args.work / "raw-cccid-full"
        if not (raw / "CCCID_SCC_etc.zip.7z").exists():
            subprocess.run([cytohub, "synthesize", "cccid", "--to", str(raw), "--scale", "full", "--quiet"],
                           check=True)
        subprocess.run([cytohub, "build", "cccid", "--raw", str(raw), "--out", str(folder), "--quiet"], check=True)
    shards = len(list((folder / "data").glob("train-*.parquet")))
    t_stream, t_scan = [], []
    for _ in range(args.repeat):
        rows, images, s = stream(folder, args.batch_size)
        lrows, limages, l_s = scan(folder)
        assert (rows, images) == (lrows, limages), "both variants must see the same rows and images"
        t_stream.append(s)
        t_scan.append(l_s)
    best_stream, best_scan = min(t_stream), min(t_scan)
    summary = {"folder": folder.name, "train_shards": shards, "rows": rows, "images": images,
               "stream_seconds": round(best_stream, 2), "scan_seconds": round(best_scan, 2),
               "stream_over_scan": round(best_scan / best_stream, 2), "repeat": args.repeat,
               "batch_size": args.batch_size,
               "command": "python benchmarks/stream_read.py" + (f" --repeat {args.repeat}" if args.repeat != 3 else "")
               + (f" --batch-size {args.batch_size}" if args.batch_size else "")}
    print(f"{rows} rows, {images} images, {shards} train shards: DataLoader(2 workers, batch_size={args.batch_size}) "
          f"streaming {best_stream:.2f} s, "
          f"2-process pyarrow+PIL scan {best_scan:.2f} s; ratio {summary['stream_over_scan']} (target >= 0.9)")
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "stream_read.json").write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
