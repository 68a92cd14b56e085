# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""videoseg_o3_verl: the verl plugin for VideoSEG-O3 (multi-turn RL for reasoning video object segmentation)."""

__version__ = "0.1.0"
