# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The reward path training runs, with every expected value worked out by hand: mask logits → the per-turn IoUs the
seg-head engine computes (``rewards.video_mask_ious`` / ``keyframe_iou``) → the engine's padded per-sample outputs →
``round_ious`` → ``score_sample`` → ``reward_metrics``.

Bilinear 2x2 → 4x4 upsampling (align_corners=False): along each axis output pixel i reads source coordinate
(i + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25, clamped to [0, 1], so the weight of source cell 0 is
(1, 0.75, 0.25, 0) for i = 0..3. With logits [[a, -1], [-1, -1]] the upsampled value at (i, j) is
-1 + (a + 1)·w_i·w_j, positive iff w_i·w_j > 1 / (a + 1):
  * a = 1 ("QUAD"):  w_i·w_j > 0.5  → only (0,0) 1, (0,1)/(1,0) 0.75, (1,1) 0.5625 → the top-left 2x2 block;
  * a = 4 ("STAIR"): w_i·w_j > 0.2  → additionally (0,2)/(2,0) 0.25 → 6 pixels
    {(0,0),(0,1),(0,2),(1,0),(1,1),(2,0)} (while (1,2) 0.1875 and (2,2) 0.0625 stay negative).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from videoseg_o3_verl.config import load_videoseg_config
from videoseg_o3_verl.data.records import RVOSRecord
from videoseg_o3_verl.data.rle import encode_mask
from videoseg_o3_verl.env import EnvConfig
from videoseg_o3_verl.rewards import frame_ious, keyframe_iou, logits_to_masks, video_mask_ious
from videoseg_o3_verl.trajectory import Trajectory, TurnRecord
from videoseg_o3_verl.verl_ext.reward_metrics import reward_metrics, warn_unscored
from videoseg_o3_verl.verl_ext.rewarding import (
    FRAME_SLOTS,
    frame_slot_problems,
    reward_spec_from,
    round_ious,
    score_batch,
    score_sample,
    unscored_reason,
)

EPS = 1e-6


def _logits(a: float) -> torch.Tensor:
    """[2, 2] logits [[a, -1], [-1, -1]] (see the module docstring for the upsampled sign pattern)."""
    return torch.tensor([[a, -1.0], [-1.0, -1.0]])


QUAD = _logits(1.0)   # → top-left 2x2 block of a 4x4 frame
STAIR = _logits(4.0)  # → 6-pixel staircase containing the top-left 2x2 block
EMPTY = -torch.ones(2, 2)  # → empty mask
TOP_RIGHT = torch.tensor([[-1.0, 1.0], [-1.0, -1.0]])  # mirror of QUAD → top-right 2x2 block


def _square(r0: int, c0: int, size: int = 4) -> np.ndarray:
    """[4, 4] bool GT with a 2x2 square whose top-left corner is (r0, c0)."""
    m = np.zeros((size, size), dtype=bool)
    m[r0:r0 + 2, c0:c0 + 2] = True
    return m


def test_logits_to_masks_bilinear_sign_patterns():
    quad = np.zeros((4, 4), dtype=bool)
    quad[:2, :2] = True
    stair = quad.copy()
    stair[0, 2] = stair[2, 0] = True  # w = 0.25 > 1/5 (module docstring)
    out = logits_to_masks(torch.stack([QUAD, STAIR, EMPTY, TOP_RIGHT]), (4, 4)).numpy()
    assert (out[0] == quad).all() and (out[1] == stair).all() and not out[2].any()
    assert (out[3] == quad[:, ::-1]).all()


@pytest.mark.parametrize("logits, gt, expected", [
    # top-left block vs the same block: 4 / (4 + 1e-6)
    (QUAD, _square(0, 0), 4 / (4 + EPS)),
    # top-left block vs the block shifted by (1, 1): shared pixel (1, 1) only; union 4 + 4 - 1 = 7
    (QUAD, _square(1, 1), 1 / (7 + EPS)),
    # staircase (6 px) vs top-left block (4 px inside it): 4 / 6
    (STAIR, _square(0, 0), 4 / (6 + EPS)),
    # staircase vs block at (2, 2): no overlap → 0
    (STAIR, _square(2, 2), 0.0),
    # empty prediction and empty GT: union 0 < 1 → 1.0 for video frames
    (EMPTY, np.zeros((4, 4), dtype=bool), 1.0),
    # empty prediction, non-empty GT: 0 / 4
    (EMPTY, _square(0, 0), 0.0),
])
def test_frame_ious_hand_computed(logits, gt, expected):
    assert frame_ious(logits[None], gt[None]) == [pytest.approx(expected, abs=1e-12)]


def test_frame_ious_per_frame_and_non_square_upsampling():
    # 2x2 → 4x8: the row weights of source row 0 are (1, 0.75, 0.25, 0); along columns x = (j + 0.5)/4 − 0.5 gives
    # weights of source column 0 of (1, 1, 0.875, 0.625, 0.375, 0.125, 0, 0). QUAD is positive where the product
    # is > 0.5: row 0 → columns 0..3; row 1 (0.75) → columns 0..2 (0.75·0.625 = 0.47 fails) → 7 pixels.
    gt = np.zeros((2, 4, 8), dtype=bool)
    gt[0, :2, :4] = True   # 8 px containing all 7 predicted → 7 / 8
    gt[1, :2, :2] = True   # 4 px inside the 7-px prediction → 4 / 7
    ious = frame_ious(torch.stack([QUAD, QUAD]), gt)
    assert ious == [pytest.approx(7 / (8 + EPS), abs=1e-12), pytest.approx(4 / (7 + EPS), abs=1e-12)]


def test_video_mask_ious_mean_over_objects_and_no_seg():
    gt = np.stack([_square(0, 0), np.zeros((4, 4), dtype=bool)])
    obj_a = torch.stack([QUAD, EMPTY])    # frame 0: 4/4; frame 1: both empty → 1
    obj_b = torch.stack([STAIR, STAIR])   # frame 0: 4/6; frame 1: 6-px prediction vs empty GT → 0
    ious = video_mask_ious([obj_a, obj_b], gt)
    assert ious == [pytest.approx((4 / (4 + EPS) + 4 / (6 + EPS)) / 2), pytest.approx((1.0 + 0.0) / 2)]
    assert video_mask_ious([], gt) == [0.0, 0.0]  # turn without [SEG]


@pytest.mark.parametrize("logits, gt, expected", [
    ([QUAD], _square(0, 0), 4 / (4 + EPS)),                 # single [SEG], perfect
    ([EMPTY], np.zeros((4, 4), dtype=bool), 0.0),          # both empty → 0 for the KEYFRAME (spec asymmetry)
    ([QUAD, TOP_RIGHT], _square(0, 0), 0.0),               # the LAST [SEG] (top-right) is scored: no overlap
    ([TOP_RIGHT, QUAD], _square(0, 0), 4 / (4 + EPS)),     # ... and here the last one is the perfect one
    ([QUAD, STAIR], _square(0, 0), 4 / (6 + EPS)),         # last = staircase: 4 / 6
    ([], _square(0, 0), 0.0),                               # no [SEG] → 0
])
def test_keyframe_iou_last_seg_and_both_empty(logits, gt, expected):
    assert keyframe_iou(logits, gt) == pytest.approx(expected, abs=1e-12)


def test_iou_input_errors_name_the_argument():
    with pytest.raises(ValueError, match="pred_logits has 2 frames but gt_masks has 1"):
        frame_ious(torch.stack([QUAD, QUAD]), _square(0, 0)[None])
    with pytest.raises(TypeError, match="floating-point"):
        frame_ious(torch.ones(1, 2, 2, dtype=torch.long), _square(0, 0)[None])
    with pytest.raises(ValueError, match=r"\[h, w\]"):
        keyframe_iou([QUAD[None]], _square(0, 0))


# ----------------------------------------------------------------------------------------------------------
# A fixed 3-turn trajectory (select, select, answer) scored under the paper reward
# ----------------------------------------------------------------------------------------------------------

L = 8
EXISTENCE = [0, 0, 1, 1, 1, 1, 1, 0]      # target visible in frames 2..6, as the 2x2 top-left block
SPATIAL = [0, 1, 3, 5, 7]                 # linspace(0, 7, 5) as ints (docs/method.md §3.1); existence there: 0 0 1 1 0
FULL_THINK = "<think>Step 1: when. Step 2: where. Step 3: what. Action: look.</think>"
HALF_THINK = "<think>Step 1: when. Step 2: where.</think>"  # 2 of 4 keywords


def _turn(think: str, tag: str, start: int, end: int, key: int, n_seg: int = 1) -> str:
    segs = " ".join(["[SEG]"] * n_seg)
    return (f'{think}<{tag}><VTG>{{"start": {start}, "end": {end}, "keyframe": {key}}}</VTG>, '
            f"<RefSeg>{segs}</RefSeg></{tag}><|im_end|>")


def _record(with_gt: bool = True) -> RVOSRecord:
    gt = [encode_mask(_square(0, 0)) if e else None for e in EXISTENCE]
    return RVOSRecord(dataset="handmade", video_id="v0", video_path="/nonexistent/v0", frame_ids=(), num_frames=L,
                      expression="the square", expression_id="0", object_ids=(1,),
                      mask_existence=EXISTENCE if with_gt else (), masks_rle=gt if with_gt else (), type_id=None,
                      height=4, width=4)


def _trajectory() -> Trajectory:
    texts = [_turn(FULL_THINK, "select", 1, 6, 3), _turn(HALF_THINK, "select", 2, 6, 5, n_seg=2),
             _turn(FULL_THINK, "answer", 2, 6, 5)]
    # seg keyframes: turn 0 → L // 2 = 4, then the keyframes selected in turns 0 and 1 (3, then 5)
    turns = [TurnRecord(index=0, span=(0, 40), text=texts[0], kind="select", seg_keyframe=4, seg_positions=[30]),
             TurnRecord(index=1, span=(60, 100), text=texts[1], kind="select", seg_keyframe=3,
                        seg_positions=[88, 90]),
             TurnRecord(index=2, span=(120, 160), text=texts[2], kind="answer", seg_keyframe=5,
                        seg_positions=[150])]
    return Trajectory(num_frames=L, initial_low_res=list(range(L)), spatial_frames=SPATIAL, turns=turns,
                      stop_reason="answer")


def _fixed_logits():
    video = [
        [torch.stack([EMPTY] * 5)],                                            # turn 0: one [SEG], nothing
        [torch.stack([EMPTY] * 5), torch.stack([QUAD] * 5)],                   # turn 1: two [SEG]
        [torch.stack([EMPTY, EMPTY, STAIR, EMPTY, EMPTY])],                    # turn 2 (last)
    ]
    keyframe = [[EMPTY], [QUAD, TOP_RIGHT], [QUAD]]
    return video, keyframe


# per-turn IoUs of the fixed logits (M_t on spatial frames [0, 1, 3, 5, 7] whose GT is [empty, empty, block, block,
# empty]; K_t on the turn's seg keyframe):
#   turn 0, EMPTY everywhere: both-empty → 1 on frames 0, 1, 7; 0/4 on frames 3, 5; keyframe 4 EMPTY vs block = 0
#   turn 1, mean of EMPTY ([1, 1, 0, 0, 1]) and QUAD (0 on empty-GT frames, 4/4 on 3 and 5); keyframe 3: the LAST
#     [SEG] TOP_RIGHT vs block = 0 (the perfect first [SEG] is ignored)
#   turn 2: frame 3 STAIR vs block = 4/6; frame 5 EMPTY vs block = 0; frames 0, 1, 7 both empty = 1; keyframe 5: QUAD
FULL = 4 / (4 + EPS)
HAND_FRAMES = [[1.0, 1.0, 0.0, 0.0, 1.0], [0.5, 0.5, FULL / 2, FULL / 2, 0.5], [1.0, 1.0, 4 / (6 + EPS), 0.0, 1.0]]
HAND_KEYS = [0.0, 0.0, FULL]


def test_turn_ious_of_the_fixed_trajectory_hand_computed():
    # what the engine computes per turn, from that turn's own [SEG]s
    video, keyframe = _fixed_logits()
    record, traj = _record(), _trajectory()
    gt_spatial = np.stack([record.decode_mask(i) for i in traj.spatial_frames])
    for t, turn in enumerate(traj.turns):
        assert video_mask_ious(video[t], gt_spatial) == pytest.approx(HAND_FRAMES[t], abs=1e-12)
        assert keyframe_iou(keyframe[t], record.decode_mask(turn.seg_keyframe)) == pytest.approx(HAND_KEYS[t])


def _engine_outputs(frames, keys, max_turns: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """One sample's ``videoseg_frame_ious`` / ``videoseg_keyframe_ious`` as the engine writes them: FRAME_SLOTS per
    turn, −1 padding (the output contract, written out here by hand)."""
    frame_row = torch.full((max_turns * FRAME_SLOTS,), -1.0)
    key_row = torch.full((max_turns,), -1.0)
    for t, (values, key) in enumerate(zip(frames, keys)):
        frame_row[t * FRAME_SLOTS: t * FRAME_SLOTS + len(values)] = torch.tensor(values)
        key_row[t] = key
    return frame_row, key_row


def _extra_info(record: RVOSRecord) -> dict:
    return record.to_row(0)["extra_info"]


def test_round_ious_unpacks_the_engine_layout():
    frame_row, key_row = _engine_outputs(HAND_FRAMES, HAND_KEYS)
    mask_ious, key_ious = round_ious(_trajectory(), frame_row, key_row)
    # float32 storage: compare at float32 precision; the −1 padding after each turn's 5 frames is not read
    assert len(mask_ious) == 3 and key_ious == pytest.approx(HAND_KEYS, abs=1e-6)
    for got, want in zip(mask_ious, HAND_FRAMES):
        assert got == pytest.approx(want, abs=1e-6)
    # a turn the engine did not fill (−1) reads as IoU 0
    traj = _trajectory()
    frame_row, key_row = _engine_outputs(HAND_FRAMES[:2], HAND_KEYS[:2])
    mask_ious, key_ious = round_ious(traj, frame_row, key_row)
    assert mask_ious[2] == [0.0] * 5 and key_ious[2] == 0.0
    traj.spatial_frames = list(range(FRAME_SLOTS + 1))
    with pytest.raises(ValueError, match="10 spatial frames but the reward packing holds 9"):
        round_ious(traj, frame_row, key_row)


def _paper_expected() -> dict[str, float]:
    stair_iou = 4 / (6 + EPS)  # M_last[2]
    return {
        # strict_format_cot every turn has <think>…</think><select|answer> with strict-JSON VTG and [SEG] in <RefSeg>
        # → +1
        "strict_format_cot": 1.0,
        # step_format_cot keywords per turn 4/4, 2/4, 4/4 → mean (1 + 0.5 + 1) / 3
        "step_format_cot": 2.5 / 3,
        # lr_vtg_iou_dense last turn VTG start 2, end 6 → frames [2, 6) = 2,3,4,5, all visible: precision 4 / (4 +
        # 1e-6),
        # ≥ 0.5 → 0.5 · precision
        "lr_vtg_iou_dense": 0.5 * 4 / (4 + EPS),
        # lr_vtg_keyframe keyframe 5 is visible → +1
        "lr_vtg_keyframe": 1.0,
        # lr_maskiou_dense g(u) on M_last = [1, 1, 4/6, 0, 1]: g(1) = min(3·0.6, 1.5) = 1.5 (×3),
        # g(4/6) = 3·(4/6 − 0.4) = 0.8,
        # g(0) = −1 → (4.5 + 0.8 − 1) / 5 = 0.86
        "lr_maskiou_dense": (3 * 1.5 + 3 * (stair_iou - 0.4) - 1.0) / 5,
        # lr_keyframe_vs_mask_dense: δ = K_last − mean(M_last) = 1 − 3.6667/5 = 0.2667 > 0.1 → 0.5 (parity: the `if`
        # bug)
        "lr_keyframe_vs_mask_dense": 0.5,
        # lr_progressive_keyframe_dense: δ = K_last − max(K_0, K_1) = 1 − 0 > 0.05 → 0.5 (parity)
        "lr_progressive_keyframe_dense": 0.5,
    }


def _settings(jf: bool = False):
    settings = load_videoseg_config(None)
    settings.rewards.jf.enabled = jf
    return settings


def test_score_sample_paper_reward_hand_computed():
    frame_row, key_row = _engine_outputs(HAND_FRAMES, HAND_KEYS)
    traj = _trajectory()
    sample = score_sample(reward_spec_from(_settings()), traj.to_extra_fields(), _extra_info(_record()), frame_row,
                          key_row, parity=True)
    expected = _paper_expected()
    assert list(sample.per_term) == list(expected)
    for name, value in expected.items():
        assert sample.per_term[name] == pytest.approx(value, abs=1e-6), name
    # 1 + 0.8333 + 0.5 + 1 + 0.86 + 0.5 + 0.5 = 5.19333…
    assert sample.total == pytest.approx(1 + 2.5 / 3 + 0.5 + 1 + 0.86 + 0.5 + 0.5, abs=1e-5)
    assert sample.num_turns == 3 and sample.num_selects == 2
    assert list(sample.inputs.mask_existence) == EXISTENCE and sample.inputs.turns == [t.text for t in traj.turns]


def test_score_sample_paper_reward_without_parity():
    frame_row, key_row = _engine_outputs(HAND_FRAMES, HAND_KEYS)
    sample = score_sample(reward_spec_from(_settings()), _trajectory().to_extra_fields(), _extra_info(_record()),
                          frame_row, key_row, parity=False)
    # intended branches: lr_keyframe_vs_mask_dense: δ = 1 − 11/15 = 0.2667 > 0.2 → min((δ − 0.1)·5, 2) = 0.8333;
    # lr_progressive_keyframe_dense: δ = 1 > 0.1 → min((1 − 0.05)·10, 2) = 2;
    # lr_vtg_iou_dense inclusive [2, 6] vs visible 2..6 → true IoU 5/5 → 0.5
    delta = FULL - (3 + 4 / (6 + EPS)) / 5
    assert sample.per_term["lr_keyframe_vs_mask_dense"] == pytest.approx((delta - 0.1) * 5, abs=1e-5)
    assert sample.per_term["lr_progressive_keyframe_dense"] == 2.0
    assert sample.per_term["lr_vtg_iou_dense"] == pytest.approx(0.5)


def test_unscorable_rows_get_none_with_a_reason():
    frame_row, key_row = _engine_outputs(HAND_FRAMES, HAND_KEYS)
    spec = reward_spec_from(_settings())
    fields, info = _trajectory().to_extra_fields(), _extra_info(_record())
    no_gt = _extra_info(_record(with_gt=False))
    assert score_sample(spec, {}, info, frame_row, key_row) is None
    assert score_sample(spec, fields, no_gt, frame_row, key_row) is None
    assert unscored_reason({}, info).startswith("not a videoseg_o3 trajectory")
    assert unscored_reason(fields, no_gt) == "record handmade/v0/0 has no ground truth (submission-only split?)"
    assert unscored_reason(fields, info) is None


def test_reward_metrics_average_the_rows_the_reward_uses(caplog):
    # a batch as the trainer sees it: sample A (J&F 0.6 from the service), a padding row, sample B (same trajectory,
    # no [SEG] decoded for the service, so J&F 0); spec = the paper's seven terms + jf (weight 1)
    frame_row, key_row = _engine_outputs(HAND_FRAMES, HAND_KEYS)
    fields, info = _trajectory().to_extra_fields(), _extra_info(_record())
    spec = reward_spec_from(_settings(jf=True))
    scored = score_batch(spec, [fields, {}, fields], [info, info, info], [frame_row] * 3, [key_row] * 3,
                         parity=True, jfs=[0.6, 0.0, 0.0])
    assert scored[1] is None
    paper = 1 + 2.5 / 3 + 0.5 + 1 + 0.86 + 0.5 + 0.5
    assert scored[0].total == pytest.approx(paper + 0.6, abs=1e-5) and scored[2].total == pytest.approx(paper, abs=1e-5)
    nsegs = [torch.tensor([4.0]), torch.tensor([0.0]), torch.tensor([2.0])]
    logps = [torch.tensor([-1.0, -2.0, -3.0, -9.0]), torch.zeros(4), torch.tensor([-0.5, 1.0, -7.0, -7.0])]
    out = reward_metrics(scored, logps, nsegs)
    assert out["videoseg/unscored"] == 1.0 and out["videoseg/scored_fraction"] == pytest.approx(2 / 3)
    # J&F over the two scored rows, the 0 of B included: (0.6 + 0) / 2
    assert out["videoseg/jf"] == pytest.approx(0.3) and out["videoseg/reward/jf"] == pytest.approx(0.3)
    assert out["videoseg/reward/total"] == pytest.approx(paper + 0.3, abs=1e-5)
    assert out["videoseg/avg_turns"] == 3.0 and out["videoseg/select_rate"] == 1.0
    # last turn: K = 4/(4+1e-6); mean M = (1 + 1 + 4/6 + 0 + 1) / 5 = 0.7333
    assert out["videoseg/final_keyframe_iou"] == pytest.approx(FULL, abs=1e-6)
    assert out["videoseg/final_mask_iou"] == pytest.approx((3 + 4 / 6) / 5, abs=1e-6)
    # calibration: the first nseg values of each row: −1, −2, −3, −9 and −0.5, 1 → mean −14.5 / 6, |max| 9
    assert out["videoseg/calibration/mask_logp_mean"] == pytest.approx(-14.5 / 6)
    assert out["videoseg/calibration/mask_logp_abs_max"] == 9.0
    assert out["videoseg/segs_per_sample"] == pytest.approx(2.0)
    with caplog.at_level("WARNING"):
        warn_unscored(scored, [fields, {}, fields], [info, info, info], ["a", "pad", "b"])
    assert "1 of 3 samples could not be scored and get reward 0" in caplog.text
    assert "row 1 (pad): not a videoseg_o3 trajectory" in caplog.text


def test_frame_slots_checked_against_num_high_res_at_start_up():
    assert frame_slot_problems(EnvConfig.train(num_high_res=8)) == []
    (problem,) = frame_slot_problems(EnvConfig.train(num_high_res=9))
    assert "videoseg_o3.env.num_high_res=9 gives up to 10 spatial frames" in problem and "<= 8" in problem
    with pytest.raises(ValueError, match="videoseg_o3.env.num_high_res=9"):
        load_videoseg_config({"videoseg_o3": {"env": {"num_high_res": 9}}}).validate()
