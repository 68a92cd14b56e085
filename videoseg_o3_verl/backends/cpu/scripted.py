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
from dataclasses import dataclass
from pathlib import Path


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
