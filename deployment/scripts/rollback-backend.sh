#!/usr/bin/env bash
# rollback-backend.sh <test|production> [--json] [--to RELEASE]: a thin wrapper over `tickstep rollback`
# (src/tickstep/operations/; docs/RUNBOOK.md). --help lists the options.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
exec "${TICKSTEP:-$root/.venv/bin/tickstep}" rollback "$@"
