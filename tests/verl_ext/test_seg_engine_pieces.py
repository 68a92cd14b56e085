# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The pieces of the seg-head engine that can be checked without a Ray cluster: the calibration gradient path
(seg head -> mask log-prob -> [SEG] log-prob -> policy gradient), the weight-sync filter and the loss wrapper."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from videoseg_o3_verl.verl_ext.engine import _add_at, _replace_embeddings
from videoseg_o3_verl.verl_ext.seg_batch import calibration_log_probs, calibration_targets
from videoseg_o3_verl.verl_ext.seg_loss import add_response_aligned, nested_like, videoseg_loss
from videoseg_o3_verl.verl_ext.weight_sync import HEAD_ATTR, without_head


@pytest.fixture(scope="module")
def head_and_features(tiny_sam2_path):
    from videoseg_reward.sam2_model import load_sam2_model

    from videoseg_o3_verl.model.frame_encoder import FrameEncoder
    from videoseg_o3_verl.model.seg_head import build_seg_head

    sam2 = load_sam2_model(tiny_sam2_path)
    head = build_seg_head(64, sam2)
    _replace_embeddings(head)  # as the engine does before FSDP wrapping
    encoder = FrameEncoder.from_sam2(sam2)
    images = [Image.new("RGB", (80, 64), color) for color in ((200, 30, 30), (30, 30, 200))]
    return head, encoder.encode(images)


def _policy_gradient_through_seg(head, features, calibration: bool):
    """Two sequences of 6 tokens, [SEG] targets at positions 2 and 4; returns grads after a REINFORCE step."""
    head.zero_grad(set_to_none=True)
    seg_hidden = torch.randn(2, 64, requires_grad=True)  # the LLM's hidden states at the [SEG] inputs
    key_logits = head(seg_hidden, features).mask_logits  # [2, h, w]
    targets = calibration_targets(key_logits, grid=32, threshold=0.5)  # rollout masks (old pass)
    mask_logp = calibration_log_probs(key_logits, targets, grid=32)  # [2]
    injected = mask_logp if calibration else mask_logp * 0
    token_logp = torch.nested.as_nested_tensor([torch.full((6,), -1.0), torch.full((6,), -2.0)], layout=torch.jagged)
    index = torch.tensor([2, 6 + 4])  # flat positions of the [SEG] targets
    calibrated = nested_like(token_logp, _add_at(token_logp.values(), index, injected))
    advantages = torch.tensor([1.0, -0.5])
    loss = -(advantages[:, None] * calibrated.to_padded_tensor(0.0)).sum()
    loss.backward()
    return calibrated, mask_logp, seg_hidden.grad


def test_calibration_on_sends_policy_gradient_into_decoder_and_projection(head_and_features):
    head, features = head_and_features
    calibrated, mask_logp, hidden_grad = _policy_gradient_through_seg(head, features, calibration=True)
    values = calibrated.values()
    torch.testing.assert_close(values[2], torch.tensor(-1.0) + mask_logp[0].detach())
    torch.testing.assert_close(values[10], torch.tensor(-2.0) + mask_logp[1].detach())
    assert values[0] == -1.0 and values[11] == -2.0  # nothing else moves
    assert head.proj[0].weight.grad.abs().sum() > 0
    decoder_grads = [p.grad for p in head.mask_decoder.parameters() if p.grad is not None]
    assert decoder_grads and sum(float(g.abs().sum()) for g in decoder_grads) > 0
    assert hidden_grad.abs().sum() > 0  # and further into the LLM through the [SEG] hidden states


def test_calibration_off_sends_no_gradient_into_the_head(head_and_features):
    head, features = head_and_features
    _, _, hidden_grad = _policy_gradient_through_seg(head, features, calibration=False)
    for param in head.parameters():
        assert param.grad is None or float(param.grad.abs().sum()) == 0.0
    assert float(hidden_grad.abs().sum()) == 0.0


def test_weight_sync_filter_sends_exactly_the_plain_qwen_vl_names(tiny_qwen25_path, head_and_features):
    from transformers import AutoModelForImageTextToText

    plain = AutoModelForImageTextToText.from_pretrained(tiny_qwen25_path)
    names = set(plain.state_dict())
    policy = AutoModelForImageTextToText.from_pretrained(tiny_qwen25_path)
    setattr(policy, HEAD_ATTR, head_and_features[0])
    sent = [name for name, _ in without_head(iter(policy.state_dict().items()))]
    assert len(policy.state_dict()) > len(names)  # the head is in the trained module ...
    assert set(sent) == names and len(sent) == len(names)  # ... and never reaches the rollout


