# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The vLLM-on-CPU pieces that need no vLLM: transfer-bucket sizing, /dev/shm sweep, the pixel-normalisation
guard, scripted replies as token ids (the vLLM tier in tests/vllm runs them for real)."""

from __future__ import annotations

import json
import os
import struct
import time

import pytest
from omegaconf import OmegaConf

from videoseg_o3_verl.backends.cpu.scripted import ScriptedResponses, ScriptRule
from videoseg_o3_verl.backends.vllm_cpu import shm
from videoseg_o3_verl.backends.vllm_cpu.sizing import checkpoint_numel, transfer_buffer_megabytes
from videoseg_o3_verl.verl_ext.vllm_pixels import check_pixel_normalisation, pixel_normalisation_problem


def _write_safetensors_header(path, tensors: dict[str, list[int]]) -> None:
    header = {name: {"dtype": "F32", "shape": shape, "data_offsets": [0, 0]} for name, shape in tensors.items()}
    header["__metadata__"] = {"format": "pt"}
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)


def test_checkpoint_numel_reads_every_shard(tmp_path):
    _write_safetensors_header(tmp_path / "model-00001.safetensors", {"a": [3, 4], "b": [5]})
    _write_safetensors_header(tmp_path / "model-00002.safetensors", {"c": [2, 2, 2]})
    assert checkpoint_numel(tmp_path) == 12 + 5 + 8
    with pytest.raises(FileNotFoundError, match="No \\*.safetensors"):
        checkpoint_numel(tmp_path / "missing")


def test_transfer_buffer_is_the_model_in_float32_capped_by_the_config():
    # 1,000,000 elements x 4 bytes = 3.81 MiB -> 4 MB; a 7B model (28 GB in fp32) keeps the configured 2048
    assert transfer_buffer_megabytes(1_000_000, 2048) == 4
    assert transfer_buffer_megabytes(7_000_000_000, 2048) == 2048
    assert transfer_buffer_megabytes(10, 2048) == 1  # never 0


def test_tiny_model_bucket_is_small(tiny_qwen25_path):
    numel = checkpoint_numel(tiny_qwen25_path)
    assert 100_000 < numel < 2_000_000  # a tiny model: ~0.3 M parameters
    assert transfer_buffer_megabytes(numel, 2048) <= 8


def test_orphan_segments_skip_used_young_and_foreign(tmp_path, monkeypatch):
    old = time.time() - 60
    for name in ("psm_orphan", "psm_used", "verl_weights_orphan", "other_segment"):
        (tmp_path / name).write_bytes(b"x")
        os.utime(tmp_path / name, (old, old))
    (tmp_path / "psm_young").write_bytes(b"x")
    monkeypatch.setattr(shm, "segments_in_use", lambda: {"psm_used"})
    found = {p.name for p in shm.orphan_segments(min_age_s=5.0, shm_dir=tmp_path)}
    assert found == {"psm_orphan", "verl_weights_orphan"}


def test_segments_in_use_sees_an_open_file(tmp_path):
    # a segment this process holds open is "in use"; the scan reads /proc/<pid>/fd
    if not shm.SHM_DIR.is_dir():
        pytest.skip("no /dev/shm on this machine")
    path = shm.SHM_DIR / f"psm_videoseg_test_{os.getpid()}"
    with open(path, "wb"):
        assert path.name in shm.segments_in_use()
    path.unlink()


@pytest.mark.parametrize(("rollout", "problem"), [
    ({"name": "vllm", "load_format": "dummy"}, True),
    ({"name": "vllm", "load_format": "dummy", "engine_kwargs": {"vllm": {"mm_device_do_normalize": True}}}, True),
    ({"name": "vllm", "load_format": "dummy", "engine_kwargs": {"vllm": {"mm_device_do_normalize": False}}}, False),
    ({"name": "vllm", "load_format": "auto"}, False),
    ({"name": "hf", "load_format": "dummy"}, False),
])
def test_pixel_normalisation_guard(rollout, problem):
    assert (pixel_normalisation_problem(OmegaConf.create(rollout)) is not None) is problem


def test_pixel_normalisation_guard_names_the_key():
    cfg = OmegaConf.create({"actor_rollout_ref": {"rollout": {"name": "vllm", "load_format": "dummy"}}})
    with pytest.raises(ValueError, match="actor_rollout_ref.rollout.load_format=auto"):
        check_pixel_normalisation(cfg)


@pytest.mark.parametrize("recipe", ["tiny_cpu", "tiny_cpu_grpo", "qwen3vl_2b", "qwen3vl_4b"])
def test_recipes_with_vllm_pass_the_guard(recipe):
    from videoseg_o3_verl.launch import compose_recipe

    cfg = compose_recipe(recipe, ["actor_rollout_ref.rollout.name=vllm"])
    assert pixel_normalisation_problem(cfg.actor_rollout_ref.rollout) is None


def test_scripted_reply_ids_round_trip(tiny_qwen25_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_qwen25_path)
    script = ScriptedResponses((ScriptRule(response="<answer>ok</answer>", turn=0),))
    prompt = tokenizer.encode("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    reply = script.reply_ids(tokenizer, prompt)
    assert tokenizer.decode(reply) == "<answer>ok</answer><|im_end|>"
    later = prompt + tokenizer.encode("x<|im_end|>\n<|im_start|>assistant\n")
    assert script.reply_ids(tokenizer, later) is None  # turn 1: no rule
