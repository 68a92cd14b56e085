# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Tests of observation rendering: first user turn, `<select>` observations, messages, sizes and exact text."""

import pytest
from PIL import Image

from videoseg_o3_verl.env import (
    Action,
    EnvConfig,
    initial_messages,
    initial_user_content,
    parse_action,
    select_observation_content,
    system_message,
)
from videoseg_o3_verl.env.prompts import SEG_COT_SYS
from videoseg_o3_verl.video import VideoSource

QUESTION = "the red car"
CONTINUE = (
    "The text query is 'the red car'.\n Continue your reasoning process inside <think> and </think>. "
    "If needed, you can continue to select images on the original video, by outputting <select> and </select> "
    "as before. If the final answer is confirmed, put your final answer inside <answer> and </answer>."
)


def colour(i: int) -> tuple[int, int, int]:
    return ((i * 7) % 256, (i * 13 + 40) % 256, 255 - i)


class FakeVideo:
    """In-memory frame loader: frame i is a solid colour(i) image; counts get_frames calls."""

    def __init__(self, num_frames: int, size=(600, 400)):
        self.frames = [Image.new("RGB", size, colour(i)) for i in range(num_frames)]
        self.calls = []

    def __len__(self):
        return len(self.frames)

    def get_frames(self, indices):
        self.calls.append(list(indices))
        return [self.frames[i] for i in indices]


def texts(content):
    return [item["text"] for item in content if item["type"] == "text"]


def types(content):
    return [item["type"] for item in content]


def image_colours(content):
    return [item["image"].getpixel((0, 0)) for item in content if item["type"] == "image"]


def test_initial_user_content_train_exact_text_order_and_frames():
    video = FakeVideo(30)
    content, shown = initial_user_content(video, QUESTION, EnvConfig.train())
    # low: linspace(0, 29, 10) = 0, 3.2, 6.4, 9.7, 12.9, 16.1, 19.3, 22.6, 25.8, 29 (floored)
    # high: linspace(0, 29, 5) = 0, 7.25, 14.5, 21.75, 29
    low, high = [0, 3, 6, 9, 12, 16, 19, 22, 25, 29], [0, 7, 14, 21, 29]
    assert types(content) == ["image"] * 10 + ["text"] + ["image"] * 5 + ["text", "text"]
    assert texts(content) == [
        "\nHere are 10 low-resolution frames in this video (frame indice is [0, 3, 6, 9, 12, 16, 19, 22, 25, 29])\n",
        "Here are 5 high-resolution frames in this video (frame indice:[0, 7, 14, 21, 29]).\n",
        '\nThe query is "the red car". Show me your thought process for finding and segmenting this target. '
        "This video has 30 frames.\n",
    ]
    assert image_colours(content) == [colour(i) for i in low + high]  # the right frames, in index order
    assert shown.low_res_indices == low and shown.high_res_indices == high and shown.keyframe is None
    # 600x400 with smart_resize: low budget 25,088 -> beta = sqrt(240000/25088) = 3.093, floor(129.3/28)*28 = 112
    # high, floor(194.0/28)*28 = 168 wide; high budget 100,352 -> beta = 1.546, 252 high, 364 wide.
    assert shown.low_res_sizes == [(168, 112)] * 10
    assert shown.high_res_sizes == [(364, 252)] * 5
    assert [item["image"].size for item in content if item["type"] == "image"] == [(168, 112)] * 10 + [(364, 252)] * 5
    assert len(video.calls) == 1  # one batched decode for both sets
    assert video.calls[0] == sorted(set(low + high))


def test_initial_user_content_eval_exact_text_and_budgets():
    content, shown = initial_user_content(FakeVideo(30), QUESTION, EnvConfig.eval(released_inputs=False))
    low = [0, 1, 3, 4, 6, 7, 9, 10, 12, 13, 15, 16, 18, 19, 21, 22, 24, 25, 27, 29]  # linspace(0, 29, 20)
    high = [0, 4, 8, 12, 16, 20, 24, 29]  # linspace(0, 29, 8), step 4.14
    assert types(content) == ["image"] * 20 + ["text"] + ["image"] * 8 + ["text", "text"]
    assert texts(content) == [
        f"\nHere are 20 low-resolution frames in this video (frame indice is {low})\n",
        "Here are 8 high-resolution frames in this video (frame indice:[0, 4, 8, 12, 16, 20, 24, 29]).\n",
        # eval query text has no leading/trailing newline (docs/method.md §3.4)
        'The query is "the red car". Show me your thought process for finding and segmenting this target. '
        "This video has 30 frames.",
    ]
    assert shown.low_res_indices == low and shown.high_res_indices == high
    # eval high budget 200,704: beta = sqrt(240000/200704) = 1.0935, floor(365.8/28)*28 = 364, floor(548.7/28)*28 = 532
    assert shown.high_res_sizes == [(532, 364)] * 8
    assert shown.low_res_sizes == [(168, 112)] * 20


