# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The policy at inference: greedy generation of one turn and the final [SEG] hidden state (Hugging Face).

Each turn re-renders the whole conversation with the processor's chat template (`add_generation_prompt=True`) and
processes every image shown so far, as the released inference does; the assistant text goes back into the
conversation as text. vLLM returns no hidden states, so the [SEG] hidden state always comes from one forward pass
of the Hugging Face model over the final context (the last turn's prompt + its generated tokens).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from PIL import Image

from videoseg_o3_verl.backends.cpu.hf_engine import VISION_PLACEHOLDER_TOKENS
from videoseg_o3_verl.env.prompts import SEG_TOKEN
from videoseg_o3_verl.model.seg_head_io import SEG_HEAD_WEIGHTS

END_TOKENS = ("<|im_end|>",)
"""Special tokens removed from a decoded turn before it re-enters the conversation (as in the released loop, which
keeps a generated `<|endoftext|>`)."""

TOKEN_ALIGNED_KEYS = ("mm_token_type_ids", "token_type_ids")
"""Processor outputs with one entry per prompt token (zero-padded over the generated tokens)."""


@dataclass
class Generation:
    """One generated turn and what is needed to re-run its context."""

    text: str
    """Decoded turn (special tokens kept, stripped of surrounding whitespace)."""
    prompt_ids: list[int]
    """Token ids of the rendered conversation the turn was generated from."""
    token_ids: list[int]
    """Generated token ids."""
    images: list[Image.Image]
    """The images of that conversation, in order."""
    messages: list[dict[str, Any]]
    """The conversation the turn was generated from."""


class Policy(Protocol):
    """What the episode loop needs from a policy."""

    def generate(self, messages: list[dict[str, Any]], images: list[Image.Image], max_new_tokens: int) -> Generation:
        ...

    def seg_hidden(self, generation: Generation) -> torch.Tensor | None:
        ...

    def turn_seg_hiddens(self, generation: Generation) -> torch.Tensor:
        ...


def turn_content(text: str) -> str:
    """The assistant message content of a decoded turn: `<|im_end|>` removed."""
    for token in END_TOKENS:
        text = text.replace(token, "")
    return text


def last_seg_position(ids: list[int], seg_token_id: int) -> int | None:
    """Position of the last `seg_token_id` in `ids`, or None.

    Example:
        >>> last_seg_position([5, 9, 7, 9, 3], 9), last_seg_position([5, 7], 9)
        (3, None)
    """
    for i in range(len(ids) - 1, -1, -1):
        if ids[i] == seg_token_id:
            return i
    return None


def check_weights(model_dir: str) -> None:
    """Raise a clear error when `model_dir` has no model weights (e.g. a verl checkpoint saved without hf_model)."""
    path = Path(model_dir)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir} is not a Hugging Face model directory (no config.json)")
    weights = [p for p in (*path.glob("*.safetensors"), *path.glob("*.bin")) if p.name != SEG_HEAD_WEIGHTS]
    if not weights:
        raise FileNotFoundError(
            f"{model_dir} has a config but no weights (*.safetensors / *.bin); a training checkpoint's "
            "actor/huggingface holds weights only with actor_rollout_ref.actor.checkpoint.save_contents including "
            "hf_model (or merge the FSDP shards with `python -m verl.model_merger merge`)")


