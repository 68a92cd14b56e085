# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Cold-start SFT pieces without verl's trainer: mask loss maths, LoRA merge, HF export, settings, [SEG] positions,
and the SFT dataset's tokens/pixels against what the RL agent loop feeds the policy."""

from __future__ import annotations

import math

import pytest
import torch
from omegaconf import OmegaConf

from videoseg_o3_verl.sft.config import SFTSettings
from videoseg_o3_verl.sft.engine import seg_positions
from videoseg_o3_verl.sft.export import export_hf_policy, merge_lora_state_dict
from videoseg_o3_verl.sft.mask_loss import point_sample, sft_mask_loss, uncertain_points


def test_point_sample_hand_values():
    values = torch.tensor([[[0.0, 1.0], [2.0, 3.0]]])
    # pixel centres of a 2x2 image are at 0.25 / 0.75; the image centre averages all four pixels: 1.5
    coords = torch.tensor([[[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.5, 0.5]]])
    assert point_sample(values, coords).tolist() == [[0.0, 1.0, 2.0, 1.5]]


def test_uncertain_points_prefer_uncertain_logits():
    logits = torch.full((1, 16, 16), -20.0)
    logits[:, :, 8:] = 0.0  # right half uncertain
    coords = uncertain_points(logits, 64, oversample_ratio=8, importance_sample_ratio=1.0,
                              generator=torch.Generator().manual_seed(0))
    assert coords.shape == (1, 64, 2) and bool((coords[0, :, 0] > 0.45).all())
    mixed = uncertain_points(logits, 64, oversample_ratio=8, importance_sample_ratio=0.5,
                             generator=torch.Generator().manual_seed(0))
    assert bool((mixed[0, 32:, 0] < 0.45).any())  # the random half reaches the confident side


def test_sft_mask_loss_full_hand_case():
    z, g = torch.zeros(1, 1, 2), torch.tensor([[[True, False]]])
    loss, parts = sft_mask_loss(z, g, mode="full")
    # BCE(0, ·) = log 2; Dice = 1 - (2·0.5 + 1) / (0.5 + 0.5 + 1 + 1) = 1/3; loss = 2 log 2 + 0.5/3
    assert parts["bce"].item() == pytest.approx(math.log(2), abs=1e-6)
    assert parts["dice"].item() == pytest.approx(1 / 3, abs=1e-6)
    assert loss.item() == pytest.approx(2 * math.log(2) + 0.5 / 3, abs=1e-6)
    only_dice, _ = sft_mask_loss(z, g, mode="full", bce_weight=0.0)
    assert only_dice.item() == pytest.approx(0.5 / 3, abs=1e-6)


def test_sft_mask_loss_points_hand_case():
    # constant logit 2 on an all-foreground mask: every point has BCE log(1 + e^-2) = 0.126928 and p = 0.880797;
    # Dice over P = 100 points: 1 - (2·88.0797 + 1) / (88.0797 + 100 + 1) = 0.063052
    # (interior points: grid_sample pads with zeros, so border points would blend with 0, as in the released loss)
    z, g = torch.full((1, 8, 8), 2.0, requires_grad=True), torch.ones(1, 32, 32, dtype=torch.bool)
    points = torch.rand(1, 100, 2, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1
    loss, parts = sft_mask_loss(z, g, mode="points", points=points)
    assert parts["bce"].item() == pytest.approx(0.126928, abs=1e-5)
    assert parts["dice"].item() == pytest.approx(0.063052, abs=1e-5)
    assert loss.item() == pytest.approx(2 * 0.126928 + 0.5 * 0.063052, abs=1e-4)
    loss.backward()
    assert z.grad is not None and float(z.grad.abs().sum()) > 0


def test_merge_lora_matches_the_peft_forward():
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    base = torch.nn.Sequential(torch.nn.Linear(4, 3))
    model = get_peft_model(base, LoraConfig(r=2, lora_alpha=6, target_modules=["0"]))
    for name, p in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p)
    x = torch.randn(5, 4)
    expected = model(x)
    merged = merge_lora_state_dict(model.state_dict(), r=2, alpha=6)
    assert set(merged) == {"0.weight", "0.bias"}
    plain = torch.nn.Sequential(torch.nn.Linear(4, 3))
    plain.load_state_dict(merged)
    torch.testing.assert_close(plain(x), expected)


