# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Synthetic RVOS data: the project's embedded default dataset (no download needed).

`generate_synthetic_dataset` writes videos of moving coloured shapes in the ReVOS (default) or MeViS on-disk
layout — JPEG frames, an RLE `mask_dict.json`, `meta_expressions*.json` with `type_id` — so the data goes through
the real `revos` / `mevis` converters (registered as the `synthetic` converter too).

Content of one video (everything drawn with numpy from one seeded generator, so the same seed gives
byte-identical files):
- a plain background colour with mild uniform pixel noise;
- 2 to 4 objects, each a unique (colour, shape) pair — shapes circle/square/triangle, colours red, green, blue,
  yellow, purple, orange — moving linearly and bouncing off the frame borders;
- object 0 is visible in the whole video; others may leave early, enter late, or be visible only in the middle.
  Later objects are drawn over earlier ones, and masks are the exact VISIBLE pixels (occlusion included).

The ``grounding`` preset (``preset="grounding"``) is built so that a tiny policy can
learn where to look: a black background; 3 solid squares in distinct saturated colours, each inside its own
quadrant of the frame (with 56×56 frames a quadrant is one 28-px merged visual token of Qwen-VL); every object is
visible in its own short window (2 frames) only, so a fixed guess of the keyframe or interval scores low; one
expression per object, naming its colour ("the red object"). The ``grounding_shared`` preset is the same task with
one window shared by all three objects (the learning demo's default): the frames to look at are the frames with
objects in them, and every one of them shows the two distractors beside the target, so a mask that is not the named
object's is penalised on every supervised frame (a head blind to the colour is best off predicting nothing).

Expressions of the default ``shapes`` preset are derived from the exact masks and kept only when they pick out a
unique target:
- referring (`type_id` 0): "the red square" (+ " moving left" when the object keeps one direction while
  visible), "the yellow shape" (its colour is unique but its shape is not), "all the circles" (several
  objects), "the shape moving up" (unique direction);
- reasoning (`type_id` 1): "the object that is visible only in the second half of the video" (or first half),
  "the shape that enters after the blue circle leaves", "the object that appears last", "the object that
  disappears first", "the fastest-moving object".

A sidecar `synthetic_objects_<split>.json` records the objects and, per expression, its kind and target obj_ids
(tests use it; converters ignore it).

Dimension letters: `T` frames, `H`, `W` frame size in pixels.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from videoseg_o3_verl.data.rle import encode_mask

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 210, 40),
    "purple": (150, 60, 190),
    "orange": (245, 140, 30),
}
"""Object colours (RGB)."""

SHAPES = ("circle", "square", "triangle")
"""Object shapes."""

GROUNDING_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "cyan": (0, 255, 255),
    "magenta": (255, 0, 255),
}
"""Saturated colours of the ``grounding`` preset (RGB)."""

PRESETS = ("shapes", "grounding", "grounding_shared")
"""Content presets: moving shapes with referring/reasoning queries, or the learnable colour-grounding task with a
window per object or one window shared by all objects."""

GROUNDING_PRESETS = ("grounding", "grounding_shared")
"""The colour-grounding presets (`_make_grounding_objects`)."""

PRESET_DEFAULTS: dict[str, dict[str, int]] = {
    "shapes": {"num_frames": 24, "height": 96, "width": 128, "noise": 6},
    **dict.fromkeys(GROUNDING_PRESETS, {"num_frames": 8, "height": 56, "width": 56, "noise": 0}),
}
"""Default video size and noise per preset (the grounding presets: 56×56 frames = 4 merged visual tokens per frame)."""

GROUNDING_OBJECTS = 3
"""Objects per ``grounding`` video (one per quadrant, a fourth quadrant stays empty)."""

GROUNDING_WINDOW = 2
"""Frames in which each object of a ``grounding`` video is visible."""

LAYOUTS = ("revos", "mevis")
"""On-disk layouts `generate_synthetic_dataset` can write."""


