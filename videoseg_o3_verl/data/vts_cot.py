# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""VTS-CoT cold-start trajectories built from RVOS ground truth, written as verl multi-turn SFT parquet.

One record → one trajectory of 1–3 assistant turns: 0–2 ``<select>``s (each interval covers frames where the
target is visible, each keyframe is a visible frame), then an ``<answer>`` with the visible interval and the frame
where the target's mask is largest; ``<RefSeg>[SEG]</RefSeg>`` in every turn. The reasoning text is a decoupled
thinking trace (Step 1 temporal, Step 2 spatial, Step 3 linguistic, Action) built from templates filled with what
the ground truth says about the frames shown so far, phrased by a seeded random choice; a ``rewriter`` hook (e.g. a
teacher model) may rewrite it, the action part is never touched.

User turns are rendered by the RL environment itself (:mod:`videoseg_o3_verl.env`: same frames, resolutions,
prompts and observation wording), so SFT and RL see identical inputs.

Row schema (verl's ``MultiTurnSFTDataset`` plus our keys):

- ``messages``: ``[{"role", "content": str}]``: system, user, assistant, (user, assistant)*; every image is one
  ``<image>`` placeholder in the content string, in order.
- ``images``: ``[{"bytes": PNG}]``, one per placeholder, already resized as the environment shows them (PNG:
  lossless, so the pixels are exactly the RL observation's).
- ``data_source``, ``agent_name``, ``ability``: as in the RL parquet.
- ``extra_info``: ``{"index", "videoseg": <record JSON as in the RL parquet>, "videoseg_sft": <JSON of
  :class:`SegSupervision`>}``: the per-turn [SEG] keyframes and the spatial frames for mask supervision.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from videoseg_o3_verl.data.parquet import ABILITY, AGENT_NAME, EXTRA_INFO_KEY
from videoseg_o3_verl.data.records import RVOSRecord
from videoseg_o3_verl.data.rle import rle_area
from videoseg_o3_verl.env import Action, EnvConfig, initial_user_content, select_observation_content, system_message
from videoseg_o3_verl.env.frames import initial_frame_indices
from videoseg_o3_verl.env.prompts import SEG_TOKEN

SFT_INFO_KEY = "videoseg_sft"
"""Key of the :class:`SegSupervision` JSON inside ``extra_info``."""

IMAGE_PLACEHOLDER = "<image>"
"""verl's multi-turn SFT image placeholder (one per image)."""

MAX_SELECTS = 2
"""At most two ``<select>``s: with the final answer, three turns (the RL ``max_turns``)."""

Rewriter = Callable[[str, Mapping[str, Any]], str]
"""``rewriter(think_text, context) -> think_text``: hook for a teacher model to rewrite the reasoning of one turn.
``context`` has ``expression``, ``turn``, ``action`` (``{"kind", "start", "end", "keyframe"}``), ``shown`` (frame
indices seen so far) and ``visible`` (visible frames among them)."""


@dataclass(frozen=True)
class TurnPlan:
    """One assistant action of a built trajectory."""

    kind: str
    """``"select"`` or ``"answer"``."""
    start: int
    """First frame of the interval."""
    end: int
    """Last frame of the interval (inclusive, as the environment reads it)."""
    keyframe: int
    """Keyframe: a frame where the target is visible."""

    def vtg(self) -> str:
        """The strict-JSON VTG body, e.g. ``{"start": 2, "end": 9, "keyframe": 5}``."""
        return json.dumps({"start": self.start, "end": self.end, "keyframe": self.keyframe})


@dataclass(frozen=True)
class SegSupervision:
    """What the SFT mask loss needs per trajectory (stored as JSON in ``extra_info.videoseg_sft``)."""

    seg_keyframes: list[int]
    """Per assistant turn, the frame its [SEG] mask is supervised on: the RL rule (``L // 2`` in turn 0, then the
    keyframe selected in the previous turn)."""
    spatial_frames: list[int]
    """High-resolution frames of the first user turn (the RL "video mask" frames)."""
    actions: list[dict[str, int | str]] = field(default_factory=list)
    """The turns' actions ``{"kind", "start", "end", "keyframe"}``."""
    source: str = "ground_truth"
    """``ground_truth`` (built here) or ``released`` (converted from the authors' VTS-CoT JSON)."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SegSupervision:
        return cls(**json.loads(text))


def sft_info_from_extra_info(extra_info: Mapping[str, Any]) -> SegSupervision:
    """The :class:`SegSupervision` of an SFT row's ``extra_info`` (clear error when it is not an SFT row)."""
    if not isinstance(extra_info, Mapping) or not extra_info.get(SFT_INFO_KEY):
        keys = sorted(extra_info) if isinstance(extra_info, Mapping) else type(extra_info).__name__
        raise ValueError(f"extra_info has no {SFT_INFO_KEY!r} entry (keys: {keys}); was the parquet written by "
                         "`videoseg-o3 vts-cot`?")
    return SegSupervision.from_json(extra_info[SFT_INFO_KEY])


# ---------------------------------------------------------------------------------------------- planning (pure)
def visible_runs(existence: Sequence[int]) -> list[tuple[int, int]]:
    """Maximal runs ``(first, last)`` (inclusive) of visible frames.

    Example:
        >>> visible_runs([0, 1, 1, 0, 1, 0])
        [(1, 2), (4, 4)]
    """
    runs, start = [], None
    for t, v in enumerate(list(existence) + [0]):
        if v and start is None:
            start = t
        elif not v and start is not None:
            runs.append((start, t - 1))
            start = None
    return runs


def _interval_scores(start: int, end: int, existence: Sequence[int]) -> tuple[float, float]:
    """(lr_vtg_iou_dense with parity, without parity) of an answer interval: the reward code decides."""
    from videoseg_reward.terms import lr_vtg_iou_dense

    text = f"<answer><VTG>{TurnPlan('answer', start, end, start).vtg()}</VTG></answer>"
    return (lr_vtg_iou_dense([text], existence, parity=True), lr_vtg_iou_dense([text], existence, parity=False))


def answer_interval(existence: Sequence[int]) -> tuple[int, int]:
    """The visible interval to answer: the span of visible frames, or the visible run that scores best.

    Candidates are the whole visible span and each maximal visible run (a one-frame run is widened by one
    frame, because the released temporal reward needs ``start < end``); the candidate with the best worst-case
    ``lr_vtg_iou_dense`` (released and clean variants) wins, ties going to the longer interval.

    Raises:
        ValueError: the target is never visible or the video has one frame.
    """
    length = len(existence)
    runs = visible_runs(existence)
    if not runs or length < 2:
        raise ValueError(f"no answer interval: {'the target is never visible' if not runs else 'one-frame video'}")
    candidates = [(runs[0][0], runs[-1][1])] + runs
    widened = []
    for s, e in candidates:
        if s == e:
            s, e = (s, s + 1) if s + 1 < length else (s - 1, s)
        widened.append((s, e))
    return max(widened, key=lambda se: (min(_interval_scores(*se, existence)), se[1] - se[0]))


def mask_areas(record: RVOSRecord) -> np.ndarray:
    """Foreground pixels of the target per frame (0 where absent)."""
    return np.array([rle_area(r) if r is not None else 0 for r in record.masks_rle], dtype=np.int64)


def best_keyframe(areas: np.ndarray, start: int, end: int) -> int:
    """The frame in ``[start, end]`` with the largest target mask (first on ties); it is visible when any is."""
    return int(start + int(np.argmax(areas[start: end + 1])))


def plan_trajectory(record: RVOSRecord, rng: np.random.Generator, max_selects: int = MAX_SELECTS) -> list[TurnPlan]:
    """0–``max_selects`` coarse-to-fine selects around the visible interval, then the answer.

    The number of selects is drawn uniformly. Select ``i`` of ``n`` covers the answer interval widened by a
    random margin that shrinks with ``i`` (a coarse look first, a tighter one next), clipped to the video; its
    keyframe is a random visible frame in the interval among those with the largest masks (the last select uses
    the largest one). The answer uses :func:`answer_interval` and the largest-mask frame in it.
    """
    if not 0 <= max_selects <= MAX_SELECTS:
        raise ValueError(f"max_selects must be in [0, {MAX_SELECTS}], got {max_selects}")
    existence = list(record.mask_existence)
    if not existence:
        raise ValueError(f"record {record.name} has no ground truth")
    areas = mask_areas(record)
    start, end = answer_interval(existence)
    length = record.num_frames
    n = int(rng.integers(0, max_selects + 1))
    plans = []
    for i in range(n):
        reach = max(1, (length - 1) // (2 * (i + 1)))
        lo = max(0, start - int(rng.integers(0, reach + 1)))
        hi = min(length - 1, end + int(rng.integers(0, reach + 1)))
        visible = [t for t in range(lo, hi + 1) if existence[t]]
        ranked = sorted(visible, key=lambda t: -areas[t])[: max(1, len(visible) // 3)]
        key = ranked[0] if i == n - 1 else int(rng.choice(ranked))
        plans.append(TurnPlan("select", lo, hi, int(key)))
    plans.append(TurnPlan("answer", start, end, best_keyframe(areas, start, end)))
    return plans


def seg_keyframes(plans: Sequence[TurnPlan], num_frames: int) -> list[int]:
    """The RL rule for the frame each turn's [SEG] is decoded on: ``L // 2``, then the previous select's keyframe."""
    keys = [EnvConfig.turn0_keyframe(num_frames)]
    for plan in plans[:-1]:
        keys.append(plan.keyframe)
    return keys


# ---------------------------------------------------------------------------------------------- reasoning text
_WHERE_H = ("left", "centre", "right")
_WHERE_V = ("top", "middle", "bottom")


def describe_location(record: RVOSRecord, frame: int) -> str:
    """Where and how large the target is in one frame, e.g. ``"small, top-left"`` (from its GT mask)."""
    mask = record.decode_mask(frame)
    if not mask.any():
        return "not visible"
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    col = _WHERE_H[min(2, int(3 * xs.mean() / w))]
    row = _WHERE_V[min(2, int(3 * ys.mean() / h))]
    frac = mask.mean()
    size = "small" if frac < 0.02 else "medium-sized" if frac < 0.15 else "large"
    return f"{size}, {row}-{col}" if (row, col) != ("middle", "centre") else f"{size}, in the centre"


def _ranges(frames: Sequence[int]) -> str:
    """``[1, 2, 3, 7]`` → ``"1-3, 7"``."""
    if not frames:
        return "none"
    parts, start, prev = [], frames[0], frames[0]
    for f in list(frames[1:]) + [None]:
        if f is not None and f == prev + 1:
            prev = f
            continue
        parts.append(f"{start}-{prev}" if prev != start else f"{start}")
        if f is not None:
            start = prev = f
    return ", ".join(parts)


_STEP1 = (
    "Step 1 (temporal): among the frames shown so far ({shown}), the target appears in {visible}.",
    "Step 1 (temporal): I check when the target is present; of frames {shown} it is visible in {visible}.",
    "Step 1 (temporal): looking through frames {shown}, the referred object shows up in {visible}.",
)
_STEP1_NONE = (
    "Step 1 (temporal): none of the frames shown so far ({shown}) clearly contains the target.",
    "Step 1 (temporal): I cannot find the target in frames {shown} yet.",
)
_STEP2 = (
    "Step 2 (spatial): in frame {key} it is {where}.",
    "Step 2 (spatial): frame {key} shows it {where}.",
    "Step 2 (spatial): its clearest view is frame {key}, where it is {where}.",
)
_STEP3 = (
    'Step 3 (linguistic): the query "{exp}" singles out this object among the others.',
    'Step 3 (linguistic): "{exp}" matches this object and no other one in the video.',
    'Step 3 (linguistic): reading the query "{exp}", this is the object it describes.',
)
_ACTION_SELECT = (
    "Action: select frames {start}-{end} with keyframe {key} for a closer look.",
    "Action: zoom into frames {start} to {end}, keyframe {key}, to confirm.",
)
_ACTION_ANSWER = (
    "Action: answer with frames {start}-{end} and keyframe {key}, and segment it.",
    "Action: the evidence is enough; answer frames {start} to {end}, keyframe {key}.",
)


def think_text(record: RVOSRecord, plan: TurnPlan, shown: Sequence[int], rng: np.random.Generator) -> str:
    """The decoupled thinking trace of one turn (Step 1/2/3 + Action), phrased by ``rng``."""
    existence = record.mask_existence
    shown = sorted(set(int(i) for i in shown))
    visible = [t for t in shown if existence[t]]
    pick = lambda options: options[int(rng.integers(0, len(options)))]  # noqa: E731
    step1 = pick(_STEP1 if visible else _STEP1_NONE).format(shown=_ranges(shown), visible=_ranges(visible))
    step2 = pick(_STEP2).format(key=plan.keyframe, where=describe_location(record, plan.keyframe))
    step3 = pick(_STEP3).format(exp=record.expression)
    action = pick(_ACTION_SELECT if plan.kind == "select" else _ACTION_ANSWER).format(
        start=plan.start, end=plan.end, key=plan.keyframe)
    return " ".join((step1, step2, step3, action))


THINK_STYLES = ("full", "short", "grounded")
"""Reasoning styles: ``full`` = the phrased trace above; ``short`` = :func:`short_think_text` and ``grounded`` =
:func:`grounded_think_text` (tiny policies)."""


def short_think_text(record: RVOSRecord, plan: TurnPlan, shown: Sequence[int]) -> str:
    """The compact trace for tiny policies (the learning demo): the same four steps, one fixed phrasing, the
    visible frames spelled out first so that the action's numbers follow from them.

    Example (target visible in frames 3-4, all 8 frames shown, answer 3-4 with keyframe 3):
        ``Step 1: seen in 3, 4. Step 2: frame 3. Step 3: it matches the query. Action: answer.``
    """
    return _compact_trace(record, plan, shown, "it matches the query")


def _compact_trace(record: RVOSRecord, plan: TurnPlan, shown: Sequence[int], step3: str) -> str:
    """The compact four-step trace with ``step3`` as its third step."""
    visible = [t for t in sorted(set(int(i) for i in shown)) if record.mask_existence[t]]
    seen = ", ".join(str(t) for t in visible) if visible else "none"
    return f"Step 1: seen in {seen}. Step 2: frame {plan.keyframe}. Step 3: {step3}. Action: {plan.kind}."


def grounded_think_text(record: RVOSRecord, plan: TurnPlan, shown: Sequence[int]) -> str:
    """:func:`short_think_text` whose step 3 names the object (the query), as the phrased trace does, so the tokens
    just before the answer's ``[SEG]`` say what to segment.

    Example (target "the red object", visible in frames 3-4, all 8 frames shown, answer 3-4 with keyframe 3):
        ``Step 1: seen in 3, 4. Step 2: frame 3. Step 3: the red object. Action: answer.``
    """
    return _compact_trace(record, plan, shown, record.expression)


def think_for(style: str, record: RVOSRecord, plan: TurnPlan, shown: Sequence[int], rng: np.random.Generator) -> str:
    """The reasoning text of one turn in ``style`` (one of :data:`THINK_STYLES`)."""
    if style == "full":
        return think_text(record, plan, shown, rng)
    if style == "short":
        return short_think_text(record, plan, shown)
    return grounded_think_text(record, plan, shown)


def turn_text(think: str, plan: TurnPlan) -> str:
    """``<think>…</think><select|answer><VTG>{…}</VTG>, <RefSeg>[SEG]</RefSeg></select|answer>``."""
    for tag in ("<think>", "</think>", "<select>", "</select>", "<answer>", "</answer>", "<VTG>", "<RefSeg>"):
        if tag in think:
            raise ValueError(f"reasoning text must not contain the tag {tag!r}: {think[:80]!r}")
    return (f"<think>{think}</think><{plan.kind}><VTG>{plan.vtg()}</VTG>, "
            f"<RefSeg>{SEG_TOKEN}</RefSeg></{plan.kind}>")


# ---------------------------------------------------------------------------------------------- rendering
def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def content_to_text(content: Sequence[Mapping[str, Any]], images: list[dict[str, bytes]]) -> str:
    """An environment content list as one string with ``<image>`` placeholders; appends the images (PNG)."""
    parts = []
    for item in content:
        if item.get("type") == "image":
            parts.append(IMAGE_PLACEHOLDER)
            images.append({"bytes": png_bytes(item["image"])})
        elif item.get("type") == "text":
            if IMAGE_PLACEHOLDER in item["text"]:
                raise ValueError(f"text contains the image placeholder {IMAGE_PLACEHOLDER!r}: {item['text'][:80]!r}")
            parts.append(item["text"])
        else:
            raise ValueError(f"unknown content item type {item.get('type')!r}")
    return "".join(parts)


@dataclass
class SFTSample:
    """One built trajectory before serialisation."""

    record: RVOSRecord
    messages: list[dict[str, str]]
    images: list[dict[str, bytes]]
    supervision: SegSupervision

    @property
    def assistant_turns(self) -> list[str]:
        return [m["content"] for m in self.messages if m["role"] == "assistant"]

    def to_row(self, index: int) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "images": self.images,
            "data_source": self.record.dataset,
            "agent_name": AGENT_NAME,
            "ability": ABILITY,
            "extra_info": {"index": int(index), EXTRA_INFO_KEY: self.record.to_json(),
                           SFT_INFO_KEY: self.supervision.to_json()},
        }


def build_trajectory(record: RVOSRecord, video, env: EnvConfig, rng: np.random.Generator,
                     max_selects: int = MAX_SELECTS, rewriter: Rewriter | None = None,
                     think_style: str = "full") -> SFTSample:
    """The VTS-CoT trajectory of one record, its observations rendered by the RL environment.

    Args:
        record: an RVOS record with ground truth and at least one visible frame.
        video: its frames (``VideoSource`` or any ``FrameLoader``).
        env: the environment constants of the RL run (``EnvConfig.train(patch_factor=...)``).
        rng: randomness of the plan and of the phrasing.
        max_selects: most ``<select>`` turns (0–2, and < ``env.max_turns``).
        rewriter: optional hook rewriting each turn's reasoning text.
        think_style: ``full`` (phrased trace), ``short`` (:func:`short_think_text`) or ``grounded``
            (:func:`grounded_think_text`).
    """
    if think_style not in THINK_STYLES:
        raise ValueError(f"think_style must be one of {THINK_STYLES}, got {think_style!r}")
    if len(video) != record.num_frames:
        raise ValueError(f"{record.name}: the video has {len(video)} frames, the record {record.num_frames}")
    plans = plan_trajectory(record, rng, min(max_selects, env.max_turns - 1))
    images: list[dict[str, bytes]] = []
    content, shown = initial_user_content(video, record.expression, env)
    messages = [system_message(), {"role": "user", "content": content_to_text(content, images)}]
    seen = list(shown.low_res_indices) + list(shown.high_res_indices)
    for turn, plan in enumerate(plans):
        think = think_for(think_style, record, plan, seen, rng)
        if rewriter is not None:
            shown_so_far = sorted(set(seen))
            context = {"expression": record.expression, "turn": turn, "action": asdict(plan), "shown": shown_so_far,
                       "visible": [t for t in shown_so_far if record.mask_existence[t]]}
            think = rewriter(think, context)
        messages.append({"role": "assistant", "content": turn_text(think, plan)})
        if plan.kind == "select":
            action = Action(kind="select", start=plan.start, end=plan.end, keyframe=plan.keyframe)
            content, shown = select_observation_content(video, action, record.expression, env)
            messages.append({"role": "user", "content": content_to_text(content, images)})
            seen += list(shown.low_res_indices) + [plan.keyframe]
    supervision = SegSupervision(
        seg_keyframes=seg_keyframes(plans, record.num_frames),
        spatial_frames=initial_frame_indices(record.num_frames, env.num_high_res, env.mode),
        actions=[asdict(p) for p in plans])
    return SFTSample(record=record, messages=messages, images=images, supervision=supervision)


# ---------------------------------------------------------------------------------------------- files
@dataclass(frozen=True)
class BuildResult:
    """What :func:`build_vts_cot` wrote."""

    path: str
    """The SFT parquet."""
    num_rows: int
    """Trajectories written."""
    skipped: dict[str, int]
    """Records left out, by reason (no ground truth, target never visible, one-frame video)."""
    turn_histogram: dict[int, int]
    """Number of trajectories per number of assistant turns."""


def write_sft_parquet(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> str:
    """Write SFT rows (``SFTSample.to_row``) to a parquet file."""
    import pandas as pd

    path = os.fspath(path)
    if not path.endswith(".parquet"):
        raise ValueError(f"output path must end with '.parquet', got {path!r}")
    if not rows:
        raise ValueError(f"no trajectories to write to {path}")
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    pd.DataFrame(list(rows)).to_parquet(path, index=False, engine="pyarrow")
    return path


def build_vts_cot(data: str | os.PathLike, out: str | os.PathLike, *, seed: int = 0, max_selects: int = MAX_SELECTS,
                  env: EnvConfig | None = None, rewriter: Rewriter | None = None, limit: int | None = None,
                  progress: Callable[..., Iterable[Any]] | None = None, think_style: str = "full") -> BuildResult:
    """Build VTS-CoT trajectories for every record of an RL parquet (the ``videoseg-o3 vts-cot`` verb).

    Records without ground truth, whose target is never visible, or with a single frame are skipped (counted in
    the result). Row ``i`` uses ``np.random.default_rng([seed, i])``, so a row does not depend on the others.
    """
    from videoseg_o3_verl.data.parquet import read_parquet_records
    from videoseg_o3_verl.video import VideoSource

    env = env or EnvConfig.train()
    records = read_parquet_records(data)[:limit] if limit else read_parquet_records(data)
    rows, skipped, turns = [], {}, {}
    iterator = progress(records, total=len(records), desc="vts-cot") if progress else records
    for i, record in enumerate(iterator):
        reason = None
        if not record.has_ground_truth:
            reason = "no ground truth"
        elif not any(record.mask_existence):
            reason = "target never visible"
        elif record.num_frames < 2:
            reason = "one-frame video"
        if reason:
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        video = VideoSource.open(record.video_path, frame_ids=list(record.frame_ids) or None)
        sample = build_trajectory(record, video, env, np.random.default_rng([seed, i]), max_selects, rewriter,
                                  think_style)
        n = len(sample.assistant_turns)
        turns[n] = turns.get(n, 0) + 1
        rows.append(sample.to_row(len(rows)))
    path = write_sft_parquet(rows, out)
    return BuildResult(path=path, num_rows=len(rows), skipped=skipped, turn_histogram=dict(sorted(turns.items())))
