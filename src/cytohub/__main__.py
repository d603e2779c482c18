"""The `cytohub` command: `python -m cytohub` and the console entry point.

Signals are set up before the heavy imports (typer, rich, pyarrow, datasets), so that Ctrl-C or SIGTERM
while the program starts ends it with one line and no traceback: SIGTERM is handled like Ctrl-C (every
clean-up runs: staging and temporary folders are removed), exit 143 (130 for Ctrl-C). Pillow's
decompression-bomb warning is made an error for the whole process (see `cytohub.images`).
"""

from __future__ import annotations

import signal
import sys
import warnings

from cytohub.errors import Terminated


def _on_sigterm(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM does not interrupt the clean-up
    raise Terminated()


def main() -> None:
    """Run the command line and end the process with its exit status. Python's own exit handlers run (thread
    pools joined, temporary folders removed, output flushed), then the process ends without the interpreter's
    final teardown: pyarrow's C++ thread pools, torn down while a background task is still finishing, abort the
    process at that point ("terminate called without an active exception") in a small share of runs, which
    turned successful commands into exit 134."""
    try:
        _run()
    except SystemExit as exc:
        code = exc.code
    else:
        code = 0
    if code is not None and not isinstance(code, int):  # SystemExit("message"): printed, status 1
        sys.stderr.write(f"{code}\n")
        code = 1
    _exit(code or 0)


def _exit(code: int) -> None:
    import atexit
    import contextlib
    import os

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe or stream: nothing more can be written
            stream.flush()
    os._exit(code)


def _run() -> None:
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
        warnings.filterwarnings("error", message=r"Image size \(\d+ pixels\) exceeds limit")
        from cytohub.cli import app

        app()
    except KeyboardInterrupt as exc:  # before or around a command's own handling (start-up, argument parsing)
        _stop(exc)
    except SystemExit as exc:  # typer turns an interrupt outside a command into a silent exit 130
        interrupt = _interrupt_under(exc)
        if interrupt is None:
            raise
        _stop(interrupt)


def _interrupt_under(exc: BaseException) -> KeyboardInterrupt | None:
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, KeyboardInterrupt):
            return e
        e = e.__cause__ if e.__cause__ is not None else (None if e.__suppress_context__ else e.__context__)
    return None


def _stop(exc: KeyboardInterrupt) -> None:
    terminated = isinstance(exc, Terminated)
    sys.stderr.write(("terminated" if terminated else "interrupted") + "\n")
    raise SystemExit(143 if terminated else 130) from None


if __name__ == "__main__":
    main()
