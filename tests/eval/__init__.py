# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
