"""A fresh Hub-compatible server (tests/hubserver.py) in its own process, with its own storage, for the
benchmarks that push and read back: like a remote Hub, it does not share the measuring process's GIL.

    with LocalHub() as hub:
        subprocess.run([...], env=hub.env)   # or os.environ.update(hub.env) before importing the Hub libraries
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"

SERVE = """
import sys
sys.path.insert(0, sys.argv[1])
from hubserver import HubServer
server = HubServer(sys.argv[2]).start()
print(server.url, flush=True)
sys.stdin.read()  # serve until the parent closes our stdin
server.stop()
"""


class LocalHub:
    """`url` of the server and `env`: this process's environment pointed at it (HF_ENDPOINT, the LFS upload path
    with HF_HUB_DISABLE_XET=1, a private HF_HOME, no telemetry, no progress bars, no token)."""

    def __enter__(self) -> LocalHub:
        self.tmp = Path(tempfile.mkdtemp(prefix="cytohub-bench-hub-"))
        self.proc = subprocess.Popen([sys.executable, "-c", SERVE, str(TESTS), str(self.tmp / "server")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().strip()
        self.env = {**os.environ, "HF_ENDPOINT": self.url, "HF_HUB_DISABLE_XET": "1",
                    "HF_HOME": str(self.tmp / "hf_home"), "HF_HUB_DISABLE_TELEMETRY": "1",
                    "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
        self.env.pop("HF_TOKEN", None)
        return self

    def __exit__(self, *exc) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        shutil.rmtree(self.tmp, ignore_errors=True)
