# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""A self-contained HTML report of a training/demo run, and a fixed-width console table of step metrics.

The report is ONE file: every image is inlined as a base64 PNG and the style sheet is embedded, so it can be
mailed or opened offline. It holds a per-step metrics table, then, for each sampled trajectory: the query,
per turn the assistant text (HTML-escaped, so ``<think>`` shows as text), the parsed action, thumbnails of the
frames the policy saw in that turn, that turn's own predicted (red) vs ground-truth (green) keyframe mask overlay
(overlap is yellow), and the table of reward terms. Trajectories that contain scripted replies (tests and demos)
carry a visible "scripted" badge; the wide metrics table scrolls sideways.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from videoseg_reward.masks import keyframe_iou

from .data.records import RVOSRecord
from .trajectory import Trajectory

__all__ = [
    "GT_COLOR",
    "OVERLAP_COLOR",
    "PRED_COLOR",
    "ReportSample",
    "ReportTurn",
    "StepMetrics",
    "format_metrics_table",
    "frames_shown",
    "overlay",
    "render_report",
    "turn_mask_previews",
    "write_report",
]

PRED_COLOR = (255, 0, 0)
"""Overlay colour of predicted-only pixels (red)."""
GT_COLOR = (0, 255, 0)
"""Overlay colour of ground-truth-only pixels (green)."""
OVERLAP_COLOR = (255, 255, 0)
"""Overlay colour where prediction and ground truth agree (red + green = yellow)."""

THUMB_SIDE = 160
"""Longest side of a frame thumbnail in the report, in pixels."""
OVERLAY_SIDE = 320
"""Longest side of a keyframe overlay in the report, in pixels."""


# ----------------------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------------------


@dataclass
class ReportTurn:
    """What the report shows for one assistant turn."""

    frames: list[Image.Image]
    """Frames the policy saw before writing this turn (turn 0: the initial frames; later: the observation of
    the previous ``<select>``), in prompt order."""
    frame_indices: list[int]
    """Video frame index of each entry of ``frames``."""
    keyframe_image: Image.Image | None = None
    """The frame this turn's ``[SEG]`` mask was decoded on (``TurnRecord.seg_keyframe``); None: no overlay."""
    pred_mask: np.ndarray | None = None
    """[H, W] bool predicted keyframe mask at the size of ``keyframe_image``; None when the turn has no [SEG]."""
    gt_mask: np.ndarray | None = None
    """[H, W] bool ground-truth keyframe mask; None when unknown."""


@dataclass
class ReportSample:
    """One sampled trajectory with its reward."""

    record: RVOSRecord
    """The sample (query, video, ground truth)."""
    trajectory: Trajectory
    """The agent loop's per-turn metadata (texts, parsed actions, keyframes)."""
    turns: list[ReportTurn]
    """One entry per ``trajectory.turns``."""
    reward_terms: dict[str, float]
    """Unweighted value of each reward term."""
    reward_total: float
    """Total reward (weighted sum of the terms)."""
    step: int
    """Training step the trajectory was sampled at."""
    scripted: bool = False
    """True when some turn is a scripted reply (not sampled from the policy): shown as a badge."""


@dataclass
class StepMetrics:
    """One row of the per-step metrics table."""

    step: int
    """Training step."""
    values: dict[str, float] = field(default_factory=dict)
    """Metric name → value (missing metrics are shown as ``-``)."""


def frames_shown(trajectory: Trajectory, turn: int) -> list[int]:
    """Indices of the frames the policy saw right before turn ``turn``, in prompt order.

    Turn 0: the initial low-resolution then high-resolution frames; turn ``t ≥ 1``: the low-resolution
    frames then the keyframe returned by the ``<select>`` of turn ``t - 1``.

    Example:
        >>> from videoseg_o3_verl.trajectory import TurnRecord
        >>> traj = Trajectory(num_frames=24, initial_low_res=[0, 12, 23], spatial_frames=[0, 23], turns=[
        ...     TurnRecord(index=0, span=(0, 9), text="", kind="select", observation_low_res=[4, 6],
        ...                observation_keyframe=5)])
        >>> frames_shown(traj, 0), frames_shown(traj, 1)
        ([0, 12, 23, 0, 23], [4, 6, 5])
    """
    if turn == 0:
        return list(trajectory.initial_low_res) + list(trajectory.spatial_frames)
    if not 0 < turn <= len(trajectory.turns):
        raise ValueError(f"frames_shown: turn {turn} out of range for a trajectory with {len(trajectory.turns)} "
                         "turn(s)")
    prev = trajectory.turns[turn - 1]
    if prev.observation_keyframe is None:
        raise ValueError(f"frames_shown: turn {turn - 1} ended the episode (no observation), so there is no turn "
                         f"{turn}")
    return list(prev.observation_low_res) + [int(prev.observation_keyframe)]


