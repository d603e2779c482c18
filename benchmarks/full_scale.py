"""Every corpus at full scale: synthesize the published counts, build them, check the rows, measure.

    .venv/bin/python benchmarks/full_scale.py                  # all corpora
    .venv/bin/python benchmarks/full_scale.py bone-marrow cric # only these
    .venv/bin/python benchmarks/full_scale.py --tmp /big/disk --max-seconds 3600 --json results.json

For each corpus: `cytohub synthesize NAME --scale full` into a temporary folder (timed), then a build in a
child process (timed; its peak resident memory is read from the child's own resource usage, `ru_maxrss`),
then the rows per split are compared with the published counts (or, where the publisher gives none, with the
per-split counts the builder's full-scale synthetic data declare). Prints one table row per corpus and exits
non-zero if any corpus fails or mismatches. Not a test: it takes long and needs tens of GB of disk.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cytohub import registry

BUILD_SCRIPT = """
import json, sys
from cytohub import registry
from cytohub.build import build
b = registry.get(sys.argv[1])
r = build(b, sys.argv[2], sys.argv[3], split=None, overwrite=True).report
print(json.dumps({"rows": r["num_rows"], "splits": {s: v["num_examples"] for s, v in r["splits"].items()}}))
"""


def expected_rows(name: str) -> tuple[int | dict[str, int], str]:
    """(rows or {split: rows}, where the number comes from) for a full-scale build of `name`: the builder
    module's `full_scale_rows()` where rows are not simply the published `num_images` (rows are tiles, cells or
    stacks, the published split counts are checked, or the publisher gives no count and the builder documents
    the plausible number its full-scale synthetic data use), else `num_images`."""
    cls = registry.builders()[name]
    declared = getattr(sys.modules[cls.__module__], "full_scale_rows", None)
    if declared is not None:
        return declared(), "declared by the builder's full-scale synthetic data"
    if cls.num_images is None:
        raise SystemExit(f"{name}: no published count and no full_scale_rows() in {cls.__module__}")
    return cls.num_images, "published"


def run(name: str, tmp: Path, max_seconds: float) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"full-{name}-", dir=tmp))
    raw, out = work / "raw", work / "out"
    result: dict = {"corpus": name}
    try:
        t0 = time.monotonic()
        exe = Path(sys.executable).with_name("cytohub")
        subprocess.run([str(exe), "synthesize", name, "--to", str(raw), "--scale", "full", "--quiet"],
                       check=True, timeout=max_seconds)
        result["synth_s"] = time.monotonic() - t0
        result["raw_gb"] = sum(p.stat().st_size for p in raw.rglob("*") if p.is_file()) / 1e9
        t0 = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-c", BUILD_SCRIPT, name, str(raw), str(out)],
                                stdout=subprocess.PIPE, text=True)
        deadline = time.monotonic() + max_seconds
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                raise TimeoutError(f"build took over {max_seconds:.0f} s")
            time.sleep(0.2)
        result["build_s"] = time.monotonic() - t0
        result["peak_rss_mb"] = usage.ru_maxrss / 1024  # kilobytes on Linux
        text = proc.stdout.read()
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"build exited with {proc.returncode}")
        built = json.loads(text.strip().splitlines()[-1])
        result.update(built)
        want, source = expected_rows(name)
        result["expected"], result["source"] = want, source
        got = built["splits"] if isinstance(want, dict) else built["rows"]
        result["ok"] = got == want
    except Exception as exc:  # one corpus failing must not stop the others
        result["ok"], result["error"] = False, f"{type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="corpora (default: all)")
    ap.add_argument("--tmp", type=Path, default=None, help="where to synthesize and build (default: TMPDIR)")
    ap.add_argument("--max-seconds", type=float, default=3600, help="give up a phase after this long")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here (appended per corpus)")
    args = ap.parse_args()
    names = args.names or list(registry.builders())
    print(f"{'corpus':24} {'rows':>8} {'expected':>8} {'ok':>3} {'raw GB':>7} {'synth s':>8} {'build s':>8} "
          f"{'peak RSS MB':>11}", flush=True)
    results = []
    for name in names:
        r = run(registry.get(name).name, args.tmp, args.max_seconds)
        results.append(r)
        exp = r.get("expected")
        exp_n = sum(exp.values()) if isinstance(exp, dict) else exp
        print(f"{r['corpus']:24} {r.get('rows', '-')!s:>8} {exp_n if exp_n is not None else '-'!s:>8} "
              f"{'yes' if r['ok'] else 'NO':>3} {r.get('raw_gb', 0):7.2f} {r.get('synth_s', 0):8.1f} "
              f"{r.get('build_s', 0):8.1f} {r.get('peak_rss_mb', 0):11.0f}"
              + (f"  {r['error']}" if "error" in r else "")
              + (f"  splits {r['splits']} vs {exp}" if not r["ok"] and "splits" in r else ""), flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
