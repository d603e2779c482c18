"""Benchmark: `cytohub push` against `huggingface_hub.upload_folder` of the same build folder (full-scale
synthetic CCCID), and an unchanged re-push against listing the remote tree.

Targets (issue 9): push <= 1.5x upload_folder; re-push of an unchanged folder <= 2x the time to list the remote
tree. Every measurement runs against a fresh local Hub-compatible server (tests/hubserver.py, LFS path) in its own
process with its own storage, so nothing is deduplicated between measurements.

Two views:
  library  in one warm process (imports done), the calls a user's code makes:
           push    = check_publishable + Publisher.push (validation: manifest sha256, structure, a sample of
                     decodes, load_dataset first/last rows; then the upload)
           upload  = HfApi.create_repo + HfApi.upload_folder
           re-push = check_publishable + Publisher.push again (nothing changed)
           list    = HfApi.list_repo_tree(recursive=True)
  CLI      each command a new process: `cytohub push --quiet` against `python -c "...upload_folder..."`, and an
           unchanged `cytohub push` against `python -c "...list_repo_tree..."`.
The best of --repeat runs of each is kept (this machine's speed drifts).

Usage: python benchmarks/push_vs_upload.py [--work DIR] [--repeat N]
(reuses the full-scale CCCID build of benchmarks/push_stream.py / build_cccid.py if present)
Prints a table and writes benchmarks/results/push_vs_upload.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from local_hub import LocalHub

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

CHILD = """
import json, sys, time
mode, folder = sys.argv[1], sys.argv[2]
from huggingface_hub import HfApi
api = HfApi()
out = {}
if mode == "upload":
    t0 = time.perf_counter()
    api.create_repo("bench/upload", repo_type="dataset")
    api.upload_folder(folder_path=folder, repo_id="bench/upload", repo_type="dataset")
    out["upload"] = time.perf_counter() - t0
else:
    from pathlib import Path
    import cytohub.validate, scipy.io  # warm imports, as in a process that already uses cytohub
    from cytohub import hub, registry
    registry.builders()
    def push():
        t0 = time.perf_counter()
        build = hub.check_publishable(Path(folder), private=False, allow_synthetic=True)
        result = hub.Publisher().push(build, "bench/push")
        return time.perf_counter() - t0, result.committed
    out["push"], committed = push()
    assert committed
    repush = []
    for _ in range(5):
        t, committed = push()
        assert not committed
        repush.append(t)
    listing = []
    for _ in range(5):
        t0 = time.perf_counter()
        list(api.list_repo_tree("bench/push", repo_type="dataset", recursive=True))
        listing.append(time.perf_counter() - t0)
    out["repush"], out["list"] = min(repush), min(listing)
print(json.dumps(out))
"""

CLI_UPLOAD = ("from huggingface_hub import HfApi; import sys; a = HfApi(); a.create_repo('bench/cli-upload', "
              "repo_type='dataset'); a.upload_folder(folder_path=sys.argv[1], repo_id='bench/cli-upload', "
              "repo_type='dataset')")
CLI_LIST = ("from huggingface_hub import HfApi; list(HfApi().list_repo_tree('bench/cli-push', repo_type='dataset', "
            "recursive=True))")


class Server(LocalHub):
    """A fresh Hub-compatible server in its own process, with its own storage, and the runs made against it."""

    def run(self, args: list[str]) -> float:
        t0 = time.perf_counter()
        subprocess.run(args, check=True, env=self.env, stdout=subprocess.PIPE)
        return time.perf_counter() - t0

    def child(self, mode: str, folder: Path) -> dict:
        done = subprocess.run([sys.executable, "-c", CHILD, mode, str(folder)], check=True, env=self.env,
                              stdout=subprocess.PIPE, text=True)
        return json.loads(done.stdout.strip().splitlines()[-1])



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=HERE / "results" / "work")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    folder = args.work / "out-cytohub"
    cytohub = str(Path(sys.executable).with_name("cytohub"))
    if not (folder / "build-report.json").exists():
        raw = args.work / "raw-cccid-full"
        if not (raw / "CCCID_SCC_etc.zip.7z").exists():
            subprocess.run([cytohub, "synthesize", "cccid", "--to", str(raw), "--scale", "full", "--quiet"],
                           check=True)
        subprocess.run([cytohub, "build", "cccid", "--raw", str(raw), "--out", str(folder), "--quiet"], check=True)
    size_mb = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6
    best: dict[str, float] = {}

    def keep(key: str, value: float) -> None:
        best[key] = min(best.get(key, float("inf")), value)

    for _ in range(args.repeat):  # alternate the variants, each against its own fresh server
        with Server() as s:
            keep("upload", s.child("upload", folder)["upload"])
        with Server() as s:
            for key, value in s.child("push", folder).items():
                keep(key, value)
        with Server() as s:
            keep("cli_upload", s.run([sys.executable, "-c", CLI_UPLOAD, str(folder)]))
        with Server() as s:
            push = [cytohub, "push", str(folder), "--repo", "bench/cli-push", "--allow-synthetic", "--quiet"]
            keep("cli_push", s.run(push))
            keep("cli_repush", s.run(push))
            keep("cli_list", s.run([sys.executable, "-c", CLI_LIST]))

    summary = {
        "folder_mb": round(size_mb, 1), "files": sum(1 for p in folder.rglob("*") if p.is_file()),
        **{f"{k}_seconds": round(v, 3) for k, v in sorted(best.items())},
        "push_over_upload": round(best["push"] / best["upload"], 2),
        "repush_over_list": round(best["repush"] / best["list"], 2),
        "cli_push_over_upload": round(best["cli_push"] / best["cli_upload"], 2),
        "cli_repush_over_list": round(best["cli_repush"] / best["cli_list"], 2),
        "repeat": args.repeat,
        "command": "python benchmarks/push_vs_upload.py" + (f" --repeat {args.repeat}" if args.repeat != 3 else ""),
    }
    print(f"full-scale CCCID build folder: {size_mb:.0f} MB in {summary['files']} files")
    print(f"library: push {best['push']:.2f} s vs upload_folder {best['upload']:.2f} s -> "
          f"{summary['push_over_upload']}x (target <= 1.5x)")
    print(f"library: unchanged re-push {best['repush'] * 1e3:.0f} ms vs list tree {best['list'] * 1e3:.0f} ms -> "
          f"{summary['repush_over_list']}x (target <= 2x)")
    print(f"CLI: push {best['cli_push']:.2f} s vs upload_folder {best['cli_upload']:.2f} s -> "
          f"{summary['cli_push_over_upload']}x; re-push {best['cli_repush']:.2f} s vs list {best['cli_list']:.2f} s "
          f"-> {summary['cli_repush_over_list']}x")
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "push_vs_upload.json").write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
