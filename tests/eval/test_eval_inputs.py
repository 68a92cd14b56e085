# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The eval preset feeds the model what the released eval fed it; `released_inputs=False` gives the clean form."""

import numpy as np
import pytest
from PIL import Image

from videoseg_o3_verl.env import Action, EnvConfig, initial_user_content, select_observation_content
from videoseg_o3_verl.env.observation import render_indices
from videoseg_o3_verl.video.resize import smart_resize

QUESTION = "the red car"
SENTENCE = ('The query is "the red car". Show me your thought process for finding and segmenting this target. '
            "This video has 30 frames.")


class SolidVideo:
    def __init__(self, num_frames: int, size=(600, 400)):
        self.frames = [Image.new("RGB", size, (i, 2 * i, 3 * i)) for i in range(num_frames)]

    def __len__(self):
        return len(self.frames)

    def get_frames(self, indices):
        return [self.frames[i] for i in indices]


def texts(content):
    return [item["text"] for item in content if item["type"] == "text"]


def test_render_indices_matches_numpy2_repr_of_an_int64_list():
    assert render_indices([0, 11, 29], "numpy") == "[np.int64(0), np.int64(11), np.int64(29)]"
    assert render_indices([0, 11, 29], "int") == "[0, 11, 29]"
    assert render_indices([], "numpy") == "[]"
    if int(np.__version__.split(".")[0]) >= 2:  # what the released eval's str(list(ndarray)) prints
        assert render_indices([0, 4, 8], "numpy") == str(list(np.linspace(0, 8, 3, dtype=int)))


def test_eval_preset_defaults_to_released_inputs_with_a_clean_switch():
    released, clean = EnvConfig.eval(), EnvConfig.eval(released_inputs=False)
    assert (released.index_style, released.observation_query, released.initial_resize,
            released.fetch_image_snap) == ("numpy", "sentence", "limit", True)
    assert (clean.index_style, clean.observation_query, clean.initial_resize,
            clean.fetch_image_snap) == ("int", "expression", "smart", False)
    assert EnvConfig.train().index_style == "int" and not EnvConfig.train().fetch_image_snap
    with pytest.raises(ValueError, match="index_style"):
        EnvConfig.eval(index_style="repr")
    with pytest.raises(ValueError, match="observation_query"):
        EnvConfig.eval(observation_query="query")


def test_first_turn_prints_numpy_index_lists_and_snaps_area_limited_frames():
    content, shown = initial_user_content(SolidVideo(30), QUESTION, EnvConfig.eval())
    low = [0, 1, 3, 4, 6, 7, 9, 10, 12, 13, 15, 16, 18, 19, 21, 22, 24, 25, 27, 29]  # linspace(0, 29, 20)
    low_text = ", ".join(f"np.int64({i})" for i in low)
    assert texts(content) == [
        f"\nHere are 20 low-resolution frames in this video (frame indice is [{low_text}])\n",
        "Here are 8 high-resolution frames in this video (frame indice:[np.int64(0), np.int64(4), np.int64(8), "
        "np.int64(12), np.int64(16), np.int64(20), np.int64(24), np.int64(29)]).\n",
        SENTENCE,
    ]
    # 600x400: area-limit to 25,088 px -> int(193.99) x int(129.33) = 193x129, then fetch_image's smart_resize
    # (factor 28): round(129/28)=5 -> 140, round(193/28)=7 -> 196
    assert shown.low_res_sizes == [(196, 140)] * 20
    # high: area-limit to 200,704 px -> 548x365, then round(365/28)=13 -> 364, round(548/28)=20 -> 560
    assert shown.high_res_sizes == [(560, 364)] * 8
    images = [item["image"].size for item in content if item["type"] == "image"]
    assert images == [(196, 140)] * 20 + [(560, 364)] * 8


def test_select_observation_quotes_the_whole_query_sentence_and_numpy_indices():
    action = Action(kind="select", start=3, end=4, keyframe=0)
    content, shown = select_observation_content(SolidVideo(30), action, QUESTION, EnvConfig.eval())
    assert texts(content) == [
        "\nHere are 2 low-resolution frames in this video (frame indices are [np.int64(3), np.int64(4)])\n",
        "Here is key frames (frame indice:0).\n",  # the keyframe is a Python int in the released code
        f"The text query is '{SENTENCE}'.\n Continue your reasoning process inside <think> and </think>. "
        "If needed, you can continue to select images on the original video, by outputting <select> and "
        "</select> as before. If the final answer is confirmed, put your final answer inside <answer> and "
        "</answer>.",
    ]
    # keyframe 600x400 = 240,000 px is inside the 401,408 px budget; fetch_image snaps it to 588x392
    assert shown.high_res_sizes == [(588, 392)]
    assert smart_resize(400, 600, 28, 3136, 16384 * 784) == (392, 588)
    clean, _ = select_observation_content(SolidVideo(30), action, QUESTION, EnvConfig.eval(released_inputs=False))
    assert texts(clean)[2].startswith("The text query is 'the red car'.\n")
