# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Each workaround in ``verl_ext/fixes.py`` next to a reproduction of the verl 0.9.1 bug it works around."""

from __future__ import annotations

import datetime
import os

import pytest
import torch
import verl.utils.tensordict_utils as tu  # noqa: I001  (import verl first: it loads the plugin)
from tensordict import TensorDict

from videoseg_o3_verl.verl_ext import fixes


def _equal_length_position_ids(batch=3, length=7):
    rows = [torch.arange(4 * length).reshape(4, length) + 100 * i for i in range(batch)]
    return rows, torch.nested.as_nested_tensor(rows, layout=torch.jagged)


def test_stock_maybe_fix_3d_position_ids_breaks_equal_length_batches():
    rows, nested = _equal_length_position_ids()
    assert nested._ragged_idx == 1  # tensordict/torch built (B, j=4, L) with the jagged dim at 1
    data = TensorDict({"position_ids": nested}, batch_size=[3])
    stock = fixes.ORIGINALS["maybe_fix_3d_position_ids"]  # verl/utils/tensordict_utils.py:910
    assert stock is not fixes.fixed_maybe_fix_3d_position_ids
    stock(data)  # forces _ragged_idx = 2 on a layout whose jagged dim is 1
    with pytest.raises(RuntimeError):
        [t.clone() for t in data["position_ids"].unbind()]


def test_fixed_maybe_fix_3d_position_ids_rebuilds_equal_length_batches():
    rows, nested = _equal_length_position_ids()
    data = TensorDict({"position_ids": nested}, batch_size=[3])
    fixes.fixed_maybe_fix_3d_position_ids(data)
    fixed = data["position_ids"]
    assert fixed._ragged_idx == 2
    for got, want in zip(fixed.unbind(), rows):
        torch.testing.assert_close(got, want)


def test_fixed_maybe_fix_3d_position_ids_keeps_ragged_batches():
    rows = [torch.arange(4 * n).reshape(4, n) for n in (3, 5)]
    nested = torch.nested.nested_tensor_from_jagged(torch.cat(rows, dim=1), torch.tensor([0, 3, 8]), jagged_dim=2)
    data = TensorDict({"position_ids": nested}, batch_size=[2])
    fixes.fixed_maybe_fix_3d_position_ids(data)
    for got, want in zip(data["position_ids"].unbind(), rows):
        torch.testing.assert_close(got, want)


def test_fix_is_installed_where_verl_imported_the_function():
    import verl.workers.engine.base as engine_base
    import verl.workers.engine_workers as engine_workers

    assert tu.maybe_fix_3d_position_ids is fixes.fixed_maybe_fix_3d_position_ids
    assert engine_base.maybe_fix_3d_position_ids is fixes.fixed_maybe_fix_3d_position_ids
    assert engine_workers.maybe_fix_3d_position_ids is fixes.fixed_maybe_fix_3d_position_ids


def _init_single_process_group(backend):
    store = torch.distributed.HashStore()
    torch.distributed.init_process_group(backend=backend, store=store, rank=0, world_size=1,
                                         timeout=datetime.timedelta(seconds=30))


def test_stock_backend_string_fails_on_cpu_and_fix_uses_gloo(monkeypatch):
    # verl/utils/distributed.py:89 builds f"cpu:gloo,{device}:{nccl}" -> "cpu:gloo,cpu:gloo" on the CPU platform
    with pytest.raises(ValueError, match="Duplicate device type cpu"):
        _init_single_process_group("cpu:gloo,cpu:gloo")
    seen = {}

    def fake_init(timeout_second=None, backend=None):
        seen["backend"] = backend

    monkeypatch.setattr("verl.utils.device.get_device_name", lambda: "cpu")
    fixes.cpu_safe_process_group(fake_init)()
    assert seen["backend"] == "cpu:gloo"
    _init_single_process_group(seen["backend"])
    try:
        tensor = torch.ones(2)
        torch.distributed.all_reduce(tensor)
        assert tensor.tolist() == [1.0, 1.0]
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.skipif(torch.cuda.is_available(), reason="the bug only exists without an accelerator")
def test_cpu_offload_policy_pin_memory_fix():
    from torch.distributed.fsdp import CPUOffloadPolicy

    with pytest.raises(RuntimeError):
        torch.ones(4).pin_memory()  # what FSDP2 does with CPUOffloadPolicy(pin_memory=True) on a CPU-only machine
    import verl.workers.engine.fsdp.transformer_impl as impl

    fixes.fix_cpu_offload_pin_memory()
    policy = impl.CPUOffloadPolicy(pin_memory=True)
    assert isinstance(policy, CPUOffloadPolicy) and policy.pin_memory is False
    assert "cpu_offload_pin_memory" in fixes.APPLIED
    assert os.environ.get("VERL_PLATFORM", "cpu") == "cpu"


def test_plugin_registers_every_extension_module_strictly():
    """Every module the entry point imports exists and registers (a missing one is an error, not a skip)."""
    import importlib.util

    from videoseg_o3_verl import register

    for module in register.EXTENSION_MODULES.values():
        assert importlib.util.find_spec(module) is not None, module
    state = register.check()
    assert all(state[name] is True for name in register.EXTENSION_MODULES), state


def test_plugin_registration_reports_a_missing_module(monkeypatch):
    from videoseg_o3_verl import register

    monkeypatch.setattr(register, "ERRORS", [])
    monkeypatch.setattr(register, "STATE", {})
    monkeypatch.setattr(register, "EXTENSION_MODULES", {"ghost": "videoseg_o3_verl.verl_ext.no_such_module"})
    with pytest.raises(RuntimeError, match="ghost failed"):
        register.check()
