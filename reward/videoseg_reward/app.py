# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""HTTP front end of the SAM2 service (extra ``serve``: fastapi + uvicorn): ``build_app`` and the ``main`` CLI.

Endpoints (JSON; masks as COCO RLE, embeddings as nested lists; see ``reward/README.md``):

============================  ==========================================================================
``GET  /health``              ``{"status": "ok", "device": ...}`` (no token needed)
``GET  /version``             package version, decoder-weights version, image size
``POST /segment``             :func:`videoseg_reward.schemas.request_from_json` body -> ``SegmentResult``
``POST /score``               same + ``gt_masks`` (+ ``gt_keyframe``) -> J / F / J&F / IoUs
``POST /decoder_weights``     ``?version=N``, body = ``torch.save`` of a decoder state dict (off by default)
============================  ==========================================================================

Concurrent ``/segment`` and ``/score`` requests are micro-batched (:class:`~videoseg_reward.batching.MicroBatcher`,
as in the Ray actor). Parsing, path checks and video probing run on worker threads, never on the event loop.
A request that times out (504) or whose client disconnects is withdrawn: dropped from the queue, or stopped at the
next frame if it is running, so the model is released. At most ``max_queue`` requests wait or run (503 above).

Errors: 400 unreadable JSON or a disallowed ``Host``, 401 missing/wrong bearer token, 403 path outside the roots
(or weight updates disabled), 404 video not found, 413 body too large, 415 wrong content type, 422 invalid request
(bad RLE, shapes, mode, limits, undecodable video), 503 queue full, 504 timeout. Every error has a ``detail``
string, and no detail contains an absolute server path.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import io
import ipaddress
import json
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from videoseg_reward import __version__
from videoseg_reward.batching import CompletedCache, MicroBatcher, QueueFullError, RequestCancelled, process_batch
from videoseg_reward.client import TOKEN_FILE_ENV
from videoseg_reward.frames import MAX_VIDEO_FRAMES, PathNotAllowedError, VideoDecodeError, resolve_under_roots
from videoseg_reward.schemas import SegmentRequest, VideoRef, request_from_json

logger = logging.getLogger(__name__)

_MB = 1 << 20
MAX_VERSION = 2**63 - 1
"""Largest ``/decoder_weights`` version accepted (the scorer also bounds the jump from the current version)."""
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class ServiceSettings:
    """Limits and switches of the HTTP service."""

    video_roots: tuple[str, ...] = ()
    """Directories video paths (and every frame file) must resolve under; empty = no video allowed."""
    max_body_bytes: int = 16 * _MB
    """Largest JSON body of ``/segment`` and ``/score`` (413 above)."""
    max_weights_bytes: int = 256 * _MB
    """Largest ``/decoder_weights`` body (413 above)."""
    max_frames: int = 512
    """Most frames one request may cover (422 above)."""
    max_video_frames: int = MAX_VIDEO_FRAMES
    """Most frames a video (folder listing, ``frame_ids`` or video file) may have (422 above)."""
    max_prompts: int = 16
    """Most objects (prompts) per request (422 above)."""
    request_timeout_s: float = 300.0
    """Per-request time limit (504 above; the request is then withdrawn and stops at the next frame)."""
    max_queue: int = 64
    """Most requests queued or running at once (503 above)."""
    batch_window_ms: float = 5.0
    """How long the first request of a batch waits for concurrent company."""
    max_batch: int = 16
    """Most requests per batch (1 = no batching)."""
    allow_decoder_updates: bool = False
    """Enable ``POST /decoder_weights`` (403 otherwise)."""
    token: str | None = None
    """Bearer token required on every endpoint but ``/health``; ``None`` = no authentication."""
    bound_host: str = "127.0.0.1"
    """The address the server listens on; requests must name it (or an ``allowed_hosts`` entry) in ``Host``."""
    allowed_hosts: tuple[str, ...] = ()
    """Extra host names accepted in the ``Host`` header (``"*"`` accepts any: no DNS-rebinding protection)."""

    def __post_init__(self) -> None:
        for key in ("max_body_bytes", "max_weights_bytes", "max_frames", "max_video_frames", "max_prompts",
                    "max_queue", "max_batch"):
            if int(getattr(self, key)) < 1:
                raise ValueError(f"ServiceSettings.{key} must be >= 1, got {getattr(self, key)}")
        if not self.request_timeout_s > 0:
            raise ValueError(f"ServiceSettings.request_timeout_s must be > 0, got {self.request_timeout_s}")
        if self.batch_window_ms < 0:
            raise ValueError(f"ServiceSettings.batch_window_ms must be >= 0, got {self.batch_window_ms}")
        if self.token is not None and len(self.token) < 16:
            raise ValueError("ServiceSettings.token must be at least 16 characters (use a random secret)")


