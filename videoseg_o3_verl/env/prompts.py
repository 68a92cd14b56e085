# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Prompt strings of the VideoSEG-O3 environment, verbatim from docs/method.md §3.1, §3.3 step 5 and §2.3.

Keep these identical to the released code: the cold-start data teaches the policy this exact wording.
"""

SEG_COT_SYS = (
    "You are a helpful assistant. Your ultimate goal is to perform video temporal grounding (VTG) and referring "
    "video object segmentation (RefVOS). Based on the text query and video content, output your thinking process "
    "within <think> and </think> tags. If anything is unclear, you can select frames from the video for a clearer "
    'view by outputting <select>{"start": start, "end": end, "keyframe": keyframe}</select>, where \'start\' and '
    "'end' are the start and end frame indices of the region for detailed analysis, and 'keyframe' is the "
    "corresponding keyframe index. Once the final answer is confirmed, provide it within "
    '<answer><VTG>{"start": start, "end": end, "keyframe": keyframe}</VTG>, <RefSeg></RefSeg></answer>.'
)
"""System prompt (docs/method.md §3.1). Note it shows `<select>{json}</select>`; the parser needs the `<VTG>` form."""

SEG_COT_TEMPORAL_TEMPLATE = (
    '\nThe query is "{question}". Show me your thought process for finding and segmenting this target. '
    "This video has {total_frames} frames.\n"
)
"""Query text of the first user turn in training (leading and trailing newline are part of it)."""

SEG_COT_TEMPORAL_TEMPLATE_EVAL = (
    'The query is "{question}". Show me your thought process for finding and segmenting this target. '
    "This video has {total_frames} frames."
)
"""Query text of the first user turn in evaluation (docs/method.md §3.4: no leading/trailing newline)."""

INITIAL_LOW_RES_TEXT = "\nHere are {n} low-resolution frames in this video (frame indice is {indices})\n"
"""Follows the low-resolution images of the first user turn; `indices` is a Python int list."""

INITIAL_HIGH_RES_TEXT = "Here are {n} high-resolution frames in this video (frame indice:{indices}).\n"
"""Follows the high-resolution images of the first user turn."""

OBS_LOW_RES_TEXT = "\nHere are {n} low-resolution frames in this video (frame indices are {indices})\n"
"""Follows the low-resolution images of a `<select>` observation."""

OBS_KEYFRAME_TEXT = "Here is key frames (frame indice:{keyframe}).\n"
"""Follows the high-resolution keyframe image of a `<select>` observation."""

OBS_CONTINUE_TEXT = (
    "The text query is '{question}'.\n Continue your reasoning process inside <think> and </think>. "
    "If needed, you can continue to select images on the original video, by outputting <select> and </select> "
    "as before. If the final answer is confirmed, put your final answer inside <answer> and </answer>."
)
"""Closing text of a `<select>` observation."""

SEG_TOKEN = "[SEG]"
"""The added special token whose hidden state becomes the SAM2 prompt."""
