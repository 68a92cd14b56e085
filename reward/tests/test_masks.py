# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""RLE helpers (strict validation of untrusted input), the docs/method.md §5 IoU conventions, and the schemas' JSON
forms."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as coco
from videoseg_reward.masks import (
    MAX_RLE_PIXELS,
    decode_rle,
    decode_rle_list,
    encode_mask,
    encode_masks,
    frame_ious,
    keyframe_iou,
    rle_counts,
)
from videoseg_reward.schemas import Prompts, prompts_from_json, prompts_to_json, request_from_json


def _random_masks():
    rng = np.random.default_rng(0)
    cases = [np.zeros((5, 7), bool), np.ones((5, 7), bool), np.ones((1, 1), bool), np.zeros((1, 1), bool)]
    for _ in range(20):
        h, w = rng.integers(1, 40, size=2)
        cases.append(rng.random((h, w)) < rng.random())
    return cases


@pytest.mark.parametrize("mask", _random_masks())
def test_rle_round_trip_matches_pycocotools(mask):
    rle = encode_mask(mask)
    assert isinstance(rle["counts"], str) and rle["size"] == list(mask.shape)
    np.testing.assert_array_equal(decode_rle(rle), mask)
    # pycocotools decodes our string to the same mask (the encoding is the standard one)
    np.testing.assert_array_equal(coco.decode({"size": rle["size"], "counts": rle["counts"].encode()}), mask)
    # the uncompressed form (runs) decodes to the same mask too
    size, runs = rle_counts(rle)
    np.testing.assert_array_equal(decode_rle({"size": list(size), "counts": runs}), mask)
    assert sum(runs) == mask.size


def test_rle_counts_hand_case():
    # 3x4 mask with row 1, cols 1-2 set; column-major order: bg 4, fg 1, bg 2, fg 1, bg 4
    mask = np.zeros((3, 4), bool)
    mask[1, 1:3] = True
    assert rle_counts(encode_mask(mask)) == ((3, 4), [4, 1, 2, 1, 4])
    np.testing.assert_array_equal(decode_rle({"size": [3, 4], "counts": [4, 1, 2, 1, 4]}), mask)
    # '<' is chr(48 + 12): a single background run of 12 pixels, i.e. an empty 3x4 mask
    assert rle_counts({"size": [3, 4], "counts": "<"}) == ((3, 4), [12])
    assert not decode_rle({"size": [3, 4], "counts": "<"}).any()


GOOD = {"size": [3, 4], "counts": [4, 1, 2, 1, 4]}


@pytest.mark.parametrize(("rle", "message"), [
    ([4, 1], "expected an RLE dict"),                                       # not a dict
    ({"size": [3, 4]}, "needs both 'size' and 'counts'"),                   # counts missing
    ({"size": [3], "counts": "4"}, "'size' must be [H, W]"),                # one dimension
    ({"size": ["3", 4], "counts": "4"}, "'size' must be [H, W]"),           # string dimension
    ({"size": [True, 4], "counts": "4"}, "'size' must be [H, W]"),          # bool is not an int here
    ({"size": [0, 4], "counts": []}, "must be positive"),
    ({"size": [1 << 14, 1 << 14], "counts": "0"}, "exceeds the limit"),     # 2^28 > MAX_RLE_PIXELS
    ({"size": [3, 4], "counts": 12}, "must be a string or a list"),
    ({"size": [3, 4], "counts": [4.0, 8.0]}, "list of integers"),
    ({"size": [3, 4], "counts": [4, -1, 9]}, "negative run"),
    ({"size": [3, 4], "counts": [4, 1, 2]}, "runs cover 7 pixels"),         # 7 != 12
    ({"size": [3, 4], "counts": "4 1"}, "invalid character"),               # space is below '0'
    ({"size": [3, 4], "counts": "4\x7f"}, "invalid character"),             # above the 64-symbol alphabet
    ({"size": [3, 4], "counts": "4h"}, "truncated"),                        # 'h' has the continuation bit
    ({"size": [3, 4], "counts": "4" + "o" * 13}, "does not fit in 64 bits"),  # 'o' = continuation, 14 groups
])
def test_decode_rle_rejects_malformed_input(rle, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        decode_rle(rle, name="gt")


def test_decode_rle_checks_expected_size_and_names_field():
    with pytest.raises(ValueError, match=r"gt_masks\[2\]: RLE size \[3, 4\] does not match the expected size \[4, 3\]"):
        decode_rle(GOOD, expected_size=(4, 3), name="gt_masks[2]")
    assert MAX_RLE_PIXELS == 1 << 26


def test_decode_rle_list_none_means_empty_frame():
    mask = decode_rle(GOOD)
    out = decode_rle_list([None, GOOD, None])
    assert out.shape == (3, 3, 4)
    assert not out[0].any() and not out[2].any()
    np.testing.assert_array_equal(out[1], mask)
    # all-None needs a size from the caller
    assert decode_rle_list([None, None], expected_size=(2, 2)).shape == (2, 2, 2)
    with pytest.raises(ValueError, match="every entry is None"):
        decode_rle_list([None])
    with pytest.raises(ValueError, match=r"masks\[1\]: RLE size"):
        decode_rle_list([GOOD, {"size": [2, 6], "counts": [12]}])
    with pytest.raises(ValueError, match="expected a list"):
        decode_rle_list(GOOD)


def test_encode_masks_shape_checks():
    assert len(encode_masks(np.zeros((3, 2, 2), bool))) == 3
    with pytest.raises(ValueError, match=r"\[T, H, W\]"):
        encode_masks(np.zeros((2, 2), bool))
    with pytest.raises(ValueError, match=r"\[H, W\]"):
        encode_mask(np.zeros((1, 2, 2), bool))


# ---------------------------------------------------------------------------------------------------------------
# IoU conventions (docs/method.md §5)
# ---------------------------------------------------------------------------------------------------------------


def _frame(pixels, shape=(2, 3)):
    m = np.zeros(shape, bool)
    for y, x in pixels:
        m[y, x] = True
    return m


@pytest.mark.parametrize(("pred", "gt", "expected"), [
    ([], [], 1.0),                                   # both empty: per_round_maskious gives 1
    ([(0, 0)], [], 0.0),                             # 0 / (1 + 1e-6)
    ([], [(0, 0)], 0.0),                             # 0 / (1 + 1e-6)
    ([(0, 0), (0, 1)], [(0, 0)], 1 / (2 + 1e-6)),    # inter 1, union 2
    ([(0, 0)], [(0, 0)], 1 / (1 + 1e-6)),            # identical single pixel: just below 1
])
def test_frame_ious_hand_cases(pred, gt, expected):
    out = frame_ious(_frame(pred)[None], _frame(gt)[None])
    assert out.shape == (1,)
    assert out[0] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("pred", "gt", "expected"), [
    ([], [], 0.0),                                   # both empty: per_round_keyframe_ious gives 0 (0 / 1e-6)
    ([(0, 0)], [], 0.0),
    ([(0, 0), (1, 2)], [(0, 0)], 1 / (2 + 1e-6)),
    ([(0, 0)], [(0, 0)], 1 / (1 + 1e-6)),
])
def test_keyframe_iou_hand_cases(pred, gt, expected):
    assert keyframe_iou(_frame(pred), _frame(gt)) == pytest.approx(expected, abs=1e-12)


