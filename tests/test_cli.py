"""The command line as a user meets it: listing and filtering, help, suggestions, quiet and plain output."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from cytohub import registry
from cytohub.cli import app

runner = CliRunner()
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _names(args: list[str]) -> list[str]:
    result = runner.invoke(app, ["list", "--json", *args])
    assert result.exit_code == 0, result.output
    return [r["name"] for r in json.loads(result.output)]


def test_list_fits_80_columns_and_names_every_corpus():
    result = runner.invoke(app, ["list"], terminal_width=80)
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80, max(lines, key=len)
    listed = {line.split()[0].rstrip("*") for line in lines[1:] if line and not line[0].isdigit() and line[0] != "*"}
    assert listed == set(registry.builders())
    assert any(line.startswith("agmc-tu*") for line in lines)  # unverified layouts are starred
    assert any(line.startswith("cccid ") for line in lines)


def test_list_filters():
    assert _names(["--task", "det"]) == _names(["--task", "object-detection"])
    detection = _names(["--task", "detection"])
    assert "cric" in detection and "cccid" not in detection
    assert all("object-detection" in registry.builders()[n].task_categories for n in detection)
    marrow = _names(["--organ", "marrow"])
    assert set(marrow) == {n for n, b in registry.builders().items() if "marrow" in (b.organ or "")}
    assert marrow and "cccid" not in marrow
    assert set(_names(["--license", "cc-by-4.0"])) == {n for n, b in registry.builders().items()
                                                      if b.license == "cc-by-4.0"}
    gated = _names(["--redistribution", "gated", "--organ", "cervix"])
    assert gated and all(registry.builders()[n].redistribution == "gated" for n in gated)
    bad = runner.invoke(app, ["list", "--redistribution", "sometimes"])
    assert bad.exit_code == 2 and "expected allowed, gated or forbidden" in bad.output


def test_quiet_is_accepted_where_the_readme_says():
    names = runner.invoke(app, ["list", "--quiet"])
    assert names.exit_code == 0 and names.output.split() == list(registry.builders())
    info = runner.invoke(app, ["info", "cccid", "--quiet"])
    assert info.exit_code == 0 and info.output == ""
    assert runner.invoke(app, ["info", "no-such", "-q"]).exit_code == 2


def test_unknown_corpus_suggests_the_closest_names():
    result = runner.invoke(app, ["info", "cccd"])
    assert result.exit_code == 2
    assert "did you mean 'cccid'" in result.output
    result = runner.invoke(app, ["build", "sipakmd", "--raw", "."])
    assert result.exit_code == 2 and "did you mean 'sipakmed'" in result.output
    result = runner.invoke(app, ["info", "zzzzzz"])
    assert "did you mean" not in result.output and "cytohub list" in result.output


def test_help_shows_flags_without_a_value_type():
    for command in ("build", "push", "list", "validate"):
        result = runner.invoke(app, [command, "--help"], terminal_width=120)
        assert result.exit_code == 0
        text = ANSI.sub("", result.output)
        assert "<bool>" not in text, command
        assert "--no-overwrite" not in text and "--no-private" not in text
    assert "<path>" in ANSI.sub("", runner.invoke(app, ["build", "--help"], terminal_width=120).output)


def test_argument_errors_do_not_load_the_build_engine():
    """An argument error is answered before the heavy imports (datasets, pyarrow): no waiting for a typo."""
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from cytohub.cli import app\n"
        "r = CliRunner()\n"
        "for args in (['build', 'nope'], ['build', 'cccid', '--raw', 'no/such/dir'], ['validate', 'no/such'],\n"
        "             ['push', 'no/such', '--repo', 'a/b'], ['push', '.', '--repo', 'ab'], ['demo', 'nope']):\n"
        "    assert r.invoke(app, args).exit_code == 2, args\n"
        "heavy = [m for m in ('datasets', 'pyarrow', 'cytohub.build', 'cytohub.validate', 'huggingface_hub')\n"
        "         if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_plain_output_when_not_a_terminal(tmp_path):
    """Piped output (logs, CI) carries no escape codes and no blank lines from progress displays."""
    cytohub = Path(sys.executable).with_name("cytohub")
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")}
    raw, out = tmp_path / "raw", tmp_path / "out"
    steps = [["synthesize", "herlev", "--to", str(raw)], ["build", "herlev", "--raw", str(raw), "--out", str(out)],
             ["validate", str(out)], ["list"]]
    for args in steps:
        done = subprocess.run([str(cytohub), *args], capture_output=True, text=True, env=env, check=True)
        for stream in (done.stdout, done.stderr):
            assert not ANSI.search(stream), (args, stream)
            assert "\n\n" not in stream.strip("\n") or args == ["list"], (args, stream)
        assert done.stderr == "", (args, done.stderr)


def test_output_into_a_closed_pipe_exits_141_quietly():
    """`cytohub list --json | head -1` and friends: a reader that went away is not an error (it used to be an
    'internal error: BrokenPipeError' with a saved traceback for print() output, exit 1 for rich output)."""
    cytohub = Path(sys.executable).with_name("cytohub")
    for args in (["list", "--json"], ["list"], ["info", "cccid"]):
        r, w = os.pipe()
        os.close(r)  # the reader is gone before cytohub writes anything
        try:
            proc = subprocess.run([str(cytohub), *args], stdout=w, stderr=subprocess.PIPE, text=True, timeout=120)
        finally:
            os.close(w)
        assert (proc.returncode, proc.stderr) == (141, ""), (args, proc.returncode, proc.stderr[-500:])
