# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Narrow workarounds for verl 0.9.1 bugs, one function per bug, each citing the upstream file:line.

Rules (docs/architecture.md, "Extension points used"): only where a verl bug leaves no other way; each fix is
idempotent, touches the smallest surface (replacing one function object in the modules that imported it) and has
a test in ``tests/verl_ext/test_fixes.py`` that reproduces the bug with the stock function. Delete a fix the day
verl ships the upstream fix. Applied in every process by the ``verl.plugins`` entry point (``register.py``).
"""

from __future__ import annotations

import functools
import importlib
import logging

import torch

logger = logging.getLogger(__name__)

APPLIED: set[str] = set()
"""Names of the fixes applied in this process."""

ORIGINALS: dict[str, object] = {}
"""The upstream objects each fix replaced (kept so tests can reproduce the bug)."""


def _replace(module_names: list[str], attribute: str, replacement) -> None:
    for name in module_names:
        module = importlib.import_module(name)
        if hasattr(module, attribute):
            current = getattr(module, attribute)
            if current is not replacement:
                ORIGINALS.setdefault(attribute, current)
            setattr(module, attribute, replacement)


def fixed_maybe_fix_3d_position_ids(data) -> None:
    """Repair nested mrope position ids whatever jagged layout tensordict produced.

    Bug: ``verl/utils/tensordict_utils.py:910-915`` force-sets ``_ragged_idx = 2`` on nested ``(B, 4, j)``
    position ids. When every sample has the same length, ``torch.nested.as_nested_tensor`` builds the tensor
    with ``_ragged_idx == 1`` (values ``(B*4, L)``, offsets ``[0, 4, 8, ...]``); forcing 2 corrupts it and the
    next ``unbind`` fails with ``split_with_sizes expects split_sizes to sum exactly to L``. Here the real layout
    is detected from ``offsets[-1]`` versus the values' first dimension and rebuilt with the jagged dim at 2.
    """
    if "position_ids" not in data.keys():
        return
    pos = data["position_ids"]
    if not (isinstance(pos, torch.Tensor) and pos.is_nested and pos.dim() == 3):
        return
    values, offsets = pos.values(), pos.offsets()
    if getattr(pos, "_ragged_idx", 2) == 2 and values.dim() == 2 and values.shape[1] == int(offsets[-1]):
        return  # already (rows, total_len) with ragged dim 2
    if values.dim() == 2 and values.shape[0] == int(offsets[-1]):
        # layout (B*rows, L): every sample is a (rows, L) block of `values`
        blocks = list(values.split(torch.diff(offsets).tolist(), dim=0))
        lengths = torch.tensor([b.shape[1] for b in blocks], device=offsets.device)
        new_offsets = torch.cat([offsets.new_zeros(1), torch.cumsum(lengths, 0)])
        data["position_ids"] = torch.nested.nested_tensor_from_jagged(torch.cat(blocks, dim=1), new_offsets,
                                                                      jagged_dim=2)
        return
    pos._ragged_idx = 2  # verl's original behaviour for the layouts it handles


def fix_equal_length_mrope_position_ids() -> None:
    """Install :func:`fixed_maybe_fix_3d_position_ids` where verl imported the buggy function."""
    _replace(["verl.utils.tensordict_utils", "verl.workers.engine.base", "verl.workers.engine_workers"],
             "maybe_fix_3d_position_ids", fixed_maybe_fix_3d_position_ids)
    APPLIED.add("equal_length_mrope_position_ids")


def cpu_safe_process_group(init_fn):
    """Wrap ``initialize_global_process_group_ray`` so a CPU device gets backend ``cpu:gloo``."""
    if getattr(init_fn, "_videoseg_cpu_safe", False):
        return init_fn

    @functools.wraps(init_fn)
    def wrapper(timeout_second=None, backend=None):
        from verl.utils.device import get_device_name

        if backend is None and get_device_name() == "cpu":
            backend = "cpu:gloo"
        return init_fn(timeout_second=timeout_second, backend=backend)

    wrapper._videoseg_cpu_safe = True
    return wrapper


def fix_cpu_process_group_backend() -> None:
    """Use ``cpu:gloo`` when the device is the CPU.

    Bug: ``verl/utils/distributed.py:89`` builds ``f"cpu:gloo,{device}:{nccl_backend}"``; with device ``cpu``
    this is ``cpu:gloo,cpu:gloo`` and ``init_process_group`` raises ``ValueError: Duplicate device type cpu in
    backend string`` (called from ``verl/workers/engine_workers.py:89``).
    """
    import verl.utils.distributed as dist_utils

    patched = cpu_safe_process_group(dist_utils.initialize_global_process_group_ray)
    _replace(["verl.utils.distributed", "verl.workers.engine_workers"], "initialize_global_process_group_ray", patched)
    APPLIED.add("cpu_process_group_backend")


def fix_cpu_offload_pin_memory() -> None:
    """Build FSDP2 ``CPUOffloadPolicy`` with ``pin_memory=False`` when there is no accelerator.

    Bug: ``verl/workers/engine/fsdp/transformer_impl.py:462`` always passes ``pin_memory=True`` for the
    reference model (``forward_only``); ``Tensor.pin_memory()`` raises "Cannot access accelerator device when
    none is available" on a CPU-only machine.
    """
    if torch.cuda.is_available():
        return
    impl = importlib.import_module("verl.workers.engine.fsdp.transformer_impl")
    original = impl.CPUOffloadPolicy
    if getattr(original, "_videoseg_cpu_safe", False):
        return

    class CPUOffloadPolicyNoPin(original):  # type: ignore[misc, valid-type]
        _videoseg_cpu_safe = True

        def __init__(self, pin_memory: bool = True, **kwargs):
            super().__init__(pin_memory=False, **kwargs)

    impl.CPUOffloadPolicy = CPUOffloadPolicyNoPin
    APPLIED.add("cpu_offload_pin_memory")


def apply_all(cpu: bool) -> None:
    """Apply the fixes relevant to this process (``cpu``: the CPU platform is active)."""
    fix_equal_length_mrope_position_ids()
    if cpu:
        fix_cpu_process_group_backend()
        fix_cpu_offload_pin_memory()
