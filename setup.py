# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Distribution `videoseg-o3-verl`: the verl plugin that trains VideoSEG-O3 (multi-turn RL for reasoning VOS)."""

from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent

setup(
    name="videoseg-o3-verl",
    version="0.1.0",
    description="VideoSEG-O3 on verl: multi-turn RL for reasoning video object segmentation (CPU debug path included)",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8") if (ROOT / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10,<3.13",
    packages=find_packages(include=["videoseg_o3_verl", "videoseg_o3_verl.*"]),
    package_data={"videoseg_o3_verl": ["model/*.jinja", "recipes/*.yaml", "py.typed"]},
    install_requires=[
        "videoseg-reward>=0.1.0",
        "verl>=0.9.1,<0.10",
        "torch>=2.6",
        "torchvision>=0.21",
        "transformers>=5.5.3,<5.11",
        "ray>=2.40",
        "sam2>=1.1.0",
        'decord>=0.6.0; platform_machine == "x86_64"',
        "av>=12",
        "omegaconf>=2.3",
        "hydra-core>=1.3",
        "pycocotools>=2.0.7",
        "qwen-vl-utils>=0.0.10",
        "pillow>=10",
        "numpy>=1.26",
        "pandas>=2",
        "pyarrow>=14",
        "tqdm>=4.66",
        "safetensors>=0.4",
        "tokenizers>=0.21",
        # parts of verl's `verl-core` extra that the trainer and agent loop import (the extra itself pulls
        # a CUDA-only torchcodec, so it is not used).
        "cachetools",
        "pyzmq",
        "msgspec",
        "TransferQueue>=0.1.10",
        "tensorboard",
    ],
    extras_require={
        "gpu": ["vllm==0.24.0", "flash-attn>=2.7"],
        "serve": ["fastapi>=0.110", "uvicorn>=0.29", "httpx>=0.27"],
        "test": ["pytest>=8", "pytest-asyncio>=0.23", "pytest-timeout>=2.3", "httpx>=0.27"],
    },
    entry_points={
        "verl.plugins": ["videoseg_o3 = videoseg_o3_verl.register"],
        "console_scripts": ["videoseg-o3 = videoseg_o3_verl.cli:main"],
    },
)
