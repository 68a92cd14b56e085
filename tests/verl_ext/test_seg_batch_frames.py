# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""``build_head_inputs`` encodes the distinct frames of a micro-batch in one cached call and lays the decodes out
exactly as one encode per frame would: keyframe decodes first, then each [SEG]'s spatial frames."""

from __future__ import annotations

import pytest
import torch

from videoseg_o3_verl.trajectory import Trajectory
from videoseg_o3_verl.verl_ext.seg_batch import FrameStore, SampleSegs, build_head_inputs


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    from videoseg_o3_verl.data.parquet import convert_to_parquet, read_parquet_records
    from videoseg_o3_verl.data.synthetic import generate_synthetic_dataset

    root = tmp_path_factory.mktemp("synthetic")
    generate_synthetic_dataset(root, num_videos=2, num_frames=8, height=32, width=32)
    convert_to_parquet("synthetic", root, root / "rl.parquet")
    by_video = {}
    for record in read_parquet_records(root / "rl.parquet"):
        by_video.setdefault(record.video_path, record)
    return list(by_video.values())


@pytest.fixture(scope="module")
def sam2_model(tiny_sam2_path):
    from videoseg_reward.sam2_model import load_sam2_model

    return load_sam2_model(tiny_sam2_path, image_size=128)


def _sample(index, record, positions, keyframes, spatial):
    trajectory = Trajectory(num_frames=record.num_frames, initial_low_res=[], spatial_frames=spatial)
    return SampleSegs(index=index, record=record, trajectory=trajectory, positions=positions,
                      turns=list(range(len(positions))), keyframes=keyframes)


def test_head_inputs_equal_one_encode_per_frame(records, sam2_model):
    from videoseg_o3_verl.model.frame_encoder import FrameEncoder

    a, b = records
    # two samples share video a (frames 4 and 7 repeat), one sample without [SEG], two [SEG]s in the last one
    samples = [_sample(0, a, [5], [4], [0, 7]), _sample(1, b, [], [], [0, 7]), _sample(2, a, [3], [7], [0, 7]),
               _sample(3, b, [2, 6], [4, 1], [0, 7])]
    seg_hidden = torch.randn(4, 8)
    encoder = FrameEncoder.from_sam2(sam2_model, cache_size=64)
    inputs = build_head_inputs(samples, seg_hidden, encoder, FrameStore(), with_video=True)
    assert encoder.cache_misses == 7  # each distinct frame once: a 0, 4, 7; b 0, 1, 4, 7
    reference = FrameEncoder.from_sam2(sam2_model, cache_size=0)
    store = FrameStore()
    decodes = [(a, 4), (a, 7), (b, 4), (b, 1)] + [(r, t) for r, n in ((a, 1), (a, 1), (b, 2)) for _ in range(n)
                                                  for t in (0, 7)]
    expected = [reference.encode(store.frames(r, [t])) for r, t in decodes]
    assert len(inputs.features) == len(decodes) == 4 + 4 * 2
    torch.testing.assert_close(inputs.features.image_embed, torch.cat([e.image_embed for e in expected]))
    for level in range(2):
        torch.testing.assert_close(inputs.features.high_res_feats[level],
                                   torch.cat([e.high_res_feats[level] for e in expected]))
    # hidden: the 4 [SEG]s, then each [SEG] once per spatial frame
    torch.testing.assert_close(inputs.hidden, torch.cat([seg_hidden, seg_hidden.repeat_interleave(2, dim=0)]))
    assert (inputs.num_segs, inputs.frames_per_seg) == (4, [2, 2, 2, 2])
    again = build_head_inputs(samples, seg_hidden, encoder, FrameStore(), with_video=False)
    assert encoder.cache_misses == 7 and len(again.features) == 4  # all cached now; keyframe decodes only
    torch.testing.assert_close(again.hidden, seg_hidden)
