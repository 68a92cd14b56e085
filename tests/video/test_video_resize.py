# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Tests of the LLM resize rules: `smart_resize`, `limit_size` / `resize_to_limit`, `resize_for_llm`."""

import itertools

import pytest
from PIL import Image

from videoseg_o3_verl.video import limit_size, resize_for_llm, resize_to_limit, smart_resize

LOW = (4 * 28 * 28, 32 * 28 * 28)  # (3136, 25088): low-resolution budget, docs/method.md §3.1
HIGH_TRAIN = (4 * 28 * 28, 128 * 28 * 28)  # (3136, 100352)


@pytest.mark.parametrize(
    "height, width, factor, min_pixels, max_pixels, expected",
    [
        # round(480/28)=17 -> 476, round(854/28)=round(30.5)=30 (ties to even) -> 840; 476*840 > 25088, so
        # beta = sqrt(480*854/25088) = 4.042: floor(118.75/28)*28 = 112, floor(211.27/28)*28 = 196.
        (480, 854, 28, *LOW, (112, 196)),
        # beta = sqrt(1080*1920/100352) = 4.546: 1080/beta = 237.6 -> 224, 1920/beta = 422.4 -> 420.
        (1080, 1920, 28, *HIGH_TRAIN, (224, 420)),
        # 48x64 rounds to 56x56 = 3136, which is within [3136, 25088]: no rescale.
        (48, 64, 28, *LOW, (56, 56)),
        # 30x40 rounds to 28x28 = 784 < 3136: beta = sqrt(3136/1200) = 1.617, ceil(48.5/28)*28 = 56,
        # ceil(64.7/28)*28 = 84.
        (30, 40, 28, *LOW, (56, 84)),
        # factor 32: round(400/32)=12 -> 384, round(600/32)=19 -> 608; 384*608 > 25088, beta = sqrt(240000/25088)
        # = 3.093: floor(129.3/32)*32 = 128, floor(194.0/32)*32 = 192.
        (400, 600, 32, *LOW, (128, 192)),
    ],
)
def test_smart_resize_hand_computed(height, width, factor, min_pixels, max_pixels, expected):
    assert smart_resize(height, width, factor, min_pixels, max_pixels) == expected


def test_smart_resize_matches_qwen_vl_utils_on_a_grid():
    qwen_vl_utils = pytest.importorskip("qwen_vl_utils.vision_process")
    sizes = [1, 7, 27, 28, 29, 42, 48, 100, 360, 479, 480, 720, 1080, 1920, 3000]
    budgets = [LOW, HIGH_TRAIN, (3136, 200704), (3136, 401408), (784, 784)]
    checked = 0
    for (h, w), factor, (lo, hi) in itertools.product(itertools.product(sizes, sizes), (28, 32), budgets):
        if max(h, w) / min(h, w) > 200:
            continue
        assert smart_resize(h, w, factor, lo, hi) == qwen_vl_utils.smart_resize(h, w, factor, lo, hi), (h, w, factor)
        checked += 1
    assert checked > 1000  # the grid really ran


def test_smart_resize_defaults_are_4_and_16384_tokens():
    # 10x10 -> 28x28 = 784 < 4*28*28: upscaled to ceil(10*sqrt(31.36)/28)*28 = ceil(56/28)*28 = 56.
    assert smart_resize(10, 10) == (56, 56)
    # 1000x1000 rounds to 1008x1008 = 1,016,064 px, inside [3136, 16384*28*28 = 12,845,056]: no rescale.
    assert smart_resize(1000, 1000) == (1008, 1008)
    # factor 32: 20x30 -> 32x32 = 1024 < 4*32*32 = 4096: beta = sqrt(4096/600) = 2.613,
    # ceil(52.3/32)*32 = 64, ceil(78.4/32)*32 = 96.
    assert smart_resize(20, 30, factor=32) == (64, 96)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(height=10, width=2001), ValueError, "aspect ratio"),  # 200.1 > 200
        (dict(height=100, width=100, min_pixels=5000, max_pixels=4000), ValueError, "max_pixels"),
        (dict(height=0, width=100), ValueError, "height"),
        (dict(height=10.0, width=100), TypeError, "height"),
    ],
)
def test_smart_resize_rejects_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        smart_resize(**kwargs)


@pytest.mark.parametrize(
    "size, bounds, expected",
    [
        # 100*100 = 10,000 px is inside [3136, 25088]: unchanged.
        ((100, 100), LOW, (100, 100)),
        # 600*400 = 240,000 > 25,088: scale = sqrt(25088/240000) = 0.32332 -> int(193.99) = 193, int(129.33) = 129.
        ((600, 400), LOW, (193, 129)),
        # keyframe budget (train): scale = sqrt(200704/240000) = 0.91448 -> int(548.69), int(365.79).
        ((600, 400), (3136, 200704), (548, 365)),
        # keyframe budget (eval) 401,408 > 240,000: unchanged.
        ((600, 400), (3136, 401408), (600, 400)),
        # 40*30 = 1200 < 3136: scale = sqrt(3136/1200) = 1.6166 -> int(64.66) = 64, int(48.50) = 48; int() truncation
        # leaves 3072 px, slightly below min_pixels, exactly as the released rescale does.
        ((40, 30), LOW, (64, 48)),
        # 10000*5 = 50,000 > 25,088: scale = 0.70835 -> width int(7083.5) = 7083, height int(3.54) = 3 -> min side 28.
        ((10000, 5), LOW, (7083, 28)),
    ],
)
def test_limit_size_hand_computed(size, bounds, expected):
    assert limit_size(*size, *bounds) == expected


def test_resize_to_limit_keeps_in_range_image_object_and_uses_bilinear_size():
    img = Image.new("RGB", (100, 100), (10, 20, 30))
    assert resize_to_limit(img, *LOW) is img  # in range: returned as is (no copy, no resample)
    big = Image.new("RGB", (600, 400), (200, 100, 50))
    out = resize_to_limit(big, *LOW)
    assert out.size == (193, 129)  # see test_limit_size_hand_computed
    assert out.getpixel((50, 50)) == (200, 100, 50)  # a solid colour survives the resample
    assert out.width * out.height <= LOW[1]


@pytest.mark.parametrize("factor", [28, 32])
@pytest.mark.parametrize("bounds", [LOW, HIGH_TRAIN, (3136, 200704)])
@pytest.mark.parametrize("size", [(854, 480), (1920, 1080), (64, 48), (300, 1200)])
def test_resize_for_llm_sides_are_factor_multiples_within_budget(factor, bounds, size):
    out = resize_for_llm(Image.new("RGB", size), factor, *bounds)
    w, h = out.size
    assert w % factor == 0 and h % factor == 0
    assert w * h <= bounds[1]
    # Upscaling ceils to the factor, so the area can only reach min_pixels from above.
    assert w * h >= bounds[0]
    assert (h, w) == smart_resize(size[1], size[0], factor, *bounds)
