"""The `cytohub` command line."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from cytohub import __version__, errors, layout, registry
from cytohub.errors import CytohubError, DatasetNotFoundError, Terminated

app = typer.Typer(
    name="cytohub",
    help="Turn public cytopathology image corpora into clean, documented Hugging Face datasets, and publish them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
def _hide_flag_types() -> None:
    """typer renders an on/off flag with a `<bool>` value column, as if it took a value; show flags bare."""
    from typer.core import TyperOption

    show = TyperOption.display_type_rich

    def display_type_rich(self, ctx):
        return None if getattr(self, "is_bool_flag", False) else show(self, ctx)

    TyperOption.display_type_rich = display_type_rich


_hide_flag_types()
EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_INTERNAL, EXIT_BROKEN_PIPE = 130, 143, 70, 141  # 141: 128 + SIGPIPE


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """Output cut short by a closed pipe (`cytohub list | head -1`): exit 141 quietly, as `friendly` does."""
        self.quiet = True
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(EXIT_BROKEN_PIPE)


out_console = _Console()
err_console = _Console(stderr=True)

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]




def friendly(fn):
    """Errors a user can cause are printed as one clear line, without a traceback, with a non-zero exit.
    Ctrl-C exits 130 and SIGTERM 143, each with one line; output cut short by a closed pipe exits 141 quietly,
    as a command killed by SIGPIPE does. Any other exception is a bug: one line, with the
    path of the saved traceback, exit 70."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.BadParameter):
            raise
        except CytohubError as exc:
            errors.release_memory(exc)  # a ResourceError's cause may still hold the memory that ran out
            _error_line(exc)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt as exc:
            what = "terminated" if isinstance(exc, Terminated) else "interrupted"
            err_console.print(f"[bold red]{what}[/]: nothing was written at the destination")
            raise typer.Exit(EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED) from None
        except BrokenPipeError:  # the reader of our output went away (`cytohub audit --json | head`): not an error
            with contextlib.suppress(OSError):  # nothing more reaches the pipe, also not the flush at exit
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(EXIT_BROKEN_PIPE) from None
        except Exception as exc:  # MemoryError and RecursionError included
            errors.release_memory(exc)
            mapped = errors.explain(exc, None)
            if mapped is not None:
                _error_line(mapped)
                raise typer.Exit(mapped.exit_code) from None
            saved = errors.save_traceback(exc, cytohub_home() / "logs")
            notes = " ".join(getattr(exc, "__notes__", ()))
            err_console.print(f"[bold red]internal error:[/] {errors.describe(exc)}{' ' + notes if notes else ''}. "
                              "This is a bug in cytohub; please report it"
                              + (f" with the traceback saved in {saved}" if saved else ""),
                              highlight=False, soft_wrap=True, markup=True)
            raise typer.Exit(EXIT_INTERNAL) from None

    return wrapper


def _error_line(exc: CytohubError) -> None:
    err_console.print("[bold red]error:[/] ", end="", highlight=False)
    err_console.print(str(exc), highlight=False, soft_wrap=True, markup=False)


def cytohub_home() -> Path:
    return Path(os.environ.get("CYTOHUB_HOME", Path.home() / ".cache" / "cytohub")).expanduser()


def _version(value: bool) -> None:
    if value:
        out_console.print(f"cytohub {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Show the version and exit.")] = False) -> None:
    """cytohub: build, validate and publish cytology datasets with one unified schema."""


# --------------------------------------------------------------------------------------------- list / info
TASK_CODES = {"image-classification": "cls", "object-detection": "det", "image-segmentation": "seg"}


def _corpus_rows(task: str | None = None, organ: str | None = None, license_: str | None = None,
                 redistribution: str | None = None) -> list[dict]:
    """One dict per registered corpus, filtered: `task` and `organ` match a substring (case-insensitive; a task
    also matches its short code cls/det/seg), `license_` the license id or name, `redistribution` exactly."""
    rows = []
    for name, cls in registry.builders().items():
        tasks = list(cls.task_categories)
        if task and not any(task.lower() in t or task.lower() == TASK_CODES.get(t) for t in tasks):
            continue
        if organ and organ.lower() not in (cls.organ or "").lower():
            continue
        lic = cls.license_name if cls.license == "other" else cls.license
        if license_ and license_.lower() not in {cls.license.lower(), str(lic).lower()}:
            continue
        if redistribution and redistribution.lower() != cls.redistribution:
            continue
        rows.append({"name": name, "pretty_name": cls.pretty_name, "tasks": tasks, "license": lic,
                     "redistribution": cls.redistribution, "images": cls.num_images,
                     "classes": len(cls.labels), "object_categories": len(cls.object_labels),
                     "organ": cls.organ, "layout": cls.layout, "version": cls.version})
    return rows


