# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Write the synthetic RVOS dataset (the embedded default data).

Thin wrapper over `videoseg_o3_verl.data.synthetic_cli` (also `videoseg-o3 synthetic`).
"""

import sys

from videoseg_o3_verl.data.synthetic_cli import main

if __name__ == "__main__":
    sys.exit(main())
