"""A hostile matrix of raw input, written from issue #8 (one test per kind): each input is made inside the
test; bombs run in a subprocess under an address-space limit, so a regression fails the test instead of
taking the machine down."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from folder_corpus import FolderCorpus, encode

HERE = Path(__file__).resolve().parent


def _cli(monkeypatch, *args: str):
    from cytohub import registry
    from cytohub.cli import app

    real_get = registry.get
    monkeypatch.setattr(registry, "get", lambda n: FolderCorpus() if n == "test-folder" else real_get(n))
    return CliRunner().invoke(app, list(args))


def _fails(monkeypatch, raw: Path, out: Path, *needles: str, extra: tuple[str, ...] = ()) -> str:
    result = _cli(monkeypatch, "build", "test-folder", "--raw", str(raw), "--out", str(out), "--quiet", *extra)
    text = result.output.replace("\n", "")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in text and text.startswith("error: "), result.output
    for needle in needles:
        assert needle in text, result.output
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}.cytohub-*"))
    return text


def run_limited(code: str, tmp_path: Path, as_bytes: int = 2_000_000_000,
                timeout: float = 120) -> subprocess.CompletedProcess:
    """Run python `code` in a child process whose address space is limited to `as_bytes`. pyarrow uses the system
    allocator there: its default (mimalloc) reserves 1 GiB of address space at its first use, which the limit
    counts although no memory is used (an abort with std::bad_alloc, not a MemoryError)."""
    prelude = ("import resource, sys\n"
               f"resource.setrlimit(resource.RLIMIT_AS, ({as_bytes}, {as_bytes}))\n"
               f"sys.path.insert(0, {str(HERE)!r})\n")
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, timeout=timeout,
                          cwd=tmp_path, env={**os.environ, "TMPDIR": str(tmp_path),
                                                  "ARROW_DEFAULT_MEMORY_POOL": "system"})


# --------------------------------------------------------------------------------------------- geometry
@pytest.mark.parametrize("box", ["1e308 5 3 3", "5 5 40 3", "-3 5 2 2"])
def test_geometry_outside_its_image_is_refused_at_build(monkeypatch, tmp_path, box):
    """A coordinate far outside the image (1e308 in an outline file) used to pass the build and crash the sample
    figures with OverflowError, blamed on another raw file; geometry `validate` would flag is now refused."""
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.png").write_bytes(encode(Image.new("L", (32, 32)), "PNG"))
    (raw / "a.box").write_text(box)
    text = _fails(monkeypatch, raw, tmp_path / "out", "a.png: bbox of a 'cell' object reaches",
                  "outside the 32x32 image")
    assert "OverflowError" not in text


def test_geometry_on_the_image_edge_is_kept(monkeypatch, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.png").write_bytes(encode(Image.new("L", (32, 32)), "PNG"))
    (raw / "a.box").write_text("-0.5 0 32.5 32")  # the tolerance of validate: half a pixel
    result = _cli(monkeypatch, "build", "test-folder", "--raw", str(raw), "--out", str(tmp_path / "out"), "--quiet")
    assert result.exit_code == 0, result.output


def test_a_library_error_while_drawing_figures_names_the_row(monkeypatch, tmp_path):
    """After the rows are read, an error names the row being drawn, not the last raw file the pipeline read."""
    from cytohub import figures
    from cytohub.build import build
    from cytohub.errors import RawFileError

    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("a", "b"):
        (raw / f"{name}.png").write_bytes(encode(Image.new("L", (32, 32)), "PNG"))

    def broken(self, row):
        if row["id"] == "a":
            raise OverflowError("cannot convert float infinity to integer")

    monkeypatch.setattr(figures.SampleCollector, "offer", broken)
    with pytest.raises(RawFileError, match=r"^a\.png: cannot be read \(OverflowError"):
        build(FolderCorpus(), raw, tmp_path / "out", num_proc=1)


# --------------------------------------------------------------------------------------------- memory, processes
_HOG_BUILDER = """
from folder_corpus import FolderCorpus
from cytohub import registry
from cytohub.cli import app