def turn_mask_previews(entry: Mapping[str, Any], trajectory: Trajectory) -> list[np.ndarray | None]:
    """Each turn's own predicted keyframe mask preview ([S, S] bool, or None) from a trainer dump entry.

    ``entry["turn_key_masks"]``: one item per turn, a flat 0/1 list of ``S·S`` values (that turn's last ``[SEG]``
    decoded on that turn's keyframe) or None for a turn without ``[SEG]``. Older dumps only have
    ``entry["final_key_mask"]``, the mask of the trajectory's last ``[SEG]``: it is given to the last turn that has
    a ``[SEG]`` token (not blindly to the last turn), and earlier turns get None.

    Example:
        >>> from videoseg_o3_verl.trajectory import TurnRecord
        >>> traj = Trajectory(24, [0], [0], turns=[TurnRecord(0, (0, 4), "", "select", seg_positions=[2]),
        ...                                        TurnRecord(1, (9, 12), "", "invalid")])
        >>> [m if m is None else m.tolist() for m in turn_mask_previews({"final_key_mask": [1, 0, 0, 1]}, traj)]
        [[[True, False], [False, True]], None]
    """
    def square(flat) -> np.ndarray:
        arr = np.asarray(flat, dtype=np.uint8).ravel()
        side = math.isqrt(arr.size)
        if side * side != arr.size or arr.size == 0:
            raise ValueError(f"turn_mask_previews: a mask preview of {arr.size} values is not a square image")
        return arr.reshape(side, side) > 0

    turns = trajectory.turns
    if "turn_key_masks" in entry:
        masks = list(entry["turn_key_masks"])
        if len(masks) != len(turns):
            raise ValueError(f"turn_mask_previews: {len(masks)} turn masks for a trajectory of {len(turns)} turn(s)")
        return [None if m is None else square(m) for m in masks]
    out: list[np.ndarray | None] = [None] * len(turns)
    last_seg = next((t for t in range(len(turns) - 1, -1, -1) if turns[t].seg_positions), None)
    if last_seg is not None and entry.get("final_key_mask") is not None:
        out[last_seg] = square(entry["final_key_mask"])
    return out


# ----------------------------------------------------------------------------------------------------------
# Images
# ----------------------------------------------------------------------------------------------------------


def _check_mask(mask: Any, name: str, size: tuple[int, int]) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValueError(f"overlay: {name} must be a [H, W] mask, got shape {arr.shape}")
    if arr.shape != size:
        raise ValueError(f"overlay: {name} has shape {arr.shape} but the image is {size} (H, W); resize the mask "
                         "to the image first")
    if arr.dtype != np.bool_:
        if not (np.issubdtype(arr.dtype, np.integer) and (arr.size == 0 or (arr.min() >= 0 and arr.max() <= 1))):
            raise TypeError(f"overlay: {name} must be bool (or integers 0/1), got dtype {arr.dtype}")
        arr = arr.astype(bool)
    return arr


def overlay(image: Image.Image, pred_mask: Any | None, gt_mask: Any | None, alpha: float = 0.5) -> Image.Image:
    """Blend the predicted (red) and ground-truth (green) masks over an image; overlap is yellow.

    Each masked pixel becomes ``rint((1 - alpha) · image + alpha · colour)``; other pixels are unchanged.

    Args:
        image: the frame (any PIL mode; converted to RGB).
        pred_mask: [H, W] bool predicted mask, or None for "no prediction" (nothing red).
        gt_mask: [H, W] bool ground-truth mask, or None for "unknown" (nothing green).
        alpha: opacity of the colours in [0, 1].

    Returns:
        A new RGB image of the same size.

    Example:
        >>> img = Image.new("RGB", (2, 1), (100, 100, 100))
        >>> out = overlay(img, np.array([[True, False]]), np.array([[True, True]]), alpha=0.4)
        >>> list(out.getdata())        # 0.6·100 + 0.4·255 = 162; 0.6·100 = 60
        [(162, 162, 60), (60, 162, 60)]
    """
    if not isinstance(image, Image.Image):
        raise TypeError(f"overlay: image must be a PIL.Image, got {type(image).__name__}")
    if not (isinstance(alpha, (int, float)) and 0.0 <= alpha <= 1.0):
        raise ValueError(f"overlay: alpha must be in [0, 1], got {alpha!r}")
    rgb = np.asarray(image.convert("RGB"), dtype=np.float64)
    size = rgb.shape[:2]
    pred = np.zeros(size, bool) if pred_mask is None else _check_mask(pred_mask, "pred_mask", size)
    gt = np.zeros(size, bool) if gt_mask is None else _check_mask(gt_mask, "gt_mask", size)
    out = rgb.copy()
    for region, colour in ((pred & ~gt, PRED_COLOR), (gt & ~pred, GT_COLOR), (pred & gt, OVERLAP_COLOR)):
        out[region] = (1.0 - alpha) * rgb[region] + alpha * np.asarray(colour, dtype=np.float64)
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8))


