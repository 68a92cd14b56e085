# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""`Sam2Scorer` on a tiny random SAM2 (hiera-t, 256 px) and 8 frames of 64 x 80, plus frame loading.

Random weights give no segmentation quality, so these tests check structure (shapes, dtypes, determinism,
independence), agreement with SAM2's own predictors on the same inputs, and that the score numbers equal the
metrics computed directly on the returned masks.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from videoseg_reward.frames import PathNotAllowedError, count_frames, read_frames, resolve_under_roots
from videoseg_reward.masks import encode_masks, frame_ious, keyframe_iou, score_masks
from videoseg_reward.metrics import jf_score
from videoseg_reward.schemas import Prompts, SegmentResult, VideoRef
from videoseg_reward.scorer import Sam2Scorer

T, H, W = 8, 64, 80
FRAMES = [0, 2, 3, 5, 7]
KEYFRAME = 3


def _prompts(kind: str, n: int = 2) -> Prompts:
    rng = np.random.default_rng(1)
    if kind == "embedding":
        return Prompts.from_embeddings(rng.normal(size=(n, 256)).astype(np.float32))
    if kind == "box":
        return Prompts.from_boxes([[8, 16, 40, 40], [40, 4, 76, 30]][:n])
    if kind == "points":
        return Prompts.from_points([[[20, 28], [60, 50]], [[50, 10], [10, 10]]][:n], [[1, 0], [1, -1]][:n])
    masks = np.zeros((n, H, W), bool)
    masks[0, 16:40, 20:44] = True
    if n > 1:
        masks[1, 40:60, 50:76] = True
    return Prompts.from_masks(masks)


@pytest.mark.parametrize("mode", ["image", "propagate"])
@pytest.mark.parametrize("kind", ["embedding", "box", "points", "mask"])
def test_scorer_segment_shapes_and_determinism(shared_scorer, video, mode, kind):
    prompts = _prompts(kind)
    a = shared_scorer.segment(video, prompts, mode, KEYFRAME, FRAMES)
    b = shared_scorer.segment(video, prompts, mode, KEYFRAME, FRAMES)
    assert a.masks.shape == (2, len(FRAMES), H, W) and a.masks.dtype == np.bool_
    assert a.keyframe_masks.shape == (2, H, W) and a.keyframe_masks.dtype == np.bool_
    assert (a.frame_indices, a.keyframe, a.mode, a.model_version) == (tuple(FRAMES), KEYFRAME, mode, 0)
    np.testing.assert_array_equal(a.masks, b.masks)                       # deterministic on CPU
    np.testing.assert_array_equal(a.keyframe_masks, a.masks[:, FRAMES.index(KEYFRAME)])
    # each object is decoded on its own: object 0 alone gives the same masks as within the pair
    single = shared_scorer.segment(video, prompts.select(0), mode, KEYFRAME, FRAMES)
    np.testing.assert_array_equal(single.masks[0], a.masks[0])


def test_scorer_image_mode_frames_are_independent(shared_scorer, video):
    # image mode has no memory: frame 5 decodes the same alone, among all frames, and whatever the keyframe
    prompts = _prompts("embedding")
    full = shared_scorer.segment(video, prompts, "image", KEYFRAME)
    alone = shared_scorer.segment(video, prompts, "image", 0, [5])
    assert full.frame_indices == tuple(range(T))
    np.testing.assert_array_equal(alone.masks[:, 0], full.masks[:, 5])


def test_scorer_mask_prompt_round_trip(shared_scorer, video):
    prompts = _prompts("mask", n=1)
    for mode in ("image", "propagate"):
        out = shared_scorer.segment(video, prompts, mode, KEYFRAME, [KEYFRAME])
        # on the keyframe the mask prompt is taken as the answer (SAM2's mask-as-output convention); the
        # 24x24 square survives the 64x80 -> 256x256 -> 64x64 -> 64x80 resampling almost unchanged
        assert keyframe_iou(out.keyframe_masks[0], prompts.masks[0]) > 0.95, mode


