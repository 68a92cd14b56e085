# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Run a ``videoseg-o3`` command in a subprocess (Ray + verl must not share the pytest process) and read
the metrics verl's file tracker wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_cli(args: list[str], workdir: Path, env: dict[str, str] | None = None, timeout: int = 900
            ) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """Run ``python -m videoseg_o3_verl <args>`` with the file tracker on; returns (process, metric rows)."""
    metrics_path = workdir / "metrics.jsonl"
    full_env = {**os.environ, "VERL_FILE_LOGGER_PATH": str(metrics_path),
                "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "videoseg_o3_verl", *args], cwd=workdir, env=full_env,
                          capture_output=True, timeout=timeout)
    # Decoded here, not with text=True, whose newline translation would turn every "\r" redraw of a progress bar
    # into a line of its own (the console-line budgets count the lines a terminal shows).
    proc.stdout, proc.stderr = (stream.decode(errors="replace") for stream in (proc.stdout, proc.stderr))
    (workdir / "stdout.log").write_text(proc.stdout)
    (workdir / "stderr.log").write_text(proc.stderr)
    rows = [json.loads(line) for line in metrics_path.read_text().splitlines()] if metrics_path.exists() else []
    return proc, rows


def tail(proc: subprocess.CompletedProcess, n: int = 4000) -> str:
    return (proc.stdout[-n:] + "\n---stderr---\n" + proc.stderr[-n:])