@dataclass(frozen=True, eq=False)
class SyntheticObject:
    """One moving shape of a synthetic video."""

    obj_id: int
    """Object id within the video (1-based, also the draw order)."""

    anno_id: int
    """Key of the object's masks in `mask_dict.json` (unique across the dataset)."""

    colour: str
    """Colour name (key of `COLOURS`)."""

    shape: str
    """"circle", "square" or "triangle"."""

    radius: float
    """Half-size of the shape in pixels."""

    speed: float
    """Speed in pixels per frame."""

    centres: np.ndarray
    """[T, 2] float (x, y) centre per frame in pixels."""

    first: int
    """First frame in which the object is drawn."""

    last: int
    """Last frame in which the object is drawn (inclusive)."""

    direction: str | None
    """"left"/"right"/"up"/"down" when it keeps that dominant direction (no bounce) while drawn, else None."""


@dataclass(frozen=True)
class SyntheticDataset:
    """What `generate_synthetic_dataset` wrote."""

    root: str
    """Dataset root folder."""

    layout: str
    """"revos" or "mevis"."""

    splits: tuple[str, ...]
    """Splits written."""

    num_videos: int
    """Videos per split."""

    num_expressions: int
    """Expressions over all splits."""

    files: tuple[str, ...]
    """Annotation files written (meta expressions, mask dicts, sidecars)."""


def _trajectory(
    rng: np.random.Generator, t_len: int, h: int, w: int, r: float
) -> tuple[np.ndarray, float, np.ndarray, list[list[int]]]:
    """Linear motion with border bounces.

    Returns:
        centres: [T, 2] float (x, y) per frame; speed in px/frame; v0: [2] initial velocity;
        bounces: per axis (x, y) the frames b whose motion from b-1 to b was reflected.
    """
    lo = np.array([r, r])
    hi = np.array([w - 1 - r, h - 1 - r])
    pos = lo + rng.random(2) * np.maximum(hi - lo, 0)
    angle = rng.uniform(0, 2 * np.pi)
    speed = rng.uniform(0.3, 1.2) * max(h, w) / max(t_len, 1)
    vel = speed * np.array([np.cos(angle), np.sin(angle)])
    centres = np.zeros((t_len, 2))
    bounces: list[list[int]] = [[], []]
    v0 = vel.copy()
    for t in range(t_len):
        centres[t] = pos
        pos = pos + vel
        for a in range(2):
            if hi[a] <= lo[a]:
                pos[a] = (lo[a] + hi[a]) / 2
            elif pos[a] < lo[a]:
                pos[a], vel[a] = 2 * lo[a] - pos[a], -vel[a]
                bounces[a].append(t + 1)
            elif pos[a] > hi[a]:
                pos[a], vel[a] = 2 * hi[a] - pos[a], -vel[a]
                bounces[a].append(t + 1)
    return centres, float(speed), v0, bounces


def _direction(v0: np.ndarray, bounces: list[list[int]], first: int, last: int) -> str | None:
    """Dominant direction of motion over frames [first, last], or None if it bounces on that axis meanwhile.

    A bounce recorded at frame b reflects the motion between frames b-1 and b.
    """
    axis = int(np.argmax(np.abs(v0)))
    if abs(v0[axis]) < 1.5 * abs(v0[1 - axis]) or any(first < b <= last for b in bounces[axis]):
        return None
    flips = sum(1 for b in bounces[axis] if b <= first)  # reflections before the object is drawn
    v = v0[axis] * (-1) ** flips
    if axis == 0:
        return "left" if v < 0 else "right"
    return "up" if v < 0 else "down"


