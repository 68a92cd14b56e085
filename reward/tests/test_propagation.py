# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The released inference protocol (`propagate_language`) on a tiny random SAM2 (256 px) and 8 frames of 64 x 80.

Random weights give no segmentation quality: these tests check the protocol's structure (one decoder call per
frame, the embedding in every sparse prompt, the output order), its SAM2 settings, and agreement with SAM2's own
``propagate_in_video`` on the same state.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from videoseg_reward.propagation import (
    PROTOCOL_SETTINGS,
    language_protocol,
    logits_to_mask,
    new_inference_state,
    propagate_language,
    track_language,
)

T, H, W = 8, 64, 80


@pytest.fixture(scope="module")
def model(sam2_checkpoint):
    from videoseg_reward.propagation import build_propagation_model

    return build_propagation_model(sam2_checkpoint, device="cpu")


@pytest.fixture(scope="module")
def embedding() -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(1).normal(size=256).astype(np.float32))


class _DecoderSpy:
    """Records the sparse prompt of every mask-decoder call."""

    def __init__(self, model):
        self.sparse: list[torch.Tensor] = []
        self._handle = model.sam_mask_decoder.register_forward_pre_hook(self._grab, with_kwargs=True)

    def _grab(self, _module, _args, kwargs):
        self.sparse.append(kwargs["sparse_prompt_embeddings"].clone())

    def close(self):
        self._handle.remove()


