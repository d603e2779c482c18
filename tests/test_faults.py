"""No traceback reaches a user, and faults leave nothing behind: library errors name the raw file, bugs save
a traceback, bad options and destinations are one line, a full disk, SIGTERM, Ctrl-C during start-up and two
builds to one folder are handled. Every input is made here."""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from cytohub import errors, registry
from cytohub.build import build, parse_size
from cytohub.cli import app
from cytohub.errors import CytohubError, OutputError, RawFileError, ResourceError
from cytohub.output import DestinationLock
from folder_corpus import FolderCorpus, encode

TESTS = Path(__file__).resolve().parent
EXE = Path(sys.executable).with_name("cytohub")


def _raw(tmp_path: Path, **files: bytes) -> Path:
    raw = tmp_path / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    (raw / "a.png").write_bytes(encode(Image.new("RGB", (16, 8), (200, 50, 50)), "PNG"))
    for name, data in files.items():
        (raw / name.replace("__", ".")).write_bytes(data)
    return raw


def _cli(monkeypatch, *args: str):
    """Run the CLI in-process with the test corpus registered as `test-folder`."""
    real_get = registry.get
    monkeypatch.setattr(registry, "get", lambda n: FolderCorpus() if n == "test-folder" else real_get(n))
    return CliRunner().invoke(app, list(args))


def _one_line(output: str) -> str:
    text = output.strip()
    assert "Traceback" not in text, text
    return " ".join(text.split())


# --------------------------------------------------------------------------------------------- library errors
@pytest.mark.parametrize("name,data,cause", [
    ("broken__z", b"\x78\x9c" + b"\xff" * 40, "cannot be read (zlib.error: Error -3 while decompressing data"),
    ("deep__json", b"[" * 200_000 + b"]" * 200_000, "nested too deeply to read"),
    ("huge__huge", struct.pack("<Q", 2**62) + b"\0" * 8, "ran out of memory while reading it"),
    ("bad__json", b'{"a": ', "cannot be read (JSONDecodeError: Expecting value"),
])
def test_a_library_error_names_the_raw_file(tmp_path, monkeypatch, name, data, cause):
    raw = _raw(tmp_path, **{name: data})
    out = tmp_path / "out"
    result = _cli(monkeypatch, "build", "test-folder", "--raw", str(raw), "--out", str(out), "--quiet")
    assert result.exit_code == 2, result.output
    line = _one_line(result.output)
    assert line.startswith(f"error: {name.replace('__', '.')}: {cause}"), line
    assert not out.exists() and not list(tmp_path.glob(".out.cytohub*"))


def test_a_bug_prints_one_line_and_saves_the_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("CYTOHUB_HOME", str(tmp_path / "home"))
    raw = _raw(tmp_path, x__bug=b"anything")
    result = _cli(monkeypatch, "build", "test-folder", "--raw", str(raw), "--out", str(tmp_path / "out"))
    assert result.exit_code == 70, result.output
    line = _one_line(result.output)
    assert line.startswith("internal error: KeyError: 'a key the builder forgot' (while the test-folder builder "
                           "was reading the raw file x.bug). This is a bug in cytohub; please report it with the "
                           "traceback saved in "), line
    saved = Path(line.rsplit(" ", 1)[1])
    assert saved.parent == tmp_path / "home" / "logs"
    text = saved.read_text()
    assert "Traceback (most recent call last)" in text and "folder_corpus.py" in text and "KeyError" in text
    assert not (tmp_path / "out").exists()


def test_a_worker_that_dies_is_one_line(tmp_path):
    raw = _raw(tmp_path, x__crash=b"")
    with pytest.raises(ResourceError, match=r"a worker process of the test-folder build stopped abruptly \(killed "
                                            r"by the system, .*Run the build again with --num-proc 1"):
        build(FolderCorpus(), raw, tmp_path / "out", num_proc=2)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.cytohub*"))


def test_a_disk_error_under_a_reader_s_message_is_said_as_such():
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RawFileError("x.7z: not a readable 7z archive; the file may be truncated or corrupt") from None
    except RawFileError as exc:
        wrapped = exc
    told = errors.explain(wrapped, "x.7z")
    assert isinstance(told, OutputError) and str(told) == "x.7z: no space left on the device"
    assert errors.explain(KeyError("k"), "x.json") is None  # a bug
    assert errors.explain(KeyboardInterrupt(), None) is None


# --------------------------------------------------------------------------------------------- options, --out
@pytest.mark.parametrize("text", ["nanMB", "infGB", "-5MB", "0", "1e400"])
def test_max_shard_size_must_be_a_positive_finite_size(text):
    with pytest.raises(CytohubError, match="expected a positive, finite size"):
        parse_size(text)


