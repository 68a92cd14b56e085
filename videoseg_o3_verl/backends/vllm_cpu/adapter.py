# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The in-worker side of verl's vLLM rollout on CPU: the weight-transfer buffer sized from the model.

verl sends the actor's weights to vLLM through one shared-memory bucket of
``rollout.checkpoint_engine.update_weights_bucket_megabytes`` (2048 by default) when CUDA IPC is unavailable.
On CPU that is 2 GB of ``/dev/shm`` per sync for a model that may weigh a few MB; the bucket is capped at the
model's size in float32 (the largest dtype the actor sends), which always holds the largest tensor.
"""

from __future__ import annotations

import dataclasses
import logging

from verl.workers.rollout.vllm_rollout.vllm_rollout import ServerAdapter

from .sizing import checkpoint_numel, transfer_buffer_megabytes

logger = logging.getLogger(__name__)


class CPUvLLMServerAdapter(ServerAdapter):
    """verl's vLLM ``ServerAdapter`` with the transfer bucket sized from the model (see the module docstring)."""

    def __init__(self, config, model_config, device_mesh, replica_rank: int = -1):
        super().__init__(config, model_config, device_mesh, replica_rank=replica_rank)
        engine = self.config.checkpoint_engine
        try:
            megabytes = transfer_buffer_megabytes(checkpoint_numel(self.model_config.local_path),
                                                  engine.update_weights_bucket_megabytes)
        except FileNotFoundError:  # not a safetensors checkpoint: keep the configured size
            return
        self.config = dataclasses.replace(
            self.config, checkpoint_engine=dataclasses.replace(engine, update_weights_bucket_megabytes=megabytes))
        logger.info("weight-transfer bucket: %d MB (configured %d MB)", megabytes,
                    engine.update_weights_bucket_megabytes)
