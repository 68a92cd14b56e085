# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""videoseg_reward: J&F metrics, VideoSEG-O3 reward terms and a SAM2 segmentation service.

This package never imports verl or vllm so that other projects can reuse it.
"""

__version__ = "0.1.0"
