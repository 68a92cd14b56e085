# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Test tiers (markers declared in pyproject.toml):

- default (`bash scripts/run_tests.sh`): everything below except `gpu`; includes `e2e` (verl's real trainer on
  CPU, ~1 min per run) and `ray` tests.
- fast unit tests only: `bash scripts/run_tests.sh -m "not e2e and not ray and not slow"`.
- GPU smoke (on a CUDA machine with vLLM installed): `bash scripts/run_tests.sh -m gpu`.
- vLLM tier (verl's vLLM rollout on CPU, in `.venv-vllm`): `bash scripts/run_tests.sh --vllm`; the default run
  runs it after the main suite.

Tiny models are built once per machine into the cache (``$VIDEOSEG_O3_CACHE`` or ``~/.cache/videoseg_o3``).
"""

from __future__ import annotations

import os
import sys

import pytest
import torch

os.environ.setdefault("FORCE_QWENVL_VIDEO_READER", "decord")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


_exit_status: int | None = None


def pytest_sessionfinish(session, exitstatus):
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """End the process with the session's exit status once pytest is done (results, cache and summary written),
    without the interpreter's teardown: a CI run of the whole suite once segfaulted there, after every test had
    passed (1,232 passed), while torch, Ray, SAM2 and decord tore down their native state. A test failure still
    fails the run; only the teardown is skipped."""
    if _exit_status is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)


def pytest_collection_modifyitems(config, items):
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        skip_vllm = pytest.mark.skip(reason="needs vLLM: `bash scripts/run_tests.sh --vllm` (runs in .venv-vllm)")
        for item in items:
            if item.get_closest_marker("vllm") is not None:
                item.add_marker(skip_vllm)
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device (GPU smoke tier)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_qwen25_path():
    from videoseg_o3_verl.model.tiny import tiny_qwen_vl

    return tiny_qwen_vl("qwen2_5_vl")


@pytest.fixture(scope="session")
def tiny_qwen3_path():
    from videoseg_o3_verl.model.tiny import tiny_qwen_vl

    return tiny_qwen_vl("qwen3_vl")


@pytest.fixture(scope="session")
def tiny_sam2_path():
    from videoseg_o3_verl.model.tiny import tiny_sam2

    return tiny_sam2()
