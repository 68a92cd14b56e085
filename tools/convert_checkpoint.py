# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Convert the authors' released checkpoint layout to ours.

Thin wrapper over `videoseg_o3_verl.model.convert_cli` (also `videoseg-o3 convert-checkpoint`).
"""

import sys

from videoseg_o3_verl.model.convert_cli import main

if __name__ == "__main__":
    sys.exit(main())