def test_iou_shape_errors():
    with pytest.raises(ValueError, match="shapes differ"):
        frame_ious(np.zeros((2, 3, 3)), np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="two \\[H, W\\] masks"):
        keyframe_iou(np.zeros((1, 3, 3)), np.zeros((1, 3, 3)))


# ---------------------------------------------------------------------------------------------------------------
# Prompt / request JSON
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prompts", [
    Prompts.from_embeddings(np.arange(512, dtype=np.float32).reshape(2, 256) / 512),
    Prompts.from_boxes([[1, 2, 10, 20]]),
    Prompts.from_points([[[1, 2], [3, 4]]], [[1, 0]]),
    Prompts.from_masks(_frame([(0, 1), (1, 2)])[None]),
])
def test_prompts_json_round_trip(prompts):
    back = prompts_from_json(prompts_to_json(prompts))
    assert back.kind == prompts.kind and back.num_objects == prompts.num_objects
    for field in ("embeddings", "boxes", "points", "labels", "masks"):
        a, b = getattr(prompts, field), getattr(back, field)
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(("data", "message"), [
    ({"type": "blob"}, "prompts.type"),
    ({"type": "embedding"}, "needs field"),
    ({"type": "embedding", "embeddings": [[0.0] * 255]}, r"\[n, 256\]"),
    ({"type": "embedding", "embeddings": [[0.0] * 256, [0.0] * 10]}, "ragged"),
    ({"type": "embedding", "embeddings": [["a"] * 256]}, "expected numbers"),
    ({"type": "box", "boxes": [[5, 5, 1, 1]]}, "x1 >= x0"),
    ({"type": "points", "points": [[[1, 2]]], "labels": [[2]]}, "labels"),
    ({"type": "points", "points": [[[1, 2]]], "labels": [[-1]]}, "non-padding point"),
    ({"type": "mask", "masks": []}, "non-empty list"),
    ({"type": "mask", "masks": [{"size": [2, 2], "counts": "zz"}]}, r"prompts.masks\[0\]"),
])
def test_prompts_from_json_rejects_bad_input(data, message):
    with pytest.raises(ValueError, match=message):
        prompts_from_json(data)


def test_request_from_json_validates_fields():
    body = {"video": {"path": "clip"}, "prompts": {"type": "box", "boxes": [[0, 0, 4, 4]]}, "mode": "image",
            "keyframe": 2, "frame_indices": [0, 2]}
    req = request_from_json(body, score=False)
    assert (req.video.path, req.mode, req.keyframe, req.frame_indices, req.is_score) == ("clip", "image", 2, (0, 2),
                                                                                        False)
    for change, message in [({"mode": "video"}, "mode"), ({"keyframe": "2"}, "keyframe"),
                            ({"frame_indices": [0, 1.5]}, "frame_indices"), ({"extra": 1}, "unknown field"),
                            ({"inject_per_frame": "yes"}, "inject_per_frame")]:
        with pytest.raises(ValueError, match=message):
            request_from_json({**body, **change}, score=False)
    with pytest.raises(ValueError, match="missing field 'gt_masks'"):
        request_from_json(body, score=True)
