# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The HF generation engine behind the ``hf`` rollout backend: sampling parameters, log-probs, multimodal
inputs, vision-token suppression, weight loading and scripted replies."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from videoseg_o3_verl.backends.cpu.hf_engine import HFGenerationEngine, SamplingRequest, collapse_runs
from videoseg_o3_verl.backends.cpu.scripted import ScriptedResponses


@pytest.fixture(scope="module")
def engine(tiny_qwen25_path):
    return HFGenerationEngine(str(tiny_qwen25_path))


def _image_prompt(engine, n_images=1, text="Which colour?"):
    images = [Image.fromarray(np.random.default_rng(i).integers(0, 255, (56, 84, 3), dtype=np.uint8))
              for i in range(n_images)]
    content = [{"type": "image", "image": img} for img in images] + [{"type": "text", "text": text}]
    messages = [{"role": "user", "content": content}]
    text = engine.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = engine.processor(text=[text], images=images, return_tensors="pt")["input_ids"][0].tolist()
    return ids, images


def test_sampling_request_max_tokens_rule():
    # no explicit max: min(response_length, prompt_length + response_length - len(prompt)) = min(16, 64+16-70) = 10
    req = SamplingRequest.from_verl({"temperature": 0.9}, prompt_len=70, prompt_length=64, response_length=16,
                                    max_model_len=None)
    assert req.max_tokens == 10 and req.temperature == 0.9
    # explicit max_tokens is clamped to the room left in the context (80 - 75 = 5)
    req = SamplingRequest.from_verl({"max_tokens": 50}, prompt_len=75, prompt_length=64, response_length=16,
                                    max_model_len=80)
    assert req.max_tokens == 5
    with pytest.raises(ValueError, match="no room"):
        SamplingRequest.from_verl({}, prompt_len=80, prompt_length=64, response_length=16, max_model_len=80)


def test_collapse_runs_merges_consecutive_pads_only():
    assert collapse_runs([1, 9, 9, 9, 2, 9, 3], 9) == [1, 9, 2, 9, 3]


def test_generate_log_probs_match_teacher_forced_scores(engine):
    ids, images = _image_prompt(engine, n_images=2)
    tokens, log_probs = engine.generate(ids, SamplingRequest(max_tokens=12, temperature=0.7, logprobs=True, seed=3),
                                        image_data=images)
    assert 1 <= len(tokens) <= 12 and len(log_probs) == len(tokens)
    rescored = engine.score(ids, tokens, temperature=0.7, image_data=images)
    np.testing.assert_allclose(log_probs, rescored, atol=1e-4)
    assert all(lp <= 0 for lp in log_probs)


def test_generate_top_k_one_equals_greedy(engine):
    ids, images = _image_prompt(engine)
    greedy, _ = engine.generate(ids, SamplingRequest(max_tokens=8, temperature=0.0), image_data=images)
    top1, _ = engine.generate(ids, SamplingRequest(max_tokens=8, temperature=1.3, top_k=1, seed=5), image_data=images)
    assert greedy == top1


def _ranks(engine, ids, images, tokens) -> list[int]:
    """Rank of each generated token among the unsuppressed vocabulary under the teacher-forced logits."""
    inputs = engine._multimodal_inputs(ids, images, None, None)
    if "mm_token_type_ids" in inputs:
        mm = inputs["mm_token_type_ids"]
        inputs["mm_token_type_ids"] = torch.cat([mm, mm.new_zeros((1, len(tokens)))], dim=1)
    full = torch.tensor([ids + tokens])
    with torch.no_grad():
        logits = engine.model(input_ids=full, attention_mask=torch.ones_like(full), **inputs).logits[0].float()
    logits = logits[len(ids) - 1: len(ids) - 1 + len(tokens)]
    logits[:, engine.vision_token_ids] = -float("inf")
    picked = logits.gather(-1, torch.tensor(tokens)[:, None])
    return (logits > picked).sum(-1).tolist()