def test_bad_max_shard_size_is_one_line_from_the_cli(tmp_path, monkeypatch):
    raw = _raw(tmp_path)
    result = _cli(monkeypatch, "build", "test-folder", "--raw", str(raw), "--out", str(tmp_path / "o"),
                  "--max-shard-size", "nanMB")
    assert result.exit_code == 2
    assert _one_line(result.output) == "error: size 'nanMB': expected a positive, finite size such as 500MB"


def test_out_must_be_a_folder_cytohub_may_replace(tmp_path, monkeypatch):
    raw = _raw(tmp_path / "box")
    (tmp_path / "afile").write_text("x")
    work = tmp_path / "work" / "sub"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    cases = {
        str(tmp_path / "afile"): "is a file, not a folder",
        ".": "is the current folder or contains it",
        "..": "is the current folder or contains it",
        str(raw / "inside"): "is inside the raw data",
        str(raw): "is inside the raw data",
        str(tmp_path / "box"): "contains the raw data",
    }
    for out, needle in cases.items():
        result = _cli(monkeypatch, "build", "test-folder", "--raw", str(raw), "--out", out, "--overwrite")
        assert result.exit_code == 2, (out, result.output)
        line = _one_line(result.output)
        assert line.startswith(f"error: --out {out} ") and needle in line, line
    assert sorted(p.name for p in raw.iterdir()) == ["a.png"] and (tmp_path / "afile").read_text() == "x"


@pytest.fixture
def readonly_dir(tmp_path):
    """A folder nobody may write in: a read-only tmpfs when running as root (root ignores permissions)."""
    path = tmp_path / "ro"
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o555)
        yield path
        path.chmod(0o755)
        return
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a read-only file system here")
    yield path
    subprocess.run(["umount", str(path)], check=False)


def test_a_read_only_destination_is_one_line(tmp_path, monkeypatch, readonly_dir):
    raw = _raw(tmp_path)
    result = _cli(monkeypatch, "build", "test-folder", "--raw", str(raw), "--out", str(readonly_dir / "o"))
    assert result.exit_code == 2
    line = _one_line(result.output)
    assert line.startswith(f"error: {readonly_dir}: cannot write there (") and (
        "read-only file system" in line or "permission denied" in line), line


def test_tmp_dir_must_exist_and_accept_files(tmp_path, monkeypatch, readonly_dir):
    raw = _raw(tmp_path)
    (tmp_path / "afile").write_text("x")
    for tmp, needle in ((tmp_path / "missing", "does not exist"), (tmp_path / "afile", "is a file, not a folder"),
                        (readonly_dir, "cannot create files there")):
        result = _cli(monkeypatch, "build", "test-folder", "--raw", str(raw), "--out", str(tmp_path / "o"),
                      "--tmp-dir", str(tmp))
        assert result.exit_code == 2
        line = _one_line(result.output)
        assert line.startswith(f"error: --tmp-dir {tmp}") and needle in line, line