def _png_data_uri(image: Image.Image, max_side: int) -> str:
    img = image.convert("RGB")
    scale = max_side / max(img.size)
    if scale < 1:
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img = img.resize(size, Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _img(image: Image.Image, max_side: int, alt: str) -> str:
    return f'<img src="{_png_data_uri(image, max_side)}" alt="{html.escape(alt)}">'


# ----------------------------------------------------------------------------------------------------------
# Text formatting
# ----------------------------------------------------------------------------------------------------------


def _fmt(value: Any, precision: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not math.isfinite(v):
            return str(v)
        return f"{v:.{precision}f}" if abs(v) < 1e6 else f"{v:.{precision}g}"
    return str(value)


def _row_values(row: StepMetrics | Mapping[str, Any], i: int) -> tuple[Any, Mapping[str, Any]]:
    if isinstance(row, StepMetrics):
        return row.step, row.values
    if isinstance(row, Mapping):
        return row.get("step"), row
    raise TypeError(f"metrics row {i} must be a StepMetrics or a mapping, got {type(row).__name__}")


def format_metrics_table(rows: Sequence[StepMetrics | Mapping[str, Any]], keys: Sequence[str], *, width: int = 10,
                         precision: int = 4, header: bool = True) -> str:
    """A plain-text table with fixed-width, right-aligned columns ``step`` + ``keys``.

    Each column is ``max(width, len(key), longest value)`` characters wide and columns are separated by two
    spaces, so successive calls with one row each (``header=False`` after the first) line up as long as the
    values fit in ``width``. Floats get ``precision`` decimals; missing values are ``-``.

    Args:
        rows: :class:`StepMetrics` or mappings (a mapping's ``"step"`` key is the step).
        keys: metric names, in column order.

    Example:
        >>> print(format_metrics_table([StepMetrics(1, {"reward": 2.5})], ["reward", "kl"], width=6))
          step  reward      kl
        ------  ------  ------
             1  2.5000       -
    """
    if isinstance(keys, str):
        raise TypeError(f"format_metrics_table: keys must be a list of metric names, got the string {keys!r}")
    columns = ["step", *keys]
    cells = []
    for i, row in enumerate(rows):
        step, values = _row_values(row, i)
        cells.append([_fmt(step, precision)] + [_fmt(values.get(k), precision) for k in keys])
    widths = [max([width, len(col)] + [len(r[j]) for r in cells]) for j, col in enumerate(columns)]
    lines = []
    if header:
        lines.append("  ".join(col.rjust(w) for col, w in zip(columns, widths)))
        lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells)
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------
# HTML
# ----------------------------------------------------------------------------------------------------------

_CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #bbb; padding: 2px 8px; text-align: right; font-family: monospace; }
th { background: #eee; }
td.name { text-align: left; }
section.sample { border-top: 3px solid #444; margin-top: 2em; padding-top: 0.5em; }
div.turn { border-left: 4px solid #88a; padding-left: 1em; margin: 1em 0; }
pre.assistant { white-space: pre-wrap; background: #f6f6f6; padding: 0.5em; }
div.thumbs figure, figure.overlay { display: inline-block; margin: 2px; text-align: center; font-size: small; }
.legend-pred { color: #d00; } .legend-gt { color: #080; } .legend-both { color: #aa0; }
div.table-scroll { overflow-x: auto; max-width: 100%; }
span.scripted { background: #fc6; border: 1px solid #c80; border-radius: 3px; padding: 0 6px; font-size: small; }
section.sample.scripted { border-top-color: #c80; }
"""


def _metrics_html(rows: Sequence[StepMetrics | Mapping[str, Any]]) -> str:
    keys: list[str] = []
    parsed = []
    for i, row in enumerate(rows):
        step, values = _row_values(row, i)
        parsed.append((step, values))
        keys.extend(k for k in values if k != "step" and k not in keys)
    head = "".join(f"<th>{html.escape(k)}</th>" for k in ["step", *keys])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in [step, *(values.get(k) for k in keys)])
                   + "</tr>" for step, values in parsed)
    return f'<div class="table-scroll"><table class="metrics"><tr>{head}</tr>{body}</table></div>'


def _turn_html(sample: ReportSample, t: int) -> str:
    rec = sample.trajectory.turns[t]
    view = sample.turns[t]
    if len(view.frames) != len(view.frame_indices):
        raise ValueError(f"write_report: record {sample.record.name}, turn {t}: {len(view.frames)} frames but "
                         f"{len(view.frame_indices)} frame indices")
    action = f"<b>{html.escape(rec.kind)}</b>"
    if rec.vtg is not None:
        action += f" VTG {html.escape(json.dumps(rec.vtg))}"
    if rec.reason:
        action += f" — {html.escape(rec.reason)}"
    if rec.observation_keyframe is not None:
        action += (f"; shown next: low-res {html.escape(str(list(rec.observation_low_res)))}, "
                   f"keyframe {int(rec.observation_keyframe)}")
    thumbs = "".join(f"<figure>{_img(img, THUMB_SIDE, f'frame {idx}')}<figcaption>{int(idx)}</figcaption></figure>"
                     for img, idx in zip(view.frames, view.frame_indices))
    parts = [f'<div class="turn"><h3>Turn {t}</h3>',
             f'<pre class="assistant">{html.escape(rec.text)}</pre>',
             f"<p>Action: {action}; [SEG] tokens: {len(rec.seg_positions)}</p>",
             f'<div class="thumbs">{thumbs}</div>']
    if view.keyframe_image is not None:
        over = overlay(view.keyframe_image, view.pred_mask, view.gt_mask)
        iou = None if view.pred_mask is None or view.gt_mask is None else keyframe_iou(view.pred_mask, view.gt_mask)
        caption = (f'keyframe {int(rec.seg_keyframe)}: <span class="legend-pred">prediction</span> / '
                   '<span class="legend-gt">ground truth</span> / <span class="legend-both">both</span>'
                   + ("" if iou is None else f"; IoU {iou:.4f}")
                   + ("" if view.pred_mask is not None
                      else "; [SEG] mask not recorded" if rec.seg_positions else "; no [SEG] in this turn"))
        parts.append(f'<figure class="overlay">{_img(over, OVERLAY_SIDE, f"keyframe {rec.seg_keyframe} overlay")}'
                     f"<figcaption>{caption}</figcaption></figure>")
    parts.append("</div>")
    return "".join(parts)


def _sample_html(sample: ReportSample) -> str:
    if len(sample.turns) != len(sample.trajectory.turns):
        raise ValueError(f"write_report: record {sample.record.name}: {len(sample.turns)} ReportTurn(s) for a "
                         f"trajectory of {len(sample.trajectory.turns)} turn(s); give one per turn")
    terms = "".join(f'<tr><td class="name">{html.escape(name)}</td><td>{_fmt(value)}</td></tr>'
                    for name, value in sample.reward_terms.items())
    terms += f'<tr><th class="name">total</th><th>{_fmt(sample.reward_total)}</th></tr>'
    badge = (' <span class="scripted" title="some turns are scripted replies, not sampled from the policy">'
             "scripted</span>" if sample.scripted else "")
    head = (f"<h2>Step {int(sample.step)} — {html.escape(sample.record.name)}{badge}</h2>"
            f"<p><b>Query:</b> {html.escape(sample.record.expression)}</p>"
            f"<p>{sample.trajectory.num_frames} frames; {len(sample.trajectory.turns)} turn(s); "
            f"stopped: {html.escape(sample.trajectory.stop_reason or '-')}</p>")
    turns = "".join(_turn_html(sample, t) for t in range(len(sample.turns)))
    css = "sample scripted" if sample.scripted else "sample"
    return (f'<section class="{css}">{head}{turns}<h3>Reward terms</h3>'
            f'<table class="rewards"><tr><th>term</th><th>value</th></tr>{terms}</table></section>')


def render_report(samples: Sequence[ReportSample], metrics_rows: Sequence[StepMetrics | Mapping[str, Any]],
                  title: str = "VideoSEG-O3 report") -> str:
    """The report as an HTML string (see :func:`write_report`)."""
    body = [f"<h1>{html.escape(title)}</h1>", "<h2>Metrics per step</h2>", _metrics_html(metrics_rows)]
    body.extend(_sample_html(s) for s in samples)
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def write_report(path: str | Path, samples: Sequence[ReportSample],
                 metrics_rows: Sequence[StepMetrics | Mapping[str, Any]], title: str = "VideoSEG-O3 report") -> Path:
    """Write the self-contained HTML report (images inlined as base64 PNG, no external assets).

    Args:
        path: output ``.html`` file (parent folders are created).
        samples: trajectories to show, in order.
        metrics_rows: one row per step for the metrics table.
        title: page title.

    Returns:
        The path written.
    """
    path = Path(path)
    text = render_report(samples, metrics_rows, title=title)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
