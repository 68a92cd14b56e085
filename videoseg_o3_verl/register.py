# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The ``verl.plugins`` entry point: registers the plugin's backends, fixes and extensions in this process.

verl imports every ``verl.plugins`` entry point on ``import verl`` (`verl/__init__.py:55-76`), in the driver,
the TaskRunner and every Ray worker, but swallows errors at DEBUG level. So registration errors are kept in
:data:`ERRORS` and :func:`check` raises them; launchers call ``check()`` before starting a run.
"""

from __future__ import annotations

import importlib
import logging
import traceback

logger = logging.getLogger(__name__)

ERRORS: list[str] = []
"""Tracebacks of registration steps that failed in this process."""

STATE: dict[str, bool] = {}
"""What was registered (``cpu_platform``, ``hf_rollout``, ``fixes``, ...)."""

EXTENSION_MODULES = {"agent_loop": "videoseg_o3_verl.agent_loop", "engine": "videoseg_o3_verl.verl_ext.engine",
                     "trainer": "videoseg_o3_verl.verl_ext.trainer"}
"""Registration step → module whose import registers it with verl (``@register``, ``EngineRegistry``, ...).
A module that fails to import, or does not exist, is a registration error that :func:`check` raises."""


def _step(name: str, fn) -> None:
    try:
        result = fn()
        STATE[name] = True if result is None else bool(result)
    except Exception:  # noqa: BLE001 - recorded and re-raised by check()
        STATE[name] = False
        ERRORS.append(f"[videoseg_o3 plugin] {name} failed:\n{traceback.format_exc()}")
        logger.error(ERRORS[-1])


def register_all() -> None:
    """Idempotent: run every registration step once per process."""
    if STATE:
        return
    from .backends import cpu as cpu_backend

    is_cpu = False

    def _backends():
        nonlocal is_cpu
        is_cpu = cpu_backend.register_backends()

    _step("backends", _backends)
    STATE["cpu_platform"] = is_cpu

    def _fixes():
        from .verl_ext import fixes

        fixes.apply_all(cpu=bool(is_cpu))

    _step("fixes", _fixes)
    _step("resolvers", register_resolvers)
    for name, module in EXTENSION_MODULES.items():
        _step(name, lambda module=module: importlib.import_module(module))


def settings_json(node) -> str:
    """OmegaConf resolver ``${videoseg_json:${videoseg_o3}}``: the section as one JSON string.

    verl applies ``actor_rollout_ref.model.override_config`` to the HF config and recurses into dict values
    (`verl/utils/model.py:75-85`), so the ``videoseg_o3`` settings travel to the engine as a string; the engine
    parses it and removes it from the HF config.
    """
    import json

    from omegaconf import DictConfig, OmegaConf

    return json.dumps(OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node)


def register_resolvers() -> None:
    from omegaconf import OmegaConf

    OmegaConf.register_new_resolver("videoseg_json", settings_json, replace=True)


def check() -> dict[str, bool]:
    """Raise ``RuntimeError`` with the recorded tracebacks if any registration step failed."""
    register_all()
    if ERRORS:
        raise RuntimeError("videoseg_o3_verl plugin registration failed:\n" + "\n".join(ERRORS))
    return dict(STATE)


register_all()
