#!/usr/bin/env bash
# Local control plane for gpupool: up | down | status | env. See e2e/cluster.py.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
py=python3
[ -x "$here/../.venv/bin/python" ] && py="$here/../.venv/bin/python"
exec "$py" "$here/cluster.py" "$@"
