#!/usr/bin/env bash
# deploy-backend.sh <test|production> [--json]: a thin wrapper over `tickstep deploy`
# (src/tickstep/operations/; docs/RUNBOOK.md). --help lists the options.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
exec "${TICKSTEP:-$root/.venv/bin/tickstep}" deploy "$@"
