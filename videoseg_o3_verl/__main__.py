# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""``python -m videoseg_o3_verl`` = the ``videoseg-o3`` command."""

import sys

from .cli import main

sys.exit(main())
