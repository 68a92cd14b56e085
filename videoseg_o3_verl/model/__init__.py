# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Models: tiny offline stand-ins, the SAM2 seg head, checkpoint I/O and conversion."""
