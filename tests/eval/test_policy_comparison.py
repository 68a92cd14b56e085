# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""`evaluate_policies` on a few held-out episodes of the demo's task: the fixed guess and tiny-model policies, each
scored by the same per-episode code (demo sizes: 56x56 frames, tiny SAM2 at 128 px, the demo environment)."""

from __future__ import annotations

import json

import pytest
import torch
from videoseg_reward.terms import RewardSpec, TrajectoryRewardInputs

from videoseg_o3_verl.env import EnvConfig, load_env_overrides
from videoseg_o3_verl.eval.compare import evaluate_policies
from videoseg_o3_verl.eval.episode import run_episode
from videoseg_o3_verl.eval.episode_metrics import EPISODE_METRICS
from videoseg_o3_verl.eval.predict import evaluate_record, load_models, turn_reward_ious, turn_trajectory
from videoseg_o3_verl.rewards import frame_ious, keyframe_iou
from videoseg_o3_verl.video import VideoSource

from .scripted import ScriptedPolicy

ENV_FILE = "recipes/demo_env.yaml"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from pathlib import Path

    from videoseg_o3_verl.data.parquet import convert_to_parquet, read_parquet_records
    from videoseg_o3_verl.data.synthetic import generate_synthetic_dataset
    from videoseg_o3_verl.model.tiny import tiny_qwen_vl, tiny_sam2

    root = tmp_path_factory.mktemp("heldout")
    generate_synthetic_dataset(root / "syn", num_videos=1, seed=5, preset="grounding")
    convert_to_parquet("synthetic", root / "syn", root / "heldout.parquet")
    env_file = Path(__file__).resolve().parents[2] / ENV_FILE
    return {"data": str(root / "heldout.parquet"), "records": read_parquet_records(root / "heldout.parquet"),
            "model": str(tiny_qwen_vl("qwen2_5_vl", hidden_size=128, num_layers=2)),
            "sam2": str(tiny_sam2(image_size=128)), "env": load_env_overrides(env_file), "root": root}


def _expected_fixed_guess(record, fill):
    """The fixed guess's per-turn IoUs and J&F by hand: its constant mask on spatial frames 0 and 7 (2 high-res
    frames of 8) and on the turn-0 keyframe 8 // 2 = 4."""
    hw = record.height * record.width
    ious = []
    for frame in (0, 7):
        area = int(record.decode_mask(frame).sum())
        # empty guess: both empty -> 1, else 0; full guess: area / (H*W + 1e-6), 0 when the target is absent
        ious.append((1.0 if area == 0 else 0.0) if fill == "empty" else area / (hw + 1e-6))
    key_area = int(record.decode_mask(4).sum())
    key_iou = 0.0 if fill == "empty" else key_area / (hw + 1e-6)  # empty vs anything: 0 (keyframe convention)
    return ious, key_iou


def test_evaluate_policies_fixed_guess_and_tiny_model(demo, tmp_path):
    out = tmp_path / "eval"
    result = evaluate_policies({"tiny": demo["model"]}, data=demo["data"], sam2=demo["sam2"], output_dir=str(out),
                               env=demo["env"], limit=2, n_boot=100)
    assert result["n_eval"] == 2
    assert set(result["eval"]) == {"fixed_guess", "tiny"}
    for table in result["eval"].values():
        assert set(table) == set(EPISODE_METRICS)
        for value in table.values():
            assert value["ci95"][0] <= value["mean"] <= value["ci95"][1]
    variants = result["fixed_guess_variants"]
    chosen = result["fixed_guess_variant"]
    assert chosen == max(variants, key=lambda m: variants[m]["reward_total"]["mean"])
    assert result["eval"]["fixed_guess"] == variants[chosen]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["eval"] == result["eval"] and "rows" not in summary
    metrics = json.loads((out / "tiny" / "metrics.json").read_text())
    assert metrics["episodes"]["num_episodes"] == 2 and metrics["episodes"]["jf"] == result["eval"]["tiny"]["jf"]

    spec = RewardSpec.paper()
    for fill in ("empty", "full"):
        rows = result["rows"][f"fixed_guess_{fill}"]
        lines = (out / f"fixed_guess_{fill}" / "conversations.jsonl").read_text().splitlines()
        for row, record, line in zip(rows, demo["records"], lines):
            existence = list(record.mask_existence)
            ious, key_iou = _expected_fixed_guess(record, fill)
            inputs = TrajectoryRewardInputs(turns=[json.loads(line)["turns"][0]["text"]], mask_existence=existence,
                                            per_round_maskious=[ious], per_round_keyframe_ious=[key_iou])
            total, _ = spec.compute(inputs)
            assert row["format_valid"] == 1.0
            assert row["keyframe_hit"] == float(existence[4] > 0.5)
            assert row["tiou"] == pytest.approx(sum(existence) / 8)          # [0..7] vs the visible frames
            assert row["reward_total"] == pytest.approx(total)
            if fill == "empty":  # J = F = 1 on the frames without the target, 0 on the others
                assert row["jf"] == pytest.approx(100 * (8 - sum(existence)) / 8)
    for row in result["rows"]["tiny"]:  # the random model writes no well-formed answer
        assert (row["format_valid"], row["keyframe_hit"], row["tiou"]) == (0.0, 0.0, 0.0)


