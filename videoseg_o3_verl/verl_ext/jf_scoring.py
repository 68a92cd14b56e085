# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The J&F reward term: requests to the SAM2 reward service (each trajectory's final [SEG] propagated from its final
keyframe) and their scores, one per trajectory."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..data.parquet import record_from_extra_info
from ..trajectory import EXTRA_FIELDS_KEY, Trajectory

if TYPE_CHECKING:
    from ..config import VideoSegO3Config


def connect_reward_service(settings: VideoSegO3Config):
    """This process's handle of the J&F term's SAM2 reward service (the actor is created on first use), or ``None``
    when the term is off. The handle restores the engine's last decoder weights (kept by the service's weights
    keeper) on a restarted actor before it serves any request."""
    if not settings.rewards.jf.enabled:
        return None
    from videoseg_reward.actor import Sam2Service

    sam2, service = settings.sam2, settings.reward_service
    return Sam2Service.get_or_create(service.actor_name, sam2.checkpoint, config=sam2.config,
                                     image_size=sam2.image_size, num_gpus=service.num_gpus,
                                     call_timeout_s=service.call_timeout_s)


def jf_scores(service, extra_fields: list, extra_infos: list, embeddings: list[torch.Tensor],
              nsegs: list[torch.Tensor], num_frames: int) -> list[float | None]:
    """J&F of each trajectory's propagated final mask from the SAM2 reward service (0 without a [SEG]); all
    ``None`` without a service."""
    if service is None:
        return [None] * len(extra_fields)
    rows, requests = jf_requests(extra_fields, extra_infos, embeddings, nsegs, num_frames)
    jfs: list[float | None] = [0.0] * len(extra_fields)
    for row, result in zip(rows, service.run(requests)):
        jfs[row] = float(result["J&F"])
    return jfs


def jf_requests(extra_fields: list, extra_infos: list, embeddings: list[torch.Tensor], nsegs: list[torch.Tensor],
                num_frames: int) -> tuple[list[int], list]:
    """Reward-service requests for the J&F term: each trajectory's final [SEG] embedding, propagated from its final
    keyframe (the last turn's) through ``num_frames`` frames sampled uniformly over the video, scored against GT.

    Returns ``(rows, requests)``; rows without a trajectory, ground truth or decoded [SEG] are left out (J&F 0).
    """
    import numpy as np
    from videoseg_reward.actor import Sam2Service
    from videoseg_reward.schemas import Prompts, VideoRef

    rows, requests = [], []
    for i, (fields, info, embedding, nseg) in enumerate(zip(extra_fields, extra_infos, embeddings, nsegs)):
        if not isinstance(fields, dict) or EXTRA_FIELDS_KEY not in fields or int(nseg.flatten()[0]) == 0:
            continue
        trajectory = Trajectory.from_extra_fields(fields)
        record = record_from_extra_info(info)
        if not record.mask_existence or not trajectory.turns:
            continue
        keyframe = trajectory.turns[-1].seg_keyframe
        frames = np.linspace(0, record.num_frames - 1, min(num_frames, record.num_frames), dtype=int).tolist()
        frames = sorted(set(frames))
        video = VideoRef(record.video_path, tuple(record.frame_ids) or None)
        gt = np.stack([record.decode_mask(f) for f in frames])
        requests.append(Sam2Service.make_request(video, Prompts.from_embeddings(embedding.flatten()[None].numpy()),
                                                 "propagate", keyframe, frames, gt_masks=gt,
                                                 gt_keyframe=record.decode_mask(keyframe)))
        rows.append(i)
    return rows, requests