@app.command("list")
@friendly
def list_(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
          markdown: Annotated[bool, typer.Option("--markdown", help="A Markdown table (as in the README).")]
          = False,
          task: Annotated[str | None, typer.Option(help="Only corpora with this task (e.g. detection, seg).")]
          = None,
          organ: Annotated[str | None, typer.Option(help="Only corpora of this organ (e.g. cervix, marrow).")]
          = None,
          license_: Annotated[str | None, typer.Option("--license", help="Only corpora under this license id "
                                                                          "(e.g. cc-by-4.0).")] = None,
          redistribution: Annotated[str | None, typer.Option(help="Only corpora whose redistribution is allowed, "
                                                                  "gated or forbidden.")] = None,
          quiet: Quiet = False) -> None:
    """List the registered corpora: task, license, redistribution, images, classes, layout status."""
    if redistribution and redistribution.lower() not in ("allowed", "gated", "forbidden"):
        raise CytohubError(f"--redistribution {redistribution!r}: expected allowed, gated or forbidden")
    rows = _corpus_rows(task, organ, license_, redistribution)
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    if markdown:
        print(markdown_table(rows))
        return
    if quiet:  # just the names, one per line (for scripts)
        for r in rows:
            print(r["name"])
        return
    table = Table(box=None, pad_edge=False, padding=(0, 1), header_style="bold", show_edge=False)
    for col in ("corpus", "task", "license", "redistrib.", "images", "classes"):
        table.add_column(col, justify="right" if col in ("images", "classes") else "left",
                         no_wrap=True, overflow="ellipsis", max_width=22 if col == "corpus" else 15)
    for r in rows:
        classes = str(r["classes"]) if r["classes"] else (f"{r['object_categories']} obj" if
                                                          r["object_categories"] else "-")
        table.add_row(escape(r["name"]) + ("" if r["layout"] == "verified" else "*"),
                      escape(",".join(TASK_CODES.get(t, t) for t in r["tasks"])), escape(str(r["license"])),
                      r["redistribution"], "?" if r["images"] is None else f"{r['images']:,}", classes)
    out_console.print(table)
    out_console.print(f"{len(rows)} corpora. task: cls = classification, det = detection, seg = segmentation\n"
                      "* = raw layout unverified (its assumptions: `cytohub info NAME`)", highlight=False)