# --------------------------------------------------------------------------------------------- disk full
def test_a_parquet_write_failure_raises_instead_of_aborting(tmp_path):
    """pyarrow's Parquet writer with content-defined chunking aborts the process (exit 134) when a write
    fails; through GuardedFile the failure is an OSError. Shown with a 1 MB file size limit."""
    script = textwrap.dedent(f"""
        import os, resource
        import pyarrow as pa, pyarrow.parquet as pq
        from cytohub.output import GuardedFile
        from cytohub.writer import parquet_options
        resource.setrlimit(resource.RLIMIT_FSIZE, (2**20, 2**20))
        table = pa.table({{"b": [os.urandom(200_000) for _ in range(20)]}})
        sink = GuardedFile({str(tmp_path / "x.parquet")!r})
        options = parquet_options(table.schema, compress_images=False)
        assert options.get("use_content_defined_chunking"), "the pyarrow that aborts on a failed write"
        writer = pq.ParquetWriter(sink, table.schema, **options)
        writer.write_table(table, row_group_size=20)
        try:
            sink.check()
            print("no error")
        except OSError as exc:
            print("OSError", exc.errno, exc.filename)
        writer.close()
        sink.close()
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["OSError", str(errno.EFBIG), str(tmp_path / "x.parquet")]


def test_a_file_size_limit_during_a_build_is_one_line(tmp_path, synth_raw):
    out = tmp_path / "out"
    proc = subprocess.run([str(EXE), "build", "cccid", "--raw", str(synth_raw("cccid")), "--out", str(out), "-q"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "TMPDIR": str(tmp_path)},
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (3 * 2**20, 3 * 2**20)))
    assert proc.returncode == 2, proc.stderr
    line = _one_line(proc.stderr)
    assert line.startswith("error: ") and "file too large" in line and "ulimit -f" in line, line
    assert f"nothing was written at {out}" in line
    assert not out.exists() and not list(tmp_path.glob(".out.cytohub*")) and not list(tmp_path.glob("cytohub-raw-*"))


@pytest.fixture
def small_disk(tmp_path):
    """A 10 MB file system (root only): the cccid test build (about 12 MB at its peak) does not fit."""
    path = tmp_path / "disk"
    path.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=10m", "tmpfs", str(path)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small file system here (needs root)")
    yield path
    subprocess.run(["umount", str(path)], check=False)


def test_a_full_disk_is_one_line_and_removes_the_staging_folder(small_disk, synth_raw):
    out = small_disk / "out"
    proc = subprocess.run([str(EXE), "build", "cccid", "--raw", str(synth_raw("cccid")), "--out", str(out), "-q"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr  # was 134: pyarrow aborted the process
    line = _one_line(proc.stderr)
    assert line.startswith(f"error: {small_disk}: no space left on the device while building cccid; free space "
                           "there or pass another --out"), line
    assert os.listdir(small_disk) == []


# --------------------------------------------------------------------------------------------- signals
def _wait_for(pred, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.005)
    return False


def test_sigterm_is_handled_like_ctrl_c(tmp_path, synth_raw):
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    tmp.mkdir()
    proc = subprocess.Popen([str(EXE), "build", "cccid", "--raw", str(synth_raw("cccid")), "--out", str(out),
                             "--tmp-dir", str(tmp)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert _wait_for(lambda: list(tmp_path.glob(".out.cytohub-*")) or proc.poll() is not None)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    assert _one_line(stderr).endswith("terminated: nothing was written at the destination")
    assert not out.exists() and not list(tmp_path.glob(".out.cytohub*")) and os.listdir(tmp) == []


def _sigterm_handler_installed(pid: int) -> bool:
    """True once the process catches SIGTERM, i.e. `cytohub.__main__.main` has started (Linux /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
    return bool(caught & (1 << (signal.SIGTERM - 1)))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("sig,code,word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_a_signal_during_start_up_prints_no_traceback(tmp_path, sig, code, word):
    for delay in (0.0, 0.02, 0.05, 0.1, 0.2):
        proc = subprocess.Popen([str(EXE), "build", "cccid", "--raw", str(tmp_path / "none"), "--out",
                                 str(tmp_path / "o")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert _wait_for(lambda p=proc: _sigterm_handler_installed(p.pid), 30)
        time.sleep(delay)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
        assert "Traceback" not in stderr, (delay, stderr)
        if proc.returncode != 2:  # 2: it had already finished (no raw data) before the signal came
            assert proc.returncode == code, (delay, proc.returncode, stderr)
            assert word in stderr


# --------------------------------------------------------------------------------------------- one build per folder
def test_the_destination_lock_is_exclusive_and_removed(tmp_path):
    out = tmp_path / "out"
    with DestinationLock(out) as lock:
        assert lock.path == tmp_path / ".out.cytohub.lock" and lock.path.read_text() == f"{os.getpid()}\n"
        with pytest.raises(OutputError, match=rf"{out}: another cytohub build is writing this folder \(process "
                                              rf"{os.getpid()}\); wait for it to finish or choose another --out"):
            DestinationLock(out).__enter__()
    assert not lock.path.exists()
    with DestinationLock(out):  # free again
        pass


def test_a_killed_holder_does_not_leave_the_lock_taken(tmp_path):
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from pathlib import Path
        from cytohub.output import DestinationLock
        with DestinationLock(Path({str(out)!r})):
            print("locked", flush=True)
            time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(OutputError, match="another cytohub build"):
        DestinationLock(out).__enter__()
    holder.kill()
    holder.wait()
    with DestinationLock(out):  # the kernel released it with the process
        pass


def test_two_builds_to_the_same_out_one_proceeds_the_other_fails(tmp_path, synth_raw):
    out = tmp_path / "out"
    first = subprocess.Popen([str(EXE), "build", "cccid", "--raw", str(synth_raw("cccid")), "--out", str(out), "-q"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = tmp_path / ".out.cytohub.lock"

    def locked() -> bool:  # the holder writes its pid once it holds the lock
        try:
            return lock.read_text().strip() == str(first.pid)
        except OSError:
            return False

    assert _wait_for(lambda: locked() or first.poll() is not None)
    assert first.poll() is None, first.communicate()
    with pytest.raises(OutputError, match=f"{out}: another cytohub build is writing this folder"):
        build(registry.get("cccid"), synth_raw("cccid"), out, overwrite=True)
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    rep = json.loads((out / "build-report.json").read_text())
    assert rep["num_rows"] == 51 and not (tmp_path / ".out.cytohub.lock").exists()