def test_add_response_aligned_nested_and_dense():
    ref = torch.nested.as_nested_tensor([torch.zeros(3), torch.zeros(2)], layout=torch.jagged)
    padded = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 9.0]])
    out = add_response_aligned(ref, padded)
    assert [t.tolist() for t in out.unbind()] == [[0.0, 1.0, 2.0], [3.0, 4.0]]
    dense = add_response_aligned(torch.zeros(2, 3), padded)
    assert dense.tolist() == padded.tolist()


def test_videoseg_loss_adds_scaled_aux_and_shifts_ref_by_the_injection():
    from tensordict import TensorDict
    from verl.utils import tensordict_utils as tu

    seen = {}

    def inner(model_output, data, dp_group=None):
        seen["ref"] = data["ref_log_prob"]
        return torch.tensor(1.0), {}

    # one sample: prompt 2 tokens + response 3 tokens; log-prob element i targets token i+1, so the response's
    # log-probs are elements 1..3; an injection of 0.5 at element 2 lands on response position 1
    injection = torch.nested.as_nested_tensor([torch.tensor([0.0, 0.0, 0.5, 0.0, 0.0])], layout=torch.jagged)
    data = TensorDict({"prompts": torch.nested.as_nested_tensor([torch.zeros(2)], layout=torch.jagged),
                       "responses": torch.nested.as_nested_tensor([torch.zeros(3)], layout=torch.jagged),
                       "ref_log_prob": torch.nested.as_nested_tensor([torch.zeros(3)], layout=torch.jagged)},
                      batch_size=[1])
    tu.assign_non_tensor_data(data, "global_batch_size", 4)
    tu.assign_non_tensor_data(data, "dp_size", 2)
    output = {"log_probs": injection, "_videoseg_injection": injection, "_videoseg_aux": torch.tensor([2.0])}
    loss, metrics = videoseg_loss(inner, output, data, aux_ratio=0.2)
    assert seen["ref"].unbind()[0].tolist() == [0.0, 0.5, 0.0]
    # 1 + 0.2 * (sum of per-sample aux 2.0 / global batch 4 * dp 2) = 1.2
    assert float(loss) == pytest.approx(1.2)
    assert metrics["videoseg/aux_loss"] == 2.0
    assert "_videoseg_aux" not in output  # private keys never reach verl's output post-processing


def test_engine_seg_head_fresh_with_input_norm_then_loaded_as_saved(tiny_sam2_path, tmp_path):
    """A fresh head follows ``[videoseg_o3.seg_head.input_norm]``; a head given by ``path`` keeps what it was saved
    with, its statistics frozen unless ``input_norm_momentum`` moves them; a wrong hidden size is refused."""
    from videoseg_o3_verl.config import load_videoseg_config
    from videoseg_o3_verl.model.seg_head_io import save_seg_head
    from videoseg_o3_verl.verl_ext.engine import engine_seg_head

    def settings(**seg_head):
        return load_videoseg_config({"videoseg_o3": {"sam2": {"checkpoint": str(tiny_sam2_path)},
                                                     "seg_head": seg_head}})

    assert engine_seg_head(settings(), 64)[0].input_norm is None
    head, _ = engine_seg_head(settings(input_norm=True), 64)
    assert head.input_norm is not None
    head.input_norm.update(torch.randn(6, 64))  # the cold start's statistics
    save_seg_head(head, tmp_path, sam2_checkpoint=tiny_sam2_path, hidden_size=64)
    loaded = engine_seg_head(settings(path=str(tmp_path)), 64)[0]
    assert loaded.input_norm is not None and loaded.input_norm.momentum == 0.0  # by default the statistics stay
    before = loaded.input_norm.mean.clone()
    loaded.embed(torch.randn(4, 64, requires_grad=True))
    assert torch.equal(loaded.input_norm.mean, before)
    # with input_norm_momentum they follow the training forwards' [SEG] states: mean <- 0.75 mean + 0.25 batch mean
    following = engine_seg_head(settings(path=str(tmp_path), input_norm_momentum=0.25), 64)[0]
    batch = torch.randn(4, 64) + 3.0
    following.embed(batch.clone().requires_grad_(True))
    torch.testing.assert_close(following.input_norm.mean, 0.75 * before + 0.25 * batch.mean(0))
    with pytest.raises(ValueError, match=r"input_norm_momentum must be in \[0, 1\], got 1.5"):
        settings(input_norm_momentum=1.5).validate()
    with pytest.raises(ValueError, match=r"seg_head.path\] head expects hidden size 64, the policy has 32"):
        engine_seg_head(settings(path=str(tmp_path)), 32)
