# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The demo's stage runner: the stage's output goes to its log, the console gets ONE progress line per stage, and a
failure names the stage and its log."""

import sys

import pytest

from videoseg_o3_verl.demo.stages import Stage, StageFailed, describe, run_stage, videoseg_cli
from videoseg_o3_verl.demo.tracker import count_steps, keys_with_prefix, read_rows, series

NOISY = "import sys\nfor i in range(200):\n    print('verl line', i)\n    print('ray warning', i, file=sys.stderr)\n"


def _python(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


class Console:
    def __init__(self):
        self.text = ""

    def write(self, s):
        self.text += s

    def flush(self):
        pass


def test_output_goes_to_the_log_and_one_line_to_the_console(tmp_path):
    done = tmp_path / "done.txt"
    ran = []
    stage = Stage("sft", (_python(NOISY + f"open({str(done)!r}, 'w').write('x')"), lambda: ran.append(1)),
                  total=4, unit="step", progress=lambda: 3 * done.is_file() + len(ran), env={"DEMO_TEST": "1"})
    console = Console()
    wall = run_stage(stage, tmp_path / "logs" / "sft.log", console, label="[3/6] sft", poll_s=0.05)
    assert wall > 0 and ran == [1]
    log = (tmp_path / "logs" / "sft.log").read_text()
    assert "verl line 199" in log and "ray warning 199" in log
    assert "verl line" not in console.text
    assert console.text.count("\n") == 1  # the bar redraws with \r and ends its line once
    assert "[3/6] sft" in console.text and "4/4 step" in console.text


def test_a_failing_command_names_the_stage_and_its_log(tmp_path):
    stage = Stage("rl", (_python("print('the trainer fell over'); raise SystemExit(3)"),), total=2, unit="step",
                  progress=lambda: 0)
    log = tmp_path / "rl.log"
    with pytest.raises(StageFailed) as info:
        run_stage(stage, log, Console(), poll_s=0.05)
    message = str(info.value)
    assert "stage 'rl' failed" in message and str(log) in message and "exited with code 3" in message
    assert "the trainer fell over" in message  # the log's last lines


def test_a_failing_step_in_process_names_the_stage(tmp_path):
    def broken():
        raise FileNotFoundError("no tiny model")

    second = []
    stage = Stage("data", (broken, lambda: second.append(1)), total=1, unit="video", progress=lambda: 0)
    with pytest.raises(StageFailed, match="stage 'data' failed: FileNotFoundError: no tiny model"):
        run_stage(stage, tmp_path / "data.log", Console())
    assert second == []  # the stage stopped at the failure


def test_cli_argv_and_its_short_name():
    argv = videoseg_cli("train", "--config-name", "demo_rl")
    assert argv[:4] == (sys.executable, "-m", "videoseg_o3_verl", "train")
    assert describe(argv) == "videoseg-o3 train"


def test_tracker_rows_steps_and_series(tmp_path):
    path = tmp_path / "metrics.jsonl"
    assert read_rows(path) == [] and count_steps(path, "actor/pg_loss") == 0
    path.write_text('{"step": 2, "data": {"actor/pg_loss": 0.5, "videoseg/reward/a": 1}}\n'
                    '{"step": 1, "data": {"actor/pg_loss": 0.7, "videoseg/reward/b": 2, "x": "text"}}\n'
                    '{"step": 2, "data": {"val-videoseg/reward": 0.1}}\n'
                    '{"step": 3, "data": {"actor/pg_')  # a line still being written
    assert count_steps(path, "actor/pg_loss") == 2  # the validation row and the partial line do not count
    assert series(read_rows(path), "actor/pg_loss") == [(1.0, 0.7), (2.0, 0.5)]
    assert series(read_rows(path), "x") == []
    assert keys_with_prefix(read_rows(path), "videoseg/reward/") == ["videoseg/reward/a", "videoseg/reward/b"]
