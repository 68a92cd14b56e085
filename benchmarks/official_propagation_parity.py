# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Check `videoseg_reward.propagation.propagate_language` against the authors' SAM2 fork on the same weights.

Loads the fork (``projects/sa2va/hf/models_qwen3vl/sam2.py`` of a local clone of the released repository, run
unchanged; its ``.cuda()`` calls are made no-ops so it runs on CPU), builds its SAM 2.0 Hiera-L video predictor with
the released settings at a reduced image size and random weights, loads the same weights strictly into the public
``sam2`` model (``sam2_hiera_l`` config; the fork's ``g_weight`` keys renamed to ``gamma``), and compares
``language_embd_inference_keyframe_bidirection(..., lang_embed_injecting_per_frame=True)`` + the released
post-processing with ``propagate_language`` for the keyframes 0, L//2 and L-1 (fp32, CPU): frame count, differing
mask pixels and the largest logit difference. ``--no-inject`` runs ours without per-frame injection (a control that
must differ).

Usage::

    nice .venv/bin/python benchmarks/official_propagation_parity.py --official-repo /tmp/VideoSEG-O3 --image-size 128
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from videoseg_reward.propagation import _SamFrames, new_inference_state, propagate_language, track_language
from videoseg_reward.sam2_model import Sam2Meta, sam2_from_state_dict


def main() -> int:
    """Run the comparison; returns 0 when every mask and logit agrees (1 otherwise, as expected with --no-inject)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--official-repo", required=True, help="local clone of Dmmm1997/VideoSEG-O3")
    parser.add_argument("--image-size", type=int, default=128, help="SAM2 input size (1024 as released; slow on CPU)")
    parser.add_argument("--no-inject", action="store_true", help="control: ours without per-frame injection")
    args = parser.parse_args()
    SIZE = args.image_size
    FORK = f"{args.official_repo}/projects/sa2va/hf/models_qwen3vl/sam2.py"
    torch.Tensor.cuda = lambda self, *a, **k: self  # the fork hard-codes .cuda(); run it on CPU
    spec = importlib.util.spec_from_file_location("authors_sam2", FORK)
    S = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(S)

    torch.manual_seed(0)
    builder = S.SAM2.__new__(S.SAM2)
    theirs = S.SAM2VideoPredictor(
        image_encoder=builder.build_image_encoder(), memory_attention=builder.build_memory_attention(),
        memory_encoder=builder.build_memory_encoder(), num_maskmem=7, image_size=SIZE,
        sigmoid_scale_for_mem_enc=20.0, sigmoid_bias_for_mem_enc=-10.0, use_mask_input_as_output_without_sam=True,
        directly_add_no_mem_embed=True, use_high_res_features_in_sam=True, multimask_output_in_sam=True,
        iou_prediction_use_sigmoid=True, use_obj_ptrs_in_encoder=True, add_tpos_enc_to_obj_ptrs=False,
        only_obj_ptrs_in_the_past_for_eval=True, pred_obj_scores=True, pred_obj_scores_mlp=True, fixed_no_obj_ptr=True,
        multimask_output_for_tracking=True, use_multimask_token_for_obj_ptr=True, multimask_min_pt_num=0,
        multimask_max_pt_num=1, use_mlp_for_obj_ptr_proj=True, compile_image_encoder=False,
        sam_mask_decoder_extra_args={"dynamic_multimask_via_stability": True, "dynamic_multimask_stability_delta": 0.05,
                                     "dynamic_multimask_stability_thresh": 0.98}).eval()
    # random weights are near-zero for some heads; spread them so masks are not trivially empty/full
    with torch.no_grad():
        for p in theirs.parameters():
            p.add_(0.02 * torch.randn_like(p))
    wrapper = S.SAM2.__new__(S.SAM2)
    torch.nn.Module.__init__(wrapper)
    wrapper.sam2_model = theirs


    fork_state = {k[:-len(".g_weight")] + ".gamma" if k.endswith(".g_weight") else k: v
                  for k, v in theirs.state_dict().items()}  # the fork names LayerScale's gamma g_weight
    ours_model = sam2_from_state_dict(fork_state, Sam2Meta(config="sam2_hiera_l", image_size=SIZE),
                                      "authors' fork weights", video=True).eval()
    print("strict state-dict load of the authors' fork weights into public sam2 (sam2_hiera_l): OK")

    rng = np.random.default_rng(0)
    L, H, W = 6, 48, 64
    yy, xx = np.mgrid[0:H, 0:W]
    video = np.zeros((L, H, W, 3), np.float32)
    for t in range(L):
        video[t, ..., 0] = 255 * xx / W
        video[t, ..., 1] = 255 * yy / H
        video[t, 10:30, 6 + 3 * t:26 + 3 * t] = (250, 240, 30)
    video = np.clip(video + rng.normal(0, 6, video.shape), 0, 255).astype(np.uint8)
    emb = torch.from_numpy(rng.normal(size=256).astype(np.float32))


    def authors(keyframe):
        frames = []
        for f in video:  # DirectResize (PIL default filter) + /255 + ImageNet normalisation, as their eval feeds SAM2
            x = torch.from_numpy(np.array(Image.fromarray(f).resize((SIZE, SIZE)))).permute(2, 0, 1).float() / 255
            mean = torch.tensor((0.485, 0.456, 0.406))[:, None, None]
            std = torch.tensor((0.229, 0.224, 0.225))[:, None, None]
            frames.append((x - mean) / std)
        with torch.no_grad():
            state = theirs.init_state(torch.stack(frames))
            state["device"] = state["storage_device"] = torch.device("cpu")
            masks, _ = wrapper.language_embd_inference_keyframe_bidirection(state, [[emb]], center_index=keyframe,
                                                                          lang_embed_injecting_per_frame=True)
            logits = F.interpolate(masks.float(), (H, W), mode="bilinear", align_corners=False)[:, 0]
        return logits.sigmoid() > 0.5, logits

    worst = 0.0
    for keyframe in (0, L // 2, L - 1):
        t0 = time.time()
        ref, ref_logits = authors(keyframe)
        t1 = time.time()
        ours = propagate_language(ours_model, video, keyframe, emb, inject_per_frame=not args.no_inject)
        t2 = time.time()
        low = track_language(ours_model, new_inference_state(ours_model, _SamFrames(video, SIZE, torch.device("cpu"))),
                             keyframe, emb.reshape(1, 1, -1), inject_per_frame=not args.no_inject)
        ours_logits = torch.cat([F.interpolate(F.interpolate(x.float(), (SIZE, SIZE), mode="bilinear",
                                                             align_corners=False), (H, W), mode="bilinear",
                                               align_corners=False)[:, 0] for x in low])
        print(f"  max |logit ours - authors| = {float((ours_logits - ref_logits).abs().max()):.3g} "
              f"(logit range {float(ref_logits.min()):.2f}..{float(ref_logits.max()):.2f})")
        ref = ref.numpy()
        diff = int((ref != ours).sum())
        worst = max(worst, float((ours_logits - ref_logits).abs().max()), float(diff), abs(len(ours) - len(ref)))
        print(f"keyframe {keyframe}: frames {len(ours)} vs {len(ref)}; foreground px ours {int(ours.sum())} authors "
              f"{int(ref.sum())}; differing px {diff} of {ref.size}; max |authors logit| at differing px "
              f"{float(ref_logits.abs()[torch.from_numpy(ref != ours)].max()) if diff else 0:.2e}; "
              f"time authors {t1 - t0:.1f}s ours {t2 - t1:.1f}s")
    return 0 if worst == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
