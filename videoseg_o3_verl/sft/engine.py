# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The cold-start SFT engine: the seg-head engine of RL with a supervised mask loss on every [SEG].

Registered as ``model_type="videoseg_o3_seg_sft"`` (verl's SFT trainer builds its engine through the same
``EngineRegistry`` as RL). It subclasses :class:`~videoseg_o3_verl.verl_ext.engine.VideoSegO3FSDPEngine`, so the
policy, the seg head (projection + SAM2 prompt encoder + mask decoder), the hidden-state hook, the trainable groups
and the checkpoint layout (verl checkpoint + ``seg_head/``) are the RL engine's; what differs:

- the forward decodes each assistant [SEG] (found in ``input_ids`` where ``loss_mask`` is 1) on its turn's
  keyframe (``extra_info.videoseg_sft.seg_keyframes``) and, optionally, on the first turn's high-resolution
  frames (or on every frame of the video: ``supervise_all_frames``), and adds ``bce_weight·BCE +
  dice_weight·Dice`` against the ground truth to verl's token loss;
- optionally (``causal_without_padding_mask``) the padded batch runs through SDPA's causal kernel without verl's
  padding mask (``causal_padding.py``);
- the token loss is verl's, with the ``loss_mask`` turned into weights when ``digit_weight`` or ``action_weight``
  is not 1 (digit tokens, the action names weigh more, ``token_loss.py``), and its fp32 log-probs computed in one
  pass instead of verl's per-token loop;
- LoRA (``model.lora_rank > 0``) keeps the seg head and ``lora_trained_modules`` (``embed_tokens``, ``lm_head``)
  fully trainable, and ``frozen_policy_modules`` (e.g. the vision tower) frozen;
- the checkpoint also exports ``hf_policy/``: the policy as a Hugging Face folder (LoRA merged, head removed), which
  ``videoseg-o3 train`` loads as ``actor_rollout_ref.model.path`` with ``videoseg_o3.seg_head.path=<…>/seg_head``.

