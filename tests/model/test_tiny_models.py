# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Tiny offline models: deterministic builds, reload through the Auto classes with identical outputs,
the Qwen-VL processor/tokenizer pieces the plugin relies on, and the SAM2 checkpoint round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from transformers import AutoModelForImageTextToText, AutoProcessor

from videoseg_o3_verl.model.tiny import SEG_TOKEN, TinyQwenVLSpec, build_tiny_qwen_vl, tiny_qwen_vl


@pytest.mark.parametrize("kind", ["qwen2_5_vl", "qwen3_vl"])
def test_tiny_qwen_vl_reload_gives_identical_outputs(kind, tmp_path):
    path = tiny_qwen_vl(kind, root=tmp_path / "cache")
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    processor = AutoProcessor.from_pretrained(path)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8))
    content = [{"type": "image", "image": image}, {"type": "text", "text": "find [SEG]"}]
    messages = [{"role": "user", "content": content}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[image], return_tensors="pt")
    with torch.no_grad():
        first = model(**inputs, output_hidden_states=True)
    again = AutoModelForImageTextToText.from_pretrained(path).eval()
    with torch.no_grad():
        second = again(**inputs, output_hidden_states=True)
    torch.testing.assert_close(first.logits, second.logits, rtol=0, atol=0)
    assert first.hidden_states[-1].shape[-1] == TinyQwenVLSpec().hidden_size
    assert type(processor).__name__ in {"Qwen2_5_VLProcessor", "Qwen3VLProcessor"}  # verl binds get_rope_index by name


@pytest.mark.parametrize("kind", ["qwen2_5_vl", "qwen3_vl"])
def test_tiny_qwen_vl_build_is_deterministic(kind, tmp_path):
    a = build_tiny_qwen_vl(tmp_path / "a", TinyQwenVLSpec(kind=kind))
    b = build_tiny_qwen_vl(tmp_path / "b", TinyQwenVLSpec(kind=kind))
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert (a / "tokenizer.json").read_text() == (b / "tokenizer.json").read_text()
    c = build_tiny_qwen_vl(tmp_path / "c", TinyQwenVLSpec(kind=kind, seed=1))
    wc = load_file(str(c / "model.safetensors"))
    assert any(not torch.equal(wa[k], wc[k]) for k in wa), "a different seed must give different weights"


def test_tiny_qwen_vl_is_cached(tmp_path):
    first = tiny_qwen_vl("qwen2_5_vl", root=tmp_path)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert tiny_qwen_vl("qwen2_5_vl", root=tmp_path) == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp


def test_tiny_tokenizer_has_qwen_specials_and_seg(tiny_qwen25_path):
    processor = AutoProcessor.from_pretrained(tiny_qwen25_path)
    tok = processor.tokenizer
    vocab = tok.get_vocab()
    for token in ("<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
                  "<|video_pad|>", "<think>", "</think>", "<tool_call>", SEG_TOKEN):
        assert token in vocab, token
    seg = vocab[SEG_TOKEN]
    ids = tok.encode("<RefSeg>[SEG]</RefSeg><|im_end|>", add_special_tokens=False)
    assert ids.count(seg) == 1 and ids[-1] == vocab["<|im_end|>"]  # [SEG] is one atomic token
    assert tok.decode(ids, skip_special_tokens=False) == "<RefSeg>[SEG]</RefSeg><|im_end|>"
    model_vocab = AutoModelForImageTextToText.from_pretrained(tiny_qwen25_path).config.get_text_config().vocab_size
    assert len(tok) <= model_vocab


