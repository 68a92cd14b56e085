# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Weight sync into a vLLM-CPU worker through vLLM's in-place layer-wise reload.

On CPU, vLLM's unquantized linear layers prepack their weight for oneDNN after loading and replace
``layer.weight`` with an empty parameter without a ``weight_loader``; verl's in-place ``model.load_weights``
then fails with ``'Parameter' object has no attribute 'weight_loader'``. vLLM's own reload API restores the
original parameters (recorded at model init), loads into them and re-runs the per-layer processing (the
prepacking). The shared-memory bucket is reused by the sender for the next bucket, and on CPU verl's
``tensor.to(device)`` returns a view of it, so each received tensor is copied first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from verl.workers.rollout.vllm_rollout.utils import vLLMColocateWorkerExtension


def reload_in_place(models_with_config: Iterable[tuple[torch.nn.Module, object]],
                    load: Callable[[], None]) -> None:
    """Run ``load()`` (which calls ``model.load_weights``) inside vLLM's layer-wise reload of every model."""
    from vllm.model_executor.model_loader.reload import finalize_layerwise_reload, initialize_layerwise_reload

    models_with_config = list(models_with_config)
    for model, _ in models_with_config:
        initialize_layerwise_reload(model)
    load()
    for model, model_config in models_with_config:
        finalize_layerwise_reload(model, model_config)


def copied(weights: Iterable[tuple[str, torch.Tensor]]) -> list[tuple[str, torch.Tensor]]:
    """The received tensors copied out of the transfer buffer."""
    return [(name, tensor.clone()) for name, tensor in weights]


class CPUColocateWorkerExtension(vLLMColocateWorkerExtension):
    """verl's colocated worker extension with the CPU weight load (see the module docstring)."""

    def update_weights_from_ipc(self, peft_config: dict = None, base_sync_done=False, use_shm: bool = False):
        from verl.utils.vllm.vllm_quant_utils import is_quantized_model
        from verl.workers.rollout.vllm_rollout.bucketed_weight_transfer import BucketedWeightReceiver

        if peft_config or self._is_qat_model or self._is_modelopt_qat or is_quantized_model(
                self.model_runner.vllm_config):
            # adapters and quantized models keep verl's own path (not exercised on CPU)
            return super().update_weights_from_ipc(peft_config, base_sync_done, use_shm)
        receiver = BucketedWeightReceiver(zmq_handle=self._get_zmq_handle(), device=torch.device("cpu"),
                                          use_shm=use_shm)

        def on_bucket(weights, is_last: bool) -> None:
            self._update_weights(copied(weights), peft_config=None, base_sync_done=base_sync_done)

        reload_in_place(self._iter_all_models_with_config(), lambda: receiver.receive_weights(on_bucket))
