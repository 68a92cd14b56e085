# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Tiny, randomly initialised stand-ins for the pretrained models, built offline and cached.

Used by the tests and the CPU demo. Every builder is seeded and deterministic; results are cached under
:func:`cache_root` (``$VIDEOSEG_O3_CACHE`` or ``~/.cache/videoseg_o3``) keyed by the builder version, so
a second call returns the same directory without rebuilding.

- :func:`tiny_qwen_vl` — a tiny Qwen2.5-VL or Qwen3-VL (``save_pretrained`` directory loadable with
  ``AutoModelForImageTextToText``/``AutoProcessor``) with an offline-trained byte-level BPE tokenizer carrying
  the Qwen chat special tokens, the vision placeholders, ``<think>`` tags and the added ``[SEG]`` token.
- :func:`tiny_sam2` — a SAM2 (``sam2.1_hiera_t`` config at a reduced image size) with random weights,
  written in the released ``sam2_hiera_*.pt`` checkpoint layout and reloadable with the same loader.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

BUILDER_VERSION = 4
"""Bump when a builder changes so stale cache entries are not reused."""

QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
)
"""Qwen-VL special tokens, in the order of the real tokenizer."""

ADDED_TEXT_TOKENS = ("<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>")
"""Non-special added tokens (as in the real Qwen tokenizers)."""

SEG_TOKEN = "[SEG]"

_CORPUS = [
    "<think>Step 1: the query asks for the red square. Step 2: it moves left. Step 3: it enters late. "
    "Action: select frames to look closer.</think>",
    '<select><VTG>{"start": 12, "end": 40, "keyframe": 25}</VTG>, <RefSeg>[SEG]</RefSeg></select>',
    '<answer><VTG>{"start": 0, "end": 99, "keyframe": 50}</VTG>, <RefSeg>[SEG]</RefSeg></answer>',
    "Here are 10 low-resolution frames in this video (frame indice is [0, 11, 22, 33, 44, 55, 66, 77, 88, 99])",
    "Here are 5 high-resolution frames in this video (frame indice:[0, 24, 49, 74, 99]).",
    'The query is "the blue circle that leaves first". Show me your thought process for finding and segmenting '
    "this target. This video has 100 frames.",
    "The text query is 'the green triangle moving right'. Continue your reasoning process inside <think> and "
    "</think>. If needed, you can continue to select images on the original video, by outputting <select> and "
    "</select> as before. If the final answer is confirmed, put your final answer inside <answer> and </answer>.",
    "You are a helpful assistant. Your ultimate goal is to perform video temporal grounding (VTG) and referring "
    "video object segmentation (RefVOS). Based on the text query and video content, output your thinking process.",
    "Here is key frames (frame indice:42). What is 3 + 4? The answer is 7. yellow object visible second half",
    "0123456789 , . : ; ' \" [ ] { } ( ) < > / - _ = + ? ! abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ",
]

TEXT_HEAD_DIM = 32
"""Attention head size of the tiny text models: the smallest size vLLM's CPU attention kernel supports."""

_MROPE_SECTION = (4, 6, 6)
"""Multimodal-RoPE split of the TEXT_HEAD_DIM/2 rotary frequencies over (time, height, width)."""

_QWEN2_PRETOKENIZE_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


@dataclass(frozen=True)
class TinyQwenVLSpec:
    """Sizes of a tiny Qwen-VL; the defaults give ~0.25 M parameters."""

    kind: str = "qwen2_5_vl"
    """``qwen2_5_vl`` or ``qwen3_vl``."""
    hidden_size: int = 64
    """Text hidden size H (the seg head projects H → 256)."""
    num_layers: int = 2
    """Decoder layers."""
    vocab_bpe_size: int = 640
    """Size of the offline-trained BPE vocabulary (before special tokens)."""
    seed: int = 0
    """Seed for the tokenizer corpus order and the random weights."""
    min_pixels: int = 3136
    """Image processor lower pixel bound (4·28·28, docs/method.md §3.1)."""
    max_pixels: int = 401408
    """Image processor upper bound; frames are pre-resized by the env, so this only has to be generous."""


def cache_root() -> Path:
    """Root of the tiny-model cache (``$VIDEOSEG_O3_CACHE`` or ``~/.cache/videoseg_o3``)."""
    return Path(os.environ.get("VIDEOSEG_O3_CACHE", Path.home() / ".cache" / "videoseg_o3"))


