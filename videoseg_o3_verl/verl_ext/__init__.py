# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""Everything that plugs into verl: fixes, engine and trainer extensions, registrations."""