class Hog(FolderCorpus):
    def examples(self, raw):
        f = raw.files()[0]
        f.read_bytes()
        hog = []  # what a parser builds from a hostile file, still referenced by the failing frame
        # fill memory down to 4 KiB blocks (down to the last 32 bytes, CPython itself loses the exception while
        # unwinding in some runs, a SystemError 'error return without exception set' no handler can classify)
        for size in (8 << 20, 1 << 20, 64 << 10, 4 << 10):
            try:
                while True:
                    hog.append(bytearray(size))
            except MemoryError:
                pass
        raise MemoryError()

registry.get = lambda name: Hog()
sys.argv = ["cytohub", "build", "test-folder", "--raw", "raw", "--out", "out", "--quiet", "--num-proc", "1"]
app()
"""


def test_out_of_memory_in_a_builder_is_one_line_and_removes_staging(tmp_path):
    """A parser that exhausts memory used to leave a traceback of hundreds of lines (printing the error ran
    out of memory too, the failed frames still holding the parsed data) and the staging folder."""
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "a.json").write_text("[]")
    res = run_limited(_HOG_BUILDER, tmp_path, as_bytes=1_500_000_000)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, res.stderr[-2000:]
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert lines[0].startswith("error: a.json: ran out of memory while reading it")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.cytohub-*"))


def test_num_proc_beyond_what_the_cores_can_use_is_refused(monkeypatch, tmp_path):
    """--num-proc 100000 used to start 100,000 processes (9 GB within seconds)."""
    from cytohub.build import max_num_proc

    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.png").write_bytes(encode(Image.new("L", (8, 8)), "PNG"))
    text = _fails(monkeypatch, raw, tmp_path / "out", f"--num-proc 100000: more than {max_num_proc()} processes",
                  extra=("--num-proc", "100000"))
    assert text.endswith(f"expected 1..{max_num_proc()}")
    assert max_num_proc() >= 8


# --------------------------------------------------------------------------------------------- annotation files
_JSON_BOMB = """
from pathlib import Path
from cytohub.errors import RawFileError
from cytohub.formats import jsonfile
from cytohub.raw import RawTree

Path("raw").mkdir()
Path("raw/a.json").write_text("[" + ",".join(["[]"] * 30_000_000) + "]")  # 90 MB: 2 GB of lists once parsed
with RawTree("raw") as tree:
    try:
        jsonfile.load(tree.files()[0], "COCO JSON")
    except RawFileError as exc:
        print(exc)
"""


def test_json_that_would_not_fit_in_memory_once_parsed_is_refused_before_parsing(tmp_path):
    """A JSON annotation file well within the size limits can parse to 20 times its size (a 130 MB COCO file of
    2 million annotations exhausted 3 GB); the parsed size is estimated from the text and checked first."""
    res = run_limited(_JSON_BOMB, tmp_path, as_bytes=1_200_000_000)
    assert res.returncode == 0, res.stderr[-2000:]
    assert re.match(r"a\.json: COCO JSON would take about [2-9]\.[0-9] GiB of memory once parsed", res.stdout)
    assert "over the json_memory limit of 640 MiB" in res.stdout and "CYTOHUB_MAX_JSON_MEMORY" in res.stdout


@pytest.mark.parametrize("item", ["[]", "{}", "1.5", "123456789", '"ab"', '{"bbox": [1.5, 2.5, 3.5, 4.5], "id": 7}',
                                  '[0.25, 0.5, 0.75, 1.25, 1.5, 1.75]'])
def test_json_memory_estimate_is_not_below_what_parsing_takes(item):
    import json
    import tracemalloc

    from cytohub.formats import jsonfile

    text = "[" + ",".join([item] * 100_000) + "]"
    tracemalloc.start()
    doc = json.loads(text)
    used = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del doc
    assert used + len(text) <= jsonfile.parsed_memory(text) <= 3 * (used + len(text))


def test_row_with_more_coordinates_than_the_limit_is_refused_before_a_worker_gets_it(monkeypatch, tmp_path):
    """An outline file of 8 million short lines (32 MB) used to become a 16-million-value polygon: 2 GB across
    the processes, and a worker dying of it with a multiprocessing traceback."""
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.png").write_bytes(encode(Image.new("L", (32, 32)), "PNG"))
    (raw / "a.box").write_text("1 1 2 2")
    _fails(monkeypatch, raw, tmp_path / "out", "a.png: row 'a' has 4 coordinates in 1 objects, over the "
           "geometry_values limit of 3", "--limit geometry_values=VALUE", extra=("--limit", "geometry_values=3"))


def test_rows_with_large_geometry_go_to_workers_in_small_chunks():
    from cytohub.spool import CHUNK_BYTES, _row_size

    row = {"id": "a", "objects": [{"category": "c", "polygon": [1.0] * 300_000}]}
    assert _row_size(row) == 32 * 300_000 > CHUNK_BYTES  # a chunk on its own, not 256 such rows at once


_LINES = """
from pathlib import Path
from cytohub.raw import RawTree