@contextmanager
def _file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached_build(name: str, params: dict, build: Callable[[Path], None], root: Path | None = None) -> Path:
    """Return ``root/<name>-<hash(params)>``, building it with ``build(tmp_dir)`` (atomically) if missing."""
    key = hashlib.sha256(json.dumps({"v": BUILDER_VERSION, **params}, sort_keys=True).encode()).hexdigest()[:12]
    root = Path(root) if root is not None else cache_root()
    target = root / f"{name}-{key}"
    if (target / ".complete").exists():
        return target
    with _file_lock(root / f".{name}-{key}.lock"):
        if (target / ".complete").exists():
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
        try:
            build(tmp)
            (tmp / ".complete").write_text(json.dumps(params, sort_keys=True))
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def build_tiny_tokenizer(spec: TinyQwenVLSpec):
    """Offline byte-level BPE wrapped as ``Qwen2Tokenizer`` with the Qwen special tokens and ``[SEG]``."""
    import random

    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AddedToken, Qwen2Tokenizer

    corpus = list(_CORPUS) * 4
    random.Random(spec.seed).shuffle(corpus)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(_QWEN2_PRETOKENIZE_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=spec.vocab_bpe_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    bpe.train_from_iterator(corpus, trainer=trainer)
    state = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["merges"]]
    tokenizer = Qwen2Tokenizer(vocab=state["vocab"], merges=merges, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                               unk_token=None, bos_token=None)
    tokenizer.add_special_tokens({"additional_special_tokens": [AddedToken(t, special=True, normalized=False)
                                                                for t in QWEN_SPECIAL_TOKENS]})
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in ADDED_TEXT_TOKENS])
    tokenizer.add_tokens([AddedToken(SEG_TOKEN, special=True, normalized=False)], special_tokens=True)
    return tokenizer


def _chat_template() -> str:
    return (Path(__file__).with_name("qwen_vl_chat_template.jinja")).read_text()


def _token_ids(tokenizer) -> dict[str, int]:
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
                                                             "<|video_pad|>", "<|im_end|>", "<|endoftext|>")}
    return ids


def _padded_vocab(tokenizer, multiple: int = 64) -> int:
    return (len(tokenizer) + multiple - 1) // multiple * multiple


def _build_qwen2_5_vl(spec: TinyQwenVLSpec, tokenizer):
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    ids = _token_ids(tokenizer)
    head_dim, mrope = TEXT_HEAD_DIM, list(_MROPE_SECTION)
    config = Qwen2_5_VLConfig(
        text_config=dict(vocab_size=_padded_vocab(tokenizer), hidden_size=spec.hidden_size,
                         intermediate_size=2 * spec.hidden_size, num_hidden_layers=spec.num_layers,
                         num_attention_heads=spec.hidden_size // head_dim, num_key_value_heads=2,
                         max_position_embeddings=32768, tie_word_embeddings=False,
                         rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": mrope},
                         eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
                         bos_token_id=ids["<|endoftext|>"]),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=spec.hidden_size,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=56,
                           fullatt_block_indexes=[1]),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"], bos_token_id=ids["<|endoftext|>"],
        tie_word_embeddings=False,
    )
    model = Qwen2_5_VLForConditionalGeneration(config)
    size = {"shortest_edge": spec.min_pixels, "longest_edge": spec.max_pixels}
    image_processor = Qwen2VLImageProcessor(size=size, patch_size=14, merge_size=2, temporal_patch_size=2)
    video_processor = Qwen2VLVideoProcessor(size=size, patch_size=14, merge_size=2, temporal_patch_size=2)
    processor = Qwen2_5_VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                    video_processor=video_processor, chat_template=_chat_template())
    return model, processor


