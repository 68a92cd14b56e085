#!/usr/bin/env bash
# Set up .venv (if needed) and run the embedded CPU demo (`videoseg-o3 demo`). Extra arguments go to the demo.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_venv.sh"
source "$ROOT/scripts/cpu_env.sh"
cd "$ROOT"
exec "$ROOT/.venv/bin/videoseg-o3" demo "$@"
