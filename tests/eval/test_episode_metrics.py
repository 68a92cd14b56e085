# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Per-episode metrics of `videoseg-o3 eval` and the fixed-guess baseline's answer (hand-computed cases)."""

from __future__ import annotations

import pytest
from videoseg_reward.terms import TrajectoryRewardInputs

from videoseg_o3_verl.eval.compare import best_variant
from videoseg_o3_verl.eval.episode_metrics import episode_metrics, final_tiou, jf_percent
from videoseg_o3_verl.eval.fixed_guess import FixedGuessModels, guess_text

THINK = "<think>Step 1: red. Step 2: seen in 2, 3. Step 3: from 2 to 4. Action: answer.</think>"
EXISTENCE = [0, 0, 1, 1, 0, 0, 0, 0]  # the target is visible in frames 2 and 3


def answer(start, end, keyframe, quote='"'):
    vtg = f'{{{quote}start{quote}: {start}, {quote}end{quote}: {end}, {quote}keyframe{quote}: {keyframe}}}'
    return f"{THINK}<answer><VTG>{vtg}</VTG>, <RefSeg>[SEG]</RefSeg></answer><|im_end|>"


def metrics(turns, mask_ious=None, key_ious=None, parity=True, jf=50.0):
    n = len(turns)
    inputs = TrajectoryRewardInputs(turns=turns, mask_existence=EXISTENCE,
                                    per_round_maskious=mask_ious or [[0.0, 0.0]] * n,
                                    per_round_keyframe_ious=key_ious or [0.0] * n, parity=parity)
    return episode_metrics(inputs, jf)


def test_single_answer_turn_hand_computed():
    m = metrics([answer(2, 4, 3)], mask_ious=[[0.9, 0.9]], key_ious=[0.8])
    assert m["format_valid"] == 1.0
    assert m["keyframe_hit"] == 1.0                      # frame 3 is visible
    assert m["tiou"] == pytest.approx(2 / 3)             # [2..4] vs {2, 3}: 2 shared of 3
    assert m["jf"] == 50.0
    # paper reward: strict 1 + steps 4/4 + vtg 0.5 * precision([2, 4) = {2, 3}) = 0.5 + keyframe 1
    # + mask g(0.9) = min((0.9 - 0.4) * 3, 1.5) = 1.5 + the two multi-turn terms 0 (one turn) = 5.0
    assert m["reward_total"] == pytest.approx(5.0, abs=1e-5)
    assert m["reward_terms"]["lr_maskiou_dense"] == pytest.approx(1.5)


def test_missed_keyframe_and_interval():
    m = metrics([answer(5, 7, 6)])
    assert (m["keyframe_hit"], m["tiou"]) == (0.0, 0.0)  # frame 6 not visible; [5..7] and {2, 3} are disjoint


def test_unparsable_final_answer_scores_zero():
    m = metrics(["I do not know <|im_end|>"])
    assert (m["format_valid"], m["keyframe_hit"], m["tiou"]) == (0.0, 0.0, 0.0)
    no_keyframe = f'{THINK}<answer><VTG>{{"start": 2, "end": 3}}</VTG>, <RefSeg>[SEG]</RefSeg></answer>'
    m = metrics([no_keyframe])
    assert (m["keyframe_hit"], m["tiou"]) == (0.0, 0.0)  # strict parser: a missing key is no answer


def test_format_follows_the_reward_parity_switch():
    # two answers: the released format reward (parity) does not check the tag order, the clean one asks for
    # select ... select, answer
    assert metrics([answer(2, 3, 2)] * 2, parity=True)["format_valid"] == 1.0
    assert metrics([answer(2, 3, 2)] * 2, parity=False)["format_valid"] == 0.0
    # single quotes are not JSON: the strict format fails, the interval still parses (literal_eval)
    m = metrics([answer(2, 3, 2, quote="'")])
    assert (m["format_valid"], m["keyframe_hit"], m["tiou"]) == (0.0, 1.0, 1.0)


def test_final_turn_decides():
    select = answer(0, 7, 6).replace("answer>", "select>")
    assert metrics([select, answer(2, 3, 3)])["keyframe_hit"] == 1.0
    assert metrics([answer(2, 3, 3), answer(0, 1, 0)])["keyframe_hit"] == 0.0
    assert final_tiou([], EXISTENCE) == 0.0


def test_jf_percent():
    assert jf_percent({"J": 0.5, "F": 0.7}) == pytest.approx(60.0)
    assert jf_percent(None) == 0.0


def test_fixed_guess_answer_is_format_valid_middle_keyframe_whole_video():
    text = guess_text(8)
    assert '{"start": 0, "end": 7, "keyframe": 4}' in text
    m = metrics([text])
    assert m["format_valid"] == 1.0 and m["reward_terms"]["step_format_cot"] == 1.0
    assert m["keyframe_hit"] == 0.0                      # frame 4 is not visible
    assert m["tiou"] == pytest.approx(2 / 8)             # [0..7] vs {2, 3}
    with pytest.raises(ValueError, match="fixed_guess"):
        FixedGuessModels("half", env=None)


def test_best_variant_by_mean_reward_total():
    tables = {"empty": {"reward_total": {"mean": 0.2}}, "full": {"reward_total": {"mean": -0.1}}}
    assert best_variant(tables) == "empty"
    tables["full"]["reward_total"]["mean"] = 0.3
    assert best_variant(tables) == "full"
