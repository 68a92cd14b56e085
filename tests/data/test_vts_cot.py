# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""VTS-CoT builder: maximal format/temporal rewards on every built row, RL-identical observations, the released
JSON under both renderings."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from videoseg_reward.terms import lr_vtg_iou_dense, lr_vtg_keyframe, step_format_cot, strict_format_cot

from videoseg_o3_verl.data.parquet import convert_to_parquet, read_parquet_records, record_from_extra_info
from videoseg_o3_verl.data.synthetic import generate_synthetic_dataset
from videoseg_o3_verl.data.vts_cot import answer_interval, build_vts_cot, sft_info_from_extra_info
from videoseg_o3_verl.data.vts_cot_cli import main as vts_cot_main
from videoseg_o3_verl.env import EnvConfig, initial_user_content, select_observation_content
from videoseg_o3_verl.env.actions import Action
from videoseg_o3_verl.video import VideoSource


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("vts")
    generate_synthetic_dataset(root / "syn", seed=3, num_videos=5, num_frames=18, height=60, width=84)
    convert_to_parquet("synthetic", root / "syn", root / "rl.parquet")
    assert vts_cot_main(["--data", str(root / "rl.parquet"), "--out", str(root / "sft.parquet"), "--seed", "1"]) == 0
    return root, pd.read_parquet(root / "sft.parquet"), read_parquet_records(root / "rl.parquet")


def _assistant(row) -> list[str]:
    return [m["content"] for m in row["messages"] if m["role"] == "assistant"]


def test_every_row_earns_the_maximal_format_and_temporal_rewards(built):
    _, frame, records = built
    assert len(frame) == len(records) > 20
    turns_seen = set()
    for _, row in frame.iterrows():
        turns = _assistant(row)
        turns_seen.add(len(turns))
        existence = list(record_from_extra_info(row["extra_info"]).mask_existence)
        for parity in (True, False):
            assert strict_format_cot(turns, parity=parity) == 1.0
            assert lr_vtg_keyframe(turns, existence, parity=parity) == 1.0
            assert lr_vtg_iou_dense(turns, existence, parity=parity) >= 0.25
        assert step_format_cot(turns) == 1.0
        assert all(t.count("<RefSeg>[SEG]</RefSeg>") == 1 for t in turns)
    assert turns_seen == {1, 2, 3}


