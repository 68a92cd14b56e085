# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The inference episode, the final [SEG] embedding, the propagation call and bad input (tiny models, CPU)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from videoseg_reward.masks import decode_rle_list
from videoseg_reward.propagation import propagate_language

from videoseg_o3_verl.data.parquet import read_parquet_records
from videoseg_o3_verl.data.rle import encode_mask
from videoseg_o3_verl.eval.episode import run_episode
from videoseg_o3_verl.eval.predict import evaluate_record, find_seg_head, use_head_decoder
from videoseg_o3_verl.model.seg_head_io import save_seg_head
from videoseg_o3_verl.video import VideoSource

from .scripted import ScriptedPolicy

SELECT = ('<think>Step 1 Step 2 Step 3 Action</think><select><VTG>{"start": 2, "end": 5, "keyframe": 3}</VTG>, '
          "<RefSeg>[SEG]</RefSeg></select>")
ANSWER = '<think>done</think><answer><VTG>{"start": 1, "end": 6, "keyframe": 6}</VTG>, <RefSeg>{}</RefSeg></answer>'
ANSWER_SEG = ANSWER.replace("{}", "[SEG]")
ANSWER_NO_SEG = ANSWER.replace("{}", "")


@pytest.fixture(scope="module")
def records(synthetic_parquet):
    return read_parquet_records(synthetic_parquet)


def test_episode_turns_observations_and_stop_rules(scripted, records):
    models = scripted([SELECT, ANSWER_SEG])
    record = records[0]
    video = VideoSource.open(record.video_path, frame_ids=list(record.frame_ids))
    episode = run_episode(models.policy, video, record.expression, models.env)
    assert [t.kind for t in episode.turns] == ["select", "answer"]
    assert episode.turns[0].shown_low_res == [2, 3, 4, 5] and episode.turns[0].shown_keyframe == 3
    assert episode.spatial_indices == list(range(8))  # L = 8 = count: all frames (eval rule)
    assert episode.shown_frames == list(range(8)) * 2 + [2, 3, 4, 5, 3]  # low + high res, then the select's frames
    # second generate saw: system, first user turn, the first reply (without <|im_end|>), the observation
    second = models.policy.calls[1]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert second[2]["content"] == SELECT
    obs_text = [c["text"] for c in second[3]["content"] if c["type"] == "text"]
    assert "[np.int64(2), np.int64(3), np.int64(4), np.int64(5)]" in obs_text[0]
    assert obs_text[2].startswith(f"The text query is 'The query is \"{record.expression}\". Show me")
    assert len(episode.final.images) == len(episode.initial_low_res) + 8 + 4 + 1


def test_episode_stops_after_max_turns_with_a_final_turn_select(scripted, records):
    models = scripted([SELECT])  # selects every turn
    video = VideoSource.open(records[0].video_path, frame_ids=list(records[0].frame_ids))
    episode = run_episode(models.policy, video, records[0].expression, models.env)
    assert len(episode.turns) == 3 and len(models.policy.calls) == 3
    assert episode.turns[-1].shown_keyframe is None  # no observation after the last turn


def test_seg_hidden_is_the_last_seg_of_the_final_context(scripted, records):
    models = scripted([SELECT, ANSWER_NO_SEG])  # the final turn has no [SEG]: the select turn's one is used
    hf = models.policy.hf
    video = VideoSource.open(records[0].video_path, frame_ids=list(records[0].frame_ids))
    episode = run_episode(models.policy, video, records[0].expression, models.env)
    final = episode.final
    ids = final.prompt_ids + final.token_ids
    seg_positions = [i for i, t in enumerate(ids) if t == hf.seg_token_id]
    assert len(seg_positions) == 1 and seg_positions[0] < len(final.prompt_ids)  # inside the re-rendered history
    hidden = hf.seg_hidden(final)
    inputs = hf._inputs(final.messages, final.images)
    with torch.no_grad():  # independent: HF's own last hidden state over the whole sequence
        out = hf.model(input_ids=torch.tensor([ids]), pixel_values=inputs["pixel_values"],
                       image_grid_thw=inputs["image_grid_thw"], output_hidden_states=True,
                       mm_token_type_ids=torch.nn.functional.pad(inputs["mm_token_type_ids"],
                                                                 (0, len(ids) - len(final.prompt_ids))))
    torch.testing.assert_close(hidden, out.hidden_states[-1][0, seg_positions[0]].float(), rtol=1e-4, atol=1e-4)
    # a [SEG] in the final turn too: the later one wins
    models = scripted([SELECT, ANSWER_SEG])
    episode = run_episode(models.policy, video, records[0].expression, models.env)
    ids = episode.final.prompt_ids + episode.final.token_ids
    last = max(i for i, t in enumerate(ids) if t == hf.seg_token_id)
    assert last >= len(episode.final.prompt_ids)
    assert not torch.allclose(hf.seg_hidden(episode.final), hidden)


def test_no_seg_anywhere_gives_all_zero_masks(scripted, records):
    models = scripted([ANSWER_NO_SEG])
    entry = evaluate_record(models, records[0])
    result = entry["result"]
    masks = decode_rle_list(result["prediction_masks"])
    assert masks.shape == (8, 64, 96) and not masks.any() and result["has_seg"] is False
    assert result["keyframe_index"] == 6 and result["num_rounds"] == 1  # the answer's VTG keyframe