@pytest.mark.parametrize("keyframe", [0, T // 2, T - 1])
def test_one_decoder_call_per_frame_with_the_embedding_injected(model, video, embedding, keyframe):
    spy = _DecoderSpy(model)
    try:
        masks = propagate_language(model, video, keyframe, embedding)
    finally:
        spy.close()
    assert masks.shape == (T, H, W) and masks.dtype == np.bool_
    # one decode per frame (the keyframe is decoded once and reused by both passes), each with the sparse
    # prompt [not-a-point, not-a-point, e]
    assert len(spy.sparse) == T
    pad = model.sam_prompt_encoder.not_a_point_embed.weight[0]
    for sparse in spy.sparse:
        assert sparse.shape == (1, 3, 256)
        torch.testing.assert_close(sparse[0, 2], embedding, rtol=0, atol=0)
        torch.testing.assert_close(sparse[0, :2], pad.expand(2, -1), rtol=0, atol=0)


def test_deterministic_and_control_without_injection_differs(model, video, embedding):
    keyframe = T // 2
    a = propagate_language(model, video, keyframe, embedding)
    b = propagate_language(model, video, keyframe, embedding)
    np.testing.assert_array_equal(a, b)
    spy = _DecoderSpy(model)
    try:
        control = propagate_language(model, video, keyframe, embedding, inject_per_frame=False)
    finally:
        spy.close()
    # control: only the keyframe decode sees e (two tokens on every other frame)
    assert [s.shape[1] for s in spy.sparse] == [3] + [2] * (T - 1)
    np.testing.assert_array_equal(control[keyframe], a[keyframe])
    others = [f for f in range(T) if f != keyframe]
    assert not np.array_equal(control[others], a[others])
    # another embedding changes the masks
    assert not np.array_equal(propagate_language(model, video, keyframe, -embedding), a)


def test_without_memory_every_frame_is_decoded_as_a_keyframe(model, video, embedding):
    spy = _DecoderSpy(model)
    try:
        masks = propagate_language(model, video, T // 2, embedding, memory=False)
    finally:
        spy.close()
    assert masks.shape == (T, H, W) and len(spy.sparse) == T
    assert all(torch.equal(sparse[0, 2], embedding) for sparse in spy.sparse)
    for frame in (0, T // 2, T - 1):  # frame f: the protocol's own mask of f when f is the keyframe
        np.testing.assert_array_equal(masks[frame], propagate_language(model, video, frame, embedding)[frame])
    # the keyframe argument plays no part, and tracking changes the other frames
    np.testing.assert_array_equal(propagate_language(model, video, 0, embedding, memory=False), masks)
    tracked = propagate_language(model, video, T // 2, embedding)
    assert not np.array_equal(np.delete(tracked, T // 2, axis=0), np.delete(masks, T // 2, axis=0))


def _condition_keyframe(model, state, obj_id, keyframe):
    """Reference keyframe step with SAM2's own calls: decode the keyframe as the initial conditioning frame (inside
    ``language_protocol``) and store it where ``propagate_in_video`` looks for conditioning outputs."""
    obj = model._obj_id_to_idx(state, obj_id)
    out, _ = model._run_single_frame_inference(
        inference_state=state, output_dict=state["output_dict_per_obj"][obj], frame_idx=keyframe,
        batch_size=1, is_init_cond_frame=True, point_inputs=None, mask_inputs=None, reverse=False,
        run_mem_encoder=False)
    state["temp_output_dict_per_obj"][obj]["cond_frame_outputs"][keyframe] = out
    return out


def test_output_is_reverse_without_keyframe_then_forward_as_sam2_propagates(model, video, embedding):
    # Reference: the same keyframe conditioning, then SAM2's public propagate_in_video forward and in reverse on
    # one state, assembled as flip(reverse)[:-1] + forward.
    keyframe = 5
    ours = propagate_language(model, video, keyframe, embedding)
    frames = [Image.fromarray(f) for f in video]
    with torch.inference_mode():
        state = new_inference_state(model, _sam_frames(frames, model))
        emb = embedding.reshape(1, 1, -1)
        with language_protocol(model, emb):
            _condition_keyframe(model, state, 7, keyframe)
            forward = [(f, m) for f, _, m in model.propagate_in_video(state, start_frame_idx=keyframe)]
            backward = [(f, m) for f, _, m in model.propagate_in_video(state, start_frame_idx=keyframe, reverse=True)]
    assert [f for f, _ in forward] == [5, 6, 7] and [f for f, _ in backward] == [5, 4, 3, 2, 1, 0]
    assembled = backward[::-1][:-1] + forward
    assert [f for f, _ in assembled] == list(range(T))
    ref = np.stack([logits_to_mask(m, H, W, model.image_size) for _, m in assembled])
    np.testing.assert_array_equal(ours, ref)


def test_reverse_pass_reuses_forward_memories(model, video, embedding):
    # frames before the keyframe come from the reverse pass, which attends to the forward pass's memories: a state
    # that only ran the reverse pass gives different logits right before the keyframe
    keyframe = 4
    emb = embedding.reshape(1, 1, -1)
    frames = _sam_frames([Image.fromarray(f) for f in video], model)
    both = track_language(model, new_inference_state(model, frames), keyframe, emb)
    with torch.inference_mode():
        state = new_inference_state(model, frames)
        with language_protocol(model, emb):
            out = _condition_keyframe(model, state, 0, keyframe)
            reverse_only = {f: m for f, _, m in model.propagate_in_video(state, start_frame_idx=keyframe,
                                                                          reverse=True)}
    assert len(both) == T
    torch.testing.assert_close(both[keyframe], out["pred_masks"])  # the conditioning output itself
    assert not torch.equal(both[keyframe - 1], reverse_only[keyframe - 1])


def test_no_mask_gating_but_pointer_gating(model, video):
    # With the object-score head pushed negative, SAM2's public heads replace the masks by -1024 (empty) and gate
    # the object pointer; inside the protocol the masks stay raw and the pointer is gated the same way.
    head = model.sam_mask_decoder.pred_obj_score_head
    last = head.layers[-1] if hasattr(head, "layers") else head
    with torch.no_grad():
        last.bias -= 50.0
    try:
        feats = torch.randn(1, 256, 16, 16, generator=torch.Generator().manual_seed(0))
        high = [torch.randn(1, 32, 64, 64), torch.randn(1, 64, 32, 32)]
        with torch.inference_mode():
            public = model._forward_sam_heads(feats, high_res_features=high, multimask_output=True)
            with language_protocol(model, None):
                ours = model._forward_sam_heads(feats, high_res_features=high, multimask_output=True)
        assert (public[6] < 0).all()
        assert (public[3] == -1024).all()                 # public: gated masks
        assert (ours[3] != -1024).all()                   # protocol: raw logits
        torch.testing.assert_close(ours[5], public[5])     # the same (gated) object pointer
        torch.testing.assert_close(ours[5], model.no_obj_ptr.expand_as(ours[5]))  # fixed_no_obj_ptr: score<0 -> no_obj
    finally:
        with torch.no_grad():
            last.bias += 50.0


def test_protocol_settings_are_scoped(model, video, embedding):
    model.binarize_mask_from_pts_for_mem_enc, model.fill_hole_area = True, 8
    try:
        seen = {}

        def spy(_module, _args):
            seen.update({k: getattr(model, k) for k in PROTOCOL_SETTINGS})
            seen["patched"] = "_forward_sam_heads" in vars(model)

        handle = model.sam_mask_decoder.register_forward_pre_hook(spy)
        try:
            propagate_language(model, video[:3], 1, embedding)
        finally:
            handle.remove()
        assert seen == {"binarize_mask_from_pts_for_mem_enc": False, "fill_hole_area": 0, "patched": True}
        # restored afterwards: settings, the class's heads, no hooks left on the prompt encoder
        assert (model.binarize_mask_from_pts_for_mem_enc, model.fill_hole_area) == (True, 8)
        assert "_forward_sam_heads" not in vars(model)
        assert not model.sam_prompt_encoder._forward_hooks
    finally:
        model.binarize_mask_from_pts_for_mem_enc, model.fill_hole_area = False, 0


def test_video_object_input_equals_array_input(model, video, embedding):
    class Source:  # VideoSource-like: __len__ + get_frame(i) -> PIL image
        def __len__(self):
            return T

        def get_frame(self, i):
            return Image.fromarray(video[i])

    np.testing.assert_array_equal(propagate_language(model, Source(), 2, embedding),
                                  propagate_language(model, video, 2, embedding.numpy()))


def test_bad_inputs_name_the_problem(model, video, embedding):
    with pytest.raises(ValueError, match="keyframe"):
        propagate_language(model, video, T, embedding)
    with pytest.raises(ValueError, match="embedding"):
        propagate_language(model, video, 0, torch.zeros(128))
    with pytest.raises(ValueError, match="embedding"):
        propagate_language(model, video, 0, torch.full((256,), float("nan")))
    with pytest.raises(ValueError, match="frames"):
        propagate_language(model, video.astype(np.float32), 0, embedding)
    mixed = [video[0], video[1, :32]]
    with pytest.raises(ValueError, match=r"frames\[1\]: size"):
        propagate_language(model, mixed, 0, embedding)


def test_scorer_propagate_language_mode(shared_scorer, video, video_root, embedding):
    from videoseg_reward.schemas import Prompts

    prompts = Prompts.from_embeddings(np.stack([embedding.numpy(), -embedding.numpy()]))
    out = shared_scorer.segment(video_root / "clip", prompts, "propagate_language", 3, [1, 3, 6])
    for o, e in enumerate(prompts.embeddings):
        full = propagate_language(shared_scorer.model, video, 3, e)
        np.testing.assert_array_equal(out.masks[o], full[[1, 3, 6]])
        np.testing.assert_array_equal(out.keyframe_masks[o], full[3])
    with pytest.raises(ValueError, match="embedding prompts"):
        shared_scorer.segment(video, Prompts.from_boxes([[0, 0, 8, 8]]), "propagate_language", 0)


def _sam_frames(frames, model):
    from videoseg_reward.propagation import _SamFrames

    return _SamFrames(frames, int(model.image_size), model.device)


def test_cached_tracking_features_encode_once_and_change_nothing(model, video, embedding):
    from videoseg_reward.propagation import tracking_features

    calls = []
    handle = model.image_encoder.register_forward_hook(lambda _m, args, _out: calls.append(args[0].shape[0]))
    try:
        features = tracking_features(model, video, batch_size=3)
        assert calls == [3, 3, 2]                                # T = 8 frames in batches of 3
        calls.clear()
        for keyframe, other in ((0, embedding), (5, -embedding)):
            cached = propagate_language(model, video, keyframe, other, features=features)
            assert calls == []                                   # tracking with the cache encodes no frame
            np.testing.assert_array_equal(cached, propagate_language(model, video, keyframe, other))
            assert len(calls) == T                               # without it: every frame once
            calls.clear()
    finally:
        handle.remove()
    with pytest.raises(ValueError, match="features"):
        propagate_language(model, video, 0, embedding, features={0: features[0]})
