# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The processor settings of the paper recipes through the real agent loop, the HF rollout engine and verl's
actor-side ``pixel_values``: image grids of an 854x480 video with the tiny Qwen3-VL (patch 16, merge 2), and the
released parser switch."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf
from transformers import AutoProcessor
from verl.experimental.agent_loop.agent_loop import AgentLoopWorker, DictConfigWrap
from verl.utils.dataset.rl_dataset import RLHFDataset

from videoseg_o3_verl.agent_loop import VideoSegO3AgentLoop
from videoseg_o3_verl.backends.cpu.hf_engine import HFGenerationEngine
from videoseg_o3_verl.model.processor import pixel_bounds_kwargs
from videoseg_o3_verl.trajectory import Trajectory

from .helpers import ScriptedServerManager, synthetic_rows

THINK = "<think>Step 1: when. Step 2: where. Step 3: what.</think>"
SELECT = THINK + '<select><VTG>{"start": 4, "end": 15, "keyframe": 9}</VTG>, <RefSeg>[SEG]</RefSeg></select><|im_end|>'
ANSWER = THINK + '<answer><VTG>{"start": 2, "end": 20, "keyframe": 11}</VTG>, <RefSeg>[SEG]</RefSeg></answer><|im_end|>'
NO_KEYFRAME = THINK + '<select><VTG>{"start": 4, "end": 15}</VTG>, <RefSeg>[SEG]</RefSeg></select><|im_end|>'
STOCK_QWEN3_SIZE = {"shortest_edge": 65536, "longest_edge": 16777216}
"""The image-processor bounds Qwen3-VL checkpoints ship with (the minimum up-scales small frames)."""
PAPER = {"processor": {"min_pixels": 3136, "max_pixels": 200704}, "env": {"patch_factor": 28, "parser_parity": True}}
"""The paper recipes' settings under test."""

# 854x480 video, training protocol (hand-computed; smart_resize rounds to the factor, the limit rule does not):
#   first-turn low-res: env smart_resize(factor 28, <= 25,088 px): beta = sqrt(409,920 / 25,088) = 4.042
#     -> 112 x 196; processor (factor 32, [3,136, 200,704]): round(3.5) = 4, round(6.125) = 6 -> 128 x 192 -> [1, 8, 12]
#   first-turn high-res: env (factor 28, <= 100,352 px): beta = 2.021 -> 224 x 420 -> processor 224 x 416 -> [1, 14, 26]
#   <select> low-res: area limit 25,088 px: scale 0.2474 -> 118 x 211 -> processor 128 x 224 -> [1, 8, 14]
#   keyframe: area limit 200,704 px: scale 0.6997 -> 335 x 597 -> processor 320 x 608 -> [1, 20, 38]
EXPECTED_GRIDS = [[1, 8, 12]] * 10 + [[1, 14, 26]] * 5 + [[1, 8, 14]] * 5 + [[1, 20, 38]]


@pytest.fixture(scope="module")
def qwen3(tiny_qwen3_path):
    processor = AutoProcessor.from_pretrained(tiny_qwen3_path)
    processor.image_processor.size = dict(STOCK_QWEN3_SIZE)
    engine = HFGenerationEngine(str(tiny_qwen3_path))
    engine.processor.image_processor.size = dict(STOCK_QWEN3_SIZE)
    return processor, engine


@pytest.fixture(scope="module")
def video_row(tmp_path_factory):
    return synthetic_rows(tmp_path_factory.mktemp("video854"), num_videos=1, num_frames=24, height=480, width=854)[0]


def _run(processor, replies, row, videoseg_o3):
    config = OmegaConf.create({"actor_rollout_ref": {"rollout": {"prompt_length": 8192, "response_length": 8192,
                                                                  "full_determinism": False}},
                               "data": {}, "videoseg_o3": videoseg_o3})
    server = ScriptedServerManager(processor.tokenizer, replies)

    async def main():
        loop = VideoSegO3AgentLoop(trainer_config=DictConfigWrap(config), server_manager=server,
                                   tokenizer=processor.tokenizer, processor=processor, dataset_cls=RLHFDataset,
                                   data_config=DictConfigWrap(config.data), hf_model_type="qwen3_vl")
        return await loop.run({"temperature": 0.9, "top_p": 0.9, "logprobs": True}, **row)

    return asyncio.run(main()), server


