# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The demo's quiet console: everything the process and its children write goes to the log file; only what the
demo writes to the yielded console stream is shown."""

import os
import subprocess
import sys

from videoseg_o3_verl.demo import console_to_log, log_tail


def test_console_to_log_captures_process_and_children(tmp_path, capfd):
    log = tmp_path / "logs" / "trainer.log"
    with console_to_log(log) as console:
        print("python stdout")
        print("python stderr", file=sys.stderr)
        os.write(1, b"raw fd 1\n")
        child = "import sys; print('child process'); print('child err', file=sys.stderr)"
        subprocess.run([sys.executable, "-c", child], check=True)
        console.write("progress row\n")
    print("after")
    shown = capfd.readouterr()
    assert shown.out == "progress row\nafter\n" and shown.err == ""
    logged = log.read_text()
    for text in ("python stdout", "python stderr", "raw fd 1", "child process", "child err"):
        assert text in logged
    assert "progress row" not in logged
    assert log_tail(log, 2) == "child process\nchild err"
