#!/usr/bin/env bash
# validate-deployment.sh <test|production> [--json]: a thin wrapper over `tickstep validate`
# (src/tickstep/operations/; docs/RUNBOOK.md). --help lists the options.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
exec "${TICKSTEP:-$root/.venv/bin/tickstep}" validate "$@"