def _host_name(header: str) -> str:
    """Host name of a ``Host`` header value (port and IPv6 brackets removed, lower case)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_host_names(settings: ServiceSettings) -> frozenset[str] | None:
    """Host names the ``Host`` header may carry (``None`` = any)."""
    if "*" in settings.allowed_hosts:
        return None
    names = {_host_name(settings.bound_host)} | {h.lower() for h in settings.allowed_hosts}
    if _is_loopback(_host_name(settings.bound_host)):
        names |= set(_LOOPBACK_NAMES)
    return frozenset(names)


def redact_paths(text: str, roots: Sequence[str]) -> str:
    """``text`` without absolute server paths: a root becomes ``<video-root>``, any other absolute path
    ``<path>``; characters that cannot be encoded (lone surrogates) are escaped."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    prefixes = sorted({p for r in roots for p in (os.fspath(r), str(Path(os.fspath(r)).resolve()))}, key=len,
                      reverse=True)
    for prefix in prefixes:
        if prefix and prefix != "/":
            text = text.replace(prefix.rstrip("/"), "<video-root>")
    return re.sub(r"(?<![\w.<>])/(?:[^\s'\"/,;:)\]]+/?)+", "<path>", text)


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, or 413 as soon as it is known to exceed ``limit`` (header first, then streaming)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise HTTPException(400, "invalid Content-Length header") from None
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
    """Map an exception to an HTTP error (details are redacted later, in the error handler)."""
    if isinstance(err, HTTPException):
        return err
    if isinstance(err, QueueFullError):
        return HTTPException(503, f"server busy: {err}; retry later", headers={"Retry-After": "1"})
    if isinstance(err, RequestCancelled):
        return HTTPException(504, "request stopped before it finished (timeout)")
    if isinstance(err, PathNotAllowedError):
        return HTTPException(403, str(err))
    if isinstance(err, PermissionError):
        return HTTPException(403, "the video cannot be read (permission denied)")
    if isinstance(err, FileNotFoundError):
        return HTTPException(404, str(err))
    if isinstance(err, (ValueError, TypeError, IndexError)):  # VideoDecodeError is a ValueError
        return HTTPException(422, str(err))
    if isinstance(err, OSError):
        return HTTPException(422, f"the video cannot be read: {err.strerror or type(err).__name__}")
    logger.error("internal error: %s", type(err).__name__, exc_info=err)
    return HTTPException(500, f"internal error: {type(err).__name__}")


def _require_content_type(request: Request, expected: str) -> None:
    got = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if got != expected:
        raise HTTPException(415, f"Content-Type must be {expected}, got {got or 'none'!r}")


