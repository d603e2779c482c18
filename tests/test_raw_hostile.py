"""Hostile, huge or unusual raw input reaching RawTree: one test per kind (issue 8, raw-access side).

Every input is made inside the test. Bombs run in a subprocess under an address-space limit
(`resource.setrlimit`), so a regression fails the test instead of exhausting the machine.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import socket
import struct
import subprocess
import sys
import tarfile
import textwrap
import zipfile
import zlib
from pathlib import Path

import py7zr
import pytest

from cytohub import limits, synth
from cytohub.errors import CytohubError, RawFileError
from cytohub.limits import LimitError
from cytohub.raw import RawTree

MiB = 2**20


# ------------------------------------------------------------------------------------------ crafting helpers
def zero_deflate(n_mib: int) -> bytes:
    """A raw deflate stream of `n_mib` MiB of zeros, made without ever holding them (about 1 KB per MiB)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(MiB)
    first = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    assert first == again  # a full flush resets the state: the block repeats byte for byte
    return first * n_mib + c.flush()


def zeros_crc(n_mib: int) -> int:
    crc, zeros = 0, bytes(MiB)
    for _ in range(n_mib):
        crc = zlib.crc32(zeros, crc)
    return crc


def craft_zip(members: list[dict]) -> bytes:
    """A zip written field by field, so that headers can say anything. Each member: name, data (as stored),
    and optionally method, crc, size (declared unpacked), flags, mode (Unix st_mode), offset (reuse another
    member's local header: an overlapping zip bomb)."""
    body, central = bytearray(), bytearray()
    offsets: dict[str, int] = {}
    for m in members:
        name = m["name"].encode()
        data = m.get("data", b"")
        method, flags = m.get("method", 0), m.get("flags", 0)
        crc = m.get("crc", zlib.crc32(data) if method == 0 else 0)
        size = m.get("size", len(data))
        big = size >= 0xFFFFFFFF  # zip64: sizes move to an extra field
        extra = struct.pack("<HHQQ", 1, 16, size, len(data)) if big else b""
        csize, usize = (0xFFFFFFFF, 0xFFFFFFFF) if big else (len(data), size)
        if "offset" in m:
            offset = offsets[m["offset"]]
        else:
            offset = len(body)
            body += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, flags, method, 0, 0x21, crc, csize, usize,
                                len(name), len(extra)) + name + extra + data
        offsets[m["name"]] = offset
        mode = m.get("mode", 0)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, (3 << 8) | 45, 45, flags, method, 0, 0x21, crc,
                               csize, usize, len(name), len(extra), 0, 0, 0, mode << 16, offset) + name + extra
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(body), 0)
    return bytes(body + central + end)


def craft_7z(name: str, data: bytes, method: bytes) -> bytes:
    """A one-file 7z with a plain (unencoded) header whose only coder is `method` (7-Zip method id), e.g.
    BCJ2 (03 03 01 1B) or ARM64 (0A), which py7zr cannot decode."""
    def num(v: int) -> bytes:
        assert v < 0x80
        return bytes([v])

    coder = bytes([len(method)]) + method
    uname = name.encode("utf-16-le") + b"\0\0"
    h = (b"\x01\x04" + b"\x06" + num(0) + num(1) + b"\x09" + num(len(data)) + b"\x00"
         + b"\x07\x0b" + num(1) + b"\x00" + num(1) + coder + b"\x0c" + num(len(data)) + b"\x00"
         + b"\x08\x0a\x01" + struct.pack("<I", zlib.crc32(data)) + b"\x00" + b"\x00"
         + b"\x05" + num(1) + b"\x11" + num(len(uname) + 1) + b"\x00" + uname + b"\x00" + b"\x00")
    nxt = struct.pack("<QQI", len(data), len(h), zlib.crc32(h))
    return b"7z\xbc\xaf\x27\x1c\x00\x04" + struct.pack("<I", zlib.crc32(nxt)) + nxt + data + h