def _actor_inputs(processor, out):
    """verl's actor/reference ``multi_modal_inputs`` for this output (its worker's default kwargs are empty)."""
    worker = SimpleNamespace(processor=processor, tokenizer=processor.tokenizer,
                             _get_mm_processor_kwargs=lambda audios=None: {})
    input_ids = torch.tensor([list(out.prompt_ids) + list(out.response_ids)])
    return AgentLoopWorker._compute_multi_modal_inputs(worker, out, input_ids)


def test_paper_processor_grids_equal_in_rollout_and_actor(qwen3, video_row):
    processor, engine = qwen3
    out, server = _run(processor, [SELECT, ANSWER], video_row, PAPER)
    assert [t.kind for t in Trajectory.from_extra_fields(out.extra_fields).turns] == ["select", "answer"]

    # actor / reference forward: verl recomputes pixel_values with the kwargs the loop put in its output
    actor = _actor_inputs(processor, out)
    assert actor["image_grid_thw"].tolist() == EXPECTED_GRIDS

    # rollout: the server got the same kwargs on every turn; the HF engine's pixel_values equal the actor's, and
    # its pad check passes, so the prompt's image pads were expanded with the same bounds
    assert [c["mm_processor_kwargs"] for c in server.calls] == [{"min_pixels": 3136, "max_pixels": 200704}] * 2
    ids = list(out.prompt_ids) + list(out.response_ids)
    kwargs = server.calls[-1]["mm_processor_kwargs"]
    rollout = engine._multimodal_inputs(ids, out.multi_modal_data["images"], None, kwargs)
    assert rollout["image_grid_thw"].tolist() == EXPECTED_GRIDS
    assert torch.equal(rollout["pixel_values"], actor["pixel_values"])
    image_pads = sum(1 for t in ids if t == processor.tokenizer.convert_tokens_to_ids("<|image_pad|>"))
    assert image_pads == sum(t * h * w for t, h, w in EXPECTED_GRIDS) // 4 and EXPECTED_GRIDS[0] == [1, 8, 12]
    assert 8 * 12 // 4 == 24  # first-turn low-res: 24 tokens


def test_without_bounds_the_stock_minimum_upscales_low_res_frames(qwen3, video_row):
    processor, _ = qwen3
    out, server = _run(processor, [ANSWER], video_row, {"env": {"patch_factor": 28}})
    grids = _actor_inputs(processor, out)["image_grid_thw"].tolist()
    # 112 x 196 snaps to 128 x 192 = 24,576 px < 65,536: beta = sqrt(65,536 / (112 x 196)) = 1.728,
    # ceil(112 x 1.728 / 32) = 7, ceil(196 x 1.728 / 32) = 11 -> 224 x 352 -> [1, 14, 22] = 77 tokens instead of 24
    assert grids[0] == [1, 14, 22] and server.calls[0]["mm_processor_kwargs"] == {}


def test_patch_factor_default_is_the_processors(qwen3, video_row):
    processor, _ = qwen3
    out, _ = _run(processor, [ANSWER], video_row, {"processor": PAPER["processor"]})
    # factor 32: beta = 4.042 -> floor(3.71) x 32 = 96, floor(6.60) x 32 = 192 -> 96 x 192 -> [1, 6, 12]
    assert _actor_inputs(processor, out)["image_grid_thw"].tolist()[0] == [1, 6, 12]


@pytest.mark.parametrize("parity, kinds", [(True, ["select", "answer"]), (False, ["invalid"])])
def test_parser_parity_key_reaches_the_loop(qwen3, video_row, parity, kinds):
    processor, _ = qwen3
    out, _ = _run(processor, [NO_KEYFRAME, ANSWER], video_row, {**PAPER, "env": {"parser_parity": parity}})
    traj = Trajectory.from_extra_fields(out.extra_fields)
    assert [t.kind for t in traj.turns] == kinds
    if parity:  # keyframe 0: the second turn's [SEG] is decoded on frame 0 and frame 0 was shown
        assert traj.turns[0].observation_keyframe == 0 and traj.turns[1].seg_keyframe == 0


def test_pixel_bounds_kwargs_fill_and_validate(qwen3):
    processor, _ = qwen3
    assert pixel_bounds_kwargs(processor, 3136, None) == {"min_pixels": 3136, "max_pixels": 16777216}
    with pytest.raises(ValueError, match=r"min_pixels \(9000\) must be <= max_pixels \(100\)"):
        pixel_bounds_kwargs(processor, 9000, 100)
    with pytest.raises(ValueError, match="videoseg_o3.processor.max_pixels must be an int >= 1"):
        pixel_bounds_kwargs(processor, None, 0)
