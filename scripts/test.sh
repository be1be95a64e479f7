#!/usr/bin/env bash
# Run the whole qvi test suite on a fresh or prepared machine: sets up, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
exec .venv/bin/python -m pytest "$@"
