# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""HTTP front end of the SAM2 service (extra ``serve``: fastapi + uvicorn): ``build_app`` and the ``main`` CLI.

Endpoints (JSON; masks as COCO RLE, embeddings as nested lists; see ``reward/README.md``):

============================  ==========================================================================
``GET  /health``              ``{"status": "ok", "device": ...}``
``GET  /version``             package version, decoder-weights version, image size
``POST /segment``             :func:`videoseg_reward.schemas.request_from_json` body -> ``SegmentResult``
``POST /score``               same + ``gt_masks`` (+ ``gt_keyframe``) -> J / F / J&F / IoUs
``POST /decoder_weights``     ``?version=N``, body = ``torch.save`` of a decoder state dict (off by default)
============================  ==========================================================================

Errors: 400 unreadable JSON, 403 video path outside the roots (or weight updates disabled), 404 video not
found, 413 body too large (checked on ``Content-Length`` before reading, and while streaming), 422 invalid
request (bad RLE, shapes, mode, limits), 504 request timeout. Every error has a ``detail`` string.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from videoseg_reward import __version__
from videoseg_reward.frames import PathNotAllowedError, count_frames, resolve_under_roots
from videoseg_reward.schemas import SegmentRequest, VideoRef, request_from_json

logger = logging.getLogger(__name__)

_MB = 1 << 20


@dataclass(frozen=True)
class ServiceSettings:
    """Limits and switches of the HTTP service."""

    video_roots: tuple[str, ...] = ()
    """Directories video paths must resolve under (symlinks and ``..`` resolved); empty = no video allowed."""
    max_body_bytes: int = 16 * _MB
    """Largest JSON body of ``/segment`` and ``/score`` (413 above)."""
    max_weights_bytes: int = 256 * _MB
    """Largest ``/decoder_weights`` body (413 above)."""
    max_frames: int = 512
    """Most frames one request may cover (422 above)."""
    max_prompts: int = 16
    """Most objects (prompts) per request (422 above)."""
    request_timeout_s: float = 300.0
    """Per-request time limit (504 above; the computation itself finishes in the background)."""
    allow_decoder_updates: bool = False
    """Enable ``POST /decoder_weights`` (403 otherwise)."""


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, or 413 as soon as it is known to exceed ``limit`` (header first, then streaming)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise HTTPException(400, f"invalid Content-Length header {declared!r}") from None
        if size > limit:
            raise HTTPException(413, f"request body of {size} bytes exceeds the limit of {limit} bytes")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise HTTPException(413, f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _to_http(err: BaseException) -> HTTPException:
    if isinstance(err, HTTPException):
        return err
    if isinstance(err, PathNotAllowedError):
        return HTTPException(403, str(err))
    if isinstance(err, FileNotFoundError):
        return HTTPException(404, str(err))
    if isinstance(err, (ValueError, TypeError, IndexError)):
        return HTTPException(422, str(err))
    logger.exception("internal error", exc_info=err)
    return HTTPException(500, f"internal error: {type(err).__name__}")


def build_app(scorer: Any, settings: ServiceSettings | None = None) -> FastAPI:
    """FastAPI app serving ``scorer`` (a :class:`~videoseg_reward.scorer.Sam2Scorer`) under ``settings``."""
    settings = settings or ServiceSettings()
    app = FastAPI(title="videoseg-reward SAM2 service", version=__version__)

    async def run(fn: Callable[[], Any]) -> Any:
        try:
            return await asyncio.wait_for(run_in_threadpool(fn), timeout=settings.request_timeout_s)
        except (asyncio.TimeoutError, TimeoutError):  # distinct classes before Python 3.11
            raise HTTPException(504, f"request exceeded the time limit of {settings.request_timeout_s:g} s") from None
        except Exception as err:  # noqa: BLE001 - mapped to an HTTP status
            raise _to_http(err) from err

    def checked(req: SegmentRequest) -> SegmentRequest:
        """Roots, existence and size limits; returns the request with the resolved path."""
        n = req.prompts.num_objects
        if n > settings.max_prompts:
            raise HTTPException(422, f"{n} prompts in one request; the limit is {settings.max_prompts}")
        path = resolve_under_roots(req.video.path, settings.video_roots)
        n_frames = len(req.frame_indices) if req.frame_indices is not None else count_frames(path, req.video.frame_ids)
        if n_frames > settings.max_frames:
            raise HTTPException(422, f"request covers {n_frames} frames; the limit is {settings.max_frames} "
                                     "(pass frame_indices)")
        return SegmentRequest(video=VideoRef(str(path), req.video.frame_ids), prompts=req.prompts, mode=req.mode,
                              keyframe=req.keyframe, frame_indices=req.frame_indices,
                              inject_per_frame=req.inject_per_frame, gt_masks=req.gt_masks,
                              gt_keyframe=req.gt_keyframe, request_id=req.request_id)

    async def parse(request: Request, *, score: bool) -> SegmentRequest:
        body = await _read_body(request, settings.max_body_bytes)
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
            raise HTTPException(400, f"request body is not valid JSON: {type(err).__name__}: {err}") from None
        try:
            return checked(request_from_json(data, score=score, max_objects=settings.max_prompts))
        except Exception as err:  # noqa: BLE001 - mapped to an HTTP status
            raise _to_http(err) from err

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "device": str(scorer.device)}

    @app.get("/version")
    async def version() -> dict[str, Any]:
        return {"package": __version__, "model_version": scorer.version, "image_size": scorer.image_size}

    @app.post("/segment")
    async def segment(request: Request) -> dict[str, Any]:
        req = await parse(request, score=False)
        result = await run(lambda: scorer.segment(req.video, req.prompts, req.mode, req.keyframe, req.frame_indices,
                                                  inject_per_frame=req.inject_per_frame))
        return {**result.to_json(), "request_id": req.request_id}

    @app.post("/score")
    async def score(request: Request) -> dict[str, Any]:
        req = await parse(request, score=True)
        result = await run(lambda: scorer.score(req.video, req.prompts, req.mode, req.keyframe, req.gt_masks,
                                                req.frame_indices, gt_keyframe=req.gt_keyframe,
                                                inject_per_frame=req.inject_per_frame))
        return {**result, "request_id": req.request_id}

    @app.post("/decoder_weights")
    async def decoder_weights(request: Request, version: int) -> dict[str, Any]:
        if not settings.allow_decoder_updates:
            raise HTTPException(403, "decoder weight updates are disabled on this server "
                                     "(start it with --allow-decoder-updates)")
        body = await _read_body(request, settings.max_weights_bytes)
        state_dict = await run(lambda: _load_state_dict(body))
        new_version = await run(lambda: scorer.update_decoder_weights(state_dict, version))
        return {"model_version": new_version}

    return app