def zip_bytes(entries, method=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in entries:
            z.writestr(name, data)
    return buf.getvalue()


def run_limited(code: str, tmp_path: Path, env: dict | None = None, mem_mib: int = 150,
                timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter whose address space may grow by at most `mem_mib` MiB once cytohub's
    raw access (and pyarrow, with the system allocator) is loaded."""
    prologue = textwrap.dedent(f"""
        import resource
        import pyarrow as pa
        import cytohub.raw
        pa.array([b"warm up the allocator"])
        vm = [int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmSize")][0] * 1024
        resource.setrlimit(resource.RLIMIT_AS, (vm + {mem_mib} * 2**20, vm + {mem_mib} * 2**20))
    """)
    script = tmp_path / "bomb.py"
    script.write_text(prologue + textwrap.dedent(code))
    full_env = {**os.environ, "ARROW_DEFAULT_MEMORY_POOL": "system", "MALLOC_ARENA_MAX": "2", **(env or {})}
    return subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


# ------------------------------------------------------------------------------------------ limits module
def test_limits_defaults_env_overrides_and_messages(monkeypatch):
    d = limits.Limits()
    assert d.image_pixels >= 3264 * 2448 * 8 and d.nesting_depth >= 2 and d.unpacked_bytes >= 64 * 2**30
    monkeypatch.setenv("CYTOHUB_MAX_MEMBER_BYTES", "1GiB")
    monkeypatch.setenv("CYTOHUB_MAX_JSON_DEPTH", "7")
    cur = limits.current()
    assert (cur.member_bytes, cur.json_depth) == (2**30, 7)
    over = cur.with_overrides(["member_bytes=512MB", "nesting-depth=5"])
    assert (over.member_bytes, over.nesting_depth, over.json_depth) == (512 * 10**6, 5, 7)
    with limits.use(over):
        assert limits.current() is over
    assert limits.current().member_bytes == 2**30
    with pytest.raises(LimitError) as err:
        cur.check("json_depth", 9, "ann.json", "nests 9 levels deep")
    msg = str(err.value)
    assert msg.startswith("ann.json: nests 9 levels deep, over the json_depth limit of 7")
    assert "--limit json_depth=VALUE" in msg and "CYTOHUB_MAX_JSON_DEPTH" in msg
    assert (err.value.name, err.value.value, err.value.limit) == ("json_depth", 9, 7)
    again = pickle.loads(pickle.dumps(err.value))  # rows are read in worker processes
    assert (str(again), again.name, again.value, again.limit) == (msg, "json_depth", 9, 7)
    for bad in (["nope=1"], ["member_bytes"], ["json_depth=3MiB"], ["member_bytes=lots"], ["files=0"]):
        with pytest.raises(CytohubError):
            cur.with_overrides(bad)
    monkeypatch.setenv("CYTOHUB_MAX_IMAGE_PIXELS", "many")
    with pytest.raises(CytohubError, match="CYTOHUB_MAX_IMAGE_PIXELS"):
        limits.current()
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    readme = readme.split("\n## Limits", 1)[1].split("\n## ", 1)[0]
    rows = {m[0]: m[1:] for m in re.findall(r"^\| `(\w+)` \| ([^|]+?) \| `(\w+)` \| ([^|]+?) \|", readme, re.M)}
    assert rows == {r["name"]: (r["default"], r["env"], r["checked_by"].split(" ")[0].rstrip(","))
                    for r in limits.describe()}  # the README table is true


# ------------------------------------------------------------------------------------------ member size, bombs
def test_zip_bomb_refused_before_decompression(tmp_path):
    """6 GiB of zeros in a 6 MB zip: refused for its ratio at scan; with the ratio allowed, refused for its size
    before a byte is decompressed; with both allowed, read as a stream in bounded memory."""
    (tmp_path / "raw").mkdir()
    data = zero_deflate(6 * 1024)
    (tmp_path / "raw" / "bomb.zip").write_bytes(
        craft_zip([{"name": "zeros.dat", "data": data, "method": 8, "size": 6 * 2**30, "crc": 0}]))
    assert (tmp_path / "raw" / "bomb.zip").stat().st_size < 7 * 10**6
    code = """
        from cytohub.raw import RawTree
        from cytohub.limits import LimitError
        try:
            RawTree("raw")
        except LimitError as exc:
            print("SCAN", exc.name, exc)
        import os
        os.environ["CYTOHUB_MAX_COMPRESSION_RATIO"] = "100000"
        os.environ["CYTOHUB_MAX_UNPACKED_BYTES"] = "1GiB"
        with RawTree("raw") as tree:
            f = tree.one("zeros.dat")
            for reader in (f.read_bytes, f.open, f.local_path):
                try:
                    reader()
                except LimitError as exc:
                    print("READ", exc.name, exc)
    """
    res = run_limited(code, tmp_path)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("SCAN compression_ratio bomb.zip: declares 6 GiB unpacked from 6.1 MiB (1,011:1), "
                               "over the compression_ratio limit of 100;")
    assert lines[1].startswith("READ member_bytes bomb.zip/zeros.dat: is 6 GiB, over the member_bytes limit")
    assert lines[2].startswith("READ member_bytes")
    assert lines[3].startswith("READ unpacked_bytes bomb.zip/zeros.dat: unpacking needs 6 GiB")


def test_zip_member_streams_under_memory_limit(tmp_path):
    """A 200 MiB member, allowed by raised limits, is read through open() and local_path() in bounded memory
    (120 MiB of address space above the interpreter's own), with its CRC checked."""
    n = 200
    (tmp_path / "big.zip").write_bytes(
        craft_zip([{"name": "big.raw", "data": zero_deflate(n), "method": 8, "size": n * MiB, "crc": zeros_crc(n)}]))
    code = """
        from cytohub.raw import RawTree
        with RawTree("big.zip", tmp_dir=".") as tree:
            f = tree.one("big.raw")
            total = 0
            with f.open() as fh:
                fh.seek(5)
                fh.seek(0)
                while chunk := fh.read(1 << 20):
                    total += len(chunk)
            print(total, f.local_path().stat().st_size)
    """
    res = run_limited(code, tmp_path, env={"CYTOHUB_MAX_MEMBER_BYTES": "1GiB", "CYTOHUB_MAX_COMPRESSION_RATIO":
                                           "100000", "CYTOHUB_FREE_SPACE_RESERVE": "0"}, mem_mib=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == [str(n * MiB), str(n * MiB)]


def test_lying_header_is_stopped_at_the_declared_size(tmp_path):
    """A member declaring 1000 bytes that inflates to 200 MiB: the read stops at 1000 and fails, in bounded
    memory; as a nested archive the copy stops likewise; a wrong CRC or a short stream is corrupt."""
    liar = {"name": "a.txt", "data": zero_deflate(200), "method": 8, "size": 1000, "crc": 0}
    (tmp_path / "liar.zip").write_bytes(craft_zip([liar]))
    (tmp_path / "nest.zip").write_bytes(craft_zip([{**liar, "name": "inner.zip"}]))
    code = """
        from cytohub.raw import RawTree
        from cytohub.errors import RawFileError
        with RawTree("liar.zip") as tree:
            try:
                tree.one("a.txt").read_bytes()
            except RawFileError as exc:
                print(exc)
        try:
            RawTree("nest.zip", tmp_dir=".")
        except RawFileError as exc:
            print(exc)
    """
    res = run_limited(code, tmp_path, mem_mib=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        "liar.zip/a.txt: unpacks to more than the 1000 bytes its header declares; the archive is corrupt or crafted",
        "nest.zip/inner.zip: unpacks to more than the 1000 bytes its header declares; the archive is corrupt or "
        "crafted"]
    assert not list(tmp_path.glob("cytohub-raw-*"))  # the temporary folder went with the failed tree
    raw = zlib.compress(b"hello world" * 10)[2:-4]
    (tmp_path / "crc.zip").write_bytes(craft_zip([{"name": "c.txt", "data": raw, "method": 8, "size": 110,
                                                   "crc": 1234}]))
    (tmp_path / "short.zip").write_bytes(craft_zip([{"name": "s.txt", "data": raw, "method": 8, "size": 111,
                                                     "crc": zlib.crc32(b"hello world" * 10)}]))
    with RawTree(tmp_path / "crc.zip") as tree, pytest.raises(RawFileError, match=r"c\.txt: CRC mismatch"):
        tree.one("c.txt").read_bytes()
    with RawTree(tmp_path / "short.zip") as tree, pytest.raises(RawFileError, match=r"ends after 110 of the 111"):
        tree.one("s.txt").read_bytes()


def test_image_limit_applies_to_images(tmp_path, monkeypatch):
    monkeypatch.setenv("CYTOHUB_MAX_IMAGE_BYTES", "1000")
    synth.write_zip(tmp_path / "d.zip", [("a.png", bytes(2000)), ("a.csv", bytes(2000))])
    with RawTree(tmp_path / "d.zip") as tree:
        assert len(tree.one("a.csv").read_bytes()) == 2000
        with pytest.raises(LimitError, match=r"d\.zip/a\.png: is 2000 bytes, over the image_bytes limit of 1,000|"
                                             r"over the image_bytes limit of 1000 bytes"):
            tree.one("a.png").read_bytes()
    (tmp_path / "loose").mkdir()
    (tmp_path / "loose" / "b.jpg").write_bytes(bytes(3000))
    with RawTree(tmp_path / "loose") as tree, pytest.raises(LimitError, match="image_bytes"):
        tree.one("b.jpg").read_bytes()


def test_overlapping_members_zip_bomb(tmp_path):
    raw = zlib.compress(bytes(10**6))[2:-4]
    crc = zlib.crc32(bytes(10**6))
    (tmp_path / "o.zip").write_bytes(craft_zip(
        [{"name": "a.bin", "data": raw, "method": 8, "size": 10**6, "crc": crc}]
        + [{"name": "a.bin", "offset": "a.bin", "data": raw, "method": 8, "size": 10**6, "crc": crc}]))
    with pytest.raises(RawFileError, match=r"o\.zip: members overlap"):
        RawTree(tmp_path / "o.zip")


def test_file_count_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("CYTOHUB_MAX_FILES", "5")
    synth.write_zip(tmp_path / "many.zip", [(f"f{i}.txt", b"x") for i in range(8)])
    with pytest.raises(LimitError, match=r"many\.zip/f5\.txt: is file number 6 of the raw tree, over the files "
                                         r"limit of 5"):
        RawTree(tmp_path / "many.zip")


# ------------------------------------------------------------------------------------------ nesting, unpacked bytes
def test_nesting_depth_and_unpacked_total(tmp_path, monkeypatch):
    """A zip nested four levels deep is refused by depth; a nested tree whose copies together pass the
    unpacked_bytes budget is refused before the copy that would pass it is written."""
    blob = os.urandom(300_000)
    level = zip_bytes([("data.bin", blob)])
    for i in range(3):
        level = zip_bytes([(f"level{i}.zip", level)], zipfile.ZIP_STORED)
    (tmp_path / "deep.zip").write_bytes(level)
    with pytest.raises(LimitError, match=r"deep\.zip/level2\.zip/level1\.zip/level0\.zip: is an archive nested 4 "
                                         r"levels deep, over the nesting_depth limit of 3"):
        RawTree(tmp_path / "deep.zip", tmp_dir=tmp_path)
    monkeypatch.setenv("CYTOHUB_MAX_NESTING_DEPTH", "4")
    with RawTree(tmp_path / "deep.zip", tmp_dir=tmp_path) as tree:
        assert tree.one("data.bin").read_bytes() == blob
    monkeypatch.setenv("CYTOHUB_MAX_UNPACKED_BYTES", "700000")
    with pytest.raises(LimitError, match=r"level0\.zip: unpacking needs .*over the unpacked_bytes limit of 683\.6 KiB"):
        RawTree(tmp_path / "deep.zip", tmp_dir=tmp_path)
    assert not list(tmp_path.glob("cytohub-raw-*"))


def test_7z_and_tar_declared_size_checked_before_unpacking(tmp_path, monkeypatch):
    payload = os.urandom(200_000)
    synth.write_7z(tmp_path / "a.7z", [("x/a.bin", payload)])
    with tarfile.open(tmp_path / "t.tar.gz", "w:gz") as tf:
        info = tarfile.TarInfo("x/t.bin")
        info.size = len(payload)
        tf.addfile(info, io.BytesIO(payload))
    monkeypatch.setenv("CYTOHUB_MAX_UNPACKED_BYTES", "100000")
    for name in ("a.7z", "t.tar.gz"):
        with pytest.raises(LimitError, match=rf"{name}.*: unpacking needs 195\.3 KiB.*unpacked_bytes limit"):
            RawTree(tmp_path / name, tmp_dir=tmp_path)
    monkeypatch.delenv("CYTOHUB_MAX_UNPACKED_BYTES")
    monkeypatch.setenv("CYTOHUB_FREE_SPACE_RESERVE", str(2**60))
    for name in ("a.7z", "t.tar.gz"):
        with pytest.raises(CytohubError, match=r"unpacking needs 195\.3 KiB but only .* is free in the temporary "
                                               r"folder .*free_space_reserve"):
            RawTree(tmp_path / name, tmp_dir=tmp_path)
    assert not list(tmp_path.glob("cytohub-raw-*"))


def test_tar_bomb_stops_on_ratio_as_it_streams(tmp_path):
    """A tar.gz whose 200 MiB of zeros pack into 200 KB: unpacking stops once past the grace size, long before
    200 MiB are written."""
    import gzip

    with gzip.open(tmp_path / "bomb.tar.gz", "wb", compresslevel=1) as gz, tarfile.open(fileobj=gz, mode="w|") as tf:
        info = tarfile.TarInfo("zeros.raw")
        info.size = 200 * MiB

        class Zeros(io.RawIOBase):
            left = info.size

            def readable(self):
                return True

            def readinto(self, b):
                n = min(len(b), self.left)
                b[:n] = bytes(n)
                self.left -= n
                return n

        tf.addfile(info, io.BufferedReader(Zeros()))
    res = run_limited("""
        from cytohub.raw import RawTree
        from cytohub.limits import LimitError
        try:
            RawTree("bomb.tar.gz", tmp_dir=".")
        except LimitError as exc:
            print(exc.name, exc)
    """, tmp_path, env={"CYTOHUB_FREE_SPACE_RESERVE": "0"}, mem_mib=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("compression_ratio bomb.tar.gz/zeros.raw: has unpacked 65 MiB from the first ")


# ------------------------------------------------------------------------------------------ folders
def test_special_files_and_links_in_folders(tmp_path):
    raw = tmp_path / "raw"
    (raw / "sub").mkdir(parents=True)
    (raw / "a.txt").write_text("a")
    (raw / "sub" / "b.txt").write_text("b")
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    os.mkfifo(raw / "pipe")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(raw / "sock"))
    os.symlink(secret, raw / "out.txt")
    os.symlink(tmp_path, raw / "outdir")
    os.symlink(raw / "sub" / "b.txt", raw / "in.txt")
    os.symlink(raw / "sub", raw / "indir")
    os.symlink(raw / "nowhere", raw / "broken")
    try:
        res = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
            import json
            from cytohub.raw import RawTree
            with RawTree({str(raw)!r}) as tree:
                print(json.dumps({{"files": {{f.path: f.read_text() for f in tree.files()}},
                                  "aside": tree.set_aside,
                                  "inputs": sorted(i["path"] for i in tree.input_hashes())}}))
        """)], capture_output=True, text=True, timeout=60)
    finally:
        sock.close()
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    assert got["files"] == {"a.txt": "a", "in.txt": "b", "sub/b.txt": "b"}
    assert got["inputs"] == ["a.txt", "in.txt", "sub/b.txt"]
    aside = got["aside"]
    assert aside["pipe"].startswith("a named pipe (FIFO), not a regular file; never opened")
    assert aside["sock"].startswith("a socket")
    assert aside["out.txt"].startswith("symbolic link leading outside the raw folder; not followed")
    assert aside["outdir"].startswith("symbolic link leading outside the raw folder")
    assert aside["indir"].startswith("symbolic link to a folder inside the raw folder")
    assert aside["broken"] == "broken symbolic link"
    assert "TOPSECRET" not in res.stdout


def test_special_root_is_refused(tmp_path):
    os.mkfifo(tmp_path / "raw.zip")
    with pytest.raises(RawFileError, match=r"raw\.zip: is a named pipe \(FIFO\); expected a folder or an archive"):
        RawTree(tmp_path / "raw.zip")


def test_link_and_device_members_of_archives_are_set_aside(tmp_path):
    with tarfile.open(tmp_path / "t.tar", "w") as tf:
        for name, kind in (("d/file.txt", tarfile.REGTYPE), ("d/sym", tarfile.SYMTYPE), ("d/hard", tarfile.LNKTYPE),
                           ("d/chr", tarfile.CHRTYPE), ("d/fifo", tarfile.FIFOTYPE)):
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind == tarfile.REGTYPE:
                info.size = 2
                tf.addfile(info, io.BytesIO(b"ok"))
            else:
                info.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else "d/file.txt"
                tf.addfile(info)
    (tmp_path / "z.zip").write_bytes(craft_zip([
        {"name": "file.txt", "data": b"ok", "mode": 0o100644},
        {"name": "link", "data": b"/etc/passwd", "mode": 0o120777},
        {"name": "pipe", "data": b"", "mode": 0o010644}]))
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "file.txt").write_bytes(b"ok")
    os.symlink("/etc/passwd", tmp_path / "src" / "link")
    with py7zr.SevenZipFile(tmp_path / "s.7z", "w") as z:
        z.write(tmp_path / "src" / "file.txt", "file.txt")
        z.write(tmp_path / "src" / "link", "link")
    (tmp_path / "src" / "link").unlink()
    with RawTree(tmp_path) as tree:
        assert {f.path: f.read_bytes() for f in tree.files()} == {
            "s.7z/file.txt": b"ok", "src/file.txt": b"ok", "t.tar/d/file.txt": b"ok", "z.zip/file.txt": b"ok"}
        acc = {r["path"]: r.get("reason") for r in tree.accounting("unused")}
    assert acc["s.7z/link"] == "symbolic link member; links in archives are never followed"
    assert acc["t.tar/d/sym"] == acc["z.zip/link"] == "symbolic link member; links in archives are never followed"
    assert acc["t.tar/d/hard"] == "hard link member; links in archives are never followed"
    assert acc["t.tar/d/chr"] == "character device member; never read"
    assert acc["t.tar/d/fifo"] == "named pipe (FIFO) member; never read"
    assert acc["z.zip/pipe"] == "a named pipe (FIFO) member; never read"


# ------------------------------------------------------------------------------------------ formats publishers ship
@pytest.mark.parametrize("method", ["stored", "deflate", "deflate64", "bzip2", "lzma"])
def test_zip_compression_methods(tmp_path, method):
    data = os.urandom(50_000) + b"cells " * 100_000
    if method == "deflate64":
        import inflate64

        d = inflate64.Deflater()
        packed = d.deflate(data) + d.flush()
        (tmp_path / "w.zip").write_bytes(craft_zip([{"name": "big.csv", "data": packed, "method": 9,
                                                     "size": len(data), "crc": zlib.crc32(data)}]))
    else:
        kind = {"stored": zipfile.ZIP_STORED, "deflate": zipfile.ZIP_DEFLATED, "bzip2": zipfile.ZIP_BZIP2,
                "lzma": zipfile.ZIP_LZMA}[method]
        (tmp_path / "w.zip").write_bytes(zip_bytes([("big.csv", data)], kind))
    with RawTree(tmp_path / "w.zip") as tree:
        f = tree.one("big.csv")
        assert f.read_bytes() == data
        with f.open() as fh:
            assert fh.read(10) == data[:10]
            fh.seek(400_000)
            assert fh.read(6) == data[400_000:400_006]
            fh.seek(3)
            assert fh.read() == data[3:]
        assert f.local_path().read_bytes() == data


def test_unsupported_zip_method_names_it(tmp_path):
    (tmp_path / "z.zip").write_bytes(craft_zip([{"name": "a.txt", "data": b"xx", "method": 93, "size": 5}]))
    with RawTree(tmp_path / "z.zip") as tree, pytest.raises(RawFileError, match=r"a\.txt: compressed with Zstandard"):
        tree.one("a.txt").read_bytes()


def test_encrypted_archives(tmp_path):
    (tmp_path / "e.zip").write_bytes(craft_zip([{"name": "a.txt", "data": b"\x01" * 20, "flags": 1, "size": 8}]))
    with pytest.raises(RawFileError, match=r"^e\.zip: the archive is encrypted"):
        RawTree(tmp_path / "e.zip")
    (tmp_path / "x.txt").write_text("secret")
    for name, header in (("e.7z", False), ("eh.7z", True)):
        with py7zr.SevenZipFile(tmp_path / name, "w", password="pw", header_encryption=header) as z:
            z.write(tmp_path / "x.txt", "x.txt")
        with pytest.raises(RawFileError, match=rf"^{name}: the archive is encrypted"):
            RawTree(tmp_path / name)


@pytest.mark.parametrize(("method", "filter_name"), [(bytes.fromhex("0303011b"), "BCJ2"), (b"\x0a", "ARM64")])
def test_7z_filter_py7zr_lacks(tmp_path, method, filter_name):
    (tmp_path / "f.7z").write_bytes(craft_7z("a.txt", b"hello", method))
    with pytest.raises(RawFileError, match=rf"^f\.7z: uses the {filter_name} filter, which cytohub's 7z reader "
                                           r"\(py7zr\) cannot decode; unpack it with 7-Zip \(7z x f\.7z\) and pass"):
        RawTree(tmp_path / "f.7z")
    (tmp_path / "c.7z").write_bytes(craft_7z("a.txt", b"hello", b"\x00"))  # the same layout with 'copy' reads
    with RawTree(tmp_path / "c.7z") as tree:
        assert tree.one("a.txt").read_bytes() == b"hello"


def test_truncated_zip_of_zips_like_ccagt(tmp_path):
    """An interrupted download of a zip of per-slide zips, cut just after the third inner zip: zipfile would
    find the third inner zip's directory and read one slide; RawTree says the zip is truncated."""
    inners = [zip_bytes([(f"s{i}/img.jpg", os.urandom(2000))]) for i in range(9)]
    whole = zip_bytes([(f"CCAgT/s{i}.zip", z) for i, z in enumerate(inners)], zipfile.ZIP_STORED)
    cut = zipfile.ZipFile(io.BytesIO(whole)).infolist()[3].header_offset + 10
    (tmp_path / "ccagt.zip").write_bytes(whole[:cut])
    assert zipfile.ZipFile(tmp_path / "ccagt.zip").namelist() == ["s2/img.jpg"]  # what zipfile alone believes
    with pytest.raises(RawFileError, match=r"^ccagt\.zip: the zip is truncated: its own central directory is "
                                           r"missing"):
        RawTree(tmp_path / "ccagt.zip")


@pytest.mark.parametrize("kind", ["zip", "tar", "7z"])
def test_duplicate_member_names(tmp_path, kind):
    path = tmp_path / f"d.{kind}"
    if kind == "zip":
        path.write_bytes(craft_zip([{"name": "a/x.txt", "data": b"1"}, {"name": "a/x.txt", "data": b"2"}]))
    elif kind == "tar":
        with tarfile.open(path, "w") as tf:
            for data in (b"1", b"2"):
                info = tarfile.TarInfo("a/x.txt")
                info.size = 1
                tf.addfile(info, io.BytesIO(data))
    else:
        (tmp_path / "x.txt").write_bytes(b"1")
        with py7zr.SevenZipFile(path, "w") as z:
            z.write(tmp_path / "x.txt", "a/x.txt")
            z.write(tmp_path / "x.txt", "a/x.txt")
    with pytest.raises(RawFileError, match=rf"^d\.{kind}: member 'a/x\.txt' appears twice"):
        RawTree(path)


@pytest.mark.parametrize("kind", ["tar", "7z", "zip"])
def test_long_member_names(tmp_path, kind):
    """Names longer than a file system allows (a 300-character component, a 5000-character path)."""
    names = ["d/" + "n" * 300 + ".txt", "/".join(["deep" * 60] * 20) + "/x.txt"]
    path = tmp_path / f"long.{kind}"
    if kind == "tar":
        with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tf:
            for i, name in enumerate(names):
                info = tarfile.TarInfo(name)
                info.size = 1
                tf.addfile(info, io.BytesIO(str(i).encode()))
    elif kind == "7z":
        synth.write_7z(path, [(n, str(i).encode()) for i, n in enumerate(names)])
    else:
        synth.write_zip(path, [(n, str(i).encode()) for i, n in enumerate(names)])
    with RawTree(path, tmp_dir=tmp_path) as tree:
        assert {f.path: f.read_bytes() for f in tree.files()} == {f"long.{kind}/{n}": str(i).encode()
                                                                   for i, n in enumerate(names)}


def test_tmp_dir_faults_say_the_true_cause(tmp_path, monkeypatch):
    synth.write_7z(tmp_path / "a.7z", [("a.txt", b"hello")])
    with pytest.raises(CytohubError, match=r"the temporary folder .*nope does not exist"):
        RawTree(tmp_path / "a.7z", tmp_dir=tmp_path / "nope")

    def read_only(*a, **k):
        raise OSError(30, "Read-only file system")

    with monkeypatch.context() as m:
        m.setattr("tempfile.mkdtemp", read_only)
        with pytest.raises(CytohubError, match=r"is on a read-only file system"):
            RawTree(tmp_path / "a.7z", tmp_dir=tmp_path)
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full to simulate a full disk")
    monkeypatch.setattr(RawTree, "_create", lambda self, dest, what: open("/dev/full", "wb", buffering=0))  # noqa: SIM115
    with pytest.raises(CytohubError, match=r"the temporary folder .* is full .* while unpacking a\.7z/a\.txt"):
        RawTree(tmp_path / "a.7z", tmp_dir=tmp_path)


# ------------------------------------------------------------------------------------------ copies, leftovers
def test_zip_beside_its_unzipped_copy(tmp_path):
    raw = tmp_path / "raw"
    files = [("annotations/annotations.dat", b"a b c\n"), ("annotations/abbreviations.txt", b"x")]
    synth.write_zip(raw / "annotations.zip", files)
    for name, data in files:
        synth.write_bytes(raw / name, data)
    synth.write_zip(raw / "images.zip", [("x.png", b"png")])  # unzipped by a Windows-style "Extract All"
    synth.write_bytes(raw / "images" / "x.png", b"png")
    synth.write_zip(raw / "part.zip", [("part/a.txt", b"1"), ("part/b.txt", b"2")])  # an incomplete copy
    synth.write_bytes(raw / "part" / "a.txt", b"1")
    inner = zip_bytes([("NILM/a.jpg", b"jpg")])
    synth.write_7z(raw / "C.zip.7z", [("C.zip", inner)])
    synth.write_bytes(raw / "C.zip", inner)
    with RawTree(raw, tmp_dir=tmp_path) as tree:
        assert tree.one("annotations.dat").path == "annotations/annotations.dat"
        assert sorted(f.path for f in tree.files()) == [
            "C.zip/NILM/a.jpg", "annotations/abbreviations.txt", "annotations/annotations.dat", "images/x.png",
            "part.zip/part/a.txt", "part.zip/part/b.txt", "part/a.txt"]
        assert tree.set_aside == {
            "C.zip.7z": "its unpacked copy C.zip lies beside it and is used instead",
            "annotations.zip": "its unpacked copy annotations/ lies beside it and is used instead",
            "images.zip": "its unpacked copy images/ lies beside it and is used instead"}
        assert "annotations.zip" not in {i["path"] for i in tree.input_hashes()}


def test_zip_unzipped_into_its_own_folder(tmp_path):
    """`unzip x.zip` in place writes the members beside the zip under their own top folder, whose name need
    not be the zip's (bone-marrow-cell-classification.zip holds bone_marrow_cell_dataset/ and a CSV)."""
    raw = tmp_path / "raw"
    files = [("abbreviations.csv", b"ABE;x\n"), ("cells/ABE/ABE_00001.jpg", b"jpg1"), ("cells/ART/a.jpg", b"jpg2")]
    synth.write_zip(raw / "download.zip", files)
    for name, data in files:
        synth.write_bytes(raw / name, data)
    synth.write_zip(raw / "other.zip", [("cells/ABE/ABE_00001.jpg", b"jpg1"), ("extra.txt", b"e")])  # not a copy
    with RawTree(raw, tmp_dir=tmp_path) as tree:
        assert tree.set_aside == {
            "download.zip": "its unpacked copy abbreviations.csv, cells/ lies beside it and is used instead"}
        assert sorted(f.path for f in tree.files()) == [
            "abbreviations.csv", "cells/ABE/ABE_00001.jpg", "cells/ART/a.jpg", "other.zip/cells/ABE/ABE_00001.jpg",
            "other.zip/extra.txt"]


def test_unpack_folders_of_killed_runs_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f"cytohub-raw-{int(dead.stdout)}-abcd1234"
    (stale / "ab").mkdir(parents=True)
    (stale / "ab" / "x.jpg").write_bytes(b"left over")
    alive = tmp_path / f"cytohub-raw-{os.getppid()}-abcd1234"
    alive.mkdir()
    synth.write_7z(tmp_path / "raw" / "a.7z", [("a.txt", b"hello")])
    with RawTree(tmp_path / "raw", tmp_dir=tmp_path) as tree:
        own = tree._tmpdir
        assert own.name.startswith(f"cytohub-raw-{os.getpid()}-")
        assert tree.one("a.txt").read_bytes() == b"hello"
    assert not stale.exists() and alive.exists() and not own.exists()


def test_build_limit_option(synth_raw, tmp_path):
    """`cytohub build --limit NAME=VALUE` reaches RawTree; the error names the limit and how to raise it."""
    from typer.testing import CliRunner

    from cytohub.cli import app

    raw = synth_raw("cccid")
    result = CliRunner().invoke(app, ["build", "cccid", "--raw", str(raw), "--out", str(tmp_path / "out"), "--quiet",
                                      "--limit", "image_bytes=1000", "--limit", "nesting_depth=5"])
    text = result.output.replace("\n", "")
    assert result.exit_code == 2 and "Traceback" not in text
    assert "over the image_bytes limit of 1000 bytes; if the file is genuine, raise the limit with --limit " \
           "image_bytes=VALUE or CYTOHUB_MAX_IMAGE_BYTES=VALUE" in text
    assert limits.current().image_bytes == limits.Limits().image_bytes  # the override ends with the build
    bad = CliRunner().invoke(app, ["build", "cccid", "--raw", str(raw), "--out", str(tmp_path / "o2"), "--quiet",
                                   "--limit", "pixels=5"])
    assert bad.exit_code == 2 and "--limit 'pixels=5': expected NAME=VALUE with NAME one of member_bytes" in \
        bad.output.replace("\n", "")
    late = CliRunner().invoke(app, ["build", "cccid", "--raw", str(raw), "--out", str(tmp_path / "o3"), "--quiet",
                                    "--limit", "json_depth=5"])
    assert late.exit_code == 2 and "--limit json_depth: this limit is read when its reader (formats.jsonfile) is " \
        "loaded; set CYTOHUB_MAX_JSON_DEPTH=5 in the environment instead" in late.output.replace("\n", "")
