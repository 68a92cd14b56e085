# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Unit and property tests for videoseg_o3_verl.losses (docs/method.md §6.2, §6.4)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from videoseg_o3_verl.losses import aux_seg_loss, mask_log_prob, released_aux_loss

LN3 = math.log(3.0)
LOG_HALF = math.log(0.5)
LOG_QUARTER = math.log(0.25)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# ----------------------------------------------------------------------------------------------- mask_log_prob


def test_mask_log_prob_hand_computed_2x2():
    # Same size in and out (2x2 -> grid 2), so resizing is the identity.
    # rollout logits [[1.0, 0.4], [0.6, -5]] -> y = 1[r > 0.5] = [[1, 0], [1, 0]]
    # (0.4 -> 0 although sigmoid(0.4) > 0.5: the threshold is on logits). current z = [[0, ln3], [-ln3, 2]]:
    #   (0,0) y=1 z=0    : log sigma(0)      = log 0.5  = -0.693147
    #   (0,1) y=0 z=ln3  : log(1-0.75)       = log 0.25 = -1.386294
    #   (1,0) y=1 z=-ln3 : log sigma(-ln3)   = log 0.25 = -1.386294
    #   (1,1) y=0 z=2    : log sigma(-2)                = -2.126928
    # mean = -5.592663 / 4 = -1.398166
    z = torch.tensor([[[0.0, LN3], [-LN3, 2.0]]])
    r = torch.tensor([[[1.0, 0.4], [0.6, -5.0]]])
    expected = (LOG_HALF + 2 * LOG_QUARTER + F.logsigmoid(torch.tensor(-2.0)).item()) / 4
    torch.testing.assert_close(mask_log_prob(z, r, grid=2), torch.tensor([expected]))


def test_mask_log_prob_downsamples_by_block_average():
    # 4x4 -> 2x2 bilinear (align_corners=False) samples at input coordinate 0.5 + 2k: the mean of each 2x2 block.
    # current: top-left block all ln3 (mean ln3), the rest 0 -> z32 = [[ln3, 0], [0, 0]]
    # rollout: top-left block all 2 (mean 2 > 0.5 -> 1), the rest -2 -> y = [[1, 0], [0, 0]]
    #   (0,0): log sigma(ln3) = log 0.75; the three others: log(1 - 0.5) = log 0.5
    # mean = (log 0.75 + 3 log 0.5) / 4
    z = torch.zeros(1, 4, 4)
    z[0, :2, :2] = LN3
    r = torch.full((1, 4, 4), -2.0)
    r[0, :2, :2] = 2.0
    expected = (math.log(0.75) + 3 * LOG_HALF) / 4
    torch.testing.assert_close(mask_log_prob(z, r, grid=2), torch.tensor([expected]))


def test_mask_log_prob_rollout_size_may_differ_and_is_detached():
    # rollout 8x8 of constant 3 -> y = 1 everywhere; current 4x4 of 0 -> every pixel log 0.5
    z = torch.zeros(2, 4, 4, requires_grad=True)
    r = torch.full((2, 8, 8), 3.0, requires_grad=True)
    out = mask_log_prob(z, r, grid=2)
    torch.testing.assert_close(out, torch.full((2,), LOG_HALF))
    out.sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert r.grad is None  # the rollout mask is a fixed target


def test_mask_log_prob_empty_batch_returns_empty():
    z = torch.zeros(0, 8, 8, requires_grad=True)
    out = mask_log_prob(z, torch.zeros(0, 8, 8))
    assert out.shape == (0,) and out.dtype == torch.float32
    out.sum().backward()  # the graph is kept
    assert z.grad is not None


def test_mask_log_prob_bf16_input_gives_float32():
    z = torch.zeros(1, 4, 4, dtype=torch.bfloat16)
    out = mask_log_prob(z, torch.ones(1, 4, 4), grid=2)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, torch.tensor([LOG_HALF]))


@pytest.mark.parametrize(
    ("current", "rollout", "match"),
    [
        (torch.zeros(2, 4), torch.zeros(2, 4), r"\[N, h, w\]"),  # 2-D inputs
        (torch.zeros(2, 4, 4), torch.zeros(3, 4, 4), "pair one to one"),  # count mismatch
        (torch.zeros(1, 4, 4, dtype=torch.long), torch.zeros(1, 4, 4), "floating-point"),  # integer logits
    ],
)
def test_mask_log_prob_rejects_bad_shapes(current, rollout, match):
    with pytest.raises((ValueError, TypeError), match=match):
        mask_log_prob(current, rollout)


def test_mask_log_prob_is_nonpositive_and_maximal_on_agreement():
    # property: for random rollout masks the value is <= 0, and among candidate current logits the one that agrees
    # confidently with the binarised rollout mask scores highest (and is ~0).
    r = torch.randn(4, 16, 16) * 3
    y = (F.interpolate(r[:, None], (8, 8), mode="bilinear", align_corners=False)[:, 0] > 0.5).float()
    agree = (y * 2 - 1) * 20.0  # logits +-20 on the 8x8 grid, i.e. sigmoid ~ 1 / ~ 0 where y = 1 / 0
    candidates = [torch.randn(4, 8, 8) * s for s in (0.1, 1.0, 5.0)] + [-agree]
    best = mask_log_prob(agree, r, grid=8)
    assert (best <= 0).all() and (best > -1e-6).all()
    for cand in candidates:
        val = mask_log_prob(cand, r, grid=8)
        assert (val <= 0).all()
        assert (val < best).all()


