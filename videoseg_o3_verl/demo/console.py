# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The demo's quiet console: the process's (and its children's) output goes to a log file, a few lines to the
real console."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


@contextlib.contextmanager
def console_to_log(log_path: Path) -> Iterator[TextIO]:
    """Send everything written to this process's stdout/stderr — and so the output of every child process it
    starts (Ray's raylet and workers, whose logs Ray also streams to the driver) — to ``log_path``; yield a stream
    to the real console for the few lines the demo shows.

    Works on file descriptors 1 and 2 (C extensions, subprocesses) and on ``sys.stdout``/``sys.stderr`` (Python
    code, also where those were replaced); everything is restored on exit.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    streams = sys.stdout, sys.stderr
    for stream in streams:
        stream.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    console = os.fdopen(os.dup(saved[1]), "w", buffering=1)
    with open(log_path, "a", buffering=1) as log:
        try:
            for fd in (1, 2):
                os.dup2(log.fileno(), fd)
            sys.stdout = sys.stderr = log
            yield console
        finally:
            log.flush()
            sys.stdout, sys.stderr = streams
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            console.close()


def log_tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file (shown when the trainer fails)."""
    text = path.read_text(errors="replace").splitlines() if path.exists() else []
    return "\n".join(text[-lines:])