def build_app(scorer: Any, settings: ServiceSettings | None = None) -> FastAPI:
    """FastAPI app serving ``scorer`` (a :class:`~videoseg_reward.scorer.Sam2Scorer`) under ``settings``."""
    settings = settings or ServiceSettings()
    hosts = allowed_host_names(settings)
    token = settings.token.encode() if settings.token else None
    app = FastAPI(title="videoseg-reward SAM2 service", version=__version__, openapi_url=None, docs_url=None,
                  redoc_url=None)
    batcher = MicroBatcher(
        lambda reqs: process_batch(scorer, reqs, merge=settings.max_batch > 1,
                                   should_stop=lambda r: batcher.is_cancelled(r.request_id)),
        window_s=settings.batch_window_ms / 1e3, max_batch=settings.max_batch, completed=CompletedCache(256),
        max_queue=settings.max_queue)
    app.state.batcher = batcher

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, err: StarletteHTTPException) -> JSONResponse:
        detail = redact_paths(str(err.detail), settings.video_roots)
        return JSONResponse({"detail": detail}, status_code=err.status_code, headers=getattr(err, "headers", None))

    @app.exception_handler(Exception)
    async def internal_error(_request: Request, err: Exception) -> JSONResponse:
        logger.error("unhandled error: %s", type(err).__name__, exc_info=err)
        return JSONResponse({"detail": f"internal error: {type(err).__name__}"}, status_code=500)

    def guard(request: Request, *, auth: bool = True) -> None:
        """Host check (DNS rebinding) and, unless ``auth=False``, the bearer token."""
        if hosts is not None and _host_name(request.headers.get("host", "")) not in hosts:
            raise HTTPException(400, "Host header not allowed (start the server with --allowed-host NAME)")
        if auth and token is not None:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token):
                raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    def checked(req: SegmentRequest) -> SegmentRequest:
        """Roots, existence and size limits; returns the request with the resolved path."""
        path = resolve_under_roots(req.video.path, settings.video_roots)
        n_frames = len(req.frame_indices) if req.frame_indices is not None else scorer.probe(
            VideoRef(str(path), req.video.frame_ids))[0]
        if n_frames > settings.max_frames:
            raise ValueError(f"request covers {n_frames} frames; the limit is {settings.max_frames} "
                             "(pass frame_indices)")
        return SegmentRequest(video=VideoRef(str(path), req.video.frame_ids), prompts=req.prompts, mode=req.mode,
                              keyframe=req.keyframe, frame_indices=req.frame_indices,
                              inject_per_frame=req.inject_per_frame, gt_masks=req.gt_masks,
                              gt_keyframe=req.gt_keyframe, request_id=req.request_id)

    def parse_sync(body: bytes, score: bool) -> SegmentRequest:
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
            raise HTTPException(400, f"request body is not valid JSON: {type(err).__name__}") from None

        def probe(video: VideoRef) -> tuple[int, int, int]:
            return scorer.probe(VideoRef(str(resolve_under_roots(video.path, settings.video_roots)),
                                         video.frame_ids))

        return checked(request_from_json(data, score=score, max_objects=settings.max_prompts,
                                         max_frames=settings.max_frames, max_video_frames=settings.max_video_frames,
                                         probe=probe))

    async def handle(request: Request, score: bool) -> dict[str, Any]:
        guard(request)
        _require_content_type(request, "application/json")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.request_timeout_s
        body = await _read_body(request, settings.max_body_bytes)
        try:
            req = await asyncio.wait_for(run_in_threadpool(parse_sync, body, score),
                                         timeout=max(deadline - loop.time(), 1e-3))
        except (asyncio.TimeoutError, TimeoutError):
            raise HTTPException(504, f"request exceeded the time limit of {settings.request_timeout_s:g} s") \
                from None
        except Exception as err:  # noqa: BLE001 - mapped to an HTTP status
            raise _to_http(err) from err
        task = asyncio.ensure_future(batcher.submit(req))
        try:
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise HTTPException(504, f"request exceeded the time limit of {settings.request_timeout_s:g} s")
                done, _ = await asyncio.wait({task}, timeout=min(remaining, 0.25))
                if done:
                    break
                if await request.is_disconnected():
                    raise HTTPException(499, "client disconnected")
        except BaseException:
            task.cancel()  # withdraws the request: dropped from the queue or stopped at the next frame
            await asyncio.gather(task, return_exceptions=True)
            raise
        try:
            result = task.result()
        except Exception as err:  # noqa: BLE001 - mapped to an HTTP status
            raise _to_http(err) from err
        out = result if score else result.to_json()
        return {**out, "request_id": req.request_id}

    @app.get("/health")
    async def health(request: Request) -> dict[str, Any]:
        guard(request, auth=False)
        return {"status": "ok", "device": str(scorer.device)}

    @app.get("/version")
    async def version(request: Request) -> dict[str, Any]:
        guard(request)
        return {"package": __version__, "model_version": scorer.version, "image_size": scorer.image_size,
                "queue_depth": batcher.depth}

    @app.post("/segment")
    async def segment(request: Request) -> dict[str, Any]:
        return await handle(request, score=False)

    @app.post("/score")
    async def score(request: Request) -> dict[str, Any]:
        return await handle(request, score=True)

    @app.post("/decoder_weights")
    async def decoder_weights(request: Request) -> dict[str, Any]:
        guard(request)
        if not settings.allow_decoder_updates:
            raise HTTPException(403, "decoder weight updates are disabled on this server "
                                     "(start it with --allow-decoder-updates)")
        _require_content_type(request, "application/octet-stream")
        version = _parse_version(request.query_params.get("version"))
        body = await _read_body(request, settings.max_weights_bytes)
        try:
            state_dict = await run_in_threadpool(_load_state_dict, body)
            new_version = await batcher.run_exclusive(lambda: scorer.update_decoder_weights(state_dict, version))
        except Exception as err:  # noqa: BLE001 - mapped to an HTTP status
            raise _to_http(err) from err
        return {"model_version": new_version}

    return app


def _parse_version(raw: str | None) -> int:
    if raw is None:
        raise HTTPException(422, "query parameter 'version' is required")
    if not raw.isdigit() or len(raw) > 19 or not 1 <= int(raw) <= MAX_VERSION:
        raise HTTPException(422, f"version: expected an integer in [1, {MAX_VERSION}], got {raw[:40]!r}")
    return int(raw)