def test_generate_honours_top_k(engine):
    # the paper recipes' top_k = 50 arrives through verl's sampling params; at temperature 5 a random tiny model is
    # close to uniform over its vocabulary, so without top-k nearly every token lies outside the top 50
    ids, images = _image_prompt(engine)
    request = SamplingRequest.from_verl({"temperature": 5.0, "top_p": 1.0, "top_k": 50, "seed": 7}, prompt_len=len(ids),
                                        prompt_length=4096, response_length=16, max_model_len=None)
    assert request.top_k == 50
    tokens, _ = engine.generate(ids, request, image_data=images)
    assert len(tokens) >= 4 and max(_ranks(engine, ids, images, tokens)) < 50
    unlimited, _ = engine.generate(ids, SamplingRequest(max_tokens=16, temperature=5.0, top_k=-1, seed=7),
                                   image_data=images)
    assert max(_ranks(engine, ids, images, unlimited)) >= 50


def test_generate_is_seeded(engine):
    ids, images = _image_prompt(engine)
    a, _ = engine.generate(ids, SamplingRequest(max_tokens=10, temperature=1.0, seed=11), image_data=images)
    b, _ = engine.generate(ids, SamplingRequest(max_tokens=10, temperature=1.0, seed=11), image_data=images)
    assert a == b


def test_generate_stops_at_eos_and_never_samples_vision_tokens(tiny_qwen25_path):
    engine = HFGenerationEngine(str(tiny_qwen25_path))
    image_pad = engine.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    eos = engine.tokenizer.convert_tokens_to_ids("<|im_end|>")
    vocab = engine.model.config.get_text_config().vocab_size
    boost = torch.nn.functional.one_hot(torch.tensor(image_pad), vocab) * 1e4 \
        + torch.nn.functional.one_hot(torch.tensor(eos), vocab) * 5e3
    # make <|image_pad|> overwhelmingly likely and <|im_end|> the runner-up
    engine.model.lm_head.register_forward_hook(lambda module, inputs, out: out + boost)
    ids, images = _image_prompt(engine)
    tokens, _ = engine.generate(ids, SamplingRequest(max_tokens=8, temperature=1.0, seed=0), image_data=images)
    assert image_pad not in tokens
    assert tokens == [eos], "generation must stop right after the end-of-turn token"


def test_generate_rejects_mismatched_vision_placeholders(engine):
    ids, images = _image_prompt(engine, n_images=1)
    with pytest.raises(ValueError, match="do not match"):
        engine.generate(ids, SamplingRequest(max_tokens=4), image_data=images * 2)


def test_generate_video_input(engine):
    frames = torch.from_numpy(np.random.default_rng(0).integers(0, 255, (4, 3, 56, 56), dtype=np.uint8))
    messages = [{"role": "user", "content": [{"type": "video", "video": frames}, {"type": "text", "text": "what?"}]}]
    text = engine.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    processed = engine.processor(text=[text], videos=[frames], return_tensors="pt", do_sample_frames=False)
    ids = processed["input_ids"][0].tolist()
    assert ids.count(engine.tokenizer.convert_tokens_to_ids("<|video_pad|>")) > 1
    tokens, log_probs = engine.generate(ids, SamplingRequest(max_tokens=6, logprobs=True, seed=1), video_data=[frames])
    assert len(tokens) == len(log_probs) >= 1


def test_load_weights_replaces_all_and_rejects_partial(tiny_qwen25_path):
    engine = HFGenerationEngine(str(tiny_qwen25_path))
    state = {k: torch.zeros_like(v) for k, v in engine.model.state_dict().items()}
    result = engine.load_weights({**state, "seg_head.proj.weight": torch.ones(2)})
    assert result["unexpected"] == ["seg_head.proj.weight"]
    assert all(float(v.abs().max()) == 0 for v in engine.model.state_dict().values())
    state.pop(next(iter(state)))
    with pytest.raises(ValueError, match="does not cover 1"):
        engine.load_weights(state)


def test_scripted_responses_pick_by_turn_and_match(tmp_path):
    path = tmp_path / "script.json"
    path.write_text(json.dumps({"rules": [{"turn": 0, "match": "red", "response": "<select>x</select>"},
                                          {"turn": 1, "response": "<answer>y</answer><|im_end|>"}]}))
    script = ScriptedResponses.load(path)
    first = "<|im_start|>user\nfind the red one<|im_end|>\n<|im_start|>assistant\n"
    assert script.pick(first) == "<select>x</select><|im_end|>"
    assert script.pick(first.replace("red", "blue")) is None
    second = first + "<select>x</select><|im_end|>\n<|im_start|>user\nmore<|im_end|>\n<|im_start|>assistant\n"
    assert script.pick(second) == "<answer>y</answer><|im_end|>"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="malformed"):
        ScriptedResponses.load(path)
