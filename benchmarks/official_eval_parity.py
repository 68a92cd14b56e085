# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Check `videoseg_reward.benchmarks` against the official VideoSEG-O3 evaluation scripts on synthetic data.

For each benchmark (ReVOS, MeViS valid_u, Ref-DAVIS17, ReasonVOS, Ref-SAV, Long-RVOS, GroundMoRe) this writes a
small synthetic dataset in the layout the official script reads (expression JSON, RLE mask dicts, PNG annotations,
a prediction JSON with imperfect masks, overlapping objects, empty frames, missing PNGs), runs the official script
from a local clone of the released repository, computes the same table with ``expression_metrics`` + ``score``,
and prints the largest absolute difference per benchmark (exit code 1 above 1e-9).

The official scripts are run unchanged except for their worker-process count (one worker process, in a temporary
copy).
Without OpenCV / scikit-image, two stand-ins are put on their path: ``cv2.dilate`` as a binary dilation
(scipy) and ``skimage.morphology.disk``.

Usage::

    git clone https://github.com/Dmmm1997/VideoSEG-O3 /tmp/VideoSEG-O3
    nice .venv/bin/python benchmarks/official_eval_parity.py --official-repo /tmp/VideoSEG-O3 --seed 0
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image
from videoseg_reward.benchmarks import (
    expression_metrics,
    groundmore_action_window,
    groundmore_gt,
    groundmore_palette_mask,
    long_rvos_gt,
    ref_davis_anno_ids,
    score,
)
from videoseg_reward.masks import encode_mask

H, W = 36, 52
ROOT = OUT = ""  # set by main(): the copy of the official scripts and the data folder
rng = np.random.default_rng(0)

_CV2_STUB = """import numpy as np
from scipy import ndimage


def dilate(img, kernel):
    return ndimage.binary_dilation(img > 0, structure=kernel > 0).astype(np.uint8)
"""
_DISK_STUB = """import numpy as np


def disk(radius, dtype=np.uint8):
    r = int(radius)
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    return ((yy * yy + xx * xx) <= r * r).astype(dtype)
"""
SCRIPTS = ["tools/eval/eval_revos.py", "tools/eval/eval_mevis.py", "tools/eval/eval_davis.py",
           "tools/eval/eval_reasonvos.py", "tools/eval/eval_ref_sav.py", "tools/eval/eval_longrvos.py",
           "tools/eval/eval_groundmore.py", "third_parts/revos/utils/metircs.py"]