Path("raw").mkdir()
with open("raw/a.dat", "w") as fh:
    for _ in range(50):
        fh.write("12,34\\n" * 400_000)  # 120 MB, 20 million lines: 1.2 GB as a list of strings
with RawTree("raw") as tree:
    print(sum(1 for _ in tree.files()[0].lines()))
"""


def test_text_lines_are_streamed_not_listed(tmp_path):
    """`RawFile.lines()` holds one line at a time: 20 million lines read under a 900 MB address-space limit."""
    from cytohub import limits

    code = _LINES.replace("from cytohub.raw import RawTree", "from cytohub.raw import RawTree\nfrom cytohub import "
                          "limits\nlimits._override = limits.current().replace(text_lines=30_000_000)")
    res = run_limited(code, tmp_path, as_bytes=900_000_000, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "20000000"
    assert limits.current().text_lines == 1_000_000


def test_text_files_over_the_line_limit_are_refused(tmp_path):
    from cytohub import limits
    from cytohub.errors import RawFileError
    from cytohub.formats import csvfile
    from cytohub.raw import RawTree, text_lines

    (tmp_path / "a.txt").write_text("1,2\n" * 11)
    with limits.use(limits.current().replace(text_lines=10)), RawTree(tmp_path) as tree:
        f = tree.files()[0]
        with pytest.raises(RawFileError, match=r"^a\.txt: has more than 10 lines, over the text_lines limit of 10"):
            list(f.lines())
        with pytest.raises(RawFileError, match=r"^a\.txt: has more than 10 CSV records, over the text_lines limit"):
            list(csvfile.records(f))
        with pytest.raises(RawFileError, match=r"^x: has more than 10 lines"):
            list(text_lines("a\n" * 11, "x"))
        assert list(text_lines("a\r\nb\rc\n\nd", "x")) == ["a", "b", "c", "", "d"] == "a\r\nb\rc\n\nd".splitlines()
        (tmp_path / "b.txt").write_text("x\n" * 10)
    with limits.use(limits.current().replace(text_lines=10)), RawTree(tmp_path) as tree:
        assert len(list(tree.get("b.txt").lines())) == 10  # exactly at the limit is fine


_CSV = """
from pathlib import Path
from cytohub.formats import csvfile
from cytohub.raw import RawTree

Path("raw").mkdir()
with open("raw/a.csv", "w") as fh:
    fh.write("a,b\\n")
    for _ in range(20):
        fh.write("x" * 10_000_000 + ",1\\n")  # 200 MB: the whole text in a StringIO took 4 bytes a character
with RawTree("raw") as tree:
    print(sum(len(r[0]) for _, r in csvfile.records(tree.files()[0])))
"""


def test_csv_records_are_decoded_as_they_are_read(tmp_path):
    res = run_limited(_CSV, tmp_path, as_bytes=900_000_000, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == str(1 + 20 * 10_000_000)


# --------------------------------------------------------------------------------------------- archives
def test_7z_with_more_members_than_the_limit_is_refused_before_py7zr_reads_them(tmp_path):
    """py7zr keeps about 1.5 KB per member while unpacking: a 600 KB 7z of 300,000 empty members took 820 MB
    and 150 s; its member count is now checked by py7zr itself, before any per-member object is made."""
    import py7zr

    from cytohub import limits
    from cytohub.errors import RawFileError
    from cytohub.raw import RawTree

    with py7zr.SevenZipFile(tmp_path / "many.7z", "w") as z:
        for i in range(60):
            z.writestr(b"", f"junk/{i:03d}.txt")
    expected = r"^many\.7z: holds 60 members \(py7zr keeps about 1\.5 KB per member.*7z x many\.7z.*limit of 50"
    with limits.use(limits.current().replace(sevenz_members=50)), pytest.raises(RawFileError, match=expected):
        RawTree(tmp_path / "many.7z", tmp_dir=tmp_path)
    with RawTree(tmp_path / "many.7z", tmp_dir=tmp_path) as tree:
        assert len(tree) == 60
    assert limits.Limits().sevenz_members == 250_000
    assert not list(tmp_path.glob("cytohub-raw-*"))


_SLOW_UNPACK = """
import signal, threading, time
from pathlib import Path
import tarfile, io, os
from cytohub import raw

