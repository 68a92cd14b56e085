# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Export to the released checkpoint layout: round trip released -> ours -> released (bit-identical) and
ours -> released -> ours, and a training checkpoint (``actor/huggingface`` + ``actor/seg_head``) whose trained
mask decoder must land in the exported SAM2.

The released-layout fixture is built from the cached tiny Qwen3-VL (hidden 64), a random ``text_hidden_fcs`` and
the tiny SAM2 (sam2.1 hiera-t at 256 px), keyed as the authors' Sa2VA-style checkpoint.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from videoseg_reward.sam2_model import Sam2Meta, load_sam2_model, read_sam2_checkpoint

from videoseg_o3_verl.model.convert_released import _iter_tensors, _weight_files, convert_released_checkpoint
from videoseg_o3_verl.model.export_released import export_released_checkpoint, find_seg_head_dir, main
from videoseg_o3_verl.model.seg_head import build_seg_head
from videoseg_o3_verl.model.seg_head_io import SEG_HEAD_WEIGHTS, load_seg_head, save_seg_head
from videoseg_o3_verl.model.tiny import tiny_qwen_vl, tiny_sam2

pytest.importorskip("transformers")

HIDDEN = 64
META = Sam2Meta(config="configs/sam2.1/sam2.1_hiera_t.yaml", image_size=256)
RELEASED_FIELDS = {"model_type": "sa2va_chat", "architectures": ["Sa2VAChatModelQwenCOT"], "template": "<template>",
                   "auto_map": {"AutoModel": "modeling_sa2va_qwen.Sa2VAChatModelQwen"}}


def _state(directory: Path) -> dict[str, torch.Tensor]:
    return dict(_iter_tensors(_weight_files(directory)))


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    qwen = tiny_qwen_vl("qwen3_vl")
    root = tmp_path_factory.mktemp("released")
    torch.manual_seed(5)
    proj = nn.Sequential(nn.Linear(HIDDEN, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 256), nn.Dropout(0.0))
    state = {f"model.{k}": v for k, v in load_file(str(qwen / "model.safetensors")).items()}
    state.update({f"text_hidden_fcs.{k}": v for k, v in proj.state_dict().items()})
    sam2_state, _ = read_sam2_checkpoint(tiny_sam2())
    for key, value in sam2_state.items():  # the release names the memory-encoder `gamma` params `g_weight`
        state["grounding_encoder.sam2_model." + (key[:-6] + ".g_weight" if key.endswith(".gamma") else key)] = value
    save_file({k: v.contiguous() for k, v in state.items()}, str(root / "model.safetensors"))
    config = json.loads((qwen / "config.json").read_text())
    (root / "config.json").write_text(json.dumps({**config, **RELEASED_FIELDS}))
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "processor_config.json"):
        shutil.copy2(qwen / name, root / name)
    (root / "modeling_sa2va_qwen.py").write_text("# released modelling code\n")
    return root


@pytest.fixture(scope="module")
def ours(tmp_path_factory, released) -> Path:
    return convert_released_checkpoint(released, tmp_path_factory.mktemp("ours") / "hf", sam2_meta=META).output_dir


def test_released_ours_released_is_bit_identical(tmp_path, released, ours):
    assert main([str(ours), str(tmp_path / "exported"), "--released-reference", str(released)]) == 0
    exported, reference = _state(tmp_path / "exported"), _state(released)
    assert set(exported) == set(reference)
    assert any(k.endswith(".g_weight") for k in exported) and not any(k.endswith(".gamma") for k in exported)
    for key, value in reference.items():
        assert torch.equal(exported[key], value), key
    config = json.loads((tmp_path / "exported" / "config.json").read_text())
    assert {k: config[k] for k in RELEASED_FIELDS} == RELEASED_FIELDS
    assert (tmp_path / "exported" / "modeling_sa2va_qwen.py").is_file()
    assert (tmp_path / "exported" / "tokenizer.json").is_file()


