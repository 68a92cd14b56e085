# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""``python -m videoseg_o3_verl.main --config-name NAME [overrides]`` = ``videoseg-o3 train ...``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
