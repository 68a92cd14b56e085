# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Scripted responses for the HF rollout backend (tests and demos).

A random tiny model never writes a valid ``<select>``; to exercise multi-turn trajectories through the real
trainer, the HF server can answer some requests with fixed text instead of sampling. The reply's log-probs are
still the model's own (teacher-forced), so the trainer's bookkeeping is unchanged.

File format (JSON): ``{"rules": [{"turn": 0, "match": "red square", "response": "<think>…</think>…"}, …]}``.
A rule applies when every given condition holds: ``turn`` = number of assistant turns already in the prompt,
``match`` = substring of the decoded prompt. The first applicable rule wins; otherwise the model samples.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SCRIPTED_FIELD = "scripted"
"""Key of ``TokenOutput.extra_fields`` (and of the trajectory's ``extra_fields``) that is True for a scripted reply."""

SCRIPTED_FRACTION_METRIC = "rollout/scripted_fraction"
"""Metric: the fraction of a step's trajectories that contain a scripted reply (0 in a real run)."""

CONFIG_KEY = "actor_rollout_ref.rollout.engine_kwargs.{backend}.scripted_responses"
"""The only way to switch scripted replies on (tests and demos): ``hf`` with ``rollout.name=hf``, or ``vllm`` with
``rollout.name=vllm`` on a CPU machine (the plugin's vLLM-CPU server; verl's stock GPU server has none)."""

SCRIPTED_BACKENDS = ("hf", "vllm")
"""Rollout backends whose plugin server honours scripted replies."""


@dataclass(frozen=True)
class ScriptRule:
    """One scripted reply."""

    response: str
    """Assistant text to return (``<|im_end|>`` is appended when missing)."""
    turn: int | None = None
    """Apply only when this many assistant turns precede the request (0 = first turn)."""
    match: str | None = None
    """Apply only when this substring occurs in the decoded prompt."""
    probability: float = 1.0
    """Apply to this fraction of the matching requests (e.g. 0.5: some trajectories of a GRPO group sample)."""


@dataclass(frozen=True)
class ScriptedResponses:
    """An ordered list of :class:`ScriptRule`."""

    rules: tuple[ScriptRule, ...]

    @classmethod
    def load(cls, path: str | Path) -> ScriptedResponses:
        path = Path(path)
        try:
            payload = json.loads(path.read_text())
            rules = tuple(ScriptRule(**rule) for rule in payload["rules"])
        except FileNotFoundError:
            raise
        except (KeyError, TypeError, json.JSONDecodeError) as err:
            raise ValueError(f"Scripted responses file {path} is malformed ({err}); expected "
                             '{"rules": [{"response": str, "turn": int?, "match": str?}, ...]}') from err
        return cls(rules)

    def pick(self, prompt_text: str, draw: float = 0.0) -> str | None:
        """The scripted reply for a prompt, or ``None`` to let the model sample.

        ``draw`` is a uniform number in [0, 1) from the caller's seeded generator; a rule with ``probability`` p
        applies when ``draw < p``.
        """
        turn = max(prompt_text.count("<|im_start|>assistant") - 1, 0)
        for rule in self.rules:
            if rule.turn is not None and rule.turn != turn:
                continue
            if rule.match is not None and rule.match not in prompt_text:
                continue
            if draw >= rule.probability:
                continue
            return rule.response if rule.response.endswith("<|im_end|>") else rule.response + "<|im_end|>"
        return None

    def reply_ids(self, tokenizer, prompt_ids: list[int], draw: float = 0.0) -> list[int] | None:
        """:meth:`pick` on the decoded prompt, as token ids (``None`` to let the model sample)."""
        reply = self.pick(tokenizer.decode(list(prompt_ids), skip_special_tokens=False), draw)
        return None if reply is None else tokenizer.encode(reply, add_special_tokens=False)


def stratified_draw(offset: float, ordinal: int) -> float:
    """The ``ordinal``-th draw in [0, 1) of a rotated van der Corput sequence (base 2) starting at ``offset``.

    Used for the samples of one GRPO group (same prompt, ordinals 0, 1, 2, ...): any 2^m consecutive ordinals
    starting at 0 cover [0, 1) in equal strata, so a rule with probability 0.5 scripts exactly one sample of a pair
    and two of four, instead of sometimes none.

    Example:
        >>> [stratified_draw(0.1, k) for k in range(4)]  # 0.1 + (0, 1/2, 1/4, 3/4) modulo 1
        [0.1, 0.6, 0.35, 0.85]
    """
    radical, scale, k = 0.0, 0.5, int(ordinal)
    while k:
        radical += scale * (k & 1)
        k >>= 1
        scale /= 2
    return round((offset + radical) % 1.0, 12)


def scripted_fraction(extra_fields: Sequence[dict | None]) -> float:
    """:data:`SCRIPTED_FRACTION_METRIC` of a batch: the share of trajectories whose ``extra_fields`` say scripted.

    Example:
        >>> scripted_fraction([{"scripted": True}, {"scripted": False}, {}, None])
        0.25
    """
    if not extra_fields:
        return 0.0
    return sum(bool((fields or {}).get(SCRIPTED_FIELD)) for fields in extra_fields) / len(extra_fields)


def check_scripted_rollout(rollout_config) -> None:
    """Refuse scripted replies that the configured rollout backend would silently ignore.

    ``engine_kwargs.<backend>.scripted_responses`` is honoured only when ``rollout.name`` is that backend.

    Raises:
        ValueError: naming the :data:`CONFIG_KEY` that is set and the configured ``rollout.name``.
    """
    engine_kwargs = rollout_config.get("engine_kwargs", None) or {}
    name = rollout_config.get("name", None)
    for backend in SCRIPTED_BACKENDS:
        if (engine_kwargs.get(backend, None) or {}).get("scripted_responses") and name != backend:
            key = CONFIG_KEY.format(backend=backend)
            raise ValueError(f"{key} is set but actor_rollout_ref.rollout.name={name!r}: those scripted replies exist "
                             f"only for the {backend} rollout backend (tests and demos); remove the key or use "
                             f"rollout.name={backend}")
