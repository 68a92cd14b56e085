# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The seven VideoSEG-O3 reward terms (docs/method.md §5–4.7) for ONE trajectory, a term registry and `RewardSpec`.

Each term is a pure function of one trajectory and returns a Python float. Terms with a quirk in the authors'
code take ``parity``: ``parity=True`` (default) reproduces the code that trained the released models, quirks
included; ``parity=False`` implements the evident intent. Every quirk and its fix is listed in the docstring.

Inputs (docs/method.md §5):

* ``turns``: the decoded assistant turns of the trajectory (``list[str]``, special tokens kept).
* ``mask_existence``: per-frame 0/1 values over the FULL video (length ``L``; list, tuple or numpy array).
* ``per_round_maskious``: for each turn, the per-frame IoUs of that turn's video mask on the 5 spatial frames.
* ``per_round_keyframe_ious``: for each turn, the IoU of that turn's keyframe mask (turn 0: frame ``L // 2``).

For the registry, :class:`TrajectoryRewardInputs` bundles these; every registered term is called as
``term(inputs) -> float`` and :class:`RewardSpec` sums a weighted selection of them.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "PAPER_TERMS",
    "REWARD_TERM_REGISTRY",
    "RewardSpec",
    "TrajectoryRewardInputs",
    "get_term_fn",
    "lr_keyframe_vs_mask_dense",
    "lr_maskiou_dense",
    "lr_progressive_keyframe_dense",
    "lr_vtg_iou_dense",
    "lr_vtg_keyframe",
    "parse_last_vtg",
    "register_term",
    "step_format_cot",
    "strict_format_cot",
]

# Regexes exactly as in docs/method.md §5–4.4.
_STRICT_TURN_RE = re.compile(r"<think>.*?</think>\s*<(answer|select)>(.*?)</\1>", re.DOTALL)
_VTG_RE = re.compile(r"<VTG>(.*?)</VTG>", re.DOTALL)
_REFSEG_RE = re.compile(r"<RefSeg>(.*?)</RefSeg>", re.DOTALL)
_THINK_RE = re.compile(r"<think>(.*?)</think>", re.DOTALL | re.IGNORECASE)
_ACTION_VTG_RE = re.compile(r"<(select|answer)>.*?<VTG>(.*?)</VTG>.*?</\1>", re.DOTALL)
_STEP_KEYWORDS = ("step 1", "step 2", "step 3", "action")
_VTG_KEYS = ("start", "end", "keyframe")

# Errors a malformed model output can raise while being parsed; anything else is a bug and propagates.
_LITERAL_ERRORS = (ValueError, TypeError, SyntaxError, MemoryError, RecursionError)
_INT_ERRORS = (ValueError, TypeError, OverflowError)


# ----------------------------------------------------------------------------------------------------------
# Input checks and shared helpers
# ----------------------------------------------------------------------------------------------------------


def _check_turns(turns: Any, term: str) -> Sequence[str]:
    if isinstance(turns, (str, bytes)) or not isinstance(turns, Sequence):
        raise TypeError(f"{term}: turns must be a list of assistant-turn strings, got {type(turns).__name__}")
    for i, t in enumerate(turns):
        if not isinstance(t, str):
            raise TypeError(f"{term}: turns[{i}] must be a str, got {type(t).__name__}")
    return turns


