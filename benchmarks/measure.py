"""Run a command and measure it: wall time, peak memory (the process's own peak RSS, and the peak of its whole
process tree summed as proportional set size, so pages shared by forked workers count once),
and peak disk used under given folders (temporary space: staging folder, spool, unpacked archives).

Sampling every 50 ms from /proc (Linux). Used by the benchmark scripts in this folder.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Measured:
    seconds: float
    peak_rss_mb: float  # the largest sum of PSS over the process and all its descendants at one moment
    peak_main_rss_mb: float  # ru_maxrss of the process itself
    peak_disk_mb: float  # the largest total size of the watched folders at one moment


def _children(pid: int) -> list[int]:
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out += [int(c) for c in fh.read().split()]
    except OSError:
        pass
    return out


def _rss_kb(pid: int) -> int:
    """Proportional set size (Pss): pages shared by forked workers are counted once in a sum, not per process."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_mb(pid: int) -> float:
    todo, total = [pid], 0
    while todo:
        p = todo.pop()
        total += _rss_kb(p)
        todo += _children(p)
    return total / 1024


def disk_mb(folders: list[Path]) -> float:
    total = 0
    for folder in folders:
        for dirpath, _, files in os.walk(folder):
            for f in files:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
    return total / 2**20


def run(cmd: list[str], watch: list[Path] | None = None, env: dict | None = None) -> Measured:
    """Run `cmd` to completion (raises on failure) while sampling RSS and the size of `watch` folders."""
    watch = watch or []
    peak = {"rss": 0.0, "disk": 0.0}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env)
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak["rss"] = max(peak["rss"], tree_rss_mb(proc.pid))
            if watch:
                peak["disk"] = max(peak["disk"], disk_mb(watch))
            stop.wait(0.05)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    stop.set()
    thread.join()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark step failed: {' '.join(map(str, cmd))}")
    return Measured(wall, peak["rss"], usage.ru_maxrss / 1024, peak["disk"])