def test_ours_released_ours_round_trip(tmp_path, ours):
    report = export_released_checkpoint(ours, tmp_path / "exported", max_shard_bytes=64 * 1024)
    assert (tmp_path / "exported" / "model.safetensors.index.json").is_file()  # sharded
    assert report.trained_sam2_tensors > 0 and report.proj_tensors == 4 and report.seg_head_dir == ours
    # without a reference the config stays the HF one, which the converter reads back
    assert json.loads((tmp_path / "exported" / "config.json").read_text())["model_type"] == "qwen3_vl"
    again = convert_released_checkpoint(tmp_path / "exported", tmp_path / "again", sam2_meta=META).output_dir
    for name in ("model.safetensors", SEG_HEAD_WEIGHTS):
        a, b = load_file(str(ours / name)), load_file(str(again / name))
        assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a), name


def test_training_checkpoint_exports_the_trained_decoder(tmp_path, ours):
    # a training checkpoint: actor/huggingface (no seg head inside) + actor/seg_head with a trained head
    hf = tmp_path / "global_step_7" / "actor" / "huggingface"
    hf.mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy2(ours / name, hf / name)
    head, _ = load_seg_head(ours)
    with torch.no_grad():
        for p in head.parameters():
            p.add_(0.01)
    head_dir = save_seg_head(head, hf.parent / "seg_head", sam2_checkpoint=ours / "sam2_grounding_encoder.pt",
                             hidden_size=HIDDEN)
    assert find_seg_head_dir(hf) == head_dir
    export_released_checkpoint(hf, tmp_path / "exported")
    exported = _state(tmp_path / "exported")
    trained = head.state_dict()
    base, _ = read_sam2_checkpoint(ours / "sam2_grounding_encoder.pt")
    prefix = "grounding_encoder.sam2_model."
    for key, value in trained.items():
        if key.startswith("mask_decoder."):
            assert torch.equal(exported[prefix + "sam_" + key], value), key           # the trained decoder
        elif key.startswith("proj."):
            assert torch.equal(exported["text_hidden_fcs." + key[5:]], value), key
    for key in ("image_encoder.neck.convs.0.conv.weight", "memory_encoder.fuser.layers.0.g_weight"):
        assert torch.equal(exported[prefix + key], base[key.replace("g_weight", "gamma")]), key  # frozen parts


def test_export_errors_name_the_problem(tmp_path, ours):
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy2(ours / "config.json", bare / "config.json")
    with pytest.raises(FileNotFoundError, match="No seg head for .*bare"):
        export_released_checkpoint(bare, tmp_path / "out")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(FileExistsError, match="not empty"):
        export_released_checkpoint(ours, tmp_path / "full")
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.exporting").exists()


def test_input_norm_is_folded_into_the_released_projection(tmp_path, ours):
    """The released layout has no standardizer: the export folds it into ``text_hidden_fcs.0``, so the converted-back
    head (without one) embeds every [SEG] state as the trained head did."""
    plain, _ = load_seg_head(ours)
    sam2_ckpt = ours / "sam2_grounding_encoder.pt"
    head = build_seg_head(HIDDEN, load_sam2_model(sam2_ckpt), input_norm=True)
    head.load_state_dict({**plain.state_dict(), **head.input_norm.state_dict(prefix="input_norm.")})
    head.input_norm.update(2.0 + 0.3 * torch.randn(6, HIDDEN))
    model = tmp_path / "model"
    shutil.copytree(ours, model, ignore=shutil.ignore_patterns("seg_head*"))
    save_seg_head(head, model, sam2_checkpoint=sam2_ckpt, hidden_size=HIDDEN)
    export_released_checkpoint(model, tmp_path / "exported")
    exported = _state(tmp_path / "exported")
    assert not torch.equal(exported["text_hidden_fcs.0.weight"], head.proj[0].weight)  # folded, not copied
    back = convert_released_checkpoint(tmp_path / "exported", tmp_path / "back", sam2_meta=META).output_dir
    converted, _ = load_seg_head(back)
    assert converted.input_norm is None
    hidden = 2.0 + 0.3 * torch.randn(4, HIDDEN)
    with torch.no_grad():
        torch.testing.assert_close(converted.eval().embed(hidden), head.eval().embed(hidden), rtol=1e-5, atol=1e-5)