def test_export_hf_policy_roundtrip(tiny_qwen25_path, tmp_path):
    from transformers import AutoConfig, AutoProcessor
    from verl.utils.model import get_hf_auto_model_class

    config = AutoConfig.from_pretrained(tiny_qwen25_path)
    cls = get_hf_auto_model_class(config)
    model = cls.from_pretrained(tiny_qwen25_path)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    key = next(k for k in state if k.endswith("mlp.down_proj.weight"))
    state[key] += 1.0
    state["videoseg_seg_head.proj.0.weight"] = torch.zeros(2, 2)
    processor = AutoProcessor.from_pretrained(tiny_qwen25_path)
    out = export_hf_policy(state, tiny_qwen25_path, str(tmp_path / "hf"), tokenizer=processor.tokenizer,
                           processor=processor)
    again = cls.from_pretrained(out)
    reloaded = again.state_dict()
    torch.testing.assert_close(reloaded[key], state[key])
    assert not any(k.startswith("videoseg_seg_head") for k in reloaded)
    assert "[SEG]" in AutoProcessor.from_pretrained(out).tokenizer.get_vocab()


def test_settings_validation_names_the_key():
    assert SFTSettings.from_dict(None).bce_weight == 2.0
    with pytest.raises(ValueError, match=r"videoseg_o3_sft\] unknown keys \['bce_wieght'\]"):
        SFTSettings.from_dict({"bce_wieght": 1.0})
    with pytest.raises(ValueError, match=r"videoseg_o3_sft.bce_mode"):
        SFTSettings(bce_mode="pixels")


def test_seg_positions_only_trained_tokens():
    ids = torch.tensor([5, 9, 7, 9, 9])
    loss_mask = torch.tensor([0, 1, 1, 1, 0])  # the last [SEG] sits in a user turn: not trained
    assert seg_positions(ids, loss_mask, 9) == [1, 3]


def test_sft_dataset_feeds_the_policy_what_rl_feeds_it(tiny_qwen25_path, tmp_path):
    """The dataset's tokens and pixels equal the processor's on the RL environment's own messages (first turn and
    every ``<select>`` observation, frames as the environment renders them)."""
    import pandas as pd
    from transformers import AutoProcessor

    from videoseg_o3_verl.data.parquet import convert_to_parquet, record_from_extra_info
    from videoseg_o3_verl.data.synthetic import generate_synthetic_dataset
    from videoseg_o3_verl.data.vts_cot import build_vts_cot, sft_info_from_extra_info
    from videoseg_o3_verl.env import Action, EnvConfig, initial_messages, select_observation_content
    from videoseg_o3_verl.sft.dataset import VideoSegSFTDataset
    from videoseg_o3_verl.video import VideoSource

    generate_synthetic_dataset(tmp_path / "syn", seed=1, num_videos=1, num_frames=12, height=56, width=72)
    convert_to_parquet("synthetic", tmp_path / "syn", tmp_path / "rl.parquet")
    build_vts_cot(tmp_path / "rl.parquet", tmp_path / "sft.parquet", seed=0, limit=6)
    frame = pd.read_parquet(tmp_path / "sft.parquet")
    index = next(i for i, (_, r) in enumerate(frame.iterrows()) if len(r["messages"]) >= 5)  # has a <select>
    row = frame.iloc[index]
    processor = AutoProcessor.from_pretrained(tiny_qwen25_path)
    config = OmegaConf.create({"pad_mode": "no_padding", "max_length": 8192, "truncation": "error"})
    item = VideoSegSFTDataset(str(tmp_path / "sft.parquet"), processor.tokenizer, config, processor)[index]

    record = record_from_extra_info(row["extra_info"])
    video = VideoSource.open(record.video_path, frame_ids=list(record.frame_ids))
    factor = processor.image_processor.patch_size * processor.image_processor.merge_size
    env = EnvConfig.train(patch_factor=factor)
    messages = initial_messages(video, record.expression, env)
    actions = sft_info_from_extra_info(row["extra_info"]).actions
    for turn, action in enumerate(actions):
        messages.append({"role": "assistant", "content": [{"type": "text", "text": row["messages"][2 + 2 * turn]
                                                          ["content"]}]})
        if action["kind"] == "select":
            act = Action("select", action["start"], action["end"], action["keyframe"])
            messages.append({"role": "user", "content": select_observation_content(video, act, record.expression,
                                                                                    env)[0]})
    rl = processor.apply_chat_template(messages, tokenize=True, return_dict=True, return_tensors="pt")
    assert item["input_ids"].tolist() == rl["input_ids"][0].tolist()
    torch.testing.assert_close(item["multi_modal_inputs"]["pixel_values"], rl["pixel_values"])
    torch.testing.assert_close(item["multi_modal_inputs"]["image_grid_thw"], rl["image_grid_thw"])
    seg_id = processor.tokenizer.convert_tokens_to_ids("[SEG]")
    assert len(seg_positions(item["input_ids"], item["loss_mask"], seg_id)) == len(actions)
    first_assistant = len(processor.apply_chat_template(messages[:2], tokenize=True, return_dict=True,
                                                        add_generation_prompt=True)["input_ids"])
    assert int(item["loss_mask"][:first_assistant].sum()) == 0 and int(item["loss_mask"].sum()) > 0
    assert item["extra_info"]["videoseg_sft"] == row["extra_info"]["videoseg_sft"]


