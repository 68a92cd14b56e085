# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The videoseg_o3 agent loop driven by a scripted server manager, with the real tiny Qwen-VL processor:
exact observations, response masks, turn metadata and stop rules (docs/method.md §3.3)."""

from __future__ import annotations

import asyncio

import pytest
from omegaconf import OmegaConf
from transformers import AutoProcessor
from verl.experimental.agent_loop.agent_loop import DictConfigWrap
from verl.utils.dataset.rl_dataset import RLHFDataset

from videoseg_o3_verl.agent_loop import VideoSegO3AgentLoop, VideoSegO3EvalAgentLoop
from videoseg_o3_verl.trajectory import Trajectory

from .helpers import ScriptedServerManager, synthetic_rows

THINK = "<think>Step 1: when. Step 2: where. Step 3: what. Action: look closer.</think>"
SELECT = THINK + '<select><VTG>{"start": 4, "end": 15, "keyframe": 9}</VTG>, <RefSeg>[SEG]</RefSeg></select><|im_end|>'
SELECT2 = (THINK + '<select><VTG>{"start": 10, "end": 12, "keyframe": 11}</VTG>, <RefSeg>[SEG]</RefSeg></select>'
           "<|im_end|>")
ANSWER = THINK + '<answer><VTG>{"start": 2, "end": 20, "keyframe": 11}</VTG>, <RefSeg>[SEG]</RefSeg></answer><|im_end|>'


@pytest.fixture(scope="module")
def processor(tiny_qwen25_path):
    return AutoProcessor.from_pretrained(tiny_qwen25_path)


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    return synthetic_rows(tmp_path_factory.mktemp("synthetic"), num_videos=1, num_frames=24)


def _loop(cls, processor, server, response_length=4096):
    config = OmegaConf.create({"actor_rollout_ref": {"rollout": {"prompt_length": 8192, "response_length":
                                                                  response_length, "full_determinism": False}},
                               "data": {}})
    return cls(trainer_config=DictConfigWrap(config), server_manager=server, tokenizer=processor.tokenizer,
               processor=processor, dataset_cls=RLHFDataset, data_config=DictConfigWrap(config.data),
               hf_model_type="qwen2_5_vl")


def _run(make_loop, row):
    async def main():  # verl's AgentLoopBase binds the running event loop at construction
        return await make_loop().run({"temperature": 0.9, "top_p": 0.9, "logprobs": True}, **row)

    return asyncio.run(main())


def test_loop_select_select_answer_trajectory(processor, rows):
    tok = processor.tokenizer
    server = ScriptedServerManager(tok, [SELECT, SELECT2, ANSWER])
    out = _run(lambda: _loop(VideoSegO3AgentLoop, processor, server), rows[0])
    traj = Trajectory.from_extra_fields(out.extra_fields)

    # three assistant turns; the released keyframe bookkeeping: turn 0 uses L//2 = 12, then the selected keyframes
    assert [t.kind for t in traj.turns] == ["select", "select", "answer"]
    assert traj.seg_keyframes == [12, 9, 11]
    assert traj.stop_reason == "answer"
    assert traj.spatial_frames == [0, 5, 11, 17, 23]  # linspace(0, 23, 5) as ints
    assert traj.turns[0].observation_low_res == [4, 6, 9, 12, 15]  # linspace(4, 15, 5)
    assert traj.turns[1].observation_low_res == [10, 11, 12] and traj.turns[1].observation_keyframe == 11

    # images: 10 + 5 initial, then 5 + 1 and 3 + 1 from the two selects; sent with every generate call
    assert [c["num_images"] for c in server.calls] == [15, 21, 25]
    assert len(out.multi_modal_data["images"]) == 25

    # response mask: 1 exactly on the sampled assistant tokens, 0 on every observation token
    assert len(out.response_ids) == len(out.response_mask) == len(out.response_logprobs)
    assistant = [tok.encode(t, add_special_tokens=False) for t in (SELECT, SELECT2, ANSWER)]
    for turn, ids in zip(traj.turns, assistant):
        s, e = turn.span
        assert out.response_ids[s:s + len(ids)] == ids  # sampled ids kept verbatim (no re-tokenisation)
        assert all(m == 1 for m in out.response_mask[s:s + len(ids)])
    observation = [i for i, m in enumerate(out.response_mask) if m == 0]
    image_pad = tok.convert_tokens_to_ids("<|image_pad|>")
    assert all(out.response_ids[i] != image_pad or out.response_mask[i] == 0 for i in range(len(out.response_ids)))
    assert sum(1 for i in observation if out.response_ids[i] == image_pad) > 0
    in_turn = {i for t in traj.turns for i in range(*t.span)}
    assert all(i in in_turn for i, m in enumerate(out.response_mask) if m == 1)  # nothing else is trained

    # one [SEG] per turn, at response positions whose token is [SEG]
    seg = tok.convert_tokens_to_ids("[SEG]")
    assert [len(t.seg_positions) for t in traj.turns] == [1, 1, 1]
    assert all(out.response_ids[p] == seg and out.response_mask[p] == 1 for p in traj.seg_positions)

    # the observation text of turn 1 follows the released wording with plain-int indices
    decoded = tok.decode(out.response_ids, skip_special_tokens=False)
    assert "Here are 5 low-resolution frames in this video (frame indices are [4, 6, 9, 12, 15])" in decoded
    assert "Here is key frames (frame indice:9).\n" in decoded
    assert "The text query is '" + rows[0]["prompt"][1]["content"].split('"')[1] + "'." in decoded
    prompt = tok.decode(out.prompt_ids, skip_special_tokens=False)
    assert "(frame indice is [0, 2, 5, 7, 10, 12, 15, 17, 20, 23])" in prompt
    assert "(frame indice:[0, 5, 11, 17, 23])" in prompt
    # per-turn generation budget: min(512 tokens per turn, what is left of the response budget)
    assert server.calls[0]["sampling_params"]["max_tokens"] == 512


def test_loop_stops_on_invalid_action(processor, rows):
    bad = THINK + "<select><VTG>{'start': 1, 'end': 3, 'keyframe': 2}</VTG>, <RefSeg>[SEG]</RefSeg></select><|im_end|>"
    server = ScriptedServerManager(processor.tokenizer, [bad, ANSWER])
    out = _run(lambda: _loop(VideoSegO3AgentLoop, processor, server), rows[0])
    traj = Trajectory.from_extra_fields(out.extra_fields)
    assert [t.kind for t in traj.turns] == ["invalid"] and traj.stop_reason == "invalid"
    assert len(server.calls) == 1 and all(m == 1 for m in out.response_mask)


def test_loop_select_in_last_turn_ends_episode(processor, rows):
    server = ScriptedServerManager(processor.tokenizer, [SELECT, SELECT2, SELECT])
    out = _run(lambda: _loop(VideoSegO3AgentLoop, processor, server), rows[0])
    traj = Trajectory.from_extra_fields(out.extra_fields)
    assert [t.kind for t in traj.turns] == ["select"] * 3 and traj.stop_reason == "max_turns"
    assert traj.turns[2].observation_keyframe is None  # no observation after the last allowed turn


def test_loop_marks_the_trajectory_scripted_when_a_later_turn_is(processor, rows):
    # only turn 1 of 3 is a scripted reply: the trajectory is marked, verl's step tags stay the first turn's
    fields = [{"global_steps": 5, "scripted": False}, {"global_steps": 6, "scripted": True},
              {"global_steps": 7, "scripted": False}]
    server = ScriptedServerManager(processor.tokenizer, [SELECT, SELECT2, ANSWER], extra_fields=fields)
    out = _run(lambda: _loop(VideoSegO3AgentLoop, processor, server), rows[0])
    assert out.extra_fields["scripted"] is True and out.extra_fields["global_steps"] == 5
    sampled = [{"global_steps": 5, "scripted": False}] * 3
    server = ScriptedServerManager(processor.tokenizer, [SELECT, SELECT2, ANSWER], extra_fields=sampled)
    out = _run(lambda: _loop(VideoSegO3AgentLoop, processor, server), rows[0])
    assert out.extra_fields["scripted"] is False


def test_loop_without_seg_token_records_no_positions(processor, rows):
    no_seg = THINK + '<answer><VTG>{"start": 0, "end": 5, "keyframe": 3}</VTG>, <RefSeg></RefSeg></answer><|im_end|>'
    server = ScriptedServerManager(processor.tokenizer, [no_seg])
    out = _run(lambda: _loop(VideoSegO3AgentLoop, processor, server), rows[0])
    traj = Trajectory.from_extra_fields(out.extra_fields)
    assert traj.turns[0].seg_positions == [] and traj.turns[0].kind == "answer"


def test_loop_stops_when_observation_exceeds_response_budget(processor, rows):
    server = ScriptedServerManager(processor.tokenizer, [SELECT, ANSWER])
    out = _run(lambda: _loop(VideoSegO3AgentLoop, processor, server, response_length=120), rows[0])
    traj = Trajectory.from_extra_fields(out.extra_fields)
    assert traj.stop_reason == "response_budget" and len(traj.turns) == 1
    assert len(out.response_ids) <= 120 and all(m == 1 for m in out.response_mask)


def test_eval_loop_uses_eval_protocol(processor, rows):
    server = ScriptedServerManager(processor.tokenizer, [ANSWER])
    out = _run(lambda: _loop(VideoSegO3EvalAgentLoop, processor, server), rows[0])
    traj = Trajectory.from_extra_fields(out.extra_fields)
    assert traj.mode == "eval" and len(traj.initial_low_res) == 20 and len(traj.spatial_frames) == 8
    assert server.calls[0]["num_images"] == 28 and server.calls[0]["sampling_params"]["max_tokens"] == 1024
