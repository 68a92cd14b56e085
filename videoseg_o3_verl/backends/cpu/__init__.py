# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""CPU backend for verl: a CPU platform and an HF-``generate`` rollout backend (also usable on one GPU).

Registered by :func:`register_backends` (called from the ``verl.plugins`` entry point, so every process that
imports verl, Ray workers included, sees it):

- platform ``cpu`` in ``PlatformRegistry`` (chosen automatically when no accelerator exists, or with
  ``VERL_PLATFORM=cpu``);
- rollout ``hf``: ``RolloutReplicaRegistry["hf"]`` and ``_ROLLOUT_REGISTRY[("hf", "async")]``
  (select with ``actor_rollout_ref.rollout.name=hf``);
- verl's stock FSDP engines for ``device="cpu"`` (they are registered for cuda/npu only upstream).
"""

from __future__ import annotations

HF_ROLLOUT_NAME = "hf"
ADAPTER_FQN = "videoseg_o3_verl.backends.cpu.server.HFServerAdapter"

def _load_hf_replica():
    from .server import HFReplica

    return HFReplica


def register_platform() -> bool:
    """Register the CPU platform; returns True when the CPU platform is (or will be) the active one."""
    import os

    from verl.plugin.platform import platform_manager

    from . import platform as _platform  # registers "cpu"
    from .probe import no_accelerator

    requested = os.environ.get("VERL_PLATFORM", "").strip().lower()
    is_cpu = requested == "cpu" or (not requested and no_accelerator())
    current = platform_manager._current_platform
    if is_cpu and current is not None and current.device_name != "cpu":
        # Something probed before the plugin was loaded and fell back to "nvidia": correct it.
        platform_manager.set_platform(_platform.PlatformCPU())
    return is_cpu


def register_rollout() -> None:
    """Register the ``hf`` rollout backend (replica + in-worker adapter)."""
    from verl.workers.rollout.base import _ROLLOUT_REGISTRY
    from verl.workers.rollout.replica import RolloutReplicaRegistry

    RolloutReplicaRegistry.register(HF_ROLLOUT_NAME, _load_hf_replica)
    _ROLLOUT_REGISTRY[(HF_ROLLOUT_NAME, "async")] = ADAPTER_FQN


def register_cpu_engines() -> None:
    """Make verl's stock FSDP engines selectable on the CPU device."""
    from verl.workers.engine.base import EngineRegistry
    from verl.workers.engine.fsdp.transformer_impl import FSDPEngineWithLMHead, FSDPEngineWithValueHead

    for model_type, engine in (("language_model", FSDPEngineWithLMHead), ("value_model", FSDPEngineWithValueHead)):
        for backend in ("fsdp", "fsdp2"):
            if "cpu" not in EngineRegistry._engines.get(model_type, {}).get(backend, {}):
                EngineRegistry.register(model_type=model_type, backend=backend, device="cpu")(engine)


def register_backends() -> bool:
    """Register everything above; returns whether the CPU platform is active."""
    is_cpu = register_platform()
    register_rollout()
    if is_cpu:
        register_cpu_engines()
    return is_cpu