@pytest.mark.parametrize("cache", [True, False])
def test_sft_dataset_item_cache_returns_the_processed_item_once_computed(tiny_qwen25_path, tmp_path, cache):
    from transformers import AutoProcessor

    from videoseg_o3_verl.data.parquet import convert_to_parquet
    from videoseg_o3_verl.data.synthetic import generate_synthetic_dataset
    from videoseg_o3_verl.data.vts_cot import build_vts_cot
    from videoseg_o3_verl.sft.dataset import VideoSegSFTDataset

    generate_synthetic_dataset(tmp_path / "syn", seed=1, num_videos=1, num_frames=12, height=56, width=72)
    convert_to_parquet("synthetic", tmp_path / "syn", tmp_path / "rl.parquet")
    build_vts_cot(tmp_path / "rl.parquet", tmp_path / "sft.parquet", seed=0, limit=2)
    processor = AutoProcessor.from_pretrained(tiny_qwen25_path)
    config = OmegaConf.create({"pad_mode": "no_padding", "max_length": 8192, "truncation": "error",
                               "cache_items": cache})
    dataset = VideoSegSFTDataset(str(tmp_path / "sft.parquet"), processor.tokenizer, config, processor)
    fresh = VideoSegSFTDataset(str(tmp_path / "sft.parquet"), processor.tokenizer,
                               OmegaConf.create({**config, "cache_items": False}), processor)[1]
    calls = []
    process = dataset._process
    dataset._process = lambda item: calls.append(item) or process(item)
    first = dataset[1]
    first["input_ids"] = None  # a caller replacing a field does not change the cached item
    again = dataset[1]
    assert calls == ([1] if cache else [1, 1])
    assert again["input_ids"].tolist() == fresh["input_ids"].tolist()
    torch.testing.assert_close(again["multi_modal_inputs"]["pixel_values"], fresh["multi_modal_inputs"]["pixel_values"])
    assert again["extra_info"] == fresh["extra_info"]


def test_trainable_summary_groups():
    from videoseg_o3_verl.sft.engine import trainable_summary

    module = torch.nn.Module()
    module.lm = torch.nn.Linear(2, 2)  # 6 parameters, trained
    module.visual = torch.nn.Linear(3, 1)  # 4 parameters, frozen
    module.visual.requires_grad_(False)
    module.videoseg_seg_head = torch.nn.Linear(1, 1)  # 2 parameters, trained
    assert trainable_summary(module) == {"lora": 0, "policy_trained": 6, "policy_frozen": 4, "head_trained": 2,
                                         "head_frozen": 0}