def test_scorer_embedding_prompt_follows_spec(shared_scorer, video):
    # docs/method.md §1: sparse prompt [padding-point embedding, e] ([n, 2, 256]), no-mask dense prompt, 3 masks
    seen = {}

    def grab(_module, _args, kwargs):
        seen.update(kwargs)

    prompts = _prompts("embedding")
    handle = shared_scorer.model.sam_mask_decoder.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        shared_scorer.segment(video, prompts, "image", KEYFRAME, [KEYFRAME])
    finally:
        handle.remove()
    sparse = seen["sparse_prompt_embeddings"]
    enc = shared_scorer.model.sam_prompt_encoder
    assert sparse.shape == (2, 2, 256) and seen["multimask_output"] is True
    torch.testing.assert_close(sparse[:, 0], enc.not_a_point_embed.weight.expand(2, -1))
    torch.testing.assert_close(sparse[:, 1], torch.from_numpy(prompts.embeddings))
    torch.testing.assert_close(seen["dense_prompt_embeddings"][0, :, 0, 0], enc.no_mask_embed.weight[0])


def test_scorer_image_mode_matches_sam2_image_predictor(shared_scorer, video):
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    predictor = SAM2ImagePredictor(shared_scorer.model)
    predictor._bb_feat_sizes = [(64, 64), (32, 32), (16, 16)]  # the class hard-codes the 1024-px sizes
    predictor.set_image(video[KEYFRAME])
    box = shared_scorer.segment(video, Prompts.from_boxes([[8, 16, 40, 40]]), "image", KEYFRAME, [KEYFRAME])
    ref, _, _ = predictor.predict(box=np.array([8, 16, 40, 40]), multimask_output=False)
    np.testing.assert_array_equal(box.masks[0, 0], ref[0] > 0)
    point = shared_scorer.segment(video, Prompts.from_points([[[20, 28]]], [[1]]), "image", KEYFRAME, [KEYFRAME])
    ref, ious, _ = predictor.predict(point_coords=np.array([[20, 28]]), point_labels=np.array([1]))
    np.testing.assert_array_equal(point.masks[0, 0], ref[np.argmax(ious)] > 0)  # one point: best of 3


@pytest.mark.parametrize("kind", ["mask", "box"])
def test_scorer_propagation_matches_sam2_propagate_in_video(shared_scorer, video, kind):
    # Reference: SAM2's public add_new_* + propagate_in_video on a state whose features SAM2 computes itself
    # from the same preprocessed frames (our scorer pre-fills them from its cache and runs its own loop).
    scorer, model = shared_scorer, shared_scorer.model
    prompts = _prompts(kind, n=1)
    ours = scorer.segment(video, prompts, "propagate", KEYFRAME)
    with torch.inference_mode():
        x = torch.from_numpy(video).permute(0, 3, 1, 2).float() / 255
        x = F.interpolate(x, size=(256, 256), mode="bilinear", align_corners=False, antialias=True)
        state = scorer._new_state([None] * T, H, W)
        state["images"], state["cached_features"] = (x - scorer._norm[0]) / scorer._norm[1], {}
        if kind == "mask":
            model.add_new_mask(state, KEYFRAME, 1, torch.from_numpy(prompts.masks[0]))
        else:
            model.add_new_points_or_box(state, KEYFRAME, 1, box=prompts.boxes[0])
        ref = {}
        for reverse in (False, True):
            for f, _, logits in model.propagate_in_video(state, start_frame_idx=KEYFRAME, reverse=reverse):
                ref.setdefault(f, (logits[0, 0] > 0).numpy())
    np.testing.assert_array_equal(ours.masks[0], np.stack([ref[f] for f in range(T)]))


