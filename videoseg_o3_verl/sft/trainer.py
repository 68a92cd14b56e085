# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Cold-start SFT on verl's SFT trainer (``verl.trainer.sft_trainer.SFTTrainer``, SPMD, one process per device).

verl's trainer is used as is, with two extension points: ``data.custom_cls`` selects
:class:`~videoseg_o3_verl.sft.dataset.VideoSegSFTDataset`, and :class:`VideoSegSFTTrainer` overrides
``_build_engine`` only, to build the engine of ``model.model_type`` (``videoseg_o3_seg_sft``: verl's SFT trainer
hard-codes ``language_model``) and to average the per-micro-batch metrics before they are logged. Launch with
``videoseg-o3 sft --config-name coldstart_tiny_cpu [overrides]`` (one process) or ``torchrun --nproc-per-node N
-m videoseg_o3_verl.sft.trainer --config-name NAME [overrides]`` on GPUs.
"""

from __future__ import annotations

import os
import sys
from functools import partial

import numpy as np
from omegaconf import DictConfig
from verl.trainer.sft_trainer import SFTTrainer

from .engine import SFT_MODEL_TYPE


def _flat(value) -> list[float]:
    if isinstance(value, list | tuple):
        return [x for v in value for x in _flat(v)]
    return [float(value)]


def _mean_metrics(output):
    """Per-micro-batch (and per-rank) metric lists → means (verl's console/file loggers want scalars)."""
    from verl.utils import tensordict_utils as tu

    metrics = tu.get(output, "metrics")
    if isinstance(metrics, dict):
        for key, value in list(metrics.items()):
            if key.startswith("sft/") and isinstance(value, list | tuple):
                values = _flat(value)
                metrics[key] = float(np.mean(values)) if values else float("nan")
    return output


class VideoSegSFTTrainer(SFTTrainer):
    """verl's SFT trainer building the ``model.model_type`` engine (see the module docstring)."""

    def _build_engine(self):
        from verl.workers.engine_workers import TrainingWorker, TrainingWorkerConfig
        from verl.workers.utils.losses import sft_loss

        model_type = self.config.model.get("model_type", SFT_MODEL_TYPE)
        config = TrainingWorkerConfig(model_type=model_type, model_config=self.model_config,
                                      engine_config=self.engine_config, optimizer_config=self.optimizer_config,
                                      checkpoint_config=self.checkpoint_config, profiler_config=self.profiler_config)
        self.loss_fn = partial(sft_loss, config=None)
        self.training_client = TrainingWorker(config=config)
        self.training_client.set_loss_fn(loss_fn=self.loss_fn)
        self.engine = self.training_client.engine
        train_batch = self.training_client.train_batch
        self.training_client.train_batch = lambda data: _mean_metrics(train_batch(data))

    def _init_engine(self):
        super()._init_engine()
        # verl's loop stops after total_epochs even when total_training_steps asks for more (and then never
        # saves): run as many epochs as the steps need
        needed = -(-self.total_training_steps // max(1, self.steps_per_epoch))
        if needed > self.config.trainer.total_epochs:
            self.config.trainer.total_epochs = needed


def _single_process_env() -> None:
    """torch.distributed variables of a one-process run when not launched by torchrun."""
    defaults = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1",
                "MASTER_ADDR": "127.0.0.1"}
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    if "MASTER_PORT" not in os.environ:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            os.environ["MASTER_PORT"] = str(s.getsockname()[1])


def run_sft(cfg: DictConfig) -> None:
    """Run verl's SFT loop with the VideoSEG-O3 engine on a composed recipe."""
    import torch.distributed
    from verl.utils.device import auto_set_device, get_device_name

    from .. import register
    from . import engine as _engine  # noqa: F401  (registers the SFT engine)

    register.check()
    auto_set_device(cfg)
    _single_process_env()
    device = get_device_name()
    backend = "gloo" if device == "cpu" else f"cpu:gloo,{device}:nccl"
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend=backend)
    try:
        trainer = VideoSegSFTTrainer(config=cfg)
        trainer.fit()
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def main(argv: list[str] | None = None) -> int:
    """``python -m videoseg_o3_verl.sft.trainer --config-name NAME [overrides]`` (what torchrun launches)."""
    import argparse

    from ..launch import compose_recipe

    parser = argparse.ArgumentParser(prog="videoseg-o3 sft", description=__doc__)
    parser.add_argument("--config-name", required=True)
    parser.add_argument("--config-path", default=None)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    run_sft(compose_recipe(args.config_name, args.overrides, args.config_path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