def test_lora_wrapping_keeps_head_embeddings_and_lm_head_trained(tiny_qwen25_path):
    """The engine's ``_build_lora_module`` on the tiny Qwen-VL with a head attached, as the 2B/4B recipes set it."""
    from types import SimpleNamespace

    from transformers import AutoConfig
    from verl.utils.model import get_hf_auto_model_class

    from videoseg_o3_verl.sft.engine import VideoSegO3SFTEngine, trainable_summary

    model = get_hf_auto_model_class(AutoConfig.from_pretrained(tiny_qwen25_path)).from_pretrained(tiny_qwen25_path)
    model.videoseg_seg_head = torch.nn.Sequential(torch.nn.Linear(4, 4))
    for name, param in model.named_parameters():  # what _build_module leaves: vision tower frozen
        param.requires_grad_("visual" not in name)
    engine = object.__new__(VideoSegO3SFTEngine)
    engine.sft = SFTSettings(lora_dropout=0.05, frozen_policy_modules=["visual"])
    engine.model_config = SimpleNamespace(lora_rank=4, lora_alpha=8, target_modules="all-linear",
                                          target_parameters=None, exclude_modules=".*(visual|videoseg_seg_head).*",
                                          lora_adapter_path=None, use_shm=False)
    wrapped = engine._build_lora_module(model)
    trained = {n for n, p in wrapped.named_parameters() if p.requires_grad}
    assert any("lora_A" in n for n in trained) and not any("visual" in n for n in trained)
    assert any("embed_tokens" in n for n in trained) and any("lm_head" in n for n in trained)
    assert {n for n in trained if "videoseg_seg_head" in n} == {"base_model.model.videoseg_seg_head.0.weight",
                                                               "base_model.model.videoseg_seg_head.0.bias"}
    assert not any(n.endswith("q_proj.base_layer.weight") for n in trained)  # LLM base weights frozen
    dropouts = [m.p for n, m in wrapped.named_modules() if n.endswith("lora_dropout.default")]
    assert dropouts and set(dropouts) == {0.05}
    summary = trainable_summary(wrapped)
    assert summary["lora"] > 0 and summary["head_trained"] == 20 and summary["policy_frozen"] > 0


@pytest.mark.parametrize("all_frames", [False, True])
def test_each_seg_is_decoded_on_the_frames_the_settings_name(tiny_qwen25_path, tmp_path, all_frames):
    """The engine's samples: every [SEG] on its keyframe plus the first turn's high-resolution frames, or plus every
    frame of the video with ``supervise_all_frames``."""
    from types import SimpleNamespace

    from omegaconf import OmegaConf
    from transformers import AutoProcessor

    from videoseg_o3_verl.data.parquet import convert_to_parquet
    from videoseg_o3_verl.data.synthetic import generate_synthetic_dataset
    from videoseg_o3_verl.data.vts_cot import build_vts_cot, sft_info_from_extra_info
    from videoseg_o3_verl.sft.dataset import VideoSegSFTDataset
    from videoseg_o3_verl.sft.engine import VideoSegO3SFTEngine

    generate_synthetic_dataset(tmp_path / "syn", seed=1, num_videos=1, num_frames=12, height=56, width=72)
    convert_to_parquet("synthetic", tmp_path / "syn", tmp_path / "rl.parquet")
    build_vts_cot(tmp_path / "rl.parquet", tmp_path / "sft.parquet", seed=0, limit=2)
    processor = AutoProcessor.from_pretrained(tiny_qwen25_path)
    config = OmegaConf.create({"pad_mode": "no_padding", "max_length": 8192, "truncation": "error"})
    items = [VideoSegSFTDataset(str(tmp_path / "sft.parquet"), processor.tokenizer, config, processor)[i]
             for i in range(2)]
    engine = object.__new__(VideoSegO3SFTEngine)
    engine.sft = SFTSettings(supervise_all_frames=all_frames)
    engine.videoseg = SimpleNamespace(seg_head=SimpleNamespace(max_segs_per_sample=3))
    engine.seg_token_id = processor.tokenizer.convert_tokens_to_ids("[SEG]")
    batch = {key: torch.nested.as_nested_tensor([item[key] for item in items], layout=torch.jagged)
             for key in ("input_ids", "loss_mask")}
    batch["extra_info"] = [item["extra_info"] for item in items]
    samples = engine._samples(batch)
    assert [s.index for s in samples] == [0, 1]
    for sample, item in zip(samples, items, strict=True):
        supervision = sft_info_from_extra_info(item["extra_info"])
        expected = list(range(12)) if all_frames else list(supervision.spatial_frames)
        assert sample.trajectory.spatial_frames == expected and 0 < len(supervision.spatial_frames) < 12
        assert sample.keyframes == list(supervision.seg_keyframes)[:len(sample.positions)]