def test_model_turn_ious_decode_each_turn_on_its_keyframe(demo):
    """A select then an answer: turn 0's [SEG] is decoded on frame L // 2, turn 1's on the selected keyframe, each
    on the two spatial frames too, from that turn's own hidden states (checked against direct seg-head calls)."""
    env = EnvConfig.train(**demo["env"])
    models = load_models(demo["model"], demo["sam2"], device="cpu", env=env)
    record = demo["records"][0]
    visible = [i for i, e in enumerate(record.mask_existence) if e]
    select = (f'<think>Step 1: it. Action: select.</think><select><VTG>{{"start": 0, "end": 7, "keyframe": '
              f'{visible[0]}}}</VTG>, <RefSeg>[SEG]</RefSeg></select>')
    answer = (f'<think>Step 1: it. Action: answer.</think><answer><VTG>{{"start": {visible[0]}, "end": {visible[-1]}, '
              f'"keyframe": {visible[0]}}}</VTG>, <RefSeg>[SEG]</RefSeg></answer>')
    models.policy = ScriptedPolicy(models.policy, [select, answer])
    video = VideoSource.open(record.video_path, frame_ids=list(record.frame_ids) or None)
    episode = run_episode(models.policy, video, record.expression, env)
    assert [t.kind for t in episode.turns] == ["select", "answer"]
    assert turn_trajectory(episode, 8).seg_keyframes == [4, visible[0]]
    mask_ious, key_ious = turn_reward_ious(models, record, episode)

    for turn, generation in enumerate(episode.generations):
        hidden = models.policy.turn_seg_hiddens(generation)
        assert hidden.shape[0] == 1
        keyframe = (4, visible[0])[turn]
        with torch.inference_mode():
            key_logits = models.seg_head(hidden, models.encoder.encode(video.get_frames([keyframe]))).mask_logits
            video_logits = models.seg_head.decode_on_frames(hidden, models.encoder.encode(video.get_frames([0, 7])))
        gt_spatial = torch.stack([torch.from_numpy(record.decode_mask(i)) for i in (0, 7)])
        assert key_ious[turn] == pytest.approx(keyframe_iou([key_logits[0]], torch.from_numpy(
            record.decode_mask(keyframe))), abs=1e-6)
        assert mask_ious[turn] == pytest.approx(frame_ious(video_logits[0], gt_spatial), abs=1e-6)
    # the final [SEG] of the answer: the same hidden state through the released rule and the per-turn forward
    assert torch.allclose(models.policy.seg_hidden(episode.final), models.policy.turn_seg_hiddens(episode.final)[-1])

    entry = evaluate_record(models, record, "synthetic")
    assert entry["metrics"]["keyframe_hit"] == 1.0 and entry["metrics"]["tiou"] == 1.0
    assert entry["metrics"]["format_valid"] == 1.0
    video.close()