@pytest.mark.parametrize(
    "num_frames, mode, n_low, n_high",
    [
        (3, "train", 3, 3),  # shorter than both counts: all frames
        (6, "train", 6, 6),  # 6 == 5+1: all frames for the high-res set too (train rule)
        (9, "train", 9, 5),  # 9 <= 10+1: all low-res; 9 > 5+1: 5 high-res
        (8, "eval", 8, 8),  # eval counts 20 / 8: L == 8 shows all
        (9, "eval", 9, 8),  # eval: L > 8 samples 8 high-res frames
        (1, "eval", 1, 1),
    ],
)
def test_initial_user_content_short_videos_show_all_frames(num_frames, mode, n_low, n_high):
    config = EnvConfig.train() if mode == "train" else EnvConfig.eval()
    content, shown = initial_user_content(FakeVideo(num_frames), QUESTION, config)
    assert len(shown.low_res_indices) == n_low and len(shown.high_res_indices) == n_high
    assert texts(content)[0].startswith(f"\nHere are {n_low} low-resolution frames")
    assert texts(content)[1].startswith(f"Here are {n_high} high-resolution frames")
    assert types(content).count("image") == n_low + n_high


@pytest.mark.parametrize("factor", [28, 32])
@pytest.mark.parametrize("size", [(1280, 720), (64, 48), (500, 1400)])
def test_initial_user_content_sizes_are_factor_multiples_within_budget(factor, size):
    config = EnvConfig.train(patch_factor=factor)
    _, shown = initial_user_content(FakeVideo(12, size=size), QUESTION, config)
    for sizes, lo, hi in [
        (shown.low_res_sizes, config.low_res_min_pixels, config.low_res_max_pixels),
        (shown.high_res_sizes, config.high_res_min_pixels, config.high_res_max_pixels),
    ]:
        for w, h in sizes:
            assert w % factor == 0 and h % factor == 0
            assert lo <= w * h <= hi


def test_initial_user_content_limit_rule_is_unsnapped():
    config = EnvConfig.eval(released_inputs=False, initial_resize="limit")
    _, shown = initial_user_content(FakeVideo(30), QUESTION, config)
    # area-limit rescale: 600x400 -> int(193.99) x int(129.33) for low; 200,704 -> int(548.7) x int(365.8) for high
    assert shown.low_res_sizes == [(193, 129)] * 20
    assert shown.high_res_sizes == [(548, 365)] * 8


def test_select_observation_content_exact_text_frames_and_sizes():
    video = FakeVideo(30)
    action = parse_action('<select><VTG>{"start": 10, "end": 20, "keyframe": 15}</VTG></select>', 30)
    content, shown = select_observation_content(video, action, QUESTION, EnvConfig.train())
    temporal = [10, 12, 15, 17, 20]  # linspace(10, 20, 5) = 10, 12.5, 15, 17.5, 20 (11 frames > 5)
    assert types(content) == ["image"] * 5 + ["text", "image", "text", "text"]
    assert texts(content) == [
        "\nHere are 5 low-resolution frames in this video (frame indices are [10, 12, 15, 17, 20])\n",
        "Here is key frames (frame indice:15).\n",
        CONTINUE,
    ]
    assert image_colours(content) == [colour(i) for i in temporal + [15]]
    assert shown.low_res_indices == temporal and shown.high_res_indices == [15] and shown.keyframe == 15
    # area-limit rescale of 600x400: low 25,088 -> (193, 129); keyframe 200,704 (train) -> (548, 365)
    assert shown.low_res_sizes == [(193, 129)] * 5
    assert shown.high_res_sizes == [(548, 365)]
    assert len(video.calls) == 1 and video.calls[0] == [10, 12, 15, 17, 20]