def markdown_table(rows: list[dict]) -> str:
    lines = ["| corpus | task | license | redistribution | images | classes | layout |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        classes = r["classes"] or (f"{r['object_categories']} object cat." if r["object_categories"] else "-")
        images = "?" if r["images"] is None else f"{r['images']:,}"
        lines.append(f"| `{r['name']}` | {', '.join(r['tasks'])} | {r['license']} | {r['redistribution']} | "
                     f"{images} | {classes} | {r['layout']} |")
    return "\n".join(lines)


@app.command()
@friendly
def info(name: Annotated[str, typer.Argument(help="Corpus name (see `cytohub list`).")],
         as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
         quiet: Quiet = False) -> None:
    """Show a corpus's metadata: license, citation, sources, download instructions, classes."""
    b = registry.get(name)
    if quiet:  # only the exit status: 0 when the corpus is known
        return
    meta = b.metadata()
    if as_json:
        print(json.dumps(meta, indent=1, ensure_ascii=False))
        return
    out_console.print(f"[bold]{escape(b.pretty_name)}[/] ([cyan]{escape(b.name)}[/], builder {escape(b.version)})")
    if b.summary:
        out_console.print(b.summary, markup=False)
    for key in ("homepage", "license", "redistribution", "layout", "organ", "stain", "preparation", "scanner",
                "mpp", "num_images"):
        val = meta[key]
        if key == "license" and b.license == "other":
            val = f"{b.license_name} ({b.license_link})"
        out_console.print(f"  {key:15} {val if val is not None else '-'}", highlight=False, markup=False)
    out_console.print(f"  {'tasks':15} {', '.join(b.task_categories)}", markup=False)
    if b.published.declared:
        from cytohub.completeness import show

        pub = b.published
        facts = ([f"{show(pub.rows)} {pub.unit}"] if pub.rows is not None else []) \
            + ([", ".join(f"{k} {show(v)}" for k, v in pub.rows_per_split.items())] if pub.rows_per_split else []) \
            + ([f"per class for {len(pub.per_class)} classes"] if pub.per_class else []) \
            + ([f"files {', '.join(pub.files)}"] if pub.files else [])
        out_console.print(f"  {'published':15} {'; '.join(facts)}", highlight=False, markup=False)
    if b.splits:
        out_console.print(f"  {'splits':15} {', '.join(b.splits)} (official)", markup=False)
    if b.labels:
        out_console.print(f"\n[bold]{len(b.labels)} classes[/] (label_path -> harmonized):")
        for i, lab in enumerate(b.labels):
            out_console.print(f"  {i:3} {' > '.join(lab.path)} -> {lab.harmonized or '(unmapped)'}", highlight=False,
                              markup=False)
    if b.object_labels:
        out_console.print(f"\n[bold]{len(b.object_labels)} object categories[/]: "
                          + escape(", ".join(lab.name for lab in b.object_labels)), highlight=False)
    out_console.print("\n[bold]Expected raw layout[/]:")
    out_console.print(layout.sketch_text(b.expected_layout), highlight=False, markup=False, soft_wrap=True)
    out_console.print("\n[bold]Conversions[/]:")
    for c in b.conversions or ("none: image and mask bytes are passed through as published",):
        out_console.print(f"  - {c}", highlight=False, markup=False)
    if b.assumptions:
        out_console.print("\n[bold]Assumptions[/]:")
        for a in b.assumptions:
            out_console.print(f"  - {a}", highlight=False, markup=False)
    direct = b.direct_sources()
    if direct:
        out_console.print(f"\n[bold]Download[/]: `cytohub download {escape(b.name)}` fetches "
                          + escape(", ".join(s.filename for s in direct)) + "; or by hand:", highlight=False,
                          soft_wrap=True)
    else:
        out_console.print("\n[bold]Download[/] (by hand; `cytohub download " + escape(b.name) + "` checks it):")
    out_console.print(b.manual_download.strip(), highlight=False, markup=False)
    out_console.print("\n[bold]Citation[/]:")
    out_console.print(b.citation.strip(), highlight=False, markup=False)


# --------------------------------------------------------------------------------------------- synthesize
@app.command()
@friendly
def synthesize(
    name: Annotated[str, typer.Argument(help="Corpus name.")],
    to: Annotated[Path, typer.Option("--to", help="Folder to write the synthetic raw download into.")],
    scale: Annotated[str, typer.Option(help="small (a few items per class) or full (the published counts).")]
    = "small",
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives byte-identical files.")] = 0,
    quiet: Quiet = False,
) -> None:
    """Write synthetic raw data in the corpus's exact published layout (drawn pixels, real file layout)."""
    if scale not in ("small", "full"):
        raise CytohubError(f"--scale {scale!r}: expected small or full")
    b = registry.get(name)
    if to.exists() and any(to.iterdir()):
        raise CytohubError(f"{to} exists and is not empty; choose an empty or new folder")
    t0 = time.monotonic()
    with _progress(quiet) as progress, _FolderWatch(to, progress, f"{b.name} ({scale}): writing"):
        b.synthesize(to, scale=scale, seed=seed)
    if not quiet:
        n, size = _scan_size(to)
        out_console.print(f"wrote {n} files ({size / 1e6:.1f} MB) to {to} in {time.monotonic() - t0:.1f} s",
                          markup=False)


# --------------------------------------------------------------------------------------------- build
@app.command()
@friendly
def build(
    name: Annotated[str, typer.Argument(help="Corpus name.")],
    raw: Annotated[Path | None, typer.Option(help="The raw download: a folder or an archive. Default: "
                                                  "$CYTOHUB_HOME/raw/NAME.")] = None,
    out: Annotated[Path | None, typer.Option(help="Build folder to create (default: out/NAME).")] = None,
    split: Annotated[str | None, typer.Option(help="Grouped random split, e.g. train=0.8,validation=0.1,test=0.1 "
                                                   "(default: official splits, else one train split).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of --split.")] = 0,
    max_shard_size: Annotated[str, typer.Option(help="Largest Parquet shard, e.g. 500MB, 2GB.")] = "500MB",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace --out if it is a cytohub build folder "
                                                              "holding only the files its report lists (anything "
                                                              "else is refused).")] = False,
    tmp_dir: Annotated[Path | None, typer.Option(help="Where 7z/tar archives are unpacked (default: TMPDIR).")]
    = None,
    download_first: Annotated[bool, typer.Option("--download", help="First fetch the official files into the raw "
                                                                    "folder (as `cytohub download NAME`; mirror "
                                                                    "from CYTOHUB_MIRROR).")] = False,
    num_proc: Annotated[int | None, typer.Option(help="Processes that read, check and encode rows (default: the "
                                                      "cores available; at most 4 per core); the output is the "
                                                      "same for any value.",
                                                 show_default=False)] = None,
    num_shards: Annotated[int | None, typer.Option(help="Shards per split (default: up to 64, each >= 16 MiB, so "
                                                        "DataLoader workers and nodes all get shards); more if a "
                                                        "shard would pass --max-shard-size.",
                                                   show_default=False)] = None,
    limit: Annotated[list[str] | None, typer.Option(
        "--limit", metavar="NAME=VALUE", help="Change a limit of raw access, e.g. member_bytes=1GiB or "
        "unpacked_bytes=500GB (repeatable; every limit, its default and its CYTOHUB_* variable are in the README, "
        "section Limits).")]
    = None,
    allow_partial: Annotated[bool, typer.Option("--allow-partial", help="Build a download that lacks files or rows "
                                                "the publisher lists; the card and report say 'partial: N of M'.")]
    = False,
    quiet: Quiet = False,
) -> None:
    """Build a Hub-ready dataset folder (Parquet shards, card, figures, build report) from a raw download."""
    from cytohub import limits

    b = registry.get(name)  # argument errors first, before the heavy imports of the build engine
    in_force = limits.current().with_overrides(limit or [], limits.RUNTIME)
    if download_first:
        from cytohub.download import require_complete

        dest = raw if raw is not None else cytohub_home() / "raw" / b.name
        if dest.is_file():
            raise CytohubError(f"--download with --raw {dest}: expected a folder to download into, not a file")
        require_complete(_run_download(b, dest, os.environ.get("CYTOHUB_MIRROR") or None, None, True, quiet))
        raw = dest
    if raw is None:
        raw = cytohub_home() / "raw" / b.name
        if not raw.exists():
            how = (f"run `cytohub download {b.name}` (or `cytohub build {b.name} --download`), pass --raw, or put "
                   f"the download at {raw}" if b.direct_sources() else
                   f"pass --raw, or put the download at {raw} (`cytohub download {b.name}` checks it)")
            raise DatasetNotFoundError(
                f"no raw data for {b.name}: {how}.\n\n"
                f"How to get it:\n{b.manual_download.strip()}")
    elif not raw.expanduser().exists():
        raise DatasetNotFoundError(f"raw path {raw} does not exist; expected a folder or an archive")
    out = out or Path("out") / b.name
    from cytohub.build import build as run_build
    from cytohub.build import parse_size

    with limits.use(in_force):
        result = _run_build(run_build, b, raw, out, quiet, split=split, seed=seed,
                            max_shard_bytes=parse_size(max_shard_size), overwrite=overwrite, tmp_dir=tmp_dir,
                            num_proc=num_proc, num_shards=num_shards, allow_partial=allow_partial)
    if not quiet:
        _print_build(result)


