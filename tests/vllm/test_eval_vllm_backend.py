# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""`videoseg-o3 eval --backend vllm` with the tiny Qwen2.5-VL, against the HF backend.

Both backends decode greedily from the same rendered conversations and images, so every turn must be the same token
sequence. The synthetic videos' frames are nearly alike, so the policy-level test also feeds distinct noise images
of different sizes, where the random model's tokens change with the images and their order.
"""

from __future__ import annotations

import gc
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.e2e.runner import run_cli, tail

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

LIMIT = 2


@pytest.fixture(scope="module")
def synthetic_parquet(tmp_path_factory) -> str:
    from videoseg_o3_verl.data.synthetic_cli import main

    root = tmp_path_factory.mktemp("synthetic")
    main(["--root", str(root / "syn"), "--num-videos", "2", "--num-frames", "8", "--height", "64", "--width", "96",
          "--splits", "valid", "--parquet-dir", str(root / "pq")])
    return str(root / "pq" / "valid.parquet")


def _eval(backend: str, model: Path, sam2: str, data: str, workdir: Path) -> dict[tuple[str, str], list[str]]:
    workdir.mkdir()
    out = workdir / "out"
    proc, _ = run_cli(["eval", "--model", str(model), "--sam2", sam2, "--data", data, "--output-dir", str(out),
                       "--limit", str(LIMIT), "--backend", backend, "--device", "cpu"], workdir)
    assert proc.returncode == 0, tail(proc)
    metrics = json.loads((out / "metrics.json").read_text())
    results = json.loads((out / "results.json").read_text())
    assert metrics["num_evaluated"] == LIMIT and metrics["num_errors"] == 0, metrics
    assert sum(len(v) for v in results.values()) == LIMIT
    journal = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    return {(e["video"], e["expression_id"]): [t["text"] for t in e["turns"]] for e in journal}


def test_eval_vllm_backend_matches_hf_tokens(tmp_path, tiny_qwen25_path, synthetic_parquet):
    from transformers import AutoTokenizer

    from videoseg_o3_verl.model.tiny import tiny_sam2

    sam2 = str(tiny_sam2())
    vllm_turns = _eval("vllm", tiny_qwen25_path, sam2, synthetic_parquet, tmp_path / "vllm")
    hf_turns = _eval("hf", tiny_qwen25_path, sam2, synthetic_parquet, tmp_path / "hf")
    assert sorted(vllm_turns) == sorted(hf_turns) and len(hf_turns) == LIMIT
    tokenizer = AutoTokenizer.from_pretrained(tiny_qwen25_path)
    for key, hf_texts in hf_turns.items():
        assert len(vllm_turns[key]) == len(hf_texts), key
        for turn, (hf_text, vllm_text) in enumerate(zip(hf_texts, vllm_turns[key])):
            hf_ids = tokenizer.encode(hf_text, add_special_tokens=False)
            vllm_ids = tokenizer.encode(vllm_text, add_special_tokens=False)
            assert len(hf_ids) > 10, (key, turn, hf_text)  # a real generation, not an immediate stop
            first_diff = next((i for i, (a, b) in enumerate(zip(hf_ids, vllm_ids)) if a != b),
                              min(len(hf_ids), len(vllm_ids)))
            assert vllm_ids == hf_ids, f"{key} turn {turn}: first different token at {first_diff} of {len(hf_ids)}"


def test_vllm_policy_matches_hf_policy_on_distinct_images(tiny_qwen25_path):
    from videoseg_o3_verl.env import EnvConfig
    from videoseg_o3_verl.eval.policy import HFPolicy
    from videoseg_o3_verl.eval.vllm_policy import VLLMPolicy

    rng = np.random.default_rng(0)
    sizes = ((56, 84), (112, 56), (56, 84))  # two alike: swapping them keeps the prompt ids, not the tokens
    images = [Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)) for h, w in sizes]
    hf = HFPolicy(str(tiny_qwen25_path))
    policy = VLLMPolicy(hf, str(tiny_qwen25_path), EnvConfig.eval())
    first = [{"type": "image", "image": images[0]}, {"type": "text", "text": "Where?"}]
    messages = [{"role": "user", "content": first}]
    shown = images[:1]
    for turn in range(2):  # the second turn re-renders the conversation with two more images
        expected = hf.generate(messages, shown, 64)
        got = policy.generate(messages, shown, 64)
        assert got.prompt_ids == expected.prompt_ids, f"turn {turn}: vLLM expanded the images differently"
        assert got.token_ids == expected.token_ids and got.text == expected.text, f"turn {turn}"
        messages += [{"role": "assistant", "content": got.text},
                     {"role": "user", "content": [*({"type": "image", "image": image} for image in images[1:]),
                                                  {"type": "text", "text": "And now?"}]}]
        shown = images
    del policy  # stops the engine while pytest still captures its output
    gc.collect()
