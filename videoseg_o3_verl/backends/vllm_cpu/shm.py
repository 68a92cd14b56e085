# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Sweep ``/dev/shm`` segments that no process uses any more.

vLLM's message queues (``psm_*``) are unlinked by their owner on a clean exit, but Ray kills rollout servers at
shutdown, so every CPU run would leave them behind (hundreds of MB, sparse); a weight sync that fails mid-way
leaves verl's transfer bucket (``verl_weights_*``, up to the bucket size). A segment is removed only when no
live process maps it or holds it open and it is older than ``min_age_s``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

SHM_DIR = Path("/dev/shm")
PREFIXES = ("psm_", "verl_weights_")
"""Segments of vLLM's shared-memory message queues and of verl's weight-transfer buckets."""


def segments_in_use(proc: Path = Path("/proc")) -> set[str]:
    """Names of ``/dev/shm`` entries that a live process maps or holds open."""
    used: set[str] = set()
    for pid_dir in proc.iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            for line in (pid_dir / "maps").read_text().splitlines():
                if "/dev/shm/" in line:
                    used.add(line.split("/dev/shm/", 1)[1].split(" ")[0])
            for fd in (pid_dir / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("/dev/shm/"):
                    used.add(target[len("/dev/shm/"):].split(" ")[0])
        except OSError:  # the process ended or is not ours to read
            continue
    return used


def orphan_segments(prefixes: Iterable[str] = PREFIXES, min_age_s: float = 5.0, shm_dir: Path = SHM_DIR
                    ) -> list[Path]:
    """Segments with one of ``prefixes`` that nobody uses and that were last modified ``min_age_s`` ago or more."""
    if not shm_dir.is_dir():
        return []
    prefixes = tuple(prefixes)
    candidates = [p for p in shm_dir.iterdir() if p.name.startswith(prefixes)]
    if not candidates:
        return []
    used = segments_in_use()
    now = time.time()
    orphans = []
    for path in candidates:
        try:
            if path.name not in used and now - path.stat().st_mtime >= min_age_s:
                orphans.append(path)
        except FileNotFoundError:
            continue
    return orphans


def remove_orphan_segments(prefixes: Iterable[str] = PREFIXES, min_age_s: float = 5.0) -> list[str]:
    """Unlink the :func:`orphan_segments`; returns the names removed."""
    removed = []
    for path in orphan_segments(prefixes, min_age_s):
        try:
            path.unlink()
            removed.append(path.name)
        except OSError:
            continue
    return removed


def sweep_after_run(new_since: float, timeout_s: float = 15.0) -> list[str]:
    """After a run's Ray cluster is shut down: remove the segments it created (modified after ``new_since``) once
    their processes are gone, waiting up to ``timeout_s`` for the killed vLLM processes to exit."""
    removed: list[str] = []
    deadline = time.time() + timeout_s
    while True:
        removed += remove_orphan_segments(min_age_s=0.0)
        left = [p for p in SHM_DIR.iterdir() if p.name.startswith(PREFIXES) and _mtime(p) >= new_since] \
            if SHM_DIR.is_dir() else []
        if not left or time.time() > deadline:
            return removed
        time.sleep(0.5)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0
