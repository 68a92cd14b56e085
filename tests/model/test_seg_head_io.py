# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Tests for seg head checkpoint I/O, ``ensure_seg_token`` and the released-checkpoint converter.

The SAM2 fixture is a tiny random hiera-t at 256 px written once per session (~150 MB in the pytest tmp dir).
The released-layout fixture is built by the test itself: a tiny Qwen3-VL (2 layers, hidden 64), a random
``text_hidden_fcs`` and the tiny SAM2, keyed as the authors' Sa2VA-style checkpoint.
"""

from __future__ import annotations

import json
import os
import runpy
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from videoseg_reward.sam2_model import Sam2Meta, build_random_sam2_checkpoint, load_sam2_model

from videoseg_o3_verl.model.convert_released import ReleasedLayout, _ensure_seg_in_output, convert_released_checkpoint
from videoseg_o3_verl.model.frame_encoder import FrameEncoder
from videoseg_o3_verl.model.seg_head import build_seg_head, seg_head_tiny
from videoseg_o3_verl.model.seg_head_io import (
    SEG_HEAD_CONFIG,
    SEG_HEAD_WEIGHTS,
    ensure_seg_token,
    has_seg_head,
    load_seg_head,
    save_seg_head,
)

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

IMAGE_SIZE = 256
HIDDEN = 64
META = Sam2Meta(image_size=IMAGE_SIZE)  # sam2.1 hiera-t at 256 px
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def sam2_ckpt(tmp_path_factory) -> Path:
    return build_random_sam2_checkpoint(tmp_path_factory.mktemp("sam2") / "tiny_sam2.pt", META, seed=0)


@pytest.fixture(scope="module")
def sam2_model(sam2_ckpt):
    return load_sam2_model(sam2_ckpt)


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, size=(2, 32, 48, 3), dtype=np.uint8)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _perturbed_head(sam2_model):
    """A head whose weights differ from the SAM2 checkpoint (as after training), so a load must read them."""
    head = seg_head_tiny(sam2_model)
    with torch.no_grad():
        for p in head.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return head


def _outputs(head, encoder, frames, hidden):
    feats = encoder.encode(frames)
    return head(hidden, feats).mask_logits, head.decode_on_frames(hidden, feats)


# ----------------------------------------------------------------------------------------------- save / load


def test_save_load_roundtrip_is_bit_identical(tmp_path, sam2_model, sam2_ckpt, frames):
    head = _perturbed_head(sam2_model)
    assert not has_seg_head(tmp_path)
    save_seg_head(head, tmp_path, sam2_checkpoint=sam2_ckpt, hidden_size=HIDDEN)
    assert has_seg_head(tmp_path)
    loaded, encoder = load_seg_head(tmp_path)
    for key, value in head.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    hidden = torch.randn(2, HIDDEN)
    ref = _outputs(head, FrameEncoder.from_sam2(sam2_model), frames, hidden)
    new = _outputs(loaded, encoder, frames, hidden)
    for a, b in zip(ref, new, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_input_norm_round_trips_with_its_statistics(tmp_path, sam2_model, sam2_ckpt, frames):
    """A head with a standardizer saves ``input_norm: true`` and its running statistics; the loaded head embeds
    identically, and a config without the key (older heads) loads without one."""
    head = build_seg_head(HIDDEN, sam2_model, input_norm=True)
    head.input_norm.update(3.0 + torch.randn(5, HIDDEN))
    save_seg_head(head, tmp_path / "norm", sam2_checkpoint=sam2_ckpt, hidden_size=HIDDEN)
    assert json.loads((tmp_path / "norm" / SEG_HEAD_CONFIG).read_text())["input_norm"] is True
    loaded, _ = load_seg_head(tmp_path / "norm")
    assert loaded.input_norm is not None and int(loaded.input_norm.count) == 1
    torch.testing.assert_close(loaded.input_norm.mean, head.input_norm.mean, rtol=0, atol=0)
    hidden = torch.randn(3, HIDDEN)
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval().embed(hidden), head.eval().embed(hidden), rtol=0, atol=0)
    save_seg_head(seg_head_tiny(sam2_model), tmp_path / "plain", sam2_checkpoint=sam2_ckpt, hidden_size=HIDDEN)
    config = json.loads((tmp_path / "plain" / SEG_HEAD_CONFIG).read_text())
    assert config.pop("input_norm") is False
    (tmp_path / "plain" / SEG_HEAD_CONFIG).write_text(json.dumps(config))
    assert load_seg_head(tmp_path / "plain")[0].input_norm is None


def test_saved_config_records_sam2_and_sizes(tmp_path, sam2_model, sam2_ckpt):
    save_seg_head(seg_head_tiny(sam2_model), tmp_path, sam2_checkpoint=sam2_ckpt, hidden_size=HIDDEN)
    config = json.loads((tmp_path / SEG_HEAD_CONFIG).read_text())
    assert config["format_version"] == 1
    assert (config["hidden_size"], config["embed_dim"], config["num_padding_tokens"]) == (HIDDEN, 256, 2)
    assert (config["sam2_config"], config["sam2_image_size"]) == (META.config, IMAGE_SIZE)
    assert config["sam2_checkpoint"] == str(Path(sam2_ckpt).resolve())  # outside the directory: absolute


def test_checkpoint_inside_directory_is_relative_and_relocatable(tmp_path, sam2_model, sam2_ckpt):
    src = tmp_path / "a"
    src.mkdir()
    os.link(sam2_ckpt, src / "sam2.pt")  # hard link: no 150 MB copy
    save_seg_head(seg_head_tiny(sam2_model), src, sam2_checkpoint=src / "sam2.pt", hidden_size=HIDDEN)
    assert json.loads((src / SEG_HEAD_CONFIG).read_text())["sam2_checkpoint"] == "sam2.pt"
    moved = src.rename(tmp_path / "b")
    head, _ = load_seg_head(moved)
    assert head.hidden_size == HIDDEN


def _saved(tmp_path, sam2_model, sam2_ckpt) -> Path:
    save_seg_head(seg_head_tiny(sam2_model), tmp_path, sam2_checkpoint=sam2_ckpt, hidden_size=HIDDEN)
    return tmp_path


def test_load_is_strict_about_missing_keys(tmp_path, sam2_model, sam2_ckpt):
    d = _saved(tmp_path, sam2_model, sam2_ckpt)
    state = load_file(str(d / SEG_HEAD_WEIGHTS))
    del state["mask_decoder.iou_token.weight"]
    save_file(state, str(d / SEG_HEAD_WEIGHTS))
    with pytest.raises(ValueError, match=r"missing keys \['mask_decoder.iou_token.weight'\]"):
        load_seg_head(d)


def test_load_is_strict_about_unexpected_keys(tmp_path, sam2_model, sam2_ckpt):
    d = _saved(tmp_path, sam2_model, sam2_ckpt)
    state = load_file(str(d / SEG_HEAD_WEIGHTS))
    state["proj.4.weight"] = torch.zeros(1)
    save_file(state, str(d / SEG_HEAD_WEIGHTS))
    with pytest.raises(ValueError, match=r"unexpected keys \['proj.4.weight'\]"):
        load_seg_head(d)


def test_load_rejects_wrong_shapes_from_config(tmp_path, sam2_model, sam2_ckpt):
    d = _saved(tmp_path, sam2_model, sam2_ckpt)
    config = json.loads((d / SEG_HEAD_CONFIG).read_text())
    config["hidden_size"] = 32  # the file holds a 64-wide proj
    (d / SEG_HEAD_CONFIG).write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"proj.0.weight: file \(64, 64\) vs head \(32, 32\)"):
        load_seg_head(d)


def test_load_missing_sam2_checkpoint_and_override(tmp_path, sam2_model, sam2_ckpt):
    d = _saved(tmp_path, sam2_model, sam2_ckpt)
    config = json.loads((d / SEG_HEAD_CONFIG).read_text())
    config["sam2_checkpoint"] = "gone.pt"
    (d / SEG_HEAD_CONFIG).write_text(json.dumps(config))
    with pytest.raises(FileNotFoundError, match="gone.pt"):
        load_seg_head(d)
    head, _ = load_seg_head(d, sam2_checkpoint=sam2_ckpt)
    assert head.hidden_size == HIDDEN


def test_load_rejects_unknown_format_version(tmp_path, sam2_model, sam2_ckpt):
    d = _saved(tmp_path, sam2_model, sam2_ckpt)
    config = json.loads((d / SEG_HEAD_CONFIG).read_text())
    config["format_version"] = 99
    (d / SEG_HEAD_CONFIG).write_text(json.dumps(config))
    with pytest.raises(ValueError, match="format_version 99"):
        load_seg_head(d)


def test_save_validates_arguments(tmp_path, sam2_model, sam2_ckpt):
    head = seg_head_tiny(sam2_model)
    with pytest.raises(ValueError, match="hidden_size=32"):
        save_seg_head(head, tmp_path, sam2_checkpoint=sam2_ckpt, hidden_size=32)
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        save_seg_head(head, tmp_path, sam2_checkpoint=tmp_path / "nope.pt", hidden_size=HIDDEN)
    with pytest.raises(FileNotFoundError, match=SEG_HEAD_CONFIG):
        load_seg_head(tmp_path)


# ------------------------------------------------------------------------------------------ ensure_seg_token


WORDS = ["<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "find", "the", "dog", "it"]


def _tokenizer(with_seg: bool):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", eos_token="<|im_end|>",
                                  pad_token="<|endoftext|>")
    if with_seg:
        tok.add_tokens(["[SEG]"], special_tokens=True)
    return tok


def _tiny_qwen3vl_config(vocab_size: int):
    from transformers import Qwen3VLConfig

    # every size shrunk to the minimum that runs: 2 layers, hidden 64, head_dim 16 (mrope_section sums to 8)
    return Qwen3VLConfig(
        text_config=dict(vocab_size=vocab_size, hidden_size=HIDDEN, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                         rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3],
                                          "mrope_interleaved": True}),
        vision_config=dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=HIDDEN,
                           patch_size=16, num_position_embeddings=64, deepstack_visual_indexes=[0]),
        tie_word_embeddings=False)


def _tiny_qwen3vl(vocab_size: int):
    from transformers import Qwen3VLForConditionalGeneration

    torch.manual_seed(0)
    return Qwen3VLForConditionalGeneration(_tiny_qwen3vl_config(vocab_size))


def test_ensure_seg_token_uses_padded_rows_without_resizing():
    # 8 words -> [SEG] gets id 8; the table has 16 (padded) rows, so no resize and no weight change
    tok, model = _tokenizer(with_seg=False), _tiny_qwen3vl(16)
    before = model.get_input_embeddings().weight.clone()
    assert ensure_seg_token(tok, model) == 8
    assert tok.convert_tokens_to_ids("[SEG]") == 8 and len(tok) == 9
    assert torch.equal(model.get_input_embeddings().weight, before)
    assert model.get_output_embeddings().weight.shape[0] == 16


def test_ensure_seg_token_resizes_when_id_is_past_the_table():
    # the table has exactly 8 rows, [SEG] = 8 does not fit -> both embeddings grow to len(tokenizer) = 9
    tok, model = _tokenizer(with_seg=False), _tiny_qwen3vl(8)
    before = model.get_input_embeddings().weight.clone()
    assert ensure_seg_token(tok, model) == 8
    assert model.get_input_embeddings().weight.shape[0] == 9
    assert model.get_output_embeddings().weight.shape[0] == 9
    assert torch.equal(model.get_input_embeddings().weight[:8], before)  # old rows kept


def test_ensure_seg_token_existing_token_is_untouched():
    tok = _tokenizer(with_seg=True)
    assert ensure_seg_token(tok, None) == 8 and len(tok) == 9
    assert ensure_seg_token(tok, None, token="<|im_end|>") == 3


# -------------------------------------------------------------------------------------------------- converter


@pytest.fixture(scope="module")
def released(tmp_path_factory, sam2_model):
    """A tiny checkpoint directory in the released Sa2VA-style layout, plus its parts for comparison."""
    root = tmp_path_factory.mktemp("released")
    llm = _tiny_qwen3vl(16)
    torch.manual_seed(3)
    proj = nn.Sequential(nn.Linear(HIDDEN, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 256), nn.Dropout(0.0))
    state = {f"model.{k}": v for k, v in llm.state_dict().items()}
    state.update({f"text_hidden_fcs.{k}": v for k, v in proj.state_dict().items()})
    # the released files carry SAM2's memory-encoder `gamma` params as `g_weight` (renamed by transformers)
    for k, v in sam2_model.state_dict().items():
        released_key = k[: -len(".gamma")] + ".g_weight" if k.endswith(".gamma") else k
        state[f"grounding_encoder.sam2_model.{released_key}"] = v
    assert any(k.endswith(".g_weight") for k in state)
    # two shards + an index, as large HF checkpoints are stored
    keys = sorted(state)
    shards = {"model-00001-of-00002.safetensors": keys[::2], "model-00002-of-00002.safetensors": keys[1::2]}
    for name, part in shards.items():
        save_file({k: state[k].contiguous() for k in part}, str(root / name), metadata={"format": "pt"})
    index = {"metadata": {}, "weight_map": {k: n for n, part in shards.items() for k in part}}
    (root / "model.safetensors.index.json").write_text(json.dumps(index))
    config = llm.config.to_dict()
    config.update(model_type="sa2va_chat", architectures=["Sa2VAChatModelQwenCOT"], template="<chat template>",
                  auto_map={"AutoConfig": "configuration_sa2va_chat.Sa2VAChatConfigQwen",
                            "AutoModel": "modeling_sa2va_qwen.Sa2VAChatModelQwen"})
    (root / "config.json").write_text(json.dumps(config))
    _tokenizer(with_seg=True).save_pretrained(str(root))
    (root / "modeling_sa2va_qwen.py").write_text("# released custom code, not copied\n")
    return {"dir": root, "llm": llm, "proj": proj}


@pytest.fixture(scope="module")
def converted(tmp_path_factory, released):
    dst = tmp_path_factory.mktemp("converted") / "out"
    cli = runpy.run_path(str(REPO_ROOT / "tools" / "convert_checkpoint.py"))
    # tiny shards (64 KiB) so the output is sharded too; the tiny SAM2 is sam2.1 hiera-t at 256 px
    rc = cli["main"]([str(released["dir"]), str(dst), "--sam2-config", META.config, "--sam2-image-size",
                      str(IMAGE_SIZE), "--max-shard-gb", str(64 / 1024**2)])
    assert rc == 0
    return dst


def test_convert_llm_weights_are_bit_identical(released, converted):
    from transformers import AutoConfig, Qwen3VLForConditionalGeneration

    assert AutoConfig.from_pretrained(converted).model_type == "qwen3_vl"
    cfg = json.loads((converted / "config.json").read_text())
    assert "auto_map" not in cfg and "template" not in cfg
    assert (converted / "model.safetensors.index.json").is_file()  # sharded output
    model = Qwen3VLForConditionalGeneration.from_pretrained(converted)
    ref = released["llm"].state_dict()
    got = model.state_dict()
    assert set(got) == set(ref)
    for key, value in ref.items():
        assert torch.equal(got[key], value), key


def test_convert_keeps_tokenizer_with_seg_and_skips_custom_code(converted):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(converted)
    assert tok.convert_tokens_to_ids("[SEG]") == 8
    assert not (converted / "modeling_sa2va_qwen.py").exists()


def test_convert_seg_head_and_sam2_match_released(released, converted, sam2_model, frames):
    head, encoder = load_seg_head(converted)
    # the reference: the released parts wired by hand
    ref_head = build_seg_head(HIDDEN, sam2_model)
    ref_head.proj.load_state_dict(released["proj"].state_dict())
    hidden = torch.randn(2, HIDDEN)
    ref = _outputs(ref_head, FrameEncoder.from_sam2(sam2_model), frames, hidden)
    new = _outputs(head, encoder, frames, hidden)
    for a, b in zip(ref, new, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # the SAM2 checkpoint for the reward service holds the grounding encoder unchanged
    sam2_out = load_sam2_model(converted / "sam2_grounding_encoder.pt")
    for key, value in sam2_model.state_dict().items():
        assert torch.equal(sam2_out.state_dict()[key], value), key


def test_convert_rejects_unknown_keys(tmp_path, released):
    src = tmp_path / "src"
    src.mkdir()
    for item in released["dir"].iterdir():
        os.link(item, src / item.name)
    save_file({"foo.bar": torch.zeros(1)}, str(src / "extra.safetensors"))
    index = json.loads((src / "model.safetensors.index.json").read_text())
    index["weight_map"]["foo.bar"] = "extra.safetensors"
    (src / "model.safetensors.index.json").unlink()  # a hard link: do not write through to the fixture
    (src / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match=r"1 keys .* match none of the prefixes.*\['foo.bar'\]"):
        convert_released_checkpoint(src, tmp_path / "out", sam2_meta=META)
    # a failed conversion leaves nothing behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_convert_wrong_llm_prefix_is_reported(tmp_path, released):
    # xtuner's un-merged layout uses 'mllm.model.'; with that prefix nothing here is an LLM key
    with pytest.raises(ValueError, match="match none of the prefixes"):
        convert_released_checkpoint(released["dir"], tmp_path / "out", sam2_meta=META,
                                    layout=ReleasedLayout(llm_prefix="mllm.model."))


def test_convert_refuses_non_empty_output(tmp_path, released):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("x")
    with pytest.raises(FileExistsError, match="overwrite"):
        convert_released_checkpoint(released["dir"], tmp_path / "out", sam2_meta=META)


def test_convert_adds_missing_seg_only_inside_the_table(tmp_path):
    # tokenizer without [SEG]: it is added as id 8, fine for a 16-row (padded) table, an error for an 8-row one
    _tokenizer(with_seg=False).save_pretrained(str(tmp_path))
    assert _ensure_seg_in_output(tmp_path, "[SEG]", embed_rows=16) == (8, True)
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(tmp_path).convert_tokens_to_ids("[SEG]") == 8  # saved back
    other = tmp_path / "other"
    other.mkdir()
    _tokenizer(with_seg=False).save_pretrained(str(other))
    with pytest.raises(ValueError, match="has id 8 but the released embedding table has only 8 rows"):
        _ensure_seg_in_output(other, "[SEG]", embed_rows=8)