def _interval(rng: np.random.Generator, k: int, t_len: int) -> tuple[int, int]:
    """Visible frames [first, last] of object k: object 0 always, others full / early / late / middle."""
    if k == 0 or t_len < 8:
        return 0, t_len - 1
    half, min_len = t_len // 2, max(2, t_len // 4)
    kind = rng.choice(["full", "early", "late", "middle"], p=[0.25, 0.3, 0.3, 0.15])
    if kind == "early":
        return 0, int(rng.integers(min_len - 1, half))
    if kind == "late":
        return int(rng.integers(half, t_len - min_len + 1)), t_len - 1
    if kind == "middle":
        return int(rng.integers(1, max(2, t_len // 3))), int(rng.integers(2 * t_len // 3, t_len - 1))
    return 0, t_len - 1


def _shape_mask(obj: SyntheticObject, t: int, h: int, w: int) -> tuple[slice, slice, np.ndarray]:
    """Bounding-box slices and the [h_box, w_box] bool mask of `obj` at frame t."""
    cx, cy = obj.centres[t]
    r = obj.radius
    y0, y1 = max(0, int(np.floor(cy - r))), min(h, int(np.ceil(cy + r)) + 1)
    x0, x1 = max(0, int(np.floor(cx - r))), min(w, int(np.ceil(cx + r)) + 1)
    ys = np.arange(y0, y1, dtype=np.float64)[:, None] - cy  # [h_box, 1]
    xs = np.arange(x0, x1, dtype=np.float64)[None, :] - cx  # [1, w_box]
    if obj.shape == "circle":
        m = xs**2 + ys**2 <= r**2
    elif obj.shape == "square":
        m = (np.abs(xs) <= 0.85 * r) & (np.abs(ys) <= 0.85 * r)
    else:  # triangle pointing up: apex at (0, -r), base at y = 0.75 r with half-width 0.95 r
        frac = (ys + r) / (1.75 * r)
        m = (ys >= -r) & (ys <= 0.75 * r) & (np.abs(xs) <= 0.95 * r * frac)
    return slice(y0, y1), slice(x0, x1), m


def _make_objects(rng: np.random.Generator, t_len: int, h: int, w: int, next_anno: int) -> list[SyntheticObject]:
    """2 to 4 objects with distinct (colour, shape) pairs; anno_ids from `next_anno` on."""
    n = int(rng.integers(2, 5))
    pairs = [(c, s) for c in COLOURS for s in SHAPES]
    picked = rng.choice(len(pairs), size=n, replace=False)
    objects = []
    for k, p in enumerate(picked.tolist()):
        colour, shape = pairs[p]
        r = max(2.0, rng.uniform(0.08, 0.15) * min(h, w))
        centres, speed, v0, bounces = _trajectory(rng, t_len, h, w, r)
        first, last = _interval(rng, k, t_len)
        objects.append(SyntheticObject(
            obj_id=k + 1, anno_id=next_anno + k, colour=colour, shape=shape, radius=float(r), speed=speed,
            centres=centres, first=first, last=last, direction=_direction(v0, bounces, first, last),
        ))
    return objects


def _make_grounding_objects(rng: np.random.Generator, t_len: int, h: int, w: int, next_anno: int,
                            shared_window: bool = False) -> list[SyntheticObject]:
    """``GROUNDING_OBJECTS`` still squares, distinct saturated colours, one per quadrant, each visible in a
    ``GROUNDING_WINDOW``-frame window of its own (or, with `shared_window`, all in one); anno_ids from `next_anno`
    on."""
    cell_h, cell_w = h // 2, w // 2
    colours = rng.choice(len(GROUNDING_COLOURS), size=GROUNDING_OBJECTS, replace=False)
    quadrants = rng.choice(4, size=GROUNDING_OBJECTS, replace=False)
    shared_first = int(rng.integers(0, t_len - GROUNDING_WINDOW + 1)) if shared_window else None
    objects = []
    for k, (c, q) in enumerate(zip(colours.tolist(), quadrants.tolist(), strict=True)):
        half = rng.uniform(0.36, 0.48) * min(cell_h, cell_w)  # square side ~72-97 % of a quadrant (20-28 px of 28)
        top, left = (q // 2) * cell_h, (q % 2) * cell_w
        cx = rng.uniform(left + half, left + cell_w - 1 - half)
        cy = rng.uniform(top + half, top + cell_h - 1 - half)
        first = shared_first if shared_first is not None else int(rng.integers(0, t_len - GROUNDING_WINDOW + 1))
        objects.append(SyntheticObject(
            obj_id=k + 1, anno_id=next_anno + k, colour=list(GROUNDING_COLOURS)[c], shape="square",
            radius=float(half / 0.85), speed=0.0, centres=np.tile([cx, cy], (t_len, 1)), first=first,
            last=first + GROUNDING_WINDOW - 1, direction=None,
        ))
    return objects


def grounding_expressions(objects: Sequence[SyntheticObject], exist: np.ndarray) -> list[dict[str, Any]]:
    """One colour expression per visible object of a ``grounding`` video: ``"the red object"``."""
    return [{"exp": f"the {o.colour} object", "obj_ids": [o.obj_id], "type_id": 0, "kind": "colour"}
            for i, o in enumerate(objects) if exist[i].any()]


def render_video(
    rng: np.random.Generator, objects: Sequence[SyntheticObject], t_len: int, h: int, w: int, noise: int,
    palette: dict[str, tuple[int, int, int]] | None = None, background: tuple[int, int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw a video (``palette``: colour names to RGB, default `COLOURS`; ``background``: a fixed RGB colour instead
    of a random light one).

    Returns:
        frames: [T, H, W, 3] uint8.
        labels: [T, H, W] int8, 0 background, k = obj_id of the visible (top-most) object.
    """
    palette = palette or COLOURS
    if background is None:
        bg = np.clip(rng.integers(150, 200) + rng.integers(-15, 16, size=3), 0, 255)
    else:
        bg = np.array(background)
    frames = np.empty((t_len, h, w, 3), dtype=np.uint8)
    labels = np.zeros((t_len, h, w), dtype=np.int8)
    for t in range(t_len):
        frame = (bg + rng.integers(-noise, noise + 1, size=(h, w, 3))).clip(0, 255).astype(np.uint8)
        for obj in objects:
            if obj.first <= t <= obj.last:
                ys, xs, m = _shape_mask(obj, t, h, w)
                frame[ys, xs][m] = palette[obj.colour]
                labels[t, ys, xs][m] = obj.obj_id
        frames[t] = frame
    return frames, labels


def _unique(cands: dict[int, Any], value: Any) -> int | None:
    hits = [k for k, v in cands.items() if v == value]
    return hits[0] if len(hits) == 1 else None


def make_expressions(objects: Sequence[SyntheticObject], exist: np.ndarray) -> list[dict[str, Any]]:
    """Expressions that identify a unique target, from the objects and their exact per-frame existence.

    Args:
        objects: the video's objects.
        exist: [O, T] bool, object o has at least one visible pixel in frame t.

    Returns:
        Dicts `{"exp", "obj_ids", "type_id", "kind"}` (unique texts, deterministic order).
    """
    t_len = exist.shape[1]
    half = t_len // 2
    present = {o.obj_id: o for i, o in enumerate(objects) if exist[i].any()}
    first = {o.obj_id: int(np.argmax(exist[i])) for i, o in enumerate(objects) if exist[i].any()}
    last = {o.obj_id: t_len - 1 - int(np.argmax(exist[i][::-1])) for i, o in enumerate(objects) if exist[i].any()}
    out: list[dict[str, Any]] = []

    def add(text: str, ids: list[int], type_id: int, kind: str) -> None:
        if text not in {e["exp"] for e in out}:
            out.append({"exp": text, "obj_ids": ids, "type_id": type_id, "kind": kind})

    name = {k: f"{o.colour} {o.shape}" for k, o in present.items()}
    for k, o in present.items():
        add(f"the {name[k]}" + (f" moving {o.direction}" if o.direction else ""), [k], 0, "appearance")
    for k, o in present.items():  # colour alone names it, while its shape alone would not
        same_shape = sum(p.shape == o.shape for p in present.values())
        if same_shape >= 2 and _unique({j: p.colour for j, p in present.items()}, o.colour) == k:
            add(f"the {o.colour} shape", [k], 0, "colour")
    for shape in SHAPES:
        group = [k for k, o in present.items() if o.shape == shape]
        if len(group) >= 2:
            add(f"all the {shape}s", group, 0, "shape_group")
    directions = {k: o.direction for k, o in present.items()}
    if all(d is not None for d in directions.values()):
        for d in ("left", "right", "up", "down"):
            k = _unique(directions, d)
            if k is not None:
                add(f"the shape moving {d}", [k], 0, "motion")
    k = _unique({j: first[j] >= half for j in present}, True)
    if k is not None:
        add("the object that is visible only in the second half of the video", [k], 1, "second_half")
    k = _unique({j: last[j] < half for j in present}, True)
    if k is not None:
        add("the object that is visible only in the first half of the video", [k], 1, "first_half")
    for a in present:
        if last[a] < t_len - 1:
            k = _unique({j: first[j] > last[a] for j in present}, True)
            if k is not None:
                add(f"the shape that enters after the {name[a]} leaves", [k], 1, "enters_after_leaves")
    latest = max(first.values())
    k = _unique(first, latest)
    if k is not None and latest > 0:
        add("the object that appears last", [k], 1, "appears_last")
    earliest = min(last.values())
    k = _unique(last, earliest)
    if k is not None and earliest < t_len - 1:
        add("the object that disappears first", [k], 1, "disappears_first")
    speeds = sorted(((o.speed, k) for k, o in present.items()), reverse=True)
    if len(speeds) >= 2 and speeds[0][0] >= 1.3 * speeds[1][0]:
        add("the fastest-moving object", [speeds[0][1]], 1, "fastest")
    return out


def _write_json(path: str, obj: Any) -> str:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, separators=(",", ":"))
    return path


def generate_synthetic_dataset(
    root: str | os.PathLike,
    num_videos: int = 8,
    num_frames: int | None = None,
    height: int | None = None,
    width: int | None = None,
    seed: int = 0,
    layout: str = "revos",
    splits: Sequence[str] = ("train",),
    jpeg_quality: int = 90,
    noise: int | None = None,
    preset: str = "shapes",
) -> SyntheticDataset:
    """Write a synthetic RVOS dataset in the ReVOS or MeViS layout (see the module docstring).

    Args:
        root: output folder (created; existing files with the same names are overwritten).
        num_videos: videos per split.
        num_frames: frames per video (T >= 2; partial visibility needs T >= 8); None = the preset's default
            (`PRESET_DEFAULTS`, like `height`, `width` and `noise`).
        height: frame height H (>= 8).
        width: frame width W (>= 8).
        seed: seed of everything; the same arguments give byte-identical annotation files.
        layout: "revos" (`JPEGImages/`, `mask_dict.json`, `meta_expressions_<split>_.json`,
            `mask_dict_foreground.json`) or "mevis" (`<split>/{JPEGImages, mask_dict.json, meta_expressions.json}`).
        splits: split names; each gets `num_videos` videos.
        jpeg_quality: PIL JPEG quality of the frames.
        noise: background noise amplitude (uniform integers in [-noise, noise]).
        preset: "shapes" (moving shapes, referring and reasoning queries), "grounding" (the learnable
            colour-grounding task, a window per object) or "grounding_shared" (the same, one window for all objects).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    defaults = PRESET_DEFAULTS[preset]
    num_frames = defaults["num_frames"] if num_frames is None else num_frames
    height = defaults["height"] if height is None else height
    width = defaults["width"] if width is None else width
    noise = defaults["noise"] if noise is None else noise
    if preset in GROUNDING_PRESETS and (num_frames < GROUNDING_WINDOW or min(height, width) < 16):
        raise ValueError(f"the grounding preset needs num_frames >= {GROUNDING_WINDOW} and frames of at least "
                         f"16x16 px, got {num_frames} frames of {height}x{width}")
    for arg, value, low in (("num_videos", num_videos, 1), ("num_frames", num_frames, 2), ("height", height, 8),
                            ("width", width, 8), ("noise", noise, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{arg} must be an int >= {low}, got {value!r}")
    if not splits or len(set(splits)) != len(splits) or not all(isinstance(s, str) and s for s in splits):
        raise ValueError(f"splits must be distinct non-empty names, got {splits!r}")
    root = os.fspath(root)
    files: list[str] = []
    mask_dict: dict[str, list] = {}
    foreground: dict[str, dict] = {}
    next_anno, total_exps = 1, 0
    for s_idx, split in enumerate(splits):
        base = root if layout == "revos" else os.path.join(root, split)
        if layout == "mevis":
            mask_dict = {}
        videos: dict[str, Any] = {}
        sidecar: dict[str, Any] = {}
        for v_idx in range(num_videos):
            rng = np.random.default_rng([seed, s_idx, v_idx])
            vid = f"synthetic_{split}_{v_idx:04d}"
            if preset in GROUNDING_PRESETS:
                objects = _make_grounding_objects(rng, num_frames, height, width, next_anno,
                                                  shared_window=preset == "grounding_shared")
                frames, labels = render_video(rng, objects, num_frames, height, width, noise,
                                              palette=GROUNDING_COLOURS, background=(0, 0, 0))
            else:
                objects = _make_objects(rng, num_frames, height, width, next_anno)
                frames, labels = render_video(rng, objects, num_frames, height, width, noise)
            next_anno += len(objects)
            frame_ids = [f"{t:05d}" for t in range(num_frames)]
            frame_dir = os.path.join(base, "JPEGImages", vid)
            os.makedirs(frame_dir, exist_ok=True)
            for t, fid in enumerate(frame_ids):
                Image.fromarray(frames[t]).save(os.path.join(frame_dir, fid + ".jpg"), format="JPEG",
                                                quality=jpeg_quality)
            exist = np.zeros((len(objects), num_frames), dtype=bool)
            for i, obj in enumerate(objects):
                rles = []
                for t in range(num_frames):
                    m = labels[t] == obj.obj_id
                    exist[i, t] = m.any()
                    rles.append(encode_mask(m) if exist[i, t] else None)
                mask_dict[str(obj.anno_id)] = rles
            foreground[vid] = {"masks_rle": [encode_mask(labels[t] > 0) for t in range(num_frames)]}
            exps = (grounding_expressions if preset in GROUNDING_PRESETS else make_expressions)(objects, exist)
            total_exps += len(exps)
            anno_of = {o.obj_id: o.anno_id for o in objects}
            videos[vid] = {
                "vid_id": v_idx,
                "height": height,
                "width": width,
                "frames": frame_ids,
                "expressions": {
                    str(j): {"exp": e["exp"], "obj_id": e["obj_ids"], "anno_id": [anno_of[k] for k in e["obj_ids"]],
                             "type_id": e["type_id"]}
                    for j, e in enumerate(exps)
                },
            }
            sidecar[vid] = {
                "objects": [
                    {"obj_id": o.obj_id, "anno_id": o.anno_id, "colour": o.colour, "shape": o.shape,
                     "radius": round(o.radius, 3), "speed": round(o.speed, 3), "direction": o.direction,
                     "first": o.first, "last": o.last, "existence": exist[i].astype(int).tolist()}
                    for i, o in enumerate(objects)
                ],
                "expressions": {str(j): {"kind": e["kind"], "obj_ids": e["obj_ids"]} for j, e in enumerate(exps)},
            }
        meta_name = f"meta_expressions_{split}_.json" if layout == "revos" else "meta_expressions.json"
        files.append(_write_json(os.path.join(base, meta_name), {"videos": videos}))
        files.append(_write_json(os.path.join(root, f"synthetic_objects_{split}.json"), {"videos": sidecar}))
        if layout == "mevis":
            files.append(_write_json(os.path.join(base, "mask_dict.json"), mask_dict))
    if layout == "revos":
        files.append(_write_json(os.path.join(root, "mask_dict.json"), mask_dict))
        files.append(_write_json(os.path.join(root, "mask_dict_foreground.json"), foreground))
    return SyntheticDataset(root=root, layout=layout, splits=tuple(splits), num_videos=num_videos,
                            num_expressions=total_exps, files=tuple(files))