def test_chat_template_renders_qwen_vl_turns(tiny_qwen25_path):
    processor = AutoProcessor.from_pretrained(tiny_qwen25_path)
    messages = [{"role": "system", "content": "S"},
                {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Q"}]},
                {"role": "assistant", "content": "A"},
                {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "R"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text == ("<|im_start|>system\nS<|im_end|>\n"
                    "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Q<|im_end|>\n"
                    "<|im_start|>assistant\nA<|im_end|>\n"
                    "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>R<|im_end|>\n"
                    "<|im_start|>assistant\n")


def test_tiny_sam2_reloads_through_the_checkpoint_loader(tiny_sam2_path):
    from videoseg_reward.sam2_model import load_sam2_model, read_sam2_checkpoint

    state, meta = read_sam2_checkpoint(tiny_sam2_path)
    assert meta is not None and meta.image_size == 256 and "sam_mask_decoder.iou_token.weight" in state
    model = load_sam2_model(tiny_sam2_path)
    again = load_sam2_model(tiny_sam2_path)
    image = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        a = model.forward_image(image)["vision_features"]
        b = again.forward_image(image)["vision_features"]
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_sam2_loader_is_strict(tiny_sam2_path, tmp_path):
    from videoseg_reward.sam2_model import load_sam2_model

    state = torch.load(tiny_sam2_path, map_location="cpu", weights_only=True)
    del state["model"]["sam_mask_decoder.iou_token.weight"]
    broken = tmp_path / "broken.pt"
    torch.save(state, broken)
    with pytest.raises(ValueError, match="missing keys.*iou_token"):
        load_sam2_model(broken)
    with pytest.raises(FileNotFoundError):
        load_sam2_model(tmp_path / "nope.pt")


def test_small_trunk_sam2_rebuilds_its_architecture_from_the_checkpoint(tmp_path):
    from videoseg_reward.sam2_model import Sam2Meta, load_sam2_model, read_sam2_checkpoint

    from videoseg_o3_verl.model.tiny import SMALL_TRUNK_OVERRIDES, tiny_sam2

    path = tiny_sam2(root=tmp_path, image_size=128, small_trunk=True)
    state, meta = read_sam2_checkpoint(path)
    assert meta == Sam2Meta(config=meta.config, image_size=128, overrides=SMALL_TRUNK_OVERRIDES)
    model = load_sam2_model(path)  # strict: the stored overrides rebuild the 16-channel trunk
    assert model.image_encoder.trunk.patch_embed.proj.out_channels == 16
    assert sum(p.numel() for p in model.image_encoder.parameters()) < 1_000_000
    with torch.no_grad():
        features = model.forward_image(torch.randn(1, 3, 128, 128))["vision_features"]
    assert features.shape == (1, 256, 8, 8)  # the neck keeps C = 256 for the prompt encoder and mask decoder
    state["image_encoder.trunk.patch_embed.proj.weight"] = torch.zeros(96, 3, 7, 7)
    with pytest.raises(ValueError, match="trunk.patch_embed"):  # the default trunk's shape does not load
        from videoseg_reward.sam2_model import sam2_from_state_dict
        sam2_from_state_dict(state, Sam2Meta(config=meta.config, image_size=128), "test")


def test_narrow_sam2_rebuilds_its_width_and_runs_the_seg_head_and_the_eval_propagation(tmp_path):
    from videoseg_reward.propagation import build_propagation_model, propagate_language
    from videoseg_reward.sam2_model import load_sam2_model, read_sam2_checkpoint

    from videoseg_o3_verl.model.frame_encoder import FrameEncoder
    from videoseg_o3_verl.model.seg_head import build_seg_head
    from videoseg_o3_verl.model.tiny import SMALL_TRUNK_OVERRIDES, tiny_sam2, width_overrides

    path = tiny_sam2(root=tmp_path, image_size=128, small_trunk=True, width=64)
    _, meta = read_sam2_checkpoint(path)
    assert meta.overrides == SMALL_TRUNK_OVERRIDES + width_overrides(64)
    model = load_sam2_model(path)  # strict: the stored overrides rebuild every C = 64 module
    head = build_seg_head(32, model)
    assert head.embed_dim == 64 and model.memory_attention.d_model == 64
    assert sum(p.numel() for p in head.parameters()) < 1_000_000  # C = 256: 4.3 M
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (56, 56, 3), dtype=np.uint8))
    features = FrameEncoder.from_sam2(model).encode([image, image])
    assert features.image_embed.shape == (2, 64, 8, 8)
    with torch.no_grad():
        masks = head(torch.randn(2, 32), features).mask_logits
    assert masks.shape == (2, 32, 32)
    video = [Image.fromarray(np.random.default_rng(i).integers(0, 255, (56, 56, 3), dtype=np.uint8)) for i in range(4)]
    propagated = propagate_language(build_propagation_model(path, device="cpu"), video, 1, torch.randn(64))
    assert propagated.shape == (4, 56, 56)
    with pytest.raises(ValueError, match="multiple of 16"):
        tiny_sam2(root=tmp_path, image_size=128, width=40)


def test_default_width_keeps_the_cache_key_of_the_released_width(tmp_path):
    from videoseg_o3_verl.model.tiny import SAM2_WIDTH, tiny_sam2, width_overrides

    assert width_overrides(SAM2_WIDTH) == ()
    assert tiny_sam2(root=tmp_path, image_size=64, small_trunk=True) \
        == tiny_sam2(root=tmp_path, image_size=64, small_trunk=True, width=SAM2_WIDTH)


def test_sam2_meta_rejects_malformed_overrides():
    from videoseg_reward.sam2_model import Sam2Meta

    with pytest.raises(ValueError, match="overrides"):
        Sam2Meta(overrides=("model.image_size=64",))
    with pytest.raises(ValueError, match="overrides"):
        Sam2Meta(overrides=("++model.image_encoder",))
    assert Sam2Meta(overrides=["++model.image_size=64"]).overrides == ("++model.image_size=64",)
