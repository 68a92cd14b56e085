# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The CPU platform: a vetted ``torch.cuda``-style surface and one availability probe."""

import pytest
import torch

from videoseg_o3_verl.backends.cpu import platform


def test_device_module_raises_for_calls_not_vetted():
    module = platform.PlatformCPU().device_module
    with pytest.raises(AttributeError, match="torch.cuda.get_device_properties.*VETTED_CALLS"):
        module.get_device_properties(0)
    assert not hasattr(module, "caching_allocator_alloc")  # hasattr() stays honest


def test_device_module_answers_every_vetted_call_with_its_cpu_meaning():
    module = platform.PlatformCPU().device_module
    assert set(platform.VETTED_CALLS) <= set(dir(module))
    assert module.is_available() and module.device_count() == 1 and module.memory_allocated() == 0
    module.manual_seed(3)
    first = torch.rand(2)
    module.manual_seed(3)
    assert torch.equal(torch.rand(2), first)  # seeding the "device" seeds the CPU generator
    with module.stream(module.Stream()):
        module.current_stream().synchronize()


def test_every_device_call_verl_makes_is_vetted():
    """Static check: each ``get_torch_device().NAME`` in the installed verl is on the vetted list, so a verl upgrade
    that adds a device call fails this test, not a training run."""
    import re
    from pathlib import Path

    import verl

    called = set()
    for path in Path(verl.__file__).parent.rglob("*.py"):
        called.update(re.findall(r"get_torch_device\(\)\.([A-Za-z_]+)", path.read_text(errors="ignore")))
    assert called, "the scan found no device calls; has verl's device API moved?"
    assert called <= set(platform.VETTED_CALLS), sorted(called - set(platform.VETTED_CALLS))


@pytest.mark.parametrize("cuda, smi, expected", [(False, None, True), (True, None, False),
                                                 (False, "/usr/bin/nvidia-smi", False)])
def test_one_probe_decides_registration_and_platform_choice(monkeypatch, cuda, smi, expected):
    from videoseg_o3_verl.backends.cpu import probe

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(probe.shutil, "which", lambda name: smi)
    assert probe.no_accelerator() is expected
    assert platform.PlatformCPU().is_platform_available() is expected
