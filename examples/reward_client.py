# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Score a mask prompt against ground truth with the SAM2 reward service over HTTP.

Start the service first (tiny SAM2 from `videoseg-o3 build-tiny`, frames under DATA):
    videoseg-o3 serve-reward --checkpoint SAM2.pt --port 8000 --video-root DATA
Then: python examples/reward_client.py http://127.0.0.1:8000 DATA/JPEGImages/<video>
"""

import sys

import numpy as np
from videoseg_reward.client import RewardClient
from videoseg_reward.frames import read_frames
from videoseg_reward.schemas import Prompts


def main(url: str, video: str) -> None:
    client = RewardClient(url, timeout=120)
    print(client.health(), client.version())
    frames = read_frames(video, indices=[0, 1, 2])
    h, w = frames.shape[1:3]
    mask = np.zeros((h, w), dtype=bool)
    mask[h // 4: h // 2, w // 4: w // 2] = True  # a box-shaped mask prompt on the keyframe
    result = client.score(video, Prompts.from_masks(mask[None]), "propagate", 0, gt_masks=np.stack([mask] * 3),
                          frame_indices=[0, 1, 2])
    print({k: result[k] for k in ("J", "F", "J&F", "keyframe_iou") if k in result})


if __name__ == "__main__":
    main(*sys.argv[1:3])
