# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Compose a recipe with Hydra and run verl's trainer in-process (what ``videoseg-o3 train`` does).

Recipes are verl Hydra YAMLs composed from verl's own ``ppo_trainer`` config (``hydra.searchpath:
pkg://verl.trainer.config``); this module only finds them, applies command-line overrides and hands the
config to verl's ``run_ppo`` with the same pre-flight steps as ``verl.trainer.main_ppo.main``.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

logger = logging.getLogger(__name__)

RECIPES_DIR = Path(__file__).resolve().parent / "recipes"
"""Recipes shipped with the package (a link to the repository's ``recipes/`` in a source checkout)."""


def recipe_path(name: str, config_dir: str | os.PathLike | None = None) -> Path:
    """Locate ``<name>.yaml`` in ``config_dir`` or the shipped recipes; the error lists what exists."""
    directory = Path(config_dir) if config_dir else RECIPES_DIR
    path = directory / f"{name.removesuffix('.yaml')}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in directory.glob("*.yaml"))
        raise FileNotFoundError(f"Recipe {name!r} not found in {directory}; available: {known}")
    return path


def compose_recipe(name: str, overrides: list[str] | None = None, config_dir: str | os.PathLike | None = None
                   ) -> DictConfig:
    """Compose a recipe (plus Hydra-style ``overrides``) into verl's full trainer config."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    path = recipe_path(name, config_dir)
    overrides = list(overrides or [])
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(path.parent), version_base=None):
        cfg = compose(config_name=path.stem, overrides=overrides)
    GlobalHydra.instance().clear()
    _restore_required(cfg, path, overrides)
    return cfg


def required_keys(recipe: Path) -> list[str]:
    """Dotted keys the recipe file marks ``???`` (values the user must set)."""
    raw = OmegaConf.load(recipe)
    found: list[str] = []

    def walk(node, prefix: str) -> None:
        for key in node.keys():
            dotted = f"{prefix}{key}"
            if OmegaConf.is_missing(node, key):
                found.append(dotted)
            elif isinstance(node[key], DictConfig):
                walk(node[key], dotted + ".")

    walk(raw, "")
    return [k for k in found if not k.startswith("hydra.")]


def _restore_required(cfg: DictConfig, recipe: Path, overrides: list[str]) -> None:
    """Put back ``???`` on recipe keys nobody set.

    Hydra merges the recipe onto verl's ``ppo_trainer`` defaults, and OmegaConf skips ``???`` when merging, so an
    unset ``actor_rollout_ref.model.path: ???`` would silently become verl's default model. Restoring the marker makes
    the run fail at start-up with ``MissingMandatoryValue`` naming the key.
    """
    overridden = {o.lstrip("+~").split("=", 1)[0] for o in overrides}
    for key in required_keys(recipe):
        if key not in overridden:
            OmegaConf.update(cfg, key, "???", force_add=True)


def run_trainer(cfg: DictConfig) -> None:
    """Run verl's V1 trainer on a composed config (Ray is started locally unless already initialised)."""
    from verl.trainer.main_ppo import TaskRunnerV1, run_ppo
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config
    from verl.utils.device import auto_set_device

    from . import register
    from .config import TRAINER_MODE, load_videoseg_config
    from .verl_ext.vllm_pixels import check_pixel_normalisation

    register.check()
    check_pixel_normalisation(cfg)
    if cfg.trainer.get("v1", {}).get("trainer_mode") == TRAINER_MODE:
        load_videoseg_config(cfg).validate(cfg)
    auto_set_device(cfg)
    validate_config(config=cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))
    if not cfg.trainer.get("use_v1", True):
        raise ValueError("[trainer] videoseg-o3 supports verl's V1 trainer only; set trainer.use_v1=true")
    started = time.time()
    try:
        run_ppo(cfg, task_runner_class=TaskRunnerV1)
    finally:
        if cfg.actor_rollout_ref.rollout.name == "vllm" and register.STATE.get("vllm_cpu_rollout"):
            _stop_vllm_cpu(started)


def _stop_vllm_cpu(started: float) -> None:
    """Shut Ray down and remove the /dev/shm segments that its killed vLLM servers leave behind."""
    import ray

    from .backends.vllm_cpu.shm import sweep_after_run

    if ray.is_initialized():
        ray.shutdown()
    sweep_after_run(new_since=started)


def resolved_yaml(cfg: DictConfig) -> str:
    """The composed config as YAML (``--cfg job``)."""
    return OmegaConf.to_yaml(cfg)