def _build_qwen3_vl(spec: TinyQwenVLSpec, tokenizer):
    from transformers import (
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    ids = _token_ids(tokenizer)
    head_dim, mrope = TEXT_HEAD_DIM, list(_MROPE_SECTION)
    config = Qwen3VLConfig(
        text_config=dict(vocab_size=_padded_vocab(tokenizer), hidden_size=spec.hidden_size,
                         intermediate_size=2 * spec.hidden_size, num_hidden_layers=spec.num_layers,
                         num_attention_heads=spec.hidden_size // head_dim, num_key_value_heads=2, head_dim=head_dim,
                         max_position_embeddings=32768, tie_word_embeddings=False,
                         rope_parameters={"rope_type": "default", "rope_theta": 5e6, "mrope_section": mrope,
                                          "mrope_interleaved": True},
                         eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"]),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=spec.hidden_size,
                           patch_size=16, spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=64,
                           deepstack_visual_indexes=[0]),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    model = Qwen3VLForConditionalGeneration(config)
    size = {"shortest_edge": spec.min_pixels, "longest_edge": spec.max_pixels}
    image_processor = Qwen2VLImageProcessor(size=size, patch_size=16, merge_size=2, temporal_patch_size=2)
    video_processor = Qwen3VLVideoProcessor(size=size, patch_size=16, merge_size=2, temporal_patch_size=2)
    processor = Qwen3VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                 video_processor=video_processor, chat_template=_chat_template())
    return model, processor


_BUILDERS = {"qwen2_5_vl": _build_qwen2_5_vl, "qwen3_vl": _build_qwen3_vl}


def build_tiny_qwen_vl(out_dir: str | os.PathLike, spec: TinyQwenVLSpec = TinyQwenVLSpec()) -> Path:
    """Build a tiny Qwen-VL (random weights, seeded) and ``save_pretrained`` model + processor to ``out_dir``."""
    import torch
    from transformers import GenerationConfig

    if spec.kind not in _BUILDERS:
        raise ValueError(f"Unknown tiny Qwen-VL kind {spec.kind!r}; expected one of {sorted(_BUILDERS)}")
    out_dir = Path(out_dir)
    tokenizer = build_tiny_tokenizer(spec)
    torch.manual_seed(spec.seed)
    model, processor = _BUILDERS[spec.kind](spec, tokenizer)
    ids = _token_ids(tokenizer)
    model.generation_config = GenerationConfig(eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
                                               pad_token_id=ids["<|endoftext|>"], do_sample=True, temperature=1.0,
                                               top_p=1.0, top_k=0)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    (out_dir / "videoseg_tiny_spec.json").write_text(json.dumps(asdict(spec), indent=2))
    return out_dir


def tiny_qwen_vl(kind: str = "qwen2_5_vl", *, root: str | os.PathLike | None = None, **overrides) -> Path:
    """Cached path of a tiny Qwen-VL checkpoint directory (built on first use)."""
    spec = TinyQwenVLSpec(kind=kind, **overrides)
    return cached_build(f"tiny-{kind}", asdict(spec), lambda d: build_tiny_qwen_vl(d, spec), root)


SAM2_WIDTH = 256
"""C of the released SAM2 configs."""


def width_overrides(width: int) -> tuple[str, ...]:
    """SAM2 config overrides giving the neck, prompt encoder, mask decoder and memory modules width C = ``width``
    (the memory features keep their 64 channels; the memory-attention MLP is 4·C wide); none for C = 256.

    Example:
        >>> width_overrides(64)[0]
        '++model.image_encoder.neck.d_model=64'
    """
    if width == SAM2_WIDTH:
        return ()
    return (
        f"++model.image_encoder.neck.d_model={width}",
        f"++model.image_encoder.neck.position_encoding.num_pos_feats={width}",
        f"++model.memory_attention.d_model={width}",
        f"++model.memory_attention.layer.d_model={width}",
        f"++model.memory_attention.layer.dim_feedforward={4 * width}",
        f"++model.memory_attention.layer.self_attention.embedding_dim={width}",
        f"++model.memory_attention.layer.cross_attention.embedding_dim={width}",
        f"++model.memory_encoder.in_dim={width}",
        f"++model.memory_encoder.mask_downsampler.embed_dim={width}",
        f"++model.memory_encoder.fuser.layer.dim={width}",
    )


SMALL_TRUNK_OVERRIDES = (
    "++model.image_encoder.trunk.embed_dim=16",
    "++model.image_encoder.trunk.num_heads=1",
    "++model.image_encoder.trunk.stages=[1,1,1,1]",
    "++model.image_encoder.trunk.global_att_blocks=[]",
    "++model.image_encoder.neck.backbone_channel_list=[128,64,32,16]",
)
"""SAM2 config overrides of the small image-encoder trunk: one windowed block per stage, 16 channels doubling per
stage (the neck's input channels follow)."""


@dataclass(frozen=True)
class TinySam2Spec:
    """A SAM2 from the package's own config with random weights and a reduced input size."""

    config: str = "configs/sam2.1/sam2.1_hiera_t.yaml"
    """SAM2 config inside the `sam2` package."""
    image_size: int = 256
    """Reduced input resolution (1024 for the released models); 256 keeps the image encoder ~0.1 s/frame on CPU."""
    seed: int = 0
    """Seed for the random weights."""
    small_trunk: bool = False
    """Replace the config's Hiera trunk (27 M parameters) by :data:`SMALL_TRUNK_OVERRIDES` (0.3 M): ~10x cheaper
    frame encoding; the neck, prompt encoder, mask decoder and memory modules keep their width (see ``width``)."""
    width: int = SAM2_WIDTH
    """C, the width of the neck, prompt encoder, mask decoder and memory modules (the [SEG] prompt size):
    :data:`SAM2_WIDTH` keeps the config's; a smaller C (:func:`width_overrides`) makes every seg-head decode and its
    backward cheaper (the mask decoder's MLP width, set in SAM2's code, stays 2048)."""

    def __post_init__(self) -> None:
        if self.width < 16 or self.width % 16:
            raise ValueError(f"TinySam2Spec.width must be a positive multiple of 16 (the mask decoder divides it by 8 "
                             f"and its 8 heads), got {self.width}")

    def overrides(self) -> tuple[str, ...]:
        """The Hydra overrides of this architecture (stored with the checkpoint as ``Sam2Meta.overrides``)."""
        return (SMALL_TRUNK_OVERRIDES if self.small_trunk else ()) + width_overrides(self.width)


def tiny_sam2(*, root: str | os.PathLike | None = None, **overrides) -> Path:
    """Cached path of a tiny random SAM2 checkpoint (``sam2_tiny.pt`` in the released layout)."""
    from videoseg_reward.sam2_model import Sam2Meta, build_random_sam2_checkpoint

    spec = TinySam2Spec(**overrides)
    meta = Sam2Meta(config=spec.config, image_size=spec.image_size, overrides=spec.overrides())
    params = asdict(spec)
    if spec.width == SAM2_WIDTH:
        del params["width"]  # the same cache entry as before the option existed
    directory = cached_build("tiny-sam2", params,
                             lambda d: build_random_sam2_checkpoint(d / "sam2_tiny.pt", meta, seed=spec.seed), root)
    return directory / "sam2_tiny.pt"