class HFPolicy:
    """A Qwen-VL checkpoint with its processor, greedy decoding, last-layer hidden states of the final context."""

    def __init__(self, model_dir: str, *, device: str | torch.device = "cpu", dtype: str = "float32",
                 attn_implementation: str = "sdpa") -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        check_weights(model_dir)
        self.device = torch.device(device)
        self.processor = AutoProcessor.from_pretrained(model_dir)
        self.tokenizer = self.processor.tokenizer
        if SEG_TOKEN not in self.tokenizer.get_vocab():
            raise ValueError(f"The tokenizer of {model_dir} has no {SEG_TOKEN} token: not a VideoSEG-O3 policy "
                             "(convert a released checkpoint with `videoseg-o3 convert-checkpoint`)")
        self.seg_token_id = int(self.tokenizer.convert_tokens_to_ids(SEG_TOKEN))
        self.model = AutoModelForImageTextToText.from_pretrained(
            model_dir, dtype=getattr(torch, dtype), attn_implementation=attn_implementation).to(self.device).eval()
        pad = self.tokenizer.pad_token_id
        self.pad_token_id = pad if pad is not None else self.tokenizer.eos_token_id
        vocab = self.tokenizer.get_vocab()
        # a sampled image pad would be re-expanded by the processor when the turn is re-rendered
        self.suppress_tokens = sorted(vocab[t] for t in VISION_PLACEHOLDER_TOKENS if t in vocab)
        self._hidden: torch.Tensor | None = None
        self._last_context: tuple[Generation, list[int], torch.Tensor] | None = None
        eos = self.model.generation_config.eos_token_id
        self.end_token_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        """Tokens that end a generated turn (the checkpoint's generation config)."""
        self.model.get_decoder().norm.register_forward_hook(self._capture)  # the seg head's input in training

    @property
    def hidden_size(self) -> int:
        return int(self.model.get_decoder().norm.weight.shape[0])

    def _capture(self, module, inputs, output) -> None:
        self._hidden = output

    def prompt_text(self, messages: list[dict[str, Any]]) -> str:
        """The conversation rendered by the chat template, ready for the assistant's turn (one pad per image)."""
        return self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def _inputs(self, messages: list[dict[str, Any]], images: list[Image.Image]):
        return self.processor(text=[self.prompt_text(messages)], images=images or None,
                              return_tensors="pt").to(self.device)

    @torch.inference_mode()
    def generate(self, messages: list[dict[str, Any]], images: list[Image.Image], max_new_tokens: int) -> Generation:
        inputs = self._inputs(messages, images)
        out = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, top_p=None, top_k=None,
                                  temperature=None, pad_token_id=self.pad_token_id, use_cache=True,
                                  suppress_tokens=self.suppress_tokens or None)
        prompt_ids = inputs["input_ids"][0].tolist()
        new_ids = out[0, len(prompt_ids):].tolist()
        text = self.processor.batch_decode([new_ids], skip_special_tokens=False)[0].strip()
        return Generation(text=text, prompt_ids=prompt_ids, token_ids=new_ids, images=list(images),
                          messages=list(messages))

    @torch.inference_mode()
    def generate_batch(self, requests: list[tuple[list[dict[str, Any]], list[Image.Image]]], max_new_tokens: int
                       ) -> list[Generation]:
        """:meth:`generate` for several conversations in one left-padded batch (greedy: each row's tokens are the
        ones :meth:`generate` gives it alone, up to floating-point ties); a row ends at its first end token."""
        texts = [self.prompt_text(messages) for messages, _ in requests]
        images = [image for _, row in requests for image in row]
        side, self.tokenizer.padding_side = self.tokenizer.padding_side, "left"
        try:
            inputs = self.processor(text=texts, images=images or None, padding=True, return_tensors="pt")
        finally:
            self.tokenizer.padding_side = side
        inputs = inputs.to(self.device)
        out = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, top_p=None, top_k=None,
                                  temperature=None, pad_token_id=self.pad_token_id, use_cache=True,
                                  suppress_tokens=self.suppress_tokens or None)
        width = inputs["input_ids"].shape[1]
        generations = []
        for row, (messages, row_images) in enumerate(requests):
            prompt_ids = inputs["input_ids"][row][inputs["attention_mask"][row].bool()].tolist()
            new_ids = out[row, width:].tolist()
            end = next((i for i, t in enumerate(new_ids) if t in self.end_token_ids), None)
            new_ids = new_ids if end is None else new_ids[: end + 1]
            text = self.processor.batch_decode([new_ids], skip_special_tokens=False)[0].strip()
            generations.append(Generation(text=text, prompt_ids=prompt_ids, token_ids=new_ids,
                                          images=list(row_images), messages=list(messages)))
        return generations

    @torch.inference_mode()
    def seg_hidden(self, generation: Generation) -> torch.Tensor | None:
        """[H] last-layer hidden state of the last [SEG] in the final context, or None when there is none.

        The context is the prompt + generated tokens without the last generated token (the released inference
        reads the hidden states that `generate` produced, which stop before the last token).
        """
        ids = generation.prompt_ids + generation.token_ids
        position = last_seg_position(ids[:-1], self.seg_token_id)
        if position is None:
            return None
        # causal attention: the hidden states before the last token do not depend on it, so the forward over the
        # whole turn (shared with `turn_seg_hiddens`) gives the released values
        return self._context_hidden(generation, ids)[position].float()

    @torch.inference_mode()
    def turn_seg_hiddens(self, generation: Generation) -> torch.Tensor:
        """[n, H] last-layer hidden states of the n [SEG] tokens the turn generated (context: the turn's prompt and
        all its tokens, as the training forward sees a turn's [SEG]s); [0, H] without any."""
        start = len(generation.prompt_ids)
        positions = [start + i for i, t in enumerate(generation.token_ids) if t == self.seg_token_id]
        if not positions:
            return torch.zeros(0, self.hidden_size)
        return self._context_hidden(generation, generation.prompt_ids + generation.token_ids)[positions].float()

    def _context_hidden(self, generation: Generation, ids: list[int]) -> torch.Tensor:
        """[len(ids), H] hidden states of `ids` = the generation's prompt followed by generated tokens (the last
        result is kept: the final turn's forward serves both `seg_hidden` and `turn_seg_hiddens`)."""
        if self._last_context is not None and self._last_context[0] is generation and self._last_context[1] == ids:
            return self._last_context[2]
        inputs = self._inputs(generation.messages, generation.images)
        if inputs["input_ids"][0].tolist() != generation.prompt_ids:
            raise RuntimeError("re-rendering the final context gave different prompt ids than at generation")
        input_ids = torch.tensor([ids], device=self.device)
        extra = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask")}
        for key in TOKEN_ALIGNED_KEYS:  # generated tokens are text: type 0
            if key in extra:
                extra[key] = torch.nn.functional.pad(extra[key], (0, len(ids) - extra[key].shape[1]))
        self._hidden = None
        self.model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), use_cache=False, **extra)
        hidden, self._hidden = self._hidden, None
        self._last_context = (generation, list(ids), hidden[0])
        return hidden[0]