def test_scorer_inject_per_frame_changes_only_tracked_frames(shared_scorer, video):
    prompts = _prompts("embedding")
    plain = shared_scorer.segment(video, prompts, "propagate", KEYFRAME, FRAMES)
    injected = shared_scorer.segment(video, prompts, "propagate", KEYFRAME, FRAMES, inject_per_frame=True)
    np.testing.assert_array_equal(plain.keyframe_masks, injected.keyframe_masks)  # conditioning frame as before
    others = [i for i, f in enumerate(FRAMES) if f != KEYFRAME]
    assert not np.array_equal(plain.masks[:, others], injected.masks[:, others])
    with pytest.raises(ValueError, match="inject_per_frame"):
        shared_scorer.segment(video, _prompts("box"), "propagate", KEYFRAME, FRAMES, inject_per_frame=True)
    with pytest.raises(ValueError, match="inject_per_frame"):
        shared_scorer.segment(video, prompts, "image", KEYFRAME, FRAMES, inject_per_frame=True)


def test_scorer_path_and_array_inputs_agree(shared_scorer, video, video_root):
    prompts = _prompts("box")
    from_array = shared_scorer.segment(video, prompts, "image", KEYFRAME, FRAMES)
    from_path = shared_scorer.segment(video_root / "clip", prompts, "image", KEYFRAME, FRAMES)
    np.testing.assert_array_equal(from_array.masks, from_path.masks)  # PNG frames are lossless
    # explicit frame ids reorder the video: frame i of the reversed list is original frame 7 - i
    ids = tuple(f"{t:05d}" for t in reversed(range(T)))
    reordered = shared_scorer.segment(VideoRef(str(video_root / "clip"), ids), prompts, "image", 7 - KEYFRAME,
                                      [7 - f for f in FRAMES])
    np.testing.assert_array_equal(reordered.masks, from_array.masks)


def test_scorer_feature_cache_reuses_and_evicts(sam2_checkpoint, video, video_tools):
    scorer = Sam2Scorer(sam2_checkpoint, device="cpu", feature_cache_frames=3)
    prompts = _prompts("embedding", n=1)
    scorer.segment(video, prompts, "image", 1, [0, 1])
    assert scorer.stats["encoded_frames"] == 2
    scorer.segment(video, prompts, "propagate", 1, [0, 1])      # both frames cached
    assert scorer.stats["encoded_frames"] == 2
    other = video_tools.make_video(seed=5)
    scorer.segment(other, prompts, "image", 0, [0, 1])          # another video: 2 new frames, cache holds 3
    assert scorer.stats["encoded_frames"] == 4
    scorer.segment(video, prompts, "image", 1, [0, 1])          # frame 0 of the first video was evicted (LRU)
    assert scorer.stats["encoded_frames"] == 5
    assert scorer.prefetch(video, [4, 5]) == 2 and scorer.prefetch(video, [4, 5]) == 0


def test_scorer_update_decoder_weights(sam2_checkpoint, video):
    scorer = Sam2Scorer(sam2_checkpoint, device="cpu")
    prompts = _prompts("embedding")
    before = scorer.segment(video, prompts, "image", KEYFRAME, FRAMES)
    weights = scorer.decoder_state_dict()
    assert weights and all(k.startswith(("sam_prompt_encoder.", "sam_mask_decoder.")) for k in weights)
    # only conv_s0 changes: it is applied inside forward_image, so cached features must be recomputed
    conv = "sam_mask_decoder.conv_s0.weight"
    assert scorer.update_decoder_weights({conv: weights[conv] * 3.0}, version=5) == 5
    after = scorer.segment(video, prompts, "image", KEYFRAME, FRAMES)
    assert scorer.version == 5 and after.model_version == 5
    assert not np.array_equal(before.masks, after.masks)
    bad = [({conv: weights[conv]}, 5, "not newer"),                                      # same version
           ({conv: weights[conv]}, 2, "not newer"),                                      # older version
           ({"image_encoder.neck.convs.0.conv.weight": torch.zeros(1)}, 6, "only keys"),  # frozen encoder
           ({"sam_mask_decoder.nope": torch.zeros(1)}, 6, "unknown keys"),
           ({conv: torch.zeros(3)}, 6, "shape"),
           ({}, 6, "non-empty")]
    for sd, version, message in bad:
        with pytest.raises(ValueError, match=message):
            scorer.update_decoder_weights(sd, version)
    assert scorer.version == 5                                    # rejected updates change nothing
    np.testing.assert_array_equal(scorer.segment(video, prompts, "image", KEYFRAME, FRAMES).masks, after.masks)
    # restoring the original weights restores the original masks
    scorer.update_decoder_weights(weights, version=6)
    np.testing.assert_array_equal(scorer.segment(video, prompts, "image", KEYFRAME, FRAMES).masks, before.masks)


