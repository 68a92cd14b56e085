# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""A CPU platform for verl's platform registry.

verl 0.9.1 registers only nvidia/huawei/amd and falls back to "nvidia" when nothing is detected
(`verl/plugin/platform/platform_manager.py:83-117`), which then rewrites ``trainer.device=cpu`` to ``cuda``
(`verl/utils/device.py:151-166`). Registering this platform *after* the built-in ones makes the probe pick
it on a machine without an accelerator (or explicitly with ``VERL_PLATFORM=cpu``).
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Callable
from typing import Any

import torch
from verl.plugin.platform.platform_base import PlatformBase
from verl.plugin.platform.platform_manager import PlatformRegistry

from .probe import no_accelerator


def _noop(*args, **kwargs) -> None:
    return None


def _zero(*args, **kwargs) -> int:
    return 0


def _seed(seed: int, *args, **kwargs) -> None:
    torch.manual_seed(seed)


VETTED_CALLS: dict[str, Callable[..., Any]] = {
    # what verl 0.9.1 calls through ``get_torch_device()``, with its meaning on the CPU
    "is_available": lambda: True,
    "is_initialized": lambda: True,
    "device_count": lambda: 1,
    "current_device": lambda: 0,
    "get_device_name": lambda *a, **k: "cpu",
    "set_device": _noop,
    "synchronize": _noop,
    "empty_cache": _noop,
    "ipc_collect": _noop,
    "manual_seed": _seed,
    "manual_seed_all": _seed,
    "get_rng_state": lambda *a, **k: torch.get_rng_state(),
    "set_rng_state": lambda state, *a, **k: torch.set_rng_state(state),
    "set_per_process_memory_fraction": _noop,
    "reset_peak_memory_stats": _noop,
    "reset_accumulated_memory_stats": _noop,
    "reset_max_memory_allocated": _noop,
    "memory_allocated": _zero,
    "memory_reserved": _zero,
    "max_memory_allocated": _zero,
    "max_memory_reserved": _zero,
    "mem_get_info": lambda *a, **k: (0, 0),
    "memory_stats": lambda *a, **k: {},
    "Stream": lambda *a, **k: contextlib.nullcontext(),
    "stream": lambda *a, **k: contextlib.nullcontext(),
    "current_stream": lambda *a, **k: types.SimpleNamespace(synchronize=_noop, wait_stream=_noop),
    "Event": lambda *a, **k: types.SimpleNamespace(record=_noop, synchronize=_noop, wait=_noop),
}
"""The ``torch.cuda``-style calls the CPU device module answers; anything else raises ``AttributeError``."""


class _CPUDeviceModule(types.ModuleType):
    """A ``torch.cuda``-shaped module with only the :data:`VETTED_CALLS`: an unknown call raises instead of
    silently doing nothing, so a new verl code path that needs an accelerator fails where it happens."""

    def __getattr__(self, name: str):
        raise AttributeError(f"The CPU platform has no torch.cuda.{name}(): verl called a device function that is "
                             "not in videoseg_o3_verl.backends.cpu.platform.VETTED_CALLS; add it there with its CPU "
                             "meaning once you have checked what the caller needs")


def _cpu_device_module() -> types.ModuleType:
    module = _CPUDeviceModule("videoseg_cpu_device")
    for name, fn in VETTED_CALLS.items():
        setattr(module, name, fn)
    return module


@PlatformRegistry.register(platform="cpu")
class PlatformCPU(PlatformBase):
    """verl platform for machines without an accelerator: device "cpu", gloo collectives.

    Ray resources: verl's resource pools count only GPU/NPU slots
    (`verl/single_controller/ray/base.py:228-231`), so the CPU platform reports the resource name "GPU" and
    the launcher starts Ray with ``num_gpus=<ranks>`` logical slots (``+ray_kwargs.ray_init.num_gpus``).
    """

    _device_module = _cpu_device_module()

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> types.ModuleType:
        return self._device_module

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        # Only chosen by the probe when no accelerator exists (it is registered after the built-ins).
        return no_accelerator()

    def current_device(self) -> str:  # type: ignore[override]
        # `.to(get_device_id())` must give a CPU tensor, so the "device index" is the device string itself.
        return "cpu"

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        return None

    def synchronize(self, device_index: int | None = None) -> None:
        return None

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        return None

    def empty_cache(self) -> None:
        return None

    def get_device_capability(self, device_index: int = 0) -> tuple[int | None, int | None]:
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        return "CUDA_VISIBLE_DEVICES"

    @contextlib.contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        return None

    def profiler_stop(self) -> None:
        return None

    def get_device_uuid(self, device_id):
        return f"cpu-{device_id}"

    def ray_resource_name(self) -> str:
        return "GPU"

    def ray_noset_envvars(self) -> list[str]:
        return []

    def ray_resource_options(self, num_gpus: float) -> dict[str, Any]:
        return {"num_gpus": num_gpus}

    def is_ipc_supported(self) -> bool:
        return False

    def rollout_env_vars(self) -> dict[str, str]:
        return {}

    def cudart(self) -> Any:
        return None
