# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""`RewardClient`: a small blocking HTTP client of :mod:`videoseg_reward.app` (needs ``httpx``).

Method names mirror :class:`~videoseg_reward.scorer.Sam2Scorer`. Videos are passed by path (the server
checks them against its roots); masks travel as RLE and come back decoded as numpy arrays.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from videoseg_reward.schemas import Prompts, SegmentRequest, SegmentResult, VideoRef, as_prompts, request_to_json


TOKEN_FILE_ENV = "VIDEOSEG_REWARD_TOKEN_FILE"
"""Environment variable naming the bearer-token file (read by the client and by the server's CLI)."""


class RewardServiceError(RuntimeError):
    """The server answered with an error status; ``status`` and ``detail`` are the server's."""

    def __init__(self, status: int, detail: str, endpoint: str):
        super().__init__(f"{endpoint} -> HTTP {status}: {detail}")
        self.status, self.detail, self.endpoint = status, detail, endpoint


class RewardClient:
    """Blocking client of the SAM2 reward service.

    Args:
        base_url: e.g. ``"http://127.0.0.1:8000"``.
        timeout: seconds per HTTP call.
        token: bearer token of a server started with ``--token-file``; default: the file named by
            ``$VIDEOSEG_REWARD_TOKEN_FILE`` when set, else none.
    """

    def __init__(self, base_url: str, timeout: float = 300.0, token: str | None = None):
        self.base_url = base_url.rstrip("/")
        if token is None and os.environ.get(TOKEN_FILE_ENV):
            with open(os.environ[TOKEN_FILE_ENV], encoding="utf-8") as f:
                token = f.read().strip()
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=headers)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> RewardClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise RewardServiceError(response.status_code, str(detail), f"{method} {path}")
        return response.json()

    def health(self) -> dict[str, Any]:
        """``GET /health``."""
        return self._call("GET", "/health")

    def version(self) -> dict[str, Any]:
        """``GET /version``: ``{"package", "model_version", "image_size"}``."""
        return self._call("GET", "/version")

    def segment(self, video: str | os.PathLike | VideoRef, prompts: Prompts | Mapping, mode: str, keyframe: int,
                frame_indices: Sequence[int] | None = None, *, inject_per_frame: bool = False,
                request_id: str | None = None) -> SegmentResult:
        """``POST /segment``; returns decoded masks (``[n, T, H, W]`` bool)."""
        body = request_to_json(self._request(video, prompts, mode, keyframe, frame_indices, inject_per_frame,
                                             request_id))
        return SegmentResult.from_json(self._call("POST", "/segment", json=body))

    def score(self, video: str | os.PathLike | VideoRef, prompts: Prompts | Mapping, mode: str, keyframe: int,
              gt_masks: Any, frame_indices: Sequence[int] | None = None, *, gt_keyframe: Any = None,
              inject_per_frame: bool = False, request_id: str | None = None) -> dict[str, Any]:
        """``POST /score``; ``gt_masks`` as arrays (encoded to RLE here) or RLE lists."""
        body = request_to_json(self._request(video, prompts, mode, keyframe, frame_indices, inject_per_frame,
                                             request_id, gt_masks=gt_masks, gt_keyframe=gt_keyframe))
        return self._call("POST", "/score", json=body)

    def update_decoder_weights(self, state_dict: Mapping[str, Any], version: int) -> int:
        """``POST /decoder_weights?version=N`` with a ``torch.save``'d state dict; returns the new version."""
        import torch

        buf = io.BytesIO()
        torch.save({k: v.detach().cpu() if hasattr(v, "detach") else torch.as_tensor(v) for k, v in state_dict.items()},
                   buf)
        out = self._call("POST", "/decoder_weights", params={"version": int(version)}, content=buf.getvalue(),
                         headers={"content-type": "application/octet-stream"})
        return int(out["model_version"])

    @staticmethod
    def _request(video: Any, prompts: Any, mode: str, keyframe: int, frame_indices: Sequence[int] | None,
                 inject_per_frame: bool, request_id: str | None, **gt: Any) -> SegmentRequest:
        extra = {"request_id": request_id} if request_id is not None else {}
        return SegmentRequest(video=video, prompts=as_prompts(prompts), mode=mode, keyframe=keyframe,
                              frame_indices=tuple(frame_indices) if frame_indices is not None else None,
                              inject_per_frame=inject_per_frame, **gt, **extra)
