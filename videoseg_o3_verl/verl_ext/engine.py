# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The seg-head FSDP engine: verl's actor with SEG-aware logit calibration and the auxiliary mask loss
(``docs/method.md``, "SEG-aware logit calibration" and "Auxiliary segmentation loss").

Registered as ``model_type="videoseg_o3_seg_lm"`` for fsdp/fsdp2 on cuda, npu and cpu (select it with
``actor_rollout_ref.model.model_type``). On every actor forward it reads the last hidden states (a forward hook on
the decoder's final norm), runs the :class:`~videoseg_o3_verl.model.seg_head.SegHead` for each [SEG] on its turn's
keyframe (and the sample's spatial frames), and adds the mask log-likelihood to the log-prob whose target is the
[SEG] token — in the ``compute_log_prob`` pass (old log-probs, rollout targets stored in TransferQueue) and in the
update pass (current log-probs against the stored targets), so the PPO ratio is consistent over mini-batches.
The update adds ``aux_loss.ratio × (BCE + Dice)``; the KL term is computed before the injection (the injected
amount is added to the reference log-probs too, so k3 sees the plain token log-probs).

Only the first ``seg_head.max_segs_per_sample`` [SEG]s of a trajectory get this gradient path (calibration, aux
loss; ``videoseg/seg_dropped`` counts the others); the ``compute_log_prob`` pass decodes every [SEG], so each turn's
reward IoUs come from that turn's own [SEG]s. ``videoseg_o3.logprob_temperature`` replaces the rollout temperature
in every log-prob forward (actor and reference), and ``lr_scheduler_type: linear`` is built here
(``lr_schedule.py``).

The reference model (``engine_config.forward_only``) is built by the same class without a head. Settings reach the
engine through ``actor_rollout_ref.model.override_config.videoseg_o3`` (the recipes set it to
``${videoseg_json:${videoseg_o3}}``, the top-level section as a JSON string); the engine parses them and removes
them from the HF config.

The engine only wires these pieces into verl's hooks; each lives in its own module: the per-[SEG] batch maths in
``seg_batch.py``, the loss in ``seg_loss.py``, the seg-head export next to verl's checkpoint in
``checkpoint_export.py``, the rollout weight filter and the SAM2 decoder-weight push in ``weight_sync.py``, the
test-only dumps in ``debug_dump.py``.
"""

from __future__ import annotations

import copy
import functools
import json
import logging

import torch
import torch.nn as nn
from verl.workers.engine.base import EngineRegistry
from verl.workers.engine.fsdp.transformer_impl import FSDPEngineWithLMHead

from ..config import ENGINE_MODEL_TYPE, TRAINABLE_GROUPS, VideoSegO3Config, load_videoseg_config
from ..env.prompts import SEG_TOKEN
from .checkpoint_export import export_seg_head
from .debug_dump import append_engine_record, metric_value
from .rewarding import FRAME_SLOTS
from .seg_batch import (
    FrameStore,
    build_head_inputs,
    calibration_log_probs,
    calibration_targets,
    cap_segs,
    collect_samples,
    key_mask_preview,
    micro_batch_aux_loss,
    seg_slices,
    split_head_outputs,
    turn_ious,
    turn_key_previews,
)
from .seg_loss import nested_like, videoseg_loss
from .weight_sync import HEAD_ATTR, DecoderWeightsPusher, decoder_state, without_head

logger = logging.getLogger(__name__)

OUT_TARGET = "videoseg_target"
OUT_NSEG = "videoseg_nseg"
OUT_MASK_LOGP = "videoseg_mask_logp"
OUT_FRAME_IOUS = "videoseg_frame_ious"
OUT_KEY_IOUS = "videoseg_keyframe_ious"
OUT_EMBED = "videoseg_embedding"
OUT_KEY_MASK = "videoseg_key_mask"
OUT_TURN_KEY_MASKS = "videoseg_turn_key_masks"
OUT_TURN_HAS_MASK = "videoseg_turn_has_mask"
PREVIEW = 64
"""Side of the final keyframe mask preview kept for reports."""


class _Table(nn.Module):
    """An embedding table that is not an ``nn.Embedding`` (same ``weight`` state-dict key).

    verl's FSDP2 wrapping shards every ``nn.Embedding`` as its own unit (``_select_fsdp2_wrap_targets``); SAM2 reads
    its token tables through ``.weight`` rather than calling them, which would then see sharded parameters. As plain
    modules they belong to the seg head's FSDP unit and are gathered with it.
    """

    def __init__(self, embedding: nn.Embedding):
        super().__init__()
        self.weight = embedding.weight

    def forward(self, index: torch.Tensor) -> torch.Tensor:
        return nn.functional.embedding(index, self.weight)


def engine_seg_head(videoseg: VideoSegO3Config, hidden_size: int):
    """``(head, frame encoder)`` of the engine: the head saved at ``[videoseg_o3.seg_head.path]`` (with what it was
    saved with; a [SEG] standardizer's statistics move by ``input_norm_momentum``, default frozen), or a fresh one on
    the recipe's SAM2 (``input_norm`` from the recipe)."""
    from videoseg_reward.sam2_model import load_sam2_model

    from ..model.frame_encoder import FrameEncoder
    from ..model.seg_head import build_seg_head
    from ..model.seg_head_io import load_seg_head

    sam2, settings = videoseg.sam2, videoseg.seg_head
    if not sam2.checkpoint or sam2.checkpoint == "???":
        raise ValueError("[videoseg_o3.sam2.checkpoint] is required by the seg-head engine; set it in the recipe "
                         "(actor_rollout_ref.model.override_config.videoseg_o3 must interpolate ${videoseg_o3})")
    if settings.path:
        head, encoder = load_seg_head(settings.path, sam2_checkpoint=sam2.checkpoint)
        if head.input_norm is not None:
            head.input_norm.momentum = settings.input_norm_momentum
    else:
        sam2_model = load_sam2_model(sam2.checkpoint, config=sam2.config, image_size=sam2.image_size)
        head = build_seg_head(hidden_size, sam2_model, input_norm=settings.input_norm)
        encoder = FrameEncoder.from_sam2(sam2_model, cache_size=settings.frame_cache_size)
    if head.hidden_size != hidden_size:
        raise ValueError(f"[videoseg_o3.seg_head.path] head expects hidden size {head.hidden_size}, the policy has "
                         f"{hidden_size}")
    return head, encoder


def _replace_embeddings(module: nn.Module) -> None:
    for name, child in list(module.named_children()):
        if isinstance(child, nn.Embedding):
            setattr(module, name, _Table(child))
        else:
            _replace_embeddings(child)


def _non_tensor_list(batch, key: str, size: int) -> list:
    if key not in batch.keys():
        return [None] * size
    value = batch.get(key)
    items = list(value) if not isinstance(value, list) else value
    return [getattr(item, "data", item) for item in items]


def _add_at(values: torch.Tensor, index: torch.Tensor, amounts: torch.Tensor) -> torch.Tensor:
    """``values`` (float32) with ``amounts`` added at ``index``, out of place (gradients reach ``amounts``)."""
    return values.float().index_put((index,), amounts.float(), accumulate=True)


def _rows(dense: torch.Tensor) -> torch.Tensor:
    """A dense ``[B, K]`` per-sample output as verl wants it (nested, one row per sample)."""
    return torch.nested.as_nested_tensor(list(dense.unbind(0)), layout=torch.jagged)


@EngineRegistry.register(model_type=ENGINE_MODEL_TYPE, backend=["fsdp", "fsdp2"], device=["cuda", "npu", "cpu"])
class VideoSegO3FSDPEngine(FSDPEngineWithLMHead):
    """verl's FSDP LM engine plus the VideoSEG-O3 seg head (see the module docstring)."""

    def __init__(self, model_config, engine_config, *args, **kwargs):
        raw = dict(model_config.override_config or {})
        settings = raw.pop("videoseg_o3", None)
        if isinstance(settings, str):
            settings = json.loads(settings)
        object.__setattr__(model_config, "override_config", raw)  # BaseConfig freezes this field
        if hasattr(model_config.hf_config, "videoseg_o3"):
            delattr(model_config.hf_config, "videoseg_o3")
        self.videoseg: VideoSegO3Config = load_videoseg_config({"videoseg_o3": settings} if settings else None)
        self._hidden: torch.Tensor | None = None
        self.frame_encoder = None
        self.frame_store = FrameStore()
        self._warned_dropped = False
        self._optimizer_steps = 0
        self._weights_pusher = DecoderWeightsPusher(self.videoseg.reward_service)
        super().__init__(model_config, engine_config, *args, **kwargs)

    # ------------------------------------------------------------------ build
    @property
    def has_seg_head(self) -> bool:
        return self.frame_encoder is not None

    def _build_module(self):
        model_type = self.model_config.model_type
        self.model_config.model_type = "language_model"  # transformer_impl.py:273 only knows the stock types
        try:
            module = super()._build_module()
        finally:
            self.model_config.model_type = model_type
        if self.engine_config.forward_only:
            return module  # reference model: plain token log-probs
        hidden_size = module.config.get_text_config().hidden_size
        head, encoder = engine_seg_head(self.videoseg, hidden_size)
        _replace_embeddings(head)
        self._head_template = copy.deepcopy(head).cpu().float().requires_grad_(False)  # for exports (see below)
        self._hidden_size = hidden_size
        dtype = next(module.parameters()).dtype
        setattr(module, HEAD_ATTR, head.to(dtype=dtype))
        # the head is its own FSDP unit (called outside the policy's forward)
        module._no_split_modules = list(getattr(module, "_no_split_modules", None) or []) + [type(head).__name__]
        wrap = (self.engine_config.wrap_policy or {}).get("transformer_layer_cls_to_wrap")
        if wrap and type(head).__name__ not in wrap:
            raise ValueError(f"[actor.fsdp_config.wrap_policy.transformer_layer_cls_to_wrap] must include "
                             f"{type(head).__name__!r} (got {list(wrap)})")
        self.frame_encoder = encoder
        _apply_trainable(module, self.videoseg.trainable_modules)
        module.get_decoder().norm.register_forward_hook(self._capture_hidden)
        self.seg_token_id = self.model_config.tokenizer.convert_tokens_to_ids(SEG_TOKEN)
        return module

    def _capture_hidden(self, module, inputs, output):
        self._hidden = output

    def _head(self):
        return getattr(self.module, HEAD_ATTR)

    # ------------------------------------------------------------------ forward
    def prepare_model_outputs(self, output, output_args, micro_batch, logits_processor_func):
        model_output = super().prepare_model_outputs(output, output_args, micro_batch, logits_processor_func)
        hidden, self._hidden = self._hidden, None
        if "log_probs" in model_output and model_output["log_probs"] is not None:
            # float32 everywhere: the calibrated actor log-probs are float32 (a mask log-likelihood added to bf16
            # loses precision) and TransferQueue needs one dtype per field, which the reference model shares.
            lp = model_output["log_probs"]
            model_output["log_probs"] = nested_like(lp, lp.values().float())
        if not self.has_seg_head or hidden is None or "log_probs" not in model_output:
            return model_output
        update_pass = OUT_TARGET in micro_batch.keys()
        return self._seg_outputs(model_output, hidden, micro_batch, update_pass)

    def _seg_outputs(self, model_output: dict, hidden: torch.Tensor, micro_batch, update_pass: bool) -> dict:
        settings = self.videoseg
        input_ids = micro_batch["input_ids"]
        ids = list(input_ids.unbind())
        bsz = len(ids)
        prompt_lens = [int(p.shape[0]) for p in micro_batch["prompts"].unbind()]
        every = collect_samples(ids, prompt_lens, _non_tensor_list(micro_batch, "extra_info", bsz),
                                _non_tensor_list(micro_batch, "extra_fields", bsz), self.seg_token_id)
        trained, trained_rows = cap_segs(every, settings.seg_head.max_segs_per_sample)
        # the gradient path (calibration, aux loss) sees the first max_segs [SEG]s of each trajectory; the old pass
        # (no gradient) decodes every [SEG] so that each turn's reward IoUs come from that turn's own [SEG]s
        decoded = trained if update_pass else every
        rows = list(range(sum(len(s.positions) for s in trained))) if update_pass else trained_rows
        offsets = input_ids.offsets()
        positions = [p for s in decoded for p in s.positions]
        if hidden.shape[0] == 1 and hidden.shape[1] == int(offsets[-1]):  # remove-padding path: (1, nnz, H)
            seg_hidden = hidden[0, [int(offsets[s.index]) + p for s in decoded for p in s.positions]]
        else:  # padded path: (B, max_len, H), sequences left-aligned
            seg_hidden = hidden[[s.index for s in decoded for _ in s.positions], positions]
        grid = settings.calibration.grid
        log_probs = model_output["log_probs"]
        if positions:
            inputs = build_head_inputs(decoded, seg_hidden, self.frame_encoder.to(device=seg_hidden.device),
                                       self.frame_store, with_video=True)
            out = self._head()(inputs.hidden, inputs.features)
            all_key, all_video = split_head_outputs(out.mask_logits, inputs)
        else:
            all_key, all_video, out = seg_hidden.new_zeros(0, 1, 1), [], None
        key_logits, video_logits = all_key[rows], [all_video[j] for j in rows]
        num_segs = len(rows)

        # SEG-aware calibration: targets from this forward (old pass) or from TransferQueue (update pass)
        if update_pass:
            stored = micro_batch[OUT_TARGET]
            stored = stored.to_padded_tensor(0.0) if stored.is_nested else stored
            targets = torch.cat([stored[s.index].reshape(-1, grid * grid)[: len(s.positions)] for s in trained
                                 if s.positions]) if num_segs else key_logits.new_zeros(0, grid * grid)
        else:
            targets = calibration_targets(key_logits, grid, settings.calibration.threshold)
        mask_logp = calibration_log_probs(key_logits, targets.to(key_logits.device), grid) if num_segs \
            else key_logits.new_zeros(0)
        injected = settings.calibration.weight * mask_logp if settings.calibration.enabled else mask_logp * 0
        flat_index = torch.tensor([int(offsets[s.index]) + p - 1 for s in trained for p in s.positions],
                                  dtype=torch.long, device=log_probs.values().device)
        values = log_probs.values()
        model_output["log_probs"] = nested_like(log_probs, _add_at(values, flat_index, injected))
        if settings.debug.dump_dir and not update_pass:
            self._dump_debug({"pass": "old", "calibration": settings.calibration.enabled,
                              "temperature": float(torch.as_tensor(micro_batch["temperature"]).flatten()[0]),
                              "plain": values[flat_index].tolist(),
                              "final": model_output["log_probs"].values()[flat_index].tolist(),
                              "mask_logp": mask_logp.tolist()})
        if update_pass:
            injection = torch.zeros_like(values, dtype=torch.float32).index_put((flat_index,), injected.float(),
                                                                                accumulate=True)
            model_output["_videoseg_injection"] = nested_like(log_probs, injection)
            aux_sum, aux_value = micro_batch_aux_loss(trained, key_logits, video_logits, settings.aux_loss.pooling,
                                                      num_rows=bsz)
            model_output["_videoseg_aux"] = aux_sum
            model_output["_videoseg_aux_value"] = aux_value
            model_output["_videoseg_mask_logp"] = mask_logp.detach()
            model_output["_videoseg_seg_dropped"] = torch.tensor(float(self._dropped(every, trained)))
            return model_output
        model_output.update(self._old_pass_outputs(every, trained, bsz, all_key.detach(),
                                                   [v.detach() for v in all_video], targets, mask_logp.detach(),
                                                   out, values.device))
        return model_output

    def _dropped(self, every, trained) -> int:
        """[SEG]s of the micro-batch beyond ``max_segs_per_sample`` (no gradient; warned about once)."""
        dropped = sum(len(a.positions) - len(b.positions) for a, b in zip(every, trained))
        if dropped and not self._warned_dropped:
            self._warned_dropped = True
            logger.warning("%d [SEG] token(s) beyond videoseg_o3.seg_head.max_segs_per_sample get no gradient in the "
                           "training forward (their rewards still use them); see the videoseg/seg_dropped metric",
                           dropped)
        return dropped

    def _old_pass_outputs(self, every, trained, bsz, key_logits, video_logits, targets, mask_logp, out,
                          device) -> dict:
        """Per-sample outputs written to TransferQueue: calibration targets of the trained [SEG]s (``trained``,
        rows of ``targets``/``mask_logp``), the rewards' IoUs of every [SEG] (``every``, rows of the logits) and the
        report's keyframe mask previews (the final [SEG]'s, and each turn's last [SEG]'s with a has-mask flag)."""
        settings = self.videoseg
        k, grid = settings.seg_head.max_segs_per_sample, settings.calibration.grid
        max_turns = int(settings.env.get("max_turns", 3)) if settings.env else 3
        max_frames = FRAME_SLOTS
        target = torch.zeros(bsz, k * grid * grid)
        nseg = torch.zeros(bsz, 1)
        logp = torch.zeros(bsz, k)
        frame_ious = torch.full((bsz, max_turns * max_frames), -1.0)
        key_ious = torch.full((bsz, max_turns), -1.0)
        embed = torch.zeros(bsz, 256)
        preview = torch.zeros(bsz, PREVIEW * PREVIEW)
        turn_previews = torch.zeros(bsz, max_turns * PREVIEW * PREVIEW)
        turn_has_mask = torch.zeros(bsz, max_turns)
        for s, sl in zip(trained, seg_slices(trained)):
            n = len(s.positions)
            nseg[s.index, 0] = n
            if n:
                target[s.index, : n * grid * grid] = targets[sl].flatten().cpu()
                logp[s.index, :n] = mask_logp[sl].cpu()
        for s, sl in zip(every, seg_slices(every)):
            if sl.stop > sl.start:  # the trajectory's final [SEG]: J&F prompt and report preview
                embed[s.index, : out.embedding.shape[-1]] = out.embedding[sl.stop - 1].detach().cpu()
                preview[s.index] = key_mask_preview(key_logits[sl.stop - 1], PREVIEW)
                previews, has_mask = turn_key_previews(s, key_logits[sl], max_turns, PREVIEW)
                turn_previews[s.index], turn_has_mask[s.index] = previews.flatten(), has_mask
            if not s.record.masks_rle:
                continue
            per_turn_frames, per_turn_keys = turn_ious(s, key_logits[sl], video_logits[sl], max_turns)
            for t, (ious, key) in enumerate(zip(per_turn_frames, per_turn_keys)):
                frame_ious[s.index, t * max_frames: t * max_frames + len(ious)] = torch.tensor(ious)
                key_ious[s.index, t] = key
        to = functools.partial(torch.Tensor.to, device=device)
        return {OUT_TARGET: _rows(to(target)), OUT_NSEG: _rows(to(nseg)), OUT_MASK_LOGP: _rows(to(logp)),
                OUT_FRAME_IOUS: _rows(to(frame_ious)), OUT_KEY_IOUS: _rows(to(key_ious)), OUT_EMBED: _rows(to(embed)),
                OUT_KEY_MASK: _rows(to(preview)), OUT_TURN_KEY_MASKS: _rows(to(turn_previews)),
                OUT_TURN_HAS_MASK: _rows(to(turn_has_mask))}

    def prepare_model_inputs(self, micro_batch):
        if self.videoseg.logprob_temperature is not None:
            set_logprob_temperature(micro_batch, self.videoseg.logprob_temperature)
        return super().prepare_model_inputs(micro_batch)

    def forward_step(self, micro_batch, loss_function, forward_only):
        if loss_function is not None and not forward_only and self.has_seg_head:
            loss_function = functools.partial(videoseg_loss, inner=loss_function,
                                              aux_ratio=self.videoseg.aux_loss.ratio)
        loss, output = super().forward_step(micro_batch, loss_function, forward_only)
        if self.videoseg.debug.dump_dir and loss_function is not None and not forward_only:
            self._dump_debug({"pass": "update", "optimizer_steps": self._optimizer_steps,
                              "metrics": {k: metric_value(v) for k, v in output["metrics"].items()}})
        return loss, output

    def _dump_debug(self, record: dict) -> None:
        """Append one JSON line to ``<videoseg_o3.debug.dump_dir>/engine_<role>_<pid>.jsonl`` (test-only)."""
        append_engine_record(self.videoseg.debug.dump_dir, "ref" if self.engine_config.forward_only else "actor",
                             record)

    def _build_lr_scheduler(self, optimizer):
        """verl's constant/cosine schedules, plus ``linear`` (``verl_ext/lr_schedule.py``)."""
        config = self.optimizer_config
        if config.lr_scheduler_type != "linear":
            return super()._build_lr_scheduler(optimizer)
        from .lr_schedule import get_linear_schedule_with_warmup

        total = config.total_training_steps
        warmup = config.lr_warmup_steps
        if warmup is None or warmup <= 0:  # as verl: the ratio applies when no absolute count is set
            warmup = int(config.lr_warmup_steps_ratio * total)
        return get_linear_schedule_with_warmup(optimizer, num_warmup_steps=warmup, num_training_steps=total,
                                               min_lr_ratio=config.min_lr_ratio,
                                               zero_indexed_step=config.zero_indexed_step)

    def save_checkpoint(self, local_path: str, *args, **kwargs) -> None:
        """verl's checkpoint (policy + head, for resume) plus the head alone in ``<local_path>/seg_head/``
        (``seg_head.safetensors`` + config, loadable with ``videoseg_o3_verl.model.seg_head_io.load_seg_head``)."""
        super().save_checkpoint(local_path, *args, **kwargs)
        if self.has_seg_head:
            export_seg_head(self._head(), self._head_template, local_path,
                            sam2_checkpoint=self.videoseg.sam2.checkpoint, hidden_size=self._hidden_size)

    def optimizer_step(self):
        result = super().optimizer_step()
        self._optimizer_steps += 1
        if self.has_seg_head and self.videoseg.rewards.jf.enabled:
            self._push_decoder_weights()
        return result

    def _push_decoder_weights(self) -> None:
        """Send the trained prompt encoder + mask decoder to the SAM2 reward service (J&F term), as SAM2 keys."""
        state = decoder_state(self._head())  # every rank: DTensor gathers are collective
        if torch.distributed.get_rank() == 0:
            self._weights_pusher.push(state)

    # ------------------------------------------------------------------ weight sync
    def get_per_tensor_param(self, *args, **kwargs):
        generator, peft_config = super().get_per_tensor_param(*args, **kwargs)
        return without_head(generator), peft_config

    def get_per_tensor_param_shard(self, *args, **kwargs):
        generator, peft_config = super().get_per_tensor_param_shard(*args, **kwargs)
        return without_head(generator), peft_config


def _apply_trainable(module: nn.Module, trainable: list[str]) -> None:
    """Freeze every parameter outside the configured groups (``policy`` = the whole Qwen-VL)."""
    unknown = sorted(set(trainable) - set(TRAINABLE_GROUPS))
    if unknown:
        raise ValueError(f"[videoseg_o3.trainable_modules] unknown entries {unknown}; "
                         f"allowed: {list(TRAINABLE_GROUPS)}")
    prefix = HEAD_ATTR + "."
    for name, param in module.named_parameters():
        group = "seg_head." + name[len(prefix):].split(".", 1)[0] if name.startswith(prefix) else "policy"
        param.requires_grad_(group in trainable)


def set_logprob_temperature(micro_batch, temperature: float) -> None:
    """Make verl's forward divide the logits by ``temperature`` (``videoseg_o3.logprob_temperature``) instead of the
    rollout temperature the trainer put in the micro-batch (verl reads ``micro_batch["temperature"]``,
    ``transformer_impl.py`` ``prepare_model_inputs``)."""
    from verl.utils import tensordict_utils as tu

    tu.assign_non_tensor_data(micro_batch, "temperature", float(temperature))
