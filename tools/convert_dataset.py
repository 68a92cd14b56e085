# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Convert an on-disk RVOS dataset to verl parquet.

Thin wrapper over `videoseg_o3_verl.data.convert_cli` (also `videoseg-o3 data`).
"""

import sys

from videoseg_o3_verl.data.convert_cli import main

if __name__ == "__main__":
    sys.exit(main())
