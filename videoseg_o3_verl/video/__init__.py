# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Video access: `VideoSource` (decord / PyAV / frame folders) and the LLM resize rules (`smart_resize`, ...)."""

from videoseg_o3_verl.video.resize import limit_size, resize_for_llm, resize_to_limit, smart_resize
from videoseg_o3_verl.video.source import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, VideoSource

__all__ = [
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "VideoSource",
    "limit_size",
    "resize_for_llm",
    "resize_to_limit",
    "smart_resize",
]
