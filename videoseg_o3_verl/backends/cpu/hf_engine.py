# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Token-in/token-out generation with Hugging Face ``generate`` (no Ray): the core of the HF rollout backend.

It mirrors what verl's vLLM server does for the agent loop (`verl/workers/rollout/vllm_rollout/
vllm_async_server.py:558-758`): the prompt arrives as token ids with image/video pads already expanded,
the raw images/videos arrive beside it, and the reply is the sampled token ids with their log-probs.
Device-agnostic: runs on CPU, or on one CUDA GPU when vLLM is not installed.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList
from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

from ...model.processor import VISION_PLACEHOLDER_TOKENS

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HFEngineConfig:
    """Settings of the HF generation engine (``actor_rollout_ref.rollout.engine_kwargs.hf``)."""

    dtype: str = "float32"
    """Weights dtype for generation (``float32`` on CPU; ``bfloat16`` is fine on GPU)."""
    attn_implementation: str = "sdpa"
    """Attention kernel; ``sdpa`` works everywhere."""
    suppress_vision_tokens: bool = True
    """Never sample vision placeholder tokens (see :data:`VISION_PLACEHOLDER_TOKENS`)."""
    device: str | None = None
    """``cpu``/``cuda``/``cuda:N``; ``None`` picks CUDA when available."""
    max_parallel: int = 2
    """Generate calls running at the same time (threads; torch releases the GIL in its kernels)."""
    max_batch_size: int = 1
    """Concurrent requests with the same sampling settings that the server merges into one left-padded ``generate``
    call (1 = no batching). Batching is what makes concurrent trajectories cheaper than sequential ones."""
    batch_window_ms: float = 5.0
    """How long the server waits for more requests to join a batch."""


@dataclass
class SamplingRequest:
    """Normalised sampling parameters of one request (vLLM names, as verl sends them)."""

    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    repetition_penalty: float = 1.0
    logprobs: bool = False
    stop_token_ids: list[int] = field(default_factory=list)
    ignore_eos: bool = False
    seed: int | None = None
    """Seed of this request's own ``torch.Generator`` (``None``: an unseeded generator). The server derives it from
    (run seed, request identity, turn) with :func:`request_seed` unless the caller sends one."""

    def batch_key(self) -> tuple:
        """Requests with equal keys can share one ``generate`` call (max tokens, log-probs and seed may differ)."""
        return (self.temperature, self.top_p, self.top_k, self.repetition_penalty, self.ignore_eos,
                tuple(sorted(self.stop_token_ids)))

    @classmethod
    def from_verl(cls, params: dict[str, Any], prompt_len: int, prompt_length: int, response_length: int,
                  max_model_len: int | None) -> SamplingRequest:
        """Apply verl's max-token rule: explicit ``max_tokens``/``max_new_tokens`` or
        ``min(response_length, prompt_length + response_length - len(prompt))``, clamped to ``[1, room]``."""
        params = dict(params)
        max_len = max_model_len or (prompt_length + response_length)
        room = max_len - prompt_len
        if room < 1:
            raise ValueError(f"Prompt length ({prompt_len}) leaves no room to generate within the maximum context "
                             f"length ({max_len}); raise rollout.max_model_len or shorten the prompt")
        if "max_tokens" in params:
            max_tokens = int(params.pop("max_tokens"))
        elif "max_new_tokens" in params:
            max_tokens = int(params.pop("max_new_tokens"))
        else:
            max_tokens = min(response_length, prompt_length + response_length - prompt_len)
        return cls(max_tokens=max(1, min(max_tokens, room)), temperature=float(params.get("temperature", 1.0)),
                   top_p=float(params.get("top_p", 1.0)), top_k=int(params.get("top_k", -1) or -1),
                   repetition_penalty=float(params.get("repetition_penalty", 1.0) or 1.0),
                   logprobs=bool(params.get("logprobs", False)),
                   stop_token_ids=[int(t) for t in (params.get("stop_token_ids") or [])],
                   ignore_eos=bool(params.get("ignore_eos", False)), seed=params.get("seed"))


def request_seed(run_seed: int, request_id: str, turn: int) -> int:
    """A 63-bit seed for one request, stable across processes and runs (SHA-256, unlike Python's salted ``hash``).

    Example:
        >>> request_seed(7, "traj-3", 1) == request_seed(7, "traj-3", 1) != request_seed(7, "traj-3", 2)
        True
    """
    digest = hashlib.sha256(f"{int(run_seed)}\x1f{request_id}\x1f{int(turn)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class PerRequestSampler(LogitsProcessor):
    """Samples each row of a batch with its own ``torch.Generator`` (HF ``generate`` has one global stream).

    Runs last, after the processors ``generate`` builds itself (repetition penalty, suppressed tokens, minimum
    length): applies temperature, top-k and top-p with HF's own warpers, draws one token per row from that row's
    generator, and returns scores that are 0 at the drawn token and ``-inf`` elsewhere, so ``generate``'s greedy
    step picks exactly that token. A row's draws therefore depend only on its own seed and logits, never on which
    other requests share the batch or on the order in which threads run.
    """

    def __init__(self, generators: list[torch.Generator], temperature: float, top_k: int, top_p: float):
        self.generators = generators
        self.warpers = [TemperatureLogitsWarper(temperature)]
        if top_k > 0:
            self.warpers.append(TopKLogitsWarper(top_k=top_k))
        if top_p < 1.0:
            self.warpers.append(TopPLogitsWarper(top_p=top_p))

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for warper in self.warpers:
            scores = warper(input_ids, scores)
        probs = torch.softmax(scores.float(), dim=-1)
        picked = torch.stack([torch.multinomial(probs[i], 1, generator=g)[0] for i, g in enumerate(self.generators)])
        out = torch.full_like(scores, float("-inf"))
        out[torch.arange(len(picked), device=scores.device), picked] = 0.0
        return out


class StopWhenSet(StoppingCriteria):
    """Stops every row of a running ``generate`` once ``event`` is set (abort of in-flight requests)."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


class _all_slots:
    """Context manager holding every slot of a semaphore (exclusive access)."""

    def __init__(self, semaphore: threading.BoundedSemaphore, count: int):
        self.semaphore, self.count = semaphore, count

    def __enter__(self):
        for _ in range(self.count):
            self.semaphore.acquire()

    def __exit__(self, *exc):
        for _ in range(self.count):
            self.semaphore.release()


@dataclass
class GenerationRequest:
    """One prompt to continue (the arguments of :meth:`HFGenerationEngine.generate`)."""

    prompt_ids: list[int]
    sampling: SamplingRequest
    image_data: list | None = None
    video_data: list | None = None
    mm_processor_kwargs: dict | None = None
    aborted: bool = False
    """Set by the engine when :meth:`HFGenerationEngine.abort` cut this request's generation short."""


def collapse_runs(ids: list[int], token_id: int) -> list[int]:
    """Collapse consecutive runs of ``token_id`` to a single occurrence (expanded pads → one placeholder)."""
    out: list[int] = []
    for tid in ids:
        if tid == token_id and out and out[-1] == token_id:
            continue
        out.append(tid)
    return out


class HFGenerationEngine:
    """Holds one HF image-text-to-text (or causal LM) model and generates for token-id prompts.

    Thread-safe: up to ``config.max_parallel`` requests generate at once; :meth:`load_weights` waits for them
    and blocks new ones while it replaces the weights after a training step.
    """

    def __init__(self, model_path: str, config: HFEngineConfig = HFEngineConfig(), trust_remote_code: bool = False):
        from transformers import (
            AutoConfig,
            AutoModelForCausalLM,
            AutoModelForImageTextToText,
            AutoProcessor,
            AutoTokenizer,
        )

        self.config = config
        self.device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        dtype = getattr(torch, config.dtype)
        hf_config = AutoConfig.from_pretrained(model_path, trust_remote_code=trust_remote_code)
        self.is_multimodal = hasattr(hf_config, "vision_config")
        model_cls = AutoModelForImageTextToText if self.is_multimodal else AutoModelForCausalLM
        self.model = model_cls.from_pretrained(model_path, dtype=dtype,
                                               attn_implementation=config.attn_implementation,
                                               trust_remote_code=trust_remote_code).to(self.device).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust_remote_code)
        self.processor = (AutoProcessor.from_pretrained(model_path, trust_remote_code=trust_remote_code)
                          if self.is_multimodal else None)
        vocab = self.tokenizer.get_vocab()
        self.vision_token_ids = sorted({vocab[t] for t in VISION_PLACEHOLDER_TOKENS if t in vocab})
        eos = self.model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else ([eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            eos = [*eos, self.tokenizer.eos_token_id]
        self.eos_token_ids = sorted(set(eos))
        pad = self.tokenizer.pad_token_id
        self.pad_token_id = pad if pad is not None else self.eos_token_ids[0]
        if config.max_parallel < 1:
            raise ValueError(f"[rollout.engine_kwargs.hf] max_parallel must be >= 1, got {config.max_parallel}")
        self._slots = threading.BoundedSemaphore(config.max_parallel)
        self.weights_version = 0
        self.stop_event = threading.Event()
        """While set, running and new ``generate`` calls stop after their next token (see :meth:`abort`)."""

    def abort(self) -> None:
        """Make in-flight generation stop after the current token (rows keep what they produced so far)."""
        self.stop_event.set()

    def resume(self) -> None:
        """Undo :meth:`abort`: later calls generate normally."""
        self.stop_event.clear()

    def _generator(self, seed: int | None) -> torch.Generator:
        generator = torch.Generator(device=self.device)
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(int(seed))
        return generator

    # ------------------------------------------------------------------ weights
    def load_weights(self, named_tensors: dict[str, torch.Tensor]) -> dict[str, list[str]]:
        """Load a (possibly partial-precision) state dict; every model weight must be covered.

        Returns the keys that were ignored (names the model does not have, e.g. a seg head that slipped
        through the filter). Raises ``ValueError`` when model weights are missing, so a name mismatch
        can never silently leave the rollout on stale weights.
        """
        with _all_slots(self._slots, self.config.max_parallel):
            own = self.model.state_dict()
            unexpected = sorted(k for k in named_tensors if k not in own)
            missing = sorted(k for k in own if k not in named_tensors)
            if missing:
                raise ValueError(f"Weight update does not cover {len(missing)} rollout parameters, e.g. {missing[:5]}; "
                                 f"received names like {sorted(named_tensors)[:5]}")
            with torch.no_grad():
                for name, tensor in own.items():
                    tensor.copy_(named_tensors[name].to(device=tensor.device, dtype=tensor.dtype))
            self.weights_version += 1
        if unexpected:
            logger.warning("HF rollout ignored %d unexpected weights, e.g. %s", len(unexpected), unexpected[:5])
        return {"unexpected": unexpected}

    # ------------------------------------------------------------------ inputs
    def _multimodal_inputs(self, prompt_ids: list[int], image_data, video_data, mm_processor_kwargs) -> dict:
        """Pixel tensors + grids for the images/videos of a prompt whose vision pads are already expanded.

        The image and video processors are called directly (the prompt is not re-rendered: Qwen3-VL's video
        expansion interleaves timestamps, so decoded text would not round-trip); the number of pad tokens in the
        prompt must equal what the grids imply.
        """
        if not image_data and not video_data:
            return {}
        if self.processor is None:
            raise ValueError("Images/videos were sent to a text-only model")
        kwargs = dict(mm_processor_kwargs or {})
        out: dict = {}
        merge = int(getattr(self.processor.image_processor, "merge_size", 2)) ** 2
        if image_data:
            processed = self.processor.image_processor(images=list(image_data), return_tensors="pt", **kwargs)
            out.update(pixel_values=processed["pixel_values"], image_grid_thw=processed["image_grid_thw"])
            self._check_pads(prompt_ids, "<|image_pad|>", processed["image_grid_thw"], merge)
        if video_data:
            videos = list(video_data)
            metadata = None
            if isinstance(videos[0], tuple):
                videos, metadata = [v[0] for v in videos], [v[1] for v in videos]
            video_kwargs = {"do_sample_frames": False, **({"video_metadata": metadata} if metadata else {}), **kwargs}
            processed = self.processor.video_processor(videos=videos, return_tensors="pt", **video_kwargs)
            out.update(pixel_values_videos=processed["pixel_values_videos"], video_grid_thw=processed["video_grid_thw"])
            self._check_pads(prompt_ids, "<|video_pad|>", processed["video_grid_thw"], merge)
        if hasattr(self.processor, "create_mm_token_type_ids"):
            out["mm_token_type_ids"] = torch.tensor(self.processor.create_mm_token_type_ids([list(prompt_ids)]))
        return {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in out.items()}

    def _check_pads(self, prompt_ids: list[int], token: str, grid_thw: torch.Tensor, merge: int) -> None:
        expected = int(grid_thw.prod(dim=-1).sum()) // merge
        found = sum(1 for t in prompt_ids if t == self.tokenizer.convert_tokens_to_ids(token))
        if found != expected:
            raise ValueError(f"Vision placeholders in prompt_ids do not match the given media: {found} {token} tokens "
                             f"but the processor's grids {grid_thw.tolist()} need {expected}; were the same "
                             "mm_processor_kwargs used to build the prompt?")

    # ------------------------------------------------------------------ generate
    def generate(self, prompt_ids: list[int], sampling: SamplingRequest, image_data=None, video_data=None,
                 mm_processor_kwargs: dict | None = None) -> tuple[list[int], list[float] | None]:
        """Sample a continuation; returns ``(token_ids, log_probs)`` (log-probs of the sampled tokens under
        ``softmax(logits / temperature)``, which is what verl's actor recomputes)."""
        return self.generate_batch([GenerationRequest(prompt_ids, sampling, image_data, video_data,
                                                      mm_processor_kwargs)])[0]

    def generate_batch(self, requests: list[GenerationRequest]) -> list[tuple[list[int], list[float] | None]]:
        """One left-padded ``generate`` call for requests sharing :meth:`SamplingRequest.batch_key`.

        Images and videos of all requests are concatenated in request order, which is the order in which the model
        fills the placeholders of the flattened batch; each row stops at its own EOS and its own ``max_tokens``.
        """
        sampling = requests[0].sampling
        if any(r.sampling.batch_key() != sampling.batch_key() for r in requests):
            raise ValueError("generate_batch: requests must share temperature/top_p/top_k/penalty/stop settings")
        media = [self._multimodal_inputs(r.prompt_ids, r.image_data, r.video_data, r.mm_processor_kwargs)
                 for r in requests]
        width = max(len(r.prompt_ids) for r in requests)
        input_ids = torch.full((len(requests), width), self.pad_token_id, dtype=torch.long, device=self.device)
        attention = torch.zeros_like(input_ids)
        for i, r in enumerate(requests):  # left padding
            input_ids[i, width - len(r.prompt_ids):] = torch.tensor(r.prompt_ids, device=self.device)
            attention[i, width - len(r.prompt_ids):] = 1
        inputs: dict[str, Any] = {}
        for key in ("pixel_values", "image_grid_thw", "pixel_values_videos", "video_grid_thw"):
            parts = [m[key] for m in media if key in m]
            if parts:
                inputs[key] = torch.cat(parts, dim=0)
        if any(media) and hasattr(self.processor, "create_mm_token_type_ids"):
            types = torch.tensor(self.processor.create_mm_token_type_ids(input_ids.tolist()), device=self.device)
            inputs["mm_token_type_ids"] = types * attention
        do_sample = sampling.temperature > 0
        eos = [] if sampling.ignore_eos else sorted({*self.eos_token_ids, *sampling.stop_token_ids})
        max_new = max(r.sampling.max_tokens for r in requests)
        # greedy selection over scores that PerRequestSampler made one-hot: sampling without the global RNG
        gen_kwargs = dict(max_new_tokens=max_new, min_new_tokens=max_new if sampling.ignore_eos else 0,
                          do_sample=False, eos_token_id=eos or None, pad_token_id=self.pad_token_id,
                          return_dict_in_generate=True, output_logits=True,
                          repetition_penalty=sampling.repetition_penalty,
                          stopping_criteria=StoppingCriteriaList([StopWhenSet(self.stop_event)]))
        if do_sample:
            generators = [self._generator(r.sampling.seed) for r in requests]
            gen_kwargs["logits_processor"] = LogitsProcessorList([PerRequestSampler(
                generators, sampling.temperature, sampling.top_k, sampling.top_p)])
        if self.config.suppress_vision_tokens and self.vision_token_ids:
            gen_kwargs["suppress_tokens"] = self.vision_token_ids
        with self._slots, torch.no_grad():
            out = self.model.generate(input_ids=input_ids, attention_mask=attention, **inputs, **gen_kwargs)
            if self.stop_event.is_set():
                for r in requests:
                    r.aborted = True
        temperature = sampling.temperature if sampling.temperature > 0 else 1.0
        results = []
        for i, r in enumerate(requests):
            token_ids = out.sequences[i, width:].tolist()[: r.sampling.max_tokens]
            for j, tid in enumerate(token_ids):
                if tid in eos:
                    token_ids = token_ids[: j + 1]
                    break
            if not r.sampling.logprobs:
                results.append((token_ids, None))
                continue
            logits = torch.stack([step[i] for step in out.logits[: len(token_ids)]]).float() / temperature
            targets = torch.tensor(token_ids, device=logits.device)[:, None]
            picked = torch.log_softmax(logits, dim=-1).gather(-1, targets)
            results.append((token_ids, picked[:, 0].tolist()))
        return results

    def score(self, prompt_ids: list[int], response_ids: list[int], temperature: float = 1.0, image_data=None,
              video_data=None, mm_processor_kwargs: dict | None = None) -> list[float]:
        """Log-probs of given response tokens after the prompt (teacher forcing), e.g. for scripted turns."""
        ids = list(prompt_ids) + list(response_ids)
        inputs = self._multimodal_inputs(prompt_ids, image_data, video_data, mm_processor_kwargs)
        if "mm_token_type_ids" in inputs:
            mm = inputs["mm_token_type_ids"]
            inputs["mm_token_type_ids"] = torch.cat([mm, mm.new_zeros((1, len(response_ids)))], dim=1)
        input_ids = torch.tensor([ids], dtype=torch.long, device=self.device)
        with self._slots, torch.no_grad():
            logits = self.model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), **inputs).logits
        logits = logits[0, len(prompt_ids) - 1: len(ids) - 1].float() / (temperature if temperature > 0 else 1.0)
        targets = torch.tensor(response_ids, device=logits.device)[:, None]
        return torch.log_softmax(logits, dim=-1).gather(-1, targets)[:, 0].tolist()