def test_select_observation_content_eval_keyframe_budget_and_short_interval():
    video = FakeVideo(30)
    action = Action(kind="select", start=3, end=4, keyframe=0)  # keyframe outside the interval is fine
    content, shown = select_observation_content(video, action, QUESTION, EnvConfig.eval(released_inputs=False))
    assert texts(content)[:2] == [
        "\nHere are 2 low-resolution frames in this video (frame indices are [3, 4])\n",
        "Here is key frames (frame indice:0).\n",
    ]
    assert image_colours(content) == [colour(3), colour(4), colour(0)]
    # 240,000 px is within the eval keyframe budget (401,408): shown at the original size
    assert shown.high_res_sizes == [(600, 400)]


@pytest.mark.parametrize(
    "action",
    [
        Action(kind="answer", start=0, end=3, keyframe=1),
        Action(kind="invalid", reason="x"),
        Action(kind="select", start=5, end=30, keyframe=1),  # end beyond L-1 = 29
        Action(kind="select", start=5, end=4, keyframe=4),
        Action(kind="select", start=0, end=4, keyframe=30),
        Action(kind="select"),
    ],
)
def test_select_observation_content_rejects_non_select_or_out_of_range(action):
    with pytest.raises(ValueError, match="select"):
        select_observation_content(FakeVideo(30), action, QUESTION, EnvConfig.train())


def test_initial_messages_and_system_message():
    video = FakeVideo(30)
    messages = initial_messages(video, QUESTION, EnvConfig.train())
    assert system_message() == {"role": "system", "content": SEG_COT_SYS}
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"] == SEG_COT_SYS
    content, _ = initial_user_content(video, QUESTION, EnvConfig.train())
    assert texts(messages[1]["content"]) == texts(content)
    assert types(messages[1]["content"]) == types(content)


def test_observations_from_a_real_frame_folder(tmp_path):
    # 7 PNG frames 80x60 (4,800 px, inside [3136, 25088]): select frames are shown at their original size.
    for i in range(7):
        Image.new("RGB", (80, 60), colour(i)).save(tmp_path / f"{i * 5:05d}.png")
    src = VideoSource.open(tmp_path, frame_ids=[f"{i * 5:05d}" for i in range(7)])
    content, shown = initial_user_content(src, QUESTION, EnvConfig.train())
    # L = 7 <= 10+1: all 7 low-res frames; 7 > 5+1: high-res linspace(0, 6, 5) = 0, 1.5, 3, 4.5, 6
    assert shown.low_res_indices == list(range(7)) and shown.high_res_indices == [0, 1, 3, 4, 6]
    assert image_colours(content) == [colour(i) for i in list(range(7)) + [0, 1, 3, 4, 6]]
    content, shown = select_observation_content(src, parse_action(
        '<select><VTG>{"start": 1, "end": 6, "keyframe": 2}</VTG></select>', len(src)), QUESTION, EnvConfig.train())
    assert shown.low_res_indices == [1, 2, 3, 4, 6]  # 6 frames > 5: linspace(1, 6, 5) = 1, 2.25, 3.5, 4.75, 6
    assert shown.low_res_sizes == [(80, 60)] * 5 and shown.high_res_sizes == [(80, 60)]
    assert image_colours(content) == [colour(i) for i in [1, 2, 3, 4, 6, 2]]


def test_frame_labels_name_each_low_resolution_image():
    """`frame_labels` (the learning demo) writes "Frame k: " before each low-res image, in the first turn and after a
    `<select>`; the high-res images and every other text stay as released."""
    video = FakeVideo(30)
    config = EnvConfig.train(frame_labels=True)
    content, _ = initial_user_content(video, QUESTION, config)
    plain, _ = initial_user_content(FakeVideo(30), QUESTION, EnvConfig.train())
    low = [0, 3, 6, 9, 12, 16, 19, 22, 25, 29]
    assert types(content) == ["text", "image"] * 10 + ["text"] + ["image"] * 5 + ["text", "text"]
    assert texts(content)[:10] == [f"Frame {i}: " for i in low]
    assert texts(content)[10:] == texts(plain)
    assert image_colours(content) == image_colours(plain)
    action = parse_action('<select><VTG>{"start": 10, "end": 20, "keyframe": 15}</VTG></select>', 30)
    content, _ = select_observation_content(video, action, QUESTION, config)
    assert types(content) == ["text", "image"] * 5 + ["text", "image", "text", "text"]
    assert texts(content)[:5] == ["Frame 10: ", "Frame 12: ", "Frame 15: ", "Frame 17: ", "Frame 20: "]
