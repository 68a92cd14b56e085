# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""vLLM vs Hugging Face log-probs of the same sampled tokens after an image/video prompt (run as a script).

``python offline_logprobs.py MODEL_DIR LOAD_FORMAT [MM_DEVICE_DO_NORMALIZE]`` starts an offline vLLM engine the
way verl's rollout does (``load_format``; ``dummy`` is followed by a weight sync of the checkpoint's state dict
through the CPU worker extension's in-place reload, which like verl's sync sends no buffers), samples a few tokens
after an image prompt and a video prompt, and prints one JSON line: the largest |Δ log-prob| against an HF
forward pass of the same tokens, per modality.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import torch
from PIL import Image


def _load_checkpoint(worker, model_dir: str) -> int:
    """Runs inside the vLLM worker: load the checkpoint's tensors as verl's weight sync would."""
    from pathlib import Path

    from safetensors.torch import load_file

    from videoseg_o3_verl.backends.vllm_cpu.worker_ext import reload_in_place

    weights = {}
    for path in sorted(Path(model_dir).glob("*.safetensors")):
        weights.update(load_file(path))
    runner = worker.model_runner
    reload_in_place([(runner.model, runner.vllm_config.model_config)],
                    lambda: runner.model.load_weights(list(weights.items())))
    return len(weights)


def _inputs(processor):
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (112, 112, 3), dtype=np.uint8))
    frames = rng.integers(0, 255, (4, 112, 112, 3), dtype=np.uint8)
    metadata = {"fps": 2.0, "duration": 2.0, "total_num_frames": 4, "frames_indices": [0, 1, 2, 3],
                "video_backend": "opencv", "do_sample_frames": False}
    cases = []
    for kind, item in (("image", image), ("video", frames)):
        messages = [{"role": "user", "content": [{"type": kind}, {"type": "text", "text": "What moves?"}]}]
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        cases.append((kind, text, item, metadata))
    return cases


def main(model_dir: str, load_format: str, normalize: str | None = None) -> None:
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from vllm import LLM, SamplingParams

    from videoseg_o3_verl.backends.vllm_cpu.server import WORKER_EXTENSION_FQN

    kwargs = {} if normalize is None else {"mm_device_do_normalize": normalize == "true"}
    llm = LLM(model=model_dir, load_format=load_format, dtype="float32", enforce_eager=True, max_model_len=4096,
              seed=0, kv_cache_memory_bytes=2**30, worker_extension_cls=WORKER_EXTENSION_FQN,
              limit_mm_per_prompt={"image": 1, "video": 1}, **kwargs)
    if load_format == "dummy":
        llm.collective_rpc(_load_checkpoint, args=(model_dir,))
    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32).eval()
    result = {}
    for kind, text, item, metadata in _inputs(processor):
        mm = {"image": item} if kind == "image" else {"video": (item, metadata)}
        out = llm.generate({"prompt": text, "multi_modal_data": mm},
                           SamplingParams(max_tokens=8, temperature=1.0, logprobs=0, seed=0, ignore_eos=True),
                           use_tqdm=False)[0].outputs[0]
        vllm_logp = [lp[t].logprob for t, lp in zip(out.token_ids, out.logprobs)]
        hf_metadata = {k: v for k, v in metadata.items() if k != "do_sample_frames"}
        hf_kwargs = {"images": [item]} if kind == "image" else {"videos": [item], "video_metadata": [hf_metadata],
                                                                  "do_sample_frames": False}
        inputs = processor(text=[text], return_tensors="pt", **hf_kwargs)
        prompt_len = inputs["input_ids"].shape[1]
        generated = torch.tensor([list(out.token_ids)])
        inputs["input_ids"] = torch.cat([inputs["input_ids"], generated], dim=1)
        inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
        for key in [k for k in inputs if k.endswith("token_type_ids")]:  # text tokens after the prompt
            inputs[key] = torch.cat([inputs[key], torch.zeros_like(generated)], dim=1)
        with torch.no_grad():
            logits = model(**inputs).logits[0, prompt_len - 1:-1].float()
        hf_logp = torch.log_softmax(logits, -1).gather(-1, generated[0, :, None])[:, 0]
        result[kind] = float((hf_logp - torch.tensor(vllm_logp)).abs().max())
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    os.environ["VLLM_ALLOW_INSECURE_SERIALIZATION"] = "1"  # collective_rpc with a function (the weight load)
    main(*sys.argv[1:])
