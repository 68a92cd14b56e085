# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""GPU smoke tier (run on a CUDA machine with `bash scripts/run_tests.sh -m gpu`): the same 2 GRPO steps and the
VideoSEG-O3 demo on one GPU with verl's vLLM rollout, as the GPU recipes roll out (needs vLLM installed:
`pip install "./[gpu]"`); plus the HF engine's CUDA path directly."""

from __future__ import annotations

import math

import pytest
import torch

pytestmark = pytest.mark.gpu

CUDA_OVERRIDES = ["trainer.device=cuda"]
VLLM_ROLLOUT = ["actor_rollout_ref.rollout.name=vllm"]


def test_gpu_hf_engine_generates_on_cuda(tiny_qwen25_path):
    from videoseg_o3_verl.backends.cpu.hf_engine import HFEngineConfig, HFGenerationEngine, SamplingRequest

    engine = HFGenerationEngine(str(tiny_qwen25_path), HFEngineConfig(device="cuda"))
    assert engine.model.device.type == "cuda"
    ids = engine.tokenizer.encode("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    tokens, log_probs = engine.generate(ids, SamplingRequest(max_tokens=8, logprobs=True, seed=0))
    assert len(tokens) == len(log_probs) >= 1
    rescored = engine.score(ids, tokens)
    assert max(abs(a - b) for a, b in zip(log_probs, rescored)) < 1e-3


def test_gpu_grpo_smoke_two_steps(tmp_path, tiny_qwen25_path):
    from tests.e2e.runner import run_cli, tail

    proc, rows = run_cli(["smoke", "--output-dir", str(tmp_path / "smoke"), "trainer.logger=[console,file]",
                          *CUDA_OVERRIDES, *VLLM_ROLLOUT], tmp_path)
    assert proc.returncode == 0, tail(proc)
    steps = {r["step"]: r["data"] for r in rows if "actor/pg_loss" in r["data"]}
    assert sorted(steps) == [1, 2]
    assert all(math.isfinite(float(d["actor/grad_norm"])) for d in steps.values())


def test_gpu_videoseg_o3_demo_step(tmp_path):
    from tests.e2e.runner import run_cli, tail

    out = tmp_path / "demo"
    proc, _ = run_cli(["demo", "--rollout", "vllm", "--output-dir", str(out), "--steps", "1", *CUDA_OVERRIDES],
                      tmp_path)
    assert proc.returncode == 0, tail(proc)
    assert (out / "report.html").exists()
    assert torch.cuda.is_available()
