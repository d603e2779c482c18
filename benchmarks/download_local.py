"""Benchmark: `cytohub download` against a local HTTP server (tests/fileserver.py in its own process).

Measures, for --files files of --mb MB each (random bytes) served on 127.0.0.1:
* the floor: one plain urllib GET per file, written to disk and hashed with sha256, one after another;
* `cytohub.download.download` (resumable, fsync, sha256, record) with --jobs 1 and with --jobs 4;
* a resumed transfer: the connection is cut half-way through every file once; bytes sent by the server
  over bytes of the files (1.0 = nothing sent twice).

Usage: python benchmarks/download_local.py [--files 4] [--mb 64]
Prints a table and writes benchmarks/results/download_local.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

SERVE = """
import json, sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from fileserver import FileServer
server = FileServer(Path(sys.argv[2])).start()
print(server.url, flush=True)
for line in sys.stdin:  # commands from the parent: one JSON per line
    cmd = json.loads(line)
    if cmd["op"] == "fail":
        server.fail(cmd["path"], *cmd["faults"])
        print("ok", flush=True)
    elif cmd["op"] == "sent":
        print(json.dumps(server.sent), flush=True)
        server.sent.clear()
server.stop()
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--mb", type=int, default=64)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    from cytohub.builder import Builder, Source
    from cytohub.download import RetryPolicy, download

    tmp = Path(tempfile.mkdtemp(prefix="cytohub-bench-dl-"))
    root = tmp / "served" / "bench"
    root.mkdir(parents=True)
    size = args.mb * 2**20
    rng = random.Random(0)
    for i in range(args.files):
        (root / f"f{i}.bin").write_bytes(rng.randbytes(size))
    server = subprocess.Popen([sys.executable, "-c", SERVE, str(REPO / "tests"), str(tmp / "served")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(cmd: dict) -> str:
        server.stdin.write(json.dumps(cmd) + "\n")
        server.stdin.flush()
        return server.stdout.readline().strip()

    rows = []
    try:
        url = server.stdout.readline().strip()
        names = [f"f{i}.bin" for i in range(args.files)]
        total = size * args.files

        def floor() -> None:
            out = tmp / "floor"
            out.mkdir(exist_ok=True)
            for n in names:
                h = hashlib.sha256()
                with urllib.request.urlopen(f"{url}/bench/{n}") as resp, open(out / n, "wb") as fh:
                    while chunk := resp.read(1 << 20):
                        fh.write(chunk)
                        h.update(chunk)

        bench = type("Bench", (Builder,), {"name": "bench", "pretty_name": "Bench", "sources": tuple(
            Source(n, url=f"{url}/bench/{n}", direct=True) for n in names)})

        def cytohub(jobs: int, dest: str) -> None:
            download(bench, tmp / dest, jobs=jobs, retry=RetryPolicy(sleep=lambda s: None))

        for label, fn in (("urllib GET + sha256, sequential (floor)", floor),
                          ("cytohub download --jobs 1", lambda: cytohub(1, "j1")),
                          ("cytohub download --jobs 4", lambda: cytohub(4, "j4"))):
            ask({"op": "sent"})
            t0 = time.perf_counter()
            fn()
            seconds = time.perf_counter() - t0
            rows.append({"what": label, "seconds": round(seconds, 3), "MB/s": round(total / 2**20 / seconds, 1)})
        ask({"op": "sent"})
        for n in names:
            ask({"op": "fail", "path": f"/bench/{n}", "faults": [{"drop_after": size // 2}]})
        t0 = time.perf_counter()
        cytohub(2, "resumed")
        seconds = time.perf_counter() - t0
        sent = sum(json.loads(ask({"op": "sent"})).values())
        rows.append({"what": "cytohub download --jobs 2, every file cut at 50%", "seconds": round(seconds, 3),
                     "MB/s": round(total / 2**20 / seconds, 1), "bytes sent / file bytes": round(sent / total, 3)})
    finally:
        server.stdin.close()
        server.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{args.files} files x {args.mb} MB from 127.0.0.1 (cpus: {os.cpu_count()})")
    for r in rows:
        extra = f"  sent/bytes {r['bytes sent / file bytes']}" if "bytes sent / file bytes" in r else ""
        print(f"  {r['what']:52} {r['seconds']:8.2f} s  {r['MB/s']:8.1f} MB/s{extra}")
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "download_local.json").write_text(json.dumps(
        {"files": args.files, "mb": args.mb, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