def _run_build(run_build, b, raw, out, quiet, **kw):
    with _progress(quiet) as progress:
        task = progress.add_task(f"{b.name}: starting", total=None)

        def note(msg, n=None):
            if n is None:
                progress.update(task, description=f"{b.name}: {msg}")
            else:
                progress.update(task, description=f"{b.name}: rows", completed=n)

        return run_build(b, raw, out, progress=note, **kw)


def _print_build(result) -> None:
    r = result.report
    parts = ", ".join(f"{s} {v['num_examples']}" for s, v in r["splits"].items())
    shards = sum(len(v["shards"]) for v in r["splits"].values())
    partial = (r.get("completeness") or {}).get("partial")
    out_console.print(escape(f"built {r['builder']['name']}: {r['num_rows']} rows ({parts}) in {shards} shard(s), "
                             f"{result.seconds:.1f} s -> {result.out}")
                      + (" [yellow](synthetic)[/]" if r["synthetic"] else "")
                      + (f" [yellow](partial: {partial})[/]" if partial else ""))
    if r.get("empty_splits"):
        out_console.print(f"left out, no rows: {', '.join(r['empty_splits'])}", highlight=False, markup=False)
    out_console.print(f"raw files: {r['files']['used']} used, {r['files']['skipped']} skipped "
                      f"(reasons in {result.out / 'build-report.json'})", highlight=False, markup=False)


