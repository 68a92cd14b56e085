# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The seg head alone, exported next to verl's checkpoint (``<checkpoint>/seg_head/``, loadable with
:func:`videoseg_o3_verl.model.seg_head_io.load_seg_head`)."""

from __future__ import annotations

import os

import torch
import torch.nn as nn


def export_seg_head(head: nn.Module, template: nn.Module, local_path: str, *, sam2_checkpoint: str,
                    hidden_size: int) -> None:
    """Write ``head`` (possibly FSDP-sharded) to ``<local_path>/seg_head/`` as ``seg_head.safetensors`` + config.

    Call on every rank (gathering DTensor shards is collective); rank 0 loads the full weights into ``template``
    (an unsharded float32 copy of the head) and writes it.
    """
    from ..model.seg_head_io import save_seg_head

    state = {name: (t.full_tensor() if hasattr(t, "full_tensor") else t).detach().float().cpu()
             for name, t in head.state_dict().items()}  # every rank: DTensor gathers are collective
    if torch.distributed.get_rank() == 0:
        template.load_state_dict(state, strict=True)
        save_seg_head(template, os.path.join(local_path, "seg_head"), sam2_checkpoint=sam2_checkpoint,
                      hidden_size=hidden_size)
