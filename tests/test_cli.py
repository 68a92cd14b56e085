# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The command line: verbs never silently run something other than what was asked."""

import sys

import pytest

from videoseg_o3_verl import cli


def test_demo_import_error_surfaces_instead_of_running_the_smoke(monkeypatch):
    ran = []
    monkeypatch.setattr(cli.Smoke, "run", lambda self, args: ran.append(args) or 0)
    monkeypatch.setitem(sys.modules, "videoseg_o3_verl.demo", None)  # `from .demo import ...` raises ImportError
    with pytest.raises(ImportError):
        cli.main(["demo", "--quick", "--steps", "1"])
    assert ran == []  # the plain GRPO smoke was not run in its place
