# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Cold-start supervised fine-tuning on verl's SFT trainer: the [SEG]-supervised engine, dataset and trainer."""