def _load_state_dict(body: bytes) -> dict[str, Any]:
    import torch

    try:
        state_dict = torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable payload is a client error
        raise ValueError(f"decoder weights: body is not a torch.save'd state dict ({type(err).__name__})") \
            from None
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
    p.add_argument("--token-file", default=None,
                   help=f"file holding the bearer token required on every endpoint but /health (or ${TOKEN_FILE_ENV})")
    p.add_argument("--allowed-host", action="append", default=[], dest="allowed_hosts",
                   help="extra name accepted in the Host header (repeatable; '*' = any, disables the DNS-rebinding "
                        "check)")
    p.add_argument("--max-body-mb", type=float, default=16.0, help="largest JSON request body (MiB)")
    p.add_argument("--max-weights-mb", type=float, default=256.0, help="largest /decoder_weights body (MiB)")
    p.add_argument("--max-frames", type=int, default=512, help="most frames per request")
    p.add_argument("--max-video-frames", type=int, default=MAX_VIDEO_FRAMES, help="most frames a video may have")
    p.add_argument("--max-prompts", type=int, default=16, help="most prompts (objects) per request")
    p.add_argument("--timeout-s", type=float, default=300.0, help="per-request time limit (504 after)")
    p.add_argument("--max-queue", type=int, default=64, help="most requests queued or running (503 above)")
    p.add_argument("--batch-window-ms", type=float, default=5.0, help="micro-batching window")
    p.add_argument("--max-batch", type=int, default=16, help="most requests per batch (1 = no batching)")
    p.add_argument("--feature-cache-frames", type=int, default=64, help="frame-feature LRU capacity")
    p.add_argument("--allow-decoder-updates", action="store_true", help="enable POST /decoder_weights")
    p.add_argument("--log-level", default="info")
    return p


def read_token_file(path: str | os.PathLike) -> str:
    """The bearer token stored in ``path`` (surrounding whitespace removed; ``ValueError`` if empty/unreadable)."""
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"--token-file: cannot read {path}: {err}") from None
    if not token:
        raise ValueError(f"--token-file: {path} is empty")
    if Path(path).stat().st_mode & 0o077:
        logger.warning("token file %s is readable by other users (chmod 600 it)", path)
    return token


def settings_from_args(args: argparse.Namespace) -> ServiceSettings:
    """:class:`ServiceSettings` from parsed CLI arguments (the token from ``--token-file`` or the environment)."""
    token_file = args.token_file or os.environ.get(TOKEN_FILE_ENV) or None
    return ServiceSettings(video_roots=tuple(args.video_roots), max_body_bytes=int(args.max_body_mb * _MB),
                           max_weights_bytes=int(args.max_weights_mb * _MB), max_frames=args.max_frames,
                           max_video_frames=args.max_video_frames, max_prompts=args.max_prompts,
                           request_timeout_s=args.timeout_s, max_queue=args.max_queue,
                           batch_window_ms=args.batch_window_ms, max_batch=args.max_batch,
                           allow_decoder_updates=args.allow_decoder_updates,
                           token=read_token_file(token_file) if token_file else None, bound_host=args.host,
                           allowed_hosts=tuple(args.allowed_hosts))


def serve(argv: Sequence[str] | None = None, *, run: Callable[..., Any] | None = None) -> int:
    """Parse ``argv`` (:func:`build_parser`), load SAM2 and serve until interrupted (``run`` = ``uvicorn.run``)."""
    from videoseg_reward.scorer import Sam2Scorer

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper())
    try:
        settings = settings_from_args(args)
    except ValueError as err:
        parser.error(str(err))
    if settings.token is None and not _is_loopback(_host_name(args.host)):
        logger.warning("serving on %s without a bearer token: anyone who can reach the port can use the model "
                       "(pass --token-file)", args.host)
    scorer = Sam2Scorer(args.checkpoint, config=args.config, image_size=args.image_size, device=args.device,
                        video_roots=settings.video_roots, feature_cache_frames=args.feature_cache_frames,
                        max_video_frames=settings.max_video_frames)
    if run is None:
        import uvicorn

        run = uvicorn.run
    run(build_app(scorer, settings), host=args.host, port=args.port, log_level=args.log_level)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``videoseg-reward-serve --checkpoint X --video-root DIR [...]`` (also ``videoseg-o3 serve-reward``)."""
    return serve(argv)


if __name__ == "__main__":
    raise SystemExit(main())
