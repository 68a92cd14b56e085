# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Distribution `videoseg-reward`: SAM2 segmentation + J&F reward service, usable without verl."""

from setuptools import find_packages, setup

setup(
    name="videoseg-reward",
    version="0.1.0",
    description="J&F metrics, VideoSEG-O3 reward terms and a SAM2 segmentation service (Ray actor + HTTP)",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["videoseg_reward", "videoseg_reward.*"]),
    install_requires=["numpy>=1.26", "scipy>=1.11", "pycocotools>=2.0.7", "torch>=2.6", "pillow>=10", "av>=12"],
    extras_require={
        "sam2": ["sam2>=1.1.0"],
        "ray": ["ray>=2.40"],
        "serve": ["fastapi>=0.110", "uvicorn>=0.29", "httpx>=0.27"],
        "test": ["pytest>=8", "pytest-asyncio>=0.23", "httpx>=0.27", "opencv-python-headless>=4.8",
                 "scikit-image>=0.22"],
        "bench": ["opencv-python-headless>=4.8", "scikit-image>=0.22", "httpx>=0.27"],
    },
    entry_points={"console_scripts": ["videoseg-reward-serve = videoseg_reward.app:main"]},
)