# -------------------------------------------------------------------------------------------------- aux_seg_loss


def test_aux_seg_loss_hand_computed_with_empty_gt():
    # two masks of 1x2 pixels, logits 0 (sigma 0.5), no resize
    # mask 0, g = [1, 0]: BCE = log 2 = 0.693147; Dice = 1 - (2*0.5 + 1) / (1 + 1 + 1) = 1/3 -> 1.026481
    # mask 1, g = [0, 0] (empty GT is valid): BCE = log 2; Dice = 1 - (0 + 1) / (1 + 0 + 1) = 0.5 -> 1.193147
    # mean over masks = 1.109814
    z = torch.zeros(2, 1, 2)
    g = torch.tensor([[[1, 0]], [[0, 0]]])
    expected = math.log(2) + (1 / 3 + 0.5) / 2
    torch.testing.assert_close(aux_seg_loss(z, g), torch.tensor(expected))


def test_aux_seg_loss_upsamples_constant_logits():
    # a 2x2 constant logit c = ln3 upsampled bilinearly to 4x4 stays ln3 everywhere (sigma 0.75);
    # GT: 4 of 16 pixels on.
    #   BCE = (4 * -log 0.75 + 12 * -log 0.25) / 16
    #   Dice = 1 - (2 * 4 * 0.75 + 1) / (16 * 0.75 + 4 + 1) = 1 - 7 / 17
    z = torch.full((1, 2, 2), LN3)
    g = torch.zeros(1, 4, 4, dtype=torch.bool)
    g[0, 0] = True
    expected = (4 * -math.log(0.75) + 12 * -LOG_QUARTER) / 16 + 1 - 7 / 17
    torch.testing.assert_close(aux_seg_loss(z, g), torch.tensor(expected))


def test_aux_seg_loss_empty_batch_keeps_graph():
    z = torch.zeros(0, 4, 4, requires_grad=True)
    loss = aux_seg_loss(z, torch.zeros(0, 8, 8))
    assert loss.shape == () and loss.item() == 0.0
    loss.backward()
    assert z.grad is not None


def test_aux_seg_loss_near_zero_for_confident_perfect_prediction():
    g = torch.rand(3, 16, 16) > 0.5
    g[0, 8:, :] = True  # non-trivial areas
    z = (g.float() * 2 - 1) * 30.0  # +-30 logits agree with the GT
    # BCE ~ e^-30, Dice = 1 - (2|g| + 1) / (2|g| + 1) up to e^-30 -> ~0
    assert aux_seg_loss(z, g).item() < 1e-6
    # and a wrong confident prediction is much worse
    assert aux_seg_loss(-z, g).item() > 10


def test_aux_seg_loss_decreases_toward_gt():
    # property: moving the logits toward the GT lowers the loss
    g = torch.zeros(1, 8, 8, dtype=torch.bool)
    g[0, 2:6, 2:6] = True
    target = g.float() * 2 - 1
    losses = [aux_seg_loss(target * s, g).item() for s in (0.0, 0.5, 1.0, 2.0, 4.0)]
    assert all(a > b for a, b in zip(losses, losses[1:]))


@pytest.mark.parametrize(
    ("pred", "gt", "match"),
    [
        (torch.zeros(2, 4, 4), torch.zeros(3, 4, 4), "2 predicted masks but 3 GT masks"),
        (torch.zeros(4, 4), torch.zeros(4, 4), r"\[N, h, w\]"),
        (torch.zeros(1, 4, 4), torch.full((1, 4, 4), 0.5), "only 0 and 1"),
    ],
)
def test_aux_seg_loss_rejects_bad_input(pred, gt, match):
    with pytest.raises(ValueError, match=match):
        aux_seg_loss(pred, gt)


# --------------------------------------------------------------------------------------------- released_aux_loss


def test_released_aux_loss_pools_video_and_keyframe_terms_separately():
    # zero logits (sigma 0.5) on 1x2 masks: GT [1, 0] -> log 2 + 1/3 (a); GT [1, 1] -> log 2 + 1 - 3/4 (b)
    # video: 3 masks a, a, b -> L_vid = (2a + b) / 3; keyframe: 1 mask b -> L_kf = b. Total (2a + b) / 3 + b.
    a, b = math.log(2) + 1 / 3, math.log(2) + 0.25
    z = torch.zeros(1, 1, 2)
    on_off, on_on = torch.tensor([[[True, False]]]), torch.tensor([[[True, True]]])
    out = released_aux_loss([z, z, z], [on_off, on_off, on_on], [z[0]], [on_on[0]])
    torch.testing.assert_close(out, torch.tensor((2 * a + b) / 3 + b))


def test_released_aux_loss_rejects_unpaired_or_empty_input():
    z = torch.zeros(1, 1, 2)
    with pytest.raises(ValueError, match="2 video masks for 1 ground truths"):
        released_aux_loss([z, z], [z > 0], [], [])
    with pytest.raises(ValueError, match="no masks"):
        released_aux_loss([], [], [], [])