def prepare_scripts(repo: str, root: str) -> None:
    """Copy the official scripts into ``root`` with one worker process (several workers can hang on their shared
    queue: two see it non-empty, one takes the last item, the other blocks) and add cv2/skimage stand-ins."""
    for rel in SCRIPTS:
        src = os.path.join(repo, rel)
        if not os.path.isfile(src):
            raise SystemExit(f"{src} not found: --official-repo must be a clone of Dmmm1997/VideoSEG-O3")
        dst = os.path.join(root, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        text = open(src).read()
        text = re.sub(r"(?m)^(NUM_WO\w+) = \d+", r"\1 = 1", text)
        open(dst, "w").write(text.replace("if NUM_WOEKERS > 1:", "if NUM_WOEKERS > 0:"))
    for pkg in ("third_parts", "third_parts/revos", "third_parts/revos/utils"):
        open(os.path.join(root, pkg, "__init__.py"), "a").close()
    stubs = os.path.join(root, "stubs")
    os.makedirs(os.path.join(stubs, "skimage"), exist_ok=True)
    if importlib.util.find_spec("cv2") is None:
        open(os.path.join(stubs, "cv2.py"), "w").write(_CV2_STUB)
    if importlib.util.find_spec("skimage") is None:
        open(os.path.join(stubs, "skimage", "__init__.py"), "w").close()
        open(os.path.join(stubs, "skimage", "morphology.py"), "w").write(_DISK_STUB)


def blob(h=H, w=W, p_empty=0.15):
    """``[h, w]`` uint8 mask: empty with probability ``p_empty``, else one or two random rectangles."""
    m = np.zeros((h, w), np.uint8)
    if rng.random() < p_empty:
        return m
    for _ in range(rng.integers(1, 3)):
        y0, x0 = rng.integers(0, h - 4), rng.integers(0, w - 4)
        y1, x1 = y0 + rng.integers(2, h - y0), x0 + rng.integers(2, w - x0)
        m[y0:y1, x0:x1] = 1
    return m


def perturb(m):
    """An imperfect prediction of ``m``: empty (10 %), unrelated (10 %), else shifted by up to 3 px plus 3 % noise."""
    r = rng.random()
    if r < 0.1:
        return np.zeros_like(m)
    if r < 0.2:
        return blob()
    out = np.roll(m, (rng.integers(-3, 4), rng.integers(-3, 4)), axis=(0, 1))
    noise = rng.random(m.shape) < 0.03
    return (out ^ noise).astype(np.uint8)


def rle(m):
    """COCO RLE (JSON form) of a mask."""
    return encode_mask(m.astype(bool))


def run_official(script, *args):
    """Run one official script from the prepared copy; its outputs land next to the prediction file."""
    env = dict(os.environ, PYTHONPATH=f"{ROOT}/stubs:{ROOT}:{os.environ.get('PYTHONPATH', '')}")
    res = subprocess.run([sys.executable, f"tools/eval/{script}", *args], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=600)
    if res.returncode:
        print(res.stdout[-2000:], res.stderr[-3000:])
        raise SystemExit(f"{script} failed")


def compare(name, pairs):
    """Print mismatches above 1e-9 and the largest absolute difference (NaN counts as a mismatch)."""
    worst = 0.0
    for label, a, b in pairs:
        d = abs(float(a) - float(b))
        worst = max(worst, d) if d == d else float("nan")
        if not d <= 1e-9:
            print(f"  MISMATCH {name} {label}: official {a} ours {b}")
    print(f"{name}: {len(pairs)} numbers compared, max |diff| = {worst:.3g}")
    return worst


def ref_style(name, with_fg, n_videos=12):
    """ReVOS / MeViS / Ref-SAV layout: anno_id lists, mask_dict of RLE per frame."""
    videos, mask_dict, fg_dict, preds, rows, anno = {}, {}, {}, {}, [], 0
    for v in range(n_videos):
        vid = f"vid_{v:03d}"
        L = int(rng.integers(3, 9))
        frames = [f"{t:05d}" for t in range(L)]
        exps, fg = {}, np.zeros((L, H, W), np.uint8)
        preds[vid] = {}
        for e in range(int(rng.integers(1, 4))):
            ids = list(range(anno, anno + int(rng.integers(1, 3))))
            anno += len(ids)
            gt = np.zeros((L, H, W), np.uint8)
            for i in ids:
                obj = np.stack([blob() for _ in range(L)])
                mask_dict[str(i)] = [rle(m) if m.any() else None for m in obj]
                gt += obj  # object count, as the scripts build it
                fg |= obj
            pred = np.stack([perturb((g > 0).astype(np.uint8)) for g in gt])
            exps[str(e)] = {"exp": "x", "anno_id": ids, "type_id": int(rng.integers(0, 2))}
            preds[vid][str(e)] = {"prediction_masks": [rle(p) for p in pred]}
            rows.append((vid, str(e), pred, gt, exps[str(e)]["type_id"]))
        if with_fg:
            extra = np.stack([blob() for _ in range(L)])  # an object no expression refers to
            fg |= extra
            fg_dict[vid] = {"masks_rle": [rle(m) for m in fg]}
        videos[vid] = {"frames": frames, "height": H, "width": W, "expressions": exps}
    paths = {k: os.path.join(OUT, f"{name}_{k}.json") for k in ("exp", "mask", "fg", "pred")}
    json.dump({"videos": videos}, open(paths["exp"], "w"))
    json.dump(mask_dict, open(paths["mask"], "w"))
    json.dump(fg_dict, open(paths["fg"], "w"))
    json.dump(preds, open(paths["pred"], "w"))
    ours = []
    for vid, exp, pred, gt, type_id in rows:
        fg = None
        if with_fg:
            from videoseg_reward.masks import decode_rle
            fg = np.stack([decode_rle(r) for r in fg_dict[vid]["masks_rle"]])
        m = expression_metrics(name, pred, gt, foreground=fg)
        ours.append({"video": vid, "expression_id": exp, "type_id": type_id, **m})
    return paths, ours


def check_revos():
    paths, rows = ref_style("revos", True)
    run_official("eval_revos.py", paths["pred"], "--exp_path", paths["exp"], "--mask_path", paths["mask"],
                 "--foreground_mask_path", paths["fg"], "--save_name", "revos_out.json", "--save_csv_name", "r.csv")
    off = json.load(open(os.path.join(OUT, "revos_out.json")))
    ours = score("revos", rows)
    pairs = []
    for o_name, ours_sub in (("referring", ours["subsets"]["referring"]), ("reason", ours["subsets"]["reasoning"]),
                             ("overall", ours)):
        for k, ok in (("J", "J"), ("F", "F"), ("A", "A"), ("R", "R"), ("JF", "J&F")):
            pairs.append((f"{o_name}.{k}", off[o_name][k], ours_sub[ok]))
    return compare("ReVOS", pairs), ours


def check_refsav():
    paths, rows = ref_style("refsav", False)
    run_official("eval_ref_sav.py", paths["pred"], "--exp_path", paths["exp"], "--mask_path", paths["mask"],
                 "--save_name", "refsav_out.json", "--save_csv_name", "s.csv")
    off = json.load(open(os.path.join(OUT, "refsav_out.json")))
    ours = score("refsav", rows)
    pairs = []
    for o_name, sub in (("long", ours["subsets"]["long"]), ("short", ours["subsets"]["short"]), ("overall", ours)):
        for k, ok in (("J", "J"), ("F", "F"), ("A", "A"), ("JF", "J&F")):
            pairs.append((f"{o_name}.{k}", off[o_name][k], sub[ok]))
    return compare("Ref-SAV", pairs), ours


def check_mevis():
    paths, rows = ref_style("mevis", False)
    run_official("eval_mevis.py", paths["pred"], "--mevis_exp_path", paths["exp"], "--mevis_mask_path",
                 paths["mask"], "--save_name", "mevis_out.json")
    off = json.load(open(os.path.join(OUT, "mevis_out.json")))
    ours = score("mevis", rows)
    return compare("MeViS valid_u", [(k, off[k], ours[k]) for k in ("J", "F", "J&F")]), ours


def check_davis():
    videos, preds, truth = {}, {}, {}
    for v in range(10):
        vid = f"d{9 - v}"
        L = int(rng.integers(3, 8))
        exps = {str(e): {"exp": "x"} for e in rng.choice(12, size=int(rng.integers(1, 4)), replace=False)}
        videos[vid] = {"frames": [f"{t:05d}" for t in range(L)], "expressions": exps}
        preds[vid] = {}
        for e in exps:
            gt = np.stack([blob() for _ in range(L)])
            pred = np.stack([perturb(g) for g in gt])
            truth[(vid, e)] = (pred, gt)
            preds[vid][e] = {"prediction_masks": [rle(p) for p in pred]}
    ids = ref_davis_anno_ids(videos)
    mask_dict = {str(ids[k]): [rle(g) if g.any() else None for g in gt] for k, (_, gt) in truth.items()}
    for name, obj in (("exp", {"videos": videos}), ("mask", mask_dict), ("pred", preds)):
        json.dump(obj, open(os.path.join(OUT, f"davis_{name}.json"), "w"))
    run_official("eval_davis.py", os.path.join(OUT, "davis_pred.json"), "--mevis_exp_path",
                 os.path.join(OUT, "davis_exp.json"), "--mevis_mask_path", os.path.join(OUT, "davis_mask.json"),
                 "--save_name", "davis_out.json")
    off = json.load(open(os.path.join(OUT, "davis_out.json")))
    rows = [{"video": v, "expression_id": e, **expression_metrics("refdavis", p, g)}
            for (v, e), (p, g) in truth.items()]
    ours = score("refdavis", rows)
    return compare("Ref-DAVIS17", [(k, off[k], ours[k]) for k in ("J", "F", "J&F")]), ours


def check_reasonvos():
    videos, preds, mask_dict, rows = {}, {}, {}, []
    anno = 0
    for v in range(10):
        vid = f"r{v}"
        L = int(rng.integers(3, 8))
        videos[vid] = {"frames": [f"{t:05d}" for t in range(L)], "expressions": {}, "source": "s", "vid_id": vid}
        preds[vid] = {}
        for e in range(int(rng.integers(1, 3))):
            gt = np.stack([blob() for _ in range(L)])
            pred = np.stack([perturb(g) for g in gt])
            mask_dict[str(anno)] = [rle(g) if g.any() else None for g in gt]
            videos[vid]["expressions"][str(e)] = {"exp": "x", "anno_id": anno}
            anno += 1
            preds[vid][str(e)] = {"prediction_masks": [rle(p) for p in pred]}
            rows.append({"video": vid, "expression_id": str(e), **expression_metrics("reasonvos", pred, gt)})
    for name, obj in (("exp", {"videos": videos}), ("mask", mask_dict), ("pred", preds)):
        json.dump(obj, open(os.path.join(OUT, f"reasonvos_{name}.json"), "w"))
    run_official("eval_reasonvos.py", os.path.join(OUT, "reasonvos_pred.json"), "--reasonvos_exp_path",
                 os.path.join(OUT, "reasonvos_exp.json"), "--reasonvos_mask_path",
                 os.path.join(OUT, "reasonvos_mask.json"), "--save_name", "reasonvos_out.json")
    off = json.load(open(os.path.join(OUT, "reasonvos_out.json")))
    ours = score("reasonvos", rows)
    return compare("ReasonVOS", [(k, off[k], ours[k]) for k in ("J", "F", "J&F")]), ours


def check_longrvos():
    root = os.path.join(OUT, "longrvos")
    videos, preds, rows = {}, {}, []
    names = [f"lv{v}" for v in range(10)] + ["71fb69bbcd"]
    for vid in names:
        L = int(rng.integers(4, 10))
        frames = [f"{5 * t:05d}" for t in range(L)]
        n_obj = 3
        objs = [np.stack([blob() for _ in range(L)]) for _ in range(n_obj)]
        for oid, obj in enumerate(objs):
            folder = os.path.join(root, "Annotations", vid, str(oid))
            os.makedirs(folder, exist_ok=True)
            for t, m in enumerate(obj):
                if rng.random() < 0.8:  # some PNGs missing
                    Image.fromarray(m * 255).save(os.path.join(folder, f"{frames[t]}.png"))
        exps = {}
        preds[vid] = {}
        for e in range(int(rng.integers(1, 4))):
            ids = sorted(rng.choice(n_obj, size=int(rng.integers(1, 3)), replace=False).tolist())
            exps[str(e)] = {"exp": "x", "obj_id": ids, "type": str(rng.choice(["static", "dynamic", "hybrid"]))}
            if rng.random() < 0.2:
                continue  # not predicted: not scored
            gt = long_rvos_gt(root, vid, frames, ids, (H, W))
            pred = np.stack([perturb(g.astype(np.uint8)) for g in gt])
            sample = sorted(rng.choice(L + 3, size=4, replace=False).tolist())  # some past the video
            key = [int(rng.integers(0, L + 1))]
            rounds = int(rng.integers(1, 4))
            preds[vid][str(e)] = {"prediction_masks": [rle(p) for p in pred], "text_prediction": ["t"] * rounds,
                                  "sample_index": sample, "keyframe_index": key}
            m = expression_metrics("longrvos", pred, gt, sample_indices=sample, keyframe_indices=key)
            rows.append({"video": vid, "expression_id": str(e), "type_id": exps[str(e)]["type"],
                         "num_rounds": rounds, "num_frames": L, **m})
        videos[vid] = {"frames": frames, "expressions": exps}
    json.dump({"videos": videos}, open(os.path.join(OUT, "lr_meta.json"), "w"))
    json.dump(preds, open(os.path.join(OUT, "lr_pred.json"), "w"))
    run_official("eval_longrvos.py", os.path.join(OUT, "lr_pred.json"), "--meta_path",
                 os.path.join(OUT, "lr_meta.json"), "--gt_root", root, "--save_name", "lr_out.json")
    off = json.load(open(os.path.join(OUT, "lr_out.json")))
    ours = score("longrvos", rows)
    g = off["Global"]
    pairs = [(k, g[k], ours[k]) for k in ("J", "F", "J&F", "J_sample", "J_keyframe")]
    pairs.append(("empty ratio", g["Keyframe_GT_Empty_Ratio"], ours["keyframe_gt_empty_ratio"]))
    for r, s in off["Round_Statistics"].items():
        o = ours["by_round"][int(r)]
        pairs += [(f"round{r}.{k}", s[k], o[k]) for k in ("count", "J", "J_sample", "J_keyframe")]
        pairs.append((f"round{r}.avg_vid_len", s["avg_vid_len"], o["avg_num_frames"]))
    for t, s in off["Type_Statistics"].items():
        o = ours["by_type"][t]
        pairs += [(f"type {t}.{k}", s[k], o[k]) for k in ("count", "J&F", "J", "F", "J_sample")]
    assert len(off["Round_Statistics"]) == len(ours["by_round"]) and len(off["Type_Statistics"]) == len(ours["by_type"])
    return compare("Long-RVOS", pairs), ours


def check_groundmore():
    root = os.path.join(OUT, "groundmore")
    meta, preds, rows = {}, {}, []
    for v in range(8):
        vid = f"gm{v}_01{10 + v:02d}_0200"
        L = int(rng.integers(8, 40))
        mask_dir = os.path.join(root, vid, "masks")
        os.makedirs(mask_dir, exist_ok=True)
        palettes = {}
        for t in range(L):
            pal = np.zeros((H, W), np.uint8)
            for oid in (1, 2, 3):
                pal[blob(p_empty=0.3) > 0] = oid
            if rng.random() < 0.85:
                img = Image.fromarray(pal, mode="P")
                img.putpalette([c for i in range(256) for c in (i, 3 * i % 256, 7 * i % 256)])
                name = f"frame_{t:06d}.png" if v % 2 else f"{t:07d}.png"
                img.save(os.path.join(mask_dir, name))
        for t in range(L):
            p = groundmore_palette_mask(mask_dir, t)
            if p is not None:
                palettes[t] = p
        qs = {}
        preds[vid] = {}
        for q in range(int(rng.integers(1, 4))):
            start_s = 10 + v + int(rng.integers(0, 3))
            end_s = start_s + int(rng.integers(1, 4))
            qs[str(q)] = {"q_type": str(rng.choice(["Causal", "Sequential", "Counterfactual"])),
                          "obj_id": str(int(rng.integers(1, 4))), "action_start": f"01:{start_s:02d}",
                          "action_end": f"01:{end_s:02d}"}
            window = groundmore_action_window(vid, qs[str(q)]["action_start"], qs[str(q)]["action_end"])
            gt = groundmore_gt(palettes, int(qs[str(q)]["obj_id"]), window, L, (H, W))
            full = np.stack([(palettes.get(t, np.zeros((H, W))) == int(qs[str(q)]["obj_id"])) for t in range(L)])
            pred = np.stack([perturb(f.astype(np.uint8)) for f in full])
            rounds = int(rng.integers(1, 4))
            preds[vid][str(q)] = {"prediction_masks": [rle(p) for p in pred], "text_prediction": ["t"] * rounds}
            rows.append({"video": vid, "expression_id": str(q), "type_id": qs[str(q)]["q_type"], "num_rounds": rounds,
                         **expression_metrics("groundmore", pred, gt)})
        meta[vid] = {"questions": qs}
    json.dump({"videos": meta}, open(os.path.join(OUT, "gm_meta.json"), "w"))
    json.dump(preds, open(os.path.join(OUT, "gm_pred.json"), "w"))
    run_official("eval_groundmore.py", os.path.join(OUT, "gm_pred.json"), "--video_root", root, "--meta_file",
                 os.path.join(OUT, "gm_meta.json"), "--save_name", "gm_out.json")
    off = json.load(open(os.path.join(OUT, "gm_out.json")))
    ours = score("groundmore", rows)
    pairs = [(k, 100 * off["Global"][k], ours[k]) for k in ("J", "F", "J&F")]
    for t, s in off["Type_Statistics"].items():
        pairs += [(f"type {t}.{k}", 100 * s[k], ours["by_type"][t][k]) for k in ("J", "F", "J&F")]
    for r, s in off["Round_Statistics"].items():
        o = ours["by_round"][int(r)]
        pairs += [(f"round{r}.{k}", 100 * s[k], o[k]) for k in ("J", "F", "J&F")] + [(f"round{r}.count", s["count"],
                                                                                       o["count"])]
    return compare("GroundMoRe", pairs), ours


def main() -> int:
    global ROOT, OUT, rng
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--official-repo", required=True, help="local clone of Dmmm1997/VideoSEG-O3")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (printed)")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    ROOT = tempfile.mkdtemp(prefix="eval_parity_")
    OUT = os.path.join(ROOT, "data")
    os.makedirs(OUT)
    try:
        prepare_scripts(args.official_repo, ROOT)
        worst = 0.0
        for check in (check_revos, check_mevis, check_davis, check_reasonvos, check_refsav, check_longrvos,
                      check_groundmore):
            diff, table = check()
            worst = diff if diff != diff else max(worst, diff)
            print(f"    J&F {table['J&F']:.4f} over {table['count']} expressions")
    finally:
        if args.keep:
            print(f"data and outputs kept in {ROOT}")
        else:
            shutil.rmtree(ROOT, ignore_errors=True)
    ok = worst <= 1e-9
    print(f"all tables equal the official scripts' (max |diff| {worst:.3g})" if ok else f"MISMATCH: {worst}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
