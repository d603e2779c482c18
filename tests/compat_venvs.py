"""Virtual environments with the `datasets` releases that cytohub builds must load with.

Each is minimal (`pip install datasets==X.Y.Z pillow`, nothing of cytohub: a user only has `datasets`),
kept between runs under `.venv-compat/datasets-X.Y.Z/` in the repository (gitignored) and marked complete
by a stamp file, so an interrupted creation is redone. Missing ones are created in parallel, reusing pip's
download cache. `make test` runs `python tests/compat_venvs.py` first; tests/test_compat.py calls
`ensure()` too, so `pytest` alone also works. A file lock keeps parallel pytest workers from creating the
same environment twice.

The versions: the oldest 3.x still in wide use, the first 4.x, and the newest 4.x and 5.x releases. Bump the
last two when `datasets` publishes a newer release.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

VERSIONS = ("3.6.0", "4.0.0", "4.8.5", "5.2.0")
ROOT = Path(__file__).resolve().parents[1] / ".venv-compat"
STAMP = ".cytohub-compat-ok"


def python_of(version: str) -> Path:
    return ROOT / f"datasets-{version}" / "bin" / "python"


def _ready(version: str) -> bool:
    stamp = ROOT / f"datasets-{version}" / STAMP
    return stamp.is_file() and stamp.read_text().strip() == version and python_of(version).is_file()


def ensure(versions: tuple[str, ...] = VERSIONS, quiet: bool = True) -> dict[str, Path]:
    """The Python interpreter of each version's environment, creating missing ones (in parallel).
    Raises RuntimeError with pip's output when an environment cannot be created."""
    ROOT.mkdir(exist_ok=True)
    with open(ROOT / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        missing = [v for v in versions if not _ready(v)]
        procs = {}
        t0 = time.monotonic()
        for v in missing:
            folder = ROOT / f"datasets-{v}"
            shutil.rmtree(folder, ignore_errors=True)
            script = (f'"{sys.executable}" -m venv "{folder}" && "{folder}/bin/python" -m pip install --quiet '
                      f'--disable-pip-version-check "datasets=={v}" pillow')
            log = open(ROOT / f"datasets-{v}.log", "w")  # noqa: SIM115 (closed below)
            procs[v] = (subprocess.Popen(["sh", "-c", script], stdout=log, stderr=subprocess.STDOUT), log)
        failed = []
        for v, (proc, log) in procs.items():
            rc = proc.wait()
            log.close()
            if rc == 0:
                (ROOT / f"datasets-{v}" / STAMP).write_text(v + "\n")
            else:
                failed.append(f"datasets {v}:\n{(ROOT / f'datasets-{v}.log').read_text()[-2000:]}")
        if failed:
            raise RuntimeError("could not create the compatibility environments:\n" + "\n".join(failed))
        if missing and not quiet:
            print(f"created {len(missing)} environment(s) ({', '.join(missing)}) under {ROOT.name}/ in "
                  f"{time.monotonic() - t0:.0f} s", file=sys.stderr)
    return {v: python_of(v) for v in versions}


if __name__ == "__main__":
    os.chdir(ROOT.parent)
    ensure(quiet=False)
