"""The README's Python snippets run as written: against a build at `out/cccid` (synthetic; a recipe mix of the
small builds at `out/<recipe>`) and, for the Hub lines, against the local Hub server with that build pushed
as `my-lab/cccid`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def _snippets() -> list[str]:
    return BLOCK.findall(README.read_text(encoding="utf-8"))


def test_readme_has_python_snippets():
    assert len(_snippets()) >= 1


@pytest.fixture(scope="module")
def readme_world(tmp_path_factory, built, hub_server):
    """A working folder with `out/<corpus>` builds, and those builds pushed as `my-lab/<corpus>`."""
    from typer.testing import CliRunner

    from cytohub.cli import app

    names = sorted(set(re.findall(r'"(?:out|my-lab)/([a-z0-9-]+)"', "\n".join(_snippets()))))
    work = tmp_path_factory.mktemp("readme")
    from cytohub.mix import RECIPES, mix

    for name in names:
        if name in RECIPES:  # a benchmark mix (`cytohub mix --recipe`) of the small builds, kept local
            mix(None, [built(c) for c in RECIPES[name].corpora], work / "out" / name, recipe=name,
                allow_leakage=True)
            continue
        shutil.copytree(built(name), work / "out" / name)
        result = CliRunner().invoke(app, ["push", str(work / "out" / name), "--repo", f"my-lab/{name}",
                                          "--allow-synthetic", "--quiet"])
        assert result.exit_code == 0, result.output
    return work


@pytest.mark.parametrize("index", range(len(_snippets())))
def test_readme_snippet_runs_as_written(readme_world, index):
    code = _snippets()[index]
    done = subprocess.run([sys.executable, "-c", code], cwd=readme_world, capture_output=True, text=True,
                          env=dict(os.environ), timeout=600)
    assert done.returncode == 0, f"README snippet {index + 1} failed:\n{code}\n{done.stderr[-3000:]}"
