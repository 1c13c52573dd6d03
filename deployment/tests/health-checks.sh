#!/usr/bin/env bash
# health-checks.sh <test|production> [--json]: the quick, read-only checks, safe to run every
# minute; a thin wrapper over `tickstep health-checks` (docs/RUNBOOK.md).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
exec "${TICKSTEP:-$root/.venv/bin/tickstep}" health-checks "$@"