class _ByExpression:
    """Replies by the episode's expression and turn: episodes whose query names `selector` select once, the others
    answer at once; `generate_batch` answers a whole batch (records the batch sizes)."""

    def __init__(self, hf, selector):
        self.hf, self.selector, self.batches = hf, selector, []

    def _reply(self, messages):
        query = messages[1]["content"][-1]["text"]
        turn = sum(1 for m in messages if m["role"] == "assistant")
        kind = "select" if self.selector in query and turn == 0 else "answer"
        return (f'<think>Step 1: it. Action: {kind}.</think><{kind}><VTG>{{"start": 1, "end": {3 + turn}, '
                f'"keyframe": 2}}</VTG>, <RefSeg>[SEG]</RefSeg></{kind}>')

    def generate(self, messages, images, max_new_tokens):
        return self.generate_batch([(messages, images)], max_new_tokens)[0]

    def generate_batch(self, requests, max_new_tokens):
        from videoseg_o3_verl.eval.policy import Generation

        self.batches.append(len(requests))
        out = []
        for messages, images in requests:
            text = self._reply(messages)
            out.append(Generation(text=text, prompt_ids=[], token_ids=[], images=list(images),
                                  messages=list(messages)))
        return out


def test_batched_episodes_follow_each_episode_protocol(demo):
    from videoseg_o3_verl.eval.episode import run_episodes

    env = EnvConfig.train(**demo["env"])
    records = demo["records"]
    videos = [VideoSource.open(r.video_path, frame_ids=list(r.frame_ids) or None) for r in records]
    policy = _ByExpression(None, records[1].expression.split()[1])   # the colour of the second query
    episodes = run_episodes(policy, [(v, r.expression) for v, r in zip(videos, records)], env)
    # turn 0 for all three episodes together, turn 1 only for the one that selected
    assert policy.batches == [3, 1]
    assert [[t.kind for t in e.turns] for e in episodes] == [["answer"], ["select", "answer"], ["answer"]]
    selected = episodes[1]
    assert selected.turns[0].shown_keyframe == 2 and selected.turns[0].shown_low_res == [1, 2, 3]
    assert [m["role"] for m in selected.messages] == ["system", "user", "assistant", "user", "assistant"]
    assert len(selected.generations[1].images) == len(selected.generations[0].images) + 4   # 3 low-res + keyframe
    assert [m["role"] for m in episodes[0].messages] == ["system", "user", "assistant"]
    for video in videos:
        video.close()


def test_batched_generation_gives_the_tokens_of_one_at_a_time(demo):
    """Left-padded greedy batches of the tiny model: the same turns, tokens and prompts as unbatched, and the same
    journal entries through `evaluate_records`."""
    import dataclasses

    from videoseg_o3_verl.eval.episode import run_episodes
    from videoseg_o3_verl.eval.predict import evaluate_records

    env = EnvConfig.train(**{**demo["env"], "max_new_tokens": 24})
    models = load_models(demo["model"], demo["sam2"], device="cpu", env=env)
    longer = dataclasses.replace(demo["records"][0], expression=demo["records"][0].expression + " that moves left")
    records = [*demo["records"], longer]  # prompts of different lengths: the batch is padded
    videos = [VideoSource.open(r.video_path, frame_ids=list(r.frame_ids) or None) for r in records]
    single = [run_episode(models.policy, v, r.expression, env) for v, r in zip(videos, records)]
    batched = run_episodes(models.policy, [(v, r.expression) for v, r in zip(videos, records)], env)
    for a, b in zip(single, batched, strict=True):
        assert a.turn_texts == b.turn_texts
        assert (a.final.prompt_ids, a.final.token_ids) == (b.final.prompt_ids, b.final.token_ids)
    for video in videos:
        video.close()
    one = [evaluate_record(models, r, "synthetic") for r in records]
    together = evaluate_records(models, records, "synthetic")
    for a, b in zip(one, together, strict=True):
        a["result"].pop("seconds"), b["result"].pop("seconds")
        assert a == b


def test_eval_demo_recipe_gives_the_demo_training_environment(demo, tmp_path):
    from types import SimpleNamespace

    from videoseg_o3_verl.eval.runner import config_from_cli

    args = SimpleNamespace(config_name="eval_demo", config_path=None, overrides=["eval.limit=2"], fixed_guess="full",
                           sam2=demo["sam2"], data=demo["data"], output_dir=str(tmp_path / "out"))
    config = config_from_cli(args)
    assert config.environment() == EnvConfig.train(**demo["env"])
    assert (config.fixed_guess, config.limit, config.batch_size) == ("full", 2, 32)
    with pytest.raises(ValueError, match="env"):
        config_from_cli(SimpleNamespace(**{**vars(args), "overrides": ["+eval.env.num_frames=3"]}))
