# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The policy's segmentation head: [SEG] hidden state -> MLP -> SAM2 sparse prompt -> mask decoder (docs/method.md §1).

Dimension letters: N [SEG] prompts; H the LLM hidden size; C = 256 the SAM2 prompt width; T frames;
h x w the low-res mask logits (SAM2 ``image_size / 4``: 256 x 256 for the released 1024-px models).

Training-time decoding is SAM2 image mode without memory: every frame is decoded independently from its
:class:`~videoseg_o3_verl.model.frame_encoder.FrameFeatures` (``no_mem_embed`` already added) and the same prompt.
Trainable: ``proj`` (the released ``text_hidden_fcs``), the prompt encoder and the mask decoder (including its
``conv_s0``/``conv_s1`` high-res projections, applied here to raw encoder features; docs/method.md §1).

Optional, not in the released head: :class:`HiddenStandardizer` before ``proj`` (``input_norm``), for small randomly
initialised policies whose [SEG] hidden states are nearly one shared vector (docs/learning_demo.md).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call
from videoseg_reward.sam2_model import Sam2Meta

from videoseg_o3_verl.model.frame_encoder import FrameFeatures

__all__ = [
    "SEG_HEAD_PRESETS",
    "SegHead",
    "SegHeadOutput",
    "build_seg_head",
    "seg_head_qwen3vl_2b",
    "seg_head_qwen3vl_4b",
    "seg_head_tiny",
]


@dataclass(frozen=True)
class SegHeadOutput:
    """Best-of-three masks for N prompts."""

    mask_logits: torch.Tensor
    """[N, h, w] float32 low-res logits of the mask with the highest predicted IoU (with grad)."""
    iou_pred: torch.Tensor
    """[N] float32 predicted IoU of that mask."""
    best_index: torch.Tensor
    """[N] long index of the chosen mask among the decoder's multimask outputs (0..2)."""
    embedding: torch.Tensor | None = None
    """[N, C] the projected prompt embeddings (set by :meth:`SegHead.forward`; the SAM2 reward service's input)."""


STANDARDIZER_EPS = 1e-5
"""``eps`` of :class:`HiddenStandardizer`."""


def standardize(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, eps: float = STANDARDIZER_EPS
                ) -> torch.Tensor:
    """``(x - mean) / sqrt(var + eps)``, per feature (the last dimension)."""
    return (x - mean.to(x.dtype)) / torch.sqrt(var.to(x.dtype) + eps)