Settings: ``model.override_config.videoseg_o3`` (the RL section: SAM2, seg head, trainable groups) and
``model.override_config.videoseg_o3_sft`` (:class:`~videoseg_o3_verl.sft.config.SFTSettings`), both JSON strings.
"""

from __future__ import annotations

import functools
import json
import logging
import os

import numpy as np
import torch
import torch.nn.functional as F
from verl.workers.engine.base import EngineRegistry
from verl.workers.engine.fsdp.transformer_impl import FSDPEngineWithLMHead

from ..data.parquet import record_from_extra_info
from ..data.vts_cot import SFT_INFO_KEY, sft_info_from_extra_info
from ..trajectory import Trajectory
from ..verl_ext.engine import HEAD_ATTR, VideoSegO3FSDPEngine, _non_tensor_list
from ..verl_ext.seg_batch import SampleSegs, build_head_inputs, split_head_outputs
from .causal_padding import without_padding_mask
from .config import SFTSettings
from .mask_loss import sft_mask_loss
from .token_loss import padded_sequence_log_probs, token_loss_weights, token_weight_table

logger = logging.getLogger(__name__)

SFT_MODEL_TYPE = "videoseg_o3_seg_sft"
"""``model.model_type`` of the cold-start SFT recipes."""

SFT_SECTION = "videoseg_o3_sft"
"""Key of the SFT settings in ``model.override_config`` (and the recipe's top-level section)."""

HF_EXPORT_DIR = "hf_policy"
"""Folder of the Hugging Face policy inside each checkpoint."""

_OUT_MASK_LOSS = "_videoseg_sft_mask_loss"
_OUT_METRICS = "_videoseg_sft_metrics"


def seg_positions(input_ids: torch.Tensor, loss_mask: torch.Tensor, seg_token_id: int) -> list[int]:
    """Positions of the [SEG] tokens that the token loss trains (assistant turns), in order."""
    hits = (input_ids == seg_token_id) & (loss_mask.to(torch.bool))
    return [int(p) for p in torch.nonzero(hits).flatten()]


def trainable_summary(module: torch.nn.Module) -> dict[str, int]:
    """Parameter counts: trained LoRA adapters, trained / frozen policy weights, trained / frozen seg head."""
    counts = {"lora": 0, "policy_trained": 0, "policy_frozen": 0, "head_trained": 0, "head_frozen": 0}
    for name, param in module.named_parameters():
        plain = name.removeprefix("base_model.model.")
        group = "lora" if ".lora_" in name else "head" if plain.startswith(HEAD_ATTR + ".") else "policy"
        key = group if group == "lora" else f"{group}_{'trained' if param.requires_grad else 'frozen'}"
        counts[key] += param.numel()
    return counts


def seg_iou(logits: torch.Tensor, gt: np.ndarray) -> float:
    """IoU of one decoded mask (logits upsampled to the GT size, > 0) with the GT (videoseg_reward's convention)."""
    from videoseg_reward.masks import keyframe_iou

    up = F.interpolate(logits.detach().float()[None, None], size=gt.shape, mode="bilinear", align_corners=False)
    return keyframe_iou(up[0, 0].cpu().numpy() > 0, gt)


@EngineRegistry.register(model_type=SFT_MODEL_TYPE, backend=["fsdp", "fsdp2"], device=["cuda", "npu", "cpu"])
class VideoSegO3SFTEngine(VideoSegO3FSDPEngine):
    """verl's FSDP LM engine + the seg head, trained with CE + mask loss (see the module docstring)."""

    def __init__(self, model_config, engine_config, *args, **kwargs):
        raw = dict(model_config.override_config or {})
        settings = raw.pop(SFT_SECTION, None)
        if isinstance(settings, str):
            settings = json.loads(settings)
        object.__setattr__(model_config, "override_config", raw)
        if hasattr(model_config.hf_config, SFT_SECTION):
            delattr(model_config.hf_config, SFT_SECTION)
        self.sft = SFTSettings.from_dict(settings)
        if self.sft.batched_vision_attention:
            from ..model import vision_attention

            vision_attention.install()
        self._token_weights: torch.Tensor | None = None
        self._point_rng = torch.Generator().manual_seed(int(getattr(engine_config, "seed", 0) or 0))
        super().__init__(model_config, engine_config, *args, **kwargs)

    # ------------------------------------------------------------------ build
    def _build_module(self):
        module = super()._build_module()
        for name, param in module.named_parameters():
            if not name.startswith(HEAD_ATTR + ".") and any(f in name for f in self.sft.frozen_policy_modules):
                param.requires_grad_(False)
        return module

    def _build_lora_module(self, module):
        """verl's LoRA wrapping, then the seg head and ``lora_trained_modules`` trainable again (PEFT froze them)."""
        from peft.tuners.lora import LoraLayer

        head_trainable = {n for n, p in module.named_parameters() if n.startswith(HEAD_ATTR + ".") and p.requires_grad}
        module = super()._build_lora_module(module)
        # verl builds its LoraConfig without a dropout: give every adapter the dropout PEFT would have built
        if self.sft.lora_dropout > 0:
            for layer in module.modules():
                if isinstance(layer, LoraLayer):
                    for adapter in layer.lora_dropout:
                        layer.lora_dropout[adapter] = torch.nn.Dropout(p=self.sft.lora_dropout)
        for name, param in module.named_parameters():
            plain = name.removeprefix("base_model.model.")
            if plain in head_trainable:
                param.requires_grad_(True)
            elif ("lora_" not in name and any(f in plain for f in self.sft.lora_trained_modules)
                  and not any(f in plain for f in self.sft.frozen_policy_modules)):
                param.requires_grad_(True)
        return module

    def _build_model_optimizer(self):
        super()._build_model_optimizer()
        if torch.distributed.get_rank() == 0 and not self.engine_config.forward_only:
            print(f"videoseg_o3 SFT trainable parameters: {json.dumps(trainable_summary(self.module))}")

    # ------------------------------------------------------------------ forward
    def prepare_model_inputs(self, micro_batch):
        model_inputs, output_args = super().prepare_model_inputs(micro_batch)
        if self.sft.causal_without_padding_mask and model_inputs.get("attention_mask") is not None:
            model_inputs = without_padding_mask(model_inputs, micro_batch["input_ids"].offsets().diff())
        return model_inputs, output_args

    def prepare_model_outputs(self, output, output_args, micro_batch, logits_processor_func):
        if _plain_log_probs(output, output_args, micro_batch):  # verl's result without its per-token loop
            model_output = {"log_probs": padded_sequence_log_probs(output.logits, micro_batch["input_ids"])}
        else:
            model_output = FSDPEngineWithLMHead.prepare_model_outputs(self, output, output_args, micro_batch,
                                                                      logits_processor_func)
        hidden, self._hidden = self._hidden, None
        if self.has_seg_head and hidden is not None:
            model_output.update(self._mask_outputs(hidden, micro_batch))
        return model_output

    def _samples(self, micro_batch) -> list[SampleSegs]:
        ids = list(micro_batch["input_ids"].unbind())
        masks = list(micro_batch["loss_mask"].unbind())
        infos = _non_tensor_list(micro_batch, "extra_info", len(ids))
        limit = self.videoseg.seg_head.max_segs_per_sample
        samples = []
        for i, (row, loss_mask, info) in enumerate(zip(ids, masks, infos, strict=True)):
            if not isinstance(info, dict) or SFT_INFO_KEY not in info:
                continue
            supervision = sft_info_from_extra_info(info)
            record = record_from_extra_info(info)
            positions = seg_positions(row, loss_mask, self.seg_token_id)
            keys = list(supervision.seg_keyframes)
            if positions and self.sft.first_seg_only:
                positions = [positions[0]] * len(keys)
            if len(positions) != len(keys):
                logger.warning("sample %d: %d trained [SEG] tokens but %d supervised keyframes (truncated?); "
                               "using the first %d", i, len(positions), len(keys), min(len(positions), len(keys)))
            n = min(len(positions), len(keys), limit)
            frames = range(record.num_frames) if self.sft.supervise_all_frames else supervision.spatial_frames
            trajectory = Trajectory(num_frames=record.num_frames, initial_low_res=[], spatial_frames=list(frames))
            samples.append(SampleSegs(index=i, record=record, trajectory=trajectory, positions=positions[:n],
                                      turns=list(range(n)), keyframes=keys[:n]))
        return samples

    def _mask_outputs(self, hidden: torch.Tensor, micro_batch) -> dict:
        samples = [s for s in self._samples(micro_batch) if s.positions and s.record.masks_rle]
        offsets = micro_batch["input_ids"].offsets()
        if not samples:
            return {_OUT_MASK_LOSS: hidden.sum() * 0, _OUT_METRICS: {}}
        if hidden.shape[0] == 1 and hidden.shape[1] == int(offsets[-1]):  # remove-padding path: (1, nnz, H)
            seg_hidden = hidden[0, [int(offsets[s.index]) + p for s in samples for p in s.positions]]
        else:  # padded path: (B, max_len, H)
            seg_hidden = hidden[[s.index for s in samples for _ in s.positions], [p for s in samples for p in
                                                                                 s.positions]]
        encoder = self.frame_encoder.to(device=seg_hidden.device)
        inputs = build_head_inputs(samples, seg_hidden, encoder, self.frame_store,
                                   with_video=self.sft.supervise_spatial or self.sft.supervise_all_frames)
        out = self._head()(inputs.hidden, inputs.features)
        key_logits, video_logits = split_head_outputs(out.mask_logits, inputs)
        losses, ious, bces, dices, start = [], [], [], [], 0
        for s in samples:
            n = len(s.positions)
            logits = [key_logits[start: start + n]]
            gts = [np.stack([s.record.decode_mask(k) for k in s.keyframes])]
            ious += [seg_iou(key_logits[start + j], gts[0][j]) for j in range(n)]
            if video_logits:
                spatial = np.stack([s.record.decode_mask(t) for t in s.trajectory.spatial_frames])
                logits += list(video_logits[start: start + n])
                gts += [spatial] * n
            start += n
            loss, parts = sft_mask_loss(
                torch.cat(logits), torch.from_numpy(np.concatenate(gts)), bce_weight=self.sft.bce_weight,
                dice_weight=self.sft.dice_weight, mode=self.sft.bce_mode, num_points=self.sft.num_points,
                oversample_ratio=self.sft.oversample_ratio, importance_sample_ratio=self.sft.importance_sample_ratio,
                generator=self._point_rng if key_logits.device.type == "cpu" else None)
            losses.append(loss)
            bces.append(float(parts["bce"]))
            dices.append(float(parts["dice"]))
        metrics = {"sft/mask_loss": float(torch.stack(losses).detach().mean()), "sft/mask_bce": float(np.mean(bces)),
                   "sft/mask_dice": float(np.mean(dices)), "sft/seg_iou": float(np.mean(ious)),
                   "sft/num_segs": float(len(ious))}
        return {_OUT_MASK_LOSS: torch.stack(losses), _OUT_METRICS: metrics}

    def forward_backward_batch(self, data, loss_function, forward_only=False):
        """verl's loop; with ``digit_weight`` or ``action_weight`` not 1 the ``loss_mask`` becomes the CE weights first
        (``token_loss.py``), so verl's token normaliser (the batch's ``loss_mask`` sum) is the sum of the weights."""
        weighted = self.sft.digit_weight != 1.0 or self.sft.action_weight != 1.0
        if weighted and "loss_mask" in data.keys():
            if self._token_weights is None:
                self._token_weights = token_weight_table(self.model_config.tokenizer, self.sft.digit_weight,
                                                         self.sft.action_weight)
            data["loss_mask"] = token_loss_weights(data["input_ids"], data["loss_mask"], self._token_weights)
        return super().forward_backward_batch(data, loss_function, forward_only)

    def forward_step(self, micro_batch, loss_function, forward_only):
        if loss_function is not None and self.has_seg_head:
            loss_function = functools.partial(sft_loss_with_masks, inner=loss_function)
        return FSDPEngineWithLMHead.forward_step(self, micro_batch, loss_function, forward_only)

    # ------------------------------------------------------------------ checkpoint
    def save_checkpoint(self, local_path: str, *args, **kwargs) -> None:
        """The RL engine's checkpoint (verl state + ``seg_head/``) plus ``hf_policy/`` (see the module docstring)."""
        super().save_checkpoint(local_path, *args, **kwargs)
        from verl.utils.fsdp_utils import get_fsdp_full_state_dict

        from .export import export_hf_policy

        state = get_fsdp_full_state_dict(self.module, offload_to_cpu=True, rank0_only=True)
        if torch.distributed.get_rank() == 0:
            lora = None
            if self._is_lora:
                lora = {"r": int(self.model_config.lora_rank), "alpha": float(self.model_config.lora_alpha)}
            export_hf_policy(state, self.model_config.local_path, os.path.join(local_path, HF_EXPORT_DIR),
                             tokenizer=self.model_config.tokenizer, processor=self.model_config.processor, lora=lora)
        torch.distributed.barrier()


def _plain_log_probs(output, output_args: dict, micro_batch) -> bool:
    """Whether verl would compute only fp32 log-probs at temperature 1 on padded logits (``transformer_impl.py``
    ``prepare_model_outputs``, no remove-padding, no fused kernels, no entropy/distillation outputs): then
    :func:`~videoseg_o3_verl.sft.token_loss.padded_sequence_log_probs` gives the same values in one pass."""
    from verl.utils import tensordict_utils as tu
    from verl.utils.dataset.dataset_utils import DatasetPadMode

    def flag(key, default=False):
        return tu.get_non_tensor_data(data=micro_batch, key=key, default=default)

    logits = getattr(output, "logits", None)
    return (isinstance(logits, torch.Tensor) and type(logits) is torch.Tensor and logits.dtype == torch.float32
            and logits.dim() == 3 and output_args.get("temperature_is_one", False)
            and not flag("use_remove_padding", True) and not flag("use_fused_kernels")
            and flag("pad_mode", DatasetPadMode.NO_PADDING) == DatasetPadMode.NO_PADDING
            and not any(flag(k) for k in ("calculate_entropy", "calculate_sum_pi_squared", "distillation_use_topk",
                                          "distillation_only")))


def sft_loss_with_masks(inner, model_output: dict, data, dp_group=None):
    """verl's SFT token loss plus the mask loss, normalised like verl's per-sample losses.

    The mask loss of each sample (mean over its decoded masks) is summed over the micro-batch, divided by the global
    batch size and multiplied by the data-parallel size, so the sum over micro-batches and ranks is the batch mean.
    """
    mask_losses = model_output.pop(_OUT_MASK_LOSS, None)
    mask_metrics = model_output.pop(_OUT_METRICS, None) or {}
    ce, metrics = inner(model_output=model_output, data=data, dp_group=dp_group)
    metrics = dict(metrics or {})
    log_probs = model_output["log_probs"]
    if log_probs.is_nested and "loss_mask" in data.keys():  # token-mean CE of this micro-batch's assistant tokens
        targets = (torch.roll(data["loss_mask"].values(), shifts=-1, dims=0) > 0).float()  # plain CE (unweighted)
        metrics["sft/ce"] = float(-(log_probs.values().detach().float() * targets).sum() / targets.sum().clamp_min(1))
    loss = ce
    if mask_losses is not None and mask_losses.numel():
        global_bsz, dp_size = data["global_batch_size"], data["dp_size"]
        loss = ce + mask_losses.sum() / global_bsz * dp_size
    metrics.update(mask_metrics)
    return loss, metrics