def _check_existence(mask_existence: Any, term: str) -> np.ndarray:
    try:
        arr = np.asarray(mask_existence, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{term}: mask_existence must be a 1-D sequence of 0/1 numbers ({err})") from None
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{term}: mask_existence must be a non-empty 1-D per-frame sequence, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{term}: mask_existence contains non-finite values: {arr[~np.isfinite(arr)][:5]}")
    return arr


def _is_seq(x: Any) -> bool:
    return isinstance(x, (Sequence, np.ndarray)) and not isinstance(x, (str, bytes))


def _to_float(x: Any, term: str, what: str) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        raise TypeError(f"{term}: {what} must be a number, got {x!r}") from None


def _round_value(x: Any, term: str, what: str) -> float:
    """One turn's value as the authors' ``get_val``: mean of a non-empty list, 0.0 for empty/None/0, else float."""
    if _is_seq(x):
        vals = [_to_float(v, term, what) for v in x]
        return sum(vals) / len(vals) if vals else 0.0
    if x is None:
        return 0.0
    return _to_float(x, term, what)


def _as_strict_int(v: Any) -> int | None:
    """An integral int/float as int; bools, strings, non-integral or non-finite numbers give None."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and math.isfinite(v) and v.is_integer():
        return int(v)
    return None


def parse_last_vtg(turn: str, length: int, *, parity: bool = True) -> tuple[int, int, int] | None:
    """Parse ``(start, end, keyframe)`` from the LAST ``<(select|answer)>…<VTG>(…)</VTG>…</\\1>`` match (DOTALL).

    The VTG body is stripped and read with ``ast.literal_eval`` (single quotes allowed) and must be a dict.

    * ``parity=True`` (authors' parser): missing keys default to 0; values go through ``int()`` (so 3.7 → 3,
      ``"4"`` → 4, ``True`` → 1); ``start``/``end`` are clamped to ``[0, L]`` (note: ``L``, not ``L-1``) and
      ``keyframe`` to ``[0, L-1]``.
    * ``parity=False``: all three keys are required and must be integers (``12.0`` is accepted, bools/strings
      are not); all three are clamped to ``[0, L-1]``.

    Returns ``None`` when there is no match or the body cannot be parsed.

    Example:
        >>> parse_last_vtg("<select><VTG>{'start': -3, 'end': 99, 'keyframe': 99}</VTG></select>", 10)
        (0, 10, 9)
        >>> parse_last_vtg("<select><VTG>{'start': -3, 'end': 99, 'keyframe': 99}</VTG></select>", 10, parity=False)
        (0, 9, 9)
    """
    matches = _ACTION_VTG_RE.findall(turn)
    if not matches:
        return None
    try:
        data = ast.literal_eval(matches[-1][1].strip())
    except _LITERAL_ERRORS:
        return None
    if not isinstance(data, dict):
        return None
    if parity:
        try:
            s, e, k = (int(data.get(key, 0)) for key in _VTG_KEYS)
        except _INT_ERRORS:
            return None
        hi = length
    else:
        vals = [_as_strict_int(data[key]) if key in data else None for key in _VTG_KEYS]
        if any(v is None for v in vals):
            return None
        s, e, k = vals  # type: ignore[misc]
        hi = length - 1
    s = max(0, min(s, hi))
    e = max(0, min(e, hi))
    k = max(0, min(k, length - 1))
    return s, e, k


# ----------------------------------------------------------------------------------------------------------
# strict_format_cot and step_format_cot
# ----------------------------------------------------------------------------------------------------------


def _strict_turn_tag(turn: str) -> str | None:
    """The turn's action tag (``"select"``/``"answer"``) if the turn is strictly well-formed, else None."""
    m = _STRICT_TURN_RE.search(turn)
    if m is None:
        return None
    tag, body = m.group(1), m.group(2)
    vtg = _VTG_RE.search(body)
    ref = _REFSEG_RE.search(body)
    if vtg is None or ref is None:
        return None
    try:
        data = json.loads(vtg.group(1))
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or not set(_VTG_KEYS) <= data.keys():
        return None
    if "[SEG]" not in ref.group(1):
        return None
    return tag


def strict_format_cot(turns: Sequence[str], *, parity: bool = True) -> float:
    """Strict per-turn format reward (docs/method.md §5). Range ``{-1, +1}`` (``0`` for an empty trajectory, parity).

    Every turn must contain ``<think>…</think>`` followed (whitespace allowed) by ``<answer>…</answer>`` or
    ``<select>…</select>`` (first such match, DOTALL, text before/after allowed), whose body contains a
    ``<VTG>`` that ``json.loads`` to a dict with keys ⊇ {start, end, keyframe} (strict JSON: single quotes
    fail) and a ``<RefSeg>`` containing ``[SEG]``. All turns valid → +1, else −1.

    * ``parity=True``: the tag order is not checked (an all-select or answer-first trajectory can get +1),
      and an empty ``turns`` list gives 0.0, as in the authors' code.
    * ``parity=False``: additionally the last turn must be ``<answer>`` and all earlier ones ``<select>`` (what
      the authors' docstring promises); an empty list gives −1.

    Example:
        >>> t = ('<think>…</think><answer><VTG>{"start": 2, "end": 5, "keyframe": 3}</VTG>, '
        ...      '<RefSeg>[SEG]</RefSeg></answer>')
        >>> strict_format_cot([t]), strict_format_cot([t.replace('"', "'")])
        (1.0, -1.0)
        >>> strict_format_cot([t, t]), strict_format_cot([t, t], parity=False)  # answer, answer
        (1.0, -1.0)
    """
    turns = _check_turns(turns, "strict_format_cot")
    if not turns:
        return 0.0 if parity else -1.0
    tags = []
    for turn in turns:
        tag = _strict_turn_tag(turn)
        if tag is None:
            return -1.0
        tags.append(tag)
    if not parity and (tags[-1] != "answer" or any(t != "select" for t in tags[:-1])):
        return -1.0
    return 1.0


def step_format_cot(turns: Sequence[str]) -> float:
    """Decoupled-thinking keyword reward (docs/method.md §5). Range ``[0, 1]``.

    Per turn: the first ``<think>(.*?)</think>`` (DOTALL, case-insensitive tags); score = number of the
    keywords "step 1", "step 2", "step 3", "action" found in the lower-cased think text / 4; no think → 0.
    Reward = mean over turns (0.0 for an empty list).

    Example:
        >>> step_format_cot(["<think>Step 1: when. STEP 2: where. Action: answer.</think>", "no think tags"])
        0.375
    """
    turns = _check_turns(turns, "step_format_cot")
    scores = []
    for turn in turns:
        m = _THINK_RE.search(turn)
        if m is None:
            scores.append(0.0)
            continue
        text = m.group(1).lower()
        scores.append(sum(kw in text for kw in _STEP_KEYWORDS) / len(_STEP_KEYWORDS))
    return sum(scores) / len(scores) if scores else 0.0


# ----------------------------------------------------------------------------------------------------------
# lr_vtg_iou_dense and lr_vtg_keyframe
# ----------------------------------------------------------------------------------------------------------

_VTG_FAIL = -0.5
_VTG_PASS_SCALE = 0.5
_VTG_IOU_THRESH = 0.5


def lr_vtg_iou_dense(turns: Sequence[str], mask_existence: Any, *, parity: bool = True) -> float:
    """Temporal-grounding reward of the last turn's VTG (docs/method.md §5). Values ``{-0.5} ∪ [0.25, 0.5]``.

    The LAST ``<(select|answer)>…<VTG>…</VTG>…</\\1>`` of the LAST turn is parsed with :func:`parse_last_vtg`.
    Parse failure (or no turns) → −0.5. If ``mask_existence`` is all zero, "iou" = 1. Reward = −0.5 if
    iou < 0.5 else 0.5·iou.

    * ``parity=True`` (authors' code): ``s, e`` clamped to ``[0, L]``; ``s >= e`` → −0.5; prediction = frames
      ``[s, e)`` (END-EXCLUSIVE, although the rollout observation uses an inclusive end); "iou" =
      ``|pred ∩ existence| / (|pred| + 1e-6)`` computed in float32 like the torch code — this is temporal
      PRECISION, not IoU, so a short interval inside the GT span is never penalised; exactly-half precision
      fails the threshold because of the ``1e-6``.
    * ``parity=False``: ``s, e`` clamped to ``[0, L-1]``; ``s > e`` → −0.5; prediction = ``[s, e]`` inclusive;
      iou = true temporal IoU ``|P ∩ G| / |P ∪ G|`` in float64 (``G`` = frames with existence > 0.5); the
      all-zero-existence convention (iou = 1) is kept.

    Example:
        >>> ex = [0, 0, 1, 1, 1, 1, 0, 0]                      # object visible in frames 2..5
        >>> turn = '<answer><VTG>{"start": 1, "end": 5, "keyframe": 3}</VTG></answer>'
        >>> round(lr_vtg_iou_dense([turn], ex), 4)           # [1, 5) = 1..4: precision 3/4
        0.375
        >>> round(lr_vtg_iou_dense([turn], ex, parity=False), 4)  # [1..5] vs [2..5]: IoU 4/5
        0.4
    """
    turns = _check_turns(turns, "lr_vtg_iou_dense")
    existence = _check_existence(mask_existence, "lr_vtg_iou_dense")
    length = existence.shape[0]
    if not turns:
        return _VTG_FAIL
    parsed = parse_last_vtg(turns[-1], length, parity=parity)
    if parsed is None:
        return _VTG_FAIL
    s, e, _ = parsed
    if parity:
        if s >= e:
            return _VTG_FAIL
        if existence.sum() == 0:
            iou = 1.0
        else:
            # NOTE(parity): the authors compute inter / (|pred| + 1e-6) with float32 torch scalars.
            inter = np.float32(existence[s:e].sum())
            iou = float(inter / (np.float32(e - s) + np.float32(1e-6)))
    else:
        if s > e:
            return _VTG_FAIL
        gt = existence > 0.5
        if not gt.any():
            iou = 1.0
        else:
            pred = np.zeros(length, dtype=bool)
            pred[s : e + 1] = True
            iou = int((pred & gt).sum()) / int((pred | gt).sum())
    return _VTG_FAIL if iou < _VTG_IOU_THRESH else _VTG_PASS_SCALE * iou


def lr_vtg_keyframe(turns: Sequence[str], mask_existence: Any, *, parity: bool = True) -> float:
    """Keyframe-hit reward of the last turn's VTG (docs/method.md §5). Range ``{-1, +1}``.

    +1 if ``mask_existence[k] > 0.5`` for the keyframe ``k`` (clamped to ``[0, L-1]``) of the last VTG of the
    last turn, else −1; parse failure or no turns → −1.

    * ``parity=True``: the authors' lenient parser (a missing ``keyframe`` key means frame 0, ``3.7`` → 3).
    * ``parity=False``: the strict parser of :func:`parse_last_vtg` (all keys present, integral values).

    Example:
        >>> ex = [1, 0, 1, 1, 0]
        >>> lr_vtg_keyframe(["<answer><VTG>{'start': 1, 'end': 3, 'keyframe': 2}</VTG></answer>"], ex)
        1.0
        >>> no_key = "<answer><VTG>{'start': 1, 'end': 3}</VTG></answer>"   # keyframe missing
        >>> lr_vtg_keyframe([no_key], ex), lr_vtg_keyframe([no_key], ex, parity=False)  # frame 0 vs failure
        (1.0, -1.0)
    """
    turns = _check_turns(turns, "lr_vtg_keyframe")
    existence = _check_existence(mask_existence, "lr_vtg_keyframe")
    if not turns:
        return -1.0
    parsed = parse_last_vtg(turns[-1], existence.shape[0], parity=parity)
    if parsed is None:
        return -1.0
    return 1.0 if existence[parsed[2]] > 0.5 else -1.0


# ----------------------------------------------------------------------------------------------------------
# lr_maskiou_dense, lr_keyframe_vs_mask_dense, lr_progressive_keyframe_dense
# ----------------------------------------------------------------------------------------------------------


def _maskiou_score(u: float) -> float:
    """g(u) of docs/method.md §5; NaN compares False everywhere and so scores −1."""
    if u > 0.4:
        return min((u - 0.4) * 3, 1.5)
    if u > 0.2:
        return 0.0
    return -1.0


def lr_maskiou_dense(per_round_maskious: Sequence[Any]) -> float:
    """Dense mask-IoU reward of the LAST turn's video mask (docs/method.md §5). Range ``[-1, 1.5]``.

    Reward = mean over the last turn's per-frame IoUs ``u`` of ``g(u) = min(3(u − 0.4), 1.5)`` if ``u > 0.4``,
    ``0`` if ``0.2 < u <= 0.4``, ``−1`` otherwise (NaN → −1). An empty last list → −1; no turns at all → 0.0
    (authors' code). A bare number (or None → 0.0) as the last entry is scored as a single IoU.

    Example:
        >>> round(lr_maskiou_dense([[0.1] * 5, [0.9, 0.9, 0.3, 0.3, 0.1]]), 6)   # (1.5 + 1.5 + 0 + 0 - 1) / 5
        0.4
        >>> lr_maskiou_dense([[0.9] * 5, []])
        -1.0
    """
    if not _is_seq(per_round_maskious):
        raise TypeError(f"lr_maskiou_dense: per_round_maskious must be a list over turns, "
                        f"got {type(per_round_maskious).__name__}")
    if len(per_round_maskious) == 0:
        return 0.0
    last = per_round_maskious[-1]
    if _is_seq(last):
        scores = [_maskiou_score(_to_float(u, "lr_maskiou_dense", "a per-frame IoU")) for u in last]
        return sum(scores) / len(scores) if scores else -1.0
    return _maskiou_score(0.0 if last is None else _to_float(last, "lr_maskiou_dense", "a per-frame IoU"))


def _delta_ladder(delta: float, *, dense_above: float, dense_offset: float, dense_scale: float, half_above: float,
                  parity: bool) -> float:
    """The score ladder shared by the two multi-turn terms (docs/method.md §5).

    Intended: ``δ > dense_above`` → ``min((δ − dense_offset)·dense_scale, 2.0)``; ``δ > half_above`` → 0.5;
    ``δ > −0.05`` → 0; else −1. ``parity=True`` keeps the authors' ``if``/``if``, which overwrites the dense branch.
    """
    if parity:
        # NOTE(parity): `if`/`if` exactly as in the authors' code; the first assignment is always overwritten.
        score = 0.0
        if delta > dense_above:
            score = min((delta - dense_offset) * dense_scale, 2.0)
        if delta > half_above:
            score = 0.5
        elif delta > -0.05:
            score = 0.0
        else:
            score = -1.0
        return score
    if delta > dense_above:
        return min((delta - dense_offset) * dense_scale, 2.0)
    if delta > half_above:
        return 0.5
    if delta > -0.05:
        return 0.0
    return -1.0


def lr_keyframe_vs_mask_dense(
    per_round_maskious: Sequence[Any], per_round_keyframe_ious: Sequence[Any], parity: bool = True
) -> float:
    """Keyframe mask vs video mask of the last turn (docs/method.md §5). Effective values ``{-1, 0, 0.5}`` (parity).

    Only when both lists have ≥ 2 turns (else 0.0). ``δ = K_last − mean(M_last)`` (a turn's value is the mean
    of a list, 0.0 for an empty list or None).

    * ``parity=True`` reproduces the authors' ``if``/``if`` bug: the dense branch (``δ > 0.2``) is assigned and
      then overwritten, so ``δ > 0.1`` → 0.5; ``−0.05 < δ <= 0.1`` → 0; ``δ <= −0.05`` → −1.
    * ``parity=False`` uses the intended ``elif``: ``δ > 0.2`` → ``min((δ − 0.1)·5, 2.0)``; ``δ > 0.1`` → 0.5;
      ``δ > −0.05`` → 0; else −1 (range ``[-1, 2]``; changes the reward scale).

    NaN anywhere in the inputs makes ``δ`` NaN, which scores −1 in both modes.

    Example:
        >>> m, k = [[0.5] * 5, [0.5] * 5], [0.3, 0.9]          # δ = 0.9 - 0.5 = 0.4
        >>> lr_keyframe_vs_mask_dense(m, k), round(lr_keyframe_vs_mask_dense(m, k, parity=False), 6)
        (0.5, 1.5)
        >>> lr_keyframe_vs_mask_dense([[0.5] * 5], [0.9])       # single turn
        0.0
    """
    term = "lr_keyframe_vs_mask_dense"
    if not (_is_seq(per_round_maskious) and _is_seq(per_round_keyframe_ious)):
        raise TypeError(f"{term}: per_round_maskious and per_round_keyframe_ious must be lists over turns")
    if len(per_round_maskious) < 2 or len(per_round_keyframe_ious) < 2:
        return 0.0
    delta = _round_value(per_round_keyframe_ious[-1], term, "a keyframe IoU") - _round_value(
        per_round_maskious[-1], term, "a per-frame IoU"
    )
    return _delta_ladder(delta, dense_above=0.2, dense_offset=0.1, dense_scale=5, half_above=0.1, parity=parity)


def lr_progressive_keyframe_dense(per_round_keyframe_ious: Sequence[Any], parity: bool = True) -> float:
    """Keyframe-IoU progress of the last turn over the best earlier turn (docs/method.md §5). Values ``{-1, 0, 0.5}``.

    Only when there are ≥ 2 turns (else 0.0). ``δ = K_last − max(K_0 … K_{nt−2})``; remember ``K_0`` is
    measured on the fixed middle frame ``L // 2`` and is 0 when the object is absent there.

    * ``parity=True`` reproduces the ``if``/``if`` bug: ``δ > 0.05`` → 0.5; ``−0.05 < δ <= 0.05`` → 0;
      ``δ <= −0.05`` → −1 (the dense ``δ > 0.1`` branch is overwritten).
    * ``parity=False`` uses the intended ``elif``: ``δ > 0.1`` → ``min((δ − 0.05)·10, 2.0)``; ``δ > 0.05`` →
      0.5; ``δ > −0.05`` → 0; else −1 (range ``[-1, 2]``).

    NaN as the last value scores −1; a NaN among earlier values follows Python's ``max`` (order dependent),
    exactly as in the authors' code.

    Example:
        >>> lr_progressive_keyframe_dense([0.2, 0.5]), lr_progressive_keyframe_dense([0.2, 0.5], parity=False)
        (0.5, 2.0)
        >>> lr_progressive_keyframe_dense([0.0, 0.8, 0.5])   # δ = 0.5 - 0.8 = -0.3
        -1.0
    """
    term = "lr_progressive_keyframe_dense"
    if not _is_seq(per_round_keyframe_ious):
        raise TypeError(f"{term}: per_round_keyframe_ious must be a list over turns, "
                        f"got {type(per_round_keyframe_ious).__name__}")
    if len(per_round_keyframe_ious) < 2:
        return 0.0
    values = [_round_value(x, term, "a keyframe IoU") for x in per_round_keyframe_ious]
    delta = values[-1] - max(values[:-1])
    return _delta_ladder(delta, dense_above=0.1, dense_offset=0.05, dense_scale=10, half_above=0.05, parity=parity)


# ----------------------------------------------------------------------------------------------------------
# Registry, uniform inputs and RewardSpec
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrajectoryRewardInputs:
    """Everything a reward term may need about one trajectory (docs/method.md §5 inputs)."""

    turns: Sequence[str]
    """Decoded assistant turns, special tokens kept (``[SEG]`` must survive decoding)."""
    mask_existence: Sequence[float]
    """Per-frame 0/1 object existence over the full video (length L)."""
    per_round_maskious: Sequence[Sequence[float]]
    """Per turn: per-frame IoUs of that turn's video mask on the 5 spatial frames."""
    per_round_keyframe_ious: Sequence[float]
    """Per turn: IoU of that turn's keyframe mask (turn 0 on frame L // 2)."""
    jf: float | None = None
    """True J&F of the propagated final mask, if computed (only the ``jf`` term needs it)."""
    parity: bool = True
    """Reproduce the authors' quirks (True) or use the intended behaviour (False) in every term."""


TermFn = Callable[[TrajectoryRewardInputs], float]

REWARD_TERM_REGISTRY: dict[str, TermFn] = {}
"""Term name → ``fn(inputs: TrajectoryRewardInputs) -> float``."""


def register_term(name: str) -> Callable[[TermFn], TermFn]:
    """Decorator registering ``fn(inputs) -> float`` under ``name``; returns ``fn`` unchanged.

    Raises:
        ValueError: if a different function is already registered under ``name``.
    """

    def decorator(fn: TermFn) -> TermFn:
        existing = REWARD_TERM_REGISTRY.get(name)
        if existing is not None and existing is not fn:
            raise ValueError(f"Reward term {name!r} is already registered to {existing.__module__}."
                             f"{existing.__qualname__}; refusing to replace it with {fn.__module__}.{fn.__qualname__}")
        REWARD_TERM_REGISTRY[name] = fn
        return fn

    return decorator


def get_term_fn(name: str) -> TermFn:
    """Look up a registered term; raises ``ValueError`` listing the known names."""
    try:
        return REWARD_TERM_REGISTRY[name]
    except KeyError:
        raise ValueError(f"Unknown reward term {name!r}; registered terms: {sorted(REWARD_TERM_REGISTRY)}") from None


@register_term("strict_format_cot")
def _strict_format_cot_term(x: TrajectoryRewardInputs) -> float:
    return strict_format_cot(x.turns, parity=x.parity)


@register_term("step_format_cot")
def _step_format_cot_term(x: TrajectoryRewardInputs) -> float:
    return step_format_cot(x.turns)


@register_term("lr_vtg_iou_dense")
def _lr_vtg_iou_dense_term(x: TrajectoryRewardInputs) -> float:
    return lr_vtg_iou_dense(x.turns, x.mask_existence, parity=x.parity)


@register_term("lr_vtg_keyframe")
def _lr_vtg_keyframe_term(x: TrajectoryRewardInputs) -> float:
    return lr_vtg_keyframe(x.turns, x.mask_existence, parity=x.parity)


@register_term("lr_maskiou_dense")
def _lr_maskiou_dense_term(x: TrajectoryRewardInputs) -> float:
    return lr_maskiou_dense(x.per_round_maskious)


@register_term("lr_keyframe_vs_mask_dense")
def _lr_keyframe_vs_mask_dense_term(x: TrajectoryRewardInputs) -> float:
    return lr_keyframe_vs_mask_dense(x.per_round_maskious, x.per_round_keyframe_ious, parity=x.parity)


@register_term("lr_progressive_keyframe_dense")
def _lr_progressive_keyframe_dense_term(x: TrajectoryRewardInputs) -> float:
    return lr_progressive_keyframe_dense(x.per_round_keyframe_ious, parity=x.parity)


@register_term("jf")
def _jf_term(x: TrajectoryRewardInputs) -> float:
    """J&F of the propagated final mask, in [0, 1] (not one of the paper's seven terms)."""
    if x.jf is None:
        raise ValueError("Reward term 'jf' needs TrajectoryRewardInputs.jf (J&F of the propagated final mask), "
                         "got None; compute it with videoseg_reward.metrics.jf_score or drop 'jf' from the spec")
    value = _to_float(x.jf, "jf", "TrajectoryRewardInputs.jf")
    if not math.isfinite(value):
        raise ValueError(f"Reward term 'jf': TrajectoryRewardInputs.jf must be finite, got {value}")
    return value


PAPER_TERMS: tuple[str, ...] = (
    "strict_format_cot",
    "step_format_cot",
    "lr_vtg_iou_dense",
    "lr_vtg_keyframe",
    "lr_maskiou_dense",
    "lr_keyframe_vs_mask_dense",
    "lr_progressive_keyframe_dense",
)
"""The seven terms of train_rl.sh, in its order (equal weights, summed)."""


@dataclass(frozen=True)
class RewardSpec:
    """A weighted sum of registered reward terms: ``total = Σ_i weights[i] · term_i(inputs)``.

    Example:
        >>> spec = RewardSpec.paper()
        >>> x = TrajectoryRewardInputs(
        ...     turns=['<think>Step 1 Step 2 Step 3 Action</think><answer><VTG>{"start": 2, "end": 6, '
        ...            '"keyframe": 3}</VTG>, <RefSeg>[SEG]</RefSeg></answer>'],
        ...     mask_existence=[0, 0, 1, 1, 1, 1, 0, 0], per_round_maskious=[[0.9] * 5],
        ...     per_round_keyframe_ious=[0.8])
        >>> total, per_term = spec.compute(x)
        >>> round(total, 4)   # 1 + 1 + 0.5·4/(4+1e-6) + 1 + 1.5 + 0 + 0 (single turn: no dense multi-turn terms)
        5.0
    """

    terms: tuple[str, ...]
    """Registered term names, e.g. :data:`PAPER_TERMS`; unique."""
    weights: tuple[float, ...] | None = None
    """One finite weight per term; ``None`` means 1.0 each."""

    def __post_init__(self) -> None:
        if isinstance(self.terms, str):
            raise TypeError(f"RewardSpec.terms must be a sequence of term names, got the string {self.terms!r}")
        terms = tuple(self.terms)
        if not terms:
            raise ValueError("RewardSpec.terms must name at least one term")
        unknown = [t for t in terms if t not in REWARD_TERM_REGISTRY]
        if unknown:
            raise ValueError(f"RewardSpec.terms: unknown term(s) {unknown}; registered: {sorted(REWARD_TERM_REGISTRY)}")
        dupes = sorted({t for t in terms if terms.count(t) > 1})
        if dupes:
            raise ValueError(f"RewardSpec.terms: duplicate term(s) {dupes}; list each term once and use weights")
        weights = (1.0,) * len(terms) if self.weights is None else tuple(float(w) for w in self.weights)
        if len(weights) != len(terms):
            raise ValueError(f"RewardSpec: {len(weights)} weights for {len(terms)} terms {terms}; give one per term")
        bad = [w for w in weights if not math.isfinite(w)]
        if bad:
            raise ValueError(f"RewardSpec.weights must be finite, got {bad}")
        object.__setattr__(self, "terms", terms)
        object.__setattr__(self, "weights", weights)

    @classmethod
    def paper(cls) -> RewardSpec:
        """The paper's reward: the seven terms of :data:`PAPER_TERMS`, weight 1 each (max total 6.0)."""
        return cls(terms=PAPER_TERMS)

    def compute(self, inputs: TrajectoryRewardInputs) -> tuple[float, dict[str, float]]:
        """Return ``(total, per_term)``; ``per_term`` holds the UNweighted value of each term (float64)."""
        per_term = {name: float(get_term_fn(name)(inputs)) for name in self.terms}
        total = sum(w * per_term[name] for name, w in zip(self.terms, self.weights))  # type: ignore[arg-type]
        return float(total), per_term
