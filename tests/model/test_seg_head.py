# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Tests for the frozen SAM2 frame encoder and the trainable seg head (docs/method.md §1, §6.2).

All SAM2 work uses one tiny random hiera-t at 256 px (image encoder ~0.1-0.3 s/frame on CPU), built once per module.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from PIL import Image
from videoseg_reward.sam2_model import Sam2Meta, build_sam2_model

from videoseg_o3_verl.losses import mask_log_prob
from videoseg_o3_verl.model.frame_encoder import IMAGENET_MEAN, IMAGENET_STD, FrameEncoder, FrameFeatures
from videoseg_o3_verl.model.seg_head import (
    HiddenStandardizer,
    SegHead,
    build_seg_head,
    fold_standardizer,
    seg_head_tiny,
    standardize,
)
from videoseg_o3_verl.verl_ext.engine import _add_at

IMAGE_SIZE = 256  # smallest practical SAM2 input; low-res masks are 256 / 4 = 64 px
MASK = IMAGE_SIZE // 4
HIDDEN = 64  # the tiny Qwen-VL's hidden size


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def sam2_model():
    torch.manual_seed(0)
    return build_sam2_model(Sam2Meta(image_size=IMAGE_SIZE))


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    # 3 non-square frames of random texture, uint8 [K, H, W, 3]
    return np.random.default_rng(0).integers(0, 256, size=(3, 40, 56, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def features(sam2_model, frames) -> FrameFeatures:
    return FrameEncoder.from_sam2(sam2_model).encode(frames)


@pytest.fixture
def encoder(sam2_model) -> FrameEncoder:
    return FrameEncoder.from_sam2(sam2_model, cache_size=2)


@pytest.fixture
def head(sam2_model) -> SegHead:
    torch.manual_seed(1)
    return seg_head_tiny(sam2_model)


def _count_encoder_frames(encoder: FrameEncoder) -> list[int]:
    """Batch sizes seen by the SAM2 image encoder (forward hook)."""
    seen: list[int] = []
    encoder.image_encoder.register_forward_hook(lambda mod, args, out: seen.append(args[0].shape[0]))
    return seen


# --------------------------------------------------------------------------------------------- FrameEncoder


def test_frame_encoder_preprocess_normalises_constant_frame(encoder):
    # a constant frame stays constant under resizing; channel c becomes (v_c / 255 - mean_c) / std_c
    img = np.zeros((1, 30, 70, 3), dtype=np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 255, 0, 128
    x = encoder.preprocess(img)
    assert x.shape == (1, 3, IMAGE_SIZE, IMAGE_SIZE) and x.dtype == torch.float32  # square, no aspect keeping
    expected = [(v / 255 - m) / s for v, m, s in zip((255, 0, 128), IMAGENET_MEAN, IMAGENET_STD)]
    for c in range(3):
        torch.testing.assert_close(x[0, c], torch.full((IMAGE_SIZE, IMAGE_SIZE), expected[c]))


def test_frame_encoder_preprocess_pil_list_equals_array(encoder, frames):
    pil = [Image.fromarray(f) for f in frames]
    torch.testing.assert_close(encoder.preprocess(pil), encoder.preprocess(frames), rtol=0, atol=0)


def test_frame_encoder_matches_sam2_image_predictor(sam2_model, frames, head):
    # SAM2ImagePredictor.set_image is the reference for "image mode, no memory" features. Feed it our preprocessed
    # tensor (its own transforms need torchvision) and compare: the image embedding (with no_mem_embed) must match,
    # and its conv_s0/conv_s1-projected high-res levels must equal ours after the head's (identical, fresh) convs.
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    enc = FrameEncoder.from_sam2(sam2_model)
    x = enc.preprocess(frames[:1])
    pred = SAM2ImagePredictor(sam2_model)
    pred._transforms = lambda image: x[0]
    # the predictor hard-codes the feature sizes of a 1024-px model
    pred._bb_feat_sizes = [(IMAGE_SIZE // 4,) * 2, (IMAGE_SIZE // 8,) * 2, (IMAGE_SIZE // 16,) * 2]
    pred.set_image(frames[0])
    ours = head.project_features(enc.encode(x))
    torch.testing.assert_close(ours.image_embed, pred._features["image_embed"], rtol=0, atol=1e-6)
    for a, b in zip(ours.high_res_feats, pred._features["high_res_feats"], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    # no_mem_embed was really added (random init is non-zero)
    raw = enc.image_encoder(x)["backbone_fpn"][-1]
    assert not torch.allclose(raw, ours.image_embed)


def test_frame_encoder_cache_hits_skip_encoding(encoder, frames):
    seen = _count_encoder_frames(encoder)
    first = encoder.encode(frames[:2], cache_keys=[("v", 0), ("v", 1)])
    assert (encoder.cache_hits, encoder.cache_misses, seen) == (0, 2, [2])
    # ("v", 1) is a hit, ("v", 2) a miss: only one frame goes through the encoder
    second = encoder.encode(frames[1:3], cache_keys=[("v", 1), ("v", 2)])
    assert (encoder.cache_hits, encoder.cache_misses, seen) == (1, 3, [2, 1])
    torch.testing.assert_close(second.image_embed[0], first.image_embed[1], rtol=0, atol=0)
    torch.testing.assert_close(second.high_res_feats[0][0], first.high_res_feats[0][1], rtol=0, atol=0)
    # cache_size = 2: ("v", 0) was the least recently used and is gone
    assert encoder.cached_keys() == [("v", 1), ("v", 2)]
    encoder.clear_cache()
    assert (encoder.cached_keys(), encoder.cache_hits, encoder.cache_misses) == ([], 0, 0)


def test_frame_encoder_duplicate_keys_encoded_once(encoder, frames):
    seen = _count_encoder_frames(encoder)
    feats = encoder.encode(frames[[0, 0, 1]], cache_keys=["a", "a", "b"])
    assert seen == [2] and len(feats) == 3
    torch.testing.assert_close(feats.image_embed[0], feats.image_embed[1], rtol=0, atol=0)


def test_frame_encoder_is_frozen_and_gradient_free(encoder, frames):
    feats = encoder.encode(frames[:1])
    assert not feats.image_embed.requires_grad
    assert all(not t.requires_grad for t in feats.high_res_feats)
    assert all(not p.requires_grad for p in encoder.image_encoder.parameters())


def test_frame_features_select_and_to(features):
    sel = features.select([2, 0, 2])
    assert len(sel) == 3
    torch.testing.assert_close(sel.image_embed[0], features.image_embed[2], rtol=0, atol=0)
    torch.testing.assert_close(sel.high_res_feats[1][1], features.high_res_feats[1][0], rtol=0, atol=0)
    assert len(features[1]) == 1  # an int keeps the frame dimension
    half = features.to(dtype=torch.bfloat16)
    assert half.image_embed.dtype == torch.bfloat16 and half.high_res_feats[0].dtype == torch.bfloat16
    with pytest.raises(IndexError, match="out of range"):
        features.select([3])


# ---------------------------------------------------------------------------------------------------- SegHead


def test_seg_head_shapes(head, features):
    out = head(torch.randn(3, HIDDEN), features)
    assert out.mask_logits.shape == (3, MASK, MASK) and out.mask_logits.dtype == torch.float32
    assert out.iou_pred.shape == (3,) and out.best_index.shape == (3,)
    video = head.decode_on_frames(torch.randn(2, HIDDEN), features)
    assert video.shape == (2, 3, MASK, MASK)


def test_seg_head_empty_batch_keeps_graph(head, features):
    h = torch.zeros(0, HIDDEN, requires_grad=True)
    out = head(h, features.select([]))
    assert out.mask_logits.shape == (0, MASK, MASK)
    out.mask_logits.sum().backward()
    assert h.grad is not None


def test_seg_head_prompt_is_released_sparse_layout(head, features):
    # The released code calls SAM2's prompt encoder with one label -1 point and no box, which yields TWO padding
    # tokens, then appends the projected [SEG] embedding: sparse [N, 3, C]. Rebuild that call by hand and check the
    # head's masks are the same.
    h = torch.randn(2, HIDDEN)
    feats = head.project_features(features.select([0, 1]))
    pe = head.prompt_encoder
    sparse, dense = pe(points=(torch.zeros(2, 1, 2), -torch.ones(2, 1, dtype=torch.int32)), boxes=None, masks=None)
    assert sparse.shape == (2, 2, 256)
    sparse = torch.cat([sparse, head.proj(h)[:, None]], dim=1)  # [2, 3, 256]
    masks, iou, _, _ = head.mask_decoder(image_embeddings=feats.image_embed, image_pe=pe.get_dense_pe(),
                                         sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                         multimask_output=True, repeat_image=False,
                                         high_res_features=list(feats.high_res_feats))
    best = iou.argmax(-1)
    out = head(h, features.select([0, 1]))
    torch.testing.assert_close(out.mask_logits, masks[torch.arange(2), best], rtol=0, atol=1e-6)


def test_seg_head_selects_highest_predicted_iou(head, features):
    # Force the IoU head's output. Column 0 belongs to the single-mask token, which multimask output drops, so its
    # large value 9 must be ignored. Remaining columns -> best multimask index:
    #   row 0: [0.1, 0.9, 0.2] -> 1;  row 1: [0.7, 0.1, 0.3] -> 0;  row 2: [0.1, 0.2, 0.8] -> 2
    forced = torch.tensor([[9, 0.1, 0.9, 0.2], [9, 0.7, 0.1, 0.3], [9, 0.1, 0.2, 0.8]])
    head.mask_decoder.iou_prediction_head.register_forward_hook(lambda mod, args, out: forced.to(out))
    captured = {}
    head.mask_decoder.register_forward_hook(lambda mod, args, out: captured.update(masks=out[0]))
    out = head(torch.randn(3, HIDDEN), features)
    assert out.best_index.tolist() == [1, 0, 2]
    torch.testing.assert_close(out.iou_pred, torch.tensor([0.9, 0.7, 0.8]))
    masks = captured["masks"]  # [3, 3, h, w]: the three multimask outputs
    for n, k in enumerate([1, 0, 2]):
        torch.testing.assert_close(out.mask_logits[n], masks[n, k], rtol=0, atol=0)


def test_seg_head_batch_equals_one_by_one(head, features):
    # N prompts, each on its own frame, must not interact (no repeat_image mix-up)
    h = torch.randn(3, HIDDEN)
    batched = head(h, features).mask_logits
    for n in range(3):
        single = head(h[n:n + 1], features.select([n])).mask_logits
        torch.testing.assert_close(batched[n:n + 1], single, rtol=1e-4, atol=1e-4)


def test_decode_on_frames_equals_pairwise_forward(head, features):
    h = torch.randn(2, HIDDEN)
    video = head.decode_on_frames(h, features)  # [2, 3, h, w]
    for n in range(2):
        for t in range(3):
            pair = head(h[n:n + 1], features.select([t])).mask_logits[0]
            torch.testing.assert_close(video[n, t], pair, rtol=1e-4, atol=1e-4)


def test_seg_head_prompt_changes_mask(head, features):
    # the [SEG] embedding is really used: two different hidden states on the same frame give different masks
    out = head(torch.randn(2, HIDDEN) * 3, features.select([0, 0])).mask_logits
    assert (out[0] - out[1]).abs().max() > 1e-3


def test_projected_encoder_features_give_same_masks(sam2_model, frames, head, features):
    # project_high_res=True applies the (frozen) SAM2 convs in the encoder; the head then skips its own copy.
    # Right after building, both copies are equal, so the masks agree.
    enc = FrameEncoder.from_sam2(sam2_model, project_high_res=True)
    projected = enc.encode(frames)
    assert projected.high_res_projected and projected.high_res_feats[0].shape[1] == 256 // 8
    h = torch.randn(3, HIDDEN)
    torch.testing.assert_close(head(h, projected).mask_logits, head(h, features).mask_logits, rtol=1e-4, atol=1e-4)


def _reinforce_backward(head, encoder, frames, inject: bool):
    """One REINFORCE-style step on a 2-sequence batch with one [SEG] each (docs/method.md §6.2, §6.3)."""
    seg_id = 7
    feats = encoder.encode(frames[:2])
    hidden = torch.randn(2, HIDDEN, requires_grad=True)  # stands in for the LLM's [SEG] hidden states
    token_lp = torch.randn(2, 5, requires_grad=True)  # log-probs of input_ids[:, 1:]
    target_ids = torch.tensor([[1, 2, seg_id, 3, 4], [seg_id, 1, 1, 1, 1]])
    current = head(hidden, feats).mask_logits  # with grad
    rollout = current.detach() + 0.3 * torch.randn_like(current)  # rollout-time logits, no grad
    mlp = mask_log_prob(current, rollout)  # [2]
    flat = torch.nonzero(target_ids.flatten() == seg_id).flatten()  # the [SEG] targets, as the engine indexes them
    lp = _add_at(token_lp.flatten(), flat, mlp).reshape(2, 5) if inject else token_lp
    advantages = torch.tensor([[1.5], [-0.5]])
    (-(advantages * lp).sum()).backward()
    return hidden


def test_calibration_gradient_reaches_proj_and_decoder(head, sam2_model, frames):
    encoder = FrameEncoder.from_sam2(sam2_model)
    hidden = _reinforce_backward(head, encoder, frames, inject=True)
    assert hidden.grad is not None and hidden.grad.abs().sum() > 0  # flows on into the LLM
    for name in ("proj.0.weight", "proj.2.weight", "mask_decoder.transformer.layers.0.self_attn.q_proj.weight",
                 "mask_decoder.output_upscaling.0.weight", "mask_decoder.conv_s0.weight",
                 "mask_decoder.conv_s1.weight", "prompt_encoder.not_a_point_embed.weight",
                 "prompt_encoder.no_mask_embed.weight"):
        grad = head.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name
    # the frozen SAM2 image encoder never sees a gradient
    assert all(p.grad is None for p in encoder.image_encoder.parameters())


def test_no_injection_means_no_head_gradient(head, sam2_model, frames):
    encoder = FrameEncoder.from_sam2(sam2_model)
    _reinforce_backward(head, encoder, frames, inject=False)
    assert all(p.grad is None for p in head.parameters())


def test_seg_head_bf16_weights_and_autocast(head, features):
    h = torch.randn(2, HIDDEN)
    ref = head(h, features.select([0, 1])).mask_logits
    # whole head cast to bf16 (buffers included); inputs are fp32 and get cast inside forward
    half = copy.deepcopy(head).to(torch.bfloat16)
    out = half(h, features.select([0, 1])).mask_logits
    assert out.dtype == torch.float32
    rel = (out - ref).abs().mean() / ref.abs().mean()
    assert rel < 0.05, rel
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out_ac = head(h, features.select([0, 1])).mask_logits
    assert out_ac.dtype == torch.float32
    assert (out_ac - ref).abs().mean() / ref.abs().mean() < 0.05


def test_seg_head_rejects_bad_shapes(head, features):
    with pytest.raises(ValueError, match=r"seg_hidden must be \[N, 64\]"):
        head(torch.randn(3, HIDDEN + 1), features)
    with pytest.raises(ValueError, match="2 prompts but features of 3 frames"):
        head(torch.randn(2, HIDDEN), features)


def test_build_seg_head_copies_and_unfreezes(sam2_model):
    frozen = copy.deepcopy(sam2_model).requires_grad_(False)
    head = build_seg_head(32, frozen)
    assert head.hidden_size == 32 and head.embed_dim == 256
    assert all(p.requires_grad for p in head.parameters())
    with torch.no_grad():
        head.mask_decoder.iou_token.weight.add_(1.0)
    # the SAM2 model keeps its own weights
    assert not torch.equal(head.mask_decoder.iou_token.weight, frozen.sam_mask_decoder.iou_token.weight)
    assert [type(m).__name__ for m in head.proj] == ["Linear", "ReLU", "Linear", "Dropout"]


@pytest.mark.gpu
def test_seg_head_on_cuda_matches_cpu(head, sam2_model, frames):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    h = torch.randn(2, HIDDEN)
    ref = head(h, FrameEncoder.from_sam2(copy.deepcopy(sam2_model)).encode(frames[:2])).mask_logits
    enc = FrameEncoder.from_sam2(copy.deepcopy(sam2_model)).to("cuda")
    feats = enc.encode(frames[:2], cache_keys=["a", "b"])
    assert feats.device.type == "cuda"
    out = copy.deepcopy(head).to("cuda")(h.cuda(), feats).mask_logits
    torch.testing.assert_close(out.cpu(), ref, rtol=1e-3, atol=1e-3)


# --------------------------------------------------------------------------------------- input standardizer


def test_hidden_standardizer_running_statistics_hand_computed():
    norm = HiddenStandardizer(2, momentum=0.5)
    x = torch.tensor([[1.0, 2.0], [3.0, 6.0]], requires_grad=True)
    out = norm(x)  # first batch sets the statistics: mean [2, 4], population var [1, 4]
    torch.testing.assert_close(norm.mean, torch.tensor([2.0, 4.0]))
    torch.testing.assert_close(norm.var, torch.tensor([1.0, 4.0]))
    # (x - mean) / sqrt(var + 1e-5): [[-1, -1], [1, 1]] up to the eps
    torch.testing.assert_close(out, torch.tensor([[-1.0, -1.0], [1.0, 1.0]]), atol=1e-5, rtol=0)
    out.sum().backward()  # an affine map of each row: d out / d x = 1 / sqrt(var + eps)
    torch.testing.assert_close(x.grad, torch.tensor([[1.0, 0.5], [1.0, 0.5]]), atol=1e-5, rtol=0)
    # second batch [[5, 4], [7, 4]]: batch mean [6, 4], var [1, 0]; momentum 0.5 -> mean [4, 4], var [1, 2]
    norm(torch.tensor([[5.0, 4.0], [7.0, 4.0]]))
    torch.testing.assert_close(norm.mean, torch.tensor([4.0, 4.0]))
    torch.testing.assert_close(norm.var, torch.tensor([1.0, 2.0]))
    assert int(norm.count) == 2
    # no update without gradients, in eval mode or from a batch of one
    with torch.no_grad():
        norm(torch.zeros(3, 2))
    norm.eval()(torch.zeros(3, 2))
    norm.train()(torch.zeros(1, 2))
    torch.testing.assert_close(norm.mean, torch.tensor([4.0, 4.0]))
    assert int(norm.count) == 2


def test_fold_standardizer_hand_computed_and_equivalent():
    # W [[1, 2]], b [3], mean [1, 1], var [4, 1], eps 0: s = [2, 1], W' = [[0.5, 2]], b' = 3 - (0.5 + 2) = 0.5
    weight, bias = fold_standardizer(torch.tensor([[1.0, 2.0]]), torch.tensor([3.0]), torch.tensor([1.0, 1.0]),
                                     torch.tensor([4.0, 1.0]), eps=0.0)
    torch.testing.assert_close(weight, torch.tensor([[0.5, 2.0]]))
    torch.testing.assert_close(bias, torch.tensor([0.5]))
    gen = torch.Generator().manual_seed(0)
    w, b, x = torch.randn(5, 4, generator=gen), torch.randn(5, generator=gen), torch.randn(3, 4, generator=gen)
    mean, var = torch.randn(4, generator=gen), torch.rand(4, generator=gen) + 0.1
    folded_w, folded_b = fold_standardizer(w, b, mean, var)
    torch.testing.assert_close(x @ folded_w.T + folded_b, standardize(x, mean, var) @ w.T + b)


def test_input_norm_head_standardizes_before_proj(sam2_model, features):
    assert seg_head_tiny(sam2_model).input_norm is None  # the released head has none
    head = build_seg_head(64, sam2_model, input_norm=True)
    hidden = 5.0 + 0.1 * torch.randn(3, 64)  # one shared vector plus a small per-[SEG] part
    out = head(hidden, features)
    assert int(head.input_norm.count) == 1
    expected = head.proj((hidden - hidden.mean(0)) / torch.sqrt(hidden.var(0, unbiased=False) + 1e-5))
    torch.testing.assert_close(out.embedding, expected)
    out.mask_logits.sum().backward()
    assert head.proj[0].weight.grad is not None and head.input_norm.mean.grad is None