def fold_standardizer(weight: torch.Tensor, bias: torch.Tensor, mean: torch.Tensor, var: torch.Tensor,
                      eps: float = STANDARDIZER_EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``(weight, bias)`` of one linear layer that equals :func:`standardize` followed by ``Linear(weight,
    bias)``: ``W' = W / s`` (per input column, ``s = sqrt(var + eps)``) and ``b' = b - W' @ mean``."""
    scaled = weight / torch.sqrt(var.to(weight.dtype) + eps)[None, :]
    return scaled, bias - scaled @ mean.to(weight.dtype)


class HiddenStandardizer(nn.Module):
    """Per-feature standardisation of [SEG] hidden states with running statistics (no batch coupling).

    The forward always uses the stored ``mean``/``var``, so it is an affine map of each hidden state on its own (any
    batch size, the same value in training and inference). A training forward with gradients (the SFT step, the RL
    update) first folds its batch into the statistics: the first batch sets them, later ones move them by
    ``momentum`` (``stat ← (1 - momentum)·stat + momentum·batch_stat``, population variance); forwards without
    gradients (rollouts, evaluation) and batches of one leave them alone; ``momentum = 0`` freezes them. Each
    data-parallel rank keeps the statistics of its own batches; checkpoints store rank 0's.
    """

    def __init__(self, size: int, momentum: float = 0.05) -> None:
        super().__init__()
        if not 0 <= momentum <= 1:
            raise ValueError(f"HiddenStandardizer: momentum must be in [0, 1], got {momentum}")
        self.momentum = float(momentum)
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("var", torch.ones(size))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.momentum > 0 and torch.is_grad_enabled() and x.shape[0] >= 2:
            self.update(x.detach())
        return standardize(x, self.mean, self.var)

    @torch.no_grad()
    def update(self, batch: torch.Tensor) -> None:
        """Fold ``[N, H]`` hidden states into the running statistics."""
        batch = batch.to(self.mean.dtype)
        mean, var = batch.mean(0), batch.var(0, unbiased=False)
        weight = 1.0 if int(self.count) == 0 else self.momentum
        self.mean.lerp_(mean, weight)
        self.var.lerp_(var, weight)
        self.count += 1


class SegHead(nn.Module):
    """Projection MLP + SAM2 prompt encoder + SAM2 mask decoder (parts injected, STYLE convention 7).

    The sparse prompt of each [SEG] is ``[pad] * num_padding_tokens + [proj(h)]`` where ``pad`` is the prompt
    encoder's not-a-point embedding (what a label -1 point encodes to), and the dense prompt is its no-mask
    embedding. ``num_padding_tokens=2`` reproduces the released code: ``SAM2Base._forward_sam_heads`` passes one
    label -1 point and ``PromptEncoder`` appends a second padding point because no box is given, so the released
    sparse prompt is [N, 3, C] (docs/method.md §1 writes [B, 2, C], counting one padding token).

    Inputs are cast to the head's parameter dtype inside :meth:`forward`, so the head runs as fp32, bf16 or under
    autocast; outputs are always float32.
    """

    def __init__(self, *, proj: nn.Module, prompt_encoder: nn.Module, mask_decoder: nn.Module,
                 num_padding_tokens: int = 2, multimask_output: bool = True,
                 input_norm: HiddenStandardizer | None = None) -> None:
        super().__init__()
        if num_padding_tokens < 0:
            raise ValueError(f"SegHead: num_padding_tokens must be >= 0, got {num_padding_tokens}")
        self.input_norm = input_norm
        self.proj = proj
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder
        self.num_padding_tokens = int(num_padding_tokens)
        self.multimask_output = bool(multimask_output)
        self.sam2_meta: Sam2Meta | None = None
        """The SAM2 architecture the parts came from, when known (set by :func:`build_seg_head`; used when saving)."""

    # -------------------------------------------------------------------------------------------- properties

    @property
    def dtype(self) -> torch.dtype:
        return next(self.mask_decoder.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.mask_decoder.parameters()).device

    @property
    def hidden_size(self) -> int:
        """H, the input width of ``proj``."""
        first = next(m for m in self.proj.modules() if isinstance(m, nn.Linear))
        return first.in_features

    @property
    def embed_dim(self) -> int:
        """C, the SAM2 prompt width."""
        return int(self.prompt_encoder.embed_dim)

    # ------------------------------------------------------------------------------------------------ pieces

    def embed(self, seg_hidden: torch.Tensor) -> torch.Tensor:
        """[N, H] [SEG] hidden states -> [N, C] prompt embeddings (``input_norm`` if any, then ``proj``)."""
        if seg_hidden.dim() != 2 or seg_hidden.shape[1] != self.hidden_size:
            raise ValueError(f"SegHead: seg_hidden must be [N, {self.hidden_size}], got {tuple(seg_hidden.shape)}")
        x = seg_hidden.to(device=self.device, dtype=self.dtype)
        return self.proj(x if self.input_norm is None else self.input_norm(x))

    def _dense_pe(self, dtype: torch.dtype) -> torch.Tensor:
        """[1, C, h', w'] positional encoding of the image embedding grid (``PromptEncoder.get_dense_pe``)."""
        pe_layer = self.prompt_encoder.pe_layer
        gauss = pe_layer.positional_encoding_gaussian_matrix
        size = tuple(self.prompt_encoder.image_embedding_size)
        if gauss.dtype == torch.float32:
            pe = pe_layer(size)
        else:
            # a model-wide .to(bf16) also casts this buffer, and SAM2 multiplies a float32 grid by it (dtype error):
            # run SAM2's own code with a float32 copy of the buffer
            pe = functional_call(pe_layer, {"positional_encoding_gaussian_matrix": gauss.float()}, (size,))
        return pe.unsqueeze(0).to(dtype)

    def project_features(self, features: FrameFeatures) -> FrameFeatures:
        """Apply the decoder's (trainable) ``conv_s0``/``conv_s1`` to raw high-res features; a no-op otherwise."""
        dtype = self.dtype
        feats = features.to(device=self.device, dtype=dtype)
        if features.high_res_projected or not getattr(self.mask_decoder, "use_high_res_features", False):
            return feats
        if len(feats.high_res_feats) != 2:
            raise ValueError(f"SegHead: the mask decoder uses 2 high-res levels, features have "
                             f"{len(feats.high_res_feats)}")
        s0, s1 = feats.high_res_feats
        return FrameFeatures(feats.image_embed, (self.mask_decoder.conv_s0(s0), self.mask_decoder.conv_s1(s1)),
                             high_res_projected=True)

    def decode(self, prompt: torch.Tensor, features: FrameFeatures) -> SegHeadOutput:
        """Decode N prompt embeddings [N, C], prompt n on frame n of ``features`` (N entries)."""
        if prompt.dim() != 2 or prompt.shape[1] != self.embed_dim:
            raise ValueError(f"SegHead.decode: prompt must be [N, {self.embed_dim}], got {tuple(prompt.shape)}")
        if len(features) != prompt.shape[0]:
            raise ValueError(f"SegHead: {prompt.shape[0]} prompts but features of {len(features)} frames; each "
                             "prompt needs its own frame (use decode_on_frames for one prompt on T frames)")
        dtype = self.dtype
        feats = self.project_features(features)
        n = prompt.shape[0]
        emb_h, emb_w = feats.image_embed.shape[-2:]
        if n == 0:
            empty = torch.zeros(0, 4 * emb_h, 4 * emb_w, device=self.device) + prompt.float().sum() * 0
            return SegHeadOutput(empty, empty.new_zeros(0), torch.zeros(0, dtype=torch.long, device=self.device))
        pe = self.prompt_encoder
        pad = pe.not_a_point_embed.weight.to(dtype).expand(n, self.num_padding_tokens, -1)  # [N, P, C]
        sparse = torch.cat([pad, prompt.to(dtype)[:, None]], dim=1)  # [N, P + 1, C]
        dense = pe.no_mask_embed.weight.to(dtype).reshape(1, -1, 1, 1).expand(n, -1, emb_h, emb_w)  # [N, C, h', w']
        masks, iou, _, _ = self.mask_decoder(
            image_embeddings=feats.image_embed,
            image_pe=self._dense_pe(dtype),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=self.multimask_output,
            # one frame per prompt: the batch is already aligned, nothing to repeat
            repeat_image=False,
            high_res_features=list(feats.high_res_feats) if feats.high_res_feats else None,
        )  # masks [N, M, h, w], iou [N, M]
        best = iou.argmax(dim=-1)  # [N]
        mask = masks.gather(1, best[:, None, None, None].expand(-1, 1, *masks.shape[-2:]))[:, 0]  # [N, h, w]
        return SegHeadOutput(mask.float(), iou.gather(1, best[:, None])[:, 0].float(), best)

    # ------------------------------------------------------------------------------------------------ public

    def forward(self, seg_hidden: torch.Tensor, features: FrameFeatures) -> SegHeadOutput:
        """Masks of N [SEG] prompts, prompt n on frame n.

        Args:
            seg_hidden: [N, H] last-layer hidden states at the [SEG] input positions.
            features: :class:`FrameFeatures` with N entries (select/repeat frames beforehand).

        Returns:
            :class:`SegHeadOutput` with ``mask_logits`` [N, h, w] float32 and ``iou_pred`` [N].
        """
        prompt = self.embed(seg_hidden)
        out = self.decode(prompt, features)
        return SegHeadOutput(out.mask_logits, out.iou_pred, out.best_index, prompt.float())

    def decode_on_frames(self, seg_hidden: torch.Tensor, features: FrameFeatures) -> torch.Tensor:
        """Each of N prompts decoded on every one of T frames independently (image mode, no memory).

        Used for the 5-frame video masks (docs/method.md §1). The high-res projections run once per frame, before the
        frames are repeated for the prompts.

        Args:
            seg_hidden: [N, H].
            features: :class:`FrameFeatures` of T frames.

        Returns:
            [N, T, h, w] float32 mask logits.
        """
        prompt = self.embed(seg_hidden)  # [N, C]
        n, t = prompt.shape[0], len(features)
        feats = self.project_features(features)
        frame_idx = torch.arange(t).repeat(n)  # [N*T]: 0..T-1, 0..T-1, ...
        out = self.decode(prompt.repeat_interleave(t, dim=0), feats.select(frame_idx))  # prompt n-major
        return out.mask_logits.reshape(n, t, *out.mask_logits.shape[-2:])


def build_seg_head(hidden_size: int, sam2_model: nn.Module, *, num_padding_tokens: int = 2,
                   multimask_output: bool = True, input_norm: bool = False) -> SegHead:
    """A trainable :class:`SegHead` for an LLM of width ``hidden_size`` on top of a SAM2 model.

    The prompt encoder and mask decoder are deep copies of ``sam2_model.sam_prompt_encoder`` /
    ``sam_mask_decoder`` (the SAM2 model itself is not modified); ``proj`` is
    ``Linear(H, H) -> ReLU -> Linear(H, C) -> Dropout(0)`` with PyTorch's default initialisation. The head is placed
    on the device and dtype of the SAM2 mask decoder. ``input_norm=True`` puts a :class:`HiddenStandardizer` before
    ``proj`` (not released).
    """
    if hidden_size < 1:
        raise ValueError(f"build_seg_head: hidden_size must be >= 1, got {hidden_size}")
    model = getattr(sam2_model, "model", sam2_model)  # SAM2ImagePredictor wraps the model
    for attr in ("sam_prompt_encoder", "sam_mask_decoder"):
        if not hasattr(model, attr):
            raise TypeError(f"build_seg_head needs a SAM2 model (SAM2Base), got {type(model).__name__} without "
                            f"{attr!r}")
    ref = next(model.sam_mask_decoder.parameters())
    embed_dim = int(model.sam_prompt_encoder.embed_dim)
    proj = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, embed_dim),
                         nn.Dropout(0.0))
    norm = HiddenStandardizer(hidden_size).to(device=ref.device) if input_norm else None
    head = SegHead(proj=proj.to(device=ref.device, dtype=ref.dtype),
                   prompt_encoder=copy.deepcopy(model.sam_prompt_encoder),
                   mask_decoder=copy.deepcopy(model.sam_mask_decoder),
                   num_padding_tokens=num_padding_tokens, multimask_output=multimask_output, input_norm=norm)
    head.sam2_meta = getattr(model, "videoseg_meta", None)  # set by videoseg_reward's load_sam2_model
    return head.requires_grad_(True)


SEG_HEAD_PRESETS = {
    "tiny": 64,
    "qwen3vl_2b": 2048,
    "qwen3vl_4b": 2560,
}
"""Named LLM hidden sizes: the tiny test model, Qwen3-VL-2B-Instruct and Qwen3-VL-4B-Instruct (docs/method.md §1)."""


def seg_head_tiny(sam2_model: nn.Module) -> SegHead:
    """Seg head for the tiny test/demo Qwen-VL (hidden 64)."""
    return build_seg_head(SEG_HEAD_PRESETS["tiny"], sam2_model)


def seg_head_qwen3vl_2b(sam2_model: nn.Module) -> SegHead:
    """Seg head for Qwen3-VL-2B-Instruct (hidden 2048)."""
    return build_seg_head(SEG_HEAD_PRESETS["qwen3vl_2b"], sam2_model)


def seg_head_qwen3vl_4b(sam2_model: nn.Module) -> SegHead:
    """Seg head for Qwen3-VL-4B-Instruct (hidden 2560)."""
    return build_seg_head(SEG_HEAD_PRESETS["qwen3vl_4b"], sam2_model)
