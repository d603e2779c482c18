"""Benchmark: `cytohub mix` against a plain pyarrow concatenation of the same shards (issue 13, item 6).

Sources: full-scale synthetic builds (`cytohub synthesize NAME --scale full`, then `cytohub build`), made in
--work if missing. Default: the cervical corpora that are practical at full scale on a laptop (CCCID, Herlev,
Mendeley LBC, CRIC; full-scale SIPaKMeD alone is about 10 GB of BMP). Variants, alternated --repeat times,
best of each kept:
  concat    pyarrow: `pq.read_table` of every shard of every source, `pa.concat_tables`, one `pq.write_table`
            (pyarrow's defaults: snappy for every column) - every row, no filtering, no labels changed;
  concat+   the same with the options cytohub's writer uses (`cytohub.writer.parquet_options`: zstd except on
            images, page index, content-defined chunking), one file;
  mix       `cytohub.mix.mix(..., audit=False)`: per-source row groups, new labels, filter, `source`, shards in
            data/<source>/, card, croissant.json, figures, report and manifest (the sources' shards hashed
            against their builds' manifests on a thread while rows are read, the mix's own files hashed for its
            manifest; rows written are the kept rows); `mix copy` is the same
            run without the time spent drawing the card's figures (a fixed cost: a few dozen images decoded);
  hash      the trust work inside `mix`, timed alone: the sha256 of the sources' shards against their builds'
            manifests (`cytohub.mix.verify_sources`, on a thread during the mix) plus the manifest of the mix's
            own files (`cytohub.manifest.compute`); builds pay the second part too. `mix copy - hash` is `mix
            copy` less that time: the copy itself;
  audit     the duplicate audit alone on the mix (`cytohub.audit.audit`: sha256 + pHash of every image; it decodes
            every image, which the copy never does).
Rows per second are rows read from the sources per wall-clock second; CPU seconds (this process) are given
too, as wall time varies on a shared machine.

Usage: python benchmarks/mix_speed.py [--work DIR] [--repeat N] [--corpora a,b,c]
Prints a table and writes benchmarks/results/mix_speed.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT = ("cccid", "herlev", "mendeley-lbc", "cric")


def ensure_builds(work: Path, corpora: list[str]) -> list[Path]:
    cytohub = str(Path(sys.executable).with_name("cytohub"))
    folders = []
    for name in corpora:
        raw, out = work / f"raw-{name}-full", work / f"build-{name}-full"
        report = out / "build-report.json"
        if not report.exists() or "manifest" not in json.loads(report.read_text()):  # a build of this cytohub
            if not raw.exists():
                subprocess.run([cytohub, "synthesize", name, "--to", str(raw), "--scale", "full", "--quiet"],
                               check=True)
            from cytohub import registry

            split = [] if registry.get(name).splits else ["--split", "train=0.7,validation=0.1,test=0.2"]
            subprocess.run([cytohub, "build", name, "--raw", str(raw), "--out", str(out), "--quiet", "--overwrite",
                            *split], check=True)
        folders.append(out)
    return folders


def _timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - t0, time.process_time() - c0


def concat(folders: list[Path], dest: Path, cytohub_options: bool) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cytohub.writer import parquet_options

    tables = []
    for folder in folders:
        for shard in sorted((folder / "data").glob("*.parquet")):
            tables.append(pq.read_table(shard).replace_schema_metadata(None))
    table = pa.concat_tables(tables)
    if cytohub_options:
        pq.write_table(table, dest, row_group_size=100, **parquet_options(table.schema, compress_images=False))
    else:
        pq.write_table(table, dest)
    return table.num_rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=HERE / "results" / "work")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--corpora", default=",".join(DEFAULT))
    args = ap.parse_args()
    corpora = [c.strip() for c in args.corpora.split(",") if c.strip()]
    args.work.mkdir(parents=True, exist_ok=True)
    folders = ensure_builds(args.work, corpora)
    import cytohub.mix
    from cytohub.audit import audit
    from cytohub.mix import mix

    figure_time = [0.0, 0.0]
    draw = cytohub.mix._figures

    def timed_figures(*a, **k):  # the figures' share of a mix run
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            return draw(*a, **k)
        finally:
            figure_time[:] = [time.perf_counter() - t0, time.process_time() - c0]

    cytohub.mix._figures = timed_figures

    rows_read = sum(json.loads((f / "build-report.json").read_text())["num_rows"] for f in folders)
    image_bytes = sum(p.stat().st_size for f in folders for p in (f / "data").glob("*.parquet"))
    out = args.work / "mix-out"
    best: dict[str, tuple[float, float]] = {}
    kept = 0
    for _ in range(args.repeat):
        for variant in ("concat", "concat+", "mix"):
            dest = args.work / "concat.parquet"
            if variant == "mix":
                shutil.rmtree(out, ignore_errors=True)  # as the concatenation writes a new file: not timed
                res, wall, cpu = _timed(lambda: mix("bench", folders, out, taxonomy="bethesda-2014", audit=False))
                kept = res.report["num_rows"]
                copy = (wall - figure_time[0], cpu - figure_time[1])
                best["mix copy"] = min(best.get("mix copy", copy), copy)
            else:
                n, wall, cpu = _timed(lambda v=variant, d=dest: concat(folders, d, v == "concat+"))
                assert n == rows_read
                dest.unlink()
            best[variant] = min(best.get(variant, (wall, cpu)), (wall, cpu))
    from cytohub import manifest
    from cytohub.mix import open_source, verify_sources

    srcs = [open_source(f) for f in folders]
    _, wall, cpu = _timed(lambda: (verify_sources(srcs), manifest.compute(out)))
    best["hash"] = (wall, cpu)
    best["mix copy - hash"] = (best["mix copy"][0] - wall, best["mix copy"][1] - cpu)
    _, wall, cpu = _timed(lambda: audit([out], verify=False))  # as mix runs it (the copy is verified above)
    best["audit"] = (wall, cpu)
    summary = {
        "corpora": corpora, "rows_read": rows_read, "rows_kept": kept, "source_parquet_mb": round(image_bytes / 1e6, 1),
        "seconds": {k: {"wall": round(w, 2), "cpu": round(c, 2)} for k, (w, c) in best.items()},
        "rows_per_s": {k: round(rows_read / w) for k, (w, _) in best.items()},
        "mix_over_concat": round(best["concat"][0] / best["mix"][0], 2),
        "mix_over_concat_cytohub_options": round(best["concat+"][0] / best["mix"][0], 2),
        "mix_over_concat_cpu": round(best["concat"][1] / best["mix"][1], 2),
        "mix_over_concat_cytohub_options_cpu": round(best["concat+"][1] / best["mix"][1], 2),
        "mix_copy_over_concat_cytohub_options_cpu": round(best["concat+"][1] / best["mix copy"][1], 2),
        "mix_copy_without_hashing_over_concat_cytohub_options_cpu": round(
            best["concat+"][1] / best["mix copy - hash"][1], 2),
        "hashed_mb": round((image_bytes + sum(p.stat().st_size for p in (out / "data").rglob("*.parquet"))) / 1e6, 1),
        "repeat": args.repeat,
        "command": "python benchmarks/mix_speed.py" + (f" --corpora {args.corpora}" if corpora != list(DEFAULT)
                                                        else ""),
    }
    print(f"{rows_read:,} rows ({summary['source_parquet_mb']} MB of shards) from {', '.join(corpora)}; "
          f"mix keeps {kept:,}")
    for k, (w, c) in best.items():
        print(f"  {k:15} {w:7.2f} s wall {c:7.2f} s cpu  {rows_read / w:9,.0f} rows/s")
    shutil.rmtree(out, ignore_errors=True)
    print(f"mix copy (without the figures) / concat with cytohub's options, cpu: "
          f"{summary['mix_copy_over_concat_cytohub_options_cpu']}; without the hashing "
          f"({summary['hashed_mb']} MB hashed): {summary['mix_copy_without_hashing_over_concat_cytohub_options_cpu']}")
    print(f"mix / pyarrow concat (rows/s): {summary['mix_over_concat']} (defaults), "
          f"{summary['mix_over_concat_cytohub_options']} (cytohub's writer options); cpu ratios "
          f"{summary['mix_over_concat_cpu']} and {summary['mix_over_concat_cytohub_options_cpu']}")
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "mix_speed.json").write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