# --------------------------------------------------------------------------------------------- download
@app.command()
@friendly
def download(
    name: Annotated[str, typer.Argument(help="Corpus name.")],
    to: Annotated[Path | None, typer.Option("--to", help="Folder to download into (default: "
                                                         "$CYTOHUB_HOME/raw/NAME, where `build` looks).")] = None,
    mirror: Annotated[str | None, typer.Option(envvar="CYTOHUB_MIRROR", help="Fetch every file from "
                                               "URL/NAME/<file name> instead of the publisher (a lab's mirror).",
                                               metavar="URL")] = None,
    jobs: Annotated[int | None, typer.Option(help="Files transferred at once (default: 4).")] = None,
    no_verify: Annotated[bool, typer.Option("--no-verify", help="Do not check the publisher's declared checksums "
                                                                "(for a mirror of synthetic data); sha256 is still "
                                                                "recorded and checked on later runs.")] = False,
    quiet: Quiet = False,
) -> None:
    """Fetch a corpus's official files (resumable, verified), or say how to get them by hand and check them.

    Files go to $CYTOHUB_HOME/raw/NAME (or --to) with a downloads.json recording each file's URL, size and
    sha256. Corpora behind a login, an agreement or a request print numbered instructions; run the command
    again once the files are in place to check them. Exit 0 when the folder is ready to build."""
    b = registry.get(name)
    dest = to if to is not None else cytohub_home() / "raw" / b.name
    try:
        result = _run_download(b, dest, mirror, jobs, not no_verify, quiet)
    except KeyboardInterrupt:
        err_console.print(f"[bold red]interrupted[/]: no file under its final name is partial; what arrived is kept "
                          f"as .part files in {dest} and resumed by the next `cytohub download {b.name}`",
                          highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None
    if not quiet:
        _print_download(b, result, default=to is None)
    if not result.complete:
        out_console.print(result.instructions, highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(1)


def _run_download(b, dest: Path, mirror: str | None, jobs: int | None, verify: bool, quiet: bool):
    from cytohub.download import DEFAULT_JOBS
    from cytohub.download import download as run_download

    progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                        TimeRemainingColumn(), console=err_console, disable=not _live(quiet), transient=True)
    with progress:
        result = run_download(b, dest, mirror=mirror, jobs=jobs or DEFAULT_JOBS, verify=verify,
                              progress=_DownloadBars(progress, quiet))
    if not verify and not quiet:
        skipped = ", ".join(result.unverified) or "none of the files declares one"
        err_console.print(f"[yellow]--no-verify[/]: published checksums not checked ({skipped}); sha256 is "
                          f"recorded in {dest / 'downloads.json'} and checked from now on", highlight=False)
    return result


def _print_download(b, result, default: bool) -> None:
    if all(f.status in ("missing", "unnamed") for f in result.files):
        return  # nothing there yet: the instructions say it all
    counts: dict[str, int] = {}
    for f in result.files:
        counts[f.status] = counts.get(f.status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in counts.items())
    out_console.print(f"{b.name}: {summary} in {result.dest} ({result.bytes_fetched / 1e6:.1f} MB fetched in "
                      f"{result.seconds:.1f} s)", highlight=False, soft_wrap=True)
    width = max((len(f.source.filename) for f in result.files), default=0)
    for f in result.files:
        if f.status == "unnamed":
            continue
        name = f.source.filename
        if f.path is not None and f.path.name != name.rstrip("/"):
            name = f"{name} (as {f.path.relative_to(result.dest).as_posix()}{'/' if f.path.is_dir() else ''})"
        size = "" if f.size is None else f"{f.size:,} bytes"
        what = f"folder: {f.files:,} file(s), {size}" if f.files is not None else size
        digest = f"  sha256 {f.sha256[:16]}..." if f.sha256 else ""
        out_console.print(f"  {f.status:11} {name:{width}}  {what}{digest}", highlight=False, soft_wrap=True)
    if result.complete:
        raw = "" if default else f" --raw {result.dest}"
        hashed = sum(1 for f in result.files if f.sha256)
        recorded = f"size and sha256 of {hashed} file(s) recorded in {result.dest / 'downloads.json'}; " if hashed \
            else ""
        out_console.print(f"ready: {recorded}next: cytohub build {b.name}{raw}", highlight=False, soft_wrap=True)


class _DownloadBars:
    """One rich progress bar per file (bytes, speed, time left); retries and notes as dim lines."""

    def __init__(self, progress: Progress, quiet: bool) -> None:
        import threading

        self.progress, self.quiet = progress, quiet
        self.tasks: dict[str, int] = {}
        self.lock = threading.Lock()

    def start(self, name: str, total: int | None, done: int) -> None:
        with self.lock:
            if name in self.tasks:
                self.progress.reset(self.tasks[name], total=total, completed=done)
            else:
                self.tasks[name] = self.progress.add_task(name, total=total, completed=done)

    def advance(self, name: str, nbytes: int) -> None:
        self.progress.advance(self.tasks[name], nbytes)

    def finish(self, name: str, status: str) -> None:
        with self.lock:
            task = self.tasks.pop(name, None)
        if task is not None:
            self.progress.remove_task(task)

    def note(self, message: str) -> None:
        if not self.quiet:
            self.progress.console.print(message, style="dim", highlight=False, markup=False)


# --------------------------------------------------------------------------------------------- validate / card
@app.command()
@friendly
def validate(folder: Annotated[Path, typer.Argument(help="A build folder.")],
             full: Annotated[bool, typer.Option("--full", help="Decode every image and also load the folder "
                                                "without streaming (default: a seeded sample of 32 rows per "
                                                "split).")] = False,
             quiet: Quiet = False) -> None:
    """Check a build folder: every file against the build's manifest, card and report, exact schema, counts,
    ids, numbers, labels, groups across splits, sampled (or, with --full, all) images decoded as `datasets`
    decodes them, and `load_dataset` reading every split. Exit 0 only if clean."""
    if not folder.is_dir():
        raise CytohubError(f"{folder} is not a folder; expected a cytohub build folder")
    from cytohub.validate import validate as run_validate

    with _progress(quiet) as progress:
        task = progress.add_task("validating shards", total=len(list((folder / "data").glob("*.parquet")))
                                 if (folder / "data").is_dir() else None)
        v = run_validate(folder, progress=lambda n: progress.update(task, completed=n), full=full)
    if not v.ok:
        for p in v.problems:
            err_console.print(f"[red]-[/] {escape(p)}", highlight=False, soft_wrap=True)
        err_console.print(f"[bold red]invalid:[/] {escape(str(folder))}: {len(v.problems)} problem(s)")
        raise typer.Exit(1)
    if not quiet:
        rows = ", ".join(f"{s} {n}" for s, n in v.rows.items())
        decoded = "every row" if full else f"a sample of {v.rows_decoded} rows"
        out_console.print(f"valid: {folder} ({rows}; {len(v.hashes)} files match the manifest; {decoded} decoded, "
                          f"{v.images_decoded} images; {v.objects_checked} objects checked)", highlight=False,
                          markup=False)


@app.command()
@friendly
def card(folder: Annotated[Path, typer.Argument(help="A build folder.")], quiet: Quiet = False) -> None:
    """Regenerate a build folder's README.md (dataset card) and croissant.json (a mix: and LICENSE.md) from its
    build report and the current prose; the report's manifest records the new files."""
    from cytohub.card import render_card
    from cytohub.croissant import CROISSANT, croissant_json
    from cytohub.manifest import read_report, rewrite

    report = read_report(folder)
    try:
        if report.get("kind") == "mix":  # a `cytohub mix` folder: card, LICENSE.md, croissant.json from its report
            from cytohub.mix import card_files

            files = card_files(report)
        else:
            b = registry.get(report["builder"]["name"])
            files = {"README.md": render_card(b, report), CROISSANT: croissant_json(b, report)}
    except (ValueError, KeyError, TypeError) as exc:
        raise CytohubError(f"{folder / 'build-report.json'}: not a cytohub build report ({errors.describe(exc)})") \
            from None
    rewrite(folder, report, files)
    if not quiet:
        out_console.print(f"wrote {folder / 'README.md'} and {folder / CROISSANT}", markup=False)


@app.command()
@friendly
def audit(
    folders: Annotated[list[Path], typer.Argument(help="One or more build folders.")],
    threshold: Annotated[int, typer.Option(help="Near duplicate: pHash Hamming distance <= this many of 64 "
                                                "bits.")] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable report with every pair.")] = False,
    quiet: Quiet = False,
) -> None:
    """Find exact and near-duplicate images within a split, across splits and across builds, and groups in
    more than one split. Exit 1 on leakage across splits. At most 2,000,000 duplicate pairs are listed
    (CYTOHUB_AUDIT_MAX_PAIRS raises it)."""
    for folder in folders:
        if not folder.is_dir():
            raise CytohubError(f"{folder} is not a folder; expected a build folder made by `cytohub build`")
    from cytohub.audit import audit as run_audit

    with _progress(quiet) as progress:
        task = progress.add_task("hashing images", total=None)
        result = run_audit(folders, threshold, progress=lambda n: progress.update(task, completed=n))
    if as_json:
        print(json.dumps(result.to_dict(), indent=1, ensure_ascii=False))
    elif not quiet or result.leakage:
        out_console.print(result.text(), highlight=False, markup=False, soft_wrap=True)
    if result.leakage:
        raise typer.Exit(1)


# --------------------------------------------------------------------------------------------- mix
@app.command("mix")
@friendly
def mix_(
    args: Annotated[list[str] | None, typer.Argument(
        metavar="NAME BUILD_DIR", help="The mix's name (a Hub repo name; omitted with --recipe, which names "
                                               "it), then more build folders (as --from).",
        show_default=False)] = None,
    from_: Annotated[list[Path] | None, typer.Option(
        "--from", help="A build folder of one source corpus (made by `cytohub build`); repeat it, or list the "
                       "folders after it (`--from a b c`).", show_default=False)] = None,
    taxonomy: Annotated[str | None, typer.Option(help="Taxonomy tree whose nodes become the classes: bethesda-2014, "
                                                      "hematopoiesis, breast-yokohama-2020, effusion-issfc-2020, "
                                                      "urine-paris-2.0.", show_default=False)] = None,
    depth: Annotated[int | None, typer.Option(help="Cut the tree at this depth (1 = its top level; default 1).",
                                              show_default=False)] = None,
    recipe: Annotated[str | None, typer.Option(help="A named benchmark fixing tree, depth and corpora: "
                                                    "cervical-bethesda or haematology-lineage.",
                                               show_default=False)] = None,
    out: Annotated[Path | None, typer.Option(help="Build folder to create (default: out/NAME).",
                                             show_default=False)] = None,
    allow_leakage: Annotated[bool, typer.Option("--allow-leakage", help="Write the mix even when an image or a "
                                                                        "group is in two splits of a configuration "
                                                                        "(the card states the counts).")] = False,
    allow_missing: Annotated[bool, typer.Option("--allow-missing", help="With --recipe, mix without some of its "
                                                                        "corpora (the card says which).")] = False,
    audit_threshold: Annotated[int, typer.Option(help="Near duplicate: pHash distance <= this many of 64 bits.")]
    = 4,
    max_shard_size: Annotated[str, typer.Option(help="Largest Parquet shard, e.g. 500MB, 2GB.")] = "500MB",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace --out if it exists.")] = False,
    quiet: Quiet = False,
) -> None:
    """Mix build folders into one benchmark labelled on the harmonized taxonomy (a `source` column, each
    corpus's own splits, one holdout-SOURCE configuration per corpus), audited for duplicates across splits."""
    words = list(args or [])
    name = None if recipe else (words.pop(0) if words else None)
    sources = [*(from_ or []), *(Path(w) for w in words)]
    from cytohub.build import parse_size
    from cytohub.mix import mix as run_mix

    target = out or Path("out") / (name or recipe or "mix")
    with _progress(quiet) as progress:
        task = progress.add_task("mix: reading sources", total=None)

        def note(msg, n=None):
            progress.update(task, description=f"mix: {msg}", **({} if n is None else {"completed": n}))

        result = run_mix(name, sources, target, taxonomy=taxonomy, depth=depth, recipe=recipe,
                         allow_leakage=allow_leakage, allow_missing=allow_missing, audit_threshold=audit_threshold,
                         overwrite=overwrite, max_shard_bytes=parse_size(max_shard_size), progress=note)
    if quiet:
        return
    from rich.markup import escape as rich_escape

    r = result.report
    parts = ", ".join(f"{s} {v['num_examples']}" for s, v in r["splits"].items())
    left = sum(sum(s["left_out"].values()) for s in r["sources"])
    out_console.print(f"mixed {r['mix']['name']}: {r['num_rows']} rows ({parts}) from "
                      f"{', '.join(s['corpus'] for s in r['sources'])} on {r['mix']['taxonomy']} depth "
                      f"{r['mix']['depth']} ({len(r['mix']['classes'])} classes), {left} rows left out, "
                      f"{len(r['configs'])} configuration{'' if len(r['configs']) == 1 else 's'}, "
                      f"{result.seconds:.1f} s -> {rich_escape(str(result.out))}"
                      + (" [yellow](synthetic)[/]" if r["synthetic"] else ""), highlight=False)
    leaking = [c for c, v in r["audit"].get("configs", {}).items() if v["pairs"] or v["groups"]]
    if leaking:
        out_console.print(f"[yellow]leakage allowed[/] in {', '.join(leaking)} (counts in the card)",
                          highlight=False)


# --------------------------------------------------------------------------------------------- push
@app.command()
@friendly
def push(
    folder: Annotated[Path, typer.Argument(help="A build folder (validated before anything is sent).")],
    repo: Annotated[str, typer.Option("--repo", help="Dataset repo id, ORG/NAME (created if missing).")],
    private: Annotated[bool, typer.Option("--private", help="Push to a private repo: a new repo is created private, "
                                                            "an existing public one is made private (required for "
                                                            "corpora whose license forbids redistribution).")] = False,
    revision: Annotated[str | None, typer.Option(help="Branch to push to (created from main if missing).")] = None,
    message: Annotated[str | None, typer.Option(help="Commit message.")] = None,
    token: Annotated[str | None, typer.Option(help="Hub token (default: HF_TOKEN, else the stored `hf auth "
                                                   "login`). Never printed.", show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be uploaded and deleted and which "
                                                            "repo settings would change; change nothing.")] = False,
    allow_synthetic: Annotated[bool, typer.Option("--allow-synthetic", help="Allow pushing a build made from "
                                                                            "synthetic raw data.")] = False,
    ignore_extra: Annotated[bool, typer.Option("--ignore-extra", help="Leave out files the build did not write "
                                               "(default: refuse to push a folder holding any).")] = False,
    quiet: Quiet = False,
) -> None:
    """Publish exactly the files of a build (its report's manifest) to the Hugging Face Hub (endpoint:
    HF_ENDPOINT), as one commit; the repo's visibility and access gate are checked against the corpus's
    license (a mix: the strictest of its corpora's) on every push."""
    if "/" not in repo or repo.count("/") != 1 or not all(repo.split("/")):
        raise CytohubError(f"--repo {repo!r}: expected ORG/NAME, e.g. my-lab/cccid")
    if not folder.is_dir():
        raise CytohubError(f"{folder} is not a folder; expected a build folder made by `cytohub build`")
    from cytohub.hub import Publisher, check_publishable, redistribution, validate_for_push

    if quiet:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    build = check_publishable(folder, private, allow_synthetic, ignore_extra)
    if build.left_out and not quiet:
        err_console.print(f"leaving out {len(build.left_out)} file(s) the build did not write: "
                          + ", ".join(build.left_out[:10]) + (" ..." if len(build.left_out) > 10 else ""),
                          highlight=False)
    gated = redistribution(build.report)[0] == "gated"  # a mix: the strictest of its sources
    publisher = Publisher(token=token, note=(lambda m: None) if quiet else
                          (lambda m: err_console.print(f"[dim]{escape(m)}[/]", highlight=False)))

    def validated(build):
        with _spinner(quiet, "validating"):
            return validate_for_push(build)  # (sha256 by path, the second stage: run while uploading)

    if dry_run:
        plan = publisher.plan(build, repo, revision or "main")
        if not plan.empty:
            _, finish = validated(build)
            with _spinner(quiet, "validating"):
                finish()
        settings = publisher.settings_needed(plan, private=private, gated=gated)
        where = f"{repo}@{revision or 'main'}" + ("" if plan.repo_exists else " (repo would be created"
                                                  + (", private" if private else "") + ")")
        out_console.print(f"dry run: {where}: {len(plan.add)} to upload, {len(plan.delete)} to delete, "
                          f"{len(plan.unchanged)} unchanged", highlight=False, markup=False)
        for p in plan.add:
            out_console.print(f"  + {p} ({(folder / p).stat().st_size:,} bytes)", highlight=False, markup=False)
        for p in plan.delete:
            out_console.print(f"  - {p}", highlight=False, markup=False)
        for s_ in settings:
            out_console.print(f"  repo setting: {'make private' if s_ == 'private' else 'switch on the access gate'}",
                              highlight=False)
        return
    with _spinner(quiet, f"pushing to {repo}"):
        result = publisher.push(build, repo, private=private, revision=revision, message=message, gated=gated,
                                validation=validated)
    if quiet:
        return
    for s_ in result.settings:
        out_console.print(f"{repo}: {'made private' if s_ == 'private' else 'access gate switched on'}",
                          highlight=False)
    if result.committed:
        out_console.print(f"pushed {folder} -> {result.url}: commit {result.commit[:12]} "
                          f"({len(result.plan.add)} uploaded, {len(result.plan.delete)} deleted, "
                          f"{len(result.plan.unchanged)} unchanged)", highlight=False, markup=False)
    else:
        out_console.print(f"{repo} is already up to date at {result.commit[:12]}: no commit made", highlight=False,
                          markup=False)
    out_console.print(f'load it with: load_dataset("{repo}", streaming=True'
                      + (f', revision="{revision}"' if revision else "") + ")", highlight=False, markup=False)


# --------------------------------------------------------------------------------------------- demo
@app.command()
@friendly
def demo(
    name: Annotated[str, typer.Argument(help="Corpus name, or 'all' for every corpus.")] = "cccid",
    out: Annotated[Path, typer.Option(help="Where the demo build folders go.")] = Path("demo-out"),
    quiet: Quiet = False,
) -> None:
    """Synthesize small raw data -> build -> validate -> stream it back with `datasets` -> summary."""
    names = list(registry.builders()) if name == "all" else [registry.get(name).name]
    from cytohub.build import build as run_build
    from cytohub.validate import validate as run_validate

    summary = []
    for n in names:
        b = registry.get(n)
        with tempfile.TemporaryDirectory(prefix=f"cytohub-demo-{n}-") as tmp:
            raw = Path(tmp) / "raw"
            t0 = time.monotonic()
            with _spinner(quiet, f"{n}: synthesizing small raw data"):
                b.synthesize(raw, scale="small", seed=0)
            t_syn = time.monotonic() - t0
            split = None if b.splits else "train=0.6,validation=0.2,test=0.2"
            result = _run_build(run_build, b, raw, out / n, quiet, split=split, overwrite=True)
        with _spinner(quiet, f"{n}: validating"):
            v = run_validate(out / n)
        if not v.ok:
            for p in v.problems:
                err_console.print(f"[red]-[/] {escape(p)}", highlight=False)
            raise CytohubError(f"demo {n}: the build folder {out / n} did not validate")
        with _spinner(quiet, f"{n}: streaming back with datasets"):
            streamed = _stream_back(out / n, result.report)
        summary.append((n, result, t_syn, v, streamed))
    if quiet:
        return
    single = len(summary) == 1
    table = Table(title="cytohub demo (synthetic data)")
    for col in ("corpus", "rows", "splits", "images", "objects", "streamed", *(["first row"] if single else []),
                "build s"):
        table.add_column(col, justify="left" if col in ("corpus", "splits", "first row") else "right")
    for n, result, _t_syn, v, streamed in summary:
        r = result.report
        table.add_row(n, str(r["num_rows"]), "/".join(str(x["num_examples"]) for x in r["splits"].values()),
                      str(v.images_decoded), str(v.objects_checked),
                      "ok" if streamed["ids_match"] else "[red]MISMATCH[/]",
                      *([streamed["first"]] if single else []), f"{result.seconds:.1f}")
    out_console.print(table)
    total = sum(s[1].report["num_rows"] for s in summary)
    out_console.print(f"{len(summary)} corpora, {total} rows: built, validated (every image decoded) and streamed "
                      "back with datasets (ids match the shards). Splits are listed as "
                      "train/validation/test or the corpus's official splits.", highlight=False)
    first = "cccid" if "cccid" in names else names[0]
    out_console.print(f"Build folders (Hub repo layout) in {out}/; open {out}/{first}/README.md for a card.",
                      markup=False)
    if any(not s["ids_match"] for *_, s in summary):
        raise typer.Exit(1)


def _stream_back(folder: Path, report: dict) -> dict:
    """Load a build folder with `datasets` in streaming mode; compare its ids with the Parquet shards."""
    import pyarrow.parquet as pq
    from datasets import load_dataset

    from cytohub.validate import reader_path

    with reader_path(folder) as path:
        return _stream_ids(folder, load_dataset(str(path), streaming=True), report, pq)


def _stream_ids(folder: Path, ds, report: dict, pq) -> dict:
    rows, first, ids_match = 0, "", True
    for split in report["splits"]:
        expected = []
        for shard in report["splits"][split]["shards"]:
            expected += pq.read_table(folder / "data" / shard, columns=["id"]).column("id").to_pylist()
        got = []
        for i, row in enumerate(ds[split]):
            got.append(row["id"])
            if not first and i == 0:
                stack = row["focal_stack"]
                label = ds[split].features["label"].int2str(row["label"]) if row["label"] >= 0 else "-"
                first = (f"{row['image'].size[0]}x{row['image'].size[1]} px, {label}"
                         + (f", {len(stack)} planes" if stack else "")
                         + (f" z={row['z_um'][0]:+g}..{row['z_um'][-1]:+g} um" if stack and row["z_um"] else "")
                         + (f", {len(row['objects'])} objects" if row["objects"] else ""))
        rows += len(got)
        ids_match &= got == expected
    return {"rows": rows, "ids_match": ids_match, "first": first}


# --------------------------------------------------------------------------------------------- helpers
class _FolderWatch:
    """Shows the files and megabytes written under a folder while a long step (synthesize) runs, by scanning
    the folder from a background thread (the builders write with whatever library suits their format)."""

    def __init__(self, folder: Path, progress: Progress, label: str) -> None:
        self.folder, self.progress, self.label = folder, progress, label
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _FolderWatch:
        if not self.progress.disable:
            self.task = self.progress.add_task(self.label, total=None)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        wait = 0.5
        while not self._stop.wait(wait):
            t0 = time.monotonic()
            files, size = _scan_size(self.folder)
            self.progress.update(self.task, completed=files,
                                 description=f"{self.label}: {size / 1e6:,.1f} MB in files")
            wait = max(1.0, 10 * (time.monotonic() - t0))  # keep the scan's cost to ~10% of the time


def _scan_size(folder: Path) -> tuple[int, int]:
    files = size = 0
    stack = [folder]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
                    elif entry.is_file(follow_symlinks=False):
                        files += 1
                        size += entry.stat(follow_symlinks=False).st_size
        except OSError:
            continue
    return files, size


def _live(quiet: bool) -> bool:
    """Progress displays only on a terminal: piped or logged output gets no escape codes or blank lines."""
    return not quiet and err_console.is_terminal


class _CountColumn(ProgressColumn):
    """`done/total` where the total is known, else just `done`."""

    def render(self, task) -> Text:
        done = f"{int(task.completed):,}"
        return Text(f"{done}/{int(task.total):,}" if task.total else done, style="progress.download")


def _progress(quiet: bool) -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), _CountColumn(),
                    TimeElapsedColumn(), console=err_console, disable=not _live(quiet), transient=True)


class _spinner:
    def __init__(self, quiet: bool, text: str) -> None:
        self.status = err_console.status(text) if _live(quiet) else None

    def __enter__(self):
        if self.status:
            self.status.__enter__()

    def __exit__(self, *exc):
        if self.status:
            self.status.__exit__(*exc)


def main() -> None:
    """Run the command line (the `cytohub` command starts in `cytohub.__main__`, which handles signals and
    interrupts during start-up first)."""
    from cytohub.__main__ import main as run

    run()


if __name__ == "__main__":
    main()
