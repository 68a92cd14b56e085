# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Running one stage of the demo: its commands (``videoseg-o3`` verbs in subprocesses, or in-process steps) with
their whole output in ``logs/<stage>.log`` and ONE progress line (a tqdm bar with an ETA) on the console, fed by
a progress probe (steps in the stage's file-tracker JSONL, evaluated episodes, written videos)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from .console import log_tail

Step = Sequence[str] | Callable[[], None]
"""A stage step: an argv run as a subprocess, or a function run in this process."""


class StageFailed(RuntimeError):
    """A stage ended badly; the message names the stage and its log file (and shows the log's last lines)."""

    def __init__(self, stage: str, log_path: Path, reason: str):
        self.stage, self.log_path = stage, log_path
        super().__init__(f"[demo] stage '{stage}' failed: {reason}; full log: {log_path}\n"
                         f"--- last lines of {log_path.name} ---\n{log_tail(log_path)}")


@dataclass(frozen=True)
class Stage:
    """One stage of the demo."""

    name: str
    """Short name: the progress line's label and the log's file name."""
    steps: tuple[Step, ...]
    """What the stage runs, in order."""
    total: int
    """Units of work of the whole stage (the progress bar's total)."""
    unit: str
    """Name of a unit of work (``step``, ``video``, ``episode``)."""
    progress: Callable[[], int]
    """Units done so far (polled while the stage runs)."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Extra environment variables of the subprocesses."""


def videoseg_cli(*args: str) -> tuple[str, ...]:
    """argv of a ``videoseg-o3`` verb run with this interpreter."""
    return (sys.executable, "-m", "videoseg_o3_verl", *args)


def describe(argv: Sequence[str]) -> str:
    """Short name of a command for messages: ``videoseg-o3 <verb>`` for the CLI, else the program.

    Example:
        >>> describe(videoseg_cli("sft", "--config-name", "demo_coldstart"))
        'videoseg-o3 sft'
    """
    argv = list(argv)
    if argv[1:3] == ["-m", "videoseg_o3_verl"]:
        return " ".join(["videoseg-o3", *argv[3:4]])
    return os.path.basename(argv[0]) if argv else "?"


def _run_subprocess(argv: Sequence[str], log, env: Mapping[str, str], tick: Callable[[], None],
                    poll_s: float) -> int:
    log.write(f"$ {' '.join(argv)}\n")
    log.flush()
    proc = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env={**os.environ, **env})
    try:
        while proc.poll() is None:
            tick()
            time.sleep(poll_s)
    finally:
        if proc.poll() is None:  # interrupted: do not leave the trainer running
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return proc.returncode


def run_stage(stage: Stage, log_path: Path, console: TextIO, *, label: str | None = None,
              poll_s: float = 0.5) -> float:
    """Run ``stage`` (see the module docstring); returns its wall seconds. Raises :class:`StageFailed` when a
    command exits non-zero or an in-process step raises."""
    from tqdm import tqdm

    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    bar = tqdm(total=stage.total, desc=label or stage.name, unit=stage.unit, file=console, ncols=100,
               mininterval=poll_s, bar_format="{desc:<16} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} {unit} "
                                              "[{elapsed}<{remaining}]")

    def tick() -> None:
        done = min(max(int(stage.progress()), 0), stage.total)
        if done != bar.n:
            bar.update(done - bar.n)

    try:
        with open(log_path, "a", buffering=1, encoding="utf-8") as log:
            for step in stage.steps:
                if callable(step):
                    log.write(f"$ (in process) {getattr(step, '__name__', step)}\n")
                    try:
                        step()
                    except Exception as exc:
                        log.write(f"{type(exc).__name__}: {exc}\n")
                        raise StageFailed(stage.name, log_path, f"{type(exc).__name__}: {exc}") from exc
                    tick()
                    continue
                code = _run_subprocess(step, log, stage.env, tick, poll_s)
                if code != 0:
                    raise StageFailed(stage.name, log_path, f"`{describe(step)}` exited with code {code}")
        tick()
        bar.update(stage.total - bar.n)
    finally:
        bar.close()
    return time.perf_counter() - started
