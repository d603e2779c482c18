"""Hostile raw input against a real `cytohub build`: exit code, message, peak RSS and peak temporary disk.

Each case makes its input in a scratch folder, runs `cytohub build cccid --raw INPUT` in a child process with
`--tmp-dir` pointing at a folder that is watched for its size, and reports the child's peak RSS
(getrusage) and the largest size the temporary folder reached. The goal: every case gives one clear line
(or a correct build), peak RSS under 1 GB and temporary disk under the configured limits.

    python benchmarks/hostile_raw.py [--keep DIR] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import contextlib

from test_raw_hostile import craft_zip, zero_deflate, zeros_crc  # noqa: E402

MiB = 2**20
_JPG = "NILM/1. Superficial-Intermediate Cells/001_(100,100,0).jpg"  # a member name the CCCID builder reads


def _zip(entries, method=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in entries:
            z.writestr(name, data)
    return buf.getvalue()


def case_zip_bomb(d: Path) -> Path:
    """6 GiB of zeros in a 6 MB zip."""
    (d / "bomb.zip").write_bytes(craft_zip([{"name": _JPG, "data": zero_deflate(6144), "method": 8,
                                             "size": 6 * 2**30, "crc": 0}]))
    return d / "bomb.zip"


def case_nested_bomb(d: Path) -> Path:
    """A 1 GiB zero-filled 'inner.zip' inside a 1 MB zip."""
    (d / "nest.zip").write_bytes(craft_zip([{"name": "inner.zip", "data": zero_deflate(1024), "method": 8,
                                             "size": 2**30, "crc": zeros_crc(1024)}]))
    return d / "nest.zip"


def case_deep_nesting(d: Path) -> Path:
    """A zip of 25 MB of incompressible data nested four levels deep (each level stored)."""
    level = _zip([("data.bin", os.urandom(25 * MiB))])
    for i in range(3):
        level = _zip([(f"level{i}.zip", level)])
    (d / "deep.zip").write_bytes(level)
    return d / "deep.zip"


def case_lying_header(d: Path) -> Path:
    """Eleven focal planes, each declaring 1000 bytes but inflating to 512 MiB."""
    data = zero_deflate(512)
    (d / "liar.zip").write_bytes(craft_zip([{"name": _JPG.replace(",0)", f",{z})"), "data": data, "method": 8,
                                             "size": 1000, "crc": 0} for z in range(11)]))
    return d / "liar.zip"


def case_tar_bomb(d: Path) -> Path:
    """A tar.gz of 2 GiB of zeros (2 MB)."""
    with gzip.open(d / "bomb.tar.gz", "wb", compresslevel=1) as gz, tarfile.open(fileobj=gz, mode="w|") as tf:
        info = tarfile.TarInfo("NILM/zeros.jpg")
        info.size = 2 * 2**30
        zeros = bytes(MiB)

        class Zeros(io.RawIOBase):
            left = info.size

            def readable(self):
                return True

            def readinto(self, b):
                n = min(len(b), self.left, len(zeros))
                b[:n] = zeros[:n]
                self.left -= n
                return n

        tf.addfile(info, io.BufferedReader(Zeros(), MiB))
    return d / "bomb.tar.gz"


def case_7z_bomb(d: Path) -> Path:
    """A 7z of 1 GiB of zeros."""
    import py7zr

    src = d / "zeros.bin"
    with open(src, "wb") as fh:
        fh.truncate(2**30)
    with py7zr.SevenZipFile(d / "bomb.7z", "w") as z:
        z.write(src, "NILM/zeros.jpg")
    src.unlink()
    return d / "bomb.7z"


def case_zip_bomb_ratio_lifted(d: Path) -> tuple[Path, list[str]]:
    """Eleven focal planes of 1 GiB of zeros each (11 MB), with the ratio limit lifted: the image size limit
    refuses the first plane read before decompressing it."""
    data = zero_deflate(1024)
    (d / "bomb.zip").write_bytes(craft_zip([{"name": _JPG.replace(",0)", f",{z})"), "data": data, "method": 8,
                                             "size": 2**30, "crc": 0} for z in range(11)]))
    return d / "bomb.zip", ["--limit", "compression_ratio=1000000"]


def case_7z_bomb_ratio_lifted(d: Path) -> tuple[Path, list[str]]:
    """The 1 GiB 7z bomb with the ratio limit lifted and unpacked_bytes at 512 MiB: refused before unpacking."""
    return case_7z_bomb(d), ["--limit", "compression_ratio=1000000", "--limit", "unpacked_bytes=512MiB"]


def case_fifo(d: Path) -> Path:
    """A folder holding a named pipe next to an ordinary file."""
    (d / "raw").mkdir()
    (d / "raw" / "notes.txt").write_text("x")
    os.mkfifo(d / "raw" / "pipe.jpg")
    return d / "raw"


def case_truncated_zip_of_zips(d: Path) -> Path:
    """A zip of nine per-slide zips, cut after the third (an interrupted download)."""
    inners = [_zip([(f"s{i}/img.jpg", os.urandom(20000))], zipfile.ZIP_DEFLATED) for i in range(9)]
    whole = _zip([(f"CCAgT/s{i}.zip", z) for i, z in enumerate(inners)])
    cut = zipfile.ZipFile(io.BytesIO(whole)).infolist()[3].header_offset + 10
    (d / "ccagt.zip").write_bytes(whole[:cut])
    return d / "ccagt.zip"


def case_valid_cccid(d: Path) -> Path:
    """A valid synthetic CCCID download (small scale), for comparison."""
    from cytohub import registry

    registry.get("cccid").synthesize(d / "cccid", "small")
    return d / "cccid"


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


def _du(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, f)).st_blocks * 512
    return total


# the child reports its own peak RSS (VmHWM, kB: that of its own image, unlike ru_maxrss, which a child inherits
# from its parent) as the last line of stderr, whatever way it exits
_CHILD = ("import atexit, sys\n"
          "atexit.register(lambda: sys.stderr.write('\\nMAXRSS ' + [l.split()[1] for l in open('/proc/self/status')"
          " if l.startswith('VmHWM')][0] + '\\n'))\n"
          "sys.argv[0] = 'cytohub'\n"
          "from cytohub.cli import main\n"
          "main()\n")


def run_case(name: str, work: Path) -> dict:
    d = work / name
    d.mkdir(parents=True)
    raw = CASES[name](d)
    raw, extra = raw if isinstance(raw, tuple) else (raw, [])
    tmp = d / "tmp"
    tmp.mkdir()
    peak = [0]
    done = threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], _du(tmp))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    t0 = time.monotonic()
    cmd = [sys.executable, "-c", _CHILD, "build", "cccid", "--raw", str(raw), "--out", str(d / "out"), "--tmp-dir",
           str(tmp), "--quiet", *extra]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    seconds = time.monotonic() - t0
    done.set()
    watcher.join()
    lines = res.stderr.strip().splitlines()
    rss_kb = int(lines.pop().split()[1]) if lines and lines[-1].startswith("MAXRSS ") else 0
    msg = " ".join(lines).strip() or res.stdout.strip().replace("\n", " ")
    return {"case": name, "exit": res.returncode, "seconds": seconds, "peak_rss_mb": rss_kb / 1024,
            "peak_tmp_mb": peak[0] / MiB, "message": msg[:160], "input_mb": _du(d) / MiB if raw.is_dir() else
            raw.stat().st_size / MiB}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", type=Path, help="work in this folder and keep it")
    ap.add_argument("--only", nargs="*", choices=sorted(CASES), help="run only these cases")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="cytohub-hostile-"))
    try:
        print(f"{'case':24} {'exit':>4} {'input MB':>9} {'s':>6} {'peak RSS MB':>11} {'peak tmp MB':>11}  message")
        for name in args.only or list(CASES):
            r = run_case(name, work)
            print(f"{r['case']:24} {r['exit']:>4} {r['input_mb']:>9.1f} {r['seconds']:>6.1f} {r['peak_rss_mb']:>11.0f} "
                  f"{r['peak_tmp_mb']:>11.1f}  {r['message']}", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