@pytest.mark.parametrize("mode", ["image", "propagate"])
def test_scorer_score_equals_metrics_on_returned_masks(shared_scorer, video, gt_masks, mode):
    prompts = _prompts("box")
    seg = shared_scorer.segment(video, prompts, mode, KEYFRAME, FRAMES)
    gt = gt_masks[FRAMES]
    out = shared_scorer.score(video, prompts, mode, KEYFRAME, gt, FRAMES)
    for o in range(2):
        jf = jf_score(seg.masks[o], gt)
        obj = out["objects"][o]
        assert (obj["J"], obj["F"], obj["J&F"]) == pytest.approx((jf.J, jf.F, jf.JF))
        assert obj["per_frame_iou"] == pytest.approx(frame_ious(seg.masks[o], gt).tolist())
        assert obj["keyframe_iou"] == pytest.approx(keyframe_iou(seg.keyframe_masks[o], gt[FRAMES.index(KEYFRAME)]))
    assert out["J&F"] == pytest.approx((out["objects"][0]["J&F"] + out["objects"][1]["J&F"]) / 2)  # mean of objects
    assert out["keyframe_iou"] == out["objects"][1]["keyframe_iou"]                                 # the LAST object
    # the same GT as per-frame RLEs, or repeated per object, gives identical numbers
    assert shared_scorer.score(video, prompts, mode, KEYFRAME, encode_masks(gt), FRAMES) == out
    assert shared_scorer.score(video, prompts, mode, KEYFRAME, np.stack([gt, gt]), FRAMES) == out


def _result(masks, keyframe_masks, frames, keyframe):
    return SegmentResult(masks=np.asarray(masks, bool), keyframe_masks=np.asarray(keyframe_masks, bool),
                         frame_indices=tuple(frames), keyframe=keyframe, mode="image", model_version=0)


def test_score_masks_conventions_hand_case():
    # one object, 2 frames of 2x2. Frame 0: pred 2 px, GT 1 px inside it -> IoU 1/(2+1e-6). Frame 1: both
    # empty -> per-frame IoU 1 (maskious convention) and J = 1 (DAVIS); the keyframe is frame 1, both empty
    # -> keyframe IoU 0 (keyframe convention).
    pred = np.zeros((1, 2, 2, 2), bool)
    pred[0, 0, 0, :] = True
    gt = np.zeros((2, 2, 2), bool)
    gt[0, 0, 0] = True
    out = score_masks(_result(pred, pred[:, 1], [0, 1], 1), gt)
    assert out["per_frame_iou"] == pytest.approx([1 / (2 + 1e-6), 1.0])
    assert out["keyframe_iou"] == 0.0
    assert out["J"] == pytest.approx((0.5 + 1.0) / 2)             # J per frame: 1/2 and 1 (both empty)
    # keyframe outside the frames: no keyframe IoU unless its GT is given
    outside = _result(pred, np.ones((1, 2, 2)), [0, 1], 5)
    assert score_masks(outside, gt)["keyframe_iou"] is None
    assert score_masks(outside, gt, gt_keyframe=np.ones((2, 2)))["keyframe_iou"] == pytest.approx(4 / (4 + 1e-6))


