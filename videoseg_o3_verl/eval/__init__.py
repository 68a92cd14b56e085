# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Benchmark evaluation: the VideoSEG-O3 inference protocol over a parquet of RVOS records (`videoseg-o3 eval`)."""

from videoseg_o3_verl.eval.keyframe import final_keyframe

__all__ = ["final_keyframe"]