def test_masks_are_the_propagation_of_the_projected_seg_from_the_final_keyframe(scripted, records):
    models = scripted([SELECT, ANSWER_SEG])
    record = records[0]
    entry = evaluate_record(models, record)
    result = entry["result"]
    assert result["keyframe_index"] == 3 and result["has_seg"]  # the select's keyframe, not the answer's 6
    video = VideoSource.open(record.video_path, frame_ids=list(record.frame_ids))
    episode = run_episode(models.policy, video, record.expression, models.env)
    embedding = models.seg_head.embed(models.policy.seg_hidden(episode.final)[None])[0]
    expected = propagate_language(models.sam2, video, 3, embedding)
    assert np.array_equal(decode_rle_list(result["prediction_masks"]), expected)
    wrong_keyframe = propagate_language(models.sam2, video, 6, embedding)
    assert not np.array_equal(expected, wrong_keyframe)  # the keyframe is the conditioning frame
    assert set(entry["score"]) >= {"J", "F", "video", "expression_id"} and 0 <= entry["score"]["J"] <= 1


def test_missing_video_and_frames_are_error_rows_naming_file_and_expression(scripted, records, tmp_path):
    models = scripted([ANSWER_SEG])
    gone = dataclasses.replace(records[0], video_path=str(tmp_path / "no_such_video"))
    result = evaluate_record(models, gone)["result"]
    assert "no_such_video" in result["error"] and records[0].name in result["error"]
    assert result["frames"] == list(records[0].frame_ids)
    missing_frame = dataclasses.replace(records[0], frame_ids=(*records[0].frame_ids[:-1], "99999"))
    result = evaluate_record(models, missing_frame)["result"]
    assert "99999" in result["error"] and records[0].name in result["error"]


def test_seg_head_layouts_and_decoder_weights(eval_models, tiny_paths, tmp_path):
    _, sam2 = tiny_paths
    head = eval_models.seg_head
    actor = tmp_path / "global_step_3" / "actor"
    (actor / "huggingface").mkdir(parents=True)
    assert find_seg_head(actor / "huggingface") is None
    save_seg_head(head, actor / "seg_head", sam2_checkpoint=sam2, hidden_size=head.hidden_size)
    assert find_seg_head(actor / "huggingface") == actor / "seg_head"  # training checkpoint layout
    save_seg_head(head, tmp_path / "converted", sam2_checkpoint=sam2, hidden_size=head.hidden_size)
    assert find_seg_head(tmp_path / "converted") == tmp_path / "converted"  # converted release: in the dir
    with pytest.raises(FileNotFoundError, match="--seg-head"):
        find_seg_head(tmp_path / "converted", tmp_path / "nowhere")
    # the propagation model decodes with the head's (trained) decoder
    with torch.no_grad():
        head.mask_decoder.iou_prediction_head.layers[0].weight.add_(1.0)
    try:
        use_head_decoder(eval_models.sam2, head)
        torch.testing.assert_close(eval_models.sam2.sam_mask_decoder.iou_prediction_head.layers[0].weight,
                                   head.mask_decoder.iou_prediction_head.layers[0].weight)
    finally:
        with torch.no_grad():
            head.mask_decoder.iou_prediction_head.layers[0].weight.sub_(1.0)
        use_head_decoder(eval_models.sam2, head)


def test_bad_ground_truth_is_an_error_row(scripted, records, tmp_path):
    models = scripted([ANSWER_NO_SEG])
    missing_fg = dataclasses.replace(records[0], extra={"foreground": {"file": str(tmp_path / "fg.json"), "key": "v"}})
    result = evaluate_record(models, missing_fg, dataset="revos")["result"]
    assert "fg.json" in result["error"] and records[0].name in result["error"] and "ground truth" in result["error"]
    visible = [t for t, e in enumerate(records[0].mask_existence) if e][0]
    rles = list(records[0].masks_rle)
    rles[visible] = encode_mask(np.zeros((64, 96), bool))  # marked visible, but no foreground pixel
    broken = dataclasses.replace(records[0], masks_rle=tuple(rles))
    result = evaluate_record(models, broken)["result"]
    assert records[0].name in result["error"] and f"frame {visible}" in result["error"]


def test_turn_content_keeps_endoftext_like_the_released_loop():
    from videoseg_o3_verl.eval.policy import turn_content

    assert turn_content("<answer>x</answer><|im_end|>") == "<answer>x</answer>"
    assert turn_content("a<|endoftext|>") == "a<|endoftext|>"


def test_model_dir_without_weights_is_a_clear_error(tiny_paths, tmp_path):
    import shutil

    from videoseg_o3_verl.eval.policy import check_weights

    check_weights(tiny_paths[0])
    hf = tmp_path / "global_step_1" / "actor" / "huggingface"
    shutil.copytree(tiny_paths[0], hf, ignore=shutil.ignore_patterns("*.safetensors"))
    (hf / "seg_head.safetensors").write_bytes(b"")  # a seg head is not the model's weights
    with pytest.raises(FileNotFoundError, match="hf_model"):
        check_weights(str(hf))
    with pytest.raises(FileNotFoundError, match="config.json"):
        check_weights(str(tmp_path))


def test_qwen3_vl_policy_end_to_end(tiny_paths, records):
    from videoseg_o3_verl.eval.predict import load_models
    from videoseg_o3_verl.model.tiny import tiny_qwen_vl

    models = load_models(str(tiny_qwen_vl("qwen3_vl")), tiny_paths[1], device="cpu")
    models.policy = ScriptedPolicy(models.policy, [SELECT, ANSWER_SEG])
    entry = evaluate_record(models, records[0])
    result = entry["result"]
    assert (result["num_rounds"], result["has_seg"], result["keyframe_index"]) == (2, True, 3)
    assert decode_rle_list(result["prediction_masks"]).shape == (8, 64, 96)
