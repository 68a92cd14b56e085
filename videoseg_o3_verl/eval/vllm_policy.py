# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The policy at inference with vLLM generating the turns (`videoseg-o3 eval --backend vllm`).

vLLM receives the same rendered conversation as the Hugging Face path (the processor's chat template, one image pad
per image) with the images as PIL images in its multi-modal input, and expands them with the checkpoint's own
processor settings, as the HF path does (neither passes processor kwargs: the environment has already resized every
image within its pixel bounds). Decoding is greedy with the vision placeholder tokens forbidden, like
`HFPolicy.generate`. vLLM returns no hidden states, so the [SEG] hidden state comes from one forward pass of the
wrapped `HFPolicy`; `seg_hidden` also checks that vLLM and the HF processor tokenised the final context alike.
vLLM is imported only when a `VLLMPolicy` is built.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from PIL import Image

from videoseg_o3_verl.backends.cpu.probe import no_accelerator
from videoseg_o3_verl.backends.vllm_cpu import KV_CACHE_GB, vllm_installed
from videoseg_o3_verl.env import EnvConfig
from videoseg_o3_verl.eval.policy import Generation, HFPolicy

GPU_MEMORY_UTILIZATION = 0.5
"""Share of the GPU vLLM may take (the HF policy for the [SEG] forward pass and SAM2 share the device)."""

SEED = 0
"""vLLM engine seed (decoding is greedy; fixed for reproducible runs)."""


def require_vllm() -> None:
    """Raise a clear error naming the fix when vLLM is not importable."""
    if not vllm_installed():
        raise ImportError("--backend vllm needs vLLM, which is not installed in this environment: on a CPU machine "
                          "run `bash scripts/setup_vllm_venv.sh` and use .venv-vllm/bin/videoseg-o3, on a GPU machine "
                          "`pip install vllm`; or evaluate with --backend hf")


def max_images(env: EnvConfig) -> int:
    """Most images one conversation holds: the first turn's frames, then per `<select>` its low-resolution frames
    and the keyframe (e.g. eval: 20 + 8 + 2 * (5 + 1) = 40)."""
    return env.num_low_res + env.num_high_res + (env.max_turns - 1) * (env.max_frames_per_round + 1)


class VLLMPolicy:
    """Greedy turns from a vLLM engine over `hf`'s checkpoint; the [SEG] hidden state from `hf`."""

    def __init__(self, hf: HFPolicy, model_dir: str, env: EnvConfig, *, dtype: str = "float32") -> None:
        require_vllm()
        if no_accelerator():
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", KV_CACHE_GB)  # GB, read when the engine starts
        from vllm import LLM

        self.hf = hf
        extra = {} if no_accelerator() else {"gpu_memory_utilization": GPU_MEMORY_UTILIZATION}
        self.llm = LLM(model=model_dir, dtype=dtype, enforce_eager=True, seed=SEED,
                       limit_mm_per_prompt={"image": max_images(env), "video": 0}, **extra)
        vocab_size = self.llm.llm_engine.model_config.get_vocab_size()
        suppressed = set(hf.suppress_tokens)
        self.allowed_token_ids = [i for i in range(vocab_size) if i not in suppressed]

    @property
    def hidden_size(self) -> int:
        return self.hf.hidden_size

    def generate(self, messages: list[dict[str, Any]], images: list[Image.Image], max_new_tokens: int) -> Generation:
        from vllm import SamplingParams

        params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens, allowed_token_ids=self.allowed_token_ids,
                                detokenize=False)
        prompt = {"prompt": self.hf.prompt_text(messages)}
        if images:
            prompt["multi_modal_data"] = {"image": list(images)}
        out = self.llm.generate(prompt, params, use_tqdm=False)[0]
        new_ids = list(out.outputs[0].token_ids)
        text = self.hf.processor.batch_decode([new_ids], skip_special_tokens=False)[0].strip()
        return Generation(text=text, prompt_ids=list(out.prompt_token_ids), token_ids=new_ids, images=list(images),
                          messages=list(messages))

    def seg_hidden(self, generation: Generation) -> torch.Tensor | None:
        return self.hf.seg_hidden(generation)

    def turn_seg_hiddens(self, generation: Generation) -> torch.Tensor:
        return self.hf.turn_seg_hiddens(generation)