def test_one_placeholder_per_image_and_supervision_keyframes(built):
    _, frame, _ = built
    for _, row in frame.iterrows():
        assert sum(m["content"].count("<image>") for m in row["messages"]) == len(row["images"])
        info = sft_info_from_extra_info(row["extra_info"])
        record = record_from_extra_info(row["extra_info"])
        actions = info.actions
        assert len(info.seg_keyframes) == len(_assistant(row)) == len(actions)
        # the RL rule: L // 2 first, then each select's keyframe; every select keyframe shows the target
        assert info.seg_keyframes == [record.num_frames // 2] + [a["keyframe"] for a in actions[:-1]]
        answer = actions[-1]
        areas = [int(record.decode_mask(t).sum()) for t in range(answer["start"], answer["end"] + 1)]
        assert int(record.decode_mask(answer["keyframe"]).sum()) == max(areas)  # the largest-mask frame
        for a in actions:
            assert record.mask_existence[a["keyframe"]] == 1
            assert any(record.mask_existence[a["start"]: a["end"] + 1])


def _decode(images) -> list[np.ndarray]:
    return [np.asarray(Image.open(io.BytesIO(img["bytes"]))) for img in images]


def test_observations_are_the_rl_environment_s(built):
    _, frame, _ = built
    row = next(r for _, r in frame.iterrows() if len(_assistant(r)) == 3)
    record = record_from_extra_info(row["extra_info"])
    video = VideoSource.open(record.video_path, frame_ids=list(record.frame_ids))
    env = EnvConfig.train(patch_factor=28)
    expected = [initial_user_content(video, record.expression, env)[0]]
    for action in sft_info_from_extra_info(row["extra_info"]).actions[:-1]:
        act = Action("select", action["start"], action["end"], action["keyframe"])
        expected.append(select_observation_content(video, act, record.expression, env)[0])
    users = [m["content"] for m in row["messages"] if m["role"] == "user"]
    want_images = []
    for content, text in zip(expected, users, strict=True):
        assert text == "".join("<image>" if c["type"] == "image" else c["text"] for c in content)
        want_images += [np.asarray(c["image"].convert("RGB")) for c in content if c["type"] == "image"]
    got = _decode(row["images"])
    assert len(got) == len(want_images)
    for a, b in zip(got, want_images, strict=True):
        np.testing.assert_array_equal(a, b)


def test_seed_changes_phrasing_and_plans_but_is_reproducible(built, tmp_path):
    root, frame, _ = built
    build_vts_cot(root / "rl.parquet", tmp_path / "same.parquet", seed=1)
    build_vts_cot(root / "rl.parquet", tmp_path / "other.parquet", seed=2, max_selects=0)
    same, other = pd.read_parquet(tmp_path / "same.parquet"), pd.read_parquet(tmp_path / "other.parquet")
    assert [_assistant(r) for _, r in same.iterrows()] == [_assistant(r) for _, r in frame.iterrows()]
    assert all(len(_assistant(r)) == 1 for _, r in other.iterrows())


def test_rewriter_hook_rewrites_only_the_reasoning(built, tmp_path):
    root, _, _ = built
    seen = []

    def teacher(text, context):
        seen.append(context)
        return "Step 1 when. Step 2 where. Step 3 words. Action: go."

    build_vts_cot(root / "rl.parquet", tmp_path / "t.parquet", seed=1, rewriter=teacher, limit=3)
    rows = pd.read_parquet(tmp_path / "t.parquet")
    for _, row in rows.iterrows():
        for turn in _assistant(row):
            assert turn.startswith("<think>Step 1 when. Step 2 where. Step 3 words. Action: go.</think><")
    assert {"expression", "turn", "action", "shown", "visible"} <= set(seen[0])


def test_answer_interval_hand_case():
    # existence 0 1 1 0 0 0 1 0: span (1, 6): released precision on [1, 6) = 2/5 < 0.5 -> fails.
    # run (1, 2): released [1, 2) precision 1 -> 0.5; clean IoU [1..2] vs {1, 2, 6} = 2/3 -> 1/3. min 1/3.
    # run (6, 6) widened to (6, 7): released 0.5; clean IoU [6..7] vs {1, 2, 6} = 1/4 < 0.5 -> -0.5.
    assert answer_interval([0, 1, 1, 0, 0, 0, 1, 0]) == (1, 2)
    # contiguous visibility: the span itself, precision 1 and IoU 1
    assert answer_interval([0, 0, 1, 1, 1, 0]) == (2, 4)
    with pytest.raises(ValueError, match="never visible"):
        answer_interval([0, 0, 0])


# ---------------------------------------------------------------------------------------------- released JSON
def _released_fixture(root, built_root):
    """The released layout: <frames>/<video>/<frame>.jpg, mask_dict.json and a VTS-CoT JSON list."""
    records = read_parquet_records(built_root / "rl.parquet")
    record = next(r for r in records if sum(r.mask_existence) >= 4)
    visible = [t for t, v in enumerate(record.mask_existence) if v]
    s, e, k = visible[0], visible[-1], visible[len(visible) // 2]
    select = json.dumps({"start": s, "end": e, "keyframe": k})
    item = {
        "video_name": record.video_id, "frames": list(record.frame_ids), "exp": record.expression,
        "anno_id": [7], "sample_frame_indice": [12, 0, 5],
        "cot_trace": [{"start_frame": s, "end_frame": e, "key_frame": k}],
        "conversations": [
            {"from": "system", "value": "SYS"},
            {"from": "human", "value": "<image>\nThe query is q."},
            {"from": "gpt", "value": f"<think>Step 1 a</think><select><VTG>{select}</VTG>, "
                                     "<RefSeg>[SEG]</RefSeg></select>\n"},
            {"from": "human", "value": "<image>\nContinue."},
            {"from": "gpt", "value": f"<think>Step 1 b</think><answer><VTG>{select}</VTG>, "
                                     "<RefSeg>[SEG]</RefSeg></answer>"},
        ],
    }
    (root / "vts.json").write_text(json.dumps([item]))
    (root / "mask_dict.json").write_text(json.dumps({"7": list(record.masks_rle)}))
    frames_dir = record.video_path[: -len(record.video_id)].rstrip("/")
    return record, (s, e, k), frames_dir


def test_released_json_parity_rendering(built, tmp_path):
    record, (s, e, k), frames_dir = _released_fixture(tmp_path, built[0])
    code = vts_cot_main(["--released", str(tmp_path / "vts.json"), "--mask-file", str(tmp_path / "mask_dict.json"),
                         "--frames-dir", frames_dir, "--out", str(tmp_path / "r.parquet")])
    assert code == 0
    row = pd.read_parquet(tmp_path / "r.parquet").iloc[0]
    roles = [m["role"] for m in row["messages"]]
    assert roles == ["system", "user", "assistant", "user", "assistant"]
    first, second = row["messages"][1]["content"], row["messages"][3]["content"]
    n_low = record.num_frames  # 18 frames <= 21: all frames, not 20 linspace samples
    assert first.startswith("\n".join(["<image>"] * n_low) + f"\nHere are {n_low} low-resolution frames")
    assert "high-resolution frames in this video (frame indice:[0, 5, 12]).\n\nThe query is q." in first
    assert first.endswith("The query is q.")
    round_frames = np.arange(s, e) if e - s <= 11 else np.linspace(s, e, 10, dtype=int)
    assert f"(frame indices are {round_frames!s})" in second and "," not in str(round_frames)
    assert second.endswith(f"Here is key frames (frame indice:{k}).\nThe text query is '{record.expression}'\n"
                           "Continue.")
    assert len(row["images"]) == n_low + 3 + len(round_frames) + 1
    key_image = _decode(row["images"])[-1]
    assert key_image.shape[0] % 28 == 0 and key_image.shape[1] % 28 == 0
    assert row["messages"][2]["content"].endswith("</select>")  # stripped
    info = sft_info_from_extra_info(row["extra_info"])
    assert info.source == "released" and info.seg_keyframes == [record.num_frames // 2, k]
    assert info.spatial_frames == [0, 5, 12]


def test_released_json_clean_rendering_is_the_environment_s(built, tmp_path):
    record, (s, e, k), frames_dir = _released_fixture(tmp_path, built[0])
    vts_cot_main(["--released", str(tmp_path / "vts.json"), "--mask-file", str(tmp_path / "mask_dict.json"),
                  "--frames-dir", frames_dir, "--out", str(tmp_path / "c.parquet"), "--no-parity"])
    row = pd.read_parquet(tmp_path / "c.parquet").iloc[0]
    video = VideoSource.open(record.video_path, frame_ids=list(record.frame_ids))
    content, _ = select_observation_content(video, Action("select", s, e, k), record.expression, EnvConfig.train())
    assert row["messages"][3]["content"] == "".join("<image>" if c["type"] == "image" else c["text"]
                                                    for c in content)
    assert row["messages"][0]["content"].startswith("You are a helpful assistant.")


def test_released_json_trace_mismatch_is_a_clear_error(built, tmp_path):
    _, _, frames_dir = _released_fixture(tmp_path, built[0])
    data = json.loads((tmp_path / "vts.json").read_text())
    data[0]["cot_trace"][0]["key_frame"] += 1
    (tmp_path / "vts.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"cot_trace\[0\].*the gpt turn selects"):
        vts_cot_main(["--released", str(tmp_path / "vts.json"), "--mask-file", str(tmp_path / "mask_dict.json"),
                      "--frames-dir", frames_dir, "--out", str(tmp_path / "x.parquet")])


def test_records_without_a_visible_target_are_skipped_and_counted(built, tmp_path):
    import dataclasses

    from videoseg_o3_verl.data.parquet import write_parquet

    _, _, records = built
    hidden = dataclasses.replace(records[0], mask_existence=[0] * records[0].num_frames,
                                 masks_rle=[None] * records[0].num_frames)
    no_gt = dataclasses.replace(records[1], mask_existence=[], masks_rle=[])
    write_parquet([hidden, records[2], no_gt], tmp_path / "rl.parquet")
    result = build_vts_cot(tmp_path / "rl.parquet", tmp_path / "sft.parquet")
    assert result.num_rows == 1
    assert result.skipped == {"target never visible": 1, "no ground truth": 1}


def test_short_think_style_on_the_grounding_preset(tmp_path):
    """The compact trace spells the visible frames, then the action; it earns the full format rewards; the demo's
    env file gives 8 + 2 frames of 56x56 px."""
    generate_synthetic_dataset(tmp_path / "g", seed=2, num_videos=3, preset="grounding")
    convert_to_parquet("synthetic", tmp_path / "g", tmp_path / "rl.parquet")
    env_file = Path(__file__).resolve().parents[2] / "recipes" / "demo_env.yaml"
    assert vts_cot_main(["--data", str(tmp_path / "rl.parquet"), "--out", str(tmp_path / "sft.parquet"),
                         "--max-selects", "1", "--think-style", "short", "--env-file", str(env_file)]) == 0
    frame = pd.read_parquet(tmp_path / "sft.parquet")
    assert len(frame) == 9
    for _, row in frame.iterrows():
        record = record_from_extra_info(row["extra_info"])
        visible = [t for t, v in enumerate(record.mask_existence) if v]
        first, last = visible[0], visible[-1]
        assert last == first + 1
        turns = _assistant(row)
        assert turns[-1] == (f"<think>Step 1: seen in {first}, {last}. Step 2: frame {first}. Step 3: it matches the "
                             f"query. Action: answer.</think><answer><VTG>{{\"start\": {first}, \"end\": {last}, "
                             f"\"keyframe\": {first}}}</VTG>, <RefSeg>[SEG]</RefSeg></answer>")
        assert strict_format_cot(turns) == 1.0 and step_format_cot(turns) == 1.0
        sizes = {Image.open(io.BytesIO(image["bytes"])).size for image in row["images"]}
        assert sizes == {(56, 56)} and row["messages"][1]["content"].count("<image>") == 10
    with pytest.raises(SystemExit):
        vts_cot_main(["--data", str(tmp_path / "rl.parquet"), "--out", str(tmp_path / "x.parquet"),
                      "--think-style", "long"])


def test_env_file_rejects_unknown_keys(tmp_path):
    from videoseg_o3_verl.env import load_env_overrides

    (tmp_path / "env.yaml").write_text("num_low_res: 8\nnum_frames: 3\n")
    with pytest.raises(ValueError, match=r"env.yaml: unknown EnvConfig field\(s\) \['num_frames'\]"):
        load_env_overrides(tmp_path / "env.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ValueError, match="must hold a mapping"):
        load_env_overrides(tmp_path / "list.yaml")


def test_grounded_think_names_the_object_before_the_action():
    """Step 3 of the grounded trace is the query itself; the rest is the compact trace."""
    from videoseg_o3_verl.data.records import RVOSRecord
    from videoseg_o3_verl.data.rle import encode_mask
    from videoseg_o3_verl.data.vts_cot import TurnPlan, grounded_think_text

    square = np.zeros((60, 90), bool)
    square[0:10, 60:70] = True
    record = RVOSRecord(dataset="handmade", video_id="v", video_path="/nowhere/v", frame_ids=("a", "b", "c"),
                        num_frames=3, expression="the red object", expression_id="0", object_ids=(1,),
                        mask_existence=(0, 1, 1), masks_rle=(None, encode_mask(square), encode_mask(square)),
                        type_id=None, height=60, width=90)
    assert grounded_think_text(record, TurnPlan("select", 1, 2, 1), [0, 1]) == (
        "Step 1: seen in 1. Step 2: frame 1. Step 3: the red object. Action: select.")
    assert grounded_think_text(record, TurnPlan("answer", 1, 2, 2), [0, 1, 2]) == (
        "Step 1: seen in 1, 2. Step 2: frame 2. Step 3: the red object. Action: answer.")
    assert grounded_think_text(record, TurnPlan("answer", 1, 1, 0), [0]) == (
        "Step 1: seen in none. Step 2: frame 0. Step 3: the red object. Action: answer.")