def test_score_masks_rejects_bad_gt():
    res = _result(np.zeros((1, 2, 2, 2)), np.zeros((1, 2, 2)), [0, 1], 0)
    with pytest.raises(ValueError, match="gt_masks: expected"):
        score_masks(res, np.zeros((3, 2, 2)))                     # 3 frames for 2
    with pytest.raises(ValueError, match="size"):
        score_masks(res, [{"size": [2, 3], "counts": [6]}, None])  # RLE of the wrong frame size
    with pytest.raises(ValueError, match="per-object RLE lists"):
        score_masks(res, [[None, None], [None, None]])            # 2 object lists for 1 object


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"mode": "video"}, "mode"),
    ({"keyframe": 8}, "keyframe"),
    ({"frame_indices": [1, 1]}, "duplicates"),
    ({"frame_indices": [0, 9]}, "out of range"),
    ({"frame_indices": []}, "at least one"),
])
def test_scorer_rejects_bad_arguments(shared_scorer, video, kwargs, message):
    args = {"mode": "image", "keyframe": KEYFRAME, "frame_indices": FRAMES, **kwargs}
    with pytest.raises(ValueError, match=message):
        shared_scorer.segment(video, _prompts("box"), **args)


def test_scorer_rejects_bad_inputs(shared_scorer, video):
    with pytest.raises(ValueError, match="uint8"):
        shared_scorer.segment(video.astype(np.float32), _prompts("box"), "image", 0)
    with pytest.raises(ValueError, match="does not match the frame size"):
        shared_scorer.segment(video, Prompts.from_masks(np.ones((1, 10, 10))), "image", 0)
    with pytest.raises(PathNotAllowedError):
        shared_scorer.segment("/etc", _prompts("box"), "image", 0)


# ---------------------------------------------------------------------------------------------------------------
# Frame loading and path safety
# ---------------------------------------------------------------------------------------------------------------


def test_read_frames_folder_ids_and_video_file(tmp_path, video, video_tools, monkeypatch):
    folder = video_tools.write_frames(tmp_path / "f", video)
    np.testing.assert_array_equal(read_frames(folder), video)
    np.testing.assert_array_equal(read_frames(folder, [5, 1]), video[[5, 1]])
    np.testing.assert_array_equal(read_frames(folder, [0], frame_ids=["00004"]), video[[4]])
    assert count_frames(folder) == T and count_frames(folder, ["00001", "00002.png"]) == 2
    with pytest.raises(FileNotFoundError, match="frame id '00099'"):
        read_frames(folder, frame_ids=["00099"])
    with pytest.raises(ValueError, match="plain file name"):
        read_frames(folder, frame_ids=["../x"])
    with pytest.raises(IndexError, match="out of range"):
        read_frames(folder, [8])
    # an mp4 (lossy): decord and the PyAV fallback both give [T, H, W, 3] uint8 close to the source
    import av

    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for frame in video:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())
    for use_decord in (True, False):
        if not use_decord:
            monkeypatch.setitem(__import__("sys").modules, "decord", None)  # import decord -> ImportError
        frames = read_frames(path, [0, 7])
        assert frames.shape == (2, H, W, 3) and frames.dtype == np.uint8 and count_frames(path) == T
        assert np.abs(frames.astype(float) - video[[0, 7]]).mean() < 12


def test_resolve_under_roots(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "clip").mkdir(parents=True)
    outside.mkdir()
    os.symlink(outside, root / "escape")
    assert resolve_under_roots(root / "clip", [root]) == (root / "clip").resolve()
    assert resolve_under_roots("clip", [root]) == (root / "clip").resolve()  # relative: tried under each root
    for bad in (outside, root / ".." / "outside", "../outside", root / "escape", "/etc/passwd"):
        with pytest.raises(PathNotAllowedError):
            resolve_under_roots(bad, [root])
    with pytest.raises(PathNotAllowedError):
        resolve_under_roots(root / "clip", [])                              # no roots: nothing allowed
    with pytest.raises(FileNotFoundError):
        resolve_under_roots(root / "missing", [root])
    assert resolve_under_roots(outside, None) == outside.resolve()          # None: unchecked library use