def _load_state_dict(body: bytes) -> dict[str, Any]:
    import torch

    try:
        state_dict = torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable payload is a client error
        raise ValueError(f"decoder weights: body is not a torch.save'd state dict ({type(err).__name__}: {err})") \
            from err
    if not isinstance(state_dict, dict):
        raise ValueError(f"decoder weights: expected a dict of tensors, got {type(state_dict).__name__}")
    return state_dict


# -------------------------------------------------------------------------------------------------------------------
# CLI
# -------------------------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of :func:`main`."""
    p = argparse.ArgumentParser(prog="videoseg-reward-serve", description="Serve SAM2 segmentation/scoring over HTTP.")
    p.add_argument("--checkpoint", required=True, help="SAM2 checkpoint (.pt)")
    p.add_argument("--config", default=None, help="SAM2 config override (e.g. sam2.1_hiera_l)")
    p.add_argument("--image-size", type=int, default=None, help="SAM2 input resolution override")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--video-root", action="append", required=True, dest="video_roots",
                   help="directory video paths must lie under (repeatable)")
    p.add_argument("--max-body-mb", type=float, default=16.0, help="largest JSON request body (MiB)")
    p.add_argument("--max-weights-mb", type=float, default=256.0, help="largest /decoder_weights body (MiB)")
    p.add_argument("--max-frames", type=int, default=512, help="most frames per request")
    p.add_argument("--max-prompts", type=int, default=16, help="most prompts (objects) per request")
    p.add_argument("--timeout-s", type=float, default=300.0, help="per-request time limit (504 after)")
    p.add_argument("--feature-cache-frames", type=int, default=64, help="frame-feature LRU capacity")
    p.add_argument("--allow-decoder-updates", action="store_true", help="enable POST /decoder_weights")
    p.add_argument("--log-level", default="info")
    return p


def settings_from_args(args: argparse.Namespace) -> ServiceSettings:
    """:class:`ServiceSettings` from parsed CLI arguments."""
    return ServiceSettings(video_roots=tuple(args.video_roots), max_body_bytes=int(args.max_body_mb * _MB),
                           max_weights_bytes=int(args.max_weights_mb * _MB), max_frames=args.max_frames,
                           max_prompts=args.max_prompts, request_timeout_s=args.timeout_s,
                           allow_decoder_updates=args.allow_decoder_updates)


def main(argv: Sequence[str] | None = None) -> int:
    """``videoseg-reward-serve --checkpoint X --video-root DIR [...]``: load SAM2 and serve until interrupted."""
    import uvicorn

    from videoseg_reward.scorer import Sam2Scorer

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper())
    settings = settings_from_args(args)
    scorer = Sam2Scorer(args.checkpoint, config=args.config, image_size=args.image_size, device=args.device,
                        video_roots=settings.video_roots, feature_cache_frames=args.feature_cache_frames)
    uvicorn.run(build_app(scorer, settings), host=args.host, port=args.port, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