Path("raw").mkdir()
for name in ("a", "b"):
    with tarfile.open(f"raw/{name}.tar", "w") as t:
        for i in range(40):
            data = os.urandom(1 << 20)
            ti = tarfile.TarInfo(f"{name}/{i}.bin"); ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
real_write = raw.RawTree._write
def slow_write(self, fh, data, what):
    time.sleep(0.05)  # 40 chunks: 2 s per archive
    real_write(self, fh, data, what)
raw.RawTree._write = slow_write
threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
t0 = time.monotonic()
try:
    raw.RawTree("raw", tmp_dir=".")
except KeyboardInterrupt:
    print(f"stopped after {time.monotonic() - t0:.2f} s")
time.sleep(0.3)
print(sorted(p.name for p in Path(".").glob("cytohub-raw-*")))
"""


def test_an_interrupt_stops_archives_being_unpacked_at_once(tmp_path):
    """Ctrl-C or SIGTERM while 7z/tar archives are unpacked in threads used to wait for every archive to be
    unpacked whole (10 s for a 50 MB CCCID download, minutes for tens of GB)."""
    res = run_limited(_SLOW_UNPACK, tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    first, second = res.stdout.strip().splitlines()
    assert first.startswith("stopped after ") and float(first.split()[2]) < 1.2, first
    assert second == "[]"


_MAT_BOMB = """
import struct, zlib
from pathlib import Path
from cytohub.errors import RawFileError
from cytohub.formats import matlab
from cytohub.raw import RawTree

# a v5 MAT-file whose compressed element declares a 3 GiB variable and inflates to it (3 MB on disk): the
# zlib stream is the tag, then one full-flushed deflate block of 16 MiB of zeros repeated 192 times (a full
# flush resets the history, so each repeat inflates alone), then the end and the Adler-32 of it all
n, zeros = 3 << 30, bytes(1 << 24)
tag = struct.pack("<II", 14, n)
c = zlib.compressobj(9)
head = c.compress(tag) + c.flush(zlib.Z_FULL_FLUSH)
block = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
end = c.flush()[:-4]
a = zlib.adler32(tag)
adler = ((a >> 16) + n * (a & 0xFFFF)) % 65521 << 16 | a & 0xFFFF  # each zero byte adds A to B, leaves A
body = head + block * (n // len(zeros)) + end + struct.pack(">I", adler)
header = b"MATLAB 5.0 MAT-file".ljust(116, b" ") + bytes(8) + struct.pack("<H", 0x0100) + b"IM"
Path("raw").mkdir()
Path("raw/bomb.mat").write_bytes(header + struct.pack("<II", 15, len(body)) + body)
with RawTree("raw") as tree:
    try:
        matlab.MatFile(tree.files()[0])
    except RawFileError as exc:
        print(exc)
"""


def test_mat_v5_compressed_bomb_is_refused_from_its_declared_size(tmp_path):
    """A 3 MB v5 .mat declaring a 3 GiB variable used to be inflated up to the limit (then copied) before it was
    refused: 2.2 GB of memory and 4 s at 1 GiB; now 0.2 s, nothing inflated past the variable's tag."""
    res = run_limited(_MAT_BOMB, tmp_path, as_bytes=900_000_000)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.startswith("bomb.mat: variables inflate to over 536,870,912 bytes (a compressed variable "
                                 "declares 3,221,225,480 bytes once inflated; refused before inflating it")
