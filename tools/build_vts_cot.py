# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Build the VTS-CoT cold-start SFT parquet.

Thin wrapper over `videoseg_o3_verl.data.vts_cot_cli` (also `videoseg-o3 vts-cot`).
"""

import sys

from videoseg_o3_verl.data.vts_cot_cli import main

if __name__ == "__main__":
    sys.exit(main())
