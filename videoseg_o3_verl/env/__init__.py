# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The video-crop environment: action parsing, frame choice and observation rendering (pure functions).

Knows nothing about Ray or verl; the agent loop drives it.
"""

from videoseg_o3_verl.env.actions import (
    REASON_END_BEFORE_START,
    REASON_NO_ACTION,
    Action,
    parse_action,
    should_continue,
)
from videoseg_o3_verl.env.config import MODES, EnvConfig, load_env_overrides
from videoseg_o3_verl.env.frames import initial_frame_indices, sample_interval_frames
from videoseg_o3_verl.env.observation import (
    FrameLoader,
    ShownFrames,
    initial_messages,
    initial_user_content,
    select_observation_content,
    system_message,
)

__all__ = [
    "load_env_overrides",
    "MODES",
    "REASON_END_BEFORE_START",
    "REASON_NO_ACTION",
    "Action",
    "EnvConfig",
    "FrameLoader",
    "ShownFrames",
    "initial_frame_indices",
    "initial_messages",
    "initial_user_content",
    "parse_action",
    "sample_interval_frames",
    "select_observation_content",
    "should_continue",
    "system_message",
]
