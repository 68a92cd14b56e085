# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""One inference episode (the released evaluation loop): first turn, greedy turns, `<select>` observations.

Turns are parsed with the environment's protocol (`env.mode`, `env.parser_parity`): the inference parser under
`EnvConfig.eval()`, the RL rollout's under `EnvConfig.train()` (the learning demo). The loop stops when a turn has
no parsable `<select>` (an answer, garbage, bad JSON, or end < start after clamping) or after `max_turns` turns;
a `<select>` in the last turn ends the episode too (its keyframe still counts for the final mask, see
:func:`~videoseg_o3_verl.eval.keyframe.final_keyframe`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from videoseg_o3_verl.env import (
    EnvConfig,
    FrameLoader,
    initial_user_content,
    parse_action,
    select_observation_content,
    system_message,
)
from videoseg_o3_verl.eval.policy import Generation, Policy, turn_content


@dataclass
class Turn:
    """One assistant turn and the observation that answered it."""

    text: str
    """Decoded assistant text."""
    kind: str
    """Parsed action: "select", "answer" or "invalid"."""
    vtg: dict[str, int] | None = None
    """Clamped start/end/keyframe of the action when parsed."""
    reason: str | None = None
    """Why the action is invalid."""
    shown_low_res: list[int] = field(default_factory=list)
    """Low-resolution frames of the observation that followed (empty if none)."""
    shown_keyframe: int | None = None
    """High-resolution keyframe of the observation that followed."""


@dataclass
class Episode:
    """What the policy saw and said."""

    initial_low_res: list[int]
    """First-turn low-resolution frame indices."""
    spatial_indices: list[int]
    """First-turn high-resolution frame indices."""
    turns: list[Turn]
    """Assistant turns in order."""
    final: Generation
    """The last generation (its context is the final context of the [SEG] hidden state)."""
    messages: list[dict[str, Any]]
    """The whole conversation (images as PIL)."""
    generations: list[Generation] = field(default_factory=list)
    """Every turn's generation (its context gives the turn's [SEG] hidden states)."""

    @property
    def turn_texts(self) -> list[str]:
        return [t.text for t in self.turns]

    @property
    def shown_frames(self) -> list[int]:
        """Every frame index the policy was shown, in order (repeats kept)."""
        shown = self.initial_low_res + self.spatial_indices
        for turn in self.turns:
            shown += turn.shown_low_res + ([turn.shown_keyframe] if turn.shown_keyframe is not None else [])
        return shown


def run_episode(policy: Policy, video: FrameLoader, expression: str, env: EnvConfig) -> Episode:
    """Run the inference protocol on one (video, expression).

    Args:
        policy: generates turns (greedy, `env.max_new_tokens` per turn).
        video: frame loader of the whole video.
        expression: the referring / reasoning expression.
        env: environment constants (use `EnvConfig.eval()`).
    """
    return run_episodes(policy, [(video, expression)], env)[0]


@dataclass
class _Running:
    """An episode in progress."""

    video: FrameLoader
    expression: str
    messages: list[dict[str, Any]]
    images: list[Any]
    shown: Any
    turns: list[Turn] = field(default_factory=list)
    generations: list[Generation] = field(default_factory=list)
    done: bool = False


def generate_turns(policy: Policy, requests: list[tuple[list[dict[str, Any]], list[Any]]], max_new_tokens: int
                   ) -> list[Generation]:
    """One greedy turn for each (messages, images): the policy's `generate_batch` when it has one (left-padded
    batches, the same tokens as one at a time), else `generate` per request."""
    batch = getattr(policy, "generate_batch", None)
    if batch is not None and len(requests) > 1:
        return batch(requests, max_new_tokens)
    return [policy.generate(messages, images, max_new_tokens) for messages, images in requests]


def run_episodes(policy: Policy, items: list[tuple[FrameLoader, str]], env: EnvConfig) -> list[Episode]:
    """:func:`run_episode` for several (video, expression) at once: each turn's generations of the episodes still
    running are made together (:func:`generate_turns`); every episode follows the protocol on its own."""
    running = []
    for video, expression in items:
        content, shown = initial_user_content(video, expression, env)
        running.append(_Running(video=video, expression=expression, shown=shown,
                                messages=[system_message(), {"role": "user", "content": content}],
                                images=[item["image"] for item in content if item["type"] == "image"]))
    for index in range(env.max_turns):
        active = [r for r in running if not r.done]
        if not active:
            break
        generations = generate_turns(policy, [(r.messages, r.images) for r in active], env.max_new_tokens)
        for episode, generation in zip(active, generations, strict=True):
            _advance(episode, generation, index, env)
    return [Episode(initial_low_res=list(r.shown.low_res_indices), spatial_indices=list(r.shown.high_res_indices),
                    turns=r.turns, final=r.generations[-1], messages=r.messages, generations=r.generations)
            for r in running]


def _advance(episode: _Running, generation: Generation, index: int, env: EnvConfig) -> None:
    """Record one turn of `episode`; end it, or append the `<select>` observation."""
    num_frames = len(episode.video)
    episode.generations.append(generation)
    episode.messages.append({"role": "assistant", "content": turn_content(generation.text)})
    action = parse_action(generation.text, num_frames, mode=env.mode, parity=env.parser_parity)
    vtg = None
    if action.start is not None and action.end is not None and action.keyframe is not None:
        vtg = {"start": action.start, "end": action.end, "keyframe": action.keyframe}
    turn = Turn(text=generation.text, kind=action.kind, vtg=vtg, reason=action.reason)
    episode.turns.append(turn)
    if action.kind != "select" or index == env.max_turns - 1:
        episode.done = True
        return
    observation, seen = select_observation_content(episode.video, action, episode.expression, env)
    episode.messages.append({"role": "user", "content": observation})
    episode.images = episode.images + [item["image"] for item in observation if item["type"] == "image"]
    turn.shown_low_res, turn.shown_keyframe = list(seen.low_res_indices), seen.keyframe
